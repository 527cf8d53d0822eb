/*
 * util.c - bounded strings, number parsing, full reads/writes, clocks.
 * Used by every process; keeps no state and never logs.
 */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

int
str_copy(char *dst, size_t n, const char *src)
{
	size_t len = strlen(src);

	if (n == 0)
		return -ENAMETOOLONG;
	if (len >= n) {
		memcpy(dst, src, n - 1);
		dst[n - 1] = '\0';
		return -ENAMETOOLONG;
	}
	memcpy(dst, src, len + 1);
	return 0;
}

int
str_printf(char *dst, size_t n, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(dst, n, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -EINVAL;
	if ((size_t)r >= n)
		return -ENAMETOOLONG;
	return r;
}

size_t
str_u64(char *out, uint64_t v, unsigned width)
{
	char tmp[20];
	size_t n = 0, len;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	len = MAX(n, (size_t)width);
	for (size_t i = 0; i < len; i++)
		out[i] = i < len - n ? '0' : tmp[len - 1 - i];
	out[len] = 0;
	return len;
}

size_t
str_ms3(char *out, uint64_t us)
{
	size_t n = str_u64(out, us / 1000, 0);

	out[n++] = '.';
	return n + str_u64(out + n, us % 1000, 3);
}

bool
str_oneof(const char *s, ...)
{
	va_list ap;
	const char *c;
	bool found = false;

	va_start(ap, s);
	while (!found && (c = va_arg(ap, const char *)) != NULL)
		found = strcmp(s, c) == 0;
	va_end(ap);
	return found;
}

bool
str_startswith(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

int
parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int
write_full(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

ssize_t
read_full(int fd, void *buf, size_t n)
{
	char *p = buf;
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

int
write_file_str(const char *path, const char *text, int extra_flags)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC | extra_flags, 0644), r;

	if (fd < 0)
		return -errno;
	r = write_full(fd, text, strlen(text));
	close(fd);
	return r;
}

int
read_file_bounded(const char *path, size_t max, char **out, size_t *len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *buf = NULL;
	size_t got = 0, cap;
	struct stat st;
	int r = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((uint64_t)st.st_size > max)
		return -EFBIG;
	/* st_size is a hint only: files in /proc say 0.  Read to EOF. */
	cap = (size_t)st.st_size + 1 > 4096 ? (size_t)st.st_size + 1 : 4096;
	for (;;) {
		char *nb = realloc(buf, cap);
		size_t want;
		ssize_t n;

		if (!nb) {
			r = -ENOMEM;
			break;
		}
		buf = nb;
		want = cap - got - 1;
		n = read_full(fd, buf + got, want);
		if (n < 0) {
			r = (int)n;
			break;
		}
		got += (size_t)n;
		if (got > max) {
			r = -EFBIG;
			break;
		}
		if ((size_t)n < want)
			break; /* EOF */
		cap *= 2;
	}
	if (r < 0) {
		free(buf);
		return r;
	}
	buf[got] = '\0';
	if (len)
		*len = got;
	*out = buf;
	return 0;
}

uint64_t
now_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void
cond_init_mono(pthread_cond_t *c)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(c, &ca);
	pthread_condattr_destroy(&ca);
}

void
cond_wait_mono(pthread_cond_t *c, pthread_mutex_t *m, uint64_t t_us)
{
	struct timespec ts = { .tv_sec = (time_t)(t_us / 1000000u),
			       .tv_nsec = (long)(t_us % 1000000u) * 1000 };

	(void)pthread_cond_timedwait(c, m, &ts);
}

uint64_t
now_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint32_t
hash_fn_version(const char *tenant, const char *fn, int64_t version)
{
	uint32_t h = 2166136261u;

	for (const char *p = tenant; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h = (h ^ '/') * 16777619u;
	for (const char *p = fn; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return h ^ (uint32_t)version * 2654435761u;
}

uint64_t
now_wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void
hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
hex_decode(const char *in, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(in[2 * i]), lo;

		if (hi < 0)
			return -EINVAL;
		lo = hexval(in[2 * i + 1]);
		if (lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return in[2 * n] == '\0' ? 0 : -EINVAL;
}

void
uuid_format(const uint8_t b[16], char out[37])
{
	char h[33];

	hex_encode(b, 16, h);
	memcpy(out, h, 8);
	out[8] = '-';
	memcpy(out + 9, h + 8, 4);
	out[13] = '-';
	memcpy(out + 14, h + 12, 4);
	out[18] = '-';
	memcpy(out + 19, h + 16, 4);
	out[23] = '-';
	memcpy(out + 24, h + 20, 12);
	out[36] = '\0';
}

int
uuid_parse(const char *s, uint8_t out[16])
{
	unsigned k = 0;

	for (unsigned i = 0; i < 36; i++) {
		int hi, lo;

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -EINVAL;
			continue;
		}
		/* s[i] is checked before s[i + 1] is read: no read past the end */
		if ((hi = hexval(s[i])) < 0 || (lo = hexval(s[i + 1])) < 0)
			return -EINVAL;
		out[k++] = (uint8_t)(hi << 4 | lo);
		i++;
	}
	return s[36] == '\0' ? 0 : -EINVAL;
}

static uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

void
unique_bytes(void *buf, size_t n)
{
	static _Thread_local uint64_t st[4];
	static _Thread_local bool seeded;
	uint8_t *p = buf;

	if (!seeded) {
		if (random_bytes(st, sizeof(st)) < 0) {
			/* No entropy: time and thread still keep ids apart. */
			st[0] = now_mono_us();
			st[1] = (uint64_t)(uintptr_t)&st ^ now_wall_ms();
			st[2] = 0x9e3779b97f4a7c15ull;
			st[3] = (uint64_t)getpid();
		}
		seeded = true;
	}
	while (n > 0) {
		uint64_t r = rotl(st[1] * 5, 7) * 9, t = st[1] << 17;
		size_t k = n < 8 ? n : 8;

		st[2] ^= st[0];
		st[3] ^= st[1];
		st[1] ^= st[2];
		st[0] ^= st[3];
		st[2] ^= t;
		st[3] = rotl(st[3], 45);
		memcpy(p, &r, k);
		p += k;
		n -= k;
	}
}

int
random_bytes(void *buf, size_t n)
{
	char *p = buf;

	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int
cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

int
close_fds_except(const int *keep, size_t n)
{
	int sorted[16];
	unsigned first = 3;

	if (n > ARRAY_SIZE(sorted))
		return -EINVAL;
	memcpy(sorted, keep, n * sizeof(int));
	qsort(sorted, n, sizeof(int), cmp_int);
	for (size_t i = 0; i < n; i++) {
		if (sorted[i] < (int)first) /* stdio, or a duplicate */
			continue;
		if ((unsigned)sorted[i] > first &&
		    syscall(SYS_close_range, first, (unsigned)sorted[i] - 1, 0) < 0)
			return -errno;
		first = (unsigned)sorted[i] + 1;
	}
	return syscall(SYS_close_range, first, ~0u, 0) < 0 ? -errno : 0;
}
