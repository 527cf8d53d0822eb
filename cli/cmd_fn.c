/*
 * cmd_fn.c - faasctl deploy, list, info, versions, delete and invoke.
 *
 * deploy: read DIR/faas.json, apply flags, validate with the same rules as
 * the server (common/fnconfig.c) so mistakes show before any upload, pack a
 * deterministic archive, upload it unless the server has that digest, then
 * PUT the function and print the version and URL.
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "fnconfig.h"
#include "names.h"
#include "strategy.h"
#include "util.h"

#define CODE_MAX (50u << 20)

static int
need_fn(const char *cmd, int argc, char **argv, const char **fn)
{
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "faasctl %s: needs a function name\n", cmd);
		return EXIT_USAGE;
	}
	if (!name_valid(argv[1])) {
		fprintf(stderr,
			"faasctl %s: '%s' is not a valid function name ([a-z0-9][a-z0-9-]{0,62})\n",
			cmd, argv[1]);
		return EXIT_USAGE;
	}
	*fn = argv[1];
	return 0;
}

static int
set_int_flag(json_t *m, const char *key, const char *flag, const char *v)
{
	uint64_t n;

	if (parse_u64(v, 0, 1u << 30, &n) < 0) {
		fprintf(stderr, "faasctl deploy: %s needs a whole number, got '%s'\n", flag, v);
		return -1;
	}
	json_object_set_new(m, key, json_integer((json_int_t)n));
	return 0;
}

static void
deploy_usage(void)
{
	printf("Usage: faasctl deploy [DIR] [--name N] [--runtime R] [--handler H] [--memory MB]\n"
	       "                      [--timeout S] [--env K=V]... [--alias A]\n"
	       "                      [--strategy S] [--max-error-rate PCT] [--min-invocations N]\n"
	       "                      [--max-p95-ms MS] [--wait]\n"
	       "\n"
	       "Reads DIR/faas.json (DIR defaults to .), applies the flags over it, packs DIR\n"
	       "(minus the \"ignore\" patterns) into a deterministic gzip tar, uploads it if the\n"
	       "server does not have it yet, and creates a new version when code or config\n"
	       "changed.  The alias (default live) then points at that version.\n"
	       "\n"
	       "With --strategy, a deployment moves the alias instead: all-at-once,\n"
	       "canary:PCT:DURATION (PCT%% for DURATION, then all) or linear:STEP:DURATION\n"
	       "(STEP%% more every DURATION); DURATION is 90s, 10m, 1h or bare minutes.  It\n"
	       "rolls back by itself when the new version's error rate in a step passes\n"
	       "--max-error-rate (default 5%%) after --min-invocations (default 20), or its\n"
	       "p95 passes --max-p95-ms.  --wait follows it and exits 1 if it rolled back.\n");
}

int
cmd_deploy(struct cli *c, int argc, char **argv)
{
	const char *dir = ".", *alias = "live", *v;
	char path[4200], diag[FNCONFIG_DIAG], sha[65], api[512], dircopy[4096];
	json_t *m = NULL, *cfg = NULL, *env, *ignore, *out = NULL, *body;
	struct buf tar = { 0 };
	struct http_resp hr;
	struct stat st;
	json_error_t jerr;
	struct strategy strat;
	char strategy[STRATEGY_TEXT_MAX];
	struct deploy_opts dopts = { .max_error_rate = -1 };
	int r = EXIT_USAGE;

	for (int i = 1; i < argc; i++)
		if (arg_is_help(argv[i])) {
			deploy_usage();
			return 0;
		}
	if (argc > 1 && argv[1][0] != '-')
		dir = argv[1];
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "faasctl deploy: '%s' is not a directory\n", dir);
		return EXIT_USAGE;
	}
	(void)str_printf(path, sizeof(path), "%s/faas.json", dir);
	if (access(path, F_OK) == 0) {
		m = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
		if (!m) {
			fprintf(stderr, "faasctl deploy: %s:%d:%d: %s\n", path, jerr.line,
				jerr.column, jerr.text);
			return EXIT_USAGE;
		}
		if (!json_is_object(m)) {
			fprintf(stderr, "faasctl deploy: %s must hold a JSON object\n", path);
			goto out;
		}
	} else
		m = json_object();
	for (int i = (dir == argv[1]) ? 2 : 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--name") || !strcmp(a, "--runtime") || !strcmp(a, "--handler")) {
			if (!(v = arg_value(argc, argv, &i)))
				goto out;
			json_object_set_new(m, a + 2, json_string(v));
		} else if (!strcmp(a, "--memory") || !strcmp(a, "--timeout")) {
			if (!(v = arg_value(argc, argv, &i)) ||
			    set_int_flag(m, a[2] == 'm' ? "memory_mb" : "timeout_s", a, v) < 0)
				goto out;
		} else if (!strcmp(a, "--env")) {
			const char *eq;
			char key[256];

			if (!(v = arg_value(argc, argv, &i)))
				goto out;
			eq = strchr(v, '=');
			if (!eq || eq == v || (size_t)(eq - v) >= sizeof(key)) {
				fprintf(stderr, "faasctl deploy: --env needs KEY=VALUE, got '%s'\n",
					v);
				goto out;
			}
			memcpy(key, v, (size_t)(eq - v));
			key[eq - v] = 0;
			env = json_object_get(m, "env");
			if (!json_is_object(env)) {
				env = json_object();
				json_object_set_new(m, "env", env);
			}
			json_object_set_new(env, key, json_string(eq + 1));
		} else if (!strcmp(a, "--alias")) {
			if (!(alias = arg_value(argc, argv, &i)))
				goto out;
			if (!alias_name_valid(alias)) {
				fprintf(stderr,
					"faasctl deploy: --alias '%s' must be a name that is not all digits\n",
					alias);
				goto out;
			}
		} else if (!strcmp(a, "--strategy")) {
			if (!(v = arg_value(argc, argv, &i)))
				goto out;
			if (strategy_parse(v, &strat, diag, sizeof(diag)) < 0) {
				fprintf(stderr, "faasctl deploy: --strategy: %s\n", diag);
				goto out;
			}
			strategy_format(&strat, strategy, sizeof(strategy));
			dopts.strategy = strategy;
		} else if (!strcmp(a, "--max-error-rate")) {
			char pct[16], *end = NULL;

			if (!(v = arg_value(argc, argv, &i)))
				goto out;
			(void)str_copy(pct, sizeof(pct), v);
			if (*pct && pct[strlen(pct) - 1] == '%')
				pct[strlen(pct) - 1] = 0;
			dopts.max_error_rate = *pct ? strtod(pct, &end) : -1;
			if (!end || *end || dopts.max_error_rate < 0 ||
			    dopts.max_error_rate > 100) {
				fprintf(stderr,
					"faasctl deploy: --max-error-rate needs a percent from 0 to 100 "
					"(e.g. 5 or 2.5%%), got '%s'\n",
					v);
				goto out;
			}
		} else if (!strcmp(a, "--min-invocations") || !strcmp(a, "--max-p95-ms")) {
			uint64_t n;

			if (!(v = arg_value(argc, argv, &i)))
				goto out;
			if (parse_u64(v, 1, a[3] == 'i' ? 1000000 : 900000, &n) < 0) {
				fprintf(stderr,
					"faasctl deploy: %s needs a whole number (1 to %d), got '%s'\n",
					a, a[3] == 'i' ? 1000000 : 900000, v);
				goto out;
			}
			if (a[3] == 'i')
				dopts.min_invocations = (long long)n;
			else
				dopts.max_p95_ms = (long long)n;
		} else if (!strcmp(a, "--wait")) {
			dopts.wait = true;
		} else {
			fprintf(stderr, "faasctl deploy: unknown argument '%s' (see --help)\n", a);
			goto out;
		}
	}
	if (!json_object_get(m, "name")) {
		char *base;

		(void)str_copy(dircopy, sizeof(dircopy), dir);
		if (realpath(dir, path))
			(void)str_copy(dircopy, sizeof(dircopy), path);
		base = basename(dircopy);
		if (!name_valid(base)) {
			fprintf(stderr,
				"faasctl deploy: no \"name\" in faas.json and the directory name "
				"'%s' is not a valid function name: add \"name\" or pass --name\n",
				base);
			goto out;
		}
		json_object_set_new(m, "name", json_string(base));
	}
	if (fnconfig_validate(m, FNCONFIG_MANIFEST, &cfg, diag, sizeof(diag)) < 0) {
		fprintf(stderr, "faasctl deploy: faas.json: %s\n", diag);
		goto out;
	}
	r = EXIT_SERVER;
	if (cli_tenant(c) < 0)
		goto out;
	ignore = json_object_get(m, "ignore");
	if (pack_dir(dir, ignore, CODE_MAX, &tar, diag, sizeof(diag)) < 0) {
		fprintf(stderr, "faasctl deploy: %s\n", diag);
		r = EXIT_USAGE;
		goto out;
	}
	sha256_hex(tar.data, tar.len, sha);
	(void)str_printf(api, sizeof(api), "/v1/tenants/%s/code/%s", c->tenant, sha);
	if (http_call(c, "HEAD", api, NULL, NULL, 0, NULL, false, &hr) < 0)
		goto out;
	http_resp_free(&hr);
	if (hr.status == 404) {
		if (http_call(c, "PUT", api, "application/gzip", tar.data, tar.len, NULL, true,
			      &hr) < 0)
			goto out;
		if (hr.status != 200 && hr.status != 201) {
			print_http_error(&hr);
			http_resp_free(&hr);
			goto out;
		}
		http_resp_free(&hr);
		if (!c->json)
			printf("uploaded code sha256:%.12s (%zu bytes)\n", sha, tar.len);
	} else if (hr.status != 200) {
		fprintf(stderr,
			"faasctl deploy: checking for code on the server failed (HTTP %ld)\n",
			hr.status);
		goto out;
	}
	body = json_deep_copy(m);
	json_object_del(body, "ignore");
	(void)str_printf(diag, sizeof(diag), "sha256:%s", sha);
	json_object_set_new(body, "code", json_string(diag));
	/* With a strategy the version is made without moving the alias; the
	 * deployment moves it. */
	r = tenant_api(c, "PUT", body, &out, "/functions/%s?alias=%s",
		       json_string_value(json_object_get(m, "name")), dopts.strategy ? "" : alias);
	json_decref(body);
	if (r)
		goto out;
	if (dopts.strategy) {
		long long ver = json_integer_value(
			json_object_get(json_object_get(out, "version"), "number"));

		if (!c->json)
			printf("%s %s version %lld\n",
			       json_is_true(json_object_get(out, "created")) ? "deployed"
									     : "unchanged:",
			       json_string_value(json_object_get(m, "name")), ver);
		r = deploy_progressive(c, json_string_value(json_object_get(m, "name")), alias, ver,
				       &dopts);
		goto out;
	}
	if (c->json)
		print_json(out);
	else
		printf("%s %s version %lld -> alias %s\nURL: %s%s\n",
		       json_is_true(json_object_get(out, "created")) ? "deployed" : "unchanged:",
		       json_string_value(json_object_get(m, "name")),
		       (long long)json_integer_value(
			       json_object_get(json_object_get(out, "version"), "number")),
		       alias, c->url, json_string_value(json_object_get(out, "url")));
	r = 0;
out:
	json_decref(out);
	json_decref(cfg);
	json_decref(m);
	buf_free(&tar);
	return r;
}

int
cmd_list(struct cli *c, int argc, char **argv)
{
	json_t *out, *f;
	size_t i;
	int r;

	if (argc > 1) {
		if (arg_is_help(argv[1])) {
			printf("Usage: faasctl list\n\nLists the functions of your tenant.\n");
			return 0;
		}
		fprintf(stderr, "faasctl list: takes no arguments\n");
		return EXIT_USAGE;
	}
	r = tenant_api(c, "GET", NULL, &out, "/functions");
	if (r)
		return r;
	if (c->json)
		print_json(out);
	else {
		printf("%-32s %-7s %-10s %s\n", "NAME", "LATEST", "LIVE", "UPDATED");
		json_array_foreach (json_object_get(out, "functions"), i, f) {
			json_t *live = json_object_get(json_object_get(f, "aliases"), "live");
			char lv[32] = "-";

			if (live)
				(void)str_printf(lv, sizeof(lv), "v%lld",
						 (long long)json_integer_value(
							 json_object_get(live, "version")));
			printf("%-32s %-7lld %-10s %s\n",
			       json_string_value(json_object_get(f, "name")),
			       (long long)json_integer_value(json_object_get(f, "latest_version")),
			       lv, json_string_value(json_object_get(f, "updated_at")));
		}
	}
	json_decref(out);
	return 0;
}

int
cmd_info(struct cli *c, int argc, char **argv)
{
	const char *fn, *k;
	json_t *out, *a;
	int r;

	if (argc > 1 && arg_is_help(argv[1])) {
		printf("Usage: faasctl info FN\n\nShows a function, its aliases and latest config.\n");
		return 0;
	}
	if ((r = need_fn("info", argc, argv, &fn)))
		return r;
	r = tenant_api(c, "GET", NULL, &out, "/functions/%s", fn);
	if (r)
		return r;
	if (c->json)
		print_json(out);
	else {
		json_t *latest = json_object_get(out, "latest"),
		       *cfg = json_object_get(latest, "config");

		printf("name:     %s\nurl:      %s%s\nlatest:   %lld\ncreated:  %s\nupdated:  %s\n",
		       json_string_value(json_object_get(out, "name")), c->url,
		       json_string_value(json_object_get(out, "url")),
		       (long long)json_integer_value(json_object_get(out, "latest_version")),
		       json_string_value(json_object_get(out, "created_at")),
		       json_string_value(json_object_get(out, "updated_at")));
		json_object_foreach (json_object_get(out, "aliases"), k, a)
			printf("alias:    %s -> %lld\n", k,
			       (long long)json_integer_value(json_object_get(a, "version")));
		if (cfg)
			printf("runtime:  %s\nhandler:  %s\nmemory:   %lld MB\ntimeout:  %lld s\npublic:   %s\ncode:     %s\n",
			       json_string_value(json_object_get(cfg, "runtime")),
			       json_string_value(json_object_get(cfg, "handler")),
			       (long long)json_integer_value(json_object_get(cfg, "memory_mb")),
			       (long long)json_integer_value(json_object_get(cfg, "timeout_s")),
			       json_is_true(json_object_get(cfg, "public")) ? "yes" : "no",
			       json_string_value(json_object_get(latest, "code")));
	}
	json_decref(out);
	return 0;
}

int
cmd_versions(struct cli *c, int argc, char **argv)
{
	const char *fn;
	json_t *out, *v;
	size_t i;
	int r;

	if (argc > 1 && arg_is_help(argv[1])) {
		printf("Usage: faasctl versions FN\n\nLists the immutable versions of a function.\n");
		return 0;
	}
	if ((r = need_fn("versions", argc, argv, &fn)))
		return r;
	r = tenant_api(c, "GET", NULL, &out, "/functions/%s/versions", fn);
	if (r)
		return r;
	if (c->json)
		print_json(out);
	else {
		printf("%-8s %-21s %-9s %s\n", "VERSION", "CREATED", "RUNTIME", "CODE");
		json_array_foreach (json_object_get(out, "versions"), i, v)
			printf("%-8lld %-21s %-9s %.19s\n",
			       (long long)json_integer_value(json_object_get(v, "number")),
			       json_string_value(json_object_get(v, "created_at")),
			       json_string_value(
				       json_object_get(json_object_get(v, "config"), "runtime")),
			       json_string_value(json_object_get(v, "code")));
	}
	json_decref(out);
	return 0;
}

int
cmd_delete(struct cli *c, int argc, char **argv)
{
	const char *fn;
	json_t *out;
	int r;

	if (argc > 1 && arg_is_help(argv[1])) {
		printf("Usage: faasctl delete FN\n\nDeletes a function with its versions and aliases.\n");
		return 0;
	}
	if ((r = need_fn("delete", argc, argv, &fn)))
		return r;
	r = tenant_api(c, "DELETE", NULL, &out, "/functions/%s", fn);
	if (r)
		return r;
	if (c->json)
		print_json(out);
	else
		printf("deleted function %s\n", fn);
	json_decref(out);
	return 0;
}

int
cmd_invoke(struct cli *c, int argc, char **argv)
{
	const char *target = NULL, *data = NULL, *method = NULL, *headers[65] = { 0 };
	char path[1024], fn[160];
	struct buf body = { 0 };
	struct http_resp hr;
	unsigned nh = 0;
	bool async = false;
	int r = EXIT_USAGE;

	for (int i = 1; i < argc; i++) {
		if (arg_is_help(argv[i])) {
			printf("Usage: faasctl invoke FN[:QUALIFIER][/PATH] [--data @FILE|-|TEXT] [--method M]\n"
			       "                      [--header K:V]... [--async]\n\n"
			       "Calls a function synchronously and prints its response body.  QUALIFIER is\n"
			       "an alias or a version number (default: alias live).  --data - reads stdin.\n"
			       "Exits 1 when the function answers with an error status.\n"
			       "--async queues the call (POST) and prints its id at once; see it with\n"
			       "'faasctl invocations show ID' (retried on error, failed ones are listed).\n"
			       "--header X-Callback-Url:URL has the result POSTed there.\n");
			return 0;
		} else if (!strcmp(argv[i], "--data") || !strcmp(argv[i], "-d")) {
			if (!(data = arg_value(argc, argv, &i)))
				return EXIT_USAGE;
		} else if (!strcmp(argv[i], "--method") || !strcmp(argv[i], "-X")) {
			if (!(method = arg_value(argc, argv, &i)))
				return EXIT_USAGE;
		} else if (!strcmp(argv[i], "--header") || !strcmp(argv[i], "-H")) {
			const char *h = arg_value(argc, argv, &i);

			if (!h)
				return EXIT_USAGE;
			if (!strchr(h, ':') || nh >= 64) {
				fprintf(stderr,
					"faasctl invoke: --header needs NAME:VALUE, got '%s'\n", h);
				return EXIT_USAGE;
			}
			headers[nh++] = h;
		} else if (!strcmp(argv[i], "--async")) {
			async = true;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "faasctl invoke: unknown argument '%s'\n", argv[i]);
			return EXIT_USAGE;
		} else if (!target)
			target = argv[i];
		else {
			fprintf(stderr, "faasctl invoke: unexpected argument '%s'\n", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (!target) {
		fprintf(stderr, "faasctl invoke: needs FN[:QUALIFIER]\n");
		return EXIT_USAGE;
	}
	{
		const char *slash = strchr(target, '/');
		size_t len = slash ? (size_t)(slash - target) : strlen(target);
		char *colon;

		if (len >= sizeof(fn)) {
			fprintf(stderr, "faasctl invoke: function name too long\n");
			return EXIT_USAGE;
		}
		memcpy(fn, target, len);
		fn[len] = 0;
		colon = strchr(fn, ':');
		if (colon)
			*colon = 0;
		if (!name_valid(fn) || (colon && !name_valid(colon + 1))) {
			fprintf(stderr, "faasctl invoke: '%s' is not FN[:QUALIFIER]\n", target);
			return EXIT_USAGE;
		}
	}
	if (data) {
		if (!strcmp(data, "-") || data[0] == '@') {
			FILE *f = !strcmp(data, "-") ? stdin : fopen(data + 1, "rb");
			char chunk[65536];
			size_t n;

			if (!f) {
				fprintf(stderr, "faasctl invoke: cannot read %s: %s\n", data + 1,
					strerror(errno));
				return EXIT_USAGE;
			}
			while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
				buf_append(&body, chunk, n);
			if (f != stdin)
				fclose(f);
		} else
			buf_append(&body, data, strlen(data));
	}
	if (async && method && strcmp(method, "POST") != 0) {
		fprintf(stderr, "faasctl invoke: --async calls are POST; drop --method %s\n",
			method);
		goto out;
	}
	if (cli_tenant(c) < 0)
		goto out;
	(void)str_printf(path, sizeof(path), "/%s/%s/%s", async ? "async" : "fn", c->tenant,
			 target);
	r = EXIT_SERVER;
	if (async) {
		if (http_call(c, "POST", path, NULL, body.data ? body.data : "", body.len, headers,
			      false, &hr) < 0)
			goto out;
		if (hr.status != 202) {
			print_http_error(&hr);
		} else if (c->json) {
			(void)write_full(STDOUT_FILENO, hr.body.data, hr.body.len);
			if (hr.body.len && hr.body.data[hr.body.len - 1] != '\n')
				(void)write_full(STDOUT_FILENO, "\n", 1);
			r = 0;
		} else {
			json_t *o =
				json_loadb(hr.body.data ? hr.body.data : "", hr.body.len, 0, NULL);
			const char *id = json_string_value(json_object_get(o, "id"));

			printf("%s\n", id ? id : "(no id in the answer)");
			r = id ? 0 : EXIT_SERVER;
			json_decref(o);
		}
		http_resp_free(&hr);
		goto out;
	}
	if (http_call(c, method ? method : (data ? "POST" : "GET"), path, NULL,
		      data ? (body.data ? body.data : "") : NULL, body.len, headers, false,
		      &hr) < 0)
		goto out;
	if (c->json) {
		json_t *o = json_pack("{s:I, s:s%}", "status", (json_int_t)hr.status, "body",
				      hr.body.data ? hr.body.data : "", hr.body.len);
		json_t *hs = json_object();
		char *line = hr.faas_headers, *nl;

		while ((nl = strchr(line, '\n'))) {
			char *colon = strchr(line, ':');

			*nl = 0;
			if (colon && colon < nl) {
				*colon = 0;
				json_object_set_new(hs, line,
						    json_string(colon + 1 + (colon[1] == ' ')));
			}
			line = nl + 1;
		}
		json_object_set_new(o, "headers", hs);
		print_json(o);
		json_decref(o);
	} else if (hr.status >= 200 && hr.status < 300) {
		if (hr.body.len)
			(void)write_full(STDOUT_FILENO, hr.body.data, hr.body.len);
	} else
		print_http_error(&hr);
	r = (hr.status >= 200 && hr.status < 400) ? 0 : EXIT_SERVER;
	http_resp_free(&hr);
out:
	buf_free(&body);
	return r;
}
