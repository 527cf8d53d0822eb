/*
 * respond.c - JSON responses and the error shape of SPEC §5:
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

enum MHD_Result
gw_json(struct req *q, unsigned status, json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT);
	struct MHD_Response *resp;
	enum MHD_Result ret;
	size_t len;

	json_decref(body);
	if (!text)
		return MHD_NO;
	len = strlen(text);
	/* A trailing newline keeps curl output readable. */
	text[len] = '\n';
	resp = MHD_create_response_from_buffer_with_free_callback(len + 1, text, free);
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	ret = gw_queue(q, status, resp);
	return ret;
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
