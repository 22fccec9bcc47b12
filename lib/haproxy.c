/* HAProxy admin-socket client (see haproxy.h): connect, send one command
 * line, read the reply until HAProxy closes the connection; parsers for
 * "show servers state" and "get weight". Stateless; safe from any thread. */
#include "haproxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "mem.h"

static double mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int left_ms(double deadline)
{
	double l = deadline - mono_ms();
	return l <= 0 ? 0 : (int)l + 1;
}

/* Waits for ev on fd until the deadline: 0 ready, ERR_IO on timeout. */
static int wait_fd(int fd, short ev, double deadline, const char *path,
		   const char *what, struct err *e)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = ev };
		int ms = left_ms(deadline), r;
		if (ms <= 0)
			return err_set(e, ERR_IO,
				       "haproxy admin socket '%s' did not %s in time",
				       path, what);
		r = poll(&p, 1, ms);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return err_set_errno(e, ERR_IO, errno,
					     "unable to poll haproxy admin socket '%s'",
					     path);
	}
}

static int sock_connect(const char *path, double deadline, int *out,
			struct err *e)
{
	struct sockaddr_un sa;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path))
		return err_set(e, ERR_CONFIG,
			       "haproxy admin socket path '%s' is too long", path);
	str_copy(sa.sun_path, sizeof(sa.sun_path), path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return err_set_errno(e, ERR_IO, errno, "unable to create a socket");
	/* A full listen backlog answers EAGAIN on a non-blocking Unix socket;
	 * try again until the deadline. */
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int en = errno;
		if ((en == EAGAIN || en == EINTR) && left_ms(deadline) > 0) {
			struct timespec ts = { 0, 5 * 1000 * 1000 };
			nanosleep(&ts, NULL);
			continue;
		}
		close(fd);
		return err_set_errno(e, ERR_IO, en,
				     "unable to connect to haproxy admin socket '%s'",
				     path);
	}
	*out = fd;
	return 0;
}

int haproxy_command(const char *socket_path, const char *cmd, int timeout_ms,
		    char **reply, struct err *e)
{
	struct buf line, rep;
	double deadline;
	size_t off = 0;
	int fd = -1, rc;

	*reply = NULL;
	if (!socket_path || !*socket_path)
		return err_set(e, ERR_CONFIG, "no haproxy admin socket configured");
	if (!cmd || !*cmd || strpbrk(cmd, "\r\n"))
		return err_set(e, ERR_USAGE, "invalid haproxy command");
	deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : HAPROXY_TIMEOUT_MS_DEFAULT);
	buf_init(&line, 64 * 1024);
	buf_init(&rep, HAPROXY_REPLY_MAX);
	rc = buf_printf(&line, e, "%s\n", cmd);
	if (!rc)
		rc = sock_connect(socket_path, deadline, &fd, e);
	while (!rc && off < line.len) {
		ssize_t w = send(fd, line.data + off, line.len - off, MSG_NOSIGNAL);
		if (w > 0) {
			off += (size_t)w;
		} else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			rc = wait_fd(fd, POLLOUT, deadline, socket_path, "accept the command", e);
		} else {
			rc = err_set_errno(e, ERR_IO, errno,
					   "unable to send to haproxy admin socket '%s'",
					   socket_path);
		}
	}
	/* Without "prompt" HAProxy answers one command and closes. */
	while (!rc) {
		char tmp[8192];
		ssize_t r = recv(fd, tmp, sizeof(tmp), 0);
		if (r > 0) {
			rc = buf_append(&rep, tmp, (size_t)r, e);
			if (rc)
				err_prefix(e, "reply of haproxy admin socket '%s': ", socket_path);
		} else if (r == 0) {
			break;
		} else if (errno == EAGAIN || errno == EINTR) {
			rc = wait_fd(fd, POLLIN, deadline, socket_path, "answer", e);
		} else {
			rc = err_set_errno(e, ERR_IO, errno,
					   "unable to read from haproxy admin socket '%s'",
					   socket_path);
		}
	}
	if (fd >= 0)
		close(fd);
	buf_release(&line);
	if (rc) {
		buf_release(&rep);
		return rc;
	}
	*reply = buf_detach(&rep);
	buf_release(&rep);   /* buf_detach leaves a fresh buffer behind */
	return 0;
}

/* The reply without surrounding whitespace, in out (cut to fit). */
static void trimmed(const char *s, char *out, size_t n)
{
	size_t len;
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	len = strlen(s);
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' ||
		       s[len - 1] == '\r' || s[len - 1] == '\n'))
		len--;
	if (len >= n)
		len = n - 1;
	memcpy(out, s, len);
	out[len] = '\0';
	for (char *p = out; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

int haproxy_exec(const char *socket_path, const char *cmd, int timeout_ms,
		 struct err *e)
{
	char *reply = NULL, msg[300];
	int rc = haproxy_command(socket_path, cmd, timeout_ms, &reply, e);
	if (rc)
		return rc;
	trimmed(reply, msg, sizeof(msg));
	free(reply);
	if (*msg)
		return err_set(e, ERR_REFUSED, "haproxy refused '%s': %s", cmd, msg);
	return 0;
}

/* ---- show servers state ---- */

#define MAX_COLS 64

/* Splits line (modified in place) at spaces; returns the field count. */
static size_t split_fields(char *line, char **f, size_t max)
{
	size_t n = 0;
	char *p = line;
	while (*p) {
		while (*p == ' ' || *p == '\t')
			*p++ = '\0';
		if (!*p)
			break;
		if (n == max)
			return max + 1;
		f[n++] = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
	}
	return n;
}

enum col {
	C_BE_ID, C_BE_NAME, C_SRV_ID, C_SRV_NAME, C_SRV_ADDR, C_OP, C_ADMIN,
	C_UWEIGHT, C_IWEIGHT, C_FQDN, C_PORT, C_COUNT
};
static const char *const col_names[C_COUNT] = {
	"be_id", "be_name", "srv_id", "srv_name", "srv_addr", "srv_op_state",
	"srv_admin_state", "srv_uweight", "srv_iweight", "srv_fqdn", "srv_port",
};
/* Columns every HAProxy since 1.8 prints; the others are optional. */
static const bool col_required[C_COUNT] = {
	[C_BE_NAME] = true, [C_SRV_NAME] = true, [C_SRV_ADDR] = true,
	[C_OP] = true, [C_ADMIN] = true, [C_UWEIGHT] = true,
	[C_IWEIGHT] = true, [C_PORT] = true,
};

static int num_field(const char *s, long max, int *out)
{
	long v;
	if (str_to_long(s, 0, max, &v) != 0)
		return -1;
	*out = (int)v;
	return 0;
}

int haproxy_parse_servers_state(const char *text, struct haproxy_server **out,
				size_t *n, struct err *e)
{
	int idx[C_COUNT];
	char *copy = xstrdup(text ? text : ""), *p = copy, *nl;
	struct haproxy_server *arr = NULL;
	size_t cnt = 0, cap = 0, lineno = 0;
	bool have_version = false, have_header = false;
	int rc = 0;

	*out = NULL;
	*n = 0;
	for (int i = 0; i < C_COUNT; i++)
		idx[i] = -1;
	for (; !rc && p && *p; p = nl) {
		char *f[MAX_COLS + 1];
		size_t nf;

		nl = strchr(p, '\n');
		if (nl)
			*nl++ = '\0';
		lineno++;
		if (!have_version) {
			char first[300];
			trimmed(p, first, sizeof(first));
			if (!*first)
				continue;
			if (strcmp(first, "1") != 0) {
				/* Not a state dump: HAProxy's error text. */
				if (first[0] >= '0' && first[0] <= '9' && strspn(first, "0123456789") == strlen(first))
					rc = err_set(e, ERR_CORRUPT,
						     "haproxy servers state format version %s is not supported",
						     first);
				else
					rc = err_set(e, ERR_REFUSED, "haproxy: %s", first);
				break;
			}
			have_version = true;
			continue;
		}
		if (p[0] == '#') {
			if (have_header)
				continue;
			nf = split_fields(p + 1, f, MAX_COLS);
			if (nf > MAX_COLS) {
				rc = err_set(e, ERR_CORRUPT, "haproxy servers state header has too many columns");
				break;
			}
			for (size_t i = 0; i < nf; i++)
				for (int c = 0; c < C_COUNT; c++)
					if (strcmp(f[i], col_names[c]) == 0)
						idx[c] = (int)i;
			for (int c = 0; c < C_COUNT && !rc; c++)
				if (col_required[c] && idx[c] < 0)
					rc = err_set(e, ERR_CORRUPT,
						     "haproxy servers state has no column '%s'",
						     col_names[c]);
			have_header = true;
			continue;
		}
		nf = split_fields(p, f, MAX_COLS);
		if (nf == 0)
			continue;
		if (!have_header) {
			rc = err_set(e, ERR_CORRUPT, "haproxy servers state has no header line");
			break;
		}
		if (nf > MAX_COLS) {
			rc = err_set(e, ERR_CORRUPT, "haproxy servers state line %zu has too many fields", lineno);
			break;
		}
		for (int c = 0; c < C_COUNT; c++)
			if (idx[c] >= 0 && (size_t)idx[c] >= nf) {
				rc = err_set(e, ERR_CORRUPT,
					     "haproxy servers state line %zu has %zu fields, too few",
					     lineno, nf);
				break;
			}
		if (rc)
			break;
		if (cnt == HAPROXY_SERVERS_MAX) {
			rc = err_set(e, ERR_CORRUPT, "haproxy lists more than %u servers",
				     (unsigned)HAPROXY_SERVERS_MAX);
			break;
		}
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			arr = xrealloc(arr, cap * sizeof(*arr));
		}
		struct haproxy_server *s = &arr[cnt];
		int port = 0;
		memset(s, 0, sizeof(*s));
		s->backend_id = s->id = -1;
		if ((idx[C_BE_ID] >= 0 && num_field(f[idx[C_BE_ID]], 1L << 30, &s->backend_id)) ||
		    (idx[C_SRV_ID] >= 0 && num_field(f[idx[C_SRV_ID]], 1L << 30, &s->id)) ||
		    num_field(f[idx[C_OP]], 255, &s->op_state) ||
		    num_field(f[idx[C_ADMIN]], 0xffff, &s->admin_state) ||
		    num_field(f[idx[C_UWEIGHT]], 1L << 20, &s->weight) ||
		    num_field(f[idx[C_IWEIGHT]], 1L << 20, &s->initial_weight) ||
		    num_field(f[idx[C_PORT]], 65535, &port)) {
			rc = err_set(e, ERR_CORRUPT, "haproxy servers state line %zu has a malformed number",
				     lineno);
			break;
		}
		s->port = (unsigned)port;
		str_copy(s->backend, sizeof(s->backend), f[idx[C_BE_NAME]]);
		str_copy(s->name, sizeof(s->name), f[idx[C_SRV_NAME]]);
		str_copy(s->addr, sizeof(s->addr), f[idx[C_SRV_ADDR]]);
		if (idx[C_FQDN] >= 0 && strcmp(f[idx[C_FQDN]], "-") != 0)
			str_copy(s->fqdn, sizeof(s->fqdn), f[idx[C_FQDN]]);
		cnt++;
	}
	if (!rc && !have_version)
		rc = err_set(e, ERR_CORRUPT, "haproxy sent an empty servers state");
	free(copy);
	if (rc) {
		free(arr);
		return rc;
	}
	*out = arr;
	*n = cnt;
	return 0;
}

int haproxy_check_name(const char *what, const char *name, struct err *e)
{
	size_t len = name ? strlen(name) : 0;
	if (len == 0 || len >= HAPROXY_NAME_MAX ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		   "0123456789-_.:") != len)
		return err_set(e, ERR_USAGE,
			       "invalid haproxy %s name '%.*s': use letters, digits and - _ . :",
			       what, (int)(len > 200 ? 200 : len), name ? name : "");
	return 0;
}

int haproxy_servers_state(const char *socket_path, const char *backend,
			  int timeout_ms, struct haproxy_server **out,
			  size_t *n, struct err *e)
{
	struct buf cmd;
	char *reply = NULL;
	int rc = 0;

	*out = NULL;
	*n = 0;
	if (backend)
		rc = haproxy_check_name("backend", backend, e);
	if (rc)
		return rc;
	buf_init(&cmd, 1024);
	rc = buf_printf(&cmd, e, "show servers state%s%s", backend ? " " : "",
			backend ? backend : "");
	if (!rc)
		rc = haproxy_command(socket_path, cmd.data, timeout_ms, &reply, e);
	if (!rc) {
		rc = haproxy_parse_servers_state(reply, out, n, e);
		if (rc && backend)
			err_prefix(e, "backend '%s': ", backend);
	}
	free(reply);
	buf_release(&cmd);
	return rc;
}

/* ---- addresses ---- */

/* Parses an IP literal ("[...]" allowed); returns its family or 0. */
static int ip_parse(const char *s, unsigned char out[16])
{
	char tmp[64];
	size_t len = strlen(s);

	if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
		if (len - 2 >= sizeof(tmp))
			return 0;
		memcpy(tmp, s + 1, len - 2);
		tmp[len - 2] = '\0';
		s = tmp;
	}
	memset(out, 0, 16);
	if (inet_pton(AF_INET, s, out) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, s, out) == 1)
		return AF_INET6;
	return 0;
}

static bool ip_equal(int fa, const unsigned char *a, int fb,
		     const unsigned char *b)
{
	return fa && fa == fb && memcmp(a, b, fa == AF_INET ? 4 : 16) == 0;
}

const struct haproxy_server *haproxy_find_server(const struct haproxy_server *s,
						 size_t n, const char *backend,
						 const char *host,
						 unsigned port)
{
	unsigned char want[16], have[16];
	int fw = ip_parse(host, want);

	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++) {
			if (backend && strcmp(s[i].backend, backend) != 0)
				continue;
			if (s[i].port != port)
				continue;
			if (strcasecmp(s[i].addr, host) == 0)
				return &s[i];
			if (fw && ip_equal(fw, want, ip_parse(s[i].addr, have), have))
				return &s[i];
			if (!fw && s[i].fqdn[0] && strcasecmp(s[i].fqdn, host) == 0)
				return &s[i];
		}
		if (fw || pass == 1)
			break;
		/* A name in the config: compare what it resolves to. */
		struct addrinfo hints, *res = NULL;
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
			return NULL;
		for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
			unsigned char a[16];
			int fa = 0;
			memset(a, 0, sizeof(a));
			if (ai->ai_family == AF_INET) {
				memcpy(a, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
				fa = AF_INET;
			} else if (ai->ai_family == AF_INET6) {
				memcpy(a, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
				fa = AF_INET6;
			}
			for (size_t i = 0; fa && i < n; i++) {
				if ((backend && strcmp(s[i].backend, backend) != 0) ||
				    s[i].port != port)
					continue;
				if (ip_equal(fa, a, ip_parse(s[i].addr, have), have)) {
					freeaddrinfo(res);
					return &s[i];
				}
			}
		}
		freeaddrinfo(res);
		return NULL;
	}
	return NULL;
}

const char *haproxy_admin_state_name(int admin_state)
{
	if (admin_state & HAPROXY_ADMF_MAINT)
		return "maint";
	if (admin_state & HAPROXY_ADMF_DRAIN)
		return "drain";
	return "ready";
}

const char *haproxy_op_state_name(int op_state)
{
	switch (op_state) {
	case HAPROXY_OP_STOPPED: return "stopped";
	case HAPROXY_OP_STARTING: return "starting";
	case HAPROXY_OP_RUNNING: return "running";
	case HAPROXY_OP_STOPPING: return "stopping";
	default: return "unknown";
	}
}

bool haproxy_in_maint(const struct haproxy_server *s)
{
	return (s->admin_state & HAPROXY_ADMF_MAINT) != 0;
}

/* ---- commands ---- */

/* "<verb> BACKEND/SERVER<tail>", e.g. "set weight be/srv" + " 10". */
static int server_cmd(const char *socket_path, const char *verb,
		      const char *backend, const char *server,
		      const char *tail, int timeout_ms, struct err *e)
{
	struct buf cmd;
	int rc;

	if ((rc = haproxy_check_name("backend", backend, e)) != 0 ||
	    (rc = haproxy_check_name("server", server, e)) != 0)
		return rc;
	buf_init(&cmd, 1024);
	rc = buf_printf(&cmd, e, "%s %s/%s%s", verb, backend, server, tail);
	if (!rc)
		rc = haproxy_exec(socket_path, cmd.data, timeout_ms, e);
	buf_release(&cmd);
	return rc;
}

int haproxy_set_state(const char *socket_path, const char *backend,
		      const char *server, const char *state, int timeout_ms,
		      struct err *e)
{
	if (!state || (strcmp(state, "ready") != 0 && strcmp(state, "drain") != 0 &&
		       strcmp(state, "maint") != 0))
		return err_set(e, ERR_USAGE, "invalid haproxy server state '%s'",
			       state ? state : "");
	return server_cmd(socket_path, "set server", backend, server,
			  strcmp(state, "ready") == 0 ? " state ready"
			  : strcmp(state, "drain") == 0 ? " state drain"
			  : " state maint", timeout_ms, e);
}

int haproxy_shutdown_sessions(const char *socket_path, const char *backend,
			      const char *server, int timeout_ms,
			      struct err *e)
{
	return server_cmd(socket_path, "shutdown sessions server", backend,
			  server, "", timeout_ms, e);
}

int haproxy_set_weight(const char *socket_path, const char *backend,
		       const char *server, int weight, int timeout_ms,
		       struct err *e)
{
	char w[16];
	if (weight < 0 || weight > HAPROXY_WEIGHT_MAX)
		return err_set(e, ERR_USAGE, "haproxy weight %d is outside 0..%d",
			       weight, HAPROXY_WEIGHT_MAX);
	snprintf(w, sizeof(w), " %d", weight);
	return server_cmd(socket_path, "set weight", backend, server, w,
			  timeout_ms, e);
}

int haproxy_parse_weight(const char *reply, int *weight, int *initial_weight,
			 struct err *e)
{
	char t[300], *end;
	long w, iw;

	trimmed(reply ? reply : "", t, sizeof(t));
	if (t[0] < '0' || t[0] > '9')
		return err_set(e, *t ? ERR_REFUSED : ERR_CORRUPT, "haproxy: %s",
			       *t ? t : "empty answer to get weight");
	errno = 0;
	w = strtol(t, &end, 10);
	if (errno || strncmp(end, " (initial ", 10) != 0)
		return err_set(e, ERR_CORRUPT, "unexpected haproxy weight '%s'", t);
	iw = strtol(end + 10, &end, 10);
	if (errno || strcmp(end, ")") != 0 || w < 0 || iw < 0 ||
	    w > HAPROXY_WEIGHT_MAX || iw > HAPROXY_WEIGHT_MAX)
		return err_set(e, ERR_CORRUPT, "unexpected haproxy weight '%s'", t);
	*weight = (int)w;
	if (initial_weight)
		*initial_weight = (int)iw;
	return 0;
}

int haproxy_get_weight(const char *socket_path, const char *backend,
		       const char *server, int *weight, int *initial_weight,
		       int timeout_ms, struct err *e)
{
	struct buf cmd;
	char *reply = NULL;
	int rc;

	if ((rc = haproxy_check_name("backend", backend, e)) != 0 ||
	    (rc = haproxy_check_name("server", server, e)) != 0)
		return rc;
	buf_init(&cmd, 1024);
	rc = buf_printf(&cmd, e, "get weight %s/%s", backend, server);
	if (!rc)
		rc = haproxy_command(socket_path, cmd.data, timeout_ms, &reply, e);
	if (!rc)
		rc = haproxy_parse_weight(reply, weight, initial_weight, e);
	free(reply);
	buf_release(&cmd);
	return rc;
}
