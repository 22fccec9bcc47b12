/* Growable byte buffers with a hard maximum.
 *
 * Every string or SQL statement backupd builds goes through a struct buf:
 * no sprintf/strcat. The buffer is always NUL-terminated (data may also hold
 * NULs; len counts bytes). Growth past `max` fails with ERR_INTERNAL instead
 * of eating memory. Owner: whoever called buf_init releases with
 * buf_release. */
#ifndef BACKUPD_BUF_H
#define BACKUPD_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "err.h"

#define BUF_MAX_DEFAULT (64u * 1024u * 1024u)

struct buf {
	char *data;   /* NUL-terminated; never NULL after buf_init */
	size_t len;
	size_t cap;
	size_t max;   /* hard limit on len */
};

void buf_init(struct buf *b, size_t max);
void buf_release(struct buf *b);
void buf_reset(struct buf *b);
/* Hands the data to the caller (free() it) and re-initialises b. */
char *buf_detach(struct buf *b);

int buf_append(struct buf *b, const void *data, size_t n, struct err *e);
int buf_append_str(struct buf *b, const char *s, struct err *e);
int buf_append_char(struct buf *b, char c, struct err *e);
int buf_printf(struct buf *b, struct err *e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int buf_vprintf(struct buf *b, struct err *e, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
/* Reserves room for n more bytes; returns a pointer to write into. */
int buf_reserve(struct buf *b, size_t n, struct err *e);

/* Bounded string copy that always terminates; returns strlen(src). */
size_t str_copy(char *dst, size_t dst_size, const char *src);
/* Strict decimal parse: whole string, no sign games, within [min,max]. */
int str_to_long(const char *s, long min, long max, long *out);

#endif
