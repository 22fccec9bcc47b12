# lib.sh — shell functions for backupd's real-server test environment (bash only).
# Tests:  source "$DIR/env.sh"; source tests/env/lib.sh   (up.sh wrote env.sh)
# up.sh and down.sh use the same functions, so a server restarted by a test gets
# exactly the options up.sh gave it (env_server_args is the one place they live).
# Public: sql_primary sql_replica sql_spare sql_as wait_replica_caught_up
#         stop_server start_server kill_server wipe_server stop_nfs start_nfs
#         haproxy_cmd sink_script sink_count sink_reset
# Internal helpers are prefixed env_. Nothing here exits the caller's shell.

ENV_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ENV_SRC_DIR=$(cd "$ENV_LIB_DIR/../.." && pwd -P)

# ---------------------------------------------------------------- processes

# True if PID exists and is not a zombie (orphans can stay Z for a second or two here).
env_pid_alive() {
	local pid=$1 stat state
	[ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
	read -r stat 2>/dev/null <"/proc/$pid/stat" || return 1
	state=${stat##*) }
	state=${state%% *}
	[ "$state" != Z ]
}

# True if PID runs program COMM and, when NEEDLE is given, its command line contains
# NEEDLE (the env dir): a stale pid file must never make us signal someone else.
env_pid_is() {
	local pid=$1 comm=$2 needle=${3:-} c cmdline
	env_pid_alive "$pid" || return 1
	read -r c 2>/dev/null <"/proc/$pid/comm" || return 1
	[ "$c" = "$comm" ] || return 1
	[ -z "$needle" ] && return 0
	cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
	[[ $cmdline == *"$needle"* ]]
}

# Wait until none of the pids is alive or TIMEOUT_S passed; ENV_LEFT = the survivors.
env_wait_gone() {
	local deadline=$((SECONDS + $1)) p
	shift
	while :; do
		ENV_LEFT=()
		for p in "$@"; do env_pid_alive "$p" && ENV_LEFT+=("$p"); done
		[ ${#ENV_LEFT[@]} -eq 0 ] && return 0
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.05
	done
}

# env_stop TIMEOUT_S COMM NEEDLE PIDFILE...: SIGTERM every live process named in the
# pid files (deduplicated, checked with env_pid_is), wait up to TIMEOUT_S, then SIGKILL
# (TIMEOUT_S 0: SIGKILL at once). Removes the pid files. Returns 1 only if something
# survived SIGKILL.
env_stop() {
	local timeout_s=$1 comm=$2 needle=$3 f pid
	local -a pids=()
	shift 3
	for f in "$@"; do
		read -r pid 2>/dev/null <"$f" || continue
		[[ $pid =~ ^[0-9]+$ ]] || continue
		[[ " ${pids[*]} " == *" $pid "* ]] && continue
		env_pid_is "$pid" "$comm" "$needle" && pids+=("$pid")
	done
	if [ ${#pids[@]} -gt 0 ]; then
		ENV_LEFT=("${pids[@]}")
		if [ "$timeout_s" != 0 ]; then
			kill -TERM "${pids[@]}" 2>/dev/null
			env_wait_gone "$timeout_s" "${pids[@]}" ||
				echo "env: $comm (pid ${ENV_LEFT[*]}) ignored SIGTERM for ${timeout_s}s; sending SIGKILL" >&2
		fi
		if [ ${#ENV_LEFT[@]} -gt 0 ]; then
			kill -KILL "${ENV_LEFT[@]}" 2>/dev/null
			env_wait_gone 5 "${ENV_LEFT[@]}" || return 1
		fi
	fi
	rm -f "$@"
	return 0
}

# ---------------------------------------------------------------- MariaDB servers

# The mariadbd options of server NAME, into the array ENV_MDB_ARGS. The only place
# they are written: up.sh and start_server both launch from here.
env_server_args() {
	local name=$1 id port_var d
	case $name in
	primary) id=1 ;;
	replica) id=2 ;;
	spare) id=3 ;;
	*) echo "env: unknown server '$name' (primary|replica|spare)" >&2; return 1 ;;
	esac
	port_var=${name^^}_PORT
	if [ -z "${ENV_DIR:-}" ] || [ -z "${!port_var:-}" ]; then
		echo "env: ENV_DIR and $port_var must be set (source env.sh)" >&2
		return 1
	fi
	d=$ENV_DIR/$name
	ENV_MDB_ARGS=(
		--no-defaults --user=root
		--datadir="$d/data" --socket="$d/mysqld.sock" --pid-file="$d/mariadbd.pid"
		--log-error="$d/error.log"
		--port="${!port_var}" --bind-address=127.0.0.1 --skip-name-resolve
		--report-host=127.0.0.1 --report-port="${!port_var}"
		--server-id="$id" --gtid-domain-id=0
		--log-bin="$d/data/binlog" --log-bin-index="$d/data/binlog.index"
		--relay-log="$d/data/relay-bin" --relay-log-index="$d/data/relay-bin.index"
		--binlog-format=ROW --gtid-strict-mode=1 --log-slave-updates=1
		--innodb-buffer-pool-size=64M --local-infile=1
		--character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci
		# Own tmpdir: at start mariadbd deletes every #sql* file in its tmpdir, which in
		# a shared /tmp includes other servers' temporary tables.
		--tmpdir="$d/tmp"
	)
	# A replica comes back read-only after a restart, as its my.cnf would make it.
	[ "$name" = replica ] && ENV_MDB_ARGS+=(--read-only=1)
	return 0
}

env_server_dir() { printf '%s/%s' "$ENV_DIR" "$1"; }

# Launch mariadbd for NAME in the background (own session, output to its error log)
# and record the launch pid; does not wait. mariadbd writes mariadbd.pid itself later.
env_server_launch() {
	local name=$1 d
	env_server_args "$name" || return 1
	d=$(env_server_dir "$name")
	rm -f "$d/mariadbd.pid" "$d/launch.pid"
	mkdir -p "$d/tmp"
	setsid mariadbd "${ENV_MDB_ARGS[@]}" </dev/null >>"$d/error.log" 2>&1 &
	echo $! >"$d/launch.pid"
	disown $! # the caller's shell must not report its death (kill_server, tests)
}

# Wait until NAME answers ping on its socket; fail at once if mariadbd died.
env_server_wait() {
	local name=$1 timeout_s=${2:-30} d pid deadline
	d=$(env_server_dir "$name")
	read -r pid 2>/dev/null <"$d/launch.pid"
	deadline=$((SECONDS + timeout_s))
	while :; do
		if [ -S "$d/mysqld.sock" ] &&
			mariadb-admin --no-defaults -uroot -S "$d/mysqld.sock" --connect-timeout=2 -s ping >/dev/null 2>&1; then
			return 0
		fi
		if ! env_pid_alive "$pid" && ! env_pid_alive "$(cat "$d/mariadbd.pid" 2>/dev/null)"; then
			echo "env: mariadbd '$name' exited during start: $(grep -E '\[ERROR\]' "$d/error.log" 2>/dev/null | tail -n 1)" >&2
			return 1
		fi
		if [ $SECONDS -ge $deadline ]; then
			echo "env: mariadbd '$name' not answering after ${timeout_s}s (see $d/error.log)" >&2
			return 1
		fi
		sleep 0.05
	done
}

env_server_stop_pids() {
	local d
	d=$(env_server_dir "$1")
	printf '%s\n' "$d/mariadbd.pid" "$d/launch.pid"
}

# SQL creating the test accounts. LOCAL=1 keeps them out of the binlog (a standalone or
# wiped server must not gain GTIDs of its own); LOCAL=0 on the primary, so they replicate.
env_users_sql() {
	local local_only=$1 s=$ENV_DIR/secrets
	[ "$local_only" = 1 ] && echo "SET SESSION sql_log_bin=0;"
	cat <<-SQL
		CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY '$(cat "$s/repl.pw")';
		GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1';
		CREATE USER 'backupd'@'127.0.0.1' IDENTIFIED BY '$(cat "$s/backupd.pw")';
	SQL
	cat "$ENV_SRC_DIR/sql/mysql/grants.sql"
	cat <<-SQL
		CREATE USER 'hacheck'@'127.0.0.1';
		CREATE USER 'testadmin'@'127.0.0.1' IDENTIFIED BY '$(cat "$s/testadmin.pw")';
		GRANT ALL PRIVILEGES ON *.* TO 'testadmin'@'127.0.0.1' WITH GRANT OPTION;
	SQL
}

# env_sql NAME [SQL [mariadb args...]]: as root over the socket; SQL from stdin if absent.
env_sql() {
	local name=$1 sock_var
	sock_var=${name^^}_SOCKET
	shift
	[ -n "${!sock_var:-}" ] || { echo "env: $sock_var not set (source env.sh)" >&2; return 1; }
	if [ $# -gt 0 ]; then
		mariadb --no-defaults -uroot -S "${!sock_var}" -N -B -e "$1" "${@:2}"
	else
		mariadb --no-defaults -uroot -S "${!sock_var}" -N -B
	fi
}

sql_primary() { env_sql primary "$@"; }
sql_replica() { env_sql replica "$@"; }
sql_spare() { env_sql spare "$@"; }

# sql_as USER NAME "SQL": as a test account over TCP (password from its 0600 file via
# --defaults-extra-file, never on a command line). USER: backupd|repl|testadmin|hacheck.
sql_as() {
	local user=$1 name=$2 sql=$3 port_var cnf rc
	port_var=${name^^}_PORT
	cnf=$(mktemp "$ENV_DIR/.my.XXXXXX") || return 1 # mktemp creates it 0600
	{
		echo "[client]"
		echo "user=$user"
		[ -r "$ENV_DIR/secrets/$user.pw" ] && echo "password=$(cat "$ENV_DIR/secrets/$user.pw")"
	} >"$cnf"
	mariadb --defaults-file="$cnf" -h127.0.0.1 -P"${!port_var}" -N -B -e "$sql"
	rc=$?
	rm -f "$cnf"
	return $rc
}

# One field of SHOW SLAVE STATUS on NAME (empty if not a replica).
env_slave_field() {
	env_sql "$1" "SHOW SLAVE STATUS" --vertical --column-names 2>/dev/null |
		sed -n "s/^ *$2: //p"
}

# wait_replica_caught_up [timeout_s]: the replica has executed the primary's current
# @@gtid_binlog_pos (MASTER_GTID_WAIT); non-zero with a message otherwise.
wait_replica_caught_up() {
	local timeout_s=${1:-30} pos r
	pos=$(sql_primary 'SELECT @@GLOBAL.gtid_binlog_pos') || return 1
	[ -n "$pos" ] || return 0
	r=$(sql_replica "SELECT MASTER_GTID_WAIT('$pos', $timeout_s)") || return 1
	if [ "$r" != 0 ]; then
		echo "wait_replica_caught_up: replica did not reach '$pos' in ${timeout_s}s" \
			"(IO=$(env_slave_field replica Slave_IO_Running)," \
			"SQL=$(env_slave_field replica Slave_SQL_Running)," \
			"error: $(env_slave_field replica Last_Error)$(env_slave_field replica Last_IO_Error))" >&2
		return 1
	fi
}

# True if mariadbd of NAME is running (by its pid files).
env_server_running() {
	local f pid
	for f in $(env_server_stop_pids "$1"); do
		read -r pid 2>/dev/null <"$f" || continue
		env_pid_is "$pid" mariadbd "$ENV_DIR/$1/" && return 0
	done
	return 1
}

# start_server NAME [timeout_s]: start with up.sh's options and wait for ping.
start_server() {
	local name=$1 timeout_s=${2:-60}
	env_server_args "$name" >/dev/null || return 1
	if env_server_running "$name"; then
		echo "start_server: '$name' is already running" >&2
		return 1
	fi
	env_server_launch "$name" && env_server_wait "$name" "$timeout_s"
}

# stop_server NAME [timeout_s]: SIGTERM, wait (default 10 s), then SIGKILL.
stop_server() {
	local name=$1 timeout_s=${2:-10}
	env_server_args "$name" >/dev/null || return 1
	# shellcheck disable=SC2046
	env_stop "$timeout_s" mariadbd "$ENV_DIR/$name/" $(env_server_stop_pids "$name")
}

# kill_server NAME: SIGKILL, no shutdown (a crash); start_server runs crash recovery.
kill_server() {
	stop_server "$1" 0
}

# wipe_server NAME: stop, replace the datadir with a fresh copy of the template, start
# it empty. Only the test accounts are (re)created, out of the binlog: no databases, no
# GTIDs, no replication configured. The replica stays read_only (its option).
wipe_server() {
	local name=$1 d
	env_server_args "$name" >/dev/null || return 1
	d=$(env_server_dir "$name")
	stop_server "$name" || return 1
	rm -rf "$d/data" && cp -a "$ENV_DIR/template" "$d/data" || return 1
	start_server "$name" || return 1
	env_users_sql 1 | env_sql "$name"
}

# ---------------------------------------------------------------- NFS (ganesha, rpcbind)

# Make sure an rpcbind answers: ganesha registers NFSv3 with it when it starts. Reuse
# one that answers; otherwise run our own in an empty network namespace, so port 111
# never opens on a real network (ganesha reaches it through /run/rpcbind.sock; a plain
# `rpcbind -h 127.0.0.1` crashes in this Debian). run/rpcbind.pid marks it as ours.
env_rpcbind_ensure() {
	local pidf=$ENV_DIR/run/rpcbind.pid deadline
	rpcinfo >/dev/null 2>&1 && return 0
	setsid unshare -n rpcbind -f </dev/null >>"$ENV_DIR/run/rpcbind.log" 2>&1 &
	echo $! >"$pidf"
	disown $!
	deadline=$((SECONDS + 5))
	until rpcinfo >/dev/null 2>&1; do
		if ! env_pid_alive "$(cat "$pidf")"; then
			echo "env: rpcbind exited: $(tail -n 1 "$ENV_DIR/run/rpcbind.log")" >&2
			return 1
		fi
		if [ $SECONDS -ge $deadline ]; then
			echo "env: rpcbind not answering after 5s" >&2
			return 1
		fi
		sleep 0.02
	done
	# Another env may have won the race to start one; then that one is not ours.
	sleep 0.05
	env_pid_is "$(cat "$pidf")" rpcbind || rm -f "$pidf"
	return 0
}

# Stop rpcbind if this env started it (and then remove its socket).
env_rpcbind_stop_ours() {
	local pidf=$ENV_DIR/run/rpcbind.pid pid=
	[ -e "$pidf" ] || return 0
	read -r pid 2>/dev/null <"$pidf"
	if env_pid_is "$pid" rpcbind; then
		env_stop 3 rpcbind "" "$pidf" || return 1
		rm -f /run/rpcbind.sock
	fi
	rm -f "$pidf"
}

env_nfs_write_conf() {
	cat >"$ENV_DIR/ganesha.conf" <<-EOF
		NFS_CORE_PARAM {
			Bind_addr = 127.0.0.1;
			NFS_Port = $NFS_PORT;
			MNT_Port = $NFS_MOUNT_PORT;
			Protocols = 3, 4;
			Enable_UDP = false;
			Enable_NLM = false;
			Enable_RQUOTA = false;
			mount_path_pseudo = true;
			Plugins_Dir = "/usr/lib/x86_64-linux-gnu/ganesha";
		}
		NFS_KRB5 { Active_krb5 = false; }
		NFSv4 {
			Graceless = true;
			RecoveryRoot = "$ENV_DIR/nfs-state";
			Only_Numeric_Owners = true;
		}
		EXPORT {
			Export_Id = 1;
			Path = "$NFS_EXPORT_DIR";
			Pseudo = "/export";
			Access_Type = RW;
			Squash = None;
			Protocols = 3, 4;
			Transports = TCP;
			SecType = sys;
			FSAL { Name = VFS; }
		}
		EXPORT {
			Export_Id = 2;
			Path = "$ENV_DIR/nfs-ro";
			Pseudo = "/export-ro";
			Access_Type = RO;
			Squash = None;
			Protocols = 3, 4;
			Transports = TCP;
			SecType = sys;
			FSAL { Name = VFS; }
		}
		EXPORT {
			Export_Id = 3;
			Path = "$ENV_DIR/nfs-full";
			Pseudo = "/export-full";
			Access_Type = RW;
			Squash = None;
			Protocols = 3, 4;
			Transports = TCP;
			SecType = sys;
			FSAL { Name = VFS; }
		}
		LOG { Default_Log_Level = EVENT; }
	EOF
}

# The fault exports: nfs-ro is served read-only, nfs-full is a 2 MiB tmpfs
# so a snapshot runs out of space in it (ENOSPC over NFS).
env_nfs_fault_dirs() {
	mkdir -p "$ENV_DIR/nfs-ro/sandbox" "$ENV_DIR/nfs-full" || return 1
	mountpoint -q "$ENV_DIR/nfs-full" ||
		mount -t tmpfs -o size=2m,mode=0755 backupd-test-full "$ENV_DIR/nfs-full"
}
env_nfs_fault_dirs_release() {
	if mountpoint -q "$ENV_DIR/nfs-full" 2>/dev/null; then
		umount "$ENV_DIR/nfs-full" || umount -l "$ENV_DIR/nfs-full"
	fi
}

# Launch ganesha in the background (own session); ganesha writes run/ganesha.pid itself.
env_nfs_launch() {
	rm -f "$ENV_DIR/run/ganesha.pid"
	setsid ganesha.nfsd -F -f "$ENV_DIR/ganesha.conf" -L "$ENV_DIR/ganesha.log" \
		-p "$ENV_DIR/run/ganesha.pid" </dev/null >>"$ENV_DIR/run/ganesha.out" 2>&1 &
	echo $! >"$ENV_DIR/run/ganesha.launch.pid"
	disown $!
}

# Wait until the export lists over NFSv3; fail at once if ganesha died.
env_nfs_wait() {
	local timeout_s=${1:-10} deadline
	deadline=$((SECONDS + timeout_s))
	until nfs-ls "$NFS_URL" >/dev/null 2>&1; do
		if ! env_pid_alive "$(cat "$ENV_DIR/run/ganesha.launch.pid" 2>/dev/null)"; then
			echo "env: ganesha exited: $(grep -E 'CRIT|FATAL|Error binding' "$ENV_DIR/ganesha.log" | tail -n 1)" >&2
			return 1
		fi
		if [ $SECONDS -ge $deadline ]; then
			echo "env: nfs export not reachable at $NFS_URL after ${timeout_s}s" >&2
			return 1
		fi
		sleep 0.05
	done
}

# stop_nfs [timeout_s]: stop ganesha (SIGTERM; 0 = SIGKILL at once, a crash). rpcbind
# stays up for the next start_nfs.
stop_nfs() {
	env_stop "${1:-5}" ganesha.nfsd "$ENV_DIR/" "$ENV_DIR/run/ganesha.pid" "$ENV_DIR/run/ganesha.launch.pid"
}

# start_nfs: start ganesha again with up.sh's config and wait until the export answers.
start_nfs() {
	local pid
	read -r pid 2>/dev/null <"$ENV_DIR/run/ganesha.launch.pid"
	if env_pid_is "${pid:-}" ganesha.nfsd "$ENV_DIR/"; then
		echo "start_nfs: ganesha is already running" >&2
		return 1
	fi
	env_rpcbind_ensure && env_nfs_launch && env_nfs_wait 10
}

# ---------------------------------------------------------------- HAProxy

# haproxy_cmd "show servers state": one command on the admin socket.
haproxy_cmd() {
	echo "$1" | socat -t 5 - "UNIX-CONNECT:$HAPROXY_SOCKET"
}

# Operational state of BACKEND/SERVER from "show servers state": 0 stopped, 1 starting,
# 2 running, 3 stopping; admin state (maint bits) is column 7.
env_haproxy_op_state() {
	haproxy_cmd "show servers state $1" 2>/dev/null |
		awk -v s="$2" '$1 !~ /^#/ && $4 == s { print $6 }'
}

# ---------------------------------------------------------------- HTTP sink

env_curl() { curl -sS --noproxy '*' --max-time 10 "$@"; }

# sink_script "500,500,429:2,200" (or "delay:1500", "reset"): set the answers to come.
sink_script() {
	env_curl -X POST --data-binary "$1" "http://127.0.0.1:$SINK_PORT/_ctl" >/dev/null
}

# sink_count: number of POSTs recorded in SINK_LOG since the last reset.
sink_count() {
	if [ -r "$SINK_LOG" ]; then wc -l <"$SINK_LOG" | tr -d ' '; else echo 0; fi
}

# sink_reset: empty the log, default answer 200 again, no delay.
sink_reset() {
	sink_script reset
}
