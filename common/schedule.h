/*
 * schedule.h - when a function's "schedule" (SPEC §4, §8) fires.
 *
 * rate(N minute|minutes|hour|hours|day|days): every N units, slots on
 * multiples of the period since the Unix epoch (rate(1 day) at 00:00 UTC).
 * Five cron fields (minute hour day-of-month month day-of-week, UTC), each
 * "*", a number, a range a-b, any of those followed by "/S" (every S-th
 * value from its start), or a list of them separated by commas;
 * day-of-week 0-7 with 0 and 7 Sunday; when both day fields are
 * restricted, a day matching either fires (as Vixie cron does).
 */
#ifndef FAASD_SCHEDULE_H
#define FAASD_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct schedule {
	uint64_t period_s; /* rate: the period; 0 for cron */
	uint64_t minute;   /* cron: bit m for minute m (0-59) */
	uint32_t hour;     /* bit h (0-23) */
	uint32_t dom;      /* bit d (1-31) */
	uint16_t month;    /* bit m (1-12) */
	uint8_t dow;       /* bit d (0-6, Sunday 0) */
	bool dom_any, dow_any;
};

/* Parse s.  0, or -EINVAL with diag saying what is wrong. */
int schedule_parse(const char *s, struct schedule *out, char *diag, size_t n);

/* The latest slot at or before t (Unix seconds), or -1 when there is none
 * in the five years before t (a cron that never matches, e.g. 30 Feb). */
int64_t schedule_prev(const struct schedule *s, int64_t t);

/* The first slot after t, or -1 when there is none in five years. */
int64_t schedule_next(const struct schedule *s, int64_t t);

#endif
