-- extensions.lua: the sample dialplan, in the layout of Asterisk's pbx_lua.
-- The dialplan engine (pbx_lua) arrives with the first-call issue; this file
-- is installed beside the configuration so that it has a home from the start.

extensions = {
	default = {
	},
}

hints = {
}
