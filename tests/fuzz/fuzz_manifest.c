/* libFuzzer target for manifest_parse: manifest.json comes from a repository
 * that may be damaged or tampered with. Besides the sanitizers' checks it
 * asserts that every failure is ERR_CORRUPT with a one-line message, and that
 * whatever parses can be written again and reads back to the same bytes.
 *
 * Build and run (from the top of the tree):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE -Ilib -o build/fuzz_manifest tests/fuzz/fuzz_manifest.c lib/manifest.c lib/err.c lib/buf.c lib/mem.c lib/log.c lib/checksum.c lib/tsv.c lib/db.c lib/dialect.c lib/storage.c lib/storage/posix.c lib/storage/nfs.c $(pkg-config --cflags --libs jansson libxxhash libmariadb libnfs) -pthread
 *   mkdir -p /tmp/manifest-corpus   # seed it with real manifest.json files
 *   build/fuzz_manifest -max_total_time=60 -max_len=65536 /tmp/manifest-corpus
 * (tsv.c needs db.c for identifier quoting, and manifest.c uses the storage
 * path rules, hence the MariaDB and NFS libraries.) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest *m = NULL, *again = NULL;
	struct err e;
	char *j1 = NULL, *j2 = NULL;
	size_t n1 = 0, n2 = 0;

	err_init(&e);
	if (manifest_parse((const char *)data, size, &m, &e) != 0) {
		if (e.code != ERR_CORRUPT || m != NULL || !e.msg[0] ||
		    strchr(e.msg, '\n') || strncmp(e.msg, "manifest", 8) != 0)
			abort();
		return 0;
	}
	/* Accepted means usable: it must write, and read back identically. */
	if (manifest_to_json(m, &j1, &n1, &e) != 0)
		abort();
	if (manifest_parse(j1, n1, &again, &e) != 0)
		abort();
	if (manifest_to_json(again, &j2, &n2, &e) != 0 || n1 != n2 ||
	    memcmp(j1, j2, n1) != 0)
		abort();
	/* Every path a restore would open stays under data/ or schema/. */
	for (size_t i = 0; i < m->n_files; i++)
		if (strncmp(m->files[i].path, "data/", 5) != 0 &&
		    strncmp(m->files[i].path, "schema/", 7) != 0)
			abort();
	free(j1);
	free(j2);
	manifest_free(again);
	manifest_free(m);
	return 0;
}
