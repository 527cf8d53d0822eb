#!/bin/sh
# bench/run.sh BUILD_DIR - cold exec invocations through the whole faasd
# path (HTTP -> gateway -> worker -> sandbox -> response) next to, in the
# same run: the same static handler fork+exec'd bare (the floor), under
# bwrap --unshare-all, and behind nginx + fcgiwrap (unsandboxed
# fork-per-request CGI).  Installs bubblewrap, nginx-light and fcgiwrap from
# Debian when missing.  Needs root.  SECONDS (default 5) per measurement.
set -eu
O=${1:-build}
SECS=${SECONDS_PER_RUN:-5}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
missing=""
for p in bubblewrap nginx-light fcgiwrap; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
	# nginx-light's package starts the system nginx; the bench runs its own.
	systemctl stop nginx >/dev/null 2>&1 || pkill -x nginx || true
fi
work=$(mktemp -d /tmp/faasd-bench-XXXXXX)
chmod 755 "$work"
# Under set -e a failing kill would end the trap early: +e first.
# fcgiwrap -c N forks N children that outlive the pid in its file.
trap 'set +e
kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null
pkill -f "fcgiwrap -s unix:$work/" 2>/dev/null
sleep 0.5
rm -rf "$work"' EXIT INT TERM
cc -O2 -D_GNU_SOURCE -Wall -Wextra -Werror -o "$work/load" bench/load.c -lpthread
mkdir -p "$work/fn"
cc -O2 -static -o "$work/fn/hello" bench/hello.c
chmod 755 "$work/fn" "$work/fn/hello"

run() { # label, then load arguments
	label=$1
	shift
	printf '%-34s %s\n' "$label" "$("$work/load" "$@")"
}

echo "faasd cold-path benchmark, $(nproc) cores, $(uname -r), ${SECS}s per line"
echo

# Floor and bwrap.
for c in 1 2; do
	run "fork+exec bare, $c conn" exec "$c" "$SECS" "$work/fn/hello"
done
for c in 1 2; do
	run "bwrap --unshare-all, $c conn" exec "$c" "$SECS" /usr/bin/bwrap --unshare-all \
		--ro-bind /usr /usr --symlink usr/lib64 /lib64 --proc /proc --dev /dev \
		--ro-bind "$work/fn/hello" /hello /hello
done

# nginx + fcgiwrap.
fcgiwrap -s "unix:$work/fcgi.sock" -c 4 &
echo $! >"$work/fcgiwrap.pid"
cat >"$work/nginx.conf" <<CONF
user root;
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work;
	uwsgi_temp_path $work; scgi_temp_path $work;
	server {
		listen 127.0.0.1:18089;
		location /hello {
			include /etc/nginx/fastcgi_params;
			fastcgi_param SCRIPT_FILENAME $work/fn/hello;
			fastcgi_pass unix:$work/fcgi.sock;
		}
	}
}
CONF
sleep 0.3
nginx -c "$work/nginx.conf"
sleep 0.3
for c in 1 2 8; do
	run "nginx+fcgiwrap, $c conn" http 127.0.0.1 18089 /hello "$c" "$SECS"
done

# faasd.
printf 'log_level = warning\n' >"$work/faasd.conf"
"$O/faasd" --config "$work/faasd.conf" --listen 127.0.0.1:18088 --state-dir "$work/state" \
	2>"$work/faasd.log" &
echo $! >"$work/faasd.pid"
for _ in $(seq 50); do
	[ -s "$work/state/admin.token" ] && curl -sf http://127.0.0.1:18088/readyz >/dev/null && break
	sleep 0.1
done
export FAASCTL_CONFIG="$work/faasctl.json" FAASCTL_URL=http://127.0.0.1:18088
FAASCTL_TOKEN=$(cat "$work/state/admin.token")
export FAASCTL_TOKEN
"$O/faasctl" tenant create bench >/dev/null
"$O/faasctl" --tenant bench deploy "$work/fn" --name hello --runtime exec --handler hello \
	>/dev/null
for c in 1 2 8; do
	run "faasd cold exec, $c conn" http 127.0.0.1 18088 /fn/bench/hello "$c" "$SECS" \
		"Authorization: Bearer $FAASCTL_TOKEN"
done
