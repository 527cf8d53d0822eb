/* Unit tests of common/msg.c: round trips, fd passing, strict decoding. */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "msg.h"
#include "tap.h"

static int
raw_send(int sock, const void *buf, size_t n)
{
	return send(sock, buf, n, 0) == (ssize_t)n ? 0 : -1;
}

static void
invoke_msg(struct msg_out *m, int fd, bool complete)
{
	msg_out_init(m, MSG_INVOKE);
	msg_put_u64(m, MSG_T_ID, 7);
	msg_put_str(m, MSG_T_INVOCATION_ID, "abc");
	msg_put_str(m, MSG_T_TENANT, "acme");
	msg_put_str(m, MSG_T_FUNCTION, "hello");
	msg_put_u64(m, MSG_T_VERSION, 3);
	msg_put_u64(m, MSG_T_UID, 200001);
	msg_put_str(m, MSG_T_CODE_DIR, "/var/lib/faasd/code/acme/x");
	msg_put_u64(m, MSG_T_RUNTIME, RUNTIME_EXEC);
	msg_put_str(m, MSG_T_HANDLER, "h.sh");
	msg_put_u64(m, MSG_T_TIMEOUT_MS, 1000);
	msg_put_u64(m, MSG_T_MEMORY_MB, 128);
	msg_put_u64(m, MSG_T_MAX_OUTPUT, 1 << 20);
	msg_put_str(m, MSG_T_ENV, "A=1");
	msg_put_str(m, MSG_T_ENV, "B=two");
	if (complete) {
		msg_put_u64(m, MSG_T_HAS_BODY, 1);
		msg_put_fd(m, fd);
	}
}

int
main(void)
{
	int sv[2], fd;
	struct msg_out m;
	struct msg_in in;
	struct msg_invoke iv;
	struct msg_invoke_done d;

	socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv);
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	invoke_msg(&m, fd, true);
	is_int(msg_send(sv[0], &m), 0, "send invoke");
	msg_out_free(&m);
	is_int(msg_recv(sv[1], &in), 1, "receive invoke");
	is_int(in.nfds, 1, "one fd arrived");
	is_int(msg_invoke_decode(&in, &iv), 0, "decode invoke");
	is_int(iv.id, 7, "id");
	is_str(iv.tenant, "acme", "tenant");
	is_int(iv.nenv, 2, "two env entries");
	is_str(iv.env[1], "B=two", "env value");
	ok(iv.env[2] == NULL, "env NULL-terminated");
	ok(iv.body_fd >= 0 && iv.body_fd != fd, "body fd is a new descriptor");
	ok(fcntl(iv.body_fd, F_GETFD) & FD_CLOEXEC, "received fd is close-on-exec");
	msg_in_free(&in);

	invoke_msg(&m, fd, false);
	msg_send(sv[0], &m);
	msg_out_free(&m);
	msg_recv(sv[1], &in);
	is_int(msg_invoke_decode(&in, &iv), -EBADMSG, "missing field refused");
	msg_in_free(&in);

	/* Duplicate non-repeatable tag. */
	invoke_msg(&m, fd, true);
	msg_put_str(&m, MSG_T_TENANT, "other");
	msg_send(sv[0], &m);
	msg_out_free(&m);
	msg_recv(sv[1], &in);
	is_int(msg_invoke_decode(&in, &iv), -EBADMSG, "duplicate tag refused");
	msg_in_free(&in);

	/* Env entry without '='. */
	invoke_msg(&m, fd, true);
	msg_put_str(&m, MSG_T_ENV, "NOEQUALS");
	msg_send(sv[0], &m);
	msg_out_free(&m);
	msg_recv(sv[1], &in);
	is_int(msg_invoke_decode(&in, &iv), -EBADMSG, "env without = refused");
	msg_in_free(&in);

	/* Wrong type for the decoder. */
	msg_out_init(&m, MSG_READY);
	msg_send(sv[0], &m);
	msg_out_free(&m);
	is_int(msg_recv(sv[1], &in), 1, "empty message received");
	is_int(msg_invoke_decode(&in, &iv), -EBADMSG, "type mismatch refused");
	msg_in_free(&in);

	/* Done with fds. */
	msg_out_init(&m, MSG_INVOKE_DONE);
	msg_put_u64(&m, MSG_T_ID, 9);
	msg_put_u64(&m, MSG_T_RESULT, INVOKE_EXITED);
	msg_put_fd(&m, fd);
	msg_put_fd(&m, fd);
	msg_send(sv[0], &m);
	msg_out_free(&m);
	msg_recv(sv[1], &in);
	is_int(msg_invoke_done_decode(&in, &d), 0, "decode done");
	ok(d.stdout_fd >= 0 && d.stderr_fd >= 0, "two output fds");
	msg_in_free(&in);

	msg_out_init(&m, MSG_INVOKE_DONE);
	msg_put_u64(&m, MSG_T_ID, 9);
	msg_put_u64(&m, MSG_T_RESULT, 99);
	msg_send(sv[0], &m);
	msg_out_free(&m);
	msg_recv(sv[1], &in);
	is_int(msg_invoke_done_decode(&in, &d), -EBADMSG, "unknown result refused");
	msg_in_free(&in);

	/* Hot instance messages. */
	{
		struct msg_hot h;

		msg_out_init(&m, MSG_HOT_READY);
		msg_put_u64(&m, MSG_T_ID, 7);
		msg_put_u64(&m, MSG_T_DURATION_US, 1234);
		msg_put_fd(&m, fd);
		msg_send(sv[0], &m);
		msg_out_free(&m);
		msg_recv(sv[1], &in);
		is_int(msg_hot_decode(&in, &h), 0, "ready decoded");
		ok(h.id == 7 && h.duration_us == 1234 && h.fd >= 0, "ready fields and socket");
		msg_in_free(&in);

		msg_out_init(&m, MSG_HOT_READY);
		msg_put_u64(&m, MSG_T_ID, 7);
		msg_send(sv[0], &m);
		msg_out_free(&m);
		msg_recv(sv[1], &in);
		is_int(msg_hot_decode(&in, &h), -EBADMSG, "ready without a socket refused");
		msg_in_free(&in);

		msg_out_init(&m, MSG_HOT_GONE);
		msg_put_u64(&m, MSG_T_ID, 8);
		msg_put_u64(&m, MSG_T_RESULT, INVOKE_INIT_FAILED);
		msg_put_u64(&m, MSG_T_CODE, 4);
		msg_put_str(&m, MSG_T_MESSAGE, "exited before it listened");
		msg_send(sv[0], &m);
		msg_out_free(&m);
		msg_recv(sv[1], &in);
		is_int(msg_hot_decode(&in, &h), 0, "gone decoded");
		ok(h.result == INVOKE_INIT_FAILED && h.code == 4 && h.fd == -1 &&
			   strcmp(h.message, "exited before it listened") == 0,
		   "gone fields");
		msg_in_free(&in);

		msg_out_init(&m, MSG_HOT_GONE);
		msg_put_u64(&m, MSG_T_ID, 8);
		msg_put_u64(&m, MSG_T_RESULT, 99);
		msg_send(sv[0], &m);
		msg_out_free(&m);
		msg_recv(sv[1], &in);
		is_int(msg_hot_decode(&in, &h), -EBADMSG, "gone with an unknown result refused");
		msg_in_free(&in);

		msg_out_init(&m, MSG_HOT_STOP);
		msg_put_u64(&m, MSG_T_ID, 8);
		msg_put_u64(&m, MSG_T_CODE, 1);
		msg_send(sv[0], &m);
		msg_out_free(&m);
		msg_recv(sv[1], &in);
		is_int(msg_hot_decode(&in, &h), -EBADMSG, "stop with a field it has not refused");
		msg_in_free(&in);

		/* MSG_HOT_START carries MSG_INVOKE's fields, without a body,
		 * and the write ends of the stdout and stderr pipes. */
		invoke_msg(&m, fd, false);
		m.type = MSG_HOT_START;
		msg_put_u64(&m, MSG_T_HAS_BODY, 0);
		msg_put_fd(&m, fd);
		msg_put_fd(&m, fd);
		msg_send(sv[0], &m);
		msg_out_free(&m);
		msg_recv(sv[1], &in);
		is_int(msg_invoke_decode(&in, &iv), 0, "hot start decoded");
		ok(iv.body_fd == -1 && iv.nenv == 2, "hot start: no body, env");
		ok(iv.out_fd >= 0 && iv.err_fd >= 0 && iv.out_fd != iv.err_fd,
		   "hot start: its stdout and stderr pipes");
		msg_in_free(&in);
		invoke_msg(&m, fd, false);
		m.type = MSG_HOT_START;
		msg_put_u64(&m, MSG_T_HAS_BODY, 0);
		msg_put_fd(&m, fd);
		msg_send(sv[0], &m);
		msg_out_free(&m);
		msg_recv(sv[1], &in);
		is_int(msg_invoke_decode(&in, &iv), -EBADMSG, "hot start with one pipe refused");
		msg_in_free(&in);
		invoke_msg(&m, fd, true);
		m.type = MSG_HOT_START;
		msg_send(sv[0], &m);
		msg_out_free(&m);
		msg_recv(sv[1], &in);
		is_int(msg_invoke_decode(&in, &iv), -EBADMSG, "hot start with a body refused");
		msg_in_free(&in);
	}

	/* Raw garbage: bad magic, bad length, truncated field. */
	is_int(raw_send(sv[0], "garbage-garbage", 15), 0, "send garbage");
	is_int(msg_recv(sv[1], &in), -EBADMSG, "garbage refused");
	{
		uint8_t b[12 + 6] = { 0 };
		uint32_t magic = MSG_MAGIC, len = 6, flen = 100;
		uint16_t ver = MSG_VERSION, type = MSG_INVOKE, tag = MSG_T_TENANT;

		memcpy(b, &magic, 4);
		memcpy(b + 4, &ver, 2);
		memcpy(b + 6, &type, 2);
		memcpy(b + 8, &len, 4);
		memcpy(b + 12, &tag, 2);
		memcpy(b + 14, &flen, 4);
		raw_send(sv[0], b, sizeof(b));
		is_int(msg_recv(sv[1], &in), 1, "framed message with lying field length");
		is_int(msg_invoke_decode(&in, &iv), -EBADMSG, "field past the end refused");
		msg_in_free(&in);
		ver = 99;
		memcpy(b + 4, &ver, 2);
		raw_send(sv[0], b, sizeof(b));
		is_int(msg_recv(sv[1], &in), -EBADMSG, "other protocol version refused");
	}
	/* Oversized message cannot be built. */
	{
		static char big[MSG_MAX_SIZE];

		memset(big, 'x', sizeof(big) - 1);
		msg_out_init(&m, MSG_INVOKE);
		msg_put_str(&m, MSG_T_ENV, big);
		is_int(msg_send(sv[0], &m), -EMSGSIZE, "oversized message refused");
		msg_out_free(&m);
	}
	close(sv[0]);
	is_int(msg_recv(sv[1], &in), 0, "EOF when the peer closes");
	return done();
}
