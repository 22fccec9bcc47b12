/* Unit tests of lib/haproxy (parsing "show servers state" and "get weight",
 * finding servers by address, name checks, the socket client against a
 * fake admin socket served by a thread: replies, errors, timeouts) and of
 * the pure helpers of backupd/cutover (canary weights, foreign GTIDs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cutover.h"
#include "haproxy.h"

/* What HAProxy 2.6 printed in the test env. */
static const char state_all[] =
	"1\n"
	"# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
	"srv_iweight srv_time_since_last_change srv_check_status srv_check_result "
	"srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id "
	"srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr "
	"srv_agent_port\n"
	"3 mysql_writer 1 primary 127.0.0.1 2 0 1 1 0 15 3 2 6 0 0 0 - 28726 - 0 0 - - 0\n"
	"3 mysql_writer 2 replica 127.0.0.1 0 5 1 1 0 1 0 0 14 0 0 0 - 27705 - 0 0 - - 0\n"
	"5 mysql_read 1 primary 127.0.0.1 2 0 100 100 0 1 0 1 6 0 0 0 - 28726 - 0 0 - - 0\n"
	"5 mysql_read 2 replica 127.0.0.1 2 0 0 0 0 1 0 1 6 0 0 0 - 27705 - 0 0 - - 0\n"
	"\n";

static void test_parse_state(void **state)
{
	struct haproxy_server *s = NULL;
	size_t n = 0;
	struct err e;

	(void)state;
	err_init(&e);
	assert_int_equal(haproxy_parse_servers_state(state_all, &s, &n, &e), 0);
	assert_int_equal(n, 4);
	assert_string_equal(s[0].backend, "mysql_writer");
	assert_int_equal(s[0].backend_id, 3);
	assert_string_equal(s[0].name, "primary");
	assert_int_equal(s[0].id, 1);
	assert_string_equal(s[0].addr, "127.0.0.1");
	assert_int_equal(s[0].port, 28726);
	assert_int_equal(s[0].op_state, HAPROXY_OP_RUNNING);
	assert_int_equal(s[0].admin_state, 0);
	assert_string_equal(s[0].fqdn, "");
	assert_false(haproxy_in_maint(&s[0]));
	/* disabled in the config: CMAINT|FMAINT */
	assert_int_equal(s[1].admin_state, 5);
	assert_true(haproxy_in_maint(&s[1]));
	assert_string_equal(haproxy_admin_state_name(s[1].admin_state), "maint");
	assert_string_equal(haproxy_op_state_name(s[1].op_state), "stopped");
	assert_int_equal(s[2].weight, 100);
	assert_int_equal(s[2].initial_weight, 100);
	assert_int_equal(s[3].weight, 0);
	free(s);
}

static void test_parse_state_columns_by_header(void **state)
{
	/* Columns in another order, an FQDN, fewer optional columns. */
	static const char t[] =
		"1\n# srv_port be_name srv_name srv_addr srv_op_state srv_admin_state "
		"srv_uweight srv_iweight srv_fqdn\n"
		"3306 be db1 10.0.0.5 2 4 7 10 db1.example\n";
	struct haproxy_server *s = NULL;
	size_t n = 0;
	struct err e;

	(void)state;
	err_init(&e);
	assert_int_equal(haproxy_parse_servers_state(t, &s, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_int_equal(s[0].port, 3306);
	assert_int_equal(s[0].backend_id, -1);
	assert_int_equal(s[0].weight, 7);
	assert_string_equal(s[0].fqdn, "db1.example");
	/* CMAINT alone is a marker: "ready" after `set server ... ready`. */
	assert_false(haproxy_in_maint(&s[0]));
	assert_string_equal(haproxy_admin_state_name(4), "ready");
	assert_string_equal(haproxy_admin_state_name(8), "drain");
	assert_string_equal(haproxy_admin_state_name(1), "maint");
	assert_string_equal(haproxy_admin_state_name(0x20), "maint");
	free(s);
}

static void expect_parse_error(const char *text, int code, const char *needle)
{
	struct haproxy_server *s = (void *)1;
	size_t n = 9;
	struct err e;

	err_init(&e);
	assert_int_equal(haproxy_parse_servers_state(text, &s, &n, &e), code);
	assert_null(s);
	assert_int_equal(n, 0);
	if (!strstr(e.msg, needle))
		fail_msg("message '%s' lacks '%s'", e.msg, needle);
}

static void test_parse_state_errors(void **state)
{
	(void)state;
	expect_parse_error("Can't find backend.\n", ERR_REFUSED, "Can't find backend.");
	expect_parse_error("2\n# be_name\n", ERR_CORRUPT, "version 2");
	expect_parse_error("", ERR_CORRUPT, "empty");
	expect_parse_error("1\n# be_name srv_name srv_addr\nbe s 1.2.3.4\n", ERR_CORRUPT,
			   "no column 'srv_op_state'");
	expect_parse_error("1\nbe s 1.2.3.4\n", ERR_CORRUPT, "no header");
	expect_parse_error("1\n# be_name srv_name srv_addr srv_op_state srv_admin_state "
			   "srv_uweight srv_iweight srv_port\nbe s 1.2.3.4 2 0 x 1 3306\n",
			   ERR_CORRUPT, "malformed number");
	expect_parse_error("1\n# be_name srv_name srv_addr srv_op_state srv_admin_state "
			   "srv_uweight srv_iweight srv_port\nbe s 1.2.3.4 2 0 1\n",
			   ERR_CORRUPT, "too few");
	expect_parse_error("1\n# be_name srv_name srv_addr srv_op_state srv_admin_state "
			   "srv_uweight srv_iweight srv_port\nbe s 1.2.3.4 2 0 1 1 70000\n",
			   ERR_CORRUPT, "malformed number");
}

static void test_parse_state_empty_backend(void **state)
{
	struct haproxy_server *s = NULL;
	size_t n = 5;
	struct err e;

	(void)state;
	err_init(&e);
	assert_int_equal(haproxy_parse_servers_state("1\n# be_id be_name srv_id srv_name srv_addr "
						     "srv_op_state srv_admin_state srv_uweight "
						     "srv_iweight srv_port\n\n", &s, &n, &e), 0);
	assert_int_equal(n, 0);
	free(s);
}

static void test_find_server(void **state)
{
	struct haproxy_server s[4];
	struct err e;

	(void)state;
	memset(s, 0, sizeof(s));
	str_copy(s[0].backend, sizeof(s[0].backend), "w");
	str_copy(s[0].name, sizeof(s[0].name), "blue");
	str_copy(s[0].addr, sizeof(s[0].addr), "127.0.0.1");
	s[0].port = 3306;
	s[1] = s[0];
	str_copy(s[1].name, sizeof(s[1].name), "green");
	s[1].port = 3307;
	s[2] = s[0];
	str_copy(s[2].backend, sizeof(s[2].backend), "r");
	str_copy(s[2].name, sizeof(s[2].name), "v6");
	str_copy(s[2].addr, sizeof(s[2].addr), "::1");
	s[3] = s[0];
	str_copy(s[3].backend, sizeof(s[3].backend), "r");
	str_copy(s[3].name, sizeof(s[3].name), "named");
	str_copy(s[3].addr, sizeof(s[3].addr), "10.1.2.3");
	str_copy(s[3].fqdn, sizeof(s[3].fqdn), "DB3.example");
	err_init(&e);

	assert_ptr_equal(haproxy_find_server(s, 4, "w", "127.0.0.1", 3306), &s[0]);
	assert_ptr_equal(haproxy_find_server(s, 4, "w", "127.0.0.1", 3307), &s[1]);
	assert_null(haproxy_find_server(s, 4, "w", "127.0.0.1", 3308));
	assert_null(haproxy_find_server(s, 4, "w", "127.0.0.2", 3306));
	/* backend NULL: any; the first match wins */
	assert_ptr_equal(haproxy_find_server(s, 4, NULL, "127.0.0.1", 3306), &s[0]);
	/* one address, another spelling */
	assert_ptr_equal(haproxy_find_server(s, 4, "r", "[0:0::1]", 3306), &s[2]);
	assert_ptr_equal(haproxy_find_server(s, 4, "r", "0:0:0:0:0:0:0:1", 3306), &s[2]);
	assert_null(haproxy_find_server(s, 4, "w", "::1", 3306));
	/* a name matches srv_fqdn */
	assert_ptr_equal(haproxy_find_server(s, 4, "r", "db3.example", 3306), &s[3]);
	/* localhost resolves to loopback addresses (no network traffic) */
	assert_ptr_equal(haproxy_find_server(s, 4, "w", "localhost", 3307), &s[1]);
}

static void test_check_name(void **state)
{
	struct err e;
	char longname[200];

	(void)state;
	err_init(&e);
	assert_int_equal(haproxy_check_name("backend", "mysql_writer", &e), 0);
	assert_int_equal(haproxy_check_name("server", "db-1.a:b", &e), 0);
	assert_int_equal(haproxy_check_name("server", "a;b", &e), ERR_USAGE);
	assert_non_null(strstr(e.msg, "invalid haproxy server name 'a;b'"));
	err_init(&e);
	assert_int_equal(haproxy_check_name("server", "a b", &e), ERR_USAGE);
	err_init(&e);
	assert_int_equal(haproxy_check_name("server", "", &e), ERR_USAGE);
	err_init(&e);
	assert_int_equal(haproxy_check_name("server", NULL, &e), ERR_USAGE);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	err_init(&e);
	assert_int_equal(haproxy_check_name("server", longname, &e), ERR_USAGE);
}

static void test_parse_weight(void **state)
{
	struct err e;
	int w = -1, iw = -1;

	(void)state;
	err_init(&e);
	assert_int_equal(haproxy_parse_weight("12 (initial 100)\n", &w, &iw, &e), 0);
	assert_int_equal(w, 12);
	assert_int_equal(iw, 100);
	assert_int_equal(haproxy_parse_weight("0 (initial 0)\n\n", &w, NULL, &e), 0);
	assert_int_equal(w, 0);
	assert_int_equal(haproxy_parse_weight("No such server.\n", &w, &iw, &e), ERR_REFUSED);
	assert_string_equal(e.msg, "haproxy: No such server.");
	err_init(&e);
	assert_int_equal(haproxy_parse_weight("", &w, &iw, &e), ERR_CORRUPT);
	err_init(&e);
	assert_int_equal(haproxy_parse_weight("12\n", &w, &iw, &e), ERR_CORRUPT);
	err_init(&e);
	assert_int_equal(haproxy_parse_weight("300 (initial 1)", &w, &iw, &e), ERR_CORRUPT);
}

/* ---- a fake admin socket ---- */

struct fake {
	char path[108];
	int lfd;
	const char *reply;     /* NULL: accept, then say nothing for hold_ms */
	int hold_ms;
	char got[512];         /* the command line received */
	pthread_t th;
};

static void *fake_serve(void *u)
{
	struct fake *f = u;
	int c = accept(f->lfd, NULL, NULL);
	size_t n = 0;

	if (c < 0)
		return NULL;
	while (n < sizeof(f->got) - 1) {
		ssize_t r = read(c, f->got + n, 1);
		if (r <= 0 || f->got[n] == '\n')
			break;
		n++;
	}
	f->got[n] = '\0';
	if (f->reply) {
		size_t len = strlen(f->reply), off = 0;
		while (off < len) {
			ssize_t w = write(c, f->reply + off, len - off);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
	} else {
		struct timespec ts = { f->hold_ms / 1000, (long)(f->hold_ms % 1000) * 1000000L };
		nanosleep(&ts, NULL);
	}
	close(c);
	return NULL;
}

static void fake_start(struct fake *f, const char *reply, int hold_ms)
{
	struct sockaddr_un sa;
	char dir[] = "/tmp/test_haproxy.XXXXXX";

	memset(f, 0, sizeof(*f));
	assert_non_null(mkdtemp(dir));
	snprintf(f->path, sizeof(f->path), "%s/admin.sock", dir);
	f->reply = reply;
	f->hold_ms = hold_ms;
	f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(f->lfd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	str_copy(sa.sun_path, sizeof(sa.sun_path), f->path);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->lfd, 4), 0);
	assert_int_equal(pthread_create(&f->th, NULL, fake_serve, f), 0);
}

static void fake_stop(struct fake *f)
{
	char dir[108];
	pthread_join(f->th, NULL);
	close(f->lfd);
	unlink(f->path);
	str_copy(dir, sizeof(dir), f->path);
	*strrchr(dir, '/') = '\0';
	rmdir(dir);
}

static void test_command_reply(void **state)
{
	struct fake f;
	struct haproxy_server *s = NULL;
	size_t n = 0;
	struct err e;

	(void)state;
	fake_start(&f, state_all, 0);
	err_init(&e);
	assert_int_equal(haproxy_servers_state(f.path, "mysql_writer", 1000, &s, &n, &e), 0);
	fake_stop(&f);
	assert_string_equal(f.got, "show servers state mysql_writer");
	assert_int_equal(n, 4);
	free(s);
}

static void test_exec_ok_and_refused(void **state)
{
	struct fake f;
	struct err e;
	int w = 0, iw = 0;

	(void)state;
	fake_start(&f, "\n", 0);
	err_init(&e);
	assert_int_equal(haproxy_set_state(f.path, "mysql_writer", "replica", "ready", 1000, &e), 0);
	fake_stop(&f);
	assert_string_equal(f.got, "set server mysql_writer/replica state ready");

	fake_start(&f, "No such server.\n", 0);
	err_init(&e);
	assert_int_equal(haproxy_set_weight(f.path, "mysql_read", "nope", 11, 1000, &e), ERR_REFUSED);
	fake_stop(&f);
	assert_string_equal(f.got, "set weight mysql_read/nope 11");
	assert_string_equal(e.msg, "haproxy refused 'set weight mysql_read/nope 11': No such server.");

	fake_start(&f, "\n", 0);
	err_init(&e);
	assert_int_equal(haproxy_shutdown_sessions(f.path, "be", "blue", 1000, &e), 0);
	fake_stop(&f);
	assert_string_equal(f.got, "shutdown sessions server be/blue");

	fake_start(&f, "11 (initial 0)\n", 0);
	err_init(&e);
	assert_int_equal(haproxy_get_weight(f.path, "mysql_read", "replica", &w, &iw, 1000, &e), 0);
	fake_stop(&f);
	assert_string_equal(f.got, "get weight mysql_read/replica");
	assert_int_equal(w, 11);
	assert_int_equal(iw, 0);
}

static void test_command_errors(void **state)
{
	struct fake f;
	struct err e;
	char *reply = NULL;
	struct timespec t0, t1;
	double ms;

	(void)state;
	err_init(&e);
	assert_int_equal(haproxy_command("/nonexistent/haproxy.sock", "show info", 1000, &reply, &e),
			 ERR_IO);
	assert_null(reply);
	assert_non_null(strstr(e.msg, "unable to connect to haproxy admin socket '/nonexistent/haproxy.sock'"));
	err_init(&e);
	assert_int_equal(haproxy_command("/x", "show info\nshutdown sessions", 1000, &reply, &e),
			 ERR_USAGE);
	err_init(&e);
	assert_int_equal(haproxy_command(NULL, "show info", 1000, &reply, &e), ERR_CONFIG);
	/* names are checked before anything is sent */
	err_init(&e);
	assert_int_equal(haproxy_set_state("/x", "be", "a;shutdown", "ready", 1000, &e), ERR_USAGE);
	err_init(&e);
	assert_int_equal(haproxy_set_state("/x", "be", "a", "up", 1000, &e), ERR_USAGE);
	err_init(&e);
	assert_int_equal(haproxy_set_weight("/x", "be", "a", 257, 1000, &e), ERR_USAGE);

	/* a socket that accepts and never answers: the timeout holds */
	fake_start(&f, NULL, 1500);
	err_init(&e);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(haproxy_command(f.path, "show info", 200, &reply, &e), ERR_IO);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	assert_true(ms >= 150 && ms < 1000);
	assert_non_null(strstr(e.msg, "did not answer in time"));
	fake_stop(&f);
}

/* ---- cutover pure helpers ---- */

static void test_canary_weight(void **state)
{
	struct err e;
	int w = -1;

	(void)state;
	err_init(&e);
	assert_int_equal(cutover_canary_weight(10, 100, &w, &e), 0);
	assert_int_equal(w, 11);
	assert_int_equal(cutover_canary_weight(50, 100, &w, &e), 0);
	assert_int_equal(w, 100);
	assert_int_equal(cutover_canary_weight(0, 100, &w, &e), 0);
	assert_int_equal(w, 0);
	assert_int_equal(cutover_canary_weight(0, 0, &w, &e), 0);
	assert_int_equal(cutover_canary_weight(1, 1, &w, &e), 0);
	assert_int_equal(w, 1);  /* at least 1 */
	assert_int_equal(cutover_canary_weight(25, 200, &w, &e), 0);
	assert_int_equal(w, 67);
	assert_int_equal(cutover_canary_weight(100, 100, &w, &e), ERR_USAGE);
	err_init(&e);
	assert_int_equal(cutover_canary_weight(-1, 100, &w, &e), ERR_USAGE);
	err_init(&e);
	assert_int_equal(cutover_canary_weight(75, 100, &w, &e), ERR_REFUSED);
	assert_non_null(strstr(e.msg, "needs weight 300"));
	err_init(&e);
	assert_int_equal(cutover_canary_weight(10, 0, &w, &e), ERR_REFUSED);
}

static void test_foreign_gtids(void **state)
{
	struct err e;
	char why[300];
	int n = -1;

	(void)state;
	err_init(&e);
	/* green behind blue: fine */
	assert_int_equal(cutover_foreign_gtids("0-1-10", "0-1-12", &n, why, sizeof(why), &e), 0);
	assert_int_equal(n, 0);
	assert_string_equal(why, "");
	/* empty green binlog (a restored replica): fine */
	assert_int_equal(cutover_foreign_gtids("", "0-1-5", &n, why, sizeof(why), &e), 0);
	assert_int_equal(n, 0);
	/* after a cutover and back: both servers' ids in both states */
	assert_int_equal(cutover_foreign_gtids("0-1-694,0-2-518", "0-2-518,0-1-700", &n, why,
					       sizeof(why), &e), 0);
	assert_int_equal(n, 0);
	/* written on green itself */
	assert_int_equal(cutover_foreign_gtids("0-1-10,0-2-3", "0-1-12", &n, why, sizeof(why), &e), 0);
	assert_int_equal(n, 1);
	assert_string_equal(why, "0-2-3 (blue has nothing from server 2 in domain 0)");
	/* ahead of blue for blue's own server id: not from blue */
	assert_int_equal(cutover_foreign_gtids("0-1-13", "0-1-12", &n, why, sizeof(why), &e), 0);
	assert_int_equal(n, 1);
	assert_string_equal(why, "0-1-13 (blue has 0-1-12)");
	/* another domain */
	assert_int_equal(cutover_foreign_gtids("0-1-5,7-2-1", "0-1-5", &n, why, sizeof(why), &e), 0);
	assert_int_equal(n, 1);
	/* malformed */
	assert_int_equal(cutover_foreign_gtids("0-1", "0-1-5", &n, why, sizeof(why), &e), ERR_CORRUPT);
	err_init(&e);
	assert_int_equal(cutover_foreign_gtids("0-1-5", "x", &n, why, sizeof(why), &e), ERR_CORRUPT);
	err_init(&e);
	assert_int_equal(cutover_foreign_gtids("0-1-5x", "0-1-5", &n, why, sizeof(why), &e), ERR_CORRUPT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_state),
		cmocka_unit_test(test_parse_state_columns_by_header),
		cmocka_unit_test(test_parse_state_errors),
		cmocka_unit_test(test_parse_state_empty_backend),
		cmocka_unit_test(test_find_server),
		cmocka_unit_test(test_check_name),
		cmocka_unit_test(test_parse_weight),
		cmocka_unit_test(test_command_reply),
		cmocka_unit_test(test_exec_ok_and_refused),
		cmocka_unit_test(test_command_errors),
		cmocka_unit_test(test_canary_weight),
		cmocka_unit_test(test_foreign_gtids),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
