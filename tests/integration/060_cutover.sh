#!/usr/bin/env bash
# Blue/green cutover against the real primary, the real replica as green and
# the real HAProxy: a client writes one numbered row every 10 ms through the
# HAProxy writer frontend while the writer moves to the replica and back;
# every acknowledged row must be on the new writer, none twice, and the old
# writer must replicate from the new one. Then the guardrails and rollbacks:
# green lagging (preflight refuses), green catching up slower than --timeout
# (automatic rollback), HAProxy socket missing (preflight refuses), a switch
# hook that fails (rollback), a failure after the switch (stops, --resume
# finishes). Canary weights on the read backend. Leaves the env as it found
# it: primary writable and behind HAProxy, replica replicating from it.
set -u
source "$ROOT/tests/integration/lib.sh"

P=127.0.0.1:$PRIMARY_PORT
R=127.0.0.1:$REPLICA_PORT
W=$ENV_DIR/cutover
mkdir -p "$W"
chmod 700 "$W"

# ---------------------------------------------------------------- helpers

# Admin state of BACKEND/SERVER in HAProxy: "ready" or "maint".
hap_state() {
	local a
	a=$(haproxy_cmd "show servers state $1" | awk -v s="$2" '$1 !~ /^#/ && $4 == s { print $7 }')
	if [ -z "$a" ]; then echo "?"; elif (((a & 0x23) != 0)); then echo maint; else echo ready; fi
}
writer_states() { echo "primary=$(hap_state mysql_writer primary) replica=$(hap_state mysql_writer replica)"; }
ro() { env_sql "$1" "SELECT @@GLOBAL.read_only"; }
slave() { env_slave_field "$1" "$2"; }
topology() { sqlite3 "$CATALOG" "SELECT primary_addr FROM topology WHERE cluster = 'sandbox'"; }
# wait_caught_up FROM TO: TO has executed FROM's binlog position.
wait_caught_up() {
	local pos
	pos=$(env_sql "$1" "SELECT @@GLOBAL.gtid_binlog_pos")
	[ "$(env_sql "$2" "SELECT MASTER_GTID_WAIT('$pos', 20)")" = 0 ]
}
jq_out() { jq -r "$1" <<<"$OUT"; }

WRITER_PID=
NEXT_ID=1
writer_start() { # NAME
	"$W/cutover_writer" --host 127.0.0.1 --port "$HAPROXY_PORT" --user cwriter \
		--password-file "$W/cwriter.pw" --table cutover_t.w --log "$W/$1.log" \
		--interval-ms 10 --start-id "$NEXT_ID" >"$W/$1.out" 2>"$W/$1.err" &
	WRITER_PID=$!
}
writer_stop() { # NAME
	kill -TERM "$WRITER_PID" 2>/dev/null
	wait "$WRITER_PID"
	WRITER_PID=
	NEXT_ID=$(sed -n 's/.*next_id=\([0-9]*\).*/\1/p' "$W/$1.out")
	[ -n "$NEXT_ID" ] || NEXT_ID=100000
}
# check_writes NAME SERVER: every id the writer NAME acknowledged is on
# SERVER (primary|replica) and no id is there twice.
check_writes() {
	local name=$1 srv=$2 acked missing dups
	awk '$1 == "OK" { print $2 }' "$W/$name.log" | sort >"$W/$name.acked"
	env_sql "$srv" "SELECT id FROM cutover_t.w" | sort >"$W/$name.$srv.rows"
	acked=$(wc -l <"$W/$name.acked")
	missing=$(comm -23 "$W/$name.acked" "$W/$name.$srv.rows" | wc -l)
	dups=$(env_sql "$srv" "SELECT COUNT(*) - COUNT(DISTINCT id) FROM cutover_t.w")
	check "$name: writer acknowledged rows ($acked)" test "$acked" -gt 100
	expect_eq "$name: every acknowledged row is on $srv" "$missing" 0
	expect_eq "$name: no row twice on $srv" "$dups" 0
	echo "# $name: $(cat "$W/$name.out")"
	echo "# $name: longest write gap $(sed -n 's/.*max_gap_ms=\([0-9.]*\).*/\1/p' "$W/$name.out") ms, failed attempts $(grep -c '^ERR' "$W/$name.log")"
}
# The env as up.sh leaves it (what a test that fails midway must restore).
env_is_original() {
	[ "$(ro primary)" = 0 ] && [ "$(ro replica)" = 1 ] &&
		[ "$(slave replica Master_Port)" = "$PRIMARY_PORT" ] &&
		[ "$(slave replica Slave_IO_Running)/$(slave replica Slave_SQL_Running)" = Yes/Yes ] &&
		[ -z "$(slave primary Slave_IO_Running)" ] &&
		[ "$(writer_states)" = "primary=ready replica=maint" ]
}
cleanup() {
	[ -n "$WRITER_PID" ] && kill -TERM "$WRITER_PID" 2>/dev/null && wait "$WRITER_PID"
	if ! env_is_original; then
		echo "# restoring the env after a failure" >&2
		sql_replica "UNLOCK TABLES" >/dev/null 2>&1
		sql_replica "START SLAVE" >/dev/null 2>&1
		[ "$(topology)" = "$R" ] && $BACKUPCTL cutover --to "$P" --max-snapshot-age 0 --timeout 20 >&2
	fi
	sql_primary "DROP DATABASE IF EXISTS cutover_t; DROP USER IF EXISTS 'cwriter'@'127.0.0.1'" 2>/dev/null
	haproxy_cmd "set weight mysql_read/replica 0" >/dev/null
}
trap cleanup EXIT

# ---------------------------------------------------------------- setup

if ! $BACKUPCTL cutover --help 2>/dev/null | grep -q -- "--max-lag" ||
	! $BACKUPCTL canary --help 2>/dev/null | grep -q -- "--backend"; then
	not_ok "backupctl has the cutover and canary verbs (wire cli_cutover/cli_canary into cli/main.c)"
	exit 1
fi

# shellcheck disable=SC2046 # pkg-config output is meant to be split
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -o "$W/cutover_writer" \
	"$ROOT/tests/cutover_writer.c" $(pkg-config --cflags --libs libmariadb)
check "the 10 ms writer builds" test -x "$W/cutover_writer"
(umask 077; head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 20 >"$W/cwriter.pw")
# An ordinary application account: no READ_ONLY ADMIN, so read_only stops it.
sql_primary "CREATE DATABASE cutover_t;
	CREATE TABLE cutover_t.w (seq BIGINT AUTO_INCREMENT PRIMARY KEY, id BIGINT NOT NULL,
	  server_id INT NOT NULL, at DATETIME(6) NOT NULL, KEY (id));
	CREATE USER 'cwriter'@'127.0.0.1' IDENTIFIED BY '$(cat "$W/cwriter.pw")';
	GRANT SELECT, INSERT ON cutover_t.* TO 'cwriter'@'127.0.0.1';"
wait_replica_caught_up 10
ctl snapshot
expect_eq "a snapshot for the snapshot guardrail" "$RC" 0
check "the env starts as up.sh left it" env_is_original

# ---------------------------------------------------------------- dry run

ctl cutover --to "$R" --dry-run --json
expect_eq "dry run exits 0" "$RC" 0
expect_eq "dry run: result" "$(jq_out .result)" dry_run
expect_eq "dry run: every check passes" "$(jq_out '[.checks[] | select(.pass | not)] | length')" 0
expect_eq "dry run: checks reported with values" \
	"$(jq_out '[.checks[].name] | join(",")')" \
	"blue,green,replication,lag,foreign_gtids,long_transactions,version,snapshot,traffic_switch,replication_user"
check "dry run: every check has a measured value" test "$(jq_out '[.checks[] | select(.value == "")] | length')" = 0
check "dry run: prints the plan" test "$(jq_out '.plan | length')" -ge 8
check "dry run: changed nothing" env_is_original
ctl cutover --to "$R" --dry-run
check "dry run: human output lists checks and plan" \
	grep -q "PASS  replication" <<<"$OUT"
check "dry run: human output shows the plan" grep -q "^plan:" <<<"$OUT"

ctl cutover --to 127.0.0.1:1 --dry-run
check "cutover to a server outside the cluster is refused" test "$RC" -ne 0
ctl cutover --to "$P" --dry-run
check "cutover to the current primary is refused" test "$RC" -ne 0

# ---------------------------------------------------------------- cutover with writes

writer_start fwd
sleep 1.5
ctl cutover --to "$R" --json
expect_eq "cutover exits 0" "$RC" 0
[ "$RC" = 0 ] || echo "$OUT $ERR" | head -c 3000
expect_eq "cutover result" "$(jq_out .result)" ok
pause=$(jq_out .write_pause_ms)
echo "# cutover write pause (blue read-only -> green writable and switched): $pause ms"
check "write pause measured and below 1 s" awk -v p="$pause" 'BEGIN { exit !(p > 0 && p < 1000) }'
sleep 1.5
writer_stop fwd
check "writes went to green after the switch" \
	test "$(sql_replica "SELECT COUNT(*) FROM cutover_t.w WHERE server_id = 2")" -gt 10
check_writes fwd replica
expect_eq "haproxy: green ready, blue maint" "$(writer_states)" "primary=maint replica=ready"
expect_eq "green writable" "$(ro replica)" 0
expect_eq "green no longer replicates" "$(slave replica Slave_IO_Running)" ""
expect_eq "blue read-only" "$(ro primary)" 1
expect_eq "blue replicates from green" \
	"$(slave primary Master_Port) $(slave primary Slave_IO_Running) $(slave primary Slave_SQL_Running)" \
	"$REPLICA_PORT Yes Yes"
check "blue catches up with green" wait_caught_up replica primary
expect_eq "blue has the same data as green" "$(checksums "$PRIMARY_SOCKET")" "$(checksums "$REPLICA_SOCKET")"
check_writes fwd primary
expect_eq "catalog topology: green is the primary" "$(topology)" "$R"
expect_eq "catalog: cutover recorded ok with its pause" \
	"$(sqlite3 "$CATALOG" "SELECT result, write_pause_ms IS NOT NULL FROM cutovers WHERE id = $(jq_out .cutover_id)")" "ok|1"
check "catalog: every step timed" test "$(sqlite3 "$CATALOG" "SELECT COUNT(*) FROM cutover_steps WHERE cutover_id = $(jq_out .cutover_id) AND duration_ms IS NOT NULL AND result = 'ok'")" -ge 9
expect_eq "outbox: started, steps, done" \
	"$(sqlite3 "$CATALOG" "SELECT group_concat(kind, ' ') FROM (SELECT kind FROM events WHERE kind LIKE 'cutover.%' AND json_extract(payload, '\$.cutover_id') = $(jq_out .cutover_id) ORDER BY id)")" \
	"cutover.started cutover.step cutover.step cutover.done"
check "outbox: done event carries write_pause_ms" \
	test -n "$(sqlite3 "$CATALOG" "SELECT json_extract(payload, '\$.write_pause_ms') FROM events WHERE kind = 'cutover.done' ORDER BY id DESC LIMIT 1")"

# ---------------------------------------------------------------- and back

ctl cutover --to "$P" --dry-run --json
expect_eq "rollback dry run: blue comes from the catalog topology" "$(jq_out .from_source)/$(jq_out .from)" "catalog/$R"
writer_start back
sleep 1.5
ctl cutover --to "$P" --json
expect_eq "cutover back exits 0" "$RC" 0
[ "$RC" = 0 ] || echo "$OUT $ERR" | head -c 3000
echo "# cutover back write pause: $(jq_out .write_pause_ms) ms"
sleep 1.5
writer_stop back
check_writes back primary
check_writes fwd primary
check "old replica catches up" wait_caught_up primary replica
check_writes back replica
expect_eq "back: same data on both" "$(checksums "$PRIMARY_SOCKET")" "$(checksums "$REPLICA_SOCKET")"
check "back: env as up.sh left it (primary writable behind haproxy, replica replicating)" env_is_original
expect_eq "catalog topology: primary again" "$(topology)" "$P"

# ---------------------------------------------------------------- green lagging

sql_replica "STOP SLAVE SQL_THREAD"
sql_primary "INSERT INTO cutover_t.w (id, server_id, at) VALUES (-1, @@server_id, NOW(6))"
ctl cutover --to "$R" --json
check "lagging green: refused" test "$RC" -ne 0
expect_eq "lagging green: preflight failed" "$(jq_out .result)" preflight_failed
expect_eq "lagging green: replication and lag checks fail" \
	"$(jq_out '[.checks[] | select(.pass | not) | .name] | join(",")')" "replication,lag"
check "lagging green: lag reported unbounded" grep -q unbounded <<<"$(jq_out '.checks[] | select(.name == "lag") | .value')"
expect_eq "lagging green: blue still writable" "$(ro primary)" 0
expect_eq "lagging green: haproxy untouched" "$(writer_states)" "primary=ready replica=maint"
expect_eq "lagging green: replica still configured, SQL thread still stopped" \
	"$(slave replica Master_Port) $(slave replica Slave_SQL_Running)" "$PRIMARY_PORT No"
expect_eq "lagging green: topology unchanged" "$(topology)" "$P"
sql_replica "START SLAVE SQL_THREAD"
wait_replica_caught_up 10

# ---------------------------------------------------------------- catch-up slower than --timeout

# A lock on green holds its SQL thread: the new row cannot be applied.
sql_replica "LOCK TABLES cutover_t.w WRITE; SELECT SLEEP(20)" >/dev/null 2>&1 &
holder=$!
for _ in $(seq 50); do
	[ -n "$(sql_replica "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(20)%'")" ] && break
	sleep 0.1
done
sql_primary "INSERT INTO cutover_t.w (id, server_id, at) VALUES (-2, @@server_id, NOW(6))"
t0=$EPOCHREALTIME
ctl cutover --to "$R" --timeout 6 --max-lag 3 --json
t1=$EPOCHREALTIME
check "slow catch-up: fails" test "$RC" -ne 0
expect_eq "slow catch-up: rolled back" "$(jq_out .result)" rolled_back
check "slow catch-up: error says green did not reach blue's position" grep -q "did not reach" <<<"$(jq_out .error)"
pause=$(jq_out .write_pause_ms)
echo "# slow catch-up: writes paused $pause ms, command took $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s"
check "slow catch-up: blue writable again within --timeout 6 s" awk -v p="$pause" 'BEGIN { exit !(p > 0 && p <= 6000) }'
expect_eq "slow catch-up: blue writable" "$(ro primary)" 0
expect_eq "slow catch-up: haproxy untouched" "$(writer_states)" "primary=ready replica=maint"
expect_eq "slow catch-up: green left replicating from blue" \
	"$(slave replica Master_Port) $(slave replica Slave_IO_Running)" "$PRIMARY_PORT Yes"
check "slow catch-up: alert event in the outbox" \
	test "$(sqlite3 "$CATALOG" "SELECT COUNT(*) FROM events WHERE kind = 'cutover.rolled_back' AND severity IN ('error', 'crit') AND json_extract(payload, '\$.cutover_id') = $(jq_out .cutover_id)")" = 1
expect_eq "slow catch-up: catalog says rolled_back" \
	"$(sqlite3 "$CATALOG" "SELECT result FROM cutovers WHERE id = $(jq_out .cutover_id)")" rolled_back
sql_replica "KILL QUERY $(sql_replica "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(20)%'")" 2>/dev/null
wait "$holder"
check "slow catch-up: green catches up afterwards" wait_replica_caught_up 10
check "slow catch-up: env as before" env_is_original

# ---------------------------------------------------------------- HAProxy socket missing

conf=$(conf_with haproxy_socket "$ENV_DIR/no-such-haproxy.sock")
ctl -c "$conf" cutover --to "$R" --json
check "haproxy socket missing: refused" test "$RC" -ne 0
expect_eq "haproxy socket missing: preflight failed on traffic_switch" \
	"$(jq_out .result) $(jq_out '[.checks[] | select(.pass | not) | .name] | join(",")')" \
	"preflight_failed traffic_switch"
check "haproxy socket missing: the check names the socket" \
	grep -q "no-such-haproxy.sock" <<<"$(jq_out '.checks[] | select(.name == "traffic_switch") | .value')"
check "haproxy socket missing: nothing changed" env_is_original

# ---------------------------------------------------------------- failing switch hook

cat >"$W/hook-fail.sh" <<EOF
#!/bin/sh
echo "\$1 \$2" >>"$W/hook.log"
echo "load balancer API said no" >&2
exit 1
EOF
chmod 755 "$W/hook-fail.sh"
rm -f "$W/hook.log"
conf=$(conf_with switch_hook "$W/hook-fail.sh")
sed -i '/^haproxy_/d' "$conf"
ctl -c "$conf" cutover --to "$R" --json
check "failing hook: fails" test "$RC" -ne 0
expect_eq "failing hook: rolled back" "$(jq_out .result)" rolled_back
check "failing hook: the error has the hook's status and output" \
	grep -q "exited with status 1: load balancer API said no" <<<"$(jq_out .error)"
expect_eq "failing hook: called with old and new writer, then reversed" \
	"$(paste -sd'|' "$W/hook.log")" "$P $R|$R $P"
expect_eq "failing hook: blue writable" "$(ro primary)" 0
expect_eq "failing hook: green read-only again" "$(ro replica)" 1
check "failing hook: green replicates from blue again" wait_replica_caught_up 10
expect_eq "failing hook: green's threads" \
	"$(slave replica Master_Port) $(slave replica Slave_IO_Running) $(slave replica Slave_SQL_Running)" \
	"$PRIMARY_PORT Yes Yes"
check "failing hook: alert event" \
	test "$(sqlite3 "$CATALOG" "SELECT COUNT(*) FROM events WHERE kind = 'cutover.rolled_back' AND json_extract(payload, '\$.cutover_id') = $(jq_out .cutover_id)")" = 1
check "failing hook: env as before" env_is_original

# ---------------------------------------------------------------- failure after the switch

(umask 077; printf 'wrong-password' >"$W/wrong-repl.pw")
conf=$(conf_with replication_password_file "$W/wrong-repl.pw")
ctl -c "$conf" cutover --to "$R" --json
check "after-switch failure: fails" test "$RC" -ne 0
expect_eq "after-switch failure: stops at the reverse replication" \
	"$(jq_out .result) $(jq_out .failed_step)" "failed blue_replicates_from_green"
check "after-switch failure: says how to finish" grep -q -- "--resume" <<<"$(jq_out .next)"
check "after-switch failure: and how to roll back" grep -q -- "cutover --to $P" <<<"$(jq_out .next)"
expect_eq "after-switch failure: writes already on green" "$(writer_states) $(ro replica)" "primary=maint replica=ready 0"
ctl cutover --to "$R" --resume --json
expect_eq "resume finishes" "$RC $(jq_out .result)" "0 ok"
expect_eq "resume: blue replicates from green" \
	"$(slave primary Master_Port) $(slave primary Slave_IO_Running)" "$REPLICA_PORT Yes"
expect_eq "resume: topology" "$(topology)" "$R"
ctl cutover --to "$P" --json
expect_eq "and the rollback after it" "$RC $(jq_out .result)" "0 ok"
check "rollback: env as up.sh left it" env_is_original

# ---------------------------------------------------------------- canary

ctl canary --to "$R" --weight 10 --backend mysql_read --json
expect_eq "canary 10%: exits 0" "$RC" 0
expect_eq "canary 10%: weight next to primary's 100" "$(jq_out .weight)" 11
expect_eq "canary 10%: haproxy has it" "$(haproxy_cmd "get weight mysql_read/replica" | head -n 1)" "11 (initial 0)"
expect_eq "canary 10%: reported share" \
	"$(jq_out '.servers[] | select(.name == "replica") | .share_pct')" 9.9
conf=$(conf_with haproxy_read_backend mysql_read)
ctl -c "$conf" canary --to "$R" --weight 0
expect_eq "canary 0 undoes (haproxy_read_backend from the config)" \
	"$RC $(haproxy_cmd "get weight mysql_read/replica" | head -n 1)" "0 0 (initial 0)"
ctl canary --to "$R" --weight 100 --backend mysql_read
check "canary 100% is refused" test "$RC" -ne 0
ctl canary --to 127.0.0.1:1 --weight 10 --backend mysql_read
check "canary to a server not in the backend is refused" test "$RC" -ne 0

finish
