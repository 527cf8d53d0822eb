/* Unit tests of common/schedule.c: rate and cron parsing (with what the
 * errors say) and the slots before and after a time, across weekends, the
 * year's end, both day fields and a date that never comes. */
#include <errno.h>

#include "schedule.h"
#include "tap.h"

static int64_t
next_of(const char *expr, int64_t t)
{
	struct schedule s;
	char diag[200];

	if (schedule_parse(expr, &s, diag, sizeof(diag)) < 0)
		return -2;
	return schedule_next(&s, t);
}

static int64_t
prev_of(const char *expr, int64_t t)
{
	struct schedule s;
	char diag[200];

	if (schedule_parse(expr, &s, diag, sizeof(diag)) < 0)
		return -2;
	return schedule_prev(&s, t);
}

int
main(void)
{
	static const char *const good[] = {
		"rate(1 minute)", "rate(5 minutes)",      "rate(1 hour)",     "rate(2 hours)",
		"rate(1 day)",    "rate(7 days)",         "* * * * *",        "*/5 * * * *",
		"0 9 * * 1-5",    "0,30 8-18/2 1,15 * 0", "  1  2  3  4  5 ", "0 0 * * 7",
	};
	static const struct {
		const char *expr, *says;
	} bad[] = {
		{ "rate(1 minutes)", "singular" },     { "rate(5 minute)", "singular" },
		{ "rate(0 minutes)", "whole number" }, { "rate(5 weeks)", "rate(N minute" },
		{ "rate(5minutes)", "rate(N minute" }, { "* * * *", "has 4 cron fields" },
		{ "* * * * * *", "more than five" },   { "60 * * * *", "minute field '60'" },
		{ "* 24 * * *", "hour field" },        { "* * 0 * *", "day of month field" },
		{ "* * * 13 *", "month field" },       { "* * * * 8", "day of week field" },
		{ "5-1 * * * *", "minute field" },     { "*/0 * * * *", "minute field" },
		{ "a * * * *", "minute field" },       { "1,,2 * * * *", "minute field" },
	};
	struct schedule s;
	char diag[200];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		is_int(schedule_parse(good[i], &s, diag, sizeof(diag)), 0, "'%s' parses", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		diag[0] = 0;
		is_int(schedule_parse(bad[i].expr, &s, diag, sizeof(diag)), -EINVAL,
		       "'%s' is refused", bad[i].expr);
		ok(strstr(diag, bad[i].says) != NULL, "…saying '%s': %s", bad[i].says, diag);
	}

	/* Fri 2026-12-04 12:07:00 UTC and around it */
	is_int(next_of("rate(5 minutes)", 1796386020), 1796386200, "rate: the next multiple");
	is_int(prev_of("rate(5 minutes)", 1796386020), 1796385900, "rate: the one before");
	is_int(prev_of("rate(5 minutes)", 1796385900), 1796385900, "rate: a slot is its own prev");
	is_int(prev_of("rate(1 day)", 1796386020), 1796342400, "rate(1 day): 00:00 UTC");
	is_int(next_of("*/15 * * * *", 1796386020), 1796386500, "*/15: 12:15");
	is_int(prev_of("*/15 * * * *", 1796386020), 1796385600, "*/15: 12:00 before");
	is_int(prev_of("*/15 * * * *", 1796385600), 1796385600, "a slot is its own prev");
	is_int(next_of("*/15 * * * *", 1796385600), 1796385600 + 900, "next is after, not at");
	is_int(next_of("* * * * *", 1796386020 + 59), 1796386080, "every minute: the next one");
	/* Sat 2026-12-05 10:00: weekdays at 09:00 next come on Monday */
	is_int(next_of("0 9 * * 1-5", 1796464800), 1796634000, "over the weekend to Monday");
	is_int(prev_of("0 9 * * 1-5", 1796464800), 1796374800, "back to Friday");
	is_int(next_of("59 23 31 12 *", 1796386020), 1798761540, "to the year's last minute");
	is_int(prev_of("59 23 31 12 *", 1798761600), 1798761540, "back over the year's end");
	/* day of month 13 or Friday: from Fri 4 Dec 00:00 the next is Fri 11 */
	is_int(next_of("0 0 13 * 5", 1796342400), 1796947200, "either day field: Friday the 11th");
	is_int(next_of("0 0 13 * *", 1796342400), 1797120000, "day of month alone: the 13th");
	is_int(next_of("0 0 * * 7", 1796386020), 1796515200, "7 is Sunday");
	is_int(next_of("0 0 * * 0", 1796386020), 1796515200, "so is 0");
	is_int(next_of("0 0 30 2 *", 1796386020), -1, "30 February never comes");
	is_int(prev_of("0 0 30 2 *", 1796386020), -1, "nor came");
	return done();
}
