#!/bin/bash
# Lua dialplan integration test: a real plexusd (chan_sip, res_registrar,
# pbx_lua, app_dial, res_db) on free loopback ports, with sample
# extensions.lua files from tests/data/lua_sip, routing real SIPp calls.
# In the Asterisk pbx_lua style (pbxlua_style.lua): an include, Goto into
# another context, Goto to an unknown extension landing in 'i', a
# forwarding number read from the database with DB(), the caller ID set
# through channel.CALLERID("name"), 'h' recording HANGUPCAUSE and DIALSTATUS
# with DB() after an answered call and after a busy one, a runaway loop cut
# off by the instruction budget (the caller gets a final error, no channel
# is left, the log names file:line), a runtime error, a Dial from the
# deepest stack Lua allows (session threads have a bounded stack). With plexus.dial and
# plexus.db (ours.lua). Hot reload: 20 calls in progress on one generation
# while "dialplan reload" installs another: none is dropped, and a new call
# uses the new plan; a syntax error on reload keeps the running plan. Bad
# files (not Lua, no `extensions`, a context not a table, an extension not
# a function): each refused by "dialplan reload" with a clear message while
# calls still work; at start-up a bad file leaves the daemon running
# without a dialplan, and it says so. Needs sipp (Debian: sip-tester).

. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/sip/siplib.sh"

SECRET_1001=test-secret-1001
LUA_DATA=$top_srcdir/tests/data/lua_sip

setup() {
	D=$TMP/etc
	sip_ports
	make_module_dir "$TMP/modules" chan_sip res_registrar pbx_lua app_dial res_db codec_ulaw codec_alaw
	write_plexus_conf "$D" "$TMP/modules" 3
	write_modules_conf "$D" "autoload = yes" "require = chan_sip" "require = res_registrar" \
		"load = pbx_lua" "require = app_dial" "require = res_db"
	sed "s/@SIP_PORT@/$SIP_PORT/" "$SIP_DATA/sip.conf" >"$D/sip.conf"
	cp "$LUA_DATA/pbxlua_style.lua" "$D/extensions.lua"
	cp "$LUA_DATA/lua.conf" "$D/lua.conf"
	write_rtp_conf "$D" "$RTP_START" "$RTP_END"
	sip_make_tone
	start_daemon "$D"
	check_cmd "pbx_lua loaded pbxlua_style.lua" 'dialplan show' 0 "Context 'phones'"
}

register() {
	sipp_run "$1" "$2" register.xml -s "$3" -au "$3" -ap "$4" -key expires 3600
	SIPP_RC_OF[$1]=$SIPP_RC
	if [ "$SIPP_RC" != 0 ]; then
		sipp_fail "phone $3 registers" "401, then 200" "$1"
	fi
}

start_phone() {
	sipp_start "$@"
	if ! wait_udp_bound "$2" 5; then
		SIPP_RC_OF[$1]=?
		sipp_fail "SIPp phone $1 listens on port $2" "a socket on 127.0.0.1:$2 within 5 s" "$1"
	fi
}

# sipp_ok DESCRIPTION NAME...: every run ends with status 0 (for SIPp: all
# its calls completed as the scenario says); prints ok.
sipp_ok() {
	expect_sipp_ok "$@"
	pass "$1"
}

call_args() {
	CALL_ARGS=(-s "$1" -key caller 1001 -au 1001 -ap "$SECRET_1001")
}

# expect_db DESCRIPTION FAMILY KEY VALUE: within 5 s, the database holds it.
expect_db() {
	local i
	for ((i = 0; i < 50; i++)); do
		px "$SOCK" "database get $2 $3"
		[ "$PX_OUT" = "Value: $4" ] && break
		sleep 0.1
	done
	if [ "$PX_OUT" != "Value: $4" ]; then
		fail "$1" "expected 'database get $2 $3' to say 'Value: $4'" "got: $PX_OUT"
	fi
	pass "$1"
}

test_phones() {
	register reg_1002 "$PORT_1002" 1002 test-secret-1002
	register reg_1003 "$PORT_1003A" 1003 test-secret-1003
	pass "phones 1002 and 1003 are registered"
}

test_include_and_h() {
	start_phone uas_a "$PORT_1002" uas_answer.xml -s 1002 -d 200
	call_args 1002
	sipp_start call_a - uac_call.xml "${CALL_ARGS[@]}" -d 500
	sipp_ok "1002 through default's include of 'phones': answered, BYE from the caller" \
		call_a uas_a
	expect_idle "no channel left"
	expect_db "'h' of 'default' ran after the hangup with HANGUPCAUSE and DIALSTATUS" test h \
		"default 16 ANSWER"
}

test_goto() {
	start_phone uas_g "$PORT_1002" uas_answer.xml -s 1002 -d 200
	call_args 2000
	sipp_start call_g - uac_call.xml "${CALL_ARGS[@]}" -d 500
	sipp_ok "2000: app[\"goto\"](\"phones\", \"1002\", 1) rings 1002, which answers" \
		call_g uas_g
	expect_idle "no channel left after the Goto call"
	expect_db "'h' ran in the context the call was in after the Goto ('phones')" test h \
		"phones 16 ANSWER"
}

test_invalid_and_busy() {
	start_phone uas_b "$PORT_1002" uas_busy.xml -s 1002
	call_args 2001
	sipp_start call_i - uac_fail.xml "${CALL_ARGS[@]}" -key pt 0 -key rtpmap "0 PCMU/8000"
	sipp_ok "2001: Goto to phones,9999 lands in 'i', which rings 1002: busy" call_i uas_b
	expect_final "the dialplan fell off after Dial's BUSY: the caller gets 486" call_i 486
	expect_db "'h' saw cause 17 and DIALSTATUS BUSY" test h "phones 17 BUSY"
}

test_db_forward() {
	check_cmd "database put forward 3001 1002" 'database put forward 3001 1002' 0
	start_phone uas_f "$PORT_1002" uas_answer.xml -s 1002 -d 200
	call_args 3001
	sipp_start call_f - uac_call.xml "${CALL_ARGS[@]}" -d 500
	sipp_ok "3001: the forward target is read with DB(forward/3001) and rung" call_f uas_f
	expect_idle "no channel left after the forwarded call"
	call_args 3002
	sipp_start call_nf - uac_fail.xml "${CALL_ARGS[@]}" -key pt 0 -key rtpmap "0 PCMU/8000"
	sipp_ok "3002 has no forward: the function returns and the call ends" call_nf
	pass "3002 without a forward ends with $(final_status call_nf)"
}

test_runaway() {
	local mark
	mark=$(log_mark "$D/plexus.log")
	call_args 4000
	sipp_start call_loop - uac_fail.xml "${CALL_ARGS[@]}" -key pt 0 -key rtpmap "0 PCMU/8000"
	sipp_ok "4000: a runaway loop is cut off and the caller gets a final answer" call_loop
	if [ "$(final_status call_loop)" -lt 400 ]; then
		sipp_fail "the runaway call ends with an error response" ">= 400" call_loop
	fi
	pass "the runaway call ended with $(final_status call_loop)"
	if ! wait_for_log "$D/plexus.log" "$mark" 'extensions\.lua:[0-9]+: extension 4000@default ran more than 2000000 Lua instructions' 5; then
		fail "the log names file:line of the runaway loop" "got:" "$(log_since "$D/plexus.log" "$mark")"
	fi
	pass "the log names extensions.lua:LINE and the instruction_limit"
	expect_idle "no channel left after the runaway loop"
	expect_db "'h' ran after the runaway loop (cause 41)" test h "default 41 none"
	check_answers "plexusd still answers"

	mark=$(log_mark "$D/plexus.log")
	call_args 4001
	sipp_start call_err - uac_fail.xml "${CALL_ARGS[@]}" -key pt 0 -key rtpmap "0 PCMU/8000"
	sipp_ok "4001: a runtime error ends the call" call_err
	if ! wait_for_log "$D/plexus.log" "$mark" 'extensions\.lua:[0-9]+: attempt to index a nil value.*traceback' 5; then
		fail "the log names file:line of the runtime error with a traceback" "got:" "$(log_since "$D/plexus.log" "$mark")"
	fi
	pass "the runtime error is logged with file:line and a traceback"
	expect_idle "no channel left after the runtime error"
}

test_deep_stack() {
	start_phone uas_d "$PORT_1002" uas_answer.xml -s 1002 -d 200
	call_args 5000
	sipp_start call_d - uac_call.xml "${CALL_ARGS[@]}" -d 500
	sipp_ok "5000: a Dial from 170 nested gsub callbacks (the deepest stack of a session thread) is answered" \
		call_d uas_d
	expect_db "the bottom was reached and its backtracking match ran" test deep "170 300"
	expect_idle "no channel left after the deep call"
	expect_db "'h' after the deep call saw the answer" test h "default 16 ANSWER"
	check_answers "plexusd still answers after the deep call"
}

test_ours() {
	cp "$LUA_DATA/ours.lua" "$D/extensions.lua"
	check_cmd "dialplan reload installs ours.lua" 'dialplan reload' 0 'Dialplan reloaded'
	start_phone uas_ob "$PORT_1002" uas_busy.xml -s 1002
	call_args 1002
	sipp_start call_o - uac_fail.xml "${CALL_ARGS[@]}" -key pt 0 -key rtpmap "0 PCMU/8000"
	sipp_ok "plexus.dial to a busy 1002" call_o uas_ob
	expect_db "plexus.dial returned status BUSY and cause 17; plexus.db.put stored it" test status \
		"BUSY 17"
}

test_reload_live() {
	local n=20 i names
	cp "$LUA_DATA/reload_v1.lua" "$D/extensions.lua"
	check_cmd "reload_v1.lua: 7XXX rings 1002" 'dialplan reload' 0 'Dialplan reloaded'
	start_phone uas_many "$PORT_1002" uas_answer.xml -s 1002 -d 100 -m $n
	call_args 7001
	sipp_start calls_many - uac_call.xml "${CALL_ARGS[@]}" -d 4000 -m $n -l $n -r 20 \
		-timeout 30s
	for ((i = 0; i < 100; i++)); do
		names=$(channel_names | grep -c '^SIP/1002-')
		[ "$names" -ge $n ] && break
		sleep 0.1
	done
	if [ "${names:-0}" -lt $n ]; then
		px "$SOCK" 'core show channels'
		fail "$n calls to 1002 are up" "expected $n channels SIP/1002-..." "got:" "$PX_OUT"
	fi
	pass "$n calls 1001 -> 7001 -> 1002 are up"
	cp "$LUA_DATA/reload_v2.lua" "$D/extensions.lua"
	check_cmd "dialplan reload under $n live calls" 'dialplan reload' 0 'Dialplan reloaded'
	start_phone uas_new "$PORT_1003A" uas_answer.xml -s 1003 -d 200
	call_args 7002
	sipp_start call_new - uac_call.xml "${CALL_ARGS[@]}" -d 300
	sipp_ok "a call after the reload goes to 1003 (the new plan)" call_new uas_new
	sipp_ok "all $n calls in progress during the reload completed (none dropped)" \
		calls_many uas_many
	expect_idle "no channel left after the $n calls"
}

test_reload_broken() {
	local f mark
	cp "$LUA_DATA/syntax_error.lua" "$D/extensions.lua"
	mark=$(log_mark "$D/plexus.log")
	check_cmd "a syntax error on reload is refused with file:line" 'dialplan reload' 1 \
		'extensions\.lua:[0-9]+: .*The running dialplan is kept|extensions\.lua:[0-9]+:'
	expect_output "the console says the running dialplan is kept" 'running dialplan is kept'
	if ! wait_for_log "$D/plexus.log" "$mark" 'extensions\.lua:[0-9]+: .*running dialplan is kept' 3; then
		fail "the log has file:line and says the plan is kept" "got:" "$(log_since "$D/plexus.log" "$mark")"
	fi
	pass "the log names extensions.lua:LINE and keeps the running dialplan"
	for f in not_lua.lua no_extensions.lua context_not_table.lua ext_not_function.lua; do
		cp "$LUA_DATA/$f" "$D/extensions.lua"
		px "$SOCK" 'dialplan reload'
		expect_status "$f is refused by dialplan reload" 1
		case $f in
		not_lua.lua) expect_output "$f: clear error" 'binary|unexpected symbol|syntax|near' ;;
		no_extensions.lua) expect_output "$f: clear error" "global table 'extensions'.*not defined" ;;
		context_not_table.lua) expect_output "$f: clear error" 'extensions\.default is a string, not a table' ;;
		ext_not_function.lua) expect_output "$f: clear error" 'extensions\.default\["1002"\] is a string, not a function' ;;
		esac
		pass "$f is refused: $(printf '%s\n' "$PX_OUT" | head -n 1)"
	done
	start_phone uas_kept "$PORT_1003A" uas_answer.xml -s 1003 -d 200
	call_args 7003
	sipp_start call_kept - uac_call.xml "${CALL_ARGS[@]}" -d 300
	sipp_ok "after the refused reloads calls still use reload_v2.lua (7003 -> 1003)" \
		call_kept uas_kept
	check_answers "plexusd answers after the bad files"
}

test_bad_at_start() {
	local f
	if ! stop_daemon "$DAEMON_PID" 20 || [ "$EXIT_STATUS" != 0 ]; then
		fail "plexusd stops with status 0" "got: ${EXIT_STATUS:-still running}"
	fi
	cp "$LUA_DATA/context_not_table.lua" "$D/extensions.lua"
	start_daemon "$D"
	check_answers "with a bad extensions.lua at start-up plexusd runs"
	px "$SOCK" 'module show like pbx_lua'
	expect_no_output "pbx_lua is not loaded" '^pbx_lua '
	if ! grep -Eq 'extensions\.default is a string, not a table' "$D/plexus.log"; then
		fail "the log says why there is no dialplan" "got:" "$(tail -n 20 "$D/plexus.log")"
	fi
	pass "the log says why pbx_lua did not load (no dialplan)"
	call_args 1002
	sipp_start call_none - uac_fail.xml "${CALL_ARGS[@]}" -key pt 0 -key rtpmap "0 PCMU/8000"
	sipp_ok "a call without a dialplan is refused" call_none
	pass "a call without a dialplan gets $(final_status call_none)"
	cp "$LUA_DATA/reload_v2.lua" "$D/extensions.lua"
	check_cmd "module load pbx_lua with a good file" 'module load pbx_lua' 0
	check_cmd "the dialplan is back" 'dialplan show default' 0 "'_7XXX'"
}

test_stop() {
	if ! stop_daemon "$DAEMON_PID" 20 || [ "$EXIT_STATUS" != 0 ]; then
		fail "plexusd stops on SIGTERM with status 0 at the end" \
			"got: status ${EXIT_STATUS:-none (still running)}"
	fi
	pass "plexusd stops on SIGTERM with status 0 at the end"
	if grep -E 'Sanitizer|runtime error:' "$D/stderr"; then
		fail "no sanitizer report" "got:" "$(grep -E 'Sanitizer|runtime error:' "$D/stderr")"
	fi
	pass "no sanitizer report"
}

setup
test_phones
test_include_and_h
test_goto
test_invalid_and_busy
test_db_forward
test_runaway
test_deep_stack
test_ours
test_reload_live
test_reload_broken
test_bad_at_start
test_stop
finish
