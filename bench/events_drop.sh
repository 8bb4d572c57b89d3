#!/bin/bash
# bench/events_drop.sh [BUILD_DIR]: issue 9's benchmark, what the event
# subscribers cost in calls/s. It runs run.sh's calls phase (the ladder of
# the first-call benchmark: 30 s steps of rising rate, each on a fresh
# plexusd, stopping at the first step with a failed call) ROUNDS times
# without subscribers and ROUNDS times with SUBS `plexus -e` subscribers,
# interleaved and in alternating order (none, subs; subs, none; ...), so
# that a slow spell of a shared machine falls on both alike. A ladder
# gives the rate of its first failing step, and on a 2-core machine shared
# with SIPp that varies by several steps from run to run; so it prints each
# ladder's highest clean rate, the median of each side, and the drop of the
# median with subscribers against the one without.
#
#   ROUNDS [4]   SUBS [10]   CALL_RATES ["1700 1800 1900 2000 2100 2200"]
#   CALL_SECS [30]   RTP_PORTS [10000]   OUT [a new directory under /tmp]
#
# Each ladder's whole output stays in OUT (ladder-N-SUBS.txt). Bounded:
# every run.sh is (SIPp -m and -timeout, every wait has a deadline), and
# so is the number of ladders; loopback only; run.sh stops only its own
# processes.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-$HERE/../build}
ROUNDS=${ROUNDS:-4}
SUBS=${SUBS:-10}
CALL_RATES=${CALL_RATES:-"1700 1800 1900 2000 2100 2200"}
CALL_SECS=${CALL_SECS:-30}
RTP_PORTS=${RTP_PORTS:-10000}
OUT=${OUT:-$(mktemp -d /tmp/px-events-drop.XXXXXX)}
mkdir -p "$OUT" || exit 2

case "$ROUNDS$SUBS" in *[!0-9]*)
	echo "events_drop.sh: ROUNDS and SUBS are whole numbers" >&2
	exit 2
	;;
esac
if [ "$ROUNDS" -lt 1 ] || [ "$SUBS" -lt 1 ]; then
	echo "events_drop.sh: ROUNDS and SUBS must be at least 1" >&2
	exit 2
fi

# ladder ROUND SUBSCRIBERS: one calls phase; prints its highest clean rate
# (0 when even the first step failed), or nothing when run.sh failed.
ladder() {
	local f=$OUT/ladder-$1-$2.txt
	PHASES=calls CALL_RATES="$CALL_RATES" CALL_SECS="$CALL_SECS" RTP_PORTS="$RTP_PORTS" \
		EVENT_SUBSCRIBERS=$2 "$HERE/run.sh" "$BUILD" >"$f" 2>&1
	sed -n 's/^highest rate with 0 failed calls: \([0-9]*\) calls\/s.*/\1/p' "$f" | tail -n 1
}

# median VALUES...: the median (the mean of the middle two for an even count).
median() {
	printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 }
		END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# shown RATE: a ladder's result as printed; 0 (the first step failed) is
# "<FIRST" (it counts as 0 in the median).
shown() {
	local first=${CALL_RATES%% *}
	if [ "$1" = 0 ]; then echo "<$first"; else echo "$1"; fi
}

declare -a none=() with=()
echo "events_drop.sh: $ROUNDS rounds of ladders ($CALL_RATES, $CALL_SECS s steps),"
echo "without subscribers and with $SUBS, interleaved; outputs in $OUT"
printf '%6s %8s %8s\n' round none "$SUBS-subs"
for ((r = 1; r <= ROUNDS; r++)); do
	if ((r % 2)); then order="0 $SUBS"; else order="$SUBS 0"; fi
	a= b=
	for s in $order; do
		v=$(ladder "$r" "$s")
		if [ -z "$v" ]; then
			echo "events_drop.sh: run.sh gave no result (see $OUT/ladder-$r-$s.txt)" >&2
			exit 1
		fi
		if [ "$s" = 0 ]; then a=$v; else b=$v; fi
	done
	none+=("$a")
	with+=("$b")
	printf '%6s %8s %8s\n' "$r" "$(shown "$a")" "$(shown "$b")"
done
m0=$(median "${none[@]}")
m1=$(median "${with[@]}")
echo "median highest clean rate: $m0 calls/s without subscribers, $m1 with $SUBS"
awk -v a="$m0" -v b="$m1" -v n="$SUBS" 'BEGIN {
	if (a <= 0) { print "no clean step without subscribers: lower CALL_RATES"; exit }
	printf "drop with %d subscribers: %.1f %% (issue 9 allows 10 %%)\n", n, (a - b) * 100 / a }'
