/*
 * sb_spawn.c - launch one handler in a fresh sandbox (SPEC §3), in the
 * order nsjail, bubblewrap and crun converge on:
 *
 *   worker: clone3(new user, pid, mount, ipc, uts [, net], pidfd
 *           [, into the v2 cgroup]) -> setgroups "deny", gid_map, uid_map
 *           (SB_INNER_ID -> the tenant's host uid, nothing else mapped)
 *           -> v1: join the instance cgroups -> "go" on the sync socket
 *   child:  wait for "go" -> stdio -> unshare the cgroup namespace (now
 *           rooted at the instance) -> setresgid, setresuid to the mapped
 *           inner id -> root file system and pivot_root -> hostname,
 *           loopback up -> rlimits -> setsid -> drop every capability
 *           (the bounding set included) -> no_new_privs ->
 *           parent-death signal (after the last credential change) ->
 *           stray fds close-on-exec -> seccomp (last) -> execve
 *
 * The child stays pid 1 of its pid namespace as a tiny init: it forks the
 * handler, reaps, and sends the handler's wait status over the sync socket.
 * When it exits, or is killed on a timeout, the kernel kills everything else
 * in the sandbox, so nothing of an instance outlives it.  The worker is single-threaded, so the child may use
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

static void __attribute__((noreturn)) child_fail(const char *what, int err)
{
	dprintf(STDERR_FILENO, "faasd: sandbox setup failed at %s: %s\n", what, strerror(err));
	_exit(127);
}

static void __attribute__((noreturn)) child(const struct sb_spec *s, int sync_fd)
{
	static const int lims[][2] = { { RLIMIT_NOFILE, 1024 },
				       { RLIMIT_CORE, 0 },
				       { RLIMIT_MEMLOCK, 64 * 1024 },
				       { RLIMIT_MSGQUEUE, 0 },
				       { RLIMIT_RTPRIO, 0 } };
	char path[4200];
	const char *what = NULL, *argv0[2];
	struct rlimit rl;
	struct pollfd pfd;
	sigset_t none;
	pid_t handler;
	char go;
	int r;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (read(sync_fd, &go, 1) != 1)
		_exit(127); /* the worker gave up on us */
	if (dup2(s->stdin_fd, 0) < 0 || dup2(s->stdout_fd, 1) < 0 || dup2(s->stderr_fd, 2) < 0)
		_exit(127);
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
	r = sb_child_setup_root(s, &what);
	if (r < 0)
		child_fail(what, -r);
	if (sethostname("faasd", 5) < 0)
		child_fail("hostname", errno);
	if (!s->net_host && (r = sb_net_lo_up()) < 0)
		child_fail("loopback", -r);
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
	if (str_printf(path, sizeof(path), "/var/task/%s", s->handler) < 0)
		child_fail("handler path", ENAMETOOLONG);
	argv0[0] = path;
	argv0[1] = NULL;
	if ((r = sb_seccomp_load(s->filter)) < 0)
		child_fail("seccomp", -r);
	/* A tiny init stays pid 1: it reaps orphans, lets the handler have
	 * ordinary signal semantics (pid 1 ignores signals it has no handler
	 * for), and reports the handler's wait status to the worker.  When it
	 * exits, the kernel kills whatever is left in the namespace. */
	handler = fork();
	if (handler < 0)
		child_fail("fork", errno);
	if (handler == 0) {
		execve(s->argv ? s->argv[0] : path, (char *const *)(s->argv ? s->argv : argv0),
		       (char *const *)s->env);
		dprintf(STDERR_FILENO, "faasd: cannot start handler '%s': %s\n", s->handler,
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

static int
write_proc(pid_t pid, const char *file, const char *text)
{
	char path[64];
	int fd, r = 0;

	(void)str_printf(path, sizeof(path), "/proc/%d/%s", pid, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) < 0)
		r = -errno;
	close(fd);
	return r;
}

int
sb_spawn(const struct sb_spec *s, pid_t *pid_out, int *pidfd_out, int *sync_out)
{
	struct clone_args a = { 0 };
	char map[64];
	int sv[2], pidfd = -1, cgfd = -1, r;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	a.flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS |
		  CLONE_PIDFD | CLONE_CLEAR_SIGHAND;
	if (!s->net_host)
		a.flags |= CLONE_NEWNET;
	if (s->cg->mode == SB_CG_V2) {
		cgfd = sb_cgroup_open(s->cg, s->cg_inst);
		if (cgfd >= 0) {
			a.flags |= CLONE_INTO_CGROUP;
			a.cgroup = (uint64_t)cgfd;
		}
	}
	a.pidfd = (uint64_t)(uintptr_t)&pidfd;
	a.exit_signal = SIGCHLD;
	pid = (pid_t)syscall(SYS_clone3, &a, sizeof(a));
	if (pid < 0 && (a.flags & CLONE_INTO_CGROUP)) {
		/* Kernels or setups that refuse CLONE_INTO_CGROUP: join later. */
		a.flags &= ~(uint64_t)CLONE_INTO_CGROUP;
		a.cgroup = 0;
		pid = (pid_t)syscall(SYS_clone3, &a, sizeof(a));
	}
	if (pid < 0) {
		r = -errno;
		goto fail_early;
	}
	if (pid == 0) {
		close(sv[0]);
		child(s, sv[1]);
	}
	close(sv[1]);
	sv[1] = -1;
	/* INVARIANT: only SB_INNER_ID is mapped, to this tenant's uid. */
	(void)str_printf(map, sizeof(map), "%u %u 1\n", SB_INNER_ID, (unsigned)s->host_uid);
	r = write_proc(pid, "setgroups", "deny");
	if (r == 0)
		r = write_proc(pid, "gid_map", map);
	if (r == 0)
		r = write_proc(pid, "uid_map", map);
	if (r == 0 && !(a.flags & CLONE_INTO_CGROUP))
		r = sb_cgroup_attach(s->cg, s->cg_inst, pid);
	if (r == 0 && write(sv[0], "g", 1) != 1)
		r = -errno;
	if (r < 0) {
		syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
		waitpid(pid, NULL, 0);
		close(pidfd);
		goto fail_early;
	}
	if (cgfd >= 0)
		close(cgfd);
	*pid_out = pid;
	*pidfd_out = pidfd;
	*sync_out = sv[0];
	return 0;
fail_early:
	if (cgfd >= 0)
		close(cgfd);
	close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	return r;
}
