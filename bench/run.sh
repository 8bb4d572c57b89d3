#!/bin/bash
# bench/run.sh [BUILD_DIR]: load figures of plexusd on this machine.
#
# Not a test: it prints figures, never pass/fail, and is not part of
# "make check". Every load run is bounded in count (-m) and time (-timeout,
# -recv_timeout, an outer deadline), stays on loopback, and every process
# it starts is stopped by its pid. See bench/README.md for what each figure
# means.
#
# Phases (PHASES, default "calls baseline register plateau"):
#   calls     B2BUA calls/s through the Lua dialplan: SIPp UAC ('uac', digest
#             auth on INVITE) -> plexusd -> SIPp UAS (registered as 'uas');
#             steps of rate (CALL_RATES), CALL_SECS each, until the first
#             step with a failed call.
#   baseline  the same UAC scenario straight to a SIPp UAS (no plexusd), at
#             the rates the calls phase ran: what the load generator itself
#             sustains here.
#   register  REGISTER/s with digest auth over REG_USERS accounts, each
#             binding committed to the store before its 200; steps of rate
#             (REG_RATES), REG_SECS each, until the first failure.
#   plateau   calls at PLATEAU_RATE for PLATEAU_SECS, RSS every 10 s, and
#             again 10-40 s after the load stopped.
#
# Environment (defaults in brackets):
#   CALL_RATES ["100 250 500 750 1000 1500 2000 2500 3000 3500 4000"]
#   CALL_SECS [30]  BASE_SECS [15]
#   REG_RATES ["250 500 1000 1500 2000 3000 4000 5000 6000"]  REG_SECS [15]
#   REG_USERS [2000]
#   PLATEAU_SECS [60]  PLATEAU_RATE [half the highest clean call rate,
#                                    at least 100; 500 without the calls phase]
#   RTP_PORTS [10000]  PHASES  SIPP [sipp]
#   DIALPLAN [run.sh's own]: an extensions.lua to use instead of the
#     trivial one (its context "bench" must send any number to SIP/uas),
#     e.g. bench/dialplans/routing50.lua
#   EVENT_SUBSCRIBERS [0]: that many "plexus -e" clients stay subscribed
#             during each call step of plexusd, to measure what the event
#             stream costs calls/s (issue 9: with 10 subscribers, at most
#             10 % fewer calls/s). Each is what a monitoring user runs:
#             "plexus -s SOCKET -q -e" (every event; -q only drops the
#             banner on stderr). The step's report gives the events they
#             received, their EventsLost notices and their own CPU (on the
#             same cores as plexusd and SIPp: it is part of what the
#             machine does).
#   EVENT_OUTPUT [count]: where their JSON lines go. count: into
#             bench/event_sink (built here with cc), which counts lines and
#             EventsLost notices as a monitoring program would handle
#             events, in memory; file: into a file each (bench/events.sh,
#             which watches them grow). At 1500 calls/s ten files grow by
#             2.6 GB per 30 s step, whose page cache and writeback cost
#             the machine more than the subscribers themselves.
#   EVENT_FILTER [none]: the subscribers' filter (plexus -e FILTER), e.g.
#             ModuleLoaded to have events built and matched but none sent:
#             what emitting costs without the consoles' part.
#   SIPP_NICE [unset]: the SIPps run under "nice -n SIPP_NICE" (-5: the
#             priority of plexusd's call threads, plexus.conf call_nice), so
#             that the load generator is not what waits for a core.
#   BENCH_KEEP=1 keeps the work directory (logs, SIPp statistics, samples).
#
# bench/speed_probe (built here with cc) gauges the machine's own speed:
# once on the idle machine before the phases, and through every call step
# beside the load (columns mem-x and alu-x: the step's median time of the
# probe's fixed memory-bound and core-bound work over the idle one; 1.00 is
# the idle machine's speed). Each costs it under 1 % of a core.

set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${1:-$HERE/../build}
if ! BUILD=$(cd "$BUILD" 2>/dev/null && pwd); then
	echo "run.sh: build directory ${1:-$HERE/../build} not found" >&2
	exit 2
fi
PLEXUSD=$BUILD/core/plexusd
PLEXUS=$BUILD/console/plexus
BUILT_MODULES=$BUILD/run/modules
SCEN=$HERE/sipp
SIPP=${SIPP:-sipp}
PYTHON=/usr/bin/python3

CALL_RATES=${CALL_RATES:-"100 250 500 750 1000 1500 2000 2500 3000 3500 4000"}
CALL_SECS=${CALL_SECS:-30}
BASE_SECS=${BASE_SECS:-15}
REG_RATES=${REG_RATES:-"250 500 1000 1500 2000 3000 4000 5000 6000"}
REG_SECS=${REG_SECS:-15}
REG_USERS=${REG_USERS:-2000}
PLATEAU_SECS=${PLATEAU_SECS:-60}
PLATEAU_RATE=${PLATEAU_RATE:-}
PHASES=${PHASES:-"calls baseline register plateau"}
EVENT_SUBSCRIBERS=${EVENT_SUBSCRIBERS:-0}
SIPP_NICE=${SIPP_NICE:-}
EVENT_OUTPUT=${EVENT_OUTPUT:-count}
case $EVENT_OUTPUT in count | file) ;; *)
	echo "run.sh: EVENT_OUTPUT=$EVENT_OUTPUT: count or file" >&2
	exit 2
	;;
esac
DIALPLAN=${DIALPLAN:-}
if [ -n "$DIALPLAN" ] && [ ! -r "$DIALPLAN" ]; then
	echo "run.sh: DIALPLAN=$DIALPLAN: no such file" >&2
	exit 2
fi
DIALPLAN=${DIALPLAN:+$(realpath "$DIALPLAN")}

SECRET_UAC=bench-uac-secret
SECRET_UAS=bench-uas-secret
SECRET_USERS=bench-user-secret
BUFF=4194304
HZ=$(getconf CLK_TCK)

for f in "$PLEXUSD" "$PLEXUS"; do
	if [ ! -x "$f" ]; then
		echo "run.sh: $f is not built (give the build directory as argument)" >&2
		exit 2
	fi
done
for m in chan_sip res_registrar pbx_lua app_dial; do
	if [ ! -e "$BUILT_MODULES/$m.so" ]; then
		echo "run.sh: module $BUILT_MODULES/$m.so is not built" >&2
		exit 2
	fi
done
if ! command -v "$SIPP" >/dev/null 2>&1; then
	echo "run.sh: sipp not found (Debian package sip-tester)" >&2
	exit 2
fi

WORK=$(mktemp -d /tmp/px-bench.XXXXXX) || exit 2
STARTED=()
EVENT_SINK=$WORK/event_sink
if [ "$EVENT_SUBSCRIBERS" -gt 0 ] && [ "$EVENT_OUTPUT" = count ] &&
	! ${CC:-cc} -O2 -o "$EVENT_SINK" "$HERE/event_sink.c"; then
	echo "run.sh: cannot build $EVENT_SINK from $HERE/event_sink.c" >&2
	rm -rf "$WORK"
	exit 2
fi

SPEED_PROBE=$WORK/speed_probe
if ! ${CC:-cc} -O2 -o "$SPEED_PROBE" "$HERE/speed_probe.c"; then
	echo "run.sh: cannot build $SPEED_PROBE from $HERE/speed_probe.c" >&2
	rm -rf "$WORK"
	exit 2
fi

# ---------------------------------------------------------------- processes

. "$HERE/lib.sh"

# ---------------------------------------------------------------- /proc

# The sampling loops run while the load runs, on the same cores: they use
# no external command (a fork and exec costs about a millisecond of CPU on
# a small virtual machine, and polling with sed and awk took 30 % of a
# core). The *_v functions set a variable instead of printing.

# stat_v FILE: the fields of a /proc stat file after "pid (comm)" in STATF
# (STATF[11] utime, STATF[12] stime, STATF[7] minflt); 1 when it is gone.
stat_v() {
	local line
	STATF=()
	{ read -r line <"$1"; } 2>/dev/null || return 1
	# The command name may hold spaces and parentheses: cut at the last ')'.
	read -r -a STATF <<<"${line##*) }"
	return 0
}

# ticks_v PID [TID]: utime + stime in TICKS (clock ticks); empty when gone.
ticks_v() {
	TICKS=
	if [ -n "${2:-}" ]; then
		stat_v "/proc/$1/task/$2/stat" || return 1
	else
		stat_v "/proc/$1/stat" || return 1
	fi
	TICKS=$((STATF[11] + STATF[12]))
}

cpu_ticks() {
	ticks_v "$1" && echo "$TICKS"
}

# tid_ticks PID TID: CPU ticks of one thread (0 when unknown).
tid_ticks() {
	if [ -n "$2" ] && ticks_v "$1" "$2"; then echo "$TICKS"; else echo 0; fi
}

# minor_faults PID: page faults served without I/O, whole process.
minor_faults() {
	stat_v "/proc/$1/stat" && echo "${STATF[7]}"
}

# rss_v PID: VmRSS in kB in RSS.
rss_v() {
	local k v rest
	RSS=
	while read -r k v rest; do
		if [ "$k" = VmRSS: ]; then
			RSS=$v
			return 0
		fi
	done 2>/dev/null <"/proc/$1/status"
	return 1
}

# HUGE: plexusd's anonymous memory in transparent huge pages, in MB (its
# heap is almost all of that: core/heap_prefault.c keeps it whole).
huge_v() {
	local k v rest
	HUGE=
	while read -r k v rest; do
		if [ "$k" = AnonHugePages: ]; then
			HUGE=$((v / 1024))
			return 0
		fi
	done 2>/dev/null <"/proc/$1/smaps_rollup"
	return 1
}

rss_kb() {
	rss_v "$1" && echo "$RSS"
}

is_running() {
	kill -0 "$1" 2>/dev/null || return 1
	stat_v "/proc/$1/stat" || return 1
	# A child that exited but was not waited for is a zombie.
	[ "${STATF[0]}" != Z ]
}

# tid_of PID NAME: the id of the (first) thread named NAME.
tid_of() {
	local t c
	for t in /proc/"$1"/task/*; do
		{ read -r c <"$t/comm"; } 2>/dev/null || continue
		if [ "$c" = "$2" ]; then
			echo "${t##*/}"
			return 0
		fi
	done
}

# sipq_v: SOCK_RXQ (bytes waiting in its receive queue) and SOCK_DROPS
# (datagrams it dropped so far) of plexusd's SIP socket, as bench/sockq.py
# last wrote them (at most a quarter of a second old); "?" and status 1
# when the socket is not bound.
sipq_v() {
	SOCK_RXQ='?' SOCK_DROPS='?'
	{ read -r SOCK_RXQ SOCK_DROPS <"$WORK/sipq"; } 2>/dev/null
	[ "$SOCK_RXQ" != '?' ]
}

# schedwait_v PID TID: nanoseconds the thread spent runnable but waiting
# for a CPU so far (/proc/.../schedstat), in WAIT_NS (0 when unknown).
schedwait_v() {
	local wait
	WAIT_NS=0
	[ -n "$2" ] || return 0
	{ read -r _ wait _ <"/proc/$1/task/$2/schedstat"; } 2>/dev/null || return 0
	WAIT_NS=${wait:-0}
}

# machine_busy: CPU ticks all cores spent busy so far (/proc/stat: user,
# nice, system, irq, softirq, steal).
machine_busy() {
	local u n sy irq sirq st
	read -r _ u n sy _ _ irq sirq st _ </proc/stat
	echo $((u + n + sy + irq + sirq + st))
}

udp_rcvbuf_errors() {
	awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) col[$i] = i; h = 1 }
		       else print $col["RcvbufErrors"] }' /proc/net/snmp
}

# now_v: milliseconds since the epoch in NOW.
now_v() {
	local t=${EPOCHREALTIME/./}
	NOW=$((t / 1000))
}

now_ms() {
	now_v
	echo "$NOW"
}

# nap SECONDS: sleep without starting a process (a read that times out on
# a pipe nobody writes to).
exec {NAP_FD}<> <(:)
nap() {
	read -r -t "$1" -u "$NAP_FD" _ || true
}

# ---------------------------------------------------------------- ports

# Loopback ports outside the 20000-29999 range the tests use, in 30000-60999:
#   SIP_PORT     plexusd's SIP port (a block of 100 free ports)
#   SIP_PORT+10*k   SIPp slot k: -p, -cp (+1), -mp (+2, +4)
#   RTP range    RTP_PORTS free ports for plexusd (default 10000, the size
#                of the shipped rtp.conf's 10000-20000: 5000 legs), fewer
#                (down to 500) when no such block is free. A smaller range
#                than plexusd ships with changes what is measured: an ended
#                leg's socket is kept for reuse only once it has rested 1 s
#                (core/media.c), so below about 2 x rate x 1 s ports every
#                leg opens and closes its sockets (about 100 us a call more
#                at 1200 calls/s).
RTP_PORTS=${RTP_PORTS:-10000}
read -r BASE RTP_START RTP_PORTS < <("$PYTHON" - "$RTP_PORTS" 30000 60999 "$$" <<'PYEOF'
import socket, sys
want, first, last, pid = (int(a) for a in sys.argv[1:5])
cache = {}
def free(port):
    if port not in cache:
        ok = True
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(socket.AF_INET, kind)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                ok = False
            finally:
                s.close()
            if not ok:
                break
        cache[port] = ok
    return cache[port]
def block(count, avoid=None):
    starts = list(range(first, last - count + 2, 100))
    k = pid % len(starts)
    for base in starts[k:] + starts[:k]:
        if avoid and base < avoid[1] and avoid[0] < base + count:
            continue
        if all(free(p) for p in range(base, base + count)):
            return base
    return None
sip = block(100)
if sip is None:
    sys.exit(1)
n = want
while n >= 500:
    rtp = block(n, (sip, sip + 100))
    if rtp is not None:
        print(sip, rtp, n)
        sys.exit(0)
    n //= 2
sys.exit(1)
PYEOF
)
if [ -z "${RTP_START:-}" ]; then
	echo "run.sh: no free block of loopback ports in 30000-60999" >&2
	exit 2
fi
SIP_PORT=$BASE
SLOT_UAC=$((BASE + 10))
SLOT_UAS=$((BASE + 20))
SLOT_REG=$((BASE + 30))
RTP_END=$((RTP_START + RTP_PORTS - 2))

# The SIP socket's queue, watched for start_plexusd and the per-second
# samples (sipq_v); ends with this script (or after a day).
"$PYTHON" "$HERE/sockq.py" "$SIP_PORT" "$WORK/sipq" $$ 86400 &
STARTED+=("$!")

# ---------------------------------------------------------------- configuration

# The same configuration for every run: uac calls (context bench: any number
# dials SIP/uas), uas answers, u0000.. register.
make_config() {
	local d=$1 i
	mkdir -p "$d/modules" "$d/state"
	for i in chan_sip res_registrar pbx_lua app_dial codec_ulaw codec_alaw; do
		ln -sf "$BUILT_MODULES/$i.so" "$d/modules/$i.so"
	done
	cat >"$d/plexus.conf" <<EOF
; written by bench/run.sh
[options]
verbose = 0
debug = 0
module_dir = $d/modules
state_dir = $d/state
database = $d/state/plexus.db
pidfile = $d/plexusd.pid

[console]
socket = $d/plexus.ctl
mode = 0600

[logger]
stderr = error,warning,notice
file = $d/plexus.log
file_levels = error,warning,notice,verbose
syslog = none
EOF
	cat >"$d/modules.conf" <<EOF
[modules]
autoload = yes
require = chan_sip
require = res_registrar
require = pbx_lua
require = app_dial
EOF
	cat >"$d/rtp.conf" <<EOF
[general]
rtpstart = $RTP_START
rtpend = $RTP_END
workers = 0
EOF
	if [ -n "$DIALPLAN" ]; then
		cp "$DIALPLAN" "$d/extensions.lua"
	else
		cat >"$d/extensions.lua" <<'EOF'
-- bench/run.sh: every number dialled from context bench rings SIP/uas.
extensions = {
	bench = {
		["_X."] = function(context, extension)
			app.Dial("SIP/uas", 30)
		end,
	},
}
EOF
	fi
	{
		cat <<EOF
; written by bench/run.sh: uac calls, uas answers, u0000.. register
[general]
bind = 127.0.0.1:$SIP_PORT
transports = udp
realm = plexus-bench
user_agent = Plexus
min_expiry = 60
max_expiry = 3600
default_expiry = 3600

[bench-phone](!)
type = endpoint
context = bench
disallow = all
allow = ulaw,alaw
nat = yes
max_contacts = 1
dtmf_mode = rfc4733

[uac](bench-phone)
secret = $SECRET_UAC

[uas](bench-phone)
secret = $SECRET_UAS

EOF
		for ((i = 0; i < REG_USERS; i++)); do
			printf '[u%04d](bench-phone)\nsecret = %s\n' "$i" "$SECRET_USERS"
		done
	} >"$d/sip.conf"
}

CONF=$WORK/etc
make_config "$CONF"
{
	echo SEQUENTIAL
	for ((i = 0; i < REG_USERS; i++)); do
		printf 'u%04d;[authentication username=u%04d password=%s]\n' "$i" "$i" "$SECRET_USERS"
	done
} >"$WORK/users.csv"

# ---------------------------------------------------------------- plexusd

PD_PID=
PD_LOG=
PD_RUN=0

# start_plexusd: a fresh plexusd (empty store) on $CONF; its output goes to
# $WORK/plexusd-N.out, its log file is kept as $WORK/plexus-N.log. Ready
# means: the console answers (it starts before the modules load), the SIP
# thread exists and the SIP socket is bound.
start_plexusd() {
	local i
	PD_RUN=$((PD_RUN + 1))
	rm -rf "$CONF/state" "$CONF/plexus.log"
	mkdir -p "$CONF/state"
	PD_LOG=$WORK/plexus-$PD_RUN.log
	log_cmd "$PLEXUSD -f -c $CONF -C $CONF/plexus.conf"
	"$PLEXUSD" -f -c "$CONF" -C "$CONF/plexus.conf" >"$WORK/plexusd-$PD_RUN.out" 2>&1 &
	PD_PID=$!
	STARTED+=("$PD_PID")
	for ((i = 0; i < 100; i++)); do
		if [ -S "$CONF/plexus.ctl" ] && sipq_v &&
			timeout 5 "$PLEXUS" -s "$CONF/plexus.ctl" -x 'sip show endpoints' >/dev/null 2>&1; then
			SIP_TID=$(tid_of "$PD_PID" sip)
			WRITER_TID=$(tid_of "$PD_PID" registrar-write)
			[ -n "$SIP_TID" ] && [ -n "$WRITER_TID" ] && return 0
		fi
		is_running "$PD_PID" || break
		sleep 0.1
	done
	echo "run.sh: plexusd did not start; its output:" >&2
	tail -n 20 "$WORK/plexusd-$PD_RUN.out" >&2
	exit 1
}

# stop_plexusd: SIGTERM; says so when it takes long or must be killed.
# subscribers_start NAME: EVENT_SUBSCRIBERS event clients on the running
# plexusd, each writing its JSON lines through a FIFO into event_sink
# (bench/event_sink.c), which counts them into $WORK/NAME.events.K, or
# with EVENT_OUTPUT=file into that file itself.
SUB_PIDS=()
SINK_PIDS=()
subscribers_start() {
	local k fifo
	SUB_PIDS=()
	SINK_PIDS=()
	for ((k = 0; k < EVENT_SUBSCRIBERS; k++)); do
		fifo=$WORK/$1.events.$k
		if [ "$EVENT_OUTPUT" = count ]; then
			fifo=$WORK/$1.fifo.$k
			mkfifo "$fifo"
			"$EVENT_SINK" "$WORK/$1.events.$k" <"$fifo" &
			SINK_PIDS+=("$!")
			STARTED+=("$!")
		fi
		# shellcheck disable=SC2086 # a filter may be several words
		"$PLEXUS" -s "$CONF/plexus.ctl" -q -e ${EVENT_FILTER:-} >"$fifo" 2>/dev/null &
		SUB_PIDS+=("$!")
		STARTED+=("$!")
	done
	# Subscribed before the load starts (each prints nothing until then).
	[ "$EVENT_SUBSCRIBERS" -gt 0 ] && sleep 0.5
	return 0
}

# subscribers_stop NAME: stop them by pid; R_EVENTS is the fewest events
# one of them received, R_EVTOTAL all they received, R_EVLOST the
# EventsLost notices among them, R_SUBTICKS their CPU ticks and their
# sinks' (utime + stime, all of them, read just before they are stopped).
subscribers_stop() {
	local pid k n lost
	R_EVENTS=- R_EVLOST=- R_EVTOTAL=0 R_SUBTICKS=0
	[ "${#SUB_PIDS[@]}" -gt 0 ] || return 0
	for pid in "${SUB_PIDS[@]}" "${SINK_PIDS[@]}"; do
		ticks_v "$pid" && R_SUBTICKS=$((R_SUBTICKS + TICKS))
	done
	for pid in "${SUB_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	# A sink ends at the end of its input, once its client has gone.
	for pid in "${SUB_PIDS[@]}" "${SINK_PIDS[@]}"; do
		wait_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	R_EVLOST=0
	for ((k = 0; k < ${#SUB_PIDS[@]}; k++)); do
		if [ "$EVENT_OUTPUT" = count ]; then
			read -r n lost 2>/dev/null <"$WORK/$1.events.$k" || n=0 lost=0
		else
			n=$(wc -l <"$WORK/$1.events.$k")
			lost=$(grep -c '"EventsLost"' "$WORK/$1.events.$k")
		fi
		R_EVTOTAL=$((R_EVTOTAL + n))
		if [ "$R_EVENTS" = - ] || [ "$n" -lt "$R_EVENTS" ]; then
			R_EVENTS=$n
		fi
		R_EVLOST=$((R_EVLOST + lost))
		rm -f "$WORK/$1.fifo.$k"
	done
	SUB_PIDS=()
	SINK_PIDS=()
}

stop_plexusd() {
	local t0 rc
	t0=$(now_ms)
	[ -n "$PD_PID" ] || return 0
	cp "$CONF/plexus.log" "$PD_LOG" 2>/dev/null
	kill -TERM "$PD_PID" 2>/dev/null
	if ! wait_gone "$PD_PID" 40; then
		echo "  !! plexusd (pid $PD_PID) did not stop within 40 s of SIGTERM; killed"
		kill -KILL "$PD_PID" 2>/dev/null
		wait_gone "$PD_PID" 5
	else
		wait "$PD_PID" 2>/dev/null
		rc=$?
		if [ "$rc" != 0 ] && [ "$rc" != 127 ]; then
			echo "  !! plexusd exited with status $rc on SIGTERM"
		fi
		if [ $(($(now_ms) - t0)) -gt 5000 ]; then
			echo "  !! plexusd took $((($(now_ms) - t0) / 1000)) s to stop"
		fi
	fi
	cp "$CONF/plexus.log" "$PD_LOG" 2>/dev/null
	PD_PID=
}

px() {
	timeout 30 "$PLEXUS" -s "$CONF/plexus.ctl" -x "$1" 2>&1
}

# log_problems: warnings and errors plexusd logged in this run (counted by
# message, numbers and names blurred), and whether it is still alive.
LOG_PROBLEMS=0
log_problems() {
	local f=$CONF/plexus.log
	LOG_PROBLEMS=$(grep -cE '\] (ERROR|WARNING)\[' "$f" 2>/dev/null)
	LOG_PROBLEMS=${LOG_PROBLEMS:-0}
	if [ "$LOG_PROBLEMS" -gt 0 ]; then
		echo "  plexusd logged $LOG_PROBLEMS warnings/errors; the most frequent:"
		grep -E '\] (ERROR|WARNING)\[' "$f" | sed -E 's/^\[[^]]*\] //; s/\[[0-9]+\]/[]/; s/[0-9]+/N/g' |
			sort | uniq -c | sort -rn | head -n 5 | sed 's/^/    /'
	fi
	if [ -n "$PD_PID" ] && ! is_running "$PD_PID"; then
		echo "  !! plexusd (pid $PD_PID) is gone; last lines of its output:"
		tail -n 20 "$WORK/plexusd-$PD_RUN.out" | sed 's/^/    /'
		return 1
	fi
	return 0
}

# ---------------------------------------------------------------- samples

# Once a second during a load run against plexusd: its CPU, its SIP
# thread's CPU, its thread count, RSS and huge pages, and the receive queue and drop
# count of its SIP socket, in $WORK/NAME.samples (printed for a step that
# failed: they show when and where it fell behind).
# ---------------------------------------------------------------- speed probe

PROBE_PID='' PROBE_FD='' PROBE_MEM=- PROBE_IDLE_MEM=- PROBE_IDLE_ALU=-

# median_of FILE COLUMN: the median of the column over the probe's samples
# but the first (taken with its memory still in the caches), or -.
median_of() {
	awk -v c="$2" 'NR > 1 { print $c }' "$1" | sort -n |
		awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : "-" }'
}

# probe_medians FILE: PROBE_MED_MEM, PROBE_MED_ALU.
probe_medians() {
	PROBE_MED_MEM=$(median_of "$1" 1)
	PROBE_MED_ALU=$(median_of "$1" 2)
}

# The machine's speed before any load: 5 s of the probe, in the foreground.
probe_idle() {
	"$SPEED_PROBE" 5 "$WORK" >"$WORK/probe-idle.txt" 2>/dev/null
	probe_medians "$WORK/probe-idle.txt"
	PROBE_IDLE_MEM=$PROBE_MED_MEM PROBE_IDLE_ALU=$PROBE_MED_ALU
}

# probe_start NAME SECONDS: the probe beside a step, into
# $WORK/probe-NAME.txt, which the sampler reads as it grows.
probe_start() {
	: >"$WORK/probe-$1.txt"
	exec {PROBE_FD}<"$WORK/probe-$1.txt"
	"$SPEED_PROBE" "$2" "$WORK" >>"$WORK/probe-$1.txt" 2>/dev/null &
	PROBE_PID=$!
	STARTED+=("$PROBE_PID")
	PROBE_MEM=-
}

# PROBE_MEM: the newest memory time, read on from where the last call
# stopped (forks nothing; the probe writes whole lines).
probe_latest() {
	local mem _alu
	[ -n "$PROBE_FD" ] || return 0
	while read -r -u "$PROBE_FD" mem _alu; do
		PROBE_MEM=$mem
	done
}

# ratio A B: A / B with two decimals, or - when either is unknown.
ratio() {
	case "$1$2" in *-*) echo - ;; *) awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }' ;; esac
}

# probe_stop NAME: R_MEMX, R_ALUX, the step's medians over the idle ones.
probe_stop() {
	[ -n "$PROBE_PID" ] && stop_pid "$PROBE_PID"
	[ -n "$PROBE_FD" ] && exec {PROBE_FD}<&-
	PROBE_PID='' PROBE_FD=''
	probe_medians "$WORK/probe-$1.txt"
	R_MEMX=$(ratio "$PROBE_MED_MEM" "$PROBE_IDLE_MEM")
	R_ALUX=$(ratio "$PROBE_MED_ALU" "$PROBE_IDLE_ALU")
}

SAMPLE_FILE=
sample_start() {
	SAMPLE_FILE=$WORK/samples-$1.txt
	now_v
	SAMPLE_T0=$NOW
	SAMPLE_PREV_MS=$NOW
	SAMPLE_NEXT=1000
	ticks_v "$PD_PID"
	SAMPLE_PREV_T=${TICKS:-0}
	SAMPLE_PREV_S=0
	ticks_v "$PD_PID" "$SIP_TID" && SAMPLE_PREV_S=$TICKS
	schedwait_v "$PD_PID" "$SIP_TID"
	SAMPLE_PREV_W=$WAIT_NS
	SAMPLE_SIPP=()
	SAMPLE_PREV_P=-1
	printf '%6s %6s %6s %9s %6s %8s %9s %8s %9s %8s %9s\n' t-s cpu% sip% sip-wait% sipp% threads \
		rss-kB huge-MB sip-rxq-B drops probe-mem >"$SAMPLE_FILE"
}

# sipp_ticks_v: the CPU ticks of the SIPps in SAMPLE_SIPP, in TICKS.
sipp_ticks_v() {
	local pid sum=0
	for pid in "${SAMPLE_SIPP[@]}"; do
		ticks_v "$pid" && sum=$((sum + TICKS)) && SIPP_SEEN_TICKS[$pid]=$TICKS
	done
	TICKS=$sum
}

# Called every half second or so (forks nothing); writes a line a second.
sample_tick() {
	local el dt t s=0 w p sipp_pct tasks
	now_v
	el=$((NOW - SAMPLE_T0))
	[ "$el" -ge "$SAMPLE_NEXT" ] || return 0
	while [ "$SAMPLE_NEXT" -le "$el" ]; do
		SAMPLE_NEXT=$((SAMPLE_NEXT + 1000))
	done
	ticks_v "$PD_PID" || return 0
	t=$TICKS
	ticks_v "$PD_PID" "$SIP_TID" && s=$TICKS
	schedwait_v "$PD_PID" "$SIP_TID"
	w=$WAIT_NS
	sipp_ticks_v
	p=$TICKS
	sipq_v
	rss_v "$PD_PID"
	huge_v "$PD_PID"
	tasks=("/proc/$PD_PID/task/"*)
	probe_latest
	dt=$((NOW - SAMPLE_PREV_MS))
	[ "$dt" -gt 0 ] || dt=1
	sipp_pct=-
	[ "${#SAMPLE_SIPP[@]}" -gt 0 ] && [ "$SAMPLE_PREV_P" -ge 0 ] && [ "$p" -ge "$SAMPLE_PREV_P" ] &&
		sipp_pct=$(((p - SAMPLE_PREV_P) * 100000 / HZ / dt))
	printf '%6s %6s %6s %9s %6s %8s %9s %8s %9s %8s %9s\n' $((el / 1000)) \
		$(((t - SAMPLE_PREV_T) * 100000 / HZ / dt)) $(((s - SAMPLE_PREV_S) * 100000 / HZ / dt)) \
		$(((w - SAMPLE_PREV_W) / 10000 / dt)) "$sipp_pct" "${#tasks[@]}" "$RSS" "${HUGE:--}" \
		"$SOCK_RXQ" "$SOCK_DROPS" "$PROBE_MEM" >>"$SAMPLE_FILE"
	SAMPLE_PREV_P=$p
	SAMPLE_PREV_W=$w
	SAMPLE_PREV_T=$t
	SAMPLE_PREV_S=$s
	SAMPLE_PREV_MS=$NOW
}

show_samples() {
	[ -s "$WORK/samples-$1.txt" ] || return 0
	line "  per second during the step (plexusd; sip-wait%: its SIP thread runnable but not running;"
	line "  sipp%: the two SIPps' CPU;"
	line "  huge-MB: its memory in transparent huge pages; sip-rxq-B, drops: its SIP socket's"
	line "  receive queue and drop count; probe-mem: the speed probe's last memory time, us;"
	line "  idle machine: $PROBE_IDLE_MEM):"
	sed 's/^/    /' "$WORK/samples-$1.txt" | tee -a "$RESULTS"
}

# ---------------------------------------------------------------- SIPp

CMDS=$WORK/commands.txt
: >"$CMDS"
log_cmd() {
	printf '%s\n' "$*" >>"$CMDS"
}

# sipp_bg NAME SLOT ARGS...: SIPp in the background, from 127.0.0.1:SLOT
# (control port SLOT+1, media SLOT+2), logs as $WORK/NAME.*; SIPP_PID.
sipp_bg() {
	local name=$1 slot=$2
	shift 2
	local cmd=("$SIPP" -i 127.0.0.1 -p "$slot" -cp $((slot + 1)) -mp $((slot + 2))
		-buff_size "$BUFF" -nostdin -nd
		-trace_stat -stf "$WORK/$name.stat.csv" -fd 1
		-trace_screen -screen_file "$WORK/$name.screen"
		-trace_err -error_file "$WORK/$name.err"
		"$@")
	[ -n "$SIPP_NICE" ] && cmd=(nice -n "$SIPP_NICE" "${cmd[@]}")
	rm -f "$WORK/$name".*
	log_cmd "${cmd[*]}"
	"${cmd[@]}" >"$WORK/$name.out" 2>&1 &
	SIPP_PID=$!
	SIPP_SEEN_TICKS[$SIPP_PID]=0
	STARTED+=("$SIPP_PID")
}

# sipp_wait PID SECONDS: wait (bounded) for SIPp to end; its CPU ticks end
# up in SIPP_TICKS and its exit status in SIPP_RC; calls the hook $ON_TICK
# (if set) every half second. Returns 1, after stopping it, when it
# outlives SECONDS.
# bash reaps a background child as soon as it exits, so its /proc entry
# and CPU times are gone by then: SIPP_TICKS is the last reading taken
# while it ran (here, in sipp_ticks_v or by sipp_seen_ticks), up to half
# a second short. A SIPp that ended before this was called keeps the
# reading taken last, not 0.
declare -A SIPP_SEEN_TICKS=()
ON_TICK=
sipp_seen_ticks() { # PID: read its ticks now if it still runs
	ticks_v "$1" && SIPP_SEEN_TICKS[$1]=$TICKS
	return 0
}
sipp_wait() {
	local pid=$1 deadline
	now_v
	deadline=$((NOW + $2 * 1000))
	while is_running "$pid"; do
		sipp_seen_ticks "$pid"
		[ -n "$ON_TICK" ] && $ON_TICK
		now_v
		if [ "$NOW" -gt "$deadline" ]; then
			echo "  !! SIPp (pid $pid) still running after $2 s: stopping it"
			SIPP_TICKS=${SIPP_SEEN_TICKS[$pid]:-0}
			stop_sipp "$pid"
			return 1
		fi
		nap 0.5
	done
	SIPP_TICKS=${SIPP_SEEN_TICKS[$pid]:-0}
	wait "$pid" 2>/dev/null
	SIPP_RC=$?
	return 0
}

# stat_col NAME COLUMN: a column of the last line of SIPp's statistics.
stat_col() {
	local f=$WORK/$1.stat.csv
	[ -s "$f" ] || { echo 0; return; }
	awk -F';' -v c="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i; next }
		{ last = $0 } END { split(last, a, ";"); print (k && a[k] != "" ? a[k] : 0) }' "$f"
}

# retrans NAME: retransmissions SIPp sent and received ("sent/received"):
# the Retrans column of the message table in its final scenario screen.
# A row is "NAME ---->" or "<---- NAME" (sent: ---->), maybe an RTD marker,
# then Messages, Retrans...
retrans() {
	local f=$WORK/$1.screen
	[ -s "$f" ] || { echo "?"; return; }
	awk '/Scenario Screen/ { on = 1; next }
	     /Statistics Screen|Waiting for active calls/ { if (on) exit }
	     on && /(---------->|<----------)/ {
		k = 0
		for (i = 3; i <= NF; i++) if ($i ~ /^[0-9]+$/) { k++; if (k == 2) { v = $i; break } }
		if (/---------->/) s += v; else r += v
	     }
	     END { printf "%d/%d", s, r }' "$f"
}

# received_count NAME STATUS: how many responses STATUS SIPp received, all
# rows of its final scenario screen together (the Messages column).
received_count() {
	local f=$WORK/$1.screen
	[ -s "$f" ] || { echo 0; return; }
	awk -v st="$2" '/Scenario Screen/ { on = 1; next }
	     /Statistics Screen|Waiting for active calls/ { if (on) exit }
	     on && $1 == st && $2 ~ /^<-+$/ { n += $3 }
	     END { print n + 0 }' "$f"
}

# response_ms NAME: SIPp's mean response time 1 (ms), cumulative.
response_ms() {
	local v
	v=$(stat_col "$1" 'ResponseTime1(C)')
	# hh:mm:ss:uuuuuu
	awk -v t="$v" 'BEGIN { n = split(t, p, ":"); if (n == 4) printf "%.1f", (p[1] * 3600 + p[2] * 60 + p[3]) * 1000 + p[4] / 1000; else print t }'
}

# register_uas: the UAS account binds SLOT_UAS (one REGISTER, bounded).
register_uas() {
	sipp_bg "reg_uas-$PD_RUN" "$SLOT_UAS" "127.0.0.1:$SIP_PORT" -sf "$SCEN/register.xml" \
		-s uas -au uas -ap "$SECRET_UAS" -m 1 -timeout 10s -timeout_error -recv_timeout 5s
	sipp_wait "$SIPP_PID" 15
	if [ "${SIPP_RC:-1}" != 0 ]; then
		echo "  !! the UAS did not register (SIPp status ${SIPP_RC:-?}); see $WORK/reg_uas-$PD_RUN.*"
		return 1
	fi
	return 0
}

# ---------------------------------------------------------------- output

RESULTS=$WORK/results.txt
: >"$RESULTS"
line() {
	printf '%s\n' "$*" | tee -a "$RESULTS"
}

fmt_pct() { # ticks wall_ms
	awk -v t="$1" -v w="$2" -v hz="$HZ" 'BEGIN { printf "%.0f", (w > 0 ? t / hz * 100000 / w : 0) }'
}
fmt_us_per() { # ticks count
	awk -v t="$1" -v n="$2" -v hz="$HZ" 'BEGIN { if (n > 0) printf "%.0f", t / hz * 1e6 / n; else print "-" }'
}

# ---------------------------------------------------------------- one call run

# call_run RATE SECS MODE: MODE plexus (UAC -> plexusd -> UAS) or baseline
# (UAC -> UAS). Sets R_* figures. Returns 1 when plexusd could not be used.
call_run() {
	local rate=$1 secs=$2 mode=$3 n=$(($1 * $2)) t0 t1 c0 c1 s0 s1 u0 uas_ticks
	local target uas_scen f0 f1 name=$3-$1 m0 m1
	R_OK=0 R_FAIL=0 R_CPU=- R_US=- R_RSS=- R_RETR_UAC=- R_RETR_UAS=- R_DROPS=0 R_RT=- R_SIPPCPU=- R_SIPTHR=-
	R_PF=- R_MEMX=- R_ALUX=- R_HEAP=
	if [ "$mode" = plexus ]; then
		start_plexusd
		register_uas || { stop_plexusd; return 1; }
		target=127.0.0.1:$SIP_PORT
		uas_scen=$SCEN/uas_answer.xml
	else
		target=127.0.0.1:$SLOT_UAS
		uas_scen=$SCEN/uas_baseline.xml
	fi
	R_NAME=$name
	sipp_bg "$name-uas" "$SLOT_UAS" -sf "$uas_scen" -m "$n" -timeout $((secs + 40))s -recv_timeout 10s
	local uas_pid=$SIPP_PID
	sleep 0.3
	u0=$(udp_rcvbuf_errors)
	m0=$(machine_busy)
	c0=0 c1=0
	if [ "$mode" = plexus ]; then
		subscribers_start "$name"
		c0=$(cpu_ticks "$PD_PID")
		s0=$(tid_ticks "$PD_PID" "$SIP_TID")
		f0=$(minor_faults "$PD_PID")
		probe_start "$name" $((secs + 45))
		sample_start "$name"
		ON_TICK=sample_tick
	fi
	t0=$(now_ms)
	sipp_bg "$name-uac" "$SLOT_UAC" "$target" -sf "$SCEN/uac_call.xml" -s 1000 -key caller uac \
		-au uac -ap "$SECRET_UAC" -r "$rate" -m "$n" -timeout $((secs + 30))s -recv_timeout 8s
	local uac_pid=$SIPP_PID
	SAMPLE_SIPP=("$uas_pid" "$uac_pid")
	sipp_wait "$uac_pid" $((secs + 40))
	local uac_ticks=$SIPP_TICKS
	# The UAS may end with the UAC's last BYE, before anyone waits for it.
	sipp_seen_ticks "$uas_pid"
	ON_TICK=
	t1=$(now_ms)
	m1=$(machine_busy)
	if [ "$mode" = plexus ]; then
		c1=$(cpu_ticks "$PD_PID")
		s1=$(tid_ticks "$PD_PID" "$SIP_TID")
		f1=$(minor_faults "$PD_PID")
		R_RSS=$(rss_kb "$PD_PID")
		probe_stop "$name"
	fi
	# The UAS finishes its last calls (BYE) by itself; then it is stopped.
	sipp_wait "$uas_pid" 10 >/dev/null || true
	R_EVENTS=- R_EVLOST=- R_EVTOTAL=0 R_SUBTICKS=0
	[ "$mode" = plexus ] && subscribers_stop "$name"
	uas_ticks=$SIPP_TICKS
	R_DROPS=$(($(udp_rcvbuf_errors) - u0))
	R_OK=$(stat_col "$name-uac" 'SuccessfulCall(C)')
	R_FAIL=$(stat_col "$name-uac" 'FailedCall(C)')
	R_REFUSED=$(received_count "$name-uac" 503)
	R_UAS_FAIL=$(stat_col "$name-uas" 'FailedCall(C)')
	R_RETR_UAC=$(retrans "$name-uac")
	R_RETR_UAS=$(retrans "$name-uas")
	R_RT=$(response_ms "$name-uac")
	R_WALL=$((t1 - t0))
	R_SIPPCPU=$(fmt_pct $((uac_ticks + uas_ticks)) "$R_WALL")
	R_MACHINE=$(fmt_pct $((m1 - m0)) "$R_WALL")
	R_SUBCPU=$(fmt_pct "$R_SUBTICKS" "$R_WALL")
	R_SUBUS=$(fmt_us_per "$R_SUBTICKS" "$R_EVTOTAL")
	if [ "$mode" = plexus ]; then
		if [ -n "$c1" ]; then
			R_CPU=$(fmt_pct $((c1 - c0)) "$R_WALL")
			R_US=$(fmt_us_per $((c1 - c0)) "$R_OK")
			R_SIPTHR=$(fmt_pct $((s1 - s0)) "$R_WALL")
			[ "$R_OK" -gt 0 ] && R_PF=$(((f1 - f0) / R_OK))
		fi
		R_CHANNELS=$(px 'core show channels' | tail -n 1)
		R_HEAP=$(px 'core show settings' | sed -n 's/^ *Heap written ahead: *//p')
	fi
	return 0
}

# ---------------------------------------------------------------- phases

CALL_MAX_OK=0
CALL_FIRST_FAIL=
CALL_RATES_RUN=()
SUMMARY_CALLS=()
SUMMARY_BASE=()
SUMMARY_REG=()
SUMMARY_PLATEAU=()

phase_calls() {
	local rate hdr
	line ""
	line "== 1. B2BUA calls/s through the Lua dialplan (uac -> plexusd -> uas), $CALL_SECS s per step"
	[ "$EVENT_SUBSCRIBERS" -gt 0 ] && line "   with $EVENT_SUBSCRIBERS event subscribers (plexus -e) attached during each step"
	hdr=$(printf '%6s %8s %6s %6s %7s %8s %7s %9s %11s %11s %7s %9s %8s %6s %5s %5s' \
		rate ok failed cpu% sip-thr% us/call pf/call rss-kB retr-uac retr-uas rt-ms sipp-cpu% machine% drops \
		mem-x alu-x)
	line "$hdr"
	SUMMARY_CALLS+=("$hdr")
	for rate in $CALL_RATES; do
		CALL_RATES_RUN+=("$rate")
		if ! call_run "$rate" "$CALL_SECS" plexus; then
			line "$(printf '%6s  (no run: the UAS could not register)' "$rate")"
			CALL_FIRST_FAIL=$rate
			break
		fi
		local row
		row=$(printf '%6s %8s %6s %6s %7s %8s %7s %9s %11s %11s %7s %9s %8s %6s %5s %5s' "$rate" "$R_OK" \
			"$R_FAIL" "$R_CPU" "$R_SIPTHR" "$R_US" "$R_PF" "$R_RSS" "$R_RETR_UAC" "$R_RETR_UAS" \
			"$R_RT" "$R_SIPPCPU" "$R_MACHINE" "$R_DROPS" "$R_MEMX" "$R_ALUX")
		line "$row"
		SUMMARY_CALLS+=("$row")
		[ "${R_REFUSED:-0}" != 0 ] &&
			line "  of the failed calls, $R_REFUSED were refused with 503 (overload control)"
		[ "${R_UAS_FAIL:-0}" != 0 ] && line "  UAS SIPp counted $R_UAS_FAIL failed calls"
		[ -n "${R_CHANNELS:-}" ] && line "  after the run: $R_CHANNELS"
		[ -n "${R_HEAP:-}" ] && line "  heap written ahead: $R_HEAP"
		[ "$EVENT_SUBSCRIBERS" -gt 0 ] &&
			line "  $EVENT_SUBSCRIBERS event subscribers: each got at least ${R_EVENTS:-?} events (${R_EVTOTAL:-?} in all); EventsLost notices: ${R_EVLOST:-?}; their CPU: ${R_SUBCPU:-?}% of a core, ${R_SUBUS:-?} us per event"
		log_problems | tee -a "$RESULTS"
		local alive=${PIPESTATUS[0]}
		stop_plexusd | tee -a "$RESULTS"
		if [ "$R_FAIL" != 0 ] || [ "$R_OK" -lt $((rate * CALL_SECS)) ] || [ "$alive" != 0 ]; then
			CALL_FIRST_FAIL=$rate
			if [ "$R_FAIL" != 0 ]; then
				line "  first failures ($WORK/$R_NAME-uac.err):"
				grep -v '^$' "$WORK/$R_NAME-uac.err" 2>/dev/null | head -n 4 | cut -c1-200 |
					sed 's/^/    /' | tee -a "$RESULTS"
			fi
			show_samples "$R_NAME"
			break
		fi
		CALL_MAX_OK=$rate
	done
	line "highest rate with 0 failed calls: $CALL_MAX_OK calls/s${CALL_FIRST_FAIL:+ (first failure at $CALL_FIRST_FAIL)}"
}

phase_baseline() {
	local rate hdr rates=("${CALL_RATES_RUN[@]}")
	[ ${#rates[@]} -gt 0 ] || read -r -a rates <<<"$CALL_RATES"
	line ""
	line "== 1b. Baseline: the same UAC scenario straight to a SIPp UAS (no plexusd), $BASE_SECS s per step"
	hdr=$(printf '%6s %8s %6s %11s %11s %7s %9s %8s %6s' rate ok failed retr-uac retr-uas rt-ms sipp-cpu% \
		machine% drops)
	line "$hdr"
	SUMMARY_BASE+=("$hdr")
	for rate in "${rates[@]}"; do
		call_run "$rate" "$BASE_SECS" baseline
		local row
		row=$(printf '%6s %8s %6s %11s %11s %7s %9s %8s %6s' "$rate" "$R_OK" "$R_FAIL" "$R_RETR_UAC" \
			"$R_RETR_UAS" "$R_RT" "$R_SIPPCPU" "$R_MACHINE" "$R_DROPS")
		line "$row"
		SUMMARY_BASE+=("$row")
		[ "$R_FAIL" != 0 ] && break
	done
}

phase_register() {
	local rate hdr n t0 t1 c0 c1 w0 w1 u0 m0 m1 s0 s1 store shown rss ok fail drops row
	line ""
	line "== 2. REGISTER/s with digest auth, $REG_USERS accounts, binding stored before 200, $REG_SECS s per step"
	hdr=$(printf '%6s %8s %6s %6s %7s %8s %7s %9s %9s %7s %9s %8s %6s %6s %6s' rate ok failed cpu% \
		sip-thr% writer% us/reg rss-kB retr-s/r rt-ms sipp-cpu% machine% drops store shown)
	line "$hdr"
	SUMMARY_REG+=("$hdr")
	REG_MAX_OK=0
	REG_FIRST_FAIL=
	for rate in $REG_RATES; do
		n=$((rate * REG_SECS))
		start_plexusd
		u0=$(udp_rcvbuf_errors)
		m0=$(machine_busy)
		s0=$(tid_ticks "$PD_PID" "$SIP_TID")
		c0=$(cpu_ticks "$PD_PID")
		w0=$(tid_ticks "$PD_PID" "$WRITER_TID")
		t0=$(now_ms)
		sample_start "reg-$rate"
		sipp_bg "reg-$rate" "$SLOT_REG" "127.0.0.1:$SIP_PORT" -sf "$SCEN/reg_load.xml" \
			-inf "$WORK/users.csv" -r "$rate" -m "$n" -timeout $((REG_SECS + 30))s -recv_timeout 8s
		ON_TICK=sample_tick
		sipp_wait "$SIPP_PID" $((REG_SECS + 40))
		ON_TICK=
		t1=$(now_ms)
		m1=$(machine_busy)
		c1=$(cpu_ticks "$PD_PID")
		s1=$(tid_ticks "$PD_PID" "$SIP_TID")
		w1=$(tid_ticks "$PD_PID" "$WRITER_TID")
		rss=$(rss_kb "$PD_PID")
		drops=$(($(udp_rcvbuf_errors) - u0))
		ok=$(stat_col "reg-$rate" 'SuccessfulCall(C)')
		fail=$(stat_col "reg-$rate" 'FailedCall(C)')
		sleep 0.5 # a group commit in flight
		if command -v sqlite3 >/dev/null 2>&1; then
			store=$(sqlite3 -readonly "$CONF/state/plexus.db" 'SELECT count(*) FROM px_location' 2>&1 |
				tail -n 1)
		else
			store=-
		fi
		shown=$(px 'sip show registrations' | tail -n 1 | awk '{print $1}')
		row=$(printf '%6s %8s %6s %6s %7s %8s %7s %9s %9s %7s %9s %8s %6s %6s %6s' "$rate" "$ok" \
			"$fail" "$(fmt_pct $((c1 - c0)) $((t1 - t0)))" "$(fmt_pct $((s1 - s0)) $((t1 - t0)))" \
			"$(fmt_pct $((w1 - w0)) $((t1 - t0)))" "$(fmt_us_per $((c1 - c0)) "$ok")" "$rss" \
			"$(retrans "reg-$rate")" "$(response_ms "reg-$rate")" \
			"$(fmt_pct "$SIPP_TICKS" $((t1 - t0)))" \
			"$(fmt_pct $((m1 - m0)) $((t1 - t0)))" "$drops" "$store" "$shown")
		line "$row"
		SUMMARY_REG+=("$row")
		log_problems | tee -a "$RESULTS"
		local alive=${PIPESTATUS[0]}
		stop_plexusd | tee -a "$RESULTS"
		if [ "$fail" != 0 ] || [ "$ok" -lt "$n" ] || [ "$alive" != 0 ]; then
			REG_FIRST_FAIL=$rate
			if [ "$fail" != 0 ]; then
				line "  first failures ($WORK/reg-$rate.err):"
				grep -v '^$' "$WORK/reg-$rate.err" 2>/dev/null | head -n 4 | cut -c1-200 |
					sed 's/^/    /' | tee -a "$RESULTS"
			fi
			show_samples "reg-$rate"
			break
		fi
		REG_MAX_OK=$rate
	done
	line "highest rate with 0 failed registrations: $REG_MAX_OK REGISTER/s${REG_FIRST_FAIL:+ (first failure at $REG_FIRST_FAIL)}"
}

PLATEAU_NEXT=0
PLATEAU_T0=0
plateau_tick() {
	sample_tick
	local el row
	now_v
	el=$((NOW - PLATEAU_T0))
	if [ "$el" -ge "$PLATEAU_NEXT" ] && [ "$PLATEAU_NEXT" -lt $((PLATEAU_SECS * 1000)) ]; then
		rss_v "$PD_PID"
		printf -v row '  %5s s  load   RSS %8s kB' $((PLATEAU_NEXT / 1000)) "$RSS"
		line "$row"
		SUMMARY_PLATEAU+=("$row")
		PLATEAU_NEXT=$((PLATEAU_NEXT + 10000))
	fi
}

phase_plateau() {
	local rate=$PLATEAU_RATE n t0 t1 c0 c1 i row
	if [ -z "$rate" ]; then
		if [ "$CALL_MAX_OK" -gt 0 ]; then
			rate=$((CALL_MAX_OK / 2))
			[ "$rate" -lt 100 ] && rate=100
		else
			rate=500
		fi
	fi
	n=$((rate * PLATEAU_SECS))
	line ""
	line "== 3. Memory plateau: $rate calls/s for $PLATEAU_SECS s, then idle for 40 s"
	start_plexusd
	register_uas || { stop_plexusd; return; }
	row=$(printf '  %5s s  start  RSS %8s kB' 0 "$(rss_kb "$PD_PID")")
	line "$row"
	SUMMARY_PLATEAU+=("$row")
	sipp_bg plateau-uas "$SLOT_UAS" -sf "$SCEN/uas_answer.xml" -m "$n" -timeout $((PLATEAU_SECS + 40))s \
		-recv_timeout 10s
	local uas_pid=$SIPP_PID
	sleep 0.3
	c0=$(cpu_ticks "$PD_PID")
	t0=$(now_ms)
	PLATEAU_T0=$t0
	PLATEAU_NEXT=10000
	sample_start plateau
	sipp_bg plateau-uac "$SLOT_UAC" "127.0.0.1:$SIP_PORT" -sf "$SCEN/uac_call.xml" -s 1000 -key caller uac \
		-au uac -ap "$SECRET_UAC" -r "$rate" -m "$n" -timeout $((PLATEAU_SECS + 30))s -recv_timeout 8s
	ON_TICK=plateau_tick
	sipp_wait "$SIPP_PID" $((PLATEAU_SECS + 40))
	ON_TICK=
	t1=$(now_ms)
	c1=$(cpu_ticks "$PD_PID")
	row=$(printf '  %5s s  end    RSS %8s kB  (%s ok, %s failed, plexusd %s%% CPU, %s us/call)' \
		$(((t1 - t0) / 1000)) "$(rss_kb "$PD_PID")" "$(stat_col plateau-uac 'SuccessfulCall(C)')" \
		"$(stat_col plateau-uac 'FailedCall(C)')" "$(fmt_pct $((c1 - c0)) $((t1 - t0)))" \
		"$(fmt_us_per $((c1 - c0)) "$(stat_col plateau-uac 'SuccessfulCall(C)')")")
	line "$row"
	SUMMARY_PLATEAU+=("$row")
	sipp_wait "$uas_pid" 10 >/dev/null || true
	for i in 1 2 3 4; do
		sleep 10
		row=$(printf '  +%4s s  idle   RSS %8s kB' $((i * 10)) "$(rss_kb "$PD_PID")")
		line "$row"
		SUMMARY_PLATEAU+=("$row")
	done
	line "  $(px 'core show channels' | tail -n 1)"
	log_problems | tee -a "$RESULTS"
	stop_plexusd | tee -a "$RESULTS"
}

# ---------------------------------------------------------------- main

# Sourced (bench/events.sh): the helpers above, configuration and ports
# are set up; the caller runs its own measurement.
if [ "${BASH_SOURCE[0]}" != "$0" ]; then
	return 0
fi

START=$(date +%s)
line "Plexus benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r)"
line "plexusd: $PLEXUSD ($("$PLEXUSD" -V 2>/dev/null | head -n 1))"
line "SIPp: $("$SIPP" -v 2>&1 | grep -m 1 -o 'SIPp v[^ ]*')"
line "ports: SIP 127.0.0.1:$SIP_PORT, SIPp $SLOT_UAC-$((SLOT_REG + 9)), RTP $RTP_START-$RTP_END"
probe_idle
line "speed probe on the idle machine (bench/speed_probe.c, medians): memory $PROBE_IDLE_MEM us, core $PROBE_IDLE_ALU us"

for phase in $PHASES; do
	case $phase in
	calls) phase_calls ;;
	baseline) phase_baseline ;;
	register) phase_register ;;
	plateau) phase_plateau ;;
	*) echo "run.sh: unknown phase '$phase'" >&2 ;;
	esac
done

echo ""
echo "================================================================ summary"
if [ ${#SUMMARY_CALLS[@]} -gt 0 ]; then
	echo "B2BUA calls/s (uac -> plexusd -> uas, $CALL_SECS s per step):"
	printf '  %s\n' "${SUMMARY_CALLS[@]}"
	echo "  => $CALL_MAX_OK calls/s with 0 failures${CALL_FIRST_FAIL:+; failures at $CALL_FIRST_FAIL}"
fi
if [ ${#SUMMARY_BASE[@]} -gt 0 ]; then
	echo "Baseline SIPp -> SIPp ($BASE_SECS s per step):"
	printf '  %s\n' "${SUMMARY_BASE[@]}"
fi
if [ ${#SUMMARY_REG[@]} -gt 0 ]; then
	echo "REGISTER/s ($REG_USERS accounts, $REG_SECS s per step):"
	printf '  %s\n' "${SUMMARY_REG[@]}"
	echo "  => $REG_MAX_OK REGISTER/s with 0 failures${REG_FIRST_FAIL:+; failures at $REG_FIRST_FAIL}"
fi
if [ ${#SUMMARY_PLATEAU[@]} -gt 0 ]; then
	echo "Memory plateau (plexusd VmRSS):"
	printf '%s\n' "${SUMMARY_PLATEAU[@]}"
fi
echo ""
echo "Command lines (in order; $WORK is the work directory):"
sed 's/^/  /' "$CMDS"
echo ""
echo "Total time: $(($(date +%s) - START)) s"
