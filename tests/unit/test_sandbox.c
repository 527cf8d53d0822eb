/*
 * Unit tests of the sandbox library (worker/sandbox/) on the real kernel:
 * the seccomp policy (EPERM for denied calls, ENOSYS for unknown ones,
 * allowed calls working), cgroup limit files for v1 and v2 layouts (v2
 * checked against a directory tree that mimics it), and a full sb_spawn.
 * Needs root; skips with a reason otherwise.
 */
#include <poll.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sb.h"
#include "tap.h"
#include "util.h"

/* Run fn in a child under the filter; the child exits with errno of fn. */
static int
errno_under_filter(const struct sb_filter *f, long (*fn)(void))
{
	int status;
	pid_t p = fork();

	if (p == 0) {
		long r;

		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		if (sb_seccomp_load(f) < 0)
			_exit(250);
		errno = 0;
		r = fn();
		_exit(r < 0 ? errno : 0);
	}
	waitpid(p, &status, 0);
	if (WIFSIGNALED(status))
		return -WTERMSIG(status);
	return WEXITSTATUS(status);
}

static long
do_mount(void)
{
	return mount("none", "/mnt", "tmpfs", 0, NULL);
}
static long
do_unshare(void)
{
	return unshare(CLONE_NEWUSER);
}
static long
do_ptrace(void)
{
	return ptrace(PTRACE_TRACEME, 0, NULL, NULL);
}
static long
do_bpf(void)
{
	return syscall(SYS_bpf, 0, NULL, 0);
}
static long
do_clone_ns(void)
{
	return syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, NULL, NULL, NULL, 0);
}
static long
do_clone3(void)
{
	return syscall(SYS_clone3, NULL, 0);
}
static long
do_io_uring(void)
{
	return syscall(SYS_io_uring_setup, 1, NULL);
}
static long
do_unknown(void)
{
	return syscall(1000); /* no such syscall */
}
static long
do_packet(void)
{
	return socket(AF_PACKET, SOCK_RAW, 0);
}
static long
do_tiocsti(void)
{
	/* Bad pointer: an allowed ioctl fails with EFAULT/ENOTTY, a filtered
	 * one with EPERM before the kernel looks at anything. */
	return syscall(SYS_ioctl, 0, 0x100000000ul | 0x5412, (void *)1);
}
static long
do_getpid(void)
{
	return getpid() > 0 ? 0 : -1;
}
static long
do_socket_inet(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	return fd < 0 ? -1 : (close(fd), 0);
}
static long
do_fork(void)
{
	pid_t p = fork();

	if (p == 0)
		_exit(0);
	return p < 0 ? -1 : (waitpid(p, NULL, 0), 0);
}
static long
do_x32(void)
{
	return syscall(0x40000000 | 39); /* getpid through the x32 ABI */
}

static void
test_seccomp(void)
{
	struct sb_filter f;

	is_int(sb_seccomp_build(&f), 0, "seccomp policy builds");
	ok(f.len > 50, "policy has %u BPF instructions", f.len);
	is_int(errno_under_filter(&f, do_getpid), 0, "getpid allowed");
	is_int(errno_under_filter(&f, do_socket_inet), 0, "AF_INET socket allowed");
	is_int(errno_under_filter(&f, do_fork), 0, "fork allowed");
	is_int(errno_under_filter(&f, do_mount), EPERM, "mount -> EPERM");
	is_int(errno_under_filter(&f, do_unshare), EPERM, "unshare -> EPERM");
	is_int(errno_under_filter(&f, do_ptrace), EPERM, "ptrace -> EPERM");
	is_int(errno_under_filter(&f, do_bpf), EPERM, "bpf -> EPERM");
	is_int(errno_under_filter(&f, do_clone_ns), EPERM, "clone(CLONE_NEWNET) -> EPERM");
	is_int(errno_under_filter(&f, do_clone3), ENOSYS, "clone3 -> ENOSYS (libc falls back)");
	is_int(errno_under_filter(&f, do_io_uring), EPERM, "io_uring_setup -> EPERM");
	is_int(errno_under_filter(&f, do_unknown), ENOSYS, "unknown syscall -> ENOSYS");
	is_int(errno_under_filter(&f, do_packet), EAFNOSUPPORT, "AF_PACKET -> EAFNOSUPPORT");
	is_int(errno_under_filter(&f, do_tiocsti), EPERM, "TIOCSTI with high bits set -> EPERM");
	is_int(errno_under_filter(&f, do_x32), -SIGSYS, "x32 ABI kills the process");
	sb_seccomp_free(&f);
}

static char *
slurp(const char *dir, const char *inst, const char *file)
{
	char p[PATH_MAX + 128];
	char *t = NULL;

	snprintf(p, sizeof(p), "%s/%s/%s", dir, inst, file);
	if (read_file_bounded(p, 4096, &t, NULL) < 0)
		return strdup("(missing)");
	return t;
}

static void
test_cgroup_files(void)
{
	char base[] = "/tmp/faasd-cg-XXXXXX", *t;
	struct sb_cgroups cg = { .mimic = true };
	struct sb_limits l = { .memory_bytes = 128u << 20, .pids = 64, .cpu_millicores = 500 };
	struct sb_cg_stats st;
	char p[PATH_MAX + 64];

	mkdtemp(base);
	cg.mode = SB_CG_V2;
	snprintf(cg.v2, sizeof(cg.v2), "%s/sandboxes", base);
	mkdir(cg.v2, 0755);
	is_int(sb_cgroup_create(&cg, "i1", &l), 0, "v2 instance created");
	is_str((t = slurp(cg.v2, "i1", "memory.max")), "134217728", "v2 memory.max");
	free(t);
	is_str((t = slurp(cg.v2, "i1", "memory.swap.max")), "0", "v2 no swap");
	free(t);
	is_str((t = slurp(cg.v2, "i1", "memory.oom.group")), "1", "v2 oom.group");
	free(t);
	is_str((t = slurp(cg.v2, "i1", "pids.max")), "64", "v2 pids.max");
	free(t);
	is_str((t = slurp(cg.v2, "i1", "cpu.max")), "50000 100000", "v2 cpu.max (half a CPU)");
	free(t);
	snprintf(p, sizeof(p), "%s/i1/memory.events", cg.v2);
	{
		int fd = open(p, O_WRONLY | O_CREAT, 0644);

		if (write(fd, "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n", 35) < 0)
			abort();
		close(fd);
	}
	is_int(sb_cgroup_stats(&cg, "i1", &st), 0, "v2 stats");
	is_int(st.oom_kills, 1, "v2 oom_kill read from memory.events");
	is_int(sb_cgroup_remove(&cg, "i1"), 0, "v2 instance removed");

	cg.mode = SB_CG_V1;
	cg.memsw = true;
	snprintf(cg.v1_memory, sizeof(cg.v1_memory), "%s/memory", base);
	snprintf(cg.v1_pids, sizeof(cg.v1_pids), "%s/pids", base);
	snprintf(cg.v1_cpu, sizeof(cg.v1_cpu), "%s/cpu", base);
	mkdir(cg.v1_memory, 0755);
	mkdir(cg.v1_pids, 0755);
	mkdir(cg.v1_cpu, 0755);
	is_int(sb_cgroup_create(&cg, "i2", &l), 0, "v1 instance created");
	is_str((t = slurp(cg.v1_memory, "i2", "memory.limit_in_bytes")), "134217728", "v1 limit");
	free(t);
	is_str((t = slurp(cg.v1_memory, "i2", "memory.memsw.limit_in_bytes")), "134217728",
	       "v1 memsw = limit (no swap)");
	free(t);
	is_str((t = slurp(cg.v1_pids, "i2", "pids.max")), "64", "v1 pids.max");
	free(t);
	is_str((t = slurp(cg.v1_cpu, "i2", "cpu.cfs_period_us")), "100000", "v1 period");
	free(t);
	is_str((t = slurp(cg.v1_cpu, "i2", "cpu.cfs_quota_us")), "50000", "v1 quota");
	free(t);
	is_int(sb_cgroup_remove(&cg, "i2"), 0, "v1 instance removed");
	{
		char *self;
		struct sb_cgroups d;

		read_file_bounded("/proc/self/cgroup", 65536, &self, NULL);
		is_int(sb_cgroup_detect("/sys/fs/cgroup", self, "faasd", &d), 0,
		       "this host's cgroups are detected");
		ok(d.mode == SB_CG_V1 || d.mode == SB_CG_V2, "mode %s",
		   d.mode == SB_CG_V2 ? "v2" : "v1");
		free(self);
	}
}

static char *
read_memfd(int fd)
{
	struct stat st;
	char *b;

	fstat(fd, &st);
	b = calloc(1, (size_t)st.st_size + 1);
	if (pread(fd, b, (size_t)st.st_size, 0) < 0)
		abort();
	return b;
}

static void
test_spawn(void)
{
	char code[] = "/tmp/faasd-code-XXXXXX", root[] = "/tmp/faasd-root-XXXXXX", p[256];
	const char *env[] = { "PATH=/usr/bin:/bin", NULL };
	struct sb_filter f;
	struct sb_cgroups cg;
	struct sb_limits l = { .memory_bytes = 64u << 20, .pids = 32, .cpu_millicores = 1000 };
	char *self, *out, *err;
	int in = memfd_create("in", MFD_CLOEXEC), o = memfd_create("o", MFD_CLOEXEC),
	    e = memfd_create("e", MFD_CLOEXEC), pidfd, sync, status, fd;
	pid_t pid;
	struct sb_spec s;

	mkdtemp(code);
	mkdtemp(root);
	chmod(code, 0755);
	chmod(root, 0755);
	snprintf(p, sizeof(p), "%s/h.sh", code);
	fd = open(p, O_WRONLY | O_CREAT, 0755);
	dprintf(fd, "#!/bin/sh\nid -u; hostname; echo $$; ls /; cat /proc/self/status | grep "
		    "-E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):'; cat /etc/shadow 2>&1; "
		    "touch /usr/x 2>&1; echo data > /tmp/f && cat /tmp/f\n");
	close(fd);
	sb_seccomp_build(&f);
	read_file_bounded("/proc/self/cgroup", 65536, &self, NULL);
	sb_cgroup_detect("/sys/fs/cgroup", self, "faasd-unit", &cg);
	sb_cgroup_setup(&cg);
	is_int(sb_cgroup_create(&cg, "t1", &l), 0, "instance cgroup");
	s = (struct sb_spec){ .root_dir = root,
			      .code_dir = code,
			      .handler = "h.sh",
			      .env = env,
			      .host_uid = 299999,
			      .stdin_fd = in,
			      .stdout_fd = o,
			      .stderr_fd = e,
			      .tmp_bytes = 1 << 20,
			      .filter = &f,
			      .cg = &cg,
			      .cg_inst = "t1",
			      .etc_passwd = "sandbox:x:1000:1000::/tmp:/bin/sh\n",
			      .etc_group = "sandbox:x:1000:\n",
			      .etc_hosts = "127.0.0.1 localhost\n",
			      .etc_resolv = "",
			      .netns_fd = -1,
			      .run_fd = -1 };
	is_int(sb_spawn(&s, &pid, &pidfd, &sync), 0, "sb_spawn");
	/* The answer may come before the sandbox is torn down: the init
	 * reports only once nothing of the handler's is left. */
	{
		struct pollfd pf = { .fd = sync, .events = POLLIN };

		is_int(poll(&pf, 1, 10000), 1, "init reports on the sync socket");
	}
	waitpid(pid, &status, 0);
	out = read_memfd(o);
	err = read_memfd(e);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "handler exited 0 (stderr: %s)", err);
	ok(strncmp(out, "1000\nfaasd\n2\n", 13) == 0,
	   "uid 1000, hostname faasd, pid 2 (the sandbox's init is pid 1)");
	{
		int hs = -1;

		is_int(recv(sync, &hs, sizeof(hs), MSG_DONTWAIT), sizeof(hs),
		       "init reported the handler's status");
		ok(WIFEXITED(hs) && WEXITSTATUS(hs) == 0, "handler status is exit 0");
	}
	ok(strstr(out, "CapEff:\t0000000000000000") && strstr(out, "CapBnd:\t0000000000000000"),
	   "no capabilities at all");
	ok(strstr(out, "NoNewPrivs:\t1") && strstr(out, "Seccomp:\t2"), "no_new_privs and seccomp");
	ok(!strstr(out, "root\n") && !strstr(out, "home") && strstr(out, "usr\nvar\n"),
	   "fresh root shows only the sandbox's own tree");
	ok(strstr(out, "No such file") != NULL, "no /etc/shadow in the sandbox");
	ok(strstr(out, "Read-only") != NULL, "/usr is read-only");
	ok(strstr(out, "data\n") != NULL, "/tmp is writable");
	printf("# output:\n# %s\n", out);
	free(out);
	free(err);
	close(pidfd);
	close(sync);

	/* A handler that cannot be started: the reason reaches its stderr. */
	s.handler = "nope";
	ftruncate(e, 0);
	lseek(e, 0, SEEK_SET);
	is_int(sb_spawn(&s, &pid, &pidfd, &sync), 0, "sb_spawn of a missing handler");
	waitpid(pid, &status, 0);
	err = read_memfd(e);
	{
		int hs = -1;

		is_int(recv(sync, &hs, sizeof(hs), MSG_DONTWAIT), sizeof(hs), "status reported");
		ok(WIFEXITED(hs) && WEXITSTATUS(hs) == 127, "exit 127 for a missing handler");
	}
	ok(strstr(err, "cannot start handler 'nope': no such file in the code") != NULL,
	   "stderr names the missing handler (%s)", err);
	free(err);
	close(pidfd);
	close(sync);
	is_int(sb_cgroup_remove(&cg, "t1"), 0, "instance cgroup removed");
	sb_seccomp_free(&f);
	free(self);
}

/* Each state directory gets its own cgroup subtree name, the same on
 * every start and for every path that leads to the directory. */
static void
test_cgroup_name(void)
{
	char dir[] = "/tmp/faasd-cgname-XXXXXX", other[64], link[64], a[32], b[32], c[32];
	bool hex = true;

	if (!mkdtemp(dir))
		return;
	snprintf(other, sizeof(other), "%s/other", dir);
	snprintf(link, sizeof(link), "%s/link", dir);
	mkdir(other, 0755);
	ok(symlink(dir, link) == 0, "a symlink to the state directory");
	sb_cgroup_name(dir, a, sizeof(a));
	sb_cgroup_name(link, b, sizeof(b));
	sb_cgroup_name(other, c, sizeof(c));
	ok(strlen(a) == 14 && strncmp(a, "faasd-", 6) == 0, "name %s: faasd- and 8 digits", a);
	for (const char *p = a + 6; *p; p++)
		hex &= (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f');
	ok(hex, "…hex digits");
	is_str(b, a, "the same through a symlink");
	ok(strcmp(a, c) != 0, "another directory, another name");
	sb_cgroup_name(dir, c, sizeof(c));
	is_str(c, a, "the same the next time");
	unlink(link);
	rmdir(other);
	rmdir(dir);
}

int
main(void)
{
	if (geteuid() != 0) {
		printf("1..0 # SKIP needs root (namespaces, cgroups)\n");
		return 0;
	}
	test_seccomp();
	test_cgroup_files();
	test_cgroup_name();
	test_spawn();
	return done();
}
