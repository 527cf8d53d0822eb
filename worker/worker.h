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

#endif
