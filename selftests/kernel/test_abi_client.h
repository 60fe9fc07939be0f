/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* test_abi_client.c: a client built against another ANCHORMAP_ABI_VERSION. */
#ifndef _TEST_ABI_CLIENT_H
#define _TEST_ABI_CLIENT_H

struct anchormap;

/* Would that client's anchormap_get_fast() take its inline path on @map? */
bool kt_abi_other_inline_ok(const struct anchormap *map);
/* That client's anchormap_get_fast() of a u64 key in a u64 -> u64 map. */
const void *kt_abi_other_get_fast(const struct anchormap *map, u64 key);

#endif /* _TEST_ABI_CLIENT_H */
