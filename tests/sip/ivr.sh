#!/bin/bash
# IVR integration test: a real plexusd (chan_sip, pbx_lua, the IVR
# applications and codec modules) on free loopback ports, with the build's
# prompts and a sounds directory of the test's own (a 1 s tone, a 44.1 kHz
# stereo WAV, a corrupt WAV), and a phone (ivrphone.py) that calls
# extensions of a test extensions.lua, counts the RTP it hears and presses
# RFC 4733 digits. Checked: the classic auto-attendant (a digit during the
# menu prompt stops it and lands in its extension; after it, WaitExten; two
# digits; nothing pressed: 't'; a digit of no extension: 'i' with
# INVALID_EXTEN); Playback sends RTP for the file's duration (+-1 packet)
# in PCMU and G.722, a missing file and a corrupt WAV set PLAYBACKSTATUS to
# FAILED with a warning naming the file and the call goes on; Read stores
# the digits ended by '#', times out, and reads even when its prompt does
# not exist; SayNumber/SayDigits say the right prompts; Progress with
# Playback(noanswer) is early media, Ringing is a 180; Busy and Congestion
# refuse the call; Hangup with a cause; the console documents the
# applications; the modules unload and load again. Every check prints "ok N"; a failure prints what the phone
# saw and the daemon's log.

. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

PHONE=$top_srcdir/tests/sip/ivrphone.py
PROMPTS=$top_builddir/sounds/en
D=$TMP/etc
LOG=$D/plexus.log
BASE=$(free_port_block 100) || {
	echo "Bail out! no block of 100 free loopback ports" >&2
	exit 99
}
SIP_PORT=$BASE
if [ ! -e "$PROMPTS/welcome.ulaw" ]; then
	echo "Bail out! the prompts are not built in $PROMPTS" >&2
	exit 99
fi
make_module_dir "$TMP/modules" chan_sip res_registrar pbx_lua codec_ulaw codec_alaw codec_g722 \
	app_basic app_playback app_background app_read app_say
write_plexus_conf "$D" "$TMP/modules" 3
write_modules_conf "$D" "autoload = yes"
cat >"$D/rtp.conf" <<EOF
[general]
rtpstart = $((BASE + 10))
rtpend = $((BASE + 99))
EOF
cat >"$D/sounds.conf" <<EOF
[general]
directories = $TMP/sounds, $top_builddir/sounds
language = en
EOF
cat >"$D/sip.conf" <<EOF
[general]
bind = 127.0.0.1:$SIP_PORT
realm = plexus-ivr

[phone](!)
type = endpoint
context = default
disallow = all
nat = yes

[3001](phone)
secret = s3001
allow = ulaw
[3002](phone)
secret = s3002
allow = g722
EOF
cat >"$D/extensions.lua" <<'EOF'
local function note(text)
	app.log("NOTICE", "IVR-TEST " .. text)
end

extensions = {
	default = {
		["500"] = function() app.Goto("menu", "s", 1) end,
		["501"] = function() app.Goto("menu2", "s", 1) end,
		["640"] = function()
			app.progress()
			app.playback("test-1s", "noanswer")
			note("early " .. channel.PLAYBACKSTATUS:get())
			app.answer()
			app.wait(20)
		end,
		["641"] = function()
			app.ringing()
			app.wait(0.5)
			app.answer(200)
			note("answered")
			app.wait(20)
		end,
		["600"] = function()
			app.playback("test-1s")
			note("play " .. channel.PLAYBACKSTATUS:get())
			app.wait(20)
		end,
		["601"] = function()
			app.playback("no-such-prompt&test-1s")
			note("missing " .. channel.PLAYBACKSTATUS:get())
			app.wait(20)
		end,
		["602"] = function()
			app.playback("corrupt")
			note("corrupt " .. channel.PLAYBACKSTATUS:get())
			app.playback("beep")
			note("after corrupt " .. channel.PLAYBACKSTATUS:get())
			app.wait(20)
		end,
		["603"] = function()
			app.playback("stereo-44k")
			note("stereo " .. channel.PLAYBACKSTATUS:get())
			app.wait(20)
		end,
		["610"] = function()
			app.answer()
			app.read("NUM", "please-enter", 0, "", 1, 3)
			note("read [" .. (channel.NUM:get() or "") .. "] " .. channel.READSTATUS:get())
			app.wait(20)
		end,
		["611"] = function()
			app.read("NUM", "no-such-prompt", 2, "", 1, 3)
			note("read2 [" .. (channel.NUM:get() or "") .. "] " .. channel.READSTATUS:get())
			app.wait(20)
		end,
		["612"] = function()
			app.read("NUM", "beep", 4, "", 2, 1)
			note("read3 [" .. (channel.NUM:get() or "") .. "] " .. channel.READSTATUS:get())
			app.wait(20)
		end,
		["620"] = function()
			app.answer()
			app.saynumber("105")
			note("said")
			app.wait(20)
		end,
		["621"] = function()
			app.answer()
			app.saydigits("42")
			app.sayalpha("a-1")
			note("spelled")
			app.wait(20)
		end,
		["613"] = function()
			app.answer()
			app.read("", "beep")
			note("read4 " .. channel.READSTATUS:get())
			app.read("NUM", "beep", "many")
			note("read5 " .. channel.READSTATUS:get())
			app.wait(20)
		end,
		["622"] = function()
			app.answer()
			app.saynumber("12abc")
			app.saynumber("1000000000")
			note("said nothing")
			app.wait(20)
		end,
		["630"] = function() app.busy() end,
		["631"] = function() app.congestion() end,
		["632"] = function()
			app.answer()
			app.wait(0.2)
			app.hangup(21)
		end,
		["633"] = function()
			app.answer()
			app.hangup("USER_BUSY")
		end,
		["634"] = function()
			app.answer()
			app.hangup("no-such-cause")
		end,
		h = function() note("hangup cause " .. channel.HANGUPCAUSE:get()) end,
	},
	menu = {
		s = function()
			app.answer()
			app.set("DIGIT_TIMEOUT=1")
			app.background("welcome")
			app.waitexten(2)
		end,
		["1"] = function() note("landed sales") app.wait(20) end,
		["21"] = function() note("landed support 21") app.wait(20) end,
		["22"] = function() note("landed support 22") app.wait(20) end,
		t = function() note("timeout") app.wait(20) end,
		i = function() note("invalid " .. channel.INVALID_EXTEN:get()) app.wait(20) end,
	},
	menu2 = {
		s = function()
			app.answer()
			app.background("no-such-menu-prompt")
			note("background " .. channel.BACKGROUNDSTATUS:get())
			app.waitexten(3)
		end,
		["1"] = function() note("landed menu2") app.wait(20) end,
	},
}
EOF

# The test's own sounds: a 1 s tone (8 kHz mono), half a second of 44.1 kHz
# stereo, and a WAV whose header promises what is not there.
mkdir -p "$TMP/sounds/en"
"$PYTHON" - "$TMP/sounds/en" <<'EOF'
import math, struct, sys, wave
d = sys.argv[1]
def tone(path, rate, channels, seconds):
    w = wave.open(path, "wb")
    w.setnchannels(channels); w.setsampwidth(2); w.setframerate(rate)
    n = int(rate * seconds)
    frame = lambda i: struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
    w.writeframes(b"".join(frame(i) * channels for i in range(n)))
    w.close()
tone(d + "/test-1s.wav", 8000, 1, 1.0)
tone(d + "/stereo-44k.wav", 44100, 2, 0.5)
with open(d + "/corrupt.wav", "wb") as f:
    f.write(b"RIFF\x24\x10\x00\x00WAVEfmt \x10\x00\x00\x00garbage-garbage-garbage")
EOF
start_daemon "$D"

# packets NAME: the packets of 20 ms a built prompt makes in PCMU.
packets() {
	local bytes
	bytes=$(stat -c %s "$PROMPTS/$1.ulaw")
	echo $(((bytes + 159) / 160))
}

# call NAME EXTEN STEPS [USER]: one call by ivrphone.py; its lines are kept
# in $TMP/NAME.out. MARK is the log's size before the call.
call() {
	local name=$1 exten=$2 steps=$3 user=${4:-3001} codec=ulaw
	[ "$user" = 3002 ] && codec=g722
	MARK=$(log_mark "$LOG")
	timeout 90 "$PYTHON" "$PHONE" --sip-port "$SIP_PORT" --user "$user" --secret "s$user" \
		--codec "$codec" --exten "$exten" --steps "$steps" >"$TMP/$name.out" 2>&1
	local rc=$?
	if [ $rc != 0 ]; then
		fail "$name" "ivrphone.py exited with $rc:" "$(cat "$TMP/$name.out")"
	fi
	pass "$name: $(grep -c '^ok' "$TMP/$name.out") phone checks"
}

# logged DESCRIPTION ERE: the daemon logged a line matching ERE since MARK.
logged() {
	if ! wait_for_log "$LOG" "$MARK" "$2" 10; then
		fail "$1" "expected a log line matching: $2" "log since the call:" \
			"$(log_since "$LOG" "$MARK" | tail -n 30)"
	fi
	pass "$1"
}

WELCOME=$(packets welcome)

# ---- the auto-attendant
call "a digit during the menu prompt stops it" 500 "wait:0.4 dtmf:1 none:1.0 bye"
logged "... and lands in extension 1" 'IVR-TEST landed sales'
call "a digit after the prompt, in WaitExten" 500 "packets:$WELCOME dtmf:1 wait:0.5 bye"
logged "... lands in extension 1" 'IVR-TEST landed sales'
call "two digits" 500 "wait:0.3 dtmf:21 wait:0.5 bye"
logged "... land in extension 21" 'IVR-TEST landed support 21'
call "nothing pressed" 500 "packets:$WELCOME wait:2.5 bye"
logged "... goes to 't'" 'IVR-TEST timeout'
call "a digit of no extension" 500 "wait:0.3 dtmf:9 wait:0.5 bye"
logged "... goes to 'i' with INVALID_EXTEN" 'IVR-TEST invalid 9'
call "a digit that starts extensions but ends none" 500 "wait:0.3 dtmf:2 wait:1.8 bye"
logged "... goes to 'i' after the digit timeout" 'IVR-TEST invalid 2$'

call "a menu whose prompt is missing still takes digits" 501 "wait:0.5 dtmf:1 wait:0.5 bye"
logged "... BACKGROUNDSTATUS=FAILED" 'IVR-TEST background FAILED'
logged "... WaitExten lands in extension 1" 'IVR-TEST landed menu2'

# ---- Playback
call "Playback of a 1 s WAV to PCMU" 600 "packets:50 bye"
logged "... PLAYBACKSTATUS=SUCCESS" 'IVR-TEST play SUCCESS'
call "Playback of a 1 s WAV to G.722" 600 "packets:50 bye" 3002
logged "... PLAYBACKSTATUS=SUCCESS" 'IVR-TEST play SUCCESS'
call "Playback of a 44.1 kHz stereo WAV" 603 "packets:25 bye"
logged "... PLAYBACKSTATUS=SUCCESS" 'IVR-TEST stereo SUCCESS'
call "Playback of a missing file, then a good one" 601 "packets:50 bye"
logged "... PLAYBACKSTATUS=FAILED" 'IVR-TEST missing FAILED'
logged "... a warning names the missing file" 'WARNING.*Playback failed.*no-such-prompt'
call "Playback of a corrupt WAV, then the call goes on" 602 "packets:$(packets beep) bye"
logged "... PLAYBACKSTATUS=FAILED" 'IVR-TEST corrupt FAILED'
logged "... a warning names the corrupt file" 'WARNING.*corrupt\.wav'
logged "... the next Playback succeeds" 'IVR-TEST after corrupt SUCCESS'

# ---- Read
call "Read: digits ended by #" 610 "wait:0.3 dtmf:42# wait:0.5 bye"
logged "... stores them, READSTATUS=OK" 'IVR-TEST read \[42\] OK'
call "Read with a prompt that does not exist" 611 "wait:0.3 dtmf:73 wait:0.5 bye"
logged "... warns and still reads (maxdigits 2)" 'IVR-TEST read2 \[73\] OK'
logged "... the warning names the prompt" 'WARNING.*Read.*no-such-prompt'
call "Read: nothing entered, two attempts" 612 "atleast:$(packets beep) atleast:$(packets beep) wait:0.5 bye"
logged "... READSTATUS=TIMEOUT" 'IVR-TEST read3 \[\] TIMEOUT'

call "Read with bad arguments" 613 "none:0.6 bye"
logged "... no variable: READSTATUS=ERROR" 'IVR-TEST read4 ERROR'
logged "... maxdigits not a number: READSTATUS=ERROR" 'IVR-TEST read5 ERROR'

# ---- Say
call "SayNumber(105): one, hundred, five" 620 \
	"packets:$(($(packets digits/1) + $(packets digits/hundred) + $(packets digits/5))):3 bye"
logged "... and the dialplan goes on" 'IVR-TEST said'
call "SayDigits(42), SayAlpha(a-1)" 621 \
	"packets:$(($(packets digits/4) + $(packets digits/2) + $(packets letters/a) + $(packets letters/dash) + $(packets digits/1))):5 bye"
logged "... and the dialplan goes on" 'IVR-TEST spelled'

call "SayNumber of what is not a number in range" 622 "none:0.6 bye"
logged "... says nothing, with a warning" "WARNING.*SayNumber: '12abc' is not a whole number"
logged "... and goes on" 'IVR-TEST said nothing'

# ---- call state
call "Progress, then Playback(noanswer): early media" 640 "provisional:183 heard:50 bye"
logged "... PLAYBACKSTATUS=SUCCESS before the answer" 'IVR-TEST early SUCCESS'
call "Ringing, then Answer" 641 "provisional:180 wait:0.5 bye"
logged "... the dialplan goes on after Answer's delay" 'IVR-TEST answered'

call "Busy refuses the call" 630 "final:486"
call "Congestion refuses the call" 631 "final:503"
call "Hangup(21)" 632 "byed:5"
logged "... with cause 21" 'IVR-TEST hangup cause 21'
call "Hangup(USER_BUSY)" 633 "byed:5"
logged "... with cause 17" 'IVR-TEST hangup cause 17'
call "Hangup with a cause that does not exist" 634 "byed:5"
logged "... warns" "WARNING.*Hangup: 'no-such-cause' is not a Q.850 cause"
logged "... and hangs up with normal clearing" 'IVR-TEST hangup cause 16'

# ---- documentation
check_cmd "core show applications lists them" 'core show applications' 0 '^ +Background: '
for app in Answer Hangup Wait Progress Ringing Busy Congestion Playback Background WaitExten \
	Read SayDigits SayNumber SayAlpha; do
	px "$SOCK" "core show application $app"
	expect_status "core show application $app" 0
	expect_output "core show application $app" "Info about application '$app'"
done
pass "core show application documents all 14"
check_cmd "Playback's documentation names PLAYBACKSTATUS" 'core show application Playback' 0 \
	'PLAYBACKSTATUS'
check_cmd "Read's documentation names READSTATUS" 'core show application Read' 0 'READSTATUS'

# ---- the modules unload and load again
for m in app_say app_read app_background app_playback app_basic; do
	px "$SOCK" "module unload $m"
	expect_status "module unload $m" 0
	px "$SOCK" "module load $m"
	expect_status "module load $m" 0
done
pass "the IVR modules unload and load again"
call "Playback after the modules were reloaded" 600 "packets:50 bye"
finish
