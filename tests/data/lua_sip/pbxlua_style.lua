-- pbxlua_style.lua: a dialplan written for Asterisk's pbx_lua, as an
-- administrator brings it (tests/sip/lua.sh routes real calls through it).
-- The office phones are in context "default" (sip.conf), which includes
-- the context "phones" where the four-digit numbers ring a phone for 5 s.

-- Record how the call ended in the database (read by the test).
local function record_end(context, extension)
	channel["DB(test/h)"] = context .. " " .. channel.HANGUPCAUSE:get() .. " " ..
		(channel.DIALSTATUS:get() or "none")
end

local function ring(context, extension)
	app.dial("SIP/" .. extension, 5)
end

extensions = {
	phones = {
		["_100[1-3]"] = ring,
		-- an unknown number reached by Goto lands here: ring 1002
		i = function(context, extension)
			channel.WAS_INVALID = channel.INVALID_EXTEN:get()
			app.Dial("SIP/1002", 5)
		end,
		h = record_end,
	},

	default = {
		include = {"phones"},
		-- Goto into another context's extension
		["2000"] = function()
			app["goto"]("phones", "1002", 1)
		end,
		-- Goto an extension that does not exist: 'i' of that context
		["2001"] = function()
			app.Goto("phones", "9999", 1)
		end,
		-- forwarding kept in the database (database put forward 3001 1002)
		["_3XXX"] = function(context, extension)
			local target = channel["DB(forward/" .. extension .. ")"]:get()
			if target == "" then
				return -- falling off the end ends the call
			end
			channel.CALLERID("name"):set("Fwd " .. extension)
			app.dial("SIP/" .. target, 5)
		end,
		-- a runaway loop: the instruction budget ends it
		["4000"] = function()
			local n = 0
			while true do n = n + 1 end
		end,
		-- a runtime error
		["4001"] = function()
			local t = nil
			return t.field
		end,
		-- The deepest stack a dialplan reaches (session threads have a
		-- bounded stack, core/channel.c): Lua calling C calling Lua, 170
		-- string.gsub callbacks deep (Lua allows about 190), a
		-- backtracking pattern match and then a Dial from the bottom.
		["5000"] = function()
			local function down(n)
				if n > 0 then
					string.gsub("x", "x", function() down(n - 1) end)
					return
				end
				local m = string.rep("a", 300):match(string.rep("a?", 150) ..
					string.rep("a", 150))
				channel["DB(test/deep)"] = "170 " .. #m
				app.Dial("SIP/1002", 5)
			end
			down(170)
		end,
		h = record_end,
	},
}

hints = {
	phones = { ["1001"] = "SIP/1001", ["1002"] = "SIP/1002" },
}
