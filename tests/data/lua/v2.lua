-- v2.lua: a changed dialplan for the reload tests of test_pbx_lua.c; the
-- same extensions report "v2" so that a test can tell which file ran.

extensions = {
	default = {
		["1000"] = function()
			app.TestApp("v2 1000")
		end,
		["3000"] = function()
			app.TestApp("v2 3000")
		end,
	},
	api = {
		block = function()
			app.TestApp("block")
			app.TestApp("v2 after block")
		end,
	},
}
