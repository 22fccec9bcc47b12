#!/usr/bin/env bash
# The test runner behind `make test`: starts the real test environment once
# (tests/env/up.sh), runs every unit test binary and every integration
# script against it, always tears it down, and ends with "N passed, N failed".
#
# Unit binaries are cmocka programs; integration scripts print TAP-style
# "ok - name" / "not ok - name" lines (tests/integration/lib.sh).
# TEST_WRAPPER (e.g. valgrind) wraps every binary we built.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
export BUILD ROOT
export TEST_WRAPPER=${TEST_WRAPPER:-}
ONLY=${1:-}

passed=0
failed=0
failures=()

TMP_BASE=${TEST_TMPDIR:-/tmp}
ENV_DIR=$(mktemp -d "$TMP_BASE/backupd-test.XXXXXX")
export ENV_DIR
log_dir=$(mktemp -d "$TMP_BASE/backupd-test-logs.XXXXXX")

teardown() {
	tests/env/down.sh "$ENV_DIR" >"$log_dir/down.log" 2>&1 || cat "$log_dir/down.log" >&2
	if [ "$failed" -eq 0 ] && [ -z "${KEEP_TEST_DIR:-}" ]; then
		rm -rf "$ENV_DIR" "$log_dir"
	else
		echo "test files kept in $ENV_DIR, logs in $log_dir" >&2
	fi
}
trap teardown EXIT
trap 'exit 130' INT TERM

echo "== starting test environment in $ENV_DIR"
if ! tests/env/up.sh "$ENV_DIR" >"$log_dir/up.log" 2>&1; then
	cat "$log_dir/up.log" >&2
	echo "the test environment did not start (see above)" >&2
	echo "0 passed, 1 failed"
	exit 1
fi
tail -n 1 "$log_dir/up.log"
# shellcheck disable=SC1091
source "$ENV_DIR/env.sh"

record() { # name status
	if [ "$2" -eq 0 ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failures+=("$1")
	fi
}

run_unit() { # binary [args]
	local bin=$1 name out rc p f
	shift
	name=$(basename "$bin")${1:+ $1}
	out=$log_dir/$(basename "$bin")${1:+-$1}.log
	# shellcheck disable=SC2086
	$TEST_WRAPPER "$bin" "$@" >"$out" 2>&1
	rc=$?
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$f" -gt 0 ]; then
		failures+=("$name")
	fi
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		# crashed, leaked under valgrind, or failed before cmocka reported
		failed=$((failed + 1))
		failures+=("$name (exit $rc)")
	fi
	if [ "$rc" -ne 0 ] || [ "$f" -gt 0 ]; then
		echo "-- $name: FAILED (exit $rc), log:"
		tail -n 40 "$out"
	else
		echo "-- $name: $p passed"
	fi
}

run_integration() { # script
	local s=$1 name out rc p f
	name=$(basename "$s" .sh)
	out=$log_dir/it-$name.log
	( cd "$ROOT" && bash "$s" ) >"$out" 2>&1
	rc=$?
	p=$(grep -c '^ok - ' "$out")
	f=$(grep -c '^not ok - ' "$out")
	passed=$((passed + p))
	failed=$((failed + f))
	while IFS= read -r line; do failures+=("$name: ${line#not ok - }"); done < <(grep '^not ok - ' "$out")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		failed=$((failed + 1))
		failures+=("$name (exit $rc)")
	fi
	if [ "$rc" -ne 0 ] || [ "$f" -gt 0 ]; then
		echo "-- $name: FAILED (exit $rc), log:"
		tail -n 60 "$out"
	else
		echo "-- $name: $p passed"
	fi
}

echo "== unit tests"
for bin in "$BUILD"/tests/test_*; do
	[ -x "$bin" ] || continue
	case $ONLY in ''|unit|"$(basename "$bin")") run_unit "$bin" ;; esac
done

echo "== integration tests"
for s in tests/integration/[0-9]*.sh; do
	[ -f "$s" ] || continue
	case $ONLY in ''|integration|"$(basename "$s" .sh)") run_integration "$s" ;; esac
done

# Tests that break a server (NFS fault injection) run last.
if [ -x "$BUILD/tests/test_storage" ] && [ -z "$ONLY" ]; then
	echo "== fault tests"
	NFS_TEST_PIDFILE=$ENV_DIR/run/ganesha.pid run_unit "$BUILD/tests/test_storage" fault
fi

echo
if [ "$failed" -gt 0 ]; then
	echo "failures:"
	printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
