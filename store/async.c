/*
 * async.c - the durable queue of asynchronous invocations (SPEC §8).
 *
 * A POST to /async/... is a row here before its 202 is sent; the gateway's
 * async runners claim due rows (queued -> running, one attempt more), run
 * them as ordinary invocations and settle them: succeeded, queued again
 * with a later next_at (a retry), or failed (the dead letter, which a
 * redrive puts back in the queue).  Rows found running at start were cut
 * off by a stop or a crash and go back to the queue: an invocation is run
 * at least once, never lost.  Every call of a tenant is scoped by its id.
 * Never logs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "util.h"

#define ASYNC_COLS                                                                              \
	"id, function, qualifier, trigger, state, attempts, max_retries, next_at, created_at, " \
	"updated_at, last_invocation, last_status, last_error, callback_url, callback_status, " \
	"callback_error"

void
store_async_free(struct store_async *a)
{
	free(a->path);
	free(a->query);
	free(a->headers);
	free(a->body);
	free(a->callback_url);
	memset(a, 0, sizeof(*a));
}

static void
bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

/* The INSERT of store_async_add, the lock held by the caller. */
static int
async_insert(struct store *s, const struct store_async *a, int64_t now_us)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	r = sq_prep(s,
		    "INSERT INTO async_invocations (id, tenant_id, function, qualifier, trigger, "
		    "path, query, headers, body, callback_url, max_retries, next_at, created_at, "
		    "updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, a->tenant_id);
	sqlite3_bind_text(st, 3, a->function, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, a->qualifier, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, a->trigger[0] ? a->trigger : "async", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, a->path ? a->path : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, a->query ? a->query : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, a->headers ? a->headers : "{}", -1, SQLITE_STATIC);
	if (a->body_len)
		sqlite3_bind_blob64(st, 9, a->body, a->body_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 9);
	bind_text_or_null(st, 10, a->callback_url);
	sqlite3_bind_int(st, 11, (int)a->max_retries);
	sqlite3_bind_int64(st, 12, a->next_at_us ? a->next_at_us : now_us);
	sqlite3_bind_int64(st, 13, now_us);
	sqlite3_bind_int64(st, 14, now_us);
	return sq_done(s, st);
}

int
store_async_add(struct store *s, const struct store_async *a, int64_t now_us)
{
	LOCKED(s);

	return async_insert(s, a, now_us);
}

int
store_schedules_list(struct store *s, int (*cb)(const struct store_scheduled *sc, void *ud),
		     void *ud)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r, rc;

	r = sq_prep(s,
		    "SELECT t.id, t.name, f.name, json_extract(v.config, '$.schedule'), "
		    "sc.last_slot FROM functions f JOIN tenants t ON t.id = f.tenant_id "
		    "JOIN aliases a ON a.function_id = f.id AND a.name = 'live' "
		    "JOIN versions v ON v.function_id = f.id AND v.number = a.version "
		    "LEFT JOIN schedules sc ON sc.tenant_id = f.tenant_id AND sc.function = f.name "
		    "WHERE json_extract(v.config, '$.schedule') IS NOT NULL",
		    &st);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_scheduled sc = { .tenant_id = sqlite3_column_int64(st, 0) };

		(void)str_copy(sc.tenant, sizeof(sc.tenant), sq_text(st, 1));
		(void)str_copy(sc.function, sizeof(sc.function), sq_text(st, 2));
		(void)str_copy(sc.schedule, sizeof(sc.schedule), sq_text(st, 3));
		sc.last_slot = sqlite3_column_type(st, 4) == SQLITE_NULL
				       ? -1
				       : sqlite3_column_int64(st, 4);
		r = cb(&sc, ud);
		if (r < 0)
			return r;
	}
	return rc == SQLITE_DONE ? 0 : sq_err(s, rc);
}

int
store_schedule_fire(struct store *s, int64_t tenant_id, const char *fn, int64_t slot,
		    const struct store_async *job, int64_t now_us)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	r = sq_exec(s, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	r = sq_prep(s,
		    "INSERT INTO schedules (tenant_id, function, last_slot) VALUES (?1, ?2, ?3) "
		    "ON CONFLICT (tenant_id, function) DO UPDATE SET last_slot = ?3 "
		    "WHERE last_slot < ?3",
		    &st);
	if (r >= 0) {
		sqlite3_bind_int64(st, 1, tenant_id);
		sqlite3_bind_text(st, 2, fn, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, slot);
		r = sq_done(s, st);
	}
	if (r >= 0)
		r = sqlite3_changes(s->db) ? 1 : 0;
	if (r == 1 && job)
		r = async_insert(s, job, now_us) < 0 ? -EIO : 1;
	return sq_end(s, r, NULL);
}

static char *
column_dup(sqlite3_stmt *st, int i, size_t *len)
{
	const void *p = sqlite3_column_blob(st, i);
	size_t n = (size_t)sqlite3_column_bytes(st, i);
	char *d = malloc(n + 1);

	if (!d)
		return NULL;
	if (n)
		memcpy(d, p, n);
	d[n] = 0;
	if (len)
		*len = n;
	return d;
}

int
store_async_claim(struct store *s, int64_t now_us, struct store_async *out)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r, rc;

	memset(out, 0, sizeof(*out));
	/* One statement: two runners never claim the same row. */
	r = sq_prep(s,
		    "UPDATE async_invocations SET state = 'running', attempts = attempts + 1, "
		    "updated_at = ?1 WHERE id = (SELECT id FROM async_invocations "
		    "WHERE state = 'queued' AND next_at <= ?1 ORDER BY next_at LIMIT 1) "
		    "RETURNING id, tenant_id, function, qualifier, trigger, path, query, headers, "
		    "body, callback_url, attempts, max_retries",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, now_us);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return sq_err(s, rc);
	(void)str_copy(out->id, sizeof(out->id), sq_text(st, 0));
	out->tenant_id = sqlite3_column_int64(st, 1);
	(void)str_copy(out->function, sizeof(out->function), sq_text(st, 2));
	(void)str_copy(out->qualifier, sizeof(out->qualifier), sq_text(st, 3));
	(void)str_copy(out->trigger, sizeof(out->trigger), sq_text(st, 4));
	out->path = column_dup(st, 5, NULL);
	out->query = column_dup(st, 6, NULL);
	out->headers = column_dup(st, 7, NULL);
	out->body = column_dup(st, 8, &out->body_len);
	if (sqlite3_column_type(st, 9) != SQLITE_NULL)
		out->callback_url = column_dup(st, 9, NULL);
	out->attempts = (unsigned)sqlite3_column_int(st, 10);
	out->max_retries = (unsigned)sqlite3_column_int(st, 11);
	/* The statement must run to its end for the UPDATE to be done. */
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE || !out->path || !out->query || !out->headers || !out->body ||
	    (sqlite3_column_type(st, 9) != SQLITE_NULL && !out->callback_url)) {
		store_async_free(out);
		return rc != SQLITE_DONE ? sq_err(s, rc) : -ENOMEM;
	}
	{
		_cleanup_stmt_ sqlite3_stmt *t = NULL;

		r = sq_prep(s, "SELECT name FROM tenants WHERE id = ?", &t);
		if (r >= 0) {
			sqlite3_bind_int64(t, 1, out->tenant_id);
			if (sqlite3_step(t) == SQLITE_ROW)
				(void)str_copy(out->tenant, sizeof(out->tenant), sq_text(t, 0));
		}
	}
	return 1;
}

int
store_async_next_due(struct store *s, int64_t *at_us)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r, rc;

	r = sq_prep(s, "SELECT min(next_at) FROM async_invocations WHERE state = 'queued'", &st);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		return sq_err(s, rc);
	if (sqlite3_column_type(st, 0) == SQLITE_NULL)
		return 0;
	*at_us = sqlite3_column_int64(st, 0);
	return 1;
}

int
store_async_settle(struct store *s, const char *id, const char *state, int64_t next_at_us,
		   const char *invocation_id, int http_status, const char *error, int64_t now_us)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	r = sq_prep(s,
		    "UPDATE async_invocations SET state = ?2, next_at = ?3, "
		    "last_invocation = coalesce(?4, last_invocation), last_status = ?5, "
		    "last_error = ?6, updated_at = ?7 WHERE id = ?1 AND state = 'running'",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, next_at_us);
	bind_text_or_null(st, 4, invocation_id && *invocation_id ? invocation_id : NULL);
	if (http_status > 0)
		sqlite3_bind_int(st, 5, http_status);
	else
		sqlite3_bind_null(st, 5);
	bind_text_or_null(st, 6, error);
	sqlite3_bind_int64(st, 7, now_us);
	r = sq_done(s, st);
	if (r < 0)
		return r;
	return sqlite3_changes(s->db) ? 0 : -ENOENT;
}

int
store_async_release(struct store *s, const char *id, int64_t now_us)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	r = sq_prep(s,
		    "UPDATE async_invocations SET state = 'queued', next_at = ?2, updated_at = ?2, "
		    "attempts = max(attempts - 1, 0) WHERE id = ?1 AND state = 'running'",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now_us);
	return sq_done(s, st);
}

int
store_async_callback_done(struct store *s, const char *id, int status, const char *error)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	r = sq_prep(s,
		    "UPDATE async_invocations SET callback_status = ?2, callback_error = ?3 "
		    "WHERE id = ?1",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (status > 0)
		sqlite3_bind_int(st, 2, status);
	else
		sqlite3_bind_null(st, 2);
	bind_text_or_null(st, 3, error);
	return sq_done(s, st);
}

int
store_async_requeue_running(struct store *s, int64_t now_us)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	r = sq_prep(s,
		    "UPDATE async_invocations SET state = 'queued', next_at = ?1, updated_at = ?1, "
		    "last_error = 'cut off by a stop of faasd; run again' WHERE state = 'running'",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, now_us);
	r = sq_done(s, st);
	return r < 0 ? r : sqlite3_changes(s->db);
}

static json_t *
async_json(sqlite3_stmt *st, const char *tenant)
{
	const char *state = sq_text(st, 4);
	json_t *j =
		json_pack("{s:s, s:s, s:s, s:s?, s:s, s:s, s:I, s:I, s:o, s:o}", "id",
			  sq_text(st, 0), "tenant", tenant, "function", sq_text(st, 1), "qualifier",
			  *sq_text(st, 2) ? sq_text(st, 2) : NULL, "trigger", sq_text(st, 3),
			  "state", state, "attempts", (json_int_t)sqlite3_column_int64(st, 5),
			  "max_retries", (json_int_t)sqlite3_column_int64(st, 6), "created_at",
			  sq_time(sqlite3_column_int64(st, 8) / 1000), "updated_at",
			  sq_time(sqlite3_column_int64(st, 9) / 1000));

	if (!j)
		return NULL;
	if (strcmp(state, "queued") == 0)
		json_object_set_new(j, "next_attempt_at",
				    sq_time(sqlite3_column_int64(st, 7) / 1000));
	json_object_set_new(j, "last_invocation_id",
			    sqlite3_column_type(st, 10) == SQLITE_NULL
				    ? json_null()
				    : json_string(sq_text(st, 10)));
	json_object_set_new(j, "last_http_status",
			    sqlite3_column_type(st, 11) == SQLITE_NULL
				    ? json_null()
				    : json_integer(sqlite3_column_int64(st, 11)));
	json_object_set_new(j, "last_error",
			    sqlite3_column_type(st, 12) == SQLITE_NULL
				    ? json_null()
				    : json_string(sq_text(st, 12)));
	if (sqlite3_column_type(st, 13) != SQLITE_NULL) {
		json_object_set_new(j, "callback_url", json_string(sq_text(st, 13)));
		json_object_set_new(j, "callback",
				    json_pack("{s:o, s:o}", "http_status",
					      sqlite3_column_type(st, 14) == SQLITE_NULL
						      ? json_null()
						      : json_integer(sqlite3_column_int64(st, 14)),
					      "error",
					      sqlite3_column_type(st, 15) == SQLITE_NULL
						      ? json_null()
						      : json_string(sq_text(st, 15))));
	}
	return j;
}

int
store_async_get(struct store *s, int64_t tenant_id, const char *tenant, const char *id,
		json_t **out)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r, rc;

	r = sq_prep(s,
		    "SELECT " ASYNC_COLS " FROM async_invocations WHERE id = ?1 AND tenant_id = ?2",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, tenant_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return sq_err(s, rc);
	*out = async_json(st, tenant);
	return *out ? 0 : -ENOMEM;
}

int
store_async_list(struct store *s, int64_t tenant_id, const char *tenant, const char *state,
		 unsigned limit, json_t **out)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	json_t *arr;
	int r, rc;

	r = sq_prep(s,
		    "SELECT " ASYNC_COLS " FROM async_invocations WHERE tenant_id = ?1 "
		    "AND (?2 IS NULL OR state = ?2) ORDER BY created_at DESC, id DESC LIMIT ?3",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, tenant_id);
	bind_text_or_null(st, 2, state);
	sqlite3_bind_int(st, 3, (int)limit);
	arr = json_array();
	if (!arr)
		return -ENOMEM;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (json_array_append_new(arr, async_json(st, tenant)) < 0) {
			json_decref(arr);
			return -ENOMEM;
		}
	if (rc != SQLITE_DONE) {
		json_decref(arr);
		return sq_err(s, rc);
	}
	*out = json_pack("{s:o}", "async_invocations", arr);
	return *out ? 0 : -ENOMEM;
}

int
store_async_redrive(struct store *s, int64_t tenant_id, const char *id, int64_t now_us)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	r = sq_prep(s,
		    "UPDATE async_invocations SET state = 'queued', attempts = 0, next_at = ?3, "
		    "updated_at = ?3, callback_status = NULL, callback_error = NULL "
		    "WHERE id = ?1 AND tenant_id = ?2 AND state = 'failed'",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, tenant_id);
	sqlite3_bind_int64(st, 3, now_us);
	r = sq_done(s, st);
	if (r < 0)
		return r;
	if (sqlite3_changes(s->db))
		return 0;
	{
		_cleanup_stmt_ sqlite3_stmt *q = NULL;

		r = sq_prep(s, "SELECT 1 FROM async_invocations WHERE id = ?1 AND tenant_id = ?2",
			    &q);
		if (r < 0)
			return r;
		sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 2, tenant_id);
		return sqlite3_step(q) == SQLITE_ROW ? -EALREADY : -ENOENT;
	}
}

int
store_async_counts(struct store *s, uint64_t counts[4])
{
	static const char *const states[] = { "queued", "running", "succeeded", "failed" };
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r, rc;

	memset(counts, 0, 4 * sizeof(*counts));
	r = sq_prep(s, "SELECT state, count(*) FROM async_invocations GROUP BY state", &st);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		for (unsigned i = 0; i < 4; i++)
			if (strcmp(sq_text(st, 0), states[i]) == 0)
				counts[i] = (uint64_t)sqlite3_column_int64(st, 1);
	return rc == SQLITE_DONE ? 0 : sq_err(s, rc);
}

int
store_async_prune(struct store *s, int64_t before_us, unsigned batch)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	r = sq_prep(s,
		    "DELETE FROM async_invocations WHERE id IN (SELECT id FROM async_invocations "
		    "WHERE (state = 'succeeded' OR state = 'failed') AND updated_at < ? LIMIT ?)",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, before_us);
	sqlite3_bind_int(st, 2, (int)batch);
	r = sq_done(s, st);
	return r < 0 ? r : sqlite3_changes(s->db);
}
