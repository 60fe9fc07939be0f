// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * common/iter.c - iteration: anchormap_iter_*, anchormap_for_each.
 *
 * Part of the portable functional tests: common_tests.c includes it after
 * helpers.h (see there for the conventions).
 */

/* ---- iteration ---- */

TEST_WITH(u64map, iter_empty_map)
{
	struct anchormap *m = self->m;
	struct anchormap_iter *it = am_test_alloc(sizeof(*it));
	const void *k, *v;

	ASSERT_NOT_NULL(it);
	anchormap_iter_init(it, m);
	EXPECT_FALSE(anchormap_iter_next(it, &k, &v));
	am_test_free(it);
}

/* Walks @m, counting each key of [0, n) in @seen; returns keys out of range. */
static long am_t_walk(const struct anchormap *m, struct anchormap_iter *it,
		      u8 *seen, u64 n, long *wrong_value)
{
	const void *kp, *vp;
	long stray = 0;
	u64 k;

	anchormap_iter_init(it, m);
	while (anchormap_iter_next(it, &kp, &vp)) {
		k = am_tu_rd64(kp);
		if (k >= n) {
			stray++;
			continue;
		}
		if (seen[k] < 255)
			seen[k]++;
		if (am_tu_rd64(vp) != am_tu_val(k))
			(*wrong_value)++;
	}
	return stray;
}

TEST_WITH(u64map, iter_each_key_once)
{
	struct anchormap *m = self->m;
	struct anchormap_iter *it = am_test_alloc(sizeof(*it));
	u8 *seen = am_test_alloc(1000);
	long wrong = 0, bad = 0;
	u64 k;

	ASSERT_NOT_NULL(it);
	ASSERT_NOT_NULL(seen);
	EXPECT_EQ(am_t_fill(m, 0, 1000), 0);
	EXPECT_EQ(am_t_walk(m, it, seen, 1000, &wrong), 0);
	for (k = 0; k < 1000; k++)
		bad += seen[k] != 1;
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(wrong, 0);
	am_test_free(seen);
	am_test_free(it);
}

TEST_WITH(u64map, iter_skips_removed)
{
	struct anchormap *m = self->m;
	struct anchormap_iter *it = am_test_alloc(sizeof(*it));
	u8 *seen = am_test_alloc(200);
	long wrong = 0, bad = 0;
	u64 k;

	ASSERT_NOT_NULL(it);
	ASSERT_NOT_NULL(seen);
	EXPECT_EQ(am_t_fill(m, 0, 200), 0);
	EXPECT_EQ(am_t_remove_step(m, 1, 200, 2), 0);
	EXPECT_EQ(am_t_walk(m, it, seen, 200, &wrong), 0);
	for (k = 0; k < 200; k++)
		bad += seen[k] != !(k & 1);
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(wrong, 0);
	am_test_free(seen);
	am_test_free(it);
}

TEST_WITH(u64map, iter_null_outputs)
{
	struct anchormap *m = self->m;
	struct anchormap_iter *it = am_test_alloc(sizeof(*it));
	long n = 0;

	ASSERT_NOT_NULL(it);
	EXPECT_EQ(am_t_fill(m, 0, 300), 0);
	anchormap_iter_init(it, m);
	while (anchormap_iter_next(it, NULL, NULL) && n < 1000)
		n++;
	EXPECT_EQ(n, 300);
	am_test_free(it);
}

TEST_WITH(u64map, iter_end_is_sticky)
{
	struct anchormap *m = self->m;
	struct anchormap_iter *it = am_test_alloc(sizeof(*it));
	long n = 0;

	ASSERT_NOT_NULL(it);
	EXPECT_EQ(am_t_fill(m, 0, 40), 0);
	anchormap_iter_init(it, m);
	while (anchormap_iter_next(it, NULL, NULL) && n < 100)
		n++;
	EXPECT_EQ(n, 40);
	EXPECT_FALSE(anchormap_iter_next(it, NULL, NULL));
	EXPECT_FALSE(anchormap_iter_next(it, NULL, NULL));
	am_test_free(it);
}

TEST_WITH(u64map, iter_pointers_match_lookup)
{
	struct anchormap *m = self->m;
	struct anchormap_iter *it = am_test_alloc(sizeof(*it));
	const void *kp, *vp, *lv;
	long bad = 0;

	ASSERT_NOT_NULL(it);
	EXPECT_EQ(am_t_fill(m, 0, 500), 0);
	anchormap_iter_init(it, m);
	while (anchormap_iter_next(it, &kp, &vp)) {
		lv = NULL;
		bad += anchormap_get_key_value(m, kp, &lv) != kp || lv != vp;
	}
	EXPECT_EQ(bad, 0);
	am_test_free(it);
}

TEST_WITH(u64map, for_each_visits_all)
{
	struct anchormap *m = self->m;
	struct anchormap_iter *it = am_test_alloc(sizeof(*it));
	const void *kp, *vp;
	u64 sum = 0, n = 0;

	ASSERT_NOT_NULL(it);
	EXPECT_EQ(am_t_fill(m, 1, 101), 0);
	anchormap_for_each(m, it, &kp, &vp) {
		sum += am_tu_rd64(kp);
		n++;
	}
	EXPECT_EQ(n, 100);
	EXPECT_EQ(sum, 5050);
	am_test_free(it);
}

TEST_WITH(u64map, iter_next_mut_writes_values)
{
	struct anchormap *m = self->m;
	struct anchormap_iter *it = am_test_alloc(sizeof(*it));
	const void *kp;
	void *vp;
	long n = 0, bad = 0;
	u64 k;

	ASSERT_NOT_NULL(it);
	EXPECT_EQ(am_t_fill(m, 0, 300), 0);
	anchormap_iter_init(it, m);
	while (anchormap_iter_next_mut(it, &kp, &vp)) {
		am_tu_wr64(vp, am_tu_rd64(kp) + 1000000);
		n++;
	}
	EXPECT_EQ(n, 300);
	for (k = 0; k < 300; k++) {
		const void *v = anchormap_get(m, &k);

		bad += !v || am_tu_rd64(v) != k + 1000000;
	}
	EXPECT_EQ(bad, 0);
	am_test_free(it);
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
		seen0 += am_tu_rd64(k) == 0;
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
		if (am_tu_rd64(k) != 0)
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

static const struct am_test_case am_iter_cases[] = {
	AM_TEST_ENTRY(iter_empty_map)
	AM_TEST_ENTRY(iter_each_key_once)
	AM_TEST_ENTRY(iter_skips_removed)
	AM_TEST_ENTRY(iter_null_outputs)
	AM_TEST_ENTRY(iter_end_is_sticky)
	AM_TEST_ENTRY(iter_pointers_match_lookup)
	AM_TEST_ENTRY(for_each_visits_all)
	AM_TEST_ENTRY(iter_next_mut_writes_values)
	AM_TEST_ENTRY(iter_reinserted_before_walk_seen_once)
	AM_TEST_ENTRY(iter_reinserted_at_wrapped_position_not_twice)
};

static const struct am_test_suite am_iter_suite = AM_TEST_SUITE(iter);
