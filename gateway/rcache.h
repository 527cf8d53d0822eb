/*
 * rcache.h - the gateway's route cache (see rcache.c): what serves
 * tenant/function[:qualifier], without SQLite while nothing changed.
 */
#ifndef FAASD_RCACHE_H
#define FAASD_RCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct rcache;

/* A cache of nslots entries.  0 or -errno. */
int rcache_new(size_t nslots, struct rcache **out);
void rcache_free(struct rcache *c);

/*
 * rcache_resolve - the tenant, then the version serving fn under alias (or
 * version > 0 with alias NULL), as store_tenant_get + store_route_resolve
 * would answer now: a weighted alias picks its version per call, by the
 * bucket of route_key (X-Faas-Route-Key) or at random when it is NULL.  Fills *t and *out (out->config is a reference the caller
 * drops).  0, -ENOENT when the tenant, function, alias or version does not
 * exist, or -errno.  Thread-safe.
 */
int rcache_resolve(struct rcache *c, struct store *s, const char *tenant, const char *fn,
		   const char *alias, int64_t version, const char *route_key,
		   struct store_tenant *t, struct store_route *out);

/* The bucket 0..99 of a route key: the same key, the same bucket, in every
 * process and release (weights are laid over buckets in order). */
unsigned rcache_bucket(const char *route_key);

/* Lookups answered from the cache and from the store, so far. */
void rcache_stats(struct rcache *c, uint64_t *hits, uint64_t *misses);

#endif
