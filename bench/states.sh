#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR MIT
# bench/states.sh MODE BIN OUT - lookup cost by growth history and churn
# (issue 12), for every map that can be in each state (bench/states.h), for
# u64 and k32v64 keys:
#
#   1. instructions per lookup, hit and miss (callgrind, cgget ... both)
#   2. bytes per live entry once the state is built, and the peak while it
#      was built (ambench --state S --workloads "": memory phase only); for
#      anchormap after churn, the peak during anchormap_shrink_to_fit()
#   3. paired wall clock: two configurations back to back as fresh processes
#      in each round, which goes first alternating, the ratio taken per
#      round, median [min-max] of the rounds, the load average with each
#      round: anchormap in each state against presized (churnK also against
#      freshK, the same live set inserted once), and anchormap against absl
#      pre-sized
#
# 1 and 2 are deterministic counts (up to the maps' random seeds), so they
# run two at a time; 3 runs alone, after them.  MODE full: states at 1M, and
# presized / grown at 16M ("grown16m"), 7 rounds; quick: 100k and 1M, 3
# rounds.  Writes OUT/states_cg.csv, states_mem.csv, states_pairs.csv, the
# plots states_*.png and OUT/states.md; with OUT = bench/results also the
# "states" block of bench/BENCHMARK.md.
#
#   BENCH_MAPS="anchormap"     measure these maps only; the rows of the other
#                              maps already in the CSVs are kept (so that
#                              one map's rows can be redone alone)
#   BENCH_KVS="u64"            the same for key kinds (default u64 k32v64)
#   BENCH_STATES_PHASES=counts or =pairs   one phase only (default both);
#                              the tables are made from whatever CSVs OUT holds
#   BENCH_PAIR_ROUNDS=N        rounds of the pairs (full mode, default 7)
set -e

# one measurement, run by xargs below: job cg|mem BIN TMP N MAP SIZE STATE
if [ "$1" = job ]; then
	kind=$2 bin=$3 tmp=$4 n=$5 m=$6 kv=$7 size=$8 st=$9
	tag=$m.$kv.$size.$st
	if [ $kind = cg ]; then
		rc=0
		valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=$tmp/cg.$tag \
			--toggle-collect='*cg_lookups*' "$bin/cgget" $m $size both $n $st $kv \
			>/dev/null 2>$tmp/cg.$tag.err || rc=$?
		if [ $rc = 3 ]; then
			grep '^skip:' $tmp/cg.$tag.err >&2 || true
			echo "$m,$kv,$size,$st,-,-" > $tmp/cgrow.$tag
		elif [ $rc != 0 ]; then
			echo "states: cgget $m $kv $size $st: exit $rc" >&2
			tail -5 $tmp/cg.$tag.err >&2
			echo "$m,$kv,$size,$st,failed,failed" > $tmp/cgrow.$tag
		else
			awk -v m=$m -v kv=$kv -v s=$size -v st=$st -v n=$n '
				/^summary:/ { v[FILENAME] = $2 / n }
				END { printf "%s,%s,%s,%s,%.1f,%.1f\n", m, kv, s, st,
				      v[ARGV[1]], v[ARGV[2]] }' \
				$tmp/cg.$tag.1 $tmp/cg.$tag > $tmp/cgrow.$tag
		fi
		rm -f $tmp/cg.$tag $tmp/cg.$tag.1
	else
		"$bin/ambench" --map $m --kv $kv --size $size --state $st --workloads "" \
			--mem-csv $tmp/memrow.$tag 2>$tmp/mem.$tag.err ||
			{ echo "states: ambench $m $kv $size $st memory: failed" >&2
			  tail -5 $tmp/mem.$tag.err >&2; }
		grep '^skip:' $tmp/mem.$tag.err >&2 || true
	fi
	echo "[states] done $kind $m $kv $size $st" >&2
	exit 0
fi

mode=$1 bin=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
allmaps="anchormap absl libcuckoo ck_ht cds_lfht rte_hash rte_hash_bulk tbb_hash_map tbb_unordered_map"
maps=${BENCH_MAPS:-$allmaps}
kvs=${BENCH_KVS:-u64 k32v64}
for m in $maps; do
	[[ " $allmaps " == *" $m "* ]] || { echo "states: unknown map $m" >&2; exit 2; }
done
states="presized grown churn1 churn5 churn10 fresh10"
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
# the longest first (churn10, the 16M fills), so that the two lanes end
# together; no memory row for rte_hash_bulk (rte_hash's map) or fresh10
# (a presized map of other keys)
{
	for kv in $kvs; do
		for st in churn10 churn5; do
			for m in $maps; do
				echo "cg $m $kv $size $st"
				[ $m = rte_hash_bulk ] || echo "mem $m $kv $size $st"
			done
		done
		for m in $maps; do
			for st in grown presized; do
				echo "cg $m $kv $big $st"
				[ $m = rte_hash_bulk ] || echo "mem $m $kv $big $st"
			done
		done
		for st in fresh10 churn1 grown presized; do
			for m in $maps; do
				echo "cg $m $kv $size $st"
				[ $m = rte_hash_bulk ] || [ $st = fresh10 ] ||
					echo "mem $m $kv $size $st"
			done
		done
	done
} > $tmp/jobs
log "callgrind and memory: $(wc -l < $tmp/jobs) jobs, 2 at a time"
while read kind m kv sz st; do
	echo "job $kind $bin $tmp $cgn $m $kv $sz $st"
done < $tmp/jobs | xargs -P 2 -L 1 bash "$0"

# the rows of maps and key kinds not measured now are kept, in the order
# of allmaps; a CSV of another layout is started over
keep() {	# csv header: the kept rows (the CSV's map and kv are columns 1, 2)
	[ -f "$1" ] && [ "$(head -1 "$1")" = "$2" ] || return 0
	awk -F, -v maps=" $maps " -v kvs=" $kvs " 'NR > 1 &&
		!(index(maps, " " $1 " ") && index(kvs, " " $2 " "))' "$1"
}
cgh="map,kv,size,state,get_hit,get_miss"
memh="map,kv,size,mode,live_bytes,peak_bytes,live_bytes_per_entry,peak_bytes_per_entry,rss_bytes_per_entry"
keep $out/states_cg.csv "$cgh" > $tmp/cg.kept
keep $out/states_mem.csv "$memh" > $tmp/mem.kept
for kv in $kvs; do
	for sz in $size $big; do
		for m in $maps; do
			for st in $states; do
				f=$tmp/cgrow.$m.$kv.$sz.$st
				[ -f $f ] && cat $f >> $tmp/cg.kept
				f=$tmp/memrow.$m.$kv.$sz.$st
				[ -f $f ] && cat $f >> $tmp/mem.kept
			done
		done
	done
done
# one order whatever was kept: kv, size, map as in allmaps
order() {
	awk -F, -v maps="$allmaps" 'BEGIN { n = split(maps, a, " "); for (i = 1; i <= n; i++) r[a[i]] = i }
		{ printf "%s,%012d,%02d,%s\n", $2, $3, r[$1], $0 }' "$1" | sort -s -t, -k1,3 |
		cut -d, -f4-
}
{ echo "$cgh"; order $tmp/cg.kept; } > $out/states_cg.csv
{ echo "$memh"; order $tmp/mem.kept; } > $out/states_mem.csv
fi

# ---- 3: paired wall clock (anchormap's rows only) ----
pairs=$out/states_pairs.csv
pairh="kv,size,a,b,workload,round,a_mops,b_mops,load1"
if has pairs && [[ " $maps " == *" anchormap "* ]]; then
keep_pairs() {	# the rows of key kinds not measured now
	[ -f $pairs ] && [ "$(head -1 $pairs)" = "$pairh" ] || return 0
	awk -F, -v kvs=" $kvs " 'NR > 1 && !index(kvs, " " $1 " ")' $pairs
}
keep_pairs > $tmp/pairs.kept
{ echo "$pairh"; cat $tmp/pairs.kept; } > $pairs
run1() {	# map:state kv size -> "hit_mops miss_mops"
	"$bin/ambench" --map ${1%%:*} --kv $2 --size $3 --state ${1#*:} \
		--workloads get-hit,get-miss --dists uniform --threads 1 --runs 3 --ops $ops --no-mem |
		awk -F, '$4 == "get-hit" { h = $9 } $4 == "get-miss" { m = $9 } END { print h, m }'
}
# kv size a b (map:state each)
specs() {
	local kv
	for kv in $kvs; do
		echo "$kv $size anchormap:grown anchormap:presized"
		echo "$kv $size anchormap:churn10 anchormap:fresh10"
		echo "$kv $size anchormap:presized absl:presized"
	done
	for kv in $kvs; do
		echo "$kv $big anchormap:grown anchormap:presized"
		echo "$kv $size anchormap:churn1 anchormap:presized"
		echo "$kv $size anchormap:churn5 anchormap:presized"
		echo "$kv $size anchormap:churn10 anchormap:presized"
	done
}
while read kv sz a b; do
	log "paired: $a vs $b, $kv, $sz entries, $rounds rounds"
	for r in $(seq $rounds); do
		if [ $((r % 2)) = 1 ]; then
			read ah am <<< "$(run1 $a $kv $sz)"
			read bh bm <<< "$(run1 $b $kv $sz)"
		else
			read bh bm <<< "$(run1 $b $kv $sz)"
			read ah am <<< "$(run1 $a $kv $sz)"
		fi
		l=$(cut -d' ' -f1 /proc/loadavg)
		echo "$kv,$sz,$a,$b,get-hit,$r,$ah,$bh,$l" >> $pairs
		echo "$kv,$sz,$a,$b,get-miss,$r,$am,$bm,$l" >> $pairs
	done
done < <(specs)
echo "$(date -u +%Y-%m-%dT%H:%MZ), anchormap $(git -C "$here" describe --always --dirty 2>/dev/null)" \
	> $out/states_pairs.txt
fi
log "done"

# ---- tables ----
cgv() {	# map kv size state column(5 hit, 6 miss)
	awk -F, -v m=$1 -v kv=$2 -v s=$3 -v st=$4 -v c=$5 \
		'$1==m && $2==kv && $3==s && $4==st {print $c; exit}' $out/states_cg.csv
}
memv() {	# map kv size mode column
	awk -F, -v m=$1 -v kv=$2 -v s=$3 -v st=$4 -v c=$5 \
		'$1==m && $2==kv && $3==s && $4==st {print $c; exit}' $out/states_mem.csv
}
cgcell() {	# map kv size state
	local h=$(cgv $1 $2 $3 $4 5) m=$(cgv $1 $2 $3 $4 6)
	if [ -z "$h" ] || [ "$h" = - ]; then echo -n "-"; else echo -n "$h / $m"; fi
}
memcell() {	# map kv size mode
	local a=$(memv $1 $2 $3 $4 7) b=$(memv $1 $2 $3 $4 8)
	if [ -z "$a" ]; then echo -n "-"; else echo -n "$a [$b]"; fi
}
human() { awk -v n=$1 'BEGIN { if (n >= 1000000) printf "%gM", n / 1000000; else printf "%gk", n / 1000 }'; }
inrows() {	# maps with a row for kv $1 in csv $2
	local m
	for m in $allmaps; do
		grep -q "^$m,$1," $2 2>/dev/null && echo $m
	done
}
sec_cg() {	# kv
	local m st row hd sep
	hd="| map |" sep="|---|"
	for st in $states; do hd="$hd $st $(human $size) |"; sep="$sep---|"; done
	hd="$hd presized $(human $big) | grown $(human $big) |"
	echo "$hd"
	echo "$sep---|---|"
	for m in $(inrows $1 $out/states_cg.csv); do
		row="| $m |"
		for st in $states; do row="$row $(cgcell $m $1 $size $st) |"; done
		for st in presized grown; do row="$row $(cgcell $m $1 $big $st) |"; done
		echo "$row"
	done
}
sec_mem() {	# kv
	local m st row hd sep c a b
	hd="| map |" sep="|---|"
	for st in presized grown churn1 churn5 churn10; do
		hd="$hd $st $(human $size) |"; sep="$sep---|"
	done
	hd="$hd presized $(human $big) | grown $(human $big) |"
	echo "$hd"
	echo "$sep---|---|"
	for m in $(inrows $1 $out/states_mem.csv); do
		row="| $m |"
		for st in presized grown churn1 churn5 churn10; do
			row="$row $(memcell $m $1 $size $st) |"
		done
		for st in presized grown; do row="$row $(memcell $m $1 $big $st) |"; done
		echo "$row"
	done
	# the peak during shrink_to_fit against the final size, and the extra it
	# needs over what the map held before it, against the final size
	row="| anchormap: shrink_to_fit, final [peak during] (peak / final; (peak - before) / final) | - |"
	for st in grown churn1 churn5 churn10; do
		a=$(memv anchormap $1 $size $st-shrink 7) b=$(memv anchormap $1 $size $st-shrink 8)
		c=$(memv anchormap $1 $size $st 7)
		c=$(awk -v a="$a" -v b="$b" -v c="$c" \
			'BEGIN { if (a > 0) printf "%.2fx; %.2fx", b / a, (b - c) / a }')
		[ -n "$a" ] && row="$row $a [$b] ($c) |" || row="$row - |"
	done
	a=$(memv anchormap $1 $big grown-shrink 7) b=$(memv anchormap $1 $big grown-shrink 8)
	c=$(memv anchormap $1 $big grown 7)
	c=$(awk -v a="$a" -v b="$b" -v c="$c" \
		'BEGIN { if (a > 0) printf "%.2fx; %.2fx", b / a, (b - c) / a }')
	[ -n "$a" ] && row="$row - | $a [$b] ($c) |" || row="$row - | - |"
	echo "$row"
}
sec_pairs() {
	echo "| kv | entries | A | B | get-hit ns A | get-hit ns B | A / B | get-miss ns A | get-miss ns B | A / B | load (1 min) |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|"
	[ -f $pairs ] || return 0
	awk -F, 'NR > 1 && $7 > 0 && $8 > 0 {
		k = $1 "," $2 "," $3 "," $4
		if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
		i = ++n[k, $5]; a[k, $5, i] = 1000 / $7; b[k, $5, i] = 1000 / $8
		r[k, $5, i] = $8 / $7; ld[k, $5, i] = $9
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
			line = sprintf("| %s | %s | %s | %s |", f[1], f[2], f[3], f[4])
			for (w = 1; w <= 2; w++) {
				wl = w == 1 ? "get-hit" : "get-miss"; c = n[k, wl]
				x = med(a, k, wl, c); y = med(b, k, wl, c); z = med(r, k, wl, c)
				line = line sprintf(" %.1f | %.1f | %.2f [%.2f-%.2f] |", x, y, z, lo, hi)
			}
			l = med(ld, k, "get-hit", n[k, "get-hit"])
			print line sprintf(" %.2f [%.2f-%.2f] |", l, lo, hi)
		}
	}' $pairs
}
# plots: instructions per lookup by state (growth history and churn), one
# line per map, for each kv; gnuplot if installed
plot_states() {	# kv
	local m st i dat=$tmp/plot.$1 plot="" c=2
	command -v gnuplot > /dev/null || return 0
	[ -n "$(inrows $1 $out/states_cg.csv)" ] || return 0
	{
		echo -n "state"
		for m in $(inrows $1 $out/states_cg.csv); do echo -n " $m-hit $m-miss"; done
		echo
		i=0
		for st in presized:$size grown:$size churn1:$size churn5:$size churn10:$size \
			  fresh10:$size presized:$big grown:$big; do
			echo -n "${st%%:*}-$(human ${st#*:})"
			for m in $(inrows $1 $out/states_cg.csv); do
				for c5 in 5 6; do
					v=$(cgv $m $1 ${st#*:} ${st%%:*} $c5)
					case "$v" in ''|-|failed) v=NaN ;; esac
					echo -n " $v"
				done
			done
			echo
		done
	} > $dat
	for m in $(inrows $1 $out/states_cg.csv); do
		plot="$plot${plot:+, }'$dat' using $c:xtic(1) with linespoints title '$m hit'"
		plot="$plot, '$dat' using $((c + 1)) with linespoints dashtype 2 title '$m miss'"
		c=$((c + 2))
	done
	gnuplot <<-EOF
	set terminal png size 1000,560
	set output '$out/states_$1.png'
	set title 'instructions per $1 lookup by growth history and churn (callgrind)'
	set ylabel 'instructions per lookup'
	set logscale y
	set key outside right
	set grid ytics
	set xtics rotate by -30
	plot $plot
	EOF
}
for kv in $kvs; do plot_states $kv; done
{
	echo "Instructions per lookup, get-hit / get-miss (callgrind, $cgn lookups, loop included):"
	for kv in u64 k32v64; do
		[ -n "$(inrows $kv $out/states_cg.csv)" ] || continue
		echo
		echo "$kv:"
		echo
		sec_cg $kv
	done
	echo
	echo "Bytes per live entry once the state is built [peak while building]:"
	for kv in u64 k32v64; do
		[ -n "$(inrows $kv $out/states_mem.csv)" ] || continue
		echo
		echo "$kv:"
		echo
		sec_mem $kv
	done
	echo
	echo "Wall clock per lookup (1 thread, uniform keys), A and B paired: median [min-max] of"
	echo "the per-round ratios A / B of ns per lookup ($rounds rounds in full mode; below 1: A"
	echo "faster), the 1-minute load average after each round, median [min-max]; $(cat $out/states_pairs.txt 2>/dev/null):"
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
