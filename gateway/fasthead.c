/*
 * fasthead.c - the request heads the gateway's fast path (fast.c) serves
 * without libmicrohttpd: a strict subset of HTTP/1.1, parsed in place.
 *
 * The bytes come from any client, so the parser is bounded (FAST_HEAD_MAX
 * bytes, FAST_MAX_HEADERS fields) and fuzzed (fuzz/fuzz_fasthead.c).  It
 * never answers an error itself: whatever is outside the subset (another
 * version, a percent-encoded path, a body framed other than by
 * Content-Length, Expect, Upgrade, a folded or malformed field, no Host)
 * is FAST_HEAD_DECLINE, and fast.c hands the connection, bytes and all,
 * to libmicrohttpd, which answers it as it answers any request.  A head
 * accepted here is one libmicrohttpd would read the same way.
 */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "gw.h"
#include "util.h"

static bool
tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A request target byte of the path or query (no '%' in the path: those
 * are decoded by libmicrohttpd, and the fast path does not decode). */
static bool
target_char(unsigned char c, bool query)
{
	return c > 0x20 && c < 0x7f && (query || c != '%');
}

/* Does the comma-separated value hold token word? */
static bool
has_token(const char *v, const char *word)
{
	size_t n = strlen(word);

	while (*v) {
		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		if (strncasecmp(v, word, n) == 0) {
			const char *e = v + n;

			while (*e == ' ' || *e == '\t')
				e++;
			if (*e == ',' || !*e)
				return true;
		}
		while (*v && *v != ',')
			v++;
	}
	return false;
}

int
fast_head_parse(char *buf, size_t len, struct fast_head *h)
{
	char *end, *p, *line;
	size_t scan = MIN(len, (size_t)FAST_HEAD_MAX);
	bool host = false, have_len = false;

	memset(h, 0, sizeof(*h));
	end = memmem(buf, scan, "\r\n\r\n", 4);
	if (!end)
		return len >= FAST_HEAD_MAX ? FAST_HEAD_DECLINE : FAST_HEAD_MORE;
	h->head_len = (size_t)(end - buf) + 4;
	if (memchr(buf, 0, h->head_len))
		return FAST_HEAD_DECLINE;
	/* Request line: METHOD SP /fn/... SP HTTP/1.1 CRLF */
	p = buf;
	while (p < end && *p >= 'A' && *p <= 'Z')
		p++;
	if (p == buf || p - buf > 16 || *p != ' ')
		return FAST_HEAD_DECLINE;
	*p = 0;
	h->method = buf;
	if (!str_oneof(h->method, "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", NULL))
		return FAST_HEAD_DECLINE;
	h->target = ++p;
	if (strncmp(p, "/fn/", 4) != 0)
		return FAST_HEAD_DECLINE;
	{
		bool query = false;

		while (p < end && *p != ' ') {
			if (!target_char((unsigned char)*p, query))
				return FAST_HEAD_DECLINE;
			query = query || *p == '?';
			p++;
		}
	}
	h->target_len = (size_t)(p - h->target);
	if (end - p < 10 || memcmp(p, " HTTP/1.1\r\n", 11) != 0)
		return FAST_HEAD_DECLINE;
	*p = 0;
	line = p + 11;
	/* Fields: NAME ":" OWS VALUE OWS CRLF, up to the empty line. */
	while (line < end + 2) {
		char *colon, *eol = memchr(line, '\r', (size_t)(end + 2 - line)), *v, *ve;

		if (!eol || eol[1] != '\n' || memchr(line, '\n', (size_t)(eol - line)))
			return FAST_HEAD_DECLINE;
		colon = line;
		while (colon < eol && tchar((unsigned char)*colon))
			colon++;
		if (colon == line || colon == eol || *colon != ':')
			return FAST_HEAD_DECLINE; /* folded, empty or bad name */
		if (h->nheaders == FAST_MAX_HEADERS)
			return FAST_HEAD_DECLINE;
		v = colon + 1;
		while (v < eol && (*v == ' ' || *v == '\t'))
			v++;
		ve = eol;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		for (char *c = v; c < ve; c++)
			if ((unsigned char)*c < 0x20 && *c != '\t')
				return FAST_HEAD_DECLINE;
		*colon = 0;
		*ve = 0;
		h->h[h->nheaders].name = line;
		h->h[h->nheaders].value = v;
		h->nheaders++;
		if (strcasecmp(line, "Content-Length") == 0) {
			uint64_t n;

			if (have_len || !*v || strspn(v, "0123456789") != strlen(v) ||
			    strlen(v) > 15 || parse_u64(v, 0, UINT64_MAX, &n) < 0)
				return FAST_HEAD_DECLINE;
			have_len = true;
			h->content_length = n;
		} else if (strcasecmp(line, "Host") == 0) {
			if (host)
				return FAST_HEAD_DECLINE;
			host = true;
		} else if (strcasecmp(line, "Connection") == 0) {
			if (has_token(v, "upgrade"))
				return FAST_HEAD_DECLINE;
			h->close = h->close || has_token(v, "close");
		} else if (strcasecmp(line, "Transfer-Encoding") == 0 ||
			   strcasecmp(line, "Expect") == 0 || strcasecmp(line, "Upgrade") == 0)
			return FAST_HEAD_DECLINE;
		line = eol + 2;
	}
	return host ? FAST_HEAD_OK : FAST_HEAD_DECLINE;
}

const char *
fast_head_get(const struct fast_head *h, const char *name)
{
	for (unsigned i = 0; i < h->nheaders; i++)
		if (strcasecmp(h->h[i].name, name) == 0)
			return h->h[i].value;
	return NULL;
}

bool
fast_head_start(const char *buf, size_t len)
{
	size_t i = 0;

	while (i < len && i < 17 && buf[i] >= 'A' && buf[i] <= 'Z')
		i++;
	return i > 0 && len >= i + 5 && memcmp(buf + i, " /fn/", 5) == 0;
}
