/*
 * strategy.h - deployment strategies of SPEC §6 ("all-at-once",
 * "canary:PCT:DURATION", "linear:STEP:DURATION"), parsed the same way by
 * faasctl (to refuse a typo before uploading) and by the gateway.
 */
#ifndef FAASD_STRATEGY_H
#define FAASD_STRATEGY_H

#include <stddef.h>
#include <stdint.h>

enum strategy_kind {
	STRATEGY_ALL_AT_ONCE = 1,
	STRATEGY_CANARY,
	STRATEGY_LINEAR,
};

#define STRATEGY_MAX_STEP_MS (7ull * 24 * 3600 * 1000) /* a week */
#define STRATEGY_TEXT_MAX    48

struct strategy {
	enum strategy_kind kind;
	unsigned pct;     /* canary: the new version's share; linear: the step */
	uint64_t step_ms; /* how long each timed step lasts */
};

/*
 * strategy_duration_parse - "90s", "10m", "1h" or a bare number of
 * minutes, between 1 s and a week, into *ms.  0, or -EINVAL with diag
 * saying what is wrong.
 */
int strategy_duration_parse(const char *s, uint64_t *ms, char *diag, size_t n);

/* strategy_parse - s into *out.  0, or -EINVAL with diag naming the part
 * that is wrong and what would be right. */
int strategy_parse(const char *s, struct strategy *out, char *diag, size_t n);

/* Timed steps before the new version takes all traffic (0 for
 * all-at-once), and the new version's percent during step k (1-based). */
unsigned strategy_steps(const struct strategy *st);
unsigned strategy_weight(const struct strategy *st, unsigned step);

/* Canonical text ("canary:10:5m") into buf (STRATEGY_TEXT_MAX bytes). */
void strategy_format(const struct strategy *st, char *buf, size_t n);

#endif
