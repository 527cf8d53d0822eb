/*
 * hot.h - what hot.c (scheduling hot instances) and hotx.c (the HTTP
 * exchange with them) share inside the gateway.  Everything here is used
 * under g->lock.
 */
#ifndef FAASD_HOT_H
#define FAASD_HOT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "gw.h"

#define BROKEN_GRACE_US  300000u   /* connection lost: wait this long for the reason */
#define POOL_LINGER_US   60000000u /* an empty pool is forgotten after this */
#define HOT_HEAD_RESERVE 16384u
#define HOT_FAIL_MSG_MAX (MSG_HOT_MESSAGE_MAX + 255u) /* a failure's message */

struct hconn {
	unsigned kind; /* LOOP_KIND_HOT: first, see LOOP_KIND */
	int fd;
	int loop;      /* whose epoll set holds it, or -1 */
	bool want_out; /* registered for EPOLLOUT too */
	unsigned uses;
	struct hinst *inst;
	struct req *q; /* the invocation using it, or NULL */
};

enum hinst_state { HI_STARTING = 1, HI_READY, HI_DEAD };

/* The read end of an instance's stdout or stderr pipe and what it said
 * since the last invocation took it (at most max_log_bytes kept). */
struct hlog {
	int fd; /* -1 once the handler's side is closed */
	bool trunc;
	char *buf;
	size_t len, cap;
	struct hinst *inst;
};

struct hinst {
	uint64_t id;
	unsigned worker;
	struct hpool *pool;
	enum hinst_state state;
	unsigned busy, cap, connecting;
	bool served; /* has served an invocation (the next ones are warm) */
	uint64_t idle_since_us, init_us, ready_us;
	uint64_t epochs[GW_MAX_LOOPS]; /* the loops' epochs when it died */
	struct hlog logs[2];           /* stdout, stderr: in the I/O thread's set */
	pthread_mutex_t log_lock;      /* logs' buffers (not g->lock: a flood of
					* output is read without holding it) */
	struct hinst *next;
	struct hconn conns[];
};

struct hpool {
	char tenant[64], function[64];
	int64_t version;
	uint32_t uid;
	bool net_host;
	int runtime;
	char code_sha[65];
	json_t *config;
	unsigned max, min, cap, idle_s;
	uint64_t timeout_ms;
	int64_t tenant_max;
	unsigned ninst, nstarting;
	struct hinst *insts;
	struct req *whead, *wtail;
	unsigned nwait;
	uint64_t empty_since_us;
	uint64_t prewarm_after_us; /* min_instances waits after a failed start */
	bool blocked;              /* its waiters' start was refused (a cap)... */
	uint64_t blocked_gen;      /* ...at this hot.room_gen */
	uint64_t blocked_us;       /* ...at this time (no worker: tried again) */
	struct hpool *next;
};

/* hot.c */
int64_t hot_cfg_int(json_t *cfg, const char *key);
void hot_resume(struct req *q);
void hot_wait_unlink(struct req *q);
void hot_room(struct gw *g);
void hot_wait_push(struct hpool *p, struct req *q, bool front);
void hot_conn_close(struct hconn *c);
/* Take q off its connection (returned, now free; or NULL) and its queue. */
struct hconn *hot_detach(struct req *q);
/* Detach q from its connection or queue and answer it with an error. */
void hot_fail(struct req *q, unsigned status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The gateway ends an instance (it leaves service at once). */
void hot_inst_stop(struct gw *g, struct hinst *in, unsigned status, const char *code,
		   const char *msg);
/* Give waiting invocations free connections; ask for what they lack. */
void hot_pool_serve(struct gw *g, struct hpool *p);
/* An open idle connection of p, preferably in loop's epoll set. */
struct hconn *hot_free_conn(struct hpool *p, unsigned loop);
/* What the instance wrote since the last invocation took it, to q's record
 * (read to the end first: a handler logs before it answers). */
void hot_log_take(struct gw *g, struct hinst *in, struct req *q);

/* hotx.c */
/* Send q on c (c becomes q's); the answer is read by hot_conn_event. */
void hot_assign(struct gw *g, struct hconn *c, struct req *q);
/* Build q's request head for the instance.  0 or -ENOMEM. */
int hot_build_head(struct req *q);

#endif
