/* Storage backend for an NFSv3 export through libnfs (no kernel mount).
 * I/O goes out in calls of exactly writemax/readmax: smaller ones cost round
 * trips, larger ones libnfs splits (measured 2-5x slower). Every call is
 * bounded by the timeout, so a dead or hung server becomes an error.
 * Threads: an nfs_context is not thread-safe in libnfs 4.0; one struct
 * storage (hence one context) per thread. */
#define STORAGE_BACKEND
#include "storage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
/* libnfs.h uses struct timeval and struct statvfs without including them. */
#include <sys/time.h>
#include <sys/statvfs.h>
#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw-nfs.h>

#include "mem.h"

/* Sanity bounds on what the server announces as its transfer sizes. */
#define NFS_XFER_FALLBACK (64u * 1024u)
#define NFS_XFER_MAX (16u * 1024u * 1024u)
/* "/" + a path remove_tree may build below a checked root. */
#define NFS_PATH_BUF 4096

struct nfs_impl {
	struct nfs_context *nfs;
	size_t wmax;
	size_t rmax;
	int timeout_s;
	char detail[256];     /* for the last failure, "" when none */
	int detail_errno;     /* the errno detail belongs to */
};

struct nfs_file {
	struct nfsfh *fh;
	uint64_t off;         /* file offset of buf[0] (write) / next read */
	char *buf;            /* wmax or rmax bytes, allocated on first use */
	size_t len;           /* bytes in buf */
	size_t pos;           /* read: next unread byte in buf */
};

static struct nfs_impl *impl(struct storage *s)
{
	return s->impl;
}

/* Turns a libnfs return into 0/count or -errno and keeps detail for the
 * message. libnfs reports its own timeout as -EINTR. */
static int nfs_fail(struct nfs_impl *m, struct nfs_context *nfs, int rc)
{
	const char *txt;
	int err;

	if (rc >= 0)
		return rc;
	err = -rc;
	m->detail[0] = '\0';
	txt = nfs_get_error(nfs);
	if (!txt)
		txt = "";
	/* libnfs 4.0 returns -EFAULT for some server errors on the write path;
	 * the NFS status in its message is what the server actually said. */
	if (strstr(txt, "NFS3ERR_NOSPC") || strstr(txt, "NFS3ERR_DQUOT"))
		err = ENOSPC;
	else if (strstr(txt, "NFS3ERR_ROFS"))
		err = EROFS;
	if (err == EINTR || err == ETIMEDOUT) {
		err = ETIMEDOUT;
		snprintf(m->detail, sizeof(m->detail),
			 "no reply from the NFS server within %d s", m->timeout_s);
	} else if (err == EIO || err == EPERM || err == EFAULT) {
		/* Errors the server sent name their NFS3ERR; anything else is
		 * the transport (reconnects used up, socket closed). */
		if (strstr(txt, "NFS3ERR"))
			snprintf(m->detail, sizeof(m->detail), "%s", txt);
		else
			snprintf(m->detail, sizeof(m->detail),
				 "NFS server unreachable or connection lost: %s", txt);
	}
	m->detail_errno = err;
	return -err;
}

static int nfs_rc(struct nfs_impl *m, int rc)
{
	return nfs_fail(m, m->nfs, rc);
}

static const char *nfs_last_detail(struct storage *s, int errnum)
{
	struct nfs_impl *m = impl(s);

	return m && m->detail[0] && m->detail_errno == errnum ? m->detail : NULL;
}

/* Paths are absolute inside the mounted root; "" is the root. */
static int mkpath(char *out, const char *rel)
{
	size_t len = strlen(rel);

	if (len + 2 > NFS_PATH_BUF)
		return -ENAMETOOLONG;
	out[0] = '/';
	memcpy(out + 1, rel, len + 1);
	return 0;
}

static void nfs_backend_close(struct storage *s)
{
	struct nfs_impl *m = impl(s);

	if (!m)
		return;
	/* No UMNT: the server's mount list is advisory, and on a dead server
	 * it would only add a timeout to every shutdown. */
	if (m->nfs)
		nfs_destroy_context(m->nfs);
	free(m);
	s->impl = NULL;
}

static size_t nfs_io_size(struct storage *s)
{
	return impl(s)->wmax;
}

static int nfs_backend_mkdir(struct storage *s, const char *rel)
{
	struct nfs_impl *m = impl(s);
	char p[NFS_PATH_BUF];
	int rc;

	if ((rc = mkpath(p, rel)))
		return rc;
	return nfs_rc(m, nfs_mkdir2(m->nfs, p, 0750));
}

static int open_file(struct storage *s, struct storage_file *f, bool create,
		     bool exclusive)
{
	struct nfs_impl *m = impl(s);
	struct nfs_file *nf;
	struct nfsfh *fh = NULL;
	char p[NFS_PATH_BUF];
	int rc;

	if ((rc = mkpath(p, f->rel)))
		return rc;
	if (create)
		rc = nfs_create(m->nfs, p, O_WRONLY | (exclusive ? O_EXCL : O_TRUNC),
				0640, &fh);
	else
		rc = nfs_open(m->nfs, p, O_RDONLY, &fh);
	if (rc < 0)
		return nfs_rc(m, rc);
	nf = xcalloc(1, sizeof(*nf));
	nf->fh = fh;
	f->impl = nf;
	return 0;
}

static int nfs_backend_create(struct storage *s, struct storage_file *f,
			      bool exclusive)
{
	return open_file(s, f, true, exclusive);
}

static int nfs_backend_open_read(struct storage *s, struct storage_file *f)
{
	return open_file(s, f, false, false);
}

/* Writes n bytes (n <= wmax) at nf->off. */
static int put(struct nfs_impl *m, struct nfs_file *nf, const char *p,
	       size_t n)
{
	while (n > 0) {
		int w = nfs_pwrite(m->nfs, nf->fh, nf->off, n, p);
		if (w < 0) {
			int rc = nfs_rc(m, w);
			struct nfs_statvfs_64 sv;
			/* libnfs 4.0 loses NFS3ERR_NOSPC on this path (it reports
			 * EFAULT): ask the server whether it is out of space, so a
			 * full repository is named as such. */
			if (rc != -ETIMEDOUT && nfs_statvfs64(m->nfs, "/", &sv) == 0 &&
			    sv.f_bavail * sv.f_frsize < (uint64_t)n) {
				snprintf(m->detail, sizeof(m->detail),
					 "the NFS export has %llu bytes free",
					 (unsigned long long)(sv.f_bavail * sv.f_frsize));
				m->detail_errno = ENOSPC;
				rc = -ENOSPC;
			}
			return rc;
		}
		if (w == 0) {
			snprintf(m->detail, sizeof(m->detail),
				 "the server accepted no data");
			m->detail_errno = EIO;
			return -EIO;
		}
		nf->off += (uint64_t)w;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int flush(struct nfs_impl *m, struct nfs_file *nf)
{
	int rc;

	if (nf->len == 0)
		return 0;
	rc = put(m, nf, nf->buf, nf->len);
	if (rc == 0)
		nf->len = 0;
	return rc;
}

static int nfs_backend_write(struct storage_file *f, const void *data, size_t n)
{
	struct nfs_impl *m = impl(f->s);
	struct nfs_file *nf = f->impl;
	const char *p = data;
	int rc;

	while (n > 0) {
		if (nf->len == 0 && n >= m->wmax) {
			/* Whole calls straight from the caller's memory. */
			if ((rc = put(m, nf, p, m->wmax)))
				return rc;
			p += m->wmax;
			n -= m->wmax;
			continue;
		}
		if (!nf->buf)
			nf->buf = xmalloc(m->wmax);
		size_t k = m->wmax - nf->len;
		if (k > n)
			k = n;
		memcpy(nf->buf + nf->len, p, k);
		nf->len += k;
		p += k;
		n -= k;
		if (nf->len == m->wmax && (rc = flush(m, nf)))
			return rc;
	}
	return 0;
}

static int nfs_backend_read(struct storage_file *f, void *buf, size_t cap,
			    size_t *got)
{
	struct nfs_impl *m = impl(f->s);
	struct nfs_file *nf = f->impl;
	char *dst = buf;
	int r;

	*got = 0;
	while (*got < cap) {
		size_t want = cap - *got;

		if (nf->pos < nf->len) {
			size_t k = nf->len - nf->pos;
			if (k > want)
				k = want;
			memcpy(dst + *got, nf->buf + nf->pos, k);
			nf->pos += k;
			*got += k;
			continue;
		}
		if (want >= m->rmax) {
			r = nfs_pread(m->nfs, nf->fh, nf->off, m->rmax, dst + *got);
			if (r < 0)
				return nfs_rc(m, r);
			if (r == 0)
				break;
			nf->off += (uint64_t)r;
			*got += (size_t)r;
			continue;
		}
		/* A small read: fetch a whole readmax and serve from it. */
		if (!nf->buf)
			nf->buf = xmalloc(m->rmax);
		r = nfs_pread(m->nfs, nf->fh, nf->off, m->rmax, nf->buf);
		if (r < 0)
			return nfs_rc(m, r);
		if (r == 0)
			break;
		nf->off += (uint64_t)r;
		nf->len = (size_t)r;
		nf->pos = 0;
	}
	return 0;
}

static int nfs_backend_fsync(struct storage_file *f)
{
	struct nfs_impl *m = impl(f->s);
	struct nfs_file *nf = f->impl;
	int rc;

	if ((rc = flush(m, nf)))
		return rc;
	return nfs_rc(m, nfs_fsync(m->nfs, nf->fh));
}

static int nfs_backend_file_close(struct storage_file *f, bool discard)
{
	struct nfs_impl *m = impl(f->s);
	struct nfs_file *nf = f->impl;
	int rc = 0, rc2;

	if (!nf)
		return 0;
	if (f->writable && !discard)
		rc = flush(m, nf);
	/* libnfs frees the handle whatever the result; it sends a COMMIT
	 * first when unstable writes are outstanding. */
	rc2 = nfs_close(m->nfs, nf->fh);
	if (rc == 0 && rc2 < 0 && !discard)
		rc = nfs_rc(m, rc2);
	free(nf->buf);
	free(nf);
	f->impl = NULL;
	return discard ? 0 : rc;
}

static int nfs_backend_rename(struct storage *s, const char *from,
			      const char *to)
{
	struct nfs_impl *m = impl(s);
	char a[NFS_PATH_BUF], b[NFS_PATH_BUF];
	int rc;

	if ((rc = mkpath(a, from)) || (rc = mkpath(b, to)))
		return rc;
	return nfs_rc(m, nfs_rename(m->nfs, a, b));
}

static int nfs_backend_remove(struct storage *s, const char *rel)
{
	struct nfs_impl *m = impl(s);
	char p[NFS_PATH_BUF];
	int rc;

	if ((rc = mkpath(p, rel)))
		return rc;
	return nfs_rc(m, nfs_unlink(m->nfs, p));
}

static int nfs_backend_rmdir(struct storage *s, const char *rel)
{
	struct nfs_impl *m = impl(s);
	char p[NFS_PATH_BUF];
	int rc;

	if ((rc = mkpath(p, rel)))
		return rc;
	return nfs_rc(m, nfs_rmdir(m->nfs, p));
}

static int nfs_backend_list(struct storage *s, const char *rel,
			    struct storage_names *out)
{
	struct nfs_impl *m = impl(s);
	struct nfsdirent *de;
	struct nfsdir *d = NULL;
	char p[NFS_PATH_BUF];
	int rc;

	if ((rc = mkpath(p, rel)))
		return rc;
	if ((rc = nfs_opendir(m->nfs, p, &d)) < 0)
		return nfs_rc(m, rc);
	/* opendir fetched the whole folder; readdir does not block. */
	while ((de = nfs_readdir(m->nfs, d)) != NULL) {
		if (strcmp(de->name, ".") == 0 || strcmp(de->name, "..") == 0)
			continue;
		if ((rc = storage_names_add(out, de->name)))
			break;
	}
	nfs_closedir(m->nfs, d);
	return rc;
}

static int nfs_backend_stat(struct storage *s, const char *rel,
			    struct storage_stat *st, bool *is_link)
{
	struct nfs_impl *m = impl(s);
	struct nfs_stat_64 sb;
	char p[NFS_PATH_BUF];
	int rc;

	if ((rc = mkpath(p, rel)))
		return rc;
	memset(&sb, 0, sizeof(sb));
	if ((rc = nfs_lstat64(m->nfs, p, &sb)) < 0)
		return nfs_rc(m, rc);
	st->exists = true;
	st->is_dir = S_ISDIR(sb.nfs_mode);
	st->size = sb.nfs_size;
	st->mtime = (time_t)sb.nfs_mtime;
	*is_link = S_ISLNK(sb.nfs_mode);
	return 0;
}

static int nfs_backend_free_space(struct storage *s, uint64_t *free_bytes,
				  uint64_t *total_bytes)
{
	struct nfs_impl *m = impl(s);
	struct nfs_statvfs_64 sv;
	uint64_t unit;
	int rc;

	memset(&sv, 0, sizeof(sv));
	if ((rc = nfs_statvfs64(m->nfs, "/", &sv)) < 0)
		return nfs_rc(m, rc);
	unit = sv.f_frsize ? sv.f_frsize : sv.f_bsize;
	*free_bytes = sv.f_bavail * unit;
	*total_bytes = sv.f_blocks * unit;
	return 0;
}

/* Nothing to do: NFSv3 (RFC 1813) requires the server to commit CREATE,
 * MKDIR, REMOVE, RMDIR and RENAME to stable storage before it replies, so a
 * folder's entries are durable once the call returned. COMMIT exists only
 * for file data written UNSTABLE, which storage_fsync covers. */
static int nfs_backend_fsync_dir(struct storage *s, const char *rel)
{
	return 0;
}

static const struct storage_backend nfs_backend = {
	.name = "nfs",
	.close = nfs_backend_close,
	.last_detail = nfs_last_detail,
	.io_size = nfs_io_size,
	.mkdir = nfs_backend_mkdir,
	.create = nfs_backend_create,
	.open_read = nfs_backend_open_read,
	.write = nfs_backend_write,
	.read = nfs_backend_read,
	.fsync = nfs_backend_fsync,
	.file_close = nfs_backend_file_close,
	.rename = nfs_backend_rename,
	.remove = nfs_backend_remove,
	.rmdir = nfs_backend_rmdir,
	.list = nfs_backend_list,
	.stat = nfs_backend_stat,
	.free_space = nfs_backend_free_space,
	.fsync_dir = nfs_backend_fsync_dir,
};

/* A fresh context mounted at mount_path (NULL: the URL's path). The URL is
 * parsed into each context because parsing also applies its options
 * (nfsport, mountport, uid, ...) to that context. Ours are set after, so
 * they win over the URL's. On failure m->detail says why. */
static int connect_at(struct nfs_impl *m, const char *url, const char *mount_path,
		      const struct storage_opts *o, struct nfs_context **out)
{
	struct nfs_context *nfs;
	struct nfs_url *u;
	int rc;

	*out = NULL;
	m->detail[0] = '\0';
	nfs = nfs_init_context();
	if (!nfs) {
		snprintf(m->detail, sizeof(m->detail), "cannot create an NFS context");
		return -ENOMEM;
	}
	u = nfs_parse_url_dir(nfs, url);
	if (!u || !u->server || !u->path) {
		const char *t = nfs_get_error(nfs);
		snprintf(m->detail, sizeof(m->detail), "%s",
			 t && *t ? t : "expected nfs://host/export/path");
		if (u)
			nfs_destroy_url(u);
		nfs_destroy_context(nfs);
		return -EINVAL;
	}
	/* NFSv4 in libnfs 4.0 cannot encode writes of 4 KiB or more. */
	nfs_set_version(nfs, NFS_V3);
	nfs_set_autoreconnect(nfs, o->reconnect_attempts);
	nfs_set_timeout(nfs, m->timeout_s * 1000);
	/* Other threads' contexts change the same folders: no stale listings. */
	nfs_set_dircache(nfs, 0);
	rc = nfs_mount(nfs, u->server, mount_path ? mount_path : u->path);
	nfs_destroy_url(u);
	if (rc < 0) {
		rc = nfs_fail(m, nfs, rc);
		if (!m->detail[0]) {
			const char *t = nfs_get_error(nfs);
			snprintf(m->detail, sizeof(m->detail), "%s", t ? t : "");
		}
		nfs_destroy_context(nfs);
		return rc;
	}
	*out = nfs;
	return 0;
}

/* Mount errors that may only mean "this path does not exist": servers
 * answer a missing mount path with ACCES (ganesha) or NOENT. */
static bool maybe_missing(int rc)
{
	return rc == -EACCES || rc == -ENOENT || rc == -ENOTDIR || rc == -EPERM;
}

/* The root is missing: mount the nearest existing ancestor and create the
 * rest below it. Returns 0 when created, 1 when no ancestor could be
 * mounted either (the caller reports the first mount error), or -errno of
 * a failed mkdir with *failed set to the folder. */
static int create_root(struct nfs_impl *m, const char *url, const char *path,
		       const struct storage_opts *o, char *failed,
		       size_t failed_size)
{
	struct nfs_context *nfs = NULL;
	char *p = xstrdup(path);
	char sub[NFS_PATH_BUF];
	size_t cut = strlen(p);
	int rc = 1;

	for (;;) {
		while (cut > 0 && p[cut] != '/')
			cut--;
		if (cut == 0)
			break;
		p[cut] = '\0';
		int r = connect_at(m, url, p, o, &nfs);
		if (r == 0) {
			rc = 0;
			break;
		}
		if (!maybe_missing(r))
			break;      /* the server itself fails: stop probing */
	}
	if (rc) {
		free(p);
		return 1;
	}
	memcpy(p, path, strlen(path) + 1);
	/* sub = the part of path below the ancestor: "/a", then "/a/b". */
	for (size_t i = cut + 1; rc == 0; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		size_t n = i - cut;
		if (n >= sizeof(sub)) {
			rc = -ENAMETOOLONG;
		} else if (n > 1) {
			memcpy(sub, p + cut, n);
			sub[n] = '\0';
			int r = nfs_mkdir2(nfs, sub, 0750);
			if (r < 0 && r != -EEXIST)
				rc = nfs_fail(m, nfs, r);
		}
		if (rc)
			snprintf(failed, failed_size, "%.*s", (int)i, p);
		if (p[i] == '\0')
			break;
	}
	nfs_destroy_context(nfs);
	free(p);
	return rc;
}

int storage_nfs_open(struct storage *s, const char *url,
		     const struct storage_opts *o, struct err *e)
{
	struct nfs_impl *m;
	int rc;

	/* Query options (ports, uid) are not needed to recognise the
	 * repository in a message, and keep messages short. */
	s->url_redacted = xstrndup(url, strcspn(url, "?"));
	for (char *c = s->url_redacted; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	m = xcalloc(1, sizeof(*m));
	m->timeout_s = o->timeout_ms > 0 ? (o->timeout_ms + 999) / 1000
					 : STORAGE_TIMEOUT_MS_DEFAULT / 1000;
	rc = connect_at(m, url, NULL, o, &m->nfs);
	if (rc && o->create_root && maybe_missing(rc)) {
		char first_detail[sizeof(m->detail)], failed[NFS_PATH_BUF];
		struct nfs_context *probe = nfs_init_context();
		struct nfs_url *u = probe ? nfs_parse_url_dir(probe, url) : NULL;
		int made = 1;

		memcpy(first_detail, m->detail, sizeof(first_detail));
		if (u && u->path)
			made = create_root(m, url, u->path, o, failed,
					   sizeof(failed));
		if (u)
			nfs_destroy_url(u);
		if (probe)
			nfs_destroy_context(probe);
		if (made < 0) {
			for (char *c = failed; *c; c++)
				if ((unsigned char)*c < 0x20 || *c == 0x7f)
					*c = '?';
			rc = storage_set_error(e, -made, m->detail,
					       "unable to create repository folder '%s' on '%s'",
					       failed, s->url_redacted);
			free(m);
			return rc;
		}
		if (made == 0)
			rc = connect_at(m, url, NULL, o, &m->nfs);
		else
			memcpy(m->detail, first_detail, sizeof(m->detail));
	}
	if (rc) {
		if (rc == -EACCES) {
			/* ganesha refuses a missing path with ACCES, too. */
			size_t l = strlen(m->detail);
			snprintf(m->detail + l, sizeof(m->detail) - l, "%s%s",
				 l ? "; " : "",
				 "the path may not exist, or the export refuses this client");
		}
		rc = storage_set_error(e, -rc, m->detail, "unable to mount '%s'",
				       s->url_redacted);
		free(m);
		return rc;
	}
	m->wmax = (size_t)nfs_get_writemax(m->nfs);
	m->rmax = (size_t)nfs_get_readmax(m->nfs);
	if (m->wmax == 0)
		m->wmax = NFS_XFER_FALLBACK;
	if (m->wmax > NFS_XFER_MAX)
		m->wmax = NFS_XFER_MAX;
	if (m->rmax == 0)
		m->rmax = NFS_XFER_FALLBACK;
	if (m->rmax > NFS_XFER_MAX)
		m->rmax = NFS_XFER_MAX;
	s->impl = m;
	s->ops = &nfs_backend;
	return 0;
}
