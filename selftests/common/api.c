// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * common/api.c - init and its parameters, NULL arguments, insert and the
 * lookups, remove, the get_or_insert family, capacity, reserve, len and
 * stats: the API one call at a time, and its errors.
 *
 * Part of the portable functional tests: common_tests.c includes it after
 * helpers.h (see there for the conventions).
 */

/* ---- init and parameters ---- */

TEST(init_null_args)
{
	struct anchormap *m = am_test_alloc(sizeof(*m));
	struct anchormap_params p;

	ASSERT_NOT_NULL(m);
	am_t_params(&p, 8, 8);
	EXPECT_EQ(anchormap_init(NULL, &p, 0), -EINVAL);
	EXPECT_EQ(anchormap_init(m, NULL, 0), -EINVAL);
	am_test_free(m);
}

TEST(init_rejects_zero_key_size)
{
	struct anchormap_params p;

	am_t_params(&p, 0, 8);
	EXPECT_EQ(am_t_try_init(&p, 0), -EINVAL);
	am_t_params(&p, 0, 0);
	EXPECT_EQ(am_t_try_init(&p, 16), -EINVAL);
}

/* Keys and values up to 1 MiB each (struct anchormap_params), not a byte more. */
TEST(init_key_and_value_size_limits)
{
	struct anchormap_params p;

	am_t_params(&p, (1u << 20) + 1, 8);
	EXPECT_EQ(am_t_try_init(&p, 4), -EINVAL);
	am_t_params(&p, 8, (1u << 20) + 1);
	EXPECT_EQ(am_t_try_init(&p, 4), -EINVAL);
	am_t_params(&p, 8, 0xffffffffu);
	EXPECT_EQ(am_t_try_init(&p, 4), -EINVAL);
	am_t_params(&p, 1u << 20, 1u << 20);
	EXPECT_EQ(am_t_try_init(&p, 4), 0);
}

TEST(init_rejects_bad_value_align)
{
	static const u32 bad[] = { 3, 6, 12, 24, 4097, 8192, 0x80000000u, 0xffffffffu };
	struct anchormap_params p;
	unsigned int i;

	am_t_params(&p, 8, 8);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		p.value_align = bad[i];
		EXPECT_EQ(am_t_try_init(&p, 0), -EINVAL);
	}
}

TEST(init_accepts_good_value_align)
{
	struct anchormap_params p;
	u32 align;

	am_t_params(&p, 8, 8);
	for (align = 1; align <= 4096; align <<= 1) {
		p.value_align = align;
		EXPECT_EQ(am_t_try_init(&p, 0), 0);
	}
}

TEST(init_rejects_bad_flags)
{
	static const u32 bad[] = { ANCHORMAP_F_ALL + 1, ANCHORMAP_F_ALL << 1,
				   0x80000000u, 0xffffffffu };
	struct anchormap_params p;
	unsigned int i;

	am_t_params(&p, 8, 8);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		p.flags = bad[i];
		EXPECT_EQ(am_t_try_init(&p, 0), -EINVAL);
	}
}

TEST(init_atomic_flag_works)
{
	struct anchormap_params p;
	struct anchormap *m;

	am_t_params(&p, 8, 8);
	p.flags = ANCHORMAP_F_ATOMIC;
	m = am_t_new_params(&p, 0);
	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 500), 0);
	EXPECT_EQ(am_t_count_bad(m, 0, 500), 0);
	am_t_del(m);
}

TEST(init_rejects_absurd_capacity)
{
	static const size_t caps[] = { SIZE_MAX, SIZE_MAX / 2, SIZE_MAX / 64,
				       (size_t)1 << 62 };
	struct anchormap_params p;
	long live = anchormap_debug_allocs_live();
	unsigned int i;
	int ret;

	am_t_params(&p, 8, 8);
	for (i = 0; i < ARRAY_SIZE(caps); i++) {
		ret = am_t_try_init(&p, caps[i]);
		EXPECT_EQ(ret, -ENOMEM);	/* kernel-doc: "or @capacity is absurd" */
		EXPECT_EQ(anchormap_debug_allocs_live(), live);
	}
}

TEST_WITH(u64map, init_zero_capacity_usable)
{
	struct anchormap *m = self->m;

	EXPECT_TRUE(anchormap_is_empty(m));
	EXPECT_EQ(am_t_put(m, 7), 1);
	EXPECT_EQ(am_t_count_bad(m, 7, 8), 0);
}

TEST(init_capacity_honoured)
{
	struct anchormap *m = am_t_new(1000, NULL);

	ASSERT_NOT_NULL(m);
	EXPECT_GE(anchormap_capacity(m), 1000);
	am_t_del(m);
}

TEST(init_capacity_prevents_growth)
{
	struct anchormap *m = am_t_new(1000, NULL);
	size_t segs;

	ASSERT_NOT_NULL(m);
	segs = am_t_segments(m);
	EXPECT_EQ(am_t_fill(m, 0, 1000), 0);
	EXPECT_EQ(am_t_segments(m), segs);
	am_t_del(m);
}

/* ---- NULL arguments ---- */

TEST_WITH(u64map, insert_null_args)
{
	struct anchormap *m = self->m;
	u64 k = 1, v = 2;

	EXPECT_EQ(anchormap_insert(NULL, &k, &v), -EINVAL);
	EXPECT_EQ(anchormap_insert(m, NULL, &v), -EINVAL);
	EXPECT_EQ(anchormap_len(m), 0);
}

TEST_WITH(u64map, remove_null_args)
{
	struct anchormap *m = self->m;
	u64 k = 1;

	EXPECT_EQ(am_t_put(m, k), 1);
	EXPECT_EQ(anchormap_remove(NULL, &k), -EINVAL);
	EXPECT_EQ(anchormap_remove(m, NULL), -EINVAL);
	EXPECT_EQ(anchormap_len(m), 1);
}

TEST_WITH(u64map, get_or_insert_null_args)
{
	struct anchormap *m = self->m;
	struct am_t_init_arg a = { 0 };
	u64 k = 1, v = 2;
	const void *p;

	p = anchormap_get_or_insert(NULL, &k, &v);
	EXPECT_TRUE(IS_ERR(p) && PTR_ERR(p) == -EINVAL);
	p = anchormap_get_or_insert(m, NULL, &v);
	EXPECT_TRUE(IS_ERR(p) && PTR_ERR(p) == -EINVAL);
	p = anchormap_get_or_insert_with(NULL, &k, am_t_init_fn, &a);
	EXPECT_TRUE(IS_ERR(p) && PTR_ERR(p) == -EINVAL);
	p = anchormap_get_or_insert_with(m, NULL, am_t_init_fn, &a);
	EXPECT_TRUE(IS_ERR(p) && PTR_ERR(p) == -EINVAL);
	p = anchormap_get_or_try_insert_with(NULL, &k, am_t_try_init_fn, &a);
	EXPECT_TRUE(IS_ERR(p) && PTR_ERR(p) == -EINVAL);
	p = anchormap_get_or_try_insert_with(m, NULL, am_t_try_init_fn, &a);
	EXPECT_TRUE(IS_ERR(p) && PTR_ERR(p) == -EINVAL);
	EXPECT_EQ(a.calls, 0);
	EXPECT_EQ(anchormap_len(m), 0);
}

TEST_WITH(u64map, remove_entry_null_args)
{
	struct anchormap *m = self->m;
	u64 k = 1, ko, vo;

	EXPECT_EQ(am_t_put(m, k), 1);
	EXPECT_EQ(anchormap_remove_entry(NULL, &k, &ko, &vo), -EINVAL);
	EXPECT_EQ(anchormap_remove_entry(m, NULL, &ko, &vo), -EINVAL);
	EXPECT_EQ(anchormap_len(m), 1);
}

TEST(reserve_null_map)
{
	EXPECT_EQ(anchormap_reserve(NULL, 10), -EINVAL);
}

TEST_WITH(u64map, clone_null_args)
{
	struct anchormap *m = self->m;
	struct anchormap *dst = am_test_alloc(sizeof(*dst));
	long live;

	ASSERT_NOT_NULL(dst);
	live = anchormap_debug_allocs_live();
	EXPECT_EQ(anchormap_clone(NULL, m), -EINVAL);
	EXPECT_EQ(anchormap_clone(dst, NULL), -EINVAL);
	EXPECT_EQ(anchormap_debug_allocs_live(), live);
	am_test_free(dst);
}

TEST_WITH(u64map, entry_null_args)
{
	struct anchormap *m = self->m;
	struct anchormap_entry e;
	u64 k = 1;

	EXPECT_NULL(anchormap_entry(NULL, &k, &e));
	EXPECT_NULL(anchormap_entry(m, NULL, &e));
	EXPECT_NULL(anchormap_entry(m, &k, NULL));
}

TEST_WITH(u64map, extend_null_args)
{
	struct anchormap *m = self->m;
	u64 keys[2] = { 1, 2 };

	EXPECT_EQ(anchormap_extend(NULL, keys, NULL, 2), -EINVAL);
	EXPECT_EQ(anchormap_extend(m, NULL, NULL, 2), -EINVAL);
	EXPECT_EQ(anchormap_len(m), 0);
}

TEST_WITH(u64map, extend_rejects_n_above_int_max)
{
	struct anchormap *m = self->m;
	u64 keys[2] = { 1, 2 };

	/* must be refused before a single key is read */
	EXPECT_EQ(anchormap_extend(m, keys, NULL, (size_t)INT_MAX + 1), -EINVAL);
	EXPECT_EQ(anchormap_len(m), 0);
}

/* ---- insert and lookups ---- */

TEST_F(u64map, insert_new_returns_one)
{
	struct anchormap *m = self->m;

	EXPECT_EQ(am_t_put(m, 42), 1);
	EXPECT_EQ(anchormap_len(m), 1);
}

TEST_F(u64map, insert_present_keeps_first_value)
{
	struct anchormap *m = self->m;
	u64 k = 42, v1 = 100, v2 = 200;
	const void *p;

	EXPECT_EQ(anchormap_insert(m, &k, &v1), 1);
	p = anchormap_get(m, &k);
	EXPECT_EQ(anchormap_insert(m, &k, &v2), 0);
	ASSERT_NOT_NULL(anchormap_get(m, &k));
	EXPECT_EQ(am_tu_rd64(anchormap_get(m, &k)), 100);
	EXPECT_EQ(anchormap_get(m, &k), p);
	EXPECT_EQ(anchormap_len(m), 1);
}

TEST_F(u64map, insert_null_value_is_zero)
{
	struct anchormap *m = self->m;
	u64 k = 5;
	const void *p;

	EXPECT_EQ(anchormap_insert(m, &k, NULL), 1);
	p = anchormap_get(m, &k);
	ASSERT_NOT_NULL(p);
	EXPECT_EQ(am_tu_rd64(p), 0);
}

TEST_F(u64map, get_absent_is_null)
{
	struct anchormap *m = self->m;
	u64 k = 1000;

	EXPECT_NULL(anchormap_get(m, &k));
	EXPECT_EQ(am_t_fill(m, 0, 100), 0);
	EXPECT_NULL(anchormap_get(m, &k));
}

TEST_F(u64map, get_returns_stable_pointer)
{
	struct anchormap *m = self->m;
	u64 k = 3;
	const void *p;

	EXPECT_EQ(am_t_put(m, k), 1);
	p = anchormap_get(m, &k);
	ASSERT_NOT_NULL(p);
	EXPECT_EQ(anchormap_get(m, &k), p);
	EXPECT_EQ(am_tu_rd64(p), am_tu_val(k));
}

TEST_WITH(u64map, insert_copies_key_and_value)
{
	struct anchormap *m = self->m;
	u64 k = 9, v = 99, probe = 9;
	const void *p;

	EXPECT_EQ(anchormap_insert(m, &k, &v), 1);
	/* the map must not keep the caller's buffers */
	k = 10;
	v = 1;
	p = anchormap_get(m, &probe);
	ASSERT_NOT_NULL(p);
	EXPECT_NE(p, &v);
	EXPECT_EQ(am_tu_rd64(p), 99);
	EXPECT_NULL(anchormap_get(m, &k));
}

TEST_WITH(u64map, get_key_value_returns_stored_key)
{
	struct anchormap *m = self->m;
	const void *vp = NULL;
	const void *kp;
	u64 k = 77;

	EXPECT_EQ(am_t_put(m, k), 1);
	kp = anchormap_get_key_value(m, &k, &vp);
	ASSERT_NOT_NULL(kp);
	EXPECT_NE(kp, &k);
	EXPECT_EQ(am_tu_rd64(kp), 77);
	EXPECT_EQ(vp, anchormap_get(m, &k));
	EXPECT_EQ(anchormap_get_key_value(m, &k, NULL), kp);
}

TEST_WITH(u64map, get_key_value_absent)
{
	struct anchormap *m = self->m;
	const void *vp = &vp;
	u64 k = 77;

	EXPECT_NULL(anchormap_get_key_value(m, &k, &vp));
	EXPECT_NULL(vp);
	EXPECT_NULL(anchormap_get_key_value(m, &k, NULL));
}

TEST_WITH(u64map, contains_key_tracks_membership)
{
	struct anchormap *m = self->m;
	u64 k = 11;

	EXPECT_FALSE(anchormap_contains_key(m, &k));
	EXPECT_EQ(am_t_put(m, k), 1);
	EXPECT_TRUE(anchormap_contains_key(m, &k));
	EXPECT_EQ(anchormap_remove(m, &k), 1);
	EXPECT_FALSE(anchormap_contains_key(m, &k));
}

/* ---- remove (shared) ---- */

TEST_WITH(u64map, remove_present_then_absent)
{
	struct anchormap *m = self->m;
	u64 k = 12;

	EXPECT_EQ(anchormap_remove(m, &k), 0);
	EXPECT_EQ(am_t_put(m, k), 1);
	EXPECT_EQ(anchormap_remove(m, &k), 1);
	EXPECT_EQ(anchormap_remove(m, &k), 0);
	EXPECT_NULL(anchormap_get(m, &k));
}

TEST_WITH(u64map, remove_keeps_held_pointer_bytes)
{
	struct anchormap *m = self->m;
	const void **ptrs;
	long bad = 0;
	u64 k;

	EXPECT_EQ(am_t_fill(m, 0, 100), 0);
	ptrs = am_t_grab(m, 100);
	ASSERT_NOT_NULL(ptrs);
	EXPECT_EQ(am_t_remove_step(m, 0, 100, 1), 0);
	for (k = 0; k < 100; k++)
		bad += !ptrs[k] || am_tu_rd64(ptrs[k]) != am_tu_val(k);
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(am_t_count_present(m, 0, 100), 0);
	am_test_free(ptrs);
}

TEST_WITH(u64map, reinsert_after_remove_uses_new_slot)
{
	struct anchormap *m = self->m;
	const void **ptrs;
	long bad = 0, reused = 0;
	u64 k, v;

	EXPECT_EQ(am_t_fill(m, 0, 100), 0);
	ptrs = am_t_grab(m, 100);
	ASSERT_NOT_NULL(ptrs);
	EXPECT_EQ(am_t_remove_step(m, 0, 100, 1), 0);
	for (k = 0; k < 100; k++) {
		v = ~am_tu_val(k);
		bad += anchormap_insert(m, &k, &v) != 1;
		reused += anchormap_get(m, &k) == ptrs[k];
	}
	EXPECT_EQ(bad, 0);
	/* slots are never reused while the map is shared */
	EXPECT_EQ(reused, 0);
	for (k = 0, bad = 0; k < 100; k++)
		bad += am_tu_rd64(ptrs[k]) != am_tu_val(k);
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(anchormap_len(m), 100);
	am_test_free(ptrs);
}

/*
 * A key removed and inserted again, even with the very same bytes, gets a
 * new entry: the removed one keeps its bytes for whoever holds it, and is
 * counted as deleted until an exclusive operation reclaims it.
 */
TEST_WITH(u64map, reinsert_same_bytes_gets_new_entry)
{
	struct anchormap *m = self->m;
	u64 k = 5, v = am_tu_val(5), zero = 0;
	const void *p, *q;

	EXPECT_EQ(am_t_put(m, k), 1);
	p = anchormap_get(m, &k);
	ASSERT_NOT_NULL(p);
	EXPECT_EQ(anchormap_remove(m, &k), 1);
	EXPECT_EQ(am_t_deleted(m), 1);
	EXPECT_EQ(anchormap_insert(m, &k, &v), 1);
	q = anchormap_get(m, &k);
	ASSERT_NOT_NULL(q);
	EXPECT_NE(q, p);
	EXPECT_EQ(am_tu_rd64(p), am_tu_val(k));	/* the holder's bytes, unchanged */
	EXPECT_EQ(am_t_deleted(m), 1);
	EXPECT_EQ(anchormap_len(m), 1);
	EXPECT_EQ(anchormap_insert(m, &k, &v), 0);	/* present again */
	EXPECT_EQ(anchormap_remove(m, &k), 1);
	EXPECT_EQ(anchormap_insert(m, &k, &zero), 1);
	EXPECT_NE(anchormap_get(m, &k), q);
	EXPECT_EQ(am_tu_rd64(q), am_tu_val(k));
	EXPECT_EQ(am_t_deleted(m), 2);
}

/* However many removals and inserts came between, no held entry changes. */
TEST(removed_entries_never_reused_for_other_keys)
{
	struct anchormap *m = am_t_new(2000, NULL);
	const void **ptrs;
	long bad = 0;
	u64 k;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 1000), 0);
	ptrs = am_t_grab(m, 1000);
	ASSERT_NOT_NULL(ptrs);
	EXPECT_EQ(am_t_remove_step(m, 100, 1000, 1), 0);
	EXPECT_EQ(am_t_fill(m, 1000, 5000), 0);
	for (k = 0; k < 1000; k++)
		bad += am_tu_rd64(ptrs[k]) != am_tu_val(k);
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(am_t_count_moved(m, ptrs, 0, 100, 1), 0);
	EXPECT_EQ(am_t_deleted(m), 900);
	EXPECT_EQ(am_t_count_bad(m, 1000, 5000), 0);
	am_test_free(ptrs);
	am_t_del(m);
}

/* Keys past a full home group: found, removed and re-inserted there. */
TEST(keys_past_full_home_group_found)
{
	struct anchormap *m = am_t_new_homed(am_t_hash_home_7);
	u64 k, v = 77;
	long bad = 0;
	int round;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 40), 0);	/* group 7 and three after it */
	EXPECT_EQ(am_t_count_bad(m, 0, 40), 0);
	for (round = 0; round < 5; round++) {
		for (k = 0; k < 40; k += 3) {
			bad += anchormap_remove(m, &k) != 1;
			bad += anchormap_get(m, &k) != NULL;
		}
		for (k = 0; k < 40; k += 3)
			bad += anchormap_insert(m, &k, &v) != 1;
		for (k = 0; k < 40; k++)
			bad += !anchormap_get(m, &k);
		k = 1000 + round;
		bad += anchormap_get(m, &k) != NULL;	/* a miss past every group */
	}
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(anchormap_len(m), 40);
	am_t_del(m);
}

/* With @release each entry is released once, the removed ones too. */
TEST_WITH(relmap, reinsert_with_release_releases_each_entry)
{
	struct am_t_rel *r = self->r;
	struct anchormap *m = self->m;
	u64 k = 3;
	const void *p;

	EXPECT_EQ(am_t_put(m, k), 1);
	p = anchormap_get(m, &k);
	EXPECT_EQ(anchormap_remove(m, &k), 1);
	EXPECT_EQ(am_t_put(m, k), 1);
	EXPECT_NE(anchormap_get(m, &k), p);
	am_t_destroy_now(&self->m);
	EXPECT_EQ(r->calls, 2);
	EXPECT_EQ(am_t_rel_count_not(r, 3, 4, 2), 0);
}

/* An init function's value: a new entry as for any insert. */
TEST_WITH(u64map, reinsert_with_init_function_gets_new_entry)
{
	struct anchormap *m = self->m;
	struct am_t_init_arg a = { .fill = 0 };	/* a zero value, as NULL gives */
	u64 k = 4;
	const void *p, *q;

	p = anchormap_get_or_insert_with(m, &k, am_t_init_fn, &a);
	ASSERT_FALSE(IS_ERR_OR_NULL(p));
	EXPECT_EQ(anchormap_remove(m, &k), 1);
	q = anchormap_get_or_insert_with(m, &k, am_t_init_fn, &a);
	ASSERT_FALSE(IS_ERR_OR_NULL(q));
	EXPECT_NE(q, p);
	EXPECT_EQ(am_t_deleted(m), 1);
}

/* Ways the index at @b is not the one at @a: resized, rebuilt, one retired. */
static int am_t_index_changes(const struct anchormap_stats *a, const struct anchormap_stats *b)
{
	return (b->slots != a->slots) + (b->rebuilds != a->rebuilds) + (b->retired_bytes != 0);
}

/*
 * A set member toggled in and out many times: each removal costs its own
 * entry's storage only; the index gets each freed slot back, so it neither
 * fills up nor is rebuilt, and stays the size it was.
 */
TEST(toggled_member_leaves_index_clean)
{
	struct anchormap_params p;
	struct anchormap_stats a, b;
	struct anchormap *m;
	long bad = 0;
	u64 k;
	int i;

	am_t_params(&p, sizeof(u64), 0);
	m = am_t_new_params(&p, 100);
	ASSERT_NOT_NULL(m);
	for (k = 0; k < 100; k++)
		bad += anchormap_insert(m, &k, NULL) != 1;
	anchormap_stats(m, &a);
	for (i = 0; i < 20000; i++) {
		k = (u64)(i % 3);
		bad += anchormap_remove(m, &k) != 1;
		bad += anchormap_insert(m, &k, NULL) != 1;
	}
	EXPECT_EQ(bad, 0);
	anchormap_stats(m, &b);
	EXPECT_EQ(b.len, 100);
	EXPECT_EQ(b.deleted, 20000);
	EXPECT_EQ(am_t_index_changes(&a, &b), 0);
	EXPECT_LE(b.index_used, a.index_used + 3);
	am_t_del(m);
}

/* Key k's home group is k's low bits: few keys per group, none passed. */
static u64 am_t_hash_spread(const void *key, u32 key_size, u64 seed)
{
	u64 k = am_tu_rd64(key);

	return am_tu_mix64(k) << 32 | AM_T_HOME(k & 0x3ffffff);
}

/*
 * Churn far past the index's room (20000 removals, an index of 32 groups):
 * a removal from a group that no key passed makes its slot EMPTY and gives
 * its credit back, so the index holds exactly the live keys and is never
 * rebuilt.  (Tombstones there would fill it every few hundred removals.)
 */
TEST(churn_in_groups_with_room_needs_no_rebuild)
{
	struct anchormap *m = am_t_new_hashed(am_t_hash_spread, 100);
	struct anchormap_stats a, b;
	long bad = 0;
	u64 k;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 50), 0);
	anchormap_stats(m, &a);
	for (k = 0; k < 20000; k++) {
		bad += anchormap_remove(m, &k) != 1;
		bad += am_t_put(m, k + 50) != 1;
	}
	EXPECT_EQ(bad, 0);
	anchormap_stats(m, &b);
	EXPECT_EQ(b.len, 50);
	EXPECT_EQ(b.index_used, 50);
	EXPECT_EQ(am_t_index_changes(&a, &b), 0);
	EXPECT_EQ(am_t_count_bad(m, 20000, 20050), 0);
	EXPECT_EQ(am_t_count_present(m, 0, 20000), 0);
	am_t_del(m);
}

/*
 * Churn that fills an index with tombstones brings rebuilds.  The indexes
 * they replace take, in groups, at most what the current one does (each
 * index has a 128-byte header besides): userspace keeps them until an
 * exclusive operation, so the first keeps the size and the second doubles
 * it; the kernel frees them after a grace period, keeps none and never
 * grows the index for churn.
 */
TEST(tombstone_rebuilds_keep_replaced_within_current)
{
	struct anchormap *m = am_t_new(1000, NULL);
	struct anchormap_stats s0, s;
	size_t slots[3];
	long bad = 0;
	u64 k, seen = 0;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 1000), 0);
	anchormap_stats(m, &s0);
	slots[0] = s0.slots;
	for (k = 0; k < 1000000 && seen < 2; k++) {
		bad += anchormap_remove(m, &k) != 1;
		bad += am_t_put(m, k + 1000) != 1;
		anchormap_stats(m, &s);
		if (s.rebuilds == s0.rebuilds + seen)
			continue;
		seen = s.rebuilds - s0.rebuilds;
		if (seen <= 2)
			slots[seen] = s.slots;
		/* groups: every index, the current one too, has its header */
		EXPECT_LE(s.retired_bytes - seen * __ANCHORMAP_INDEX_HDR,
			  s.index_bytes - __ANCHORMAP_INDEX_HDR);
	}
	EXPECT_EQ(bad, 0);
	ASSERT_EQ(seen, 2);
	EXPECT_EQ(s.len, 1000);
#ifdef __KERNEL__
	EXPECT_EQ(s.retired_bytes, 0);
	EXPECT_EQ(slots[1], slots[0]);
	EXPECT_EQ(slots[2], slots[0]);
#else
	EXPECT_EQ(s.retired_bytes, s0.index_bytes * 2);
	EXPECT_EQ(slots[1], slots[0]);
	EXPECT_EQ(slots[2], slots[0] * 2);
#endif
	am_t_del(m);
}

/*
 * A removal from a group that a key passed (13 keys homed in a group of
 * 12) leaves a tombstone that stays counted until an insert reuses it, so
 * that such churn still brings the rebuild that clears overflow bits; the
 * key placed further on, in a group nobody passed, gives its slot back.
 */
TEST(removal_from_passed_group_keeps_slot_counted)
{
	struct anchormap *m = am_t_new_homed(am_t_hash_home_0);
	struct anchormap_stats s;
	u64 k;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 13), 0);	/* 0..11 in group 0, 12 in group 1 */
	anchormap_stats(m, &s);
	EXPECT_EQ(s.index_used, 13);
	k = 3;				/* group 0: key 12 passed it */
	EXPECT_EQ(anchormap_remove(m, &k), 1);
	anchormap_stats(m, &s);
	EXPECT_EQ(s.index_used, 13);
	k = 12;				/* group 1: nobody passed it */
	EXPECT_EQ(anchormap_remove(m, &k), 1);
	anchormap_stats(m, &s);
	EXPECT_EQ(s.index_used, 12);
	EXPECT_EQ(am_t_put(m, 50), 1);	/* takes key 3's tombstone */
	anchormap_stats(m, &s);
	EXPECT_EQ(s.index_used, 12);
	EXPECT_EQ(s.len, 12);
	EXPECT_EQ(am_t_count_bad(m, 0, 3), 0);
	EXPECT_EQ(am_t_count_bad(m, 4, 12), 0);
	EXPECT_EQ(am_t_count_bad(m, 50, 51), 0);
	EXPECT_EQ(am_t_count_present(m, 3, 4) + am_t_count_present(m, 12, 13), 0);
	am_t_del(m);
}

/* After compaction the removed entries are gone. */
TEST_WITH(u64map, compaction_reclaims_removed_entries)
{
	struct anchormap *m = self->m;
	u64 k = 6;

	EXPECT_EQ(am_t_fill(m, 0, 50), 0);
	EXPECT_EQ(anchormap_remove(m, &k), 1);
	EXPECT_EQ(anchormap_shrink_to_fit(m), 0);
	EXPECT_EQ(am_t_deleted(m), 0);
	EXPECT_EQ(am_t_put(m, k), 1);
	EXPECT_EQ(am_t_deleted(m), 0);
	EXPECT_EQ(am_t_count_bad(m, 0, 50), 0);
	EXPECT_EQ(anchormap_len(m), 50);
}

/* Keys removed and re-inserted mid-walk are not yielded twice. */
TEST_WITH(u64map, iter_reinserted_keys_not_twice)
{
	struct anchormap_iter *it = am_test_alloc(sizeof(*it));
	struct anchormap *m = self->m;
	u8 *seen = am_test_alloc(1000);
	long twice = 0, n = 0;
	const void *kp;
	u64 k;

	ASSERT_NOT_NULL(it);
	ASSERT_NOT_NULL(seen);
	memset(seen, 0, 1000);
	EXPECT_EQ(am_t_fill(m, 0, 1000), 0);
	anchormap_for_each(m, it, &kp, NULL) {
		k = am_tu_rd64(kp);
		if (k < 1000)
			twice += seen[k]++ != 0;
		if (++n == 500) {
			/* every key out and back in with the same bytes */
			for (k = 0; k < 1000; k++) {
				twice += anchormap_remove(m, &k) != 1;
				twice += am_t_put(m, k) != 1;
			}
		}
	}
	EXPECT_EQ(twice, 0);
	EXPECT_GE(n, 500);
	EXPECT_EQ(anchormap_len(m), 1000);
	am_test_free(seen);
	am_test_free(it);
}

TEST_WITH(u64map, remove_updates_len_and_deleted)
{
	struct anchormap *m = self->m;

	EXPECT_EQ(am_t_fill(m, 0, 10), 0);
	EXPECT_EQ(am_t_deleted(m), 0);
	EXPECT_EQ(am_t_remove_step(m, 0, 4, 1), 0);
	EXPECT_EQ(anchormap_len(m), 6);
	EXPECT_EQ(am_t_deleted(m), 4);
}

/* ---- get_or_insert family ---- */

TEST_WITH(u64map, get_or_insert_inserts_absent)
{
	struct anchormap *m = self->m;
	u64 k = 1, v = 111;
	const void *p;

	p = anchormap_get_or_insert(m, &k, &v);
	ASSERT_FALSE(IS_ERR_OR_NULL(p));
	EXPECT_EQ(am_tu_rd64(p), 111);
	EXPECT_EQ(anchormap_get(m, &k), p);
	EXPECT_EQ(anchormap_len(m), 1);
}

TEST_WITH(u64map, get_or_insert_returns_existing)
{
	struct anchormap *m = self->m;
	u64 k = 1, v1 = 111, v2 = 222;
	const void *p;

	EXPECT_EQ(anchormap_insert(m, &k, &v1), 1);
	p = anchormap_get_or_insert(m, &k, &v2);
	ASSERT_FALSE(IS_ERR_OR_NULL(p));
	EXPECT_EQ(p, anchormap_get(m, &k));
	EXPECT_EQ(am_tu_rd64(p), 111);
	EXPECT_EQ(anchormap_len(m), 1);
}

TEST_WITH(u64map, get_or_insert_null_value_is_zero)
{
	struct anchormap *m = self->m;
	u64 k = 1;
	const void *p;

	p = anchormap_get_or_insert(m, &k, NULL);
	ASSERT_FALSE(IS_ERR_OR_NULL(p));
	EXPECT_EQ(am_tu_rd64(p), 0);
}

TEST_WITH(u64map, get_or_insert_with_init_once)
{
	struct anchormap *m = self->m;
	struct am_t_init_arg a = { .fill = 0xabcdef };
	const void *p1, *p2;
	u64 k = 21;

	p1 = anchormap_get_or_insert_with(m, &k, am_t_init_fn, &a);
	p2 = anchormap_get_or_insert_with(m, &k, am_t_init_fn, &a);
	ASSERT_FALSE(IS_ERR_OR_NULL(p1));
	EXPECT_EQ(p1, p2);
	EXPECT_EQ(a.calls, 1);
	EXPECT_EQ(am_tu_rd64(p1), 0xabcdef);
	EXPECT_EQ(anchormap_len(m), 1);
}

TEST_WITH(u64map, get_or_insert_with_init_sees_key_and_zero)
{
	struct anchormap *m = self->m;
	struct am_t_init_arg a = { .fill = 5 };
	const void *p;
	u64 k = 0x1122334455667788ULL;

	p = anchormap_get_or_insert_with(m, &k, am_t_init_fn, &a);
	ASSERT_FALSE(IS_ERR_OR_NULL(p));
	EXPECT_EQ(a.key_seen, k);
	EXPECT_TRUE(a.value_was_zero);
}

TEST_WITH(u64map, get_or_insert_with_present_skips_init)
{
	struct anchormap *m = self->m;
	struct am_t_init_arg a = { .fill = 5 };
	const void *p;
	u64 k = 3;

	EXPECT_EQ(am_t_put(m, k), 1);
	p = anchormap_get_or_insert_with(m, &k, am_t_init_fn, &a);
	ASSERT_FALSE(IS_ERR_OR_NULL(p));
	EXPECT_EQ(a.calls, 0);
	EXPECT_EQ(am_tu_rd64(p), am_tu_val(k));
}

TEST_WITH(u64map, get_or_try_insert_with_success)
{
	struct anchormap *m = self->m;
	struct am_t_init_arg a = { .fill = 77, .ret = 0 };
	const void *p;
	u64 k = 4;

	p = anchormap_get_or_try_insert_with(m, &k, am_t_try_init_fn, &a);
	ASSERT_FALSE(IS_ERR_OR_NULL(p));
	EXPECT_EQ(a.calls, 1);
	EXPECT_EQ(am_tu_rd64(p), 77);
	EXPECT_EQ(anchormap_get(m, &k), p);
	p = anchormap_get_or_try_insert_with(m, &k, am_t_try_init_fn, &a);
	EXPECT_EQ(a.calls, 1);
	EXPECT_EQ(anchormap_get(m, &k), p);
}

TEST_WITH(u64map, get_or_try_insert_with_error)
{
	struct anchormap *m = self->m;
	struct am_t_init_arg a = { .fill = 77, .ret = -EIO };
	const void *p;
	u64 k = 4;

	p = anchormap_get_or_try_insert_with(m, &k, am_t_try_init_fn, &a);
	ASSERT_TRUE(IS_ERR(p));
	EXPECT_EQ(PTR_ERR(p), -EIO);
	EXPECT_EQ(a.calls, 1);
	EXPECT_FALSE(anchormap_contains_key(m, &k));
	EXPECT_NULL(anchormap_get(m, &k));
	EXPECT_EQ(anchormap_len(m), 0);
}

TEST_WITH(u64map, get_or_try_insert_with_error_counts_deleted)
{
	struct anchormap *m = self->m;
	struct am_t_init_arg a = { .ret = -EINTR };
	const void *p;
	u64 k = 4;

	p = anchormap_get_or_try_insert_with(m, &k, am_t_try_init_fn, &a);
	EXPECT_TRUE(IS_ERR(p));
	EXPECT_EQ(am_t_deleted(m), 1);
}

TEST_WITH(relmap, get_or_try_insert_with_error_never_released)
{
	struct am_t_init_arg a = { .ret = -EAGAIN };
	const void *p;
	u64 k = 4;

	p = anchormap_get_or_try_insert_with(self->m, &k, am_t_try_init_fn, &a);
	EXPECT_TRUE(IS_ERR(p));
	am_t_destroy_now(&self->m);
	EXPECT_EQ(self->r->calls, 0);
}

TEST_WITH(u64map, get_or_try_insert_with_retry_after_error)
{
	struct anchormap *m = self->m;
	struct am_t_init_arg a = { .fill = 9, .ret = -ENOSPC };
	const void *p;
	u64 k = 4;

	p = anchormap_get_or_try_insert_with(m, &k, am_t_try_init_fn, &a);
	EXPECT_TRUE(IS_ERR(p));
	a.ret = 0;
	a.fill = 10;
	p = anchormap_get_or_try_insert_with(m, &k, am_t_try_init_fn, &a);
	ASSERT_FALSE(IS_ERR_OR_NULL(p));
	EXPECT_EQ(am_tu_rd64(p), 10);
	EXPECT_TRUE(a.value_was_zero);
	EXPECT_EQ(a.calls, 2);
	EXPECT_EQ(anchormap_len(m), 1);
}

/*
 * An init code out of its contract (positive, or below -MAX_ERRNO) would
 * come back as a pointer IS_ERR does not recognise: it is one defined error.
 */
TEST_WITH(u64map, get_or_try_insert_with_out_of_contract_codes_are_einval)
{
	static const int codes[] = { -5000, 5000, INT_MIN, INT_MAX, 1, -MAX_ERRNO - 1 };
	struct anchormap *m = self->m;
	struct am_t_init_arg a = { .fill = 5 };
	const void *p;
	unsigned int i;
	u64 k = 4;

	for (i = 0; i < ARRAY_SIZE(codes); i++) {
		a.ret = codes[i];
		p = anchormap_get_or_try_insert_with(m, &k, am_t_try_init_fn, &a);
		ASSERT_TRUE(IS_ERR(p));
		EXPECT_EQ(PTR_ERR(p), -EINVAL);
		EXPECT_FALSE(anchormap_contains_key(m, &k));
	}
	/* the edge of the contract still passes through */
	a.ret = -MAX_ERRNO;
	p = anchormap_get_or_try_insert_with(m, &k, am_t_try_init_fn, &a);
	ASSERT_TRUE(IS_ERR(p));
	EXPECT_EQ(PTR_ERR(p), -MAX_ERRNO);
	EXPECT_EQ(anchormap_len(m), 0);
	EXPECT_EQ(am_t_deleted(m), ARRAY_SIZE(codes) + 1);
}

/* ---- capacity, reserve, len ---- */

TEST_WITH(u64map, len_and_is_empty)
{
	struct anchormap *m = self->m;

	EXPECT_EQ(anchormap_len(m), 0);
	EXPECT_TRUE(anchormap_is_empty(m));
	EXPECT_EQ(am_t_fill(m, 0, 3), 0);
	EXPECT_EQ(anchormap_len(m), 3);
	EXPECT_FALSE(anchormap_is_empty(m));
	EXPECT_EQ(am_t_remove_step(m, 0, 3, 1), 0);
	EXPECT_EQ(anchormap_len(m), 0);
	EXPECT_TRUE(anchormap_is_empty(m));
}

TEST_WITH(u64map, len_counts_many)
{
	struct anchormap *m = self->m;

	EXPECT_EQ(am_t_fill(m, 0, 3000), 0);
	EXPECT_EQ(anchormap_len(m), 3000);
	EXPECT_EQ(am_t_remove_step(m, 0, 3000, 3), 0);
	EXPECT_EQ(anchormap_len(m), 2000);
}

TEST_WITH(u64map, reserve_grows_capacity)
{
	struct anchormap *m = self->m;

	EXPECT_EQ(anchormap_reserve(m, 1000), 0);
	EXPECT_GE(anchormap_capacity(m), 1000);
}

TEST(reserve_prevents_growth)
{
	struct anchormap *m = am_t_new(16, NULL);
	size_t segs;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 10), 0);
	ASSERT_EQ(anchormap_reserve(m, 5000), 0);
	segs = am_t_segments(m);
	EXPECT_EQ(am_t_fill(m, 10, 5010), 0);
	EXPECT_EQ(am_t_segments(m), segs);
	EXPECT_EQ(am_t_count_bad(m, 0, 5010), 0);
	am_t_del(m);
}

TEST(reserve_zero_is_noop)
{
	struct anchormap *m = am_t_new(16, NULL);
	size_t segs;

	ASSERT_NOT_NULL(m);
	segs = am_t_segments(m);
	EXPECT_EQ(anchormap_reserve(m, 0), 0);
	EXPECT_EQ(am_t_segments(m), segs);
	am_t_del(m);
}

TEST(reserve_absurd_fails_cleanly)
{
	struct anchormap *m = am_t_new(16, NULL);
	const void **ptrs;
	size_t cap;
	long live;
	int ret;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 10), 0);
	ptrs = am_t_grab(m, 10);
	ASSERT_NOT_NULL(ptrs);
	cap = anchormap_capacity(m);
	live = anchormap_debug_allocs_live();
	ret = anchormap_reserve(m, SIZE_MAX);
	EXPECT_EQ(ret, -ENOMEM);
	ret = anchormap_reserve(m, SIZE_MAX / 2);
	EXPECT_EQ(ret, -ENOMEM);
	EXPECT_EQ(anchormap_debug_allocs_live(), live);
	EXPECT_EQ(anchormap_capacity(m), cap);
	EXPECT_EQ(am_t_count_moved(m, ptrs, 0, 10, 1), 0);
	am_test_free(ptrs);
	am_t_del(m);
}

/* ---- stats ---- */

TEST(stats_fresh_map)
{
	struct anchormap *m = am_t_new(100, NULL);
	struct anchormap_stats st;

	ASSERT_NOT_NULL(m);
	anchormap_stats(m, &st);
	EXPECT_EQ(st.len, 0);
	EXPECT_GE(st.capacity, 100);
	EXPECT_EQ(st.capacity, anchormap_capacity(m));
	EXPECT_EQ(st.segments, 1);
	EXPECT_GE(st.slots, st.capacity);
	EXPECT_EQ(st.deleted, 0);
	EXPECT_GT(st.bytes, 0);
	EXPECT_TRUE(am_t_streq(st.name, "anchormap"));
	am_t_del(m);
}

TEST(stats_name_from_params)
{
	static const char name[] = "am_selftest_map";
	struct anchormap_params p;
	struct anchormap_stats st;
	struct anchormap *m;

	am_t_params(&p, 8, 8);
	p.name = name;
	m = am_t_new_params(&p, 0);
	ASSERT_NOT_NULL(m);
	anchormap_stats(m, &st);
	EXPECT_TRUE(am_t_streq(st.name, name));
	am_t_del(m);
}

TEST_WITH(u64map, stats_track_growth)
{
	struct anchormap *m = self->m;
	struct anchormap_stats a, b;

	anchormap_stats(m, &a);
	EXPECT_EQ(am_t_fill(m, 0, 5000), 0);
	EXPECT_EQ(am_t_remove_step(m, 0, 5000, 10), 0);
	anchormap_stats(m, &b);
	EXPECT_EQ(b.len, 4500);
	EXPECT_EQ(b.len, anchormap_len(m));
	EXPECT_EQ(b.deleted, 500);
	EXPECT_GT(b.segments, a.segments);
	EXPECT_GT(b.slots, a.slots);
	EXPECT_GT(b.bytes, a.bytes);
	EXPECT_GE(b.slots, 5000);
	EXPECT_LE(b.segments, ANCHORMAP_MAX_SEGMENTS);
	/* one thread never finds its own stripe taken */
	EXPECT_EQ(b.contended, 0);
}

static const struct am_test_case am_api_cases[] = {
	AM_TEST_ENTRY(init_null_args)
	AM_TEST_ENTRY(init_rejects_zero_key_size)
	AM_TEST_ENTRY(init_key_and_value_size_limits)
	AM_TEST_ENTRY(init_rejects_bad_value_align)
	AM_TEST_ENTRY(init_accepts_good_value_align)
	AM_TEST_ENTRY(init_rejects_bad_flags)
	AM_TEST_ENTRY(init_atomic_flag_works)
	AM_TEST_ENTRY(init_rejects_absurd_capacity)
	AM_TEST_ENTRY(init_zero_capacity_usable)
	AM_TEST_ENTRY(init_capacity_honoured)
	AM_TEST_ENTRY(init_capacity_prevents_growth)
	AM_TEST_ENTRY(insert_null_args)
	AM_TEST_ENTRY(remove_null_args)
	AM_TEST_ENTRY(get_or_insert_null_args)
	AM_TEST_ENTRY(remove_entry_null_args)
	AM_TEST_ENTRY(reserve_null_map)
	AM_TEST_ENTRY(clone_null_args)
	AM_TEST_ENTRY(entry_null_args)
	AM_TEST_ENTRY(extend_null_args)
	AM_TEST_ENTRY(extend_rejects_n_above_int_max)
	AM_TEST_ENTRY(u64map_insert_new_returns_one)
	AM_TEST_ENTRY(u64map_insert_present_keeps_first_value)
	AM_TEST_ENTRY(u64map_insert_null_value_is_zero)
	AM_TEST_ENTRY(u64map_get_absent_is_null)
	AM_TEST_ENTRY(u64map_get_returns_stable_pointer)
	AM_TEST_ENTRY(insert_copies_key_and_value)
	AM_TEST_ENTRY(get_key_value_returns_stored_key)
	AM_TEST_ENTRY(get_key_value_absent)
	AM_TEST_ENTRY(contains_key_tracks_membership)
	AM_TEST_ENTRY(remove_present_then_absent)
	AM_TEST_ENTRY(remove_keeps_held_pointer_bytes)
	AM_TEST_ENTRY(reinsert_after_remove_uses_new_slot)
	AM_TEST_ENTRY(reinsert_same_bytes_gets_new_entry)
	AM_TEST_ENTRY(removed_entries_never_reused_for_other_keys)
	AM_TEST_ENTRY(keys_past_full_home_group_found)
	AM_TEST_ENTRY(reinsert_with_release_releases_each_entry)
	AM_TEST_ENTRY(reinsert_with_init_function_gets_new_entry)
	AM_TEST_ENTRY(toggled_member_leaves_index_clean)
	AM_TEST_ENTRY(churn_in_groups_with_room_needs_no_rebuild)
	AM_TEST_ENTRY(removal_from_passed_group_keeps_slot_counted)
	AM_TEST_ENTRY(tombstone_rebuilds_keep_replaced_within_current)
	AM_TEST_ENTRY(compaction_reclaims_removed_entries)
	AM_TEST_ENTRY(iter_reinserted_keys_not_twice)
	AM_TEST_ENTRY(remove_updates_len_and_deleted)
	AM_TEST_ENTRY(get_or_insert_inserts_absent)
	AM_TEST_ENTRY(get_or_insert_returns_existing)
	AM_TEST_ENTRY(get_or_insert_null_value_is_zero)
	AM_TEST_ENTRY(get_or_insert_with_init_once)
	AM_TEST_ENTRY(get_or_insert_with_init_sees_key_and_zero)
	AM_TEST_ENTRY(get_or_insert_with_present_skips_init)
	AM_TEST_ENTRY(get_or_try_insert_with_success)
	AM_TEST_ENTRY(get_or_try_insert_with_error)
	AM_TEST_ENTRY(get_or_try_insert_with_error_counts_deleted)
	AM_TEST_ENTRY(get_or_try_insert_with_error_never_released)
	AM_TEST_ENTRY(get_or_try_insert_with_retry_after_error)
	AM_TEST_ENTRY(get_or_try_insert_with_out_of_contract_codes_are_einval)
	AM_TEST_ENTRY(len_and_is_empty)
	AM_TEST_ENTRY(len_counts_many)
	AM_TEST_ENTRY(reserve_grows_capacity)
	AM_TEST_ENTRY(reserve_prevents_growth)
	AM_TEST_ENTRY(reserve_zero_is_noop)
	AM_TEST_ENTRY(reserve_absurd_fails_cleanly)
	AM_TEST_ENTRY(stats_fresh_map)
	AM_TEST_ENTRY(stats_name_from_params)
	AM_TEST_ENTRY(stats_track_growth)
};

static const struct am_test_suite am_api_suite = AM_TEST_SUITE(api);
