-- extensions.lua of tests/sip/trunk.sh. Calls from the carriers enter
-- from-trunk with the DID: 5551000 rings the phone 1002. Phones dial
-- 0NUMBER out through trunkA, 8NUMBER through trunkA then trunkB (Dial's
-- routes), 7NUMBER through trunkQ then trunkB (plexus.dial_trunk_group).
-- After Dial, "NUMBER DIALSTATUS" is appended to the file named by
-- PX_SIP_TEST_DIALSTATUS. The DID 5551001 is forwarded out through
-- trunkB; it first logs what REDIRECTING() says about the call.

local status_file = os.getenv("PX_SIP_TEST_DIALSTATUS")

local function log_status(number, status)
	if status_file then
		local f = io.open(status_file, "a")
		if f then
			f:write(number, " ", tostring(status), "\n")
			f:close()
		end
	end
end

extensions = {
	["from-trunk"] = {
		["5551000"] = function(context, exten)
			app.dial("SIP/1002", 5)
			log_status(exten, channel.DIALSTATUS:get())
		end,
		["5551001"] = function(context, exten)
			local function redirecting(what)
				log_status(what, channel["REDIRECTING(from-num)"]:get() .. " " ..
					channel["REDIRECTING(reason)"]:get() .. " " ..
					channel["REDIRECTING(count)"]:get() .. " " ..
					channel["REDIRECTING(from-name)"]:get() .. "|")
			end
			redirecting("redirecting")
			-- Without the Diversion, REDIRECTING reads History-Info.
			local div = channel.SIP_DIVERSION:get()
			channel.SIP_DIVERSION:set("")
			redirecting("history-info")
			channel.SIP_DIVERSION:set(div)
			app.dial("SIP/trunkB/15553334444", 10)
		end,
	},
	default = {
		["_1XXX"] = function(context, exten)
			app.dial("SIP/" .. exten, 5)
			log_status(exten, channel.DIALSTATUS:get())
		end,
		["_0X."] = function(context, exten)
			local n = plexus.e164(exten:sub(2), { country = "1", national_prefix = "1" })
			app.dial("SIP/trunkA/" .. n, 10)
			log_status(n, channel.DIALSTATUS:get())
		end,
		["_8X."] = function(context, exten)
			local n = exten:sub(2)
			app.dial("SIP/trunkA/" .. n .. "&SIP/trunkB/" .. n, 10)
			log_status(n, channel.DIALSTATUS:get())
		end,
		["_7X."] = function(context, exten)
			local n = exten:sub(2)
			local r = plexus.dial_trunk_group{ "trunkQ", "trunkB", number = n, timeout = 10 }
			log_status(n, r.status)
		end,
	},
}
