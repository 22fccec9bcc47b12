/* cutover_writer: the client of the cutover tests and bench. Writes one
 * numbered row every --interval-ms through a TCP endpoint (the HAProxy
 * writer frontend), reconnects on any error and retries the same number
 * until it is acknowledged. Every acknowledged id goes to the log as
 *   OK <id> <t_send> <t_ack>          (unix seconds, microseconds)
 * and every failed attempt as
 *   ERR <id> <t> <errno> <message>
 * On SIGTERM/SIGINT (or after --duration-s) it prints one summary line on
 * stdout: acked=N errors=N max_gap_ms=X gap_start=T gap_end=T.
 * Each id is sent until acknowledged and never after, so a row present
 * twice means the servers applied one transaction twice.
 *
 * Build: cc -O2 -o cutover_writer tests/cutover_writer.c $(pkg-config --cflags --libs libmariadb)
 * Single-threaded. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mysql.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_until(double mono_t)
{
	double d = mono_t - mono_s();
	struct timespec ts;
	if (d <= 0)
		return;
	ts.tv_sec = (time_t)d;
	ts.tv_nsec = (long)((d - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);   /* a signal cuts it short: fine */
}

static void usage(void)
{
	fprintf(stderr,
		"usage: cutover_writer --host H --port P --user U --password-file F --table DB.T\n"
		"                      --log FILE [--interval-ms 10] [--duration-s S] [--start-id N]\n");
	exit(2);
}

static long num(const char *s, long min, long max)
{
	char *end;
	long v;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max)
		usage();
	return v;
}

static MYSQL *open_conn(const char *host, unsigned port, const char *user,
			const char *pw, char *err, size_t n)
{
	MYSQL *m = mysql_init(NULL);
	unsigned t = 2;
	my_bool off = 0;

	if (!m) {
		snprintf(err, n, "mysql_init failed");
		return NULL;
	}
	mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &t);
	mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &t);
	mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &t);
	mysql_options(m, MYSQL_OPT_RECONNECT, &off);
	if (!mysql_real_connect(m, host, user, pw, NULL, port, NULL, 0)) {
		snprintf(err, n, "%u %s", mysql_errno(m), mysql_error(m));
		mysql_close(m);
		return NULL;
	}
	return m;
}

int main(int argc, char **argv)
{
	const char *host = NULL, *user = NULL, *pwfile = NULL, *table = NULL, *logp = NULL;
	long port = 0, interval_ms = 10, duration_s = 0, id = 1;
	char pw[256] = "", q[512], err[600];
	FILE *log, *pf;
	MYSQL *m = NULL;
	double last_ack = 0, max_gap = 0, gap_start = 0, gap_end = 0, t_end, next;
	long acked = 0, errors = 0;
	struct sigaction sa;

	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--host")) host = argv[++i];
		else if (!strcmp(argv[i], "--port")) port = num(argv[++i], 1, 65535);
		else if (!strcmp(argv[i], "--user")) user = argv[++i];
		else if (!strcmp(argv[i], "--password-file")) pwfile = argv[++i];
		else if (!strcmp(argv[i], "--table")) table = argv[++i];
		else if (!strcmp(argv[i], "--log")) logp = argv[++i];
		else if (!strcmp(argv[i], "--interval-ms")) interval_ms = num(argv[++i], 1, 60000);
		else if (!strcmp(argv[i], "--duration-s")) duration_s = num(argv[++i], 0, 86400);
		else if (!strcmp(argv[i], "--start-id")) id = num(argv[++i], 1, 1L << 40);
		else usage();
	}
	if (!host || !port || !user || !pwfile || !table || !logp)
		usage();
	if (!(pf = fopen(pwfile, "r")) || !fgets(pw, sizeof(pw), pf)) {
		fprintf(stderr, "cutover_writer: cannot read '%s'\n", pwfile);
		return 1;
	}
	fclose(pf);
	pw[strcspn(pw, "\r\n")] = '\0';
	if (!(log = fopen(logp, "w"))) {
		fprintf(stderr, "cutover_writer: cannot open '%s'\n", logp);
		return 1;
	}
	setvbuf(log, NULL, _IOLBF, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	mysql_library_init(0, NULL, NULL);

	t_end = duration_s ? mono_s() + (double)duration_s : 0;
	next = mono_s();
	while (!stop && (!t_end || mono_s() < t_end)) {
		double t_send, t_ack;

		sleep_until(next);
		next += (double)interval_ms / 1000.0;
		if (next < mono_s())   /* after a long stall: no burst to catch up */
			next = mono_s();
		if (stop)
			break;
		t_send = now_s();
		if (!m && !(m = open_conn(host, (unsigned)port, user, pw, err, sizeof(err)))) {
			errors++;
			fprintf(log, "ERR %ld %.6f connect %s\n", id, now_s(), err);
			continue;
		}
		snprintf(q, sizeof(q),
			 "INSERT INTO %s (id, server_id, at) VALUES (%ld, @@server_id, NOW(6))",
			 table, id);
		if (mysql_query(m, q) != 0) {
			errors++;
			fprintf(log, "ERR %ld %.6f %u %s\n", id, now_s(), mysql_errno(m), mysql_error(m));
			mysql_close(m);
			m = NULL;
			continue;
		}
		t_ack = now_s();
		fprintf(log, "OK %ld %.6f %.6f\n", id, t_send, t_ack);
		if (last_ack > 0 && t_ack - last_ack > max_gap) {
			max_gap = t_ack - last_ack;
			gap_start = last_ack;
			gap_end = t_ack;
		}
		last_ack = t_ack;
		acked++;
		id++;
	}
	if (m)
		mysql_close(m);
	fclose(log);
	printf("acked=%ld errors=%ld max_gap_ms=%.1f gap_start=%.6f gap_end=%.6f next_id=%ld\n",
	       acked, errors, max_gap * 1e3, gap_start, gap_end, id);
	mysql_library_end();
	return 0;
}
