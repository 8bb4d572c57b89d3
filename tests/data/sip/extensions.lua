-- extensions.lua of tests/sip/sip.sh: the phones call each other by their
-- four-digit numbers (_1XXX rings SIP/<number> for up to 5 seconds; 1004
-- is never registered). When Dial returns (the call failed; after a hangup
-- the dialplan stops there), the number and DIALSTATUS are appended, as
-- "1002 BUSY", to the file named by the environment variable
-- PX_SIP_TEST_DIALSTATUS, where the test reads how Dial ended. Any other
-- number is not in the dialplan (404).

local status_file = os.getenv("PX_SIP_TEST_DIALSTATUS")

local function dial(context, extension)
	app.dial("SIP/" .. extension, 5)
	if status_file then
		local f = io.open(status_file, "a")
		if f then
			f:write(extension, " ", tostring(channel.DIALSTATUS:get()), "\n")
			f:close()
		end
	end
end

extensions = {
	default = {
		["_1XXX"] = dial,
	},
}
