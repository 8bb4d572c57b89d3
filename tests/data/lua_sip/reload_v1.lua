-- reload_v1.lua: 7XXX rings 1002 (generation before the reload).
extensions = {
	default = {
		["_7XXX"] = function() app.Dial("SIP/1002", 10) end,
	},
}
