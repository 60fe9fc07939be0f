// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * common/inline.c - the header-inline lookups: anchormap_get_fast(),
 * anchormap_get_many() and anchormap_get_many_fast().
 *
 * Part of the portable functional tests: common_tests.c includes it after
 * helpers.h (see there for the conventions).
 */

/* ---- anchormap_get_fast(): the header-inline lookup ---- */

/*
 * Keys [0, n) through anchormap_get_fast() and anchormap_get(): lookups
 * that disagree (pointer, or value of a hit).  Keys [n, 2n) must miss.
 */
static long am_t_fast_disagree(const struct anchormap *m, u64 n)
{
	long bad = 0;
	u64 k;

	for (k = 0; k < 2 * n; k++) {
		const void *f = anchormap_get_fast(m, &k, am_t_u64_params);

		bad += f != anchormap_get(m, &k);
		bad += (k < n) != (f != NULL);
		if (f && k < n)
			bad += am_tu_rd64(f) != am_tu_val(k);
	}
	return bad;
}

TEST(get_fast_presized_agrees_with_get)
{
	struct anchormap *m = am_t_new(20000, NULL);

	ASSERT_NOT_NULL(m);
	/* 20000 keys: fingerprint collisions take the out-of-line path */
	EXPECT_EQ(am_t_fill(m, 0, 20000), 0);
	EXPECT_EQ(am_t_segments(m), 1);
	EXPECT_EQ(am_t_fast_disagree(m, 20000), 0);
	am_t_del(m);
}

TEST_WITH(u64map, get_fast_grown_agrees_with_get)
{
	struct anchormap *m = self->m;

	EXPECT_EQ(am_t_fill(m, 0, 5000), 0);
	EXPECT_GE(am_t_segments(m), 4);		/* hits in older segments */
	EXPECT_EQ(am_t_fast_disagree(m, 5000), 0);
}

TEST(get_fast_misses_removed)
{
	struct anchormap *m = am_t_new(1000, NULL);
	long bad = 0;
	u64 k;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 1000), 0);
	EXPECT_EQ(am_t_remove_step(m, 0, 1000, 2), 0);
	for (k = 0; k < 1000; k++)
		bad += (anchormap_get_fast(m, &k, am_t_u64_params) != NULL) != (k & 1);
	EXPECT_EQ(bad, 0);
	am_t_del(m);
}

TEST_WITH(u64map, get_fast_null_args)
{
	struct anchormap *m = self->m;
	u64 k = 1;

	EXPECT_EQ(am_t_put(m, k), 1);
	EXPECT_NULL(anchormap_get_fast(NULL, &k, am_t_u64_params));
	EXPECT_NULL(anchormap_get_fast(m, NULL, am_t_u64_params));
}

/*
 * @params that are not the map's (u64 -> u64, value at 8, 16-byte slots):
 * the lookup must still find the map's key at its real place.
 */
static __always_inline long
am_t_fast_other(const struct anchormap_params params)
{
	struct anchormap *m = am_t_new(0, NULL);
	u64 k = 7, absent = 8;
	const void *f;
	long bad = 0;

	if (!m || am_t_put(m, k) != 1) {
		am_t_del(m);
		return -1;
	}
	f = anchormap_get_fast(m, &k, params);
	bad += f == NULL || f != anchormap_get(m, &k);
	if (f)
		bad += am_tu_rd64(f) != am_tu_val(k);
	bad += anchormap_get_fast(m, &absent, params) != NULL;
	am_t_del(m);
	return bad;
}

TEST(get_fast_other_params_fall_back)
{
	static const struct anchormap_params short_key = { .key_size = 4, .value_size = 8 };
	static const struct anchormap_params long_value = { .key_size = 8, .value_size = 16 };
	static const struct anchormap_params set = { .key_size = 8 };
	static const struct anchormap_params wide = {
		.key_size = 8, .value_size = 8, .value_align = 16
	};
	static const struct anchormap_params bad_align = {
		.key_size = 8, .value_size = 8, .value_align = 12
	};
	/* a size past the limit must not run into the next field: 8 | 8 << 21 */
	static const struct anchormap_params huge_key = {
		.key_size = (1u << 24) + 8, .value_size = 8
	};

	EXPECT_EQ(am_t_fast_other(am_t_u64_params), 0);
	EXPECT_EQ(am_t_fast_other(short_key), 0);
	EXPECT_EQ(am_t_fast_other(long_value), 0);
	EXPECT_EQ(am_t_fast_other(set), 0);
	EXPECT_EQ(am_t_fast_other(wide), 0);
	EXPECT_EQ(am_t_fast_other(bad_align), 0);
	EXPECT_EQ(am_t_fast_other(huge_key), 0);
}

/*
 * Values that repeat their key, looked up with 24-byte slots where the map
 * has 16 (params with a 16-byte value at 8-byte alignment): trusting them,
 * the candidate at slot 1 would compare its own value as the key and
 * return the next slot.  A full group of 14 keys fills slot 1.
 */
TEST(get_fast_other_value_size)
{
	static const struct anchormap_params wide_value = {
		.key_size = 8, .value_size = 16, .value_align = 8
	};
	struct anchormap *m = am_t_new(14, NULL);
	long bad = 0;
	u64 k;

	ASSERT_NOT_NULL(m);
	for (k = 1; k <= 14; k++)
		bad += anchormap_insert(m, &k, &k) != 1;
	for (k = 1; k <= 14; k++)
		bad += anchormap_get_fast(m, &k, wide_value) != anchormap_get(m, &k);
	EXPECT_EQ(bad, 0);
	am_t_del(m);
}

/* A map with its own hash, looked up with and without it in the params. */
TEST(get_fast_custom_hash)
{
	static const struct anchormap_params zero = {
		.key_size = 8, .value_size = 8, .hash = am_t_hash_zero
	};
	static const struct anchormap_params ones = {
		.key_size = 8, .value_size = 8, .hash = am_t_hash_ones
	};
	struct anchormap *m = am_t_new_params(&zero, 0);
	long bad = 0;
	u64 k;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 100), 0);
	for (k = 0; k < 200; k++) {
		const void *f[3] = {
			anchormap_get_fast(m, &k, zero),		/* inline */
			anchormap_get_fast(m, &k, am_t_u64_params),	/* falls back */
			anchormap_get_fast(m, &k, ones),		/* falls back */
		};
		int i;

		for (i = 0; i < 3; i++) {
			bad += (k < 100) != (f[i] != NULL);
			if (f[i])
				bad += am_tu_rd64(f[i]) != am_tu_val(k);
		}
	}
	EXPECT_EQ(bad, 0);
	am_t_del(m);
}

/* Custom hash and compare inline: another spelling finds the stored key. */
TEST(get_fast_custom_hash_equal_inline)
{
	static const struct anchormap_params nocase = {
		.key_size = AM_T_STR, .value_size = sizeof(u64),
		.hash = am_t_nocase_hash, .equal = am_t_nocase_equal,
	};
	struct anchormap *m = am_t_new_params(&nocase, 0);
	char k[AM_T_STR];
	const void *f;
	u64 v = 5;

	ASSERT_NOT_NULL(m);
	am_t_str(k, "Hello");
	EXPECT_EQ(anchormap_insert(m, k, &v), 1);
	am_t_str(k, "hELLO");
	f = anchormap_get_fast(m, k, nocase);
	EXPECT_NOT_NULL(f);
	EXPECT_EQ(f, anchormap_get(m, k));
	if (f)
		EXPECT_EQ(am_tu_rd64(f), 5);
	am_t_str(k, "help");
	EXPECT_NULL(anchormap_get_fast(m, k, nocase));
	am_t_del(m);
}

/* Key @i of @ks bytes, distinct for i < 256 (ks == 1) or i < 65536. */
static void am_t_fast_key(u8 *key, u32 ks, u64 i)
{
	memset(key, (int)(i * 7) & 0xff, ks);
	key[0] = (u8)i;
	if (ks > 1)
		key[1] = (u8)(i >> 8);
}

/* Value @i of @vs bytes. */
static void am_t_fast_value(u8 *value, u32 vs, u64 i)
{
	u32 j;

	for (j = 0; j < vs; j++)
		value[j] = (u8)(i * 13 + j);
}

/*
 * Keys of @ks bytes and values of @vs bytes at @va (constants at each
 * definition below): the inline hash, slot size and value offset computed
 * from the params must be the library's from the map.
 */
#define AM_T_FAST_LAYOUT(name, ks, vs, va)					\
static long am_t_fast_##name(void)						\
{										\
	static const struct anchormap_params p = {				\
		.key_size = ks, .value_size = vs, .value_align = va		\
	};									\
	struct anchormap *m = am_t_new_params(&p, 0);				\
	u8 key[ks], value[(vs) + 1];						\
	u64 i, n = ks == 1 ? 128 : 600;						\
	long bad = 0;								\
										\
	if (!m)									\
		return -ENOMEM;							\
	for (i = 0; i < n; i++) {						\
		am_t_fast_key(key, ks, i);					\
		am_t_fast_value(value, vs, i);					\
		bad += anchormap_insert(m, key, value) != 1;			\
	}									\
	for (i = 0; i < 2 * n; i++) {						\
		const void *f;							\
										\
		am_t_fast_key(key, ks, i);					\
		am_t_fast_value(value, vs, i);					\
		f = anchormap_get_fast(m, key, p);				\
		bad += f != anchormap_get(m, key);				\
		bad += (i < n) != (f != NULL);					\
		if (f)								\
			bad += memcmp(f, value, vs) != 0;			\
	}									\
	am_t_del(m);								\
	return bad;								\
}
AM_T_FAST_LAYOUT(k1, 1, 8, 0)
AM_T_FAST_LAYOUT(k3, 3, 8, 0)
AM_T_FAST_LAYOUT(k4, 4, 8, 0)
AM_T_FAST_LAYOUT(k12, 12, 8, 0)
AM_T_FAST_LAYOUT(k16, 16, 8, 0)
AM_T_FAST_LAYOUT(k32, 32, 8, 0)
AM_T_FAST_LAYOUT(k40, 40, 8, 0)
AM_T_FAST_LAYOUT(v3, 8, 3, 0)
AM_T_FAST_LAYOUT(v16, 3, 16, 0)
AM_T_FAST_LAYOUT(v64, 32, 64, 0)
AM_T_FAST_LAYOUT(set, 12, 0, 0)
AM_T_FAST_LAYOUT(a64, 8, 8, 64)
AM_T_FAST_LAYOUT(a2, 5, 6, 2)

TEST(get_fast_key_sizes)
{
	EXPECT_EQ(am_t_fast_k1(), 0);
	EXPECT_EQ(am_t_fast_k3(), 0);
	EXPECT_EQ(am_t_fast_k4(), 0);
	EXPECT_EQ(am_t_fast_k12(), 0);
	EXPECT_EQ(am_t_fast_k16(), 0);
	EXPECT_EQ(am_t_fast_k32(), 0);
	EXPECT_EQ(am_t_fast_k40(), 0);
}

TEST(get_fast_value_layouts)
{
	EXPECT_EQ(am_t_fast_v3(), 0);
	EXPECT_EQ(am_t_fast_v16(), 0);
	EXPECT_EQ(am_t_fast_v64(), 0);
	EXPECT_EQ(am_t_fast_set(), 0);
	EXPECT_EQ(am_t_fast_a64(), 0);
	EXPECT_EQ(am_t_fast_a2(), 0);
}

/* ---- get_many ---- */

/* get_many agrees with get for hits and misses, at every batch boundary and key size. */
static void am_t_get_many_agrees(struct am_test_ctx *_ctx, u32 ks)
{
	static const size_t counts[] = { 1, 2, 31, 32, 33, 64, 100, 257 };
	struct anchormap_params p;
	struct anchormap *m;
	const void **vals;
	u8 *keys;
	long bad = 0, found, want;
	size_t c, i, n;
	u32 kb;
	u64 x;

	/* the low bytes of x make a key: up to 8 of them */
	kb = ks;
	if (kb > 8)
		kb = 8;
	am_t_params(&p, ks, 8);
	m = am_t_new_params(&p, 0);
	ASSERT_NOT_NULL(m);
	keys = am_test_alloc(257 * ks);
	vals = am_test_alloc(257 * sizeof(*vals));
	if (!keys || !vals)
		goto out;
	/* keys i * 3 + 1 present, the others absent; ks >= 4 bytes of key hold i */
	for (i = 0; i < 1000; i++) {
		u8 key[32] = { 0 };

		x = i * 3 + 1;
		memcpy(key, &x, kb);
		bad += anchormap_insert(m, key, &x) != 1;
	}
	for (c = 0; c < ARRAY_SIZE(counts); c++) {
		n = counts[c];
		memset(keys, 0, n * ks);
		want = 0;
		for (i = 0; i < n; i++) {
			x = (i * 7919) % 3000;	/* hits (x % 3 == 1) and misses */
			memcpy(keys + i * ks, &x, kb);
			want += x % 3 == 1 && x < 3000;
		}
		found = anchormap_get_many(m, keys, n, vals);
		EXPECT_EQ(found, want);
		for (i = 0; i < n; i++)
			bad += vals[i] != anchormap_get(m, keys + i * ks);
	}
	EXPECT_EQ(bad, 0);
out:
	am_test_free(keys);
	am_test_free(vals);
	am_t_del(m);
}

TEST(get_many_agrees_with_get_k4)
{
	am_t_get_many_agrees(_ctx, 4);
}

TEST(get_many_agrees_with_get_k8)
{
	am_t_get_many_agrees(_ctx, 8);
}

TEST(get_many_agrees_with_get_k16)
{
	am_t_get_many_agrees(_ctx, 16);
}

TEST(get_many_agrees_with_get_k24)
{
	am_t_get_many_agrees(_ctx, 24);
}

/* The inline version agrees too, and falls back for params the map does not have. */
TEST_WITH(u64map, get_many_fast_agrees_and_falls_back)
{
	static const struct anchormap_params p8 = { .key_size = 8, .value_size = 8 };
	static const struct anchormap_params p16 = { .key_size = 8, .value_size = 16 };
	struct anchormap *m = self->m;
	/* on the heap: the kernel's stack frames are small */
	const void **vals = am_test_alloc(100 * sizeof(*vals));
	const void **slow = am_test_alloc(100 * sizeof(*slow));
	u64 *keys = am_test_alloc(100 * sizeof(*keys)), i;
	long bad = 0;

	if (!m || !vals || !slow || !keys) {
		EXPECT_TRUE(false);	/* out of memory */
		goto out;
	}
	EXPECT_EQ(am_t_fill(m, 0, 50), 0);
	if (_ctx->failed)
		goto out;
	for (i = 0; i < 100; i++)
		keys[i] = i * 13 % 100;	/* half present */
	EXPECT_EQ(anchormap_get_many_fast(m, keys, 100, vals, p8), 50);
	EXPECT_EQ(anchormap_get_many(m, keys, 100, slow), 50);
	for (i = 0; i < 100; i++) {
		bad += vals[i] != slow[i];
		bad += (vals[i] != NULL) != (keys[i] < 50);
	}
	/* other params than the map's: the exported path, the same answers */
	EXPECT_EQ(anchormap_get_many_fast(m, keys, 100, vals, p16), 50);
	for (i = 0; i < 100; i++)
		bad += vals[i] != slow[i];
	EXPECT_EQ(bad, 0);
out:
	am_test_free(vals);
	am_test_free(slow);
	am_test_free(keys);
}

TEST_WITH(u64map, get_many_bad_args)
{
	struct anchormap *m = self->m;
	const void *vals[2] = { (void *)1, (void *)1 };
	u64 keys[2] = { 1, 2 };

	EXPECT_EQ(anchormap_get_many(NULL, keys, 2, vals), -EINVAL);
	EXPECT_EQ(anchormap_get_many(m, NULL, 2, vals), -EINVAL);
	EXPECT_EQ(anchormap_get_many(m, keys, 2, NULL), -EINVAL);
	EXPECT_TRUE(vals[0] == (void *)1 && vals[1] == (void *)1);	/* nothing written */
	EXPECT_EQ(anchormap_get_many(m, keys, 0, vals), 0);
	EXPECT_EQ(anchormap_get_many(m, keys, 2, vals), 0);	/* empty map: misses */
	EXPECT_TRUE(!vals[0] && !vals[1]);
}

/*
 * Keys of every tag overflowing one home group set every bit of its
 * overflow word, bytes 12..15 of the group, which then hold 0xff: the
 * match must never take them for tags (a candidate past the 12 refs).
 */
static u64 am_t_hash_tags(const void *key, u32 key_size, u64 seed)
{
	u64 k;

	memcpy(&k, key, sizeof(k));
	return k << 57;	/* home group 0, tag 0x80 | k */
}

TEST(overflow_word_full_never_matches)
{
	struct anchormap *m = am_t_new_hashed(am_t_hash_tags, 1000);
	long bad = 0;
	u64 k, v;

	ASSERT_NOT_NULL(m);
	/* 12 fill group 0, the next 116 pass it, each with its tag's bit */
	for (k = 0; k < 128; k++) {
		v = k + 1;
		bad += anchormap_insert(m, &k, &v) != 1;
	}
	for (k = 0; k < 128; k++) {
		const void *vp = anchormap_get(m, &k);

		bad += !vp || am_tu_rd64(vp) != k + 1;
	}
	for (k = 128; k < 512; k++)	/* same tags, absent: misses */
		bad += anchormap_get(m, &k) != NULL;
	EXPECT_EQ(bad, 0);
	am_t_del(m);
}

/*
 * The home group is hash bits 6 and up (__anchormap_home()): keys hashed
 * to AM_T_HOME(7) take slots of group 7 and of no other group.
 */
TEST(home_group_is_hash_bits_from_6)
{
	struct anchormap *m = am_t_new_homed(am_t_hash_home_7);
	const struct anchormap_group *g;
	int i, in7 = 0, elsewhere = 0;
	size_t gi;
	u64 k;

	ASSERT_NOT_NULL(m);
	for (k = 200; k < 205; k++)
		ASSERT_EQ(am_t_put(m, k), 1);
	g = __anchormap_groups(m->index);
	for (gi = 0; gi <= m->index->hmask / sizeof(*g); gi++)
		for (i = 0; i < __ANCHORMAP_GROUP; i++) {
			if (g[gi].tag[i] == __ANCHORMAP_TAG_EMPTY)
				continue;
			if (gi == 7)
				in7 += g[gi].tag[i] == __anchormap_tag(AM_T_HOME(7));
			else
				elsewhere++;
		}
	EXPECT_EQ(in7, 5);
	EXPECT_EQ(elsewhere, 0);
	am_t_del(m);
}

static const struct am_test_case am_inline_cases[] = {
	AM_TEST_ENTRY(get_fast_presized_agrees_with_get)
	AM_TEST_ENTRY(get_fast_grown_agrees_with_get)
	AM_TEST_ENTRY(get_fast_misses_removed)
	AM_TEST_ENTRY(get_fast_null_args)
	AM_TEST_ENTRY(get_fast_other_params_fall_back)
	AM_TEST_ENTRY(get_fast_other_value_size)
	AM_TEST_ENTRY(get_fast_custom_hash)
	AM_TEST_ENTRY(get_fast_custom_hash_equal_inline)
	AM_TEST_ENTRY(get_fast_key_sizes)
	AM_TEST_ENTRY(get_fast_value_layouts)
	AM_TEST_ENTRY(get_many_agrees_with_get_k4)
	AM_TEST_ENTRY(get_many_agrees_with_get_k8)
	AM_TEST_ENTRY(get_many_agrees_with_get_k16)
	AM_TEST_ENTRY(get_many_agrees_with_get_k24)
	AM_TEST_ENTRY(get_many_fast_agrees_and_falls_back)
	AM_TEST_ENTRY(get_many_bad_args)
	AM_TEST_ENTRY(overflow_word_full_never_matches)
	AM_TEST_ENTRY(home_group_is_hash_bits_from_6)
};

static const struct am_test_suite am_inline_suite = AM_TEST_SUITE(inline);
