# lib.sh — shared helpers of backupd's benchmarks (bash only; source it).
# Starts or reuses a tests/env environment, loads sysbench data, measures one
# command (wall, client CPU, peak RSS via /usr/bin/time; CPU of a server
# process from /proc/PID/stat) and prints the results as a table.
# Public: bench_say bench_die bench_lock bench_unlock bench_env_start
#         bench_env_stop bench_freeze_binary bench_client_cnf bench_load_sysbench
#         bench_measure bench_repeat bench_record bench_field bench_ratio
#         bench_absolute bench_table_text bench_table_md bench_mib bench_mb
# Internal helpers and state are prefixed bench_ / BENCH_ too. Nothing here
# exits the caller's shell except bench_die. Results are returned in globals
# (M_* from bench_measure, R_* from the tool functions).
# shellcheck shell=bash disable=SC2034

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
BENCH_SRC_DIR=$(cd "$BENCH_DIR/.." && pwd -P)
BENCH_CLK_TCK=$(getconf CLK_TCK)
BENCH_T0=$SECONDS

bench_say() { printf '[bench %4ds] %s\n' $((SECONDS - BENCH_T0)) "$*" >&2; }
bench_die() {
	bench_say "error: $*"
	exit 1
}

# ------------------------------------------------------------------ one at a time

# bench_lock: one bench at a time on this shared machine. A directory holding
# the owner's pid, not flock(1) on an open descriptor: every process a bench
# starts would inherit that descriptor, and a mariadbd restarted by a bench
# (start_server) keeps running, so the lock would outlive the bench. A lock
# whose owner is gone is taken over. Released by bench_unlock (bench_env_stop
# calls it). A no-op when BENCH_LOCKED is set (run.sh holds it for us).
bench_lock() {
	local d=${BENCH_TMPDIR:-/tmp}/backupd-bench.lock.d pid try
	[ -z "${BENCH_LOCKED:-}" ] || return 0
	for try in 1 2 3; do
		if mkdir "$d" 2>/dev/null; then
			echo "$$" >"$d/pid"
			BENCH_LOCK_DIR=$d
			export BENCH_LOCKED=1
			return 0
		fi
		read -r pid 2>/dev/null <"$d/pid" || pid=
		if [ -z "$pid" ] && [ "$try" -lt 3 ]; then
			sleep 1 # made a moment ago, its pid not written yet
			continue
		fi
		if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
			bench_die "another backupd bench is running (pid $pid; lock $d)"
		fi
		bench_say "taking over the lock of a bench that is gone (pid ${pid:-unknown})"
		rm -rf "$d"
	done
	bench_die "cannot take the lock $d"
}

bench_unlock() {
	[ -n "${BENCH_LOCK_DIR:-}" ] || return 0
	rm -rf "$BENCH_LOCK_DIR"
	BENCH_LOCK_DIR=
}

# ------------------------------------------------------------------ environment

# bench_env_start: use $BENCH_ENV_DIR if set (an env already up; never stopped
# here), else start one in a new temp dir that bench_env_stop removes. Sources
# env.sh and tests/env/lib.sh, so ENV_DIR, REPLICA_PORT, sql_primary ... exist.
bench_env_start() {
	if [ -n "${BENCH_ENV_DIR:-}" ]; then
		[ -r "$BENCH_ENV_DIR/env.sh" ] || bench_die "BENCH_ENV_DIR '$BENCH_ENV_DIR' has no env.sh (start it with tests/env/up.sh)"
		BENCH_OWN_ENV=0
		BENCH_ENV=$(cd "$BENCH_ENV_DIR" && pwd -P)
	else
		BENCH_OWN_ENV=1
		BENCH_ENV=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/bkbench.XXXXXX") || bench_die "mktemp failed"
		bench_say "starting the test environment in $BENCH_ENV"
		"$BENCH_SRC_DIR/tests/env/up.sh" "$BENCH_ENV" >"$BENCH_ENV.up.log" 2>&1 || {
			cat "$BENCH_ENV.up.log" >&2
			rm -f "$BENCH_ENV.up.log"
			bench_die "tests/env/up.sh failed"
		}
		rm -f "$BENCH_ENV.up.log"
	fi
	# shellcheck disable=SC1091
	source "$BENCH_ENV/env.sh"
	# shellcheck source=../tests/env/lib.sh
	source "$BENCH_SRC_DIR/tests/env/lib.sh"
	BENCH_WORK=$BENCH_ENV/bench.$$
	mkdir -p "$BENCH_WORK"
	chmod 700 "$BENCH_WORK"
}

# bench_env_stop: remove our work dir; stop and delete the env if we started it,
# then report any process still running from it (there should be none).
bench_env_stop() {
	[ -n "${BENCH_ENV:-}" ] || { bench_unlock; return 0; }
	rm -rf "${BENCH_WORK:?}"
	if [ "${BENCH_OWN_ENV:-0}" = 1 ]; then
		bench_say "stopping the test environment"
		"$BENCH_SRC_DIR/tests/env/down.sh" --clean "$BENCH_ENV" >&2 ||
			bench_say "warning: down.sh reported a problem; '$BENCH_ENV' may remain"
		local left
		left=$(pgrep -af -- "$BENCH_ENV/" || true)
		[ -z "$left" ] || bench_say "warning: still running from $BENCH_ENV: $left"
	fi
	BENCH_ENV=
	bench_unlock
}

# bench_freeze_binary: copy backupctl ($BACKUPCTL, else build/backupctl) into
# the work dir, so a rebuild by someone else mid-run does not mix two versions.
bench_freeze_binary() {
	local src=${BACKUPCTL:-$BENCH_SRC_DIR/build/backupctl}
	[ -x "$src" ] || bench_die "no backupctl at '$src' (run make, or set BACKUPCTL)"
	cp "$src" "$BENCH_WORK/backupctl" || bench_die "cannot copy '$src'"
	BENCH_BACKUPCTL=$BENCH_WORK/backupctl
	BENCH_BACKUPCTL_SRC=$src
}

# bench_client_cnf USER FILE: a 0600 option file ([client] and the groups of
# mysqldump/mydumper/mariabackup) so passwords never appear in argv.
bench_client_cnf() {
	local user=$1 f=$2
	(
		umask 077
		{
			echo "[client]"
			echo "user=$user"
			echo "password=$(cat "$ENV_DIR/secrets/$user.pw")"
			echo "host=127.0.0.1"
		} >"$f"
	)
}

# ------------------------------------------------------------------ data

# bench_load_sysbench DB TABLES ROWS THREADS: sysbench's oltp tables on the
# primary, then wait until the replica has applied them. Skipped when DB holds
# exactly TABLES tables and the last one has ROWS rows (a reused env).
bench_load_sysbench() {
	local db=$1 tables=$2 rows=$3 threads=$4 have n cnf
	have=$(sql_replica "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '$db'")
	if [ "$have" = "$tables" ]; then
		n=$(sql_replica "SELECT COUNT(*) FROM \`$db\`.sbtest$tables" 2>/dev/null || echo -1)
		if [ "$n" = "$rows" ]; then
			bench_say "$db already holds $tables x $rows rows: not reloading"
			return 0
		fi
	fi
	sql_primary "DROP DATABASE IF EXISTS \`$db\`; CREATE DATABASE \`$db\`" || bench_die "cannot create database '$db'"
	# sysbench 1.0 reads its general and driver options from --config-file, so
	# the password stays out of argv (ps); the test's own options (tables,
	# table-size) it takes from the command line only.
	cnf=$BENCH_WORK/sysbench.$db.cnf
	(
		umask 077
		cat >"$cnf" <<-EOF
			db-driver=mysql
			mysql-host=127.0.0.1
			mysql-port=$PRIMARY_PORT
			mysql-user=testadmin
			mysql-password=$(cat "$ENV_DIR/secrets/testadmin.pw")
			mysql-db=$db
			threads=$threads
		EOF
	)
	bench_say "loading $db: $tables tables x $rows rows with sysbench (this takes a while)"
	local t0=$SECONDS
	sysbench --config-file="$cnf" oltp_read_write --tables="$tables" --table-size="$rows" prepare >"$BENCH_WORK/sysbench.$db.log" 2>&1 || {
		tail -n 5 "$BENCH_WORK/sysbench.$db.log" >&2
		bench_die "sysbench prepare failed"
	}
	rm -f "$cnf"
	bench_say "loaded $db on the primary in $((SECONDS - t0)) s; waiting for the replica"
	wait_replica_caught_up 3600 || bench_die "the replica did not catch up"
	bench_say "replica caught up after $((SECONDS - t0)) s"
	have=$(sql_replica "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '$db'")
	n=$(sql_replica "SELECT COUNT(*) FROM \`$db\`.sbtest$tables" 2>/dev/null || echo -1)
	if [ "$have" != "$tables" ] || [ "$n" != "$rows" ]; then
		bench_die "after sysbench prepare the replica has $have tables in '$db' and $n rows in sbtest$tables, not $tables x $rows"
	fi
}

# ------------------------------------------------------------------ measuring

# CPU seconds (user+sys) PID has used so far, in clock ticks; 0 if gone.
bench_cpu_ticks() {
	local pid=$1 stat rest
	if [ -z "$pid" ] || ! read -r stat 2>/dev/null <"/proc/$pid/stat"; then
		echo 0
		return
	fi
	rest=${stat##*) }
	# after "comm)": state ppid pgrp session tty tpgid flags minflt cminflt
	# majflt cmajflt utime stime (fields 3..15 of proc(5))
	# shellcheck disable=SC2086 # split into fields on purpose
	set -- $rest
	echo $((${12} + ${13}))
}

# bench_measure SERVER_PID OTHER_PID -- CMD...: runs CMD under /usr/bin/time.
# Sets M_WALL M_CPU (client user+sys s) M_RSS (KiB; for a pipeline the largest
# single process, as wait4 reports it) M_SRV (CPU s of SERVER_PID meanwhile)
# M_OTHER (CPU s of OTHER_PID, e.g. ganesha; "" if none) M_REST (CPU s the
# rest of the machine used meanwhile) M_RC M_LOAD (1-min load average just
# before). CMD's stderr goes to $BENCH_WORK/last.err.
bench_measure() {
	local spid=$1 opid=$2 tf s0 s1 o0 o1 b0 b1 out
	shift 3
	tf=$BENCH_WORK/time.out
	sync # earlier runs' dirty pages are not this run's cost
	read -r M_LOAD _ </proc/loadavg
	s0=$(bench_cpu_ticks "$spid")
	o0=$(bench_cpu_ticks "$opid")
	b0=$(bench_busy_ticks)
	/usr/bin/time -f '%e %U %S %M' -o "$tf" -- "$@" >"$BENCH_WORK/last.out" 2>"$BENCH_WORK/last.err"
	M_RC=$?
	b1=$(bench_busy_ticks)
	s1=$(bench_cpu_ticks "$spid")
	o1=$(bench_cpu_ticks "$opid")
	out=$(tail -n 1 "$tf")
	read -r M_WALL M_USER M_SYS M_RSS <<<"$out"
	M_CPU=$(awk -v u="$M_USER" -v s="$M_SYS" 'BEGIN { printf "%.2f", u + s }')
	M_SRV=$(awk -v a="$s0" -v b="$s1" -v t="$BENCH_CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / t }')
	M_OTHER=
	[ -n "$opid" ] && M_OTHER=$(awk -v a="$o0" -v b="$o1" -v t="$BENCH_CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / t }')
	# Everything else the machine ran meanwhile (other users' work, writeback
	# threads): when it is large, the wall times of this run are not clean.
	M_REST=$(awk -v a="$b0" -v b="$b1" -v t="$BENCH_CLK_TCK" -v c="$M_CPU" -v s="$M_SRV" -v o="${M_OTHER:-0}" \
		'BEGIN { r = (b - a) / t - c - s - o; printf "%.1f", r < 0 ? 0 : r }')
	return "$M_RC"
}

# Busy CPU ticks of the whole machine so far (all but idle and iowait).
bench_busy_ticks() {
	local _cpu user nice sys idle iowait irq softirq steal
	read -r _cpu user nice sys idle iowait irq softirq steal _ </proc/stat
	echo $((user + nice + sys + irq + softirq + steal))
}

# bench_repeat N FN ARGS...: runs FN (one measured run that sets the R_* result
# variables R_WALL R_CPU R_SRV R_RSS R_BYTES R_NOTE and returns non-zero on
# failure) N times and keeps the run with the smallest wall time in R_*.
bench_repeat() {
	local n=$1 i best='' b_wall b_cpu b_srv b_rss b_bytes b_note
	shift
	for ((i = 1; i <= n; i++)); do
		"$@" || return 1
		if [ -z "$best" ] || awk -v a="$R_WALL" -v b="$b_wall" 'BEGIN { exit !(a < b) }'; then
			best=$i b_wall=$R_WALL b_cpu=$R_CPU b_srv=$R_SRV b_rss=$R_RSS b_bytes=$R_BYTES b_note=$R_NOTE
		fi
	done
	R_WALL=$b_wall R_CPU=$b_cpu R_SRV=$b_srv R_RSS=$b_rss R_BYTES=$b_bytes R_NOTE=$b_note
	[ "$n" -gt 1 ] && R_NOTE="best of $n; $R_NOTE"
	return 0
}

# ------------------------------------------------------------------ results

# Fields are separated by US (\x1f): labels contain "|".
BS=$'\x1f'
BENCH_ROWS=()  # key US label US wall US cpu US srv US rss_kib US bytes US note
declare -A BENCH_BY_KEY=()

# bench_record KEY LABEL: stores the current R_* under KEY.
bench_record() {
	BENCH_ROWS+=("$1$BS$2$BS$R_WALL$BS$R_CPU$BS$R_SRV$BS$R_RSS$BS$R_BYTES$BS$R_NOTE")
	BENCH_BY_KEY[$1]="$R_WALL$BS$R_CPU$BS$R_SRV$BS$R_RSS$BS$R_BYTES"
	bench_say "$(printf '%-38s wall %7.2f s  cpu %7.2f s  server %7.2f s  rss %6.1f MiB  out %8.1f MB' \
		"$2" "$R_WALL" "$R_CPU" "$R_SRV" "$(bench_mib "$R_RSS")" "$(bench_mb "$R_BYTES")")"
}

bench_sum() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a + b }'; }
bench_mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
bench_mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }

# bench_field KEY N: field N (1 wall, 2 cpu, 3 srv, 4 rss KiB, 5 bytes) of KEY.
bench_field() {
	local v=${BENCH_BY_KEY[$1]:-}
	[ -n "$v" ] || return 1
	cut -d"$BS" -f"$2" <<<"$v"
}

# bench_ratio NAME KEY_A FIELD KEY_B TARGET: one line "NAME  a/b = r  (target ...)
# met|MISSED"; TARGET like "<= 0.25". Prints nothing if a key is missing.
BENCH_RATIO_LINES=()
bench_ratio() {
	local name=$1 a b r verdict op=${5%% *} lim=${5##* }
	a=$(bench_field "$2" "$3") || return 0
	b=$(bench_field "$4" "$3") || return 0
	r=$(awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "inf" }')
	verdict=$(awk -v r="$r" -v l="$lim" -v op="$op" 'BEGIN { ok = (op == "<=") ? r <= l : r >= l; print ok ? "met" : "MISSED" }')
	BENCH_RATIO_LINES+=("$name$BS$r$BS$op $lim$BS$verdict")
}

# bench_absolute NAME VALUE UNIT TARGET: like bench_ratio for a plain value.
bench_absolute() {
	local name=$1 v=$2 unit=$3 op=${4%% *} lim=${4##* } verdict
	verdict=$(awk -v r="$v" -v l="$lim" -v op="$op" 'BEGIN { ok = (op == "<=") ? r <= l : r >= l; print ok ? "met" : "MISSED" }')
	BENCH_RATIO_LINES+=("$name$BS$v $unit$BS$op $lim $unit$BS$verdict")
}

bench_table_text() {
	local row
	printf '%-44s %7s %7s %8s %7s %7s %9s  %s\n' tool "wall s" "cpu s" "server s" "sum s" "RSS MiB" "output MB" notes
	for row in "${BENCH_ROWS[@]}"; do
		IFS=$BS read -r _ label wall cpu srv rss bytes note <<<"$row"
		printf '%-44s %7.2f %7.2f %8.2f %7.2f %7.1f %9.1f  %s\n' "$label" "$wall" "$cpu" "$srv" \
			"$(bench_sum "$cpu" "$srv")" "$(bench_mib "$rss")" "$(bench_mb "$bytes")" "$note"
	done
	echo
	printf '%-58s %12s %14s  %s\n' ratio value target verdict
	for row in "${BENCH_RATIO_LINES[@]}"; do
		IFS=$BS read -r name r t v <<<"$row"
		printf '%-58s %12s %14s  %s\n' "$name" "$r" "$t" "$v"
	done
}

bench_table_md() {
	local row
	echo "| tool | wall s | client CPU s | server CPU s | CPU sum s | peak RSS MiB | output MB | notes |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
	for row in "${BENCH_ROWS[@]}"; do
		IFS=$BS read -r _ label wall cpu srv rss bytes note <<<"$row"
		printf '| %s | %.2f | %.2f | %.2f | %.2f | %.1f | %.1f | %s |\n' "${label//|/\\|}" "$wall" "$cpu" "$srv" \
			"$(bench_sum "$cpu" "$srv")" "$(bench_mib "$rss")" "$(bench_mb "$bytes")" "$note"
	done
	echo
	echo "| ratio | value | target | verdict |"
	echo "| --- | ---: | ---: | --- |"
	for row in "${BENCH_RATIO_LINES[@]}"; do
		IFS=$BS read -r name r t v <<<"$row"
		printf '| %s | %s | %s | %s |\n' "${name//|/\\|}" "$r" "$t" "$v"
	done
}
