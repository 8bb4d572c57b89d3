#!/bin/bash
# Media integration test: a real plexusd (chan_sip, res_registrar, pbx_lua,
# app_dial and the codec modules) on free loopback ports, and two phones in
# one Python process (mediaphone.py) that call each other through it, each
# offering or answering one codec only. Each phone sends a tone (caller
# 1000 Hz, callee 600 Hz) and decodes what it receives; the check is that
# each hears the other's tone. Calls: PCMU -> PCMA (transcoded both ways),
# G.722 -> PCMU, PCMU -> Opus, Opus -> G.722, PCMU -> PCMU (relayed, no
# transcoding); a re-INVITE that switches the caller from PCMU to PCMA in
# the middle of a call to an Opus phone keeps audio flowing; RFC 4733
# events from one leg arrive as SIP INFO on an INFO leg (an endpoint, and a
# trunk in dtmf_mode info) and the other way
# round, with their durations; RFC 4733 events cross between PCMU and
# Opus legs in each leg's own event clock (telephone-event/8000 and
# /48000, durations and timestamps rescaled), to a G.722 leg at 8000 (its
# RTP clock), and to an Opus phone that only knows /8000 at 8000; inband
# tones from an inband leg arrive as
# RFC 4733 events, and events are played as tones to an inband leg. Bad RTP sent to plexusd's port of a
# transcoded call (wrong version, truncated header, a CSRC count beyond the
# packet, a wrong payload type, Opus garbage) is dropped and counted, and
# the call goes on. "core show translation" and "core show codecs" show
# the matrix. Every check prints "ok N"; a failure prints what the phones
# saw and the daemon's log.

. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

PHONE=$top_srcdir/tests/sip/mediaphone.py
D=$TMP/etc
BASE=$(free_port_block 200) || {
	echo "Bail out! no block of 200 free loopback ports" >&2
	exit 99
}
SIP_PORT=$BASE
TRUNK_PORT=$((BASE + 2))
make_module_dir "$TMP/modules" chan_sip res_registrar pbx_lua app_dial codec_ulaw codec_alaw \
	codec_g722 codec_gsm codec_opus
write_plexus_conf "$D" "$TMP/modules" 3
write_modules_conf "$D" "autoload = yes"
cat >"$D/rtp.conf" <<EOF
[general]
rtpstart = $((BASE + 10))
rtpend = $((BASE + 199))
rtcpinterval = 1000
EOF
cat >"$D/sip.conf" <<EOF
[general]
bind = 127.0.0.1:$SIP_PORT
realm = plexus-media

[phone](!)
type = endpoint
context = default
disallow = all
nat = yes

[2001](phone)
secret = s2001
allow = ulaw
[2002](phone)
secret = s2002
allow = alaw
[2003](phone)
secret = s2003
allow = g722
[2004](phone)
secret = s2004
allow = opus
[2005](phone)
secret = s2005
allow = ulaw
dtmf_mode = info
[2006](phone)
secret = s2006
allow = ulaw,alaw
[2007](phone)
secret = s2007
allow = ulaw
[2008](phone)
secret = s2008
allow = ulaw
dtmf_mode = inband

[carrier]
type = trunk
host = 127.0.0.2:$TRUNK_PORT
context = default
disallow = all
allow = ulaw
dtmf_mode = info
EOF
cat >"$D/extensions.lua" <<'EOF'
extensions = {
	default = {
		["_20XX"] = function(context, exten)
			app.dial("SIP/" .. exten, 10)
		end,
		["_30XX"] = function(context, exten)
			app.dial("SIP/carrier/" .. exten, 10)
		end,
	},
}
EOF
start_daemon "$D"

check_cmd "the codec modules are loaded" 'core show codecs' 0 '^opus +opus +48000 +48000 +dynamic +codec_opus'
check_cmd "core show translation prints the matrix" 'core show translation' 0 \
	'^ +ulaw( +[0-9]+){7} +-$'
# Opus meets G.711 and G.722 at their own rate: no resampler on the way.
check_cmd "PCMU to Opus is straight: ulaw -> slin -> opus at 8 kHz" \
	'core show translation paths ulaw' 0 \
	'^ +ulaw -> opus +[0-9]+ ulawtolin \(ulaw@8000 -> slin@8000\), lintoopus \(slin@8000 -> opus@48000\)$'
check_cmd "Opus to PCMU is straight: opus -> slin at 8 kHz -> ulaw" \
	'core show translation paths opus' 0 \
	'^ +opus -> ulaw +[0-9]+ opustolin \(opus@48000 -> slin@8000\), lintoulaw'
check_cmd "Opus to G.722 goes through slin16 only" 'core show translation paths opus' 0 \
	'^ +opus -> g722 +[0-9]+ opustolin16 \(opus@48000 -> slin16@16000\), lin16tog722'
check_cmd "an unknown format is refused" 'core show translation paths nosuch' 1 "No format 'nosuch'"

# call NAME ARGS...: one call by mediaphone.py; its lines are kept in $TMP/NAME.out.
call() {
	local name=$1
	shift
	timeout 60 "$PYTHON" "$PHONE" --sip-port "$SIP_PORT" "$@" >"$TMP/$name.out" 2>&1
	local rc=$?
	# The first failed phone check and any request sent again go into
	# the check's own line, which is what a CI summary shows.
	local again
	again=$(sed -n 's/^# \(.*Retry-After.*\)/; \1/p' "$TMP/$name.out" | tr -d '\n')
	if [ $rc != 0 ]; then
		fail "$name: $(grep -m1 '^FAIL' "$TMP/$name.out" | cut -c1-300)$again" \
			"mediaphone.py exited with $rc:" "$(cat "$TMP/$name.out")"
	fi
	pass "$name: $(grep -c '^ok' "$TMP/$name.out") phone checks$again"
}

phone() { # phone USER -> --X USER --X-secret sUSER
	echo "--$1 $2 --$1-secret s$2"
}

# shellcheck disable=SC2046
call "PCMU caller, PCMA callee, transcoded both ways" \
	$(phone caller 2001) --caller-codec ulaw $(phone callee 2002) --callee-codec alaw
# shellcheck disable=SC2046
call "G.722 caller, PCMU callee" \
	$(phone caller 2003) --caller-codec g722 $(phone callee 2001) --callee-codec ulaw
# shellcheck disable=SC2046
call "PCMU caller, Opus callee" \
	$(phone caller 2001) --caller-codec ulaw $(phone callee 2004) --callee-codec opus
# shellcheck disable=SC2046
call "Opus caller, G.722 callee" \
	$(phone caller 2004) --caller-codec opus $(phone callee 2003) --callee-codec g722
# shellcheck disable=SC2046
call "PCMU to PCMU, relayed" \
	$(phone caller 2007) --caller-codec ulaw $(phone callee 2001) --callee-codec ulaw
# shellcheck disable=SC2046
call "a re-INVITE from PCMU to PCMA keeps audio flowing to an Opus phone" \
	$(phone caller 2006) --caller-codec ulaw $(phone callee 2004) --callee-codec opus \
	--reinvite-codec alaw
# The digits of the DTMF calls are told as DtmfBegin/DtmfEnd events too.
"$PLEXUS" -s "$SOCK" -e >"$TMP/events.json" 2>"$TMP/events.err" &
EVENTS_PID=$!
track_pid "$EVENTS_PID"
if ! wait_for_log "$TMP/events.err" 0 'streaming events' 5; then
	fail "plexus -e subscribes" "expected 'streaming events'" "got: $(cat "$TMP/events.err")"
fi
# shellcheck disable=SC2046
call "RFC 4733 digits from the caller arrive as SIP INFO on an INFO leg" \
	$(phone caller 2001) --caller-codec ulaw $(phone callee 2005) --callee-codec ulaw \
	--caller-dtmf rfc4733 --callee-dtmf info --dtmf-digits '159#'
check_cmd "a trunk takes dtmf_mode = info" 'sip show trunk carrier' 0 '^ DTMF mode: +info$'
# shellcheck disable=SC2046
call "RFC 4733 digits from a phone arrive as SIP INFO on a trunk in info mode" \
	$(phone caller 2001) --caller-codec ulaw --callee 3001 --callee-port "$TRUNK_PORT" \
	--callee-codec ulaw --caller-dtmf rfc4733 --callee-dtmf info --dtmf-digits '31*'
# shellcheck disable=SC2046
call "SIP INFO digits from an INFO leg arrive as RFC 4733 events" \
	$(phone caller 2005) --caller-codec ulaw $(phone callee 2001) --callee-codec ulaw \
	--caller-dtmf info --callee-dtmf rfc4733 --dtmf-digits '2*0D'
# shellcheck disable=SC2046
call "RFC 4733 from PCMU reaches Opus at 48 kHz event clock, relayed once, not sent twice" \
	$(phone caller 2001) --caller-codec ulaw $(phone callee 2004) --callee-codec opus \
	--dtmf-digits '73'
# shellcheck disable=SC2046
call "RFC 4733 from an Opus leg (48 kHz events) reaches a PCMU leg in 8 kHz units" \
	$(phone caller 2004) --caller-codec opus $(phone callee 2001) --callee-codec ulaw \
	--dtmf-digits '0#'
# shellcheck disable=SC2046
call "an Opus phone that only knows 8 kHz events still gets them at 8 kHz" \
	$(phone caller 2001) --caller-codec ulaw $(phone callee 2004) --callee-codec opus \
	--callee-event-clock 8000 --dtmf-digits '46'
# shellcheck disable=SC2046
call "RFC 4733 from a PCMU leg reaches a G.722 leg at 8 kHz events (its RTP clock)" \
	$(phone caller 2001) --caller-codec ulaw $(phone callee 2003) --callee-codec g722 \
	--dtmf-digits '8*'
# shellcheck disable=SC2046
call "inband tones from an inband leg arrive as RFC 4733 events" \
	$(phone caller 2008) --caller-codec ulaw $(phone callee 2001) --callee-codec ulaw \
	--caller-dtmf inband --callee-dtmf rfc4733 --dtmf-digits '46*'
# shellcheck disable=SC2046
call "RFC 4733 events arrive as tones on an inband leg" \
	$(phone caller 2001) --caller-codec ulaw $(phone callee 2008) --callee-codec ulaw \
	--caller-dtmf rfc4733 --callee-dtmf inband --dtmf-digits '90B'

# dtmf_events ORIGIN DIGITS: each digit was told begun then ended (250 ms,
# as the phones send them) on a channel of the endpoint that sent it.
kill -TERM "$EVENTS_PID" 2>/dev/null
wait "$EVENTS_PID" 2>/dev/null
untrack_pid "$EVENTS_PID"
dtmf_events() {
	"$PYTHON" - "$TMP/events.json" "$1" "$2" <<'PYEOF'
import json, sys
path, endpoint, digits = sys.argv[1:4]
seen = []
for line in open(path):
    try:
        ev = json.loads(line)
    except ValueError:
        continue
    name = ev.get("event")
    if name in ("DtmfBegin", "DtmfEnd") and ev.get("channel", "").startswith("SIP/%s-" % endpoint):
        seen.append((name, ev.get("digit"), ev.get("duration_ms")))
ends = [(d, ms) for n, d, ms in seen if n == "DtmfEnd"]
begins = [d for n, d, ms in seen if n == "DtmfBegin"]
ok = "".join(d for d, _ in ends) == digits and "".join(begins) == digits and \
    all(ms is not None and 200 <= int(ms) <= 300 for _, ms in ends)
print(seen)
sys.exit(0 if ok else 1)
PYEOF
}
# 2001 sent 159# (to an INFO leg), 31* (to a trunk in info mode), 73, 46
# (across transcoding to Opus), 8*
# (to G.722) and 90B (to an inband leg); 2004 sent 0# at 48 kHz; 2005 sent
# INFO, 2008 tones.
for spec in "2001 159#31*73468*90B" "2004 0#" "2005 2*0D" "2008 46*"; do
	read -r ep digits <<<"$spec"
	if ! out=$(dtmf_events "$ep" "$digits"); then
		fail "DtmfBegin/DtmfEnd events for $digits from SIP/$ep" \
			"each digit begun and ended, ~250 ms" "got: $out"
	fi
	pass "DtmfBegin/DtmfEnd events for $digits from SIP/$ep, ~250 ms each"
done

# RTCP: the caller (rtcp-mux) and the callee (RTCP on port + 1) of a relayed
# call each report 25 % loss and 10 ms of jitter on plexusd's stream; the
# channels show it while the call is up, and each phone gets plexusd's SRs.
timeout 60 "$PYTHON" "$PHONE" --sip-port "$SIP_PORT" $(phone caller 2001) --caller-codec ulaw \
	$(phone callee 2007) --callee-codec ulaw --rtcp --hold 5 >"$TMP/rtcp.out" 2>&1 &
RTCP_PID=$!
track_pid $RTCP_PID
shown=0
for _ in $(seq 1 40); do
	px "$SOCK" 'core show channels'
	names=$(printf '%s\n' "$PX_OUT" | grep -oE '^SIP/200[17]-[0-9a-f]+' | sort -u)
	shown=0
	for name in $names; do
		px "$SOCK" "core show channel $name"
		if printf '%s\n' "$PX_OUT" | grep -qE 'Far end reports: lost 5 \(25% lately\)  jitter: 10 ms' &&
			printf '%s\n' "$PX_OUT" | grep -qE 'RTCP sent: [1-9][0-9]*  received: [1-9]'; then
			shown=$((shown + 1))
		fi
	done
	[ $shown = 2 ] && break
	sleep 0.2
done
if [ $shown != 2 ]; then
	fail "both channels show the far end's RTCP report" "expected 2 channels with it" \
		"got $shown: $PX_OUT"
fi
pass "both channels show the far end's RTCP report (loss, jitter, RTCP counts)"
wait $RTCP_PID
rc=$?
untrack_pid $RTCP_PID
if [ $rc != 0 ]; then
	fail "the phones get plexusd's sender reports" "mediaphone.py exit 0" "$(cat "$TMP/rtcp.out")"
fi
pass "the phones get plexusd's sender reports: $(grep -c '^ok' "$TMP/rtcp.out") phone checks"
finish
