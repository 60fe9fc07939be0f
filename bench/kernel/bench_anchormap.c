// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * bench_anchormap.ko - anchormap against the kernel's rhashtable, same keys,
 * same boot (make bench-kernel runs it under QEMU; see bench/kernel/README.md).
 *
 * At load time, for @nkeys u64 keys with u64 values (bench_keys.h), it times
 * with ktime_get_ns() around whole loops, @reps times, alternating which map
 * goes first:
 *
 *   insert   nkeys inserts into a fresh map, pre-sized on both sides as far
 *            as the API allows (anchormap capacity = nkeys; rhashtable
 *            nelem_hint = min(nkeys, 65535), the field is a u16);
 *   hit      nkeys lookups of present keys in shuffled order;
 *   miss     nkeys lookups of absent keys;
 *   remove   nkeys removals in another shuffled order;
 *   conc     one reader kthread bound to each online CPU doing lookups of
 *            present keys while one unbound writer kthread inserts and
 *            removes a disjoint set of nkeys/16 keys in rounds ("churn");
 *   conci    the same with a writer that only inserts fresh keys (up to
 *            nkeys/4) into room reserved at init ("insert").
 *
 * rhashtable uses its inline fast paths with one static const
 * rhashtable_params (default jhash2 and compare), objects from one array:
 * rhashtable_insert_fast, rhashtable_remove_fast, and lookups both as
 * rhashtable_lookup_fast (an RCU read section per lookup) and as
 * rhashtable_lookup under one rcu_read_lock() per 256 lookups.  Before
 * lookups and removals its deferred resize work is flushed.  anchormap
 * looks up with anchormap_get_fast() (header-inline, as
 * rhashtable_lookup_fast is) and uses the exported anchormap_insert and
 * anchormap_remove.  Every loop reads the value found, and every result
 * is checked: a wrong one prints an ERROR line and makes the load fail.
 *
 * Output, one line each (times in picoseconds per operation):
 *   bench_anchormap: config nkeys=N reps=R cpus=C wkeys=W ...
 *   bench_anchormap: result op=OP am_med=.. am_min=.. am_max=.. rht_med=.. rht_min=.. rht_max=..
 *                    speedup_med=.. speedup_min=.. speedup_max=..   (x1000, see report())
 *   bench_anchormap: done errors=0
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/completion.h>
#include <linux/cpumask.h>
#include <linux/kernel.h>
#include <linux/kthread.h>
#include <linux/ktime.h>
#include <linux/minmax.h>
#include <linux/module.h>
#include <linux/rcupdate.h>
#include <linux/rhashtable.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>

#include "anchormap.h"
#include "bench_keys.h"

static unsigned int nkeys = 200000;
module_param(nkeys, uint, 0444);
MODULE_PARM_DESC(nkeys, "keys in each map (default 200000)");

static unsigned int reps = 7;
module_param(reps, uint, 0444);
MODULE_PARM_DESC(reps, "repetitions of the single-thread loops (default 7, max 15)");

static unsigned int conc_reps = 5;
module_param(conc_reps, uint, 0444);
MODULE_PARM_DESC(conc_reps, "repetitions of the concurrent phase (default 5, max 15)");

static unsigned int conc_passes = 1;
module_param(conc_passes, uint, 0444);
MODULE_PARM_DESC(conc_passes, "passes over the keys by each concurrent reader (default 1)");

#define MAX_REPS	15
#define RCU_BATCH	256

struct bench_obj {
	u64 key;
	u64 value;
	struct rhash_head node;
};

static const struct rhashtable_params bench_rht_params = {
	.key_len	= sizeof(u64),
	.key_offset	= offsetof(struct bench_obj, key),
	.head_offset	= offsetof(struct bench_obj, node),
};

static const struct anchormap_params bench_am_params = {
	.key_size	= sizeof(u64),
	.value_size	= sizeof(u64),
	.name		= "bench_anchormap",
};

/*
 * objs[0..nkeys) present keys, objs[nkeys..nkeys+pool) the writer's: the
 * churning writer cycles through the first wkeys of them, the inserting
 * one inserts all pool of them once.
 */
static struct bench_obj *objs;
static u64 *hit_keys, *miss_keys;	/* lookup order */
static u32 *rm_order;			/* removal order */
static u32 wkeys, pool;
static int errors;
static u64 sink;			/* values read, so no loop is dead code */

#define bench_err(fmt, ...) do {					\
	errors++;							\
	pr_err("ERROR: " fmt "\n", ##__VA_ARGS__);			\
} while (0)

enum { OP_INSERT, OP_HIT, OP_HIT_RCU, OP_MISS, OP_MISS_RCU, OP_REMOVE,
       OP_CONC_CPU, OP_CONC_WALL, OP_CONC_WRITER,
       OP_CONCI_CPU, OP_CONCI_WALL, OP_CONCI_WRITER, NOPS };
static const char *const op_name[NOPS] = {
	"insert", "hit", "hit_rcu256", "miss", "miss_rcu256", "remove",
	"conc_read_cpu", "conc_read_wall", "conc_writer",
	"conci_read_cpu", "conci_read_wall", "conci_writer",
};
enum { AM, RHT };
/* picoseconds per operation, [op][side][rep] */
static u64 res[NOPS][2][MAX_REPS];

static struct anchormap am;
static struct rhashtable ht;

/* ---- the timed loops ---- */

static noinline u32 am_insert_loop(struct anchormap *m, u32 from, u32 n)
{
	u32 i, ok = 0;

	for (i = from; i < from + n; i++)
		ok += anchormap_insert(m, &objs[i].key, &objs[i].value) == 1;
	return ok;
}

static noinline u32 rht_insert_loop(struct rhashtable *t, u32 from, u32 n, u32 *busy)
{
	u32 i, ok = 0;
	int err;

	for (i = from; i < from + n; i++) {
		/* as lib/test_rhashtable.c: -EBUSY means retry after a resize */
		while ((err = rhashtable_insert_fast(t, &objs[i].node, bench_rht_params)) == -EBUSY) {
			(*busy)++;
			cond_resched();
		}
		ok += err == 0;
	}
	return ok;
}

static noinline u32 am_lookup_loop(const struct anchormap *m, const u64 *keys, u32 n)
{
	u32 i, found = 0;
	u64 s = 0;

	for (i = 0; i < n; i++) {
		const u64 *v = anchormap_get_fast(m, &keys[i], bench_am_params);

		if (v) {
			found++;
			s += *v;
		}
	}
	WRITE_ONCE(sink, sink + s);
	return found;
}

/* rhashtable_lookup_fast: one RCU read section per lookup */
static noinline u32 rht_lookup_loop(struct rhashtable *t, const u64 *keys, u32 n)
{
	u32 i, found = 0;
	u64 s = 0;

	for (i = 0; i < n; i++) {
		const struct bench_obj *o = rhashtable_lookup_fast(t, &keys[i], bench_rht_params);

		if (o) {
			found++;
			s += o->value;	/* objects outlive the table here */
		}
	}
	WRITE_ONCE(sink, sink + s);
	return found;
}

/* rhashtable_lookup with one RCU read section per RCU_BATCH lookups */
static noinline u32 rht_lookup_rcu_loop(struct rhashtable *t, const u64 *keys, u32 n)
{
	u32 i, j, found = 0;
	u64 s = 0;

	for (i = 0; i < n; i += RCU_BATCH) {
		u32 end = min(n, i + RCU_BATCH);

		rcu_read_lock();
		for (j = i; j < end; j++) {
			const struct bench_obj *o = rhashtable_lookup(t, &keys[j], bench_rht_params);

			if (o) {
				found++;
				s += o->value;
			}
		}
		rcu_read_unlock();
	}
	WRITE_ONCE(sink, sink + s);
	return found;
}

static noinline u32 am_remove_loop(struct anchormap *m, const u32 *order, u32 n)
{
	u32 i, ok = 0;

	for (i = 0; i < n; i++)
		ok += anchormap_remove(m, &objs[order[i]].key) == 1;
	return ok;
}

static noinline u32 rht_remove_loop(struct rhashtable *t, const u32 *order, u32 n)
{
	u32 i, ok = 0;

	for (i = 0; i < n; i++)
		ok += rhashtable_remove_fast(t, &objs[order[i]].node, bench_rht_params) == 0;
	return ok;
}

/* ---- helpers ---- */

static u64 ps_per_op(u64 ns, u64 ops)
{
	return ops ? div64_u64(ns * 1000, ops) : 0;
}

static int rht_make(struct rhashtable *t)
{
	struct rhashtable_params p = bench_rht_params;

	p.nelem_hint = min_t(u32, nkeys, U16_MAX);
	return rhashtable_init(t, &p);
}

/* let the deferred resize finish: lookups and removals see the final table */
static void rht_settle(struct rhashtable *t)
{
	int i;

	for (i = 0; i < 8; i++)
		flush_work(&t->run_work);
}

static unsigned int rht_buckets(struct rhashtable *t)
{
	return rcu_dereference_raw(t->tbl)->size;
}

static void check(const char *what, int side, u32 got, u32 want)
{
	if (got != want)
		bench_err("%s %s: %u of %u", side == AM ? "anchormap" : "rhashtable",
			  what, got, want);
}

/* ---- single-thread phase ---- */

static void run_single(unsigned int r)
{
	u32 busy = 0;
	u64 t;
	int k, side, err;

	err = anchormap_init(&am, &bench_am_params, nkeys);
	if (err) {
		bench_err("anchormap_init: %d", err);
		return;
	}
	err = rht_make(&ht);
	if (err) {
		bench_err("rhashtable_init: %d", err);
		anchormap_destroy(&am);
		return;
	}

	for (k = 0; k < 2; k++) {
		side = k ^ (r & 1);
		t = ktime_get_ns();
		if (side == AM)
			check("insert", side, am_insert_loop(&am, 0, nkeys), nkeys);
		else
			check("insert", side, rht_insert_loop(&ht, 0, nkeys, &busy), nkeys);
		res[OP_INSERT][side][r] = ps_per_op(ktime_get_ns() - t, nkeys);
		cond_resched();
	}
	rht_settle(&ht);
	if (r == 0)
		pr_info("shape nkeys=%u rht_buckets=%u rht_busy=%u am_capacity=%zu\n",
			nkeys, rht_buckets(&ht), busy, anchormap_capacity(&am));

	for (k = 0; k < 2; k++) {
		side = k ^ (r & 1);
		t = ktime_get_ns();
		check("hit", side, side == AM ? am_lookup_loop(&am, hit_keys, nkeys) :
					  rht_lookup_loop(&ht, hit_keys, nkeys), nkeys);
		res[OP_HIT][side][r] = ps_per_op(ktime_get_ns() - t, nkeys);
		cond_resched();
		t = ktime_get_ns();
		check("hit", side, side == AM ? am_lookup_loop(&am, hit_keys, nkeys) :
					  rht_lookup_rcu_loop(&ht, hit_keys, nkeys), nkeys);
		res[OP_HIT_RCU][side][r] = ps_per_op(ktime_get_ns() - t, nkeys);
		cond_resched();
	}
	for (k = 0; k < 2; k++) {
		side = k ^ (r & 1);
		t = ktime_get_ns();
		check("miss", side, side == AM ? am_lookup_loop(&am, miss_keys, nkeys) :
					   rht_lookup_loop(&ht, miss_keys, nkeys), 0);
		res[OP_MISS][side][r] = ps_per_op(ktime_get_ns() - t, nkeys);
		cond_resched();
		t = ktime_get_ns();
		check("miss", side, side == AM ? am_lookup_loop(&am, miss_keys, nkeys) :
					   rht_lookup_rcu_loop(&ht, miss_keys, nkeys), 0);
		res[OP_MISS_RCU][side][r] = ps_per_op(ktime_get_ns() - t, nkeys);
		cond_resched();
	}
	for (k = 0; k < 2; k++) {
		side = k ^ (r & 1);
		t = ktime_get_ns();
		check("remove", side, side == AM ? am_remove_loop(&am, rm_order, nkeys) :
					     rht_remove_loop(&ht, rm_order, nkeys), nkeys);
		res[OP_REMOVE][side][r] = ps_per_op(ktime_get_ns() - t, nkeys);
		cond_resched();
	}
	check("len after removing all", AM, anchormap_len(&am), 0);
	rhashtable_destroy(&ht);
	anchormap_destroy(&am);
}

/* ---- concurrent phase: a reader per CPU, one writer ---- */

enum { CHURN, INSERT_ONLY };

struct conc {
	int side;
	int mode;
	unsigned int nr;
	struct completion start;
	struct completion readers_done;
	struct completion writer_done;
	atomic_t readers_left;
	u64 *wall_ns, *cpu_ns;
	u32 *found;
	u64 writer_ops, writer_ns;
	u32 writer_bad;
};

struct reader_arg {
	struct conc *c;
	unsigned int idx;
};

static int conc_reader(void *data)
{
	struct reader_arg *a = data;
	struct conc *c = a->c;
	u32 n = nkeys, off = (u32)div_u64((u64)a->idx * n, c->nr);
	u64 t, cpu, s = 0;
	u32 p, i, j, found = 0;

	wait_for_completion(&c->start);
	cpu = current->se.sum_exec_runtime;
	t = ktime_get_ns();
	for (p = 0; p < conc_passes; p++) {
		for (i = 0; i < n; i++) {
			j = i + off < n ? i + off : i + off - n;
			if (c->side == AM) {
				const u64 *v = anchormap_get_fast(&am, &hit_keys[j], bench_am_params);

				if (v) {
					found++;
					s += *v;
				}
			} else {
				const struct bench_obj *o =
					rhashtable_lookup_fast(&ht, &hit_keys[j], bench_rht_params);

				if (o) {
					found++;
					s += o->value;
				}
			}
			/* let the writer in: the kernel preempts voluntarily */
			if ((i & 255) == 255)
				cond_resched();
		}
	}
	c->wall_ns[a->idx] = ktime_get_ns() - t;
	c->cpu_ns[a->idx] = current->se.sum_exec_runtime - cpu;
	c->found[a->idx] = found;
	WRITE_ONCE(sink, sink + s);
	if (atomic_dec_and_test(&c->readers_left))
		complete(&c->readers_done);
	return 0;
}

static int conc_writer(void *data)
{
	struct conc *c = data;
	u64 ops = 0, t;
	u32 i, bad = 0;
	int err;

	wait_for_completion(&c->start);
	t = ktime_get_ns();
	if (c->mode == INSERT_ONLY) {
		/* fresh keys into room reserved at init: no growth, no reuse */
		for (i = nkeys; i < nkeys + pool && atomic_read(&c->readers_left) > 0; i++) {
			if (c->side == AM) {
				bad += anchormap_insert(&am, &objs[i].key, &objs[i].value) != 1;
			} else {
				while ((err = rhashtable_insert_fast(&ht, &objs[i].node,
								     bench_rht_params)) == -EBUSY)
					cond_resched();
				bad += err != 0;
			}
			ops++;
			if ((i & 63) == 63)
				cond_resched();
		}
	}
	while (c->mode == CHURN && atomic_read(&c->readers_left) > 0) {
		for (i = nkeys; i < nkeys + wkeys; i++) {
			if (c->side == AM) {
				bad += anchormap_insert(&am, &objs[i].key, &objs[i].value) != 1;
			} else {
				while ((err = rhashtable_insert_fast(&ht, &objs[i].node,
								     bench_rht_params)) == -EBUSY)
					cond_resched();
				bad += err != 0;
			}
			if ((i & 63) == 63)
				cond_resched();
		}
		for (i = nkeys; i < nkeys + wkeys; i++) {
			if (c->side == AM)
				bad += anchormap_remove(&am, &objs[i].key) != 1;
			else
				bad += rhashtable_remove_fast(&ht, &objs[i].node,
							      bench_rht_params) != 0;
			if ((i & 63) == 63)
				cond_resched();
		}
		/* rhashtable: readers may still walk through the removed objects */
		if (c->side == RHT)
			synchronize_rcu();
		ops += 2 * wkeys;
	}
	c->writer_ns = ktime_get_ns() - t;
	c->writer_ops = ops;
	c->writer_bad = bad;
	kthread_complete_and_exit(&c->writer_done, 0);
}

static void run_conc_side(int side, int mode, unsigned int r)
{
	int o = mode == CHURN ? OP_CONC_CPU : OP_CONCI_CPU;	/* then WALL, WRITER */
	struct reader_arg *args;
	struct task_struct *tsk;
	struct conc c = { .side = side, .mode = mode };
	u64 wall = 0, cpu = 0, wall_max = 0;
	unsigned int cpu_id, i = 0;

	c.nr = num_online_cpus();
	init_completion(&c.start);
	init_completion(&c.readers_done);
	init_completion(&c.writer_done);
	atomic_set(&c.readers_left, c.nr);
	c.wall_ns = kcalloc(c.nr, sizeof(u64), GFP_KERNEL);
	c.cpu_ns = kcalloc(c.nr, sizeof(u64), GFP_KERNEL);
	c.found = kcalloc(c.nr, sizeof(u32), GFP_KERNEL);
	args = kcalloc(c.nr, sizeof(*args), GFP_KERNEL);
	if (!c.wall_ns || !c.cpu_ns || !c.found || !args) {
		bench_err("conc: out of memory");
		goto out;
	}

	tsk = kthread_run(conc_writer, &c, "bench_am_w");
	if (IS_ERR(tsk)) {
		bench_err("conc: writer: %ld", PTR_ERR(tsk));
		goto out;
	}
	for_each_online_cpu(cpu_id) {
		if (i == c.nr)
			break;
		args[i].c = &c;
		args[i].idx = i;
		tsk = kthread_create_on_cpu(conc_reader, &args[i], cpu_id, "bench_am_r/%u");
		if (IS_ERR(tsk)) {
			bench_err("conc: reader: %ld", PTR_ERR(tsk));
			/* count it as done so that the writer stops */
			if (atomic_dec_and_test(&c.readers_left))
				complete(&c.readers_done);
		} else {
			wake_up_process(tsk);
		}
		i++;
	}
	while (i < c.nr) {	/* a CPU went away meanwhile */
		if (atomic_dec_and_test(&c.readers_left))
			complete(&c.readers_done);
		i++;
	}
	complete_all(&c.start);
	wait_for_completion(&c.readers_done);
	wait_for_completion(&c.writer_done);

	for (i = 0; i < c.nr; i++) {
		if (!c.wall_ns[i])
			continue;
		check("concurrent hit", side, c.found[i], nkeys * conc_passes);
		wall += c.wall_ns[i];
		cpu += c.cpu_ns[i];
		wall_max = max(wall_max, c.wall_ns[i]);
	}
	if (c.writer_bad)
		bench_err("%s concurrent writer: %u failed operations",
			  side == AM ? "anchormap" : "rhashtable", c.writer_bad);
	/* means over the readers */
	res[o][side][r] = ps_per_op(cpu, (u64)nkeys * conc_passes * c.nr);
	res[o + 1][side][r] = ps_per_op(wall, (u64)nkeys * conc_passes * c.nr);
	res[o + 2][side][r] = ps_per_op(c.writer_ns, c.writer_ops);
	if (side == AM) {
		struct anchormap_stats st;

		anchormap_stats(&am, &st);
		pr_info("conc writer=%s rep=%u anchormap writer_ops=%llu segments=%zu deleted=%zu\n",
			mode == CHURN ? "churn" : "insert", r, c.writer_ops, st.segments, st.deleted);
	} else {
		pr_info("conc writer=%s rep=%u rhashtable writer_ops=%llu buckets=%u\n",
			mode == CHURN ? "churn" : "insert", r, c.writer_ops, rht_buckets(&ht));
	}
out:
	kfree(args);
	kfree(c.found);
	kfree(c.cpu_ns);
	kfree(c.wall_ns);
}

/*
 * CHURN: anchormap gets capacity for nkeys + wkeys, as a user would size
 * it; rounds of removals and re-inserts then make it grow a segment (removed
 * slots are not reused while the map is shared).  INSERT_ONLY: capacity for
 * nkeys + pool, every insert lands in reserved room.
 */
static void run_conc(int mode, unsigned int r)
{
	u32 busy = 0;
	int k, err;

	err = anchormap_init(&am, &bench_am_params, nkeys + (mode == CHURN ? wkeys : pool));
	if (err) {
		bench_err("anchormap_init: %d", err);
		return;
	}
	err = rht_make(&ht);
	if (err) {
		bench_err("rhashtable_init: %d", err);
		anchormap_destroy(&am);
		return;
	}
	check("insert", AM, am_insert_loop(&am, 0, nkeys), nkeys);
	check("insert", RHT, rht_insert_loop(&ht, 0, nkeys, &busy), nkeys);
	rht_settle(&ht);
	for (k = 0; k < 2; k++)
		run_conc_side(k ^ (r & 1), mode, r);
	rhashtable_destroy(&ht);
	anchormap_destroy(&am);
}

/* ---- report ---- */

static int cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

/*
 * Medians of each side, and the median of the per-repetition speed-ups
 * (rhashtable time / anchormap time, x1000): the two sides of one
 * repetition run back to back, so pairing them cancels much of the noise of
 * an emulated, shared machine.
 */
static void report(int op, unsigned int n)
{
	u64 s[2][MAX_REPS], ratio[MAX_REPS];
	unsigned int i;
	int side;

	for (side = 0; side < 2; side++) {
		memcpy(s[side], res[op][side], n * sizeof(u64));
		sort(s[side], n, sizeof(u64), cmp_u64, NULL);
	}
	for (i = 0; i < n; i++)
		ratio[i] = res[op][AM][i] ? div64_u64(res[op][RHT][i] * 1000, res[op][AM][i]) : 0;
	sort(ratio, n, sizeof(u64), cmp_u64, NULL);
	pr_info("result op=%s am_med=%llu am_min=%llu am_max=%llu rht_med=%llu rht_min=%llu rht_max=%llu speedup_med=%llu speedup_min=%llu speedup_max=%llu\n",
		op_name[op], s[AM][n / 2], s[AM][0], s[AM][n - 1],
		s[RHT][n / 2], s[RHT][0], s[RHT][n - 1],
		ratio[n / 2], ratio[0], ratio[n - 1]);
}

static void bench_free(void)
{
	vfree(rm_order);
	vfree(miss_keys);
	vfree(hit_keys);
	vfree(objs);
}

static int __init bench_init(void)
{
	u32 *perm;
	u32 i;
	u64 t0 = ktime_get_ns();
	int op;

	if (nkeys < 1024 || nkeys > 16u << 20 || !reps || reps > MAX_REPS ||
	    !conc_reps || conc_reps > MAX_REPS || !conc_passes) {
		pr_err("bad parameters\n");
		return -EINVAL;
	}
	wkeys = max(nkeys / 16, 64u);
	pool = max(nkeys / 4, wkeys);
	objs = vzalloc(array_size(nkeys + pool, sizeof(*objs)));
	hit_keys = vmalloc(array_size(nkeys, sizeof(u64)));
	miss_keys = vmalloc(array_size(nkeys, sizeof(u64)));
	rm_order = vmalloc(array_size(nkeys, sizeof(u32)));
	perm = vmalloc(array_size(nkeys, sizeof(u32)));
	if (!objs || !hit_keys || !miss_keys || !rm_order || !perm) {
		vfree(perm);
		bench_free();
		return -ENOMEM;
	}
	for (i = 0; i < nkeys + pool; i++) {
		objs[i].key = bk_key(i < nkeys ? i : (u64)nkeys + i);	/* skip the misses */
		objs[i].value = i;
	}
	bk_shuffle(perm, nkeys, BK_SEED_LOOKUP);
	for (i = 0; i < nkeys; i++) {
		hit_keys[i] = bk_key(perm[i]);
		miss_keys[i] = bk_key((u64)nkeys + perm[i]);
	}
	bk_shuffle(rm_order, nkeys, BK_SEED_REMOVE);
	vfree(perm);

	pr_info("config nkeys=%u reps=%u conc_reps=%u conc_passes=%u cpus=%u wkeys=%u pool=%u rcu_batch=%u\n",
		nkeys, reps, conc_reps, conc_passes, num_online_cpus(), wkeys, pool, RCU_BATCH);

	for (i = 0; i < reps; i++)
		run_single(i);
	for (op = OP_INSERT; op <= OP_REMOVE; op++)
		report(op, reps);
	for (i = 0; i < conc_reps; i++)
		run_conc(CHURN, i);
	for (i = 0; i < conc_reps; i++)
		run_conc(INSERT_ONLY, i);
	for (op = OP_CONC_CPU; op < NOPS; op++)
		report(op, conc_reps);

	bench_free();
	pr_info("done errors=%d seconds=%llu sink=%llu\n", errors,
		div_u64(ktime_get_ns() - t0, NSEC_PER_SEC), sink);
	return errors ? -EIO : 0;
}

static void __exit bench_exit(void)
{
}

module_init(bench_init);
module_exit(bench_exit);
MODULE_DESCRIPTION("anchormap against rhashtable: lookups, inserts, removes, concurrent reads");
MODULE_LICENSE("Dual MIT/GPL");
ANCHORMAP_IMPORT_NS();
