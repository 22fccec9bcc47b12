#!/usr/bin/env bash
# Retention against a real repository: keep_last keeps the newest N, the
# latest verified snapshot always stays, --dry-run changes nothing, removal
# takes manifest and files away and the catalog keeps a "deleted" row.
set -u
source "$ROOT/tests/integration/lib.sh"
# Its own catalog and repository: retention must not see other tests' snapshots.
REPO=$ENV_DIR/prune-repo
base=$(conf_with catalog "$ENV_DIR/prune.db" repository "$REPO")
ctl() { ERRF=$(mktemp "$ENV_DIR/ctl-err.XXXXXX"); OUT=$($BACKUPCTL -c "$base" "$@" 2>"$ERRF"); RC=$?; ERR=$(cat "$ERRF"); rm -f "$ERRF"; }
conf_with() { # on top of this test's base config
	local out; out=$(mktemp "$ENV_DIR/conf.XXXXXX"); cp "$base" "$out"
	while [ $# -ge 2 ]; do
		awk -v k="$1" -v v="$2" '{ if ($0 ~ "^" k "[ \t]*=") print k " = " v; else print }' "$out" > "$out.n" && mv "$out.n" "$out"
		shift 2
	done
	chmod 600 "$out"; echo "$out"
}

sql_primary "CREATE DATABASE prune_t; CREATE TABLE prune_t.t (id INT PRIMARY KEY); INSERT INTO prune_t.t VALUES (1)"
wait_replica_caught_up 10
for i in 1 2 3 4; do
	ctl snapshot
	check "snapshot $i for retention" test "$RC" -eq 0
done
ctl list --json
ids=($(jq -r '.[] | select(.status == "complete") | .id' <<<"$OUT"))
n=${#ids[@]}
check "at least 4 complete snapshots" test "$n" -ge 4
oldest=${ids[0]}
ctl verify "$oldest"
expect_eq "the oldest is verified" "$RC" 0

conf=$(conf_with keep_last 0 keep_days 0)
ctl -c "$conf" prune --json
expect_eq "no retention configured: prune exits 0" "$RC" 0
expect_eq "no retention configured: nothing deleted" "$(jq '[.[] | select(.action != "keep")] | length' <<<"$OUT")" 0

conf=$(conf_with keep_last 2)
ctl -c "$conf" prune --dry-run --json
expect_eq "dry run exits 0" "$RC" 0
want=$((n - 3))   # two newest + the latest verified (the oldest) stay
expect_eq "dry run: all but keep_last and the latest verified would go" \
	"$(jq '[.[] | select(.action == "would delete")] | length' <<<"$OUT")" "$want"
expect_eq "dry run: the latest verified stays, and says why" \
	"$(jq -r --arg id "$oldest" '.[] | select(.id == $id) | .why' <<<"$OUT")" "the latest verified snapshot"
check "dry run: every manifest still there" test "$(find "$REPO/sandbox" -name manifest.json | wc -l)" -ge "$n"

gone=($(jq -r '.[] | select(.action == "would delete") | .id' <<<"$OUT"))
ctl -c "$conf" prune --json
expect_eq "prune exits 0" "$RC" 0
expect_eq "prune deleted what the dry run listed" \
	"$(jq -r '[.[] | select(.action == "deleted") | .id] | join(" ")' <<<"$OUT")" "${gone[*]}"
for id in "${gone[@]}"; do
	check "snapshot $id folder removed" test ! -e "$REPO/sandbox/$id"
done
check "the latest verified snapshot is still there" test -f "$REPO/sandbox/$oldest/manifest.json"
ctl list --json
expect_eq "list shows keep_last + the verified one" "$(jq '[.[] | select(.status == "complete")] | length' <<<"$OUT")" 3
ctl list --all --json
expect_eq "deleted snapshots stay in the catalog as history" \
	"$(jq '[.[] | select(.status == "deleted")] | length' <<<"$OUT")" "${#gone[@]}"

sql_primary "DROP DATABASE prune_t"
wait_replica_caught_up 10
finish
