-- basic.lua: the dialplan of most pbx_lua unit tests (tests/unit/test_pbx_lua.c).
-- Every extension reports what ran through the test application TestApp,
-- whose data the tests read back.

-- Run once per Lua state: a call that sees loads ~= 1 means the file ran again.
loads = (loads or 0) + 1
-- Differs from one state to the next (the address of a fresh table).
state_id = tostring({}):gsub("table: ", "")

-- An extension function that reports its own key and its arguments.
local function mark(name)
	return function(context, extension)
		app.TestApp(name, context, extension)
	end
end

extensions = {
	default = {
		["1000"] = mark("1000"),
		["_1XXX"] = mark("_1XXX"),
		["_12XX"] = mark("_12XX"),
		["_X."] = mark("_X."),
		[2000] = mark("2000 (integer key)"),
	},

	patterns = {
		["_[2-4]XX"] = mark("_[2-4]XX"),
		["_NXXNXXXXXX"] = mark("_NXXNXXXXXX"),
		["_9!"] = mark("_9!"),
		["_8[1-5,7]"] = mark("_8[1-5,7]"),
		["_7[a-c]"] = mark("_7[a-c]"),
		["_6."] = mark("_6."),
		["s"] = mark("s"),
	},

	office = {
		["100"] = mark("office 100"),
		["_5XX"] = mark("office _5XX"),
		include = {"inner"},
	},

	inner = {
		["555"] = mark("inner 555"),
		["600"] = mark("inner 600"),
		include = {"deeper", "office"}, -- a cycle: office includes inner
	},

	deeper = {
		["777"] = mark("deeper 777"),
		include = {"inner", "missing"},
	},

	api = {
		args = function()
			app.testapp("a", 1)
		end,
		upper = function()
			app["TESTAPP"]("upper")
		end,
		mixed = function()
			app.TestApp("x", nil, true, 2.5, "")
		end,
		setvar = function()
			channel.FOO:set("bar")
			app.TestApp(channel.FOO:get())
		end,
		assign = function()
			channel.BAZ = "qux"
			channel["NUM"]:set(42)
			app.TestApp(channel.BAZ:get(), channel.NUM:get())
		end,
		unset = function()
			app.TestApp(tostring(channel.NOPE:get()))
		end,
		builtins = function()
			app.TestApp(channel.EXTEN:get(), channel.CONTEXT:get(), channel.CHANNEL:get(),
				channel["CALLERID(num)"]:get(), channel["CALLERID(name)"]:get(),
				channel.UNIQUEID:get())
		end,
		readonly = function()
			channel.EXTEN:set("nope")
		end,
		noapp = function()
			app.NoSuchApp("x")
		end,
		crash = function()
			local missing = nil
			missing() -- crash here
		end,
		hangup = function()
			app.TestApp("hangup")
			app.TestApp("after hangup")
		end,
		count = function()
			app.TestApp(state_id, loads)
		end,
		trivial = function()
		end,
		block = function()
			app.TestApp("block")
			app.TestApp("basic after block")
		end,
	},

	-- calls that share a Lua state: one parks in TestApp("block") while
	-- others run; each reports the globals it sees (mine through the
	-- metatable of _G, raw set into _G itself)
	shared = {
		park = function()
			mine = "park"
			rawset(_G, "raw", "park")
			app.TestApp("block")
			app.TestApp("park sees " .. tostring(mine) .. "," .. tostring(raw))
		end,
		peek = function()
			app.TestApp("peek sees " .. tostring(mine) .. "," .. tostring(raw))
			mine = "peek"
			rawset(_G, "raw", "peek")
			app.TestApp("peek set " .. tostring(mine) .. "," .. tostring(raw))
		end,
		crash = function()
			mine = "crash"
			local missing = nil
			missing() -- crash while another call is parked
		end,
		jump = function()
			mine = "jump"
			app.Goto("shared", "target", 1)
			app.TestApp("not reached")
		end,
		target = function()
			app.TestApp("target sees " .. tostring(mine))
		end,
		quit = function()
			mine = "quit"
			app.TestApp("hangup")
			app.TestApp("not reached")
		end,
		runaway = function()
			mine = "runaway"
			while true do end
		end,
		hog = function()
			mine = "hog"
			local t = {}
			for i = 1, 1e8 do t[i] = string.rep("x", 1000) .. i end
		end,
		h = function()
			app.TestApp("h " .. tostring(mine))
		end,
	},
}

hints = {
	default = {
		["1000"] = "Test/1000",
	},
}
