#!/bin/bash
# Event stream, actions and console roles, end to end: a real plexusd
# (chan_sip, res_registrar, pbx_lua, app_dial) on free loopback ports with
# the configuration of tests/sip/sip.sh, SIPp phones, the real "plexus -e"
# recording every event as JSON lines, and tests/console/pxaction.py
# sending JSON actions. Events: a registration gives Registered (endpoint,
# contact, source); a wrong password gives a SecurityEvent naming the
# source address; a call 1001 -> 1002 gives, for both legs with the same
# linkedid, ChannelCreated ... Hangup with cause 16 in order. Actions:
# Originate to the registered SIPp phone 1002 connects it to extension 1003
# (Dial to a second SIPp phone); Hangup ends that call with the cause given;
# Redirect moves a live call 1001 -> 1002 to extension 1003 (1002 gets BYE,
# 1003 is called and bridged to the caller, ConnectedLine tells the
# caller's new party); Bridge joins two callers each
# still ringing in Dial, and when one hangs up the other goes on in its
# dialplan after Dial; Bridge of a PCMU and a PCMA caller transcodes and
# each hears the other (Status shows each leg's codec); every result
# carries its action id; malformed
# actions (bad JSON, missing fields, unknown channel, unknown action,
# missing action id) get clear errors on one connection that stays usable;
# SetVar/GetVar/Status/Command. Console roles (console.conf, re-read on
# SIGHUP): a monitor may watch and run show commands, its Originate and
# module unload are refused naming the role needed; an operator may
# originate but not unload modules. A subscriber that never reads (queue of
# 10) does not hold up calls or the other subscriber, which sees every
# event; it is told how many events it lost, and its connection still
# answers; a console that subscribes again (another queue size) while
# thousands of events wait gets each once, every gap told. A console whose
# role console.conf revokes gets bye at once, with no event after. At the
# end plexusd logged no error and no sanitizer report.

. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/sip/siplib.sh"

SECRET_1001=test-secret-1001
SECRET_1002=test-secret-1002
SECRET_1003=test-secret-1003
PXACTION=$top_srcdir/tests/console/pxaction.py
EVCHECK=$top_srcdir/tests/sip/evcheck.py
MEDIAPHONE=$top_srcdir/tests/sip/mediaphone.py
EVENTS=$TMP/events.jsonl

setup() {
	# The test dialplan writes "NUMBER DIALSTATUS" to $DIALSTATUS_FILE when
	# Dial returns and the dialplan goes on.
	sip_write_standard_config
	"$PYTHON" - "$SIPP_DIR/tone.wav" <<'PYEOF'
import struct, sys
data = bytes([0xFF] * 8000)
fmt = struct.pack("<HHIIHH", 7, 1, 8000, 8000, 1, 8)
body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
open(sys.argv[1], "wb").write(b"RIFF" + struct.pack("<I", len(body)) + body)
PYEOF
	start_daemon "$D"
	# The real client records every event for the whole test.
	"$PLEXUS" -s "$SOCK" -e >"$EVENTS" 2>"$TMP/events.err" &
	EVENTS_PID=$!
	track_pid "$EVENTS_PID"
	if ! wait_for_log "$TMP/events.err" 0 'streaming events' 5; then
		fail "plexus -e subscribes" "expected 'streaming events' on its stderr" \
			"got:" "$(cat "$TMP/events.err")"
	fi
	pass "plexus -e connects and streams events"
}

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
	EVENT=$out
	pass "$what"
}

# action JSON...: run actions on one connection; results in ACT_OUT, one per line.
action() {
	ACT_OUT=$(timeout 30 "$PYTHON" "$PXACTION" "$SOCK" run "$@" 2>&1)
	ACT_RC=$?
}

# expect_result DESCRIPTION N PYEXPR: result number N (1-based) of the last
# action() satisfies PYEXPR, where r is the parsed result.
expect_result() {
	local what=$1 n=$2 expr=$3 line
	line=$(printf '%s\n' "$ACT_OUT" | sed -n "${n}p")
	if ! "$PYTHON" -c "import json,sys; r=json.loads(sys.argv[1]); sys.exit(0 if ($expr) else 1)" \
		"$line" 2>/dev/null; then
		fail "$what" "expected result $n to satisfy: $expr" "got (status $ACT_RC):" "$ACT_OUT"
	fi
}

register() {
	sipp_run "$1" "$2" "${6:-register.xml}" -s "$3" -au "$3" -ap "$4" -key expires "$5"
	SIPP_RC_OF[$1]=$SIPP_RC
}

call_args() {
	CALL_ARGS=(-s "$1" -key caller 1001 -au 1001 -ap "$SECRET_1001")
}

start_phone() {
	sipp_start "$@"
	if ! wait_udp_bound "$2" 5; then
		SIPP_RC_OF[$1]=?
		sipp_fail "SIPp phone $1 listens on port $2" "a socket on 127.0.0.1:$2 within 5 s" "$1"
	fi
}

# channel_of ENDPOINT: the name of ENDPOINT's live channel (within 5 s).
channel_of() {
	local i
	CHAN=
	for ((i = 0; i < 50; i++)); do
		CHAN=$(channel_names | grep "^SIP/$1-" | head -n 1)
		[ -n "$CHAN" ] && return 0
		sleep 0.1
	done
	fail "a channel of $1 exists" "got none; channels:" "$(channel_names)"
}

# ---------------------------------------------------------------- events

test_registered() {
	mark
	register reg_1002 "$PORT_1002" 1002 "$SECRET_1002" 3600
	[ "$SIPP_RC" = 0 ] || sipp_fail "1002 registers" "401, then 200" reg_1002
	expect_event "a registration produces Registered (endpoint, contact, source)" 5 \
		event=Registered endpoint=1002 "contact~sip:1002@127\.0\.0\.1:$PORT_1002" \
		"source=udp:127.0.0.1:$PORT_1002" refresh=0
	register reg_1003 "$PORT_1003A" 1003 "$SECRET_1003" 3600
	[ "$SIPP_RC" = 0 ] || sipp_fail "1003 registers" "401, then 200" reg_1003
}

test_security_event() {
	local port=$((PORT_BASE + 398))
	mark
	register reg_wrong "$port" 1001 wrong-password 3600 register_fail.xml
	[ "$(final_status reg_wrong)" = 403 ] || sipp_fail "a wrong password gets 403" "403" reg_wrong
	expect_event "a wrong password produces a SecurityEvent naming the source address" 5 \
		event=SecurityEvent "reason=wrong password" endpoint=1001 method=REGISTER \
		"source=udp:127.0.0.1:$port" service=SIP
	mark
	register reg_nobody "$port" 9999 whatever 3600 register_fail.xml
	expect_event "an unknown user produces a SecurityEvent 'unknown endpoint'" 5 \
		event=SecurityEvent "reason=unknown endpoint" endpoint=9999
}

test_call_sequence() {
	local out
	mark
	start_phone uas_answer "$PORT_1002" uas_answer.xml -s 1002 -d 200
	call_args 1002
	sipp_start call_a - uac_call.xml "${CALL_ARGS[@]}" -d 1000
	expect_sipp_ok "call 1001 -> 1002, the caller hangs up" call_a uas_answer
	expect_idle "the call is over"
	for ((i = 0; i < 20; i++)); do
		out=$("$PYTHON" "$EVCHECK" "$EVENTS" "$MARK" call 1001 1002 16) && break
		sleep 0.1
	done
	if [ $i = 20 ]; then
		fail "a call gives the ordered events of both legs with one linkedid" "$out"
	fi
	pass "a call gives, for both legs with one linkedid, ChannelCreated ... Hangup cause 16 in order"
	printf '%s\n' "$out" | sed 's/^/# /'
}

# ---------------------------------------------------------------- actions

test_originate_and_hangup() {
	local ch1002 ch1003
	mark
	start_phone uas_orig "$PORT_1002" uas_answer.xml -s 1002 -d 200
	start_phone uas_1003 "$PORT_1003A" uas_answer.xml -s 1003 -d 200
	action '{"action":"Originate","action_id":"orig-1","channel":"SIP/1002","exten":"1003","context":"default","caller_num":"500","caller_name":"Operator","variables":{"ORIGIN":"console"}}'
	expect_result "Originate answers with its action id and the new channel" 1 \
		'r["response"]=="Success" and r["action_id"]=="orig-1" and r["channel"].startswith("SIP/1002-")'
	pass "Originate to SIP/1002: Success, action_id orig-1, channel named"
	ch1002=$("$PYTHON" -c 'import json,sys; print(json.loads(sys.argv[1])["channel"])' "$ACT_OUT")
	expect_event "the originated call reaches extension 1003: 1002 is bridged to 1003" 10 \
		event=Bridged "channel=$ch1002" "peer_channel~^SIP/1003-"
	action "{\"action\":\"GetVar\",\"action_id\":7,\"channel\":\"$ch1002\",\"variable\":\"ORIGIN\"}" \
		"{\"action\":\"SetVar\",\"action_id\":8,\"channel\":\"$ch1002\",\"variable\":\"X\",\"value\":\"y\"}" \
		"{\"action\":\"GetVar\",\"action_id\":9,\"channel\":\"$ch1002\",\"variable\":\"X\"}" \
		"{\"action\":\"Status\",\"action_id\":\"st\",\"channel\":\"$ch1002\"}"
	expect_result "GetVar reads the variable Originate set" 1 'r["action_id"]==7 and r["value"]=="console"'
	expect_result "SetVar answers" 2 'r["response"]=="Success" and r["action_id"]==8'
	expect_result "GetVar reads what SetVar set" 3 'r["value"]=="y"'
	expect_result "Status shows the call up, bridged to 1003, with the caller ID given" 4 \
		'r["channels"][0]["state"]=="Up" and r["channels"][0]["bridged_to"].startswith("SIP/1003-") and r["channels"][0]["caller_num"]=="500" and isinstance(r["channels"][0]["duration"], int)'
	expect_result "Status tells hold (no), the answer time and the age since creation" 4 \
		'(c:=r["channels"][0])["hold"] is False and c["answered_at"] >= c["created_at"] and 0 <= c["duration"] <= c["age"]'
	pass "GetVar, SetVar and Status on the originated channel"
	mark
	action "{\"action\":\"Hangup\",\"action_id\":\"h1\",\"channel\":\"$ch1002\",\"cause\":21}"
	expect_result "Hangup answers with its action id" 1 'r["response"]=="Success" and r["action_id"]=="h1" and r["cause"]==21'
	expect_event "Hangup ends the channel with the cause given" 5 event=Hangup "channel=$ch1002" cause=21
	expect_event "its peer is hung up with the same cause" 5 event=Hangup "channel~^SIP/1003-" cause=21
	expect_sipp_ok "both phones got BYE" uas_orig uas_1003
	expect_idle "after the hangup no channel is left"
}

test_redirect() {
	local caller
	mark
	start_phone uas_r1002 "$PORT_1002" uas_answer.xml -s 1002 -d 200
	start_phone uas_r1003 "$PORT_1003A" uas_answer.xml -s 1003 -d 200
	call_args 1002
	sipp_start call_r - uac_call.xml "${CALL_ARGS[@]}" -d 5000
	expect_event "the call 1001 -> 1002 is bridged" 10 event=Bridged "channel~^SIP/1001-" \
		"peer_channel~^SIP/1002-"
	caller=$("$PYTHON" -c 'import json,sys; print(json.loads(sys.argv[1])["channel"])' "$EVENT")
	action "{\"action\":\"Redirect\",\"action_id\":\"r1\",\"channel\":\"$caller\",\"exten\":\"1003\",\"context\":\"default\"}"
	expect_result "Redirect answers with its action id" 1 'r["response"]=="Success" and r["action_id"]=="r1"'
	expect_event "the redirected caller is bridged to 1003" 10 event=Bridged "channel=$caller" \
		"peer_channel~^SIP/1003-"
	expect_event "ConnectedLine tells that the answered caller now talks to 1003" 5 \
		event=ConnectedLine "channel=$caller" connected_num=1003
	expect_event "1002 was hung up" 5 event=Hangup "channel~^SIP/1002-"
	expect_sipp_ok "Redirect moved the live call: 1002 got BYE, 1003 answered and got the caller's BYE" \
		call_r uas_r1002 uas_r1003
	expect_idle "after the redirected call no channel is left"
}

test_bridge() {
	local a b
	mark
	dialstatus_mark
	start_phone uas_b1002 "$PORT_1002" uas_ring_cancel.xml -s 1002
	start_phone uas_b1003 "$PORT_1003A" uas_ring_cancel.xml -s 1003
	call_args 1002
	sipp_start call_ba - uac_call.xml "${CALL_ARGS[@]}" -d 1500
	expect_event "caller A rings 1002" 5 event=ChannelState state=Ringing "channel~^SIP/1002-"
	a=$(channel_names | grep '^SIP/1001-' | head -n 1)
	call_args 1003
	sipp_start call_bb - uac_call_wait_bye.xml "${CALL_ARGS[@]}"
	expect_event "caller B rings 1003" 5 event=ChannelState state=Ringing "channel~^SIP/1003-"
	b=$(channel_names | grep '^SIP/1001-' | grep -v "^$a\$" | head -n 1)
	action "{\"action\":\"Bridge\",\"action_id\":\"b1\",\"channel1\":\"$a\",\"channel2\":\"$b\"}"
	expect_result "Bridge answers with its action id" 1 'r["response"]=="Success" and r["action_id"]=="b1"'
	expect_event "Bridge joins the two callers, each taken out of its Dial" 5 event=Bridged \
		"channel=$a" "peer_channel=$b"
	expect_sipp_ok "the phones got CANCEL, both callers got 200, and after A's BYE B got BYE" \
		call_ba call_bb uas_b1002 uas_b1003
	# A left; B was not hung up by the bridge: its dialplan went on after
	# its Dial (the test dialplan writes Dial's result, then ends).
	expect_dialstatus "after the operator's bridge, the side left continues its dialplan after Dial" \
		"1003 CANCEL"
	expect_idle "after the bridged call no channel is left"
}

# Two callers whose codecs differ (PCMU, PCMA), each still ringing in
# Dial, are joined by the operator's Bridge through transcoding: Status
# shows each leg's codec, the Bridge is accepted, the Bridged event says
# the media is transcoded, and each caller (tests/sip/mediaphone.py) is
# answered with its own codec and hears the other's tone; when the first
# hangs up, the second's dialplan goes on and ends (BYE).
test_bridge_codecs() {
	local a b ready=$TMP/bridge.ready phone_pid n codecs
	mark
	rm -f "$ready"
	start_phone uas_c1002 "$PORT_1002" uas_ring_cancel.xml -s 1002
	start_phone uas_c1003 "$PORT_1003A" uas_ring_cancel.xml -s 1003
	timeout 60 "$PYTHON" "$MEDIAPHONE" --sip-port "$SIP_PORT" --caller 1001 \
		--caller-secret "$SECRET_1001" --caller-codec ulaw --callee 1002 --callee-codec alaw \
		--bridge-exten 1003 --bridge-ready "$ready" >"$TMP/bridge_phone.out" 2>&1 &
	phone_pid=$!
	track_pid "$phone_pid"
	for ((n = 0; n < 100; n++)); do
		[ -e "$ready" ] && break
		sleep 0.1
	done
	[ -e "$ready" ] || fail "a PCMU and a PCMA caller ring 1002 and 1003" "$(cat "$TMP/bridge_phone.out")"
	a=$(channel_names | grep '^SIP/1001-' | head -n 1)
	b=$(channel_names | grep '^SIP/1001-' | grep -v "^$a\$" | head -n 1)
	action "{\"action\":\"Status\",\"action_id\":\"s\",\"channel\":\"$a\"}" \
		"{\"action\":\"Status\",\"action_id\":\"s\",\"channel\":\"$b\"}" \
		"{\"action\":\"Bridge\",\"action_id\":\"bc\",\"channel1\":\"$a\",\"channel2\":\"$b\"}"
	expect_result "Status shows the codec chan_sip negotiated (PCMU or PCMA)" 1 \
		'r["channels"][0]["codec"] in ("PCMU", "PCMA")'
	expect_result "Status shows the other leg's codec (the other of PCMU, PCMA)" 2 \
		'r["channels"][0]["codec"] in ("PCMU", "PCMA")'
	expect_result "Bridge of a PCMU and a PCMA leg is accepted" 3 \
		'r["response"]=="Success" and r["action_id"]=="bc"'
	codecs=$(printf '%s\n' "$ACT_OUT" | head -n 2 | "$PYTHON" -c \
		'import json,sys; print(" ".join(sorted(json.loads(l)["channels"][0]["codec"] for l in sys.stdin)))')
	[ "$codecs" = "PCMA PCMU" ] || fail "the two legs speak PCMU and PCMA" "got: $codecs"
	pass "Bridge between a PCMU and a PCMA leg is accepted"
	expect_event "the bridge of the PCMU and the PCMA leg transcodes" 5 event=Bridged \
		"channel=$a" "peer_channel=$b" media=transcoded
	expect_event "each side of the operator's bridge is connected to the other's caller" 5 \
		event=ChannelState "channel=$b" state=Up connected_num=1001 connected_name=Alice
	if ! wait_exit "$phone_pid" 40 || [ "$EXIT_STATUS" != 0 ]; then
		fail "each caller of the operator's transcoded bridge hears the other" \
			"mediaphone.py: status ${EXIT_STATUS:-still running}" "$(cat "$TMP/bridge_phone.out")"
	fi
	pass "each caller of the operator's bridge hears the other's tone through transcoding ($(grep -c '^ok' "$TMP/bridge_phone.out") phone checks)"
	expect_sipp_ok "1002 and 1003 rang and got CANCEL" uas_c1002 uas_c1003
	expect_idle "after the transcoded bridge no channel is left"
}

test_malformed() {
	action '{"action": "Status", "action_id": 1' \
		'{"action":"Hangup","action_id":"m2"}' \
		'{"action":"Hangup","action_id":"m3","channel":"SIP/nobody-00000000"}' \
		'{"action":"Dance","action_id":"m4"}' \
		'{"action":"Status"}' \
		'[1,2,3]' \
		'{"action":"Originate","action_id":"m7","channel":"SIP/1002"}' \
		'{"action":"Redirect","action_id":"m8","channel":"SIP/nobody-1","exten":"1","context":"x"}' \
		'{"action":"Hangup","action_id":"m9","channel":"x","cause":"loud"}' \
		'{"action":"Subscribe","action_id":"m10","types":["NoSuchEvent"]}' \
		'{"action":"Command","action_id":"m11","command":"no such thing"}' \
		'{"action":"Hangup","action_id":"m12","channel":"x","cause":1e300}' \
		'{"action":"Status","action_id":"still-here"}'
	expect_result "bad JSON: a clear error, action_id null" 1 \
		'r["response"]=="Error" and r["code"]=="bad_json" and r["action_id"] is None and "JSON" in r["message"]'
	expect_result "a missing field is named" 2 \
		'r["code"]=="missing_field" and r["field"]=="channel" and r["action_id"]=="m2"'
	expect_result "an unknown channel is named" 3 \
		'r["code"]=="unknown_channel" and "SIP/nobody-00000000" in r["message"] and r["action_id"]=="m3"'
	expect_result "an unknown action is named" 4 \
		'r["code"]=="unknown_action" and "Dance" in r["message"] and r["action_id"]=="m4"'
	expect_result "a missing action_id is an error" 5 'r["code"]=="missing_field" and r["field"]=="action_id"'
	expect_result "a JSON array is not an action" 6 'r["code"]=="bad_json"'
	expect_result "Originate without a place to go" 7 'r["code"]=="missing_field" and r["field"]=="exten"'
	expect_result "Redirect of an unknown channel" 8 'r["code"]=="unknown_channel"'
	expect_result "a cause that is not a number" 9 'r["code"]=="bad_field" and r["field"]=="cause"'
	expect_result "an unknown event type" 10 'r["code"]=="bad_field" and "NoSuchEvent" in r["message"]'
	expect_result "Command with an unknown command" 11 'r["code"]=="unknown_command" and r["status"]==3'
	expect_result "a cause far out of range (1e300) is refused, not cast" 12 \
		'r["code"]=="bad_field" and r["field"]=="cause" and "between" in r["message"]'
	expect_result "after all that the connection still answers" 13 \
		'r["response"]=="Success" and r["action_id"]=="still-here" and r["channels"]==[]'
	pass "malformed actions get clear errors (bad_json, missing_field, unknown_channel, unknown_action, bad_field) and the connection stays usable"
	action '{"action":"Command","action_id":"c1","command":"core show channels"}'
	expect_result "Command captures a console command's output" 1 \
		'r["response"]=="Success" and r["status"]==0 and "0 active channels" in r["output"]'
	pass "Command runs a console command and returns its output"
}

# ---------------------------------------------------------------- roles

# set_role ROLE|none-file: write console.conf giving this user ROLE (or
# remove it), SIGHUP the daemon, wait until 'module unload' shows the role.
set_role() {
	local i want
	if [ "$1" = default ]; then
		rm -f "$D/console.conf"
		want=admin
	else
		printf '[users]\n%s = %s\n' "$(id -un)" "$1" >"$D/console.conf"
		want=$1
	fi
	kill -HUP "$DAEMON_PID"
	for ((i = 0; i < 50; i++)); do
		px "$SOCK" 'module unload nothing_here'
		if [ "$want" = admin ]; then
			[ "$PX_RC" != 5 ] && return 0
		elif printf '%s\n' "$PX_OUT" | grep -q "this console is $want"; then
			return 0
		fi
		sleep 0.1
	done
	fail "console.conf gives this user the $want role after SIGHUP" "got:" "$PX_OUT"
}

test_roles() {
	set_role monitor
	check_cmd "a monitor may run show commands" 'core show channels' 0 'active channels'
	check_cmd "a monitor may not unload modules: status 5, the admin role named" \
		'module unload app_dial' 5 "needs the admin role \(this console is monitor\)"
	check_cmd "a monitor may not hang up channels" 'channel hangup SIP/x-1' 5 'needs the operator role'
	action '{"action":"Originate","action_id":"o-mon","channel":"SIP/1002","exten":"1003","context":"default"}' \
		'{"action":"Subscribe","action_id":"s-mon","types":"Hangup,Registered"}' \
		'{"action":"Command","action_id":"c-mon","command":"module unload app_dial"}'
	expect_result "a monitor's Originate is refused, naming the operator role" 1 \
		'r["response"]=="Error" and r["code"]=="denied" and r["role_needed"]=="operator" and r["action_id"]=="o-mon"'
	expect_result "a monitor may subscribe to events" 2 \
		'r["response"]=="Success" and r["types"]==["Hangup","Registered"]'
	expect_result "a monitor's Command is checked against the command's role" 3 \
		'r["code"]=="denied" and r["role_needed"]=="admin"'
	pass "monitor: events and show commands; Originate and module commands refused with the role needed"
	set_role operator
	action '{"action":"Originate","action_id":"o-op","endpoint":"1004","exten":"1003","context":"default"}'
	expect_result "an operator's Originate is allowed (1004 is not registered: it fails as a call)" 1 \
		'r["code"]=="failed" and "1004" in r["message"]'
	check_cmd "an operator may not unload modules" 'module unload app_dial' 5 'needs the admin role'
	pass "operator: actions allowed, module commands refused"
	set_role default
	check_cmd "without console.conf the daemon's own user is admin again" 'module show like app_dial' 0 'app_dial'
}

# A console.conf that takes a subscribed console's role away ends its event
# stream at once (bye), without waiting for it to send a request.
test_role_revoked() {
	local watch_pid i
	rm -f "$TMP/watch.ready"
	"$PYTHON" "$PXACTION" "$SOCK" watch "$TMP/watch.ready" "$TMP/watch.out" >"$TMP/watch.err" 2>&1 &
	watch_pid=$!
	track_pid "$watch_pid"
	for ((i = 0; i < 50; i++)); do
		[ -e "$TMP/watch.ready" ] && break
		sleep 0.1
	done
	[ -e "$TMP/watch.ready" ] || fail "a watcher subscribes" "$(cat "$TMP/watch.err")"
	printf '[users]\n%s = none\n' "$(id -un)" >"$D/console.conf"
	kill -HUP "$DAEMON_PID"
	if ! wait_exit "$watch_pid" 10; then
		fail "a subscribed console whose role is revoked gets bye at once" \
			"its connection is still open 10 s after SIGHUP; frames:" "$(cat "$TMP/watch.out")"
	fi
	grep -q '^bye access denied' "$TMP/watch.out" ||
		fail "a subscribed console whose role is revoked gets bye naming why" "frames:" "$(cat "$TMP/watch.out")"
	if grep -q '"what":"core"' "$TMP/watch.out"; then
		fail "no event reaches a console after its role is revoked" "frames:" "$(cat "$TMP/watch.out")"
	fi
	pass "revoking a subscribed console's role (console.conf, SIGHUP) ends its stream with bye, no event after"
	rm -f "$D/console.conf"
	kill -HUP "$DAEMON_PID"
	for ((i = 0; i < 50; i++)); do
		px "$SOCK" 'module show like app_dial'
		[ "$PX_RC" = 0 ] && break
		sleep 0.1
	done
	expect_status "without console.conf this user is admin again" 0
}

# ---------------------------------------------------------------- a subscriber that never reads

test_slow_subscriber() {
	local slow_pid resub_pid n
	mark
	rm -f "$TMP/slow.ready" "$TMP/slow.go"
	"$PYTHON" "$PXACTION" "$SOCK" slow 10 "$TMP/slow.ready" "$TMP/slow.go" "$TMP/slow.jsonl" \
		>"$TMP/slow.out" 2>&1 &
	slow_pid=$!
	track_pid "$slow_pid"
	for ((n = 0; n < 50; n++)); do
		[ -e "$TMP/slow.ready" ] && break
		sleep 0.1
	done
	[ -e "$TMP/slow.ready" ] || fail "the slow subscriber subscribes" "$(cat "$TMP/slow.out")"
	# A second one will subscribe again (another queue size) while its
	# events wait: it must then get each event once, none missing untold.
	"$PYTHON" "$PXACTION" "$SOCK" resub 5000 "$TMP/resub.ready" "$TMP/slow.go" "$TMP/resub.jsonl" \
		'{"action":"Subscribe","action_id":"again","queue":4000}' \
		'{"action":"Command","action_id":"after","command":"module reload pbx_lua"}' >"$TMP/resub.out" 2>&1 &
	resub_pid=$!
	track_pid "$resub_pid"
	for ((n = 0; n < 50; n++)); do
		[ -e "$TMP/resub.ready" ] && break
		sleep 0.1
	done
	[ -e "$TMP/resub.ready" ] || fail "the re-subscriber subscribes" "$(cat "$TMP/resub.out")"
	# Enough events to fill its socket and its queue: Reload events.
	ACT_OUT=$(timeout 120 "$PYTHON" "$PXACTION" "$SOCK" repeat 3000 \
		'{"action":"Command","action_id":"r","command":"module reload pbx_lua"}' 2>&1)
	[ "$ACT_OUT" = 3000 ] || fail "3000 module reloads" "got: $ACT_OUT"
	start_phone uas_slow "$PORT_1002" uas_answer.xml -s 1002 -d 200
	call_args 1002
	sipp_start call_slow - uac_call.xml "${CALL_ARGS[@]}" -d 500
	expect_sipp_ok "a call goes through while a subscriber reads nothing" call_slow uas_slow
	expect_idle "the call is over"
	# The other subscriber got everything.
	for ((n = 0; n < 50; n++)); do
		out=$("$PYTHON" "$EVCHECK" "$EVENTS" "$MARK" contiguous) &&
			"$PYTHON" "$EVCHECK" "$EVENTS" "$MARK" wait 0 event=Hangup "channel~^SIP/1001-" >/dev/null &&
			break
		sleep 0.1
	done
	[ $n -lt 50 ] || fail "plexus -e saw every event while the other subscriber stalled" "$out"
	pass "plexus -e saw every event without a gap while the other subscriber stalled ($out)"
	touch "$TMP/slow.go"
	if ! wait_exit "$slow_pid" 60 || [ "$EXIT_STATUS" != 0 ]; then
		fail "the slow subscriber reads at last" "status ${EXIT_STATUS:-still running}" "$(cat "$TMP/slow.out")"
	fi
	out=$("$PYTHON" - "$TMP/slow.jsonl" <<'PYEOF'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
lost = [e for e in ev if e["event"] == "EventsLost"]
n = sum(e["lost"] for e in lost)
ok = lost and n > 0 and all(e["lost"] > 0 for e in lost)
print("%d events, %d EventsLost notices, %d lost" % (len(ev), len(lost), n))
sys.exit(0 if ok else 1)
PYEOF
	) || fail "the slow subscriber is told how many events it lost" "$out"
	pass "the subscriber that stalled is told what it lost: $out"
	grep -q '"response":"Success"' "$TMP/slow.out" ||
		fail "its connection still answers actions" "$(cat "$TMP/slow.out")"
	pass "the stalled subscriber's connection still answers a Status action"
	if ! wait_exit "$resub_pid" 60 || [ "$EXIT_STATUS" != 0 ]; then
		fail "the re-subscriber reads at last" "status ${EXIT_STATUS:-still running}" "$(cat "$TMP/resub.out")"
	fi
	head -n 1 "$TMP/resub.out" | grep -q '"response":"Success"' ||
		fail "a second Subscribe while events wait succeeds" "$(cat "$TMP/resub.out")"
	out=$("$PYTHON" "$EVCHECK" "$TMP/resub.jsonl" 0 accounted) ||
		fail "after a second Subscribe with events waiting, each event comes once and every gap is told" "$out"
	[ "$(wc -l <"$TMP/resub.jsonl")" -gt 3000 ] ||
		fail "the re-subscriber had more events waiting than one batch" "$(wc -l <"$TMP/resub.jsonl") events"
	pass "a second Subscribe while events wait: each event once, in order, no gap untold ($out)"
}

test_end() {
	local bad
	bad=$(grep -E '^\[[^]]*\] ERROR\[' "$D/plexus.log"; grep -E 'Sanitizer|runtime error:' "$D/stderr")
	[ -z "$bad" ] || fail "plexusd logged no error and no sanitizer report" "got:" "$bad"
	pass "plexusd logged no error and no sanitizer report"
	if ! stop_daemon "$DAEMON_PID" 20 || [ "$EXIT_STATUS" != 0 ]; then
		fail "plexusd stops with status 0" "got: ${EXIT_STATUS:-still running}"
	fi
	pass "plexusd stops with status 0"
	if ! wait_exit "$EVENTS_PID" 5; then
		fail "plexus -e ends when plexusd stops" "still running"
	fi
	pass "plexus -e ends when plexusd stops (status $EXIT_STATUS)"
}

setup
test_registered
test_security_event
test_call_sequence
test_originate_and_hangup
test_redirect
test_bridge
test_bridge_codecs
test_malformed
test_roles
test_slow_subscriber
# Last: it revokes the role of every console of this user, plexus -e's too.
test_role_revoked
test_end
finish
