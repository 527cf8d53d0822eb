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
	int rc = rcache_resolve(c, s, tenant, fn, alias, version, NULL, &t, &r);

	*got_version = rc == 0 ? r.version : -1;
	json_decref(r.config);
	return rc;
}

static void
keyed_resolve(struct rcache *c, struct store *s, const char *key, int64_t *got)
{
	struct store_tenant t;
	struct store_route r;

	*got = rcache_resolve(c, s, "acme", "f", "live", 0, key, &t, &r) == 0 ? r.version : -1;
	json_decref(r.config);
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
	int64_t v, missing;
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

	is_int(rcache_resolve(c, s, "acme", "f", "live", 0, NULL, &tt, &r), 0, "resolve live");
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
	is_int(store_alias_put(s, t.id, "f", "live", 2, "{\"1\":30}", &missing, &out), 0,
	       "weights written");
	json_decref(out);
	for (int i = 0; i < 4000; i++) {
		(void)resolve(c, s, "acme", "f", "live", 0, &v);
		ones += v == 1;
	}
	ok(ones > 4000 * 25 / 100 && ones < 4000 * 35 / 100, "version 1 served %d of 4000 (30%%)",
	   ones);

	/* Route keys: buckets are uniform, a key sticks to its version, and a
	 * growing weight only adds keys to the weighted version. */
	{
		unsigned per[100] = { 0 }, lo = ~0u, hi = 0, stuck = 1, kept = 1, keyed = 0;
		static int64_t first[2000];
		char key[32];

		for (int i = 0; i < 20000; i++) {
			snprintf(key, sizeof(key), "user-%d", i);
			per[rcache_bucket(key)]++;
		}
		for (int b = 0; b < 100; b++) {
			lo = per[b] < lo ? per[b] : lo;
			hi = per[b] > hi ? per[b] : hi;
		}
		/* 200 expected per bucket; sd ~14: 5 sd either way. */
		ok(lo > 130 && hi < 270, "20000 keys spread over 100 buckets (%u..%u each)", lo,
		   hi);
		is_int(rcache_bucket("user-1"), rcache_bucket("user-1"), "same key, same bucket");
		for (int i = 0; i < 2000; i++) {
			snprintf(key, sizeof(key), "user-%d", i);
			keyed_resolve(c, s, key, &first[i]);
			keyed += first[i] == 1;
			for (int k = 0; k < 3; k++) {
				keyed_resolve(c, s, key, &v);
				stuck &= v == first[i];
			}
		}
		ok(stuck, "every key kept its version over 4 calls");
		ok(keyed > 2000 * 25 / 100 && keyed < 2000 * 35 / 100,
		   "keys on version 1: %u of 2000 (30%%)", keyed);
		is_int(store_alias_put(s, t.id, "f", "live", 2, "{\"1\":60}", &missing, &out), 0,
		       "weight of version 1 grows to 60");
		json_decref(out);
		for (int i = 0; i < 2000; i++) {
			snprintf(key, sizeof(key), "user-%d", i);
			keyed_resolve(c, s, key, &v);
			if (first[i] == 1)
				kept &= v == 1;
		}
		ok(kept, "keys on version 1 at 30%% are still there at 60%%");
	}

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
