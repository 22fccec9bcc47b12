#!/usr/bin/env bash
# restore.sh — backupctl restore against myloader and `zstd -dc | mariadb` on
# the same sysbench data, in one run, into the same standalone server (the
# env's spare), plus backupctl restore with secondary keys created with
# their tables (--no-defer-indexes, against the default of building them
# right after each table's data), and the full rebuild of the replica (wipe, restore, re-attach, catch
# up, checksum proof). Prints wall time, client CPU, target-server CPU, peak
# RSS and the ratios issue 4 names; writes them as Markdown to
# bench/out/restore-<date>.md.
#
#   bench/restore.sh [--tables N] [--rows N] [--threads N] [--repeat N] [--no-rebuild]
#   defaults: 8 tables x 500000 rows, 2 threads (backupctl --threads, myloader -t),
#   each tool run 2x keeping the best wall time (--repeat N).
#
# Every tool loads sbtest into the spare with binary logging off for its
# session (myloader's default; `SET sql_log_bin=0` in front of the dump;
# backupctl --no-binlog), after the spare was emptied. The dumps come from the
# replica: mydumper uncompressed (its fastest input), mariadb-dump | zstd -3.
# backupctl restores a snapshot of the whole cluster taken here (so the same
# snapshot can rebuild the replica) with --databases sbtest. Other databases
# the bench left on the primary (sbsmall of bench/snapshot.sh) are dropped
# first, so the rebuild moves exactly the default set.
#
# BENCH_ENV_DIR=DIR reuses a running tests/env environment (data already
# loaded with the same sizes is kept); BACKUPCTL=PATH benchmarks another build.
# Options of bench/snapshot.sh that run.sh passes along are accepted and ignored.
# shellcheck disable=SC2317 # the tool functions run through bench_repeat
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

TABLES=8 ROWS=500000 THREADS=2 REPEAT=2 REBUILD=1
CMDLINE="bench/restore.sh $*"
usage() {
	sed -n 's/^#   //p' "$0" >&2
	exit 2
}
num() { [[ $2 =~ ^[0-9]+$ ]] || { echo "restore.sh: $1 needs a number" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
	case $1 in
	--tables) num "$1" "${2:-}"; TABLES=$2; shift 2 ;;
	--rows) num "$1" "${2:-}"; ROWS=$2; shift 2 ;;
	--threads) num "$1" "${2:-}"; THREADS=$2; shift 2 ;;
	--repeat) num "$1" "${2:-}"; REPEAT=$2; shift 2 ;;
	--no-rebuild) REBUILD=0; shift ;;
	--small-rows) shift 2 ;;       # bench/snapshot.sh's, via run.sh
	--no-mariabackup) shift ;;
	-h | --help) usage ;;
	*) echo "restore.sh: unknown argument '$1'" >&2; usage ;;
	esac
done
if [ "$TABLES" -lt 1 ] || [ "$ROWS" -lt 1 ] || [ "$THREADS" -lt 1 ] || [ "$REPEAT" -lt 1 ]; then usage; fi
DB=sbtest

for c in sysbench mydumper myloader mariadb-dump mariadb zstd jq /usr/bin/time; do
	command -v "$c" >/dev/null || bench_die "missing command '$c'"
done

if [ -z "${BENCH_LOCKED:-}" ]; then
	exec 9>"${BENCH_TMPDIR:-/tmp}/backupd-bench.lock"
	flock -n 9 || bench_die "another backupd bench is running (lock ${BENCH_TMPDIR:-/tmp}/backupd-bench.lock)"
fi

trap bench_env_stop EXIT
trap 'exit 130' INT TERM
bench_env_start
bench_freeze_binary
CNF=$BENCH_WORK/testadmin.cnf
bench_client_cnf testadmin "$CNF"

bench_load_sysbench "$DB" "$TABLES" "$ROWS" "$THREADS"
for d in $(sql_primary "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ('mysql','information_schema','performance_schema','sys','backupd','$DB')"); do
	bench_say "dropping database '$d' on the primary: the rebuild moves the default set only"
	sql_primary "DROP DATABASE \`$d\`"
done
wait_replica_caught_up 600 || bench_die "the replica did not catch up"

SPID=$(cat "$SPARE_PIDFILE")
DATA_MB=$(sql_replica "SELECT ROUND(SUM(DATA_LENGTH + INDEX_LENGTH) / 1e6) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '$DB'")
WANT_ROWS=$((TABLES * ROWS))

# The config of the run: the env's, with our own catalog and repository.
RDIR=$BENCH_WORK/restore
mkdir -p "$RDIR/repo"
CONF=$RDIR/backupd.conf
(
	umask 077
	sed -e "s|^threads *=.*|threads        = $THREADS|" \
		-e "s|^catalog *=.*|catalog        = $RDIR/catalog.db|" \
		-e "s|^repository *=.*|repository     = $RDIR/repo|" \
		"$BACKUPD_CONFIG" >"$CONF"
)
COMMANDS=("sysbench oltp_read_write --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port=PRIMARY --mysql-user=testadmin --mysql-password=... --mysql-db=$DB --tables=$TABLES --table-size=$ROWS --threads=$THREADS prepare")

# ------------------------------------------------------------------ inputs (not measured)

bench_say "taking the snapshot, the mydumper dump and the mysqldump dump (not measured)"
"$BENCH_BACKUPCTL" -c "$CONF" snapshot --json >"$RDIR/snap.json" 2>"$RDIR/snap.err" ||
	{ cat "$RDIR/snap.err" >&2; bench_die "backupctl snapshot failed"; }
SNAP_ID=$(jq -r .id "$RDIR/snap.json")
SNAP_MB=$(jq -r '.bytes_stored / 1e6 | floor' "$RDIR/snap.json")
"$BENCH_BACKUPCTL" -c "$CONF" verify "$SNAP_ID" >/dev/null 2>"$RDIR/verify.err" ||
	{ cat "$RDIR/verify.err" >&2; bench_die "backupctl verify failed"; }
COMMANDS+=("backupctl -c CONF snapshot   # from the replica, compress_level $(sed -n 's/^compress_level *= *\([0-9]*\).*/\1/p' "$CONF"), threads $THREADS, whole cluster ($SNAP_MB MB stored)")
mydumper --defaults-file="$CNF" --host=127.0.0.1 --port="$REPLICA_PORT" --database="$DB" \
	--threads="$THREADS" --outputdir="$RDIR/mydumper" >/dev/null 2>"$RDIR/mydumper.err" ||
	{ cat "$RDIR/mydumper.err" >&2; bench_die "mydumper failed"; }
COMMANDS+=("mydumper --defaults-file=CNF --host=127.0.0.1 --port=REPLICA --database=$DB --threads=$THREADS --outputdir=DIR")
mariadb-dump --defaults-file="$CNF" --port="$REPLICA_PORT" --single-transaction --routines --events \
	--triggers --databases "$DB" 2>"$RDIR/dump.err" | zstd -3 -T1 -q -f -o "$RDIR/dump.sql.zst" ||
	{ cat "$RDIR/dump.err" >&2; bench_die "mariadb-dump | zstd failed"; }
COMMANDS+=("mariadb-dump --defaults-file=CNF --port=REPLICA --single-transaction --routines --events --triggers --databases $DB | zstd -3 -T1 -o dump.sql.zst")

# ------------------------------------------------------------------ tools

# The spare as every tool finds it: no sbtest, no GTIDs, binlog empty.
reset_spare() {
	sql_spare "SET SESSION sql_log_bin = 0; DROP DATABASE IF EXISTS \`$DB\`; RESET MASTER" ||
		bench_die "cannot reset the spare"
}

# check_loaded: sbtest on the spare holds every row (the tools load the
# same data; a short load must not win).
check_loaded() {
	local n
	n=$(for ((i = 1; i <= TABLES; i++)); do sql_spare "SELECT COUNT(*) FROM \`$DB\`.sbtest$i"; done |
		awk '{ s += $1 } END { print s + 0 }')
	[ "$n" = "$WANT_ROWS" ] || { bench_say "the spare holds $n rows, not $WANT_ROWS"; return 1; }
}

# run_backupctl KEY [extra options]
run_backupctl() {
	local -a extra=("${@:2}")
	reset_spare
	bench_measure "$SPID" "" -- "$BENCH_BACKUPCTL" -c "$CONF" restore "$SNAP_ID" \
		--target "127.0.0.1:$SPARE_PORT" --databases "$DB" --threads "$THREADS" --no-binlog --json "${extra[@]}" ||
		{ cat "$BENCH_WORK/last.err" >&2; bench_say "backupctl restore failed"; return 1; }
	check_loaded || return 1
	R_WALL=$M_WALL R_CPU=$M_CPU R_SRV=$M_SRV R_RSS=$M_RSS
	R_BYTES=$(jq -r .bytes_raw "$BENCH_WORK/last.out")
	R_NOTE=$(jq -r '"phases: " + ([.phases | to_entries[] | "\(.key) \(.value * 100 | floor / 100)"] | join(", "))' "$BENCH_WORK/last.out")
	R_NOTE="$R_NOTE; load $M_LOAD"
}

run_myloader() {
	reset_spare
	bench_measure "$SPID" "" -- myloader --defaults-file="$CNF" --host=127.0.0.1 --port="$SPARE_PORT" \
		--directory="$RDIR/mydumper" --threads="$THREADS" ||
		{ cat "$BENCH_WORK/last.err" >&2; bench_say "myloader failed"; return 1; }
	check_loaded || return 1
	R_WALL=$M_WALL R_CPU=$M_CPU R_SRV=$M_SRV R_RSS=$M_RSS
	R_BYTES=$(du -sb "$RDIR/mydumper" | cut -f1)
	R_NOTE="binlog off (its default), uncompressed input; load $M_LOAD"
}

run_mysqldump() {
	reset_spare
	# shellcheck disable=SC2016 # expanded by the inner bash
	bench_measure "$SPID" "" -- bash -c 'set -o pipefail
		{ echo "SET SESSION sql_log_bin = 0;"; zstd -dc "$1"; } | mariadb --defaults-file="$2" --port="$3"' \
		_ "$RDIR/dump.sql.zst" "$CNF" "$SPARE_PORT" ||
		{ cat "$BENCH_WORK/last.err" >&2; bench_say "zstd -dc | mariadb failed"; return 1; }
	check_loaded || return 1
	R_WALL=$M_WALL R_CPU=$M_CPU R_SRV=$M_SRV R_RSS=$M_RSS
	R_BYTES=$(stat -c %s "$RDIR/dump.sql.zst")
	R_NOTE="client CPU = zstd + mariadb; load $M_LOAD"
}

# run_rebuild: the replica wiped (new empty datadir, started) and rebuilt
# from the snapshot. Server CPU is the replica's.
declare -A REBUILD_READY=()  # wall -> wall minus the proof, per run
run_rebuild() {
	local rpid
	# fd 9 (the bench lock) must not live on in the new mariadbd
	wipe_server replica >/dev/null 2>&1 9>&- || { bench_say "wipe_server replica failed"; return 1; }
	rpid=$(cat "$REPLICA_PIDFILE")
	bench_measure "$rpid" "" -- "$BENCH_BACKUPCTL" -c "$CONF" rebuild "127.0.0.1:$REPLICA_PORT" \
		--threads "$THREADS" --json ||
		{ cat "$BENCH_WORK/last.err" >&2; bench_say "backupctl rebuild failed"; return 1; }
	local json
	json=$(cat "$BENCH_WORK/last.out")
	R_WALL=$M_WALL R_CPU=$M_CPU R_SRV=$M_SRV R_RSS=$M_RSS
	REBUILD_READY[$M_WALL]=$(jq -r --arg w "$M_WALL" '($w | tonumber) - .restore.phases.consistency | . * 100 | floor / 100' <<<"$json")
	R_BYTES=$(jq -r .restore.bytes_raw <<<"$json")
	R_NOTE=$(jq -r '"phases: " + ([.restore.phases | to_entries[] | "\(.key) \(.value * 100 | floor / 100)"] | join(", ")) + "; caught up in \(.restore.replica.catchup_s * 100 | floor / 100) s, proof: \(.restore.replica.verify_chunks) chunks equal"' <<<"$json")
	R_NOTE="$R_NOTE; load $M_LOAD"
}

FAILED=()
measure() {
	local key=$1 label=$2
	shift 2
	bench_say "running: $label"
	if bench_repeat "$REPEAT" "$@"; then
		bench_record "$key" "$label"
	else
		FAILED+=("$label")
	fi
}

# ------------------------------------------------------------------ the run

L=$THREADS
measure rs "backupctl restore -t $L" run_backupctl rs
COMMANDS+=("backupctl -c CONF restore ID --target 127.0.0.1:SPARE --databases $DB --threads $L --no-binlog --json")
measure rskeep "backupctl restore -t $L --no-defer-indexes" run_backupctl rskeep --no-defer-indexes
COMMANDS+=("backupctl -c CONF restore ID --target 127.0.0.1:SPARE --databases $DB --threads $L --no-binlog --no-defer-indexes --json")
measure myl "myloader -t $L" run_myloader
COMMANDS+=("myloader --defaults-file=CNF --host=127.0.0.1 --port=SPARE --directory=DIR --threads=$L")
measure dump "zstd -dc dump.sql.zst | mariadb" run_mysqldump
COMMANDS+=("{ echo 'SET SESSION sql_log_bin = 0;'; zstd -dc dump.sql.zst; } | mariadb --defaults-file=CNF --port=SPARE")
reset_spare
if [ "$REBUILD" = 1 ]; then
	measure rebuild "backupctl rebuild (replica wiped)" run_rebuild
	COMMANDS+=("wipe_server replica; backupctl -c CONF rebuild 127.0.0.1:REPLICA --threads $L --json   # snapshot verified beforehand")
fi

bench_ratio "restore wall / myloader wall" rs 1 myl "<= 0.4"
bench_ratio "restore wall / zstd -dc | mariadb wall" rs 1 dump "<= 0.4"
bench_ratio "restore (keys after the data) / (keys with the table) wall" rs 1 rskeep "<= 1.0"
bench_ratio "restore (keys after the data) / (keys with the table) server CPU" rs 3 rskeep "<= 1.0"
bench_ratio "restore server CPU / myloader server CPU" rs 3 myl "<= 1.0"
if w=$(bench_field rebuild 1); then
	bench_absolute "rebuild until caught up (wall minus the proof)" "${REBUILD_READY[$w]}" s "<= 20"
	bench_absolute "rebuild with the checksum proof (wall)" "$w" s "<= 20"
fi

# ------------------------------------------------------------------ report

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$HERE/out"
MD=$HERE/out/restore-$STAMP.md
BIN_TREE=$(cd "$(dirname "$BENCH_BACKUPCTL_SRC")/.." && pwd -P)
if [ -n "${BACKUPCTL_REV:-}" ]; then
	REV_TEXT="tree $BACKUPCTL_REV"
elif REV=$(git -C "$BIN_TREE" rev-parse --short HEAD 2>/dev/null); then
	REV_TEXT="tree $REV, $(git -C "$BIN_TREE" status --porcelain -- lib restore cli | wc -l) locally changed files under lib/ restore/ cli/"
else
	REV_TEXT="tree $BIN_TREE, not a git work tree"
fi
{
	echo "# backupctl restore benchmark, $STAMP"
	echo
	echo "Command: \`$CMDLINE\` (resolved: --tables $TABLES --rows $ROWS --threads $THREADS --repeat $REPEAT)"
	echo
	echo "- machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, shared with other work"
	echo "- backupctl: $BENCH_BACKUPCTL_SRC ($REV_TEXT)"
	echo "- MariaDB $(sql_spare 'SELECT VERSION()'), innodb_buffer_pool_size 64M (tests/env), $(mydumper --version | cut -d, -f1), $(sysbench --version), $(zstd --version | grep -o 'v[0-9.]*' | head -n1)"
	echo "- data: sysbench oltp, $DB: $TABLES tables x $ROWS rows = $DATA_MB MB InnoDB (data + index); snapshot $SNAP_MB MB stored"
	echo "- target: the env's standalone spare, emptied before each tool; server CPU = user+sys of its mariadbd during the run (the replica's for the rebuild); RSS from /usr/bin/time %M"
	echo
	bench_table_md
	echo
	echo "Commands (CNF = a 0600 option file with the testadmin account; CONF = the env's backupd.conf with threads $THREADS; PRIMARY, REPLICA, SPARE = the servers' ports):"
	echo
	for c in "${COMMANDS[@]}"; do echo "    $c"; done
	if [ ${#FAILED[@]} -gt 0 ]; then
		echo
		echo "Failed (left out of the table): ${FAILED[*]}"
	fi
} >"$MD"

echo
echo "== $CMDLINE"
echo "== $TABLES tables x $ROWS rows ($DATA_MB MB InnoDB), threads $THREADS, each tool ${REPEAT}x"
echo
bench_table_text
echo
echo "written: $MD"
[ ${#FAILED[@]} -eq 0 ] || { bench_say "failed: ${FAILED[*]}"; exit 1; }
exit 0
