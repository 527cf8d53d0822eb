/*
 * sb.h - the sandbox library: everything needed to run one handler instance
 * as SPEC §3 requires.  Used by the worker (spawn, limits, kill, stats) and
 * by the parent (cgroup detection, subtree setup, leftover cleanup).
 *
 * Library rules: functions return >= 0 or -errno and never log.  Code that
 * runs in a freshly cloned child (sb_spawn's child half) is async-signal-safe:
 * no malloc, no stdio, no locks.
 */
#ifndef FAASD_SB_H
#define FAASD_SB_H

#include <limits.h>
#include <linux/filter.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- seccomp (sb_seccomp.c) ---- */

struct sb_filter {
	struct sock_filter *insns;
	unsigned short len;
};

/*
 * sb_seccomp_build - compile the handler policy once (libseccomp, native
 * ABI only, default ENOSYS, EPERM for the named dangerous calls, foreign
 * ABIs killed) into BPF kept in memory, so children load it with one
 * prctl().  0 or -errno.  sb_seccomp_free releases it.
 */
int sb_seccomp_build(struct sb_filter *out);
void sb_seccomp_free(struct sb_filter *f);
/* Load f into the calling thread (needs no_new_privs or CAP_SYS_ADMIN). */
int sb_seccomp_load(const struct sb_filter *f);

/* ---- cgroups (sb_cgroup.c) ---- */

enum sb_cg_mode {
	SB_CG_NONE = 0, /* no usable cgroups: refuse to run handlers */
	SB_CG_V1,       /* legacy or hybrid: limits through v1 controllers */
	SB_CG_V2,       /* unified */
};

struct sb_cgroups {
	enum sb_cg_mode mode;
	/* The faasd subtree: for v2 one directory, for v1 one per controller. */
	char v2[PATH_MAX];
	char v1_memory[PATH_MAX];
	char v1_pids[PATH_MAX];
	char v1_cpu[PATH_MAX];
	bool memsw; /* v1 swap accounting present */
	bool mimic; /* tests: create control files that a real cgroupfs has */
};

struct sb_limits {
	uint64_t memory_bytes;
	uint64_t pids;
	uint64_t cpu_millicores; /* 1000 = one CPU */
};

struct sb_cg_stats {
	uint64_t peak_bytes;
	uint64_t oom_kills;
};

/* sb_cgroup_name - the subtree's name for the daemon whose state
 * directory this is: "faasd-" and 8 hex digits of a hash of its real
 * path, the same on every start.  Returns out. */
const char *sb_cgroup_name(const char *state_dir, char *out, size_t n);

/*
 * sb_cgroup_detect - find the cgroup mode and faasd's own position.
 * fsroot is "/sys/fs/cgroup"; self_cgroup is the text of /proc/self/cgroup.
 * Fills the subtree paths: v1 <controller mount>/<own position>/<name>,
 * v2 <mount>/<own position>/<name>.
 * 0, or -ENOENT when no usable controllers exist.
 */
int sb_cgroup_detect(const char *fsroot, const char *self_cgroup, const char *name,
		     struct sb_cgroups *out);

/*
 * sb_cgroup_setup - create the subtree (and on v2 move the calling
 * process out of its cgroup into a "supervisor" sibling and enable the
 * memory, pids and cpu controllers for the sandboxes).  0 or -errno.
 */
int sb_cgroup_setup(struct sb_cgroups *cg);

/* Create instance inst with limits written before anyone joins.  0/-errno. */
int sb_cgroup_create(const struct sb_cgroups *cg, const char *inst, const struct sb_limits *l);
/* Change the memory limit of an instance before its handler runs. */
int sb_cgroup_set_memory(const struct sb_cgroups *cg, const char *inst, uint64_t bytes);
/* O_PATH|O_DIRECTORY fd of a v2 instance for CLONE_INTO_CGROUP, or -errno. */
int sb_cgroup_open(const struct sb_cgroups *cg, const char *inst);
/* Move pid into inst (every v1 hierarchy; v2 when it was not cloned in). */
int sb_cgroup_attach(const struct sb_cgroups *cg, const char *inst, pid_t pid);
int sb_cgroup_stats(const struct sb_cgroups *cg, const char *inst, struct sb_cg_stats *st);
/* SIGKILL every process in inst (v2: cgroup.kill).  0 or -errno. */
int sb_cgroup_kill(const struct sb_cgroups *cg, const char *inst);
/*
 * sb_cgroup_recycle - make an empty instance cgroup ready for another
 * instance instead of removing it: resets its peak memory.  0, -EBUSY while
 * processes remain, -ENOTSUP where the peak cannot be reset (v2).  OOM
 * counts are cumulative: callers compare against a baseline.
 */
int sb_cgroup_recycle(const struct sb_cgroups *cg, const char *inst);
/* rmdir inst; -EBUSY while processes remain. */
int sb_cgroup_remove(const struct sb_cgroups *cg, const char *inst);
/* Kill and remove every instance left in the subtree whose name starts
 * with prefix ("" for all): crash recovery of faasd or of one worker.
 * Returns how many were removed, or -errno. */
int sb_cgroup_cleanup(const struct sb_cgroups *cg, const char *prefix);
/* Remove the (empty) subtree itself, at a clean stop. */
void sb_cgroup_teardown(const struct sb_cgroups *cg);

/* ---- the launch (sb_spawn.c, sb_mount.c) ---- */

#define SB_INNER_ID 1000 /* uid and gid inside the sandbox */

struct sb_spec {
	const char *root_dir;    /* empty dir used as the new root's mount point */
	const char *code_dir;    /* host dir shown read-only at /var/task */
	const char *handler;     /* executable relative to /var/task */
	const char *const *argv; /* at assignment, NULL: { "/var/task/<handler>" };
				  * else argv[0] is the handler's own path */
	const char *const *env;  /* NULL-terminated */
	uid_t host_uid;          /* the tenant's own host uid (also gid) */
	int stdin_fd, stdout_fd, stderr_fd;
	uint64_t tmp_bytes; /* size of the /tmp tmpfs */
	bool net_host;      /* share the host network namespace */
	bool clone_parent;  /* the caller's parent becomes the sandbox's parent */
	int netns_fd;       /* network namespace to join (a reused one), or -1:
			     * a new one is made (unless net_host) */
	const struct sb_filter *filter;
	const struct sb_cgroups *cg;
	const char *cg_inst;    /* instance cgroup, created by the caller */
	const char *etc_passwd; /* content of /etc/passwd, /etc/group */
	const char *etc_group;
	const char *etc_hosts;
	const char *etc_resolv;  /* /etc/resolv.conf of blanks */
	const char *resolv;      /* at assignment: replaces it (host network), or NULL */
	const char *runtime_dir; /* host dir of the runtime shims, bound read-only at
				  * /var/runtime in every blank; NULL: none */
	int run_fd;              /* at assignment: a detached tmpfs (sb_run_new) for
				  * /run, or -1 */
};

/*
 * sb_spawn - start the handler in a new sandbox: new user, pid, mount, ipc,
 * uts, cgroup and (unless net_host) network namespaces; SB_INNER_ID mapped
 * to host_uid only; in cg_inst before it runs anything; fresh root; all
 * capabilities dropped; no_new_privs; filter loaded last; execve.
 * Returns 0 with *pid, *pidfd (kill and wait handle) and *sync_fd, or
 * -errno.  *pid is the sandbox's init (pid 1 inside).  When the handler
 * and everything it left have ended, the init writes the handler's wait
 * status (an int) to *sync_fd and exits.  The caller closes *sync_fd when
 * the instance ends; the sandbox uses it to notice a dead worker.  Setup failures after
 * the assignment are written to stderr_fd and end the init with status 127.
 */
int sb_spawn(const struct sb_spec *s, pid_t *pid, int *pidfd, int *sync_fd);

/*
 * Two-phase launch, so a pool of blank sandboxes can be made ahead of time.
 * sb_prepare uses only the tenant-independent fields of s (root_dir, filter,
 * cg, cg_inst, clone_parent, etc_*; their memory must stay valid until the
 * sandbox is started or discarded): it clones the init into new pid, mount,
 * ipc and uts namespaces and into cg_inst; the init builds the whole root
 * but the code and /tmp, pivots into it, and says it is ready, which
 * sb_prepare waits for.  sb_start uses the tenant
 * fields (host_uid, code_dir, handler, env, stdio fds, tmp_bytes, net_host,
 * netns_fd, resolv): it clones the code tree and hands the assignment over
 * without waiting; the init then joins the network namespace, mounts the
 * code and /tmp, creates its cgroup and user namespaces (writing its own
 * maps) and continues as sb_spawn describes.
 * sb_blank_discard kills and reaps a blank that will not be used.
 * sb_spawn is sb_prepare + sb_start.  All return 0 or -errno.
 */
struct sb_blank {
	pid_t pid; /* the init */
	int pidfd;
	int sync_fd;
	char cg_inst[32];
};

int sb_prepare(const struct sb_spec *s, struct sb_blank *b);
int sb_start(struct sb_blank *b, const struct sb_spec *s);
void sb_blank_discard(struct sb_blank *b);

/*
 * The mount part of the init, for sb_spawn only (see sb_mount.c).
 * sb_root_build: private propagation, tmpfs root, binds, /etc, /proc, /dev,
 * pivot_root.  sb_root_assign: resolv (if not NULL), /tmp, the code tree
 * moved to /var/task, root read-only.  Both 0 or -errno with *what naming
 * the failed step.  sb_code_tree_open: a detached, recursively read-only,
 * nosuid, nodev clone of dir (open_tree), as an O_CLOEXEC fd, or -errno;
 * called by the worker, whose mount namespace sees dir.
 */
int sb_root_build(const struct sb_spec *s, const char **what);
int sb_root_assign(int code_fd, int run_fd, uint64_t tmp_bytes, const char *resolv,
		   const char **what);
int sb_code_tree_open(const char *dir);

/*
 * sb_output_open - a memfd for a handler's stdout or stderr that can never
 * hold more than cap bytes: sized to cap and sealed against growth, so a
 * write past the end fails (EPERM) instead of using more memory.  Returns
 * the fd (O_CLOEXEC) or -errno.  sb_output_finish trims it to what was
 * written (the file offset the handler shares) and returns that length;
 * *full is set when the handler reached the cap.
 */
int sb_output_open(const char *name, uint64_t cap);
int64_t sb_output_finish(int fd, uint64_t cap, bool *full);

/*
 * Hot instances (sb_listen.c).  sb_run_new: a detached, small tmpfs owned by
 * host_uid (mode 0700, nosuid, nodev, noexec) as a mount fd, to be /run of
 * one sandbox, where its handler binds SB_LISTEN_NAME ($FAAS_LISTEN).
 * sb_listen_connect: a non-blocking stream socket connected to that socket,
 * looked up beneath run_fd only (no symlinks, no other mount) and checked
 * to be a socket, with the fs identity of host_uid so the tenant's own
 * permissions apply.  fd, or -errno: -ENOENT/-ECONNREFUSED while the
 * handler does not listen yet, -ENOTSOCK for something else in its place.
 * INVARIANT: whatever a hostile handler puts at that path, the worker never
 * connects to anything outside the sandbox's /run.
 */
#define SB_LISTEN_NAME "faas.sock"
#define SB_LISTEN_PATH "/run/" SB_LISTEN_NAME
int sb_run_new(uid_t host_uid);
int sb_listen_connect(int run_fd, uid_t host_uid);

/* Bring the loopback interface up in the current network namespace. */
int sb_net_lo_up(void);

/*
 * sb_netns_new - a new network namespace with loopback up, as an O_CLOEXEC
 * fd, made by briefly switching the caller into it (needs CAP_SYS_ADMIN;
 * the caller must be single-threaded).  For reuse by sandboxes of one
 * tenant.  fd or -errno.
 */
int sb_netns_new(void);

/* Drop every capability (bounding, ambient, inheritable, permitted,
 * effective).  Async-signal-safe.  0 or -errno. */
int sb_caps_drop_all(void);

/*
 * sb_caps_keep_for_worker - reduce the calling (root) worker to the
 * capabilities sandbox construction needs: CAP_SETUID and CAP_SETGID (uid
 * and gid maps for tenant uids), CAP_KILL (signals to sandboxes),
 * CAP_SYS_ADMIN (user namespaces on hosts that restrict them; making and
 * joining reused network namespaces), CAP_NET_ADMIN (loopback up in them).  Everything
 * else leaves the effective, permitted, inheritable and bounding sets.
 * 0 or -errno.
 */
int sb_caps_keep_for_worker(void);

/* Probe that user namespaces can be created here.  0 or -errno
 * (-EPERM/-ENOSPC: disabled by the host). */
int sb_probe_userns(void);

#endif
