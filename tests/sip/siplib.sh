# Helpers of tests/sip/sip.sh (sourced after tests/lib.sh): the loopback
# ports of one run, SIPp runs (each bounded, with its own ports, its
# message and error logs in $TMP/sipp, stopped by pid only), reading what
# SIPp sent and received, raw datagrams through sipraw.py, and the daemon's
# view of calls (channels, RTP counters) and of Dial (DIALSTATUS lines the
# test dialplan appends to a file). A failed check prints the SIPp command,
# the exchange (one line per message), the unexpected messages, the end of
# the message log and the daemon's log.

SIPP_BIN=${SIPP:-sipp}
# The address plexusd listens on and SIPp phones use: 127.0.0.1 unless a
# test sets SIP_HOST (ipv6.sh: ::1). SIP_HOSTPORT is it with the SIP port,
# bracketed for IPv6.
SIP_HOST=${SIP_HOST:-127.0.0.1}
if ! command -v "$SIPP_BIN" >/dev/null 2>&1; then
	echo "Bail out! sipp is not installed (scripts/install-deps installs sip-tester)"
	exit 99
fi
SIP_SCENARIOS=$top_srcdir/tests/sip
SIP_DATA=$top_srcdir/tests/data/sip
SIPRAW=$top_srcdir/tests/sip/sipraw.py
# SIPp's working directory (tone.wav) and its logs.
SIPP_DIR=$TMP/sipp
mkdir -p "$SIPP_DIR"
DIALSTATUS_FILE=$TMP/dialstatus
declare -A SIPP_PIDS SIPP_CMDS SIPP_RC_OF
SIPP_RC=

# sip_make_tone: one second of a 440 Hz tone in G.711 mu-law, in a WAV
# container (format 7), as $SIPP_DIR/tone.wav for SIPp's rtp_stream.
sip_make_tone() {
	"$PYTHON" - "$SIPP_DIR/tone.wav" <<'PYEOF'
import math, struct, sys
def ulaw(x):
    sign = 0x80 if x < 0 else 0
    x = min(abs(x), 32635) + 0x84
    exp = max(e for e in range(8) if e == 0 or x >= (0x80 << e))
    return ~(sign | (exp << 4) | ((x >> (exp + 3)) & 0x0F)) & 0xFF
data = bytes(ulaw(int(8000 * math.sin(2 * math.pi * 440 * i / 8000))) for i in range(8000))
fmt = struct.pack("<HHIIHH", 7, 1, 8000, 8000, 1, 8)
body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
open(sys.argv[1], "wb").write(b"RIFF" + struct.pack("<I", len(body)) + body)
PYEOF
}

# ---------------------------------------------------------------- daemon

# sip_write_modules: in $D, plexus.conf (modules from $TMP/modules, log
# level 3) and modules.conf loading and requiring what a SIP call through
# the dialplan needs: chan_sip, res_registrar, pbx_lua, app_dial and the
# G.711 codecs.
sip_write_modules() {
	make_module_dir "$TMP/modules" chan_sip res_registrar pbx_lua app_dial codec_ulaw codec_alaw
	write_plexus_conf "$D" "$TMP/modules" 3
	write_modules_conf "$D" "autoload = yes" "require = chan_sip" "require = res_registrar" \
		"require = pbx_lua" "require = app_dial"
}

# sip_write_standard_config: the configuration of plexusd in $TMP/etc (D)
# on the phones of tests/data/sip (sip.conf, extensions.lua: 1001-1005,
# _1XXX dials), with the G.711 codecs, on free ports (sip_ports), and an
# empty DIALSTATUS file the dialplan appends to.
sip_write_standard_config() {
	D=$TMP/etc
	sip_ports
	sip_write_modules
	sed "s/@SIP_PORT@/$SIP_PORT/" "$SIP_DATA/sip.conf" >"$D/sip.conf"
	cp "$SIP_DATA/extensions.lua" "$SIP_DATA/lua.conf" "$D/"
	write_rtp_conf "$D" "$RTP_START" "$RTP_END"
	: >"$DIALSTATUS_FILE"
	export PX_SIP_TEST_DIALSTATUS=$DIALSTATUS_FILE
}

# sip_start_standard: sip_write_standard_config, a tone for SIPp, plexusd
# started, and the check that it listens with its 5 endpoints.
sip_start_standard() {
	sip_write_standard_config
	sip_make_tone
	start_daemon "$D"
	check_cmd "plexusd listens for SIP on 127.0.0.1:$SIP_PORT with 5 endpoints" \
		'sip show endpoints' 0 '^5 endpoints$'
}

# ---------------------------------------------------------------- ports

# sip_ports: one block of 400 free loopback ports for the run.
#   PORT_BASE        plexusd's SIP port
#   +2, +4, +6, +8   fixed phone ports: 1002, 1003 (two), 1001
#   +10 .. +99       plexusd's RTP range
#   +100 .. +399     one slot of 6 for each SIPp run: -p, -cp, -mp (+ mp+2)
sip_ports() {
	PORT_BASE=$(free_port_block 400) || {
		echo "Bail out! no block of 400 free loopback ports in 20000-29999" >&2
		exit 99
	}
	SIP_PORT=$PORT_BASE
	PORT_1002=$((PORT_BASE + 2))
	PORT_1003A=$((PORT_BASE + 4))
	PORT_1003B=$((PORT_BASE + 6))
	PORT_1001=$((PORT_BASE + 8))
	PORT_1005=$((PORT_BASE + 9))
	RTP_START=$((PORT_BASE + 10))
	RTP_END=$((PORT_BASE + 99))
	SLOT_NEXT=$((PORT_BASE + 100))
	SLOT_END=$((PORT_BASE + 400))
}

# wait_udp_bound PORT SECONDS: until something listens on SIP_HOST:PORT
# (127.0.0.1, or ::1).
wait_udp_bound() {
	local hex i table=/proc/net/udp addr=0100007F
	hex=$(printf '%04X' "$1")
	if [ "$SIP_HOST" = ::1 ]; then
		table=/proc/net/udp6
		addr=00000000000000000000000001000000
	fi
	for ((i = 0; i < $2 * 20; i++)); do
		grep -q "^ *[0-9]*: $addr:$hex " "$table" && return 0
		sleep 0.05
	done
	return 1
}

# ---------------------------------------------------------------- SIPp runs

# sipp_start NAME PORT SCENARIO ARGS...: start SIPp in the background on
# scenario tests/sip/SCENARIO against plexusd, from local port PORT ("-"
# for a fresh one); NAME names its logs $SIPP_DIR/NAME.{msg,err,out}.
# Every run: one call (-m 1), no default behaviour (-nd), 10 s at most,
# 8 s at most per expected message, and an outer timeout as well.
sipp_start() {
	local name=$1 port=$2 scen=$3 slot
	shift 3
	if [ $((SLOT_NEXT + 6)) -gt "$SLOT_END" ]; then
		echo "Bail out! the test ran out of SIPp ports" >&2
		exit 99
	fi
	slot=$SLOT_NEXT
	SLOT_NEXT=$((SLOT_NEXT + 6))
	[ "$port" = - ] && port=$slot
	rm -f "$SIPP_DIR/$name".*
	local target=$SIP_HOST:$SIP_PORT
	case $SIP_HOST in *:*) target="[$SIP_HOST]:$SIP_PORT" ;; esac
	local cmd=("$SIPP_BIN" "$target" -sf "$SIP_SCENARIOS/$scen"
		-i "$SIP_HOST" -p "$port" -cp $((slot + 1)) -mp $((slot + 2))
		-m 1 -nd -nostdin -buff_size 4194304
		-timeout 10s -timeout_error -recv_timeout 8s
		-trace_msg -message_file "$SIPP_DIR/$name.msg"
		-trace_err -error_file "$SIPP_DIR/$name.err" "$@")
	SIPP_CMDS[$name]=$(printf "%q " "${cmd[@]}")
	(cd "$SIPP_DIR" && exec timeout -k 2 20 "${cmd[@]}") </dev/null >"$SIPP_DIR/$name.out" 2>&1 &
	SIPP_PIDS[$name]=$!
	track_pid "${SIPP_PIDS[$name]}"
}

# sipp_wait NAME: wait for a SIPp run to end (at most 25 s); its exit
# status goes to SIPP_RC ("hung" when it did not end: it is then killed).
sipp_wait() {
	local pid=${SIPP_PIDS[$1]}
	if wait_exit "$pid" 25; then
		SIPP_RC=$EXIT_STATUS
	else
		kill -KILL "$pid" 2>/dev/null
		wait_exit "$pid" 2
		SIPP_RC=hung
	fi
}

# sipp_run NAME PORT SCENARIO ARGS...: sipp_start and sipp_wait.
sipp_run() {
	sipp_start "$@"
	sipp_wait "$1"
}

# sipp_exchange NAME: one line per message SIPp sent (>>>) or received (<<<).
sipp_exchange() {
	awk '/^(UDP|TCP) message sent/ { d = ">>> "; want = 1; next }
	     /^(UDP|TCP) message received/ { d = "<<< "; want = 1; next }
	     /^Unexpected .*message received/ { d = "<<< UNEXPECTED: "; want = 1; next }
	     want && NF { print d $0; want = 0 }' "$SIPP_DIR/$1.msg" 2>/dev/null
}

# sipp_report NAME...: what the runs did, for a failure report.
sipp_report() {
	local name
	for name in "$@"; do
		echo "--- SIPp run '$name' (exit status ${SIPP_RC_OF[$name]:-?}):"
		echo "    ${SIPP_CMDS[$name]}"
		echo "exchange:"
		sipp_exchange "$name" | sed 's/^/  /'
		if [ -s "$SIPP_DIR/$name.err" ]; then
			echo "SIPp error log (tail):"
			grep -v 'Failed to delete FD from epoll' "$SIPP_DIR/$name.err" | tail -n 40 | sed 's/^/  /'
		fi
		if [ -s "$SIPP_DIR/$name.msg" ]; then
			echo "message log (tail):"
			tail -n 50 "$SIPP_DIR/$name.msg" | sed 's/^/  /'
		fi
		echo "SIPp output (tail):"
		grep -v '^ *$' "$SIPP_DIR/$name.out" 2>/dev/null | tail -n 12 | sed 's/^/  /'
	done
}

# sipp_fail DESCRIPTION EXPECTED NAME...: fail with the report of the runs.
sipp_fail() {
	local what=$1 expected=$2
	shift 2
	fail "$what" "expected: $expected" "$(sipp_report "$@")"
}

# expect_sipp_ok DESCRIPTION NAME...: wait for the runs; each must succeed.
expect_sipp_ok() {
	local what=$1 name bad=
	shift
	for name in "$@"; do
		sipp_wait "$name"
		SIPP_RC_OF[$name]=$SIPP_RC
		[ "$SIPP_RC" = 0 ] || bad=1
	done
	if [ -n "$bad" ]; then
		sipp_fail "$what" "every SIPp run ends with status 0 (its scenario completed)" "$@"
	fi
}

# received_statuses NAME: the status codes of the responses a UAC received.
received_statuses() {
	sipp_exchange "$1" | sed -n 's/^<<< \(UNEXPECTED: \)\{0,1\}SIP\/2\.0 \([0-9][0-9][0-9]\).*/\2/p'
}

# final_status NAME: the last final (>= 200) status a UAC received.
final_status() {
	received_statuses "$1" | awk '$1 >= 200 { s = $1 } END { print s }'
}

# sipp_message NAME ERE: the last message in NAME's log whose first line
# matches ERE (start line, headers and body).
sipp_message() {
	awk -v re="$2" '
		/^----------------------------------------------- / { if (keep) { out = buf }; buf = ""; keep = 0; first = 0; next }
		/^(UDP|TCP) message (sent|received)/ { first = 1; next }
		first && NF { first = 0; if ($0 ~ re) keep = 1 }
		keep { buf = buf $0 "\n" }
		END { if (keep) out = buf; printf "%s", out }' "$SIPP_DIR/$1.msg" | tr -d '\r'
}

# expect_final DESCRIPTION NAME STATUS: the UAC run NAME ended with STATUS.
expect_final() {
	local got
	got=$(final_status "$2")
	if [ "$got" != "$3" ]; then
		SIPP_RC_OF[$2]=${SIPP_RC_OF[$2]:-$SIPP_RC}
		sipp_fail "$1" "final response $3, got '${got:-none}'" "$2"
	fi
}

# expect_statuses DESCRIPTION NAME ERE: the statuses the UAC run NAME
# received, in order and separated by spaces, match ERE.
expect_statuses() {
	local got
	got=$(received_statuses "$2" | tr '\n' ' ' | sed 's/ $//')
	if ! printf '%s\n' "$got" | grep -Eq -- "$3"; then
		SIPP_RC_OF[$2]=${SIPP_RC_OF[$2]:-$SIPP_RC}
		sipp_fail "$1" "responses matching $3, got '$got'" "$2"
	fi
}

# expect_header DESCRIPTION NAME START_ERE HEADER_ERE: the message of run
# NAME starting with START_ERE has a line matching HEADER_ERE.
expect_header() {
	local msg
	msg=$(sipp_message "$2" "$3")
	if ! printf '%s\n' "$msg" | grep -Eq -- "$4"; then
		sipp_fail "$1" "a message '$3' with a line matching: $4" "$2"
	fi
}

# ---------------------------------------------------------------- raw datagrams

# sip_raw ARGS...: sipraw.py to plexusd's SIP port; output in RAW_OUT.
sip_raw() {
	RAW_OUT=$(timeout 20 "$PYTHON" "$SIPRAW" "$SIP_PORT" "$@" 2>&1)
}

# raw_statuses: the status codes in RAW_OUT.
raw_statuses() {
	printf '%s\n' "$RAW_OUT" | sed -n 's/^<<< SIP\/2\.0 \([0-9][0-9][0-9]\).*/\1/p'
}

# ---------------------------------------------------------------- the daemon's view

# channel_names: the channels plexusd has now, one per line.
channel_names() {
	px "$SOCK" 'core show channels concise'
	printf '%s\n' "$PX_OUT" | grep '!' | cut -d'!' -f1
}

# check_media DESCRIPTION COUNT: within 6 s, COUNT channels are Up, each
# bridged, with at least 10 RTP packets received and 10 sent.
check_media() {
	local what=$1 want=$2 deadline names name ok seen rx tx summary
	deadline=$(($(date +%s) + 6))
	while :; do
		names=$(channel_names)
		ok=1
		seen=0
		summary=
		for name in $names; do
			seen=$((seen + 1))
			px "$SOCK" "core show channel $name"
			rx=$(printf '%s\n' "$PX_OUT" | sed -n 's/^ *RX packets: \([0-9]*\).*/\1/p')
			tx=$(printf '%s\n' "$PX_OUT" | sed -n 's/^ *TX packets: \([0-9]*\).*/\1/p')
			summary="$summary${summary:+, }$name RX ${rx:-?} TX ${tx:-?}"
			if ! printf '%s\n' "$PX_OUT" | grep -Eq '^ *State: Up' ||
				printf '%s\n' "$PX_OUT" | grep -Eq '^ *Bridged Channel: \(None\)' ||
				[ "${rx:-0}" -lt 10 ] || [ "${tx:-0}" -lt 10 ]; then
				ok=
				LAST_CHANNEL=$PX_OUT
			fi
		done
		if [ -n "$ok" ] && [ "$seen" = "$want" ]; then
			pass "$what ($summary)"
			return 0
		fi
		if [ "$(date +%s)" -ge "$deadline" ]; then
			px "$SOCK" 'core show channels verbose'
			fail "$what" "expected: $want channels Up and bridged, each with RX and TX >= 10 packets" \
				"got: $seen channels: $summary" "core show channels verbose:" "$PX_OUT" \
				"last 'core show channel' not meeting it:" "${LAST_CHANNEL:-}"
		fi
		sleep 0.2
	done
}

# expect_idle DESCRIPTION: within 5 s plexusd has no channel and no call.
expect_idle() {
	local i
	for ((i = 0; i < 50; i++)); do
		px "$SOCK" 'core show channels'
		if printf '%s\n' "$PX_OUT" | grep -q '^0 active channels$' &&
			printf '%s\n' "$PX_OUT" | grep -q '^0 active calls$'; then
			pass "$1"
			return 0
		fi
		sleep 0.1
	done
	fail "$1" "expected: '0 active channels' and '0 active calls' within 5 s" "got:" "$PX_OUT"
}

# dialstatus_mark: remember how many Dial results the dialplan wrote.
dialstatus_mark() {
	DS_MARK=$(wc -l <"$DIALSTATUS_FILE" 2>/dev/null || echo 0)
}

# expect_dialstatus DESCRIPTION "NUMBER STATUS": within 5 s of the mark,
# the dialplan wrote exactly that line (and nothing else).
expect_dialstatus() {
	local i got
	for ((i = 0; i < 50; i++)); do
		got=$(tail -n +$((DS_MARK + 1)) "$DIALSTATUS_FILE" 2>/dev/null)
		[ -n "$got" ] && break
		sleep 0.1
	done
	if [ "$got" != "$2" ]; then
		fail "$1" "expected the dialplan to log '$2' after Dial" "got: '${got:-nothing}'"
	fi
	pass "$1"
}

# endpoint_contacts NAME: 'sip show endpoint NAME' into PX_OUT; the number
# of contacts into CONTACTS.
endpoint_contacts() {
	px "$SOCK" "sip show endpoint $1"
	CONTACTS=$(printf '%s\n' "$PX_OUT" | sed -n 's/^ *Contacts: *\([0-9]*\)$/\1/p')
}

# expect_contacts DESCRIPTION NAME COUNT [ERE]: the endpoint has COUNT
# contacts (and a line matching ERE).
expect_contacts() {
	endpoint_contacts "$2"
	if [ "$PX_RC" != 0 ] || [ "$CONTACTS" != "$3" ]; then
		fail "$1" "expected 'sip show endpoint $2' to show 'Contacts:      $3'" \
			"got (exit status $PX_RC):" "$PX_OUT"
	fi
	if [ $# -ge 4 ]; then
		expect_output "$1" "$4"
	fi
	pass "$1"
}

# ---------------------------------------------------------------- carriers

# carrier_start NAME IP PORT SCENARIO SECONDS ARGS...: SIPp as a carrier
# on IP:PORT (its RTP on PORT+2), toward plexusd, for at most SECONDS.
carrier_start() {
	local name=$1 ip=$2 port=$3 scen=$4 secs=$5
	shift 5
	rm -f "$SIPP_DIR/$name".*
	local cmd=("$SIPP_BIN" "127.0.0.1:$SIP_PORT" -sf "$SIP_SCENARIOS/$scen"
		-i "$ip" -p "$port" -mp $((port + 2)) -m 1 -nd -nostdin -buff_size 4194304
		-timeout "${secs}s" -timeout_error -recv_timeout "${secs}s"
		-trace_msg -message_file "$SIPP_DIR/$name.msg"
		-trace_err -error_file "$SIPP_DIR/$name.err" "$@")
	SIPP_CMDS[$name]=$(printf "%q " "${cmd[@]}")
	(cd "$SIPP_DIR" && exec timeout -k 2 $((secs + 10)) "${cmd[@]}") </dev/null >"$SIPP_DIR/$name.out" 2>&1 &
	SIPP_PIDS[$name]=$!
	track_pid "${SIPP_PIDS[$name]}"
	# A carrier that calls may be done before its socket is seen: its
	# result is checked by whoever waits for it.
	local i
	for ((i = 0; i < 10; i++)); do
		wait_udp_bound_on "$ip" "$port" 1 && return 0
		is_running "${SIPP_PIDS[$name]}" || return 0
	done
	fail "SIPp '$name' listens on $ip:$port" "got nothing bound within 10 s" "$(sipp_report "$name")"
}

# wait_udp_bound_on IP PORT SECONDS: until something listens on IP:PORT (UDP).
wait_udp_bound_on() {
	local hex i a b c d
	IFS=. read -r a b c d <<<"$1"
	hex=$(printf '%02X%02X%02X%02X:%04X' "$d" "$c" "$b" "$a" "$2")
	for ((i = 0; i < $3 * 20; i++)); do
		grep -q "^ *[0-9]*: $hex " /proc/net/udp && return 0
		sleep 0.05
	done
	return 1
}

# carrier_wait NAME SECONDS: like sipp_wait, with a longer bound.
carrier_wait() {
	local pid=${SIPP_PIDS[$1]}
	if wait_exit "$pid" "$2"; then
		SIPP_RC=$EXIT_STATUS
	else
		kill -KILL "$pid" 2>/dev/null
		wait_exit "$pid" 2
		SIPP_RC=hung
	fi
	SIPP_RC_OF[$1]=$SIPP_RC
}

# expect_carrier_ok DESCRIPTION NAME SECONDS
expect_carrier_ok() {
	carrier_wait "$2" "$3"
	[ "$SIPP_RC" = 0 ] || sipp_fail "$1" "the carrier's scenario completes (status 0)" "$2"
	pass "$1"
}

# expect_clean_stop: plexusd stops on SIGTERM with status 0, and its log
# and stderr (in $D, the test's configuration directory) hold no error and
# no sanitizer report (the last checks of a test).
expect_clean_stop() {
	if ! stop_daemon "$DAEMON_PID" 20 || [ "$EXIT_STATUS" != 0 ]; then
		fail "plexusd stops on SIGTERM with status 0 at the end" \
			"got: status ${EXIT_STATUS:-none (still running)}"
	fi
	pass "plexusd stops on SIGTERM with status 0 at the end"
	local bad
	bad=$(grep -E '^\[[^]]*\] ERROR\[' "$D/plexus.log"; grep -E 'Sanitizer|runtime error:' "$D/stderr")
	if [ -n "$bad" ]; then
		fail "plexusd logged no error and no sanitizer report" "got:" "$bad"
	fi
	pass "plexusd logged no error and no sanitizer report"
}

