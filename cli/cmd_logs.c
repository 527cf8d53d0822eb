/*
 * cmd_logs.c - faasctl logs, invocations and invocations show (SPEC §9):
 * reading invocation records and their logs (SPEC §7) from the API.
 *
 * "logs --follow" reads faasd's stream of new lines (logs?follow=1); when
 * the stream breaks (faasd restarts), it reconnects after the seq of the
 * last line it printed, so nothing is printed twice or skipped.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "names.h"
#include "util.h"

/* Percent-encode s for a query string into out.  0, or -1 when too long. */
static int
query_escape(const char *s, char *out, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			     (ch >= '0' && ch <= '9') || strchr("-._~:", ch);

		if (o + 4 > n)
			return -1;
		if (plain)
			out[o++] = (char)ch;
		else {
			out[o++] = '%';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = 0;
	return 0;
}

/* Append "&key=escaped value" to q. */
static int
query_add(char *q, size_t n, const char *key, const char *value)
{
	char esc[256];
	size_t len = strlen(q);

	if (query_escape(value, esc, sizeof(esc)) < 0)
		return -1;
	return str_printf(q + len, n - len, "%s%s=%s", len ? "&" : "?", key, esc);
}

static void
print_line(struct cli *c, json_t *l)
{
	if (c->json) {
		char *s = json_dumps(l, JSON_COMPACT | JSON_SORT_KEYS);

		if (s)
			printf("%s\n", s);
		free(s);
	} else
		printf("%s  %s  %s\n", json_string_value(json_object_get(l, "time")),
		       json_string_value(json_object_get(l, "invocation_id")),
		       json_string_value(json_object_get(l, "text")));
}

static volatile sig_atomic_t stop_following;

static void
on_int(int sig)
{
	(void)sig;
	stop_following = 1;
}

struct follow {
	struct cli *c;
	long long cursor; /* seq of the last line printed, -1 none */
	bool bad;         /* the server sent what is not a line object */
};

static int
follow_line(const char *line, size_t len, void *ud)
{
	struct follow *f = ud;
	json_t *l;

	if (!len)
		return 0; /* keep-alive */
	l = json_loadb(line, len, 0, NULL);
	if (!l) {
		fprintf(stderr, "faasctl logs: the server sent a line that is not JSON\n");
		f->bad = true;
		return 1;
	}
	print_line(f->c, l);
	fflush(stdout);
	f->cursor = (long long)json_integer_value(json_object_get(l, "seq"));
	json_decref(l);
	return 0;
}

/* Until interrupted: the stream, again from the cursor after a break. */
static int
follow_logs(struct cli *c, const char *fn, const char *since)
{
	struct follow f = { .c = c, .cursor = -1 };
	bool lost = false;

	if (cli_tenant(c) < 0)
		return EXIT_SERVER;
	signal(SIGINT, on_int);
	while (!stop_following) {
		char path[800], query[400] = "", cur[32];
		struct http_resp r;
		int rc;

		if (f.cursor >= 0) {
			(void)str_printf(cur, sizeof(cur), "seq:%lld", f.cursor);
			rc = query_add(query, sizeof(query), "since", cur);
		} else
			rc = since ? query_add(query, sizeof(query), "since", since) : 0;
		if (rc < 0 || query_add(query, sizeof(query), "follow", "1") < 0 ||
		    str_printf(path, sizeof(path), "/v1/tenants/%s/functions/%s/logs%s", c->tenant,
			       fn, query) < 0) {
			fprintf(stderr, "faasctl logs: --since value too long\n");
			return EXIT_USAGE;
		}
		rc = http_stream(c, path, follow_line, &f, &stop_following, &r);
		if (rc == 0 && r.status != 200) {
			print_http_error(&r);
			http_resp_free(&r);
			return EXIT_SERVER;
		}
		http_resp_free(&r);
		if (f.bad)
			return EXIT_SERVER;
		if (stop_following)
			break;
		if (!lost)
			fprintf(stderr, "faasctl logs: the stream from %s ended; reconnecting\n",
				c->url);
		lost = true;
		{
			struct timespec ts = { 1, 0 };

			nanosleep(&ts, NULL);
		}
		if (rc == 0)
			lost = false; /* it was up: say so again next time */
	}
	return 0;
}

int
cmd_logs(struct cli *c, int argc, char **argv)
{
	const char *since = NULL;
	bool follow = false;
	long long cursor = -1;
	int r;

	if (argc < 2 || arg_is_help(argv[1])) {
		printf("Usage: faasctl logs FN [--since WHEN] [--follow]\n\n"
		       "Prints the log lines of FN's invocations (the handler's stderr, and stdout\n"
		       "of hot runtimes), oldest first.  WHEN is a duration back from now (90s, 10m,\n"
		       "2h, 7d), an ISO 8601 UTC time or Unix seconds; --follow keeps printing new\n"
		       "lines until interrupted.\n");
		return argc < 2 ? EXIT_USAGE : 0;
	}
	if (!name_valid(argv[1])) {
		fprintf(stderr, "faasctl logs: '%s' is not a valid function name\n", argv[1]);
		return EXIT_USAGE;
	}
	for (int k = 2; k < argc; k++) {
		if (strcmp(argv[k], "--follow") == 0 || strcmp(argv[k], "-f") == 0)
			follow = true;
		else if (strcmp(argv[k], "--since") == 0) {
			if (!(since = arg_value(argc, argv, &k)))
				return EXIT_USAGE;
		} else {
			fprintf(stderr, "faasctl logs: unknown argument '%s'\n", argv[k]);
			return EXIT_USAGE;
		}
	}
	if (follow)
		return follow_logs(c, argv[1], since);
	/* Pages of lines after the cursor of the last, until none is left. */
	for (;;) {
		char query[400] = "", cur[32];
		json_t *out = NULL, *lines, *l;
		size_t i;

		if (cursor >= 0) {
			(void)str_printf(cur, sizeof(cur), "seq:%lld", cursor);
			r = query_add(query, sizeof(query), "since", cur);
		} else
			r = since ? query_add(query, sizeof(query), "since", since) : 0;
		if (r < 0 || query_add(query, sizeof(query), "limit", "1000") < 0) {
			fprintf(stderr, "faasctl logs: --since value too long\n");
			return EXIT_USAGE;
		}
		r = tenant_api(c, "GET", NULL, &out, "/functions/%s/logs%s", argv[1], query);
		if (r)
			return r;
		lines = json_object_get(out, "lines");
		json_array_foreach (lines, i, l)
			print_line(c, l);
		fflush(stdout);
		cursor = (long long)json_integer_value(json_object_get(out, "cursor"));
		i = json_array_size(lines);
		json_decref(out);
		if (i == 0)
			return 0;
	}
}

static void
invocation_line(json_t *v)
{
	printf("%-36s %-16s %-4lld %-9s %-4lld %-4s %10.2f  %s\n",
	       json_string_value(json_object_get(v, "id")),
	       json_string_value(json_object_get(v, "function")),
	       (long long)json_integer_value(json_object_get(v, "version")),
	       json_string_value(json_object_get(v, "status")),
	       (long long)json_integer_value(json_object_get(v, "http_status")),
	       json_is_true(json_object_get(v, "cold")) ? "cold" : "warm",
	       json_real_value(json_object_get(v, "duration_ms")),
	       json_string_value(json_object_get(v, "started_at")));
}

/* A record: a summary like Lambda's REPORT line, then its logs. */
static void
show_record(json_t *v)
{
	json_t *err, *logs;
	const char *alias;

	alias = json_string_value(json_object_get(v, "alias"));
	printf("Invocation %s\n", json_string_value(json_object_get(v, "id")));
	printf("  function   %s/%s version %lld%s%s (%s)\n",
	       json_string_value(json_object_get(v, "tenant")),
	       json_string_value(json_object_get(v, "function")),
	       (long long)json_integer_value(json_object_get(v, "version")),
	       alias ? " via alias " : "", alias ? alias : "",
	       json_string_value(json_object_get(v, "trigger")));
	printf("  started    %s\n", json_string_value(json_object_get(v, "started_at")));
	printf("  status     %s (HTTP %lld)%s\n", json_string_value(json_object_get(v, "status")),
	       (long long)json_integer_value(json_object_get(v, "http_status")),
	       json_is_true(json_object_get(v, "cold")) ? ", cold start" : ", warm");
	printf("  REPORT     duration_ms=%.2f billed_ms=%lld init_ms=%.2f mem_peak_mb=%lld "
	       "mem_mb=%lld\n",
	       json_real_value(json_object_get(v, "duration_ms")),
	       (long long)json_integer_value(json_object_get(v, "billed_ms")),
	       json_real_value(json_object_get(v, "init_ms")),
	       (long long)(json_integer_value(json_object_get(v, "mem_peak_kb")) + 1023) / 1024,
	       (long long)json_integer_value(json_object_get(v, "mem_limit_mb")));
	printf("  bytes      request %lld, response %lld\n",
	       (long long)json_integer_value(json_object_get(v, "request_bytes")),
	       (long long)json_integer_value(json_object_get(v, "response_bytes")));
	err = json_object_get(v, "error");
	if (json_is_object(err))
		printf("  error      %s: %s\n", json_string_value(json_object_get(err, "code")),
		       json_string_value(json_object_get(err, "message")));
	logs = json_object_get(v, "logs");
	for (int s = 0; s < 2; s++) {
		const char *name = s ? "stderr" : "stdout";
		const char *text = json_string_value(json_object_get(logs, name));
		size_t len = json_string_length(json_object_get(logs, name));

		if (!len)
			continue;
		printf("--- %s%s ---\n", name,
		       json_is_true(json_object_get(json_object_get(v, "truncated"), name))
			       ? " (truncated)"
			       : "");
		fwrite(text, 1, len, stdout);
		if (text[len - 1] != '\n')
			putchar('\n');
	}
}

/* An async invocation: where it stands, then its newest attempt's record. */
static void
show_async(json_t *v)
{
	json_t *a = json_object_get(v, "async"), *last = json_object_get(v, "last_attempt");
	const char *q = json_string_value(json_object_get(a, "qualifier"));
	const char *next = json_string_value(json_object_get(a, "next_attempt_at"));
	const char *err = json_string_value(json_object_get(a, "last_error"));
	const char *cb = json_string_value(json_object_get(a, "callback_url"));

	printf("Async invocation %s (%s)\n", json_string_value(json_object_get(a, "id")),
	       json_string_value(json_object_get(a, "trigger")));
	printf("  function   %s/%s%s%s\n", json_string_value(json_object_get(a, "tenant")),
	       json_string_value(json_object_get(a, "function")), q ? ":" : "", q ? q : "");
	printf("  state      %s after %lld of %lld attempts%s%s\n",
	       json_string_value(json_object_get(a, "state")),
	       (long long)json_integer_value(json_object_get(a, "attempts")),
	       (long long)json_integer_value(json_object_get(a, "max_retries")) + 1,
	       next ? ", next at " : "", next ? next : "");
	printf("  queued     %s\n", json_string_value(json_object_get(a, "created_at")));
	if (err)
		printf("  last error %s\n", err);
	if (cb) {
		json_t *c = json_object_get(a, "callback");
		const char *ce = json_string_value(json_object_get(c, "error"));

		printf("  callback   %s: %s", cb,
		       ce                                                   ? ce
		       : json_is_integer(json_object_get(c, "http_status")) ? "HTTP "
									    : "not yet");
		if (!ce && json_is_integer(json_object_get(c, "http_status")))
			printf("%lld",
			       (long long)json_integer_value(json_object_get(c, "http_status")));
		putchar('\n');
	}
	if (json_is_object(last)) {
		printf("Newest attempt:\n");
		show_record(last);
	}
}

/* "invocations show ID": a record, or an async invocation's state. */
static int
show(struct cli *c, const char *id)
{
	json_t *v = NULL;
	int r;

	r = tenant_api(c, "GET", NULL, &v, "/invocations/%s", id);
	if (r)
		return r;
	if (c->json)
		print_json(v);
	else if (json_is_object(json_object_get(v, "async")))
		show_async(v);
	else
		show_record(v);
	json_decref(v);
	return 0;
}

int
cmd_invocations(struct cli *c, int argc, char **argv)
{
	char query[600] = "";
	const char *fn = NULL;
	json_t *out = NULL, *v;
	size_t i;
	int k = 1, r;

	if (argc >= 2 && arg_is_help(argv[1])) {
		printf("Usage: faasctl invocations [FN] [--status S] [--since WHEN] [--limit N]\n"
		       "       faasctl invocations show ID\n\n"
		       "Lists invocation records, newest first (S: ok, error, timeout, oom,\n"
		       "throttled), or shows one with its logs.\n");
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "show") == 0) {
		if (argc != 3) {
			fprintf(stderr, "faasctl invocations show: needs one invocation ID (the "
					"X-Faas-Invocation-Id of a response)\n");
			return EXIT_USAGE;
		}
		return show(c, argv[2]);
	}
	if (argc >= 2 && argv[1][0] != '-') {
		fn = argv[1];
		k = 2;
		if (!name_valid(fn)) {
			fprintf(stderr, "faasctl invocations: '%s' is not a valid function name\n",
				fn);
			return EXIT_USAGE;
		}
		(void)query_add(query, sizeof(query), "function", fn); /* a name always fits */
	}
	for (; k < argc; k++) {
		const char *flag = argv[k], *key, *val;

		if (strcmp(flag, "--status") == 0)
			key = "status";
		else if (strcmp(flag, "--limit") == 0)
			key = "limit";
		else if (strcmp(flag, "--since") == 0)
			key = "since";
		else {
			fprintf(stderr, "faasctl invocations: unknown argument '%s'\n", flag);
			return EXIT_USAGE;
		}
		if (!(val = arg_value(argc, argv, &k)))
			return EXIT_USAGE;
		if (strcmp(key, "status") == 0 &&
		    !str_oneof(val, "ok", "error", "timeout", "oom", "throttled", NULL)) {
			fprintf(stderr,
				"faasctl invocations: --status '%s' is not one of ok, error, "
				"timeout, oom, throttled\n",
				val);
			return EXIT_USAGE;
		}
		if (strcmp(key, "limit") == 0) {
			uint64_t n;

			if (parse_u64(val, 1, 1000, &n) < 0) {
				fprintf(stderr,
					"faasctl invocations: --limit needs a number from 1 to 1000\n");
				return EXIT_USAGE;
			}
		}
		if (query_add(query, sizeof(query), key, val) < 0) {
			fprintf(stderr, "faasctl invocations: %s value too long\n", flag);
			return EXIT_USAGE;
		}
	}
	r = tenant_api(c, "GET", NULL, &out, "/invocations%s", query);
	if (r)
		return r;
	if (c->json)
		print_json(out);
	else {
		printf("%-36s %-16s %-4s %-9s %-4s %-4s %10s  %s\n", "ID", "FUNCTION", "VER",
		       "STATUS", "HTTP", "", "DURATION", "STARTED");
		json_array_foreach (json_object_get(out, "invocations"), i, v)
			invocation_line(v);
	}
	json_decref(out);
	return 0;
}

/* "async [--state S] [--limit N]" lists the tenant's async invocations
 * (failed ones are the dead letter); "async redrive ID" queues a failed
 * one again (SPEC §8). */
int
cmd_async(struct cli *c, int argc, char **argv)
{
	char query[200] = "";
	json_t *out = NULL, *v;
	size_t i;
	int r;

	if (argc >= 2 && arg_is_help(argv[1])) {
		printf("Usage: faasctl async [--state S] [--limit N]\n"
		       "       faasctl async redrive ID\n\n"
		       "Lists the tenant's asynchronous and scheduled invocations, newest first\n"
		       "(S: queued, running, succeeded, failed; failed ones are the dead letter),\n"
		       "or queues a failed one again. 'faasctl invocations show ID' shows one.\n");
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "redrive") == 0) {
		if (argc != 3) {
			fprintf(stderr, "faasctl async redrive: needs one async invocation ID (as "
					"'faasctl async --state failed' lists them)\n");
			return EXIT_USAGE;
		}
		r = tenant_api(c, "POST", NULL, &out, "/async/%s/redrive", argv[2]);
		if (r)
			return r;
		if (c->json)
			print_json(out);
		else
			printf("%s queued again (state %s)\n", argv[2],
			       json_string_value(json_object_get(out, "state")));
		json_decref(out);
		return 0;
	}
	for (int k = 1; k < argc; k++) {
		const char *flag = argv[k], *val;
		uint64_t n;

		if (strcmp(flag, "--state") != 0 && strcmp(flag, "--limit") != 0) {
			fprintf(stderr, "faasctl async: unknown argument '%s'\n", flag);
			return EXIT_USAGE;
		}
		if (!(val = arg_value(argc, argv, &k)))
			return EXIT_USAGE;
		if (flag[2] == 's' &&
		    !str_oneof(val, "queued", "running", "succeeded", "failed", NULL)) {
			fprintf(stderr,
				"faasctl async: --state '%s' is not one of queued, running, "
				"succeeded, failed\n",
				val);
			return EXIT_USAGE;
		}
		if (flag[2] == 'l' && parse_u64(val, 1, 1000, &n) < 0) {
			fprintf(stderr, "faasctl async: --limit needs a number from 1 to 1000\n");
			return EXIT_USAGE;
		}
		(void)query_add(query, sizeof(query), flag + 2, val); /* both always fit */
	}
	r = tenant_api(c, "GET", NULL, &out, "/async%s", query);
	if (r)
		return r;
	if (c->json)
		print_json(out);
	else {
		printf("%-36s %-16s %-9s %-8s %-4s %-20s  %s\n", "ID", "FUNCTION", "STATE",
		       "TRIGGER", "TRY", "QUEUED", "LAST ERROR");
		json_array_foreach (json_object_get(out, "async_invocations"), i, v) {
			const char *err = json_string_value(json_object_get(v, "last_error"));

			printf("%-36s %-16s %-9s %-8s %lld/%-2lld %-20s  %s\n",
			       json_string_value(json_object_get(v, "id")),
			       json_string_value(json_object_get(v, "function")),
			       json_string_value(json_object_get(v, "state")),
			       json_string_value(json_object_get(v, "trigger")),
			       (long long)json_integer_value(json_object_get(v, "attempts")),
			       (long long)json_integer_value(json_object_get(v, "max_retries")) + 1,
			       json_string_value(json_object_get(v, "created_at")), err ? err : "");
		}
	}
	json_decref(out);
	return 0;
}
