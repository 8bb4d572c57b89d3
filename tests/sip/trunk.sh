#!/bin/bash
# SIP trunks: a real plexusd (chan_sip, res_registrar, pbx_lua, app_dial)
# with carriers played by SIPp on other loopback addresses (127.0.0.3 ...
# 127.0.0.6; 127.0.0.2 plays a stranger), tests/data/sip_trunk.
#
# Registration: the carrier challenges (401), Plexus answers with the
# trunk's credentials (checked by SIPp), refreshes before the 2 s expiry,
# keeps retrying through three 503s with growing intervals (1, 2, 4 s less
# up to 15 % jitter) and registers again when the carrier recovers; "sip
# show registry" shows Failed with the 503 and the next attempt meanwhile,
# then Registered. Inbound: a DID call from the trunk's address reaches the
# phone the dialplan maps it to, with the asserted caller; the same INVITE
# from 127.0.0.2 gets the endpoints' 401 challenge and then 403, with a
# security notice. Outbound: the carrier answers the first INVITE with
# 407, Plexus sends it again with credentials (checked by SIPp), From,
# P-Asserted-Identity and Remote-Party-ID carry the caller; BYE from the
# caller. Failover: trunkA answers 503, trunkB takes the call (and hangs
# up); trunkA answering 486 is not failed over (trunkB sees nothing).
# Qualify: trunkQ answers OPTIONS (Reachable, with an RTT), then stops and
# becomes Unreachable, and plexus.dial_trunk_group skips it. Numbers: a
# forwarded DID call (Diversion, History-Info) is sent on through trunkB
# with a Diversion naming the DID before the carrier's, and History-Info as
# it came; REDIRECTING() reads the diversion in the dialplan. Bad input: a
# broken trunk line and a match that is no address are named by
# file:line and the running trunks are kept. Every check prints "ok N".

. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/sip/siplib.sh"

TRUNK_DATA=$top_srcdir/tests/data/sip_trunk
SECRET_1001=test-secret-1001
SECRET_1002=test-secret-1002

# message_times NAME ERE: the wall-clock times (s.frac) of the messages of
# run NAME whose first line matches ERE.
message_times() {
	awk -v re="$2" '
		/^----------------------------------------------- / { t = $3; split(t, hms, ":"); ts = hms[1] * 3600 + hms[2] * 60 + hms[3]; next }
		/^(UDP|TCP) message (sent|received)/ { first = 1; next }
		first && NF { first = 0; if ($0 ~ re) printf "%.3f\n", ts }' "$SIPP_DIR/$1.msg"
}

# registry_state TRUNK: 'sip show registry' into PX_OUT; the state into REG_STATE.
registry_state() {
	px "$SOCK" 'sip show registry'
	REG_STATE=$(printf '%s\n' "$PX_OUT" | awk -v t="$1" '$1 == t { print $4 }')
}

# wait_registry DESCRIPTION TRUNK ERE SECONDS: until the trunk's line matches ERE.
wait_registry() {
	local i line
	for ((i = 0; i < $4 * 10; i++)); do
		px "$SOCK" 'sip show registry'
		line=$(printf '%s\n' "$PX_OUT" | awk -v t="$2" '$1 == t')
		if printf '%s\n' "$line" | grep -Eq -- "$3"; then
			pass "$1 ($(printf '%s' "$line" | tr -s ' '))"
			return 0
		fi
		sleep 0.1
	done
	fail "$1" "expected the line of $2 in 'sip show registry' to match: $3" "got:" "$PX_OUT"
}

# ---------------------------------------------------------------- set-up

setup() {
	D=$TMP/etc
	sip_ports
	PORT_A=$((PORT_BASE + 300))
	PORT_B=$((PORT_BASE + 310))
	PORT_R=$((PORT_BASE + 320))
	PORT_Q=$((PORT_BASE + 330))
	SLOT_END=$((PORT_BASE + 300))
	sip_write_modules
	sed -e "s/@SIP_PORT@/$SIP_PORT/" -e "s/@PORT_A@/$PORT_A/" -e "s/@PORT_B@/$PORT_B/" \
		-e "s/@PORT_R@/$PORT_R/" -e "s/@PORT_Q@/$PORT_Q/" "$TRUNK_DATA/sip.conf" >"$D/sip.conf"
	cp "$TRUNK_DATA/extensions.lua" "$TRUNK_DATA/lua.conf" "$D/"
	write_rtp_conf "$D" "$RTP_START" "$RTP_END"
	sip_make_tone
	: >"$DIALSTATUS_FILE"
	export PX_SIP_TEST_DIALSTATUS=$DIALSTATUS_FILE
	# The registrar must be there before plexusd registers.
	carrier_start registrar 127.0.0.5 "$PORT_R" carrier_registrar.xml 40
	start_daemon "$D"
	check_cmd "plexusd has 4 trunks" 'sip show trunks' 0 '^4 trunks$'
	expect_output "sip show trunks: trunkA at 127.0.0.3:$PORT_A over udp, context from-trunk, matched by its address" \
		"^trunkA +127\.0\.0\.3:$PORT_A +udp +from-trunk +127\.0\.0\.3/32 +Unmonitored +-$"
	expect_output "sip show trunks: trunkB matched by its ACL (two entries)" \
		"^trunkB +127\.0\.0\.4:$PORT_B +udp +from-trunk +127\.0\.0\.4/32,\.\.\. "
	check_cmd "sip show trunk trunkA: the settings" 'sip show trunk trunkA' 0 \
		"Identity: +send_pai yes, send_rpid yes"
	check_cmd "sip show endpoints: the phones (trunks are not endpoints)" 'sip show endpoints' 0 '^2 endpoints$'
}

# ---------------------------------------------------------------- registration

test_registration() {
	wait_registry "trunkR registers after answering the 401 (Registered, 200, 2 s)" trunkR \
		'^trunkR +5551000@127\.0\.0\.5 +2 +Registered +200 OK +refresh in' 10
	wait_registry "the carrier's 503 leaves trunkR Failed with a retry time" trunkR \
		' Failed +503 Service Unavailable +retry in [0-9]+s' 15
	wait_registry "after the outage trunkR is Registered again (600 s granted: no refresh falls within the test)" trunkR \
		'^trunkR +5551000@127\.0\.0\.5 +600 +Registered +200 OK' 20
	expect_carrier_ok "the registrar saw: 401, credentials, refresh, three failures, recovery" registrar 10
	local times gaps
	times=$(message_times registrar '^REGISTER ')
	if [ "$(printf '%s\n' "$times" | wc -l)" != 7 ]; then
		sipp_fail "seven REGISTERs" "7 REGISTERs" registrar
	fi
	# gaps between the 503s and the next attempt: REGISTER 5->6, 6->7
	gaps=$(printf '%s\n' "$times" | awk 'NR > 1 { printf "%.2f ", $1 - prev } { prev = $1 }')
	if ! printf '%s\n' "$gaps" | awk '{ exit !($5 >= 0.8 && $5 <= 1.3 && $6 >= 1.6 && $6 <= 2.4 && $6 > $5) }'; then
		:
	fi
	read -r g1 g2 g3 g4 g5 g6 <<<"$gaps"
	if ! awk -v a="$g4" -v b="$g5" -v c="$g6" 'BEGIN { exit !(a >= 0.8 && a <= 1.3 && b >= 1.6 && b <= 2.4 && c >= 3.3 && c <= 4.5) }'; then
		sipp_fail "retries after 503 wait 1, 2, 4 s (less jitter)" "gaps ~1, ~2, ~4 s; got gaps $gaps" registrar
	fi
	pass "retries after each 503 wait longer: ${g4}s, ${g5}s, ${g6}s (refresh after ${g3}s)"
	expect_header "the credentials answer the carrier's challenge" registrar '^REGISTER ' \
		'^Authorization: Digest username="acct-r", realm="carrier-r\.test"'
	expect_header "REGISTER is for the DID (To and Contact user 5551000)" registrar '^REGISTER ' \
		'^Contact: <sip:5551000@127\.0\.0\.1'
}

# ---------------------------------------------------------------- inbound

test_inbound_did() {
	sipp_run reg_1002 "$PORT_1002" register.xml -s 1002 -au 1002 -ap "$SECRET_1002" -key expires 3600
	[ "$SIPP_RC" = 0 ] || sipp_fail "1002 registers" "status 0" reg_1002
	sipp_start phone_1002 "$PORT_1002" uas_answer.xml -s 1002
	carrier_start did 127.0.0.3 "$PORT_A" carrier_uac_did.xml 15 -s 5551000 -d 1500
	expect_carrier_ok "a DID call from trunkA's address is answered (no challenge)" did 20
	expect_sipp_ok "the DID 5551000 reaches phone 1002" phone_1002
	pass "the DID 5551000 reaches phone 1002"
	expect_header "the phone sees the caller the carrier asserted (P-Asserted-Identity)" phone_1002 \
		'^INVITE ' '^From: "Asserted Caller" <sip:\+15550001111@'
	if received_statuses did | grep -q '^401$'; then
		sipp_fail "the trunk is not challenged" "no 401" did
	fi
	pass "the trunk's call got no 401"
	expect_idle "after the DID call no channel is left"

	local mark
	mark=$(log_mark "$D/plexus.log")
	carrier_start stranger 127.0.0.2 "$PORT_A" stranger_invite.xml 10 -s 5551000 -au 5551000 -ap guess
	expect_carrier_ok "the same DID call from 127.0.0.2: 401 like any endpoint, then 403" stranger 15
	expect_statuses "the stranger: 401, then 403" stranger '^401 403$'
	if ! wait_for_log "$D/plexus.log" "$mark" 'INVITE from udp:127\.0\.0\.2:[0-9]+: authentication failed \(403\)' 5; then
		fail "the stranger's INVITE is logged as a failed authentication" "a notice naming 127.0.0.2" \
			"got:" "$(log_since "$D/plexus.log" "$mark")"
	fi
	pass "the stranger is logged (security notice naming udp:127.0.0.2)"
}

# ---------------------------------------------------------------- outbound

test_outbound_auth() {
	dialstatus_mark
	carrier_start out_a 127.0.0.3 "$PORT_A" carrier_uas_auth.xml 15
	sipp_start call_out - uac_call.xml -s 015551234567 -key caller 1001 -au 1001 -ap "$SECRET_1001" -d 1500
	expect_sipp_ok "1001 calls 015551234567 out through trunkA: answered, BYE from the caller" call_out
	pass "1001's call out through trunkA is answered and ended by the caller's BYE"
	expect_carrier_ok "trunkA's carrier: 407, INVITE with the right credentials, BYE" out_a 10
	expect_header "Plexus answers the 407 with Proxy-Authorization (acct-a, realm carrier-a.test)" out_a \
		'^INVITE ' '^Proxy-Authorization: Digest username="acct-a", realm="carrier-a\.test"'
	local inv
	inv=$(sipp_message out_a '^INVITE ' | tr -d '\r')
	if ! printf '%s\n' "$inv" | "$PYTHON" -c '
import hashlib, re, sys
m = sys.stdin.read()
h = re.search(r"^Proxy-Authorization: Digest (.*)$", m, re.M).group(1)
p = dict(re.findall(r"(\w+)=\"?([^\",]*)\"?", h))
md5 = lambda s: hashlib.md5(s.encode()).hexdigest()
ha1 = md5("acct-a:carrier-a.test:trunk-secret-a")
ha2 = md5("INVITE:" + p["uri"])
want = md5(ha1 + ":" + p["nonce"] + ":" + ha2)
sys.exit(0 if p["response"] == want else 1)'; then
		sipp_fail "the digest answers the challenge with trunk-secret-a" "a right response= value" out_a
	fi
	pass "the digest response is right for acct-a / trunk-secret-a"
	expect_header "the Request-URI is the E.164 number at the carrier" out_a '^INVITE ' \
		"^INVITE sip:\+15551234567@127\.0\.0\.3:$PORT_A SIP/2\.0$"
	expect_header "From carries the caller at from_domain" out_a '^INVITE ' \
		'^From: "Alice" <sip:1001@carrier-a\.test>;tag='
	expect_header "P-Asserted-Identity carries the caller" out_a '^INVITE ' \
		'^P-Asserted-Identity: "Alice" <sip:1001@carrier-a\.test>$'
	expect_header "Remote-Party-ID carries the caller (send_rpid)" out_a '^INVITE ' \
		'^Remote-Party-ID: "Alice" <sip:1001@carrier-a\.test>;party=calling;privacy=off;screen=yes$'
	expect_idle "after the call out no channel is left"
}

test_failover() {
	dialstatus_mark
	carrier_start fo_a 127.0.0.3 "$PORT_A" carrier_uas_503.xml 10
	carrier_start fo_b 127.0.0.4 "$PORT_B" uas_answer_bye.xml 15 -s carrier -d 1000
	sipp_start call_fo - uac_call_wait_bye.xml -s 815551230001 -key caller 1001 -au 1001 -ap "$SECRET_1001"
	expect_sipp_ok "1001's call through trunkA&trunkB is answered (and hung up by the carrier)" call_fo
	pass "1001's call through trunkA&trunkB is answered, and ended by the carrier's BYE"
	expect_carrier_ok "trunkA answered 503" fo_a 10
	expect_carrier_ok "trunkB took the call after trunkA's 503 and hung up" fo_b 10
	expect_header "trunkB's From is its from_user" fo_b '^INVITE ' '^From: "Alice" <sip:acct-b@127\.0\.0\.4>;tag='
	expect_idle "after the failover call no channel is left"

	dialstatus_mark
	carrier_start busy_a 127.0.0.3 "$PORT_A" uas_busy.xml 10
	carrier_start busy_b 127.0.0.4 "$PORT_B" uas_answer_bye.xml 4 -s carrier -d 1000
	sipp_start call_busy - uac_fail.xml -s 815551230002 -key caller 1001 -au 1001 -ap "$SECRET_1001" \
		-key pt 0 -key rtpmap "0 PCMU/8000"
	expect_carrier_ok "trunkA answered 486" busy_a 10
	sipp_wait call_busy
	expect_final "the caller hears busy (486): no failover" call_busy 486
	expect_dialstatus "Dial ends BUSY" "15551230002 BUSY"
	carrier_wait busy_b 10
	if [ -s "$SIPP_DIR/busy_b.msg" ] && grep -q '^INVITE' "$SIPP_DIR/busy_b.msg"; then
		sipp_fail "trunkB gets nothing after trunkA's 486" "no INVITE at trunkB" busy_b
	fi
	pass "trunkB got no INVITE after trunkA's 486"
	expect_idle "after the busy call no channel is left"
}

# ---------------------------------------------------------------- qualify

test_qualify() {
	local i
	# Nothing answered trunkQ's OPTIONS so far; now its carrier answers three.
	check_cmd "trunkQ, whose carrier is silent, is UNREACHABLE" 'sip show trunks' 0 '^trunkQ .* UNREACHABLE'
	carrier_start qualify 127.0.0.6 "$PORT_Q" carrier_options.xml 15 -m 3
	for ((i = 0; i < 40; i++)); do
		px "$SOCK" 'sip show trunks'
		printf '%s\n' "$PX_OUT" | grep -Eq '^trunkQ .* OK \([0-9]+ ms\)' && break
		sleep 0.1
	done
	expect_output "trunkQ's carrier answers OPTIONS: OK with its round-trip time" '^trunkQ .* OK \([0-9]+ ms\)'
	pass "trunkQ is Reachable ($(printf '%s\n' "$PX_OUT" | grep '^trunkQ' | tr -s ' '))"
	expect_carrier_ok "trunkQ's carrier answered three OPTIONS and left" qualify 10
	for ((i = 0; i < 50; i++)); do
		px "$SOCK" 'sip show trunks'
		printf '%s\n' "$PX_OUT" | grep -Eq '^trunkQ .* UNREACHABLE' && break
		sleep 0.1
	done
	expect_output "trunkQ stopped answering: UNREACHABLE" '^trunkQ .* UNREACHABLE'
	pass "trunkQ is Unreachable once its carrier is silent"
	check_cmd "sip show trunk trunkQ says Unreachable" 'sip show trunk trunkQ' 0 'Qualify: +every 1 s, timeout 500 ms: Unreachable'

	dialstatus_mark
	local mark
	mark=$(log_mark "$D/plexus.log")
	carrier_start q_b 127.0.0.4 "$PORT_B" uas_answer_bye.xml 15 -s carrier -d 1000
	sipp_start call_q - uac_call_wait_bye.xml -s 715551230003 -key caller 1001 -au 1001 -ap "$SECRET_1001"
	expect_sipp_ok "plexus.dial_trunk_group{trunkQ, trunkB}: the call is answered" call_q
	pass "plexus.dial_trunk_group{trunkQ, trunkB}: the call is answered"
	expect_carrier_ok "trunkB took it" q_b 10
	if ! log_since "$D/plexus.log" "$mark" | grep -q 'trunk trunkQ is unreachable; not calling 15551230003'; then
		fail "unreachable trunkQ is skipped" "the log says so" "got:" "$(log_since "$D/plexus.log" "$mark")"
	fi
	pass "unreachable trunkQ was skipped without sending anything"
	expect_idle "after the group call no channel is left"
}

# ---------------------------------------------------------------- numbers

test_forwarded() {
	dialstatus_mark
	carrier_start fwd_b 127.0.0.4 "$PORT_B" carrier_uas_nat.xml 15 -s carrier -d 500
	carrier_start fwd_a 127.0.0.3 "$PORT_A" carrier_uac_did.xml 15 -s 5551001 -d 1500
	expect_carrier_ok "a forwarded DID call from trunkA is answered" fwd_a 20
	expect_carrier_ok "the dialplan sent it on through trunkB, which answered and got the BYE" fwd_b 10
	expect_dialstatus "REDIRECTING() reads the Diversion (from +15557770000, no-answer, once), and History-Info without it" \
		"redirecting +15557770000 no-answer 1 |"$'\n'"history-info +15557770000 no-answer 1 |"
	expect_header "trunkB gets a Diversion naming the DID, then the carrier's Diversion" fwd_b '^INVITE ' \
		'^Diversion: <sip:5551001@carrier-a\.test>;reason=unconditional, <sip:\+15557770000@127\.0\.0\.3>;reason=no-answer$'
	pass "trunkB gets a Diversion naming the DID, then the carrier's Diversion"
	expect_header "trunkB gets the carrier's History-Info as it came" fwd_b '^INVITE ' \
		'^History-Info: <sip:\+15557770000@127\.0\.0\.3>;index=1, <sip:5551001@127\.0\.0\.3;cause=480>;index=1\.1$'
	pass "trunkB gets the carrier's History-Info as it came"
	check_cmd "REDIRECTING is a known function" 'core show function REDIRECTING' 0 \
		'REDIRECTING\(from-num\|from-name\|reason\|count\)'
	expect_idle "after the forwarded call no channel is left"
}

# ---------------------------------------------------------------- bad input

test_bad_config() {
	local mark
	cp "$D/sip.conf" "$D/sip.conf.good"
	printf '\n[trunkX](carrier)\nhost = 127.0.0.7\nmatch = 127.0.0.7, carrier.example.com\n' >>"$D/sip.conf"
	local line
	line=$(grep -n '^match = 127.0.0.7' "$D/sip.conf" | cut -d: -f1)
	mark=$(log_mark "$D/plexus.log")
	check_cmd "a reload with a match that is no address fails" 'module reload chan_sip' 1 'reload failed'
	if ! log_since "$D/plexus.log" "$mark" | grep -q "sip.conf:$line: trunk trunkX: match: 'carrier.example.com' is not an IP address or network"; then
		fail "the bad match is named by file:line" "sip.conf:$line: trunk trunkX: match: ..." "got:" "$(log_since "$D/plexus.log" "$mark")"
	fi
	pass "the bad match is named by sip.conf:$line"
	cp "$D/sip.conf.good" "$D/sip.conf"
	printf '\n[trunkY](carrier)\nhost = 127.0.0.7:99999\n' >>"$D/sip.conf"
	line=$(grep -n '^host = 127.0.0.7:99999' "$D/sip.conf" | cut -d: -f1)
	mark=$(log_mark "$D/plexus.log")
	check_cmd "a reload with a broken trunk host fails" 'module reload chan_sip' 1 'reload failed'
	if ! log_since "$D/plexus.log" "$mark" | grep -q "sip.conf:$line: trunk trunkY: host: '127.0.0.7:99999' is not host or host:port"; then
		fail "the broken host is named by file:line" "sip.conf:$line: trunk trunkY: host: ..." "got:" "$(log_since "$D/plexus.log" "$mark")"
	fi
	pass "the broken trunk line is named by sip.conf:$line"
	cp "$D/sip.conf.good" "$D/sip.conf"
	check_cmd "the running trunks are kept" 'sip show trunks' 0 '^4 trunks$'
	registry_state trunkR
	[ "$REG_STATE" = Registered ] || fail "trunkR stays registered" "Registered" "got:" "$PX_OUT"
	pass "trunkR stays Registered through the failed reloads"
}

setup
test_registration
test_inbound_did
test_outbound_auth
test_failover
test_qualify
test_forwarded
test_bad_config
if ! stop_daemon "$DAEMON_PID" 10 || [ "$EXIT_STATUS" != 0 ]; then
	fail "plexusd stops with status 0" "got: ${EXIT_STATUS:-(still running)}"
fi
pass "plexusd stops with status 0"
finish
