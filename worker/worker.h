/*
 * worker.h - entry point of a worker process (called by the parent after
 * fork) and the spawn interface the sandbox library will replace.
 *
 * Workers hold the authority to start handlers as tenant uids and nothing
 * else: no network socket, no database.  They own each instance's
 * lifecycle: sandbox (worker/sandbox/), cgroup, timeout, reap, kill.
 */
#ifndef FAASD_WORKER_H
#define FAASD_WORKER_H

#include <stdint.h>
#include <sys/types.h>

#include "config.h"

/* Exit status of a worker that received a malformed message from the
 * gateway: the parent restarts the gateway as well. */
#define WORKER_EXIT_BAD_PEER 3

struct sb_cgroups;

/*
 * worker_main - run worker number index: ctl_fd talks to the parent,
 * data_fd to the gateway; cg is the cgroup subtree the parent prepared.
 * Returns the process exit status.
 */
int worker_main(unsigned index, int ctl_fd, int data_fd, const struct faasd_config *cfg,
		const struct sb_cgroups *cg);

/* pool.c: the helper process that makes blank sandboxes for a worker. */
struct sb_spec;
struct sb_limits;

struct pool_reply {
	char name[32]; /* instance cgroup of the blank */
	int32_t pid;
	int32_t err; /* 0, or -errno: no fds attached */
};

/* Fork the maker for worker index; *sock is the worker's end.  0/-errno. */
int pool_maker_start(const struct sb_spec *tmpl, const struct sb_limits *lim, unsigned index,
		     pid_t *pid, int *sock);
/* Ask for one more blank, in the emptied instance cgroup reuse (from
 * sb_cgroup_recycle) or, with NULL, in a new one.  0 or -errno. */
int pool_maker_request(int sock, const char *reuse);
/* Take one reply: 1 with *rep (and fds when rep->err == 0), -EAGAIN when
 * none is pending, -ECONNRESET when the maker is gone, or -errno. */
int pool_maker_receive(int sock, struct pool_reply *rep, int *pidfd, int *sync_fd);

#endif
