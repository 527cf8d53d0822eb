/*
 * sb_mount.c - the sandbox's file system, built by the cloned child inside
 * its new user and mount namespaces (SPEC §3): a tmpfs root holding
 * read-only binds of the host /usr (with the merged-/usr links), a minimal
 * /etc, the version's code read-only at /var/task, a size-limited /tmp, a
 * private /proc and a /dev with null, zero, full, random and urandom; then
 * pivot_root and the old root detached.
 *
 * INVARIANT: nothing of the host is visible but what is bound here, every
 * bind is read-only, nosuid and nodev (recursively), and nothing is mounted
 * below a path whose content the tenant controls.
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

/* From linux/mount.h, which clashes with glibc's sys/mount.h. */
struct sb_mount_attr {
	uint64_t attr_set, attr_clr, propagation, userns_fd;
};
#define SB_MOUNT_ATTR_RDONLY 0x1
#define SB_MOUNT_ATTR_NOSUID 0x2
#define SB_MOUNT_ATTR_NODEV  0x4
#define SB_AT_RECURSIVE      0x8000

static int
ro_recursive(const char *path)
{
	struct sb_mount_attr a = { .attr_set = SB_MOUNT_ATTR_RDONLY | SB_MOUNT_ATTR_NOSUID |
					       SB_MOUNT_ATTR_NODEV };

	if (syscall(SYS_mount_setattr, AT_FDCWD, path, SB_AT_RECURSIVE, &a, sizeof(a)) < 0)
		return -errno;
	return 0;
}

static int
bind_ro(const char *src, const char *dst)
{
	if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
		return -errno;
	return ro_recursive(dst);
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
sb_child_setup_root(const struct sb_spec *s, const char **what)
{
	static const char *const links[] = { "bin", "sbin", "lib", "lib32", "lib64", "libx32" };
	static const char *const dirs[] = { "usr", "etc", "var", "var/task", "tmp", "proc", "dev" };
	static const char *const devs[] = { "null", "zero", "full", "random", "urandom" };
	static const char *const proc_ro[] = { "sys", "sysrq-trigger", "irq", "bus" };
	char p[PATH_MAX + 64], opts[64];
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

	/* A minimal /etc: our own files, and read-only views of what
	 * programs need from the host's (certificates, alternatives links,
	 * the library cache). */
	(void)str_printf(p, sizeof(p), "%s/etc/passwd", root);
	STEP("/etc/passwd", write_text(p, s->etc_passwd));
	(void)str_printf(p, sizeof(p), "%s/etc/group", root);
	STEP("/etc/group", write_text(p, s->etc_group));
	(void)str_printf(p, sizeof(p), "%s/etc/hosts", root);
	STEP("/etc/hosts", write_text(p, s->etc_hosts));
	(void)str_printf(p, sizeof(p), "%s/etc/resolv.conf", root);
	STEP("/etc/resolv.conf", write_text(p, s->etc_resolv));
	(void)str_printf(p, sizeof(p), "%s/etc/nsswitch.conf", root);
	STEP("/etc/nsswitch.conf",
	     write_text(p, "passwd: files\ngroup: files\nhosts: files dns\n"));
	(void)str_printf(p, sizeof(p), "%s/etc/hostname", root);
	STEP("/etc/hostname", write_text(p, "faasd\n"));
	if (access("/etc/ssl", F_OK) == 0) {
		(void)str_printf(p, sizeof(p), "%s/etc/ssl", root);
		STEP("/etc/ssl", SYS(mkdir(p, 0755)));
		STEP("bind /etc/ssl", bind_ro("/etc/ssl", p));
	}
	if (access("/etc/alternatives", F_OK) == 0) {
		(void)str_printf(p, sizeof(p), "%s/etc/alternatives", root);
		STEP("/etc/alternatives", SYS(mkdir(p, 0755)));
		STEP("bind /etc/alternatives", bind_ro("/etc/alternatives", p));
	}
	if (access("/etc/ld.so.cache", F_OK) == 0) {
		(void)str_printf(p, sizeof(p), "%s/etc/ld.so.cache", root);
		STEP("/etc/ld.so.cache", touch(p));
		STEP("bind /etc/ld.so.cache", bind_ro("/etc/ld.so.cache", p));
	}

	(void)str_printf(p, sizeof(p), "%s/var/task", root);
	STEP("bind code", bind_ro(s->code_dir, p));

	(void)str_printf(p, sizeof(p), "%s/tmp", root);
	(void)str_printf(opts, sizeof(opts), "size=%llu,mode=1777",
			 (unsigned long long)s->tmp_bytes);
	STEP("/tmp", SYS(mount("tmp", p, "tmpfs", MS_NOSUID | MS_NODEV, opts)));

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
		/* Device nodes cannot be made in a user namespace: bind them. */
		STEP("/dev nodes", SYS(mount(host, p, NULL, MS_BIND, NULL)));
	}
	(void)str_printf(p, sizeof(p), "%s/dev/fd", root);
	STEP("/dev links", SYS(symlink("/proc/self/fd", p)));
	(void)str_printf(p, sizeof(p), "%s/dev/stdin", root);
	STEP("/dev links", SYS(symlink("/proc/self/fd/0", p)));
	(void)str_printf(p, sizeof(p), "%s/dev/stdout", root);
	STEP("/dev links", SYS(symlink("/proc/self/fd/1", p)));
	(void)str_printf(p, sizeof(p), "%s/dev/stderr", root);
	STEP("/dev links", SYS(symlink("/proc/self/fd/2", p)));
	(void)str_printf(p, sizeof(p), "%s/dev", root);
	STEP("/dev read-only",
	     SYS(mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC,
		       NULL)));

	/* Enter the new root; the old one is detached, not just hidden. */
	STEP("chdir root", SYS(chdir(root)));
	STEP("pivot_root", SYS(syscall(SYS_pivot_root, ".", ".")));
	STEP("detach old root", SYS(umount2(".", MNT_DETACH)));
	STEP("chdir /", SYS(chdir("/")));
	STEP("read-only root",
	     SYS(mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
		       NULL)));
	return 0;
}
