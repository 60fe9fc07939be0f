#!/bin/sh
# SPDX-License-Identifier: GPL-2.0 OR MIT
#
# Print the kernel release that modules are built against and booted under
# QEMU: the newest installed one with both headers (/lib/modules/V/build)
# and an image (/boot/vmlinuz-V).  Not `uname -r`: the host kernel need not
# be the distribution's.  Prints nothing when there is none.
for d in /lib/modules/*/build; do
	[ -e "$d/Makefile" ] || continue
	v=${d#/lib/modules/}
	v=${v%/build}
	[ -e "/boot/vmlinuz-$v" ] && echo "$v"
done | sort -V | tail -n 1
