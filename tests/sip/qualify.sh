#!/bin/bash
# Qualify of endpoints' contacts: a real plexusd (tests/data/sip_qualify)
# where 1002 has "qualify = 1" (500 ms timeout) and 1001 none, SIPp phones.
#
# 1002 registers; a SIPp phone on its contact answers three OPTIONS:
# "sip show endpoints" and "sip show endpoint 1002" say OK with the
# round-trip time and a ContactReachability event says reachable. Then it
# is silent: UNREACHABLE, an event says so, and a call to 1002 is not sent
# to the contact (the log says so, Dial ends CHANUNAVAIL at once, not after
# its 5 s). With a 30 s interval, the phone registering again is asked at
# once and is OK again. 1001 is never asked. Bad input: a
# qualify that is neither yes, no nor seconds is named by file:line and the
# reload refused. Every check prints "ok N".

. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/sip/siplib.sh"

Q_DATA=$top_srcdir/tests/data/sip_qualify
SECRET_1001=test-secret-1001
SECRET_1002=test-secret-1002
EVENTS=$TMP/events.jsonl

# wait_endpoints DESCRIPTION ERE SECONDS: until a line of 'sip show endpoints' matches.
wait_endpoints() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		px "$SOCK" 'sip show endpoints'
		if printf '%s\n' "$PX_OUT" | grep -Eq -- "$2"; then
			pass "$1 ($(printf '%s\n' "$PX_OUT" | grep -E -- "$2" | tr -s ' '))"
			return 0
		fi
		sleep 0.1
	done
	fail "$1" "expected a line of 'sip show endpoints' matching: $2" "got:" "$PX_OUT"
}

# wait_event DESCRIPTION ERE SECONDS: until an event line matches.
wait_event() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		grep -Eq -- "$2" "$EVENTS" && { pass "$1"; return 0; }
		sleep 0.1
	done
	fail "$1" "expected an event matching: $2" "got:" "$(cat "$EVENTS")"
}

setup() {
	D=$TMP/etc
	sip_ports
	sip_write_modules
	sed -e "s/@SIP_PORT@/$SIP_PORT/" "$Q_DATA/sip.conf" >"$D/sip.conf"
	cp "$Q_DATA/extensions.lua" "$Q_DATA/lua.conf" "$D/"
	write_rtp_conf "$D" "$RTP_START" "$RTP_END"
	: >"$DIALSTATUS_FILE"
	export PX_SIP_TEST_DIALSTATUS=$DIALSTATUS_FILE
	start_daemon "$D"
	"$PLEXUS" -s "$SOCK" -e ContactReachability >"$EVENTS" 2>"$TMP/events.err" &
	track_pid "$!"
	wait_for_log "$TMP/events.err" 0 'streaming events' 5 ||
		fail "plexus -e subscribes" "'streaming events'" "got:" "$(cat "$TMP/events.err")"
	check_cmd "sip show endpoint 1002: qualify every 1 s" 'sip show endpoint 1002' 0 \
		'^ Qualify: +every 1 s, timeout 500 ms$'
	check_cmd "sip show endpoint 1001: qualify off" 'sip show endpoint 1001' 0 '^ Qualify: +off$'
	check_cmd "sip show endpoints: 1001 Unmonitored, 1002 with no contact yet" 'sip show endpoints' 0 \
		'^1001 .* 0 +Unmonitored '
	expect_output "sip show endpoints: 1002 has no contact to ask" '^1002 .* 0 +- '
	pass "sip show endpoints: 1002 has no contact to ask"
}

test_qualify() {
	local mark
	sipp_run reg_1002 "$PORT_1002" register.xml -s 1002 -au 1002 -ap "$SECRET_1002" -key expires 3600
	[ "$SIPP_RC" = 0 ] || sipp_fail "1002 registers" "status 0" reg_1002
	sipp_run reg_1001 "$PORT_1001" register.xml -s 1001 -au 1001 -ap "$SECRET_1001" -key expires 3600
	[ "$SIPP_RC" = 0 ] || sipp_fail "1001 registers" "status 0" reg_1001
	pass "1001 and 1002 registered"
	sipp_start opt_1002 "$PORT_1002" carrier_options.xml -m 3
	wait_endpoints "1002's contact answers OPTIONS: OK with the round-trip time" '^1002 .* 1 +OK \([0-9]+ ms\) ' 5
	check_cmd "sip show endpoint 1002: the contact is OK" 'sip show endpoint 1002' 0 \
		"sip:1002@127\.0\.0\.1:$PORT_1002 via udp:127\.0\.0\.1:$PORT_1002, .*, OK \([0-9]+ ms\)$"
	wait_event "a ContactReachability event says 1002's contact is reachable" \
		'"event": *"ContactReachability".*"endpoint": *"1002".*"reachable": *"yes"' 5
	expect_sipp_ok "the phone answered three OPTIONS" opt_1002
	pass "the phone answered three OPTIONS and went silent"
	mark=$(log_mark "$D/plexus.log")
	wait_endpoints "1002's silent contact becomes UNREACHABLE" '^1002 .* 1 +UNREACHABLE ' 5
	check_cmd "sip show endpoint 1002: the contact is UNREACHABLE" 'sip show endpoint 1002' 0 \
		"sip:1002@127\.0\.0\.1:$PORT_1002 via .*, UNREACHABLE$"
	wait_event "a ContactReachability event says it is unreachable" \
		'"event": *"ContactReachability".*"endpoint": *"1002".*"reachable": *"no"' 5
	wait_for_log "$D/plexus.log" "$mark" "1002's contact sip:1002@127\.0\.0\.1:$PORT_1002 is Unreachable" 5 ||
		fail "the log says 1002's contact is Unreachable" "a warning" "got:" "$(log_since "$D/plexus.log" "$mark")"
	pass "the log says 1002's contact is Unreachable"
	check_cmd "1001 is never asked: Unmonitored" 'sip show endpoints' 0 '^1001 .* 1 +Unmonitored '

	# A call to the unreachable contact is not sent.
	dialstatus_mark
	mark=$(log_mark "$D/plexus.log")
	local t0 t1
	t0=$(date +%s%N)
	sipp_run call_1002 - uac_fail.xml -s 1002 -key caller 1001 -au 1001 -ap "$SECRET_1001" \
		-key pt 0 -key rtpmap "0 PCMU/8000"
	t1=$(date +%s%N)
	expect_final "the caller's call to 1002 fails (480)" call_1002 480
	pass "the caller's call to 1002 fails at once (480, $(((t1 - t0) / 1000000)) ms; Dial's timeout is 5 s)"
	[ $(((t1 - t0) / 1000000)) -lt 4000 ] ||
		fail "the call fails before Dial's 5 s" "under 4000 ms" "got $(((t1 - t0) / 1000000)) ms"
	expect_dialstatus "Dial ends CHANUNAVAIL" "1002 CHANUNAVAIL"
	log_since "$D/plexus.log" "$mark" | grep -q "1002's contact sip:1002@127\.0\.0\.1:$PORT_1002 is unreachable; not calling it" ||
		fail "the unreachable contact is skipped" "the log says so" "got:" "$(log_since "$D/plexus.log" "$mark")"
	pass "the unreachable contact is skipped (not rung)"
	expect_idle "after the refused call no channel is left"

	# The phone comes back with a new REGISTER while the interval is
	# long: it is asked at once, not after 30 s.
	cp "$D/sip.conf" "$D/sip.conf.q1"
	sed -i 's/^qualify = 1$/qualify = 30/' "$D/sip.conf"
	check_cmd "sip set debug on" 'sip set debug on' 0
	mark=$(log_mark "$D/plexus.log")
	check_cmd "reload: 1002 qualified every 30 s" 'module reload chan_sip' 0
	check_cmd "sip show endpoint 1002: every 30 s" 'sip show endpoint 1002' 0 '^ Qualify: +every 30 s'
	# The OPTIONS the 1 s interval had planned still goes; after it (and
	# its 500 ms) the next is 30 s away.
	wait_for_log "$D/plexus.log" "$mark" "OPTIONS sip:1002@127\.0\.0\.1:$PORT_1002 SIP/2\.0" 5 ||
		fail "one more OPTIONS goes to 1002" "it in the log (sip set debug on)" "got:" "$(log_since "$D/plexus.log" "$mark" | tail -n 30)"
	sleep 1 # not a check: lets that OPTIONS's deadline pass, so no retransmission is answered
	check_cmd "sip set debug off" 'sip set debug off' 0
	check_cmd "1002 is still UNREACHABLE" 'sip show endpoints' 0 '^1002 .* 1 +UNREACHABLE '
	# One SIPp registers and answers the OPTIONS that follows at once (as
	# an out-of-call message): a second SIPp started on the port after the
	# first exits could miss it.
	sipp_start rereg_1002 "$PORT_1002" register_linger.xml -s 1002 -au 1002 -ap "$SECRET_1002" \
		-key expires 3600 -oocsf "$SIP_SCENARIOS/carrier_options.xml"
	wait_endpoints "1002 registered again and is asked at once: OK (the interval is 30 s)" \
		'^1002 .* 1 +OK \([0-9]+ ms\) ' 5
	expect_sipp_ok "the phone registered and stayed for the OPTIONS" rereg_1002
	cp "$D/sip.conf.q1" "$D/sip.conf"
	check_cmd "reload: back to every second" 'module reload chan_sip' 0
}

test_bad_config() {
	local mark line
	cp "$D/sip.conf" "$D/sip.conf.good"
	sed -i 's/^qualify = 1$/qualify = often/' "$D/sip.conf"
	line=$(grep -n '^qualify = often' "$D/sip.conf" | cut -d: -f1)
	mark=$(log_mark "$D/plexus.log")
	check_cmd "a reload with 'qualify = often' fails" 'module reload chan_sip' 1 'reload failed'
	log_since "$D/plexus.log" "$mark" | grep -q "sip.conf:$line: qualify: 'often' is not yes, no or a number of seconds" ||
		fail "the bad qualify is named by file:line" "sip.conf:$line: qualify: ..." "got:" "$(log_since "$D/plexus.log" "$mark")"
	pass "the bad qualify is named by sip.conf:$line"
	cp "$D/sip.conf.good" "$D/sip.conf"
	check_cmd "the running configuration is kept" 'sip show endpoint 1002' 0 '^ Qualify: +every 1 s'
}

setup
test_qualify
test_bad_config
if ! stop_daemon "$DAEMON_PID" 10 || [ "$EXIT_STATUS" != 0 ]; then
	fail "plexusd stops with status 0" "got: ${EXIT_STATUS:-(still running)}"
fi
pass "plexusd stops with status 0"
finish
