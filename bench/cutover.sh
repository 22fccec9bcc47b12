#!/usr/bin/env bash
# cutover.sh — write unavailability of `backupctl cutover`: a client writes
# one numbered row every 10 ms through the HAProxy writer frontend
# (tests/cutover_writer.c, reconnecting on every error) while the writer
# moves primary -> replica -> primary ... Per cutover it records the pause
# backupctl measures (blue read-only -> green writable and HAProxy switched)
# and the longest gap the client saw between two acknowledged writes, and
# checks that every acknowledged row is on the new writer exactly once.
# Prints median and max and writes Markdown to bench/out/cutover-<date>.md.
#
#   bench/cutover.sh [--rounds N] [--settle-s S] [--interval-ms MS]
#   defaults: 10 cutovers (an even number: the env ends as it started),
#   1.5 s of writes before and after each, a write every 10 ms.
#
# BENCH_ENV_DIR=DIR reuses a running tests/env environment; BACKUPCTL=PATH
# benchmarks another build. Target (issue 6): <= 1 s, 0 lost or duplicated
# acknowledged writes.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

ROUNDS=10 SETTLE=1.5 INTERVAL=10
CMDLINE="bench/cutover.sh${*:+ $*}"
for v in BACKUPCTL BENCH_ENV_DIR; do
	[ -z "${!v:-}" ] || CMDLINE="$v=${!v} $CMDLINE"
done
usage() {
	sed -n 's/^#   //p' "$0" >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) [[ ${2:-} =~ ^[0-9]+$ ]] || usage; ROUNDS=$2; shift 2 ;;
	--settle-s) [[ ${2:-} =~ ^[0-9]+(\.[0-9]+)?$ ]] || usage; SETTLE=$2; shift 2 ;;
	--interval-ms) [[ ${2:-} =~ ^[0-9]+$ ]] || usage; INTERVAL=$2; shift 2 ;;
	-h | --help) usage ;;
	*) echo "cutover.sh: unknown argument '$1'" >&2; usage ;;
	esac
done
if [ "$ROUNDS" -lt 1 ] || [ "$INTERVAL" -lt 1 ]; then usage; fi
# Back where it started: an even number of cutovers.
[ $((ROUNDS % 2)) -eq 0 ] || ROUNDS=$((ROUNDS + 1))

for c in jq cc pkg-config sqlite3; do
	command -v "$c" >/dev/null || bench_die "missing command '$c'"
done
if [ -z "${BENCH_LOCKED:-}" ]; then
	exec 9>"${BENCH_TMPDIR:-/tmp}/backupd-bench.lock"
	flock -n 9 || bench_die "another backupd bench is running (lock ${BENCH_TMPDIR:-/tmp}/backupd-bench.lock)"
fi

WRITER_PID=
cleanup() {
	[ -n "$WRITER_PID" ] && kill -TERM "$WRITER_PID" 2>/dev/null && wait "$WRITER_PID"
	if [ -n "${BENCH_ENV:-}" ] && [ -n "${ENV_DIR:-}" ]; then
		sql_primary "DROP DATABASE IF EXISTS cutover_bench; DROP USER IF EXISTS 'cbench'@'127.0.0.1'" 2>/dev/null
	fi
	bench_env_stop
}
trap cleanup EXIT
trap 'exit 130' INT TERM
bench_env_start
bench_freeze_binary
"$BENCH_BACKUPCTL" cutover --help >/dev/null 2>&1 ||
	bench_die "'$BENCH_BACKUPCTL' has no cutover verb yet (build it, or set BACKUPCTL)"

P=127.0.0.1:$PRIMARY_PORT
R=127.0.0.1:$REPLICA_PORT
# Own catalog: the env's catalog and topology stay as they were.
CONF=$BENCH_WORK/cutover.conf
(umask 077; sed -e "s|^catalog *=.*|catalog        = $BENCH_WORK/catalog.db|" "$BACKUPD_CONFIG" >"$CONF")

# shellcheck disable=SC2046 # pkg-config output is meant to be split
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -o "$BENCH_WORK/cutover_writer" \
	"$BENCH_SRC_DIR/tests/cutover_writer.c" $(pkg-config --cflags --libs libmariadb) ||
	bench_die "tests/cutover_writer.c does not build"
(umask 077; head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 20 >"$BENCH_WORK/cbench.pw")
sql_primary "DROP DATABASE IF EXISTS cutover_bench; DROP USER IF EXISTS 'cbench'@'127.0.0.1';
	CREATE DATABASE cutover_bench;
	CREATE TABLE cutover_bench.w (seq BIGINT AUTO_INCREMENT PRIMARY KEY, id BIGINT NOT NULL,
	  server_id INT NOT NULL, at DATETIME(6) NOT NULL, KEY (id));
	CREATE USER 'cbench'@'127.0.0.1' IDENTIFIED BY '$(cat "$BENCH_WORK/cbench.pw")';
	GRANT SELECT, INSERT ON cutover_bench.* TO 'cbench'@'127.0.0.1';" ||
	bench_die "setting up the bench table failed"
wait_replica_caught_up 20 || bench_die "replica not caught up"
"$BENCH_BACKUPCTL" -c "$CONF" snapshot >/dev/null 2>"$BENCH_WORK/snap.err" ||
	bench_die "snapshot for the guardrail failed: $(tail -n 1 "$BENCH_WORK/snap.err")"

name_of() { if [ "$1" = "$P" ]; then echo primary; else echo replica; fi; }

RESULTS=$BENCH_WORK/rounds.tsv
: >"$RESULTS"
next_id=1 lost_total=0 dup_total=0 failed_rounds=0
to=$R from=$P
for i in $(seq 1 "$ROUNDS"); do
	log=$BENCH_WORK/w$i.log
	"$BENCH_WORK/cutover_writer" --host 127.0.0.1 --port "$HAPROXY_PORT" --user cbench \
		--password-file "$BENCH_WORK/cbench.pw" --table cutover_bench.w --log "$log" \
		--interval-ms "$INTERVAL" --start-id "$next_id" >"$BENCH_WORK/w$i.out" 2>&1 &
	WRITER_PID=$!
	sleep "$SETTLE"
	"$BENCH_BACKUPCTL" -c "$CONF" cutover --to "$to" --json >"$BENCH_WORK/c$i.json" 2>"$BENCH_WORK/c$i.err"
	rc=$?
	sleep "$SETTLE"
	kill -TERM "$WRITER_PID"
	wait "$WRITER_PID"
	WRITER_PID=
	pause=$(jq -r '.write_pause_ms // "null"' "$BENCH_WORK/c$i.json" 2>/dev/null)
	result=$(jq -r '.result // "?"' "$BENCH_WORK/c$i.json" 2>/dev/null)
	if [ "$rc" -ne 0 ] || [ "$result" != ok ]; then
		failed_rounds=$((failed_rounds + 1))
		bench_say "round $i: cutover to $to failed: $(tail -n 1 "$BENCH_WORK/c$i.err")"
		break
	fi
	gap=$(sed -n 's/.*max_gap_ms=\([0-9.]*\).*/\1/p' "$BENCH_WORK/w$i.out")
	next_id=$(sed -n 's/.*next_id=\([0-9]*\).*/\1/p' "$BENCH_WORK/w$i.out")
	# Every acknowledged id on the new writer, none twice.
	awk '$1 == "OK" { print $2 }' "$log" | sort >"$BENCH_WORK/acked$i"
	env_sql "$(name_of "$to")" "SELECT id FROM cutover_bench.w" | sort >"$BENCH_WORK/rows$i"
	acked=$(wc -l <"$BENCH_WORK/acked$i")
	lost=$(comm -23 "$BENCH_WORK/acked$i" "$BENCH_WORK/rows$i" | wc -l)
	dup=$(env_sql "$(name_of "$to")" "SELECT COUNT(*) - COUNT(DISTINCT id) FROM cutover_bench.w")
	errs=$(grep -c '^ERR' "$log")
	lost_total=$((lost_total + lost))
	dup_total=$((dup_total + dup))
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$i" "$(name_of "$from") -> $(name_of "$to")" \
		"$pause" "$gap" "$errs" "$acked" "$lost" "$dup" >>"$RESULTS"
	bench_say "round $i: $(name_of "$from") -> $(name_of "$to"): pause $pause ms, client gap $gap ms, $errs failed attempts, $acked acked, $lost lost, $dup duplicated"
	tmp=$from from=$to to=$tmp
	# The old writer (now a replica) catches up before the next round.
	pos=$(env_sql "$(name_of "$from")" "SELECT @@GLOBAL.gtid_binlog_pos")
	[ "$(env_sql "$(name_of "$to")" "SELECT MASTER_GTID_WAIT('$pos', 20)")" = 0 ] ||
		bench_say "round $i: $(name_of "$to") did not catch up"
done

n=$(wc -l <"$RESULTS")
stat() { # column -> "median max"
	cut -f"$1" "$RESULTS" | sort -n | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "- -"; exit }
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.1f %.1f\n", m, v[NR] }'
}
read -r pause_med pause_max <<<"$(stat 3)"
read -r gap_med gap_max <<<"$(stat 4)"
met() { awk -v v="$1" 'BEGIN { print (v != "-" && v <= 1000) ? "met" : "MISSED" }'; }
ok_writes=$([ "$lost_total" -eq 0 ] && [ "$dup_total" -eq 0 ] && [ "$failed_rounds" -eq 0 ] && echo met || echo MISSED)
same=$(wait_replica_caught_up 20 >/dev/null 2>&1 &&
	[ "$(sql_primary "CHECKSUM TABLE cutover_bench.w EXTENDED" | cut -f2)" = \
	  "$(sql_replica "CHECKSUM TABLE cutover_bench.w EXTENDED" | cut -f2)" ] && echo yes || echo NO)

{
	echo "# cutover bench, $(date -u +%Y-%m-%dT%H:%MZ)"
	echo
	echo "\`$CMDLINE\` on $(nproc) cores, MariaDB $(sql_primary 'SELECT VERSION()'), $(haproxy -v | head -n 1 | cut -d' ' -f1-3)."
	echo "A client writes one row every $INTERVAL ms through the HAProxy writer frontend and reconnects"
	echo "on every error; $n cutovers back and forth. *pause*: what backupctl measures, blue"
	echo "read-only -> green writable and HAProxy switched. *client gap*: longest time between two"
	echo "acknowledged writes (includes the $INTERVAL ms interval and the client's reconnect)."
	echo
	echo "| # | direction | pause ms | client gap ms | failed attempts | acked | lost | duplicated |"
	echo "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
	awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8 }' "$RESULTS"
	echo
	echo "| figure | median | max | target |"
	echo "| --- | ---: | ---: | --- |"
	echo "| write pause (backupctl) | $pause_med ms | $pause_max ms | <= 1000 ms: $(met "$pause_max") |"
	echo "| longest client gap | $gap_med ms | $gap_max ms | <= 1000 ms: $(met "$gap_max") |"
	echo "| lost / duplicated acknowledged writes | | $lost_total / $dup_total | 0 / 0: $ok_writes |"
	echo
	echo "Primary and replica hold the same rows afterwards: $same."
} >"$BENCH_WORK/report.md"
cat "$BENCH_WORK/report.md"
mkdir -p "$HERE/out"
out=$HERE/out/cutover-$(date -u +%Y%m%dT%H%M%SZ).md
cp "$BENCH_WORK/report.md" "$out"
bench_say "written to $out"
[ "$failed_rounds" -eq 0 ] && [ "$lost_total" -eq 0 ] && [ "$dup_total" -eq 0 ]
