/* Fuzz target: a manifest's "schedule" through schedule_parse; what it
 * accepts has slots that obey their contract (prev at or before the time,
 * next after it, both on the schedule). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "schedule.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const int64_t now = 1796386020; /* 2026-12-04 12:07 UTC, fixed */
	char *s = malloc(size + 1), diag[200];
	struct schedule sc;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	if (schedule_parse(s, &sc, diag, sizeof(diag)) == 0) {
		int64_t p = schedule_prev(&sc, now), n = schedule_next(&sc, now);

		if ((p >= 0 && (p > now || schedule_prev(&sc, p) != p)) || (n >= 0 && n <= now))
			__builtin_trap();
		if (p >= 0 && n >= 0 && schedule_next(&sc, p) != n && schedule_next(&sc, p) > now)
			__builtin_trap();
	}
	free(s);
	return 0;
}
