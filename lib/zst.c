/* zstd streaming writer and reader over sink/source callbacks.
 *
 * The writer batches compressed output into ZST_IO_CHUNK writes; the reader
 * pulls ZST_IO_CHUNK reads and maps zstd's errors onto ERR_VERIFY (content
 * checksum) and ERR_CORRUPT (anything else, including truncation). Errors
 * are sticky: a stream that failed once is never resumed half-way. */
#include "zst.h"

#include <stdbool.h>
#include <stdlib.h>

#include <zstd.h>
#include <zstd_errors.h>

#include "mem.h"

struct zst_writer {
	ZSTD_CCtx *cctx;
	zst_sink_fn sink;
	void *ctx;
	unsigned char *out;
	size_t out_cap;
	size_t out_len;
	uint64_t bytes_in;
	uint64_t bytes_out;
	int failed;        /* sticky ERR_* once anything failed */
	bool finished;
};

struct zst_reader {
	ZSTD_DCtx *dctx;
	zst_source_fn src;
	void *ctx;
	unsigned char *in;
	size_t in_cap;
	ZSTD_inBuffer ib;
	uint64_t bytes_in;
	uint64_t bytes_out;
	int failed;
	bool src_eof;
	/* A frame is started and not yet complete. True before any input so
	 * that an empty source counts as truncated, not as an empty file. */
	bool frame_open;
	/* The last call filled the caller's buffer: zstd may hold more output
	 * without needing more input. */
	bool flush_pending;
};

static size_t max_size(size_t a, size_t b)
{
	return a > b ? a : b;
}

/* Keeps the failure sticky and makes sure e says something even when a
 * callback forgot to fill it. */
static int writer_fail(struct zst_writer *w, int rc, struct err *e)
{
	if (rc >= 0)
		rc = ERR_INTERNAL;
	if (!err_is_set(e))
		err_set(e, rc, "zstd sink failed without a message");
	w->failed = rc;
	return rc;
}

static int writer_flush(struct zst_writer *w, struct err *e)
{
	int rc;

	if (w->out_len == 0)
		return 0;
	rc = w->sink(w->ctx, w->out, w->out_len, e);
	if (rc < 0)
		return writer_fail(w, rc, e);
	w->bytes_out += w->out_len;
	w->out_len = 0;
	return 0;
}

int zst_writer_new(int level, zst_sink_fn sink, void *ctx,
		   struct zst_writer **out, struct err *e)
{
	struct zst_writer *w;
	size_t r;

	*out = NULL;
	if (level < ZST_LEVEL_MIN || level > ZST_LEVEL_MAX)
		return err_set(e, ERR_CONFIG,
			       "zstd level %d out of range %d..%d", level,
			       ZST_LEVEL_MIN, ZST_LEVEL_MAX);
	if (!sink)
		return err_set(e, ERR_INTERNAL, "zstd writer needs a sink");
	w = xcalloc(1, sizeof(*w));
	w->cctx = ZSTD_createCCtx();
	if (!w->cctx) {
		free(w);
		return err_set(e, ERR_INTERNAL, "unable to create zstd compression context");
	}
	r = ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, level);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_nbWorkers, 0);
	if (ZSTD_isError(r)) {
		ZSTD_freeCCtx(w->cctx);
		free(w);
		return err_set(e, ERR_INTERNAL, "unable to set zstd parameters: %s",
			       ZSTD_getErrorName(r));
	}
	w->sink = sink;
	w->ctx = ctx;
	w->out_cap = max_size(ZST_IO_CHUNK, ZSTD_CStreamOutSize());
	w->out = xmalloc(w->out_cap);
	*out = w;
	return 0;
}

/* Runs the compressor until `in` is consumed (continue) or the frame is
 * fully flushed into w->out (end), sending each full chunk to the sink. */
static int writer_run(struct zst_writer *w, ZSTD_inBuffer *in,
		      ZSTD_EndDirective mode, struct err *e)
{
	for (;;) {
		ZSTD_outBuffer ob = { w->out, w->out_cap, w->out_len };
		size_t rem = ZSTD_compressStream2(w->cctx, &ob, in, mode);
		int rc;

		w->out_len = ob.pos;
		if (ZSTD_isError(rem)) {
			err_set(e, ERR_INTERNAL, "zstd compression failed: %s",
				ZSTD_getErrorName(rem));
			w->failed = ERR_INTERNAL;
			return ERR_INTERNAL;
		}
		if (w->out_len == w->out_cap) {
			rc = writer_flush(w, e);
			if (rc < 0)
				return rc;
			continue;
		}
		if (mode == ZSTD_e_end ? rem == 0 : in->pos == in->size)
			return 0;
	}
}

static int writer_check(struct zst_writer *w, struct err *e)
{
	if (w->failed)
		return err_set(e, w->failed, "zstd writer unusable after an earlier error");
	if (w->finished)
		return err_set(e, ERR_INTERNAL, "zstd writer used after finish");
	return 0;
}

int zst_writer_write(struct zst_writer *w, const void *data, size_t n,
		     struct err *e)
{
	ZSTD_inBuffer in = { data, n, 0 };
	int rc;

	rc = writer_check(w, e);
	if (rc < 0 || n == 0)
		return rc;
	rc = writer_run(w, &in, ZSTD_e_continue, e);
	if (rc < 0)
		return rc;
	w->bytes_in += n;
	return 0;
}

int zst_writer_finish(struct zst_writer *w, struct err *e)
{
	ZSTD_inBuffer in = { NULL, 0, 0 };
	int rc;

	rc = writer_check(w, e);
	if (rc < 0)
		return rc;
	rc = writer_run(w, &in, ZSTD_e_end, e);
	if (rc < 0)
		return rc;
	rc = writer_flush(w, e);
	if (rc < 0)
		return rc;
	w->finished = true;
	return 0;
}

void zst_writer_free(struct zst_writer *w)
{
	if (!w)
		return;
	ZSTD_freeCCtx(w->cctx);
	free(w->out);
	free(w);
}

uint64_t zst_writer_bytes_in(const struct zst_writer *w)
{
	return w->bytes_in;
}

uint64_t zst_writer_bytes_out(const struct zst_writer *w)
{
	return w->bytes_out;
}

int zst_reader_new(zst_source_fn src, void *ctx, struct zst_reader **out,
		   struct err *e)
{
	struct zst_reader *r;

	*out = NULL;
	if (!src)
		return err_set(e, ERR_INTERNAL, "zstd reader needs a source");
	r = xcalloc(1, sizeof(*r));
	/* The default window limit (ZSTD_WINDOWLOG_LIMIT_DEFAULT, 128 MiB)
	 * stays: levels 1..19 need at most 8 MiB, and a larger window in a
	 * stored file means it is not ours. */
	r->dctx = ZSTD_createDCtx();
	if (!r->dctx) {
		free(r);
		return err_set(e, ERR_INTERNAL, "unable to create zstd decompression context");
	}
	r->src = src;
	r->ctx = ctx;
	r->in_cap = max_size(ZST_IO_CHUNK, ZSTD_DStreamInSize());
	r->in = xmalloc(r->in_cap);
	r->ib.src = r->in;
	r->ib.size = 0;
	r->ib.pos = 0;
	r->frame_open = true;
	*out = r;
	return 0;
}

static int reader_fail(struct zst_reader *r, int rc, struct err *e)
{
	if (rc >= 0)
		rc = ERR_INTERNAL;
	if (!err_is_set(e))
		err_set(e, rc, "zstd source failed without a message");
	r->failed = rc;
	return rc;
}

static int reader_refill(struct zst_reader *r, struct err *e)
{
	size_t got = 0;
	int rc;

	rc = r->src(r->ctx, r->in, r->in_cap, &got, e);
	if (rc < 0)
		return reader_fail(r, rc, e);
	if (got > r->in_cap) {
		err_set(e, ERR_INTERNAL, "zstd source returned %zu bytes for a %zu-byte buffer",
			got, r->in_cap);
		return reader_fail(r, ERR_INTERNAL, e);
	}
	r->ib.size = got;
	r->ib.pos = 0;
	r->bytes_in += got;
	if (got == 0)
		r->src_eof = true;
	return 0;
}

static int reader_zstd_error(struct zst_reader *r, size_t ret, struct err *e)
{
	/* Approximate offset in the compressed stream where zstd gave up. */
	uint64_t at = r->bytes_in - (r->ib.size - r->ib.pos);

	if (ZSTD_getErrorCode(ret) == ZSTD_error_checksum_wrong) {
		err_set(e, ERR_VERIFY,
			"zstd content checksum mismatch in frame ending at compressed byte %llu: %s",
			(unsigned long long)at, ZSTD_getErrorName(ret));
		return reader_fail(r, ERR_VERIFY, e);
	}
	err_set(e, ERR_CORRUPT, "invalid zstd data near compressed byte %llu: %s",
		(unsigned long long)at, ZSTD_getErrorName(ret));
	return reader_fail(r, ERR_CORRUPT, e);
}

int zst_reader_read(struct zst_reader *r, void *buf, size_t cap, size_t *got,
		    struct err *e)
{
	ZSTD_outBuffer ob = { buf, cap, 0 };
	int rc;

	*got = 0;
	if (r->failed)
		return err_set(e, r->failed, "zstd reader unusable after an earlier error");
	if (cap == 0)
		return err_set(e, ERR_INTERNAL, "zstd read into an empty buffer");
	for (;;) {
		/* After a frame ended (frame_open false) zstd holds nothing
		 * back; calling it without input would start a new frame and
		 * make a clean end look truncated. */
		if (r->ib.pos < r->ib.size || (r->flush_pending && r->frame_open)) {
			size_t ret = ZSTD_decompressStream(r->dctx, &ob, &r->ib);

			if (ZSTD_isError(ret))
				return reader_zstd_error(r, ret, e);
			r->frame_open = ret != 0;
			r->flush_pending = ob.pos == ob.size;
			if (ob.pos == ob.size)
				break;
			continue;
		}
		/* Input used up and nothing buffered: hand back what we have
		 * rather than block on the source for more. */
		if (ob.pos > 0)
			break;
		if (r->src_eof) {
			if (!r->frame_open)
				break;
			if (r->bytes_in == 0)
				err_set(e, ERR_CORRUPT, "empty zstd stream: no frame");
			else
				err_set(e, ERR_CORRUPT,
					"truncated zstd stream: input ends inside a frame after %llu bytes",
					(unsigned long long)r->bytes_in);
			return reader_fail(r, ERR_CORRUPT, e);
		}
		rc = reader_refill(r, e);
		if (rc < 0)
			return rc;
	}
	r->bytes_out += ob.pos;
	*got = ob.pos;
	return 0;
}

void zst_reader_free(struct zst_reader *r)
{
	if (!r)
		return;
	ZSTD_freeDCtx(r->dctx);
	free(r->in);
	free(r);
}

uint64_t zst_reader_bytes_in(const struct zst_reader *r)
{
	return r->bytes_in;
}

uint64_t zst_reader_bytes_out(const struct zst_reader *r)
{
	return r->bytes_out;
}
