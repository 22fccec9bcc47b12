#!/bin/sh
# Installs every Debian 12 package that building, testing, benchmarking and
# the demo need. The README, .ci/run and the Dockerfile all use this one
# list. Usage: scripts/deps.sh [--build|--runtime|--all]   (default --all)
#   --print-build / --print-runtime print the package names only.
set -eu

# Libraries backupd links against (headers) and the build tools.
BUILD_PKGS="build-essential pkg-config libmariadb-dev libmariadb-dev-compat
 libnfs-dev libzstd-dev libcurl4-openssl-dev libsqlite3-dev libinih-dev
 libjansson-dev libmicrohttpd-dev libxxhash-dev libcmocka-dev"

# Shared libraries the binaries need at run time (the Docker runtime stage).
RUNTIME_PKGS="libmariadb3 libnfs13 libzstd1 libcurl4 libsqlite3-0 libinih1
 libjansson4 libmicrohttpd12 libxxhash0 ca-certificates tzdata"

# Real servers and tools the tests, the demo and the benchmarks run.
TEST_PKGS="mariadb-server mariadb-client mariadb-backup nfs-ganesha
 nfs-ganesha-vfs rpcbind libnfs-utils haproxy socat jq curl zstd sqlite3
 procps iproute2 util-linux valgrind clang libclang-rt-14-dev mydumper sysbench
 xxhash chromium file coreutils time"

case "${1:---all}" in
--print-build) echo $BUILD_PKGS; exit 0 ;;
--print-runtime) echo $RUNTIME_PKGS; exit 0 ;;
--build) pkgs="$BUILD_PKGS" ;;
--runtime) pkgs="$RUNTIME_PKGS" ;;
--all) pkgs="$BUILD_PKGS $RUNTIME_PKGS $TEST_PKGS" ;;
*) echo "usage: $0 [--build|--runtime|--all|--print-build|--print-runtime]" >&2; exit 2 ;;
esac

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
# Debian's packaging starts mariadb/ganesha/rpcbind services on install where
# an init system runs; backupd's tests start their own on loopback ports.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
	$SUDO chmod 755 /usr/sbin/policy-rc.d
	trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get update -qq
# shellcheck disable=SC2086
# The slim runtime image skips recommends; the full set keeps them so a fresh
# machine gets what the servers' packages expect.
rec=
[ "${1:---all}" = --runtime ] && rec=--no-install-recommends
$SUDO apt-get install -y -qq $rec $pkgs
