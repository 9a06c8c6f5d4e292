#!/bin/sh
# STYLE S4: no strcpy, strcat, sprintf, vsprintf, gets, strtok, strncpy,
# atoi, atol in C sources. Prints file:line: text for each use and fails.
# Comments and string literals are not exempt: reword them. Run by
# `make check` (SMTPGATE_SRCDIR) or by hand from the top of the tree.
# The match is on the whole name followed by "(", so strtok_r, snprintf,
# vsnprintf, fgets and strtol are not hits.
set -u
top=${SMTPGATE_SRCDIR:-${srcdir:-.}}
cd "$top" || exit 99
files=$(find . -path ./_build -prune -o -path './_build-*' -prune -o \
	-path './smtpgate-*' -prune -o -name '*.[ch]' -type f -print | sort)
if [ -z "$files" ]; then
	echo "banned.sh: no C sources under $top"
	exit 99
fi
pat='(^|[^A-Za-z0-9_])(strcpy|strcat|sprintf|vsprintf|gets|strtok|strncpy|atoi|atol|atoll)[[:space:]]*\('
# shellcheck disable=SC2086
hits=$(grep -nHE "$pat" $files)
if [ -n "$hits" ]; then
	echo "$hits" | sed 's|^\./||'
	echo "banned.sh: banned function(s) above (STYLE S4): use str_copy," \
	    "buf_*, snprintf/str_printf, strtoll with bounds"
	exit 1
fi
echo "banned.sh: $(echo "$files" | wc -l) C files clean"
exit 0
