/* The verified stream behind LOAD DATA LOCAL INFILE: a data file read from
 * the repository, decompressed by zst_reader and handed to the connector's
 * local-infile read callback, with its stored and raw sizes, checksums and
 * row count compared with the manifest before the server is told "end of
 * file". A damaged file therefore always ends its LOAD DATA with an error,
 * and the restore fails (dropping what it created) before the table counts
 * as done. A file may span several statements (see restore_int.h).
 *
 * Threading: a struct restore_infile and the storage it reads from belong to
 * one worker thread; the connector calls the callbacks in that thread. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"
#include "restore_int.h"
#include "tsv.h"
#include "zst.h"

/* Client error number the connector reports for a failed local infile
 * (CR_UNKNOWN_ERROR): the real reason is in restore_infile.err. */
#define INFILE_ERRNO 2000

/* Decompressed bytes are staged here so a statement can end exactly after
 * a row; the connector's own reads are smaller. */
#define INFILE_PEND_CAP (256u * 1024u)

static int infile_source(void *ctx, void *buf, size_t cap, size_t *got,
			 struct err *e)
{
	struct restore_infile *in = ctx;
	int rc = storage_read(in->f, buf, cap, got, e);

	if (rc == 0 && *got) {
		checksum_update(&in->cks_stored, buf, *got);
		in->bytes_stored += *got;
	}
	return rc;
}

void restore_infile_close(struct restore_infile *in)
{
	zst_reader_free(in->zr);
	in->zr = NULL;
	if (in->f)
		storage_file_close(in->f, NULL);
	in->f = NULL;
	if (in->cks_live) {
		checksum_release(&in->cks_raw);
		checksum_release(&in->cks_stored);
		in->cks_live = false;
	}
}

void restore_infile_release(struct restore_infile *in)
{
	restore_infile_close(in);
	free(in->pend);
	in->pend = NULL;
	in->pend_cap = 0;
}

int restore_infile_open(struct restore_infile *in, struct storage *st,
			const char *dir, const struct manifest_file *mf,
			uint64_t stmt_limit, volatile sig_atomic_t *abort_flag,
			atomic_uint_fast64_t *progress_raw, struct err *e)
{
	unsigned char *pend;
	size_t pend_cap;
	struct err oe;
	int rc;

	restore_infile_close(in);
	pend = in->pend;
	pend_cap = in->pend_cap;
	memset(in, 0, sizeof(*in));
	in->pend = pend ? pend : xmalloc(INFILE_PEND_CAP);
	in->pend_cap = pend ? pend_cap : INFILE_PEND_CAP;
	err_init(&in->err);
	in->st = st;
	in->mf = mf;
	in->stmt_limit = stmt_limit;
	in->abort_flag = abort_flag;
	in->progress_raw = progress_raw;
	if (snprintf(in->path, sizeof(in->path), "%s/%s", dir, mf->path) >=
	    (int)sizeof(in->path))
		return err_set(e, ERR_INTERNAL, "path '%s/%s' is too long", dir,
			       mf->path);
	err_init(&oe);
	rc = storage_open_read(st, in->path, &in->f, &oe);
	if (rc) {
		if (oe.sys_errno == ENOENT)
			rc = err_set(&in->err, ERR_VERIFY,
				     "file '%s' is missing from the repository",
				     mf->path);
		else
			in->err = oe;
		*e = in->err;
		return rc;
	}
	checksum_init(&in->cks_raw);
	checksum_init(&in->cks_stored);
	in->cks_live = true;
	rc = zst_reader_new(infile_source, in, &in->zr, &in->err);
	if (rc) {
		*e = in->err;
		restore_infile_close(in);
	}
	return rc;
}

void restore_infile_next_statement(struct restore_infile *in)
{
	in->stmt_bytes = 0;
	in->stmt_rows = 0;
	in->stmt_full = false;
}

/* Everything the manifest says about the file, checked at its end; the
 * most telling difference first (a damaged stored file explains the rest). */
static int infile_check_end(struct restore_infile *in)
{
	const struct manifest_file *mf = in->mf;
	char stored[CHECKSUM_HEX_MAX];

	checksum_final(&in->cks_stored, stored);
	checksum_final(&in->cks_raw, in->checksum_raw);
	if (in->bytes_stored != mf->bytes_stored)
		return err_set(&in->err, ERR_VERIFY,
			       "file '%s': stored size %" PRIu64 " bytes != manifest %" PRIu64,
			       mf->path, in->bytes_stored, mf->bytes_stored);
	if (strcmp(stored, mf->checksum_stored) != 0)
		return err_set(&in->err, ERR_VERIFY,
			       "file '%s': stored checksum %s != manifest %s",
			       mf->path, stored, mf->checksum_stored);
	if (in->bytes_raw != mf->bytes_raw)
		return err_set(&in->err, ERR_VERIFY,
			       "file '%s': raw size %" PRIu64 " bytes != manifest %" PRIu64,
			       mf->path, in->bytes_raw, mf->bytes_raw);
	if (strcmp(in->checksum_raw, mf->checksum_raw) != 0)
		return err_set(&in->err, ERR_VERIFY,
			       "file '%s': raw checksum %s != manifest %s",
			       mf->path, in->checksum_raw, mf->checksum_raw);
	if (in->rows != mf->rows)
		return err_set(&in->err, ERR_VERIFY,
			       "file '%s': %" PRIu64 " rows != manifest %" PRIu64,
			       mf->path, in->rows, mf->rows);
	return 0;
}

/* Refills the staging buffer once it is empty; at the end of the stream
 * checks the file and sets done. */
static int infile_fill(struct restore_infile *in)
{
	size_t got = 0;
	int rc;

	if (in->pend_pos < in->pend_len || in->done)
		return 0;
	if (!in->zr)
		return err_set(&in->err, ERR_INTERNAL, "file '%s' is not open",
			       in->mf ? in->mf->path : "?");
	if (in->abort_flag && *in->abort_flag)
		return err_set(&in->err, ERR_ABORTED, "restore aborted");
	rc = zst_reader_read(in->zr, in->pend, in->pend_cap, &got, &in->err);
	if (rc) {
		/* Bad zstd data is a verdict on the file: name it. Anything
		 * else (the repository could not be read) keeps its code. */
		if (in->err.code == ERR_CORRUPT || in->err.code == ERR_VERIFY) {
			struct err ze = in->err;

			err_init(&in->err);
			err_set(&in->err, ERR_VERIFY, "file '%s' is damaged: %s",
				in->mf->path, ze.msg);
		} else if (in->err.code == ERR_STORAGE || in->err.code == ERR_NO_SPACE) {
			err_prefix(&in->err, "reading file '%s': ", in->mf->path);
		}
		return in->err.code;
	}
	in->pend_pos = 0;
	in->pend_len = got;
	if (got == 0) {
		rc = infile_check_end(in);
		if (rc == 0)
			in->done = true;
		return rc;
	}
	checksum_update(&in->cks_raw, in->pend, got);
	in->bytes_raw += got;
	in->rows += tsv_count_rows(in->pend, got);
	if (in->progress_raw)
		atomic_fetch_add(in->progress_raw, got);
	return 0;
}

int restore_infile_read(struct restore_infile *in, void *buf, size_t cap,
			size_t *got, struct err *e)
{
	size_t n;
	int rc;

	*got = 0;
	if (!err_is_set(&in->err) && !in->done) {
		/* A full statement ends here; looking ahead first means the
		 * last statement of a file already carries its verdict. */
		rc = infile_fill(in);
		if (rc == 0 && (in->stmt_full || in->done))
			return 0;
	}
	if (err_is_set(&in->err)) {
		*e = in->err;
		return in->err.code;
	}
	if (in->done)
		return 0;
	n = in->pend_len - in->pend_pos;
	if (n > cap)
		n = cap;
	if (in->stmt_limit && in->stmt_bytes + n >= in->stmt_limit) {
		/* The statement ends after the first row that reaches the
		 * limit; a row still going on goes out whole. */
		size_t from = in->stmt_bytes + 1 >= in->stmt_limit
				      ? 0 : (size_t)(in->stmt_limit - in->stmt_bytes - 1);
		const unsigned char *p = in->pend + in->pend_pos;
		const unsigned char *nl = memchr(p + from, '\n', n - from);

		if (nl) {
			n = (size_t)(nl - p) + 1;
			in->stmt_full = true;
		}
	}
	memcpy(buf, in->pend + in->pend_pos, n);
	in->pend_pos += n;
	in->stmt_bytes += n;
	in->stmt_rows += tsv_count_rows(buf, n);
	*got = n;
	return 0;
}

/* ---- the connector's callbacks ------------------------------------------ */

int restore_infile_cb_init(void **ptr, const char *name, void *userdata)
{
	struct restore_infile *in = userdata;

	*ptr = in;
	if (!in)
		return 1;
	if (!in->zr && !err_is_set(&in->err))
		err_set(&in->err, ERR_INTERNAL,
			"the server asked for local file '%.200s' that backupd did not offer",
			name ? name : "");
	return err_is_set(&in->err) ? 1 : 0;
}

int restore_infile_cb_read(void *ptr, char *buf, unsigned int len)
{
	struct restore_infile *in = ptr;
	struct err e;
	size_t got = 0;

	if (!in)
		return -1;
	err_init(&e);
	/* A short read is fine: the connector sends what it gets and asks
	 * again; 0 means a verified end of file. */
	if (restore_infile_read(in, buf, len, &got, &e) != 0)
		return -1;
	return (int)got;
}

/* The file stays open: the next statement may continue it. */
void restore_infile_cb_end(void *ptr)
{
	(void)ptr;
}

int restore_infile_cb_error(void *ptr, char *msg, unsigned int len)
{
	struct restore_infile *in = ptr;

	if (!len)
		return INFILE_ERRNO;
	if (in && err_is_set(&in->err))
		snprintf(msg, len, "%s", in->err.msg);
	else
		snprintf(msg, len, "local infile failed");
	return INFILE_ERRNO;
}

void restore_infile_attach(MYSQL *m, struct restore_infile *in)
{
	mysql_set_local_infile_handler(m, restore_infile_cb_init,
				       restore_infile_cb_read,
				       restore_infile_cb_end,
				       restore_infile_cb_error, in);
}
