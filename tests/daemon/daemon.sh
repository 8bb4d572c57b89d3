#!/bin/bash
# The life of the real plexusd daemon, each in its own configuration under a
# temporary directory: it starts and answers, lists res_db, refuses a second
# instance on the same configuration (exit 1, "already running"), reloads a
# valid plexus.conf on SIGHUP, keeps running on an invalid one and names the
# bad file:line (SIGHUP and "core reload", which exits 1), stops on SIGTERM
# with status 0 removing its socket and pidfile; it refuses a bad
# plexus.conf at start (exit 1, file:line on stderr) and a required module
# that fails (exit 2); it skips broken modules (bad ABI, unresolved symbol,
# no descriptor) with one log line each and loads the good ones; detached
# (no -f) it returns 0 once ready with its pid in the pidfile, stops on
# SIGTERM, and reports start-up failures on the terminal with a non-zero
# status. The threads that carry calls (here the media workers) run at
# plexus.conf's call_nice, -5 by default, and follow a reload that changes
# it; without the privilege to raise them plexusd says so once and they
# keep the nice value they started with, and it runs as before.

. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

# Start plexusd in the foreground expecting it to fail; its status goes to
# EXIT_STATUS, its stderr is in DIR/stderr.
run_failing_daemon() {
	local dir=$1
	timeout 20 "$PLEXUSD" -f -c "$dir" -C "$dir/plexus.conf" >"$dir/stdout" 2>"$dir/stderr"
	EXIT_STATUS=$?
}

# Line number of the first line of FILE matching ERE.
line_of() {
	grep -nE -- "$2" "$1" | head -n 1 | cut -d: -f1
}

# ---------------------------------------------------------------- start, show

test_start_and_module_show() {
	D=$TMP/main
	make_module_dir "$D/modules" res_db
	write_plexus_conf "$D" "$D/modules" 1
	write_modules_conf "$D" "autoload = yes" "require = res_db"
	start_daemon "$D"
	check_answers "plexusd -f starts and answers 'core show version'"
	check_cmd "'module show' lists res_db" 'module show' 0 '^res_db +Key/value database'
	# On jemalloc (not a sanitizer build) the heap's growth at start, the
	# modules loading, went through the prefault hook (core/heap_prefault.c).
	if grep -q '^#define HAVE_JEMALLOC 1' "$top_builddir/config.h"; then
		check_cmd "'core show settings' counts the heap's growth written ahead" \
			'core show settings' 0 'Heap written ahead: +[0-9]+ of [1-9][0-9]* MiB the heap grew by'
		check_cmd "'core show settings' says what purges kept of the heap's huge pages" \
			'core show settings' 0 'Huge pages kept whole: +[0-9]+ MiB given back, [0-9]+ MiB kept'
	else
		check_cmd "'core show settings' says the heap is not written ahead" \
			'core show settings' 0 'Heap written ahead: +no \(not jemalloc'"'"'s heap\)'
	fi
	if [ "$(cat "$D/plexusd.pid" 2>/dev/null)" != "$DAEMON_PID" ]; then
		fail "the pidfile holds the daemon's pid" "expected: $DAEMON_PID" \
			"got: $(cat "$D/plexusd.pid" 2>&1)"
	fi
	pass "the pidfile holds the daemon's pid"
}

test_second_instance_refused() {
	local err
	timeout 20 "$PLEXUSD" -f -c "$D" -C "$D/plexus.conf" >"$TMP/second.out" 2>"$TMP/second.err"
	EXIT_STATUS=$?
	err=$(cat "$TMP/second.err")
	if [ "$EXIT_STATUS" != 1 ] || ! grep -q 'already running' "$TMP/second.err"; then
		fail "a second plexusd on the same configuration is refused" \
			"expected: exit status 1 and 'already running' on stderr" \
			"got: exit status $EXIT_STATUS, stderr:" "$err"
	fi
	pass "a second plexusd on the same configuration is refused (exit 1: $err)"
	if [ "$(cat "$D/plexusd.pid" 2>/dev/null)" != "$DAEMON_PID" ]; then
		fail "the refused instance leaves the pidfile alone" "expected: $DAEMON_PID" \
			"got: $(cat "$D/plexusd.pid" 2>&1)"
	fi
	pass "the refused instance leaves the pidfile alone"
	check_answers "the first daemon still answers"
}

# ---------------------------------------------------------------- reload

test_sighup_valid() {
	local mark
	sed -i 's/^verbose = 1$/verbose = 3/' "$D/plexus.conf"
	mark=$(log_mark "$D/plexus.log")
	kill -HUP "$DAEMON_PID"
	if ! wait_for_log "$D/plexus.log" "$mark" 'Reload complete$' 10; then
		fail "SIGHUP with a valid plexus.conf reloads" \
			"expected: a log line ending in 'Reload complete'" \
			"got after the SIGHUP:" "$(log_since "$D/plexus.log" "$mark")"
	fi
	if log_since "$D/plexus.log" "$mark" | grep -Eq 'ERROR|WARNING'; then
		fail "SIGHUP with a valid plexus.conf reloads without complaints" \
			"expected: no ERROR or WARNING line" "got:" "$(log_since "$D/plexus.log" "$mark")"
	fi
	pass "SIGHUP with a valid plexus.conf: log says 'Reload complete'"
	check_cmd "the reloaded plexus.conf is in effect (verbosity at start 3)" \
		'core show settings' 0 'Verbosity at start: +3$'
}

test_sighup_invalid() {
	local mark n log
	# The bad line goes right under [options].
	sed -i '/^\[options\]$/a this line is broken' "$D/plexus.conf"
	sed -i 's/^verbose = 3$/verbose = 5/' "$D/plexus.conf"
	n=$(line_of "$D/plexus.conf" '^this line is broken$')
	BAD_LINE=$n
	mark=$(log_mark "$D/plexus.log")
	kill -HUP "$DAEMON_PID"
	if ! wait_for_log "$D/plexus.log" "$mark" 'keeping the running configuration' 10; then
		fail "SIGHUP with an invalid plexus.conf is refused" \
			"expected: 'keeping the running configuration' in the log" \
			"got after the SIGHUP:" "$(log_since "$D/plexus.log" "$mark")"
	fi
	log=$(log_since "$D/plexus.log" "$mark")
	if ! printf '%s\n' "$log" | grep 'keeping the running configuration' |
		grep -q "plexus.conf:$n:"; then
		fail "the SIGHUP error names plexus.conf:$n, the bad line" \
			"expected: 'plexus.conf:$n:' on the line saying 'keeping the running configuration'" \
			"got:" "$log"
	fi
	pass "SIGHUP with an invalid plexus.conf: log names plexus.conf:$n and keeps the running configuration"
	check_answers "the daemon still answers after the failed SIGHUP reload"
	check_cmd "the running configuration was kept (verbosity at start still 3)" \
		'core show settings' 0 'Verbosity at start: +3$'
}

test_core_reload_invalid() {
	px "$SOCK" 'core reload'
	expect_status "'core reload' with an invalid plexus.conf fails" 1
	expect_output "'core reload' names the bad file:line" "plexus.conf:$BAD_LINE:"
	pass "'core reload' with an invalid plexus.conf exits 1 and prints plexus.conf:$BAD_LINE"
	check_answers "the daemon still answers after the failed 'core reload'"
	# Repair it for what follows.
	sed -i '/^this line is broken$/d' "$D/plexus.conf"
	check_cmd "'core reload' with the repaired plexus.conf succeeds" 'core reload' 0 \
		'^Reload complete\.$'
}

# ---------------------------------------------------------------- call threads' priority

# thread_rows NAME_ERE: the rows of 'core show threads' for the threads
# whose name matches NAME_ERE, as "name nice calls".
thread_rows() {
	px "$SOCK" 'core show threads'
	printf '%s\n' "$PX_OUT" | awk -v re="^($1)\$" '$2 ~ re { print $2, $3, $4 }'
}

# expect_threads DESCRIPTION NAME_ERE NICE CALLS: every thread matching
# NAME_ERE (at least one) shows NICE and CALLS (yes, no).
expect_threads() {
	local rows bad
	rows=$(thread_rows "$2")
	bad=$(printf '%s\n' "$rows" | awk -v n="$3" -v c="$4" 'NF && ($2 != n || $3 != c)')
	if [ -z "$rows" ] || [ -n "$bad" ]; then
		fail "$1" "expected: threads matching '$2' at nice $3, carrying calls: $4" \
			"got:" "$PX_OUT"
	fi
	pass "$1"
}

test_call_nice() {
	local mark
	check_cmd "'core show settings' shows the call threads' nice value (-5 by default)" \
		'core show settings' 0 "Call threads' nice value: +-5$"
	expect_threads "the main and console threads do not carry calls and keep nice 0" \
		'main|console-accept' 0 no
	if [ "$(id -u)" = 0 ]; then
		expect_threads "as root the media threads carry calls at nice -5" 'media/[0-9]+' -5 yes
	else
		expect_threads "without the privilege the media threads keep nice 0" \
			'media/[0-9]+' 0 yes
	fi
	# Raising a nice value takes no privilege: the same for every user.
	sed -i '/^\[options\]$/a call_nice = 4' "$D/plexus.conf"
	mark=$(log_mark "$D/plexus.log")
	check_cmd "'core reload' with call_nice = 4 succeeds" 'core reload' 0 '^Reload complete\.$'
	expect_threads "after the reload the media threads run at nice 4" 'media/[0-9]+' 4 yes
	expect_threads "the main thread keeps nice 0 after the reload" 'main' 0 no
	if log_since "$D/plexus.log" "$mark" | grep -q 'cannot run at nice'; then
		fail "a call_nice the kernel grants is not complained about" \
			"got:" "$(log_since "$D/plexus.log" "$mark")"
	fi
	pass "a call_nice the kernel grants is not complained about"
	sed -i 's/^call_nice = 4$/call_nice = 42/' "$D/plexus.conf"
	px "$SOCK" 'core reload'
	expect_status "'core reload' with call_nice = 42 fails" 1
	expect_output "the error names plexus.conf's line of call_nice = 42" \
		"plexus.conf:$(line_of "$D/plexus.conf" '^call_nice = 42$'):.*call_nice"
	pass "call_nice = 42 is refused, naming plexus.conf's line"
	expect_threads "the refused reload leaves the media threads at nice 4" 'media/[0-9]+' 4 yes
	sed -i '/^call_nice = 42$/d' "$D/plexus.conf"
	check_cmd "'core reload' back to the default call_nice succeeds" 'core reload' 0 \
		'^Reload complete\.$'
	if [ "$(id -u)" = 0 ]; then
		expect_threads "back to the default the media threads run at nice -5 again" \
			'media/[0-9]+' -5 yes
	else
		expect_threads "back to the default the media threads stay at nice 4 (lowering it is refused)" \
			'media/[0-9]+' 4 yes
	fi
}

# A plexusd that may not raise a priority (root without CAP_SYS_NICE, or
# any other user, with RLIMIT_NICE at 0) says so once and runs its call
# threads at its own nice value.
test_call_nice_refused() {
	local d=$TMP/nonice pid n
	local -a drop=(prlimit --nice=0:0 --)
	make_module_dir "$d/modules" res_db
	write_plexus_conf "$d" "$d/modules"
	write_modules_conf "$d" "autoload = yes"
	[ "$(id -u)" = 0 ] && drop+=(setpriv --bounding-set=-sys_nice --)
	"${drop[@]}" "$PLEXUSD" -f -c "$d" -C "$d/plexus.conf" >"$d/stdout" 2>"$d/stderr" &
	pid=$!
	track_pid "$pid"
	if ! wait_for_socket "$d/plexus.ctl" 10 "$pid"; then
		DAEMON_DIR=$d
		fail "plexusd without the privilege to raise priorities starts" \
			"got: $(cat "$d/stderr")"
	fi
	pass "plexusd without the privilege to raise priorities starts and answers"
	wait_for_log "$d/plexus.log" 0 'The threads that carry calls cannot run at nice -5: ' 5 ||
		fail "it says the call threads cannot run at nice -5" "got:" "$(cat "$d/plexus.log")"
	n=$(grep -c 'cannot run at nice' "$d/plexus.log")
	[ "$n" = 1 ] || fail "it says so once, not for every call thread" "got $n lines:" \
		"$(grep 'cannot run at nice' "$d/plexus.log")"
	pass "it says once that the call threads cannot run at nice -5"
	SOCK=$d/plexus.ctl expect_threads "its media threads carry calls at nice 0" \
		'media/[0-9]+' 0 yes
	if ! stop_daemon "$pid" 10 || [ "$EXIT_STATUS" != 0 ]; then
		fail "it stops with status 0" "got: ${EXIT_STATUS:-(still running)}"
	fi
	untrack_pid "$pid"
	pass "it stops with status 0"
}

# ---------------------------------------------------------------- stop

test_sigterm() {
	local mark
	mark=$(log_mark "$D/plexus.log")
	if ! stop_daemon "$DAEMON_PID" 5; then
		fail "SIGTERM stops plexusd within 5 s" "expected: the process to exit" \
			"got: pid $DAEMON_PID still running after 5 s"
	fi
	if [ "$EXIT_STATUS" != 0 ]; then
		fail "SIGTERM: plexusd exits with status 0" "got: status $EXIT_STATUS"
	fi
	pass "SIGTERM: plexusd exits within 5 s with status 0"
	if [ -e "$SOCK" ] || [ -e "$D/plexusd.pid" ]; then
		fail "SIGTERM: socket and pidfile are removed" \
			"got: $(ls -l "$SOCK" "$D/plexusd.pid" 2>&1)"
	fi
	pass "SIGTERM: socket and pidfile are removed"
	if ! log_since "$D/plexus.log" "$mark" | grep -q 'Plexus stopped'; then
		fail "SIGTERM: log says 'Plexus stopped'" "got:" "$(log_since "$D/plexus.log" "$mark")"
	fi
	pass "SIGTERM: log says 'Plexus stopped'"
	DAEMON_PID=
}

# ---------------------------------------------------------------- start-up failures

test_bad_config_at_start() {
	local d=$TMP/badconf n
	make_module_dir "$d/modules" res_db
	write_plexus_conf "$d" "$d/modules"
	write_modules_conf "$d" "autoload = yes"
	sed -i '/^\[console\]$/a socket_typo_without_equals' "$d/plexus.conf"
	n=$(line_of "$d/plexus.conf" '^socket_typo_without_equals$')
	run_failing_daemon "$d"
	if [ "$EXIT_STATUS" != 1 ] || ! grep -q "$d/plexus.conf:$n:" "$d/stderr"; then
		DAEMON_DIR=$d
		fail "a bad plexus.conf at start: exit status 1, stderr names the file:line" \
			"expected: status 1 and '$d/plexus.conf:$n:' on stderr" \
			"got: status $EXIT_STATUS"
	fi
	pass "a bad plexus.conf at start: exit 1, stderr: $(head -n 1 "$d/stderr")"
	if [ -e "$d/plexus.ctl" ] || [ -e "$d/plexusd.pid" ]; then
		fail "a refused start leaves no socket or pidfile" "got: $(ls "$d")"
	fi
	pass "a refused start leaves no socket or pidfile"
}

test_required_module_fails() {
	local d=$TMP/required
	make_module_dir "$d/modules" res_db tm_load_fails
	write_plexus_conf "$d" "$d/modules"
	write_modules_conf "$d" "autoload = yes" "require = tm_load_fails"
	run_failing_daemon "$d"
	if [ "$EXIT_STATUS" != 2 ]; then
		DAEMON_DIR=$d
		fail "a required module that fails to load: exit status 2" "got: status $EXIT_STATUS"
	fi
	if ! grep -q 'required module tm_load_fails not loaded' "$d/stderr"; then
		DAEMON_DIR=$d
		fail "a required module that fails to load is named on stderr" \
			"expected: 'required module tm_load_fails not loaded'"
	fi
	pass "require = tm_load_fails: plexusd exits with status 2 naming the module"
	if [ -e "$d/plexus.ctl" ] || [ -e "$d/plexusd.pid" ]; then
		fail "the failed start removes its socket and pidfile" "got: $(ls "$d")"
	fi
	pass "the failed start removes its socket and pidfile"
}

# ---------------------------------------------------------------- broken modules

# check_one_log_line MODULE ERE: exactly one log line names MODULE, a
# warning matching ERE.
check_one_log_line() {
	local m=$1 re=$2 lines count
	lines=$(grep -E "\\b$m\\b" "$DAEMON_DIR/plexus.log")
	count=$(printf '%s\n' "$lines" | grep -c .)
	if [ "$count" != 1 ] || ! printf '%s\n' "$lines" | grep -Eq "WARNING.*Module $m not loaded: .*$re"; then
		fail "$m is reported in one log line saying why ($re)" \
			"expected: one WARNING line 'Module $m not loaded: ...' matching: $re" \
			"got $count line(s):" "$lines"
	fi
	pass "$m is reported in one log line: ${lines#*: }"
}

test_broken_modules() {
	local d=$TMP/broken m
	make_module_dir "$d/modules" res_db tm_base tm_cli tm_bad_abi tm_unresolved tm_no_descriptor
	write_plexus_conf "$d" "$d/modules"
	write_modules_conf "$d" "autoload = yes"
	start_daemon "$d"
	check_answers "with broken modules in its directory, plexusd runs and answers"
	px "$SOCK" 'module show'
	for m in res_db tm_base tm_cli; do
		expect_output "good module $m is loaded next to broken ones" "^$m "
	done
	for m in tm_bad_abi tm_unresolved tm_no_descriptor; do
		expect_no_output "broken module $m is not loaded" "^$m "
	done
	expect_output "'module show' counts the 3 good modules" '^3 modules loaded$'
	pass "the good modules (res_db, tm_base, tm_cli) are loaded, the broken ones not"
	check_one_log_line tm_bad_abi 'ABI'
	check_one_log_line tm_no_descriptor 'no px_module_info descriptor'
	check_one_log_line tm_unresolved 'undefined symbol.*px_function_that_does_not_exist'
	if ! stop_daemon "$DAEMON_PID" 5 || [ "$EXIT_STATUS" != 0 ]; then
		fail "plexusd with broken modules stops cleanly" "got: status ${EXIT_STATUS:-(still running)}"
	fi
	pass "plexusd with broken modules stops cleanly (status 0)"
}

# ---------------------------------------------------------------- detached

test_detached() {
	local d=$TMP/detached pid i
	make_module_dir "$d/modules" res_db
	write_plexus_conf "$d" "$d/modules"
	write_modules_conf "$d" "autoload = yes"
	DAEMON_DIR=$d
	SOCK=$d/plexus.ctl
	timeout 30 "$PLEXUSD" -c "$d" -C "$d/plexus.conf" >"$d/stdout" 2>"$d/stderr"
	EXIT_STATUS=$?
	pid=$(cat "$d/plexusd.pid" 2>/dev/null)
	if [ -n "$pid" ] && [ "$pid" -gt 1 ] 2>/dev/null; then
		track_pid "$pid"
	fi
	if [ "$EXIT_STATUS" != 0 ]; then
		fail "detached plexusd (no -f) returns 0" "got: status $EXIT_STATUS, stderr:" \
			"$(cat "$d/stderr")"
	fi
	pass "detached plexusd (no -f) returns 0"
	# No waiting: it returned once ready.
	px "$SOCK" 'core show version'
	expect_status "the detached daemon answers as soon as the command returned" 0
	pass "the detached daemon answers as soon as the command returned"
	DAEMON_PID=$pid
	if [ -z "$pid" ] || ! is_running "$pid" ||
		! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "plexusd -c $d "; then
		fail "the pidfile holds the pid of the running daemon" "got pidfile: '$pid'" \
			"process: $(ps -o pid,ppid,args -p "${pid:-1}" 2>&1)"
	fi
	if ! grep -q "Plexus ready (pid $pid," "$d/plexus.log"; then
		fail "the daemon's log agrees with the pidfile" "expected: 'Plexus ready (pid $pid,'"
	fi
	pass "the pidfile holds the pid of the running detached daemon ($pid)"
	if ! stop_daemon "$pid" 5; then
		fail "SIGTERM to the pid in the pidfile stops the detached daemon" \
			"got: pid $pid still running after 5 s"
	fi
	if [ -e "$SOCK" ] || [ -e "$d/plexusd.pid" ] || ! grep -q 'Plexus stopped' "$d/plexus.log"; then
		fail "the detached daemon stops cleanly" \
			"expected: socket and pidfile removed, 'Plexus stopped' logged" "got: $(ls "$d")"
	fi
	pass "SIGTERM to the pid in the pidfile stops the detached daemon cleanly"
	DAEMON_PID=
}

test_detached_failures() {
	local d=$TMP/detached-bad n
	make_module_dir "$d/modules" res_db tm_load_fails
	write_plexus_conf "$d" "$d/modules"
	write_modules_conf "$d" "autoload = yes"
	echo "this line is broken" >>"$d/plexus.conf"
	n=$(line_of "$d/plexus.conf" '^this line is broken$')
	timeout 30 "$PLEXUSD" -c "$d" -C "$d/plexus.conf" >"$d/stdout" 2>"$d/stderr"
	EXIT_STATUS=$?
	if [ "$EXIT_STATUS" = 0 ] || ! grep -q "plexus.conf:$n:" "$d/stderr"; then
		DAEMON_DIR=$d
		fail "detached start with a bad plexus.conf fails on the terminal" \
			"expected: non-zero status and 'plexus.conf:$n:' on stderr" \
			"got: status $EXIT_STATUS"
	fi
	pass "detached start with a bad plexus.conf: status $EXIT_STATUS, stderr: $(head -n 1 "$d/stderr")"

	# A failure after the fork must come back through the parent too.
	sed -i '$d' "$d/plexus.conf"
	write_modules_conf "$d" "autoload = yes" "require = tm_load_fails"
	timeout 30 "$PLEXUSD" -c "$d" -C "$d/plexus.conf" >"$d/stdout" 2>"$d/stderr"
	EXIT_STATUS=$?
	if [ "$EXIT_STATUS" != 2 ] || ! grep -q 'tm_load_fails' "$d/stderr"; then
		DAEMON_DIR=$d
		fail "detached start with a failing required module: status 2 and the reason on stderr" \
			"got: status $EXIT_STATUS"
	fi
	pass "detached start with a failing required module: status 2, stderr: $(head -n 1 "$d/stderr")"
	if [ -e "$d/plexus.ctl" ] || [ -e "$d/plexusd.pid" ]; then
		fail "the failed detached start leaves no socket or pidfile" "got: $(ls "$d")"
	fi
	pass "the failed detached start leaves no socket or pidfile"
}

test_start_and_module_show
test_second_instance_refused
test_sighup_valid
test_sighup_invalid
test_core_reload_invalid
test_call_nice
test_call_nice_refused
test_sigterm
test_bad_config_at_start
test_required_module_fails
test_broken_modules
test_detached
test_detached_failures
finish
