/* Logging: one line per event on stderr, text or JSON.
 *
 * Thread-safe: each line is formatted into a local buffer and written with a
 * single write(2). The level is checked before any formatting. Registered
 * secrets (passwords read from config) are replaced by "***" in every line as
 * a last line of defence; code must still never log them. */
#ifndef BACKUPD_LOG_H
#define BACKUPD_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_level {
	LOGL_ERROR = 0,
	LOGL_WARN,
	LOGL_INFO,
	LOGL_DEBUG,
	LOGL_TRACE,
};

enum log_format {
	LOG_FORMAT_TEXT = 0,
	LOG_FORMAT_JSON,
};

void log_setup(enum log_level level, enum log_format format);
void log_set_fd(int fd);
enum log_level log_get_level(void);
bool log_enabled(enum log_level level);
/* Parses "error|warn|info|debug|trace"; -1 when unknown. */
int log_level_parse(const char *s);
/* Job id shown on every line this thread logs; NULL clears. */
void log_set_job(const char *job_id);
/* Remembers a secret to mask; the string is copied. */
void log_register_secret(const char *secret);
void log_forget_secrets(void);

void log_msg(enum log_level level, const char *module, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_vmsg(enum log_level level, const char *module, const char *fmt,
	      va_list ap) __attribute__((format(printf, 3, 0)));

#define log_error(mod, ...) \
	do { if (log_enabled(LOGL_ERROR)) log_msg(LOGL_ERROR, mod, __VA_ARGS__); } while (0)
#define log_warn(mod, ...) \
	do { if (log_enabled(LOGL_WARN)) log_msg(LOGL_WARN, mod, __VA_ARGS__); } while (0)
#define log_info(mod, ...) \
	do { if (log_enabled(LOGL_INFO)) log_msg(LOGL_INFO, mod, __VA_ARGS__); } while (0)
#define log_debug(mod, ...) \
	do { if (log_enabled(LOGL_DEBUG)) log_msg(LOGL_DEBUG, mod, __VA_ARGS__); } while (0)
#define log_trace(mod, ...) \
	do { if (log_enabled(LOGL_TRACE)) log_msg(LOGL_TRACE, mod, __VA_ARGS__); } while (0)

/* Formats `s` as a JSON string literal (with quotes) into out. Shared by the
 * JSON log format and small hand-built JSON lines. */
struct buf;
struct err;
int json_quote(struct buf *out, const char *s, struct err *e);

#endif
