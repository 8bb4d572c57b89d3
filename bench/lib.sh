# bench/lib.sh: process handling shared by the bench scripts (run.sh,
# media.sh), sourced after they set WORK (their work directory, which every
# process they start has on its command line) and STARTED (the pids they
# started), and define is_running PID. Only processes of ours are stopped,
# by pid; the work directory goes at exit unless BENCH_KEEP=1.

# Ours: still running and started with $WORK on its command line.
is_ours() {
	is_running "$1" && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF "$WORK"
}

# wait_gone PID SECONDS: 0 once the process has ended.
wait_gone() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		is_running "$1" || { wait "$1" 2>/dev/null; return 0; }
		sleep 0.1
	done
	return 1
}

# stop_pid PID: SIGTERM, then SIGKILL after 5 s; only a process of ours.
stop_pid() {
	is_ours "$1" || { wait "$1" 2>/dev/null; return 0; }
	kill -TERM "$1" 2>/dev/null
	wait_gone "$1" 5 && return 0
	kill -KILL "$1" 2>/dev/null
	wait_gone "$1" 2
}

# stop_sipp PID: SIPp's smooth exit (SIGUSR1: no new calls, finish the
# others), a second SIGUSR1 (exit now) after 3 s, then stop_pid.
stop_sipp() {
	is_ours "$1" || { wait "$1" 2>/dev/null; return 0; }
	kill -USR1 "$1" 2>/dev/null
	wait_gone "$1" 3 && return 0
	kill -USR1 "$1" 2>/dev/null
	wait_gone "$1" 3 && return 0
	stop_pid "$1"
}

cleanup() {
	local p
	for p in "${STARTED[@]}"; do
		is_ours "$p" && stop_pid "$p"
	done
	if [ "${BENCH_KEEP:-}" = 1 ]; then
		echo "# work directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
