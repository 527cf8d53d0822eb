/*
 * msg.h - every message that crosses a faasd process boundary.
 *
 * Processes talk over SOCK_SEQPACKET socketpairs: one datagram is one
 * message, so framing is free.  A message is a fixed header followed by
 * tag-length-value fields; file descriptors (request bodies, handler output,
 * sockets) ride along as SCM_RIGHTS.  This header is the only one that both
 * gateway/ and worker/ include.
 *
 * INVARIANT: a receiver decodes a message only through the msg_*_decode()
 * functions below, which check every length, tag, string terminator and fd
 * count; a message that fails them comes from a broken or compromised peer,
 * which is logged and restarted, never trusted.
 *
 * Bump MSG_VERSION whenever a message changes meaning.
 */
#ifndef FAASD_MSG_H
#define FAASD_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MSG_MAGIC    0x66616173u /* "faas" */
#define MSG_VERSION  4
#define MSG_MAX_SIZE (128u * 1024u)
#define MSG_MAX_FDS  4
#define MSG_MAX_ENV  512

enum msg_type {
	MSG_READY = 1,     /* gateway -> parent: HTTP server is serving */
	MSG_WORKER_SOCKET, /* parent -> gateway: new data socket for worker N */
	MSG_CONFIG,        /* parent -> gateway/worker: reloaded settings */
	MSG_INVOKE,        /* gateway -> worker: run one invocation */
	MSG_INVOKE_DONE,   /* worker -> gateway: result of an invocation */
	MSG_HOT_START,     /* gateway -> worker: start a hot instance (fields of MSG_INVOKE) */
	MSG_HOT_CONNECT,   /* gateway -> worker: one more connection to a ready instance */
	MSG_HOT_STOP,      /* gateway -> worker: end an instance (idle, timeout) */
	MSG_HOT_READY,     /* worker -> gateway: instance accepts; a connected socket */
	MSG_HOT_GONE,      /* worker -> gateway: instance ended, why */
	MSG_TYPE_MAX,
};

enum msg_tag {
	MSG_T_ID = 1,
	MSG_T_INVOCATION_ID,
	MSG_T_TENANT,
	MSG_T_FUNCTION,
	MSG_T_VERSION,
	MSG_T_UID,
	MSG_T_CODE_DIR,
	MSG_T_RUNTIME,
	MSG_T_HANDLER,
	MSG_T_TIMEOUT_MS,
	MSG_T_MEMORY_MB,
	MSG_T_MAX_OUTPUT,
	MSG_T_ENV,
	MSG_T_HAS_BODY,
	MSG_T_RESULT,
	MSG_T_CODE,
	MSG_T_DURATION_US,
	MSG_T_MAXRSS_KB,
	MSG_T_INDEX,
	MSG_T_LOG_LEVEL,
	MSG_T_DRAIN_TIMEOUT_S,
	MSG_T_MAX_BODY,
	MSG_T_NETWORK_HOST,
	MSG_T_TRUNCATED,
	MSG_T_MAX_LOG,
	MSG_T_MESSAGE,
	MSG_T_TAG_MAX,
};

/* Outgoing message under construction.  fds are borrowed, not owned. */
struct msg_out {
	uint16_t type;
	uint8_t *data;
	size_t len, cap;
	int err; /* first error while building; msg_send refuses to send then */
	int fds[MSG_MAX_FDS];
	unsigned nfds;
};

/* A received message.  Owns data and fds until msg_in_free(). */
struct msg_in {
	uint16_t type;
	uint8_t *data; /* payload (fields), NUL-padded by one byte */
	size_t len;
	int fds[MSG_MAX_FDS];
	unsigned nfds;
};

void msg_out_init(struct msg_out *m, uint16_t type);
void msg_out_free(struct msg_out *m);
void msg_put_u64(struct msg_out *m, uint16_t tag, uint64_t v);
void msg_put_str(struct msg_out *m, uint16_t tag, const char *s);
void msg_put_fd(struct msg_out *m, int fd);

/*
 * msg_send - send m over the SOCK_SEQPACKET socket.  Returns 0 or -errno
 * (-EMSGSIZE when too big, the build error when one happened).  Never blocks
 * longer than the socket does; callers use blocking sockets.
 */
int msg_send(int sock, const struct msg_out *m);

/*
 * msg_recv - receive one message.  Returns 1 with *in filled (caller calls
 * msg_in_free), 0 at EOF (peer gone), -EAGAIN when nothing is pending on a
 * non-blocking socket, -EBADMSG for a malformed header or truncated
 * datagram (any fds that came with it are closed), or -errno.
 */
int msg_recv(int sock, struct msg_in *in);
void msg_in_free(struct msg_in *in);

/*
 * msg_parse_header - check a raw datagram (header + payload) and fill
 * *type, *payload, *len.  Exposed for the fuzz target.  0 or -EBADMSG.
 */
int msg_parse_header(const uint8_t *buf, size_t n, uint16_t *type, const uint8_t **payload,
		     size_t *len);

/* ---- typed messages ---- */

enum msg_runtime {
	RUNTIME_EXEC = 1,
	RUNTIME_HTTP,
	RUNTIME_PYTHON3,
	RUNTIME_NODE,
};

struct msg_invoke {
	uint64_t id; /* gateway's sequence number, echoed in the reply */
	const char *invocation_id;
	const char *tenant;
	const char *function;
	uint64_t version;
	uint64_t uid; /* host uid the handler runs as */
	const char *code_dir;
	uint64_t runtime;
	const char *handler;
	uint64_t timeout_ms;
	uint64_t memory_mb;
	uint64_t max_output;              /* cap on stdout bytes */
	uint64_t network_host;            /* 1: share the host network (the tenant is allowed) */
	uint64_t max_log;                 /* cap on stderr bytes kept */
	const char *env[MSG_MAX_ENV + 1]; /* NULL-terminated "K=V" */
	unsigned nenv;
	int body_fd; /* -1 when there is no body; owned by the msg_in */
	/* MSG_HOT_START: the write ends of the gateway's pipes for the
	 * handler's stdout and stderr (owned by the msg_in); else -1. */
	int out_fd, err_fd;
};

enum msg_result {
	INVOKE_EXITED = 1, /* code = exit status */
	INVOKE_SIGNALED,   /* code = signal number */
	INVOKE_TIMEOUT,
	INVOKE_SPAWN_FAILED, /* code = errno */
	INVOKE_REJECTED,     /* worker refused the message: code = errno */
	INVOKE_OOM,          /* killed by the memory limit */
	INVOKE_INIT_FAILED,  /* hot instance ended or timed out before it accepted */
	INVOKE_STOPPED,      /* hot instance ended because the gateway asked */
};

struct msg_invoke_done {
	uint64_t id;
	uint64_t result;
	uint64_t code;
	uint64_t duration_us;
	uint64_t maxrss_kb;
	uint64_t truncated; /* bit 0: stdout hit its cap, bit 1: stderr */
	int stdout_fd;      /* -1 when absent; owned by the msg_in */
	int stderr_fd;
};

/*
 * The hot-instance messages (MSG_HOT_CONNECT, _STOP, _READY, _GONE).  id is
 * the instance id the gateway chose in MSG_HOT_START.  READY carries the
 * init time (first READY of an instance) and one connected stream socket to
 * the handler; GONE carries result/code as MSG_INVOKE_DONE would, and for
 * INVOKE_INIT_FAILED why in message (the gateway reads the handler's
 * output itself: MSG_HOT_START hands the worker the pipes' write ends).
 */
struct msg_hot {
	uint64_t id;
	uint64_t result;
	uint64_t code;
	uint64_t duration_us;
	const char *message; /* "" when absent */
	int fd;              /* READY: the socket, owned by the msg_in; else -1 */
};

#define MSG_HOT_MESSAGE_MAX 4096

struct msg_config {
	uint64_t log_level;
	uint64_t drain_timeout_s;
	uint64_t max_body;
};

/* Decoders: 0 or -EBADMSG.  Pointers point into in->data.  msg_invoke_decode
 * takes MSG_INVOKE and MSG_HOT_START (which has no body). */
int msg_invoke_decode(const struct msg_in *in, struct msg_invoke *out);
int msg_hot_decode(const struct msg_in *in, struct msg_hot *out);
int msg_invoke_done_decode(const struct msg_in *in, struct msg_invoke_done *out);
int msg_config_decode(const struct msg_in *in, struct msg_config *out);
int msg_worker_socket_decode(const struct msg_in *in, uint64_t *index, int *fd);

#endif
