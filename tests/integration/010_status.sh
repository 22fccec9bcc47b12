#!/usr/bin/env bash
# backupctl status/config against the real primary and replica: replicating
# and lag known; SQL thread stopped -> lag unbounded (never 0); unreachable
# server and wrong password -> clear errors without the password; config
# secrets masked; unsafe config modes refused; verbs not landed say so.
set -u
source "$ROOT/tests/integration/lib.sh"

# --- healthy cluster ----------------------------------------------------
wait_replica_caught_up 10
ctl status --json
expect_eq "status exits 0 on a healthy cluster" "$RC" 0
check "status --json is one JSON document" jq -e . <<<"$OUT" >/dev/null
expect_eq "primary reachable" "$(jq -r '.clusters[0].servers[0].reachable' <<<"$OUT")" true
expect_eq "primary is writable" "$(jq -r '.clusters[0].servers[0].read_only' <<<"$OUT")" false
expect_eq "primary flavor" "$(jq -r '.clusters[0].servers[0].flavor' <<<"$OUT")" mariadb
expect_eq "replica read_only" "$(jq -r '.clusters[0].servers[1].read_only' <<<"$OUT")" true
expect_eq "replica io thread running" "$(jq -r '.clusters[0].servers[1].replication.io_running' <<<"$OUT")" true
expect_eq "replica sql thread running" "$(jq -r '.clusters[0].servers[1].replication.sql_running' <<<"$OUT")" true
expect_eq "replica lag known" "$(jq -r '.clusters[0].servers[1].lag.known' <<<"$OUT")" true
expect_eq "replica source is the primary" \
	"$(jq -r '.clusters[0].servers[1].replication.source' <<<"$OUT")" "127.0.0.1:$PRIMARY_PORT"
# GTID positions come from the servers themselves, not from backupctl.
want_gtid=$(sql_primary "SELECT @@gtid_binlog_pos")
expect_eq "primary gtid_binlog_pos matches the server" \
	"$(jq -r '.clusters[0].servers[0].gtid_binlog_pos' <<<"$OUT")" "$want_gtid"
expect_eq "replica gtid_slave_pos matches the primary once caught up" \
	"$(jq -r '.clusters[0].servers[1].replication.gtid_slave_pos' <<<"$OUT")" "$want_gtid"

ctl status
expect_eq "human status exits 0" "$RC" 0
check "human status names both servers" grep -q "127.0.0.1:$REPLICA_PORT" <<<"$OUT"

# --- SQL thread stopped: lag is unbounded, not 0 -------------------------
sql_replica "STOP SLAVE SQL_THREAD"
sql_primary "CREATE DATABASE IF NOT EXISTS t_status; CREATE TABLE IF NOT EXISTS t_status.t (id INT PRIMARY KEY); INSERT INTO t_status.t VALUES (1)"
ctl status --json
expect_eq "status exits 18 (replication) when the sql thread is stopped" "$RC" 18
expect_eq "sql thread reported stopped" "$(jq -r '.clusters[0].servers[1].replication.sql_running' <<<"$OUT")" false
expect_eq "lag is not known" "$(jq -r '.clusters[0].servers[1].lag.known' <<<"$OUT")" false
expect_eq "lag is unbounded" "$(jq -r '.clusters[0].servers[1].lag.unbounded' <<<"$OUT")" true
expect_eq "lag seconds is null, not 0" "$(jq -r '.clusters[0].servers[1].lag.seconds' <<<"$OUT")" null
expect_eq "lag reason names the sql thread" "$(jq -r '.clusters[0].servers[1].lag.reason' <<<"$OUT")" "sql thread stopped"
ctl status
check "human status says UNBOUNDED" grep -q "lag UNBOUNDED: sql thread stopped" <<<"$OUT"
sql_replica "START SLAVE SQL_THREAD"
wait_replica_caught_up 10
ctl status --json
expect_eq "status healthy again after START SLAVE" "$RC" 0
expect_eq "replica has the new row" "$(sql_replica "SELECT COUNT(*) FROM t_status.t")" 1
sql_primary "DROP DATABASE t_status"

# --- an unreachable server and a wrong password --------------------------
work=$(mktemp -d "$ENV_DIR/status.XXXXXX")
free_port=$(closed_port)
sed -e "s/^replicas .*/replicas = 127.0.0.1:$REPLICA_PORT, 127.0.0.1:$free_port/" "$BACKUPD_CONFIG" > "$work/down.conf"
chmod 600 "$work/down.conf"
ctl -c "$work/down.conf" status --json
expect_eq "status exits 5 when a server is unreachable" "$RC" 5
expect_eq "unreachable server reported" "$(jq -r '.clusters[0].servers[2].reachable' <<<"$OUT")" false
check "unreachable error names the address" grep -q "127.0.0.1:$free_port" <<<"$(jq -r '.clusters[0].servers[2].error' <<<"$OUT")"
check "stderr has a one-line message" test "$(wc -l <<<"$ERR")" -eq 1

printf 'wrong-password-xyz' > "$work/bad.pw"; chmod 600 "$work/bad.pw"
sed -e "s#^password_file .*#password_file = $work/bad.pw#" "$BACKUPD_CONFIG" > "$work/badpw.conf"
chmod 600 "$work/badpw.conf"
ctl -c "$work/badpw.conf" status --json
expect_eq "status exits 5 on a wrong password" "$RC" 5
check "access denied reported with errno 1045" test "$(jq -r '.clusters[0].servers[0].errno' <<<"$OUT")" = 1045
check "the password appears nowhere in the output" bash -c '! grep -q wrong-password-xyz <<<"$1$2"' _ "$OUT" "$ERR"

# --- config check masks secrets; loose modes are refused -----------------
pw=$(cat "$BACKUPD_PASSWORD_FILE")
sed -e "s#^password_file .*#password = $pw#" "$BACKUPD_CONFIG" > "$work/inline.conf"
chmod 600 "$work/inline.conf"
ctl -c "$work/inline.conf" config check
expect_eq "config check passes" "$RC" 0
check "config check does not print the password" bash -c '! grep -qF -- "$1" <<<"$2"' _ "$pw" "$OUT$ERR"
check "config check shows the mask" grep -q '\*\*\*\*' <<<"$OUT"
ctl -c "$work/inline.conf" config check --json
check "config check --json is JSON" jq -e . <<<"$OUT" >/dev/null
chmod 644 "$work/inline.conf"
ctl -c "$work/inline.conf" status
check "a config holding a password readable by others is refused" test "$RC" -ne 0
check "the refusal names the file and its mode" grep -q "inline.conf.*0644" <<<"$ERR"
chmod 644 "$work/bad.pw"
ctl -c "$work/badpw.conf" status
check "a password file readable by others is refused" test "$RC" -ne 0
check "the refusal names the password file" grep -q "bad.pw" <<<"$ERR"
printf '[backupd]\ncatalog = /tmp/x.db\nthreads = many\n' > "$work/bad.conf"
ctl -c "$work/bad.conf" status
expect_eq "malformed config exits 3" "$RC" 3
check "the message names file and line" grep -q "bad.conf' line 3" <<<"$ERR"
BACKUPD_CONFIG="$work/inline.conf" ctl status
check "BACKUPD_CONFIG is honoured" grep -q "inline.conf" <<<"$ERR"

# --- verbs ---------------------------------------------------------------
ctl --help
for v in snapshot list show verify restore rebuild lag status prune cutover drill; do
	check "--help lists '$v'" grep -q "^  $v " <<<"$OUT"
done
for v in snapshot list show verify restore rebuild lag status prune cutover canary drill drills report catalog config; do
	ctl "$v" --help
	expect_eq "'$v --help' exits 0" "$RC" 0
	check "'$v --help' shows its usage" grep -q "^usage: backupctl $v" <<<"$OUT"
done
ctl cutover --to 127.0.0.1:1 --dry-run
check "cutover to a server outside the cluster is refused" test "$RC" -ne 0
check "with a one-line reason" test "$(grep -c '^backupctl: ' <<<"$ERR")" -eq 1
ctl status --help
expect_eq "status --help exits 0" "$RC" 0
ctl frobnicate
expect_eq "an unknown verb exits 2" "$RC" 2

rm -rf "$work"
finish
