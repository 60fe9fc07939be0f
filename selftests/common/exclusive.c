// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * common/exclusive.c - the exclusive operations (get_mut, modify,
 * remove_entry) and the entry API.
 *
 * Part of the portable functional tests: common_tests.c includes it after
 * helpers.h (see there for the conventions).
 */

/* ---- exclusive: get_mut, modify, remove_entry ---- */

TEST_WITH(u64map, get_mut_writes_in_place)
{
	struct anchormap *m = self->m;
	u64 k = 8;
	void *p;

	EXPECT_EQ(am_t_put(m, k), 1);
	p = anchormap_get_mut(m, &k);
	ASSERT_NOT_NULL(p);
	am_tu_wr64(p, 4242);
	EXPECT_EQ(anchormap_get(m, &k), p);
	EXPECT_EQ(am_tu_rd64(anchormap_get(m, &k)), 4242);
}

TEST_WITH(u64map, get_mut_absent_is_null)
{
	struct anchormap *m = self->m;
	u64 k = 8;

	EXPECT_NULL(anchormap_get_mut(m, &k));
	EXPECT_EQ(am_t_put(m, k), 1);
	EXPECT_EQ(anchormap_remove(m, &k), 1);
	EXPECT_NULL(anchormap_get_mut(m, &k));
}

TEST_WITH(u64map, modify_runs_fn_on_present)
{
	struct anchormap *m = self->m;
	u64 arg[2] = { 5, 0 };
	u64 k = 8;

	EXPECT_EQ(am_t_put(m, k), 1);
	EXPECT_TRUE(anchormap_modify(m, &k, am_t_add_fn, arg));
	EXPECT_EQ(arg[1], 1);
	EXPECT_EQ(am_tu_rd64(anchormap_get(m, &k)), am_tu_val(k) + 5);
}

TEST_WITH(u64map, modify_absent_returns_false)
{
	struct anchormap *m = self->m;
	u64 arg[2] = { 5, 0 };
	u64 k = 8;

	EXPECT_FALSE(anchormap_modify(m, &k, am_t_add_fn, arg));
	EXPECT_EQ(arg[1], 0);
	EXPECT_EQ(anchormap_len(m), 0);
}

TEST_WITH(u64map, remove_entry_copies_out)
{
	struct anchormap *m = self->m;
	u64 k = 31, ko = 0, vo = 0;

	EXPECT_EQ(am_t_fill(m, 0, 50), 0);
	EXPECT_EQ(anchormap_remove_entry(m, &k, &ko, &vo), 1);
	EXPECT_EQ(ko, 31);
	EXPECT_EQ(vo, am_tu_val(31));
	EXPECT_EQ(anchormap_len(m), 49);
	EXPECT_NULL(anchormap_get(m, &k));
	EXPECT_EQ(am_t_count_bad(m, 0, 31), 0);
	EXPECT_EQ(am_t_count_bad(m, 32, 50), 0);
}

TEST_WITH(u64map, remove_entry_absent_returns_zero)
{
	struct anchormap *m = self->m;
	u64 k = 31, ko = 1, vo = 2;

	EXPECT_EQ(anchormap_remove_entry(m, &k, &ko, &vo), 0);
	EXPECT_EQ(am_t_put(m, k), 1);
	EXPECT_EQ(anchormap_remove(m, &k), 1);
	EXPECT_EQ(anchormap_remove_entry(m, &k, &ko, &vo), 0);
	EXPECT_EQ(ko, 1);
	EXPECT_EQ(vo, 2);
}

TEST_WITH(u64map, remove_entry_null_outputs)
{
	struct anchormap *m = self->m;
	u64 k = 31;

	EXPECT_EQ(am_t_put(m, k), 1);
	EXPECT_EQ(anchormap_remove_entry(m, &k, NULL, NULL), 1);
	EXPECT_EQ(anchormap_len(m), 0);
}

TEST_WITH(relmap, remove_entry_skips_release)
{
	struct am_t_rel *r = self->r;
	struct anchormap *m = self->m;
	u64 k = 17, ko, vo;

	EXPECT_EQ(am_t_fill(m, 0, 50), 0);
	EXPECT_EQ(anchormap_remove_entry(m, &k, &ko, &vo), 1);
	EXPECT_EQ(r->calls, 0);
	am_t_destroy_now(&self->m);
	EXPECT_EQ(r->calls, 49);
	EXPECT_EQ(r->seen[17], 0);
	EXPECT_EQ(r->bad_value, 0);
}

TEST_WITH(u64map, remove_entry_then_reinsert)
{
	struct anchormap *m = self->m;
	u64 k, bad = 0;

	EXPECT_EQ(am_t_fill(m, 0, 300), 0);
	for (k = 0; k < 300; k += 2)
		bad += anchormap_remove_entry(m, &k, NULL, NULL) != 1;
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(am_t_count_present(m, 0, 300), 150);
	EXPECT_EQ(am_t_fill(m, 1000, 1300), 0);
	for (k = 0, bad = 0; k < 300; k += 2)
		bad += am_t_put(m, k) != 1;
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(am_t_count_bad(m, 0, 300), 0);
	EXPECT_EQ(am_t_count_bad(m, 1000, 1300), 0);
	EXPECT_EQ(anchormap_len(m), 600);
}

/* ---- entry API ---- */

TEST_WITH(u64map, entry_vacant)
{
	struct anchormap *m = self->m;
	struct anchormap_entry e;
	u64 k = 6;

	ASSERT_EQ(anchormap_entry(m, &k, &e), &e);
	EXPECT_FALSE(anchormap_entry_is_occupied(&e));
	EXPECT_EQ(anchormap_len(m), 0);
	EXPECT_FALSE(anchormap_contains_key(m, &k));
}

TEST_WITH(u64map, entry_occupied)
{
	struct anchormap *m = self->m;
	struct anchormap_entry e;
	u64 k = 6;

	EXPECT_EQ(am_t_put(m, k), 1);
	ASSERT_EQ(anchormap_entry(m, &k, &e), &e);
	EXPECT_TRUE(anchormap_entry_is_occupied(&e));
}

TEST_WITH(u64map, entry_removed_key_is_vacant)
{
	struct anchormap *m = self->m;
	struct anchormap_entry e;
	u64 k = 6;

	EXPECT_EQ(am_t_put(m, k), 1);
	EXPECT_EQ(anchormap_remove(m, &k), 1);
	ASSERT_EQ(anchormap_entry(m, &k, &e), &e);
	EXPECT_FALSE(anchormap_entry_is_occupied(&e));
}

TEST_WITH(u64map, entry_or_insert_vacant_inserts)
{
	struct anchormap *m = self->m;
	struct anchormap_entry e;
	u64 k = 6, v = 66;
	void *p;

	ASSERT_NOT_NULL(anchormap_entry(m, &k, &e));
	p = anchormap_entry_or_insert(&e, &v);
	ASSERT_FALSE(IS_ERR_OR_NULL(p));
	EXPECT_EQ(am_tu_rd64(p), 66);
	EXPECT_EQ(anchormap_get(m, &k), p);
	EXPECT_EQ(anchormap_len(m), 1);
}

TEST_WITH(u64map, entry_or_insert_occupied_keeps_value)
{
	struct anchormap *m = self->m;
	struct anchormap_entry e;
	u64 k = 6, v = 66;
	void *p;

	EXPECT_EQ(am_t_put(m, k), 1);
	ASSERT_NOT_NULL(anchormap_entry(m, &k, &e));
	p = anchormap_entry_or_insert(&e, &v);
	ASSERT_FALSE(IS_ERR_OR_NULL(p));
	EXPECT_EQ(am_tu_rd64(p), am_tu_val(k));
	EXPECT_EQ(anchormap_get(m, &k), p);
	EXPECT_EQ(anchormap_len(m), 1);
}

TEST_WITH(u64map, entry_or_insert_null_is_zero)
{
	struct anchormap *m = self->m;
	struct anchormap_entry e;
	u64 k = 6;
	void *p;

	ASSERT_NOT_NULL(anchormap_entry(m, &k, &e));
	p = anchormap_entry_or_insert(&e, NULL);
	ASSERT_FALSE(IS_ERR_OR_NULL(p));
	EXPECT_EQ(am_tu_rd64(p), 0);
	EXPECT_TRUE(anchormap_contains_key(m, &k));
}

TEST_WITH(u64map, entry_or_insert_value_writable)
{
	struct anchormap *m = self->m;
	struct anchormap_entry e;
	u64 k = 6;
	void *p;

	ASSERT_NOT_NULL(anchormap_entry(m, &k, &e));
	p = anchormap_entry_or_insert(&e, NULL);
	ASSERT_FALSE(IS_ERR_OR_NULL(p));
	am_tu_wr64(p, 1234);
	EXPECT_EQ(am_tu_rd64(anchormap_get(m, &k)), 1234);
}

TEST_WITH(u64map, entry_and_modify_occupied)
{
	struct anchormap *m = self->m;
	struct anchormap_entry e;
	u64 arg[2] = { 10, 0 };
	u64 k = 6;

	EXPECT_EQ(am_t_put(m, k), 1);
	ASSERT_NOT_NULL(anchormap_entry(m, &k, &e));
	EXPECT_EQ(anchormap_entry_and_modify(&e, am_t_add_fn, arg), &e);
	EXPECT_EQ(arg[1], 1);
	EXPECT_EQ(am_tu_rd64(anchormap_get(m, &k)), am_tu_val(k) + 10);
}

TEST_WITH(u64map, entry_and_modify_vacant_skips)
{
	struct anchormap *m = self->m;
	struct anchormap_entry e;
	u64 arg[2] = { 10, 0 };
	u64 k = 6;

	ASSERT_NOT_NULL(anchormap_entry(m, &k, &e));
	EXPECT_EQ(anchormap_entry_and_modify(&e, am_t_add_fn, arg), &e);
	EXPECT_EQ(arg[1], 0);
	EXPECT_EQ(anchormap_len(m), 0);
}

TEST_WITH(u64map, entry_or_insert_with_vacant)
{
	struct anchormap *m = self->m;
	struct am_t_init_arg a = { .fill = 555 };
	struct anchormap_entry e;
	u64 k = 6;
	void *p;

	ASSERT_NOT_NULL(anchormap_entry(m, &k, &e));
	p = anchormap_entry_or_insert_with(&e, am_t_init_fn, &a);
	ASSERT_FALSE(IS_ERR_OR_NULL(p));
	EXPECT_EQ(a.calls, 1);
	EXPECT_EQ(a.key_seen, 6);
	EXPECT_TRUE(a.value_was_zero);
	EXPECT_EQ(am_tu_rd64(p), 555);
	EXPECT_EQ(anchormap_get(m, &k), p);
}

TEST_WITH(u64map, entry_or_insert_with_occupied_skips_init)
{
	struct anchormap *m = self->m;
	struct am_t_init_arg a = { .fill = 555 };
	struct anchormap_entry e;
	u64 k = 6;
	void *p;

	EXPECT_EQ(am_t_put(m, k), 1);
	ASSERT_NOT_NULL(anchormap_entry(m, &k, &e));
	p = anchormap_entry_or_insert_with(&e, am_t_init_fn, &a);
	ASSERT_FALSE(IS_ERR_OR_NULL(p));
	EXPECT_EQ(a.calls, 0);
	EXPECT_EQ(am_tu_rd64(p), am_tu_val(k));
}

/* The word-count idiom: and_modify(+1).or_insert(1), across growths. */
TEST_WITH(u64map, entry_counts_occurrences)
{
	struct anchormap *m = self->m;
	struct anchormap_entry e;
	u64 arg[2] = { 1, 0 };
	u64 one = 1, i, k, bad = 0;
	void *p;

	for (i = 0; i < 3000; i++) {
		k = i % 700;
		ASSERT_NOT_NULL(anchormap_entry(m, &k, &e));
		anchormap_entry_and_modify(&e, am_t_add_fn, arg);
		p = anchormap_entry_or_insert(&e, &one);
		ASSERT_FALSE(IS_ERR_OR_NULL(p));
	}
	EXPECT_EQ(anchormap_len(m), 700);
	for (k = 0; k < 700; k++) {
		const void *v = anchormap_get(m, &k);
		u64 want = 3000 / 700 + (k < 3000 % 700);

		bad += !v || am_tu_rd64(v) != want;
	}
	EXPECT_EQ(bad, 0);
}

static const struct am_test_case am_exclusive_cases[] = {
	AM_TEST_ENTRY(get_mut_writes_in_place)
	AM_TEST_ENTRY(get_mut_absent_is_null)
	AM_TEST_ENTRY(modify_runs_fn_on_present)
	AM_TEST_ENTRY(modify_absent_returns_false)
	AM_TEST_ENTRY(remove_entry_copies_out)
	AM_TEST_ENTRY(remove_entry_absent_returns_zero)
	AM_TEST_ENTRY(remove_entry_null_outputs)
	AM_TEST_ENTRY(remove_entry_skips_release)
	AM_TEST_ENTRY(remove_entry_then_reinsert)
	AM_TEST_ENTRY(entry_vacant)
	AM_TEST_ENTRY(entry_occupied)
	AM_TEST_ENTRY(entry_removed_key_is_vacant)
	AM_TEST_ENTRY(entry_or_insert_vacant_inserts)
	AM_TEST_ENTRY(entry_or_insert_occupied_keeps_value)
	AM_TEST_ENTRY(entry_or_insert_null_is_zero)
	AM_TEST_ENTRY(entry_or_insert_value_writable)
	AM_TEST_ENTRY(entry_and_modify_occupied)
	AM_TEST_ENTRY(entry_and_modify_vacant_skips)
	AM_TEST_ENTRY(entry_or_insert_with_vacant)
	AM_TEST_ENTRY(entry_or_insert_with_occupied_skips_init)
	AM_TEST_ENTRY(entry_counts_occurrences)
};

static const struct am_test_suite am_exclusive_suite = AM_TEST_SUITE(exclusive);
