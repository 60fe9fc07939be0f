/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * common/helpers.h - what the portable functional tests share: map
 * constructors, value makers, release bookkeeping, checkers and the
 * fixtures.  common_tests.c includes it after harness.h, then the area
 * files (selftests/common/), all in one translation unit: the userspace runner
 * (selftests/user/test_common.c) and the kernel test module both include
 * common_tests.c.
 *
 * Portable on purpose: no libc beyond memcpy/memcmp/memset, no threads, no
 * floating point, no VLAs, and small stack frames (maps, iterators and
 * arrays come from am_test_alloc()), so it runs on a kernel stack.
 *
 * Conventions: keys are u64 indices 0..n-1 unless a test says otherwise,
 * and the value stored for key k is am_tu_val(k) (am_testutil.h), so any
 * slot can be
 * checked on its own.  Loops count mismatches and assert once, to keep a
 * failure to one diagnostic line.
 */
#ifndef _AM_T_HELPERS_H
#define _AM_T_HELPERS_H

#include "../am_snapbuf.h"

#define AM_T_MAX_ALLOC_TRIES	64

/* ---- maps, values and checks ---- */

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
	u64 k = am_tu_rd64(key);

	r->calls++;
	if (r->check_value && am_tu_rd64(value) != am_tu_val(k))
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

/*
 * A release tracker for keys 0..nkeys-1, checking values: one block, the
 * record, then a count per key.
 */
static struct am_t_rel *am_t_rel_new(u64 nkeys)
{
	struct am_t_rel *r = am_test_alloc(sizeof(*r) + nkeys);

	if (!r)
		return NULL;
	r->seen = (u8 *)(r + 1);
	r->nkeys = nkeys;
	r->check_value = true;
	return r;
}

static void am_t_rel_del(struct am_t_rel *r)
{
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
	u64 v = am_tu_val(k);

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

		if (!v || am_tu_rd64(v) != am_tu_val(k))
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
			bad += !v || am_tu_rd64(v) != am_tu_val(k);
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
		    am_tu_rd64(ptrs[k]) != am_tu_val(k))
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
	a->key_seen = am_tu_rd64(key);
	a->value_was_zero = am_tu_rd64(value) == 0;
	am_tu_wr64(value, a->fill);
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

	am_tu_wr64(value, am_tu_rd64(value) + a[0]);
	a[1]++;
}

/* ---- allocation failure injection ---- */

/*
 * An operation for am_t_fail_each(): @run does it once on @arg and returns
 * @ok on success, a negative errno otherwise; @unchanged, if set, checks
 * after each failed run that the run changed nothing.  @frees_first: the
 * first failed run may free what the map no longer needs (compaction drops
 * replaced indexes before it allocates), never allocate.  @failures counts
 * the failed runs, over every call with this record.
 */
struct am_t_fail {
	int (*run)(struct am_test_ctx *_ctx, void *arg);
	void (*unchanged)(struct am_test_ctx *_ctx, void *arg);
	void *arg;
	int ok;
	bool frees_first;
	long failures;
};

/*
 * Runs @f with the 1st, 2nd, ... allocation failing until a run goes
 * through (at most AM_T_MAX_ALLOC_TRIES runs).  Every failed run must
 * return -ENOMEM, leave as many allocations live as before it (no more,
 * for the first with @f->frees_first), and pass @f->unchanged.  Returns
 * what the last run returned; a run that never goes through fails the
 * test.
 */
static int am_t_fail_each(struct am_test_ctx *_ctx, struct am_t_fail *f)
{
	long live, n;
	int ret = -ENOMEM;

	for (n = 1; n <= AM_T_MAX_ALLOC_TRIES; n++) {
		live = anchormap_debug_allocs_live();
		anchormap_debug_fail_nth(n);
		ret = f->run(_ctx, f->arg);
		anchormap_debug_fail_nth(0);
		if (ret == f->ok)
			return ret;
		f->failures++;
		EXPECT_EQ(ret, -ENOMEM);
		if (f->frees_first && f->failures == 1)
			EXPECT_LE(anchormap_debug_allocs_live(), live);
		else
			EXPECT_EQ(anchormap_debug_allocs_live(), live);
		if (f->unchanged)
			f->unchanged(_ctx, f->arg);
		if (_ctx->failed)
			return ret;
	}
	am_test_log("%s: still failing with the %d-th allocation failing",
		    _ctx->name, AM_T_MAX_ALLOC_TRIES);
	_ctx->failed = 1;
	return ret;
}

/* ---- fixtures ---- */

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

/*
 * A u64 -> u64 map releasing into a tracker of keys 0..AM_T_RELMAP_KEYS-1
 * that checks values.  A test that checks what destroy released calls
 * am_t_destroy_now(&self->m) first.
 */
#define AM_T_RELMAP_KEYS	2000

FIXTURE(relmap) {
	struct am_t_rel *r;
	struct anchormap *m;
};

FIXTURE_SETUP(relmap)
{
	self->r = am_t_rel_new(AM_T_RELMAP_KEYS);
	ASSERT_NOT_NULL(self->r);
	self->m = am_t_new(0, self->r);
	ASSERT_NOT_NULL(self->m);
}

FIXTURE_TEARDOWN(relmap)
{
	am_t_del(self->m);
	am_t_rel_del(self->r);
}

/* Destroys a fixture's map before its teardown, which then skips it. */
static void am_t_destroy_now(struct anchormap **m)
{
	am_t_del(*m);
	*m = NULL;
}

/* ---- hashes and callbacks that several areas use ---- */

/*
 * Removed and re-inserted keys, and keys placed past their home group,
 * made deterministic with a hash that picks the home group (capacity 100:
 * an index of 32 groups of 12; all keys share a stripe).  Keys below 100
 * have home group 0, other keys group 7.
 */
/* A hash whose home group is @g (its tag 0x80): __anchormap_home(). */
#define AM_T_HOME(g)	((u64)(g) * sizeof(struct anchormap_group))

static u64 am_t_hash_home_0(const void *key, u32 key_size, u64 seed)
{
	return AM_T_HOME(am_tu_rd64(key) < 100 ? 0 : 7);
}

static u64 am_t_hash_home_7(const void *key, u32 key_size, u64 seed)
{
	return AM_T_HOME(7);
}

/* A u64 -> u64 map hashing with @hash. */
static struct anchormap *am_t_new_hashed(u64 (*hash)(const void *, u32, u64), size_t cap)
{
	struct anchormap_params p;

	am_t_params(&p, sizeof(u64), sizeof(u64));
	p.hash = hash;
	return am_t_new_params(&p, cap);
}

static struct anchormap *am_t_new_homed(u64 (*hash)(const void *, u32, u64))
{
	return am_t_new_hashed(hash, 100);
}

static bool am_t_keep_even(const void *key, void *value, void *arg)
{
	long *calls = arg;

	(*calls)++;
	return !(am_tu_rd64(key) & 1);
}

/* The params of am_t_new()'s maps, as a compile-time constant. */
static const struct anchormap_params am_t_u64_params = {
	.key_size = sizeof(u64),
	.value_size = sizeof(u64),
};

/* Case-insensitive string keys of AM_T_STR bytes. */
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

static u64 am_t_hash_zero(const void *key, u32 key_size, u64 seed)
{
	return 0;
}

static u64 am_t_hash_ones(const void *key, u32 key_size, u64 seed)
{
	return ~0ULL;
}

#endif /* _AM_T_HELPERS_H */
