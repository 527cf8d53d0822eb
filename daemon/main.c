/*
 * main.c - the faasd parent process: configuration, state directory, the
 * listening socket, and supervision of the gateway and the workers.
 *
 * The parent keeps root but does nothing on the request path: it prepares
 * the state directory and database (migrations, first admin token), binds
 * the listen socket, creates the socketpairs, forks one gateway (made
 * unprivileged at once) and N workers, and then only supervises: a dead
 * child is restarted with exponential backoff; when the gateway dies the
 * workers are restarted with it (their in-flight work had nobody to answer
 * to).  SIGHUP reloads the config file; SIGTERM drains and stops everything.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "gateway/gateway.h"
#include "log.h"
#include "msg.h"
#include "sb.h"
#include "store.h"
#include "util.h"
#include "version.h"
#include "worker/worker.h"

#define MAX_WORKERS    64
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 30000
#define STABLE_US      (10ull * 1000000)

struct child {
	pid_t pid;
	int ctl_fd;        /* parent's end of the control socket */
	unsigned failures; /* consecutive quick deaths */
	uint64_t started_us;
	uint64_t restart_at_us; /* 0: not waiting to restart */
};

struct parent {
	struct faasd_config cfg;
	const char *config_path;
	bool config_explicit;
	uid_t uid;
	gid_t gid;
	int listen_fd;
	struct child gw;
	struct child workers[MAX_WORKERS];
	int pending_gw_fds[MAX_WORKERS]; /* gateway ends for the next gateway start */
	bool ready_sent;
	bool token_created;
	struct sb_cgroups cgroups;
	char url[160]; /* http://ADDR:PORT actually bound */
};

static void
usage(FILE *f)
{
	fprintf(f,
		"Usage: faasd [--config FILE] [--listen ADDR:PORT] [--state-dir DIR] [--workers N]\n"
		"\n"
		"Self-hosted Function-as-a-Service daemon.  Runs in the foreground and logs\n"
		"to stderr; systemd starts it as faasd.service.\n"
		"\n"
		"  --config FILE      settings file (default /etc/faasd/faasd.conf if present)\n"
		"  --listen ADDR:PORT HTTP address (default 127.0.0.1:8080; port 0 picks one)\n"
		"  --state-dir DIR    database, code and admin token (default /var/lib/faasd)\n"
		"  --workers N        worker processes (default: number of CPUs)\n"
		"  --user NAME        account the gateway runs as (default faasd)\n"
		"  --version          print the version\n"
		"\n"
		"On first start faasd writes an admin token to STATE/admin.token (mode 0600).\n"
		"Signals: SIGHUP reloads the config file, SIGTERM drains and stops.\n");
}

static int
parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[128];
	const char *colon = strrchr(spec, ':');
	uint64_t port;
	size_t hl;

	if (!colon || parse_u64(colon + 1, 0, 65535, &port) < 0)
		return -EINVAL;
	hl = (size_t)(colon - spec);
	if (hl == 0 || hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, spec, hl);
	host[hl] = 0;
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[' && host[hl - 1] == ']') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		host[hl - 1] = 0;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
			return -EINVAL;
		*len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -EINVAL;
		*len = sizeof(*s4);
	}
	return 0;
}

static int
open_listen(struct parent *p)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char addr[INET6_ADDRSTRLEN];
	int fd, one = 1;
	uint16_t port;

	if (parse_listen(p->cfg.listen, &ss, &len) < 0) {
		log_err("--listen: '%s' is not ADDRESS:PORT (e.g. 127.0.0.1:8080)", p->cfg.listen);
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 1024) < 0) {
		int e = errno;

		log_err("cannot listen on %s: %s", p->cfg.listen, strerror(e));
		close(fd);
		return -e;
	}
	len = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &len);
	if (ss.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof(addr));
		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		(void)str_printf(p->url, sizeof(p->url), "http://[%s]:%u", addr, port);
	} else {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof(addr));
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		(void)str_printf(p->url, sizeof(p->url), "http://%s:%u", addr, port);
	}
	log_notice("listening on %s", p->url);
	if (p->token_created)
		log_notice("created the admin token: %s/admin.token (mode 0600); use it with "
			   "'faasctl login --url %s --token-file %s/admin.token'",
			   p->cfg.state_dir, p->url, p->cfg.state_dir);
	p->listen_fd = fd;
	return 0;
}

static int
mkdir_owned(const char *path, mode_t mode, uid_t uid, gid_t gid)
{
	struct stat st;

	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return -errno;
	if (lstat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (chown(path, uid, gid) < 0 || chmod(path, mode) < 0)
		return -errno;
	return 0;
}

/*
 * The gateway (faasd user) and handlers (tenant uids) reach files under
 * STATE by path, so every ancestor of STATE must be searchable by others.
 * Say so plainly instead of letting the gateway fail in a restart loop.
 */
static int
check_ancestors(const char *state)
{
	char path[PATH_MAX];
	struct stat st;
	char *slash;

	if (str_copy(path, sizeof(path), state) < 0)
		return -ENAMETOOLONG;
	while ((slash = strrchr(path, '/')) != NULL) {
		if (slash == path)
			slash[1] = 0;
		else
			*slash = 0;
		if (stat(path, &st) == 0 && !(st.st_mode & S_IXOTH)) {
			log_err("state directory %s is not reachable by unprivileged users: %s has mode "
				"%04o; run 'chmod o+x %s' or choose a --state-dir elsewhere (e.g. /var/lib/faasd)",
				state, path, st.st_mode & 07777, path);
			return -EACCES;
		}
		if (slash == path)
			break;
	}
	return 0;
}

/* Prepare STATE: root-owned top, faasd-owned db/ code/ tmp/. */
static int
prepare_state(struct parent *p)
{
	static const struct {
		const char *name;
		mode_t mode;
	} dirs[] = { { "db", 0700 }, { "code", 0755 }, { "tmp", 0700 } };
	static const char *const root_only[] = { "root" };
	char path[PATH_MAX + 32], diag[512];
	struct store *s = NULL;
	bool created;
	int r;

	if (mkdir(p->cfg.state_dir, 0755) < 0 && errno != EEXIST) {
		log_err("cannot create state directory %s: %s", p->cfg.state_dir, strerror(errno));
		return -errno;
	}
	r = check_ancestors(p->cfg.state_dir);
	if (r < 0)
		return r;
	if (chmod(p->cfg.state_dir, 0755) < 0) {
		log_err("state directory %s: %s", p->cfg.state_dir, strerror(errno));
		return -errno;
	}
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		(void)str_printf(path, sizeof(path), "%s/%s", p->cfg.state_dir, dirs[i].name);
		r = mkdir_owned(path, dirs[i].mode, p->uid, p->gid);
		if (r < 0) {
			log_err("cannot prepare %s: %s", path, strerror(-r));
			return r;
		}
	}
	/* Mount point of each sandbox's new root (inside its own mount
	 * namespace): root-owned so nothing can pre-empt it, searchable
	 * because the sandbox builds its root as the tenant's uid. */
	for (size_t i = 0; i < ARRAY_SIZE(root_only); i++) {
		(void)str_printf(path, sizeof(path), "%s/%s", p->cfg.state_dir, root_only[i]);
		r = mkdir_owned(path, 0755, 0, 0);
		if (r < 0) {
			log_err("cannot prepare %s: %s", path, strerror(-r));
			return r;
		}
	}
	/* Leftover uploads of a crashed gateway. */
	(void)str_printf(path, sizeof(path), "%s/tmp", p->cfg.state_dir);
	{
		char cmdpath[PATH_MAX + 64];
		int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (dfd >= 0) {
			DIR *d = fdopendir(dfd);
			struct dirent *de;

			while (d && (de = readdir(d)))
				if (str_startswith(de->d_name, "upload-")) {
					(void)str_printf(cmdpath, sizeof(cmdpath), "%s/%s", path,
							 de->d_name);
					unlink(cmdpath);
				}
			if (d)
				closedir(d);
			else
				close(dfd);
		}
	}
	(void)str_printf(path, sizeof(path), "%s/db/faasd.db", p->cfg.state_dir);
	r = store_open(path, &s, diag, sizeof(diag));
	if (r < 0) {
		log_err("%s", diag);
		return r;
	}
	(void)str_printf(path, sizeof(path), "%s/admin.token", p->cfg.state_dir);
	r = auth_bootstrap_admin(s, path, &created);
	store_close(s);
	if (r < 0) {
		log_err("cannot create the admin token %s: %s", path, strerror(-r));
		return r;
	}
	p->token_created = created;
	/* The parent opened the database as root: hand it to the gateway. */
	{
		static const char *const files[] = { "faasd.db", "faasd.db-wal", "faasd.db-shm" };

		for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
			(void)str_printf(path, sizeof(path), "%s/db/%s", p->cfg.state_dir,
					 files[i]);
			if (chown(path, p->uid, p->gid) < 0 && errno != ENOENT) {
				log_err("chown %s: %s", path, strerror(errno));
				return -errno;
			}
		}
	}
	return 0;
}

/*
 * Find the cgroup subtree, make it ours, and remove what a crashed faasd
 * left in it.  The subtree is this daemon's alone (named after its state
 * directory): a second faasd started from the same cgroup, as tests and
 * benchmarks do, must not take the first one's sandboxes for leftovers.
 * Also check that user namespaces work here: without them no handler can
 * run, and the reason is better said now than per request.
 */
static int
prepare_sandboxing(struct parent *p)
{
	_cleanup_free_ char *self = NULL;
	char name[32];
	int r;

	r = sb_probe_userns();
	if (r < 0) {
		log_err("cannot create user namespaces (%s): faasd runs every handler in one; "
			"check sysctl user.max_user_namespaces (and kernel.unprivileged_userns_clone "
			"on older Debian kernels)",
			strerror(-r));
		return r;
	}
	r = read_file_bounded("/proc/self/cgroup", 1u << 16, &self, NULL);
	if (r == 0)
		r = sb_cgroup_detect("/sys/fs/cgroup", self,
				     sb_cgroup_name(p->cfg.state_dir, name, sizeof(name)),
				     &p->cgroups);
	if (r < 0) {
		log_err("no usable cgroup hierarchy under /sys/fs/cgroup (%s): faasd needs the memory, "
			"pids and cpu controllers (cgroup v2, or v1/hybrid)",
			strerror(-r));
		return r;
	}
	r = sb_cgroup_setup(&p->cgroups);
	if (r < 0) {
		log_err("cannot set up faasd's cgroups in %s: %s (under systemd, the unit needs Delegate=yes)",
			p->cgroups.mode == SB_CG_V2 ? p->cgroups.v2 : p->cgroups.v1_memory,
			strerror(-r));
		return r;
	}
	r = sb_cgroup_cleanup(&p->cgroups, "");
	if (r > 0)
		log_notice("removed %d sandbox cgroups left by an earlier run", r);
	log_info("cgroup %s: %s", p->cgroups.mode == SB_CG_V2 ? "v2" : "v1",
		 p->cgroups.mode == SB_CG_V2 ? p->cgroups.v2 : p->cgroups.v1_memory);
	return 0;
}

static int
seqpacket_pair(int sv[2])
{
	int sz = 1 << 20;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	for (int i = 0; i < 2; i++) {
		setsockopt(sv[i], SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz));
		setsockopt(sv[i], SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
	}
	return 0;
}

static uint64_t
backoff_us(struct child *c)
{
	uint64_t ms = BACKOFF_MIN_MS;

	for (unsigned i = 1; i < c->failures && ms < BACKOFF_MAX_MS; i++)
		ms *= 2;
	return MIN(ms, (uint64_t)BACKOFF_MAX_MS) * 1000;
}

/* Start worker i; gw_end receives the gateway's end of its data socket. */
static int
start_worker(struct parent *p, unsigned i, int *gw_end)
{
	int data[2], ctl[2];
	pid_t pid;

	if (seqpacket_pair(data) < 0)
		return -errno;
	if (seqpacket_pair(ctl) < 0) {
		close(data[0]);
		close(data[1]);
		return -errno;
	}
	pid = fork();
	if (pid < 0) {
		int e = errno;

		close(data[0]);
		close(data[1]);
		close(ctl[0]);
		close(ctl[1]);
		return -e;
	}
	if (pid == 0) {
		/* Only our two sockets stay open. */
		int cfd = fcntl(ctl[1], F_DUPFD_CLOEXEC, 3), dfd;
		char name[16];

		(void)str_printf(name, sizeof(name), "faasd-worker%u", i);
		prctl(PR_SET_NAME, name, 0, 0, 0);
		dfd = fcntl(data[1], F_DUPFD_CLOEXEC, 3);
		if (close_fds_except((int[]){ cfd, dfd }, 2) < 0)
			_exit(1);
		_exit(worker_main(i, cfd, dfd, &p->cfg, &p->cgroups));
	}
	close(data[1]);
	close(ctl[1]);
	p->workers[i].pid = pid;
	p->workers[i].ctl_fd = ctl[0];
	p->workers[i].started_us = now_mono_us();
	p->workers[i].restart_at_us = 0;
	*gw_end = data[0];
	return 0;
}

static int
start_gateway(struct parent *p)
{
	int ctl[2], fds[MAX_WORKERS];
	pid_t pid;

	if (seqpacket_pair(ctl) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(ctl[0]);
		close(ctl[1]);
		return -errno;
	}
	if (pid == 0) {
		int r;

		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		prctl(PR_SET_NAME, "faasd-gateway", 0, 0, 0);
		close(ctl[0]);
		for (unsigned i = 0; i < MAX_WORKERS; i++)
			if (p->workers[i].ctl_fd >= 0)
				close(p->workers[i].ctl_fd);
		for (unsigned i = 0; i < p->cfg.workers; i++)
			fds[i] = p->pending_gw_fds[i];
		r = privdrop_gateway(p->uid, p->gid);
		if (r < 0) {
			log_err("cannot drop the gateway's privileges: %s", strerror(-r));
			_exit(1);
		}
		/* Death signal is cleared by the uid change: set it again. */
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		_exit(gateway_main(&p->cfg, ctl[1], p->listen_fd, fds, p->cfg.workers));
	}
	close(ctl[1]);
	for (unsigned i = 0; i < p->cfg.workers; i++) {
		if (p->pending_gw_fds[i] >= 0)
			close(p->pending_gw_fds[i]);
		p->pending_gw_fds[i] = -1;
	}
	p->gw.pid = pid;
	p->gw.ctl_fd = ctl[0];
	p->gw.started_us = now_mono_us();
	p->gw.restart_at_us = 0;
	return 0;
}

/* Start the gateway and every worker (first start, or after the gateway died). */
static int
start_all(struct parent *p)
{
	int r;

	for (unsigned i = 0; i < p->cfg.workers; i++) {
		r = start_worker(p, i, &p->pending_gw_fds[i]);
		if (r < 0) {
			log_err("cannot start worker %u: %s", i, strerror(-r));
			return r;
		}
	}
	r = start_gateway(p);
	if (r < 0)
		log_err("cannot start the gateway: %s", strerror(-r));
	return r;
}

static void
send_worker_socket(struct parent *p, unsigned i, int fd)
{
	struct msg_out m;
	int r;

	msg_out_init(&m, MSG_WORKER_SOCKET);
	msg_put_u64(&m, MSG_T_INDEX, i);
	msg_put_fd(&m, fd);
	r = msg_send(p->gw.ctl_fd, &m);
	msg_out_free(&m);
	if (r < 0)
		log_err("cannot hand worker %u to the gateway: %s", i, strerror(-r));
}

static void
send_config(struct parent *p)
{
	struct msg_out m;

	msg_out_init(&m, MSG_CONFIG);
	msg_put_u64(&m, MSG_T_LOG_LEVEL, (uint64_t)p->cfg.log_level);
	msg_put_u64(&m, MSG_T_DRAIN_TIMEOUT_S, p->cfg.drain_timeout_s);
	msg_put_u64(&m, MSG_T_MAX_BODY, p->cfg.max_body_bytes);
	if (p->gw.pid > 0)
		(void)msg_send(p->gw.ctl_fd, &m);
	for (unsigned i = 0; i < p->cfg.workers; i++)
		if (p->workers[i].pid > 0)
			(void)msg_send(p->workers[i].ctl_fd, &m);
	msg_out_free(&m);
}

static void
describe_exit(const char *who, int status, char *buf, size_t n)
{
	if (WIFEXITED(status))
		(void)str_printf(buf, n, "%s exited with status %d", who, WEXITSTATUS(status));
	else
		(void)str_printf(buf, n, "%s was killed by signal %d (%s)", who, WTERMSIG(status),
				 strsignal(WTERMSIG(status)));
}

static void
child_gone(struct child *c, const char *who, int status)
{
	char what[128];
	uint64_t now = now_mono_us();

	describe_exit(who, status, what, sizeof(what));
	if (now - c->started_us >= STABLE_US)
		c->failures = 0;
	c->failures++;
	c->pid = 0;
	if (c->ctl_fd >= 0)
		close(c->ctl_fd);
	c->ctl_fd = -1;
	c->restart_at_us = now + backoff_us(c);
	log_err("%s; restarting in %llu ms", what,
		(unsigned long long)((c->restart_at_us - now) / 1000));
}

static void
stop_workers(struct parent *p, int sig)
{
	for (unsigned i = 0; i < p->cfg.workers; i++)
		if (p->workers[i].pid > 0)
			kill(p->workers[i].pid, sig);
}

/* Wait until every listed child is gone, or until the deadline. */
static void
reap_until(struct parent *p, uint64_t deadline_us)
{
	for (;;) {
		bool any = p->gw.pid > 0;
		int status;
		pid_t pid;

		for (unsigned i = 0; i < p->cfg.workers; i++)
			any |= p->workers[i].pid > 0;
		if (!any || now_mono_us() >= deadline_us)
			return;
		pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0) {
			usleep(10000);
			continue;
		}
		if (pid == p->gw.pid)
			p->gw.pid = 0;
		for (unsigned i = 0; i < p->cfg.workers; i++)
			if (pid == p->workers[i].pid)
				p->workers[i].pid = 0;
	}
}

static void
shutdown_all(struct parent *p)
{
	(void)sd_notify_send("STOPPING=1");
	log_notice("stopping: draining in-flight requests");
	if (p->gw.pid > 0) {
		kill(p->gw.pid, SIGTERM);
		reap_until(p, now_mono_us() + (p->cfg.drain_timeout_s + 5) * 1000000ull);
		if (p->gw.pid > 0)
			kill(p->gw.pid, SIGKILL);
	}
	stop_workers(p, SIGTERM);
	reap_until(p, now_mono_us() + 5 * 1000000ull);
	stop_workers(p, SIGKILL);
	if (p->gw.pid > 0)
		kill(p->gw.pid, SIGKILL);
	reap_until(p, now_mono_us() + 2 * 1000000ull);
	/* The subtree is named after the state directory: without this,
	 * every state directory ever used would leave an empty one. */
	(void)sb_cgroup_cleanup(&p->cgroups, "");
	sb_cgroup_teardown(&p->cgroups);
	log_notice("stopped");
}

static void
reload(struct parent *p)
{
	struct faasd_config fresh;
	char diag[512];
	int r;

	(void)sd_notify_send("RELOADING=1");
	fresh = p->cfg;
	r = config_load(&fresh, p->config_path, diag, sizeof(diag));
	if (r < 0 && !(r == -ENOENT && !p->config_explicit)) {
		log_err("reload failed, keeping the running configuration: %s", diag);
	} else {
		/* Only these settings change without a restart. */
		p->cfg.log_level = fresh.log_level;
		p->cfg.drain_timeout_s = fresh.drain_timeout_s;
		p->cfg.max_body_bytes = fresh.max_body_bytes;
		log_set_level(p->cfg.log_level);
		send_config(p);
		log_notice("configuration reloaded from %s", p->config_path);
	}
	(void)sd_notify_send("READY=1");
}

static void
handle_ctl(struct parent *p)
{
	struct msg_in in;

	/* EOF means the gateway died; SIGCHLD handles that. */
	while (msg_recv(p->gw.ctl_fd, &in) == 1) {
		if (in.type == MSG_READY && in.nfds == 0) {
			if (!p->ready_sent) {
				(void)sd_notify_send("READY=1\nSTATUS=serving");
				p->ready_sent = true;
				log_notice("faasd %s ready", FAASD_VERSION);
			}
		} else {
			log_err("malformed message (type %u) from the gateway; restarting it",
				in.type);
			kill(p->gw.pid, SIGKILL);
		}
		msg_in_free(&in);
	}
}

static int
run(struct parent *p)
{
	sigset_t set;
	int sfd, epfd;
	struct epoll_event ev = { .events = EPOLLIN };

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || epfd < 0)
		return 1;
	ev.data.u32 = 0;
	epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &ev);
	if (start_all(p) < 0)
		return 1;
	ev.data.u32 = 1;
	epoll_ctl(epfd, EPOLL_CTL_ADD, p->gw.ctl_fd, &ev);

	for (;;) {
		struct epoll_event evs[8];
		uint64_t now = now_mono_us(), next = UINT64_MAX;
		int n, timeout;

		if (p->gw.restart_at_us)
			next = p->gw.restart_at_us;
		for (unsigned i = 0; i < p->cfg.workers; i++)
			if (p->workers[i].restart_at_us)
				next = MIN(next, p->workers[i].restart_at_us);
		timeout = next == UINT64_MAX ? -1
			  : next <= now      ? 0
					     : (int)((next - now) / 1000 + 1);
		n = epoll_wait(epfd, evs, ARRAY_SIZE(evs), timeout);
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u32 == 1) {
				handle_ctl(p);
				continue;
			}
			struct signalfd_siginfo si;

			while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
					shutdown_all(p);
					return 0;
				}
				if (si.ssi_signo == SIGHUP)
					reload(p);
			}
			for (;;) {
				int status;
				pid_t pid = waitpid(-1, &status, WNOHANG);

				if (pid <= 0)
					break;
				if (pid == p->gw.pid) {
					epoll_ctl(epfd, EPOLL_CTL_DEL, p->gw.ctl_fd, NULL);
					child_gone(&p->gw, "gateway", status);
					/* Workers go with it; they restart together. */
					stop_workers(p, SIGKILL);
					continue;
				}
				for (unsigned w = 0; w < p->cfg.workers; w++) {
					char who[32];

					if (pid != p->workers[w].pid)
						continue;
					(void)str_printf(who, sizeof(who), "worker %u", w);
					child_gone(&p->workers[w], who, status);
					if (WIFEXITED(status) &&
					    WEXITSTATUS(status) == WORKER_EXIT_BAD_PEER &&
					    p->gw.pid > 0) {
						log_err("worker %u reported a malformed message: restarting the gateway",
							w);
						kill(p->gw.pid, SIGKILL);
					}
				}
			}
		}
		now = now_mono_us();
		if (p->gw.pid == 0 && p->gw.restart_at_us && p->gw.restart_at_us <= now) {
			bool workers_gone = true;

			for (unsigned w = 0; w < p->cfg.workers; w++)
				workers_gone &= p->workers[w].pid == 0;
			if (!workers_gone)
				continue; /* wait for their SIGCHLD */
			for (unsigned w = 0; w < p->cfg.workers; w++)
				p->workers[w].restart_at_us = 0;
			if (start_all(p) < 0)
				return 1;
			ev.data.u32 = 1;
			epoll_ctl(epfd, EPOLL_CTL_ADD, p->gw.ctl_fd, &ev);
			send_config(p);
			continue;
		}
		for (unsigned w = 0; w < p->cfg.workers; w++) {
			int gw_end = -1;

			if (p->gw.pid == 0 || p->workers[w].pid != 0 ||
			    !p->workers[w].restart_at_us || p->workers[w].restart_at_us > now)
				continue;
			if (start_worker(p, w, &gw_end) < 0 || gw_end < 0) {
				p->workers[w].restart_at_us = now + backoff_us(&p->workers[w]);
				continue;
			}
			send_worker_socket(p, w, gw_end);
			close(gw_end);
		}
	}
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "workers", required_argument, NULL, 'w' },
		{ "user", required_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	static struct parent par;
	struct parent *p = &par;
	const char *flags[5][2] = { { 0 } };
	unsigned nflags = 0;
	char diag[512];
	struct passwd *pw;
	struct rlimit rl = { 65536, 65536 };
	int c, r;

	log_set_ident("faasd");
	config_defaults(&p->cfg);
	p->config_path = "/etc/faasd/faasd.conf";
	while ((c = getopt_long(argc, argv, "c:l:s:w:u:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			p->config_path = optarg;
			p->config_explicit = true;
			break;
		case 'l':
			flags[nflags][0] = "listen", flags[nflags++][1] = optarg;
			break;
		case 's':
			flags[nflags][0] = "state_dir", flags[nflags++][1] = optarg;
			break;
		case 'w':
			flags[nflags][0] = "workers", flags[nflags++][1] = optarg;
			break;
		case 'u':
			flags[nflags][0] = "user", flags[nflags++][1] = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("faasd %s (schema %d)\n", FAASD_VERSION, store_schema_version());
			return 0;
		default:
			usage(stderr);
			return 2;
		}
		if (nflags == ARRAY_SIZE(flags))
			nflags--;
	}
	if (optind < argc) {
		fprintf(stderr, "faasd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	r = config_load(&p->cfg, p->config_path, diag, sizeof(diag));
	if (r < 0 && !(r == -ENOENT && !p->config_explicit)) {
		fprintf(stderr, "faasd: %s\n", diag);
		return 2;
	}
	for (unsigned i = 0; i < nflags; i++) {
		char sub[256], abs[PATH_MAX];
		const char *v = flags[i][1];

		/* A relative --state-dir is taken from the current directory. */
		if (strcmp(flags[i][0], "state_dir") == 0 && v[0] != '/') {
			char cwd[PATH_MAX];

			if (!getcwd(cwd, sizeof(cwd)) ||
			    str_printf(abs, sizeof(abs), "%s/%s", cwd, v) < 0) {
				fprintf(stderr, "faasd: --state-dir: path too long\n");
				return 2;
			}
			v = abs;
		}
		if (config_set(&p->cfg, flags[i][0], v, sub, sizeof(sub)) < 0) {
			fprintf(stderr, "faasd: --%s\n", sub);
			return 2;
		}
	}
	log_set_level(p->cfg.log_level);
	if (p->cfg.workers > MAX_WORKERS)
		p->cfg.workers = MAX_WORKERS;
	if (geteuid() != 0) {
		fprintf(stderr,
			"faasd: must run as root (it starts handlers as per-tenant uids and "
			"drops its own gateway to user '%s')\n",
			p->cfg.user);
		return 1;
	}
	pw = getpwnam(p->cfg.user);
	if (!pw || pw->pw_uid == 0) {
		fprintf(stderr,
			"faasd: user '%s' %s: create it with 'useradd --system --no-create-home "
			"--shell /usr/sbin/nologin %s' or set user= in the config\n",
			p->cfg.user, pw ? "is root" : "does not exist", p->cfg.user);
		return 1;
	}
	if ((uint64_t)pw->pw_uid >= p->cfg.uid_base &&
	    (uint64_t)pw->pw_uid < p->cfg.uid_base + p->cfg.uid_count) {
		fprintf(stderr, "faasd: user '%s' (uid %u) lies inside the tenant uid range\n",
			p->cfg.user, pw->pw_uid);
		return 1;
	}
	p->uid = pw->pw_uid;
	p->gid = pw->pw_gid;
	setrlimit(RLIMIT_NOFILE, &rl);
	for (unsigned i = 0; i < MAX_WORKERS; i++) {
		p->workers[i].ctl_fd = -1;
		p->pending_gw_fds[i] = -1;
	}
	p->gw.ctl_fd = -1;
	if (prepare_state(p) < 0 || prepare_sandboxing(p) < 0)
		return 1;
	if (open_listen(p) < 0)
		return 1;
	return run(p);
}
