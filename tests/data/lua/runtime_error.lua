-- runtime_error.lua: compiles, but fails while it runs at load (line 3).
local t = nil
local n = t.field
extensions = {}
