/* Unit tests of store/store.c on real SQLite files. */
#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include "store.h"
#include "tap.h"

static int
count_keys(const struct store_key *k, void *ud)
{
	(void)k;
	(*(int *)ud)++;
	return 0;
}

int
main(void)
{
	char dir[] = "/tmp/faasd-store-XXXXXX", path[256], diag[512];
	struct store *s;
	struct store_tenant t = { .max_functions = 2, .max_instances = 10, .max_memory_mb = 512 },
			    t2 = { 0 }, got;
	struct store_key k = { 0 };
	struct store_route sr;
	json_t *out;
	int n = 0;

	mkdtemp(dir);
	snprintf(path, sizeof(path), "%s/faasd.db", dir);
	is_int(store_open(path, &s, diag, sizeof(diag)), 0, "open creates and migrates");
	snprintf(t.name, sizeof(t.name), "acme");
	is_int(store_tenant_create(s, &t, 200000, 10), 0, "create tenant");
	is_int(t.uid, 200000, "first tenant gets uid_base");
	snprintf(t2.name, sizeof(t2.name), "acme");
	is_int(store_tenant_create(s, &t2, 200000, 10), -EEXIST, "duplicate tenant");
	snprintf(t2.name, sizeof(t2.name), "beta");
	t2.max_functions = 5;
	is_int(store_tenant_create(s, &t2, 200000, 10), 0, "second tenant");
	ok(t2.uid != t.uid, "tenants never share a uid (%u vs %u)", t2.uid, t.uid);
	is_int(store_tenant_get(s, "acme", &got), 0, "get tenant");
	is_int(got.max_memory_mb, 512, "quota stored");
	is_int(store_tenant_get(s, "nope", &got), -ENOENT, "missing tenant");

	snprintf(k.id, sizeof(k.id), "key_1");
	k.tenant_id = t.id;
	snprintf(k.scope, sizeof(k.scope), "owner");
	memset(k.hash, 1, 32);
	is_int(store_key_insert(s, &k), 0, "insert key");
	snprintf(k.id, sizeof(k.id), "key_2");
	is_int(store_key_insert(s, &k), -EEXIST, "same hash twice refused");
	store_key_foreach_active(s, count_keys, &n);
	is_int(n, 1, "one active key");
	is_int(store_key_revoke(s, t2.id, "key_1"), -ENOENT, "other tenant cannot revoke");
	is_int(store_key_revoke(s, t.id, "key_1"), 0, "revoke");
	is_int(store_key_revoke(s, t.id, "key_1"), -ENOENT, "revoke twice");
	n = 0;
	store_key_foreach_active(s, count_keys, &n);
	is_int(n, 0, "no active key");

	is_int(store_code_exists(s, t.id, "aa"), -ENOENT, "no code");
	is_int(store_code_insert(s, t.id,
				 "0000000000000000000000000000000000000000000000000000000000000000",
				 1, 2, 3),
	       0, "insert code");
	is_int(store_code_exists(
		       s, t.id, "0000000000000000000000000000000000000000000000000000000000000000"),
	       0, "code exists");
	is_int(store_code_exists(
		       s, t2.id,
		       "0000000000000000000000000000000000000000000000000000000000000000"),
	       -ENOENT, "code is per tenant");

	is_int(store_fn_put(s, t.id, "f", "c1", "{\"a\":1}", "live", 2, &out), 0, "deploy v1");
	ok(json_is_true(json_object_get(out, "created")), "v1 created");
	json_decref(out);
	is_int(store_fn_put(s, t.id, "f", "c1", "{\"a\":1}", "live", 2, &out), 0, "same deploy");
	ok(json_is_false(json_object_get(out, "created")), "no new version when nothing changed");
	is_int(json_integer_value(json_object_get(json_object_get(out, "version"), "number")), 1,
	       "still v1");
	json_decref(out);
	is_int(store_fn_put(s, t.id, "f", "c1", "{\"a\":2}", "live", 2, &out), 0, "config change");
	is_int(json_integer_value(json_object_get(json_object_get(out, "version"), "number")), 2,
	       "v2");
	json_decref(out);
	is_int(store_fn_put(s, t.id, "f", "c1", "{\"a\":1}", "live", 2, &out), 0,
	       "back to old config");
	is_int(json_integer_value(json_object_get(json_object_get(out, "version"), "number")), 3,
	       "a change back is a new version v3");
	json_decref(out);
	is_int(store_route_resolve(s, t.id, "f", "live", 0, NULL, NULL, &sr), 0, "resolve live");
	is_int(sr.version, 3, "live is v3");
	json_decref(sr.config);
	is_int(store_route_resolve(s, t.id, "f", NULL, 1, NULL, NULL, &sr), 0, "resolve version 1");
	is_int(json_integer_value(json_object_get(sr.config, "a")), 1, "v1 config");
	json_decref(sr.config);
	is_int(store_route_resolve(s, t.id, "f", "staging", 0, NULL, NULL, &sr), -ENOENT,
	       "missing alias");
	is_int(store_route_resolve(s, t.id, "f", NULL, 9, NULL, NULL, &sr), -ENOENT,
	       "missing version");
	is_int(store_route_resolve(s, t2.id, "f", "live", 0, NULL, NULL, &sr), -ENOENT,
	       "other tenant cannot see f");
	is_int(store_fn_put(s, t.id, "g", "c1", "{}", NULL, 2, &out), 0, "second function");
	json_decref(out);
	is_int(store_fn_put(s, t.id, "h", "c1", "{}", NULL, 2, &out), -EDQUOT,
	       "max_functions enforced");
	is_int(store_fn_delete(s, t.id, "f"), 0, "delete function");
	is_int(store_fn_get(s, t.id, "f", &out), -ENOENT, "gone");
	is_int(store_fn_put(s, t.id, "f", "c1", "{\"a\":1}", "live", 2, &out), 0, "recreate");
	is_int(json_integer_value(json_object_get(json_object_get(out, "version"), "number")), 4,
	       "version numbers never reused after delete");
	json_decref(out);
	is_int(store_version_list(s, t.id, "f", &out), 0, "list versions");
	is_int(json_array_size(json_object_get(out, "versions")), 1, "one version after recreate");
	json_decref(out);
	is_int(store_tenant_delete(s, t.id), 0, "delete tenant cascades");
	is_int(store_fn_get(s, t.id, "g", &out), -ENOENT, "functions gone with tenant");
	store_close(s);

	/* A database from a newer faasd is refused. */
	{
		sqlite3 *db;

		sqlite3_open(path, &db);
		sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL);
		sqlite3_close(db);
		is_int(store_open(path, &s, diag, sizeof(diag)), -EPROTO, "newer schema refused");
		ok(strstr(diag, "newer") != NULL, "diag says newer: %s", diag);
	}
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	unlink(path);
	return done();
}
