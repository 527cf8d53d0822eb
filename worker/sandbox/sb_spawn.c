/*
 * sb_spawn.c - launch handlers in fresh sandboxes (SPEC §3), in two phases
 * so that everything tenant-independent happens ahead of time, off the
 * request path.  Two processes per sandbox:
 *
 *   worker ──clone3(new pid, mount, ipc, uts)──► init ──vfork──► handler
 *
 * sb_prepare (a "blank" sandbox):
 *   caller: clone3 the init [into the v2 cgroup] -> v1: move it into the
 *           instance cgroups -> wait for "ready"
 *   init:   hostname -> the whole root but code and /tmp, pivot_root
 *           (sb_root_build) -> "ready" -> waits for an assignment
 *
 * sb_start (the assignment, on the request path; the caller does not wait):
 *   caller: clone the code tree (open_tree) -> send handler, env, tmp size,
 *           host uid, stdio fds, code tree, network namespace
 *   init:   stdio -> join the network namespace (or make one) -> cgroup
 *           namespace -> code, /tmp, root read-only (sb_root_assign) ->
 *           become the tenant's host uid and gid, keeping capabilities ->
 *           new user namespace, whose one-line maps (SB_INNER_ID -> that
 *           uid, setgroups denied) the init writes itself -> rlimits ->
 *           setsid -> drop every capability (bounding set included) ->
 *           no_new_privs -> parent-death signal again -> stray fds
 *           close-on-exec -> seccomp (last) -> vfork: the handler execs;
 *           the init stays pid 1
 *
 * Until the user namespace exists, the init holds the worker's
 * capabilities in the initial user namespace: it needs them to mount, to
 * join a network namespace and to make a cgroup namespace.  Every other
 * namespace is therefore owned by the initial user namespace, and the
 * handler's own user namespace owns none of them: even capabilities inside
 * it would grant nothing over its mounts, network, hostname or processes.
 *
 * The init reaps orphans, lets the handler have ordinary signal semantics
 * (pid 1 ignores signals it has no handler for), and, once the handler and
 * everything it left are gone, sends the handler's wait status over the
 * sync socket.  When it exits, or is killed on a timeout, the kernel kills
 * everything else in its pid namespace, so nothing of an instance outlives
 * it.  The worker is single-threaded, so the init may use ordinary libc
 * calls between clone and execve.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spawn.h>
#include <sys/capability.h>

#include "sb.h"
#include "util.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define ASSIGN_MAX     (160u * 1024u)
#define ASSIGN_MAX_ENV 1024
#define READY_MS       5000 /* a blank that takes longer is broken */

/* The assignment as it crosses the sync socket: this header, then the
 * handler, resolv.conf text ("" keeps the blank's) and env strings, each
 * NUL-terminated; fds stdin, stdout, stderr, code tree [, netns]. */
struct assign_hdr {
	uint64_t tmp_bytes;
	uint32_t host_uid;
	uint32_t nenv;
	uint32_t nargv;
	uint32_t len; /* bytes of strings after the header */
	uint32_t flags;
};
#define ASSIGN_NETNS    1u /* a network namespace fd follows */
#define ASSIGN_NET_HOST 2u /* stay in the host's network namespace */
#define ASSIGN_RUN      4u /* a /run mount fd follows (after netns, if any) */
#define ASSIGN_MAX_ARGV 8

/* What the init receives, pointing into assign_buf. */
struct assignment {
	const char *handler, *resolv;
	const char **env;
	const char *argv[ASSIGN_MAX_ARGV + 1]; /* argv[0] NULL: the handler alone */
	uint64_t tmp_bytes;
	uid_t host_uid;
	uint32_t flags;
	int code_fd, netns_fd, run_fd;
};

static char assign_buf[ASSIGN_MAX];
static const char *assign_env[ASSIGN_MAX_ENV + 1];

static void __attribute__((noreturn)) child_fail(const char *what, int err)
{
	dprintf(STDERR_FILENO, "faasd: sandbox setup failed at %s: %s\n", what, strerror(err));
	_exit(127);
}

/* Receive the assignment into a (pointers into assign_buf) and dup stdio.
 * Anything malformed ends the init: only the worker writes here. */
static void
init_receive(int sync_fd, struct assignment *a)
{
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(6 * sizeof(int))];
	} cbuf;
	struct iovec iov = { assign_buf, ASSIGN_MAX };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf.b,
			     .msg_controllen = sizeof(cbuf.b) };
	struct cmsghdr *c;
	struct assign_hdr h;
	int fds[6] = { -1, -1, -1, -1, -1, -1 };
	size_t nfds, want;
	ssize_t n;
	char *p, *end;

	do
		n = recvmsg(sync_fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		_exit(127); /* the worker discarded us, or is gone */
	c = CMSG_FIRSTHDR(&mh);
	if ((size_t)n < sizeof(h) || !c || c->cmsg_type != SCM_RIGHTS ||
	    (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
		_exit(127);
	nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
	memcpy(&h, assign_buf, sizeof(h));
	want = 4u + ((h.flags & ASSIGN_NETNS) ? 1u : 0u) + ((h.flags & ASSIGN_RUN) ? 1u : 0u);
	if (nfds != want)
		_exit(127);
	memcpy(fds, CMSG_DATA(c), nfds * sizeof(int));
	if (h.len != (size_t)n - sizeof(h) || h.nenv > ASSIGN_MAX_ENV ||
	    h.nargv > ASSIGN_MAX_ARGV || h.len == 0 || assign_buf[n - 1] != 0)
		_exit(127);
	if (dup2(fds[0], 0) < 0 || dup2(fds[1], 1) < 0 || dup2(fds[2], 2) < 0)
		_exit(127);
	p = assign_buf + sizeof(h);
	end = assign_buf + n;
	a->handler = p;
	p += strlen(p) + 1;
	if (p >= end)
		child_fail("assignment", EINVAL);
	a->resolv = *p ? p : NULL;
	p += strlen(p) + 1;
	for (uint32_t i = 0; i < h.nargv; i++) {
		if (p >= end)
			child_fail("assignment", EINVAL);
		a->argv[i] = p;
		p += strlen(p) + 1;
	}
	a->argv[h.nargv] = NULL;
	for (uint32_t i = 0; i < h.nenv; i++) {
		if (p >= end)
			child_fail("assignment", EINVAL);
		assign_env[i] = p;
		p += strlen(p) + 1;
	}
	assign_env[h.nenv] = NULL;
	a->env = assign_env;
	a->tmp_bytes = h.tmp_bytes;
	a->host_uid = h.host_uid;
	a->flags = h.flags;
	a->code_fd = fds[3];
	a->netns_fd = (h.flags & ASSIGN_NETNS) ? fds[4] : -1;
	a->run_fd = (h.flags & ASSIGN_RUN) ? fds[want - 1] : -1;
}

/* The network part of the assignment: join the tenant's namespace, or
 * make a private one, or (host network) stay. */
static void
init_network(const struct assignment *a)
{
	int r;

	if (a->netns_fd >= 0) {
		if (setns(a->netns_fd, CLONE_NEWNET) < 0)
			child_fail("joining the network namespace", errno);
		close(a->netns_fd);
	} else if (!(a->flags & ASSIGN_NET_HOST)) {
		if (unshare(CLONE_NEWNET) < 0)
			child_fail("network namespace", errno);
		if ((r = sb_net_lo_up()) < 0)
			child_fail("loopback", -r);
	}
}

static int
write_self(const char *file, const char *text)
{
	char path[64];

	(void)str_printf(path, sizeof(path), "/proc/self/%s", file);
	return write_file_str(path, text, 0);
}

/*
 * Become SB_INNER_ID of a new user namespace, mapped to the tenant's host
 * uid and gid alone.  The init first takes that uid and gid itself,
 * keeping its capabilities for the unshare (hosts may allow new user
 * namespaces to privileged processes only), so that it owns the new
 * namespace and may write the one-line maps of its own ids: no process
 * outside has to do it.
 * INVARIANT: setgroups is denied before gid_map; only SB_INNER_ID is
 * mapped, to host_uid; after this no capability of the initial user
 * namespace is left.
 */
static void
init_identity(const struct assignment *a)
{
	uid_t id = a->host_uid;
	char map[64];
	cap_t caps;
	int r;

	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		child_fail("keep capabilities", errno);
	if (setresgid(id, id, id) < 0)
		child_fail("setresgid", errno);
	if (setresuid(id, id, id) < 0)
		child_fail("setresuid", errno);
	/* The uid change emptied the effective set: raise it again. */
	caps = cap_get_proc();
	r = caps ? cap_fill(caps, CAP_EFFECTIVE, CAP_PERMITTED) : -1;
	if (r == 0)
		r = cap_set_proc(caps);
	cap_free(caps);
	if (r < 0)
		child_fail("capabilities for the user namespace", errno);
	if (unshare(CLONE_NEWUSER) < 0)
		child_fail("user namespace", errno);
	/* The uid change made us undumpable, which hands /proc/self to
	 * root; the map files must be ours while we write them. */
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
		child_fail("dumpable", errno);
	(void)str_printf(map, sizeof(map), "%u %u 1\n", SB_INNER_ID, (unsigned)id);
	if ((r = write_self("setgroups", "deny")) < 0 || (r = write_self("gid_map", map)) < 0 ||
	    (r = write_self("uid_map", map)) < 0)
		child_fail("uid and gid maps", -r);
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		child_fail("dumpable", errno);
}

/*
 * The init's last duty: wait for the handler, then kill and reap whatever
 * it left in the pid namespace, and only then report the handler's wait
 * status.  INVARIANT: once the status is on the sync socket, no process of
 * the sandbox but this init is left, so nothing writes the output any more
 * and the worker may answer before the namespaces are torn down.
 */
static void __attribute__((noreturn)) init_reap(pid_t handler, int sync_fd)
{
	int st, hs = 0;
	pid_t w;

	for (;;) {
		w = waitpid(-1, &st, 0);
		if (w == handler) {
			hs = st;
			break;
		}
		if (w < 0 && errno != EINTR)
			_exit(126);
	}
	for (;;) {
		/* Again each round: a process may fork until it is killed. */
		(void)kill(-1, SIGKILL);
		w = waitpid(-1, &st, 0);
		if (w < 0 && errno == ECHILD)
			break;
		if (w < 0 && errno != EINTR)
			_exit(126);
	}
	(void)write(sync_fd, &hs, sizeof(hs));
	_exit(0);
}

static void __attribute__((noreturn)) init_main(const struct sb_spec *sp, int sync_fd)
{
	static const int lims[][2] = { { RLIMIT_NOFILE, 1024 },
				       { RLIMIT_CORE, 0 },
				       { RLIMIT_MEMLOCK, 64 * 1024 },
				       { RLIMIT_MSGQUEUE, 0 },
				       { RLIMIT_RTPRIO, 0 } };
	struct sb_spec s = *sp;
	struct assignment a;
	char path[4200];
	const char *what = NULL, *argv0[2];
	struct rlimit rl;
	struct pollfd pfd;
	sigset_t none;
	pid_t handler;
	int r;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* A worker that dies before this line closes the sync socket, which
	 * ends us at the first read. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		_exit(127);
	/* Nothing of the caller's (its sockets, its epoll) goes further. */
	if (close_fds_except(&sync_fd, 1) < 0)
		_exit(127);

	/* Ahead of time: everything tenant-independent. */
	if (sethostname("faasd", 5) < 0)
		child_fail("hostname", errno);
	r = sb_root_build(&s, &what);
	if (r < 0)
		child_fail(what, -r);
	if (write(sync_fd, "r", 1) != 1)
		_exit(127);

	/* The assignment. */
	init_receive(sync_fd, &a);
	init_network(&a);
	/* Inside the instance cgroup since birth: root a cgroup namespace. */
	if (unshare(CLONE_NEWCGROUP) < 0)
		child_fail("cgroup namespace", errno);
	r = sb_root_assign(a.code_fd, a.run_fd, a.tmp_bytes, a.resolv, &what);
	if (r < 0)
		child_fail(what, -r);
	close(a.code_fd);
	if (a.run_fd >= 0)
		close(a.run_fd);
	/* INVARIANT: the inner identity, then every capability, or no exec. */
	init_identity(&a);
	for (size_t i = 0; i < ARRAY_SIZE(lims); i++) {
		rl.rlim_cur = rl.rlim_max = (rlim_t)lims[i][1];
		if (setrlimit(lims[i][0], &rl) < 0)
			child_fail("rlimits", errno);
	}
	if (setsid() < 0)
		child_fail("setsid", errno);
	if ((r = sb_caps_drop_all()) < 0)
		child_fail("dropping capabilities", -r);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fail("no_new_privs", errno);
	/* The uid change cleared the death signal: set it again. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		child_fail("parent-death signal", errno);
	/* getppid() is 0 across the pid namespace: ask the socket instead.
	 * The worker keeps its end open until the instance ends. */
	pfd = (struct pollfd){ .fd = sync_fd, .events = POLLIN };
	if (poll(&pfd, 1, 0) != 0)
		_exit(127);
	if (syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) < 0)
		child_fail("close_range", errno);
	if (chdir("/var/task") < 0)
		child_fail("/var/task", errno);
	/* A runtime's interpreter is named by the worker with an absolute
	 * path; a handler from the gateway is relative to the code. */
	if (str_printf(path, sizeof(path), "%s%s", a.handler[0] == '/' ? "" : "/var/task/",
		       a.handler) < 0)
		child_fail("handler path", ENAMETOOLONG);
	argv0[0] = path;
	argv0[1] = NULL;
	if (a.argv[0])
		s.argv = a.argv;
	if ((r = sb_seccomp_load(s.filter)) < 0)
		child_fail("seccomp", -r);
	/* posix_spawn shares our memory until the exec (CLONE_VM|CLONE_VFORK):
	 * the init's copy of the worker's address space is not duplicated
	 * only to be thrown away.  Its clone3 attempt meets ENOSYS from the
	 * filter and it falls back to clone, which the filter allows. */
	r = posix_spawn(&handler, path, NULL, NULL, (char *const *)(s.argv ? s.argv : argv0),
			(char *const *)a.env);
	if (r != 0) {
		int st = W_EXITCODE(127, 0); /* as a shell reports it */

		dprintf(STDERR_FILENO, "faasd: cannot start handler '%s': %s\n", a.handler,
			r == ENOENT   ? "no such file in the code"
			: r == EACCES ? "not executable (chmod +x, or a #! line)"
				      : strerror(r));
		(void)write(sync_fd, &st, sizeof(st));
		_exit(127);
	}
	close(0);
	close(1);
	close(2);
	init_reap(handler, sync_fd);
}

void
sb_blank_discard(struct sb_blank *b)
{
	if (b->pidfd >= 0) {
		syscall(SYS_pidfd_send_signal, b->pidfd, SIGKILL, NULL, 0);
		waitpid(b->pid, NULL, 0); /* ECHILD when we are not its parent */
		close(b->pidfd);
	}
	if (b->sync_fd >= 0)
		close(b->sync_fd);
	b->pidfd = b->sync_fd = -1;
}

/* Wait for the init's "ready": its root is built. */
static int
wait_ready(int sync_fd)
{
	struct pollfd pfd = { .fd = sync_fd, .events = POLLIN };
	char c;
	int r;

	do
		r = poll(&pfd, 1, READY_MS);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return -ETIMEDOUT;
	if (r < 0)
		return -errno;
	if (recv(sync_fd, &c, 1, MSG_DONTWAIT) != 1 || c != 'r')
		return -EIO; /* it ended: the reason is in the caller's log */
	return 0;
}

int
sb_prepare(const struct sb_spec *s, struct sb_blank *b)
{
	struct clone_args a = { 0 };
	int sv[2], pidfd = -1, cgfd = -1, r;
	pid_t pid;

	b->pidfd = b->sync_fd = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	a.flags = CLONE_PIDFD | CLONE_CLEAR_SIGHAND | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC |
		  CLONE_NEWUTS;
	if (s->clone_parent)
		a.flags |= CLONE_PARENT;
	if (s->cg->mode == SB_CG_V2) {
		cgfd = sb_cgroup_open(s->cg, s->cg_inst);
		if (cgfd >= 0) {
			a.flags |= CLONE_INTO_CGROUP;
			a.cgroup = (uint64_t)cgfd;
		}
	}
	a.pidfd = (uint64_t)(uintptr_t)&pidfd;
	/* With CLONE_PARENT the child inherits our own exit signal (SIGCHLD,
	 * as we were forked); clone3 insists on 0 here then. */
	a.exit_signal = s->clone_parent ? 0 : SIGCHLD;
	pid = (pid_t)syscall(SYS_clone3, &a, sizeof(a));
	if (pid < 0 && (a.flags & CLONE_INTO_CGROUP)) {
		/* Kernels or setups that refuse CLONE_INTO_CGROUP: join later. */
		a.flags &= ~(uint64_t)CLONE_INTO_CGROUP;
		a.cgroup = 0;
		pid = (pid_t)syscall(SYS_clone3, &a, sizeof(a));
	}
	if (cgfd >= 0)
		close(cgfd);
	if (pid < 0) {
		r = -errno;
		close(sv[0]);
		close(sv[1]);
		return r;
	}
	if (pid == 0) {
		close(sv[0]);
		init_main(s, sv[1]);
	}
	close(sv[1]);
	b->pid = pid;
	b->pidfd = pidfd;
	b->sync_fd = sv[0];
	(void)str_copy(b->cg_inst, sizeof(b->cg_inst), s->cg_inst);
	/* The init builds its root meanwhile; it makes its cgroup namespace
	 * and starts the handler only at the assignment, after this. */
	r = 0;
	if (!(a.flags & CLONE_INTO_CGROUP))
		r = sb_cgroup_attach(s->cg, s->cg_inst, pid);
	if (r == 0)
		r = wait_ready(b->sync_fd);
	if (r < 0)
		sb_blank_discard(b);
	return r;
}

int
sb_start(struct sb_blank *b, const struct sb_spec *s)
{
	static char buf[ASSIGN_MAX];
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(6 * sizeof(int))];
	} cbuf;
	struct assign_hdr h = { .tmp_bytes = s->tmp_bytes, .host_uid = (uint32_t)s->host_uid };
	struct iovec iov = { buf, 0 };
	int fds[6] = { s->stdin_fd, s->stdout_fd, s->stderr_fd, -1, s->netns_fd, -1 };
	const char *parts[2] = { s->handler, s->resolv ? s->resolv : "" };
	size_t nfds = 4, off = sizeof(h);
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.b };
	struct cmsghdr *c;
	int r;

	if (s->net_host)
		h.flags |= ASSIGN_NET_HOST;
	else if (s->netns_fd >= 0) {
		h.flags |= ASSIGN_NETNS;
		nfds = 5;
	}
	if (s->run_fd >= 0) {
		h.flags |= ASSIGN_RUN;
		fds[nfds++] = s->run_fd;
	}
	/* Serialise handler, resolv.conf and env; refuse what does not fit. */
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
		size_t l = strlen(parts[i]) + 1;

		if (off + l > sizeof(buf))
			return -E2BIG;
		memcpy(buf + off, parts[i], l);
		off += l;
	}
	for (const char *const *e = s->argv; e && *e; e++) {
		size_t l = strlen(*e) + 1;

		if (off + l > sizeof(buf) || h.nargv >= ASSIGN_MAX_ARGV)
			return -E2BIG;
		memcpy(buf + off, *e, l);
		off += l;
		h.nargv++;
	}
	for (const char *const *e = s->env; e && *e; e++) {
		size_t l = strlen(*e) + 1;

		if (off + l > sizeof(buf) || h.nenv >= ASSIGN_MAX_ENV)
			return -E2BIG;
		memcpy(buf + off, *e, l);
		off += l;
		h.nenv++;
	}
	h.len = (uint32_t)(off - sizeof(h));
	memcpy(buf, &h, sizeof(h));
	iov.iov_len = off;

	fds[3] = sb_code_tree_open(s->code_dir);
	if (fds[3] < 0)
		return fds[3];
	memset(&cbuf, 0, sizeof(cbuf));
	mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
	memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	r = sendmsg(b->sync_fd, &mh, MSG_NOSIGNAL) == (ssize_t)off ? 0 : -errno;
	close(fds[3]);
	return r;
}

int
sb_spawn(const struct sb_spec *s, pid_t *pid_out, int *pidfd_out, int *sync_out)
{
	struct sb_blank b = { .pidfd = -1, .sync_fd = -1 };
	int r = sb_prepare(s, &b);

	if (r < 0)
		return r;
	r = sb_start(&b, s);
	if (r < 0) {
		sb_blank_discard(&b);
		return r;
	}
	*pid_out = b.pid;
	*pidfd_out = b.pidfd;
	*sync_out = b.sync_fd;
	return 0;
}
