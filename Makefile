# faasd - one Makefile, pkg-config for every library.
#   make            build build/faasd and build/faasctl
#   make check      unit tests, fuzz-corpus replay, integration tests,
#                   then the same under AddressSanitizer + UBSan
#   make asan       build into build-asan/ with -fsanitize=address,undefined
#   make fuzz       libFuzzer targets (clang) into build-fuzz/
#   make install    install binaries, runtimes, systemd units
#   make bench      benchmarks (docs/PERFORMANCE.md), each with the host's steal

CC      ?= cc
O       ?= build
PREFIX  ?= /usr/local
DESTDIR ?=
PYTHON  ?= /usr/bin/python3

PKGS_D   = libmicrohttpd libseccomp libcap sqlite3 libcrypto jansson libarchive libcurl
PKGS_CLI = libcurl jansson libarchive libcrypto

CFLAGS_BASE = -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -g \
	-fno-strict-aliasing -I. -Icommon -Istore -Igateway -Icli -Iworker/sandbox \
	-DFAASD_RUNTIME_DIR=\"$(PREFIX)/lib/faasd/runtimes\"
CFLAGS  ?=
SANFLAGS ?=
ALL_CFLAGS = $(CFLAGS_BASE) $(SANFLAGS) $(CFLAGS)
LIBS_D   = $(shell pkg-config --libs $(PKGS_D)) -lpthread -lm
LIBS_CLI = $(shell pkg-config --libs $(PKGS_CLI))
CFLAGS_PKGS = $(shell pkg-config --cflags $(PKGS_D) libcurl)

COMMON_SRC  = common/util.c common/log.c common/msg.c common/names.c common/timeparse.c \
	common/errmap.c common/fnconfig.c common/config.c common/strategy.c common/schedule.c \
	common/buf.c
STORE_SRC   = store/store.c store/alias.c store/deploy.c store/records.c store/async.c $(O)/schema_sql.c
GATEWAY_SRC = gateway/gateway.c gateway/api.c gateway/auth.c gateway/code.c \
	gateway/unpack.c gateway/invoke.c gateway/route.c gateway/cgi.c gateway/respond.c \
	gateway/rcache.c gateway/hot.c gateway/hotx.c gateway/hproxy.c gateway/deploy.c \
	gateway/api_deploy.c gateway/records.c gateway/api_records.c gateway/metrics.c \
	gateway/follow.c gateway/async.c gateway/api_async.c gateway/schedule.c \
	gateway/fast.c gateway/fasttun.c gateway/fasthead.c
SANDBOX_SRC = worker/sandbox/sb_spawn.c worker/sandbox/sb_mount.c worker/sandbox/sb_seccomp.c \
	worker/sandbox/sb_cgroup.c worker/sandbox/sb_priv.c worker/sandbox/sb_listen.c
WORKER_SRC  = worker/worker.c worker/pool.c $(SANDBOX_SRC)
DAEMON_SRC  = daemon/main.c daemon/sdnotify.c daemon/privdrop.c
CLI_SRC     = cli/faasctl.c cli/http.c cli/pack.c cli/cmd_admin.c cli/cmd_fn.c \
	cli/cmd_deploy.c cli/cmd_logs.c

FAASD_SRC = $(DAEMON_SRC) $(GATEWAY_SRC) $(WORKER_SRC) $(STORE_SRC) $(COMMON_SRC)
CLI_ALL   = $(CLI_SRC) common/util.c common/buf.c common/names.c common/fnconfig.c common/strategy.c common/schedule.c

UNIT_TESTS = test_util test_msg test_names test_fnconfig test_config test_sandbox \
	test_store test_route test_cgi test_code test_auth test_pack test_rcache test_hproxy test_strategy test_deploy_store test_records test_async_store test_schedule test_fasthead
UNIT_BINS  = $(addprefix $(O)/tests/,$(UNIT_TESTS))

obj = $(patsubst %.c,$(O)/obj/%.o,$(patsubst $(O)/%,%,$(1)))

.PHONY: all clean check unit integration asan fuzz install bench format-check tidy
all: $(O)/faasd $(O)/faasctl $(O)/hot_ok

# The bench's and tests' hot handler: static, so it runs in any sandbox.
$(O)/hot_ok: bench/hot_ok.c
	@mkdir -p $(@D)
	$(CC) -std=c17 -O2 -Wall -Wextra -Werror -static -o $@ $<

$(O)/schema_sql.c: schema/embed.sh $(sort $(wildcard schema/*.sql))
	@mkdir -p $(@D)
	sh schema/embed.sh $(sort $(wildcard schema/*.sql)) > $@

$(O)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CFLAGS_PKGS) -MMD -MP -c $< -o $@

$(O)/obj/schema_sql.o: $(O)/schema_sql.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(O)/faasd: $(call obj,$(FAASD_SRC))
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LIBS_D)

$(O)/faasctl: $(call obj,$(CLI_ALL))
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LIBS_CLI)

# Unit tests: each links the module under test plus common/ and store/.
LIB_OBJS = $(call obj,$(COMMON_SRC) $(STORE_SRC) gateway/route.c gateway/cgi.c gateway/rcache.c gateway/hproxy.c gateway/fasthead.c \
	gateway/unpack.c gateway/auth.c cli/pack.c $(SANDBOX_SRC))
$(O)/tests/%: tests/unit/%.c tests/unit/tap.h $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CFLAGS_PKGS) -o $@ $< $(LIB_OBJS) $(LIBS_D) $(LIBS_CLI)

# Fuzz targets double as corpus-replay tests (fuzz/replay.c provides main).
FUZZ_TARGETS = fuzz_msg fuzz_route fuzz_cgi fuzz_fnconfig fuzz_hresp fuzz_strategy fuzz_time fuzz_schedule fuzz_fasthead
$(O)/fuzz/%: fuzz/%.c fuzz/replay.c $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CFLAGS_PKGS) -o $@ $< fuzz/replay.c $(LIB_OBJS) $(LIBS_D) $(LIBS_CLI)

unit: $(UNIT_BINS) $(addprefix $(O)/fuzz/,$(FUZZ_TARGETS))
	@sh tests/run-unit.sh $(O)

integration: all
	FAASD_BIN=$(CURDIR)/$(O)/faasd FAASCTL_BIN=$(CURDIR)/$(O)/faasctl \
		$(PYTHON) -m pytest -q tests/integration $(PYTEST_ARGS)

asan:
	$(MAKE) O=build-asan SANFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" all unit

format-check:
	@clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

TIDY_SRC = $(filter-out $(O)/%,$(COMMON_SRC) $(STORE_SRC) $(GATEWAY_SRC) $(WORKER_SRC) \
	$(DAEMON_SRC) $(CLI_SRC))
tidy: $(O)/schema_sql.c
	@fail=0; for f in $(TIDY_SRC); do \
		clang-tidy --quiet $$f -- $(CFLAGS_BASE) $(CFLAGS_PKGS) 2>/dev/null || fail=1; \
	done; test $$fail -eq 0

check: all unit format-check tidy integration asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	FAASD_BIN=$(CURDIR)/build-asan/faasd FAASCTL_BIN=$(CURDIR)/build-asan/faasctl \
		$(PYTHON) -m pytest -q tests/integration $(PYTEST_ARGS)

fuzz:
	$(MAKE) O=build-fuzz CC=clang SANFLAGS="-fsanitize=fuzzer-no-link,address,undefined -Wno-missing-field-initializers" \
		$(LIB_OBJS:$(O)/%=build-fuzz/%)
	@mkdir -p build-fuzz/fuzz
	for t in $(FUZZ_TARGETS); do \
		clang $(CFLAGS_BASE) $(CFLAGS_PKGS) -fsanitize=fuzzer,address,undefined \
			-o build-fuzz/fuzz/$$t fuzz/$$t.c $(LIB_OBJS:$(O)/%=build-fuzz/%) \
			$(LIBS_D) $(LIBS_CLI) || exit 1; done

install: all
	install -D -m 0755 $(O)/faasd $(DESTDIR)$(PREFIX)/sbin/faasd
	install -D -m 0755 $(O)/faasctl $(DESTDIR)$(PREFIX)/bin/faasctl
	install -D -m 0644 systemd/faasd.service $(DESTDIR)/etc/systemd/system/faasd.service
	install -D -m 0644 systemd/faasd.sysusers $(DESTDIR)/usr/lib/sysusers.d/faasd.conf
	install -D -m 0644 systemd/faasd.tmpfiles $(DESTDIR)/usr/lib/tmpfiles.d/faasd.conf
	install -D -m 0644 runtimes/python3/bootstrap.py \
		$(DESTDIR)$(PREFIX)/lib/faasd/runtimes/python3/bootstrap.py
	install -D -m 0644 runtimes/node/bootstrap.js \
		$(DESTDIR)$(PREFIX)/lib/faasd/runtimes/node/bootstrap.js
	test -e $(DESTDIR)/etc/faasd/faasd.conf || \
		install -D -m 0644 packaging/faasd.conf $(DESTDIR)/etc/faasd/faasd.conf

$(O)/records_store: $(call obj,bench/records_store.c $(STORE_SRC) common/util.c)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LIBS_D)

bench: all $(O)/records_store
	sh bench/steal.sh sh bench/run.sh $(O)
	sh bench/steal.sh sh bench/hot.sh $(O)
	sh bench/steal.sh sh bench/records.sh $(O)

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(O)/obj -name '*.d' 2>/dev/null)
