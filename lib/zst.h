/* In-process zstd streams: a writer that compresses into a sink callback and
 * a reader that decompresses from a source callback.
 *
 * Snapshot:  rows -> encoder -> zst_writer -> sink (storage file)
 * Restore:   source (storage file) -> zst_reader -> LOAD DATA read callback
 * Neither side ever holds a whole file: memory is bounded by the zstd
 * window plus one ZST_IO_CHUNK buffer. Frames carry a content checksum
 * (XXH64 of the raw data), so the reader detects corruption by itself.
 *
 * Owner: whoever calls zst_writer_new / zst_reader_new frees with
 * zst_writer_free / zst_reader_free. A writer or reader is used by one
 * thread at a time; zstd runs in the calling thread (nbWorkers 0), as
 * backupd parallelises across tables with its own workers. */
#ifndef BACKUPD_ZST_H
#define BACKUPD_ZST_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Size of the writes a writer hands to its sink: every sink call gets
 * exactly ZST_IO_CHUNK bytes except the last one of zst_writer_finish
 * (the NFS backend prefers ~1 MiB writes). Readers also ask their source
 * for up to this many bytes per call. */
#define ZST_IO_CHUNK (1024u * 1024u)

#define ZST_LEVEL_MIN 1
#define ZST_LEVEL_MAX 19

/* Must consume all n bytes or fail (return a negative ERR_* and fill e). */
typedef int (*zst_sink_fn)(void *ctx, const void *data, size_t n,
			   struct err *e);
/* Fills up to cap bytes and sets *got; *got == 0 means end of input.
 * Returns 0 or a negative ERR_* with e filled. */
typedef int (*zst_source_fn)(void *ctx, void *buf, size_t cap, size_t *got,
			     struct err *e);

struct zst_writer;

/* level: ZST_LEVEL_MIN..ZST_LEVEL_MAX, else ERR_CONFIG. sink and ctx are
 * borrowed for the writer's lifetime. Memory per writer is about 1.3 MiB
 * at level 1, 3.5 MiB at 3, 17 MiB at 9 and 90 MiB at 19, plus the 1 MiB
 * chunk: mind it when many workers compress at once.
 * Writer errors: whatever the sink returned (its message kept), or
 * ERR_INTERNAL when zstd itself fails. After an error every call fails. */
int zst_writer_new(int level, zst_sink_fn sink, void *ctx,
		   struct zst_writer **out, struct err *e);
/* Compresses n bytes; any size, including 0. Output reaches the sink in
 * ZST_IO_CHUNK pieces as it accumulates. */
int zst_writer_write(struct zst_writer *w, const void *data, size_t n,
		     struct err *e);
/* Ends the frame and hands everything left to the sink. The file is
 * complete only after this returns 0; no writes may follow. */
int zst_writer_finish(struct zst_writer *w, struct err *e);
/* NULL is a no-op. Freeing an unfinished writer drops its buffered output. */
void zst_writer_free(struct zst_writer *w);
/* Raw bytes accepted by zst_writer_write. */
uint64_t zst_writer_bytes_in(const struct zst_writer *w);
/* Compressed bytes handed to the sink so far. */
uint64_t zst_writer_bytes_out(const struct zst_writer *w);

struct zst_reader;

/* src and ctx are borrowed for the reader's lifetime. A reader holds the
 * 1 MiB input chunk plus the frame's window: at most 8 MiB for files
 * written by zst_writer, and frames asking for more than 128 MiB (zstd's
 * default limit) are refused as ERR_CORRUPT. */
int zst_reader_new(zst_source_fn src, void *ctx, struct zst_reader **out,
		   struct err *e);
/* Decompresses up to cap (> 0) bytes into buf. *got == 0 with 0 returned
 * means a clean end: the source ended right after a complete frame
 * (concatenated frames are read as one stream). Errors:
 *   ERR_VERIFY   a frame's content checksum does not match its data
 *   ERR_CORRUPT  truncated input (including an empty source), or data
 *                that is not a valid zstd frame (zstd's reason in the text)
 *   whatever the source returned.
 * Corruption is often found only at the end of a frame, after bad data has
 * already been returned: on any error the caller must discard everything
 * read from this stream. After an error every call fails again.
 * A source that ends exactly between two concatenated frames looks like a
 * shorter, valid stream: callers also check the stored size. */
int zst_reader_read(struct zst_reader *r, void *buf, size_t cap, size_t *got,
		    struct err *e);
/* NULL is a no-op. */
void zst_reader_free(struct zst_reader *r);
/* Compressed bytes taken from the source, raw bytes returned so far. */
uint64_t zst_reader_bytes_in(const struct zst_reader *r);
uint64_t zst_reader_bytes_out(const struct zst_reader *r);

#endif
