/*
 * records_store.c - how many invocation records per second the store
 * writes, sustained: the record writer's own work (batches of 1024 in one
 * transaction, each record with a 200-byte stderr log) into a fresh
 * database for SECONDS (argv[2], default 3).  Prints "records_per_s=N".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "util.h"

int
main(int argc, char **argv)
{
	char path[512], diag[512], log[200];
	struct store *s;
	struct store_record recs[1024];
	double secs = argc > 2 ? strtod(argv[2], NULL) : 3;
	uint64_t t0, n = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: records_store DIR [SECONDS]\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/bench.db", argv[1]);
	if (store_open(path, &s, diag, sizeof(diag)) < 0) {
		fprintf(stderr, "%s\n", diag);
		return 1;
	}
	memset(log, 'x', sizeof(log));
	t0 = now_mono_us();
	while (now_mono_us() - t0 < (uint64_t)(secs * 1e6)) {
		for (int i = 0; i < 1024; i++) {
			struct store_record *r = &recs[i];

			memset(r, 0, sizeof(*r));
			snprintf(r->id, sizeof(r->id), "%08llx-0000-4000-8000-000000000000",
				 (unsigned long long)(n + (uint64_t)i));
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
			r->err = log;
			r->err_len = sizeof(log);
		}
		if (store_records_insert(s, recs, 1024) < 0) {
			fprintf(stderr, "insert: %s\n", store_errmsg(s));
			return 1;
		}
		n += 1024;
	}
	printf("records_per_s=%.0f\n", (double)n / ((double)(now_mono_us() - t0) / 1e6));
	store_close(s);
	return 0;
}
