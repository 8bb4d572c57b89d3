-- no_extensions.lua: runs fine but defines no `extensions` table.
contexts = {}
