#!/usr/bin/env bash
# up.sh DIR — start backupd's real-server test environment inside DIR, in the background:
# three MariaDB servers (primary, replica replicating from it, standalone spare),
# nfs-ganesha (+ rpcbind in its own network namespace), HAProxy and the HTTP sink that
# stands in for Slack, all on free 127.0.0.1 ports. Writes DIR/env.sh and
# DIR/backupd.conf. On any failure it runs down.sh DIR and exits non-zero with a
# one-line reason. Stop with down.sh DIR. See README.md next to this file.
set -Eeuo pipefail

T0=$EPOCHREALTIME
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$HERE/lib.sh"

# ENV_TRACE=1 prints the time of each phase to stderr.
phase() {
	[ -n "${ENV_TRACE:-}" ] || return 0
	local us=$((${EPOCHREALTIME/./} - ${T0/./}))
	printf 'up.sh: %5d ms  %s\n' $((us / 1000)) "$*" >&2
}

REASON=
fail() {
	REASON=$*
	exit 1
}
# The mariadb client's error line from FILE (it may also echo the statement).
first_error() {
	grep -m1 '^ERROR' "$1" || head -n 1 "$1"
}
# must FN ARGS...: run a lib.sh function in this shell; fail with its last error line.
must() {
	"$@" 2>"$ENV_DIR/run/last.err" || fail "$(tail -n 1 "$ENV_DIR/run/last.err")"
}

if [ $# -ne 1 ] || [ -z "$1" ] || [ "${1#-}" != "$1" ]; then
	echo "usage: up.sh DIR" >&2
	exit 2
fi
mkdir -p "$1"
ENV_DIR=$(cd "$1" && pwd -P)
export ENV_DIR
MARKER=$ENV_DIR/.backupd-test-env

# DIR ends up in four programs' config files and in env.sh: keep it free of quoting trouble.
[[ $ENV_DIR =~ ^[A-Za-z0-9._/+-]+$ ]] || { echo "up.sh: DIR '$ENV_DIR' must contain only [A-Za-z0-9._/+-]" >&2; exit 2; }
# Unix socket paths are limited to 107 bytes.
[ ${#ENV_DIR} -le 80 ] || { echo "up.sh: DIR '$ENV_DIR' is too long for unix socket paths (max 80 chars)" >&2; exit 2; }

if [ -n "$(ls -A "$ENV_DIR")" ]; then
	[ -e "$MARKER" ] || { echo "up.sh: '$ENV_DIR' is not empty and not a test env dir; refusing to use it" >&2; exit 2; }
	# A previous env lives here: stop what may still run and start from nothing.
	"$HERE/down.sh" "$ENV_DIR" >/dev/null 2>&1 || true
	find "$ENV_DIR" -mindepth 1 -maxdepth 1 ! -name .backupd-test-env -exec rm -rf {} +
fi
touch "$MARKER"

# Short-lived background jobs (install-db, cc, cp), each started as its own process
# group with setsid so that on failure the whole group (e.g. install-db's bootstrap
# mariadbd, cc's cc1/ld) is killed.
HELPERS=()
on_exit() {
	local rc=$? p
	trap - EXIT ERR INT TERM
	if [ $rc -ne 0 ]; then
		for p in "${HELPERS[@]}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
		"$HERE/down.sh" "$ENV_DIR" >/dev/null 2>&1 || true
		echo "up.sh: failed: ${REASON:-unknown error} (logs in $ENV_DIR)" >&2
	fi
	exit $rc
}
trap on_exit EXIT
trap '[ -n "$REASON" ] || REASON="line $LINENO: \"$BASH_COMMAND\" failed"' ERR
trap 'REASON="interrupted"; exit 130' INT TERM

for c in mariadb-install-db mariadbd mariadb mariadb-admin ganesha.nfsd rpcbind rpcinfo \
	nfs-ls haproxy socat curl cc pkg-config unshare setsid ss; do
	command -v "$c" >/dev/null || fail "missing command '$c'"
done

# ------------------------------------------------------------------ ports
# Free ports below the ephemeral range (32768+) so outgoing connections cannot take
# them between the probe and the bind.
pick_ports() {
	local n=$1 p
	local -A used=()
	for p in $(ss -Htan | awk '{ n = split($4, a, ":"); print a[n] }'); do used[$p]=1; done
	PORTS=()
	while [ ${#PORTS[@]} -lt "$n" ]; do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
		[ -n "${used[$p]:-}" ] && continue
		used[$p]=1
		PORTS+=("$p")
	done
}
pick_ports 9
PRIMARY_PORT=${PORTS[0]} REPLICA_PORT=${PORTS[1]} SPARE_PORT=${PORTS[2]}
NFS_PORT=${PORTS[3]} NFS_MOUNT_PORT=${PORTS[4]}
HAPROXY_PORT=${PORTS[5]} HAPROXY_READ_PORT=${PORTS[6]}
SINK_PORT=${PORTS[7]} METRICS_PORT=${PORTS[8]}
for n in PRIMARY REPLICA SPARE; do
	declare "${n}_SOCKET=$ENV_DIR/${n,,}/mysqld.sock"
	declare "${n}_DATADIR=$ENV_DIR/${n,,}/data"
	declare "${n}_PIDFILE=$ENV_DIR/${n,,}/mariadbd.pid"
done
RUN=$ENV_DIR/run
HAPROXY_SOCKET=$ENV_DIR/haproxy.sock
NFS_EXPORT_DIR=$ENV_DIR/nfs-export
NFS_URL="nfs://127.0.0.1/export?nfsport=$NFS_PORT&mountport=$NFS_MOUNT_PORT"
NFS_RO_URL="nfs://127.0.0.1/export-ro?nfsport=$NFS_PORT&mountport=$NFS_MOUNT_PORT"
NFS_FULL_URL="nfs://127.0.0.1/export-full?nfsport=$NFS_PORT&mountport=$NFS_MOUNT_PORT"
SINK_LOG=$ENV_DIR/sink.log
SINK_URL=http://127.0.0.1:$SINK_PORT/services/T000/B000/XXX

mkdir -p "$RUN" "$ENV_DIR"/{primary,replica,spare,nfs-state,repo,haproxy} "$NFS_EXPORT_DIR"
mkdir -m 700 "$ENV_DIR/secrets"

# ------------------------------------------------------------------ secrets
gen_password() {
	local pw=
	while [ ${#pw} -lt 24 ]; do
		pw+=$(head -c 48 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9')
	done
	printf '%s' "${pw:0:24}"
}
(
	umask 077
	for u in backupd repl testadmin; do gen_password >"$ENV_DIR/secrets/$u.pw"; done
)

# ------------------------------------------------------------------ slow starters first
mkdir "$ENV_DIR/tmp" # see --tmpdir in env_server_args
setsid mariadb-install-db --no-defaults --user=root --datadir="$ENV_DIR/template" \
	--auth-root-authentication-method=socket --skip-test-db \
	--innodb-buffer-pool-size=64M --tmpdir="$ENV_DIR/tmp" >"$ENV_DIR/template.log" 2>&1 &
INSTALL_PID=$!
HELPERS+=("$INSTALL_PID")

# shellcheck disable=SC2046 # pkg-config output is meant to be split
setsid cc -O2 -Wall -Werror -std=c11 "$HERE/sink.c" $(pkg-config --cflags --libs libmicrohttpd) \
	-o "$ENV_DIR/sink" >"$ENV_DIR/sink-build.log" 2>&1 &
CC_PID=$!
HELPERS+=("$CC_PID")

# ------------------------------------------------------------------ nfs-ganesha
must env_rpcbind_ensure
phase "rpcbind ready"
must env_nfs_fault_dirs
env_nfs_write_conf
must env_nfs_launch
phase "ganesha launched"

# ------------------------------------------------------------------ sink
wait "$CC_PID" || fail "sink.c did not compile: $(head -n 1 "$ENV_DIR/sink-build.log")"
setsid "$ENV_DIR/sink" --port "$SINK_PORT" --log "$SINK_LOG" --pidfile "$RUN/sink.pid" \
	</dev/null >"$RUN/sink.out" 2>&1 &
echo $! >"$RUN/sink.launch.pid"
disown $!
phase "sink launched"

# ------------------------------------------------------------------ MariaDB
wait "$INSTALL_PID" || fail "mariadb-install-db failed: $(grep -m1 -i error "$ENV_DIR/template.log")"
phase "template ready"
CP_PIDS=()
for s in primary replica spare; do
	setsid cp -a "$ENV_DIR/template" "$ENV_DIR/$s/data" &
	CP_PIDS+=($!)
done
HELPERS+=("${CP_PIDS[@]}")
for p in "${CP_PIDS[@]}"; do wait "$p" || fail "copying the template datadir failed"; done
phase "datadirs copied"
for s in primary replica spare; do must env_server_launch "$s"; done
phase "mariadbd launched"

# NFS and sink readiness while the servers start.
must env_nfs_wait 10
deadline=$((SECONDS + 10))
until env_curl -o /dev/null "http://127.0.0.1:$SINK_PORT/_ctl" 2>/dev/null; do
	env_pid_alive "$(cat "$RUN/sink.launch.pid")" || fail "sink exited: $(tail -n 1 "$RUN/sink.out")"
	[ $SECONDS -lt $deadline ] || fail "sink not answering after 10s"
	sleep 0.02
done
phase "nfs and sink ready"

for s in primary replica spare; do must env_server_wait "$s" 30; done
phase "mariadbd ready"

# Accounts on the primary (they replicate); the replica then copies the whole binlog of
# the primary from its start, accounts included. The spare is standalone: its accounts
# stay out of its binlog so it has no GTIDs of its own (a clean restore target).
{
	env_users_sql 0
	cat "$ENV_SRC_DIR/sql/mysql/heartbeat.sql"
} | sql_primary 2>"$RUN/primary-setup.err" ||
	fail "primary setup failed: $(first_error "$RUN/primary-setup.err")"
# shellcheck disable=SC2119 # sql_spare reads the SQL from stdin here
env_users_sql 1 | sql_spare 2>"$RUN/spare-setup.err" ||
	fail "spare setup failed: $(first_error "$RUN/spare-setup.err")"
# RESET MASTER only if the replica's binlog holds GTIDs (a fresh copy of the template
# has none, and RESET MASTER right after start costs ~0.8 s here).
reset_master=
[ -z "$(sql_replica 'SELECT @@GLOBAL.gtid_binlog_pos')" ] || reset_master="RESET MASTER;"
sql_replica 2>"$RUN/replica-setup.err" <<EOF || fail "replica setup failed: $(first_error "$RUN/replica-setup.err")"
$reset_master
SET GLOBAL gtid_slave_pos = '';
CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = $PRIMARY_PORT,
  MASTER_USER = 'repl', MASTER_PASSWORD = '$(cat "$ENV_DIR/secrets/repl.pw")',
  MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1;
START SLAVE;
SET GLOBAL read_only = 1;
EOF
phase "accounts and replication set up"

# ------------------------------------------------------------------ HAProxy
# Started once hacheck exists, so its first health checks already pass.
cat >"$ENV_DIR/haproxy/haproxy.cfg" <<EOF
global
	stats socket $HAPROXY_SOCKET mode 600 level admin
	maxconn 1000

defaults
	mode tcp
	timeout connect 2s
	timeout client 1h
	timeout server 1h
	timeout check 2s

# The writer endpoint: cutover switches it from primary to replica.
frontend mysql_writer_fe
	bind 127.0.0.1:$HAPROXY_PORT
	default_backend mysql_writer

backend mysql_writer
	option mysql-check user hacheck post-41
	server primary 127.0.0.1:$PRIMARY_PORT check inter 500 rise 1 fall 2
	server replica 127.0.0.1:$REPLICA_PORT check inter 500 rise 1 fall 2 disabled

# A read endpoint for canary tests: the replica is in but gets no traffic (weight 0).
frontend mysql_read_fe
	bind 127.0.0.1:$HAPROXY_READ_PORT
	default_backend mysql_read

backend mysql_read
	balance roundrobin
	option mysql-check user hacheck post-41
	server primary 127.0.0.1:$PRIMARY_PORT check inter 500 rise 1 fall 2 weight 100
	server replica 127.0.0.1:$REPLICA_PORT check inter 500 rise 1 fall 2 weight 0
EOF
haproxy -f "$ENV_DIR/haproxy/haproxy.cfg" -D -p "$RUN/haproxy.pid" \
	</dev/null >"$ENV_DIR/haproxy/haproxy.log" 2>&1 ||
	fail "haproxy did not start: $(grep -m1 ALERT "$ENV_DIR/haproxy/haproxy.log")"
phase "haproxy started"

# ------------------------------------------------------------------ readiness
must wait_replica_caught_up 10
io=$(env_slave_field replica Slave_IO_Running)
sq=$(env_slave_field replica Slave_SQL_Running)
[ "$io/$sq" = Yes/Yes ] || fail "replica threads not running (IO=$io SQL=$sq)"
phase "replica caught up"

# HAProxy sees the primary (both backends) and the replica (read backend) as up.
deadline=$((SECONDS + 10))
until [ "$(env_haproxy_op_state mysql_writer primary)" = 2 ] &&
	[ "$(env_haproxy_op_state mysql_read primary)" = 2 ] &&
	[ "$(env_haproxy_op_state mysql_read replica)" = 2 ]; do
	[ $SECONDS -lt $deadline ] || fail "haproxy health checks not passing after 10s"
	sleep 0.05
done
phase "haproxy checks passing"

# ------------------------------------------------------------------ env.sh, backupd.conf
BACKUPD_CONFIG=$ENV_DIR/backupd.conf
(
	umask 077
	cat >"$BACKUPD_CONFIG" <<EOF
[backupd]
catalog        = $ENV_DIR/catalog.db
repository     = $ENV_DIR/repo            ; a local dir (tests may swap in NFS_URL)
threads        = 2
compress_level = 3
slack_webhook  = $SINK_URL
metrics_listen = 127.0.0.1:$METRICS_PORT
control_socket = $ENV_DIR/backupd.sock

[cluster sandbox]
primary          = 127.0.0.1:$PRIMARY_PORT
replicas         = 127.0.0.1:$REPLICA_PORT
user             = backupd
password_file    = $ENV_DIR/secrets/backupd.pw
replication_user = repl
replication_password_file = $ENV_DIR/secrets/repl.pw
snapshot_from    = replica
lag_warn_s       = 5
lag_crit_s       = 30
rebuild          = manual
keep_last        = 7
drill_target     = 127.0.0.1:$SPARE_PORT
haproxy_socket   = $HAPROXY_SOCKET
haproxy_backend  = mysql_writer
EOF
)

# Values only env.sh needs (lib.sh and tests read them from there).
# shellcheck disable=SC2034
{
	TEMPLATE_DATADIR=$ENV_DIR/template
	BACKUPD_USER=backupd REPL_USER=repl TESTADMIN_USER=testadmin HACHECK_USER=hacheck
	BACKUPD_PASSWORD_FILE=$ENV_DIR/secrets/backupd.pw
	REPL_PASSWORD_FILE=$ENV_DIR/secrets/repl.pw
	TESTADMIN_PASSWORD_FILE=$ENV_DIR/secrets/testadmin.pw
	HAPROXY_BACKEND=mysql_writer HAPROXY_READ_BACKEND=mysql_read
	SINK_CTL_URL=http://127.0.0.1:$SINK_PORT/_ctl
	METRICS_LISTEN=127.0.0.1:$METRICS_PORT
	CONTROL_SOCKET=$ENV_DIR/backupd.sock
	CATALOG=$ENV_DIR/catalog.db
	REPOSITORY_DIR=$ENV_DIR/repo
	# Keep loopback HTTP (the sink) away from any proxy the caller's environment names.
	no_proxy=127.0.0.1,localhost${no_proxy:+,$no_proxy}
	NO_PROXY=$no_proxy
}
ENV_VARS=(
	ENV_DIR ENV_SRC_DIR TEMPLATE_DATADIR
	PRIMARY_PORT PRIMARY_SOCKET PRIMARY_DATADIR PRIMARY_PIDFILE
	REPLICA_PORT REPLICA_SOCKET REPLICA_DATADIR REPLICA_PIDFILE
	SPARE_PORT SPARE_SOCKET SPARE_DATADIR SPARE_PIDFILE
	BACKUPD_USER BACKUPD_PASSWORD_FILE REPL_USER REPL_PASSWORD_FILE
	TESTADMIN_USER TESTADMIN_PASSWORD_FILE HACHECK_USER
	NFS_PORT NFS_MOUNT_PORT NFS_URL NFS_EXPORT_DIR NFS_RO_URL NFS_FULL_URL
	HAPROXY_PORT HAPROXY_READ_PORT HAPROXY_SOCKET HAPROXY_BACKEND HAPROXY_READ_BACKEND
	SINK_PORT SINK_URL SINK_CTL_URL SINK_LOG
	METRICS_PORT METRICS_LISTEN CONTROL_SOCKET CATALOG REPOSITORY_DIR BACKUPD_CONFIG
	no_proxy NO_PROXY
)
{
	echo "# backupd test environment — written by tests/env/up.sh; source it."
	for v in "${ENV_VARS[@]}"; do
		[[ ${!v} != *"'"* ]] || fail "value of $v contains a quote"
		printf "export %s='%s'\n" "$v" "${!v}"
	done
} >"$ENV_DIR/env.sh.tmp"
mv "$ENV_DIR/env.sh.tmp" "$ENV_DIR/env.sh"

rm -f "$ENV_DIR"/run/*-setup.err "$ENV_DIR/run/last.err"
us=$((${EPOCHREALTIME/./} - ${T0/./}))
printf 'backupd test env up in %d.%02d s: source %s/env.sh\n' \
	$((us / 1000000)) $((us % 1000000 / 10000)) "$ENV_DIR"
