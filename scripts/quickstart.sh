#!/bin/sh
# quickstart.sh - on a fresh Debian 12 machine (as root): install what is
# missing, build, install faasd and faasctl, and run faasd in the foreground
# on 127.0.0.1:8080 with its state in /var/lib/faasd.  Ctrl-C stops it.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
make -s -j"$(nproc)" all
make -s install >/dev/null
state=${FAASD_STATE:-/var/lib/faasd}
cat <<MSG

faasd starts on http://127.0.0.1:8080; its admin token will be in $state/admin.token
In another terminal, deploy and call a shell function:

  faasctl login --url http://127.0.0.1:8080 --token-file $state/admin.token && faasctl tenant create demo
  mkdir -p hello && printf '#!/bin/sh\necho "Hello, \$(cat)!"\n' > hello/handler.sh && chmod +x hello/handler.sh
  faasctl --tenant demo deploy hello --runtime exec --handler handler.sh && faasctl --tenant demo invoke hello --data world

MSG
exec /usr/local/sbin/faasd --listen 127.0.0.1:8080 --state-dir "$state"
