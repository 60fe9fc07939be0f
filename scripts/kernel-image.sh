#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR MIT
#
# kernel-image.sh NAME - make one kernel of the test matrix usable and print
# "KVER KDIR IMAGE" on stdout: the release, a headers tree to build modules
# against, and the bzImage to boot under QEMU.
#
#   NAME   6.1, 6.1-rt, 6.12 or 6.12-rt: Debian bookworm's linux-image-amd64,
#          linux-image-rt-amd64, linux-image-6.12-amd64, linux-image-6.12-rt-amd64.
#
# A release installed the usual way (/boot/vmlinuz-V and /lib/modules/V/build)
# is used as is.  Otherwise the image, its headers and their -common headers
# are fetched with `apt-get download` and unpacked with `dpkg-deb -x` under
# build/kernels/V (kept there: a second run only checks the stamp), without
# touching /boot or /lib/modules: the arch headers' one-line Makefile is
# pointed at the unpacked common tree, and usr/lib/linux-kbuild-* (whose
# scripts/ and tools/ the headers link to) at the installed linux-kbuild,
# which is installed when missing.
set -euo pipefail

name=${1:?usage: kernel-image.sh 6.1|6.1-rt|6.12|6.12-rt}
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
	$SUDO apt-get update -qq >&2
	img_pkg=$(dep "linux-image-$meta")
fi
[ -n "$img_pkg" ] || die "no package behind linux-image-$meta"
kver=${img_pkg#linux-image-}
kver=${kver%-unsigned}

if [ -r "/boot/vmlinuz-$kver" ] && [ -e "/lib/modules/$kver/build/Makefile" ]; then
	echo "$kver /lib/modules/$kver/build /boot/vmlinuz-$kver"
	exit 0
fi

top=$root/build/kernels/$kver
if [ ! -e "$top/.anchormap-unpacked" ]; then
	hdr_pkg=linux-headers-$kver
	common=$(apt-cache depends "$hdr_pkg" | sed -n 's/^ *Depends: \(linux-headers-.*-common.*\)$/\1/p' | head -n 1)
	kbuild=$(apt-cache depends "$hdr_pkg" | sed -n 's/^ *Depends: \(linux-kbuild-.*\)$/\1/p' | head -n 1)
	[ -n "$common" ] && [ -n "$kbuild" ] || die "cannot resolve the headers of $kver"
	# the kbuild tools and the compiler the headers need, installed normally
	dpkg-query -W -f='${Status}' "$kbuild" 2>/dev/null | grep -q "install ok installed" || {
		say "installing $kbuild"
		DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$kbuild" >&2
	}
	say "fetching $img_pkg $hdr_pkg $common into $top"
	rm -rf "$top"
	mkdir -p "$top/debs"
	(cd "$top/debs" && apt-get download "$img_pkg" "$hdr_pkg" "$common" >&2) ||
		die "apt-get download failed"
	for deb in "$top"/debs/*.deb; do
		dpkg-deb -x "$deb" "$top/root"
	done
	hdir=$top/root/usr/src/linux-headers-$kver
	cdir=$top/root/usr/src/$(echo "$common" | sed 's/^linux-headers-/linux-headers-/')
	[ -e "$hdir/Makefile" ] && [ -d "$cdir" ] || die "unexpected layout in $top/root/usr/src"
	# the arch Makefile includes the common tree by its absolute /usr/src path
	sed -i "s|/usr/src/$common|$cdir|g" "$hdir/Makefile"
	grep -q "$cdir" "$hdir/Makefile" || die "cannot point $hdir/Makefile at $cdir"
	# scripts/ and tools/ are relative links into usr/lib/linux-kbuild-*
	mkdir -p "$top/root/usr/lib"
	for kb in /usr/lib/linux-kbuild-*; do
		[ -e "$top/root/usr/lib/$(basename "$kb")" ] || ln -s "$kb" "$top/root/usr/lib/$(basename "$kb")"
	done
	rm -rf "$top/debs"
	touch "$top/.anchormap-unpacked"
fi
image=$top/root/boot/vmlinuz-$kver
kdir=$top/root/usr/src/linux-headers-$kver
[ -r "$image" ] && [ -e "$kdir/Makefile" ] || die "$top has no image or headers"
echo "$kver $kdir $image"
