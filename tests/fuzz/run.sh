#!/usr/bin/env bash
# Builds every libFuzzer target tests/fuzz/fuzz_*.c with clang
# (-fsanitize=fuzzer,address,undefined) into $BUILD (default build-fuzz)
# and runs each for FUZZ_SECONDS (default 30). Exits non-zero when a target
# fails to build, crashes, leaks, hangs past FUZZ_TIMEOUT seconds on one
# input (default 10) or fails its own checks.
#
# Usage: tests/fuzz/run.sh [NAME...]     (NAME = cron for fuzz_cron.c)
# Targets link against the project archives built with fuzzer-no-link
# instrumentation ($BUILD/lib*.a, as `make fuzz` builds them; built here if
# missing). Seeds: tests/fuzz/corpus/NAME/ if present, plus the cron lines
# of schedules/examples/*.conf for cron. The growing corpus, logs and crash
# artifacts stay in $BUILD/fuzz/.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

BUILD=${BUILD:-build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-10}
CC=clang
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
PKGS="libmariadb libnfs libzstd libcurl sqlite3 inih jansson libmicrohttpd libxxhash"
# Archives built by `make fuzz` may have been compiled with recoverable UB
# checks: make them fatal at run time too.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

if ! command -v "$CC" >/dev/null; then
	echo "fuzz: clang not found" >&2
	exit 1
fi

# The archives, in link order (later ones serve earlier ones). One that does
# not build (the tree may be mid-change) is left out with a warning; a
# target that needs it then fails to link, which counts as a failure.
archives=()
mkdir -p "$BUILD/fuzz"
for a in libdaemon librestore libsched libcore; do
	if make -s BUILD="$BUILD" CC="$CC" CFLAGS="-O1 -g" \
		SAN_CFLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined" \
		SAN_LDFLAGS="-fsanitize=address,undefined" "$BUILD/$a.a" \
		>"$BUILD/fuzz/$a.log" 2>&1; then
		archives+=("$BUILD/$a.a")
		rm -f "$BUILD/fuzz/$a.log"
	else
		echo "fuzz: warning: $BUILD/$a.a does not build (see $BUILD.$a.log)" >&2
	fi
done
# shellcheck disable=SC2086
libs=$(pkg-config --libs $PKGS)

if [ $# -gt 0 ]; then
	targets=()
	for n in "$@"; do targets+=("tests/fuzz/fuzz_${n#fuzz_}.c"); done
else
	targets=(tests/fuzz/fuzz_*.c)
fi

failed=0
for src in "${targets[@]}"; do
	name=$(basename "$src" .c)
	short=${name#fuzz_}
	bin=$BUILD/$name
	work=$BUILD/fuzz/$short
	mkdir -p "$work/corpus" "$work/artifacts"
	# shellcheck disable=SC2086,SC2046
	if ! $CC -g -O1 -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 \
		-fsanitize=fuzzer $SAN -Ilib -Ischedules -Ibackupd -Irestore \
		$(pkg-config --cflags $PKGS) -pthread -o "$bin" "$src" \
		"${archives[@]}" $libs -pthread -lm >"$work/build.log" 2>&1; then
		cat "$work/build.log" >&2
		echo "fuzz: $name: build failed" >&2
		failed=$((failed + 1))
		continue
	fi
	seeds=()
	opts=()
	[ -d "tests/fuzz/corpus/$short" ] && seeds+=("tests/fuzz/corpus/$short")
	[ -f "tests/fuzz/$short.dict" ] && opts+=("-dict=tests/fuzz/$short.dict")
	if [ "$short" = cron ]; then
		# The grammar's words, so mutations reach names and aliases.
		printf '%s\n' '"@every "' '"@yearly"' '"@annually"' '"@monthly"' \
			'"@weekly"' '"@daily"' '"@midnight"' '"@hourly"' '"@reboot"' \
			'"*/"' '"-"' '","' '" "' '"jan"' '"feb"' '"aug"' '"dec"' \
			'"sun"' '"mon"' '"fri"' '"sat"' '"1h30m"' '"2d"' '"59"' \
			'"31"' '"* * * * *"' >"$work/dict"
		opts+=("-dict=$work/dict")
		i=0
		for f in schedules/examples/*.conf; do
			[ -f "$f" ] || continue
			sed -n 's/^[[:space:]]*cron[[:space:]]*=[[:space:]]*//p' "$f" |
			while IFS= read -r line; do
				line=${line%%;*}
				printf '%s' "${line%"${line##*[![:space:]]}"}" \
					>"$work/corpus/seed-$(basename "$f" .conf)-$i-$RANDOM"
				i=$((i + 1))
			done
		done
	fi
	log=$work/run.log
	echo "== $name: ${FUZZ_SECONDS}s"
	"$bin" -max_total_time="$FUZZ_SECONDS" -timeout="$FUZZ_TIMEOUT" \
		-rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
		-artifact_prefix="$work/artifacts/" "${opts[@]}" \
		"$work/corpus" "${seeds[@]}" \
		>"$log" 2>&1
	rc=$?
	grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)|cov: .*(DONE|REDUCE|NEW).*' "$log" |
		grep -E '^(Done|stat::)' || true
	grep -E '#[0-9]+.*(DONE|pulse)' "$log" | tail -n 1
	echo "   corpus: $(find "$work/corpus" -type f | wc -l) inputs; log $log"
	if [ $rc -ne 0 ]; then
		grep -E 'ERROR|SUMMARY|Test unit written|deadly signal|timeout' "$log" >&2
		echo "fuzz: $name: FAILED (exit $rc), see $log" >&2
		failed=$((failed + 1))
	fi
done

if [ $failed -ne 0 ]; then
	echo "fuzz: $failed target(s) failed" >&2
	exit 1
fi
echo "fuzz: all ${#targets[@]} target(s) ran clean"
