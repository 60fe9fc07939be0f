#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR MIT
# bench/states.sh MODE BIN OUT - lookup cost by growth history and churn
# (issue 12), for every map that can be in each state (bench/states.h):
#
#   1. instructions per u64 lookup, hit and miss (callgrind, cgget ... both)
#   2. bytes per live entry once the state is built, and the peak while it
#      was built (ambench --state S --workloads "": memory phase only); for
#      anchormap after churn, the peak during anchormap_shrink_to_fit()
#   3. anchormap's wall clock in each state against presized, paired: the two
#      back to back as fresh processes in each round, which goes first
#      alternating, the ratio taken per round, median [min-max] of the rounds
#
# 1 and 2 are deterministic counts (up to the maps' random seeds), so they
# run two at a time; 3 runs alone, after them.  MODE full: states at 1M, and
# presized / grown at 16M ("grown16m"), 7 rounds; quick: 100k and 1M, 3
# rounds.  Writes OUT/states_cg.csv, states_mem.csv, states_pairs.csv and
# OUT/states.md; with OUT = bench/results also the "states" block of
# bench/BENCHMARK.md.  BENCH_STATES_PHASES (default "counts pairs") runs
# only some phases (counts: 1 and 2, pairs: 3); the tables are made from
# whatever CSVs OUT holds.
set -e

# one measurement, run by xargs below: job cg|mem BIN TMP N MAP SIZE STATE
if [ "$1" = job ]; then
	kind=$2 bin=$3 tmp=$4 n=$5 m=$6 size=$7 st=$8
	tag=$m.$size.$st
	if [ $kind = cg ]; then
		rc=0
		valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=$tmp/cg.$tag \
			--toggle-collect='*cg_lookups*' "$bin/cgget" $m $size both $n $st \
			>/dev/null 2>$tmp/cg.$tag.err || rc=$?
		if [ $rc = 3 ]; then
			grep '^skip:' $tmp/cg.$tag.err >&2 || true
			echo "$m,$size,$st,-,-" > $tmp/cgrow.$tag
		elif [ $rc != 0 ]; then
			echo "states: cgget $m $size $st: exit $rc" >&2
			tail -5 $tmp/cg.$tag.err >&2
			echo "$m,$size,$st,failed,failed" > $tmp/cgrow.$tag
		else
			awk -v m=$m -v s=$size -v st=$st -v n=$n '
				/^summary:/ { v[FILENAME] = $2 / n }
				END { printf "%s,%s,%s,%.1f,%.1f\n", m, s, st, v[ARGV[1]], v[ARGV[2]] }' \
				$tmp/cg.$tag.1 $tmp/cg.$tag > $tmp/cgrow.$tag
		fi
		rm -f $tmp/cg.$tag $tmp/cg.$tag.1
	else
		"$bin/ambench" --map $m --kv u64 --size $size --state $st --workloads "" \
			--mem-csv $tmp/memrow.$tag 2>$tmp/mem.$tag.err ||
			{ echo "states: ambench $m $size $st memory: failed" >&2; tail -5 $tmp/mem.$tag.err >&2; }
		grep '^skip:' $tmp/mem.$tag.err >&2 || true
	fi
	echo "[states] done $kind $m $size $st" >&2
	exit 0
fi

mode=$1 bin=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
maps="anchormap absl libcuckoo ck_ht cds_lfht rte_hash rte_hash_bulk tbb_hash_map tbb_unordered_map"
states="presized grown churn1 churn5 churn10"
if [ "$mode" = quick ]; then
	size=100000 big=1000000 cgn=20000 rounds=3 ops=200000
else
	size=1000000 big=16000000 cgn=200000 rounds=${BENCH_PAIR_ROUNDS:-7} ops=2000000
fi
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf $tmp' EXIT
start=$(date +%s)
log() { echo "[$(( $(date +%s) - start ))s] $*" >&2; }

phases=${BENCH_STATES_PHASES:-counts pairs}
has() { case " $phases " in *" $1 "*) return 0 ;; esac; return 1; }

# ---- 1 and 2: callgrind and memory, two jobs at a time ----
if has counts; then
# the longest first (churn10, the 16M fills), so that the two lanes end together
{
	for st in churn10 churn5; do
		for m in $maps; do
			echo "cg $m $size $st"
			[ $m = rte_hash_bulk ] || echo "mem $m $size $st"
		done
	done
	for m in $maps; do
		for st in grown presized; do
			echo "cg $m $big $st"
			[ $m = rte_hash_bulk ] || echo "mem $m $big $st"
		done
	done
	for st in churn1 grown presized; do
		for m in $maps; do
			echo "cg $m $size $st"
			[ $m = rte_hash_bulk ] || echo "mem $m $size $st"
		done
	done
} > $tmp/jobs
log "callgrind and memory: $(wc -l < $tmp/jobs) jobs, 2 at a time"
while read kind m sz st; do
	echo "job $kind $bin $tmp $cgn $m $sz $st"
done < $tmp/jobs | xargs -P 2 -L 1 bash "$0"

echo "map,size,state,get_hit,get_miss" > $out/states_cg.csv
echo "map,kv,size,mode,live_bytes,peak_bytes,live_bytes_per_entry,peak_bytes_per_entry,rss_bytes_per_entry" \
	> $out/states_mem.csv
for sz in $size $big; do
	for m in $maps; do
		for st in $states; do
			[ -f $tmp/cgrow.$m.$sz.$st ] && cat $tmp/cgrow.$m.$sz.$st >> $out/states_cg.csv
			[ -f $tmp/memrow.$m.$sz.$st ] && cat $tmp/memrow.$m.$sz.$st >> $out/states_mem.csv
		done
	done
done
fi

# ---- 3: anchormap, each state against presized, paired ----
pairs=$out/states_pairs.csv
if has pairs; then
echo "size,state,workload,round,state_mops,presized_mops" > $pairs
am_run() {	# size state -> "hit_mops miss_mops"
	"$bin/ambench" --map anchormap --kv u64 --size $1 --state $2 --workloads get-hit,get-miss \
		--dists uniform --threads 1 --runs 3 --ops $ops --no-mem |
		awk -F, '$4 == "get-hit" { h = $9 } $4 == "get-miss" { m = $9 } END { print h, m }'
}
load0=$(cut -d' ' -f1-3 /proc/loadavg)
for spec in $size:grown $size:churn1 $size:churn5 $size:churn10 $big:grown; do
	IFS=: read sz st <<< "$spec"
	log "paired: anchormap $st vs presized, $sz entries, $rounds rounds"
	for r in $(seq $rounds); do
		if [ $((r % 2)) = 1 ]; then
			read sh sm <<< "$(am_run $sz $st)"
			read ph pm <<< "$(am_run $sz presized)"
		else
			read ph pm <<< "$(am_run $sz presized)"
			read sh sm <<< "$(am_run $sz $st)"
		fi
		echo "$sz,$st,get-hit,$r,$sh,$ph" >> $pairs
		echo "$sz,$st,get-miss,$r,$sm,$pm" >> $pairs
	done
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)
echo "$load0 / $load1; $(date -u +%Y-%m-%d), anchormap $(git -C "$here" describe --always --dirty 2>/dev/null)" \
	> $out/states_pairs.txt
fi
log "done"

# ---- tables ----
cgv() {	# map size state column(4 hit, 5 miss)
	awk -F, -v m=$1 -v s=$2 -v st=$3 -v c=$4 '$1==m && $2==s && $3==st {print $c; exit}' \
		$out/states_cg.csv
}
memv() {	# map size mode column
	awk -F, -v m=$1 -v s=$2 -v st=$3 -v c=$4 '$1==m && $3==s && $4==st {print $c; exit}' \
		$out/states_mem.csv
}
cgcell() {	# map size state
	local h=$(cgv $1 $2 $3 4) m=$(cgv $1 $2 $3 5)
	if [ -z "$h" ] || [ "$h" = - ]; then echo -n "-"; else echo -n "$h / $m"; fi
}
memcell() {	# map size mode
	local a=$(memv $1 $2 $3 7) b=$(memv $1 $2 $3 8)
	if [ -z "$a" ]; then echo -n "-"; else echo -n "$a [$b]"; fi
}
human() { awk -v n=$1 'BEGIN { if (n >= 1000000) printf "%gM", n / 1000000; else printf "%gk", n / 1000 }'; }
sec_cg() {
	local m st row hd sep
	hd="| map |" sep="|---|"
	for st in $states; do hd="$hd $st $(human $size) |"; sep="$sep---|"; done
	hd="$hd presized $(human $big) | grown $(human $big) |"
	echo "$hd"
	echo "$sep---|---|"
	for m in $maps; do
		row="| $m |"
		for st in $states; do row="$row $(cgcell $m $size $st) |"; done
		for st in presized grown; do row="$row $(cgcell $m $big $st) |"; done
		echo "$row"
	done
}
sec_mem() {
	local m st row hd sep c a b
	hd="| map |" sep="|---|"
	for st in $states; do hd="$hd $st $(human $size) |"; sep="$sep---|"; done
	hd="$hd presized $(human $big) | grown $(human $big) |"
	echo "$hd"
	echo "$sep---|---|"
	for m in $maps; do
		[ $m = rte_hash_bulk ] && continue
		row="| $m |"
		for st in $states; do row="$row $(memcell $m $size $st) |"; done
		for st in presized grown; do row="$row $(memcell $m $big $st) |"; done
		echo "$row"
	done
	row="| anchormap: shrink_to_fit after the churn, final [peak during] (peak / final) | - | - |"
	for st in churn1 churn5 churn10; do
		a=$(memv anchormap $size $st-shrink 7) b=$(memv anchormap $size $st-shrink 8)
		c=$(awk -v a="$a" -v b="$b" 'BEGIN { if (a > 0) printf "%.2fx", b / a }')
		[ -n "$a" ] && row="$row $a [$b] ($c) |" || row="$row - |"
	done
	echo "$row - | - |"
}
sec_pairs() {
	echo "| state | entries | get-hit ns presized | get-hit ns state | state / presized | get-miss ns presized | get-miss ns state | state / presized |"
	echo "|---|---|---|---|---|---|---|---|"
	awk -F, 'NR > 1 {
		k = $1 "," $2
		if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
		i = ++n[k, $3]; s[k, $3, i] = 1000 / $5; p[k, $3, i] = 1000 / $6
		r[k, $3, i] = $5 > 0 ? $6 / $5 : 0
	}
	function med(arr, k, w, cnt,   i, j, t, v) {
		for (i = 1; i <= cnt; i++) v[i] = arr[k, w, i]
		for (i = 2; i <= cnt; i++)
			for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
		lo = v[1]; hi = v[cnt]
		return cnt % 2 ? v[(cnt + 1) / 2] : (v[cnt / 2] + v[cnt / 2 + 1]) / 2
	}
	END {
		for (o = 1; o <= nk; o++) {
			k = order[o]; split(k, f, ",")
			line = sprintf("| %s | %s |", f[2], f[1])
			for (w = 1; w <= 2; w++) {
				wl = w == 1 ? "get-hit" : "get-miss"; c = n[k, wl]
				a = med(p, k, wl, c); b = med(s, k, wl, c); x = med(r, k, wl, c)
				line = line sprintf(" %.1f | %.1f | %.2f [%.2f-%.2f] |", a, b, x, lo, hi)
			}
			print line
		}
	}' $pairs
}
{
	echo "Instructions per u64 lookup, get-hit / get-miss (callgrind, $cgn lookups, loop included):"
	echo
	sec_cg
	echo
	echo "Bytes per live entry once the state is built [peak while building] (u64):"
	echo
	sec_mem
	echo
	echo "anchormap, wall clock per lookup (1 thread, uniform keys), each state paired with presized:"
	echo "$rounds rounds, median [min-max] of the per-round ratios (load average before and after"
	echo "the pairs, date, revision: $(cat $out/states_pairs.txt 2>/dev/null)):"
	echo
	sec_pairs
} > $out/states.md
cat $out/states.md

if [ "$(cd "$out" && pwd)" = "$here/results" ]; then
	doc=$here/BENCHMARK.md
	awk -v src=$out/states.md '
		$0 == "<!-- generated: states -->" {
			print; while ((getline l < src) > 0) print l; skip = 1; found = 1; next
		}
		skip && $0 == "<!-- end generated -->" { skip = 0 }
		!skip { print }
		END { if (!found) print "states: no block states in BENCHMARK.md" > "/dev/stderr" }
	' $doc > $doc.tmp && mv $doc.tmp $doc
	echo "states: the states block of $doc" >&2
fi
