/* Unit tests of gateway/fasthead.c: the request heads the fast path serves,
 * and every shape it must leave to libmicrohttpd. */
#include <stdlib.h>

#include "gw.h"
#include "tap.h"

/* Parse a copy of s (the parser writes into its buffer). */
static int
parse(const char *s, struct fast_head *h, char **keep)
{
	size_t n = strlen(s);
	char *b = malloc(n + 1);

	memcpy(b, s, n + 1);
	free(*keep);
	*keep = b;
	return fast_head_parse(b, n, h);
}

int
main(void)
{
	struct fast_head h;
	char *b = NULL;
	const char *get = "GET /fn/acme/hello/a/b?x=1&y=%20 HTTP/1.1\r\nHost: x\r\n"
			  "Authorization:  Bearer tok  \r\nX-Empty:\r\n\r\nBODY";
	char big[FAST_HEAD_MAX + 64];

	is_int(parse(get, &h, &b), FAST_HEAD_OK, "a plain GET");
	is_str(h.method, "GET", "method");
	is_str(h.target, "/fn/acme/hello/a/b?x=1&y=%20", "target as sent (query undecoded)");
	is_int(h.target_len, strlen("/fn/acme/hello/a/b?x=1&y=%20"), "target length");
	is_int(h.head_len, strlen(get) - 4, "head ends at the empty line");
	is_int(h.nheaders, 3, "three fields");
	is_str(fast_head_get(&h, "authorization"), "Bearer tok", "value trimmed, name any case");
	is_str(fast_head_get(&h, "X-Empty"), "", "empty value");
	ok(fast_head_get(&h, "Content-Length") == NULL, "absent field");
	is_int(h.content_length, 0, "no body");
	ok(!h.close, "keep-alive by default");

	is_int(parse("POST /fn/a/b HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n"
		     "Connection: keep-alive, close\r\n\r\n",
		     &h, &b),
	       FAST_HEAD_OK, "POST with a length");
	is_int(h.content_length, 12, "content length");
	ok(h.close, "Connection: close among tokens");

	is_int(parse("GET /fn/a/b HTTP/1.1\r\nHost: x\r\n", &h, &b), FAST_HEAD_MORE,
	       "no empty line yet");
	is_int(parse("GET /fn/a/b HTTP/1.1\r\nHo", &h, &b), FAST_HEAD_MORE, "cut in a field");

	/* What libmicrohttpd gets instead. */
	is_int(parse("GET /v1/whoami HTTP/1.1\r\nHost: x\r\n\r\n", &h, &b), FAST_HEAD_DECLINE,
	       "another endpoint");
	is_int(parse("HEAD /fn/a/b HTTP/1.1\r\nHost: x\r\n\r\n", &h, &b), FAST_HEAD_DECLINE,
	       "HEAD");
	is_int(parse("GET /fn/a/b HTTP/1.0\r\nHost: x\r\n\r\n", &h, &b), FAST_HEAD_DECLINE,
	       "HTTP/1.0");
	is_int(parse("GET /fn/a/b HTTP/1.1\r\n\r\n", &h, &b), FAST_HEAD_DECLINE, "no Host");
	is_int(parse("GET /fn/a/b HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", &h, &b),
	       FAST_HEAD_DECLINE, "two Hosts");
	is_int(parse("GET /fn/a/b%2F HTTP/1.1\r\nHost: x\r\n\r\n", &h, &b), FAST_HEAD_DECLINE,
	       "a percent-encoded path");
	is_int(parse("POST /fn/a/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", &h,
		     &b),
	       FAST_HEAD_DECLINE, "a chunked body");
	is_int(parse("POST /fn/a/b HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
		     "Content-Length: 5\r\n\r\n",
		     &h, &b),
	       FAST_HEAD_DECLINE, "Expect");
	is_int(parse("POST /fn/a/b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
		     "Content-Length: 5\r\n\r\n",
		     &h, &b),
	       FAST_HEAD_DECLINE, "two lengths");
	is_int(parse("POST /fn/a/b HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n", &h, &b),
	       FAST_HEAD_DECLINE, "a signed length");
	is_int(parse("POST /fn/a/b HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999\r\n\r\n",
		     &h, &b),
	       FAST_HEAD_DECLINE, "an absurd length");
	is_int(parse("GET /fn/a/b HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", &h, &b),
	       FAST_HEAD_DECLINE, "a folded line");
	is_int(parse("GET /fn/a/b HTTP/1.1\r\nHost x\r\n\r\n", &h, &b), FAST_HEAD_DECLINE,
	       "a field without a colon");
	is_int(parse("GET /fn/a/b HTTP/1.1\r\nHost : x\r\n\r\n", &h, &b), FAST_HEAD_DECLINE,
	       "space before the colon");
	is_int(parse("GET /fn/a/b HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", &h, &b), FAST_HEAD_DECLINE,
	       "a bare LF");
	is_int(parse("GET /fn/a/b HTTP/1.1\r\nHost: x\ry\r\n\r\n", &h, &b), FAST_HEAD_DECLINE,
	       "a bare CR");
	is_int(parse("GET /fn/a/b HTTP/1.1\r\nHost: x\x01y\r\n\r\n", &h, &b), FAST_HEAD_DECLINE,
	       "a control byte");
	is_int(parse("GET /fn/a/b HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\r\n", &h, &b),
	       FAST_HEAD_DECLINE, "Upgrade");
	is_int(parse("get /fn/a/b HTTP/1.1\r\nHost: x\r\n\r\n", &h, &b), FAST_HEAD_DECLINE,
	       "a lower-case method");
	is_int(parse("GET  /fn/a/b HTTP/1.1\r\nHost: x\r\n\r\n", &h, &b), FAST_HEAD_DECLINE,
	       "two spaces");
	{
		size_t n;

		memset(big, 'a', sizeof(big));
		n = (size_t)snprintf(big, sizeof(big), "GET /fn/a/b HTTP/1.1\r\nHost: x\r\nX: ");
		big[n] = 'a';
		big[sizeof(big) - 1] = 0;
		is_int(parse(big, &h, &b), FAST_HEAD_DECLINE, "a head past FAST_HEAD_MAX");
	}
	{
		char many[8192];
		size_t n =
			(size_t)snprintf(many, sizeof(many), "GET /fn/a/b HTTP/1.1\r\nHost: x\r\n");

		for (int i = 0; i < FAST_MAX_HEADERS; i++)
			n += (size_t)snprintf(many + n, sizeof(many) - n, "X-%d: v\r\n", i);
		(void)snprintf(many + n, sizeof(many) - n, "\r\n");
		is_int(parse(many, &h, &b), FAST_HEAD_DECLINE, "more than FAST_MAX_HEADERS fields");
	}
	{
		/* A declined head is left as it was (fast.c parses a copy, but
		 * the parser must not read past what it was given either). */
		const char *s = "GET /fn/a/b HTTP/1.1\r\nHost: x\r\n\r";

		is_int(parse(s, &h, &b), FAST_HEAD_MORE, "three of the four end bytes");
	}

	ok(fast_head_start("GET /fn/", 8), "a /fn/ start");
	ok(fast_head_start("OPTIONS /fn/x", 13), "another method");
	ok(!fast_head_start("GET /v1/", 8), "an API start");
	ok(!fast_head_start("GET /f", 6), "too short to tell");
	ok(!fast_head_start(" /fn/", 5), "no method");
	ok(!fast_head_start("\x16\x03\x01", 3), "TLS");
	free(b);
	return done();
}
