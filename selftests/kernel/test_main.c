// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * test_anchormap.ko is test_anchormap.c and test_abi_client.c; Kbuild cannot
 * build test_anchormap.o from test_anchormap.c into a module of that name,
 * so the module links this file instead.
 */
#include "test_anchormap.c"
