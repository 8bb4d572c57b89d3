-- bench/dialplans/routing50.lua: the 50-line routing function of the Lua
-- benchmark (bench/lua_bench.c) as a dialplan for bench/run.sh
-- (DIALPLAN=bench/dialplans/routing50.lua). It normalises the number,
-- looks up a country prefix, checks a block list, sets caller ID, account
-- and route variables, and dials; every call ends up at SIP/uas, so the
-- figures compare with the trivial dialplan run.sh writes by default.
local prefixes = { ["0049"] = "de", ["0033"] = "fr", ["0044"] = "uk", ["001"] = "us" }
local trunks = { de = "SIP/uas", fr = "SIP/uas", uk = "SIP/uas", us = "SIP/uas" }
local blocked = { ["0900"] = true, ["0190"] = true }

local function country(num)
	for p, c in pairs(prefixes) do
		if num:sub(1, #p) == p then
			return c
		end
	end
	return nil
end

local function normalize(num)
	num = num:gsub("[^%d+]", "")
	if num:sub(1, 1) == "+" then
		num = "00" .. num:sub(2)
	end
	return num
end

local function route(context, exten)
	local num = normalize(exten)
	if blocked[num:sub(1, 4)] then
		channel.DIALSTATUS = "BLOCKED"
		return
	end
	local cid = channel["CALLERID(num)"]:get()
	if cid == "" then
		channel.CALLERID("num"):set("1000")
	end
	local c = country(num)
	local target
	if c then
		target = trunks[c]
		channel.ROUTE = c
	else
		target = "SIP/uas"
		channel.ROUTE = "default"
	end
	local hour = tonumber(os.date("%H"))
	local open = hour >= 0 and hour < 24
	if not open then
		channel.AFTER_HOURS = "1"
	end
	channel.__ACCOUNT = "acct-" .. (cid ~= "" and cid or "1000")
	app.Dial(target, open and 30 or 15)
	local status = channel.DIALSTATUS:get()
	if status ~= "ANSWER" then
		channel.FAILED = status
	end
end

extensions = { bench = { ["_X."] = route, ["_+X."] = route } }
