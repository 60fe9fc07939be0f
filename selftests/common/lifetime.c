// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * common/lifetime.c - an entry's life: release accounting, destroyed maps,
 * growth keeping every pointer.
 *
 * Part of the portable functional tests: common_tests.c includes it after
 * helpers.h (see there for the conventions).
 */

/* ---- release accounting ---- */

/*
 * One rule for every entry point: a destroyed map (and one whose init
 * failed after it was cleared) reads as empty and refuses writes with
 * -EINVAL; nothing crashes, not even the inline lookup.
 */
static void am_t_expect_dead(struct am_test_ctx *_ctx, struct anchormap *m)
{
	struct anchormap_iter it;
	const void *kp, *vp, *vals[2];
	u64 k = 3, v = 4, keys[2] = { 1, 2 };
	long n = 0;

	EXPECT_NULL(anchormap_get(m, &k));
	EXPECT_NULL(anchormap_get_fast(m, &k, am_t_u64_params));
	EXPECT_NULL(anchormap_get_key_value(m, &k, &vp));
	EXPECT_FALSE(anchormap_contains_key(m, &k));
	EXPECT_EQ(anchormap_insert(m, &k, &v), -EINVAL);
	EXPECT_EQ(anchormap_remove(m, &k), -EINVAL);
	EXPECT_EQ(PTR_ERR(anchormap_get_or_insert(m, &k, &v)), -EINVAL);
	EXPECT_EQ(PTR_ERR(anchormap_get_or_insert_with(m, &k, am_t_init_fn, NULL)), -EINVAL);
	EXPECT_EQ(anchormap_extend(m, keys, NULL, 2), -EINVAL);
	EXPECT_FALSE(anchormap_modify(m, &k, am_t_add_fn, NULL));
	EXPECT_NULL(anchormap_get_mut(m, &k));
	EXPECT_EQ(anchormap_reserve(m, 10), -EINVAL);
	EXPECT_EQ(anchormap_replace(m, &k, &v), -EINVAL);
	EXPECT_EQ(anchormap_insert_or_replace(m, &k, &v), -EINVAL);
	EXPECT_EQ(anchormap_remove_entry(m, &k, NULL, NULL), -EINVAL);
	EXPECT_EQ(anchormap_shrink_to_fit(m), -EINVAL);
	vals[0] = &v;
	vals[1] = &v;
	if (m) {	/* a map: every key missed */
		EXPECT_EQ(anchormap_get_many(m, keys, 2, vals), 0);
		EXPECT_TRUE(!vals[0] && !vals[1]);
	} else {	/* no map: an argument error */
		EXPECT_EQ(anchormap_get_many(m, keys, 2, vals), -EINVAL);
	}
	EXPECT_EQ(anchormap_len(m), 0);
	EXPECT_EQ(anchormap_capacity(m), 0);
	EXPECT_TRUE(anchormap_is_empty(m));
	anchormap_for_each(m, &it, &kp, &vp)
		n++;
	EXPECT_EQ(n, 0);
	anchormap_destroy(m);	/* again: nothing */
}

TEST(destroyed_map_reads_empty_and_refuses_writes)
{
	struct anchormap *m = am_test_alloc(sizeof(*m));
	struct anchormap_params p;

	ASSERT_NOT_NULL(m);
	am_t_params(&p, sizeof(u64), sizeof(u64));
	ASSERT_EQ(anchormap_init(m, &p, 100), 0);
	EXPECT_EQ(am_t_fill(m, 0, 50), 0);
	anchormap_destroy(m);
	am_t_expect_dead(_ctx, m);
	am_test_free(m);
}

TEST(failed_init_map_reads_empty_and_refuses_writes)
{
	struct anchormap *m = am_test_alloc(sizeof(*m));
	struct anchormap_params p;
	int err;

	ASSERT_NOT_NULL(m);
	am_t_params(&p, sizeof(u64), sizeof(u64));
	anchormap_debug_fail_nth(1);
	err = anchormap_init(m, &p, 100);
	anchormap_debug_fail_nth(0);
	EXPECT_EQ(err, -ENOMEM);
	am_t_expect_dead(_ctx, m);
	am_test_free(m);
}

/*
 * Params init rejects, on memory that held anything: the map reads as
 * empty and refuses writes as one whose allocation failed does.
 */
TEST(rejected_params_map_reads_empty_and_refuses_writes)
{
	struct anchormap *m = am_test_alloc(sizeof(*m));
	struct anchormap_params p;

	ASSERT_NOT_NULL(m);
	memset(m, 0xaa, sizeof(*m));
	am_t_params(&p, 0, sizeof(u64));		/* no key */
	EXPECT_EQ(anchormap_init(m, &p, 100), -EINVAL);
	am_t_expect_dead(_ctx, m);
	memset(m, 0xaa, sizeof(*m));
	am_t_params(&p, sizeof(u64), sizeof(u64));
	p.value_align = 3;				/* not a power of two */
	EXPECT_EQ(anchormap_init(m, &p, 100), -EINVAL);
	am_t_expect_dead(_ctx, m);
	EXPECT_EQ(anchormap_init(m, NULL, 100), -EINVAL);
	am_t_expect_dead(_ctx, m);
	am_test_free(m);
}

/* A NULL map: every call reads as an empty map and refuses writes. */
TEST(null_map_reads_empty_and_refuses_writes)
{
	am_t_expect_dead(_ctx, NULL);
}

TEST_WITH(relmap, release_once_on_destroy)
{
	struct am_t_rel *r = self->r;
	struct anchormap *m = self->m;

	EXPECT_EQ(am_t_fill(m, 0, 1000), 0);
	EXPECT_EQ(r->calls, 0);
	am_t_destroy_now(&self->m);
	EXPECT_EQ(r->calls, 1000);
	EXPECT_EQ(am_t_rel_count_not(r, 0, 1000, 1), 0);
	EXPECT_EQ(r->bad_value, 0);
}

TEST_WITH(relmap, release_removed_on_destroy)
{
	struct am_t_rel *r = self->r;
	struct anchormap *m = self->m;

	EXPECT_EQ(am_t_fill(m, 0, 1000), 0);
	EXPECT_EQ(am_t_remove_step(m, 0, 1000, 2), 0);
	/* removal under shared access must not release: readers may hold it */
	EXPECT_EQ(r->calls, 0);
	am_t_destroy_now(&self->m);
	EXPECT_EQ(r->calls, 1000);
	EXPECT_EQ(am_t_rel_count_not(r, 0, 1000, 1), 0);
}

TEST_WITH(relmap, release_not_on_duplicate_insert)
{
	struct am_t_rel *r = self->r;
	struct anchormap *m = self->m;

	EXPECT_EQ(am_t_fill(m, 0, 10), 0);
	EXPECT_EQ(am_t_put(m, 3), 0);
	EXPECT_EQ(r->calls, 0);
	am_t_destroy_now(&self->m);
	EXPECT_EQ(am_t_rel_count_not(r, 0, 10, 1), 0);
}

/*
 * One life through every reclaiming operation: each key must be released
 * exactly once, except those handed out by remove_entry (never).
 */
TEST_WITH(relmap, release_once_across_exclusive_ops)
{
	struct am_t_rel *r = self->r;
	struct anchormap *m = self->m;
	long calls = 0;
	u64 k;

	EXPECT_EQ(am_t_fill(m, 0, 1000), 0);
	EXPECT_EQ(am_t_remove_step(m, 0, 1000, 10), 0);	/* 100 removed */
	anchormap_retain(m, am_t_keep_even, &calls);		/* odd dropped */
	EXPECT_EQ(am_t_remove_step(m, 2, 1000, 10), 0);	/* 100 more */
	EXPECT_EQ(anchormap_shrink_to_fit(m), 0);
	for (k = 4; k < 1000; k += 10)
		EXPECT_EQ(anchormap_remove_entry(m, &k, NULL, NULL), 1);
	EXPECT_EQ(am_t_fill(m, 1000, 1100), 0);
	anchormap_clear(m);
	EXPECT_EQ(am_t_fill(m, 1100, 1200), 0);
	EXPECT_EQ(am_t_remove_step(m, 1100, 1200, 3), 0);
	am_t_destroy_now(&self->m);
	for (k = 0; k < 1200; k++) {
		u8 want = (k < 1000 && k % 10 == 4) ? 0 : 1;

		if (r->seen[k] != want) {
			am_test_log("key %llu released %u times, want %u",
				    (unsigned long long)k, r->seen[k], want);
			_ctx->failed = 1;
			break;
		}
	}
	EXPECT_EQ(r->calls, 1200 - 100);
	EXPECT_EQ(r->bad_value, 0);
}

/* ---- growth ---- */

TEST(growth_keeps_every_pointer)
{
	struct anchormap *m = am_t_new(16, NULL);
	const void **ptrs = am_test_alloc(20000 * sizeof(*ptrs));
	const void **keyp = am_test_alloc(20000 * sizeof(*keyp));
	long bad = 0;
	u64 k;

	ASSERT_NOT_NULL(m);
	ASSERT_NOT_NULL(ptrs);
	ASSERT_NOT_NULL(keyp);
	for (k = 0; k < 20000; k++) {
		u64 v = am_tu_val(k);

		ptrs[k] = anchormap_get_or_insert(m, &k, &v);
		if (IS_ERR_OR_NULL(ptrs[k])) {
			ptrs[k] = NULL;
			bad++;
			continue;
		}
		keyp[k] = anchormap_get_key_value(m, &k, NULL);
	}
	EXPECT_EQ(bad, 0);
	EXPECT_GE(am_t_segments(m), 8);
	EXPECT_EQ(anchormap_len(m), 20000);
	EXPECT_EQ(am_t_count_moved(m, ptrs, 0, 20000, 1), 0);
	for (k = 0, bad = 0; k < 20000; k++)
		bad += !keyp[k] || am_tu_rd64(keyp[k]) != k ||
		       anchormap_get_key_value(m, &k, NULL) != keyp[k];
	EXPECT_EQ(bad, 0);
	am_test_free(keyp);
	am_test_free(ptrs);
	am_t_del(m);
}

TEST_WITH(u64map, growth_from_zero_capacity)
{
	struct anchormap *m = self->m;
	size_t segs = 0, prev = 0;
	u64 k;
	long bad = 0;

	for (k = 0; k < 6000; k++) {
		bad += am_t_put(m, k) != 1;
		segs = am_t_segments(m);
		/* segments are only ever added */
		bad += segs < prev;
		prev = segs;
	}
	EXPECT_EQ(bad, 0);
	EXPECT_GT(segs, 1);
	EXPECT_EQ(am_t_count_bad(m, 0, 6000), 0);
}

TEST_WITH(u64map, growth_with_removes_interleaved)
{
	struct anchormap *m = self->m;
	long bad = 0;
	u64 k;

	for (k = 0; k < 4000; k++) {
		bad += am_t_put(m, k) != 1;
		if (k % 3 == 2) {
			u64 prev = k - 1;

			bad += anchormap_remove(m, &prev) != 1;
		}
	}
	EXPECT_EQ(bad, 0);
	for (k = 0; k < 4000; k++) {
		bool removed = k % 3 == 1 && k + 1 < 4000;

		bad += anchormap_contains_key(m, &k) == removed;
	}
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(anchormap_len(m), 4000 - 1333);
}

static const struct am_test_case am_lifetime_cases[] = {
	AM_TEST_ENTRY(destroyed_map_reads_empty_and_refuses_writes)
	AM_TEST_ENTRY(failed_init_map_reads_empty_and_refuses_writes)
	AM_TEST_ENTRY(rejected_params_map_reads_empty_and_refuses_writes)
	AM_TEST_ENTRY(null_map_reads_empty_and_refuses_writes)
	AM_TEST_ENTRY(release_once_on_destroy)
	AM_TEST_ENTRY(release_removed_on_destroy)
	AM_TEST_ENTRY(release_not_on_duplicate_insert)
	AM_TEST_ENTRY(release_once_across_exclusive_ops)
	AM_TEST_ENTRY(growth_keeps_every_pointer)
	AM_TEST_ENTRY(growth_from_zero_capacity)
	AM_TEST_ENTRY(growth_with_removes_interleaved)
};

static const struct am_test_suite am_lifetime_suite = AM_TEST_SUITE(lifetime);
