/*
 * pool.c - the worker's maker of blank sandboxes.
 *
 * A helper process, forked from the worker at start, that creates blank
 * sandboxes (instance cgroup + namespaces, see sb_prepare) on request and
 * hands each back over a socketpair as its name, pid, pidfd and sync socket.
 * It clones them with CLONE_PARENT, so the worker is their parent: the
 * worker waits for them, and they die with it.  Making a blank can wait for
 * a kernel grace period (a cgroup v1 migration, ~10 ms when sporadic), which
 * must never stall the worker's event loop; here it stalls only the maker.
 *
 * The socket carries records between two halves of the same binary:
 * worker -> maker "n" for a blank in a new cgroup, or "r" + name to reuse an
 * emptied instance cgroup; maker -> worker one struct pool_reply, with the
 * pidfd and sync fd attached when err == 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "sb.h"
#include "util.h"
#include "worker.h"

static void __attribute__((noreturn))
maker_main(int sock, const struct sb_spec *tmpl, const struct sb_limits *lim, unsigned index)
{
	uint64_t seq = 0;
	char want[40];
	ssize_t got;

	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	prctl(PR_SET_NAME, "faasd-pool", 0, 0, 0);
	while ((got = read(sock, want, sizeof(want) - 1)) > 0) {
		struct pool_reply rep = { 0 };
		struct sb_spec sp = *tmpl;
		struct sb_blank b = { .pidfd = -1, .sync_fd = -1 };
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(2 * sizeof(int))];
		} cbuf;
		struct iovec iov = { &rep, sizeof(rep) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

		bool reuse = want[0] == 'r' && got > 1;

		want[got] = 0;
		if (reuse)
			(void)str_copy(rep.name, sizeof(rep.name), want + 1);
		else
			(void)str_printf(rep.name, sizeof(rep.name), "w%u-p%llu", index,
					 (unsigned long long)++seq);
		sp.cg_inst = rep.name;
		sp.clone_parent = true;
		rep.err = reuse ? 0 : sb_cgroup_create(sp.cg, rep.name, lim);
		if (rep.err == 0)
			rep.err = sb_prepare(&sp, &b);
		if (rep.err == 0) {
			struct cmsghdr *c;
			int fds[2] = { b.pidfd, b.sync_fd };

			rep.pid = b.pid;
			memset(&cbuf, 0, sizeof(cbuf));
			mh.msg_control = cbuf.buf;
			mh.msg_controllen = CMSG_SPACE(sizeof(fds));
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(fds));
			memcpy(CMSG_DATA(c), fds, sizeof(fds));
		} else
			(void)sb_cgroup_remove(sp.cg, rep.name);
		if (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0)
			_exit(1);
		if (rep.err == 0) {
			close(b.pidfd);
			close(b.sync_fd);
		}
	}
	_exit(0);
}

int
pool_maker_start(const struct sb_spec *tmpl, const struct sb_limits *lim, unsigned index,
		 pid_t *pid, int *sock)
{
	int sv[2];
	pid_t p;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	p = fork();
	if (p < 0) {
		int e = errno;

		close(sv[0]);
		close(sv[1]);
		return -e;
	}
	if (p == 0) {
		/* Keep only our socket (and stdio for the log). */
		int keep = fcntl(sv[1], F_DUPFD_CLOEXEC, 3);

		if (keep < 0 || close_fds_except(&keep, 1) < 0)
			_exit(1);
		maker_main(keep, tmpl, lim, index);
	}
	close(sv[1]);
	*pid = p;
	*sock = sv[0];
	return 0;
}

int
pool_maker_request(int sock, const char *reuse)
{
	char msg[40];
	int n = str_printf(msg, sizeof(msg), "%s%s", reuse ? "r" : "n", reuse ? reuse : "");

	if (n < 0)
		return n;
	return write(sock, msg, (size_t)n) == n ? 0 : -errno;
}

int
pool_maker_receive(int sock, struct pool_reply *rep, int *pidfd, int *sync_fd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(2 * sizeof(int))];
	} cbuf;
	struct iovec iov = { rep, sizeof(*rep) };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf.buf,
			     .msg_controllen = sizeof(cbuf.buf) };
	struct cmsghdr *c;
	ssize_t n;

	*pidfd = *sync_fd = -1;
	n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return errno == EAGAIN ? -EAGAIN : -errno;
	if (n == 0)
		return -ECONNRESET;
	if (n != sizeof(*rep))
		return -EBADMSG;
	rep->name[sizeof(rep->name) - 1] = 0;
	c = CMSG_FIRSTHDR(&mh);
	if (rep->err == 0) {
		int fds[2];

		if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(fds)))
			return -EBADMSG;
		memcpy(fds, CMSG_DATA(c), sizeof(fds));
		*pidfd = fds[0];
		*sync_fd = fds[1];
	}
	return 1;
}
