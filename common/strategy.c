/*
 * strategy.c - parse and step deployment strategies (see strategy.h).
 * Pure functions over caller memory; used by faasctl and the gateway.
 */
#include "strategy.h"

#include <errno.h>
#include <string.h>

#include "util.h"

int
strategy_duration_parse(const char *s, uint64_t *ms, char *diag, size_t n)
{
	char digits[24];
	size_t len = strlen(s), nd = len;
	uint64_t v, unit = 60000;

	if (len > 0 && strchr("smh", s[len - 1])) {
		nd = len - 1;
		unit = s[len - 1] == 's' ? 1000 : s[len - 1] == 'm' ? 60000 : 3600000;
	}
	if (nd == 0 || nd >= sizeof(digits)) {
		(void)str_printf(diag, n,
				 "duration '%.32s' must be a number with s, m or h (90s, 10m, 1h); "
				 "a bare number means minutes",
				 s);
		return -EINVAL;
	}
	memcpy(digits, s, nd);
	digits[nd] = 0;
	if (parse_u64(digits, 1, STRATEGY_MAX_STEP_MS / 1000, &v) < 0 ||
	    v * unit > STRATEGY_MAX_STEP_MS) {
		(void)str_printf(diag, n,
				 "duration '%.32s' must be a whole number of s, m or h between "
				 "1s and 168h (a bare number means minutes)",
				 s);
		return -EINVAL;
	}
	*ms = v * unit;
	return 0;
}

int
strategy_parse(const char *s, struct strategy *out, char *diag, size_t n)
{
	const char *p, *c2;
	char pct[8];
	uint64_t v;

	memset(out, 0, sizeof(*out));
	if (strcmp(s, "all-at-once") == 0) {
		out->kind = STRATEGY_ALL_AT_ONCE;
		return 0;
	}
	if (str_startswith(s, "canary:")) {
		out->kind = STRATEGY_CANARY;
		p = s + 7;
	} else if (str_startswith(s, "linear:")) {
		out->kind = STRATEGY_LINEAR;
		p = s + 7;
	} else {
		(void)str_printf(diag, n,
				 "strategy '%.48s' is not one of all-at-once, canary:PCT:DURATION, "
				 "linear:STEP:DURATION",
				 s);
		return -EINVAL;
	}
	c2 = strchr(p, ':');
	if (!c2 || (size_t)(c2 - p) >= sizeof(pct) || c2 == p) {
		(void)str_printf(diag, n, "strategy '%.48s' needs %s:%s:DURATION (e.g. %s)", s,
				 out->kind == STRATEGY_CANARY ? "canary" : "linear",
				 out->kind == STRATEGY_CANARY ? "PCT" : "STEP",
				 out->kind == STRATEGY_CANARY ? "canary:10:5m" : "linear:10:1m");
		return -EINVAL;
	}
	memcpy(pct, p, (size_t)(c2 - p));
	pct[c2 - p] = 0;
	if (parse_u64(pct, 1, 99, &v) < 0) {
		(void)str_printf(diag, n,
				 "strategy '%.48s': %s '%s' must be a whole percent from 1 to 99 "
				 "(100 is all-at-once)",
				 s, out->kind == STRATEGY_CANARY ? "PCT" : "STEP", pct);
		return -EINVAL;
	}
	out->pct = (unsigned)v;
	if (strategy_duration_parse(c2 + 1, &out->step_ms, diag, n) < 0) {
		char sub[200];

		(void)str_copy(sub, sizeof(sub), diag);
		(void)str_printf(diag, n, "strategy '%.48s': %s", s, sub);
		return -EINVAL;
	}
	return 0;
}

unsigned
strategy_steps(const struct strategy *st)
{
	switch (st->kind) {
	case STRATEGY_CANARY:
		return 1;
	case STRATEGY_LINEAR:
		/* STEP, 2·STEP, … while below 100. */
		return (100 + st->pct - 1) / st->pct - 1;
	default:
		return 0;
	}
}

unsigned
strategy_weight(const struct strategy *st, unsigned step)
{
	if (step == 0)
		return 0;
	if (step > strategy_steps(st))
		return 100;
	return st->kind == STRATEGY_CANARY ? st->pct : st->pct * step;
}

void
strategy_format(const struct strategy *st, char *buf, size_t n)
{
	uint64_t ms = st->step_ms;
	char d[24];

	if (st->kind == STRATEGY_ALL_AT_ONCE) {
		(void)str_copy(buf, n, "all-at-once");
		return;
	}
	if (ms % 3600000 == 0)
		(void)str_printf(d, sizeof(d), "%lluh", (unsigned long long)(ms / 3600000));
	else if (ms % 60000 == 0)
		(void)str_printf(d, sizeof(d), "%llum", (unsigned long long)(ms / 60000));
	else
		(void)str_printf(d, sizeof(d), "%llus", (unsigned long long)(ms / 1000));
	(void)str_printf(buf, n, "%s:%u:%s", st->kind == STRATEGY_CANARY ? "canary" : "linear",
			 st->pct, d);
}
