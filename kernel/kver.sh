#!/bin/sh
# SPDX-License-Identifier: GPL-2.0 OR MIT
#
# Print the kernel release that modules are built against: the running
# one (`uname -r`) when its headers are installed, else the newest installed
# one with both headers (/lib/modules/V/build) and an image (/boot/vmlinuz-V),
# which QEMU can boot.  Prints nothing when there is none.
#   kver.sh boot   only the latter (what selftests/qemu/run.sh boots)
r=$(uname -r)
if [ "${1:-}" != boot ] && [ -e "/lib/modules/$r/build/Makefile" ]; then
	echo "$r"
	exit 0
fi
for d in /lib/modules/*/build; do
	[ -e "$d/Makefile" ] || continue
	v=${d#/lib/modules/}
	v=${v%/build}
	[ -e "/boot/vmlinuz-$v" ] && echo "$v"
done | sort -V | tail -n 1
