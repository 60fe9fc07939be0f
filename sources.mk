# SPDX-License-Identifier: GPL-2.0 OR MIT
#
# The core's files, listed once.  Read by the Makefile (library, tests,
# make install, make print-core), kernel/kernel.mk (the kernel mirror),
# Kbuild (anchormap.ko, also under DKMS), debian/rules (the DKMS source),
# and through `make print-core` by selftests/fuzz/run.sh and scripts/lint.sh.
#
#   AM_CORE_SRC     the freestanding core; the hot paths (lookup, insert,
#                   remove, rebuild) are all in anchormap.c
#   AM_PUBLIC_HDR   what a client's #include "anchormap.h" reads: installed
#   AM_CORE_HDR     every header of the core, AM_PUBLIC_HDR included

AM_CORE_SRC	:= anchormap.c anchormap_snapshot.c anchormap_siphash.c
AM_PUBLIC_HDR	:= anchormap.h anchormap_types.h anchormap_inline.h
AM_CORE_HDR	:= $(AM_PUBLIC_HDR) anchormap_internal.h
