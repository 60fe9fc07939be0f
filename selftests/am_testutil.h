/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * am_testutil.h - the 64-bit mixers, the PRNG and the value makers that the
 * selftests (userspace and the kernel module) and the benchmarks (C, C++
 * and the kernel bench module) share, so that each exists once.
 *
 *   am_tu_xmxmx()      xorshift-multiply finaliser with given constants:
 *   am_tu_fmix64()       MurmurHash3's fmix64 (kernel tests, bench_keys.h)
 *   am_tu_mix64()        the user benchmarks' key scatterer (bench/maps.h)
 *   am_tu_weyl()       splitmix64-style stream: a golden-ratio Weyl step
 *                      through am_tu_mix64()
 *   am_tu_xorshift64() xorshift64 (13, 7, 17): cheap, reproducible per seed
 *                      (not 0)
 *   am_tu_val()        the value stored for key k in the functional tests
 *   am_tu_rd64()       an unaligned u64 load, am_tu_wr64() the store
 *
 * Every mixer is a bijection of 64-bit integers: distinct inputs give
 * distinct outputs.  The benchmarks' keys come from these functions, so
 * changing one changes what a benchmark measures: keep them bit-exact.
 *
 * Freestanding: only a 64-bit unsigned type, the kernel's u64 or
 * <stdint.h>'s uint64_t (the same type as anchormap_types.h's u64), so it
 * builds as kernel C, userspace C and C++.
 */
#ifndef _AM_TESTUTIL_H
#define _AM_TESTUTIL_H

#ifdef __KERNEL__
#include <linux/types.h>
typedef u64 am_tu_u64;
#else
#include <stdint.h>
typedef uint64_t am_tu_u64;
#endif

/* 2^64 / golden ratio, odd: the Weyl step of splitmix64 and Fibonacci hashing */
#define AM_TU_GOLDEN	0x9e3779b97f4a7c15ULL

static inline am_tu_u64 am_tu_xmxmx(am_tu_u64 x, unsigned int s1, am_tu_u64 m1,
				    unsigned int s2, am_tu_u64 m2, unsigned int s3)
{
	x ^= x >> s1;
	x *= m1;
	x ^= x >> s2;
	x *= m2;
	x ^= x >> s3;
	return x;
}

static inline am_tu_u64 am_tu_fmix64(am_tu_u64 x)
{
	return am_tu_xmxmx(x, 33, 0xff51afd7ed558ccdULL, 33, 0xc4ceb9fe1a85ec53ULL, 33);
}

static inline am_tu_u64 am_tu_mix64(am_tu_u64 x)
{
	return am_tu_xmxmx(x, 31, 0x7fb5d329728ea185ULL, 27, 0x81dadef4bc2dd44dULL, 33);
}

static inline am_tu_u64 am_tu_weyl(am_tu_u64 *state)
{
	*state += AM_TU_GOLDEN;
	return am_tu_mix64(*state);
}

static inline am_tu_u64 am_tu_xorshift64(am_tu_u64 *state)
{
	am_tu_u64 x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

static inline am_tu_u64 am_tu_val(am_tu_u64 k)
{
	return (k * AM_TU_GOLDEN) ^ 0x5bd1e9955bd1e995ULL;
}

/* Through memcpy: not every value the tests read is 8-aligned. */
static inline am_tu_u64 am_tu_rd64(const void *p)
{
	am_tu_u64 v;

	__builtin_memcpy(&v, p, sizeof(v));
	return v;
}

static inline void am_tu_wr64(void *p, am_tu_u64 v)
{
	__builtin_memcpy(p, &v, sizeof(v));
}

#endif /* _AM_TESTUTIL_H */
