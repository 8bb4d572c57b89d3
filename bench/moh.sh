#!/bin/bash
# bench/moh.sh [BUILD_DIR]: what N callers listening cost plexusd: in
# MusicOnHold (one decoded stream per class, shared) and in Playback (each
# caller reads and decodes its own file), at N = 100 and 300 by default.
#
# Not a test: it prints figures and is not part of "make check". For each
# mode and N, a SIPp UAC (bench/sipp/uac_listen.xml, digest auth, PCMU)
# places N calls at RAMP calls/s to plexusd, whose dialplan answers them
# with MusicOnHold(default) or a Playback loop of the same music file
# (the default class's melody, a WAV: decoded per caller); once all are up,
# plexusd's CPU (utime + stime, all threads) is measured over SAMPLE_SECS,
# with its RSS and what it grew by per call during the step; then the calls end (BYE) and
# the next step starts on the same daemon. SIPp's media port receives the
# RTP and does nothing with it. Bounded: -m N calls, -timeout, an outer
# deadline; loopback only; every process it started is stopped by its pid.
#
# Environment: NS ["100 300"], MODES ["moh playback"], RAMP [50] calls/s,
# SAMPLE_SECS [10], SIPP [sipp], BENCH_KEEP=1 keeps the work directory.

set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${1:-$HERE/../build}
if ! BUILD=$(cd "$BUILD" 2>/dev/null && pwd); then
	echo "moh.sh: build directory ${1:-$HERE/../build} not found" >&2
	exit 2
fi
PLEXUSD=$BUILD/core/plexusd
PLEXUS=$BUILD/console/plexus
MODULES=$BUILD/run/modules
MUSIC=$BUILD/sounds/moh
SIPP=${SIPP:-sipp}
PYTHON=/usr/bin/python3
NS=${NS:-"100 300"}
MODES=${MODES:-"moh playback"}
RAMP=${RAMP:-50}
SAMPLE_SECS=${SAMPLE_SECS:-10}
SECRET=bench-uac-secret
HZ=$(getconf CLK_TCK)

for f in "$PLEXUSD" "$PLEXUS" "$MUSIC/melody.wav"; do
	[ -e "$f" ] || { echo "moh.sh: $f is not built" >&2; exit 2; }
done
for m in chan_sip pbx_lua codec_ulaw res_musiconhold app_playback; do
	[ -e "$MODULES/$m.so" ] || { echo "moh.sh: module $m is not built" >&2; exit 2; }
done
command -v "$SIPP" >/dev/null 2>&1 || { echo "moh.sh: sipp not found (sip-tester)" >&2; exit 2; }

WORK=$(mktemp -d /tmp/px-bench-moh.XXXXXX) || exit 2
STARTED=()

is_running() { kill -0 "$1" 2>/dev/null; }
# Ours: running and started with $WORK on its command line.
is_ours() { is_running "$1" && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF "$WORK"; }
stop_pid() {
	local i
	is_ours "$1" || return 0
	kill -TERM "$1" 2>/dev/null
	for i in $(seq 50); do is_running "$1" || return 0; sleep 0.1; done
	kill -KILL "$1" 2>/dev/null
}
cleanup() {
	local p
	for p in "${STARTED[@]}"; do stop_pid "$p"; done
	if [ "${BENCH_KEEP:-}" = 1 ]; then echo "# work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ticks() { local s; read -r -a s <"/proc/$1/stat" && echo $((${s[13]} + ${s[14]})); }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# A block of free loopback ports: SIP, SIPp, SIPp's media, RTP range.
read -r BASE < <("$PYTHON" - <<'EOF'
import random, socket
for _ in range(200):
    b = random.randrange(30000, 58000, 2)
    try:
        ss = []
        for p in (b, b + 2, b + 4):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", p)); ss.append(s)
        print(b); break
    except OSError:
        pass
EOF
)
[ -n "$BASE" ] || { echo "moh.sh: no free ports" >&2; exit 2; }
SIP_PORT=$BASE
SIPP_PORT=$((BASE + 2))
MEDIA_PORT=$((BASE + 4))
RTP_START=$((BASE + 10))
RTP_END=$((RTP_START + 1600))

D=$WORK/etc
mkdir -p "$D/state"
cat >"$D/plexus.conf" <<EOF
[options]
module_dir = $MODULES
state_dir = $D/state
database = $D/state/plexus.db
pidfile = $D/plexusd.pid
[console]
socket = $D/plexus.ctl
mode = 0600
[logger]
stderr = error,warning
file = $D/plexus.log
file_levels = error,warning,notice
syslog = none
EOF
cat >"$D/modules.conf" <<EOF
[modules]
load = chan_sip
load = res_registrar
load = pbx_lua
load = codec_ulaw
load = codec_alaw
load = res_musiconhold
load = app_playback
EOF
cat >"$D/rtp.conf" <<EOF
[general]
rtpstart = $RTP_START
rtpend = $RTP_END
EOF
cat >"$D/sip.conf" <<EOF
[general]
bind = 127.0.0.1:$SIP_PORT
realm = plexus-bench
[uac]
type = endpoint
secret = $SECRET
context = bench
disallow = all
allow = ulaw
nat = no
EOF
cat >"$D/musiconhold.conf" <<EOF
[default]
directory = $MUSIC
EOF
cat >"$D/extensions.lua" <<EOF
extensions = {
	bench = {
		moh = function() app.answer() app.musiconhold("default") end,
		playback = function()
			app.answer()
			while true do app.playback("$MUSIC/melody") end
		end,
	},
}
EOF

"$PLEXUSD" -f -c "$D" -C "$D/plexus.conf" >"$D/stdout" 2>&1 &
PD=$!
STARTED+=("$PD")
for i in $(seq 100); do
	timeout 5 "$PLEXUS" -s "$D/plexus.ctl" -x 'core show version' >/dev/null 2>&1 && break
	sleep 0.1
done

echo "# plexusd $PD on 127.0.0.1:$SIP_PORT; $(nproc) cores; sample ${SAMPLE_SECS}s"
printf '%-9s %5s  %8s  %10s  %12s\n' mode N "CPU %" "RSS kB" "kB per call"
idle_rss=$(rss_kb "$PD")
t0=$(ticks "$PD")
sleep 2
printf '%-9s %5s  %8s  %10s  %12s\n' idle 0 \
	"$(awk -v t=$(($(ticks "$PD") - t0)) -v hz="$HZ" 'BEGIN {printf "%.1f", t / hz / 2 * 100}')" \
	"$idle_rss" -

for mode in $MODES; do
	for n in $NS; do
		hold_ms=$(((n / RAMP + 5 + SAMPLE_SECS + 5) * 1000))
		rss0=$(rss_kb "$PD")
		"$SIPP" 127.0.0.1:"$SIP_PORT" -sf "$HERE/sipp/uac_listen.xml" -s "$mode" -key caller uac \
			-au uac -ap "$SECRET" -i 127.0.0.1 -p "$SIPP_PORT" -mp "$MEDIA_PORT" \
			-r "$RAMP" -l "$n" -m "$n" -d "$hold_ms" -buff_size 4194304 -nostdin -nd \
			-timeout $((hold_ms / 1000 + 30))s -recv_timeout 10s \
			-trace_err -error_file "$WORK/sipp-$mode-$n.err" >"$WORK/sipp-$mode-$n.out" 2>&1 &
		spid=$!
		STARTED+=("$spid")
		# Wait for every call to be up (bounded).
		deadline=$((SECONDS + n / RAMP + 15))
		up=0
		while [ $SECONDS -lt $deadline ]; do
			up=$(timeout 5 "$PLEXUS" -s "$D/plexus.ctl" -x 'core show channels' 2>/dev/null |
				grep -c "^SIP/uac")
			[ "$up" -ge "$n" ] && break
			sleep 0.5
		done
		sleep 1
		c0=$(ticks "$PD")
		s0=$(date +%s%N)
		sleep "$SAMPLE_SECS"
		c1=$(ticks "$PD")
		s1=$(date +%s%N)
		rss=$(rss_kb "$PD")
		cpu=$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v ns=$((s1 - s0)) \
			'BEGIN {printf "%.1f", t / hz / (ns / 1e9) * 100}')
		per=$(awk -v r="$rss" -v i="$rss0" -v n="$n" 'BEGIN {printf "%.1f", (r - i) / n}')
		printf '%-9s %5s  %8s  %10s  %12s   (%s calls up)\n' "$mode" "$n" "$cpu" "$rss" \
			"$per" "$up"
		[ "$mode" = moh ] && timeout 5 "$PLEXUS" -s "$D/plexus.ctl" -x 'moh show classes' |
			grep -E 'Streams|Listeners|Underruns' | tr -d '\t' | tr '\n' ' ' | sed 's/^/          /;s/$/\n/'
		# End the calls: stop SIPp (no need to wait for its BYEs) and hang
		# up what plexusd still has.
		stop_pid "$spid"
		timeout 10 "$PLEXUS" -s "$D/plexus.ctl" -x 'channel request hangup all' >/dev/null 2>&1
		for i in $(seq 100); do
			left=$(timeout 5 "$PLEXUS" -s "$D/plexus.ctl" -x 'core show channels' 2>/dev/null |
				grep -c "^SIP/")
			[ "$left" -eq 0 ] && break
			sleep 0.2
		done
	done
done
