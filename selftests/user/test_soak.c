// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * test_soak.c - every shared operation at once, for a while, then a full
 * invariant check.
 *
 * Writers own disjoint key ranges (so each knows exactly what it left in
 * the map) and insert, remove and re-insert at random; readers look up the
 * whole key space, keep pointers, and re-check their bytes; an iterator
 * thread walks the map and checks that no key appears twice and that the
 * keys no writer touches are all there.  At the end: every writer's keys
 * are exactly as it left them, len is exact, deleted counts add up (every
 * removal leaves its entry, and a re-insert never gets a removed entry
 * back: the writer checks the pointer), and (under ASan) nothing leaks.
 *
 * AM_SOAK_SECONDS sets the duration in one-second phases (default 2;
 * `make soak` runs minutes).
 * The duration bounds the work; nothing is asserted about speed.
 */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define SOAK_WRITERS	2
#define SOAK_READERS	2
#define SOAK_PER_WRITER	4096u
#define SOAK_STABLE	2048u	/* keys inserted first and never touched */
#define SOAK_HELD	128

struct soak {
	struct anchormap map;
	pthread_barrier_t start;
	int stop;
	int errors;
	long removes[SOAK_WRITERS];
	long removes_all;
	bool present[SOAK_WRITERS][SOAK_PER_WRITER];
	const void *gone[SOAK_WRITERS][SOAK_PER_WRITER];	/* value when removed */
	long iterations;
};

static u64 soak_val(u64 k)
{
	return k * AM_TU_GOLDEN + 7;
}

static bool soak_stopped(struct soak *s)
{
	return __atomic_load_n(&s->stop, __ATOMIC_RELAXED);
}

static void soak_error(struct soak *s, const char *what, u64 key)
{
	if (__atomic_fetch_add(&s->errors, 1, __ATOMIC_RELAXED) < 5)
		am_test_log("soak: %s (key %llu)", what, (unsigned long long)key);
}

struct soak_arg {
	struct soak *s;
	int id;
};

static void *soak_writer(void *p)
{
	struct soak_arg *a = p;
	struct soak *s = a->s;
	u64 seed = 0x1234567ULL * (a->id + 1), base = SOAK_STABLE + (u64)a->id * SOAK_PER_WRITER;

	pthread_barrier_wait(&s->start);
	while (!soak_stopped(s)) {
		u64 r = am_tu_xorshift64(&seed), i = r % SOAK_PER_WRITER, k = base + i, v = soak_val(k);
		bool *here = &s->present[a->id][i];

		if ((r >> 32) % 3) {
			int ret = anchormap_insert(&s->map, &k, &v);

			if (ret != !*here)
				soak_error(s, "insert result", k);
			if (ret == 1 && anchormap_get(&s->map, &k) == s->gone[a->id][i])
				soak_error(s, "re-insert got the removed entry back", k);
			*here = true;
		} else {
			/* only this writer touches k: the pointer is the one removed */
			if (*here)
				s->gone[a->id][i] = anchormap_get(&s->map, &k);
			if (anchormap_remove(&s->map, &k) != *here)
				soak_error(s, "remove result", k);
			if (*here)
				s->removes[a->id]++;
			*here = false;
		}
	}
	return NULL;
}

static void *soak_reader(void *p)
{
	struct soak_arg *a = p;
	struct soak *s = a->s;
	const u64 *held[SOAK_HELD];
	u64 held_key[SOAK_HELD], seed = 0x9876543ULL * (a->id + 1);
	int n = 0, i;
	u64 total = SOAK_STABLE + SOAK_WRITERS * SOAK_PER_WRITER;

	pthread_barrier_wait(&s->start);
	while (!soak_stopped(s)) {
		u64 k = am_tu_xorshift64(&seed) % total;
		const u64 *v = anchormap_get(&s->map, &k);

		if (v) {
			if (*v != soak_val(k))
				soak_error(s, "value bytes", k);
			held[n % SOAK_HELD] = v;
			held_key[n % SOAK_HELD] = k;
			n++;
		} else if (k < SOAK_STABLE) {
			soak_error(s, "stable key missing", k);
		}
		if ((n & 1023) == 0)
			for (i = 0; i < (n < SOAK_HELD ? n : SOAK_HELD); i++)
				if (*held[i] != soak_val(held_key[i]))
					soak_error(s, "held pointer changed", held_key[i]);
	}
	return NULL;
}

static void *soak_iterator(void *p)
{
	struct soak_arg *a = p;
	struct soak *s = a->s;
	u64 total = SOAK_STABLE + SOAK_WRITERS * SOAK_PER_WRITER;
	u8 *seen = malloc(total);

	pthread_barrier_wait(&s->start);
	while (seen && !soak_stopped(s)) {
		struct anchormap_iter it;
		const void *k, *v;
		u64 key, stable = 0;

		memset(seen, 0, total);
		anchormap_for_each(&s->map, &it, &k, &v) {
			memcpy(&key, k, sizeof(key));
			if (key >= total || seen[key]++)
				soak_error(s, "iteration yielded a key twice", key);
			else if (key < SOAK_STABLE)
				stable++;
			if (*(const u64 *)v != soak_val(key))
				soak_error(s, "iteration value", key);
		}
		if (stable != SOAK_STABLE)
			soak_error(s, "iteration missed stable keys", stable);
		s->iterations++;
	}
	free(seen);
	return NULL;
}

static unsigned int soak_seconds(void)
{
	const char *e = getenv("AM_SOAK_SECONDS");
	int v = e ? atoi(e) : 2;

	return v > 0 ? (unsigned int)v : 2;
}

/* After a phase: each writer's keys are as it left them, counts exact. */
static void soak_check(struct am_test_ctx *_ctx, struct soak *s)
{
	struct anchormap_stats st;
	size_t expect = SOAK_STABLE;
	long removes = 0;
	int i, j;
	u64 k;

	for (i = 0; i < SOAK_WRITERS; i++) {
		removes += s->removes[i];
		for (j = 0; j < (int)SOAK_PER_WRITER; j++) {
			k = SOAK_STABLE + (u64)i * SOAK_PER_WRITER + j;
			EXPECT_EQ(anchormap_contains_key(&s->map, &k), s->present[i][j]);
			expect += s->present[i][j];
		}
	}
	anchormap_stats(&s->map, &st);
	EXPECT_EQ(st.len, expect);
	EXPECT_EQ(anchormap_len(&s->map), expect);
	EXPECT_EQ(st.deleted, removes);
	s->removes_all += removes;
}

TEST(soak_all_operations_then_invariants)
{
	struct anchormap_params p = { .key_size = 8, .value_size = 8, .name = "soak" };
	struct soak *s = am_test_alloc(sizeof(*s));
	struct soak_arg args[SOAK_WRITERS + SOAK_READERS + 1];
	pthread_t th[SOAK_WRITERS + SOAK_READERS + 1];
	struct anchormap_stats st;
	int i, nth = SOAK_WRITERS + SOAK_READERS + 1;
	unsigned int phase;
	u64 k;

	ASSERT_NOT_NULL(s);
	ASSERT_EQ(anchormap_init(&s->map, &p, 0), 0);
	for (k = 0; k < SOAK_STABLE; k++) {
		u64 v = soak_val(k);

		ASSERT_EQ(anchormap_insert(&s->map, &k, &v), 1);
	}
	/*
	 * One-second phases: threads run, stop, join; the map is checked and
	 * compacted (exclusive) in between, so removed slots do not pile up
	 * over a long soak and the exclusive path is exercised too.
	 */
	for (phase = 0; phase < soak_seconds(); phase++) {
		__atomic_store_n(&s->stop, 0, __ATOMIC_RELAXED);
		pthread_barrier_init(&s->start, NULL, nth + 1);
		for (i = 0; i < nth; i++) {
			args[i].s = s;
			args[i].id = i < SOAK_WRITERS ? i : i - SOAK_WRITERS;
			pthread_create(&th[i], NULL, i < SOAK_WRITERS ? soak_writer :
				       i < nth - 1 ? soak_reader : soak_iterator, &args[i]);
		}
		pthread_barrier_wait(&s->start);
		sleep(1);
		__atomic_store_n(&s->stop, 1, __ATOMIC_RELAXED);
		for (i = 0; i < nth; i++)
			pthread_join(th[i], NULL);
		pthread_barrier_destroy(&s->start);
		soak_check(_ctx, s);
		if (_ctx->failed)
			break;
		ASSERT_EQ(anchormap_shrink_to_fit(&s->map), 0);
		anchormap_stats(&s->map, &st);
		EXPECT_EQ(st.deleted, 0);
		EXPECT_EQ(st.retired_bytes, 0);
		EXPECT_LE(st.entries, st.len + st.len / 4 + 128);	/* compacted */
		memset(s->removes, 0, sizeof(s->removes));
		memset(s->gone, 0, sizeof(s->gone));	/* compaction moved everything */
	}
	am_test_log("soak: %u phases of 1 s, %ld full iterations, %ld removes",
		    phase, s->iterations, s->removes_all);
	EXPECT_EQ(s->errors, 0);
	EXPECT_GT(s->iterations, 0);
	EXPECT_GT(s->removes_all, 0);
	anchormap_destroy(&s->map);
	am_test_free(s);
}
static const struct am_test_case am_soak_cases[] = {
	AM_TEST_ENTRY(soak_all_operations_then_invariants)
};

int main(void)
{
	return am_test_main(am_soak_cases, (int)ARRAY_SIZE(am_soak_cases));
}
