/*
 * cmd_admin.c - faasctl login, whoami, tenant and key commands.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "names.h"
#include "util.h"

int
cmd_login(struct cli *c, int argc, char **argv)
{
	const char *url = NULL, *token = NULL, *file = NULL;
	char *ftext = NULL;
	json_t *who;
	int r;

	for (int i = 1; i < argc; i++) {
		if (arg_is_help(argv[i])) {
			printf("Usage: faasctl login --url URL (--token TOKEN | --token-file FILE)\n\n"
			       "Checks the token against faasd and saves URL and token to %s (mode 0600).\n",
			       c->config_path);
			return 0;
		} else if (strcmp(argv[i], "--url") == 0) {
			if (!(url = arg_value(argc, argv, &i)))
				return EXIT_USAGE;
		} else if (strcmp(argv[i], "--token") == 0) {
			if (!(token = arg_value(argc, argv, &i)))
				return EXIT_USAGE;
		} else if (strcmp(argv[i], "--token-file") == 0) {
			if (!(file = arg_value(argc, argv, &i)))
				return EXIT_USAGE;
		} else {
			fprintf(stderr, "faasctl login: unknown argument '%s'\n", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (!url || (!token && !file) || (token && file)) {
		fprintf(stderr, "faasctl login: needs --url and one of --token or --token-file\n");
		return EXIT_USAGE;
	}
	if (!str_startswith(url, "http://") && !str_startswith(url, "https://")) {
		fprintf(stderr, "faasctl login: --url must start with http:// or https://\n");
		return EXIT_USAGE;
	}
	if (file) {
		size_t len;
		int e = read_file_bounded(file, 4096, &ftext, &len);

		if (e < 0) {
			fprintf(stderr, "faasctl login: cannot read token file %s: %s\n", file,
				strerror(-e));
			return EXIT_USAGE;
		}
		while (len &&
		       (ftext[len - 1] == '\n' || ftext[len - 1] == '\r' || ftext[len - 1] == ' '))
			ftext[--len] = 0;
		token = ftext;
	}
	(void)str_copy(c->url, sizeof(c->url), url);
	while (*c->url && c->url[strlen(c->url) - 1] == '/')
		c->url[strlen(c->url) - 1] = 0;
	if (str_copy(c->token, sizeof(c->token), token) < 0) {
		fprintf(stderr, "faasctl login: token too long\n");
		free(ftext);
		return EXIT_USAGE;
	}
	free(ftext);
	r = api_json(c, "GET", "/v1/whoami", NULL, &who);
	if (r)
		return r;
	c->tenant[0] = 0;
	if (json_is_string(json_object_get(who, "tenant")))
		(void)str_copy(c->tenant, sizeof(c->tenant),
			       json_string_value(json_object_get(who, "tenant")));
	if (cli_save(c) < 0) {
		json_decref(who);
		return EXIT_SERVER;
	}
	if (c->json)
		print_json(who);
	else
		printf("logged in to %s as %s (scope %s); saved to %s\n", c->url,
		       *c->tenant ? c->tenant : "admin",
		       json_string_value(json_object_get(who, "scope")), c->config_path);
	json_decref(who);
	return 0;
}

int
cmd_whoami(struct cli *c, int argc, char **argv)
{
	json_t *who;
	int r;

	if (argc > 1) {
		if (arg_is_help(argv[1])) {
			printf("Usage: faasctl whoami\n\nShows the server, tenant and scope of your token.\n");
			return 0;
		}
		fprintf(stderr, "faasctl whoami: takes no arguments\n");
		return EXIT_USAGE;
	}
	r = api_json(c, "GET", "/v1/whoami", NULL, &who);
	if (r)
		return r;
	if (c->json)
		print_json(who);
	else
		printf("url:    %s\ntenant: %s\nscope:  %s\nkey:    %s\n", c->url,
		       json_string_value(json_object_get(who, "tenant")) ?: "(none: admin)",
		       json_string_value(json_object_get(who, "scope")),
		       json_string_value(json_object_get(who, "key_id")));
	json_decref(who);
	return 0;
}

int
cmd_tenant(struct cli *c, int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "";
	char path[256];
	json_t *out, *body;
	int r;

	if (argc < 2 || arg_is_help(sub)) {
		printf("Usage: faasctl tenant create NAME [--max-functions N] [--max-instances N]\n"
		       "                                  [--max-memory MB] [--allow-host-network]\n"
		       "       faasctl tenant list\n"
		       "       faasctl tenant delete NAME\n\nNeeds an admin token.\n");
		return argc < 2 ? EXIT_USAGE : 0;
	}
	if (strcmp(sub, "list") == 0) {
		size_t i;
		json_t *t;

		r = api_json(c, "GET", "/v1/tenants", NULL, &out);
		if (r)
			return r;
		if (c->json)
			print_json(out);
		else {
			printf("%-24s %-8s %s\n", "NAME", "UID", "CREATED");
			json_array_foreach (json_object_get(out, "tenants"), i, t)
				printf("%-24s %-8lld %s\n",
				       json_string_value(json_object_get(t, "name")),
				       (long long)json_integer_value(json_object_get(t, "uid")),
				       json_string_value(json_object_get(t, "created_at")));
		}
		json_decref(out);
		return 0;
	}
	if (argc < 3 || !name_valid(argv[2])) {
		fprintf(stderr,
			"faasctl tenant %s: needs a tenant NAME ([a-z0-9][a-z0-9-]{0,62})\n", sub);
		return EXIT_USAGE;
	}
	if (strcmp(sub, "delete") == 0) {
		(void)str_printf(path, sizeof(path), "/v1/tenants/%s", argv[2]);
		r = api_json(c, "DELETE", path, NULL, &out);
		if (r)
			return r;
		if (c->json)
			print_json(out);
		else
			printf("deleted tenant %s\n", argv[2]);
		json_decref(out);
		return 0;
	}
	if (strcmp(sub, "create") != 0) {
		fprintf(stderr, "faasctl tenant: unknown subcommand '%s' (create, list, delete)\n",
			sub);
		return EXIT_USAGE;
	}
	body = json_pack("{s:s}", "name", argv[2]);
	for (int i = 3; i < argc; i++) {
		static const struct {
			const char *flag, *key;
		} ints[] = { { "--max-functions", "max_functions" },
			     { "--max-instances", "max_instances" },
			     { "--max-memory", "max_memory_mb" } };
		bool done = false;

		for (size_t k = 0; k < ARRAY_SIZE(ints) && !done; k++) {
			const char *v;
			uint64_t n;

			if (strcmp(argv[i], ints[k].flag) != 0)
				continue;
			done = true;
			if (!(v = arg_value(argc, argv, &i)) || parse_u64(v, 1, 1u << 30, &n) < 0) {
				fprintf(stderr,
					"faasctl tenant create: %s needs a positive number\n",
					ints[k].flag);
				json_decref(body);
				return EXIT_USAGE;
			}
			json_object_set_new(body, ints[k].key, json_integer((json_int_t)n));
		}
		if (done)
			continue;
		if (strcmp(argv[i], "--allow-host-network") == 0) {
			json_object_set_new(body, "allow_host_network", json_true());
			continue;
		}
		fprintf(stderr, "faasctl tenant create: unknown argument '%s'\n", argv[i]);
		json_decref(body);
		return EXIT_USAGE;
	}
	r = api_json(c, "POST", "/v1/tenants", body, &out);
	json_decref(body);
	if (r)
		return r;
	if (c->json)
		print_json(out);
	else
		printf("created tenant %s (uid %lld)\nowner token (shown once, keep it safe):\n%s\n",
		       argv[2],
		       (long long)json_integer_value(
			       json_object_get(json_object_get(out, "tenant"), "uid")),
		       json_string_value(json_object_get(out, "token")));
	json_decref(out);
	return 0;
}

int
cmd_key(struct cli *c, int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "";
	json_t *out, *body;
	int r;

	if (argc < 2 || arg_is_help(sub)) {
		printf("Usage: faasctl key create --scope owner|deploy|invoke [--name NAME]\n"
		       "       faasctl key list\n"
		       "       faasctl key revoke ID\n\nKeys of your tenant (needs an owner token).\n");
		return argc < 2 ? EXIT_USAGE : 0;
	}
	if (!str_oneof(sub, "create", "list", "revoke", NULL)) {
		fprintf(stderr, "faasctl key: unknown subcommand '%s' (create, list, revoke)\n",
			sub);
		return EXIT_USAGE;
	}
	if (strcmp(sub, "list") == 0) {
		size_t i;
		json_t *k;

		r = tenant_api(c, "GET", NULL, &out, "/keys");
		if (r)
			return r;
		if (c->json)
			print_json(out);
		else {
			printf("%-22s %-7s %-16s %-21s %s\n", "ID", "SCOPE", "NAME", "CREATED",
			       "REVOKED");
			json_array_foreach (json_object_get(out, "keys"), i, k)
				printf("%-22s %-7s %-16s %-21s %s\n",
				       json_string_value(json_object_get(k, "id")),
				       json_string_value(json_object_get(k, "scope")),
				       json_string_value(json_object_get(k, "name")),
				       json_string_value(json_object_get(k, "created_at")),
				       json_string_value(json_object_get(k, "revoked_at")) ?: "-");
		}
		json_decref(out);
		return 0;
	}
	if (strcmp(sub, "revoke") == 0) {
		if (argc != 3) {
			fprintf(stderr,
				"faasctl key revoke: needs the key ID (see 'faasctl key list')\n");
			return EXIT_USAGE;
		}
		r = tenant_api(c, "DELETE", NULL, &out, "/keys/%s", argv[2]);
		if (r)
			return r;
		if (c->json)
			print_json(out);
		else
			printf("revoked key %s\n", argv[2]);
		json_decref(out);
		return 0;
	}
	body = json_object();
	for (int i = 2; i < argc; i++) {
		const char *v;

		if (strcmp(argv[i], "--scope") == 0 || strcmp(argv[i], "--name") == 0) {
			if (!(v = arg_value(argc, argv, &i))) {
				json_decref(body);
				return EXIT_USAGE;
			}
			json_object_set_new(body, argv[i - 1] + 2, json_string(v));
		} else {
			fprintf(stderr, "faasctl key create: unknown argument '%s'\n", argv[i]);
			json_decref(body);
			return EXIT_USAGE;
		}
	}
	if (!json_object_get(body, "scope")) {
		fprintf(stderr, "faasctl key create: --scope owner|deploy|invoke is required\n");
		json_decref(body);
		return EXIT_USAGE;
	}
	r = tenant_api(c, "POST", body, &out, "/keys");
	json_decref(body);
	if (r)
		return r;
	if (c->json)
		print_json(out);
	else
		printf("created key %s (scope %s)\ntoken (shown once, keep it safe):\n%s\n",
		       json_string_value(json_object_get(json_object_get(out, "key"), "id")),
		       json_string_value(json_object_get(json_object_get(out, "key"), "scope")),
		       json_string_value(json_object_get(out, "token")));
	json_decref(out);
	return 0;
}
