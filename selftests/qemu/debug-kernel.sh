#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR MIT
#
# debug-kernel.sh FLAVOUR - build (or reuse) a debug kernel for the
# debug-kernel lane and print its build directory (a KDIR for out-of-tree
# modules, with arch/x86/boot/bzImage and Module.symvers) on stdout.
#
#   FLAVOUR   kasan (KASAN + lockdep + sleep-in-atomic) or kcsan (KCSAN):
#             selftests/qemu/configs/FLAVOUR.config on top of base.config.
#
# The kernel is `make tinyconfig` of the Debian kernel source package
# (linux-source-6.1, untarred once under build/dkernel/src-VERSION), the two
# fragments merged in, `make olddefconfig`, and a full `make` (vmlinux,
# bzImage, modules_prepare, Module.symvers), built out of tree in
# build/dkernel/FLAVOUR-KEY.  KEY hashes the source package version, the
# compiler, both fragments and this script, so a second run reuses the
# kernel and any change to them builds a new one (the old one is removed).
# Every option the fragments set is checked in the final .config: an
# option that olddefconfig dropped (a missing dependency) is an error.
#
# Environment: DEBUG_KERNEL_JOBS (make -j, default 2).
set -euo pipefail

flavour=${1:?usage: debug-kernel.sh kasan|kcsan}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
configs=$here/configs
base=$configs/base.config
frag=$configs/$flavour.config
top=$root/build/dkernel
jobs=${DEBUG_KERNEL_JOBS:-2}
srcpkg=linux-source-6.1
tarball=/usr/src/$srcpkg.tar.xz

say() { echo "debug-kernel: $*" >&2; }
die() { say "$*"; exit 1; }

[ -r "$base" ] && [ -r "$frag" ] || die "no fragment $frag (or $base)"

# ---- the packages a kernel build needs, installed only when missing ----
bash "$root/scripts/install-deps.sh" debug >&2 || die "cannot install the kernel build packages"
[ -r "$tarball" ] || die "$tarball missing (apt-get install $srcpkg)"

version=$(dpkg-query -W -f='${Version}' "$srcpkg")
key=$( {
	echo "$srcpkg $version"
	gcc --version | head -n 1
	cat "$base" "$frag" "$0"
} | sha256sum | cut -c1-16)
out=$top/$flavour-$key
src=$top/src-$version

reuse() {
	if [ -e "$out/.anchormap-built" ]; then
		say "$flavour: reusing $out"
		echo "$out"
		exit 0
	fi
}
reuse
mkdir -p "$top"
# one build at a time (two runs of the lane, or of both flavours, would
# race on the shared source tree and on each other's directories)
exec 9>"$top/.lock"
flock 9
reuse	# built by whoever held the lock before us

# ---- the source, once per source package version ----
if [ ! -e "$src/.anchormap-untarred" ]; then
	say "untarring $tarball ($version)"
	rm -rf "$top"/src-*
	mkdir -p "$src"
	tar -xf "$tarball" -C "$src" --strip-components=1
	touch "$src/.anchormap-untarred"
fi

# ---- configure ----
say "$flavour: building $version in $out (make -j$jobs, a few minutes)"
start=$(date +%s)
rm -rf "$out"
mkdir -p "$out"
log=$out/build.log
kmake() { make -C "$src" O="$out" -j"$jobs" "$@" >>"$log" 2>&1; }
kmake tinyconfig || die "tinyconfig failed (see $log)"
bash "$src/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "$base" "$frag" \
	>>"$log" 2>&1 || die "merge_config failed (see $log)"
kmake olddefconfig || die "olddefconfig failed (see $log)"

# every line of the fragments must be in the final .config as written
bad=0
while IFS= read -r line; do
	case $line in
	CONFIG_*=*)
		opt=${line%%=*}
		grep -qxF "$line" "$out/.config" && continue ;;
	"# CONFIG_"*" is not set")
		opt=${line#\# }
		opt=${opt%% *}
		grep -q "^$opt=" "$out/.config" || continue ;;
	*) continue ;;
	esac
	now=$(grep -E "^$opt=|^# $opt is not set" "$out/.config" || echo "absent: a dependency is off")
	say "$flavour: '$line' did not survive olddefconfig (now: $now)"
	bad=1
done < <(cat "$base" "$frag" | sed 's/[[:space:]]*$//')
[ $bad -eq 0 ] || die "$flavour: fix the fragments (a dependency is missing); .config in $out"

# ---- build: vmlinux, bzImage, modules (Module.symvers), modules_prepare ----
kmake all || { tail -n 40 "$log" >&2; die "$flavour: kernel build failed (see $log)"; }
kmake modules_prepare || die "$flavour: modules_prepare failed (see $log)"
for f in vmlinux arch/x86/boot/bzImage Module.symvers scripts/module.lds include/config/kernel.release; do
	[ -e "$out/$f" ] || die "$flavour: the build left no $f (see $log)"
done
# keep only this key's kernel of this flavour
for old in "$top/$flavour"-*; do
	[ "$old" != "$out" ] && [ -d "$old" ] && rm -rf "$old"
done
touch "$out/.anchormap-built"
say "$flavour: built $(cat "$out/include/config/kernel.release") in $(($(date +%s) - start)) s"
echo "$out"
