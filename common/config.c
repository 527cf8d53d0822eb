/*
 * config.c - parse faasd.conf.  Format: one "key = value" per line, '#'
 * starts a comment, blank lines ignored.  Unknown keys and bad values are
 * errors that name the line, so a typo never silently falls back to a
 * default.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#ifndef FAASD_RUNTIME_DIR
#define FAASD_RUNTIME_DIR "/usr/local/lib/faasd/runtimes"
#endif

void
config_defaults(struct faasd_config *c)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	memset(c, 0, sizeof(*c));
	(void)str_copy(c->listen, sizeof(c->listen), "127.0.0.1:8080");
	(void)str_copy(c->state_dir, sizeof(c->state_dir), "/var/lib/faasd");
	(void)str_copy(c->user, sizeof(c->user), "faasd");
	c->workers = cpus > 0 ? (unsigned)cpus : 1;
	c->uid_base = 200000;
	c->uid_count = 65536;
	c->max_body_bytes = 6u << 20;
	c->max_code_bytes = 50u << 20;
	c->max_unpacked_bytes = 250u << 20;
	c->max_code_files = 10000;
	c->max_output_bytes = 6u << 20;
	c->max_log_bytes = 64u << 10;
	c->drain_timeout_s = 30;
	c->pids_max = 64;
	c->cpu_millicores = 1000;
	c->tmp_max_mb = 512;
	c->sandbox_pool = 12;
	c->queue_wait_ms = 10000;
	c->init_timeout_ms = 10000;
	(void)str_copy(c->runtime_dir, sizeof(c->runtime_dir), FAASD_RUNTIME_DIR);
	c->log_level = LOG_INFO;
	c->records = 1;
	c->fast_path = 1;
	c->records_queue = 65536;
	c->retention_days = 7;
	c->report_log = 1;
	c->max_async_body_bytes = 1u << 20;
	c->async_retries = 2;
	c->async_retry_delay_s = 60;
	c->async_runners = 4;
}

struct u64_key {
	const char *key;
	size_t off;
	uint64_t min, max;
};

#define U64K(name, lo, hi)                                         \
	{                                                          \
#name, offsetof(struct faasd_config, name), lo, hi \
	}
static const struct u64_key u64_keys[] = {
	U64K(uid_base, 1000, 4000000000u),
	U64K(uid_count, 1, 1000000),
	U64K(max_body_bytes, 1024, 1u << 30),
	U64K(max_code_bytes, 1024, 1u << 30),
	U64K(max_unpacked_bytes, 1024, 16ull << 30),
	U64K(max_code_files, 1, 1000000),
	U64K(max_output_bytes, 1024, 1u << 30),
	U64K(max_log_bytes, 1024, 16u << 20),
	U64K(drain_timeout_s, 0, 3600),
	U64K(pids_max, 4, 100000),
	U64K(cpu_millicores, 10, 256000),
	U64K(tmp_max_mb, 1, 1048576),
	U64K(sandbox_pool, 0, 64),
	U64K(queue_wait_ms, 0, 900000),
	U64K(init_timeout_ms, 100, 900000),
	U64K(records_queue, 1, 1u << 22),
	U64K(retention_days, 1, 3650),
	U64K(http_loops, 0, 8), /* GW_MAX_LOOPS */
	U64K(max_async_body_bytes, 1024, 1u << 30),
	U64K(async_retries, 0, 10),
	U64K(async_retry_delay_s, 1, 86400),
	U64K(async_runners, 1, 64), /* ASYNC_MAX_RUNNERS */
};

/* Switches: on/off (also yes/no, true/false, 1/0). */
static const struct u64_key bool_keys[] = {
	U64K(records, 0, 1),
	U64K(report_log, 0, 1),
	U64K(fast_path, 0, 1),
};

int
config_set(struct faasd_config *c, const char *key, const char *value, char *diag, size_t n)
{
	uint64_t v;

	for (size_t i = 0; i < ARRAY_SIZE(u64_keys); i++) {
		const struct u64_key *k = &u64_keys[i];

		if (strcmp(key, k->key) != 0)
			continue;
		if (parse_u64(value, k->min, k->max, &v) < 0) {
			(void)str_printf(
				diag, n, "%s: '%.64s' is not a whole number between %llu and %llu",
				key, value, (unsigned long long)k->min, (unsigned long long)k->max);
			return -EINVAL;
		}
		memcpy((char *)c + k->off, &v, sizeof(v));
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(bool_keys); i++) {
		const struct u64_key *k = &bool_keys[i];

		if (strcmp(key, k->key) != 0)
			continue;
		if (str_oneof(value, "on", "yes", "true", "1", NULL))
			v = 1;
		else if (str_oneof(value, "off", "no", "false", "0", NULL))
			v = 0;
		else {
			(void)str_printf(diag, n, "%s: '%.64s' is not on or off", key, value);
			return -EINVAL;
		}
		memcpy((char *)c + k->off, &v, sizeof(v));
		return 0;
	}
	if (strcmp(key, "listen") == 0) {
		const char *colon = strrchr(value, ':');

		if (!colon || colon == value || parse_u64(colon + 1, 0, 65535, &v) < 0 ||
		    str_copy(c->listen, sizeof(c->listen), value) < 0) {
			(void)str_printf(
				diag, n,
				"listen: '%.64s' is not ADDRESS:PORT (e.g. 127.0.0.1:8080)", value);
			return -EINVAL;
		}
		return 0;
	}
	if (strcmp(key, "state_dir") == 0) {
		if (value[0] != '/' || str_copy(c->state_dir, sizeof(c->state_dir), value) < 0) {
			(void)str_printf(diag, n, "state_dir: must be an absolute path");
			return -EINVAL;
		}
		return 0;
	}
	if (strcmp(key, "runtime_dir") == 0) {
		if (value[0] != '/' ||
		    str_copy(c->runtime_dir, sizeof(c->runtime_dir), value) < 0) {
			(void)str_printf(diag, n, "runtime_dir: must be an absolute path");
			return -EINVAL;
		}
		return 0;
	}
	if (strcmp(key, "user") == 0) {
		if (!*value || str_copy(c->user, sizeof(c->user), value) < 0) {
			(void)str_printf(diag, n, "user: must be an account name");
			return -EINVAL;
		}
		return 0;
	}
	if (strcmp(key, "workers") == 0) {
		if (parse_u64(value, 1, 64, &v) < 0) {
			(void)str_printf(diag, n,
					 "workers: '%.64s' is not a number between 1 and 64",
					 value);
			return -EINVAL;
		}
		c->workers = (unsigned)v;
		return 0;
	}
	if (strcmp(key, "log_level") == 0) {
		int l = log_level_parse(value);

		if (l < 0) {
			(void)str_printf(
				diag, n,
				"log_level: '%.64s' is not one of debug, info, notice, warning, err",
				value);
			return -EINVAL;
		}
		c->log_level = l;
		return 0;
	}
	(void)str_printf(diag, n, "unknown setting '%.64s'", key);
	return -EINVAL;
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = 0;
	return s;
}

int
config_load(struct faasd_config *c, const char *path, char *diag, size_t n)
{
	_cleanup_free_ char *text = NULL;
	char *line, *next;
	unsigned lineno = 0;
	int r;

	r = read_file_bounded(path, 1u << 20, &text, NULL);
	if (r < 0) {
		(void)str_printf(diag, n, "%s: %s", path, strerror(-r));
		return r;
	}
	for (line = text; line; line = next) {
		char *eq, *key, *val, sub[192];

		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		lineno++;
		if (strchr(line, '#'))
			*strchr(line, '#') = 0;
		key = trim(line);
		if (!*key)
			continue;
		eq = strchr(key, '=');
		if (!eq) {
			(void)str_printf(diag, n, "%s:%u: expected 'key = value'", path, lineno);
			return -EINVAL;
		}
		*eq = 0;
		val = trim(eq + 1);
		key = trim(key);
		if (config_set(c, key, val, sub, sizeof(sub)) < 0) {
			(void)str_printf(diag, n, "%s:%u: %s", path, lineno, sub);
			return -EINVAL;
		}
	}
	return 0;
}
