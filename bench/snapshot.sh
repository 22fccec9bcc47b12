#!/usr/bin/env bash
# snapshot.sh — backupctl snapshot against mysqldump|zstd, mydumper and
# mariabackup on the same sysbench data, in one run, from the same replica.
# Prints wall time, client CPU, source-server CPU, peak RSS and output size of
# each, the ratios the targets of issue 3 name, and writes them as Markdown
# to bench/out/snapshot-<date>.md. See bench/README.md.
#
#   bench/snapshot.sh [--tables N] [--rows N] [--threads N] [--repeat N]
#                     [--small-rows N|0] [--no-mariabackup]
#   defaults: 8 tables x 500000 rows, 2 threads (config `threads`, mydumper -t,
#   mariabackup --parallel), each tool run 2x keeping the best wall time, and a
#   second dataset of 8 x rows/4 (--small-rows; 0 skips it) for RSS flatness.
#
# BENCH_ENV_DIR=DIR reuses a running tests/env environment (data already
# loaded with the same sizes is kept); BACKUPCTL=PATH benchmarks another build.
# shellcheck disable=SC2317 # the tool functions run through bench_repeat
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

TABLES=8 ROWS=500000 THREADS=2 REPEAT=2 SMALL_ROWS='' MARIABACKUP=1
CMDLINE="bench/snapshot.sh $*"
usage() {
	sed -n 's/^#   //p' "$0" >&2
	exit 2
}
num() { [[ $2 =~ ^[0-9]+$ ]] || { echo "snapshot.sh: $1 needs a number" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
	case $1 in
	--tables) num "$1" "${2:-}"; TABLES=$2; shift 2 ;;
	--rows) num "$1" "${2:-}"; ROWS=$2; shift 2 ;;
	--threads) num "$1" "${2:-}"; THREADS=$2; shift 2 ;;
	--repeat) num "$1" "${2:-}"; REPEAT=$2; shift 2 ;;
	--small-rows) num "$1" "${2:-}"; SMALL_ROWS=$2; shift 2 ;;
	--no-mariabackup) MARIABACKUP=0; shift ;;
	-h | --help) usage ;;
	*) echo "snapshot.sh: unknown argument '$1'" >&2; usage ;;
	esac
done
if [ "$TABLES" -lt 1 ] || [ "$ROWS" -lt 1 ] || [ "$THREADS" -lt 1 ] || [ "$REPEAT" -lt 1 ]; then usage; fi
: "${SMALL_ROWS:=$((ROWS / 4))}"
DB=sbtest SMALL_DB=sbsmall

for c in sysbench mydumper mariadb-dump zstd jq /usr/bin/time; do
	command -v "$c" >/dev/null || bench_die "missing command '$c'"
done
[ "$MARIABACKUP" = 0 ] || command -v mariabackup >/dev/null || MARIABACKUP=0

# One bench at a time on this shared machine (run.sh takes the lock for us).
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
SNAPDIR=$BENCH_ENV/bench-snapshot # configs + catalog; outlives the work dir
rm -rf "$SNAPDIR"
mkdir -p "$SNAPDIR"
chmod 700 "$SNAPDIR"

bench_load_sysbench "$DB" "$TABLES" "$ROWS" "$THREADS"
if [ "$SMALL_ROWS" -gt 0 ]; then
	bench_load_sysbench "$SMALL_DB" "$TABLES" "$SMALL_ROWS" "$THREADS"
fi

RPID=$(cat "$REPLICA_PIDFILE")
GPID=$(cat "$ENV_DIR/run/ganesha.pid" 2>/dev/null || true)
DATA_MB=$(sql_replica "SELECT ROUND(SUM(DATA_LENGTH + INDEX_LENGTH) / 1e6) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '$DB'")
COMMANDS=("sysbench oltp_read_write --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port=PRIMARY --mysql-user=testadmin --mysql-password=... --mysql-db=$DB --tables=$TABLES --table-size=$ROWS --threads=$THREADS prepare   # options from a 0600 --config-file, not argv")
SNAP_CMD=

# ------------------------------------------------------------------ tools

# snap_conf NAME LEVEL REPOSITORY DATABASE: a copy of the env's config.
snap_conf() {
	local f=$SNAPDIR/$1.conf repo=$3
	repo=${repo//\\/\\\\}
	repo=${repo//&/\\&}
	repo=${repo//|/\\|}
	(
		umask 077
		sed -e "s|^compress_level *=.*|compress_level = $2|" \
			-e "s|^threads *=.*|threads        = $THREADS|" \
			-e "s|^catalog *=.*|catalog        = $SNAPDIR/catalog.db|" \
			-e "s|^repository *=.*|repository     = $repo|" \
			-e "s|^\[cluster sandbox\]|[cluster sandbox]\ndatabases        = $4|" \
			"$BACKUPD_CONFIG" >"$f"
	)
	echo "$f"
}

# run_snapshot KEY LEVEL REPOSITORY DATABASE STORED_ROOT: one measured backupctl
# snapshot; the output size is that of the snapshot folder under STORED_ROOT.
run_snapshot() {
	local key=$1 level=$2 repo=$3 db=$4 root=$5 conf id other=
	conf=$(snap_conf "$key" "$level" "$repo" "$db")
	[[ $repo == nfs://* ]] && other=$GPID
	bench_measure "$RPID" "$other" -- "$BENCH_BACKUPCTL" -c "$conf" snapshot --json ||
		{ cat "$BENCH_WORK/last.err" >&2; bench_say "backupctl snapshot failed"; return 1; }
	id=$(jq -r .id "$BENCH_WORK/last.out")
	if [ -z "$id" ] || [ ! -d "$root/sandbox/$id" ]; then bench_say "snapshot '$id' not found under $root"; return 1; fi
	R_WALL=$M_WALL R_CPU=$M_CPU R_SRV=$M_SRV R_RSS=$M_RSS
	R_BYTES=$(du -sb "$root/sandbox/$id" | cut -f1)
	R_NOTE=$(jq -r '"\(.files) files, raw \(.bytes_raw / 1e6 | floor) MB, freeze \(.freeze_ms | floor) ms, engine \(.seconds * 100 | floor / 100) s"' "$BENCH_WORK/last.out")
	[ -n "$other" ] && R_NOTE="$R_NOTE, ganesha CPU $M_OTHER s"
	R_NOTE="$R_NOTE, load $M_LOAD"
	if [ "${BENCH_KEEP_SNAPSHOT:-0}" = 1 ] && [ "$key" = snap3 ]; then
		rm -rf "${KEPT_SNAPSHOT:-/nonexistent}"
		KEPT_SNAPSHOT=$root/sandbox/$id
		printf 'BENCH_SNAPSHOT_ID=%s\nBENCH_SNAPSHOT_CONFIG=%s\n' "$id" "$conf" >"$BENCH_ENV/bench-snapshot.env"
	else
		rm -rf "${root:?}/sandbox/$id"
	fi
	SNAP_CMD="backupctl -c $conf snapshot --json   # compress_level = $level, threads = $THREADS, repository = $repo, databases = $db"
}

run_mysqldump() {
	local out=$BENCH_WORK/dump.sql.zst
	rm -f "$out"
	# shellcheck disable=SC2016 # expanded by the inner bash
	bench_measure "$RPID" "" -- bash -c 'set -o pipefail
		mariadb-dump --defaults-file="$1" --port="$2" --single-transaction --routines --events --triggers \
			--databases "$3" | zstd -3 -T1 -q -f -o "$4"' _ "$CNF" "$REPLICA_PORT" "$DB" "$out" ||
		{ cat "$BENCH_WORK/last.err" >&2; bench_say "mysqldump | zstd failed"; return 1; }
	R_WALL=$M_WALL R_CPU=$M_CPU R_SRV=$M_SRV R_RSS=$M_RSS
	R_BYTES=$(stat -c %s "$out")
	R_NOTE="RSS = larger of the two processes; load $M_LOAD"
	rm -f "$out"
}

# run_mydumper KEY [-c]
run_mydumper() {
	local out=$BENCH_WORK/mydumper
	local -a extra=("${@:2}")
	rm -rf "$out"
	bench_measure "$RPID" "" -- mydumper --defaults-file="$CNF" --host=127.0.0.1 --port="$REPLICA_PORT" \
		--database="$DB" --threads="$THREADS" --outputdir="$out" "${extra[@]}" ||
		{ cat "$BENCH_WORK/last.err" >&2; bench_say "mydumper failed"; return 1; }
	R_WALL=$M_WALL R_CPU=$M_CPU R_SRV=$M_SRV R_RSS=$M_RSS
	R_BYTES=$(du -sb "$out" | cut -f1)
	R_NOTE="$(find "$out" -type f | wc -l) files; load $M_LOAD"
	rm -rf "$out"
}

run_mariabackup() {
	local out=$BENCH_WORK/mariabackup
	rm -rf "$out"
	bench_measure "$RPID" "" -- mariabackup --defaults-file="$CNF" --backup --port="$REPLICA_PORT" \
		--datadir="$REPLICA_DATADIR" --target-dir="$out" --parallel="$THREADS" --databases="$DB" ||
		{ tail -n 3 "$BENCH_WORK/last.err" >&2; bench_say "mariabackup failed"; return 1; }
	R_WALL=$M_WALL R_CPU=$M_CPU R_SRV=$M_SRV R_RSS=$M_RSS
	R_BYTES=$(du -sb "$out" | cut -f1)
	R_NOTE="physical, uncompressed, needs the datadir on this host; load $M_LOAD"
	rm -rf "$out"
}

# measure KEY LABEL FN ARGS...: bench_repeat + bench_record; a failure is
# reported and the tool left out of the table (the others still run).
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
measure snap1 "backupctl snapshot, zstd 1" run_snapshot snap1 1 "$SNAPDIR/repo" "$DB" "$SNAPDIR/repo"
COMMANDS+=("$SNAP_CMD")
measure snap3 "backupctl snapshot, zstd 3" run_snapshot snap3 3 "$SNAPDIR/repo" "$DB" "$SNAPDIR/repo"
COMMANDS+=("$SNAP_CMD")
measure dump "mysqldump --single-transaction | zstd -3" run_mysqldump
COMMANDS+=("mariadb-dump --defaults-file=CNF --port=REPLICA --single-transaction --routines --events --triggers --databases $DB | zstd -3 -T1 -q -o dump.sql.zst")
measure myd "mydumper -t $L (uncompressed)" run_mydumper myd
COMMANDS+=("mydumper --defaults-file=CNF --host=127.0.0.1 --port=REPLICA --database=$DB --threads=$L --outputdir=DIR")
measure mydc "mydumper -t $L -c (gzip)" run_mydumper mydc -c
COMMANDS+=("mydumper --defaults-file=CNF --host=127.0.0.1 --port=REPLICA --database=$DB --threads=$L --outputdir=DIR -c")
measure snapnfs "backupctl snapshot, zstd 1, to NFS" run_snapshot snapnfs 1 "$NFS_URL" "$DB" "$NFS_EXPORT_DIR"
COMMANDS+=("$SNAP_CMD")
if [ "$MARIABACKUP" = 1 ]; then
	measure mbk "mariabackup --backup (physical, reference)" run_mariabackup
	COMMANDS+=("mariabackup --defaults-file=CNF --backup --port=REPLICA --datadir=DATADIR --target-dir=DIR --parallel=$L --databases=$DB")
fi
if [ "$SMALL_ROWS" -gt 0 ]; then
	measure snap3small "backupctl snapshot, zstd 3, $TABLES x $SMALL_ROWS rows" \
		run_snapshot snap3small 3 "$SNAPDIR/repo" "$SMALL_DB" "$SNAPDIR/repo"
	COMMANDS+=("$SNAP_CMD")
fi

bench_ratio "snapshot zstd 3 wall / mysqldump|zstd -3 wall" snap3 1 dump "<= 0.25"
bench_ratio "snapshot zstd 1 wall / mysqldump|zstd -3 wall" snap1 1 dump "<= 0.25"
bench_ratio "snapshot zstd 3 wall / mydumper uncompressed wall" snap3 1 myd "<= 1.5"
bench_ratio "snapshot zstd 1 wall / mydumper uncompressed wall" snap1 1 myd "<= 1.5"
bench_ratio "snapshot zstd 3 output / mysqldump|zstd -3 output" snap3 5 dump "<= 1.0"
bench_ratio "snapshot zstd 1 to NFS wall / to local dir wall" snapnfs 1 snap1 "<= 1.5"
max_rss=0
for k in snap1 snap3 snapnfs snap3small; do
	v=$(bench_field "$k" 4) || continue
	[ "$v" -gt "$max_rss" ] && max_rss=$v
done
[ "$max_rss" -gt 0 ] && bench_absolute "snapshot peak RSS, largest of all snapshot runs" "$(bench_mib "$max_rss")" MiB "<= 64"
bench_ratio "snapshot RSS, full / 4x smaller tables (flat: ~1)" snap3 4 snap3small "<= 1.1"

# ------------------------------------------------------------------ report

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$HERE/out"
MD=$HERE/out/snapshot-$STAMP.md
# The tree the binary was built from: BACKUPCTL_REV if given, else git's word.
BIN_TREE=$(cd "$(dirname "$BENCH_BACKUPCTL_SRC")/.." && pwd -P)
if [ -n "${BACKUPCTL_REV:-}" ]; then
	REV_TEXT="tree $BACKUPCTL_REV"
elif REV=$(git -C "$BIN_TREE" rev-parse --short HEAD 2>/dev/null); then
	REV_TEXT="tree $REV, $(git -C "$BIN_TREE" status --porcelain -- lib backupd cli | wc -l) locally changed files under lib/ backupd/ cli/"
else
	REV_TEXT="tree $BIN_TREE, not a git work tree"
fi
{
	echo "# backupctl snapshot benchmark, $STAMP"
	echo
	echo "Command: \`$CMDLINE\` (resolved: --tables $TABLES --rows $ROWS --threads $THREADS --repeat $REPEAT --small-rows $SMALL_ROWS)"
	echo
	echo "- machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, shared with other work"
	echo "- backupctl: $BENCH_BACKUPCTL_SRC ($REV_TEXT)"
	echo "- MariaDB $(sql_replica 'SELECT VERSION()'), innodb_buffer_pool_size 64M (tests/env), $(mydumper --version | cut -d, -f1), $(sysbench --version), $(zstd --version | grep -o 'v[0-9.]*' | head -n1)"
	echo "- data: sysbench oltp, $DB: $TABLES tables x $ROWS rows = $DATA_MB MB InnoDB (data + index); read from the replica by every tool"
	echo "- each tool ${REPEAT}x$([ "$REPEAT" -gt 1 ] && echo ', best wall kept'); server CPU = user+sys of the replica's mariadbd during the run; RSS from /usr/bin/time %M"
	echo
	bench_table_md
	echo
	echo "Commands (CNF = a 0600 option file with the testadmin account; PRIMARY, REPLICA = the servers' ports):"
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
