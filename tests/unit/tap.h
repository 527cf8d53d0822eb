/*
 * tap.h - a tiny TAP producer for faasd's unit tests: ok(), is_int(),
 * is_str(), done().  Each test binary prints "1..N" at the end and exits
 * non-zero when any check failed.
 */
#ifndef FAASD_TAP_H
#define FAASD_TAP_H

#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

/* cond is evaluated once (it may be a call with effects). */
#define ok(cond, ...)                                                 \
	do {                                                          \
		int _ok = !!(cond);                                   \
		tap_n++;                                              \
		if (_ok)                                              \
			printf("ok %d - ", tap_n);                    \
		else {                                                \
			tap_failed++;                                 \
			printf("not ok %d - ", tap_n);                \
		}                                                     \
		printf(__VA_ARGS__);                                  \
		printf("\n");                                         \
		if (!_ok)                                             \
			printf("#   at %s:%d\n", __FILE__, __LINE__); \
	} while (0)

#define is_int(got, want, ...)                                           \
	do {                                                             \
		long long _g = (long long)(got), _w = (long long)(want); \
		ok(_g == _w, __VA_ARGS__);                               \
		if (_g != _w)                                            \
			printf("#   got %lld, want %lld\n", _g, _w);     \
	} while (0)

#define is_str(got, want, ...)                                                  \
	do {                                                                    \
		const char *_g = (got), *_w = (want);                           \
		int _same = _g && _w && strcmp(_g, _w) == 0;                    \
		ok(_same, __VA_ARGS__);                                         \
		if (!_same)                                                     \
			printf("#   got '%s', want '%s'\n", _g ? _g : "(null)", \
			       _w ? _w : "(null)");                             \
	} while (0)

/* main must return it: the exit status is what marks a failed binary. */
__attribute__((warn_unused_result)) static inline int
done(void)
{
	printf("1..%d\n", tap_n);
	if (tap_failed)
		printf("# %d of %d checks failed\n", tap_failed, tap_n);
	return tap_failed ? 1 : 0;
}

#endif
