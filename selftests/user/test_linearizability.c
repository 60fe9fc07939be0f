// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * test_linearizability.c - every concurrent history is linearizable.
 *
 * Rounds of 2-8 threads run short random histories of insert, remove, get,
 * get_or_insert, contains_key, get_key_value, replace and
 * insert_or_replace over 1-8 keys of a fresh
 * map, so that conflicts are constant.  Every call is bracketed by a
 * logical clock (one counter, read before the call and after it returns);
 * values read through a returned pointer are read at once.  Each key's
 * sub-history is then checked against the sequential semantics with a
 * Wing-Gong search (try every operation that may come first, recurse,
 * backtrack), memoised on (operations done, state).  Linearizability is
 * local, so a history is linearizable iff every key's sub-history is.
 *
 * Rounds vary: values unique per insert or drawn from a pool of three (so
 * the same bytes are removed and inserted again: revival), the default
 * hash, one hash for every key (one group, one stripe) and a hash whose
 * home group is the last (probes wrap), plain and ANCHORMAP_F_ATOMIC maps,
 * and rounds where one more thread grows the map with other keys and calls
 * anchormap_reserve() meanwhile.
 *
 * The checker shows it can fail: a second pass corrupts one result of
 * every round's history (a value no insert wrote) and must report every one.
 *
 * The run lasts AM_LIN_SECONDS (default 2) and at least one round of each
 * configuration; make soak runs it longer.
 */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "harness.h"

#define AM_L_MAX_THREADS	8
#define AM_L_MAX_KEYS		8
#define AM_L_MAX_OPS		48	/* per thread and round */
#define AM_L_KEY_OPS		64	/* at most per key: the search's bitmask */
#define AM_L_FILLER_BASE	1000
#define AM_L_BAD_VALUE		0xbadbadbadbadULL	/* no insert writes it */

enum am_l_kind {
	L_INSERT, L_REMOVE, L_GET, L_GET_OR_INSERT, L_CONTAINS, L_GKV, L_REPLACE, L_PUT, L_KINDS
};

struct am_l_op {
	u8 kind, key, thread;
	bool found;		/* get, gkv, contains: the key was there */
	int ret;		/* insert, remove, replace, insert_or_replace: 1 or 0 */
	u64 arg;		/* the value inserted or replaced */
	u64 val;		/* the value read */
	u64 inv, resp;		/* the logical clock around the call */
};

struct am_l_config {
	int threads, keys, ops;
	bool pool, atomic, grow;
	int hash;		/* 0 default, 1 one for all, 2 last home group */
};

struct am_l_round {
	struct anchormap map;
	struct am_l_config cfg;
	struct am_l_op ops[AM_L_MAX_THREADS][AM_L_MAX_OPS];
	u64 clock;
	u64 seed;
	pthread_barrier_t start;
	int errors;		/* calls that failed outright */
};

static u64 am_l_tick(struct am_l_round *r)
{
	return __atomic_fetch_add(&r->clock, 1, __ATOMIC_SEQ_CST);
}

/* Every key of a round in one home group, one stripe, one fingerprint. */
static u64 am_l_hash_one(const void *key, u32 key_size, u64 seed)
{
	return 0x5a5a000000000000ULL;
}

/* Home group: the last of any segment, so probes wrap to group 0. */
static u64 am_l_hash_last(const void *key, u32 key_size, u64 seed)
{
	u64 k = am_tu_rd64(key);

	return (k * AM_TU_GOLDEN) << 32 | 0xffffffffULL;
}

/* One call, bracketed by the clock. */
static void am_l_call(struct am_l_round *r, struct am_l_op *op)
{
	struct anchormap *m = &r->map;
	u64 k = op->key;
	const void *p, *vp = NULL;
	int ret;

	op->inv = am_l_tick(r);
	switch (op->kind) {
	case L_INSERT:
		ret = anchormap_insert(m, &k, &op->arg);
		if (ret < 0)
			__atomic_add_fetch(&r->errors, 1, __ATOMIC_RELAXED);
		op->ret = ret;
		break;
	case L_REMOVE:
		op->ret = anchormap_remove(m, &k);
		break;
	case L_REPLACE:
	case L_PUT:
		ret = op->kind == L_REPLACE ? anchormap_replace(m, &k, &op->arg) :
					      anchormap_insert_or_replace(m, &k, &op->arg);
		if (ret < 0)
			__atomic_add_fetch(&r->errors, 1, __ATOMIC_RELAXED);
		op->ret = ret;
		break;
	case L_GET:
		p = anchormap_get(m, &k);
		op->found = p;
		op->val = p ? am_tu_rd64(p) : 0;
		break;
	case L_GET_OR_INSERT:
		p = anchormap_get_or_insert(m, &k, &op->arg);
		if (IS_ERR_OR_NULL(p)) {
			__atomic_add_fetch(&r->errors, 1, __ATOMIC_RELAXED);
			p = &op->arg;
		}
		op->val = am_tu_rd64(p);
		break;
	case L_CONTAINS:
		op->found = anchormap_contains_key(m, &k);
		break;
	case L_GKV:
		p = anchormap_get_key_value(m, &k, &vp);
		op->found = p;
		op->val = p ? am_tu_rd64(vp) : 0;
		if (p && am_tu_rd64(p) != k)
			__atomic_add_fetch(&r->errors, 1, __ATOMIC_RELAXED);
		break;
	}
	op->resp = am_l_tick(r);
}

struct am_l_thread {
	pthread_t tid;
	struct am_l_round *r;
	int id;
};

static void *am_l_worker(void *arg)
{
	struct am_l_thread *t = arg;
	struct am_l_round *r = t->r;
	int i;

	pthread_barrier_wait(&r->start);
	for (i = 0; i < r->cfg.ops; i++)
		am_l_call(r, &r->ops[t->id][i]);
	return NULL;
}

/* Grows the map under the history with keys of its own, and reserves. */
static void *am_l_grower(void *arg)
{
	struct am_l_round *r = arg;
	u64 k, v;

	pthread_barrier_wait(&r->start);
	for (k = AM_L_FILLER_BASE; k < AM_L_FILLER_BASE + 200; k++) {
		v = k;
		if (anchormap_insert(&r->map, &k, &v) != 1)
			__atomic_add_fetch(&r->errors, 1, __ATOMIC_RELAXED);
		if (k % 64 == 0 && anchormap_reserve(&r->map, 100))
			__atomic_add_fetch(&r->errors, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* The operations of a round, drawn before it starts. */
static void am_l_plan(struct am_l_round *r)
{
	static const u8 weights[L_KINDS] = { 3, 3, 3, 2, 1, 1, 2, 1 };	/* per kind */
	u64 s = r->seed;
	int t, i, w, sum = 0;

	for (w = 0; w < L_KINDS; w++)
		sum += weights[w];
	for (t = 0; t < r->cfg.threads; t++)
		for (i = 0; i < r->cfg.ops; i++) {
			struct am_l_op *op = &r->ops[t][i];
			int pick = (int)(am_tu_xorshift64(&s) % (u64)sum);

			memset(op, 0, sizeof(*op));
			for (w = 0; pick >= weights[w]; w++)
				pick -= weights[w];
			op->kind = (u8)w;
			op->key = (u8)(am_tu_xorshift64(&s) % (u64)r->cfg.keys);
			op->thread = (u8)t;
			/* unique: thread and index; pooled: one of three */
			op->arg = r->cfg.pool ? 1 + am_tu_xorshift64(&s) % 3 :
						(u64)(t + 1) << 32 | (u64)(i + 1);
		}
}

static int am_l_run(struct am_l_round *r)
{
	struct anchormap_params p = {
		.key_size = sizeof(u64), .value_size = sizeof(u64), .name = "lin",
	};
	struct am_l_thread th[AM_L_MAX_THREADS];
	pthread_t grower;
	int i, n = r->cfg.threads + (r->cfg.grow ? 1 : 0);

	p.flags = r->cfg.atomic ? ANCHORMAP_F_ATOMIC : 0;
	p.hash = r->cfg.hash == 1 ? am_l_hash_one : r->cfg.hash == 2 ? am_l_hash_last : NULL;
	if (anchormap_init(&r->map, &p, r->cfg.grow ? 0 : 64))
		return -1;
	am_l_plan(r);
	r->clock = 0;
	r->errors = 0;
	pthread_barrier_init(&r->start, NULL, (unsigned int)n);
	for (i = 0; i < r->cfg.threads; i++) {
		th[i].r = r;
		th[i].id = i;
		pthread_create(&th[i].tid, NULL, am_l_worker, &th[i]);
	}
	if (r->cfg.grow)
		pthread_create(&grower, NULL, am_l_grower, r);
	for (i = 0; i < r->cfg.threads; i++)
		pthread_join(th[i].tid, NULL);
	if (r->cfg.grow)
		pthread_join(grower, NULL);
	pthread_barrier_destroy(&r->start);
	anchormap_destroy(&r->map);
	return r->errors;
}

/* ---- the checker ---- */

struct am_l_state {
	bool present;
	u64 value;
};

/* Apply @op to @s as the sequential map would; false if its result differs. */
static bool am_l_step(const struct am_l_op *op, struct am_l_state *s)
{
	switch (op->kind) {
	case L_INSERT:
		if (op->ret != !s->present)
			return false;
		if (!s->present) {
			s->present = true;
			s->value = op->arg;
		}
		return true;
	case L_REMOVE:
		if (op->ret != s->present)
			return false;
		s->present = false;
		return true;
	case L_REPLACE:
	case L_PUT:
		if (op->ret != s->present)
			return false;
		if (s->present || op->kind == L_PUT) {
			s->present = true;
			s->value = op->arg;
		}
		return true;
	case L_GET:
	case L_GKV:
		return op->found == s->present && (!s->present || op->val == s->value);
	case L_GET_OR_INSERT:
		if (!s->present) {
			s->present = true;
			s->value = op->arg;
		}
		return op->val == s->value;
	case L_CONTAINS:
		return op->found == s->present;
	}
	return false;
}

/* Failed (done-set, state) triples, so that no search repeats one. */
#define AM_L_MEMO	(1u << 14)

struct am_l_memo {
	u64 done[AM_L_MEMO];
	u64 value[AM_L_MEMO];
	u8 used[AM_L_MEMO];	/* 0 empty, 1 absent state, 2 present state */
};

static u32 am_l_memo_slot(const struct am_l_memo *mm, u64 done, const struct am_l_state *s,
			  bool *hit)
{
	u64 h = (done ^ (s->present ? s->value * AM_TU_GOLDEN : 7)) *
		0xff51afd7ed558ccdULL;
	u32 i = (u32)(h >> 50);
	u8 tag = s->present ? 2 : 1;

	for (;; i = (i + 1) & (AM_L_MEMO - 1)) {
		if (!mm->used[i]) {
			*hit = false;
			return i;
		}
		if (mm->used[i] == tag && mm->done[i] == done &&
		    (!s->present || mm->value[i] == s->value)) {
			*hit = true;
			return i;
		}
	}
}

struct am_l_search {
	const struct am_l_op *ops[AM_L_KEY_OPS];
	int n;
	u64 all;
	struct am_l_memo *memo;
	u32 memo_used;
};

static bool am_l_search(struct am_l_search *k, u64 done, struct am_l_state s)
{
	u64 min_resp = (u64)-1;
	bool hit;
	u32 slot;
	int i;

	if (done == k->all)
		return true;
	slot = am_l_memo_slot(k->memo, done, &s, &hit);
	if (hit)
		return false;
	/* a candidate must have been invoked before every pending op returned */
	for (i = 0; i < k->n; i++)
		if (!(done >> i & 1) && k->ops[i]->resp < min_resp)
			min_resp = k->ops[i]->resp;
	for (i = 0; i < k->n; i++) {
		struct am_l_state next = s;

		if (done >> i & 1 || k->ops[i]->inv > min_resp)
			continue;
		if (am_l_step(k->ops[i], &next) && am_l_search(k, done | 1ULL << i, next))
			return true;
	}
	if (k->memo_used < AM_L_MEMO / 2) {	/* remember the failure, while room */
		slot = am_l_memo_slot(k->memo, done, &s, &hit);	/* the search moved on */
		k->memo->used[slot] = s.present ? 2 : 1;
		k->memo->done[slot] = done;
		k->memo->value[slot] = s.value;
		k->memo_used++;
	}
	return false;
}

/* What a failure shows: the configuration and the key's whole history. */
static void am_l_dump(const struct am_l_round *r, const struct am_l_search *k, int key)
{
	static const char *const names[L_KINDS] = {
		"insert", "remove", "get", "get_or_insert", "contains", "get_key_value",
		"replace", "insert_or_replace",
	};
	int i;

	am_test_log("key %d: %d operations, no linearization (threads %d keys %d ops %d pool %d atomic %d grow %d hash %d)",
		    key, k->n, r->cfg.threads, r->cfg.keys, r->cfg.ops, r->cfg.pool,
		    r->cfg.atomic, r->cfg.grow, r->cfg.hash);
	for (i = 0; i < k->n; i++) {
		const struct am_l_op *op = k->ops[i];

		am_test_log("  [%llu, %llu] thread %d %s arg %llx -> ret %d found %d val %llx",
			    (unsigned long long)op->inv, (unsigned long long)op->resp, op->thread,
			    names[op->kind], (unsigned long long)op->arg, op->ret, op->found,
			    (unsigned long long)op->val);
	}
}

/* Is the round's history linearizable?  Reports the first key that is not. */
static bool am_l_check(const struct am_l_round *r, struct am_l_memo *memo, bool quiet)
{
	int key, t, i;

	for (key = 0; key < r->cfg.keys; key++) {
		struct am_l_search k = { .memo = memo };
		struct am_l_state s = { false, 0 };

		for (t = 0; t < r->cfg.threads; t++)
			for (i = 0; i < r->cfg.ops; i++) {
				if (r->ops[t][i].key != key)
					continue;
				if (k.n == AM_L_KEY_OPS) {
					am_test_log("key %d: over %d operations", key, k.n);
					return false;	/* the configurations prevent it */
				}
				k.ops[k.n++] = &r->ops[t][i];
			}
		k.all = k.n == 64 ? (u64)-1 : (1ULL << k.n) - 1;
		memset(memo->used, 0, sizeof(memo->used));
		if (!am_l_search(&k, 0, s)) {
			if (!quiet)
				am_l_dump(r, &k, key);
			return false;
		}
	}
	return true;
}

/* Give one read of the round a value no insert wrote; false if none reads. */
static bool am_l_corrupt(struct am_l_round *r, u64 *s)
{
	int tries;

	for (tries = 0; tries < 1000; tries++) {
		struct am_l_op *op = &r->ops[am_tu_xorshift64(s) % (u64)r->cfg.threads]
					   [am_tu_xorshift64(s) % (u64)r->cfg.ops];

		if (op->kind == L_GET || op->kind == L_GKV || op->kind == L_GET_OR_INSERT) {
			op->found = true;
			op->val = AM_L_BAD_VALUE;
			return true;
		}
	}
	return false;
}

/* ---- the configurations and the test ---- */

static const struct am_l_config am_l_configs[] = {
	/* threads keys ops  pool   atomic grow   hash */
	{ 2, 1, 24, false, false, false, 0 },
	{ 2, 1, 24, true,  false, false, 0 },
	{ 4, 2, 16, true,  false, false, 0 },
	{ 4, 4, 32, false, false, true,  0 },
	{ 8, 8, 32, true,  false, false, 0 },
	{ 3, 2, 24, true,  false, false, 1 },
	{ 3, 3, 24, true,  false, true,  2 },
	{ 4, 1, 16, true,  true,  false, 0 },
	{ 4, 4, 24, false, true,  true,  1 },
	{ 8, 8, 24, true,  false, true,  2 },
};

#define AM_L_CONFIGS	(sizeof(am_l_configs) / sizeof(am_l_configs[0]))

static double am_l_seconds(void)
{
	const char *e = getenv("AM_LIN_SECONDS");
	double v = e ? atof(e) : 2.0;

	return v > 0 ? v : 2.0;
}

static double am_l_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

TEST(concurrent_histories_are_linearizable)
{
	static struct am_l_round r;
	struct am_l_memo *memo = malloc(sizeof(*memo));
	double end = am_l_now() + am_l_seconds();
	long rounds = 0, ops = 0, bad = 0, failed_calls = 0;
	long corrupted = 0, caught = 0;
	u64 s = 0x2545f4914f6cdd1dULL;
	unsigned int c;

	ASSERT_NOT_NULL(memo);
	for (c = 0; rounds < (long)AM_L_CONFIGS || am_l_now() < end; c++) {
		r.cfg = am_l_configs[c % AM_L_CONFIGS];
		r.seed = am_tu_xorshift64(&s) | 1;
		failed_calls += am_l_run(&r);
		rounds++;
		ops += (long)r.cfg.threads * r.cfg.ops;
		if (!am_l_check(&r, memo, bad > 3)) {
			bad++;
			continue;
		}
		/* the checker must catch a result the map never gave */
		if (am_l_corrupt(&r, &s)) {
			corrupted++;
			caught += !am_l_check(&r, memo, true);
		}
	}
	am_test_log("%ld histories checked, %ld operations, %ld corrupted copies, %ld caught",
		    rounds, ops, corrupted, caught);
	EXPECT_EQ(failed_calls, 0);
	EXPECT_EQ(bad, 0);
	EXPECT_GT(corrupted, rounds / 2);
	EXPECT_EQ(caught, corrupted);
	free(memo);
}

/* The search itself, on hand-made histories: one good, one impossible. */
TEST(checker_tells_good_from_bad_histories)
{
	static struct am_l_round r;
	struct am_l_memo *memo = malloc(sizeof(*memo));
	struct am_l_op *a = r.ops[0], *b = r.ops[1];

	ASSERT_NOT_NULL(memo);
	memset(&r, 0, sizeof(r));
	r.cfg.threads = 2;
	r.cfg.keys = 1;
	r.cfg.ops = 2;
	/* A: insert 5 [0,3], get -> 5 [4,5]; B: remove [1,6] (=1), get absent [7,8] */
	a[0] = (struct am_l_op){ .kind = L_INSERT, .arg = 5, .ret = 1, .inv = 0, .resp = 3 };
	a[1] = (struct am_l_op){ .kind = L_GET, .found = true, .val = 5, .inv = 4, .resp = 5 };
	b[0] = (struct am_l_op){ .kind = L_REMOVE, .ret = 1, .inv = 1, .resp = 6, .thread = 1 };
	b[1] = (struct am_l_op){ .kind = L_GET, .found = false, .inv = 7, .resp = 8, .thread = 1 };
	EXPECT_TRUE(am_l_check(&r, memo, true));
	/* the remove returned before the get began: the get cannot see 5 */
	b[0].resp = 2;
	a[0].resp = 1;
	b[0].inv = 1;
	a[1].inv = 4;
	EXPECT_FALSE(am_l_check(&r, memo, true));
	/* a first insert that says "present" into an empty map */
	memset(&r.ops, 0, sizeof(r.ops));
	r.cfg.threads = 1;
	r.cfg.ops = 1;
	a[0] = (struct am_l_op){ .kind = L_INSERT, .arg = 5, .ret = 0, .inv = 0, .resp = 1 };
	EXPECT_FALSE(am_l_check(&r, memo, true));
	free(memo);
}

static const struct am_test_case am_lin_cases[] = {
	AM_TEST_ENTRY(checker_tells_good_from_bad_histories)
	AM_TEST_ENTRY(concurrent_histories_are_linearizable)
};

int main(void)
{
	return am_test_main(am_lin_cases, (int)ARRAY_SIZE(am_lin_cases));
}
