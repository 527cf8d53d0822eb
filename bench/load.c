/*
 * load.c - faasd's benchmark driver.
 *
 *   load http HOST PORT PATH CONNS SECONDS [HEADER]
 *       HTTP/1.1 keep-alive GETs from CONNS threads for SECONDS.
 *   load exec CONNS SECONDS PROGRAM [ARGS...]
 *       fork+exec PROGRAM from CONNS threads for SECONDS, reading its
 *       stdout to EOF (the cost floor of a cold invocation).
 *
 * Prints one line: "requests=N errors=N rps=X p50_ms=X p99_ms=X", preceded
 * by "last_error=S" (an HTTP status, or -1 for a connection that failed)
 * when there were errors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES 2000000

static double *samples;
static long nsamples, nerrors;
static int last_error; /* HTTP status of the last failed request, -1: I/O */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static double deadline;
static const char *host, *path, *header;
static int port;
static char **prog;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
record(double dt, int err)
{
	pthread_mutex_lock(&lock);
	if (err) {
		nerrors++;
		last_error = err;
	} else if (nsamples < MAX_SAMPLES)
		samples[nsamples++] = dt;
	pthread_mutex_unlock(&lock);
}

static int
connect_to(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	inet_pton(AF_INET, host, &sa.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* One request/response on fd; returns the status or -1. */
static int
roundtrip(int fd, const char *req, size_t reqlen)
{
	char buf[65536];
	size_t have = 0;
	char *end;
	long clen = 0;
	int status;

	if (write(fd, req, reqlen) != (ssize_t)reqlen)
		return -1;
	for (;;) {
		ssize_t r = read(fd, buf + have, sizeof(buf) - have - 1);

		if (r <= 0)
			return -1;
		have += (size_t)r;
		buf[have] = 0;
		if ((end = strstr(buf, "\r\n\r\n")))
			break;
	}
	if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
		return -1;
	{
		char *cl = strcasestr(buf, "\r\nContent-Length:");

		if (cl)
			clen = strtol(cl + 17, NULL, 10);
	}
	{
		size_t body = have - (size_t)(end + 4 - buf);

		while ((long)body < clen) {
			ssize_t r = read(fd, buf, sizeof(buf));

			if (r <= 0)
				return -1;
			body += (size_t)r;
		}
	}
	return status;
}

static void *
http_thread(void *arg)
{
	char req[1024];
	int fd = -1, n;

	(void)arg;
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n%s%s\r\n", path, host,
		     header ? header : "", header ? "\r\n" : "");
	while (now() < deadline) {
		double t0;
		int st, reused = fd >= 0;

		if (fd < 0 && (fd = connect_to()) < 0) {
			record(0, -1);
			usleep(1000);
			continue;
		}
		t0 = now();
		st = roundtrip(fd, req, (size_t)n);
		if (st < 0) {
			close(fd);
			fd = -1;
			/* A server may close an idle or long-used keep-alive
			 * connection: retry once on a fresh one, as clients do. */
			if (reused && (fd = connect_to()) >= 0) {
				st = roundtrip(fd, req, (size_t)n);
				if (st < 0) {
					close(fd);
					fd = -1;
				}
			}
		}
		record(now() - t0, st == 200 ? 0 : st);
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void *
exec_thread(void *arg)
{
	(void)arg;
	while (now() < deadline) {
		int p[2], st;
		char buf[4096];
		double t0 = now();
		pid_t pid;

		if (pipe2(p, O_CLOEXEC) < 0) {
			record(0, 1);
			continue;
		}
		pid = fork();
		if (pid == 0) {
			dup2(p[1], 1);
			execv(prog[0], prog);
			_exit(127);
		}
		close(p[1]);
		while (read(p[0], buf, sizeof(buf)) > 0)
			;
		close(p[0]);
		waitpid(pid, &st, 0);
		record(now() - t0, pid < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0);
	}
	return NULL;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	int conns, secs;
	void *(*fn)(void *);
	pthread_t th[256];
	double t0;

	if (argc >= 7 && strcmp(argv[1], "http") == 0) {
		host = argv[2];
		port = atoi(argv[3]);
		path = argv[4];
		conns = atoi(argv[5]);
		secs = atoi(argv[6]);
		header = argc > 7 ? argv[7] : NULL;
		fn = http_thread;
	} else if (argc >= 5 && strcmp(argv[1], "exec") == 0) {
		conns = atoi(argv[2]);
		secs = atoi(argv[3]);
		prog = argv + 4;
		fn = exec_thread;
	} else {
		fprintf(stderr, "usage: load http HOST PORT PATH CONNS SECONDS [HEADER]\n"
				"       load exec CONNS SECONDS PROGRAM [ARGS...]\n");
		return 2;
	}
	if (conns < 1 || conns > 256 || secs < 1)
		return 2;
	samples = malloc(sizeof(double) * MAX_SAMPLES);
	t0 = now();
	deadline = t0 + secs;
	for (int i = 0; i < conns; i++)
		pthread_create(&th[i], NULL, fn, NULL);
	for (int i = 0; i < conns; i++)
		pthread_join(th[i], NULL);
	qsort(samples, (size_t)nsamples, sizeof(double), cmp);
	if (nerrors)
		printf("last_error=%d ", last_error);
	printf("requests=%ld errors=%ld rps=%.0f p50_ms=%.3f p99_ms=%.3f\n", nsamples, nerrors,
	       nsamples / (now() - t0), nsamples ? samples[nsamples / 2] * 1e3 : 0,
	       nsamples ? samples[(long)(nsamples * 0.99)] * 1e3 : 0);
	return 0;
}
