/*
 * deploy.c - deployments in the store (SPEC §6): create one, step it,
 * checkpoint it, end it, list them.  Part of the store (see store_int.h);
 * the gateway's deployment engine decides when, this file makes each move
 * durable in one transaction together with the alias weights it implies.
 *
 * INVARIANT: a deployment's state and its alias's (version, weights)
 * change in the same transaction, so after a crash at any point the alias
 * routes exactly what the deployment row says.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "util.h"

#define DEPLOY_COLS                                                                         \
	"d.id, f.name, d.alias, d.from_version, d.to_version, d.strategy, "                 \
	"d.max_error_rate, d.min_invocations, d.max_p95_ms, d.state, d.step, "              \
	"d.step_elapsed_ms, d.step_invocations, d.step_errors, d.steps, d.reason, "         \
	"d.figures, d.created_by, d.created_at, d.updated_at, d.ended_at, d.step_latency, " \
	"f.tenant_id"

static json_t *
int_or_null(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL
		       ? json_null()
		       : json_integer(sqlite3_column_int64(st, i));
}

static json_t *
json_or_null(sqlite3_stmt *st, int i)
{
	json_t *j;

	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return json_null();
	j = json_loads(sq_text(st, i), 0, NULL);
	return j ? j : json_null();
}

static json_t *
deploy_json(sqlite3_stmt *st)
{
	json_t *o = json_pack("{s:I, s:s, s:s, s:I, s:s, s:f, s:I, s:s, s:I, s:I, s:I, s:I, s:s, "
			      "s:o}",
			      "id", (json_int_t)sqlite3_column_int64(st, 0), "function",
			      sq_text(st, 1), "alias", sq_text(st, 2), "to_version",
			      (json_int_t)sqlite3_column_int64(st, 4), "strategy", sq_text(st, 5),
			      "max_error_rate", sqlite3_column_double(st, 6), "min_invocations",
			      (json_int_t)sqlite3_column_int64(st, 7), "state", sq_text(st, 9),
			      "step", (json_int_t)sqlite3_column_int64(st, 10), "step_elapsed_ms",
			      (json_int_t)sqlite3_column_int64(st, 11), "step_invocations",
			      (json_int_t)sqlite3_column_int64(st, 12), "step_errors",
			      (json_int_t)sqlite3_column_int64(st, 13), "created_by",
			      sq_text(st, 17), "created_at", sq_time(sqlite3_column_int64(st, 18)));

	json_object_set_new(o, "from_version", int_or_null(st, 3));
	json_object_set_new(o, "max_p95_ms", int_or_null(st, 8));
	json_object_set_new(o, "steps", json_or_null(st, 14));
	json_object_set_new(o, "reason",
			    sqlite3_column_type(st, 15) == SQLITE_NULL
				    ? json_null()
				    : json_string(sq_text(st, 15)));
	json_object_set_new(o, "figures", json_or_null(st, 16));
	json_object_set_new(o, "updated_at", sq_time(sqlite3_column_int64(st, 19)));
	json_object_set_new(o, "ended_at",
			    sqlite3_column_type(st, 20) == SQLITE_NULL
				    ? json_null()
				    : sq_time(sqlite3_column_int64(st, 20)));
	return o;
}

static int
deploy_load(struct store *s, int64_t fid, int64_t id, json_t **out)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r, rc;

	r = sq_prep(s,
		    "SELECT " DEPLOY_COLS " FROM deployments d JOIN functions f ON "
		    "f.id = d.function_id WHERE d.function_id = ? AND d.id = ?",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, fid);
	sqlite3_bind_int64(st, 2, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return -ESRCH;
	if (rc != SQLITE_ROW)
		return sq_err(s, rc);
	*out = deploy_json(st);
	return 0;
}

static int
weights_text(int64_t version, unsigned pct, char *buf, size_t n)
{
	return str_printf(buf, n, "{\"%lld\":%u}", (long long)version, pct);
}

static int
deploy_create_locked(struct store *s, int64_t tenant_id, const char *fn,
		     const struct store_deploy_new *d, json_t **out)
{
	_cleanup_stmt_ sqlite3_stmt *ins = NULL;
	int64_t fid, from = 0, dep, now = (int64_t)now_wall_ms();
	char weights[64], reason[160] = "";
	bool at_once = d->first_weight >= 100, in_progress;
	int r;

	r = sq_fn_id(s, tenant_id, fn, &fid);
	if (r < 0)
		return r;
	r = sq_version_exists(s, fid, d->to_version);
	if (r < 0)
		return r;
	r = sq_deploy_active(s, fid, d->alias, &dep);
	if (r < 0)
		return r;
	if (r > 0)
		return -EINPROGRESS;
	r = sq_alias_row(s, fid, d->alias, &from, NULL, weights, sizeof(weights));
	if (r == -ESRCH) {
		from = 0;
		at_once = true;
		(void)str_printf(reason, sizeof(reason),
				 "alias '%s' was new: it points at version %lld at once", d->alias,
				 (long long)d->to_version);
	} else if (r < 0)
		return r;
	else if (strcmp(weights, "{}") != 0)
		return -ENOTEMPTY;
	else if (from == d->to_version)
		return -EALREADY;
	in_progress = !at_once;
	if (at_once)
		r = sq_alias_write(s, fid, d->alias, d->to_version, "{}");
	else {
		(void)weights_text(d->to_version, d->first_weight, weights, sizeof(weights));
		r = sq_alias_write(s, fid, d->alias, from, weights);
	}
	if (r < 0)
		return r;
	r = sq_prep(s,
		    "INSERT INTO deployments (function_id, alias, from_version, to_version, "
		    "strategy, max_error_rate, min_invocations, max_p95_ms, state, step, reason, "
		    "created_by, created_at, updated_at, ended_at) "
		    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?13, ?)",
		    &ins);
	if (r < 0)
		return r;
	sqlite3_bind_int64(ins, 1, fid);
	sqlite3_bind_text(ins, 2, d->alias, -1, SQLITE_STATIC);
	if (from)
		sqlite3_bind_int64(ins, 3, from);
	else
		sqlite3_bind_null(ins, 3);
	sqlite3_bind_int64(ins, 4, d->to_version);
	sqlite3_bind_text(ins, 5, d->strategy, -1, SQLITE_STATIC);
	sqlite3_bind_double(ins, 6, d->max_error_rate);
	sqlite3_bind_int64(ins, 7, d->min_invocations);
	if (d->max_p95_ms > 0)
		sqlite3_bind_int64(ins, 8, d->max_p95_ms);
	else
		sqlite3_bind_null(ins, 8);
	sqlite3_bind_text(ins, 9, in_progress ? "in_progress" : "succeeded", -1, SQLITE_STATIC);
	sqlite3_bind_int64(ins, 10, in_progress ? 1 : 0);
	if (*reason)
		sqlite3_bind_text(ins, 11, reason, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(ins, 11);
	sqlite3_bind_text(ins, 12, d->created_by ? d->created_by : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(ins, 13, now);
	if (in_progress)
		sqlite3_bind_null(ins, 14);
	else
		sqlite3_bind_int64(ins, 14, now);
	r = sq_done(s, ins);
	if (r < 0)
		return r == -EEXIST ? -EINPROGRESS : r;
	return deploy_load(s, fid, sqlite3_last_insert_rowid(s->db), out);
}

int
store_deploy_create(struct store *s, int64_t tenant_id, const char *fn,
		    const struct store_deploy_new *d, json_t **out)
{
	int r;
	BUMPS_GENERATION(s);
	LOCKED(s);

	*out = NULL;
	r = sq_exec(s, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	return sq_end(s, deploy_create_locked(s, tenant_id, fn, d, out), out);
}

int
store_deploy_running(struct store *s, int (*cb)(const struct store_deploy_run *d, void *ud),
		     void *ud)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r, rc;

	r = sq_prep(s,
		    "SELECT " DEPLOY_COLS ", t.name FROM deployments d JOIN functions f ON "
		    "f.id = d.function_id JOIN tenants t ON t.id = f.tenant_id "
		    "WHERE d.state = 'in_progress' ORDER BY d.id",
		    &st);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_deploy_run d = {
			.id = sqlite3_column_int64(st, 0),
			.function = sq_text(st, 1),
			.alias = sq_text(st, 2),
			.from_version = sqlite3_column_int64(st, 3),
			.to_version = sqlite3_column_int64(st, 4),
			.strategy = sq_text(st, 5),
			.max_error_rate = sqlite3_column_double(st, 6),
			.min_invocations = sqlite3_column_int64(st, 7),
			.max_p95_ms = sqlite3_column_int64(st, 8),
			.step = (unsigned)sqlite3_column_int64(st, 10),
			.step_elapsed_ms = sqlite3_column_int64(st, 11),
			.step_invocations = sqlite3_column_int64(st, 12),
			.step_errors = sqlite3_column_int64(st, 13),
			.step_latency = sq_text(st, 21),
			.tenant_id = sqlite3_column_int64(st, 22),
			.tenant = sq_text(st, 23),
		};

		r = cb(&d, ud);
		if (r < 0)
			return r;
	}
	return rc == SQLITE_DONE ? 0 : sq_err(s, rc);
}

int
store_deploy_checkpoint(struct store *s, int64_t id, unsigned step, int64_t elapsed_ms,
			int64_t invocations, int64_t errors, const char *latency)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	r = sq_prep(s,
		    "UPDATE deployments SET step_elapsed_ms = ?, step_invocations = ?, "
		    "step_errors = ?, step_latency = ?, updated_at = ? "
		    "WHERE id = ? AND state = 'in_progress' AND step = ?",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, elapsed_ms);
	sqlite3_bind_int64(st, 2, invocations);
	sqlite3_bind_int64(st, 3, errors);
	sqlite3_bind_text(st, 4, latency, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (int64_t)now_wall_ms());
	sqlite3_bind_int64(st, 6, id);
	sqlite3_bind_int64(st, 7, step);
	r = sq_done(s, st);
	if (r < 0)
		return r;
	return sqlite3_changes(s->db) ? 0 : -ESRCH;
}

/* The deployment's function, alias and versions, if in progress. */
static int
deploy_running_row(struct store *s, int64_t id, int64_t *fid, char alias[64], int64_t *from,
		   int64_t *to, int64_t *step)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	const char *state;
	int r, rc;

	r = sq_prep(s,
		    "SELECT function_id, alias, from_version, to_version, state, step "
		    "FROM deployments WHERE id = ?",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return -ESRCH;
	if (rc != SQLITE_ROW)
		return sq_err(s, rc);
	*fid = sqlite3_column_int64(st, 0);
	(void)str_copy(alias, 64, sq_text(st, 1));
	*from = sqlite3_column_int64(st, 2);
	*to = sqlite3_column_int64(st, 3);
	state = sq_text(st, 4);
	if (step)
		*step = sqlite3_column_int64(st, 5);
	return strcmp(state, "in_progress") == 0 ? 0 : -EALREADY;
}

static int
deploy_advance_locked(struct store *s, int64_t id, unsigned step, unsigned weight,
		      const char *figures)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int64_t fid = 0, from = 0, to = 0, cur = 0, now = (int64_t)now_wall_ms();
	char alias[64], weights[64];
	bool done = weight >= 100;
	int r;

	r = deploy_running_row(s, id, &fid, alias, &from, &to, &cur);
	if (r < 0)
		return r == -EALREADY ? -ESRCH : r;
	if (cur + 1 != (int64_t)step)
		return -ESRCH; /* another caller stepped it already */
	if (done)
		r = sq_alias_write(s, fid, alias, to, "{}");
	else {
		(void)weights_text(to, weight, weights, sizeof(weights));
		r = sq_alias_write(s, fid, alias, from, weights);
	}
	if (r < 0)
		return r;
	r = sq_prep(s,
		    "UPDATE deployments SET steps = json_insert(steps, '$[#]', json(?)), "
		    "step = ?, step_elapsed_ms = 0, step_invocations = 0, step_errors = 0, "
		    "step_latency = '[]', state = ?, updated_at = ?, "
		    "ended_at = CASE WHEN ?3 = 'succeeded' THEN ?4 END WHERE id = ?",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, figures ? figures : "{}", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, step);
	sqlite3_bind_text(st, 3, done ? "succeeded" : "in_progress", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now);
	sqlite3_bind_int64(st, 5, id);
	return sq_done(s, st);
}

int
store_deploy_advance(struct store *s, int64_t id, unsigned step, unsigned weight,
		     const char *figures)
{
	int r;
	BUMPS_GENERATION(s);
	LOCKED(s);

	r = sq_exec(s, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	return sq_end(s, deploy_advance_locked(s, id, step, weight, figures), NULL);
}

int
sq_deploy_end(struct store *s, int64_t fid, int64_t id, const char *state, const char *reason,
	      const char *figures)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int64_t dfid = 0, from = 0, to = 0, now = (int64_t)now_wall_ms();
	char alias[64];
	int r;

	r = deploy_running_row(s, id, &dfid, alias, &from, &to, NULL);
	if (r == 0 || r == -EALREADY)
		if (dfid != fid)
			r = -ESRCH; /* another function's deployment */
	if (r < 0)
		return r;
	r = sq_alias_write(s, fid, alias, from, "{}");
	if (r < 0)
		return r;
	r = sq_prep(s,
		    "UPDATE deployments SET state = ?, reason = ?, figures = json(?), "
		    "updated_at = ?, ended_at = ?4 WHERE id = ?",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, reason, -1, SQLITE_STATIC);
	if (figures)
		sqlite3_bind_text(st, 3, figures, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 3);
	sqlite3_bind_int64(st, 4, now);
	sqlite3_bind_int64(st, 5, id);
	return sq_done(s, st);
}

static int
deploy_end_locked(struct store *s, int64_t tenant_id, const char *fn, int64_t id, const char *state,
		  const char *reason, const char *figures, json_t **out)
{
	int64_t fid;
	int r;

	r = sq_fn_id(s, tenant_id, fn, &fid);
	if (r < 0)
		return r;
	r = sq_deploy_end(s, fid, id, state, reason, figures);
	if (r < 0 || !out)
		return r;
	return deploy_load(s, fid, id, out);
}

int
store_deploy_end(struct store *s, int64_t tenant_id, const char *fn, int64_t id, const char *state,
		 const char *reason, const char *figures, json_t **out)
{
	int r;
	BUMPS_GENERATION(s);
	LOCKED(s);

	if (out)
		*out = NULL;
	r = sq_exec(s, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	return sq_end(s, deploy_end_locked(s, tenant_id, fn, id, state, reason, figures, out), out);
}

int
store_deploy_list(struct store *s, int64_t tenant_id, const char *fn, unsigned limit, json_t **out)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	json_t *arr;
	int64_t fid;
	int r, rc;

	r = sq_fn_id(s, tenant_id, fn, &fid);
	if (r < 0)
		return r;
	r = sq_prep(s,
		    "SELECT " DEPLOY_COLS " FROM deployments d JOIN functions f ON "
		    "f.id = d.function_id WHERE d.function_id = ? ORDER BY d.id DESC LIMIT ?",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, fid);
	sqlite3_bind_int64(st, 2, limit);
	arr = json_array();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(arr, deploy_json(st));
	if (rc != SQLITE_DONE) {
		json_decref(arr);
		return sq_err(s, rc);
	}
	*out = json_pack("{s:s, s:o}", "function", fn, "deployments", arr);
	return 0;
}

int
store_deploy_get(struct store *s, int64_t tenant_id, const char *fn, int64_t id, json_t **out)
{
	int64_t fid;
	int r;
	LOCKED(s);

	r = sq_fn_id(s, tenant_id, fn, &fid);
	return r < 0 ? r : deploy_load(s, fid, id, out);
}
