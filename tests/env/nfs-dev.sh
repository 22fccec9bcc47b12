#!/bin/sh
# Developer helper: a private nfs-ganesha (FSAL_VFS, NFSv3) on loopback for
# working on lib/storage/nfs.c by hand. Not used by `make test` (tests/env/up.sh
# owns the test servers). Recipe: /work/shared/notes/nfs.md.
#
# Usage: tests/env/nfs-dev.sh start|stop|restart|status|url
# Env:   NFSDEV_DIR (default /tmp/nfsdev), NFSDEV_PORT (22049), NFSDEV_MNTPORT (22050)
# Prints, on start/url, the URL to use as STORAGE_TEST_URLS / NFS_URL, and the
# ganesha pid file (for NFS_TEST_PIDFILE).
set -eu

DIR=${NFSDEV_DIR:-/tmp/nfsdev}
PORT=${NFSDEV_PORT:-22049}
MNTPORT=${NFSDEV_MNTPORT:-22050}
URL="nfs://127.0.0.1/export?nfsport=$PORT&mountport=$MNTPORT"

# 0 when the process is gone; zombies count as gone (see nfs.md).
alive() {
	[ -r "/proc/$1/stat" ] || return 1
	state=$(sed 's/^.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null || echo Z)
	[ "$state" != Z ]
}

stop_pidfile() {
	f=$1
	[ -s "$f" ] || { rm -f "$f"; return 0; }
	pid=$(cat "$f")
	if alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		i=0
		while alive "$pid" && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
		if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
	fi
	rm -f "$f"
}

start() {
	mkdir -p "$DIR/export" "$DIR/state"
	if [ -s "$DIR/ganesha.pid" ] && alive "$(cat "$DIR/ganesha.pid")"; then
		echo "ganesha already running (pid $(cat "$DIR/ganesha.pid"))" >&2
		echo "$URL"
		return 0
	fi
	rm -f "$DIR/ganesha.pid"
	# Reuse an rpcbind that answers (someone else's); start ours otherwise,
	# in an empty network namespace so port 111 never opens for real.
	if ! rpcinfo >/dev/null 2>&1; then
		unshare -n rpcbind -f >"$DIR/rpcbind.log" 2>&1 &
		echo $! >"$DIR/rpcbind.pid"
		i=0
		until rpcinfo >/dev/null 2>&1; do
			i=$((i + 1))
			[ $i -lt 50 ] || { echo "rpcbind did not start" >&2; exit 1; }
			sleep 0.1
		done
	fi
	cat >"$DIR/ganesha.conf" <<EOF
NFS_CORE_PARAM {
	Bind_addr = 127.0.0.1; NFS_Port = $PORT; MNT_Port = $MNTPORT;
	Protocols = 3, 4; Enable_UDP = false; Enable_NLM = false;
	Enable_RQUOTA = false; mount_path_pseudo = true;
	Plugins_Dir = "/usr/lib/x86_64-linux-gnu/ganesha";
}
NFS_KRB5 { Active_krb5 = false; }
NFSv4 { Graceless = true; RecoveryRoot = "$DIR/state"; Only_Numeric_Owners = true; }
EXPORT {
	Export_Id = 1; Path = "$DIR/export"; Pseudo = "/export";
	Access_Type = RW; Squash = None; Protocols = 3, 4; Transports = TCP;
	SecType = sys; FSAL { Name = VFS; }
}
LOG { Default_Log_Level = EVENT; }
EOF
	ganesha.nfsd -F -f "$DIR/ganesha.conf" -L "$DIR/ganesha.log" \
		-p "$DIR/ganesha.pid" >/dev/null 2>&1 &
	echo $! >"$DIR/ganesha.pid"
	i=0
	until nfs-ls "$URL" >/dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -ge 100 ] || ! alive "$(cat "$DIR/ganesha.pid")"; then
			echo "ganesha did not become ready; see $DIR/ganesha.log" >&2
			exit 1
		fi
		sleep 0.1
	done
	echo "$URL"
	echo "pidfile $DIR/ganesha.pid" >&2
}

stop() {
	stop_pidfile "$DIR/ganesha.pid"
	# Only an rpcbind this script started, and only while no other ganesha
	# (which registered through it and may restart) is running.
	if [ -s "$DIR/rpcbind.pid" ] && pgrep -x ganesha.nfsd >/dev/null; then
		echo "rpcbind (pid $(cat "$DIR/rpcbind.pid")) left running: another ganesha uses it" >&2
	elif [ -s "$DIR/rpcbind.pid" ]; then
		stop_pidfile "$DIR/rpcbind.pid"
		rm -f /run/rpcbind.sock /run/rpcbind.lock
	fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
restart) stop_pidfile "$DIR/ganesha.pid"; start ;;
status)
	if [ -s "$DIR/ganesha.pid" ] && alive "$(cat "$DIR/ganesha.pid")"; then
		echo "running pid $(cat "$DIR/ganesha.pid") $URL"
	else
		echo "stopped"; exit 1
	fi ;;
url) echo "$URL" ;;
*) echo "usage: $0 start|stop|restart|status|url" >&2; exit 2 ;;
esac
