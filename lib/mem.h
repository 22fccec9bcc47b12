/* Allocation helpers: every allocation in backupd goes through these.
 * Allocation failure aborts the process (as git and redis do): there is no
 * sensible recovery from ENOMEM in a backup daemon, and checking every call
 * site hides real errors. */
#ifndef BACKUPD_MEM_H
#define BACKUPD_MEM_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
/* Caller frees with free(). xstrdup(NULL) returns NULL. */
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
