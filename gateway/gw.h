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

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "gateway.h"
#include "msg.h"
#include "rcache.h"
#include "store.h"

#define GW_MAX_WORKERS   64
#define GW_JSON_BODY_MAX (1u << 20) /* API request bodies */

/* ---- route.c: URL → endpoint ---- */

enum route_kind {
	ROUTE_NONE = 0,
	ROUTE_HEALTHZ,
	ROUTE_READYZ,
	ROUTE_WHOAMI,
	ROUTE_TENANTS,   /* /v1/tenants */
	ROUTE_TENANT,    /* /v1/tenants/{t} */
	ROUTE_KEYS,      /* /v1/tenants/{t}/keys */
	ROUTE_KEY,       /* /v1/tenants/{t}/keys/{id} */
	ROUTE_CODE,      /* /v1/tenants/{t}/code/{sha256} */
	ROUTE_FUNCTIONS, /* /v1/tenants/{t}/functions */
	ROUTE_FUNCTION,  /* /v1/tenants/{t}/functions/{f} */
	ROUTE_VERSIONS,  /* …/functions/{f}/versions */
	ROUTE_VERSION,   /* …/functions/{f}/versions/{n} */
	ROUTE_ALIASES,   /* …/functions/{f}/aliases */
	ROUTE_INVOKE,    /* /fn/{t}/{f}[:{q}][/{path}] */
	ROUTE_NOT_YET,   /* part of SPEC §5 that this build does not serve */
};

struct route {
	enum route_kind kind;
	char tenant[64];
	char function[64];
	char qualifier[64]; /* alias name, or version digits; "" for none */
	int64_t version;    /* qualifier as a number, 0 when it is an alias */
	char sub[80];       /* key id, sha256 or version number */
	const char *rest;   /* ROUTE_INVOKE: path after the function ("" or "/…") */
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
};

struct req;

struct gw {
	struct faasd_config cfg;
	struct store *store;
	struct auth_cache *auth;
	struct rcache *routes; /* what serves an invocation, without SQLite */
	struct MHD_Daemon *mhd;
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
};

/* Per-request state, created by the URI callback, freed when MHD completes. */
struct req {
	struct gw *gw;
	struct MHD_Connection *conn;
	char *uri; /* raw request target, query included */
	struct route route;
	bool route_done;
	int route_err;
	struct principal who;
	bool token_bad;      /* a token was sent but is unknown or revoked */
	bool token_used;     /* the Authorization header authenticated this request */
	const char *version; /* HTTP version of the request */
	/* body */
	char *body; /* JSON API bodies */
	size_t body_len, body_cap, body_limit;
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
	bool suspended, answered;
	struct msg_invoke_done done;
	int out_fd, err_fd;
	uint64_t started_us;
	struct req *next; /* pending list */
	uint32_t uid;     /* host uid of the tenant */
	bool net_host;    /* network "host", allowed for the tenant */
	const char *method;
	void *scratch; /* per-call helper state */
};

/* respond.c */
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

/* code.c (HTTP side) */
enum MHD_Result code_begin(struct req *q, const char *method);
int code_upload_chunk(struct req *q, const char *data, size_t len);
enum MHD_Result code_finish(struct req *q);

/* gateway.c: for a declared Content-Length over q->body_limit, either
 * queue the 413 now (returns true, *ret set) or mark the request so the body
 * is read and dropped and the 413 sent once it is in (returns false). */
bool gw_body_too_large(struct req *q, uint64_t declared, enum MHD_Result *ret);

/* invoke.c */
enum MHD_Result invoke_begin(struct req *q, const char *method);
enum MHD_Result invoke_dispatch(struct req *q, const char *method);
enum MHD_Result invoke_respond(struct req *q);
/* Called by the I/O thread with a decoded reply; takes the fds. */
void invoke_complete(struct gw *g, unsigned worker, struct msg_invoke_done *d);
/* A worker went away: fail its pending invocations. */
void invoke_fail_worker(struct gw *g, unsigned worker);

#endif
