#!/bin/sh
# embed.sh - turn the numbered migrations schema/NNN_*.sql into a C array
# (store_migrations[]) so the binary carries its own schema.
set -eu
echo '/* Generated from the schema directory by schema/embed.sh; do not edit. */'
echo '#include <stddef.h>'
echo 'const char *const store_migrations[] = {'
for f in "$@"; do
	printf '\t/* %s */\n' "$(basename "$f")"
	sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/\t"/' -e 's/$/\\n"/' "$f"
	printf '\t,\n'
done
echo '};'
echo 'const size_t store_migrations_count = sizeof(store_migrations) / sizeof(store_migrations[0]);'
