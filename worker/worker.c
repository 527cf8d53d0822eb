/*
 * worker.c - main loop of a worker process.
 *
 * Single-threaded epoll loop over: the data socket from the gateway
 * (MSG_INVOKE in, MSG_INVOKE_DONE out), the control socket from the parent
 * (MSG_CONFIG; EOF means the parent is gone), a signalfd (SIGTERM) and one
 * pidfd per running handler.  Deadlines are kept in the instance list; the
 * epoll timeout is the nearest one.  A handler's stdout and stderr are memfds
 * that travel back to the gateway as they are, so output is never copied
 * here.
 *
 * INVARIANT: the gateway is less privileged than this process; a message
 * that fails decoding, or names a uid outside the tenant range or a code
 * directory outside STATE/code, ends this worker with WORKER_EXIT_BAD_PEER
 * so the parent restarts the gateway.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <grp.h>

#include "log.h"
#include "msg.h"
#include "sb.h"
#include "util.h"
#include "worker.h"

#define LOG_SLACK (1u << 20) /* see invoke(): stderr beyond its cap, then cut */

#define TAG_DATA 1u
#define TAG_CTL  2u
#define TAG_SIG  3u
#define TAG_INST 4u
#define TAG_POOL 5u

struct inst {
	uint64_t id;
	pid_t pid;
	int pidfd, sync_fd;
	int out_fd, err_fd;
	uint64_t start_us, deadline_us;
	bool timed_out;
	bool reported;     /* the gateway has its answer */
	bool ended;        /* on the ended list, freed after this batch */
	uint64_t oom_base; /* OOM kills already counted in a recycled cgroup */
	uid_t uid;         /* tenant's host uid */
	int netns_fd;      /* reused network namespace, returned at the end; or -1 */
	uint64_t max_output, max_log;
	char cg[32]; /* instance cgroup name */
	struct inst *next;
	/* Hot instances (MSG_HOT_START): reused until stopped or dead. */
	bool hot;
	bool ready;           /* accepted once: the gateway has a connection */
	bool stopping;        /* the gateway asked, or the init timed out */
	bool have_status;     /* the init reported the handler's exit */
	int hstatus;          /* that wait status */
	uint64_t hot_id;      /* the gateway's name for it */
	uint64_t init_ms;     /* init timeout, for the message */
	uint64_t next_try_us; /* next connection attempt while starting */
	uint64_t try_gap_us;
	int run_fd; /* the sandbox's /run mount, where it listens */
};

/* Instance cgroups whose rmdir found processes still exiting. */
struct cg_gone {
	char name[32];
	unsigned tries;
	struct cg_gone *next;
};

struct wk {
	const struct faasd_config *cfg;
	const struct sb_cgroups *cg;
	unsigned index;
	uint64_t seq;
	int epfd, data_fd, ctl_fd, sig_fd;
	struct inst *insts;
	unsigned ninst;
	struct inst *ended; /* ended during this batch of events */
	struct cg_gone *to_remove;
	struct sb_filter filter;
	struct sb_spec blank;     /* tenant-independent part of every spec */
	struct sb_blank pool[64]; /* ready blank sandboxes (network none) */
	unsigned npool;
	unsigned pool_pending; /* blanks asked of the maker, not yet here */
	struct {
		uid_t uid; /* tenant the namespace has served */
		int fd;
		uint64_t idle_since;
	} netns[32]; /* idle network namespaces, reused per tenant */
	unsigned nnetns;
	char recycled[16][32]; /* emptied instance cgroups for the next blanks */
	unsigned nrecycled;
	int pool_sock; /* to the maker (pool.c), -1 without a pool */
	pid_t pool_pid;
	char code_prefix[PATH_MAX];
	char root_dir[PATH_MAX];
	char resolv[4096];
};

static const char etc_passwd[] = "root:x:0:0:root:/nonexistent:/usr/sbin/nologin\n"
				 "sandbox:x:1000:1000:faasd function:/tmp:/usr/sbin/nologin\n"
				 "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
static const char etc_group[] = "root:x:0:\nsandbox:x:1000:\nnogroup:x:65534:\n";
static const char etc_hosts[] = "127.0.0.1\tlocalhost faasd\n::1\tlocalhost ip6-localhost\n";

/* End an instance now (timeout, shutdown): the death of the sandbox's
 * pid 1 takes its whole pid namespace along; the cgroup kill covers the
 * rest.  Reaping follows through the pidfd. */
static void
kill_inst(struct wk *w, struct inst *it)
{
	if (it->pidfd >= 0)
		syscall(SYS_pidfd_send_signal, it->pidfd, SIGKILL, NULL, 0);
	(void)sb_cgroup_kill(w->cg, it->cg);
}

static void __attribute__((noreturn)) bad_peer(const char *why)
{
	log_err("malformed invocation from the gateway (%s); restarting", why);
	_exit(WORKER_EXIT_BAD_PEER);
}

static void
reply(struct wk *w, uint64_t id, uint64_t result, uint64_t code, uint64_t dur_us,
      uint64_t maxrss_kb, int out_fd, int err_fd, uint64_t truncated)
{
	struct msg_out m;
	int r;

	msg_out_init(&m, MSG_INVOKE_DONE);
	msg_put_u64(&m, MSG_T_ID, id);
	msg_put_u64(&m, MSG_T_RESULT, result);
	msg_put_u64(&m, MSG_T_CODE, code);
	msg_put_u64(&m, MSG_T_DURATION_US, dur_us);
	msg_put_u64(&m, MSG_T_MAXRSS_KB, maxrss_kb);
	msg_put_u64(&m, MSG_T_TRUNCATED, truncated);
	if (out_fd >= 0 && err_fd >= 0) {
		msg_put_fd(&m, out_fd);
		msg_put_fd(&m, err_fd);
	}
	r = msg_send(w->data_fd, &m);
	msg_out_free(&m);
	if (r < 0)
		log_warn("cannot answer invocation %llu: %s", (unsigned long long)id, strerror(-r));
}

/* Check what a compromised gateway could abuse. */
static bool
path_safe(const struct wk *w, const char *p)
{
	if (!str_startswith(p, w->code_prefix) || strstr(p, "/..") || strstr(p, "//"))
		return false;
	return strlen(p) > strlen(w->code_prefix);
}

static bool
handler_safe(const char *h)
{
	return *h && h[0] != '/' && !strstr(h, "..") && strlen(h) < 4096;
}

static void remove_later(struct wk *w, const char *name);

/* Decode MSG_INVOKE or MSG_HOT_START and check what a compromised gateway
 * could abuse; anything wrong ends this worker (bad_peer). */
static void
invocation_decode(const struct wk *w, const struct msg_in *in, struct msg_invoke *iv)
{
	if (msg_invoke_decode(in, iv) < 0)
		bad_peer("decoding failed");
	if (iv->uid < w->cfg->uid_base || iv->uid >= w->cfg->uid_base + w->cfg->uid_count)
		bad_peer("uid outside the tenant range");
	if (!path_safe(w, iv->code_dir) || !handler_safe(iv->handler))
		bad_peer("code path outside the state directory");
}

/* The limits and the sandbox spec of an invocation or hot instance: the
 * tenant-independent template (the same for every instance) with the
 * tenant's part from iv; stdio is the caller's. */
static void
spec_from(const struct wk *w, const struct msg_invoke *iv, struct sb_spec *sp,
	  struct sb_limits *lim)
{
	*lim = (struct sb_limits){ .memory_bytes = iv->memory_mb << 20,
				   .pids = w->cfg->pids_max,
				   .cpu_millicores = w->cfg->cpu_millicores };
	*sp = w->blank;
	sp->code_dir = iv->code_dir;
	sp->handler = iv->handler;
	sp->env = iv->env;
	sp->host_uid = (uid_t)iv->uid;
	sp->tmp_bytes = MIN(w->cfg->tmp_max_mb, MAX(iv->memory_mb / 2, 1)) << 20;
	sp->net_host = iv->network_host != 0;
}

/* An idle network namespace that served this tenant before, or a new one.
 * A namespace never passes from one tenant to another. */
static int
netns_take(struct wk *w, uid_t uid)
{
	for (unsigned i = w->nnetns; i-- > 0;)
		if (w->netns[i].uid == uid) {
			int fd = w->netns[i].fd;

			w->netns[i] = w->netns[--w->nnetns];
			return fd;
		}
	return sb_netns_new();
}

static void
netns_give_back(struct wk *w, uid_t uid, int fd)
{
	if (fd < 0)
		return;
	if (w->nnetns == ARRAY_SIZE(w->netns)) {
		/* Full: let the longest idle one go. */
		unsigned oldest = 0;

		for (unsigned i = 1; i < w->nnetns; i++)
			if (w->netns[i].idle_since < w->netns[oldest].idle_since)
				oldest = i;
		close(w->netns[oldest].fd);
		w->netns[oldest] = w->netns[--w->nnetns];
	}
	w->netns[w->nnetns].uid = uid;
	w->netns[w->nnetns].fd = fd;
	w->netns[w->nnetns].idle_since = now_mono_us();
	w->nnetns++;
}
static void pool_top_up(struct wk *w);
static void hot_gone(struct wk *w, struct inst *it, int init_status);
static void hot_try_ready(struct wk *w, struct inst *it, uint64_t now);
static int inst_launch(struct wk *w, struct inst *it, struct sb_spec *sp,
		       const struct sb_limits *lim);

static void
start_invocation(struct wk *w, struct msg_in *in)
{
	struct msg_invoke iv;
	struct sb_spec sp;
	struct sb_limits lim;
	struct inst *it;
	int out_fd, err_fd, r;

	invocation_decode(w, in, &iv);
	if (iv.runtime != RUNTIME_EXEC) {
		reply(w, iv.id, INVOKE_REJECTED, ENOTSUP, 0, 0, -1, -1, 0);
		return;
	}
	if (iv.body_fd < 0 || lseek(iv.body_fd, 0, SEEK_SET) < 0) {
		reply(w, iv.id, INVOKE_REJECTED, EBADF, 0, 0, -1, -1, 0);
		return;
	}
	out_fd = sb_output_open("faas-stdout", iv.max_output);
	/* stderr room past its cap: a write that crosses the cap still lands
	 * (a sealed memfd refuses a whole write that would grow it), so the
	 * record keeps the first max_log bytes and knows they were cut. */
	err_fd = sb_output_open("faas-stderr", iv.max_log + LOG_SLACK);
	it = calloc(1, sizeof(*it));
	if (out_fd < 0 || err_fd < 0 || !it) {
		r = out_fd < 0 ? -out_fd : err_fd < 0 ? -err_fd : ENOMEM;
		if (out_fd >= 0)
			close(out_fd);
		if (err_fd >= 0)
			close(err_fd);
		free(it);
		reply(w, iv.id, INVOKE_SPAWN_FAILED, (uint64_t)r, 0, 0, -1, -1, 0);
		return;
	}
	it->id = iv.id;
	it->out_fd = out_fd;
	it->err_fd = err_fd;
	it->uid = (uid_t)iv.uid;
	it->max_output = iv.max_output;
	it->max_log = iv.max_log;
	it->run_fd = -1;
	spec_from(w, &iv, &sp, &lim);
	sp.stdin_fd = iv.body_fd;
	sp.stdout_fd = out_fd;
	sp.stderr_fd = err_fd;
	it->start_us = now_mono_us();
	it->deadline_us = it->start_us + iv.timeout_ms * 1000;
	r = inst_launch(w, it, &sp, &lim);
	if (r < 0) {
		log_err("sandbox for %s/%s failed: %s", iv.tenant, iv.function, strerror(-r));
		reply(w, iv.id, INVOKE_SPAWN_FAILED, (uint64_t)-r, 0, 0, -1, -1, 0);
		close(out_fd);
		close(err_fd);
		free(it);
		return;
	}
	log_debug("invocation %s fn=%s/%s v=%llu pid=%d cgroup=%s", iv.invocation_id, iv.tenant,
		  iv.function, (unsigned long long)iv.version, it->pid, it->cg);
}

/*
 * Start the sandbox of it from spec sp (tenant part filled): the tenant's
 * network namespace, a blank from the pool or a fresh sandbox, then the
 * instance list and epoll.  0, or -errno with nothing left behind (the
 * caller still owns it and the fds in sp).
 */
static int
inst_launch(struct wk *w, struct inst *it, struct sb_spec *sp, const struct sb_limits *lim)
{
	struct epoll_event ev;
	bool started = false;
	int r = 0;

	it->netns_fd = it->sync_fd = it->pidfd = -1;
	it->cg[0] = 0;
	sp->netns_fd = -1;
	if (sp->net_host)
		sp->resolv = w->resolv;
	if (!sp->net_host) {
		r = netns_take(w, sp->host_uid);
		if (r >= 0) {
			it->netns_fd = sp->netns_fd = r;
			r = 0;
		}
	}
	if (r == 0 && w->npool > 0) {
		/* The fast path: a blank from the pool, already in its cgroup
		 * (no migration to wait for) with its root built, gets the
		 * tenant's part. */
		struct sb_blank b = w->pool[--w->npool];

		pool_top_up(w);

		(void)str_copy(it->cg, sizeof(it->cg), b.cg_inst);
		sp->cg_inst = it->cg;
		r = sb_cgroup_set_memory(w->cg, it->cg, lim->memory_bytes);
		if (r == 0) {
			struct sb_cg_stats base;

			if (sb_cgroup_stats(w->cg, it->cg, &base) == 0)
				it->oom_base = base.oom_kills;
		}
		if (r == 0)
			r = sb_start(&b, sp);
		if (r == 0) {
			it->pid = b.pid;
			it->pidfd = b.pidfd;
			it->sync_fd = b.sync_fd;
			started = true;
		} else {
			log_warn("blank sandbox %s unusable (%s); starting a fresh one", it->cg,
				 strerror(-r));
			sb_blank_discard(&b);
			(void)sb_cgroup_kill(w->cg, it->cg);
			if (sb_cgroup_remove(w->cg, it->cg) < 0)
				remove_later(w, it->cg);
			it->cg[0] = 0;
			r = 0;
		}
	}
	if (r == 0 && !started) {
		/* No usable blank: a fresh sandbox in a fresh cgroup. */
		(void)str_printf(it->cg, sizeof(it->cg), "w%u-%llu", w->index,
				 (unsigned long long)++w->seq);
		sp->cg_inst = it->cg;
		r = sb_cgroup_create(w->cg, it->cg, lim);
		if (r == 0)
			r = sb_spawn(sp, &it->pid, &it->pidfd, &it->sync_fd);
	}
	if (r < 0) {
		if (it->cg[0])
			(void)sb_cgroup_remove(w->cg, it->cg);
		if (it->netns_fd >= 0)
			close(it->netns_fd); /* a sandbox may have joined it */
		it->netns_fd = -1;
		return r;
	}
	ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = it };
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, it->pidfd, &ev) < 0 ||
	    epoll_ctl(w->epfd, EPOLL_CTL_ADD, it->sync_fd, &ev) < 0) {
		log_err("epoll add: %s", strerror(errno));
		kill_inst(w, it);
	}
	it->next = w->insts;
	w->insts = it;
	w->ninst++;
	return 0;
}

/* ---- hot instances ---- */

static struct inst *
hot_find(struct wk *w, uint64_t id)
{
	for (struct inst *it = w->insts; it; it = it->next)
		if (it->hot && it->hot_id == id && !it->ended)
			return it;
	return NULL;
}

static void
hot_send(struct wk *w, uint16_t type, uint64_t id, uint64_t result, uint64_t code, uint64_t dur_us,
	 const char *message, int fd)
{
	struct msg_out m;
	int r;

	msg_out_init(&m, type);
	msg_put_u64(&m, MSG_T_ID, id);
	if (type == MSG_HOT_READY)
		msg_put_u64(&m, MSG_T_DURATION_US, dur_us);
	if (type == MSG_HOT_GONE) {
		msg_put_u64(&m, MSG_T_RESULT, result);
		msg_put_u64(&m, MSG_T_CODE, code);
		if (message && *message)
			msg_put_str(&m, MSG_T_MESSAGE, message);
	}
	if (fd >= 0)
		msg_put_fd(&m, fd);
	r = msg_send(w->data_fd, &m);
	msg_out_free(&m);
	if (r < 0)
		log_warn("cannot tell the gateway about instance %llu: %s", (unsigned long long)id,
			 strerror(-r));
}

/* While starting: does it accept yet?  Tries every 0.25 ms, then every
 * 1 ms: a failed try is one openat2, cheap next to any start-up.  Past
 * the deadline it is tried once more before it fails: a worker held up
 * meanwhile does not fail an instance that has been listening for a
 * while. */
static void
hot_try_ready(struct wk *w, struct inst *it, uint64_t now)
{
	int fd = sb_listen_connect(it->run_fd, it->uid);

	if (fd < 0 && now >= it->deadline_us) {
		it->stopping = true; /* reported as an init failure at its end */
		it->timed_out = true;
		kill_inst(w, it);
		return;
	}
	if (fd < 0) {
		it->try_gap_us = MIN(MAX(it->try_gap_us * 2, 250u), 1000u);
		it->next_try_us = now + it->try_gap_us;
		return;
	}
	it->ready = true;
	hot_send(w, MSG_HOT_READY, it->hot_id, 0, 0, now - it->start_us, NULL, fd);
	close(fd);
}

/* The init of a hot instance exited: tell the gateway why. */
static void
hot_gone(struct wk *w, struct inst *it, int init_status)
{
	struct sb_cg_stats st = { 0 };
	char msg[MSG_HOT_MESSAGE_MAX];
	int hs = it->have_status ? it->hstatus : init_status;
	uint64_t result, code = 0;

	(void)sb_cgroup_stats(w->cg, it->cg, &st);
	msg[0] = 0;
	if (st.oom_kills > it->oom_base)
		result = INVOKE_OOM;
	else if (!it->ready && it->timed_out) {
		result = INVOKE_INIT_FAILED;
		(void)str_printf(msg, sizeof(msg),
				 "the handler did not accept connections on $FAAS_LISTEN (%s) "
				 "within %llu ms",
				 SB_LISTEN_PATH, (unsigned long long)it->init_ms);
	} else if (it->stopping)
		result = INVOKE_STOPPED;
	else if (!it->ready) {
		result = INVOKE_INIT_FAILED;
		code = WIFEXITED(hs) ? (uint64_t)WEXITSTATUS(hs) : 128u + (uint64_t)WTERMSIG(hs);
		(void)str_printf(msg, sizeof(msg),
				 "the handler exited with status %llu before it "
				 "accepted connections on $FAAS_LISTEN",
				 (unsigned long long)code);
	} else if (WIFSIGNALED(hs))
		result = INVOKE_SIGNALED, code = (uint64_t)WTERMSIG(hs);
	else
		result = INVOKE_EXITED, code = (uint64_t)WEXITSTATUS(hs);
	hot_send(w, MSG_HOT_GONE, it->hot_id, result, code, 0, msg, -1);
	if (it->run_fd >= 0)
		close(it->run_fd);
	it->run_fd = -1;
	it->reported = true;
}

static void
hot_start(struct wk *w, struct msg_in *in)
{
	static const char *const py_argv[] = { "/usr/bin/python3", "-u",
					       "/var/runtime/python3/bootstrap.py", NULL };
	static const char *const node_argv[] = { "/usr/bin/node", "/var/runtime/node/bootstrap.js",
						 NULL };
	static const char listen_env[] = "FAAS_LISTEN=" SB_LISTEN_PATH;
	struct msg_invoke iv;
	struct sb_spec sp;
	struct sb_limits lim;
	struct inst *it;
	const char *env[MSG_MAX_ENV + 2];
	int null_fd = -1, r;

	invocation_decode(w, in, &iv);
	if (iv.runtime != RUNTIME_HTTP && iv.runtime != RUNTIME_PYTHON3 &&
	    iv.runtime != RUNTIME_NODE)
		bad_peer("hot start of a runtime that is not hot");
	if (hot_find(w, iv.id))
		bad_peer("hot instance id in use");
	it = calloc(1, sizeof(*it));
	if (!it) {
		hot_send(w, MSG_HOT_GONE, iv.id, INVOKE_SPAWN_FAILED, ENOMEM, 0, NULL, -1);
		return;
	}
	it->hot = true;
	it->hot_id = iv.id;
	it->uid = (uid_t)iv.uid;
	it->out_fd = it->err_fd = -1;
	it->init_ms = iv.timeout_ms;
	it->run_fd = sb_run_new(it->uid);
	r = it->run_fd < 0 ? it->run_fd : 0;
	if (r == 0 && (null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
		r = -errno;
	if (r == 0) {
		spec_from(w, &iv, &sp, &lim);
		if (iv.runtime == RUNTIME_PYTHON3) {
			sp.handler = py_argv[0];
			sp.argv = py_argv;
		} else if (iv.runtime == RUNTIME_NODE) {
			sp.handler = node_argv[0];
			sp.argv = node_argv;
		}
		/* The path is the sandbox's business: the worker names it. */
		memcpy(env, iv.env, iv.nenv * sizeof(env[0]));
		env[iv.nenv] = listen_env;
		env[iv.nenv + 1] = NULL;
		sp.env = env;
		/* The gateway reads the handler's output (its pipes). */
		sp.stdin_fd = null_fd;
		sp.stdout_fd = iv.out_fd;
		sp.stderr_fd = iv.err_fd;
		sp.run_fd = it->run_fd;
		it->start_us = now_mono_us();
		it->deadline_us = it->start_us + iv.timeout_ms * 1000;
		it->next_try_us = it->start_us + 500;
		r = inst_launch(w, it, &sp, &lim);
	}
	if (null_fd >= 0)
		close(null_fd);
	if (r == 0) {
		log_debug("hot instance %llu of %s/%s v=%llu pid=%d cgroup=%s",
			  (unsigned long long)iv.id, iv.tenant, iv.function,
			  (unsigned long long)iv.version, it->pid, it->cg);
		return;
	}
	log_err("hot sandbox for %s/%s failed: %s", iv.tenant, iv.function, strerror(-r));
	hot_send(w, MSG_HOT_GONE, iv.id, INVOKE_SPAWN_FAILED, (uint64_t)-r, 0, NULL, -1);
	if (it->run_fd >= 0)
		close(it->run_fd);
	free(it);
}

/* MSG_HOT_CONNECT and MSG_HOT_STOP. */
static void
hot_request(struct wk *w, struct msg_in *in)
{
	struct msg_hot h;
	struct inst *it;
	int fd;

	if (msg_hot_decode(in, &h) < 0)
		bad_peer("decoding failed");
	it = hot_find(w, h.id);
	if (!it || it->stopping)
		return; /* already gone: its MSG_HOT_GONE is on the way or sent */
	if (in->type == MSG_HOT_STOP || !it->ready) {
		it->stopping = true;
		kill_inst(w, it);
		return;
	}
	fd = sb_listen_connect(it->run_fd, it->uid);
	if (fd < 0) {
		/* It stopped listening: it is of no use any more. */
		log_info("hot instance %llu no longer accepts (%s); stopping it",
			 (unsigned long long)h.id, strerror(-fd));
		kill_inst(w, it);
		return;
	}
	hot_send(w, MSG_HOT_READY, it->hot_id, 0, 0, 0, NULL, fd);
	close(fd);
}

/* Retry removing cgroups whose last processes were still exiting. */
static void
remove_later(struct wk *w, const char *name)
{
	struct cg_gone *g = calloc(1, sizeof(*g));

	if (!g) {
		log_err("out of memory: cgroup %s left behind", name);
		return;
	}
	(void)str_copy(g->name, sizeof(g->name), name);
	g->next = w->to_remove;
	w->to_remove = g;
}

static void
retry_removals(struct wk *w)
{
	for (struct cg_gone **pp = &w->to_remove; *pp;) {
		struct cg_gone *g = *pp;

		(void)sb_cgroup_kill(w->cg, g->name);
		if (sb_cgroup_remove(w->cg, g->name) == 0 || ++g->tries > 500) {
			if (g->tries > 500)
				log_err("cgroup %s could not be removed", g->name);
			*pp = g->next;
			free(g);
		} else
			pp = &g->next;
	}
}

/*
 * Answer the gateway for an instance: status is the handler's wait status
 * as the init reported it, or (have == false) the init's own, when it died
 * before reporting (timeout, OOM kill of the init).
 */
static void
report(struct wk *w, struct inst *it, int status, bool have)
{
	struct sb_cg_stats st = { 0 };
	uint64_t dur = now_mono_us() - it->start_us, result, code;
	bool out_full = false, err_full = false;

	it->reported = true;
	(void)sb_cgroup_stats(w->cg, it->cg, &st);
	if (it->timed_out)
		result = INVOKE_TIMEOUT, code = 0;
	else if (st.oom_kills > it->oom_base)
		result = INVOKE_OOM, code = 0;
	else if (WIFSIGNALED(status))
		result = INVOKE_SIGNALED, code = (uint64_t)WTERMSIG(status);
	else
		result = INVOKE_EXITED, code = have ? (uint64_t)WEXITSTATUS(status) : 255;
	(void)sb_output_finish(it->out_fd, it->max_output, &out_full);
	(void)sb_output_finish(it->err_fd, it->max_log, &err_full);
	reply(w, it->id, result, code, dur, st.peak_bytes / 1024, it->out_fd, it->err_fd,
	      (out_full ? 1u : 0u) | (err_full ? 2u : 0u));
	close(it->out_fd);
	close(it->err_fd);
	it->out_fd = it->err_fd = -1;
}

/*
 * An instance's pidfd or sync socket is readable.  The init's report on
 * the sync socket comes first, once nothing of the sandbox but the init is
 * left (see sb_spawn.c): the answer goes out then, before the namespaces
 * are torn down.  The init's exit (pidfd) ends the instance.
 */
static void
inst_event(struct wk *w, struct inst *it)
{
	struct rusage ru = { 0 };
	int status = 0, hs;
	ssize_t n;
	pid_t p;

	if (it->ended)
		return; /* its other fd, in the same batch of events */
	if (!it->reported && it->sync_fd >= 0) {
		n = recv(it->sync_fd, &hs, sizeof(hs), MSG_DONTWAIT);
		if (n == (ssize_t)sizeof(hs) && it->hot) {
			it->have_status = true;
			it->hstatus = hs;
		} else if (n == (ssize_t)sizeof(hs) && !it->timed_out)
			report(w, it, hs, true);
		if (n >= 0 || errno != EAGAIN) {
			/* Reported, or the init is gone: nothing more to read. */
			epoll_ctl(w->epfd, EPOLL_CTL_DEL, it->sync_fd, NULL);
			close(it->sync_fd);
			it->sync_fd = -1;
		}
	}
	do
		p = wait4(it->pid, &status, WNOHANG, &ru);
	while (p < 0 && errno == EINTR);
	if (p == 0)
		return; /* the init lives on */
	if (it->hot)
		hot_gone(w, it, status);
	else if (!it->reported)
		report(w, it, status, false);
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, it->pidfd, NULL);
	close(it->pidfd);
	if (it->sync_fd >= 0) {
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, it->sync_fd, NULL);
		close(it->sync_fd);
	}
	/* INVARIANT: nothing of the instance outlives it.  The init was pid 1
	 * of its namespace, so the kernel has killed the rest; the cgroup
	 * kill covers anything that escaped the namespace. */
	(void)sb_cgroup_kill(w->cg, it->cg);
	/* The sandbox's processes are gone with its pid namespace: its
	 * network namespace is empty again and may serve this tenant next,
	 * and an emptied cgroup serves the next blank instead of a new one. */
	netns_give_back(w, it->uid, it->netns_fd);
	if (w->pool_sock >= 0 && w->nrecycled < ARRAY_SIZE(w->recycled) &&
	    sb_cgroup_recycle(w->cg, it->cg) == 0)
		(void)str_copy(w->recycled[w->nrecycled++], sizeof(w->recycled[0]), it->cg);
	else if (sb_cgroup_remove(w->cg, it->cg) < 0)
		remove_later(w, it->cg);
	for (struct inst **pp = &w->insts; *pp; pp = &(*pp)->next)
		if (*pp == it) {
			*pp = it->next;
			break;
		}
	w->ninst--;
	/* Freed after the batch of events, which may still name it. */
	it->ended = true;
	it->next = w->ended;
	w->ended = it;
}

static int
next_timeout_ms(struct wk *w)
{
	uint64_t now = now_mono_us(), best = UINT64_MAX;

	for (struct inst *it = w->insts; it; it = it->next) {
		if (it->hot && !it->ready && !it->stopping && it->next_try_us <= now)
			hot_try_ready(w, it, now);
		if (it->hot && !it->ready && !it->stopping)
			best = MIN(best, it->next_try_us > now ? it->next_try_us - now : 0);
		if (it->timed_out || it->reported || (it->hot && it->ready))
			continue;
		if (it->deadline_us <= now) {
			/* Kill the whole process group; reaping follows via pidfd. */
			it->timed_out = true;
			kill_inst(w, it);
			continue;
		}
		best = MIN(best, it->deadline_us - now);
	}
	if (w->to_remove)
		best = MIN(best, 20000u);
	return best == UINT64_MAX ? -1 : (int)MIN((best + 999) / 1000, (uint64_t)INT32_MAX);
}

/* Ask the maker for blanks until ready + asked reaches the target. */
static void
pool_top_up(struct wk *w)
{
	unsigned target = (unsigned)MIN(w->cfg->sandbox_pool, ARRAY_SIZE(w->pool));

	while (w->pool_sock >= 0 && w->npool + w->pool_pending < target) {
		const char *reuse = w->nrecycled ? w->recycled[w->nrecycled - 1] : NULL;

		if (pool_maker_request(w->pool_sock, reuse) < 0)
			return;
		if (reuse)
			w->nrecycled--;
		w->pool_pending++;
	}
}

static void
pool_stop(struct wk *w, const char *why)
{
	log_err("sandbox pool stopped (%s); invocations start fresh sandboxes", why);
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->pool_sock, NULL);
	close(w->pool_sock);
	w->pool_sock = -1;
	w->pool_pending = 0;
	(void)waitpid(w->pool_pid, NULL, WNOHANG); /* reap it if it is gone */
}

static void
pool_readable(struct wk *w)
{
	for (;;) {
		struct pool_reply rep;
		int pidfd, sync_fd, r = pool_maker_receive(w->pool_sock, &rep, &pidfd, &sync_fd);

		if (r == -EAGAIN)
			break;
		if (r < 0) {
			pool_stop(w, strerror(-r));
			return;
		}
		if (w->pool_pending)
			w->pool_pending--;
		if (rep.err != 0) {
			pool_stop(w, strerror(-rep.err));
			return;
		}
		if (w->npool >= ARRAY_SIZE(w->pool)) {
			struct sb_blank extra = { .pid = rep.pid,
						  .pidfd = pidfd,
						  .sync_fd = sync_fd };

			sb_blank_discard(&extra);
			continue;
		}
		w->pool[w->npool] =
			(struct sb_blank){ .pid = rep.pid, .pidfd = pidfd, .sync_fd = sync_fd };
		(void)str_copy(w->pool[w->npool].cg_inst, sizeof(w->pool[w->npool].cg_inst),
			       rep.name);
		w->npool++;
	}
	pool_top_up(w);
}

static void
kill_all(struct wk *w)
{
	while (w->npool > 0)
		sb_blank_discard(&w->pool[--w->npool]);
	while (w->nrecycled > 0)
		(void)sb_cgroup_remove(w->cg, w->recycled[--w->nrecycled]);
	for (struct inst *it = w->insts; it; it = it->next)
		kill_inst(w, it);
	/* Before this worker exits, its sandboxes are gone: an init's exit
	 * completes only once everything in its pid namespace is reaped.
	 * Bounded, so a stuck kernel cannot hold the shutdown. */
	{
		uint64_t end = now_mono_us() + 3000000u;

		for (struct inst *it = w->insts; it; it = it->next) {
			struct pollfd pfd = { .fd = it->pidfd, .events = POLLIN };
			uint64_t now = now_mono_us();

			if (it->pidfd < 0 || now >= end)
				continue;
			(void)poll(&pfd, 1, (int)((end - now) / 1000));
			(void)waitpid(it->pid, NULL, WNOHANG);
		}
	}
}

int
worker_main(unsigned index, int ctl_fd, int data_fd, const struct faasd_config *cfg,
	    const struct sb_cgroups *cg)
{
	struct wk w = {
		.cfg = cfg, .cg = cg, .index = index, .data_fd = data_fd, .ctl_fd = ctl_fd
	};
	struct epoll_event ev;
	char ident[32], *resolv = NULL;
	sigset_t set;
	int r;

	(void)str_printf(ident, sizeof(ident), "worker%u", index);
	log_set_ident(ident);
	(void)str_printf(w.code_prefix, sizeof(w.code_prefix), "%s/code/", cfg->state_dir);
	(void)str_printf(w.root_dir, sizeof(w.root_dir), "%s/root", cfg->state_dir);
	/* Supplementary groups would follow handlers into their sandboxes. */
	if (setgroups(0, NULL) < 0) {
		log_err("setgroups: %s", strerror(errno));
		return 1;
	}
	r = sb_seccomp_build(&w.filter);
	if (r < 0) {
		log_err("cannot build the seccomp policy: %s", strerror(-r));
		return 1;
	}
	/* INVARIANT: a worker keeps only what building sandboxes needs. */
	r = sb_caps_keep_for_worker();
	if (r < 0) {
		log_err("cannot narrow the worker's capabilities: %s", strerror(-r));
		return 1;
	}
	w.blank = (struct sb_spec){ .root_dir = w.root_dir,
				    .filter = &w.filter,
				    .cg = cg,
				    .etc_passwd = etc_passwd,
				    .etc_group = etc_group,
				    .etc_hosts = etc_hosts,
				    .etc_resolv = "# no network\n",
				    .run_fd = -1,
				    .netns_fd = -1 };
	/* Only an existing directory: a blank whose bind fails is no blank. */
	if (cfg->runtime_dir[0] && access(cfg->runtime_dir, R_OK | X_OK) == 0)
		w.blank.runtime_dir = cfg->runtime_dir;
	else
		log_warn("runtime directory %s is missing: python3 and node cannot start",
			 cfg->runtime_dir);
	w.pool_sock = -1;
	/* After a restart of this worker: the instance cgroups its previous
	 * run left (their sandboxes died with it) would clash by name. */
	{
		char prefix[16];

		(void)str_printf(prefix, sizeof(prefix), "w%u-", index);
		r = sb_cgroup_cleanup(cg, prefix);
		if (r > 0)
			log_info("removed %d instance cgroups of this worker's previous run", r);
	}
	if (cfg->sandbox_pool > 0) {
		struct sb_limits lim = { .memory_bytes = 128u << 20,
					 .pids = cfg->pids_max,
					 .cpu_millicores = cfg->cpu_millicores };

		r = pool_maker_start(&w.blank, &lim, index, &w.pool_pid, &w.pool_sock);
		if (r < 0)
			log_err("cannot start the sandbox pool: %s", strerror(-r));
	}
	if (read_file_bounded("/etc/resolv.conf", sizeof(w.resolv) - 1, &resolv, NULL) == 0) {
		(void)str_copy(w.resolv, sizeof(w.resolv), resolv);
		free(resolv);
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	w.sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	w.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w.sig_fd < 0 || w.epfd < 0) {
		log_err("setup: %s", strerror(errno));
		return 1;
	}
	ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = TAG_DATA };
	epoll_ctl(w.epfd, EPOLL_CTL_ADD, data_fd, &ev);
	ev.data.u64 = TAG_CTL;
	epoll_ctl(w.epfd, EPOLL_CTL_ADD, ctl_fd, &ev);
	ev.data.u64 = TAG_SIG;
	epoll_ctl(w.epfd, EPOLL_CTL_ADD, w.sig_fd, &ev);
	if (w.pool_sock >= 0) {
		ev.data.u64 = TAG_POOL;
		epoll_ctl(w.epfd, EPOLL_CTL_ADD, w.pool_sock, &ev);
		pool_top_up(&w);
	}
	log_debug("started");

	for (;;) {
		struct epoll_event evs[32];
		int n = epoll_wait(w.epfd, evs, ARRAY_SIZE(evs), next_timeout_ms(&w));

		if (w.to_remove)
			retry_removals(&w);

		if (n < 0 && errno != EINTR) {
			log_err("epoll_wait: %s", strerror(errno));
			kill_all(&w);
			return 1;
		}
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;

			if (tag == TAG_DATA) {
				struct msg_in in;
				int r;

				while ((r = msg_recv(data_fd, &in)) == 1) {
					if (in.type == MSG_INVOKE)
						start_invocation(&w, &in);
					else if (in.type == MSG_HOT_START)
						hot_start(&w, &in);
					else if (in.type == MSG_HOT_CONNECT ||
						 in.type == MSG_HOT_STOP)
						hot_request(&w, &in);
					else
						bad_peer("unexpected message type");
					msg_in_free(&in);
				}
				if (r == 0) {
					log_info("gateway closed the connection; stopping");
					kill_all(&w);
					return 0;
				}
				if (r == -EBADMSG)
					bad_peer("bad framing");
			} else if (tag == TAG_CTL) {
				struct msg_in in;
				struct msg_config c;
				int r;

				while ((r = msg_recv(ctl_fd, &in)) == 1) {
					if (msg_config_decode(&in, &c) == 0)
						log_set_level((int)c.log_level);
					msg_in_free(&in);
				}
				if (r == 0) {
					kill_all(&w);
					_exit(1);
				}
			} else if (tag == TAG_POOL) {
				pool_readable(&w);
			} else if (tag == TAG_SIG) {
				struct signalfd_siginfo si;

				while (read(w.sig_fd, &si, sizeof(si)) == sizeof(si)) {
					if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
						log_debug("stopping; killing %u handlers", w.ninst);
						kill_all(&w);
						return 0;
					}
				}
			} else {
				inst_event(&w, evs[i].data.ptr);
			}
		}
		while (w.ended) {
			struct inst *it = w.ended;

			w.ended = it->next;
			free(it);
		}
	}
}
