/*
 * fast.c - the gateway's fast path: warm invocations served on connections
 * the event loops accept and speak HTTP/1.1 on themselves, without
 * libmicrohttpd.  Runs in the event loops; each connection belongs to the
 * loop that accepted it.
 *
 * Why: libmicrohttpd suspends and resumes a connection around every
 * invocation (two epoll_ctl calls), reads ahead once more than it needs
 * to, and builds each answer in its memory pool.  Here a warm invocation
 * costs the client's recv, the instance's writev and recv (hotx.c) and one
 * sendmsg of the answer.
 *
 * What it serves and what it hands on:
 * - A new connection's first bytes are peeked at: unless they begin a /fn/
 *   request, the socket goes to libmicrohttpd as it is (MHD_add_connection).
 * - A request the fast path does not serve (fasthead.c declines the head; a
 *   body over FAST_BODY_MAX; any other endpoint; a function of runtime
 *   exec) turns the connection into a tunnel (fasttun.c) from that request
 *   on.  So every request gets libmicrohttpd's answer unless the fast path
 *   gives the same.
 * - Answers of the fast path come from the same code as libmicrohttpd's
 *   (respond.c's struct gw_ans): errors, X-Faas-* headers, records.
 *
 * INVARIANT: a struct fconn is freed only after the batch of events it was
 * closed in (dead_list): an event fetched in that batch may still name it.
 * INVARIANT: bytes of a request the fast path declined reach libmicrohttpd
 * unchanged: the parser works on a copy of the head.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "fast.h"
#include "gw.h"
#include "log.h"
#include "util.h"

static _Thread_local struct fconn *dead_list;

static void
fc_unlink(struct fconn *c)
{
	struct gw_loop *lp = c->lp;

	if (c->prev)
		c->prev->next = c->next;
	else
		lp->fcs = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	lp->nfcs--;
}

void
fast_conn_events(struct fconn *c, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.ptr = c };

	if (c->events == ev || c->fd < 0)
		return;
	c->events = ev;
	if (epoll_ctl(c->lp->epfd, EPOLL_CTL_MOD, c->fd, &e) < 0)
		log_warn("fast: epoll mod: %s", strerror(errno));
}

/* The answer's buffers back to their owners. */
static void
fc_answer_free(struct fconn *c)
{
	if (c->body_free)
		c->body_free(c->body_cls);
	c->body = NULL;
	c->body_free = NULL;
	c->body_len = c->body_off = 0;
	c->out.len = c->out_off = 0;
	c->chunked = c->sdone = false;
	c->spos = 0;
}

/* The request is over (answered, or its client is gone). */
static void
fc_req_end(struct fconn *c)
{
	struct req *q = c->q;
	struct gw_loop *lp = c->lp;

	if (!q)
		return;
	c->q = NULL;
	/* Detached from its instance or queue first, under the gateway lock
	 * (hot_req_free): a resume by another thread is then over, and none
	 * comes after, so its place on the ready list is final. */
	hot_req_free(q);
	pthread_mutex_lock(&lp->ready_lock);
	if (q->fast_ready) {
		struct req **pp = &lp->ready;

		while (*pp && *pp != q)
			pp = &(*pp)->next;
		if (*pp)
			*pp = q->next;
		q->fast_ready = false;
	}
	pthread_mutex_unlock(&lp->ready_lock);
	if (c->status) {
		metrics_http(lp->gw, c->status);
		metrics_fast(lp->gw, METRICS_FAST_ANSWERED);
	}
	gw_req_free(q);
}

void
fast_conn_close(struct fconn *c)
{
	if (c->state == FC_DEAD)
		return;
	fc_req_end(c);
	fc_answer_free(c);
	if (c->fd >= 0)
		close(c->fd); /* leaves the epoll set with it */
	if (c->tfd >= 0)
		close(c->tfd);
	c->fd = c->tfd = -1;
	c->state = FC_DEAD;
	fc_unlink(c);
	c->next = dead_list;
	dead_list = c;
}

static void
fc_free(struct fconn *c)
{
	free(c->in);
	free(c->hb);
	buf_free(&c->out);
	if (c->down.buf != c->in)
		free(c->down.buf);
	if (c->up.buf != c->in)
		free(c->up.buf);
	free(c);
}

/* Room for n more bytes of input.  0, or -E2BIG past the fast path's cap. */
static int
fc_room(struct fconn *c, size_t n)
{
	const size_t limit = FAST_HEAD_MAX + FAST_BODY_MAX + FAST_IN_MIN;
	size_t cap;
	char *nb;

	if (c->in_cap - c->in_len >= n)
		return 0;
	if (c->in_len + n > limit)
		return -E2BIG;
	cap = MIN(MAX(c->in_cap * 2, c->in_len + MAX(n, (size_t)FAST_IN_MIN)), limit);
	nb = realloc(c->in, cap);
	if (!nb)
		return -ENOMEM;
	c->in = nb;
	c->in_cap = cap;
	return 0;
}

/* ---- answers ---- */

static const char *
date_line(struct gw_loop *lp)
{
	time_t t = time(NULL);

	if (t != lp->date_s) {
		struct tm tm;

		gmtime_r(&t, &tm);
		(void)strftime(lp->date, sizeof(lp->date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n",
			       &tm);
		lp->date_s = t;
	}
	return lp->date;
}

enum MHD_Result
fast_queue(struct req *q, unsigned status, struct gw_ans *a)
{
	struct fconn *c = q->fc;
	struct gw *g = q->gw;
	const char *reason = MHD_get_reason_phrase_for(status);
	struct buf *o = &c->out;
	char line[64], num[24];

	if (c->q != q || c->state != FC_BUSY) {
		/* Answered twice: keep the first. */
		if (a->body_free)
			a->body_free(a->body_cls);
		buf_free(&a->hdr);
		return MHD_NO;
	}
	c->close_after = c->close_after || c->h.close || atomic_load(&g->draining);
	o->len = c->out_off = 0;
	o->err = a->hdr.err;
	(void)str_printf(line, sizeof(line), "HTTP/1.1 %u %s\r\n", status,
			 reason && *reason ? reason : "Unknown");
	buf_str(o, line);
	buf_append(o, a->hdr.data, a->hdr.len);
	buf_free(&a->hdr);
	c->chunked = a->stream && a->body_len == MHD_SIZE_UNKNOWN;
	if (c->chunked)
		buf_str(o, "Transfer-Encoding: chunked\r\n");
	else {
		buf_str(o, "Content-Length: ");
		buf_append(o, num, str_u64(num, a->body_len, 0));
		buf_str(o, "\r\n");
	}
	buf_str(o, date_line(c->lp));
	if (c->close_after)
		buf_str(o, "Connection: close\r\n");
	buf_str(o, "\r\n");
	c->status = status;
	if (!a->stream) {
		c->body = a->body;
		c->body_len = a->body_len;
		c->body_free = a->body_free;
		c->body_cls = a->body_cls;
	}
	c->state = a->stream ? FC_STREAM : FC_WRITE;
	if (o->err) {
		/* No memory for the head: the client sees the connection close. */
		c->close_after = true;
		fc_answer_free(c);
		c->state = FC_WRITE;
	}
	return MHD_YES;
}

/* Write what is pending.  1 all out, 0 blocked (armed for EPOLLOUT), -1 the
 * client is gone. */
static int
fc_flush(struct fconn *c)
{
	while (c->out_off < c->out.len || c->body_off < c->body_len) {
		struct iovec iov[2];
		struct msghdr mh = { .msg_iov = iov };
		ssize_t w;

		if (c->out_off < c->out.len)
			iov[mh.msg_iovlen++] =
				(struct iovec){ c->out.data + c->out_off, c->out.len - c->out_off };
		if (c->body_off < c->body_len)
			iov[mh.msg_iovlen++] =
				(struct iovec){ c->body + c->body_off, c->body_len - c->body_off };
		w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			fast_conn_events(c, c->events | EPOLLOUT);
			return 0;
		}
		if (w < 0)
			return -1;
		c->last_us = now_mono_us();
		if (c->out_off < c->out.len) {
			size_t k = MIN((size_t)w, c->out.len - c->out_off);

			c->out_off += k;
			w -= (ssize_t)k;
		}
		c->body_off += (size_t)w;
	}
	if (c->events & EPOLLOUT)
		fast_conn_events(c, c->events & ~(uint32_t)EPOLLOUT);
	return 1;
}

/* The next piece of a streamed answer into out.  1 one is there, 0 none
 * yet (hotx.c resumes q when more comes), -1 the answer broke off. */
static int
stream_fill(struct fconn *c)
{
	struct buf *o = &c->out;
	const char *p;
	size_t n;
	int r;

	if (c->sdone)
		return 1;
	pthread_mutex_lock(&c->lp->gw->lock);
	r = hot_stream_peek(c->q, c->spos, &p, &n);
	o->len = c->out_off = 0;
	o->err = false;
	if (r >= 0 && n) {
		n = MIN(n, (size_t)STREAM_PIECE);
		if (c->chunked) {
			char h[24];
			int k = snprintf(h, sizeof(h), "%zx\r\n", n);

			buf_append(o, h, (size_t)k);
		}
		buf_append(o, p, n);
		if (c->chunked)
			buf_str(o, "\r\n");
		c->spos += n;
		r = o->err ? -1 : 1;
	} else if (r == 1) {
		if (c->chunked)
			buf_str(o, "0\r\n\r\n");
		c->sdone = true;
		r = o->err ? -1 : 1;
	}
	pthread_mutex_unlock(&c->lp->gw->lock);
	return r;
}

/* The answer is out: the connection takes the next request, or closes.
 * false when it closed. */
static bool
fc_answered(struct fconn *c)
{
	fc_req_end(c);
	fc_answer_free(c);
	if (c->close_after) {
		fast_conn_close(c);
		return false;
	}
	memmove(c->in, c->in + c->req_len, c->in_len - c->req_len);
	c->in_len -= c->req_len;
	c->req_len = 0;
	c->state = FC_READ;
	if (!c->rd_closed)
		fast_conn_events(c, EPOLLIN | EPOLLRDHUP);
	return true;
}

/* ---- requests ---- */

/* Start the request whose head and body are in c->in. */
static void
fc_request(struct fconn *c)
{
	struct gw_loop *lp = c->lp;
	struct gw *g = lp->gw;
	struct req *q = calloc(1, sizeof(*q));
	char *qs;
	enum MHD_Result r;

	if (!q) {
		fast_conn_close(c);
		return;
	}
	q->gw = g;
	q->loop = lp->index;
	q->fc = c;
	q->body_fd = q->out_fd = q->err_fd = -1;
	q->done.stdout_fd = q->done.stderr_fd = -1;
	q->uri = strndup(c->h.target, c->h.target_len);
	q->version = "HTTP/1.1";
	q->method = c->h.method;
	atomic_fetch_add(&g->inflight, 1);
	c->q = q;
	c->state = FC_BUSY;
	c->status = 0;
	/* The path the router sees: the target without its query (the copy
	 * in hb lives as long as the request). */
	qs = strchr(c->h.target, '?');
	if (qs)
		*qs = 0;
	r = gw_request_begin(q, c->h.target, q->method);
	if (c->state != FC_BUSY)
		return; /* answered (an error) */
	if (r != MHD_YES) {
		fast_conn_close(c);
		return;
	}
	if (q->route.kind != ROUTE_INVOKE || !q->hx.on) {
		/* libmicrohttpd's to serve (runtime exec) */
		fc_req_end(c);
		c->state = FC_READ;
		fast_tunnel_open(c);
		return;
	}
	if (c->h.content_length) {
		if (buf_append(&q->body, c->in + c->h.head_len, c->h.content_length) < 0) {
			fast_conn_close(c);
			return;
		}
		q->received = c->h.content_length;
	}
	r = invoke_dispatch(q, q->method);
	if (r != MHD_YES && c->state == FC_BUSY)
		fast_conn_close(c);
}

/* A whole request in c->in?  Start it (true), or wait for bytes, or hand
 * the connection on (false). */
static bool
fc_next(struct fconn *c)
{
	struct gw *g = c->lp->gw;
	char *end;
	size_t hl;
	int r;

	if (!c->in_len) {
		if (c->rd_closed)
			fast_conn_close(c);
		return false;
	}
	end = memmem(c->in, MIN(c->in_len, (size_t)FAST_HEAD_MAX), "\r\n\r\n", 4);
	if (!end) {
		if (c->in_len >= FAST_HEAD_MAX)
			fast_tunnel_open(c);
		else if (c->rd_closed)
			fast_conn_close(c);
		return false;
	}
	hl = (size_t)(end - c->in) + 4;
	if (hl + 1 > c->hb_cap) {
		char *nb = realloc(c->hb, hl + 1);

		if (!nb) {
			fast_conn_close(c);
			return false;
		}
		c->hb = nb;
		c->hb_cap = hl + 1;
	}
	memcpy(c->hb, c->in, hl);
	c->hb[hl] = 0;
	r = fast_head_parse(c->hb, hl, &c->h);
	if (r != FAST_HEAD_OK || c->h.content_length > FAST_BODY_MAX ||
	    c->h.content_length > atomic_load(&g->max_body)) {
		fast_tunnel_open(c);
		return false;
	}
	c->req_len = hl + c->h.content_length;
	if (c->in_len < c->req_len) {
		if (c->rd_closed)
			fast_conn_close(c); /* it will not come */
		else if (fc_room(c, c->req_len - c->in_len) < 0)
			fast_tunnel_open(c);
		return false;
	}
	fc_request(c);
	return true;
}

/* Drive c as far as it goes now. */
static void
fc_progress(struct fconn *c)
{
	for (;;) {
		int r;

		switch (c->state) {
		case FC_READ:
			if (!fc_next(c))
				return;
			continue;
		case FC_WRITE:
			r = fc_flush(c);
			if (r < 0)
				fast_conn_close(c);
			if (r <= 0 || !fc_answered(c))
				return;
			continue;
		case FC_STREAM:
			r = fc_flush(c);
			if (r < 0)
				fast_conn_close(c);
			if (r <= 0)
				return;
			if (c->sdone) {
				if (!fc_answered(c))
					return;
				continue;
			}
			r = stream_fill(c);
			if (r < 0)
				fast_conn_close(c);
			if (r <= 0)
				return;
			continue;
		default:
			return;
		}
	}
}

/* Bytes from the client (events: what epoll said). */
static void
fc_read(struct fconn *c, uint32_t events)
{
	ssize_t k;

	if (events & (EPOLLHUP | EPOLLERR)) {
		/* Reset, or gone both ways: nobody to answer. */
		fast_conn_close(c);
		return;
	}
	if (c->rd_closed)
		return;
	if (fc_room(c, FAST_IN_MIN) < 0) {
		if (c->state == FC_READ) {
			fast_tunnel_open(c);
			return;
		}
		/* Busy and the client keeps sending: read on after the answer. */
		fast_conn_events(c, c->events & EPOLLOUT);
		return;
	}
	k = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
	if (k < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (k < 0) {
		fast_conn_close(c);
		return;
	}
	if (k == 0) {
		/* The client is done sending: what it asked is still answered
		 * (as libmicrohttpd does), then the connection closes. */
		c->rd_closed = true;
		c->close_after = true;
		fast_conn_events(c, c->events & EPOLLOUT);
		return;
	}
	c->in_len += (size_t)k;
	c->last_us = now_mono_us();
}

/* A new connection's first bytes: ours, or libmicrohttpd's. */
static void
fc_first(struct fconn *c)
{
	struct gw_loop *lp = c->lp;
	char pk[24];
	ssize_t n = recv(c->fd, pk, sizeof(pk), MSG_PEEK);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		fast_conn_close(c);
		return;
	}
	if (fast_head_start(pk, (size_t)n)) {
		c->state = FC_READ;
		return;
	}
	(void)epoll_ctl(lp->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	metrics_fast(lp->gw, METRICS_FAST_HANDED_OVER);
	(void)MHD_add_connection(lp->mhd, c->fd, (const struct sockaddr *)&c->addr, c->addrlen);
	c->fd = -1; /* libmicrohttpd's (closed by it even on failure) */
	fast_conn_close(c);
}

void
fast_event(struct gw_loop *lp, void *ptr, uint32_t events)
{
	unsigned kind = *(unsigned *)ptr;
	struct fconn *c;

	(void)lp;
	if (kind == LOOP_KIND_TUNNEL) {
		c = ((struct fconn *)((char *)ptr - offsetof(struct fconn, tend)));
		if (c->state == FC_TUNNEL)
			fast_tunnel_pump(c, events, false);
		return;
	}
	c = ptr;
	switch (c->state) {
	case FC_DEAD:
		return;
	case FC_TUNNEL:
		fast_tunnel_pump(c, events, true);
		return;
	case FC_NEW:
		fc_first(c);
		if (c->state != FC_READ)
			return;
		/* fall through */
	case FC_READ:
		fc_read(c, events);
		break;
	default:
		if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			fc_read(c, events); /* pipelined bytes, or the client went away */
		break;
	}
	if (c->state != FC_DEAD)
		fc_progress(c);
}

void
fast_accept(struct gw_loop *lp)
{
	struct gw *g = lp->gw;

	for (int i = 0; i < 16; i++) {
		struct sockaddr_storage a;
		socklen_t al = sizeof(a);
		struct epoll_event e = { .events = EPOLLIN | EPOLLRDHUP };
		struct fconn *c;
		int one = 1;
		int fd = accept4(lp->listen_fd, (struct sockaddr *)&a, &al,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN)
				log_warn("accept: %s", strerror(errno));
			return;
		}
		if (atomic_load(&g->draining)) {
			close(fd);
			continue;
		}
		if (lp->nfcs >= FAST_MAX_CONNS || !(c = calloc(1, sizeof(*c)))) {
			(void)MHD_add_connection(lp->mhd, fd, (struct sockaddr *)&a, al);
			continue;
		}
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->kind = LOOP_KIND_FAST;
		c->fd = fd;
		c->tfd = -1;
		c->lp = lp;
		c->state = FC_NEW;
		c->events = e.events;
		c->addr = a;
		c->addrlen = al;
		c->last_us = now_mono_us();
		e.data.ptr = c;
		if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = lp->fcs;
		if (lp->fcs)
			lp->fcs->prev = c;
		lp->fcs = c;
		lp->nfcs++;
	}
}

void
fast_resume(struct req *q)
{
	struct gw_loop *lp = &q->gw->loops[q->loop];

	pthread_mutex_lock(&lp->ready_lock);
	if (!q->fast_ready) {
		q->fast_ready = true;
		q->next = lp->ready;
		lp->ready = q;
		atomic_store(&lp->any_ready, true);
	}
	pthread_mutex_unlock(&lp->ready_lock);
}

/* Answers that became ready: hot_respond puts each together (fast_queue),
 * and it is written.  Taken off the list one at a time: another thread may
 * put one back on while it is handled. */
static void
run_ready(struct gw_loop *lp)
{
	for (;;) {
		struct req *q;
		struct fconn *c;

		pthread_mutex_lock(&lp->ready_lock);
		q = lp->ready;
		if (q) {
			lp->ready = q->next;
			q->next = NULL;
			q->fast_ready = false;
		} else
			atomic_store(&lp->any_ready, false);
		pthread_mutex_unlock(&lp->ready_lock);
		if (!q)
			return;
		c = q->fc;
		if (c->state == FC_BUSY && c->q == q && invoke_respond(q) != MHD_YES &&
		    c->state == FC_BUSY) {
			fast_conn_close(c);
			continue;
		}
		if (c->state == FC_WRITE || c->state == FC_STREAM)
			fc_progress(c);
	}
}

void
fast_run(struct gw_loop *lp)
{
	struct gw *g = lp->gw;
	uint64_t now;

	if (atomic_load(&lp->any_ready))
		run_ready(lp);
	if (lp->listening && atomic_load(&g->draining)) {
		/* Stop accepting; idle connections close, busy ones after
		 * their answer. */
		(void)epoll_ctl(lp->epfd, EPOLL_CTL_DEL, lp->listen_fd, NULL);
		lp->listening = false;
		for (struct fconn *c = lp->fcs, *n; c; c = n) {
			n = c->next;
			if (c->state == FC_NEW || (c->state == FC_READ && !c->in_len))
				fast_conn_close(c);
			else
				c->close_after = true;
		}
	}
	now = now_mono_us();
	if (now >= lp->next_sweep_us) {
		lp->next_sweep_us = now + 1000000;
		for (struct fconn *c = lp->fcs, *n; c; c = n) {
			n = c->next;
			/* Idle, or a client that stopped reading or sending. */
			if ((c->state == FC_NEW || c->state == FC_READ || c->state == FC_WRITE ||
			     (c->state == FC_STREAM && (c->events & EPOLLOUT))) &&
			    now - c->last_us > FAST_IDLE_US)
				fast_conn_close(c);
		}
	}
	while (dead_list) {
		struct fconn *c = dead_list;

		dead_list = c->next;
		fc_free(c);
	}
}

int
fast_loop_init(struct gw_loop *lp)
{
	struct epoll_event e = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.u64 = LOOP_TAG_LISTEN };

	if (pthread_mutex_init(&lp->ready_lock, NULL) != 0)
		return -ENOMEM;
	if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, lp->listen_fd, &e) < 0)
		return -errno;
	lp->listening = true;
	return 0;
}

void
fast_headers_each(struct req *q, MHD_KeyValueIterator fn, void *cls)
{
	const struct fast_head *h = &q->fc->h;

	for (unsigned i = 0; i < h->nheaders; i++)
		if (fn(cls, MHD_HEADER_KIND, h->h[i].name, h->h[i].value) != MHD_YES)
			return;
}

const char *
fast_header(struct req *q, const char *name)
{
	return fast_head_get(&q->fc->h, name);
}

const struct sockaddr *
fast_peer(struct req *q)
{
	return (const struct sockaddr *)&q->fc->addr;
}
