#!/bin/bash
# SIP integration test: a real plexusd (chan_sip, res_registrar, pbx_lua,
# app_dial) on free loopback ports with its own configuration
# (tests/data/sip), driven by SIPp scenarios (tests/sip/*.xml) and raw
# datagrams (sipraw.py). Registration: a REGISTER without credentials gets
# a Digest challenge (realm, qop="auth", nonce); a wrong password and an
# unknown user get the same 403; the right password gets 200 with the
# Contact and its expires; a refresh (same Call-ID, next CSeq, nonce
# reused) gets 200; Expires: 0 removes the binding; Expires: 10 gets 423
# with Min-Expires: 60; bindings survive a restart of plexusd. Calls from
# 1001 (answering the 401 challenge): to a registered SIPp phone, with
# 100/180/200/ACK, RTP relayed both ways (counters of both channels) and
# BYE from either side; CANCEL while ringing (487 to the caller, CANCEL to
# the phone); a busy phone (486, DIALSTATUS BUSY); a phone that rings
# until Dial's 5 s are over (CANCEL to it, 480, NOANSWER); one not registered
# (480, CHANUNAVAIL); an unknown number (404); a phone registered twice
# rung in parallel (one answers, the other gets CANCEL); hold and resume by
# re-INVITE (the caller's a=sendonly gets a=recvonly and reaches the called
# phone as a re-INVITE with a=sendonly; a=sendrecv undoes both; no error or
# warning logged); early media (the phone's 183 with SDP reaches the caller
# as 183 with SDP, and its RTP is relayed to the caller before the 200,
# seen in the caller's channel counters). Bad input: garbage
# datagrams, a bad CSeq, a Via without branch, no Call-ID, a lying
# Content-Length, an INVITE without credentials (401), an offer of G.729
# only (488); afterwards no channel is left and REGISTER still works; an
# out-of-dialog REFER and a MESSAGE from a stranger are refused and make
# plexusd send nothing. At the end plexusd stops with status 0.
# Every check prints "ok N - ..."; a failure prints what was sent and
# received. Needs sipp (Debian: sip-tester); without it the test fails (99).

. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/sip/siplib.sh"

SECRET_1001=test-secret-1001
SECRET_1002=test-secret-1002
SECRET_1003=test-secret-1003
SECRET_1005=test-secret-1005

# ---------------------------------------------------------------- set-up

# register NAME PORT USER PASSWORD EXPIRES [SCENARIO]: a REGISTER run.
register() {
	sipp_run "$1" "$2" "${6:-register.xml}" -s "$3" -au "$3" -ap "$4" -key expires "$5"
	SIPP_RC_OF[$1]=$SIPP_RC
}

# ---------------------------------------------------------------- registration

test_register() {
	register reg_1001 "$PORT_1001" 1001 "$SECRET_1001" 3600
	if [ "$(received_statuses reg_1001 | head -n 1)" != 401 ]; then
		sipp_fail "REGISTER without credentials is challenged" "401 first" reg_1001
	fi
	local re
	for re in '^WWW-Authenticate: Digest ' 'realm="plexus-test"' 'qop="auth"' \
		'nonce="[^"]+"' 'algorithm=MD5'; do
		expect_header "REGISTER without credentials: 401 with WWW-Authenticate ($re)" \
			reg_1001 '^SIP/2.0 401' "$re"
	done
	pass "REGISTER without credentials: 401, WWW-Authenticate: Digest realm=\"plexus-test\", qop=\"auth\", nonce, MD5"
	if [ "$SIPP_RC" != 0 ]; then
		sipp_fail "REGISTER 1001 with the right password: 200" "SIPp status 0" reg_1001
	fi
	expect_header "REGISTER 1001 with the right password: 200 with the Contact and expires=3600" \
		reg_1001 '^SIP/2.0 200' "^Contact: <sip:1001@127\.0\.0\.1:$PORT_1001>;expires=(3599|3600)$"
	pass "REGISTER 1001 with the right password: 200, Contact: <sip:1001@127.0.0.1:$PORT_1001>;expires=3600"
	expect_contacts "'sip show endpoint 1001' lists the binding" 1001 1 \
		"sip:1001@127\.0\.0\.1:$PORT_1001 via udp:127\.0\.0\.1:$PORT_1001, expires in (3600|35[0-9][0-9])s"
}

# own_headers NAME START_ERE: the header lines of a response received by
# run NAME that do not echo the request (Via, From, To, Call-ID, CSeq),
# sorted, with a nonce's value blanked out.
own_headers() {
	sipp_message "$1" "$2" | sed -n '2,/^$/p' | grep -v '^$' |
		grep -Ev '^(Via|From|To|Call-ID|CSeq|f|t|i|v):' | sed 's/nonce="[^"]*"/nonce="..."/' | sort
}

test_register_forbidden() {
	register reg_wrong - 1001 wrong-password 3600 register_fail.xml
	if [ "$SIPP_RC" != 0 ] || [ "$(final_status reg_wrong)" != 403 ]; then
		sipp_fail "REGISTER 1001 with a wrong password: 403" "401, then 403" reg_wrong
	fi
	pass "REGISTER 1001 with a wrong password: 401, then 403"
	register reg_unknown - 9999 whatever 3600 register_fail.xml
	if [ "$SIPP_RC" != 0 ] || [ "$(final_status reg_unknown)" != 403 ]; then
		sipp_fail "REGISTER of an unknown user (9999): 403" "401, then 403" reg_unknown
	fi
	pass "REGISTER of an unknown user (9999): 401, then 403"
	local a b status_a status_b
	status_a=$(sipp_message reg_wrong '^SIP/2.0 403' | head -n 1)
	status_b=$(sipp_message reg_unknown '^SIP/2.0 403' | head -n 1)
	a=$(own_headers reg_wrong '^SIP/2.0 403')
	b=$(own_headers reg_unknown '^SIP/2.0 403')
	if [ "$status_a" != "$status_b" ] || [ "$a" != "$b" ]; then
		sipp_fail "a wrong password and an unknown user get the same 403" \
			"the same status line and headers; got '$status_a' with [$a] and '$status_b' with [$b]" \
			reg_wrong reg_unknown
	fi
	if sipp_message reg_wrong '^SIP/2.0 403' | grep -Ev '^(Via|From|To|Call-ID|CSeq):' | grep -q 1001 ||
		sipp_message reg_unknown '^SIP/2.0 403' | grep -Ev '^(Via|From|To|Call-ID|CSeq):' | grep -q 9999; then
		sipp_fail "the 403 does not name the user" "no user name outside Via/From/To/Call-ID/CSeq" \
			reg_wrong reg_unknown
	fi
	if [ "$(own_headers reg_wrong '^SIP/2.0 401')" != "$(own_headers reg_unknown '^SIP/2.0 401')" ]; then
		sipp_fail "known and unknown users get the same challenge" "the same 401 headers" \
			reg_wrong reg_unknown
	fi
	pass "wrong password and unknown user: the same '$status_a' (same headers: $(printf '%s\n' "$a" | sed 's/:.*//' | tr '\n' ' ')), naming no user; the same 401 before"
	expect_contacts "the refused REGISTERs left 1001's binding alone" 1001 1 \
		"sip:1001@127\.0\.0\.1:$PORT_1001 via"
}

test_register_refresh() {
	register reg_refresh "$PORT_1001" 1001 "$SECRET_1001" 1800 register_refresh.xml
	if [ "$SIPP_RC" != 0 ] || [ "$(received_statuses reg_refresh | tr '\n' ' ')" != "401 200 200 " ]; then
		sipp_fail "a refresh (same Call-ID, CSeq 3, the nonce reused with nc=2) gets 200" \
			"401, 200, 200" reg_refresh
	fi
	expect_header "the refresh's 200 has the Contact with expires=1800" reg_refresh \
		'^SIP/2.0 200' "^Contact: <sip:1001@127\.0\.0\.1:$PORT_1001>;expires=(1799|1800)$"
	pass "a refresh (same Call-ID, CSeq 3, the nonce reused with nc=2): 200, expires=1800"
	expect_contacts "after the refresh 1001 still has one binding, now for 1800 s" 1001 1 \
		"sip:1001@127\.0\.0\.1:$PORT_1001 via .*expires in 1(7[0-9][0-9]|800)s"
}

test_register_remove() {
	register reg_remove "$PORT_1001" 1001 "$SECRET_1001" 0
	if [ "$SIPP_RC" != 0 ]; then
		sipp_fail "REGISTER with Expires: 0 gets 200" "401, then 200" reg_remove
	fi
	if sipp_message reg_remove '^SIP/2.0 200' | grep -Eq "^Contact: .*:$PORT_1001>;expires=[1-9]"; then
		sipp_fail "the 200 to Expires: 0 lists no live binding" "no Contact with expires > 0" reg_remove
	fi
	pass "REGISTER 1001 with Expires: 0: 200 without the binding"
	expect_contacts "Expires: 0 removed the binding ('Contacts:      0')" 1001 0
}

test_register_too_brief() {
	register reg_brief "$PORT_1001" 1001 "$SECRET_1001" 10 register_fail.xml
	if [ "$SIPP_RC" != 0 ] || [ "$(final_status reg_brief)" != 423 ]; then
		sipp_fail "REGISTER with Expires: 10 (min_expiry 60): 423" "401, then 423" reg_brief
	fi
	expect_header "the 423 carries Min-Expires: 60" reg_brief '^SIP/2.0 423' '^Min-Expires: 60$'
	pass "REGISTER with Expires: 10 (min_expiry 60): 423 Interval Too Brief, Min-Expires: 60"
	expect_contacts "the 423 created no binding" 1001 0
}

test_register_survives_restart() {
	register reg_again "$PORT_1001" 1001 "$SECRET_1001" 3600
	if [ "$SIPP_RC" != 0 ]; then
		sipp_fail "REGISTER 1001 again: 200" "401, then 200" reg_again
	fi
	expect_contacts "1001 registered again" 1001 1 "sip:1001@127\.0\.0\.1:$PORT_1001 via"
	if ! stop_daemon "$DAEMON_PID" 20 || [ "$EXIT_STATUS" != 0 ]; then
		fail "plexusd stops on SIGTERM with status 0" "got: status ${EXIT_STATUS:-none (still running)}"
	fi
	pass "plexusd stops on SIGTERM with status 0"
	start_daemon "$D"
	expect_contacts "after a restart 'sip show endpoint 1001' still lists the binding" 1001 1 \
		"sip:1001@127\.0\.0\.1:$PORT_1001 via udp:127\.0\.0\.1:$PORT_1001, expires in [0-9]+s"
}

# ---------------------------------------------------------------- calls

# call_args NUMBER: the arguments of a call from 1001 to NUMBER.
call_args() {
	CALL_ARGS=(-s "$1" -key caller 1001 -au 1001 -ap "$SECRET_1001")
}

test_phones_register() {
	register reg_1002 "$PORT_1002" 1002 "$SECRET_1002" 3600
	register reg_1003a "$PORT_1003A" 1003 "$SECRET_1003" 3600
	register reg_1003b "$PORT_1003B" 1003 "$SECRET_1003" 3600
	local n
	for n in reg_1002 reg_1003a reg_1003b; do
		if [ "${SIPP_RC_OF[$n]}" != 0 ]; then
			sipp_fail "the SIPp phones register" "401, then 200" "$n"
		fi
	done
	expect_contacts "1002 is registered at the SIPp phone on port $PORT_1002" 1002 1 \
		"sip:1002@127\.0\.0\.1:$PORT_1002 via"
	expect_contacts "1003 is registered twice (max_contacts = 2)" 1003 2 \
		"sip:1003@127\.0\.0\.1:$PORT_1003B via"
	expect_output "1003 is registered twice (max_contacts = 2)" "sip:1003@127\.0\.0\.1:$PORT_1003A via"
}

# start_phone NAME PORT SCENARIO ARGS...: a SIPp UAS, listening before we go on.
start_phone() {
	sipp_start "$@"
	if ! wait_udp_bound "$2" 5; then
		SIPP_RC_OF[$1]=?
		sipp_fail "SIPp phone $1 listens on port $2" "a socket on 127.0.0.1:$2 within 5 s" "$1"
	fi
}

test_call_caller_hangs_up() {
	start_phone uas_answer "$PORT_1002" uas_answer.xml -s 1002 -d 200
	call_args 1002
	sipp_start call_a - uac_call.xml "${CALL_ARGS[@]}" -d 2000
	check_media "call 1001 -> 1002 is up: RTP flows both ways through plexusd" 2
	expect_sipp_ok "call 1001 -> 1002: 401/ACK, INVITE with credentials, 100, 180, 200, ACK; BYE from the caller, 200" \
		call_a uas_answer
	expect_statuses "the caller got 401 (no 100 before it), then 180, 200 and the 200 to its BYE" call_a \
		'^401 (100 )?180 200 200$'
	pass "call 1001 -> 1002: 100/180/200/ACK, the phone got INVITE and ACK, the caller's BYE reached it and both got 200"
	expect_idle "after the caller's BYE no channel is left"
}

# A callee that takes a second to ring: the caller gets 100 Trying from
# plexusd meanwhile (RFC 3261 17.2.1: within 200 ms), well before the
# 500 ms after which it would send its INVITE again.
test_call_late_ring() {
	start_phone uas_late "$PORT_1002" uas_ring_late.xml -s 1002 -d 100
	call_args 1002
	sipp_start call_late - uac_call.xml "${CALL_ARGS[@]}" -d 500
	expect_sipp_ok "call 1001 -> 1002 that rings a second late: answered, BYE" call_late uas_late
	expect_statuses "the caller got 401, then 100 while the callee was silent, 180, 200 and the 200 to its BYE" \
		call_late '^401 100 180 200 200$'
	pass "a call that rings a second late: the caller got 100 Trying meanwhile, then 180 and 200"
	expect_idle "after the late-ringing call no channel is left"
}

test_call_callee_hangs_up() {
	start_phone uas_bye "$PORT_1002" uas_answer_bye.xml -s 1002 -d 2000
	call_args 1002
	sipp_start call_b - uac_call_wait_bye.xml "${CALL_ARGS[@]}"
	check_media "call 1001 -> 1002 (second) is up: RTP flows both ways" 2
	expect_sipp_ok "call 1001 -> 1002, BYE from the called phone reaches the caller; both get 200" \
		call_b uas_bye
	expect_statuses "the caller got 401 (no 100 before it), then 180 and 200" call_b '^401 (100 )?180 200$'
	pass "call 1001 -> 1002: 100/180/200/ACK; the called phone's BYE got 200 and the caller got BYE"
	expect_idle "after the called phone's BYE no channel is left"
}

test_call_cancel() {
	start_phone uas_cancel "$PORT_1002" uas_ring_cancel.xml -s 1002
	call_args 1002
	sipp_start call_cancel - uac_cancel.xml "${CALL_ARGS[@]}" -d 500
	expect_sipp_ok "the caller CANCELs while 1002 rings: caller gets 200 and 487, the phone gets CANCEL" \
		call_cancel uas_cancel
	expect_statuses "the caller got 401 (no 100 before it), then 180, 200 (CANCEL) and 487" call_cancel \
		'^401 (100 )?180 200 487$'
	pass "the caller CANCELs while 1002 rings: the caller got 200 and 487, the phone got CANCEL (200, 487, ACK)"
	expect_idle "after the CANCEL no channel is left"
}

test_call_busy() {
	dialstatus_mark
	start_phone uas_busy "$PORT_1002" uas_busy.xml -s 1002
	call_args 1002
	sipp_start call_busy - uac_fail.xml "${CALL_ARGS[@]}" -key pt 0 -key rtpmap "0 PCMU/8000"
	expect_sipp_ok "1002 answers 486 Busy Here" call_busy uas_busy
	expect_final "1002 is busy: the caller gets 486" call_busy 486
	expect_statuses "the caller got 401 (no 100 before it), then (180,) 486" call_busy '^401 (100 )?(180 )?486$'
	pass "1002 answers 486: the caller gets 486 Busy Here"
	expect_idle "after the busy call no channel is left"
	expect_dialstatus "Dial ended with DIALSTATUS BUSY" "1002 BUSY"
}

# A callee that answers with a codec it was not offered (G.722, which
# plexusd knows; AMR-WB, which it does not) gets BYE after its 200 is
# ACKed, a warning names the endpoint and the codecs, and Dial fails with
# cause 58 (bearer capability not available): DIALSTATUS CHANUNAVAIL, and
# the caller gets 488.
test_call_answer_codec() {
	local spec pt rtpmap mark
	for spec in "9|9 G722/8000|G722/8000 \\(9\\)" "98|98 AMR-WB/16000|AMR-WB/16000 \\(98\\)"; do
		IFS='|' read -r pt rtpmap want <<<"$spec"
		dialstatus_mark
		mark=$(log_mark "$DAEMON_DIR/plexus.log")
		start_phone uas_codec "$PORT_1002" uas_answer_codec.xml -s 1002 -key pt "$pt" \
			-key rtpmap "$rtpmap"
		call_args 1002
		sipp_start call_codec - uac_fail.xml "${CALL_ARGS[@]}" -key pt 0 -key rtpmap "0 PCMU/8000"
		expect_sipp_ok "1002 answers ${rtpmap#* }, not offered: its 200 is ACKed and it gets BYE" \
			call_codec uas_codec
		expect_final "1002 answered ${rtpmap#* }: the caller gets 488" call_codec 488
		pass "1002 answered ${rtpmap#* }, not offered: ACK and BYE to 1002, 488 to the caller"
		if ! wait_for_log "$DAEMON_DIR/plexus.log" "$mark" \
			"WARNING.*SIP/1002-[0-9a-f]+: endpoint 1002 answered with $want, which is none of the codecs offered \\(PCMU/8000, PCMA/8000\\): hanging up" 5; then
			fail "a warning names the endpoint and the codecs" "that warning" \
				"got: $(log_since "$DAEMON_DIR/plexus.log" "$mark")"
		fi
		pass "a warning names endpoint 1002, its answer ${rtpmap#* } and the codecs offered"
		expect_dialstatus "Dial ended with DIALSTATUS CHANUNAVAIL" "1002 CHANUNAVAIL"
		expect_idle "after the unusable answer no channel is left"
	done
}

test_call_no_answer() {
	dialstatus_mark
	start_phone uas_noanswer "$PORT_1002" uas_ring_cancel.xml -s 1002
	call_args 1002
	sipp_start call_noanswer - uac_fail.xml "${CALL_ARGS[@]}" -key pt 0 -key rtpmap "0 PCMU/8000"
	expect_sipp_ok "1002 rings and nobody answers: Dial gives up after 5 s" call_noanswer uas_noanswer
	expect_final "1002 does not answer: the caller gets 480" call_noanswer 480
	pass "1002 rings for Dial's 5 s: the phone gets CANCEL, the caller 480"
	expect_idle "after the unanswered call no channel is left"
	expect_dialstatus "Dial ended with DIALSTATUS NOANSWER" "1002 NOANSWER"
}

test_call_not_registered() {
	dialstatus_mark
	call_args 1004
	sipp_start call_absent - uac_fail.xml "${CALL_ARGS[@]}" -key pt 0 -key rtpmap "0 PCMU/8000"
	expect_sipp_ok "a call to 1004 (not registered) fails" call_absent
	expect_final "a call to 1004 (not registered): 480" call_absent 480
	pass "a call to 1004, which is not registered: 480"
	expect_dialstatus "Dial ended with DIALSTATUS CHANUNAVAIL" "1004 CHANUNAVAIL"
}

test_call_unknown_number() {
	call_args 3000
	sipp_start call_unknown - uac_fail.xml "${CALL_ARGS[@]}" -key pt 0 -key rtpmap "0 PCMU/8000"
	expect_sipp_ok "a call to 3000 (not in the dialplan) fails" call_unknown
	expect_final "a call to 3000 (not in the dialplan): 404" call_unknown 404
	pass "a call to 3000, which is not in the dialplan: 404"
	expect_idle "after the failed calls no channel is left"
}

test_call_parallel() {
	start_phone uas_1003a "$PORT_1003A" uas_answer.xml -s 1003 -d 700
	start_phone uas_1003b "$PORT_1003B" uas_ring_cancel.xml -s 1003
	call_args 1003
	sipp_start call_1003 - uac_call.xml "${CALL_ARGS[@]}" -d 1000
	expect_sipp_ok "a call to 1003 rings both contacts; one answers, the other gets CANCEL" \
		call_1003 uas_1003a uas_1003b
	expect_statuses "the caller got 401 (no 100 before it), then one 180, 200 and the 200 to its BYE" call_1003 \
		'^401 (100 )?180 200 200$'
	pass "a call to 1003 rang both registered contacts: $PORT_1003A answered, $PORT_1003B got CANCEL"
	expect_idle "after the parallel call no channel is left"
}

# log_problems MARK: the ERROR and WARNING lines plexusd logged after MARK
# (a log_mark of plexus.log), and any sanitizer report on its stderr.
log_problems() {
	log_since "$D/plexus.log" "$1" | grep -E '^\[[^]]*\] (ERROR|WARNING)\['
	grep -E 'Sanitizer|runtime error:' "$D/stderr"
}

# expect_log DESCRIPTION MARK ERE...: plexusd logged, after MARK, a line
# matching each ERE, and no error or warning.
expect_log() {
	local what=$1 mark=$2 re bad
	shift 2
	for re in "$@"; do
		if ! wait_for_log "$D/plexus.log" "$mark" "$re" 2; then
			fail "$what" "expected a line in plexus.log matching: $re" \
				"got (the log since the call began):" "$(log_since "$D/plexus.log" "$mark")"
		fi
	done
	bad=$(log_problems "$mark")
	if [ -n "$bad" ]; then
		fail "$what" "expected no ERROR or WARNING in the log, no sanitizer report" "got:" "$bad"
	fi
	pass "$what"
}

# Hold from the caller (RFC 3264 8.4): its re-INVITE with a=sendonly gets
# a=recvonly, and Dial passes the hold on, so the called phone gets a
# re-INVITE with a=sendonly; a=sendrecv takes both off hold. The SDP checks
# are in the scenarios (regexp actions with check_it: a missing or wrong
# direction fails the run).
test_call_hold() {
	local mark
	mark=$(log_mark "$D/plexus.log")
	start_phone uas_hold "$PORT_1002" uas_hold.xml -s 1002 -d 200
	call_args 1002
	sipp_start call_hold - uac_hold.xml "${CALL_ARGS[@]}" -d 800
	expect_sipp_ok "hold and resume: the caller's re-INVITEs (sendonly, then sendrecv) get 200 with recvonly, then sendrecv; plexusd re-INVITEs 1002 with sendonly, then sendrecv" \
		call_hold uas_hold
	expect_statuses "the caller got 401 (no 100 before it), 180, 200, then 200 to each re-INVITE and to its BYE" \
		call_hold '^401 (100 )?180 200 (100 )?200 (100 )?200 200$'
	pass "hold: 1001's re-INVITE a=sendonly got 200 a=recvonly and 1002 got a re-INVITE a=sendonly (200 a=recvonly, ACK); resume: a=sendrecv both ways"
	expect_idle "after the held and resumed call no channel is left"
	expect_log "plexusd logged the hold and the resume passed to the other leg, and no error or warning" \
		"$mark" 'SIP/1001-[0-9a-f]+ put the call on hold' 'SIP/1001-[0-9a-f]+ took the call off hold'
}

# RTP timeout: 1005 (rtp_timeout = 2) answers and never sends RTP, like a
# phone whose network went away. plexusd hangs its leg up after 2 s (BYE to
# it, cause 38), and the caller, still streaming, gets BYE too.
test_call_rtp_timeout() {
	local mark start elapsed
	register reg_1005 "$PORT_1005" 1005 "$SECRET_1005" 3600
	if [ "${SIPP_RC_OF[reg_1005]}" != 0 ]; then
		sipp_fail "1005 registers" "401, then 200" reg_1005
	fi
	mark=$(log_mark "$D/plexus.log")
	start=$(date +%s%N)
	start_phone uas_silent "$PORT_1005" uas_answer_silent.xml -s 1005 -d 100
	call_args 1005
	sipp_start call_silent - uac_call_wait_bye.xml "${CALL_ARGS[@]}"
	expect_sipp_ok "a call to 1005, which sends no RTP: plexusd sends BYE to 1005 and to the caller" \
		call_silent uas_silent
	elapsed=$((($(date +%s%N) - start) / 1000000))
	if [ "$elapsed" -lt 2000 ]; then
		fail "the RTP timeout waits its 2 s" "BYE no sooner than 2000 ms after the call began" \
			"got: both calls ended after $elapsed ms"
	else
		pass "the RTP timeout waited its 2 s (the calls ended after $elapsed ms)"
	fi
	expect_idle "after the RTP timeout no channel is left"
	expect_log "plexusd logged the RTP timeout of 1005's leg with cause 38" "$mark" \
		'SIP/1005-[0-9a-f]+: no RTP for 2 s; hanging up' \
		'Hanging up SIP/1005-[0-9a-f]+ \(cause 38: Network out of order\)'
}

# check_early_media DESCRIPTION NAME...: while the called phone is in its
# 183 phase (within 3 s), the caller's channel is not answered yet (State:
# Ring, not bridged) and its RTP counters show packets sent to the caller.
# A failure reports the SIPp runs NAME...
check_early_media() {
	local what=$1 deadline name state tx
	shift
	deadline=$(($(date +%s) + 3))
	while :; do
		name=$(channel_names | grep '^SIP/1001-' | head -n 1)
		if [ -n "$name" ]; then
			px "$SOCK" "core show channel $name"
			state=$(printf '%s\n' "$PX_OUT" | sed -n 's/^ *State: \([A-Za-z]*\).*/\1/p')
			tx=$(printf '%s\n' "$PX_OUT" | sed -n 's/^ *TX packets: \([0-9]*\).*/\1/p')
			if [ "$state" = Up ]; then
				fail "$what" "expected: TX packets > 0 on $name before it is answered" \
					"got: $name is Up already, and no packet was seen sent before" \
					"core show channel $name:" "$PX_OUT" "$(sipp_report "$@")"
			fi
			if [ "$state" = Ring ] && [ "${tx:-0}" -gt 0 ] &&
				printf '%s\n' "$PX_OUT" | grep -Eq '^ *Bridged Channel: \(None\)'; then
				pass "$what ($name: State $state, TX packets $tx)"
				return 0
			fi
		fi
		if [ "$(date +%s)" -ge "$deadline" ]; then
			px "$SOCK" 'core show channels verbose'
			fail "$what" "expected: the caller's channel SIP/1001-... in State Ring with TX packets > 0" \
				"got: ${name:-no such channel}, State ${state:-?}, TX ${tx:-?}" \
				"core show channels verbose:" "$PX_OUT" "$(sipp_report "$@")"
		fi
		sleep 0.1
	done
}

# Early media: 1002 answers 183 with SDP and streams a tone for 1.5 s
# before its 200. The caller must get a 183 with SDP (checked in the
# scenario), and the tone must reach it through plexusd before the answer.
test_call_early_media() {
	local mark
	mark=$(log_mark "$D/plexus.log")
	start_phone uas_early "$PORT_1002" uas_early.xml -s 1002 -d 1500
	call_args 1002
	sipp_start call_early - uac_early.xml "${CALL_ARGS[@]}" -d 1000
	check_early_media "early media: during 1002's 183, plexusd relays its RTP to the caller, not yet answered" \
		call_early uas_early
	expect_sipp_ok "early media: 1002's 183 with SDP reaches the caller as 183 with SDP, then 200, ACK; BYE from the caller" \
		call_early uas_early
	expect_statuses "the caller got 401 (no 100 before it), then 183 (no 180), 200 and the 200 to its BYE" call_early \
		'^401 (100 )?183 200 200$'
	expect_header "the caller's 183 carries an SDP answer" call_early '^SIP/2.0 183' \
		'^Content-Type: application/sdp$'
	expect_header "the caller's 183 carries an SDP answer" call_early '^SIP/2.0 183' \
		'^m=audio [1-9][0-9]* RTP/AVP 0( |$)'
	pass "early media: 183 with SDP (m=audio, PCMU) before the 200"
	expect_idle "after the call with early media no channel is left"
	expect_log "the call with early media logged no error or warning" "$mark" \
		'SIP/1002-[0-9a-f]+ is making progress'
}

# ---------------------------------------------------------------- bad input

# raw_expect DESCRIPTION ALLOWED ARGS...: send a datagram; every status
# that comes back must be in ALLOWED ("none" allows silence).
raw_expect() {
	local what=$1 allowed=$2 got s
	shift 2
	sip_raw "$@"
	got=$(raw_statuses | tr '\n' ' ' | sed 's/ $//')
	for s in ${got:-none}; do
		case " $allowed " in
		*" $s "*) ;;
		*) fail "$what" "expected answers among: $allowed" "got:" "$RAW_OUT" ;;
		esac
	done
	pass "$what: ${got:-no answer}"
	check_answers "plexusd still answers after that"
}

test_bad_input() {
	raw_expect "300 random bytes to the SIP port" "none" --garbage 300
	raw_expect "60000 random bytes to the SIP port" "none" --garbage 60000
	raw_expect "a CRLF keep-alive" "none" --raw '\r\n\r\n'
	raw_expect "a truncated request line ('INVITE sip:')" "none" --raw 'INVITE sip:'
	raw_expect "an INVITE with 'CSeq: abc INVITE'" "400 none" "$SIP_DATA/bad_cseq.sip"
	raw_expect "a REGISTER without Call-ID" "400 none" "$SIP_DATA/no_call_id.sip"
	raw_expect "an INVITE whose Content-Length (5000) exceeds the datagram" "400 none" \
		"$SIP_DATA/bad_content_length.sip"
	# Without a branch the request is an RFC 2543 one, which RFC 3261
	# (17.2.3) still serves: it must be refused or challenged, never let in.
	raw_expect "an INVITE whose Via has no branch (RFC 2543 style)" "100 400 401 none" \
		"$SIP_DATA/via_no_branch.sip"

	call_args 1002
	sipp_run noauth - uac_noauth.xml -s 1002 -key caller 1001
	SIPP_RC_OF[noauth]=$SIPP_RC
	if [ "$SIPP_RC" != 0 ]; then
		sipp_fail "an INVITE without credentials: 401" "100 (optional), then 401" noauth
	fi
	expect_header "the INVITE's 401 has a Digest challenge" noauth '^SIP/2.0 401' \
		'^WWW-Authenticate: Digest realm="plexus-test", .*qop="auth"'
	if [ "$(received_statuses noauth | grep -c 401)" != 1 ]; then
		sipp_fail "the ACK of the 401 ends the transaction" "one 401, no retransmission" noauth
	fi
	pass "an INVITE without credentials: 401 with a Digest challenge; the ACK stops it"

	sipp_start g729 - uac_fail.xml "${CALL_ARGS[@]}" -key pt 18 -key rtpmap "18 G729/8000"
	expect_sipp_ok "an INVITE offering only G.729 (payload 18) fails" g729
	expect_final "an INVITE offering only G.729 (payload 18): 488" g729 488
	pass "an INVITE offering only G.729 (payload 18): 488 Not Acceptable Here"

	expect_idle "after the bad input no channel is left"
	register reg_after "$PORT_1001" 1001 "$SECRET_1001" 3600
	if [ "$SIPP_RC" != 0 ]; then
		sipp_fail "REGISTER still works after the bad input" "401, then 200" reg_after
	fi
	pass "REGISTER still works after the bad input"
	check_answers "plexusd answers at the end"
}

# raw_expect_refused DESCRIPTION FILE: a request from a stranger is refused
# (every answer >= 300) and makes plexusd send no request of its own.
raw_expect_refused() {
	local what=$1 got s
	sip_raw "$2" 1
	got=$(raw_statuses | tr '\n' ' ' | sed 's/ $//')
	for s in ${got:-none}; do
		if [ "$s" = none ] || [ "$s" -lt 300 ] ||
			printf '%s\n' "$RAW_OUT" | grep -Eq '^<<< [A-Z]+ sip:'; then
			fail "$what" "expected: a refusal (4xx-6xx) and no request from plexusd" \
				"sent: $(sed 's/{[a-z_]*}/.../g' "$2" | head -n 1) (from $2)" "got:" "$RAW_OUT"
		fi
	done
	pass "$what: $got"
}

# Methods chan_sip does not handle must not be accepted from anyone: an
# accepted REFER makes plexusd send NOTIFY to whatever Contact the stranger
# named (a reflector), an accepted MESSAGE is claimed delivered and dropped.
test_unauthenticated_methods() {
	raw_expect_refused "an out-of-dialog REFER from a stranger is refused" \
		"$SIP_DATA/refer_no_auth.sip"
	raw_expect_refused "a MESSAGE from a stranger is refused" "$SIP_DATA/message_no_auth.sip"
	check_answers "plexusd still answers after that"
}

sip_start_standard
test_register
test_register_forbidden
test_register_refresh
test_register_remove
test_register_too_brief
test_register_survives_restart
test_phones_register
test_call_caller_hangs_up
test_call_late_ring
test_call_callee_hangs_up
test_call_cancel
test_call_busy
test_call_answer_codec
test_call_no_answer
test_call_not_registered
test_call_unknown_number
test_call_parallel
test_call_hold
test_call_rtp_timeout
test_call_early_media
test_bad_input
test_unauthenticated_methods
expect_clean_stop
finish
