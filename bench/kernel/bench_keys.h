/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * bench_keys.h - the key set shared by bench_anchormap.ko (kernel) and
 * user_loops.c (userspace, under callgrind), so that both run the same
 * loops over the same keys in the same order.
 *
 *   bk_key(i)        a bijection of u64: distinct i give distinct keys.
 *                    Keys 0..n-1 are inserted (hits), n..2n-1 are never
 *                    inserted (misses), 2n.. belong to the concurrent writer.
 *   bk_shuffle()     Fisher-Yates with a fixed-seed xorshift generator: the
 *                    order lookups and removals visit the keys.
 *
 * The mixer and the generator are selftests/am_testutil.h's.  Needs u32/u64
 * (linux/types.h or anchormap.h).
 */
#ifndef _BENCH_KEYS_H
#define _BENCH_KEYS_H

#include "selftests/am_testutil.h"

static inline u64 bk_key(u64 i)
{
	return am_tu_fmix64(i + AM_TU_GOLDEN);
}

/* perm[0..n) = a permutation of 0..n-1, the same for a given @seed */
static inline void bk_shuffle(u32 *perm, u32 n, u64 seed)
{
	u64 s = seed | 1;
	u32 i, j, t;

	for (i = 0; i < n; i++)
		perm[i] = i;
	for (i = n; i > 1; i--) {
		j = (u32)(am_tu_xorshift64(&s) % i);
		t = perm[i - 1];
		perm[i - 1] = perm[j];
		perm[j] = t;
	}
}

#define BK_SEED_LOOKUP	0x1234567ULL
#define BK_SEED_REMOVE	0x7654321ULL

#endif /* _BENCH_KEYS_H */
