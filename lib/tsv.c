/* Encoding rows for LOAD DATA LOCAL INFILE; see tsv.h for the format and
 * why some column types need a load expression. Pure functions, any thread. */
#include "tsv.h"

#include <string.h>
#include <strings.h>

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

int tsv_append_field(struct buf *b, const char *data, size_t len, bool is_null,
		     struct err *e)
{
	size_t start, i;
	int rc;

	if (is_null)
		return buf_append(b, "\\N", 2, e);
	/* Worst case every byte doubles; reserve once, then copy runs. */
	rc = buf_reserve(b, len * 2, e);
	if (rc)
		return rc;
	char *out = b->data + b->len;
	for (start = 0, i = 0; i < len; i++) {
		char esc;
		switch (data[i]) {
		case '\\': esc = '\\'; break;
		case '\t': esc = 't'; break;
		case '\n': esc = 'n'; break;
		case '\r': esc = 'r'; break;
		case '\0': esc = '0'; break;
		case '\032': esc = 'Z'; break;
		default: continue;
		}
		memcpy(out, data + start, i - start);
		out += i - start;
		*out++ = '\\';
		*out++ = esc;
		start = i + 1;
	}
	memcpy(out, data + start, len - start);
	out += len - start;
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
