/*
 * config.h - faasd's own settings: defaults, the config file
 * (/etc/faasd/faasd.conf, "key = value" lines) and command-line overrides.
 * Parsed by the parent; the reloadable part reaches children as MSG_CONFIG.
 */
#ifndef FAASD_CONFIG_H
#define FAASD_CONFIG_H

#include <limits.h>
#include <stdint.h>
#include <stddef.h>

struct faasd_config {
	char listen[128];
	char state_dir[PATH_MAX];
	char user[64]; /* account the gateway runs as */
	unsigned workers;
	uint64_t uid_base;  /* first host uid handed to tenants */
	uint64_t uid_count; /* how many tenant uids there are */
	uint64_t max_body_bytes;
	uint64_t max_code_bytes;
	uint64_t max_unpacked_bytes;
	uint64_t max_code_files;
	uint64_t max_output_bytes;
	uint64_t max_log_bytes;
	uint64_t drain_timeout_s;
	uint64_t pids_max;             /* processes per instance */
	uint64_t cpu_millicores;       /* CPU per instance, 1000 = one CPU */
	uint64_t tmp_max_mb;           /* /tmp size cap (also at most half the memory) */
	uint64_t sandbox_pool;         /* blank sandboxes kept ready per worker */
	uint64_t queue_wait_ms;        /* how long an invocation waits for a hot instance */
	uint64_t init_timeout_ms;      /* a hot instance must accept within this */
	char runtime_dir[PATH_MAX];    /* python3/node shims, shown at /var/runtime */
	uint64_t records;              /* 1: keep a record per invocation (SPEC §7) */
	uint64_t fast_path;            /* 1: warm /fn/ requests skip libmicrohttpd */
	uint64_t records_queue;        /* records waiting for the writer, at most */
	uint64_t retention_days;       /* records older than this are pruned */
	uint64_t report_log;           /* 1: a REPORT line per invocation in the log */
	uint64_t http_loops;           /* the gateway's event loops; 0: half the CPUs */
	uint64_t max_async_body_bytes; /* request body of an async invocation */
	uint64_t async_retries;        /* attempts after the first that failed */
	uint64_t async_retry_delay_s;  /* before the first retry; doubled after */
	uint64_t async_runners;        /* async invocations run at once */
	int log_level;
};

/* Fill the SPEC §10 defaults (workers = number of CPUs). */
void config_defaults(struct faasd_config *c);

/*
 * config_load - apply the file at path on top of *c.  Returns 0, -ENOENT when
 * the file does not exist (the caller decides whether that matters), or
 * -EINVAL with diag naming the line and key.
 */
int config_load(struct faasd_config *c, const char *path, char *diag, size_t n);

/* config_set - apply one key/value (file line or flag).  0 or -EINVAL + diag. */
int config_set(struct faasd_config *c, const char *key, const char *value, char *diag, size_t n);

#endif
