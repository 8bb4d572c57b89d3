#!/bin/bash
# bench/events.sh [BUILD_DIR]: what the event stream costs, in CPU time.
#
# Not a load test: a fixed number of calls (CALLS, at RATE calls/s, well
# below what plexusd sustains) goes through plexusd with N "plexus -e"
# subscribers attached (every event, written to a file), for each N in
# SUBS. CPU seconds are counted, not calls/s, so the figures hold on a
# machine shared with other work: plexusd's utime+stime (/proc/PID/stat,
# every thread, also those that ended), its console threads' part, and the
# subscribers' own CPU (/proc/PID/task/*/schedstat, nanoseconds). The
# difference to the N = 0 run, divided by the events every subscriber got,
# is plexusd's cost per event per subscriber.
#
# It reuses run.sh (sourced: configuration, ports, plexusd and SIPp
# handling, subscribers). Bounded in count (-m) and time (every wait has a
# deadline); only the processes it started are stopped, by pid.
#
# Environment (defaults in brackets):
#   CALLS [3000]  RATE [200]  SUBS ["0 10"]  REPEAT [1] (runs of each N,
#   interleaved: 0 10 0 10 ...)  BENCH_KEEP=1 keeps the work directory.
#   PERF=DIR: record each run with perf (plexusd, and the first subscriber
#   if any) into DIR/plexusd-N-RUN.data and DIR/client-N-RUN.data.

set -u

EV_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
EV_CALLS=${CALLS:-3000}
EV_RATE=${RATE:-200}
EV_SUBS=${SUBS:-"0 10"}
EV_REPEAT=${REPEAT:-1}
EV_PERF=${PERF:-}
# run.sh's settings that matter here: no registration accounts.
REG_USERS=0
# The subscribers' lines are counted as their files grow (subs_settle).
EVENT_OUTPUT=file
RTP_PORTS=${RTP_PORTS:-2000}
# shellcheck source=run.sh
. "$EV_HERE/run.sh" "${1:-$EV_HERE/../build}" || exit 2

# task_ns PID [COMM_PREFIX]: CPU nanoseconds of the living threads of PID
# (those whose name starts with COMM_PREFIX), from schedstat; in TASK_NS.
task_ns_v() {
	local t c ns sum=0
	for t in /proc/"$1"/task/*; do
		if [ -n "${2:-}" ]; then
			{ read -r c <"$t/comm"; } 2>/dev/null || continue
			[[ $c == "$2"* ]] || continue
		fi
		{ read -r ns _ <"$t/schedstat"; } 2>/dev/null || continue
		sum=$((sum + ns))
	done
	TASK_NS=$sum
}

# subs_ns: the subscribers' CPU nanoseconds, all together, in SUBS_NS.
subs_ns_v() {
	local pid sum=0
	for pid in "${SUB_PIDS[@]}"; do
		task_ns_v "$pid"
		sum=$((sum + TASK_NS))
	done
	SUBS_NS=$sum
}

# subs_lines: event lines the subscribers wrote so far, all together.
subs_lines() {
	local k n=0
	for ((k = 0; k < ${#SUB_PIDS[@]}; k++)); do
		n=$((n + $(wc -l <"$WORK/$1.events.$k")))
	done
	echo "$n"
}

# subs_settle NAME: wait (at most 10 s) until the subscribers' output has
# not grown for half a second: the stream is drained.
subs_settle() {
	local i prev=-1 now
	[ "${#SUB_PIDS[@]}" -gt 0 ] || return 0
	for ((i = 0; i < 20; i++)); do
		now=$(subs_lines "$1")
		[ "$now" = "$prev" ] && return 0
		prev=$now
		nap 0.5
	done
}

fmt_div() { # a b scale digits: a * scale / b
	awk -v a="$1" -v b="$2" -v s="$3" -v d="$4" 'BEGIN { if (b > 0) printf "%.*f", d, a * s / b; else print "-" }'
}

# one_run N: CALLS calls with N subscribers; sets E_* figures.
one_run() {
	local nsub=$1 name=ev-$1-$RUN_NO c0 c1 k0 k1 m0 m1 t0 t1 n=$EV_CALLS
	E_OK=0 E_FAIL=0 E_PD_US=- E_CON_US=- E_EV=0 E_LOST=0 E_SUB_NS=0 E_CPU_S=0
	start_plexusd
	register_uas || { stop_plexusd; return 1; }
	sipp_bg "$name-uas" "$SLOT_UAS" -sf "$SCEN/uas_answer.xml" -m "$n" \
		-timeout $((n / EV_RATE + 40))s -recv_timeout 10s
	local uas_pid=$SIPP_PID
	EVENT_SUBSCRIBERS=$nsub
	subscribers_start "$name"
	sleep 0.3
	subs_ns_v
	k0=$SUBS_NS
	task_ns_v "$PD_PID" console/
	local con0=$TASK_NS
	c0=$(cpu_ticks "$PD_PID")
	m0=$(machine_busy)
	t0=$(now_ms)
	local perf_pids=()
	if [ -n "$EV_PERF" ]; then
		mkdir -p "$EV_PERF"
		perf record -q -g -o "$EV_PERF/plexusd-$name.data" -p "$PD_PID" >/dev/null 2>&1 &
		perf_pids+=("$!")
		if [ "$nsub" -gt 0 ]; then
			perf record -q -g -o "$EV_PERF/client-$name.data" -p "${SUB_PIDS[0]}" >/dev/null 2>&1 &
			perf_pids+=("$!")
		fi
	fi
	sipp_bg "$name-uac" "$SLOT_UAC" "127.0.0.1:$SIP_PORT" -sf "$SCEN/uac_call.xml" -s 1000 \
		-key caller uac -au uac -ap "$SECRET_UAC" -r "$EV_RATE" -m "$n" \
		-timeout $((n / EV_RATE + 30))s -recv_timeout 8s
	sipp_wait "$SIPP_PID" $((n / EV_RATE + 40))
	sipp_wait "$uas_pid" 10 >/dev/null || true
	subs_settle "$name"
	local p
	for p in "${perf_pids[@]}"; do
		kill -INT "$p" 2>/dev/null
		wait_gone "$p" 10 || kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	t1=$(now_ms)
	m1=$(machine_busy)
	c1=$(cpu_ticks "$PD_PID")
	task_ns_v "$PD_PID" console/
	local con1=$TASK_NS
	subs_ns_v
	k1=$SUBS_NS
	subscribers_stop "$name"
	E_OK=$(stat_col "$name-uac" 'SuccessfulCall(C)')
	E_FAIL=$(stat_col "$name-uac" 'FailedCall(C)')
	E_CPU_S=$(fmt_div $((c1 - c0)) "$HZ" 1 2)
	E_PD_US=$(fmt_div $((c1 - c0)) "$((E_OK * HZ))" 1000000 0)
	E_CON_US=$(fmt_div $((con1 - con0)) "$E_OK" 0.001 0)
	E_EV=${R_EVENTS:-0}
	[ "$E_EV" = - ] && E_EV=0
	E_LOST=${R_EVLOST:-0}
	E_SUB_NS=$((k1 - k0))
	E_MACHINE=$(fmt_pct $((m1 - m0)) $((t1 - t0)))
	log_problems >/dev/null
	stop_plexusd
	return 0
}

line "Plexus event stream cost, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores"
line "plexusd: $PLEXUSD; $EV_CALLS calls at $EV_RATE calls/s per run; subscribers: plexus -e (all events) > file"
hdr=$(printf '%4s %6s %5s %7s %8s %8s %9s %8s %9s %9s %8s' subs ok fail cpu-s us/call con-us/c \
	ev/sub ev/call sub-cpu-s sub-us/ev machine%)
line "$hdr"
declare -A SUM_US CNT_US SUM_EV SUM_SUBUS
RUN_NO=0
for ((rep = 0; rep < EV_REPEAT; rep++)); do
	for nsub in $EV_SUBS; do
		RUN_NO=$((RUN_NO + 1))
		if ! one_run "$nsub"; then
			line "$(printf '%4s  (no run: the UAS could not register)' "$nsub")"
			continue
		fi
		evcall=$(fmt_div "$E_EV" "$E_OK" 1 1)
		subus=-
		[ "$E_EV" -gt 0 ] && subus=$(fmt_div "$E_SUB_NS" $((E_EV * nsub)) 0.001 2)
		line "$(printf '%4s %6s %5s %7s %8s %8s %9s %8s %9s %9s %8s' "$nsub" "$E_OK" "$E_FAIL" \
			"$E_CPU_S" "$E_PD_US" "$E_CON_US" "$E_EV" "$evcall" \
			"$(fmt_div "$E_SUB_NS" 1000000000 1 2)" "$subus" "$E_MACHINE")"
		[ "$E_LOST" != 0 ] && [ "$E_LOST" != - ] && line "     !! $E_LOST EventsLost notices"
		[ "$E_FAIL" != 0 ] && line "     !! $E_FAIL failed calls: the figures of this run are suspect"
		if [ "$E_PD_US" != - ]; then
			SUM_US[$nsub]=$((${SUM_US[$nsub]:-0} + E_PD_US))
			CNT_US[$nsub]=$((${CNT_US[$nsub]:-0} + 1))
			SUM_EV[$nsub]=$((${SUM_EV[$nsub]:-0} + E_EV * 1000 / (E_OK > 0 ? E_OK : 1)))
			[ "$subus" != - ] && SUM_SUBUS[$nsub]=$(awk -v a="${SUM_SUBUS[$nsub]:-0}" -v b="$subus" 'BEGIN { print a + b }')
		fi
	done
done

line ""
base=${CNT_US[0]:-0}
if [ "$base" -gt 0 ]; then
	base_us=$((SUM_US[0] / CNT_US[0]))
	line "mean plexusd us/call without subscribers: $base_us"
	for nsub in $EV_SUBS; do
		[ "$nsub" -gt 0 ] && [ "${CNT_US[$nsub]:-0}" -gt 0 ] || continue
		us=$((SUM_US[$nsub] / CNT_US[$nsub]))
		evc=$(awk -v e="${SUM_EV[$nsub]}" -v c="${CNT_US[$nsub]}" 'BEGIN { printf "%.1f", e / c / 1000 }')
		line "$(awk -v us="$us" -v b="$base_us" -v n="$nsub" -v e="$evc" \
			-v s="${SUM_SUBUS[$nsub]:-0}" -v c="${CNT_US[$nsub]}" 'BEGIN {
			d = us - b
			printf "%d subscribers: plexusd %d us/call (+%d, %+.1f %%), %.1f events/call: %.2f us per event per subscriber in plexusd; clients %.2f us per event each\n",
				n, us, d, d * 100 / b, e, d / (e * n), s / c }')"
	done
fi
