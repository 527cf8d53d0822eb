/*
 * log.c - one-line-per-write logging to stderr with a journald priority
 * prefix.  Lines are assembled in a stack buffer and written with one write()
 * so concurrent processes sharing stderr do not interleave within a line.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static char log_ident[32] = "faasd";
static int log_level = LOG_INFO;

void
log_set_ident(const char *ident)
{
	(void)str_copy(log_ident, sizeof(log_ident), ident);
}

void
log_set_level(int level)
{
	log_level = level;
}

int
log_level_parse(const char *s)
{
	static const struct {
		const char *name;
		int level;
	} levels[] = {
		{ "debug", LOG_DEBUG },     { "info", LOG_INFO }, { "notice", LOG_NOTICE },
		{ "warning", LOG_WARNING }, { "err", LOG_ERR },
	};

	for (size_t i = 0; i < ARRAY_SIZE(levels); i++)
		if (strcmp(s, levels[i].name) == 0)
			return levels[i].level;
	return -EINVAL;
}

void
log_msg(int prio, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	int n, m;
	int saved = errno;

	if (prio > log_level)
		return;
	n = snprintf(line, sizeof(line), "<%d>%s: ", prio, log_ident);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	/* Keep one entry per line even if a caller passed a newline. */
	for (int i = 0; i < n; i++)
		if (line[i] == '\n')
			line[i] = ' ';
	line[n++] = '\n';
	(void)write_full(STDERR_FILENO, line, (size_t)n);
	errno = saved;
}
