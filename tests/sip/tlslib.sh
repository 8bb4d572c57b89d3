# Helpers of the TLS tests (tests/sip/tls.sh, tests/sip/tlsonly.sh),
# sourced after tests/lib.sh and tests/sip/siplib.sh: siptls.py runs (the
# TLS peers: Debian's SIPp has no TLS), each bounded and stopped by pid,
# their output in $TLS_LOG/NAME.out; bare handshakes with plexusd's TLS
# port ($TLS_PORT); waiting for a phone's TLS contact.

TLS_DATA=$top_srcdir/tests/data/sip_tls
# sofia-sip leaks each TLS connection's SSL object (tests/sip/sofia-tls.supp
# says how); in the sanitizer build that leak is suppressed by name, which
# needs full stacks through OpenSSL (built without frame pointers).
if [ "${SANITIZERS:-no}" = yes ]; then
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
	export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$top_srcdir/tests/sip/sofia-tls.supp:print_suppressions=0"
fi
# A copy in $TMP, so that every process the test starts names $TMP (is_ours).
SIPTLS=$TMP/siptls.py
TLS_LOG=$TMP/tls
declare -A TLS_PIDS

# tls_start NAME ARGS...: siptls.py in the background (40 s at most),
# its output in $TLS_LOG/NAME.out.
tls_start() {
	local name=$1
	shift
	(exec timeout -k 2 40 "$PYTHON" "$SIPTLS" "$@") </dev/null >"$TLS_LOG/$name.out" 2>&1 &
	TLS_PIDS[$name]=$!
	track_pid "${TLS_PIDS[$name]}"
}

# tls_wait NAME SECONDS: its exit status into TLS_RC ("hung" when killed).
tls_wait() {
	local pid=${TLS_PIDS[$1]}
	if wait_exit "$pid" "$2"; then
		TLS_RC=$EXIT_STATUS
	else
		kill -KILL "$pid" 2>/dev/null
		wait_exit "$pid" 2
		TLS_RC=hung
	fi
}

tls_fail() {
	local what=$1 expected=$2 name
	shift 2
	local details=("expected: $expected")
	for name in "$@"; do
		details+=("--- siptls.py '$name' (exit status ${TLS_RC_OF[$name]:-?}):" "$(tail -n 60 "$TLS_LOG/$name.out")")
	done
	fail "$what" "${details[@]}"
}
declare -A TLS_RC_OF

# expect_tls_ok DESCRIPTION SECONDS NAME...: each run ends with status 0.
expect_tls_ok() {
	local what=$1 secs=$2 name bad=
	shift 2
	for name in "$@"; do
		tls_wait "$name" "$secs"
		TLS_RC_OF[$name]=$TLS_RC
		[ "$TLS_RC" = 0 ] || bad=1
	done
	[ -z "$bad" ] || tls_fail "$what" "every siptls.py run ends with status 0" "$@"
	pass "$what"
}

# expect_tls_line DESCRIPTION NAME ERE: the run's output has a matching line.
expect_tls_line() {
	grep -Eq -- "$3" "$TLS_LOG/$2.out" || tls_fail "$1" "a line matching: $3" "$2"
	pass "$1"
}

# tls_probe MAXVER: a bare handshake with plexusd's TLS port; status in TLS_RC.
tls_probe() {
	PROBE_OUT=$(timeout 10 "$PYTHON" "$SIPTLS" probe 127.0.0.1 "$TLS_PORT" "$1" 2>&1)
	TLS_RC=$?
}

# wait_tls_contact NAME PHONE SECONDS: until the siptls.py run NAME says it
# registered and 'sip show endpoint PHONE' has its contact, over TLS (an
# older contact of a closed connection may still be there: it must not count).
wait_tls_contact() {
	local i contact
	for ((i = 0; i < $3 * 10; i++)); do
		contact=$(sed -n 's/^--- registered <\(.*\)>$/\1/p' "$TLS_LOG/$1.out")
		if [ -n "$contact" ]; then
			px "$SOCK" "sip show endpoint $2"
			printf '%s\n' "$PX_OUT" | grep -qF "$contact via tls:127.0.0.1:" && return 0
		fi
		sleep 0.1
	done
	return 1
}
