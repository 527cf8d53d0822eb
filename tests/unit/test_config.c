/* Unit tests of common/config.c: faasd.conf parsing. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "tap.h"

static int
load(const char *text, struct faasd_config *c, char *diag)
{
	char path[] = "/tmp/faasd-conf-XXXXXX";
	int fd = mkstemp(path), r;

	if (write(fd, text, strlen(text)) < 0)
		return -999;
	close(fd);
	config_defaults(c);
	r = config_load(c, path, diag, 256);
	unlink(path);
	return r;
}

int
main(void)
{
	struct faasd_config c;
	char diag[256];

	config_defaults(&c);
	is_str(c.listen, "127.0.0.1:8080", "default listen");
	is_str(c.state_dir, "/var/lib/faasd", "default state dir");
	ok(c.workers >= 1, "default workers");
	is_int(c.max_body_bytes, 6 << 20, "default body limit 6 MiB");
	is_int(load("# comment\nlisten = 0.0.0.0:9000\n\nworkers=3 # trailing\n", &c, diag), 0,
	       "valid file");
	is_str(c.listen, "0.0.0.0:9000", "listen set");
	is_int(c.workers, 3, "workers set");
	is_int(load("listen = nope\n", &c, diag), -EINVAL, "bad listen");
	ok(strstr(diag, ":1:") && strstr(diag, "listen"), "diag names line and key: %s", diag);
	is_int(load("wrokers = 2\n", &c, diag), -EINVAL, "unknown key");
	ok(strstr(diag, "wrokers") != NULL, "diag names the unknown key: %s", diag);
	is_int(load("workers = 0\n", &c, diag), -EINVAL, "workers out of range");
	is_int(load("max_body_bytes = 12x\n", &c, diag), -EINVAL, "bad number");
	is_int(load("just words\n", &c, diag), -EINVAL, "line without =");
	is_int(load("state_dir = relative\n", &c, diag), -EINVAL, "relative state dir");
	is_int(load("pids_max = 2\n", &c, diag), -EINVAL, "pids_max below range");
	ok(strstr(diag, "pids_max") && strstr(diag, "between 4 and"), "diag names pids_max: %s",
	   diag);
	is_int(load("cpu_millicores = 5\n", &c, diag), -EINVAL, "cpu_millicores below range");
	ok(strstr(diag, "cpu_millicores") != NULL, "diag names cpu_millicores: %s", diag);
	is_int(load("tmp_max_mb = 0\n", &c, diag), -EINVAL, "tmp_max_mb zero");
	is_int(load("sandbox_pool = 65\n", &c, diag), -EINVAL, "sandbox_pool above range");
	ok(strstr(diag, "sandbox_pool") != NULL, "diag names sandbox_pool: %s", diag);
	is_int(load("pids_max = 128\ncpu_millicores = 500\ntmp_max_mb = 64\nsandbox_pool = 0\n", &c,
		    diag),
	       0, "sandbox settings");
	ok(c.pids_max == 128 && c.cpu_millicores == 500 && c.tmp_max_mb == 64 &&
		   c.sandbox_pool == 0,
	   "sandbox settings applied");
	config_defaults(&c);
	ok(c.pids_max == 64 && c.cpu_millicores == 1000 && c.tmp_max_mb == 512 &&
		   c.sandbox_pool == 12,
	   "sandbox defaults (SPEC §3 and docs)");
	is_int(load("queue_wait_ms = 900001\n", &c, diag), -EINVAL, "queue_wait_ms above range");
	ok(strstr(diag, "queue_wait_ms") != NULL, "diag names queue_wait_ms: %s", diag);
	is_int(load("init_timeout_ms = 99\n", &c, diag), -EINVAL, "init_timeout_ms below range");
	ok(strstr(diag, "init_timeout_ms") != NULL, "diag names init_timeout_ms: %s", diag);
	is_int(load("runtime_dir = runtimes\n", &c, diag), -EINVAL, "relative runtime_dir");
	ok(strstr(diag, "runtime_dir") != NULL, "diag names runtime_dir: %s", diag);
	config_defaults(&c);
	ok(c.queue_wait_ms == 10000 && c.init_timeout_ms == 10000 &&
		   strcmp(c.runtime_dir, FAASD_RUNTIME_DIR) == 0,
	   "hot instance defaults (packaging/faasd.conf says so)");
	is_int(load("queue_wait_ms = 0\ninit_timeout_ms = 500\nruntime_dir = /opt/rt\n", &c, diag),
	       0, "hot instance settings");
	ok(c.queue_wait_ms == 0 && c.init_timeout_ms == 500 &&
		   strcmp(c.runtime_dir, "/opt/rt") == 0,
	   "hot instance settings applied");
	is_int(load("log_level = debug\n", &c, diag), 0, "log level");
	is_int(c.log_level, 7, "debug level");
	config_defaults(&c);
	is_int(config_load(&c, "/nonexistent/faasd.conf", diag, sizeof(diag)), -ENOENT,
	       "missing file");
	config_defaults(&c);
	ok(c.records == 1 && c.report_log == 1 && c.retention_days == 7 && c.records_queue == 65536,
	   "record defaults: on, REPORT lines on, 7 days, 65536 queued");
	is_int(config_set(&c, "records", "off", diag, sizeof(diag)), 0, "records = off");
	is_int(c.records, 0, "…turns recording off");
	is_int(config_set(&c, "report_log", "maybe", diag, sizeof(diag)), -EINVAL,
	       "report_log = maybe refused");
	ok(strstr(diag, "report_log") && strstr(diag, "on or off"), "…naming the key: %s", diag);
	is_int(config_set(&c, "retention_days", "0", diag, sizeof(diag)), -EINVAL,
	       "retention_days = 0 refused");
	is_int(c.retention_days, 7, "…and the old value kept");
	is_int(c.http_loops, 0, "http_loops: 0 (half the CPUs) by default");
	is_int(config_set(&c, "http_loops", "2", diag, sizeof(diag)), 0, "http_loops = 2");
	is_int(c.http_loops, 2, "…is kept");
	is_int(config_set(&c, "http_loops", "9", diag, sizeof(diag)), -EINVAL,
	       "http_loops = 9 refused (at most 8)");
	ok(strstr(diag, "http_loops") && strstr(diag, "between 0 and 8"), "…naming the key: %s",
	   diag);
	is_int(c.http_loops, 2, "…and the old value kept");
	is_int(config_set(&c, "records_queue", "0", diag, sizeof(diag)), -EINVAL,
	       "records_queue = 0 refused");
	ok(strstr(diag, "records_queue") != NULL, "…naming the key: %s", diag);
	is_int(config_set(&c, "records", "maybe", diag, sizeof(diag)), -EINVAL,
	       "records = maybe refused");
	is_int(c.records, 0, "…and records stay off");
	return done();
}
