#!/bin/bash
# Install the Debian packages a target needs, only when something is missing.
#   install-deps.sh user     compiler, make, pkg-config, sanitizer runtimes
#   install-deps.sh kernel   headers, image, qemu, busybox, cpio, kmod, sparse
#   install-deps.sh debug    Debian's kernel source and what building it needs
#   install-deps.sh fuzz     clang with libFuzzer
#   install-deps.sh bench    the peer maps and gnuplot
#   install-deps.sh lint     the 6.12 tree (checkpatch, kernel-doc, coccinelle scripts), spatch
#   install-deps.sh pkg      what dpkg-buildpackage and DKMS need
#   install-deps.sh NAME     any other word: the Debian package of that name
#                            (kernel-image.sh's kbuild tools, valgrind)
set -e

pkgs_user="gcc make pkg-config libc6-dev libasan8 libubsan1 libtsan2"
pkgs_kernel="linux-headers-amd64 linux-image-amd64 qemu-system-x86 busybox-static cpio kmod sparse gzip"
pkgs_debug="linux-source-6.1 gcc make flex bison bc libelf-dev libssl-dev dwarves xz-utils python3"
pkgs_fuzz="clang libclang-rt-14-dev"
pkgs_lint="linux-source-6.12 coccinelle ocaml-nox python3 perl xz-utils make"
pkgs_pkg="dpkg-dev debhelper dh-dkms dkms fakeroot pkg-config"
pkgs_bench="g++ libabsl-dev libcuckoo-dev libck-dev liburcu-dev libdpdk-dev libtbb-dev gnuplot-nox valgrind"

missing=()
for group in "$@"; do
	list=$group
	if [[ $group =~ ^[a-z]+$ ]]; then
		var="pkgs_$group"
		list=${!var-$group}
	fi
	for p in $list; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
# wait for another apt (unattended-upgrades on a fresh machine, a second
# make) instead of failing on its lock
lock=(-o DPkg::Lock::Timeout=900)
$SUDO apt-get "${lock[@]}" update -qq
$SUDO apt-get "${lock[@]}" install -y -qq --no-install-recommends "${missing[@]}" >&2
