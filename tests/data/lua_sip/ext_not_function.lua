-- an extension that is not a function
extensions = {
	default = {
		["1002"] = "SIP/1002",
	},
}
