/*
 * msg.c - encoding, sending, receiving and strict decoding of the messages
 * declared in msg.h.  Wire format (host byte order; both ends are the same
 * binary on the same host):
 *
 *   header: u32 magic, u16 version, u16 type, u32 payload length
 *   field:  u16 tag, u32 length, length bytes
 *
 * Strings travel with their terminating NUL, and a decoder refuses a string
 * field whose only NUL is not its last byte.
 */
#include "msg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

#define HDR_SIZE  12
#define FIELD_HDR 6

void
msg_out_init(struct msg_out *m, uint16_t type)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
}

void
msg_out_free(struct msg_out *m)
{
	free(m->data);
	m->data = NULL;
	m->len = m->cap = 0;
}

static void
put_raw(struct msg_out *m, uint16_t tag, const void *val, size_t n)
{
	uint32_t len32 = (uint32_t)n;

	if (m->err)
		return;
	if (m->len + FIELD_HDR + n > MSG_MAX_SIZE - HDR_SIZE) {
		m->err = -EMSGSIZE;
		return;
	}
	if (m->len + FIELD_HDR + n > m->cap) {
		size_t cap = MAX(m->cap * 2, m->len + FIELD_HDR + n + 256);
		uint8_t *d = realloc(m->data, cap);

		if (!d) {
			m->err = -ENOMEM;
			return;
		}
		m->data = d;
		m->cap = cap;
	}
	memcpy(m->data + m->len, &tag, 2);
	memcpy(m->data + m->len + 2, &len32, 4);
	if (n)
		memcpy(m->data + m->len + FIELD_HDR, val, n);
	m->len += FIELD_HDR + n;
}

void
msg_put_u64(struct msg_out *m, uint16_t tag, uint64_t v)
{
	put_raw(m, tag, &v, sizeof(v));
}

void
msg_put_str(struct msg_out *m, uint16_t tag, const char *s)
{
	put_raw(m, tag, s, strlen(s) + 1);
}

void
msg_put_fd(struct msg_out *m, int fd)
{
	if (m->err)
		return;
	if (m->nfds >= MSG_MAX_FDS || fd < 0) {
		m->err = -EINVAL;
		return;
	}
	m->fds[m->nfds++] = fd;
}

int
msg_send(int sock, const struct msg_out *m)
{
	uint8_t hdr[HDR_SIZE];
	uint32_t magic = MSG_MAGIC, len = (uint32_t)m->len;
	uint16_t version = MSG_VERSION, type = m->type;
	struct iovec iov[2];
	struct msghdr mh = { 0 };
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * MSG_MAX_FDS)];
	} cbuf;
	ssize_t r;

	if (m->err)
		return m->err;
	memcpy(hdr, &magic, 4);
	memcpy(hdr + 4, &version, 2);
	memcpy(hdr + 6, &type, 2);
	memcpy(hdr + 8, &len, 4);
	iov[0] = (struct iovec){ hdr, HDR_SIZE };
	iov[1] = (struct iovec){ m->data, m->len };
	mh.msg_iov = iov;
	mh.msg_iovlen = m->len ? 2 : 1;
	if (m->nfds) {
		struct cmsghdr *c;

		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * m->nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * m->nfds);
		memcpy(CMSG_DATA(c), m->fds, sizeof(int) * m->nfds);
	}
	do
		r = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return 0;
}

void
msg_in_free(struct msg_in *in)
{
	for (unsigned i = 0; i < in->nfds; i++)
		if (in->fds[i] >= 0)
			close(in->fds[i]);
	in->nfds = 0;
	free(in->data);
	in->data = NULL;
}

int
msg_parse_header(const uint8_t *buf, size_t n, uint16_t *type, const uint8_t **payload, size_t *len)
{
	uint32_t magic, plen;
	uint16_t version, t;

	if (n < HDR_SIZE)
		return -EBADMSG;
	memcpy(&magic, buf, 4);
	memcpy(&version, buf + 4, 2);
	memcpy(&t, buf + 6, 2);
	memcpy(&plen, buf + 8, 4);
	if (magic != MSG_MAGIC || version != MSG_VERSION)
		return -EBADMSG;
	if (t == 0 || t >= MSG_TYPE_MAX)
		return -EBADMSG;
	if ((size_t)plen != n - HDR_SIZE)
		return -EBADMSG;
	*type = t;
	*payload = buf + HDR_SIZE;
	*len = plen;
	return 0;
}

int
msg_recv(int sock, struct msg_in *in)
{
	_cleanup_free_ uint8_t *buf = malloc(MSG_MAX_SIZE);
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * MSG_MAX_FDS)];
	} cbuf;
	struct iovec iov = { buf, MSG_MAX_SIZE };
	struct msghdr mh = { 0 };
	const uint8_t *payload;
	uint16_t type;
	size_t plen;
	ssize_t r;
	int bad = 0;

	memset(in, 0, sizeof(*in));
	if (!buf)
		return -ENOMEM;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf.buf;
	mh.msg_controllen = sizeof(cbuf.buf);
	do
		r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		size_t nfd;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfd; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (in->nfds < MSG_MAX_FDS)
				in->fds[in->nfds++] = fd;
			else {
				close(fd);
				bad = 1;
			}
		}
	}
	if (r == 0 && in->nfds == 0)
		return 0;
	if (bad || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
	    msg_parse_header(buf, (size_t)r, &type, &payload, &plen) < 0) {
		msg_in_free(in);
		return -EBADMSG;
	}
	in->data = malloc(plen + 1);
	if (!in->data) {
		msg_in_free(in);
		return -ENOMEM;
	}
	memcpy(in->data, payload, plen);
	in->data[plen] = 0;
	in->len = plen;
	in->type = type;
	return 1;
}

/* ---- decoding ---- */

struct field {
	uint16_t tag;
	uint32_t len;
	const uint8_t *val;
};

/* Walk the fields of in; calls cb for each.  -EBADMSG on any framing error. */
static int
fields_walk(const struct msg_in *in, int (*cb)(const struct field *, void *), void *ud)
{
	size_t off = 0;

	while (off < in->len) {
		struct field f;

		if (in->len - off < FIELD_HDR)
			return -EBADMSG;
		memcpy(&f.tag, in->data + off, 2);
		memcpy(&f.len, in->data + off + 2, 4);
		off += FIELD_HDR;
		if (f.len > in->len - off)
			return -EBADMSG;
		if (f.tag == 0 || f.tag >= MSG_T_TAG_MAX)
			return -EBADMSG;
		f.val = in->data + off;
		off += f.len;
		if (cb(&f, ud) < 0)
			return -EBADMSG;
	}
	return 0;
}

static int
get_u64(const struct field *f, uint64_t *out)
{
	if (f->len != sizeof(uint64_t))
		return -EBADMSG;
	memcpy(out, f->val, sizeof(uint64_t));
	return 0;
}

static int
get_str(const struct field *f, const char **out)
{
	if (f->len < 1 || f->val[f->len - 1] != 0 ||
	    memchr(f->val, 0, f->len) != f->val + f->len - 1)
		return -EBADMSG;
	*out = (const char *)f->val;
	return 0;
}

/* Field "seen" bitmask helpers: each non-repeatable tag at most once. */
#define SEEN(mask, tag) ((mask) & (1ull << (tag)))
#define MARK(mask, tag) ((mask) |= (1ull << (tag)))

struct invoke_ctx {
	struct msg_invoke *o;
	uint64_t seen;
	uint64_t has_body;
};

static int
invoke_field(const struct field *f, void *ud)
{
	struct invoke_ctx *c = ud;
	struct msg_invoke *o = c->o;

	if (f->tag != MSG_T_ENV) {
		if (SEEN(c->seen, f->tag))
			return -EBADMSG;
		MARK(c->seen, f->tag);
	}
	switch (f->tag) {
	case MSG_T_ID:
		return get_u64(f, &o->id);
	case MSG_T_INVOCATION_ID:
		return get_str(f, &o->invocation_id);
	case MSG_T_TENANT:
		return get_str(f, &o->tenant);
	case MSG_T_FUNCTION:
		return get_str(f, &o->function);
	case MSG_T_VERSION:
		return get_u64(f, &o->version);
	case MSG_T_UID:
		return get_u64(f, &o->uid);
	case MSG_T_CODE_DIR:
		return get_str(f, &o->code_dir);
	case MSG_T_RUNTIME:
		return get_u64(f, &o->runtime);
	case MSG_T_HANDLER:
		return get_str(f, &o->handler);
	case MSG_T_TIMEOUT_MS:
		return get_u64(f, &o->timeout_ms);
	case MSG_T_MEMORY_MB:
		return get_u64(f, &o->memory_mb);
	case MSG_T_MAX_OUTPUT:
		return get_u64(f, &o->max_output);
	case MSG_T_HAS_BODY:
		return get_u64(f, &c->has_body);
	case MSG_T_NETWORK_HOST:
		return get_u64(f, &o->network_host);
	case MSG_T_MAX_LOG:
		return get_u64(f, &o->max_log);
	case MSG_T_ENV:
		if (o->nenv >= MSG_MAX_ENV)
			return -EBADMSG;
		if (get_str(f, &o->env[o->nenv]) < 0)
			return -EBADMSG;
		/* An environment entry must be NAME=value. */
		if (!strchr(o->env[o->nenv], '=') || o->env[o->nenv][0] == '=')
			return -EBADMSG;
		o->nenv++;
		return 0;
	default:
		return -EBADMSG;
	}
}

int
msg_invoke_decode(const struct msg_in *in, struct msg_invoke *out)
{
	struct invoke_ctx c = { .o = out };
	static const uint16_t required[] = {
		MSG_T_ID,       MSG_T_INVOCATION_ID, MSG_T_TENANT,    MSG_T_FUNCTION,
		MSG_T_VERSION,  MSG_T_UID,           MSG_T_CODE_DIR,  MSG_T_RUNTIME,
		MSG_T_HANDLER,  MSG_T_TIMEOUT_MS,    MSG_T_MEMORY_MB, MSG_T_MAX_OUTPUT,
		MSG_T_HAS_BODY,
	};

	memset(out, 0, sizeof(*out));
	out->body_fd = out->out_fd = out->err_fd = -1;
	if (in->type != MSG_INVOKE && in->type != MSG_HOT_START)
		return -EBADMSG;
	if (fields_walk(in, invoke_field, &c) < 0)
		return -EBADMSG;
	for (size_t i = 0; i < ARRAY_SIZE(required); i++)
		if (!SEEN(c.seen, required[i]))
			return -EBADMSG;
	if (c.has_body > 1 || out->network_host > 1)
		return -EBADMSG;
	if (in->type == MSG_HOT_START) {
		/* No body; the handler's stdout and stderr pipes. */
		if (c.has_body || in->nfds != 2)
			return -EBADMSG;
		out->out_fd = in->fds[0];
		out->err_fd = in->fds[1];
	} else if (in->nfds != c.has_body)
		return -EBADMSG;
	if (c.has_body)
		out->body_fd = in->fds[0];
	out->env[out->nenv] = NULL;
	return 0;
}

struct done_ctx {
	struct msg_invoke_done *o;
	uint64_t seen;
};

static int
done_field(const struct field *f, void *ud)
{
	struct done_ctx *c = ud;

	if (SEEN(c->seen, f->tag))
		return -EBADMSG;
	MARK(c->seen, f->tag);
	switch (f->tag) {
	case MSG_T_ID:
		return get_u64(f, &c->o->id);
	case MSG_T_RESULT:
		return get_u64(f, &c->o->result);
	case MSG_T_CODE:
		return get_u64(f, &c->o->code);
	case MSG_T_DURATION_US:
		return get_u64(f, &c->o->duration_us);
	case MSG_T_MAXRSS_KB:
		return get_u64(f, &c->o->maxrss_kb);
	case MSG_T_TRUNCATED:
		return get_u64(f, &c->o->truncated);
	default:
		return -EBADMSG;
	}
}

int
msg_invoke_done_decode(const struct msg_in *in, struct msg_invoke_done *out)
{
	struct done_ctx c = { .o = out };

	memset(out, 0, sizeof(*out));
	out->stdout_fd = out->stderr_fd = -1;
	if (in->type != MSG_INVOKE_DONE)
		return -EBADMSG;
	if (fields_walk(in, done_field, &c) < 0)
		return -EBADMSG;
	if (!SEEN(c.seen, MSG_T_ID) || !SEEN(c.seen, MSG_T_RESULT))
		return -EBADMSG;
	if (out->result < INVOKE_EXITED || out->result > INVOKE_OOM)
		return -EBADMSG;
	/* Output fds come as a pair or not at all. */
	if (in->nfds == 2) {
		out->stdout_fd = in->fds[0];
		out->stderr_fd = in->fds[1];
	} else if (in->nfds != 0)
		return -EBADMSG;
	return 0;
}

struct hot_ctx {
	struct msg_hot *o;
	uint64_t seen;
};

static int
hot_field(const struct field *f, void *ud)
{
	struct hot_ctx *c = ud;

	if (SEEN(c->seen, f->tag))
		return -EBADMSG;
	MARK(c->seen, f->tag);
	switch (f->tag) {
	case MSG_T_ID:
		return get_u64(f, &c->o->id);
	case MSG_T_RESULT:
		return get_u64(f, &c->o->result);
	case MSG_T_CODE:
		return get_u64(f, &c->o->code);
	case MSG_T_DURATION_US:
		return get_u64(f, &c->o->duration_us);
	case MSG_T_MESSAGE:
		if (f->len > MSG_HOT_MESSAGE_MAX)
			return -EBADMSG;
		return get_str(f, &c->o->message);
	default:
		return -EBADMSG;
	}
}

int
msg_hot_decode(const struct msg_in *in, struct msg_hot *out)
{
	struct hot_ctx c = { .o = out };
	uint64_t allowed, id = 1ull << MSG_T_ID;

	memset(out, 0, sizeof(*out));
	out->fd = -1;
	out->message = "";
	switch (in->type) {
	case MSG_HOT_CONNECT:
	case MSG_HOT_STOP:
		allowed = id;
		break;
	case MSG_HOT_READY:
		allowed = id | (1ull << MSG_T_DURATION_US);
		break;
	case MSG_HOT_GONE:
		allowed = id | (1ull << MSG_T_RESULT) | (1ull << MSG_T_CODE) |
			  (1ull << MSG_T_MESSAGE);
		break;
	default:
		return -EBADMSG;
	}
	if (fields_walk(in, hot_field, &c) < 0 || (c.seen & ~allowed) || !SEEN(c.seen, MSG_T_ID))
		return -EBADMSG;
	if (in->type == MSG_HOT_READY) {
		if (in->nfds != 1)
			return -EBADMSG;
		out->fd = in->fds[0];
	} else if (in->nfds != 0)
		return -EBADMSG;
	if (in->type == MSG_HOT_GONE &&
	    (!SEEN(c.seen, MSG_T_RESULT) || out->result < INVOKE_EXITED ||
	     out->result > INVOKE_STOPPED))
		return -EBADMSG;
	return 0;
}

struct config_ctx {
	struct msg_config *o;
	uint64_t seen;
};

static int
config_field(const struct field *f, void *ud)
{
	struct config_ctx *c = ud;

	if (SEEN(c->seen, f->tag))
		return -EBADMSG;
	MARK(c->seen, f->tag);
	switch (f->tag) {
	case MSG_T_LOG_LEVEL:
		return get_u64(f, &c->o->log_level);
	case MSG_T_DRAIN_TIMEOUT_S:
		return get_u64(f, &c->o->drain_timeout_s);
	case MSG_T_MAX_BODY:
		return get_u64(f, &c->o->max_body);
	default:
		return -EBADMSG;
	}
}

int
msg_config_decode(const struct msg_in *in, struct msg_config *out)
{
	struct config_ctx c = { .o = out };

	memset(out, 0, sizeof(*out));
	if (in->type != MSG_CONFIG || in->nfds != 0)
		return -EBADMSG;
	if (fields_walk(in, config_field, &c) < 0)
		return -EBADMSG;
	if (c.seen != ((1ull << MSG_T_LOG_LEVEL) | (1ull << MSG_T_DRAIN_TIMEOUT_S) |
		       (1ull << MSG_T_MAX_BODY)))
		return -EBADMSG;
	if (out->log_level > 7)
		return -EBADMSG;
	return 0;
}

struct index_ctx {
	uint64_t index;
	uint64_t seen;
};

static int
index_field(const struct field *f, void *ud)
{
	struct index_ctx *c = ud;

	if (f->tag != MSG_T_INDEX || SEEN(c->seen, f->tag))
		return -EBADMSG;
	MARK(c->seen, f->tag);
	return get_u64(f, &c->index);
}

int
msg_worker_socket_decode(const struct msg_in *in, uint64_t *index, int *fd)
{
	struct index_ctx c = { 0 };

	if (in->type != MSG_WORKER_SOCKET || in->nfds != 1)
		return -EBADMSG;
	if (fields_walk(in, index_field, &c) < 0 || !c.seen)
		return -EBADMSG;
	*index = c.index;
	*fd = in->fds[0];
	return 0;
}
