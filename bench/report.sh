#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR MIT
# bench/report.sh OUT - from OUT/{throughput,memory,callgrind,targets}.csv write
# OUT/summary.md (every table, the targets), OUT/*.png (gnuplot), and the
# generated blocks of BENCHMARK.md: bench/BENCHMARK.md itself for the
# committed results (OUT = bench/results), else a copy in OUT.
set -e
out=${1:-bench/results}
here=$(cd "$(dirname "$0")" && pwd)
csv=$out/throughput.csv mem=$out/memory.csv cg=$out/callgrind.csv
sum=$out/summary.md
maps="anchormap absl absl_rwlock libcuckoo ck_ht cds_lfht rte_hash rte_hash_bulk tbb_hash_map tbb_unordered_map"

# median Mops/s of one configuration ("" when absent)
med() {	# map kv size workload dist threads
	awk -F, -v m=$1 -v k=$2 -v s=$3 -v w=$4 -v d=$5 -v t=$6 \
		'$1==m && $2==k && $3==s && $4==w && $5==d && $6==t {print $9; exit}' $csv
}
memv() {	# map kv size mode column
	awk -F, -v m=$1 -v k=$2 -v s=$3 -v o=$4 -v c=$5 \
		'$1==m && $2==k && $3==s && $4==o {print $c; exit}' $mem
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "n/a"; else printf "%.2f", a / b }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { print (a != "n/a" && a + 0 >= b) ? "**met**" : "not met" }'; }

big=1000000
[ -z "$(med anchormap u64 $big get-hit uniform 1)" ] && big=100000	# quick mode

sec_machine() {
	echo '```'
	cat $out/machine.txt
	echo '```'
}

# the paired target table (targets.csv), or nothing
sec_paired() {
	local tgt=$out/targets.csv
	[ -s $tgt ] && [ $(wc -l < $tgt) -gt 1 ] || return 0
	echo "| target | kv | keys | anchormap | peer | ratio | |"
	echo "|---|---|---|---|---|---|---|"
	awk -F, 'NR > 1 {
		k = $1 "," $3 "," $4 "," $5 "," $6
		if (!(k in n)) order[++nk] = k
		i = ++n[k]; a[k, i] = $8; b[k, i] = $9; r[k, i] = $9 > 0 ? $8 / $9 : 0
	}
	function med(arr, k, cnt,   i, j, t, v) {
		for (i = 1; i <= cnt; i++) v[i] = arr[k, i]
		for (i = 2; i <= cnt; i++)
			for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
		lo = v[1]; hi = v[cnt]
		return cnt % 2 ? v[(cnt + 1) / 2] : (v[cnt / 2] + v[cnt / 2 + 1]) / 2
	}
	END {
		for (o = 1; o <= nk; o++) {
			k = order[o]; split(k, f, ",")
			kv = f[1]; wl = f[2]; dist = f[3]; thr = f[4]; peer = f[5]
			want = 1.0
			if (wl == "get-hit") {
				want = peer == "absl" ? 0.9 : peer == "ck_ht" ? 1.5 : peer == "cds_lfht" ? 3 : 0
				name = sprintf("get-hit, %s thread: >= %gx %s", thr, want, peer)
				if (!want) name = sprintf("get-hit, %s thread: vs %s", thr, peer)
				if (peer == "anchormap_call") name = "get-hit, 1 thread: inline vs exported call"
			} else {
				name = sprintf("%s, %s threads: ahead of %s", wl, thr, peer)
			}
			ma = med(a, k, n[k]); mb = med(b, k, n[k]); mr = med(r, k, n[k])
			verdict = !want ? "(info)" : mr >= want ? "**met**" : "not met"
			printf "| %s | %s | %s | %.2f | %.2f | %.2f [%.2f-%.2f] | %s |\n",
				name, kv, dist, ma, mb, mr, lo, hi, verdict
		}
	}' $tgt
}

sec_matrix() {
	local am pv r p pm want kv amr best bestm v size a b ok
	am=$(med anchormap u64 $big get-hit uniform 1)
	echo "| target | anchormap | peer | ratio | |"
	echo "|---|---|---|---|---|"
	for p in absl:0.9 ck_ht:1.5 cds_lfht:3; do
		IFS=: read pm want <<< "$p"
		pv=$(med $pm u64 $big get-hit uniform 1)
		r=$(ratio "$am" "$pv")
		echo "| get-hit, 1 thread: >= ${want}x $pm | $am | $pv | $r | $(ge $r $want) |"
	done
	for kv in u64 k32v64; do
		amr=$(med anchormap $kv $big read-heavy uniform 2)
		best=0 bestm=
		for pm in absl_rwlock libcuckoo ck_ht cds_lfht rte_hash rte_hash_bulk tbb_hash_map; do
			v=$(med $pm $kv $big read-heavy uniform 2)
			[ -n "$v" ] && awk -v a=$v -v b=$best 'BEGIN{exit !(a > b)}' && best=$v bestm=$pm
		done
		r=$(ratio "$amr" "$best")
		echo "| read-heavy, 2 threads, $kv: ahead of every peer | $amr | $best ($bestm) | $r | $(ge $r 1.0) |"
	done
	for kv in u64 k32v64; do
		for size in $(awk -F, -v k=$kv '$2==k && $4=="presized"{print $3}' $mem | sort -un); do
			a=$(memv anchormap $kv $size presized 7)
			b=$(memv absl $kv $size presized 7)
			r=$(ratio "$a" "$b")
			ok=$(awk -v r=$r 'BEGIN{print (r != "n/a" && r <= 1.3) ? "**met**" : "not met"}')
			echo "| pre-sized bytes/entry, $kv $size: <= 1.3x absl | $a | $b | $r | $ok |"
		done
	done
}

# one throughput table: every map, 1 / 2 / 4 threads
sec_table() {	# kv size workload dist
	local m
	echo "| map | 1 thread | 2 threads | 4 threads | ns/op (1 thread) |"
	echo "|---|---|---|---|---|"
	for m in $maps; do
		awk -F, -v m=$m -v k=$1 -v s=$2 -v w=$3 -v d=$4 '
			$1==m && $2==k && $3==s && $4==w && $5==d {
				c[$6] = sprintf("%.1f [%.1f-%.1f]", $9, $10, $11)
				if ($6 == 1) ns = $14
				any = 1
			}
			END {
				if (!any) exit
				printf "| %s | %s | %s | %s | %s |\n", m,
					c[1] ? c[1] : "-", c[2] ? c[2] : "-",
					c[4] ? c[4] : "-", ns ? ns : "-"
			}' $csv
	done
}

# instructions per lookup (callgrind.csv)
sec_callgrind() {
	[ -s $cg ] && [ $(wc -l < $cg) -gt 1 ] || return 0
	echo "| map | entries | get-hit | get-miss |"
	echo "|---|---|---|---|"
	awk -F, 'NR>1 { v[$1","$2","$3] = $4; if (!seen[$1","$2]++) order[++n] = $1","$2 }
		END { for (i = 1; i <= n; i++) { split(order[i], a, ",")
			printf "| %s | %s | %s | %s |\n", a[1], a[2],
				v[order[i]",get-hit"], v[order[i]",get-miss"] } }' $cg
}

{
echo "# anchormap benchmark: all results"
echo
echo "Generated by \`bench/report.sh\` from the CSV files next to this one."
echo "Throughput in million operations per second (Mops/s, all threads together):"
echo "median of the runs, then [min-max]. Machine:"
echo
sec_machine
echo

# ---- targets ----
tgt=$out/targets.csv
if [ -s $tgt ] && [ $(wc -l < $tgt) -gt 1 ]; then
	tsize=$(awk -F, 'NR==2 {print $2}' $tgt)
	rounds=$(awk -F, 'NR>1 {print $7}' $tgt | sort -un | wc -l)
	echo "## Targets (paired runs, $tsize entries)"
	echo
	echo "Each row: $rounds rounds, each round anchormap and the peer back to back (fresh"
	echo "processes, median of 3 runs each, which goes first alternates); the ratio is"
	echo "anchormap / peer per round, shown as the median [min-max] over the rounds. Mops/s"
	echo "are the medians over the rounds. \`anchormap_call\` is anchormap through the exported"
	echo "\`anchormap_get()\` instead of the header-inline \`anchormap_get_fast()\` (no target)."
	echo
	sec_paired
	echo
fi
echo "## Targets from the matrix (single runs; u64, uniform keys, $big entries unless said)"
echo
sec_matrix
echo

# ---- throughput tables ----
echo "## Throughput"
echo
for kv in u64 k32v64; do
for size in $(awk -F, -v k=$kv 'NR>1 && $2==k {print $3}' $csv | sort -un); do
for wl in get-hit get-miss read-heavy exchange rapid-grow insert-presized insert-grow; do
for dist in uniform zipf -; do
	n=$(awk -F, -v k=$kv -v s=$size -v w=$wl -v d=$dist \
		'$2==k && $3==s && $4==w && $5==d' $csv | wc -l)
	[ "$n" = 0 ] && continue
	echo "### $wl, $kv, $size entries, keys: $dist"
	echo
	sec_table $kv $size $wl $dist
	echo
done
done
done
done

# ---- memory ----
echo "## Memory (bytes per entry)"
echo
echo "Allocator bytes (malloc_usable_size of every live block) after inserting"
echo "n keys into a map made for n (pre-sized) or for 0 (grown), and the peak"
echo "during the inserts; rss: resident-set growth per entry, pre-sized."
echo
echo "| map | kv | entries | pre-sized | pre-sized peak | rss | grown | grown peak |"
echo "|---|---|---|---|---|---|---|---|"
for kv in u64 k32v64; do
	for size in $(awk -F, -v k=$kv '$2==k {print $3}' $mem | sort -un); do
		for m in $maps; do
			p=$(memv $m $kv $size presized 7)
			[ -z "$p" ] && continue
			g=$(memv $m $kv $size grown 7)
			gp=$(memv $m $kv $size grown 8)
			echo "| $m | $kv | $size | $p | $(memv $m $kv $size presized 8) |" \
			     "$(memv $m $kv $size presized 9) | ${g:--} | ${gp:--} |"
		done
	done
done
echo

# ---- callgrind ----
if [ -s $cg ] && [ $(wc -l < $cg) -gt 1 ]; then
	echo "## Instructions per u64 lookup (callgrind, pre-sized map)"
	echo
	sec_callgrind
	echo
fi
if grep -q '^warning:' $out/ambench.log 2>/dev/null; then
	echo "## Warnings"
	echo
	echo '```'
	grep '^warning:' $out/ambench.log | sort -u
	echo '```'
	echo
fi
if [ -s $out/failures.txt ]; then
	echo "## Runs that failed"
	echo
	echo '```'
	cat $out/failures.txt
	echo '```'
fi
} > $sum

# ---- BENCHMARK.md: replace each generated block with this run's ----
doc=$here/BENCHMARK.md
if [ "$(cd "$out" && pwd)" != "$here/results" ]; then
	sed 's|(results/|(|g' "$here/BENCHMARK.md" > "$out/BENCHMARK.md"	# plots sit beside it
	doc=$out/BENCHMARK.md
fi
huge=$(awk -F, 'NR>1 && $2=="u64" {print $3}' $csv | sort -n | tail -1)
block=$(mktemp)
# gen NAME CMD...: the lines between "<!-- generated: NAME -->" and
# "<!-- end generated -->" become CMD's output
gen() {
	local name=$1
	shift
	"$@" > $block
	awk -v name="$name" -v src=$block '
		$0 == "<!-- generated: " name " -->" {
			print; while ((getline l < src) > 0) print l; skip = 1; found = 1; next
		}
		skip && $0 == "<!-- end generated -->" { skip = 0 }
		!skip { print }
		END { if (!found) print "report: no block " name " in BENCHMARK.md" > "/dev/stderr" }
	' $doc > $doc.tmp && mv $doc.tmp $doc
}
gen machine sec_machine
gen targets-paired sec_paired
gen targets-matrix sec_matrix
gen get-hit sec_table u64 $big get-hit uniform
gen read-heavy sec_table u64 $big read-heavy zipf
gen exchange sec_table u64 $big exchange zipf
gen exchange-huge sec_table u64 $huge exchange zipf
gen insert-presized sec_table u64 $big insert-presized -
gen callgrind sec_callgrind
rm -f $block
echo "report: generated blocks of $doc" >&2

# ---- plots ----
command -v gnuplot >/dev/null || { echo "report: no gnuplot, no plots" >&2; exit 0; }
dat=$(mktemp -d)
trap 'rm -rf $dat' EXIT

# bars: one cluster per x value, one bar per map; $1 name, $2 title,
# $3 ylabel, then lines "xlabel|kv|size|workload|dist|threads"
bars() {
	local name=$1 title=$2 ylabel=$3 have= m spec v row n
	shift 3
	# only the maps with at least one value: gnuplot rejects an all-NaN column
	for m in $maps; do
		for spec in "$@"; do
			IFS='|' read xl kv size wl dist thr <<< "$spec"
			[ -n "$(med $m $kv $size $wl $dist $thr)" ] && { have="$have $m"; break; }
		done
	done
	[ -z "$have" ] && return 0
	n=$(( $(echo $have | wc -w) + 1 ))
	{
		echo "x $have"
		for spec in "$@"; do
			IFS='|' read xl kv size wl dist thr <<< "$spec"
			row="\"$xl\""
			for m in $have; do
				v=$(med $m $kv $size $wl $dist $thr)
				row="$row ${v:-NaN}"
			done
			echo "$row"
		done
	} > $dat/$name.dat
	gnuplot <<-EOF || echo "report: plot $name failed" >&2
	set terminal pngcairo size 900,480 font "sans,10" noenhanced
	set output "$out/$name.png"
	set title "$title"
	set ylabel "$ylabel"
	set style data histograms
	set style histogram clustered gap 1
	set style fill solid 0.85 border -1
	set key top right
	set grid ytics
	set yrange [0:*]
	plot for [i=2:$n] "$dat/$name.dat" using i:xtic(1) title columnheader(i)
	EOF
}

sizes_u64=$(awk -F, 'NR>1 && $2=="u64" {print $3}' $csv | sort -un)
big=$(echo $sizes_u64 | awk '{print ($2 ? $2 : $1)}')
specs=()
for s in $sizes_u64; do specs+=("$s entries|u64|$s|get-hit|uniform|1"); done
bars get_hit_1t "get-hit, u64, uniform, 1 thread" "Mops/s" "${specs[@]}"
specs=()
for s in $sizes_u64; do specs+=("$s entries|u64|$s|get-miss|uniform|1"); done
bars get_miss_1t "get-miss, u64, uniform, 1 thread" "Mops/s" "${specs[@]}"
for wl in get-hit read-heavy exchange rapid-grow insert-presized insert-grow; do
	for kv in u64 k32v64; do
		d=uniform
		case $wl in insert-*) d=- ;; esac
		specs=()
		for t in 1 2 4; do
			specs+=("$t thr uniform|$kv|$big|$wl|$d|$t")
			[ $d = uniform ] && specs+=("$t thr zipf|$kv|$big|$wl|zipf|$t")
		done
		bars "${wl//-/_}_${kv}_threads" "$wl, $kv, $big entries (2 cores)" "Mops/s" "${specs[@]}"
	done
done

# memory bars: the maps with a row (rte_hash_bulk is rte_hash)
memmaps=
for m in $maps; do
	grep -q "^$m," $mem && memmaps="$memmaps $m"
done
{
	echo "x $memmaps"
	for kv in u64 k32v64; do
		for size in $(awk -F, -v k=$kv '$2==k {print $3}' $mem | sort -un); do
			for mode in presized grown; do
				row="\"$kv $size $mode\""
				for m in $memmaps; do
					c=7
					[ $mode = grown ] && c=8
					v=$(memv $m $kv $size $mode $c)
					row="$row ${v:-NaN}"
				done
				echo "$row"
			done
		done
	done
} > $dat/mem.dat
gnuplot <<EOF || echo "report: memory plot failed" >&2
set terminal pngcairo size 1100,480 font "sans,10" noenhanced
set output "$out/memory.png"
set title "bytes per entry (pre-sized: after the fill; grown: peak during the fill)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set xtics rotate by -30
set grid ytics
set yrange [0:*]
plot for [i=2:$(( $(echo $memmaps | wc -w) + 1 ))] "$dat/mem.dat" using i:xtic(1) title columnheader(i)
EOF
echo "report: $sum and $(ls $out/*.png | wc -l) plots in $out" >&2
