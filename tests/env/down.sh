#!/usr/bin/env bash
# down.sh [--clean] DIR — stop everything tests/env/up.sh started in DIR, by the pids in
# DIR's pid files only (each checked to still be that program, running from DIR):
# sink, haproxy, ganesha, rpcbind if up.sh started it, then the three mariadbd
# (SIGTERM, SIGKILL after 10 s). Safe to run twice and after a partial start.
# --clean also deletes DIR (only if up.sh created it).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$HERE/lib.sh"

clean=0 dir=
for a in "$@"; do
	case $a in
	--clean) clean=1 ;;
	-*) echo "usage: down.sh [--clean] DIR" >&2; exit 2 ;;
	*) [ -z "$dir" ] || { echo "usage: down.sh [--clean] DIR" >&2; exit 2; }; dir=$a ;;
	esac
done
[ -n "$dir" ] || { echo "usage: down.sh [--clean] DIR" >&2; exit 2; }
[ -d "$dir" ] || exit 0
ENV_DIR=$(cd "$dir" && pwd -P)
RUN=$ENV_DIR/run
rc=0

env_stop 5 sink "$ENV_DIR/" "$RUN/sink.pid" "$RUN/sink.launch.pid" || rc=1
env_stop 5 haproxy "$ENV_DIR/" "$RUN/haproxy.pid" || rc=1
rm -f "$ENV_DIR/haproxy.sock"
stop_nfs 5 || rc=1
env_nfs_fault_dirs_release || rc=1
env_rpcbind_stop_ours || rc=1

# The three servers stop in parallel: one env_stop for all their pid files.
pidfiles=()
for s in primary replica spare; do
	pidfiles+=("$ENV_DIR/$s/mariadbd.pid" "$ENV_DIR/$s/launch.pid")
done
env_stop 10 mariadbd "$ENV_DIR/" "${pidfiles[@]}" || rc=1

if [ $clean = 1 ]; then
	if [ -e "$ENV_DIR/.backupd-test-env" ]; then
		[ $rc = 0 ] && rm -rf "$ENV_DIR"
	else
		echo "down.sh: '$ENV_DIR' was not made by up.sh; not deleting it" >&2
		rc=1
	fi
fi
exit $rc
