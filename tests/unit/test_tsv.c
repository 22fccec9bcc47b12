/* Unit tests for the snapshot encoding: escaping, the whole-row encoder
 * against the field encoder, row counting and the column lists the dump
 * and the load build from the same table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tsv.h"

static void test_field_escapes(void **state)
{
	struct buf b;
	struct err e;
	const char in[] = { 'a', '\t', 'b', '\n', '\\', '\0', '\r', '\032', (char)0xff };
	err_init(&e);
	buf_init(&b, 0);
	assert_int_equal(tsv_append_field(&b, in, sizeof(in), false, &e), 0);
	assert_int_equal(b.len, 15);
	assert_memory_equal(b.data, "a\\tb\\n\\\\\\0\\r\\Z\xff", 15);
	buf_reset(&b);
	assert_int_equal(tsv_append_field(&b, NULL, 0, true, &e), 0);
	assert_string_equal(b.data, "\\N");
	buf_reset(&b);
	assert_int_equal(tsv_append_field(&b, "\\N", 2, false, &e), 0);
	assert_string_equal(b.data, "\\\\N");   /* the text \N is not NULL */
	buf_reset(&b);
	assert_int_equal(tsv_append_field(&b, "", 0, false, &e), 0);
	assert_int_equal(b.len, 0);              /* '' stays '' */
	buf_release(&b);
}

/* The whole-row encoder must produce exactly what field-by-field does, on
 * random rows full of bytes that need escaping. */
static void test_row_equals_fields(void **state)
{
	struct buf a, b;
	struct err e;
	unsigned seed = 12345;
	err_init(&e);
	buf_init(&a, 0);
	buf_init(&b, 0);
	for (int r = 0; r < 20000; r++) {
		char store[8][80];
		char *fields[8];
		unsigned long lens[8];
		unsigned nf = 1 + (unsigned)(rand_r(&seed) % 8);
		for (unsigned f = 0; f < nf; f++) {
			lens[f] = (unsigned long)(rand_r(&seed) % 80);
			for (unsigned long k = 0; k < lens[f]; k++) {
				int pick = rand_r(&seed) % 10;
				store[f][k] = pick == 0 ? '\\' : pick == 1 ? '\t' : pick == 2 ? '\n'
					    : pick == 3 ? '\0' : (char)(rand_r(&seed) & 0xff);
			}
			fields[f] = rand_r(&seed) % 7 == 0 ? NULL : store[f];
		}
		buf_reset(&a);
		buf_reset(&b);
		for (unsigned f = 0; f < nf; f++) {
			if (f)
				buf_append_char(&a, '\t', &e);
			tsv_append_field(&a, fields[f], fields[f] ? lens[f] : 0, fields[f] == NULL, &e);
		}
		buf_append_char(&a, '\n', &e);
		assert_int_equal(tsv_append_row(&b, fields, lens, nf, &e), 0);
		assert_int_equal(a.len, b.len);
		assert_memory_equal(a.data, b.data, a.len);
		assert_int_equal(tsv_count_rows(b.data, b.len), 1);
	}
	buf_release(&a);
	buf_release(&b);
}

static void test_column_lists(void **state)
{
	struct tsv_col cols[] = {
		{ "id", TSV_COL_RAW }, { "fl`ags", TSV_COL_BIT }, { "ip", TSV_COL_ASCII },
		{ "total", TSV_COL_GENERATED }, { "note", TSV_COL_RAW },
	};
	struct buf b;
	struct err e;
	err_init(&e);
	buf_init(&b, 0);
	assert_int_equal(tsv_select_list(&b, cols, 5, &e), 0);
	assert_string_equal(b.data, "`id`,`fl``ags`+0,`ip`,`note`");
	buf_reset(&b);
	assert_int_equal(tsv_load_columns(&b, cols, 5, &e), 0);
	assert_string_equal(b.data, "(`id`,@c1,@c2,`note`) SET `fl``ags`=CAST(@c1 AS UNSIGNED), `ip`=CONVERT(@c2 USING ascii)");
	buf_release(&b);
	assert_int_equal(tsv_col_kind_of("bit", ""), TSV_COL_BIT);
	assert_int_equal(tsv_col_kind_of("inet6", ""), TSV_COL_ASCII);
	assert_int_equal(tsv_col_kind_of("uuid", ""), TSV_COL_ASCII);
	assert_int_equal(tsv_col_kind_of("int", "VIRTUAL GENERATED"), TSV_COL_GENERATED);
	assert_int_equal(tsv_col_kind_of("int", "STORED GENERATED"), TSV_COL_GENERATED);
	assert_int_equal(tsv_col_kind_of("varchar", "auto_increment"), TSV_COL_RAW);
}

static void test_count_rows(void **state)
{
	assert_int_equal(tsv_count_rows("", 0), 0);
	assert_int_equal(tsv_count_rows("a\tb\n\\n\n", 7), 2);   /* escaped \n is data */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_field_escapes),
		cmocka_unit_test(test_row_equals_fields),
		cmocka_unit_test(test_column_lists),
		cmocka_unit_test(test_count_rows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
