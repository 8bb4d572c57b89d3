#!/bin/bash
# sip.conf errors: a broken line in sip.conf is named by file:line and
# loses nothing. At start, chan_sip refuses to load with one log line
# naming sip.conf and the line of the unknown codec, and plexusd carries on
# (the module is not required). With the line fixed, "module load chan_sip"
# works and lists the endpoints. Broken again (an endpoint without secret),
# "module reload chan_sip" fails, the log names the file and line of that
# endpoint, and the running endpoints are kept. Every check prints "ok N".

. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

d=$TMP/sipconf
port=$(free_port_block 4) || fail "a free port for SIP" "expected one" "got none"
make_module_dir "$d/modules" chan_sip res_registrar pbx_lua app_dial res_db
write_plexus_conf "$d" "$d/modules"
write_modules_conf "$d" "autoload = yes"
printf 'extensions = { default = {} }\n' >"$d/extensions.lua"
printf '[general]\nrtpstart = %d\nrtpend = %d\n' $((port + 100)) $((port + 140)) >"$d/rtp.conf"

# write_sip_conf BROKEN: BROKEN is codec, secret or none.
write_sip_conf() {
	{
		echo "[general]"
		echo "bind = 127.0.0.1:$port"
		echo "[phone](!)"
		echo "type = endpoint"
		if [ "$1" = codec ]; then
			echo "allow = ulaw,speex99" # line 5
		else
			echo "allow = ulaw"
		fi
		echo "[1001](phone)"
		echo "secret = s1001"
		echo "[1002](phone)" # line 8
		if [ "$1" != secret ]; then
			echo "secret = s1002"
		fi
	} >"$d/sip.conf"
}

write_sip_conf codec
start_daemon "$d"
check_answers "plexusd runs although sip.conf is broken"
if ! grep -q "chan_sip: .*sip.conf:5: allow: unknown codec 'speex99'" "$d/plexus.log"; then
	fail "the unknown codec is named by file:line" "expected: sip.conf:5: allow: unknown codec 'speex99'" \
		"got:" "$(grep chan_sip "$d/plexus.log")"
fi
pass "the unknown codec is named by sip.conf:5"
check_cmd "chan_sip is not loaded" 'module show like chan_sip' 0 '^0 modules loaded$'

write_sip_conf none
check_cmd "with the line fixed, chan_sip loads" 'module load chan_sip' 0 '^Loaded chan_sip$'
check_cmd "its endpoints are there" 'sip show endpoints' 0 '^2 endpoints$'

write_sip_conf secret
mark=$(log_mark "$d/plexus.log")
check_cmd "a reload of a broken sip.conf fails" 'module reload chan_sip' 1 'reload failed'
if ! log_since "$d/plexus.log" "$mark" | grep -q "sip.conf:8: endpoint 1002 has no secret"; then
	fail "the endpoint without secret is named by file:line" \
		"expected: sip.conf:8: endpoint 1002 has no secret" "got:" "$(log_since "$d/plexus.log" "$mark")"
fi
pass "the endpoint without secret is named by sip.conf:8"
check_cmd "the running endpoints are kept" 'sip show endpoints' 0 '^2 endpoints$'

if ! stop_daemon "$DAEMON_PID" 5 || [ "$EXIT_STATUS" != 0 ]; then
	fail "plexusd stops with status 0" "got: ${EXIT_STATUS:-(still running)}"
fi
pass "plexusd stops with status 0"
finish
