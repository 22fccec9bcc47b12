/* Repository storage: URL dispatch to the posix or NFS backend, path safety,
 * error messages, and the helpers built on the backend calls (mkdir -p,
 * recursive delete, atomic whole-file write, bounded whole-file read).
 * Threads: a struct storage and its files are used by one thread at a time;
 * nothing here is shared between storages. */
#define STORAGE_BACKEND
#include "storage.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "mem.h"

/* Deepest folder nesting storage_remove_tree descends into. A repository is
 * three levels deep; anything far deeper is not ours to delete. */
#define STORAGE_TREE_DEPTH_MAX 32

#define STR_(x) #x
#define STR(x) STR_(x)

void storage_opts_init(struct storage_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->timeout_ms = STORAGE_TIMEOUT_MS_DEFAULT;
	o->reconnect_attempts = STORAGE_RECONNECT_DEFAULT;
	o->create_root = true;
}

/* Copies s for a message: control characters become '?' so that a message
 * always stays on one line; long strings are cut with "...". */
static const char *printable(char *out, size_t size, const char *s, size_t len)
{
	size_t i, j = 0;

	for (i = 0; i < len && j + 4 < size; i++) {
		unsigned char c = (unsigned char)s[i];
		out[j++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (i < len && size >= 4) {
		if (j > size - 4)
			j = size - 4;
		memcpy(out + j, "...", 3);
		j += 3;
	}
	out[j] = '\0';
	return out;
}

int storage_set_error(struct err *e, int errnum, const char *detail,
		      const char *fmt, ...)
{
	char what[384], ebuf[128], dbuf[200];
	const char *es;
	va_list ap;
	int code = (errnum == ENOSPC || errnum == EDQUOT) ? ERR_NO_SPACE
							 : ERR_STORAGE;

	if (!e)
		return code;
	if (err_is_set(e))
		return e->code;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	es = strerror_r(errnum, ebuf, sizeof(ebuf));
	if (detail && *detail) {
		printable(dbuf, sizeof(dbuf), detail, strlen(detail));
		err_set(e, code, "%s: %s (%s)", what, es, dbuf);
	} else {
		err_set(e, code, "%s: %s", what, es);
	}
	e->sys_errno = errnum;
	return code;
}

static const char *detail_for(struct storage *s, int errnum)
{
	return s->ops->last_detail ? s->ops->last_detail(s, errnum) : NULL;
}

/* The one place a failed backend call becomes an error message. */
static int op_fail(struct storage *s, struct err *e, int rc, const char *verb,
		   const char *rel)
{
	char p[300];
	const char *detail;

	if (rc >= 0)
		rc = -EIO;
	detail = detail_for(s, -rc);
	if (rc == -E2BIG)
		detail = "more than " STR(STORAGE_LIST_MAX) " entries";
	return storage_set_error(e, -rc, detail, "unable to %s '%s' on '%s'",
				 verb, printable(p, sizeof(p), rel, strlen(rel)),
				 s->url_redacted);
}

int storage_open(const char *url, const struct storage_opts *o,
		 struct storage **out, struct err *e)
{
	struct storage_opts def;
	struct storage *s;
	char p[300];
	int rc;

	*out = NULL;
	if (!o) {
		storage_opts_init(&def);
		o = &def;
	}
	if (!url || !*url)
		return err_set(e, ERR_STORAGE, "no repository given");
	if (o->reconnect_attempts < 0 || o->reconnect_attempts > 100)
		return err_set(e, ERR_STORAGE,
			       "reconnect attempts must be 0..100, not %d",
			       o->reconnect_attempts);
	s = xcalloc(1, sizeof(*s));
	if (strncasecmp(url, "nfs://", 6) == 0) {
		rc = storage_nfs_open(s, url, o, e);
	} else if (strstr(url, "://")) {
		rc = err_set(e, ERR_STORAGE,
			     "unsupported repository '%s': use a local folder or nfs://",
			     printable(p, sizeof(p), url, strlen(url)));
	} else {
		rc = storage_posix_open(s, url, o, e);
	}
	if (rc) {
		free(s->url_redacted);
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void storage_close(struct storage *s)
{
	if (!s)
		return;
	if (s->ops)
		s->ops->close(s);
	free(s->url_redacted);
	free(s);
}

void storage_redact_url(const char *url, char *out, size_t n)
{
	size_t len = strcspn(url, "?");
	if (n == 0)
		return;
	if (len >= n)
		len = n - 1;
	memcpy(out, url, len);
	out[len] = '\0';
}

const char *storage_url_redacted(const struct storage *s)
{
	return s->url_redacted;
}

const char *storage_backend_name(const struct storage *s)
{
	return s->ops->name;
}

size_t storage_io_size(const struct storage *s)
{
	return s->ops->io_size((struct storage *)s);
}

static int path_refuse(struct err *e, int errnum, const char *rel, size_t len,
		       const char *why)
{
	char p[300];

	return storage_set_error(e, errnum, NULL, "invalid repository path '%s' (%s)",
				 printable(p, sizeof(p), rel, len), why);
}

int storage_path_check_len(const char *rel, size_t len, struct err *e)
{
	size_t i, start = 0;

	if (!rel || len == 0)
		return path_refuse(e, EINVAL, "", 0, "empty");
	if (len > STORAGE_PATH_MAX)
		return path_refuse(e, ENAMETOOLONG, rel, len, "too long");
	if (rel[0] == '/')
		return path_refuse(e, EINVAL, rel, len, "absolute");
	for (i = 0; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)rel[i] : '/';

		if (c == '\0')
			return path_refuse(e, EINVAL, rel, len, "contains NUL");
		if (c < 0x20 || c == 0x7f)
			return path_refuse(e, EINVAL, rel, len,
					   "contains a control character");
		if (c != '/')
			continue;
		size_t clen = i - start;
		if (clen == 0)
			return path_refuse(e, EINVAL, rel, len, "empty component");
		if (clen > STORAGE_NAME_MAX)
			return path_refuse(e, ENAMETOOLONG, rel, len,
					   "component too long");
		if (rel[start] == '.' &&
		    (clen == 1 || (clen == 2 && rel[start + 1] == '.')))
			return path_refuse(e, EINVAL, rel, len,
					   "'.' or '..' component");
		start = i + 1;
	}
	return 0;
}

int storage_path_check(const char *rel, struct err *e)
{
	return storage_path_check_len(rel, rel ? strlen(rel) : 0, e);
}

/* For calls that accept the root as "". */
static int path_check_or_root(const char *rel, struct err *e)
{
	if (rel && rel[0] == '\0')
		return 0;
	return storage_path_check(rel, e);
}

int storage_names_add(struct storage_names *names, const char *name)
{
	if (names->n >= STORAGE_LIST_MAX)
		return -E2BIG;
	if (names->n == names->cap) {
		names->cap = names->cap ? names->cap * 2 : 16;
		names->v = xrealloc(names->v, names->cap * sizeof(*names->v));
	}
	names->v[names->n++] = xstrdup(name);
	return 0;
}

int storage_mkdir_p(struct storage *s, const char *rel, struct err *e)
{
	char path[STORAGE_PATH_MAX + 1];
	struct storage_stat st;
	bool is_link, creating = false;
	size_t len, i;
	int rc;

	if ((rc = path_check_or_root(rel, e)))
		return rc;
	len = strlen(rel);
	memcpy(path, rel, len + 1);
	/* Top-down: one stat per existing level, one mkdir per missing one. */
	for (i = 1; i <= len; i++) {
		if (i < len && path[i] != '/')
			continue;
		path[i] = '\0';
		if (!creating) {
			rc = s->ops->stat(s, path, &st, &is_link);
			if (rc == -ENOENT) {
				creating = true;
			} else if (rc) {
				return op_fail(s, e, rc, "create folder", path);
			} else if (!st.is_dir || is_link) {
				return op_fail(s, e, -ENOTDIR, "create folder", path);
			}
		}
		if (creating) {
			rc = s->ops->mkdir(s, path);
			/* Another thread may have made it meanwhile. */
			if (rc == -EEXIST) {
				rc = s->ops->stat(s, path, &st, &is_link);
				if (rc == 0 && (!st.is_dir || is_link))
					rc = -ENOTDIR;
			}
			if (rc)
				return op_fail(s, e, rc, "create folder", path);
		}
		if (i < len)
			path[i] = '/';
	}
	return 0;
}

static struct storage_file *file_new(struct storage *s, const char *rel,
				     bool writable)
{
	struct storage_file *f = xcalloc(1, sizeof(*f));

	f->s = s;
	f->rel = xstrdup(rel);
	f->writable = writable;
	return f;
}

static void file_free(struct storage_file *f)
{
	free(f->rel);
	free(f);
}

int storage_create(struct storage *s, const char *rel, bool exclusive,
		   struct storage_file **out, struct err *e)
{
	struct storage_file *f;
	int rc;

	*out = NULL;
	if ((rc = storage_path_check(rel, e)))
		return rc;
	f = file_new(s, rel, true);
	rc = s->ops->create(s, f, exclusive);
	if (rc) {
		file_free(f);
		return op_fail(s, e, rc, "create", rel);
	}
	*out = f;
	return 0;
}

int storage_open_read(struct storage *s, const char *rel,
		      struct storage_file **out, struct err *e)
{
	struct storage_file *f;
	int rc;

	*out = NULL;
	if ((rc = storage_path_check(rel, e)))
		return rc;
	f = file_new(s, rel, false);
	rc = s->ops->open_read(s, f);
	if (rc) {
		file_free(f);
		return op_fail(s, e, rc, "open", rel);
	}
	*out = f;
	return 0;
}

static int earlier_failure(struct storage_file *f, struct err *e)
{
	char p[300];

	return storage_set_error(e, f->failed_errno, "an earlier write failed",
				 "unable to write '%s' on '%s'",
				 printable(p, sizeof(p), f->rel, strlen(f->rel)),
				 f->s->url_redacted);
}

int storage_write(struct storage_file *f, const void *data, size_t n,
		  struct err *e)
{
	int rc;

	if (!f->writable)
		return op_fail(f->s, e, -EBADF, "write", f->rel);
	if (f->failed_errno)
		return earlier_failure(f, e);
	if (n == 0)
		return 0;
	rc = f->s->ops->write(f, data, n);
	if (rc) {
		f->failed_errno = -rc;
		return op_fail(f->s, e, rc, "write", f->rel);
	}
	return 0;
}

int storage_read(struct storage_file *f, void *buf, size_t cap, size_t *got,
		 struct err *e)
{
	int rc;

	*got = 0;
	if (f->writable)
		return op_fail(f->s, e, -EBADF, "read", f->rel);
	if (cap == 0)
		return 0;
	rc = f->s->ops->read(f, buf, cap, got);
	if (rc)
		return op_fail(f->s, e, rc, "read", f->rel);
	return 0;
}

int storage_fsync(struct storage_file *f, struct err *e)
{
	int rc;

	if (!f->writable)
		return 0;
	if (f->failed_errno)
		return earlier_failure(f, e);
	rc = f->s->ops->fsync(f);
	if (rc) {
		f->failed_errno = -rc;
		/* Most often a buffered write that failed on its way out. */
		return op_fail(f->s, e, rc, "write", f->rel);
	}
	return 0;
}

int storage_file_close(struct storage_file *f, struct err *e)
{
	int rc, ret = 0;

	if (!f)
		return 0;
	rc = f->s->ops->file_close(f, f->failed_errno != 0);
	if (f->failed_errno)
		ret = earlier_failure(f, e);
	else if (rc)
		/* For a written file, a close failure is the final flush. */
		ret = op_fail(f->s, e, rc, f->writable ? "write" : "close", f->rel);
	file_free(f);
	return ret;
}

int storage_rename(struct storage *s, const char *from, const char *to,
		   struct err *e)
{
	char p1[300], p2[300];
	const char *detail;
	int rc;

	if ((rc = storage_path_check(from, e)) || (rc = storage_path_check(to, e)))
		return rc;
	rc = s->ops->rename(s, from, to);
	if (rc) {
		detail = detail_for(s, -rc);
		return storage_set_error(e, -rc, detail,
					 "unable to rename '%s' to '%s' on '%s'",
					 printable(p1, sizeof(p1), from, strlen(from)),
					 printable(p2, sizeof(p2), to, strlen(to)),
					 s->url_redacted);
	}
	return 0;
}

int storage_remove(struct storage *s, const char *rel, struct err *e)
{
	int rc;

	if ((rc = storage_path_check(rel, e)))
		return rc;
	rc = s->ops->remove(s, rel);
	return rc ? op_fail(s, e, rc, "remove", rel) : 0;
}

int storage_rmdir(struct storage *s, const char *rel, struct err *e)
{
	int rc;

	if ((rc = storage_path_check(rel, e)))
		return rc;
	rc = s->ops->rmdir(s, rel);
	return rc ? op_fail(s, e, rc, "remove folder", rel) : 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void storage_list_free(char **names, size_t n)
{
	if (!names)
		return;
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* Unchecked: remove_tree lists folders whose names we did not choose. */
static int list_raw(struct storage *s, const char *rel,
		    struct storage_names *names)
{
	int rc;

	memset(names, 0, sizeof(*names));
	rc = s->ops->list(s, rel, names);
	if (rc) {
		storage_list_free(names->v, names->n);
		memset(names, 0, sizeof(*names));
		return rc;
	}
	if (names->n > 1)
		qsort(names->v, names->n, sizeof(*names->v), cmp_names);
	return 0;
}

int storage_list(struct storage *s, const char *rel, char ***names, size_t *n,
		 struct err *e)
{
	struct storage_names v;
	int rc;

	*names = NULL;
	*n = 0;
	if ((rc = path_check_or_root(rel, e)))
		return rc;
	rc = list_raw(s, rel, &v);
	if (rc)
		return op_fail(s, e, rc, "list", rel);
	*names = v.v;
	*n = v.n;
	return 0;
}

static int remove_tree_at(struct storage *s, struct buf *path, int depth,
			  struct err *e)
{
	struct storage_names names;
	struct storage_stat st;
	bool is_link;
	size_t base = path->len;
	int rc;

	if (depth > STORAGE_TREE_DEPTH_MAX)
		return op_fail(s, e, -ELOOP, "remove folder", path->data);
	rc = list_raw(s, path->data, &names);
	if (rc)
		return op_fail(s, e, rc, "list", path->data);
	for (size_t i = 0; i < names.n && rc == 0; i++) {
		path->len = base;
		path->data[base] = '\0';
		if ((rc = buf_printf(path, e, "/%s", names.v[i])))
			break;
		rc = s->ops->stat(s, path->data, &st, &is_link);
		if (rc == -ENOENT) {
			rc = 0;         /* deleted meanwhile: fine */
		} else if (rc) {
			rc = op_fail(s, e, rc, "remove", path->data);
		} else if (st.is_dir && !is_link) {
			rc = remove_tree_at(s, path, depth + 1, e);
		} else {
			rc = s->ops->remove(s, path->data);
			if (rc == -ENOENT)
				rc = 0;
			else if (rc)
				rc = op_fail(s, e, rc, "remove", path->data);
		}
	}
	storage_list_free(names.v, names.n);
	path->len = base;
	path->data[base] = '\0';
	if (rc)
		return rc;
	rc = s->ops->rmdir(s, path->data);
	if (rc && rc != -ENOENT)
		return op_fail(s, e, rc, "remove folder", path->data);
	return 0;
}

int storage_remove_tree(struct storage *s, const char *rel, struct err *e)
{
	struct storage_stat st;
	struct buf path;
	bool is_link;
	int rc;

	if ((rc = storage_path_check(rel, e)))
		return rc;
	rc = s->ops->stat(s, rel, &st, &is_link);
	if (rc == -ENOENT || rc == -ENOTDIR)
		return 0;
	if (rc)
		return op_fail(s, e, rc, "remove folder", rel);
	if (!st.is_dir || is_link)
		return op_fail(s, e, -ENOTDIR, "remove folder", rel);
	/* Room for names below the checked root, bounded all the same. */
	buf_init(&path, 64 * 1024);
	rc = buf_append_str(&path, rel, e);
	if (rc == 0)
		rc = remove_tree_at(s, &path, 0, e);
	buf_release(&path);
	return rc;
}

int storage_stat(struct storage *s, const char *rel, struct storage_stat *st,
		 struct err *e)
{
	bool is_link;
	int rc;

	memset(st, 0, sizeof(*st));
	if ((rc = path_check_or_root(rel, e)))
		return rc;
	rc = s->ops->stat(s, rel, st, &is_link);
	if (rc == -ENOENT || rc == -ENOTDIR) {
		memset(st, 0, sizeof(*st));
		return 0;
	}
	if (rc)
		return op_fail(s, e, rc, "stat", rel);
	st->exists = true;
	if (is_link)
		st->is_dir = false;
	return 0;
}

int storage_free_space(struct storage *s, uint64_t *free_bytes,
		       uint64_t *total_bytes, struct err *e)
{
	uint64_t f = 0, t = 0;
	int rc = s->ops->free_space(s, &f, &t);

	if (free_bytes)
		*free_bytes = f;
	if (total_bytes)
		*total_bytes = t;
	if (rc)
		return storage_set_error(e, -rc,
					 detail_for(s, -rc),
					 "unable to query free space on '%s'",
					 s->url_redacted);
	return 0;
}

int storage_fsync_dir(struct storage *s, const char *rel, struct err *e)
{
	int rc;

	if ((rc = path_check_or_root(rel, e)))
		return rc;
	rc = s->ops->fsync_dir(s, rel);
	return rc ? op_fail(s, e, rc, "sync folder", rel) : 0;
}

int storage_write_atomic(struct storage *s, const char *rel, const void *data,
			 size_t n, struct err *e)
{
	char tmp[STORAGE_PATH_MAX + 8], parent[STORAGE_PATH_MAX + 1];
	struct storage_file *f = NULL;
	const char *slash;
	int rc;

	if ((rc = storage_path_check(rel, e)))
		return rc;
	snprintf(tmp, sizeof(tmp), "%s.tmp", rel);
	if ((rc = storage_path_check(tmp, e)))
		return rc;
	/* Not exclusive: a .tmp left by a crash is overwritten. */
	if ((rc = storage_create(s, tmp, false, &f, e)))
		return rc;
	rc = storage_write(f, data, n, e);
	if (rc == 0)
		rc = storage_fsync(f, e);
	if (rc == 0) {
		rc = storage_file_close(f, e);
	} else {
		struct err ignored;
		err_init(&ignored);
		storage_file_close(f, &ignored);
	}
	if (rc == 0)
		rc = storage_rename(s, tmp, rel, e);
	if (rc) {
		s->ops->remove(s, tmp);      /* best effort; keep the first error */
		return rc;
	}
	slash = strrchr(rel, '/');
	if (slash) {
		memcpy(parent, rel, (size_t)(slash - rel));
		parent[slash - rel] = '\0';
	} else {
		parent[0] = '\0';
	}
	return storage_fsync_dir(s, parent, e);
}

int storage_read_all(struct storage *s, const char *rel, size_t max,
		     char **data, size_t *n, struct err *e)
{
	struct storage_file *f;
	size_t len = 0, cap, got;
	char *p, sz[48];
	int rc;

	*data = NULL;
	*n = 0;
	if (max > SIZE_MAX / 2)
		max = SIZE_MAX / 2;
	if ((rc = storage_open_read(s, rel, &f, e)))
		return rc;
	/* One byte beyond max tells "exactly max" from "too large". */
	cap = max + 2 < 64 * 1024 ? max + 2 : 64 * 1024;
	p = xmalloc(cap);
	for (;;) {
		size_t want = cap - 1 - len;

		if (want > max + 1 - len)
			want = max + 1 - len;
		rc = storage_read(f, p + len, want, &got, e);
		if (rc)
			break;
		len += got;
		if (len > max) {
			char pr[300];
			snprintf(sz, sizeof(sz), "larger than %zu bytes", max);
			rc = storage_set_error(e, EFBIG, sz,
					       "unable to read '%s' on '%s'",
					       printable(pr, sizeof(pr), rel, strlen(rel)),
					       s->url_redacted);
			break;
		}
		if (got < want)
			break;          /* end of file */
		if (len + 1 == cap) {
			cap = cap > (max + 2) / 2 ? max + 2 : cap * 2;
			p = xrealloc(p, cap);
		}
	}
	if (rc) {
		struct err ignored;
		err_init(&ignored);
		storage_file_close(f, &ignored);
		free(p);
		return rc;
	}
	if ((rc = storage_file_close(f, e))) {
		free(p);
		return rc;
	}
	p[len] = '\0';
	*data = p;
	*n = len;
	return 0;
}
