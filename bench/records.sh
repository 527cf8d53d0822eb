#!/bin/sh
# bench/records.sh BUILD_DIR - what invocation records cost (issue 6):
#   the store's sustained record writes per second and its CPU per record,
#   for records without output and with a 200-byte log (build/records_store);
#   warm invocations of hot_ok at 16 connections through two faasd, one
#   with records on and one with "records = off", measured alternately
#   (on, off, on, off) in the same run; the ratio is the cost;
#   the CPU the gateway spends per invocation with records on and off
#   (from /proc, steadier than req/s on a noisy machine) and the writer
#   thread's CPU per record;
#   then every invocation the "on" daemon served must have its record
#   (written + dropped = invocations, dropped = 0).
# Needs root and wrk (bench/hot.sh installs it).  SECONDS_PER_RUN (default 5).
set -eu
O=${1:-build}
SECS=${SECONDS_PER_RUN:-5}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
work=$(mktemp -d /tmp/faasd-recbench-XXXXXX)
chmod 755 "$work"
trap 'set +e
kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null
sleep 0.5
rm -rf "$work"' EXIT INT TERM

echo "faasd invocation records benchmark, $(nproc) cores, ${SECS}s per line"
"$O/records_store" "$work" 3 | sed 's/^/store, batches of 1024:            /'

mkdir -p "$work/ok"
cp "$O/hot_ok" "$work/ok/ok"
chmod 755 "$work/ok" "$work/ok/ok"
cat >"$work/ok/faas.json" <<'JSON'
{"name": "ok", "runtime": "http", "handler": "ok", "concurrency_per_instance": 64,
 "max_instances": 1}
JSON
start() { # name port records
	printf 'log_level = warning\nrecords = %s\nreport_log = off\nruntime_dir = %s/runtimes\n' \
		"$3" "$top" >"$work/$1.conf"
	"$O/faasd" --config "$work/$1.conf" --listen 127.0.0.1:"$2" --state-dir "$work/$1" \
		2>"$work/$1.log" &
	echo $! >"$work/$1.pid"
	for _ in $(seq 50); do
		[ -s "$work/$1/admin.token" ] && curl -sf http://127.0.0.1:"$2"/readyz >/dev/null && break
		sleep 0.1
	done
	FAASCTL_CONFIG="$work/$1.json" FAASCTL_URL=http://127.0.0.1:$2 \
		FAASCTL_TOKEN=$(cat "$work/$1/admin.token") "$O/faasctl" tenant create bench >/dev/null
	FAASCTL_CONFIG="$work/$1.json" FAASCTL_URL=http://127.0.0.1:$2 \
		FAASCTL_TOKEN=$(cat "$work/$1/admin.token") "$O/faasctl" --tenant bench deploy \
		"$work/ok" >/dev/null
	curl -sf -H "Authorization: Bearer $(cat "$work/$1/admin.token")" \
		http://127.0.0.1:"$2"/fn/bench/ok >/dev/null
}
start on 18095 on
start off 18096 off

# CPU ticks (utime + stime) of the gateway process of daemon NAME, or of
# its thread called $2 (gw-records) when given.
ticks() {
	gw=$(pgrep -P "$(cat "$work/$1.pid")" -x faasd-gateway | head -n 1)
	for t in /proc/"$gw"/task/*; do
		[ -z "${2:-}" ] || [ "$(cat "$t/comm")" = "$2" ] || continue
		awk '{ print $14 + $15 }' "$t/stat"
	done | awk '{ s += $1 } END { print s + 0 }'
}
invocations() { # port name
	curl -sf -H "Authorization: Bearer $(cat "$work/$2/admin.token")" \
		http://127.0.0.1:"$1"/metrics | awk '/^faasd_invocations_total/ { s += $2 } END { print s + 0 }'
}
rps() { # port name
	wrk -t2 -c16 -d"${SECS}s" -H "Authorization: Bearer $(cat "$work/$2/admin.token")" \
		http://127.0.0.1:"$1"/fn/bench/ok 2>&1 | awk '/Requests\/sec/ { print int($2) }'
}
t_on0=$(ticks on); t_off0=$(ticks off); w0=$(ticks on gw-records)
i_on0=$(invocations 18095 on); i_off0=$(invocations 18096 off)
on1=$(rps 18095 on)
off1=$(rps 18096 off)
on2=$(rps 18095 on)
off2=$(rps 18096 off)
t_on=$(($(ticks on) - t_on0)); t_off=$(($(ticks off) - t_off0)); w=$(($(ticks on gw-records) - w0))
i_on=$(($(invocations 18095 on) - i_on0)); i_off=$(($(invocations 18096 off) - i_off0))
printf '%-36s rps=%s, %s\n' "faasd hot_ok 16 conn, records on" "$on1" "$on2"
printf '%-36s rps=%s, %s\n' "faasd hot_ok 16 conn, records off" "$off1" "$off2"
awk -v a="$on1" -v b="$on2" -v c="$off1" -v d="$off2" 'BEGIN {
	printf "records on/off req/s: %.3f (target >= 0.90)\n", (a + b) / (c + d) }'
hz=$(getconf CLK_TCK)
awk -v ton="$t_on" -v toff="$t_off" -v ion="$i_on" -v ioff="$i_off" -v w="$w" -v hz="$hz" 'BEGIN {
	con = ton * 1e6 / hz / ion; coff = toff * 1e6 / hz / ioff
	printf "gateway CPU per invocation: on %.1f us, off %.1f us, on/off %.3f\n", con, coff, con / coff
	printf "record writer CPU per record: %.1f us\n", w * 1e6 / hz / ion }'

# Every invocation of the "on" daemon has its record once the queue drains.
tok=$(cat "$work/on/admin.token")
for _ in $(seq 100); do
	m=$(curl -sf -H "Authorization: Bearer $tok" http://127.0.0.1:18095/metrics)
	q=$(printf '%s\n' "$m" | awk '$1 == "faasd_records_queued" { print $2 }')
	[ "$q" = 0 ] && break
	sleep 0.1
done
printf '%s\n' "$m" | awk '
	/^faasd_invocations_total/ { inv += $2 }
	$1 == "faasd_records_written_total" { w = $2 }
	$1 == "faasd_records_dropped_total" { d = $2 }
	END { printf "records: %d invocations, %d written, %d dropped, %d lost\n", inv, w, d, inv - w - d }'
