-- extensions.lua of tests/sip/baresip.sh: the phones call each other by
-- their four-digit numbers (_1XXX rings SIP/<number> for up to 10 s).

extensions = {
	default = {
		["_1XXX"] = function(context, extension)
			app.Dial("SIP/" .. extension, 10)
		end,
	},
}
