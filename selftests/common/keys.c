// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * common/keys.c - keys and values: sets, big keys and values, alignment,
 * custom hash and equal, the hash functions.
 *
 * Part of the portable functional tests: common_tests.c includes it after
 * helpers.h (see there for the conventions).
 */

/* ---- sets, big keys and values, alignment ---- */

TEST(set_value_size_zero)
{
	struct anchormap_params p;
	struct anchormap_iter *it = am_test_alloc(sizeof(*it));
	struct anchormap *m;
	long n = 0, bad = 0;
	u64 k;

	ASSERT_NOT_NULL(it);
	am_t_params(&p, sizeof(u64), 0);
	m = am_t_new_params(&p, 0);
	ASSERT_NOT_NULL(m);
	for (k = 0; k < 500; k++)
		bad += anchormap_insert(m, &k, NULL) != 1;
	for (k = 0; k < 500; k++)
		bad += anchormap_insert(m, &k, NULL) != 0;
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(anchormap_len(m), 500);
	EXPECT_EQ(am_t_count_present(m, 0, 600), 500);
	k = 499;
	EXPECT_NOT_NULL(anchormap_get(m, &k));
	k = 500;
	EXPECT_NULL(anchormap_get(m, &k));
	anchormap_iter_init(it, m);
	while (anchormap_iter_next(it, NULL, NULL) && n < 1000)
		n++;
	EXPECT_EQ(n, 500);
	EXPECT_EQ(am_t_remove_step(m, 0, 500, 2), 0);
	EXPECT_EQ(am_t_count_present(m, 0, 500), 250);
	am_test_free(it);
	am_t_del(m);
}

#define AM_T_BIG_KEY	64
#define AM_T_BIG_VAL	256

/*
 * Deterministic filler: the entry number (so entries are distinct) with
 * every later byte depending on the entry and the offset.
 */
static void am_t_pattern(u8 *buf, u32 len, u64 i, u8 salt)
{
	u32 j;

	for (j = 0; j < len; j++)
		buf[j] = (u8)(i * 131 + j * 7 + salt);
	memcpy(buf, &i, sizeof(i));
}

struct am_t_big {
	u8 key[AM_T_BIG_KEY];
	u8 val[AM_T_BIG_VAL];
	u8 want[AM_T_BIG_VAL];
};

/*
 * Inserts n big entries into a map with @align, then checks each value's
 * alignment and bytes.  Returns the number of bad entries, or < 0.
 */
static long am_t_big_roundtrip(u32 align, u64 n)
{
	struct am_t_big *b = am_test_alloc(sizeof(*b));
	struct anchormap_params p;
	struct anchormap *m;
	long bad = 0;
	u64 i;

	if (!b)
		return -ENOMEM;
	am_t_params(&p, AM_T_BIG_KEY, AM_T_BIG_VAL);
	p.value_align = align;
	m = am_t_new_params(&p, 0);
	if (!m) {
		am_test_free(b);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		am_t_pattern(b->key, AM_T_BIG_KEY, i, 1);
		am_t_pattern(b->val, AM_T_BIG_VAL, i, 2);
		bad += anchormap_insert(m, b->key, b->val) != 1;
	}
	for (i = 0; i < n; i++) {
		const void *v, *kp;

		am_t_pattern(b->key, AM_T_BIG_KEY, i, 1);
		am_t_pattern(b->want, AM_T_BIG_VAL, i, 2);
		kp = anchormap_get_key_value(m, b->key, &v);
		bad += !kp || !v || ((uintptr_t)v & (align - 1)) ||
		       memcmp(v, b->want, AM_T_BIG_VAL) ||
		       memcmp(kp, b->key, AM_T_BIG_KEY);
	}
	bad += anchormap_len(m) != n;
	am_t_del(m);
	am_test_free(b);
	return bad;
}

TEST(big_key_value_align16)
{
	EXPECT_EQ(am_t_big_roundtrip(16, 400), 0);
}

TEST(big_key_value_align64)
{
	EXPECT_EQ(am_t_big_roundtrip(64, 400), 0);
}

TEST(big_key_value_align4096)
{
	EXPECT_EQ(am_t_big_roundtrip(4096, 40), 0);
}

/* Inserts @n entries with @vsize-byte values; counts misaligned values. */
static long am_t_misaligned(u32 vsize, u32 align, u32 want_align, u64 n)
{
	struct anchormap_params p;
	struct anchormap *m;
	long bad = 0;
	u64 k;

	am_t_params(&p, sizeof(u64), vsize);
	p.value_align = align;
	m = am_t_new_params(&p, 0);
	if (!m)
		return -ENOMEM;
	for (k = 0; k < n; k++) {
		const void *v;

		if (anchormap_insert(m, &k, NULL) != 1)
			bad++;
		v = anchormap_get(m, &k);
		bad += !v || ((uintptr_t)v & (want_align - 1));
	}
	am_t_del(m);
	return bad;
}

TEST(natural_value_alignment)
{
	EXPECT_EQ(am_t_misaligned(1, 0, 1, 100), 0);
	EXPECT_EQ(am_t_misaligned(2, 0, 2, 100), 0);
	EXPECT_EQ(am_t_misaligned(6, 0, 2, 100), 0);
	EXPECT_EQ(am_t_misaligned(12, 0, 4, 100), 0);
	EXPECT_EQ(am_t_misaligned(8, 0, 8, 100), 0);
	EXPECT_EQ(am_t_misaligned(24, 0, 8, 100), 0);
	EXPECT_EQ(am_t_misaligned(32, 0, 16, 100), 0);
	EXPECT_EQ(am_t_misaligned(48, 0, 16, 100), 0);
}

TEST(explicit_value_alignment_small_value)
{
	EXPECT_EQ(am_t_misaligned(4, 32, 32, 200), 0);
	EXPECT_EQ(am_t_misaligned(1, 128, 128, 200), 0);
}

/* ---- custom hash and equal ---- */

TEST(custom_hash_equal_nocase)
{
	struct anchormap_params p;
	struct anchormap *m;
	char k[AM_T_STR];
	const void *kp, *vp;
	u64 v = 1;

	am_t_params(&p, AM_T_STR, sizeof(u64));
	p.hash = am_t_nocase_hash;
	p.equal = am_t_nocase_equal;
	m = am_t_new_params(&p, 0);
	ASSERT_NOT_NULL(m);
	am_t_str(k, "Hello");
	EXPECT_EQ(anchormap_insert(m, k, &v), 1);
	v = 2;
	am_t_str(k, "HELLO");
	EXPECT_EQ(anchormap_insert(m, k, &v), 0);
	am_t_str(k, "world");
	EXPECT_EQ(anchormap_insert(m, k, &v), 1);
	am_t_str(k, "hello");
	kp = anchormap_get_key_value(m, k, &vp);
	EXPECT_NOT_NULL(kp);
	if (kp) {
		/* the first spelling is the one stored */
		EXPECT_EQ(memcmp(kp, "Hello", 6), 0);
		EXPECT_EQ(am_tu_rd64(vp), 1);
	}
	am_t_str(k, "WoRlD");
	EXPECT_TRUE(anchormap_contains_key(m, k));
	am_t_str(k, "hELLo");
	EXPECT_EQ(anchormap_remove(m, k), 1);
	EXPECT_EQ(anchormap_len(m), 1);
	am_t_del(m);
}

/*
 * Keys [0, n) hold their values and [n, 2n) are absent; then the even keys
 * go and half are left.  Returns the mismatches.
 */
static long am_t_check_halve(struct anchormap *m, u64 n)
{
	long bad = am_t_count_bad(m, 0, n);

	bad += am_t_count_present(m, n, 2 * n);
	bad += am_t_remove_step(m, 0, n, 2);
	bad += am_t_count_present(m, 0, n) != (long)(n / 2);
	return bad;
}

/* Everything collides: insert, find, remove, walk must still be right. */
static long am_t_collide(u64 (*hash)(const void *, u32, u64), u64 n)
{
	struct anchormap_iter *it = am_test_alloc(sizeof(*it));
	struct anchormap *m = am_t_new_hashed(hash, 0);
	long bad = 0, walked = 0;
	u64 k;

	if (!m || !it) {
		am_t_del(m);
		am_test_free(it);
		return -ENOMEM;
	}
	bad += am_t_fill(m, 0, n) != 0;
	for (k = 0; k < n; k++)
		bad += am_t_put(m, k) != 0;
	bad += am_t_check_halve(m, n);
	for (k = 1; k < n; k += 2)
		bad += am_t_count_bad(m, k, k + 1);
	anchormap_iter_init(it, m);
	while (anchormap_iter_next(it, NULL, NULL) && walked <= (long)n)
		walked++;
	bad += walked != (long)(n / 2);
	bad += anchormap_len(m) != n / 2;
	bad += anchormap_shrink_to_fit(m) != 0;
	bad += am_t_count_present(m, 0, n) != (long)(n / 2);
	am_test_free(it);
	am_t_del(m);
	return bad;
}

TEST(constant_hash_zero_collides)
{
	EXPECT_EQ(am_t_collide(am_t_hash_zero, 400), 0);
}

TEST(constant_hash_ones_collides)
{
	EXPECT_EQ(am_t_collide(am_t_hash_ones, 400), 0);
}

TEST(collisions_raise_longest_probe)
{
	struct anchormap *m = am_t_new_hashed(am_t_hash_zero, 1000);
	struct anchormap_stats st;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 200), 0);
	anchormap_stats(m, &st);
	EXPECT_GE(st.longest_probe, 2);
	am_t_del(m);
}

/* ---- hashing ---- */

/* SipHash-2-4, key 00..0f, message 00..len-1 (reference implementation). */
static const u64 am_t_sip_vectors[64] = {
	0x726fdb47dd0e0e31ULL, 0x74f839c593dc67fdULL, 0x0d6c8009d9a94f5aULL, 0x85676696d7fb7e2dULL,
	0xcf2794e0277187b7ULL, 0x18765564cd99a68dULL, 0xcbc9466e58fee3ceULL, 0xab0200f58b01d137ULL,
	0x93f5f5799a932462ULL, 0x9e0082df0ba9e4b0ULL, 0x7a5dbbc594ddb9f3ULL, 0xf4b32f46226bada7ULL,
	0x751e8fbc860ee5fbULL, 0x14ea5627c0843d90ULL, 0xf723ca908e7af2eeULL, 0xa129ca6149be45e5ULL,
	0x3f2acc7f57c29bdbULL, 0x699ae9f52cbe4794ULL, 0x4bc1b3f0968dd39cULL, 0xbb6dc91da77961bdULL,
	0xbed65cf21aa2ee98ULL, 0xd0f2cbb02e3b67c7ULL, 0x93536795e3a33e88ULL, 0xa80c038ccd5ccec8ULL,
	0xb8ad50c6f649af94ULL, 0xbce192de8a85b8eaULL, 0x17d835b85bbb15f3ULL, 0x2f2e6163076bcfadULL,
	0xde4daaaca71dc9a5ULL, 0xa6a2506687956571ULL, 0xad87a3535c49ef28ULL, 0x32d892fad841c342ULL,
	0x7127512f72f27cceULL, 0xa7f32346f95978e3ULL, 0x12e0b01abb051238ULL, 0x15e034d40fa197aeULL,
	0x314dffbe0815a3b4ULL, 0x027990f029623981ULL, 0xcadcd4e59ef40c4dULL, 0x9abfd8766a33735cULL,
	0x0e3ea96b5304a7d0ULL, 0xad0c42d6fc585992ULL, 0x187306c89bc215a9ULL, 0xd4a60abcf3792b95ULL,
	0xf935451de4f21df2ULL, 0xa9538f0419755787ULL, 0xdb9acddff56ca510ULL, 0xd06c98cd5c0975ebULL,
	0xe612a3cb9ecba951ULL, 0xc766e62cfcadaf96ULL, 0xee64435a9752fe72ULL, 0xa192d576b245165aULL,
	0x0a8787bf8ecb74b2ULL, 0x81b3e73d20b49b6fULL, 0x7fa8220ba3b2eceaULL, 0x245731c13ca42499ULL,
	0xb78dbfaf3a8d83bdULL, 0xea1ad565322a1a0bULL, 0x60e61c23a3795013ULL, 0x6606d7e446282b93ULL,
	0x6ca4ecb15c5f91e1ULL, 0x9f626da15c9625f3ULL, 0xe51b38608ef25f57ULL, 0x958a324ceb064572ULL,
};

#define AM_T_SIP_K0	0x0706050403020100ULL
#define AM_T_SIP_K1	0x0f0e0d0c0b0a0908ULL

/* Checks all 64 vectors with the message placed at @offset in a buffer. */
static int am_t_sip_check(u8 *buf, u32 offset)
{
	int bad = 0;
	u32 len;

	for (len = 0; len < 64; len++)
		buf[offset + len] = (u8)len;
	for (len = 0; len < 64; len++) {
		u64 h = anchormap_siphash24(buf + offset, len, AM_T_SIP_K0, AM_T_SIP_K1);

		if (h != am_t_sip_vectors[len]) {
			am_test_log("siphash24 len %u (offset %u): %016llx, want %016llx",
				    len, offset, (unsigned long long)h,
				    (unsigned long long)am_t_sip_vectors[len]);
			bad++;
		}
	}
	return bad;
}

TEST(siphash24_reference_vectors)
{
	u8 *buf = am_test_alloc(128);

	ASSERT_NOT_NULL(buf);
	EXPECT_EQ(am_t_sip_vectors[0], 0x726fdb47dd0e0e31ULL);
	EXPECT_EQ(am_t_sip_check(buf, 0), 0);
	am_test_free(buf);
}

TEST(siphash24_unaligned_input)
{
	u8 *buf = am_test_alloc(128);
	u32 off;

	ASSERT_NOT_NULL(buf);
	for (off = 1; off < 8; off++)
		EXPECT_EQ(am_t_sip_check(buf, off), 0);
	am_test_free(buf);
}

/* Two hashes of each length 1..64 differing in the last byte must differ. */
static long am_t_hash_tail_blind(u64 (*hash)(const void *, u32, u64), u64 seed)
{
	u8 buf[64];
	long blind = 0;
	u32 len;

	for (len = 0; len < 64; len++)
		buf[len] = (u8)(len * 37 + 1);
	for (len = 1; len <= 64; len++) {
		u64 h1 = hash(buf, len, seed);

		buf[len - 1] ^= 0x80;
		blind += hash(buf, len, seed) == h1;
		buf[len - 1] ^= 0x80;
	}
	return blind;
}

TEST(hash_default_mixes_every_byte)
{
	EXPECT_EQ(am_t_hash_tail_blind(anchormap_hash_default, 0x1234), 0);
	EXPECT_EQ(am_t_hash_tail_blind(anchormap_hash_default, 0), 0);
}

TEST(hash_siphash_mixes_every_byte)
{
	EXPECT_EQ(am_t_hash_tail_blind(anchormap_hash_siphash, 0x1234), 0);
}

/* Deterministic for a seed, different across seeds and across keys. */
static long am_t_hash_keyed_bad(u64 (*hash)(const void *, u32, u64))
{
	u64 *h = am_test_alloc(512 * sizeof(u64));
	long bad = 0;
	u64 k, j;

	if (!h)
		return -ENOMEM;
	for (k = 0; k < 512; k++) {
		h[k] = hash(&k, sizeof(k), 42);
		bad += hash(&k, sizeof(k), 42) != h[k];
		bad += hash(&k, sizeof(k), 43) == h[k];
	}
	for (k = 0; k < 512; k++)
		for (j = k + 1; j < 512; j++)
			bad += h[k] == h[j];
	am_test_free(h);
	return bad;
}

TEST(hash_default_keyed_and_spread)
{
	EXPECT_EQ(am_t_hash_keyed_bad(anchormap_hash_default), 0);
}

TEST(hash_siphash_keyed_and_spread)
{
	EXPECT_EQ(am_t_hash_keyed_bad(anchormap_hash_siphash), 0);
}

static long am_t_map_with_hash(u64 (*hash)(const void *, u32, u64), u64 n)
{
	struct anchormap *m = am_t_new_hashed(hash, 0);
	long bad;

	if (!m)
		return -ENOMEM;
	bad = am_t_fill(m, 0, n) != 0;
	bad += am_t_check_halve(m, n);
	am_t_del(m);
	return bad;
}

TEST(map_with_hash_siphash)
{
	EXPECT_EQ(am_t_map_with_hash(anchormap_hash_siphash, 3000), 0);
}

TEST(map_with_hash_default_explicit)
{
	EXPECT_EQ(am_t_map_with_hash(anchormap_hash_default, 3000), 0);
}

static const struct am_test_case am_keys_cases[] = {
	AM_TEST_ENTRY(set_value_size_zero)
	AM_TEST_ENTRY(big_key_value_align16)
	AM_TEST_ENTRY(big_key_value_align64)
	AM_TEST_ENTRY(big_key_value_align4096)
	AM_TEST_ENTRY(natural_value_alignment)
	AM_TEST_ENTRY(explicit_value_alignment_small_value)
	AM_TEST_ENTRY(custom_hash_equal_nocase)
	AM_TEST_ENTRY(constant_hash_zero_collides)
	AM_TEST_ENTRY(constant_hash_ones_collides)
	AM_TEST_ENTRY(collisions_raise_longest_probe)
	AM_TEST_ENTRY(siphash24_reference_vectors)
	AM_TEST_ENTRY(siphash24_unaligned_input)
	AM_TEST_ENTRY(hash_default_mixes_every_byte)
	AM_TEST_ENTRY(hash_siphash_mixes_every_byte)
	AM_TEST_ENTRY(hash_default_keyed_and_spread)
	AM_TEST_ENTRY(hash_siphash_keyed_and_spread)
	AM_TEST_ENTRY(map_with_hash_siphash)
	AM_TEST_ENTRY(map_with_hash_default_explicit)
};

static const struct am_test_suite am_keys_suite = AM_TEST_SUITE(keys);
