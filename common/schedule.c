/*
 * schedule.c - parsing schedules and finding their slots (schedule.h).
 * Pure functions of their arguments (UTC through timegm/gmtime_r); used by
 * the manifest check (fnconfig.c) and the gateway's scheduler.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "schedule.h"
#include "util.h"

#define FIVE_YEARS_S (5ll * 366 * 86400)

static int
rate_parse(const char *s, struct schedule *out, char *diag, size_t n)
{
	static const struct {
		const char *one, *many;
		uint64_t s;
	} units[] = { { "minute", "minutes", 60 },
		      { "hour", "hours", 3600 },
		      { "day", "days", 86400 } };
	size_t len = strlen(s);
	char buf[64], *sp;
	uint64_t k;

	if (len < 7 || s[len - 1] != ')' || len - 6 >= sizeof(buf))
		goto bad;
	memcpy(buf, s + 5, len - 6);
	buf[len - 6] = 0;
	sp = strchr(buf, ' ');
	if (!sp)
		goto bad;
	*sp = 0;
	if (parse_u64(buf, 1, 1000000, &k) < 0) {
		(void)str_printf(diag, n,
				 "schedule '%.60s': the rate must be a whole number from 1", s);
		return -EINVAL;
	}
	for (size_t i = 0; i < ARRAY_SIZE(units); i++)
		if (strcmp(sp + 1, k == 1 ? units[i].one : units[i].many) == 0) {
			out->period_s = k * units[i].s;
			return 0;
		}
bad:
	(void)str_printf(diag, n,
			 "schedule '%.60s' is not rate(N minute|minutes|hour|hours|day|days) "
			 "(1 takes the singular)",
			 s);
	return -EINVAL;
}

/* One cron field of [lo, hi] into *bits; *any when it is "*" alone. */
static int
field_parse(const char *f, size_t len, unsigned lo, unsigned hi, uint64_t *bits, bool *any)
{
	char buf[64], *item, *next;

	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, f, len);
	buf[len] = 0;
	*bits = 0;
	*any = strcmp(buf, "*") == 0;
	for (item = buf; item; item = next) {
		char *slash, *dash;
		uint64_t a = lo, b = hi, step = 1;

		next = strchr(item, ',');
		if (next)
			*next++ = 0;
		slash = strchr(item, '/');
		if (slash) {
			*slash = 0;
			if (parse_u64(slash + 1, 1, hi, &step) < 0)
				return -EINVAL;
		}
		if (strcmp(item, "*") != 0) {
			dash = strchr(item, '-');
			if (dash)
				*dash = 0;
			if (parse_u64(item, lo, hi, &a) < 0)
				return -EINVAL;
			b = a;
			if (dash && parse_u64(dash + 1, lo, hi, &b) < 0)
				return -EINVAL;
			if (b < a)
				return -EINVAL;
			if (slash && !dash)
				b = hi; /* "5/15": from 5 on, every 15 */
		}
		for (uint64_t v = a; v <= b; v += step)
			*bits |= 1ull << v;
	}
	return 0;
}

static int
cron_parse(const char *s, struct schedule *out, char *diag, size_t n)
{
	static const struct {
		const char *name;
		unsigned lo, hi;
	} fields[] = { { "minute", 0, 59 },
		       { "hour", 0, 23 },
		       { "day of month", 1, 31 },
		       { "month", 1, 12 },
		       { "day of week", 0, 7 } };
	const char *p = s;
	uint64_t bits[5];
	bool any[5];

	for (unsigned i = 0; i < 5; i++) {
		size_t len;

		while (*p == ' ')
			p++;
		len = strcspn(p, " ");
		if (len == 0) {
			(void)str_printf(
				diag, n,
				"schedule '%.60s' has %u cron fields; it needs five (minute "
				"hour day-of-month month day-of-week) or rate(...)",
				s, i);
			return -EINVAL;
		}
		if (field_parse(p, len, fields[i].lo, fields[i].hi, &bits[i], &any[i]) < 0) {
			(void)str_printf(
				diag, n,
				"schedule '%.60s': the %s field '%.*s' is not *, N, A-B, */S "
				"or a list of them within %u-%u",
				s, fields[i].name, (int)MIN(len, (size_t)20), p, fields[i].lo,
				fields[i].hi);
			return -EINVAL;
		}
		p += len;
	}
	while (*p == ' ')
		p++;
	if (*p) {
		(void)str_printf(diag, n, "schedule '%.60s' has more than five cron fields", s);
		return -EINVAL;
	}
	out->minute = bits[0];
	out->hour = (uint32_t)bits[1];
	out->dom = (uint32_t)bits[2];
	out->month = (uint16_t)bits[3];
	out->dow = (uint8_t)((bits[4] | (bits[4] >> 7)) & 0x7f); /* 7 is Sunday too */
	out->dom_any = any[2];
	out->dow_any = any[4];
	return 0;
}

int
schedule_parse(const char *s, struct schedule *out, char *diag, size_t n)
{
	memset(out, 0, sizeof(*out));
	if (str_startswith(s, "rate("))
		return rate_parse(s, out, diag, n);
	return cron_parse(s, out, diag, n);
}

static bool
day_matches(const struct schedule *s, const struct tm *tm)
{
	bool dom = s->dom >> tm->tm_mday & 1, dow = s->dow >> tm->tm_wday & 1;

	if (s->dom_any || s->dow_any)
		return dom && dow; /* one of them is "*": all of its bits are set */
	return dom || dow;
}

static bool
matches(const struct schedule *s, const struct tm *tm)
{
	return (s->month >> (tm->tm_mon + 1) & 1) && day_matches(s, tm) &&
	       (s->hour >> tm->tm_hour & 1) && (s->minute >> tm->tm_min & 1);
}

/* Step minute by minute, skipping whole days and hours that cannot match;
 * dir is +1 or -1. */
static int64_t
cron_walk(const struct schedule *s, int64_t t, int dir)
{
	int64_t end = dir > 0 ? t + FIVE_YEARS_S : t - FIVE_YEARS_S;

	t -= ((t % 60) + 60) % 60; /* the minute t is in */
	if (dir > 0)
		t += 60;
	while (dir > 0 ? t <= end : t >= end) {
		time_t tt = (time_t)t;
		struct tm tm;

		if (!gmtime_r(&tt, &tm))
			return -1;
		if (!(s->month >> (tm.tm_mon + 1) & 1) || !day_matches(s, &tm)) {
			/* to the next day's 00:00, or the previous day's 23:59 */
			int64_t day = t - (int64_t)tm.tm_hour * 3600 - tm.tm_min * 60;

			t = dir > 0 ? day + 86400 : day - 60;
			continue;
		}
		if (!(s->hour >> tm.tm_hour & 1)) {
			int64_t hour = t - tm.tm_min * 60;

			t = dir > 0 ? hour + 3600 : hour - 60;
			continue;
		}
		if (matches(s, &tm))
			return t;
		t += dir * 60;
	}
	return -1;
}

int64_t
schedule_prev(const struct schedule *s, int64_t t)
{
	if (s->period_s)
		return t - (int64_t)((uint64_t)t % s->period_s);
	return cron_walk(s, t, -1);
}

int64_t
schedule_next(const struct schedule *s, int64_t t)
{
	if (s->period_s)
		return t - (int64_t)((uint64_t)t % s->period_s) + (int64_t)s->period_s;
	return cron_walk(s, t, +1);
}
