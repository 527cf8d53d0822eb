/*
 * hot_ok.c - the benchmark's hot handler: a tiny HTTP/1.1 server on the
 * unix socket $FAAS_LISTEN that answers every request "ok", keep-alive,
 * one epoll loop.  The same binary serves nginx in the bench (argument:
 * the socket path), so both paths reach the same server.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define BUF 65536

struct conn {
	int fd;
	size_t len;
	char buf[BUF];
};

static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
			     "Content-Length: 3\r\n\r\nok\n";

/* Answer every complete request in c->buf; bodies are skipped by their
 * Content-Length.  -1 when the peer must be dropped. */
static int
serve(struct conn *c)
{
	for (;;) {
		char *end = memmem(c->buf, c->len, "\r\n\r\n", 4), *cl;
		size_t head, body = 0;

		if (!end)
			return c->len == BUF ? -1 : 0;
		head = (size_t)(end - c->buf) + 4;
		*end = 0;
		cl = strcasestr(c->buf, "\r\ncontent-length:");
		if (cl)
			body = strtoul(cl + 17, NULL, 10);
		if (head + body > c->len) {
			*end = '\r';
			if (head + body > BUF)
				return -1;
			return 0;
		}
		/* MSG_NOSIGNAL: a peer that left (nginx closing an upstream
		 * connection) must not kill the server with SIGPIPE. */
		if (send(c->fd, answer, sizeof(answer) - 1, MSG_NOSIGNAL) !=
		    (ssize_t)sizeof(answer) - 1)
			return -1;
		memmove(c->buf, c->buf + head + body, c->len - head - body);
		c->len -= head + body;
	}
}

int
main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : getenv("FAAS_LISTEN");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct epoll_event ev, evs[64];
	int ls, ep;

	if (!path || strlen(path) >= sizeof(sa.sun_path))
		return 2;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	unlink(path);
	ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 512) < 0)
		return 1;
	ep = epoll_create1(0);
	ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = NULL };
	epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
	for (;;) {
		int n = epoll_wait(ep, evs, 64, -1);

		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			ssize_t r;

			if (!c) {
				int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);

				if (fd < 0 || !(c = calloc(1, sizeof(*c)))) {
					if (fd >= 0)
						close(fd);
					continue;
				}
				c->fd = fd;
				ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = c };
				epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				continue;
			}
			r = read(c->fd, c->buf + c->len, BUF - c->len);
			if (r > 0) {
				c->len += (size_t)r;
				if (serve(c) == 0)
					continue;
			} else if (r < 0 && errno == EINTR)
				continue;
			close(c->fd);
			free(c);
		}
	}
}
