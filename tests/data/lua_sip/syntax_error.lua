extensions = {
	default = {
		["_7XXX"] = function() app.Dial("SIP/1002", 10) end
	
}
