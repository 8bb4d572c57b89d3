#!/bin/bash
# The console: the real plexus client and the protocol, against a real
# plexusd in a temporary directory. Checks "core show version" and plexus's
# exit statuses (0 success, 1 failed, 2 usage, 3 no such command, 4 no
# daemon); help; tab completion answered by the daemon, through the protocol
# (pxclient.py) and through the interactive client in a pseudo-terminal
# (ptydrive.py); unloading, loading and reloading res_db with its data
# kept; 20 consoles at once; clients killed in the middle of a 11 MB output
# and clients sending garbage, after which the daemon still serves others
# quickly; log lines reaching a console that has them on; and "plexus -r"
# reconnecting after the daemon restarts. The daemon must then still stop
# with status 0.

. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

PXCLIENT="$PYTHON $TEST_HELPERS/pxclient.py"
PTYDRIVE="$PYTHON $TEST_HELPERS/ptydrive.py"
# The interactive client keeps its history in $HOME.
export HOME=$TMP/home
mkdir -p "$HOME"

# ---------------------------------------------------------------- basics

test_version() {
	local version
	version=$("$PLEXUSD" -V | awk '{print $2}')
	px "$SOCK" 'core show version'
	expect_status "plexus -x 'core show version'" 0
	if ! [[ $PX_OUT =~ ^Plexus\ ${version//./\\.}\ \(module\ ABI\ [0-9]+\)$ ]]; then
		fail "plexus -x 'core show version' prints the version" \
			"expected: 'Plexus $version (module ABI N)'" "got:" "$PX_OUT"
	fi
	pass "plexus -x 'core show version' exits 0 and prints '$PX_OUT'"
	PX_OUT=$(timeout 20 "$PLEXUS" -C "$DAEMON_DIR/plexus.conf" -x 'core show version' 2>&1)
	PX_RC=$?
	expect_status "plexus -C plexus.conf finds the socket" 0
	expect_output "plexus -C plexus.conf finds the socket" '^Plexus '
	pass "plexus -C plexus.conf finds the socket in [console]"
}

test_exit_statuses() {
	check_cmd "a failing command ('module unload nosuch') exits 1" 'module unload nosuch' 1 \
		'nosuch: not loaded'
	check_cmd "a usage error ('core set verbose banana') exits 2 and prints the usage" \
		'core set verbose banana' 2 '^Usage: core set verbose'
	check_cmd "no such command exits 3" 'frobnicate the widgets' 3 'No such command'
	px "$TMP/no-such-socket" 'core show version'
	expect_status "no daemon (wrong socket) exits 4" 4
	expect_output "no daemon: plexus says it cannot connect" 'cannot connect'
	pass "no daemon (wrong socket) exits 4: $PX_OUT"
}

test_help() {
	local c
	px "$SOCK" 'help'
	expect_status "help" 0
	for c in 'core show version' 'core show threads' 'core reload' 'core stop' \
		'module load' 'module unload' 'module show' 'logger show' 'database get'; do
		expect_output "help lists '$c'" "^$c( |$)"
	done
	pass "help lists the core commands and res_db's"
	check_cmd "help module load prints its usage" 'help module load' 0 '^Usage: module load'
}

# ---------------------------------------------------------------- completion

# check_completion LINE EXPECTED_CANDIDATES(one string, newline separated)
check_completion() {
	local line=$1 want=$2 got rc
	got=$($PXCLIENT "$SOCK" complete "$line" 2>&1)
	rc=$?
	if [ $rc != 0 ] || [ "$got" != "$want" ]; then
		fail "completion of '$line'" "expected candidates:" "$want" \
			"got (status $rc):" "$got"
	fi
	pass "the daemon completes '$line' to: $(echo $got)"
}

test_completion_protocol() {
	local got
	check_completion 'mod' 'module'
	check_completion 'core s' $'set\nshow\nstop'
	check_completion 'core show v' 'version'
	check_completion 'nosuch' ''
	got=$($PXCLIENT "$SOCK" complete 'module unload ' 2>&1)
	if ! printf '%s\n' "$got" | grep -qx 'res_db'; then
		fail "completion of 'module unload ' lists res_db" "got:" "$got"
	fi
	pass "the daemon completes 'module unload ' with the loaded modules: $(echo $got)"
}

test_completion_pty() {
	local out
	out=$($PTYDRIVE --timeout 20 --transcript "$TMP/pty-complete.txt" \
		expect 'CLI> ' \
		send $'core sh\t' expect 'core show $' \
		send $'version\r' expect 'Plexus [^ ]+ \(module ABI [0-9]+\)' \
		send $'core s\t' expect 'set +show +stop' \
		send $'how uptime\r' expect 'System uptime: ' \
		send $'quit\r' exit 0 \
		-- "$PLEXUS" -s "$SOCK" 2>&1)
	if [ $? != 0 ]; then
		fail "tab completion in the interactive client" "$out"
	fi
	pass "interactive plexus in a pty: 'core sh<Tab>' becomes 'core show ' and runs"
	pass "interactive plexus in a pty: 'core s<Tab>' lists set, show, stop"
}

# ---------------------------------------------------------------- modules

test_res_db_unload_load() {
	check_cmd "database put" 'database put consoletest key1 value-kept' 0 \
		'Updated database successfully'
	check_cmd "module unload res_db" 'module unload res_db' 0 '^Unloaded res_db$'
	px "$SOCK" 'module show'
	expect_no_output "res_db is no longer listed" '^res_db '
	check_cmd "res_db's commands left with it" 'database get consoletest key1' 3
	check_cmd "module load res_db" 'module load res_db' 0 '^Loaded res_db$'
	check_cmd "the data survived unload and load" 'database get consoletest key1' 0 \
		'^Value: value-kept$'
	check_cmd "module reload res_db: res_db has no reload" 'module reload res_db' 1 \
		'does not support reloading'
	check_cmd "module reload (everything)" 'module reload' 0 '^Reload complete\.$'
	check_cmd "res_db still answers after the reloads" 'database get consoletest key1' 0 \
		'^Value: value-kept$'
}

# ---------------------------------------------------------------- many consoles

test_many_consoles() {
	local k out pids=() n
	mkdir -p "$TMP/many"
	out=$($PXCLIENT "$SOCK" many 20 'core show threads' --outdir "$TMP/many" 2>&1)
	if [ $? != 0 ]; then
		fail "20 protocol connections at once each run 'core show threads'" "$out"
	fi
	for ((k = 0; k < 20; k++)); do
		n=$(grep -c ' console/[0-9]' "$TMP/many/out.$k")
		if [ "$n" -lt 20 ]; then
			fail "all 20 consoles are connected at the same time" \
				"expected: at least 20 console threads in 'core show threads'" \
				"got $n in:" "$(cat "$TMP/many/out.$k")"
		fi
	done
	pass "20 protocol connections held at once each run 'core show threads' ($out)"

	for ((k = 0; k < 20; k++)); do
		timeout 30 "$PLEXUS" -s "$SOCK" -x 'core show threads' >"$TMP/many/x.$k" 2>&1 &
		pids+=($!)
		track_pid $!
	done
	for ((k = 0; k < 20; k++)); do
		if ! wait_exit "${pids[k]}" 30 || [ "$EXIT_STATUS" != 0 ] ||
			! grep -q 'threads listed\.$' "$TMP/many/x.$k"; then
			fail "20 'plexus -x' at once all succeed" \
				"client $k: status ${EXIT_STATUS:-(still running)}, output:" \
				"$(cat "$TMP/many/x.$k")"
		fi
	done
	pass "20 'plexus -x core show threads' run at once all succeed"
}

# ---------------------------------------------------------------- logs

test_log_to_console() {
	local wpid
	$PXCLIENT "$SOCK" watch 'Loaded tm_cli' 20 "$TMP/watch.ready" >"$TMP/watch.out" 2>&1 &
	wpid=$!
	track_pid $wpid
	if ! wait_for_file "$TMP/watch.ready" 10; then
		fail "a console with logs on gets ready" "got:" "$(cat "$TMP/watch.out")"
	fi
	px "$SOCK" 'module load tm_cli'
	expect_status "module load tm_cli" 0
	if [ "$PX_OUT" != "Loaded tm_cli" ]; then
		fail "plexus -x shows the command's output and no log lines" \
			"expected: 'Loaded tm_cli'" "got:" "$PX_OUT"
	fi
	pass "module load tm_cli (plexus -x prints only the command's output)"
	if ! wait_exit "$wpid" 20 || [ "$EXIT_STATUS" != 0 ] ||
		! grep -q 'VERBOSE.*Loaded tm_cli' "$TMP/watch.out"; then
		fail "a console with logs on sees the verbose 'Loaded tm_cli' line" \
			"got (status ${EXIT_STATUS:-(still running)}):" "$(cat "$TMP/watch.out")"
	fi
	pass "another console with logs on receives: $(sed -n 's/^log frame: //p' "$TMP/watch.out")"
}

# ---------------------------------------------------------------- vanishing clients

# The console threads of vanished clients end: only the asking one is left.
check_consoles_released() {
	local i
	for ((i = 0; i < 100; i++)); do
		px "$SOCK" 'core show settings'
		if printf '%s\n' "$PX_OUT" | grep -Eq 'Consoles connected: +1$'; then
			pass "$1"
			return
		fi
		sleep 0.1
	done
	fail "$1" "expected: 'Consoles connected: 1' within 10 s" "got:" "$PX_OUT"
}

test_client_killed_mid_output() {
	local fpid bytes out
	mkfifo "$TMP/flood.fifo"
	"$PLEXUS" -s "$SOCK" -x 'tm cli flood' >"$TMP/flood.fifo" 2>"$TMP/flood.err" &
	fpid=$!
	track_pid $fpid
	exec 3<"$TMP/flood.fifo"
	timeout 10 head -c 16384 <&3 >"$TMP/flood.head"
	bytes=$(stat -c %s "$TMP/flood.head")
	if [ "$bytes" -lt 16384 ] || ! grep -q '^flood line 0 of 200000' "$TMP/flood.head"; then
		exec 3<&-
		fail "plexus -x 'tm cli flood' starts receiving" "got $bytes bytes:" \
			"$(head -c 300 "$TMP/flood.head")" "$(cat "$TMP/flood.err")"
	fi
	# Its output is far from done (11 MB): plexus is blocked writing to us.
	if ! is_running "$fpid"; then
		exec 3<&-
		fail "plexus is still receiving the flood when killed" "it had already exited"
	fi
	kill -KILL "$fpid"
	exec 3<&-
	wait_exit "$fpid" 5
	pass "plexus -x 'tm cli flood' killed (SIGKILL) after $bytes bytes of output"
	check_answers "the daemon answers other consoles quickly after a client died mid-output"
	check_consoles_released "the dead client's console thread ends"

	out=$($PXCLIENT "$SOCK" abort 'tm cli flood' 65536 2>&1)
	if [ $? != 0 ]; then
		fail "a protocol client resets its connection mid-output" "$out"
	fi
	pass "a protocol client $out"
	check_answers "the daemon answers quickly after a connection reset mid-output"
	check_consoles_released "the reset client's console thread ends"
}

test_garbage() {
	local kind reason out mark cpid
	for kind in header long kind size; do
		case $kind in
		header) reason='malformed frame header' ;;
		long) reason='frame header too long' ;;
		kind) reason="unknown frame kind 'bogus'" ;;
		size) reason='malformed frame header' ;;
		esac
		mark=$(log_mark "$DAEMON_DIR/plexus.log")
		out=$($PXCLIENT "$SOCK" garbage "$kind" 2>&1)
		if [ $? != 0 ]; then
			fail "a client sending garbage ($kind) is disconnected" "$out"
		fi
		cpid=$(printf '%s\n' "$out" | sed -n 's/^client pid //p')
		if ! wait_for_log "$DAEMON_DIR/plexus.log" "$mark" \
			"WARNING.*console [0-9]+ \\(pid $cpid\\): $reason; closing" 5; then
			fail "the daemon logs a warning about the garbage ($kind)" \
				"expected: a WARNING naming pid $cpid and '$reason'" \
				"got:" "$(log_since "$DAEMON_DIR/plexus.log" "$mark")"
		fi
		pass "garbage ($kind) closes the connection with a warning: $reason"
	done
	check_answers "the daemon keeps serving after garbage"
	check_consoles_released "the garbage clients' console threads end"
}

# ---------------------------------------------------------------- reconnect

test_reconnect() {
	local dpid out
	$PTYDRIVE --timeout 45 --transcript "$TMP/pty-reconnect.txt" \
		expect 'Connected to Plexus' \
		expect 'CLI> ' \
		touch "$TMP/reconnect.ready" \
		expect 'Disconnected from Plexus server' \
		expect 'Reconnected to Plexus' \
		send $'core show uptime\r' expect 'System uptime: ' \
		send $'quit\r' exit 0 \
		-- "$PLEXUS" -r -s "$SOCK" >"$TMP/reconnect.out" 2>&1 &
	dpid=$!
	track_pid $dpid
	if ! wait_for_file "$TMP/reconnect.ready" 15; then
		fail "plexus -r connects" "got:" "$(cat "$TMP/reconnect.out")"
	fi
	if ! stop_daemon "$DAEMON_PID" 5 || [ "$EXIT_STATUS" != 0 ]; then
		fail "the daemon stops (for the restart) with status 0" \
			"got: ${EXIT_STATUS:-still running}"
	fi
	pass "the daemon stops with status 0 while an interactive plexus -r is connected"
	start_daemon "$DAEMON_DIR"
	if ! wait_exit "$dpid" 40 || [ "$EXIT_STATUS" != 0 ]; then
		fail "plexus -r reconnects after the daemon restarts" \
			"got (status ${EXIT_STATUS:-still running}):" "$(cat "$TMP/reconnect.out")"
	fi
	pass "plexus -r says 'Reconnected' after the daemon restarts and runs commands again"
}

test_stop() {
	if ! stop_daemon "$DAEMON_PID" 5 || [ "$EXIT_STATUS" != 0 ]; then
		fail "after all this, SIGTERM stops the daemon with status 0" \
			"got: ${EXIT_STATUS:-still running after 5 s}"
	fi
	pass "after all this, SIGTERM stops the daemon with status 0"
}

D=$TMP/console
make_module_dir "$D/modules" res_db tm_cli tm_base
write_plexus_conf "$D" "$D/modules" 1
write_modules_conf "$D" "autoload = no" "require = res_db"
start_daemon "$D"
pass "plexusd started for the console tests"

test_version
test_exit_statuses
test_help
test_completion_protocol
test_completion_pty
test_res_db_unload_load
test_many_consoles
test_log_to_console
test_client_killed_mid_output
test_garbage
test_reconnect
test_stop
finish
