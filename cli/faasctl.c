/*
 * faasctl.c - entry point of faasctl: global options, the saved login
 * (~/.config/faasctl/config.json, mode 0600, overridden by FAASCTL_URL,
 * FAASCTL_TOKEN, FAASCTL_TENANT), and dispatch to the commands of SPEC §9.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "names.h"
#include "util.h"

static void
usage(FILE *f)
{
	fprintf(f,
		"Usage: faasctl [--json] [--tenant NAME] COMMAND [ARGS]\n"
		"\n"
		"Commands:\n"
		"  login --url URL (--token TOKEN | --token-file FILE)   save where and who you are\n"
		"  whoami                                               show tenant and scope\n"
		"  tenant create|list|delete NAME                       tenants (admin)\n"
		"  key create --scope owner|deploy|invoke | list | revoke ID\n"
		"  deploy [DIR] [--name N] [--runtime R] [--handler H] [--memory MB]\n"
		"         [--timeout S] [--env K=V]... [--alias A]       pack, upload, deploy\n"
		"         [--strategy S] [--max-error-rate PCT] [--min-invocations N]\n"
		"         [--max-p95-ms MS] [--wait]                    progressive deployment\n"
		"  list | info FN | versions FN | delete FN             functions\n"
		"  invoke FN[:QUALIFIER] [--data @FILE|-|TEXT] [--method M] [--header K:V]...\n"
		"  alias set FN ALIAS VERSION [--weight VERSION=PCT]... | list FN | delete FN ALIAS\n"
		"  deployments FN | abort FN ID | rollback FN [ALIAS]\n"
		"  logs FN [--follow] [--since WHEN]                    log lines of invocations\n"
		"  invocations [FN] [--status S] [--limit N] | show ID  invocation records\n"
		"  async [--state S] [--limit N] | redrive ID           async invocations, dead letter\n"
		"\n"
		"Every command takes --help.  --json prints machine-readable output.\n"
		"FAASCTL_URL, FAASCTL_TOKEN and FAASCTL_TENANT override the saved login.\n"
		"Exit status: 0 success, 1 server-side failure, 2 bad usage.\n");
}

bool
arg_is_help(const char *a)
{
	return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

const char *
arg_value(int argc, char **argv, int *i)
{
	if (*i + 1 >= argc) {
		fprintf(stderr, "faasctl: %s needs a value\n", argv[*i]);
		return NULL;
	}
	return argv[++*i];
}

void
print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);

	if (s) {
		puts(s);
		free(s);
	}
}

static void
config_path(struct cli *c)
{
	const char *p = getenv("FAASCTL_CONFIG"), *xdg = getenv("XDG_CONFIG_HOME"),
		   *home = getenv("HOME");

	if (p && *p)
		(void)str_copy(c->config_path, sizeof(c->config_path), p);
	else if (xdg && *xdg)
		(void)str_printf(c->config_path, sizeof(c->config_path), "%s/faasctl/config.json",
				 xdg);
	else
		(void)str_printf(c->config_path, sizeof(c->config_path),
				 "%s/.config/faasctl/config.json", home ? home : "/root");
}

static void
load_config(struct cli *c)
{
	json_t *j = json_load_file(c->config_path, 0, NULL);
	const char *e;

	if (j) {
		if (json_is_string(json_object_get(j, "url")))
			(void)str_copy(c->url, sizeof(c->url),
				       json_string_value(json_object_get(j, "url")));
		if (json_is_string(json_object_get(j, "token")))
			(void)str_copy(c->token, sizeof(c->token),
				       json_string_value(json_object_get(j, "token")));
		if (json_is_string(json_object_get(j, "tenant")))
			(void)str_copy(c->tenant, sizeof(c->tenant),
				       json_string_value(json_object_get(j, "tenant")));
		json_decref(j);
	}
	if ((e = getenv("FAASCTL_URL")) && *e)
		(void)str_copy(c->url, sizeof(c->url), e);
	if ((e = getenv("FAASCTL_TOKEN")) && *e) {
		(void)str_copy(c->token, sizeof(c->token), e);
		c->tenant[0] = 0; /* a different token may be of another tenant */
	}
	if ((e = getenv("FAASCTL_TENANT")) && *e)
		(void)str_copy(c->tenant, sizeof(c->tenant), e);
	/* Strip a trailing slash so paths join cleanly. */
	while (*c->url && c->url[strlen(c->url) - 1] == '/')
		c->url[strlen(c->url) - 1] = 0;
}

int
cli_save(struct cli *c)
{
	char dir[1024], *slash;
	json_t *j = json_pack("{s:s, s:s}", "url", c->url, "token", c->token);
	char *text;
	int fd, r;

	if (*c->tenant)
		json_object_set_new(j, "tenant", json_string(c->tenant));
	(void)str_copy(dir, sizeof(dir), c->config_path);
	slash = strrchr(dir, '/');
	if (slash) {
		*slash = 0;
		/* Create the parents one level at a time (~/.config/faasctl). */
		for (char *p = dir + 1; *p; p++)
			if (*p == '/') {
				*p = 0;
				(void)mkdir(dir, 0700);
				*p = '/';
			}
		(void)mkdir(dir, 0700);
	}
	text = json_dumps(j, JSON_INDENT(2));
	json_decref(j);
	fd = open(c->config_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || !text) {
		fprintf(stderr, "faasctl: cannot write %s: %s\n", c->config_path, strerror(errno));
		free(text);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	(void)fchmod(fd, 0600);
	r = write_full(fd, text, strlen(text));
	if (r == 0)
		r = write_full(fd, "\n", 1);
	close(fd);
	free(text);
	return r;
}

int
cli_tenant(struct cli *c)
{
	json_t *who;
	const char *t;

	if (*c->tenant)
		return 0;
	if (api_json(c, "GET", "/v1/whoami", NULL, &who) != 0)
		return -1;
	t = json_string_value(json_object_get(who, "tenant"));
	if (!t) {
		fprintf(stderr, "faasctl: this is an admin token, which belongs to no tenant: "
				"say which one with --tenant NAME (or FAASCTL_TENANT)\n");
		json_decref(who);
		return -1;
	}
	(void)str_copy(c->tenant, sizeof(c->tenant), t);
	json_decref(who);
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(struct cli *, int, char **);
	bool needs_login;
} commands[] = {
	{ "login", cmd_login, false },  { "whoami", cmd_whoami, true },
	{ "tenant", cmd_tenant, true }, { "key", cmd_key, true },
	{ "deploy", cmd_deploy, true }, { "list", cmd_list, true },
	{ "info", cmd_info, true },     { "versions", cmd_versions, true },
	{ "delete", cmd_delete, true }, { "invoke", cmd_invoke, true },
	{ "alias", cmd_alias, true },   { "deployments", cmd_deployments, true },
	{ "abort", cmd_abort, true },   { "rollback", cmd_rollback, true },
	{ "logs", cmd_logs, true },     { "invocations", cmd_invocations, true },
	{ "async", cmd_async, true },
};

int
main(int argc, char **argv)
{
	struct cli c = { 0 };
	char tenant_flag[64] = "";
	int i = 1, r;

	c.tty = isatty(STDERR_FILENO);
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--json") == 0)
			c.json = true;
		else if (strcmp(argv[i], "--tenant") == 0) {
			const char *v = arg_value(argc, argv, &i);

			if (!v)
				return EXIT_USAGE;
			if (!name_valid(v)) {
				fprintf(stderr,
					"faasctl: --tenant: '%s' is not a valid tenant name\n", v);
				return EXIT_USAGE;
			}
			(void)str_copy(tenant_flag, sizeof(tenant_flag), v);
		} else if (arg_is_help(argv[i])) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "faasctl: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	config_path(&c);
	load_config(&c);
	if (*tenant_flag)
		(void)str_copy(c.tenant, sizeof(c.tenant), tenant_flag);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	for (size_t k = 0; k < ARRAY_SIZE(commands); k++) {
		if (strcmp(argv[i], commands[k].name) != 0)
			continue;
		/* --json may also follow the command. */
		for (int j = i + 1; j < argc; j++)
			if (strcmp(argv[j], "--json") == 0) {
				c.json = true;
				memmove(&argv[j], &argv[j + 1],
					sizeof(char *) * (size_t)(argc - j));
				argc--;
				j--;
			}
		if (commands[k].needs_login && !(i + 1 < argc && arg_is_help(argv[i + 1])) &&
		    (!*c.url || !*c.token)) {
			fprintf(stderr,
				"faasctl: not logged in: run 'faasctl login --url URL --token-file FILE' "
				"or set FAASCTL_URL and FAASCTL_TOKEN\n");
			return EXIT_USAGE;
		}
		r = commands[k].fn(&c, argc - i, argv + i);
		curl_global_cleanup();
		return r;
	}
	fprintf(stderr, "faasctl: unknown command '%s'\n", argv[i]);
	usage(stderr);
	return EXIT_USAGE;
}
