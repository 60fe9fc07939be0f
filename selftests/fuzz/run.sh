#!/bin/bash
# Build the libFuzzer targets (ASan+UBSan) and run each for SECONDS seconds
# on a scratch copy of its seed corpus.  Any finding fails the run.
#   selftests/fuzz/run.sh SECONDS BUILD_DIR
set -u
secs=${1:-30}
mkdir -p "${2:-build}"
out=$(cd "${2:-build}" && pwd)/fuzz
results=${2:-build}/results
root=$(cd "$(dirname "$0")/../.." && pwd)
# the core's sources (sources.mk), as absolute paths
core=$(make -s --no-print-directory -C "$root" print-core | sed -n 1p)
core_src=()
for f in $core; do core_src+=("$root/$f"); done
mkdir -p "$out" "$results"
passed=0 failed=0
for t in ops load; do
	bin=$out/fuzz_$t
	if ! clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-I"$root" -I"$root/userspace_shim" "$root/selftests/fuzz/fuzz_$t.c" \
		"${core_src[@]}" "$root/userspace_shim/shim.c" -o "$bin"; then
		echo "not ok fuzz_$t # build failed"
		failed=$((failed + 1))
		continue
	fi
	rm -rf "$out/corpus_$t" && cp -r "$root/selftests/fuzz/corpus_$t" "$out/corpus_$t"
	if (cd "$out" && timeout $((secs + 60)) "$bin" -max_total_time="$secs" -max_len=4096 \
		-print_final_stats=1 "corpus_$t" > "fuzz_$t.log" 2>&1); then
		echo "ok fuzz_$t ($(grep -o 'Done [0-9]* runs' "$out/fuzz_$t.log"))"
		passed=$((passed + 1))
	else
		echo "not ok fuzz_$t: finding or crash, see $out/fuzz_$t.log"
		tail -30 "$out/fuzz_$t.log"
		failed=$((failed + 1))
	fi
done
echo "$passed $failed 0" > "$results/fuzz.count"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
