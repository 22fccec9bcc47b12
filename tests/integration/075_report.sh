#!/usr/bin/env bash
# backupctl report --html: a catalog with real snapshots (spread over three
# days), real drills (passed and failed) and lag samples renders into one
# self-contained HTML file; headless Chromium (Debian's chromium, run in an
# empty network namespace when possible, so the page provably needs no
# network) loads it, runs its script, and the DOM it ends with holds the
# catalog's figures: every snapshot day's bytes, every drill's RTO and
# result, every lag sample. A screenshot is kept for people to look at.
set -u
source "$ROOT/tests/integration/lib.sh"
REPO=$ENV_DIR/report-repo
DB=$ENV_DIR/report.db
OUTD=$ENV_DIR/report-out
rm -rf "$REPO" "$DB" "$DB"-* "$OUTD"
mkdir -p "$OUTD"
base=$(conf_with catalog "$DB" repository "$REPO")
ctl() { ERRF=$(mktemp "$ENV_DIR/ctl-err.XXXXXX"); OUT=$($BACKUPCTL -c "$base" "$@" 2>"$ERRF"); RC=$?; ERR=$(cat "$ERRF"); rm -f "$ERRF"; }
q() { sqlite3 "$DB" "$1"; }
REPLICA=127.0.0.1:$REPLICA_PORT

CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
	not_ok "chromium is installed (apt-get install chromium; scripts/deps.sh)"
	finish
	exit
fi
# Never the network: an empty network namespace when we may make one.
NONET=()
unshare -n true 2>/dev/null && NONET=(unshare -n)
chrome() {
	local prof
	prof=$(mktemp -d "$ENV_DIR/chromium.XXXXXX")
	timeout 60 "${NONET[@]}" "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic \
		--no-first-run --disable-background-networking --disable-component-update \
		--disable-sync --disable-extensions --disable-default-apps --no-pings \
		--disable-domain-reliability --metrics-recording-only --hide-scrollbars \
		--user-data-dir="$prof" "$@" 2>>"$OUTD/chromium.log"
	local rc=$?
	rm -rf "$prof"
	return $rc
}

# --- a catalog with some history --------------------------------------------
sql_primary "CREATE DATABASE report_t; CREATE TABLE report_t.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64)) ENGINE=InnoDB"
ids=()
for n in 2000 6000 12000; do
	sql_primary "USE report_t; INSERT INTO t (v) SELECT CONCAT('row ', seq, ' ', MD5(seq)) FROM seq_1_to_$n"
	wait_replica_caught_up 10
	ctl snapshot
	check "snapshot after $n more rows" test "$RC" -eq 0
	ids+=("$OUT")
done
for i in 0 1 2; do
	ctl drill --snapshot "${ids[$i]}"
	expect_eq "drill of snapshot $((i + 1)) passes" "$RC" 0
done
bad=$(mktemp "$ENV_DIR/conf.XXXXXX"); cp "$base" "$bad"
echo 'drill_probe = SELECT 1 FROM report_t.t WHERE id < 0' >>"$bad"
ctl -c "$bad" drill
check "a drill with an empty probe fails" test "$RC" -ne 0
# The history spans days: the first snapshot (and its drill) two days back,
# the second one day back. Only the catalog's times move.
now=$(date +%s)
q "UPDATE snapshots SET started_at = started_at - 2 * 86400, finished_at = finished_at - 2 * 86400 WHERE id = '${ids[0]}';
   UPDATE snapshots SET started_at = started_at - 86400, finished_at = finished_at - 86400 WHERE id = '${ids[1]}';
   UPDATE drills SET started_at = started_at - 2 * 86400, finished_at = finished_at - 2 * 86400 WHERE snapshot_id = '${ids[0]}';
   UPDATE drills SET started_at = started_at - 86400, finished_at = finished_at - 86400 WHERE snapshot_id = '${ids[1]}' AND result = 'ok';"
# Lag samples at 1-minute resolution as the lag monitor rolls them up: a
# calm morning, a warn episode, a broken minute, calm again.
lags=(0.25 1.5 6.75 12.5 0.5)
offs=(20000 15000 10000 9700 3000)
for k in "${!lags[@]}"; do
	q "INSERT INTO lag_samples (cluster, server, ts, resolution_s, lag_s, lag_max_s, state) VALUES ('sandbox', '$REPLICA', $((now - ${offs[$k]})), 60, ${lags[$k]}, ${lags[$k]} * 1.5, CASE WHEN ${lags[$k]} >= 5 THEN 'warn' ELSE 'ok' END)"
done
q "INSERT INTO lag_samples (cluster, server, ts, resolution_s, lag_s, lag_max_s, state) VALUES ('sandbox', '$REPLICA', $((now - 5000)), 60, NULL, NULL, 'broken')"
q "INSERT INTO lag_state VALUES ('sandbox', '$REPLICA', 'ok', $((now - 3000)), NULL, NULL, 0.5, $now)"

# --- the report ---------------------------------------------------------------
HTML=$OUTD/report.html
ctl report --html "$HTML" --json
expect_eq "report exits 0" "$RC" 0
expect_eq "report --json names the file" "$(jq -r .file <<<"$OUT")" "$HTML"
expect_eq "report --json: the catalog's drills" "$(jq -r .drills <<<"$OUT")" 4
expect_eq "report --json: the catalog's snapshots" "$(jq -r .snapshots <<<"$OUT")" 3
expect_eq "report --json: the lag samples" "$(jq -r .lag_points <<<"$OUT")" 6
check "the report is one HTML file" grep -q '^<!DOCTYPE html>' "$HTML"
check "no external asset or URL in the page" bash -c "! grep -Eiq 'https?:|src=|<link|@import|url\\(' '$HTML'"
check "no temporary file left next to it" test ! -e "$HTML.tmp"
ctl report --html - --cluster sandbox --days 7 --lag-hours 12
check "report --html - writes the page to stdout" grep -q '</html>' <<<"$OUT"
ctl report --html "$OUTD/x.html" --cluster nope
expect_eq "report of an unknown cluster: not found" "$RC" 9
ctl report
expect_eq "report without --html: usage error" "$RC" 2

# --- headless Chromium ----------------------------------------------------------
DOM=$OUTD/dom.html
chrome --virtual-time-budget=2000 --dump-dom "file://$HTML" >"$DOM"
check "chromium loaded the page (DOM dumped)" grep -q '</svg>' "$DOM"
ready=$(grep -o 'data-report-ready="[0-9]*"' "$DOM" | grep -o '[0-9]*')
check "the page's script ran in chromium (tooltips on every mark)" test "${ready:-0}" -gt 10
expect_eq "one lag chart, size and duration charts, one RTO chart" \
	"$(grep -o 'data-chart="[a-z-]*"' "$DOM" | sort | uniq -c | awk '{print $2 $1}' | paste -sd, -)" \
	'data-chart="drill-rto"1,data-chart="lag"1,data-chart="snapshot-duration"1,data-chart="snapshot-size"1'

# Every snapshot day: its stored bytes and count, as the catalog sums them.
while IFS='|' read -r day n bytes; do
	check "snapshots of $day: $n, $bytes bytes stored, in the DOM" \
		grep -q "data-day=\"$day\" data-snapshots=\"$n\" data-failed=\"0\" data-bytes-stored=\"$bytes\"" "$DOM"
done < <(q "SELECT strftime('%Y-%m-%d', started_at, 'unixepoch'), COUNT(*), SUM(bytes_stored) FROM snapshots WHERE status = 'complete' GROUP BY 1 ORDER BY 1")
expect_eq "three snapshot days drawn" "$(grep -c 'class="day"' "$DOM")" 6   # size + duration chart

# Every drill: its mark with result and RTO.
while IFS='|' read -r id result rto; do
	if [ "$result" = ok ]; then
		got=$(grep -o "class=\"drill pass\" data-drill-id=\"$id\" data-result=\"ok\" data-ts=\"[0-9]*\" data-time=\"[^\"]*\" data-rto=\"[0-9.]*\"" "$DOM" |
			sed 's/.*data-rto="//; s/"$//')
		check "drill $id: a pass mark with RTO $rto (drawn: ${got:-none})" \
			awk -v a="${got:--1}" -v b="$rto" 'BEGIN { d = a - b; exit !(a >= 0 && d < 0.0015 && d > -0.0015) }'
	else
		check "drill $id: a fail mark without RTO" \
			grep -q "class=\"drill fail\" data-drill-id=\"$id\" data-result=\"failed\" data-ts=\"[0-9]*\" data-time=\"[^\"]*\" data-rto=\"\"" "$DOM"
	fi
done < <(q "SELECT id, result, COALESCE(rto_s, '') FROM drills ORDER BY id")
check "the failed drill's reason is in the failures table" grep -q "returned no rows" "$DOM"

# Every lag sample: a point with its figure (one sample per 2-minute bucket).
for v in "${lags[@]}"; do
	check "lag sample $v s drawn" grep -q "data-lag=\"$(printf '%.3f' "$v")\"" "$DOM"
done
check "the broken minute is marked" grep -q 'data-lag="" data-state="broken"' "$DOM"
check "the warn threshold is drawn" grep -q 'data-threshold="warn" data-lag="5"' "$DOM"
check "topology lists the replica with its lag state" \
	grep -q "data-server=\"$REPLICA\" data-role=\"replica\"" "$DOM"
check "topology lists the drill target" grep -q "data-server=\"127.0.0.1:$SPARE_PORT\" data-role=\"drill target\"" "$DOM"

# A picture for people: rendered at desktop width, a real PNG of the page.
PNG=$OUTD/report.png
chrome --virtual-time-budget=2000 --window-size=1280,3200 --screenshot="$PNG" "file://$HTML" >/dev/null
check "chromium took a screenshot" test -s "$PNG"
check "the screenshot is a 1280x3200 PNG" bash -c "file '$PNG' | grep -q 'PNG image data, 1280 x 3200'"
check "the screenshot is not blank (charts drawn)" test "$(stat -c %s "$PNG")" -gt 50000
echo "# report: $HTML, screenshot: $PNG"

sql_primary "DROP DATABASE report_t"
wait_replica_caught_up 10
finish
