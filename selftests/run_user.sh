#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR MIT
#
# run_user.sh VARIANT DIR - run every DIR/test_* program of one build variant
# (plain, asan, tsan), show its output and tally its final
# "P passed, F failed[, S skipped]" line into build/results/VARIANT.count
# as "P F S".  A program that crashes, exits non-zero with no failure
# reported, times out or never prints that line counts as one failure.
# Exits non-zero if anything failed.

set -u

variant=${1:?usage: run_user.sh VARIANT DIR}
dir=${2:?usage: run_user.sh VARIANT DIR}
results="$(dirname "$dir")/results"
# generous: a test program takes seconds even under TSan
limit=${AM_TEST_TIMEOUT:-300}

# Leaks and UB must fail the run, not just print; TSan reports are fatal.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"

mkdir -p "$results"
passed=0
failed=0
skipped=0
progs=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

for prog in "$dir"/test_*; do
	if [ ! -f "$prog" ] || [ ! -x "$prog" ]; then
		continue
	fi
	name=$(basename "$prog")
	progs=$((progs + 1))
	echo "# [$variant] $name"
	timeout "$limit" "$prog" > "$out" 2>&1
	rc=$?
	cat "$out"

	# Only the last line counts: a summary in the middle means a crash after.
	last=$(tail -n 1 "$out")
	if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)?$ ]]; then
		p=${BASH_REMATCH[1]}
		f=${BASH_REMATCH[2]}
		s=${BASH_REMATCH[4]:-0}
		passed=$((passed + p))
		failed=$((failed + f))
		skipped=$((skipped + s))
		if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
			echo "not ok $name # exit status $rc after all tests passed"
			failed=$((failed + 1))
		elif [ "$rc" -eq 0 ] && [ "$f" -ne 0 ]; then
			echo "not ok $name # $f failed but exit status 0"
		fi
	else
		case $rc in
		124)	why="timed out after ${limit}s" ;;
		0)	why="no summary line" ;;
		*)	why="exit status $rc, no summary line" ;;
		esac
		echo "not ok $name # $why"
		failed=$((failed + 1))
	fi
done

if [ "$progs" -eq 0 ]; then
	echo "not ok $variant # no test programs in $dir"
	failed=$((failed + 1))
fi

echo "$passed $failed $skipped" > "$results/$variant.count"
if [ "$skipped" -gt 0 ]; then
	echo "# [$variant] $passed passed, $failed failed, $skipped skipped"
else
	echo "# [$variant] $passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
