/*
 * hot.c - hot instances (runtimes http, python3, node) from the gateway's
 * side: which instance serves an invocation.  The HTTP/1.1 exchange with
 * the instance is hotx.c.
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
 * The warm path: the event loop serving the request finds an idle
 * connection in the version's pool (a hash lookup under g->lock), writes
 * the request to it and suspends the HTTP connection; the answer arrives on
 * the same loop, which reads it and answers.  No worker message, no disk,
 * no process is involved, and a slow client holds only the buffer, never
 * the instance.
 *
 * INVARIANT: an instance that crashed, timed out, was OOM-killed or broke
 * the protocol is never given another invocation: it leaves its pool at
 * once (HI_DEAD) and the worker is told to end it.
 * Dead instances are freed only once every event loop has finished the
 * batch of events it was in when they died (hot_reap), so an event already
 * fetched for one of their connections finds fd -1 rather than freed
 * memory.
 *
 * The handler's stdout and stderr are pipes the gateway made (their write
 * ends go to the worker in MSG_HOT_START).  The I/O thread keeps them
 * drained; what they said belongs to the invocation in flight and is taken
 * into its record when the answer is in (hot_log_take reads the pipes to
 * the end first: a handler writes its log lines before its answer).  What
 * an instance writes while starting goes to its first invocation (the
 * cold start), what it writes while idle to the next one.  Only the I/O
 * thread closes the pipes (at their end, or in hot_reap), so an event it
 * fetched never finds its struct hlog freed.  The buffers are under the
 * instance's log_lock, not g->lock: the I/O thread reads a flood of output
 * without holding up the event loops.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "fnconfig.h"
#include "gw.h"
#include "hot.h"
#include "log.h"
#include "util.h"

static struct hinst *graveyard; /* dead, freed by hot_reap */

static unsigned
pool_hash(const char *t, const char *f, int64_t v)
{
	return hash_fn_version(t, f, v) % HOT_BUCKETS;
}

int64_t
hot_cfg_int(json_t *cfg, const char *key)
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
	p->max = (unsigned)hot_cfg_int(p->config, "max_instances");
	p->cap = (unsigned)MAX(hot_cfg_int(p->config, "concurrency_per_instance"), 1);
	p->idle_s = (unsigned)hot_cfg_int(p->config, "idle_timeout_s");
	p->timeout_ms = (uint64_t)hot_cfg_int(p->config, "timeout_s") * 1000;
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

void
hot_resume(struct req *q)
{
	q->answered = true;
	q->suspended = false;
	gw_resume(q);
}

void
hot_wait_unlink(struct req *q)
{
	struct hpool *p = q->hx.pool;

	struct req *prev = NULL;

	if (!p)
		return;
	for (struct req **pp = &p->whead; *pp; prev = *pp, pp = &(*pp)->hx.wnext)
		if (*pp == q) {
			*pp = q->hx.wnext;
			break;
		}
	if (p->wtail == q)
		p->wtail = prev;
	p->nwait--;
	q->hx.wnext = NULL;
	q->hx.pool = NULL;
}

void
hot_wait_push(struct hpool *p, struct req *q, bool front)
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

void
hot_conn_close(struct hconn *c)
{
	if (c->fd >= 0)
		close(c->fd); /* which also takes it out of the epoll set */
	c->fd = -1;
}

/* Room may have been made under the caps (see struct hot). */
void
hot_room(struct gw *g)
{
	g->hot.room_gen++;
}

struct hconn *
hot_detach(struct req *q)
{
	struct hconn *c = q->hx.conn;

	if (c) {
		c->q = NULL;
		if (--c->inst->busy == 0)
			hot_room(q->gw);
		q->hx.conn = NULL;
	}
	hot_wait_unlink(q);
	return c;
}

/* Detach q from wherever it is and answer it with an error. */
void
hot_fail(struct req *q, unsigned status, const char *code, const char *fmt, ...)
{
	va_list ap;

	if (q->hx.conn)
		hot_log_take(q->gw, q->hx.conn->inst, q);
	(void)hot_detach(q);
	q->hx.fail_status = status;
	q->hx.fail_code = code;
	free(q->hx.fail_msg);
	va_start(ap, fmt);
	if (vasprintf(&q->hx.fail_msg, fmt, ap) < 0)
		q->hx.fail_msg = NULL; /* hot_respond says "the invocation failed" */
	else if (strlen(q->hx.fail_msg) > HOT_FAIL_MSG_MAX)
		q->hx.fail_msg[HOT_FAIL_MSG_MAX] = 0;
	va_end(ap);
	if (q->hx.streaming) {
		/* The head may be on its way: the body ends in an error (or,
		 * not answered yet, hot_respond sends the failure). */
		q->hx.stream_failed = true;
		if (q->hx.reader_waiting) {
			q->hx.reader_waiting = false;
			hot_resume(q);
		}
		return;
	}
	q->hx.done_us = now_mono_us();
	hot_resume(q);
}

/* ---- the instances' output ---- */

static void
hlog_close(struct hlog *l)
{
	if (l->fd >= 0)
		close(l->fd); /* which also takes it out of the I/O thread's set */
	l->fd = -1;
}

/* Read l's pipe until it is empty, keeping up to max bytes; at its end
 * (the sandbox is gone) close it. */
static void
hlog_drain(struct hlog *l, size_t max, bool may_close)
{
	char scratch[4096];

	while (l->fd >= 0) {
		char *dst = scratch;
		size_t room = sizeof(scratch);
		ssize_t n;

		if (l->len < max && l->cap - l->len < 1024 && l->cap < max) {
			size_t cap = MIN(MAX(l->cap * 2, (size_t)4096), max);
			char *nb = realloc(l->buf, cap);

			if (nb) {
				l->buf = nb;
				l->cap = cap;
			}
		}
		if (l->len < max && l->cap > l->len) {
			dst = l->buf + l->len;
			room = MIN(l->cap, max) - l->len;
		}
		n = read(l->fd, dst, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			if (may_close)
				hlog_close(l);
			return;
		}
		if (dst == scratch)
			l->trunc = true; /* past the cap: read and dropped */
		else
			l->len += (size_t)n;
	}
}

/* Free an instance that is in no list and no epoll set any more. */
static void
inst_free(struct hinst *in)
{
	for (unsigned k = 0; k < 2; k++) {
		hlog_close(&in->logs[k]);
		free(in->logs[k].buf);
	}
	pthread_mutex_destroy(&in->log_lock);
	free(in);
}

void
hot_log_event(struct gw *g, struct hlog *l)
{
	/* The instance lives until hot_reap, which runs in this thread. */
	pthread_mutex_lock(&l->inst->log_lock);
	hlog_drain(l, g->cfg.max_log_bytes, true);
	pthread_mutex_unlock(&l->inst->log_lock);
}

/* Read what both pipes hold (in->log_lock held).  One poll() asks both
 * at once: on the warm path they are empty nearly always, and two reads
 * that fail with EAGAIN cost a system call more. */
static void
hlog_drain_both(struct gw *g, struct hinst *in)
{
	struct pollfd p[2] = { { .fd = in->logs[0].fd, .events = POLLIN },
			       { .fd = in->logs[1].fd, .events = POLLIN } };

	if (p[0].fd < 0 && p[1].fd < 0)
		return;
	if (poll(p, 2, 0) <= 0)
		return;
	for (unsigned k = 0; k < 2; k++)
		if (p[k].revents)
			hlog_drain(&in->logs[k], g->cfg.max_log_bytes, false);
}

void
hot_log_take(struct gw *g, struct hinst *in, struct req *q)
{
	/* Once per invocation: what comes after a streamed head (its record
	 * is written then) is the next invocation's. */
	if (q->hx.log_taken)
		return;
	q->hx.log_taken = true;
	pthread_mutex_lock(&in->log_lock);
	/* Not closed here: only the I/O thread closes (see above). */
	hlog_drain_both(g, in);
	for (unsigned k = 0; k < 2; k++) {
		struct hlog *l = &in->logs[k];

		if (!l->len && !l->trunc)
			continue;
		if (g->records) {
			q->hx.log[k] = l->buf;
			q->hx.log_len[k] = l->len;
			q->hx.log_trunc |= l->trunc ? 1u << k : 0u;
			l->buf = NULL;
			l->cap = 0;
		}
		l->len = 0;
		l->trunc = false;
	}
	pthread_mutex_unlock(&in->log_lock);
}

/* "; its output ended with:\n" and the last bytes of its stderr (else of
 * its stdout), for an init failure's message. */
static void
hlog_tail(struct gw *g, struct hinst *in, char *out, size_t n)
{
	struct hlog *l;
	size_t k;

	*out = 0;
	pthread_mutex_lock(&in->log_lock);
	hlog_drain_both(g, in);
	l = in->logs[1].len ? &in->logs[1] : &in->logs[0];
	k = MIN(l->len, (size_t)2047);
	if (k)
		(void)str_printf(out, n, "; its output ended with:\n%.*s", (int)k,
				 l->buf + l->len - k);
	pthread_mutex_unlock(&in->log_lock);
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
	hot_room(g);
	if (!p->ninst && !p->nwait)
		p->empty_since_us = now_mono_us();
	if (g->workers[in->worker].hot)
		g->workers[in->worker].hot--;
	for (unsigned i = 0; i < in->cap; i++) {
		struct hconn *c = &in->conns[i];

		hot_conn_close(c);
		if (c->q)
			hot_fail(c->q, status, code, "%s", msg);
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
void
hot_inst_stop(struct gw *g, struct hinst *in, unsigned status, const char *code, const char *msg)
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
	int w, r = 0, wr[2] = { -1, -1 };

	if (count_insts(g, p->tenant, p->function) >= p->max) {
		struct hinst *victim = idle_victim(g, p, p->function);

		if (!victim)
			return -EAGAIN;
		hot_inst_stop(g, victim, 502, "function_error", "instance stopped to make room");
	}
	if ((int64_t)count_insts(g, p->tenant, NULL) >= p->tenant_max) {
		struct hinst *victim = idle_victim(g, p, NULL);

		if (!victim)
			return -EAGAIN;
		hot_inst_stop(g, victim, 502, "function_error", "instance stopped to make room");
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
	in->idle_since_us = now_mono_us();
	for (unsigned i = 0; i < in->cap; i++) {
		in->conns[i].kind = LOOP_KIND_HOT;
		in->conns[i].fd = -1;
		in->conns[i].loop = -1;
		in->conns[i].inst = in;
	}
	pthread_mutex_init(&in->log_lock, NULL);
	for (unsigned k = 0; k < 2; k++) {
		int pv[2];

		in->logs[k].fd = -1;
		in->logs[k].inst = in;
		if (r == 0 && pipe2(pv, O_CLOEXEC) < 0)
			r = -errno;
		else if (r == 0) {
			(void)fcntl(pv[0], F_SETFL, O_NONBLOCK);
			in->logs[k].fd = pv[0];
			wr[k] = pv[1];
		}
	}
	if (r < 0) {
		log_err("no pipe for an instance of %s/%s: %s", p->tenant, p->function,
			strerror(-r));
		goto fail;
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
	msg_put_u64(&m, MSG_T_MEMORY_MB, (uint64_t)hot_cfg_int(p->config, "memory_mb"));
	msg_put_u64(&m, MSG_T_MAX_OUTPUT, g->cfg.max_output_bytes);
	msg_put_u64(&m, MSG_T_NETWORK_HOST, p->net_host);
	msg_put_u64(&m, MSG_T_MAX_LOG, g->cfg.max_log_bytes);
	msg_put_u64(&m, MSG_T_HAS_BODY, 0);
	invoke_env_function(&m, p->config);
	if (!json_object_get(json_object_get(p->config, "env"), "TZ"))
		invoke_env_put(&m, "TZ", "UTC");
	invoke_env_put(&m, "FAAS_TENANT", p->tenant);
	invoke_env_put(&m, "FAAS_FUNCTION_NAME", p->function);
	(void)str_printf(buf, sizeof(buf), "%lld", (long long)p->version);
	invoke_env_put(&m, "FAAS_FUNCTION_VERSION", buf);
	invoke_env_put(&m, "AWS_LAMBDA_FUNCTION_VERSION", buf);
	invoke_env_put(&m, "AWS_LAMBDA_FUNCTION_NAME", p->function);
	(void)str_printf(buf, sizeof(buf), "%lld", (long long)hot_cfg_int(p->config, "memory_mb"));
	invoke_env_put(&m, "FAAS_MEMORY_MB", buf);
	invoke_env_put(&m, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", buf);
	(void)str_printf(buf, sizeof(buf), "%lld", (long long)hot_cfg_int(p->config, "timeout_s"));
	invoke_env_put(&m, "FAAS_TIMEOUT_S", buf);
	invoke_env_put(&m, "FAAS_RUNTIME", rt_names[p->runtime]);
	invoke_env_put(&m, "FAAS_HANDLER",
		       json_string_value(json_object_get(p->config, "handler")));
	invoke_env_put(&m, "_HANDLER", json_string_value(json_object_get(p->config, "handler")));
	invoke_env_put(&m, "LAMBDA_TASK_ROOT", "/var/task");
	invoke_env_put(&m, "LAMBDA_RUNTIME_DIR", "/var/runtime");
	msg_put_fd(&m, wr[0]);
	msg_put_fd(&m, wr[1]);
	r = msg_send(g->workers[w].fd, &m);
	msg_out_free(&m);
	if (r < 0) {
		log_err("cannot start an instance of %s/%s on worker %d: %s", p->tenant,
			p->function, w, strerror(-r));
		goto fail;
	}
	for (unsigned k = 0; k < 2; k++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &in->logs[k] };

		close(wr[k]);
		if (epoll_ctl(g->epfd, EPOLL_CTL_ADD, in->logs[k].fd, &ev) < 0)
			log_warn("epoll add: %s", strerror(errno));
	}
	in->next = p->insts;
	p->insts = in;
	p->ninst++;
	p->nstarting++;
	g->workers[w].hot++;
	log_debug("starting hot instance %llu of %s/%s v=%lld on worker %d",
		  (unsigned long long)in->id, p->tenant, p->function, (long long)p->version, w);
	return 0;
fail:
	for (unsigned k = 0; k < 2; k++)
		if (wr[k] >= 0)
			close(wr[k]);
	inst_free(in);
	return r;
}

/* An open, idle connection of p, preferably one already in loop's epoll
 * set (no move between sets). */
struct hconn *
hot_free_conn(struct hpool *p, unsigned loop)
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
void
hot_pool_serve(struct gw *g, struct hpool *p)
{
	unsigned coming = 0;

	while (p->whead) {
		struct req *q = p->whead;
		struct hconn *c = hot_free_conn(p, q->loop);

		if (!c)
			break;
		hot_wait_unlink(q);
		hot_assign(g, c, q);
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
	p->blocked = coming < p->nwait;
	if (p->blocked) {
		p->blocked_gen = g->hot.room_gen;
		p->blocked_us = now_mono_us();
	}
}

enum MHD_Result
hot_dispatch(struct req *q)
{
	struct gw *g = q->gw;
	struct hpool *p;
	struct hconn *c;

	q->hx.head_req = strcmp(q->method, "HEAD") == 0;
	if (hot_build_head(q) < 0)
		return gw_error(q, 500, "internal", "out of memory");
	/* The answer comes later: from this loop when the instance answers,
	 * or from another thread (queue, failures).  Suspended first, so
	 * that any of them may resume it at once. */
	if (q->conn)
		MHD_suspend_connection(q->conn);
	q->suspended = true;
	pthread_mutex_lock(&g->lock);
	q->started_us = now_mono_us();
	p = pool_get(g, q);
	c = p && !p->whead ? hot_free_conn(p, q->loop) : NULL;
	if (!p)
		hot_fail(q, 500, "internal", "out of memory");
	else if (c)
		hot_assign(g, c, q);
	else if (!g->cfg.queue_wait_ms && !p->nstarting &&
		 count_insts(g, p->tenant, p->function) >= p->max)
		hot_fail(q, 429, "throttled", "all %u instances of %s are busy", p->max,
			 p->function);
	else {
		q->hx.wait_until_us = q->started_us + g->cfg.queue_wait_ms * 1000;
		hot_wait_push(p, q, false);
		hot_pool_serve(g, p);
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
				 (long long)hot_cfg_int(in->pool->config, "memory_mb"));
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
			hot_room(g);
			it->init_us = h.duration_us;
			it->idle_since_us = it->ready_us = now_mono_us();
			it->pool->nstarting--;
		} else if (it && it->connecting)
			it->connecting--;
		if (it)
			hot_pool_serve(g, it->pool);
	} else if (in->type == MSG_HOT_GONE && it) {
		struct hpool *p = it->pool;
		unsigned status;
		const char *code;
		char msg[MSG_HOT_MESSAGE_MAX + 128 + 2080]; /* + the output's tail */
		bool init = it->state == HI_STARTING;

		gone_reason(it, &h, &status, &code, msg, sizeof(msg));
		if (h.result == INVOKE_INIT_FAILED) {
			size_t k = strlen(msg);

			hlog_tail(g, it, msg + k, sizeof(msg) - k);
		}
		if (init)
			/* A version that cannot start is not kept warm in a loop. */
			p->prewarm_after_us = now_mono_us() + 10000000u;
		log_info("hot instance %llu of %s/%s v=%lld ended: %s", (unsigned long long)it->id,
			 p->tenant, p->function, (long long)p->version, msg);
		inst_bury(g, it, status, code, msg);
		/* Those waiting for the failed start fail with it, unless
		 * another instance is up to serve them. */
		if (init && !hot_free_conn(p, 0) && p->nstarting == 0) {
			bool any_ready = false;

			for (struct hinst *o = p->insts; o; o = o->next)
				any_ready |= o->state == HI_READY;
			if (!any_ready && p->whead)
				/* Its init output: the record of the first it failed. */
				hot_log_take(g, it, p->whead);
			while (!any_ready && p->whead)
				hot_fail(p->whead, status, code, "%s", msg);
		}
		hot_pool_serve(g, p);
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
				hot_pool_serve(g, p);
	pthread_mutex_unlock(&g->lock);
}

/* ---- time ---- */

/* A pool whose start was refused tries again at least this often, room
 * or not (a worker back after a restart makes none). */
#define BLOCKED_RETRY_US 100000u

static void
pool_tick(struct gw *g, struct hpool *p, uint64_t now, bool *busy)
{
	struct hinst *in, *next;

	while (p->whead && p->whead->hx.wait_until_us <= now)
		hot_fail(p->whead, 429, "throttled",
			 "no instance of %s was free within %llu ms (max_instances %u)",
			 p->function, (unsigned long long)g->cfg.queue_wait_ms, p->max);
	*busy |= p->nwait > 0;
	if (p->nwait && (!p->blocked || p->blocked_gen != g->hot.room_gen ||
			 us_since(now, p->blocked_us) >= BLOCKED_RETRY_US))
		/* Waiting on a cap: room made elsewhere (another version's
		 * or function's instance gone idle, a victim for spawn) comes
		 * with no event of this pool's.  Looked at again on the tick
		 * once any instance went idle, got ready or died since (and
		 * every BLOCKED_RETRY_US). */
		hot_pool_serve(g, p);
	for (in = p->insts; in; in = next) {
		next = in->next;
		for (unsigned i = 0; i < in->cap && in->state != HI_DEAD; i++) {
			struct hconn *c = &in->conns[i];
			struct req *q = c->q;

			if (!q)
				continue;
			*busy = true;
			if (q->hx.broken_us && us_since(now, q->hx.broken_us) > BROKEN_GRACE_US &&
			    q->hx.in_len == 0 && c->uses > 1 && !q->hx.retried) {
				/* No byte back on a reused keep-alive connection
				 * and the instance lives: the handler closed it
				 * just as the request went out.  Once more, on
				 * another connection. */
				(void)hot_detach(q);
				q->hx.retried = true;
				q->hx.broken_us = 0;
				q->hx.wait_until_us = now + g->cfg.queue_wait_ms * 1000;
				hot_wait_push(p, q, true);
				hot_pool_serve(g, p);
			} else if (q->hx.broken_us &&
				   us_since(now, q->hx.broken_us) > BROKEN_GRACE_US) {
				hot_fail(
					q, 502, "function_error",
					"handler closed the connection before a complete response");
			} else if (now >= q->hx.deadline_us) {
				char msg[128];

				(void)str_printf(msg, sizeof(msg),
						 "function did not finish within %llu s",
						 (unsigned long long)p->timeout_ms / 1000);
				hot_fail(q, 504, "function_timeout", "%s", msg);
				hot_inst_stop(
					g, in, 502, "function_error",
					"instance stopped: another invocation on it timed out");
			}
		}
		if (in->state == HI_READY && !in->busy && p->ninst > p->min &&
		    us_since(now, in->idle_since_us) >= (uint64_t)p->idle_s * 1000000u)
			hot_inst_stop(g, in, 502, "function_error",
				      "instance stopped after idling");
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
				p->min = (unsigned)MIN(hot_cfg_int(it->config, "min_instances"),
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
	uint64_t now;
	bool busy = false;

	warm_scan(g);
	pthread_mutex_lock(&g->lock);
	/* Read under the lock, after the store scan: every time stamp the
	 * loops wrote (under the same lock) is then at or before it.  Read
	 * before the scan, an instance gone idle meanwhile looked idle for
	 * 2^64 µs and was stopped after its first invocation. */
	now = now_mono_us();
	for (unsigned b = 0; b < HOT_BUCKETS; b++) {
		struct hpool **pp = &g->hot.buckets[b];

		while (*pp) {
			struct hpool *p = *pp;

			pool_tick(g, p, now, &busy);
			if (!p->ninst && !p->nwait && !p->min &&
			    us_since(now, p->empty_since_us) > POOL_LINGER_US) {
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
			inst_free(dead);
		dead = n;
	}
}

void
hot_count(struct gw *g, unsigned *starting, unsigned *idle, unsigned *busy)
{
	pthread_mutex_lock(&g->lock);
	for (unsigned b = 0; b < HOT_BUCKETS; b++)
		for (struct hpool *p = g->hot.buckets[b]; p; p = p->next)
			for (struct hinst *in = p->insts; in; in = in->next) {
				if (in->state == HI_STARTING)
					(*starting)++;
				else if (in->state == HI_READY && in->busy)
					(*busy)++;
				else if (in->state == HI_READY)
					(*idle)++;
			}
	pthread_mutex_unlock(&g->lock);
}
