/* Repository storage: one interface, two backends (a local directory through
 * POSIX calls, an NFSv3 export through libnfs without a kernel mount).
 *
 * Threads: a struct storage and the files opened from it belong to one
 * thread at a time (an NFS context is not thread-safe in libnfs 4.0); each
 * worker opens its own. Different storages may work on the same repository
 * concurrently.
 *
 * Paths are relative to the root given at open, '/'-separated, and pass
 * storage_path_check(). The root itself is named "" in storage_list,
 * storage_stat, storage_mkdir_p, storage_fsync_dir; everywhere else "" is
 * refused. Symbolic links are never followed below the root (a repository
 * holds none): storage_stat reports a link as a plain non-directory.
 *
 * Errors: ERR_STORAGE with the errno in e->sys_errno (libnfs' negative errno
 * returns are mapped the same way; an NFS call that got no reply within the
 * timeout reports ETIMEDOUT), ERR_NO_SPACE for ENOSPC/EDQUOT. Messages are one
 * line: "unable to write 'shop/x/t1.tsv.zst' on 'nfs://host/export': No
 * space left on device". */
#ifndef BACKUPD_STORAGE_H
#define BACKUPD_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "err.h"

/* Longest relative path accepted, and longest single component. */
#define STORAGE_PATH_MAX 1024
#define STORAGE_NAME_MAX 255
/* Most entries storage_list returns for one folder. */
#define STORAGE_LIST_MAX 1000000

#define STORAGE_TIMEOUT_MS_DEFAULT 15000
#define STORAGE_RECONNECT_DEFAULT 5

struct storage;
struct storage_file;

struct storage_opts {
	/* NFS: longest wait for one server reply; libnfs counts whole
	 * seconds, so this is rounded up. <= 0 means the default. A dead or
	 * hung server turns into an error after about this long. */
	int timeout_ms;
	/* NFS: reconnect attempts after a lost connection, 0..100 (libnfs'
	 * "forever" is refused: it spins while the server is gone). */
	int reconnect_attempts;
	/* Create the root folder (and its parents) when missing. */
	bool create_root;
};

struct storage_stat {
	bool exists;
	bool is_dir;
	uint64_t size;      /* bytes */
	time_t mtime;       /* seconds since the epoch */
};

/* Defaults: STORAGE_TIMEOUT_MS_DEFAULT, STORAGE_RECONNECT_DEFAULT,
 * create_root = true. */
void storage_opts_init(struct storage_opts *o);

/* url: a local directory path, or nfs://host/export/path?nfsport=N&mountport=N
 * (NFSv3 is forced; libnfs URL options such as uid= are honoured, but
 * timeout and reconnect come from o). o NULL means storage_opts_init().
 * Caller closes *out with storage_close(). */
int storage_open(const char *url, const struct storage_opts *o,
		 struct storage **out, struct err *e);
void storage_close(struct storage *s);               /* NULL ok */

/* The URL without its query string (nfs://host/export/path) or the local
 * path: for messages and logs. Borrowed until storage_close. */
const char *storage_url_redacted(const struct storage *s);
/* The same text for a URL without opening it (what catalogs record as a
 * snapshot's repository): the URL up to its query string. */
void storage_redact_url(const char *url, char *out, size_t n);
/* "posix" or "nfs". */
const char *storage_backend_name(const struct storage *s);
/* The write size that suits the backend best (NFS: the server's writemax;
 * posix: 1 MiB). Callers may size their buffers with it. */
size_t storage_io_size(const struct storage *s);

/* Refuses "", absolute paths, empty components ("a//b", trailing '/'), "."
 * and ".." components, control characters, and paths longer than
 * STORAGE_PATH_MAX (components longer than STORAGE_NAME_MAX). Used for every
 * path; exported for manifest validation. ERR_STORAGE, sys_errno EINVAL or
 * ENAMETOOLONG. */
int storage_path_check(const char *rel, struct err *e);
/* Same for a counted string, which may hold a NUL (refused): for names
 * decoded from JSON. */
int storage_path_check_len(const char *rel, size_t len, struct err *e);

/* Creates rel and missing parents (mode 0750); an existing folder is fine. */
int storage_mkdir_p(struct storage *s, const char *rel, struct err *e);

/* Write-only, mode 0640. Truncates an existing file unless exclusive, in
 * which case an existing file fails with sys_errno EEXIST. The parent folder
 * must exist. Caller closes *out with storage_file_close(). */
int storage_create(struct storage *s, const char *rel, bool exclusive,
		   struct storage_file **out, struct err *e);
int storage_open_read(struct storage *s, const char *rel,
		      struct storage_file **out, struct err *e);
/* Writes all of it. The NFS backend buffers small writes and issues calls
 * of exactly writemax bytes (the last one shorter), so a failure may only
 * show at a later write, storage_fsync or storage_file_close. After a
 * failure every later write or fsync on f fails at once. */
int storage_write(struct storage_file *f, const void *data, size_t n,
		  struct err *e);
/* Fills buf up to cap; *got < cap only at end of file (0 at EOF). */
int storage_read(struct storage_file *f, void *buf, size_t cap, size_t *got,
		 struct err *e);
/* Flushes buffered data and makes it durable (fsync / NFS COMMIT). */
int storage_fsync(struct storage_file *f, struct err *e);
/* Flushes buffered data and closes; fails if the flush or close fails or an
 * earlier write failed. Frees f even on error. NULL ok. Closing does not
 * promise durability: call storage_fsync first. On NFS, closing a written
 * file after the server went away may take up to one timeout. */
int storage_file_close(struct storage_file *f, struct err *e);

/* Replaces an existing 'to' atomically. */
int storage_rename(struct storage *s, const char *from, const char *to,
		   struct err *e);
int storage_remove(struct storage *s, const char *rel, struct err *e);   /* file */
int storage_rmdir(struct storage *s, const char *rel, struct err *e);    /* empty folder */
/* Deletes a folder and everything below it (never the root). A missing
 * folder is not an error. Links are removed, never followed. */
int storage_remove_tree(struct storage *s, const char *rel, struct err *e);

/* Names in the folder, without "." and "..", sorted bytewise; at most
 * STORAGE_LIST_MAX. Caller frees with storage_list_free(). */
int storage_list(struct storage *s, const char *rel, char ***names,
		 size_t *n, struct err *e);
void storage_list_free(char **names, size_t n);

/* A missing path is not an error: st->exists = false. */
int storage_stat(struct storage *s, const char *rel, struct storage_stat *st,
		 struct err *e);
/* Space of the file system that holds the root, as seen by an unprivileged
 * writer (f_bavail). */
int storage_free_space(struct storage *s, uint64_t *free_bytes,
		       uint64_t *total_bytes, struct err *e);
/* Makes the folder's entries (creates, renames) durable. Posix: fsync of the
 * folder. NFS: nothing to do, see lib/storage/nfs.c. */
int storage_fsync_dir(struct storage *s, const char *rel, struct err *e);

/* Durable whole-file write: rel.tmp -> write -> fsync -> close -> rename ->
 * fsync folder. Readers see the old file or the new one, never a part. Used
 * for manifest.json. */
int storage_write_atomic(struct storage *s, const char *rel, const void *data,
			 size_t n, struct err *e);
/* Reads a whole small file; a file larger than max bytes fails with
 * sys_errno EFBIG. *data is NUL-terminated (not counted in *n); caller
 * frees it with free(). */
int storage_read_all(struct storage *s, const char *rel, size_t max,
		     char **data, size_t *n, struct err *e);

#ifdef STORAGE_BACKEND
/* Backend interface: for lib/storage.c and the files in lib/storage/.
 *
 * Backend calls return 0 (or a count where noted) or a negative errno;
 * storage.c checks paths and turns failures into messages. A backend may
 * offer detail for the last failure through last_detail (libnfs' error
 * text). Paths passed to backends are checked, or "" for the root. */
struct storage_names {
	char **v;
	size_t n;
	size_t cap;
};

struct storage_backend {
	const char *name;
	void (*close)(struct storage *s);
	/* Detail for the last failure if it failed with errnum, else NULL. */
	const char *(*last_detail)(struct storage *s, int errnum);
	size_t (*io_size)(struct storage *s);
	int (*mkdir)(struct storage *s, const char *rel);        /* one level, 0750 */
	int (*create)(struct storage *s, struct storage_file *f, bool exclusive);
	int (*open_read)(struct storage *s, struct storage_file *f);
	int (*write)(struct storage_file *f, const void *data, size_t n);
	/* Fills up to cap; sets *got; short only at EOF. */
	int (*read)(struct storage_file *f, void *buf, size_t cap, size_t *got);
	int (*fsync)(struct storage_file *f);
	/* Flushes unless discard; releases f->impl whatever happens. */
	int (*file_close)(struct storage_file *f, bool discard);
	int (*rename)(struct storage *s, const char *from, const char *to);
	int (*remove)(struct storage *s, const char *rel);
	int (*rmdir)(struct storage *s, const char *rel);
	/* Adds every name but "." and ".." with storage_names_add. */
	int (*list)(struct storage *s, const char *rel, struct storage_names *out);
	/* lstat semantics; -ENOENT when missing. is_link set for links. */
	int (*stat)(struct storage *s, const char *rel, struct storage_stat *st,
		    bool *is_link);
	int (*free_space)(struct storage *s, uint64_t *free_bytes,
			  uint64_t *total_bytes);
	int (*fsync_dir)(struct storage *s, const char *rel);
};

struct storage {
	const struct storage_backend *ops;
	char *url_redacted;
	void *impl;
};

struct storage_file {
	struct storage *s;
	char *rel;
	bool writable;
	int failed_errno;   /* first write/flush failure; later calls fail fast */
	void *impl;
};

/* Adds a copy of name; -E2BIG past STORAGE_LIST_MAX. */
int storage_names_add(struct storage_names *names, const char *name);

/* Sets e like every storage error: ERR_NO_SPACE for ENOSPC/EDQUOT, else
 * ERR_STORAGE; message "<fmt>: strerror(errnum)[ (detail)]" on one line. */
int storage_set_error(struct err *e, int errnum, const char *detail,
		      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

int storage_posix_open(struct storage *s, const char *path,
		       const struct storage_opts *o, struct err *e);
int storage_nfs_open(struct storage *s, const char *url,
		     const struct storage_opts *o, struct err *e);
#endif

#endif
