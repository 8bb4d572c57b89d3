-- extensions.lua: the sample dialplan, in the layout of Asterisk's pbx_lua.
-- pbx_lua reads it from the configuration directory at load ("dialplan
-- reload" or "module reload pbx_lua" after an edit; a file with an error is
-- refused with its file:line and the running dialplan stays).
--
-- `extensions` maps each context to its extensions. A key is an extension:
-- literal ("1000", "s") or, after '_', a pattern: X = 0-9, Z = 1-9, N = 2-9,
-- [1-5,7] one of a set, '.' one or more of anything, '!' zero or more.
-- An exact key wins over a pattern, and a more specific pattern over a
-- less specific one. `include = {"other", ...}` searches other contexts
-- after the context's own extensions. "dialplan show" lists the order.
--
-- An extension is a function(context, extension). Inside it:
--   app.Dial("SIP/1001", 30)       runs an application; arguments are
--                                  joined with ',' (Dial("SIP/1001,30"))
--   channel.VAR:get() / :set(v)    channel variables (DIALSTATUS ...)
--   channel.EXTEN:get()            also CHANNEL, UNIQUEID, CONTEXT,
--                                  channel["CALLERID(num)"], ["CALLERID(name)"]
--
-- Special extensions: s (start), i (invalid, after a Goto to an unknown
-- extension), t (timeout), h (after the hangup, with HANGUPCAUSE and
-- DIALSTATUS). Falling off the end of a function ends the call. Plexus's
-- own API (plexus.dial, plexus.channel, plexus.log, plexus.db) and the
-- sandbox (lua.conf) are described in docs/lua.md.
--
-- The file runs once per Lua state, and states are reused from call to
-- call; globals a call sets are seen by that call only.

-- Ring an office phone by its number, for up to 30 seconds.
local function dial_phone(context, extension)
	app.Dial("SIP/" .. extension, 30)
end

-- Numbers of the carrier that reach a phone directly; any other number
-- that comes in rings the reception.
local reception = "1001"
local direct = {
	["4930555001"] = "1001",
	["4930555002"] = "1002",
	["4930555003"] = "1003",
}

extensions = {
	-- The office phones (sip.conf: context = default) call each other by
	-- their four-digit numbers.
	default = {
		["_1XXX"] = dial_phone,
		-- The echo test (# ends it), a message recorded to
		-- record_dir/messages/ (# or 3 s of silence end it), music on hold.
		["600"] = function() app.Echo() end,
		["601"] = function() app.Record("messages/msg-%d.wav,3,120") end,
		["602"] = function() app.MusicOnHold("default") end,
		-- The auto-attendant, to try it from a phone.
		["800"] = function() app.Goto("attendant", "s", 1) end,
		-- Say back what the caller types (ended by #).
		["801"] = function()
			app.Answer()
			app.Read("NUM", "please-enter", 0)
			if channel.READSTATUS:get() == "OK" then
				app.Playback("you-entered")
				app.SayDigits(channel.NUM:get())
			end
			app.Playback("goodbye")
		end,
	},

	-- A classic auto-attendant: the prompt plays while the caller may
	-- press a digit; 1 rings the reception, 2 then a digit a phone
	-- (21 -> 1001 ...), nothing is 't', anything else 'i'.
	attendant = {
		s = function()
			app.Answer()
			app.Background("welcome")
			app.Background("please-enter-extension")
			app.WaitExten(5)
		end,
		["1"] = function() app.Dial("SIP/" .. reception, 30) end,
		["_2X"] = function(context, extension)
			app.Dial("SIP/100" .. extension:sub(2), 30)
		end,
		i = function()
			app.Playback("invalid")
			app.Goto("attendant", "s", 1)
		end,
		t = function()
			app.Playback("goodbye")
			app.Hangup()
		end,
	},

	-- Calls from carriers: a trunk's context points here.
	incoming = {
		["_X."] = function(context, extension)
			app.Dial("SIP/" .. (direct[extension] or reception), 30)
		end,
	},
}

-- Device states for subscriptions (BLF): read, not used yet.
hints = {
	default = {
		["1001"] = "SIP/1001",
		["1002"] = "SIP/1002",
		["1003"] = "SIP/1003",
	},
}
