/*
 * sink.c — stand-in for the Slack incoming webhook in backupd's test environment.
 * Every POST (except to /_ctl) is appended to a log as one JSON line and answered from
 * a response script that tests set with POST /_ctl, so they can force 5xx, 429 with
 * Retry-After, and slow answers, and count the attempts backupd made.
 * Threading: libmicrohttpd runs one thread per connection; the script, the delay and
 * the log file are shared and only touched with `g.mu` held.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#define BODY_MAX ((size_t)1 << 20)   /* larger bodies are answered 413 */
#define SCRIPT_MAX 1024              /* entries in one response script */
#define DELAY_MAX_MS 600000L
#define RETRY_AFTER_MAX_S 86400L
#define CTL_PATH "/_ctl"

struct answer {
	unsigned status;
	long retry_after_s; /* < 0: no Retry-After header */
};

/* Shared state; every field is guarded by mu. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t wake;          /* signalled at shutdown to cut delays short */
	struct answer script[SCRIPT_MAX];
	size_t len;                   /* entries in script */
	size_t pos;                   /* next entry; the last one repeats for ever */
	long delay_ms;
	int stopping;
	FILE *log;
	const char *log_path;
} g = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* One per request: the body collected so far. Freed by on_completed(). */
struct req {
	char *body;
	size_t len;
	size_t cap;
	int too_big;
};

static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("sink: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* Parses a whole decimal number in [min, max]; returns 0 on success. */
static int parse_long(const char *s, size_t n, long min, long max, long *out)
{
	char tmp[24];
	char *end;
	long v;

	if (n == 0 || n >= sizeof tmp)
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	if (tmp[0] < '0' || tmp[0] > '9')
		return -1;
	errno = 0;
	v = strtol(tmp, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Length of the valid UTF-8 sequence starting at s, or 0 if it is not valid. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	/* Second byte ranges exclude overlong forms, surrogates and > U+10FFFF. */
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

/* Writes s as a JSON string; invalid UTF-8 becomes U+FFFD so the line stays valid JSON. */
static void json_write_string(FILE *f, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, k;

	fputc('"', f);
	while (i < n) {
		unsigned char c = s[i];

		switch (c) {
		case '"': fputs("\\\"", f); i++; continue;
		case '\\': fputs("\\\\", f); i++; continue;
		case '\b': fputs("\\b", f); i++; continue;
		case '\f': fputs("\\f", f); i++; continue;
		case '\n': fputs("\\n", f); i++; continue;
		case '\r': fputs("\\r", f); i++; continue;
		case '\t': fputs("\\t", f); i++; continue;
		default: break;
		}
		if (c < 0x20 || c == 0x7f) {
			fprintf(f, "\\u%04x", c);
			i++;
			continue;
		}
		k = utf8_seq_len(s + i, n - i);
		if (k == 0) {
			fputs("\\ufffd", f);
			i++;
			continue;
		}
		fwrite(s + i, 1, k, f);
		i += k;
	}
	fputc('"', f);
}

/* Next answer of the script; the last entry repeats. Caller holds g.mu. */
static struct answer script_next_locked(void)
{
	struct answer a = { 200, -1 };

	if (g.len == 0)
		return a;
	a = g.script[g.pos];
	if (g.pos + 1 < g.len)
		g.pos++;
	return a;
}

/* The remaining script in the syntax POST /_ctl accepts. Caller holds g.mu. */
static void script_format_locked(char *out, size_t cap)
{
	size_t used = 0, i;
	int n;

	out[0] = '\0';
	if (g.len == 0) {
		n = snprintf(out, cap, "200");
		used = n > 0 ? (size_t)n : 0;
	}
	for (i = g.pos; i < g.len && used < cap; i++) {
		const struct answer *a = &g.script[i];
		const char *sep = i == g.pos ? "" : ",";

		if (a->retry_after_s >= 0)
			n = snprintf(out + used, cap - used, "%s%u:%ld", sep, a->status, a->retry_after_s);
		else
			n = snprintf(out + used, cap - used, "%s%u", sep, a->status);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	if (g.delay_ms > 0 && used < cap) {
		n = snprintf(out + used, cap - used, ",delay:%ld", g.delay_ms);
		if (n > 0)
			used += (size_t)n;
	}
	if (used < cap)
		snprintf(out + used, cap - used, "\n");
}

/* Waits delay_ms unless shutdown starts first. */
static void delay_answer(long delay_ms)
{
	struct timespec until;

	if (delay_ms <= 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += delay_ms / 1000;
	until.tv_nsec += (delay_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&g.mu);
	while (!g.stopping) {
		if (pthread_cond_timedwait(&g.wake, &g.mu, &until) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&g.mu);
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *body,
			       long retry_after_s)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
	if (retry_after_s >= 0) {
		char v[24];

		snprintf(v, sizeof v, "%ld", retry_after_s);
		MHD_add_response_header(resp, "Retry-After", v);
	}
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Appends one JSON line for a POST and flushes it. Caller holds g.mu. */
static void log_post_locked(const char *path, unsigned status, const struct req *r)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	fprintf(g.log, "{\"ts\":%lld.%03ld,\"path\":", (long long)now.tv_sec,
		now.tv_nsec / 1000000L);
	json_write_string(g.log, path, strlen(path));
	fprintf(g.log, ",\"status\":%u,\"body\":", status);
	json_write_string(g.log, r->body != NULL ? r->body : "", r->len);
	fputs("}\n", g.log);
	if (fflush(g.log) != 0)
		fprintf(stderr, "sink: unable to write '%s': %s\n", g.log_path, strerror(errno));
}

static enum MHD_Result handle_post(struct MHD_Connection *c, const char *url, const struct req *r)
{
	struct answer a;
	long delay_ms;

	pthread_mutex_lock(&g.mu);
	if (r->too_big) {
		a.status = 413;
		a.retry_after_s = -1;
	} else {
		a = script_next_locked();
	}
	log_post_locked(url, a.status, r);
	delay_ms = g.delay_ms;
	pthread_mutex_unlock(&g.mu);

	delay_answer(delay_ms);
	if (a.status == 200)
		return respond(c, a.status, "ok", a.retry_after_s);
	if (a.status == 429)
		return respond(c, a.status, "rate_limited", a.retry_after_s);
	return respond(c, a.status, "sink scripted error", a.retry_after_s);
}

/*
 * POST /_ctl: comma-separated tokens. "S" or "S:R" (status, Retry-After seconds) make
 * the new script; "delay:MS" sets the answer delay; "reset" clears script, delay and
 * log. Nothing changes unless every token parses.
 */
static enum MHD_Result handle_ctl(struct MHD_Connection *c, const struct req *r)
{
	static struct answer parsed[SCRIPT_MAX]; /* only used with g.mu held */
	char msg[SCRIPT_MAX * 16 + 64];
	const char *p = r->body != NULL ? r->body : "";
	const char *end = p + r->len;
	size_t n = 0;
	long delay_ms = -1;
	int reset = 0, any = 0;

	pthread_mutex_lock(&g.mu);
	while (p <= end) {
		const char *tok = p, *tend, *colon;
		long status, ra = -1;

		while (p < end && *p != ',')
			p++;
		tend = p;
		p++; /* skip the comma (or step past the end) */
		while (tok < tend && (*tok == ' ' || *tok == '\t' || *tok == '\n' || *tok == '\r'))
			tok++;
		while (tend > tok && (tend[-1] == ' ' || tend[-1] == '\t' || tend[-1] == '\n' ||
				      tend[-1] == '\r'))
			tend--;
		if (tok == tend)
			continue;
		any = 1;
		colon = memchr(tok, ':', (size_t)(tend - tok));
		if ((size_t)(tend - tok) == 5 && memcmp(tok, "reset", 5) == 0) {
			reset = 1;
		} else if (colon != NULL && colon - tok == 5 && memcmp(tok, "delay", 5) == 0) {
			if (parse_long(colon + 1, (size_t)(tend - colon - 1), 0, DELAY_MAX_MS,
				       &delay_ms) != 0)
				goto bad;
		} else {
			const char *send = colon != NULL ? colon : tend;

			if (parse_long(tok, (size_t)(send - tok), 100, 599, &status) != 0)
				goto bad;
			if (colon != NULL && parse_long(colon + 1, (size_t)(tend - colon - 1), 0,
							RETRY_AFTER_MAX_S, &ra) != 0)
				goto bad;
			if (n == SCRIPT_MAX) {
				pthread_mutex_unlock(&g.mu);
				return respond(c, 400, "script too long\n", -1);
			}
			parsed[n].status = (unsigned)status;
			parsed[n].retry_after_s = ra;
			n++;
		}
		continue;
bad:
		pthread_mutex_unlock(&g.mu);
		snprintf(msg, sizeof msg, "bad control token '%.*s'\n", (int)(tend - tok), tok);
		return respond(c, 400, msg, -1);
	}
	if (!any) {
		pthread_mutex_unlock(&g.mu);
		return respond(c, 400, "empty control body\n", -1);
	}
	if (reset) {
		g.len = g.pos = 0;
		g.delay_ms = 0;
		fflush(g.log);
		if (ftruncate(fileno(g.log), 0) != 0)
			fprintf(stderr, "sink: unable to truncate '%s': %s\n", g.log_path,
				strerror(errno));
	}
	if (n > 0) {
		memcpy(g.script, parsed, n * sizeof parsed[0]);
		g.len = n;
		g.pos = 0;
	}
	if (delay_ms >= 0)
		g.delay_ms = delay_ms;
	script_format_locked(msg, sizeof msg);
	pthread_mutex_unlock(&g.mu);
	return respond(c, 200, msg, -1);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct req *r = *con_cls;
	int is_ctl = strcmp(url, CTL_PATH) == 0;
	char msg[SCRIPT_MAX * 16 + 64];

	(void)cls;
	(void)version;
	if (r == NULL) {
		r = calloc(1, sizeof *r);
		if (r == NULL)
			abort();
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (r->too_big || n > BODY_MAX - r->len) {
			/* Keep nothing: the log line of a 413 has an empty body. */
			r->too_big = 1;
			free(r->body);
			r->body = NULL;
			r->len = r->cap = 0;
			return MHD_YES;
		}
		if (r->len + n + 1 > r->cap) {
			size_t cap = r->cap ? r->cap : 4096;

			while (cap < r->len + n + 1)
				cap *= 2;
			r->body = realloc(r->body, cap);
			if (r->body == NULL)
				abort();
			r->cap = cap;
		}
		memcpy(r->body + r->len, upload_data, n);
		r->len += n;
		r->body[r->len] = '\0';
		return MHD_YES;
	}

	if (strcmp(method, MHD_HTTP_METHOD_POST) == 0)
		return is_ctl ? handle_ctl(c, r) : handle_post(c, url, r);
	if (strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0) {
		if (!is_ctl)
			return respond(c, 200, "sink\n", -1);
		pthread_mutex_lock(&g.mu);
		script_format_locked(msg, sizeof msg);
		pthread_mutex_unlock(&g.mu);
		return respond(c, 200, msg, -1);
	}
	return respond(c, 405, "method not allowed\n", -1);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct req *r = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (r != NULL) {
		free(r->body);
		free(r);
		*con_cls = NULL;
	}
}

static void write_pidfile(const char *path)
{
	char tmp[4096];
	FILE *f;

	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
		die("pid file path too long: '%s'", path);
	f = fopen(tmp, "w");
	if (f == NULL)
		die("unable to create '%s': %s", tmp, strerror(errno));
	fprintf(f, "%ld\n", (long)getpid());
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		die("unable to write '%s': %s", path, strerror(errno));
}

static void usage(FILE *f)
{
	fputs("usage: sink --port PORT --log FILE --pidfile FILE\n"
	      "Records POSTs as JSON lines in FILE and answers from a script set with\n"
	      "POST /_ctl (e.g. \"500,429:2,200\", \"delay:1500\", \"reset\"); GET /_ctl shows it.\n"
	      "Listens on 127.0.0.1 only.\n", f);
}

int main(int argc, char **argv)
{
	const char *log_path = NULL, *pid_path = NULL;
	long port = 0;
	struct sockaddr_in sin;
	struct MHD_Daemon *d;
	pthread_condattr_t ca;
	sigset_t set;
	int i, sig;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (i + 1 >= argc) {
			usage(stderr);
			return 2;
		}
		if (strcmp(a, "--port") == 0) {
			if (parse_long(argv[i + 1], strlen(argv[i + 1]), 1, 65535, &port) != 0)
				die("bad port '%s'", argv[i + 1]);
		} else if (strcmp(a, "--log") == 0) {
			log_path = argv[i + 1];
		} else if (strcmp(a, "--pidfile") == 0) {
			pid_path = argv[i + 1];
		} else {
			usage(stderr);
			return 2;
		}
		i++;
	}
	if (port == 0 || log_path == NULL || pid_path == NULL) {
		usage(stderr);
		return 2;
	}

	g.log_path = log_path;
	g.log = fopen(log_path, "a");
	if (g.log == NULL)
		die("unable to open '%s': %s", log_path, strerror(errno));
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g.wake, &ca);
	pthread_condattr_destroy(&ca);

	/* Block the stop signals before any thread exists so only sigwait() sees them. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
				     MHD_USE_AUTO | MHD_USE_ERROR_LOG,
			     (uint16_t)port, NULL, NULL, on_request, NULL,
			     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
			     MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
			     MHD_OPTION_END);
	if (d == NULL)
		die("unable to listen on 127.0.0.1:%ld", port);
	write_pidfile(pid_path);

	do {
		if (sigwait(&set, &sig) != 0)
			die("sigwait failed");
	} while (sig != SIGTERM && sig != SIGINT && sig != SIGHUP);

	pthread_mutex_lock(&g.mu);
	g.stopping = 1;
	pthread_cond_broadcast(&g.wake);
	pthread_mutex_unlock(&g.mu);
	MHD_stop_daemon(d);
	fclose(g.log);
	pthread_cond_destroy(&g.wake);
	unlink(pid_path);
	return 0;
}
