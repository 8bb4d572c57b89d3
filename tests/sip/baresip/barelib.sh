# Helpers of tests/sip/baresip.sh (sourced after tests/lib.sh): the
# loopback ports of one run, baresip phones (each with its own config
# folder under $TMP, stdin from /dev/null, bounded by timeout, driven by
# ctrl.py through its ctrl_tcp module, stopped by pid), SIPp runs, the
# daemon's view of registrations and calls, and failure reports with the
# phones' and SIPp's logs.

BARESIP_BIN=${BARESIP:-baresip}
BARESIP_MODULES=${BARESIP_MODULES:-/usr/lib/baresip/modules}
SIPP_BIN=${SIPP:-sipp}
BARE_DIR=$top_srcdir/tests/sip/baresip
CTRL=$BARE_DIR/ctrl.py
WAVTOOL=$BARE_DIR/wavtool.py

# Waits are bounded in time, not in rounds (a round's commands take time
# too): "until_deadline SECONDS" starts one, "before_deadline" is true
# until it has passed.
now_ms() {
	local t=${EPOCHREALTIME//[.,]/}
	echo $((t / 1000))
}
until_deadline() {
	DEADLINE=$(($(now_ms) + $1 * 1000))
}
before_deadline() {
	[ "$(now_ms)" -lt "$DEADLINE" ]
}

# The phones started, by account, and what they are.
declare -A PHONE_PID PHONE_DIR PHONE_CTRL
PHONES=()
# SIPp runs, by name.
declare -A SIPP_PID SIPP_CMD
SIPPS=()

# bare_requirements: a hard error (99) when baresip, its modules or SIPp are
# missing: scripts/install-deps installs them, so a missing one is a broken
# set-up, never a reason to skip.
bare_missing() {
	echo "Bail out! $* (scripts/install-deps installs it: baresip-core, sip-tester)"
	exit 99
}
bare_requirements() {
	local m
	command -v "$BARESIP_BIN" >/dev/null 2>&1 ||
		bare_missing "baresip (Debian package baresip-core) is not installed"
	for m in g711 aufile sndfile account menu ctrl_tcp; do
		[ -e "$BARESIP_MODULES/$m.so" ] ||
			bare_missing "baresip module $BARESIP_MODULES/$m.so is missing (Debian package baresip-core)"
	done
	command -v "$SIPP_BIN" >/dev/null 2>&1 ||
		bare_missing "sipp (Debian package sip-tester) is not installed"
}

# ---------------------------------------------------------------- ports

# bare_ports: one block of 80 free loopback ports (UDP and TCP) for the run,
# in 30000-32699 (below the ephemeral range), claimed as every test claims
# its block (free_port_block, tests/lib.sh).
#   SIP_PORT          plexusd's SIP
#   +2 (+3)  +4 (+5)  phones 1001 and 1003 (baresip also takes SIP+1 on TCP)
#   +6, +7, +9        SIPp 1002: SIP, control ports of its two runs
#   +10, +11          ctrl_tcp of 1001 and 1003
#   +12 .. +19        SIPp's media (-mp; -rtp_echo also uses +2)
#   +20 .. +59        plexusd's RTP
#   +60 .. +69        1001's RTP     +70 .. +79  1003's RTP
bare_ports() {
	local base
	base=$(free_port_block 80 30000 32699) || {
		echo "Bail out! no block of 80 free loopback ports in 30000-32699" >&2
		exit 99
	}
	SIP_PORT=$base
	PORT_1001=$((base + 2))
	PORT_1003=$((base + 4))
	PORT_1002=$((base + 6))
	SIPP_CP=$((base + 7))
	SIPP_CP2=$((base + 9))
	CTRL_1001=$((base + 10))
	CTRL_1003=$((base + 11))
	SIPP_MP=$((base + 12))
	RTP_START=$((base + 20))
	RTP_END=$((base + 59))
	RTP_1001=$((base + 60))
	RTP_1003=$((base + 70))
}

# wait_udp_bound PORT SECONDS: until something listens on 127.0.0.1:PORT/udp.
wait_udp_bound() {
	local hex
	hex=$(printf '%04X' "$1")
	until_deadline "$2"
	while before_deadline; do
		grep -q "^ *[0-9]*: 0100007F:$hex " /proc/net/udp && return 0
		sleep 0.05
	done
	return 1
}

# ---------------------------------------------------------------- reports

# phone_log ACCOUNT [LINES]: the end of a phone's output, without colours
# and without its once-a-second status line.
phone_log() {
	local f=${PHONE_DIR[$1]}/baresip.log
	[ -e "$f" ] || return 0
	tr '\r' '\n' <"$f" | sed 's/\x1b\[[0-9;]*m//g' |
		grep -Ev '^\[[0-9]+:[0-9]{2}:[0-9]{2}\] audio=|^$' | tail -n "${2:-25}"
}

# phones_report: every phone's log tail and ctrl_tcp events, SIPp's logs,
# and more of the daemon's log (its SIP messages) than fail shows.
phones_report() {
	local a n
	for a in "${PHONES[@]}"; do
		echo "--- baresip $a (pid ${PHONE_PID[$a]}, $(is_running "${PHONE_PID[$a]}" && echo running || echo gone)), last lines of its output:"
		phone_log "$a" 25 | sed 's/^/  /'
		if [ -s "${PHONE_DIR[$a]}/ctrl.log" ]; then
			echo "--- baresip $a, its last ctrl_tcp events:"
			tail -n 8 "${PHONE_DIR[$a]}/ctrl.log" | sed 's/^/  /'
		fi
	done
	for n in "${SIPPS[@]}"; do
		echo "--- SIPp run '$n': ${SIPP_CMD[$n]}"
		if [ -s "$TMP/sipp/$n.err" ]; then
			echo "  error log (tail):"
			grep -v 'Failed to delete FD from epoll' "$TMP/sipp/$n.err" | tail -n 20 | sed 's/^/    /'
		fi
		if [ -s "$TMP/sipp/$n.msg" ]; then
			echo "  message log (tail):"
			tail -n 30 "$TMP/sipp/$n.msg" | sed 's/^/    /'
		fi
		grep -v '^ *$' "$TMP/sipp/$n.out" 2>/dev/null | tail -n 6 | sed 's/^/  out: /'
	done
	if [ -n "$DAEMON_DIR" ] && [ -s "$DAEMON_DIR/plexus.log" ]; then
		echo "--- plexus.log with its SIP messages ('sip set debug on'; sofia's lines joined; no console lines), last 150 lines:"
		sip_trace "$DAEMON_DIR/plexus.log" | tail -n 150 | sed 's/^/  /'
	fi
}

# bare_debug_conf DIR: the daemon in DIR logs debug messages too: with "sip
# set debug on" chan_sip hands sofia-sip's message log to plexusd's log,
# at the debug level (plexus.conf written by write_plexus_conf).
bare_debug_conf() {
	sed -i -e 's/^debug = .*/debug = 3/' -e '/^file_levels = /{/debug/!s/$/,debug/}' "$1/plexus.conf"
}

# sip_trace LOG: the daemon's log with sofia-sip's fragments (one log line
# for each piece of a SIP message) shown as the message's own lines.
sip_trace() {
	sed -e 's/\x1b\[[0-9;]*m//g' "$1" | awk '
		/ console_server\.c:[0-9]+: [Cc]onsole / { next }
		/ sofia: *$/ { next }
		/ sofia: / { sub(/^.* sofia: /, "    "); print; next }
		{ print }'
}

# bare_fail DESCRIPTION DETAIL...: fail with the phones' report.
bare_fail() {
	local what=$1
	shift
	fail "$what" "$@" "$(phones_report)"
}

# ---------------------------------------------------------------- phones

# phone_start ACCOUNT PASSWORD SIP_PORT CTRL_PORT RTP_FIRST WAV [ADDR_PARAMS]:
# write the phone's config folder $TMP/phone-ACCOUNT (accounts: ACCOUNT at
# plexusd with its password, registering for an hour, ADDR_PARAMS such as
# ";answermode=auto" appended; audio source: the WAV through aufile; no
# audio player; sndfile records what it sends and decodes in rec/) and start
# baresip on it in the background, bounded by timeout.
phone_start() {
	local acct=$1 pass=$2 port=$3 ctrl=$4 rtp=$5 wav=$6 params=${7:-}
	local dir=$TMP/phone-$acct
	mkdir -p "$dir/rec"
	cat >"$dir/config" <<EOF
# baresip config written by $(basename "$0")
poll_method		epoll
sip_listen		127.0.0.1:$port
net_interface		127.0.0.1
rtp_ports		$rtp-$((rtp + 9))
call_local_timeout	20
call_max_calls		2
audio_source		aufile,$wav
audio_level		no
rtp_stats		no
module_path		$BARESIP_MODULES
module			g711.so
module			aufile.so
module			sndfile.so
module_app		account.so
module_app		menu.so
module_app		ctrl_tcp.so
ctrl_tcp_listen		127.0.0.1:$ctrl
snd_path		$dir/rec
EOF
	echo "\"Phone $acct\" <sip:$acct@127.0.0.1:$SIP_PORT;transport=udp>;auth_pass=$pass;regint=3600$params" \
		>"$dir/accounts"
	PHONE_DIR[$acct]=$dir
	PHONE_CTRL[$acct]=$ctrl
	PHONES+=("$acct")
	timeout -k 2 60 "$BARESIP_BIN" -f "$dir" </dev/null >"$dir/baresip.log" 2>&1 &
	PHONE_PID[$acct]=$!
	track_pid "${PHONE_PID[$acct]}"
}

# phone_cmd ACCOUNT COMMAND [PARAMS]: a ctrl_tcp command; the response's
# data in CTRL_OUT, ctrl.py's status in CTRL_RC (0: ok); events seen on the
# way go to the phone's ctrl.log.
phone_cmd() {
	local acct=$1
	shift
	CTRL_OUT=$(timeout 10 "$PYTHON" "$CTRL" "${PHONE_CTRL[$acct]}" "$@" 2>>"${PHONE_DIR[$acct]}/ctrl.log")
	CTRL_RC=$?
}

# wait_phone_log ACCOUNT ERE SECONDS: until the phone's output has a line
# matching ERE.
wait_phone_log() {
	until_deadline "$3"
	while before_deadline; do
		phone_log "$1" 100000 | grep -Eq -- "$2" && return 0
		sleep 0.1
	done
	phone_log "$1" 100000 | grep -Eq -- "$2"
}

# phone_stop ACCOUNT SECONDS: SIGTERM to the phone (its timeout wrapper
# passes it on; baresip unregisters, then ends) and wait for it; 1 when it
# did not end in time.
phone_stop() {
	kill -TERM "${PHONE_PID[$1]}" 2>/dev/null
	wait_exit "${PHONE_PID[$1]}" "$2"
}

# phone_kill ACCOUNT: SIGKILL to baresip itself (a SIGKILL to its timeout
# wrapper would leave it running) and to the wrapper.
phone_kill() {
	local wrapper=${PHONE_PID[$1]} child
	for child in $(pgrep -P "$wrapper" 2>/dev/null); do
		is_ours "$child" && kill -KILL "$child" 2>/dev/null
	done
	is_ours "$wrapper" && kill -KILL "$wrapper" 2>/dev/null
	wait_exit "$wrapper" 2
}

# bare_cleanup: at exit, stop the phones while plexusd still answers their
# un-REGISTER (without it baresip waits for a transaction timeout), then
# tests/lib.sh's cleanup stops everything else and removes $TMP.
bare_cleanup() {
	local a stopping=()
	for a in "${PHONES[@]}"; do
		if is_ours "${PHONE_PID[$a]}"; then
			kill -TERM "${PHONE_PID[$a]}" 2>/dev/null
			stopping+=("$a")
		fi
	done
	for a in "${stopping[@]}"; do
		if ! wait_exit "${PHONE_PID[$a]}" 5; then
			echo "# baresip $a did not stop on SIGTERM; killing it" >&2
			phone_kill "$a"
		fi
	done
	cleanup
}
trap bare_cleanup EXIT

# recording ACCOUNT WHAT: the newest sndfile recording of the phone (WHAT:
# dec, what it heard; enc, what it sent).
recording() {
	ls -t "${PHONE_DIR[$1]}"/rec/dump-*-"$2".wav 2>/dev/null | head -n 1
}

# check_heard DESCRIPTION ACCOUNT HZ MARK: within 5 s of the end of a call
# (baresip closes its recordings then), the phone's newest recording of what
# it decoded, newer than the file MARK, holds a tone of HZ (within 10 %) at
# an RMS level above 1000 (the tones are sent at 5657).
check_heard() {
	local what=$1 acct=$2 hz=$3 mark=$4 f st rms got
	until_deadline 5
	while before_deadline; do
		f=$(recording "$acct" dec)
		if [ -n "$f" ] && [ "$f" -nt "$mark" ] && st=$("$PYTHON" "$WAVTOOL" stat "$f" 2>&1); then
			rms=$(printf '%s\n' "$st" | sed -n 's/.* rms=\([0-9]*\).*/\1/p')
			got=$(printf '%s\n' "$st" | sed -n 's/.* hz=\([0-9]*\).*/\1/p')
			if [ "${rms:-0}" -gt 1000 ] && [ "$((got * 10))" -ge $((hz * 9)) ] &&
				[ "$((got * 10))" -le $((hz * 11)) ]; then
				pass "$what ($(basename "$f"): $st)"
				return 0
			fi
		fi
		sleep 0.1
	done
	bare_fail "$what" "expected: a recording rec/dump-*-dec.wav of $acct, newer than the call's start," \
		"with RMS > 1000 and a tone of $hz Hz (+-10 %)" "got: ${f:-no recording}: ${st:-}"
}

# ---------------------------------------------------------------- SIPp

# sipp_start NAME PORT CONTROL_PORT SCENARIO ARGS...: SIPp in the background
# on tests/sip/baresip/SCENARIO against plexusd from 127.0.0.1:PORT; one
# call, no default behaviour, 20 s at most; logs in $TMP/sipp/NAME.*.
sipp_start() {
	local name=$1 port=$2 cp=$3 scen=$4
	shift 4
	mkdir -p "$TMP/sipp"
	local cmd=("$SIPP_BIN" "127.0.0.1:$SIP_PORT" -sf "$BARE_DIR/$scen" -i 127.0.0.1
		-p "$port" -cp "$cp" -mp "$SIPP_MP" -m 1 -nd -nostdin
		-timeout 20s -timeout_error -recv_timeout 15s
		-trace_msg -message_file "$TMP/sipp/$name.msg"
		-trace_err -error_file "$TMP/sipp/$name.err" "$@")
	SIPP_CMD[$name]="${cmd[*]}"
	SIPPS+=("$name")
	(cd "$TMP/sipp" && exec timeout -k 2 25 "${cmd[@]}") </dev/null >"$TMP/sipp/$name.out" 2>&1 &
	SIPP_PID[$name]=$!
	track_pid "${SIPP_PID[$name]}"
}

# sipp_wait NAME SECONDS: wait for the run to end; its status in SIPP_RC
# ("hung" when it did not end in time: it is then killed).
sipp_wait() {
	if wait_exit "${SIPP_PID[$1]}" "$2"; then
		SIPP_RC=$EXIT_STATUS
	else
		kill -KILL "${SIPP_PID[$1]}" 2>/dev/null
		wait_exit "${SIPP_PID[$1]}" 2
		SIPP_RC=hung
	fi
}

# ---------------------------------------------------------------- the daemon's view

# expect_registered DESCRIPTION ACCOUNT PORT UA_ERE: within 10 s 'sip show
# endpoint ACCOUNT' lists one contact, at 127.0.0.1:PORT, whose user agent
# matches UA_ERE.
expect_registered() {
	local what=$1 acct=$2 port=$3 ua=$4
	local re="^ +sip:$acct[^ ]*@127\.0\.0\.1:$port[^ ]* via udp:127\.0\.0\.1:$port, expires in [0-9]+s, $ua"
	until_deadline 10
	while before_deadline; do
		px "$SOCK" "sip show endpoint $acct"
		if printf '%s\n' "$PX_OUT" | grep -Eq '^ *Contacts: +1$' &&
			printf '%s\n' "$PX_OUT" | grep -Eq -- "$re"; then
			pass "$what ($(printf '%s\n' "$PX_OUT" | grep -E -- "$re" | sed 's/^ *//'))"
			return 0
		fi
		sleep 0.1
	done
	bare_fail "$what" "expected within 10 s: 'Contacts:      1' and a line matching: $re" \
		"got (exit status $PX_RC):" "$PX_OUT"
}

# channel_names: the channels plexusd has now, one per line.
channel_names() {
	px "$SOCK" 'core show channels concise'
	printf '%s\n' "$PX_OUT" | grep '!' | cut -d'!' -f1
}

# check_media DESCRIPTION: within 8 s plexusd has exactly two channels, both
# Up and bridged to each other, each with at least 50 RTP packets (a second
# of audio) received and sent.
check_media() {
	local what=$1 names name seen ok rx tx peer summary last=
	until_deadline 8
	while :; do
		names=$(channel_names)
		seen=0
		ok=1
		summary=
		for name in $names; do
			seen=$((seen + 1))
			px "$SOCK" "core show channel $name"
			rx=$(printf '%s\n' "$PX_OUT" | sed -n 's/^ *RX packets: \([0-9]*\).*/\1/p')
			tx=$(printf '%s\n' "$PX_OUT" | sed -n 's/^ *TX packets: \([0-9]*\).*/\1/p')
			peer=$(printf '%s\n' "$PX_OUT" | sed -n 's/^ *Bridged Channel: //p')
			summary="$summary$name: RX ${rx:-?} TX ${tx:-?} packets, bridged to ${peer:-?}; "
			if ! printf '%s\n' "$PX_OUT" | grep -Eq '^ *State: Up' ||
				! printf '%s\n' "$names" | grep -qxF -- "$peer" ||
				[ "${rx:-0}" -lt 50 ] || [ "${tx:-0}" -lt 50 ]; then
				ok=
				last=$PX_OUT
			fi
		done
		if [ -n "$ok" ] && [ "$seen" = 2 ]; then
			pass "$what (${summary%; })"
			return 0
		fi
		if ! before_deadline; then
			px "$SOCK" 'core show channels verbose'
			bare_fail "$what" "expected within 8 s: 2 channels, Up, bridged to each other, each with RX and TX >= 50 packets" \
				"got: $seen channels: ${summary:-none}" "core show channels verbose:" "$PX_OUT" \
				"last 'core show channel' not meeting it:" "${last:-}"
		fi
		sleep 0.2
	done
}

# expect_idle DESCRIPTION: within 5 s plexusd has no channel and no call.
expect_idle() {
	until_deadline 5
	while before_deadline; do
		px "$SOCK" 'core show channels'
		if printf '%s\n' "$PX_OUT" | grep -q '^0 active channels$' &&
			printf '%s\n' "$PX_OUT" | grep -q '^0 active calls$'; then
			pass "$1"
			return 0
		fi
		sleep 0.1
	done
	bare_fail "$1" "expected within 5 s: '0 active channels' and '0 active calls'" "got:" "$PX_OUT"
}
