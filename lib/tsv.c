/* Encoding rows for LOAD DATA LOCAL INFILE; see tsv.h for the format and
 * why some column types need a load expression. Pure functions, any thread. */
#include "tsv.h"

#include <string.h>
#include <strings.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "db.h"

enum tsv_col_kind tsv_col_kind_of(const char *data_type, const char *extra)
{
	if (extra && (strcasestr(extra, "VIRTUAL") || strcasestr(extra, "STORED") ||
		      strcasestr(extra, "PERSISTENT")))
		return TSV_COL_GENERATED;
	if (!data_type)
		return TSV_COL_RAW;
	if (strcasecmp(data_type, "bit") == 0)
		return TSV_COL_BIT;
	if (strcasecmp(data_type, "inet6") == 0 ||
	    strcasecmp(data_type, "inet4") == 0 ||
	    strcasecmp(data_type, "uuid") == 0)
		return TSV_COL_ASCII;
	return TSV_COL_RAW;
}

static const char *const tsv_kind_names[] = { "raw", "bit", "ascii", "generated" };

const char *tsv_col_kind_name(enum tsv_col_kind k)
{
	return (unsigned)k < 4 ? tsv_kind_names[k] : "raw";
}

int tsv_col_kind_parse(const char *s, enum tsv_col_kind *out)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, tsv_kind_names[i]) == 0) {
			*out = (enum tsv_col_kind)i;
			return 0;
		}
	return -1;
}

int tsv_select_list(struct buf *b, const struct tsv_col *cols, size_t n,
		    struct err *e)
{
	bool first = true;
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		if (cols[i].kind == TSV_COL_GENERATED)
			continue;
		if (!first)
			rc = buf_append_char(b, ',', e);
		first = false;
		if (rc == 0)
			rc = db_quote_ident(b, cols[i].name, e);
		if (rc == 0 && cols[i].kind == TSV_COL_BIT)
			rc = buf_append_str(b, "+0", e);
	}
	if (rc == 0 && first)
		rc = err_set(e, ERR_INTERNAL, "table has no dumpable column");
	return rc;
}

int tsv_load_columns(struct buf *b, const struct tsv_col *cols, size_t n,
		     struct err *e)
{
	bool first = true, any_set = false;
	int rc = buf_append_char(b, '(', e);

	for (size_t i = 0; i < n && rc == 0; i++) {
		if (cols[i].kind == TSV_COL_GENERATED)
			continue;
		if (!first)
			rc = buf_append_char(b, ',', e);
		first = false;
		if (rc)
			break;
		if (cols[i].kind == TSV_COL_RAW)
			rc = db_quote_ident(b, cols[i].name, e);
		else
			rc = buf_printf(b, e, "@c%zu", i);
	}
	if (rc == 0)
		rc = buf_append_char(b, ')', e);
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (cols[i].kind != TSV_COL_BIT && cols[i].kind != TSV_COL_ASCII)
			continue;
		rc = buf_append_str(b, any_set ? ", " : " SET ", e);
		any_set = true;
		if (rc == 0)
			rc = db_quote_ident(b, cols[i].name, e);
		if (rc == 0)
			rc = buf_printf(b, e,
					cols[i].kind == TSV_COL_BIT
						? "=CAST(@c%zu AS UNSIGNED)"
						: "=CONVERT(@c%zu USING ascii)",
					i);
	}
	return rc;
}

/* The escape letter of each byte LOAD DATA needs escaped, 0 for the rest. */
static const char tsv_esc[256] = {
	['\\'] = '\\', ['\t'] = 't', ['\n'] = 'n', ['\r'] = 'r',
	['\0'] = '0', ['\032'] = 'Z',
};

/* Index of the first byte of data[i..len) that needs escaping, or len.
 * Every such byte is below 0x20 or a backslash, so 16 bytes at a time are
 * tested for "<= 0x1f or == '\\'" and only the candidates are looked up:
 * most column text has none and is skipped at memory speed. */
static size_t tsv_next_special(const char *data, size_t i, size_t len)
{
#if defined(__SSE2__)
	const __m128i ctl = _mm_set1_epi8(0x1f), bsl = _mm_set1_epi8('\\');
	while (len - i >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(data + i));
		__m128i m = _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(v, ctl), v),
					 _mm_cmpeq_epi8(v, bsl));
		unsigned bits = (unsigned)_mm_movemask_epi8(m);
		while (bits) {
			size_t k = i + (size_t)__builtin_ctz(bits);
			if (tsv_esc[(unsigned char)data[k]])
				return k;
			bits &= bits - 1;
		}
		i += 16;
	}
#endif
	for (; i < len; i++)
		if (tsv_esc[(unsigned char)data[i]])
			return i;
	return len;
}

/* Escapes data[0..len) into out, which has room for 2 * len bytes; returns
 * the end of what was written. */
static char *tsv_escape(char *out, const char *data, size_t len)
{
	size_t start, i;

	for (start = 0; (i = tsv_next_special(data, start, len)) < len; start = i + 1) {
		memcpy(out, data + start, i - start);
		out += i - start;
		*out++ = '\\';
		*out++ = tsv_esc[(unsigned char)data[i]];
	}
	memcpy(out, data + start, len - start);
	return out + (len - start);
}

int tsv_append_field(struct buf *b, const char *data, size_t len, bool is_null,
		     struct err *e)
{
	int rc;

	if (is_null)
		return buf_append(b, "\\N", 2, e);
	/* Worst case every byte doubles; reserve once, then copy runs. */
	rc = buf_reserve(b, len * 2, e);
	if (rc)
		return rc;
	b->len = (size_t)(tsv_escape(b->data + b->len, data, len) - b->data);
	b->data[b->len] = '\0';
	return 0;
}

int tsv_append_row(struct buf *b, char *const *fields, const unsigned long *lens,
		   unsigned n, struct err *e)
{
	size_t need = n + 1;
	char *out;
	int rc;

	/* One reservation for the whole row: its worst case is every byte
	 * doubled plus the separators (a NULL takes 2 bytes, as "\\N"). */
	for (unsigned i = 0; i < n; i++)
		need += fields[i] ? 2 * (size_t)lens[i] : 2;
	rc = buf_reserve(b, need, e);
	if (rc)
		return rc;
	out = b->data + b->len;
	for (unsigned i = 0; i < n; i++) {
		if (i)
			*out++ = '\t';
		if (fields[i]) {
			out = tsv_escape(out, fields[i], lens[i]);
		} else {
			*out++ = '\\';
			*out++ = 'N';
		}
	}
	*out++ = '\n';
	b->len = (size_t)(out - b->data);
	b->data[b->len] = '\0';
	return 0;
}

uint64_t tsv_count_rows(const void *data, size_t n)
{
	const char *p = data, *end = p + n;
	uint64_t rows = 0;

	while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		rows++;
		p++;
	}
	return rows;
}
