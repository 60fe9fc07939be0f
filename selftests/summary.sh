#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR MIT
#
# summary.sh RESULTS_DIR - add up every *.count file ("P F S" per line)
# written by the test runners and print, as the very last line,
# "N passed, N failed" (", N skipped" when there are skips).
# Exits 1 if anything failed or no runner left a count.

set -u

dir=${1:?usage: summary.sh RESULTS_DIR}
passed=0
failed=0
skipped=0
files=0

for f in "$dir"/*.count; do
	[ -f "$f" ] || continue
	files=$((files + 1))
	name=$(basename "$f")
	while read -r p fl s _; do
		# a malformed count is a runner that broke: count it as a failure
		if ! [[ ${p:-x} =~ ^[0-9]+$ && ${fl:-x} =~ ^[0-9]+$ && ${s:-0} =~ ^[0-9]+$ ]]; then
			echo "# $name: malformed count line" >&2
			failed=$((failed + 1))
			continue
		fi
		passed=$((passed + p))
		failed=$((failed + fl))
		skipped=$((skipped + ${s:-0}))
	done < "$f"
done

if [ "$files" -eq 0 ]; then
	echo "# no *.count files in $dir" >&2
	failed=$((failed + 1))
fi

if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ] && [ "$files" -gt 0 ]
