#!/bin/sh
# STYLE C4: every C source is formatted as the checked-in .clang-format says.
# Prints the files clang-format would change (and the first lines of the
# change) and fails; `contrib/format` fixes them. Skipped (77) without
# clang-format 14, because other versions format the same file differently.
# --list prints the files checked, relative to the top of the tree.
set -u
top=${SMTPGATE_SRCDIR:-${srcdir:-.}}
cd "$top" || exit 99
files=$(find common spool smtpd spoold deliverd tests bench \
	-name '*.[ch]' -type f -print 2>/dev/null | sort)
if [ "${1:-}" = "--list" ]; then
	echo "$files"
	exit 0
fi
if [ -z "$files" ]; then
	echo "check-format.sh: no C sources under $top"
	exit 99
fi
if ! command -v clang-format >/dev/null; then
	echo "check-format.sh: SKIP: clang-format is not installed"
	exit 77
fi
case $(clang-format --version) in
*" version 14."*) ;;
*)	echo "check-format.sh: SKIP: $(clang-format --version) is not version 14"
	exit 77 ;;
esac
bad=0
for f in $files; do
	if ! out=$(clang-format --style=file "$f" | diff -u "$f" -); then
		echo "$f: not formatted (run contrib/format):"
		echo "$out" | sed -n '3,12p'
		bad=$((bad + 1))
	fi
done
if [ $bad -ne 0 ]; then
	echo "check-format.sh: $bad of $(echo "$files" | wc -l) files differ from .clang-format (STYLE C4)"
	exit 1
fi
echo "check-format.sh: $(echo "$files" | wc -l) C files formatted as .clang-format says"
exit 0
