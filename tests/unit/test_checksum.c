/* Unit tests for lib/checksum: known XXH3-128 vectors (from `xxhsum -H2`),
 * streaming in pieces equals one-shot, and manifest string validation.
 * With CHECKSUM_BENCH=1 it also prints hashing throughput. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "checksum.h"
#include "mem.h"

static unsigned char *pattern(size_t n)
{
	unsigned char *p = xmalloc(n ? n : 1);

	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(((i * 31 + 7) >> 3) & 0xff);
	return p;
}

static void expect_sum(const void *data, size_t n, const char *hex)
{
	char want[CHECKSUM_HEX_MAX + 8];
	char got[CHECKSUM_HEX_MAX];

	snprintf(want, sizeof(want), "xxh128:%s", hex);
	checksum_of(data, n, got);
	assert_string_equal(got, want);
	assert_int_equal(strlen(got), CHECKSUM_HEX_MAX - 1);
}

static void test_known_vectors(void **state)
{
	static const struct {
		size_t n;          /* 0: use text */
		const char *text;
		const char *hex;
	} vec[] = {
		{ 0, "", "99aa06d3014798d86001c324468d497f" },
		{ 0, "a", "a96faf705af16834e6c632b61e964e1f" },
		{ 0, "abc", "06b05ab6733a618578af5f94892f3950" },
		{ 0, "The quick brown fox jumps over the lazy dog",
		  "ddd650205ca3e7fa24a1cc2e3a8a7651" },
		/* pattern(n): covers the 129..240, long and multi-block paths */
		{ 200, NULL, "f4e6e90639246802b32495a673314fbd" },
		{ 12345, NULL, "4ec93493df7f8886005fdc69cf1ead9a" },
		{ 1u << 20, NULL, "e1ddcd27b216be4acf95164eeacf06bc" },
	};

	for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		if (vec[i].text) {
			expect_sum(vec[i].text, strlen(vec[i].text), vec[i].hex);
		} else {
			unsigned char *p = pattern(vec[i].n);
			expect_sum(p, vec[i].n, vec[i].hex);
			free(p);
		}
	}
}

static void test_streaming_equals_one_shot(void **state)
{
	static const size_t steps[] = { 1, 2, 3, 15, 16, 17, 63, 64, 65, 239,
					240, 241, 1023, 1024, 1025, 4096,
					65536, 100000 };
	const size_t n = 3u * 1024 * 1024 + 77;
	unsigned char *p = pattern(n);
	char one[CHECKSUM_HEX_MAX];
	char part[CHECKSUM_HEX_MAX];

	checksum_of(p, n, one);
	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		struct checksum c;
		size_t off = 0;
		size_t k = s;

		checksum_init(&c);
		while (off < n) {
			/* vary the piece size so boundaries fall everywhere */
			size_t len = steps[k++ % (sizeof(steps) / sizeof(steps[0]))];
			if (len > n - off)
				len = n - off;
			checksum_update(&c, p + off, len);
			off += len;
		}
		checksum_update(&c, p, 0);
		assert_int_equal(c.bytes, n);
		checksum_final(&c, part);
		assert_string_equal(part, one);
		checksum_release(&c);
	}
	free(p);
}

static void test_final_twice_and_continue(void **state)
{
	struct checksum c;
	char a[CHECKSUM_HEX_MAX], b[CHECKSUM_HEX_MAX], ab[CHECKSUM_HEX_MAX];
	char want_a[CHECKSUM_HEX_MAX], want_ab[CHECKSUM_HEX_MAX];

	checksum_of("hello", 5, want_a);
	checksum_of("hello world", 11, want_ab);
	checksum_init(&c);
	checksum_update(&c, "hello", 5);
	checksum_final(&c, a);
	checksum_final(&c, b);
	assert_string_equal(a, want_a);
	assert_string_equal(b, want_a);
	checksum_update(&c, " world", 6);
	checksum_final(&c, ab);
	assert_string_equal(ab, want_ab);
	checksum_release(&c);
	checksum_release(&c); /* second release is a no-op */
}

static void test_parse(void **state)
{
	static const char *good[] = {
		"xxh128:99aa06d3014798d86001c324468d497f",
		"xxh128:00000000000000000000000000000000",
		"xxh128:ffffffffffffffffffffffffffffffff",
	};
	static const struct {
		const char *s;
		const char *msg;
	} bad[] = {
		{ "", "expected 'algo:hex'" },
		{ "99aa06d3014798d86001c324468d497f", "expected 'algo:hex'" },
		{ "xxh128:", "32 lowercase hex" },
		{ "xxh128:99aa06d3014798d86001c324468d497", "32 lowercase hex" },
		{ "xxh128:99aa06d3014798d86001c324468d497f0", "32 lowercase hex" },
		{ "xxh128:99AA06D3014798D86001C324468D497F", "32 lowercase hex" },
		{ "xxh128:99aa06d3014798d86001c324468d497g", "32 lowercase hex" },
		{ "xxh128:99aa06d3014798d86001c324468d497f ", "32 lowercase hex" },
		{ "xxh128: 99aa06d3014798d86001c324468d497", "32 lowercase hex" },
		{ "xxh128:99aa06d3014798d8-6001c324468d497f", "32 lowercase hex" },
		{ "XXH128:99aa06d3014798d86001c324468d497f", "unsupported checksum algorithm 'XXH128'" },
		{ "sha256:99aa06d3014798d86001c324468d497f", "unsupported checksum algorithm 'sha256'" },
		{ "xxh12:99aa06d3014798d86001c324468d497f", "unsupported checksum algorithm" },
		{ ":99aa06d3014798d86001c324468d497f", "unsupported checksum algorithm ''" },
	};
	struct err e;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		err_init(&e);
		assert_int_equal(checksum_parse(good[i], &e), 0);
		assert_false(err_is_set(&e));
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err_init(&e);
		assert_int_equal(checksum_parse(bad[i].s, &e), ERR_CORRUPT);
		assert_int_equal(e.code, ERR_CORRUPT);
		if (!strstr(e.msg, bad[i].msg))
			fail_msg("'%s': message '%s' lacks '%s'", bad[i].s, e.msg, bad[i].msg);
	}
	err_init(&e);
	assert_int_equal(checksum_parse(NULL, &e), ERR_CORRUPT);

	/* What checksum_final writes always parses. */
	{
		char out[CHECKSUM_HEX_MAX];
		checksum_of("x", 1, out);
		err_init(&e);
		assert_int_equal(checksum_parse(out, &e), 0);
		assert_ptr_equal(checksum_hex_part(out), out + strlen(CHECKSUM_ALGO) + 1);
		assert_int_equal(strlen(checksum_hex_part(out)), 32);
	}
	assert_null(checksum_hex_part("nocolon"));
	assert_null(checksum_hex_part(NULL));
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_bench(void **state)
{
	/* 64 MiB so the data comes from memory, not cache, as in a snapshot */
	const size_t n = 64u * 1024 * 1024;
	const size_t piece = 1024u * 1024;
	const int passes = 4;
	unsigned char *p;
	struct checksum c;
	char out[CHECKSUM_HEX_MAX];
	double t0, dt;
	const char *env = getenv("CHECKSUM_BENCH");

	if (!env || strcmp(env, "1") != 0)
		skip();
	p = pattern(n);
	checksum_init(&c);
	t0 = now_s();
	for (int i = 0; i < passes; i++)
		for (size_t off = 0; off < n; off += piece)
			checksum_update(&c, p + off, piece);
	checksum_final(&c, out);
	dt = now_s() - t0;
	checksum_release(&c);
	free(p);
	printf("bench: xxh128 over %d x %zu MiB in 1 MiB pieces: %.0f MB/s\n",
	       passes, n >> 20, (double)n * passes / dt / 1e6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_vectors),
		cmocka_unit_test(test_streaming_equals_one_shot),
		cmocka_unit_test(test_final_twice_and_continue),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_bench),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
