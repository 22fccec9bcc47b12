#!/usr/bin/env bash
# run.sh — `make bench`: starts one test environment, runs the snapshot bench
# (bench/snapshot.sh) and, if bench/restore.sh exists and is executable, the
# restore bench on the same environment and data, then stops the environment.
# Arguments are passed to both scripts (e.g. --tables 8 --rows 500000 --threads 2).
# restore.sh gets BENCH_ENV_DIR (env up, data loaded) and, from the snapshot
# bench, $BENCH_ENV_DIR/bench-snapshot.env (BENCH_SNAPSHOT_ID, BENCH_SNAPSHOT_CONFIG).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

trap bench_env_stop EXIT
trap 'exit 130' INT TERM
bench_lock # one bench at a time; the scripts below run under it (BENCH_LOCKED)
bench_env_start
export BENCH_ENV_DIR=$BENCH_ENV

rc=0
BENCH_KEEP_SNAPSHOT=1 "$HERE/snapshot.sh" "$@" || rc=1
if [ -x "$HERE/restore.sh" ]; then
	"$HERE/restore.sh" "$@" || rc=1
else
	bench_say "bench/restore.sh not present or not executable: restore bench skipped"
fi
exit $rc
