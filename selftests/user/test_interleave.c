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
 * What they aim at: walks meeting keys removed and re-inserted under them,
 * lookups meeting an index slot that is freed and reused between two
 * of their loads, and writers meeting a rebuild of the index.
 */
#include <pthread.h>
#include <unistd.h>

#include "harness.h"
#include "am_snapbuf.h"
#include "anchormap_internal.h"	/* where entries are: the arena test */

#ifndef ANCHORMAP_TEST_HOOKS
#error "test_interleave.c needs a core built with -DANCHORMAP_TEST_HOOKS"
#endif

#define AM_I_KEY	100		/* the key that flips */
#define AM_I_FILLERS	7		/* keys 1..7, present throughout */

/* Every key in home group 0 of the index, one stripe. */
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
 * The script: from the @at[point]-th time (from 1) the walk reaches @point,
 * @times[point] times, flip the key: take it out and put it back with
 * another value.  Both steps must succeed; a failure is counted in @errors.
 */
#define AM_I_POINTS	(ANCHORMAP_TP_CLAIM_TAG + 1)

struct am_i_script {
	struct anchormap *map;
	int at[AM_I_POINTS];
	int times[AM_I_POINTS];
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
	if (++am_i_s.reached[point] >= am_i_s.at[point] && am_i_s.times[point]) {
		am_i_s.times[point]--;
		am_i_flip(am_i_s.v[point]);
		am_i_s.v[point] = 3 - am_i_s.v[point];	/* 2, 1, 2... */
	}
}

/* From the @nth time @point is reached, @times flips: to @v, then back... */
static void am_i_at(enum anchormap_test_point point, int nth, int times, u64 v)
{
	am_i_s.at[point] = nth;
	am_i_s.times[point] = times;
	am_i_s.v[point] = v;
}

/*
 * K first (storage entry 0), then the fillers, all in one home group and
 * one stripe.  The capacity makes the stripe take 64 entries at once, so
 * that re-inserts land inside what storage had handed out when the walk
 * began.
 */
#define AM_I_BIG	70000

static void am_i_setup(struct am_test_ctx *_ctx, struct anchormap *m)
{
	u64 k;

	memset(m, 0, sizeof(*m));	/* a failed init still tears down cleanly */
	ASSERT_EQ(am_i_new(m, am_i_hash_one_group, AM_I_BIG), 0);
	EXPECT_EQ(am_i_put(m, AM_I_KEY, 1), 1);
	for (k = 1; k <= AM_I_FILLERS; k++)
		EXPECT_EQ(am_i_put(m, k, k * 10), 1);
	memset(&am_i_s, 0, sizeof(am_i_s));
	am_i_s.map = m;
	anchormap_test_hook = am_i_hook;
}

/*
 * The walk yields K (entry 0) first; before its next step the other CPU
 * flips K to 2 and, a step later, to 1: each flip puts K into a new entry
 * further on in storage, where the walk is still going.  Yielding those
 * would give K two or three times; they were inserted after the walk began.
 */
static void am_i_script_flips_ahead(void)
{
	am_i_at(ANCHORMAP_TP_ITER_NEXT, 2, 2, 2);	/* after the first entry */
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

TEST(walk_under_flips_yields_key_at_most_once)
{
	struct anchormap m;

	am_i_setup(_ctx, &m);
	if (_ctx->failed)
		goto out;
	am_i_script_flips_ahead();
	am_i_expect_walk_once(_ctx, &m);
	EXPECT_EQ(am_i_s.flips, 2);	/* the interleaving really happened */
	EXPECT_EQ(am_i_s.errors, 0);
out:
	am_i_teardown(&m);
}

/* Flipped before the walk reaches it, K is not yielded at all; fillers once. */
TEST(walk_before_key_flipped_yields_fillers_once)
{
	struct anchormap m;

	am_i_setup(_ctx, &m);
	if (_ctx->failed)
		goto out;
	am_i_at(ANCHORMAP_TP_ITER_NEXT, 1, 1, 2);	/* before the first entry */
	am_i_expect_walk_once(_ctx, &m);
	EXPECT_EQ(am_i_s.flips, 1);
	EXPECT_EQ(am_i_s.errors, 0);
out:
	am_i_teardown(&m);
}

/*
 * A save during the same flips holds every entry present for the whole
 * save exactly once (a key twice would make anchormap_load() fail with
 * -EBADMSG), and the snapshot loads.
 */
TEST(save_under_flips_loads_back)
{
	struct am_t_snap *b = am_t_snap_new();	/* a snapshot in memory */
	struct anchormap m, back;
	int err;

	ASSERT_NOT_NULL(b);
	am_i_setup(_ctx, &m);
	if (_ctx->failed)
		goto out;
	am_i_script_flips_ahead();
	EXPECT_EQ(anchormap_save(&m, am_t_snap_write, b), 0);
	anchormap_test_hook = NULL;
	EXPECT_EQ(am_i_s.flips, 2);
	EXPECT_EQ(am_i_s.errors, 0);
	err = am_i_new(&back, am_i_hash_one_group, 0);
	EXPECT_EQ(err, 0);
	if (err)
		goto out;	/* am_i_teardown() below still destroys @m */
	am_t_snap_rewind(b, b->len, AM_T_SNAP_MAX);
	err = anchormap_load(&back, am_t_snap_read, b);
	EXPECT_EQ(err, 0);
	if (!err)
		am_i_expect_walk_once(_ctx, &back);
	anchormap_destroy(&back);
out:
	am_t_snap_del(b);
	am_i_teardown(&m);
}

/*
 * Stages two threads step through: each waits for the other to reach a
 * stage (a mutex and condition variable, so TSan sees the order).
 */
struct am_i_stages {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stage;
};

static void am_i_stages_init(struct am_i_stages *st)
{
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->cond, NULL);
	st->stage = 0;
}

static void am_i_stages_fini(struct am_i_stages *st)
{
	pthread_cond_destroy(&st->cond);
	pthread_mutex_destroy(&st->lock);
}

static void am_i_stage_wait(struct am_i_stages *st, int stage)
{
	pthread_mutex_lock(&st->lock);
	while (st->stage < stage)
		pthread_cond_wait(&st->cond, &st->lock);
	pthread_mutex_unlock(&st->lock);
}

/* Wait for @stage, at most @secs seconds: whether it came. */
static bool am_i_stage_wait_timed(struct am_i_stages *st, int stage, int secs)
{
	struct timespec until;
	bool came;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += secs;
	pthread_mutex_lock(&st->lock);
	while (st->stage < stage &&
	       pthread_cond_timedwait(&st->cond, &st->lock, &until) == 0)
		;
	came = st->stage >= stage;
	pthread_mutex_unlock(&st->lock);
	return came;
}

/* Stages only go forward. */
static void am_i_stage_set(struct am_i_stages *st, int stage)
{
	pthread_mutex_lock(&st->lock);
	if (st->stage < stage)
		st->stage = stage;
	pthread_cond_broadcast(&st->cond);
	pthread_mutex_unlock(&st->lock);
}

static int am_i_stage(struct am_i_stages *st)
{
	int v;

	pthread_mutex_lock(&st->lock);
	v = st->stage;
	pthread_mutex_unlock(&st->lock);
	return v;
}

/*
 * A lookup meets a slot that is freed and reused between its load of
 * the slot's tag and its load of the reference: thread R looks K up and
 * stops right after the group load (K's slot FULL); thread W removes K and
 * inserts it again, which takes the same slot, and stops between storing
 * the new reference and storing the tag.  R goes on and reads the new
 * reference (an entry holding K), while the slot is still RESERVED: the
 * re-insert has not happened for anyone yet (a lookup now misses K), so R
 * must miss too.  Returning the new entry there would let one lookup see K
 * and a later one not.
 */
struct am_i_aba {
	struct anchormap map;
	struct am_i_stages st;	/* 0 start, 1 R at its ref load, 2 W at its tag store, 3 R done, 4 checked */
	pthread_t reader;
	const void *got;	/* what R's lookup returned */
	u32 ref0;		/* slot 0's reference before the removal */
	int same_slot;		/* W's re-insert was in slot 0, RESERVED, as R read it */
	int errors;
};

static struct am_i_aba am_i_a;

static void am_i_aba_hook(const struct anchormap *map, enum anchormap_test_point point)
{
	if (map != &am_i_a.map)
		return;
	if (point == ANCHORMAP_TP_LOOKUP_REF && pthread_equal(pthread_self(), am_i_a.reader) &&
	    am_i_stage(&am_i_a.st) == 0) {
		am_i_stage_set(&am_i_a.st, 1);
		am_i_stage_wait(&am_i_a.st, 2);	/* W is between reference and tag now */
	} else if (point == ANCHORMAP_TP_PUBLISH_TAG &&
		   !pthread_equal(pthread_self(), am_i_a.reader) && am_i_stage(&am_i_a.st) == 1) {
		am_i_stage_set(&am_i_a.st, 2);
		am_i_stage_wait(&am_i_a.st, 4);	/* R has finished, and a lookup after it */
	}
}

static void *am_i_aba_reader(void *arg)
{
	u64 k = AM_I_KEY;

	am_i_a.got = anchormap_get(&am_i_a.map, &k);
	am_i_stage_set(&am_i_a.st, 3);
	return NULL;
}

static void *am_i_aba_writer(void *arg)
{
	int errors = 0;
	u64 k = AM_I_KEY;

	am_i_stage_wait(&am_i_a.st, 1);
	errors += am_i_del(&am_i_a.map, AM_I_KEY) != 1;
	/* still stopped: nobody can see the re-insert yet */
	errors += am_i_put(&am_i_a.map, AM_I_KEY, 2) != 1;
	errors += anchormap_get(&am_i_a.map, &k) == NULL;
	am_i_a.errors += errors;
	return NULL;
}

/*
 * The miss R must return, checked while W is still stopped: see
 * am_i_aba_hook().  Also that W's re-insert is where R stopped: slot 0,
 * RESERVED, with a new reference (else R would miss for another reason).
 */
static void *am_i_aba_checker(void *arg)
{
	const struct anchormap_group *g;
	u64 k = AM_I_KEY;
	long *missed = arg;

	am_i_stage_wait(&am_i_a.st, 3);
	*missed = anchormap_get(&am_i_a.map, &k) == NULL;
	g = __anchormap_groups(am_i_a.map.index);
	am_i_a.same_slot = am_load_relaxed(&g->tag[0]) == __ANCHORMAP_TAG_RESERVED &&
			   am_load_relaxed(&g->ref[0]) != am_i_a.ref0;
	am_i_stage_set(&am_i_a.st, 4);
	return NULL;
}

TEST(lookup_never_returns_reinsert_before_its_tag)
{
	pthread_t w, c;
	long missed = 0;

	memset(&am_i_a, 0, sizeof(am_i_a));
	am_i_stages_init(&am_i_a.st);
	ASSERT_EQ(am_i_new(&am_i_a.map, am_i_hash_one_group, 8), 0);
	EXPECT_EQ(am_i_put(&am_i_a.map, AM_I_KEY, 1), 1);	/* slot 0 of group 0 */
	am_i_a.ref0 = __anchormap_groups(am_i_a.map.index)->ref[0];
	anchormap_test_hook = am_i_aba_hook;
	/* the reader's id is known before it runs: create it stopped at a lock */
	pthread_mutex_lock(&am_i_a.st.lock);
	ASSERT_EQ(pthread_create(&am_i_a.reader, NULL, am_i_aba_reader, NULL), 0);
	pthread_mutex_unlock(&am_i_a.st.lock);
	ASSERT_EQ(pthread_create(&w, NULL, am_i_aba_writer, NULL), 0);
	ASSERT_EQ(pthread_create(&c, NULL, am_i_aba_checker, &missed), 0);
	pthread_join(am_i_a.reader, NULL);
	pthread_join(c, NULL);
	pthread_join(w, NULL);
	anchormap_test_hook = NULL;
	EXPECT_EQ(am_i_stage(&am_i_a.st), 4);	/* the interleaving really happened */
	EXPECT_EQ(am_i_a.same_slot, 1);	/* W re-inserted into the slot R stopped at */
	EXPECT_EQ(missed, 1);		/* a lookup after R's misses K... */
	EXPECT_NULL(am_i_a.got);	/* ...so R must have missed it too */
	EXPECT_EQ(am_i_a.errors, 0);
	anchormap_destroy(&am_i_a.map);
	am_i_stages_fini(&am_i_a.st);
}

/*
 * Writers meeting a rebuild: at @point of a rebuild (before it copies its
 * one chunk, or after, before the new index is current), another CPU
 * removes keys 0..9, flips keys 10..19 to new values and inserts 100..149.
 * The new index must hold exactly the result.
 */
struct am_i_rb {
	struct anchormap *map;
	enum anchormap_test_point point;
	int reached, errors;
	bool walk;		/* also walk the map there */
	long walk_bad;
};

static struct am_i_rb am_i_r;

/* Keys 0..49 present throughout (but for 0..19, changed above): each once. */
static long am_i_walk_bad(const struct anchormap *m, u64 lo, u64 hi, u64 other_hi)
{
	static u8 seen[200];
	struct anchormap_iter it;
	const void *kp;
	long bad = 0;
	u64 k;

	memset(seen, 0, sizeof(seen));
	anchormap_for_each(m, &it, &kp, NULL) {
		memcpy(&k, kp, sizeof(k));
		if (k >= sizeof(seen))
			bad++;
		else
			bad += seen[k]++ != 0;
	}
	for (k = lo; k < hi; k++)
		bad += seen[k] != 1;
	for (k = hi; k < other_hi; k++)
		bad += seen[k] > 1;
	return bad;
}

static void am_i_rb_hook(const struct anchormap *map, enum anchormap_test_point point)
{
	struct anchormap *m = am_i_r.map;
	u64 k;

	if (map != m || point != am_i_r.point || am_i_r.reached++)
		return;
	if (am_i_r.walk)
		am_i_r.walk_bad = am_i_walk_bad(m, 20, 50, 200);
	for (k = 0; k < 10; k++)
		am_i_r.errors += am_i_del(m, k) != 1;
	for (k = 10; k < 20; k++) {
		am_i_r.errors += am_i_del(m, k) != 1;
		am_i_r.errors += am_i_put(m, k, 1000 + k) != 1;
	}
	for (k = 100; k < 150; k++)
		am_i_r.errors += am_i_put(m, k, k) != 1;
	for (k = 20; k < 30; k++) {	/* copy-on-write: the new entry takes the old one's place */
		u64 v = 2000 + k;

		am_i_r.errors += anchormap_replace(m, &k, &v) != 1;
	}
}

static void am_i_rebuild_under_writes_hash(struct am_test_ctx *_ctx,
					   enum anchormap_test_point point, bool walk,
					   u64 (*hash)(const void *, u32, u64))
{
	struct anchormap_stats a, b;
	struct anchormap m;
	long bad = 0;
	const void *v;
	u64 k;

	memset(&m, 0, sizeof(m));
	/* big stripe chunks: the writes land inside what the rebuild copies */
	ASSERT_EQ(am_i_new(&m, hash, AM_I_BIG), 0);
	for (k = 0; k < 50; k++)
		EXPECT_EQ(am_i_put(&m, k, k), 1);
	anchormap_stats(&m, &a);
	memset(&am_i_r, 0, sizeof(am_i_r));
	am_i_r.map = &m;
	am_i_r.point = point;
	am_i_r.walk = walk;
	anchormap_test_hook = am_i_rb_hook;
	EXPECT_EQ(anchormap_reserve(&m, 4 * AM_I_BIG), 0);	/* a rebuild */
	anchormap_test_hook = NULL;
	anchormap_stats(&m, &b);
	EXPECT_GE(am_i_r.reached, 1);
	EXPECT_EQ(am_i_r.errors, 0);
	EXPECT_GT(b.rebuilds, a.rebuilds);
	EXPECT_GE(b.slots, 4 * AM_I_BIG);
	for (k = 0; k < 150; k++) {
		v = anchormap_get(&m, &k);
		if (k < 10 || (k >= 50 && k < 100))
			bad += v != NULL;
		else if (!v)
			bad++;
		else
			bad += *(const u64 *)v != (k >= 10 && k < 20 ? 1000 + k :
						   k >= 20 && k < 30 ? 2000 + k : k);
	}
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(anchormap_len(&m), 90);
	EXPECT_EQ(am_i_walk_bad(&m, 10, 50, 0), 0);
	EXPECT_EQ(am_i_r.walk_bad, 0);
	/* the new index holds each entry once: a removal takes it out for good */
	for (k = 10; k < 150; k++) {
		if (k >= 50 && k < 100)
			continue;
		bad += am_i_del(&m, k) != 1;
		bad += anchormap_get(&m, &k) != NULL;
	}
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(anchormap_len(&m), 0);
	anchormap_destroy(&m);
}

static void am_i_rebuild_under_writes(struct am_test_ctx *_ctx, enum anchormap_test_point point,
				      bool walk)
{
	am_i_rebuild_under_writes_hash(_ctx, point, walk, NULL);
}

/*
 * Writers between the publication of the new index and the sweep: they see
 * it, but the copy covers what they insert, so they must not add it too (a
 * second reference would survive the key's removal).
 */
TEST(writes_before_rebuild_sweep_reach_new_index_once)
{
	am_i_rebuild_under_writes(_ctx, ANCHORMAP_TP_REBUILD_SWEEP, false);
}

TEST(writes_before_rebuild_copies_reach_new_index)
{
	am_i_rebuild_under_writes(_ctx, ANCHORMAP_TP_REBUILD_CHUNK, false);
}

TEST(writes_after_rebuild_copied_reach_new_index)
{
	am_i_rebuild_under_writes(_ctx, ANCHORMAP_TP_REBUILD_SWITCH, false);
}

/*
 * The copy hashes a batch of entries and prefetches their groups before it
 * takes any stripe lock: with every key in one stripe (storage entries 0..49
 * in key order), keys 0..29 of the first batch are removed, re-inserted or
 * replaced there.  Placing an entry found LIVE in that pass without looking
 * again under the lock would put removed entries into the new index, where
 * lookups would find them.
 */
TEST(writes_between_rebuild_gather_and_place_reach_new_index)
{
	am_i_rebuild_under_writes_hash(_ctx, ANCHORMAP_TP_REBUILD_GATHERED, false,
				       am_i_hash_one_group);
}

/*
 * A replace stopped after its new entry went LIVE and the old one REMOVED,
 * before the index has the new reference: lookups there still find the old
 * value (never a miss), and a walk started there yields the key exactly
 * once (the new entry: it is below the walk's mark, and the old one is
 * already removed).  Removing the old entry only after the index switched
 * would make that walk yield the key twice.
 */
struct am_i_replace {
	struct anchormap *map;
	int reached, walk_key, errors;
	u64 looked_up;
};

static struct am_i_replace am_i_rq;

static void am_i_rep_hook(const struct anchormap *map, enum anchormap_test_point point)
{
	struct anchormap_iter it;
	const void *kp, *vp;
	u64 k = AM_I_KEY;

	if (map != am_i_rq.map || point != ANCHORMAP_TP_REPLACE_REF || am_i_rq.reached++)
		return;
	vp = anchormap_get(map, &k);
	if (vp)
		memcpy(&am_i_rq.looked_up, vp, sizeof(am_i_rq.looked_up));
	else
		am_i_rq.errors++;
	anchormap_for_each(map, &it, &kp, &vp) {
		memcpy(&k, kp, sizeof(k));
		am_i_rq.walk_key += k == AM_I_KEY;
	}
}

TEST(replace_midway_lookup_finds_old_walk_yields_once)
{
	struct anchormap m;
	u64 k = AM_I_KEY, v = 5;
	const u64 *held, *now;

	am_i_setup(_ctx, &m);
	if (_ctx->failed)
		goto out;
	held = anchormap_get(&m, &k);
	ASSERT_NE(held, NULL);
	memset(&am_i_rq, 0, sizeof(am_i_rq));
	am_i_rq.map = &m;
	anchormap_test_hook = am_i_rep_hook;
	EXPECT_EQ(anchormap_replace(&m, &k, &v), 1);
	anchormap_test_hook = NULL;
	EXPECT_EQ(am_i_rq.reached, 1);
	EXPECT_EQ(am_i_rq.errors, 0);
	EXPECT_EQ(am_i_rq.looked_up, 1);	/* the old value, not a miss */
	EXPECT_EQ(am_i_rq.walk_key, 1);
	now = anchormap_get(&m, &k);
	ASSERT_NE(now, NULL);
	EXPECT_EQ(*now, 5);
	EXPECT_EQ(*held, 1);	/* the old entry's bytes never change */
	am_i_expect_walk_once(_ctx, &m);
out:
	am_i_teardown(&m);
}

/*
 * A walk that has yielded K (storage entry 0) meets replaces of K before
 * each further step: every new entry of K lies further on in storage, but
 * was made after the walk began, so the walk must not yield K again.
 */
static void am_i_rep_flip(u64 v)
{
	u64 k = AM_I_KEY;

	am_i_s.errors += anchormap_replace(am_i_s.map, &k, &v) != 1;
	am_i_s.flips++;
}

static void am_i_rep_walk_hook(const struct anchormap *map, enum anchormap_test_point point)
{
	if (map != am_i_s.map || point != ANCHORMAP_TP_ITER_NEXT)
		return;
	if (++am_i_s.reached[point] >= 2 && am_i_s.flips < 3)
		am_i_rep_flip(10 + am_i_s.flips);
}

TEST(walk_under_replaces_yields_key_once)
{
	int key = 0, others = 0;
	struct anchormap_iter it;
	struct anchormap m;
	const void *kp;
	u64 k;

	am_i_setup(_ctx, &m);
	if (_ctx->failed)
		goto out;
	anchormap_test_hook = am_i_rep_walk_hook;
	anchormap_for_each(&m, &it, &kp, NULL) {
		memcpy(&k, kp, sizeof(k));
		if (k == AM_I_KEY)
			key++;
		else
			others++;
	}
	anchormap_test_hook = NULL;
	EXPECT_EQ(am_i_s.flips, 3);
	EXPECT_EQ(am_i_s.errors, 0);
	EXPECT_EQ(key, 1);	/* present throughout (as some entry): yielded before the replaces */
	EXPECT_EQ(others, AM_I_FILLERS);
	k = AM_I_KEY;
	EXPECT_EQ(*(const u64 *)anchormap_get(&m, &k), 12);
out:
	am_i_teardown(&m);
}

/* A walk in the middle of a rebuild (it reads storage): each entry once. */
TEST(walk_during_rebuild_yields_each_once)
{
	am_i_rebuild_under_writes(_ctx, ANCHORMAP_TP_REBUILD_CHUNK, true);
}

/*
 * A rebuild (and storage growth) in the middle of a walk, with writes: the
 * keys present throughout come exactly once.
 */
struct am_i_wr {
	struct anchormap *map;
	int reached, errors;
};

static struct am_i_wr am_i_w;

static void am_i_walk_rebuild_hook(const struct anchormap *map, enum anchormap_test_point point)
{
	u64 k;

	if (map != am_i_w.map || point != ANCHORMAP_TP_ITER_NEXT || ++am_i_w.reached != 5)
		return;
	am_i_w.errors += anchormap_reserve(am_i_w.map, 5000) != 0;
	for (k = 0; k < 10; k++) {
		am_i_w.errors += am_i_del(am_i_w.map, k) != 1;
		am_i_w.errors += am_i_put(am_i_w.map, k, k) != 1;
	}
	for (k = 100; k < 200; k++)
		am_i_w.errors += am_i_put(am_i_w.map, k, k) != 1;
}

TEST(rebuild_during_walk_yields_each_once)
{
	struct anchormap_stats a, b;
	struct anchormap m;
	u64 k;

	memset(&m, 0, sizeof(m));
	ASSERT_EQ(am_i_new(&m, NULL, 0), 0);
	for (k = 0; k < 50; k++)
		EXPECT_EQ(am_i_put(&m, k, k), 1);
	anchormap_stats(&m, &a);
	memset(&am_i_w, 0, sizeof(am_i_w));
	am_i_w.map = &m;
	anchormap_test_hook = am_i_walk_rebuild_hook;
	EXPECT_EQ(am_i_walk_bad(&m, 10, 50, 200), 0);
	anchormap_test_hook = NULL;
	anchormap_stats(&m, &b);
	EXPECT_GE(am_i_w.reached, 5);
	EXPECT_EQ(am_i_w.errors, 0);
	EXPECT_GT(b.rebuilds, a.rebuilds);
	EXPECT_GT(b.segments, a.segments);
	anchormap_destroy(&m);
}

/*
 * Every writer copies one chunk of a rebuild, so a rebuild stays pending
 * when writes stop.  Stop right after a rebuild of more than one chunk
 * started (its sweep): destroy must free its index, and an exclusive
 * operation that changes the index in place must finish it first, or the
 * new index would come back with the entry still in it.
 */
struct am_i_pend {
	struct anchormap *map;
	size_t at_len;		/* len when a rebuild last started */
	int started;
};

static struct am_i_pend am_i_p;

static void am_i_pend_hook(const struct anchormap *map, enum anchormap_test_point point)
{
	if (map == am_i_p.map && point == ANCHORMAP_TP_REBUILD_SWEEP) {
		am_i_p.started++;
		am_i_p.at_len = anchormap_len(map);
	}
}

/* Insert from @k until a rebuild with more than two chunks' entries starts. */
static u64 am_i_until_pending(struct anchormap *m, u64 k)
{
	am_i_p.map = m;
	am_i_p.at_len = 0;
	anchormap_test_hook = am_i_pend_hook;
	while (am_i_p.at_len < 2100 && k < 100000) {
		am_i_put(m, k, k);
		k++;
	}
	anchormap_test_hook = NULL;
	return k;
}

TEST(destroy_with_rebuild_pending_frees_everything)
{
	long live = anchormap_debug_allocs_live();
	struct anchormap m;

	memset(&m, 0, sizeof(m));
	memset(&am_i_p, 0, sizeof(am_i_p));
	ASSERT_EQ(am_i_new(&m, NULL, 0), 0);
	am_i_until_pending(&m, 0);
	EXPECT_GE(am_i_p.at_len, 2100);
	anchormap_destroy(&m);
	EXPECT_EQ(anchormap_debug_allocs_live(), live);
}

TEST(remove_entry_with_rebuild_pending_stays_removed)
{
	struct anchormap m;
	u64 k = 5, got = 0, n;

	memset(&m, 0, sizeof(m));
	memset(&am_i_p, 0, sizeof(am_i_p));
	ASSERT_EQ(am_i_new(&m, NULL, 0), 0);
	n = am_i_until_pending(&m, 0);
	EXPECT_GE(am_i_p.at_len, 2100);
	EXPECT_EQ(anchormap_remove_entry(&m, &k, NULL, &got), 1);
	EXPECT_EQ(got, 5);
	for (k = n + 10; n < k; n++)	/* the writers that finish the rebuild */
		am_i_put(&m, n, n);
	k = 5;
	EXPECT_NULL(anchormap_get(&m, &k));
	for (; n < 20000; n++)
		am_i_put(&m, n, n);
	EXPECT_NULL(anchormap_get(&m, &k));
	EXPECT_EQ(anchormap_len(&m), 20000 - 1);
	anchormap_destroy(&m);
}

/*
 * Compaction in place while a rebuild is still pending: the pending index
 * holds refs of the storage about to move, so it must be dropped, and every
 * entry must come out of the move with its value and in the new index.
 */
TEST(shrink_with_rebuild_pending_keeps_every_entry)
{
	struct anchormap_stats st;
	struct anchormap m;
	long bad = 0;
	const u64 *v;
	u64 k, n;

	memset(&m, 0, sizeof(m));
	memset(&am_i_p, 0, sizeof(am_i_p));
	ASSERT_EQ(am_i_new(&m, NULL, 0), 0);
	for (k = 0; k < 3000; k++)
		bad += am_i_put(&m, k, k) != 1;
	for (k = 0; k < 3000; k += 3)
		bad += am_i_del(&m, k) != 1;
	n = am_i_until_pending(&m, 3000);
	EXPECT_GE(am_i_p.at_len, 2100);
	EXPECT_NOT_NULL(__atomic_load_n(&m.next, __ATOMIC_RELAXED));	/* still pending */
	EXPECT_EQ(anchormap_shrink_to_fit(&m), 0);
	EXPECT_NULL(__atomic_load_n(&m.next, __ATOMIC_RELAXED));
	anchormap_stats(&m, &st);
	EXPECT_EQ(st.deleted, 0);
	for (k = 0; k < n + 5000; k++) {
		if (k >= n)
			bad += am_i_put(&m, k, k) != 1;
		v = anchormap_get(&m, &k);
		if (k < 3000 && k % 3 == 0)
			bad += v != NULL;
		else
			bad += !v || *v != k;
	}
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(anchormap_len(&m), n + 5000 - 1000);
	anchormap_destroy(&m);
}

/*
 * Storage growth installs a new arena, then publishes the arena count
 * (where writers take entries from).  Between the two, another CPU inserts
 * a key and looks it up: it must find it (in the arenas it could see).
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
	ASSERT_EQ(am_i_new(&m, NULL, 0), 0);	/* one small arena */
	memset(&am_i_g, 0, sizeof(am_i_g));
	am_i_g.map = &m;
	anchormap_test_hook = am_i_grow_hook;
	EXPECT_EQ(anchormap_reserve(&m, 1000), 0);	/* appends an arena */
	anchormap_test_hook = NULL;
	EXPECT_EQ(am_i_g.reached, 1);
	EXPECT_EQ(am_i_g.inserted, 1);
	EXPECT_EQ(am_i_g.found, 1);
	EXPECT_NOT_NULL(anchormap_get(&m, &k));
	anchormap_destroy(&m);
}

/*
 * A writer W finds the current index out of room, drops its stripe and
 * goes to wait for the rebuild that another CPU (F, in anchormap_reserve)
 * is running.  Before W looks at the rebuild, F makes the new index current
 * and counts the rebuild, then stops before clearing next; W comes in
 * there, waits for next to clear, and must then retry its insert in the
 * new index.  Judging progress by the count of rebuilds (unchanged since W
 * came in) made W fail with -ENOMEM although nothing went wrong; only a
 * discarded rebuild may fail it.
 */
struct am_i_waiter {
	struct anchormap map;
	struct am_i_stages st;	/* 0 start, 1 W out of room, 2 F counted, 3 W waits */
	pthread_t writer;
	bool writer_started;
	int ret;	/* what W's failing insert returned */
	u64 key;	/* W's failing key */
	u64 first;	/* W's first key */
};

static struct am_i_waiter am_i_wt;

/* W: insert fresh keys until one finds the index out of room (stage 1). */
static void *am_i_wt_writer(void *arg)
{
	u64 k;

	for (k = am_i_wt.first; k < am_i_wt.first + 100000; k++) {
		am_i_wt.key = k;
		am_i_wt.ret = am_i_put(&am_i_wt.map, k, k);
		if (am_i_wt.ret != 1 || am_i_stage(&am_i_wt.st))
			break;
	}
	am_i_stage_set(&am_i_wt.st, 1);		/* also when it never ran out: F must not hang */
	return NULL;
}

static void am_i_wt_hook(const struct anchormap *map, enum anchormap_test_point point)
{
	bool in_w = am_i_wt.writer_started && pthread_equal(pthread_self(), am_i_wt.writer);

	if (map != &am_i_wt.map)
		return;
	if (point == ANCHORMAP_TP_REBUILD_CHUNK && !in_w && !am_i_wt.writer_started) {
		/* F holds the only chunk: W's inserts cannot finish the rebuild */
		am_i_wt.writer_started = true;
		if (pthread_create(&am_i_wt.writer, NULL, am_i_wt_writer, NULL)) {
			am_i_wt.writer_started = false;
			return;
		}
		am_i_stage_wait(&am_i_wt.st, 1);
	} else if (point == ANCHORMAP_TP_REBUILD_SYNC && in_w && am_i_stage(&am_i_wt.st) == 0) {
		am_i_stage_set(&am_i_wt.st, 1);
		am_i_stage_wait(&am_i_wt.st, 2);	/* the rebuild is current and counted now */
	} else if (point == ANCHORMAP_TP_REBUILD_COUNTED && !in_w && am_i_stage(&am_i_wt.st) == 1) {
		am_i_stage_set(&am_i_wt.st, 2);
		am_i_stage_wait(&am_i_wt.st, 3);	/* W has looked at the rebuild and waits */
	} else if (point == ANCHORMAP_TP_REBUILD_WAIT && in_w) {
		am_i_stage_set(&am_i_wt.st, 3);
	}
}

TEST(writer_waiting_for_counted_rebuild_retries)
{
	struct anchormap *m = &am_i_wt.map;
	struct anchormap_stats a, b;
	long bad = 0;
	u64 k;

	memset(&am_i_wt, 0, sizeof(am_i_wt));
	am_i_stages_init(&am_i_wt.st);
	ASSERT_EQ(am_i_new(m, NULL, 0), 0);	/* the smallest index */
	for (k = 0; k < 8; k++)
		EXPECT_EQ(am_i_put(m, k, k), 1);
	am_i_wt.first = 1000;
	anchormap_stats(m, &a);
	anchormap_test_hook = am_i_wt_hook;
	EXPECT_EQ(anchormap_reserve(m, 5000), 0);	/* F: a rebuild */
	if (am_i_wt.writer_started)
		pthread_join(am_i_wt.writer, NULL);	/* W still reads the hook */
	anchormap_test_hook = NULL;
	anchormap_stats(m, &b);
	EXPECT_TRUE(am_i_wt.writer_started);
	EXPECT_EQ(am_i_stage(&am_i_wt.st), 3);	/* the interleaving happened */
	EXPECT_EQ(am_i_wt.ret, 1);	/* W's insert went through after the wait */
	EXPECT_EQ(b.rebuilds, a.rebuilds + 1);
	for (k = 0; k < 8; k++)
		bad += anchormap_get(m, &k) == NULL;
	for (k = am_i_wt.first; k <= am_i_wt.key; k++)
		bad += anchormap_get(m, &k) == NULL;
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(anchormap_len(m), 8 + am_i_wt.key - am_i_wt.first + 1);
	anchormap_destroy(m);
	am_i_stages_fini(&am_i_wt.st);
}

/*
 * A replace R stopped holding its stripe's lock after it marked the old
 * entry REMOVED and before the rebuild's index has the new one, while that
 * rebuild (F, in anchormap_reserve) copies: the copy skips the REMOVED
 * entry without taking the lock and, with nothing else to copy, finishes.
 * If it made its index current there, a lookup would find neither entry
 * of a key that is present throughout.  The finisher must wait for R
 * (R gives up waiting after a second, which only a correct finisher needs).
 */
struct am_i_rfin {
	struct anchormap map;
	struct am_i_stages st;	/* 0 start, 1 R midway, 2 F counted */
	pthread_t writer;
	bool started, r_midway;
	int replaced, switched_midway, counted_lookups, counted_found;
};

static struct am_i_rfin am_i_rf;

static void *am_i_rf_writer(void *arg)
{
	u64 k = AM_I_KEY, v = 2;

	am_i_rf.replaced = anchormap_replace(&am_i_rf.map, &k, &v);
	return NULL;
}

static void am_i_rf_hook(const struct anchormap *map, enum anchormap_test_point point)
{
	bool in_r = am_i_rf.started && pthread_equal(pthread_self(), am_i_rf.writer);
	const void *p;
	u64 k = AM_I_KEY;

	if (map != &am_i_rf.map)
		return;
	if (point == ANCHORMAP_TP_REBUILD_CHUNK && !in_r && !am_i_rf.started) {
		am_i_rf.started = true;
		if (pthread_create(&am_i_rf.writer, NULL, am_i_rf_writer, NULL)) {
			am_i_rf.started = false;
			return;
		}
		am_i_stage_wait(&am_i_rf.st, 1);	/* R is midway: copy now */
	} else if (point == ANCHORMAP_TP_REPLACE_NEXT && in_r) {
		/* midway until the switch, or a second at most (the fixed core waits for R) */
		__atomic_store_n(&am_i_rf.r_midway, true, __ATOMIC_RELAXED);
		am_i_stage_set(&am_i_rf.st, 1);
		(void)am_i_stage_wait_timed(&am_i_rf.st, 2, 1);
		__atomic_store_n(&am_i_rf.r_midway, false, __ATOMIC_RELAXED);
	} else if (point == ANCHORMAP_TP_REBUILD_COUNTED && !in_r) {
		p = anchormap_get(map, &k);
		pthread_mutex_lock(&am_i_rf.st.lock);
		am_i_rf.switched_midway += __atomic_load_n(&am_i_rf.r_midway, __ATOMIC_RELAXED);
		am_i_rf.counted_lookups++;
		am_i_rf.counted_found += p != NULL;
		pthread_mutex_unlock(&am_i_rf.st.lock);
		am_i_stage_set(&am_i_rf.st, 2);
	}
}

TEST(rebuild_waits_for_replace_between_remove_and_next)
{
	struct anchormap *m = &am_i_rf.map;
	const u64 *v;
	u64 k = AM_I_KEY, one = 1;

	memset(&am_i_rf, 0, sizeof(am_i_rf));
	am_i_stages_init(&am_i_rf.st);
	ASSERT_EQ(am_i_new(m, NULL, 0), 0);
	ASSERT_EQ(anchormap_insert(m, &k, &one), 1);	/* the only entry */
	anchormap_test_hook = am_i_rf_hook;
	EXPECT_EQ(anchormap_reserve(m, 5000), 0);	/* F: a rebuild */
	if (am_i_rf.started)
		pthread_join(am_i_rf.writer, NULL);
	anchormap_test_hook = NULL;
	EXPECT_TRUE(am_i_rf.started);
	EXPECT_EQ(am_i_rf.replaced, 1);
	EXPECT_EQ(am_i_rf.counted_lookups, 1);
	EXPECT_EQ(am_i_rf.switched_midway, 0);	/* current while R was midway */
	EXPECT_EQ(am_i_rf.counted_found, 1);	/* the key, present throughout */
	v = anchormap_get(m, &k);
	ASSERT_NOT_NULL(v);
	EXPECT_EQ(*v, 2);
	anchormap_destroy(m);
	am_i_stages_fini(&am_i_rf.st);
}

/*
 * Storage: a writer W finds the current arena used up and, before it moves
 * the map's current arena on, another writer does the same and moves it.
 * W's compare-and-swap then fails, and it must still take its chunk from
 * the next arena with room, not skip it for the one after (a stripe's
 * chunks must go up in ref order, which walks and rebuilds rely on): the
 * old code took the failed CAS's value of cur as its own position.
 */
#define AM_I_ARENA_KEY	1000

struct am_i_arena {
	struct anchormap *map;
	int reached, nested;
	int inserted;
};

static struct am_i_arena am_i_ar;

/* Stripe (bits 32..37) = the key, so that the two writers never share a lock. */
static u64 am_i_hash_stripe(const void *key, u32 key_size, u64 seed)
{
	u64 k;

	memcpy(&k, key, sizeof(k));
	return (k & 63) << 32 | (k * 0x9e3779b97f4a7c15ULL >> 40) | k << 57;
}

static void am_i_arena_hook(const struct anchormap *map, enum anchormap_test_point point)
{
	u64 k = AM_I_ARENA_KEY + 2, v = 2;	/* another stripe */

	if (map != am_i_ar.map || point != ANCHORMAP_TP_ARENA_FULL || am_i_ar.nested)
		return;
	if (am_i_ar.reached++)
		return;
	am_i_ar.nested = 1;
	am_i_ar.inserted = anchormap_insert(am_i_ar.map, &k, &v);
	am_i_ar.nested = 0;
}

static bool am_i_in_arena(const struct anchormap *m, u32 n, const void *p)
{
	const struct am_arena *ar = &m->wstate->arenas[n];
	const u8 *base = am_arena_base(m, ar);

	return (const u8 *)p >= base && (const u8 *)p < base + (size_t)ar->size * m->entry_size;
}

TEST(arena_taken_over_midway_is_not_skipped)
{
	struct anchormap m;
	const void *p;
	u64 k, v;

	memset(&m, 0, sizeof(m));
	memset(&am_i_ar, 0, sizeof(am_i_ar));
	ASSERT_EQ(am_i_new(&m, am_i_hash_stripe, 0), 0);	/* arena 0: one entry a chunk */
	EXPECT_EQ(anchormap_reserve(&m, 100), 0);	/* arena 1 */
	EXPECT_EQ(anchormap_reserve(&m, 1000), 0);	/* arena 2 */
	ASSERT_GE(m.narenas, 3);
	/* use up arena 0, one chunk each: keys on every stripe but the two below */
	for (k = 0; m.wstate->arenas[0].claimed < m.wstate->arenas[0].size && k < 10000; k++) {
		if ((k & 63) == ((AM_I_ARENA_KEY) & 63) || (k & 63) == ((AM_I_ARENA_KEY + 2) & 63))
			continue;
		v = k;
		EXPECT_EQ(anchormap_insert(&m, &k, &v), 1);
	}
	ASSERT_EQ(m.wstate->arenas[0].claimed, m.wstate->arenas[0].size);
	ASSERT_EQ(m.wstate->cur, 0);
	am_i_ar.map = &m;
	anchormap_test_hook = am_i_arena_hook;
	k = AM_I_ARENA_KEY;
	v = 1;
	EXPECT_EQ(anchormap_insert(&m, &k, &v), 1);	/* W */
	anchormap_test_hook = NULL;
	EXPECT_EQ(am_i_ar.reached, 1);
	EXPECT_EQ(am_i_ar.inserted, 1);
	p = anchormap_get(&m, &k);
	ASSERT_NOT_NULL(p);
	EXPECT_TRUE(am_i_in_arena(&m, 1, p));	/* not arena 2: arena 1 has room */
	k = AM_I_ARENA_KEY + 2;
	p = anchormap_get(&m, &k);
	ASSERT_NOT_NULL(p);
	EXPECT_TRUE(am_i_in_arena(&m, 1, p));
	anchormap_destroy(&m);
}

/*
 * Two writers on different stripes claim a tag in the same group: writer A
 * (key 1) stops after loading its group's tags, while every tag is free;
 * writer B (key 2, another stripe lock) inserts meanwhile and takes the
 * first free tag, the one A saw first.  A's claim must fail on that tag and
 * take the next one in the same index (no rebuild), and both keys stay.
 * A plain store instead of the compare-and-swap would overwrite B's tag.
 */
struct am_i_claim {
	struct anchormap map;
	struct am_i_stages st;	/* 0 start, 1 A stopped at its claim, 2 B inserted */
	pthread_t a;
	int a_ret;
};

static struct am_i_claim am_i_c;

/* Home group 0 and one tag for every key; the stripe is the key's low bits. */
static u64 am_i_hash_group0_stripe(const void *key, u32 key_size, u64 seed)
{
	u64 k;

	memcpy(&k, key, sizeof(k));
	return (k & (ANCHORMAP_STRIPES - 1)) << 32;
}

static void am_i_claim_hook(const struct anchormap *map, enum anchormap_test_point point)
{
	if (map != &am_i_c.map || point != ANCHORMAP_TP_CLAIM_TAG ||
	    !pthread_equal(pthread_self(), am_i_c.a) || am_i_stage(&am_i_c.st) != 0)
		return;
	am_i_stage_set(&am_i_c.st, 1);
	am_i_stage_wait(&am_i_c.st, 2);
}

static void *am_i_claim_writer(void *arg)
{
	am_i_c.a_ret = am_i_put(&am_i_c.map, 1, 10);
	return NULL;
}

TEST(claim_lost_to_another_stripe_takes_next_tag)
{
	struct anchormap_stats s;
	const u64 *v1, *v2;
	u64 k;

	memset(&am_i_c, 0, sizeof(am_i_c));
	am_i_stages_init(&am_i_c.st);
	ASSERT_EQ(am_i_new(&am_i_c.map, am_i_hash_group0_stripe, 8), 0);
	anchormap_test_hook = am_i_claim_hook;
	/* A's id is known before it runs: create it stopped at a lock */
	pthread_mutex_lock(&am_i_c.st.lock);
	ASSERT_EQ(pthread_create(&am_i_c.a, NULL, am_i_claim_writer, NULL), 0);
	pthread_mutex_unlock(&am_i_c.st.lock);
	am_i_stage_wait(&am_i_c.st, 1);
	EXPECT_EQ(am_i_put(&am_i_c.map, 2, 20), 1);	/* B, while A is stopped */
	am_i_stage_set(&am_i_c.st, 2);
	pthread_join(am_i_c.a, NULL);
	anchormap_test_hook = NULL;
	EXPECT_EQ(am_i_c.a_ret, 1);
	k = 1;
	v1 = anchormap_get(&am_i_c.map, &k);
	k = 2;
	v2 = anchormap_get(&am_i_c.map, &k);
	ASSERT_NOT_NULL(v1);
	ASSERT_NOT_NULL(v2);
	EXPECT_EQ(*v1, 10);
	EXPECT_EQ(*v2, 20);
	anchormap_stats(&am_i_c.map, &s);
	EXPECT_EQ(s.len, 2);
	EXPECT_EQ(s.index_used, 2);	/* two tags of one index... */
	EXPECT_EQ(s.rebuilds, 0);	/* ...which A did not need rebuilt */
	anchormap_destroy(&am_i_c.map);
	am_i_stages_fini(&am_i_c.st);
}

/*
 * stats.contended counts a writer that found its stripe lock held: writer A
 * (key 1) stops holding its stripe's lock, between publishing its reference
 * and its tag; writer B (key 65, the same stripe) starts and is given 100 ms
 * to reach the lock before A goes on.  The count is taken once the lock is
 * had, so B's wait cannot be seen while it lasts: a round whose B was kept
 * off the CPU all that time counts 0, and the test runs up to five rounds.
 */
struct am_i_contend {
	struct anchormap map;
	struct am_i_stages st;	/* 0 start, 1 A stopped holding the lock, 2 go on */
	pthread_t a;
	int a_ret, b_ret;
};

static struct am_i_contend am_i_ct;

static void am_i_contend_hook(const struct anchormap *map, enum anchormap_test_point point)
{
	if (map != &am_i_ct.map || point != ANCHORMAP_TP_PUBLISH_TAG ||
	    !pthread_equal(pthread_self(), am_i_ct.a) || am_i_stage(&am_i_ct.st) != 0)
		return;
	am_i_stage_set(&am_i_ct.st, 1);
	am_i_stage_wait(&am_i_ct.st, 2);
}

static void *am_i_contend_a(void *arg)
{
	am_i_ct.a_ret = am_i_put(&am_i_ct.map, 1, 10);
	return NULL;
}

static void *am_i_contend_b(void *arg)
{
	am_i_ct.b_ret = am_i_put(&am_i_ct.map, 1 + ANCHORMAP_STRIPES, 20);
	return NULL;
}

/* One round: the contended count it ends with (-1: a step failed). */
static long am_i_contend_round(void)
{
	struct anchormap_stats s;
	pthread_t b;
	long ret = -1;

	memset(&am_i_ct, 0, sizeof(am_i_ct));
	am_i_stages_init(&am_i_ct.st);
	if (am_i_new(&am_i_ct.map, am_i_hash_group0_stripe, 8))
		goto out;
	anchormap_test_hook = am_i_contend_hook;
	pthread_mutex_lock(&am_i_ct.st.lock);	/* A's id is known before it runs */
	if (pthread_create(&am_i_ct.a, NULL, am_i_contend_a, NULL)) {
		pthread_mutex_unlock(&am_i_ct.st.lock);
		goto destroy;
	}
	pthread_mutex_unlock(&am_i_ct.st.lock);
	am_i_stage_wait(&am_i_ct.st, 1);
	anchormap_stats(&am_i_ct.map, &s);
	if (s.contended || pthread_create(&b, NULL, am_i_contend_b, NULL)) {
		am_i_stage_set(&am_i_ct.st, 2);
		pthread_join(am_i_ct.a, NULL);
		goto destroy;
	}
	usleep(100 * 1000);
	am_i_stage_set(&am_i_ct.st, 2);
	pthread_join(am_i_ct.a, NULL);
	pthread_join(b, NULL);
	anchormap_stats(&am_i_ct.map, &s);
	if (am_i_ct.a_ret == 1 && am_i_ct.b_ret == 1 && s.len == 2)
		ret = (long)s.contended;
destroy:
	anchormap_test_hook = NULL;
	anchormap_destroy(&am_i_ct.map);
out:
	am_i_stages_fini(&am_i_ct.st);
	return ret;
}

TEST(writer_meeting_held_stripe_lock_counts_contended)
{
	long n = 0;
	int round;

	for (round = 0; round < 5; round++) {
		n = am_i_contend_round();
		ASSERT_TRUE(n == 0 || n == 1);	/* one writer waited once, at most */
		if (n)
			break;
	}
	EXPECT_EQ(n, 1);
}

static const struct am_test_case am_interleave_cases[] = {
	AM_TEST_ENTRY(walk_under_flips_yields_key_at_most_once)
	AM_TEST_ENTRY(walk_before_key_flipped_yields_fillers_once)
	AM_TEST_ENTRY(save_under_flips_loads_back)
	AM_TEST_ENTRY(lookup_never_returns_reinsert_before_its_tag)
	AM_TEST_ENTRY(writes_before_rebuild_sweep_reach_new_index_once)
	AM_TEST_ENTRY(writes_before_rebuild_copies_reach_new_index)
	AM_TEST_ENTRY(writes_after_rebuild_copied_reach_new_index)
	AM_TEST_ENTRY(writes_between_rebuild_gather_and_place_reach_new_index)
	AM_TEST_ENTRY(walk_during_rebuild_yields_each_once)
	AM_TEST_ENTRY(rebuild_during_walk_yields_each_once)
	AM_TEST_ENTRY(destroy_with_rebuild_pending_frees_everything)
	AM_TEST_ENTRY(remove_entry_with_rebuild_pending_stays_removed)
	AM_TEST_ENTRY(shrink_with_rebuild_pending_keeps_every_entry)
	AM_TEST_ENTRY(insert_while_growth_publishes_is_found)
	AM_TEST_ENTRY(replace_midway_lookup_finds_old_walk_yields_once)
	AM_TEST_ENTRY(walk_under_replaces_yields_key_once)
	AM_TEST_ENTRY(writer_waiting_for_counted_rebuild_retries)
	AM_TEST_ENTRY(rebuild_waits_for_replace_between_remove_and_next)
	AM_TEST_ENTRY(arena_taken_over_midway_is_not_skipped)
	AM_TEST_ENTRY(claim_lost_to_another_stripe_takes_next_tag)
	AM_TEST_ENTRY(writer_meeting_held_stripe_lock_counts_contended)
};

int main(void)
{
	return am_test_main(am_interleave_cases, (int)ARRAY_SIZE(am_interleave_cases));
}
