#!/usr/bin/env bash
# DR drills against the real spare server: a drill of the odd dataset passes
# (restore, CHECK TABLE, probes, RTO/RPO on record, drill.passed in the
# outbox, spare left empty and without GTIDs of its own); --keep leaves the
# data and the next drill wipes only what drills created; a corrupted stored
# file, a probe without rows, a database no drill created and a target that
# is a cluster's server each fail or refuse the drill with a clear message,
# a drill.failed event and the spare untouched.
set -u
source "$ROOT/tests/integration/lib.sh"
# Its own catalog and repository: "the latest snapshot" is this test's.
REPO=$ENV_DIR/drill-repo
DB=$ENV_DIR/drill.db
rm -rf "$REPO" "$DB" "$DB"-* "$ENV_DIR"/drill-topo.db*
base=$(conf_with catalog "$DB" repository "$REPO")
ctl() { ERRF=$(mktemp "$ENV_DIR/ctl-err.XXXXXX"); OUT=$($BACKUPCTL -c "$base" "$@" 2>"$ERRF"); RC=$?; ERR=$(cat "$ERRF"); rm -f "$ERRF"; }
# with_lines LINE...: the base config plus lines at its end (the cluster
# section is the last one).
with_lines() {
	local out; out=$(mktemp "$ENV_DIR/conf.XXXXXX"); cp "$base" "$out"
	printf '%s\n' "$@" >>"$out"
	chmod 600 "$out"; echo "$out"
}
user_dbs() { # the spare's databases that are not the server's own
	sql_spare "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ('mysql','information_schema','performance_schema','sys') ORDER BY 1" | paste -sd, -
}
q() { sqlite3 "$DB" "$1"; }
events() { q "SELECT COUNT(*) FROM events WHERE kind = '$1'"; }
VERIFY_EXIT=10   # err_exit_status(ERR_VERIFY)
REFUSED_EXIT=11  # err_exit_status(ERR_REFUSED)

sql_primary "SOURCE $ROOT/tests/data/oddities.sql" >/dev/null
check "replica caught up with the odd dataset" wait_replica_caught_up 30
expect_eq "the spare starts empty" "$(user_dbs)" ""
spare_gtid=$(sql_spare "SELECT @@GLOBAL.gtid_binlog_pos")

ctl snapshot
expect_eq "snapshot exits 0" "$RC" 0
ID=$OUT
MAN=$REPO/sandbox/$ID/manifest.json
check "snapshot in the drill repository" test -f "$MAN"
n_tables=$(jq '.tables | length' "$MAN")

# --- a drill that passes, with probes ---------------------------------------
good=$(with_lines 'drill_probe = SELECT id FROM shop.orders WHERE total > 0 LIMIT 1' \
	'drill_probe = USE `odd``db "q" ü`; SELECT * FROM `types` WHERE id = 1')
ctl -c "$good" drill --json
expect_eq "drill exits 0" "$RC" 0
check "drill --json is JSON" jq -e . <<<"$OUT" >/dev/null
DID=$(jq -r .drill_id <<<"$OUT")
expect_eq "drill passed" "$(jq -r .passed <<<"$OUT")" true
expect_eq "drill used the latest snapshot" "$(jq -r .snapshot_id <<<"$OUT")" "$ID"
expect_eq "drill target is the spare" "$(jq -r .target <<<"$OUT")" "127.0.0.1:$SPARE_PORT"
expect_eq "every table restored" "$(jq -r .tables <<<"$OUT")" "$n_tables"
expect_eq "CHECK TABLE ran on every table" "$(jq -r .tables_checked <<<"$OUT")" "$n_tables"
expect_eq "both probes passed" "$(jq -r .probes <<<"$OUT")" 2
expect_eq "rows restored match the manifest" "$(jq -r .rows <<<"$OUT")" "$(jq .totals.rows "$MAN")"
check "RTO measured" jq -e '.rto_s > 0' <<<"$OUT" >/dev/null
check "RPO measured (snapshot data older than the drill)" jq -e '.rpo_s > 0' <<<"$OUT" >/dev/null
expect_eq "phases in order" "$(jq -r '[.phases[].name] | join(",")' <<<"$OUT")" \
	"pick,target,verify,wipe,restore,check,probes,cleanup"
expect_eq "catalog: drill row ok" "$(q "SELECT result FROM drills WHERE id = $DID")" ok
expect_eq "catalog: drill row has snapshot, RTO, RPO and bytes" \
	"$(q "SELECT snapshot_id, rto_s > 0, rpo_s > 0, bytes = $(jq .totals.bytes_raw "$MAN") FROM drills WHERE id = $DID")" "$ID|1|1|1"
expect_eq "catalog: per-phase timings as JSON" \
	"$(q "SELECT json_extract(phases, '\$[4].name') || ',' || (json_extract(phases, '\$[4].seconds') > 0) FROM drills WHERE id = $DID")" "restore,1"
expect_eq "catalog: the drill job is ok and names the snapshot" \
	"$(q "SELECT status, target FROM jobs WHERE kind = 'drill' ORDER BY id DESC LIMIT 1")" "ok|$ID"
expect_eq "outbox: one drill.passed" "$(events drill.passed)" 1
expect_eq "outbox: drill.passed names drill and RTO" \
	"$(q "SELECT json_extract(payload, '\$.drill_id') || ',' || (json_extract(payload, '\$.rto_s') > 0) FROM events WHERE kind = 'drill.passed'")" "$DID,1"
expect_eq "outbox: no restore or verify messages beside the drill's" \
	"$(q "SELECT COUNT(*) FROM events WHERE kind LIKE 'restore.%' OR kind LIKE 'verify.%'")" 0
expect_eq "the spare is empty after the drill" "$(user_dbs)" ""
expect_eq "the drill wrote no GTIDs on the spare" "$(sql_spare "SELECT @@GLOBAL.gtid_binlog_pos")" "$spare_gtid"
expect_eq "the snapshot is marked verified" "$(q "SELECT verify_status FROM snapshots WHERE id = '$ID'")" ok

ctl drills --json
expect_eq "drills --json lists the drill as passed" \
	"$(jq -r --argjson id "$DID" '.[] | select(.id == $id) | .passed' <<<"$OUT")" true
ctl drills
check "drills (text) shows the drill" grep -q "passed" <<<"$OUT"

# --- keep, then the next drill wipes only what drills created ----------------
ctl drill --keep --json
expect_eq "drill --keep passes" "$RC" 0
expect_eq "drill --keep reports the data kept" "$(jq -r .kept <<<"$OUT")" true
check "kept: the snapshot's databases are on the spare" \
	test "$(user_dbs)" = "backupd,backupd_drill,odd\`db \"q\" ü,shop"
expect_eq "kept: the marker lists what the drill created" \
	"$(sql_spare 'SELECT COUNT(*) FROM backupd_drill.created')" 3
want=$(checksums "$PRIMARY_SOCKET")
got=$(checksums "$SPARE_SOCKET" | grep -v '^backupd_drill\.')
expect_eq "kept: every table equals the primary (CHECKSUM TABLE)" "$got" "$want"
sql_spare "SET SESSION sql_log_bin = 0; CREATE DATABASE not_a_drill"
ctl drill --json
expect_eq "next drill passes" "$RC" 0
expect_eq "next drill wiped what the kept drill left" "$(jq -r .wiped <<<"$OUT")" 3
expect_eq "a database no drill created survives" "$(user_dbs)" "not_a_drill"
sql_spare "SET SESSION sql_log_bin = 0; DROP DATABASE not_a_drill"

# --- a database of the snapshot that no drill created: refused --------------
sql_spare "SET SESSION sql_log_bin = 0; CREATE DATABASE shop; CREATE TABLE shop.mine (id INT); INSERT INTO shop.mine VALUES (7)"
before=$(events drill.failed)
ctl drill
expect_eq "foreign database: refused" "$RC" "$REFUSED_EXIT"
check "foreign database: the message names it" grep -q "holds database 'shop', which no drill created" <<<"$ERR"
expect_eq "foreign database: left untouched" "$(sql_spare 'SELECT id FROM shop.mine')" 7
expect_eq "foreign database: a drill.failed event" "$(events drill.failed)" $((before + 1))
sql_spare "SET SESSION sql_log_bin = 0; DROP DATABASE shop"

# --- a probe that returns no rows fails the drill ---------------------------
empty=$(with_lines 'drill_probe = SELECT 1 FROM shop.orders WHERE id < 0')
before=$(events drill.failed)
ctl -c "$empty" drill --json
expect_eq "empty probe: exit status of a failed verification" "$RC" "$VERIFY_EXIT"
expect_eq "empty probe: failed in the probes phase" "$(jq -r .failed_phase <<<"$OUT")" probes
check "empty probe: the message says which probe returned nothing" \
	grep -q "drill probe 1 ('SELECT 1 FROM shop.orders WHERE id < 0') returned no rows" <<<"$ERR"
expect_eq "empty probe: drill row failed with the reason" \
	"$(q "SELECT result, reason LIKE '%returned no rows%' FROM drills ORDER BY id DESC LIMIT 1")" "failed|1"
expect_eq "empty probe: a drill.failed event" "$(events drill.failed)" $((before + 1))
expect_eq "empty probe: no RTO recorded" "$(q "SELECT rto_s IS NULL FROM drills ORDER BY id DESC LIMIT 1")" 1
expect_eq "empty probe: the spare is cleaned up" "$(user_dbs)" ""

# A probe that writes is refused by the read-only transaction.
writer=$(with_lines 'drill_probe = DELETE FROM shop.orders')
ctl -c "$writer" drill
check "writing probe: drill fails" test "$RC" -ne 0
check "writing probe: the message quotes the probe" grep -q "drill probe 1 ('DELETE FROM shop.orders') failed" <<<"$ERR"
expect_eq "writing probe: the spare is cleaned up" "$(user_dbs)" ""

# --- a corrupted stored file fails the drill and names the file --------------
f=$(jq -r '[.files[] | select(.kind == "data")] | max_by(.bytes_stored) | .path' "$MAN")
cp "$REPO/sandbox/$ID/$f" "$ENV_DIR/drill-orig.zst"
size=$(stat -c %s "$REPO/sandbox/$ID/$f")
byte=$(od -An -tx1 -j $((size / 2)) -N1 "$REPO/sandbox/$ID/$f" | tr -d ' ')
printf "\\x$(printf '%02x' $(( 0x$byte ^ 0xff )))" | dd of="$REPO/sandbox/$ID/$f" bs=1 seek=$((size / 2)) conv=notrunc status=none
before=$(events drill.failed)
ctl drill --json
expect_eq "corrupt file: exit status of a failed verification" "$RC" "$VERIFY_EXIT"
expect_eq "corrupt file: failed in the verify phase" "$(jq -r .failed_phase <<<"$OUT")" verify
expect_eq "corrupt file: the report names the file" "$(jq -r .file <<<"$OUT")" "$f"
check "corrupt file: the error names the file" grep -qF "file '$f'" <<<"$ERR"
expect_eq "corrupt file: drill row failed naming the file" \
	"$(q "SELECT result, instr(reason, '$f') > 0 FROM drills ORDER BY id DESC LIMIT 1")" "failed|1"
expect_eq "corrupt file: a drill.failed event in the outbox" "$(events drill.failed)" $((before + 1))
expect_eq "corrupt file: the event names the file" \
	"$(q "SELECT json_extract(payload, '\$.file') FROM events WHERE kind = 'drill.failed' ORDER BY id DESC LIMIT 1")" "$f"
expect_eq "corrupt file: the event is pending for Slack" \
	"$(q "SELECT delivery, severity FROM events WHERE kind = 'drill.failed' ORDER BY id DESC LIMIT 1")" "pending|error"
expect_eq "corrupt file: the snapshot is marked as failing verification" \
	"$(q "SELECT verify_status FROM snapshots WHERE id = '$ID'")" failed
expect_eq "corrupt file: nothing was restored on the spare" "$(user_dbs)" ""
cp "$ENV_DIR/drill-orig.zst" "$REPO/sandbox/$ID/$f"

# --- targets that are servers of a cluster are refused ----------------------
bad=$(conf_with catalog "$DB" repository "$REPO" drill_target "127.0.0.1:$PRIMARY_PORT")
ctl -c "$bad" drill
check "drill_target = primary: refused" test "$RC" -ne 0
check "drill_target = primary: the message says why" grep -q "'drill_target' 127.0.0.1:$PRIMARY_PORT is a server of" <<<"$ERR"

other=$(with_lines '' '[cluster other]' "primary = 127.0.0.1:$SPARE_PORT" 'user = backupd' \
	"password_file = $BACKUPD_PASSWORD_FILE")
before=$(events drill.failed)
ctl -c "$other" drill --cluster sandbox
expect_eq "drill_target = another cluster's primary: exit status of a refusal" "$RC" "$REFUSED_EXIT"
check "drill_target = another cluster's primary: the message says which" \
	grep -q "drill target '127.0.0.1:$SPARE_PORT' is the primary of cluster 'other'" <<<"$ERR"
expect_eq "refused drill: recorded as failed in the target phase" \
	"$(q "SELECT result, json_extract(phases, '\$[1].name'), json_extract(phases, '\$[1].ok') FROM drills ORDER BY id DESC LIMIT 1")" "failed|target|0"
expect_eq "refused drill: a drill.failed event" "$(events drill.failed)" $((before + 1))

# The catalog's topology (after a cutover) counts as well.
topo_db=$ENV_DIR/drill-topo.db
topo=$(conf_with catalog "$topo_db" repository "$REPO")
$BACKUPCTL -c "$topo" drills >/dev/null 2>&1   # creates the catalog
sqlite3 "$topo_db" "INSERT INTO clusters (name, created_at) VALUES ('sandbox', 1); INSERT INTO topology (cluster, primary_addr, changed_at) VALUES ('sandbox', '127.0.0.1:$SPARE_PORT', 1)"
ctl -c "$topo" drill --snapshot "$ID"
check "drill_target = current primary (catalog): refused" test "$RC" -ne 0
check "drill_target = current primary (catalog): the message says so" \
	grep -q "is the current primary of cluster 'sandbox' (catalog topology)" <<<"$ERR"

# A target that replicates from somewhere is somebody's replica.
sql_spare "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = $PRIMARY_PORT, MASTER_USER = 'repl', MASTER_PASSWORD = 'x', MASTER_USE_GTID = slave_pos"
ctl drill
expect_eq "replicating target: refused" "$RC" "$REFUSED_EXIT"
check "replicating target: the message says so" grep -q "replicates from '127.0.0.1:$PRIMARY_PORT'" <<<"$ERR"
sql_spare "RESET SLAVE ALL"
expect_eq "refusals touched nothing on the spare" "$(user_dbs)" ""

# An unreachable drill server fails the drill, on record.
down=$(conf_with catalog "$DB" repository "$REPO" drill_target "127.0.0.1:$(closed_port)")
before=$(events drill.failed)
ctl -c "$down" drill
expect_eq "unreachable target: a connection failure" "$RC" 5
check "unreachable target: the message says so" grep -q "failed in phase target: drill target '127.0.0.1:[0-9]*': unable to connect" <<<"$ERR"
expect_eq "unreachable target: a drill.failed event" "$(events drill.failed)" $((before + 1))

# --- the snapshot passes again once the file is back --------------------------
ctl drill --snapshot "$ID"
expect_eq "drill of the repaired snapshot passes" "$RC" 0
ctl drill --snapshot "no-such-snapshot"
check "unknown snapshot: fails" test "$RC" -ne 0
check "unknown snapshot: the message names it" grep -q "no-such-snapshot" <<<"$ERR"
ctl drill --snapshot "../etc"
expect_eq "malformed snapshot id: usage error, not recorded" \
	"$RC,$(q "SELECT COUNT(*) FROM drills WHERE snapshot_id = '../etc'")" "2,0"

expect_eq "the spare is empty at the end" "$(user_dbs)" ""
expect_eq "the spare has no GTIDs of the drills" "$(sql_spare "SELECT @@GLOBAL.gtid_binlog_pos")" "$spare_gtid"
sql_primary "DROP DATABASE \`odd\`\`db \"q\" ü\`; DROP DATABASE shop"
wait_replica_caught_up 10
finish
