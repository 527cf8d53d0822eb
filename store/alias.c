/*
 * alias.c - aliases (SPEC §6): a name that routes a function's invocations
 * to one version, or splits them by whole-percent weights over several;
 * and what an invocation resolves through them (store_route_resolve) or
 * keeps warm (store_warm_targets).  Part of the store (see store_int.h);
 * runs in the gateway under the store's mutex.
 *
 * INVARIANT: an alias row is written by one statement inside one
 * transaction, so readers see either the old or the new (version,
 * weights), never a mix; every version it names exists (the gateway
 * checks the weights' shape, this file their versions); and while a
 * deployment moves an alias, only that deployment writes it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "util.h"

int
sq_deploy_active(struct store *s, int64_t fid, const char *alias, int64_t *id)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r, rc;

	r = sq_prep(s,
		    "SELECT id FROM deployments WHERE function_id = ? AND alias = ? "
		    "AND state = 'in_progress'",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, fid);
	sqlite3_bind_text(st, 2, alias, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return sq_err(s, rc);
	*id = sqlite3_column_int64(st, 0);
	return 1;
}

int
sq_alias_row(struct store *s, int64_t fid, const char *alias, int64_t *version, int64_t *previous,
	     char *weights, size_t n)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r, rc;

	r = sq_prep(s,
		    "SELECT version, previous_version, weights FROM aliases "
		    "WHERE function_id = ? AND name = ?",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, fid);
	sqlite3_bind_text(st, 2, alias, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return -ESRCH;
	if (rc != SQLITE_ROW)
		return sq_err(s, rc);
	*version = sqlite3_column_int64(st, 0);
	if (previous)
		*previous =
			sqlite3_column_type(st, 1) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 1);
	if (weights && str_copy(weights, n, sq_text(st, 2)) < 0)
		return -EIO; /* longer than any weights the gateway accepts */
	return 0;
}

int
sq_alias_write(struct store *s, int64_t fid, const char *alias, int64_t version,
	       const char *weights)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	r = sq_prep(s,
		    "INSERT INTO aliases (function_id, name, version, weights, updated_at) "
		    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (function_id, name) DO UPDATE "
		    "SET previous_version = CASE WHEN version != excluded.version "
		    "  THEN version ELSE previous_version END, "
		    "version = excluded.version, weights = excluded.weights, "
		    "updated_at = excluded.updated_at",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, fid);
	sqlite3_bind_text(st, 2, alias, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, version);
	sqlite3_bind_text(st, 4, weights, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (int64_t)now_wall_ms());
	return sq_done(s, st);
}

int
sq_alias_upsert(struct store *s, int64_t fid, const char *alias, int64_t version)
{
	int64_t dep;
	int r = sq_deploy_active(s, fid, alias, &dep);

	if (r < 0)
		return r;
	if (r > 0)
		return -EINPROGRESS;
	return sq_alias_write(s, fid, alias, version, "{}");
}

int
sq_version_exists(struct store *s, int64_t fid, int64_t number)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r, rc;

	r = sq_prep(s, "SELECT 1 FROM versions WHERE function_id = ? AND number = ?", &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, fid);
	sqlite3_bind_int64(st, 2, number);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENXIO : sq_err(s, rc);
}

#define ALIAS_SELECT                                                               \
	"SELECT a.name, a.version, a.weights, a.previous_version, a.updated_at, "  \
	"(SELECT d.id FROM deployments d WHERE d.function_id = a.function_id AND " \
	"d.alias = a.name AND d.state = 'in_progress') FROM aliases a WHERE a.function_id = ?"

static json_t *
alias_json(sqlite3_stmt *st)
{
	json_t *w = json_loads(sq_text(st, 2), 0, NULL), *o;

	o = json_pack("{s:s, s:I, s:o, s:o}", "name", sq_text(st, 0), "version",
		      (json_int_t)sqlite3_column_int64(st, 1), "weights", w ? w : json_object(),
		      "updated_at", sq_time(sqlite3_column_int64(st, 4)));
	json_object_set_new(o, "previous_version",
			    sqlite3_column_type(st, 3) == SQLITE_NULL
				    ? json_null()
				    : json_integer(sqlite3_column_int64(st, 3)));
	json_object_set_new(o, "deployment",
			    sqlite3_column_type(st, 5) == SQLITE_NULL
				    ? json_null()
				    : json_integer(sqlite3_column_int64(st, 5)));
	return o;
}

int
sq_aliases_json(struct store *s, int64_t fid, json_t **out)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	json_t *obj = json_object();
	int r, rc;

	r = sq_prep(s, ALIAS_SELECT " ORDER BY a.name", &st);
	if (r < 0) {
		json_decref(obj);
		return r;
	}
	sqlite3_bind_int64(st, 1, fid);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *a = alias_json(st);

		json_object_del(a, "name");
		json_object_set_new(obj, sq_text(st, 0), a);
	}
	if (rc != SQLITE_DONE) {
		json_decref(obj);
		return sq_err(s, rc);
	}
	*out = obj;
	return 0;
}

static int
alias_load(struct store *s, int64_t fid, const char *alias, json_t **out)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r, rc;

	r = sq_prep(s, ALIAS_SELECT " AND a.name = ?", &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, fid);
	sqlite3_bind_text(st, 2, alias, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return -ESRCH;
	if (rc != SQLITE_ROW)
		return sq_err(s, rc);
	*out = alias_json(st);
	return 0;
}

int
store_alias_get(struct store *s, int64_t tenant_id, const char *fn, const char *alias, json_t **out)
{
	int64_t fid;
	int r;
	LOCKED(s);

	r = sq_fn_id(s, tenant_id, fn, &fid);
	return r < 0 ? r : alias_load(s, fid, alias, out);
}

static int
alias_put_locked(struct store *s, int64_t tenant_id, const char *fn, const char *alias,
		 int64_t version, const char *weights, int64_t *missing, json_t **out)
{
	json_t *w = json_loads(weights, 0, NULL), *v;
	int64_t fid, cur, dep;
	const char *k;
	bool created;
	int r;

	if (!json_is_object(w)) {
		json_decref(w);
		return -EINVAL;
	}
	r = sq_fn_id(s, tenant_id, fn, &fid);
	if (r < 0)
		goto out;
	*missing = version;
	r = sq_version_exists(s, fid, version);
	json_object_foreach (w, k, v) {
		uint64_t n;

		if (r < 0)
			break;
		if (parse_u64(k, 1, INT64_MAX, &n) < 0) {
			r = -EINVAL;
			break;
		}
		*missing = (int64_t)n;
		r = sq_version_exists(s, fid, (int64_t)n);
	}
	if (r < 0)
		goto out;
	*missing = 0;
	r = sq_deploy_active(s, fid, alias, &dep);
	if (r < 0)
		goto out;
	if (r > 0) {
		r = -EINPROGRESS;
		goto out;
	}
	r = sq_alias_row(s, fid, alias, &cur, NULL, NULL, 0);
	if (r < 0 && r != -ESRCH)
		goto out;
	created = r == -ESRCH;
	r = sq_alias_write(s, fid, alias, version, weights);
	if (r < 0)
		goto out;
	r = alias_load(s, fid, alias, out);
	if (r == 0)
		r = created;
out:
	json_decref(w);
	return r;
}

int
store_alias_put(struct store *s, int64_t tenant_id, const char *fn, const char *alias,
		int64_t version, const char *weights, int64_t *missing, json_t **out)
{
	int r;
	BUMPS_GENERATION(s);
	LOCKED(s);

	*out = NULL;
	*missing = 0;
	r = sq_exec(s, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	return sq_end(s, alias_put_locked(s, tenant_id, fn, alias, version, weights, missing, out),
		      out);
}

static int
alias_delete_locked(struct store *s, int64_t tenant_id, const char *fn, const char *alias)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int64_t fid, dep = 0;
	int r;

	r = sq_fn_id(s, tenant_id, fn, &fid);
	if (r < 0)
		return r;
	r = sq_deploy_active(s, fid, alias, &dep);
	if (r != 0)
		return r < 0 ? r : -EINPROGRESS;
	r = sq_prep(s, "DELETE FROM aliases WHERE function_id = ? AND name = ?", &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, fid);
	sqlite3_bind_text(st, 2, alias, -1, SQLITE_STATIC);
	r = sq_done(s, st);
	if (r < 0)
		return r;
	return sqlite3_changes(s->db) ? 0 : -ESRCH;
}

int
store_alias_delete(struct store *s, int64_t tenant_id, const char *fn, const char *alias)
{
	int r;
	BUMPS_GENERATION(s);
	LOCKED(s);

	r = sq_exec(s, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	return sq_end(s, alias_delete_locked(s, tenant_id, fn, alias), NULL);
}

static int
alias_rollback_locked(struct store *s, int64_t tenant_id, const char *fn, const char *alias,
		      const char *who, json_t **out)
{
	int64_t fid, dep = 0, cur = 0, prev = 0;
	char reason[160];
	int r;

	r = sq_fn_id(s, tenant_id, fn, &fid);
	if (r < 0)
		return r;
	r = sq_deploy_active(s, fid, alias, &dep);
	if (r < 0)
		return r;
	if (r > 0) {
		/* Rolling back during a deployment stops it: its alias goes
		 * back to the version it started from. */
		(void)str_printf(reason, sizeof(reason), "rolled back by %s", who);
		r = sq_deploy_end(s, fid, dep, "aborted", reason, NULL);
	} else {
		r = sq_alias_row(s, fid, alias, &cur, &prev, NULL, 0);
		if (r < 0)
			return r;
		if (!prev)
			return -ENODATA;
		r = sq_alias_write(s, fid, alias, prev, "{}");
	}
	if (r < 0)
		return r;
	return alias_load(s, fid, alias, out);
}

int
store_alias_rollback(struct store *s, int64_t tenant_id, const char *fn, const char *alias,
		     const char *who, json_t **out)
{
	int r;
	BUMPS_GENERATION(s);
	LOCKED(s);

	*out = NULL;
	r = sq_exec(s, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	return sq_end(s, alias_rollback_locked(s, tenant_id, fn, alias, who, out), out);
}

int
store_alias_list(struct store *s, int64_t tenant_id, const char *fn, json_t **out)
{
	json_t *a = NULL;
	int64_t fid;
	int r;
	LOCKED(s);

	r = sq_fn_id(s, tenant_id, fn, &fid);
	if (r < 0)
		return r;
	r = sq_aliases_json(s, fid, &a);
	if (r < 0)
		return r;
	*out = json_pack("{s:s, s:o}", "function", fn, "aliases", a);
	return 0;
}

int
store_route_resolve(struct store *s, int64_t tenant_id, const char *fn, const char *alias,
		    int64_t version, int64_t (*pick)(const char *weights, int64_t main, void *ud),
		    void *ud, struct store_route *out)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *al = NULL, *st = NULL;
	int64_t fid;
	int r, rc;

	memset(out, 0, sizeof(*out));
	r = sq_fn_id(s, tenant_id, fn, &fid);
	if (r < 0)
		return r;
	if (alias) {
		r = sq_prep(s,
			    "SELECT version, weights FROM aliases WHERE function_id = ? "
			    "AND name = ?",
			    &al);
		if (r < 0)
			return r;
		sqlite3_bind_int64(al, 1, fid);
		sqlite3_bind_text(al, 2, alias, -1, SQLITE_STATIC);
		rc = sqlite3_step(al);
		if (rc == SQLITE_DONE)
			return -ENOENT;
		if (rc != SQLITE_ROW)
			return sq_err(s, rc);
		version = sqlite3_column_int64(al, 0);
		if (pick && strcmp(sq_text(al, 1), "{}") != 0)
			version = pick(sq_text(al, 1), version, ud);
	}
	r = sq_prep(s,
		    "SELECT code_sha256, config FROM versions WHERE function_id = ? "
		    "AND number = ?",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, fid);
	sqlite3_bind_int64(st, 2, version);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return sq_err(s, rc);
	out->version = version;
	(void)str_copy(out->code_sha256, sizeof(out->code_sha256), sq_text(st, 0));
	out->config = json_loads(sq_text(st, 1), 0, NULL);
	return out->config ? 0 : -EIO;
}

int
store_warm_targets(struct store *s, int (*cb)(const struct store_warm *w, void *ud), void *ud)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r, rc;

	r = sq_prep(s,
		    "WITH targets(function_id, number) AS ("
		    "  SELECT function_id, version FROM aliases"
		    "  UNION SELECT a.function_id, CAST(w.key AS INTEGER)"
		    "  FROM aliases a, json_each(a.weights) w) "
		    "SELECT t.name, t.uid, t.max_instances, t.allow_host_network, f.name, v.number,"
		    "  v.code_sha256, v.config "
		    "FROM targets x JOIN versions v ON v.function_id = x.function_id AND"
		    "  v.number = x.number JOIN functions f ON f.id = x.function_id"
		    "  JOIN tenants t ON t.id = f.tenant_id "
		    "WHERE json_extract(v.config, '$.min_instances') > 0",
		    &st);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *cfg = json_loads(sq_text(st, 7), 0, NULL);
		struct store_warm w = { .tenant = sq_text(st, 0),
					.uid = (uint32_t)sqlite3_column_int64(st, 1),
					.tenant_max_instances = sqlite3_column_int64(st, 2),
					.allow_host_network = sqlite3_column_int64(st, 3) != 0,
					.function = sq_text(st, 4),
					.version = sqlite3_column_int64(st, 5),
					.code_sha256 = sq_text(st, 6),
					.config = cfg };

		r = cfg ? cb(&w, ud) : 0;
		json_decref(cfg);
		if (r < 0)
			return r;
	}
	return rc == SQLITE_DONE ? 0 : sq_err(s, rc);
}
