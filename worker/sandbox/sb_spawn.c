/*
 * sb_spawn.c - launch handlers in fresh sandboxes (SPEC §3), in two phases
 * so that the expensive, tenant-independent part can happen ahead of time:
 *
 * sb_prepare (a "blank" sandbox, off the request path):
 *   worker: clone3(new user, pid, mount, ipc, uts [, net], pidfd
 *           [, into the v2 cgroup]) -> v1: join the instance cgroups
 *   child:  parent-death signal -> loopback up, hostname -> wait for an
 *           assignment on the sync socket
 *
 * sb_start (the assignment, on the request path):
 *   worker: setgroups "deny", gid_map, uid_map (SB_INNER_ID -> the
 *           tenant's host uid, nothing else mapped) -> send code dir,
 *           handler, env and the three stdio fds over the sync socket
 *   child:  stdio -> unshare the cgroup namespace (rooted at the instance)
 *           -> setresgid, setresuid to the mapped inner id -> root file
 *           system and pivot_root -> rlimits -> setsid -> drop every
 *           capability (bounding set included) -> no_new_privs ->
 *           parent-death signal again (the uid change cleared it) -> stray
 *           fds close-on-exec -> seccomp (last) -> fork: the handler
 *           execs; the child stays pid 1 as a tiny init
 *
 * The init reaps orphans, lets the handler have ordinary signal semantics
 * (pid 1 ignores signals it has no handler for), and sends the handler's
 * wait status over the sync socket.  When it exits, or is killed on a
 * timeout, the kernel kills everything else in the sandbox, so nothing of an
 * instance outlives it.  The worker is single-threaded, so the child may use
 * ordinary libc calls between clone and execve.
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

#include "sb.h"
#include "util.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define ASSIGN_MAX     (160u * 1024u)
#define ASSIGN_MAX_ENV 1024

/* The assignment as it crosses the sync socket: this header, then
 * code_dir, handler and env strings, each NUL-terminated. */
struct assign_hdr {
	uint64_t tmp_bytes;
	uint32_t nenv;
	uint32_t len; /* bytes of strings after the header */
};

static void __attribute__((noreturn)) child_fail(const char *what, int err)
{
	dprintf(STDERR_FILENO, "faasd: sandbox setup failed at %s: %s\n", what, strerror(err));
	_exit(127);
}

/* Receive the assignment; fills s (pointers into buf), dups stdio, and
 * returns the network namespace fd that came with it, or -1. */
static int
child_receive(struct sb_spec *s, int sync_fd, char *buf, const char **env)
{
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(4 * sizeof(int))];
	} cbuf;
	struct iovec iov = { buf, ASSIGN_MAX };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf.b,
			     .msg_controllen = sizeof(cbuf.b) };
	struct cmsghdr *c;
	struct assign_hdr h;
	int fds[4] = { -1, -1, -1, -1 };
	size_t nfds;
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
	if (nfds != 3 && nfds != 4)
		_exit(127);
	memcpy(fds, CMSG_DATA(c), nfds * sizeof(int));
	memcpy(&h, buf, sizeof(h));
	if (h.len != (size_t)n - sizeof(h) || h.nenv > ASSIGN_MAX_ENV || h.len == 0 ||
	    buf[n - 1] != 0)
		_exit(127);
	if (dup2(fds[0], 0) < 0 || dup2(fds[1], 1) < 0 || dup2(fds[2], 2) < 0)
		_exit(127);
	p = buf + sizeof(h);
	end = buf + n;
	s->code_dir = p;
	p += strlen(p) + 1;
	if (p >= end)
		child_fail("assignment", EINVAL);
	s->handler = p;
	p += strlen(p) + 1;
	for (uint32_t i = 0; i < h.nenv; i++) {
		if (p >= end)
			child_fail("assignment", EINVAL);
		env[i] = p;
		p += strlen(p) + 1;
	}
	env[h.nenv] = NULL;
	s->env = env;
	s->tmp_bytes = h.tmp_bytes;
	return fds[3];
}

static void __attribute__((noreturn)) sandbox_rest(struct sb_spec *sp, int sync_fd);

static char assign_buf[ASSIGN_MAX];
static const char *assign_env[ASSIGN_MAX_ENV + 1];

static void __attribute__((noreturn)) child(const struct sb_spec *blank, int sync_fd)
{
	struct sb_spec s = *blank;
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Phase 1: what needs no tenant.  Capabilities in the new user
	 * namespace exist before any map is written. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		_exit(127);
	if (!s.net_host && sb_net_lo_up() < 0)
		_exit(127);
	if (sethostname("faasd", 5) < 0)
		_exit(127);

	/* Phase 2: the assignment. */
	(void)child_receive(&s, sync_fd, assign_buf, assign_env);
	sandbox_rest(&s, sync_fd);
}

/* From the cgroup namespace on, common to both kinds of blank: runs as the
 * process that becomes pid 1 of the sandbox. */
static void __attribute__((noreturn)) sandbox_rest(struct sb_spec *sp, int sync_fd)
{
	static const int lims[][2] = { { RLIMIT_NOFILE, 1024 },
				       { RLIMIT_CORE, 0 },
				       { RLIMIT_MEMLOCK, 64 * 1024 },
				       { RLIMIT_MSGQUEUE, 0 },
				       { RLIMIT_RTPRIO, 0 } };
	struct sb_spec s = *sp;
	char path[4200];
	const char *what = NULL, *argv0[2];
	struct rlimit rl;
	struct pollfd pfd;
	pid_t handler;
	int r;

	/* Now inside the instance cgroup: root a cgroup namespace there. */
	if (unshare(CLONE_NEWCGROUP) < 0)
		child_fail("cgroup namespace", errno);
	/* Become the mapped inner user before creating any file: inodes need
	 * a mapped owner.  Host uid 0 is not mapped inside, so this does not
	 * drop our capabilities in the new namespace; they go further down.
	 * INVARIANT: gid, then uid, then every capability, or no exec. */
	if (setresgid(SB_INNER_ID, SB_INNER_ID, SB_INNER_ID) < 0)
		child_fail("setresgid", errno);
	if (setresuid(SB_INNER_ID, SB_INNER_ID, SB_INNER_ID) < 0)
		child_fail("setresuid", errno);
	r = sb_child_setup_root(&s, &what);
	if (r < 0)
		child_fail(what, -r);
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
	if (str_printf(path, sizeof(path), "/var/task/%s", s.handler) < 0)
		child_fail("handler path", ENAMETOOLONG);
	argv0[0] = path;
	argv0[1] = NULL;
	if ((r = sb_seccomp_load(s.filter)) < 0)
		child_fail("seccomp", -r);
	handler = fork();
	if (handler < 0)
		child_fail("fork", errno);
	if (handler == 0) {
		execve(s.argv ? s.argv[0] : path, (char *const *)(s.argv ? s.argv : argv0),
		       (char *const *)s.env);
		dprintf(STDERR_FILENO, "faasd: cannot start handler '%s': %s\n", s.handler,
			errno == ENOENT   ? "no such file in the code"
			: errno == EACCES ? "not executable (chmod +x, or a #! line)"
					  : strerror(errno));
		_exit(127);
	}
	close(0);
	close(1);
	close(2);
	for (;;) {
		int st;
		pid_t w = waitpid(-1, &st, 0);

		if (w == handler) {
			(void)write(sync_fd, &st, sizeof(st));
			_exit(0);
		}
		if (w < 0 && errno != EINTR)
			_exit(126);
	}
}

/*
 * A "late" blank: cloned with no namespace at all (but in its cgroup), so
 * that at assignment it can first join a reused network namespace (which
 * needs CAP_SYS_ADMIN over the initial user namespace, still held here),
 * then create the others.  It stays outside the new pid namespace as a
 * small supervisor: it forks the sandbox's pid 1, waits for it, and exits
 * with it; pid 1 dies with it too (parent-death signal).
 */
static void __attribute__((noreturn)) child_late(const struct sb_spec *blank, int sync_fd)
{
	struct sb_spec s = *blank;
	sigset_t none;
	pid_t init;
	char c;
	int netfd;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		_exit(127);
	netfd = child_receive(&s, sync_fd, assign_buf, assign_env);
	if (netfd >= 0) {
		if (setns(netfd, CLONE_NEWNET) < 0)
			child_fail("joining the network namespace", errno);
		close(netfd);
	} else if (!s.net_host)
		child_fail("network namespace", EINVAL);
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID) < 0)
		child_fail("namespaces", errno);
	/* The worker writes our maps now, then says so. */
	if (write(sync_fd, "u", 1) != 1 || read(sync_fd, &c, 1) != 1 || c != 'm')
		_exit(127);
	if (sethostname("faasd", 5) < 0)
		child_fail("hostname", errno);
	init = fork();
	if (init < 0)
		child_fail("fork", errno);
	if (init == 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
			_exit(127);
		sandbox_rest(&s, sync_fd);
	}
	close(0);
	close(1);
	close(2);
	for (;;) {
		int st;
		pid_t w = waitpid(init, &st, 0);

		if (w == init)
			_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
		if (w < 0 && errno != EINTR)
			_exit(126);
	}
}

static int
write_proc(pid_t pid, const char *file, const char *text)
{
	char path[64];

	(void)str_printf(path, sizeof(path), "/proc/%d/%s", pid, file);
	return write_file_str(path, text, 0);
}

/* INVARIANT: only SB_INNER_ID is mapped, to this tenant's uid; setgroups
 * is denied first.  Written by the worker for the sandbox's user namespace. */
static int
write_maps(pid_t pid, uid_t host_uid)
{
	char map[64];
	int r;

	(void)str_printf(map, sizeof(map), "%u %u 1\n", SB_INNER_ID, (unsigned)host_uid);
	r = write_proc(pid, "setgroups", "deny");
	if (r == 0)
		r = write_proc(pid, "gid_map", map);
	if (r == 0)
		r = write_proc(pid, "uid_map", map);
	return r;
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

int
sb_prepare(const struct sb_spec *s, struct sb_blank *b)
{
	struct clone_args a = { 0 };
	int sv[2], pidfd = -1, cgfd = -1, r;
	pid_t pid;

	b->pidfd = b->sync_fd = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	a.flags = CLONE_PIDFD | CLONE_CLEAR_SIGHAND;
	if (!s->late_ns) {
		a.flags |= CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
		if (!s->net_host)
			a.flags |= CLONE_NEWNET;
	}
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
		if (s->late_ns)
			child_late(s, sv[1]);
		child(s, sv[1]);
	}
	close(sv[1]);
	b->pid = pid;
	b->pidfd = pidfd;
	b->sync_fd = sv[0];
	b->late = s->late_ns;
	(void)str_copy(b->cg_inst, sizeof(b->cg_inst), s->cg_inst);
	if (!(a.flags & CLONE_INTO_CGROUP)) {
		r = sb_cgroup_attach(s->cg, s->cg_inst, pid);
		if (r < 0) {
			sb_blank_discard(b);
			return r;
		}
	}
	return 0;
}

int
sb_start(struct sb_blank *b, const struct sb_spec *s)
{
	static char buf[ASSIGN_MAX];
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(4 * sizeof(int))];
	} cbuf;
	struct assign_hdr h = { .tmp_bytes = s->tmp_bytes };
	struct iovec iov = { buf, 0 };
	int fds[4] = { s->stdin_fd, s->stdout_fd, s->stderr_fd, s->netns_fd };
	size_t nfds = b->late && s->netns_fd >= 0 ? 4 : 3;
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf.b,
			     .msg_controllen = CMSG_SPACE(nfds * sizeof(int)) };
	struct cmsghdr *c;
	size_t off = sizeof(h);
	int r;

	/* Serialise code dir, handler and env; refuse what does not fit. */
	{
		const char *parts[2] = { s->code_dir, s->handler };

		for (size_t i = 0; i < 2; i++) {
			size_t l = strlen(parts[i]) + 1;

			if (off + l > sizeof(buf))
				return -E2BIG;
			memcpy(buf + off, parts[i], l);
			off += l;
		}
		for (const char *const *e = s->env; e && *e; e++) {
			size_t l = strlen(*e) + 1;

			if (off + l > sizeof(buf) || h.nenv >= ASSIGN_MAX_ENV)
				return -E2BIG;
			memcpy(buf + off, *e, l);
			off += l;
			h.nenv++;
		}
	}
	h.len = (uint32_t)(off - sizeof(h));
	memcpy(buf, &h, sizeof(h));
	iov.iov_len = off;
	memset(&cbuf, 0, sizeof(cbuf));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
	memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));

	if (b->late) {
		/* Assignment first; the blank joins its network namespace and
		 * creates the others, then asks for its maps. */
		struct pollfd pfd = { .fd = b->sync_fd, .events = POLLIN };
		char u;

		if (sendmsg(b->sync_fd, &mh, MSG_NOSIGNAL) != (ssize_t)off)
			return -errno;
		r = poll(&pfd, 1, 2000);
		if (r <= 0)
			return r == 0 ? -ETIMEDOUT : -errno;
		if (recv(b->sync_fd, &u, 1, 0) != 1 || u != 'u')
			return -EPROTO;
		r = write_maps(b->pid, s->host_uid);
		if (r == 0 && send(b->sync_fd, "m", 1, MSG_NOSIGNAL) != 1)
			r = -errno;
		return r;
	}
	r = write_maps(b->pid, s->host_uid);
	if (r == 0 && sendmsg(b->sync_fd, &mh, MSG_NOSIGNAL) != (ssize_t)off)
		r = -errno;
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
