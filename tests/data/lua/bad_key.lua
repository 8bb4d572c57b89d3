-- bad_key.lua: an extension pattern with an unterminated character set.
extensions = {
	default = {
		["_1[23"] = function() end,
	},
}
