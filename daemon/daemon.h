/*
 * daemon.h - helpers of the parent process (daemon/): systemd notification
 * and the gateway's privilege drop.
 */
#ifndef FAASD_DAEMON_H
#define FAASD_DAEMON_H

#include <sys/types.h>

/* Send state to $NOTIFY_SOCKET.  1 sent, 0 no socket, -errno on failure. */
int sd_notify_send(const char *state);

/*
 * privdrop_gateway - turn the calling (root) process into the unprivileged
 * gateway: empty the capability bounding set, switch to uid/gid with no
 * supplementary groups, drop every capability, set no_new_privs and install
 * the gateway's seccomp filter.  0 or -errno; on failure the caller exits.
 */
int privdrop_gateway(uid_t uid, gid_t gid);

#endif
