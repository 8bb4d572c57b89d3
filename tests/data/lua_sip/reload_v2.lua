-- reload_v2.lua: 7XXX rings 1003 (generation after the reload).
extensions = {
	default = {
		["_7XXX"] = function() app.Dial("SIP/1003", 10) end,
	},
}
