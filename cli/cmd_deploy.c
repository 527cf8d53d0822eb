/*
 * cmd_deploy.c - faasctl's alias and deployment commands (SPEC §6, §9):
 *   alias set FN ALIAS VERSION [--weight VERSION=PCT]... | list FN | delete FN ALIAS
 *   deployments FN [--limit N] | abort FN ID | rollback FN [ALIAS]
 * and deploy_progressive(), what "faasctl deploy --strategy S [--wait]"
 * does once the version exists: start the deployment and, with --wait,
 * follow it step by step until it ends (exit 0 succeeded, 1 otherwise).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "names.h"
#include "strategy.h"
#include "util.h"

#define WAIT_POLL_MS     500
#define WAIT_PROGRESS_MS 5000

static int
need_alias(const char *cmd, const char *a)
{
	if (alias_name_valid(a))
		return 0;
	fprintf(stderr,
		"faasctl %s: '%s' is not a valid alias name ([a-z0-9][a-z0-9-]{0,62}, not all "
		"digits)\n",
		cmd, a);
	return EXIT_USAGE;
}

static void
print_weights(json_t *a)
{
	json_t *w = json_object_get(a, "weights"), *v;
	const char *k;
	json_int_t rest = 100;

	json_object_foreach (w, k, v)
		rest -= json_integer_value(v);
	printf("v%lld %lld%%", (long long)json_integer_value(json_object_get(a, "version")),
	       (long long)rest);
	json_object_foreach (w, k, v)
		printf(", v%s %lld%%", k, (long long)json_integer_value(v));
}

static void
alias_print(const char *name, json_t *a)
{
	json_t *dep = json_object_get(a, "deployment"),
	       *prev = json_object_get(a, "previous_version");

	printf("%-20s ", name);
	print_weights(a);
	if (json_is_integer(prev))
		printf("  (previous v%lld)", (long long)json_integer_value(prev));
	if (json_is_integer(dep))
		printf("  [deployment %lld in progress]", (long long)json_integer_value(dep));
	printf("\n");
}

static int
alias_set(struct cli *c, int argc, char **argv)
{
	json_t *body, *weights, *out = NULL;
	uint64_t version;
	int r;

	if (argc < 5) {
		fprintf(stderr, "faasctl alias set: needs FN ALIAS VERSION\n");
		return EXIT_USAGE;
	}
	if (!name_valid(argv[2])) {
		fprintf(stderr, "faasctl alias set: '%s' is not a valid function name\n", argv[2]);
		return EXIT_USAGE;
	}
	if ((r = need_alias("alias set", argv[3])))
		return r;
	if (parse_u64(argv[4], 1, INT64_MAX, &version) < 0) {
		fprintf(stderr, "faasctl alias set: VERSION '%s' must be a version number\n",
			argv[4]);
		return EXIT_USAGE;
	}
	weights = json_object();
	for (int i = 5; i < argc; i++) {
		const char *v, *eq;
		uint64_t wv, pct;
		char key[24];

		if (strcmp(argv[i], "--weight") != 0) {
			fprintf(stderr, "faasctl alias set: unknown argument '%s'\n", argv[i]);
			json_decref(weights);
			return EXIT_USAGE;
		}
		if (!(v = arg_value(argc, argv, &i))) {
			json_decref(weights);
			return EXIT_USAGE;
		}
		eq = strchr(v, '=');
		if (!eq || (size_t)(eq - v) >= sizeof(key)) {
			fprintf(stderr, "faasctl alias set: --weight needs VERSION=PCT, got '%s'\n",
				v);
			json_decref(weights);
			return EXIT_USAGE;
		}
		memcpy(key, v, (size_t)(eq - v));
		key[eq - v] = 0;
		if (parse_u64(key, 1, INT64_MAX, &wv) < 0 || parse_u64(eq + 1, 0, 100, &pct) < 0) {
			fprintf(stderr,
				"faasctl alias set: --weight '%s': VERSION must be a version number "
				"and PCT a whole percent from 0 to 100\n",
				v);
			json_decref(weights);
			return EXIT_USAGE;
		}
		(void)str_printf(key, sizeof(key), "%llu", (unsigned long long)wv);
		json_object_set_new(weights, key, json_integer((json_int_t)pct));
	}
	body = json_pack("{s:I, s:o}", "version", (json_int_t)version, "weights", weights);
	r = tenant_api(c, "PUT", body, &out, "/functions/%s/aliases/%s", argv[2], argv[3]);
	json_decref(body);
	if (r)
		return r;
	if (c->json)
		print_json(out);
	else
		alias_print(argv[3], json_object_get(out, "alias"));
	json_decref(out);
	return 0;
}

int
cmd_alias(struct cli *c, int argc, char **argv)
{
	json_t *out = NULL, *a;
	const char *k;
	int r;

	if (argc < 2 || arg_is_help(argv[1])) {
		printf("Usage: faasctl alias set FN ALIAS VERSION [--weight VERSION=PCT]...\n"
		       "       faasctl alias list FN\n"
		       "       faasctl alias delete FN ALIAS\n"
		       "\n"
		       "An alias routes FN[:ALIAS] to VERSION, or splits it: each --weight gives\n"
		       "another version that whole percent of the calls (together at most 100),\n"
		       "VERSION gets the rest.  X-Faas-Route-Key keeps a caller on one version.\n");
		return argc < 2 ? EXIT_USAGE : 0;
	}
	if (strcmp(argv[1], "set") == 0)
		return alias_set(c, argc, argv);
	if (strcmp(argv[1], "list") == 0) {
		if (argc != 3 || !name_valid(argv[2])) {
			fprintf(stderr, "faasctl alias list: needs one function name\n");
			return EXIT_USAGE;
		}
		r = tenant_api(c, "GET", NULL, &out, "/functions/%s/aliases", argv[2]);
		if (r)
			return r;
		if (c->json)
			print_json(out);
		else
			json_object_foreach (json_object_get(out, "aliases"), k, a)
				alias_print(k, a);
		json_decref(out);
		return 0;
	}
	if (strcmp(argv[1], "delete") == 0) {
		if (argc != 4 || !name_valid(argv[2])) {
			fprintf(stderr, "faasctl alias delete: needs FN ALIAS\n");
			return EXIT_USAGE;
		}
		if ((r = need_alias("alias delete", argv[3])))
			return r;
		r = tenant_api(c, "DELETE", NULL, &out, "/functions/%s/aliases/%s", argv[2],
			       argv[3]);
		if (r)
			return r;
		if (c->json)
			print_json(out);
		else
			printf("deleted alias %s of %s\n", argv[3], argv[2]);
		json_decref(out);
		return 0;
	}
	fprintf(stderr, "faasctl alias: unknown subcommand '%s' (set, list, delete)\n", argv[1]);
	return EXIT_USAGE;
}

static void
deployment_line(json_t *d)
{
	const char *state = json_string_value(json_object_get(d, "state"));
	json_t *from = json_object_get(d, "from_version"), *reason = json_object_get(d, "reason");

	printf("%-5lld %-12s %-10s %s -> v%lld  %-18s step %lld/%lld  %s\n",
	       (long long)json_integer_value(json_object_get(d, "id")), state,
	       json_string_value(json_object_get(d, "alias")), json_is_integer(from) ? "" : "(new)",
	       (long long)json_integer_value(json_object_get(d, "to_version")),
	       json_string_value(json_object_get(d, "strategy")),
	       (long long)json_integer_value(json_object_get(d, "step")),
	       (long long)json_integer_value(json_object_get(d, "steps_total")),
	       json_string_value(json_object_get(d, "created_at")));
	if (json_is_integer(from))
		printf("      from v%lld\n", (long long)json_integer_value(from));
	if (json_is_string(reason))
		printf("      %s\n", json_string_value(reason));
}

int
cmd_deployments(struct cli *c, int argc, char **argv)
{
	json_t *out = NULL, *d;
	const char *limit = "20";
	uint64_t n;
	size_t i;
	int r;

	if (argc < 2 || arg_is_help(argv[1])) {
		printf("Usage: faasctl deployments FN [--limit N]\n\n"
		       "Lists FN's deployments, newest first, with the reason of each rollback.\n");
		return argc < 2 ? EXIT_USAGE : 0;
	}
	if (!name_valid(argv[1])) {
		fprintf(stderr, "faasctl deployments: '%s' is not a valid function name\n",
			argv[1]);
		return EXIT_USAGE;
	}
	for (int k = 2; k < argc; k++) {
		const char *a = argv[k];

		if (strcmp(a, "--limit") != 0) {
			fprintf(stderr, "faasctl deployments: unknown argument '%s'\n", a);
			return EXIT_USAGE;
		}
		limit = arg_value(argc, argv, &k);
		if (!limit || parse_u64(limit, 1, 1000, &n) != 0) {
			fprintf(stderr,
				"faasctl deployments: --limit needs a number from 1 to 1000\n");
			return EXIT_USAGE;
		}
	}
	r = tenant_api(c, "GET", NULL, &out, "/functions/%s/deployments?limit=%s", argv[1], limit);
	if (r)
		return r;
	if (c->json)
		print_json(out);
	else {
		printf("%-5s %-12s %-10s %-9s %-18s %s\n", "ID", "STATE", "ALIAS", "VERSION",
		       "STRATEGY", "STEP / STARTED");
		json_array_foreach (json_object_get(out, "deployments"), i, d)
			deployment_line(d);
	}
	json_decref(out);
	return 0;
}

int
cmd_abort(struct cli *c, int argc, char **argv)
{
	json_t *out = NULL;
	uint64_t id;
	int r;

	if (argc > 1 && arg_is_help(argv[1])) {
		printf("Usage: faasctl abort FN ID\n\n"
		       "Stops deployment ID of FN; its alias serves the version it started "
		       "from.\n");
		return 0;
	}
	if (argc != 3 || !name_valid(argv[1]) || parse_u64(argv[2], 1, INT64_MAX, &id) < 0) {
		fprintf(stderr, "faasctl abort: needs FN and a deployment ID (see faasctl "
				"deployments FN)\n");
		return EXIT_USAGE;
	}
	r = tenant_api(c, "POST", NULL, &out, "/functions/%s/deployments/%llu/abort", argv[1],
		       (unsigned long long)id);
	if (r)
		return r;
	if (c->json)
		print_json(out);
	else {
		json_t *d = json_object_get(out, "deployment");

		printf("aborted deployment %llu: alias %s serves v%lld again\n",
		       (unsigned long long)id, json_string_value(json_object_get(d, "alias")),
		       (long long)json_integer_value(json_object_get(d, "from_version")));
	}
	json_decref(out);
	return 0;
}

int
cmd_rollback(struct cli *c, int argc, char **argv)
{
	const char *alias = "live";
	json_t *out = NULL;
	int r;

	if (argc > 1 && arg_is_help(argv[1])) {
		printf("Usage: faasctl rollback FN [ALIAS]\n\n"
		       "Points ALIAS (default live) back at the version it served before.  During\n"
		       "a deployment, aborts it instead: ALIAS serves the version it started "
		       "from.\n");
		return 0;
	}
	if (argc < 2 || argc > 3 || !name_valid(argv[1])) {
		fprintf(stderr, "faasctl rollback: needs FN [ALIAS]\n");
		return EXIT_USAGE;
	}
	if (argc == 3) {
		alias = argv[2];
		if ((r = need_alias("rollback", alias)))
			return r;
	}
	r = tenant_api(c, "POST", NULL, &out, "/functions/%s/aliases/%s/rollback", argv[1], alias);
	if (r)
		return r;
	if (c->json)
		print_json(out);
	else
		printf("alias %s of %s now serves v%lld\n", alias, argv[1],
		       (long long)json_integer_value(
			       json_object_get(json_object_get(out, "alias"), "version")));
	json_decref(out);
	return 0;
}

/* ---- deploy --strategy ---- */

static void
sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void
step_figures(const char *what, json_t *f)
{
	printf("  %s: %lld invocations, %lld errors (%.1f%%), p95 %.1f ms\n", what,
	       (long long)json_integer_value(json_object_get(f, "invocations")),
	       (long long)json_integer_value(json_object_get(f, "errors")),
	       json_number_value(json_object_get(f, "error_rate")),
	       json_number_value(json_object_get(f, "p95_ms")));
}

static void
step_banner(json_t *d)
{
	long long w = json_integer_value(json_object_get(d, "weight")),
		  to = json_integer_value(json_object_get(d, "to_version")),
		  from = json_integer_value(json_object_get(d, "from_version"));

	printf("step %lld/%lld: v%lld %lld%%, v%lld %lld%% for %llds\n",
	       (long long)json_integer_value(json_object_get(d, "step")),
	       (long long)json_integer_value(json_object_get(d, "steps_total")), to, w, from,
	       100 - w,
	       (long long)json_integer_value(json_object_get(d, "step_duration_ms")) / 1000);
	fflush(stdout);
}

/* Follow deployment id until it ends: 0 succeeded, 1 rolled back or
 * aborted (reason on stderr), or the server failed. */
static int
deploy_follow(struct cli *c, const char *fn, json_t *d)
{
	long long id = json_integer_value(json_object_get(d, "id"));
	size_t printed = 0;
	long long step = 0;
	unsigned since = 0;
	json_t *cur = json_incref(d);
	int r = 0;

	for (;;) {
		const char *state = json_string_value(json_object_get(cur, "state"));
		json_t *steps = json_object_get(cur, "steps"), *out = NULL;

		if (!c->json) {
			for (; printed < json_array_size(steps); printed++) {
				char what[32];

				(void)str_printf(what, sizeof(what), "step %zu done", printed + 1);
				step_figures(what, json_array_get(steps, printed));
			}
			if (strcmp(state, "in_progress") == 0 &&
			    json_integer_value(json_object_get(cur, "step")) != step) {
				step = json_integer_value(json_object_get(cur, "step"));
				step_banner(cur);
				since = 0;
			} else if (strcmp(state, "in_progress") == 0 && since >= WAIT_PROGRESS_MS &&
				   json_is_object(json_object_get(cur, "current"))) {
				json_t *f = json_object_get(cur, "current");
				char what[64];

				(void)str_printf(what, sizeof(what), "%llds in",
						 (long long)json_integer_value(
							 json_object_get(f, "elapsed_ms")) /
							 1000);
				step_figures(what, f);
				since = 0;
			}
			fflush(stdout);
		}
		if (strcmp(state, "in_progress") != 0)
			break;
		sleep_ms(WAIT_POLL_MS);
		since += WAIT_POLL_MS;
		r = tenant_api(c, "GET", NULL, &out, "/functions/%s/deployments/%lld", fn, id);
		if (r) {
			json_decref(cur);
			return r;
		}
		json_decref(cur);
		cur = json_incref(json_object_get(out, "deployment"));
		json_decref(out);
	}
	{
		const char *state = json_string_value(json_object_get(cur, "state"));
		json_t *reason = json_object_get(cur, "reason");

		if (c->json)
			print_json(cur);
		if (strcmp(state, "succeeded") == 0) {
			if (!c->json)
				printf("deployment %lld succeeded: alias %s serves v%lld\n", id,
				       json_string_value(json_object_get(cur, "alias")),
				       (long long)json_integer_value(
					       json_object_get(cur, "to_version")));
			r = 0;
		} else {
			fprintf(stderr, "faasctl deploy: deployment %lld %s: %s\n", id,
				strcmp(state, "rolled_back") == 0 ? "rolled back" : state,
				json_is_string(reason) ? json_string_value(reason)
						       : "no reason given");
			if (strcmp(state, "rolled_back") == 0)
				fprintf(stderr, "  alias %s serves v%lld again\n",
					json_string_value(json_object_get(cur, "alias")),
					(long long)json_integer_value(
						json_object_get(cur, "from_version")));
			r = EXIT_SERVER;
		}
	}
	json_decref(cur);
	return r;
}

int
deploy_progressive(struct cli *c, const char *fn, const char *alias, long long version,
		   const struct deploy_opts *o)
{
	json_t *body, *out = NULL, *a = NULL, *d;
	char path[300];
	int r;

	/* An alias that already serves the version alone has nothing to do:
	 * a CI job run twice succeeds twice. */
	(void)str_printf(path, sizeof(path), "/v1/tenants/%s/functions/%s/aliases/%s", c->tenant,
			 fn, alias);
	{
		struct http_resp hr;

		if (http_call(c, "GET", path, NULL, NULL, 0, NULL, false, &hr) == 0) {
			if (hr.status == 200)
				a = json_loadb(hr.body.data, hr.body.len, 0, NULL);
			http_resp_free(&hr);
		}
	}
	d = json_object_get(a, "alias");
	if (json_integer_value(json_object_get(d, "version")) == version &&
	    json_object_size(json_object_get(d, "weights")) == 0 &&
	    json_is_null(json_object_get(d, "deployment"))) {
		if (!c->json)
			printf("alias %s already serves v%lld: nothing to deploy\n", alias,
			       version);
		else
			print_json(a);
		json_decref(a);
		return 0;
	}
	json_decref(a);
	body = json_pack("{s:s, s:I, s:s}", "alias", alias, "version", (json_int_t)version,
			 "strategy", o->strategy);
	if (o->max_error_rate >= 0)
		json_object_set_new(body, "max_error_rate", json_real(o->max_error_rate));
	if (o->min_invocations > 0)
		json_object_set_new(body, "min_invocations", json_integer(o->min_invocations));
	if (o->max_p95_ms > 0)
		json_object_set_new(body, "max_p95_ms", json_integer(o->max_p95_ms));
	r = tenant_api(c, "POST", body, &out, "/functions/%s/deployments", fn);
	json_decref(body);
	if (r)
		return r;
	d = json_object_get(out, "deployment");
	if (!c->json)
		printf("deployment %lld: alias %s -> v%lld, %s\n",
		       (long long)json_integer_value(json_object_get(d, "id")), alias, version,
		       json_string_value(json_object_get(d, "strategy")));
	if (o->wait)
		r = deploy_follow(c, fn, d);
	else if (c->json)
		print_json(out);
	else if (strcmp(json_string_value(json_object_get(d, "state")), "in_progress") == 0)
		printf("follow it with: faasctl deployments %s\n", fn);
	json_decref(out);
	return r;
}
