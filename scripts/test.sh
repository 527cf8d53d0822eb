#!/bin/sh
# test.sh - on a fresh Debian 12 machine (as root): install what is missing,
# build, and run every test: unit tests and fuzz-corpus replay, the format
# check, the integration suite against a real faasd, then unit and
# integration tests again under AddressSanitizer + UBSan.  Ends with one
# line "faasd: N passed, N failed".
set -u
cd "$(dirname "$0")/.."
sh scripts/deps.sh test || exit 1
log=$(mktemp)
status=0
stage() {
	name=$1
	shift
	echo "== $name"
	if "$@" >"$log.out" 2>&1; then :; else status=1; fi
	cat "$log.out"
	cat "$log.out" >>"$log"
}
stage "build" make -s -j"$(nproc)" all
stage "unit tests" make -s unit
stage "format" make -s format-check
stage "clang-tidy" make -s tidy
stage "integration" make -s integration
stage "ASan+UBSan build and unit tests" make -s asan
stage "ASan+UBSan integration" env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1 FAASD_BIN="$PWD/build-asan/faasd" \
	FAASCTL_BIN="$PWD/build-asan/faasctl" /usr/bin/python3 -m pytest -q tests/integration
# Totals from the unit runner ("X passed, Y failed") and pytest ("X passed").
passed=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s += $1} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ (failed|error|errors)' "$log" | awk '{s += $1} END {print s + 0}')
rm -f "$log" "$log.out"
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
	failed=1 # a stage failed without a test count (build, format)
fi
echo "faasd: $passed passed, $failed failed"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
