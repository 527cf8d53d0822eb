/*
 * gateway.h - what the parent (daemon/) may call in the gateway: its entry
 * point and the first-start admin token.  Everything else is internal
 * (gw.h).
 */
#ifndef FAASD_GATEWAY_H
#define FAASD_GATEWAY_H

#include <stdbool.h>

#include "config.h"
#include "store.h"

/*
 * gateway_main - run the gateway in the calling (already unprivileged)
 * process: ctl_fd talks to the parent, listen_fd is the bound HTTP socket,
 * worker_fds[i] the data socket of worker i.  Does not return on success.
 */
int gateway_main(struct faasd_config *cfg, int ctl_fd, int listen_fd, const int *worker_fds,
		 unsigned nworkers);

/*
 * auth_bootstrap_admin - when the store has no active admin key, create one
 * and write its token to path (mode 0600, replacing any old file).  Sets
 * *created.  Called by the parent at start, before the gateway runs.
 * 0 or -errno.
 */
int auth_bootstrap_admin(struct store *s, const char *path, bool *created);

#endif
