/*
 * records_store.c - how many invocation records per second the store
 * writes, sustained: the record writer's own work (batches of 1024 in one
 * transaction) into a fresh database for SECONDS (argv[2], default 3),
 * once with records without output (a warm call of a quiet handler) and
 * once with a 200-byte stderr log each.  Prints per kind "records_per_s=N
 * cpu_us_per_record=X": the CPU time is this process's, steadier than the
 * rate on a machine whose neighbours steal time.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "util.h"

static double
cpu_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Write batches for secs seconds; logged: each record has a stderr log. */
static int
run(struct store *s, double secs, bool logged, uint64_t *serial)
{
	static struct store_record recs[1024];
	static char log[200];
	uint64_t t0 = now_mono_us(), n = 0;
	double c0 = cpu_s();

	memset(log, 'x', sizeof(log));
	while (now_mono_us() - t0 < (uint64_t)(secs * 1e6)) {
		for (int i = 0; i < 1024; i++) {
			struct store_record *r = &recs[i];
			uint64_t k = (*serial)++;

			memset(r, 0, sizeof(*r));
			/* time-ordered, as the gateway's UUIDv7 ids */
			snprintf(r->id, sizeof(r->id), "%08llx-%04llx-7000-8000-%012llx",
				 (unsigned long long)(k >> 16 & 0xffffffffu),
				 (unsigned long long)(k & 0xffff),
				 (unsigned long long)k * 2654435761u % 1000000000000ull);
			r->tenant_id = 1 + i % 4;
			snprintf(r->function, sizeof(r->function), "fn%d", i % 8);
			r->version = 1;
			snprintf(r->alias, sizeof(r->alias), "live");
			r->trigger = "http";
			r->started_us = (int64_t)now_wall_us();
			r->duration_us = 800;
			r->billed_ms = 1;
			r->status = "ok";
			r->http_status = 200;
			r->mem_limit_mb = 128;
			if (logged) {
				r->err = log;
				r->err_len = sizeof(log);
			}
		}
		if (store_records_insert(s, recs, 1024) < 0) {
			fprintf(stderr, "insert: %s\n", store_errmsg(s));
			return -1;
		}
		n += 1024;
	}
	printf("%s records_per_s=%.0f cpu_us_per_record=%.2f\n",
	       logged ? "with a 200-byte log:" : "without output:    ",
	       (double)n / ((double)(now_mono_us() - t0) / 1e6), (cpu_s() - c0) * 1e6 / (double)n);
	return 0;
}

int
main(int argc, char **argv)
{
	char path[512], diag[512];
	struct store *s;
	double secs = argc > 2 ? strtod(argv[2], NULL) : 3;
	uint64_t serial = 0;
	int r;

	if (argc < 2) {
		fprintf(stderr, "usage: records_store DIR [SECONDS]\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/bench.db", argv[1]);
	if (store_open(path, &s, diag, sizeof(diag)) < 0) {
		fprintf(stderr, "%s\n", diag);
		return 1;
	}
	r = run(s, secs, false, &serial);
	if (r == 0)
		r = run(s, secs, true, &serial);
	store_close(s);
	return r == 0 ? 0 : 1;
}
