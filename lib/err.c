/* struct err helpers, stable code names and the exit-status mapping. */
#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void err_init(struct err *e)
{
	memset(e, 0, sizeof(*e));
}

bool err_is_set(const struct err *e)
{
	return e && e->code != 0;
}

int err_setv(struct err *e, int code, const char *fmt, va_list ap)
{
	if (!e)
		return code;
	if (e->code != 0)
		return e->code;
	e->code = code;
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	return code;
}

int err_set(struct err *e, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	err_setv(e, code, fmt, ap);
	va_end(ap);
	return e && e->code ? e->code : code;
}

int err_set_errno(struct err *e, int code, int errnum, const char *fmt, ...)
{
	va_list ap;
	char buf[sizeof(e->msg)];
	char ebuf[128];
	const char *es;

	if (!e)
		return code;
	if (e->code != 0)
		return e->code;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* GNU strerror_r may return a static string instead of filling ebuf. */
	es = strerror_r(errnum, ebuf, sizeof(ebuf));
	e->sys_errno = errnum;
	return err_set(e, code, "%s: %s", buf, es);
}

void err_prefix(struct err *e, const char *fmt, ...)
{
	char pre[256];
	char old[sizeof(e->msg)];
	va_list ap;

	if (!e || e->code == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof(old));
	/* Truncation of an over-long message is acceptable: keep the start. */
	size_t pl = strlen(pre), ol = strlen(old);
	if (pl > sizeof(e->msg) - 1)
		pl = sizeof(e->msg) - 1;
	if (ol > sizeof(e->msg) - 1 - pl)
		ol = sizeof(e->msg) - 1 - pl;
	memcpy(e->msg, pre, pl);
	memcpy(e->msg + pl, old, ol);
	e->msg[pl + ol] = '\0';
}

static const struct {
	int code;
	const char *name;
	int exit_status;
} err_table[] = {
	{ ERR_OK, "ok", 0 },
	{ ERR_INTERNAL, "internal", 1 },
	{ ERR_USAGE, "usage", 2 },
	{ ERR_CONFIG, "config", 3 },
	{ ERR_IO, "io", 4 },
	{ ERR_DB_CONNECT, "db-connect", 5 },
	{ ERR_DB_QUERY, "db-query", 6 },
	{ ERR_STORAGE, "storage", 7 },
	{ ERR_CATALOG, "catalog", 8 },
	{ ERR_NOT_FOUND, "not-found", 9 },
	{ ERR_VERIFY, "verify", 10 },
	{ ERR_REFUSED, "refused", 11 },
	{ ERR_NOT_IMPLEMENTED, "not-implemented", 12 },
	{ ERR_TIMEOUT, "timeout", 13 },
	{ ERR_BUSY, "busy", 14 },
	{ ERR_ABORTED, "aborted", 15 },
	{ ERR_CORRUPT, "corrupt", 16 },
	{ ERR_NO_SPACE, "no-space", 17 },
	{ ERR_REPLICATION, "replication", 18 },
	{ ERR_NOTIFY, "notify", 19 },
	{ ERR_PERMISSION, "permission", 20 },
};

const char *err_code_name(int code)
{
	for (size_t i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++)
		if (err_table[i].code == code)
			return err_table[i].name;
	return "unknown";
}

int err_exit_status(int code)
{
	for (size_t i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++)
		if (err_table[i].code == code)
			return err_table[i].exit_status;
	return 1;
}

bool err_retryable(const struct err *e)
{
	if (!e)
		return false;
	switch (e->code) {
	case ERR_TIMEOUT:
	case ERR_BUSY:
	case ERR_NOTIFY:
		return true;
	case ERR_DB_CONNECT:
		/* Access denied (1045) will not fix itself; a refused or lost
		 * connection (2002, 2003, 2013) may. */
		return e->db_errno != 1045 && e->db_errno != 1044;
	case ERR_DB_QUERY:
		/* Lock wait timeout, deadlock, lost connection. */
		return e->db_errno == 1205 || e->db_errno == 1213 ||
		       e->db_errno == 2006 || e->db_errno == 2013;
	case ERR_STORAGE:
		return e->sys_errno == EIO || e->sys_errno == ETIMEDOUT ||
		       e->sys_errno == EAGAIN;
	default:
		return false;
	}
}
