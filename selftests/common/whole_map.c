// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * common/whole_map.c - whole-map operations: clear, drain, retain,
 * shrink_to_fit, clone, equal, extend.
 *
 * Part of the portable functional tests: common_tests.c includes it after
 * helpers.h (see there for the conventions).
 */

/* ---- clear, drain, retain, shrink_to_fit ---- */

TEST_WITH(u64map, clear_empties_map)
{
	struct anchormap *m = self->m;

	EXPECT_EQ(am_t_fill(m, 0, 500), 0);
	anchormap_clear(m);
	EXPECT_EQ(anchormap_len(m), 0);
	EXPECT_TRUE(anchormap_is_empty(m));
	EXPECT_EQ(am_t_count_present(m, 0, 500), 0);
	EXPECT_EQ(am_t_deleted(m), 0);
}

TEST_WITH(relmap, clear_releases_each_once)
{
	struct am_t_rel *r = self->r;
	struct anchormap *m = self->m;

	EXPECT_EQ(am_t_fill(m, 0, 500), 0);
	EXPECT_EQ(am_t_remove_step(m, 0, 500, 5), 0);
	anchormap_clear(m);
	EXPECT_EQ(r->calls, 500);
	EXPECT_EQ(am_t_rel_count_not(r, 0, 500, 1), 0);
	am_t_destroy_now(&self->m);
	EXPECT_EQ(r->calls, 500);
	EXPECT_EQ(r->bad_value, 0);
}

TEST_WITH(u64map, clear_keeps_one_segment)
{
	struct anchormap *m = self->m;

	EXPECT_EQ(am_t_fill(m, 0, 2000), 0);
	EXPECT_GT(am_t_segments(m), 1);
	anchormap_clear(m);
	EXPECT_EQ(am_t_segments(m), 1);
}

/*
 * The arena that the call since @st (the stats then, updated here) added,
 * seen as the step in allocated entries: into @biggest if bigger, and
 * @last.  Returns 1 when the step was not of one segment.
 */
static long am_t_track_arena(const struct anchormap *m, struct anchormap_stats *st,
			     size_t *biggest, size_t *last)
{
	struct anchormap_stats now;
	long bad;

	anchormap_stats(m, &now);
	if (now.segments == st->segments)
		return 0;
	bad = now.segments != st->segments + 1;
	*last = now.entries - st->entries;
	if (*last > *biggest)
		*biggest = *last;
	*st = now;
	return bad;
}

/*
 * A reserve makes one big arena and the growth after it a smaller one, so
 * the biggest is neither the first nor the last, and the index has grown:
 * keeping another arena, or a fresh index, would show.
 */
TEST_WITH(u64map, clear_keeps_biggest_arena_and_index)
{
	struct anchormap *m = self->m;
	struct anchormap_stats first, st, after;
	size_t biggest, last;
	long bad = 0;
	u64 k;

	anchormap_stats(m, &first);
	st = first;
	biggest = first.entries;
	last = first.entries;
	for (k = 0; k < 100; k++) {
		bad += am_t_put(m, k) != 1;
		bad += am_t_track_arena(m, &st, &biggest, &last);
	}
	EXPECT_EQ(anchormap_reserve(m, 3000), 0);
	bad += am_t_track_arena(m, &st, &biggest, &last);
	for (k = 100; k < 3200; k++) {
		bad += am_t_put(m, k) != 1;
		bad += am_t_track_arena(m, &st, &biggest, &last);
	}
	ASSERT_EQ(bad, 0);
	ASSERT_GE(st.segments, 3);
	ASSERT_GT(biggest, first.entries);
	ASSERT_GT(biggest, last);
	ASSERT_GT(st.slots, first.slots);
	anchormap_clear(m);
	anchormap_stats(m, &after);
	EXPECT_EQ(after.segments, 1);
	EXPECT_EQ(after.entries, biggest);
	EXPECT_EQ(after.slots, st.slots);
	EXPECT_EQ(after.index_bytes, st.index_bytes);
}

TEST_WITH(u64map, clear_then_reuse)
{
	struct anchormap *m = self->m;

	EXPECT_EQ(am_t_fill(m, 0, 2000), 0);
	anchormap_clear(m);
	EXPECT_EQ(am_t_fill(m, 0, 3000), 0);
	EXPECT_EQ(am_t_count_bad(m, 0, 3000), 0);
	EXPECT_EQ(anchormap_len(m), 3000);
}

struct am_t_drain_arg {
	u8 *seen;
	u64 n;
	long calls;
	long bad;
};

static void am_t_drain_fn(void *key, void *value, void *arg)
{
	struct am_t_drain_arg *d = arg;
	u64 k = am_tu_rd64(key);

	d->calls++;
	if (k >= d->n || am_tu_rd64(value) != am_tu_val(k)) {
		d->bad++;
		return;
	}
	d->seen[k]++;
}

TEST_WITH(relmap, drain_hands_every_live_entry)
{
	struct am_t_drain_arg d = { .n = 300 };
	struct am_t_rel *r = self->r;
	struct anchormap *m = self->m;
	long bad = 0;
	u64 k;

	d.seen = am_test_alloc(300);
	ASSERT_NOT_NULL(d.seen);
	EXPECT_EQ(am_t_fill(m, 0, 300), 0);
	anchormap_drain(m, am_t_drain_fn, &d);
	EXPECT_EQ(d.calls, 300);
	EXPECT_EQ(d.bad, 0);
	for (k = 0; k < 300; k++)
		bad += d.seen[k] != 1;
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(r->calls, 0);
	EXPECT_EQ(anchormap_len(m), 0);
	EXPECT_EQ(am_t_count_present(m, 0, 300), 0);
	am_t_destroy_now(&self->m);
	EXPECT_EQ(r->calls, 0);
	am_test_free(d.seen);
}

TEST_WITH(relmap, drain_releases_removed_entries)
{
	struct am_t_drain_arg d = { .n = 300 };
	struct am_t_rel *r = self->r;
	struct anchormap *m = self->m;
	long bad = 0;
	u64 k;

	d.seen = am_test_alloc(300);
	ASSERT_NOT_NULL(d.seen);
	EXPECT_EQ(am_t_fill(m, 0, 300), 0);
	EXPECT_EQ(am_t_remove_step(m, 0, 300, 3), 0);
	anchormap_drain(m, am_t_drain_fn, &d);
	EXPECT_EQ(d.calls, 200);
	EXPECT_EQ(r->calls, 100);
	for (k = 0; k < 300; k++) {
		bool removed = k % 3 == 0;

		bad += d.seen[k] != !removed || r->seen[k] != removed;
	}
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(am_t_deleted(m), 0);
	EXPECT_EQ(anchormap_len(m), 0);
	am_t_destroy_now(&self->m);
	EXPECT_EQ(r->calls, 100);
	am_test_free(d.seen);
}

/* Nobody takes the entries: the map still owns them all, removed ones too. */
TEST_WITH(relmap, drain_null_fn_releases_every_entry_once)
{
	struct am_t_rel *r = self->r;
	struct anchormap *m = self->m;

	EXPECT_EQ(am_t_fill(m, 0, 300), 0);
	EXPECT_EQ(am_t_remove_step(m, 0, 300, 3), 0);
	anchormap_drain(m, NULL, NULL);
	EXPECT_EQ(r->calls, 300);
	EXPECT_EQ(am_t_rel_count_not(r, 0, 300, 1), 0);
	EXPECT_EQ(r->bad_value, 0);
	EXPECT_EQ(anchormap_len(m), 0);
	am_t_destroy_now(&self->m);
	EXPECT_EQ(r->calls, 300);
}

TEST_WITH(u64map, drain_null_fn_empties)
{
	struct anchormap *m = self->m;

	EXPECT_EQ(am_t_fill(m, 0, 100), 0);
	anchormap_drain(m, NULL, NULL);
	EXPECT_EQ(anchormap_len(m), 0);
	EXPECT_EQ(am_t_count_present(m, 0, 100), 0);
}

TEST_WITH(u64map, drain_empty_map)
{
	struct am_t_drain_arg d = { .n = 1 };
	struct anchormap *m = self->m;

	anchormap_drain(m, am_t_drain_fn, &d);
	EXPECT_EQ(d.calls, 0);
}

static bool am_t_keep_all(const void *key, void *value, void *arg)
{
	return true;
}

TEST_WITH(relmap, retain_keeps_selected)
{
	struct am_t_rel *r = self->r;
	struct anchormap *m = self->m;
	long calls = 0, bad = 0;
	u64 k;

	EXPECT_EQ(am_t_fill(m, 0, 400), 0);
	anchormap_retain(m, am_t_keep_even, &calls);
	EXPECT_EQ(calls, 400);
	EXPECT_EQ(anchormap_len(m), 200);
	EXPECT_EQ(r->calls, 200);
	for (k = 0; k < 400; k++) {
		const void *v = anchormap_get(m, &k);

		if (k & 1)
			bad += v != NULL || r->seen[k] != 1;
		else
			bad += !v || am_tu_rd64(v) != am_tu_val(k) || r->seen[k] != 0;
	}
	EXPECT_EQ(bad, 0);
	am_t_destroy_now(&self->m);
	EXPECT_EQ(am_t_rel_count_not(r, 0, 400, 1), 0);
}

TEST_WITH(relmap, retain_reclaims_deleted)
{
	struct am_t_rel *r = self->r;
	struct anchormap *m = self->m;

	EXPECT_EQ(am_t_fill(m, 0, 400), 0);
	EXPECT_EQ(am_t_remove_step(m, 0, 400, 4), 0);
	EXPECT_EQ(am_t_deleted(m), 100);
	anchormap_retain(m, am_t_keep_all, NULL);
	EXPECT_EQ(am_t_deleted(m), 0);
	EXPECT_EQ(r->calls, 100);
	EXPECT_EQ(anchormap_len(m), 300);
	EXPECT_EQ(am_t_count_bad_sparse(m, 400, 4), 0);
	am_t_destroy_now(&self->m);
	EXPECT_EQ(am_t_rel_count_not(r, 0, 400, 1), 0);
}

static bool am_t_keep_and_bump(const void *key, void *value, void *arg)
{
	am_tu_wr64(value, am_tu_rd64(value) + 1);
	return true;
}

TEST_WITH(u64map, retain_value_is_writable)
{
	struct anchormap *m = self->m;
	long bad = 0;
	u64 k;

	EXPECT_EQ(am_t_fill(m, 0, 100), 0);
	anchormap_retain(m, am_t_keep_and_bump, NULL);
	for (k = 0; k < 100; k++) {
		const void *v = anchormap_get(m, &k);

		bad += !v || am_tu_rd64(v) != am_tu_val(k) + 1;
	}
	EXPECT_EQ(bad, 0);
}

TEST_WITH(relmap, shrink_to_fit_compacts)
{
	struct am_t_rel *r = self->r;
	struct anchormap *m = self->m;
	struct anchormap_stats st;

	EXPECT_EQ(am_t_fill(m, 0, 2000), 0);
	EXPECT_EQ(am_t_remove_step(m, 0, 2000, 4), 0);
	EXPECT_GT(am_t_segments(m), 1);
	EXPECT_EQ(anchormap_shrink_to_fit(m), 0);
	anchormap_stats(m, &st);
	/* compacted in place: storage is the live entries, a quarter and a chunk per stripe */
	EXPECT_LE(st.entries, st.len + st.len / 4 + 128);
	EXPECT_EQ(st.retired_bytes, 0);
	EXPECT_EQ(st.deleted, 0);
	EXPECT_EQ(st.len, 1500);
	EXPECT_GE(st.capacity, 1500);
	EXPECT_EQ(r->calls, 500);
	EXPECT_EQ(am_t_count_bad_sparse(m, 2000, 4), 0);
	am_t_destroy_now(&self->m);
	EXPECT_EQ(am_t_rel_count_not(r, 0, 2000, 1), 0);
	EXPECT_EQ(r->bad_value, 0);
}

/*
 * Compaction in place over maps of every shape: grown from 0 or pre-sized,
 * a few to all entries removed.  Each removed entry is released exactly
 * once and before its place is reused, every live key keeps its value, a
 * walk yields each once, storage ends within a quarter (and a chunk per
 * stripe) of the live entries, and the map takes inserts afterwards.
 */
static void am_t_shrink_shape(struct am_test_ctx *_ctx, u64 n, u64 step, bool presized)
{
	struct am_t_rel *r = am_t_rel_new(2 * n);
	struct anchormap_stats st;
	struct anchormap_iter it;
	struct anchormap *m;
	long bad = 0, walked = 0;
	const void *kp;
	u64 removed = (n + step - 1) / step;

	ASSERT_NOT_NULL(r);
	m = am_t_new(presized ? n : 0, r);
	if (!m)
		goto out;
	bad += am_t_fill(m, 0, n) != 0;
	bad += am_t_remove_step(m, 0, n, step);
	bad += anchormap_shrink_to_fit(m) != 0;
	bad += r->calls != (long)removed;
	bad += am_t_count_bad_sparse(m, n, step);
	anchormap_stats(m, &st);
	bad += st.len != n - removed || st.deleted != 0 || st.retired_bytes != 0;
	bad += st.entries > st.len + st.len / 4 + 128;
	anchormap_for_each(m, &it, &kp, NULL)
		walked++;
	bad += walked != (long)(n - removed);
	bad += am_t_fill(m, n, 2 * n) != 0;
	bad += am_t_count_bad(m, n, 2 * n);
	bad += am_t_count_bad_sparse(m, n, step);
	am_t_del(m);
	/* every key released once: the removed ones at compaction, the rest now */
	bad += am_t_rel_count_not(r, 0, 2 * n, 1);
	bad += r->bad_value != 0;
	if (bad)
		am_test_log("n %llu step %llu presized %d: %ld bad", (unsigned long long)n,
			    (unsigned long long)step, presized, bad);
	EXPECT_EQ(bad, 0);
out:
	am_t_rel_del(r);
}

TEST(shrink_to_fit_in_place_every_shape)
{
	static const u64 sizes[] = { 100, 3000, 20000 };
	static const u64 steps[] = { 1, 2, 3, 10, 1000 };
	unsigned int i, j;

	for (i = 0; i < ARRAY_SIZE(sizes); i++)
		for (j = 0; j < ARRAY_SIZE(steps); j++) {
			am_t_shrink_shape(_ctx, sizes[i], steps[j], false);
			am_t_shrink_shape(_ctx, sizes[i], steps[j], true);
		}
}

TEST_WITH(u64map, shrink_to_fit_keeps_values)
{
	struct anchormap *m = self->m;
	long bad = 0;
	u64 k;

	EXPECT_EQ(am_t_fill(m, 0, 1000), 0);
	EXPECT_EQ(am_t_remove_step(m, 0, 1000, 2), 0);
	EXPECT_EQ(anchormap_shrink_to_fit(m), 0);
	for (k = 0; k < 1000; k++) {
		const void *v = anchormap_get(m, &k);

		if (k & 1)
			bad += !v || am_tu_rd64(v) != am_tu_val(k);
		else
			bad += v != NULL;
	}
	EXPECT_EQ(bad, 0);
}

TEST(shrink_to_fit_empty_map)
{
	struct anchormap *m = am_t_new(1000, NULL);

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(anchormap_shrink_to_fit(m), 0);
	EXPECT_EQ(am_t_segments(m), 1);
	EXPECT_EQ(anchormap_len(m), 0);
	EXPECT_EQ(am_t_fill(m, 0, 100), 0);
	EXPECT_EQ(am_t_count_bad(m, 0, 100), 0);
	am_t_del(m);
}

TEST_WITH(u64map, shrink_to_fit_then_grow)
{
	struct anchormap *m = self->m;

	EXPECT_EQ(am_t_fill(m, 0, 1000), 0);
	EXPECT_EQ(am_t_remove_step(m, 0, 1000, 1), 0);
	EXPECT_EQ(anchormap_shrink_to_fit(m), 0);
	EXPECT_EQ(am_t_fill(m, 0, 3000), 0);
	EXPECT_EQ(am_t_count_bad(m, 0, 3000), 0);
	EXPECT_EQ(anchormap_len(m), 3000);
}

/* ---- clone, equal, extend ---- */

TEST(clone_copies_all)
{
	struct anchormap *src = am_t_new(0, NULL);
	struct anchormap *dst = am_test_alloc(sizeof(*dst));
	long shared = 0;
	u64 k;

	ASSERT_NOT_NULL(src);
	ASSERT_NOT_NULL(dst);
	EXPECT_EQ(am_t_fill(src, 0, 1000), 0);
	ASSERT_EQ(anchormap_clone(dst, src), 0);
	EXPECT_EQ(anchormap_len(dst), 1000);
	EXPECT_EQ(am_t_count_bad(dst, 0, 1000), 0);
	EXPECT_TRUE(anchormap_equal(dst, src));
	EXPECT_TRUE(anchormap_equal(src, dst));
	for (k = 0; k < 1000; k++)
		shared += anchormap_get(dst, &k) == anchormap_get(src, &k);
	EXPECT_EQ(shared, 0);
	am_t_del(dst);
	am_t_del(src);
}

TEST(clone_is_independent)
{
	struct anchormap *src = am_t_new(0, NULL);
	struct anchormap *dst = am_test_alloc(sizeof(*dst));
	u64 k = 5, j = 6;
	void *p;

	ASSERT_NOT_NULL(src);
	ASSERT_NOT_NULL(dst);
	EXPECT_EQ(am_t_fill(src, 0, 100), 0);
	ASSERT_EQ(anchormap_clone(dst, src), 0);
	EXPECT_EQ(am_t_put(dst, 5000), 1);
	EXPECT_EQ(am_t_count_present(src, 5000, 5001), 0);
	EXPECT_EQ(anchormap_remove(src, &k), 1);
	EXPECT_TRUE(anchormap_contains_key(dst, &k));
	p = anchormap_get_mut(dst, &j);
	EXPECT_NOT_NULL(p);
	if (p)
		am_tu_wr64(p, 1);
	EXPECT_EQ(am_t_count_bad(src, 6, 7), 0);
	EXPECT_EQ(anchormap_len(src), 99);
	EXPECT_EQ(anchormap_len(dst), 101);
	EXPECT_FALSE(anchormap_equal(src, dst));
	am_t_del(dst);
	am_t_del(src);
}

TEST(clone_skips_removed)
{
	struct anchormap *src = am_t_new(0, NULL);
	struct anchormap *dst = am_test_alloc(sizeof(*dst));

	ASSERT_NOT_NULL(src);
	ASSERT_NOT_NULL(dst);
	EXPECT_EQ(am_t_fill(src, 0, 100), 0);
	EXPECT_EQ(am_t_remove_step(src, 0, 100, 2), 0);
	ASSERT_EQ(anchormap_clone(dst, src), 0);
	EXPECT_EQ(anchormap_len(dst), 50);
	EXPECT_EQ(am_t_count_present(dst, 0, 100), 50);
	EXPECT_TRUE(anchormap_equal(src, dst));
	am_t_del(dst);
	am_t_del(src);
}

TEST(clone_empty_map)
{
	struct anchormap *src = am_t_new(0, NULL);
	struct anchormap *dst = am_test_alloc(sizeof(*dst));

	ASSERT_NOT_NULL(src);
	ASSERT_NOT_NULL(dst);
	ASSERT_EQ(anchormap_clone(dst, src), 0);
	EXPECT_TRUE(anchormap_is_empty(dst));
	EXPECT_TRUE(anchormap_equal(src, dst));
	EXPECT_EQ(am_t_put(dst, 1), 1);
	am_t_del(dst);
	am_t_del(src);
}

/*
 * The copies are the clone's: destroying it releases each live one through
 * the source's @release and @priv, and none of the source's removed ones.
 */
TEST_WITH(relmap, clone_destroy_releases_through_source_release)
{
	struct anchormap *dst = am_test_alloc(sizeof(*dst));
	struct am_t_rel *r = self->r;
	long bad = 0;
	u64 k;

	ASSERT_NOT_NULL(dst);
	EXPECT_EQ(am_t_fill(self->m, 0, 500), 0);
	EXPECT_EQ(am_t_remove_step(self->m, 0, 500, 5), 0);
	if (anchormap_clone(dst, self->m)) {
		EXPECT_TRUE(false);
		am_test_free(dst);
		return;
	}
	EXPECT_EQ(r->calls, 0);
	am_t_del(dst);
	EXPECT_EQ(r->calls, 400);
	for (k = 0; k < 500; k++)
		bad += r->seen[k] != (k % 5 != 0);
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(r->bad_value, 0);
}

/* A clone of an empty map made with @p, its source gone again; NULL on failure. */
static struct anchormap *am_t_clone_of_params(const struct anchormap_params *p)
{
	struct anchormap *src = am_t_new_params(p, 0), *dst = am_test_alloc(sizeof(*dst));

	if (src && dst && !anchormap_clone(dst, src)) {
		am_t_del(src);
		return dst;
	}
	am_test_free(dst);
	am_t_del(src);
	return NULL;
}

TEST(clone_copies_name)
{
	static const char name[] = "clone-name-test";
	struct anchormap_params p;
	struct anchormap_stats st;
	struct anchormap *dst;

	am_t_params(&p, 8, 8);
	p.name = name;
	dst = am_t_clone_of_params(&p);
	ASSERT_NOT_NULL(dst);
	anchormap_stats(dst, &st);
	EXPECT_TRUE(am_t_streq(st.name, name));
	am_t_del(dst);
}

/* Nothing in the API reads the flags back, so this reads the (private) field. */
TEST(clone_copies_flags)
{
	struct anchormap_params p;
	struct anchormap *dst;

	am_t_params(&p, 8, 8);
	p.flags = ANCHORMAP_F_ATOMIC;
	dst = am_t_clone_of_params(&p);
	ASSERT_NOT_NULL(dst);
	EXPECT_EQ(dst->flags, ANCHORMAP_F_ATOMIC);
	am_t_del(dst);
}

/* Two maps with the same entries, built in opposite orders. */
static int am_t_twins(struct anchormap **a, struct anchormap **b, u64 n)
{
	u64 k;

	*a = am_t_new(0, NULL);
	*b = am_t_new(n, NULL);
	if (!*a || !*b)
		return -ENOMEM;
	if (am_t_fill(*a, 0, n))
		return -1;
	for (k = n; k-- > 0;)
		if (am_t_put(*b, k) != 1)
			return -1;
	return 0;
}

TEST(equal_same_contents)
{
	struct anchormap *a = NULL, *b = NULL;

	EXPECT_EQ(am_t_twins(&a, &b, 500), 0);
	if (a && b) {
		EXPECT_TRUE(anchormap_equal(a, b));
		EXPECT_TRUE(anchormap_equal(b, a));
		EXPECT_TRUE(anchormap_equal(a, a));
	}
	am_t_del(a);
	am_t_del(b);
}

TEST(equal_empty_maps)
{
	struct anchormap *a = am_t_new(0, NULL);
	struct anchormap *b = am_t_new(100, NULL);

	if (a && b)
		EXPECT_TRUE(anchormap_equal(a, b));
	else
		EXPECT_TRUE(false);
	am_t_del(a);
	am_t_del(b);
}

TEST(equal_differs_on_value_byte)
{
	struct anchormap *a = NULL, *b = NULL;
	u64 k = 250;
	u8 *p;

	EXPECT_EQ(am_t_twins(&a, &b, 500), 0);
	if (a && b) {
		p = anchormap_get_mut(b, &k);
		EXPECT_NOT_NULL(p);
		if (p)
			p[7] ^= 0x01;
		EXPECT_FALSE(anchormap_equal(a, b));
		EXPECT_FALSE(anchormap_equal(b, a));
	}
	am_t_del(a);
	am_t_del(b);
}

TEST(equal_differs_on_key_set)
{
	struct anchormap *a = NULL, *b = NULL;
	u64 k = 10;

	EXPECT_EQ(am_t_twins(&a, &b, 100), 0);
	if (a && b) {
		/* a superset */
		EXPECT_EQ(am_t_put(a, 1000), 1);
		EXPECT_FALSE(anchormap_equal(a, b));
		EXPECT_FALSE(anchormap_equal(b, a));
		/* the same size, one key swapped */
		EXPECT_EQ(anchormap_remove(a, &k), 1);
		EXPECT_EQ(anchormap_len(a), anchormap_len(b));
		EXPECT_FALSE(anchormap_equal(a, b));
		EXPECT_FALSE(anchormap_equal(b, a));
	}
	am_t_del(a);
	am_t_del(b);
}

TEST(equal_ignores_removed)
{
	struct anchormap *a = NULL, *b = NULL;
	u64 k = 1000;

	EXPECT_EQ(am_t_twins(&a, &b, 100), 0);
	if (a && b) {
		EXPECT_EQ(am_t_put(a, k), 1);
		EXPECT_EQ(anchormap_remove(a, &k), 1);
		EXPECT_TRUE(anchormap_equal(a, b));
		EXPECT_TRUE(anchormap_equal(b, a));
	}
	am_t_del(a);
	am_t_del(b);
}

TEST_WITH(u64map, extend_counts_new_keys)
{
	struct anchormap *m = self->m;
	u64 keys[5] = { 1, 2, 3, 4, 5 };
	u64 vals[5] = { 10, 20, 30, 40, 50 };
	u64 k = 2, v = 99;

	EXPECT_EQ(anchormap_insert(m, &k, &v), 1);
	k = 4;
	EXPECT_EQ(anchormap_insert(m, &k, &v), 1);
	EXPECT_EQ(anchormap_extend(m, keys, vals, 5), 3);
	EXPECT_EQ(anchormap_len(m), 5);
	k = 2;
	EXPECT_EQ(am_tu_rd64(anchormap_get(m, &k)), 99);
	k = 3;
	EXPECT_EQ(am_tu_rd64(anchormap_get(m, &k)), 30);
	k = 5;
	EXPECT_EQ(am_tu_rd64(anchormap_get(m, &k)), 50);
}

TEST_WITH(u64map, extend_null_values_zero)
{
	struct anchormap *m = self->m;
	u64 *keys = am_test_alloc(1000 * sizeof(u64));
	long bad = 0;
	u64 k;

	ASSERT_NOT_NULL(keys);
	for (k = 0; k < 1000; k++)
		keys[k] = k * 3;
	EXPECT_EQ(anchormap_extend(m, keys, NULL, 1000), 1000);
	for (k = 0; k < 1000; k++) {
		const void *v = anchormap_get(m, &keys[k]);

		bad += !v || am_tu_rd64(v) != 0;
	}
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(anchormap_extend(m, keys, NULL, 1000), 0);
	am_test_free(keys);
}

TEST_WITH(u64map, extend_zero_keys)
{
	struct anchormap *m = self->m;
	u64 keys[1] = { 1 };

	EXPECT_EQ(anchormap_extend(m, keys, NULL, 0), 0);
	EXPECT_EQ(anchormap_len(m), 0);
}

static const struct am_test_case am_whole_map_cases[] = {
	AM_TEST_ENTRY(clear_empties_map)
	AM_TEST_ENTRY(clear_releases_each_once)
	AM_TEST_ENTRY(clear_keeps_one_segment)
	AM_TEST_ENTRY(clear_keeps_biggest_arena_and_index)
	AM_TEST_ENTRY(clear_then_reuse)
	AM_TEST_ENTRY(drain_hands_every_live_entry)
	AM_TEST_ENTRY(drain_releases_removed_entries)
	AM_TEST_ENTRY(drain_null_fn_releases_every_entry_once)
	AM_TEST_ENTRY(drain_null_fn_empties)
	AM_TEST_ENTRY(drain_empty_map)
	AM_TEST_ENTRY(retain_keeps_selected)
	AM_TEST_ENTRY(retain_reclaims_deleted)
	AM_TEST_ENTRY(retain_value_is_writable)
	AM_TEST_ENTRY(shrink_to_fit_compacts)
	AM_TEST_ENTRY(shrink_to_fit_in_place_every_shape)
	AM_TEST_ENTRY(shrink_to_fit_keeps_values)
	AM_TEST_ENTRY(shrink_to_fit_empty_map)
	AM_TEST_ENTRY(shrink_to_fit_then_grow)
	AM_TEST_ENTRY(clone_copies_all)
	AM_TEST_ENTRY(clone_is_independent)
	AM_TEST_ENTRY(clone_skips_removed)
	AM_TEST_ENTRY(clone_empty_map)
	AM_TEST_ENTRY(clone_destroy_releases_through_source_release)
	AM_TEST_ENTRY(clone_copies_name)
	AM_TEST_ENTRY(clone_copies_flags)
	AM_TEST_ENTRY(equal_same_contents)
	AM_TEST_ENTRY(equal_empty_maps)
	AM_TEST_ENTRY(equal_differs_on_value_byte)
	AM_TEST_ENTRY(equal_differs_on_key_set)
	AM_TEST_ENTRY(equal_ignores_removed)
	AM_TEST_ENTRY(extend_counts_new_keys)
	AM_TEST_ENTRY(extend_null_values_zero)
	AM_TEST_ENTRY(extend_zero_keys)
};

static const struct am_test_suite am_whole_map_suite = AM_TEST_SUITE(whole_map);
