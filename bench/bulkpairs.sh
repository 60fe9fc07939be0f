#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR MIT
#
# bench/bulkpairs.sh BIN [SIZE] [ROUNDS]: paired rounds of the single-lookup
# loop (anchormap), anchormap_get_many (anchormap_bulk) and rte_hash_bulk,
# back to back in each round, get-hit and get-miss, u64 and k32v64; prints
# the median [min-max] of the per-round ratios (issue 15's batched-lookup
# target).  BIN: the directory holding ambench (build/bench).
set -e
bin=$1 size=${2:-16000000} rounds=${3:-7}
csv=$(mktemp)
trap 'rm -f $csv' EXIT
for kv in u64 k32v64; do
	for r in $(seq "$rounds"); do
		for m in anchormap anchormap_bulk rte_hash_bulk; do
			"$bin/ambench" --map $m --kv $kv --size "$size" --workloads get-hit,get-miss \
				--dists uniform --threads 1 --runs 1 --no-mem --ops 4000000 2>/dev/null |
				grep -v '^#' | awk -F, -v r="$r" '{ print r "," $0 }' >> "$csv"
		done
		echo "# round $kv $r, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
	done
done
python3 - "$csv" <<'PY'
import csv, collections, statistics, sys
rows = collections.defaultdict(dict)
for r in csv.reader(open(sys.argv[1])):
    rows[(r[2], r[4], r[0])][r[1]] = float(r[9])	# Mops/s median
out = collections.defaultdict(list)
for (kv, wl, _), d in rows.items():
    if len(d) == 3:
        out[(kv, wl, 'bulk/single')].append(d['anchormap_bulk'] / d['anchormap'])
        out[(kv, wl, 'bulk/rte_hash_bulk')].append(d['anchormap_bulk'] / d['rte_hash_bulk'])
for k in sorted(out):
    v = out[k]
    print('%s %s %s: %.2f [%.2f-%.2f] (%d rounds)' % (k + (statistics.median(v), min(v), max(v), len(v))))
PY
