#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR MIT
#
# pkg_test.sh BUILD_DIR - the Debian packages as a user gets them:
#
#   1. dpkg-buildpackage -us -uc -b in a copy of the tracked files under
#      BUILD_DIR/pkg: anchormap-dkms, libanchormap0, libanchormap-dev;
#   2. dpkg -i the three: DKMS builds anchormap.ko for every installed
#      kernel with headers (checked for each) and keeps its Module.symvers;
#   3. for each kernel to boot (KVER, or every one with headers and a /boot
#      image, e.g. Debian's 6.1 linux-image-amd64): the example client
#      module (examples/kernel_registry) built W=1 with the installed header
#      and Module.symvers only, then the DKMS-built anchormap.ko and that
#      client booted under QEMU (selftests/qemu/run.sh demo);
#   4. the example program (examples/user_example.c) with the installed
#      pkg-config file and library only (selftests/pkgconfig_test.sh);
#   6. dpkg --purge the three, and nothing of them left on the system.
#
# Installs and removes system packages: run as root (make check-pkg).
# Writes "P F 0" to BUILD_DIR/results/pkg.count (and pkg-user.count).

set -u

build=${1:?usage: pkg_test.sh BUILD_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$build/results"
build=$(cd "$build" && pwd)
work=$build/pkg
results=$build/results
passed=0
failed=0
pkgs=(anchormap-dkms libanchormap0 libanchormap-dev)
version=$(cd "$root" && dpkg-parsechangelog -S Version)
# the kernels to boot: KVER, or every one with headers and a /boot image
if [ -n "${KVER:-}" ]; then
	boot=("$KVER")
else
	boot=()
	for b in /lib/modules/*/build; do
		k=$(basename "$(dirname "$b")")
		[ -e "$b/Makefile" ] && [ -r "/boot/vmlinuz-$k" ] && boot+=("$k")
	done
fi
arch=$(uname -m)
usrc=/usr/src/anchormap-$version
symvers_of() { echo "/var/lib/dkms/anchormap/$version/$1/$arch/Module.symvers"; }

ok() { echo "ok $1"; passed=$((passed + 1)); }
notok() { echo "not ok $1${2:+ # $2}"; failed=$((failed + 1)); }
finish() {
	echo "$passed $failed 0" > "$results/pkg.count"
	echo "# [pkg] $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit
}
purge() {
	dpkg --purge "${pkgs[@]}" > "$work/purge.log" 2>&1
}

if [ "$(id -u)" -ne 0 ]; then
	notok pkg_root "installs packages: run as root"
	finish
fi
if [ ${#boot[@]} -eq 0 ] || [ ! -e "/lib/modules/${boot[0]}/build/Makefile" ]; then
	notok pkg_kernel "no kernel with headers and a /boot image (bash scripts/install-deps.sh kernel)"
	finish
fi
echo "# kernels booted: ${boot[*]}"

# ---- 1. build ----
rm -rf "$work"
src=$work/anchormap-$version
mkdir -p "$src"
(cd "$root" && git ls-files -z | xargs -0 tar -cf - --no-recursion) | tar -xf - -C "$src" ||
	{ notok pkg_build "cannot copy the tracked files"; finish; }
if (cd "$src" && dpkg-buildpackage -us -uc -b) > "$work/build.log" 2>&1; then
	debs=()
	for p in "${pkgs[@]}"; do
		d=$(ls "$work"/"${p}"_"${version}"_*.deb 2>/dev/null | head -n 1)
		[ -n "$d" ] && debs+=("$d")
	done
	if [ ${#debs[@]} -eq 3 ]; then
		ok pkg_build
	else
		notok pkg_build "dpkg-buildpackage made ${#debs[@]} of the 3 packages"
		finish
	fi
else
	tail -n 30 "$work/build.log"
	notok pkg_build "dpkg-buildpackage failed (see $work/build.log)"
	finish
fi
for d in "${debs[@]}"; do
	echo "# $(basename "$d"): $(dpkg-deb -c "$d" | grep -c '^-') files"
done

# ---- 2. install; DKMS builds the module ----
purge
if dpkg -i "${debs[@]}" > "$work/install.log" 2>&1; then
	ok pkg_install
else
	tail -n 30 "$work/install.log"
	notok pkg_install "dpkg -i failed (see $work/install.log)"
	purge
	finish
fi
trap purge EXIT

bad=0
for b in /lib/modules/*/build; do
	[ -e "$b/Makefile" ] || continue
	k=$(basename "$(dirname "$b")")
	st=$(dkms status "anchormap/$version" -k "$k" 2>&1)
	echo "# dkms: $st"
	if ! grep -q ': installed' <<< "$st" || [ ! -r "$(symvers_of "$k")" ]; then
		echo "# no installed module or no $(symvers_of "$k") for $k"
		bad=$((bad + 1))
	fi
done
for k in "${boot[@]}"; do
	[ -n "$(find "/lib/modules/$k/updates/dkms" -name 'anchormap.ko*' 2>/dev/null)" ] ||
		{ echo "# no anchormap.ko in /lib/modules/$k/updates/dkms"; bad=$((bad + 1)); }
done
if [ "$bad" -eq 0 ]; then ok pkg_dkms_build; else notok pkg_dkms_build "$bad problem(s)"; fi

# ---- 3. and 5. per bootable kernel: a client module from the installed
# files only, then the DKMS-built anchormap.ko with it under QEMU ----
client_and_boot() {
	local k=$1 ko client=$work/client-$1 kmod=$work/qemu-kmod-$1
	mkdir -p "$client" "$kmod/examples/kernel_registry"
	cp "$root/examples/kernel_registry/registry_demo.c" "$client/"
	printf 'obj-m += registry_demo.o\nccflags-y += -I%s\n' "$usrc" > "$client/Kbuild"
	if make -C "/lib/modules/$k/build" M="$client" W=1 \
		KBUILD_EXTRA_SYMBOLS="$(symvers_of "$k")" modules > "$client/build.log" 2>&1 &&
		! grep -Eiq 'warning|error:' "$client/build.log" && [ -r "$client/registry_demo.ko" ]; then
		ok "pkg_client_module_$k"
	else
		cat "$client/build.log"
		notok "pkg_client_module_$k" "does not build clean against $usrc and $(symvers_of "$k")"
		return
	fi
	ko=$(find "/lib/modules/$k/updates/dkms" -name 'anchormap.ko*' 2>/dev/null | head -n 1)
	case $ko in
	*.ko.xz) xz -dc "$ko" > "$kmod/anchormap.ko" ;;
	*.ko.gz) gzip -dc "$ko" > "$kmod/anchormap.ko" ;;
	*.ko.zst) zstd -qdc "$ko" > "$kmod/anchormap.ko" ;;
	*) cp "$ko" "$kmod/anchormap.ko" ;;
	esac
	cp "$client/registry_demo.ko" "$kmod/examples/kernel_registry/"
	if KVER=$k QEMU_KMOD=$kmod QEMU_NAME=pkg-$k bash "$root/selftests/qemu/run.sh" demo; then
		ok "pkg_qemu_demo_$k"
	else
		notok "pkg_qemu_demo_$k"
	fi
}
for k in "${boot[@]}"; do
	client_and_boot "$k"
done

# ---- 4. the userspace example, from the installed files only ----
if AM_PC_INSTALLED=pkg-user bash "$root/selftests/pkgconfig_test.sh" "$build"; then
	ok pkg_user_example
else
	notok pkg_user_example
fi

# ---- 6. purge, and nothing left ----
trap - EXIT
if purge; then ok pkg_purge; else cat "$work/purge.log"; notok pkg_purge; fi
left=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^[a-z][^n]' && left+=("package $p")
done
for f in /usr/src/anchormap-* /var/lib/dkms/anchormap /usr/include/anchormap*.h \
	 /usr/lib/libanchormap* /usr/lib/pkgconfig/anchormap.pc; do
	[ -e "$f" ] || [ -L "$f" ] && left+=("$f")
done
while read -r f; do left+=("$f"); done < <(find /lib/modules -name 'anchormap.ko*' 2>/dev/null)
if [ ${#left[@]} -eq 0 ]; then
	ok pkg_purge_leaves_nothing
else
	notok pkg_purge_leaves_nothing "left: ${left[*]}"
fi
finish
