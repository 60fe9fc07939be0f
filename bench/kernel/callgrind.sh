#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR MIT
#
# bench/kernel/callgrind.sh OUTDIR [NKEYS] - instructions per operation of
# the userspace build of bench_anchormap.ko's loops (OUTDIR/user_loops,
# linked with build/libanchormap.a, SSE2 group match; OUTDIR/user_loops_swar,
# the same core built with -DANCHORMAP_NO_SSE2, the group match the kernel uses).
# Writes OUTDIR/callgrind.txt: "build op nkeys instructions_per_op" lines.
set -eu
out=$1
n=${2:-200000}
res=$out/callgrind.txt
: > "$res"
for build in user_loops user_loops_swar; do
	for op in hit miss insert remove hit2seg; do
		cg=$out/.cg.$build.$op
		valgrind --tool=callgrind --callgrind-out-file="$cg" \
			--toggle-collect="cg_loop_$op" "$out/$build" "$op" "$n" >/dev/null 2>"$cg.log" ||
			{ echo "callgrind: $build $op failed (see $cg.log)" >&2; exit 1; }
		awk -v b="$build" -v o="$op" -v n="$n" \
			'/^summary:/ { printf "%s %s %s %.1f\n", b, o, n, $2 / n }' "$cg" >> "$res"
		rm -f "$cg" "$cg.log"
	done
done
cat "$res"
