/*
 * worker.h - entry point of a worker process (called by the parent after
 * fork) and the spawn interface the sandbox library will replace.
 *
 * Workers hold the authority to start handlers as tenant uids and nothing
 * else: no network socket, no database.  They own each instance's
 * lifecycle: spawn, timeout, reap, kill.
 */
#ifndef FAASD_WORKER_H
#define FAASD_WORKER_H

#include <stdint.h>
#include <sys/types.h>

#include "config.h"

/* Exit status of a worker that received a malformed message from the
 * gateway: the parent restarts the gateway as well. */
#define WORKER_EXIT_BAD_PEER 3

int worker_main(unsigned index, int ctl_fd, int data_fd, const struct faasd_config *cfg);

struct spawn_req {
	const char *code_dir; /* absolute; becomes the working directory */
	const char *handler;  /* executable relative to code_dir */
	uid_t uid;            /* host uid (and gid) the handler runs as */
	int stdin_fd, stdout_fd, stderr_fd;
	const char *const *env; /* NULL-terminated */
	uint64_t max_output;    /* RLIMIT_FSIZE: caps what stdout can hold */
};

/*
 * spawn_handler - start one handler process.  This is the single place the
 * sandbox issue replaces: today it runs the handler as the tenant's
 * unprivileged uid with no supplementary groups, no_new_privs, its own
 * session and process group, rlimits (files, core 0, file size, processes)
 * and every other fd closed.  Returns 0 with *pid and *pidfd (O_CLOEXEC),
 * or -errno.  Failures after fork are reported on stderr_fd and exit 127.
 */
int spawn_handler(const struct spawn_req *r, pid_t *pid, int *pidfd);

#endif
