/*
 * privdrop.c - make the gateway unprivileged (run in the gateway child right
 * after fork, before it parses a single byte from the network).
 *
 * INVARIANT: when this returns 0 the process has a non-root uid/gid, no
 * supplementary groups, empty effective/permitted/inheritable/ambient and
 * bounding capability sets, no_new_privs, and a seccomp filter that refuses
 * exec, ptrace, mounts, namespaces, module/kexec/bpf/perf and similar calls
 * the gateway never needs.
 */
#include <errno.h>
#include <grp.h>
#include <seccomp.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "daemon.h"
#include "util.h"

static int
seccomp_gateway(void)
{
	static const int denied[] = {
		SCMP_SYS(execve),
		SCMP_SYS(execveat),
		SCMP_SYS(ptrace),
		SCMP_SYS(process_vm_readv),
		SCMP_SYS(process_vm_writev),
		SCMP_SYS(mount),
		SCMP_SYS(umount2),
		SCMP_SYS(pivot_root),
		SCMP_SYS(chroot),
		SCMP_SYS(unshare),
		SCMP_SYS(setns),
		SCMP_SYS(kexec_load),
		SCMP_SYS(kexec_file_load),
		SCMP_SYS(init_module),
		SCMP_SYS(finit_module),
		SCMP_SYS(delete_module),
		SCMP_SYS(bpf),
		SCMP_SYS(perf_event_open),
		SCMP_SYS(keyctl),
		SCMP_SYS(add_key),
		SCMP_SYS(request_key),
		SCMP_SYS(reboot),
		SCMP_SYS(swapon),
		SCMP_SYS(swapoff),
		SCMP_SYS(settimeofday),
		SCMP_SYS(clock_settime),
		SCMP_SYS(clock_adjtime),
		SCMP_SYS(adjtimex),
		SCMP_SYS(personality),
		SCMP_SYS(userfaultfd),
		SCMP_SYS(io_uring_setup),
		SCMP_SYS(io_uring_enter),
		SCMP_SYS(io_uring_register),
		SCMP_SYS(open_by_handle_at),
		SCMP_SYS(name_to_handle_at),
		SCMP_SYS(acct),
		SCMP_SYS(fsopen),
		SCMP_SYS(fsmount),
		SCMP_SYS(move_mount),
		SCMP_SYS(open_tree),
	};
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int r = 0;

	if (!ctx)
		return -ENOMEM;
	for (size_t i = 0; i < ARRAY_SIZE(denied) && r == 0; i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), denied[i], 0);
	/* Foreign ABIs are killed outright. */
	if (r == 0)
		r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (r == 0)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	return r;
}

int
privdrop_gateway(uid_t uid, gid_t gid)
{
	cap_t none;
	int r;

	if (uid == 0 || gid == 0)
		return -EPERM;
	for (int c = 0; c <= CAP_LAST_CAP; c++)
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			return -errno;
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
		return -errno;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -errno;
	none = cap_init();
	if (!none)
		return -ENOMEM;
	r = cap_set_proc(none);
	cap_free(none);
	if (r < 0)
		return -errno;
	if (getuid() == 0 || geteuid() == 0)
		return -EPERM;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	return seccomp_gateway();
}
