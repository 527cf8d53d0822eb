/*
 * util.h - small helpers shared by every faasd process and faasctl.
 *
 * Ownership helpers in the style of systemd: variables declared with
 * _cleanup_free_ / _cleanup_close_ release what they hold when they go out
 * of scope; TAKE_PTR / TAKE_FD hand ownership to someone else.  Also bounded
 * string copies (we never use strcpy/sprintf), number parsing without atoi,
 * and whole-buffer I/O loops.  Nothing here logs.
 */
#ifndef FAASD_UTIL_H
#define FAASD_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b)     ((a) < (b) ? (a) : (b))
#define MAX(a, b)     ((a) > (b) ? (a) : (b))

static inline void
freep(void *p)
{
	free(*(void **)p);
}

static inline void
closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

static inline void
fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

#define _cleanup_free_   __attribute__((cleanup(freep)))
#define _cleanup_close_  __attribute__((cleanup(closep)))
#define _cleanup_fclose_ __attribute__((cleanup(fclosep)))

#define TAKE_PTR(p)                      \
	({                               \
		__typeof__(p) _tp = (p); \
		(p) = NULL;              \
		_tp;                     \
	})
#define TAKE_FD(fd)             \
	({                      \
		int _tf = (fd); \
		(fd) = -1;      \
		_tf;            \
	})

/*
 * str_copy - copy src into dst of size n, always NUL-terminated.
 * Returns 0, or -ENAMETOOLONG when src did not fit (dst holds a prefix).
 */
int str_copy(char *dst, size_t n, const char *src);

/*
 * str_printf - snprintf that reports truncation: returns the length written,
 * or -ENAMETOOLONG when the output did not fit in n bytes.
 */
int str_printf(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * str_u64 - v in decimal, at least width digits (zero-padded), into out,
 * which must hold 21 bytes (or width + 1 if more); NUL-terminated.  Returns
 * the length.  For the warm path's headers: snprintf's format parsing
 * cost more than the rest of formatting a response's numbers.
 */
size_t str_u64(char *out, uint64_t v, unsigned width);

/*
 * str_ms3 - a duration of us microseconds as milliseconds with three
 * decimals ("1.234"), as "%.3f" prints us / 1000.0.  out holds 25 bytes.
 * Returns the length.
 */
size_t str_ms3(char *out, uint64_t us);

/* Returns true when s equals one of the strings that follow (NULL ends). */
bool str_oneof(const char *s, ...) __attribute__((sentinel));

/* Returns true when s starts with prefix. */
bool str_startswith(const char *s, const char *prefix);

/*
 * parse_u64 - parse a whole decimal string (no sign, no spaces) into *out,
 * accepting only values in [min, max].  Returns 0, -EINVAL or -ERANGE.
 */
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Write or read exactly n bytes, retrying on EINTR/short transfers.
 * read_full returns bytes read (less than n only at EOF) or -errno. */
int write_full(int fd, const void *buf, size_t n);
ssize_t read_full(int fd, void *buf, size_t n);

/*
 * write_file_str - open path write-only (O_CLOEXEC | extra_flags, mode 0644
 * when created), write all of text, close.  For control files (cgroups,
 * /proc) and small generated files.  0 or -errno.
 */
int write_file_str(const char *path, const char *text, int extra_flags);

/*
 * read_file_bounded - read a whole file into a NUL-terminated heap buffer of
 * at most max bytes.  Returns 0 and sets *out (caller frees) and *len, or
 * -errno (-EFBIG when the file is larger than max).
 */
int read_file_bounded(const char *path, size_t max, char **out, size_t *len);

/* Monotonic and wall clock in microseconds / milliseconds. */
uint64_t now_mono_us(void);

/* A condition variable whose timed waits count on now_mono_us's clock
 * (CLOCK_MONOTONIC: a wall clock step does not stretch them). */
void cond_init_mono(pthread_cond_t *c);
/* Wait on c (m held) until woken or the monotonic time t_us. */
void cond_wait_mono(pthread_cond_t *c, pthread_mutex_t *m, uint64_t t_us);
uint64_t now_wall_ms(void);
uint64_t now_wall_us(void);
/* Microseconds from t to now, 0 when t is later: a time stamp another
 * thread wrote after this one read its clock never wraps to 2^64. */
static inline uint64_t
us_since(uint64_t now, uint64_t t)
{
	return now > t ? now - t : 0;
}

/* FNV-1a of "tenant/function" mixed with version: the key of the tables
 * that hold something per function version (hot pools, metric series). */
uint32_t hash_fn_version(const char *tenant, const char *fn, int64_t version);

/* Lowercase hex encoding of n bytes into out (2n+1 bytes). */
void hex_encode(const uint8_t *in, size_t n, char *out);

/* Decode exactly 2n lowercase/uppercase hex chars; returns 0 or -EINVAL. */
int hex_decode(const char *in, uint8_t *out, size_t n);
/* A UUID's 16 bytes as its canonical text (lower case, 36 chars + NUL),
 * and back: uuid_parse takes hex in either case; 0 or -EINVAL. */
void uuid_format(const uint8_t b[16], char out[37]);
int uuid_parse(const char *s, uint8_t out[16]);

/*
 * close_fds_except - close every fd from 3 up except the n in keep (used
 * right after fork, before a child runs its own loop).  0 or -errno.
 */
int close_fds_except(const int *keep, size_t n);

/* Fill buf with n cryptographically random bytes (getrandom).  0 or -errno. */
int random_bytes(void *buf, size_t n);

/*
 * unique_bytes - fill buf with n bytes from a per-thread xoshiro256**
 * generator seeded once by getrandom: unpredictable enough for ids that
 * must not collide (invocation ids), cheap enough for every request, and
 * never for secrets (tokens use random_bytes).
 */
void unique_bytes(void *buf, size_t n);

#endif
