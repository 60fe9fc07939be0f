#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR MIT
#
# pkgconfig_test.sh BUILD_DIR - build examples/user_example.c the way a
# user would, with nothing but "pkg-config --cflags --libs anchormap"
# pointed at BUILD_DIR/anchormap.pc, once against the shared library and
# once against the static one (-Wall -Wextra -Werror: the header must build
# clean under what users turn on), run both and check what they print.
# Writes "P F 0" to BUILD_DIR/results/pkgconfig.count.
#
# With AM_PC_INSTALLED=NAME it tests the installed library instead (the
# system's pkg-config path and loader, as after installing libanchormap-dev)
# and writes BUILD_DIR/results/NAME.count (selftests/pkg_test.sh does).

set -u

build=${1:?usage: pkgconfig_test.sh BUILD_DIR}
build=$(cd "$build" && pwd)
src="$(cd "$(dirname "$0")/.." && pwd)/examples/user_example.c"
results="$build/results"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$results"
passed=0
failed=0
CC=${CC:-cc}

installed=${AM_PC_INSTALLED:-}
count_name=${installed:-pkgconfig}
[ -n "$installed" ] || export PKG_CONFIG_PATH="$build"

# The lines the example must print, in order.
expected=(
	"Oslo: 709000 people, founded 1040"
	"after growth: 5003 entries, Oslo still 709000 at the same address: yes"
	"visited 5003 entries"
	"removed Oslo: 1, present now: no, held pointer reads 709000"
	"done"
)

check_output() {
	local out=$1 line
	for line in "${expected[@]}"; do
		if ! grep -qxF "$line" "$out"; then
			echo "# missing line: $line"
			return 1
		fi
	done
	# three named cities are visited, whatever the order
	[ "$(grep -c '^visit ' "$out")" -eq 3 ] || { echo "# expected 3 visit lines"; return 1; }
}

# run_case NAME LINK_FLAGS...: build, run, check; prints a TAP-like line.
run_case() {
	local name=$1 exe="$work/$1"
	shift
	if ! pkg-config --exists anchormap; then
		echo "not ok pkgconfig_$name # pkg-config cannot find anchormap.pc${installed:- in $build}"
		failed=$((failed + 1))
		return
	fi
	# shellcheck disable=SC2046 # pkg-config output is meant to be split
	if ! $CC -std=gnu11 -Wall -Wextra -Werror $(pkg-config --cflags anchormap) "${case_src:-$src}" \
		"$@" -o "$exe" > "$work/cc.log" 2>&1; then
		cat "$work/cc.log"
		echo "not ok pkgconfig_$name # does not build"
		failed=$((failed + 1))
		return
	fi
	if ! LD_LIBRARY_PATH="$work/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
		timeout 60 "$exe" > "$work/out" 2>&1; then
		sed 's/^/# /' "$work/out"
		echo "not ok pkgconfig_$name # exits non-zero"
		failed=$((failed + 1))
		return
	fi
	sed 's/^/# /' "$work/out"
	if check_output "$work/out"; then
		echo "ok pkgconfig_$name"
		passed=$((passed + 1))
	else
		echo "not ok pkgconfig_$name # unexpected output"
		failed=$((failed + 1))
	fi
}

# The build tree has libanchormap.so but its soname is libanchormap.so.0
# (what "make install" links): give the loader that name.
mkdir -p "$work/lib"
[ -n "$installed" ] || ln -sf "$build/libanchormap.so" "$work/lib/libanchormap.so.0"

# shellcheck disable=SC2046
run_case shared $(pkg-config --libs anchormap)
# Same flags, but make the linker take the archive for -lanchormap.
# shellcheck disable=SC2046
run_case static $(pkg-config --libs anchormap | sed 's/-lanchormap/-Wl,-Bstatic -lanchormap -Wl,-Bdynamic/')

# A client with its own u8..u64 (here u64 is unsigned long long, not
# uint64_t's unsigned long) opts out of anchormap.h's typedefs.
cat > "$work/own_types.c" <<EOF
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
#define ANCHORMAP_NO_KERNEL_TYPES
#include "$src"
EOF
# shellcheck disable=SC2046
case_src="$work/own_types.c" run_case own_types $(pkg-config --libs anchormap)

echo "$passed $failed 0" > "$results/$count_name.count"
echo "# [$count_name] $passed passed, $failed failed"
[ "$failed" -eq 0 ]
