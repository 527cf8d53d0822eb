/*
 * invoke.c - ANY /fn/{t}/{f}[:{q}][/{path}]: the gateway half of an
 * invocation.
 *
 * First call of a request: resolve tenant, function and version, check the
 * token (private functions), check the declared body size, open a memfd for
 * the body.  When the body is in: build the CGI environment, suspend the
 * HTTP connection, hand MSG_INVOKE (body memfd attached) to the least busy
 * worker.  The I/O thread receives MSG_INVOKE_DONE (stdout/stderr memfds
 * attached) and resumes the connection; invoke_respond() then parses the CGI
 * headers and serves the body straight from the memfd (sendfile, no copy).
 * HTTP threads never wait for a handler, so a slow function delays nobody.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fnconfig.h"
#include "gw.h"
#include "log.h"
#include "util.h"

int
invoke_resolve(struct req *q, const char *route_key, struct store_tenant *t, enum MHD_Result *ret)
{
	struct gw *g = q->gw;
	int r;

	r = rcache_resolve(g->routes, g->store, q->route.tenant, q->route.function,
			   q->route.version      ? NULL
			   : *q->route.qualifier ? q->route.qualifier
						 : "live",
			   q->route.version, route_key, t, &q->sr);
	if (r == -ENOENT) {
		/* Do not tell strangers which private functions exist. */
		if (api_authorize(q, q->route.tenant, SCOPE_INVOKE, ret) < 0)
			return -1;
		*ret = gw_error(q, 404, "function_not_found", "no function '%s%s%s' in tenant '%s'",
				q->route.function, *q->route.qualifier ? ":" : "",
				q->route.qualifier, q->route.tenant);
		return -1;
	}
	if (r < 0) {
		*ret = gw_errno(q, r, "cannot resolve the function");
		return -1;
	}
	if (!json_is_true(json_object_get(q->sr.config, "public")) &&
	    api_authorize(q, q->route.tenant, SCOPE_INVOKE, ret) < 0)
		return -1;
	return 0;
}

enum MHD_Result
invoke_begin(struct req *q, const char *method)
{
	struct gw *g = q->gw;
	struct store_tenant t;
	enum MHD_Result ret;
	const char *cl;

	(void)method;
	if (invoke_resolve(q, gw_header(q, "X-Faas-Route-Key"), &t, &ret) < 0)
		return ret;
	/* INVARIANT: an async runner's token never reaches a handler. */
	q->token_used = q->internal || (q->who.scope != SCOPE_NONE &&
					!json_is_true(json_object_get(q->sr.config, "public")));
	q->trigger = "http";
	if (q->internal) {
		const char *tr = gw_header(q, "X-Faas-Trigger");

		q->trigger = tr && strcmp(tr, "schedule") == 0 ? "schedule" : "async";
	}
	q->body_limit = atomic_load(&g->max_body);
	cl = gw_header(q, "Content-Length");
	if (cl) {
		uint64_t len;

		if (parse_u64(cl, 0, UINT64_MAX, &len) == 0 && len > q->body_limit) {
			if (gw_body_too_large(q, len, &ret))
				return ret;
			return MHD_YES;
		}
	}
	q->hx.on = fnconfig_runtime(json_string_value(json_object_get(q->sr.config, "runtime"))) !=
		   RUNTIME_EXEC;
	q->hx.tenant_max = t.max_instances;
	if (!q->hx.on) {
		/* exec: the body becomes the handler's stdin as it is.  Hot
		 * runtimes collect it in memory (req.body) to write it to the
		 * instance's socket. */
		q->body_fd = memfd_create("faas-body", MFD_CLOEXEC);
		if (q->body_fd < 0)
			return gw_errno(q, -errno, "cannot buffer the request body");
	}
	q->uid = t.uid;
	q->tenant_id = t.id;
	q->net_host =
		strcmp(json_string_value(json_object_get(q->sr.config, "network")), "host") == 0;
	if (q->net_host && !t.allow_host_network)
		return gw_error(
			q, 403, "forbidden",
			"network 'host' is no longer allowed for tenant '%s'; redeploy with \"network\": \"none\"",
			t.name);
	return MHD_YES;
}

/* ---- environment ---- */

void
invoke_env_put(struct msg_out *m, const char *k, const char *v)
{
	size_t n = strlen(k) + strlen(v) + 2;
	char *s = malloc(n);

	if (!s) {
		if (!m->err)
			m->err = -ENOMEM;
		return;
	}
	snprintf(s, n, "%s=%s", k, v);
	msg_put_str(m, MSG_T_ENV, s);
	free(s);
}

void
invoke_env_function(struct msg_out *m, json_t *config)
{
	json_t *env = json_object_get(config, "env"), *v;
	const char *k;

	json_object_foreach (env, k, v)
		invoke_env_put(m, k, json_string_value(v));
	if (!json_object_get(env, "PATH"))
		invoke_env_put(m, "PATH", "/usr/local/bin:/usr/bin:/bin");
	if (!json_object_get(env, "HOME"))
		invoke_env_put(m, "HOME", "/tmp");
	if (!json_object_get(env, "LANG"))
		invoke_env_put(m, "LANG", "C.UTF-8");
}

static enum MHD_Result
header_env(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct req *q = cls;
	struct msg_out *m = q->scratch;
	char name[128] = "HTTP_";
	size_t o = 5;

	(void)kind;
	if (!value)
		return MHD_YES;
	if (strcasecmp(key, "Content-Type") == 0 || strcasecmp(key, "Content-Length") == 0)
		return MHD_YES;
	/* httpoxy: a "Proxy" header must never become HTTP_PROXY. */
	if (strcasecmp(key, "Proxy") == 0)
		return MHD_YES;
	if (q->token_used && strcasecmp(key, "Authorization") == 0)
		return MHD_YES;
	for (const char *p = key; *p; p++) {
		char c = *p;

		if (o >= sizeof(name) - 1)
			return MHD_YES;
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 32);
		else if (c == '-')
			c = '_';
		else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			return MHD_YES; /* names CGI cannot carry are dropped */
		name[o++] = c;
	}
	name[o] = 0;
	invoke_env_put(m, name, value);
	return MHD_YES;
}

void
invoke_client_addr(struct req *q, char addr[INET6_ADDRSTRLEN])
{
	const union MHD_ConnectionInfo *ci =
		q->fc ? NULL : MHD_get_connection_info(q->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = q->fc ? fast_peer(q) : ci ? ci->client_addr : NULL;

	addr[0] = 0;
	if (sa) {
		if (sa->sa_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, addr,
				  INET6_ADDRSTRLEN);
		else if (sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, addr,
				  INET6_ADDRSTRLEN);
	}
}

static void
build_env(struct req *q, struct msg_out *m)
{
	const char *ct, *query;
	char buf[256], addr[INET6_ADDRSTRLEN];

	invoke_env_function(m, q->sr.config);
	invoke_env_put(m, "GATEWAY_INTERFACE", "CGI/1.1");
	invoke_env_put(m, "SERVER_SOFTWARE", "faasd");
	invoke_env_put(m, "SERVER_PROTOCOL", q->version ? q->version : "HTTP/1.1");
	invoke_env_put(m, "REQUEST_METHOD", q->method);
	invoke_env_put(m, "REQUEST_URI", q->uri ? q->uri : "");
	invoke_env_put(m, "PATH_INFO", *q->route.rest ? q->route.rest : "/");
	(void)str_printf(buf, sizeof(buf), "/fn/%s/%s%s%s", q->route.tenant, q->route.function,
			 *q->route.qualifier ? ":" : "", q->route.qualifier);
	invoke_env_put(m, "SCRIPT_NAME", buf);
	query = q->uri ? strchr(q->uri, '?') : NULL;
	invoke_env_put(m, "QUERY_STRING", query ? query + 1 : "");
	ct = gw_header(q, "Content-Type");
	if (ct)
		invoke_env_put(m, "CONTENT_TYPE", ct);
	(void)str_printf(buf, sizeof(buf), "%llu", (unsigned long long)q->received);
	invoke_env_put(m, "CONTENT_LENGTH", buf);
	invoke_client_addr(q, addr);
	invoke_env_put(m, "REMOTE_ADDR", addr);
	q->scratch = m;
	gw_headers_each(q, header_env, q);
	q->scratch = NULL;
	invoke_env_put(m, "FAAS_TENANT", q->route.tenant);
	invoke_env_put(m, "FAAS_FUNCTION_NAME", q->route.function);
	(void)str_printf(buf, sizeof(buf), "%lld", (long long)q->sr.version);
	invoke_env_put(m, "FAAS_FUNCTION_VERSION", buf);
	invoke_env_put(m, "FAAS_INVOCATION_ID", q->invocation_id);
	(void)str_printf(buf, sizeof(buf), "%lld",
			 (long long)json_integer_value(json_object_get(q->sr.config, "memory_mb")));
	invoke_env_put(m, "FAAS_MEMORY_MB", buf);
	(void)str_printf(buf, sizeof(buf), "%lld",
			 (long long)json_integer_value(json_object_get(q->sr.config, "timeout_s")));
	invoke_env_put(m, "FAAS_TIMEOUT_S", buf);
}

/* A UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then 74
 * random bits: time-ordered, unguessable, and it says when its invocation
 * started (ms, the millisecond of started_wall_us), which is how the
 * store finds its record without an index on ids. */
void
invoke_make_id(char out[40], uint64_t ms)
{
	uint8_t b[16];

	unique_bytes(b, sizeof(b));
	for (int i = 0; i < 6; i++)
		b[i] = (uint8_t)(ms >> (40 - 8 * i));
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x70); /* version 7 */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* variant 10 */
	uuid_format(b, out);
}

enum MHD_Result
invoke_dispatch(struct req *q, const char *method)
{
	struct gw *g = q->gw;
	struct msg_out m;
	char code_dir[PATH_MAX];
	const char *handler = json_string_value(json_object_get(q->sr.config, "handler"));
	int r, best = -1;

	if (q->too_large)
		return gw_error(q, 413, "payload_too_large",
				"request body exceeds the limit of %zu bytes", q->body_limit);
	if (atomic_load(&g->draining))
		return gw_error(q, 503, "shutting_down", "faasd is shutting down; retry elsewhere");
	q->method = method;
	/* One clock reading for both: the store finds a record by the
	 * millisecond its id carries (schema 006). */
	q->started_wall_us = (int64_t)now_wall_us();
	invoke_make_id(q->invocation_id, (uint64_t)q->started_wall_us / 1000);
	if (q->hx.on)
		return hot_dispatch(q);
	(void)str_printf(code_dir, sizeof(code_dir), "%s/code/%s/%s", g->cfg.state_dir,
			 q->route.tenant, q->sr.code_sha256);
	msg_out_init(&m, MSG_INVOKE);
	msg_put_str(&m, MSG_T_INVOCATION_ID, q->invocation_id);
	msg_put_str(&m, MSG_T_TENANT, q->route.tenant);
	msg_put_str(&m, MSG_T_FUNCTION, q->route.function);
	msg_put_u64(&m, MSG_T_VERSION, (uint64_t)q->sr.version);
	msg_put_u64(&m, MSG_T_UID, q->uid);
	msg_put_str(&m, MSG_T_CODE_DIR, code_dir);
	msg_put_u64(&m, MSG_T_RUNTIME,
		    (uint64_t)fnconfig_runtime(
			    json_string_value(json_object_get(q->sr.config, "runtime"))));
	msg_put_str(&m, MSG_T_HANDLER, handler ? handler : "");
	msg_put_u64(&m, MSG_T_TIMEOUT_MS,
		    (uint64_t)json_integer_value(json_object_get(q->sr.config, "timeout_s")) *
			    1000);
	msg_put_u64(&m, MSG_T_MEMORY_MB,
		    (uint64_t)json_integer_value(json_object_get(q->sr.config, "memory_mb")));
	msg_put_u64(&m, MSG_T_MAX_OUTPUT, g->cfg.max_output_bytes);
	msg_put_u64(&m, MSG_T_NETWORK_HOST, q->net_host);
	msg_put_u64(&m, MSG_T_MAX_LOG, g->cfg.max_log_bytes);
	build_env(q, &m);
	msg_put_u64(&m, MSG_T_HAS_BODY, 1);
	msg_put_fd(&m, q->body_fd);

	pthread_mutex_lock(&g->lock);
	for (unsigned i = 0; i < g->nworkers; i++)
		if (g->workers[i].fd >= 0 &&
		    (best < 0 || g->workers[i].inflight < g->workers[best].inflight))
			best = (int)i;
	if (best < 0) {
		pthread_mutex_unlock(&g->lock);
		msg_out_free(&m);
		return gw_error(q, 503, "unavailable", "no worker is running; retry shortly");
	}
	q->id = ++g->next_id;
	msg_put_u64(&m, MSG_T_ID, q->id);
	q->worker = (unsigned)best;
	q->started_us = now_mono_us();
	/* Suspend before sending: the reply may come back at once. */
	MHD_suspend_connection(q->conn);
	q->suspended = true;
	r = msg_send(g->workers[best].fd, &m);
	if (r == 0) {
		g->workers[best].inflight++;
		q->next = g->pending;
		g->pending = q;
	}
	pthread_mutex_unlock(&g->lock);
	msg_out_free(&m);
	if (r < 0) {
		log_err("sending invocation to worker %d failed: %s", best, strerror(-r));
		q->suspended = false;
		gw_resume(q);
		return gw_errno(q, r == -EMSGSIZE ? -E2BIG : -EBUSY,
				r == -EMSGSIZE ? "request headers too large"
					       : "worker unavailable; retry shortly");
	}
	return MHD_YES;
}

/* Remove q from the pending list; caller holds g->lock. */
static void
pending_unlink(struct gw *g, struct req *q)
{
	for (struct req **pp = &g->pending; *pp; pp = &(*pp)->next)
		if (*pp == q) {
			*pp = q->next;
			q->next = NULL;
			return;
		}
}

void
invoke_complete(struct gw *g, unsigned worker, struct msg_invoke_done *d)
{
	struct req *q;

	pthread_mutex_lock(&g->lock);
	for (q = g->pending; q; q = q->next)
		if (q->id == d->id && q->worker == worker)
			break;
	if (!q) {
		pthread_mutex_unlock(&g->lock);
		/* A reply to a request we no longer know (gateway restarted). */
		if (d->stdout_fd >= 0)
			close(d->stdout_fd);
		if (d->stderr_fd >= 0)
			close(d->stderr_fd);
		return;
	}
	pending_unlink(g, q);
	if (g->workers[worker].inflight)
		g->workers[worker].inflight--;
	q->done = *d;
	q->answered = true;
	q->suspended = false;
	gw_resume(q);
	pthread_mutex_unlock(&g->lock);
}

void
invoke_fail_worker(struct gw *g, unsigned worker)
{
	pthread_mutex_lock(&g->lock);
	for (struct req **pp = &g->pending; *pp;) {
		struct req *q = *pp;

		if (q->worker != worker) {
			pp = &q->next;
			continue;
		}
		*pp = q->next;
		q->next = NULL;
		memset(&q->done, 0, sizeof(q->done));
		q->done.result = INVOKE_REJECTED;
		q->done.code = ECONNRESET;
		q->done.stdout_fd = q->done.stderr_fd = -1;
		q->answered = true;
		q->suspended = false;
		gw_resume(q);
	}
	g->workers[worker].inflight = 0;
	pthread_mutex_unlock(&g->lock);
}

static const char *
status_word(const struct msg_invoke_done *d, unsigned http)
{
	if (d->result == INVOKE_TIMEOUT)
		return "timeout";
	if (d->result == INVOKE_OOM)
		return "oom";
	if (http >= 500 && http != 503)
		return "error";
	return "ok";
}

/* Up to max bytes of what fd holds (a memfd the worker filled), or NULL. */
static char *
read_log(int fd, size_t max, size_t *len)
{
	struct stat st;
	char *buf;
	ssize_t n;

	*len = 0;
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size <= 0)
		return NULL;
	buf = malloc(MIN((size_t)st.st_size, max));
	if (!buf)
		return NULL;
	n = pread(fd, buf, MIN((size_t)st.st_size, max), 0);
	if (n <= 0) {
		free(buf);
		return NULL;
	}
	*len = (size_t)n;
	return buf;
}

/* The record of q's invocation, to the writer (records.c). */
static void
record_submit(struct req *q, unsigned http, const char *status, uint64_t dur_us, uint64_t init_us,
	      uint64_t peak_kb, int64_t mem_mb)
{
	struct gw *g = q->gw;
	struct store_record r = { 0 };
	size_t cap = g->cfg.max_log_bytes;

	if (!g->records)
		return; /* records = off: build nothing, read no log */
	(void)str_copy(r.id, sizeof(r.id), q->invocation_id);
	r.tenant_id = q->tenant_id;
	(void)str_copy(r.function, sizeof(r.function), q->route.function);
	r.version = q->sr.version;
	if (!q->route.version)
		(void)str_copy(r.alias, sizeof(r.alias),
			       *q->route.qualifier ? q->route.qualifier : "live");
	r.trigger = q->trigger ? q->trigger : "http";
	r.started_us = q->started_wall_us ? q->started_wall_us : (int64_t)now_wall_us();
	r.duration_us = dur_us;
	r.init_us = init_us;
	r.billed_ms = (dur_us + 999) / 1000;
	r.status = status;
	r.http_status = http;
	r.cold = !q->hx.on || q->hx.cold;
	r.mem_peak_kb = peak_kb;
	r.mem_limit_mb = (uint64_t)mem_mb;
	r.request_bytes = q->received;
	r.response_bytes = q->resp_bytes;
	if (q->err_code) {
		(void)str_copy(r.error_code, sizeof(r.error_code), q->err_code);
		r.error_message = q->err_msg ? strdup(q->err_msg) : NULL;
	}
	if (!q->hx.on) {
		r.err = read_log(q->err_fd, cap, &r.err_len);
		r.log_truncated = (unsigned)(q->done.truncated & 2);
	} else {
		/* What the instance wrote (hot.c took it from its pipes);
		 * a runtime's uncaught error is in its stderr. */
		r.out = TAKE_PTR(q->hx.log[0]);
		r.out_len = q->hx.log_len[0];
		r.err = TAKE_PTR(q->hx.log[1]);
		r.err_len = q->hx.log_len[1];
		r.log_truncated = q->hx.log_trunc;
	}
	records_submit(g, &r);
}

void
invoke_report(struct req *q, unsigned http, const char *status, uint64_t dur_us, uint64_t init_us,
	      uint64_t peak_kb)
{
	int64_t mem_mb = json_integer_value(json_object_get(q->sr.config, "memory_mb"));

	if (q->gw->cfg.report_log)
		log_info("REPORT id=%s fn=%s/%s v=%lld duration_ms=%.2f billed_ms=%llu "
			 "init_ms=%.2f mem_peak_mb=%llu mem_mb=%lld status=%s http=%u",
			 q->invocation_id, q->route.tenant, q->route.function,
			 (long long)q->sr.version, (double)dur_us / 1000.0,
			 (unsigned long long)((dur_us + 999) / 1000), (double)init_us / 1000.0,
			 (unsigned long long)((peak_kb + 1023) / 1024), (long long)mem_mb, status,
			 http);
	record_submit(q, http, status, dur_us, init_us, peak_kb, mem_mb);
	metrics_invocation(q->gw, q->route.tenant, q->route.function, q->sr.version, status, dur_us,
			   !q->hx.on || q->hx.cold);
	deploy_observe(q->gw, q->route.tenant, q->route.function, q->sr.version, http, status,
		       dur_us);
}

void
invoke_faas_headers(struct req *q, struct gw_ans *a, bool cold, uint64_t dur_us)
{
	char buf[32];

	gw_ans_header(a, "X-Faas-Invocation-Id", q->invocation_id);
	(void)str_u64(buf, (uint64_t)q->sr.version, 0); /* versions are >= 1 */
	gw_ans_header(a, "X-Faas-Version", buf);
	gw_ans_header(a, "X-Faas-Cold", cold ? "1" : "0");
	(void)str_ms3(buf, dur_us);
	gw_ans_header(a, "X-Faas-Duration-Ms", buf);
}

/* Every invocation failure answers like this: the error object with the
 * invocation id (and the runtime's error details, if any), X-Faas-*, and
 * Retry-After for a throttled one. */
enum MHD_Result
invoke_fail(struct req *q, unsigned status, const char *code, const char *msg, const char *details)
{
	json_t *body = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", code, "message", msg,
				 "invocation_id", q->invocation_id);
	char *text;
	struct gw_ans a;

	if (details) {
		json_error_t je;
		json_t *d = json_loads(details, 0, &je);

		if (d)
			json_object_set_new(json_object_get(body, "error"), "details", d);
	}
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	q->err_code = code;
	q->err_msg = msg;
	q->resp_bytes = text ? strlen(text) : 0;
	invoke_report(q, status,
		      status == 429 ? "throttled"
		      : q->hx.on    ? (status == 504                                 ? "timeout"
				       : strcmp(code, "function_out_of_memory") == 0 ? "oom"
				       : status >= 500 && status != 503              ? "error"
										     : "ok")
				    : status_word(&q->done, status),
		      q->done.duration_us, q->hx.init_us, q->done.maxrss_kb);
	if (!text)
		return MHD_NO;
	if (gw_ans_buffer(&a, q, strlen(text), text, free, text) < 0) {
		free(text);
		return MHD_NO;
	}
	gw_ans_header(&a, "Content-Type", "application/json");
	if (status == 429)
		gw_ans_header(&a, "Retry-After", "1");
	invoke_faas_headers(q, &a, !q->hx.on || q->hx.cold, q->done.duration_us);
	return gw_ans_queue(&a, status);
}

static enum MHD_Result
fail(struct req *q, unsigned status, const char *code, const char *msg)
{
	return invoke_fail(q, status, code, msg, NULL);
}

bool
invoke_header_passes(const char *name)
{
	static const char *const drop[] = {
		"Connection",
		"Transfer-Encoding",
		"Content-Length",
		"Keep-Alive",
		"Upgrade",
		"Trailer",
		"TE",
		"Date",
	};

	if (strncasecmp(name, "X-Faas-", 7) == 0 || strncasecmp(name, "Proxy-", 6) == 0)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(drop); i++)
		if (strcasecmp(name, drop[i]) == 0)
			return false;
	return true;
}

enum MHD_Result
invoke_respond(struct req *q)
{
	struct msg_invoke_done *d = &q->done;
	char msg[300], head[16384], diag[160];
	struct cgi_resp cgi;
	struct gw_ans a = { .q = q };
	struct stat st;
	ssize_t n;

	if (q->hx.on)
		return hot_respond(q);
	q->out_fd = TAKE_FD(d->stdout_fd);
	q->err_fd = TAKE_FD(d->stderr_fd);
	switch (d->result) {
	case INVOKE_TIMEOUT:
		(void)str_printf(
			msg, sizeof(msg), "function did not finish within %lld s",
			(long long)json_integer_value(json_object_get(q->sr.config, "timeout_s")));
		return fail(q, 504, "function_timeout", msg);
	case INVOKE_OOM:
		(void)str_printf(
			msg, sizeof(msg),
			"function exceeded its memory limit of %lld MB and was killed",
			(long long)json_integer_value(json_object_get(q->sr.config, "memory_mb")));
		return fail(q, 502, "function_out_of_memory", msg);
	case INVOKE_SPAWN_FAILED:
		(void)str_printf(msg, sizeof(msg), "could not start the handler: %s",
				 strerror((int)d->code));
		return fail(q, 502, "function_error", msg);
	case INVOKE_REJECTED:
		(void)str_printf(msg, sizeof(msg), "the worker could not run this invocation: %s",
				 strerror((int)d->code));
		return fail(q, 503, "unavailable", msg);
	case INVOKE_SIGNALED:
		(void)str_printf(msg, sizeof(msg), "handler was killed by signal %llu (%s)",
				 (unsigned long long)d->code, strsignal((int)d->code));
		return fail(q, 502, "function_error", msg);
	default:
		break;
	}
	if (d->truncated & 1) {
		(void)str_printf(msg, sizeof(msg), "handler wrote more than %llu bytes of output",
				 (unsigned long long)q->gw->cfg.max_output_bytes);
		return fail(q, 502, "function_error", msg);
	}
	if (q->out_fd < 0 || fstat(q->out_fd, &st) < 0)
		return fail(q, 502, "function_error", "handler output is missing");
	if (st.st_size == 0 && d->code != 0) {
		(void)str_printf(msg, sizeof(msg), "handler exited with status %llu and no output",
				 (unsigned long long)d->code);
		return fail(q, 502, "function_error", msg);
	}
	n = pread(q->out_fd, head, sizeof(head), 0);
	if (n < 0)
		return fail(q, 502, "function_error", "cannot read handler output");
	if (cgi_parse(head, (size_t)n, &cgi, diag, sizeof(diag)) < 0)
		return fail(q, 502, "function_error", diag);
	/* exec is never served by the fast path (fast.c hands it on). */
	a.mhd = MHD_create_response_from_fd_at_offset64((uint64_t)st.st_size - cgi.body_offset,
							q->out_fd, cgi.body_offset);
	if (!a.mhd)
		return MHD_NO;
	q->out_fd = -1; /* the response owns it now */
	for (unsigned i = 0; i < cgi.nheaders; i++)
		if (invoke_header_passes(cgi.headers[i].name))
			gw_ans_header(&a, cgi.headers[i].name, cgi.headers[i].value);
	if (!cgi.has_content_type)
		gw_ans_header(&a, "Content-Type", "text/plain; charset=utf-8");
	invoke_faas_headers(q, &a, true, q->done.duration_us);
	q->resp_bytes = (uint64_t)st.st_size - cgi.body_offset;
	invoke_report(q, cgi.status, cgi.status >= 500 ? "error" : "ok", q->done.duration_us, 0,
		      q->done.maxrss_kb);
	return gw_ans_queue(&a, cgi.status);
}
