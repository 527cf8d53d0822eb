/*
 * respond.c - answers: struct gw_ans puts one together for either server
 * of the request (libmicrohttpd, or the fast path's own connection,
 * fast.c), and the JSON responses and error shape of SPEC §5:
 * {"error": {"code": "snake_case", "message": "…"}}.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "errmap.h"
#include "gw.h"
#include "log.h"
#include "util.h"

int
gw_ans_buffer(struct gw_ans *a, struct req *q, size_t len, void *body, void (*free_fn)(void *),
	      void *cls)
{
	memset(a, 0, sizeof(*a));
	a->q = q;
	if (q->fc) {
		a->body = body;
		a->body_len = len;
		a->body_free = free_fn;
		a->body_cls = cls;
		return 0;
	}
	a->mhd = MHD_create_response_from_buffer_with_free_callback_cls(len, body, free_fn, cls);
	return a->mhd ? 0 : -ENOMEM;
}

int
gw_ans_stream(struct gw_ans *a, struct req *q, uint64_t size, MHD_ContentReaderCallback reader)
{
	memset(a, 0, sizeof(*a));
	a->q = q;
	a->stream = true;
	a->body_len = size;
	if (q->fc)
		return 0;
	a->mhd = MHD_create_response_from_callback(size, 64 * 1024, reader, q, NULL);
	return a->mhd ? 0 : -ENOMEM;
}

void
gw_ans_header(struct gw_ans *a, const char *name, const char *value)
{
	if (a->mhd) {
		MHD_add_response_header(a->mhd, name, value);
		return;
	}
	if (strpbrk(value, "\r\n"))
		return; /* as MHD_add_response_header refuses it */
	buf_str(&a->hdr, name);
	buf_append(&a->hdr, ": ", 2);
	buf_str(&a->hdr, value);
	buf_append(&a->hdr, "\r\n", 2);
}

enum MHD_Result
gw_ans_queue(struct gw_ans *a, unsigned status)
{
	if (a->mhd)
		return gw_queue(a->q, status, a->mhd);
	return fast_queue(a->q, status, a);
}

enum MHD_Result
gw_json(struct req *q, unsigned status, json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT);
	struct gw_ans a;
	size_t len;

	json_decref(body);
	if (!text)
		return MHD_NO;
	len = strlen(text);
	/* A trailing newline keeps curl output readable. */
	text[len] = '\n';
	if (gw_ans_buffer(&a, q, len + 1, text, free, text) < 0) {
		free(text);
		return MHD_NO;
	}
	gw_ans_header(&a, "Content-Type", "application/json");
	return gw_ans_queue(&a, status);
}

enum MHD_Result
gw_queue(struct req *q, unsigned status, struct MHD_Response *resp)
{
	enum MHD_Result r;

	if (q->offloaded) {
		/* Off the loop: MHD takes responses only in its own
		 * callbacks, so the loop queues this one when it resumes q. */
		if (q->resp)
			MHD_destroy_response(q->resp);
		q->resp = resp;
		q->resp_status = status;
		return MHD_YES;
	}
	r = MHD_queue_response(q->conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result
verror(struct req *q, unsigned status, const char *code, const char *fmt, va_list ap)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	return gw_json(q, status,
		       json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg));
}

enum MHD_Result
gw_error(struct req *q, unsigned status, const char *code, const char *fmt, ...)
{
	va_list ap;
	enum MHD_Result r;

	va_start(ap, fmt);
	r = verror(q, status, code, fmt, ap);
	va_end(ap);
	return r;
}

enum MHD_Result
gw_errno(struct req *q, int err, const char *fmt, ...)
{
	const struct errmap_entry *e = errmap_lookup(err);
	va_list ap;
	enum MHD_Result r;

	va_start(ap, fmt);
	if (e->status >= 500) {
		/* The client gets the gist; the log keeps the cause (the
		 * store's last error is the likeliest one). */
		char what[256];
		va_list aq;

		va_copy(aq, ap);
		(void)vsnprintf(what, sizeof(what), fmt, aq);
		va_end(aq);
		log_err("%s %s: %s: %s (store: %s)", q->method ? q->method : "?",
			q->uri ? q->uri : "?", what, strerror(err < 0 ? -err : err),
			store_errmsg(q->gw->store));
	}
	r = verror(q, e->status, e->code, fmt, ap);
	va_end(ap);
	return r;
}
