#!/bin/bash
# plexusd under valgrind's memcheck, from start to SIGTERM, with its own
# configuration in a temporary directory: it must start, answer a few console
# commands (module show, database put/get, unloading and loading res_db with
# its data kept, core show threads, core reload) and the console's error
# paths (completion, a client that resets mid-output, garbage, several
# consoles at once), stop with status 0, and
# leave a valgrind log with no memory errors (no invalid read or write, no
# use of uninitialised values, no bad free) and no definitely or indirectly
# lost bytes. Skipped (77) in a sanitizer build, which valgrind cannot run;
# a failure when valgrind is missing ($VALGRIND empty), since CI has it.

. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

if [ "${SANITIZERS:-no}" = yes ]; then
	echo "# SKIP: this build uses sanitizers (ASan/UBSan); valgrind cannot run their binaries"
	exit 77
fi
if [ -z "${VALGRIND:-}" ]; then
	fail "valgrind is available" \
		"expected: \$VALGRIND to name valgrind (configure looks for it; CI installs it)" \
		"got: VALGRIND is empty"
fi
if ! "$VALGRIND" --version >/dev/null 2>&1; then
	fail "valgrind runs" "got: '$VALGRIND --version' failed"
fi

VGLOG=$TMP/vg.log

# The valgrind log of a failure is worth more than the daemon's.
fail_vg() {
	local what=$1
	shift
	if [ -s "$VGLOG" ]; then
		set -- "$@" "--- $VGLOG (first 80 lines):" "$(head -n 80 "$VGLOG")"
	fi
	fail "$what" "$@"
}

D=$TMP/vg
make_module_dir "$D/modules" res_db tm_cli
write_plexus_conf "$D" "$D/modules" 1
write_modules_conf "$D" "autoload = yes" "require = res_db"
DAEMON_DIR=$D
SOCK=$D/plexus.ctl

# plexusd allocates through jemalloc (core/allocator.c): valgrind must
# replace jemalloc's malloc as it does the C library's, or it would see
# none of the daemon's allocations and find no leak for that reason.
"$VALGRIND" --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect \
	--errors-for-leak-kinds=definite,indirect --error-exitcode=99 --track-origins=yes \
	--soname-synonyms='somalloc=*jemalloc*' --num-callers=30 --log-file="$VGLOG" \
	"$PLEXUSD" -f -c "$D" -C "$D/plexus.conf" >"$D/stdout" 2>"$D/stderr" &
DAEMON_PID=$!
track_pid "$DAEMON_PID"
# Under valgrind the start takes about 10 s on an idle machine (measuring
# the translators at start, loading libsndfile's codecs), and more than 20 s
# while "make -j2 check" runs the SIP tests beside it.
if ! wait_for_socket "$SOCK" 60 "$DAEMON_PID"; then
	wait_exit "$DAEMON_PID" 1
	fail_vg "plexusd under valgrind starts and answers within 60 s" \
		"got: ${EXIT_STATUS:+exit status $EXIT_STATUS}${EXIT_STATUS:-no answer}"
fi
pass "plexusd under valgrind starts and answers"

check_cmd "module show lists res_db" 'module show' 0 '^res_db '
check_cmd "database put" 'database put vgtest key1 value1' 0 'Updated database successfully'
check_cmd "database get" 'database get vgtest key1' 0 '^Value: value1$'
check_cmd "module unload res_db" 'module unload res_db' 0 '^Unloaded res_db$'
check_cmd "module load res_db" 'module load res_db' 0 '^Loaded res_db$'
check_cmd "database get after reloading res_db" 'database get vgtest key1' 0 '^Value: value1$'
check_cmd "core show threads" 'core show threads' 0 'threads listed\.$'
check_cmd "core reload" 'core reload' 0 '^Reload complete\.$'
check_cmd "a failing command" 'module unload nosuch' 1
check_cmd "no such command" 'no such command here' 3

PXCLIENT="$PYTHON $TEST_HELPERS/pxclient.py"
out=$($PXCLIENT "$SOCK" complete 'module unload ' 2>&1)
if [ $? != 0 ] || ! printf '%s\n' "$out" | grep -qx res_db; then
	fail_vg "completion of 'module unload '" "got:" "$out"
fi
pass "completion of 'module unload ' lists res_db"
out=$($PXCLIENT "$SOCK" abort 'tm cli flood' 65536 2>&1) ||
	fail_vg "a client resetting its connection mid-output" "$out"
pass "a client $out"
out=$($PXCLIENT "$SOCK" garbage header 2>&1) || fail_vg "a client sending garbage is disconnected" "$out"
pass "a client sending garbage is $(tail -n 1 <<<"$out")"
out=$($PXCLIENT "$SOCK" many 5 'module show' 2>&1) || fail_vg "5 consoles at once" "$out"
pass "5 consoles at once: $out"

# Under valgrind everything is slower: give the stop more time.
if ! stop_daemon "$DAEMON_PID" 30; then
	fail_vg "plexusd under valgrind stops on SIGTERM within 30 s" "got: still running"
fi
if [ "$EXIT_STATUS" != 0 ]; then
	fail_vg "plexusd under valgrind exits with status 0" \
		"got: status $EXIT_STATUS (99: valgrind found errors)"
fi
pass "plexusd under valgrind stops on SIGTERM with status 0"

echo "# valgrind's summaries:"
grep -E 'ERROR SUMMARY|definitely lost|indirectly lost|possibly lost|still reachable|suppressed:|All heap blocks' \
	"$VGLOG" | sed 's/^==[0-9]*== */#   /'

# The leak check means something only if valgrind saw the allocations: a
# start, module loads and the commands above make thousands (2833 seen).
allocs=$(sed -n 's/.*total heap usage: \([0-9,]*\) allocs.*/\1/p' "$VGLOG" | tr -d ,)
if [ -z "$allocs" ] || [ "$allocs" -lt 1000 ]; then
	fail_vg "valgrind saw the daemon's allocations" \
		"expected: at least 1000 allocs in 'total heap usage'; got: '${allocs:-none}'"
fi
pass "valgrind saw the daemon's allocations ($allocs)"

if grep -Eq 'Invalid (read|write|free)|uninitialised|Mismatched free|overlap|Syscall param' "$VGLOG"; then
	fail_vg "valgrind finds no memory errors" "expected: no 'Invalid read/write/free' and the like"
fi
pass "valgrind finds no invalid reads, writes or frees"
for kind in definitely indirectly; do
	if grep -E "$kind lost: [0-9,]+ bytes" "$VGLOG" | grep -Evq "$kind lost: 0 bytes"; then
		fail_vg "valgrind finds no $kind lost memory" \
			"got: $(grep -E "$kind lost:" "$VGLOG")"
	fi
	pass "no $kind lost bytes"
done
if ! grep -q 'ERROR SUMMARY: 0 errors' "$VGLOG"; then
	fail_vg "valgrind's error summary is 0" "got: $(grep 'ERROR SUMMARY' "$VGLOG")"
fi
pass "valgrind: ERROR SUMMARY: 0 errors"
finish
