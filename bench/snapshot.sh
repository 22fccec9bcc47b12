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
CMDLINE="bench/snapshot.sh${*:+ $*}"
for v in BACKUPCTL BENCH_ENV_DIR; do
	[ -z "${!v:-}" ] || CMDLINE="$v=${!v} $CMDLINE"
done
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

trap bench_env_stop EXIT
trap 'exit 130' INT TERM
bench_lock # one bench at a time (run.sh takes it for us)
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
declare -A CMD=() LABEL=()
TOOLS=()

# ------------------------------------------------------------------ tools

# How busy the rest of the machine was during the last measurement.
rest_note() { echo "rest of machine ${M_REST} CPU s, load $M_LOAD"; }

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

# run_snapshot KEY LEVEL REPOSITORY DATABASE STORED_ROOT [ARGS...]: one measured
# backupctl snapshot (ARGS go to it); the output size is that of the snapshot
# folder under STORED_ROOT.
run_snapshot() {
	local key=$1 level=$2 repo=$3 db=$4 root=$5 conf id other=
	local -a args=("${@:6}")
	conf=$(snap_conf "$key" "$level" "$repo" "$db")
	[[ $repo == nfs://* ]] && other=$GPID
	bench_measure "$RPID" "$other" -- "$BENCH_BACKUPCTL" -c "$conf" snapshot --json "${args[@]}" ||
		{ cat "$BENCH_WORK/last.err" >&2; bench_say "backupctl snapshot failed"; return 1; }
	id=$(jq -r .id "$BENCH_WORK/last.out")
	if [ -z "$id" ] || [ ! -d "$root/sandbox/$id" ]; then bench_say "snapshot '$id' not found under $root"; return 1; fi
	R_WALL=$M_WALL R_CPU=$M_CPU R_SRV=$M_SRV R_RSS=$M_RSS
	R_BYTES=$(du -sb "$root/sandbox/$id" | cut -f1)
	R_NOTE=$(jq -r '"\(.files) files, raw \(.bytes_raw / 1e6 | floor) MB, freeze \(.freeze_ms | floor) ms, engine \(.seconds * 100 | floor / 100) s"' "$BENCH_WORK/last.out")
	[ -n "$other" ] && R_NOTE="$R_NOTE, ganesha CPU $M_OTHER s"
	R_NOTE="$R_NOTE; $(rest_note)"
	if [ "${BENCH_KEEP_SNAPSHOT:-0}" = 1 ] && [ "$key" = snap3 ]; then
		rm -rf "${KEPT_SNAPSHOT:-/nonexistent}"
		KEPT_SNAPSHOT=$root/sandbox/$id
		printf 'BENCH_SNAPSHOT_ID=%s\nBENCH_SNAPSHOT_CONFIG=%s\n' "$id" "$conf" >"$BENCH_ENV/bench-snapshot.env"
	else
		rm -rf "${root:?}/sandbox/$id"
	fi
	CMD[$key]="backupctl -c $conf snapshot --json${args[*]:+ ${args[*]}}   # compress_level = $level, threads = $THREADS, repository = $repo, databases = $db"
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
	R_NOTE="RSS = larger of the two processes; $(rest_note)"
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
	R_NOTE="$(find "$out" -type f | wc -l) files; $(rest_note)"
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
	R_NOTE="physical, uncompressed, needs the datadir on this host; $(rest_note)"
	rm -rf "$out"
}

# tool KEY LABEL COMMAND-TEXT FN ARGS...: registers a tool; FN ARGS does one
# measured run (sets R_*). COMMAND-TEXT is printed in the report (run_snapshot
# fills in its own).
declare -A FN=()
tool() {
	TOOLS+=("$1")
	LABEL[$1]=$2
	[ -z "$3" ] || CMD[$1]=$3
	local -a a=("${@:4}")
	FN[$1]=$(printf '%q ' "${a[@]}")
}

L=$THREADS
tool snap1 "backupctl snapshot, zstd 1" "" \
	run_snapshot snap1 1 "$SNAPDIR/repo" "$DB" "$SNAPDIR/repo"
tool snap3 "backupctl snapshot, zstd 3" "" \
	run_snapshot snap3 3 "$SNAPDIR/repo" "$DB" "$SNAPDIR/repo"
tool dump "mysqldump --single-transaction | zstd -3" \
	"mariadb-dump --defaults-file=CNF --port=REPLICA --single-transaction --routines --events --triggers --databases $DB | zstd -3 -T1 -q -o dump.sql.zst" \
	run_mysqldump
tool myd "mydumper -t $L (uncompressed)" \
	"mydumper --defaults-file=CNF --host=127.0.0.1 --port=REPLICA --database=$DB --threads=$L --outputdir=DIR" \
	run_mydumper myd
tool mydc "mydumper -t $L -c (gzip)" \
	"mydumper --defaults-file=CNF --host=127.0.0.1 --port=REPLICA --database=$DB --threads=$L --outputdir=DIR -c" \
	run_mydumper mydc -c
tool snapnfs "backupctl snapshot, zstd 1, to NFS" "" \
	run_snapshot snapnfs 1 "$NFS_URL" "$DB" "$NFS_EXPORT_DIR"
if [ "$MARIABACKUP" = 1 ]; then
	tool mbk "mariabackup --backup (physical, reference)" \
		"mariabackup --defaults-file=CNF --backup --port=REPLICA --datadir=DATADIR --target-dir=DIR --parallel=$L --databases=$DB" \
		run_mariabackup
fi
if [ "$SMALL_ROWS" -gt 0 ]; then
	# Peak RSS grows with the number of chunks (up to about 16 here: malloc
	# keeps freed per-chunk buffers) but should not with table size. So the
	# smaller tables get proportionally smaller chunks: the same number of
	# chunks as the full run, each ROWS/SMALL_ROWS times smaller.
	DEF_CHUNK=$(sed -n 's/^#define SNAPSHOT_CHUNK_ROWS_DEFAULT \([0-9]*\).*/\1/p' "$BENCH_SRC_DIR/backupd/snapshot.h")
	SMALL_CHUNK=$((${DEF_CHUNK:-250000} * SMALL_ROWS / ROWS))
	[ "$SMALL_CHUNK" -ge 1 ] || SMALL_CHUNK=1
	tool snap3small "backupctl snapshot, zstd 3, $TABLES x $SMALL_ROWS rows" "" \
		run_snapshot snap3small 3 "$SNAPDIR/repo" "$SMALL_DB" "$SNAPDIR/repo" --chunk-rows "$SMALL_CHUNK"
fi

# ------------------------------------------------------------------ the run

# Round-robin: each round runs every tool once, and each tool keeps its
# fastest round. Someone else's burst of work on this shared machine then
# spoils one round of a few tools instead of every repeat of one tool.
declare -A BEST=() DEAD=()
FAILED=()
for ((round = 1; round <= REPEAT; round++)); do
	for key in "${TOOLS[@]}"; do
		[ -z "${DEAD[$key]:-}" ] || continue
		bench_say "round $round/$REPEAT: ${LABEL[$key]}"
		eval "${FN[$key]}" || {
			DEAD[$key]=1
			FAILED+=("${LABEL[$key]}")
			continue
		}
		bench_say "$(printf '  %.2f s wall, %.2f s client CPU, %.2f s server CPU, rest of machine %s s' \
			"$R_WALL" "$R_CPU" "$R_SRV" "$M_REST")"
		if [ -z "${BEST[$key]:-}" ] ||
			awk -v a="$R_WALL" -v b="${BEST[$key]%%"$BS"*}" 'BEGIN { exit !(a < b) }'; then
			BEST[$key]="$R_WALL$BS$R_CPU$BS$R_SRV$BS$R_RSS$BS$R_BYTES$BS$R_NOTE"
		fi
	done
done
for key in "${TOOLS[@]}"; do
	if [ -n "${DEAD[$key]:-}" ] || [ -z "${BEST[$key]:-}" ]; then continue; fi
	IFS=$BS read -r R_WALL R_CPU R_SRV R_RSS R_BYTES R_NOTE <<<"${BEST[$key]}"
	[ "$REPEAT" -gt 1 ] && R_NOTE="best of $REPEAT; $R_NOTE"
	bench_record "$key" "${LABEL[$key]}"
done

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
bench_ratio "snapshot peak RSS, full / $((ROWS / (SMALL_ROWS > 0 ? SMALL_ROWS : 1)))x smaller tables, same chunk count (flat: ~1)" snap3 4 snap3small "<= 1.1"

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
	echo "- MariaDB $(sql_replica 'SELECT VERSION()'), innodb_buffer_pool_size 64M (tests/env), $(mydumper --version | cut -d, -f1), $(sysbench --version), zstd $(zstd --version | grep -o 'v[0-9.]*' | head -n1)"
	echo "- data: sysbench oltp, $DB: $TABLES tables x $ROWS rows = $DATA_MB MB InnoDB (data + index); read from the replica by every tool"
	echo "- each tool ${REPEAT}x, round-robin$([ "$REPEAT" -gt 1 ] && echo ', best wall kept'); server CPU = user+sys of the replica's mariadbd during the run; RSS from /usr/bin/time %M"
	echo
	bench_table_md
	echo
	echo "Commands (CNF = a 0600 option file with the testadmin account; PRIMARY, REPLICA = the servers' ports):"
	echo
	echo "    ${COMMANDS[0]}"
	for key in "${TOOLS[@]}"; do
		[ -z "${CMD[$key]:-}" ] || echo "    ${CMD[$key]}"
	done
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
