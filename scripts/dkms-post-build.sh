#!/bin/sh
# SPDX-License-Identifier: GPL-2.0 OR MIT
#
# dkms-post-build.sh DIR - DKMS's POST_BUILD (dkms.conf): run in the build
# tree right after anchormap.ko was built for one kernel, keep that build's
# Module.symvers in DIR (DKMS's per-kernel directory, removed again by
# `dkms remove`), where client modules find it as KBUILD_EXTRA_SYMBOLS.
set -e
cp Module.symvers "${1:?usage: dkms-post-build.sh DIR}/Module.symvers"
