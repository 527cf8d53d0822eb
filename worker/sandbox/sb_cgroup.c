/*
 * sb_cgroup.c - one cgroup per handler instance, on cgroup v2 (unified) and
 * v1 (legacy or hybrid: v1 controllers, maybe an empty v2 tree beside them).
 *
 * Layout: v2 <own cgroup>/sandboxes/<instance>, with faasd's own processes
 * moved to <own cgroup>/supervisor so the "no internal processes" rule lets
 * the controllers be enabled (systemd Delegate=yes gives us <own>);
 * v1 <controller mount>/<own position>/faasd/<instance> for memory, pids and
 * cpu.  Limits are written before any process joins.
 *
 * INVARIANT: instance names come from the worker ([a-z0-9-] only) and never
 * collide with kernel file names; nothing here follows a path a tenant can
 * influence.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "sb.h"
#include "util.h"

static int
cg_write(const struct sb_cgroups *cg, const char *dir, const char *inst, const char *file,
	 const char *value)
{
	char path[PATH_MAX + 128];

	if (str_printf(path, sizeof(path), "%s%s%s/%s", dir, inst ? "/" : "", inst ? inst : "",
		       file) < 0)
		return -ENAMETOOLONG;
	return write_file_str(path, value, cg->mimic ? O_CREAT | O_TRUNC : 0);
}

static int
cg_read(const char *dir, const char *inst, const char *file, char *buf, size_t n)
{
	char path[PATH_MAX + 128];
	int fd;
	ssize_t got;

	buf[0] = 0;
	if (str_printf(path, sizeof(path), "%s/%s/%s", dir, inst, file) < 0)
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	got = read_full(fd, buf, n - 1);
	close(fd);
	if (got < 0)
		return (int)got;
	buf[got] = 0;
	return 0;
}

/* Value of "key N" in a flat-keyed file such as memory.events. */
static uint64_t
keyed_value(const char *text, const char *key)
{
	size_t kl = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, key, kl) == 0 && p[kl] == ' ')
			return strtoull(p + kl + 1, NULL, 10);
	}
	return 0;
}

/* Position of this process in hierarchy `controller` ("" = the v2 line). */
static int
own_position(const char *self_cgroup, const char *controller, char *out, size_t n)
{
	const char *p = self_cgroup;

	while (p && *p) {
		const char *eol = strchr(p, '\n'), *c1 = strchr(p, ':'), *c2;
		size_t len = eol ? (size_t)(eol - p) : strlen(p);

		c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 - p) - 1) : NULL;
		if (c1 && c2 && (size_t)(c2 - p) < len) {
			const char *list = c1 + 1;
			size_t ll = (size_t)(c2 - list), cl = strlen(controller);
			bool match = false;

			if (cl == 0)
				match = ll == 0;
			else
				for (const char *q = list; q < c2;) {
					const char *comma = memchr(q, ',', (size_t)(c2 - q));
					size_t tl = comma ? (size_t)(comma - q) : (size_t)(c2 - q);

					if (tl == cl && strncmp(q, controller, cl) == 0)
						match = true;
					q += tl + 1;
				}
			if (match) {
				size_t pl = len - (size_t)(c2 + 1 - p);

				if (pl >= n)
					return -ENAMETOOLONG;
				memcpy(out, c2 + 1, pl);
				out[pl] = 0;
				/* "/" becomes "" so joins do not double the slash. */
				if (strcmp(out, "/") == 0)
					out[0] = 0;
				return 0;
			}
		}
		p = eol ? eol + 1 : NULL;
	}
	return -ENOENT;
}

const char *
sb_cgroup_name(const char *state_dir, char *out, size_t n)
{
	char real[PATH_MAX];
	const char *key = realpath(state_dir, real) ? real : state_dir;
	uint32_t h = 2166136261u; /* FNV-1a: a name, not a secret */

	for (const char *c = key; *c; c++)
		h = (h ^ (uint8_t)*c) * 16777619u;
	(void)str_printf(out, n, "faasd-%08x", (unsigned)h);
	return out;
}

int
sb_cgroup_detect(const char *fsroot, const char *self_cgroup, const char *name,
		 struct sb_cgroups *out)
{
	static const char *const v1[3] = { "memory", "pids", "cpu" };
	char *dst[3];
	struct statfs sf;
	char pos[PATH_MAX], probe[PATH_MAX + 64];

	memset(out, 0, sizeof(*out));
	if (statfs(fsroot, &sf) < 0)
		return -errno;
	if (sf.f_type == CGROUP2_SUPER_MAGIC) {
		if (own_position(self_cgroup, "", pos, sizeof(pos)) < 0)
			return -ENOENT;
		/* v2: <own>/<name> beside <own>/supervisor (see setup). */
		if (str_printf(out->v2, sizeof(out->v2), "%s%s/%s", fsroot, pos, name) < 0)
			return -ENAMETOOLONG;
		out->mode = SB_CG_V2;
		return 0;
	}
	dst[0] = out->v1_memory;
	dst[1] = out->v1_pids;
	dst[2] = out->v1_cpu;
	for (int i = 0; i < 3; i++) {
		if (own_position(self_cgroup, v1[i], pos, sizeof(pos)) < 0)
			return -ENOENT;
		if (str_printf(dst[i], PATH_MAX, "%s/%s%s/%s", fsroot, v1[i], pos, name) < 0)
			return -ENAMETOOLONG;
		(void)str_printf(probe, sizeof(probe), "%s/%s/cgroup.procs", fsroot, v1[i]);
		if (access(probe, F_OK) < 0)
			return -ENOENT;
	}
	(void)str_printf(probe, sizeof(probe), "%s/memory/memory.memsw.limit_in_bytes", fsroot);
	out->memsw = access(probe, F_OK) == 0;
	out->mode = SB_CG_V1;
	return 0;
}

static int
mkdir_p1(const char *path)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int
sb_cgroup_setup(struct sb_cgroups *cg)
{
	char own[PATH_MAX], sup[PATH_MAX + 16], pid[32];
	char *slash;
	int r;

	if (cg->mode == SB_CG_V1) {
		if ((r = mkdir_p1(cg->v1_memory)) < 0 || (r = mkdir_p1(cg->v1_pids)) < 0 ||
		    (r = mkdir_p1(cg->v1_cpu)) < 0)
			return r;
		/* Keep the OOM killer on: tasks must die, not hang. */
		(void)cg_write(cg, cg->v1_memory, NULL, "memory.use_hierarchy", "1");
		return 0;
	}
	if (cg->mode != SB_CG_V2)
		return -ENOTSUP;
	(void)str_copy(own, sizeof(own), cg->v2);
	slash = strrchr(own, '/');
	if (!slash)
		return -EINVAL;
	*slash = 0;
	(void)str_printf(sup, sizeof(sup), "%s/supervisor", own);
	if ((r = mkdir_p1(sup)) < 0)
		return r;
	(void)str_printf(pid, sizeof(pid), "%d", getpid());
	if ((r = cg_write(cg, sup, NULL, "cgroup.procs", pid)) < 0)
		return r;
	if ((r = cg_write(cg, own, NULL, "cgroup.subtree_control", "+memory +pids +cpu")) < 0)
		return r;
	if ((r = mkdir_p1(cg->v2)) < 0)
		return r;
	return cg_write(cg, cg->v2, NULL, "cgroup.subtree_control", "+memory +pids +cpu");
}

static int
mk_inst(const char *dir, const char *inst)
{
	char path[PATH_MAX + 64];

	if (str_printf(path, sizeof(path), "%s/%s", dir, inst) < 0)
		return -ENAMETOOLONG;
	if (mkdir(path, 0755) < 0)
		return -errno;
	return 0;
}

int
sb_cgroup_create(const struct sb_cgroups *cg, const char *inst, const struct sb_limits *l)
{
	char v[64];
	int r;

	if (cg->mode == SB_CG_V2) {
		if ((r = mk_inst(cg->v2, inst)) < 0)
			return r;
		(void)str_printf(v, sizeof(v), "%llu", (unsigned long long)l->memory_bytes);
		if ((r = cg_write(cg, cg->v2, inst, "memory.max", v)) < 0)
			return r;
		r = cg_write(cg, cg->v2, inst, "memory.swap.max", "0");
		if (r < 0 && r != -ENOENT) /* no swap support: nothing to limit */
			return r;
		if ((r = cg_write(cg, cg->v2, inst, "memory.oom.group", "1")) < 0)
			return r;
		(void)str_printf(v, sizeof(v), "%llu", (unsigned long long)l->pids);
		if ((r = cg_write(cg, cg->v2, inst, "pids.max", v)) < 0)
			return r;
		(void)str_printf(v, sizeof(v), "%llu 100000",
				 (unsigned long long)l->cpu_millicores * 100);
		return cg_write(cg, cg->v2, inst, "cpu.max", v);
	}
	if (cg->mode != SB_CG_V1)
		return -ENOTSUP;
	if ((r = mk_inst(cg->v1_memory, inst)) < 0 || (r = mk_inst(cg->v1_pids, inst)) < 0 ||
	    (r = mk_inst(cg->v1_cpu, inst)) < 0)
		return r;
	/* memsw must stay >= the limit after each write: on a fresh cgroup
	 * both are unlimited, so the limit goes first. */
	(void)str_printf(v, sizeof(v), "%llu", (unsigned long long)l->memory_bytes);
	if ((r = cg_write(cg, cg->v1_memory, inst, "memory.limit_in_bytes", v)) < 0)
		return r;
	if (cg->memsw &&
	    (r = cg_write(cg, cg->v1_memory, inst, "memory.memsw.limit_in_bytes", v)) < 0)
		return r;
	(void)cg_write(cg, cg->v1_memory, inst, "memory.swappiness", "0");
	if ((r = cg_write(cg, cg->v1_memory, inst, "memory.oom_control", "0")) < 0 && r != -EINVAL)
		return r;
	(void)str_printf(v, sizeof(v), "%llu", (unsigned long long)l->pids);
	if ((r = cg_write(cg, cg->v1_pids, inst, "pids.max", v)) < 0)
		return r;
	/* The period before the quota. */
	if ((r = cg_write(cg, cg->v1_cpu, inst, "cpu.cfs_period_us", "100000")) < 0)
		return r;
	(void)str_printf(v, sizeof(v), "%llu", (unsigned long long)l->cpu_millicores * 100);
	return cg_write(cg, cg->v1_cpu, inst, "cpu.cfs_quota_us", v);
}

int
sb_cgroup_set_memory(const struct sb_cgroups *cg, const char *inst, uint64_t bytes)
{
	char v[32];
	int r;

	(void)str_printf(v, sizeof(v), "%llu", (unsigned long long)bytes);
	if (cg->mode == SB_CG_V2)
		return cg_write(cg, cg->v2, inst, "memory.max", v);
	if (!cg->memsw)
		return cg_write(cg, cg->v1_memory, inst, "memory.limit_in_bytes", v);
	/* memsw must stay >= the limit after every write: lowering goes limit
	 * first, raising memsw first; try one order, then the other. */
	r = cg_write(cg, cg->v1_memory, inst, "memory.limit_in_bytes", v);
	if (r == 0)
		return cg_write(cg, cg->v1_memory, inst, "memory.memsw.limit_in_bytes", v);
	if (r != -EINVAL)
		return r;
	r = cg_write(cg, cg->v1_memory, inst, "memory.memsw.limit_in_bytes", v);
	if (r == 0)
		r = cg_write(cg, cg->v1_memory, inst, "memory.limit_in_bytes", v);
	return r;
}

int
sb_cgroup_open(const struct sb_cgroups *cg, const char *inst)
{
	char path[PATH_MAX + 64];
	int fd;

	if (cg->mode != SB_CG_V2)
		return -ENOTSUP;
	if (str_printf(path, sizeof(path), "%s/%s", cg->v2, inst) < 0)
		return -ENAMETOOLONG;
	fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int
sb_cgroup_attach(const struct sb_cgroups *cg, const char *inst, pid_t pid)
{
	char v[32];
	int r;

	(void)str_printf(v, sizeof(v), "%d", pid);
	if (cg->mode == SB_CG_V2)
		return cg_write(cg, cg->v2, inst, "cgroup.procs", v);
	if ((r = cg_write(cg, cg->v1_memory, inst, "cgroup.procs", v)) < 0 ||
	    (r = cg_write(cg, cg->v1_pids, inst, "cgroup.procs", v)) < 0)
		return r;
	return cg_write(cg, cg->v1_cpu, inst, "cgroup.procs", v);
}

int
sb_cgroup_stats(const struct sb_cgroups *cg, const char *inst, struct sb_cg_stats *st)
{
	bool v2 = cg->mode == SB_CG_V2;
	const char *dir = v2 ? cg->v2 : cg->v1_memory;
	char buf[1024];
	int r;

	memset(st, 0, sizeof(*st));
	/* Both versions have an "oom_kill N" line: v2 memory.events, v1
	 * memory.oom_control. */
	if (cg_read(dir, inst, v2 ? "memory.peak" : "memory.max_usage_in_bytes", buf,
		    sizeof(buf)) == 0)
		st->peak_bytes = strtoull(buf, NULL, 10);
	r = cg_read(dir, inst, v2 ? "memory.events" : "memory.oom_control", buf, sizeof(buf));
	if (r == 0)
		st->oom_kills = keyed_value(buf, "oom_kill");
	return r;
}

/* Kill every pid listed in dir/inst/cgroup.procs; returns how many. */
static int
kill_listed(const char *dir, const char *inst)
{
	char buf[8192];
	int n = 0;

	if (cg_read(dir, inst, "cgroup.procs", buf, sizeof(buf)) < 0)
		return 0;
	for (char *p = buf; *p;) {
		char *end;
		long pid = strtol(p, &end, 10);

		if (end == p)
			break;
		if (pid > 0) {
			kill((pid_t)pid, SIGCONT);
			kill((pid_t)pid, SIGKILL);
			n++;
		}
		p = *end ? end + 1 : end;
	}
	return n;
}

int
sb_cgroup_kill(const struct sb_cgroups *cg, const char *inst)
{
	const char *dir = cg->mode == SB_CG_V2 ? cg->v2 : cg->v1_pids;

	if (cg->mode == SB_CG_V2) {
		int r = cg_write(cg, cg->v2, inst, "cgroup.kill", "1");

		if (r != -ENOENT)
			return r;
	}
	/* Every member joins all hierarchies at once and a sandbox cannot
	 * move itself, so one hierarchy lists them all.  v1 has no
	 * cgroup.kill; a fork bomb is stopped by pids.max and by the pid
	 * namespace dying with its init, so a few passes suffice. */
	for (int i = 0; i < 16; i++)
		if (kill_listed(dir, inst) == 0)
			break;
	return 0;
}

int
sb_cgroup_recycle(const struct sb_cgroups *cg, const char *inst)
{
	char buf[64];

	if (cg->mode != SB_CG_V1)
		return -ENOTSUP;
	if (cg_read(cg->v1_pids, inst, "cgroup.procs", buf, sizeof(buf)) < 0 || buf[0] ||
	    cg_read(cg->v1_memory, inst, "cgroup.procs", buf, sizeof(buf)) < 0 || buf[0])
		return -EBUSY;
	return cg_write(cg, cg->v1_memory, inst, "memory.max_usage_in_bytes", "0");
}

static int
rm_inst(const char *dir, const char *inst)
{
	char path[PATH_MAX + 64];

	if (str_printf(path, sizeof(path), "%s/%s", dir, inst) < 0)
		return -ENAMETOOLONG;
	if (rmdir(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/* In mimic trees the control files are real files: remove them first. */
static void
mimic_clear(const char *dir, const char *inst)
{
	char path[PATH_MAX + 64], f[PATH_MAX + 400];
	DIR *d;
	struct dirent *de;

	(void)str_printf(path, sizeof(path), "%s/%s", dir, inst);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.') {
			(void)str_printf(f, sizeof(f), "%s/%s", path, de->d_name);
			unlink(f);
		}
	closedir(d);
}

int
sb_cgroup_remove(const struct sb_cgroups *cg, const char *inst)
{
	int r;

	if (cg->mode == SB_CG_V2) {
		if (cg->mimic)
			mimic_clear(cg->v2, inst);
		return rm_inst(cg->v2, inst);
	}
	if (cg->mimic) {
		mimic_clear(cg->v1_memory, inst);
		mimic_clear(cg->v1_pids, inst);
		mimic_clear(cg->v1_cpu, inst);
	}
	r = rm_inst(cg->v1_memory, inst);
	if (r == 0)
		r = rm_inst(cg->v1_pids, inst);
	if (r == 0)
		r = rm_inst(cg->v1_cpu, inst);
	return r;
}

int
sb_cgroup_cleanup(const struct sb_cgroups *cg, const char *prefix)
{
	const char *dirs[3] = { cg->mode == SB_CG_V2 ? cg->v2 : cg->v1_pids, cg->v1_memory,
				cg->v1_cpu };
	int removed = 0;

	for (int i = 0; i < (cg->mode == SB_CG_V2 ? 1 : 3); i++) {
		DIR *d = opendir(dirs[i]);
		struct dirent *de;

		if (!d)
			continue;
		while ((de = readdir(d))) {
			if (de->d_type != DT_DIR || de->d_name[0] == '.' ||
			    !str_startswith(de->d_name, prefix))
				continue;
			(void)sb_cgroup_kill(cg, de->d_name);
			for (int tries = 0; tries < 50; tries++) {
				if (sb_cgroup_remove(cg, de->d_name) == 0) {
					removed++;
					break;
				}
				usleep(10000);
			}
		}
		closedir(d);
	}
	return removed;
}

void
sb_cgroup_teardown(const struct sb_cgroups *cg)
{
	if (cg->mimic)
		return;
	if (cg->mode == SB_CG_V2) {
		(void)rmdir(cg->v2);
		return;
	}
	(void)rmdir(cg->v1_memory);
	(void)rmdir(cg->v1_pids);
	(void)rmdir(cg->v1_cpu);
}
