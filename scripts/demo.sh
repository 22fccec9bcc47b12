#!/usr/bin/env bash
# The README's first command (`make demo`): starts a local sandbox (MariaDB
# primary + replica + a spare server, an NFS server, HAProxy, a Slack
# stand-in) on loopback ports, and shows what backupd sees. Later
# capabilities extend this to the full cycle. Stops everything at the end
# unless --keep is given.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
keep=false
[ "${1:-}" = --keep ] && keep=true
dir=$(mktemp -d /tmp/backupd-demo.XXXXXX)
stop() {
	if $keep; then
		echo "sandbox kept in $dir; stop it with: tests/env/down.sh $dir --clean"
	else
		tests/env/down.sh "$dir" --clean >/dev/null 2>&1 || true
	fi
}
trap stop EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "starting the sandbox in $dir"
tests/env/up.sh "$dir" | tail -n 1
source "$dir/env.sh"
source tests/env/lib.sh
echo "config: $BACKUPD_CONFIG"

step "backupctl config check (secrets masked)"
"$BUILD/backupctl" config check

step "backupctl status"
"$BUILD/backupctl" status

step "the replica's SQL thread stops: lag becomes unbounded, not 0"
sql_replica "STOP SLAVE SQL_THREAD"
"$BUILD/backupctl" status || echo "(exit status $? = replication degraded)"
sql_replica "START SLAVE SQL_THREAD"
wait_replica_caught_up 10

step "backupctl status --json (replica caught up again)"
"$BUILD/backupctl" status --json | jq -c '.clusters[].servers[] | {address, role, reachable, read_only, lag}'

step "some data on the primary (it replicates)"
sql_primary "CREATE DATABASE shop; CREATE TABLE shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, customer INT, total DECIMAL(10,2), note VARCHAR(100)) ENGINE=InnoDB; USE shop; INSERT INTO shop.orders (customer, total, note) SELECT seq % 977, seq / 100, CONCAT('order ', seq) FROM seq_1_to_50000"
wait_replica_caught_up 20
echo "50000 orders on the primary, replica caught up"

step "backupctl snapshot (consistent, from the replica, zstd, into the local repository)"
id=$("$BUILD/backupctl" snapshot --chunk-rows 20000)
echo "snapshot id: $id"

step "backupctl snapshot into the NFS repository (nfs-ganesha through libnfs)"
nfsconf=$dir/nfs.conf
awk -v u="$NFS_URL" '/^repository/ { print "repository = " u; next } { print }' "$BACKUPD_CONFIG" > "$nfsconf"
chmod 600 "$nfsconf"
nid=$("$BUILD/backupctl" -c "$nfsconf" snapshot)
echo "snapshot id: $nid"

step "backupctl list"
"$BUILD/backupctl" list

step "backupctl show $id"
"$BUILD/backupctl" show "$id" | head -n 30

step "backupctl verify $nid (re-reads every byte from NFS)"
"$BUILD/backupctl" -c "$nfsconf" verify "$nid"

step "backupctl restore $id into the spare server (streamed from the repository, checked against the manifest)"
"$BUILD/backupctl" restore "$id" --target "127.0.0.1:$SPARE_PORT"
echo "orders on the spare: $(sql_spare 'SELECT COUNT(*) FROM shop.orders')"
# The spare is also the drill target: drills only wipe what drills created.
sql_spare "SET SESSION sql_log_bin = 0; DROP DATABASE shop; DROP DATABASE IF EXISTS backupd"

step "backupctl lag (heartbeat through the primary, read on the replica)"
"$BUILD/backupctl" lag

step "backupctl drill (restore the latest snapshot into the scratch server, check it, measure RTO)"
"$BUILD/backupctl" drill
"$BUILD/backupctl" drills

step "backupctl cutover --dry-run: the guardrails"
"$BUILD/backupctl" cutover --to "127.0.0.1:$REPLICA_PORT" --dry-run || true

step "backupctl cutover: the replica becomes the writer behind HAProxy"
"$BUILD/backupctl" cutover --to "127.0.0.1:$REPLICA_PORT"
"$BUILD/backupctl" status || true

step "backupctl cutover back to the original primary"
"$BUILD/backupctl" cutover --to "127.0.0.1:$PRIMARY_PORT"
wait_replica_caught_up 20

step "backupctl prune --dry-run"
"$BUILD/backupctl" prune --dry-run

step "backupctl report --html"
report=${REPORT:-/tmp/backupd-demo-report.html}
"$BUILD/backupctl" report --html "$report"
echo "open $report in a browser (self-contained: no network needed)"
