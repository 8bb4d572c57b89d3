#!/bin/bash
# NAT addressing: a real plexusd configured as if behind NAT
# (external_signaling_address, external_media_address, local_net;
# tests/data/sip_nat), with carriers played by SIPp on 127.0.0.3 (trunkIn,
# inside local_net) and 127.0.0.4 (trunkOut, outside), and phones on
# 127.0.0.1 (inside). What is checked is what each peer is told:
#
#   - trunkOut's REGISTER and a call out through it carry the external
#     signalling address in Contact and the external media address in the
#     SDP (c= and o=), while the caller (a phone, inside) gets the real
#     ones in the same call;
#   - a call out through trunkIn carries the real addresses;
#   - a call in from trunkOut gets the external addresses in the 200's
#     Contact and SDP, while the phone it rings gets the real ones;
#   - Via keeps the real address (rport/received do the rest, as
#     docs/architecture.md says).
#
# No packet goes to the external addresses: the SIPp carriers send RTP
# nowhere and every request to plexusd's own address. Every check prints
# "ok N".

. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/sip/siplib.sh"

NAT_DATA=$top_srcdir/tests/data/sip_nat
SECRET_1001=test-secret-1001
SECRET_1002=test-secret-1002
EXT_SIG='198\.51\.100\.10:5070'
EXT_RTP='198\.51\.100\.20'

# answer_to NAME METHOD: the last 200 of run NAME answering METHOD (its CSeq says so).
answer_to() {
	awk -v m="$2" '
		/^----------------------------------------------- / { if (keep && ok) out = buf; buf = ""; keep = 0; ok = 0; first = 0; next }
		/^(UDP|TCP) message (sent|received)/ { first = 1; next }
		first && NF { first = 0; if ($0 ~ /^SIP\/2\.0 200 /) keep = 1 }
		keep { buf = buf $0 "\n"; if ($0 ~ ("^CSeq: *[0-9]+ " m)) ok = 1 }
		END { if (keep && ok) out = buf; printf "%s", out }' "$SIPP_DIR/$1.msg" | tr -d '\r'
}

# check_msg DESCRIPTION NAME WHICH ERE [no]: the message WHICH of run NAME
# (a start-line ERE, or "200-INVITE" for the answer to the INVITE) has a
# line matching ERE (with "no": has none).
check_msg() {
	local msg
	if [ "$3" = 200-INVITE ]; then
		msg=$(answer_to "$2" INVITE)
	else
		msg=$(sipp_message "$2" "$3")
	fi
	if [ -z "$msg" ]; then
		sipp_fail "$1" "a message $3" "$2"
	fi
	if [ "${5:-}" = no ]; then
		printf '%s\n' "$msg" | grep -Eq -- "$4" && sipp_fail "$1" "in message $3, no line matching: $4" "$2"
	else
		printf '%s\n' "$msg" | grep -Eq -- "$4" || sipp_fail "$1" "in message $3, a line matching: $4" "$2"
	fi
	pass "$1"
}

setup() {
	D=$TMP/etc
	sip_ports
	PORT_IN=$((PORT_BASE + 300))
	PORT_OUT=$((PORT_BASE + 310))
	SLOT_END=$((PORT_BASE + 300))
	sip_write_modules
	sed -e "s/@SIP_PORT@/$SIP_PORT/" -e "s/@PORT_IN@/$PORT_IN/" -e "s/@PORT_OUT@/$PORT_OUT/" \
		"$NAT_DATA/sip.conf" >"$D/sip.conf"
	cp "$NAT_DATA/extensions.lua" "$NAT_DATA/lua.conf" "$D/"
	write_rtp_conf "$D" "$RTP_START" "$RTP_END"
	sip_make_tone
	carrier_start reg_out 127.0.0.4 "$PORT_OUT" carrier_register_once.xml 15
	start_daemon "$D"
	check_cmd "sip show settings: the external addresses and local networks" 'sip show settings' 0 \
		'^ Local nets: +127\.0\.0\.1/32, 127\.0\.0\.3/32$'
	expect_output "sip show settings: external SIP address" "^ External SIP: +$EXT_SIG$"
	expect_output "sip show settings: external RTP address" "^ External RTP: +$EXT_RTP$"
	sipp_run reg_1001 "$PORT_1001" register.xml -s 1001 -au 1001 -ap "$SECRET_1001" -key expires 3600
	[ "$SIPP_RC" = 0 ] || sipp_fail "1001 registers" "status 0" reg_1001
	sipp_run reg_1002 "$PORT_1002" register.xml -s 1002 -au 1002 -ap "$SECRET_1002" -key expires 3600
	[ "$SIPP_RC" = 0 ] || sipp_fail "1002 registers" "status 0" reg_1002
	pass "phones 1001 and 1002 registered"
}

test_register_outside() {
	expect_carrier_ok "trunkOut registers with its carrier (outside local_net)" reg_out 10
	check_msg "trunkOut's REGISTER: Contact has the external signalling address" reg_out '^REGISTER ' \
		"^Contact: <sip:5553000@$EXT_SIG>"
	check_msg "trunkOut's REGISTER: Via keeps the real address (rport)" reg_out '^REGISTER ' \
		"^Via: SIP/2\.0/UDP 127\.0\.0\.1:$SIP_PORT;.*rport"
}

test_out_outside() {
	carrier_start out 127.0.0.4 "$PORT_OUT" carrier_uas_nat.xml 15 -s carrier -d 500
	sipp_start call_out - uac_call.xml -s 915551234567 -key caller 1001 -au 1001 -ap "$SECRET_1001" -d 1000
	expect_sipp_ok "1001 calls out through trunkOut: answered, BYE" call_out
	pass "1001 calls out through trunkOut: answered, BYE"
	expect_carrier_ok "trunkOut's carrier answered and got the BYE" out 10
	check_msg "INVITE to trunkOut: Contact has the external signalling address" out '^INVITE ' \
		"^Contact: <sip:acct-out@$EXT_SIG>"
	check_msg "INVITE to trunkOut: SDP c= has the external media address" out '^INVITE ' \
		"^c=IN IP4 $EXT_RTP$"
	check_msg "INVITE to trunkOut: SDP o= has the external media address" out '^INVITE ' \
		"^o=plexus [0-9]+ [0-9]+ IN IP4 $EXT_RTP$"
	check_msg "INVITE to trunkOut: no 127.0.0.1 in Contact or SDP" out '^INVITE ' \
		'^(Contact: .*127\.0\.0\.1|c=IN IP4 127\.0\.0\.1|o=.* 127\.0\.0\.1$)' no
	check_msg "INVITE to trunkOut: Via keeps the real address (rport)" out '^INVITE ' \
		"^Via: SIP/2\.0/UDP 127\.0\.0\.1:$SIP_PORT;"
	check_msg "the caller, inside local_net, gets the real media address in the same call" call_out \
		200-INVITE '^c=IN IP4 127\.0\.0\.1$'
	check_msg "the caller gets no external address" call_out 200-INVITE '198\.51\.100\.' no
	expect_idle "after the call no channel is left"
}

test_out_inside() {
	carrier_start in 127.0.0.3 "$PORT_IN" carrier_uas_nat.xml 15 -s carrier -d 500
	sipp_start call_in - uac_call.xml -s 015551234567 -key caller 1001 -au 1001 -ap "$SECRET_1001" -d 1000
	expect_sipp_ok "1001 calls out through trunkIn: answered, BYE" call_in
	pass "1001 calls out through trunkIn: answered, BYE"
	expect_carrier_ok "trunkIn's carrier answered and got the BYE" in 10
	check_msg "INVITE to trunkIn (inside local_net): SDP c= is the real address" in '^INVITE ' \
		'^c=IN IP4 127\.0\.0\.1$'
	check_msg "INVITE to trunkIn: no external address anywhere" in '^INVITE ' '198\.51\.100\.' no
	check_msg "INVITE to trunkIn: Contact is the real address" in '^INVITE ' \
		"^Contact: <sip:[^>]*127\.0\.0\.1:$SIP_PORT"
	expect_idle "after the call no channel is left"
}

test_in_outside() {
	sipp_start phone_1002 "$PORT_1002" uas_answer.xml -s 1002
	carrier_start did 127.0.0.4 "$PORT_OUT" carrier_uac_nat.xml 15 -s 5551000 -d 1000
	expect_carrier_ok "a DID call from trunkOut is answered" did 20
	expect_sipp_ok "the phone 1002 answered it" phone_1002
	pass "the DID call from trunkOut reached 1002"
	check_msg "the 200 to trunkOut: Contact has the external signalling address" did 200-INVITE \
		"^Contact: <sip:5551000@$EXT_SIG>"
	check_msg "the 200 to trunkOut: SDP c= has the external media address" did 200-INVITE \
		"^c=IN IP4 $EXT_RTP$"
	check_msg "the 200 to trunkOut: no 127.0.0.1 in Contact or SDP" did 200-INVITE \
		'^(Contact: .*127\.0\.0\.1|c=IN IP4 127\.0\.0\.1)' no
	check_msg "the INVITE to the phone (inside): SDP c= is the real address" phone_1002 '^INVITE ' \
		'^c=IN IP4 127\.0\.0\.1$'
	check_msg "the INVITE to the phone: no external address" phone_1002 '^INVITE ' '198\.51\.100\.' no
	expect_idle "after the DID call no channel is left"
}

setup
test_register_outside
test_out_outside
test_out_inside
test_in_outside
if ! stop_daemon "$DAEMON_PID" 10 || [ "$EXIT_STATUS" != 0 ]; then
	fail "plexusd stops with status 0" "got: ${EXIT_STATUS:-(still running)}"
fi
pass "plexusd stops with status 0"
finish
