/* Unit tests of common/strategy.c: durations, strategies, their steps. */
#include <errno.h>

#include "strategy.h"
#include "tap.h"

static int
parse(const char *s, struct strategy *st)
{
	char diag[256];

	return strategy_parse(s, st, diag, sizeof(diag));
}

int
main(void)
{
	struct strategy st;
	char diag[256], text[STRATEGY_TEXT_MAX];
	uint64_t ms;

	is_int(strategy_duration_parse("90s", &ms, diag, sizeof(diag)), 0, "90s");
	is_int(ms, 90000, "90s is 90000 ms");
	is_int(strategy_duration_parse("10m", &ms, diag, sizeof(diag)), 0, "10m");
	is_int(ms, 600000, "10m");
	is_int(strategy_duration_parse("1h", &ms, diag, sizeof(diag)), 0, "1h");
	is_int(ms, 3600000, "1h");
	is_int(strategy_duration_parse("5", &ms, diag, sizeof(diag)), 0, "bare number");
	is_int(ms, 300000, "a bare number means minutes");
	is_int(strategy_duration_parse("168h", &ms, diag, sizeof(diag)), 0, "a week");
	is_int(strategy_duration_parse("169h", &ms, diag, sizeof(diag)), -EINVAL, "over a week");
	ok(strstr(diag, "168h") != NULL, "diag says the bound: %s", diag);
	is_int(strategy_duration_parse("0s", &ms, diag, sizeof(diag)), -EINVAL, "zero");
	is_int(strategy_duration_parse("", &ms, diag, sizeof(diag)), -EINVAL, "empty");
	is_int(strategy_duration_parse("s", &ms, diag, sizeof(diag)), -EINVAL, "unit only");
	is_int(strategy_duration_parse("10d", &ms, diag, sizeof(diag)), -EINVAL, "days");
	is_int(strategy_duration_parse("-5m", &ms, diag, sizeof(diag)), -EINVAL, "negative");
	is_int(strategy_duration_parse("1.5m", &ms, diag, sizeof(diag)), -EINVAL, "fraction");
	is_int(strategy_duration_parse("99999999999999999999s", &ms, diag, sizeof(diag)), -EINVAL,
	       "huge");

	is_int(parse("all-at-once", &st), 0, "all-at-once");
	is_int(st.kind, STRATEGY_ALL_AT_ONCE, "kind");
	is_int(strategy_steps(&st), 0, "no timed steps");
	is_int(strategy_weight(&st, 1), 100, "all at once");

	is_int(parse("canary:10:5m", &st), 0, "canary");
	is_int(st.kind, STRATEGY_CANARY, "kind");
	is_int(st.pct, 10, "pct");
	is_int(st.step_ms, 300000, "duration");
	is_int(strategy_steps(&st), 1, "one step");
	is_int(strategy_weight(&st, 1), 10, "10%% during the step");
	is_int(strategy_weight(&st, 2), 100, "then all");
	strategy_format(&st, text, sizeof(text));
	is_str(text, "canary:10:5m", "format");

	is_int(parse("linear:25:90s", &st), 0, "linear");
	is_int(strategy_steps(&st), 3, "25, 50, 75");
	is_int(strategy_weight(&st, 3), 75, "third step");
	is_int(strategy_weight(&st, 4), 100, "then all");
	strategy_format(&st, text, sizeof(text));
	is_str(text, "linear:25:90s", "format");
	is_int(parse("linear:30:1h", &st), 0, "linear 30");
	is_int(strategy_steps(&st), 3, "30, 60, 90");
	is_int(parse("linear:99:2", &st), 0, "linear 99");
	is_int(strategy_steps(&st), 1, "99 then 100");
	is_int(st.step_ms, 120000, "bare minutes");
	strategy_format(&st, text, sizeof(text));
	is_str(text, "linear:99:2m", "format");
	is_int(parse("linear:1:1s", &st), 0, "linear 1");
	is_int(strategy_steps(&st), 99, "99 steps");

	is_int(parse("canary:0:5m", &st), -EINVAL, "0%%");
	is_int(parse("canary:100:5m", &st), -EINVAL, "100%%");
	is_int(parse("canary:-5:5m", &st), -EINVAL, "negative");
	is_int(parse("canary:10", &st), -EINVAL, "no duration");
	is_int(parse("canary::5m", &st), -EINVAL, "no pct");
	is_int(parse("canary:10:", &st), -EINVAL, "empty duration");
	is_int(parse("canary:10:5x", &st), -EINVAL, "bad unit");
	is_int(parse("blue-green", &st), -EINVAL, "unknown strategy");
	is_int(parse("", &st), -EINVAL, "empty");
	is_int(parse("CANARY:10:5m", &st), -EINVAL, "case matters");
	is_int(strategy_parse("linear:10:5q", &st, diag, sizeof(diag)), -EINVAL, "bad unit");
	ok(strstr(diag, "linear:10:5q") && strstr(diag, "duration"), "diag names both: %s", diag);
	is_int(strategy_parse("canary:101:5m", &st, diag, sizeof(diag)), -EINVAL, "101");
	ok(strstr(diag, "1 to 99") != NULL, "diag gives the range: %s", diag);
	return done();
}
