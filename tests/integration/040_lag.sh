#!/usr/bin/env bash
# backupctl lag against the real primary and replica, with small thresholds
# (warn 1 s, crit 2 s): a one-shot measurement; the monitor (lag --watch)
# re-creating a dropped heartbeat table; the replica's SQL thread stopped ->
# lag grows (never 0), warn then crit within 2 s of crossing lag_crit_s, and
# /metrics shows it rising; START SLAVE -> one recovery event, no flapping;
# history and state in the catalog, no re-announcement after a restart;
# a broken SQL thread and an unreachable replica.
set -u
source "$ROOT/tests/integration/lib.sh"

LAG_CATALOG=$ENV_DIR/lag-test.db
rm -f "$LAG_CATALOG" "$LAG_CATALOG"-*
conf=$(conf_with lag_warn_s 1 lag_crit_s 2 catalog "$LAG_CATALOG")
metrics_url="http://$METRICS_LISTEN/metrics"
replica="127.0.0.1:$REPLICA_PORT"
lbl="cluster=\"sandbox\",server=\"$replica\""

# metric NAME[{labels}]: its value on /metrics, empty when absent.
metric() {
	env_curl "$metrics_url" 2>/dev/null | awk -v k="$1" '$1 == k { print $2 }'
}
# jqe FILTER [FILE]: jq -e without output.
jqe() { jq -e "$@" >/dev/null; }
# float_ge A B: A >= B
float_ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }

wait_replica_caught_up 10

# --- one-shot measurement ------------------------------------------------
ctl -c "$conf" lag --json
expect_eq "lag exits 0 on a healthy replica" "$RC" 0
check "lag --json is one JSON document" jqe . <<<"$OUT"
expect_eq "the replica is listed" "$(jq -r '.replicas[0].server' <<<"$OUT")" "$replica"
expect_eq "healthy replica is ok" "$(jq -r '.replicas[0].state' <<<"$OUT")" ok
expect_eq "its lag is known" "$(jq -r '.replicas[0].lag_known' <<<"$OUT")" true
check "its lag is below 1 s" jqe '.replicas[0].lag_s >= 0 and .replicas[0].lag_s < 1' <<<"$OUT"
expect_eq "healthy is true" "$(jq -r '.healthy' <<<"$OUT")" true
check "the heartbeat reached the replica" \
	test "$(sql_replica "SELECT COUNT(*) FROM backupd.heartbeat WHERE server_id = 1")" -ge 1
ctl -c "$conf" lag
expect_eq "human lag exits 0" "$RC" 0
check "human lag names the replica and its state" grep -q "$replica *ok *lag" <<<"$OUT"

# --- the monitor: SQL thread stopped, then started ------------------------
# The monitor creates the heartbeat table when it is missing.
sql_primary "DROP DATABASE backupd"
wait_replica_caught_up 10
watch_out=$ENV_DIR/lag-watch.jsonl
# shellcheck disable=SC2086
$BACKUPCTL -c "$conf" lag --watch 30 --json --metrics --record --interval 200 \
	>"$watch_out" 2>"$ENV_DIR/lag-watch.err" &
watch_pid=$!
deadline=$((SECONDS + 15))
until [ "$(metric "backupd_replica_state{$lbl,state=\"ok\"}")" = 1 ]; do
	[ $SECONDS -lt $deadline ] || break
	sleep 0.1
done
expect_eq "/metrics shows the replica ok" "$(metric "backupd_replica_state{$lbl,state=\"ok\"}")" 1
page=$(env_curl "$metrics_url")
check "/metrics has HELP and TYPE for the lag" \
	grep -q '^# TYPE backupd_replica_lag_seconds gauge$' <<<"$page"
check "/metrics has the lag of the replica" grep -q "^backupd_replica_lag_seconds{$lbl} " <<<"$page"
expect_eq "/metrics: sql thread running" "$(metric "backupd_replica_sql_running{$lbl}")" 1
expect_eq "/metrics: other paths are 404" \
	"$(env_curl -o /dev/null -w '%{http_code}' "http://$METRICS_LISTEN/nope")" 404
check "the monitor re-created the heartbeat table on the primary" \
	test "$(sql_primary "SELECT COUNT(*) FROM backupd.heartbeat")" -ge 1

t_stop=$EPOCHREALTIME
sql_replica "STOP SLAVE SQL_THREAD"
sleep 1
lag1=$(metric "backupd_replica_lag_seconds{$lbl}")
sleep 1.5
lag2=$(metric "backupd_replica_lag_seconds{$lbl}")
check "/metrics shows the lag rising while the sql thread is stopped ($lag1 -> $lag2)" \
	float_ge "$lag2" "$(awk -v a="${lag1:-0}" 'BEGIN { print a + 1 }')"
expect_eq "/metrics: sql thread stopped" "$(metric "backupd_replica_sql_running{$lbl}")" 0
expect_eq "/metrics: lag not known while stopped" "$(metric "backupd_replica_lag_known{$lbl}")" 0
sleep 2
expect_eq "/metrics shows crit" "$(metric "backupd_replica_state{$lbl,state=\"crit\"}")" 1
t_start=$EPOCHREALTIME
sql_replica "START SLAVE SQL_THREAD"
deadline=$((SECONDS + 10))
until grep -q '"from":"crit","to":"ok"' "$watch_out"; do
	[ $SECONDS -lt $deadline ] || break
	sleep 0.1
done
sleep 1   # a flap after the recovery would show up here
kill -TERM "$watch_pid"
wait "$watch_pid"
expect_eq "lag --watch ends cleanly on SIGTERM" "$?" 0

check "every watch line is JSON" jqe . "$watch_out"
transitions=$(jq -r 'select(.type == "transition") | "\(.from)>\(.to)"' "$watch_out" | paste -sd' ')
expect_eq "transitions: first verdict, warn, crit, one recovery" "$transitions" \
	"unknown>ok ok>warn warn>crit crit>ok"
t_crit=$(jq -r 'select(.type == "transition" and .to == "crit") | .at' "$watch_out")
lag_crit=$(jq -r 'select(.type == "transition" and .to == "crit") | .lag_s' "$watch_out")
# The lag crosses lag_crit_s (2 s) about 2 s after the stop.
check "crit reported within 2 s of crossing lag_crit_s (after $(awk -v a="$t_crit" -v b="$t_stop" 'BEGIN { printf "%.2f", a - b }') s)" \
	awk -v c="$t_crit" -v s="$t_stop" 'BEGIN { exit !(c - s >= 1.5 && c - s <= 4.0) }'
check "the crit event carries a lag of at least 2 s ($lag_crit)" float_ge "$lag_crit" 2
check "recovery reported after START SLAVE" \
	awk -v r="$(jq -r 'select(.type == "transition" and .to == "ok" and .from == "crit") | .at' "$watch_out")" \
	-v s="$t_start" 'BEGIN { exit !(r > s && r - s <= 3) }'
stopped=$(jq -c --argjson a "$t_stop" --argjson b "$t_start" \
	'select(.type == "reading" and .at > $a + 0.5 and .at < $b)' "$watch_out")
check "readings while stopped exist" test -n "$stopped"
check "while stopped the lag is never 0 nor missing" \
	jqe -s 'length > 0 and all(.lag_s != null and .lag_s > 0)' <<<"$stopped"
check "while stopped the lag is not 'known'" jqe -s 'all(.lag_known == false)' <<<"$stopped"
check "while stopped the reason names the sql thread" \
	jqe -s 'all(.reason == "sql thread stopped")' <<<"$stopped"
check "the stopped lag grows" jqe -s '.[-1].lag_s > .[0].lag_s' <<<"$stopped"

# --- history and persisted state ---------------------------------------------
wait_replica_caught_up 10
ctl -c "$conf" lag --json --history 5
expect_eq "after recovery the one-shot says ok" "$(jq -r '.replicas[0].state' <<<"$OUT")" ok
check "history has the crit minute with its max lag" \
	jqe '[.replicas[0].history[] | select(.state == "crit" and .lag_max_s >= 2)] | length >= 1' <<<"$OUT"
expect_eq "lag_state stored ok" \
	"$(sqlite3 "$LAG_CATALOG" "SELECT state FROM lag_state WHERE server = '$replica'")" ok
check "per-second samples recorded" \
	test "$(sqlite3 "$LAG_CATALOG" "SELECT COUNT(*) FROM lag_samples WHERE resolution_s = 1 AND server = '$replica'")" -ge 5
stopped_where="server = '$replica' AND resolution_s = 1 AND ts >= $t_stop + 1 AND ts + 1 <= $t_start"
check "samples cover the stopped seconds" \
	test "$(sqlite3 "$LAG_CATALOG" "SELECT COUNT(*) FROM lag_samples WHERE $stopped_where")" -ge 2
check "no sample of the stopped seconds says 0 or nothing" \
	test "$(sqlite3 "$LAG_CATALOG" "SELECT COUNT(*) FROM lag_samples WHERE $stopped_where AND (lag_s IS NULL OR lag_s <= 0)")" -eq 0

# A restart of the monitor does not announce the state it already announced.
ctl -c "$conf" lag --watch 2 --json --record
expect_eq "second watch exits 0" "$RC" 0
expect_eq "no transition after a restart in the same state" \
	"$(jq -r 'select(.type == "transition")' <<<"$OUT")" ""

# --- broken: the SQL thread stops on an error --------------------------------
sql_primary "CREATE DATABASE t_lag; CREATE TABLE t_lag.t (id INT PRIMARY KEY)"
wait_replica_caught_up 10
sql_replica "SET SESSION sql_log_bin = 0; INSERT INTO t_lag.t VALUES (1)"
sql_primary "INSERT INTO t_lag.t VALUES (1)"
deadline=$((SECONDS + 10))
until [ "$(replica_sql_running)" = No ]; do
	[ $SECONDS -lt $deadline ] || break
	sleep 0.1
done
ctl -c "$conf" lag --json --history 0
expect_eq "lag exits 18 when replication is broken" "$RC" 18
expect_eq "state broken" "$(jq -r '.replicas[0].state' <<<"$OUT")" broken
expect_eq "the error number is reported" "$(jq -r '.replicas[0].last_errno' <<<"$OUT")" 1062
check "the reason names the error" grep -q "sql thread stopped by error 1062" <<<"$(jq -r '.replicas[0].reason' <<<"$OUT")"
check "broken lag is unbounded, not 0" jqe '.replicas[0].unbounded == true and .replicas[0].lag_s != 0' <<<"$OUT"
check "stderr has a one-line message" test "$(wc -l <<<"$ERR")" -eq 1
sql_replica "SET SESSION sql_log_bin = 0; DELETE FROM t_lag.t; START SLAVE SQL_THREAD"
wait_replica_caught_up 10
sql_primary "DROP DATABASE t_lag"
wait_replica_caught_up 10
ctl -c "$conf" lag --json --history 0
expect_eq "fixed replica is ok again" "$(jq -r '.replicas[0].state' <<<"$OUT")" ok

# --- down: an unreachable replica ---------------------------------------------
free_port=$(closed_port)
down_conf=$(conf_with lag_warn_s 1 lag_crit_s 2 catalog "$LAG_CATALOG" \
	replicas "127.0.0.1:$REPLICA_PORT, 127.0.0.1:$free_port")
ctl -c "$down_conf" lag --json --history 0
expect_eq "lag exits 5 when a replica is unreachable" "$RC" 5
expect_eq "unreachable replica is down" "$(jq -r '.replicas[1].state' <<<"$OUT")" down
expect_eq "down lag is unbounded" "$(jq -r '.replicas[1].unbounded' <<<"$OUT")" true
check "down reason names the address" grep -q "127.0.0.1:$free_port" <<<"$(jq -r '.replicas[1].reason' <<<"$OUT")"
expect_eq "the reachable replica is still ok" "$(jq -r '.replicas[0].state' <<<"$OUT")" ok

# --- usage ----------------------------------------------------------------------
ctl -c "$conf" lag --metrics
expect_eq "--metrics without --watch is a usage error" "$RC" 2
ctl -c "$conf" lag --watch 1 --interval 50
expect_eq "an interval below 100 ms is a usage error" "$RC" 2
ctl -c "$conf" lag --cluster nope
expect_eq "an unknown cluster exits 9" "$RC" 9
ctl lag --help
expect_eq "lag --help exits 0" "$RC" 0

rm -f "$conf" "$down_conf"
finish
