#!/usr/bin/env bash
# Restores against the real servers: the odd dataset round-trips exactly into
# the spare (CHECKSUM TABLE and row counts equal to the source for every
# table, views, triggers, routines and events there and working); filters;
# every refusal (the primary, a target holding the snapshot's databases, an
# unknown id, a damaged stored file, an unsafe password file) is one clear
# line, a non-zero exit and a target left as it was; --as-replica-of turns
# the spare into a replica at the snapshot's GTID while the primary takes
# writes, proves it equal and keeps it replicating; rebuild brings a wiped
# replica back. Leaves the env as it found it: the replica replicating from
# the primary, the spare empty, writable, with no GTIDs and no replication.
set -u
source "$ROOT/tests/integration/lib.sh"

REPO=$ENV_DIR/repo
SPARE=127.0.0.1:$SPARE_PORT
ODD_Q='`odd``db "q" ü`'
SYSDBS="'mysql','information_schema','performance_schema','sys'"

user_dbs() { # SQL_FN: the non-system databases, sorted, one line
	"$1" "SELECT IFNULL(GROUP_CONCAT(SCHEMA_NAME ORDER BY SCHEMA_NAME SEPARATOR ','), '') FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ($SYSDBS)"
}
# The proof's bookkeeping table is backupd's, not the data's.
data_checksums() { checksums "$1" | grep -v '^backupd\.restore_checksums'; }
# "schema.table rows" for every base table.
rowcounts() {
	local sock=$1
	mariadb --no-defaults -uroot -S "$sock" -N -B -e "SELECT CONCAT('SELECT ''', REPLACE(REPLACE(TABLE_SCHEMA, '\\\\', '\\\\\\\\'), '''', ''''''), '.', REPLACE(REPLACE(TABLE_NAME, '\\\\', '\\\\\\\\'), '''', ''''''), ''', COUNT(*) FROM \`', REPLACE(TABLE_SCHEMA, '\`', '\`\`'), '\`.\`', REPLACE(TABLE_NAME, '\`', '\`\`'), '\`;') FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN ($SYSDBS) AND NOT (TABLE_SCHEMA = 'backupd' AND TABLE_NAME = 'restore_checksums') ORDER BY TABLE_SCHEMA, TABLE_NAME" |
		mariadb --no-defaults -uroot -S "$sock" -N -B | sort
}
objects() { # SQL_FN: views, triggers, routines, events of the odd database with their modes
	"$1" "SELECT CONCAT('view ', TABLE_NAME) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'odd\`db \"q\" ü'
	      UNION ALL SELECT CONCAT('trigger ', TRIGGER_NAME, ' ', EVENT_OBJECT_TABLE, ' ', ACTION_TIMING, ' ', SQL_MODE, ' ', CHARACTER_SET_CLIENT) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'odd\`db \"q\" ü'
	      UNION ALL SELECT CONCAT('routine ', ROUTINE_TYPE, ' ', ROUTINE_NAME, ' ', SQL_MODE, ' ', IS_DETERMINISTIC) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'odd\`db \"q\" ü'
	      UNION ALL SELECT CONCAT('event ', EVENT_NAME, ' ', SQL_MODE, ' ', TIME_ZONE, ' ', INTERVAL_VALUE, ' ', INTERVAL_FIELD) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'odd\`db \"q\" ü'" | sort
}
# The spare as the env made it: no data, no replication, no GTIDs, writable.
reset_spare() {
	sql_spare "STOP SLAVE; RESET SLAVE ALL" 2>/dev/null
	sql_spare "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ($SYSDBS)" |
		while IFS= read -r db; do
			sql_spare "SET SESSION sql_log_bin=0; DROP DATABASE \`${db//\`/\`\`}\`"
		done
	sql_spare "RESET MASTER; SET GLOBAL gtid_slave_pos = ''; SET GLOBAL read_only = 0"
}
events_of() { sqlite3 "$CATALOG" "SELECT COUNT(*) FROM events WHERE kind = '$1'" 2>/dev/null || echo 0; }

sql_primary "SOURCE $ROOT/tests/data/oddities.sql" >/dev/null
# An AUTO_INCREMENT id 0, which a load without NO_AUTO_VALUE_ON_ZERO renumbers.
sql_primary "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'; INSERT INTO $ODD_Q.\`Ω table\` (id, v) VALUES (0, 'zero')"
check "replica caught up with the odd dataset" wait_replica_caught_up 30
reset_spare
done0=$(events_of restore.done) rebuilt0=$(events_of replica.rebuilt) rbfail0=$(events_of replica.rebuild_failed)

ctl snapshot --json --chunk-rows 5000
expect_eq "snapshot for the restores exits 0" "$RC" 0
ID=$(jq -r .id <<<"$OUT")
SNAP=$REPO/sandbox/$ID
check "the snapshot has a manifest" test -f "$SNAP/manifest.json"

# --- the round trip --------------------------------------------------------
ctl restore "$ID" --target "$SPARE" --json
expect_eq "restore into the empty spare exits 0" "$RC" 0
check "restore --json is one JSON document" jq -e . <<<"$OUT" >/dev/null
expect_eq "restore restored every table of the manifest" "$(jq .tables <<<"$OUT")" "$(jq '.tables | length' "$SNAP/manifest.json")"
expect_eq "restore loaded every row of the manifest" "$(jq .rows <<<"$OUT")" "$(jq .totals.rows "$SNAP/manifest.json")"
expect_eq "CHECKSUM TABLE equal to the source for every table" "$(data_checksums "$SPARE_SOCKET")" "$(data_checksums "$PRIMARY_SOCKET")"
expect_eq "row counts equal to the source for every table" "$(rowcounts "$SPARE_SOCKET")" "$(rowcounts "$PRIMARY_SOCKET")"
check "the checksum list is not empty" test "$(data_checksums "$SPARE_SOCKET" | wc -l)" -ge 12
expect_eq "views, triggers, routines, events equal to the source (with sql_mode, charset)" "$(objects sql_spare)" "$(objects sql_primary)"
check "there are 2 views, 1 trigger, 2 routines, 1 event" test "$(objects sql_spare | wc -l)" -eq 6
expect_eq "the view on a view works" "$(sql_spare "SELECT COUNT(*) FROM $ODD_Q.\`v of v\`")" 2
expect_eq "the function works" "$(sql_spare "SELECT $ODD_Q.\`fn\`\`f\`(41)")" 42
expect_eq "the procedure works" "$(sql_spare "CALL $ODD_Q.\`proc \"p\"\`(21)")" 42
expect_eq "AUTO_INCREMENT id 0 survived" "$(sql_spare "SELECT v FROM $ODD_Q.\`Ω table\` WHERE id = 0")" "zero"
expect_eq "log_bin_trust_function_creators is off again" "$(sql_spare 'SELECT @@GLOBAL.log_bin_trust_function_creators')" 0
expect_eq "the catalog records the restore as ok" \
	"$(sqlite3 "$CATALOG" "SELECT result || ' ' || target FROM restores ORDER BY id DESC LIMIT 1")" "ok $SPARE"
check "the catalog's restore row has phase timings" \
	test "$(sqlite3 "$CATALOG" "SELECT json_array_length(phases) FROM restores ORDER BY id DESC LIMIT 1")" -ge 3
expect_eq "a restore.done event was queued" "$(events_of restore.done)" $((done0 + 1))

# --- refusals: one line, non-zero, target untouched -------------------------
before_spare=$(data_checksums "$SPARE_SOCKET")
before_primary=$(data_checksums "$PRIMARY_SOCKET")
ctl restore "$ID" --target "$SPARE"
expect_eq "a target holding the snapshot's databases is refused (exit 11)" "$RC" 11
check "  one line naming the server and the databases" \
	bash -c '[ "$(wc -l <<<"$1")" -eq 1 ] && grep -qF "$2" <<<"$1" && grep -qF "shop" <<<"$1" && grep -q "already holds" <<<"$1"' _ "$ERR" "$SPARE"
expect_eq "  the spare is untouched" "$(data_checksums "$SPARE_SOCKET")" "$before_spare"

ctl restore "$ID" --target "127.0.0.1:$PRIMARY_PORT" --databases shop
expect_eq "restoring into the primary is refused (exit 11)" "$RC" 11
check "  one line naming the primary" bash -c '[ "$(wc -l <<<"$1")" -eq 1 ] && grep -qF "$2" <<<"$1" && grep -q "current primary" <<<"$1"' _ "$ERR" "127.0.0.1:$PRIMARY_PORT"
expect_eq "  the primary is untouched" "$(data_checksums "$PRIMARY_SOCKET")" "$before_primary"
check "  the refused attempt is on record" \
	bash -c '[ "$(sqlite3 "$1" "SELECT result FROM restores ORDER BY id DESC LIMIT 1")" = failed ] &&
		sqlite3 "$1" "SELECT error_message FROM restores ORDER BY id DESC LIMIT 1" | grep -q "current primary"' _ "$CATALOG"

ctl restore 20991231T000000Z-dead --target "$SPARE"
expect_eq "an unknown snapshot id is not found (exit 9)" "$RC" 9
check "  one line naming the id" bash -c '[ "$(wc -l <<<"$1")" -eq 1 ] && grep -q "20991231T000000Z-dead" <<<"$1"' _ "$ERR"

printf 'pw' >"$ENV_DIR/loose.pw"
chmod 644 "$ENV_DIR/loose.pw"
ctl restore "$ID" --target "$SPARE" --user backupd --password-file "$ENV_DIR/loose.pw"
expect_eq "a password file readable by others is refused (exit 20)" "$RC" 20
check "  the message says chmod 600" grep -q "chmod 600" <<<"$ERR"
rm -f "$ENV_DIR/loose.pw"

reset_spare
f=$(jq -r '.files[] | select(.path | test("orders")) | .path' "$SNAP/manifest.json" | tail -n 1)
cp "$SNAP/$f" "$ENV_DIR/saved.zst"
printf '\xff' | dd of="$SNAP/$f" bs=1 seek=300 conv=notrunc 2>/dev/null
ctl restore "$ID" --target "$SPARE"
expect_eq "a damaged stored file fails the restore (exit 10)" "$RC" 10
check "  one line naming the file" bash -c '[ "$(wc -l <<<"$1")" -eq 1 ] && grep -qF "$2" <<<"$1"' _ "$ERR" "$f"
expect_eq "  the spare holds none of the snapshot's databases" "$(user_dbs sql_spare)" ""
expect_eq "  the catalog records the failure" \
	"$(sqlite3 "$CATALOG" "SELECT result FROM restores ORDER BY id DESC LIMIT 1")" failed
cp "$ENV_DIR/saved.zst" "$SNAP/$f"

# --- filters and --force -----------------------------------------------------
pos_before=$(sql_spare 'SELECT @@GLOBAL.gtid_binlog_pos')
ctl restore "$ID" --target "$SPARE" --databases shop --no-binlog
expect_eq "--databases shop exits 0" "$RC" 0
expect_eq "  only shop is there" "$(user_dbs sql_spare)" shop
expect_eq "  and no GTID was written on the spare (--no-binlog)" "$(sql_spare 'SELECT @@GLOBAL.gtid_binlog_pos')" "$pos_before"
ctl restore "$ID" --target "$SPARE" --tables "$ODD_Q.types,$ODD_Q.parent"
expect_eq "--tables exits 0" "$RC" 0
expect_eq "  only those tables are in the odd database" \
	"$(sql_spare "SELECT GROUP_CONCAT(TABLE_NAME ORDER BY TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'odd\`db \"q\" ü'")" "parent,types"
expect_eq "  with the trigger of parent and no views or routines" \
	"$(objects sql_spare | cut -d' ' -f1 | tr '\n' ' ')" "trigger "
expect_eq "  types equals the source" "$(data_checksums "$SPARE_SOCKET" | grep types)" "$(data_checksums "$PRIMARY_SOCKET" | grep types)"
ctl restore "$ID" --target "$SPARE" --tables nodot
expect_eq "a table without its database is a usage error (exit 2)" "$RC" 2
ctl restore "$ID" --target "$SPARE" --force --threads 3
expect_eq "--force replaces what the spare holds" "$RC" 0
expect_eq "  and it equals the source" "$(data_checksums "$SPARE_SOCKET")" "$(data_checksums "$PRIMARY_SOCKET")"
reset_spare

# --- --as-replica-of while the primary takes writes --------------------------
sql_primary "CREATE TABLE shop.after_snapshot (id INT AUTO_INCREMENT PRIMARY KEY, at DATETIME(6) DEFAULT NOW(6)) ENGINE=InnoDB"
( for i in $(seq 1 120); do sql_primary "INSERT INTO shop.after_snapshot () VALUES (); UPDATE shop.orders SET total = total + 1 WHERE id = $((i * 17)); DELETE FROM shop.orders WHERE id = $((i * 19 + 7))"; sleep 0.03; done ) &
writer=$!
ctl restore "$ID" --target "$SPARE" --as-replica-of sandbox --json
wait "$writer"
expect_eq "restore --as-replica-of exits 0" "$RC" 0
[ "$RC" = 0 ] || echo "# $ERR"
expect_eq "  it reports the primary" "$(jq -r .replica.primary <<<"$OUT")" "127.0.0.1:$PRIMARY_PORT"
expect_eq "  the checksum proof matched" "$(jq -r '.replica.verified' <<<"$OUT")" true
expect_eq "  with no mismatching chunk" "$(jq -r '.replica.verify_mismatches' <<<"$OUT")" 0
check "  it reports a catch-up time" jq -e '.replica.catchup_s >= 0' <<<"$OUT" >/dev/null
echo "# catch-up $(jq .replica.catchup_s <<<"$OUT") s, proof $(jq .phases.consistency <<<"$OUT") s over $(jq .replica.verify_chunks <<<"$OUT") chunks"
pos=$(sql_primary "SELECT @@GLOBAL.gtid_binlog_pos")
expect_eq "  the spare reaches the primary's position after the writes" "$(sql_spare "SELECT MASTER_GTID_WAIT('$pos', 30)")" 0
expect_eq "  replicating: IO and SQL threads running" "$(env_slave_field spare Slave_IO_Running)/$(env_slave_field spare Slave_SQL_Running)" Yes/Yes
expect_eq "  no replication error" "$(env_slave_field spare Last_SQL_Errno)/$(env_slave_field spare Last_IO_Errno)" 0/0
expect_eq "  writes made after the snapshot reached it" "$(sql_spare 'SELECT COUNT(*) FROM shop.after_snapshot')" 120
expect_eq "  every table equal to the primary" "$(data_checksums "$SPARE_SOCKET")" "$(data_checksums "$PRIMARY_SOCKET")"
expect_eq "  it is read_only" "$(sql_spare 'SELECT @@GLOBAL.read_only')" 1
expect_eq "  its binlog holds no GTID of its own" \
	"$(sql_spare "SELECT @@GLOBAL.gtid_binlog_pos" | tr ',' '\n' | grep -c '^0-3-')" 0
ctl restore "$ID" --target "$SPARE" --as-replica-of sandbox --tables shop.orders
expect_eq "a filtered restore cannot become a replica (exit 2)" "$RC" 2
reset_spare
# The proof notices a replica that differs (a row changed behind its back).
BACKUPD_FAULT_BEFORE_PROOF_SQL="UPDATE shop.orders SET note = 'tampered' WHERE id = 42" \
	ctl restore "$ID" --target "$SPARE" --as-replica-of sandbox
expect_eq "a replica that differs from the primary fails the proof (exit 10)" "$RC" 10
check "  one error line naming the table" bash -c '[ "$(grep -c "^backupctl:" <<<"$1")" -eq 1 ] && grep -q "not equal to the primary: table .shop.\..orders. chunk" <<<"$1"' _ "$ERR"
expect_eq "  and its replication is stopped" "$(env_slave_field spare Slave_SQL_Running)" No
reset_spare

# --- rebuild -------------------------------------------------------------------
ctl rebuild "127.0.0.1:$REPLICA_PORT"
expect_eq "rebuilding a healthy replica is refused (exit 11)" "$RC" 11
check "  the message says it is healthy" grep -q "healthy" <<<"$ERR"
ctl rebuild "$SPARE"
expect_eq "rebuilding a server that is no replica is not found (exit 9)" "$RC" 9
stop_server replica
ctl rebuild "127.0.0.1:$REPLICA_PORT"
expect_eq "rebuilding a replica that is down fails to connect (exit 5)" "$RC" 5
check "  the message says to start it first" grep -q "unreachable: start it first" <<<"$ERR"
check "wipe the replica: a new empty datadir, started" wipe_server replica
( for i in $(seq 1 60); do sql_primary "INSERT INTO shop.after_snapshot () VALUES ()"; sleep 0.05; done ) &
writer=$!
ctl rebuild "127.0.0.1:$REPLICA_PORT" --json
wait "$writer"
expect_eq "rebuild of the wiped replica exits 0" "$RC" 0
[ "$RC" = 0 ] || echo "# $ERR"
expect_eq "  it says why" "$(jq -r .reason <<<"$OUT" | cut -d: -f1)" emptied
expect_eq "  the proof matched" "$(jq -r .restore.replica.verified <<<"$OUT")" true
echo "# rebuild $(jq .seconds <<<"$OUT") s: $(jq -c .restore.phases <<<"$OUT")"
check "  the replica catches up with the primary" wait_replica_caught_up 30
expect_eq "  replicating: IO and SQL threads running" "$(env_slave_field replica Slave_IO_Running)/$(replica_sql_running)" Yes/Yes
expect_eq "  every table equal to the primary" "$(data_checksums "$REPLICA_SOCKET")" "$(data_checksums "$PRIMARY_SOCKET")"
expect_eq "  the catalog records the rebuild with its restore" \
	"$(sqlite3 "$CATALOG" "SELECT b.result || ' ' || b.snapshot_id || ' ' || (r.result = 'ok') FROM rebuilds b JOIN restores r ON r.id = b.restore_id ORDER BY b.id DESC LIMIT 1")" "ok $(jq -r .snapshot <<<"$OUT") 1"
expect_eq "  and a replica.rebuilt event" "$(events_of replica.rebuilt)" $((rebuilt0 + 1))
expect_eq "  and the two failed attempts (healthy, down) as replica.rebuild_failed" \
	"$(events_of replica.rebuild_failed)" $((rbfail0 + 2))

# --- leave the env as it was ----------------------------------------------------
sql_primary "DROP DATABASE \`odd\`\`db \"q\" ü\`; DROP DATABASE shop; DROP TABLE IF EXISTS backupd.restore_checksums"
wait_replica_caught_up 30
reset_spare
expect_eq "the replica replicates from the primary" "$(env_slave_field replica Slave_IO_Running)/$(replica_sql_running)" Yes/Yes
expect_eq "the spare is empty, without replication" "$(user_dbs sql_spare)/$(env_slave_field spare Slave_SQL_Running)" "/"
finish
