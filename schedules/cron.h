/* Cron expressions and their next fire time, in UTC or a tz database zone.
 *
 * Grammar (strict; anything else is ERR_CONFIG naming the expression and
 * the field, e.g. "cron '0 25 * * *': hour 25 is out of range 0-23"):
 *   - five fields: minute (0-59) hour (0-23) day-of-month (1-31)
 *     month (1-12, jan-dec) day-of-week (0-7, sun-sat; 0 and 7 are Sunday),
 *     separated by spaces or tabs;
 *   - each field a comma list of `*`, `N`, `N-M`, `* / S` or `N-M/S`
 *     (written `* / S` here only because C comments cannot hold star-slash;
 *     no spaces around '/' in real expressions); names are case-insensitive
 *     and allowed in ranges (`mon-fri`, `jan-jun/2`); `N/S` without a range
 *     is refused as ambiguous;
 *   - aliases @yearly @annually @monthly @weekly @daily @midnight @hourly;
 *   - `@every DURATION` with units d h m s in that order, each at most once
 *     (`30s`, `5m`, `1h30m`, `2d12h`), from 1s to 31d.
 * Classic Vixie day rule: when both day-of-month and day-of-week are
 * restricted (neither field starts with '*') a day matches if EITHER
 * matches; otherwise both must. An expression no calendar date can satisfy
 * (`0 0 30 2 *`) is refused by cron_parse as "never fires".
 *
 * Daylight saving time (the rule of Vixie cron and cronie):
 *   - a "fixed" expression (neither minute nor hour field starts with '*',
 *     e.g. `30 2 * * *`) fires once per matching wall-clock time: a time in
 *     the spring-forward gap fires at the first instant after the gap (02:30
 *     in Europe/Berlin on the last Sunday of March fires at 03:00 CEST), and
 *     a time that occurs twice at fall-back fires at its first occurrence
 *     only;
 *   - a "wildcard" expression (minute or hour starts with '*', e.g.
 *     `0 * * * *`, every 15 minutes) follows real time: wall-clock times in
 *     the gap do not exist and are not fired, and repeated wall-clock times
 *     fire on both occurrences, so an hourly job still runs every hour.
 *
 * Time zones are read from the TZif files under /usr/share/zoneinfo by this
 * module (including the POSIX TZ footer for dates past the table) and
 * converted with integer arithmetic: no TZ environment variable, no tzset,
 * no mktime, so every function here is thread-safe. Loaded zones are kept in
 * a process-wide cache (mutex-protected, immutable once loaded). */
#ifndef BACKUPD_CRON_H
#define BACKUPD_CRON_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "err.h"

#define CRON_EXPR_MAX 200               /* bytes of one expression */
#define CRON_EVERY_MIN_S 1
#define CRON_EVERY_MAX_S (31 * 86400)
#define CRON_ZONEINFO "/usr/share/zoneinfo"

/* A parsed expression. Plain data in caller storage: copy it freely. */
struct cron {
	uint64_t minutes;    /* bit m set: minute m matches (0-59) */
	uint32_t hours;      /* bit h: hour h (0-23) */
	uint32_t mdays;      /* bit d: day of month d (1-31) */
	uint16_t months;     /* bit m: month m (1-12) */
	uint8_t wdays;       /* bit d: weekday d (0-6, 0 = Sunday) */
	bool mday_star;      /* day-of-month field starts with '*' */
	bool wday_star;      /* day-of-week field starts with '*' */
	bool wild;           /* minute or hour field starts with '*' (DST rule) */
	int64_t every_s;     /* > 0 for @every: the interval; fields unused */
	char expr[CRON_EXPR_MAX + 1]; /* as written, for messages */
};

/* Parses expr into *out. ERR_CONFIG with a one-line message on any error
 * (the expression is quoted with non-printable bytes shown as '?'). */
int cron_parse(const char *expr, struct cron *out, struct err *e);

/* The next fire time strictly after `after`, in the zone named tz
 * (NULL = UTC; otherwise a name under /usr/share/zoneinfo, loaded on first
 * use). For a cron expression: the first matching wall-clock minute after
 * `after`, with the DST rule above. For @every: after + interval, so pass
 * the last fire time to keep runs on the grid last + k * interval (the
 * zone is not used). ERR_CONFIG when the zone cannot be loaded or the
 * expression never fires (searched over 400 years, the Gregorian cycle);
 * ERR_INTERNAL when `after` lies outside years 1-9999. */
int cron_next(const struct cron *c, const char *tz, time_t after,
	      time_t *next, struct err *e);

/* A loaded time zone. Borrowed from the process-wide cache: valid until
 * cron_zone_cache_clear(), which only tests and exit paths call. */
struct cron_zone;

/* Finds or loads zone `name` (NULL or "" = UTC, no file read). Refuses
 * names that are absolute, contain "..", or name files that are not TZif or
 * count leap seconds (the "right/" zones). At most CRON_ZONE_CACHE_MAX
 * distinct zones per process. */
#define CRON_ZONE_CACHE_MAX 256
int cron_zone_get(const char *name, const struct cron_zone **out,
		  struct err *e);
/* As cron_next with a zone already loaded: no file I/O, no locks. */
int cron_next_in(const struct cron *c, const struct cron_zone *z,
		 time_t after, time_t *next, struct err *e);
/* Seconds east of UTC in effect at instant t (e.g. 7200 for CEST). */
int32_t cron_zone_utoff(const struct cron_zone *z, time_t t);
/* The name it was loaded by ("UTC" for the built-in one). */
const char *cron_zone_name(const struct cron_zone *z);
/* Frees every cached zone. Only when no other thread holds one. */
void cron_zone_cache_clear(void);

#endif
