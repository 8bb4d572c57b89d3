-- defines no extensions table
routes = {}
