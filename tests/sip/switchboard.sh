#!/bin/bash
# The switchboard (plexus --switchboard) end to end, driven in tmux: a real
# plexusd (chan_sip, res_registrar, pbx_lua, app_dial) on free loopback
# ports with the configuration of tests/sip/sip.sh, SIPp phones 1002 and
# 1003 registered, and two switchboards in detached tmux sessions of a
# private tmux server (its socket is in the test's directory, so the whole
# server is this test's own): one 110 columns wide, one 40. The test reads
# the screens with capture-pane and types with send-keys, polling with
# deadlines. First the Registrations action it starts from (contact,
# source, expires, endpoint filter, bad field). Then: both screens list the
# registrations; a live SIPp call 1001 -> 1002 shows both parties Up on one
# line at either width; a resize to 40 columns (SIGWINCH) lays the screen
# out again; 'h' hangs the call up (both SIPp phones get BYE, no channel is
# left) and the message line says so; 'o' originates from 1002 to
# extension 1003 and the call shows up bridged; 'r' redirects a live call
# to 1003 (1002 gets BYE, the caller talks to 1003); an originate to an
# unregistered phone shows the daemon's error; plexusd restarts and both
# switchboards say "disconnected, retrying", reconnect and show the
# registrations again; '?' shows the help; 'q' quits with status 0. At the
# end plexusd and the switchboards logged no error and no sanitizer report.

. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

if ! command -v tmux >/dev/null 2>&1; then
	echo "Bail out! tmux is not installed (scripts/install-deps installs it)"
	exit 99
fi
. "$top_srcdir/tests/sip/siplib.sh"

SECRET_1001=test-secret-1001
SECRET_1002=test-secret-1002
SECRET_1003=test-secret-1003
PXACTION=$top_srcdir/tests/console/pxaction.py
TMUX_SOCK=$TMP/tmux.sock
WIDE=sbwide
NARROW=sbnarrow
declare -A SB_PID

tmx() {
	tmux -S "$TMUX_SOCK" "$@"
}

# The tmux server and everything in it are ours: stop them, then the rest.
sb_cleanup() {
	tmx kill-server >/dev/null 2>&1
	cleanup
}
trap sb_cleanup EXIT

setup() {
	sip_write_standard_config
	sip_make_tone
	start_daemon "$D"
}

register() {
	sipp_run "$1" "$2" register.xml -s "$3" -au "$3" -ap "$4" -key expires 3600
	SIPP_RC_OF[$1]=$SIPP_RC
	[ "$SIPP_RC" = 0 ] || sipp_fail "$3 registers" "401, then 200" "$1"
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

# action JSON...: results in ACT_OUT, one per line.
action() {
	ACT_OUT=$(timeout 30 "$PYTHON" "$PXACTION" "$SOCK" run "$@" 2>&1)
	ACT_RC=$?
}

# expect_result DESCRIPTION N PYEXPR: result N of the last action() satisfies PYEXPR.
expect_result() {
	local what=$1 n=$2 expr=$3 line
	line=$(printf '%s\n' "$ACT_OUT" | sed -n "${n}p")
	if ! "$PYTHON" -c "import json,sys; r=json.loads(sys.argv[1]); sys.exit(0 if ($expr) else 1)" \
		"$line" 2>/dev/null; then
		fail "$what" "expected result $n to satisfy: $expr" "got (status $ACT_RC):" "$ACT_OUT"
	fi
	pass "$what"
}

# ---------------------------------------------------------------- tmux

# start_sb NAME COLUMNS LINES: a switchboard in a new detached tmux session.
# The pane's shell writes plexus's exit status to $TMP/NAME.exit when it ends.
start_sb() {
	local name=$1 pid
	rm -f "$TMP/$name.exit"
	if ! tmx new-session -d -s "$name" -x "$2" -y "$3" \
		"LANG=C.UTF-8 $PLEXUS -s $SOCK --switchboard 2>>$TMP/$name.stderr; echo \$? >$TMP/$name.exit"; then
		fail "tmux starts a session $name of $2x$3" "tmux new-session failed"
	fi
	# The pane stays after it ends, so that what it showed can be read.
	tmx set-option -w -t "$name" remain-on-exit on
	pid=$(tmx display-message -p -t "$name" '#{pane_pid}')
	SB_PID[$name]=$pid
	track_pid "$pid"
}

# screen NAME: what the session shows now, into SCREEN.
screen() {
	SCREEN=$(tmx capture-pane -p -t "$1" 2>&1)
}

# wait_screen DESCRIPTION NAME SECONDS ERE...: within SECONDS, the screen of
# NAME has, for each ERE, a line matching it.
wait_screen() {
	local what=$1 name=$2 secs=$3 i re ok
	shift 3
	for ((i = 0; i < secs * 10; i++)); do
		screen "$name"
		ok=1
		for re in "$@"; do
			printf '%s\n' "$SCREEN" | grep -Eq -- "$re" || {
				ok=
				break
			}
		done
		if [ -n "$ok" ]; then
			pass "$what"
			return 0
		fi
		sleep 0.1
	done
	fail "$what" "expected lines matching each of:" "$@" "within $secs s; the screen of $name:" \
		"$(printf '%s\n' "$SCREEN" | sed 's/^/|/')" "its stderr:" "$(cat "$TMP/$name.stderr")"
}

# expect_no_wrap NAME WIDTH: no line of the screen is wider than WIDTH,
# the title is on the first line and the keys on the last one.
expect_no_wrap() {
	local long
	screen "$1"
	long=$(printf '%s\n' "$SCREEN" | awk -v w="$2" 'length($0) > w')
	if [ -n "$long" ] || ! printf '%s\n' "$SCREEN" | head -n 1 | grep -Eq '^ (Plexus|disconnected)' ||
		! printf '%s\n' "$SCREEN" | tail -n 1 | grep -Eq '^ h:hang ?up .*q:quit$'; then
		fail "the $2-column screen holds its lines" \
			"lines of at most $2 columns, the title first, the keys last" \
			"got:" "$(printf '%s\n' "$SCREEN" | sed 's/^/|/')"
	fi
}

keys() {
	tmx send-keys -t "$@"
}

# ---------------------------------------------------------------- tests

test_registrations_action() {
	register reg_1002 "$PORT_1002" 1002 "$SECRET_1002"
	register reg_1003 "$PORT_1003A" 1003 "$SECRET_1003"
	action '{"action":"Registrations","action_id":"regs"}' \
		'{"action":"Registrations","action_id":"r1003","endpoint":"1003"}' \
		'{"action":"Registrations","action_id":"none","endpoint":"1004"}' \
		'{"action":"Registrations","action_id":"bad","endpoint":5}'
	expect_result "Registrations lists every registered contact with its source and expiry" 1 \
		"r['response']=='Success' and r['action_id']=='regs' and [x['endpoint'] for x in r['registrations']]==['1002','1003'] and r['registrations'][0]['contact'].startswith('sip:1002@127.0.0.1:$PORT_1002') and r['registrations'][0]['source']=='udp:127.0.0.1:$PORT_1002' and 3500 < r['registrations'][0]['expires'] <= 3600 and isinstance(r['seq'], int)"
	expect_result "Registrations of one endpoint" 2 \
		"len(r['registrations'])==1 and r['registrations'][0]['endpoint']=='1003'"
	expect_result "Registrations of an endpoint with none: an empty list" 3 \
		"r['response']=='Success' and r['registrations']==[]"
	expect_result "Registrations with a bad endpoint field: a clear error" 4 \
		"r['response']=='Error' and r['code']=='bad_field' and r['field']=='endpoint'"
}

test_start() {
	local out rc
	out=$(timeout 10 "$PLEXUS" -s "$SOCK" --switchboard </dev/null 2>&1)
	rc=$?
	[ "$rc" = 2 ] && [[ $out == *"--switchboard needs a terminal"* ]] ||
		fail "without a terminal the switchboard says so" "status 2 and 'needs a terminal'" \
			"got status $rc: $out"
	out=$(timeout 10 "$PLEXUS" -s "$SOCK" --switchboard -x 'core show version' 2>&1)
	rc=$?
	[ "$rc" = 2 ] && [[ $out == *"cannot be combined"* ]] ||
		fail "--switchboard with -x is refused" "status 2" "got status $rc: $out"
	pass "--switchboard refuses to run without a terminal, and with -x (status 2)"
	start_sb "$WIDE" 110 30
	start_sb "$NARROW" 40 20
	wait_screen "the switchboard shows the registrations" "$WIDE" 10 \
		'Plexus switchboard \| Plexus .* \(pid [0-9]+\)' 'Registrations \(2\)' \
		"^  1002 +sip:1002@127\.0\.0\.1:$PORT_1002.* udp:127\.0\.0\.1:$PORT_1002 +3[0-9]{3}" \
		"^  1003 +sip:1003@127\.0\.0\.1:$PORT_1003A" 'Calls \(0\)'
	wait_screen "a 40-column switchboard shows them too" "$NARROW" 10 \
		'Registrations \(2\)' '^  1002 .* 3[0-9]{3}' '^  1003 ' 'Calls \(0\)'
	expect_no_wrap "$NARROW" 40
}

test_call_and_hangup() {
	start_phone uas_h "$PORT_1002" uas_answer.xml -s 1002
	call_args 1002
	sipp_start call_h - uac_call_wait_bye.xml "${CALL_ARGS[@]}"
	wait_screen "a live call shows both parties, Up, caller ID and channels" "$WIDE" 8 \
		'Calls \(1\)' '^> 1001 +1002 +Up +0:[0-9]{2} +1001 "Alice" +1002 +SIP/1001-[0-9a-f]+ +SIP/1002-'
	wait_screen "the 40-column switchboard shows the call on one line" "$NARROW" 5 \
		'Calls \(1\)' '^> 1001 +1002 +Up +0:[0-9]{2}'
	expect_no_wrap "$NARROW" 40
	# For the log: what both screens look like with a call.
	printf '%s\n' "$SCREEN" | sed 's/^/# |/'
	screen "$WIDE"
	printf '%s\n' "$SCREEN" | sed 's/^/# |/'
	# SIGWINCH: the wide one becomes narrow and lays itself out again (the
	# clock comes back inside the 40 columns, the call stays on one line).
	tmx resize-window -t "$WIDE" -x 40 -y 30
	wait_screen "after a resize to 40 columns the screen is laid out again" "$WIDE" 5 \
		'^ Plexus switchboard.* [0-9]{2}:[0-9]{2}:[0-9]{2} *$' '^> 1001 +1002 +Up +0:[0-9]{2}'
	expect_no_wrap "$WIDE" 40
	tmx resize-window -t "$WIDE" -x 110 -y 30
	wait_screen "and back at 110 columns the channels are shown again" "$WIDE" 5 \
		'^> 1001 +1002 +Up .* SIP/1001-[0-9a-f]+ +SIP/1002-'
	keys "$WIDE" h
	expect_sipp_ok "the hang-up key ends the call: both phones get BYE" call_h uas_h
	expect_idle "after the hang-up key no channel is left"
	wait_screen "the switchboard shows the call gone and the hangup done" "$WIDE" 5 \
		'Calls \(0\)' 'Hangup SIP/1001-[0-9a-f]+: done'
	wait_screen "the other switchboard sees the call gone too" "$NARROW" 5 'Calls \(0\)'
}

test_originate() {
	start_phone uas_o1002 "$PORT_1002" uas_answer.xml -s 1002
	start_phone uas_o1003 "$PORT_1003A" uas_answer.xml -s 1003
	keys "$WIDE" o
	wait_screen "'o' asks for the endpoint" "$WIDE" 3 '^Originate from endpoint'
	keys "$WIDE" -l 1002
	keys "$WIDE" Enter
	wait_screen "then for the extension" "$WIDE" 3 '^Connect 1002 to extension\[@context\]: *$'
	keys "$WIDE" -l 1003
	keys "$WIDE" Enter
	wait_screen "the originated call shows 1002 talking to 1003" "$WIDE" 10 \
		'^> 1002 +1003 +Up ' 'Originate 1002 to 1003@default: done'
	keys "$WIDE" h
	expect_sipp_ok "hanging it up from the switchboard: both phones get BYE" uas_o1002 uas_o1003
	expect_idle "after the originated call no channel is left"
	# An error of the daemon reaches the message line.
	keys "$WIDE" o
	keys "$WIDE" -l 1004
	keys "$WIDE" Enter
	keys "$WIDE" -l 1003
	keys "$WIDE" Enter
	wait_screen "an originate to a phone that is not registered shows why it failed" "$WIDE" 5 \
		'^Originate 1004 to 1003@default failed: .*1004'
	keys "$WIDE" r
	wait_screen "'r' with no call says so" "$WIDE" 3 '^No call is selected\.'
	keys "$WIDE" o
	keys "$WIDE" Escape
	wait_screen "Esc cancels a prompt" "$WIDE" 3 '^Cancelled\.'
}

test_redirect() {
	start_phone uas_r1002 "$PORT_1002" uas_answer.xml -s 1002
	start_phone uas_r1003 "$PORT_1003A" uas_answer.xml -s 1003
	call_args 1002
	sipp_start call_r - uac_call_wait_bye.xml "${CALL_ARGS[@]}"
	wait_screen "a call 1001 -> 1002 is up" "$WIDE" 8 '^> 1001 +1002 +Up '
	keys "$WIDE" r
	wait_screen "'r' asks where to send the selected party" "$WIDE" 3 \
		'^Redirect SIP/1001-[0-9a-f]+ to extension\[@context\]:'
	keys "$WIDE" -l 1003
	keys "$WIDE" Enter
	wait_screen "the redirected caller talks to 1003" "$WIDE" 10 '^> 1001 +1003 +Up ' \
		'Redirect SIP/1001-[0-9a-f]+ to 1003@default: done'
	wait_screen "the 40-column switchboard follows" "$NARROW" 5 '^> 1001 +1003 +Up '
	keys "$WIDE" h
	expect_sipp_ok "1002 got BYE at the redirect; the caller and 1003 at the hang-up" \
		uas_r1002 call_r uas_r1003
	expect_idle "after the redirected call no channel is left"
}

test_restart() {
	local old_pid=$DAEMON_PID
	if ! stop_daemon "$DAEMON_PID" 20 || [ "$EXIT_STATUS" != 0 ]; then
		fail "plexusd stops with status 0" "got: ${EXIT_STATUS:-still running}"
	fi
	wait_screen "with plexusd gone the switchboard says so and forgets what it showed" "$WIDE" 5 \
		'disconnected, retrying' 'Registrations \(0\)'
	wait_screen "so does the 40-column one" "$NARROW" 5 'disconnected, retrying'
	expect_no_wrap "$NARROW" 40
	start_daemon "$D"
	[ "$DAEMON_PID" != "$old_pid" ] || fail "a new plexusd runs" "a new pid"
	wait_screen "after the restart it reconnects and shows the registrations again" "$WIDE" 10 \
		"Plexus switchboard \| Plexus .* \(pid $DAEMON_PID\)" 'Registrations \(2\)' \
		"^  1002 +sip:1002@127\.0\.0\.1:$PORT_1002" "^  1003 +sip:1003@"
	wait_screen "and so does the 40-column one" "$NARROW" 10 'Registrations \(2\)' '^  1002 ' '^  1003 '
}

test_help_and_quit() {
	local name status i
	keys "$WIDE" '?'
	wait_screen "'?' shows the keys and the columns" "$WIDE" 3 '^Keys' '^  h +hang up' '^Calls'
	keys "$WIDE" x
	wait_screen "any key closes the help" "$WIDE" 3 'Registrations \(2\)'
	for name in "$WIDE" "$NARROW"; do
		keys "$name" q
		for ((i = 0; i < 150; i++)); do
			[ -s "$TMP/$name.exit" ] && break
			sleep 0.1
		done
		status=$(cat "$TMP/$name.exit" 2>/dev/null)
		screen "$name"
		[ "$status" = 0 ] || fail "'q' quits the switchboard $name with status 0" \
			"got status '${status:-none within 15 s}'; the screen:" \
			"$(printf '%s\n' "$SCREEN" | sed 's/^/|/')" "its stderr:" "$(cat "$TMP/$name.stderr")" \
			"processes of the pane:" "$(ps -o pid,stat,wchan:20,args --ppid "${SB_PID[$name]}" 2>&1)"
		wait_exit "${SB_PID[$name]}" 5
	done
	pass "'q' quits both switchboards with status 0"
}

test_end() {
	local bad
	bad=$(grep -E '^\[[^]]*\] ERROR\[' "$D/plexus.log"
		grep -E 'Sanitizer|runtime error:' "$D/stderr" "$TMP/$WIDE.stderr" "$TMP/$NARROW.stderr")
	[ -z "$bad" ] || fail "plexusd and the switchboards logged no error and no sanitizer report" \
		"got:" "$bad"
	pass "plexusd and the switchboards logged no error and no sanitizer report"
	if ! stop_daemon "$DAEMON_PID" 20 || [ "$EXIT_STATUS" != 0 ]; then
		fail "plexusd stops with status 0" "got: ${EXIT_STATUS:-still running}"
	fi
	pass "plexusd stops with status 0"
}

setup
test_registrations_action
test_start
test_call_and_hangup
test_originate
test_redirect
test_restart
test_help_and_quit
test_end
finish
