/*
 * fast.h - what fast.c (the fast path's connections, requests and answers)
 * and fasttun.c (its tunnel to libmicrohttpd) share.  Used only by the
 * event loop that owns a connection.
 */
#ifndef FAASD_FAST_H
#define FAASD_FAST_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "gw.h"

#define FAST_BODY_MAX      (1u << 20) /* larger bodies: libmicrohttpd */
#define FAST_IN_MIN        4096u
#define FAST_IDLE_US       120000000ull /* as MHD_OPTION_CONNECTION_TIMEOUT */
#define FAST_MAX_CONNS     8192u
#define RELAY_BUF          65536u
#define STREAM_PIECE       65536u
#define TEVENTS_OUT_OF_SET 0xffffffffu

enum fstate {
	FC_NEW = 1, /* accepted; its first bytes decide */
	FC_READ,    /* reading a request */
	FC_BUSY,    /* the invocation runs */
	FC_WRITE,   /* writing the answer */
	FC_STREAM,  /* writing a streamed answer as it comes */
	FC_TUNNEL,  /* relaying to libmicrohttpd */
	FC_DEAD,    /* closed; freed after the batch */
};

struct relay {
	char *buf;
	size_t off, len, cap;
	bool eof;
};

struct fconn {
	unsigned kind; /* LOOP_KIND_FAST: first, see LOOP_KIND */
	int fd;
	struct gw_loop *lp;
	enum fstate state;
	uint32_t events; /* registered for fd */
	/* what the client sent */
	char *in;
	size_t in_len, in_cap;
	char *hb; /* a copy of the current head, parsed in place */
	size_t hb_cap;
	struct fast_head h;
	size_t req_len; /* head + body of the current request */
	struct req *q;
	bool close_after;
	bool rd_closed; /* the client shut its sending side */
	/* the answer */
	unsigned status;
	struct buf out; /* status line and fields, or a streamed piece */
	size_t out_off;
	char *body;
	size_t body_len, body_off;
	void (*body_free)(void *);
	void *body_cls;
	bool chunked;  /* a streamed answer of unknown length */
	uint64_t spos; /* streamed body bytes taken */
	bool sdone;    /* the last piece is in out */
	uint64_t last_us;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	struct fconn *prev, *next; /* lp->fcs, or lp's dead list */
	/* tunnel */
	struct {
		unsigned kind; /* LOOP_KIND_TUNNEL */
		struct fconn *c;
	} tend;
	int tfd;
	uint32_t tevents;      /* registered for tfd, or TEVENTS_OUT_OF_SET */
	bool t_gone;           /* libmicrohttpd's side hung up or ended */
	struct relay up, down; /* client to libmicrohttpd, and back */
};

/* Close c (its request ends, its fds close); freed after the batch. */
void fast_conn_close(struct fconn *c);
/* Register c->fd for ev (no call when unchanged). */
void fast_conn_events(struct fconn *c, uint32_t ev);
/* fasttun.c: hand c to libmicrohttpd from its first unanswered byte on;
 * and relay what can move (events: epoll's, of the client's side if
 * client, else of libmicrohttpd's). */
void fast_tunnel_open(struct fconn *c);
void fast_tunnel_pump(struct fconn *c, uint32_t events, bool client);

#endif
