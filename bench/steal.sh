#!/bin/sh
# bench/steal.sh COMMAND... - run a benchmark, then say how much of the
# machine's CPU time the hypervisor gave to other guests meanwhile
# ("steal" in /proc/stat) and how much was idle.  On a shared VM a run
# with a high steal measures the neighbours: read its ratios with that.
set -u
cpu() { awk '$1 == "cpu" { print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $5 + $6, $9 }' /proc/stat; }
a=$(cpu)
"$@"
rc=$?
b=$(cpu)
echo "$a $b" | awk '{ t = $4 - $1; if (t > 0)
	printf "host CPU time during this bench: %.0f%% stolen by other guests, %.0f%% idle\n",
		($6 - $3) * 100 / t, ($5 - $2) * 100 / t }'
exit "$rc"
