/* Unit tests for lib/storage: one suite run against every backend named in
 * STORAGE_TEST_URLS (space-separated local paths and nfs:// URLs); without
 * it a local temp folder plus $NFS_URL, failing when NFS_URL is missing.
 * `test_storage fault` runs only the NFS fault test: it stops the ganesha
 * whose pid file is $NFS_TEST_PIDFILE, so the runner runs it last and
 * restarts ganesha afterwards. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "mem.h"
/* For storage_set_error: the one error mapping all backends share. */
#define STORAGE_BACKEND
#include "storage.h"

struct fx {
	const char *url;
	struct storage *s;
	char run[96];           /* this run's folder below the root */
};

static struct fx g_fx;

/* Checks a call that must succeed, showing its message when it does not. */
#define OK(expr) do { \
	err_init(&e); \
	int rc_ = (expr); \
	if (rc_ != 0) \
		fail_msg("%s failed (%d): %s", #expr, rc_, e.msg); \
} while (0)

/* Checks a call that must fail with sys_errno want (0: any). */
#define FAILS(expr, want) do { \
	err_init(&e); \
	int rc_ = (expr); \
	if (rc_ == 0) \
		fail_msg("%s succeeded, expected a failure", #expr); \
	assert_true(err_is_set(&e)); \
	assert_null(strchr(e.msg, '\n')); \
	if ((want) != 0 && e.sys_errno != (want)) \
		fail_msg("%s: errno %d, expected %d: %s", #expr, e.sys_errno, \
			 (want), e.msg); \
} while (0)

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* run/<rel> in a static rotation of buffers, so a few can be alive. */
static const char *P(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *P(const char *fmt, ...)
{
	static char bufs[8][STORAGE_PATH_MAX + 1];
	static int next;
	char rel[512];
	char *out = bufs[next++ % 8];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	snprintf(out, STORAGE_PATH_MAX + 1, "%s/%s", g_fx.run, rel);
	return out;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static void fill_random(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		rng_state ^= rng_state << 13;
		rng_state ^= rng_state >> 7;
		rng_state ^= rng_state << 17;
		p[i] = (unsigned char)(rng_state >> 24);
	}
}

static void put_file(struct storage *s, const char *rel, const void *data,
		     size_t n)
{
	struct storage_file *f;
	struct err e;

	OK(storage_create(s, rel, false, &f, &e));
	OK(storage_write(f, data, n, &e));
	OK(storage_file_close(f, &e));
}

/* Writes data in pieces of `chunk` bytes, reads it back in pieces of
 * `rchunk` bytes and compares. */
static void roundtrip(struct storage *s, const char *rel,
		      const unsigned char *data, size_t n, size_t chunk,
		      size_t rchunk)
{
	struct storage_file *f;
	struct storage_stat st;
	unsigned char *back;
	size_t got, total = 0;
	struct err e;

	OK(storage_create(s, rel, true, &f, &e));
	for (size_t off = 0; off < n; off += chunk)
		OK(storage_write(f, data + off, n - off < chunk ? n - off : chunk, &e));
	OK(storage_fsync(f, &e));
	OK(storage_file_close(f, &e));

	OK(storage_stat(s, rel, &st, &e));
	assert_true(st.exists);
	assert_false(st.is_dir);
	assert_int_equal(st.size, n);

	back = xmalloc(n + rchunk + 1);
	OK(storage_open_read(s, rel, &f, &e));
	for (;;) {
		OK(storage_read(f, back + total, rchunk, &got, &e));
		total += got;
		if (got < rchunk)
			break;
		assert_true(total <= n);
	}
	/* At EOF a further read gives 0. */
	OK(storage_read(f, back + total, rchunk, &got, &e));
	assert_int_equal(got, 0);
	OK(storage_file_close(f, &e));
	assert_int_equal(total, n);
	if (n)
		assert_memory_equal(back, data, n);
	free(back);
}

/* ---- the suite ---- */

static void test_path_check(void **state)
{
	struct fx *fx = *state;
	static const char *bad[] = {
		"../x", "/abs", "a//b", "a/../b", "", "a/", "./a", "a/.", "..",
		"a\nb", "a\tb",
	};
	static const char *good[] = {
		"a", "a/b.c", "shop/20260101T030000Z-1/t1.tsv.zst", "..a", "a..",
		".hidden", "a/.b",
	};
	char longp[STORAGE_PATH_MAX + 2], longc[STORAGE_NAME_MAX + 2];
	struct storage_file *f;
	struct err e;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		FAILS(storage_path_check(bad[i], &e), EINVAL);
		assert_int_equal(e.code, ERR_STORAGE);
		assert_non_null(strstr(e.msg, "invalid repository path"));
	}
	FAILS(storage_path_check(NULL, &e), EINVAL);
	FAILS(storage_path_check_len("a\0b", 3, &e), EINVAL);
	assert_non_null(strstr(e.msg, "NUL"));
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		OK(storage_path_check(good[i], &e));
	OK(storage_path_check_len("a/b", 3, &e));

	memset(longp, 'a', sizeof(longp));
	for (size_t i = 100; i < sizeof(longp) - 1; i += 100)
		longp[i] = '/';
	longp[STORAGE_PATH_MAX] = '\0';
	OK(storage_path_check(longp, &e));
	longp[STORAGE_PATH_MAX] = 'a';
	longp[STORAGE_PATH_MAX + 1] = '\0';
	FAILS(storage_path_check(longp, &e), ENAMETOOLONG);
	memset(longc, 'b', sizeof(longc));
	longc[STORAGE_NAME_MAX] = '\0';
	OK(storage_path_check(longc, &e));
	longc[STORAGE_NAME_MAX] = 'b';
	longc[STORAGE_NAME_MAX + 1] = '\0';
	FAILS(storage_path_check(longc, &e), ENAMETOOLONG);

	/* Every call checks its paths before the backend sees them. */
	FAILS(storage_create(fx->s, "../escape", false, &f, &e), EINVAL);
	assert_null(f);
	FAILS(storage_open_read(fx->s, "/etc/passwd", &f, &e), EINVAL);
	FAILS(storage_mkdir_p(fx->s, "a/../../b", &e), EINVAL);
	FAILS(storage_rename(fx->s, P("x"), "../y", &e), EINVAL);
	FAILS(storage_remove(fx->s, "a//b", &e), EINVAL);
	FAILS(storage_remove_tree(fx->s, "", &e), EINVAL);
	FAILS(storage_write_atomic(fx->s, "/m.json", "x", 1, &e), EINVAL);
}

static void test_error_mapping(void **state)
{
	struct err e;

	(void)state;
	err_init(&e);
	assert_int_equal(storage_set_error(&e, ENOSPC, NULL,
					   "unable to write '%s' on '%s'",
					   "shop/1/t1.tsv.zst", "nfs://127.0.0.1/export"),
			 ERR_NO_SPACE);
	assert_string_equal(e.msg, "unable to write 'shop/1/t1.tsv.zst' on "
			    "'nfs://127.0.0.1/export': No space left on device");
	assert_int_equal(e.sys_errno, ENOSPC);
	err_init(&e);
	assert_int_equal(storage_set_error(&e, EDQUOT, NULL, "x"), ERR_NO_SPACE);
	err_init(&e);
	assert_int_equal(storage_set_error(&e, EIO, "line one\nline two", "x"),
			 ERR_STORAGE);
	assert_string_equal(e.msg, "x: Input/output error (line one?line two)");
	/* The first error stays. */
	assert_int_equal(storage_set_error(&e, ENOSPC, NULL, "y"), ERR_STORAGE);
	assert_int_equal(e.sys_errno, EIO);
	assert_int_equal(storage_set_error(NULL, ENOSPC, NULL, "z"), ERR_NO_SPACE);
}

static void test_mkdir_p(void **state)
{
	struct fx *fx = *state;
	struct storage_stat st;
	struct err e;

	OK(storage_mkdir_p(fx->s, P("mk/a/b/c"), &e));
	OK(storage_stat(fx->s, P("mk/a/b/c"), &st, &e));
	assert_true(st.exists);
	assert_true(st.is_dir);
	OK(storage_mkdir_p(fx->s, P("mk/a/b/c"), &e));     /* idempotent */
	OK(storage_mkdir_p(fx->s, P("mk/a/b2"), &e));
	OK(storage_mkdir_p(fx->s, "", &e));                 /* the root */
	put_file(fx->s, P("mk/file"), "x", 1);
	FAILS(storage_mkdir_p(fx->s, P("mk/file/sub"), &e), ENOTDIR);
	assert_int_equal(e.code, ERR_STORAGE);
}

static void test_roundtrip(void **state)
{
	struct fx *fx = *state;
	size_t wmax = storage_io_size(fx->s);
	size_t big = 5u * 1024 * 1024;
	unsigned char *data = xmalloc(big + wmax + 1);
	struct err e;

	assert_true(wmax >= 4096);
	fill_random(data, big + wmax + 1);
	OK(storage_mkdir_p(fx->s, P("rt"), &e));
	roundtrip(fx->s, P("rt/zero"), data, 0, 1, 4096);
	roundtrip(fx->s, P("rt/one"), data, 1, 1, 4096);
	roundtrip(fx->s, P("rt/wmax"), data, wmax, wmax, wmax);
	roundtrip(fx->s, P("rt/wmax1"), data, wmax + 1, wmax + 1, 1000);
	roundtrip(fx->s, P("rt/5mib"), data, big, big, big + 1);
	/* Odd pieces cross every buffer boundary. */
	roundtrip(fx->s, P("rt/5mib-odd"), data, big, 7777, 65537);
	roundtrip(fx->s, P("rt/5mib-mixed"), data, big, wmax - 1, wmax + 3);
	free(data);
}

static void test_exclusive_and_truncate(void **state)
{
	struct fx *fx = *state;
	struct storage_file *f;
	struct storage_stat st;
	struct err e;

	OK(storage_mkdir_p(fx->s, P("ex"), &e));
	OK(storage_create(fx->s, P("ex/f"), true, &f, &e));
	OK(storage_write(f, "0123456789", 10, &e));
	OK(storage_file_close(f, &e));

	FAILS(storage_create(fx->s, P("ex/f"), true, &f, &e), EEXIST);
	assert_null(f);
	assert_int_equal(e.code, ERR_STORAGE);
	assert_non_null(strstr(e.msg, "unable to create '"));
	assert_non_null(strstr(e.msg, storage_url_redacted(fx->s)));
	OK(storage_stat(fx->s, P("ex/f"), &st, &e));
	assert_int_equal(st.size, 10);          /* untouched */

	OK(storage_create(fx->s, P("ex/f"), false, &f, &e));
	OK(storage_file_close(f, &e));
	OK(storage_stat(fx->s, P("ex/f"), &st, &e));
	assert_int_equal(st.size, 0);           /* truncated */

	/* A missing parent folder is an error, not created implicitly. */
	FAILS(storage_create(fx->s, P("ex/nodir/f"), false, &f, &e), ENOENT);
}

static void test_rename_over(void **state)
{
	struct fx *fx = *state;
	struct storage_stat st;
	char *data;
	size_t n;
	struct err e;

	OK(storage_mkdir_p(fx->s, P("rn"), &e));
	put_file(fx->s, P("rn/a"), "old", 3);
	put_file(fx->s, P("rn/b"), "newer", 5);
	OK(storage_rename(fx->s, P("rn/b"), P("rn/a"), &e));
	OK(storage_read_all(fx->s, P("rn/a"), 100, &data, &n, &e));
	assert_int_equal(n, 5);
	assert_string_equal(data, "newer");
	free(data);
	OK(storage_stat(fx->s, P("rn/b"), &st, &e));
	assert_false(st.exists);
	FAILS(storage_rename(fx->s, P("rn/missing"), P("rn/c"), &e), ENOENT);
	assert_non_null(strstr(e.msg, "unable to rename '"));
}

static void test_list_sorted(void **state)
{
	struct fx *fx = *state;
	static const char *want[] = { "A", "a", "b", "c.tsv", "d" };
	char **names;
	size_t n;
	bool found = false;
	struct err e;

	OK(storage_mkdir_p(fx->s, P("ls/d"), &e));
	put_file(fx->s, P("ls/c.tsv"), "", 0);
	put_file(fx->s, P("ls/a"), "", 0);
	put_file(fx->s, P("ls/b"), "", 0);
	put_file(fx->s, P("ls/A"), "", 0);
	OK(storage_list(fx->s, P("ls"), &names, &n, &e));
	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(names[i], want[i]);
	storage_list_free(names, n);

	OK(storage_list(fx->s, P("ls/d"), &names, &n, &e));
	assert_int_equal(n, 0);
	storage_list_free(names, n);

	/* The root is "" and holds this run's folder. */
	OK(storage_list(fx->s, "", &names, &n, &e));
	for (size_t i = 0; i < n; i++) {
		assert_string_not_equal(names[i], ".");
		assert_string_not_equal(names[i], "..");
		if (strcmp(names[i], fx->run) == 0)
			found = true;
		if (i > 0)
			assert_true(strcmp(names[i - 1], names[i]) < 0);
	}
	assert_true(found);
	storage_list_free(names, n);

	FAILS(storage_list(fx->s, P("ls/missing"), &names, &n, &e), ENOENT);
	assert_null(names);
	assert_int_equal(n, 0);
	assert_non_null(strstr(e.msg, "unable to list '"));
}

static void test_stat(void **state)
{
	struct fx *fx = *state;
	struct storage_stat st;
	time_t t = time(NULL);
	struct err e;

	OK(storage_stat(fx->s, P("st-missing"), &st, &e));
	assert_false(st.exists);
	assert_false(err_is_set(&e));
	OK(storage_stat(fx->s, P("st-missing/deeper/x"), &st, &e));
	assert_false(st.exists);

	put_file(fx->s, P("st-file"), "12345", 5);
	OK(storage_stat(fx->s, P("st-file"), &st, &e));
	assert_true(st.exists);
	assert_false(st.is_dir);
	assert_int_equal(st.size, 5);
	assert_true(st.mtime > t - 3600 && st.mtime < t + 3600);
	/* Below a file is missing, not an error. */
	OK(storage_stat(fx->s, P("st-file/x"), &st, &e));
	assert_false(st.exists);

	OK(storage_stat(fx->s, "", &st, &e));
	assert_true(st.exists);
	assert_true(st.is_dir);
}

static void test_remove_tree(void **state)
{
	struct fx *fx = *state;
	struct storage_stat st;
	struct err e;

	OK(storage_mkdir_p(fx->s, P("rt2/a/b/c"), &e));
	OK(storage_mkdir_p(fx->s, P("rt2/a/empty"), &e));
	put_file(fx->s, P("rt2/a/f1"), "1", 1);
	put_file(fx->s, P("rt2/a/b/f2"), "22", 2);
	put_file(fx->s, P("rt2/a/b/c/f3"), "333", 3);
	put_file(fx->s, P("rt2/keep"), "k", 1);
	OK(storage_remove_tree(fx->s, P("rt2/a"), &e));
	OK(storage_stat(fx->s, P("rt2/a"), &st, &e));
	assert_false(st.exists);
	OK(storage_stat(fx->s, P("rt2/keep"), &st, &e));
	assert_true(st.exists);
	OK(storage_remove_tree(fx->s, P("rt2/a"), &e));      /* missing: fine */
	FAILS(storage_remove_tree(fx->s, P("rt2/keep"), &e), ENOTDIR);
}

static void test_remove_rmdir(void **state)
{
	struct fx *fx = *state;
	struct storage_stat st;
	struct err e;

	OK(storage_mkdir_p(fx->s, P("rm/d"), &e));
	put_file(fx->s, P("rm/d/f"), "x", 1);
	FAILS(storage_rmdir(fx->s, P("rm/d"), &e), 0);        /* not empty */
	OK(storage_remove(fx->s, P("rm/d/f"), &e));
	FAILS(storage_remove(fx->s, P("rm/d/f"), &e), ENOENT);
	assert_non_null(strstr(e.msg, "unable to remove '"));
	OK(storage_rmdir(fx->s, P("rm/d"), &e));
	OK(storage_stat(fx->s, P("rm/d"), &st, &e));
	assert_false(st.exists);
}

static void test_write_atomic(void **state)
{
	struct fx *fx = *state;
	static const char doc1[] = "{\"version\":1}\n";
	static const char doc2[] = "{\"version\":2,\"files\":[]}\n";
	char **names;
	size_t n;
	char *data;
	struct err e;

	OK(storage_mkdir_p(fx->s, P("wa"), &e));
	OK(storage_write_atomic(fx->s, P("wa/manifest.json"), doc1,
				sizeof(doc1) - 1, &e));
	OK(storage_read_all(fx->s, P("wa/manifest.json"), 4096, &data, &n, &e));
	assert_int_equal(n, sizeof(doc1) - 1);
	assert_string_equal(data, doc1);
	free(data);
	OK(storage_write_atomic(fx->s, P("wa/manifest.json"), doc2,
				sizeof(doc2) - 1, &e));
	OK(storage_read_all(fx->s, P("wa/manifest.json"), 4096, &data, &n, &e));
	assert_string_equal(data, doc2);
	free(data);
	OK(storage_list(fx->s, P("wa"), &names, &n, &e));
	assert_int_equal(n, 1);
	assert_string_equal(names[0], "manifest.json");
	storage_list_free(names, n);
	/* At the root too (its folder is the root: fsync_dir("")). */
	OK(storage_write_atomic(fx->s, P("wa-root.json"), "{}", 2, &e));
	OK(storage_fsync_dir(fx->s, "", &e));
	OK(storage_fsync_dir(fx->s, P("wa"), &e));
	FAILS(storage_write_atomic(fx->s, P("wa/nodir/m.json"), "{}", 2, &e),
	      ENOENT);
}

static void test_read_all_cap(void **state)
{
	struct fx *fx = *state;
	unsigned char blob[100000];
	char *data;
	size_t n;
	struct err e;

	fill_random(blob, sizeof(blob));
	OK(storage_mkdir_p(fx->s, P("ra"), &e));
	put_file(fx->s, P("ra/100"), blob, 100);
	put_file(fx->s, P("ra/big"), blob, sizeof(blob));
	put_file(fx->s, P("ra/empty"), "", 0);

	OK(storage_read_all(fx->s, P("ra/100"), 100, &data, &n, &e));
	assert_int_equal(n, 100);
	assert_memory_equal(data, blob, 100);
	assert_int_equal(data[100], '\0');
	free(data);
	FAILS(storage_read_all(fx->s, P("ra/100"), 99, &data, &n, &e), EFBIG);
	assert_null(data);
	assert_non_null(strstr(e.msg, "larger than 99 bytes"));
	OK(storage_read_all(fx->s, P("ra/big"), 1 << 20, &data, &n, &e));
	assert_int_equal(n, sizeof(blob));
	assert_memory_equal(data, blob, sizeof(blob));
	free(data);
	FAILS(storage_read_all(fx->s, P("ra/big"), sizeof(blob) - 1, &data, &n, &e),
	      EFBIG);
	OK(storage_read_all(fx->s, P("ra/empty"), 0, &data, &n, &e));
	assert_int_equal(n, 0);
	assert_string_equal(data, "");
	free(data);
	FAILS(storage_read_all(fx->s, P("ra/missing"), 10, &data, &n, &e), ENOENT);
}

static void test_errors_one_line(void **state)
{
	struct fx *fx = *state;
	struct storage_file *f;
	char want[600];
	struct err e;

	FAILS(storage_open_read(fx->s, P("nope.tsv.zst"), &f, &e), ENOENT);
	assert_int_equal(e.code, ERR_STORAGE);
	snprintf(want, sizeof(want), "unable to open '%s' on '%s': No such file or directory",
		 P("nope.tsv.zst"), storage_url_redacted(fx->s));
	assert_string_equal(e.msg, want);
	/* A reader cannot write, a writer cannot read. */
	put_file(fx->s, P("ro"), "x", 1);
	OK(storage_open_read(fx->s, P("ro"), &f, &e));
	FAILS(storage_write(f, "y", 1, &e), EBADF);
	OK(storage_file_close(f, &e));
}

static void test_free_space_and_url(void **state)
{
	struct fx *fx = *state;
	uint64_t fr = 0, total = 0;
	const char *r = storage_url_redacted(fx->s);
	struct err e;

	OK(storage_free_space(fx->s, &fr, &total, &e));
	assert_true(total > 0);
	assert_true(fr <= total);
	if (strncmp(fx->url, "nfs://", 6) == 0) {
		assert_string_equal(storage_backend_name(fx->s), "nfs");
		assert_null(strchr(r, '?'));
		assert_int_equal(strncmp(r, fx->url, strlen(r)), 0);
	} else {
		assert_string_equal(storage_backend_name(fx->s), "posix");
		assert_string_equal(r, fx->url);
	}
}

/* fx->url with "/sub" added to its path (before an NFS query string). */
static char *url_with(const struct fx *fx, const char *sub)
{
	size_t cut = strcspn(fx->url, "?");
	size_t n = strlen(fx->url) + strlen(sub) + 2;
	char *u = xmalloc(n);

	snprintf(u, n, "%.*s/%s%s", (int)cut, fx->url, sub, fx->url + cut);
	return u;
}

static void test_open_root(void **state)
{
	struct fx *fx = *state;
	struct storage_opts o;
	struct storage *s2 = NULL;
	struct storage_stat st;
	char *u = url_with(fx, P("newroot/deeper"));
	char *data;
	size_t n;
	struct err e;

	storage_opts_init(&o);
	o.create_root = false;
	FAILS(storage_open(u, &o, &s2, &e), 0);
	assert_null(s2);
	assert_non_null(strstr(e.msg, "unable to"));
	print_message("missing root: %s\n", e.msg);

	o.create_root = true;
	OK(storage_open(u, &o, &s2, &e));
	OK(storage_stat(fx->s, P("newroot/deeper"), &st, &e));
	assert_true(st.is_dir);
	/* What s2 writes at its root shows under the first storage. */
	OK(storage_write_atomic(s2, "x.json", "{}", 2, &e));
	OK(storage_read_all(fx->s, P("newroot/deeper/x.json"), 10, &data, &n, &e));
	assert_string_equal(data, "{}");
	free(data);
	storage_close(s2);
	/* Existing root, create_root or not. */
	o.create_root = false;
	OK(storage_open(u, &o, &s2, &e));
	storage_close(s2);
	OK(storage_open(u, NULL, &s2, &e));
	storage_close(s2);
	free(u);

	FAILS(storage_open("ftp://127.0.0.1/x", NULL, &s2, &e), 0);
	assert_non_null(strstr(e.msg, "unsupported repository"));
	FAILS(storage_open("", NULL, &s2, &e), 0);
	o.reconnect_attempts = -1;
	FAILS(storage_open(fx->url, &o, &s2, &e), 0);
	storage_close(NULL);
}

static void test_nfs_unreachable(void **state)
{
	struct storage_opts o;
	struct storage *s2 = NULL;
	double t0;
	struct err e;

	(void)state;
	storage_opts_init(&o);
	o.timeout_ms = 2000;
	o.create_root = true;
	/* Port 1 on loopback: nothing listens, the connection is refused. */
	t0 = now_s();
	FAILS(storage_open("nfs://127.0.0.1/export/x?nfsport=1&mountport=1",
			   &o, &s2, &e), 0);
	assert_null(s2);
	assert_true(now_s() - t0 < 10);
	assert_int_equal(e.code, ERR_STORAGE);
	assert_non_null(strstr(e.msg, "unable to mount 'nfs://127.0.0.1/export/x'"));
	print_message("unreachable server: %s\n", e.msg);
	FAILS(storage_open("nfs://", NULL, &s2, &e), 0);
}

/* ---- a loopback TCP proxy that can stop relaying: a hung server ---- */

#define PROXY_PAIRS 32

struct proxy {
	int lfd[2];               /* listeners: NFS, MOUNT */
	int lport[2];
	int dport[2];             /* ganesha's ports */
	int pair[PROXY_PAIRS][2]; /* client fd, server fd; -1 when free */
	volatile int frozen;      /* stop relaying, accept but never answer */
	volatile int stop;
	pthread_t th;
};

static int listen_any(int *port)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(fd, 8) || getsockname(fd, (struct sockaddr *)&a, &len))
		return -1;
	*port = ntohs(a.sin_port);
	return fd;
}

static int connect_port(int port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	return -1;
}

static void pair_close(struct proxy *p, int i)
{
	close(p->pair[i][0]);
	if (p->pair[i][1] >= 0)
		close(p->pair[i][1]);
	p->pair[i][0] = p->pair[i][1] = -1;
}

static void *proxy_main(void *arg)
{
	struct proxy *p = arg;
	char buf[65536];

	while (!p->stop) {
		struct pollfd pf[2 + 2 * PROXY_PAIRS];
		int owner[2 + 2 * PROXY_PAIRS], n = 0;

		for (int k = 0; k < 2; k++) {
			pf[n].fd = p->lfd[k];
			pf[n].events = POLLIN;
			owner[n++] = -1 - k;
		}
		for (int i = 0; i < PROXY_PAIRS && !p->frozen; i++) {
			if (p->pair[i][0] < 0)
				continue;
			for (int k = 0; k < 2; k++) {
				pf[n].fd = p->pair[i][k];
				pf[n].events = POLLIN;
				owner[n++] = i * 2 + k;
			}
		}
		if (poll(pf, (nfds_t)n, 100) <= 0)
			continue;
		for (int j = 0; j < n; j++) {
			if (!pf[j].revents)
				continue;
			if (owner[j] < 0) {
				int k = -1 - owner[j], c, slot = -1;
				c = accept4(p->lfd[k], NULL, NULL, SOCK_CLOEXEC);
				if (c < 0)
					continue;
				for (int i = 0; i < PROXY_PAIRS; i++)
					if (p->pair[i][0] < 0) {
						slot = i;
						break;
					}
				if (slot < 0) {
					close(c);
					continue;
				}
				p->pair[slot][0] = c;
				/* Frozen: hold the connection, never answer. */
				p->pair[slot][1] = p->frozen ? -1 : connect_port(p->dport[k]);
				if (!p->frozen && p->pair[slot][1] < 0)
					pair_close(p, slot);
				continue;
			}
			int i = owner[j] / 2, k = owner[j] % 2;
			if (p->pair[i][0] < 0 || p->pair[i][1] < 0)
				continue;
			ssize_t r = read(p->pair[i][k], buf, sizeof(buf));
			if (r <= 0) {
				pair_close(p, i);
				continue;
			}
			for (ssize_t off = 0; off < r;) {
				ssize_t w = write(p->pair[i][!k], buf + off, (size_t)(r - off));
				if (w <= 0)
					break;
				off += w;
			}
		}
	}
	return NULL;
}

/* Reads "name=N" from an nfs:// URL's query; 0 when absent. */
static int url_port(const char *url, const char *name)
{
	const char *q = strchr(url, '?');
	size_t nl = strlen(name);

	while (q) {
		q++;
		if (strncmp(q, name, nl) == 0 && q[nl] == '=')
			return (int)strtol(q + nl + 1, NULL, 10);
		q = strchr(q, '&');
	}
	return 0;
}

static int proxy_start(struct proxy *p, int nfsport, int mountport)
{
	memset(p, 0, sizeof(*p));
	for (int i = 0; i < PROXY_PAIRS; i++)
		p->pair[i][0] = p->pair[i][1] = -1;
	p->dport[0] = nfsport;
	p->dport[1] = mountport;
	p->lfd[0] = listen_any(&p->lport[0]);
	p->lfd[1] = listen_any(&p->lport[1]);
	if (p->lfd[0] < 0 || p->lfd[1] < 0)
		return -1;
	return pthread_create(&p->th, NULL, proxy_main, p) ? -1 : 0;
}

static void proxy_stop(struct proxy *p)
{
	p->stop = 1;
	pthread_join(p->th, NULL);
	for (int i = 0; i < PROXY_PAIRS; i++)
		if (p->pair[i][0] >= 0)
			pair_close(p, i);
	close(p->lfd[0]);
	close(p->lfd[1]);
}

/* A server that stops answering (hung, or a network that drops packets)
 * must turn into ETIMEDOUT after about the timeout, never a spin. */
static void test_nfs_hung_server(void **state)
{
	struct fx *fx = *state;
	int nfsport = url_port(fx->url, "nfsport");
	int mountport = url_port(fx->url, "mountport");
	struct storage_opts o;
	struct storage *s2 = NULL;
	struct storage_file *f = NULL;
	struct proxy px;
	unsigned char *data;
	char url[512];
	size_t chunk = 1024 * 1024;
	double t0, took;
	int rc = 0;
	struct err e;

	if (strncmp(fx->url, "nfs://", 6) != 0)
		return;         /* NFS only */
	if (!nfsport || !mountport) {
		print_message("hung-server test needs nfsport= and mountport= in "
			      "the URL; not run for '%s'\n", storage_url_redacted(fx->s));
		return;
	}
	assert_int_equal(proxy_start(&px, nfsport, mountport), 0);
	/* The export path of fx->url, through the proxy's ports. */
	snprintf(url, sizeof(url), "%.*s?nfsport=%d&mountport=%d",
		 (int)strcspn(fx->url, "?"), fx->url, px.lport[0], px.lport[1]);
	storage_opts_init(&o);
	o.timeout_ms = 2000;
	o.reconnect_attempts = 2;
	OK(storage_open(url, &o, &s2, &e));
	data = xmalloc(chunk);
	fill_random(data, chunk);
	OK(storage_create(s2, P("hung.bin"), false, &f, &e));
	OK(storage_write(f, data, chunk, &e));
	OK(storage_fsync(f, &e));

	px.frozen = 1;
	t0 = now_s();
	for (int i = 0; i < 4 && rc == 0; i++)
		rc = storage_write(f, data, chunk, &e);
	if (rc == 0)
		rc = storage_fsync(f, &e);
	took = now_s() - t0;
	print_message("hung server: failed after %.1f s: %s\n", took, e.msg);
	assert_int_equal(rc, ERR_STORAGE);
	assert_int_equal(e.sys_errno, ETIMEDOUT);
	assert_non_null(strstr(e.msg, "no reply from the NFS server within 2 s"));
	assert_true(took >= 1.5 && took < 10.0);
	t0 = now_s();
	err_init(&e);
	storage_file_close(f, &e);
	storage_close(s2);
	assert_true(now_s() - t0 < 10.0);

	/* Mounting through a server that never answers times out too. */
	t0 = now_s();
	FAILS(storage_open(url, &o, &s2, &e), ETIMEDOUT);
	took = now_s() - t0;
	print_message("hung server at mount: after %.1f s: %s\n", took, e.msg);
	assert_true(took < 10.0);
	proxy_stop(&px);
	free(data);
}

static int group_setup(void **state)
{
	struct storage_opts o;
	struct err e;

	storage_opts_init(&o);
	o.timeout_ms = 10000;
	err_init(&e);
	if (storage_open(g_fx.url, &o, &g_fx.s, &e)) {
		fprintf(stderr, "test_storage: cannot open '%s': %s\n", g_fx.url, e.msg);
		return -1;
	}
	snprintf(g_fx.run, sizeof(g_fx.run), "test_storage-%ld-%ld",
		 (long)getpid(), (long)time(NULL));
	if (storage_mkdir_p(g_fx.s, g_fx.run, &e)) {
		fprintf(stderr, "test_storage: %s\n", e.msg);
		storage_close(g_fx.s);
		g_fx.s = NULL;
		return -1;
	}
	*state = &g_fx;
	return 0;
}

static int group_teardown(void **state)
{
	struct err e;
	int rc = 0;

	(void)state;
	err_init(&e);
	if (g_fx.s && storage_remove_tree(g_fx.s, g_fx.run, &e)) {
		fprintf(stderr, "test_storage: cleanup: %s\n", e.msg);
		rc = -1;
	}
	storage_close(g_fx.s);
	g_fx.s = NULL;
	return rc;
}

static int run_suite(const char *url)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_check),
		cmocka_unit_test(test_error_mapping),
		cmocka_unit_test(test_mkdir_p),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_exclusive_and_truncate),
		cmocka_unit_test(test_rename_over),
		cmocka_unit_test(test_list_sorted),
		cmocka_unit_test(test_stat),
		cmocka_unit_test(test_remove_tree),
		cmocka_unit_test(test_remove_rmdir),
		cmocka_unit_test(test_write_atomic),
		cmocka_unit_test(test_read_all_cap),
		cmocka_unit_test(test_errors_one_line),
		cmocka_unit_test(test_free_space_and_url),
		cmocka_unit_test(test_open_root),
		cmocka_unit_test(test_nfs_unreachable),
		cmocka_unit_test(test_nfs_hung_server),
	};
	char name[160];
	size_t cut = strcspn(url, "?");

	memset(&g_fx, 0, sizeof(g_fx));
	g_fx.url = url;
	snprintf(name, sizeof(name), "storage %.*s", (int)cut, url);
	print_message("test_storage: backend '%s'\n", url);
	return cmocka_run_group_tests_name(name, tests, group_setup,
					   group_teardown);
}

/* ---- fault: the NFS server goes away under an open file ---- */

static const char *fault_url(void)
{
	static char found[2048];
	const char *list = getenv("STORAGE_TEST_URLS");

	if (list) {
		char *copy = xstrdup(list), *save = NULL;
		for (char *w = strtok_r(copy, " \t", &save); w;
		     w = strtok_r(NULL, " \t", &save)) {
			if (strncmp(w, "nfs://", 6) == 0) {
				snprintf(found, sizeof(found), "%s", w);
				free(copy);
				return found;
			}
		}
		free(copy);
	}
	return getenv("NFS_URL");
}

/* Gone, or a zombie its parent has not reaped yet. */
static bool pid_gone(pid_t pid)
{
	char path[64], buf[256];
	FILE *fp;
	char *rp;
	bool gone = true;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	fp = fopen(path, "r");
	if (!fp)
		return true;
	if (fgets(buf, sizeof(buf), fp) && (rp = strrchr(buf, ')')) && rp[1] == ' ')
		gone = rp[2] == 'Z' || rp[2] == 'X';
	fclose(fp);
	return gone;
}

static void test_fault_server_stopped(void **state)
{
	const char *url = fault_url();
	const char *pidfile = getenv("NFS_TEST_PIDFILE");
	struct storage_opts o;
	struct storage *s = NULL;
	struct storage_file *f = NULL;
	struct storage_stat st;
	unsigned char *data;
	char run[96], rel[160], comm[64] = "";
	size_t chunk = 256 * 1024;
	long pid = 0;
	double t0, took;
	int rc = 0;
	FILE *fp;
	struct err e;

	(void)state;
	if (!url)
		fail_msg("fault test: no nfs:// URL in STORAGE_TEST_URLS and NFS_URL is not set");
	if (!pidfile)
		fail_msg("fault test: NFS_TEST_PIDFILE (the ganesha pid file) is not set");
	fp = fopen(pidfile, "r");
	if (!fp || fscanf(fp, "%ld", &pid) != 1 || pid <= 1)
		fail_msg("fault test: no pid in '%s'", pidfile);
	fclose(fp);
	/* A stale pid file must not make us signal some other process. */
	snprintf(rel, sizeof(rel), "/proc/%ld/comm", pid);
	fp = fopen(rel, "r");
	if (!fp || !fgets(comm, sizeof(comm), fp) || !strstr(comm, "ganesha"))
		fail_msg("fault test: pid %ld from '%s' is not a running ganesha", pid,
			 pidfile);
	fclose(fp);

	storage_opts_init(&o);
	o.timeout_ms = 5000;
	o.reconnect_attempts = 3;
	OK(storage_open(url, &o, &s, &e));
	snprintf(run, sizeof(run), "test_storage-fault-%ld", (long)getpid());
	OK(storage_mkdir_p(s, run, &e));
	snprintf(rel, sizeof(rel), "%s/victim.tsv.zst", run);
	OK(storage_create(s, rel, false, &f, &e));
	data = xmalloc(chunk);
	fill_random(data, chunk);
	OK(storage_write(f, data, chunk, &e));      /* buffered */

	if (kill((pid_t)pid, SIGTERM))
		fail_msg("fault test: cannot signal ganesha pid %ld: errno %d", pid,
			 errno);
	for (int i = 0; i < 100 && !pid_gone((pid_t)pid); i++)
		usleep(100 * 1000);
	assert_true(pid_gone((pid_t)pid));

	t0 = now_s();
	err_init(&e);
	/* Enough data that the buffer must go out, then a COMMIT. */
	for (int i = 0; i < 8 && rc == 0; i++)
		rc = storage_write(f, data, chunk, &e);
	if (rc == 0)
		rc = storage_fsync(f, &e);
	took = now_s() - t0;
	print_message("fault test: failed after %.1f s: %s\n", took, e.msg);
	assert_int_not_equal(rc, 0);
	assert_int_equal(rc, ERR_STORAGE);
	assert_int_equal(e.code, ERR_STORAGE);
	assert_true(e.sys_errno != 0);
	assert_null(strchr(e.msg, '\n'));
	assert_non_null(strstr(e.msg, "unable to write '"));
	assert_non_null(strstr(e.msg, rel));
	assert_true(took < 20.0);

	/* The file stays failed; later calls fail at once. */
	t0 = now_s();
	FAILS(storage_write(f, data, 1, &e), 0);
	assert_non_null(strstr(e.msg, "earlier write failed"));
	FAILS(storage_file_close(f, &e), 0);
	/* Other calls fail within the timeout, too. */
	FAILS(storage_stat(s, run, &st, &e), 0);
	print_message("fault test: then: %s\n", e.msg);
	storage_close(s);
	assert_true(now_s() - t0 < 20.0);
	free(data);
	print_message("fault test: ganesha (pid %ld) was stopped by this test and "
		      "must be restarted; '%s' is left on the export\n", pid, run);
}

/* ---- main ---- */

int main(int argc, char **argv)
{
	const char *list = getenv("STORAGE_TEST_URLS");
	char tmpdir[] = "/tmp/test_storage.XXXXXX";
	bool made_tmp = false;
	int failed = 0, runs = 0;

	if (argc > 1 && strcmp(argv[1], "fault") == 0) {
		const struct CMUnitTest fault[] = {
			cmocka_unit_test(test_fault_server_stopped),
		};
		return cmocka_run_group_tests_name("storage_fault", fault, NULL, NULL);
	}
	if (argc > 1) {
		fprintf(stderr, "usage: %s [fault]\n", argv[0]);
		return 2;
	}

	if (list && *list) {
		char *copy = xstrdup(list), *save = NULL;
		for (char *w = strtok_r(copy, " \t", &save); w;
		     w = strtok_r(NULL, " \t", &save)) {
			failed += run_suite(w);
			runs++;
		}
		free(copy);
		if (runs == 0) {
			fprintf(stderr, "test_storage: STORAGE_TEST_URLS names no backend\n");
			return 1;
		}
		return failed ? 1 : 0;
	}

	if (!mkdtemp(tmpdir)) {
		perror("test_storage: mkdtemp");
		return 1;
	}
	made_tmp = true;
	failed += run_suite(tmpdir);
	if (getenv("NFS_URL") && *getenv("NFS_URL")) {
		failed += run_suite(getenv("NFS_URL"));
	} else {
		fprintf(stderr, "test_storage: FAILED: NFS_URL is not set, so the NFS "
			"backend was not tested. Start the test servers (tests/env/up.sh "
			"exports NFS_URL) or set STORAGE_TEST_URLS.\n");
		failed++;
	}
	if (made_tmp && rmdir(tmpdir))
		fprintf(stderr, "test_storage: cannot remove '%s'\n", tmpdir);
	return failed ? 1 : 0;
}
