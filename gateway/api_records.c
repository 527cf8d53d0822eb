/*
 * api_records.c - invocation records and logs over HTTP (SPEC §5, §7):
 * GET /v1/tenants/{t}/invocations, …/invocations/{id} and
 * …/functions/{f}/logs.  Runs on the API threads (it reads SQLite).
 *
 * Query parameters are checked before anything is read: an unknown one or
 * a bad value gets 400 naming it.  Times are a duration back from now
 * ("90s", "10m", "2h", "7d"), an ISO 8601 UTC time
 * ("2026-12-03T08:00:00Z", fraction allowed) or Unix seconds; logs also
 * take "seq:N" to resume after the line cursor N a previous answer gave,
 * and follow=1 streams them as they come (follow.c).
 * Reading records needs a deploy (or stronger) key of the tenant.
 *
 * Also the async queue's side for people (SPEC §8): GET …/async (state,
 * limit), GET …/async/{id}, POST …/async/{id}/redrive (a failed one back
 * to the queue), and …/invocations/{id} of an async id (its state and the
 * record of its newest attempt).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fnconfig.h"
#include "gw.h"
#include "names.h"
#include "timeparse.h"
#include "util.h"

#define LIST_DEFAULT           50
#define LIST_MAX               1000
#define LOGS_DEFAULT           100
#define FOLLOW_DEFAULT_BACK_US (600ll * 1000000ll)

struct qcheck {
	const char *const *allowed;
	char bad[64];
};

static enum MHD_Result
check_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct qcheck *c = cls;

	(void)kind;
	(void)value;
	for (const char *const *a = c->allowed; *a; a++)
		if (strcmp(key, *a) == 0)
			return MHD_YES;
	(void)str_copy(c->bad, sizeof(c->bad), key);
	return MHD_NO;
}

/* 0, or a 400 naming the first parameter not in allowed (and what is) was
 * queued (-1). */
static int
only_args(struct req *q, const char *const *allowed, enum MHD_Result *ret)
{
	struct qcheck c = { .allowed = allowed };
	char list[160] = "";
	size_t len = 0;

	MHD_get_connection_values(q->conn, MHD_GET_ARGUMENT_KIND, check_arg, &c);
	if (!c.bad[0])
		return 0;
	for (const char *const *a = allowed; *a; a++)
		if (str_printf(list + len, sizeof(list) - len, "%s%s", len ? ", " : "", *a) >= 0)
			len = strlen(list);
	*ret = gw_error(q, 400, "invalid_query", "unknown query parameter '%.60s' (this takes: %s)",
			c.bad, len ? list : "none");
	return -1;
}

static const char *
arg(struct req *q, const char *name)
{
	const char *v = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, name);

	return v && *v ? v : NULL;
}

static int
time_arg(struct req *q, const char *name, int64_t *out, enum MHD_Result *ret)
{
	const char *v = arg(q, name);

	*out = 0;
	if (!v || time_parse(v, (int64_t)now_wall_us(), out) == 0)
		return 0;
	*ret = gw_error(q, 400, "invalid_query",
			"%s: '%.60s' is not a time: use a duration back from now (90s, 10m, 2h, "
			"7d), an ISO 8601 UTC time (2026-12-03T08:00:00Z) or Unix seconds",
			name, v);
	return -1;
}

static int
limit_arg(struct req *q, unsigned def, unsigned *out, enum MHD_Result *ret)
{
	const char *v = arg(q, "limit");
	uint64_t n = def;

	if (v && parse_u64(v, 1, LIST_MAX, &n) < 0) {
		*ret = gw_error(q, 400, "invalid_query",
				"limit: '%.60s' is not a number from 1 to %u", v, LIST_MAX);
		return -1;
	}
	*out = (unsigned)n;
	return 0;
}

static enum MHD_Result
list(struct req *q, const struct store_tenant *t)
{
	static const char *const allowed[] = {
		"function", "version", "status", "cold", "since", "until", "cursor", "limit", NULL,
	};
	struct store_record_filter f = { .cold = -1 };
	enum MHD_Result ret;
	const char *v;
	json_t *out;
	uint64_t n;
	int r;

	if (only_args(q, allowed, &ret) < 0 || time_arg(q, "since", &f.since_us, &ret) < 0 ||
	    time_arg(q, "until", &f.until_us, &ret) < 0 ||
	    limit_arg(q, LIST_DEFAULT, &f.limit, &ret) < 0)
		return ret;
	if ((v = arg(q, "function")) && !name_valid(v))
		return gw_error(q, 400, "invalid_query", "function: '%.60s' is not a function name",
				v);
	f.function = v;
	if ((v = arg(q, "version"))) {
		if (parse_u64(v, 1, INT64_MAX, &n) < 0)
			return gw_error(q, 400, "invalid_query",
					"version: '%.60s' is not a version number", v);
		f.version = (int64_t)n;
	}
	if ((v = arg(q, "status"))) {
		if (!str_oneof(v, "ok", "error", "timeout", "oom", "throttled", NULL))
			return gw_error(q, 400, "invalid_query",
					"status: '%.60s' is not one of ok, error, timeout, oom, "
					"throttled",
					v);
		f.status = v;
	}
	if ((v = arg(q, "cold"))) {
		if (str_oneof(v, "1", "true", NULL))
			f.cold = 1;
		else if (str_oneof(v, "0", "false", NULL))
			f.cold = 0;
		else
			return gw_error(q, 400, "invalid_query", "cold: '%.60s' is not 1 or 0", v);
	}
	if ((v = arg(q, "cursor"))) {
		if (parse_u64(v, 1, INT64_MAX, &n) < 0)
			return gw_error(q, 400, "invalid_query",
					"cursor: '%.60s' is not a cursor (the next_cursor of the "
					"previous page)",
					v);
		f.before_seq = (int64_t)n;
	}
	if (f.until_us && f.since_us >= f.until_us)
		return gw_error(q, 400, "invalid_query", "since must be before until");
	r = store_records_list(q->gw->store, t->id, t->name, &f, &out);
	return r < 0 ? gw_errno(q, r, "cannot list invocations") : gw_json(q, 200, out);
}

static enum MHD_Result
logs(struct req *q, const struct store_tenant *t)
{
	static const char *const allowed[] = { "since", "limit", "follow", NULL };
	enum MHD_Result ret;
	const char *since = arg(q, "since"), *follow = arg(q, "follow");
	int64_t after = 0, since_us = 0;
	unsigned limit;
	json_t *fn, *out;
	uint64_t n;
	int r;

	if (only_args(q, allowed, &ret) < 0 || limit_arg(q, LOGS_DEFAULT, &limit, &ret) < 0)
		return ret;
	if (since && str_startswith(since, "seq:")) {
		if (parse_u64(since + 4, 0, INT64_MAX, &n) < 0)
			return gw_error(q, 400, "invalid_query",
					"since: '%.60s' is not a line cursor (seq:N)", since);
		after = (int64_t)n;
	} else if (time_arg(q, "since", &since_us, &ret) < 0)
		return ret;
	if (follow && !str_oneof(follow, "0", "1", NULL))
		return gw_error(q, 400, "invalid_query", "follow: '%.60s' is not 1 or 0", follow);
	r = store_fn_get(q->gw->store, t->id, q->route.function, &fn);
	if (r == -ENOENT)
		return gw_error(q, 404, "function_not_found", "no function '%s' in tenant '%s'",
				q->route.function, t->name);
	if (r < 0)
		return gw_errno(q, r, "cannot read the function");
	json_decref(fn);
	if (follow && strcmp(follow, "1") == 0)
		/* Without since: from ten minutes back, as "tail -f" shows a
		 * little of the past. */
		return follow_start(
			q, t->id, q->route.function, after,
			since || after ? since_us : (int64_t)now_wall_us() - FOLLOW_DEFAULT_BACK_US,
			limit);
	r = store_records_logs(q->gw->store, t->id, q->route.function, after, since_us, limit,
			       &out);
	return r < 0 ? gw_errno(q, r, "cannot read logs") : gw_json(q, 200, out);
}

/* An async invocation's id (the 202's Location names it as an
 * invocation): its state as {"id", "trigger", "async": {...}}, with
 * "last_attempt": the record of its newest attempt once written (null
 * before).  -ENOENT when it is no async invocation of the tenant. */
static int
async_as_record(struct req *q, const struct store_tenant *t, json_t **out)
{
	json_t *a, *rec = NULL;
	const char *last;
	int r;

	r = store_async_get(q->gw->store, t->id, t->name, q->route.sub, &a);
	if (r < 0)
		return r;
	last = json_string_value(json_object_get(a, "last_invocation_id"));
	if (last && store_record_get(q->gw->store, t->id, t->name, last, &rec) < 0)
		rec = NULL;
	*out = json_pack("{s:s, s:s, s:s, s:O, s:o}", "id", q->route.sub, "tenant", t->name,
			 "trigger", json_string_value(json_object_get(a, "trigger")), "async", a,
			 "last_attempt", rec ? rec : json_null());
	json_decref(a);
	return *out ? 0 : -ENOMEM;
}

enum MHD_Result
api_async_queue(struct req *q, const char *method)
{
	static const char *const list_args[] = { "state", "limit", NULL };
	struct store_tenant t;
	enum MHD_Result ret;
	const char *state;
	unsigned limit;
	json_t *out;
	int r = 0;

	if (q->route.kind == ROUTE_ASYNC_REDRIVE ? strcmp(method, "POST") != 0
						 : strcmp(method, "GET") != 0)
		return api_method_not_allowed(
			q, method, q->route.kind == ROUTE_ASYNC_REDRIVE ? "POST" : "GET");
	if (api_authorize(q, q->route.tenant, SCOPE_DEPLOY, &ret) < 0 ||
	    api_load_tenant(q, &t, &ret) < 0)
		return ret;
	if (q->route.kind == ROUTE_ASYNC_LIST) {
		if (only_args(q, list_args, &ret) < 0 ||
		    limit_arg(q, LIST_DEFAULT, &limit, &ret) < 0)
			return ret;
		state = arg(q, "state");
		if (state && !str_oneof(state, "queued", "running", "succeeded", "failed", NULL))
			return gw_error(q, 400, "invalid_query",
					"state: '%.60s' is not one of queued, running, succeeded, "
					"failed",
					state);
		r = store_async_list(q->gw->store, t.id, t.name, state, limit, &out);
		return r < 0 ? gw_errno(q, r, "cannot list async invocations")
			     : gw_json(q, 200, out);
	}
	if (only_args(q, (const char *const[]){ NULL }, &ret) < 0)
		return ret;
	if (q->route.kind == ROUTE_ASYNC_REDRIVE) {
		r = store_async_redrive(q->gw->store, t.id, q->route.sub, (int64_t)now_wall_us());
		if (r == -EALREADY)
			return gw_error(q, 409, "not_failed",
					"async invocation '%s' has not failed: only the dead "
					"letter (state failed) is re-driven",
					q->route.sub);
		if (r >= 0)
			async_kick(q->gw);
	}
	if (r >= 0 || q->route.kind == ROUTE_ASYNC_ONE)
		r = store_async_get(q->gw->store, t.id, t.name, q->route.sub, &out);
	if (r == -ENOENT)
		return gw_error(q, 404, "async_invocation_not_found",
				"no async invocation '%s' in tenant '%s' (kept for %llu days "
				"once settled)",
				q->route.sub, t.name,
				(unsigned long long)q->gw->cfg.retention_days);
	return r < 0 ? gw_errno(q, r, "cannot read the async invocation") : gw_json(q, 200, out);
}

enum MHD_Result
api_records(struct req *q, const char *method)
{
	struct store_tenant t;
	enum MHD_Result ret;
	json_t *out;
	int r;

	if (strcmp(method, "GET") != 0)
		return api_method_not_allowed(q, method, "GET");
	if (api_authorize(q, q->route.tenant, SCOPE_DEPLOY, &ret) < 0 ||
	    api_load_tenant(q, &t, &ret) < 0)
		return ret;
	switch (q->route.kind) {
	case ROUTE_INVOCATIONS:
		return list(q, &t);
	case ROUTE_LOGS:
		return logs(q, &t);
	default:
		break;
	}
	if (only_args(q, (const char *const[]){ NULL }, &ret) < 0)
		return ret;
	r = store_record_get(q->gw->store, t.id, t.name, q->route.sub, &out);
	if (r == -ENOENT)
		r = async_as_record(q, &t, &out);
	if (r == -ENOENT)
		return gw_error(
			q, 404, "invocation_not_found",
			"no invocation '%s' in tenant '%s' (records are kept for %llu days)",
			q->route.sub, t.name, (unsigned long long)q->gw->cfg.retention_days);
	return r < 0 ? gw_errno(q, r, "cannot read the invocation") : gw_json(q, 200, out);
}
