#!/bin/bash
# bench/media.sh [BUILD_DIR]: media figures of plexusd on this machine.
#
# Not a test: it prints figures, never pass/fail, and is not part of
# "make check". For each mode and each number of calls N it starts a fresh
# plexusd, has a SIPp UAC place N calls (digest auth, PCMU only) through it
# at RATE calls/s, each held until all N have been up together for
# HOLD_SECS, with RTP both ways: the UAC plays a PCMU tone on every call
# (SIPp rtp_stream, 50 packets/s), the UAS (SIPp) echoes every packet it
# gets back to plexusd (-rtp_echo). While all N are up it samples
# plexusd's CPU time and RSS ("young" calls, their set-up transactions
# still kept by sofia-sip), and RSS again STEADY_SECS after the last call
# was set up, once those transactions have ended: the steady state of a
# call that lasts minutes.
# It also prints the memory of pbx_lua's Lua states ("dialplan show":
# every caller's extension function is parked in Dial).
#
# Modes (MODES, default "relay transcode"):
#   relay      the UAS endpoint allows PCMU: plexusd relays G.711 packets
#   transcode  the UAS endpoint allows only Opus: plexusd decodes PCMU and
#              encodes Opus at 8 kHz one way, and back the other
#
# Environment (defaults in brackets):
#   CALLS ["100 200 500"]  HOLD_SECS [30]  STEADY_SECS [45; 0: no steady
#   sample]  RATE [50]  MODES  SIPP [sipp]
#   BENCH_KEEP=1 keeps the work directory (plexusd logs, SIPp statistics);
#   BENCH_TRACE=1 has the SIPps log every message there too;
#   BENCH_STACKS=1 prints the resident pages of plexusd's thread stacks
#   (bench/stacks.py) with the calls up and again once they have ended;
#   BENCH_MALLOC=1 (needs gdb) also prints what malloc has handed out and
#   not had back, idle, young and steady (glibc's malloc_stats()).
#
# Every run is bounded: SIPp gets -m, -timeout and -recv_timeout, the
# script waits with deadlines, everything is on 127.0.0.1, and every
# process it starts is stopped by its pid at the end.

set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${1:-$HERE/../build}
if ! BUILD=$(cd "$BUILD" 2>/dev/null && pwd); then
	echo "media.sh: build directory ${1:-$HERE/../build} not found" >&2
	exit 2
fi
PLEXUSD=$BUILD/core/plexusd
PLEXUS=$BUILD/console/plexus
BUILT_MODULES=$BUILD/run/modules
SCEN=$HERE/sipp
SIPP=${SIPP:-sipp}
PYTHON=/usr/bin/python3
CALLS=${CALLS:-"100 200 500"}
HOLD_SECS=${HOLD_SECS:-30}
STEADY_SECS=${STEADY_SECS:-45}
RATE=${RATE:-50}
MODES=${MODES:-"relay transcode"}
SECRET_UAC=bench-uac-secret
SECRET_UAS=bench-uas-secret
BUFF=4194304
HZ=$(getconf CLK_TCK)

for f in "$PLEXUSD" "$PLEXUS"; do
	if [ ! -x "$f" ]; then
		echo "media.sh: $f is not built (give the build directory as argument)" >&2
		exit 2
	fi
done
for m in chan_sip res_registrar pbx_lua app_dial codec_ulaw codec_opus; do
	if [ ! -e "$BUILT_MODULES/$m.so" ]; then
		echo "media.sh: module $BUILT_MODULES/$m.so is not built" >&2
		exit 2
	fi
done
if ! command -v "$SIPP" >/dev/null 2>&1; then
	echo "media.sh: sipp not found (Debian package sip-tester)" >&2
	exit 2
fi
MAX_N=0
for n in $CALLS; do
	[ "$n" -gt "$MAX_N" ] && MAX_N=$n
done

WORK=$(mktemp -d /tmp/px-bench-media.XXXXXX) || exit 2
STARTED=()

# ---------------------------------------------------------------- processes

is_running() {
	local state
	kill -0 "$1" 2>/dev/null || return 1
	state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)
	[ -n "$state" ] && [ "$state" != Z ]
}

. "$HERE/lib.sh"

cpu_ticks() { # utime + stime of a process
	local line f
	{ read -r line <"/proc/$1/stat"; } 2>/dev/null || return 1
	read -r -a f <<<"${line##*) }"
	echo $((f[11] + f[12]))
}

rss_kb() {
	sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$1/status" 2>/dev/null
}

# heap_kb PID OUT: kB that malloc has handed out and not had back, printed
# by the allocator into the process's stderr, OUT, when gdb (which stops
# the process for a moment) calls its statistics function: jemalloc's
# malloc_stats_print() ("Allocated:", every arena) when plexusd is linked
# with it, else glibc's malloc_stats() (all arenas and mmapped chunks).
# Empty unless BENCH_MALLOC=1.
heap_kb() {
	[ "${BENCH_MALLOC:-}" = 1 ] || return 0
	if ldd "$PLEXUSD" 2>/dev/null | grep -q jemalloc; then
		timeout 30 gdb -p "$1" -batch \
			-ex 'call (void)malloc_stats_print(0, 0, "gmdablxeh")' >/dev/null 2>&1
		awk '/^Allocated:/ { v = $2; gsub(",", "", v) }
			END { if (v != "") print int(v / 1024) }' "$2"
		return 0
	fi
	timeout 30 gdb -p "$1" -batch -ex 'call (void)malloc_stats()' >/dev/null 2>&1
	awk '/^Total \(incl. mmap\):/ { t = 1 } t && /in use bytes/ { v = $NF; t = 0 }
		END { if (v != "") print int(v / 1024) }' "$2"
}

# ---------------------------------------------------------------- ports

# Loopback blocks in 30000-60999: 100 for SIP and the SIPps, 4 per call
# for plexusd's RTP range (two legs, RTP and RTCP each) and 2 per call for
# the UAC's RTP streams (SIPp takes them upwards from its -mp), plus slack.
NEED_RTP=$((4 * MAX_N + 200))
NEED_UAC=$((2 * MAX_N + 200))
read -r BASE RTP_START UAC_RTP < <("$PYTHON" - "$NEED_RTP" "$NEED_UAC" "$$" <<'PYEOF'
import socket, sys
need_rtp, need_uac, pid = (int(a) for a in sys.argv[1:4])
first, last = 30000, 60999
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
taken = []
def block(count):
    starts = list(range(first, last - count + 2, 100))
    k = pid % len(starts)
    for base in starts[k:] + starts[:k]:
        if any(base < b + n and b < base + count for b, n in taken):
            continue
        if all(free(p) for p in range(base, base + count)):
            taken.append((base, count))
            return base
    sys.exit(1)
print(block(100), block(need_rtp), block(need_uac))
PYEOF
)
if [ -z "${UAC_RTP:-}" ]; then
	echo "media.sh: no free blocks of loopback ports in 30000-60999" >&2
	exit 2
fi
SIP_PORT=$BASE
SLOT_UAC=$((BASE + 10))
SLOT_UAS=$((BASE + 20))
RTP_END=$((RTP_START + NEED_RTP - 2))

# ---------------------------------------------------------------- configuration

CONF=$WORK/etc
mkdir -p "$CONF/modules" "$CONF/state"
for m in chan_sip res_registrar pbx_lua app_dial codec_ulaw codec_alaw codec_opus; do
	ln -sf "$BUILT_MODULES/$m.so" "$CONF/modules/$m.so"
done
cat >"$CONF/plexus.conf" <<EOF
; written by bench/media.sh
[options]
verbose = 0
module_dir = $CONF/modules
state_dir = $CONF/state
database = $CONF/state/plexus.db
pidfile = $CONF/plexusd.pid

[console]
socket = $CONF/plexus.ctl
mode = 0600

[logger]
stderr = error,warning
file = $CONF/plexus.log
file_levels = error,warning,notice
syslog = none
EOF
cat >"$CONF/modules.conf" <<EOF
[modules]
autoload = yes
EOF
cat >"$CONF/rtp.conf" <<EOF
[general]
rtpstart = $RTP_START
rtpend = $RTP_END
EOF
cat >"$CONF/extensions.lua" <<'EOF'
-- bench/media.sh: "relay" rings SIP/uas (PCMU), "opus" SIP/uasopus.
extensions = {
	bench = {
		relay = function() app.Dial("SIP/uas", 30) end,
		opus = function() app.Dial("SIP/uasopus", 30) end,
	},
}
EOF
cat >"$CONF/sip.conf" <<EOF
; written by bench/media.sh
[general]
bind = 127.0.0.1:$SIP_PORT
transports = udp
realm = plexus-bench

[phone](!)
type = endpoint
context = bench
disallow = all
nat = yes

[uac](phone)
secret = $SECRET_UAC
allow = ulaw

[uas](phone)
secret = $SECRET_UAS
allow = ulaw

[uasopus](phone)
secret = $SECRET_UAS
allow = opus
EOF

# Eight seconds of a 1 kHz tone with some noise, as raw PCMU: what the UAC
# plays in a loop (audio, not silence, so the Opus encoder does real work).
"$PYTHON" - "$WORK/tone.ulaw" <<'PYEOF'
import math, random, struct, sys, warnings
warnings.filterwarnings("ignore", category=DeprecationWarning)
import audioop
pcm = struct.pack("<64000h", *(int(8000 * math.sin(2 * math.pi * 1000 * i / 8000)
                                   + random.randint(-1500, 1500)) for i in range(64000)))
open(sys.argv[1], "wb").write(audioop.lin2ulaw(pcm, 2))
PYEOF

# ---------------------------------------------------------------- one run

sipp_bg() { # NAME SLOT ARGS...: a SIPp in the background, in $WORK
	local name=$1 slot=$2
	shift 2
	(cd "$WORK" && exec "$SIPP" -i 127.0.0.1 -p "$slot" -cp $((slot + 1)) -buff_size "$BUFF" \
		-nostdin -nd -trace_stat -stf "$WORK/$name.stat.csv" -fd 1 -trace_screen \
		-screen_file "$WORK/$name.screen" -trace_err -error_file "$WORK/$name.err" \
		${BENCH_TRACE:+-trace_msg -message_file "$WORK/$name.msg"} "$@" \
		>"$WORK/$name.out" 2>&1) &
	SIPP_PID=$!
	STARTED+=("$SIPP_PID")
}

px() {
	timeout 20 "$PLEXUS" -s "$CONF/plexus.ctl" -x "$1" 2>&1
}

PD_PID=
start_plexusd() {
	local i
	rm -rf "$CONF/state" "$CONF/plexus.log"
	mkdir -p "$CONF/state"
	"$PLEXUSD" -f -c "$CONF" -C "$CONF/plexus.conf" >"$WORK/plexusd-$1.out" 2>&1 &
	PD_PID=$!
	STARTED+=("$PD_PID")
	for ((i = 0; i < 100; i++)); do
		[ -S "$CONF/plexus.ctl" ] && px 'sip show endpoints' | grep -q uasopus && return 0
		is_running "$PD_PID" || break
		sleep 0.1
	done
	echo "media.sh: plexusd did not start:" >&2
	tail -n 20 "$WORK/plexusd-$1.out" >&2
	exit 1
}

channels_up() {
	px 'core show channels concise' | grep -c '!Up!'
}

# run MODE N: one measurement; prints the figures of one run.
run() {
	local mode=$1 n=$2 name="$1-$2" account number ramp hold measure
	local t0 t1 rss0 rss1 rss2 up up2 ok sample started heap0 heap1 heap2 lua
	if [ "$mode" = relay ]; then
		account=uas number=relay
	else
		account=uasopus number=opus
	fi
	start_plexusd "$name"
	rss0=$(rss_kb "$PD_PID")
	heap0=$(heap_kb "$PD_PID" "$WORK/plexusd-$name.out")

	sipp_bg "reg-$name" "$SLOT_UAS" "127.0.0.1:$SIP_PORT" -sf "$SCEN/register.xml" \
		-s "$account" -au "$account" -ap "$SECRET_UAS" -m 1 -timeout 10s -timeout_error \
		-recv_timeout 5s
	if ! wait_gone "$SIPP_PID" 15; then
		stop_sipp "$SIPP_PID"
		echo "  $name: the UAS did not register; see $WORK/reg-$name.*"
		stop_pid "$PD_PID"
		return
	fi
	# The last call is set up at about "ramp" seconds; all N are up from
	# then until the first call's hold ends. That must cover the young
	# window (HOLD_SECS) and, when asked, the steady sample STEADY_SECS
	# after the last set-up.
	ramp=$(((n + RATE - 1) / RATE))
	hold=$((ramp + HOLD_SECS + 3))
	[ "$STEADY_SECS" -gt 0 ] && [ $((ramp + STEADY_SECS + 3)) -gt "$hold" ] &&
		hold=$((ramp + STEADY_SECS + 3))
	sipp_bg "uas-$name" "$SLOT_UAS" -sf "$SCEN/uas_media.xml" -mp $((SLOT_UAS + 2)) -rtp_echo \
		-m "$n" -timeout $((hold + ramp + 60))s -recv_timeout $((hold + 30))s
	local uas=$SIPP_PID
	started=$SECONDS
	sipp_bg "uac-$name" "$SLOT_UAC" "127.0.0.1:$SIP_PORT" -sf "$SCEN/uac_media.xml" \
		-s "$number" -key caller uac -au uac -ap "$SECRET_UAC" -m "$n" -l "$n" -r "$RATE" \
		-d $((hold * 1000)) -mp "$UAC_RTP" \
		-timeout $((hold + ramp + 60))s -timeout_error -recv_timeout 30s
	local uac=$SIPP_PID

	# All N calls up: from the end of the ramp (plus settling) for the
	# rest of the hold, less a margin before the first BYEs.
	sleep $((ramp + 2))
	up=$(channels_up)
	measure=$((HOLD_SECS - 3))
	[ "$measure" -lt 3 ] && measure=3
	t0=$(cpu_ticks "$PD_PID")
	sleep "$measure"
	t1=$(cpu_ticks "$PD_PID")
	rss1=$(rss_kb "$PD_PID")
	lua=$(px 'dialplan show' | grep -m1 -oE '[0-9]+ open .* KiB' | sed 's/ open (.*) using/ state(s) open,/')
	heap1=$(heap_kb "$PD_PID" "$WORK/plexusd-$name.out")
	sample=$(px 'core show channels concise' | grep -m1 -oE '^SIP/uac-[0-9a-f]+')
	[ -n "$sample" ] && sample=$(px "core show channel $sample" | grep -E 'RX packets|TX packets' |
		tr -s ' ' | tr '\n' ' ')
	# Steady: the same calls once the transactions of their set-up have
	# ended (sofia-sip keeps a completed transaction about 32 s, 64*T1).
	if [ "$STEADY_SECS" -gt 0 ]; then
		local wait_s=$((started + ramp + STEADY_SECS - SECONDS))
		[ "$wait_s" -gt 0 ] && sleep "$wait_s"
		up2=$(channels_up)
		rss2=$(rss_kb "$PD_PID")
		heap2=$(heap_kb "$PD_PID" "$WORK/plexusd-$name.out")
	fi
	[ "${BENCH_STACKS:-}" = 1 ] && stacks "thread stacks, calls up"

	wait_gone "$uac" $((hold + 60)) || stop_sipp "$uac"
	ok=$(grep -oE 'Successful call[^0-9]*[0-9]+[^0-9]+[0-9]+' "$WORK/uac-$name.screen" 2>/dev/null |
		grep -oE '[0-9]+$' | tail -1)
	stop_sipp "$uas"
	if [ "${BENCH_STACKS:-}" = 1 ]; then
		local i
		for ((i = 0; i < 100; i++)); do
			[ "$(px 'core show channels concise' | grep -c .)" = 0 ] && break
			sleep 0.1
		done
		stacks "thread stacks, calls ended (session threads idle in the pool)"
	fi
	stop_pid "$PD_PID"
	printf '%-9s N=%-4s up %4s/%-4s  CPU %5.1f %% of a core  RSS %6s kB (%+d kB idle->load, %s kB/call)  calls ok %s\n' \
		"$mode" "$n" "$((up / 2))" "$n" "$(echo "scale=1; ($t1 - $t0) * 100 / ($HZ * $measure)" | bc)" \
		"$rss1" "$((rss1 - rss0))" "$(((rss1 - rss0) / n))" "${ok:-?}"
	echo "          Lua: ${lua:-?} for $n parked calls"
	[ "$STEADY_SECS" -gt 0 ] &&
		printf '          steady (%ss after the last set-up): up %4s/%-4s  RSS %6s kB (%+d kB idle->load, %s kB/call)\n' \
			"$STEADY_SECS" "$((up2 / 2))" "$n" "$rss2" "$((rss2 - rss0))" "$(((rss2 - rss0) / n))"
	[ -n "$heap0" ] && [ -n "$heap1" ] &&
		printf '          malloc in use: idle %s kB, young %s kB (%s kB/call)%s\n' "$heap0" "$heap1" \
			"$(((heap1 - heap0) / n))" \
			"${heap2:+, steady $heap2 kB ($(((heap2 - heap0) / n)) kB/call)}"
	echo "          sample leg: ${sample:-none}"
}

stacks() { # TITLE: bench/stacks.py on plexusd, indented
	echo "          $1:"
	"$PYTHON" "$HERE/stacks.py" "$PD_PID" 2>&1 | sed 's/^/            /'
}

echo "# bench/media.sh: $("$PLEXUSD" -V 2>/dev/null | head -1), $(nproc) cores," \
	"hold ${HOLD_SECS}s, steady at ${STEADY_SECS}s, $RATE calls/s"
for mode in $MODES; do
	for n in $CALLS; do
		run "$mode" "$n"
	done
done
