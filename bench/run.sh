#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR MIT
# bench/run.sh MODE BIN OUT - run the benchmark matrix (MODE full or quick),
# write CSVs to OUT, then the plots and summary tables (bench/report.sh).
set -e
mode=$1 bin=$2 out=$3
maps="anchormap absl absl_rwlock libcuckoo ck_ht cds_lfht rte_hash rte_hash_bulk tbb_hash_map tbb_unordered_map"
mkdir -p "$out"
csv=$out/throughput.csv mem=$out/memory.csv cg=$out/callgrind.csv
# BENCH_APPEND=1 BENCH_PLAN="kv:size:workloads:threads:grow-ops ..." BENCH_MAPS="..."
# adds rows to an existing result set (to redo one step) instead of starting over;
# an empty workload list measures memory only; BENCH_PAIRS=1 redoes the pairs
# (of BENCH_MAPS' peers only), BENCH_CG=1 the instruction counts (of BENCH_MAPS);
# machine.txt gets a line saying what was appended
if [ -z "$BENCH_APPEND" ]; then
	echo "map,kv,size,workload,dist,threads,ops,runs,median_mops,min_mops,max_mops,q1_mops,q3_mops,median_ns_per_op" > $csv
	echo "map,kv,size,mode,live_bytes,peak_bytes,live_bytes_per_entry,peak_bytes_per_entry,rss_bytes_per_entry" > $mem
	echo "map,size,lookup,instructions_per_get" > $cg
fi
maps=${BENCH_MAPS:-$maps}

reads=get-hit,get-miss,read-heavy,exchange
fresh=rapid-grow,insert-presized,insert-grow
if [ "$mode" = quick ]; then
	runs=3 ops=200000 threads=1,2,4
	# kv:size:workloads:threads:grow-ops
	plan="u64:1000:$reads:$threads:0 u64:100000:$reads,$fresh:$threads:0
	      k32v64:1000:$reads:$threads:0 k32v64:100000:$reads,$fresh:$threads:0"
	cgsizes="1000 100000" cgn=20000
else
	runs=5 ops=2000000 threads=1,2,4
	plan="u64:1000:$reads:$threads:0 u64:1000000:$reads,$fresh:$threads:0
	      u64:16000000:$reads:$threads:0 u64:16000000:insert-presized,insert-grow:1,2:0
	      k32v64:1000:$reads:$threads:0 k32v64:1000000:$reads,$fresh:$threads:0
	      k32v64:16000000:$reads:$threads:0"
	cgsizes="1000 1000000" cgn=200000
fi

[ -n "$BENCH_PLAN" ] && plan=$BENCH_PLAN
[ -n "$BENCH_APPEND" ] || {
	echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
	echo "mode: $mode"
	echo "anchormap: $(git describe --always --dirty 2>/dev/null || echo unknown)"
	echo "compiler: $(g++ --version | head -1)"
	echo "kernel: $(uname -r)"
	lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|Socket|L1d|L2|L3|Hypervisor|NUMA node\(s\))'
	grep MemTotal /proc/meminfo
	echo "THP: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"
	for p in libabsl-dev libcuckoo-dev libck-dev liburcu-dev libdpdk-dev libtbb-dev; do
		echo "$p: $(dpkg-query -W -f='${Version}' $p 2>/dev/null)"
	done
} > $out/machine.txt
[ -n "$BENCH_APPEND" ] && echo "appended $(date -u +%Y-%m-%dT%H:%MZ), anchormap" \
	"$(git describe --always --dirty 2>/dev/null): maps $maps; plan ${BENCH_PLAN:-$mode};" \
	"pairs ${BENCH_PAIRS:-no}; instruction counts ${BENCH_CG:-no}" >> $out/machine.txt

[ -n "$BENCH_APPEND" ] || rm -f $out/failures.txt
# ambench's stderr (skip: and warning: lines) also goes to ambench.log
alog=$out/ambench.log
[ -n "$BENCH_APPEND" ] || : > $alog
start=$(date +%s)
for step in $plan; do
	IFS=: read kv size wls thr gops <<< "$step"
	for m in $maps; do
		# memory once per (map, kv, size): the second 16M step skips it
		mo=
		grep -q "^$m,$kv,$size," $mem && mo=--no-mem
		[ $m = rte_hash_bulk ] && mo=--no-mem	# the same map as rte_hash
		echo "[$(( $(date +%s) - start ))s] $m $kv $size $wls threads $thr" >&2
		"$bin/ambench" --map $m --kv $kv --size $size --workloads "$wls" \
			--threads $thr --runs $runs --ops $ops --grow-ops $gops \
			--csv $csv --mem-csv $mem $mo 2> >(tee -a $alog >&2) ||
			echo "$m,$kv,$size,$wls,$thr,exit $?" | tee -a $out/failures.txt >&2
	done
done

# The targets, measured paired: anchormap and one peer back to back in each
# round (which goes first alternates), each a fresh process with a median of
# 3 runs; the ratio is taken per round, so drift in the machine's speed
# (a shared host) cancels.  targets.csv: one row per round.
pair_rounds=${BENCH_PAIR_ROUNDS:-7}
[ "$mode" = quick ] && pair_rounds=3
tsize=1000000
[ "$mode" = quick ] && tsize=100000
tgt=$out/targets.csv
[ -n "$BENCH_APPEND" ] ||
	echo "kv,size,workload,dist,threads,peer,round,anchormap_mops,peer_mops" > $tgt
pair() {	# kv workload dist threads peer
	local kv=$1 wl=$2 dist=$3 thr=$4 peer=$5 r m first second a b v
	[ -n "$BENCH_APPEND" ] && [[ " $maps " != *" $peer "* ]] && return 0
	echo "[$(( $(date +%s) - start ))s] paired: anchormap vs $peer $kv $wl $dist $thr" >&2
	for r in $(seq $pair_rounds); do
		first=anchormap second=$peer
		[ $((r % 2)) = 0 ] && first=$peer second=anchormap
		for m in $first $second; do
			v=$("$bin/ambench" --map $m --kv $kv --size $tsize --workloads $wl \
				--dists $dist --threads $thr --runs 3 --ops $ops --no-mem 2>>$alog |
				awk -F, '{print $9}')
			[ $m = anchormap ] && a=$v || b=$v
		done
		[ -n "$a" ] && [ -n "$b" ] && echo "$kv,$tsize,$wl,$dist,$thr,$peer,$r,$a,$b" >> $tgt
	done
}
if [ -z "$BENCH_APPEND" ] || [ -n "$BENCH_PAIRS" ]; then
	for peer in absl ck_ht cds_lfht anchormap_call rte_hash rte_hash_bulk tbb_hash_map \
		    tbb_unordered_map; do
		pair u64 get-hit uniform 1 $peer
	done
	for kv in u64 k32v64; do
		for dist in uniform zipf; do
			for peer in absl_rwlock libcuckoo ck_ht cds_lfht rte_hash rte_hash_bulk \
				    tbb_hash_map; do
				pair $kv read-heavy $dist 2 $peer
			done
		done
	done
fi

# instructions per u64 lookup, pre-sized map (callgrind; stable, unlike time)
cgmaps=
for m in anchormap anchormap_call absl ck_ht cds_lfht libcuckoo rte_hash rte_hash_bulk \
	 tbb_hash_map tbb_unordered_map; do
	[ -z "$BENCH_APPEND" ] || [[ " $maps " == *" $m "* ]] && cgmaps="$cgmaps $m"
done
[ -n "$BENCH_APPEND" ] && [ -z "$BENCH_CG" ] && cgsizes=
for size in $cgsizes; do
	for m in $cgmaps; do
		for h in hit miss; do
			valgrind --tool=callgrind --callgrind-out-file=$out/.cg.out \
				--toggle-collect='*cg_lookups*' "$bin/cgget" $m $size $h $cgn \
				>/dev/null 2>&1
			awk -v m=$m -v s=$size -v h=get-$h -v n=$cgn \
				'/^summary:/{printf "%s,%s,%s,%.1f\n", m, s, h, $2 / n}' \
				$out/.cg.out >> $cg
		done
	done
done
rm -f $out/.cg.out
echo "[$(( $(date +%s) - start ))s] done" >&2
bash bench/report.sh "$out"
