-- compat.lua: Asterisk pbx_lua features, driven by tests/unit/test_pbx_lua.c.
-- Each extension reports through TestApp what it saw.

local function rec(...)
	app.TestApp(...)
end

extensions = {
	feat = {
		-- channel.VAR in all the forms pbx_lua documents
		vars = function(c, e)
			channel.A = "1"
			channel["B"] = "2"
			channel.C:set("3")
			channel.D.value = "4"
			rec(channel.A:get(), channel.B.value, channel["C"]:get(), channel.D:get())
		end,
		-- dialplan functions through the same syntax
		funcs = function()
			channel.CALLERID("name"):set("Bob")
			channel["CALLERID(num)"] = "2002"
			channel.WORDS = "a-b-c-d"
			rec(channel["CALLERID(name)"]:get(), channel.CALLERID("num"):get(),
				channel["LEN(hello)"]:get(), channel.CUT("WORDS", "", "2-3"):get(),
				channel["IF(1?yes:no)"]:get(), channel["IF(0?yes:no)"]:get())
		end,
		globals = function()
			channel["GLOBAL(G1)"] = "shared"
			rec(channel.G1:get(), channel["GLOBAL(G1)"]:get())
		end,
		badfunc = function()
			rec(channel["NOSUCHFUNC(x)"]:get())
		end,
		unclosed = function()
			rec(channel["LEN(x"]:get())
		end,
		hangupcheck = function()
			rec(tostring(check_hangup()))
			autoservice_start()
			rec(tostring(autoservice_status()))
			autoservice_stop()
			rec(tostring(autoservice_status()))
		end,
		-- per-call globals: a global set by a call is not seen by the next
		leak = function()
			counter = (counter or 0) + 1
			rec(counter)
		end,
		-- pcall cannot swallow the unwind of a hangup
		swallow = function()
			local ok = pcall(app.TestApp, "hangup")
			rec("swallowed", tostring(ok))
		end,
		runaway = function()
			rec("runaway")
			while true do end
		end,
		runaway_pcall = function()
			while true do
				pcall(function() while true do end end)
			end
		end,
		hog = function()
			local t = {}
			for i = 1, 1e8 do t[i] = string.rep("x", 1000) .. i end
		end,
		sandbox = function()
			rec(type(io), type(os.exit), type(os.execute), type(debug.getinfo),
				type(debug.traceback), type(loadfile), type(dofile), type(os.time))
			local f, err = load(string.dump(function() end))
			rec(tostring(f), tostring(err):match("binary") and "binary refused" or tostring(err))
			local ok, e2 = pcall(require, "nosuchcmodule")
			rec(tostring(ok))
		end,
		plex = function()
			local num, name = plexus.channel:caller()
			plexus.channel.set("PV", "pv")
			plexus.log.notice("notice from lua", 42)
			rec(plexus.channel.name() == channel.CHANNEL:get() and "name ok" or "name bad",
				num, name, plexus.channel:get("PV"), plexus.channel.get("LEN(abc)"))
		end,
		pe164 = function()
			local us = { country = "1", national_prefix = "1", international_prefix = "011" }
			local fr = { country = "33", national_prefix = "0" }
			local cases = {
				{ "+1 (555) 123-4567" }, { "011 44 20 7946 0000", us },
				{ "15551234567", us }, { "555.123.4567", us }, { "0612345678", fr },
				{ "0033612345678", fr }, { "+33 6 12 34 56 78", fr }, { "5551234" },
				{ "5551234", { country = "1x" } }, { "12ab", us }, { "", us }, { "+", us },
				{ "1+2", us }, { string.rep("9", 70), us },
			}
			for _, c in ipairs(cases) do
				local n, why = plexus.e164(c[1], c[2])
				rec(tostring(n) .. " " .. tostring(why))
			end
			rec(tostring(pcall(plexus.e164, "1", "not a table")))
		end,
		pdial = function()
			local r = plexus.dial{ "Test/1", "Test/2", timeout = 7, caller_id = "\"Carol\" <3003>" }
			rec(r.status, r.cause, channel["CALLERID(name)"]:get())
		end,
		pdb = function()
			plexus.db.put("fam", "k", "v1")
			rec(plexus.db.get("fam", "k"), tostring(plexus.db.exists("fam", "k")))
			rec(tostring(plexus.db.del("fam", "k")), tostring(plexus.db.get("fam", "k")))
		end,
		setapp = function()
			app.Set("SV=x=y")
			app.set("CALLERID(name)=Dave")
			app.NoOp("nothing")
			app.GotoIf("0?flow,target,1")
			rec(channel.SV:get(), channel["CALLERID(name)"]:get())
			app.GotoIf("1?flow,target,1:nowhere,1")
		end,
	},

	-- a context with 'i' and 'h': the flow of a call
	flow = {
		-- Goto to another extension function; the rest is skipped
		jump = function()
			rec("jump")
			app["goto"]("flow", "target", 1)
			rec("after goto")
		end,
		target = function(c, e)
			rec("target", c, e, channel.EXTEN:get())
		end,
		jumpbad = function()
			app.Goto("flow", "nowhere", 1)
		end,
		fallthrough = function()
			channel.DIALSTATUS = "BUSY"
		end,
		i = function(c, e)
			rec("i", channel.INVALID_EXTEN:get())
		end,
		h = function(c, e)
			rec("h", e, channel.HANGUPCAUSE:get(), tostring(channel.DIALSTATUS:get()),
				tostring(check_hangup()))
		end,
		hangup = function()
			channel.DIALSTATUS = "CANCEL"
			app.TestApp("hangup17")
			rec("not reached")
		end,
		crash = function()
			local t = nil
			return t.x
		end,
	},
	-- no 'h' here: an application's -1 just leaves the dialplan
	plain = {
		quit = function()
			app.TestApp("hangup")
			app.TestApp("not reached")
		end,
	},

	-- the runaway loop of a context with 'h'
	guarded = {
		loop = function() while true do end end,
		h = function() rec("h after runaway", channel.HANGUPCAUSE:get()) end,
	},
}
