#!/usr/bin/env bash
# backupd as a process against the real servers and the real HTTP sink:
# schedules fire, overlapping runs are skipped, prune keeps keep_last,
# SIGTERM mid-snapshot leaves nothing visible, a broken config on SIGHUP is
# rejected while the old one keeps working, lag crosses crit -> Slack within
# 2 s and recovers without flapping, /metrics shows the lag rising, and the
# Slack outbox survives 500s, a 429 with Retry-After and a daemon restart
# with every message delivered exactly once, in order.
set -u
source "$ROOT/tests/integration/lib.sh"
DPID=
CAT=$ENV_DIR/daemon.db
REPO=$ENV_DIR/daemon-repo

daemon_start() { # CONF [env assignments...]
	local conf=$1
	shift
	env "$@" $BACKUPD -c "$conf" --pid-file "$ENV_DIR/backupd.pid" >>"$ENV_DIR/daemon.log" 2>&1 &
	DPID=$!
	for _ in $(seq 1 100); do
		[ -S "$CONTROL_SOCKET" ] && $BACKUPCTL -c "$conf" status --json 2>/dev/null | jq -e '.daemon.pid' >/dev/null && return 0
		sleep 0.1
	done
	return 1
}
daemon_stop() {
	[ -n "$DPID" ] || return 0
	kill -TERM "$DPID" 2>/dev/null
	wait "$DPID"
	local rc=$?
	DPID=
	return $rc
}
trap 'daemon_stop >/dev/null 2>&1' EXIT
db() { sqlite3 -batch -noheader "$CAT" "$1"; }
sink_posts() { # TITLE: 200-answered POSTs whose body has TITLE
	jq -r --arg t "$1" 'select(.status == 200 and (.body | contains($t))) | .body' "$SINK_LOG" 2>/dev/null | wc -l
}
conf_daemon() { # extra lines appended; keys replaced first by conf_with pairs before --
	local c
	c=$(conf_with catalog "$CAT" repository "$REPO" "$@")
	echo "$c"
}

# --- schedules, overlap, prune, SIGTERM mid-snapshot -----------------------
conf=$(conf_daemon keep_last 2)
cat >>"$conf" <<'INI'

[schedule snap]
cluster = sandbox
job = snapshot
cron = @every 2s

[schedule tidy]
cluster = sandbox
job = prune
cron = @every 3s
INI
sink_reset
check "daemon starts" daemon_start "$conf" BACKUPD_FAULT_CHUNK_DELAY_MS=2200
check "pid file written" test -s "$ENV_DIR/backupd.pid"
check "control socket is mode 0600" test "$(stat -c %a "$CONTROL_SOCKET")" = 600
sleep 16
check "scheduled snapshots ran" test "$(db "SELECT COUNT(*) FROM jobs WHERE kind='snapshot' AND triggered_by='schedule' AND status='ok'")" -ge 2
check "overlapping runs were skipped and recorded" test "$(db "SELECT COUNT(*) FROM schedule_runs WHERE schedule='snap' AND outcome='skipped'")" -ge 1
check "a job.skipped event went to the outbox" test "$(db "SELECT COUNT(*) FROM events WHERE kind='job.skipped'")" -ge 1
check "never two snapshot jobs of the cluster at once" test "$(db "SELECT COUNT(*) FROM jobs a JOIN jobs b ON a.id < b.id AND a.kind = b.kind AND a.kind='snapshot' AND b.started_at < COALESCE(a.finished_at, 1e18) AND a.started_at < COALESCE(b.finished_at, 1e18)")" -eq 0
check "prune ran on its schedule" test "$(db "SELECT COUNT(*) FROM jobs WHERE kind='prune' AND triggered_by='schedule' AND status='ok'")" -ge 2
check "prune deleted beyond keep_last" test "$(db "SELECT COUNT(*) FROM snapshots WHERE status='deleted'")" -ge 1
check "at most keep_last + 1 complete snapshots remain" test "$(db "SELECT COUNT(*) FROM snapshots WHERE status='complete'")" -le 3
ctl -c "$conf" status --json
check "status shows the daemon's schedules" test "$(jq '.daemon.schedules | length' <<<"$OUT")" -eq 2

# SIGHUP with a broken config: rejected, old config keeps working.
cp "$conf" "$conf.good"
echo "threads = lots" >>"$conf"
jobs_before=$(db "SELECT COUNT(*) FROM jobs WHERE kind='snapshot'")
kill -HUP "$DPID"
sleep 5
check "a broken config on SIGHUP is reported" grep -q "config reload rejected" "$ENV_DIR/daemon.log"
check "config.reload_failed event recorded" test "$(db "SELECT COUNT(*) FROM events WHERE kind='config.reload_failed'")" -eq 1
check "the old config keeps running schedules" test "$(db "SELECT COUNT(*) FROM jobs WHERE kind='snapshot'")" -gt "$jobs_before"
cp "$conf.good" "$conf"

# SIGTERM while a snapshot is in flight.
for _ in $(seq 1 50); do
	[ "$(db "SELECT COUNT(*) FROM snapshots WHERE status='running'")" -ge 1 ] && break
	sleep 0.1
done
check "a snapshot is in flight" test "$(db "SELECT COUNT(*) FROM snapshots WHERE status='running'")" -ge 1
daemon_stop
expect_eq "SIGTERM: backupd exits 0" "$?" 0
expect_eq "SIGTERM: no snapshot left running" "$(db "SELECT COUNT(*) FROM snapshots WHERE status='running'")" 0
check "SIGTERM: the interrupted one is aborted" test "$(db "SELECT COUNT(*) FROM snapshots WHERE status='aborted'")" -ge 1
partial=0
for d in "$REPO"/sandbox/*/; do [ -f "$d/manifest.json" ] || partial=$((partial + 1)); done
expect_eq "SIGTERM: no partial snapshot folder" "$partial" 0
expect_eq "SIGTERM: pid file removed" "$(test -e "$ENV_DIR/backupd.pid" && echo yes || echo no)" no
expect_eq "SIGTERM: replica SQL thread running" "$(replica_sql_running)" Yes

# --- lag: crit within 2 s of crossing, recovery, no flapping, /metrics ------
conf=$(conf_daemon lag_warn_s 1 lag_crit_s 2)
sink_reset
check "daemon starts for the lag test" daemon_start "$conf"
sleep 2
sql_replica "STOP SLAVE SQL_THREAD"
t0=$(date +%s.%N)
lag1=$(curl -s "http://$METRICS_LISTEN/metrics" | awk '/^backupd_replica_lag_seconds\{/ { print $2 }')
sleep 1.5
lag2=$(curl -s "http://$METRICS_LISTEN/metrics" | awk '/^backupd_replica_lag_seconds\{/ { print $2 }')
check "/metrics shows the lag rising while the SQL thread is stopped ($lag1 -> $lag2)" awk -v a="$lag1" -v b="$lag2" 'BEGIN { exit !(b > a && b >= 1) }'
crit_at=
for _ in $(seq 1 100); do
	if [ "$(sink_posts "Replication lag critical")" -ge 1 ]; then
		crit_at=$(jq -r 'select(.body | contains("Replication lag critical")) | .ts' "$SINK_LOG" | head -1)
		break
	fi
	sleep 0.1
done
check "a crit message reached the sink" test -n "$crit_at"
# The lag crosses lag_crit_s (2 s) about 2 s after the stop.
check "crit arrived within 2 s of crossing lag_crit_s" awk -v t0="$t0" -v c="${crit_at:-1e18}" 'BEGIN { exit !(c - (t0 + 2) <= 2.0) }'
sql_replica "START SLAVE SQL_THREAD"
for _ in $(seq 1 100); do
	[ "$(sink_posts "Replication lag recovered")" -ge 1 ] && break
	sleep 0.1
done
expect_eq "one recovery message" "$(sink_posts "Replication lag recovered")" 1
sleep 2
expect_eq "one crit message (no flapping)" "$(sink_posts "Replication lag critical")" 1
check "at most one warn message" test "$(sink_posts "Replication lag warning")" -le 1
expect_eq "lag events in the outbox: warn?, crit, recovered only" \
	"$(db "SELECT COUNT(*) FROM events WHERE kind LIKE 'lag.%' AND created_at >= $t0 - 1 AND kind NOT IN ('lag.warn','lag.crit','lag.recovered')")" 0

# --- Slack: 500 x3, 429 Retry-After, 200; restart while pending ------------
sink_reset
sink_script "500,500,500,429:2,200"
ids=()
for i in 1 2 3; do
	ctl -c "$conf" snapshot
	check "snapshot $i through the daemon's control socket" test "$RC" -eq 0
	ids+=("$OUT")
done
sleep 1.5
daemon_stop
check "messages still pending at the restart" test "$(db "SELECT COUNT(*) FROM events WHERE delivery='pending' AND kind='snapshot.done'")" -ge 1
check "daemon restarts" daemon_start "$conf"
for _ in $(seq 1 150); do
	[ "$(db "SELECT COUNT(*) FROM events WHERE delivery='pending'")" -eq 0 ] && break
	sleep 0.2
done
expect_eq "the outbox drains" "$(db "SELECT COUNT(*) FROM events WHERE delivery='pending'")" 0
for id in "${ids[@]}"; do
	expect_eq "snapshot $id announced exactly once" "$(sink_posts "$id")" 1
done
order=$(jq -r 'select(.status == 200) | .body' "$SINK_LOG" | grep -o '20[0-9]\{6\}T[0-9]\{6\}Z-[0-9a-f]\{4\}' | awk '!seen[$0]++' | paste -sd' ')
expect_eq "delivered in order" "$order" "${ids[*]}"
check "the 429's Retry-After was honoured" jq -s -e '
	(map(select(.status == 429)) | .[0].ts) as $t429
	| (map(select(.status == 200 and .ts > $t429)) | .[0].ts) as $next
	| ($next - $t429) >= 1.9' "$SINK_LOG" >/dev/null
check "the sink saw the 500s" test "$(jq -s 'map(select(.status == 500)) | length' "$SINK_LOG")" -eq 3
check "never faster than 1 message per second" jq -s -e '
	[.[] | .ts] as $t | [range(1; $t | length) | $t[.] - $t[. - 1]] | all(. >= 0.95)' "$SINK_LOG" >/dev/null

daemon_stop

# --- a scheduled DR drill (@every) against the real drill server -----------
conf=$(conf_daemon lag_warn_s 5)
cat >>"$conf" <<'INI'

[schedule drill]
cluster = sandbox
job = drill
cron = @every 3s
INI
sink_reset
check "daemon starts with a drill schedule" daemon_start "$conf"
for _ in $(seq 1 300); do
	[ "$(db "SELECT COUNT(*) FROM drills WHERE result IN ('ok','failed')")" -ge 1 ] && break
	sleep 0.2
done
daemon_stop
expect_eq "the scheduled drill passed" "$(db "SELECT result FROM drills ORDER BY id LIMIT 1")" ok
check "its job was triggered by the schedule" test "$(db "SELECT COUNT(*) FROM jobs WHERE kind='drill' AND triggered_by='schedule'")" -ge 1
check "the drill recorded its RTO" test "$(db "SELECT rto_s > 0 FROM drills ORDER BY id LIMIT 1")" = 1
check "Slack heard about it" test "$(db "SELECT COUNT(*) FROM events WHERE kind='drill.passed'")" -ge 1
expect_eq "the spare is empty again" "$(sql_spare "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ('mysql','information_schema','performance_schema','sys')")" 0

# --- a cutover handed to the daemon, and back -------------------------------
conf=$(conf_daemon lag_warn_s 5)
check "daemon starts for the cutover" daemon_start "$conf"
ctl -c "$conf" snapshot
wait_replica_caught_up 10
sid=$OUT
ctl -c "$conf" verify "$sid"
expect_eq "verify handed to the daemon exits 0" "$RC" 0
check "the daemon ran the verify" grep -q "started verify job of 'sandbox' (manual)" "$ENV_DIR/daemon.log"
ctl -c "$conf" drill
expect_eq "drill handed to the daemon exits 0" "$RC" 0
check "the daemon ran the drill" grep -q "started drill job of 'sandbox' (manual)" "$ENV_DIR/daemon.log"
ctl -c "$conf" cutover --to "127.0.0.1:$REPLICA_PORT" --json
expect_eq "cutover through the daemon exits 0" "$RC" 0
expect_eq "the daemon ran it and reports ok" "$(jq -r .result <<<"$OUT")" ok
check "the cutover job was the daemon's" test "$(db "SELECT COUNT(*) FROM jobs WHERE kind='cutover' AND status='ok'")" -ge 1
sleep 2
ctl -c "$conf" status --json
expect_eq "status: the writer is the old replica now" "$(jq -r '.clusters[0].current_primary' <<<"$OUT")" "127.0.0.1:$REPLICA_PORT"
expect_eq "status: the daemon's heartbeat follows the new writer (old primary is the replica, ok)" \
	"$(jq -r --arg s "127.0.0.1:$PRIMARY_PORT" '.daemon.lag[] | select(.server == $s) | .state' <<<"$OUT")" ok
ctl -c "$conf" cutover --to "127.0.0.1:$PRIMARY_PORT" --json
expect_eq "cutover back through the daemon exits 0" "$RC" 0
expect_eq "and reports ok" "$(jq -r .result <<<"$OUT")" ok
check "replica replicates from the primary again" wait_replica_caught_up 20
daemon_stop

# --- auto-rebuild: a replica wiped and started empty is rebuilt by policy ---
sql_primary "CREATE DATABASE IF NOT EXISTS rb; CREATE TABLE IF NOT EXISTS rb.t (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO rb.t VALUES (1, 'before')"
wait_replica_caught_up 10
conf=$(conf_daemon rebuild auto rebuild_interval_s 3600 lag_warn_s 5)
ctl -c "$conf" snapshot
check "a snapshot to rebuild from" test "$RC" -eq 0
check "replica wiped and started empty" wipe_server replica
sql_primary "INSERT INTO rb.t VALUES (2, 'after the snapshot')"
sink_reset
check "daemon starts with rebuild = auto" daemon_start "$conf"
for _ in $(seq 1 600); do
	[ "$(db "SELECT COUNT(*) FROM rebuilds WHERE result IN ('ok','failed')")" -ge 1 ] && break
	sleep 0.2
done
expect_eq "the broken replica was rebuilt automatically" "$(db "SELECT result FROM rebuilds ORDER BY id DESC LIMIT 1")" ok
check "by the daemon" test "$(db "SELECT COUNT(*) FROM jobs WHERE kind='rebuild' AND triggered_by='daemon'")" -ge 1
check "replica.rebuilt event for Slack" test "$(db "SELECT COUNT(*) FROM events WHERE kind='replica.rebuilt'")" -ge 1
daemon_stop   # its heartbeat writes would move the primary while we compare
check "the rebuilt replica catches up" wait_replica_caught_up 30
expect_eq "it has the row written after the snapshot" "$(sql_replica "SELECT v FROM rb.t WHERE id = 2")" "after the snapshot"
expect_eq "replica equal to the primary (CHECKSUM TABLE)" "$(checksums "$REPLICA_SOCKET")" "$(checksums "$PRIMARY_SOCKET")"
sql_primary "DROP DATABASE rb"
wait_replica_caught_up 10

sink_reset
finish
