/* Errors: one struct err filled where a failure happens and passed up.
 *
 * Functions that can fail return 0 or a negative ERR_* code and fill the
 * struct err passed as their last argument. The first failure sets the
 * error; callers may prefix context (err_prefix) but never overwrite it.
 * Codes never change meaning: each maps to a documented backupctl exit
 * status (see err_exit_status and README "Exit status"). */
#ifndef BACKUPD_ERR_H
#define BACKUPD_ERR_H

#include <stdarg.h>
#include <stdbool.h>

enum err_code {
	ERR_OK = 0,
	ERR_INTERNAL = -1,       /* a bug or an impossible state */
	ERR_USAGE = -2,          /* bad command line */
	ERR_CONFIG = -3,         /* config file invalid, unsafe or missing */
	ERR_IO = -4,             /* local file or socket I/O */
	ERR_DB_CONNECT = -5,     /* server unreachable or login refused */
	ERR_DB_QUERY = -6,       /* a statement failed */
	ERR_STORAGE = -7,        /* repository I/O (local dir or NFS) */
	ERR_CATALOG = -8,        /* SQLite catalog */
	ERR_NOT_FOUND = -9,      /* no such snapshot, server, cluster, ... */
	ERR_VERIFY = -10,        /* checksum or count mismatch in stored data */
	ERR_REFUSED = -11,       /* a safety rule refused the operation */
	ERR_NOT_IMPLEMENTED = -12, /* the verb has not landed yet */
	ERR_TIMEOUT = -13,       /* a deadline passed */
	ERR_BUSY = -14,          /* a job of that kind already runs */
	ERR_ABORTED = -15,       /* stopped by a signal or an operator */
	ERR_CORRUPT = -16,       /* a manifest or file is malformed */
	ERR_NO_SPACE = -17,      /* repository or disk full */
	ERR_REPLICATION = -18,   /* replication broken or cannot be set up */
	ERR_NOTIFY = -19,        /* Slack or another notifier failed */
	ERR_PERMISSION = -20,    /* file mode unsafe or access denied */
};
#define ERR_CODE_MIN ERR_PERMISSION

struct err {
	int code;             /* enum err_code, 0 when no error */
	int sys_errno;        /* errno at the failure, 0 if none */
	unsigned db_errno;    /* server / client error number, 0 if none */
	char sqlstate[6];     /* SQLSTATE, "" if none */
	char msg[512];        /* one line: what failed, then the subject quoted */
};

void err_init(struct err *e);
bool err_is_set(const struct err *e);

/* Sets the error unless one is set already; returns code so that
 * `return err_set(e, ERR_IO, ...)` reads naturally. */
int err_set(struct err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int err_setv(struct err *e, int code, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
/* As err_set, appending ": strerror(errnum)" and recording errnum. */
int err_set_errno(struct err *e, int code, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Adds context before the message: "restore of 'x': " + old message. */
void err_prefix(struct err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Stable short name such as "config" or "verify". */
const char *err_code_name(int code);
/* Process exit status for a code: 0 for ERR_OK, 1..n otherwise. */
int err_exit_status(int code);
/* Whether retrying the same operation later may succeed. */
bool err_retryable(const struct err *e);

#endif
