// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The portable core, compiled as part of anchormap.ko.  Kbuild cannot build
 * anchormap.o from anchormap.c into a module that is itself named anchormap,
 * so the module links this file instead; "anchormap.c" is found through
 * -I$(src).
 */
#include "anchormap.c"
