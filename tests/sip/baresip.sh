#!/bin/bash
# SIP integration test with real softphones: a real plexusd (chan_sip,
# res_registrar, pbx_lua, app_dial) on free loopback ports with its own
# configuration (tests/sip/baresip/sip.conf, extensions.lua), two baresip
# phones and a SIPp phone.
#  1. baresip 1001 registers with its password: 'sip show endpoint 1001'
#     lists one contact with baresip's user agent; baresip says OK too.
#  2. SIPp registers as 1002 (digest) and answers calls echoing RTP
#     (-rtp_echo); baresip 1001 dials 1002 through ctrl_tcp, the dialplan
#     rings SIP/1002, SIPp answers; while the call is up plexusd has two
#     channels, Up and bridged, each with RTP received and sent (baresip ->
#     plexusd -> SIPp -> plexusd -> baresip); 1001 hangs up, SIPp gets the
#     BYE, no channel is left, and what 1001 recorded is its own 440 Hz tone
#     come back.
#  3. baresip 1003 (answermode=auto) registers; 1001 dials 1003, which
#     answers by itself; both channels relay RTP both ways; 1001 hangs up,
#     both phones see the end, no channel is left; 1003 recorded 1001's
#     440 Hz tone and 1001 recorded 1003's 1000 Hz tone.
#  4. The phones unregister (ctrl_tcp uadel: REGISTER with Expires: 0,
#     challenged and answered): no contact is left; they and plexusd stop.
# The phones play tones from WAV files (aufile) and record what they hear
# (sndfile); no sound card is used. Every process is bounded by timeout and
# stopped by pid; every wait has a deadline. Each check prints "ok N - ...";
# a failure prints what was expected and what came back, the phones' and
# SIPp's logs and the daemon's log with its SIP messages. Needs baresip
# (Debian: baresip-core) and sipp (Debian: sip-tester); a hard error (99)
# without them.

. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/sip/baresip/barelib.sh"

bare_requirements
for m in chan_sip res_registrar pbx_lua app_dial; do
	if [ ! -e "$BUILT_MODULE_DIR/$m.so" ]; then
		echo "Bail out! module $m is not built ($BUILT_MODULE_DIR/$m.so)"
		exit 99
	fi
done

SECRET_1001=bare-secret-1001
SECRET_1002=bare-secret-1002
SECRET_1003=bare-secret-1003
BARESIP_UA='baresip v?[0-9][^ ]*'

# ---------------------------------------------------------------- set-up

setup() {
	D=$TMP/etc
	bare_ports
	make_module_dir "$TMP/modules" chan_sip res_registrar pbx_lua app_dial codec_ulaw codec_alaw
	write_plexus_conf "$D" "$TMP/modules" 3
	bare_debug_conf "$D"
	write_modules_conf "$D" "autoload = yes" "require = chan_sip" "require = res_registrar" \
		"require = pbx_lua" "require = app_dial"
	sed "s/@SIP_PORT@/$SIP_PORT/" "$BARE_DIR/sip.conf" >"$D/sip.conf"
	cp "$BARE_DIR/extensions.lua" "$D/extensions.lua"
	write_rtp_conf "$D" "$RTP_START" "$RTP_END"
	# The phones' voices: ten seconds of 440 Hz (1001) and 1000 Hz (1003).
	"$PYTHON" "$WAVTOOL" tone "$TMP/tone-440.wav" 440 10 &&
		"$PYTHON" "$WAVTOOL" tone "$TMP/tone-1000.wav" 1000 10 || {
		echo "Bail out! cannot write the tones" >&2
		exit 99
	}
	start_daemon "$D"
	# The console answers before the modules are loaded: wait for startup
	# to complete.
	until_deadline 10
	while before_deadline && ! grep -q 'Plexus ready' "$D/plexus.log" 2>/dev/null; do
		sleep 0.05
	done
	if ! grep -q 'Plexus ready' "$D/plexus.log" 2>/dev/null; then
		fail "plexusd completes its startup" "expected within 10 s: 'Plexus ready' in its log" "got: not there"
	fi
	check_cmd "plexusd listens for SIP on 127.0.0.1:$SIP_PORT with 3 endpoints" \
		'sip show endpoints' 0 '^3 endpoints$'
	# The SIP messages go to the log (at the debug level: bare_debug_conf),
	# for the failure reports.
	check_cmd "sip set debug on" 'sip set debug on' 0 'SIP debugging enabled'
}

# ---------------------------------------------------------------- 1. registration

test_register_1001() {
	phone_start 1001 "$SECRET_1001" "$PORT_1001" "$CTRL_1001" "$RTP_1001" "$TMP/tone-440.wav"
	expect_registered "baresip 1001 registers with its password: 'sip show endpoint 1001' lists 1 contact with baresip's user agent" \
		1001 "$PORT_1001" "$BARESIP_UA"
	# The registration may be over before ctrl_tcp is up: poll the state.
	until_deadline 5
	while before_deadline; do
		phone_cmd 1001 reginfo
		[ "$CTRL_RC" = 0 ] && printf '%s\n' "$CTRL_OUT" | grep -q "sip:1001@127.0.0.1:$SIP_PORT .*OK" && break
		sleep 0.1
	done
	if [ "$CTRL_RC" != 0 ] || ! printf '%s\n' "$CTRL_OUT" | grep -q "sip:1001@127.0.0.1:$SIP_PORT .*OK"; then
		bare_fail "baresip 1001 says it is registered (ctrl_tcp reginfo)" \
			"expected: a line 'sip:1001@127.0.0.1:$SIP_PORT ... OK'" \
			"got (ctrl.py status $CTRL_RC):" "$CTRL_OUT"
	fi
	pass "baresip 1001 says it is registered (ctrl_tcp reginfo: $(printf '%s\n' "$CTRL_OUT" | grep -o 'OK.*' | sed 's/\x1b\[[0-9;]*m//g' | tr -s ' '))"
}

# ---------------------------------------------------------------- 2. baresip calls SIPp

test_call_sipp() {
	sipp_start reg_1002 "$PORT_1002" "$SIPP_CP" register.xml -s 1002 -au 1002 -ap "$SECRET_1002"
	sipp_wait reg_1002 20
	if [ "$SIPP_RC" != 0 ]; then
		bare_fail "SIPp registers as 1002 (401, then 200)" "expected: SIPp status 0" "got: $SIPP_RC"
	fi
	expect_registered "SIPp registers as 1002 with digest authentication: 1 contact" \
		1002 "$PORT_1002" plexus-test-sipp-echo

	sipp_start uas_1002 "$PORT_1002" "$SIPP_CP2" uas_echo.xml -s 1002 -rtp_echo
	if ! wait_udp_bound "$PORT_1002" 5 || ! wait_udp_bound "$SIPP_MP" 5; then
		bare_fail "SIPp 1002 waits for calls" "expected: SIPp listening on 127.0.0.1:$PORT_1002 and :$SIPP_MP within 5 s" \
			"got: not listening"
	fi
	local mark=$TMP/mark-call-1002
	touch "$mark"
	sleep 0.01
	phone_cmd 1001 dial "sip:1002@127.0.0.1:$SIP_PORT"
	if [ "$CTRL_RC" != 0 ]; then
		bare_fail "baresip 1001 dials 1002 (ctrl_tcp dial)" "expected: an ok response" \
			"got (ctrl.py status $CTRL_RC):" "$CTRL_OUT"
	fi
	if ! wait_phone_log 1001 "Call established: sip:1002@127\.0\.0\.1:$SIP_PORT" 8; then
		bare_fail "1001 -> 1002: SIPp answers, baresip 1001 says 'Call established'" \
			"expected within 8 s: 'Call established: sip:1002@127.0.0.1:$SIP_PORT' in its output" "got: not there"
	fi
	pass "1001 dials 1002 (ctrl_tcp dial, dialplan _1XXX -> Dial(SIP/1002)), SIPp answers: baresip 1001 says 'Call established'"
	check_media "1001 -> 1002: two channels Up and bridged, RTP relayed both ways (baresip -> plexusd -> SIPp echo -> plexusd -> baresip)"

	phone_cmd 1001 hangup
	if [ "$CTRL_RC" != 0 ]; then
		bare_fail "baresip 1001 hangs up (ctrl_tcp hangup)" "expected: an ok response" \
			"got (ctrl.py status $CTRL_RC):" "$CTRL_OUT"
	fi
	sipp_wait uas_1002 10
	if [ "$SIPP_RC" != 0 ]; then
		bare_fail "1001 hangs up: SIPp 1002 gets the BYE and answers 200 (its scenario completes)" \
			"expected: SIPp status 0" "got: $SIPP_RC"
	fi
	pass "1001 hangs up (ctrl_tcp hangup): SIPp 1002 gets the BYE and answers 200 (its scenario completes)"
	expect_idle "after the call to 1002 plexusd has 0 channels and 0 calls"
	check_heard "1001 heard its 440 Hz tone echoed by SIPp through plexusd (sndfile recording)" 1001 440 "$mark"
}

# ---------------------------------------------------------------- 3. baresip calls baresip

test_call_baresip() {
	phone_start 1003 "$SECRET_1003" "$PORT_1003" "$CTRL_1003" "$RTP_1003" "$TMP/tone-1000.wav" \
		";answermode=auto"
	expect_registered "baresip 1003 (answermode=auto) registers: 1 contact with baresip's user agent" \
		1003 "$PORT_1003" "$BARESIP_UA"
	local mark=$TMP/mark-call-1003
	touch "$mark"
	sleep 0.01
	phone_cmd 1001 dial "sip:1003@127.0.0.1:$SIP_PORT"
	if [ "$CTRL_RC" != 0 ]; then
		bare_fail "baresip 1001 dials 1003 (ctrl_tcp dial)" "expected: an ok response" \
			"got (ctrl.py status $CTRL_RC):" "$CTRL_OUT"
	fi
	if ! wait_phone_log 1003 "Call established: sip:1001@" 8; then
		bare_fail "1001 -> 1003: baresip 1003 answers by itself" \
			"expected within 8 s: 'Call established: sip:1001@...' in 1003's output" "got: not there"
	fi
	if ! wait_phone_log 1001 "Call established: sip:1003@127\.0\.0\.1:$SIP_PORT" 8; then
		bare_fail "1001 -> 1003: baresip 1001 says 'Call established'" \
			"expected within 8 s: 'Call established: sip:1003@127.0.0.1:$SIP_PORT' in 1001's output" "got: not there"
	fi
	pass "1001 dials 1003, baresip 1003 answers by itself (answermode=auto): both phones say 'Call established'"
	check_media "1001 -> 1003: two channels Up and bridged, RTP relayed both ways between the two baresip phones"

	phone_cmd 1001 hangup
	if [ "$CTRL_RC" != 0 ]; then
		bare_fail "baresip 1001 hangs up (ctrl_tcp hangup)" "expected: an ok response" \
			"got (ctrl.py status $CTRL_RC):" "$CTRL_OUT"
	fi
	if ! wait_phone_log 1003 "Call with sip:1001@[^ ]* terminated" 5; then
		bare_fail "1001 hangs up: baresip 1003 sees the call end" \
			"expected within 5 s: 'Call with sip:1001@... terminated' in 1003's output" "got: not there"
	fi
	pass "1001 hangs up (ctrl_tcp hangup): baresip 1003 sees the call end"
	expect_idle "after the call to 1003 plexusd has 0 channels and 0 calls"
	check_heard "1003 heard 1001's 440 Hz tone through plexusd (sndfile recording)" 1003 440 "$mark"
	check_heard "1001 heard 1003's 1000 Hz tone through plexusd (sndfile recording)" 1001 1000 "$mark"
}

# ---------------------------------------------------------------- 4. the end

test_stop() {
	local a
	for a in 1003 1001; do
		# Unregister through ctrl_tcp (uadel) while baresip keeps running:
		# on SIGTERM baresip 1.0.0 sends the un-REGISTER but may exit before
		# answering its 401 challenge.
		phone_cmd "$a" uadel "sip:$a@127.0.0.1:$SIP_PORT"
		if [ "$CTRL_RC" != 0 ]; then
			bare_fail "baresip $a deletes its account (ctrl_tcp uadel)" "expected: an ok response" \
				"got (ctrl.py status $CTRL_RC):" "$CTRL_OUT"
		fi
		until_deadline 5
		while before_deadline; do
			px "$SOCK" "sip show endpoint $a"
			printf '%s\n' "$PX_OUT" | grep -Eq '^ *Contacts: +0$' && break
			sleep 0.1
		done
		if ! printf '%s\n' "$PX_OUT" | grep -Eq '^ *Contacts: +0$'; then
			bare_fail "baresip $a unregisters (ctrl_tcp uadel): 'sip show endpoint $a' lists 0 contacts" \
				"expected within 5 s: 'Contacts:      0'" "got (exit status $PX_RC):" "$PX_OUT"
		fi
		pass "baresip $a unregisters (ctrl_tcp uadel; Expires: 0 with digest): 'sip show endpoint $a' lists 0 contacts"
		if ! phone_stop "$a" 10; then
			bare_fail "baresip $a stops on SIGTERM" "expected: it ends within 10 s" "got: still running"
		fi
	done
	pass "both baresip phones stop on SIGTERM"
	if ! stop_daemon "$DAEMON_PID" 20 || [ "$EXIT_STATUS" != 0 ]; then
		fail "plexusd stops on SIGTERM with status 0" "got: status ${EXIT_STATUS:-none (still running)}"
	fi
	pass "plexusd stops on SIGTERM with status 0"
}

setup
test_register_1001
test_call_sipp
test_call_baresip
test_stop
finish
