/* Streaming checksums for stored files and table contents (manifest.json).
 *
 * XXH3-128 from libxxhash: fast enough to run over every byte a snapshot
 * writes or a verify reads on a small machine, and 128 bits so that accidental
 * collisions are not a concern. The text form is "xxh128:" followed by 32
 * lowercase hex digits (the canonical big-endian form `xxhsum -H2` prints), so
 * a stored file can be checked by hand:  zstd -dc FILE | xxhsum -H2.
 * It detects corruption, not tampering: it is not a cryptographic hash.
 *
 * Owner: whoever calls checksum_init calls checksum_release (the hash state
 * lives on the heap because libxxhash needs it 64-byte aligned). One struct
 * checksum belongs to one thread at a time. */
#ifndef BACKUPD_CHECKSUM_H
#define BACKUPD_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define CHECKSUM_ALGO "xxh128"
/* "xxh128:" + 32 hex digits + NUL */
#define CHECKSUM_HEX_MAX 40

struct XXH3_state_s;

struct checksum {
	struct XXH3_state_s *state;  /* owned; NULL after release */
	uint64_t bytes;              /* total bytes fed so far */
};

/* Starts an empty checksum. Allocation failure aborts (as xmalloc does). */
void checksum_init(struct checksum *c);
void checksum_update(struct checksum *c, const void *data, size_t n);
/* Writes "xxh128:<32 hex>" for the bytes fed so far. Does not change the
 * state: more updates may follow and checksum_final may be called again. */
void checksum_final(struct checksum *c, char out[CHECKSUM_HEX_MAX]);
/* Frees the state; safe on a released or zeroed struct. */
void checksum_release(struct checksum *c);

/* One-shot form of init/update/final/release. */
void checksum_of(const void *data, size_t n, char out[CHECKSUM_HEX_MAX]);

/* Validates a checksum string read from a manifest: a known algorithm, ':'
 * and exactly the right number of lowercase hex digits, nothing else.
 * Returns 0 or ERR_CORRUPT. Compare valid checksums with strcmp. */
int checksum_parse(const char *s, struct err *e);
/* The hex digits after "algo:" in a string checksum_parse accepted, for
 * places that store algorithm and digits apart (the catalog's
 * checksum_algo / checksum columns). Borrowed from s; NULL without ':'. */
const char *checksum_hex_part(const char *s);

#endif
