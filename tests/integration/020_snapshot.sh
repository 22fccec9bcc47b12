#!/usr/bin/env bash
# Snapshots against the real primary/replica and the real NFS server: the
# odd dataset round-trips byte-exactly (checked with an independent loader
# and CHECKSUM TABLE against the source), the recorded GTID is the one the
# data matches (a server loaded from the snapshot replicates from that
# position and ends equal to the primary), the replica's SQL thread is left
# as it was, and every fault leaves no visible partial snapshot.
set -u
source "$ROOT/tests/integration/lib.sh"

REPO=$ENV_DIR/repo
visible_dirs() { # cluster folders that hold a manifest
	find "$1/sandbox" -mindepth 2 -maxdepth 2 -name manifest.json 2>/dev/null | wc -l
}
partial_dirs() { # folders without a manifest
	local n=0 d
	for d in "$1"/sandbox/*/; do
		[ -d "$d" ] || continue
		[ -f "$d/manifest.json" ] || n=$((n + 1))
	done
	echo "$n"
}
# wait_partial DIR: until a snapshot folder without manifest exists (the
# snapshot is surely in flight), at most 60 s.
wait_partial() {
	for _ in $(seq 1 600); do
		[ "$(partial_dirs "$1")" -ge 1 ] && return 0
		sleep 0.1
	done
	return 1
}
reset_spare() {
	sql_spare "STOP SLAVE; RESET SLAVE ALL" 2>/dev/null
	sql_spare "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ('mysql','information_schema','performance_schema','sys')" |
	while IFS= read -r db; do
		sql_spare "SET SESSION sql_log_bin=0; DROP DATABASE \`${db//\`/\`\`}\`"
	done
	sql_spare "RESET MASTER; SET GLOBAL gtid_slave_pos = ''"
}

sql_primary "SOURCE $ROOT/tests/data/oddities.sql" >/dev/null
check "replica caught up with the odd dataset" wait_replica_caught_up 30

# --- a snapshot from the replica while the primary takes writes ----------
sql_primary "CREATE TABLE shop.ticks (id INT AUTO_INCREMENT PRIMARY KEY, at DATETIME(6) DEFAULT NOW(6)) ENGINE=InnoDB"
( for i in $(seq 1 150); do sql_primary "INSERT INTO shop.ticks () VALUES (); UPDATE shop.orders SET total = total + 1 WHERE id = $((i * 13))"; sleep 0.02; done ) &
writer=$!
sleep 0.3
BACKUPD_FAULT_CHUNK_DELAY_MS=150 ctl snapshot --json --chunk-rows 5000
wait "$writer"
expect_eq "snapshot exits 0" "$RC" 0
check "snapshot --json is JSON" jq -e . <<<"$OUT" >/dev/null
ID=$(jq -r .id <<<"$OUT")
SNAP=$REPO/sandbox/$ID
check "snapshot id printed" test -n "$ID"
check "manifest.json exists in the repository" test -f "$SNAP/manifest.json"
expect_eq "snapshot read from the replica" "$(jq -r .source.role "$SNAP/manifest.json")" replica
expect_eq "replica SQL thread running again" "$(replica_sql_running)" Yes
expect_eq "manifest lists 12 tables" "$(jq '[.tables[] | select(.schema != "backupd")] | length' "$SNAP/manifest.json")" 12
expect_eq "shop.orders split into 4 chunks" "$(jq '[.tables[] | select(.name == "orders") | .files[]] | length' "$SNAP/manifest.json")" 4
check "views, triggers, routines, events captured" test "$(jq '[.views, .triggers, .routines, .events | length] | join(",")' -r "$SNAP/manifest.json")" = "2,1,2,1"
check "MyISAM and Aria tables reported loudly" test "$(jq '[.warnings[] | select(test("not transactional"))] | length' "$SNAP/manifest.json")" -eq 2
expect_eq "repository holds no partial folder" "$(partial_dirs "$REPO")" 0

# Row counts in the manifest against the source.
for t in 'types' 'big row' 'order' 'Ω table' 'legacy_myisam' 'we`ird '"'"'name'"'"' "x"'; do
	want=$(sql_replica "SELECT COUNT(*) FROM \`odd\`\`db \"q\" ü\`.\`${t//\`/\`\`}\`")
	got=$(jq --arg t "$t" '.tables[] | select(.name == $t) | .rows' "$SNAP/manifest.json")
	expect_eq "row count of '$t' matches the source" "$got" "$want"
done

# The independent loader: byte-exact round trip and the position proof.
reset_spare
check "independent loader loads the snapshot into the spare" manual_load "$SNAP" "$SPARE_SOCKET"
GTID=$(jq -r .position.gtid "$SNAP/manifest.json")
check "manifest has a GTID position" test -n "$GTID"
sql_spare "RESET MASTER; SET GLOBAL gtid_slave_pos = '$GTID'; CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$PRIMARY_PORT, MASTER_USER='repl', MASTER_PASSWORD='$(cat "$REPL_PASSWORD_FILE")', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1; START SLAVE"
pos=$(sql_primary "SELECT @@gtid_binlog_pos")
expect_eq "spare replicates from the snapshot's GTID to the primary's position" \
	"$(sql_spare "SELECT MASTER_GTID_WAIT('$pos', 30)")" 0
expect_eq "no replication error on the spare" "$(env_slave_field spare Last_SQL_Errno)" 0
wait_replica_caught_up 30
want=$(checksums "$PRIMARY_SOCKET")
got=$(checksums "$SPARE_SOCKET")
expect_eq "every table equal to the primary (CHECKSUM TABLE) after catch-up" "$got" "$want"
check "shop.ticks rows written during the snapshot are all there" \
	test "$(sql_spare 'SELECT COUNT(*) FROM shop.ticks')" = 150
reset_spare

# --- catalog and list ------------------------------------------------------
ctl list --json
expect_eq "list exits 0" "$RC" 0
expect_eq "list shows the snapshot complete" "$(jq -r --arg id "$ID" '.[] | select(.id == $id) | .status' <<<"$OUT")" complete
expect_eq "list gives the manifest's GTID" "$(jq -r --arg id "$ID" '.[] | select(.id == $id) | .gtid' <<<"$OUT")" "$GTID"
for k in id cluster status started_at finished_at gtid bytes_raw bytes_stored; do
	check "list --json has '$k'" jq -e --arg k "$k" '.[0] | has($k)' <<<"$OUT" >/dev/null
done
ctl show "$ID" --json
expect_eq "show exits 0" "$RC" 0
ctl verify "$ID"
expect_eq "verify of an intact snapshot exits 0" "$RC" 0

# --- SQL thread stopped before: stays stopped ------------------------------
sql_replica "STOP SLAVE SQL_THREAD"
ctl snapshot --from "127.0.0.1:$REPLICA_PORT"
expect_eq "snapshot of a replica whose SQL thread is stopped works" "$RC" 0
expect_eq "its SQL thread is still stopped afterwards" "$(replica_sql_running)" No
sql_replica "START SLAVE SQL_THREAD"
ctl snapshot
expect_eq "after START SLAVE the default snapshot works again" "$RC" 0

# --- from the primary (short global read lock) -----------------------------
ctl snapshot --from "127.0.0.1:$PRIMARY_PORT" --json
expect_eq "snapshot from the primary exits 0" "$RC" 0
check "its freeze was short (< 5 s)" awk -v f="$(jq .freeze_ms <<<"$OUT")" 'BEGIN { exit !(f < 5000) }'
expect_eq "manifest says primary" "$(jq -r .source.role "$REPO/sandbox/$(jq -r .id <<<"$OUT")/manifest.json")" primary

# --- no healthy replica ----------------------------------------------------
sql_replica "STOP SLAVE SQL_THREAD"
ctl snapshot
expect_eq "no healthy replica: exit 18" "$RC" 18
check "the message says why" grep -q "no healthy replica.*sql thread stopped" <<<"$ERR"
sql_replica "START SLAVE SQL_THREAD"

# --- bad sources -----------------------------------------------------------
before=$(visible_dirs "$REPO")
port=$(closed_port)
conf=$(conf_with replicas "127.0.0.1:$port")
ctl -c "$conf" snapshot --from "127.0.0.1:$port"
expect_eq "unreachable source: exit 5" "$RC" 5
check "one-line message naming the server" test "$(wc -l <<<"$ERR")" -eq 1 -a -n "$(grep "127.0.0.1:$port" <<<"$ERR")"
printf 'not-the-password' > "$ENV_DIR/wrong.pw"; chmod 600 "$ENV_DIR/wrong.pw"
conf=$(conf_with password_file "$ENV_DIR/wrong.pw")
ctl -c "$conf" snapshot
expect_eq "wrong password: no usable replica, exit 18" "$RC" 18
check "wrong password: the message says access denied" grep -q "Access denied" <<<"$ERR"
ctl -c "$conf" snapshot --from "127.0.0.1:$PRIMARY_PORT"
expect_eq "wrong password on --from: exit 5" "$RC" 5
check "no password in the message" bash -c '! grep -q not-the-password <<<"$1"' _ "$ERR"
expect_eq "no new snapshot became visible" "$(visible_dirs "$REPO")" "$before"
expect_eq "no partial folder left" "$(partial_dirs "$REPO")" 0

# --- SIGTERM and SIGKILL in the middle -------------------------------------
BACKUPD_FAULT_CHUNK_DELAY_MS=400 $BACKUPCTL snapshot --chunk-rows 2000 >/dev/null 2>"$ENV_DIR/term.err" &
pid=$!
check "SIGTERM: snapshot in flight" wait_partial "$REPO"
sleep 0.3
kill -TERM "$pid"
wait "$pid"
expect_eq "SIGTERM: exit 15 (aborted)" "$?" 15
expect_eq "SIGTERM: nothing visible" "$(visible_dirs "$REPO")" "$before"
expect_eq "SIGTERM: no partial folder" "$(partial_dirs "$REPO")" 0
expect_eq "SIGTERM: replica SQL thread running" "$(replica_sql_running)" Yes
ctl list --all --json
expect_eq "SIGTERM: catalog says aborted" "$(jq -r 'map(select(.status == "aborted")) | length' <<<"$OUT")" 1

BACKUPD_FAULT_CHUNK_DELAY_MS=400 $BACKUPCTL snapshot --chunk-rows 2000 >/dev/null 2>&1 &
pid=$!
check "SIGKILL: snapshot in flight" wait_partial "$REPO"
sleep 0.3
kill -KILL "$pid"
wait "$pid" 2>/dev/null
sql_replica "START SLAVE SQL_THREAD" 2>/dev/null   # what an operator does after a kill -9
expect_eq "SIGKILL: the partial folder exists but is not a snapshot" "$(partial_dirs "$REPO")" 1
ctl list --json
check "SIGKILL: list does not show it" test "$(jq 'length' <<<"$OUT")" -eq "$before"
ctl snapshot
expect_eq "the next snapshot succeeds" "$RC" 0
expect_eq "and removed the leftover" "$(partial_dirs "$REPO")" 0
ctl list --all --json
expect_eq "the killed one is recorded as aborted" "$(jq -r 'map(select(.status == "aborted")) | length' <<<"$OUT")" 2

# --- a byte flipped in a stored file ----------------------------------------
f=$(jq -r '.files[] | select(.path | test("types")) | .path' "$SNAP/manifest.json")
cp "$SNAP/$f" "$ENV_DIR/saved.zst"
printf '\xff' | dd of="$SNAP/$f" bs=1 seek=20 conv=notrunc 2>/dev/null
ctl verify "$ID"
expect_eq "verify of a damaged snapshot exits 10" "$RC" 10
check "and names the file" grep -qF "$f" <<<"$ERR"
cp "$ENV_DIR/saved.zst" "$SNAP/$f"

# --- NFS repository ----------------------------------------------------------
nconf=$(conf_with repository "$NFS_URL")
ctl -c "$nconf" snapshot --json
expect_eq "snapshot to NFS exits 0" "$RC" 0
NID=$(jq -r .id <<<"$OUT")
check "its manifest is on the NFS export" test -f "$NFS_EXPORT_DIR/sandbox/$NID/manifest.json"
ctl -c "$nconf" verify "$NID"
expect_eq "verify over NFS exits 0" "$RC" 0
reset_spare
check "the NFS snapshot loads too" manual_load "$NFS_EXPORT_DIR/sandbox/$NID" "$SPARE_SOCKET"
expect_eq "and matches the source" "$(checksums "$SPARE_SOCKET" | grep -v '^backupd\.')" "$(checksums "$REPLICA_SOCKET" | grep -v '^backupd\.')"
reset_spare

nfs_before=$(visible_dirs "$NFS_EXPORT_DIR")
stop_nfs
start=$SECONDS
ctl -c "$nconf" snapshot
expect_eq "NFS server down: exit 7 (storage)" "$RC" 7
check "NFS server down: fails within 30 s" test $((SECONDS - start)) -lt 30
check "NFS server down: one-line message naming the repository" grep -q "nfs://127.0.0.1/export" <<<"$ERR"
expect_eq "NFS server down: replica SQL thread running" "$(replica_sql_running)" Yes
check "NFS server restarts" start_nfs

BACKUPD_FAULT_CHUNK_DELAY_MS=400 $BACKUPCTL -c "$nconf" snapshot --chunk-rows 2000 >/dev/null 2>"$ENV_DIR/nfs.err" &
pid=$!
check "NFS stopped mid-snapshot: snapshot in flight" wait_partial "$NFS_EXPORT_DIR"
sleep 0.3
stop_nfs
wait "$pid"
rc=$?
check "NFS stopped mid-snapshot: non-zero exit ($rc)" test "$rc" -ne 0
check "NFS stopped mid-snapshot: the message names the repository" grep -q "nfs://" "$ENV_DIR/nfs.err"
expect_eq "NFS stopped mid-snapshot: replica SQL thread running" "$(replica_sql_running)" Yes
check "NFS server restarts again" start_nfs
expect_eq "NFS stopped mid-snapshot: nothing new visible" "$(visible_dirs "$NFS_EXPORT_DIR")" "$nfs_before"
ctl -c "$nconf" snapshot
expect_eq "next NFS snapshot works" "$RC" 0
expect_eq "and leaves no partial folder on NFS" "$(partial_dirs "$NFS_EXPORT_DIR")" 0

# --- a read-only export and a full one ---------------------------------------
sql_primary "CREATE DATABASE noise; USE noise; CREATE TABLE r (id INT PRIMARY KEY, b VARBINARY(1024)) ENGINE=InnoDB; INSERT INTO r SELECT seq, RANDOM_BYTES(1024) FROM seq_1_to_3000"
wait_replica_caught_up 10
ctl -c "$(conf_with repository "$NFS_RO_URL")" snapshot
expect_eq "read-only NFS export: exit 7 (storage)" "$RC" 7
check "read-only NFS export: the message says so" grep -q "Read-only file system" <<<"$ERR"
ctl -c "$(conf_with repository "$NFS_FULL_URL")" snapshot
expect_eq "full NFS export (2 MiB, 3 MB of random rows): exit 17 (no space)" "$RC" 17
check "full NFS export: the message says no space" grep -q "No space left on device" <<<"$ERR"
check "full NFS export: one error line" test "$(grep -c '^backupctl: ' <<<"$ERR")" -eq 1
expect_eq "full NFS export: nothing left behind" "$(partial_dirs "$ENV_DIR/nfs-full")" 0
expect_eq "full NFS export: replica SQL thread running" "$(replica_sql_running)" Yes
ctl list --all --json
check "the failures are in the catalog with their reason" \
	test "$(jq '[.[] | select(.status == "failed") | select(.reason | test("No space|Read-only"))] | length' <<<"$OUT")" -eq 2
sql_primary "DROP DATABASE noise"
wait_replica_caught_up 10

# --- a table dropped during the dump ---------------------------------------
sql_primary "CREATE TABLE shop.doomed (id INT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO shop.doomed VALUES (1),(2),(3)"
wait_replica_caught_up 10
before=$(visible_dirs "$REPO")
BACKUPD_FAULT_CHUNK_DELAY_MS=300 $BACKUPCTL snapshot --json --chunk-rows 2000 >"$ENV_DIR/drop.out" 2>"$ENV_DIR/drop.err" &
pid=$!
wait_partial "$REPO"
sleep 0.3
sql_primary "DROP TABLE shop.doomed"
wait "$pid"
rc=$?
if [ "$rc" -eq 0 ]; then
	did=$(jq -r .id "$ENV_DIR/drop.out")
	# Correct either way: the table with its 3 rows (dropped after the
	# position) or no table at all (dropped before it).
	rows=$(jq '[.tables[] | select(.name == "doomed") | .rows] | first // "absent"' "$REPO/sandbox/$did/manifest.json")
	check "table dropped mid-dump: a correct snapshot ($rows)" test "$rows" = 3 -o "$rows" = absent
else
	check "table dropped mid-dump: a one-line error" test "$(wc -l < "$ENV_DIR/drop.err")" -ge 1
	expect_eq "table dropped mid-dump: nothing visible" "$(visible_dirs "$REPO")" "$before"
fi
expect_eq "table dropped mid-dump: no partial folder" "$(partial_dirs "$REPO")" 0
wait_replica_caught_up 10
expect_eq "table dropped mid-dump: replica SQL thread running" "$(replica_sql_running)" Yes

# --- a table altered during the dump ----------------------------------------
sql_primary "CREATE TABLE shop.morphing (id INT PRIMARY KEY, v INT) ENGINE=InnoDB; INSERT INTO shop.morphing VALUES (1,1),(2,2)"
wait_replica_caught_up 10
before=$(visible_dirs "$REPO")
BACKUPD_FAULT_CHUNK_DELAY_MS=300 $BACKUPCTL snapshot --json --chunk-rows 2000 >"$ENV_DIR/alter.out" 2>"$ENV_DIR/alter.err" &
pid=$!
wait_partial "$REPO"
sleep 0.3
sql_primary "ALTER TABLE shop.morphing ADD COLUMN w VARCHAR(10) DEFAULT 'new'"
wait "$pid"
rc=$?
if [ "$rc" -eq 0 ]; then
	aid=$(jq -r .id "$ENV_DIR/alter.out")
	# Correct either way: the old shape (altered after the position) with
	# its rows, or the new one.
	ncols=$(jq '[.tables[] | select(.name == "morphing") | .columns | length] | first' "$REPO/sandbox/$aid/manifest.json")
	rows=$(jq '[.tables[] | select(.name == "morphing") | .rows] | first' "$REPO/sandbox/$aid/manifest.json")
	check "table altered mid-dump: a consistent snapshot ($ncols columns, $rows rows)" test "$rows" = 2 -a \( "$ncols" = 2 -o "$ncols" = 3 \)
	check "and its DDL matches its columns" test "$(jq -r '[.tables[] | select(.name == "morphing") | .create_sql] | first' "$REPO/sandbox/$aid/manifest.json" | grep -c '`w`')" -eq "$((ncols - 2))"
else
	check "table altered mid-dump: a one-line error" grep -q '^backupctl: ' "$ENV_DIR/alter.err"
	expect_eq "table altered mid-dump: nothing visible" "$(visible_dirs "$REPO")" "$before"
fi
expect_eq "table altered mid-dump: no partial folder" "$(partial_dirs "$REPO")" 0
wait_replica_caught_up 10
expect_eq "table altered mid-dump: replica SQL thread running" "$(replica_sql_running)" Yes

sql_primary "DROP DATABASE \`odd\`\`db \"q\" ü\`; DROP DATABASE shop"
wait_replica_caught_up 10
finish
