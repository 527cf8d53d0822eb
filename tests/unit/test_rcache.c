/* Unit tests of gateway/rcache.c (the route cache) on a real SQLite store. */
#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include "rcache.h"
#include "store.h"
#include "tap.h"

static int
resolve(struct rcache *c, struct store *s, const char *tenant, const char *fn, const char *alias,
	int64_t version, int64_t *got_version)
{
	struct store_tenant t;
	struct store_route r;
	int rc = rcache_resolve(c, s, tenant, fn, alias, version, &t, &r);

	*got_version = rc == 0 ? r.version : -1;
	json_decref(r.config);
	return rc;
}

int
main(void)
{
	char dir[] = "/tmp/faasd-rcache-XXXXXX", path[256], diag[512];
	struct store *s;
	struct rcache *c, *tiny;
	struct store_tenant t = { .max_functions = 10 }, tt;
	struct store_route r;
	json_t *out;
	uint64_t q0, hits, misses;
	int64_t v;
	int ones = 0;

	mkdtemp(dir);
	snprintf(path, sizeof(path), "%s/faasd.db", dir);
	is_int(store_open(path, &s, diag, sizeof(diag)), 0, "store");
	snprintf(t.name, sizeof(t.name), "acme");
	is_int(store_tenant_create(s, &t, 200000, 10), 0, "tenant");
	is_int(store_fn_put(s, t.id, "f", "c1", "{\"a\":1}", "live", 10, &out), 0, "deploy v1");
	json_decref(out);
	is_int(rcache_new(64, &c), 0, "cache");
	is_int(rcache_new(0, &tiny), -EINVAL, "a cache needs slots");

	is_int(rcache_resolve(c, s, "acme", "f", "live", 0, &tt, &r), 0, "resolve live");
	ok(r.version == 1 && json_integer_value(json_object_get(r.config, "a")) == 1 &&
		   tt.id == t.id && tt.uid == t.uid,
	   "version 1, its config, the tenant");
	json_decref(r.config);
	q0 = store_queries(s);
	for (int i = 0; i < 100; i++)
		(void)resolve(c, s, "acme", "f", "live", 0, &v);
	is_int(v, 1, "still version 1");
	ok(store_queries(s) == q0, "100 hits read no SQLite (%llu queries)",
	   (unsigned long long)(store_queries(s) - q0));
	rcache_stats(c, &hits, &misses);
	ok(hits == 100 && misses == 1, "100 hits, 1 miss (%llu, %llu)", (unsigned long long)hits,
	   (unsigned long long)misses);

	/* A change applies from the next invocation. */
	is_int(store_fn_put(s, t.id, "f", "c1", "{\"a\":2}", "live", 10, &out), 0, "deploy v2");
	json_decref(out);
	is_int(resolve(c, s, "acme", "f", "live", 0, &v), 0, "resolve after deploy");
	is_int(v, 2, "live moved to version 2 at once");
	is_int(resolve(c, s, "acme", "f", NULL, 1, &v), 0, "pinned version 1");
	is_int(v, 1, "pinned version served");
	is_int(resolve(c, s, "acme", "f", NULL, 9, &v), -ENOENT, "missing version");
	is_int(resolve(c, s, "acme", "f", "nope", 0, &v), -ENOENT, "missing alias");

	/* Misses are cached, and a deploy invalidates them. */
	is_int(resolve(c, s, "acme", "g", "live", 0, &v), -ENOENT, "missing function");
	q0 = store_queries(s);
	for (int i = 0; i < 50; i++)
		(void)resolve(c, s, "acme", "g", "live", 0, &v);
	ok(store_queries(s) == q0, "a flood of misses reads no SQLite");
	is_int(store_fn_put(s, t.id, "g", "c1", "{}", "live", 10, &out), 0, "deploy g");
	json_decref(out);
	is_int(resolve(c, s, "acme", "g", "live", 0, &v), 0, "g found right after its deploy");
	is_int(resolve(c, s, "nobody", "f", "live", 0, &v), -ENOENT, "missing tenant");

	/* Weights: 30% to version 1, the rest to live's version 2. */
	{
		sqlite3 *db;

		sqlite3_open(path, &db);
		is_int(sqlite3_exec(
			       db,
			       "UPDATE aliases SET weights = '{\"1\": 30}' WHERE name = 'live' "
			       "AND function_id = (SELECT id FROM functions WHERE name = 'f')",
			       NULL, NULL, NULL),
		       SQLITE_OK, "weights written");
		sqlite3_close(db);
	}
	is_int(store_fn_put(s, t.id, "h", "c1", "{}", "live", 10, &out), 0,
	       "another change moves the generation");
	json_decref(out);
	for (int i = 0; i < 4000; i++) {
		(void)resolve(c, s, "acme", "f", "live", 0, &v);
		ones += v == 1;
	}
	ok(ones > 4000 * 25 / 100 && ones < 4000 * 35 / 100, "version 1 served %d of 4000 (30%%)",
	   ones);

	/* Collisions only cost misses. */
	is_int(rcache_new(1, &tiny), 0, "one-slot cache");
	for (int i = 0; i < 10; i++) {
		is_int(resolve(tiny, s, "acme", "g", "live", 0, &v), 0, "g through one slot");
		is_int(resolve(tiny, s, "acme", "f", NULL, 2, &v), 0, "f:2 through one slot");
		is_int(v, 2, "f:2 is version 2");
	}
	rcache_free(tiny);

	is_int(store_tenant_delete(s, t.id), 0, "tenant deleted");
	is_int(resolve(c, s, "acme", "f", "live", 0, &v), -ENOENT, "its routes are gone at once");
	rcache_free(c);
	store_close(s);
	unlink(path);
	return done();
}
