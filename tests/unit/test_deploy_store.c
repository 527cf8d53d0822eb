/* Unit tests of store/alias.c and store/deploy.c on a real SQLite file:
 * alias writes and their checks, deployments stepping, ending, resuming. */
#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include "store.h"
#include "tap.h"

static int
count_running(const struct store_deploy_run *d, void *ud)
{
	struct store_deploy_run *last = ud;

	last->id = d->id;
	last->step = d->step;
	last->step_elapsed_ms = d->step_elapsed_ms;
	last->step_invocations = d->step_invocations;
	last->from_version = d->from_version;
	last->to_version = d->to_version;
	last->tenant_id++; /* used as a counter here */
	return 0;
}

static const char *
weights_of(struct store *s, int64_t tid, const char *alias, int64_t *version)
{
	static char buf[128];
	json_t *a;
	char *w;

	buf[0] = 0;
	*version = 0;
	if (store_alias_get(s, tid, "f", alias, &a) < 0)
		return "";
	*version = json_integer_value(json_object_get(a, "version"));
	w = json_dumps(json_object_get(a, "weights"), JSON_COMPACT);
	snprintf(buf, sizeof(buf), "%s", w ? w : "");
	free(w);
	json_decref(a);
	return buf;
}

int
main(void)
{
	char dir[] = "/tmp/faasd-dstore-XXXXXX", path[256], diag[512];
	struct store *s;
	struct store_tenant t = { .max_functions = 5 }, t2 = { .max_functions = 5 };
	struct store_deploy_new d = { .alias = "live",
				      .to_version = 2,
				      .strategy = "canary:10:1m",
				      .first_weight = 10,
				      .max_error_rate = 5,
				      .min_invocations = 20,
				      .created_by = "key_x" };
	struct store_deploy_run run = { 0 };
	json_t *out;
	int64_t missing, v, id;
	uint64_t gen;

	mkdtemp(dir);
	snprintf(path, sizeof(path), "%s/faasd.db", dir);
	is_int(store_open(path, &s, diag, sizeof(diag)), 0, "open");
	snprintf(t.name, sizeof(t.name), "acme");
	snprintf(t2.name, sizeof(t2.name), "beta");
	store_tenant_create(s, &t, 300000, 10);
	store_tenant_create(s, &t2, 300000, 10);
	for (int i = 1; i <= 3; i++) {
		char cfg[32];

		snprintf(cfg, sizeof(cfg), "{\"n\":%d}", i);
		is_int(store_fn_put(s, t.id, "f", "c", cfg, i == 1 ? "live" : NULL, 5, &out), 0,
		       "version %d", i);
		json_decref(out);
	}

	/* aliases */
	is_int(store_alias_put(s, t.id, "f", "beta", 1, "{\"2\":30,\"3\":20}", &missing, &out), 1,
	       "create an alias over three versions");
	is_int(json_integer_value(json_object_get(json_object_get(out, "weights"), "3")), 20,
	       "weights kept");
	ok(json_is_null(json_object_get(out, "previous_version")), "no previous version yet");
	json_decref(out);
	is_int(store_alias_put(s, t.id, "f", "beta", 2, "{}", &missing, &out), 0, "replace it");
	is_int(json_integer_value(json_object_get(out, "previous_version")), 1,
	       "the version it left is kept");
	json_decref(out);
	is_int(store_alias_put(s, t.id, "f", "beta", 2, "{\"9\":10}", &missing, &out), -ENXIO,
	       "a weight on a version that does not exist");
	is_int(missing, 9, "and which one");
	is_str(weights_of(s, t.id, "beta", &v), "{}", "the refused write changed nothing");
	is_int(v, 2, "still version 2");
	is_int(store_alias_put(s, t.id, "f", "beta", 7, "{}", &missing, &out), -ENXIO,
	       "an unknown main version");
	is_int(missing, 7, "named");
	is_int(store_alias_put(s, t2.id, "f", "beta", 1, "{}", &missing, &out), -ENOENT,
	       "another tenant has no function f");
	is_int(store_alias_get(s, t.id, "f", "nope", &out), -ESRCH, "no such alias");
	is_int(store_alias_rollback(s, t.id, "f", "beta", "k", &out), 0, "rollback");
	is_int(json_integer_value(json_object_get(out, "version")), 1, "back to version 1");
	is_int(json_integer_value(json_object_get(out, "previous_version")), 2,
	       "and rolling back again would return to 2");
	json_decref(out);
	is_int(store_alias_put(s, t.id, "f", "fresh", 3, "{}", &missing, &out), 1, "fresh alias");
	json_decref(out);
	is_int(store_alias_rollback(s, t.id, "f", "fresh", "k", &out), -ENODATA,
	       "an alias that never moved has nothing to roll back to");
	is_int(store_alias_delete(s, t.id, "f", "fresh"), 0, "delete");
	is_int(store_alias_delete(s, t.id, "f", "fresh"), -ESRCH, "delete twice");

	/* a canary deployment */
	gen = store_generation(s);
	is_int(store_deploy_create(s, t.id, "f", &d, &out), 0, "start a canary");
	ok(store_generation(s) != gen, "routing generation moved");
	is_str(json_string_value(json_object_get(out, "state")), "in_progress", "in progress");
	is_int(json_integer_value(json_object_get(out, "from_version")), 1, "from live's version");
	id = json_integer_value(json_object_get(out, "id"));
	json_decref(out);
	is_str(weights_of(s, t.id, "live", &v), "{\"2\":10}", "10%% to version 2");
	is_int(v, 1, "the rest stays on 1");
	is_int(store_deploy_create(s, t.id, "f", &d, &out), -EINPROGRESS,
	       "one deployment per alias");
	is_int(store_alias_put(s, t.id, "f", "live", 3, "{}", &missing, &out), -EINPROGRESS,
	       "the alias is the deployment's while it runs");
	is_int(store_alias_delete(s, t.id, "f", "live"), -EINPROGRESS, "cannot be deleted");
	is_int(store_fn_put(s, t.id, "f", "c", "{\"n\":4}", "live", 5, &out), -EINPROGRESS,
	       "a deploy that would move it is refused");
	is_int(store_fn_put(s, t.id, "f", "c", "{\"n\":4}", NULL, 5, &out), 0,
	       "a deploy that leaves the alias alone is fine");
	json_decref(out);
	is_int(store_deploy_checkpoint(s, id, 1, 1500, 7, 1, "[[3,7]]"), 0, "checkpoint");
	is_int(store_deploy_checkpoint(s, id, 2, 9, 9, 9, "[]"), -ESRCH,
	       "a checkpoint of a step it is not at is refused");
	run.tenant_id = 0;
	is_int(store_deploy_running(s, count_running, &run), 0, "running list");
	is_int(run.tenant_id, 1, "one running");
	is_int(run.step_elapsed_ms, 1500, "time spent survives");
	is_int(run.step_invocations, 7, "counts survive");

	/* close and reopen: like a restart */
	store_close(s);
	is_int(store_open(path, &s, diag, sizeof(diag)), 0, "reopen");
	is_str(weights_of(s, t.id, "live", &v), "{\"2\":10}", "weights unchanged after reopen");
	run.tenant_id = 0;
	store_deploy_running(s, count_running, &run);
	is_int(run.step, 1, "still step 1");
	is_int(store_deploy_advance(s, id, 3, 100, NULL), -ESRCH, "a stale step is refused");
	is_int(store_deploy_advance(s, id, 2, 100, "{\"step\":1}"), 0, "finish");
	is_str(weights_of(s, t.id, "live", &v), "{}", "no weights after success");
	is_int(v, 2, "live serves version 2");
	is_int(store_deploy_get(s, t.id, "f", id, &out), 0, "get");
	is_str(json_string_value(json_object_get(out, "state")), "succeeded", "succeeded");
	is_int(json_array_size(json_object_get(out, "steps")), 1, "step figures kept");
	ok(!json_is_null(json_object_get(out, "ended_at")), "ended_at set");
	json_decref(out);
	is_int(store_deploy_advance(s, id, 3, 100, NULL), -ESRCH, "cannot step a finished one");
	is_int(store_deploy_end(s, t.id, "f", id, "aborted", "x", NULL, NULL), -EALREADY,
	       "cannot abort a finished one");
	is_int(store_deploy_get(s, t2.id, "f", id, &out), -ENOENT, "other tenants see nothing");

	/* a linear one, rolled back */
	d.to_version = 3;
	d.strategy = "linear:50:1m";
	d.first_weight = 50;
	is_int(store_deploy_create(s, t.id, "f", &d, &out), 0, "start linear");
	id = json_integer_value(json_object_get(out, "id"));
	json_decref(out);
	is_str(weights_of(s, t.id, "live", &v), "{\"3\":50}", "50%%");
	is_int(store_deploy_end(s, t.id, "f", id, "rolled_back", "error rate 50%",
				"{\"errors\":10}", &out),
	       0, "roll back");
	is_str(json_string_value(json_object_get(out, "reason")), "error rate 50%", "reason kept");
	is_int(json_integer_value(json_object_get(json_object_get(out, "figures"), "errors")), 10,
	       "figures kept");
	json_decref(out);
	is_str(weights_of(s, t.id, "live", &v), "{}", "rollback clears the weights");
	is_int(v, 2, "and serves the old version");

	/* refusals */
	d.to_version = 2;
	is_int(store_deploy_create(s, t.id, "f", &d, &out), -EALREADY, "already there");
	d.to_version = 9;
	is_int(store_deploy_create(s, t.id, "f", &d, &out), -ENXIO, "unknown version");
	d.to_version = 1;
	d.alias = "beta";
	store_alias_put(s, t.id, "f", "beta", 2, "{\"3\":5}", &missing, &out);
	json_decref(out);
	is_int(store_deploy_create(s, t.id, "f", &d, &out), -ENOTEMPTY, "alias with weights");
	d.alias = "newone";
	is_int(store_deploy_create(s, t.id, "f", &d, &out), 0, "a new alias");
	is_str(json_string_value(json_object_get(out, "state")), "succeeded", "at once");
	json_decref(out);
	is_int(weights_of(s, t.id, "newone", &v)[0] == '{', 1, "created");
	is_int(v, 1, "at the version");
	d.alias = "live";
	d.first_weight = 100;
	d.to_version = 3;
	d.strategy = "all-at-once";
	is_int(store_deploy_create(s, t.id, "f", &d, &out), 0, "all at once");
	is_str(json_string_value(json_object_get(out, "state")), "succeeded", "ends at once");
	json_decref(out);
	weights_of(s, t.id, "live", &v);
	is_int(v, 3, "live at 3");
	is_int(store_deploy_list(s, t.id, "f", 2, &out), 0, "list");
	is_int(json_array_size(json_object_get(out, "deployments")), 2, "limit applies");
	is_int(json_integer_value(json_object_get(
		       json_array_get(json_object_get(out, "deployments"), 0), "to_version")),
	       3, "newest first");
	json_decref(out);

	/* rollback during a deployment aborts it */
	d.to_version = 1;
	d.first_weight = 10;
	d.strategy = "canary:10:1m";
	is_int(store_deploy_create(s, t.id, "f", &d, &out), 0, "another canary");
	id = json_integer_value(json_object_get(out, "id"));
	json_decref(out);
	is_int(store_alias_rollback(s, t.id, "f", "live", "key_y", &out), 0, "rollback");
	is_int(json_integer_value(json_object_get(out, "version")), 3, "stays on 3");
	json_decref(out);
	store_deploy_get(s, t.id, "f", id, &out);
	is_str(json_string_value(json_object_get(out, "state")), "aborted", "the canary aborted");
	is_str(json_string_value(json_object_get(out, "reason")), "rolled back by key_y", "who");
	json_decref(out);

	/* deleting the function takes its deployments */
	d.to_version = 2;
	is_int(store_deploy_create(s, t.id, "f", &d, &out), 0, "one more");
	json_decref(out);
	is_int(store_fn_delete(s, t.id, "f"), 0, "delete function");
	run.tenant_id = 0;
	store_deploy_running(s, count_running, &run);
	is_int(run.tenant_id, 0, "nothing running any more");
	store_close(s);
	unlink(path);
	return done();
}
