# Shared helpers of the shell tests that drive the real plexusd and plexus
# binaries (sourced, not run). It finds the binaries through $top_builddir
# and $top_srcdir (exported by "make check"), makes one temporary directory
# per test script and removes it at exit, writes plexus.conf/modules.conf
# files that keep everything inside that directory, starts and stops
# daemons, and stops at exit only the processes the script started itself.
# Checks print "ok N - what" (TAP-like); the first failing check prints what
# was expected, what came back and the daemon's log tail, and exits 1.
#
# Every wait is bounded. Set PX_TEST_KEEP=1 to keep the temporary directory.

set -u

if [ -z "${top_builddir:-}" ]; then
	echo "top_builddir is not set: run this test through 'make check'," >&2
	echo "or set top_builddir (and top_srcdir) to the build and source trees." >&2
	exit 99
fi
top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}

PLEXUSD=$top_builddir/core/plexusd
PLEXUS=$top_builddir/console/plexus
PYTHON=/usr/bin/python3
BUILT_MODULE_DIR=$top_builddir/run/modules
TEST_MODULE_DIR=$top_builddir/tests/modules/.libs
TEST_HELPERS=$top_srcdir/tests/console

for f in "$PLEXUSD" "$PLEXUS"; do
	if [ ! -x "$f" ]; then
		echo "Bail out! $f is not built" >&2
		exit 99
	fi
done

# Every process this script started and may have to stop at exit.
STARTED_PIDS=()
# The daemon the checks talk to, its socket and its log (for failure reports).
DAEMON_PID=
DAEMON_DIR=
SOCK=
# A command start_daemon runs plexusd under (prlimit ..., setpriv ...).
DAEMON_PREFIX=()
CHECKS=0
TEST_START=$(date +%s)

# Short path: a control socket path must fit in sun_path (108 bytes).
TMP=$(mktemp -d "/tmp/px-$(basename "$0" .sh).XXXXXX") || {
	echo "Bail out! mktemp failed" >&2
	exit 99
}

# ---------------------------------------------------------------- reporting

pass() {
	CHECKS=$((CHECKS + 1))
	echo "ok $CHECKS - $*"
}

# Print the last lines of the current daemon's log and stderr.
show_daemon_logs() {
	local d=${1:-$DAEMON_DIR} f
	[ -n "$d" ] || return 0
	if [ -s "$d/plexus.log" ]; then
		echo "# --- last lines of $d/plexus.log:"
		tail -n 25 "$d/plexus.log" | sed 's/^/#   /'
	fi
	# stderr repeats the log; show what it has besides (sanitizer reports...).
	f=$d/stderr
	if [ -s "$f" ]; then
		echo "# --- last lines of $f not in the log:"
		if [ -s "$d/plexus.log" ]; then
			grep -vxFf "$d/plexus.log" "$f" | tail -n 25 | sed 's/^/#   /'
		else
			tail -n 25 "$f" | sed 's/^/#   /'
		fi
	fi
}

# fail DESCRIPTION [DETAIL...]: report a failed check and stop the script.
fail() {
	local what=$1
	shift
	CHECKS=$((CHECKS + 1))
	echo "not ok $CHECKS - $what"
	local line
	for line in "$@"; do
		printf '%s\n' "$line" | sed 's/^/# /'
	done
	show_daemon_logs
	exit 1
}

# Called at the very end of a successful script.
finish() {
	echo "1..$CHECKS"
	echo "# $(basename "$0"): $CHECKS checks passed in $(($(date +%s) - TEST_START)) s"
	exit 0
}

# ---------------------------------------------------------------- processes

is_running() {
	local pid=$1 state
	kill -0 "$pid" 2>/dev/null || return 1
	# A child that exited but was not waited for still answers kill -0.
	state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
	[ "$state" != Z ]
}

# wait_exit PID SECONDS: wait for a process to end; its exit status goes to
# EXIT_STATUS when it is our child ("" otherwise). Returns 1 on timeout.
wait_exit() {
	local pid=$1 secs=$2 i
	EXIT_STATUS=
	for ((i = 0; i < secs * 20; i++)); do
		is_running "$pid" || break
		sleep 0.05
	done
	if is_running "$pid"; then
		return 1
	fi
	untrack_pid "$pid"
	if wait "$pid" 2>/dev/null; then
		EXIT_STATUS=0
	else
		EXIT_STATUS=$?
		# 127: not our child, nothing to collect.
		[ "$EXIT_STATUS" = 127 ] && EXIT_STATUS=
	fi
	return 0
}

# Remember a process so that it is stopped at exit if still running.
track_pid() {
	STARTED_PIDS+=("$1")
}

# Forget a process seen to have ended: its pid may be reused by another.
untrack_pid() {
	local keep=() p
	for p in "${STARTED_PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	STARTED_PIDS=("${keep[@]}")
}

# A tracked process still running and still ours: every process a test
# starts has the temporary directory on its command line.
is_ours() {
	is_running "$1" && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF "$TMP"
}

cleanup() {
	local pid pids=()
	for pid in "${STARTED_PIDS[@]}"; do
		if is_ours "$pid"; then
			pids+=("$pid")
			kill -TERM "$pid" 2>/dev/null
		fi
	done
	for pid in "${pids[@]}"; do
		if ! wait_exit "$pid" 5; then
			echo "# pid $pid did not stop on SIGTERM; killing it" >&2
			kill -KILL "$pid" 2>/dev/null
			wait_exit "$pid" 2
		fi
	done
	if [ "${PX_TEST_KEEP:-}" = 1 ]; then
		echo "# kept $TMP"
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- configuration

# make_module_dir DIR NAME...: DIR gets symlinks to the named modules
# (res_db from the build, tm_* from the test modules).
make_module_dir() {
	local dir=$1 name src
	shift
	mkdir -p "$dir"
	for name in "$@"; do
		case $name in
		tm_*) src=$TEST_MODULE_DIR/$name.so ;;
		*) src=$BUILT_MODULE_DIR/$name.so ;;
		esac
		if [ ! -e "$src" ]; then
			echo "Bail out! module $src is not built" >&2
			exit 99
		fi
		ln -sf "$src" "$dir/$name.so"
	done
}

# write_plexus_conf DIR MODULE_DIR [VERBOSE]: a plexus.conf keeping state,
# database, pidfile, socket and log inside DIR.
write_plexus_conf() {
	local dir=$1 moddir=$2 verbose=${3:-1}
	mkdir -p "$dir"
	cat >"$dir/plexus.conf" <<EOF
; plexus.conf written by $(basename "$0")
[options]
verbose = $verbose
debug = 0
module_dir = $moddir
state_dir = $dir/state
database = $dir/state/plexus.db
pidfile = $dir/plexusd.pid

[console]
socket = $dir/plexus.ctl
mode = 0600

[logger]
stderr = error,warning,notice,verbose
file = $dir/plexus.log
file_levels = error,warning,notice,verbose
syslog = none
EOF
}

# write_modules_conf DIR LINE...: a modules.conf whose [modules] section has
# the given lines.
write_modules_conf() {
	local dir=$1
	shift
	{
		echo "[modules]"
		printf '%s\n' "$@"
	} >"$dir/modules.conf"
}

# write_rtp_conf DIR START END: an rtp.conf giving RTP the ports
# START-END, media on the default workers.
write_rtp_conf() {
	printf '[general]\nrtpstart = %s\nrtpend = %s\nworkers = 0\n' "$2" "$3" >"$1/rtp.conf"
}

# ---------------------------------------------------------------- console

# px SOCKET COMMAND: run "plexus -x COMMAND"; output (stdout and stderr) in
# PX_OUT, exit status in PX_RC.
px() {
	PX_OUT=$(timeout 20 "$PLEXUS" -s "$1" -x "$2" 2>&1)
	PX_RC=$?
}

# wait_for_file FILE SECONDS: until FILE exists; 1 if it does not in time.
wait_for_file() {
	local i
	for ((i = 0; i < $2 * 20; i++)); do
		[ -e "$1" ] && return 0
		sleep 0.05
	done
	return 1
}

# wait_for_socket SOCKET SECONDS [PID]: until "core show version" answers.
# Gives up early when PID (the daemon) has exited.
wait_for_socket() {
	local sock=$1 secs=$2 pid=${3:-} deadline
	deadline=$(($(date +%s) + secs))
	while [ "$(date +%s)" -lt "$deadline" ]; do
		if [ -S "$sock" ] &&
			timeout 5 "$PLEXUS" -s "$sock" -x 'core show version' >/dev/null 2>&1; then
			return 0
		fi
		if [ -n "$pid" ] && ! is_running "$pid"; then
			return 1
		fi
		sleep 0.1
	done
	return 1
}

# start_daemon DIR [SECONDS]: start plexusd in the foreground on DIR's
# configuration and wait until it answers; sets DAEMON_PID, DAEMON_DIR, SOCK.
start_daemon() {
	local dir=$1 secs=${2:-10}
	DAEMON_DIR=$dir
	SOCK=$dir/plexus.ctl
	"${DAEMON_PREFIX[@]}" "$PLEXUSD" -f -c "$dir" -C "$dir/plexus.conf" \
		>>"$dir/stdout" 2>>"$dir/stderr" &
	DAEMON_PID=$!
	track_pid "$DAEMON_PID"
	if ! wait_for_socket "$SOCK" "$secs" "$DAEMON_PID"; then
		if is_running "$DAEMON_PID"; then
			fail "plexusd starts and answers on $SOCK" \
				"expected: 'plexus -x \"core show version\"' to succeed within $secs s" \
				"got: no answer"
		fi
		wait_exit "$DAEMON_PID" 1
		fail "plexusd starts and answers on $SOCK" \
			"expected: a running daemon" "got: plexusd exited with status $EXIT_STATUS"
	fi
}

# stop_daemon PID SECONDS: SIGTERM and wait; status in EXIT_STATUS. Returns
# 1 when it did not stop in time.
stop_daemon() {
	kill -TERM "$1" 2>/dev/null
	wait_exit "$1" "$2"
}

# ---------------------------------------------------------------- logs

# log_mark FILE: the current size of FILE, to look at what comes after.
log_mark() {
	if [ -e "$1" ]; then
		stat -c %s "$1"
	else
		echo 0
	fi
}

# log_since FILE MARK: what was appended to FILE after log_mark.
log_since() {
	tail -c +$(($2 + 1)) "$1" 2>/dev/null
}

# wait_for_log FILE MARK ERE SECONDS: until a line matching ERE appears
# after MARK.
wait_for_log() {
	local file=$1 mark=$2 re=$3 secs=$4 i
	for ((i = 0; i < secs * 20; i++)); do
		if log_since "$file" "$mark" | grep -Eq -- "$re"; then
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# ---------------------------------------------------------------- checks

# expect_status DESCRIPTION EXPECTED: check PX_RC of the last px call.
expect_status() {
	if [ "$PX_RC" != "$2" ]; then
		fail "$1" "expected exit status $2, got $PX_RC" "output:" "$PX_OUT"
	fi
}

# expect_output DESCRIPTION ERE: check that PX_OUT has a line matching ERE.
expect_output() {
	if ! printf '%s\n' "$PX_OUT" | grep -Eq -- "$2"; then
		fail "$1" "expected output matching: $2" "got (exit status $PX_RC):" "$PX_OUT"
	fi
}

# expect_no_output DESCRIPTION ERE: check that no line of PX_OUT matches ERE.
expect_no_output() {
	if printf '%s\n' "$PX_OUT" | grep -Eq -- "$2"; then
		fail "$1" "expected no output matching: $2" "got (exit status $PX_RC):" "$PX_OUT"
	fi
}

# check_cmd DESCRIPTION COMMAND STATUS [ERE]: run COMMAND on $SOCK, check its
# exit status and, given ERE, its output; prints ok.
check_cmd() {
	px "$SOCK" "$2"
	expect_status "$1" "$3"
	if [ $# -ge 4 ]; then
		expect_output "$1" "$4"
	fi
	pass "$1"
}

# check_answers DESCRIPTION: the daemon is alive and answers quickly.
check_answers() {
	local t0 t1
	if ! is_running "$DAEMON_PID"; then
		fail "$1" "expected plexusd (pid $DAEMON_PID) to be running" "got: it is gone"
	fi
	t0=$(date +%s%N)
	px "$SOCK" 'core show version'
	t1=$(date +%s%N)
	expect_status "$1" 0
	expect_output "$1" '^Plexus [^ ]+ \(module ABI [0-9]+\)$'
	if [ $(((t1 - t0) / 1000000)) -gt 3000 ]; then
		fail "$1" "expected an answer within 3 s" "got one after $(((t1 - t0) / 1000000)) ms"
	fi
	pass "$1"
}

# ---------------------------------------------------------------- network

# free_port_block COUNT [FIRST LAST]: print the first port of COUNT
# consecutive ports, even, between FIRST and LAST (default 20000-29999),
# that nothing holds on 127.0.0.1 for UDP or TCP right now and that no
# other running test has claimed. A test binds its ports only as it goes,
# so a bind check alone let two tests running side by side (make -j2
# check) take overlapping blocks, and a SIPp of one then found its port
# taken by the other. Claims are lines "FIRST LAST PID" in a file shared
# by all tests, under a lock; a claim whose test (PID, the script's $$) is
# gone is dropped. The search starts at a place derived from the pid, so
# that tests try different blocks first. Returns 1 when none is found.
free_port_block() {
	"$PYTHON" - "$1" "${2:-20000}" "${3:-29999}" "$$" "${TMPDIR:-/tmp}" <<'PYEOF'
import fcntl, os, socket, sys
count, first, last, pid = (int(a) for a in sys.argv[1:5])
registry = os.path.join(sys.argv[5], "plexus-test-ports-%d" % os.getuid())
def free(port):
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
    return True
def alive(p):
    try:
        os.kill(p, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True
with open(registry + ".lock", "a") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    claims = []
    try:
        with open(registry) as f:
            for line in f:
                a, b, p = (int(x) for x in line.split())
                if alive(p):
                    claims.append((a, b, p))
    except FileNotFoundError:
        pass
    blocks = (last - first + 1) // count
    found = None
    for i in range(blocks):
        base = first + ((pid + i) % blocks) * count
        base += base % 2
        top = base + count - 1
        if top > last or any(a <= top and base <= b for a, b, _ in claims):
            continue
        if all(free(p) for p in range(base, base + count)):
            found = base
            break
    if found is not None:
        claims.append((found, found + count - 1, pid))
    with open(registry + ".new", "w") as f:
        f.writelines("%d %d %d\n" % c for c in claims)
    os.replace(registry + ".new", registry)
if found is None:
    sys.exit(1)
print(found)
PYEOF
}
