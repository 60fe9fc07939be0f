#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR MIT
#
# kernel-image.sh [--headers] NAME - make one kernel of the test matrix
# usable and print "KVER KDIR IMAGE" on stdout: the release, a headers tree
# to build modules against, and the bzImage to boot under QEMU.  With
# --headers only the headers are needed and "KVER KDIR" is printed (what
# `make lint` runs sparse against).
#
#   NAME   6.1, 6.1-rt, 6.12 or 6.12-rt: Debian bookworm's linux-image-amd64,
#          linux-image-rt-amd64, linux-image-6.12-amd64, linux-image-6.12-rt-amd64.
#
# A release installed the usual way (/boot/vmlinuz-V and /lib/modules/V/build;
# with --headers, /lib/modules/V/build alone) is used as is.  Otherwise the
# headers and their -common headers, and then (without --headers) the image,
# are fetched with `apt-get download` and unpacked with `dpkg-deb -x` under
# build/kernels/V (kept there: a second run only checks the stamps
# .anchormap-headers and .anchormap-unpacked), without touching /boot or
# /lib/modules: the arch headers' one-line Makefile is pointed at the
# unpacked common tree, and usr/lib/linux-kbuild-* (whose scripts/ and
# tools/ the headers link to) at the installed linux-kbuild.  The tools the
# headers depend on (linux-kbuild, the compiler) are installed with apt-get
# when missing.
set -euo pipefail

headers=
if [ "${1:-}" = --headers ]; then
	headers=1
	shift
fi
name=${1:?usage: kernel-image.sh [--headers] 6.1|6.1-rt|6.12|6.12-rt}
root=$(cd "$(dirname "$0")/.." && pwd)
say() { echo "kernel-image: $*" >&2; }
die() { say "$*"; exit 1; }

case $name in
6.1) meta=amd64 ;;
6.1-rt) meta=rt-amd64 ;;
6.12) meta=6.12-amd64 ;;
6.12-rt) meta=6.12-rt-amd64 ;;
*) die "unknown kernel '$name'" ;;
esac

SUDO=
[ "$(id -u)" -ne 0 ] && SUDO=sudo
# the versioned image package the metapackage depends on
dep() { apt-cache depends "$1" 2>/dev/null | sed -n 's/^ *|\{0,1\}Depends: \(linux-[a-z]*-[0-9].*\)$/\1/p' | head -n 1; }
img_pkg=$(dep "linux-image-$meta")
if [ -z "$img_pkg" ]; then
	$SUDO apt-get -o DPkg::Lock::Timeout=900 update -qq >&2
	img_pkg=$(dep "linux-image-$meta")
fi
[ -n "$img_pkg" ] || die "no package behind linux-image-$meta"
kver=${img_pkg#linux-image-}
kver=${kver%-unsigned}

if [ -n "$headers" ] && [ -e "/lib/modules/$kver/build/Makefile" ]; then
	echo "$kver /lib/modules/$kver/build"
	exit 0
fi
if [ -r "/boot/vmlinuz-$kver" ] && [ -e "/lib/modules/$kver/build/Makefile" ]; then
	echo "$kver /lib/modules/$kver/build /boot/vmlinuz-$kver"
	exit 0
fi

top=$root/build/kernels/$kver
kdir=$top/root/usr/src/linux-headers-$kver
image=$top/root/boot/vmlinuz-$kver

# unpack PKG...: `apt-get download` the packages and unpack them into $top/root
unpack() {
	rm -rf "$top/debs"
	mkdir -p "$top/debs"
	(cd "$top/debs" && apt-get download "$@" >&2) || die "apt-get download $* failed"
	for deb in "$top"/debs/*.deb; do
		dpkg-deb -x "$deb" "$top/root" || die "cannot unpack $deb"
	done
	rm -rf "$top/debs"
}

# ---- the headers (a tree from before the stamps were split has both) ----
if [ ! -e "$top/.anchormap-headers" ] && [ ! -e "$top/.anchormap-unpacked" ]; then
	hdr_pkg=linux-headers-$kver
	deps=$(apt-cache depends "$hdr_pkg" 2>/dev/null) || true
	common=$(sed -n 's/^ *Depends: \(linux-headers-.*-common.*\)$/\1/p' <<< "$deps" | head -n 1)
	kbuild=$(sed -n 's/^ *Depends: \(linux-kbuild-.*\)$/\1/p' <<< "$deps" | head -n 1)
	[ -n "$common" ] && [ -n "$kbuild" ] || die "cannot resolve the headers of $kver"
	# the kbuild tools and the compiler the headers need, installed normally
	tools=$(sed -n 's/^ *Depends: \(linux-kbuild-.*\|linux-compiler-.*\|gcc-[0-9]*\)$/\1/p' <<< "$deps")
	missing=()
	for p in $tools; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		say "installing ${missing[*]}"
		bash "$root/scripts/install-deps.sh" "${missing[@]}" || die "cannot install ${missing[*]}"
	fi
	say "fetching $hdr_pkg $common into $top"
	rm -rf "$top"
	mkdir -p "$top"
	unpack "$hdr_pkg" "$common"
	cdir=$top/root/usr/src/$common
	[ -e "$kdir/Makefile" ] && [ -d "$cdir" ] || die "unexpected layout in $top/root/usr/src"
	# the arch Makefile includes the common tree by its absolute /usr/src path
	sed -i "s|/usr/src/$common|$cdir|g" "$kdir/Makefile"
	grep -q "$cdir" "$kdir/Makefile" || die "cannot point $kdir/Makefile at $cdir"
	# scripts/ and tools/ are relative links into usr/lib/linux-kbuild-*
	mkdir -p "$top/root/usr/lib"
	for kb in /usr/lib/linux-kbuild-*; do
		[ -e "$top/root/usr/lib/$(basename "$kb")" ] || ln -s "$kb" "$top/root/usr/lib/$(basename "$kb")"
	done
	touch "$top/.anchormap-headers"
fi
[ -e "$kdir/Makefile" ] || die "$top has no headers"
if [ -n "$headers" ]; then
	echo "$kver $kdir"
	exit 0
fi

# ---- the image ----
if [ ! -e "$top/.anchormap-unpacked" ]; then
	say "fetching $img_pkg into $top"
	unpack "$img_pkg"
	touch "$top/.anchormap-unpacked"
fi
[ -r "$image" ] || die "$top has no image"
echo "$kver $kdir $image"
