-- syntax_error.lua: a dialplan that does not compile (line 4).
extensions = {
	default = {
		["1000"] = function() app.TestApp("x") end end,
	},
}
