/* struct buf: bounded growable buffers, plus small string helpers that
 * replace the banned unsafe C functions. */
#include "buf.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

void buf_init(struct buf *b, size_t max)
{
	b->cap = 64;
	b->data = xmalloc(b->cap);
	b->data[0] = '\0';
	b->len = 0;
	b->max = max ? max : BUF_MAX_DEFAULT;
}

void buf_release(struct buf *b)
{
	if (!b)
		return;
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	b->data[0] = '\0';
}

char *buf_detach(struct buf *b)
{
	char *p = b->data;
	buf_init(b, b->max);
	return p;
}

int buf_reserve(struct buf *b, size_t n, struct err *e)
{
	size_t need;

	if (n > b->max || b->len > b->max - n)
		return err_set(e, ERR_INTERNAL,
			       "buffer limit of %zu bytes exceeded", b->max);
	need = b->len + n + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap;
	while (cap < need)
		cap = cap < SIZE_MAX / 2 ? cap * 2 : need;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
	return 0;
}

int buf_append(struct buf *b, const void *data, size_t n, struct err *e)
{
	int rc = buf_reserve(b, n, e);
	if (rc)
		return rc;
	if (n)
		memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int buf_append_str(struct buf *b, const char *s, struct err *e)
{
	return buf_append(b, s, strlen(s), e);
}

int buf_append_char(struct buf *b, char c, struct err *e)
{
	return buf_append(b, &c, 1, e);
}

int buf_vprintf(struct buf *b, struct err *e, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;
	int rc;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return err_set(e, ERR_INTERNAL, "unable to format '%s'", fmt);
	rc = buf_reserve(b, (size_t)n, e);
	if (rc)
		return rc;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int buf_printf(struct buf *b, struct err *e, const char *fmt, ...)
{
	va_list ap;
	int rc;
	va_start(ap, fmt);
	rc = buf_vprintf(b, e, fmt, ap);
	va_end(ap);
	return rc;
}

size_t str_copy(char *dst, size_t dst_size, const char *src)
{
	size_t n = strlen(src);
	if (dst_size) {
		size_t c = n < dst_size - 1 ? n : dst_size - 1;
		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

int str_to_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (!s || !*s)
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}
