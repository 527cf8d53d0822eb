/*
 * gw.h - internal interfaces of the gateway process (not for worker/ or
 * daemon/, which only see gateway_main()).
 *
 * The gateway faces the network without privilege: it runs as the faasd
 * user with no capabilities, parses HTTP (libmicrohttpd), authenticates,
 * validates, owns the SQLite store and hands invocations to workers as
 * MSG_INVOKE messages.
 */
#ifndef FAASD_GW_H
#define FAASD_GW_H

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "gateway.h"
#include "msg.h"
#include "rcache.h"
#include "store.h"
#include "util.h"

#define GW_MAX_WORKERS   64
#define GW_JSON_BODY_MAX (1u << 20) /* API request bodies */

/* ---- route.c: URL → endpoint ---- */

enum route_kind {
	ROUTE_NONE = 0,
	ROUTE_HEALTHZ,
	ROUTE_READYZ,
	ROUTE_WHOAMI,
	ROUTE_TENANTS,          /* /v1/tenants */
	ROUTE_TENANT,           /* /v1/tenants/{t} */
	ROUTE_KEYS,             /* /v1/tenants/{t}/keys */
	ROUTE_KEY,              /* /v1/tenants/{t}/keys/{id} */
	ROUTE_CODE,             /* /v1/tenants/{t}/code/{sha256} */
	ROUTE_FUNCTIONS,        /* /v1/tenants/{t}/functions */
	ROUTE_FUNCTION,         /* /v1/tenants/{t}/functions/{f} */
	ROUTE_VERSIONS,         /* …/functions/{f}/versions */
	ROUTE_VERSION,          /* …/functions/{f}/versions/{n} */
	ROUTE_ALIASES,          /* …/functions/{f}/aliases */
	ROUTE_ALIAS,            /* …/functions/{f}/aliases/{a} */
	ROUTE_ALIAS_ROLLBACK,   /* …/aliases/{a}/rollback */
	ROUTE_DEPLOYMENTS,      /* …/functions/{f}/deployments */
	ROUTE_DEPLOYMENT,       /* …/deployments/{id} */
	ROUTE_DEPLOYMENT_ABORT, /* …/deployments/{id}/abort */
	ROUTE_INVOCATIONS,      /* /v1/tenants/{t}/invocations */
	ROUTE_INVOCATION,       /* /v1/tenants/{t}/invocations/{id} */
	ROUTE_LOGS,             /* …/functions/{f}/logs */
	ROUTE_METRICS,          /* /metrics */
	ROUTE_INVOKE,           /* /fn/{t}/{f}[:{q}][/{path}] */
	ROUTE_ASYNC_INVOKE,     /* /async/{t}/{f}[:{q}][/{path}] */
	ROUTE_ASYNC_LIST,       /* /v1/tenants/{t}/async */
	ROUTE_ASYNC_ONE,        /* /v1/tenants/{t}/async/{id} */
	ROUTE_ASYNC_REDRIVE,    /* /v1/tenants/{t}/async/{id}/redrive */
	ROUTE_NOT_YET,          /* part of SPEC §5 that this build does not serve */
};

struct route {
	enum route_kind kind;
	char tenant[64];
	char function[64];
	char qualifier[64]; /* alias name, or version digits; "" for none */
	int64_t version;    /* qualifier as a number, 0 when it is an alias */
	char sub[80];       /* key id, sha256, version number or alias name */
	int64_t id;         /* deployment id */
	const char *rest;   /* ROUTE_[ASYNC_]INVOKE: path after the function ("" or "/…") */
};

/*
 * route_parse - classify a decoded URL path.  Returns 0 with *r filled,
 * -ENOENT for an unknown path, or -EINVAL with diag naming the bad segment
 * (invalid tenant/function/alias name, bad digest…).  r->rest points into
 * path.
 */
int route_parse(const char *path, struct route *r, char *diag, size_t n);

/* ---- auth.c: tokens and the key cache ---- */

enum scope {
	SCOPE_NONE = 0,
	SCOPE_INVOKE,
	SCOPE_DEPLOY,
	SCOPE_OWNER,
	SCOPE_ADMIN,
};

struct principal {
	enum scope scope;
	int64_t tenant_id; /* 0 for admin */
	char tenant[64];
	char key_id[32];
};

struct auth_cache;

/* Build the cache from every active key in the store.  0 or -errno. */
int auth_cache_new(struct store *s, struct auth_cache **out);
void auth_cache_free(struct auth_cache *c);
/* Reload from the store (after a key or tenant change).  0 or -errno. */
int auth_cache_reload(struct auth_cache *c, struct store *s);

/*
 * auth_lookup - find the principal of a bearer token.  Hashes the token and
 * compares hashes in constant time.  Returns 0 or -EACCES (unknown/revoked).
 * Thread-safe; reads no disk.
 */
int auth_lookup(struct auth_cache *c, const char *token, struct principal *p);

/*
 * auth_token_new - make a token "fsk_" + 43 base64url chars from 32 random
 * bytes, its SHA-256 and a public key id "key_" + 16 hex.  0 or -errno.
 */
int auth_token_new(char token[64], uint8_t hash[32], char id[32]);
void auth_token_hash(const char *token, uint8_t hash[32]);
const char *scope_name(enum scope s);
enum scope scope_parse(const char *s);

/* ---- cgi.c: CGI response headers of exec handlers ---- */

#define CGI_MAX_HEADERS 32

struct cgi_header {
	char name[64];
	char value[512];
};

struct cgi_resp {
	unsigned status;
	size_t body_offset; /* where the body starts in the output */
	unsigned nheaders;
	struct cgi_header headers[CGI_MAX_HEADERS]; /* Content-Type included */
	bool has_content_type;
};

/*
 * cgi_parse - parse the start of a handler's stdout.  buf holds the first
 * len bytes (at most 16 KiB are looked at).  Output that does not start
 * with a header block is all body (status 200).  Returns 0, or -EBADMSG
 * with diag for a header block that is malformed (bad Status:, too many or
 * too long headers).
 */
int cgi_parse(const char *buf, size_t len, struct cgi_resp *out, char *diag, size_t n);

/* ---- hproxy.c: HTTP/1.1 from hot handlers ---- */

#define HRESP_HEAD_MAX    (64u * 1024u)
#define HRESP_MAX_HEADERS 64

enum hresp_framing {
	HRESP_LENGTH = 1,  /* content_length bytes (0 for HEAD, 204, 304) */
	HRESP_CHUNKED,     /* chunked transfer coding */
	HRESP_UNTIL_CLOSE, /* the body ends when the handler closes */
};

struct hresp {
	unsigned status;
	size_t head_len; /* status line + fields + the empty line */
	int64_t content_length;
	enum hresp_framing framing;
	bool chunked;
	bool close; /* the connection cannot carry another request */
	unsigned nheaders;
	struct {
		uint32_t name_off, name_len, value_off, value_len; /* into the buffer */
	} h[HRESP_MAX_HEADERS];
};

/*
 * hresp_parse_head - parse the response head at the start of buf (len
 * bytes so far).  head_request: the request was HEAD (no body follows).
 * Returns 1 with *out filled, 0 when more bytes are needed, or -EBADMSG
 * with diag saying what is wrong (also for a head over HRESP_HEAD_MAX).
 */
int hresp_parse_head(const char *buf, size_t len, bool head_request, struct hresp *out, char *diag,
		     size_t n);

enum hchunk_state { HCHUNK_SIZE = 0, HCHUNK_DATA, HCHUNK_DATA_END, HCHUNK_TRAILER, HCHUNK_DONE };

/* Decoder state of a chunked body; zero-initialised to start. */
struct hchunk {
	enum hchunk_state state;
	uint64_t left; /* bytes left in the current chunk */
	size_t raw;    /* bytes of buf consumed */
	size_t dec;    /* decoded bytes, at the start of buf */
};

/*
 * hchunk_decode - decode in place: buf[0, len) holds the body bytes
 * received so far (decoded ones first, then raw ones from c->raw on).
 * Decoded data collects at buf[0, c->dec).  Returns 1 when the last chunk
 * and trailer are in, 0 when more is needed, -EBADMSG on bad framing.
 */
int hchunk_decode(struct hchunk *c, char *buf, size_t len);

/* ---- fasthead.c: request heads the fast path serves (fast.c) ---- */

#define FAST_HEAD_MAX    16384u
#define FAST_MAX_HEADERS 64

enum { FAST_HEAD_DECLINE = -1, FAST_HEAD_MORE = 0, FAST_HEAD_OK = 1 };

struct fast_head {
	size_t head_len; /* request line + fields + the empty line */
	char *method;    /* NUL-terminated in the buffer */
	char *target;    /* the request target as sent, NUL-terminated */
	size_t target_len;
	uint64_t content_length;
	bool close; /* Connection: close */
	unsigned nheaders;
	struct {
		char *name, *value; /* NUL-terminated in the buffer */
	} h[FAST_MAX_HEADERS];
};

/*
 * Parse the head at buf[0, len) in place (NULs end the method, target,
 * names and values).  FAST_HEAD_OK: h is filled; FAST_HEAD_MORE: no empty
 * line yet; FAST_HEAD_DECLINE: not a head the fast path serves (libmicrohttpd
 * gets it).  buf must stay put while h is used.
 */
int fast_head_parse(char *buf, size_t len, struct fast_head *h);
/* The value of field name (case-insensitive), or NULL. */
const char *fast_head_get(const struct fast_head *h, const char *name);
/* Could the first bytes of a connection, buf[0, len), be a /fn/ request? */
bool fast_head_start(const char *buf, size_t len);

/* ---- code.c: code archives ---- */

struct code_limits {
	uint64_t max_unpacked;
	uint64_t max_files;
};

struct code_stats {
	uint64_t unpacked;
	uint64_t files;
};

/*
 * code_unpack - unpack the gzip tar open at fd into directory dest, a path
 * relative to the working directory (the gateway runs in its state dir;
 * absolute paths are refused like absolute entries); dest must not exist
 * and is created 0755.  Refuses absolute paths, '..', device
 * nodes, FIFOs, setuid/setgid bits, sparse files and links that leave the
 * tree; enforces the limits.  On failure dest is removed, diag names the
 * entry and -EBADMSG (bad archive) or -EFBIG (limit) is returned.
 */
int code_unpack(int fd, const char *dest, const struct code_limits *lim, struct code_stats *st,
		char *diag, size_t n);

/* Remove a directory tree (no symlinks followed).  0 or -errno. */
int code_rmtree(const char *path);

/* ---- the gateway itself ---- */

#define GW_ROUTE_CACHE_SLOTS 4096

struct gw_worker {
	int fd;            /* data socket, -1 while the worker is down */
	unsigned inflight; /* invocations sent and not answered */
	unsigned hot;      /* hot instances living there */
};

struct req;
struct deployer;
struct hpool;
struct hinst;
struct hconn;
struct hlog;
struct follower;
struct follows;

/* The hot-instance table (hot.c), under gw.lock. */
#define HOT_BUCKETS 1024
struct hot {
	struct hpool *buckets[HOT_BUCKETS];
	uint64_t next_id;
	uint64_t warm_gen; /* store generation of the last min_instances scan */
	bool warm_scanned;
	/* Moves whenever an instance goes idle, gets ready or dies: a pool
	 * whose start a cap refused tries again only once it moved. */
	uint64_t room_gen;
};

/*
 * An event loop of the gateway: one MHD daemon in external-epoll mode
 * (all of them accept on the listen socket) and the hot-instance
 * connections of the requests it serves, in one epoll set, one thread.
 */
#define GW_MAX_LOOPS 8
struct gw_loop {
	struct gw *gw;
	unsigned index;
	struct MHD_Daemon *mhd;
	int epfd;
	int wake_fd; /* eventfd: drain starts */
	pthread_t thread;
	_Atomic uint64_t epoch; /* batches of events handled (hot.c frees by it) */
	int listen_fd;
	bool listening;    /* listen_fd is in epfd */
	struct fconn *fcs; /* its fast connections (fast.c) */
	unsigned nfcs;
	pthread_mutex_t ready_lock;
	struct req *ready; /* fast requests with their answer ready (ready_lock) */
	atomic_bool any_ready;
	uint64_t next_sweep_us;
	char date[40]; /* "Date: ..." of the second date_s */
	int64_t date_s;
};

/* Blocking work (API calls, code uploads) runs on these threads, so an
 * event loop never waits for SQLite or libarchive. */
#define GW_WORK_THREADS 2
struct gw_work {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct req *head, *tail;
	pthread_t threads[GW_WORK_THREADS];
};

struct gw {
	struct faasd_config cfg;
	struct store *store;
	struct auth_cache *auth;
	struct rcache *routes; /* what serves an invocation, without SQLite */
	struct gw_loop loops[GW_MAX_LOOPS];
	bool fast_off; /* fast_path = off: libmicrohttpd serves every request */
	unsigned nloops;
	int listen_fd;
	int ctl_fd; /* to the parent */
	int epfd;   /* worker sockets + ctl, served by the I/O thread */
	pthread_t io_thread;
	pthread_mutex_t lock; /* workers[], pending list */
	struct gw_worker workers[GW_MAX_WORKERS];
	unsigned nworkers;
	struct req *pending; /* invocations waiting for a worker reply */
	uint64_t next_id;
	atomic_uint inflight;
	atomic_bool draining;
	atomic_uint max_body;
	struct hot hot;
	struct gw_work work;
	struct deployer *deploy; /* deploy.c */
	struct records *records; /* records.c; NULL when records are off */
	struct follows *follows; /* follow.c; NULL when records are off */
	struct metrics *metrics; /* metrics.c */
	struct gw_async *async;  /* async.c */
};

/* A hot invocation's exchange with its instance (hot.c). */
struct hx {
	bool on;            /* this invocation goes to a hot instance */
	int64_t tenant_max; /* the tenant's instance quota */
	bool head_req;      /* method HEAD */
	char *out;          /* request head; the body is req.body */
	size_t out_len, sent;
	char *in; /* response bytes */
	size_t in_len, in_cap;
	struct hresp resp;
	bool head_done;
	struct hchunk chunk;
	size_t body_len; /* complete body length, once done */
	uint64_t wait_until_us, deadline_us, sent_us, done_us;
	int64_t deadline_off; /* where X-Faas-Deadline-Ms digits sit in out, or -1 */
	struct hpool *pool;   /* while waiting in its queue */
	struct hconn *conn;   /* while assigned */
	struct req *wnext;    /* wait queue */
	bool retried;         /* sent again after a stale keep-alive connection */
	/* Streaming: the head was answered while the body still comes. */
	bool streaming, stream_done, stream_failed;
	bool reader_waiting; /* MHD's content reader suspended q for more */
	bool cold;           /* it waited for an instance started for it */
	uint64_t init_us;
	uint64_t broken_us; /* connection lost mid-exchange: waiting for the reason */
	/* outcome, when it failed */
	unsigned fail_status;
	const char *fail_code;
	char *fail_msg; /* malloc'd; at most HOT_FAIL_MSG_MAX bytes (hot_fail) */
	/* The instance's stdout and stderr during the invocation (and, for a
	 * cold start, its init), for the record; trunc bit 0/1 as there. */
	char *log[2];
	size_t log_len[2];
	unsigned log_trunc;
	bool log_taken;
};

/* Per-request state, created by the URI callback, freed when MHD completes. */
struct req {
	struct gw *gw;
	struct MHD_Connection *conn; /* NULL on a fast connection */
	struct fconn *fc;            /* the fast path's connection (fast.c), or NULL */
	char *uri;                   /* raw request target, query included */
	struct route route;
	bool route_done;
	int route_err;
	struct principal who;
	bool token_bad;      /* a token was sent but is unknown or revoked */
	bool token_used;     /* the Authorization header authenticated this request */
	bool internal;       /* sent by an async runner with its token (async.c) */
	const char *trigger; /* for the record: "http", or "async"/"schedule" (internal) */
	const char *version; /* HTTP version of the request */
	/* body */
	struct buf body; /* API bodies; a hot invocation's */
	size_t body_limit;
	uint64_t received;
	bool too_large;
	int body_fd;    /* invocation body memfd, or code upload temp file */
	EVP_MD_CTX *md; /* code upload digest */
	char tmp_path[128];
	/* invocation */
	struct store_route sr;
	uint64_t id;
	char invocation_id[40];
	unsigned worker;
	unsigned loop; /* the event loop serving its connection */
	bool suspended, answered;
	bool fast_ready; /* on its loop's ready list (fast.c, ready_lock) */
	struct msg_invoke_done done;
	int out_fd, err_fd;
	uint64_t started_us;
	int64_t started_wall_us; /* Unix time, for its record */
	int64_t tenant_id;
	uint64_t resp_bytes;  /* body bytes answered, for the record */
	const char *err_code; /* a failed invocation's error, for the record */
	const char *err_msg;
	struct req *next; /* pending list; fast: the loop's ready list */
	uint32_t uid;     /* host uid of the tenant */
	bool net_host;    /* network "host", allowed for the tenant */
	const char *method;
	void *scratch; /* per-call helper state */
	struct hx hx;
	/* API calls run off the event loops (SQLite, unpacking may take a
	 * while): the answer waits here for the loop (gw_queue). */
	struct MHD_Response *resp;
	struct req *work_next;
	unsigned resp_status;
	bool offloaded;
	struct follower *follow; /* a logs?follow=1 stream (follow.c) */
};

/*
 * respond.c: an answer put together for whichever server has q: an MHD
 * response, or for a request of the fast path (q->fc) the head fields and
 * body fast.c writes.  gw_ans_buffer: the body (taken on success, 0; free_fn
 * (cls) frees it); gw_ans_stream: a streamed body of size bytes (or
 * MHD_SIZE_UNKNOWN) that reader gives MHD, or fast.c takes from the hot
 * exchange (hot_stream_peek); gw_ans_queue: send it with status (a is
 * spent either way).
 */
struct gw_ans {
	struct req *q;
	struct MHD_Response *mhd; /* NULL on a fast connection */
	struct buf hdr;           /* fast: "Name: value\r\n" lines */
	bool stream;
	void *body;
	uint64_t body_len;
	void (*body_free)(void *);
	void *body_cls;
};
int gw_ans_buffer(struct gw_ans *a, struct req *q, size_t len, void *body, void (*free_fn)(void *),
		  void *cls);
int gw_ans_stream(struct gw_ans *a, struct req *q, uint64_t size, MHD_ContentReaderCallback reader);
void gw_ans_header(struct gw_ans *a, const char *name, const char *value);
enum MHD_Result gw_ans_queue(struct gw_ans *a, unsigned status);

/* respond.c.  gw_queue is how every API answer is queued (it takes resp):
 * at once, or, for a request handled off its event loop (offloaded), kept
 * in q until the loop resumes it. */
enum MHD_Result gw_queue(struct req *q, unsigned status, struct MHD_Response *resp);
enum MHD_Result gw_json(struct req *q, unsigned status, json_t *body);
enum MHD_Result gw_error(struct req *q, unsigned status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
enum MHD_Result gw_errno(struct req *q, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* api.c: /v1 endpoints, called once the body is in. */
enum MHD_Result api_dispatch(struct req *q, const char *method);
/* Authorisation for tenant-scoped endpoints: 0 or an error was queued (-1). */
int api_authorize(struct req *q, const char *tenant, enum scope need, enum MHD_Result *ret);
/* Parse the collected JSON body; on error queues a 400 and returns NULL. */
json_t *api_body_json(struct req *q, enum MHD_Result *ret);
/* Queue a 405 naming the allowed methods. */
enum MHD_Result api_method_not_allowed(struct req *q, const char *method, const char *allow);
/* The URL's tenant, after authorisation: 0, or an error was queued (-1). */
int api_load_tenant(struct req *q, struct store_tenant *t, enum MHD_Result *ret);
/* api_deploy.c: …/aliases/{a}[/rollback] and …/deployments[/{id}[/abort]]. */
enum MHD_Result api_alias(struct req *q, const char *method);
enum MHD_Result api_deployments(struct req *q, const char *method);
/* api_records.c: …/invocations[/{id}] and …/functions/{f}/logs. */
enum MHD_Result api_records(struct req *q, const char *method);
/* api_records.c: /v1/tenants/{t}/async[/{id}[/redrive]]. */
enum MHD_Result api_async_queue(struct req *q, const char *method);
/* api_async.c: POST /async/{t}/{f}...: async_begin on the event loop
 * (route, authorise, body limit, X-Callback-Url), api_async_enqueue on an
 * API thread once the body is in (queue it durably, 202). */
enum MHD_Result async_begin(struct req *q, const char *method);
enum MHD_Result api_async_enqueue(struct req *q);
/* async.c: the runners.  async_start: 0 or -errno; async_stop: they
 * claim nothing more; async_kick: something was queued. */
int async_start(struct gw *g);
void async_stop(struct gw *g);
void async_kick(struct gw *g);
/* Records and settled async invocations from before this Unix time (us)
 * are past retention_days and pruned. */
static inline int64_t
gw_retention_cutoff_us(const struct gw *g)
{
	return (int64_t)now_wall_us() - (int64_t)(g->cfg.retention_days * 86400ull * 1000000ull);
}

/* schedule.c: the scheduler thread (fires schedules as async invocations
 * until the gateway drains).  0 or -errno. */
int schedule_start(struct gw *g);
/* Runners with a claimed invocation not settled yet (a drain waits). */
unsigned async_busy(struct gw *g);
/* The gateway began runner number runner's request (X-Faas-Runner). */
void async_begun(struct gw *g, const char *runner);
/* Whether token is the runners' own (constant time). */
bool async_token_is(struct gw *g, const char *token);

/* code.c (HTTP side) */
enum MHD_Result code_begin(struct req *q, const char *method);
int code_upload_chunk(struct req *q, const char *data, size_t len);
enum MHD_Result code_finish(struct req *q);

/* gateway.c: the value of q's request header name, or NULL; and each of
 * its headers to fn (MHD's iterator), whichever server has q. */
const char *gw_header(struct req *q, const char *name);
void gw_headers_each(struct req *q, MHD_KeyValueIterator fn, void *cls);
/* gateway.c: what a finished request leaves behind (MHD's completed
 * callback, and fast.c once its answer is out), q itself included. */
void gw_req_free(struct req *q);
/* gateway.c: the start of a request from the first call on: route,
 * authenticate, prepare for the body. */
enum MHD_Result gw_request_begin(struct req *q, const char *url, const char *method);

/*
 * fast.c - the fast path: the event loops accept the connections
 * themselves; one that opens with a /fn/ request is served without
 * libmicrohttpd while its requests are warm invocations of hot runtimes
 * (no MHD suspend and resume, no read-ahead, one writev per answer).
 * Anything else goes to libmicrohttpd: a connection whose first bytes are
 * not /fn/ at once (MHD_add_connection), one that later sends something
 * else through a socket pair relayed both ways.
 * fast_loop_init: a loop's part (listening included), 0 or -errno.
 * fast_event: an event of a fast connection or tunnel (data.ptr's kind).
 * fast_accept: the listening socket is readable.
 * fast_run: after each batch of events: answers ready, timeouts, drain.
 * fast_queue: send a's answer to q's connection (gw_ans_queue).
 * fast_resume: q's answer is ready (hot_resume; any thread, g->lock held).
 */
struct gw_loop;
int fast_loop_init(struct gw_loop *lp);
void fast_event(struct gw_loop *lp, void *ptr, uint32_t events);
void fast_accept(struct gw_loop *lp);
void fast_run(struct gw_loop *lp);
enum MHD_Result fast_queue(struct req *q, unsigned status, struct gw_ans *a);
void fast_resume(struct req *q);
/* A fast request's headers, one by name or each to fn, and its client. */
const char *fast_header(struct req *q, const char *name);
void fast_headers_each(struct req *q, MHD_KeyValueIterator fn, void *cls);
const struct sockaddr *fast_peer(struct req *q);

/* gateway.c: resume q's suspended connection; from a thread other than
 * q's event loop, that loop is woken too (MHD's own signal does not reach
 * an externally run daemon's loop). */
void gw_resume(struct req *q);
/* Name the calling thread (top -H, perf, /proc/PID/task/TID/comm). */
void gw_thread_name(const char *name);

/* gateway.c: for a declared Content-Length over q->body_limit, either
 * queue the 413 now (returns true, *ret set) or mark the request so the body
 * is read and dropped and the 413 sent once it is in (returns false). */
bool gw_body_too_large(struct req *q, uint64_t declared, enum MHD_Result *ret);

/* invoke.c */
enum MHD_Result invoke_begin(struct req *q, const char *method);
/* q's function, the version its route picks (with route_key, may be NULL)
 * in q->sr and its tenant in *t, once the caller may invoke it: 0, or -1
 * with the error answer (404 also for a private function a stranger asks
 * for) in *ret. */
int invoke_resolve(struct req *q, const char *route_key, struct store_tenant *t,
		   enum MHD_Result *ret);
/* An invocation id (UUIDv7) whose first 48 bits are ms, Unix milliseconds. */
void invoke_make_id(char out[40], uint64_t ms);
enum MHD_Result invoke_dispatch(struct req *q, const char *method);
enum MHD_Result invoke_respond(struct req *q);
/* Called by the I/O thread with a decoded reply; takes the fds. */
void invoke_complete(struct gw *g, unsigned worker, struct msg_invoke_done *d);
/* A worker went away: fail its pending invocations. */
void invoke_fail_worker(struct gw *g, unsigned worker);
/* The X-Faas-* headers, "fail" (a JSON error with the invocation id, and the
 * REPORT line) and the REPORT line of a served invocation, for hot.c. */
void invoke_faas_headers(struct req *q, struct gw_ans *a, bool cold, uint64_t dur_us);
enum MHD_Result invoke_fail(struct req *q, unsigned status, const char *code, const char *msg,
			    const char *details);
bool invoke_header_passes(const char *name);
/* One "K=V" environment entry into m (a build error is kept in m->err);
 * and the function's own env plus the PATH, HOME and LANG defaults. */
void invoke_env_put(struct msg_out *m, const char *k, const char *v);
void invoke_env_function(struct msg_out *m, json_t *config);
/* The client's address as text ("" when unknown). */
void invoke_client_addr(struct req *q, char addr[INET6_ADDRSTRLEN]);
void invoke_report(struct req *q, unsigned http, const char *status, uint64_t dur_us,
		   uint64_t init_us, uint64_t peak_kb);

/*
 * hot.c - hot instances: the gateway schedules invocations onto instances
 * that workers run, and talks HTTP/1.1 to them over sockets the workers
 * connected.  All under g->lock.
 *
 * hot_dispatch: the body is in; send q to an idle instance of its version,
 * or queue it (starting an instance when the caps allow).  Suspends q.
 * hot_worker_msg: MSG_HOT_READY / MSG_HOT_GONE from worker i (I/O thread).
 * hot_conn_event: a connection to an instance is readable/writable (in
 * the epoll set of event loop "loop").
 * hot_log_event: an instance's stdout or stderr pipe is readable (I/O
 * thread; data.ptr of the event is the struct hlog).
 * hot_tick: timeouts, queue waits, idle instances; returns ms to the next.
 * hot_worker_down: worker i is gone with its instances.
 * hot_respond: answer q once it was resumed (MHD thread).
 * hot_req_free: release what q holds (completed callback).
 */
enum MHD_Result hot_dispatch(struct req *q);
void hot_worker_msg(struct gw *g, unsigned worker, struct msg_in *in);
void hot_conn_event(struct gw *g, struct hconn *c, uint32_t events, unsigned loop);
void hot_log_event(struct gw *g, struct hlog *l);
int hot_tick(struct gw *g);
void hot_worker_down(struct gw *g, unsigned worker);
enum MHD_Result hot_respond(struct req *q);
void hot_req_free(struct req *q);
/* A streamed answer's body from byte pos: *p and *n (0: nothing yet, and q
 * is resumed when more comes).  0 more to come, 1 it ended, -1 it broke
 * off.  Under g->lock. */
int hot_stream_peek(struct req *q, uint64_t pos, const char **p, size_t *n);
/* Free instances that died, once every event loop has finished the batch
 * of events it was in then (I/O thread). */
void hot_reap(struct gw *g);
/*
 * deploy.c - the deployment engine (a thread of its own).
 * deploy_start: start it; it resumes deployments left in progress.
 * deploy_observe: an invocation of tenant/fn version ended (invoke_report
 * calls it for every one): http status, status word, duration.
 * deploy_kick: deployments changed through the API: look now.
 * deploy_live: the current step's figures of deployment id while the
 * engine runs it ({step, weight, invocations, errors, error_rate, p95_ms,
 * elapsed_ms}), or NULL.
 * deploy_flush: checkpoint every deployment now (before exiting).
 */
int deploy_start(struct gw *g);
void deploy_observe(struct gw *g, const char *tenant, const char *fn, int64_t version,
		    unsigned http, const char *status, uint64_t dur_us);
void deploy_kick(struct gw *g);
json_t *deploy_live(struct gw *g, int64_t id);
void deploy_flush(struct gw *g);

/*
 * records.c - the invocation record writer (a thread of its own).
 * records_start: open its SQLite connection and start it (records off: a
 * no-op, and records_submit frees what it gets).
 * records_submit: queue r, taking its strings (malloc'd) and zeroing r;
 * never blocks; a full queue drops the record and counts it.
 * records_flush: write what is queued and stop (at shutdown).
 * records_stats: the writer's counters, for /metrics.
 */
struct records_stats {
	uint64_t written, dropped, failed, queued, capacity;
};
int records_start(struct gw *g);
void records_submit(struct gw *g, struct store_record *r);
void records_flush(struct gw *g);
void records_stats(struct gw *g, struct records_stats *st);
/* Wake the writer: a log stream wants a page. */
void records_kick(struct gw *g);

/*
 * follow.c - logs?follow=1 streams, filled by the record writer.
 * follow_init: at records_start (no records, no streams).
 * follow_start: answer q with the stream (API thread).
 * follow_free: q's stream is over (completed callback).
 * follow_push / follow_paging / follow_page / follow_beat: the writer
 * hands over a committed batch / has streams to page for / pages one /
 * keeps waiting streams alive.
 * follow_end_all: end every stream (drain at shutdown).
 */
int follow_init(struct gw *g);
enum MHD_Result follow_start(struct req *q, int64_t tenant_id, const char *fn, int64_t after_seq,
			     int64_t since_us, unsigned page);
void follow_free(struct req *q);
void follow_push(struct gw *g, const struct store_record *batch, size_t n);
bool follow_paging(struct gw *g);
void follow_page(struct gw *g, struct store *db);
void follow_beat(struct gw *g);
void follow_end_all(struct gw *g);

/*
 * metrics.c - Prometheus figures.  metrics_new at start;
 * metrics_invocation from invoke_report; metrics_http from the completed
 * callback; metrics_render: the /metrics text (*out malloc'd), 0 or -errno.
 * hot.c: hot_count - hot instances starting, idle and busy (takes g->lock).
 */
int metrics_new(struct gw *g);
void metrics_invocation(struct gw *g, const char *tenant, const char *fn, int64_t version,
			const char *status, uint64_t dur_us, bool cold);
void metrics_http(struct gw *g, unsigned code);
/* The fast path (fast.c): a request answered, a connection handed over. */
enum { METRICS_FAST_ANSWERED, METRICS_FAST_HANDED_OVER, METRICS_FAST_TUNNELED, METRICS_FAST_N };
void metrics_fast(struct gw *g, unsigned what);
int metrics_render(struct gw *g, char **out, size_t *len);
void hot_count(struct gw *g, unsigned *starting, unsigned *idle, unsigned *busy);

/* An epoll tag is a pointer when above this, to a struct whose first
 * member is one of the LOOP_KIND values. */
#define HOT_TAG_MIN     65536u
#define LOOP_TAG_MHD    1u
#define LOOP_TAG_WAKE   2u
#define LOOP_TAG_LISTEN 3u
enum loop_kind { LOOP_KIND_HOT = 0x1f00, LOOP_KIND_FAST, LOOP_KIND_TUNNEL };

#endif
