/*
 * sb_priv.c - privilege and network helpers of the sandbox child:
 * dropping every capability, bringing up loopback in a new network
 * namespace, and probing at start that user namespaces are available.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <linux/sched.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sb.h"
#include "util.h"

int
sb_caps_drop_all(void)
{
	cap_t none;
	int r;

	/* Bounding set first (needs CAP_SETPCAP, which we still hold in the
	 * new user namespace); unknown high caps answer EINVAL. */
	for (int c = 0; c < 64; c++)
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			return -errno;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -errno;
	none = cap_init(); /* all clear: effective, permitted, inheritable */
	if (!none)
		return -ENOMEM;
	r = cap_set_proc(none);
	cap_free(none);
	return r < 0 ? -errno : 0;
}

int
sb_caps_keep_for_worker(void)
{
	static const cap_value_t keep[] = { CAP_SETUID, CAP_SETGID, CAP_KILL, CAP_SYS_ADMIN,
					    CAP_NET_ADMIN };
	cap_t c;
	int r;

	for (int v = 0; v < 64; v++) {
		bool kept = false;

		for (size_t i = 0; i < ARRAY_SIZE(keep); i++)
			kept |= keep[i] == v;
		if (!kept && prctl(PR_CAPBSET_DROP, v, 0, 0, 0) < 0 && errno != EINVAL)
			return -errno;
	}
	c = cap_init();
	if (!c)
		return -ENOMEM;
	r = cap_set_flag(c, CAP_EFFECTIVE, ARRAY_SIZE(keep), keep, CAP_SET);
	if (r == 0)
		r = cap_set_flag(c, CAP_PERMITTED, ARRAY_SIZE(keep), keep, CAP_SET);
	if (r == 0)
		r = cap_set_proc(c);
	cap_free(c);
	return r < 0 ? -errno : 0;
}

int
sb_net_lo_up(void)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r = 0;

	if (fd < 0)
		return -errno;
	(void)str_copy(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		r = -errno;
	else {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
			r = -errno;
	}
	close(fd);
	return r;
}

int
sb_netns_new(void)
{
	int orig = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), fd = -1, r = 0;

	if (orig < 0)
		return -errno;
	if (unshare(CLONE_NEWNET) < 0) {
		r = -errno;
		close(orig);
		return r;
	}
	r = sb_net_lo_up();
	if (r == 0) {
		fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			r = -errno;
	}
	/* INVARIANT: the caller is back in its own namespace, whatever else
	 * failed; if it cannot be, it must not go on. */
	if (setns(orig, CLONE_NEWNET) < 0)
		abort();
	close(orig);
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		return r;
	}
	return fd;
}

int
sb_probe_userns(void)
{
	struct clone_args a = { .flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS,
				.exit_signal = SIGCHLD };
	int status;
	pid_t pid = (pid_t)syscall(SYS_clone3, &a, sizeof(a));

	if (pid < 0)
		return -errno;
	if (pid == 0)
		_exit(0);
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EPERM;
}

int
sb_output_open(const char *name, uint64_t cap)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		return -errno;
	/* Sparse: pages exist only where the handler writes. */
	if (ftruncate(fd, (off_t)cap) < 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_GROW) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

int64_t
sb_output_finish(int fd, uint64_t cap, bool *full)
{
	off_t off = lseek(fd, 0, SEEK_CUR);

	if (off < 0)
		return -errno;
	if ((uint64_t)off > cap)
		off = (off_t)cap;
	*full = (uint64_t)off >= cap;
	if (ftruncate(fd, off) < 0)
		return -errno;
	return off;
}
