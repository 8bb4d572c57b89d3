#!/bin/bash
# chan_sip over IPv6 (tests/sip/ipv6.sh): plexusd bound to [::1] only.
# SIPp phones register over IPv6, on UDP and TCP (challenge, then 200; the
# binding keeps the IPv6 contact and source), a wrong password is refused the same way as
# over IPv4, a call between two IPv6 phones goes through the Lua dialplan
# with RTP relayed both ways on IPv6 sockets (SDP with c=IN IP6), BYE from
# the caller, and nothing is left afterwards. SIPp's [local_ip] and
# [media_ip] follow its -i ::1.

. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
SIP_HOST=::1
. "$top_srcdir/tests/sip/siplib.sh"

SECRET_1001=test-secret-1001
SECRET_1002=test-secret-1002

setup() {
	if ! "$PYTHON" -c 'import socket; s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind(("::1", 0))' 2>/dev/null; then
		# Not a failure of plexusd: the machine (a container without
		# IPv6) has no ::1. Reported as skipped, with the reason.
		echo "1..0 # SKIP this machine has no IPv6 loopback (::1) to test on"
		exit 77
	fi
	D=$TMP/etc
	sip_ports
	sip_write_modules
	sed -e "s/^bind = .*/bind = [::1]:$SIP_PORT/" -e "s/^transports = .*/transports = udp, tcp/" \
		"$SIP_DATA/sip.conf" >"$D/sip.conf"
	cp "$SIP_DATA/extensions.lua" "$SIP_DATA/lua.conf" "$D/"
	write_rtp_conf "$D" "$RTP_START" "$RTP_END"
	sip_make_tone
	: >"$DIALSTATUS_FILE"
	export PX_SIP_TEST_DIALSTATUS=$DIALSTATUS_FILE
	start_daemon "$D"
	check_cmd "plexusd starts with chan_sip bound to [::1]:$SIP_PORT" 'sip show endpoints' 0 '^5 endpoints$'
	if ! wait_udp_bound "$SIP_PORT" 5; then
		fail "plexusd listens on UDP [::1]:$SIP_PORT" "got: nothing in /proc/net/udp6"
	fi
	pass "plexusd listens on UDP [::1]:$SIP_PORT"
}

register() {
	sipp_run "$1" "$2" "${6:-register.xml}" -s "$3" -au "$3" -ap "$4" -key expires "$5"
	SIPP_RC_OF[$1]=$SIPP_RC
}

test_register() {
	register reg_1001 "$PORT_1001" 1001 "$SECRET_1001" 3600
	if [ "$SIPP_RC" != 0 ] || [ "$(received_statuses reg_1001 | tr '\n' ' ')" != "401 200 " ]; then
		sipp_fail "REGISTER over IPv6: 401, then 200" "401 200" reg_1001
	fi
	pass "REGISTER over IPv6: 401, then 200 with the password"
	expect_header "the 200 over IPv6 carries the IPv6 Contact with expires=3600" \
		reg_1001 '^SIP/2.0 200' "^Contact: <sip:1001@\[::1\]:$PORT_1001>;expires=(3599|3600)$"
	expect_contacts "'sip show endpoint 1001' shows the IPv6 contact and source" 1001 1 \
		"sip:1001@\[::1\]:$PORT_1001 via udp:\[::1\]:$PORT_1001"
	register reg_wrong - 1001 wrong-password 3600 register_fail.xml
	if [ "$SIPP_RC" != 0 ] || [ "$(final_status reg_wrong)" != 403 ]; then
		sipp_fail "REGISTER over IPv6 with a wrong password: 401, then 403" "401, then 403" reg_wrong
	fi
	pass "REGISTER over IPv6 with a wrong password: 401, then 403"
	sipp_run reg_tcp - register.xml -t t1 -s 1002 -au 1002 -ap "$SECRET_1002" -key expires 3600
	if [ "$SIPP_RC" != 0 ]; then
		sipp_fail "1002 registers over TCP on IPv6" "401, then 200" reg_tcp
	fi
	expect_contacts "'sip show endpoint 1002' shows the binding made over TCP on IPv6" 1002 1 \
		"via tcp:\[::1\]:"
	register reg_1002 "$PORT_1002" 1002 "$SECRET_1002" 3600
	if [ "$SIPP_RC" != 0 ]; then
		sipp_fail "1002 registers over IPv6" "401, then 200" reg_1002
	fi
	expect_contacts "1002 is registered at [::1]:$PORT_1002" 1002 1 "sip:1002@\[::1\]:$PORT_1002 via"
}

# received_connection_lines NAME: the SDP c= lines of the messages SIPp
# NAME received.
received_connection_lines() {
	awk '/^(UDP|TCP) message sent/ { rx = 0 } /^(UDP|TCP) message received/ { rx = 1 }
	     rx && /^c=/ { sub(/\r$/, ""); print }' "$SIPP_DIR/$1.msg"
}

start_phone() {
	sipp_start "$@"
	if ! wait_udp_bound "$2" 5; then
		SIPP_RC_OF[$1]=?
		sipp_fail "SIPp phone $1 listens on [::1]:$2" "a socket on [::1]:$2 within 5 s" "$1"
	fi
}

test_call() {
	start_phone uas_answer "$PORT_1002" uas_answer.xml -s 1002 -d 200
	sipp_start call_a - uac_call.xml -s 1002 -key caller 1001 -au 1001 -ap "$SECRET_1001" -d 4000
	check_media "call 1001 -> 1002 over IPv6 is up: RTP flows both ways through plexusd" 2
	expect_sipp_ok "call 1001 -> 1002 over IPv6: 401/ACK, INVITE with credentials, 100, 180, 200, ACK; BYE, 200" \
		call_a uas_answer
	expect_header "plexusd's INVITE to 1002 offers its IPv6 media address" \
		uas_answer '^INVITE ' '^c=IN IP6 ::1$'
	pass "plexusd's INVITE to 1002 offers its IPv6 media address (c=IN IP6 ::1)"
	local conn
	conn=$(received_connection_lines call_a)
	if [ "$conn" != "c=IN IP6 ::1" ]; then
		sipp_fail "plexusd's answer to 1001 carries its IPv6 media address" \
			"one SDP received, with c=IN IP6 ::1; got '$conn'" call_a
	fi
	pass "plexusd's answer to 1001 carries its IPv6 media address (c=IN IP6 ::1)"
	expect_header "plexusd's INVITE to 1002 goes to its IPv6 contact" \
		uas_answer '^INVITE ' "^INVITE sip:1002@\[::1\]:$PORT_1002"
	pass "plexusd's INVITE to 1002 goes to its IPv6 contact sip:1002@[::1]:$PORT_1002"
	expect_idle "after the caller's BYE no channel is left"
}


setup
test_register
test_call
expect_clean_stop
finish
