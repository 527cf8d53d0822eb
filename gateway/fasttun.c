/*
 * fasttun.c - the fast path's tunnel (see fast.c): a connection that sent
 * a request the fast path does not serve is libmicrohttpd's from that
 * request on.  libmicrohttpd gets one end of a socket pair (with the
 * client's address); the loop relays bytes between the other end and the
 * client, both ways, through a 64 KiB buffer each, until either side ends.
 * Runs in the event loop that owns the connection.
 *
 * INVARIANT: libmicrohttpd sees exactly the bytes the client sent, from the
 * first unanswered one on: the request the fast path declined is still
 * whole in c->in (fasthead.c parses a copy).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fast.h"
#include "gw.h"
#include "log.h"
#include "util.h"

/* Move bytes from one socket to the other through r.  0, or -1 when the
 * connection is broken.  *rd: waits for from to be readable; *wr: for to
 * to be writable. */
static int
relay_pump(int from, int to, struct relay *r, bool *rd, bool *wr)
{
	*rd = *wr = false;
	for (;;) {
		ssize_t k;

		if (r->off < r->len) {
			k = send(to, r->buf + r->off, r->len - r->off, MSG_NOSIGNAL);
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0 && errno == EAGAIN) {
				*wr = true;
				return 0;
			}
			if (k < 0)
				return -1;
			r->off += (size_t)k;
			continue;
		}
		r->off = r->len = 0;
		if (r->eof)
			return 0;
		k = recv(from, r->buf, r->cap, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN) {
			*rd = true;
			return 0;
		}
		if (k < 0 && errno != ECONNRESET)
			return -1;
		if (k <= 0) {
			r->eof = true;
			(void)shutdown(to, SHUT_WR);
			return 0;
		}
		r->len = (size_t)k;
	}
}

/* Relay what can move now; events: what epoll said of the client's side
 * (client) or of libmicrohttpd's (!client). */
void
fast_tunnel_pump(struct fconn *c, uint32_t events, bool client)
{
	bool urd = false, uwr = false, drd, dwr;
	uint32_t tev;

	if (client && (events & (EPOLLHUP | EPOLLERR))) {
		fast_conn_close(c); /* reset, or gone both ways */
		return;
	}
	if (!client && (events & (EPOLLHUP | EPOLLERR)))
		c->t_gone = true; /* what it said is still read below */
	if ((!c->t_gone && relay_pump(c->fd, c->tfd, &c->up, &urd, &uwr) < 0) ||
	    relay_pump(c->tfd, c->fd, &c->down, &drd, &dwr) < 0) {
		fast_conn_close(c);
		return;
	}
	if (c->down.eof)
		c->t_gone = true;
	/* libmicrohttpd closed, and all it said is out (or cannot be). */
	if (c->t_gone && (c->down.eof || drd) && c->down.off == c->down.len) {
		fast_conn_close(c);
		return;
	}
	fast_conn_events(c, (!c->t_gone && urd ? EPOLLIN : 0u) | (dwr ? EPOLLOUT : 0u));
	/* Its side leaves the set once gone: a hung-up socket would wake
	 * the loop until the client has read the rest. */
	tev = c->t_gone ? 0u : (drd ? EPOLLIN : 0u) | (uwr ? EPOLLOUT : 0u);
	if (c->t_gone && c->tevents != TEVENTS_OUT_OF_SET) {
		(void)epoll_ctl(c->lp->epfd, EPOLL_CTL_DEL, c->tfd, NULL);
		c->tevents = TEVENTS_OUT_OF_SET;
	} else if (!c->t_gone && tev != c->tevents) {
		struct epoll_event e = { .events = tev, .data.ptr = &c->tend };

		c->tevents = tev;
		if (epoll_ctl(c->lp->epfd, EPOLL_CTL_MOD, c->tfd, &e) < 0) {
			fast_conn_close(c);
			return;
		}
	}
	c->last_us = now_mono_us();
}

/* From now on libmicrohttpd serves this connection: what is unanswered
 * in c->in (the declined request and anything after it) goes first. */
void
fast_tunnel_open(struct fconn *c)
{
	struct gw_loop *lp = c->lp;
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = &c->tend };
	int sp[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp) < 0) {
		log_warn("fast: socketpair: %s", strerror(errno));
		fast_conn_close(c);
		return;
	}
	if (MHD_add_connection(lp->mhd, sp[1], (const struct sockaddr *)&c->addr, c->addrlen) !=
	    MHD_YES) {
		/* MHD closed sp[1]. */
		log_warn("fast: libmicrohttpd did not take a connection: %s", strerror(errno));
		close(sp[0]);
		fast_conn_close(c);
		return;
	}
	c->tfd = sp[0];
	c->tend.kind = LOOP_KIND_TUNNEL;
	c->tend.c = c;
	c->tevents = EPOLLIN;
	if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, c->tfd, &e) < 0) {
		fast_conn_close(c);
		return;
	}
	c->state = FC_TUNNEL;
	metrics_fast(lp->gw, METRICS_FAST_TUNNELED);
	c->up = (struct relay){ .buf = c->in, .len = c->in_len, .cap = c->in_cap };
	c->down = (struct relay){ .buf = malloc(RELAY_BUF), .cap = RELAY_BUF };
	if (!c->down.buf) {
		fast_conn_close(c);
		return;
	}
	fast_tunnel_pump(c, 0, true);
}
