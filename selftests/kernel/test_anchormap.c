// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * test_anchormap.ko - anchormap's selftests inside the kernel
 *
 * At load time this runs
 *  - the portable functional tests of selftests/common/, through the
 *    same harness as in userspace, and
 *  - kernel-only tests: one kthread per online CPU (at least two) hammering
 *    a map while others hold pointers into it, racing inserts of the same
 *    keys, lookups from softirq (a timer) and hardirq (a hard hrtimer)
 *    during writes, inserts into an ANCHORMAP_F_ATOMIC map from both after
 *    anchormap_reserve(), iteration during writes, /proc/anchormap read
 *    while maps are created, reshaped and destroyed, snapshots in kernel
 *    memory, and the kernel glue (failure injection, alignment,
 *    an atomic map written and destroyed with interrupts off).
 *
 * Results are kselftest/TAP lines ("ok N name", "not ok N name"), then
 * "# anchormap selftests: P passed, F failed" and "P passed, F failed".
 * Loading succeeds when every test passed (a failed run returns -EINVAL,
 * so that the module does not stay loaded); a few maps stay alive while it
 * is loaded to show in /proc/anchormap.
 *
 * Only anchormap.h is used: this is a client like any other.
 */
#include <linux/atomic.h>
#include <linux/completion.h>
#include <linux/cpumask.h>
#include <linux/delay.h>
#include <linux/fs.h>
#include <linux/hrtimer.h>
#include <linux/jiffies.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/spinlock.h>
#include <linux/timer.h>
#include <linux/mm.h>
#include <linux/slab.h>

#include "../harness.h"
#include "test_abi_client.h"
#include "../common_tests.c"

static unsigned int run_ms = 1500;
module_param(run_ms, uint, 0444);
MODULE_PARM_DESC(run_ms, "upper bound of each concurrency test's run, in ms (default 1500)");

static unsigned int rounds = 1;
module_param(rounds, uint, 0444);
MODULE_PARM_DESC(rounds, "runs of the kernel-only tests (the concurrency tests): PREEMPT_RT runs repeat them (default 1)");

/* ---- helpers: values with a checkable pattern, a per-thread PRNG ---- */

/* 48 bytes derived from the key: any change or mix-up shows. */
struct kt_val {
	u64 key;
	u64 word[5];
};

static void kt_val_fill(struct kt_val *v, u64 key)
{
	int i;

	v->key = key;
	for (i = 0; i < ARRAY_SIZE(v->word); i++)
		v->word[i] = am_tu_fmix64(key * 8 + i);
}

static bool kt_val_ok(const struct kt_val *v, u64 key)
{
	int i;

	if (READ_ONCE(v->key) != key)
		return false;
	for (i = 0; i < ARRAY_SIZE(v->word); i++)
		if (READ_ONCE(v->word[i]) != am_tu_fmix64(key * 8 + i))
			return false;
	return true;
}

static int kt_map_init(struct anchormap *map, const char *name, u32 value_size,
		       u32 flags, size_t capacity)
{
	struct anchormap_params p = {
		.key_size = sizeof(u64),
		.value_size = value_size,
		.flags = flags,
		.name = name,
	};

	return anchormap_init(map, &p, capacity);
}

static int kt_insert_val(struct anchormap *map, u64 key)
{
	struct kt_val v;

	kt_val_fill(&v, key);
	return anchormap_insert(map, &key, &v);
}

/* A looked-up value must be the one of its key; NULL is fine unless @must. */
static bool kt_lookup_ok(const struct anchormap *map, u64 key, bool must)
{
	const struct kt_val *v = anchormap_get(map, &key);

	if (!v)
		return !must;
	return kt_val_ok(v, key);
}

/* ---- kthreads: one per online CPU (at least two), started together ---- */

struct kt_run;

struct kt_worker {
	struct kt_run *run;
	struct task_struct *task;
	int id;
	u64 rng;
	long errors;
	long ops;
};

struct kt_run {
	void (*fn)(struct kt_worker *w);
	void *priv;
	int nworkers;
	unsigned long deadline;		/* jiffies */
	atomic_t ready;
	atomic_t left;
	atomic_t writers_left;		/* for tests whose readers wait on writers */
	struct completion go;
	struct completion done;
	struct kt_worker *workers;
};

static int kt_worker_main(void *arg)
{
	struct kt_worker *w = arg;
	struct kt_run *run = w->run;

	atomic_inc(&run->ready);
	wait_for_completion(&run->go);
	run->fn(w);
	if (atomic_dec_and_test(&run->left))
		complete(&run->done);
	/* stay until kthread_stop(), which needs the task alive */
	set_current_state(TASK_INTERRUPTIBLE);
	while (!kthread_should_stop()) {
		schedule();
		set_current_state(TASK_INTERRUPTIBLE);
	}
	__set_current_state(TASK_RUNNING);
	return 0;
}

static int kt_nworkers(void)
{
	return max_t(int, 2, num_online_cpus());
}

static bool kt_time_left(const struct kt_run *run)
{
	return time_before(jiffies, run->deadline);
}

/*
 * Run @fn in @n kthreads, worker i bound to the i-th online CPU (mod the
 * count), all released at once.  Return: the sum of their errors, or
 * -ENOMEM / the kthread error when they could not all be created (then
 * none has run).
 */
static long kt_run_workers(struct kt_run *run, int n, void (*fn)(struct kt_worker *w),
			   void *priv)
{
	int cpus[64], ncpu = 0, cpu, i;
	long errors = 0;

	for_each_online_cpu(cpu) {
		if (ncpu < ARRAY_SIZE(cpus))
			cpus[ncpu++] = cpu;
	}
	run->fn = fn;
	run->priv = priv;
	run->nworkers = n;
	atomic_set(&run->ready, 0);
	atomic_set(&run->left, n);
	init_completion(&run->go);
	init_completion(&run->done);
	run->workers = kcalloc(n, sizeof(*run->workers), GFP_KERNEL);
	if (!run->workers)
		return -ENOMEM;
	/* create all first: a kthread stopped before its first wake-up never runs */
	for (i = 0; i < n; i++) {
		struct kt_worker *w = &run->workers[i];

		w->run = run;
		w->id = i;
		w->rng = am_tu_fmix64(get_random_u64() | 1) | 1;
		w->task = kthread_create(kt_worker_main, w, "kt_anchormap/%d", i);
		if (IS_ERR(w->task)) {
			long err = PTR_ERR(w->task);

			while (--i >= 0)
				kthread_stop(run->workers[i].task);
			kfree(run->workers);
			run->workers = NULL;
			return err;
		}
		kthread_bind(w->task, cpus[i % ncpu]);
	}
	run->deadline = jiffies + msecs_to_jiffies(run_ms);
	for (i = 0; i < n; i++)
		wake_up_process(run->workers[i].task);
	while (atomic_read(&run->ready) < n)
		msleep(1);
	complete_all(&run->go);
	wait_for_completion(&run->done);
	for (i = 0; i < n; i++) {
		kthread_stop(run->workers[i].task);
		errors += run->workers[i].errors;
	}
	return errors;
}

static long kt_ops(const struct kt_run *run)
{
	long ops = 0;
	int i;

	for (i = 0; run->workers && i < run->nworkers; i++)
		ops += run->workers[i].ops;
	return ops;
}

static void kt_run_free(struct kt_run *run)
{
	kfree(run->workers);
	run->workers = NULL;
}

/* ==== 1. readers keep pointers while writers insert, grow and remove ==== */

#define KT1_STABLE	2048		/* inserted before, never removed */
#define KT1_PER_WRITER	30000		/* at most, bounded by run_ms too */
#define KT1_HELD	32
#define KT1_LAG		64		/* a writer removes key j - LAG ... */
/* ... when (j - LAG) % 3 == 0, so readers see removed entries too. */

struct kt1 {
	struct anchormap map;
	int nwriters;
	long inserted[64];		/* per writer */
};

static u64 kt1_key(int writer, long j)
{
	return KT1_STABLE + (u64)writer * KT1_PER_WRITER + j;
}

static void kt1_writer(struct kt_worker *w, struct kt1 *t)
{
	long j;

	for (j = 0; j < KT1_PER_WRITER && kt_time_left(w->run); j++) {
		if (kt_insert_val(&t->map, kt1_key(w->id, j)) != 1)
			w->errors++;
		if (j >= KT1_LAG && (j - KT1_LAG) % 3 == 0 &&
		    anchormap_remove(&t->map, &(u64){ kt1_key(w->id, j - KT1_LAG) }) != 1)
			w->errors++;
		/* a stable key replaced (copy-on-write): readers must never miss it */
		if ((j & 7) == 7) {
			u64 key = am_tu_xorshift64(&w->rng) % KT1_STABLE;
			struct kt_val v;

			kt_val_fill(&v, key);
			if (anchormap_replace(&t->map, &key, &v) != 1)
				w->errors++;
		}
		w->ops++;
		if ((j & 63) == 63)
			cond_resched();
	}
	t->inserted[w->id] = j;
	atomic_dec(&w->run->writers_left);
}

/* The same, through anchormap_get_many(): batches across prefetch boundaries. */
#define KT1_MANY	40

static void kt1_read_many(struct kt_worker *w, struct kt1 *t, u64 span)
{
	const void *vals[KT1_MANY];
	u64 keys[KT1_MANY];
	long found, n = 0;
	unsigned int i;

	for (i = 0; i < KT1_MANY; i++)
		keys[i] = am_tu_xorshift64(&w->rng) % (i & 1 ? KT1_STABLE : span);
	found = anchormap_get_many(&t->map, keys, KT1_MANY, vals);
	for (i = 0; i < KT1_MANY; i++) {
		if (!vals[i]) {
			if (keys[i] < KT1_STABLE)
				w->errors++;	/* stable keys never go, replaced or not */
			continue;
		}
		n++;
		if (!kt_val_ok(vals[i], keys[i]))
			w->errors++;
	}
	if (found != n)
		w->errors++;
	w->ops++;
}

static void kt1_reader(struct kt_worker *w, struct kt1 *t)
{
	const struct kt_val *held[KT1_HELD] = { NULL };
	u64 held_key[KT1_HELD] = { 0 };
	u64 span = KT1_STABLE + (u64)t->nwriters * KT1_PER_WRITER;
	unsigned int next = 0, i;
	bool last = false;

	while (!last) {
		/* one more full pass after the writers are done */
		last = atomic_read(&w->run->writers_left) == 0;
		for (i = 0; i < 64; i++) {
			u64 key = am_tu_xorshift64(&w->rng) % (i & 1 ? KT1_STABLE : span);
			const void *stored;
			const struct kt_val *v;

			stored = anchormap_get_key_value(&t->map, &key, (const void **)&v);
			if (!stored) {
				if (key < KT1_STABLE)
					w->errors++;	/* stable keys never go */
				continue;
			}
			if (memcmp(stored, &key, sizeof(key)) || !kt_val_ok(v, key)) {
				w->errors++;
				continue;
			}
			held[next] = v;
			held_key[next] = key;
			next = (next + 1) % KT1_HELD;
			w->ops++;
		}
		/* every pointer kept, even to entries removed since, is intact */
		for (i = 0; i < KT1_HELD; i++)
			if (held[i] && !kt_val_ok(held[i], held_key[i]))
				w->errors++;
		kt1_read_many(w, t, span);
		cond_resched();
	}
}

static void kt1_fn(struct kt_worker *w)
{
	struct kt1 *t = w->run->priv;

	if (w->id < t->nwriters)
		kt1_writer(w, t);
	else
		kt1_reader(w, t);
}

TEST(k_readers_keep_pointers_while_writers_grow_and_remove)
{
	struct kt_run run = { };
	struct anchormap_stats st;
	struct kt1 *t;
	size_t expect = KT1_STABLE;
	long errors, j;
	int n = kt_nworkers(), w;
	u64 key;

	t = am_test_alloc(sizeof(*t));
	ASSERT_NOT_NULL(t);
	t->nwriters = min(n / 2, (int)ARRAY_SIZE(t->inserted));
	if (kt_map_init(&t->map, "test_readers_writers", sizeof(struct kt_val), 0, 16)) {
		am_test_free(t);
		ASSERT_TRUE(false);
	}
	for (key = 0; key < KT1_STABLE; key++)
		EXPECT_EQ(kt_insert_val(&t->map, key), 1);
	atomic_set(&run.writers_left, t->nwriters);
	errors = kt_run_workers(&run, n, kt1_fn, t);
	EXPECT_EQ(errors, 0);
	am_test_log("%d writers, %d readers: %ld operations", t->nwriters,
		    n - t->nwriters, kt_ops(&run));

	/* the final contents follow from what each writer did */
	for (w = 0; w < t->nwriters; w++) {
		long ins = t->inserted[w];

		for (j = 0; j < ins; j++) {
			bool removed = j % 3 == 0 && j + KT1_LAG < ins;

			key = kt1_key(w, j);
			if (!removed && !kt_lookup_ok(&t->map, key, true))
				errors++;
			if (removed && anchormap_contains_key(&t->map, &key))
				errors++;
		}
		expect += ins - (ins > KT1_LAG ? (ins - KT1_LAG - 1) / 3 + 1 : 0);
	}
	for (key = 0; key < KT1_STABLE; key++)
		if (!kt_lookup_ok(&t->map, key, true))
			errors++;
	EXPECT_EQ(errors, 0);
	EXPECT_EQ(anchormap_len(&t->map), expect);
	anchormap_stats(&t->map, &st);
	EXPECT_GT(st.segments, 1);		/* it grew while shared */
	EXPECT_GT(st.deleted, 0);
	kt_run_free(&run);
	anchormap_destroy(&t->map);
	am_test_free(t);
}

/* ==== 2. racing inserts of the same keys: exactly one wins each ==== */

#define KT2_KEYS	4096

struct kt2_val {
	u64 key;
	u32 owner;
	u32 pad;
};

struct kt2 {
	struct anchormap map;
	atomic_t winner[KT2_KEYS];		/* worker id + 1 */
	const void *shared_ptr[KT2_KEYS];	/* get_or_insert results */
};

static void kt2_fn(struct kt_worker *w)
{
	struct kt2 *t = w->run->priv;
	int n = w->run->nworkers;
	u64 i, start = (u64)w->id * KT2_KEYS / n;

	/* each worker starts elsewhere, so that every key is raced somewhere */
	for (i = 0; i < KT2_KEYS; i++) {
		u64 key = (start + i) % KT2_KEYS;
		struct kt2_val v = { .key = key, .owner = w->id };
		int ret = anchormap_insert(&t->map, &key, &v);

		if (ret == 1) {
			if (atomic_cmpxchg(&t->winner[key], 0, w->id + 1) != 0)
				w->errors++;	/* a second winner */
		} else if (ret != 0) {
			w->errors++;
		}
		w->ops++;
		if ((i & 255) == 255)
			cond_resched();
	}
	/* get_or_insert: everyone gets the one stored value */
	for (i = 0; i < KT2_KEYS; i++) {
		u64 key = KT2_KEYS + (start + i) % KT2_KEYS;
		struct kt2_val v = { .key = key, .owner = w->id };
		const struct kt2_val *got = anchormap_get_or_insert(&t->map, &key, &v);
		const void *prev;

		if (IS_ERR_OR_NULL(got) || got->key != key) {
			w->errors++;
			continue;
		}
		prev = cmpxchg(&t->shared_ptr[key - KT2_KEYS], NULL, (const void *)got);
		if (prev && prev != got)
			w->errors++;
		if ((i & 255) == 255)
			cond_resched();
	}
}

TEST(k_racing_inserts_of_the_same_keys_have_one_winner)
{
	struct kt_run run = { };
	struct kt2 *t;
	long errors;
	u64 key;

	t = am_test_alloc(sizeof(*t));
	ASSERT_NOT_NULL(t);
	if (kt_map_init(&t->map, "test_racing_inserts", sizeof(struct kt2_val), 0, 0)) {
		am_test_free(t);
		ASSERT_TRUE(false);
	}
	errors = kt_run_workers(&run, kt_nworkers(), kt2_fn, t);
	EXPECT_EQ(errors, 0);
	for (key = 0; key < KT2_KEYS; key++) {
		const struct kt2_val *v = anchormap_get(&t->map, &key);
		int winner = atomic_read(&t->winner[key]);

		if (!winner || !v || v->key != key || v->owner != winner - 1)
			errors++;
	}
	for (key = KT2_KEYS; key < 2 * KT2_KEYS; key++)
		if (anchormap_get(&t->map, &key) != t->shared_ptr[key - KT2_KEYS])
			errors++;
	EXPECT_EQ(errors, 0);
	EXPECT_EQ(anchormap_len(&t->map), 2 * KT2_KEYS);
	kt_run_free(&run);
	anchormap_destroy(&t->map);
	am_test_free(t);
}

/* ==== 3. lookups from softirq and hardirq while writers run ==== */

#define KT3_STABLE	1024
#define KT3_SPAN	(1u << 16)	/* writers' keys: STABLE .. STABLE + SPAN */
#define KT3_HR_NS	(500 * NSEC_PER_USEC)

struct kt3 {
	struct anchormap map;
	struct timer_list timer;
	struct hrtimer hrtimer;
	int stop;
	u64 rng_soft, rng_hard;
	atomic_long_t soft_runs, hard_runs, soft_errors, hard_errors;
	atomic_t bad_context;
};

/* A batch through anchormap_get_many(), from the same contexts. */
#define KT3_MANY	16

static long kt3_lookups_many(struct kt3 *t, u64 *rng)
{
	const void *vals[KT3_MANY];
	u64 keys[KT3_MANY];
	long errors = 0, found = 0, ret;
	int i;

	for (i = 0; i < KT3_MANY; i++)
		keys[i] = i & 1 ? KT3_STABLE + am_tu_xorshift64(rng) % KT3_SPAN :
				  am_tu_xorshift64(rng) % KT3_STABLE;
	ret = anchormap_get_many(&t->map, keys, KT3_MANY, vals);
	for (i = 0; i < KT3_MANY; i++) {
		if (!vals[i]) {
			errors += keys[i] < KT3_STABLE;	/* stable keys never go */
			continue;
		}
		found++;
		errors += !kt_val_ok(vals[i], keys[i]);
	}
	return errors + (ret != found);
}

static long kt3_lookups(struct kt3 *t, u64 *rng, int n)
{
	long errors = 0;
	int i;

	for (i = 0; i < n; i++) {
		u64 stable = am_tu_xorshift64(rng) % KT3_STABLE;
		u64 any = KT3_STABLE + am_tu_xorshift64(rng) % KT3_SPAN;

		if (!kt_lookup_ok(&t->map, stable, true))
			errors++;
		if (!kt_lookup_ok(&t->map, any, false))
			errors++;
	}
	return errors + kt3_lookups_many(t, rng);
}

static void kt3_timer_fn(struct timer_list *timer)
{
	struct kt3 *t = from_timer(t, timer, timer);

	if (!in_serving_softirq())
		atomic_inc(&t->bad_context);
	atomic_long_add(kt3_lookups(t, &t->rng_soft, 32), &t->soft_errors);
	atomic_long_inc(&t->soft_runs);
	if (!READ_ONCE(t->stop))
		mod_timer(&t->timer, jiffies + 1);
}

static enum hrtimer_restart kt3_hrtimer_fn(struct hrtimer *hr)
{
	struct kt3 *t = container_of(hr, struct kt3, hrtimer);

	if (!in_hardirq())
		atomic_inc(&t->bad_context);
	atomic_long_add(kt3_lookups(t, &t->rng_hard, 8), &t->hard_errors);
	atomic_long_inc(&t->hard_runs);
	if (READ_ONCE(t->stop))
		return HRTIMER_NORESTART;
	hrtimer_forward_now(hr, ns_to_ktime(KT3_HR_NS));
	return HRTIMER_RESTART;
}

static void kt3_writer(struct kt_worker *w)
{
	struct kt3 *t = w->run->priv;
	long i;

	/* random inserts and removes over the span: the map keeps growing */
	for (i = 0; kt_time_left(w->run) && i < 200000; i++) {
		u64 key = KT3_STABLE + am_tu_xorshift64(&w->rng) % KT3_SPAN;
		int ret;

		if (i % 4 == 3)
			ret = anchormap_remove(&t->map, &key);
		else
			ret = kt_insert_val(&t->map, key);
		if (ret < 0)
			w->errors++;
		w->ops++;
		if ((i & 63) == 63)
			cond_resched();
	}
}

TEST(k_lookups_from_softirq_and_hardirq_during_writes)
{
	struct kt_run run = { };
	struct kt3 *t;
	long errors;
	u64 key;

	t = am_test_alloc(sizeof(*t));
	ASSERT_NOT_NULL(t);
	if (kt_map_init(&t->map, "test_irq_lookups", sizeof(struct kt_val), 0, 0)) {
		am_test_free(t);
		ASSERT_TRUE(false);
	}
	for (key = 0; key < KT3_STABLE; key++)
		EXPECT_EQ(kt_insert_val(&t->map, key), 1);
	t->rng_soft = get_random_u64() | 1;
	t->rng_hard = get_random_u64() | 1;
	timer_setup(&t->timer, kt3_timer_fn, 0);
	hrtimer_init(&t->hrtimer, CLOCK_MONOTONIC, HRTIMER_MODE_REL_HARD);
	t->hrtimer.function = kt3_hrtimer_fn;
	mod_timer(&t->timer, jiffies + 1);
	hrtimer_start(&t->hrtimer, ns_to_ktime(KT3_HR_NS), HRTIMER_MODE_REL_HARD);

	errors = kt_run_workers(&run, kt_nworkers(), kt3_writer, t);

	WRITE_ONCE(t->stop, 1);
	hrtimer_cancel(&t->hrtimer);
	del_timer_sync(&t->timer);
	am_test_log("writers: %ld operations; timer: %ld runs; hrtimer: %ld runs",
		    kt_ops(&run), atomic_long_read(&t->soft_runs),
		    atomic_long_read(&t->hard_runs));
	EXPECT_EQ(errors, 0);
	EXPECT_EQ(atomic_long_read(&t->soft_errors), 0);
	EXPECT_EQ(atomic_long_read(&t->hard_errors), 0);
	EXPECT_EQ(atomic_read(&t->bad_context), 0);
	EXPECT_GT(atomic_long_read(&t->soft_runs), 0);
	EXPECT_GT(atomic_long_read(&t->hard_runs), 0);
	for (key = 0; key < KT3_STABLE; key++)
		EXPECT_TRUE(kt_lookup_ok(&t->map, key, true));
	kt_run_free(&run);
	anchormap_destroy(&t->map);
	am_test_free(t);
}

/* ==== 4. an ANCHORMAP_F_ATOMIC map written from softirq and hardirq ==== */

#define KT4_SOFT	4096		/* keys the timer inserts, 64 a tick */
#define KT4_HARD	2048		/* keys the hrtimer inserts, 16 a shot */
#define KT4_PROC	4096		/* keys each kthread inserts */
#define KT4_SOFT_BASE	0
#define KT4_HARD_BASE	(1ULL << 32)
#define KT4_PROC_BASE	(2ULL << 32)
#define KT4_PROC_STEP	(1ULL << 24)

struct kt4 {
	struct anchormap map;
	struct timer_list timer;
	struct hrtimer hrtimer;
	u64 soft_next, hard_next;	/* touched by one callback each */
	atomic_long_t errors;
	struct completion soft_done, hard_done;
};

static int kt4_insert(struct anchormap *map, u64 key)
{
	u64 value = am_tu_fmix64(key);
	const u64 *got;
	int ret = anchormap_insert(map, &key, &value);

	if (ret != 1)
		return 1;
	got = anchormap_get(map, &key);
	return !got || *got != value;
}

static void kt4_timer_fn(struct timer_list *timer)
{
	struct kt4 *t = from_timer(t, timer, timer);
	int i;

	for (i = 0; i < 64 && t->soft_next < KT4_SOFT; i++, t->soft_next++)
		atomic_long_add(kt4_insert(&t->map, KT4_SOFT_BASE + t->soft_next), &t->errors);
	if (t->soft_next < KT4_SOFT)
		mod_timer(&t->timer, jiffies + 1);
	else
		complete(&t->soft_done);
}

static enum hrtimer_restart kt4_hrtimer_fn(struct hrtimer *hr)
{
	struct kt4 *t = container_of(hr, struct kt4, hrtimer);
	int i;

	for (i = 0; i < 16 && t->hard_next < KT4_HARD; i++, t->hard_next++)
		atomic_long_add(kt4_insert(&t->map, KT4_HARD_BASE + t->hard_next), &t->errors);
	if (t->hard_next >= KT4_HARD) {
		complete(&t->hard_done);
		return HRTIMER_NORESTART;
	}
	hrtimer_forward_now(hr, ns_to_ktime(KT3_HR_NS));
	return HRTIMER_RESTART;
}

static void kt4_proc_fn(struct kt_worker *w)
{
	struct kt4 *t = w->run->priv;
	u64 i;

	for (i = 0; i < KT4_PROC; i++) {
		w->errors += kt4_insert(&t->map, KT4_PROC_BASE + w->id * KT4_PROC_STEP + i);
		w->ops++;
		if ((i & 63) == 63)
			cond_resched();
	}
}

TEST(k_atomic_map_inserts_from_timer_and_hrtimer_after_reserve)
{
	struct kt_run run = { };
	struct anchormap_stats before, after;
	int n = kt_nworkers(), w;
	size_t total = KT4_SOFT + KT4_HARD + (size_t)n * KT4_PROC;
	struct kt4 *t;
	long errors = 0;
	u64 i;

	t = am_test_alloc(sizeof(*t));
	ASSERT_NOT_NULL(t);
	if (kt_map_init(&t->map, "test_atomic_irq_inserts", sizeof(u64), ANCHORMAP_F_ATOMIC, 0)) {
		am_test_free(t);
		ASSERT_TRUE(false);
	}
	EXPECT_EQ(anchormap_reserve(&t->map, total), 0);
	EXPECT_GE(anchormap_capacity(&t->map), total);
	anchormap_stats(&t->map, &before);
	init_completion(&t->soft_done);
	init_completion(&t->hard_done);
	timer_setup(&t->timer, kt4_timer_fn, 0);
	hrtimer_init(&t->hrtimer, CLOCK_MONOTONIC, HRTIMER_MODE_REL_HARD);
	t->hrtimer.function = kt4_hrtimer_fn;
	mod_timer(&t->timer, jiffies + 1);
	hrtimer_start(&t->hrtimer, ns_to_ktime(KT3_HR_NS), HRTIMER_MODE_REL_HARD);

	/* the kthreads share the stripes with both callbacks */
	errors = kt_run_workers(&run, n, kt4_proc_fn, t);
	EXPECT_EQ(errors, 0);
	EXPECT_GT(wait_for_completion_timeout(&t->soft_done, 60 * HZ), 0);
	EXPECT_GT(wait_for_completion_timeout(&t->hard_done, 60 * HZ), 0);
	hrtimer_cancel(&t->hrtimer);
	del_timer_sync(&t->timer);
	EXPECT_EQ(atomic_long_read(&t->errors), 0);

	anchormap_stats(&t->map, &after);
	EXPECT_EQ(after.segments, before.segments);	/* no growth was needed */
	EXPECT_EQ(anchormap_len(&t->map), total);
	errors = 0;
	for (i = 0; i < KT4_SOFT; i++)
		errors += !anchormap_contains_key(&t->map, &(u64){ KT4_SOFT_BASE + i });
	for (i = 0; i < KT4_HARD; i++)
		errors += !anchormap_contains_key(&t->map, &(u64){ KT4_HARD_BASE + i });
	for (w = 0; w < n; w++)
		for (i = 0; i < KT4_PROC; i++)
			errors += !anchormap_contains_key(&t->map,
				&(u64){ KT4_PROC_BASE + w * KT4_PROC_STEP + i });
	EXPECT_EQ(errors, 0);
	kt_run_free(&run);
	anchormap_destroy(&t->map);
	am_test_free(t);
}

/* ==== 5. iteration while writers run: no key twice, stable keys seen ==== */

#define KT5_STABLE	2048
#define KT5_SPAN	8192
#define KT5_KEYS	(KT5_STABLE + KT5_SPAN)

struct kt5 {
	struct anchormap map;
	unsigned long seen[BITS_TO_LONGS(KT5_KEYS)];
	atomic_t walkers_left;
	long walks;
};

static void kt5_walker(struct kt_worker *w, struct kt5 *t)
{
	struct anchormap_iter *it;
	const void *k, *v;
	int walk;

	it = kmalloc(sizeof(*it), GFP_KERNEL);
	if (!it) {
		w->errors++;
		goto out;
	}
	for (walk = 0; walk < 40 && kt_time_left(w->run); walk++) {
		long stable = 0;

		bitmap_zero(t->seen, KT5_KEYS);
		anchormap_for_each(&t->map, it, &k, &v) {
			u64 key = *(const u64 *)k;

			if (key >= KT5_KEYS || __test_and_set_bit(key, t->seen) ||
			    !kt_val_ok(v, key)) {
				w->errors++;
				continue;
			}
			stable += key < KT5_STABLE;
		}
		if (stable != KT5_STABLE)
			w->errors++;
		t->walks++;
		cond_resched();
	}
	kfree(it);
out:
	atomic_dec(&t->walkers_left);
}

static void kt5_fn(struct kt_worker *w)
{
	struct kt5 *t = w->run->priv;
	long i;

	if (w->id == 0) {
		kt5_walker(w, t);
		return;
	}
	/* insert, remove and re-insert keys while the walks go on */
	for (i = 0; atomic_read(&t->walkers_left) && i < 1000000; i++) {
		u64 key = KT5_STABLE + am_tu_xorshift64(&w->rng) % KT5_SPAN;
		int ret = i % 3 == 2 ? anchormap_remove(&t->map, &key) :
				       kt_insert_val(&t->map, key);

		if (ret < 0)
			w->errors++;
		w->ops++;
		if ((i & 63) == 63)
			cond_resched();
	}
}

TEST(k_iteration_during_writes_sees_no_key_twice)
{
	struct kt_run run = { };
	struct kt5 *t;
	long errors;
	u64 key;

	t = am_test_alloc(sizeof(*t));
	ASSERT_NOT_NULL(t);
	if (kt_map_init(&t->map, "test_iterate_writes", sizeof(struct kt_val), 0, 64)) {
		am_test_free(t);
		ASSERT_TRUE(false);
	}
	for (key = 0; key < KT5_STABLE; key++)
		EXPECT_EQ(kt_insert_val(&t->map, key), 1);
	atomic_set(&t->walkers_left, 1);
	errors = kt_run_workers(&run, kt_nworkers(), kt5_fn, t);
	am_test_log("%ld walks during %ld writes", t->walks, kt_ops(&run));
	EXPECT_EQ(errors, 0);
	EXPECT_GT(t->walks, 0);
	kt_run_free(&run);
	anchormap_destroy(&t->map);
	am_test_free(t);
}

/* ==== 6. the kernel glue: injection, live count, alignment, contexts ==== */

TEST(k_glue_failure_injection_and_live_count)
{
	struct anchormap map;
	long live = anchormap_debug_allocs_live();
	u64 key = 1;
	int n, ret, failures = 0;

	/* every allocation of init, in turn, fails cleanly */
	for (n = 1; n <= 8; n++) {
		anchormap_debug_fail_nth(n);
		ret = kt_map_init(&map, "test_fail_nth", sizeof(u64), 0, 100);
		anchormap_debug_fail_nth(0);
		if (ret == -ENOMEM) {
			failures++;
			EXPECT_EQ(anchormap_debug_allocs_live(), live);
			continue;
		}
		ASSERT_EQ(ret, 0);
		EXPECT_GT(anchormap_debug_allocs_live(), live);
		anchormap_destroy(&map);
		EXPECT_EQ(anchormap_debug_allocs_live(), live);
	}
	EXPECT_GE(failures, 1);

	/* a growth failing inside an insert reports -ENOMEM, changes nothing */
	ASSERT_EQ(kt_map_init(&map, "test_fail_nth", sizeof(u64), 0, 0), 0);
	ret = 1;
	anchormap_debug_fail_nth(1);	/* the first growth */
	for (key = 0; key < 100000 && ret == 1; key++)
		ret = anchormap_insert(&map, &key, &key);
	anchormap_debug_fail_nth(0);
	key--;
	EXPECT_EQ(ret, -ENOMEM);
	EXPECT_EQ(anchormap_len(&map), key);
	EXPECT_FALSE(anchormap_contains_key(&map, &key));
	EXPECT_EQ(anchormap_insert(&map, &key, &key), 1);
	EXPECT_EQ(anchormap_len(&map), key + 1);
	anchormap_destroy(&map);
	EXPECT_EQ(anchormap_debug_allocs_live(), live);
}

TEST(k_glue_value_alignment_64)
{
	struct anchormap_params p = {
		.key_size = sizeof(u64), .value_size = 24, .value_align = 64,
		.name = "test_align",
	};
	struct anchormap map;
	const void *v;
	u64 key;
	long bad = 0;

	ASSERT_EQ(anchormap_init(&map, &p, 0), 0);
	for (key = 0; key < 3000; key++) {
		EXPECT_EQ(anchormap_insert(&map, &key, NULL), 1);
		v = anchormap_get(&map, &key);
		if (!v || !IS_ALIGNED((unsigned long)v, 64))
			bad++;
	}
	EXPECT_EQ(bad, 0);
	anchormap_destroy(&map);
}

static DEFINE_SPINLOCK(kt6_lock);

TEST(k_glue_atomic_map_lives_under_a_spinlock)
{
	struct anchormap *map = am_test_alloc(sizeof(*map));
	unsigned long flags;
	int init_ret, len_ok = 1;
	u64 key;

	ASSERT_NOT_NULL(map);
	/*
	 * Writes, growth and destroy with interrupts off.  Not init: it is
	 * process context, may sleep, for atomic maps too (anchormap.h).
	 */
	init_ret = kt_map_init(map, "test_atomic_ctx", sizeof(u64), ANCHORMAP_F_ATOMIC, 0);
	spin_lock_irqsave(&kt6_lock, flags);
	if (!init_ret) {
		for (key = 0; key < 500; key++)
			if (anchormap_insert(map, &key, &key) != 1)
				len_ok = 0;
		for (key = 0; key < 500; key += 2)
			if (anchormap_remove(map, &key) != 1)
				len_ok = 0;
		if (anchormap_len(map) != 250)
			len_ok = 0;
		anchormap_destroy(map);
	}
	spin_unlock_irqrestore(&kt6_lock, flags);
	am_test_free(map);
	EXPECT_EQ(init_ret, 0);
	EXPECT_TRUE(len_ok);
}

static DEFINE_SPINLOCK(kt6_remove_lock);
#define KT_REBUILD_BIG	4096	/* entries: a rebuild of several chunks */

/*
 * anchormap_remove() never sleeps, on a map that is not ANCHORMAP_F_ATOMIC
 * too, also while a rebuild is pending (helping one takes the rebuild lock,
 * a mutex on such a map): removals under a spinlock, with a rebuild of
 * several chunks under way.  The debug kernels' might_sleep() reports a
 * sleep there; every kernel checks that the removals left the rebuild to
 * the inserts, which may sleep.
 */
TEST(k_glue_remove_during_rebuild_never_sleeps)
{
	struct anchormap *map = am_test_alloc(sizeof(*map));
	const struct anchormap_index *pending = NULL, *after;
	u64 key, n, end, removed = 0;
	int bad = 0;

	ASSERT_NOT_NULL(map);
	if (kt_map_init(map, "test_remove_rebuild", sizeof(u64), 0, 0)) {
		am_test_free(map);
		ASSERT_TRUE(false);
	}
	/* grow until an insert leaves a rebuild of KT_REBUILD_BIG entries or more pending */
	for (n = 0; n < 200000 && !pending; n++) {
		bad += anchormap_insert(map, &n, &n) != 1;
		if (n >= KT_REBUILD_BIG)
			pending = READ_ONCE(map->next);
	}
	EXPECT_NOT_NULL(pending);
	spin_lock(&kt6_remove_lock);
	for (key = 0; pending && key < n; key += 7)
		removed += anchormap_remove(map, &key) == 1;
	spin_unlock(&kt6_remove_lock);
	EXPECT_EQ(removed, (n + 6) / 7);
	after = READ_ONCE(map->next);
	EXPECT_TRUE(after == pending);	/* not one chunk copied by a removal */
	/* inserts finish it (each copies a chunk) */
	for (end = n; end < n + 100000 && READ_ONCE(map->next); end++)
		bad += anchormap_insert(map, &end, &end) != 1;
	EXPECT_NULL(READ_ONCE(map->next));
	for (key = 0; key < end; key++)
		bad += !anchormap_get(map, &key) == (key >= n || key % 7);
	EXPECT_EQ(bad, 0);
	anchormap_destroy(map);
	am_test_free(map);
}

/*
 * In the kernel a replaced index is freed after an RCU grace period, not
 * kept until an exclusive operation: a map grown from 0 through many
 * rebuilds keeps none (retired_bytes 0), and once the deferred frees ran,
 * only its current index and storage are allocated.  Pointers taken before
 * the rebuilds stay valid with their bytes.
 */
TEST(k_glue_replaced_indexes_freed_after_grace_period)
{
	struct anchormap *map = am_test_alloc(sizeof(*map));
	long live = anchormap_debug_allocs_live();
	const struct kt_val *first;
	struct anchormap_stats st;
	struct kt_val want;
	u64 key = 0;
	int bad = 0;

	ASSERT_NOT_NULL(map);
	if (kt_map_init(map, "test_rcu_retire", sizeof(struct kt_val), 0, 0)) {
		am_test_free(map);
		ASSERT_TRUE(false);
	}
	EXPECT_EQ(kt_insert_val(map, key), 1);
	first = anchormap_get(map, &key);
	for (key = 1; key < 20000; key++)
		bad += kt_insert_val(map, key) != 1;
	anchormap_stats(map, &st);
	EXPECT_EQ(bad, 0);
	EXPECT_GT(st.rebuilds, 5);
	EXPECT_EQ(st.retired_bytes, 0);
	/* the map's own blocks: shared state, one index, its arenas (lock keys) */
	EXPECT_LE(anchormap_debug_allocs_live() - live, 3 + (long)st.segments);
	kt_val_fill(&want, 0);
	key = 0;
	EXPECT_TRUE(first && anchormap_get(map, &key) == first &&
		    !memcmp(first, &want, sizeof(want)));
	anchormap_destroy(map);
	am_test_free(map);
	EXPECT_EQ(anchormap_debug_allocs_live(), live);
}

/*
 * An atomic map whose storage was vmalloc'ed (above KMALLOC_MAX_SIZE, so
 * kvzalloc() cannot have used kmalloc) destroyed with interrupts off:
 * vfree() may sleep there, so the free must be deferred.  The live count
 * (which waits for deferred frees) shows that it happens.
 */
static DEFINE_SPINLOCK(kt6_destroy_lock);

TEST(k_glue_atomic_map_with_vmalloc_segment_destroyed_under_spinlock)
{
	struct anchormap *map = am_test_alloc(sizeof(*map));
	long live = anchormap_debug_allocs_live();
	unsigned long flags;
	bool vmalloced;
	u64 key;

	ASSERT_NOT_NULL(map);
	if (kt_map_init(map, "test_atomic_vmalloc", sizeof(u64), ANCHORMAP_F_ATOMIC,
			KMALLOC_MAX_SIZE / 16)) {
		am_test_free(map);
		ASSERT_TRUE(false);
	}
	vmalloced = is_vmalloc_addr((void *)map->arena_bias[0]);	/* arena 0: its base */
	for (key = 0; key < 1000; key++)
		EXPECT_EQ(anchormap_insert(map, &key, &key), 1);
	spin_lock_irqsave(&kt6_destroy_lock, flags);
	anchormap_destroy(map);
	spin_unlock_irqrestore(&kt6_destroy_lock, flags);
	am_test_free(map);
	EXPECT_TRUE(vmalloced);
	EXPECT_EQ(anchormap_debug_allocs_live(), live);
}

/*
 * Atomic writes under a caller's raw_spinlock_t (interrupts off): legal when
 * the room was reserved.  Stripes that were spinlock_t would be "Invalid
 * wait context" (CONFIG_PROVE_RAW_LOCK_NESTING) and sleep on PREEMPT_RT.
 */
static DEFINE_RAW_SPINLOCK(kt6_raw_lock);

TEST(k_glue_atomic_map_written_under_a_raw_spinlock_after_reserve)
{
	struct anchormap *map = am_test_alloc(sizeof(*map));
	struct anchormap_stats before, after;
	unsigned long flags;
	int bad = 0;
	u64 key;

	ASSERT_NOT_NULL(map);
	if (kt_map_init(map, "test_atomic_raw", sizeof(u64), ANCHORMAP_F_ATOMIC, 0)) {
		am_test_free(map);
		ASSERT_TRUE(false);
	}
	EXPECT_EQ(anchormap_reserve(map, 2000), 0);
	anchormap_stats(map, &before);
	raw_spin_lock_irqsave(&kt6_raw_lock, flags);
	for (key = 0; key < 2000; key++)
		bad += anchormap_insert(map, &key, &key) != 1;
	for (key = 0; key < 2000; key += 2)
		bad += anchormap_remove(map, &key) != 1;
	raw_spin_unlock_irqrestore(&kt6_raw_lock, flags);
	anchormap_stats(map, &after);
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(anchormap_len(map), 1000);
	EXPECT_EQ(after.segments, before.segments);
	anchormap_destroy(map);
	am_test_free(map);
}

/*
 * The growth contract in hardirq, the same on every kernel: an insert into
 * a full atomic map from a hard hrtimer does not allocate (the allocator
 * must not run there on PREEMPT_RT) and fails with -ENOMEM, the map
 * unchanged; the same insert from process context then grows the map.
 */
struct kt6_hard {
	struct anchormap map;
	struct hrtimer hrtimer;
	u64 key;
	int ret;
	bool in_hardirq;
	struct completion done;
};

static enum hrtimer_restart kt6_hard_fn(struct hrtimer *hr)
{
	struct kt6_hard *t = container_of(hr, struct kt6_hard, hrtimer);

	t->in_hardirq = in_hardirq();
	t->ret = anchormap_insert(&t->map, &t->key, &t->key);
	complete(&t->done);
	return HRTIMER_NORESTART;
}

TEST(k_atomic_map_growth_in_hardirq_fails_with_enomem_unless_reserved)
{
	struct kt6_hard *t = am_test_alloc(sizeof(*t));
	size_t cap, len;
	u64 key;

	ASSERT_NOT_NULL(t);
	if (kt_map_init(&t->map, "test_atomic_hardirq_grow", sizeof(u64), ANCHORMAP_F_ATOMIC, 0)) {
		am_test_free(t);
		ASSERT_TRUE(false);
	}
	cap = anchormap_capacity(&t->map);
	for (key = 0; key < cap; key++)
		EXPECT_EQ(anchormap_insert(&t->map, &key, &key), 1);
	len = anchormap_len(&t->map);
	EXPECT_EQ(len, cap);
	EXPECT_EQ(anchormap_capacity(&t->map), cap);	/* full: the next insert grows */
	t->key = cap;
	t->ret = 99;
	init_completion(&t->done);
	hrtimer_init(&t->hrtimer, CLOCK_MONOTONIC, HRTIMER_MODE_REL_HARD);
	t->hrtimer.function = kt6_hard_fn;
	hrtimer_start(&t->hrtimer, ns_to_ktime(100 * NSEC_PER_USEC), HRTIMER_MODE_REL_HARD);
	EXPECT_GT(wait_for_completion_timeout(&t->done, 10 * HZ), 0);
	hrtimer_cancel(&t->hrtimer);
	EXPECT_TRUE(t->in_hardirq);
	EXPECT_EQ(t->ret, -ENOMEM);
	EXPECT_EQ(anchormap_len(&t->map), len);
	EXPECT_FALSE(anchormap_contains_key(&t->map, &t->key));
	/* from process context the same insert grows the map */
	EXPECT_EQ(anchormap_insert(&t->map, &t->key, &t->key), 1);
	EXPECT_GT(anchormap_capacity(&t->map), cap);
	anchormap_destroy(&t->map);
	am_test_free(t);
}

/*
 * An atomic map's _with init callback inserting into a second atomic map
 * (allowed: it does not touch its own map): the two maps' stripes are
 * different lockdep classes, so lockdep sees no recursive locking.
 */
struct kt6_nested {
	struct anchormap outer, inner;
	int inner_errors;
};

static void kt6_nested_init(void *value, const void *key, void *arg)
{
	struct kt6_nested *t = arg;
	u64 k = *(const u64 *)key;

	if (anchormap_insert(&t->inner, &k, &k) != 1)
		t->inner_errors++;
	*(u64 *)value = k + 1;
}

TEST(k_atomic_map_init_callback_inserts_into_a_second_atomic_map)
{
	struct kt6_nested *t = am_test_alloc(sizeof(*t));
	const u64 *v;
	int bad = 0;
	u64 key;

	ASSERT_NOT_NULL(t);
	t->inner_errors = 0;
	if (kt_map_init(&t->outer, "test_nested_outer", sizeof(u64), ANCHORMAP_F_ATOMIC, 0)) {
		am_test_free(t);
		ASSERT_TRUE(false);
	}
	/*
	 * The callback runs under the outer map's raw stripe lock: the inner
	 * map must not grow there (PREEMPT_RT: -ENOMEM; non-RT: an
	 * allocation under a raw lock, "Invalid wait context"), so its room
	 * is made beforehand.
	 */
	if (kt_map_init(&t->inner, "test_nested_inner", sizeof(u64), ANCHORMAP_F_ATOMIC, 3000)) {
		anchormap_destroy(&t->outer);
		am_test_free(t);
		ASSERT_TRUE(false);
	}
	/* enough keys that the outer map grows (with no lock held) */
	for (key = 0; key < 3000; key++) {
		v = anchormap_get_or_insert_with(&t->outer, &key, kt6_nested_init, t);
		bad += IS_ERR_OR_NULL(v) || *v != key + 1;
	}
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(t->inner_errors, 0);
	EXPECT_EQ(anchormap_len(&t->inner), 3000);
	EXPECT_EQ(anchormap_len(&t->outer), 3000);
	anchormap_destroy(&t->inner);
	anchormap_destroy(&t->outer);
	am_test_free(t);
}

/*
 * anchormap_get_fast() compiled into a client built against another
 * ANCHORMAP_ABI_VERSION (test_abi_client.c) must not use its inline path
 * on this library's maps, and still answers right (through the exported
 * lookup); this file's own inline path is used.
 */
static const struct anchormap_params kt_abi_params = {
	.key_size = sizeof(u64), .value_size = sizeof(u64),
};

TEST(k_get_fast_of_a_client_built_for_another_abi_takes_the_exported_path)
{
	struct anchormap map;
	int bad = 0;
	u64 key;

	ASSERT_EQ(kt_map_init(&map, "test_abi", sizeof(u64), 0, 0), 0);
	for (key = 0; key < 2000; key += 2)
		EXPECT_EQ(anchormap_insert(&map, &key, &key), 1);
	EXPECT_TRUE(__anchormap_fast_ok(&map, &key, &kt_abi_params));
	EXPECT_FALSE(kt_abi_other_inline_ok(&map));
	for (key = 0; key < 2000; key++) {
		const void *want = anchormap_get(&map, &key);

		bad += kt_abi_other_get_fast(&map, key) != want;
		bad += anchormap_get_fast(&map, &key, kt_abi_params) != want;
		bad += !want != (bool)(key & 1);
	}
	EXPECT_EQ(bad, 0);
	anchormap_destroy(&map);
}

/* ==== 7. /proc/anchormap read while maps come, change shape and go ==== */

#define KT7_FREED	"freed_name_read"	/* as long as the churners' names */

struct kt7 {
	atomic_t churners_left;
	long reads, lines, cycles;
};

static void kt7_reader(struct kt_worker *w, struct kt7 *t)
{
	static const char head[] = "name ";
	char *buf = kmalloc(PAGE_SIZE, GFP_KERNEL);
	struct file *f;
	loff_t pos;
	ssize_t got;
	bool first;

	if (!buf) {
		w->errors++;
		return;
	}
	while (atomic_read(&t->churners_left)) {
		f = filp_open("/proc/anchormap", O_RDONLY, 0);
		if (IS_ERR(f)) {
			w->errors++;
			break;
		}
		pos = 0;
		first = true;
		while ((got = kernel_read(f, buf, PAGE_SIZE - 1, &pos)) > 0) {
			buf[got] = 0;
			if (first && strncmp(buf, head, sizeof(head) - 1))
				w->errors++;
			if (strnstr(buf, KT7_FREED, got))	/* a name read after its map */
				w->errors++;
			first = false;
			t->lines += strnlen(buf, got) ? 1 : 0;
		}
		if (got < 0)
			w->errors++;
		filp_close(f, NULL);
		t->reads++;
		cond_resched();
	}
	kfree(buf);
}

/*
 * A map's name need only outlive the map: each lifetime's name is its own
 * allocation, overwritten with KT7_FREED and freed once the map is
 * destroyed, so a /proc reader still printing it shows (or, under KASAN,
 * reports) the use after free.
 */
static void kt7_churner(struct kt_worker *w, struct kt7 *t)
{
	struct anchormap *map = kmalloc(sizeof(*map), GFP_KERNEL);
	char *name;
	long cycle;
	u64 key;

	if (!map) {
		w->errors++;
		goto out;
	}
	for (cycle = 0; kt_time_left(w->run) && cycle < 2000; cycle++) {
		name = kstrdup("test_proc_churn", GFP_KERNEL);
		if (!name || kt_map_init(map, name, sizeof(u64), 0, cycle % 3 ? 0 : 300)) {
			kfree(name);
			w->errors++;
			break;
		}
		for (key = 0; key < 300; key++)
			w->errors += anchormap_insert(map, &key, &key) != 1;
		for (key = 0; key < 300; key += 3)
			w->errors += anchormap_remove(map, &key) != 1;
		/* exclusive reshaping: the map is ours, /proc is not a user */
		if (cycle % 2)
			w->errors += anchormap_shrink_to_fit(map) != 0;
		else
			anchormap_clear(map);
		anchormap_destroy(map);
		strscpy(name, KT7_FREED, strlen(name) + 1);
		kfree(name);
		w->ops++;
		cond_resched();
	}
	kfree(map);
out:
	atomic_dec(&t->churners_left);
}

static void kt7_fn(struct kt_worker *w)
{
	struct kt7 *t = w->run->priv;

	if (w->id == 0)
		kt7_reader(w, t);
	else
		kt7_churner(w, t);
}

TEST(k_proc_reads_while_maps_come_reshape_and_go)
{
	struct kt_run run = { };
	struct kt7 *t = am_test_alloc(sizeof(*t));
	int n = kt_nworkers();
	long errors;

	ASSERT_NOT_NULL(t);
	atomic_set(&t->churners_left, n - 1);
	errors = kt_run_workers(&run, n, kt7_fn, t);
	am_test_log("%ld reads of /proc/anchormap during %ld map lifetimes",
		    t->reads, kt_ops(&run));
	EXPECT_EQ(errors, 0);
	EXPECT_GT(t->reads, 0);
	kt_run_free(&run);
	am_test_free(t);
}

/*
 * The reader takes a map's line under the registry lock and prints it after
 * dropping it: stopped exactly there, the test destroys the map and
 * overwrites its name (a name need only outlive its map).  The line printed
 * must still show the name the map had, never the bytes written after.
 */
static struct anchormap *kt7_named_map;
static char *kt7_named_name;

static void kt7_named_hook(const struct anchormap *map, enum anchormap_test_point point)
{
	if (point != ANCHORMAP_TP_PROC_LINE || map != kt7_named_map)
		return;
	kt7_named_map = NULL;
	anchormap_destroy((struct anchormap *)map);
	strscpy(kt7_named_name, KT7_FREED, strlen(kt7_named_name) + 1);
}

TEST(k_proc_line_keeps_name_of_map_destroyed_meanwhile)
{
	struct anchormap *map = am_test_alloc(sizeof(*map));
	char *buf = kzalloc(4 * PAGE_SIZE, GFP_KERNEL);
	char *name = kstrdup("test_proc_gone_1", GFP_KERNEL);
	size_t len = 0;
	struct file *f;
	loff_t pos = 0;
	ssize_t got;

	if (!map || !buf || !name || kt_map_init(map, name, sizeof(u64), 0, 0)) {
		EXPECT_TRUE(false);
		goto out;
	}
	kt7_named_map = map;
	kt7_named_name = name;
	anchormap_test_hook = kt7_named_hook;
	f = filp_open("/proc/anchormap", O_RDONLY, 0);
	if (!IS_ERR(f)) {
		while (len < 4 * PAGE_SIZE - 1 &&
		       (got = kernel_read(f, buf + len, 4 * PAGE_SIZE - 1 - len, &pos)) > 0)
			len += got;
		filp_close(f, NULL);
	}
	anchormap_test_hook = NULL;
	EXPECT_FALSE(IS_ERR(f));
	EXPECT_NULL(kt7_named_map);		/* the hook ran: the map was destroyed midway */
	EXPECT_NOT_NULL(strnstr(buf, "test_proc_gone_1", len));
	EXPECT_NULL(strnstr(buf, KT7_FREED, len));
	if (kt7_named_map)
		anchormap_destroy(map);
out:
	kfree(name);
	kfree(buf);
	am_test_free(map);
}

/* ==== 8. snapshots through a kernel buffer (am_snapbuf.h's) ==== */

TEST(k_snapshot_save_load_in_kernel_memory)
{
	struct am_t_snap *b = am_t_snap_new();
	struct anchormap *a = am_test_alloc(sizeof(*a));
	struct anchormap *c = am_test_alloc(sizeof(*c));
	size_t full;
	u64 key;
	int ret;

	if (!a || !c || !b)
		goto out_free;
	if (kt_map_init(a, "test_snapshot", sizeof(struct kt_val), 0, 0)) {
		EXPECT_TRUE(false);
		goto out_free;
	}
	for (key = 0; key < 5000; key++)
		EXPECT_EQ(kt_insert_val(a, key), 1);
	for (key = 0; key < 5000; key += 7)
		EXPECT_EQ(anchormap_remove(a, &key), 1);
	EXPECT_EQ(anchormap_save(a, am_t_snap_write, b), 0);
	full = b->len;
	EXPECT_GT(full, 0);

	/* the whole snapshot: the same map */
	if (!kt_map_init(c, "test_snapshot_copy", sizeof(struct kt_val), 0, 0)) {
		am_t_snap_rewind(b, full, AM_T_SNAP_MAX);
		EXPECT_EQ(anchormap_load(c, am_t_snap_read, b), 0);
		EXPECT_TRUE(anchormap_equal(a, c));
		EXPECT_EQ(anchormap_len(c), anchormap_len(a));
		for (key = 1; key < 5000; key += 7)
			EXPECT_TRUE(kt_lookup_ok(c, key, true));
		anchormap_destroy(c);
	}
	/* cut short: refused, and the map is left empty */
	if (!kt_map_init(c, "test_snapshot_copy", sizeof(struct kt_val), 0, 0)) {
		am_t_snap_rewind(b, full / 2, AM_T_SNAP_MAX);
		ret = anchormap_load(c, am_t_snap_read, b);
		EXPECT_TRUE(ret == -ENODATA || ret == -EBADMSG);
		EXPECT_EQ(anchormap_len(c), 0);
		anchormap_destroy(c);
	}
	/* one byte changed in the middle: refused, and the map is left empty */
	if (!kt_map_init(c, "test_snapshot_copy", sizeof(struct kt_val), 0, 0)) {
		am_t_snap_rewind(b, full, AM_T_SNAP_MAX);
		b->buf[full / 2] ^= 0x20;
		ret = anchormap_load(c, am_t_snap_read, b);
		EXPECT_EQ(ret, -EBADMSG);
		EXPECT_EQ(anchormap_len(c), 0);
		anchormap_destroy(c);
	}
	anchormap_destroy(a);
out_free:
	EXPECT_TRUE(a && c && b);
	am_t_snap_del(b);
	am_test_free(c);
	am_test_free(a);
}

static const struct am_test_case kt_kernel_cases[] = {
	AM_TEST_ENTRY(k_glue_failure_injection_and_live_count)
	AM_TEST_ENTRY(k_glue_value_alignment_64)
	AM_TEST_ENTRY(k_glue_atomic_map_lives_under_a_spinlock)
	AM_TEST_ENTRY(k_glue_remove_during_rebuild_never_sleeps)
	AM_TEST_ENTRY(k_glue_replaced_indexes_freed_after_grace_period)
	AM_TEST_ENTRY(k_glue_atomic_map_with_vmalloc_segment_destroyed_under_spinlock)
	AM_TEST_ENTRY(k_glue_atomic_map_written_under_a_raw_spinlock_after_reserve)
	AM_TEST_ENTRY(k_atomic_map_growth_in_hardirq_fails_with_enomem_unless_reserved)
	AM_TEST_ENTRY(k_atomic_map_init_callback_inserts_into_a_second_atomic_map)
	AM_TEST_ENTRY(k_get_fast_of_a_client_built_for_another_abi_takes_the_exported_path)
	AM_TEST_ENTRY(k_snapshot_save_load_in_kernel_memory)
	AM_TEST_ENTRY(k_readers_keep_pointers_while_writers_grow_and_remove)
	AM_TEST_ENTRY(k_racing_inserts_of_the_same_keys_have_one_winner)
	AM_TEST_ENTRY(k_lookups_from_softirq_and_hardirq_during_writes)
	AM_TEST_ENTRY(k_atomic_map_inserts_from_timer_and_hrtimer_after_reserve)
	AM_TEST_ENTRY(k_iteration_during_writes_sees_no_key_twice)
	AM_TEST_ENTRY(k_proc_reads_while_maps_come_reshape_and_go)
	AM_TEST_ENTRY(k_proc_line_keeps_name_of_map_destroyed_meanwhile)
};

/* ---- maps kept while loaded, for /proc/anchormap ---- */

static struct anchormap kt_keep_map;
static struct anchormap kt_keep_atomic;
static bool kt_keep_ok, kt_keep_atomic_ok;

static void kt_keep_maps(void)
{
	u64 key;

	kt_keep_ok = !kt_map_init(&kt_keep_map, "test_anchormap_kept", sizeof(struct kt_val), 0, 0);
	for (key = 0; kt_keep_ok && key < 1000; key++)
		kt_insert_val(&kt_keep_map, key);
	for (key = 0; kt_keep_ok && key < 1000; key += 10)
		anchormap_remove(&kt_keep_map, &key);
	kt_keep_atomic_ok = !kt_map_init(&kt_keep_atomic, "test_anchormap_kept_atomic",
					 sizeof(u64), ANCHORMAP_F_ATOMIC, 100);
}

static int __init test_anchormap_init(void)
{
	int ncommon = am_test_suites_count(am_common_suites, ARRAY_SIZE(am_common_suites));
	int nkernel = ARRAY_SIZE(kt_kernel_cases);
	int passed = 0, failed = 0, skipped = 0;
	unsigned long start = jiffies;
	unsigned int r;

	am_test_out("TAP version 13");
	rounds = clamp(rounds, 1U, 100U);
	am_test_out("1..%d", ncommon + nkernel * (int)rounds);
	am_test_log("anchormap selftests on %u online CPUs, kernel tests %u time(s)",
		    num_online_cpus(), rounds);
	am_test_run_suites(am_common_suites, ARRAY_SIZE(am_common_suites), 1,
			   &passed, &failed, &skipped);
	for (r = 0; r < rounds; r++)
		am_test_run(kt_kernel_cases, nkernel, ncommon + 1 + nkernel * r,
			    &passed, &failed, &skipped);

	am_test_log("took %u ms", jiffies_to_msecs(jiffies - start));
	am_test_out("# anchormap selftests: %d passed, %d failed, %d skipped",
		    passed, failed, skipped);
	am_test_out("%d passed, %d failed", passed, failed);
	if (failed)
		return -EINVAL;	/* a failed suite does not stay loaded */
	kt_keep_maps();
	return 0;
}

static void __exit test_anchormap_exit(void)
{
	if (kt_keep_ok)
		anchormap_destroy(&kt_keep_map);
	if (kt_keep_atomic_ok)
		anchormap_destroy(&kt_keep_atomic);
}

module_init(test_anchormap_init);
module_exit(test_anchormap_exit);

MODULE_LICENSE("Dual MIT/GPL");
ANCHORMAP_IMPORT_NS();
MODULE_DESCRIPTION("anchormap in-kernel selftests");
MODULE_AUTHOR("The anchormap authors");
