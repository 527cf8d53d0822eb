/* Unit tests of gateway/hproxy.c: hot handlers' response heads and chunked
 * bodies, including what a hostile handler could send. */
#include <errno.h>
#include <stdlib.h>

#include "gw.h"
#include "tap.h"

static int
head(const char *s, bool head_req, struct hresp *r, char *diag)
{
	return hresp_parse_head(s, strlen(s), head_req, r, diag, 160);
}

static char *
hval(const char *buf, const struct hresp *r, unsigned i, char *out, size_t n)
{
	snprintf(out, n, "%.*s", (int)r->h[i].value_len, buf + r->h[i].value_off);
	return out;
}

/* Decode s fed in pieces of step bytes; the decoded text into out. */
static int
chunks(const char *s, size_t step, char *out, size_t n)
{
	size_t len = strlen(s), have = 0;
	char *buf = calloc(1, len + 1);
	struct hchunk c = { 0 };
	int r = 0;

	while (have < len) {
		size_t k = have + step > len ? len - have : step;

		memcpy(buf + have, s + have, k);
		have += k;
		r = hchunk_decode(&c, buf, have);
		if (r != 0)
			break;
	}
	snprintf(out, n, "%.*s", (int)c.dec, buf);
	free(buf);
	return r;
}

int
main(void)
{
	struct hresp r;
	char diag[160], v[64], out[256];
	const char *ok200 = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
			    "Content-Length: 3\r\nX-A:  spaced  \r\n\r\nok\n";
	char big[HRESP_HEAD_MAX + 64];

	is_int(head(ok200, false, &r, diag), 1, "complete head");
	is_int(r.status, 200, "status");
	is_int(r.framing, HRESP_LENGTH, "length framing");
	is_int(r.content_length, 3, "content length");
	is_int(r.head_len, strlen(ok200) - 3, "head length");
	is_int(r.nheaders, 3, "three fields");
	is_str(hval(ok200, &r, 2, v, sizeof(v)), "spaced", "value trimmed");
	ok(!r.close, "keep-alive by default on 1.1");
	is_int(head("HTTP/1.1 200 OK\r\nContent-Le", false, &r, diag), 0, "partial head");
	is_int(head("HTTP/1.1 204 No Content\r\n\r\n", false, &r, diag), 1, "204");
	is_int(r.content_length, 0, "204 has no body");
	is_int(head("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true, &r, diag), 1, "HEAD");
	ok(r.content_length == 0 && r.close, "HEAD: no body, connection not reused");
	is_int(head("HTTP/1.0 200 OK\r\n\r\n", false, &r, diag), 1, "1.0 without length");
	ok(r.framing == HRESP_UNTIL_CLOSE && r.close, "1.0: body until close");
	is_int(head("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", false,
		    &r, diag),
	       1, "1.0 keep-alive");
	ok(!r.close, "1.0 keep-alive stays open");
	is_int(head("HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n", false, &r,
		    diag),
	       1, "Connection: close");
	ok(r.close, "close noted");
	is_int(head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false, &r, diag),
	       1, "chunked");
	is_int(r.framing, HRESP_CHUNKED, "chunked framing");
	is_int(head("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", false, &r, diag), 1,
	       "no reason phrase");
	/* What must be refused. */
	is_int(head("HTTP/2 200 OK\r\n\r\n", false, &r, diag), -EBADMSG, "not HTTP/1.x");
	is_int(head("HTTP/1.1 20 OK\r\n\r\n", false, &r, diag), -EBADMSG, "two-digit status");
	is_int(head("HTTP/1.1 600 X\r\n\r\n", false, &r, diag), -EBADMSG, "status 600");
	is_int(head("HTTP/1.1 101 Switching\r\n\r\n", false, &r, diag), -EBADMSG, "1xx refused");
	is_int(head("HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", false, &r, diag), -EBADMSG,
	       "field without colon");
	is_int(head("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", false, &r, diag), -EBADMSG,
	       "space in a field name");
	is_int(head("HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", false, &r, diag), -EBADMSG, "bare CR");
	is_int(head("HTTP/1.1 200 OK\nX: a\r\n\r\n", false, &r, diag), -EBADMSG, "bare LF");
	is_int(head("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, &r, diag), -EBADMSG,
	       "negative length");
	is_int(head("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", false, &r,
		    diag),
	       -EBADMSG, "conflicting lengths");
	is_int(head("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999\r\n\r\n", false, &r,
		    diag),
	       -EBADMSG, "absurd length");
	is_int(head("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		    false, &r, diag),
	       -EBADMSG, "length and chunked");
	ok(strstr(diag, "chunked") != NULL, "diag names it: %s", diag);
	is_int(head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false, &r, diag),
	       -EBADMSG, "unknown coding");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
	is_int(head(big, false, &r, diag), -EBADMSG, "endless head");
	{
		char many[8192];
		size_t o = (size_t)snprintf(many, sizeof(many), "HTTP/1.1 200 OK\r\n");

		for (int i = 0; i < HRESP_MAX_HEADERS + 1; i++)
			o += (size_t)snprintf(many + o, sizeof(many) - o, "X-%d: v\r\n", i);
		snprintf(many + o, sizeof(many) - o, "\r\n");
		is_int(head(many, false, &r, diag), -EBADMSG, "too many fields");
	}

	/* Chunked bodies, whole and byte by byte. */
	is_int(chunks("5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n", 1000, out, sizeof(out)), 1,
	       "chunks at once");
	is_str(out, "hello world", "decoded");
	is_int(chunks("5\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n", 1, out, sizeof(out)),
	       1, "byte by byte, with a trailer");
	is_str(out, "hello world", "decoded byte by byte");
	is_int(chunks("A\r\n0123456789\r\n0\r\n\r\n", 3, out, sizeof(out)), 1, "hex size");
	is_str(out, "0123456789", "ten bytes");
	is_int(chunks("5\r\nhello\r\n", 1000, out, sizeof(out)), 0, "incomplete");
	is_int(chunks("zz\r\nhello\r\n", 1000, out, sizeof(out)), -EBADMSG, "bad size");
	is_int(chunks("5\r\nhelloXX0\r\n\r\n", 1000, out, sizeof(out)), -EBADMSG,
	       "no CRLF after data");
	is_int(chunks("fffffffffffffff\r\n", 1000, out, sizeof(out)), -EBADMSG, "huge chunk");
	is_int(chunks("5 x\r\nhello\r\n0\r\n\r\n", 1000, out, sizeof(out)), -EBADMSG,
	       "junk after the size");
	return done();
}
