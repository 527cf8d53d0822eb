/*
 * spawn.c - start a handler process for the worker.
 *
 * Interim isolation until the sandbox library lands (namespaces, seccomp,
 * cgroups): the handler runs as its tenant's own unprivileged host uid,
 * with no supplementary groups, no_new_privs, a parent-death signal, its own
 * process group (killed as a whole when the invocation ends) and rlimits.
 * INVARIANT: the child never runs tenant code as root: if any step that
 * drops privilege fails, it exits before exec.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util.h"
#include "worker.h"

static void __attribute__((noreturn)) child_fail(const char *what, const char *handler)
{
	int e = errno;

	dprintf(STDERR_FILENO, "faasd: cannot start handler '%s': %s: %s\n", handler, what,
		strerror(e));
	_exit(127);
}

static void __attribute__((noreturn)) child(const struct spawn_req *r, pid_t parent)
{
	struct rlimit rl;
	sigset_t none;
	char path[4200];

	/* Signals back to defaults: the worker blocks SIGCHLD/SIGTERM. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
	if (dup2(r->stdin_fd, 0) < 0 || dup2(r->stdout_fd, 1) < 0 || dup2(r->stderr_fd, 2) < 0)
		_exit(127);
	if (syscall(SYS_close_range, 3u, ~0u, 0u) < 0)
		for (int fd = 3; fd < 65536; fd++)
			close(fd);
	if (setsid() < 0)
		child_fail("setsid", r->handler);
	if (chdir(r->code_dir) < 0)
		child_fail("code directory", r->handler);
	rl = (struct rlimit){ 1024, 1024 };
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		child_fail("RLIMIT_NOFILE", r->handler);
	rl = (struct rlimit){ 0, 0 };
	if (setrlimit(RLIMIT_CORE, &rl) < 0)
		child_fail("RLIMIT_CORE", r->handler);
	rl = (struct rlimit){ r->max_output, r->max_output };
	if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
		child_fail("RLIMIT_FSIZE", r->handler);
	rl = (struct rlimit){ 512, 512 };
	if (setrlimit(RLIMIT_NPROC, &rl) < 0)
		child_fail("RLIMIT_NPROC", r->handler);
	/* INVARIANT: groups, gid, then uid; all three or no exec. */
	if (setgroups(0, NULL) < 0)
		child_fail("setgroups", r->handler);
	if (setresgid(r->uid, r->uid, r->uid) < 0)
		child_fail("setresgid", r->handler);
	if (setresuid(r->uid, r->uid, r->uid) < 0)
		child_fail("setresuid", r->handler);
	if (getuid() == 0 || geteuid() == 0)
		_exit(127);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fail("no_new_privs", r->handler);
	/* Changing credentials cleared the death signal: set it now. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		child_fail("pdeathsig", r->handler);
	if (getppid() != parent)
		_exit(127);
	if (str_printf(path, sizeof(path), "./%s", r->handler) < 0)
		child_fail("path", r->handler);
	execve(path, (char *const[]){ path, NULL }, (char *const *)r->env);
	child_fail(errno == ENOENT   ? "no such file in the code"
		   : errno == EACCES ? "not executable (chmod +x, or a #! line)"
				     : "exec",
		   r->handler);
}

int
spawn_handler(const struct spawn_req *r, pid_t *pid, int *pidfd)
{
	pid_t parent = getpid(), p;
	int fd;

	p = fork();
	if (p < 0)
		return -errno;
	if (p == 0)
		child(r, parent);
	fd = (int)syscall(SYS_pidfd_open, p, 0);
	if (fd < 0) {
		int e = errno;

		kill(p, SIGKILL);
		return -e;
	}
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	*pid = p;
	*pidfd = fd;
	return 0;
}
