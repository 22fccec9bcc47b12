/* libFuzzer target for cron_parse and cron_next: cron expressions come from
 * the config file, typed by people. Besides the sanitizers' checks it
 * asserts that every failure is ERR_CONFIG with a one-line "cron '...'"
 * message, and that whatever parses has a next fire time (in UTC and in
 * Europe/Berlin) strictly after the start, which in UTC matches the
 * expression and is its own successor's predecessor; libFuzzer's -timeout
 * catches a search that does not stop.
 *
 * Build and run: tests/fuzz/run.sh (FUZZ_SECONDS=60 tests/fuzz/run.sh cron)
 * or by hand from the top of the tree:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE -Ilib -Ischedules -o build-fuzz/fuzz_cron tests/fuzz/fuzz_cron.c schedules/cron.c lib/err.c lib/mem.c -pthread
 *   build-fuzz/fuzz_cron -max_total_time=60 -timeout=10 CORPUS_DIR */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool utc_matches(const struct cron *c, time_t t)
{
	struct tm tm;

	if (t % 60 != 0 || !gmtime_r(&t, &tm))
		return false;
	if (!(c->minutes & (1ull << tm.tm_min)) ||
	    !(c->hours & (1u << tm.tm_hour)) ||
	    !(c->months & (1u << (tm.tm_mon + 1))))
		return false;
	bool dm = c->mdays & (1u << tm.tm_mday);
	bool wm = c->wdays & (1u << tm.tm_wday);
	return (c->mday_star || c->wday_star) ? (dm && wm) : (dm || wm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char expr[CRON_EXPR_MAX + 64];
	struct cron c;
	struct err e;
	uint32_t h = 2166136261u;
	time_t after, next, again;

	if (size >= sizeof(expr))
		size = sizeof(expr) - 1;
	memcpy(expr, data, size);
	expr[size] = '\0';
	err_init(&e);
	if (cron_parse(expr, &c, &e) != 0) {
		if (e.code != ERR_CONFIG || !e.msg[0] || strchr(e.msg, '\n') ||
		    strncmp(e.msg, "cron '", 6) != 0)
			abort();
		return 0;
	}
	if (c.every_s == 0 && (!c.minutes || !c.hours || !c.mdays ||
			       !c.months || !c.wdays))
		abort();
	if (c.every_s && (c.every_s < CRON_EVERY_MIN_S ||
			  c.every_s > CRON_EVERY_MAX_S))
		abort();
	/* A start time derived from the input, 1970..2106. */
	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 16777619u;
	after = (time_t)h;

	if (cron_next(&c, NULL, after, &next, &e) != 0 || next <= after)
		abort();
	if (c.every_s == 0) {
		if (!utc_matches(&c, next))
			abort();
		if (cron_next(&c, NULL, next - 1, &again, &e) != 0 || again != next)
			abort();
	}
	if (cron_next(&c, "Europe/Berlin", after, &next, &e) != 0 || next <= after)
		abort();
	return 0;
}
