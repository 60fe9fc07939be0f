// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * test_concurrency.c - pthread tests of the shared operations (userspace).
 *
 * Every test is bounded by iteration counts, not timers, so it finishes in
 * the same number of steps under TSan on two cores as on a big machine.
 * Threads start together on a barrier, so their work really overlaps, and
 * report problems through an error counter in the test's shared state
 * (ASSERT_* only work on the test's own thread); the test checks it after
 * joining.
 */
#include <pthread.h>
#include <sched.h>

#include "harness.h"

#define AM_C_MAX_THREADS	8

static u64 am_c_load(const u64 *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void am_c_store(u64 *p, u64 v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static void am_c_inc(int *p)
{
	__atomic_add_fetch(p, 1, __ATOMIC_RELAXED);
}

/* What every test shares with its threads. */
struct am_c_common {
	struct anchormap map;
	pthread_barrier_t start;
	int errors;
};

/* Records a problem seen on a worker thread; logs only the first few. */
#define am_c_fail(c, fmt, ...) do {					\
	if (__atomic_add_fetch(&(c)->errors, 1, __ATOMIC_RELAXED) <= 5)	\
		am_test_log("%s:%d: " fmt, __FILE__, __LINE__, ##__VA_ARGS__); \
} while (0)

struct am_c_thread {
	pthread_t tid;
	void *test;
	int id;
};

static int am_c_init_map(struct am_c_common *c, size_t cap, int nthreads)
{
	struct anchormap_params p;

	memset(&p, 0, sizeof(p));
	p.key_size = sizeof(u64);
	p.value_size = sizeof(u64);
	c->errors = 0;
	if (pthread_barrier_init(&c->start, NULL, nthreads))
		return -1;
	if (anchormap_init(&c->map, &p, cap)) {
		pthread_barrier_destroy(&c->start);
		return -1;
	}
	return 0;
}

static void am_c_fini_map(struct am_c_common *c)
{
	anchormap_destroy(&c->map);
	pthread_barrier_destroy(&c->start);
}

/* Starts @n threads running @fn on @test; 0 or the number that failed. */
static int am_c_run(struct am_c_thread *t, int n, void *(*fn)(void *), void *test)
{
	int i, started = 0, bad = 0;

	for (i = 0; i < n; i++) {
		t[i].test = test;
		t[i].id = i;
		if (pthread_create(&t[i].tid, NULL, fn, &t[i]) == 0)
			started++;
		else
			break;
	}
	/* a thread that never started would leave the others on the barrier */
	if (started != n) {
		fprintf(stderr, "pthread_create failed after %d threads\n", started);
		exit(2);
	}
	for (i = 0; i < n; i++)
		bad += pthread_join(t[i].tid, NULL) != 0;
	return bad;
}

static int am_c_fill(struct anchormap *m, u64 from, u64 to)
{
	u64 k, v;

	for (k = from; k < to; k++) {
		v = am_tu_val(k);
		if (anchormap_insert(m, &k, &v) != 1)
			return -1;
	}
	return 0;
}

/* ---- readers keep pointers while writers grow the map and remove ---- */

#define HOLD_PRE	4096	/* inserted first, then all removed */
#define HOLD_PER_WRITER	20000
#define HOLD_WRITERS	2
#define HOLD_READERS	2
#define HOLD_KEYS	(HOLD_PRE + HOLD_WRITERS * HOLD_PER_WRITER)
#define HOLD_THREADS	(HOLD_WRITERS + HOLD_READERS + 1)
#define HOLD_SAMPLE	256	/* held pointers re-checked per reader round */

struct hold_test {
	struct am_c_common c;
	const void *pre_key[HOLD_PRE];
	const void *pre_val[HOLD_PRE];
	u64 progress[HOLD_WRITERS];	/* keys inserted so far, per writer */
	int writers_left;
	int removed;
};

static void hold_check_pre(struct hold_test *t, u64 k)
{
	const void *v = anchormap_get(&t->c.map, &k);

	if (am_tu_rd64(t->pre_key[k]) != k || am_tu_rd64(t->pre_val[k]) != am_tu_val(k))
		am_c_fail(&t->c, "held entry %llu changed", (unsigned long long)k);
	/* no re-insert of these keys: either the held slot or nothing */
	if (v && v != t->pre_val[k])
		am_c_fail(&t->c, "key %llu moved", (unsigned long long)k);
}

/* New keys below a writer's progress must be there, and not move. */
static void hold_check_new(struct hold_test *t, const void **seen, int w, u64 upto)
{
	u64 base = HOLD_PRE + (u64)w * HOLD_PER_WRITER, i, k;

	for (i = 0; i < upto; i++) {
		const void *v;

		k = base + i;
		v = anchormap_get(&t->c.map, &k);
		if (!v || am_tu_rd64(v) != am_tu_val(k)) {
			am_c_fail(&t->c, "inserted key %llu missing or wrong",
				  (unsigned long long)k);
			continue;
		}
		if (!seen[k])
			seen[k] = v;
		else if (seen[k] != v)
			am_c_fail(&t->c, "key %llu moved", (unsigned long long)k);
	}
}

static void hold_reader(struct hold_test *t, const void **seen)
{
	u64 cursor = 0, k, step = 0;
	int w, done = 0;

	while (!done) {
		done = !__atomic_load_n(&t->writers_left, __ATOMIC_ACQUIRE);
		for (k = 0; k < HOLD_SAMPLE; k++)
			hold_check_pre(t, (cursor + k) % HOLD_PRE);
		cursor += HOLD_SAMPLE;
		/* the newest part of each writer's range, then all of it now and then */
		for (w = 0; w < HOLD_WRITERS; w++) {
			u64 p = am_c_load(&t->progress[w]);

			hold_check_new(t, seen, w, (step % 16 == 0 || done) ? p : 0);
		}
		step++;
	}
	for (k = 0; k < HOLD_PRE; k++)
		hold_check_pre(t, k);
}

static void hold_writer(struct hold_test *t, int w)
{
	u64 base = HOLD_PRE + (u64)w * HOLD_PER_WRITER, i, k, v;

	for (i = 0; i < HOLD_PER_WRITER; i++) {
		k = base + i;
		v = am_tu_val(k);
		if (anchormap_insert(&t->c.map, &k, &v) != 1)
			am_c_fail(&t->c, "insert %llu failed", (unsigned long long)k);
		am_c_store(&t->progress[w], i + 1);
	}
	__atomic_sub_fetch(&t->writers_left, 1, __ATOMIC_RELEASE);
}

static void hold_remover(struct hold_test *t)
{
	u64 k;

	for (k = 0; k < HOLD_PRE; k++) {
		if (anchormap_remove(&t->c.map, &k) != 1)
			am_c_fail(&t->c, "remove %llu failed", (unsigned long long)k);
		else
			__atomic_add_fetch(&t->removed, 1, __ATOMIC_RELAXED);
	}
}

static void *hold_thread(void *arg)
{
	struct am_c_thread *th = arg;
	struct hold_test *t = th->test;
	const void **seen = NULL;

	if (th->id >= HOLD_WRITERS + 1)
		seen = am_test_alloc(HOLD_KEYS * sizeof(*seen));
	pthread_barrier_wait(&t->c.start);
	if (th->id < HOLD_WRITERS)
		hold_writer(t, th->id);
	else if (th->id == HOLD_WRITERS)
		hold_remover(t);
	else if (seen)
		hold_reader(t, seen);
	else
		am_c_fail(&t->c, "reader out of memory");
	am_test_free(seen);
	return NULL;
}

TEST(held_pointers_survive_growth_and_remove)
{
	struct hold_test *t = am_test_alloc(sizeof(*t));
	struct am_c_thread th[HOLD_THREADS];
	struct anchormap_stats st;
	u64 k;

	ASSERT_NOT_NULL(t);
	/* a tiny start, so the writers force many growths */
	ASSERT_EQ(am_c_init_map(&t->c, 0, HOLD_THREADS), 0);
	ASSERT_EQ(am_c_fill(&t->c.map, 0, HOLD_PRE), 0);
	for (k = 0; k < HOLD_PRE; k++)
		t->pre_key[k] = anchormap_get_key_value(&t->c.map, &k, &t->pre_val[k]);
	t->writers_left = HOLD_WRITERS;
	EXPECT_EQ(am_c_run(th, HOLD_THREADS, hold_thread, t), 0);
	EXPECT_EQ(t->c.errors, 0);
	EXPECT_EQ(t->removed, HOLD_PRE);
	anchormap_stats(&t->c.map, &st);
	EXPECT_EQ(st.len, HOLD_WRITERS * HOLD_PER_WRITER);
	EXPECT_EQ(st.deleted, HOLD_PRE);
	EXPECT_GE(st.segments, 8);
	am_c_fini_map(&t->c);
	am_test_free(t);
}

/*
 * ---- get_many and replace under writers ----
 *
 * Readers look up batches mixing keys present throughout (stable: the very
 * pointer anchormap_get() gives, their value), keys being replaced all the
 * time (always found, never a miss, with a value made for that key), and
 * absent keys, while one writer grows the map from nothing through many
 * rebuilds and another replaces.
 */
#define GM_STABLE	2000
#define GM_REPL		64
#define GM_REPL_BASE	100000
#define GM_GROW		60000
#define GM_GROW_BASE	200000
#define GM_ROUNDS	300
#define GM_BATCH	70
#define GM_READERS	2
#define GM_THREADS	(GM_READERS + 2)

struct gm_test {
	struct am_c_common c;
	const void *stable_ptr[GM_STABLE];
	int writers_left;
};

static u64 gm_repl_val(u64 k, u64 round)
{
	return k << 32 | round;
}

static void gm_reader(struct gm_test *t, u64 seed)
{
	const void *vals[GM_BATCH];
	u64 keys[GM_BATCH];
	int i, r;

	for (r = 0; r < GM_ROUNDS || __atomic_load_n(&t->writers_left, __ATOMIC_ACQUIRE); r++) {
		for (i = 0; i < GM_BATCH; i++) {
			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			switch ((seed >> 33) % 3) {
			case 0:
				keys[i] = (seed >> 40) % GM_STABLE;
				break;
			case 1:
				keys[i] = GM_REPL_BASE + (seed >> 40) % GM_REPL;
				break;
			default:
				keys[i] = 1ULL << 50 | (seed >> 20);	/* never inserted */
			}
		}
		if (anchormap_get_many(&t->c.map, keys, GM_BATCH, vals) < 0) {
			am_c_fail(&t->c, "get_many failed");
			return;
		}
		for (i = 0; i < GM_BATCH; i++) {
			u64 k = keys[i];

			if (k < GM_STABLE) {
				if (vals[i] != t->stable_ptr[k] || am_tu_rd64(vals[i]) != am_tu_val(k))
					am_c_fail(&t->c, "stable key %llu", (unsigned long long)k);
			} else if (k < GM_REPL_BASE + GM_REPL) {
				if (!vals[i] || am_tu_rd64(vals[i]) >> 32 != k)
					am_c_fail(&t->c, "replaced key %llu missed or wrong",
						  (unsigned long long)k);
			} else if (vals[i]) {
				am_c_fail(&t->c, "absent key %llx found", (unsigned long long)k);
			}
		}
	}
}

static void gm_grower(struct gm_test *t)
{
	u64 k, v;

	for (k = GM_GROW_BASE; k < GM_GROW_BASE + GM_GROW; k++) {
		v = am_tu_val(k);
		if (anchormap_insert(&t->c.map, &k, &v) != 1)
			am_c_fail(&t->c, "insert %llu", (unsigned long long)k);
	}
}

static void gm_replacer(struct gm_test *t)
{
	u64 k, v, round;

	for (round = 1; round <= 400; round++)
		for (k = GM_REPL_BASE; k < GM_REPL_BASE + GM_REPL; k++) {
			v = gm_repl_val(k, round);
			if (anchormap_replace(&t->c.map, &k, &v) != 1)
				am_c_fail(&t->c, "replace %llu", (unsigned long long)k);
		}
}

static void *gm_thread(void *arg)
{
	struct am_c_thread *th = arg;
	struct gm_test *t = th->test;

	pthread_barrier_wait(&t->c.start);
	if (th->id == 0)
		gm_grower(t);
	else if (th->id == 1)
		gm_replacer(t);
	else
		gm_reader(t, (u64)th->id * AM_TU_GOLDEN);
	if (th->id < 2)
		__atomic_sub_fetch(&t->writers_left, 1, __ATOMIC_RELEASE);
	return NULL;
}

TEST(get_many_and_replace_under_growth)
{
	struct gm_test *t = am_test_alloc(sizeof(*t));
	struct am_c_thread th[GM_THREADS];
	struct anchormap_stats st;
	u64 k, v;

	ASSERT_NOT_NULL(t);
	ASSERT_EQ(am_c_init_map(&t->c, 0, GM_THREADS), 0);
	ASSERT_EQ(am_c_fill(&t->c.map, 0, GM_STABLE), 0);
	for (k = 0; k < GM_STABLE; k++)
		t->stable_ptr[k] = anchormap_get(&t->c.map, &k);
	for (k = GM_REPL_BASE; k < GM_REPL_BASE + GM_REPL; k++) {
		v = gm_repl_val(k, 0);
		EXPECT_EQ(anchormap_insert(&t->c.map, &k, &v), 1);
	}
	t->writers_left = 2;
	EXPECT_EQ(am_c_run(th, GM_THREADS, gm_thread, t), 0);
	EXPECT_EQ(t->c.errors, 0);
	anchormap_stats(&t->c.map, &st);
	EXPECT_EQ(st.len, GM_STABLE + GM_REPL + GM_GROW);
	EXPECT_GE(st.rebuilds, 3);	/* the readers met rebuilds */
	for (k = GM_REPL_BASE; k < GM_REPL_BASE + GM_REPL; k++)
		EXPECT_EQ(am_tu_rd64(anchormap_get(&t->c.map, &k)), gm_repl_val(k, 400));
	am_c_fini_map(&t->c);
	am_test_free(t);
}

/* ---- the same keys inserted by several threads at once ---- */

#define SAME_KEYS	20000
#define SAME_THREADS	4

struct same_test {
	struct am_c_common c;
	int wins[SAME_KEYS];
	int winner[SAME_KEYS];
	int won[SAME_THREADS];
};

static void *same_thread(void *arg)
{
	struct am_c_thread *th = arg;
	struct same_test *t = th->test;
	u64 i, k, v;
	int ret;

	pthread_barrier_wait(&t->c.start);
	for (i = 0; i < SAME_KEYS; i++) {
		/* half the threads walk backwards: races at both ends */
		k = th->id & 1 ? SAME_KEYS - 1 - i : i;
		v = am_tu_val(k) ^ (u64)th->id;
		ret = anchormap_insert(&t->c.map, &k, &v);
		if (ret == 1) {
			am_c_inc(&t->wins[k]);
			__atomic_store_n(&t->winner[k], th->id, __ATOMIC_RELAXED);
			t->won[th->id]++;
		} else if (ret != 0) {
			am_c_fail(&t->c, "insert %llu returned %d", (unsigned long long)k, ret);
		}
	}
	return NULL;
}

TEST(same_keys_one_insert_wins)
{
	struct same_test *t = am_test_alloc(sizeof(*t));
	struct am_c_thread th[SAME_THREADS];
	long bad = 0, total = 0;
	u64 k;
	int i;

	ASSERT_NOT_NULL(t);
	ASSERT_EQ(am_c_init_map(&t->c, 16, SAME_THREADS), 0);
	EXPECT_EQ(am_c_run(th, SAME_THREADS, same_thread, t), 0);
	EXPECT_EQ(t->c.errors, 0);
	for (k = 0; k < SAME_KEYS; k++) {
		const void *v = anchormap_get(&t->c.map, &k);

		bad += t->wins[k] != 1;
		/* the first value wins: the one of the thread that got 1 */
		bad += !v || am_tu_rd64(v) != (am_tu_val(k) ^ (u64)t->winner[k]);
	}
	for (i = 0; i < SAME_THREADS; i++)
		total += t->won[i];
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(total, SAME_KEYS);
	EXPECT_EQ(anchormap_len(&t->c.map), SAME_KEYS);
	am_c_fini_map(&t->c);
	am_test_free(t);
}

/* ---- get_or_insert_with racing on the same keys ---- */

#define GOI_KEYS	10000
#define GOI_THREADS	4

struct goi_test {
	struct am_c_common c;
	int inits[GOI_KEYS];
	const void *ptr[GOI_THREADS][GOI_KEYS];
};

static void goi_init(void *value, const void *key, void *arg)
{
	struct goi_test *t = arg;
	u64 k = am_tu_rd64(key);

	if (k < GOI_KEYS)
		am_c_inc(&t->inits[k]);
	memcpy(value, &(u64){ am_tu_val(k) }, sizeof(u64));
}

static void *goi_thread(void *arg)
{
	struct am_c_thread *th = arg;
	struct goi_test *t = th->test;
	const void *p;
	u64 i, k;

	pthread_barrier_wait(&t->c.start);
	for (i = 0; i < GOI_KEYS; i++) {
		k = (i * 7 + (u64)th->id * 11) % GOI_KEYS;	/* 7 is coprime to GOI_KEYS */
		p = anchormap_get_or_insert_with(&t->c.map, &k, goi_init, t);
		if (IS_ERR_OR_NULL(p)) {
			am_c_fail(&t->c, "get_or_insert_with %llu failed", (unsigned long long)k);
			continue;
		}
		if (am_tu_rd64(p) != am_tu_val(k))
			am_c_fail(&t->c, "key %llu: value not initialised", (unsigned long long)k);
		t->ptr[th->id][k] = p;
	}
	return NULL;
}

TEST(get_or_insert_with_race_inits_once)
{
	struct goi_test *t = am_test_alloc(sizeof(*t));
	struct am_c_thread th[GOI_THREADS];
	long bad = 0;
	u64 k;
	int i;

	ASSERT_NOT_NULL(t);
	ASSERT_EQ(am_c_init_map(&t->c, 0, GOI_THREADS), 0);
	EXPECT_EQ(am_c_run(th, GOI_THREADS, goi_thread, t), 0);
	EXPECT_EQ(t->c.errors, 0);
	for (k = 0; k < GOI_KEYS; k++) {
		bad += t->inits[k] != 1;
		for (i = 0; i < GOI_THREADS; i++)
			bad += t->ptr[i][k] != t->ptr[0][k] || !t->ptr[i][k];
		bad += anchormap_get(&t->c.map, &k) != t->ptr[0][k];
	}
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(anchormap_len(&t->c.map), GOI_KEYS);
	am_c_fini_map(&t->c);
	am_test_free(t);
}

/* ---- iteration while others insert ---- */

#define ITI_PRE		3000
#define ITI_PER_WRITER	15000
#define ITI_WRITERS	2
#define ITI_WALKERS	2
#define ITI_MIN_PASSES	2
#define ITI_MAX_PASSES	200
#define ITI_KEYS	(ITI_PRE + ITI_WRITERS * ITI_PER_WRITER)
#define ITI_THREADS	(ITI_WRITERS + ITI_WALKERS)

struct iti_test {
	struct am_c_common c;
	int passes_seen_new;
	int writers_left;
};

/* Walk at least @min times, then on while writers run, never over @max. */
static bool am_c_keep_walking(int *writers_left, int pass, int min, int max)
{
	if (pass >= max)
		return false;
	return pass < min || __atomic_load_n(writers_left, __ATOMIC_ACQUIRE);
}

/*
 * One walk: no key twice, every key of [0, must) seen, every value right.
 * @seen is zeroed here.  Returns the number of keys at or above @must seen.
 */
static long am_c_walk(struct am_c_common *c, u8 *seen, u64 nkeys, u64 must)
{
	struct anchormap_iter it;
	const void *kp, *vp;
	long extra = 0;
	u64 k;

	memset(seen, 0, nkeys);
	anchormap_iter_init(&it, &c->map);
	while (anchormap_iter_next(&it, &kp, &vp)) {
		k = am_tu_rd64(kp);
		if (k >= nkeys) {
			am_c_fail(c, "walk: stray key %llu", (unsigned long long)k);
			continue;
		}
		if (seen[k]++)
			am_c_fail(c, "walk: key %llu seen twice", (unsigned long long)k);
		if (am_tu_rd64(vp) != am_tu_val(k))
			am_c_fail(c, "walk: key %llu has a wrong value", (unsigned long long)k);
		extra += k >= must;
	}
	for (k = 0; k < must; k++)
		if (!seen[k])
			am_c_fail(c, "walk: key %llu, present all along, not seen",
				  (unsigned long long)k);
	return extra;
}

static void *iti_thread(void *arg)
{
	struct am_c_thread *th = arg;
	struct iti_test *t = th->test;
	u8 *seen;
	int pass;

	pthread_barrier_wait(&t->c.start);
	if (th->id < ITI_WRITERS) {
		u64 base = ITI_PRE + (u64)th->id * ITI_PER_WRITER;

		if (am_c_fill(&t->c.map, base, base + ITI_PER_WRITER))
			am_c_fail(&t->c, "writer %d: insert failed", th->id);
		__atomic_sub_fetch(&t->writers_left, 1, __ATOMIC_RELEASE);
		return NULL;
	}
	seen = am_test_alloc(ITI_KEYS);
	if (!seen) {
		am_c_fail(&t->c, "walker out of memory");
		return NULL;
	}
	/* a walk finished before the writers got a CPU would prove little */
	while (anchormap_len(&t->c.map) < ITI_PRE + 64 &&
	       __atomic_load_n(&t->writers_left, __ATOMIC_ACQUIRE))
		sched_yield();
	for (pass = 0; am_c_keep_walking(&t->writers_left, pass, ITI_MIN_PASSES,
					  ITI_MAX_PASSES); pass++)
		if (am_c_walk(&t->c, seen, ITI_KEYS, ITI_PRE))
			__atomic_add_fetch(&t->passes_seen_new, 1, __ATOMIC_RELAXED);
	am_test_free(seen);
	return NULL;
}

TEST(iter_during_inserts)
{
	struct iti_test *t = am_test_alloc(sizeof(*t));
	struct am_c_thread th[ITI_THREADS];

	ASSERT_NOT_NULL(t);
	ASSERT_EQ(am_c_init_map(&t->c, 0, ITI_THREADS), 0);
	ASSERT_EQ(am_c_fill(&t->c.map, 0, ITI_PRE), 0);
	t->writers_left = ITI_WRITERS;
	EXPECT_EQ(am_c_run(th, ITI_THREADS, iti_thread, t), 0);
	EXPECT_EQ(t->c.errors, 0);
	EXPECT_EQ(anchormap_len(&t->c.map), ITI_KEYS);
	if (!t->passes_seen_new)
		am_test_log("note: no walk overlapped an insert this run");
	am_c_fini_map(&t->c);
	am_test_free(t);
}

/* ---- iteration while others remove and re-insert the same keys ---- */

#define CHURN_STABLE	2000	/* never touched */
#define CHURN_KEYS	512	/* removed and re-inserted, per churner */
#define CHURN_ROUNDS	24
#define CHURN_CHURNERS	2
#define CHURN_WALKERS	2
#define CHURN_MIN_PASSES	2
#define CHURN_MAX_PASSES	60
#define CHURN_NKEYS	(CHURN_STABLE + CHURN_CHURNERS * CHURN_KEYS)
#define CHURN_THREADS	(CHURN_CHURNERS + CHURN_WALKERS)

struct churn_test {
	struct am_c_common c;
	int churners_left;
};

static void churn_keys(struct churn_test *t, int id)
{
	u64 base = CHURN_STABLE + (u64)id * CHURN_KEYS, k, v;
	int round;

	for (round = 0; round < CHURN_ROUNDS; round++) {
		for (k = base; k < base + CHURN_KEYS; k++)
			if (anchormap_remove(&t->c.map, &k) != 1)
				am_c_fail(&t->c, "churn: remove %llu", (unsigned long long)k);
		for (k = base; k < base + CHURN_KEYS; k++) {
			v = am_tu_val(k);
			if (anchormap_insert(&t->c.map, &k, &v) != 1)
				am_c_fail(&t->c, "churn: insert %llu", (unsigned long long)k);
		}
	}
}

static void *churn_thread(void *arg)
{
	struct am_c_thread *th = arg;
	struct churn_test *t = th->test;
	u8 *seen;
	int pass;

	pthread_barrier_wait(&t->c.start);
	if (th->id < CHURN_CHURNERS) {
		churn_keys(t, th->id);
		__atomic_sub_fetch(&t->churners_left, 1, __ATOMIC_RELEASE);
		return NULL;
	}
	seen = am_test_alloc(CHURN_NKEYS);
	if (!seen) {
		am_c_fail(&t->c, "walker out of memory");
		return NULL;
	}
	for (pass = 0; am_c_keep_walking(&t->churners_left, pass, CHURN_MIN_PASSES,
					  CHURN_MAX_PASSES); pass++)
		am_c_walk(&t->c, seen, CHURN_NKEYS, CHURN_STABLE);
	am_test_free(seen);
	return NULL;
}

TEST(iter_during_remove_reinsert)
{
	struct churn_test *t = am_test_alloc(sizeof(*t));
	struct am_c_thread th[CHURN_THREADS];

	ASSERT_NOT_NULL(t);
	ASSERT_EQ(am_c_init_map(&t->c, 0, CHURN_THREADS), 0);
	ASSERT_EQ(am_c_fill(&t->c.map, 0, CHURN_NKEYS), 0);
	t->churners_left = CHURN_CHURNERS;
	EXPECT_EQ(am_c_run(th, CHURN_THREADS, churn_thread, t), 0);
	EXPECT_EQ(t->c.errors, 0);
	EXPECT_EQ(anchormap_len(&t->c.map), CHURN_NKEYS);
	am_c_fini_map(&t->c);
	am_test_free(t);
}

/* ---- len after writers join ---- */

#define LEN_PER_THREAD	10000
#define LEN_THREADS	4
#define LEN_REMOVED	((LEN_PER_THREAD + 2) / 3)	/* every third, from the first */

struct len_test {
	struct am_c_common c;
};

static void *len_thread(void *arg)
{
	struct am_c_thread *th = arg;
	struct len_test *t = th->test;
	u64 base = (u64)th->id * LEN_PER_THREAD, k;

	pthread_barrier_wait(&t->c.start);
	if (am_c_fill(&t->c.map, base, base + LEN_PER_THREAD))
		am_c_fail(&t->c, "thread %d: insert failed", th->id);
	for (k = base; k < base + LEN_PER_THREAD; k += 3)
		if (anchormap_remove(&t->c.map, &k) != 1)
			am_c_fail(&t->c, "thread %d: remove %llu", th->id, (unsigned long long)k);
	return NULL;
}

TEST(len_exact_after_join)
{
	struct len_test *t = am_test_alloc(sizeof(*t));
	struct am_c_thread th[LEN_THREADS];
	struct anchormap_stats st;

	ASSERT_NOT_NULL(t);
	ASSERT_EQ(am_c_init_map(&t->c, 0, LEN_THREADS), 0);
	EXPECT_EQ(am_c_run(th, LEN_THREADS, len_thread, t), 0);
	EXPECT_EQ(t->c.errors, 0);
	EXPECT_EQ(anchormap_len(&t->c.map), LEN_THREADS * (LEN_PER_THREAD - LEN_REMOVED));
	anchormap_stats(&t->c.map, &st);
	EXPECT_EQ(st.len, anchormap_len(&t->c.map));
	EXPECT_EQ(st.deleted, LEN_THREADS * LEN_REMOVED);
	am_c_fini_map(&t->c);
	am_test_free(t);
}

/* ---- a random mix on a small key space, 8 threads on few cores ---- */

#define MIX_KEYS	1024
#define MIX_OPS		40000
#define MIX_THREADS	8

struct mix_test {
	struct am_c_common c;
	int ins[MIX_KEYS];	/* inserts that took effect, per key */
	int rem[MIX_KEYS];	/* removes that took effect, per key */
};

static void mix_init(void *value, const void *key, void *arg)
{
	struct mix_test *t = arg;
	u64 k = am_tu_rd64(key);

	am_c_inc(&t->ins[k % MIX_KEYS]);
	memcpy(value, &(u64){ am_tu_val(k) }, sizeof(u64));
}

static void mix_op(struct mix_test *t, u64 r)
{
	u64 k = (r >> 8) % MIX_KEYS, v = am_tu_val(k);
	const void *p;
	int ret;

	switch (r & 3) {
	case 0:
		ret = anchormap_insert(&t->c.map, &k, &v);
		if (ret == 1)
			am_c_inc(&t->ins[k]);
		else if (ret)
			am_c_fail(&t->c, "insert %llu: %d", (unsigned long long)k, ret);
		break;
	case 1:
		p = anchormap_get_or_insert_with(&t->c.map, &k, mix_init, t);
		if (IS_ERR_OR_NULL(p) || am_tu_rd64(p) != v)
			am_c_fail(&t->c, "get_or_insert_with %llu", (unsigned long long)k);
		break;
	case 2:
		ret = anchormap_remove(&t->c.map, &k);
		if (ret == 1)
			am_c_inc(&t->rem[k]);
		else if (ret)
			am_c_fail(&t->c, "remove %llu: %d", (unsigned long long)k, ret);
		break;
	default:
		p = anchormap_get(&t->c.map, &k);
		if (p && am_tu_rd64(p) != v)
			am_c_fail(&t->c, "get %llu: wrong value", (unsigned long long)k);
		break;
	}
}

static void *mix_thread(void *arg)
{
	struct am_c_thread *th = arg;
	struct mix_test *t = th->test;
	u64 seed = 0x243f6a8885a308d3ULL * (u64)(th->id + 1);
	int i;

	pthread_barrier_wait(&t->c.start);
	for (i = 0; i < MIX_OPS; i++)
		mix_op(t, am_tu_xorshift64(&seed));
	return NULL;
}

/*
 * Tags of @m's current index that are not EMPTY (live and tombstones),
 * counted in the index itself: at quiescence what the credits say is in
 * use (anchormap_stats().index_used), if every claim, refund and rebuild
 * kept its accounts.
 */
static long am_c_tags_in_use(const struct anchormap *m)
{
	const struct anchormap_index *idx = m->index;
	const struct anchormap_group *g = __anchormap_groups(idx);
	size_t gi;
	long n = 0;
	int i;

	for (gi = 0; gi <= idx->hmask / sizeof(*g); gi++)
		for (i = 0; i < __ANCHORMAP_GROUP; i++)
			n += g[gi].tag[i] != __ANCHORMAP_TAG_EMPTY;
	return n;
}

TEST(mixed_ops_consistent_oversubscribed)
{
	struct anchormap_stats st;
	struct mix_test *t = am_test_alloc(sizeof(*t));
	struct am_c_thread th[MIX_THREADS];
	u8 *seen = am_test_alloc(MIX_KEYS);
	long bad = 0, live = 0, extra;
	u64 k;

	ASSERT_NOT_NULL(t);
	ASSERT_NOT_NULL(seen);
	ASSERT_EQ(am_c_init_map(&t->c, 0, MIX_THREADS), 0);
	EXPECT_EQ(am_c_run(th, MIX_THREADS, mix_thread, t), 0);
	EXPECT_EQ(t->c.errors, 0);
	for (k = 0; k < MIX_KEYS; k++) {
		int net = t->ins[k] - t->rem[k];

		/* every effective insert and remove of a key alternate */
		bad += net != (int)anchormap_contains_key(&t->c.map, &k);
		live += net;
	}
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(anchormap_len(&t->c.map), live);
	/* quiescent now: a walk must see exactly the live keys */
	extra = am_c_walk(&t->c, seen, MIX_KEYS, 0);
	for (k = 0, bad = 0; k < MIX_KEYS; k++)
		bad += seen[k] != anchormap_contains_key(&t->c.map, &k);
	EXPECT_EQ(extra, live);
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(t->c.errors, 0);
	/* the index's credits add up after rebuilds, refunds and tombstones */
	anchormap_stats(&t->c.map, &st);
	EXPECT_GT(st.rebuilds, 1);
	EXPECT_EQ(st.index_used, am_c_tags_in_use(&t->c.map));
	EXPECT_EQ(anchormap_shrink_to_fit(&t->c.map), 0);
	EXPECT_EQ(anchormap_len(&t->c.map), live);
	am_c_fini_map(&t->c);
	am_test_free(seen);
	am_test_free(t);
}

/* ---- concurrent reserve and insert ---- */

#define RES_THREADS	4
#define RES_PER_THREAD	8000

struct res_test {
	struct am_c_common c;
};

static void *res_thread(void *arg)
{
	struct am_c_thread *th = arg;
	struct res_test *t = th->test;
	u64 base = (u64)th->id * RES_PER_THREAD, k, v;
	int ret;

	pthread_barrier_wait(&t->c.start);
	for (k = base; k < base + RES_PER_THREAD; k++) {
		if (k % 500 == 0) {
			ret = anchormap_reserve(&t->c.map, 1000);
			if (ret)
				am_c_fail(&t->c, "reserve: %d", ret);
		}
		v = am_tu_val(k);
		if (anchormap_insert(&t->c.map, &k, &v) != 1)
			am_c_fail(&t->c, "insert %llu", (unsigned long long)k);
	}
	return NULL;
}

TEST(reserve_races_with_inserts)
{
	struct res_test *t = am_test_alloc(sizeof(*t));
	struct am_c_thread th[RES_THREADS];
	long bad = 0;
	u64 k;

	ASSERT_NOT_NULL(t);
	ASSERT_EQ(am_c_init_map(&t->c, 0, RES_THREADS), 0);
	EXPECT_EQ(am_c_run(th, RES_THREADS, res_thread, t), 0);
	EXPECT_EQ(t->c.errors, 0);
	for (k = 0; k < RES_THREADS * RES_PER_THREAD; k++) {
		const void *v = anchormap_get(&t->c.map, &k);

		bad += !v || am_tu_rd64(v) != am_tu_val(k);
	}
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(anchormap_len(&t->c.map), RES_THREADS * RES_PER_THREAD);
	am_c_fini_map(&t->c);
	am_test_free(t);
}

static const struct am_test_case am_concurrency_cases[] = {
	AM_TEST_ENTRY(held_pointers_survive_growth_and_remove)
	AM_TEST_ENTRY(get_many_and_replace_under_growth)
	AM_TEST_ENTRY(same_keys_one_insert_wins)
	AM_TEST_ENTRY(get_or_insert_with_race_inits_once)
	AM_TEST_ENTRY(iter_during_inserts)
	AM_TEST_ENTRY(iter_during_remove_reinsert)
	AM_TEST_ENTRY(len_exact_after_join)
	AM_TEST_ENTRY(mixed_ops_consistent_oversubscribed)
	AM_TEST_ENTRY(reserve_races_with_inserts)
};

int main(void)
{
	return am_test_main(am_concurrency_cases, (int)ARRAY_SIZE(am_concurrency_cases));
}
