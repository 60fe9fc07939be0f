// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * test_interleave.c - deterministic interleavings (userspace).
 *
 * Each test makes one bad interleaving certain instead of likely: the core
 * of a test build (-DANCHORMAP_TEST_HOOKS) calls anchormap_test_hook at
 * chosen points of a walk, and the hook runs "another CPU's" operations
 * right there, on the walker's own thread.  Where the defect is a data race
 * rather than a wrong result, two threads are ordered by a RELAXED flag,
 * which gives them no happens-before edge, so that TSan (the tsan variant of
 * this program) reports any access to bytes the other thread wrote.
 *
 * Revival (anchormap.c) is what these tests aim at: a key re-inserted with
 * the bytes it was removed with may get a removed slot back, so a control
 * byte can go FULL -> DELETED -> FULL under a walk.
 */
#include <pthread.h>

#include "harness.h"

#ifndef ANCHORMAP_TEST_HOOKS
#error "test_interleave.c needs a core built with -DANCHORMAP_TEST_HOOKS"
#endif

#define AM_I_KEY	100		/* the key that flips */
#define AM_I_FILLERS	7		/* keys 1..7, present throughout */

/* Every key in home group 0 of a one-group (16-slot) segment, one stripe. */
static u64 am_i_hash_one_group(const void *key, u32 key_size, u64 seed)
{
	return 0;
}

static int am_i_new(struct anchormap *m, u64 (*hash)(const void *, u32, u64), size_t cap)
{
	struct anchormap_params p = {
		.key_size = sizeof(u64), .value_size = sizeof(u64), .name = "interleave",
	};

	p.hash = hash;
	return anchormap_init(m, &p, cap);
}

static int am_i_put(struct anchormap *m, u64 k, u64 v)
{
	return anchormap_insert(m, &k, &v);
}

static int am_i_del(struct anchormap *m, u64 k)
{
	return anchormap_remove(m, &k);
}

/*
 * The script: at the @at[point]-th time (from 1) the walk reaches @point,
 * flip the key to @v[point]: take it out and put it back with that value.
 * Both steps must succeed; a failure is counted in @errors.
 */
#define AM_I_POINTS	(ANCHORMAP_TP_ITER_NEXT + 1)

struct am_i_script {
	struct anchormap *map;
	int at[AM_I_POINTS];
	u64 v[AM_I_POINTS];
	int reached[AM_I_POINTS];
	int flips, errors;
};

static struct am_i_script am_i_s;

static void am_i_flip(u64 v)
{
	am_i_s.errors += am_i_del(am_i_s.map, AM_I_KEY) != 1;
	am_i_s.errors += am_i_put(am_i_s.map, AM_I_KEY, v) != 1;
	am_i_s.flips++;
}

static void am_i_hook(const struct anchormap *map, enum anchormap_test_point point)
{
	if (map != am_i_s.map || point >= AM_I_POINTS)
		return;
	if (++am_i_s.reached[point] == am_i_s.at[point])
		am_i_flip(am_i_s.v[point]);
}

static void am_i_at(enum anchormap_test_point point, int nth, u64 v)
{
	am_i_s.at[point] = nth;
	am_i_s.v[point] = v;
}

/*
 * One 16-slot segment: fillers at slots 1..7 and two copies of K, K=1 at
 * slot 0 and K=2 at slot 8 (K inserted with 1, removed, inserted with 2);
 * with @flip_back, K is then removed and inserted with 1 again (reviving
 * any removed copy, that gives K=1 live at slot 0, K=2 removed at slot 8).
 */
static void am_i_setup(struct am_test_ctx *_ctx, struct anchormap *m, bool flip_back)
{
	struct anchormap_stats st;
	u64 k;

	memset(m, 0, sizeof(*m));	/* a failed init still tears down cleanly */
	ASSERT_EQ(am_i_new(m, am_i_hash_one_group, 8), 0);
	EXPECT_EQ(am_i_put(m, AM_I_KEY, 1), 1);
	for (k = 1; k <= AM_I_FILLERS; k++)
		EXPECT_EQ(am_i_put(m, k, k * 10), 1);
	EXPECT_EQ(am_i_del(m, AM_I_KEY), 1);
	EXPECT_EQ(am_i_put(m, AM_I_KEY, 2), 1);
	if (flip_back) {
		EXPECT_EQ(am_i_del(m, AM_I_KEY), 1);
		EXPECT_EQ(am_i_put(m, AM_I_KEY, 1), 1);
	}
	anchormap_stats(m, &st);
	EXPECT_EQ(st.segments, 1);
	EXPECT_EQ(st.slots, 16);
	memset(&am_i_s, 0, sizeof(am_i_s));
	am_i_s.map = m;
	anchormap_test_hook = am_i_hook;
}

/*
 * The interleaving of the issue "Contract holes" (defect 1): the walk reads
 * the first word of group 0 (slot 0: K=1 live), the other CPU flips K to 2,
 * the walk reads the second word, the other CPU flips K back to 1, the walk
 * goes on; after the walk's first entry the other CPU flips K to 2 again.
 * Reviving any removed copy, the flips bring back slots 8 and 0 in turn,
 * and a walk that trusts a re-read word as a snapshot yields K twice.
 */
static void am_i_script_snapshot_fooled(void)
{
	am_i_at(ANCHORMAP_TP_ITER_WORDS, 1, 2);
	am_i_at(ANCHORMAP_TP_ITER_LOADED, 1, 1);
	am_i_at(ANCHORMAP_TP_ITER_NEXT, 2, 2);	/* after the first entry */
}

static void am_i_teardown(struct anchormap *m)
{
	anchormap_test_hook = NULL;
	anchormap_destroy(m);
}

/*
 * Walk @m once and check what it yields: K at most once (it was not present
 * throughout), each filler exactly once and with its value, nothing else.
 */
static void am_i_expect_walk_once(struct am_test_ctx *_ctx, const struct anchormap *m)
{
	int key = 0, filler[AM_I_FILLERS + 1] = { 0 }, other = 0, bad = 0;
	struct anchormap_iter it;
	const void *kp, *vp;
	u64 k, v;

	anchormap_for_each(m, &it, &kp, &vp) {
		memcpy(&k, kp, sizeof(k));
		memcpy(&v, vp, sizeof(v));
		if (k == AM_I_KEY) {
			key++;
		} else if (k >= 1 && k <= AM_I_FILLERS) {
			filler[k]++;
			bad += v != k * 10;
		} else {
			other++;
		}
	}
	for (k = 1; k <= AM_I_FILLERS; k++)
		bad += filler[k] != 1;
	EXPECT_LE(key, 1);
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(other, 0);
}

/* Defect 1: one walk yields the same key twice. */
TEST(walk_under_revival_flips_yields_key_at_most_once)
{
	struct anchormap m;

	am_i_setup(_ctx, &m, true);
	if (_ctx->failed)
		goto out;
	am_i_script_snapshot_fooled();
	am_i_expect_walk_once(_ctx, &m);
	EXPECT_EQ(am_i_s.flips, 3);	/* the interleaving really happened */
	EXPECT_EQ(am_i_s.errors, 0);
out:
	am_i_teardown(&m);
}

/*
 * The same hole, met by a walk that takes a group's words as candidates
 * and checks each when it gets there: the walk reads word 0 (slot 0: K=1
 * live), the other CPU flips K to 2, the walk reads word 1 (slot 8: K=2
 * live), so both slots are candidates; the walk yields K at slot 8, and the
 * other CPU flips K to 1.  Reviving the earlier copy at slot 0 would put K
 * where the walk is still going; only the last copy of a key may come back.
 */
TEST(walk_past_key_then_flip_to_earlier_copy_yields_key_at_most_once)
{
	struct anchormap m;

	am_i_setup(_ctx, &m, true);
	if (_ctx->failed)
		goto out;
	am_i_at(ANCHORMAP_TP_ITER_WORDS, 1, 2);
	am_i_at(ANCHORMAP_TP_ITER_NEXT, 2, 1);	/* after the first entry */
	am_i_expect_walk_once(_ctx, &m);
	EXPECT_EQ(am_i_s.flips, 2);
	EXPECT_EQ(am_i_s.errors, 0);
out:
	am_i_teardown(&m);
}

/* A snapshot in memory. */
struct am_i_buf {
	u8 data[4096];
	size_t len, pos;
};

static int am_i_write(const void *buf, size_t len, void *arg)
{
	struct am_i_buf *b = arg;

	if (len > sizeof(b->data) - b->len)
		return -ENOSPC;
	memcpy(b->data + b->len, buf, len);
	b->len += len;
	return 0;
}

static int am_i_read(void *buf, size_t len, void *arg)
{
	struct am_i_buf *b = arg;
	size_t n = b->len - b->pos < len ? b->len - b->pos : len;

	memcpy(buf, b->data + b->pos, n);
	b->pos += n;
	return (int)n;
}

/*
 * Defect 2: a save during the same flips holds K twice, and loading the
 * user's snapshot fails with -EBADMSG.  Every entry present for the whole
 * save is in it exactly once, and the snapshot loads.
 */
TEST(save_under_revival_flips_loads_back)
{
	static struct am_i_buf b;
	struct anchormap m, back;
	int err;

	am_i_setup(_ctx, &m, true);
	if (_ctx->failed)
		goto out;
	am_i_script_snapshot_fooled();
	memset(&b, 0, sizeof(b));
	EXPECT_EQ(anchormap_save(&m, am_i_write, &b), 0);
	anchormap_test_hook = NULL;
	EXPECT_EQ(am_i_s.flips, 3);
	EXPECT_EQ(am_i_s.errors, 0);
	err = am_i_new(&back, am_i_hash_one_group, 0);
	EXPECT_EQ(err, 0);
	if (err)
		goto out;	/* am_i_teardown() below still destroys @m */
	err = anchormap_load(&back, am_i_read, &b);
	EXPECT_EQ(err, 0);
	if (!err)
		am_i_expect_walk_once(_ctx, &back);
	anchormap_destroy(&back);
out:
	am_i_teardown(&m);
}

/*
 * Defect 3: a writer that revives compares the key bytes of removed slots
 * whose control byte matches its own.  Keys X (stripe 1) and Y (stripe 2)
 * share a home group and the top hash bits; Z (stripe 2, other top bits)
 * gives stripe 2 a removed slot, so that Y's insert looks for one to
 * revive.  Thread A inserts and removes X; thread B, ordered after A only by
 * a RELAXED flag (no happens-before), inserts Y.  If B reads X's bytes, it
 * reads bytes written under another stripe's lock with no edge to them: a
 * data race, which the tsan variant reports (and fails on).
 */
#define AM_I_X		1
#define AM_I_Y		2
#define AM_I_Z		3

static u64 am_i_hash_stripes(const void *key, u32 key_size, u64 seed)
{
	u64 k;

	memcpy(&k, key, sizeof(k));
	switch (k) {
	case AM_I_X:
		return 0x2aULL << 58 | 1ULL << 32;
	case AM_I_Y:
		return 0x2aULL << 58 | 2ULL << 32;
	default:
		return 0x15ULL << 58 | 2ULL << 32;
	}
}

struct am_i_race {
	struct anchormap map;
	int a_done;		/* RELAXED only: orders in time, not in memory */
	int errors;
};

static void *am_i_thread_a(void *arg)
{
	struct am_i_race *r = arg;
	int errors = 0;

	errors += am_i_put(&r->map, AM_I_X, 11) != 1;
	errors += am_i_del(&r->map, AM_I_X) != 1;
	__atomic_add_fetch(&r->errors, errors, __ATOMIC_RELAXED);
	__atomic_store_n(&r->a_done, 1, __ATOMIC_RELAXED);
	return NULL;
}

static void *am_i_thread_b(void *arg)
{
	struct am_i_race *r = arg;
	int errors = 0;

	errors += am_i_put(&r->map, AM_I_Z, 33) != 1;
	errors += am_i_del(&r->map, AM_I_Z) != 1;
	while (!__atomic_load_n(&r->a_done, __ATOMIC_RELAXED))
		;
	errors += am_i_put(&r->map, AM_I_Y, 22) != 1;
	__atomic_add_fetch(&r->errors, errors, __ATOMIC_RELAXED);
	return NULL;
}

TEST(revive_never_reads_other_stripes_bytes)
{
	static struct am_i_race r;
	pthread_t a, b;
	u64 k = AM_I_Y;
	const void *v;

	memset(&r, 0, sizeof(r));
	ASSERT_EQ(am_i_new(&r.map, am_i_hash_stripes, 8), 0);
	ASSERT_EQ(pthread_create(&b, NULL, am_i_thread_b, &r), 0);
	ASSERT_EQ(pthread_create(&a, NULL, am_i_thread_a, &r), 0);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	EXPECT_EQ(r.errors, 0);
	v = anchormap_get(&r.map, &k);
	ASSERT_NOT_NULL(v);
	memcpy(&k, v, sizeof(k));
	EXPECT_EQ(k, 22);
	EXPECT_EQ(anchormap_len(&r.map), 1);
	anchormap_destroy(&r.map);
}

/*
 * Growth publishes a new segment with two stores, the segment count (where
 * writers insert) and the newest segment (where the inline lookup starts).
 * Between them, another CPU inserts a key and looks it up: the lookup must
 * find it.  Publishing the count first let the insert land in the new
 * segment while the lookup still started from the only old one and, seeing
 * an EMPTY byte there, stopped: a miss of a key inserted before it began.
 */
struct am_i_grow {
	struct anchormap *map;
	int reached, inserted, found;
};

static struct am_i_grow am_i_g;

static void am_i_grow_hook(const struct anchormap *map, enum anchormap_test_point point)
{
	u64 k = 7, v = 70;
	const void *p;

	if (map != am_i_g.map || point != ANCHORMAP_TP_GROW_PUBLISH || am_i_g.reached++)
		return;
	am_i_g.inserted = anchormap_insert(am_i_g.map, &k, &v);
	p = anchormap_get(am_i_g.map, &k);
	am_i_g.found = p && !memcmp(p, &v, sizeof(v));
}

TEST(insert_while_growth_publishes_is_found)
{
	struct anchormap m;
	u64 k = 7;

	memset(&m, 0, sizeof(m));
	ASSERT_EQ(am_i_new(&m, NULL, 0), 0);	/* one small segment */
	memset(&am_i_g, 0, sizeof(am_i_g));
	am_i_g.map = &m;
	anchormap_test_hook = am_i_grow_hook;
	EXPECT_EQ(anchormap_reserve(&m, 1000), 0);	/* appends a segment */
	anchormap_test_hook = NULL;
	EXPECT_EQ(am_i_g.reached, 1);
	EXPECT_EQ(am_i_g.inserted, 1);
	EXPECT_EQ(am_i_g.found, 1);
	EXPECT_NOT_NULL(anchormap_get(&m, &k));
	anchormap_destroy(&m);
}

static const struct am_test_case am_interleave_cases[] = {
	AM_TEST_ENTRY(walk_under_revival_flips_yields_key_at_most_once)
	AM_TEST_ENTRY(walk_past_key_then_flip_to_earlier_copy_yields_key_at_most_once)
	AM_TEST_ENTRY(save_under_revival_flips_loads_back)
	AM_TEST_ENTRY(revive_never_reads_other_stripes_bytes)
	AM_TEST_ENTRY(insert_while_growth_publishes_is_found)
};

int main(void)
{
	return am_test_main(am_interleave_cases,
			    (int)(sizeof(am_interleave_cases) / sizeof(am_interleave_cases[0])));
}
