/* Unit tests for lib/zst: round trips from empty to a large generated stream
 * (ZST_TEST_BYTES, default 64 MiB, streamed through a temp file and never
 * held in memory), levels, concatenated frames, truncation, corruption,
 * 1-byte sources, sink chunking and error propagation.
 * ZST_BENCH=1 also prints compression speed on ~100 MB of sysbench-like rows
 * (ZST_BENCH_BYTES to change the size). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cmocka.h>
#include <zstd.h>

#include "checksum.h"
#include "mem.h"
#include "zst.h"

#define MIB (1024u * 1024u)
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- deterministic data ---------------------------------------------- */

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Rows shaped like sysbench's sbtest tables as LOAD DATA text:
 * id \t k \t c (10 groups of 11 digits) \t pad (5 groups) \n.
 * The byte stream depends only on the seed, not on how it is pulled. */
struct gen {
	uint64_t rng;
	uint64_t id;
	char line[256];
	size_t len;
	size_t pos;
};

static void gen_init(struct gen *g, uint64_t seed)
{
	memset(g, 0, sizeof(*g));
	g->rng = seed;
}

static size_t gen_digit_groups(struct gen *g, char *p, int groups)
{
	size_t n = 0;

	for (int i = 0; i < groups; i++) {
		uint64_t r = splitmix64(&g->rng);
		if (i)
			p[n++] = '-';
		for (int d = 0; d < 11; d++) {
			p[n++] = (char)('0' + r % 10);
			r /= 10;
		}
	}
	return n;
}

static void gen_row(struct gen *g)
{
	size_t n;

	g->id++;
	n = (size_t)snprintf(g->line, sizeof(g->line), "%llu\t%llu\t",
			     (unsigned long long)g->id,
			     (unsigned long long)(splitmix64(&g->rng) % 1000000 + 1));
	n += gen_digit_groups(g, g->line + n, 10);
	g->line[n++] = '\t';
	n += gen_digit_groups(g, g->line + n, 5);
	g->line[n++] = '\n';
	g->len = n;
	g->pos = 0;
}

static void gen_fill(struct gen *g, unsigned char *buf, size_t n)
{
	while (n > 0) {
		size_t k;

		if (g->pos == g->len)
			gen_row(g);
		k = g->len - g->pos;
		if (k > n)
			k = n;
		memcpy(buf, g->line + g->pos, k);
		g->pos += k;
		buf += k;
		n -= k;
	}
}

static unsigned char *gen_text(uint64_t seed, size_t n)
{
	struct gen g;
	unsigned char *p = xmalloc(n ? n : 1);

	gen_init(&g, seed);
	gen_fill(&g, p, n);
	return p;
}

static unsigned char *gen_random(uint64_t seed, size_t n)
{
	unsigned char *p = xmalloc(n ? n : 1);

	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(splitmix64(&seed) >> 56);
	return p;
}

static size_t env_size(const char *name, size_t dflt)
{
	const char *v = getenv(name);
	char *end;
	unsigned long long x;

	if (!v || !*v)
		return dflt;
	x = strtoull(v, &end, 10);
	if (*end == 'k' || *end == 'K')
		x <<= 10, end++;
	else if (*end == 'm' || *end == 'M')
		x <<= 20, end++;
	else if (*end == 'g' || *end == 'G')
		x <<= 30, end++;
	if (*end != '\0')
		fail_msg("bad %s='%s'", name, v);
	return (size_t)x;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- sinks and sources ----------------------------------------------- */

#define MAX_CALLS 64

struct mem_sink {
	unsigned char *p;
	size_t len;
	size_t cap;
	size_t calls;
	size_t sizes[MAX_CALLS];  /* first MAX_CALLS call sizes */
	size_t fail_at_call;      /* 1-based call that fails; 0 = never */
};

static int mem_sink_fn(void *ctx, const void *data, size_t n, struct err *e)
{
	struct mem_sink *s = ctx;

	s->calls++;
	if (s->fail_at_call && s->calls == s->fail_at_call)
		return err_set(e, ERR_STORAGE, "unable to write 'test/file.zst': no luck");
	if (s->calls <= MAX_CALLS)
		s->sizes[s->calls - 1] = n;
	if (s->len + n > s->cap) {
		s->cap = (s->len + n) * 2;
		s->p = xrealloc(s->p, s->cap);
	}
	memcpy(s->p + s->len, data, n);
	s->len += n;
	return 0;
}

static int count_sink_fn(void *ctx, const void *data, size_t n, struct err *e)
{
	*(uint64_t *)ctx += n;
	return 0;
}

struct mem_source {
	const unsigned char *p;
	size_t len;
	size_t pos;
	size_t max_per_call;      /* 0 = whatever fits */
	size_t calls;
	size_t fail_at_call;
};

static int mem_source_fn(void *ctx, void *buf, size_t cap, size_t *got,
			 struct err *e)
{
	struct mem_source *s = ctx;
	size_t n = s->len - s->pos;

	s->calls++;
	if (s->fail_at_call && s->calls == s->fail_at_call)
		return err_set(e, ERR_STORAGE, "unable to read 'test/file.zst': no luck");
	if (n > cap)
		n = cap;
	if (s->max_per_call && n > s->max_per_call)
		n = s->max_per_call;
	memcpy(buf, s->p + s->pos, n);
	s->pos += n;
	*got = n;
	return 0;
}

static int file_sink_fn(void *ctx, const void *data, size_t n, struct err *e)
{
	if (fwrite(data, 1, n, ctx) != n)
		return err_set(e, ERR_IO, "unable to write temp file");
	return 0;
}

static int file_source_fn(void *ctx, void *buf, size_t cap, size_t *got,
			  struct err *e)
{
	*got = fread(buf, 1, cap, ctx);
	if (*got == 0 && ferror((FILE *)ctx))
		return err_set(e, ERR_IO, "unable to read temp file");
	return 0;
}

/* ---- helpers --------------------------------------------------------- */

/* Compresses data written in pieces cycling through steps (NULL: one go). */
static void compress_mem(int level, const unsigned char *data, size_t n,
			 const size_t *steps, size_t nsteps, struct mem_sink *s)
{
	struct zst_writer *w;
	struct err e;
	size_t off = 0;
	size_t k = 0;

	err_init(&e);
	assert_int_equal(zst_writer_new(level, mem_sink_fn, s, &w, &e), 0);
	while (off < n) {
		size_t len = steps ? steps[k++ % nsteps] : n;
		if (len > n - off)
			len = n - off;
		assert_int_equal(zst_writer_write(w, data + off, len, &e), 0);
		off += len;
	}
	assert_int_equal(zst_writer_finish(w, &e), 0);
	assert_false(err_is_set(&e));
	assert_int_equal(zst_writer_bytes_in(w), n);
	assert_int_equal(zst_writer_bytes_out(w), s->len);
	zst_writer_free(w);
}

/* Reads the whole stream with read sizes cycling through steps; returns
 * the reader's result and the data read (caller frees). */
static int decompress_mem(struct mem_source *src, const size_t *steps,
			  size_t nsteps, unsigned char **out, size_t *out_len,
			  struct err *e)
{
	struct zst_reader *r;
	size_t cap = 64 * 1024;
	size_t len = 0;
	unsigned char *p = xmalloc(cap);
	size_t k = 0;
	int rc;

	assert_int_equal(zst_reader_new(mem_source_fn, src, &r, e), 0);
	for (;;) {
		size_t want = steps ? steps[k++ % nsteps] : 65536;
		size_t got;

		if (len + want > cap) {
			cap = (len + want) * 2;
			p = xrealloc(p, cap);
		}
		rc = zst_reader_read(r, p + len, want, &got, e);
		if (rc < 0)
			break;
		assert_true(got <= want);
		if (got == 0)
			break;
		len += got;
	}
	if (rc == 0) {
		assert_int_equal(zst_reader_bytes_out(r), len);
		assert_int_equal(zst_reader_bytes_in(r), src->len);
	}
	zst_reader_free(r);
	*out = p;
	*out_len = len;
	return rc;
}

static void roundtrip(int level, const unsigned char *data, size_t n,
		      struct mem_sink *s)
{
	static const size_t wsteps[] = { 1, 7, 65536, 3 * MIB, 13, MIB + 1 };
	static const size_t rsteps[] = { 1, 100, 65536, 2 * MIB + 3, 8191 };
	struct mem_source src;
	unsigned char *back;
	size_t back_len;
	struct err e;

	memset(s, 0, sizeof(*s));
	compress_mem(level, data, n, wsteps, NELEM(wsteps), s);
	/* a standard frame with the content checksum flag (FHD bit 2) */
	assert_true(s->len >= 9);
	assert_int_equal(s->p[0], 0x28);
	assert_int_equal(s->p[3], 0xfd);
	assert_true(s->p[4] & 0x04);

	memset(&src, 0, sizeof(src));
	src.p = s->p;
	src.len = s->len;
	err_init(&e);
	if (decompress_mem(&src, rsteps, NELEM(rsteps), &back, &back_len, &e) != 0)
		fail_msg("read back: %s", e.msg);
	assert_int_equal(back_len, n);
	assert_memory_equal(back, data, n);
	free(back);

	/* zstd's own one-shot decoder agrees (so `zstd -d` reads our files) */
	{
		unsigned char *one = xmalloc(n + 1);
		size_t r = ZSTD_decompress(one, n + 1, s->p, s->len);
		if (ZSTD_isError(r))
			fail_msg("ZSTD_decompress: %s", ZSTD_getErrorName(r));
		assert_int_equal(r, n);
		assert_memory_equal(one, data, n);
		free(one);
	}
}

static void expect_read_fails(const unsigned char *p, size_t len, int code,
			      const char *msg_part)
{
	struct mem_source src = { .p = p, .len = len };
	unsigned char *back;
	size_t back_len;
	struct err e;
	int rc;

	err_init(&e);
	rc = decompress_mem(&src, NULL, 0, &back, &back_len, &e);
	free(back);
	if (rc != code || e.code != code)
		fail_msg("expected %s, got rc %d: '%s'", err_code_name(code), rc, e.msg);
	if (msg_part && !strstr(e.msg, msg_part))
		fail_msg("message '%s' lacks '%s'", e.msg, msg_part);
}

/* ---- tests ----------------------------------------------------------- */

static void test_empty(void **state)
{
	struct mem_sink s;
	struct mem_source src;
	struct zst_reader *r;
	unsigned char buf[16];
	size_t got = 99;
	struct err e;

	roundtrip(3, (const unsigned char *)"", 0, &s);
	assert_int_equal(s.calls, 1); /* the whole frame at finish */

	memset(&src, 0, sizeof(src));
	src.p = s.p;
	src.len = s.len;
	err_init(&e);
	assert_int_equal(zst_reader_new(mem_source_fn, &src, &r, &e), 0);
	assert_int_equal(zst_reader_read(r, buf, sizeof(buf), &got, &e), 0);
	assert_int_equal(got, 0);
	/* end stays the end */
	assert_int_equal(zst_reader_read(r, buf, sizeof(buf), &got, &e), 0);
	assert_int_equal(got, 0);
	zst_reader_free(r);
	free(s.p);
}

static void test_one_byte(void **state)
{
	struct mem_sink s;

	roundtrip(3, (const unsigned char *)"x", 1, &s);
	free(s.p);
}

/* Reads that end exactly at the end of a frame must then see a clean end
 * (zstd must not be asked to start a new frame with no input). */
static void test_exact_reads(void **state)
{
	static const size_t sizes[] = { 1, 100, 65536, 131072 + 5, 3 * MIB };
	struct err e;

	for (size_t i = 0; i < NELEM(sizes); i++) {
		const size_t n = sizes[i];
		unsigned char *p = gen_text(12 + i, n);
		struct mem_sink s;
		struct mem_source src;
		unsigned char *back;
		size_t back_len;

		memset(&s, 0, sizeof(s));
		compress_mem(3, p, n, NULL, 0, &s);
		/* the same frame twice: the boundary falls mid-stream too */
		{
			size_t one = s.len;
			unsigned char *copy = xmalloc(one);

			memcpy(copy, s.p, one);
			err_init(&e);
			assert_int_equal(mem_sink_fn(&s, copy, one, &e), 0);
			free(copy);
		}
		memset(&src, 0, sizeof(src));
		src.p = s.p;
		src.len = s.len;
		if (decompress_mem(&src, &n, 1, &back, &back_len, &e) != 0)
			fail_msg("size %zu: %s", n, e.msg);
		assert_int_equal(back_len, 2 * n);
		assert_memory_equal(back, p, n);
		assert_memory_equal(back + n, p, n);
		free(back);
		free(s.p);
		free(p);
	}
}

static void test_random_1mib(void **state)
{
	const size_t n = MIB;
	unsigned char *p = gen_random(42, n);
	struct mem_sink s;

	roundtrip(3, p, n, &s);
	/* incompressible: stored blocks, small overhead */
	assert_true(s.len >= n);
	assert_true(s.len < n + n / 100);
	free(s.p);
	free(p);
}

static void test_levels(void **state)
{
	static const int levels[] = { 1, 3, 19 };
	const size_t n = 512 * 1024;
	unsigned char *p = gen_text(7, n);
	size_t sizes[NELEM(levels)];

	for (size_t i = 0; i < NELEM(levels); i++) {
		struct mem_sink s;
		roundtrip(levels[i], p, n, &s);
		sizes[i] = s.len;
		free(s.p);
	}
	/* the level is really applied */
	assert_true(sizes[2] < sizes[0]);
	assert_true(sizes[0] < n);
	free(p);
}

static void test_bad_level(void **state)
{
	struct zst_writer *w = (void *)1;
	struct mem_sink s = { 0 };
	struct err e;

	err_init(&e);
	assert_int_equal(zst_writer_new(0, mem_sink_fn, &s, &w, &e), ERR_CONFIG);
	assert_null(w);
	assert_non_null(strstr(e.msg, "zstd level 0 out of range 1..19"));
	err_init(&e);
	assert_int_equal(zst_writer_new(20, mem_sink_fn, &s, &w, &e), ERR_CONFIG);
	zst_writer_free(NULL);
	zst_reader_free(NULL);
}

/* Text, then an empty frame, a skippable frame, more text: one stream. */
static void test_concatenated_frames(void **state)
{
	const size_t na = 300000, nb = 123457;
	unsigned char *a = gen_text(1, na);
	unsigned char *b = gen_text(2, nb);
	static const unsigned char skippable[] = {
		0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 'x', 'y', 'z'
	};
	struct mem_sink s;
	struct mem_sink s2;
	struct mem_source src;
	unsigned char *back;
	size_t back_len;
	struct err e;

	memset(&s, 0, sizeof(s));
	compress_mem(3, a, na, NULL, 0, &s);
	memset(&s2, 0, sizeof(s2));
	compress_mem(1, (const unsigned char *)"", 0, NULL, 0, &s2);
	err_init(&e);
	assert_int_equal(mem_sink_fn(&s, s2.p, s2.len, &e), 0);
	assert_int_equal(mem_sink_fn(&s, skippable, sizeof(skippable), &e), 0);
	free(s2.p);
	memset(&s2, 0, sizeof(s2));
	compress_mem(19, b, nb, NULL, 0, &s2);
	assert_int_equal(mem_sink_fn(&s, s2.p, s2.len, &e), 0);
	free(s2.p);

	memset(&src, 0, sizeof(src));
	src.p = s.p;
	src.len = s.len;
	assert_int_equal(decompress_mem(&src, NULL, 0, &back, &back_len, &e), 0);
	assert_int_equal(back_len, na + nb);
	assert_memory_equal(back, a, na);
	assert_memory_equal(back + na, b, nb);
	free(back);

	/* and the same through a 1-byte source */
	memset(&src, 0, sizeof(src));
	src.p = s.p;
	src.len = s.len;
	src.max_per_call = 1;
	assert_int_equal(decompress_mem(&src, NULL, 0, &back, &back_len, &e), 0);
	assert_int_equal(back_len, na + nb);
	assert_memory_equal(back + na, b, nb);
	free(back);

	/* cut inside the second frame */
	expect_read_fails(s.p, s.len - 10, ERR_CORRUPT, "truncated zstd stream");
	free(s.p);
	free(a);
	free(b);
}

static void test_truncated(void **state)
{
	const size_t n = 256 * 1024;
	unsigned char *p = gen_text(3, n);
	struct mem_sink s;
	size_t cuts[6];

	memset(&s, 0, sizeof(s));
	compress_mem(3, p, n, NULL, 0, &s);
	cuts[0] = s.len - 1;   /* inside the content checksum */
	cuts[1] = s.len - 4;   /* checksum gone entirely */
	cuts[2] = s.len - 5;   /* inside the last block */
	cuts[3] = s.len / 2;
	cuts[4] = 5;           /* inside the frame header */
	cuts[5] = 3;           /* inside the magic number */
	for (size_t i = 0; i < NELEM(cuts); i++)
		expect_read_fails(s.p, cuts[i], ERR_CORRUPT, "truncated zstd stream");
	expect_read_fails(s.p, 0, ERR_CORRUPT, "empty zstd stream");
	free(s.p);
	free(p);
}

static void test_flipped_byte(void **state)
{
	const size_t n = MIB;
	unsigned char *p = gen_text(4, n);
	struct mem_sink s;
	size_t at[4];

	memset(&s, 0, sizeof(s));
	compress_mem(3, p, n, NULL, 0, &s);
	at[0] = s.len / 2;
	at[1] = s.len / 3;
	at[2] = s.len * 2 / 3;
	at[3] = s.len - 2;     /* in the stored checksum itself */
	for (size_t i = 0; i < NELEM(at); i++) {
		struct mem_source src = { .p = s.p, .len = s.len };
		struct zst_reader *r;
		unsigned char buf[65536];
		size_t got;
		struct err e;
		int rc;

		s.p[at[i]] ^= 0x01;
		err_init(&e);
		assert_int_equal(zst_reader_new(mem_source_fn, &src, &r, &e), 0);
		do {
			rc = zst_reader_read(r, buf, sizeof(buf), &got, &e);
		} while (rc == 0 && got > 0);
		if (rc != ERR_VERIFY && rc != ERR_CORRUPT)
			fail_msg("flip at %zu of %zu not detected (rc %d)", at[i], s.len, rc);
		if (i == NELEM(at) - 1) {
			assert_int_equal(rc, ERR_VERIFY);
			assert_non_null(strstr(e.msg, "zstd content checksum mismatch"));
		}
		/* sticky */
		assert_int_equal(zst_reader_read(r, buf, sizeof(buf), &got, NULL), rc);
		assert_int_equal(got, 0);
		zst_reader_free(r);
		s.p[at[i]] ^= 0x01;
	}
	free(s.p);
	free(p);
}

static void test_not_zstd(void **state)
{
	const unsigned char junk[] = "id\tk\tc\tpad\n1\t2\t3\t4\n";

	expect_read_fails(junk, sizeof(junk) - 1, ERR_CORRUPT, "invalid zstd data");
}

static void test_one_byte_source(void **state)
{
	const size_t n = 300000;
	unsigned char *p = gen_text(5, n);
	static const size_t tiny[] = { 1 };
	struct mem_sink s;
	struct mem_source src;
	unsigned char *back;
	size_t back_len;
	struct err e;

	memset(&s, 0, sizeof(s));
	compress_mem(3, p, n, NULL, 0, &s);

	memset(&src, 0, sizeof(src));
	src.p = s.p;
	src.len = s.len;
	src.max_per_call = 1;
	err_init(&e);
	assert_int_equal(decompress_mem(&src, NULL, 0, &back, &back_len, &e), 0);
	assert_int_equal(back_len, n);
	assert_memory_equal(back, p, n);
	assert_true(src.calls >= s.len);
	free(back);

	/* 1 byte in, 1 byte out */
	memset(&src, 0, sizeof(src));
	src.p = s.p;
	src.len = s.len;
	src.max_per_call = 1;
	assert_int_equal(decompress_mem(&src, tiny, 1, &back, &back_len, &e), 0);
	assert_int_equal(back_len, n);
	assert_memory_equal(back, p, n);
	free(back);
	free(s.p);
	free(p);
}

/* The sink sees ZST_IO_CHUNK writes, and only the last one is shorter. */
static void test_sink_chunks(void **state)
{
	const size_t n = 3 * MIB + MIB / 2;
	unsigned char *p = gen_random(6, n);
	struct mem_sink s;

	memset(&s, 0, sizeof(s));
	compress_mem(1, p, n, NULL, 0, &s);
	assert_true(s.calls >= 4);
	for (size_t i = 0; i + 1 < s.calls; i++)
		assert_int_equal(s.sizes[i], ZST_IO_CHUNK);
	assert_true(s.sizes[s.calls - 1] > 0);
	assert_true(s.sizes[s.calls - 1] <= ZST_IO_CHUNK);
	free(s.p);
	free(p);
}

static void test_sink_error(void **state)
{
	const size_t n = 3 * MIB;
	unsigned char *p = gen_random(8, n);
	struct mem_sink s;
	struct zst_writer *w;
	struct err e;
	int rc = 0;

	memset(&s, 0, sizeof(s));
	s.fail_at_call = 2;
	err_init(&e);
	assert_int_equal(zst_writer_new(3, mem_sink_fn, &s, &w, &e), 0);
	for (size_t off = 0; off < n && rc == 0; off += 65536)
		rc = zst_writer_write(w, p + off, 65536, &e);
	assert_int_equal(rc, ERR_STORAGE);
	assert_string_equal(e.msg, "unable to write 'test/file.zst': no luck");
	/* sticky, and the first message stays */
	assert_int_equal(zst_writer_write(w, p, 1, &e), ERR_STORAGE);
	assert_int_equal(zst_writer_finish(w, &e), ERR_STORAGE);
	assert_string_equal(e.msg, "unable to write 'test/file.zst': no luck");
	assert_int_equal(zst_writer_bytes_out(w), ZST_IO_CHUNK);
	zst_writer_free(w);
	free(s.p);

	/* failure in finish */
	memset(&s, 0, sizeof(s));
	s.fail_at_call = 1;
	err_init(&e);
	assert_int_equal(zst_writer_new(3, mem_sink_fn, &s, &w, &e), 0);
	assert_int_equal(zst_writer_write(w, "abc", 3, &e), 0);
	assert_int_equal(zst_writer_finish(w, &e), ERR_STORAGE);
	zst_writer_free(w);
	free(s.p);

	/* use after finish */
	memset(&s, 0, sizeof(s));
	err_init(&e);
	assert_int_equal(zst_writer_new(3, mem_sink_fn, &s, &w, &e), 0);
	assert_int_equal(zst_writer_finish(w, &e), 0);
	assert_int_equal(zst_writer_write(w, "abc", 3, &e), ERR_INTERNAL);
	zst_writer_free(w);
	free(s.p);
	free(p);
}

static void test_source_error(void **state)
{
	const size_t n = 3 * MIB;
	unsigned char *p = gen_random(9, n);
	struct mem_sink s;
	struct mem_source src;
	unsigned char *back;
	size_t back_len;
	struct zst_reader *r;
	unsigned char buf[8];
	size_t got;
	struct err e;

	memset(&s, 0, sizeof(s));
	compress_mem(3, p, n, NULL, 0, &s);
	memset(&src, 0, sizeof(src));
	src.p = s.p;
	src.len = s.len;
	src.fail_at_call = 3;
	err_init(&e);
	assert_int_equal(decompress_mem(&src, NULL, 0, &back, &back_len, &e), ERR_STORAGE);
	assert_string_equal(e.msg, "unable to read 'test/file.zst': no luck");
	assert_true(back_len >= ZST_IO_CHUNK);
	free(back);

	/* cap 0 is a caller bug, not an end of stream */
	memset(&src, 0, sizeof(src));
	src.p = s.p;
	src.len = s.len;
	err_init(&e);
	assert_int_equal(zst_reader_new(mem_source_fn, &src, &r, &e), 0);
	assert_int_equal(zst_reader_read(r, buf, 0, &got, &e), ERR_INTERNAL);
	zst_reader_free(r);
	free(s.p);
	free(p);
}

static long max_rss_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* ZST_TEST_BYTES of generated rows through a temp file, written and read in
 * uneven sizes, regenerated on the read side and compared byte by byte and
 * by checksum. Memory use does not grow with the size. */
static void test_big_stream(void **state)
{
	static const size_t wsteps[] = { 1, 7, 65536, 3 * MIB, 13, MIB + 1, 4095, 256 * 1024 };
	static const size_t rsteps[] = { 1, 100, 65536, 2 * MIB + 3, 8191, 3 * MIB };
	const size_t total = env_size("ZST_TEST_BYTES", 64 * MIB);
	const int level = (int)env_size("ZST_TEST_LEVEL", 3);
	const uint64_t seed = 20240601;
	size_t bufsz = 3 * MIB;
	unsigned char *buf = xmalloc(bufsz);
	unsigned char *want = xmalloc(bufsz);
	char sum_w[CHECKSUM_HEX_MAX], sum_r[CHECKSUM_HEX_MAX];
	struct checksum cw, cr;
	struct zst_writer *w;
	struct zst_reader *r;
	struct gen g;
	struct err e;
	uint64_t stored;
	size_t off, k;
	double t0, t_write, t_read;
	FILE *f = tmpfile();

	assert_non_null(f);
	err_init(&e);

	t0 = now_s();
	gen_init(&g, seed);
	checksum_init(&cw);
	assert_int_equal(zst_writer_new(level, file_sink_fn, f, &w, &e), 0);
	for (off = 0, k = 0; off < total; ) {
		size_t len = wsteps[k++ % NELEM(wsteps)];
		if (len > total - off)
			len = total - off;
		gen_fill(&g, buf, len);
		checksum_update(&cw, buf, len);
		if (zst_writer_write(w, buf, len, &e) != 0)
			fail_msg("write at %zu: %s", off, e.msg);
		off += len;
	}
	assert_int_equal(zst_writer_finish(w, &e), 0);
	checksum_final(&cw, sum_w);
	checksum_release(&cw);
	assert_int_equal(zst_writer_bytes_in(w), total);
	stored = zst_writer_bytes_out(w);
	zst_writer_free(w);
	assert_int_equal(fflush(f), 0);
	assert_int_equal((uint64_t)ftello(f), stored);
	t_write = now_s() - t0;

	rewind(f);
	t0 = now_s();
	gen_init(&g, seed);
	checksum_init(&cr);
	assert_int_equal(zst_reader_new(file_source_fn, f, &r, &e), 0);
	for (off = 0, k = 0;; ) {
		size_t cap = rsteps[k++ % NELEM(rsteps)];
		size_t got;

		if (zst_reader_read(r, buf, cap, &got, &e) != 0)
			fail_msg("read at %zu: %s", off, e.msg);
		if (got == 0)
			break;
		assert_true(off + got <= total);
		gen_fill(&g, want, got);
		if (memcmp(buf, want, got) != 0)
			fail_msg("data differs within [%zu, %zu)", off, off + got);
		checksum_update(&cr, buf, got);
		off += got;
	}
	assert_int_equal(off, total);
	assert_int_equal(zst_reader_bytes_in(r), stored);
	zst_reader_free(r);
	checksum_final(&cr, sum_r);
	checksum_release(&cr);
	assert_string_equal(sum_r, sum_w);
	t_read = now_s() - t0;
	fclose(f);
	free(buf);
	free(want);

	print_message("big stream: %zu MiB level %d -> %.1f MiB stored (ratio %.2f), "
		      "write %.2fs, read %.2fs, max RSS %ld MiB, %s\n",
		      total >> 20, level, (double)stored / MIB,
		      (double)total / (double)stored, t_write, t_read,
		      max_rss_kib() / 1024, sum_w);
	/* streamed, not buffered: a multi-GB run stays small */
	if (total >= 1024u * MIB)
		assert_true(max_rss_kib() < 512L * 1024);
}

/* Not an assertion: prints compression and decompression speed on
 * sysbench-like text, generated up front so generation is not timed. */
static void test_bench(void **state)
{
	static const int levels[] = { 1, 3 };
	const char *env = getenv("ZST_BENCH");
	const size_t n = env_size("ZST_BENCH_BYTES", 100u * 1000 * 1000);
	const size_t piece = 64 * 1024;  /* about one encoder row batch */
	unsigned char *text;
	unsigned char *back;

	if (!env || strcmp(env, "1") != 0)
		skip();
	text = gen_text(11, n);
	back = xmalloc(256 * 1024);
	for (size_t i = 0; i < NELEM(levels); i++) {
		struct mem_sink s;
		struct mem_source src;
		struct zst_writer *w;
		struct zst_reader *r;
		struct err e;
		uint64_t discard = 0;
		double t0, tc, td, tcount;
		size_t got, total = 0;

		/* counting sink: pure compression speed */
		err_init(&e);
		assert_int_equal(zst_writer_new(levels[i], count_sink_fn, &discard, &w, &e), 0);
		t0 = now_s();
		for (size_t off = 0; off < n; off += piece)
			assert_int_equal(zst_writer_write(w, text + off,
							  n - off < piece ? n - off : piece, &e), 0);
		assert_int_equal(zst_writer_finish(w, &e), 0);
		tcount = now_s() - t0;
		zst_writer_free(w);

		/* keep the output for the decompression run */
		memset(&s, 0, sizeof(s));
		t0 = now_s();
		compress_mem(levels[i], text, n, &piece, 1, &s);
		tc = now_s() - t0;

		memset(&src, 0, sizeof(src));
		src.p = s.p;
		src.len = s.len;
		assert_int_equal(zst_reader_new(mem_source_fn, &src, &r, &e), 0);
		t0 = now_s();
		do {
			assert_int_equal(zst_reader_read(r, back, 256 * 1024, &got, &e), 0);
			total += got;
		} while (got > 0);
		td = now_s() - t0;
		zst_reader_free(r);
		assert_int_equal(total, n);

		printf("bench: level %d: %.1f MB -> %.1f MB (ratio %.2f), "
		       "compress %.0f MB/s (%.0f MB/s into memory), decompress %.0f MB/s\n",
		       levels[i], n / 1e6, s.len / 1e6, (double)n / (double)s.len,
		       n / tcount / 1e6, n / tc / 1e6, n / td / 1e6);
		fflush(stdout);
		free(s.p);
	}
	free(back);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_one_byte),
		cmocka_unit_test(test_exact_reads),
		cmocka_unit_test(test_random_1mib),
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_bad_level),
		cmocka_unit_test(test_concatenated_frames),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_flipped_byte),
		cmocka_unit_test(test_not_zstd),
		cmocka_unit_test(test_one_byte_source),
		cmocka_unit_test(test_sink_chunks),
		cmocka_unit_test(test_sink_error),
		cmocka_unit_test(test_source_error),
		cmocka_unit_test(test_big_stream),
		cmocka_unit_test(test_bench),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
