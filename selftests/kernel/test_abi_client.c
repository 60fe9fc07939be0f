// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Part of test_anchormap.ko: a client compiled against another
 * ANCHORMAP_ABI_VERSION than the library, as a module built against an
 * older (or newer) anchormap.h would be.  Its anchormap_get_fast() must
 * fall back to the exported lookup (test_anchormap.c,
 * k_get_fast_of_a_client_built_for_another_abi_takes_the_exported_path).
 */
#include <linux/module.h>

#define __ANCHORMAP_CLIENT_ABI	(ANCHORMAP_ABI_VERSION + 1)
#include "anchormap.h"
#include "test_abi_client.h"

static const struct anchormap_params kt_abi_other_params = {
	.key_size = sizeof(u64), .value_size = sizeof(u64),
};

bool kt_abi_other_inline_ok(const struct anchormap *map)
{
	u64 key = 0;

	return __anchormap_fast_ok(map, &key, &kt_abi_other_params);
}

const void *kt_abi_other_get_fast(const struct anchormap *map, u64 key)
{
	return anchormap_get_fast(map, &key, kt_abi_other_params);
}
