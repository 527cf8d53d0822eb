/*
 * store.c - the SQLite store behind store.h.
 *
 * One connection, serialised by a mutex: the gateway's HTTP threads call in
 * concurrently, and multi-statement operations (a deploy) run in one
 * IMMEDIATE transaction so a crash at any point leaves either the old or the
 * new state.  Migrations are the numbered files of schema/, embedded at build
 * time; PRAGMA user_version holds how many have been applied.
 */
#include "store_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

extern const char *const store_migrations[];
extern const size_t store_migrations_count;

/* Convert an SQLite result code to -errno at the module edge. */
int
sq_err(struct store *s, int rc)
{
	(void)str_copy(s->err, sizeof(s->err), sqlite3_errmsg(s->db));
	switch (rc & 0xff) {
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
		return -EROFS;
	default:
		return -EIO;
	}
}

int
sq_prep(struct store *s, const char *sql, sqlite3_stmt **st)
{
	int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);

	atomic_fetch_add(&s->queries, 1);
	return rc == SQLITE_OK ? 0 : sq_err(s, rc);
}

int
sq_exec(struct store *s, const char *sql)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : sq_err(s, rc);
}

/* Run a prepared statement that returns no rows. */
int
sq_done(struct store *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	return rc == SQLITE_DONE ? 0 : sq_err(s, rc);
}

int
sq_end(struct store *s, int r, json_t **out)
{
	if (r >= 0) {
		int c = sq_exec(s, "COMMIT");

		if (c >= 0)
			return r;
		r = c;
	}
	(void)sq_exec(s, "ROLLBACK");
	if (out) {
		json_decref(*out);
		*out = NULL;
	}
	return r;
}

uint64_t
store_generation(struct store *s)
{
	return atomic_load(&s->generation);
}

uint64_t
store_queries(struct store *s)
{
	return atomic_load(&s->queries);
}

int
store_schema_version(void)
{
	return (int)store_migrations_count;
}

const char *
store_errmsg(struct store *s)
{
	return s->err;
}

const char *
sq_uuid(sqlite3_stmt *st, int i, char buf[37])
{
	if (sqlite3_column_type(st, i) == SQLITE_BLOB && sqlite3_column_bytes(st, i) == 16)
		uuid_format(sqlite3_column_blob(st, i), buf);
	else
		(void)str_copy(buf, 37, sq_text(st, i));
	return buf;
}

/* SQL uuid_blob(text): its 16 bytes, or the value unchanged if it is not
 * a UUID (migration 005 converts ids with it and must lose none). */
static void
sql_uuid_blob(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const unsigned char *t = sqlite3_value_text(argv[0]);
	uint8_t b[16];

	(void)argc;
	if (sqlite3_value_type(argv[0]) == SQLITE_TEXT && t && uuid_parse((const char *)t, b) == 0)
		sqlite3_result_blob(ctx, b, 16, SQLITE_TRANSIENT);
	else
		sqlite3_result_value(ctx, argv[0]);
}

static int
migrate(struct store *s, char *diag, size_t n)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int version, r;

	r = sq_prep(s, "PRAGMA user_version", &st);
	if (r < 0)
		return r;
	if (sqlite3_step(st) != SQLITE_ROW)
		return sq_err(s, SQLITE_ERROR);
	version = sqlite3_column_int(st, 0);
	/* Done with it: a statement still open would keep a migration from
	 * dropping a table ("database table is locked"). */
	sqlite3_finalize(st);
	st = NULL;
	if (version > (int)store_migrations_count) {
		(void)str_printf(
			diag, n,
			"database schema version %d is newer than this faasd supports (%zu); "
			"run the faasd release that wrote it, or a newer one",
			version, store_migrations_count);
		return -EPROTO;
	}
	for (size_t i = (size_t)version; i < store_migrations_count; i++) {
		char sql[64];

		r = sq_exec(s, "BEGIN IMMEDIATE");
		if (r < 0)
			return r;
		r = sq_exec(s, store_migrations[i]);
		(void)str_printf(sql, sizeof(sql), "PRAGMA user_version = %zu", i + 1);
		if (r >= 0)
			r = sq_exec(s, sql);
		if (r >= 0)
			r = sq_exec(s, "COMMIT");
		if (r < 0) {
			(void)str_printf(diag, n, "migration %zu failed: %s", i + 1, s->err);
			(void)sq_exec(s, "ROLLBACK");
			return r;
		}
	}
	return 0;
}

int
store_open(const char *path, struct store **out, char *diag, size_t n)
{
	struct store *s = calloc(1, sizeof(*s));
	int rc, r;

	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	rc = sqlite3_open_v2(path, &s->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		(void)str_printf(diag, n, "cannot open database %s: %s", path,
				 s->db ? sqlite3_errmsg(s->db) : "out of memory");
		store_close(s);
		return -EIO;
	}
	sqlite3_busy_timeout(s->db, 5000);
	sqlite3_create_function(s->db, "uuid_blob", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
				sql_uuid_blob, NULL, NULL);
	r = sq_exec(s, "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; "
		       "PRAGMA synchronous = NORMAL");
	if (r >= 0)
		r = migrate(s, diag, n);
	else
		(void)str_printf(diag, n, "cannot configure database %s: %s", path, s->err);
	if (r < 0) {
		store_close(s);
		return r;
	}
	*out = s;
	return 0;
}

void
store_close(struct store *s)
{
	if (!s)
		return;
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

void
store_time_format(int64_t ms, char *buf, size_t n)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	if (strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0 && n)
		buf[0] = 0;
}

json_t *
sq_time(int64_t ms)
{
	char buf[32];

	store_time_format(ms, buf, sizeof(buf));
	return json_string(buf);
}

const char *
sq_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t ? (const char *)t : "";
}

/* ---- tenants ---- */

#define TENANT_COLS                                                    \
	"id, name, uid, max_functions, max_instances, max_memory_mb, " \
	"allow_host_network, created_at"

static void
tenant_row(sqlite3_stmt *st, struct store_tenant *t)
{
	t->id = sqlite3_column_int64(st, 0);
	(void)str_copy(t->name, sizeof(t->name), sq_text(st, 1));
	t->uid = (uint32_t)sqlite3_column_int64(st, 2);
	t->max_functions = sqlite3_column_int64(st, 3);
	t->max_instances = sqlite3_column_int64(st, 4);
	t->max_memory_mb = sqlite3_column_int64(st, 5);
	t->allow_host_network = sqlite3_column_int(st, 6) != 0;
	t->created_at = sqlite3_column_int64(st, 7);
}

json_t *
store_tenant_json(const struct store_tenant *t)
{
	return json_pack("{s:s, s:I, s:{s:I, s:I, s:I}, s:b, s:o}", "name", t->name, "uid",
			 (json_int_t)t->uid, "quotas", "max_functions",
			 (json_int_t)t->max_functions, "max_instances",
			 (json_int_t)t->max_instances, "max_memory_mb",
			 (json_int_t)t->max_memory_mb, "allow_host_network", t->allow_host_network,
			 "created_at", sq_time(t->created_at));
}

int
store_tenant_create(struct store *s, struct store_tenant *t, uint64_t uid_base, uint64_t uid_count)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL, *up = NULL;
	int64_t id;
	int r;
	BUMPS_GENERATION(s);

	r = sq_exec(s, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	/* Insert with a placeholder uid (negative ids never collide), then
	 * derive the real one from the never-reused AUTOINCREMENT id. */
	r = sq_prep(s,
		    "INSERT INTO tenants (name, uid, max_functions, max_instances, "
		    "max_memory_mb, allow_host_network, created_at) "
		    "VALUES (?, 1 + (SELECT COALESCE(MAX(uid), 0) FROM tenants), ?, ?, ?, ?, ?)",
		    &st);
	if (r < 0)
		goto fail;
	t->created_at = (int64_t)now_wall_ms();
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, t->max_functions);
	sqlite3_bind_int64(st, 3, t->max_instances);
	sqlite3_bind_int64(st, 4, t->max_memory_mb);
	sqlite3_bind_int(st, 5, t->allow_host_network);
	sqlite3_bind_int64(st, 6, t->created_at);
	r = sq_done(s, st);
	if (r < 0)
		goto fail;
	id = sqlite3_last_insert_rowid(s->db);
	if ((uint64_t)id > uid_count) {
		r = -EDQUOT;
		goto fail;
	}
	t->id = id;
	t->uid = (uint32_t)(uid_base + (uint64_t)id - 1);
	r = sq_prep(s, "UPDATE tenants SET uid = ? WHERE id = ?", &up);
	if (r < 0)
		goto fail;
	sqlite3_bind_int64(up, 1, t->uid);
	sqlite3_bind_int64(up, 2, id);
	r = sq_done(s, up);
	if (r < 0)
		goto fail;
	return sq_exec(s, "COMMIT");
fail:
	(void)sq_exec(s, "ROLLBACK");
	return r;
}

int
store_tenant_get(struct store *s, const char *name, struct store_tenant *out)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r, rc;

	r = sq_prep(s, "SELECT " TENANT_COLS " FROM tenants WHERE name = ?", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return sq_err(s, rc);
	tenant_row(st, out);
	return 0;
}

int
store_tenant_delete(struct store *s, int64_t id)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;
	BUMPS_GENERATION(s);

	r = sq_prep(s, "DELETE FROM tenants WHERE id = ?", &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	r = sq_done(s, st);
	if (r < 0)
		return r;
	return sqlite3_changes(s->db) ? 0 : -ENOENT;
}

int
store_tenant_list(struct store *s, json_t **out)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	json_t *arr = json_array();
	int r, rc;

	r = sq_prep(s, "SELECT " TENANT_COLS " FROM tenants ORDER BY name", &st);
	if (r < 0) {
		json_decref(arr);
		return r;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_tenant t;

		tenant_row(st, &t);
		json_array_append_new(arr, store_tenant_json(&t));
	}
	if (rc != SQLITE_DONE) {
		json_decref(arr);
		return sq_err(s, rc);
	}
	*out = json_pack("{s:o}", "tenants", arr);
	return 0;
}

/* ---- keys ---- */

int
store_key_insert(struct store *s, struct store_key *k)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	r = sq_prep(s,
		    "INSERT INTO keys (id, tenant_id, scope, hash, name, created_at) "
		    "VALUES (?, ?, ?, ?, ?, ?)",
		    &st);
	if (r < 0)
		return r;
	k->created_at = (int64_t)now_wall_ms();
	sqlite3_bind_text(st, 1, k->id, -1, SQLITE_STATIC);
	if (k->tenant_id)
		sqlite3_bind_int64(st, 2, k->tenant_id);
	else
		sqlite3_bind_null(st, 2);
	sqlite3_bind_text(st, 3, k->scope, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, k->hash, sizeof(k->hash), SQLITE_STATIC);
	sqlite3_bind_text(st, 5, k->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, k->created_at);
	return sq_done(s, st);
}

int
store_key_revoke(struct store *s, int64_t tenant_id, const char *id)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	r = sq_prep(s,
		    "UPDATE keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL "
		    "AND tenant_id IS ?",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, (int64_t)now_wall_ms());
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	if (tenant_id)
		sqlite3_bind_int64(st, 3, tenant_id);
	else
		sqlite3_bind_null(st, 3);
	r = sq_done(s, st);
	if (r < 0)
		return r;
	return sqlite3_changes(s->db) ? 0 : -ENOENT;
}

int
store_key_foreach_active(struct store *s, int (*cb)(const struct store_key *k, void *ud), void *ud)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r, rc;

	r = sq_prep(s,
		    "SELECT k.id, COALESCE(k.tenant_id, 0), COALESCE(t.name, ''), k.scope, "
		    "k.hash, k.name, k.created_at FROM keys k "
		    "LEFT JOIN tenants t ON t.id = k.tenant_id WHERE k.revoked_at IS NULL",
		    &st);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_key k = { 0 };

		(void)str_copy(k.id, sizeof(k.id), sq_text(st, 0));
		k.tenant_id = sqlite3_column_int64(st, 1);
		(void)str_copy(k.tenant, sizeof(k.tenant), sq_text(st, 2));
		(void)str_copy(k.scope, sizeof(k.scope), sq_text(st, 3));
		if (sqlite3_column_bytes(st, 4) != sizeof(k.hash))
			continue;
		memcpy(k.hash, sqlite3_column_blob(st, 4), sizeof(k.hash));
		(void)str_copy(k.name, sizeof(k.name), sq_text(st, 5));
		k.created_at = sqlite3_column_int64(st, 6);
		r = cb(&k, ud);
		if (r < 0)
			return r;
	}
	return rc == SQLITE_DONE ? 0 : sq_err(s, rc);
}

int
store_key_list(struct store *s, int64_t tenant_id, json_t **out)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	json_t *arr = json_array();
	int r, rc;

	r = sq_prep(s,
		    "SELECT id, scope, name, created_at, revoked_at FROM keys "
		    "WHERE tenant_id = ? ORDER BY created_at, id",
		    &st);
	if (r < 0) {
		json_decref(arr);
		return r;
	}
	sqlite3_bind_int64(st, 1, tenant_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *k = json_pack("{s:s, s:s, s:s, s:o}", "id", sq_text(st, 0), "scope",
				      sq_text(st, 1), "name", sq_text(st, 2), "created_at",
				      sq_time(sqlite3_column_int64(st, 3)));

		json_object_set_new(k, "revoked_at",
				    sqlite3_column_type(st, 4) == SQLITE_NULL
					    ? json_null()
					    : sq_time(sqlite3_column_int64(st, 4)));
		json_array_append_new(arr, k);
	}
	if (rc != SQLITE_DONE) {
		json_decref(arr);
		return sq_err(s, rc);
	}
	*out = json_pack("{s:o}", "keys", arr);
	return 0;
}

/* ---- code ---- */

int
store_code_exists(struct store *s, int64_t tenant_id, const char *sha256)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r, rc;

	r = sq_prep(s, "SELECT 1 FROM code WHERE tenant_id = ? AND sha256 = ?", &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, tenant_id);
	sqlite3_bind_text(st, 2, sha256, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : sq_err(s, rc);
}

int
store_code_insert(struct store *s, int64_t tenant_id, const char *sha256, uint64_t size,
		  uint64_t unpacked, uint64_t files)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	r = sq_prep(s,
		    "INSERT OR IGNORE INTO code (tenant_id, sha256, size, unpacked_size, "
		    "files, created_at) VALUES (?, ?, ?, ?, ?, ?)",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, tenant_id);
	sqlite3_bind_text(st, 2, sha256, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)size);
	sqlite3_bind_int64(st, 4, (int64_t)unpacked);
	sqlite3_bind_int64(st, 5, (int64_t)files);
	sqlite3_bind_int64(st, 6, (int64_t)now_wall_ms());
	return sq_done(s, st);
}

/* ---- functions and versions ---- */

int
sq_fn_id(struct store *s, int64_t tenant_id, const char *fn, int64_t *id)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r, rc;

	r = sq_prep(s, "SELECT id FROM functions WHERE tenant_id = ? AND name = ?", &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, tenant_id);
	sqlite3_bind_text(st, 2, fn, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return sq_err(s, rc);
	*id = sqlite3_column_int64(st, 0);
	return 0;
}

static json_t *
version_json(sqlite3_stmt *st)
{
	/* columns: number, code_sha256, config, created_at */
	json_t *cfg = json_loads(sq_text(st, 2), 0, NULL);
	char code[80];

	(void)str_printf(code, sizeof(code), "sha256:%s", sq_text(st, 1));
	return json_pack("{s:I, s:s, s:o, s:o}", "number", (json_int_t)sqlite3_column_int64(st, 0),
			 "code", code, "config", cfg ? cfg : json_object(), "created_at",
			 sq_time(sqlite3_column_int64(st, 3)));
}

static int
version_load(struct store *s, int64_t fid, int64_t number, json_t **out)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r, rc;

	r = sq_prep(s,
		    "SELECT number, code_sha256, config, created_at FROM versions "
		    "WHERE function_id = ? AND number = ?",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, fid);
	sqlite3_bind_int64(st, 2, number);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return sq_err(s, rc);
	*out = version_json(st);
	return 0;
}

static int
fn_put_locked(struct store *s, int64_t tenant_id, const char *fn, const char *code_sha256,
	      const char *config_json, const char *alias, int64_t max_functions, json_t **out)
{
	_cleanup_stmt_ sqlite3_stmt *cnt = NULL, *ins = NULL, *latest = NULL, *ctr = NULL,
				    *vins = NULL, *touch = NULL;
	int64_t fid = 0, number = 0, now = (int64_t)now_wall_ms();
	bool created = false;
	json_t *ver = NULL;
	int r, rc;

	r = sq_fn_id(s, tenant_id, fn, &fid);
	if (r == -ENOENT) {
		r = sq_prep(s, "SELECT COUNT(*) FROM functions WHERE tenant_id = ?", &cnt);
		if (r < 0)
			return r;
		sqlite3_bind_int64(cnt, 1, tenant_id);
		if (sqlite3_step(cnt) != SQLITE_ROW)
			return sq_err(s, SQLITE_ERROR);
		if (sqlite3_column_int64(cnt, 0) >= max_functions)
			return -EDQUOT;
		r = sq_prep(s,
			    "INSERT INTO functions (tenant_id, name, created_at, updated_at) "
			    "VALUES (?, ?, ?, ?)",
			    &ins);
		if (r < 0)
			return r;
		sqlite3_bind_int64(ins, 1, tenant_id);
		sqlite3_bind_text(ins, 2, fn, -1, SQLITE_STATIC);
		sqlite3_bind_int64(ins, 3, now);
		sqlite3_bind_int64(ins, 4, now);
		r = sq_done(s, ins);
		if (r < 0)
			return r;
		fid = sqlite3_last_insert_rowid(s->db);
	} else if (r < 0)
		return r;

	r = sq_prep(s,
		    "SELECT number FROM versions WHERE function_id = ? AND code_sha256 = ? "
		    "AND config = ? AND number = (SELECT MAX(number) FROM versions "
		    "WHERE function_id = ?1)",
		    &latest);
	if (r < 0)
		return r;
	sqlite3_bind_int64(latest, 1, fid);
	sqlite3_bind_text(latest, 2, code_sha256, -1, SQLITE_STATIC);
	sqlite3_bind_text(latest, 3, config_json, -1, SQLITE_STATIC);
	rc = sqlite3_step(latest);
	if (rc == SQLITE_ROW)
		number = sqlite3_column_int64(latest, 0);
	else if (rc != SQLITE_DONE)
		return sq_err(s, rc);

	if (!number) {
		r = sq_prep(s,
			    "INSERT INTO version_counters (tenant_id, function, last) "
			    "VALUES (?, ?, 1) ON CONFLICT (tenant_id, function) "
			    "DO UPDATE SET last = last + 1 RETURNING last",
			    &ctr);
		if (r < 0)
			return r;
		sqlite3_bind_int64(ctr, 1, tenant_id);
		sqlite3_bind_text(ctr, 2, fn, -1, SQLITE_STATIC);
		rc = sqlite3_step(ctr);
		if (rc != SQLITE_ROW)
			return sq_err(s, rc);
		number = sqlite3_column_int64(ctr, 0);
		sqlite3_reset(ctr);
		r = sq_prep(s,
			    "INSERT INTO versions (function_id, number, code_sha256, config, "
			    "created_at) VALUES (?, ?, ?, ?, ?)",
			    &vins);
		if (r < 0)
			return r;
		sqlite3_bind_int64(vins, 1, fid);
		sqlite3_bind_int64(vins, 2, number);
		sqlite3_bind_text(vins, 3, code_sha256, -1, SQLITE_STATIC);
		sqlite3_bind_text(vins, 4, config_json, -1, SQLITE_STATIC);
		sqlite3_bind_int64(vins, 5, now);
		r = sq_done(s, vins);
		if (r < 0)
			return r;
		r = sq_prep(s, "UPDATE functions SET updated_at = ? WHERE id = ?", &touch);
		if (r < 0)
			return r;
		sqlite3_bind_int64(touch, 1, now);
		sqlite3_bind_int64(touch, 2, fid);
		r = sq_done(s, touch);
		if (r < 0)
			return r;
		created = true;
	}
	if (alias) {
		r = sq_alias_upsert(s, fid, alias, number);
		if (r < 0)
			return r;
	}
	r = version_load(s, fid, number, &ver);
	if (r < 0)
		return r;
	*out = json_pack("{s:s, s:o, s:b, s:s?}", "function", fn, "version", ver, "created",
			 created, "alias", alias);
	return 0;
}

int
store_fn_put(struct store *s, int64_t tenant_id, const char *fn, const char *code_sha256,
	     const char *config_json, const char *alias, int64_t max_functions, json_t **out)
{
	int r;
	BUMPS_GENERATION(s);
	LOCKED(s);

	*out = NULL;
	r = sq_exec(s, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	return sq_end(s,
		      fn_put_locked(s, tenant_id, fn, code_sha256, config_json, alias,
				    max_functions, out),
		      out);
}

static json_t *
fn_summary(struct store *s, int64_t fid, const char *tenant_unused, sqlite3_stmt *st)
{
	/* st columns: id, name, created_at, updated_at, latest */
	json_t *aliases = NULL, *o;

	(void)tenant_unused;
	if (sq_aliases_json(s, fid, &aliases) < 0)
		aliases = json_object();
	o = json_pack("{s:s, s:o, s:o, s:o}", "name", sq_text(st, 1), "created_at",
		      sq_time(sqlite3_column_int64(st, 2)), "updated_at",
		      sq_time(sqlite3_column_int64(st, 3)), "aliases", aliases);
	json_object_set_new(o, "latest_version",
			    sqlite3_column_type(st, 4) == SQLITE_NULL
				    ? json_null()
				    : json_integer(sqlite3_column_int64(st, 4)));
	return o;
}

#define FN_COLS                                      \
	"f.id, f.name, f.created_at, f.updated_at, " \
	"(SELECT MAX(number) FROM versions v WHERE v.function_id = f.id)"

int
store_fn_get(struct store *s, int64_t tenant_id, const char *fn, json_t **out)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	json_t *o, *ver = NULL;
	int r, rc;

	r = sq_prep(s, "SELECT " FN_COLS " FROM functions f WHERE tenant_id = ? AND name = ?", &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, tenant_id);
	sqlite3_bind_text(st, 2, fn, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return sq_err(s, rc);
	o = fn_summary(s, sqlite3_column_int64(st, 0), NULL, st);
	if (sqlite3_column_type(st, 4) != SQLITE_NULL &&
	    version_load(s, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 4), &ver) == 0)
		json_object_set_new(o, "latest", ver);
	*out = o;
	return 0;
}

int
store_fn_list(struct store *s, int64_t tenant_id, json_t **out)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	json_t *arr = json_array();
	int r, rc;

	r = sq_prep(s, "SELECT " FN_COLS " FROM functions f WHERE tenant_id = ? ORDER BY name",
		    &st);
	if (r < 0) {
		json_decref(arr);
		return r;
	}
	sqlite3_bind_int64(st, 1, tenant_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(arr, fn_summary(s, sqlite3_column_int64(st, 0), NULL, st));
	if (rc != SQLITE_DONE) {
		json_decref(arr);
		return sq_err(s, rc);
	}
	*out = json_pack("{s:o}", "functions", arr);
	return 0;
}

int
store_fn_delete(struct store *s, int64_t tenant_id, const char *fn)
{
	LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;
	BUMPS_GENERATION(s);

	r = sq_prep(s, "DELETE FROM functions WHERE tenant_id = ? AND name = ?", &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, tenant_id);
	sqlite3_bind_text(st, 2, fn, -1, SQLITE_STATIC);
	r = sq_done(s, st);
	if (r < 0)
		return r;
	return sqlite3_changes(s->db) ? 0 : -ENOENT;
}

int
store_version_list(struct store *s, int64_t tenant_id, const char *fn, json_t **out)
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
		    "SELECT number, code_sha256, config, created_at FROM versions "
		    "WHERE function_id = ? ORDER BY number",
		    &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, fid);
	arr = json_array();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(arr, version_json(st));
	if (rc != SQLITE_DONE) {
		json_decref(arr);
		return sq_err(s, rc);
	}
	*out = json_pack("{s:s, s:o}", "function", fn, "versions", arr);
	return 0;
}

int
store_version_get(struct store *s, int64_t tenant_id, const char *fn, int64_t number, json_t **out)
{
	int64_t fid;
	int r;
	LOCKED(s);

	r = sq_fn_id(s, tenant_id, fn, &fid);
	if (r < 0)
		return r;
	return version_load(s, fid, number, out);
}
