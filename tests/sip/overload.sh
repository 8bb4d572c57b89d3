#!/bin/bash
# Overload control of the SIP thread, driven by the backlog of its socket:
# a real plexusd is stopped (SIGSTOP) for 1.5 s while SIPp sends it new
# calls at 4000 a second, so that thousands of INVITEs wait in its UDP
# socket when it resumes, as they would behind a stalled or saturated SIP
# thread. Checked:
#
#   - every INVITE gets an answer (401 or 503) and SIPp ends cleanly;
#   - some are refused with 503 and Retry-After, and plexusd logs that it
#     refuses new calls because messages wait in its socket queue, then
#     that the queue drained and how many calls it refused; "sip show
#     settings" says what the control watches and counts the refusals;
#   - none of the calls is left behind, and the next call right after the
#     storm is answered: 1001 calls 1002 through the dialplan;
#   - the session threads that carried the calls run at plexus.conf's
#     call_nice (-5; nice 0 and a notice without the privilege), ahead of
#     the console threads beside them, and the SIP thread, which every call
#     passes, five levels further (-10);
#   - a plexusd that the kernel lets run its call threads at call_nice but
#     not the SIP thread five levels further runs that one at call_nice
#     and says so once;
#   - plexusd stops cleanly.
#
# A stopped thread is not busy (no CPU time, no run-queue delay), so a
# control that only measured the thread's load would refuse nothing here.
# Every check prints "ok N".

. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/sip/siplib.sh"

SECRET_1001=test-secret-1001
SECRET_1002=test-secret-1002
STORM_CALLS=4000

# count_received NAME ERE: how many messages run NAME received whose
# start line matches ERE.
count_received() {
	awk -v re="$2" '
		/^(UDP|TCP) message received/ { first = 1; next }
		first && NF { first = 0; if ($0 ~ re) n++ }
		END { print n + 0 }' "$SIPP_DIR/$1.msg"
}

test_storm() {
	local log=$D/plexus.log mark n503 n401 msg
	check_cmd "sip show settings: overload control watches the SIP UDP socket, nothing refused" \
		'sip show settings' 0 \
		'^ Overload: +by the queue of 1 UDP socket \([0-9]+ of [0-9]+ kB at the last look\); not refusing; 0 new calls refused since start$'
	mark=$(log_mark "$log")
	sipp_start storm - uac_overload.xml -s 1002 -key caller 1001 \
		-r "$STORM_CALLS" -m "$STORM_CALLS" -l "$STORM_CALLS" -recv_timeout 15s
	sleep 0.2
	kill -STOP "$DAEMON_PID"
	sleep 1.5
	kill -CONT "$DAEMON_PID"
	sipp_wait storm
	if [ "$SIPP_RC" != 0 ]; then
		sipp_fail "every INVITE of the storm gets 401 or 503, SIPp ends cleanly" \
			"SIPp status 0" storm
	fi
	pass "every INVITE of the storm gets 401 or 503, SIPp ends cleanly"
	n503=$(count_received storm "^SIP/2.0 503 ")
	n401=$(count_received storm "^SIP/2.0 401 ")
	if [ "$n503" -lt 1 ]; then
		sipp_fail "new calls behind the backlog are refused with 503" \
			"at least one 503 (got $n503, and $n401 401s)" storm
	fi
	pass "new calls behind the backlog are refused with 503 ($n503 of them; $n401 challenged)"
	msg=$(sipp_message storm "^SIP/2.0 503 ")
	printf '%s\n' "$msg" | grep -Eq '^Retry-After: *[0-9]+' ||
		sipp_fail "the 503 carries Retry-After" "a Retry-After header" storm
	pass "the 503 carries Retry-After"
	wait_for_log "$log" "$mark" \
		'chan_sip: [0-9]+ kB of SIP messages wait in a socket queue: refusing new calls with 503' 5 ||
		fail "plexusd says new calls are refused while messages wait in its socket queue" \
			"$(log_since "$log" "$mark" | tail -n 20)"
	pass "plexusd says new calls are refused while messages wait in its socket queue"
	wait_for_log "$log" "$mark" \
		'chan_sip: the SIP socket queue drained; [1-9][0-9]* new calls were refused' 5 ||
		fail "plexusd says when the queue drained and how many calls it refused" \
			"$(log_since "$log" "$mark" | tail -n 20)"
	pass "plexusd says when the queue drained and how many calls it refused"
	check_cmd "sip show settings: not refusing any more, the refused calls counted" \
		'sip show settings' 0 \
		'^ Overload: +by the queue of 1 UDP socket \([0-9]+ of [0-9]+ kB at the last look\); not refusing; [1-9][0-9]* new calls refused since start$'
	expect_idle "after the storm no channel is left"
}

# call_1001_1002 RUN WHEN: 1002 registers, then 1001 calls it through the
# dialplan (answered, BYE half a second later); RUN names the SIPp runs,
# WHEN ends the checks' descriptions ("after the storm").
call_1001_1002() {
	sipp_run "reg_$1" "$PORT_1002" register.xml -s 1002 -au 1002 -ap "$SECRET_1002" \
		-key expires 3600
	[ "$SIPP_RC" = 0 ] || sipp_fail "1002 registers $2" "status 0" "reg_$1"
	sipp_start "phone_$1" "$PORT_1002" uas_answer.xml -s 1002
	sipp_start "call_$1" - uac_call.xml -s 1002 -key caller 1001 -au 1001 -ap "$SECRET_1001" \
		-d 500
	expect_sipp_ok "1001 calls 1002 $2: answered, BYE" "call_$1"
	expect_sipp_ok "1002 answered the call $2" "phone_$1"
}

test_call_after() {
	call_1001_1002 after "after the storm"
	pass "the first call after the storm is answered"
	expect_idle "after that call no channel is left"
}

# expect_call_threads SIP_NICE SESSION_NICE: in 'core show threads' (left
# in PX_OUT), the SIP thread carries every call ("all") at SIP_NICE, each
# session thread and the session pool's keeper carry calls at
# SESSION_NICE.
expect_call_threads() {
	local rows bad
	px "$SOCK" 'core show threads'
	rows=$(printf '%s\n' "$PX_OUT" | awk '$2 ~ /^(sip|session|session-pool)$/ { print $2, $3, $4 }')
	bad=$(printf '%s\n' "$rows" | awk -v s="$1" -v n="$2" \
		'($1 == "sip" && ($2 != s || $3 != "all")) || ($1 != "sip" && ($2 != n || $3 != "yes"))')
	if ! printf '%s\n' "$rows" | grep -q '^sip ' || ! printf '%s\n' "$rows" | grep -q '^session ' ||
		! printf '%s\n' "$rows" | grep -q '^session-pool ' || [ -n "$bad" ]; then
		fail "the SIP thread carries every call at nice $1, the session threads and their keeper carry calls at nice $2" \
			"got:" "$PX_OUT"
	fi
	pass "the SIP thread carries every call at nice $1, the keeper and $(printf '%s\n' "$rows" |
		grep -c '^session ') session threads carry calls at nice $2"
}

# The SIP thread and the session threads carry calls: as root they run at
# call_nice (-5 by default) and the SIP thread five levels ahead (-10),
# otherwise at the daemon's own nice value, said once in the log.
test_call_threads_nice() {
	local rows
	if [ "$(id -u)" != 0 ]; then
		grep -q 'The threads that carry calls cannot run at nice -5: ' "$D/plexus.log" ||
			fail "without the privilege plexusd says the call threads keep its nice value" \
				"got:" "$(tail -n 20 "$D/plexus.log")"
		expect_call_threads 0 0
	else
		expect_call_threads -10 -5
	fi
	rows=$(printf '%s\n' "$PX_OUT" | awk '$2 ~ /^console\// { print $2, $4 }')
	if [ -z "$rows" ] || printf '%s\n' "$rows" | grep -qv ' no$'; then
		fail "the console threads do not carry calls" "got:" "$PX_OUT"
	fi
	pass "the console threads do not carry calls"
}

# A plexusd started at nice 10 that may not lower a nice value (RLIMIT_NICE
# 0, and as root without CAP_SYS_NICE), with call_nice = 12: the kernel
# grants 12 (above where the threads start) but not 7, the step further
# for the SIP thread. That thread runs at call_nice with the session
# threads, and the log says so once.
test_sip_thread_nice_partly_refused() {
	local mark n
	mark=$(log_mark "$D/plexus.log")
	sed -i '/^\[options\]$/a call_nice = 12' "$D/plexus.conf"
	DAEMON_PREFIX=(prlimit --nice=0:0 --)
	[ "$(id -u)" = 0 ] && DAEMON_PREFIX+=(setpriv --bounding-set=-sys_nice --)
	DAEMON_PREFIX+=(nice -n 10)
	start_daemon "$D"
	DAEMON_PREFIX=()
	call_1001_1002 nice12 "with call_nice = 12"
	expect_call_threads 12 12
	n=$(log_since "$D/plexus.log" "$mark" |
		grep -c 'Thread sip, which every call passes, cannot run at nice 7: .*; it runs at call_nice (12)')
	[ "$n" = 1 ] || fail "it says once that the SIP thread cannot run at nice 7" \
		"got $n such lines in:" "$(log_since "$D/plexus.log" "$mark" | tail -n 20)"
	if log_since "$D/plexus.log" "$mark" | grep -q 'The threads that carry calls cannot run'; then
		fail "it does not say that the other call threads cannot run at 12 (they can)" \
			"got:" "$(log_since "$D/plexus.log" "$mark" | grep 'cannot run')"
	fi
	pass "it says once that the SIP thread cannot run at nice 7, and nothing about the others"
	if ! stop_daemon "$DAEMON_PID" 10 || [ "$EXIT_STATUS" != 0 ]; then
		fail "that plexusd stops with status 0" "got: ${EXIT_STATUS:-(still running)}"
	fi
	untrack_pid "$DAEMON_PID"
	pass "that plexusd stops with status 0"
}

sip_start_standard
test_storm
test_call_after
test_call_threads_nice
if ! stop_daemon "$DAEMON_PID" 10 || [ "$EXIT_STATUS" != 0 ]; then
	fail "plexusd stops with status 0" "got: ${EXIT_STATUS:-(still running)}"
fi
untrack_pid "$DAEMON_PID"
pass "plexusd stops with status 0"
test_sip_thread_nice_partly_refused
finish
