/*
 * hproxy.c - the HTTP/1.1 the gateway speaks to hot handlers: parsing the
 * head of a handler's response and decoding a chunked body, in place.
 *
 * The bytes come from tenant code, so both parsers are strict, bounded and
 * fuzzed (fuzz/fuzz_hresp.c): a head is at most HRESP_HEAD_MAX bytes and
 * HRESP_MAX_HEADERS fields; a framing both chunked and with a length, a bad
 * status line, a field without a colon or a bare CR are refused.  Nothing
 * here allocates or keeps pointers: header positions are offsets into the
 * caller's buffer, which may move (realloc) between calls.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "gw.h"
#include "util.h"

static bool
is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool
token_eq(const char *buf, size_t off, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(buf + off, word, len) == 0;
}

/* Does the comma-separated list at buf[off, off+len) hold word? */
static bool
list_has(const char *buf, size_t off, size_t len, const char *word)
{
	size_t i = off, end = off + len;

	while (i < end) {
		size_t s, e;

		while (i < end && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == ','))
			i++;
		s = i;
		while (i < end && buf[i] != ',')
			i++;
		e = i;
		while (e > s && (buf[e - 1] == ' ' || buf[e - 1] == '\t'))
			e--;
		if (e > s && token_eq(buf, s, e - s, word))
			return true;
	}
	return false;
}

int
hresp_parse_head(const char *buf, size_t len, bool head_request, struct hresp *out, char *diag,
		 size_t n)
{
	const char *end;
	size_t head_len, i, eol;
	bool http10, keep_alive = false, have_cl = false;
	unsigned status;

	memset(out, 0, sizeof(*out));
	out->content_length = -1;
	end = len >= 4 ? memmem(buf, MIN(len, (size_t)HRESP_HEAD_MAX), "\r\n\r\n", 4) : NULL;
	if (!end) {
		if (len >= HRESP_HEAD_MAX) {
			(void)str_printf(diag, n, "response head larger than %u bytes",
					 HRESP_HEAD_MAX);
			return -EBADMSG;
		}
		return 0;
	}
	head_len = (size_t)(end - buf) + 4;
	/* Status line: HTTP/1.x SP 3DIGIT [SP reason] CRLF */
	if (head_len < 16 || memcmp(buf, "HTTP/1.", 7) != 0 || (buf[7] != '0' && buf[7] != '1') ||
	    buf[8] != ' ' || buf[9] < '1' || buf[9] > '5' || buf[10] < '0' || buf[10] > '9' ||
	    buf[11] < '0' || buf[11] > '9' || (buf[12] != ' ' && buf[12] != '\r')) {
		(void)str_printf(diag, n, "handler did not answer with an HTTP/1.x status line");
		return -EBADMSG;
	}
	http10 = buf[7] == '0';
	status = (unsigned)((buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0'));
	eol = (size_t)((const char *)memchr(buf, '\n', head_len) - buf);
	if (eol == 0 || buf[eol - 1] != '\r') {
		(void)str_printf(diag, n, "malformed status line from the handler");
		return -EBADMSG;
	}
	for (i = 12; i < eol - 1; i++)
		if (buf[i] == '\r' || buf[i] == 0) {
			(void)str_printf(diag, n, "malformed status line from the handler");
			return -EBADMSG;
		}
	i = eol + 1;
	while (i < head_len - 2) {
		size_t ls = i, le, colon, vs, ve;

		le = (size_t)((const char *)memchr(buf + ls, '\n', head_len - ls) - buf);
		if (le == ls || buf[le - 1] != '\r') {
			(void)str_printf(diag, n, "header line without CRLF from the handler");
			return -EBADMSG;
		}
		for (colon = ls; colon < le - 1 && is_tchar(buf[colon]); colon++)
			;
		if (colon == ls || buf[colon] != ':') {
			(void)str_printf(diag, n, "malformed header line from the handler");
			return -EBADMSG;
		}
		vs = colon + 1;
		ve = le - 1;
		for (size_t k = vs; k < ve; k++)
			if (buf[k] == '\r' || buf[k] == 0 || buf[k] == '\n') {
				(void)str_printf(diag, n, "bad character in a header value");
				return -EBADMSG;
			}
		while (vs < ve && (buf[vs] == ' ' || buf[vs] == '\t'))
			vs++;
		while (ve > vs && (buf[ve - 1] == ' ' || buf[ve - 1] == '\t'))
			ve--;
		if (out->nheaders >= HRESP_MAX_HEADERS) {
			(void)str_printf(diag, n, "more than %u response headers",
					 HRESP_MAX_HEADERS);
			return -EBADMSG;
		}
		out->h[out->nheaders].name_off = (uint32_t)ls;
		out->h[out->nheaders].name_len = (uint32_t)(colon - ls);
		out->h[out->nheaders].value_off = (uint32_t)vs;
		out->h[out->nheaders].value_len = (uint32_t)(ve - vs);
		out->nheaders++;
		if (token_eq(buf, ls, colon - ls, "Content-Length")) {
			uint64_t v = 0;

			if (ve == vs || ve - vs > 15) {
				(void)str_printf(diag, n, "bad Content-Length from the handler");
				return -EBADMSG;
			}
			for (size_t k = vs; k < ve; k++) {
				if (buf[k] < '0' || buf[k] > '9') {
					(void)str_printf(diag, n,
							 "bad Content-Length from the handler");
					return -EBADMSG;
				}
				v = v * 10 + (uint64_t)(buf[k] - '0');
			}
			if (have_cl && (int64_t)v != out->content_length) {
				(void)str_printf(diag, n, "conflicting Content-Length headers");
				return -EBADMSG;
			}
			have_cl = true;
			out->content_length = (int64_t)v;
		} else if (token_eq(buf, ls, colon - ls, "Transfer-Encoding")) {
			if (!list_has(buf, vs, ve - vs, "chunked")) {
				(void)str_printf(diag, n, "unsupported Transfer-Encoding");
				return -EBADMSG;
			}
			out->chunked = true;
		} else if (token_eq(buf, ls, colon - ls, "Connection")) {
			if (list_has(buf, vs, ve - vs, "close"))
				out->close = true;
			if (list_has(buf, vs, ve - vs, "keep-alive"))
				keep_alive = true;
		}
		i = le + 1;
	}
	if (out->chunked && have_cl) {
		(void)str_printf(diag, n, "both Content-Length and chunked from the handler");
		return -EBADMSG;
	}
	if (status < 200) {
		(void)str_printf(diag, n, "interim response %u from the handler", status);
		return -EBADMSG;
	}
	if (http10 && !keep_alive)
		out->close = true;
	out->status = status;
	out->head_len = head_len;
	if (head_request) {
		/* Some servers send a body anyway: this connection ends here. */
		out->framing = HRESP_LENGTH;
		out->content_length = 0;
		out->close = true;
	} else if (status == 204 || status == 304) {
		out->framing = HRESP_LENGTH;
		out->content_length = 0;
	} else if (out->chunked)
		out->framing = HRESP_CHUNKED;
	else if (have_cl)
		out->framing = HRESP_LENGTH;
	else {
		out->framing = HRESP_UNTIL_CLOSE;
		out->close = true;
	}
	return 1;
}

/* Hex digits of a chunk size; refuses sizes over 2^40. */
static int
chunk_size(const char *p, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		char c = p[i];
		int d = c >= '0' && c <= '9'   ? c - '0'
			: c >= 'a' && c <= 'f' ? c - 'a' + 10
			: c >= 'A' && c <= 'F' ? c - 'A' + 10
					       : -1;

		if (d < 0)
			break;
		if (v >> 36)
			return -EBADMSG;
		v = v * 16 + (uint64_t)d;
	}
	if (i == 0)
		return -EBADMSG;
	/* Then optional blanks, and chunk extensions (";name=value") that
	 * are allowed and ignored. */
	while (i < len && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (i < len && p[i] != ';')
		return -EBADMSG;
	*out = v;
	return 0;
}

int
hchunk_decode(struct hchunk *c, char *buf, size_t len)
{
	while (c->raw < len) {
		switch (c->state) {
		case HCHUNK_SIZE: {
			char *nl = memchr(buf + c->raw, '\n', len - c->raw);
			size_t l;
			uint64_t v;

			if (!nl)
				return len - c->raw > 1024 ? -EBADMSG : 0;
			l = (size_t)(nl - (buf + c->raw));
			if (l == 0 || buf[c->raw + l - 1] != '\r' ||
			    chunk_size(buf + c->raw, l - 1, &v) < 0)
				return -EBADMSG;
			c->raw += l + 1;
			c->left = v;
			c->state = v ? HCHUNK_DATA : HCHUNK_TRAILER;
			break;
		}
		case HCHUNK_DATA: {
			size_t k = (size_t)MIN(c->left, (uint64_t)(len - c->raw));

			memmove(buf + c->dec, buf + c->raw, k);
			c->dec += k;
			c->raw += k;
			c->left -= k;
			if (!c->left)
				c->state = HCHUNK_DATA_END;
			break;
		}
		case HCHUNK_DATA_END:
			if (len - c->raw < 2)
				return 0;
			if (buf[c->raw] != '\r' || buf[c->raw + 1] != '\n')
				return -EBADMSG;
			c->raw += 2;
			c->state = HCHUNK_SIZE;
			break;
		case HCHUNK_TRAILER: {
			/* Trailer fields are read and dropped; an empty line ends. */
			char *nl = memchr(buf + c->raw, '\n', len - c->raw);
			size_t l;

			if (!nl)
				return len - c->raw > 8192 ? -EBADMSG : 0;
			l = (size_t)(nl - (buf + c->raw));
			if (l == 0 || buf[c->raw + l - 1] != '\r')
				return -EBADMSG;
			c->raw += l + 1;
			if (l == 1) {
				c->state = HCHUNK_DONE;
				return 1;
			}
			break;
		}
		case HCHUNK_DONE:
			return 1;
		}
	}
	return c->state == HCHUNK_DONE ? 1 : 0;
}
