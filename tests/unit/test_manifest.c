/* Unit tests for lib/manifest: build -> JSON -> parse -> JSON is byte-equal,
 * odd names survive, the written key order is fixed (a golden file), and
 * every kind of damage a repository can hold is refused with ERR_CORRUPT and
 * a message naming the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "checksum.h"
#include "manifest.h"
#include "mem.h"

/* Names no real schema would pick but every one of them is legal. */
#define ODD_DB "\xc3\xbcn\xc3\xaf`c\xc3\xb8" "d\xc3\xa9\"db"
#define ODD_TABLE "we`ird \"t\xc3\xa5" "ble\" \xe8\xa1\xa8\t\\ '--\n/* x */"
#define ODD_COL "co`l \"\xf0\x9f\x98\x80\""

static void add_file(struct manifest *m, const char *path,
		     enum manifest_file_kind kind, int64_t table, int64_t chunk,
		     uint64_t rows, uint64_t raw, uint64_t stored)
{
	struct manifest_file f;
	struct err e;

	memset(&f, 0, sizeof(f));
	err_init(&e);
	f.path = (char *)path;
	f.kind = kind;
	f.table = table;
	f.chunk = chunk;
	f.rows = rows;
	f.bytes_raw = raw;
	f.bytes_stored = stored;
	checksum_of(path, strlen(path), f.checksum_raw);
	checksum_of(path, 1, f.checksum_stored);
	assert_true(manifest_add_file(m, &f, &e) >= 0);
	assert_false(err_is_set(&e));
}

static struct manifest *sample(void)
{
	struct manifest *m = manifest_new();
	struct manifest_sql_env env = {
		.sql_mode = "STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION",
		.character_set_client = "utf8mb4",
		.collation_connection = "utf8mb4_general_ci",
		.db_collation = "utf8mb4_unicode_ci",
	};
	char *grants[] = { "GRANT USAGE ON *.* TO `app`@`%`",
			   "GRANT SELECT, INSERT ON `shop`.* TO `app`@`%`" };
	char cks[CHECKSUM_HEX_MAX];
	struct err e;
	size_t t;

	err_init(&e);
	manifest_set_str(&m->id, "20261125T131500Z-3f9a");
	manifest_set_str(&m->cluster, "shop");
	manifest_set_str(&m->source.address, "127.0.0.1:3307");
	manifest_set_str(&m->source.role, "replica");
	m->source.server_id = 2;
	manifest_set_str(&m->source.flavor, "mariadb");
	manifest_set_str(&m->source.version, "10.11.19-MariaDB-log");
	manifest_set_str(&m->position.gtid, "0-1-1234,1-2-5");
	manifest_set_str(&m->position.binlog_file, "bin.000003");
	m->position.binlog_pos = 4567;
	manifest_set_str(&m->position.source_binlog_file, "bin.000001");
	m->position.source_binlog_pos = 999;
	manifest_set_str(&m->started_at, "2026-11-25T13:15:00.123Z");
	manifest_set_str(&m->finished_at, "2026-11-25T13:15:09.456Z");
	m->settings.threads = 2;
	m->settings.chunk_rows = 250000;
	m->settings.include_users = true;

	assert_int_equal(manifest_add_database(m, "shop", "CREATE DATABASE `shop`"), 0);
	assert_int_equal(manifest_add_database(m, ODD_DB,
					       "CREATE DATABASE `\xc3\xbcn\xc3\xaf``c\xc3\xb8"
					       "d\xc3\xa9\"db`"), 1);

	t = manifest_add_table(m, "shop", "orders", "InnoDB",
			       "CREATE TABLE `orders` (`id` int)");
	assert_int_equal(t, 0);
	assert_int_equal(manifest_table_add_column(m, t, "id", TSV_COL_RAW, &e), 0);
	assert_int_equal(manifest_table_add_column(m, t, "flags", TSV_COL_BIT, &e), 0);
	assert_int_equal(manifest_table_add_column(m, t, "total", TSV_COL_GENERATED, &e), 0);
	checksum_of("orders", 6, cks);
	assert_int_equal(manifest_table_set_checksum(m, t, cks, &e), 0);

	t = manifest_add_table(m, ODD_DB, ODD_TABLE, "MyISAM",
			       "CREATE TABLE `we``ird` (x int)");
	assert_int_equal(t, 1);
	assert_int_equal(manifest_table_add_column(m, t, ODD_COL, TSV_COL_ASCII, &e), 0);

	t = manifest_add_table(m, "shop", "empty", "InnoDB", "CREATE TABLE `empty` (a int)");
	assert_int_equal(t, 2);
	assert_int_equal(manifest_table_add_column(m, t, "a", TSV_COL_RAW, &e), 0);

	/* Out of chunk order on purpose: workers finish in any order. */
	add_file(m, "data/00000.shop.orders.0001.tsv.zst", MANIFEST_FILE_DATA, 0, 1,
		 400, 40000, 4000);
	add_file(m, "data/00000.shop.orders.0000.tsv.zst", MANIFEST_FILE_DATA, 0, 0,
		 600, 60000, 6000);
	add_file(m, "data/00001.___c__d__db.we_ird__t__ble______.0000.tsv.zst",
		 MANIFEST_FILE_DATA, 1, 0, 0, 0, 13);
	add_file(m, "schema/00000.shop.orders.sql", MANIFEST_FILE_SCHEMA, 0,
		 MANIFEST_NO_INDEX, 0, 120, 120);
	add_file(m, "schema/all.sql", MANIFEST_FILE_SCHEMA, MANIFEST_NO_INDEX,
		 MANIFEST_NO_INDEX, 0, 10, 10);

	manifest_add_view(m, "shop", "v `odd` \"view\"", "CREATE VIEW `v` AS SELECT 1");
	manifest_add_trigger(m, "shop", "t", "orders",
			     "CREATE TRIGGER `t` BEFORE INSERT ON `orders` FOR EACH ROW SET @x = 1",
			     &env);
	manifest_add_routine(m, "shop", "p", "PROCEDURE",
			     "CREATE PROCEDURE `p`() SELECT 'it''s'", &env);
	manifest_add_routine(m, "shop", "f", "FUNCTION",
			     "CREATE FUNCTION `f`() RETURNS int RETURN 1", &env);
	manifest_add_event(m, "shop", "e", "CREATE EVENT `e` ON SCHEDULE EVERY 1 DAY DO SELECT 1",
			   "SYSTEM", &env);
	manifest_add_user(m, "app", "%", "CREATE USER `app`@`%` IDENTIFIED BY PASSWORD '*AAAA'",
			  grants, 2);
	manifest_add_user(m, "", "localhost", "CREATE USER ``@`localhost`", NULL, 0);
	manifest_add_warning(m, "table `%s`.`%s` is MyISAM: dumped under a lock",
			     ODD_DB, ODD_TABLE);
	return m;
}

static char *to_json(const struct manifest *m, size_t *n)
{
	struct err e;
	char *out = NULL;

	err_init(&e);
	if (manifest_to_json(m, &out, n, &e) != 0)
		fail_msg("manifest_to_json: %s", e.msg);
	assert_non_null(out);
	assert_int_equal(strlen(out), *n);
	return out;
}

static struct manifest *parse_ok(const char *json, size_t n)
{
	struct manifest *m = NULL;
	struct err e;

	err_init(&e);
	if (manifest_parse(json, n, &m, &e) != 0)
		fail_msg("manifest_parse: %s", e.msg);
	assert_non_null(m);
	return m;
}

static void test_round_trip(void **state)
{
	struct manifest *m = sample(), *p;
	size_t n1, n2;
	char *j1 = to_json(m, &n1), *j2;

	p = parse_ok(j1, n1);
	j2 = to_json(p, &n2);
	assert_int_equal(n1, n2);
	assert_memory_equal(j1, j2, n1);
	assert_int_equal(j1[n1 - 1], '\n');

	/* The parsed struct holds what was built. */
	assert_string_equal(p->id, "20261125T131500Z-3f9a");
	assert_int_equal(p->version, MANIFEST_VERSION);
	assert_int_equal(p->source.server_id, 2);
	assert_int_equal(p->position.binlog_pos, 4567);
	assert_int_equal(p->n_tables, 3);
	assert_string_equal(p->tables[1].schema, ODD_DB);
	assert_string_equal(p->tables[1].name, ODD_TABLE);
	assert_string_equal(p->tables[1].columns[0].name, ODD_COL);
	assert_int_equal(p->tables[1].columns[0].kind, TSV_COL_ASCII);
	assert_int_equal(p->tables[0].columns[1].kind, TSV_COL_BIT);
	assert_int_equal(p->tables[0].columns[2].kind, TSV_COL_GENERATED);
	assert_null(p->tables[1].checksum);
	assert_int_equal(p->tables[0].rows, 1000);
	assert_int_equal(p->tables[0].n_files, 2);
	assert_string_equal(p->files[p->tables[0].files[0]].path,
			    "data/00000.shop.orders.0001.tsv.zst");
	assert_int_equal(p->files[p->tables[0].files[1]].chunk, 0);
	assert_int_equal(p->tables[2].n_files, 0);
	assert_int_equal(p->files[3].kind, MANIFEST_FILE_SCHEMA);
	assert_int_equal(p->files[3].table, 0);
	assert_int_equal(p->files[4].table, MANIFEST_NO_INDEX);
	assert_int_equal(p->files[4].chunk, MANIFEST_NO_INDEX);
	assert_string_equal(p->files[0].checksum_raw, m->files[0].checksum_raw);
	assert_int_equal(p->totals.rows, 1000);
	assert_int_equal(p->totals.bytes_raw, 100130);
	assert_int_equal(p->totals.bytes_stored, 10143);
	assert_int_equal(p->totals.files, 5);
	assert_int_equal(p->totals.tables, 3);
	assert_int_equal(p->n_users, 2);
	assert_string_equal(p->users[1].user, "");
	assert_int_equal(p->users[0].n_grants, 2);
	assert_int_equal(p->users[1].n_grants, 0);
	assert_string_equal(p->events[0].time_zone, "SYSTEM");
	assert_string_equal(p->routines[1].type, "FUNCTION");
	assert_string_equal(p->triggers[0].env.db_collation, "utf8mb4_unicode_ci");
	assert_true(p->settings.include_users);
	assert_non_null(strstr(p->warnings[0], ODD_TABLE));

	free(j1);
	free(j2);
	manifest_free(p);
	manifest_free(m);
}

/* A minimal manifest, byte for byte: pins the key order and layout that
 * docs/manifest.md describes. */
static const char golden[] =
	"{\n"
	"  \"format\": \"backupd-manifest\",\n"
	"  \"version\": 1,\n"
	"  \"id\": \"s1\",\n"
	"  \"cluster\": \"c\",\n"
	"  \"source\": {\n"
	"    \"address\": \"127.0.0.1:3306\",\n"
	"    \"role\": \"primary\",\n"
	"    \"server_id\": 1,\n"
	"    \"flavor\": \"mysql\",\n"
	"    \"version\": \"8.0.36\"\n"
	"  },\n"
	"  \"position\": {\n"
	"    \"gtid\": null,\n"
	"    \"binlog_file\": null,\n"
	"    \"binlog_pos\": null,\n"
	"    \"source_binlog_file\": null,\n"
	"    \"source_binlog_pos\": null\n"
	"  },\n"
	"  \"started_at\": \"2026-01-02T03:04:05.000Z\",\n"
	"  \"finished_at\": \"2026-01-02T03:04:06.500Z\",\n"
	"  \"settings\": {\n"
	"    \"threads\": 1,\n"
	"    \"compression\": \"zstd\",\n"
	"    \"compress_level\": 3,\n"
	"    \"checksum\": \"xxh128\",\n"
	"    \"encoding\": \"load-data-tsv-v1\",\n"
	"    \"chunk_rows\": 0,\n"
	"    \"include_users\": false\n"
	"  },\n"
	"  \"databases\": [],\n"
	"  \"tables\": [\n"
	"    {\n"
	"      \"schema\": \"d\",\n"
	"      \"name\": \"t\",\n"
	"      \"engine\": \"InnoDB\",\n"
	"      \"create_sql\": \"CREATE TABLE `t` (a int)\",\n"
	"      \"rows\": 7,\n"
	"      \"checksum\": null,\n"
	"      \"columns\": [\n"
	"        {\n"
	"          \"name\": \"a\",\n"
	"          \"kind\": \"raw\"\n"
	"        }\n"
	"      ],\n"
	"      \"files\": [\n"
	"        \"data/t.0.tsv.zst\"\n"
	"      ]\n"
	"    }\n"
	"  ],\n"
	"  \"views\": [],\n"
	"  \"triggers\": [],\n"
	"  \"routines\": [],\n"
	"  \"events\": [],\n"
	"  \"users\": [],\n"
	"  \"warnings\": [],\n"
	"  \"files\": [\n"
	"    {\n"
	"      \"path\": \"data/t.0.tsv.zst\",\n"
	"      \"kind\": \"data\",\n"
	"      \"table\": 0,\n"
	"      \"chunk\": 0,\n"
	"      \"rows\": 7,\n"
	"      \"bytes_raw\": 70,\n"
	"      \"bytes_stored\": 30,\n"
	"      \"checksum_raw\": \"xxh128:00112233445566778899aabbccddeeff\",\n"
	"      \"checksum_stored\": \"xxh128:ffeeddccbbaa99887766554433221100\"\n"
	"    }\n"
	"  ],\n"
	"  \"totals\": {\n"
	"    \"bytes_raw\": 70,\n"
	"    \"bytes_stored\": 30,\n"
	"    \"files\": 1,\n"
	"    \"tables\": 1,\n"
	"    \"rows\": 7\n"
	"  }\n"
	"}\n";

static struct manifest *minimal(void)
{
	struct manifest *m = manifest_new();
	struct manifest_file f;
	char ts[MANIFEST_TIME_MAX];
	struct err e;

	err_init(&e);
	manifest_set_str(&m->id, "s1");
	manifest_set_str(&m->cluster, "c");
	manifest_set_str(&m->source.address, "127.0.0.1:3306");
	manifest_set_str(&m->source.role, "primary");
	m->source.server_id = 1;
	manifest_set_str(&m->source.flavor, "mysql");
	manifest_set_str(&m->source.version, "8.0.36");
	/* 2026-01-02T03:04:05Z */
	assert_int_equal(manifest_time_format(1767323045.0, ts, &e), 0);
	manifest_set_str(&m->started_at, ts);
	assert_int_equal(manifest_time_format(1767323046.5, ts, &e), 0);
	manifest_set_str(&m->finished_at, ts);
	manifest_add_table(m, "d", "t", "InnoDB", "CREATE TABLE `t` (a int)");
	assert_int_equal(manifest_table_add_column(m, 0, "a", TSV_COL_RAW, &e), 0);
	memset(&f, 0, sizeof(f));
	f.path = "data/t.0.tsv.zst";
	f.kind = MANIFEST_FILE_DATA;
	f.rows = 7;
	f.bytes_raw = 70;
	f.bytes_stored = 30;
	str_copy(f.checksum_raw, sizeof(f.checksum_raw),
		 "xxh128:00112233445566778899aabbccddeeff");
	str_copy(f.checksum_stored, sizeof(f.checksum_stored),
		 "xxh128:ffeeddccbbaa99887766554433221100");
	assert_int_equal(manifest_add_file(m, &f, &e), 0);
	return m;
}

static void test_golden(void **state)
{
	struct manifest *m = minimal(), *p;
	size_t n, n2;
	char *j = to_json(m, &n), *j2;

	assert_string_equal(j, golden);
	p = parse_ok(golden, strlen(golden));
	assert_null(p->position.gtid);
	assert_null(p->position.binlog_file);
	j2 = to_json(p, &n2);
	assert_string_equal(j2, golden);
	free(j);
	free(j2);
	manifest_free(p);
	manifest_free(m);
}

/* ------------------------------------------------------------------ */
/* damaged manifests                                                    */

/* Walks "a.0.b" (numbers index arrays) to the parent of the last step. */
static json_t *walk(json_t *root, const char *path, char *last, size_t cap)
{
	char buf[256];
	char *save = NULL, *tok, *next;
	json_t *cur = root;

	str_copy(buf, sizeof(buf), path);
	tok = strtok_r(buf, ".", &save);
	while (tok && (next = strtok_r(NULL, ".", &save)) != NULL) {
		cur = json_is_array(cur) ? json_array_get(cur, strtoul(tok, NULL, 10))
					 : json_object_get(cur, tok);
		assert_non_null(cur);
		tok = next;
	}
	str_copy(last, cap, tok);
	return cur;
}

/* value: JSON text, or NULL to delete the member. */
static void mutate(json_t *root, const char *path, const char *value)
{
	char last[64];
	json_t *parent = walk(root, path, last, sizeof(last));
	json_t *v = NULL;
	json_error_t jerr;

	if (value) {
		v = json_loads(value, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
		if (!v)
			fail_msg("bad test value %s: %s", value, jerr.text);
	}
	if (json_is_array(parent)) {
		size_t i = strtoul(last, NULL, 10);
		if (v)
			assert_int_equal(json_array_set_new(parent, i, v), 0);
		else
			assert_int_equal(json_array_remove(parent, i), 0);
	} else if (v) {
		assert_int_equal(json_object_set_new(parent, last, v), 0);
	} else {
		assert_int_equal(json_object_del(parent, last), 0);
	}
}

static void expect_corrupt(const char *json, size_t n, const char *want)
{
	struct manifest *m = (struct manifest *)1;
	struct err e;
	int rc;

	err_init(&e);
	rc = manifest_parse(json, n, &m, &e);
	if (rc != ERR_CORRUPT || !strstr(e.msg, want))
		fail_msg("want ERR_CORRUPT with \"%s\", got %d \"%s\"", want, rc, e.msg);
	assert_int_equal(e.code, ERR_CORRUPT);
	assert_null(m);
	assert_null(strchr(e.msg, '\n'));
}

static const struct bad_case {
	const char *path1, *value1;
	const char *path2, *value2;
	const char *want;
} bad_cases[] = {
	/* paths that would leave the snapshot folder */
	{ "tables.0.files.0", "\"../../etc/passwd\"", NULL, NULL,
	  "manifest 'tables[0].files[0]': path '../../etc/passwd' escapes the snapshot folder" },
	{ "files.0.path", "\"data/../../etc/passwd\"", NULL, NULL,
	  "manifest 'files[0].path': path 'data/../../etc/passwd' escapes the snapshot folder" },
	{ "files.0.path", "\"/etc/passwd\"", NULL, NULL,
	  "manifest 'files[0].path': path '/etc/passwd' escapes the snapshot folder" },
	{ "files.0.path", "\"..\"", NULL, NULL,
	  "manifest 'files[0].path': path '..' escapes the snapshot folder" },
	{ "tables.0.files.1", "\"/data/x\"", NULL, NULL,
	  "manifest 'tables[0].files[1]': path '/data/x' escapes" },
	{ "files.0.path", "\"data//x.tsv.zst\"", NULL, NULL,
	  "manifest 'files[0].path': invalid path 'data//x.tsv.zst': empty path component" },
	{ "files.0.path", "\"data/x/\"", NULL, NULL,
	  "'files[0].path': invalid path 'data/x/': empty path component" },
	{ "files.0.path", "\"data/./x\"", NULL, NULL, "'files[0].path': invalid path" },
	{ "files.0.path", "\"\"", NULL, NULL, "'files[0].path': invalid path '': empty path" },
	{ "files.0.path", "\"data/a\\nb\"", NULL, NULL,
	  "'files[0].path': invalid path 'data/a?b': control character" },
	{ "files.0.path", "\"data\\\\..\\\\x\"", NULL, NULL, "'files[0].path': invalid path" },
	{ "files.0.path", "\"etc/passwd\"", NULL, NULL,
	  "'files[0].path': path 'etc/passwd' is not under 'data/' or 'schema/'" },
	{ "files.0.path", "\"data\"", NULL, NULL, "'files[0].path': path 'data' is not under" },
	{ "files.0.path", "\"schema/x.sql\"", NULL, NULL,
	  "'files[0].kind': a data file must be under 'data/'" },
	{ "files.0.path", "\"data/a\\u0000b\"", NULL, NULL, "manifest: invalid JSON" },
	/* checksums */
	{ "files.0.checksum_raw", "\"xxh128:XYZ\"", NULL, NULL,
	  "manifest 'files[0].checksum_raw': invalid checksum 'xxh128:XYZ'" },
	{ "files.1.checksum_stored", "\"md5:00112233445566778899aabbccddeeff\"", NULL, NULL,
	  "'files[1].checksum_stored': invalid checksum" },
	{ "files.0.checksum_raw", "\"xxh128:00112233445566778899AABBCCDDEEFF\"", NULL, NULL,
	  "'files[0].checksum_raw': invalid checksum" },
	{ "tables.0.checksum", "\"xxh128:0011\"", NULL, NULL,
	  "'tables[0].checksum': invalid checksum" },
	/* kinds */
	{ "tables.0.columns.1.kind", "\"blob\"", NULL, NULL,
	  "manifest 'tables[0].columns[1].kind': unknown column kind 'blob'" },
	{ "tables.0.columns.0.kind", "\"RAW\"", NULL, NULL, "'tables[0].columns[0].kind': unknown" },
	{ "files.0.kind", "\"index\"", NULL, NULL, "'files[0].kind': unknown file kind 'index'" },
	{ "routines.0.type", "\"MACRO\"", NULL, NULL, "'routines[0].type': unknown routine type" },
	{ "source.role", "\"leader\"", NULL, NULL, "'source.role': unknown role 'leader'" },
	/* versions and format */
	{ "version", "2", NULL, NULL,
	  "manifest version 2 is newer than this backupd understands" },
	{ "version", "0", NULL, NULL, "'version': unsupported version 0" },
	{ "version", "\"1\"", NULL, NULL, "'version': expected an integer, got a string" },
	{ "format", "\"mydumper\"", NULL, NULL,
	  "'format': expected 'backupd-manifest', got 'mydumper'" },
	{ "settings.encoding", "\"csv\"", NULL, NULL, "'settings.encoding': unsupported value 'csv'" },
	{ "settings.compression", "\"lz4\"", NULL, NULL, "'settings.compression': unsupported" },
	{ "settings.checksum", "\"sha256\"", NULL, NULL, "'settings.checksum': unsupported" },
	/* missing fields */
	{ "source.address", NULL, NULL, NULL, "manifest 'source.address': missing" },
	{ "totals", NULL, NULL, NULL, "manifest 'totals': missing" },
	{ "files.2.checksum_stored", NULL, NULL, NULL, "'files[2].checksum_stored': missing" },
	{ "tables.1.columns", NULL, NULL, NULL, "'tables[1].columns': missing" },
	{ "triggers.0.sql_mode", NULL, NULL, NULL, "'triggers[0].sql_mode': missing" },
	{ "events.0.time_zone", NULL, NULL, NULL, "'events[0].time_zone': missing" },
	{ "users.0.grants", NULL, NULL, NULL, "'users[0].grants': missing" },
	{ "position.gtid", NULL, NULL, NULL, "'position.gtid': missing" },
	{ "id", NULL, NULL, NULL, "manifest 'id': missing" },
	{ "warnings", NULL, NULL, NULL, "manifest 'warnings': missing" },
	/* wrong types */
	{ "settings.threads", "\"2\"", NULL, NULL,
	  "'settings.threads': expected an integer, got a string" },
	{ "settings.include_users", "1", NULL, NULL,
	  "'settings.include_users': expected a boolean, got an integer" },
	{ "tables", "{}", NULL, NULL, "manifest 'tables': expected an array, got an object" },
	{ "tables.1", "[]", NULL, NULL, "'tables[1]': expected an object, got an array" },
	{ "files.0.rows", "-1", NULL, NULL, "'files[0].rows': -1 is out of range" },
	{ "files.0.bytes_raw", "1.5", NULL, NULL,
	  "'files[0].bytes_raw': expected an integer, got a number" },
	{ "files.0.rows", "null", NULL, NULL, "'files[0].rows': expected an integer, got null" },
	{ "databases.0.name", "\"\"", NULL, NULL, "'databases[0].name': must not be empty" },
	{ "users.0.grants.1", "7", NULL, NULL, "'users[0].grants[1]': expected a string" },
	{ "warnings.0", "false", NULL, NULL, "'warnings[0]': expected a string, got a boolean" },
	{ "started_at", "\"yesterday\"", NULL, NULL, "'started_at': invalid time 'yesterday'" },
	{ "finished_at", "\"2026-02-29T00:00:00Z\"", NULL, NULL, "'finished_at': invalid time" },
	{ "source.server_id", "4294967296", NULL, NULL, "'source.server_id': 4294967296 is out of range" },
	/* indexes, chunks and lists */
	{ "files.0.table", "9", NULL, NULL,
	  "manifest 'files[0].table': table index 9 is out of range (3 tables)" },
	{ "files.0.table", "-1", NULL, NULL, "'files[0].table': table index -1 is out of range" },
	{ "files.4.table", "3", NULL, NULL, "'files[4].table': table index 3 is out of range" },
	{ "files.0.table", "null", NULL, NULL, "'files[0].table': a data file needs a table index" },
	{ "files.0.chunk", "null", NULL, NULL, "'files[0].chunk': a data file needs a chunk" },
	{ "files.4.chunk", "0", NULL, NULL, "'files[4].chunk': a schema file has no chunk" },
	{ "files.0.chunk", "0", NULL, NULL,
	  "'files[1].chunk': chunk 0 of table 0 is also in 'files[0]'" },
	{ "tables.0.files.1", "\"data/none.tsv.zst\"", NULL, NULL,
	  "'tables[0].files[1]': path 'data/none.tsv.zst' is not in 'files'" },
	{ "tables.0.files.1", "\"data/00000.shop.orders.0001.tsv.zst\"", NULL, NULL,
	  "'tables[0].files[1]': 'data/00000.shop.orders.0001.tsv.zst' is listed twice" },
	{ "tables.0.files.1", "\"schema/all.sql\"", NULL, NULL,
	  "'tables[0].files[1]': 'schema/all.sql' is not a data file" },
	{ "tables.1.files.0", "\"data/00000.shop.orders.0000.tsv.zst\"", NULL, NULL,
	  "'tables[1].files[0]': 'data/00000.shop.orders.0000.tsv.zst' belongs to table 0" },
	{ "tables.1.files.0", NULL, NULL, NULL,
	  "'files[2]': data file 'data/00001.___c__d__db.we_ird__t__ble______.0000.tsv.zst' is missing from 'tables[1].files'" },
	{ "tables.0.columns", "[]", NULL, NULL,
	  "'tables[0]': a table with data files needs its columns" },
	/* duplicates */
	{ "files.1.path", "\"data/00000.shop.orders.0001.tsv.zst\"", NULL, NULL,
	  "manifest 'files[1].path': duplicate path 'data/00000.shop.orders.0001.tsv.zst' (also in 'files[0]')" },
	/* totals and sums */
	{ "totals.rows", "1001", NULL, NULL,
	  "manifest 'totals.rows': 1001 does not match the sum over 'files' (1000)" },
	{ "totals.bytes_raw", "1", NULL, NULL, "'totals.bytes_raw': 1 does not match" },
	{ "totals.bytes_stored", "0", NULL, NULL, "'totals.bytes_stored': 0 does not match" },
	{ "totals.files", "4", NULL, NULL, "'totals.files': 4 does not match the number of files (5)" },
	{ "totals.tables", "2", NULL, NULL, "'totals.tables': 2 does not match" },
	{ "tables.0.rows", "999", NULL, NULL,
	  "'tables[0].rows': 999 does not match the sum of its files' rows (1000)" },
	/* values that end up in SQL or in folder names */
	{ "position.gtid", "\"0-1-1'; DROP TABLE x; --\"", NULL, NULL,
	  "'position.gtid': invalid GTID position" },
	{ "position.binlog_file", "\"bin'.000001\"", NULL, NULL,
	  "'position.binlog_file': invalid binary log name" },
	{ "position.binlog_pos", "null", NULL, NULL,
	  "'position.binlog_pos': null while 'binlog_file' is set" },
	{ "position.binlog_file", "null", NULL, NULL,
	  "'position.binlog_pos': set while 'binlog_file' is null" },
	{ "id", "\"../x\"", NULL, NULL, "manifest 'id': '../x' is not a valid folder name" },
	{ "cluster", "\"a/b\"", NULL, NULL, "'cluster': 'a/b' is not a valid folder name" },
	{ "id", "\".\"", NULL, NULL, "'id': '.' is not a valid folder name" },
};

static void test_bad_manifests(void **state)
{
	struct manifest *m = sample();
	size_t n;
	char *text = to_json(m, &n);
	json_error_t jerr;

	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		json_t *root = json_loadb(text, n, 0, &jerr);
		char *bad;

		assert_non_null(root);
		mutate(root, c->path1, c->value1);
		if (c->path2)
			mutate(root, c->path2, c->value2);
		bad = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
		assert_non_null(bad);
		expect_corrupt(bad, strlen(bad), c->want);
		free(bad);
		json_decref(root);
	}

	/* Sums that overflow 64 bits are refused, not wrapped. */
	{
		json_t *root = json_loadb(text, n, 0, &jerr);
		char *bad;

		assert_non_null(root);
		mutate(root, "files.0.rows", "9223372036854775807");
		mutate(root, "files.1.rows", "9223372036854775807");
		mutate(root, "files.2.rows", "9223372036854775807");
		bad = json_dumps(root, 0);
		expect_corrupt(bad, strlen(bad), "manifest 'files[2].rows': sum over all files overflows");
		free(bad);
		json_decref(root);
	}
	free(text);
	manifest_free(m);
}

static void test_bad_json(void **state)
{
	struct manifest *m = sample();
	size_t n;
	char *text = to_json(m, &n);
	static const char dup[] = "{\"format\": \"backupd-manifest\", \"format\": \"x\"}";
	static const char nul[] = "{\"format\"\0: 1}";
	static const char latin1[] = "{\"format\": \"\xff\"}";

	/* truncated anywhere */
	expect_corrupt(text, n / 2, "manifest: invalid JSON at line");
	expect_corrupt(text, n - 3, "manifest: invalid JSON at line");
	expect_corrupt(text, 0, "manifest: invalid JSON");
	expect_corrupt("[]", 2, "manifest: expected a JSON object, got an array");
	expect_corrupt("{}", 2, "manifest 'format': missing");
	expect_corrupt(dup, strlen(dup), "manifest: invalid JSON");
	expect_corrupt(nul, sizeof(nul) - 1, "manifest: invalid JSON");
	expect_corrupt(latin1, sizeof(latin1) - 1, "manifest: invalid JSON");
	/* the size limit is checked before anything is read */
	expect_corrupt(text, (size_t)MANIFEST_MAX_BYTES + 1,
		       "manifest: 268435457 bytes exceed the limit of 268435456");
	free(text);
	manifest_free(m);
}

static void test_too_many_files(void **state)
{
	struct manifest *m = minimal();
	size_t n, head, total;
	char *text = to_json(m, &n), *files, *big, *p;
	const size_t count = MANIFEST_MAX_FILES + 1;

	/* Replace the files array with 1,000,001 entries: the count alone is
	 * refused, before any entry is looked at. */
	files = strstr(text, "\"files\": [\n    {");
	assert_non_null(files);
	head = (size_t)(files - text) + strlen("\"files\": [");
	total = head + count * 2 + 4;
	big = xmalloc(total);
	memcpy(big, text, head);
	p = big + head;
	for (size_t i = 0; i < count; i++) {
		*p++ = '0';
		*p++ = i + 1 < count ? ',' : ']';
	}
	*p++ = '}';
	expect_corrupt(big, (size_t)(p - big),
		       "manifest 'files': 1000001 entries exceed the limit of 1000000");
	free(big);
	free(text);
	manifest_free(m);
}

static void test_unknown_keys_ignored(void **state)
{
	struct manifest *m = minimal(), *p;
	size_t n, n2;
	char *text = to_json(m, &n), *j2;
	json_error_t jerr;
	json_t *root = json_loadb(text, n, 0, &jerr);
	char *more;

	/* A later version 1 writer may add fields; a reader skips them. */
	mutate(root, "comment", "\"added later\"");
	mutate(root, "files.0.compressed_with", "{\"zstd\": \"1.5.4\"}");
	more = json_dumps(root, 0);
	p = parse_ok(more, strlen(more));
	j2 = to_json(p, &n2);
	assert_string_equal(j2, text);
	free(more);
	free(j2);
	json_decref(root);
	free(text);
	manifest_free(p);
	manifest_free(m);
}

static void expect_write_refused(const struct manifest *m, const char *want)
{
	struct err e;
	char *out = (char *)1;
	size_t n = 7;

	err_init(&e);
	assert_int_equal(manifest_to_json(m, &out, &n, &e), ERR_INTERNAL);
	if (!strstr(e.msg, want))
		fail_msg("want \"%s\", got \"%s\"", want, e.msg);
	assert_null(out);
	assert_int_equal(n, 0);
}

static void test_write_refuses_invalid(void **state)
{
	struct manifest *m = manifest_new();
	struct manifest_file f;
	struct err e;

	expect_write_refused(m, "refusing to write an invalid manifest: manifest 'id': expected a string, got null");
	manifest_free(m);

	m = minimal();
	manifest_set_str(&m->tables[0].name, "bad \xff utf-8");
	expect_write_refused(m, "'tables[0].name' is not valid UTF-8");
	manifest_free(m);

	m = minimal();
	manifest_add_view(m, "d", "v", NULL);
	expect_write_refused(m, "'views[0].create_sql': expected a string, got null");
	manifest_free(m);

	/* a second file for the same chunk */
	m = minimal();
	memset(&f, 0, sizeof(f));
	err_init(&e);
	f.path = "data/t.0.again.tsv.zst";
	str_copy(f.checksum_raw, sizeof(f.checksum_raw), m->files[0].checksum_raw);
	str_copy(f.checksum_stored, sizeof(f.checksum_stored), m->files[0].checksum_raw);
	assert_int_equal(manifest_add_file(m, &f, &e), 1);
	expect_write_refused(m, "'files[1].chunk': chunk 0 of table 0 is also in 'files[0]'");
	manifest_free(m);

	/* totals edited behind the adders' back */
	m = minimal();
	m->files[0].rows++;
	expect_write_refused(m, "'tables[0].rows': 7 does not match");
	manifest_free(m);
}

static void test_warnings_always_writable(void **state)
{
	struct manifest *m = minimal(), *p;
	char long_name[1100];
	size_t n;
	char *j;

	/* 1021 ASCII bytes then a 3-byte character: the 1023-byte cut falls
	 * inside it. */
	memset(long_name, 'a', 1021);
	memcpy(long_name + 1021, "\xe8\xa1\xa8", 4);
	manifest_add_warning(m, "%s", long_name);
	manifest_add_warning(m, "latin1 name '%s'", "caf\xe9");
	manifest_add_warning(m, "overlong \xc0\xaf, surrogate \xed\xa0\x80, ok \xc3\xa9");
	j = to_json(m, &n);
	p = parse_ok(j, n);
	assert_int_equal(p->n_warnings, 3);
	assert_int_equal(strlen(p->warnings[0]), 1023);
	assert_string_equal(p->warnings[0] + 1021, "??");
	assert_string_equal(p->warnings[1], "latin1 name 'caf?'");
	assert_string_equal(p->warnings[2], "overlong ??, surrogate ???, ok \xc3\xa9");
	free(j);
	manifest_free(p);
	manifest_free(m);
}

static void test_add_file_checks(void **state)
{
	static const struct {
		const char *path;
		enum manifest_file_kind kind;
		int64_t table, chunk;
		const char *cks;
		const char *want;
	} cases[] = {
		{ "data/../x", MANIFEST_FILE_DATA, 0, 0, NULL, "invalid path 'data/../x'" },
		{ "/data/x", MANIFEST_FILE_DATA, 0, 0, NULL, "invalid path '/data/x'" },
		{ "schema/x", MANIFEST_FILE_DATA, 0, 0, NULL, "does not fit its kind" },
		{ "data/x", MANIFEST_FILE_SCHEMA, MANIFEST_NO_INDEX, MANIFEST_NO_INDEX,
		  NULL, "does not fit its kind" },
		{ "data/x", MANIFEST_FILE_DATA, 1, 0, NULL, "needs a table (of 1) and a chunk" },
		{ "data/x", MANIFEST_FILE_DATA, MANIFEST_NO_INDEX, 0, NULL, "needs a table" },
		{ "data/x", MANIFEST_FILE_DATA, 0, -1, NULL, "needs a table" },
		{ "schema/x", MANIFEST_FILE_SCHEMA, MANIFEST_NO_INDEX, 0, NULL, "has a chunk" },
		{ "schema/x", MANIFEST_FILE_SCHEMA, 5, MANIFEST_NO_INDEX, NULL, "bad table" },
		{ "data/x", MANIFEST_FILE_DATA, 0, 1, "xxh128:zz", "invalid checksum" },
	};
	struct manifest *m = minimal();
	struct err e;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct manifest_file f;

		memset(&f, 0, sizeof(f));
		err_init(&e);
		f.path = (char *)cases[i].path;
		f.kind = cases[i].kind;
		f.table = cases[i].table;
		f.chunk = cases[i].chunk;
		str_copy(f.checksum_raw, sizeof(f.checksum_raw),
			 cases[i].cks ? cases[i].cks : m->files[0].checksum_raw);
		str_copy(f.checksum_stored, sizeof(f.checksum_stored),
			 m->files[0].checksum_raw);
		assert_int_equal(manifest_add_file(m, &f, &e), ERR_INTERNAL);
		if (!strstr(e.msg, cases[i].want))
			fail_msg("case %zu: want \"%s\", got \"%s\"", i, cases[i].want, e.msg);
	}
	/* nothing was added by the refused calls */
	assert_int_equal(m->n_files, 1);
	assert_int_equal(m->totals.files, 1);
	assert_int_equal(m->tables[0].n_files, 1);

	err_init(&e);
	assert_int_equal(manifest_table_add_column(m, 3, "x", TSV_COL_RAW, &e), ERR_INTERNAL);
	err_init(&e);
	assert_int_equal(manifest_table_add_column(m, 0, "x", (enum tsv_col_kind)9, &e),
			 ERR_INTERNAL);
	err_init(&e);
	assert_int_equal(manifest_table_set_checksum(m, 0, "xxh128:1", &e), ERR_INTERNAL);
	err_init(&e);
	assert_int_equal(manifest_table_set_checksum(m, 0, NULL, &e), 0);
	manifest_free(m);
	manifest_free(NULL);
}

static void test_times(void **state)
{
	static const char *bad[] = {
		"", "2026-11-25", "2026-11-25T13:15:00", "2026-11-25 13:15:00Z",
		"2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z", "2026-04-31T00:00:00Z",
		"2025-02-29T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T00:60:00Z",
		"2026-01-01T00:00:60Z", "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00.1234567890Z",
		"2026-01-01T00:00:00Zjunk", "2026-01-01T00:00:00+01:00", "+026-01-01T00:00:00Z",
	};
	char out[MANIFEST_TIME_MAX];
	struct err e;
	double t;

	err_init(&e);
	assert_int_equal(manifest_time_parse("1970-01-01T00:00:00Z", &t, &e), 0);
	assert_true(t == 0);
	assert_int_equal(manifest_time_parse("2024-02-29T23:59:59.5Z", &t, &e), 0);
	assert_true(t == 1709251199.5);
	assert_int_equal(manifest_time_parse("2000-03-01T00:00:00Z", &t, &e), 0);
	assert_true(t == 951868800);
	assert_int_equal(manifest_time_format(1764076500.123, out, &e), 0);
	assert_string_equal(out, "2025-11-25T13:15:00.123Z");
	assert_int_equal(manifest_time_parse(out, &t, &e), 0);
	assert_true(t > 1764076500.1225 && t < 1764076500.1235);
	/* .9996 rounds up into the next second */
	assert_int_equal(manifest_time_format(59.9996, out, &e), 0);
	assert_string_equal(out, "1970-01-01T00:01:00.000Z");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err_init(&e);
		if (manifest_time_parse(bad[i], &t, &e) != ERR_CORRUPT)
			fail_msg("accepted '%s'", bad[i]);
	}
	err_init(&e);
	assert_int_equal(manifest_time_format(-1, out, &e), ERR_INTERNAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_bad_manifests),
		cmocka_unit_test(test_bad_json),
		cmocka_unit_test(test_too_many_files),
		cmocka_unit_test(test_unknown_keys_ignored),
		cmocka_unit_test(test_write_refuses_invalid),
		cmocka_unit_test(test_warnings_always_writable),
		cmocka_unit_test(test_add_file_checks),
		cmocka_unit_test(test_times),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
