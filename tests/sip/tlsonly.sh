#!/bin/bash
# Endpoints held to transports ("transport = tls", "transport = tcp,tls")
# against a real plexusd (chan_sip, res_registrar, pbx_lua, app_dial) with
# a TLS listener, tests/data/sip_tlsonly. TLS peers are siptls.py (Python's
# ssl module; with --tcp it talks plain TCP), UDP and TCP peers SIPp; the
# events come from the real "plexus -e".
#
# The setting: "sip show endpoint" shows it; an unknown transport is a
# configuration error named by file:line. A TLS-only endpoint (1003): a
# REGISTER without credentials over UDP gets the same 401 as an unknown
# user; with the right password over UDP or TCP it gets 403 and a
# SecurityEvent "transport not allowed" (a wrong password: the same 403);
# over TLS 200. A call to it goes over TLS on its registration's
# connection; a call from it over UDP is refused 403 with a SecurityEvent.
# A contact it registered over UDP while allowed (reload) is not rung once
# TLS only is configured again. 1004 (tcp,tls) registers over TCP. The
# transport of a binding is the connection's: a TCP peer whose Via says
# TLS is never taken for TLS. tls_min_version: with 1.2 clients capped at
# 1.2 and clients of 1.3 are accepted; with 1.3 (after unload + load) a
# client capped at 1.2 is refused and 1.3 accepted; a bad value is a
# configuration error named by file:line. A TLS phone whose connection
# closed stays registered; the first call to it marks the connection gone
# (logged), later calls skip it at once until it registers again. Every
# check prints "ok N".

. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/sip/siplib.sh"

SECRET_1001=test-secret-1001
SECRET_1003=test-secret-1003
SECRET_1004=test-secret-1004
. "$top_srcdir/tests/sip/tlslib.sh"
EVCHECK=$top_srcdir/tests/sip/evcheck.py
EVENTS=$TMP/events.jsonl

# mark: the number of events recorded so far (checks look after it).
mark() {
	MARK=$(wc -l <"$EVENTS")
}

# expect_event DESCRIPTION SECONDS KEY=VALUE...: an event after MARK matches.
expect_event() {
	local what=$1 secs=$2 out
	shift 2
	if ! out=$("$PYTHON" "$EVCHECK" "$EVENTS" "$MARK" wait "$secs" "$@"); then
		fail "$what" "$out"
	fi
	pass "$what"
}

# write_sip_conf: sip.conf from the test's template.
write_sip_conf() {
	sed -e "s|@SIP_PORT@|$SIP_PORT|" -e "s|@TLS_PORT@|$TLS_PORT|" \
		-e "s|@TLS_DIR@|$D/tls|" "$TLS_DATA_ONLY/sip.conf" >"$D/sip.conf"
}

start_events() {
	"$PLEXUS" -s "$SOCK" -e >"$EVENTS" 2>"$TMP/events.err" &
	EVENTS_PID=$!
	track_pid "$EVENTS_PID"
	wait_for_log "$TMP/events.err" 0 'streaming events' 5 ||
		fail "plexus -e subscribes" "'streaming events' on its stderr" "got:" "$(cat "$TMP/events.err")"
}

# ---------------------------------------------------------------- set-up

setup() {
	D=$TMP/etc
	TLS_DATA_ONLY=$top_srcdir/tests/data/sip_tlsonly
	mkdir -p "$TLS_LOG"
	cp "$top_srcdir/tests/sip/siptls.py" "$SIPTLS"
	sip_ports
	TLS_PORT=$((PORT_BASE + 1))
	"$top_srcdir/scripts/make-tls-cert" "$D/tls" >/dev/null 2>&1 ||
		fail "scripts/make-tls-cert makes a certificate" "agent.pem in $D/tls"
	sip_write_modules
	write_sip_conf
	cp "$TLS_DATA_ONLY/extensions.lua" "$TLS_DATA_ONLY/lua.conf" "$D/"
	write_rtp_conf "$D" "$RTP_START" "$RTP_END"
	sip_make_tone
	: >"$DIALSTATUS_FILE"
	export PX_SIP_TEST_DIALSTATUS=$DIALSTATUS_FILE
	start_daemon "$D"
	start_events
	check_cmd "sip show settings: TLS is on" 'sip show settings' 0 "^ TLS: +on, 127\.0\.0\.1:$TLS_PORT,"
}

# ---------------------------------------------------------------- tls_min_version

# expect_probe DESCRIPTION MAXVER STATUS: a handshake capped at MAXVER
# ends with STATUS (0 accepted, 1 refused).
expect_probe() {
	tls_probe "$2"
	[ "$TLS_RC" = "$3" ] || fail "$1" "status $3" "got ($TLS_RC):" "$PROBE_OUT"
	pass "$1 ($PROBE_OUT)"
}

test_min_version() {
	local line mark
	check_cmd "sip show settings: TLS 1.2 and later" 'sip show settings' 0 '^ TLS versions: +1\.2 and later$'
	expect_probe "tls_min_version 1.2: a client capped at TLS 1.2 is accepted" 1.2 0
	expect_probe "tls_min_version 1.2: a TLS 1.3 client is accepted" 1.3 0
	expect_probe "tls_min_version 1.2: a client capped at TLS 1.1 is refused" 1.1 1

	sed -i 's/^tls_min_version = .*/tls_min_version = 1.1/' "$D/sip.conf"
	line=$(grep -n '^tls_min_version' "$D/sip.conf" | cut -d: -f1)
	mark=$(log_mark "$D/plexus.log")
	check_cmd "a reload with tls_min_version = 1.1 is refused" 'module reload chan_sip' 1 \
		'reload failed; it keeps its running configuration'
	wait_for_log "$D/plexus.log" "$mark" "sip\.conf:$line: tls_min_version: '1\.1' is not 1\.2 or 1\.3" 5 ||
		fail "the bad tls_min_version is named by file:line" "sip.conf:$line: tls_min_version: '1.1' is not 1.2 or 1.3" \
			"got:" "$(log_since "$D/plexus.log" "$mark")"
	pass "the bad tls_min_version is named by file:line (sip.conf:$line)"

	sed -i 's/^tls_min_version = .*/tls_min_version = 1.3/' "$D/sip.conf"
	mark=$(log_mark "$D/plexus.log")
	check_cmd "a reload with tls_min_version = 1.3 is taken" 'module reload chan_sip' 0
	wait_for_log "$D/plexus.log" "$mark" "tls_\* changes take effect when chan_sip is loaded again" 5 ||
		fail "the reload says the listener keeps its floor" "a warning" "got:" "$(log_since "$D/plexus.log" "$mark")"
	pass "the reload says the running listener keeps its floor until chan_sip is loaded again"
	expect_probe "until then a client capped at TLS 1.2 is still accepted" 1.2 0
	check_cmd "module unload chan_sip" 'module unload chan_sip' 0 'Unloaded chan_sip'
	check_cmd "module load chan_sip" 'module load chan_sip' 0 'Loaded chan_sip'
	check_cmd "sip show settings: TLS 1.3 and later" 'sip show settings' 0 '^ TLS versions: +1\.3 and later$'
	expect_probe "tls_min_version 1.3: a client capped at TLS 1.2 is refused" 1.2 1
	expect_probe "tls_min_version 1.3: a TLS 1.3 client is accepted" 1.3 0
	tls_start phone_13 phone 127.0.0.1 "$TLS_PORT" 1004 "$SECRET_1004" register 5
	expect_tls_ok "1004 registers over TLS 1.3" 10 phone_13
	expect_tls_line "the phone's connection is TLS 1.3" phone_13 '^--- connected from 127\.0\.0\.1:[0-9]+, TLSv1\.3$'

	sed -i 's/^tls_min_version = .*/tls_min_version = 1.2/' "$D/sip.conf"
	check_cmd "module unload chan_sip" 'module unload chan_sip' 0 'Unloaded chan_sip'
	check_cmd "module load chan_sip (tls_min_version 1.2 again)" 'module load chan_sip' 0 'Loaded chan_sip'
	expect_probe "tls_min_version 1.2 again: a client capped at TLS 1.2 is accepted" 1.2 0
}

# ---------------------------------------------------------------- the setting

test_setting() {
	check_cmd "sip show endpoint 1003: transport tls" 'sip show endpoint 1003' 0 '^ Transport: +tls$'
	check_cmd "sip show endpoint 1004: transport tcp, tls" 'sip show endpoint 1004' 0 \
		'^ Transport: +tcp, tls$'
	check_cmd "sip show endpoint 1001: any transport" 'sip show endpoint 1001' 0 \
		'^ Transport: +any \(udp, tcp, tls\)$'

	# An unknown transport: the reload is refused, named by file:line, and
	# the running configuration stays.
	local line mark
	cp "$D/sip.conf" "$D/sip.conf.good"
	sed -i 's/^transport = tcp, tls$/transport = tcp, sctp/' "$D/sip.conf"
	line=$(grep -n '^transport = tcp, sctp' "$D/sip.conf" | cut -d: -f1)
	mark=$(log_mark "$D/plexus.log")
	check_cmd "a reload with 'transport = tcp, sctp' is refused" 'module reload chan_sip' 1 \
		'reload failed; it keeps its running configuration'
	wait_for_log "$D/plexus.log" "$mark" "sip\.conf:$line: transport: unknown transport 'sctp' \(udp, tcp, tls\)" 5 ||
		fail "the unknown transport is named by file:line" "sip.conf:$line: transport: unknown transport 'sctp'" \
			"got:" "$(log_since "$D/plexus.log" "$mark")"
	pass "the unknown transport is named by file:line (sip.conf:$line)"
	check_cmd "the running setting stays" 'sip show endpoint 1004' 0 '^ Transport: +tcp, tls$'
	cp "$D/sip.conf.good" "$D/sip.conf"
}

# ---------------------------------------------------------------- a TLS-only endpoint

# register_raw USER: a REGISTER without credentials over UDP (sipraw.py).
register_raw() {
	cat >"$TMP/register_$1.sip" <<EOF2
REGISTER sip:127.0.0.1:{sip_port} SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch={branch}
Max-Forwards: 70
From: <sip:$1@127.0.0.1:{sip_port}>;tag={tag}
To: <sip:$1@127.0.0.1:{sip_port}>
Call-ID: {call_id}
CSeq: 1 REGISTER
Contact: <sip:$1@127.0.0.1:{local_port}>
Expires: 3600
Content-Length: 0

EOF2
	sip_raw "$TMP/register_$1.sip"
}

# challenge_shape: the statuses and WWW-Authenticate of RAW_OUT, nonce and
# opaque blanked (they differ every time by design).
challenge_shape() {
	printf '%s\n' "$RAW_OUT" | grep -E '^<<< |WWW-Authenticate' |
		sed -E 's/(nonce|opaque)="[^"]*"/\1=""/g'
}

test_tls_only() {
	local shape_1003 shape_9999 shape_1001 port
	# No user enumeration: the same challenge for the TLS-only user, an
	# unknown user and an ordinary one.
	register_raw 1003
	shape_1003=$(challenge_shape)
	register_raw 9999
	shape_9999=$(challenge_shape)
	register_raw 1001
	shape_1001=$(challenge_shape)
	printf '%s\n' "$shape_1003" | grep -q '^<<< SIP/2.0 401 ' ||
		fail "a REGISTER of 1003 over UDP without credentials is challenged" "401" "got:" "$RAW_OUT"
	[ "$shape_1003" = "$shape_9999" ] && [ "$shape_1003" = "$shape_1001" ] ||
		fail "the TLS-only user, an unknown user and an ordinary one get the same challenge" \
			"the same answers" "1003:" "$shape_1003" "9999:" "$shape_9999" "1001:" "$shape_1001"
	pass "over UDP without credentials, 1003 (TLS only), 9999 (unknown) and 1001 get the same 401"

	port=$((PORT_BASE + 390))
	mark
	sipp_run reg_udp "$port" register_fail.xml -s 1003 -au 1003 -ap "$SECRET_1003" -key expires 3600
	[ "$(final_status reg_udp)" = 403 ] ||
		sipp_fail "1003 registering over UDP with its password gets 403" "401, then 403" reg_udp
	pass "1003 registering over UDP with its password gets 403"
	expect_event "a SecurityEvent 'transport not allowed' names 1003, REGISTER and the UDP source" 5 \
		event=SecurityEvent "reason=transport not allowed" endpoint=1003 method=REGISTER \
		"source=udp:127.0.0.1:$port" service=SIP
	sipp_run reg_wrong "$port" register_fail.xml -s 1003 -au 1003 -ap wrong-password -key expires 3600
	[ "$(final_status reg_wrong)" = 403 ] ||
		sipp_fail "a wrong password over UDP gets the same 403" "401, then 403" reg_wrong
	pass "a wrong password over UDP gets the same 403"

	mark
	sipp_run reg_tcp "$port" register_fail.xml -t t1 -s 1003 -au 1003 -ap "$SECRET_1003" -key expires 3600
	[ "$(final_status reg_tcp)" = 403 ] ||
		sipp_fail "1003 registering over TCP with its password gets 403" "401, then 403" reg_tcp
	pass "1003 registering over TCP with its password gets 403"
	expect_event "a SecurityEvent 'transport not allowed' names the TCP source" 5 \
		event=SecurityEvent "reason=transport not allowed" endpoint=1003 method=REGISTER \
		"source~^tcp:127\.0\.0\.1:[0-9]+$"
	expect_contacts "1003 has no contact after the refused registrations" 1003 0

	# Over TLS: registered, and called over TLS.
	tls_start phone_1003 phone 127.0.0.1 "$TLS_PORT" 1003 "$SECRET_1003" answer
	wait_tls_contact phone_1003 1003 10 ||
		tls_fail "1003 registers over TLS" "a contact 'via tls:127.0.0.1:PORT'" phone_1003
	pass "1003 registers over TLS: 200"
	sipp_start call_to_1003 - uac_call.xml -s 1003 -key caller 1001 -au 1001 -ap "$SECRET_1001" -d 1000
	expect_sipp_ok "1001 on UDP calls 1003: answered, BYE" call_to_1003
	expect_tls_ok "1003 answered over TLS and got the BYE" 15 phone_1003
	expect_tls_line "the INVITE to 1003 came over TLS" phone_1003 \
		'^<<< INVITE sip:1003@127\.0\.0\.1:[0-9]+;transport=tls SIP/2\.0$'
	expect_tls_line "plexusd's Via toward 1003 says TLS" phone_1003 '^    Via: SIP/2\.0/TLS 127\.0\.0\.1:'
	expect_idle "after the call to 1003 no channel is left"

	# A call from 1003 over UDP: 403 after the challenge, and an event.
	mark
	sipp_run call_from_1003 - uac_fail.xml -s 1001 -key caller 1003 -au 1003 -ap "$SECRET_1003" \
		-key pt 0 -key rtpmap "0 PCMU/8000"
	expect_final "1003 calling over UDP is refused with 403" call_from_1003 403
	pass "1003 calling over UDP is refused with 403"
	expect_event "a SecurityEvent 'transport not allowed' names 1003 and INVITE" 5 \
		event=SecurityEvent "reason=transport not allowed" endpoint=1003 method=INVITE \
		"source~^udp:127\.0\.0\.1:"
	expect_idle "the refused call left no channel"
}

# A contact registered over UDP while 1003 allowed any transport is not
# rung once "transport = tls" is back.
test_stale_contact() {
	local mark
	sed -i '/^transport = tls$/d' "$D/sip.conf"
	check_cmd "a reload lets 1003 use any transport" 'module reload chan_sip' 0
	check_cmd "sip show endpoint 1003: any transport" 'sip show endpoint 1003' 0 '^ Transport: +any '
	sipp_run reg_udp_ok "$PORT_1002" register.xml -s 1003 -au 1003 -ap "$SECRET_1003" -key expires 3600
	[ "$SIPP_RC" = 0 ] || sipp_fail "1003 registers over UDP while allowed" "401, 200" reg_udp_ok
	pass "1003 registers over UDP while allowed"
	cp "$D/sip.conf.good" "$D/sip.conf"
	check_cmd "a reload makes 1003 TLS-only again" 'module reload chan_sip' 0
	check_cmd "sip show endpoint 1003: its UDP contact is not called" 'sip show endpoint 1003' 0 \
		"^   sip:1003@127\.0\.0\.1:$PORT_1002 via udp:127\.0\.0\.1:$PORT_1002, .*not called \(transport\)$"
	dialstatus_mark
	sipp_run call_stale - uac_fail.xml -s 1003 -key caller 1001 -au 1001 -ap "$SECRET_1001" \
		-key pt 0 -key rtpmap "0 PCMU/8000"
	expect_dialstatus "a call to 1003 does not ring the UDP contact: CHANUNAVAIL" "1003 CHANUNAVAIL"
}

# ---------------------------------------------------------------- TCP and TLS

test_tcp() {
	tls_start tcp_1004 --tcp phone 127.0.0.1 "$SIP_PORT" 1004 "$SECRET_1004" register 5
	expect_tls_ok "1004 (tcp, tls) registers over plain TCP" 10 tcp_1004
	check_cmd "its contact is recorded as TCP" 'sip show endpoint 1004' 0 \
		'^   sip:1004@127\.0\.0\.1:[0-9]+;transport=tcp via tcp:127\.0\.0\.1:[0-9]+, '
}

# liar_port NAME: the local port the siptls.py run NAME talked from.
liar_port() {
	sed -n 's/^--- connected from 127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$TLS_LOG/$1.out"
}

# expect_no_contact_from DESCRIPTION ENDPOINT PORT: no contact of ENDPOINT
# was registered from that port.
expect_no_contact_from() {
	px "$SOCK" "sip show endpoint $2"
	[ -n "$3" ] || fail "$1" "the liar's port" "got none"
	if printf '%s\n' "$PX_OUT" | grep -q " via [a-z]*:127\.0\.0\.1:$3,"; then
		fail "$1" "no contact registered from port $3" "got:" "$PX_OUT"
	fi
	pass "$1"
}

# A peer on plain TCP whose Via claims TLS: sofia-sip's transaction layer
# compares the Via with the transport the request came on and drops the
# request, so nothing answers and nothing is stored as TLS.
test_lying_via() {
	local mark
	mark=$(log_mark "$D/plexus.log")
	tls_start liar_1004 --tcp --via TLS phone 127.0.0.1 "$SIP_PORT" 1004 "$SECRET_1004" register 3
	tls_wait liar_1004 10
	TLS_RC_OF[liar_1004]=$TLS_RC
	[ "$TLS_RC" = 2 ] || tls_fail "a TCP peer whose Via says TLS gets no answer" \
		"no answer within 3 s (status 2)" liar_1004
	pass "a TCP peer whose Via says TLS gets no answer (the request is dropped)"
	expect_no_contact_from "nothing is recorded for 1004 from the liar" 1004 "$(liar_port liar_1004)"
	tls_start liar_1003 --tcp --via TLS phone 127.0.0.1 "$SIP_PORT" 1003 "$SECRET_1003" register 3
	tls_wait liar_1003 10
	TLS_RC_OF[liar_1003]=$TLS_RC
	[ "$TLS_RC" = 2 ] || tls_fail "the TLS-only 1003 cannot register on TCP by claiming TLS" \
		"no answer (status 2)" liar_1003
	pass "the TLS-only 1003 gets no answer on TCP claiming TLS"
	expect_no_contact_from "nothing is recorded for 1003 from the liar" 1003 "$(liar_port liar_1003)"
	# And a peer on TLS whose Via says TCP: dropped the same way.
	tls_start liar_tls --via TCP phone 127.0.0.1 "$TLS_PORT" 1001 "$SECRET_1001" register 3
	tls_wait liar_tls 10
	TLS_RC_OF[liar_tls]=$TLS_RC
	[ "$TLS_RC" = 2 ] || tls_fail "a TLS peer whose Via says TCP gets no answer" "status 2" liar_tls
	pass "a TLS peer whose Via says TCP gets no answer either"
	expect_no_contact_from "nothing is recorded for 1001 from that peer" 1001 "$(liar_port liar_tls)"
	check_answers "plexusd still answers after the liars"
}

# A TLS phone whose connection closed stays registered. The first call
# to it tries the old connection's address (refused at once on loopback)
# and marks the flow gone, with a log line; the next call does not try at
# all (CHANUNAVAIL at once); a new registration makes it callable again.
test_gone_flow() {
	local mark port
	tls_start gone_1003 phone 127.0.0.1 "$TLS_PORT" 1003 "$SECRET_1003" register 5
	expect_tls_ok "1003 registers over TLS and closes its connection" 10 gone_1003
	port=$(liar_port gone_1003)
	expect_contacts "1003 stays registered after its connection closed" 1003 1 \
		"^   sip:1003@127\.0\.0\.1:$port;transport=tls via tls:127\.0\.0\.1:$port, expires in [0-9]+s, $"
	mark=$(log_mark "$D/plexus.log")
	dialstatus_mark
	sipp_run call_gone - uac_fail.xml -s 1003 -key caller 1001 -au 1001 -ap "$SECRET_1001" \
		-key pt 0 -key rtpmap "0 PCMU/8000"
	expect_dialstatus "the first call to 1003 fails on the closed connection: CONGESTION" "1003 CONGESTION"
	wait_for_log "$D/plexus.log" "$mark" \
		"1003's connection sip:127\.0\.0\.1:$port;transport=tls is gone \(503, no answer from it\); it stays registered but is not called until it registers again" 5 ||
		fail "the gone connection is logged" "a notice naming 1003 and sip:127.0.0.1:$port;transport=tls" \
			"got:" "$(log_since "$D/plexus.log" "$mark")"
	pass "the gone connection is logged once, naming the endpoint and the connection"
	check_cmd "sip show endpoint 1003: the contact is not called (connection gone)" 'sip show endpoint 1003' 0 \
		"via tls:127\.0\.0\.1:$port, .*not called \(connection gone\)$"
	mark=$(log_mark "$D/plexus.log")
	dialstatus_mark
	sipp_run call_gone2 - uac_fail.xml -s 1003 -key caller 1001 -au 1001 -ap "$SECRET_1001" \
		-key pt 0 -key rtpmap "0 PCMU/8000"
	expect_dialstatus "the next call does not try it: CHANUNAVAIL" "1003 CHANUNAVAIL"
	wait_for_log "$D/plexus.log" "$mark" "1003's contact .* its connection tls:127\.0\.0\.1:$port is gone; not calling it" 5 ||
		fail "the skipped contact is logged" "a line naming tls:127.0.0.1:$port" "got:" "$(log_since "$D/plexus.log" "$mark")"
	pass "the skipped contact is logged"
	log_since "$D/plexus.log" "$mark" | grep -q "is gone (" &&
		fail "the flow is marked once" "no second 'is gone (' notice" "got:" "$(log_since "$D/plexus.log" "$mark")"
	pass "nothing was sent toward the gone connection (no second failure)"

	tls_start back_1003 phone 127.0.0.1 "$TLS_PORT" 1003 "$SECRET_1003" answer
	wait_tls_contact back_1003 1003 10 || tls_fail "1003 registers again over TLS" "a TLS contact" back_1003
	pass "1003 registers again over a new connection"
	sipp_start call_back - uac_call.xml -s 1003 -key caller 1001 -au 1001 -ap "$SECRET_1001" -d 500
	expect_sipp_ok "1001 calls 1003 again: answered, BYE" call_back
	expect_tls_ok "1003 answered on its new connection" 15 back_1003
	expect_idle "after the call no channel is left"
}

setup
test_min_version
test_setting
test_tls_only
test_stale_contact
test_tcp
test_lying_via
test_gone_flow
if ! stop_daemon "$DAEMON_PID" 10 || [ "$EXIT_STATUS" != 0 ]; then
	fail "plexusd stops with status 0" "got: ${EXIT_STATUS:-(still running)}"
fi
pass "plexusd stops with status 0"
finish
