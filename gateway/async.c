/*
 * async.c - the gateway's async runners (SPEC §8).
 *
 * POST /async/... queues a request durably (api_async.c, store/async.c).
 * A few runner threads claim due ones and run each as an ordinary
 * invocation: an HTTP request to this gateway's own listen address,
 * /fn/{t}/{f}[:{q}]{path}?{query}, carrying the runners' token, so that
 * routing, canary weights, hot instances, limits, metrics and the record
 * (trigger "async", or "schedule") are exactly those of a synchronous call.
 * Then the attempt settles the queue row: succeeded; or, on a function
 * error, timeout, out-of-memory or throttle, queued again after a backoff
 * (async_retry_delay_s, doubled each time) until async_retries retries are
 * spent, then failed (the dead letter).  A final result is POSTed to the
 * request's X-Callback-Url when it gave one.
 *
 * INVARIANT: the runners' token is random per gateway start, lives only in
 * this process's memory, is accepted only on /fn/ routes (gateway.c
 * authenticate), and is never forwarded to a handler (invoke_begin marks
 * such a request token_used).
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "gw.h"
#include "log.h"
#include "util.h"

#define ASYNC_MAX_RUNNERS    64
/* Beyond a function's longest timeout and its wait for an instance. */
#define ASYNC_CALL_TIMEOUT_S 1000L
#define CALLBACK_TIMEOUT_S   10L
#define PRUNE_EVERY_US       (3600ull * 1000000ull)
#define PRUNE_BATCH          500

struct gw_async;

/* One runner thread. */
struct runner {
	struct gw_async *a;
	unsigned index;
	/* The gateway has begun this runner's current request (its head was
	 * parsed): a stop lets it finish.  One it has not begun by then it
	 * never will (the loops stop accepting; a new connection would wait
	 * in the kernel's backlog), so the runner gives it up. */
	atomic_bool begun;
};

struct gw_async {
	struct gw *gw;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	atomic_uint busy; /* runners between a claim and its settling */
	unsigned nrunners;
	pthread_t threads[ASYNC_MAX_RUNNERS];
	struct runner runners[ASYNC_MAX_RUNNERS];
	char token[4 + 64 + 1]; /* "fsi_" + 64 hex digits */
	char base[96];          /* http://ADDR:PORT of the listen socket */
	uint64_t next_prune_us;
};

/* What one attempt's HTTP exchange gave. */
struct answer {
	long status;
	char invocation_id[40];
	char content_type[128];
	bool ran;   /* X-Faas-Version came back: the function was run */
	char *body; /* at most max bytes kept, for the callback */
	size_t len, cap, max;
};

void
async_begun(struct gw *g, const char *runner)
{
	uint64_t i;

	if (g->async && runner && parse_u64(runner, 0, g->async->nrunners - 1, &i) == 0)
		atomic_store(&g->async->runners[i].begun, true);
}

/* curl's progress callback: give up a request the gateway has not begun
 * once it drains. */
static int
on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct runner *rn = ud;

	(void)dt, (void)dn, (void)ut, (void)un;
	return atomic_load(&rn->a->gw->draining) && !atomic_load(&rn->begun);
}

bool
async_token_is(struct gw *g, const char *token)
{
	struct gw_async *a = g->async;
	size_t n = strlen(token);

	return a && n == strlen(a->token) && CRYPTO_memcmp(token, a->token, n) == 0;
}

void
async_kick(struct gw *g)
{
	struct gw_async *a = g->async;

	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

static size_t
on_body(char *p, size_t size, size_t n, void *ud)
{
	struct answer *an = ud;
	size_t len = size * n, keep = len;

	if (an->len + keep > an->max)
		keep = an->max - an->len;
	if (keep && an->len + keep > an->cap) {
		size_t cap = MAX(an->cap * 2, an->len + keep);
		char *nb = realloc(an->body, cap);

		if (!nb)
			return 0; /* fails the transfer */
		an->body = nb;
		an->cap = cap;
	}
	if (keep)
		memcpy(an->body + an->len, p, keep);
	an->len += keep;
	return len;
}

/* "Name: value\r\n" -> value without the line end, when the name matches. */
static bool
header_value(const char *line, size_t len, const char *name, char *out, size_t n)
{
	size_t k = strlen(name);

	if (len <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
		return false;
	line += k + 1;
	len -= k + 1;
	while (len && (*line == ' ' || *line == '\t'))
		line++, len--;
	while (len && (line[len - 1] == '\r' || line[len - 1] == '\n' || line[len - 1] == ' '))
		len--;
	if (len >= n)
		len = n - 1;
	memcpy(out, line, len);
	out[len] = 0;
	return true;
}

static size_t
on_header(char *p, size_t size, size_t n, void *ud)
{
	struct answer *an = ud;
	size_t len = size * n;
	char v[16];

	(void)header_value(p, len, "X-Faas-Invocation-Id", an->invocation_id,
			   sizeof(an->invocation_id));
	(void)header_value(p, len, "Content-Type", an->content_type, sizeof(an->content_type));
	if (header_value(p, len, "X-Faas-Version", v, sizeof(v)))
		an->ran = true;
	return len;
}

/* The stored headers ([[name, value], ...]) as a curl list, plus ours. */
static struct curl_slist *
request_headers(struct runner *rn, const struct store_async *job)
{
	struct gw_async *a = rn->a;
	struct curl_slist *h = NULL, *t;
	json_t *arr = json_loads(job->headers, 0, NULL), *pair;
	char line[8192];
	size_t i;

	json_array_foreach (arr, i, pair) {
		const char *k = json_string_value(json_array_get(pair, 0));
		const char *v = json_string_value(json_array_get(pair, 1));

		if (!k || !v || str_printf(line, sizeof(line), "%s: %s", k, v) < 0)
			continue;
		t = curl_slist_append(h, line);
		if (!t)
			goto fail;
		h = t;
	}
	json_decref(arr);
	arr = NULL;
	(void)str_printf(line, sizeof(line), "Authorization: Bearer %s", a->token);
	if (!(t = curl_slist_append(h, line)))
		goto fail;
	h = t;
	(void)str_printf(line, sizeof(line), "X-Faas-Trigger: %s",
			 strcmp(job->trigger, "schedule") == 0 ? "schedule" : "async");
	if (!(t = curl_slist_append(h, line)))
		goto fail;
	h = t;
	if (!(t = curl_slist_append(h, "Expect:"))) /* no 100-continue round trip */
		goto fail;
	h = t;
	(void)str_printf(line, sizeof(line), "X-Faas-Runner: %u", rn->index);
	if (!(t = curl_slist_append(h, line)))
		goto fail;
	return t;
fail:
	json_decref(arr);
	curl_slist_free_all(h);
	return NULL;
}

/* Run job once through the gateway.  0 with *an filled, or -errno with
 * err saying what failed (the gateway could not be reached). */
static int
attempt(struct runner *rn, CURL *c, const struct store_async *job, struct answer *an, char *err,
	size_t errn)
{
	struct gw_async *a = rn->a;
	/* The path and query are as long as the client's request line was. */
	size_t n = strlen(a->base) + strlen(job->tenant) + strlen(job->function) +
		   strlen(job->qualifier) + strlen(job->path) + strlen(job->query) + 16;
	char *url = malloc(n);
	struct curl_slist *h;
	CURLcode rc;

	h = url ? request_headers(rn, job) : NULL;
	if (!h) {
		free(url);
		(void)str_copy(err, errn, "out of memory");
		return -ENOMEM;
	}
	(void)str_printf(url, n, "%s/fn/%s/%s%s%s%s%s%s", a->base, job->tenant, job->function,
			 *job->qualifier ? ":" : "", job->qualifier, job->path,
			 *job->query ? "?" : "", job->query);
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, job->body_len ? job->body : "");
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)job->body_len);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, ASYNC_CALL_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, an);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, an);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, rn);
	atomic_store(&rn->begun, false);
	rc = curl_easy_perform(c);
	curl_slist_free_all(h);
	free(url);
	if (rc != CURLE_OK) {
		(void)str_printf(err, errn, "could not run it: %s", curl_easy_strerror(rc));
		return -EIO;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &an->status);
	return 0;
}

/* POST the final result to the job's callback URL; record what it got. */
static void
callback(struct gw_async *a, CURL *c, const struct store_async *job, const char *result,
	 const struct answer *an)
{
	struct curl_slist *h = NULL, *t;
	char line[256], err[CURL_ERROR_SIZE + 64] = "";
	long status = 0;
	CURLcode rc;

	(void)str_printf(line, sizeof(line), "X-Faas-Async-Id: %s", job->id);
	h = curl_slist_append(h, line);
	(void)str_printf(line, sizeof(line), "X-Faas-Async-Result: %s", result);
	if (h && (t = curl_slist_append(h, line)))
		h = t;
	(void)str_printf(line, sizeof(line), "X-Faas-Status: %ld", an->status);
	if (h && an->status && (t = curl_slist_append(h, line)))
		h = t;
	(void)str_printf(line, sizeof(line), "X-Faas-Invocation-Id: %s", an->invocation_id);
	if (h && *an->invocation_id && (t = curl_slist_append(h, line)))
		h = t;
	(void)str_printf(line, sizeof(line), "Content-Type: %s",
			 *an->content_type ? an->content_type : "application/octet-stream");
	if (h && (t = curl_slist_append(h, line)))
		h = t;
	if (h && (t = curl_slist_append(h, "Expect:")))
		h = t;
	if (!h) {
		(void)store_async_callback_done(a->gw->store, job->id, 0, "out of memory");
		return;
	}
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, job->callback_url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, an->len ? an->body : "");
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)an->len);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, CALLBACK_TIMEOUT_S);
	rc = curl_easy_perform(c);
	curl_slist_free_all(h);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	else
		(void)str_printf(err, sizeof(err), "%s", curl_easy_strerror(rc));
	if (rc != CURLE_OK)
		log_warn("async %s: callback to its X-Callback-Url failed: %s", job->id, err);
	else if (status >= 400)
		log_warn("async %s: callback to its X-Callback-Url got HTTP %ld", job->id, status);
	(void)store_async_callback_done(a->gw->store, job->id, (int)status, *err ? err : NULL);
}

/* Whether an attempt's answer calls for another attempt: the function
 * failed (5xx: error, timeout, out of memory) or was throttled (429); or
 * it was not run for a reason that passes (503: no worker, shutting down).
 * A function's own 4xx is its answer; the gateway's 4xx before running
 * it (function deleted, token, body too large) would fail again. */
static bool
worth_retry(const struct answer *an)
{
	return an->status == 429 || an->status >= 500;
}

static void
run(struct runner *rn, CURL *c, struct store_async *job)
{
	struct gw_async *a = rn->a;
	struct gw *g = a->gw;
	struct answer an = { .max = g->cfg.max_output_bytes };
	char err[512] = "", msg[600];
	const char *state;
	int64_t next = 0, now;
	int r;

	r = attempt(rn, c, job, &an, err, sizeof(err));
	now = (int64_t)now_wall_us();
	if ((r < 0 || an.status == 503) && atomic_load(&g->draining)) {
		/* Cut off by the stop: not an attempt; the next start runs it. */
		(void)store_async_release(g->store, job->id, now);
		atomic_fetch_sub(&a->busy, 1);
		free(an.body);
		return;
	}
	if (r < 0 || worth_retry(&an)) {
		if (r >= 0)
			(void)str_printf(err, sizeof(err), "HTTP %ld%s", an.status,
					 an.ran ? " from the function" : "");
		if (job->attempts <= job->max_retries) {
			uint64_t d = g->cfg.async_retry_delay_s * 1000000ull
				     << MIN(job->attempts - 1, 20u);

			state = "queued";
			next = now + (int64_t)d;
		} else
			state = "failed";
	} else if (an.ran || an.status < 400)
		state = "succeeded";
	else {
		state = "failed";
		(void)str_printf(err, sizeof(err), "HTTP %ld before the function ran", an.status);
	}
	if (an.status >= 400 && an.len && !an.ran) {
		/* the gateway's JSON error says why */
		(void)str_printf(msg, sizeof(msg), "%s: %.*s", err, (int)MIN(an.len, 400u),
				 an.body);
		(void)str_copy(err, sizeof(err), msg);
	}
	r = store_async_settle(g->store, job->id, state, next, an.invocation_id, (int)an.status,
			       *err ? err : NULL, now);
	atomic_fetch_sub(&a->busy, 1); /* a stop need not wait for the callback */
	if (r < 0)
		log_err("async %s: cannot settle it as %s: %s", job->id, state, strerror(-r));
	else if (strcmp(state, "succeeded") != 0)
		log_info("async %s (%s/%s): attempt %u %s: %s", job->id, job->tenant, job->function,
			 job->attempts,
			 strcmp(state, "failed") == 0 ? "failed, no retry left"
						      : "failed, retry queued",
			 err);
	if (r >= 0 && job->callback_url && strcmp(state, "queued") != 0)
		callback(a, c, job, state, &an);
	free(an.body);
}

static void
prune(struct gw_async *a)
{
	struct gw *g = a->gw;
	int64_t before = gw_retention_cutoff_us(g);
	int n;

	do
		n = store_async_prune(g->store, before, PRUNE_BATCH);
	while (n == PRUNE_BATCH && !a->stop);
	if (n < 0)
		log_warn("cannot prune async invocations: %s", strerror(-n));
}

/* Sleep until the monotonic time t or a kick. */
static void
wait_until(struct gw_async *a, uint64_t t)
{
	pthread_mutex_lock(&a->lock);
	if (!a->stop)
		cond_wait_mono(&a->cond, &a->lock, t);
	pthread_mutex_unlock(&a->lock);
}

static void *
runner_main(void *arg)
{
	struct runner *rn = arg;
	struct gw_async *a = rn->a;
	struct gw *g = a->gw;
	CURL *c = curl_easy_init();

	gw_thread_name("gw-async");
	if (!c) {
		log_err("async runner: cannot make an HTTP client; async invocations wait");
		return NULL;
	}
	for (;;) {
		struct store_async job;
		int64_t due = 0, now = (int64_t)now_wall_us();
		int r = 0;

		pthread_mutex_lock(&a->lock);
		bool stop = a->stop;
		bool prune_due = !stop && (uint64_t)now >= a->next_prune_us;

		if (prune_due)
			a->next_prune_us = (uint64_t)now + PRUNE_EVERY_US;
		pthread_mutex_unlock(&a->lock);
		if (stop)
			break;
		if (prune_due)
			prune(a);
		/* Counted before draining is looked at (both seq_cst): a
		 * drain that set it and then saw no runner busy cannot miss a
		 * claim made meanwhile. */
		atomic_fetch_add(&a->busy, 1);
		/* The claim is an UPDATE, which takes the database's write
		 * lock even when nothing is due: look first, with a read. */
		if (!atomic_load(&g->draining)) {
			r = store_async_next_due(g->store, &due);
			if (r == 1 && due <= now)
				r = store_async_claim(g->store, now, &job);
			else if (r == 1)
				r = 0;
		}
		if (r != 1)
			atomic_fetch_sub(&a->busy, 1);
		if (r < 0)
			log_err("async runner: cannot read the queue: %s", strerror(-r));
		if (r == 1) {
			run(rn, c, &job);
			store_async_free(&job);
			continue;
		}
		/* Nothing due: sleep until the next one is, a second at most
		 * (a retry queued by another runner), or a kick. */
		if (r == 0 && due > now && (uint64_t)(due - now) < 1000000u)
			wait_until(a, now_mono_us() + (uint64_t)(due - now));
		else
			wait_until(a, now_mono_us() + 1000000u);
	}
	curl_easy_cleanup(c);
	return NULL;
}

/* http://ADDR:PORT for the listen socket; a wildcard address becomes the
 * loopback of its family. */
static int
base_url(int fd, char *out, size_t n)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len = sizeof(ss);
	char addr[INET6_ADDRSTRLEN];

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		if (in->sin_addr.s_addr == htonl(INADDR_ANY))
			in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		inet_ntop(AF_INET, &in->sin_addr, addr, sizeof(addr));
		return str_printf(out, n, "http://%s:%u", addr, ntohs(in->sin_port));
	}
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
			in6->sin6_addr = in6addr_loopback;
		inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof(addr));
		return str_printf(out, n, "http://[%s]:%u", addr, ntohs(in6->sin6_port));
	}
	return -EAFNOSUPPORT;
}

int
async_start(struct gw *g)
{
	struct gw_async *a = calloc(1, sizeof(*a));
	uint8_t rnd[32];
	int r;

	if (!a)
		return -ENOMEM;
	a->gw = g;
	r = base_url(g->listen_fd, a->base, sizeof(a->base));
	if (r < 0 || RAND_bytes(rnd, sizeof(rnd)) != 1 ||
	    curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		free(a);
		return r < 0 ? r : -EIO;
	}
	memcpy(a->token, "fsi_", 4);
	hex_encode(rnd, sizeof(rnd), a->token + 4);
	OPENSSL_cleanse(rnd, sizeof(rnd));
	r = store_async_requeue_running(g->store, (int64_t)now_wall_us());
	if (r > 0)
		log_info("%d async invocations were cut off by the last stop: queued again", r);
	pthread_mutex_init(&a->lock, NULL);
	cond_init_mono(&a->cond);
	g->async = a;
	a->nrunners = (unsigned)MIN(g->cfg.async_runners, (uint64_t)ASYNC_MAX_RUNNERS);
	for (unsigned i = 0; i < a->nrunners; i++) {
		a->runners[i].a = a;
		a->runners[i].index = i;
	}
	for (unsigned i = 0; i < a->nrunners; i++)
		if (pthread_create(&a->threads[i], NULL, runner_main, &a->runners[i]) != 0) {
			a->nrunners = i;
			return -EAGAIN;
		}
	return 0;
}

unsigned
async_busy(struct gw *g)
{
	return g->async ? atomic_load(&g->async->busy) : 0;
}

void
async_stop(struct gw *g)
{
	struct gw_async *a = g->async;

	if (!a)
		return;
	/* Not joined: a runner may wait for an invocation longer than the
	 * drain.  What it has claimed and not settled when the process ends
	 * is queued again at the next start. */
	pthread_mutex_lock(&a->lock);
	a->stop = true;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
}
