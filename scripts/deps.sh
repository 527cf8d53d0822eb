#!/bin/sh
# deps.sh - install what faasd needs on Debian 12 (run as root).  Installs
# only what is missing, so it is cheap to run again.
#   deps.sh         build and run dependencies
#   deps.sh test    plus what the test suite needs
set -eu
pkgs="gcc make pkg-config libmicrohttpd-dev libseccomp-dev libcap-dev libsqlite3-dev
libssl-dev libjansson-dev libcurl4-openssl-dev libarchive-dev ca-certificates"
if [ "${1:-}" = test ]; then
	pkgs="$pkgs python3 python3-pytest clang-format clang-tidy sqlite3"
fi
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# The gateway runs as this unprivileged system user.
if ! id faasd >/dev/null 2>&1; then
	useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin faasd
fi
