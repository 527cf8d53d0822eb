/* timeparse.h - times of query parameters (see timeparse.c). */
#ifndef FAASD_TIMEPARSE_H
#define FAASD_TIMEPARSE_H

#include <stdint.h>

/*
 * time_parse - s as a Unix time in microseconds into *out; durations count
 * back from now_us.  0, or -EINVAL for anything else (a duration without a
 * unit, a time without "Z", a date before 1970, trailing bytes).
 */
int time_parse(const char *s, int64_t now_us, int64_t *out);

#endif
