-- ours.lua: the same office with Plexus's own API (plexus.*).
extensions = {
	default = {
		["_100[1-3]"] = function(context, extension)
			local r = plexus.dial{ "SIP/" .. extension, timeout = 5 }
			plexus.db.put("test", "status", r.status .. " " .. r.cause)
			plexus.log.notice("dial to", extension, "ended with", r.status)
		end,
	},
}
