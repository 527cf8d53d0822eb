/* Unit tests of gateway/cgi.c: CGI response headers. */
#include <errno.h>

#include "gw.h"
#include "tap.h"

static int
parse(const char *s, struct cgi_resp *c, char *diag)
{
	return cgi_parse(s, strlen(s), c, diag, 160);
}

int
main(void)
{
	struct cgi_resp c;
	char diag[160];

	is_int(parse("hello world\n", &c, diag), 0, "plain body");
	is_int(c.status, 200, "plain is 200");
	is_int(c.body_offset, 0, "body starts at 0");
	is_int(parse("Status: 201 Created\nContent-Type: text/html\nX-A: b\n\nbody", &c, diag), 0,
	       "headers");
	is_int(c.status, 201, "status parsed");
	ok(c.has_content_type, "content type seen");
	is_int(c.nheaders, 2, "two headers kept");
	is_str(c.headers[1].value, "b", "header value");
	is_int(c.body_offset, strlen("Status: 201 Created\nContent-Type: text/html\nX-A: b\n\n"),
	       "body offset");
	is_int(parse("Content-Type: a/b\r\n\r\nx", &c, diag), 0, "CRLF headers");
	is_int(c.body_offset, 21, "CRLF body offset");
	is_int(parse("Status: abc\n\n", &c, diag), -EBADMSG, "bad status");
	is_int(parse("Status: 100\n\n", &c, diag), -EBADMSG, "informational status refused");
	is_int(parse("Status: 404\n\n", &c, diag), 0, "bare status code");
	is_int(c.status, 404, "404");
	is_int(parse("X-A: 1\nnot a header\n\n", &c, diag), 0, "prose after a header-like line");
	is_int(c.body_offset, 0, "is all body");
	is_int(parse("dd: error writing: No space\n1+0 records in\n", &c, diag), 0, "tool output");
	is_int(c.body_offset, 0, "is all body");
	is_int(parse("X-A: 1\nno end of headers", &c, diag), 0, "no blank line: all body");
	is_int(c.body_offset, 0, "treated as body");
	is_int(parse("Key: value\n", &c, diag), 0, "header-like line without terminator: body");
	{
		char big[4096] = "";
		size_t o = 0;

		for (int i = 0; i < 40; i++)
			o += (size_t)snprintf(big + o, sizeof(big) - o, "X-H%d: v\n", i);
		snprintf(big + o, sizeof(big) - o, "\nbody");
		is_int(parse(big, &c, diag), -EBADMSG, "too many headers");
	}
	is_int(parse("X-A: a\rb\n\n", &c, diag), -EBADMSG, "CR inside a value");
	return done();
}
