# Helpers for integration scripts: TAP-style checks the runner counts.
# Source after the runner exported ENV_DIR/BUILD (tests/run.sh does).
# shellcheck disable=SC1091
source "$ENV_DIR/env.sh"
source "$ROOT/tests/env/lib.sh"

BACKUPCTL="${TEST_WRAPPER:+$TEST_WRAPPER }$ROOT/$BUILD/backupctl"
BACKUPD="${TEST_WRAPPER:+$TEST_WRAPPER }$ROOT/$BUILD/backupd"
T_FAILED=0

ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; T_FAILED=$((T_FAILED + 1)); }

# check NAME CMD...: passes when CMD exits 0.
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}

# expect_eq NAME GOT WANT
expect_eq() {
	if [ "$2" == "$3" ]; then ok "$1"; else not_ok "$1 (got '$2', want '$3')"; fi
}

# backupctl with the test config; stdout, stderr and status kept in
# $OUT, $ERRF (file) and $RC.
ctl() {
	ERRF=$(mktemp "$ENV_DIR/ctl-err.XXXXXX")
	# shellcheck disable=SC2086
	OUT=$($BACKUPCTL "$@" 2>"$ERRF")
	RC=$?
	ERR=$(cat "$ERRF")
	rm -f "$ERRF"
}

finish() { [ "$T_FAILED" -eq 0 ]; }

# manual_load SNAPDIR SOCKET: an independent loader for the snapshot format
# (jq + zstd + the mariadb client, no backupd code) that recreates every
# database and table of the manifest on the server at SOCKET and loads the
# data with LOAD DATA LOCAL INFILE, without binlogging. It proves the
# encoding round-trips byte-exactly apart from backupd's own restore.
manual_load() {
	local snap=$1 sock=$2 sqlf tmpd
	tmpd=$(mktemp -d "$ENV_DIR/mload.XXXXXX")
	sqlf=$tmpd/load.sql
	local i=0
	while IFS= read -r f; do
		zstd -q -dc "$snap/$f" > "$tmpd/f$i" || return 1
		i=$((i + 1))
	done < <(jq -r '.files[] | select(.kind == "data") | .path' "$snap/manifest.json")
	jq -r --arg d "$tmpd" '
	  def q: "`" + gsub("`"; "``") + "`";
	  def s: "'"'"'" + gsub("\\\\"; "\\\\") | gsub("'"'"'"; "'"'"''"'"'") + "'"'"'";
	  "SET SESSION sql_log_bin = 0; SET NAMES utf8mb4; SET SESSION foreign_key_checks = 0; SET SESSION time_zone = '"'"'+00:00'"'"';",
	  (.databases[] | .create_sql + ";"),
	  ( . as $m | [.files | to_entries[] | select(.value.kind == "data")] as $df
	    | .tables | to_entries[] | .key as $ti | .value as $t
	    | "USE \($t.schema | q);", ($t.create_sql + ";"),
	      ( [$t.columns | to_entries[] | select(.value.kind != "generated")] as $cols
	        | ($cols | map(if .value.kind == "raw" then (.value.name | q) else "@c\(.key)" end) | join(",")) as $list
	        | ($cols | map(select(.value.kind == "bit" or .value.kind == "ascii")
	             | (.value.name | q) + "=" + (if .value.kind == "bit" then "CAST(@c\(.key) AS UNSIGNED)" else "CONVERT(@c\(.key) USING ascii)" end))
	             | if length > 0 then " SET " + join(", ") else "" end) as $set
	        | ($df | to_entries[] | select(.value.value.table == $ti)
	           | "LOAD DATA LOCAL INFILE '"'"'\($d)/f\(.key)'"'"' INTO TABLE \($t.name | q) CHARACTER SET binary (\($list))\($set);")) )
	' "$snap/manifest.json" > "$sqlf" || return 1
	mariadb --no-defaults --local-infile=1 -uroot -S "$sock" < "$sqlf"
	local rc=$?
	rm -rf "$tmpd"
	return $rc
}

# checksums SOCKET: "schema.table checksum" for every table of the
# non-system databases, sorted — to compare two servers.
checksums() {
	local sock=$1 q
	q=$(mariadb --no-defaults -uroot -S "$sock" -N -B -e "SELECT CONCAT('\`', REPLACE(TABLE_SCHEMA, '\`', '\`\`'), '\`.\`', REPLACE(TABLE_NAME, '\`', '\`\`'), '\`') FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN ('mysql','information_schema','performance_schema','sys') ORDER BY TABLE_SCHEMA, TABLE_NAME" | paste -sd, -)
	[ -n "$q" ] || return 0
	mariadb --no-defaults -uroot -S "$sock" -N -B -e "CHECKSUM TABLE $q EXTENDED" | sort
}

# conf_with KEY VALUE [KEY VALUE...]: a copy of the env's config with keys
# replaced (first occurrence); prints its path. Mode 0600.
conf_with() {
	local out
	out=$(mktemp "$ENV_DIR/conf.XXXXXX")
	cp "$BACKUPD_CONFIG" "$out"
	while [ $# -ge 2 ]; do
		local k=$1 v=$2
		shift 2
		if grep -q "^$k[[:space:]]*=" "$out"; then
			awk -v k="$k" -v v="$v" 'BEGIN{done=0} { if (!done && $0 ~ "^" k "[ \t]*=") { print k " = " v; done=1 } else print }' "$out" > "$out.new" && mv "$out.new" "$out"
		else
			awk -v k="$k" -v v="$v" '{ print } /^\[cluster / { print k " = " v }' "$out" > "$out.new" && mv "$out.new" "$out"
		fi
	done
	chmod 600 "$out"
	echo "$out"
}

# A TCP port nothing listens on.
closed_port() {
	local p
	for p in $(seq 39100 39200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}

# The replica's SQL thread state: Yes or No.
replica_sql_running() { env_slave_field replica Slave_SQL_Running; }
