-- extensions.lua of tests/sip/tlsonly.sh: phones dial each other (1XXX);
-- after Dial, "NUMBER DIALSTATUS" is appended to the file named by
-- PX_SIP_TEST_DIALSTATUS.

local status_file = os.getenv("PX_SIP_TEST_DIALSTATUS")

extensions = {
	default = {
		["_1XXX"] = function(context, exten)
			app.dial("SIP/" .. exten, 5)
			if status_file then
				local f = io.open(status_file, "a")
				if f then
					f:write(exten, " ", tostring(channel.DIALSTATUS:get()), "\n")
					f:close()
				end
			end
		end,
	},
}
