#!/bin/sh
# bench/hot.sh BUILD_DIR - warm invocations through faasd next to their
# ceilings, all in one run on this machine, with wrk:
#   nginx "return 200"                       (the HTTP ceiling)
#   nginx proxying, keep-alive, to hot_ok     (the one-hop ceiling)
#     over a unix socket
#   faasd, runtime http, the same hot_ok      (bench/hot_ok.c) in its sandbox
#   faasd, runtime python3, a trivial handler (warm shim cost over hot_ok)
# at 1, 16 and 64 connections; then PAIRS (5) alternating pairs of
# nginx proxy and faasd at 16 connections, whose medians the targets are
# judged on; then python3 cold starts through faasd next to python3's own
# start-up.  Installs wrk and nginx-light when missing.
# Needs root.  SECONDS_PER_RUN (default 5) per line.
set -eu
O=${1:-build}
SECS=${SECONDS_PER_RUN:-5}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
missing=""
for p in wrk nginx-light curl; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
	systemctl stop nginx >/dev/null 2>&1 || pkill -x nginx || true
fi
work=$(mktemp -d /tmp/faasd-hotbench-XXXXXX)
chmod 755 "$work"
trap 'set +e
kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null
sleep 0.5
rm -rf "$work"' EXIT INT TERM

# wrk's figures as "rps=X p50_ms=X p99_ms=X errors=N".
measure() { # conns url [header]
	c=$1
	t=$((c < 2 ? 1 : 2))
	if [ $# -ge 3 ]; then
		out=$(wrk -t"$t" -c"$c" -d"${SECS}s" --latency -H "$3" "$2" 2>&1)
	else
		out=$(wrk -t"$t" -c"$c" -d"${SECS}s" --latency "$2" 2>&1)
	fi
	printf '%s\n' "$out" | awk '
		function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0;
			if (v ~ /s$/) return v * 1000; return v }
		/^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
		/Requests\/sec/ { rps = $2 } /Non-2xx/ { err += $NF } /Socket errors/ { err += 1 }
		END { printf "rps=%.0f p50_ms=%.3f p99_ms=%.3f errors=%d\n", rps, p50, p99, err }'
}

line() { # label, then measure arguments
	label=$1
	shift
	r=$(measure "$@")
	printf '%-36s %s\n' "$label" "$r"
	echo "$label|$r" >>"$work/results"
}

echo "faasd warm-path benchmark, $(nproc) cores, $(uname -r), ${SECS}s per line"
echo

mkdir -p "$work/ok" "$work/py"
cp "$O/hot_ok" "$work/ok/ok"
chmod 755 "$work/ok" "$work/ok/ok" "$work/py"
"$work/ok/ok" "$work/ok.sock" &
echo $! >"$work/hot_ok.pid"
cat >"$work/nginx.conf" <<CONF
user root;
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work;
	uwsgi_temp_path $work; scgi_temp_path $work;
	upstream hot { server unix:$work/ok.sock; keepalive 128; }
	server { listen 127.0.0.1:18091; location / { return 200 "ok\n"; } }
	server {
		listen 127.0.0.1:18092;
		location / {
			proxy_pass http://hot;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
	}
}
CONF
sleep 0.3
nginx -c "$work/nginx.conf"
sleep 0.3

printf 'log_level = warning\nruntime_dir = %s/runtimes\n' "$top" >"$work/faasd.conf"
"$O/faasd" --config "$work/faasd.conf" --listen 127.0.0.1:18093 --state-dir "$work/state" \
	2>"$work/faasd.log" &
echo $! >"$work/faasd.pid"
for _ in $(seq 50); do
	[ -s "$work/state/admin.token" ] && curl -sf http://127.0.0.1:18093/readyz >/dev/null && break
	sleep 0.1
done
export FAASCTL_CONFIG="$work/faasctl.json" FAASCTL_URL=http://127.0.0.1:18093
FAASCTL_TOKEN=$(cat "$work/state/admin.token")
export FAASCTL_TOKEN
auth="Authorization: Bearer $FAASCTL_TOKEN"
"$O/faasctl" tenant create bench >/dev/null
# Like nginx's upstream: one handler process taking every connection
# (concurrency_per_instance 64), and Lambda-style: one invocation at a
# time per instance, as many instances as connections.
cat >"$work/ok/faas.json" <<'JSON'
{"name": "ok", "runtime": "http", "handler": "ok", "concurrency_per_instance": 64,
 "max_instances": 1}
JSON
"$O/faasctl" --tenant bench deploy "$work/ok" >/dev/null
mkdir -p "$work/ok1"
cp "$work/ok/ok" "$work/ok1/ok"
chmod 755 "$work/ok1"
cat >"$work/ok1/faas.json" <<'JSON'
{"name": "ok1", "runtime": "http", "handler": "ok", "max_instances": 64}
JSON
"$O/faasctl" --tenant bench deploy "$work/ok1" >/dev/null
cat >"$work/py/app.py" <<'PY'
def handler(event, context):
    return {"statusCode": 200, "headers": {"Content-Type": "text/plain"}, "body": "ok\n"}
PY
"$O/faasctl" --tenant bench deploy "$work/py" --name py --runtime python3 \
	--handler app.handler >/dev/null
for f in ok ok1 py; do
	curl -sf -H "$auth" http://127.0.0.1:18093/fn/bench/$f >/dev/null
done

for c in 1 16 64; do
	line "nginx return 200, $c conn" "$c" http://127.0.0.1:18091/
	line "nginx proxy -> hot_ok, $c conn" "$c" http://127.0.0.1:18092/
	line "faasd http hot_ok, $c conn" "$c" http://127.0.0.1:18093/fn/bench/ok "$auth"
	line "faasd http hot_ok 1/instance, $c conn" "$c" http://127.0.0.1:18093/fn/bench/ok1 \
		"$auth"
	line "faasd python3 warm, $c conn" "$c" http://127.0.0.1:18093/fn/bench/py "$auth"
done
# The 16-connection targets, judged on alternating pairs (nginx proxy, then
# faasd): on a shared 2-core VM one 5 s line is a sample of the neighbours
# as much as of the code, and the two lines of a pair see the same machine.
# The summary takes the median of the pairs' ratios and p99s.
PAIRS=${PAIRS:-5}
for i in $(seq "$PAIRS"); do
	a=$(measure 16 http://127.0.0.1:18092/)
	b=$(measure 16 http://127.0.0.1:18093/fn/bench/ok "$auth")
	printf '%-36s %s\n' "pair $i: nginx proxy -> hot_ok, 16" "$a"
	printf '%-36s %s\n' "pair $i: faasd http hot_ok, 16" "$b"
	echo "$a $b" >>"$work/pairs"
done
if grep -q . "$work/nginx.err" 2>/dev/null; then
	echo "nginx's error log:"
	tail -3 "$work/nginx.err"
fi

# Cold starts of python3: a fresh version each time (new env value), one
# invocation each, next to the interpreter's own start-up.
n=15
: >"$work/py_own"
for i in $(seq $n); do
	s=$(date +%s%N)
	/usr/bin/python3 -c pass
	e=$(date +%s%N)
	echo $(((e - s) / 1000)) >>"$work/py_own"
done
: >"$work/py_cold"
for i in $(seq $n); do
	"$O/faasctl" --tenant bench deploy "$work/py" --name pycold --runtime python3 \
		--handler app.handler --env "RUN=$i" >/dev/null
	curl -s -o /dev/null -w '%{time_total} %header{x-faas-cold}\n' -H "$auth" \
		http://127.0.0.1:18093/fn/bench/pycold | awk '{ printf "%d %s\n", $1 * 1000000, $2 }' \
		>>"$work/py_cold"
done
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
own=$(median <"$work/py_own" | awk '{ print $1 / 1000 }')
cold=$(awk '$2 == 1 { print $1 }' "$work/py_cold" | median | awk '{ print $1 / 1000 }')
ncold=$(awk '$2 == 1' "$work/py_cold" | wc -l)
printf '%-36s median_ms=%s\n' "python3 -c pass (bare), $n runs" "$own"
printf '%-36s median_ms=%s (%s of %s cold)\n' "faasd python3 cold invocation" "$cold" "$ncold" "$n"

echo
# Medians over the pairs: faasd/nginx-proxy req/s, faasd p99, nginx-proxy p99.
num() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
awk '{ split($1, a, "="); split($5, b, "="); printf "%.3f\n", b[2] / a[2] }' "$work/pairs" >"$work/ratios"
pr=$(median <"$work/ratios")
pf99=$(cut -d' ' -f5- "$work/pairs" | num p99_ms | median)
pn99=$(cut -d' ' -f1-4 "$work/pairs" | num p99_ms | median)
printf 'faasd/nginx-proxy req/s at 16 conn, median of %s pairs: %s (pairs: %s; target >= 0.70)\n' \
	"$PAIRS" "$pr" "$(tr '\n' ' ' <"$work/ratios" | sed 's/ $//')"
if grep -qv 'errors=0 .*errors=0$' "$work/pairs"; then
	echo "INVALID: a line of the pairs had errors (see above): its ratio measures failures"
fi
printf 'p99 at 16 conn, median of the pairs: faasd %s ms, nginx proxy %s ms (target: faasd <= 2)\n' \
	"$pf99" "$pn99"
awk -F'|' -v own="$own" -v cold="$cold" '
	function f(k, s) { split(s, a, " "); for (i in a) { split(a[i], kv, "="); if (kv[1] == k) return kv[2] } }
	{ r[$1] = $2 }
	END {
		proxy = f("rps", r["nginx proxy -> hot_ok, 16 conn"]);
		fa = f("rps", r["faasd http hot_ok, 16 conn"]);
		printf "faasd/nginx-proxy req/s at 16 conn, the table lines: %.2f\n", fa / proxy;
		printf "faasd/nginx-proxy req/s at 1 conn: %.2f, at 64 conn: %.2f\n",
			f("rps", r["faasd http hot_ok, 1 conn"]) / f("rps", r["nginx proxy -> hot_ok, 1 conn"]),
			f("rps", r["faasd http hot_ok, 64 conn"]) / f("rps", r["nginx proxy -> hot_ok, 64 conn"]);
		printf "python3 warm p50 over http hot_ok p50, 1 conn: %.3f ms (target <= 1)\n",
			f("p50_ms", r["faasd python3 warm, 1 conn"]) - f("p50_ms", r["faasd http hot_ok, 1 conn"]);
		printf "python3 cold invocation over python3 start-up: %.1f ms (target <= 15)\n", cold - own;
	}' "$work/results"
