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

struct am_t_init_op {
	struct anchormap *m;
	struct anchormap_params p;
};

static int am_t_run_init(struct am_test_ctx *_ctx, void *arg)
{
	struct am_t_init_op *o = arg;

	return anchormap_init(o->m, &o->p, 1000);
}

TEST(fail_init)
{
	struct am_t_init_op o = { .m = am_test_alloc(sizeof(*o.m)) };
	struct am_t_fail f = { .run = am_t_run_init, .arg = &o, .ok = 0 };
	int ret;

	ASSERT_NOT_NULL(o.m);
	am_t_params(&o.p, 8, 8);
	ret = am_t_fail_each(_ctx, &f);
	EXPECT_EQ(ret, 0);
	EXPECT_GT(f.failures, 0);
	if (!ret) {
		EXPECT_EQ(am_t_fill(o.m, 0, 1000), 0);
		anchormap_destroy(o.m);
	}
	am_test_free(o.m);
}

/* Key @k going into @m, whose keys below @k are held in @ptrs. */
struct am_t_insert_op {
	struct anchormap *m;
	const void **ptrs;
	u64 k;
};

static int am_t_run_insert(struct am_test_ctx *_ctx, void *arg)
{
	struct am_t_insert_op *o = arg;
	u64 v = am_tu_val(o->k);

	return anchormap_insert(o->m, &o->k, &v);
}

static int am_t_run_get_or_insert(struct am_test_ctx *_ctx, void *arg)
{
	struct am_t_insert_op *o = arg;
	u64 v = am_tu_val(o->k);
	const void *p;

	p = anchormap_get_or_insert(o->m, &o->k, &v);
	return IS_ERR(p) ? (int)PTR_ERR(p) : 1;
}

/* An absent key: insert_or_replace must take the insert path (returns 0). */
static int am_t_run_insert_or_replace(struct am_test_ctx *_ctx, void *arg)
{
	struct am_t_insert_op *o = arg;
	u64 v = am_tu_val(o->k);

	return anchormap_insert_or_replace(o->m, &o->k, &v);
}

/* @k absent, every key below it where it was, with its value. */
static void am_t_insert_unchanged(struct am_test_ctx *_ctx, void *arg)
{
	struct am_t_insert_op *o = arg;

	EXPECT_FALSE(anchormap_contains_key(o->m, &o->k));
	EXPECT_EQ(anchormap_len(o->m), o->k);
	EXPECT_EQ(am_t_count_moved(o->m, o->ptrs, 0, o->k, 1), 0);
}

/*
 * Each insert of keys 0..n-1 (by @run, which returns @ok on success) is
 * retried with the 1st, 2nd... allocation failing until it goes through;
 * every failure must leave the map exactly as it was.
 */
static void am_t_fail_inserts(struct am_test_ctx *_ctx, u64 n,
			      int (*run)(struct am_test_ctx *_ctx, void *arg), int ok)
{
	struct am_t_insert_op o = {
		.m = am_t_new(0, NULL),
		.ptrs = am_test_alloc(n * sizeof(*o.ptrs)),
	};
	struct am_t_fail f = {
		.run = run, .unchanged = am_t_insert_unchanged,
		.arg = &o, .ok = ok,
	};

	if (!o.m || !o.ptrs) {
		EXPECT_TRUE(false);
		goto out;
	}
	for (o.k = 0; o.k < n; o.k++) {
		if (am_t_fail_each(_ctx, &f) != ok)
			goto out;
		o.ptrs[o.k] = anchormap_get(o.m, &o.k);
	}
	EXPECT_GT(f.failures, 0);
	EXPECT_EQ(anchormap_len(o.m), n);
	EXPECT_EQ(am_t_count_moved(o.m, o.ptrs, 0, n, 1), 0);
out:
	am_test_free(o.ptrs);
	am_t_del(o.m);
}

TEST(fail_insert_growth)
{
	am_t_fail_inserts(_ctx, 600, am_t_run_insert, 1);
}

TEST(fail_get_or_insert_growth)
{
	am_t_fail_inserts(_ctx, 300, am_t_run_get_or_insert, 1);
}

TEST(fail_insert_or_replace_absent_key_stays_absent)
{
	am_t_fail_inserts(_ctx, 600, am_t_run_insert_or_replace, 0);
}

/*
 * Keys 0..n-1 in @m, each given a new value in turn by insert_or_replace;
 * @ptrs hold the old values.  A replace takes a new entry, so replacing
 * them all outgrows the storage the inserts left.
 */
struct am_t_replace_op {
	struct anchormap *m;
	const void **ptrs;
	u64 n, k;
};

static int am_t_run_replace_present(struct am_test_ctx *_ctx, void *arg)
{
	struct am_t_replace_op *o = arg;
	u64 v = am_tu_val(o->k) + 1;

	return anchormap_insert_or_replace(o->m, &o->k, &v);
}

/* @k still at its old entry with its old value; no key gained or lost. */
static void am_t_replace_unchanged(struct am_test_ctx *_ctx, void *arg)
{
	struct am_t_replace_op *o = arg;

	EXPECT_EQ(anchormap_get(o->m, &o->k), o->ptrs[o->k]);
	EXPECT_EQ(am_tu_rd64(o->ptrs[o->k]), am_tu_val(o->k));
	EXPECT_EQ(anchormap_len(o->m), o->n);
	/* only the replaces that went through left an old entry behind */
	EXPECT_EQ(am_t_deleted(o->m), o->k);
}

TEST(fail_insert_or_replace_present_key_keeps_old_value)
{
	struct am_t_replace_op o = { .m = am_t_new(0, NULL), .n = 600 };
	struct am_t_fail f = {
		.run = am_t_run_replace_present, .unchanged = am_t_replace_unchanged,
		.arg = &o, .ok = 1,
	};
	long bad = 0;
	u64 k;

	ASSERT_NOT_NULL(o.m);
	EXPECT_EQ(am_t_fill(o.m, 0, o.n), 0);
	o.ptrs = am_t_grab(o.m, o.n);
	if (!o.ptrs) {
		EXPECT_TRUE(false);	/* out of memory */
		goto out;
	}
	for (o.k = 0; o.k < o.n; o.k++)
		if (am_t_fail_each(_ctx, &f) != 1)
			goto out;
	EXPECT_GT(f.failures, 0);
	for (k = 0; k < o.n; k++) {
		const void *v = anchormap_get(o.m, &k);

		bad += !v || am_tu_rd64(v) != am_tu_val(k) + 1;
	}
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(anchormap_len(o.m), o.n);
out:
	am_test_free(o.ptrs);
	am_t_del(o.m);
}

/* Key @k going into @m by one of the _with calls, built by am_t_init_fn(). */
struct am_t_with_op {
	struct anchormap *m;
	struct am_t_init_arg a;
	u64 k;
};

static int am_t_with_ret(const void *p)
{
	if (IS_ERR(p))
		return (int)PTR_ERR(p);
	return p ? 1 : -EINVAL;
}

static int am_t_run_get_or_insert_with(struct am_test_ctx *_ctx, void *arg)
{
	struct am_t_with_op *o = arg;

	o->a.fill = am_tu_val(o->k);
	return am_t_with_ret(anchormap_get_or_insert_with(o->m, &o->k, am_t_init_fn, &o->a));
}

static int am_t_run_get_or_try_insert_with(struct am_test_ctx *_ctx, void *arg)
{
	struct am_t_with_op *o = arg;

	o->a.fill = am_tu_val(o->k);
	return am_t_with_ret(anchormap_get_or_try_insert_with(o->m, &o->k,
							      am_t_try_init_fn, &o->a));
}

static int am_t_run_entry_or_insert_with(struct am_test_ctx *_ctx, void *arg)
{
	struct am_t_with_op *o = arg;
	struct anchormap_entry e;

	if (!anchormap_entry(o->m, &o->k, &e))
		return -EINVAL;
	o->a.fill = am_tu_val(o->k);
	return am_t_with_ret(anchormap_entry_or_insert_with(&e, am_t_init_fn, &o->a));
}

/* @k absent, and init ran once for each key before it, not for @k. */
static void am_t_with_unchanged(struct am_test_ctx *_ctx, void *arg)
{
	struct am_t_with_op *o = arg;

	EXPECT_FALSE(anchormap_contains_key(o->m, &o->k));
	EXPECT_EQ(anchormap_len(o->m), o->k);
	EXPECT_EQ(o->a.calls, o->k);
}

/* Keys 0..n-1 by @run, each retried with the 1st, 2nd... allocation failing. */
static void am_t_fail_with(struct am_test_ctx *_ctx, u64 n,
			   int (*run)(struct am_test_ctx *_ctx, void *arg))
{
	struct am_t_with_op o = { .m = am_t_new(0, NULL) };
	struct am_t_fail f = {
		.run = run, .unchanged = am_t_with_unchanged, .arg = &o, .ok = 1,
	};

	ASSERT_NOT_NULL(o.m);
	for (o.k = 0; o.k < n; o.k++)
		if (am_t_fail_each(_ctx, &f) != 1)
			break;
	EXPECT_GT(f.failures, 0);
	EXPECT_EQ(o.a.calls, n);
	EXPECT_EQ(am_t_count_bad(o.m, 0, n), 0);
	am_t_del(o.m);
}

TEST(fail_get_or_insert_with_skips_init)
{
	am_t_fail_with(_ctx, 300, am_t_run_get_or_insert_with);
}

TEST(fail_get_or_try_insert_with_skips_init)
{
	am_t_fail_with(_ctx, 300, am_t_run_get_or_try_insert_with);
}

TEST(fail_entry_or_insert_with_skips_init)
{
	am_t_fail_with(_ctx, 300, am_t_run_entry_or_insert_with);
}

/* The entry of key k, looked up afresh each run (a lookup allocates nothing). */
static int am_t_run_entry_insert(struct am_test_ctx *_ctx, void *arg)
{
	struct am_t_insert_op *o = arg;
	struct anchormap_entry e;
	u64 v = am_tu_val(o->k);
	void *p;

	if (!anchormap_entry(o->m, &o->k, &e))
		return -EINVAL;
	p = anchormap_entry_or_insert(&e, &v);
	if (IS_ERR(p))
		return (int)PTR_ERR(p);
	return p ? 1 : -EINVAL;
}

static void am_t_entry_insert_unchanged(struct am_test_ctx *_ctx, void *arg)
{
	struct am_t_insert_op *o = arg;

	EXPECT_FALSE(anchormap_contains_key(o->m, &o->k));
	EXPECT_EQ(anchormap_len(o->m), o->k);
}

TEST(fail_entry_or_insert_growth)
{
	struct am_t_insert_op o = { .m = am_t_new(0, NULL) };
	struct am_t_fail f = {
		.run = am_t_run_entry_insert, .unchanged = am_t_entry_insert_unchanged,
		.arg = &o, .ok = 1,
	};

	ASSERT_NOT_NULL(o.m);
	for (o.k = 0; o.k < 200; o.k++)
		if (am_t_fail_each(_ctx, &f) != 1)
			break;
	EXPECT_GT(f.failures, 0);
	EXPECT_EQ(am_t_count_bad(o.m, 0, 200), 0);
	am_t_del(o.m);
}

/*
 * A whole-map operation on @m (into @dst for clone), and what a failed run
 * must leave as it was: @m's stats and the held pointers of keys
 * [from, to) by @step.
 */
struct am_t_map_op {
	struct anchormap *m;
	struct anchormap *dst;
	const void **ptrs;
	u64 from, to, step;
	struct anchormap_stats before;
};

static void am_t_map_op_start(struct am_test_ctx *_ctx, struct am_t_map_op *o,
			      u64 from, u64 to, u64 step)
{
	o->ptrs = am_t_grab(o->m, to);
	ASSERT_NOT_NULL(o->ptrs);
	o->from = from;
	o->to = to;
	o->step = step;
	anchormap_stats(o->m, &o->before);
}

static void am_t_map_unchanged(struct am_test_ctx *_ctx, void *arg)
{
	struct am_t_map_op *o = arg;
	struct anchormap_stats st;

	anchormap_stats(o->m, &st);
	EXPECT_EQ(st.len, o->before.len);
	EXPECT_EQ(st.segments, o->before.segments);
	EXPECT_EQ(st.deleted, o->before.deleted);
	EXPECT_EQ(st.capacity, o->before.capacity);
	EXPECT_EQ(am_t_count_moved(o->m, o->ptrs, o->from, o->to, o->step), 0);
}

static int am_t_run_reserve(struct am_test_ctx *_ctx, void *arg)
{
	struct am_t_map_op *o = arg;

	return anchormap_reserve(o->m, 10000);
}

TEST(fail_reserve)
{
	struct am_t_map_op o = { .m = am_t_new(16, NULL) };
	struct am_t_fail f = {
		.run = am_t_run_reserve, .unchanged = am_t_map_unchanged,
		.arg = &o, .ok = 0,
	};

	ASSERT_NOT_NULL(o.m);
	EXPECT_EQ(am_t_fill(o.m, 0, 100), 0);
	am_t_map_op_start(_ctx, &o, 0, 100, 1);
	if (!_ctx->failed) {
		EXPECT_EQ(am_t_fail_each(_ctx, &f), 0);
		EXPECT_GT(f.failures, 0);
		EXPECT_GE(anchormap_capacity(o.m), 10000);
		EXPECT_EQ(am_t_count_moved(o.m, o.ptrs, 0, 100, 1), 0);
	}
	am_test_free(o.ptrs);
	am_t_del(o.m);
}

static int am_t_run_clone(struct am_test_ctx *_ctx, void *arg)
{
	struct am_t_map_op *o = arg;

	return anchormap_clone(o->dst, o->m);
}

TEST(fail_clone)
{
	struct am_t_map_op o = { .m = am_t_new(0, NULL), .dst = am_test_alloc(sizeof(*o.dst)) };
	struct am_t_fail f = {
		.run = am_t_run_clone, .unchanged = am_t_map_unchanged,
		.arg = &o, .ok = 0,
	};

	if (!o.m || !o.dst) {
		EXPECT_TRUE(false);	/* out of memory */
		goto out;
	}
	EXPECT_EQ(am_t_fill(o.m, 0, 1500), 0);
	EXPECT_EQ(am_t_remove_step(o.m, 0, 1500, 7), 0);
	/* the source unchanged: its live keys (not multiples of 7) held */
	am_t_map_op_start(_ctx, &o, 1, 1500, 7);
	if (_ctx->failed)
		goto out;
	if (am_t_fail_each(_ctx, &f) == 0) {
		EXPECT_TRUE(anchormap_equal(o.dst, o.m));
		EXPECT_EQ(anchormap_len(o.dst), 1500 - 215);
		anchormap_destroy(o.dst);
	}
	EXPECT_GT(f.failures, 0);
	EXPECT_EQ(am_t_count_moved(o.m, o.ptrs, 1, 1500, 7), 0);
out:
	am_test_free(o.ptrs);
	am_test_free(o.dst);
	am_t_del(o.m);
}

/* A clone of @src into @dst; its source releases into @r. */
struct am_t_clone_op {
	struct anchormap *src;
	struct anchormap *dst;
	struct am_t_rel *r;
};

static int am_t_run_clone_rel(struct am_test_ctx *_ctx, void *arg)
{
	struct am_t_clone_op *o = arg;

	return anchormap_clone(o->dst, o->src);
}

/* The half-made copy shares @release and its resources with the source. */
static void am_t_clone_released_nothing(struct am_test_ctx *_ctx, void *arg)
{
	struct am_t_clone_op *o = arg;

	EXPECT_EQ(o->r->calls, 0);
}

TEST_WITH(relmap, fail_clone_releases_nothing)
{
	struct am_t_clone_op o = {
		.src = self->m, .dst = am_test_alloc(sizeof(*o.dst)), .r = self->r,
	};
	struct am_t_fail f = {
		.run = am_t_run_clone_rel, .unchanged = am_t_clone_released_nothing,
		.arg = &o, .ok = 0,
	};

	ASSERT_NOT_NULL(o.dst);
	EXPECT_EQ(am_t_fill(o.src, 0, 1500), 0);
	/* removed entries too: the source owns them, a failed clone must not */
	EXPECT_EQ(am_t_remove_step(o.src, 0, 1500, 7), 0);
	if (am_t_fail_each(_ctx, &f) == 0) {
		EXPECT_EQ(self->r->calls, 0);
		anchormap_destroy(o.dst);
	}
	EXPECT_GT(f.failures, 0);
	am_test_free(o.dst);
}

/* A failed compaction has dropped the replaced indexes, nothing else. */
static void am_t_shrink_unchanged(struct am_test_ctx *_ctx, void *arg)
{
	struct am_t_map_op *o = arg;

	EXPECT_EQ(am_t_retired_bytes(o->m), 0);
	am_t_map_unchanged(_ctx, arg);
}

static int am_t_run_shrink(struct am_test_ctx *_ctx, void *arg)
{
	struct am_t_map_op *o = arg;

	return anchormap_shrink_to_fit(o->m);
}

TEST(fail_shrink_to_fit)
{
	struct am_t_map_op o = { .m = am_t_new(0, NULL) };
	struct am_t_fail f = {
		.run = am_t_run_shrink, .unchanged = am_t_shrink_unchanged,
		.arg = &o, .ok = 0, .frees_first = true,
	};
	struct anchormap_stats st;

	ASSERT_NOT_NULL(o.m);
	EXPECT_EQ(am_t_fill(o.m, 0, 2000), 0);
	EXPECT_EQ(am_t_remove_step(o.m, 0, 2000, 2), 0);
	/* "the map unchanged": even the odd keys' pointers hold */
	am_t_map_op_start(_ctx, &o, 1, 2000, 2);
	if (!_ctx->failed) {
		EXPECT_EQ(am_t_fail_each(_ctx, &f), 0);
		EXPECT_GT(f.failures, 0);
		anchormap_stats(o.m, &st);
		/* a failed allocation of the tail's own arena keeps arena K instead */
		EXPECT_LT(st.entries, o.before.entries);
		EXPECT_EQ(st.retired_bytes, 0);
		EXPECT_EQ(st.deleted, 0);
		EXPECT_EQ(st.len, 1000);
		EXPECT_EQ(am_t_count_bad_sparse(o.m, 2000, 2), 0);
	}
	am_test_free(o.ptrs);
	am_t_del(o.m);
}

TEST_WITH(u64map, fail_extend_keeps_prefix)
{
	struct anchormap *m = self->m;
	u64 *keys = am_test_alloc(2000 * sizeof(u64));
	long live, present, bad = 0;
	u64 i;
	int ret;

	ASSERT_NOT_NULL(keys);
	if (anchormap_capacity(m) >= 2000) {
		am_test_free(keys);
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
}

static bool am_t_keep_odd(const void *key, void *value, void *arg)
{
	return am_tu_rd64(key) & 1;
}

/*
 * retain() compacts after filtering; when that allocation fails the map
 * must still be right: kept entries there, dropped ones gone (released
 * once), their slots counted as deleted.
 */
TEST_WITH(relmap, fail_retain_compaction_keeps_map_correct)
{
	struct am_t_rel *rel = self->r;
	struct anchormap *m = self->m;
	long live;
	u64 k;

	EXPECT_EQ(am_t_fill(m, 0, 1000), 0);
	live = anchormap_debug_allocs_live();
	anchormap_debug_fail_nth(1);
	anchormap_retain(m, am_t_keep_odd, NULL);
	anchormap_debug_fail_nth(0);
	/* nothing new; only the replaced indexes are freed */
	EXPECT_LE(anchormap_debug_allocs_live(), live);
	EXPECT_EQ(am_t_retired_bytes(m), 0);
	EXPECT_EQ(anchormap_len(m), 500);
	EXPECT_EQ(am_t_deleted(m), 500);
	for (k = 0; k < 1000; k++)
		EXPECT_EQ(anchormap_contains_key(m, &k), (bool)(k & 1));
	EXPECT_EQ(rel->calls, 500);
	EXPECT_EQ(anchormap_shrink_to_fit(m), 0);	/* tombstones go now, no release */
	EXPECT_EQ(am_t_deleted(m), 0);
	EXPECT_EQ(rel->calls, 500);
	am_t_destroy_now(&self->m);
	EXPECT_EQ(rel->calls, 1000);
	EXPECT_EQ(am_t_rel_count_not(rel, 0, 1000, 1), 0);
}

static const struct am_test_case am_alloc_fail_cases[] = {
	AM_TEST_ENTRY(fail_init)
	AM_TEST_ENTRY(fail_insert_growth)
	AM_TEST_ENTRY(fail_get_or_insert_growth)
	AM_TEST_ENTRY(fail_insert_or_replace_absent_key_stays_absent)
	AM_TEST_ENTRY(fail_insert_or_replace_present_key_keeps_old_value)
	AM_TEST_ENTRY(fail_get_or_insert_with_skips_init)
	AM_TEST_ENTRY(fail_get_or_try_insert_with_skips_init)
	AM_TEST_ENTRY(fail_entry_or_insert_with_skips_init)
	AM_TEST_ENTRY(fail_entry_or_insert_growth)
	AM_TEST_ENTRY(fail_reserve)
	AM_TEST_ENTRY(fail_clone)
	AM_TEST_ENTRY(fail_clone_releases_nothing)
	AM_TEST_ENTRY(fail_shrink_to_fit)
	AM_TEST_ENTRY(fail_extend_keeps_prefix)
	AM_TEST_ENTRY(fail_retain_compaction_keeps_map_correct)
};

static const struct am_test_suite am_alloc_fail_suite = AM_TEST_SUITE(alloc_fail);
