/* Storage backend for a local folder (or anything the kernel mounts).
 * Every call works relative to a descriptor of the root (openat & co), so a
 * path can never leave it by a relative trick, and the root may be renamed
 * under us without confusion. Threads: one struct storage per thread. */
#define STORAGE_BACKEND
#include "storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "mem.h"

#define POSIX_IO_SIZE (1024u * 1024u)

struct posix_impl {
	int root_fd;
};

struct posix_file {
	int fd;
};

static int root_fd(struct storage *s)
{
	return ((struct posix_impl *)s->impl)->root_fd;
}

/* "" names the root. */
static const char *at(const char *rel)
{
	return rel[0] ? rel : ".";
}

static void posix_close(struct storage *s)
{
	struct posix_impl *m = s->impl;

	if (!m)
		return;
	if (m->root_fd >= 0)
		close(m->root_fd);
	free(m);
	s->impl = NULL;
}

static size_t posix_io_size(struct storage *s)
{
	return POSIX_IO_SIZE;
}

static int posix_mkdir(struct storage *s, const char *rel)
{
	return mkdirat(root_fd(s), rel, 0750) ? -errno : 0;
}

static int open_file(struct storage *s, struct storage_file *f, int flags,
		     mode_t mode)
{
	struct posix_file *pf;
	int fd;

	do
		fd = openat(root_fd(s), f->rel, flags | O_CLOEXEC | O_NOFOLLOW,
			    mode);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -errno;
	pf = xmalloc(sizeof(*pf));
	pf->fd = fd;
	f->impl = pf;
	return 0;
}

static int posix_create(struct storage *s, struct storage_file *f,
			bool exclusive)
{
	return open_file(s, f, O_WRONLY | O_CREAT |
			 (exclusive ? O_EXCL : O_TRUNC), 0640);
}

static int posix_open_read(struct storage *s, struct storage_file *f)
{
	return open_file(s, f, O_RDONLY, 0);
}

static int posix_write(struct storage_file *f, const void *data, size_t n)
{
	int fd = ((struct posix_file *)f->impl)->fd;
	const char *p = data;

	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (w == 0)
			return -EIO;    /* write(2) makes no progress: give up */
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int posix_read(struct storage_file *f, void *buf, size_t cap,
		      size_t *got)
{
	int fd = ((struct posix_file *)f->impl)->fd;
	char *p = buf;

	*got = 0;
	while (*got < cap) {
		ssize_t r = read(fd, p + *got, cap - *got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		*got += (size_t)r;
	}
	return 0;
}

static int posix_fsync(struct storage_file *f)
{
	int fd = ((struct posix_file *)f->impl)->fd;

	/* No retry on EINTR: after a failed fsync the kernel may have dropped
	 * the dirty pages, so a second fsync could "succeed" falsely. */
	return fsync(fd) ? -errno : 0;
}

static int posix_file_close(struct storage_file *f, bool discard)
{
	struct posix_file *pf = f->impl;
	int rc = 0;

	if (!pf)
		return 0;
	/* Linux closes the descriptor even when close() fails: never retry. */
	if (close(pf->fd) && errno != EINTR)
		rc = -errno;
	free(pf);
	f->impl = NULL;
	return discard ? 0 : rc;
}

static int posix_rename(struct storage *s, const char *from, const char *to)
{
	return renameat(root_fd(s), from, root_fd(s), to) ? -errno : 0;
}

static int posix_remove(struct storage *s, const char *rel)
{
	return unlinkat(root_fd(s), rel, 0) ? -errno : 0;
}

static int posix_rmdir(struct storage *s, const char *rel)
{
	return unlinkat(root_fd(s), rel, AT_REMOVEDIR) ? -errno : 0;
}

static int posix_list(struct storage *s, const char *rel,
		      struct storage_names *out)
{
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	fd = openat(root_fd(s), at(rel),
		    O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		rc = -errno;
		close(fd);
		return rc;
	}
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				rc = -errno;
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if ((rc = storage_names_add(out, de->d_name)))
			break;
	}
	closedir(d);
	return rc;
}

static int posix_stat(struct storage *s, const char *rel,
		      struct storage_stat *st, bool *is_link)
{
	struct stat sb;

	if (fstatat(root_fd(s), at(rel), &sb, AT_SYMLINK_NOFOLLOW))
		return -errno;
	st->exists = true;
	st->is_dir = S_ISDIR(sb.st_mode);
	st->size = (uint64_t)sb.st_size;
	st->mtime = sb.st_mtime;
	*is_link = S_ISLNK(sb.st_mode);
	return 0;
}

static int posix_free_space(struct storage *s, uint64_t *free_bytes,
			    uint64_t *total_bytes)
{
	struct statvfs sv;
	uint64_t unit;

	if (fstatvfs(root_fd(s), &sv))
		return -errno;
	unit = sv.f_frsize ? sv.f_frsize : sv.f_bsize;
	*free_bytes = (uint64_t)sv.f_bavail * unit;
	*total_bytes = (uint64_t)sv.f_blocks * unit;
	return 0;
}

static int posix_fsync_dir(struct storage *s, const char *rel)
{
	int fd, rc = 0;

	fd = openat(root_fd(s), at(rel), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd))
		rc = -errno;
	close(fd);
	return rc;
}

static const struct storage_backend posix_backend = {
	.name = "posix",
	.close = posix_close,
	.last_detail = NULL,
	.io_size = posix_io_size,
	.mkdir = posix_mkdir,
	.create = posix_create,
	.open_read = posix_open_read,
	.write = posix_write,
	.read = posix_read,
	.fsync = posix_fsync,
	.file_close = posix_file_close,
	.rename = posix_rename,
	.remove = posix_remove,
	.rmdir = posix_rmdir,
	.list = posix_list,
	.stat = posix_stat,
	.free_space = posix_free_space,
	.fsync_dir = posix_fsync_dir,
};

/* mkdir -p for the root itself, which may be absolute. */
static int make_root(const char *path, char *failed, size_t failed_size)
{
	size_t len = strlen(path);
	char *p = xstrdup(path);
	int rc = 0;

	for (size_t i = 1; i <= len; i++) {
		if (i < len && p[i] != '/')
			continue;
		p[i] = '\0';
		if (mkdir(p, 0750) && errno != EEXIST) {
			rc = -errno;
			snprintf(failed, failed_size, "%s", p);
			for (char *c = failed; *c; c++)
				if ((unsigned char)*c < 0x20 || *c == 0x7f)
					*c = '?';
			break;
		}
		if (i < len)
			p[i] = '/';
	}
	free(p);
	return rc;
}

int storage_posix_open(struct storage *s, const char *path,
		       const struct storage_opts *o, struct err *e)
{
	struct posix_impl *m;
	char failed[STORAGE_PATH_MAX];
	int fd, rc;

	s->url_redacted = xstrdup(path);
	for (char *c = s->url_redacted; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	if (strlen(path) >= 4096)
		return storage_set_error(e, ENAMETOOLONG, NULL,
					 "unable to open repository '%.64s...'",
					 s->url_redacted);
	if (o->create_root && (rc = make_root(path, failed, sizeof(failed))))
		return storage_set_error(e, -rc, NULL,
					 "unable to create repository folder '%s'",
					 failed);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return storage_set_error(e, errno, NULL,
					 "unable to open repository '%s'",
					 s->url_redacted);
	m = xcalloc(1, sizeof(*m));
	m->root_fd = fd;
	s->impl = m;
	s->ops = &posix_backend;
	return 0;
}
