/* Log lines on stderr in text or JSON. Threading: any thread may log; the
 * level/format are set once at start-up, the secret list is guarded by a
 * mutex, the job id is thread-local. */
#include "log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "mem.h"

static enum log_level log_level_cur = LOGL_INFO;
static enum log_format log_format_cur = LOG_FORMAT_TEXT;
static int log_fd = 2;
static _Thread_local char log_job[64];

#define LOG_MAX_SECRETS 256
static pthread_mutex_t log_secret_lock = PTHREAD_MUTEX_INITIALIZER;
static char *log_secrets[LOG_MAX_SECRETS];
static size_t log_n_secrets;

static const char *const log_level_names[] = {
	"error", "warn", "info", "debug", "trace",
};

void log_setup(enum log_level level, enum log_format format)
{
	log_level_cur = level;
	log_format_cur = format;
}

void log_set_fd(int fd)
{
	log_fd = fd;
}

enum log_level log_get_level(void)
{
	return log_level_cur;
}

bool log_enabled(enum log_level level)
{
	return level <= log_level_cur;
}

int log_level_parse(const char *s)
{
	for (int i = 0; i <= LOGL_TRACE; i++)
		if (strcmp(s, log_level_names[i]) == 0)
			return i;
	return -1;
}

void log_set_job(const char *job_id)
{
	str_copy(log_job, sizeof(log_job), job_id ? job_id : "");
}

void log_register_secret(const char *secret)
{
	if (!secret || !*secret)
		return;
	pthread_mutex_lock(&log_secret_lock);
	for (size_t i = 0; i < log_n_secrets; i++)
		if (strcmp(log_secrets[i], secret) == 0)
			goto out;
	if (log_n_secrets < LOG_MAX_SECRETS)
		log_secrets[log_n_secrets++] = xstrdup(secret);
out:
	pthread_mutex_unlock(&log_secret_lock);
}

void log_forget_secrets(void)
{
	pthread_mutex_lock(&log_secret_lock);
	for (size_t i = 0; i < log_n_secrets; i++)
		free(log_secrets[i]);
	log_n_secrets = 0;
	pthread_mutex_unlock(&log_secret_lock);
}

/* Replaces every registered secret in b with "***". */
static void log_mask(struct buf *b)
{
	pthread_mutex_lock(&log_secret_lock);
	for (size_t i = 0; i < log_n_secrets; i++) {
		const char *s = log_secrets[i];
		size_t sl = strlen(s);
		char *p;
		while ((p = strstr(b->data, s)) != NULL) {
			size_t off = (size_t)(p - b->data);
			memmove(p + 3, p + sl, b->len - off - sl + 1);
			memcpy(p, "***", 3);
			b->len = b->len - sl + 3;
		}
	}
	pthread_mutex_unlock(&log_secret_lock);
}

int json_quote(struct buf *out, const char *s, struct err *e)
{
	int rc = buf_append_char(out, '"', e);
	for (const unsigned char *p = (const unsigned char *)s; !rc && *p; p++) {
		switch (*p) {
		case '"': rc = buf_append_str(out, "\\\"", e); break;
		case '\\': rc = buf_append_str(out, "\\\\", e); break;
		case '\n': rc = buf_append_str(out, "\\n", e); break;
		case '\r': rc = buf_append_str(out, "\\r", e); break;
		case '\t': rc = buf_append_str(out, "\\t", e); break;
		default:
			if (*p < 0x20)
				rc = buf_printf(out, e, "\\u%04x", *p);
			else
				rc = buf_append_char(out, (char)*p, e);
		}
	}
	return rc ? rc : buf_append_char(out, '"', e);
}

void log_vmsg(enum log_level level, const char *module, const char *fmt,
	      va_list ap)
{
	struct buf line, msg;
	struct timespec ts;
	struct tm tm;
	char when[96];
	struct err e;

	if (!log_enabled(level))
		return;
	err_init(&e);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (long)(ts.tv_nsec / 1000000) % 1000);

	buf_init(&msg, 64 * 1024);
	buf_vprintf(&msg, &e, fmt, ap);
	/* One line per event: fold newlines that crept into messages. */
	for (size_t i = 0; i < msg.len; i++)
		if (msg.data[i] == '\n' || msg.data[i] == '\r')
			msg.data[i] = ' ';

	buf_init(&line, 128 * 1024);
	if (log_format_cur == LOG_FORMAT_JSON) {
		buf_printf(&line, &e, "{\"ts\":\"%s\",\"level\":\"%s\",", when,
			   log_level_names[level]);
		if (log_job[0]) {
			buf_append_str(&line, "\"job\":", &e);
			json_quote(&line, log_job, &e);
			buf_append_char(&line, ',', &e);
		}
		buf_append_str(&line, "\"module\":", &e);
		json_quote(&line, module ? module : "", &e);
		buf_append_str(&line, ",\"msg\":", &e);
		json_quote(&line, msg.data, &e);
		buf_append_str(&line, "}\n", &e);
	} else {
		buf_printf(&line, &e, "%s %-5s %s%s%s%s: %s\n", when,
			   log_level_names[level], log_job[0] ? "[" : "",
			   log_job, log_job[0] ? "] " : "", module ? module : "",
			   msg.data);
	}
	log_mask(&line);
	ssize_t w = write(log_fd, line.data, line.len);
	(void)w;
	buf_release(&line);
	buf_release(&msg);
}

void log_msg(enum log_level level, const char *module, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, module, fmt, ap);
	va_end(ap);
}
