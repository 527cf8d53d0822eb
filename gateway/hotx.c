/*
 * hotx.c - the gateway's HTTP/1.1 exchange with a hot instance (see hot.c
 * for the scheduling): the request head it builds from the client's
 * request, writing it and the body to the instance's connection, reading
 * and framing the answer (gateway/hproxy.c parses it), streaming a long
 * one, and the answer to the client.  Runs in the event loop of the
 * request's connection, under g->lock, except where a function says so.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "gw.h"
#include "hot.h"
#include "log.h"
#include "util.h"

/* ---- the exchange ---- */

/*
 * A connection sits, level-triggered, in the epoll set of the loop whose
 * request used it last: idle, its events mean the handler closed it; busy,
 * the answer.  Moving it to another loop's set costs two epoll_ctl calls,
 * so free_conn prefers connections already in the right set.
 */
static void
conn_arm(struct gw *g, struct hconn *c, bool out)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0u),
				  .data.ptr = c };

	if (c->fd < 0 || c->loop < 0 || c->want_out == out)
		return;
	c->want_out = out;
	if (epoll_ctl(g->loops[c->loop].epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		log_warn("epoll mod: %s", strerror(errno));
}

/* Move c into the epoll set of the loop serving the request it gets. */
static void
conn_attach(struct gw *g, struct hconn *c, unsigned loop)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };

	if (c->loop == (int)loop || c->fd < 0)
		return;
	if (c->loop >= 0)
		(void)epoll_ctl(g->loops[c->loop].epfd, EPOLL_CTL_DEL, c->fd, NULL);
	c->loop = (int)loop;
	c->want_out = false;
	if (epoll_ctl(g->loops[loop].epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		log_warn("epoll add: %s", strerror(errno));
		c->loop = -1;
	}
}

static void conn_lost(struct hconn *c);
static enum MHD_Result stream_respond(struct req *q, uint64_t dur);

/* Write what is left of the request; arms for EPOLLOUT if the socket is
 * full, else for the answer. */
static void
conn_write(struct gw *g, struct hconn *c)
{
	struct req *q = c->q;

	while (q && q->hx.sent < q->hx.out_len + q->body.len) {
		struct iovec iov[2];
		int n = 0;
		ssize_t w;

		if (q->hx.sent < q->hx.out_len)
			iov[n++] = (struct iovec){ q->hx.out + q->hx.sent,
						   q->hx.out_len - q->hx.sent };
		if (q->body.len) {
			size_t off = q->hx.sent > q->hx.out_len ? q->hx.sent - q->hx.out_len : 0;

			iov[n++] = (struct iovec){ q->body.data + off, q->body.len - off };
		}
		w = writev(c->fd, iov, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			conn_arm(g, c, true);
			return;
		}
		if (w < 0) {
			conn_lost(c);
			return;
		}
		q->hx.sent += (size_t)w;
	}
	if (q)
		conn_arm(g, c, false);
}

void
hot_assign(struct gw *g, struct hconn *c, struct req *q)
{
	struct hinst *in = c->inst;
	uint64_t now = now_mono_us();

	c->q = q;
	c->uses++;
	q->hx.conn = c;
	in->busy++;
	if (!in->served && q->started_us < in->ready_us) {
		/* It waited for this instance to start: a cold start. */
		q->hx.cold = true;
		q->hx.init_us = in->init_us;
	}
	in->served = true;
	q->hx.sent = 0;
	q->hx.in_len = 0;
	q->hx.head_done = false;
	memset(&q->hx.chunk, 0, sizeof(q->hx.chunk));
	q->hx.sent_us = now;
	q->hx.deadline_us = now + in->pool->timeout_ms * 1000;
	/* The deadline field was reserved with 13 digits when the head was
	 * built; the time counts from now. */
	if (q->hx.deadline_off >= 0) {
		char dl[24];

		(void)str_u64(dl, now_wall_ms() + in->pool->timeout_ms, 13);
		memcpy(q->hx.out + q->hx.deadline_off, dl, 13);
	}
	conn_attach(g, c, q->loop);
	conn_write(g, c);
}

/* The answer is in: the connection is free again (or closed). */
static void
release(struct gw *g, struct hconn *c, bool reuse)
{
	struct req *q = c->q;
	struct hinst *in = c->inst;
	uint64_t now = now_mono_us();

	hot_log_take(g, in, q);
	(void)hot_detach(q); /* c, free again */
	in->idle_since_us = now;
	if (!reuse)
		hot_conn_close(c);
	q->hx.done_us = now;
}

static void
finish(struct gw *g, struct hconn *c, bool reuse)
{
	struct req *q = c->q;
	struct hpool *p = c->inst->pool;
	uint64_t first = q->hx.done_us;

	release(g, c, reuse);
	if (!q->hx.streaming)
		hot_resume(q);
	else {
		q->hx.done_us = first; /* the duration already sent: to the head */
		q->hx.stream_done = true;
		if (q->hx.reader_waiting) {
			q->hx.reader_waiting = false;
			hot_resume(q);
		}
	}
	hot_pool_serve(g, p);
}

/* Does the answer carry X-Faas-Function-Error (a runtime's uncaught
 * error)?  Its value into type, when asked. */
static bool
function_error_type(const struct hx *x, char *type, size_t n)
{
	for (unsigned i = 0; i < x->resp.nheaders; i++)
		if (x->resp.h[i].name_len == 21 &&
		    strncasecmp(x->in + x->resp.h[i].name_off, "X-Faas-Function-Error", 21) == 0) {
			if (type)
				(void)str_printf(type, n, "%.*s",
						 (int)MIN(x->resp.h[i].value_len, (uint32_t)n - 1),
						 x->in + x->resp.h[i].value_off);
			return true;
		}
	return false;
}

/*
 * The head is in and the body still comes: answer the head now and stream
 * the body as it arrives (stream_read), unless the answer must be seen
 * whole (a runtime's function error) or its declared length is over the
 * cap.  The instance is still read eagerly, whatever the client's pace.
 */
static void
stream_start(struct gw *g, struct hconn *c)
{
	struct req *q = c->q;
	struct hx *x = &q->hx;

	if (x->resp.framing == HRESP_LENGTH &&
	    (uint64_t)x->resp.content_length > g->cfg.max_output_bytes) {
		hot_fail(q, 502, "function_error", "handler response larger than %llu bytes",
			 (unsigned long long)g->cfg.max_output_bytes);
		hot_conn_close(c);
		return;
	}
	if (function_error_type(x, NULL, 0))
		return;
	x->streaming = true;
	x->done_us = now_mono_us();
	/* Its record goes with the head: what it logged so far. */
	hot_log_take(g, c->inst, q);
	hot_resume(q);
}

int
hot_stream_peek(struct req *q, uint64_t pos, const char **p, size_t *n)
{
	struct hx *x = &q->hx;
	size_t avail =
		x->resp.framing == HRESP_CHUNKED ? x->chunk.dec : x->in_len - x->resp.head_len;

	*n = 0;
	if (pos < avail) {
		*p = x->in + x->resp.head_len + pos;
		*n = avail - pos;
		return 0;
	}
	if (x->stream_done)
		return 1;
	if (x->stream_failed)
		return -1;
	/* Nothing yet: conn_read resumes q when more comes. */
	x->reader_waiting = true;
	return 0;
}

/* MHD's content reader of a streamed answer (the loop thread, in MHD_run). */
static ssize_t
stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct req *q = cls;
	struct gw *g = q->gw;
	const char *p;
	size_t n;
	ssize_t r;
	int k;

	pthread_mutex_lock(&g->lock);
	k = hot_stream_peek(q, pos, &p, &n);
	if (n) {
		n = MIN(n, max);
		memcpy(buf, p, n);
		r = (ssize_t)n;
	} else if (k > 0)
		r = MHD_CONTENT_READER_END_OF_STREAM;
	else if (k < 0)
		r = MHD_CONTENT_READER_END_WITH_ERROR;
	else {
		/* Wait, suspended, for conn_read. */
		q->suspended = true;
		MHD_suspend_connection(q->conn);
		r = 0;
	}
	pthread_mutex_unlock(&g->lock);
	return r;
}

/* The connection broke mid-exchange.  If the instance died, its
 * MSG_HOT_GONE says how and fails the invocation; hot_tick handles what is
 * still broken after BROKEN_GRACE_US (the instance lives: it closed the
 * connection itself). */
static void
conn_lost(struct hconn *c)
{
	hot_conn_close(c);
	if (c->q)
		c->q->hx.broken_us = now_mono_us();
}

/* The handler broke the protocol: it gets no further invocation. */
static void
conn_bad(struct gw *g, struct hconn *c, const char *why)
{
	struct hinst *in = c->inst;
	char msg[300];

	(void)str_printf(msg, sizeof(msg), "bad HTTP response from the handler: %s", why);
	log_warn("instance %llu of %s/%s: %s; stopping it", (unsigned long long)in->id,
		 in->pool->tenant, in->pool->function, msg);
	hot_inst_stop(g, in, 502, "function_error", msg);
}

/* Is the response in x complete?  1 yes, 0 not yet, -1 bad (diag). */
static int
progress(struct hx *x, bool eof, char *diag, size_t n)
{
	size_t body;
	int r;

	if (!x->head_done) {
		r = hresp_parse_head(x->in, x->in_len, x->head_req, &x->resp, diag, n);
		if (r <= 0)
			return r < 0 ? -1 : 0;
		x->head_done = true;
	}
	body = x->in_len - x->resp.head_len;
	switch (x->resp.framing) {
	case HRESP_LENGTH:
		if (body < (size_t)x->resp.content_length)
			return 0;
		if (body > (size_t)x->resp.content_length && x->head_req) {
			/* A body for HEAD: ignored, and the connection is not
			 * used again (hresp_parse_head marked it). */
			x->body_len = 0;
			return 1;
		}
		if (body > (size_t)x->resp.content_length) {
			(void)str_copy(diag, n, "more bytes than its Content-Length");
			return -1;
		}
		x->body_len = body;
		return 1;
	case HRESP_CHUNKED:
		r = hchunk_decode(&x->chunk, x->in + x->resp.head_len, body);
		if (r < 0 || (r == 1 && x->chunk.raw != body)) {
			(void)str_copy(diag, n,
				       r < 0 ? "bad chunked encoding"
					     : "bytes after the last chunk");
			return -1;
		}
		x->body_len = x->chunk.dec;
		return r;
	case HRESP_UNTIL_CLOSE:
		x->body_len = body;
		return eof ? 1 : 0;
	}
	return 0;
}

/* Room for at least 4 KiB more of the answer.  0, -E2BIG past the cap. */
static int
hx_room(struct gw *g, struct hx *x)
{
	size_t limit = HRESP_HEAD_MAX + g->cfg.max_output_bytes + 65536;
	size_t cap = MIN(MAX(x->in_cap * 2, (size_t)HOT_HEAD_RESERVE), limit);
	char *nb;

	if (x->in_cap - x->in_len >= 4096)
		return 0;
	if (x->in_cap >= limit)
		return -E2BIG;
	nb = realloc(x->in, cap);
	if (!nb)
		return -ENOMEM;
	x->in = nb;
	x->in_cap = cap;
	return 0;
}

/* Read what the socket has for x.  1 complete, 0 not yet (EAGAIN), -1 bad
 * answer (diag), -2 connection ended before the answer, -3 too large or no
 * memory. */
static int
hx_read(struct gw *g, int fd, struct hx *x, char *diag, size_t n)
{
	for (;;) {
		ssize_t k;
		int r;

		if (hx_room(g, x) < 0)
			return -3;
		k = recv(fd, x->in + x->in_len, x->in_cap - x->in_len, MSG_DONTWAIT);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN)
			return 0;
		if (k <= 0) {
			r = x->in_len ? progress(x, true, diag, n) : 0;
			return r == 1 ? 1 : r < 0 ? -1 : -2;
		}
		x->in_len += (size_t)k;
		r = progress(x, false, diag, n);
		if (r != 0)
			return r;
	}
}

/* The answer's bytes arrived (the request's event loop, under the lock). */
static void
conn_read(struct gw *g, struct hconn *c)
{
	struct req *q = c->q;
	char diag[160];
	int r;

	if (!q) {
		/* Idle: the handler closed it (or sent what nobody asked). */
		hot_conn_close(c);
		return;
	}
	r = hx_read(g, c->fd, &q->hx, diag, sizeof(diag));
	if (r == 0) {
		/* More to come: the socket stays in the loop's set. */
		if (q->hx.head_done && !q->hx.streaming)
			stream_start(g, c);
		else if (q->hx.reader_waiting) {
			q->hx.reader_waiting = false;
			hot_resume(q);
		}
		return;
	}
	if (r == 1)
		finish(g, c, !q->hx.resp.close);
	else if (r == -1)
		conn_bad(g, c, diag);
	else if (r == -2)
		conn_lost(c);
	else {
		hot_fail(q, 502, "function_error", "handler response larger than %llu bytes",
			 (unsigned long long)g->cfg.max_output_bytes);
		hot_conn_close(c);
	}
}

void
hot_conn_event(struct gw *g, struct hconn *c, uint32_t events, unsigned loop)
{
	pthread_mutex_lock(&g->lock);
	/* An event fetched before the connection moved to another loop's
	 * set, or before it was closed, is stale. */
	if (c->fd >= 0 && c->loop == (int)loop) {
		if ((events & EPOLLOUT) && c->q &&
		    c->q->hx.sent < c->q->hx.out_len + c->q->body.len)
			conn_write(g, c);
		else if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			conn_read(g, c);
	}
	pthread_mutex_unlock(&g->lock);
}

/* ---- the request ---- */

static bool
request_header_passes(const char *name, bool token_used)
{
	static const char *const drop[] = {
		"Connection", "Keep-Alive",     "TE",    "Trailer", "Transfer-Encoding",
		"Upgrade",    "Content-Length", "Expect"
	};

	if (strncasecmp(name, "X-Faas-", 7) == 0 || strncasecmp(name, "Proxy-", 6) == 0)
		return false;
	if (token_used && strcasecmp(name, "Authorization") == 0)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(drop); i++)
		if (strcasecmp(name, drop[i]) == 0)
			return false;
	return true;
}

static enum MHD_Result
header_cb(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct req *q = cls;
	struct buf *b = q->scratch;

	(void)kind;
	if (!value || !request_header_passes(key, q->token_used))
		return MHD_YES;
	buf_str(b, key);
	buf_append(b, ": ", 2);
	buf_str(b, value);
	buf_append(b, "\r\n", 2);
	return MHD_YES;
}

/* The request target as the client sent it, after /fn/{t}/{f}[:{q}]. */
static const char *
raw_target(struct req *q)
{
	const char *u = q->uri ? q->uri : "", *p;

	if (strncmp(u, "/fn/", 4) != 0)
		return NULL;
	p = strchr(u + 4, '/');
	if (!p)
		return NULL;
	p = p + 1 + strcspn(p + 1, "/?");
	return p;
}

int
hot_build_head(struct req *q)
{
	struct buf b = { 0 };
	const char *t = raw_target(q);
	char num[24], addr[INET6_ADDRSTRLEN];

	buf_str(&b, q->method);
	buf_append(&b, " ", 1);
	if (!t) {
		/* Fall back to the decoded path and the query as received. */
		const char *qs = q->uri ? strchr(q->uri, '?') : NULL;

		buf_str(&b, *q->route.rest ? q->route.rest : "/");
		if (qs)
			buf_str(&b, qs);
	} else if (*t != '/') {
		buf_append(&b, "/", 1);
		buf_str(&b, t);
	} else
		buf_str(&b, t);
	buf_str(&b, " HTTP/1.1\r\n");
	q->scratch = &b;
	gw_headers_each(q, header_cb, q);
	q->scratch = NULL;
	buf_str(&b, "Content-Length: ");
	buf_append(&b, num, str_u64(num, q->body.len, 0));
	buf_str(&b, "\r\nX-Faas-Invocation-Id: ");
	buf_str(&b, q->invocation_id);
	buf_str(&b, "\r\nX-Faas-Function: ");
	buf_str(&b, q->route.tenant);
	buf_append(&b, "/", 1);
	buf_str(&b, q->route.function);
	buf_str(&b, "\r\nX-Faas-Version: ");
	buf_append(&b, num, str_u64(num, (uint64_t)q->sr.version, 0));
	buf_append(&b, "\r\n", 2);
	invoke_client_addr(q, addr);
	if (*addr) {
		buf_str(&b, "X-Forwarded-For: ");
		buf_str(&b, addr);
		buf_str(&b, "\r\n");
	}
	buf_str(&b, "X-Faas-Deadline-Ms: ");
	q->hx.deadline_off = (int64_t)b.len;
	buf_str(&b, "0000000000000\r\n\r\n");
	if (b.err) {
		buf_free(&b);
		return -ENOMEM;
	}
	q->hx.out = b.data;
	q->hx.out_len = b.len;
	return 0;
}

/* ---- the answer ---- */

static void
free_cls(void *p)
{
	free(p);
}

/* A runtime shim's uncaught exception: X-Faas-Function-Error and the
 * Lambda error object as the body. */
static enum MHD_Result
function_error(struct req *q, const char *type_hdr, const char *body, size_t len)
{
	json_error_t je;
	json_t *err = json_loadb(body, len, 0, &je);
	const char *type = json_string_value(json_object_get(err, "errorType"));
	const char *m = json_string_value(json_object_get(err, "errorMessage"));
	char msg[600];
	char *details = err ? json_dumps(err, JSON_COMPACT) : NULL;
	enum MHD_Result r;

	(void)str_printf(msg, sizeof(msg), "%s: %s", type ? type : type_hdr,
			 m ? m : "the handler failed");
	log_info("function error in %s/%s v=%lld id=%s: %s", q->route.tenant, q->route.function,
		 (long long)q->sr.version, q->invocation_id, msg);
	r = invoke_fail(q, 502, "function_error", msg, details);
	free(details);
	json_decref(err);
	return r;
}

/* The X-Faas-* headers, the REPORT line, and the answer a on its way. */
static enum MHD_Result
queue_answer(struct req *q, struct gw_ans *a, uint64_t dur)
{
	struct hx *x = &q->hx;

	invoke_faas_headers(q, a, x->cold, dur);
	q->resp_bytes = x->streaming && x->resp.framing == HRESP_LENGTH
				? (uint64_t)x->resp.content_length
				: x->body_len;
	invoke_report(q, x->resp.status, x->resp.status >= 500 ? "error" : "ok", dur, x->init_us,
		      0);
	return gw_ans_queue(a, x->resp.status);
}

/* Pass the handler's headers (made strings in place: the head is ours). */
static void
pass_headers(struct hx *x, struct gw_ans *a)
{
	for (unsigned i = 0; i < x->resp.nheaders; i++) {
		char *n = x->in + x->resp.h[i].name_off, *v = x->in + x->resp.h[i].value_off;

		n[x->resp.h[i].name_len] = 0;
		v[x->resp.h[i].value_len] = 0;
		if (invoke_header_passes(n))
			gw_ans_header(a, n, v);
	}
}

static enum MHD_Result
stream_respond(struct req *q, uint64_t dur)
{
	struct hx *x = &q->hx;
	struct gw_ans a;
	uint64_t size = x->resp.framing == HRESP_LENGTH ? (uint64_t)x->resp.content_length
							: MHD_SIZE_UNKNOWN;
	int r;

	pthread_mutex_lock(&q->gw->lock);
	r = gw_ans_stream(&a, q, size, stream_read);
	if (r == 0)
		pass_headers(x, &a);
	pthread_mutex_unlock(&q->gw->lock);
	if (r < 0)
		return MHD_NO;
	return queue_answer(q, &a, dur);
}

enum MHD_Result
hot_respond(struct req *q)
{
	struct hx *x = &q->hx;
	struct gw_ans a;
	uint64_t dur = x->done_us > x->sent_us && x->sent_us ? x->done_us - x->sent_us : 0;
	char *body, type[64];

	q->done.duration_us = dur;
	if (x->fail_status)
		return invoke_fail(q, x->fail_status, x->fail_code,
				   x->fail_msg ? x->fail_msg : "the invocation failed", NULL);
	if (x->streaming)
		return stream_respond(q, dur);
	body = x->in + x->resp.head_len;
	if (function_error_type(x, type, sizeof(type)))
		return function_error(q, type, body, x->body_len);
	if (gw_ans_buffer(&a, q, x->body_len, body, free_cls, x->in) < 0)
		return MHD_NO;
	pass_headers(x, &a);
	x->in = NULL; /* the answer frees it */
	return queue_answer(q, &a, dur);
}

void
hot_req_free(struct req *q)
{
	/* Unlocked first: no other thread gives q a connection or a queue
	 * place once it has neither, so NULL here stays NULL (the common
	 * case, no lock).  A client gone mid-stream: the rest of the answer
	 * has nowhere to go, so its connection cannot carry another.  A fast
	 * request always locks: its client may leave while another thread,
	 * holding the lock, has detached q and is about to resume it; once
	 * this lock was ours, that resume is done (fast.c then takes q off
	 * its loop's ready list). */
	if (q->fc || q->hx.conn || q->hx.pool) {
		struct hconn *c;

		pthread_mutex_lock(&q->gw->lock);
		c = hot_detach(q);
		if (c)
			hot_conn_close(c);
		pthread_mutex_unlock(&q->gw->lock);
	}
	free(q->hx.out);
	free(q->hx.in);
	free(q->hx.fail_msg);
	q->hx.out = q->hx.in = q->hx.fail_msg = NULL;
	for (unsigned k = 0; k < 2; k++) {
		free(q->hx.log[k]);
		q->hx.log[k] = NULL;
	}
}
