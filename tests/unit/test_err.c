/* Unit tests for struct err, exit-status mapping, buffers and log masking. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "err.h"
#include "log.h"

static void test_err_set_once(void **state)
{
	struct err e;
	err_init(&e);
	assert_false(err_is_set(&e));
	assert_int_equal(err_set(&e, ERR_IO, "unable to open '%s'", "/x"), ERR_IO);
	assert_true(err_is_set(&e));
	/* A second failure must not overwrite the first one. */
	assert_int_equal(err_set(&e, ERR_CONFIG, "other"), ERR_IO);
	assert_string_equal(e.msg, "unable to open '/x'");
	err_prefix(&e, "snapshot of '%s': ", "shop");
	assert_string_equal(e.msg, "snapshot of 'shop': unable to open '/x'");
}

static void test_err_errno(void **state)
{
	struct err e;
	err_init(&e);
	err_set_errno(&e, ERR_STORAGE, ENOSPC, "unable to write '%s'", "a/b");
	assert_int_equal(e.sys_errno, ENOSPC);
	assert_string_equal(e.msg, "unable to write 'a/b': No space left on device");
}

static void test_err_exit_status_stable(void **state)
{
	/* These numbers are documented in the README; they never change. */
	assert_int_equal(err_exit_status(ERR_OK), 0);
	assert_int_equal(err_exit_status(ERR_INTERNAL), 1);
	assert_int_equal(err_exit_status(ERR_USAGE), 2);
	assert_int_equal(err_exit_status(ERR_CONFIG), 3);
	assert_int_equal(err_exit_status(ERR_DB_CONNECT), 5);
	assert_int_equal(err_exit_status(ERR_VERIFY), 10);
	assert_int_equal(err_exit_status(ERR_NOT_IMPLEMENTED), 12);
	assert_int_equal(err_exit_status(ERR_PERMISSION), 20);
	for (int c = ERR_CODE_MIN; c < 0; c++) {
		assert_string_not_equal(err_code_name(c), "unknown");
		assert_int_equal(err_exit_status(c), -c);
	}
	assert_string_equal(err_code_name(ERR_VERIFY), "verify");
}

static void test_err_retryable(void **state)
{
	struct err e;
	err_init(&e);
	err_set(&e, ERR_DB_CONNECT, "x");
	e.db_errno = 2003;
	assert_true(err_retryable(&e));
	e.db_errno = 1045; /* access denied never fixes itself */
	assert_false(err_retryable(&e));
	err_init(&e);
	err_set(&e, ERR_CONFIG, "x");
	assert_false(err_retryable(&e));
}

static void test_buf_grow_and_limit(void **state)
{
	struct buf b;
	struct err e;
	err_init(&e);
	buf_init(&b, 100);
	for (int i = 0; i < 9; i++)
		assert_int_equal(buf_printf(&b, &e, "%010d", i), 0);
	assert_int_equal(b.len, 90);
	assert_int_equal(strlen(b.data), 90);
	assert_int_equal(buf_append(&b, "0123456789", 10, &e), 0);
	assert_int_equal(b.len, 100);
	/* The hard maximum holds: no growth past it. */
	assert_int_equal(buf_append_char(&b, 'x', &e), ERR_INTERNAL);
	assert_int_equal(b.len, 100);
	buf_release(&b);
}

static void test_buf_binary(void **state)
{
	struct buf b;
	struct err e;
	const char bin[] = { 'a', 0, 'b', (char)0xff };
	err_init(&e);
	buf_init(&b, 0);
	assert_int_equal(buf_append(&b, bin, sizeof(bin), &e), 0);
	assert_int_equal(b.len, 4);
	assert_memory_equal(b.data, bin, 4);
	assert_int_equal(b.data[4], 0);
	char *d = buf_detach(&b);
	assert_int_equal(b.len, 0);
	free(d);
	buf_release(&b);
}

static void test_str_helpers(void **state)
{
	char small[4];
	long v;
	assert_int_equal(str_copy(small, sizeof(small), "abcdef"), 6);
	assert_string_equal(small, "abc");
	assert_int_equal(str_to_long("42", 0, 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(str_to_long("42x", 0, 100, &v), -1);
	assert_int_equal(str_to_long("", 0, 100, &v), -1);
	assert_int_equal(str_to_long("101", 0, 100, &v), -1);
	assert_int_equal(str_to_long("99999999999999999999", 0, 100, &v), -1);
}

static void test_log_masks_secrets(void **state)
{
	int fds[2];
	char out[4096];
	ssize_t n;

	assert_int_equal(pipe(fds), 0);
	log_set_fd(fds[1]);
	log_setup(LOGL_INFO, LOG_FORMAT_TEXT);
	log_register_secret("s3cr3t-pw");
	log_info("test", "connecting with s3cr3t-pw to '%s'", "db");
	log_debug("test", "not shown at info");
	log_setup(LOGL_INFO, LOG_FORMAT_JSON);
	log_set_job("job-7");
	log_error("test", "quote \" and s3cr3t-pw\nnewline");
	log_set_job(NULL);
	n = read(fds[0], out, sizeof(out) - 1);
	assert_true(n > 0);
	out[n] = 0;
	log_set_fd(2);
	close(fds[0]);
	close(fds[1]);
	assert_null(strstr(out, "s3cr3t"));
	assert_non_null(strstr(out, "connecting with *** to 'db'"));
	assert_null(strstr(out, "not shown"));
	assert_non_null(strstr(out, "\"level\":\"error\",\"job\":\"job-7\",\"module\":\"test\""));
	assert_non_null(strstr(out, "quote \\\" and *** newline"));
	/* Exactly two lines: one per event. */
	int lines = 0;
	for (char *p = out; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 2);
	log_forget_secrets();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_err_set_once),
		cmocka_unit_test(test_err_errno),
		cmocka_unit_test(test_err_exit_status_stable),
		cmocka_unit_test(test_err_retryable),
		cmocka_unit_test(test_buf_grow_and_limit),
		cmocka_unit_test(test_buf_binary),
		cmocka_unit_test(test_str_helpers),
		cmocka_unit_test(test_log_masks_secrets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
