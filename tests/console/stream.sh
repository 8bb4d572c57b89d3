#!/bin/bash
# The event stream's console.conf settings, against a real plexusd:
# event_gather_ms decides how long a streaming console lets events gather
# (with 300 ms the first event after a quiet spell reaches a subscriber
# 300 ms or more after it happened, and within 2 s; after a reload to 0
# one is there within 200 ms); a bad value is refused at start (exit 1, stderr names
# console.conf:LINE) and on reload (the log names console.conf:LINE, the
# running value is kept). event_nice: the thread of a console that
# streams runs at that nice value under SCHED_BATCH
# (/proc/PID/task/TID/stat), the thread of a console that does not
# stream is untouched, and Unsubscribe gives the thread SCHED_OTHER back
# (and its nice value, when plexusd may lower it: CAP_SYS_NICE). Events
# as lines ("format":"lines", what plexus -e asks for): only event lines
# after the Subscribe's result, into a pipe and into a file. Events come
# from "module unload/load res_db".

. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

PXSTREAM="$PYTHON $TEST_HELPERS/pxstream.py"

# write_events_conf DIR LINES...: console.conf with these [events] lines.
write_events_conf() {
	local dir=$1
	shift
	printf '[events]\n' >"$dir/console.conf"
	printf '%s\n' "$@" >>"$dir/console.conf"
}

# events_cycle: one ModuleUnloaded and one ModuleLoaded, then a quiet spell
# so that the next cycle starts a new gathering: a console that took
# events takes again one window later and only then, finding nothing,
# waits to be woken; the spell is 5 windows of 300 ms, room for a console
# thread that runs late on a busy machine.
events_cycle() {
	px "$SOCK" 'module unload res_db'
	px "$SOCK" 'module load res_db'
	sleep 1.5
}

# mark: the lines of OUT so far; new_lines: those written after the mark.
mark() {
	MARK=$(wc -l <"$OUT")
}
new_lines() {
	tail -n +$((MARK + 1)) "$OUT"
}

# wait_events N SECONDS: until N new event lines; false at the deadline.
wait_events() {
	local i
	for ((i = 0; i < $2 * 20; i++)); do
		[ "$(new_lines | grep -c 'Module')" -ge "$1" ] && return 0
		sleep 0.05
	done
	return 1
}

# console_threads: "NICE POLICY" of each console connection's thread
# (named console/N) of plexusd, one per line, sorted.
console_threads() {
	local t
	for t in /proc/"$DAEMON_PID"/task/*; do
		awk '$2 ~ /^\(console\/[0-9]+\)$/ {print $19, $41}' "$t/stat" 2>/dev/null
	done | sort
}

# expect_threads DESCRIPTION WANT: console_threads becomes WANT (5 s).
expect_threads() {
	local i got
	for ((i = 0; i < 100; i++)); do
		got=$(console_threads)
		[ "$got" = "$2" ] && break
		sleep 0.05
	done
	if [ "$got" != "$2" ]; then
		fail "$1" "expected (nice policy per console thread):" "$2" "got:" "$got"
	fi
	pass "$1"
}

test_bad_value_at_start() {
	local d=$TMP/bad n
	make_module_dir "$d/modules" res_db
	write_plexus_conf "$d" "$d/modules"
	write_modules_conf "$d" "autoload = yes"
	write_events_conf "$d" "queue_kb = 64" "event_gather_ms = 1001"
	timeout 20 "$PLEXUSD" -f -c "$d" -C "$d/plexus.conf" >"$d/stdout" 2>"$d/stderr"
	EXIT_STATUS=$?
	if [ "$EXIT_STATUS" != 1 ] || ! grep -q "$d/console.conf:3:" "$d/stderr"; then
		DAEMON_DIR=$d
		fail "event_gather_ms = 1001 at start: exit 1, stderr names console.conf:3" \
			"got: status $EXIT_STATUS, stderr:" "$(cat "$d/stderr")"
	fi
	pass "event_gather_ms = 1001 at start is refused: $(grep -m1 console.conf "$d/stderr")"
	write_events_conf "$d" "event_nice = 20"
	timeout 20 "$PLEXUSD" -f -c "$d" -C "$d/plexus.conf" >"$d/stdout" 2>"$d/stderr"
	EXIT_STATUS=$?
	if [ "$EXIT_STATUS" != 1 ] || ! grep -q "$d/console.conf:2:" "$d/stderr"; then
		DAEMON_DIR=$d
		fail "event_nice = 20 at start: exit 1, stderr names console.conf:2" \
			"got: status $EXIT_STATUS, stderr:" "$(cat "$d/stderr")"
	fi
	pass "event_nice = 20 at start is refused: $(grep -m1 console.conf "$d/stderr")"
}

test_gather_window() {
	local i slow fast mark
	MARK=0
	for ((i = 0; i < 3; i++)); do
		events_cycle
	done
	wait_events 6 5 || fail "6 events reach the subscriber" "got:" "$(cat "$OUT")"
	# Seconds from each event to its arrival: the first of a cycle
	# (ModuleUnloaded, after a quiet spell) waits the whole window (300 ms,
	# less 10 ms for the clocks), the next one the rest of it; none more
	# than the window and 2 s.
	slow=$(awk '(/ModuleUnloaded/ && $1 < 0.29) || (/Module/ && $1 > 2.3)' "$OUT")
	if [ -n "$slow" ]; then
		fail "with event_gather_ms = 300 the first event after a quiet spell arrives 0.3 to 2.3 s after it happened, the next ones with it" \
			"events outside (delay event):" "$slow" "all:" "$(cat "$OUT")"
	fi
	pass "with event_gather_ms = 300 events gather: the first after a quiet spell arrives 0.3 to 2.3 s after it happened ($(awk '{printf "%s ", $1}' "$OUT"))"

	# A bad value on reload: named, and the running window kept.
	mark=$(log_mark "$D/stderr")
	write_events_conf "$D" "event_nice = 7" "event_gather_ms = fast"
	kill -HUP "$DAEMON_PID"
	if ! wait_for_log "$D/stderr" "$mark" "console.conf:3:.*keeping the running roles" 5; then
		fail "a bad event_gather_ms on reload is logged with console.conf:3" \
			"log since:" "$(log_since "$D/stderr" "$mark")"
	fi
	pass "a bad event_gather_ms on reload is refused: $(log_since "$D/stderr" "$mark" | grep -m1 'console.conf:3')"
	# A reload wakes every console, which starts a period of its own
	# (events then wait less than a window): let it end first.
	sleep 1.5
	mark
	events_cycle
	wait_events 2 5 || fail "2 events reach the subscriber" "got:" "$(new_lines)"
	slow=$(new_lines | awk '/ModuleUnloaded/ && $1 < 0.29')
	[ -z "$slow" ] || fail "after the refused reload the window is still 300 ms" "got:" "$(new_lines)"
	pass "after the refused reload the window is still 300 ms"

	write_events_conf "$D" "event_nice = 7" "event_gather_ms = 0"
	mark=$(log_mark "$D/stderr")
	kill -HUP "$DAEMON_PID"
	# The reload is done when a console sees it: poll until a cycle's
	# events come fast (at most 5 cycles).
	for ((i = 0; i < 5; i++)); do
		mark
		events_cycle
		wait_events 2 5 || fail "2 events reach the subscriber" "got:" "$(new_lines)"
		fast=$(new_lines | awk '/Module/ && $1 < 0.2')
		[ -n "$fast" ] && break
	done
	[ -n "$fast" ] || fail "with event_gather_ms = 0 (reload) an event arrives within 0.2 s" \
		"got:" "$(new_lines)"
	pass "after a reload to event_gather_ms = 0 events arrive within 0.2 s ($(new_lines | awk '{printf "%s ", $1}'))"
}

test_nice() {
	local base streaming want_after
	# Relative to plexusd's own nice value (make check may run niced).
	base=$(awk '{print $19}' /proc/"$DAEMON_PID"/stat)
	streaming=$((base + 7 > 19 ? 19 : base + 7))
	want_after=$streaming
	# Two consoles: the subscriber, and one that only idles.
	expect_threads "a streaming console's thread runs at nice +7 under SCHED_BATCH (3), an idle console's untouched" \
		"$(printf '%s 0\n%s 3' "$base" "$streaming" | sort)"
	touch "$TMP/ctl1/unsubscribe"
	wait_for_file_line "$OUT" unsubscribed 5 || fail "Unsubscribe answered" "$(cat "$OUT")"
	# Lowering a nice value back needs CAP_SYS_NICE (bit 23).
	if (($(printf '%d' "0x$(awk '/^CapEff/ {print $2}' /proc/"$DAEMON_PID"/status)") >> 23 & 1)); then
		want_after=$base
	fi
	expect_threads "after Unsubscribe the thread is SCHED_OTHER again, nice $want_after" \
		"$(printf '%s 0\n%s 0' "$base" "$want_after" | sort)"
}

# wait_for_file_line FILE TEXT SECONDS
wait_for_file_line() {
	local i
	for ((i = 0; i < $3 * 20; i++)); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# only_module_lines FILE N: FILE is N lines, each a JSON object of a
# ModuleLoaded or ModuleUnloaded event (no frame, no log line, no result).
only_module_lines() {
	"$PYTHON" - "$1" "$2" <<'PY'
import json, sys
lines = open(sys.argv[1], "rb").read().split(b"\n")
if lines[-1] != b"":
    sys.exit("the last line does not end with a newline")
events = [json.loads(l)["event"] for l in lines[:-1]]
if len(events) != int(sys.argv[2]) or set(events) - {"ModuleLoaded", "ModuleUnloaded"}:
    sys.exit("got %r" % events)
PY
}

# count_module_lines FILE N SECONDS: until FILE has N event lines.
count_module_lines() {
	local i
	for ((i = 0; i < $3 * 20; i++)); do
		[ "$(grep -c '"event":"Module' "$1" 2>/dev/null)" -ge "$2" ] && return 0
		sleep 0.05
	done
	return 1
}

# Events as lines ("format":"lines"): nothing else on the connection after
# the Subscribe's result, neither log lines nor an answer to a later
# action; plexus -e asks for them and moves them to its output, a pipe
# (spliced straight) or a file (through a pipe of its own), and runs under
# SCHED_BATCH.
test_lines() {
	local pe_fifo pe_file out
	mkdir -p "$TMP/ctl3"
	$PXSTREAM "$SOCK" lines "$TMP/lines.ready" "$TMP/lines.out" "$TMP/ctl3" >"$TMP/lines.err" 2>&1 &
	track_pid $!
	wait_for_file "$TMP/lines.ready" 10 ||
		fail "\"format\":\"xml\" refused, \"format\":\"lines\" granted" "$(cat "$TMP/lines.err")"
	pass "Subscribe refuses \"format\":\"xml\" naming the field and grants \"format\":\"lines\""
	mkfifo "$TMP/pe.fifo"
	cat "$TMP/pe.fifo" >"$TMP/pe_fifo.out" &
	track_pid $!
	"$PLEXUS" -s "$SOCK" -e type=ModuleLoaded,ModuleUnloaded >"$TMP/pe.fifo" 2>"$TMP/pe_fifo.err" &
	pe_fifo=$!
	track_pid $pe_fifo
	"$PLEXUS" -s "$SOCK" -e type=ModuleLoaded,ModuleUnloaded >"$TMP/pe_file.out" 2>"$TMP/pe_file.err" &
	pe_file=$!
	track_pid $pe_file
	wait_for_file_line "$TMP/pe_fifo.err" "streaming events" 10 &&
		wait_for_file_line "$TMP/pe_file.err" "streaming events" 10 ||
		fail "two plexus -e subscribe" "$(cat "$TMP/pe_fifo.err" "$TMP/pe_file.err")"
	events_cycle
	events_cycle
	for out in lines pe_fifo pe_file; do
		count_module_lines "$TMP/$out.out" 4 5 ||
			fail "4 event lines reach $out" "got:" "$(cat "$TMP/$out.out")"
	done
	sleep 0.5 # what else might come (an answer, a log line) has come
	out=$(only_module_lines "$TMP/lines.out" 4 2>&1) ||
		fail "after \"format\":\"lines\" the connection carries only event lines" "$out" \
			"stream:" "$(cat "$TMP/lines.out")"
	pass "after \"format\":\"lines\" the connection carries 4 event lines and nothing else (no log line, no answer to a later Status)"
	out=$(only_module_lines "$TMP/pe_fifo.out" 4 2>&1) ||
		fail "plexus -e writes the events as lines into a pipe" "$out"
	out=$(only_module_lines "$TMP/pe_file.out" 4 2>&1) ||
		fail "plexus -e writes the events as lines into a file" "$out"
	pass "plexus -e writes the 4 events as JSON lines into a pipe and into a file"
	[ "$(awk '{print $41}' /proc/$pe_fifo/stat)" = 3 ] ||
		fail "plexus -e runs under SCHED_BATCH (3)" "stat: $(cat /proc/$pe_fifo/stat)"
	pass "plexus -e runs under SCHED_BATCH"
	kill $pe_fifo $pe_file
	touch "$TMP/ctl3/stop"
}

test_bad_value_at_start

D=$TMP/stream
OUT=$TMP/delays.out
mkdir -p "$TMP/ctl1" "$TMP/ctl2"
make_module_dir "$D/modules" res_db
write_plexus_conf "$D" "$D/modules" 1
write_modules_conf "$D" "autoload = no" "require = res_db"
write_events_conf "$D" "event_nice = 7" "event_gather_ms = 300"
start_daemon "$D"
pass "plexusd started with event_gather_ms = 300, event_nice = 7"
$PXSTREAM "$SOCK" delays "$TMP/delays.ready" "$OUT" "$TMP/ctl1" >"$TMP/delays.err" 2>&1 &
track_pid $!
$PXSTREAM "$SOCK" idle "$TMP/idle.ready" "$TMP/ctl1" >"$TMP/idle.err" 2>&1 &
track_pid $!
wait_for_file "$TMP/delays.ready" 10 || fail "a subscriber subscribes" "$(cat "$TMP/delays.err")"
wait_for_file "$TMP/idle.ready" 10 || fail "an idle console connects" "$(cat "$TMP/idle.err")"

test_nice
touch "$TMP/ctl1/stop"
OUT=$TMP/delays2.out
$PXSTREAM "$SOCK" delays "$TMP/delays2.ready" "$OUT" "$TMP/ctl2" >"$TMP/delays2.err" 2>&1 &
track_pid $!
wait_for_file "$TMP/delays2.ready" 10 || fail "a subscriber subscribes" "$(cat "$TMP/delays2.err")"
test_gather_window
touch "$TMP/ctl2/stop"
test_lines
if ! stop_daemon "$DAEMON_PID" 5 || [ "$EXIT_STATUS" != 0 ]; then
	fail "SIGTERM stops the daemon with status 0" "got: ${EXIT_STATUS:-still running after 5 s}"
fi
pass "SIGTERM stops the daemon with status 0"
finish
