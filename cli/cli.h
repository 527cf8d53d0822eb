/*
 * cli.h - shared state and helpers of faasctl, the command-line client.
 *
 * faasctl talks to faasd's HTTP API with libcurl.  Exit status: 0 success,
 * 1 the server (or the connection to it) failed, 2 bad usage or bad local
 * input (faas.json, flags).
 */
#ifndef FAASCTL_CLI_H
#define FAASCTL_CLI_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define EXIT_SERVER 1
#define EXIT_USAGE  2

struct cli {
	char url[512];
	char token[160];
	char tenant[64]; /* --tenant, FAASCTL_TENANT, or the login's tenant */
	char config_path[1024];
	bool json;
	bool tty;
};

struct http_resp {
	long status;
	struct buf body;
	char content_type[128];
	char faas_headers[512]; /* "X-Faas-…: v\n" lines */
	/* http_stream: a 200 answer's lines go to on_line as they come
	 * (the body keeps only a partial line); *stop ends the transfer. */
	int (*on_line)(const char *line, size_t len, void *ud);
	void *line_ud;
	volatile sig_atomic_t *stop;
	bool streaming; /* the status line said 200 */
	bool quiet;     /* no message when faasd cannot be reached */
	bool upload_progress;
};

/*
 * http_call - method url_path (absolute path on the server) with an optional
 * body.  extra_headers is NULL-terminated "Name: value".  Returns 0 when an
 * HTTP response arrived (any status), -1 after printing why the server could
 * not be reached.
 */
int http_call(struct cli *c, const char *method, const char *path, const char *ctype,
	      const void *body, size_t len, const char *const *extra_headers, bool progress,
	      struct http_resp *out);
void http_resp_free(struct http_resp *r);
/*
 * http_stream - GET path and hand each line of a 200 answer to on_line as
 * it arrives (a non-zero return, or *stop set, ends it early).  Returns 0
 * when the answer ended or was ended (out->status says what it was; the
 * body of a non-200 answer is in out->body), -1 when faasd could not be
 * reached or the connection broke (nothing printed).
 */
int http_stream(struct cli *c, const char *path, int (*on_line)(const char *, size_t, void *),
		void *ud, volatile sig_atomic_t *stop, struct http_resp *out);

/* Request + JSON decode; prints server errors.  Returns 0 (2xx, *out set),
 * EXIT_SERVER on any failure. */
int api_json(struct cli *c, const char *method, const char *path, json_t *body, json_t **out);

/*
 * tenant_api - api_json() on "/v1/tenants/TENANT" + the formatted suffix,
 * where TENANT is the one commands act on (cli_tenant).  Same returns.
 */
int tenant_api(struct cli *c, const char *method, json_t *body, json_t **out, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Print the server's error (JSON error shape or raw) to stderr. */
void print_http_error(const struct http_resp *r);

/* The tenant commands act on: fails with a message when unknown. */
int cli_tenant(struct cli *c);

/* Save url/token/tenant to the config file (0600). */
int cli_save(struct cli *c);

/* pack.c: deterministic gzip tar of dir into out.  Entries sorted by path,
 * owner 0:0, mtime 0, modes 0644/0755, no gzip timestamp: the same tree
 * gives the same bytes.  ignore holds fnmatch patterns matched against the
 * relative path and each of its components.  0 or -errno with diag. */
int pack_dir(const char *dir, json_t *ignore, uint64_t max_bytes, struct buf *out, char *diag,
	     size_t n);
/* Lowercase hex sha256 of data. */
void sha256_hex(const void *data, size_t len, char out[65]);

/* Commands: each returns the process exit status. */
int cmd_login(struct cli *c, int argc, char **argv);
int cmd_whoami(struct cli *c, int argc, char **argv);
int cmd_tenant(struct cli *c, int argc, char **argv);
int cmd_key(struct cli *c, int argc, char **argv);
int cmd_deploy(struct cli *c, int argc, char **argv);
int cmd_list(struct cli *c, int argc, char **argv);
int cmd_info(struct cli *c, int argc, char **argv);
int cmd_versions(struct cli *c, int argc, char **argv);
int cmd_delete(struct cli *c, int argc, char **argv);
int cmd_invoke(struct cli *c, int argc, char **argv);
int cmd_alias(struct cli *c, int argc, char **argv);
int cmd_deployments(struct cli *c, int argc, char **argv);
int cmd_abort(struct cli *c, int argc, char **argv);
int cmd_rollback(struct cli *c, int argc, char **argv);
int cmd_logs(struct cli *c, int argc, char **argv);
int cmd_invocations(struct cli *c, int argc, char **argv);
int cmd_async(struct cli *c, int argc, char **argv);

/* cmd_deploy.c: start a deployment of fn's alias to version with the
 * options of "faasctl deploy" and, with wait, follow it to its end.
 * Returns the exit status (1 when it rolled back or was aborted). */
struct deploy_opts {
	const char *strategy;                  /* canonical text */
	double max_error_rate;                 /* percent; < 0: the server's default */
	long long min_invocations, max_p95_ms; /* 0: the server's default */
	bool wait;
};
int deploy_progressive(struct cli *c, const char *fn, const char *alias, long long version,
		       const struct deploy_opts *o);

/* Small argument helpers for commands. */
bool arg_is_help(const char *a);
/* For "--flag VALUE" at argv[*i]: returns VALUE and advances, or NULL after
 * printing "--flag needs a value". */
const char *arg_value(int argc, char **argv, int *i);
void print_json(json_t *j);

#endif
