-- a context that is not a table
extensions = {
	default = "1002",
}
