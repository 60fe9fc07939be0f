// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * test_room.c - what anchormap_reserve() promises: room for that many more
 * inserts with no allocation, whichever stripes they land on (userspace,
 * white-box).
 *
 * An ANCHORMAP_F_ATOMIC map's writers in hardirq never allocate, so
 * reserve is all they have.  Writers take storage in per-stripe chunks and
 * index credits in per-stripe batches: a stripe that takes a chunk may leave
 * most of it unused, so the room reserve counts must be what 64 stripes can
 * use, not what is unclaimed.  These tests build the worst case on purpose:
 * every stripe's own chunk used up, the arenas' room just above what is
 * reserved, then one insert on each stripe, with every allocation failing.
 */
#include "harness.h"
#include "am_testutil.h"
#include "anchormap_internal.h"	/* stripes' chunks and the arenas' room */

/* Stripe (hash bits 32..37) k % 64; the rest mixed. */
static u64 am_r_hash(const void *key, u32 key_size, u64 seed)
{
	u64 k;

	memcpy(&k, key, sizeof(k));
	return (am_tu_mix64(k + seed) & ~(63ULL << 32)) | (k & 63) << 32;
}

static int am_r_new(struct anchormap *m, size_t cap)
{
	struct anchormap_params p = {
		.key_size = sizeof(u64), .value_size = sizeof(u64), .name = "room",
		.hash = am_r_hash,
	};

	memset(m, 0, sizeof(*m));
	return anchormap_init(m, &p, cap);
}

static int am_r_put(struct anchormap *m, u64 k)
{
	return anchormap_insert(m, &k, &k);
}

/* Entries not yet handed to any stripe. */
static size_t am_r_arena_room(const struct anchormap *m)
{
	const struct anchormap_writer_state *ws = m->wstate;
	size_t room = 0;
	u32 k;

	for (k = ws->cur; k < m->narenas; k++)
		room += ws->arenas[k].size - ws->arenas[k].claimed;
	return room;
}

/* Insert on stripe @s until its own chunk is used up; next key in *@k. */
static long am_r_drain_stripe(struct anchormap *m, unsigned int s, u64 *k)
{
	const struct am_stripe *st = &m->wstate->stripes[s];
	long bad = 0;

	while (st->next_ref != st->chunk_end) {
		u64 key = *k * 64 + s;

		bad += am_r_put(m, key) != 1;
		(*k)++;
	}
	return bad;
}

/* One insert on each stripe with every allocation failing: how many failed. */
static long am_r_one_per_stripe(struct anchormap *m, u64 base)
{
	long bad = 0;
	unsigned int s;

	for (s = 0; s < ANCHORMAP_STRIPES; s++) {
		anchormap_debug_fail_nth(1);	/* any allocation fails */
		bad += am_r_put(m, base * 64 + s) != 1;
	}
	anchormap_debug_fail_nth(0);
	return bad;
}

/*
 * Storage: a map grown to 100k (its last arena hands out chunks of dozens
 * of entries), stripe 0 drives the arenas' room down to a few chunks, every
 * stripe's own chunk is used up, then reserve(64) and an insert on each of
 * the 64 stripes: each takes a whole chunk, so counting unclaimed entries
 * as room runs out after a few stripes.
 */
TEST(reserve_covers_one_insert_on_every_stripe_storage)
{
	struct anchormap m;
	u32 chunk;
	long bad = 0;
	u64 k = 0, i;
	unsigned int s;

	ASSERT_EQ(am_r_new(&m, 0), 0);
	for (i = 0; i < 100000; i++)
		bad += am_r_put(&m, (1ULL << 40) + i) != 1;
	chunk = m.wstate->arenas[m.narenas - 1].chunk;
	EXPECT_GT(chunk, 8);
	/* stripe 0 alone takes chunks until fewer than 16 are left */
	while (am_r_arena_room(&m) > 16 * (size_t)chunk)
		bad += am_r_drain_stripe(&m, 0, &k) + (am_r_put(&m, k++ * 64) != 1);
	for (s = 0; s < ANCHORMAP_STRIPES; s++)
		bad += am_r_drain_stripe(&m, s, &k);
	EXPECT_EQ(bad, 0);
	EXPECT_GE(am_r_arena_room(&m), ANCHORMAP_STRIPES);
	EXPECT_LT(am_r_arena_room(&m), (size_t)ANCHORMAP_STRIPES * (chunk - 1));
	EXPECT_EQ(anchormap_reserve(&m, ANCHORMAP_STRIPES), 0);
	EXPECT_EQ(am_r_one_per_stripe(&m, 5000000), 0);
	EXPECT_EQ(anchormap_len(&m), 100000 + k + ANCHORMAP_STRIPES);
	anchormap_destroy(&m);
}

/*
 * Index: a map pre-sized for 200k (credits come 300-odd at a time), every
 * stripe's own credits used up, and the index's shared credits set to a few
 * batches, as a map nearly as full as its index allows has them (written
 * directly: filling it that far would grow storage first).  Then reserve(64)
 * and an insert on each stripe: each takes a whole batch, so counting the
 * shared credits as room runs out after a few stripes.
 */
TEST(reserve_covers_one_insert_on_every_stripe_index)
{
	struct anchormap_index *idx;
	struct anchormap m;
	long bad = 0;
	u64 k = 0;
	unsigned int s;

	ASSERT_EQ(am_r_new(&m, 200000), 0);
	idx = m.index;
	EXPECT_GT(idx->chunk, 8);
	for (s = 0; s < ANCHORMAP_STRIPES; s++) {
		const struct am_stripe *st = &m.wstate->stripes[s];

		do	/* the first insert takes a batch, the rest use it up */
			bad += am_r_put(&m, k++ * 64 + s) != 1;
		while (st->credits);
	}
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(m.index, idx);
	idx->avail = 8 * (long)idx->chunk;
	EXPECT_EQ(anchormap_reserve(&m, ANCHORMAP_STRIPES), 0);
	EXPECT_EQ(am_r_one_per_stripe(&m, 20000000), 0);
	EXPECT_EQ(anchormap_len(&m), k + ANCHORMAP_STRIPES);
	anchormap_destroy(&m);
}

static const struct am_test_case am_room_cases[] = {
	AM_TEST_ENTRY(reserve_covers_one_insert_on_every_stripe_storage)
	AM_TEST_ENTRY(reserve_covers_one_insert_on_every_stripe_index)
};

int main(void)
{
	return am_test_main(am_room_cases, (int)ARRAY_SIZE(am_room_cases));
}
