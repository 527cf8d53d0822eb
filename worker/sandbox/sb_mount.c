/*
 * sb_mount.c - the sandbox's file system (SPEC §3), built in two steps by
 * the sandbox's init, which runs as root of the initial user namespace in
 * new mount and pid namespaces (see sb_spawn.c):
 *
 * sb_root_build (ahead of time, tenant-independent): a tmpfs root holding
 * read-only binds of the host /usr (with the merged-/usr links), a minimal
 * /etc, a private /proc and a /dev with null, zero, full, random and
 * urandom; then pivot_root and the old root detached.
 *
 * sb_root_assign (at assignment): the version's code, cloned by the worker
 * as a detached read-only tree (sb_code_tree_open), moved to /var/task; a
 * size-limited /tmp; the host's resolv.conf where the tenant has host
 * network; then the root itself made read-only.
 *
 * INVARIANT: nothing of the host is visible but what is bound here, every
 * bind is read-only, nosuid and nodev (recursively), and nothing is mounted
 * below a path whose content the tenant controls.  The mount namespace
 * belongs to the initial user namespace, so the handler, in a user
 * namespace of its own, holds no capability over any of these mounts.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sb.h"
#include "util.h"

/* Read-only, nosuid and nodev on a whole tree: path relative to dfd. */
static int
ro_recursive(int dfd, const char *path, unsigned flags)
{
	struct mount_attr a = { .attr_set =
					MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV };

	if (mount_setattr(dfd, path, flags | AT_RECURSIVE, &a, sizeof(a)) < 0)
		return -errno;
	return 0;
}

static int
bind_ro(const char *src, const char *dst)
{
	if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
		return -errno;
	return ro_recursive(AT_FDCWD, dst, 0);
}

static int
write_text(const char *path, const char *text)
{
	return write_file_str(path, text, O_CREAT | O_TRUNC | O_NOFOLLOW);
}

static int
touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);

	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

/* Recreate host link /name (e.g. /bin -> usr/bin) inside root, if any. */
static int
copy_link(const char *root, const char *name)
{
	char target[256], host[64], dst[PATH_MAX + 64];
	ssize_t n;

	(void)str_printf(host, sizeof(host), "/%s", name);
	n = readlink(host, target, sizeof(target) - 1);
	if (n < 0)
		return errno == ENOENT || errno == EINVAL ? 0 : -errno;
	target[n] = 0;
	(void)str_printf(dst, sizeof(dst), "%s/%s", root, name);
	return symlink(target, dst) < 0 ? -errno : 0;
}

#define STEP(what_, expr)                \
	do {                             \
		int _r = (expr);         \
		if (_r < 0) {            \
			*what = (what_); \
			return _r;       \
		}                        \
	} while (0)
#define SYS(expr) ((expr) < 0 ? -errno : 0)

int
sb_root_build(const struct sb_spec *s, const char **what)
{
	static const char *const links[] = { "bin", "sbin", "lib", "lib32", "lib64", "libx32" };
	static const char *const dirs[] = { "usr", "etc",  "var", "var/task", "var/runtime",
					    "tmp", "proc", "dev", "run" };
	static const char *const devs[] = { "null", "zero", "full", "random", "urandom" };
	static const char *const proc_ro[] = { "sys", "sysrq-trigger", "irq", "bus" };
	static const char *const dev_links[][2] = { { "fd", "/proc/self/fd" },
						    { "stdin", "/proc/self/fd/0" },
						    { "stdout", "/proc/self/fd/1" },
						    { "stderr", "/proc/self/fd/2" } };
	const struct {
		const char *name, *text;
	} etc[] = { { "passwd", s->etc_passwd },
		    { "group", s->etc_group },
		    { "hosts", s->etc_hosts },
		    { "resolv.conf", s->etc_resolv },
		    { "nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n" },
		    { "hostname", "faasd\n" } };
	/* What programs need from the host's /etc: certificates,
	 * alternatives links, the library cache; bound read-only. */
	static const char *const etc_host[] = { "ssl", "alternatives", "ld.so.cache" };
	char p[PATH_MAX + 64];
	const char *root = s->root_dir;

	STEP("private propagation", SYS(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)));
	STEP("root tmpfs", SYS(mount("faasd", root, "tmpfs", MS_NOSUID | MS_NODEV,
				     "size=1m,nr_inodes=256,mode=0755")));
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		(void)str_printf(p, sizeof(p), "%s/%s", root, dirs[i]);
		STEP("skeleton", SYS(mkdir(p, 0755)));
	}
	for (size_t i = 0; i < ARRAY_SIZE(links); i++)
		STEP("usr links", copy_link(root, links[i]));
	(void)str_printf(p, sizeof(p), "%s/usr", root);
	STEP("bind /usr", bind_ro("/usr", p));

	for (size_t i = 0; i < ARRAY_SIZE(etc); i++) {
		(void)str_printf(p, sizeof(p), "%s/etc/%s", root, etc[i].name);
		STEP("/etc files", write_text(p, etc[i].text));
	}
	for (size_t i = 0; i < ARRAY_SIZE(etc_host); i++) {
		char host[64];
		struct stat st;

		(void)str_printf(host, sizeof(host), "/etc/%s", etc_host[i]);
		if (stat(host, &st) < 0)
			continue;
		(void)str_printf(p, sizeof(p), "%s%s", root, host);
		STEP("/etc binds", S_ISDIR(st.st_mode) ? SYS(mkdir(p, 0755)) : touch(p));
		STEP("/etc binds", bind_ro(host, p));
	}

	if (s->runtime_dir) {
		(void)str_printf(p, sizeof(p), "%s/var/runtime", root);
		STEP("bind /var/runtime", bind_ro(s->runtime_dir, p));
	}

	(void)str_printf(p, sizeof(p), "%s/proc", root);
	STEP("/proc", SYS(mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)));
	for (size_t i = 0; i < ARRAY_SIZE(proc_ro); i++) {
		(void)str_printf(p, sizeof(p), "%s/proc/%s", root, proc_ro[i]);
		if (access(p, F_OK) < 0)
			continue;
		STEP("/proc read-only parts", bind_ro(p, p));
	}

	(void)str_printf(p, sizeof(p), "%s/dev", root);
	STEP("/dev", SYS(mount("dev", p, "tmpfs", MS_NOSUID | MS_NOEXEC,
			       "size=16k,nr_inodes=32,mode=0755")));
	for (size_t i = 0; i < ARRAY_SIZE(devs); i++) {
		char host[32];

		(void)str_printf(p, sizeof(p), "%s/dev/%s", root, devs[i]);
		(void)str_printf(host, sizeof(host), "/dev/%s", devs[i]);
		STEP("/dev nodes", touch(p));
		/* The worker may not mknod: bind the host's nodes. */
		STEP("/dev nodes", SYS(mount(host, p, NULL, MS_BIND, NULL)));
	}
	for (size_t i = 0; i < ARRAY_SIZE(dev_links); i++) {
		(void)str_printf(p, sizeof(p), "%s/dev/%s", root, dev_links[i][0]);
		STEP("/dev links", SYS(symlink(dev_links[i][1], p)));
	}
	(void)str_printf(p, sizeof(p), "%s/dev", root);
	STEP("/dev read-only",
	     SYS(mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC,
		       NULL)));

	/* Enter the new root; the old one is detached, not just hidden. */
	STEP("chdir root", SYS(chdir(root)));
	STEP("pivot_root", SYS(syscall(SYS_pivot_root, ".", ".")));
	STEP("detach old root", SYS(umount2(".", MNT_DETACH)));
	STEP("chdir /", SYS(chdir("/")));
	return 0;
}

int
sb_root_assign(int code_fd, int run_fd, uint64_t tmp_bytes, const char *resolv, const char **what)
{
	char opts[64];

	if (resolv)
		STEP("/etc/resolv.conf", write_text("/etc/resolv.conf", resolv));
	(void)str_printf(opts, sizeof(opts), "size=%llu,mode=1777", (unsigned long long)tmp_bytes);
	STEP("/tmp", SYS(mount("tmp", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, opts)));
	if (run_fd >= 0)
		STEP("/run",
		     SYS(move_mount(run_fd, "", AT_FDCWD, "/run", MOVE_MOUNT_F_EMPTY_PATH)));
	STEP("code at /var/task",
	     SYS(move_mount(code_fd, "", AT_FDCWD, "/var/task", MOVE_MOUNT_F_EMPTY_PATH)));
	STEP("read-only root",
	     SYS(mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
		       NULL)));
	return 0;
}

int
sb_code_tree_open(const char *dir)
{
	int fd = open_tree(AT_FDCWD, dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
	int r;

	if (fd < 0)
		return -errno;
	r = ro_recursive(fd, "", AT_EMPTY_PATH);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}
