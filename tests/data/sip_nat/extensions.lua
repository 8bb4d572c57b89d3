-- extensions.lua of tests/sip/nat.sh: phones dial 0NUMBER out through
-- trunkIn (inside local_net) and 9NUMBER through trunkOut (outside); a
-- call from a carrier to the DID 5551000 rings the phone 1002.

extensions = {
	["from-trunk"] = {
		["5551000"] = function()
			app.dial("SIP/1002", 5)
		end,
	},
	default = {
		["_0X."] = function(context, exten)
			app.dial("SIP/trunkIn/" .. exten:sub(2), 10)
		end,
		["_9X."] = function(context, exten)
			app.dial("SIP/trunkOut/" .. exten:sub(2), 10)
		end,
	},
}
