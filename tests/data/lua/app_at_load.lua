-- app_at_load.lua: calls an application at the top level, where there is no
-- channel (line 3).
app.TestApp("at load")
extensions = {}
