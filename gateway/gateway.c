/*
 * gateway.c - main loop of the gateway process.
 *
 * Started by the parent after it dropped this process's privileges (the
 * faasd user, no capabilities, a seccomp filter).  Runs libmicrohttpd on the
 * listen socket the parent bound, with a small thread pool; one I/O thread
 * reads worker replies and parent control messages.  The main thread waits
 * for SIGTERM, then drains: stops accepting, waits (bounded) until in-flight
 * requests finish, and exits 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gw.h"
#include "log.h"
#include "util.h"

#define CTL_TAG        1000u
/* A thread heap's free top kept from the kernel, and the size from which
 * an allocation is a mapping of its own (see gateway_main). */
#define GW_MALLOC_KEEP (16 << 20)
#define GW_MALLOC_MMAP (1 << 20)

static void work_push(struct req *q);

static void *
uri_cb(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct gw_loop *lp = cls;
	struct gw *g = lp->gw;
	struct req *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->gw = g;
	q->loop = lp->index;
	q->conn = conn;
	q->body_fd = q->out_fd = q->err_fd = -1;
	q->done.stdout_fd = q->done.stderr_fd = -1;
	q->uri = strdup(uri ? uri : "");
	atomic_fetch_add(&g->inflight, 1);
	return q;
}

void
gw_req_free(struct req *q)
{
	struct gw *g = q->gw;

	if (q->body_fd >= 0)
		close(q->body_fd);
	if (q->tmp_path[0])
		unlink(q->tmp_path);
	if (q->out_fd >= 0)
		close(q->out_fd);
	if (q->err_fd >= 0)
		close(q->err_fd);
	if (q->done.stdout_fd >= 0)
		close(q->done.stdout_fd);
	if (q->done.stderr_fd >= 0)
		close(q->done.stderr_fd);
	hot_req_free(q);
	follow_free(q);
	if (q->resp)
		MHD_destroy_response(q->resp);
	EVP_MD_CTX_free(q->md);
	json_decref(q->sr.config);
	buf_free(&q->body);
	free(q->uri);
	free(q);
	atomic_fetch_sub(&g->inflight, 1);
}

static void
completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
	     enum MHD_RequestTerminationCode toe)
{
	struct gw *g = cls;
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS);

	(void)toe;
	if (ci && ci->http_status)
		metrics_http(g, ci->http_status);
	if (*con_cls)
		gw_req_free(*con_cls);
	*con_cls = NULL;
}

const char *
gw_header(struct req *q, const char *name)
{
	if (q->fc)
		return fast_header(q, name);
	return MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, name);
}

void
gw_headers_each(struct req *q, MHD_KeyValueIterator fn, void *cls)
{
	if (q->fc)
		fast_headers_each(q, fn, cls);
	else
		MHD_get_connection_values(q->conn, MHD_HEADER_KIND, fn, cls);
}

static void
authenticate(struct req *q)
{
	const char *h = gw_header(q, "Authorization");

	if (!h)
		return;
	if (strncasecmp(h, "Bearer ", 7) != 0) {
		q->token_bad = true;
		return;
	}
	if (str_startswith(h + 7, "fsi_")) {
		/* An async runner's (async.c): good for running a function
		 * as any tenant's invocation, nothing else. */
		if (q->route.kind == ROUTE_INVOKE && async_token_is(q->gw, h + 7)) {
			q->internal = true;
			async_begun(q->gw, gw_header(q, "X-Faas-Runner"));
			q->who.scope = SCOPE_ADMIN;
			(void)str_copy(q->who.key_id, sizeof(q->who.key_id), "async-runner");
		} else
			q->token_bad = true;
		return;
	}
	if (auth_lookup(q->gw->auth, h + 7, &q->who) < 0) {
		memset(&q->who, 0, sizeof(q->who));
		q->token_bad = true;
	}
}

#define DRAIN_SLACK(limit) (4 * (uint64_t)(limit) + (1u << 20))

bool
gw_body_too_large(struct req *q, uint64_t declared, enum MHD_Result *ret)
{
	const char *expect = gw_header(q, "Expect");

	/* A client that waits for 100-continue gets the answer at once; a
	 * body we would not read anyway closes the connection.  Others are
	 * read and dropped so they see the 413 rather than a reset. */
	if ((expect && strcasestr(expect, "100-continue")) ||
	    declared > DRAIN_SLACK(q->body_limit)) {
		*ret = gw_error(q, 413, "payload_too_large",
				"request body of %llu bytes exceeds the limit of %zu bytes",
				(unsigned long long)declared, q->body_limit);
		return true;
	}
	q->too_large = true;
	return false;
}

enum MHD_Result
gw_request_begin(struct req *q, const char *url, const char *method)
{
	char diag[256];
	int r;

	r = route_parse(url, &q->route, diag, sizeof(diag));
	if (r == -ENOENT)
		return gw_error(q, 404, "not_found", "no such endpoint: %.200s", url);
	if (r < 0)
		return gw_error(q, 400, "invalid_name", "%s", diag);
	authenticate(q);
	switch (q->route.kind) {
	case ROUTE_HEALTHZ:
		return gw_json(q, 200, json_pack("{s:s}", "status", "ok"));
	case ROUTE_READYZ: {
		struct gw *g = q->gw;
		unsigned up = 0;

		pthread_mutex_lock(&g->lock);
		for (unsigned i = 0; i < g->nworkers; i++)
			up += g->workers[i].fd >= 0;
		pthread_mutex_unlock(&g->lock);
		if (!up || atomic_load(&g->draining))
			return gw_json(q, 503,
				       json_pack("{s:s, s:I}", "status", "not ready", "workers",
						 (json_int_t)up));
		return gw_json(
			q, 200,
			json_pack("{s:s, s:I}", "status", "ready", "workers", (json_int_t)up));
	}
	case ROUTE_NOT_YET:
		return gw_error(
			q, 501, "not_implemented",
			"%.200s is part of the API contract but not served by this faasd build yet",
			url);
	case ROUTE_INVOKE:
		return invoke_begin(q, method);
	case ROUTE_ASYNC_INVOKE:
		return async_begin(q, method);
	case ROUTE_CODE: {
		enum MHD_Result ret;

		if (!str_oneof(method, "PUT", "HEAD", "GET", NULL))
			return gw_error(q, 405, "method_not_allowed", "use HEAD or PUT");
		if (api_authorize(q, q->route.tenant, SCOPE_DEPLOY, &ret) < 0)
			return ret;
		if (strcmp(method, "PUT") == 0) {
			const char *cl = gw_header(q, "Content-Length");
			uint64_t len;

			q->body_limit = q->gw->cfg.max_code_bytes;
			if (cl && parse_u64(cl, 0, UINT64_MAX, &len) == 0 && len > q->body_limit &&
			    gw_body_too_large(q, len, &ret))
				return ret;
			if (q->too_large)
				return MHD_YES;
		}
		return code_begin(q, method);
	}
	default:
		q->body_limit = GW_JSON_BODY_MAX;
		return MHD_YES;
	}
}

static int
body_chunk(struct req *q, const char *data, size_t len)
{
	if (q->too_large)
		return 0;
	if (q->received + len > q->body_limit) {
		q->too_large = true;
		return 0;
	}
	q->received += len;
	if (q->route.kind == ROUTE_CODE)
		return code_upload_chunk(q, data, len);
	if (q->route.kind == ROUTE_INVOKE && !q->hx.on)
		return write_full(q->body_fd, data, len);
	return buf_append(&q->body, data, len);
}

static enum MHD_Result
access_cb(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
	  const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct req *q = *con_cls;

	(void)cls;
	if (!q)
		return MHD_NO;
	if (!q->route_done) {
		q->route_done = true;
		q->conn = conn;
		q->version = version;
		q->method = method;
		return gw_request_begin(q, url, method);
	}
	if (*upload_data_size) {
		/* Past the limit the rest is read and dropped so the client
		 * gets its 413; give up on a client that keeps sending 4x. */
		if (q->too_large && q->received > DRAIN_SLACK(q->body_limit))
			return MHD_NO;
		if (q->too_large)
			q->received += *upload_data_size;
		else if (body_chunk(q, upload_data, *upload_data_size) < 0)
			q->route_err = -EIO;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (q->suspended)
		return MHD_YES;
	if (q->resp) {
		struct MHD_Response *resp = q->resp;
		enum MHD_Result r;

		q->resp = NULL;
		r = MHD_queue_response(conn, q->resp_status, resp);
		MHD_destroy_response(resp);
		return r;
	}
	if (q->offloaded)
		return MHD_NO; /* done off the loop without an answer: drop it */
	if (q->answered)
		return invoke_respond(q);
	if (q->too_large)
		return gw_error(q, 413, "payload_too_large",
				"request body exceeds the limit of %zu bytes", q->body_limit);
	if (q->route_err)
		return gw_errno(q, q->route_err, "could not store the request body");
	if (q->route.kind == ROUTE_INVOKE)
		return invoke_dispatch(q, method);
	/* The rest may block (SQLite, unpacking): off the loop. */
	work_push(q);
	return MHD_YES;
}

static void
work_push(struct req *q)
{
	struct gw_work *w = &q->gw->work;

	q->offloaded = true;
	MHD_suspend_connection(q->conn);
	q->suspended = true;
	pthread_mutex_lock(&w->lock);
	q->work_next = NULL;
	if (w->tail)
		w->tail->work_next = q;
	else
		w->head = q;
	w->tail = q;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

void
gw_thread_name(const char *name)
{
	(void)prctl(PR_SET_NAME, name, 0, 0, 0);
}

static void *
work_main(void *arg)
{
	struct gw *g = arg;
	struct gw_work *w = &g->work;

	gw_thread_name("gw-api");

	for (;;) {
		struct req *q;

		pthread_mutex_lock(&w->lock);
		while (!w->head)
			pthread_cond_wait(&w->cond, &w->lock);
		q = w->head;
		w->head = q->work_next;
		if (!w->head)
			w->tail = NULL;
		pthread_mutex_unlock(&w->lock);
		if (q->route.kind == ROUTE_CODE)
			(void)code_finish(q);
		else
			(void)api_dispatch(q, q->method);
		q->suspended = false;
		gw_resume(q);
	}
	return NULL;
}

/* ---- I/O thread: worker replies and parent control ---- */

static void
worker_down(struct gw *g, unsigned i)
{
	int fd;

	pthread_mutex_lock(&g->lock);
	fd = g->workers[i].fd;
	g->workers[i].fd = -1;
	pthread_mutex_unlock(&g->lock);
	if (fd >= 0) {
		epoll_ctl(g->epfd, EPOLL_CTL_DEL, fd, NULL);
		close(fd);
	}
	invoke_fail_worker(g, i);
	hot_worker_down(g, i);
}

static void
worker_up(struct gw *g, unsigned i, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i };

	worker_down(g, i);
	pthread_mutex_lock(&g->lock);
	g->workers[i].fd = fd;
	g->workers[i].inflight = 0;
	if (i >= g->nworkers)
		g->nworkers = i + 1;
	pthread_mutex_unlock(&g->lock);
	if (epoll_ctl(g->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		log_err("epoll add worker %u: %s", i, strerror(errno));
}

static void
worker_readable(struct gw *g, unsigned i)
{
	for (;;) {
		struct msg_in in;
		struct msg_invoke_done d;
		int fd, r;

		pthread_mutex_lock(&g->lock);
		fd = g->workers[i].fd;
		pthread_mutex_unlock(&g->lock);
		if (fd < 0)
			return;
		r = msg_recv(fd, &in);
		if (r == -EAGAIN)
			return;
		if (r <= 0) {
			log_warn("worker %u connection %s", i, r == 0 ? "closed" : strerror(-r));
			worker_down(g, i);
			return;
		}
		if (in.type == MSG_HOT_READY || in.type == MSG_HOT_GONE) {
			hot_worker_msg(g, i, &in);
			msg_in_free(&in);
			continue;
		}
		if (msg_invoke_done_decode(&in, &d) < 0) {
			/* INVARIANT: a malformed message means a broken
			 * worker; drop it so the parent restarts it. */
			log_err("malformed message (type %u) from worker %u; disconnecting it",
				in.type, i);
			msg_in_free(&in);
			worker_down(g, i);
			return;
		}
		in.nfds = 0; /* d owns the fds now */
		msg_in_free(&in);
		invoke_complete(g, i, &d);
	}
}

static void
ctl_readable(struct gw *g)
{
	for (;;) {
		struct msg_in in;
		struct msg_config c;
		uint64_t idx;
		int fd, r;

		r = msg_recv(g->ctl_fd, &in);
		if (r == -EAGAIN)
			return;
		if (r <= 0) {
			log_err("lost the parent process; exiting");
			_exit(1);
		}
		if (in.type == MSG_WORKER_SOCKET && msg_worker_socket_decode(&in, &idx, &fd) == 0 &&
		    idx < GW_MAX_WORKERS) {
			in.nfds = 0;
			worker_up(g, (unsigned)idx, fd);
			log_info("worker %llu connected", (unsigned long long)idx);
		} else if (in.type == MSG_CONFIG && msg_config_decode(&in, &c) == 0) {
			log_set_level((int)c.log_level);
			g->cfg.drain_timeout_s = c.drain_timeout_s;
			atomic_store(&g->max_body, (unsigned)c.max_body);
			log_info("configuration reloaded");
		} else
			log_err("malformed control message (type %u) from the parent", in.type);
		msg_in_free(&in);
	}
}

static void *
io_main(void *arg)
{
	struct gw *g = arg;
	struct epoll_event evs[16];
	uint64_t next_tick = 0;
	int wait_ms = 0;

	gw_thread_name("gw-io");

	for (;;) {
		int n = epoll_wait(g->epfd, evs, ARRAY_SIZE(evs), wait_ms);
		uint64_t now;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_err("epoll_wait: %s", strerror(errno));
			_exit(1);
		}
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;

			if (tag == CTL_TAG)
				ctl_readable(g);
			else if (tag < GW_MAX_WORKERS)
				worker_readable(g, (unsigned)tag);
			else if (tag >= HOT_TAG_MIN)
				hot_log_event(g, evs[i].data.ptr);
		}
		hot_reap(g);
		now = now_mono_us();
		if (now >= next_tick) {
			wait_ms = hot_tick(g);
			next_tick = now + (uint64_t)wait_ms * 1000;
		} else
			wait_ms = (int)((next_tick - now + 999) / 1000);
	}
	return NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap);

/* The event loop this thread runs, or -1 (the I/O and main threads). */
static _Thread_local int this_loop = -1;

void
gw_resume(struct req *q)
{
	/* Read before the resume: from another thread, the loop may then
	 * answer the request and free q before the next line runs (ASan saw
	 * it, an API thread's resume against its loop's completion). */
	int fd = q->gw->loops[q->loop].wake_fd;
	bool other = this_loop != (int)q->loop;

	if (q->fc)
		fast_resume(q);
	else
		MHD_resume_connection(q->conn);
	if (other) {
		uint64_t one = 1;

		(void)write(fd, &one, sizeof(one));
	}
}

/*
 * An event loop: MHD's own epoll set is one member of ours, the hot
 * connections of the requests this loop serves are the others, so an
 * instance's answer is read and the connection resumed and answered in the
 * same thread, without a hand-off.
 */
static void *
loop_main(void *arg)
{
	struct gw_loop *lp = arg;
	struct gw *g = lp->gw;
	struct epoll_event evs[64];
	bool quiesced = false;

	this_loop = (int)lp->index;
	gw_thread_name("gw-loop");
	for (;;) {
		MHD_UNSIGNED_LONG_LONG to = 1000;
		int ms = 1000, n;

		if (MHD_get_timeout(lp->mhd, &to) == MHD_YES)
			ms = (int)MIN(to, (MHD_UNSIGNED_LONG_LONG)1000);
		n = epoll_wait(lp->epfd, evs, ARRAY_SIZE(evs), ms);
		if (n < 0 && errno != EINTR) {
			log_err("epoll_wait: %s", strerror(errno));
			_exit(1);
		}
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;

			if (tag >= HOT_TAG_MIN && *(unsigned *)evs[i].data.ptr == LOOP_KIND_HOT)
				hot_conn_event(g, evs[i].data.ptr, evs[i].events, lp->index);
			else if (tag >= HOT_TAG_MIN)
				fast_event(lp, evs[i].data.ptr, evs[i].events);
			else if (tag == LOOP_TAG_LISTEN)
				fast_accept(lp);
			else if (tag == LOOP_TAG_WAKE) {
				uint64_t v;

				(void)read(lp->wake_fd, &v, sizeof(v));
			}
		}
		if (!quiesced && atomic_load(&g->draining)) {
			/* Stop accepting; the connections we have finish. */
			(void)MHD_quiesce_daemon(lp->mhd);
			quiesced = true;
		}
		if (!g->fast_off)
			fast_run(lp);
		MHD_run(lp->mhd);
		atomic_fetch_add(&lp->epoch, 1);
	}
	return NULL;
}

static int
loop_start(struct gw *g, unsigned i, int listen_fd)
{
	struct gw_loop *lp = &g->loops[i];
	const union MHD_DaemonInfo *di;
	struct epoll_event ev = { .events = EPOLLIN };
	int fd = i == 0 ? listen_fd : fcntl(listen_fd, F_DUPFD_CLOEXEC, 3), r;

	lp->gw = g;
	lp->index = i;
	if (fd < 0)
		return -errno;
	lp->listen_fd = fd;
	/* With the fast path the loop accepts (fast.c) and hands libmicrohttpd
	 * its connections; without, libmicrohttpd listens itself. */
	{
		struct MHD_OptionItem listen[] = {
			{ g->fast_off ? MHD_OPTION_LISTEN_SOCKET : MHD_OPTION_END, fd, NULL },
			{ MHD_OPTION_END, 0, NULL },
		};

		lp->mhd = MHD_start_daemon(
			MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC | MHD_USE_ERROR_LOG |
				(g->fast_off ? 0 : MHD_USE_NO_LISTEN_SOCKET),
			0, NULL, NULL, access_cb, g, MHD_OPTION_ARRAY, listen,
			MHD_OPTION_URI_LOG_CALLBACK, uri_cb, lp, MHD_OPTION_NOTIFY_COMPLETED,
			completed_cb, g, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
			MHD_OPTION_CONNECTION_LIMIT, (unsigned)8192,
			MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(16 * 1024),
			MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
	}
	if (!lp->mhd)
		return -EIO;
	di = MHD_get_daemon_info(lp->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	lp->epfd = epoll_create1(EPOLL_CLOEXEC);
	lp->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!di || lp->epfd < 0 || lp->wake_fd < 0)
		return -EIO;
	ev.data.u64 = LOOP_TAG_MHD;
	if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, di->epoll_fd, &ev) < 0)
		return -errno;
	ev.data.u64 = LOOP_TAG_WAKE;
	if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, lp->wake_fd, &ev) < 0)
		return -errno;
	if (!g->fast_off && (r = fast_loop_init(lp)) < 0)
		return r;
	if (pthread_create(&lp->thread, NULL, loop_main, lp) != 0)
		return -EAGAIN;
	return 0;
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	log_debug("http: %s", buf);
}

int
gateway_main(struct faasd_config *cfg, int ctl_fd, int listen_fd, const int *worker_fds,
	     unsigned nworkers)
{
	static struct gw gw;
	struct gw *g = &gw;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = CTL_TAG };
	char diag[512], dbpath[PATH_MAX + 16];
	sigset_t set;
	int sig, r;
	uint64_t deadline;

	log_set_ident("gateway");
	/* glibc hands the free top of a thread's heap back to the kernel
	 * (madvise) once it passes 128 KiB, and the loop's next allocations
	 * fault those pages in again: 0.06 madvise and 0.2 page faults per
	 * warm invocation, which this hypervisor makes dear.  Keep the top
	 * (the gateway's memory is bounded by its limits anyway); large
	 * buffers still come from mmap and go back when freed. */
	(void)mallopt(M_TRIM_THRESHOLD, GW_MALLOC_KEEP);
	(void)mallopt(M_MMAP_THRESHOLD, GW_MALLOC_MMAP);
	g->cfg = *cfg;
	g->fast_off = !cfg->fast_path;
	g->ctl_fd = ctl_fd;
	g->listen_fd = listen_fd;
	atomic_store(&g->max_body, (unsigned)cfg->max_body_bytes);
	{
		/* Held for microseconds by the loops and the I/O thread:
		 * spin a little before sleeping in the kernel. */
		pthread_mutexattr_t ma;

		pthread_mutexattr_init(&ma);
		pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
		pthread_mutex_init(&g->lock, &ma);
		pthread_mutexattr_destroy(&ma);
	}
	if (chdir(cfg->state_dir) < 0) {
		log_err("cannot enter state directory %s: %s", cfg->state_dir, strerror(errno));
		return 1;
	}
	(void)str_printf(dbpath, sizeof(dbpath), "%s/db/faasd.db", cfg->state_dir);
	r = store_open(dbpath, &g->store, diag, sizeof(diag));
	if (r < 0) {
		log_err("%s", diag);
		return 1;
	}
	r = auth_cache_new(g->store, &g->auth);
	if (r < 0) {
		log_err("cannot load keys: %s", strerror(-r));
		return 1;
	}
	r = rcache_new(GW_ROUTE_CACHE_SLOTS, &g->routes);
	if (r < 0) {
		log_err("cannot make the route cache: %s", strerror(-r));
		return 1;
	}
	/* Signals are handled by the main thread only. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	g->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (g->epfd < 0 || epoll_ctl(g->epfd, EPOLL_CTL_ADD, ctl_fd, &ev) < 0) {
		log_err("epoll: %s", strerror(errno));
		return 1;
	}
	for (unsigned i = 0; i < nworkers && i < GW_MAX_WORKERS; i++) {
		g->workers[i].fd = -1;
		worker_up(g, i, worker_fds[i]);
	}
	if (pthread_create(&g->io_thread, NULL, io_main, g) != 0) {
		log_err("cannot start the I/O thread");
		return 1;
	}
	{
		/* By default half the CPUs, at least one: the loops share the
		 * host with the handlers they feed, and on two cores one loop
		 * served as many warm invocations as two, for less CPU each
		 * and a shorter tail (docs/PERFORMANCE.md). */
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		long n = g->cfg.http_loops ? (long)g->cfg.http_loops : cpus / 2;

		g->nloops = (unsigned)MIN(MAX(n, 1L), (long)GW_MAX_LOOPS);
	}
	pthread_mutex_init(&g->work.lock, NULL);
	pthread_cond_init(&g->work.cond, NULL);
	for (unsigned i = 0; i < GW_WORK_THREADS; i++)
		if (pthread_create(&g->work.threads[i], NULL, work_main, g) != 0) {
			log_err("cannot start the API threads");
			return 1;
		}
	r = metrics_new(g);
	if (r < 0) {
		log_err("cannot make the metrics table: %s", strerror(-r));
		return 1;
	}
	r = records_start(g);
	if (r < 0) {
		log_err("cannot start the invocation record writer: %s", strerror(-r));
		return 1;
	}
	r = deploy_start(g);
	if (r < 0) {
		log_err("cannot start the deployment engine: %s", strerror(-r));
		return 1;
	}
	for (unsigned i = 0; i < g->nloops; i++) {
		r = loop_start(g, i, listen_fd);
		if (r < 0) {
			log_err("cannot start HTTP event loop %u: %s", i, strerror(-r));
			return 1;
		}
	}
	{
		struct msg_out m;

		msg_out_init(&m, MSG_READY);
		r = msg_send(ctl_fd, &m);
		msg_out_free(&m);
		if (r < 0)
			log_err("cannot tell the parent we are ready: %s", strerror(-r));
	}
	/* After the loops: the runners call this gateway over HTTP. */
	r = async_start(g);
	if (r < 0) {
		log_err("cannot start the async runners: %s", strerror(-r));
		return 1;
	}
	r = schedule_start(g);
	if (r < 0) {
		log_err("cannot start the scheduler: %s", strerror(-r));
		return 1;
	}
	log_info("serving HTTP with %u event loops, %u workers", g->nloops, nworkers);

	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGTERM || sig == SIGINT)
			break;
	}
	/* Drain: stop accepting, let in-flight requests finish (bounded);
	 * log streams end now. */
	atomic_store(&g->draining, true);
	async_stop(g);
	follow_end_all(g);
	for (unsigned i = 0; i < g->nloops; i++) {
		uint64_t one = 1;

		(void)write(g->loops[i].wake_fd, &one, sizeof(one));
	}
	deadline = now_mono_us() + g->cfg.drain_timeout_s * 1000000ull;
	log_info("draining %u in-flight requests (up to %llu s)", atomic_load(&g->inflight),
		 (unsigned long long)g->cfg.drain_timeout_s);
	while ((atomic_load(&g->inflight) > 0 || async_busy(g)) && now_mono_us() < deadline) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	if (atomic_load(&g->inflight))
		log_warn("drain timeout: %u requests still in flight", atomic_load(&g->inflight));
	deploy_flush(g);
	records_flush(g);
	/* The loops still run MHD (keep-alive connections may still send
	 * API requests), so the store stays open: the process ends with
	 * them, and SQLite's journal keeps every committed change.  What was
	 * in flight past the drain timeout is cut off by the exit. */
	log_info("gateway stopped");
	_exit(0);
}
