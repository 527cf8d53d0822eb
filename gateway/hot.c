/*
 * hot.c - hot instances (runtimes http, python3, node) from the gateway's
 * side: which instance serves an invocation, and the HTTP/1.1 exchange
 * with it.
 *
 * Workers own the instances' processes: they start them in sandboxes, wait
 * until the handler accepts on $FAAS_LISTEN, connect, and hand the
 * connected socket over (MSG_HOT_READY); they kill and reap them, and say
 * why one ended (MSG_HOT_GONE).  The gateway, the only process that sees
 * every worker, owns the scheduling: per function version a pool of
 * instances and a queue of waiting invocations; the caps (max_instances
 * per function, the tenant's quota), idle timeouts (scale to zero),
 * min_instances, the invocation timeout and the queue wait (then 429).
 *
 * The warm path: an MHD thread finds an idle connection in the version's
 * pool (a hash lookup under g->lock), writes the request head and body to
 * it and suspends; the I/O thread reads the response into one buffer and
 * resumes the connection, which answers from that buffer.  No worker
 * message, no disk, no process is involved, and a slow client holds only
 * the buffer, never the instance.
 *
 * INVARIANT: an instance that crashed, timed out, was OOM-killed or broke
 * the protocol is never given another invocation: it leaves its pool at
 * once (HI_DEAD) and the worker is told to end it.
 * Dead instances are freed only between two batches of I/O-thread events
 * (hot_reap), so an event already fetched for one of their connections
 * finds fd -1 rather than freed memory.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>
#include <sys/epoll.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fnconfig.h"
#include "gw.h"
#include "log.h"
#include "util.h"

#define BROKEN_GRACE_US  300000u   /* connection lost: wait this long for the reason */
#define POOL_LINGER_US   60000000u /* an empty pool is forgotten after this */
#define HOT_HEAD_RESERVE 16384u

struct hconn {
	int fd;
	int loop;      /* whose epoll set holds it, or -1 */
	bool want_out; /* registered for EPOLLOUT too */
	unsigned uses;
	struct hinst *inst;
	struct req *q; /* the invocation using it, or NULL */
};

enum hinst_state { HI_STARTING = 1, HI_READY, HI_DEAD };

struct hinst {
	uint64_t id;
	unsigned worker;
	struct hpool *pool;
	enum hinst_state state;
	unsigned busy, cap, connecting;
	bool served; /* has served an invocation (the next ones are warm) */
	uint64_t born_us, idle_since_us, init_us, ready_us;
	uint64_t epochs[GW_MAX_LOOPS]; /* the loops' epochs when it died */
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
	struct hpool *next;
};

static struct hinst *graveyard; /* dead, freed by hot_reap */

static unsigned
pool_hash(const char *t, const char *f, int64_t v)
{
	uint32_t h = 2166136261u;

	for (const char *p = t; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h = (h ^ '/') * 16777619u;
	for (const char *p = f; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h ^= (uint32_t)v * 2654435761u;
	return h % HOT_BUCKETS;
}

static int64_t
cfg_int(json_t *cfg, const char *key)
{
	return json_integer_value(json_object_get(cfg, key));
}

static struct hpool *
pool_find(struct gw *g, const char *t, const char *f, int64_t v)
{
	for (struct hpool *p = g->hot.buckets[pool_hash(t, f, v)]; p; p = p->next)
		if (p->version == v && strcmp(p->function, f) == 0 && strcmp(p->tenant, t) == 0)
			return p;
	return NULL;
}

/* The pool of a version, made when missing.  min_instances starts at 0:
 * only versions an alias routes to are kept warm (hot_tick's scan). */
static struct hpool *
pool_make(struct gw *g, const char *tenant, const char *fn, int64_t version, const char *code_sha,
	  uint32_t uid, bool net_host, int64_t tenant_max, json_t *config)
{
	struct hpool *p = pool_find(g, tenant, fn, version);
	unsigned b;

	if (p) {
		p->tenant_max = tenant_max;
		return p;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	(void)str_copy(p->tenant, sizeof(p->tenant), tenant);
	(void)str_copy(p->function, sizeof(p->function), fn);
	(void)str_copy(p->code_sha, sizeof(p->code_sha), code_sha);
	p->version = version;
	p->uid = uid;
	p->net_host = net_host;
	p->config = json_incref(config);
	p->runtime = fnconfig_runtime(json_string_value(json_object_get(p->config, "runtime")));
	p->max = (unsigned)cfg_int(p->config, "max_instances");
	p->cap = (unsigned)MAX(cfg_int(p->config, "concurrency_per_instance"), 1);
	p->idle_s = (unsigned)cfg_int(p->config, "idle_timeout_s");
	p->timeout_ms = (uint64_t)cfg_int(p->config, "timeout_s") * 1000;
	p->tenant_max = tenant_max;
	p->empty_since_us = now_mono_us();
	b = pool_hash(p->tenant, p->function, p->version);
	p->next = g->hot.buckets[b];
	g->hot.buckets[b] = p;
	return p;
}

static struct hpool *
pool_get(struct gw *g, struct req *q)
{
	return pool_make(g, q->route.tenant, q->route.function, q->sr.version, q->sr.code_sha256,
			 q->uid, q->net_host, q->hx.tenant_max, q->sr.config);
}

/* Instances of one function (same tenant), or of the whole tenant. */
static unsigned
count_insts(struct gw *g, const char *tenant, const char *fn)
{
	unsigned n = 0;

	for (unsigned b = 0; b < HOT_BUCKETS; b++)
		for (struct hpool *p = g->hot.buckets[b]; p; p = p->next)
			if (strcmp(p->tenant, tenant) == 0 && (!fn || strcmp(p->function, fn) == 0))
				n += p->ninst;
	return n;
}

static void
resume(struct req *q)
{
	q->answered = true;
	q->suspended = false;
	gw_resume(q);
}

static void
wait_unlink(struct req *q)
{
	struct hpool *p = q->hx.pool;

	if (!p)
		return;
	for (struct req **pp = &p->whead; *pp; pp = &(*pp)->hx.wnext)
		if (*pp == q) {
			*pp = q->hx.wnext;
			break;
		}
	p->wtail = NULL;
	for (struct req *w = p->whead; w; w = w->hx.wnext)
		p->wtail = w;
	p->nwait--;
	q->hx.wnext = NULL;
	q->hx.pool = NULL;
}

static void
wait_push(struct hpool *p, struct req *q, bool front)
{
	q->hx.pool = p;
	q->hx.wnext = NULL;
	if (front) {
		q->hx.wnext = p->whead;
		p->whead = q;
		if (!p->wtail)
			p->wtail = q;
	} else {
		if (p->wtail)
			p->wtail->hx.wnext = q;
		else
			p->whead = q;
		p->wtail = q;
	}
	p->nwait++;
}

static void
conn_close(struct hconn *c)
{
	if (c->fd >= 0)
		close(c->fd); /* which also takes it out of the epoll set */
	c->fd = -1;
}

/* Detach q from wherever it is and answer it with an error. */
static void fail_q(struct req *q, unsigned status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void
fail_q(struct req *q, unsigned status, const char *code, const char *fmt, ...)
{
	va_list ap;

	if (q->hx.conn) {
		struct hconn *c = q->hx.conn;

		c->q = NULL;
		c->inst->busy--;
		q->hx.conn = NULL;
	}
	wait_unlink(q);
	q->hx.fail_status = status;
	q->hx.fail_code = code;
	va_start(ap, fmt);
	vsnprintf(q->hx.fail_msg, sizeof(q->hx.fail_msg), fmt, ap);
	va_end(ap);
	if (q->hx.streaming) {
		/* The head may be on its way: the body ends in an error (or,
		 * not answered yet, hot_respond sends the failure). */
		q->hx.stream_failed = true;
		if (q->hx.reader_waiting) {
			q->hx.reader_waiting = false;
			resume(q);
		}
		return;
	}
	q->hx.done_us = now_mono_us();
	resume(q);
}

/* Take an instance out of service for good; its in-flight invocations get
 * status/code/msg.  The worker is told separately (or told us). */
static void
inst_bury(struct gw *g, struct hinst *in, unsigned status, const char *code, const char *msg)
{
	struct hpool *p = in->pool;

	if (in->state == HI_DEAD)
		return;
	for (struct hinst **pp = &p->insts; *pp; pp = &(*pp)->next)
		if (*pp == in) {
			*pp = in->next;
			break;
		}
	if (in->state == HI_STARTING)
		p->nstarting--;
	in->state = HI_DEAD;
	p->ninst--;
	if (!p->ninst && !p->nwait)
		p->empty_since_us = now_mono_us();
	if (g->workers[in->worker].hot)
		g->workers[in->worker].hot--;
	g->hot.ninst--;
	for (unsigned i = 0; i < in->cap; i++) {
		struct hconn *c = &in->conns[i];

		conn_close(c);
		if (c->q)
			fail_q(c->q, status, code, "%s", msg);
	}
	/* A loop may hold an event for one of its connections in the batch
	 * it is handling now: freed once every loop is past that batch. */
	for (unsigned i = 0; i < g->nloops; i++)
		in->epochs[i] = atomic_load(&g->loops[i].epoch);
	in->next = graveyard;
	graveyard = in;
}

static void
worker_tell(struct gw *g, unsigned worker, uint16_t type, uint64_t id)
{
	struct msg_out m;
	int r;

	if (g->workers[worker].fd < 0)
		return;
	msg_out_init(&m, type);
	msg_put_u64(&m, MSG_T_ID, id);
	r = msg_send(g->workers[worker].fd, &m);
	msg_out_free(&m);
	if (r < 0)
		log_warn("cannot reach worker %u about instance %llu: %s", worker,
			 (unsigned long long)id, strerror(-r));
}

/* The gateway ends an instance: idle, timed out, broken, evicted. */
static void
inst_stop(struct gw *g, struct hinst *in, unsigned status, const char *code, const char *msg)
{
	if (in->state == HI_DEAD)
		return;
	worker_tell(g, in->worker, MSG_HOT_STOP, in->id);
	inst_bury(g, in, status, code, msg);
}

/* ---- starting instances ---- */

static int
pick_worker(struct gw *g)
{
	int best = -1;

	for (unsigned i = 0; i < g->nworkers; i++)
		if (g->workers[i].fd >= 0 &&
		    (best < 0 || g->workers[i].hot + g->workers[i].inflight <
					 g->workers[best].hot + g->workers[best].inflight))
			best = (int)i;
	return best;
}

/* An idle instance of another version (fn set) or of any function of the
 * tenant, to make room under a cap. */
static struct hinst *
idle_victim(struct gw *g, const struct hpool *self, const char *fn)
{
	struct hinst *best = NULL;

	for (unsigned b = 0; b < HOT_BUCKETS; b++)
		for (struct hpool *p = g->hot.buckets[b]; p; p = p->next) {
			if (p == self || strcmp(p->tenant, self->tenant) != 0 ||
			    (fn && strcmp(p->function, fn) != 0) || p->nwait)
				continue;
			for (struct hinst *in = p->insts; in; in = in->next)
				if (in->state == HI_READY && !in->busy &&
				    (!best || in->idle_since_us < best->idle_since_us))
					best = in;
		}
	return best;
}

/* Start one more instance of p, making room under the caps by stopping an
 * idle instance of another version or function.  0 or -errno. */
static int
spawn(struct gw *g, struct hpool *p)
{
	static const char *const rt_names[] = { "", "exec", "http", "python3", "node" };
	struct msg_out m;
	struct hinst *in;
	char buf[PATH_MAX], code_dir[PATH_MAX];
	int w, r;

	if (count_insts(g, p->tenant, p->function) >= p->max) {
		struct hinst *victim = idle_victim(g, p, p->function);

		if (!victim)
			return -EAGAIN;
		inst_stop(g, victim, 502, "function_error", "instance stopped to make room");
	}
	if ((int64_t)count_insts(g, p->tenant, NULL) >= p->tenant_max) {
		struct hinst *victim = idle_victim(g, p, NULL);

		if (!victim)
			return -EAGAIN;
		inst_stop(g, victim, 502, "function_error", "instance stopped to make room");
	}
	w = pick_worker(g);
	if (w < 0)
		return -EAGAIN;
	in = calloc(1, sizeof(*in) + p->cap * sizeof(struct hconn));
	if (!in)
		return -ENOMEM;
	in->id = ++g->hot.next_id;
	in->worker = (unsigned)w;
	in->pool = p;
	in->cap = p->cap;
	in->state = HI_STARTING;
	in->born_us = in->idle_since_us = now_mono_us();
	for (unsigned i = 0; i < in->cap; i++) {
		in->conns[i].fd = -1;
		in->conns[i].loop = -1;
		in->conns[i].inst = in;
	}

	(void)str_printf(code_dir, sizeof(code_dir), "%s/code/%s/%s", g->cfg.state_dir, p->tenant,
			 p->code_sha);
	msg_out_init(&m, MSG_HOT_START);
	msg_put_u64(&m, MSG_T_ID, in->id);
	msg_put_str(&m, MSG_T_INVOCATION_ID, "");
	msg_put_str(&m, MSG_T_TENANT, p->tenant);
	msg_put_str(&m, MSG_T_FUNCTION, p->function);
	msg_put_u64(&m, MSG_T_VERSION, (uint64_t)p->version);
	msg_put_u64(&m, MSG_T_UID, p->uid);
	msg_put_str(&m, MSG_T_CODE_DIR, code_dir);
	msg_put_u64(&m, MSG_T_RUNTIME, (uint64_t)p->runtime);
	msg_put_str(&m, MSG_T_HANDLER, json_string_value(json_object_get(p->config, "handler")));
	msg_put_u64(&m, MSG_T_TIMEOUT_MS, g->cfg.init_timeout_ms);
	msg_put_u64(&m, MSG_T_MEMORY_MB, (uint64_t)cfg_int(p->config, "memory_mb"));
	msg_put_u64(&m, MSG_T_MAX_OUTPUT, g->cfg.max_output_bytes);
	msg_put_u64(&m, MSG_T_NETWORK_HOST, p->net_host);
	msg_put_u64(&m, MSG_T_MAX_LOG, g->cfg.max_log_bytes);
	msg_put_u64(&m, MSG_T_HAS_BODY, 0);
	invoke_env_function(&m, p->config);
	if (!json_object_get(json_object_get(p->config, "env"), "TZ"))
		invoke_env_put(&m, "TZ", "UTC");
	invoke_env_put(&m, "FAAS_LISTEN", "/run/faas.sock");
	invoke_env_put(&m, "FAAS_TENANT", p->tenant);
	invoke_env_put(&m, "FAAS_FUNCTION_NAME", p->function);
	(void)str_printf(buf, sizeof(buf), "%lld", (long long)p->version);
	invoke_env_put(&m, "FAAS_FUNCTION_VERSION", buf);
	invoke_env_put(&m, "AWS_LAMBDA_FUNCTION_VERSION", buf);
	invoke_env_put(&m, "AWS_LAMBDA_FUNCTION_NAME", p->function);
	(void)str_printf(buf, sizeof(buf), "%lld", (long long)cfg_int(p->config, "memory_mb"));
	invoke_env_put(&m, "FAAS_MEMORY_MB", buf);
	invoke_env_put(&m, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", buf);
	(void)str_printf(buf, sizeof(buf), "%lld", (long long)cfg_int(p->config, "timeout_s"));
	invoke_env_put(&m, "FAAS_TIMEOUT_S", buf);
	invoke_env_put(&m, "FAAS_RUNTIME", rt_names[p->runtime]);
	invoke_env_put(&m, "FAAS_HANDLER",
		       json_string_value(json_object_get(p->config, "handler")));
	invoke_env_put(&m, "_HANDLER", json_string_value(json_object_get(p->config, "handler")));
	invoke_env_put(&m, "LAMBDA_TASK_ROOT", "/var/task");
	invoke_env_put(&m, "LAMBDA_RUNTIME_DIR", "/var/runtime");
	r = msg_send(g->workers[w].fd, &m);
	msg_out_free(&m);
	if (r < 0) {
		log_err("cannot start an instance of %s/%s on worker %d: %s", p->tenant,
			p->function, w, strerror(-r));
		free(in);
		return r;
	}
	in->next = p->insts;
	p->insts = in;
	p->ninst++;
	p->nstarting++;
	g->workers[w].hot++;
	g->hot.ninst++;
	log_debug("starting hot instance %llu of %s/%s v=%lld on worker %d",
		  (unsigned long long)in->id, p->tenant, p->function, (long long)p->version, w);
	return 0;
}

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

	while (q && q->hx.sent < q->hx.out_len + q->body_len) {
		struct iovec iov[2];
		int n = 0;
		ssize_t w;

		if (q->hx.sent < q->hx.out_len)
			iov[n++] = (struct iovec){ q->hx.out + q->hx.sent,
						   q->hx.out_len - q->hx.sent };
		if (q->body_len) {
			size_t off = q->hx.sent > q->hx.out_len ? q->hx.sent - q->hx.out_len : 0;

			iov[n++] = (struct iovec){ q->body + off, q->body_len - off };
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

static void
assign(struct gw *g, struct hconn *c, struct req *q)
{
	struct hinst *in = c->inst;
	uint64_t now = now_mono_us();
	char dl[16];

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
		uint64_t wall = now_wall_ms() + in->pool->timeout_ms;

		(void)str_printf(dl, sizeof(dl), "%013llu", (unsigned long long)wall);
		memcpy(q->hx.out + q->hx.deadline_off, dl, 13);
	}
	conn_attach(g, c, q->loop);
	conn_write(g, c);
}

/* An open, idle connection of p, preferably one already in loop's epoll
 * set (no move between sets). */
static struct hconn *
free_conn(struct hpool *p, unsigned loop)
{
	struct hconn *any = NULL;

	for (struct hinst *in = p->insts; in; in = in->next) {
		if (in->state != HI_READY || in->busy >= in->cap)
			continue;
		for (unsigned i = 0; i < in->cap; i++) {
			struct hconn *c = &in->conns[i];

			if (c->fd < 0 || c->q)
				continue;
			if (c->loop == (int)loop)
				return c;
			if (!any)
				any = c;
		}
	}
	return any;
}

/* Give waiting invocations to free connections, and ask for what more
 * they need: connections to ready instances, then new instances. */
static void
pool_serve(struct gw *g, struct hpool *p)
{
	unsigned coming = 0;

	while (p->whead) {
		struct req *q = p->whead;
		struct hconn *c = free_conn(p, q->loop);

		if (!c)
			break;
		wait_unlink(q);
		assign(g, c, q);
	}
	if (!p->nwait)
		return;
	for (struct hinst *in = p->insts; in; in = in->next) {
		unsigned open = 0;

		if (in->state == HI_STARTING) {
			coming += in->cap;
			continue;
		}
		if (in->state != HI_READY)
			continue;
		for (unsigned i = 0; i < in->cap; i++)
			open += in->conns[i].fd >= 0 && !in->conns[i].q;
		coming += in->connecting;
		while (coming < p->nwait && in->busy + open + in->connecting < in->cap) {
			worker_tell(g, in->worker, MSG_HOT_CONNECT, in->id);
			in->connecting++;
			coming++;
		}
	}
	while (coming < p->nwait && spawn(g, p) == 0)
		coming += p->cap;
}

/* The answer is in: the connection is free again (or closed). */
static void
release(struct hconn *c, bool reuse)
{
	struct req *q = c->q;
	struct hinst *in = c->inst;
	uint64_t now = now_mono_us();

	c->q = NULL;
	q->hx.conn = NULL;
	in->busy--;
	in->idle_since_us = now;
	if (!reuse)
		conn_close(c);
	q->hx.done_us = now;
}

static void
finish(struct gw *g, struct hconn *c, bool reuse)
{
	struct req *q = c->q;
	struct hpool *p = c->inst->pool;
	uint64_t first = q->hx.done_us;

	release(c, reuse);
	if (!q->hx.streaming)
		resume(q);
	else {
		q->hx.done_us = first; /* the duration already sent: to the head */
		q->hx.stream_done = true;
		if (q->hx.reader_waiting) {
			q->hx.reader_waiting = false;
			resume(q);
		}
	}
	pool_serve(g, p);
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
		fail_q(q, 502, "function_error", "handler response larger than %llu bytes",
		       (unsigned long long)g->cfg.max_output_bytes);
		conn_close(c);
		return;
	}
	for (unsigned i = 0; i < x->resp.nheaders; i++)
		if (x->resp.h[i].name_len == 21 &&
		    strncasecmp(x->in + x->resp.h[i].name_off, "X-Faas-Function-Error", 21) == 0)
			return;
	x->streaming = true;
	x->done_us = now_mono_us();
	resume(q);
}

/* MHD's content reader of a streamed answer (the loop thread, in MHD_run). */
static ssize_t
stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct req *q = cls;
	struct hx *x = &q->hx;
	struct gw *g = q->gw;
	ssize_t r;
	size_t avail;

	pthread_mutex_lock(&g->lock);
	avail = x->resp.framing == HRESP_CHUNKED ? x->chunk.dec : x->in_len - x->resp.head_len;
	if (pos < avail) {
		size_t n = MIN(avail - pos, max);

		memcpy(buf, x->in + x->resp.head_len + pos, n);
		r = (ssize_t)n;
	} else if (x->stream_done)
		r = MHD_CONTENT_READER_END_OF_STREAM;
	else if (x->stream_failed)
		r = MHD_CONTENT_READER_END_WITH_ERROR;
	else {
		/* Nothing yet: wait, suspended, for conn_read. */
		x->reader_waiting = true;
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
	conn_close(c);
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
	inst_stop(g, in, 502, "function_error", msg);
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
 * memory.  Touches only x and the socket: callable without the lock by
 * whoever owns the exchange. */
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

/* The I/O thread's side of an exchange (under the lock). */
static void
conn_read(struct gw *g, struct hconn *c)
{
	struct req *q = c->q;
	char diag[160];
	int r;

	if (!q) {
		/* Idle: the handler closed it (or sent what nobody asked). */
		conn_close(c);
		return;
	}
	r = hx_read(g, c->fd, &q->hx, diag, sizeof(diag));
	if (r == 0) {
		/* More to come: the socket stays in the loop's set. */
		if (q->hx.head_done && !q->hx.streaming)
			stream_start(g, c);
		else if (q->hx.reader_waiting) {
			q->hx.reader_waiting = false;
			resume(q);
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
		fail_q(q, 502, "function_error", "handler response larger than %llu bytes",
		       (unsigned long long)g->cfg.max_output_bytes);
		conn_close(c);
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
		    c->q->hx.sent < c->q->hx.out_len + c->q->body_len)
			conn_write(g, c);
		else if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			conn_read(g, c);
	}
	pthread_mutex_unlock(&g->lock);
}

/* ---- the request ---- */

struct sb {
	char *p;
	size_t len, cap;
	bool err;
};

static void
sb_add(struct sb *b, const char *s, size_t n)
{
	if (b->err)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = MAX(b->cap * 2, b->len + n + 1024);
		char *np = realloc(b->p, cap);

		if (!np) {
			b->err = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

static void
sb_str(struct sb *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

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
	struct sb *b = q->scratch;

	(void)kind;
	if (!value || !request_header_passes(key, q->token_used))
		return MHD_YES;
	sb_str(b, key);
	sb_add(b, ": ", 2);
	sb_str(b, value);
	sb_add(b, "\r\n", 2);
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

static int
build_head(struct req *q)
{
	struct sb b = { 0 };
	const char *t = raw_target(q);
	const union MHD_ConnectionInfo *ci;
	char buf[128], addr[INET6_ADDRSTRLEN] = "";

	sb_str(&b, q->method);
	sb_add(&b, " ", 1);
	if (!t) {
		/* Fall back to the decoded path and the query as received. */
		const char *qs = q->uri ? strchr(q->uri, '?') : NULL;

		sb_str(&b, *q->route.rest ? q->route.rest : "/");
		if (qs)
			sb_str(&b, qs);
	} else if (*t != '/') {
		sb_add(&b, "/", 1);
		sb_str(&b, t);
	} else
		sb_str(&b, t);
	sb_str(&b, " HTTP/1.1\r\n");
	q->scratch = &b;
	MHD_get_connection_values(q->conn, MHD_HEADER_KIND, header_cb, q);
	q->scratch = NULL;
	(void)str_printf(buf, sizeof(buf), "Content-Length: %zu\r\n", q->body_len);
	sb_str(&b, buf);
	sb_str(&b, "X-Faas-Invocation-Id: ");
	sb_str(&b, q->invocation_id);
	(void)str_printf(buf, sizeof(buf), "\r\nX-Faas-Function: %s/%s\r\nX-Faas-Version: %lld\r\n",
			 q->route.tenant, q->route.function, (long long)q->sr.version);
	sb_str(&b, buf);
	ci = MHD_get_connection_info(q->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr) {
		if (ci->client_addr->sa_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)ci->client_addr)->sin_addr, addr,
				  sizeof(addr));
		else if (ci->client_addr->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ci->client_addr)->sin6_addr,
				  addr, sizeof(addr));
		if (*addr) {
			sb_str(&b, "X-Forwarded-For: ");
			sb_str(&b, addr);
			sb_str(&b, "\r\n");
		}
	}
	sb_str(&b, "X-Faas-Deadline-Ms: ");
	q->hx.deadline_off = (int64_t)b.len;
	sb_str(&b, "0000000000000\r\n\r\n");
	if (b.err) {
		free(b.p);
		return -ENOMEM;
	}
	q->hx.out = b.p;
	q->hx.out_len = b.len;
	return 0;
}

enum MHD_Result
hot_dispatch(struct req *q)
{
	struct gw *g = q->gw;
	struct hpool *p;
	struct hconn *c;

	q->hx.head_req = strcmp(q->method, "HEAD") == 0;
	if (build_head(q) < 0)
		return gw_error(q, 500, "internal", "out of memory");
	/* The answer comes later: from this loop when the instance answers,
	 * or from another thread (queue, failures).  Suspended first, so
	 * that any of them may resume it at once. */
	MHD_suspend_connection(q->conn);
	q->suspended = true;
	pthread_mutex_lock(&g->lock);
	q->started_us = now_mono_us();
	p = pool_get(g, q);
	c = p && !p->whead ? free_conn(p, q->loop) : NULL;
	if (!p)
		fail_q(q, 500, "internal", "out of memory");
	else if (c)
		assign(g, c, q);
	else if (!g->cfg.queue_wait_ms && !p->nstarting &&
		 count_insts(g, p->tenant, p->function) >= p->max)
		fail_q(q, 429, "throttled", "all %u instances of %s are busy", p->max, p->function);
	else {
		q->hx.wait_until_us = q->started_us + g->cfg.queue_wait_ms * 1000;
		wait_push(p, q, false);
		pool_serve(g, p);
	}
	pthread_mutex_unlock(&g->lock);
	return MHD_YES;
}

/* ---- messages from workers ---- */

static struct hinst *
inst_find(struct gw *g, uint64_t id, unsigned worker)
{
	for (unsigned b = 0; b < HOT_BUCKETS; b++)
		for (struct hpool *p = g->hot.buckets[b]; p; p = p->next)
			for (struct hinst *in = p->insts; in; in = in->next)
				if (in->id == id && in->worker == worker)
					return in;
	return NULL;
}

static void
gone_reason(const struct hinst *in, const struct msg_hot *h, unsigned *status, const char **code,
	    char *msg, size_t n)
{
	*status = 502;
	*code = "function_error";
	switch (h->result) {
	case INVOKE_OOM:
		*code = "function_out_of_memory";
		(void)str_printf(msg, n,
				 "function exceeded its memory limit of %lld MB and was killed",
				 (long long)cfg_int(in->pool->config, "memory_mb"));
		break;
	case INVOKE_SIGNALED:
		(void)str_printf(msg, n, "handler was killed by signal %llu (%s)",
				 (unsigned long long)h->code, strsignal((int)h->code));
		break;
	case INVOKE_EXITED:
		(void)str_printf(msg, n, "handler exited with status %llu during the invocation",
				 (unsigned long long)h->code);
		break;
	case INVOKE_INIT_FAILED:
		*code = "function_init_failed";
		(void)str_printf(msg, n, "%s", h->message);
		break;
	case INVOKE_SPAWN_FAILED:
		*code = "function_init_failed";
		(void)str_printf(msg, n, "could not start the instance: %s",
				 strerror((int)h->code));
		break;
	default:
		(void)str_printf(msg, n, "the instance was stopped");
		break;
	}
}

void
hot_worker_msg(struct gw *g, unsigned worker, struct msg_in *in)
{
	struct msg_hot h;
	struct hinst *it;

	if (msg_hot_decode(in, &h) < 0) {
		log_err("malformed hot message (type %u) from worker %u", in->type, worker);
		return;
	}
	in->nfds = 0; /* h.fd is ours now */
	pthread_mutex_lock(&g->lock);
	it = inst_find(g, h.id, worker);
	if (in->type == MSG_HOT_READY) {
		struct hconn *slot = NULL;

		for (unsigned i = 0; it && i < it->cap && !slot; i++)
			if (it->conns[i].fd < 0 && !it->conns[i].q)
				slot = &it->conns[i];
		if (!slot) {
			close(h.fd);
		} else {
			/* In no loop's epoll set until a request of that loop
			 * uses it (conn_attach). */
			slot->fd = h.fd;
			slot->loop = -1;
			slot->uses = 0;
		}
		if (it && it->state == HI_STARTING) {
			it->state = HI_READY;
			it->init_us = h.duration_us;
			it->idle_since_us = it->ready_us = now_mono_us();
			it->pool->nstarting--;
		} else if (it && it->connecting)
			it->connecting--;
		if (it)
			pool_serve(g, it->pool);
	} else if (in->type == MSG_HOT_GONE && it) {
		struct hpool *p = it->pool;
		unsigned status;
		const char *code;
		char msg[MSG_HOT_MESSAGE_MAX + 128];
		bool init = it->state == HI_STARTING;

		gone_reason(it, &h, &status, &code, msg, sizeof(msg));
		if (init)
			/* A version that cannot start is not kept warm in a loop. */
			p->prewarm_after_us = now_mono_us() + 10000000u;
		log_info("hot instance %llu of %s/%s v=%lld ended: %s", (unsigned long long)it->id,
			 p->tenant, p->function, (long long)p->version, msg);
		inst_bury(g, it, status, code, msg);
		/* Those waiting for the failed start fail with it, unless
		 * another instance is up to serve them. */
		if (init && !free_conn(p, 0) && p->nstarting == 0) {
			bool any_ready = false;

			for (struct hinst *o = p->insts; o; o = o->next)
				any_ready |= o->state == HI_READY;
			while (!any_ready && p->whead)
				fail_q(p->whead, status, code, "%s", msg);
		}
		pool_serve(g, p);
	}
	pthread_mutex_unlock(&g->lock);
}

void
hot_worker_down(struct gw *g, unsigned worker)
{
	pthread_mutex_lock(&g->lock);
	for (unsigned b = 0; b < HOT_BUCKETS; b++)
		for (struct hpool *p = g->hot.buckets[b]; p; p = p->next) {
			struct hinst *in = p->insts, *next;

			for (; in; in = next) {
				next = in->next;
				if (in->worker == worker)
					inst_bury(g, in, 502, "function_error",
						  "the instance was lost: its worker restarted");
			}
		}
	g->workers[worker].hot = 0;
	for (unsigned b = 0; b < HOT_BUCKETS; b++)
		for (struct hpool *p = g->hot.buckets[b]; p; p = p->next)
			if (p->nwait)
				pool_serve(g, p);
	pthread_mutex_unlock(&g->lock);
}

/* ---- time ---- */

static void
pool_tick(struct gw *g, struct hpool *p, uint64_t now, bool *busy)
{
	struct hinst *in, *next;

	while (p->whead && p->whead->hx.wait_until_us <= now)
		fail_q(p->whead, 429, "throttled",
		       "no instance of %s was free within %llu ms (max_instances %u)", p->function,
		       (unsigned long long)g->cfg.queue_wait_ms, p->max);
	*busy |= p->nwait > 0;
	for (in = p->insts; in; in = next) {
		next = in->next;
		for (unsigned i = 0; i < in->cap && in->state != HI_DEAD; i++) {
			struct hconn *c = &in->conns[i];
			struct req *q = c->q;

			if (!q)
				continue;
			*busy = true;
			if (q->hx.broken_us && now - q->hx.broken_us > BROKEN_GRACE_US &&
			    q->hx.in_len == 0 && c->uses > 1 && !q->hx.retried) {
				/* No byte back on a reused keep-alive connection
				 * and the instance lives: the handler closed it
				 * just as the request went out.  Once more, on
				 * another connection. */
				c->q = NULL;
				q->hx.conn = NULL;
				in->busy--;
				q->hx.retried = true;
				q->hx.broken_us = 0;
				q->hx.wait_until_us = now + g->cfg.queue_wait_ms * 1000;
				wait_push(p, q, true);
				pool_serve(g, p);
			} else if (q->hx.broken_us && now - q->hx.broken_us > BROKEN_GRACE_US) {
				fail_q(q, 502, "function_error",
				       "handler closed the connection before a complete response");
			} else if (now >= q->hx.deadline_us) {
				char msg[128];

				(void)str_printf(msg, sizeof(msg),
						 "function did not finish within %llu s",
						 (unsigned long long)p->timeout_ms / 1000);
				fail_q(q, 504, "function_timeout", "%s", msg);
				inst_stop(g, in, 502, "function_error",
					  "instance stopped: another invocation on it timed out");
			}
		}
		if (in->state == HI_READY && !in->busy && p->ninst > p->min &&
		    now - in->idle_since_us >= (uint64_t)p->idle_s * 1000000u)
			inst_stop(g, in, 502, "function_error", "instance stopped after idling");
	}
	if (p->ninst < p->min && !p->nwait && now >= p->prewarm_after_us) {
		/* min_instances of a version an alias routes to. */
		while (p->ninst < p->min && spawn(g, p) == 0)
			;
	}
}

/* What the store says must be kept warm, collected outside the lock. */
struct warm_list {
	struct warm_item {
		char tenant[64], function[64], code_sha[65];
		uint32_t uid;
		bool net_host;
		int64_t version, tenant_max;
		json_t *config;
	} * v;
	size_t n, cap;
};

static int
warm_collect(const struct store_warm *w, void *ud)
{
	struct warm_list *l = ud;
	struct warm_item *it;
	const char *net = json_string_value(json_object_get(w->config, "network"));
	bool host = net && strcmp(net, "host") == 0;

	if (fnconfig_runtime(json_string_value(json_object_get(w->config, "runtime"))) ==
		    RUNTIME_EXEC ||
	    (host && !w->allow_host_network))
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct warm_item *nv = realloc(l->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = cap;
	}
	it = &l->v[l->n++];
	(void)str_copy(it->tenant, sizeof(it->tenant), w->tenant);
	(void)str_copy(it->function, sizeof(it->function), w->function);
	(void)str_copy(it->code_sha, sizeof(it->code_sha), w->code_sha256);
	it->uid = w->uid;
	it->net_host = host;
	it->version = w->version;
	it->tenant_max = w->tenant_max_instances;
	it->config = json_incref(w->config);
	return 0;
}

/* After any change in the store: min_instances of the versions aliases
 * route to (hot_tick starts them), and 0 for every other pool. */
static void
warm_scan(struct gw *g)
{
	struct warm_list l = { 0 };
	uint64_t gen = store_generation(g->store);
	int r;

	if (gen == g->hot.warm_gen && g->hot.warm_scanned)
		return;
	r = store_warm_targets(g->store, warm_collect, &l);
	if (r < 0)
		log_warn("cannot list the versions to keep warm: %s", strerror(-r));
	pthread_mutex_lock(&g->lock);
	if (r == 0) {
		for (unsigned b = 0; b < HOT_BUCKETS; b++)
			for (struct hpool *p = g->hot.buckets[b]; p; p = p->next)
				p->min = 0;
		for (size_t i = 0; i < l.n; i++) {
			struct warm_item *it = &l.v[i];
			struct hpool *p =
				pool_make(g, it->tenant, it->function, it->version, it->code_sha,
					  it->uid, it->net_host, it->tenant_max, it->config);

			if (p)
				p->min = (unsigned)MIN(cfg_int(it->config, "min_instances"),
						       (int64_t)p->max);
		}
		g->hot.warm_gen = gen;
		g->hot.warm_scanned = true;
	}
	pthread_mutex_unlock(&g->lock);
	for (size_t i = 0; i < l.n; i++)
		json_decref(l.v[i].config);
	free(l.v);
}

int
hot_tick(struct gw *g)
{
	uint64_t now = now_mono_us();
	bool busy = false;

	warm_scan(g);
	pthread_mutex_lock(&g->lock);
	for (unsigned b = 0; b < HOT_BUCKETS; b++) {
		struct hpool **pp = &g->hot.buckets[b];

		while (*pp) {
			struct hpool *p = *pp;

			pool_tick(g, p, now, &busy);
			if (!p->ninst && !p->nwait && !p->min &&
			    now - p->empty_since_us > POOL_LINGER_US) {
				*pp = p->next;
				json_decref(p->config);
				free(p);
				continue;
			}
			pp = &p->next;
		}
	}
	pthread_mutex_unlock(&g->lock);
	return busy ? 10 : 250;
}

void
hot_reap(struct gw *g)
{
	struct hinst *dead;

	pthread_mutex_lock(&g->lock);
	dead = graveyard;
	graveyard = NULL;
	pthread_mutex_unlock(&g->lock);
	while (dead) {
		struct hinst *n = dead->next;
		bool held = false;

		for (unsigned i = 0; i < g->nloops; i++)
			held |= atomic_load(&g->loops[i].epoch) <= dead->epochs[i];
		if (held) {
			/* A loop is still in the batch it was in: next time. */
			pthread_mutex_lock(&g->lock);
			dead->next = graveyard;
			graveyard = dead;
			pthread_mutex_unlock(&g->lock);
		}
		if (!held)
			free(dead);
		dead = n;
	}
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

/* Pass the handler's headers (made strings in place: the head is ours). */
static void
pass_headers(struct hx *x, struct MHD_Response *resp)
{
	for (unsigned i = 0; i < x->resp.nheaders; i++) {
		char *n = x->in + x->resp.h[i].name_off, *v = x->in + x->resp.h[i].value_off;

		n[x->resp.h[i].name_len] = 0;
		v[x->resp.h[i].value_len] = 0;
		if (invoke_header_passes(n))
			MHD_add_response_header(resp, n, v);
	}
}

static enum MHD_Result
stream_respond(struct req *q, uint64_t dur)
{
	struct hx *x = &q->hx;
	struct MHD_Response *resp;
	enum MHD_Result r;
	uint64_t size = x->resp.framing == HRESP_LENGTH ? (uint64_t)x->resp.content_length
							: MHD_SIZE_UNKNOWN;

	pthread_mutex_lock(&q->gw->lock);
	resp = MHD_create_response_from_callback(size, 64 * 1024, stream_read, q, NULL);
	if (resp)
		pass_headers(x, resp);
	pthread_mutex_unlock(&q->gw->lock);
	if (!resp)
		return MHD_NO;
	invoke_faas_headers(q, resp, x->cold, dur);
	invoke_report(q, x->resp.status, x->resp.status >= 500 ? "error" : "ok", dur, x->init_us,
		      0);
	r = MHD_queue_response(q->conn, x->resp.status, resp);
	MHD_destroy_response(resp);
	return r;
}

enum MHD_Result
hot_respond(struct req *q)
{
	struct hx *x = &q->hx;
	struct MHD_Response *resp;
	uint64_t dur = x->done_us > x->sent_us && x->sent_us ? x->done_us - x->sent_us : 0;
	char *body;
	enum MHD_Result r;

	q->done.duration_us = dur;
	x->responded = true;
	if (x->fail_status)
		return invoke_fail(q, x->fail_status, x->fail_code, x->fail_msg, NULL);
	if (x->streaming)
		return stream_respond(q, dur);
	body = x->in + x->resp.head_len;
	for (unsigned i = 0; i < x->resp.nheaders; i++) {
		const char *n = x->in + x->resp.h[i].name_off;

		if (x->resp.h[i].name_len == 21 &&
		    strncasecmp(n, "X-Faas-Function-Error", 21) == 0) {
			char type[64];

			(void)str_printf(type, sizeof(type), "%.*s",
					 (int)MIN(x->resp.h[i].value_len, 63u),
					 x->in + x->resp.h[i].value_off);
			return function_error(q, type, body, x->body_len);
		}
	}
	resp = MHD_create_response_from_buffer_with_free_callback_cls(x->body_len, body, free_cls,
								      x->in);
	if (!resp)
		return MHD_NO;
	pass_headers(x, resp);
	x->in = NULL; /* the response frees it */
	invoke_faas_headers(q, resp, x->cold, dur);
	invoke_report(q, x->resp.status, x->resp.status >= 500 ? "error" : "ok", dur, x->init_us,
		      0);
	r = MHD_queue_response(q->conn, x->resp.status, resp);
	MHD_destroy_response(resp);
	return r;
}

void
hot_req_free(struct req *q)
{
	if (q->hx.on) {
		/* A client gone mid-stream: the rest of the answer has nowhere
		 * to go, so its connection cannot carry another. */
		pthread_mutex_lock(&q->gw->lock);
		if (q->hx.conn) {
			struct hconn *c = q->hx.conn;

			c->q = NULL;
			c->inst->busy--;
			conn_close(c);
			q->hx.conn = NULL;
		}
		wait_unlink(q);
		pthread_mutex_unlock(&q->gw->lock);
	}
	free(q->hx.out);
	free(q->hx.in);
	q->hx.out = q->hx.in = NULL;
}
