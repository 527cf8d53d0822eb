#!/bin/sh
# run-unit.sh BUILD_DIR - run every unit test binary and replay the fuzz
# corpora; prints one summary line and fails if anything failed.
set -u
O=${1:-build}
pass=0
fail=0
for t in "$O"/tests/test_*; do
	[ -x "$t" ] || continue
	if out=$("$t" 2>&1); then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		if printf '%s\n' "$out" | grep -qE '^not ok'; then
			printf '%s\n' "$out" | grep -E '^(not ok|#)' | sed "s|^|$(basename "$t"): |"
		else
			# no failed check: it crashed or a sanitizer spoke
			printf '%s\n' "$out" | grep -vE '^ok ' | tail -n 15 | sed "s|^|$(basename "$t"): |"
		fi
	fi
done
for f in "$O"/fuzz/fuzz_*; do
	[ -x "$f" ] || continue
	name=$(basename "$f")
	if "$f" "fuzz/corpus/${name#fuzz_}" >/dev/null 2>&1; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		echo "$name: corpus replay failed"
	fi
done
echo "unit ($O): $pass passed, $fail failed"
[ "$fail" -eq 0 ]
