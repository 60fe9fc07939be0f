// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * common/replace.c - anchormap_replace() and
 * anchormap_insert_or_replace().
 *
 * Part of the portable functional tests: common_tests.c includes it after
 * helpers.h (see there for the conventions).
 */

/* ---- replace and insert_or_replace ---- */

/* A replace gives the new value; the old entry's bytes stay for whoever holds them. */
TEST_WITH(u64map, replace_present_copy_on_write)
{
	struct anchormap *m = self->m;
	const u64 *held, *now;
	u64 k = 5, v = 77;

	ASSERT_EQ(am_t_put(m, k), 1);
	held = anchormap_get(m, &k);
	ASSERT_NOT_NULL(held);
	EXPECT_EQ(anchormap_replace(m, &k, &v), 1);
	now = anchormap_get(m, &k);
	ASSERT_NOT_NULL(now);
	EXPECT_EQ(*now, 77);
	EXPECT_TRUE(now != held);	/* a new entry */
	EXPECT_EQ(am_tu_rd64(held), am_tu_val(k));	/* unchanged */
	EXPECT_EQ(anchormap_len(m), 1);
	EXPECT_EQ(am_t_deleted(m), 1);	/* the old entry counts as removed */
}

TEST_WITH(u64map, replace_absent_changes_nothing)
{
	struct anchormap *m = self->m;
	u64 k = 5, v = 77;

	EXPECT_EQ(anchormap_replace(m, &k, &v), 0);
	EXPECT_NULL(anchormap_get(m, &k));
	EXPECT_EQ(anchormap_len(m), 0);
	ASSERT_EQ(am_t_put(m, k), 1);
	EXPECT_EQ(anchormap_remove(m, &k), 1);
	EXPECT_EQ(anchormap_replace(m, &k, &v), 0);	/* removed: absent */
	EXPECT_NULL(anchormap_get(m, &k));
}

TEST_WITH(u64map, replace_null_args)
{
	struct anchormap *m = self->m;
	u64 k = 5, v = 77;

	ASSERT_EQ(am_t_put(m, k), 1);
	EXPECT_EQ(anchormap_replace(NULL, &k, &v), -EINVAL);
	EXPECT_EQ(anchormap_replace(m, NULL, &v), -EINVAL);
	EXPECT_EQ(anchormap_replace(m, &k, NULL), -EINVAL);
	EXPECT_EQ(anchormap_insert_or_replace(NULL, &k, &v), -EINVAL);
	EXPECT_EQ(anchormap_insert_or_replace(m, NULL, &v), -EINVAL);
	EXPECT_EQ(anchormap_insert_or_replace(m, &k, NULL), -EINVAL);
	EXPECT_EQ(am_tu_rd64(anchormap_get(m, &k)), am_tu_val(k));
}

TEST_WITH(u64map, insert_or_replace_inserts_then_replaces)
{
	struct anchormap *m = self->m;
	u64 k = 9, v = 1;

	EXPECT_EQ(anchormap_insert_or_replace(m, &k, &v), 0);
	EXPECT_EQ(am_tu_rd64(anchormap_get(m, &k)), 1);
	v = 2;
	EXPECT_EQ(anchormap_insert_or_replace(m, &k, &v), 1);
	EXPECT_EQ(am_tu_rd64(anchormap_get(m, &k)), 2);
	EXPECT_EQ(anchormap_len(m), 1);
}

/*
 * Many replaces of many keys, through storage growth and index rebuilds:
 * every key holds its last value, every pointer taken before keeps its
 * bytes, a walk yields each key once, and removal takes each out for good
 * (no stale reference left in any index).
 */
TEST_WITH(u64map, replace_many_through_growth)
{
	struct anchormap *m = self->m;
	const u64 n = 3000;
	const void **held;
	struct anchormap_iter it;
	const void *kp, *vp;
	long bad = 0, seen = 0;
	u64 k, v, r;

	ASSERT_EQ(am_t_fill(m, 0, n), 0);
	held = am_t_grab(m, n);
	ASSERT_NOT_NULL(held);
	for (r = 1; r <= 4; r++)
		for (k = 0; k < n; k++) {
			v = r << 32 | k;
			bad += anchormap_replace(m, &k, &v) != 1;
		}
	EXPECT_EQ(bad, 0);
	for (k = 0; k < n; k++) {
		vp = anchormap_get(m, &k);
		bad += !vp || am_tu_rd64(vp) != (4ULL << 32 | k);
		bad += am_tu_rd64(held[k]) != am_tu_val(k);
	}
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(anchormap_len(m), n);
	EXPECT_EQ(am_t_deleted(m), 4 * n);
	anchormap_for_each(m, &it, &kp, &vp) {
		seen++;
		bad += am_tu_rd64(vp) != (4ULL << 32 | am_tu_rd64(kp));
	}
	EXPECT_EQ(seen, n);
	EXPECT_EQ(bad, 0);
	for (k = 0; k < n; k++) {
		bad += anchormap_remove(m, &k) != 1;
		bad += anchormap_get(m, &k) != NULL;
	}
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(anchormap_len(m), 0);
	am_test_free(held);
}

/* The old entries of replaces are released once, with their own values. */
TEST_WITH(relmap, replace_old_entries_released_once)
{
	struct am_t_rel *rel = self->r;
	struct anchormap *m = self->m;
	u64 k, v;

	rel->check_value = false;
	ASSERT_EQ(am_t_fill(m, 0, 10), 0);
	for (k = 0; k < 5; k++) {
		v = 1000 + k;
		EXPECT_EQ(anchormap_replace(m, &k, &v), 1);
	}
	EXPECT_EQ(anchormap_shrink_to_fit(m), 0);	/* reclaims the 5 old entries */
	EXPECT_EQ(am_t_rel_count_not(rel, 0, 5, 1), 0);
	EXPECT_EQ(am_t_rel_count_not(rel, 5, 10, 0), 0);
	for (k = 0; k < 5; k++)
		EXPECT_EQ(am_tu_rd64(anchormap_get(m, &k)), 1000 + k);
	am_t_destroy_now(&self->m);
	EXPECT_EQ(am_t_rel_count_not(rel, 0, 5, 2), 0);	/* the old entry, then the new */
	EXPECT_EQ(am_t_rel_count_not(rel, 5, 10, 1), 0);
}

/*
 * A replace whose storage cannot grow fails with -ENOMEM and leaves the
 * old value in place, at every allocation it makes.
 */
TEST_WITH(u64map, fail_replace_keeps_old_value)
{
	struct anchormap *m = self->m;
	long failures = 0, n;
	u64 k, v;
	int ret = 0;

	ASSERT_EQ(am_t_fill(m, 0, 64), 0);
	for (n = 0; n < 20000 && !_ctx->failed; n++) {
		k = (u64)n % 64;
		v = 1ULL << 40 | (u64)n;
		anchormap_debug_fail_nth(1);
		ret = anchormap_replace(m, &k, &v);
		anchormap_debug_fail_nth(0);
		if (ret == -ENOMEM) {
			failures++;
			EXPECT_NOT_NULL(anchormap_get(m, &k));
			ret = anchormap_replace(m, &k, &v);	/* and again, allowed to grow */
		}
		EXPECT_EQ(ret, 1);
		EXPECT_EQ(am_tu_rd64(anchormap_get(m, &k)), v);
		if (failures)
			break;
	}
	EXPECT_GT(failures, 0);	/* growth was really refused once */
	EXPECT_EQ(anchormap_len(m), 64);
}

static const struct am_test_case am_replace_cases[] = {
	AM_TEST_ENTRY(replace_present_copy_on_write)
	AM_TEST_ENTRY(replace_absent_changes_nothing)
	AM_TEST_ENTRY(replace_null_args)
	AM_TEST_ENTRY(insert_or_replace_inserts_then_replaces)
	AM_TEST_ENTRY(replace_many_through_growth)
	AM_TEST_ENTRY(replace_old_entries_released_once)
	AM_TEST_ENTRY(fail_replace_keeps_old_value)
};

static const struct am_test_suite am_replace_suite = AM_TEST_SUITE(replace);
