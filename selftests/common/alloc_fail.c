// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * common/alloc_fail.c - allocation failure injection
 * (anchormap_debug_fail_nth): every operation that allocates fails cleanly
 * and leaves the map as it was.
 *
 * Part of the portable functional tests: common_tests.c includes it after
 * helpers.h (see there for the conventions).
 */

/* ---- allocation failure injection ---- */

TEST(fail_init)
{
	struct anchormap *m = am_test_alloc(sizeof(*m));
	struct anchormap_params p;
	long live, n, failures = 0;
	int ret = -1;

	ASSERT_NOT_NULL(m);
	am_t_params(&p, 8, 8);
	for (n = 1; n <= AM_T_MAX_ALLOC_TRIES; n++) {
		live = anchormap_debug_allocs_live();
		anchormap_debug_fail_nth(n);
		ret = anchormap_init(m, &p, 1000);
		anchormap_debug_fail_nth(0);
		if (!ret)
			break;
		failures++;
		EXPECT_EQ(ret, -ENOMEM);
		EXPECT_EQ(anchormap_debug_allocs_live(), live);
		if (_ctx->failed)
			break;
	}
	EXPECT_EQ(ret, 0);
	EXPECT_GT(failures, 0);
	if (!ret) {
		EXPECT_EQ(am_t_fill(m, 0, 1000), 0);
		anchormap_destroy(m);
	}
	am_test_free(m);
}

/*
 * Each insert of keys 0..n-1 is retried with the 1st, 2nd... allocation
 * failing until it goes through; every failure must leave the map exactly
 * as it was.  @use_goi: go through get_or_insert instead of insert.
 */
static void am_t_fail_inserts(struct am_test_ctx *_ctx, u64 n, bool use_goi)
{
	struct anchormap *m = am_t_new(0, NULL);
	const void **ptrs = am_test_alloc(n * sizeof(*ptrs));
	long live, tries, failures = 0;
	u64 k;
	int ret;

	if (!m || !ptrs) {
		EXPECT_TRUE(false);
		goto out;
	}
	for (k = 0; k < n && !_ctx->failed; k++) {
		for (tries = 1; ; tries++) {
			u64 v = am_t_val(k);
			const void *p = NULL;

			if (tries > AM_T_MAX_ALLOC_TRIES) {
				EXPECT_TRUE(false);
				goto out;
			}
			live = anchormap_debug_allocs_live();
			anchormap_debug_fail_nth(tries);
			if (use_goi) {
				p = anchormap_get_or_insert(m, &k, &v);
				ret = IS_ERR(p) ? (int)PTR_ERR(p) : 1;
			} else {
				ret = anchormap_insert(m, &k, &v);
			}
			anchormap_debug_fail_nth(0);
			if (ret == 1)
				break;
			failures++;
			EXPECT_EQ(ret, -ENOMEM);
			EXPECT_EQ(anchormap_debug_allocs_live(), live);
			EXPECT_FALSE(anchormap_contains_key(m, &k));
			EXPECT_EQ(anchormap_len(m), k);
			EXPECT_EQ(am_t_count_moved(m, ptrs, 0, k, 1), 0);
			if (_ctx->failed)
				goto out;
		}
		ptrs[k] = anchormap_get(m, &k);
	}
	EXPECT_GT(failures, 0);
	EXPECT_EQ(anchormap_len(m), n);
	EXPECT_EQ(am_t_count_moved(m, ptrs, 0, n, 1), 0);
out:
	anchormap_debug_fail_nth(0);
	am_test_free(ptrs);
	am_t_del(m);
}

TEST(fail_insert_growth)
{
	am_t_fail_inserts(_ctx, 600, false);
}

TEST(fail_get_or_insert_growth)
{
	am_t_fail_inserts(_ctx, 300, true);
}

TEST(fail_entry_or_insert_growth)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct anchormap_entry e;
	long live, tries, failures = 0;
	void *p = NULL;
	u64 k, v;

	ASSERT_NOT_NULL(m);
	for (k = 0; k < 200 && !_ctx->failed; k++) {
		v = am_t_val(k);
		for (tries = 1; tries <= AM_T_MAX_ALLOC_TRIES; tries++) {
			live = anchormap_debug_allocs_live();
			if (!anchormap_entry(m, &k, &e)) {
				EXPECT_TRUE(false);
				break;
			}
			anchormap_debug_fail_nth(tries);
			p = anchormap_entry_or_insert(&e, &v);
			anchormap_debug_fail_nth(0);
			if (!IS_ERR(p))
				break;
			failures++;
			EXPECT_EQ(PTR_ERR(p), -ENOMEM);
			EXPECT_EQ(anchormap_debug_allocs_live(), live);
			EXPECT_FALSE(anchormap_contains_key(m, &k));
			EXPECT_EQ(anchormap_len(m), k);
			if (_ctx->failed)
				break;
		}
		EXPECT_FALSE(IS_ERR_OR_NULL(p));
	}
	EXPECT_GT(failures, 0);
	EXPECT_EQ(am_t_count_bad(m, 0, 200), 0);
	am_t_del(m);
}

TEST(fail_reserve)
{
	struct anchormap *m = am_t_new(16, NULL);
	const void **ptrs;
	struct anchormap_stats st;
	long live, n, failures = 0;
	size_t cap;
	int ret = -1;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 100), 0);
	ptrs = am_t_grab(m, 100);
	ASSERT_NOT_NULL(ptrs);
	cap = anchormap_capacity(m);
	for (n = 1; n <= AM_T_MAX_ALLOC_TRIES; n++) {
		live = anchormap_debug_allocs_live();
		anchormap_stats(m, &st);
		anchormap_debug_fail_nth(n);
		ret = anchormap_reserve(m, 10000);
		anchormap_debug_fail_nth(0);
		if (!ret)
			break;
		failures++;
		EXPECT_EQ(ret, -ENOMEM);
		EXPECT_EQ(anchormap_debug_allocs_live(), live);
		EXPECT_EQ(anchormap_capacity(m), cap);
		EXPECT_EQ(am_t_segments(m), st.segments);
		EXPECT_EQ(am_t_count_moved(m, ptrs, 0, 100, 1), 0);
		if (_ctx->failed)
			break;
	}
	EXPECT_EQ(ret, 0);
	EXPECT_GT(failures, 0);
	EXPECT_GE(anchormap_capacity(m), 10000);
	EXPECT_EQ(am_t_count_moved(m, ptrs, 0, 100, 1), 0);
	am_test_free(ptrs);
	am_t_del(m);
}

TEST(fail_clone)
{
	struct anchormap *src = am_t_new(0, NULL);
	struct anchormap *dst = am_test_alloc(sizeof(*dst));
	const void **ptrs;
	long live, n, failures = 0;
	int ret = -1;

	ASSERT_NOT_NULL(src);
	ASSERT_NOT_NULL(dst);
	EXPECT_EQ(am_t_fill(src, 0, 1500), 0);
	EXPECT_EQ(am_t_remove_step(src, 0, 1500, 7), 0);
	ptrs = am_t_grab(src, 1500);
	ASSERT_NOT_NULL(ptrs);
	for (n = 1; n <= AM_T_MAX_ALLOC_TRIES; n++) {
		live = anchormap_debug_allocs_live();
		anchormap_debug_fail_nth(n);
		ret = anchormap_clone(dst, src);
		anchormap_debug_fail_nth(0);
		if (!ret)
			break;
		failures++;
		EXPECT_EQ(ret, -ENOMEM);
		EXPECT_EQ(anchormap_debug_allocs_live(), live);
		if (_ctx->failed)
			break;
	}
	EXPECT_EQ(ret, 0);
	EXPECT_GT(failures, 0);
	if (!ret) {
		EXPECT_TRUE(anchormap_equal(dst, src));
		EXPECT_EQ(anchormap_len(dst), 1500 - 215);
		anchormap_destroy(dst);
	}
	EXPECT_EQ(am_t_count_moved(src, ptrs, 1, 1500, 7), 0);
	am_test_free(ptrs);
	am_test_free(dst);
	am_t_del(src);
}

TEST(fail_shrink_to_fit)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct anchormap_stats before, st;
	const void **ptrs;
	long live, n, failures = 0;
	int ret = -1;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 2000), 0);
	EXPECT_EQ(am_t_remove_step(m, 0, 2000, 2), 0);
	ptrs = am_t_grab(m, 2000);
	ASSERT_NOT_NULL(ptrs);
	anchormap_stats(m, &before);
	for (n = 1; n <= AM_T_MAX_ALLOC_TRIES; n++) {
		live = anchormap_debug_allocs_live();
		anchormap_debug_fail_nth(n);
		ret = anchormap_shrink_to_fit(m);
		anchormap_debug_fail_nth(0);
		if (!ret)
			break;
		failures++;
		EXPECT_EQ(ret, -ENOMEM);
		EXPECT_EQ(anchormap_debug_allocs_live(), live);
		anchormap_stats(m, &st);
		EXPECT_EQ(st.len, before.len);
		EXPECT_EQ(st.segments, before.segments);
		EXPECT_EQ(st.deleted, before.deleted);
		EXPECT_EQ(st.capacity, before.capacity);
		/* "the map unchanged": even the odd keys' pointers hold */
		EXPECT_EQ(am_t_count_moved(m, ptrs, 1, 2000, 2), 0);
		if (_ctx->failed)
			break;
	}
	EXPECT_EQ(ret, 0);
	EXPECT_GT(failures, 0);
	anchormap_stats(m, &st);
	EXPECT_EQ(st.segments, 1);
	EXPECT_EQ(st.deleted, 0);
	EXPECT_EQ(st.len, 1000);
	EXPECT_EQ(am_t_count_bad_sparse(m, 2000, 2), 0);
	am_test_free(ptrs);
	am_t_del(m);
}

TEST(fail_extend_keeps_prefix)
{
	struct anchormap *m = am_t_new(0, NULL);
	u64 *keys = am_test_alloc(2000 * sizeof(u64));
	long live, present, bad = 0;
	u64 i;
	int ret;

	ASSERT_NOT_NULL(m);
	ASSERT_NOT_NULL(keys);
	if (anchormap_capacity(m) >= 2000) {
		am_test_free(keys);
		am_t_del(m);
		SKIP("initial segment already holds 2000 keys");
	}
	for (i = 0; i < 2000; i++)
		keys[i] = i * 7 + 3;
	live = anchormap_debug_allocs_live();
	anchormap_debug_fail_nth(1);
	ret = anchormap_extend(m, keys, NULL, 2000);
	anchormap_debug_fail_nth(0);
	EXPECT_EQ(ret, -ENOMEM);
	EXPECT_EQ(anchormap_debug_allocs_live(), live);
	present = (long)anchormap_len(m);
	for (i = 0; i < 2000; i++)
		bad += anchormap_contains_key(m, &keys[i]) != (i < (u64)present);
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(anchormap_extend(m, keys, NULL, 2000), 2000 - present);
	EXPECT_EQ(anchormap_len(m), 2000);
	am_test_free(keys);
	am_t_del(m);
}

static bool am_t_keep_odd(const void *key, void *value, void *arg)
{
	return am_t_rd64(key) & 1;
}

/*
 * retain() compacts after filtering; when that allocation fails the map
 * must still be right: kept entries there, dropped ones gone (released
 * once), their slots counted as deleted.
 */
TEST(fail_retain_compaction_keeps_map_correct)
{
	struct am_t_rel *rel = am_t_rel_new(1000);
	struct anchormap *m = am_t_new(0, rel);
	long live;
	u64 k;

	ASSERT_NOT_NULL(rel);
	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 1000), 0);
	live = anchormap_debug_allocs_live();
	anchormap_debug_fail_nth(1);
	anchormap_retain(m, am_t_keep_odd, NULL);
	anchormap_debug_fail_nth(0);
	EXPECT_EQ(anchormap_debug_allocs_live(), live);	/* nothing new, nothing freed */
	EXPECT_EQ(anchormap_len(m), 500);
	EXPECT_EQ(am_t_deleted(m), 500);
	for (k = 0; k < 1000; k++)
		EXPECT_EQ(anchormap_contains_key(m, &k), (bool)(k & 1));
	EXPECT_EQ(rel->calls, 500);
	EXPECT_EQ(anchormap_shrink_to_fit(m), 0);	/* tombstones go now, no release */
	EXPECT_EQ(am_t_deleted(m), 0);
	EXPECT_EQ(rel->calls, 500);
	am_t_del(m);
	EXPECT_EQ(rel->calls, 1000);
	EXPECT_EQ(am_t_rel_count_not(rel, 0, 1000, 1), 0);
	am_t_rel_del(rel);
}

/*
 * Key 0 removed and re-inserted before the walk (its copy moves to group
 * 1); a removal on its stripe during the walk must not hide it.
 */
TEST(iter_reinserted_before_walk_seen_once)
{
	struct anchormap *m = am_t_new_homed(am_t_hash_home_0);
	struct anchormap_iter *it = am_test_alloc(sizeof(*it));
	const void *k;
	int seen0 = 0, n = 0;
	u64 key;

	ASSERT_NOT_NULL(m);
	ASSERT_NOT_NULL(it);
	EXPECT_EQ(am_t_fill(m, 0, 16), 0);	/* group 0 full, key 0 first */
	EXPECT_EQ(am_t_put(m, 100), 1);		/* group 7: walked first */
	key = 0;
	EXPECT_EQ(anchormap_remove(m, &key), 1);
	EXPECT_EQ(am_t_put(m, 0), 1);		/* lands in group 1 */
	anchormap_for_each(m, it, &k, NULL) {
		if (n++ == 0) {
			key = 5;	/* a removal on the same stripe, mid-walk */
			EXPECT_EQ(anchormap_remove(m, &key), 1);
		}
		seen0 += am_t_rd64(k) == 0;
	}
	EXPECT_EQ(seen0, 1);
	EXPECT_GE(n, 15);
	am_test_free(it);
	am_t_del(m);
}

/*
 * Key 0 yielded, then removed and re-inserted mid-walk at a wrapped probe
 * position (group 7 is full, so group 0): it must not come again.
 */
TEST(iter_reinserted_at_wrapped_position_not_twice)
{
	struct anchormap *m = am_t_new_homed(am_t_hash_home_7);
	struct anchormap_iter *it = am_test_alloc(sizeof(*it));
	const void *k;
	int seen0 = 0, n = 0;
	u64 key;

	ASSERT_NOT_NULL(m);
	ASSERT_NOT_NULL(it);
	EXPECT_EQ(am_t_fill(m, 0, 16), 0);	/* group 7 full */
	anchormap_for_each(m, it, &k, NULL) {
		n++;
		if (am_t_rd64(k) != 0)
			continue;
		if (++seen0 == 1) {
			key = 0;
			EXPECT_EQ(anchormap_remove(m, &key), 1);
			EXPECT_EQ(am_t_put(m, 0), 1);	/* wraps to group 0 */
		}
	}
	EXPECT_EQ(seen0, 1);
	EXPECT_EQ(n, 16);
	EXPECT_TRUE(anchormap_contains_key(m, &key));
	am_test_free(it);
	am_t_del(m);
}

static const struct am_test_case am_alloc_fail_cases[] = {
	AM_TEST_ENTRY(fail_init)
	AM_TEST_ENTRY(fail_insert_growth)
	AM_TEST_ENTRY(fail_get_or_insert_growth)
	AM_TEST_ENTRY(fail_entry_or_insert_growth)
	AM_TEST_ENTRY(fail_reserve)
	AM_TEST_ENTRY(fail_clone)
	AM_TEST_ENTRY(fail_shrink_to_fit)
	AM_TEST_ENTRY(fail_extend_keeps_prefix)
	AM_TEST_ENTRY(fail_retain_compaction_keeps_map_correct)
	AM_TEST_ENTRY(iter_reinserted_before_walk_seen_once)
	AM_TEST_ENTRY(iter_reinserted_at_wrapped_position_not_twice)
};

static const struct am_test_suite am_alloc_fail_suite = AM_TEST_SUITE(alloc_fail);
