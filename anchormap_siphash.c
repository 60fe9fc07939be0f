// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * SipHash-2-4 (Aumasson and Bernstein), for maps whose keys come from
 * untrusted sources: anchormap_siphash24() with a full 128-bit key, and
 * anchormap_hash_siphash(), a params.hash keyed from the map's seed.
 * Checked against the reference vectors by the selftests.
 */
#include "anchormap.h"
#include "anchormap_deps.h"

static __always_inline u64 am_rotl(u64 x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static __always_inline void am_sip_round(u64 v[4])
{
	v[0] += v[1];
	v[1] = am_rotl(v[1], 13) ^ v[0];
	v[0] = am_rotl(v[0], 32);
	v[2] += v[3];
	v[3] = am_rotl(v[3], 16) ^ v[2];
	v[0] += v[3];
	v[3] = am_rotl(v[3], 21) ^ v[0];
	v[2] += v[1];
	v[1] = am_rotl(v[1], 17) ^ v[2];
	v[2] = am_rotl(v[2], 32);
}

static u64 am_le64(const u8 *p)
{
	u64 v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* SipHash-2-4 (Aumasson and Bernstein): 2 rounds per word, 4 to finish. */
u64 anchormap_siphash24(const void *data, size_t len, u64 k0, u64 k1)
{
	const u8 *p = data;
	u64 v[4] = {
		k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL,
		k0 ^ 0x6c7967656e657261ULL, k1 ^ 0x7465646279746573ULL,
	};
	u64 m, last = (u64)len << 56;
	size_t left = len, i;

	for (; left >= 8; p += 8, left -= 8) {
		m = am_le64(p);
		v[3] ^= m;
		am_sip_round(v);
		am_sip_round(v);
		v[0] ^= m;
	}
	for (i = 0; i < left; i++)
		last |= (u64)p[i] << (8 * i);
	v[3] ^= last;
	am_sip_round(v);
	am_sip_round(v);
	v[0] ^= last;
	v[2] ^= 0xff;
	for (i = 0; i < 4; i++)
		am_sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}
AMP_EXPORT(anchormap_siphash24);

u64 anchormap_hash_siphash(const void *key, u32 key_size, u64 seed)
{
	return anchormap_siphash24(key, key_size, seed,
				   __anchormap_fold_mul(seed ^ __ANCHORMAP_K2, __ANCHORMAP_K3));
}
AMP_EXPORT(anchormap_hash_siphash);
