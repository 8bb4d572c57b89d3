#!/bin/bash
# SIP over TLS: a real plexusd (chan_sip, res_registrar, pbx_lua, app_dial)
# with a TLS listener whose self-signed certificate comes from
# scripts/make-tls-cert (what the quickstart uses), tests/data/sip_tls.
# Debian's SIPp has no TLS, so the TLS peers are tests/sip/siptls.py
# (Python's ssl module); UDP peers are SIPp.
#
# The listener: "sip show settings" says TLS is on; a handshake capped at
# TLS 1.1 is refused and TLS 1.2 accepted. Phones: 1002 registers over TLS
# (its contact is reached again over TLS), 1001 calls 1002 over TLS (both
# legs TLS: INVITE, 401, INVITE with credentials, 180, 200, ACK, BYE), and
# a SIPp phone on UDP calls the TLS phone. Trunk: trunkT registers with a
# carrier on 127.0.0.5 over TLS (401, credentials, 200, refresh), Via and
# Contact say TLS. Reload and restart of the module: "module reload
# chan_sip" keeps TLS working, unload + load binds it again. Bad input: a
# reload naming an empty certificate directory keeps the running TLS and
# names the file; a start without a usable certificate names it, runs
# without TLS (nothing listens there) and UDP keeps working; so does a
# start whose TLS port is taken. Every check prints "ok N".

. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/sip/siplib.sh"

SECRET_1001=test-secret-1001
SECRET_1002=test-secret-1002
. "$top_srcdir/tests/sip/tlslib.sh"

# ---------------------------------------------------------------- set-up

setup() {
	D=$TMP/etc
	mkdir -p "$TLS_LOG"
	cp "$top_srcdir/tests/sip/siptls.py" "$SIPTLS"
	sip_ports
	TLS_PORT=$((PORT_BASE + 1))
	PORT_T=$((PORT_BASE + 300))
	SLOT_END=$((PORT_BASE + 300))
	if ! out=$("$top_srcdir/scripts/make-tls-cert" "$D/tls" 2>&1) || [ ! -s "$D/tls/agent.pem" ]; then
		fail "scripts/make-tls-cert makes a certificate" "agent.pem and cafile.pem in $D/tls" "got:" "$out"
	fi
	pass "scripts/make-tls-cert makes a self-signed certificate (agent.pem, cafile.pem)"
	local sum
	sum=$(md5sum <"$D/tls/agent.pem")
	"$top_srcdir/scripts/make-tls-cert" "$D/tls" >/dev/null 2>&1
	[ "$(md5sum <"$D/tls/agent.pem")" = "$sum" ] ||
		fail "make-tls-cert leaves an existing certificate alone" "agent.pem unchanged"
	pass "make-tls-cert leaves an existing certificate alone"
	make_module_dir "$TMP/modules" chan_sip res_registrar pbx_lua app_dial codec_ulaw codec_alaw
	write_plexus_conf "$D" "$TMP/modules" 3
	write_modules_conf "$D" "autoload = yes" "require = res_registrar" "require = pbx_lua" \
		"require = app_dial"
	sed -e "s|@SIP_PORT@|$SIP_PORT|" -e "s|@TLS_PORT@|$TLS_PORT|" -e "s|@PORT_T@|$PORT_T|" \
		-e "s|@TLS_DIR@|$D/tls|" "$TLS_DATA/sip.conf" >"$D/sip.conf"
	cp "$TLS_DATA/extensions.lua" "$TLS_DATA/lua.conf" "$D/"
	write_rtp_conf "$D" "$RTP_START" "$RTP_END"
	sip_make_tone
	: >"$DIALSTATUS_FILE"
	export PX_SIP_TEST_DIALSTATUS=$DIALSTATUS_FILE
	# The carrier listens before plexusd registers: 401, then three grants.
	tls_start carrier registrar 127.0.0.5 "$PORT_T" "$D/tls/agent.pem" acct-t trunk-secret-t \
		carrier-t.test 2 3
	start_daemon "$D"
	check_cmd "sip show settings: TLS is on at the TLS port" 'sip show settings' 0 \
		"^ TLS: +on, 127\.0\.0\.1:$TLS_PORT, certificates in $D/tls, verify peer no$"
}

# ---------------------------------------------------------------- the listener

test_versions() {
	tls_probe 1.2
	[ "$TLS_RC" = 0 ] || fail "a TLS 1.2 handshake succeeds" "status 0" "got ($TLS_RC):" "$PROBE_OUT"
	pass "a TLS 1.2 handshake succeeds ($PROBE_OUT)"
	tls_probe 1.1
	[ "$TLS_RC" = 1 ] || fail "a handshake capped at TLS 1.1 is refused" "status 1" "got ($TLS_RC):" "$PROBE_OUT"
	pass "a handshake capped at TLS 1.1 is refused"
}

# ---------------------------------------------------------------- phones

test_phones() {
	tls_start phone_1002 phone 127.0.0.1 "$TLS_PORT" 1002 "$SECRET_1002" answer
	wait_tls_contact phone_1002 1002 10 ||
		tls_fail "1002 registers over TLS" "a contact 'via tls:127.0.0.1:PORT' in 'sip show endpoint 1002'" phone_1002
	pass "1002 registers over TLS ($(printf '%s\n' "$PX_OUT" | grep 'via tls' | tr -s ' '))"
	tls_start call_1001 phone 127.0.0.1 "$TLS_PORT" 1001 "$SECRET_1001" call 1002
	expect_tls_ok "1001 calls 1002, both over TLS: answered, ACK, BYE" 20 call_1001 phone_1002
	expect_tls_line "1001's INVITE was challenged (401) and then answered" call_1001 '^<<< SIP/2.0 200 OK'
	expect_tls_line "the INVITE to 1002 comes over TLS on its registration's connection" phone_1002 \
		'^<<< INVITE sip:1002@127\.0\.0\.1:[0-9]+;transport=tls SIP/2\.0$'
	expect_tls_line "plexusd's Via toward 1002 says TLS" phone_1002 '^    Via: SIP/2\.0/TLS 127\.0\.0\.1:'
	expect_idle "after the TLS call no channel is left"

	tls_start phone_1002b phone 127.0.0.1 "$TLS_PORT" 1002 "$SECRET_1002" answer
	wait_tls_contact phone_1002b 1002 10 || tls_fail "1002 registers over TLS again" "a TLS contact" phone_1002b
	sipp_start udp_1001 - uac_call.xml -s 1002 -key caller 1001 -au 1001 -ap "$SECRET_1001" -d 1000
	expect_sipp_ok "a SIPp phone on UDP calls the TLS phone 1002" udp_1001
	pass "a SIPp phone on UDP calls the TLS phone 1002: answered, BYE"
	expect_tls_ok "the TLS phone 1002 answered the UDP caller and got the BYE" 15 phone_1002b
	expect_idle "after the UDP-to-TLS call no channel is left"
}

# ---------------------------------------------------------------- trunk

test_trunk() {
	local i
	# Registered while the carrier still runs (it leaves after three grants).
	for ((i = 0; i < 100; i++)); do
		px "$SOCK" 'sip show registry'
		printf '%s\n' "$PX_OUT" | grep -Eq '^trunkT .* Registered ' && break
		sleep 0.1
	done
	expect_output "sip show registry: trunkT Registered" '^trunkT +5552000@127\.0\.0\.5 +2 +Registered +200 OK'
	pass "sip show registry: trunkT Registered over TLS"
	expect_tls_ok "trunkT registered over TLS: 401, credentials, 200, refresh" 20 carrier
	expect_tls_line "the carrier got a TLS connection" carrier '^--- connection from 127\.0\.0\.1:[0-9]+, TLSv1\.[23]$'
	expect_tls_line "the REGISTER's Via says TLS" carrier "^    Via: SIP/2\.0/TLS 127\.0\.0\.1:$TLS_PORT;"
	expect_tls_line "the REGISTER's Contact is the DID at our TLS address" carrier \
		"^    Contact: <sips?:5552000@127\.0\.0\.1:$TLS_PORT(;transport=tls)?>$"
	expect_tls_line "the carrier checked the digest of acct-t and granted the refresh" carrier '^--- granted 3 of 3$'
}

# ---------------------------------------------------------------- reload, unload, load

test_reload() {
	local mark
	check_cmd "module reload chan_sip" 'module reload chan_sip' 0 'Reloaded chan_sip'
	tls_probe 1.2
	[ "$TLS_RC" = 0 ] || fail "TLS answers after the reload" "status 0" "got:" "$PROBE_OUT"
	pass "TLS answers after the reload"
	tls_start phone_reload phone 127.0.0.1 "$TLS_PORT" 1002 "$SECRET_1002" answer
	wait_tls_contact phone_reload 1002 10 || tls_fail "1002 registers over TLS after the reload" "a TLS contact" phone_reload
	pass "1002 registers over TLS after the reload"
	kill -TERM "${TLS_PIDS[phone_reload]}" 2>/dev/null
	tls_wait phone_reload 5

	# A reload whose certificate directory is empty: named, the running TLS kept.
	mkdir -p "$D/empty"
	cp "$D/sip.conf" "$D/sip.conf.good"
	sed -i "s|^tls_cert_dir = .*|tls_cert_dir = $D/empty|" "$D/sip.conf"
	mark=$(log_mark "$D/plexus.log")
	check_cmd "a reload naming an empty certificate directory is taken" 'module reload chan_sip' 0
	if ! wait_for_log "$D/plexus.log" "$mark" "tls_cert_dir: $D/empty/agent\.pem: cannot read the certificate and key" 5; then
		fail "the missing agent.pem is named" "an error naming $D/empty/agent.pem" "got:" "$(log_since "$D/plexus.log" "$mark")"
	fi
	pass "the missing certificate is named ($D/empty/agent.pem)"
	wait_for_log "$D/plexus.log" "$mark" "tls_\* changes take effect when chan_sip is loaded again.*TLS on" 5 ||
		fail "the reload says the listeners stay" "a warning" "got:" "$(log_since "$D/plexus.log" "$mark")"
	pass "the reload says the TLS listener stays as it is until chan_sip is loaded again"
	tls_probe 1.2
	[ "$TLS_RC" = 0 ] || fail "TLS still answers" "status 0" "got:" "$PROBE_OUT"
	pass "TLS still answers after the bad reload"
	cp "$D/sip.conf.good" "$D/sip.conf"

	check_cmd "module unload chan_sip" 'module unload chan_sip' 0 'Unloaded chan_sip'
	tls_probe 1.2
	[ "$TLS_RC" = 1 ] || fail "nothing listens on TLS after the unload" "status 1" "got:" "$PROBE_OUT"
	pass "nothing listens on TLS after the unload"
	check_cmd "module load chan_sip" 'module load chan_sip' 0 'Loaded chan_sip'
	tls_probe 1.2
	[ "$TLS_RC" = 0 ] || fail "TLS answers after loading chan_sip again" "status 0" "got:" "$PROBE_OUT"
	pass "TLS answers after loading chan_sip again"
	check_cmd "sip show settings: TLS on again" 'sip show settings' 0 "^ TLS: +on, "
}

# ---------------------------------------------------------------- a bad certificate at start

test_bad_cert() {
	if ! stop_daemon "$DAEMON_PID" 10 || [ "$EXIT_STATUS" != 0 ]; then
		fail "plexusd stops with status 0" "got: ${EXIT_STATUS:-(still running)}"
	fi
	pass "plexusd (with TLS) stops with status 0"
	# A certificate file that is not PEM.
	mkdir -p "$D/bad"
	echo "not a certificate" >"$D/bad/agent.pem"
	sed -i "s|^tls_cert_dir = .*|tls_cert_dir = $D/bad|" "$D/sip.conf"
	local line mark
	line=$(grep -n '^tls_cert_dir' "$D/sip.conf" | cut -d: -f1)
	mark=$(log_mark "$D/plexus.log")
	start_daemon "$D"
	if ! log_since "$D/plexus.log" "$mark" | grep -q "sip.conf:$line: tls_cert_dir: $D/bad/agent.pem: no usable certificate (PEM).*TLS is off, UDP and TCP are not affected"; then
		fail "a certificate that is not PEM is named by file" "sip.conf:$line: tls_cert_dir: $D/bad/agent.pem: no usable certificate" \
			"got:" "$(log_since "$D/plexus.log" "$mark")"
	fi
	pass "the unusable certificate is named (sip.conf:$line, $D/bad/agent.pem)"
	check_cmd "sip show settings: TLS off, and why" 'sip show settings' 0 \
		"^ TLS: +off: $D/bad/agent\.pem: no usable certificate"
	tls_probe 1.2
	[ "$TLS_RC" = 1 ] || fail "nothing listens on TLS" "status 1" "got:" "$PROBE_OUT"
	pass "nothing listens on TLS"
	sipp_run reg_udp - register.xml -s 1001 -au 1001 -ap "$SECRET_1001" -key expires 3600
	[ "$SIPP_RC" = 0 ] || sipp_fail "1001 registers over UDP" "status 0" reg_udp
	pass "UDP keeps working: 1001 registers over UDP"

	# A TLS address that cannot be bound: TLS off, the rest starts.
	if ! stop_daemon "$DAEMON_PID" 10 || [ "$EXIT_STATUS" != 0 ]; then
		fail "plexusd stops with status 0" "got: ${EXIT_STATUS:-(still running)}"
	fi
	sed -i "s|^tls_cert_dir = .*|tls_cert_dir = $D/tls|" "$D/sip.conf"
	"$PYTHON" -c 'import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAITs of the last run
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(1)
time.sleep(30)' "$TLS_PORT" "$TMP" &
	local blocker=$! i hex
	track_pid "$blocker"
	hex=$(printf '0100007F:%04X' "$TLS_PORT")
	for ((i = 0; i < 100; i++)); do
		grep -q "^ *[0-9]*: $hex 00000000:0000 0A " /proc/net/tcp && break
		sleep 0.05
	done
	grep -q "^ *[0-9]*: $hex 00000000:0000 0A " /proc/net/tcp ||
		fail "a stand-in listens on the TLS port" "a listener on 127.0.0.1:$TLS_PORT"
	mark=$(log_mark "$D/plexus.log")
	start_daemon "$D"
	log_since "$D/plexus.log" "$mark" | grep -q "cannot listen for TLS on 127\.0\.0\.1:$TLS_PORT: Address already in use; TLS is off, UDP and TCP are not affected" ||
		fail "a TLS port in use is named" "an error naming 127.0.0.1:$TLS_PORT" "got:" "$(log_since "$D/plexus.log" "$mark")"
	pass "a TLS port in use is named, and plexusd starts without TLS"
	check_cmd "sip show settings: TLS off, not listening" 'sip show settings' 0 \
		"^ TLS: +off: not listening on 127\.0\.0\.1:$TLS_PORT \(see the log\)$"
	sipp_run reg_udp2 - register.xml -s 1001 -au 1001 -ap "$SECRET_1001" -key expires 3600
	[ "$SIPP_RC" = 0 ] || sipp_fail "1001 registers over UDP" "status 0" reg_udp2
	pass "UDP works with the TLS port taken"
	kill "$blocker" 2>/dev/null
	wait_exit "$blocker" 5
}

setup
test_trunk
test_versions
test_phones
test_reload
test_bad_cert
if ! stop_daemon "$DAEMON_PID" 10 || [ "$EXIT_STATUS" != 0 ]; then
	fail "plexusd stops with status 0" "got: ${EXIT_STATUS:-(still running)}"
fi
pass "plexusd stops with status 0"
finish
