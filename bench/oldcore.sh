#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR MIT
# bench/oldcore.sh [REV [OUT]] - anchormap's writers against the core of an
# older revision (default 8291ad5, the last core with segments), for issue
# 12's "insert-grow at least 2x today's, insert pre-sized no slower":
#
#   1. instructions per insert (callgrind, bench/cgwrite.c built against
#      each core): 1M inserts into a map pre-sized for them, and into a map
#      initialised with capacity 0 (grow)
#   2. paired wall clock: ambench built against each core, insert-presized
#      and insert-grow at 1M, 1 thread; in each round the two binaries run
#      back to back as fresh processes (median of 3 runs each), which goes
#      first alternating; ratio per round, median [min-max]; the 1-minute
#      load average after each round
#
# The old core is checked out in a temporary git worktree (removed at the
# end); only its anchormap.c, anchormap.h and userspace_shim/ are used, the
# bench sources are this revision's.  Writes OUT/oldcore.csv (the rounds),
# OUT/oldcore.md (the table); OUT defaults to bench/results.
# BENCH_PAIR_ROUNDS (default 7), BENCH_OLDCORE_N (default 1000000).
set -e
rev=${1:-8291ad5}
here=$(cd "$(dirname "$0")/.." && pwd)
out=${2:-$here/bench/results}
n=${BENCH_OLDCORE_N:-1000000}
rounds=${BENCH_PAIR_ROUNDS:-7}
cd "$here"
make --no-print-directory build/bench/ambench build/bench/cgwrite >&2
old=$(mktemp -d /tmp/oldcore.XXXXXX)
trap 'git -C "$here" worktree remove --force "$old" 2>/dev/null || rm -rf "$old"' EXIT
rmdir "$old"
git worktree add --detach "$old" "$rev" >&2
make -C "$old" --no-print-directory build/libanchormap.a >&2
pk="absl_flat_hash_map absl_hash liburcu liburcu-cds ck tbb libdpdk"
# -I"$here" last: this revision's test helpers (selftests/am_testutil.h), the old core's headers first
cc -std=gnu11 -O2 -g -pthread -I"$old" -I"$old/userspace_shim" -I"$here" bench/cgwrite.c \
	-o "$old/cgwrite" "$old/build/libanchormap.a"
# this revision's bench sources, with the old core's upkeep test (its stats
# have no retired_bytes: the old core compacted when it had several segments)
mkdir -p "$old/benchsrc"
cp bench/ambench.cc bench/memcount.cc bench/memcount.h bench/maps.h bench/states.h "$old/benchsrc/"
sed -i 's/st\.retired_bytes)/st.segments > 1)/' "$old/benchsrc/maps.h"
# what the adapter calls and the old core lacks, for the workloads run here
# never called (inserts only): batched lookups as single ones, no replace
cat > "$old/benchsrc/compat.h" <<'COMPAT'
#include <errno.h>
extern "C" {
#include "anchormap.h"
}
static inline long anchormap_get_many_fast(const struct anchormap *m, const void *keys, size_t n,
					   const void **vals, const struct anchormap_params p)
{
	long found = 0;

	for (size_t i = 0; i < n; i++)
		found += !!(vals[i] = anchormap_get_fast(m, (const char *)keys + i * p.key_size, p));
	return found;
}
static inline int anchormap_replace(struct anchormap *m, const void *k, const void *v)
{
	return -EOPNOTSUPP;
}
COMPAT
g++ -std=gnu++17 -O2 -g -pthread -Wno-missing-field-initializers -I"$old" \
	-I"$old/userspace_shim" -I"$here" -include "$old/benchsrc/compat.h" $(pkg-config --cflags $pk | sed 's/-march=[^ ]*//g') \
	"$old/benchsrc/ambench.cc" "$old/benchsrc/memcount.cc" -o "$old/ambench" \
	"$old/build/libanchormap.a" $(pkg-config --libs $pk)
new_rev=$(git describe --always --dirty)

cgw() {	# binary op -> instructions per call
	valgrind --tool=callgrind --callgrind-out-file="$old/cgw.out" --toggle-collect='cg_writes' \
		"$1" $2 $n > /dev/null 2>&1
	callgrind_annotate "$old/cgw.out" |
		awk -v n=$n '/PROGRAM TOTALS/ { gsub(",", "", $1); printf "%.1f", $1 / n; exit }'
}
wall() {	# binary workload -> Mops/s
	"$1" --map anchormap --kv u64 --size $n --workloads $2 --threads 1 --runs 3 \
		--ops $n --no-mem 2>/dev/null | awk -F, '{ print $9 }'
}
mkdir -p "$out"
csv=$out/oldcore.csv
echo "workload,round,new_mops,old_mops,load1" > $csv
declare -A cg
for op in insert grow; do
	cg[new,$op]=$(cgw build/bench/cgwrite $op)
	cg[old,$op]=$(cgw "$old/cgwrite" $op)
	echo "oldcore: $op: $new_rev ${cg[new,$op]}, $rev ${cg[old,$op]} instructions" >&2
done
for wl in insert-presized insert-grow; do
	for r in $(seq $rounds); do
		if [ $((r % 2)) = 1 ]; then
			a=$(wall build/bench/ambench $wl); b=$(wall "$old/ambench" $wl)
		else
			b=$(wall "$old/ambench" $wl); a=$(wall build/bench/ambench $wl)
		fi
		echo "$wl,$r,$a,$b,$(cut -d' ' -f1 /proc/loadavg)" >> $csv
		echo "oldcore: $wl round $r: new $a old $b Mops/s" >&2
	done
done
{
	echo "anchormap $new_rev against the core of $rev, $n u64 inserts, 1 thread"
	echo "($(date -u +%Y-%m-%dT%H:%MZ); wall clock: $rounds rounds, median [min-max] of the"
	echo "per-round ratios new / old of Mops/s, above 1: the new core faster; load: 1-minute"
	echo "load average after each round, median [min-max]):"
	echo
	echo "| workload | instructions per insert, new | old | new / old | Mops/s new | Mops/s old | wall new / old | load |"
	echo "|---|---|---|---|---|---|---|---|"
	for wl in insert-presized insert-grow; do
		op=insert; [ $wl = insert-grow ] && op=grow
		awk -F, -v wl=$wl -v cn=${cg[new,$op]} -v co=${cg[old,$op]} '
		function med(v, c,   i, j, t) {
			for (i = 2; i <= c; i++)
				for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
			lo = v[1]; hi = v[c]
			return c % 2 ? v[(c + 1) / 2] : (v[c / 2] + v[c / 2 + 1]) / 2
		}
		$1 == wl && $3 > 0 && $4 > 0 { c++; a[c] = $3; b[c] = $4; r[c] = $3 / $4; l[c] = $5 }
		END {
			x = med(a, c); y = med(b, c); lm = med(l, c); llo = lo; lhi = hi; z = med(r, c)
			printf "| %s | %s | %s | %.2f | %.2f | %.2f | %.2f [%.2f-%.2f] | %.2f [%.2f-%.2f] |\n",
				wl, cn, co, cn / co, x, y, z, lo, hi, lm, llo, lhi
		}' $csv
	done
} > $out/oldcore.md
cat $out/oldcore.md
