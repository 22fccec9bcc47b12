/* Control socket server and client; see control.h. Threading: one accept
 * thread, one detached thread per connection; the handler must be
 * thread-safe. */
#include "control.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "mem.h"

#define MOD "control"

struct control_server {
	int fd;
	char *path;
	control_handler_fn fn;
	void *ctx;
	pthread_t thread;
	volatile int stop;
	pthread_mutex_t lock;
	int active;                 /* connection threads alive */
	pthread_cond_t idle;
};

struct control_conn {
	struct control_server *s;
	int fd;
};

static int control_addr(const char *path, struct sockaddr_un *sa, struct err *e)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return err_set(e, ERR_CONFIG, "control socket path '%s' is too long", path);
	str_copy(sa->sun_path, sizeof(sa->sun_path), path);
	return 0;
}

/* Reads one '\n'-terminated line (without it) into b. */
static int control_read_line(int fd, struct buf *b, int timeout_ms, struct err *e)
{
	for (;;) {
		char c[4096];
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int pr = poll(&p, 1, timeout_ms);
		if (pr == 0)
			return err_set(e, ERR_TIMEOUT, "no reply on the control socket within %d ms", timeout_ms);
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			return err_set_errno(e, ERR_IO, errno, "unable to poll the control socket");
		}
		ssize_t n = recv(fd, c, sizeof(c), MSG_PEEK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_set_errno(e, ERR_IO, errno, "unable to read the control socket");
		if (n == 0)
			return err_set(e, ERR_IO, "the control socket was closed mid-message");
		char *nl = memchr(c, '\n', (size_t)n);
		size_t take = nl ? (size_t)(nl - c) + 1 : (size_t)n;
		n = recv(fd, c, take, 0);
		if (n <= 0)
			return err_set_errno(e, ERR_IO, errno, "unable to read the control socket");
		if (buf_append(b, c, nl ? (size_t)n - 1 : (size_t)n, e) != 0)
			return e->code;
		if (nl)
			return 0;
	}
}

static int control_write_json(int fd, json_t *j, struct err *e)
{
	char *s = json_dumps(j, JSON_COMPACT);
	size_t len, off = 0;
	int rc = 0;

	if (!s)
		return err_set(e, ERR_INTERNAL, "unable to encode a control message");
	len = strlen(s);
	s = xrealloc(s, len + 2);
	s[len++] = '\n';
	while (off < len) {
		ssize_t w = send(fd, s + off, len - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			rc = err_set_errno(e, ERR_IO, errno, "unable to write the control socket");
			break;
		}
		off += (size_t)w;
	}
	free(s);
	return rc;
}

static void *control_conn_main(void *arg)
{
	struct control_conn *c = arg;
	struct control_server *s = c->s;
	struct buf line;
	struct err e;
	json_t *req = NULL, *reply = NULL;
	json_error_t je;

	err_init(&e);
	buf_init(&line, CONTROL_LINE_MAX);
	if (control_read_line(c->fd, &line, 30000, &e) == 0) {
		req = json_loadb(line.data, line.len, 0, &je);
		if (!req || !json_is_object(req)) {
			err_set(&e, ERR_USAGE, "control request is not a JSON object: %s", je.text);
			reply = control_reply_err(&e);
		} else {
			reply = s->fn(s->ctx, req);
		}
		if (reply)
			control_write_json(c->fd, reply, &e);
	}
	json_decref(req);
	json_decref(reply);
	buf_release(&line);
	close(c->fd);
	free(c);
	pthread_mutex_lock(&s->lock);
	s->active--;
	pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static void *control_accept_main(void *arg)
{
	struct control_server *s = arg;

	log_set_job("control");
	while (!s->stop) {
		struct pollfd p = { .fd = s->fd, .events = POLLIN };
		if (poll(&p, 1, 200) <= 0)
			continue;
		int fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		struct control_conn *c = xcalloc(1, sizeof(*c));
		pthread_t t;
		pthread_attr_t at;
		c->s = s;
		c->fd = fd;
		pthread_mutex_lock(&s->lock);
		s->active++;
		pthread_mutex_unlock(&s->lock);
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &at, control_conn_main, c) != 0) {
			close(fd);
			free(c);
			pthread_mutex_lock(&s->lock);
			s->active--;
			pthread_mutex_unlock(&s->lock);
		}
		pthread_attr_destroy(&at);
	}
	return NULL;
}

int control_server_start(const char *path, control_handler_fn fn, void *ctx,
			 struct control_server **out, struct err *e)
{
	struct sockaddr_un sa;
	struct control_server *s;
	struct err pe;
	json_t *r = NULL;
	mode_t old;
	int rc;

	rc = control_addr(path, &sa, e);
	if (rc)
		return rc;
	/* A live daemon already answering there: refuse; a stale socket file
	 * from a crash: remove it. */
	err_init(&pe);
	if (control_call(path, json_pack("{s:s}", "verb", "ping"), 2000, &r, &pe) == 0) {
		json_decref(r);
		return err_set(e, ERR_BUSY, "another backupd already listens on control socket '%s'", path);
	}
	unlink(path);
	s = xcalloc(1, sizeof(*s));
	s->fn = fn;
	s->ctx = ctx;
	s->path = xstrdup(path);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->idle, NULL);
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		rc = err_set_errno(e, ERR_IO, errno, "unable to create control socket '%s'", path);
		goto fail;
	}
	/* Mode 0600 from the start: no window where others could connect. */
	old = umask(077);
	rc = bind(s->fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc != 0) {
		rc = err_set_errno(e, ERR_IO, errno, "unable to bind control socket '%s'", path);
		goto fail;
	}
	chmod(path, 0600);
	if (listen(s->fd, 16) != 0) {
		rc = err_set_errno(e, ERR_IO, errno, "unable to listen on control socket '%s'", path);
		goto fail;
	}
	if (pthread_create(&s->thread, NULL, control_accept_main, s) != 0) {
		rc = err_set(e, ERR_INTERNAL, "unable to start the control socket thread");
		goto fail;
	}
	*out = s;
	return 0;
fail:
	if (s->fd >= 0)
		close(s->fd);
	unlink(path);
	free(s->path);
	free(s);
	return rc;
}

void control_server_stop(struct control_server *s)
{
	if (!s)
		return;
	s->stop = 1;
	pthread_join(s->thread, NULL);
	close(s->fd);
	unlink(s->path);
	/* Connection threads hold s: wait for them (their handlers finish
	 * or fail fast once the daemon is stopping). */
	pthread_mutex_lock(&s->lock);
	while (s->active > 0)
		pthread_cond_wait(&s->idle, &s->lock);
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->idle);
	free(s->path);
	free(s);
}

int control_call(const char *path, json_t *request, int timeout_ms,
		 json_t **reply, struct err *e)
{
	struct sockaddr_un sa;
	struct buf line;
	json_error_t je;
	int fd, rc;

	*reply = NULL;
	rc = control_addr(path, &sa, e);
	if (rc) {
		json_decref(request);
		return rc;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		json_decref(request);
		return err_set_errno(e, ERR_IO, errno, "unable to create a socket");
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int en = errno;
		close(fd);
		json_decref(request);
		if (en == ENOENT || en == ECONNREFUSED)
			return err_set(e, ERR_NOT_FOUND, "no daemon at control socket '%s'", path);
		return err_set_errno(e, ERR_IO, en, "unable to connect to control socket '%s'", path);
	}
	rc = control_write_json(fd, request, e);
	json_decref(request);
	buf_init(&line, CONTROL_LINE_MAX);
	if (rc == 0)
		rc = control_read_line(fd, &line, timeout_ms, e);
	if (rc == 0) {
		*reply = json_loadb(line.data, line.len, 0, &je);
		if (!*reply)
			rc = err_set(e, ERR_IO, "the daemon sent an unreadable reply: %s", je.text);
	}
	buf_release(&line);
	close(fd);
	return rc;
}

json_t *control_reply_ok(void)
{
	return json_pack("{s:b}", "ok", 1);
}

json_t *control_reply_err(const struct err *e)
{
	return json_pack("{s:b, s:i, s:s}", "ok", 0, "code", e->code,
			 "error", e->msg);
}

int control_reply_check(json_t *reply, struct err *e)
{
	json_t *ok = json_object_get(reply, "ok");
	if (json_is_true(ok))
		return 0;
	int code = (int)json_integer_value(json_object_get(reply, "code"));
	const char *msg = json_string_value(json_object_get(reply, "error"));
	if (code >= 0 || code < ERR_CODE_MIN)
		code = ERR_INTERNAL;
	return err_set(e, code, "%s", msg ? msg : "the daemon reported a failure");
}
