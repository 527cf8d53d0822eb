/*
 * store_int.h - what the files of store/ share (store.c: tenants, keys,
 * code, functions and versions; alias.c: aliases and routing; deploy.c:
 * deployments).  Not for callers of the store, who see only store.h.
 */
#ifndef FAASD_STORE_INT_H
#define FAASD_STORE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>

#include "store.h"

struct store {
	sqlite3 *db;
	pthread_mutex_t lock;
	char err[256];
	_Atomic uint64_t generation; /* bumped by changes to what routes read */
	_Atomic uint64_t queries;    /* statements prepared, for tests */
	void (*pause)(void);         /* store_records_pause */
	unsigned pause_every;
};

static inline void
finalizep(sqlite3_stmt **st)
{
	if (*st)
		sqlite3_finalize(*st);
}
#define _cleanup_stmt_ __attribute__((cleanup(finalizep)))

static inline void
unlockp(pthread_mutex_t **m)
{
	if (*m)
		pthread_mutex_unlock(*m);
}
/*
 * Hold s->lock until the function returns.  INVARIANT: LOCKED comes before
 * the function's _cleanup_stmt_ declarations: cleanups run in reverse
 * order, so its statements are finalized before the unlock.  The
 * connection is opened SQLITE_OPEN_NOMUTEX; a statement finalized after the
 * unlock raced another thread's use of it (garbled rows and failed reads
 * once several gateway threads polled the store every second).
 */
#define LOCKED(s)                                                            \
	__attribute__((cleanup(unlockp))) pthread_mutex_t *_lk = &(s)->lock; \
	pthread_mutex_lock(_lk)

static inline void
bumpp(struct store **s)
{
	atomic_fetch_add(&(*s)->generation, 1);
}
/* In a function that changes tenants, functions, versions or aliases,
 * before LOCKED: the generation moves after the lock is released, so a
 * reader that saw the old generation refetches. */
#define BUMPS_GENERATION(s) __attribute__((cleanup(bumpp), unused)) struct store *_bump = (s)

/* SQLite result code -> -errno (the message kept for store_errmsg). */
int sq_err(struct store *s, int rc);
/* Prepare sql (counted in store_queries).  0 or -errno. */
int sq_prep(struct store *s, const char *sql, sqlite3_stmt **st);
/* Run SQL text without rows.  0 or -errno. */
int sq_exec(struct store *s, const char *sql);
/* Step a prepared statement that returns no rows.  0 or -errno. */
int sq_done(struct store *s, sqlite3_stmt *st);
/* End the transaction a caller began with BEGIN IMMEDIATE: COMMIT when
 * r >= 0, ROLLBACK otherwise (also when COMMIT fails), and then drop the
 * result *out (when out is not NULL) that the transaction's work made.
 * Returns r, or COMMIT's error. */
int sq_end(struct store *s, int r, json_t **out);
/* Column text, "" for NULL. */
const char *sq_text(sqlite3_stmt *st, int i);
/* Invocation ids are stored as the UUID's 16 bytes (schema 005; util.h's
 * uuid_parse makes them).  sq_uuid: column i as the UUID's text (lower
 * case) in buf; a column that holds text (not 16 bytes) is given as is. */
const char *sq_uuid(sqlite3_stmt *st, int i, char buf[37]);
/* A Unix-ms time as an ISO 8601 JSON string. */
json_t *sq_time(int64_t ms);
/* The id of function fn of a tenant: 0 or -ENOENT. */
int sq_fn_id(struct store *s, int64_t tenant_id, const char *fn, int64_t *id);
/* alias.c: the deployment moving alias: 1 with *id, 0 none, -errno. */
int sq_deploy_active(struct store *s, int64_t fid, const char *alias, int64_t *id);
/* alias.c: alias's version, previous version (0: none) and weights text
 * (either may be NULL); -ESRCH when there is no such alias. */
int sq_alias_row(struct store *s, int64_t fid, const char *alias, int64_t *version,
		 int64_t *previous, char *weights, size_t n);
/* alias.c: write alias = (version, weights JSON text), creating it if
 * needed; the version it leaves becomes its previous_version.  In a
 * transaction of the caller. */
int sq_alias_write(struct store *s, int64_t fid, const char *alias, int64_t version,
		   const char *weights);
/* alias.c: sq_alias_write(version, no weights) unless a deployment moves
 * the alias (-EINPROGRESS).  For a deploy's "point alias at it". */
int sq_alias_upsert(struct store *s, int64_t fid, const char *alias, int64_t version);
/* alias.c: {"name": {"version", "weights", "previous_version",
 * "deployment", "updated_at"}} of a function. */
int sq_aliases_json(struct store *s, int64_t fid, json_t **out);
/* 0 when version number of function fid exists, -ENXIO when not. */
int sq_version_exists(struct store *s, int64_t fid, int64_t number);
/* deploy.c: end in-progress deployment id of function fid as state
 * ("rolled_back" or "aborted", with reason and figures JSON text or NULL):
 * its alias goes back to its from_version alone.  -ESRCH when there is no
 * such deployment, -EALREADY when it already ended.  In a transaction of
 * the caller. */
int sq_deploy_end(struct store *s, int64_t fid, int64_t id, const char *state, const char *reason,
		  const char *figures);

#endif
