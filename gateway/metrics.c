/*
 * metrics.c - the gateway's Prometheus figures (GET /metrics, admin keys).
 *
 * Invocation counters and duration histograms live in a hash table of
 * series, one per tenant/function/version, updated by invoke_report under a
 * short mutex; HTTP answers are counted per status code in atomics from the
 * request-completed callback.  Rendering (an API thread) copies nothing but
 * the text it writes.  INVARIANT: the number of series is bounded
 * (METRICS_MAX_SERIES); invocations of versions past it count in one
 * overflow series labelled tenant="", so a tenant cannot grow the table
 * without end by deploying versions.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw.h"
#include "util.h"
#include "version.h"

#define METRICS_BUCKETS    1024
#define METRICS_MAX_SERIES 20000

enum { ST_OK, ST_ERROR, ST_TIMEOUT, ST_OOM, ST_THROTTLED, ST_N };
static const char *const status_names[ST_N] = { "ok", "error", "timeout", "oom", "throttled" };

/* Upper bounds of the duration histogram, seconds. */
static const double bounds[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
				 0.25,  0.5,    1,     2.5,  5,     10,   30 };
#define NBOUNDS (sizeof(bounds) / sizeof(bounds[0]))

struct mseries {
	char tenant[64], function[64];
	int64_t version;
	uint64_t count[ST_N];
	uint64_t cold;
	uint64_t buckets[NBOUNDS + 1]; /* the last one is +Inf */
	uint64_t sum_us;
	struct mseries *next;
};

struct metrics {
	pthread_mutex_t lock;
	struct mseries *table[METRICS_BUCKETS];
	struct mseries overflow;
	unsigned nseries;
	_Atomic uint64_t http[600];
	_Atomic uint64_t fast[METRICS_FAST_N];
	uint64_t start_wall_s;
};

void
metrics_fast(struct gw *g, unsigned what)
{
	if (g->metrics && what < METRICS_FAST_N)
		atomic_fetch_add_explicit(&g->metrics->fast[what], 1, memory_order_relaxed);
}

int
metrics_new(struct gw *g)
{
	struct metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	m->start_wall_s = now_wall_ms() / 1000;
	g->metrics = m;
	return 0;
}

void
metrics_invocation(struct gw *g, const char *tenant, const char *fn, int64_t version,
		   const char *status, uint64_t dur_us, bool cold)
{
	struct metrics *m = g->metrics;
	struct mseries *s;
	unsigned h = hash_fn_version(tenant, fn, version) % METRICS_BUCKETS, st = ST_ERROR, b = 0;

	if (!m)
		return;
	for (unsigned i = 0; i < ST_N; i++)
		if (strcmp(status, status_names[i]) == 0)
			st = i;
	while (b < NBOUNDS && (double)dur_us / 1e6 > bounds[b])
		b++;
	pthread_mutex_lock(&m->lock);
	for (s = m->table[h]; s; s = s->next)
		if (s->version == version && strcmp(s->function, fn) == 0 &&
		    strcmp(s->tenant, tenant) == 0)
			break;
	if (!s && m->nseries < METRICS_MAX_SERIES && (s = calloc(1, sizeof(*s)))) {
		(void)str_copy(s->tenant, sizeof(s->tenant), tenant);
		(void)str_copy(s->function, sizeof(s->function), fn);
		s->version = version;
		s->next = m->table[h];
		m->table[h] = s;
		m->nseries++;
	}
	if (!s)
		s = &m->overflow;
	s->count[st]++;
	s->cold += cold;
	s->buckets[b]++;
	s->sum_us += dur_us;
	pthread_mutex_unlock(&m->lock);
}

void
metrics_http(struct gw *g, unsigned code)
{
	if (g->metrics && code < 600)
		atomic_fetch_add_explicit(&g->metrics->http[code], 1, memory_order_relaxed);
}

/* A growing text buffer; err sticks once an allocation fails. */
struct text {
	char *p;
	size_t len, cap;
	bool err;
};

static void __attribute__((format(printf, 2, 3))) put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->err)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->err = true;
			return;
		}
		if ((size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = MAX(t->cap * 2, t->len + (size_t)n + 4096);
		char *p = realloc(t->p, cap);

		if (!p) {
			t->err = true;
			return;
		}
		t->p = p;
		t->cap = cap;
	}
}

static void
series_text(struct text *t, const struct mseries *s)
{
	char labels[200];
	uint64_t total = 0, cum = 0;

	(void)str_printf(labels, sizeof(labels), "tenant=\"%s\",function=\"%s\",version=\"%lld\"",
			 s->tenant, s->function, (long long)s->version);
	for (unsigned i = 0; i < ST_N; i++) {
		total += s->count[i];
		if (s->count[i])
			put(t, "faasd_invocations_total{%s,status=\"%s\"} %llu\n", labels,
			    status_names[i], (unsigned long long)s->count[i]);
	}
	if (!total)
		return;
	put(t, "faasd_cold_starts_total{%s} %llu\n", labels, (unsigned long long)s->cold);
	for (unsigned b = 0; b <= NBOUNDS; b++) {
		cum += s->buckets[b];
		if (b < NBOUNDS)
			put(t, "faasd_invocation_duration_seconds_bucket{%s,le=\"%g\"} %llu\n",
			    labels, bounds[b], (unsigned long long)cum);
		else
			put(t, "faasd_invocation_duration_seconds_bucket{%s,le=\"+Inf\"} %llu\n",
			    labels, (unsigned long long)cum);
	}
	put(t, "faasd_invocation_duration_seconds_sum{%s} %.6f\n", labels, (double)s->sum_us / 1e6);
	put(t, "faasd_invocation_duration_seconds_count{%s} %llu\n", labels,
	    (unsigned long long)total);
}

static unsigned
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	unsigned n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n > 0 ? n - 1 : 0; /* not the directory's own fd */
}

static uint64_t
rss_bytes(void)
{
	char buf[128];
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	ssize_t n;
	char *end;
	unsigned long long rss;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	/* statm: size resident shared …, in pages */
	(void)strtoull(buf, &end, 10);
	rss = strtoull(end, &end, 10);
	return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

int
metrics_render(struct gw *g, char **out, size_t *len)
{
	struct metrics *m = g->metrics;
	struct text t = { 0 };
	struct records_stats rs;
	unsigned starting = 0, idle = 0, busy = 0, cold = 0;
	uint64_t async[4];

	if (!m)
		return -ENOENT;
	put(&t,
	    "# HELP faasd_build_info The faasd release serving.\n"
	    "# TYPE faasd_build_info gauge\n"
	    "faasd_build_info{version=\"%s\"} 1\n",
	    FAASD_VERSION);
	put(&t, "# HELP faasd_invocations_total Invocations by outcome.\n"
		"# TYPE faasd_invocations_total counter\n"
		"# HELP faasd_cold_starts_total Invocations that started their sandbox or "
		"instance.\n"
		"# TYPE faasd_cold_starts_total counter\n"
		"# HELP faasd_invocation_duration_seconds Time from dispatch to answer.\n"
		"# TYPE faasd_invocation_duration_seconds histogram\n");
	pthread_mutex_lock(&m->lock);
	for (unsigned h = 0; h < METRICS_BUCKETS; h++)
		for (const struct mseries *s = m->table[h]; s; s = s->next)
			series_text(&t, s);
	series_text(&t, &m->overflow);
	pthread_mutex_unlock(&m->lock);

	hot_count(g, &starting, &idle, &busy);
	pthread_mutex_lock(&g->lock);
	for (unsigned i = 0; i < g->nworkers; i++)
		cold += g->workers[i].inflight;
	pthread_mutex_unlock(&g->lock);
	put(&t,
	    "# HELP faasd_instances Sandboxes now: hot instances by state, and cold "
	    "(exec) invocations running.\n"
	    "# TYPE faasd_instances gauge\n"
	    "faasd_instances{state=\"starting\"} %u\n"
	    "faasd_instances{state=\"idle\"} %u\n"
	    "faasd_instances{state=\"busy\"} %u\n"
	    "faasd_instances{state=\"cold\"} %u\n",
	    starting, idle, busy, cold);

	put(&t,
	    "# HELP faasd_http_fast_path_total The fast path: requests it answered, "
	    "connections it handed to libmicrohttpd at once and later (tunneled).\n"
	    "# TYPE faasd_http_fast_path_total counter\n"
	    "faasd_http_fast_path_total{outcome=\"answered\"} %llu\n"
	    "faasd_http_fast_path_total{outcome=\"handed_over\"} %llu\n"
	    "faasd_http_fast_path_total{outcome=\"tunneled\"} %llu\n",
	    (unsigned long long)atomic_load(&m->fast[METRICS_FAST_ANSWERED]),
	    (unsigned long long)atomic_load(&m->fast[METRICS_FAST_HANDED_OVER]),
	    (unsigned long long)atomic_load(&m->fast[METRICS_FAST_TUNNELED]));
	put(&t, "# HELP faasd_http_requests_total HTTP answers by status code.\n"
		"# TYPE faasd_http_requests_total counter\n");
	for (unsigned c = 100; c < 600; c++) {
		uint64_t n = atomic_load_explicit(&m->http[c], memory_order_relaxed);

		if (n)
			put(&t, "faasd_http_requests_total{code=\"%u\"} %llu\n", c,
			    (unsigned long long)n);
	}

	records_stats(g, &rs);
	put(&t,
	    "# HELP faasd_records_written_total Invocation records written to the store.\n"
	    "# TYPE faasd_records_written_total counter\n"
	    "faasd_records_written_total %llu\n"
	    "# HELP faasd_records_dropped_total Invocation records dropped: the writer's "
	    "queue was full.\n"
	    "# TYPE faasd_records_dropped_total counter\n"
	    "faasd_records_dropped_total %llu\n"
	    "# HELP faasd_records_failed_total Invocation records SQLite refused.\n"
	    "# TYPE faasd_records_failed_total counter\n"
	    "faasd_records_failed_total %llu\n"
	    "# HELP faasd_records_queued Invocation records waiting for the writer.\n"
	    "# TYPE faasd_records_queued gauge\n"
	    "faasd_records_queued %llu\n",
	    (unsigned long long)rs.written, (unsigned long long)rs.dropped,
	    (unsigned long long)rs.failed, (unsigned long long)rs.queued);

	if (store_async_counts(g->store, async) == 0)
		put(&t,
		    "# HELP faasd_async_invocations Async and scheduled invocations by state "
		    "(failed: the dead letter).\n"
		    "# TYPE faasd_async_invocations gauge\n"
		    "faasd_async_invocations{state=\"queued\"} %llu\n"
		    "faasd_async_invocations{state=\"running\"} %llu\n"
		    "faasd_async_invocations{state=\"succeeded\"} %llu\n"
		    "faasd_async_invocations{state=\"failed\"} %llu\n",
		    (unsigned long long)async[0], (unsigned long long)async[1],
		    (unsigned long long)async[2], (unsigned long long)async[3]);

	put(&t,
	    "# HELP process_open_fds Open file descriptors of the gateway.\n"
	    "# TYPE process_open_fds gauge\n"
	    "process_open_fds %u\n"
	    "# HELP process_resident_memory_bytes Resident memory of the gateway.\n"
	    "# TYPE process_resident_memory_bytes gauge\n"
	    "process_resident_memory_bytes %llu\n"
	    "# HELP process_start_time_seconds When the gateway started, Unix time.\n"
	    "# TYPE process_start_time_seconds gauge\n"
	    "process_start_time_seconds %llu\n",
	    open_fds(), (unsigned long long)rss_bytes(), (unsigned long long)m->start_wall_s);
	if (t.err) {
		free(t.p);
		return -ENOMEM;
	}
	*out = t.p;
	*len = t.len;
	return 0;
}
