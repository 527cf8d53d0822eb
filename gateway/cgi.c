/*
 * cgi.c - parse the CGI header block an `exec` handler may print before its
 * body (SPEC §2): "Status: 201 Created", "Content-Type: …", other headers,
 * then a blank line.  Runs in the gateway on the first bytes of the handler's
 * stdout.  Output that does not start with a complete header block (header
 * lines up to a blank line) is all body; a malformed Status header, which
 * only a CGI handler writes, is an error.
 * INVARIANT: names and values handed on contain no CR, LF or NUL, and names
 * only token characters, so a handler cannot split the HTTP response.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "gw.h"
#include "util.h"

#define CGI_SCAN_MAX (16u * 1024u)

static bool
tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Length of a header name at p (token chars followed by ':'), 0 if none. */
static size_t
header_name_len(const char *p, const char *end)
{
	const char *q = p;

	while (q < end && tchar(*q))
		q++;
	return (q > p && q < end && *q == ':') ? (size_t)(q - p) : 0;
}

int
cgi_parse(const char *buf, size_t len, struct cgi_resp *out, char *diag, size_t n)
{
	const char *p = buf, *end = buf + MIN(len, (size_t)CGI_SCAN_MAX);

	memset(out, 0, sizeof(*out));
	out->status = 200;
	if (len == 0 || !header_name_len(buf, end))
		return 0; /* plain body */
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *le, *v;
		size_t nl, vl;
		struct cgi_header *h;

		if (!eol) {
			/* No end of the header block in what we looked at:
			 * treat everything as body, as if no headers. */
			memset(out, 0, sizeof(*out));
			out->status = 200;
			return 0;
		}
		le = (eol > p && eol[-1] == '\r') ? eol - 1 : eol;
		if (le == p) { /* blank line: end of headers */
			out->body_offset = (size_t)(eol + 1 - buf);
			return 0;
		}
		nl = header_name_len(p, le);
		if (!nl) {
			/* Not a header block after all ("dd: error…" then
			 * prose): the whole output is the body. */
			memset(out, 0, sizeof(*out));
			out->status = 200;
			return 0;
		}
		v = p + nl + 1;
		while (v < le && (*v == ' ' || *v == '\t'))
			v++;
		vl = (size_t)(le - v);
		for (size_t i = 0; i < vl; i++)
			if (v[i] == '\0' || v[i] == '\r') {
				(void)str_printf(diag, n,
						 "CGI header value with a control character");
				return -EBADMSG;
			}
		if (nl == 6 && strncasecmp(p, "Status", 6) == 0) {
			unsigned code = 0;

			if (vl < 3 || v[0] < '1' || v[0] > '5' || v[1] < '0' || v[1] > '9' ||
			    v[2] < '0' || v[2] > '9' || (vl > 3 && v[3] != ' ')) {
				(void)str_printf(diag, n, "bad CGI Status header from the handler");
				return -EBADMSG;
			}
			code = (unsigned)((v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0'));
			if (code < 200) {
				(void)str_printf(diag, n, "CGI Status %u is not a final status",
						 code);
				return -EBADMSG;
			}
			out->status = code;
		} else {
			if (out->nheaders >= CGI_MAX_HEADERS) {
				(void)str_printf(diag, n,
						 "more than %d CGI headers from the handler",
						 CGI_MAX_HEADERS);
				return -EBADMSG;
			}
			h = &out->headers[out->nheaders];
			if (nl >= sizeof(h->name) || vl >= sizeof(h->value)) {
				(void)str_printf(diag, n, "CGI header too long");
				return -EBADMSG;
			}
			memcpy(h->name, p, nl);
			h->name[nl] = 0;
			memcpy(h->value, v, vl);
			h->value[vl] = 0;
			if (strcasecmp(h->name, "Content-Type") == 0)
				out->has_content_type = true;
			out->nheaders++;
		}
		p = eol + 1;
	}
	/* Ran out of scan window inside the header block. */
	memset(out, 0, sizeof(*out));
	out->status = 200;
	return 0;
}
