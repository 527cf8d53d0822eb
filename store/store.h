/*
 * store.h - faasd's SQLite store: tenants, keys, code, functions, versions,
 * aliases.  Owned by the gateway process (the parent opens it once at start
 * to migrate and to create the first admin key).
 *
 * Every function returns >= 0 or -errno: -ENOENT (no such row), -EEXIST
 * (unique clash), -EDQUOT (quota), -EIO (SQLite failure; the SQLite message
 * is kept for store_errmsg()).  Calls are serialised by a mutex inside the
 * store, so any gateway thread may call them.  JSON results are new
 * references the caller decrefs.  Never logs.
 */
#ifndef FAASD_STORE_H
#define FAASD_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

/*
 * store_open - open (creating if needed) the database at path in WAL mode
 * with foreign keys on, and apply pending migrations.  A database whose
 * schema is newer than this binary is refused with -EPROTO and a diag that
 * says so.  On success *out is the store (store_close frees it).
 */
int store_open(const char *path, struct store **out, char *diag, size_t n);
void store_close(struct store *s);

/* Number of migrations this binary knows (the schema version it writes). */
int store_schema_version(void);

/* Last SQLite error text, for the caller's log (never contains secrets). */
const char *store_errmsg(struct store *s);

struct store_tenant {
	int64_t id;
	char name[64];
	uint32_t uid;
	int64_t max_functions;
	int64_t max_instances;
	int64_t max_memory_mb;
	bool allow_host_network;
	int64_t created_at;
};

/* Insert t (name and quotas set); fills id, uid, created_at.  The uid is
 * uid_base + id - 1; -EDQUOT when that leaves [uid_base, uid_base+count). */
int store_tenant_create(struct store *s, struct store_tenant *t, uint64_t uid_base,
			uint64_t uid_count);
int store_tenant_get(struct store *s, const char *name, struct store_tenant *out);
int store_tenant_delete(struct store *s, int64_t id);
/* {"tenants": [...]} */
int store_tenant_list(struct store *s, json_t **out);
json_t *store_tenant_json(const struct store_tenant *t);

struct store_key {
	char id[32];
	int64_t tenant_id; /* 0 for admin keys */
	char tenant[64];   /* "" for admin keys */
	char scope[16];
	uint8_t hash[32];
	char name[64];
	int64_t created_at;
};

int store_key_insert(struct store *s, struct store_key *k);
/* Revoke key id of tenant_id (0: admin keys).  -ENOENT if none active. */
int store_key_revoke(struct store *s, int64_t tenant_id, const char *id);
/* Call cb for every active key; stops early when cb returns < 0. */
int store_key_foreach_active(struct store *s, int (*cb)(const struct store_key *k, void *ud),
			     void *ud);
/* {"keys": [...]} of one tenant, revoked ones included, never hashes. */
int store_key_list(struct store *s, int64_t tenant_id, json_t **out);

int store_code_exists(struct store *s, int64_t tenant_id, const char *sha256);
int store_code_insert(struct store *s, int64_t tenant_id, const char *sha256, uint64_t size,
		      uint64_t unpacked, uint64_t files);

/*
 * store_fn_put - record a deploy of function fn: creates the function when
 * new (-EDQUOT past max_functions), creates version N+1 unless the latest
 * version has the same code and canonical config, and points alias at the
 * resulting version (alias NULL: none).  One transaction.  *out is
 * {"function", "version": {...}, "created": bool, "alias": …}.
 */
int store_fn_put(struct store *s, int64_t tenant_id, const char *fn, const char *code_sha256,
		 const char *config_json, const char *alias, int64_t max_functions, json_t **out);
int store_fn_get(struct store *s, int64_t tenant_id, const char *fn, json_t **out);
int store_fn_list(struct store *s, int64_t tenant_id, json_t **out);
int store_fn_delete(struct store *s, int64_t tenant_id, const char *fn);
int store_version_list(struct store *s, int64_t tenant_id, const char *fn, json_t **out);
int store_version_get(struct store *s, int64_t tenant_id, const char *fn, int64_t number,
		      json_t **out);

/*
 * Aliases.  Errors: -ENOENT no such function, -ESRCH no such alias,
 * -EINPROGRESS a deployment moves the alias (only it may write it).
 * An alias object is {"name", "version", "weights": {"N": pct},
 * "previous_version" (or null), "deployment" (id in progress, or null),
 * "updated_at"}.
 */
int store_alias_list(struct store *s, int64_t tenant_id, const char *fn, json_t **out);
int store_alias_get(struct store *s, int64_t tenant_id, const char *fn, const char *alias,
		    json_t **out);
/* Create or replace alias = (version, weights: canonical JSON text of
 * {"N": pct}, checked by the caller for shape and sums).  -ENXIO when a
 * version it names does not exist (*missing says which).  1 created, 0
 * replaced. */
int store_alias_put(struct store *s, int64_t tenant_id, const char *fn, const char *alias,
		    int64_t version, const char *weights, int64_t *missing, json_t **out);
int store_alias_delete(struct store *s, int64_t tenant_id, const char *fn, const char *alias);
/* Point alias back at its previous version (weights cleared), or, while a
 * deployment moves it, abort that deployment ("rolled back by who") so the
 * alias serves the version it started from.  -ENODATA when the alias never
 * pointed elsewhere.  *out is the alias afterwards. */
int store_alias_rollback(struct store *s, int64_t tenant_id, const char *fn, const char *alias,
			 const char *who, json_t **out);

/*
 * Deployments (SPEC §6).  The gateway's engine drives them; the store
 * keeps every step durable.  A deployment object is {"id", "function",
 * "alias", "from_version", "to_version", "strategy", "max_error_rate",
 * "min_invocations", "max_p95_ms", "state", "step", "step_elapsed_ms",
 * "step_invocations", "step_errors", "steps": [figures of finished steps],
 * "reason", "figures", "created_by", "created_at", "updated_at",
 * "ended_at"}.
 */
struct store_deploy_new {
	const char *alias;
	int64_t to_version;
	const char *strategy;  /* canonical text */
	unsigned first_weight; /* percent of step 1; >= 100: all at once */
	double max_error_rate; /* percent */
	int64_t min_invocations;
	int64_t max_p95_ms; /* 0: none */
	const char *created_by;
};

/*
 * store_deploy_create - start a deployment of fn's alias to d->to_version:
 * step 1 routes first_weight percent to it, or (all at once, or an alias
 * that does not exist yet) the alias points at it at once and the
 * deployment is recorded as succeeded.  -ENOENT no function, -ENXIO no
 * such version, -EINPROGRESS another deployment moves the alias,
 * -EALREADY the alias already serves that version alone, -ENOTEMPTY the
 * alias splits traffic by weights (set it to one version first).  *out is
 * the deployment.
 */
int store_deploy_create(struct store *s, int64_t tenant_id, const char *fn,
			const struct store_deploy_new *d, json_t **out);

/* An in-progress deployment, as the engine resumes it (strings borrowed
 * for the callback). */
struct store_deploy_run {
	int64_t id, tenant_id, from_version, to_version;
	const char *tenant, *function, *alias, *strategy;
	double max_error_rate;
	int64_t min_invocations, max_p95_ms;
	unsigned step;
	int64_t step_elapsed_ms, step_invocations, step_errors;
	const char *step_latency; /* JSON text the engine wrote */
};
int store_deploy_running(struct store *s, int (*cb)(const struct store_deploy_run *d, void *ud),
			 void *ud);

/* Save the progress of step (no routing change).  -ESRCH when the
 * deployment is no longer in progress at that step. */
int store_deploy_checkpoint(struct store *s, int64_t id, unsigned step, int64_t elapsed_ms,
			    int64_t invocations, int64_t errors, const char *latency);

/* Finish the current step (its figures, JSON text, appended to "steps")
 * and enter step with weight percent for the new version; weight >= 100
 * points the alias at it alone and ends the deployment as succeeded.
 * -ESRCH when no longer in progress or not at step - 1 (stale). */
int store_deploy_advance(struct store *s, int64_t id, unsigned step, unsigned weight,
			 const char *figures);

/* End an in-progress deployment of fn as "rolled_back" or "aborted", with
 * reason and figures (JSON text or NULL); the alias serves its
 * from_version alone again.  -ENOENT no function, -ESRCH no such
 * deployment, -EALREADY it had ended.  *out (may be NULL) the deployment. */
int store_deploy_end(struct store *s, int64_t tenant_id, const char *fn, int64_t id,
		     const char *state, const char *reason, const char *figures, json_t **out);

/* {"deployments": [...]} of fn, newest first, at most limit. */
int store_deploy_list(struct store *s, int64_t tenant_id, const char *fn, unsigned limit,
		      json_t **out);
/* One deployment of fn: -ENOENT no function, -ESRCH no such deployment. */
int store_deploy_get(struct store *s, int64_t tenant_id, const char *fn, int64_t id, json_t **out);

/* What an invocation needs: the version picked and its code and config. */
struct store_route {
	int64_t version;
	char code_sha256[65];
	json_t *config; /* owned: json_decref when done */
};

/*
 * store_route_resolve - resolve qualifier (alias name, or NULL with
 * version > 0) of tenant/fn.  For an alias with weights, pick(weights_json,
 * main_version, ud) chooses the version.  -ENOENT when the function, alias
 * or version does not exist.
 */
int store_route_resolve(struct store *s, int64_t tenant_id, const char *fn, const char *alias,
			int64_t version,
			int64_t (*pick)(const char *weights, int64_t main, void *ud), void *ud,
			struct store_route *out);

/*
 * store_warm_targets - every version an alias routes to (its main version
 * or a weighted one) whose config asks for min_instances > 0, with what
 * starting an instance of it needs; cb is called for each (config is
 * borrowed for the call).  0 or -errno (or cb's negative return).
 */
struct store_warm {
	const char *tenant;
	uint32_t uid;
	int64_t tenant_max_instances;
	bool allow_host_network;
	const char *function;
	int64_t version;
	const char *code_sha256;
	json_t *config;
};
int store_warm_targets(struct store *s, int (*cb)(const struct store_warm *w, void *ud), void *ud);

/*
 * store_generation - a counter that every change to tenants, functions,
 * versions or aliases moves (after its commit).  Caches of what
 * store_tenant_get and store_route_resolve return tag their entries with
 * the generation read before they query, and trust an entry only while
 * the generation is unchanged.  store_queries counts statements prepared
 * (tests use it to prove that a path reads no SQLite).  Both lock-free.
 */
uint64_t store_generation(struct store *s);
uint64_t store_queries(struct store *s);

/* ISO 8601 UTC text of a Unix-ms time into buf (at least 32 bytes). */
void store_time_format(int64_t ms, char *buf, size_t n);

/*
 * Invocation records (SPEC §7), store/records.c.  A record is written once,
 * in batches, by the gateway's record writer on a connection of its own
 * (store_open again: WAL lets readers go on meanwhile); readers are API
 * calls.  Strings of a record are the caller's (borrowed for the call).
 */
struct store_record {
	char id[40];
	int64_t tenant_id;
	char function[64];
	int64_t version;
	char alias[64];      /* "" when a version number routed it */
	const char *trigger; /* "http", "async", "schedule" */
	int64_t started_us;  /* Unix time */
	uint64_t duration_us, init_us, billed_ms;
	const char *status; /* "ok", "error", "timeout", "oom", "throttled" */
	unsigned http_status;
	bool cold;
	uint64_t mem_peak_kb, mem_limit_mb, request_bytes, response_bytes;
	char error_code[40]; /* "" when it succeeded */
	char *error_message; /* NULL when none */
	char *out, *err;     /* handler stdout / stderr (NULL: none) */
	size_t out_len, err_len;
	unsigned log_truncated; /* bit 0: stdout hit its cap, bit 1: stderr */
	int64_t seq;            /* filled by store_records_insert */
};

/* Insert n records in one transaction, filling their seq.  A record whose
 * id exists is skipped (seq 0).  0 or -errno (then none is written). */
int store_records_insert(struct store *s, struct store_record *recs, size_t n);
/* Call pause() after about every `every` records that store_records_insert
 * writes on this connection, inside its transaction (NULL: never).  The
 * record writer gives up its core there, so a batch of a thousand records
 * does not hold it for a millisecond and more at a time. */
void store_records_pause(struct store *s, void (*pause)(void), unsigned every);

struct store_record_filter {
	const char *function;       /* NULL: any */
	int64_t version;            /* 0: any */
	const char *status;         /* NULL: any */
	int cold;                   /* -1 any, 0 warm, 1 cold */
	int64_t since_us, until_us; /* 0: unbounded; started_us in [since, until) */
	int64_t before_seq;         /* cursor: only records after it in the order; 0 none */
	unsigned limit;             /* 1..1000 */
};

/* Records of a tenant, newest first (by start; seq breaks ties), without
 * logs: {"invocations": [...], "next_cursor": the last one's seq, to pass
 * as before_seq for the next page, or null}.  A cursor naming no record of
 * the tenant (pruned since) gives an empty last page. */
int store_records_list(struct store *s, int64_t tenant_id, const char *tenant,
		       const struct store_record_filter *f, json_t **out);
/* One record with its logs ({"logs": {"stdout", "stderr", "truncated"}}),
 * or -ENOENT (also when it belongs to another tenant). */
int store_record_get(struct store *s, int64_t tenant_id, const char *tenant, const char *id,
		     json_t **out);
/* Log lines of function fn of records with seq > after_seq and started at or
 * after since_us, oldest first, at most limit records' worth:
 * {"lines": [{"seq", "invocation_id", "version", "time", "stream",
 * "text"}], "cursor": last seq seen (after_seq when none)}. */
int store_records_logs(struct store *s, int64_t tenant_id, const char *fn, int64_t after_seq,
		       int64_t since_us, unsigned limit, json_t **out);
/* Append one record's log text (one stream) to lines, an element per line
 * as in store_records_logs.  0 or -ENOMEM. */
int store_log_lines(json_t *lines, int64_t seq, const char *id, int64_t version, int64_t started_us,
		    const char *stream, const char *text, size_t len);
/* Of the oldest batch records (by seq), delete those started before
 * before_us.  Returns how many were deleted (fewer than batch: nothing
 * more is due yet), or -errno. */
int store_records_prune(struct store *s, int64_t before_us, unsigned batch);

/*
 * Asynchronous invocations (SPEC §8), store/async.c: a durable queue.
 * Times are Unix microseconds.
 */
struct store_async {
	char id[40];
	int64_t tenant_id;
	char tenant[64]; /* filled by store_async_claim */
	char function[64];
	char qualifier[64]; /* "" : alias live */
	char trigger[16];   /* "async" (the default when "") or "schedule" */
	char *path, *query; /* after the function name; without '?' */
	char *headers;      /* JSON object text of the headers to send */
	char *body;
	size_t body_len;
	char *callback_url; /* NULL: none */
	unsigned attempts, max_retries;
	int64_t next_at_us; /* store_async_add: 0 means now */
};

/* Free what a store_async owns (store_async_claim's strings) and zero it. */
void store_async_free(struct store_async *a);
/* Queue a (borrowed) as due at a->next_at_us (0: now).  0, -EEXIST when
 * its id exists, or -errno. */
int store_async_add(struct store *s, const struct store_async *a, int64_t now_us);
/* Claim the queued invocation due first (next_at <= now): it becomes
 * running with one attempt more.  1 with *out filled (free it with
 * store_async_free), 0 when none is due, -errno. */
int store_async_claim(struct store *s, int64_t now_us, struct store_async *out);
/* 1 with the earliest next_at of the queue, 0 when nothing is queued. */
int store_async_next_due(struct store *s, int64_t *at_us);
/* Settle running invocation id after an attempt: state "succeeded",
 * "failed" or "queued" (a retry due at next_at_us), with the attempt's
 * invocation id (NULL keeps the last), HTTP status (0: none) and error
 * text (NULL: none).  -ENOENT when id is not running. */
int store_async_settle(struct store *s, const char *id, const char *state, int64_t next_at_us,
		       const char *invocation_id, int http_status, const char *error,
		       int64_t now_us);
/* Running invocation id back to the queue, due now, its attempt not
 * counted (it was cut off before it ran: the gateway stops). */
int store_async_release(struct store *s, const char *id, int64_t now_us);
/* What the callback POST got: its HTTP status (0: none) or an error. */
int store_async_callback_done(struct store *s, const char *id, int status, const char *error);
/* At start: invocations left running by a stop go back to the queue, due
 * now.  Returns how many, or -errno. */
int store_async_requeue_running(struct store *s, int64_t now_us);
/* One of a tenant's: {"id", "function", "state", "attempts", ...} or
 * -ENOENT. */
int store_async_get(struct store *s, int64_t tenant_id, const char *tenant, const char *id,
		    json_t **out);
/* A tenant's newest first, of one state (NULL: any), at most limit:
 * {"async_invocations": [...]}. */
int store_async_list(struct store *s, int64_t tenant_id, const char *tenant, const char *state,
		     unsigned limit, json_t **out);
/* A failed invocation back to the queue, due now, its attempts reset.
 * -ENOENT when the tenant has no such id, -EALREADY when it is not failed. */
int store_async_redrive(struct store *s, int64_t tenant_id, const char *id, int64_t now_us);
/* A function whose alias live points at a version with a schedule. */
struct store_scheduled {
	int64_t tenant_id;
	char tenant[64];
	char function[64];
	char schedule[128];
	int64_t last_slot; /* Unix seconds; -1: not handled yet */
};
/* Call cb for each scheduled function (under the store's lock: cb must
 * not call the store).  0, cb's negative return, or -errno. */
int store_schedules_list(struct store *s, int (*cb)(const struct store_scheduled *sc, void *ud),
			 void *ud);
/* Handle slot of function fn of a tenant, at most once: in one
 * transaction its last slot moves forward to slot and, when job is not
 * NULL, job is queued.  1 when it moved (job queued), 0 when slot is not
 * after the last one, -errno (nothing changed). */
int store_schedule_fire(struct store *s, int64_t tenant_id, const char *fn, int64_t slot,
			const struct store_async *job, int64_t now_us);
/* How many async invocations are queued, running, succeeded and failed
 * (in that order), all tenants.  0 or -errno. */
int store_async_counts(struct store *s, uint64_t counts[4]);
/* Delete up to batch settled invocations last updated before before_us.
 * Returns how many, or -errno. */
int store_async_prune(struct store *s, int64_t before_us, unsigned batch);

#endif
