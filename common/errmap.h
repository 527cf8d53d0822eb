/*
 * errmap.h - the one table that maps a -errno returned by faasd modules to
 * an HTTP status and the snake_case error code of SPEC §5.
 */
#ifndef FAASD_ERRMAP_H
#define FAASD_ERRMAP_H

struct errmap_entry {
	int err; /* positive errno */
	unsigned status;
	const char *code;
};

/* Returns the entry for -err or err; unknown errors map to 500 internal_error. */
const struct errmap_entry *errmap_lookup(int err);

#endif
