/*
 * http.c - faasctl's HTTP client (libcurl): requests with the bearer token,
 * bodies collected in memory (or, streamed, handed over a line at a time),
 * X-Faas-* headers kept, upload progress on a terminal, and the JSON
 * helpers every command uses.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "util.h"

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct http_resp *r = ud;
	size_t n = size * nmemb, used = 0;
	char *nl;

	if (buf_append(&r->body, ptr, n) < 0)
		return 0;
	if (!r->on_line || !r->streaming)
		return n;
	/* Streamed: every complete line to on_line, the rest kept. */
	while ((nl = memchr(r->body.data + used, '\n', r->body.len - used))) {
		size_t len = (size_t)(nl - (r->body.data + used));

		if (r->on_line(r->body.data + used, len, r->line_ud) != 0)
			return 0; /* ends the transfer */
		used += len + 1;
	}
	memmove(r->body.data, r->body.data + used, r->body.len - used);
	r->body.len -= used;
	return n;
}

static size_t
on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct http_resp *r = ud;
	size_t n = size * nmemb, l;
	char line[600];

	l = MIN(n, sizeof(line) - 1);
	memcpy(line, ptr, l);
	line[l] = 0;
	while (l && (line[l - 1] == '\n' || line[l - 1] == '\r'))
		line[--l] = 0;
	if (strncmp(line, "HTTP/", 5) == 0) {
		const char *sp = strchr(line, ' ');

		r->streaming = sp && strncmp(sp + 1, "200", 3) == 0;
	} else if (strncasecmp(line, "Content-Type:", 13) == 0)
		(void)str_copy(r->content_type, sizeof(r->content_type), line + 14);
	else if (strncasecmp(line, "X-Faas-", 7) == 0) {
		size_t have = strlen(r->faas_headers);

		if (have + l + 2 < sizeof(r->faas_headers)) {
			memcpy(r->faas_headers + have, line, l);
			r->faas_headers[have + l] = '\n';
			r->faas_headers[have + l + 1] = 0;
		}
	}
	return n;
}

static int
on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	struct http_resp *r = ud;

	(void)dltotal;
	(void)dlnow;
	if (r->stop && *r->stop)
		return 1; /* abort */
	if (r->upload_progress && ultotal > 0)
		fprintf(stderr, "\ruploading %3d%% (%lld of %lld bytes)",
			(int)(ulnow * 100 / ultotal), (long long)ulnow, (long long)ultotal);
	return 0;
}

/* One request; what out asks for (streaming, quiet) is set by the caller. */
static int
perform(struct cli *c, const char *method, const char *path, const char *ctype, const void *body,
	size_t len, const char *const *extra_headers, struct http_resp *out)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	char url[2048], auth[200], ct[160];
	CURLcode rc;

	if (!h)
		return -1;
	if (str_printf(url, sizeof(url), "%s%s", c->url, path) < 0) {
		fprintf(stderr, "faasctl: URL too long\n");
		curl_easy_cleanup(h);
		return -1;
	}
	if (c->token[0]) {
		(void)str_printf(auth, sizeof(auth), "Authorization: Bearer %s", c->token);
		hdrs = curl_slist_append(hdrs, auth);
	}
	if (ctype) {
		(void)str_printf(ct, sizeof(ct), "Content-Type: %s", ctype);
		hdrs = curl_slist_append(hdrs, ct);
	}
	hdrs = curl_slist_append(hdrs, "Expect:");
	for (const char *const *e = extra_headers; e && *e; e++)
		hdrs = curl_slist_append(hdrs, *e);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, out);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "faasctl/0.1");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	else
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	if (out->upload_progress || out->stop) {
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, out);
	}
	rc = curl_easy_perform(h);
	if (out->upload_progress)
		fprintf(stderr, "\n");
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	/* A stream we ended ourselves (on_line, *stop) ended well. */
	if (out->on_line && out->status == 200 &&
	    (rc == CURLE_WRITE_ERROR || rc == CURLE_ABORTED_BY_CALLBACK))
		rc = CURLE_OK;
	if (rc != CURLE_OK && out->quiet) {
		buf_free(&out->body);
		return -1;
	}
	if (rc != CURLE_OK) {
		fprintf(stderr,
			"faasctl: cannot reach faasd at %s: %s\n"
			"  is faasd running?  Check the URL with 'faasctl login --url' or FAASCTL_URL.\n",
			c->url, curl_easy_strerror(rc));
		buf_free(&out->body);
		return -1;
	}
	return 0;
}

int
http_call(struct cli *c, const char *method, const char *path, const char *ctype, const void *body,
	  size_t len, const char *const *extra_headers, bool progress, struct http_resp *out)
{
	memset(out, 0, sizeof(*out));
	out->upload_progress = progress && c->tty;
	return perform(c, method, path, ctype, body, len, extra_headers, out);
}

int
http_stream(struct cli *c, const char *path, int (*on_line)(const char *, size_t, void *), void *ud,
	    volatile sig_atomic_t *stop, struct http_resp *out)
{
	memset(out, 0, sizeof(*out));
	out->on_line = on_line;
	out->line_ud = ud;
	out->stop = stop;
	out->quiet = true;
	return perform(c, "GET", path, NULL, NULL, 0, NULL, out);
}

void
http_resp_free(struct http_resp *r)
{
	buf_free(&r->body);
}

void
print_http_error(const struct http_resp *r)
{
	json_t *j = r->body.len ? json_loadb(r->body.data, r->body.len, 0, NULL) : NULL;
	json_t *e = json_object_get(j, "error");

	if (json_is_object(e))
		fprintf(stderr, "faasctl: %s (%s, HTTP %ld)\n",
			json_string_value(json_object_get(e, "message")),
			json_string_value(json_object_get(e, "code")), r->status);
	else
		fprintf(stderr, "faasctl: server answered HTTP %ld%s%.300s\n", r->status,
			r->body.len ? ": " : "", r->body.len ? r->body.data : "");
	if (r->status == 401)
		fprintf(stderr, "  log in again with 'faasctl login', or set FAASCTL_TOKEN.\n");
	json_decref(j);
}

int
api_json(struct cli *c, const char *method, const char *path, json_t *body, json_t **out)
{
	struct http_resp r;
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	int rc;

	rc = http_call(c, method, path, body ? "application/json" : NULL, text,
		       text ? strlen(text) : 0, NULL, false, &r);
	free(text);
	if (rc < 0)
		return EXIT_SERVER;
	if (r.status < 200 || r.status >= 300) {
		print_http_error(&r);
		http_resp_free(&r);
		return EXIT_SERVER;
	}
	*out = r.body.len ? json_loadb(r.body.data, r.body.len, 0, NULL) : json_object();
	http_resp_free(&r);
	if (!*out) {
		fprintf(stderr, "faasctl: the server's answer is not JSON\n");
		return EXIT_SERVER;
	}
	return 0;
}

int
tenant_api(struct cli *c, const char *method, json_t *body, json_t **out, const char *fmt, ...)
{
	char suffix[512], path[640];
	va_list ap;
	int n;

	if (cli_tenant(c) < 0)
		return EXIT_SERVER;
	va_start(ap, fmt);
	n = vsnprintf(suffix, sizeof(suffix), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(suffix) ||
	    str_printf(path, sizeof(path), "/v1/tenants/%s%s", c->tenant, suffix) < 0) {
		fprintf(stderr, "faasctl: request path too long\n");
		return EXIT_USAGE;
	}
	return api_json(c, method, path, body, out);
}
