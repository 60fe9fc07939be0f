// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * common_tests.c - functional tests of the anchormap API, shared by the
 * userspace runner (selftests/user/test_common.c) and the kernel test
 * module.  Include it after harness.h.
 *
 * Portable on purpose: no libc beyond memcpy/memcmp/memset, no threads, no
 * floating point, no VLAs, and small stack frames (maps, iterators and
 * arrays come from am_test_alloc()), so it runs on a kernel stack.
 *
 * Conventions: keys are u64 indices 0..n-1 unless a test says otherwise,
 * and the value stored for key k is am_t_val(k), so any slot can be
 * checked on its own.  Loops count mismatches and assert once, to keep a
 * failure to one diagnostic line.
 */

#define AM_T_MAX_ALLOC_TRIES	64

/* ---- helpers ---- */

static u64 am_t_val(u64 k)
{
	return (k * 0x9e3779b97f4a7c15ULL) ^ 0x5bd1e9955bd1e995ULL;
}

/* Reads through memcpy: not every value in these tests is 8-aligned. */
static u64 am_t_rd64(const void *p)
{
	u64 v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static void am_t_wr64(void *p, u64 v)
{
	memcpy(p, &v, sizeof(v));
}

static bool am_t_streq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

/*
 * Release bookkeeping, passed as @priv: how often release ran, and per key
 * index (when @seen is set) how often for that key, so "exactly once" can
 * be checked key by key.
 */
struct am_t_rel {
	long calls;
	long bad_value;
	bool check_value;
	u8 *seen;
	u64 nkeys;
};

static void am_t_release(void *key, void *value, void *priv)
{
	struct am_t_rel *r = priv;
	u64 k = am_t_rd64(key);

	r->calls++;
	if (r->check_value && am_t_rd64(value) != am_t_val(k))
		r->bad_value++;
	if (r->seen && k < r->nkeys && r->seen[k] < 255)
		r->seen[k]++;
}

static void am_t_params(struct anchormap_params *p, u32 key_size, u32 value_size)
{
	memset(p, 0, sizeof(*p));
	p->key_size = key_size;
	p->value_size = value_size;
}

static struct anchormap *am_t_new_params(const struct anchormap_params *p, size_t cap)
{
	struct anchormap *m = am_test_alloc(sizeof(*m));

	if (!m)
		return NULL;
	if (anchormap_init(m, p, cap)) {
		am_test_free(m);
		return NULL;
	}
	return m;
}

/* A u64 -> u64 map, releasing into @rel when given. */
static struct anchormap *am_t_new(size_t cap, struct am_t_rel *rel)
{
	struct anchormap_params p;

	am_t_params(&p, sizeof(u64), sizeof(u64));
	if (rel) {
		p.release = am_t_release;
		p.priv = rel;
	}
	return am_t_new_params(&p, cap);
}

static void am_t_del(struct anchormap *m)
{
	if (!m)
		return;
	anchormap_destroy(m);
	am_test_free(m);
}

/* A release tracker for keys 0..nkeys-1, checking values. */
static struct am_t_rel *am_t_rel_new(u64 nkeys)
{
	struct am_t_rel *r = am_test_alloc(sizeof(*r));

	if (!r)
		return NULL;
	r->seen = am_test_alloc(nkeys);
	if (!r->seen) {
		am_test_free(r);
		return NULL;
	}
	r->nkeys = nkeys;
	r->check_value = true;
	return r;
}

static void am_t_rel_del(struct am_t_rel *r)
{
	if (!r)
		return;
	am_test_free(r->seen);
	am_test_free(r);
}

/* Keys in [from, to) whose release count is not @want. */
static long am_t_rel_count_not(const struct am_t_rel *r, u64 from, u64 to, u8 want)
{
	long bad = 0;
	u64 k;

	for (k = from; k < to; k++)
		bad += r->seen[k] != want;
	return bad;
}

static int am_t_put(struct anchormap *m, u64 k)
{
	u64 v = am_t_val(k);

	return anchormap_insert(m, &k, &v);
}

/* Insert keys [from, to): 0 when every insert returned 1, else the odd ret. */
static int am_t_fill(struct anchormap *m, u64 from, u64 to)
{
	u64 k;
	int ret;

	for (k = from; k < to; k++) {
		ret = am_t_put(m, k);
		if (ret != 1)
			return ret == 0 ? -1000 : ret;
	}
	return 0;
}

/* Keys in [from, to) that are absent or hold the wrong value. */
static long am_t_count_bad(const struct anchormap *m, u64 from, u64 to)
{
	long bad = 0;
	u64 k;

	for (k = from; k < to; k++) {
		const void *v = anchormap_get(m, &k);

		if (!v || am_t_rd64(v) != am_t_val(k))
			bad++;
	}
	return bad;
}

/* Keys in [from, to) that are present. */
static long am_t_count_present(const struct anchormap *m, u64 from, u64 to)
{
	long n = 0;
	u64 k;

	for (k = from; k < to; k++)
		n += anchormap_contains_key(m, &k);
	return n;
}

/*
 * Keys of [0, n) that disagree with "k % step == 0 was removed, every
 * other key holds its value".
 */
static long am_t_count_bad_sparse(const struct anchormap *m, u64 n, u64 step)
{
	long bad = 0;
	u64 k;

	for (k = 0; k < n; k++) {
		const void *v = anchormap_get(m, &k);

		if (k % step == 0)
			bad += v != NULL;
		else
			bad += !v || am_t_rd64(v) != am_t_val(k);
	}
	return bad;
}

/* Remove keys in [from, to) with step: how many removes did not return 1. */
static long am_t_remove_step(struct anchormap *m, u64 from, u64 to, u64 step)
{
	long bad = 0;
	u64 k;

	for (k = from; k < to; k += step)
		bad += anchormap_remove(m, &k) != 1;
	return bad;
}

/* Value pointers of keys [0, n), for checking that entries never move. */
static const void **am_t_grab(const struct anchormap *m, u64 n)
{
	const void **ptrs = am_test_alloc(n * sizeof(*ptrs));
	u64 k;

	if (!ptrs)
		return NULL;
	for (k = 0; k < n; k++)
		ptrs[k] = anchormap_get(m, &k);
	return ptrs;
}

/*
 * Held pointers of keys [from, to) (stepping) that moved or whose bytes
 * changed; a NULL held pointer counts as bad.
 */
static long am_t_count_moved(const struct anchormap *m, const void **ptrs,
			     u64 from, u64 to, u64 step)
{
	long bad = 0;
	u64 k;

	for (k = from; k < to; k += step) {
		if (!ptrs[k] || anchormap_get(m, &k) != ptrs[k] ||
		    am_t_rd64(ptrs[k]) != am_t_val(k))
			bad++;
	}
	return bad;
}

static size_t am_t_retired_bytes(const struct anchormap *m)
{
	struct anchormap_stats st;

	anchormap_stats(m, &st);
	return st.retired_bytes;
}

static size_t am_t_segments(const struct anchormap *m)
{
	struct anchormap_stats st;

	anchormap_stats(m, &st);
	return st.segments;
}

static size_t am_t_deleted(const struct anchormap *m)
{
	struct anchormap_stats st;

	anchormap_stats(m, &st);
	return st.deleted;
}

/* Tries @p against a throwaway map; returns what init said. */
static int am_t_try_init(const struct anchormap_params *p, size_t cap)
{
	struct anchormap *m = am_test_alloc(sizeof(*m));
	int ret;

	if (!m)
		return -12345;
	ret = anchormap_init(m, p, cap);
	if (!ret)
		anchormap_destroy(m);
	am_test_free(m);
	return ret;
}

/* Counts calls and remembers the key it was given; fills a known value. */
struct am_t_init_arg {
	int calls;
	int ret;
	u64 key_seen;
	u64 fill;
	bool value_was_zero;
};

static void am_t_init_fn(void *value, const void *key, void *arg)
{
	struct am_t_init_arg *a = arg;

	a->calls++;
	a->key_seen = am_t_rd64(key);
	a->value_was_zero = am_t_rd64(value) == 0;
	am_t_wr64(value, a->fill);
}

static int am_t_try_init_fn(void *value, const void *key, void *arg)
{
	struct am_t_init_arg *a = arg;

	am_t_init_fn(value, key, arg);
	return a->ret;
}

/* Adds *arg to the value, counting calls in the second u64 of arg. */
static void am_t_add_fn(void *value, const void *key, void *arg)
{
	u64 *a = arg;

	am_t_wr64(value, am_t_rd64(value) + a[0]);
	a[1]++;
}

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
		EXPECT_TRUE(ret == -EINVAL || ret == -ENOMEM);
		EXPECT_EQ(anchormap_debug_allocs_live(), live);
	}
}

TEST(init_zero_capacity_usable)
{
	struct anchormap *m = am_t_new(0, NULL);

	ASSERT_NOT_NULL(m);
	EXPECT_TRUE(anchormap_is_empty(m));
	EXPECT_EQ(am_t_put(m, 7), 1);
	EXPECT_EQ(am_t_count_bad(m, 7, 8), 0);
	am_t_del(m);
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

TEST(insert_null_args)
{
	struct anchormap *m = am_t_new(0, NULL);
	u64 k = 1, v = 2;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(anchormap_insert(NULL, &k, &v), -EINVAL);
	EXPECT_EQ(anchormap_insert(m, NULL, &v), -EINVAL);
	EXPECT_EQ(anchormap_len(m), 0);
	am_t_del(m);
}

TEST(remove_null_args)
{
	struct anchormap *m = am_t_new(0, NULL);
	u64 k = 1;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_put(m, k), 1);
	EXPECT_EQ(anchormap_remove(NULL, &k), -EINVAL);
	EXPECT_EQ(anchormap_remove(m, NULL), -EINVAL);
	EXPECT_EQ(anchormap_len(m), 1);
	am_t_del(m);
}

TEST(get_or_insert_null_args)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct am_t_init_arg a = { 0 };
	u64 k = 1, v = 2;
	const void *p;

	ASSERT_NOT_NULL(m);
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
	am_t_del(m);
}

TEST(remove_entry_null_args)
{
	struct anchormap *m = am_t_new(0, NULL);
	u64 k = 1, ko, vo;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_put(m, k), 1);
	EXPECT_EQ(anchormap_remove_entry(NULL, &k, &ko, &vo), -EINVAL);
	EXPECT_EQ(anchormap_remove_entry(m, NULL, &ko, &vo), -EINVAL);
	EXPECT_EQ(anchormap_len(m), 1);
	am_t_del(m);
}

TEST(reserve_null_map)
{
	EXPECT_EQ(anchormap_reserve(NULL, 10), -EINVAL);
}

TEST(clone_null_args)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct anchormap *dst = am_test_alloc(sizeof(*dst));
	long live;

	ASSERT_NOT_NULL(m);
	ASSERT_NOT_NULL(dst);
	live = anchormap_debug_allocs_live();
	EXPECT_EQ(anchormap_clone(NULL, m), -EINVAL);
	EXPECT_EQ(anchormap_clone(dst, NULL), -EINVAL);
	EXPECT_EQ(anchormap_debug_allocs_live(), live);
	am_test_free(dst);
	am_t_del(m);
}

TEST(entry_null_args)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct anchormap_entry e;
	u64 k = 1;

	ASSERT_NOT_NULL(m);
	EXPECT_NULL(anchormap_entry(NULL, &k, &e));
	EXPECT_NULL(anchormap_entry(m, NULL, &e));
	EXPECT_NULL(anchormap_entry(m, &k, NULL));
	am_t_del(m);
}

TEST(extend_null_args)
{
	struct anchormap *m = am_t_new(0, NULL);
	u64 keys[2] = { 1, 2 };

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(anchormap_extend(NULL, keys, NULL, 2), -EINVAL);
	EXPECT_EQ(anchormap_extend(m, NULL, NULL, 2), -EINVAL);
	EXPECT_EQ(anchormap_len(m), 0);
	am_t_del(m);
}

TEST(extend_rejects_n_above_int_max)
{
	struct anchormap *m = am_t_new(0, NULL);
	u64 keys[2] = { 1, 2 };

	ASSERT_NOT_NULL(m);
	/* must be refused before a single key is read */
	EXPECT_EQ(anchormap_extend(m, keys, NULL, (size_t)INT_MAX + 1), -EINVAL);
	EXPECT_EQ(anchormap_len(m), 0);
	am_t_del(m);
}

/* ---- insert and lookups ---- */

/* A u64 -> u64 map, fresh for each test. */
FIXTURE(u64map) {
	struct anchormap *m;
};

FIXTURE_SETUP(u64map)
{
	self->m = am_t_new(0, NULL);
	ASSERT_NOT_NULL(self->m);
}

FIXTURE_TEARDOWN(u64map)
{
	if (self->m)
		am_t_del(self->m);
}

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
	EXPECT_EQ(am_t_rd64(anchormap_get(m, &k)), 100);
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
	EXPECT_EQ(am_t_rd64(p), 0);
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
	EXPECT_EQ(am_t_rd64(p), am_t_val(k));
}

TEST(insert_copies_key_and_value)
{
	struct anchormap *m = am_t_new(0, NULL);
	u64 k = 9, v = 99, probe = 9;
	const void *p;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(anchormap_insert(m, &k, &v), 1);
	/* the map must not keep the caller's buffers */
	k = 10;
	v = 1;
	p = anchormap_get(m, &probe);
	ASSERT_NOT_NULL(p);
	EXPECT_NE(p, &v);
	EXPECT_EQ(am_t_rd64(p), 99);
	EXPECT_NULL(anchormap_get(m, &k));
	am_t_del(m);
}

TEST(get_key_value_returns_stored_key)
{
	struct anchormap *m = am_t_new(0, NULL);
	const void *vp = NULL;
	const void *kp;
	u64 k = 77;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_put(m, k), 1);
	kp = anchormap_get_key_value(m, &k, &vp);
	ASSERT_NOT_NULL(kp);
	EXPECT_NE(kp, &k);
	EXPECT_EQ(am_t_rd64(kp), 77);
	EXPECT_EQ(vp, anchormap_get(m, &k));
	EXPECT_EQ(anchormap_get_key_value(m, &k, NULL), kp);
	am_t_del(m);
}

TEST(get_key_value_absent)
{
	struct anchormap *m = am_t_new(0, NULL);
	const void *vp = &vp;
	u64 k = 77;

	ASSERT_NOT_NULL(m);
	EXPECT_NULL(anchormap_get_key_value(m, &k, &vp));
	EXPECT_NULL(vp);
	EXPECT_NULL(anchormap_get_key_value(m, &k, NULL));
	am_t_del(m);
}

TEST(contains_key_tracks_membership)
{
	struct anchormap *m = am_t_new(0, NULL);
	u64 k = 11;

	ASSERT_NOT_NULL(m);
	EXPECT_FALSE(anchormap_contains_key(m, &k));
	EXPECT_EQ(am_t_put(m, k), 1);
	EXPECT_TRUE(anchormap_contains_key(m, &k));
	EXPECT_EQ(anchormap_remove(m, &k), 1);
	EXPECT_FALSE(anchormap_contains_key(m, &k));
	am_t_del(m);
}

/* ---- remove (shared) ---- */

TEST(remove_present_then_absent)
{
	struct anchormap *m = am_t_new(0, NULL);
	u64 k = 12;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(anchormap_remove(m, &k), 0);
	EXPECT_EQ(am_t_put(m, k), 1);
	EXPECT_EQ(anchormap_remove(m, &k), 1);
	EXPECT_EQ(anchormap_remove(m, &k), 0);
	EXPECT_NULL(anchormap_get(m, &k));
	am_t_del(m);
}

TEST(remove_keeps_held_pointer_bytes)
{
	struct anchormap *m = am_t_new(0, NULL);
	const void **ptrs;
	long bad = 0;
	u64 k;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 100), 0);
	ptrs = am_t_grab(m, 100);
	ASSERT_NOT_NULL(ptrs);
	EXPECT_EQ(am_t_remove_step(m, 0, 100, 1), 0);
	for (k = 0; k < 100; k++)
		bad += !ptrs[k] || am_t_rd64(ptrs[k]) != am_t_val(k);
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(am_t_count_present(m, 0, 100), 0);
	am_test_free(ptrs);
	am_t_del(m);
}

TEST(reinsert_after_remove_uses_new_slot)
{
	struct anchormap *m = am_t_new(0, NULL);
	const void **ptrs;
	long bad = 0, reused = 0;
	u64 k, v;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 100), 0);
	ptrs = am_t_grab(m, 100);
	ASSERT_NOT_NULL(ptrs);
	EXPECT_EQ(am_t_remove_step(m, 0, 100, 1), 0);
	for (k = 0; k < 100; k++) {
		v = ~am_t_val(k);
		bad += anchormap_insert(m, &k, &v) != 1;
		reused += anchormap_get(m, &k) == ptrs[k];
	}
	EXPECT_EQ(bad, 0);
	/* slots are never reused while the map is shared */
	EXPECT_EQ(reused, 0);
	for (k = 0, bad = 0; k < 100; k++)
		bad += am_t_rd64(ptrs[k]) != am_t_val(k);
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(anchormap_len(m), 100);
	am_test_free(ptrs);
	am_t_del(m);
}

/*
 * Removed and re-inserted keys, and keys placed past their home group,
 * made deterministic with a hash that picks the home group (capacity 100:
 * an index of 32 groups of 12; all keys share a stripe).  Keys below 100
 * have home group 0, other keys group 7.
 */
static u64 am_t_hash_home_0(const void *key, u32 key_size, u64 seed)
{
	return am_t_rd64(key) < 100 ? 0 : 7;
}

static u64 am_t_hash_home_7(const void *key, u32 key_size, u64 seed)
{
	return 7;
}

static struct anchormap *am_t_new_homed(u64 (*hash)(const void *, u32, u64))
{
	struct anchormap_params p;

	am_t_params(&p, 8, 8);
	p.hash = hash;
	return am_t_new_params(&p, 100);
}

/*
 * A key removed and inserted again, even with the very same bytes, gets a
 * new entry: the removed one keeps its bytes for whoever holds it, and is
 * counted as deleted until an exclusive operation reclaims it.
 */
TEST(reinsert_same_bytes_gets_new_entry)
{
	struct anchormap *m = am_t_new(0, NULL);
	u64 k = 5, v = am_t_val(5), zero = 0;
	const void *p, *q;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_put(m, k), 1);
	p = anchormap_get(m, &k);
	ASSERT_NOT_NULL(p);
	EXPECT_EQ(anchormap_remove(m, &k), 1);
	EXPECT_EQ(am_t_deleted(m), 1);
	EXPECT_EQ(anchormap_insert(m, &k, &v), 1);
	q = anchormap_get(m, &k);
	ASSERT_NOT_NULL(q);
	EXPECT_NE(q, p);
	EXPECT_EQ(am_t_rd64(p), am_t_val(k));	/* the holder's bytes, unchanged */
	EXPECT_EQ(am_t_deleted(m), 1);
	EXPECT_EQ(anchormap_len(m), 1);
	EXPECT_EQ(anchormap_insert(m, &k, &v), 0);	/* present again */
	EXPECT_EQ(anchormap_remove(m, &k), 1);
	EXPECT_EQ(anchormap_insert(m, &k, &zero), 1);
	EXPECT_NE(anchormap_get(m, &k), q);
	EXPECT_EQ(am_t_rd64(q), am_t_val(k));
	EXPECT_EQ(am_t_deleted(m), 2);
	am_t_del(m);
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
		bad += am_t_rd64(ptrs[k]) != am_t_val(k);
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
TEST(reinsert_with_release_releases_each_entry)
{
	struct am_t_rel *r = am_t_rel_new(10);
	struct anchormap *m;
	u64 k = 3;
	const void *p;

	ASSERT_NOT_NULL(r);
	m = am_t_new(0, r);
	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_put(m, k), 1);
	p = anchormap_get(m, &k);
	EXPECT_EQ(anchormap_remove(m, &k), 1);
	EXPECT_EQ(am_t_put(m, k), 1);
	EXPECT_NE(anchormap_get(m, &k), p);
	am_t_del(m);
	EXPECT_EQ(r->calls, 2);
	EXPECT_EQ(am_t_rel_count_not(r, 3, 4, 2), 0);
	am_t_rel_del(r);
}

/* An init function's value: a new entry as for any insert. */
TEST(reinsert_with_init_function_gets_new_entry)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct am_t_init_arg a = { .fill = 0 };	/* a zero value, as NULL gives */
	u64 k = 4;
	const void *p, *q;

	ASSERT_NOT_NULL(m);
	p = anchormap_get_or_insert_with(m, &k, am_t_init_fn, &a);
	ASSERT_FALSE(IS_ERR_OR_NULL(p));
	EXPECT_EQ(anchormap_remove(m, &k), 1);
	q = anchormap_get_or_insert_with(m, &k, am_t_init_fn, &a);
	ASSERT_FALSE(IS_ERR_OR_NULL(q));
	EXPECT_NE(q, p);
	EXPECT_EQ(am_t_deleted(m), 1);
	am_t_del(m);
}

/*
 * A set member toggled in and out many times: each removal costs its own
 * entry's storage only; the index reuses the tombstones, so it neither
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
	EXPECT_EQ(b.slots, a.slots);
	EXPECT_EQ(b.rebuilds, a.rebuilds);
	EXPECT_LE(b.index_used, a.index_used + 3);
	EXPECT_EQ(b.retired_bytes, 0);
	am_t_del(m);
}

/* After compaction the removed entries are gone. */
TEST(compaction_reclaims_removed_entries)
{
	struct anchormap *m = am_t_new(0, NULL);
	u64 k = 6;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 50), 0);
	EXPECT_EQ(anchormap_remove(m, &k), 1);
	EXPECT_EQ(anchormap_shrink_to_fit(m), 0);
	EXPECT_EQ(am_t_deleted(m), 0);
	EXPECT_EQ(am_t_put(m, k), 1);
	EXPECT_EQ(am_t_deleted(m), 0);
	EXPECT_EQ(am_t_count_bad(m, 0, 50), 0);
	EXPECT_EQ(anchormap_len(m), 50);
	am_t_del(m);
}

/* Keys removed and re-inserted mid-walk are not yielded twice. */
TEST(iter_reinserted_keys_not_twice)
{
	struct anchormap_iter *it = am_test_alloc(sizeof(*it));
	struct anchormap *m = am_t_new(0, NULL);
	u8 *seen = am_test_alloc(1000);
	long twice = 0, n = 0;
	const void *kp;
	u64 k;

	ASSERT_NOT_NULL(it);
	ASSERT_NOT_NULL(m);
	ASSERT_NOT_NULL(seen);
	memset(seen, 0, 1000);
	EXPECT_EQ(am_t_fill(m, 0, 1000), 0);
	anchormap_for_each(m, it, &kp, NULL) {
		k = am_t_rd64(kp);
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
	am_t_del(m);
}

TEST(remove_updates_len_and_deleted)
{
	struct anchormap *m = am_t_new(0, NULL);

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 10), 0);
	EXPECT_EQ(am_t_deleted(m), 0);
	EXPECT_EQ(am_t_remove_step(m, 0, 4, 1), 0);
	EXPECT_EQ(anchormap_len(m), 6);
	EXPECT_EQ(am_t_deleted(m), 4);
	am_t_del(m);
}

/* ---- get_or_insert family ---- */

TEST(get_or_insert_inserts_absent)
{
	struct anchormap *m = am_t_new(0, NULL);
	u64 k = 1, v = 111;
	const void *p;

	ASSERT_NOT_NULL(m);
	p = anchormap_get_or_insert(m, &k, &v);
	ASSERT_FALSE(IS_ERR_OR_NULL(p));
	EXPECT_EQ(am_t_rd64(p), 111);
	EXPECT_EQ(anchormap_get(m, &k), p);
	EXPECT_EQ(anchormap_len(m), 1);
	am_t_del(m);
}

TEST(get_or_insert_returns_existing)
{
	struct anchormap *m = am_t_new(0, NULL);
	u64 k = 1, v1 = 111, v2 = 222;
	const void *p;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(anchormap_insert(m, &k, &v1), 1);
	p = anchormap_get_or_insert(m, &k, &v2);
	ASSERT_FALSE(IS_ERR_OR_NULL(p));
	EXPECT_EQ(p, anchormap_get(m, &k));
	EXPECT_EQ(am_t_rd64(p), 111);
	EXPECT_EQ(anchormap_len(m), 1);
	am_t_del(m);
}

TEST(get_or_insert_null_value_is_zero)
{
	struct anchormap *m = am_t_new(0, NULL);
	u64 k = 1;
	const void *p;

	ASSERT_NOT_NULL(m);
	p = anchormap_get_or_insert(m, &k, NULL);
	ASSERT_FALSE(IS_ERR_OR_NULL(p));
	EXPECT_EQ(am_t_rd64(p), 0);
	am_t_del(m);
}

TEST(get_or_insert_with_init_once)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct am_t_init_arg a = { .fill = 0xabcdef };
	const void *p1, *p2;
	u64 k = 21;

	ASSERT_NOT_NULL(m);
	p1 = anchormap_get_or_insert_with(m, &k, am_t_init_fn, &a);
	p2 = anchormap_get_or_insert_with(m, &k, am_t_init_fn, &a);
	ASSERT_FALSE(IS_ERR_OR_NULL(p1));
	EXPECT_EQ(p1, p2);
	EXPECT_EQ(a.calls, 1);
	EXPECT_EQ(am_t_rd64(p1), 0xabcdef);
	EXPECT_EQ(anchormap_len(m), 1);
	am_t_del(m);
}

TEST(get_or_insert_with_init_sees_key_and_zero)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct am_t_init_arg a = { .fill = 5 };
	const void *p;
	u64 k = 0x1122334455667788ULL;

	ASSERT_NOT_NULL(m);
	p = anchormap_get_or_insert_with(m, &k, am_t_init_fn, &a);
	ASSERT_FALSE(IS_ERR_OR_NULL(p));
	EXPECT_EQ(a.key_seen, k);
	EXPECT_TRUE(a.value_was_zero);
	am_t_del(m);
}

TEST(get_or_insert_with_present_skips_init)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct am_t_init_arg a = { .fill = 5 };
	const void *p;
	u64 k = 3;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_put(m, k), 1);
	p = anchormap_get_or_insert_with(m, &k, am_t_init_fn, &a);
	ASSERT_FALSE(IS_ERR_OR_NULL(p));
	EXPECT_EQ(a.calls, 0);
	EXPECT_EQ(am_t_rd64(p), am_t_val(k));
	am_t_del(m);
}

TEST(get_or_try_insert_with_success)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct am_t_init_arg a = { .fill = 77, .ret = 0 };
	const void *p;
	u64 k = 4;

	ASSERT_NOT_NULL(m);
	p = anchormap_get_or_try_insert_with(m, &k, am_t_try_init_fn, &a);
	ASSERT_FALSE(IS_ERR_OR_NULL(p));
	EXPECT_EQ(a.calls, 1);
	EXPECT_EQ(am_t_rd64(p), 77);
	EXPECT_EQ(anchormap_get(m, &k), p);
	p = anchormap_get_or_try_insert_with(m, &k, am_t_try_init_fn, &a);
	EXPECT_EQ(a.calls, 1);
	EXPECT_EQ(anchormap_get(m, &k), p);
	am_t_del(m);
}

TEST(get_or_try_insert_with_error)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct am_t_init_arg a = { .fill = 77, .ret = -EIO };
	const void *p;
	u64 k = 4;

	ASSERT_NOT_NULL(m);
	p = anchormap_get_or_try_insert_with(m, &k, am_t_try_init_fn, &a);
	ASSERT_TRUE(IS_ERR(p));
	EXPECT_EQ(PTR_ERR(p), -EIO);
	EXPECT_EQ(a.calls, 1);
	EXPECT_FALSE(anchormap_contains_key(m, &k));
	EXPECT_NULL(anchormap_get(m, &k));
	EXPECT_EQ(anchormap_len(m), 0);
	am_t_del(m);
}

TEST(get_or_try_insert_with_error_counts_deleted)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct am_t_init_arg a = { .ret = -EINTR };
	const void *p;
	u64 k = 4;

	ASSERT_NOT_NULL(m);
	p = anchormap_get_or_try_insert_with(m, &k, am_t_try_init_fn, &a);
	EXPECT_TRUE(IS_ERR(p));
	EXPECT_EQ(am_t_deleted(m), 1);
	am_t_del(m);
}

TEST(get_or_try_insert_with_error_never_released)
{
	struct am_t_rel *r = am_t_rel_new(16);
	struct am_t_init_arg a = { .ret = -EAGAIN };
	struct anchormap *m;
	const void *p;
	u64 k = 4;

	ASSERT_NOT_NULL(r);
	m = am_t_new(0, r);
	ASSERT_NOT_NULL(m);
	p = anchormap_get_or_try_insert_with(m, &k, am_t_try_init_fn, &a);
	EXPECT_TRUE(IS_ERR(p));
	am_t_del(m);
	EXPECT_EQ(r->calls, 0);
	am_t_rel_del(r);
}

TEST(get_or_try_insert_with_retry_after_error)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct am_t_init_arg a = { .fill = 9, .ret = -ENOSPC };
	const void *p;
	u64 k = 4;

	ASSERT_NOT_NULL(m);
	p = anchormap_get_or_try_insert_with(m, &k, am_t_try_init_fn, &a);
	EXPECT_TRUE(IS_ERR(p));
	a.ret = 0;
	a.fill = 10;
	p = anchormap_get_or_try_insert_with(m, &k, am_t_try_init_fn, &a);
	ASSERT_FALSE(IS_ERR_OR_NULL(p));
	EXPECT_EQ(am_t_rd64(p), 10);
	EXPECT_TRUE(a.value_was_zero);
	EXPECT_EQ(a.calls, 2);
	EXPECT_EQ(anchormap_len(m), 1);
	am_t_del(m);
}

/*
 * An init code out of its contract (positive, or below -MAX_ERRNO) would
 * come back as a pointer IS_ERR does not recognise: it is one defined error.
 */
TEST(get_or_try_insert_with_out_of_contract_codes_are_einval)
{
	static const int codes[] = { -5000, 5000, INT_MIN, INT_MAX, 1, -MAX_ERRNO - 1 };
	struct anchormap *m = am_t_new(0, NULL);
	struct am_t_init_arg a = { .fill = 5 };
	const void *p;
	unsigned int i;
	u64 k = 4;

	ASSERT_NOT_NULL(m);
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
	am_t_del(m);
}

/* ---- capacity, reserve, len ---- */

TEST(len_and_is_empty)
{
	struct anchormap *m = am_t_new(0, NULL);

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(anchormap_len(m), 0);
	EXPECT_TRUE(anchormap_is_empty(m));
	EXPECT_EQ(am_t_fill(m, 0, 3), 0);
	EXPECT_EQ(anchormap_len(m), 3);
	EXPECT_FALSE(anchormap_is_empty(m));
	EXPECT_EQ(am_t_remove_step(m, 0, 3, 1), 0);
	EXPECT_EQ(anchormap_len(m), 0);
	EXPECT_TRUE(anchormap_is_empty(m));
	am_t_del(m);
}

TEST(len_counts_many)
{
	struct anchormap *m = am_t_new(0, NULL);

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 3000), 0);
	EXPECT_EQ(anchormap_len(m), 3000);
	EXPECT_EQ(am_t_remove_step(m, 0, 3000, 3), 0);
	EXPECT_EQ(anchormap_len(m), 2000);
	am_t_del(m);
}

TEST(reserve_grows_capacity)
{
	struct anchormap *m = am_t_new(0, NULL);

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(anchormap_reserve(m, 1000), 0);
	EXPECT_GE(anchormap_capacity(m), 1000);
	am_t_del(m);
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
	EXPECT_TRUE(ret == -ENOMEM || ret == -EINVAL);
	ret = anchormap_reserve(m, SIZE_MAX / 2);
	EXPECT_TRUE(ret == -ENOMEM || ret == -EINVAL);
	EXPECT_EQ(anchormap_debug_allocs_live(), live);
	EXPECT_EQ(anchormap_capacity(m), cap);
	EXPECT_EQ(am_t_count_moved(m, ptrs, 0, 10, 1), 0);
	am_test_free(ptrs);
	am_t_del(m);
}

/* ---- iteration ---- */

TEST(iter_empty_map)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct anchormap_iter *it = am_test_alloc(sizeof(*it));
	const void *k, *v;

	ASSERT_NOT_NULL(m);
	ASSERT_NOT_NULL(it);
	anchormap_iter_init(it, m);
	EXPECT_FALSE(anchormap_iter_next(it, &k, &v));
	am_test_free(it);
	am_t_del(m);
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
		k = am_t_rd64(kp);
		if (k >= n) {
			stray++;
			continue;
		}
		if (seen[k] < 255)
			seen[k]++;
		if (am_t_rd64(vp) != am_t_val(k))
			(*wrong_value)++;
	}
	return stray;
}

TEST(iter_each_key_once)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct anchormap_iter *it = am_test_alloc(sizeof(*it));
	u8 *seen = am_test_alloc(1000);
	long wrong = 0, bad = 0;
	u64 k;

	ASSERT_NOT_NULL(m);
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
	am_t_del(m);
}

TEST(iter_skips_removed)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct anchormap_iter *it = am_test_alloc(sizeof(*it));
	u8 *seen = am_test_alloc(200);
	long wrong = 0, bad = 0;
	u64 k;

	ASSERT_NOT_NULL(m);
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
	am_t_del(m);
}

TEST(iter_null_outputs)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct anchormap_iter *it = am_test_alloc(sizeof(*it));
	long n = 0;

	ASSERT_NOT_NULL(m);
	ASSERT_NOT_NULL(it);
	EXPECT_EQ(am_t_fill(m, 0, 300), 0);
	anchormap_iter_init(it, m);
	while (anchormap_iter_next(it, NULL, NULL) && n < 1000)
		n++;
	EXPECT_EQ(n, 300);
	am_test_free(it);
	am_t_del(m);
}

TEST(iter_end_is_sticky)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct anchormap_iter *it = am_test_alloc(sizeof(*it));
	long n = 0;

	ASSERT_NOT_NULL(m);
	ASSERT_NOT_NULL(it);
	EXPECT_EQ(am_t_fill(m, 0, 40), 0);
	anchormap_iter_init(it, m);
	while (anchormap_iter_next(it, NULL, NULL) && n < 100)
		n++;
	EXPECT_EQ(n, 40);
	EXPECT_FALSE(anchormap_iter_next(it, NULL, NULL));
	EXPECT_FALSE(anchormap_iter_next(it, NULL, NULL));
	am_test_free(it);
	am_t_del(m);
}

TEST(iter_pointers_match_lookup)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct anchormap_iter *it = am_test_alloc(sizeof(*it));
	const void *kp, *vp, *lv;
	long bad = 0;

	ASSERT_NOT_NULL(m);
	ASSERT_NOT_NULL(it);
	EXPECT_EQ(am_t_fill(m, 0, 500), 0);
	anchormap_iter_init(it, m);
	while (anchormap_iter_next(it, &kp, &vp)) {
		lv = NULL;
		bad += anchormap_get_key_value(m, kp, &lv) != kp || lv != vp;
	}
	EXPECT_EQ(bad, 0);
	am_test_free(it);
	am_t_del(m);
}

TEST(for_each_visits_all)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct anchormap_iter *it = am_test_alloc(sizeof(*it));
	const void *kp, *vp;
	u64 sum = 0, n = 0;

	ASSERT_NOT_NULL(m);
	ASSERT_NOT_NULL(it);
	EXPECT_EQ(am_t_fill(m, 1, 101), 0);
	anchormap_for_each(m, it, &kp, &vp) {
		sum += am_t_rd64(kp);
		n++;
	}
	EXPECT_EQ(n, 100);
	EXPECT_EQ(sum, 5050);
	am_test_free(it);
	am_t_del(m);
}

TEST(iter_next_mut_writes_values)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct anchormap_iter *it = am_test_alloc(sizeof(*it));
	const void *kp;
	void *vp;
	long n = 0, bad = 0;
	u64 k;

	ASSERT_NOT_NULL(m);
	ASSERT_NOT_NULL(it);
	EXPECT_EQ(am_t_fill(m, 0, 300), 0);
	anchormap_iter_init(it, m);
	while (anchormap_iter_next_mut(it, &kp, &vp)) {
		am_t_wr64(vp, am_t_rd64(kp) + 1000000);
		n++;
	}
	EXPECT_EQ(n, 300);
	for (k = 0; k < 300; k++) {
		const void *v = anchormap_get(m, &k);

		bad += !v || am_t_rd64(v) != k + 1000000;
	}
	EXPECT_EQ(bad, 0);
	am_test_free(it);
	am_t_del(m);
}

/* ---- exclusive: get_mut, modify, remove_entry ---- */

TEST(get_mut_writes_in_place)
{
	struct anchormap *m = am_t_new(0, NULL);
	u64 k = 8;
	void *p;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_put(m, k), 1);
	p = anchormap_get_mut(m, &k);
	ASSERT_NOT_NULL(p);
	am_t_wr64(p, 4242);
	EXPECT_EQ(anchormap_get(m, &k), p);
	EXPECT_EQ(am_t_rd64(anchormap_get(m, &k)), 4242);
	am_t_del(m);
}

TEST(get_mut_absent_is_null)
{
	struct anchormap *m = am_t_new(0, NULL);
	u64 k = 8;

	ASSERT_NOT_NULL(m);
	EXPECT_NULL(anchormap_get_mut(m, &k));
	EXPECT_EQ(am_t_put(m, k), 1);
	EXPECT_EQ(anchormap_remove(m, &k), 1);
	EXPECT_NULL(anchormap_get_mut(m, &k));
	am_t_del(m);
}

TEST(modify_runs_fn_on_present)
{
	struct anchormap *m = am_t_new(0, NULL);
	u64 arg[2] = { 5, 0 };
	u64 k = 8;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_put(m, k), 1);
	EXPECT_TRUE(anchormap_modify(m, &k, am_t_add_fn, arg));
	EXPECT_EQ(arg[1], 1);
	EXPECT_EQ(am_t_rd64(anchormap_get(m, &k)), am_t_val(k) + 5);
	am_t_del(m);
}

TEST(modify_absent_returns_false)
{
	struct anchormap *m = am_t_new(0, NULL);
	u64 arg[2] = { 5, 0 };
	u64 k = 8;

	ASSERT_NOT_NULL(m);
	EXPECT_FALSE(anchormap_modify(m, &k, am_t_add_fn, arg));
	EXPECT_EQ(arg[1], 0);
	EXPECT_EQ(anchormap_len(m), 0);
	am_t_del(m);
}

TEST(remove_entry_copies_out)
{
	struct anchormap *m = am_t_new(0, NULL);
	u64 k = 31, ko = 0, vo = 0;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 50), 0);
	EXPECT_EQ(anchormap_remove_entry(m, &k, &ko, &vo), 1);
	EXPECT_EQ(ko, 31);
	EXPECT_EQ(vo, am_t_val(31));
	EXPECT_EQ(anchormap_len(m), 49);
	EXPECT_NULL(anchormap_get(m, &k));
	EXPECT_EQ(am_t_count_bad(m, 0, 31), 0);
	EXPECT_EQ(am_t_count_bad(m, 32, 50), 0);
	am_t_del(m);
}

TEST(remove_entry_absent_returns_zero)
{
	struct anchormap *m = am_t_new(0, NULL);
	u64 k = 31, ko = 1, vo = 2;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(anchormap_remove_entry(m, &k, &ko, &vo), 0);
	EXPECT_EQ(am_t_put(m, k), 1);
	EXPECT_EQ(anchormap_remove(m, &k), 1);
	EXPECT_EQ(anchormap_remove_entry(m, &k, &ko, &vo), 0);
	EXPECT_EQ(ko, 1);
	EXPECT_EQ(vo, 2);
	am_t_del(m);
}

TEST(remove_entry_null_outputs)
{
	struct anchormap *m = am_t_new(0, NULL);
	u64 k = 31;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_put(m, k), 1);
	EXPECT_EQ(anchormap_remove_entry(m, &k, NULL, NULL), 1);
	EXPECT_EQ(anchormap_len(m), 0);
	am_t_del(m);
}

TEST(remove_entry_skips_release)
{
	struct am_t_rel *r = am_t_rel_new(50);
	struct anchormap *m;
	u64 k = 17, ko, vo;

	ASSERT_NOT_NULL(r);
	m = am_t_new(0, r);
	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 50), 0);
	EXPECT_EQ(anchormap_remove_entry(m, &k, &ko, &vo), 1);
	EXPECT_EQ(r->calls, 0);
	am_t_del(m);
	EXPECT_EQ(r->calls, 49);
	EXPECT_EQ(r->seen[17], 0);
	EXPECT_EQ(r->bad_value, 0);
	am_t_rel_del(r);
}

TEST(remove_entry_then_reinsert)
{
	struct anchormap *m = am_t_new(0, NULL);
	u64 k, bad = 0;

	ASSERT_NOT_NULL(m);
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
	am_t_del(m);
}

/* ---- clear, drain, retain, shrink_to_fit ---- */

TEST(clear_empties_map)
{
	struct anchormap *m = am_t_new(0, NULL);

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 500), 0);
	anchormap_clear(m);
	EXPECT_EQ(anchormap_len(m), 0);
	EXPECT_TRUE(anchormap_is_empty(m));
	EXPECT_EQ(am_t_count_present(m, 0, 500), 0);
	EXPECT_EQ(am_t_deleted(m), 0);
	am_t_del(m);
}

TEST(clear_releases_each_once)
{
	struct am_t_rel *r = am_t_rel_new(500);
	struct anchormap *m;

	ASSERT_NOT_NULL(r);
	m = am_t_new(0, r);
	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 500), 0);
	EXPECT_EQ(am_t_remove_step(m, 0, 500, 5), 0);
	anchormap_clear(m);
	EXPECT_EQ(r->calls, 500);
	EXPECT_EQ(am_t_rel_count_not(r, 0, 500, 1), 0);
	am_t_del(m);
	EXPECT_EQ(r->calls, 500);
	EXPECT_EQ(r->bad_value, 0);
	am_t_rel_del(r);
}

TEST(clear_keeps_one_segment)
{
	struct anchormap *m = am_t_new(0, NULL);

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 2000), 0);
	EXPECT_GT(am_t_segments(m), 1);
	anchormap_clear(m);
	EXPECT_EQ(am_t_segments(m), 1);
	am_t_del(m);
}

TEST(clear_then_reuse)
{
	struct anchormap *m = am_t_new(0, NULL);

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 2000), 0);
	anchormap_clear(m);
	EXPECT_EQ(am_t_fill(m, 0, 3000), 0);
	EXPECT_EQ(am_t_count_bad(m, 0, 3000), 0);
	EXPECT_EQ(anchormap_len(m), 3000);
	am_t_del(m);
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
	u64 k = am_t_rd64(key);

	d->calls++;
	if (k >= d->n || am_t_rd64(value) != am_t_val(k)) {
		d->bad++;
		return;
	}
	d->seen[k]++;
}

TEST(drain_hands_every_live_entry)
{
	struct am_t_drain_arg d = { .n = 300 };
	struct am_t_rel *r = am_t_rel_new(300);
	struct anchormap *m;
	long bad = 0;
	u64 k;

	ASSERT_NOT_NULL(r);
	d.seen = am_test_alloc(300);
	ASSERT_NOT_NULL(d.seen);
	m = am_t_new(0, r);
	ASSERT_NOT_NULL(m);
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
	am_t_del(m);
	EXPECT_EQ(r->calls, 0);
	am_test_free(d.seen);
	am_t_rel_del(r);
}

TEST(drain_releases_removed_entries)
{
	struct am_t_drain_arg d = { .n = 300 };
	struct am_t_rel *r = am_t_rel_new(300);
	struct anchormap *m;
	long bad = 0;
	u64 k;

	ASSERT_NOT_NULL(r);
	d.seen = am_test_alloc(300);
	ASSERT_NOT_NULL(d.seen);
	m = am_t_new(0, r);
	ASSERT_NOT_NULL(m);
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
	am_t_del(m);
	EXPECT_EQ(r->calls, 100);
	am_test_free(d.seen);
	am_t_rel_del(r);
}

TEST(drain_null_fn_empties)
{
	struct anchormap *m = am_t_new(0, NULL);

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 100), 0);
	anchormap_drain(m, NULL, NULL);
	EXPECT_EQ(anchormap_len(m), 0);
	EXPECT_EQ(am_t_count_present(m, 0, 100), 0);
	am_t_del(m);
}

TEST(drain_empty_map)
{
	struct am_t_drain_arg d = { .n = 1 };
	struct anchormap *m = am_t_new(0, NULL);

	ASSERT_NOT_NULL(m);
	anchormap_drain(m, am_t_drain_fn, &d);
	EXPECT_EQ(d.calls, 0);
	am_t_del(m);
}

static bool am_t_keep_even(const void *key, void *value, void *arg)
{
	long *calls = arg;

	(*calls)++;
	return !(am_t_rd64(key) & 1);
}

static bool am_t_keep_all(const void *key, void *value, void *arg)
{
	return true;
}

TEST(retain_keeps_selected)
{
	struct am_t_rel *r = am_t_rel_new(400);
	struct anchormap *m;
	long calls = 0, bad = 0;
	u64 k;

	ASSERT_NOT_NULL(r);
	m = am_t_new(0, r);
	ASSERT_NOT_NULL(m);
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
			bad += !v || am_t_rd64(v) != am_t_val(k) || r->seen[k] != 0;
	}
	EXPECT_EQ(bad, 0);
	am_t_del(m);
	EXPECT_EQ(am_t_rel_count_not(r, 0, 400, 1), 0);
	am_t_rel_del(r);
}

TEST(retain_reclaims_deleted)
{
	struct am_t_rel *r = am_t_rel_new(400);
	struct anchormap *m;

	ASSERT_NOT_NULL(r);
	m = am_t_new(0, r);
	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 400), 0);
	EXPECT_EQ(am_t_remove_step(m, 0, 400, 4), 0);
	EXPECT_EQ(am_t_deleted(m), 100);
	anchormap_retain(m, am_t_keep_all, NULL);
	EXPECT_EQ(am_t_deleted(m), 0);
	EXPECT_EQ(r->calls, 100);
	EXPECT_EQ(anchormap_len(m), 300);
	EXPECT_EQ(am_t_count_bad_sparse(m, 400, 4), 0);
	am_t_del(m);
	EXPECT_EQ(am_t_rel_count_not(r, 0, 400, 1), 0);
	am_t_rel_del(r);
}

static bool am_t_keep_and_bump(const void *key, void *value, void *arg)
{
	am_t_wr64(value, am_t_rd64(value) + 1);
	return true;
}

TEST(retain_value_is_writable)
{
	struct anchormap *m = am_t_new(0, NULL);
	long bad = 0;
	u64 k;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 100), 0);
	anchormap_retain(m, am_t_keep_and_bump, NULL);
	for (k = 0; k < 100; k++) {
		const void *v = anchormap_get(m, &k);

		bad += !v || am_t_rd64(v) != am_t_val(k) + 1;
	}
	EXPECT_EQ(bad, 0);
	am_t_del(m);
}

TEST(shrink_to_fit_compacts)
{
	struct am_t_rel *r = am_t_rel_new(2000);
	struct anchormap *m;
	struct anchormap_stats st;

	ASSERT_NOT_NULL(r);
	m = am_t_new(0, r);
	ASSERT_NOT_NULL(m);
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
	am_t_del(m);
	EXPECT_EQ(am_t_rel_count_not(r, 0, 2000, 1), 0);
	EXPECT_EQ(r->bad_value, 0);
	am_t_rel_del(r);
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

TEST(shrink_to_fit_keeps_values)
{
	struct anchormap *m = am_t_new(0, NULL);
	long bad = 0;
	u64 k;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 1000), 0);
	EXPECT_EQ(am_t_remove_step(m, 0, 1000, 2), 0);
	EXPECT_EQ(anchormap_shrink_to_fit(m), 0);
	for (k = 0; k < 1000; k++) {
		const void *v = anchormap_get(m, &k);

		if (k & 1)
			bad += !v || am_t_rd64(v) != am_t_val(k);
		else
			bad += v != NULL;
	}
	EXPECT_EQ(bad, 0);
	am_t_del(m);
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

TEST(shrink_to_fit_then_grow)
{
	struct anchormap *m = am_t_new(0, NULL);

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 1000), 0);
	EXPECT_EQ(am_t_remove_step(m, 0, 1000, 1), 0);
	EXPECT_EQ(anchormap_shrink_to_fit(m), 0);
	EXPECT_EQ(am_t_fill(m, 0, 3000), 0);
	EXPECT_EQ(am_t_count_bad(m, 0, 3000), 0);
	EXPECT_EQ(anchormap_len(m), 3000);
	am_t_del(m);
}

/* ---- entry API ---- */

TEST(entry_vacant)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct anchormap_entry e;
	u64 k = 6;

	ASSERT_NOT_NULL(m);
	ASSERT_EQ(anchormap_entry(m, &k, &e), &e);
	EXPECT_FALSE(anchormap_entry_is_occupied(&e));
	EXPECT_EQ(anchormap_len(m), 0);
	EXPECT_FALSE(anchormap_contains_key(m, &k));
	am_t_del(m);
}

TEST(entry_occupied)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct anchormap_entry e;
	u64 k = 6;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_put(m, k), 1);
	ASSERT_EQ(anchormap_entry(m, &k, &e), &e);
	EXPECT_TRUE(anchormap_entry_is_occupied(&e));
	am_t_del(m);
}

TEST(entry_removed_key_is_vacant)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct anchormap_entry e;
	u64 k = 6;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_put(m, k), 1);
	EXPECT_EQ(anchormap_remove(m, &k), 1);
	ASSERT_EQ(anchormap_entry(m, &k, &e), &e);
	EXPECT_FALSE(anchormap_entry_is_occupied(&e));
	am_t_del(m);
}

TEST(entry_or_insert_vacant_inserts)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct anchormap_entry e;
	u64 k = 6, v = 66;
	void *p;

	ASSERT_NOT_NULL(m);
	ASSERT_NOT_NULL(anchormap_entry(m, &k, &e));
	p = anchormap_entry_or_insert(&e, &v);
	ASSERT_FALSE(IS_ERR_OR_NULL(p));
	EXPECT_EQ(am_t_rd64(p), 66);
	EXPECT_EQ(anchormap_get(m, &k), p);
	EXPECT_EQ(anchormap_len(m), 1);
	am_t_del(m);
}

TEST(entry_or_insert_occupied_keeps_value)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct anchormap_entry e;
	u64 k = 6, v = 66;
	void *p;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_put(m, k), 1);
	ASSERT_NOT_NULL(anchormap_entry(m, &k, &e));
	p = anchormap_entry_or_insert(&e, &v);
	ASSERT_FALSE(IS_ERR_OR_NULL(p));
	EXPECT_EQ(am_t_rd64(p), am_t_val(k));
	EXPECT_EQ(anchormap_get(m, &k), p);
	EXPECT_EQ(anchormap_len(m), 1);
	am_t_del(m);
}

TEST(entry_or_insert_null_is_zero)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct anchormap_entry e;
	u64 k = 6;
	void *p;

	ASSERT_NOT_NULL(m);
	ASSERT_NOT_NULL(anchormap_entry(m, &k, &e));
	p = anchormap_entry_or_insert(&e, NULL);
	ASSERT_FALSE(IS_ERR_OR_NULL(p));
	EXPECT_EQ(am_t_rd64(p), 0);
	EXPECT_TRUE(anchormap_contains_key(m, &k));
	am_t_del(m);
}

TEST(entry_or_insert_value_writable)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct anchormap_entry e;
	u64 k = 6;
	void *p;

	ASSERT_NOT_NULL(m);
	ASSERT_NOT_NULL(anchormap_entry(m, &k, &e));
	p = anchormap_entry_or_insert(&e, NULL);
	ASSERT_FALSE(IS_ERR_OR_NULL(p));
	am_t_wr64(p, 1234);
	EXPECT_EQ(am_t_rd64(anchormap_get(m, &k)), 1234);
	am_t_del(m);
}

TEST(entry_and_modify_occupied)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct anchormap_entry e;
	u64 arg[2] = { 10, 0 };
	u64 k = 6;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_put(m, k), 1);
	ASSERT_NOT_NULL(anchormap_entry(m, &k, &e));
	EXPECT_EQ(anchormap_entry_and_modify(&e, am_t_add_fn, arg), &e);
	EXPECT_EQ(arg[1], 1);
	EXPECT_EQ(am_t_rd64(anchormap_get(m, &k)), am_t_val(k) + 10);
	am_t_del(m);
}

TEST(entry_and_modify_vacant_skips)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct anchormap_entry e;
	u64 arg[2] = { 10, 0 };
	u64 k = 6;

	ASSERT_NOT_NULL(m);
	ASSERT_NOT_NULL(anchormap_entry(m, &k, &e));
	EXPECT_EQ(anchormap_entry_and_modify(&e, am_t_add_fn, arg), &e);
	EXPECT_EQ(arg[1], 0);
	EXPECT_EQ(anchormap_len(m), 0);
	am_t_del(m);
}

TEST(entry_or_insert_with_vacant)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct am_t_init_arg a = { .fill = 555 };
	struct anchormap_entry e;
	u64 k = 6;
	void *p;

	ASSERT_NOT_NULL(m);
	ASSERT_NOT_NULL(anchormap_entry(m, &k, &e));
	p = anchormap_entry_or_insert_with(&e, am_t_init_fn, &a);
	ASSERT_FALSE(IS_ERR_OR_NULL(p));
	EXPECT_EQ(a.calls, 1);
	EXPECT_EQ(a.key_seen, 6);
	EXPECT_TRUE(a.value_was_zero);
	EXPECT_EQ(am_t_rd64(p), 555);
	EXPECT_EQ(anchormap_get(m, &k), p);
	am_t_del(m);
}

TEST(entry_or_insert_with_occupied_skips_init)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct am_t_init_arg a = { .fill = 555 };
	struct anchormap_entry e;
	u64 k = 6;
	void *p;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_put(m, k), 1);
	ASSERT_NOT_NULL(anchormap_entry(m, &k, &e));
	p = anchormap_entry_or_insert_with(&e, am_t_init_fn, &a);
	ASSERT_FALSE(IS_ERR_OR_NULL(p));
	EXPECT_EQ(a.calls, 0);
	EXPECT_EQ(am_t_rd64(p), am_t_val(k));
	am_t_del(m);
}

/* The word-count idiom: and_modify(+1).or_insert(1), across growths. */
TEST(entry_counts_occurrences)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct anchormap_entry e;
	u64 arg[2] = { 1, 0 };
	u64 one = 1, i, k, bad = 0;
	void *p;

	ASSERT_NOT_NULL(m);
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

		bad += !v || am_t_rd64(v) != want;
	}
	EXPECT_EQ(bad, 0);
	am_t_del(m);
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
		am_t_wr64(p, 1);
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

TEST(extend_counts_new_keys)
{
	struct anchormap *m = am_t_new(0, NULL);
	u64 keys[5] = { 1, 2, 3, 4, 5 };
	u64 vals[5] = { 10, 20, 30, 40, 50 };
	u64 k = 2, v = 99;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(anchormap_insert(m, &k, &v), 1);
	k = 4;
	EXPECT_EQ(anchormap_insert(m, &k, &v), 1);
	EXPECT_EQ(anchormap_extend(m, keys, vals, 5), 3);
	EXPECT_EQ(anchormap_len(m), 5);
	k = 2;
	EXPECT_EQ(am_t_rd64(anchormap_get(m, &k)), 99);
	k = 3;
	EXPECT_EQ(am_t_rd64(anchormap_get(m, &k)), 30);
	k = 5;
	EXPECT_EQ(am_t_rd64(anchormap_get(m, &k)), 50);
	am_t_del(m);
}

TEST(extend_null_values_zero)
{
	struct anchormap *m = am_t_new(0, NULL);
	u64 *keys = am_test_alloc(1000 * sizeof(u64));
	long bad = 0;
	u64 k;

	ASSERT_NOT_NULL(m);
	ASSERT_NOT_NULL(keys);
	for (k = 0; k < 1000; k++)
		keys[k] = k * 3;
	EXPECT_EQ(anchormap_extend(m, keys, NULL, 1000), 1000);
	for (k = 0; k < 1000; k++) {
		const void *v = anchormap_get(m, &keys[k]);

		bad += !v || am_t_rd64(v) != 0;
	}
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(anchormap_extend(m, keys, NULL, 1000), 0);
	am_test_free(keys);
	am_t_del(m);
}

TEST(extend_zero_keys)
{
	struct anchormap *m = am_t_new(0, NULL);
	u64 keys[1] = { 1 };

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(anchormap_extend(m, keys, NULL, 0), 0);
	EXPECT_EQ(anchormap_len(m), 0);
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

TEST(stats_track_growth)
{
	struct anchormap *m = am_t_new(0, NULL);
	struct anchormap_stats a, b;

	ASSERT_NOT_NULL(m);
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
	am_t_del(m);
}

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

#define AM_T_STR	16

static u8 am_t_lower(u8 c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static u64 am_t_nocase_hash(const void *key, u32 key_size, u64 seed)
{
	const u8 *s = key;
	u8 buf[AM_T_STR];
	u32 i;

	for (i = 0; i < key_size && i < AM_T_STR; i++)
		buf[i] = am_t_lower(s[i]);
	return anchormap_siphash24(buf, i, seed, ~seed);
}

static bool am_t_nocase_equal(const void *a, const void *b, u32 key_size)
{
	const u8 *x = a, *y = b;
	u32 i;

	for (i = 0; i < key_size; i++)
		if (am_t_lower(x[i]) != am_t_lower(y[i]))
			return false;
	return true;
}

/* A fixed-size, zero-padded string key. */
static void am_t_str(char *buf, const char *s)
{
	u32 i;

	memset(buf, 0, AM_T_STR);
	for (i = 0; s[i] && i < AM_T_STR; i++)
		buf[i] = s[i];
}

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
		EXPECT_EQ(am_t_rd64(vp), 1);
	}
	am_t_str(k, "WoRlD");
	EXPECT_TRUE(anchormap_contains_key(m, k));
	am_t_str(k, "hELLo");
	EXPECT_EQ(anchormap_remove(m, k), 1);
	EXPECT_EQ(anchormap_len(m), 1);
	am_t_del(m);
}

static u64 am_t_hash_zero(const void *key, u32 key_size, u64 seed)
{
	return 0;
}

static u64 am_t_hash_ones(const void *key, u32 key_size, u64 seed)
{
	return ~0ULL;
}

/* Everything collides: insert, find, remove, walk must still be right. */
static long am_t_collide(u64 (*hash)(const void *, u32, u64), u64 n)
{
	struct anchormap_iter *it = am_test_alloc(sizeof(*it));
	struct anchormap_params p;
	struct anchormap *m;
	long bad = 0, walked = 0;
	u64 k;

	am_t_params(&p, sizeof(u64), sizeof(u64));
	p.hash = hash;
	m = am_t_new_params(&p, 0);
	if (!m || !it) {
		am_t_del(m);
		am_test_free(it);
		return -ENOMEM;
	}
	bad += am_t_fill(m, 0, n) != 0;
	for (k = 0; k < n; k++)
		bad += am_t_put(m, k) != 0;
	bad += am_t_count_bad(m, 0, n);
	bad += am_t_remove_step(m, 0, n, 2);
	bad += am_t_count_present(m, 0, n) != (long)(n / 2);
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
	struct anchormap_params p;
	struct anchormap_stats st;
	struct anchormap *m;

	am_t_params(&p, sizeof(u64), sizeof(u64));
	p.hash = am_t_hash_zero;
	m = am_t_new_params(&p, 1000);
	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 200), 0);
	anchormap_stats(m, &st);
	EXPECT_GE(st.longest_probe, 2);
	am_t_del(m);
}

/* ---- anchormap_get_fast(): the header-inline lookup ---- */

/* The params of am_t_new()'s maps, as a compile-time constant. */
static const struct anchormap_params am_t_u64_params = {
	.key_size = sizeof(u64),
	.value_size = sizeof(u64),
};

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
			bad += am_t_rd64(f) != am_t_val(k);
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

TEST(get_fast_grown_agrees_with_get)
{
	struct anchormap *m = am_t_new(0, NULL);

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 5000), 0);
	EXPECT_GE(am_t_segments(m), 4);		/* hits in older segments */
	EXPECT_EQ(am_t_fast_disagree(m, 5000), 0);
	am_t_del(m);
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

TEST(get_fast_null_args)
{
	struct anchormap *m = am_t_new(0, NULL);
	u64 k = 1;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_put(m, k), 1);
	EXPECT_NULL(anchormap_get_fast(NULL, &k, am_t_u64_params));
	EXPECT_NULL(anchormap_get_fast(m, NULL, am_t_u64_params));
	am_t_del(m);
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
		bad += am_t_rd64(f) != am_t_val(k);
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
				bad += am_t_rd64(f[i]) != am_t_val(k);
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
		EXPECT_EQ(am_t_rd64(f), 5);
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

/* ---- release accounting ---- */

/*
 * One rule for every entry point: a destroyed map (and one whose init
 * failed after it was cleared) reads as empty and refuses writes with
 * -EINVAL; nothing crashes, not even the inline lookup.
 */
static void am_t_expect_dead(struct am_test_ctx *_ctx, struct anchormap *m)
{
	struct anchormap_iter it;
	const void *kp, *vp;
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
	EXPECT_EQ(anchormap_len(m), 0);
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

TEST(release_once_on_destroy)
{
	struct am_t_rel *r = am_t_rel_new(1000);
	struct anchormap *m;

	ASSERT_NOT_NULL(r);
	m = am_t_new(0, r);
	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 1000), 0);
	EXPECT_EQ(r->calls, 0);
	am_t_del(m);
	EXPECT_EQ(r->calls, 1000);
	EXPECT_EQ(am_t_rel_count_not(r, 0, 1000, 1), 0);
	EXPECT_EQ(r->bad_value, 0);
	am_t_rel_del(r);
}

TEST(release_removed_on_destroy)
{
	struct am_t_rel *r = am_t_rel_new(1000);
	struct anchormap *m;

	ASSERT_NOT_NULL(r);
	m = am_t_new(0, r);
	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 1000), 0);
	EXPECT_EQ(am_t_remove_step(m, 0, 1000, 2), 0);
	/* removal under shared access must not release: readers may hold it */
	EXPECT_EQ(r->calls, 0);
	am_t_del(m);
	EXPECT_EQ(r->calls, 1000);
	EXPECT_EQ(am_t_rel_count_not(r, 0, 1000, 1), 0);
	am_t_rel_del(r);
}

TEST(release_not_on_duplicate_insert)
{
	struct am_t_rel *r = am_t_rel_new(10);
	struct anchormap *m;

	ASSERT_NOT_NULL(r);
	m = am_t_new(0, r);
	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 10), 0);
	EXPECT_EQ(am_t_put(m, 3), 0);
	EXPECT_EQ(r->calls, 0);
	am_t_del(m);
	EXPECT_EQ(am_t_rel_count_not(r, 0, 10, 1), 0);
	am_t_rel_del(r);
}

/*
 * One life through every reclaiming operation: each key must be released
 * exactly once, except those handed out by remove_entry (never).
 */
TEST(release_once_across_exclusive_ops)
{
	struct am_t_rel *r = am_t_rel_new(1200);
	struct anchormap *m;
	long calls = 0;
	u64 k;

	ASSERT_NOT_NULL(r);
	m = am_t_new(0, r);
	ASSERT_NOT_NULL(m);
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
	am_t_del(m);
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
	am_t_rel_del(r);
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
		u64 v = am_t_val(k);

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
		bad += !keyp[k] || am_t_rd64(keyp[k]) != k ||
		       anchormap_get_key_value(m, &k, NULL) != keyp[k];
	EXPECT_EQ(bad, 0);
	am_test_free(keyp);
	am_test_free(ptrs);
	am_t_del(m);
}

TEST(growth_from_zero_capacity)
{
	struct anchormap *m = am_t_new(0, NULL);
	size_t segs = 0, prev = 0;
	u64 k;
	long bad = 0;

	ASSERT_NOT_NULL(m);
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
	am_t_del(m);
}

TEST(growth_with_removes_interleaved)
{
	struct anchormap *m = am_t_new(0, NULL);
	long bad = 0;
	u64 k;

	ASSERT_NOT_NULL(m);
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
	struct anchormap_params p;
	struct anchormap *m;
	long bad;

	am_t_params(&p, sizeof(u64), sizeof(u64));
	p.hash = hash;
	m = am_t_new_params(&p, 0);
	if (!m)
		return -ENOMEM;
	bad = am_t_fill(m, 0, n) != 0;
	bad += am_t_count_bad(m, 0, n);
	bad += am_t_count_present(m, n, 2 * n);
	bad += am_t_remove_step(m, 0, n, 2);
	bad += am_t_count_present(m, 0, n) != (long)(n / 2);
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
		/* nothing leaks; the replaced indexes go at the first try, nothing more */
		if (failures == 1)
			EXPECT_LE(anchormap_debug_allocs_live(), live);
		else
			EXPECT_EQ(anchormap_debug_allocs_live(), live);
		anchormap_stats(m, &st);
		EXPECT_EQ(st.retired_bytes, 0);
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
	/* a failed allocation of the tail's own arena keeps arena K instead */
	EXPECT_LT(st.entries, before.entries);
	EXPECT_EQ(st.retired_bytes, 0);
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

/* ---- snapshots: anchormap_save / anchormap_load ---- */

#define AM_T_SNAP_MAX	(1u << 20)

/* A byte buffer the save callback appends to and the load callback reads. */
struct am_t_snap {
	u8 *buf;
	size_t len;
	size_t pos;
	size_t limit;		/* load: bytes available (truncation) */
	size_t chunk;		/* load: most bytes handed out per call */
	size_t asked_past;	/* load: bytes requested beyond limit */
	int fail_at_call;	/* 1-based call that returns fail_err, 0 = none */
	int fail_err;
	int calls;
	bool overclaim;		/* load: claim one byte more than asked */
};

static struct am_t_snap *am_t_snap_new(void)
{
	struct am_t_snap *b = am_test_alloc(sizeof(*b));

	if (!b)
		return NULL;
	b->buf = am_test_alloc(AM_T_SNAP_MAX);
	if (!b->buf) {
		am_test_free(b);
		return NULL;
	}
	b->chunk = AM_T_SNAP_MAX;
	return b;
}

static void am_t_snap_del(struct am_t_snap *b)
{
	if (!b)
		return;
	am_test_free(b->buf);
	am_test_free(b);
}

static int am_t_snap_write(const void *buf, size_t len, void *arg)
{
	struct am_t_snap *b = arg;

	if (++b->calls == b->fail_at_call)
		return b->fail_err;
	if (len > AM_T_SNAP_MAX - b->len)
		return -ENOSPC;
	memcpy(b->buf + b->len, buf, len);
	b->len += len;
	return 0;
}

static int am_t_snap_read(void *buf, size_t len, void *arg)
{
	struct am_t_snap *b = arg;
	size_t n = len;

	if (++b->calls == b->fail_at_call)
		return b->fail_err;
	if (n > b->chunk)
		n = b->chunk;
	if (n > b->limit - b->pos) {
		b->asked_past += n - (b->limit - b->pos);
		n = b->limit - b->pos;
	}
	memcpy(buf, b->buf + b->pos, n);
	b->pos += n;
	return (int)(b->overclaim && n ? n + 1 : n);
}

/* Rewind for a load of the first @limit bytes, handed out @chunk at a time. */
static void am_t_snap_rewind(struct am_t_snap *b, size_t limit, size_t chunk)
{
	b->pos = 0;
	b->limit = limit;
	b->chunk = chunk;
	b->calls = 0;
	b->fail_at_call = 0;
	b->asked_past = 0;
	b->overclaim = false;
}

/* FNV-1a 64 (the published constants), to re-seal edited snapshots. */
static u64 am_t_fnv(const u8 *p, size_t len)
{
	u64 h = 0xcbf29ce484222325ULL;

	while (len--)
		h = (h ^ *p++) * 0x100000001b3ULL;
	return h;
}

static void am_t_le(u8 *p, u64 v, int bytes)
{
	int i;

	for (i = 0; i < bytes; i++)
		p[i] = (u8)(v >> (8 * i));
}

static void am_t_snap_reseal(struct am_t_snap *b)
{
	am_t_le(b->buf + b->len - 8, am_t_fnv(b->buf, b->len - 8), 8);
}

/* Save @m, load into a fresh map with the same sizes, compare. */
static void am_t_roundtrip(struct am_test_ctx *_ctx, struct anchormap *m,
			   const struct anchormap_params *p)
{
	struct am_t_snap *b = am_t_snap_new();
	struct anchormap *copy = am_t_new_params(p, 0);

	ASSERT_NOT_NULL(b);
	ASSERT_NOT_NULL(copy);
	EXPECT_EQ(anchormap_save(m, am_t_snap_write, b), 0);
	am_t_snap_rewind(b, b->len, 7);	/* odd pieces: fields straddle calls */
	EXPECT_EQ(anchormap_load(copy, am_t_snap_read, b), 0);
	EXPECT_EQ(b->pos, b->len);
	EXPECT_EQ(b->asked_past, 0);
	EXPECT_EQ(anchormap_len(copy), anchormap_len(m));
	EXPECT_TRUE(anchormap_equal(copy, m));
	am_t_del(copy);
	am_t_snap_del(b);
}

TEST(snapshot_roundtrip_empty)
{
	struct anchormap_params p;
	struct anchormap *m;

	am_t_params(&p, 8, 8);
	m = am_t_new_params(&p, 0);
	ASSERT_NOT_NULL(m);
	am_t_roundtrip(_ctx, m, &p);
	am_t_del(m);
}

TEST(snapshot_roundtrip_one_entry)
{
	struct anchormap_params p;
	struct anchormap *m;

	am_t_params(&p, 8, 8);
	m = am_t_new_params(&p, 0);
	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_put(m, 77), 1);
	am_t_roundtrip(_ctx, m, &p);
	am_t_del(m);
}

TEST(snapshot_roundtrip_many_segments_and_deleted)
{
	struct anchormap_params p;
	struct anchormap_stats st;
	struct anchormap *m;
	u64 k;

	am_t_params(&p, 8, 8);
	m = am_t_new_params(&p, 0);
	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 20000), 0);
	for (k = 0; k < 20000; k += 3)
		EXPECT_EQ(anchormap_remove(m, &k), 1);
	anchormap_stats(m, &st);
	EXPECT_GE(st.segments, 8);
	EXPECT_GT(st.deleted, 0);
	am_t_roundtrip(_ctx, m, &p);
	am_t_del(m);
}

TEST(snapshot_roundtrip_large_keys_values)
{
	struct anchormap_params p;
	struct anchormap *m;
	u8 *kv = am_test_alloc(64 + 256);
	int i, j;

	ASSERT_NOT_NULL(kv);
	am_t_params(&p, 64, 256);
	m = am_t_new_params(&p, 0);
	ASSERT_NOT_NULL(m);
	for (i = 0; i < 300; i++) {
		for (j = 0; j < 64 + 256; j++)
			kv[j] = (u8)(i * 31 + j * 7);
		kv[0] = (u8)i;
		kv[1] = (u8)(i >> 8);	/* keys distinct past 256 */
		EXPECT_EQ(anchormap_insert(m, kv, kv + 64), 1);
	}
	am_t_roundtrip(_ctx, m, &p);
	am_t_del(m);
	am_test_free(kv);
}

TEST(snapshot_roundtrip_set)
{
	struct anchormap_params p;
	struct anchormap *m;
	u32 k;

	am_t_params(&p, 4, 0);
	m = am_t_new_params(&p, 0);
	ASSERT_NOT_NULL(m);
	for (k = 0; k < 1000; k++)
		EXPECT_EQ(anchormap_insert(m, &k, NULL), 1);
	am_t_roundtrip(_ctx, m, &p);
	am_t_del(m);
}

/*
 * A snapshot of keys 0..n-1 in @b and an empty u64 -> u64 map to load it
 * into; each malformed-input test edits the bytes, loads, and checks the
 * error and that the map stayed empty.
 */
struct am_t_snapfx {
	struct am_t_snap *b;
	struct anchormap *src;
	struct anchormap *dst;
};

FIXTURE(snap) {
	struct am_t_snapfx f;
};

FIXTURE_SETUP(snap)
{
	self->f.b = am_t_snap_new();
	self->f.src = am_t_new(0, NULL);
	self->f.dst = am_t_new(0, NULL);
	ASSERT_NOT_NULL(self->f.b);
	ASSERT_NOT_NULL(self->f.src);
	ASSERT_NOT_NULL(self->f.dst);
	ASSERT_EQ(am_t_fill(self->f.src, 0, 100), 0);
	ASSERT_EQ(anchormap_save(self->f.src, am_t_snap_write, self->f.b), 0);
	/* 32 header + 4 block count + 100 * 16 + 4 end + 8 count + 8 sum */
	ASSERT_EQ(self->f.b->len, 32 + 4 + 1600 + 4 + 16);
	am_t_snap_rewind(self->f.b, self->f.b->len, 4096);
}

FIXTURE_TEARDOWN(snap)
{
	am_t_del(self->f.src);
	am_t_del(self->f.dst);
	am_t_snap_del(self->f.b);
}

/* Load what is in the buffer now: the error, with the target left empty. */
static int am_t_snap_load(struct am_test_ctx *_ctx, struct am_t_snapfx *f)
{
	int ret = anchormap_load(f->dst, am_t_snap_read, f->b);

	if (ret)
		EXPECT_TRUE(anchormap_is_empty(f->dst));
	return ret;
}

TEST_F(snap, load_accepts_pristine)
{
	EXPECT_EQ(am_t_snap_load(_ctx, &self->f), 0);
	EXPECT_TRUE(anchormap_equal(self->f.src, self->f.dst));
}

TEST_F(snap, load_rejects_bad_magic)
{
	self->f.b->buf[3] ^= 0x20;
	EXPECT_EQ(am_t_snap_load(_ctx, &self->f), -EBADMSG);
}

TEST_F(snap, load_rejects_unknown_version)
{
	self->f.b->buf[8] = 2;
	am_t_snap_reseal(self->f.b);
	EXPECT_EQ(am_t_snap_load(_ctx, &self->f), -EPROTONOSUPPORT);
}

TEST_F(snap, load_rejects_byte_order)
{
	am_t_le(self->f.b->buf + 12, 0x04030201, 4);
	am_t_snap_reseal(self->f.b);
	EXPECT_EQ(am_t_snap_load(_ctx, &self->f), -EBADMSG);
}

TEST_F(snap, load_rejects_key_size_mismatch)
{
	am_t_le(self->f.b->buf + 16, 4, 4);
	am_t_snap_reseal(self->f.b);
	EXPECT_EQ(am_t_snap_load(_ctx, &self->f), -EINVAL);
}

TEST_F(snap, load_rejects_value_size_mismatch)
{
	am_t_le(self->f.b->buf + 20, 16, 4);
	am_t_snap_reseal(self->f.b);
	EXPECT_EQ(am_t_snap_load(_ctx, &self->f), -EINVAL);
}

TEST_F(snap, load_rejects_checksum)
{
	self->f.b->buf[32 + 4 + 5] ^= 1;	/* a key byte; not resealed */
	EXPECT_EQ(am_t_snap_load(_ctx, &self->f), -EBADMSG);
}

TEST_F(snap, load_rejects_count_mismatch)
{
	am_t_le(self->f.b->buf + self->f.b->len - 16, 101, 8);
	am_t_snap_reseal(self->f.b);
	EXPECT_EQ(am_t_snap_load(_ctx, &self->f), -EBADMSG);
}

TEST_F(snap, load_rejects_huge_block)
{
	am_t_le(self->f.b->buf + 32, 0x7fffffff, 4);
	am_t_snap_reseal(self->f.b);
	EXPECT_EQ(am_t_snap_load(_ctx, &self->f), -EBADMSG);
}

TEST_F(snap, load_rejects_duplicate_key)
{
	u8 *e = self->f.b->buf + 32 + 4;

	memcpy(e + 16, e, 8);	/* entry 1 gets entry 0's key */
	am_t_snap_reseal(self->f.b);
	EXPECT_EQ(am_t_snap_load(_ctx, &self->f), -EBADMSG);
}

TEST_F(snap, load_rejects_every_truncation)
{
	size_t cut, full = self->f.b->len;
	long bad = 0;

	for (cut = 0; cut < full; cut++) {
		am_t_snap_rewind(self->f.b, cut, cut % 13 + 1);
		bad += am_t_snap_load(_ctx, &self->f) != -ENODATA;
	}
	EXPECT_EQ(bad, 0);
}

TEST_F(snap, load_reads_nothing_past_the_end)
{
	/* trailing garbage after a valid snapshot is never asked for */
	am_t_snap_rewind(self->f.b, self->f.b->len + 100, 4096);
	EXPECT_EQ(am_t_snap_load(_ctx, &self->f), 0);
	EXPECT_EQ(self->f.b->pos, self->f.b->len);
	EXPECT_EQ(self->f.b->asked_past, 0);
}

TEST_F(snap, load_passes_read_error)
{
	self->f.b->fail_at_call = 5;
	self->f.b->fail_err = -EIO;
	EXPECT_EQ(am_t_snap_load(_ctx, &self->f), -EIO);
}

TEST_F(snap, load_rejects_overclaiming_reader)
{
	self->f.b->overclaim = true;
	EXPECT_EQ(am_t_snap_load(_ctx, &self->f), -EINVAL);
}

TEST_F(snap, load_rejects_non_empty_target)
{
	EXPECT_EQ(am_t_put(self->f.dst, 5), 1);
	EXPECT_EQ(anchormap_load(self->f.dst, am_t_snap_read, self->f.b), -EINVAL);
	EXPECT_EQ(anchormap_len(self->f.dst), 1);
}

TEST_F(snap, load_survives_every_allocation_failure)
{
	int n, ret = -ENOMEM;

	for (n = 1; n < AM_T_MAX_ALLOC_TRIES && ret == -ENOMEM; n++) {
		am_t_snap_rewind(self->f.b, self->f.b->len, 4096);
		anchormap_debug_fail_nth(n);
		ret = am_t_snap_load(_ctx, &self->f);
		anchormap_debug_fail_nth(0);
	}
	EXPECT_EQ(ret, 0);
	EXPECT_GT(n, 2);	/* at least one allocation did fail */
	EXPECT_TRUE(anchormap_equal(self->f.src, self->f.dst));
}

TEST_F(snap, save_passes_write_error)
{
	self->f.b->len = 0;
	self->f.b->calls = 0;
	self->f.b->fail_at_call = 2;
	self->f.b->fail_err = -ENOSPC;
	EXPECT_EQ(anchormap_save(self->f.src, am_t_snap_write, self->f.b), -ENOSPC);
}

TEST_F(snap, save_survives_allocation_failure)
{
	self->f.b->len = 0;
	anchormap_debug_fail_nth(1);
	EXPECT_EQ(anchormap_save(self->f.src, am_t_snap_write, self->f.b), -ENOMEM);
	anchormap_debug_fail_nth(0);
	EXPECT_EQ(self->f.b->len, 0);
}

TEST(snapshot_null_args)
{
	struct anchormap *m = am_t_new(0, NULL);

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(anchormap_save(NULL, am_t_snap_write, NULL), -EINVAL);
	EXPECT_EQ(anchormap_save(m, NULL, NULL), -EINVAL);
	EXPECT_EQ(anchormap_load(NULL, am_t_snap_read, NULL), -EINVAL);
	EXPECT_EQ(anchormap_load(m, NULL, NULL), -EINVAL);
	am_t_del(m);
}

/* ---- replace and insert_or_replace ---- */

/* A replace gives the new value; the old entry's bytes stay for whoever holds them. */
TEST(replace_present_copy_on_write)
{
	struct anchormap *m = am_t_new(0, NULL);
	const u64 *held, *now;
	u64 k = 5, v = 77;

	ASSERT_NOT_NULL(m);
	ASSERT_EQ(am_t_put(m, k), 1);
	held = anchormap_get(m, &k);
	ASSERT_NOT_NULL(held);
	EXPECT_EQ(anchormap_replace(m, &k, &v), 1);
	now = anchormap_get(m, &k);
	ASSERT_NOT_NULL(now);
	EXPECT_EQ(*now, 77);
	EXPECT_TRUE(now != held);	/* a new entry */
	EXPECT_EQ(am_t_rd64(held), am_t_val(k));	/* unchanged */
	EXPECT_EQ(anchormap_len(m), 1);
	EXPECT_EQ(am_t_deleted(m), 1);	/* the old entry counts as removed */
	am_t_del(m);
}

TEST(replace_absent_changes_nothing)
{
	struct anchormap *m = am_t_new(0, NULL);
	u64 k = 5, v = 77;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(anchormap_replace(m, &k, &v), 0);
	EXPECT_NULL(anchormap_get(m, &k));
	EXPECT_EQ(anchormap_len(m), 0);
	ASSERT_EQ(am_t_put(m, k), 1);
	EXPECT_EQ(anchormap_remove(m, &k), 1);
	EXPECT_EQ(anchormap_replace(m, &k, &v), 0);	/* removed: absent */
	EXPECT_NULL(anchormap_get(m, &k));
	am_t_del(m);
}

TEST(replace_null_args)
{
	struct anchormap *m = am_t_new(0, NULL);
	u64 k = 5, v = 77;

	ASSERT_NOT_NULL(m);
	ASSERT_EQ(am_t_put(m, k), 1);
	EXPECT_EQ(anchormap_replace(NULL, &k, &v), -EINVAL);
	EXPECT_EQ(anchormap_replace(m, NULL, &v), -EINVAL);
	EXPECT_EQ(anchormap_replace(m, &k, NULL), -EINVAL);
	EXPECT_EQ(anchormap_insert_or_replace(NULL, &k, &v), -EINVAL);
	EXPECT_EQ(anchormap_insert_or_replace(m, NULL, &v), -EINVAL);
	EXPECT_EQ(anchormap_insert_or_replace(m, &k, NULL), -EINVAL);
	EXPECT_EQ(am_t_rd64(anchormap_get(m, &k)), am_t_val(k));
	am_t_del(m);
}

TEST(insert_or_replace_inserts_then_replaces)
{
	struct anchormap *m = am_t_new(0, NULL);
	u64 k = 9, v = 1;

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(anchormap_insert_or_replace(m, &k, &v), 0);
	EXPECT_EQ(am_t_rd64(anchormap_get(m, &k)), 1);
	v = 2;
	EXPECT_EQ(anchormap_insert_or_replace(m, &k, &v), 1);
	EXPECT_EQ(am_t_rd64(anchormap_get(m, &k)), 2);
	EXPECT_EQ(anchormap_len(m), 1);
	am_t_del(m);
}

/*
 * Many replaces of many keys, through storage growth and index rebuilds:
 * every key holds its last value, every pointer taken before keeps its
 * bytes, a walk yields each key once, and removal takes each out for good
 * (no stale reference left in any index).
 */
TEST(replace_many_through_growth)
{
	struct anchormap *m = am_t_new(0, NULL);
	const u64 n = 3000;
	const void **held;
	struct anchormap_iter it;
	const void *kp, *vp;
	long bad = 0, seen = 0;
	u64 k, v, r;

	ASSERT_NOT_NULL(m);
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
		bad += !vp || am_t_rd64(vp) != (4ULL << 32 | k);
		bad += am_t_rd64(held[k]) != am_t_val(k);
	}
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(anchormap_len(m), n);
	EXPECT_EQ(am_t_deleted(m), 4 * n);
	anchormap_for_each(m, &it, &kp, &vp) {
		seen++;
		bad += am_t_rd64(vp) != (4ULL << 32 | am_t_rd64(kp));
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
	am_t_del(m);
}

/* The old entries of replaces are released once, with their own values. */
TEST(replace_old_entries_released_once)
{
	struct am_t_rel *rel = am_t_rel_new(10);
	struct anchormap *m;
	u64 k, v;

	ASSERT_NOT_NULL(rel);
	rel->check_value = false;
	m = am_t_new(0, rel);
	ASSERT_NOT_NULL(m);
	ASSERT_EQ(am_t_fill(m, 0, 10), 0);
	for (k = 0; k < 5; k++) {
		v = 1000 + k;
		EXPECT_EQ(anchormap_replace(m, &k, &v), 1);
	}
	EXPECT_EQ(anchormap_shrink_to_fit(m), 0);	/* reclaims the 5 old entries */
	EXPECT_EQ(am_t_rel_count_not(rel, 0, 5, 1), 0);
	EXPECT_EQ(am_t_rel_count_not(rel, 5, 10, 0), 0);
	for (k = 0; k < 5; k++)
		EXPECT_EQ(am_t_rd64(anchormap_get(m, &k)), 1000 + k);
	am_t_del(m);
	EXPECT_EQ(am_t_rel_count_not(rel, 0, 5, 2), 0);	/* the old entry, then the new */
	EXPECT_EQ(am_t_rel_count_not(rel, 5, 10, 1), 0);
	am_t_rel_del(rel);
}

/*
 * A replace whose storage cannot grow fails with -ENOMEM and leaves the
 * old value in place, at every allocation it makes.
 */
TEST(fail_replace_keeps_old_value)
{
	struct anchormap *m = am_t_new(0, NULL);
	long failures = 0, n;
	u64 k, v;
	int ret = 0;

	ASSERT_NOT_NULL(m);
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
		EXPECT_EQ(am_t_rd64(anchormap_get(m, &k)), v);
		if (failures)
			break;
	}
	EXPECT_GT(failures, 0);	/* growth was really refused once */
	EXPECT_EQ(anchormap_len(m), 64);
	am_t_del(m);
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
TEST(get_many_fast_agrees_and_falls_back)
{
	static const struct anchormap_params p8 = { .key_size = 8, .value_size = 8 };
	static const struct anchormap_params p16 = { .key_size = 8, .value_size = 16 };
	struct anchormap *m = am_t_new(0, NULL);
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
	am_t_del(m);
}

TEST(get_many_bad_args)
{
	struct anchormap *m = am_t_new(0, NULL);
	const void *vals[2] = { (void *)1, (void *)1 };
	u64 keys[2] = { 1, 2 };

	ASSERT_NOT_NULL(m);
	EXPECT_EQ(anchormap_get_many(NULL, keys, 2, vals), -EINVAL);
	EXPECT_EQ(anchormap_get_many(m, NULL, 2, vals), -EINVAL);
	EXPECT_EQ(anchormap_get_many(m, keys, 2, NULL), -EINVAL);
	EXPECT_TRUE(vals[0] == (void *)1 && vals[1] == (void *)1);	/* nothing written */
	EXPECT_EQ(anchormap_get_many(m, keys, 0, vals), 0);
	EXPECT_EQ(anchormap_get_many(m, keys, 2, vals), 0);	/* empty map: misses */
	EXPECT_TRUE(!vals[0] && !vals[1]);
	am_t_del(m);
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
	struct anchormap_params p;
	struct anchormap *m;
	long bad = 0;
	u64 k, v;

	am_t_params(&p, 8, 8);
	p.hash = am_t_hash_tags;
	m = am_t_new_params(&p, 1000);
	ASSERT_NOT_NULL(m);
	/* 12 fill group 0, the next 116 pass it, each with its tag's bit */
	for (k = 0; k < 128; k++) {
		v = k + 1;
		bad += anchormap_insert(m, &k, &v) != 1;
	}
	for (k = 0; k < 128; k++) {
		const void *vp = anchormap_get(m, &k);

		bad += !vp || am_t_rd64(vp) != k + 1;
	}
	for (k = 128; k < 512; k++)	/* same tags, absent: misses */
		bad += anchormap_get(m, &k) != NULL;
	EXPECT_EQ(bad, 0);
	am_t_del(m);
}

#define AM_COMMON_TESTS(X)						\
	X(init_null_args)						\
	X(init_rejects_zero_key_size)					\
	X(init_rejects_bad_value_align)					\
	X(init_accepts_good_value_align)				\
	X(init_rejects_bad_flags)					\
	X(init_atomic_flag_works)					\
	X(init_rejects_absurd_capacity)					\
	X(init_zero_capacity_usable)					\
	X(init_capacity_honoured)					\
	X(init_capacity_prevents_growth)				\
	X(insert_null_args)						\
	X(remove_null_args)						\
	X(get_or_insert_null_args)					\
	X(remove_entry_null_args)					\
	X(reserve_null_map)						\
	X(clone_null_args)						\
	X(entry_null_args)						\
	X(extend_null_args)						\
	X(extend_rejects_n_above_int_max)				\
	X(u64map_insert_new_returns_one)					\
	X(u64map_insert_present_keeps_first_value)				\
	X(u64map_insert_null_value_is_zero)					\
	X(u64map_get_absent_is_null)						\
	X(u64map_get_returns_stable_pointer)					\
	X(insert_copies_key_and_value)					\
	X(get_key_value_returns_stored_key)				\
	X(get_key_value_absent)						\
	X(contains_key_tracks_membership)				\
	X(remove_present_then_absent)					\
	X(remove_keeps_held_pointer_bytes)				\
	X(reinsert_after_remove_uses_new_slot)				\
	X(reinsert_same_bytes_gets_new_entry)				\
	X(removed_entries_never_reused_for_other_keys)			\
	X(keys_past_full_home_group_found)				\
	X(reinsert_with_release_releases_each_entry)			\
	X(reinsert_with_init_function_gets_new_entry)			\
	X(toggled_member_leaves_index_clean)				\
	X(compaction_reclaims_removed_entries)				\
	X(iter_reinserted_keys_not_twice)					\
	X(remove_updates_len_and_deleted)				\
	X(get_or_insert_inserts_absent)					\
	X(get_or_insert_returns_existing)				\
	X(get_or_insert_null_value_is_zero)				\
	X(get_or_insert_with_init_once)					\
	X(get_or_insert_with_init_sees_key_and_zero)			\
	X(get_or_insert_with_present_skips_init)			\
	X(get_or_try_insert_with_success)				\
	X(get_or_try_insert_with_error)					\
	X(get_or_try_insert_with_error_counts_deleted)			\
	X(get_or_try_insert_with_error_never_released)			\
	X(get_or_try_insert_with_retry_after_error)			\
	X(get_or_try_insert_with_out_of_contract_codes_are_einval)	\
	X(len_and_is_empty)						\
	X(len_counts_many)						\
	X(reserve_grows_capacity)					\
	X(reserve_prevents_growth)					\
	X(reserve_zero_is_noop)						\
	X(reserve_absurd_fails_cleanly)					\
	X(iter_empty_map)						\
	X(iter_each_key_once)						\
	X(iter_skips_removed)						\
	X(iter_null_outputs)						\
	X(iter_end_is_sticky)						\
	X(iter_pointers_match_lookup)					\
	X(for_each_visits_all)						\
	X(iter_next_mut_writes_values)					\
	X(get_mut_writes_in_place)					\
	X(get_mut_absent_is_null)					\
	X(modify_runs_fn_on_present)					\
	X(modify_absent_returns_false)					\
	X(remove_entry_copies_out)					\
	X(remove_entry_absent_returns_zero)				\
	X(remove_entry_null_outputs)					\
	X(remove_entry_skips_release)					\
	X(remove_entry_then_reinsert)					\
	X(clear_empties_map)						\
	X(clear_releases_each_once)					\
	X(clear_keeps_one_segment)					\
	X(clear_then_reuse)						\
	X(drain_hands_every_live_entry)					\
	X(drain_releases_removed_entries)				\
	X(drain_null_fn_empties)					\
	X(drain_empty_map)						\
	X(retain_keeps_selected)					\
	X(retain_reclaims_deleted)					\
	X(retain_value_is_writable)					\
	X(shrink_to_fit_compacts)					\
	X(shrink_to_fit_in_place_every_shape)				\
	X(shrink_to_fit_keeps_values)					\
	X(shrink_to_fit_empty_map)					\
	X(shrink_to_fit_then_grow)					\
	X(entry_vacant)							\
	X(entry_occupied)						\
	X(entry_removed_key_is_vacant)					\
	X(entry_or_insert_vacant_inserts)				\
	X(entry_or_insert_occupied_keeps_value)				\
	X(entry_or_insert_null_is_zero)					\
	X(entry_or_insert_value_writable)				\
	X(entry_and_modify_occupied)					\
	X(entry_and_modify_vacant_skips)				\
	X(entry_or_insert_with_vacant)					\
	X(entry_or_insert_with_occupied_skips_init)			\
	X(entry_counts_occurrences)					\
	X(clone_copies_all)						\
	X(clone_is_independent)						\
	X(clone_skips_removed)						\
	X(clone_empty_map)						\
	X(equal_same_contents)						\
	X(equal_empty_maps)						\
	X(equal_differs_on_value_byte)					\
	X(equal_differs_on_key_set)					\
	X(equal_ignores_removed)					\
	X(extend_counts_new_keys)					\
	X(extend_null_values_zero)					\
	X(extend_zero_keys)						\
	X(stats_fresh_map)						\
	X(stats_name_from_params)					\
	X(stats_track_growth)						\
	X(set_value_size_zero)						\
	X(big_key_value_align16)					\
	X(big_key_value_align64)					\
	X(big_key_value_align4096)					\
	X(natural_value_alignment)					\
	X(explicit_value_alignment_small_value)				\
	X(custom_hash_equal_nocase)					\
	X(constant_hash_zero_collides)					\
	X(constant_hash_ones_collides)					\
	X(collisions_raise_longest_probe)				\
	X(get_fast_presized_agrees_with_get)				\
	X(get_fast_grown_agrees_with_get)				\
	X(get_fast_misses_removed)					\
	X(get_fast_null_args)						\
	X(get_fast_other_params_fall_back)				\
	X(get_fast_other_value_size)					\
	X(get_fast_custom_hash)						\
	X(get_fast_custom_hash_equal_inline)				\
	X(get_fast_key_sizes)						\
	X(get_fast_value_layouts)					\
	X(destroyed_map_reads_empty_and_refuses_writes)			\
	X(failed_init_map_reads_empty_and_refuses_writes)		\
	X(release_once_on_destroy)					\
	X(release_removed_on_destroy)					\
	X(release_not_on_duplicate_insert)				\
	X(release_once_across_exclusive_ops)				\
	X(growth_keeps_every_pointer)					\
	X(growth_from_zero_capacity)					\
	X(growth_with_removes_interleaved)				\
	X(siphash24_reference_vectors)					\
	X(siphash24_unaligned_input)					\
	X(hash_default_mixes_every_byte)				\
	X(hash_siphash_mixes_every_byte)				\
	X(hash_default_keyed_and_spread)				\
	X(hash_siphash_keyed_and_spread)				\
	X(map_with_hash_siphash)					\
	X(map_with_hash_default_explicit)				\
	X(fail_init)							\
	X(fail_insert_growth)						\
	X(fail_get_or_insert_growth)					\
	X(fail_entry_or_insert_growth)					\
	X(fail_reserve)							\
	X(fail_clone)							\
	X(fail_shrink_to_fit)						\
	X(fail_extend_keeps_prefix)					\
	X(fail_retain_compaction_keeps_map_correct)			\
	X(iter_reinserted_before_walk_seen_once)			\
	X(iter_reinserted_at_wrapped_position_not_twice)		\
	X(snapshot_roundtrip_empty)				\
	X(snapshot_roundtrip_one_entry)				\
	X(snapshot_roundtrip_many_segments_and_deleted)		\
	X(snapshot_roundtrip_large_keys_values)			\
	X(snapshot_roundtrip_set)				\
	X(snap_load_accepts_pristine)				\
	X(snap_load_rejects_bad_magic)				\
	X(snap_load_rejects_unknown_version)			\
	X(snap_load_rejects_byte_order)				\
	X(snap_load_rejects_key_size_mismatch)			\
	X(snap_load_rejects_value_size_mismatch)		\
	X(snap_load_rejects_checksum)				\
	X(snap_load_rejects_count_mismatch)			\
	X(snap_load_rejects_huge_block)				\
	X(snap_load_rejects_duplicate_key)			\
	X(snap_load_rejects_every_truncation)			\
	X(snap_load_reads_nothing_past_the_end)			\
	X(snap_load_passes_read_error)				\
	X(snap_load_rejects_overclaiming_reader)		\
	X(snap_load_rejects_non_empty_target)			\
	X(snap_load_survives_every_allocation_failure)		\
	X(snap_save_passes_write_error)				\
	X(snap_save_survives_allocation_failure)		\
	X(snapshot_null_args)						\
	X(replace_present_copy_on_write)				\
	X(replace_absent_changes_nothing)				\
	X(replace_null_args)						\
	X(insert_or_replace_inserts_then_replaces)			\
	X(replace_many_through_growth)					\
	X(replace_old_entries_released_once)				\
	X(fail_replace_keeps_old_value)					\
	X(get_many_agrees_with_get_k4)					\
	X(get_many_agrees_with_get_k8)					\
	X(get_many_agrees_with_get_k16)					\
	X(get_many_agrees_with_get_k24)					\
	X(get_many_fast_agrees_and_falls_back)				\
	X(get_many_bad_args)						\
	X(overflow_word_full_never_matches)

static const struct am_test_case am_common_cases[] = {
	AM_COMMON_TESTS(AM_TEST_ENTRY)
};
