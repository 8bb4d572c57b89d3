#!/bin/bash
# Media applications end to end: Echo, Record and music on hold, with a real
# plexusd (chan_sip, pbx_lua, app_dial, app_echo, app_record,
# res_musiconhold, the G.711 and G.722 codecs) on free loopback ports and
# phones in Python (appphone.py, built on mediaphone.py) that send tones
# and decode what they hear.
#
# Echo: the packets a caller sends come back (counted at the caller), the
# tone it hears is its own, a digit comes back as an RFC 4733 event, # ends
# Echo; also on a G.722 call. Record: 3 s recorded at 8 kHz (PCMU) and
# 16 kHz (G.722) have that length (+-100 ms), are readable by python's wave
# and by libsndfile, and hold the caller's tone; a caller hanging up in the
# middle leaves a valid file of the time it talked; # stops it (another
# digit does not), any digit with y; silence stops it; paths
# outside record_dir (absolute, '..', a link out) are refused with
# RECORD_STATUS=ERROR and a warning; 's' skips an unanswered call. Music on
# hold: two callers of one class hear its tone from one stream ("moh show
# classes": Streams 1, Listeners 2), which stops when they leave; the
# default class (the build's melodies) plays; a caller put on hold by
# re-INVITE hears the holder's moh_suggest class while the holder receives
# nothing, and hears the callee again after unhold. A reload with a bad
# musiconhold.conf or record.conf is refused (file and line named) and the
# running settings stay. The modules unload and load again. Each check
# prints "ok N"; a failure prints what the phone saw and the daemon's log.

. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

PHONE=$top_srcdir/tests/sip/appphone.py
D=$TMP/etc
REC=$TMP/rec
STATUS=$TMP/status
BASE=$(free_port_block 200) || {
	echo "Bail out! no block of 200 free loopback ports" >&2
	exit 99
}
SIP_PORT=$BASE
make_module_dir "$TMP/modules" chan_sip res_registrar pbx_lua app_dial codec_ulaw codec_alaw \
	codec_g722 app_basic app_echo app_record res_musiconhold
write_plexus_conf "$D" "$TMP/modules" 3
write_modules_conf "$D" "autoload = yes"
cat >"$D/rtp.conf" <<EOF
[general]
rtpstart = $((BASE + 10))
rtpend = $((BASE + 199))
EOF
cat >"$D/sip.conf" <<EOF
[general]
bind = 127.0.0.1:$SIP_PORT
realm = plexus-apps

[phone](!)
type = endpoint
context = default
disallow = all
allow = ulaw
nat = yes

[3001](phone)
secret = s3001
[3002](phone)
secret = s3002
moh_suggest = hold
[3003](phone)
secret = s3003
allow = g722
[3011](phone)
secret = s3011
[3012](phone)
secret = s3012
EOF
cat >"$D/sounds.conf" <<EOF
[general]
directories = $top_builddir/sounds
EOF
mkdir -p "$REC" "$TMP/outside" "$TMP/moh-tone" "$TMP/moh-hold"
ln -s "$TMP/outside" "$REC/link"
cat >"$D/record.conf" <<EOF
[general]
record_dir = $REC
EOF
cat >"$D/musiconhold.conf" <<EOF
[default]
mode = files
directory = $top_builddir/sounds/moh
[tone]
directory = $TMP/moh-tone
[hold]
directory = $TMP/moh-hold
sort = random
EOF
# The classes' music: a 440 Hz tone at 8 kHz, a 350 Hz one at 16 kHz stereo
# (resampled and mixed down by the class's decoder).
"$PYTHON" - "$TMP" <<'PYEOF'
import math, struct, sys, wave
def tone(path, freq, rate, channels):
    w = wave.open(path, "wb")
    w.setnchannels(channels); w.setsampwidth(2); w.setframerate(rate)
    frames = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / rate))) * channels
                      for i in range(rate * 3))
    w.writeframes(frames); w.close()
tone(sys.argv[1] + "/moh-tone/a440.wav", 440, 8000, 1)
tone(sys.argv[1] + "/moh-hold/b350.wav", 350, 16000, 2)
PYEOF
cat >"$D/lua.conf" <<EOF
[general]
allow_io = yes
EOF
cat >"$D/extensions.lua" <<'EOF'
-- apps_media.sh: each extension runs one application and notes its
-- variables in the file named by PX_APPS_STATUS, one line each.
local status_file = os.getenv("PX_APPS_STATUS")
local function note(...)
	local f = io.open(status_file, "a")
	if f then
		f:write(table.concat({...}, " "), "\n")
		f:close()
	end
end
local function rec(file, silence, max, opts, tag)
	return function()
		channel.TAG:set(tag)
		app.record(file .. "," .. silence .. "," .. max .. "," .. opts)
		note(tag, tostring(channel.RECORD_STATUS:get()), tostring(channel.RECORDED_FILE:get()))
		app.hangup()
	end
end
extensions = {
	default = {
		echo = function()
			app.echo()
			note("echo done")
			app.hangup()
		end,
		rec3 = rec("calls/three.wav", 0, 3, "q", "rec3"),
		rec3beep = rec("calls/beep-%d.wav", 0, 3, "", "rec3beep"),
		rechup = rec("calls/hup-%d.wav", 0, 30, "q", "rechup"),
		rechash = rec("hash.wav", 0, 30, "q", "rechash"),
		recany = rec("any.wav", 0, 30, "qy", "recany"),
		recsil = rec("sil.wav", 1, 20, "q", "recsil"),
		recabs = rec(os.getenv("PX_APPS_OUTSIDE") .. "/abs.wav", 0, 3, "q", "recabs"),
		recdots = rec("calls/../../outside/dots.wav", 0, 3, "q", "recdots"),
		reclink = rec("link/linked.wav", 0, 3, "q", "reclink"),
		recext = rec("calls/x.mp3", 0, 3, "q", "recext"),
		recskip = function()
			app.record("skipped.wav,0,3,s")
			note("recskip", tostring(channel.RECORD_STATUS:get()))
			app.answer()
			app.hangup()
		end,
		mohtone = function() app.musiconhold("tone") end,
		mohdefault = function() app.musiconhold("") end,
		mohnone = function() app.musiconhold("nosuchclass") end,
		["_30XX"] = function(context, exten) app.dial("SIP/" .. exten, 10) end,
		h = function()
			local tag = channel.TAG:get()
			if tag then
				note("h", tag, tostring(channel.RECORD_STATUS:get()),
				     tostring(channel.RECORDED_FILE:get()))
			end
		end,
	},
}
EOF
: >"$STATUS"
export PX_APPS_STATUS=$STATUS PX_APPS_OUTSIDE=$TMP/outside
start_daemon "$D"

check_cmd "the applications are registered" 'core show applications' 0 'MusicOnHold'
check_cmd "Record is documented" 'core show application Record' 0 'RECORD_STATUS'

# phone NAME SCENARIO ARGS...: one appphone.py run, its lines in $TMP/NAME.out.
phone() {
	local name=$1
	shift
	timeout 60 "$PYTHON" "$PHONE" "$@" --sip-port "$SIP_PORT" >"$TMP/$name.out" 2>&1
	local rc=$?
	if [ $rc != 0 ]; then
		fail "$name" "appphone.py exited with $rc:" "$(cat "$TMP/$name.out")"
	fi
	pass "$name: $(grep -c '^ok' "$TMP/$name.out") phone checks"
}

# status_line PATTERN: wait (up to 5 s) for a line of the status file.
status_line() {
	local i
	for i in $(seq 50); do
		if grep -E -- "$1" "$STATUS" >/dev/null; then
			grep -E -- "$1" "$STATUS" | tail -n 1
			return 0
		fi
		sleep 0.1
	done
	return 1
}

expect_status_line() { # DESCRIPTION ERE
	if ! status_line "$2" >/dev/null; then
		fail "$1" "expected a status line matching: $2" "got:" "$(cat "$STATUS")"
	fi
	pass "$1"
}

# check_wav DESCRIPTION FILE RATE SECONDS TOLERANCE [FREQ]: the file is a
# WAV that python's wave and libsndfile both read, of RATE Hz, SECONDS long
# (+- TOLERANCE), and (with FREQ) holds that tone.
check_wav() {
	local out
	if ! out=$("$PYTHON" - "$@" 2>&1 <<'PYEOF'
import ctypes, math, struct, sys, wave
_, path, rate, secs, tol = sys.argv[1:6]
freq = int(sys.argv[6]) if len(sys.argv) > 6 else 0
w = wave.open(path, "rb")
n, r = w.getnframes(), w.getframerate()
pcm = struct.unpack("<%dh" % n, w.readframes(n))
w.close()
class Info(ctypes.Structure):
    _fields_ = [("frames", ctypes.c_int64), ("samplerate", ctypes.c_int), ("channels", ctypes.c_int),
                ("format", ctypes.c_int), ("sections", ctypes.c_int), ("seekable", ctypes.c_int)]
lib = ctypes.CDLL("libsndfile.so.1")
lib.sf_open.restype = ctypes.c_void_p
info = Info()
h = lib.sf_open(path.encode(), 0x10, ctypes.byref(info))
if not h:
    sys.exit("libsndfile cannot open it: %s" % ctypes.c_char_p(lib.sf_strerror(None)).value)
lib.sf_close(ctypes.c_void_p(h))
print("wave: %d frames at %d Hz (%.3f s); libsndfile: %d frames at %d Hz" % (
    n, r, n / r, info.frames, info.samplerate))
if r != int(rate) or info.samplerate != r or info.frames != n:
    sys.exit("rate or length differ")
if abs(n / r - float(secs)) > float(tol):
    sys.exit("length %.3f s, expected %s +- %s" % (n / r, secs, tol))
if freq:
    x = pcm[-r // 2:]
    k = 2 * math.cos(2 * math.pi * freq / r)
    s1 = s2 = 0.0
    for v in x:
        s1, s2 = v + k * s1 - s2, s1
    p = s1 * s1 + s2 * s2 - k * s1 * s2
    e = sum(v * v for v in x) / max(len(x), 1)
    print("tone %d Hz power %.3g, mean energy %.3g" % (freq, p, e))
    if e < 1e5 or p < 1e9:
        sys.exit("the caller's tone is not in the recording")
PYEOF
	); then
		fail "$1" "$2:" "$out"
	fi
	pass "$1 ($(echo "$out" | head -n 1))"
}

# ---------------------------------------------------------------- Echo

phone "Echo on a PCMU call" echo --caller 3001 --exten echo
expect_status_line "Echo returns on # and the dialplan goes on" '^echo done$'
phone "Echo on a G.722 call (linear 16 kHz through the codec)" echo --caller 3003 --exten echo \
	--codec g722

# ---------------------------------------------------------------- Record

phone "Record 3 s of a PCMU caller" talk --caller 3001 --exten rec3 --wait-bye --seconds 3
expect_status_line "Record stops at maxduration: RECORD_STATUS=TIMEOUT" "^rec3 TIMEOUT $REC/calls/three\$"
check_wav "the 3 s recording is a valid 8 kHz WAV of 3 s with the caller's tone" \
	"$REC/calls/three.wav" 8000 3.0 0.1 1000

: >"$STATUS"
phone "Record 3 s after the beep, %d numbering" talk --caller 3001 --exten rec3beep --wait-bye \
	--seconds 4
line=$(status_line '^rec3beep ') || fail "Record with a beep ends" "no status line" "$(cat "$STATUS")"
case $line in
"rec3beep TIMEOUT $REC/calls/beep-0") pass "the beep, then RECORD_STATUS=TIMEOUT, beep-0" ;;
*) fail "the beep, then RECORD_STATUS=TIMEOUT, beep-0" "got: $line" ;;
esac
check_wav "the recording after the beep is 3 s" "$REC/calls/beep-0.wav" 8000 3.0 0.1 1000

phone "Record 3 s of a G.722 caller" talk --caller 3003 --exten rec3 --wait-bye --seconds 3 \
	--codec g722 --freq 700
check_wav "a G.722 call is recorded at 16 kHz, 3 s" "$REC/calls/three.wav" 16000 3.0 0.1 700

: >"$STATUS"
phone "a caller hangs up 1.5 s into a recording" talk --caller 3001 --exten rechup --seconds 1.5
expect_status_line "RECORD_STATUS=HANGUP" "^h rechup HANGUP $REC/calls/hup-0\$"
check_wav "the file of a hangup mid-recording is valid and as long as the caller talked" \
	"$REC/calls/hup-0.wav" 8000 1.5 0.3 1000

phone "# stops a recording" talk --caller 3001 --exten rechash --seconds 2 --digits '5#'
expect_status_line "RECORD_STATUS=DTMF" "^rechash DTMF $REC/hash\$"
check_wav "the recording stopped by # is as long as the caller talked (5 is ignored)" \
	"$REC/hash.wav" 8000 2.2 0.3 1000
phone "with y any digit stops a recording" talk --caller 3001 --exten recany --seconds 1 \
	--digits 5
expect_status_line "y: RECORD_STATUS=DTMF on 5" "^recany DTMF $REC/any\$"
check_wav "the recording stopped by 5 is as long as the caller talked" "$REC/any.wav" 8000 \
	1.1 0.3 1000

phone "silence stops a recording" talk --caller 3001 --exten recsil --wait-bye --seconds 6 \
	--freq 0
expect_status_line "RECORD_STATUS=SILENCE" "^recsil SILENCE $REC/sil\$"
check_wav "of the silence 0.2 s is kept" "$REC/sil.wav" 8000 0.2 0.1

for bad in "recabs:an absolute path outside record_dir" "recdots:a path with .." \
	"reclink:a link that leads outside" "recext:a file that is not .wav"; do
	ext=${bad%%:*}
	mark=$(log_mark "$D/plexus.log")
	phone "Record refuses $ext" talk --caller 3001 --exten "$ext" --wait-bye --seconds 3
	expect_status_line "${bad#*:} is refused: RECORD_STATUS=ERROR" "^$ext ERROR "
	if ! log_since "$D/plexus.log" "$mark" | grep -q 'WARNING.*Record on .* refused'; then
		fail "$ext: a warning says why" "got:" "$(log_since "$D/plexus.log" "$mark")"
	fi
	pass "$ext: a warning says why"
done
if [ -n "$(ls -A "$TMP/outside")" ]; then
	fail "nothing was written outside record_dir" "got:" "$(ls -la "$TMP/outside")"
fi
pass "nothing was written outside record_dir"

phone "Record with s on an unanswered call" talk --caller 3001 --exten recskip --wait-bye \
	--seconds 1
expect_status_line "s skips an unanswered call: RECORD_STATUS=SKIP" '^recskip SKIP$'

# ---------------------------------------------------------------- music on hold

PLEXUS_SHOW="$PLEXUS -s $SOCK -x 'moh show classes'"
phone "two callers in MusicOnHold(tone) hear its 440 Hz" listen --caller 3011 --callers 2 \
	--exten mohtone --freq 440 --show "$PLEXUS_SHOW"
block=$(sed -n '/^show: Class: tone/,/^show: Class: /p' "$TMP/two callers in MusicOnHold(tone) hear its 440 Hz.out")
if ! grep -q 'Streams: 1$' <<<"$block" || ! grep -q 'Listeners: 2$' <<<"$block"; then
	fail "two listeners of one class share one stream" "moh show classes said:" "$block"
fi
pass "two listeners of one class share one stream (Streams: 1, Listeners: 2)"
for i in $(seq 50); do
	px "$SOCK" 'moh show classes'
	block=$(printf '%s\n' "$PX_OUT" | sed -n '/^Class: tone/,/^Class: /p')
	grep -q 'Streams: 0$' <<<"$block" && grep -q 'Listeners: 0$' <<<"$block" && break
	sleep 0.1
done
if ! grep -q 'Streams: 0$' <<<"$block"; then
	fail "the class's stream stops when nobody listens" "moh show classes:" "$PX_OUT"
fi
pass "the class's stream stops when nobody listens"

phone "MusicOnHold() plays the default class (the build's melodies)" listen --caller 3011 \
	--exten mohdefault --freq 0
mark=$(log_mark "$D/plexus.log")
phone "MusicOnHold of a class that does not exist plays the default class" listen \
	--caller 3011 --exten mohnone --freq 0
if ! log_since "$D/plexus.log" "$mark" | grep -q "no class 'nosuchclass'"; then
	fail "a warning names the missing class" "got:" "$(log_since "$D/plexus.log" "$mark")"
fi
pass "a warning names the missing class"

phone "hold by re-INVITE plays the holder's class to the held party" hold --caller 3001 \
	--callee 3002 --freq 350

# ---------------------------------------------------------------- bad configuration

cp "$D/musiconhold.conf" "$TMP/musiconhold.good"
printf '[tone]\ndirectory = %s\nsort = sideways\n' "$TMP/moh-tone" >"$D/musiconhold.conf"
mark=$(log_mark "$D/plexus.log")
check_cmd "a reload with a bad sort is refused" 'module reload res_musiconhold' 1 \
	'Unable to reload res_musiconhold'
if ! log_since "$D/plexus.log" "$mark" | grep -q 'musiconhold.conf:3: sort'; then
	fail "the error names file and line" "got:" "$(log_since "$D/plexus.log" "$mark")"
fi
pass "the error names file and line"
check_cmd "the classes stay as they were" 'moh show classes' 0 '^Class: hold'
cp "$TMP/musiconhold.good" "$D/musiconhold.conf"
printf '[general]\nrecord_dir = relative/dir\n' >"$D/record.conf"
check_cmd "a relative record_dir is refused" 'module reload app_record' 1 \
	'Unable to reload app_record'
phone "Record still records into the old record_dir" talk --caller 3001 --exten rec3 \
	--wait-bye --seconds 3
check_wav "the old record_dir is kept" "$REC/calls/three.wav" 8000 3.0 0.1 1000
printf '[general]\nrecord_dir = %s\n' "$REC" >"$D/record.conf"

# ---------------------------------------------------------------- modules

for m in res_musiconhold app_echo app_record; do
	check_cmd "$m unloads" "module unload $m" 0
	check_cmd "$m loads again" "module load $m" 0
done
check_cmd "after reloading the module the classes are back" 'moh show classes' 0 '^Class: tone'
phone "two callers hear the tone class after the reload" listen --caller 3011 --callers 2 \
	--exten mohtone --freq 440
check_answers "plexusd is alive after every call"
# The refused reloads above are the only errors expected.
errors=$(grep -E '^\[[^]]*\] ERROR\[' "$D/plexus.log" | grep -v 'stay as they were')
if [ -n "$errors" ]; then
	fail "no other error in the log" "got:" "$errors"
fi
pass "no other error in the log"
if ! stop_daemon "$DAEMON_PID" 20 || [ "$EXIT_STATUS" != 0 ]; then
	fail "plexusd stops cleanly" "exit status $EXIT_STATUS" "$(tail -n 20 "$D/stderr")"
fi
untrack_pid "$DAEMON_PID"
if grep -qE 'Sanitizer|runtime error:' "$D/stderr"; then
	fail "no sanitizer report" "got:" "$(grep -E -A20 'Sanitizer|runtime error:' "$D/stderr")"
fi
pass "plexusd stops cleanly, with no sanitizer report"
finish
