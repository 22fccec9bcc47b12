/* Unit tests for the pure parts of the restore engine: --databases and
 * --tables parsing, the plan (filters, order, triggers with their table),
 * splitting secondary keys off CREATE TABLE, the LOAD DATA and session
 * statements, the replica proof's checksum statement, the password file
 * rule, and the verified local-infile stream read from a real zstd file in
 * a temp repository (good, damaged, truncated, missing, mismatched, through
 * the connector's callbacks). No server needed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checksum.h"
#include "manifest.h"
#include "mem.h"
#include "restore.h"
#include "restore_int.h"
#include "storage.h"
#include "zst.h"

#define OK(expr) do { \
	err_init(&e); \
	int rc_ = (expr); \
	if (rc_ != 0) \
		fail_msg("%s failed (%d): %s", #expr, rc_, e.msg); \
} while (0)

/* ---- name lists -------------------------------------------------------- */

static void test_parse_names(void **state)
{
	struct err e;
	char **v = NULL;
	size_t n = 0;

	(void)state;
	OK(restore_parse_names("a,b", &v, &n, &e));
	assert_int_equal(n, 2);
	assert_string_equal(v[0], "a");
	assert_string_equal(v[1], "b");
	restore_names_free(v, n);

	OK(restore_parse_names(" shop , `odd``db \"q\" ü`,`with,comma`", &v, &n, &e));
	assert_int_equal(n, 3);
	assert_string_equal(v[0], "shop");
	assert_string_equal(v[1], "odd`db \"q\" ü");
	assert_string_equal(v[2], "with,comma");
	restore_names_free(v, n);

	err_init(&e);
	assert_int_equal(restore_parse_names("a,,b", &v, &n, &e), ERR_USAGE);
	assert_non_null(strstr(e.msg, "empty name"));
	err_init(&e);
	assert_int_equal(restore_parse_names("", &v, &n, &e), ERR_USAGE);
	err_init(&e);
	assert_int_equal(restore_parse_names("`open", &v, &n, &e), ERR_USAGE);
	assert_non_null(strstr(e.msg, "unterminated"));
	err_init(&e);
	assert_int_equal(restore_parse_names("`a`b", &v, &n, &e), ERR_USAGE);
	assert_null(v);
}

static void test_parse_tables(void **state)
{
	struct err e;
	struct restore_table_name *v = NULL;
	size_t n = 0;

	(void)state;
	OK(restore_parse_tables("shop.orders,`odd.db`.`t,1`,`a``b`.c", &v, &n, &e));
	assert_int_equal(n, 3);
	assert_string_equal(v[0].schema, "shop");
	assert_string_equal(v[0].name, "orders");
	assert_string_equal(v[1].schema, "odd.db");
	assert_string_equal(v[1].name, "t,1");
	assert_string_equal(v[2].schema, "a`b");
	assert_string_equal(v[2].name, "c");
	restore_tables_free(v, n);

	/* Only the first unquoted dot splits. */
	OK(restore_parse_tables("db.t.x", &v, &n, &e));
	assert_string_equal(v[0].schema, "db");
	assert_string_equal(v[0].name, "t.x");
	restore_tables_free(v, n);

	err_init(&e);
	assert_int_equal(restore_parse_tables("orders", &v, &n, &e), ERR_USAGE);
	assert_non_null(strstr(e.msg, "db.table"));
	err_init(&e);
	assert_int_equal(restore_parse_tables("db.", &v, &n, &e), ERR_USAGE);
	err_init(&e);
	assert_int_equal(restore_parse_tables("a.b,", &v, &n, &e), ERR_USAGE);
	assert_null(v);
}

/* ---- secondary keys ----------------------------------------------------- */

static const char sb_table[] =
	"CREATE TABLE `sbtest1` (\n"
	"  `id` int(11) NOT NULL AUTO_INCREMENT,\n"
	"  `k` int(11) NOT NULL DEFAULT 0,\n"
	"  `c` char(120) NOT NULL DEFAULT '',\n"
	"  `pad` char(60) NOT NULL DEFAULT '',\n"
	"  PRIMARY KEY (`id`),\n"
	"  KEY `k_1` (`k`)\n"
	") ENGINE=InnoDB AUTO_INCREMENT=500001 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci";

static void test_split_keys(void **state)
{
	struct err e;
	char *c = NULL, *a = NULL;

	(void)state;
	OK(restore_split_keys(sb_table, &c, &a, &e));
	assert_non_null(c);
	assert_non_null(a);
	assert_string_equal(a, "ADD KEY `k_1` (`k`)");
	assert_string_equal(c,
		"CREATE TABLE `sbtest1` (\n"
		"  `id` int(11) NOT NULL AUTO_INCREMENT,\n"
		"  `k` int(11) NOT NULL DEFAULT 0,\n"
		"  `c` char(120) NOT NULL DEFAULT '',\n"
		"  `pad` char(60) NOT NULL DEFAULT '',\n"
		"  PRIMARY KEY (`id`)\n"
		") ENGINE=InnoDB AUTO_INCREMENT=500001 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci");
	free(c);
	free(a);

	/* Names and defaults holding commas, parentheses, quotes and
	 * "KEY" do not confuse it; FULLTEXT stays; UNIQUE goes. */
	OK(restore_split_keys(
		"CREATE TABLE `we``ird (KEY, x)` (\n"
		"  `a,b` int NOT NULL,\n"
		"  `v` varchar(20) DEFAULT 'it''s, (KEY `x`)',\n"
		"  `t` text COMMENT 'a \\' quote, )',\n"
		"  PRIMARY KEY (`a,b`),\n"
		"  UNIQUE KEY `u (1)` (`v`(10)),\n"
		"  KEY `k``2` (`v`,`a,b`) COMMENT 'x,y',\n"
		"  FULLTEXT KEY `ft` (`t`)\n"
		") ENGINE=InnoDB", &c, &a, &e));
	assert_non_null(c);
	assert_string_equal(a, "ADD UNIQUE KEY `u (1)` (`v`(10)), ADD KEY `k``2` (`v`,`a,b`) COMMENT 'x,y'");
	assert_non_null(strstr(c, "FULLTEXT KEY `ft` (`t`)\n) ENGINE=InnoDB"));
	assert_non_null(strstr(c, "PRIMARY KEY (`a,b`),\n  FULLTEXT"));
	assert_null(strstr(c, "UNIQUE"));
	free(c);
	free(a);

	/* No primary key: InnoDB would cluster on the unique key. */
	OK(restore_split_keys("CREATE TABLE `t` (\n  `a` int NOT NULL,\n  UNIQUE KEY `u` (`a`),\n  KEY `k` (`a`)\n)",
			      &c, &a, &e));
	assert_null(c);
	assert_null(a);
	/* Foreign keys need their index at creation. */
	OK(restore_split_keys("CREATE TABLE `child` (\n  `id` int NOT NULL,\n  `p` int,\n  PRIMARY KEY (`id`),\n"
			      "  KEY `p` (`p`),\n  CONSTRAINT `fk` FOREIGN KEY (`p`) REFERENCES `parent` (`id`)\n)",
			      &c, &a, &e));
	assert_null(c);
	/* Nothing to split. */
	OK(restore_split_keys("CREATE TABLE `t` (\n  `a` int NOT NULL,\n  PRIMARY KEY (`a`)\n)", &c, &a, &e));
	assert_null(c);
	OK(restore_split_keys("CREATE SEQUENCE `s` start with 1", &c, &a, &e));
	assert_null(c);
	err_init(&e);
	assert_int_equal(restore_split_keys("CREATE TABLE `t` (`a` int", &c, &a, &e), ERR_INTERNAL);
	err_init(&e);
	assert_int_equal(restore_split_keys("CREATE TABLE `t (", &c, &a, &e), ERR_INTERNAL);
}

/* ---- statements --------------------------------------------------------- */

static void test_sql_load(void **state)
{
	struct err e;
	struct manifest *m = manifest_new();
	struct buf b;
	size_t t = manifest_add_table(m, "odd`db", "Ω t", "InnoDB", "CREATE TABLE x (a int)");

	(void)state;
	OK(manifest_table_add_column(m, t, "id", TSV_COL_RAW, &e));
	OK(manifest_table_add_column(m, t, "b", TSV_COL_BIT, &e));
	OK(manifest_table_add_column(m, t, "g", TSV_COL_GENERATED, &e));
	OK(manifest_table_add_column(m, t, "ip", TSV_COL_ASCII, &e));
	buf_init(&b, 0);
	OK(restore_sql_load(&b, "backupd-7", &m->tables[t], &e));
	assert_string_equal(b.data,
		"LOAD DATA LOCAL INFILE 'backupd-7' INTO TABLE `odd``db`.`Ω t` CHARACTER SET binary "
		"(`id`,@c1,@c3) SET `b`=CAST(@c1 AS UNSIGNED), `ip`=CONVERT(@c3 USING ascii)");
	buf_release(&b);
	manifest_free(m);
}

static void test_sql_object_env(void **state)
{
	struct err e;
	struct buf b;
	bool warn = true;
	struct manifest_sql_env env = {
		.sql_mode = "STRICT_TRANS_TABLES,NO_ZERO_DATE",
		.character_set_client = "utf8mb4",
		.collation_connection = "utf8mb4_general_ci",
		.db_collation = "utf8mb4_general_ci",
	};

	(void)state;
	buf_init(&b, 0);
	OK(restore_sql_object_env(&b, &env, NULL, "CREATE TRIGGER `ü` ...", false, &warn, &e));
	assert_false(warn);
	assert_string_equal(b.data,
		"SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ZERO_DATE', "
		"SESSION character_set_client = 'utf8mb4', "
		"SESSION collation_connection = 'utf8mb4_general_ci'");
	buf_reset(&b);

	/* latin1 with an ASCII body is replayed as it was; with UTF-8 text
	 * it would be garbled, so utf8mb4 it is, with a warning. */
	env.character_set_client = "latin1";
	env.collation_connection = "latin1_swedish_ci";
	env.sql_mode = "";
	OK(restore_sql_object_env(&b, &env, "+00:00", "CREATE EVENT e ...", false, &warn, &e));
	assert_false(warn);
	assert_string_equal(b.data,
		"SET SESSION sql_mode = '', SESSION character_set_client = 'latin1', "
		"SESSION collation_connection = 'latin1_swedish_ci', SESSION time_zone = '+00:00'");
	buf_reset(&b);
	OK(restore_sql_object_env(&b, &env, "SYSTEM", "CREATE EVENT `é` ...", false, &warn, &e));
	assert_true(warn);
	assert_non_null(strstr(b.data, "character_set_client = 'utf8mb4'"));
	assert_non_null(strstr(b.data, "time_zone = 'SYSTEM'"));
	buf_reset(&b);
	/* A hostile sql_mode stays a string. */
	env.sql_mode = "x', SESSION sql_log_bin = 1 -- ";
	OK(restore_sql_object_env(&b, &env, NULL, "x", false, &warn, &e));
	assert_non_null(strstr(b.data, "'x\\', SESSION sql_log_bin = 1 -- '"));
	buf_release(&b);
}

static void test_sql_chunk_checksum(void **state)
{
	struct err e;
	struct buf b;
	char *cols[] = { "id", "we`ird", "n" };
	bool text[] = { false, true, false }, nullable[] = { false, true, true };
	struct restore_cmp_table t = { .schema = "odd'db", .name = "t", .cols = cols, .n_cols = 3,
				       .text = text, .nullable = nullable };

	(void)state;
	buf_init(&b, 0);
	OK(restore_sql_chunk_checksum(&b, "run-1", &t, 3, "`id` >= 5 AND `id` < 9", false, &e));
	assert_string_equal(b.data,
		"INSERT INTO `backupd`.`restore_checksums` (run_id, db, tbl, chunk, this_crc, this_cnt) "
		"SELECT 'run-1', 'odd\\'db', 't', 3, LPAD(HEX(BIT_XOR(CRC32(CONCAT_WS('#', `id`, "
		"CAST(`we``ird` AS BINARY), `n`, CONCAT(ISNULL(`we``ird`), ISNULL(`n`)))))), 8, '0'), "
		"COUNT(*) FROM `odd'db`.`t` WHERE `id` >= 5 AND `id` < 9");
	/* No nullable column: no flags. */
	nullable[1] = nullable[2] = false;
	buf_reset(&b);
	OK(restore_sql_chunk_checksum(&b, "r", &t, 0, NULL, false, &e));
	assert_non_null(strstr(b.data, "CONCAT_WS('#', `id`, CAST(`we``ird` AS BINARY), `n`)))), 8, '0')"));
	buf_reset(&b);
	OK(restore_sql_chunk_checksum(&b, "run-1", &t, 0, NULL, true, &e));
	assert_non_null(strstr(b.data, "'odd''db'"));
	assert_null(strstr(b.data, "WHERE"));
	buf_release(&b);
}

/* ---- the plan ------------------------------------------------------------ */

static void add_file(struct manifest *m, size_t t, int chunk, uint64_t raw)
{
	struct err e;
	struct manifest_file f;
	char path[128];

	memset(&f, 0, sizeof(f));
	snprintf(path, sizeof(path), "data/%05zu.x.%04d.tsv.zst", t, chunk);
	f.path = path;
	f.kind = MANIFEST_FILE_DATA;
	f.table = (int64_t)t;
	f.chunk = chunk;
	f.rows = 1;
	f.bytes_raw = raw;
	f.bytes_stored = raw / 2;
	checksum_of(path, strlen(path), f.checksum_raw);
	checksum_of(path, 3, f.checksum_stored);
	err_init(&e);
	if (manifest_add_file(m, &f, &e) < 0)
		fail_msg("manifest_add_file: %s", e.msg);
}

static struct manifest *plan_manifest(void)
{
	struct err e;
	struct manifest *m = manifest_new();
	struct manifest_sql_env env = { "", "utf8mb4", "utf8mb4_general_ci", "utf8mb4_general_ci" };
	size_t t;

	manifest_set_str(&m->id, "snap1");
	manifest_add_database(m, "shop", "CREATE DATABASE `shop`");
	manifest_add_database(m, "odd", "CREATE DATABASE `odd`");
	t = manifest_add_table(m, "shop", "small", "InnoDB", sb_table);
	OK(manifest_table_add_column(m, t, "id", TSV_COL_RAW, &e));
	add_file(m, t, 0, 10);
	t = manifest_add_table(m, "shop", "big", "InnoDB", sb_table);
	OK(manifest_table_add_column(m, t, "id", TSV_COL_RAW, &e));
	/* Registered out of chunk order: the plan sorts them. */
	add_file(m, t, 2, 300);
	add_file(m, t, 0, 100);
	add_file(m, t, 1, 200);
	t = manifest_add_table(m, "odd", "t", "InnoDB", "CREATE TABLE `t` (`a` int)");
	OK(manifest_table_add_column(m, t, "a", TSV_COL_RAW, &e));
	add_file(m, t, 0, 50);
	manifest_add_table(m, "odd", "empty", "InnoDB", "CREATE TABLE `empty` (`a` int)");
	manifest_add_view(m, "shop", "v", "CREATE VIEW `v` AS SELECT 1");
	manifest_add_view(m, "odd", "v2", "CREATE VIEW `v2` AS SELECT 1");
	manifest_add_trigger(m, "shop", "trg", "big", "CREATE TRIGGER ...", &env);
	manifest_add_trigger(m, "shop", "trg2", "small", "CREATE TRIGGER ...", &env);
	manifest_add_routine(m, "odd", "p", "PROCEDURE", "CREATE PROCEDURE ...", &env);
	manifest_add_event(m, "shop", "ev", "CREATE EVENT ...", "SYSTEM", &env);
	return m;
}

static void test_plan(void **state)
{
	struct err e;
	struct manifest *m = plan_manifest();
	struct restore_plan p;
	char *dbs[] = { "odd" };
	struct restore_table_name tabs[] = { { "shop", "big" } };
	struct restore_table_name bad_tab[] = { { "shop", "nope" } };
	char *bad_db[] = { "nope" };

	(void)state;
	/* Everything, largest table first, chunks in order. */
	OK(restore_plan_build(m, NULL, 0, NULL, 0, false, &p, &e));
	assert_false(p.filtered);
	assert_int_equal(p.n_dbs, 2);
	assert_int_equal(p.n_tables, 4);
	assert_string_equal(m->tables[p.tables[0].mi].name, "big");
	assert_int_equal(p.tables[0].n_files, 3);
	for (size_t k = 0; k < 3; k++)
		assert_int_equal(m->files[p.tables[0].files[k]].chunk, (int64_t)k);
	assert_int_equal(p.tables[0].bytes_raw, 600);
	assert_string_equal(m->tables[p.tables[1].mi].name, "t");
	assert_string_equal(m->tables[p.tables[3].mi].name, "empty");
	assert_int_equal(p.bytes_raw, 660);
	assert_int_equal(p.rows, 5);
	assert_int_equal(p.n_files, 5);
	assert_int_equal(p.n_views, 2);
	assert_int_equal(p.n_triggers, 2);
	assert_int_equal(p.n_routines, 1);
	assert_int_equal(p.n_events, 1);
	assert_null(p.tables[0].add_keys);
	restore_plan_release(&p);

	/* A whole database and one table of another: views, routines and
	 * events only of the whole one, triggers of the chosen table. */
	OK(restore_plan_build(m, dbs, 1, tabs, 1, true, &p, &e));
	assert_true(p.filtered);
	assert_int_equal(p.n_dbs, 2);
	assert_int_equal(p.n_tables, 3);
	assert_string_equal(m->tables[p.tables[0].mi].name, "big");
	assert_non_null(p.tables[0].add_keys);
	assert_string_equal(p.tables[0].add_keys, "ADD KEY `k_1` (`k`)");
	assert_int_equal(p.n_views, 1);
	assert_string_equal(m->views[p.views[0]].name, "v2");
	assert_int_equal(p.n_routines, 1);
	assert_int_equal(p.n_events, 0);
	assert_int_equal(p.n_triggers, 1);
	assert_string_equal(m->triggers[p.triggers[0]].name, "trg");
	restore_plan_release(&p);

	/* Only a table: its database is created, nothing else of it. */
	OK(restore_plan_build(m, NULL, 0, tabs, 1, false, &p, &e));
	assert_int_equal(p.n_dbs, 1);
	assert_string_equal(m->databases[p.dbs[0]].name, "shop");
	assert_int_equal(p.n_tables, 1);
	assert_int_equal(p.n_views + p.n_routines + p.n_events, 0);
	restore_plan_release(&p);

	err_init(&e);
	assert_int_equal(restore_plan_build(m, bad_db, 1, NULL, 0, false, &p, &e), ERR_NOT_FOUND);
	assert_string_equal(e.msg, "database 'nope' is not in snapshot 'snap1'");
	err_init(&e);
	assert_int_equal(restore_plan_build(m, NULL, 0, bad_tab, 1, false, &p, &e), ERR_NOT_FOUND);
	assert_string_equal(e.msg, "table 'shop.nope' is not in snapshot 'snap1'");
	manifest_free(m);
}

/* ---- password files ------------------------------------------------------ */

struct tmpdir {
	char path[64];
};

static int tmp_setup(void **state)
{
	struct tmpdir *t = xcalloc(1, sizeof(*t));

	snprintf(t->path, sizeof(t->path), "/tmp/test_restore.XXXXXX");
	if (!mkdtemp(t->path))
		return -1;
	*state = t;
	return 0;
}

static int tmp_teardown(void **state)
{
	struct tmpdir *t = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->path);
	if (system(cmd) != 0)
		return -1;
	free(t);
	return 0;
}

static void write_file(const char *path, const char *data, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_password_file(void **state)
{
	struct tmpdir *t = *state;
	struct err e;
	char path[128], *pw = NULL;

	snprintf(path, sizeof(path), "%s/pw", t->path);
	write_file(path, "s3cret\n", 0600);
	OK(restore_read_password_file(path, &pw, &e));
	assert_string_equal(pw, "s3cret");
	free(pw);
	write_file(path, "s3cret", 0400);
	OK(restore_read_password_file(path, &pw, &e));
	assert_string_equal(pw, "s3cret");
	free(pw);

	write_file(path, "s3cret\n", 0640);
	err_init(&e);
	assert_int_equal(restore_read_password_file(path, &pw, &e), ERR_PERMISSION);
	assert_non_null(strstr(e.msg, "accessible by group or others (mode 0640)"));
	assert_null(strstr(e.msg, "s3cret"));
	write_file(path, "", 0600);
	err_init(&e);
	assert_int_equal(restore_read_password_file(path, &pw, &e), ERR_USAGE);
	assert_non_null(strstr(e.msg, "empty"));
	write_file(path, "one\ntwo\n", 0600);
	err_init(&e);
	assert_int_equal(restore_read_password_file(path, &pw, &e), ERR_USAGE);
	assert_non_null(strstr(e.msg, "more than one line"));
	assert_null(strstr(e.msg, "two"));
	snprintf(path, sizeof(path), "%s/missing", t->path);
	err_init(&e);
	assert_int_equal(restore_read_password_file(path, &pw, &e), ERR_USAGE);
	assert_null(pw);
}

/* ---- the verified stream ---------------------------------------------------- */

struct sink {
	struct storage_file *f;
	struct checksum cks;
	uint64_t bytes;
};

static int sink_write(void *ctx, const void *data, size_t n, struct err *e)
{
	struct sink *s = ctx;
	int rc = storage_write(s->f, data, n, e);

	if (rc == 0) {
		checksum_update(&s->cks, data, n);
		s->bytes += n;
	}
	return rc;
}

/* Writes snap/data/f.tsv.zst: rows lines of varied bytes (escapes and
 * high bytes included), ~rows*60 bytes raw; fills mf as the manifest. */
static void write_data(struct storage *st, uint64_t rows, struct manifest_file *mf,
		       char *path_buf, size_t path_size)
{
	struct err e;
	struct sink s = { 0 };
	struct zst_writer *zw = NULL;
	struct checksum raw;
	char line[128];

	memset(mf, 0, sizeof(*mf));
	snprintf(path_buf, path_size, "data/00000.shop.t.0000.tsv.zst");
	mf->path = path_buf;
	mf->kind = MANIFEST_FILE_DATA;
	mf->table = 0;
	checksum_init(&s.cks);
	checksum_init(&raw);
	OK(storage_mkdir_p(st, "snap/data", &e));
	OK(storage_create(st, "snap/data/00000.shop.t.0000.tsv.zst", false, &s.f, &e));
	OK(zst_writer_new(1, sink_write, &s, &zw, &e));
	for (uint64_t r = 0; r < rows; r++) {
		int n = snprintf(line, sizeof(line), "%llu\tv\\t\\n\\0\xc3\xbc%llx\t\\N\n",
				 (unsigned long long)r, (unsigned long long)(r * 2654435761u));
		checksum_update(&raw, line, (size_t)n);
		mf->bytes_raw += (uint64_t)n;
		OK(zst_writer_write(zw, line, (size_t)n, &e));
	}
	OK(zst_writer_finish(zw, &e));
	zst_writer_free(zw);
	OK(storage_file_close(s.f, &e));
	mf->rows = rows;
	mf->bytes_stored = s.bytes;
	checksum_final(&raw, mf->checksum_raw);
	checksum_final(&s.cks, mf->checksum_stored);
	checksum_release(&raw);
	checksum_release(&s.cks);
}

/* Reads the whole stream in pieces of cap bytes; returns the final code. */
static int drain(struct restore_infile *in, size_t cap, uint64_t *bytes, struct err *e)
{
	char *buf = xmalloc(cap);
	int rc;

	*bytes = 0;
	for (;;) {
		size_t got = 0;

		rc = restore_infile_read(in, buf, cap, &got, e);
		if (rc || got == 0)
			break;
		*bytes += got;
	}
	free(buf);
	return rc;
}

static void flip_byte(const char *path, off_t at)
{
	int fd = open(path, O_RDWR);
	unsigned char c;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, at), 1);
	c ^= 0x5a;
	assert_int_equal(pwrite(fd, &c, 1, at), 1);
	close(fd);
}

static void test_infile(void **state)
{
	struct tmpdir *t = *state;
	struct err e;
	struct storage *st = NULL;
	struct manifest_file mf, bad;
	struct restore_infile in;
	atomic_uint_fast64_t progress = 0;
	char path[128], file[256];
	uint64_t bytes = 0;

	OK(storage_open(t->path, NULL, &st, &e));
	/* ~3 MB raw: several 1 MiB source reads and many small sink reads. */
	write_data(st, 50000, &mf, path, sizeof(path));
	memset(&in, 0, sizeof(in));

	/* Good file: read to a verified end, in odd-sized pieces. */
	OK(restore_infile_open(&in, st, "snap", &mf, 0, NULL, &progress, &e));
	OK(drain(&in, 4093, &bytes, &e));
	assert_true(in.done);
	assert_int_equal(bytes, mf.bytes_raw);
	assert_int_equal(in.rows, 50000);
	assert_int_equal(in.bytes_stored, mf.bytes_stored);
	assert_string_equal(in.checksum_raw, mf.checksum_raw);
	assert_int_equal(atomic_load(&progress), mf.bytes_raw);
	restore_infile_close(&in);
	restore_infile_close(&in);   /* twice is fine */

	/* A manifest that says otherwise: every difference names the file. */
	bad = mf;
	bad.rows = 49999;
	OK(restore_infile_open(&in, st, "snap", &bad, 0, NULL, NULL, &e));
	err_init(&e);
	assert_int_equal(drain(&in, 65536, &bytes, &e), ERR_VERIFY);
	assert_string_equal(e.msg, "file 'data/00000.shop.t.0000.tsv.zst': 50000 rows != manifest 49999");
	assert_false(in.done);
	bad = mf;
	bad.checksum_raw[10] = bad.checksum_raw[10] == 'a' ? 'b' : 'a';
	OK(restore_infile_open(&in, st, "snap", &bad, 0, NULL, NULL, &e));
	err_init(&e);
	assert_int_equal(drain(&in, 65536, &bytes, &e), ERR_VERIFY);
	assert_non_null(strstr(e.msg, "raw checksum"));
	bad = mf;
	bad.bytes_stored++;
	OK(restore_infile_open(&in, st, "snap", &bad, 0, NULL, NULL, &e));
	err_init(&e);
	assert_int_equal(drain(&in, 65536, &bytes, &e), ERR_VERIFY);
	assert_non_null(strstr(e.msg, "stored size"));
	/* After an error every read fails again. */
	{
		char b[16];
		size_t got = 1;

		err_init(&e);
		assert_int_equal(restore_infile_read(&in, b, sizeof(b), &got, &e), ERR_VERIFY);
		assert_int_equal(got, 0);
	}
	restore_infile_close(&in);

	/* Abort flag. */
	{
		volatile sig_atomic_t stop = 1;

		OK(restore_infile_open(&in, st, "snap", &mf, 0, &stop, NULL, &e));
		err_init(&e);
		assert_int_equal(drain(&in, 65536, &bytes, &e), ERR_ABORTED);
		restore_infile_close(&in);
	}

	/* A flipped byte in the middle of the stored file: zstd notices,
	 * the stream fails before its end, naming the file. */
	snprintf(file, sizeof(file), "%s/snap/%s", t->path, mf.path);
	flip_byte(file, (off_t)(mf.bytes_stored / 2));
	OK(restore_infile_open(&in, st, "snap", &mf, 0, NULL, NULL, &e));
	err_init(&e);
	assert_int_equal(drain(&in, 65536, &bytes, &e), ERR_VERIFY);
	assert_non_null(strstr(e.msg, "file 'data/00000.shop.t.0000.tsv.zst'"));
	assert_false(in.done);
	restore_infile_close(&in);
	flip_byte(file, (off_t)(mf.bytes_stored / 2));

	/* Truncated. */
	assert_int_equal(truncate(file, (off_t)(mf.bytes_stored - 7)), 0);
	OK(restore_infile_open(&in, st, "snap", &mf, 0, NULL, NULL, &e));
	err_init(&e);
	assert_int_equal(drain(&in, 65536, &bytes, &e), ERR_VERIFY);
	assert_non_null(strstr(e.msg, "damaged"));
	restore_infile_close(&in);

	/* Missing. */
	assert_int_equal(unlink(file), 0);
	err_init(&e);
	assert_int_equal(restore_infile_open(&in, st, "snap", &mf, 0, NULL, NULL, &e), ERR_VERIFY);
	assert_string_equal(e.msg, "file 'data/00000.shop.t.0000.tsv.zst' is missing from the repository");
	restore_infile_release(&in);
	storage_close(st);
}

/* Statements of about limit bytes, each ending after a row, which together
 * are exactly the file; the last one carries the verdict. */
static void test_infile_statements(void **state)
{
	struct tmpdir *t = *state;
	struct err e;
	struct storage *st = NULL;
	struct manifest_file mf, bad;
	struct restore_infile in;
	struct checksum all;
	char path[128], buf[3000], sum[CHECKSUM_HEX_MAX];
	uint64_t rows = 0, bytes = 0;
	unsigned stmts = 0;

	OK(storage_open(t->path, NULL, &st, &e));
	write_data(st, 20000, &mf, path, sizeof(path));
	memset(&in, 0, sizeof(in));
	checksum_init(&all);
	OK(restore_infile_open(&in, st, "snap", &mf, 100000, NULL, NULL, &e));
	while (!in.done) {
		uint64_t sbytes = 0;
		char last = '\n';

		restore_infile_next_statement(&in);
		for (;;) {
			size_t got = 0;

			OK(restore_infile_read(&in, buf, sizeof(buf), &got, &e));
			if (got == 0)
				break;
			checksum_update(&all, buf, got);
			sbytes += got;
			last = buf[got - 1];
		}
		assert_int_equal(last, '\n');
		assert_int_equal(sbytes, in.stmt_bytes);
		/* Cut at the first row end at or past the limit. */
		assert_true(in.done || (sbytes >= 100000 && sbytes < 100000 + 100));
		rows += in.stmt_rows;
		bytes += sbytes;
		stmts++;
		assert_true(stmts < 1000);
	}
	checksum_final(&all, sum);
	checksum_release(&all);
	assert_int_equal(rows, 20000);
	assert_int_equal(bytes, mf.bytes_raw);
	assert_string_equal(sum, mf.checksum_raw);
	assert_true(stmts >= mf.bytes_raw / 100000);
	restore_infile_close(&in);

	/* A mismatch fails the last statement, not the first ones. */
	bad = mf;
	bad.rows = 1;
	OK(restore_infile_open(&in, st, "snap", &bad, 100000, NULL, NULL, &e));
	stmts = 0;
	for (;;) {
		size_t got = 0;
		int rc;

		err_init(&e);
		rc = restore_infile_read(&in, buf, sizeof(buf), &got, &e);
		if (rc) {
			assert_int_equal(rc, ERR_VERIFY);
			assert_non_null(strstr(e.msg, "rows != manifest 1"));
			break;
		}
		if (got == 0) {
			assert_false(in.done);
			restore_infile_next_statement(&in);
			stmts++;
		}
	}
	assert_true(stmts >= 2);

	/* A row longer than a statement goes out whole. */
	OK(restore_infile_open(&in, st, "snap", &mf, 10, NULL, NULL, &e));
	restore_infile_next_statement(&in);
	{
		size_t got = 0;

		OK(restore_infile_read(&in, buf, sizeof(buf), &got, &e));
		assert_true(got > 10);
		assert_int_equal(buf[got - 1], '\n');
		assert_int_equal(in.stmt_rows, 1);
		OK(restore_infile_read(&in, buf, sizeof(buf), &got, &e));
		assert_int_equal(got, 0);
		assert_false(in.done);
	}
	restore_infile_release(&in);
	storage_close(st);
}

/* The connector's view: init, reads until 0, end; errors through -1 and
 * the error callback. */
static void test_infile_callbacks(void **state)
{
	struct tmpdir *t = *state;
	struct err e;
	struct storage *st = NULL;
	struct manifest_file mf, bad;
	struct restore_infile in;
	void *ptr = NULL;
	char path[128], buf[8192], msg[512];
	uint64_t total = 0;
	int n;

	OK(storage_open(t->path, NULL, &st, &e));
	write_data(st, 3000, &mf, path, sizeof(path));
	memset(&in, 0, sizeof(in));

	/* A request for a file nobody opened is refused. */
	assert_int_equal(restore_infile_cb_init(&ptr, "/etc/passwd", &in), 1);
	assert_int_equal(restore_infile_cb_error(ptr, msg, sizeof(msg)), 2000);
	assert_non_null(strstr(msg, "did not offer"));
	restore_infile_cb_end(ptr);

	OK(restore_infile_open(&in, st, "snap", &mf, 0, NULL, NULL, &e));
	assert_int_equal(restore_infile_cb_init(&ptr, "backupd-0", &in), 0);
	assert_ptr_equal(ptr, &in);
	while ((n = restore_infile_cb_read(ptr, buf, sizeof(buf))) > 0)
		total += (uint64_t)n;
	assert_int_equal(n, 0);
	assert_int_equal(total, mf.bytes_raw);
	restore_infile_cb_end(ptr);
	assert_true(in.done);
	/* The file stays open for another statement until closed. */
	assert_non_null(in.zr);
	restore_infile_close(&in);
	assert_null(in.zr);

	bad = mf;
	bad.rows = 1;
	OK(restore_infile_open(&in, st, "snap", &bad, 0, NULL, NULL, &e));
	assert_int_equal(restore_infile_cb_init(&ptr, "backupd-0", &in), 0);
	while ((n = restore_infile_cb_read(ptr, buf, sizeof(buf))) > 0)
		;
	assert_int_equal(n, -1);
	assert_int_equal(restore_infile_cb_error(ptr, msg, sizeof(msg)), 2000);
	assert_string_equal(msg, "file 'data/00000.shop.t.0000.tsv.zst': 3000 rows != manifest 1");
	restore_infile_cb_end(ptr);
	assert_int_equal(restore_infile_cb_read(NULL, buf, sizeof(buf)), -1);
	restore_infile_release(&in);
	storage_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_names),
		cmocka_unit_test(test_parse_tables),
		cmocka_unit_test(test_split_keys),
		cmocka_unit_test(test_sql_load),
		cmocka_unit_test(test_sql_object_env),
		cmocka_unit_test(test_sql_chunk_checksum),
		cmocka_unit_test(test_plan),
		cmocka_unit_test_setup_teardown(test_password_file, tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_infile, tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_infile_statements, tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_infile_callbacks, tmp_setup, tmp_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
