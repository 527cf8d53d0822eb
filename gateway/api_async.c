/*
 * api_async.c - POST /async/{t}/{f}[:{q}][/{path}] (SPEC §5, §8): an
 * asynchronous invocation, stored durably before its 202.
 *
 * async_begin runs on the event loop when the head is in: the function
 * must exist and the caller may invoke it (as for /fn/), the body limit is
 * max_async_body_bytes, and X-Callback-Url must be an http(s) URL.  Once
 * the body is in, api_async_enqueue (an API thread: it writes SQLite)
 * keeps the request as it came (the path after the function and the query
 * undecoded, the headers but Authorization and the hop-by-hop ones, the
 * body) and answers 202 {"id", "state"} with a Location where its state,
 * and once run its record, can be read.  async.c runs it.
 *
 * INVARIANT: the caller's token is not stored; a handler run
 * asynchronously never sees an Authorization header.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw.h"
#include "util.h"

#define CALLBACK_URL_MAX 2048

/* An absolute http(s) URL of printable ASCII without spaces, or NULL. */
static const char *
callback_url_problem(const char *u)
{
	size_t n = strlen(u);

	size_t host = strncasecmp(u, "http://", 7) == 0    ? 7
		      : strncasecmp(u, "https://", 8) == 0 ? 8
							   : 0;

	if (!host)
		return "must start with http:// or https://";
	if (n > CALLBACK_URL_MAX)
		return "is longer than 2048 characters";
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f)
			return "must be printable ASCII without spaces (percent-encode the rest)";
	if (u[host] == 0 || u[host] == '/')
		return "has no host";
	return NULL;
}

enum MHD_Result
async_begin(struct req *q, const char *method)
{
	struct gw *g = q->gw;
	struct store_tenant t;
	enum MHD_Result ret;
	const char *cl, *cb;

	if (strcmp(method, "POST") != 0)
		return api_method_not_allowed(q, method, "POST");
	/* The version is picked again when it runs. */
	if (invoke_resolve(q, NULL, &t, &ret) < 0)
		return ret;
	q->tenant_id = t.id;
	cb = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "X-Callback-Url");
	if (cb) {
		const char *why = callback_url_problem(cb);

		if (why)
			return gw_error(q, 400, "invalid_callback_url", "X-Callback-Url %s", why);
	}
	q->body_limit = g->cfg.max_async_body_bytes;
	cl = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Content-Length");
	if (cl) {
		uint64_t len;

		if (parse_u64(cl, 0, UINT64_MAX, &len) == 0 && len > q->body_limit &&
		    gw_body_too_large(q, len, &ret))
			return ret;
	}
	return MHD_YES;
}

/* Headers that are not the request's own content: the connection's, the
 * caller's credentials, ours. */
static bool
header_kept(const char *name)
{
	static const char *const drop[] = {
		"Authorization", "Host",   "Content-Length", "Connection",
		"Keep-Alive",    "TE",     "Trailer",        "Transfer-Encoding",
		"Upgrade",       "Expect", "X-Callback-Url", "Proxy-Authorization",
	};

	/* X-Faas-Route-Key stays: the run routes as the caller asked. */
	if (strncasecmp(name, "X-Faas-", 7) == 0)
		return strcasecmp(name, "X-Faas-Route-Key") == 0;
	for (size_t i = 0; i < ARRAY_SIZE(drop); i++)
		if (strcasecmp(name, drop[i]) == 0)
			return false;
	return true;
}

static enum MHD_Result
add_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	json_t *arr = cls;

	(void)kind;
	if (key && value && header_kept(key))
		json_array_append_new(arr, json_pack("[s, s]", key, value));
	return MHD_YES;
}

enum MHD_Result
api_async_enqueue(struct req *q)
{
	struct gw *g = q->gw;
	struct store_async a = { 0 };
	const char *u = q->uri, *qm, *p, *cb;
	char location[256], id[40];
	json_t *o;
	json_t *headers = json_array();
	struct MHD_Response *resp;
	char *text;
	int64_t now = (int64_t)now_wall_us();
	int r;

	if (!headers)
		return gw_errno(q, -ENOMEM, "cannot keep the request");
	/* The raw target: /async/{t}/{f}[:{q}]{path}[?{query}]; the path and
	 * query are kept undecoded, as /fn/ would get them. */
	qm = strchr(u, '?');
	p = strchr(u + 7, '/');
	p = p ? p + 1 + strcspn(p + 1, "/?") : u + strlen(u);
	a.path = strndup(p, qm && qm >= p ? (size_t)(qm - p) : strlen(p));
	a.query = strdup(qm ? qm + 1 : "");
	MHD_get_connection_values(q->conn, MHD_HEADER_KIND, add_header, headers);
	a.headers = json_dumps(headers, JSON_COMPACT);
	json_decref(headers);
	cb = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "X-Callback-Url");
	a.callback_url = cb ? strdup(cb) : NULL;
	if (!a.path || !a.query || !a.headers || (cb && !a.callback_url)) {
		store_async_free(&a);
		return gw_errno(q, -ENOMEM, "cannot keep the request");
	}
	invoke_make_id(id, (uint64_t)now / 1000);
	(void)str_copy(a.id, sizeof(a.id), id);
	a.tenant_id = q->tenant_id;
	(void)str_copy(a.function, sizeof(a.function), q->route.function);
	(void)str_copy(a.qualifier, sizeof(a.qualifier), q->route.qualifier);
	(void)str_copy(a.trigger, sizeof(a.trigger), "async");
	a.body = q->body.data;
	a.body_len = q->body.len;
	a.max_retries = (unsigned)g->cfg.async_retries;
	r = store_async_add(g->store, &a, now);
	a.body = NULL; /* q's */
	store_async_free(&a);
	if (r < 0)
		return gw_errno(q, r, "cannot queue the invocation");
	async_kick(g);
	(void)str_printf(location, sizeof(location), "/v1/tenants/%s/invocations/%s",
			 q->route.tenant, id);
	o = json_pack("{s:s, s:s, s:s}", "id", id, "state", "queued", "location", location);
	text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!text)
		return MHD_NO;
	resp = MHD_create_response_from_buffer_with_free_callback(strlen(text), text, free);
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "Location", location);
	MHD_add_response_header(resp, "X-Faas-Async-Id", id);
	return gw_queue(q, 202, resp);
}
