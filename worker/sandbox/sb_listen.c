/*
 * sb_listen.c - how the worker reaches a hot instance's HTTP server.
 *
 * A hot handler listens on the unix socket $FAAS_LISTEN (/run/faas.sock
 * inside the sandbox).  Its /run is a small tmpfs that the worker makes
 * here (fsopen/fsmount, detached, owned by the tenant's uid) and hands to
 * the sandbox with the assignment; the worker keeps the mount fd, so it can
 * find the socket without entering the sandbox's mount namespace and
 * without a path the handler could redirect.
 *
 * INVARIANT: the socket is looked up beneath the mount fd only
 * (RESOLVE_BENEATH, no symlinks, no mount crossings), checked to be a
 * socket, and connected through /proc/self/fd of that exact inode, with
 * the tenant's fs uid: a hostile handler can make the connection fail but
 * never point it at anything outside its own /run.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "sb.h"
#include "util.h"

int
sb_run_new(uid_t host_uid)
{
	char opt[32];
	int fs, mnt, r = 0;

	fs = (int)syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
	if (fs < 0)
		return -errno;
	(void)str_printf(opt, sizeof(opt), "%u", (unsigned)host_uid);
	if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "size", "256k", 0) < 0 ||
	    syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "nr_inodes", "64", 0) < 0 ||
	    syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "mode", "0700", 0) < 0 ||
	    syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "uid", opt, 0) < 0 ||
	    syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "gid", opt, 0) < 0 ||
	    syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		r = -errno;
	if (r < 0) {
		close(fs);
		return r;
	}
	mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC,
			   MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
	r = mnt < 0 ? -errno : mnt;
	close(fs);
	return r;
}

int
sb_listen_connect(int run_fd, uid_t host_uid)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC | O_NOFOLLOW,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
					   RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int ino = -1, s = -1, r;
	uid_t old_uid;
	gid_t old_gid;

	/* The tenant's own permissions decide, as if it connected itself. */
	old_uid = (uid_t)setfsuid(host_uid);
	old_gid = (gid_t)setfsgid(host_uid);
	ino = (int)syscall(SYS_openat2, run_fd, SB_LISTEN_NAME, &how, sizeof(how));
	if (ino < 0) {
		r = -errno;
		goto out;
	}
	if (fstat(ino, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISSOCK(st.st_mode)) {
		r = -ENOTSOCK;
		goto out;
	}
	(void)str_printf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d", ino);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0) {
		r = -errno;
		goto out;
	}
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = errno == EAGAIN ? -ECONNREFUSED : -errno;
		close(s);
		goto out;
	}
	r = s;
out:
	(void)setfsuid(old_uid);
	(void)setfsgid(old_gid);
	if (ino >= 0)
		close(ino);
	return r;
}
