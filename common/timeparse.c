/*
 * timeparse.c - the times query parameters and faasctl flags take:
 * a duration back from now ("90s", "10m", "2h", "7d", at most ten years),
 * an ISO 8601 UTC time ("2026-12-03T08:00:00Z", a fraction allowed) or
 * Unix seconds.  Pure: the caller passes "now", so tests and the fuzz
 * target see the same answers every time.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "timeparse.h"
#include "util.h"

int
time_parse(const char *s, int64_t now_us, int64_t *out)
{
	size_t n = strlen(s);
	uint64_t v;

	if (n >= 2 && strchr("smhd", s[n - 1]) && s[0] >= '0' && s[0] <= '9') {
		char num[24];
		uint64_t unit = s[n - 1] == 's'   ? 1
				: s[n - 1] == 'm' ? 60
				: s[n - 1] == 'h' ? 3600
						  : 86400;

		if (n - 1 >= sizeof(num))
			return -EINVAL;
		memcpy(num, s, n - 1);
		num[n - 1] = 0;
		if (parse_u64(num, 0, 3650ull * 86400 / unit, &v) < 0)
			return -EINVAL;
		*out = now_us - (int64_t)(v * unit * 1000000ull);
		return 0;
	}
	if (parse_u64(s, 0, 253402300799ull, &v) == 0) {
		*out = (int64_t)(v * 1000000ull);
		return 0;
	}
	{
		struct tm tm = { 0 };
		const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
		int64_t frac = 0, scale = 1000000;
		time_t t;

		if (!p)
			return -EINVAL;
		if (*p == '.') {
			p++;
			if (*p < '0' || *p > '9')
				return -EINVAL;
			for (; *p >= '0' && *p <= '9'; p++)
				if (scale > 1) {
					scale /= 10;
					frac += (*p - '0') * scale;
				}
		}
		if (strcmp(p, "Z") != 0)
			return -EINVAL;
		t = timegm(&tm);
		if (t < 0)
			return -EINVAL;
		*out = (int64_t)t * 1000000 + frac;
		return 0;
	}
}
