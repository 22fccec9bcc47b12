/* Prometheus text exposition over libmicrohttpd: helpers that write samples
 * with HELP/TYPE once per name and escaped labels, a renderer that groups
 * each family's lines (collectors may interleave names), and the HTTP server
 * for GET /metrics.
 * Threading: MHD runs one internal polling thread, so requests, and the
 * collector calls they make, are serialised; the helpers are reentrant. */
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "config.h"
#include "log.h"
#include "mem.h"

#define MOD "metrics"
#define METRICS_CONN_LIMIT 32
#define METRICS_CONN_TIMEOUT_S 10

struct metrics {
	struct MHD_Daemon *d;
	metrics_collect_fn fn;
	void *ctx;
	unsigned port;
	char listen[300];
};

/* ---- format helpers ------------------------------------------------------ */

static bool name_char(char c, bool first, bool colon_ok)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
		return true;
	if (colon_ok && c == ':')
		return true;
	return !first && c >= '0' && c <= '9';
}

static bool valid_name(const char *s, bool colon_ok)
{
	if (!s || !*s)
		return false;
	for (size_t i = 0; s[i]; i++)
		if (!name_char(s[i], i == 0, colon_ok))
			return false;
	return true;
}

int metrics_escape_label(struct buf *b, const char *s, struct err *e)
{
	int rc = 0;

	for (; s && *s && rc == 0; s++) {
		if (*s == '\\')
			rc = buf_append_str(b, "\\\\", e);
		else if (*s == '"')
			rc = buf_append_str(b, "\\\"", e);
		else if (*s == '\n')
			rc = buf_append_str(b, "\\n", e);
		else
			rc = buf_append_char(b, *s, e);
	}
	return rc;
}

/* HELP text escapes only backslash and newline. */
static int escape_help(struct buf *b, const char *s, struct err *e)
{
	int rc = 0;

	for (; s && *s && rc == 0; s++) {
		if (*s == '\\')
			rc = buf_append_str(b, "\\\\", e);
		else if (*s == '\n')
			rc = buf_append_str(b, "\\n", e);
		else
			rc = buf_append_char(b, *s, e);
	}
	return rc;
}

int metrics_format_value(struct buf *b, double v, struct err *e)
{
	char tmp[64];

	if (isnan(v))
		return buf_append_str(b, "NaN", e);
	if (isinf(v))
		return buf_append_str(b, v > 0 ? "+Inf" : "-Inf", e);
	/* %.17g always round-trips but prints 0.1 as 0.10000000000000001. */
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	return buf_append_str(b, tmp, e);
}

/* The type already declared for name in b ("gauge", ...), or NULL. */
static const char *declared_type(const struct buf *b, const char *name,
				 size_t *type_len)
{
	size_t nlen = strlen(name);
	const char *p = b->data, *end = b->data + b->len;

	while (p < end) {
		const char *hit = memmem(p, (size_t)(end - p), "# TYPE ", 7);
		const char *q, *nl;

		if (!hit)
			return NULL;
		q = hit + 7;
		if ((hit == b->data || hit[-1] == '\n') &&
		    (size_t)(end - q) > nlen && memcmp(q, name, nlen) == 0 &&
		    q[nlen] == ' ') {
			q += nlen + 1;
			nl = memchr(q, '\n', (size_t)(end - q));
			*type_len = nl ? (size_t)(nl - q) : (size_t)(end - q);
			return q;
		}
		p = hit + 1;
	}
	return NULL;
}

static int write_sample(struct buf *b, const char *type, const char *name,
			const char *help, const char *const *labels,
			double value, struct err *e)
{
	const char *have;
	size_t have_len = 0;
	int rc;

	if (!valid_name(name, true))
		return err_set(e, ERR_INTERNAL, "invalid metric name '%s'",
			       name ? name : "");
	have = declared_type(b, name, &have_len);
	if (have && (have_len != strlen(type) || memcmp(have, type, have_len) != 0))
		return err_set(e, ERR_INTERNAL,
			       "metric '%s' written as %s and as %.*s", name,
			       type, (int)have_len, have);
	if (!have) {
		if ((rc = buf_printf(b, e, "# HELP %s ", name)) ||
		    (rc = escape_help(b, help ? help : "", e)) ||
		    (rc = buf_printf(b, e, "\n# TYPE %s %s\n", name, type)))
			return rc;
	}
	if ((rc = buf_append_str(b, name, e)))
		return rc;
	if (labels && labels[0]) {
		for (size_t i = 0; labels[i]; i += 2) {
			const char *k = labels[i], *v = labels[i + 1];

			if (!valid_name(k, false) || strncmp(k, "__", 2) == 0)
				return err_set(e, ERR_INTERNAL,
					       "invalid label name '%s' of metric '%s'",
					       k, name);
			if ((rc = buf_printf(b, e, "%s%s=\"", i ? "," : "{", k)) ||
			    (rc = metrics_escape_label(b, v ? v : "", e)) ||
			    (rc = buf_append_char(b, '"', e)))
				return rc;
		}
		if ((rc = buf_append_char(b, '}', e)))
			return rc;
	}
	if ((rc = buf_append_char(b, ' ', e)) ||
	    (rc = metrics_format_value(b, value, e)))
		return rc;
	return buf_append_char(b, '\n', e);
}

int metrics_gauge(struct buf *b, const char *name, const char *help,
		  const char *const *labels, double value, struct err *e)
{
	return write_sample(b, "gauge", name, help, labels, value, e);
}

int metrics_counter(struct buf *b, const char *name, const char *help,
		    const char *const *labels, double value, struct err *e)
{
	return write_sample(b, "counter", name, help, labels, value, e);
}

/* ---- rendering ----------------------------------------------------------- */

struct line {
	const char *p;
	size_t len;        /* with the newline */
	size_t family;
};

/* The family a line belongs to: the name after "# HELP "/"# TYPE ", or the
 * sample's name up to '{' or ' '. Other comments stay with the previous
 * line's family. */
static void line_family(const char *p, size_t len, const char **name,
			size_t *nlen)
{
	const char *q = p, *end = p + len;

	if (len >= 7 && (memcmp(p, "# HELP ", 7) == 0 ||
			 memcmp(p, "# TYPE ", 7) == 0))
		q = p + 7;
	else if (len && p[0] == '#') {
		*name = NULL;
		*nlen = 0;
		return;
	}
	*name = q;
	while (q < end && *q != '{' && *q != ' ' && *q != '\n')
		q++;
	*nlen = (size_t)(q - *name);
}

int metrics_render(metrics_collect_fn fn, void *ctx, struct buf *out,
		   struct err *e)
{
	struct buf scratch;
	struct line *lines = NULL;
	const char **fam = NULL;
	size_t *fam_len = NULL;
	size_t n_lines = 0, cap_lines = 0, n_fam = 0, cap_fam = 0;
	size_t cur = 0;
	int rc;

	buf_init(&scratch, METRICS_PAGE_MAX);
	if ((rc = fn(ctx, &scratch, e)))
		goto out;
	for (const char *p = scratch.data, *end = scratch.data + scratch.len;
	     p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		const char *name;
		size_t nlen, f;

		line_family(p, len, &name, &nlen);
		if (name) {
			for (f = 0; f < n_fam; f++)
				if (fam_len[f] == nlen &&
				    memcmp(fam[f], name, nlen) == 0)
					break;
			if (f == n_fam) {
				if (n_fam == cap_fam) {
					cap_fam = cap_fam ? cap_fam * 2 : 32;
					fam = xrealloc(fam, cap_fam * sizeof(*fam));
					fam_len = xrealloc(fam_len, cap_fam * sizeof(*fam_len));
				}
				fam[n_fam] = name;
				fam_len[n_fam++] = nlen;
			}
			cur = f;
		}
		if (n_lines == cap_lines) {
			cap_lines = cap_lines ? cap_lines * 2 : 128;
			lines = xrealloc(lines, cap_lines * sizeof(*lines));
		}
		lines[n_lines++] = (struct line){ p, len, cur };
		p += len;
	}
	for (size_t f = 0; f < n_fam || (f == 0 && n_lines); f++) {
		for (size_t i = 0; i < n_lines && rc == 0; i++) {
			if (lines[i].family != f)
				continue;
			rc = buf_append(out, lines[i].p, lines[i].len, e);
			if (rc == 0 && lines[i].p[lines[i].len - 1] != '\n')
				rc = buf_append_char(out, '\n', e);
		}
		if (rc)
			break;
	}
out:
	free(lines);
	free(fam);
	free(fam_len);
	buf_release(&scratch);
	return rc;
}

/* ---- HTTP ---------------------------------------------------------------- */

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status,
			       const char *ctype, char *body, size_t len,
			       bool owned, const char *allow)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(len, body,
					       owned ? MHD_RESPMEM_MUST_FREE
						     : MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		if (owned)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", ctype);
	if (allow)
		MHD_add_response_header(resp, "Allow", allow);
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	static char not_found[] = "not found: try /metrics\n";
	static char not_allowed[] = "method not allowed\n";
	static char failed[] = "metrics collection failed\n";
	static const char text[] = "text/plain; charset=utf-8";
	struct metrics *m = cls;
	struct buf page;
	struct err e;
	char *body;
	size_t len;

	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)con_cls;
	if (strcmp(url, "/metrics") != 0)
		return respond(c, MHD_HTTP_NOT_FOUND, text, not_found,
			       sizeof(not_found) - 1, false, NULL);
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return respond(c, MHD_HTTP_METHOD_NOT_ALLOWED, text, not_allowed,
			       sizeof(not_allowed) - 1, false, "GET, HEAD");

	err_init(&e);
	buf_init(&page, METRICS_PAGE_MAX);
	if (metrics_render(m->fn, m->ctx, &page, &e) != 0) {
		log_warn(MOD, "unable to collect metrics: %s", e.msg);
		buf_release(&page);
		return respond(c, MHD_HTTP_INTERNAL_SERVER_ERROR, text, failed,
			       sizeof(failed) - 1, false, NULL);
	}
	len = page.len;
	body = buf_detach(&page);
	buf_release(&page);   /* buf_detach leaves a fresh buffer behind */
	return respond(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
		       body, len, true, NULL);
}

__attribute__((format(printf, 2, 0)))
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_warn(MOD, "http server: %s", msg);
}

int metrics_start(const char *listen, metrics_collect_fn fn, void *ctx,
		  struct metrics **out, struct err *e)
{
	struct addrinfo hints, *res = NULL;
	struct cfg_addr addr;
	struct metrics *m;
	char port[16];
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO |
			 MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *info;
	int rc, saved;

	*out = NULL;
	if (!listen || !fn)
		return err_set(e, ERR_INTERNAL, "metrics_start needs an address and a collector");
	if ((rc = cfg_addr_parse(listen, &addr, e))) {
		err_prefix(e, "metrics_listen: ");
		return rc;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", addr.port);
	if ((rc = getaddrinfo(addr.host, port, &hints, &res)) != 0 || !res)
		return err_set(e, ERR_CONFIG,
			       "unable to resolve metrics_listen '%s': %s",
			       listen, gai_strerror(rc));
	if (res->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;

	m = xcalloc(1, sizeof(*m));
	m->fn = fn;
	m->ctx = ctx;
	str_copy(m->listen, sizeof(m->listen), listen);
	errno = 0;
	m->d = MHD_start_daemon(flags, (uint16_t)addr.port, NULL, NULL,
				on_request, m,
				/* First, or MHD logs the others' messages itself. */
				MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, (void *)NULL,
				MHD_OPTION_SOCK_ADDR, res->ai_addr,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_CONN_LIMIT,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_CONN_TIMEOUT_S,
				MHD_OPTION_END);
	saved = errno;
	freeaddrinfo(res);
	if (!m->d) {
		free(m);
		if (saved)
			return err_set_errno(e, ERR_IO, saved,
					     "unable to serve metrics on '%s'", listen);
		return err_set(e, ERR_IO, "unable to serve metrics on '%s'", listen);
	}
	info = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT);
	m->port = info && info->port ? info->port : addr.port;
	log_info(MOD, "serving /metrics on '%s'", listen);
	*out = m;
	return 0;
}

void metrics_stop(struct metrics *m)
{
	if (!m)
		return;
	MHD_stop_daemon(m->d);
	free(m);
}

unsigned metrics_port(const struct metrics *m)
{
	return m ? m->port : 0;
}
