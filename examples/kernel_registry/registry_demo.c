// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * registry_demo.ko - a registry of objects keyed by a u64 id, on anchormap
 *
 * The objects live inside the map: a lookup returns a plain pointer to the
 * object, and that pointer stays valid while the map grows and while other
 * objects (or this one) are removed, until the map is destroyed.  So the
 * readers here need no lock, no RCU read section and no reference count:
 *
 *  - at load, 100000 objects are registered;
 *  - one reader kthread per online CPU looks objects up, holds the pointers
 *    across an msleep() and then checks that every held object is intact;
 *  - a writer kthread keeps registering new objects (the map grows) and
 *    unregistering old ones (their bytes stay readable for the holders);
 *  - at unload the threads stop, the totals are printed, and the map is
 *    destroyed, releasing every object still owned through @release.
 *
 * The map shows in /proc/anchormap as "registry_demo" while loaded.
 *
 * This module includes "anchormap.h" and kernel headers only: it is the
 * proof that a client needs nothing else.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/cpumask.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/random.h>
#include <linux/slab.h>

#include "anchormap.h"

#define DEMO_INITIAL	100000
#define DEMO_HELD	16	/* pointers a reader holds across its sleep */
#define DEMO_BATCH	500	/* objects the writer adds per round... */
#define DEMO_DROP	250	/* ...and removes */

/* An object of the registry: stored in the map, never moved. */
struct demo_obj {
	u64 id;
	u64 born_ns;
	char name[24];
	u32 generation;
	u32 check;		/* over the fields above */
};

static struct anchormap demo_map;
static struct task_struct *demo_writer;
static struct task_struct **demo_readers;
static int demo_nreaders;
static atomic64_t demo_next_id = ATOMIC64_INIT(0);
static const struct demo_obj *demo_first;	/* held from load to unload */
#define DEMO_FIRST_ID	4242

static atomic64_t st_lookups, st_misses, st_held_checks, st_bad, st_added, st_removed;
static atomic64_t st_released;

static u32 demo_check(const struct demo_obj *o)
{
	u32 h = 2166136261u;
	const u8 *p = (const u8 *)o;
	size_t i;

	for (i = 0; i < offsetof(struct demo_obj, check); i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static bool demo_intact(const struct demo_obj *o, u64 id)
{
	return o->id == id && o->check == demo_check(o);
}

/* Builds the object in place, under the stripe lock, when @id is new. */
static void demo_obj_init(void *value, const void *key, void *arg)
{
	struct demo_obj *o = value;

	o->id = *(const u64 *)key;
	o->born_ns = ktime_get_ns();
	snprintf(o->name, sizeof(o->name), "object-%llu", o->id);
	o->generation = (u32)(uintptr_t)arg;
	o->check = demo_check(o);
}

static void demo_release(void *key, void *value, void *priv)
{
	atomic64_inc(&st_released);
}

static int demo_register(u64 id, u32 generation)
{
	const void *o = anchormap_get_or_insert_with(&demo_map, &id, demo_obj_init,
						     (void *)(uintptr_t)generation);

	return IS_ERR(o) ? (int)PTR_ERR(o) : 0;
}

static int demo_reader_fn(void *arg)
{
	const struct demo_obj *held[DEMO_HELD];
	u64 held_id[DEMO_HELD];
	int n, i;

	while (!kthread_should_stop()) {
		u64 span = atomic64_read(&demo_next_id);

		/* look up a few objects and keep the pointers: no lock taken */
		for (n = 0, i = 0; i < DEMO_HELD; i++) {
			u64 id = get_random_u32() % span;
			const struct demo_obj *o = anchormap_get(&demo_map, &id);

			atomic64_inc(&st_lookups);
			if (!o) {
				atomic64_inc(&st_misses);	/* unregistered */
				continue;
			}
			held[n] = o;
			held_id[n++] = id;
		}
		/* meanwhile the writer grows the map and unregisters objects */
		msleep(20);
		for (i = 0; i < n; i++) {
			atomic64_inc(&st_held_checks);
			if (!demo_intact(held[i], held_id[i])) {
				atomic64_inc(&st_bad);
				pr_err("object %llu changed under a held pointer\n", held_id[i]);
			}
		}
	}
	return 0;
}

static int demo_writer_fn(void *arg)
{
	u32 generation = 1;
	int i;

	while (!kthread_should_stop()) {
		for (i = 0; i < DEMO_BATCH; i++) {
			if (demo_register(atomic64_read(&demo_next_id), generation))
				break;
			atomic64_inc(&demo_next_id);
			atomic64_inc(&st_added);
		}
		for (i = 0; i < DEMO_DROP; i++) {
			u64 id = get_random_u32() % atomic64_read(&demo_next_id);

			if (anchormap_remove(&demo_map, &id) == 1)
				atomic64_inc(&st_removed);
		}
		generation++;
		msleep(10);
	}
	return 0;
}

static void demo_show_stats(const char *when)
{
	struct anchormap_stats st;

	anchormap_stats(&demo_map, &st);
	pr_info("%s: %s len=%zu capacity=%zu segments=%zu slots=%zu deleted=%zu bytes=%zu longest_probe=%u contended=%llu\n",
		when, st.name, st.len, st.capacity, st.segments, st.slots, st.deleted,
		st.bytes, st.longest_probe, (unsigned long long)st.contended);
}

static void demo_stop_threads(void)
{
	int i;

	if (demo_writer)
		kthread_stop(demo_writer);
	for (i = 0; i < demo_nreaders; i++)
		if (demo_readers[i])
			kthread_stop(demo_readers[i]);
	kfree(demo_readers);
	demo_readers = NULL;
	demo_writer = NULL;
}

static int __init demo_init(void)
{
	struct anchormap_params p = {
		.key_size = sizeof(u64),
		.value_size = sizeof(struct demo_obj),
		.release = demo_release,
		.name = "registry_demo",
	};
	ktime_t t0;
	u64 id;
	int err, i;

	err = anchormap_init(&demo_map, &p, 0);
	if (err)
		return err;

	t0 = ktime_get();
	for (id = 0; id < DEMO_INITIAL; id++) {
		err = demo_register(id, 0);
		if (err)
			goto out_destroy;
	}
	atomic64_set(&demo_next_id, DEMO_INITIAL);
	pr_info("registered %d objects in %lld ms\n", DEMO_INITIAL,
		ktime_ms_delta(ktime_get(), t0));
	demo_show_stats("after registering");

	id = DEMO_FIRST_ID;
	demo_first = anchormap_get(&demo_map, &id);
	if (demo_first)
		pr_info("holding a pointer to \"%s\" until unload\n", demo_first->name);

	demo_nreaders = num_online_cpus();
	demo_readers = kcalloc(demo_nreaders, sizeof(*demo_readers), GFP_KERNEL);
	if (!demo_readers) {
		err = -ENOMEM;
		goto out_destroy;
	}
	for (i = 0; i < demo_nreaders; i++) {
		demo_readers[i] = kthread_run(demo_reader_fn, NULL, "demo_reader/%d", i);
		if (IS_ERR(demo_readers[i])) {
			err = PTR_ERR(demo_readers[i]);
			demo_readers[i] = NULL;
			goto out_stop;
		}
	}
	demo_writer = kthread_run(demo_writer_fn, NULL, "demo_writer");
	if (IS_ERR(demo_writer)) {
		err = PTR_ERR(demo_writer);
		demo_writer = NULL;
		goto out_stop;
	}
	pr_info("%d reader threads hold object pointers across msleep(20) while a writer adds %d and removes up to %d objects per round\n",
		demo_nreaders, DEMO_BATCH, DEMO_DROP);
	return 0;

out_stop:
	demo_stop_threads();
out_destroy:
	anchormap_destroy(&demo_map);
	return err;
}

static void __exit demo_exit(void)
{
	u64 id = DEMO_FIRST_ID;
	const struct demo_obj *now = anchormap_get(&demo_map, &id);
	s64 bad;

	demo_stop_threads();
	if (demo_first) {
		if (!demo_intact(demo_first, id))
			atomic64_inc(&st_bad);
		pr_info("\"%s\", held since load: intact=%d, %s\n", demo_first->name,
			demo_intact(demo_first, id),
			!now ? "removed meanwhile (its bytes are still readable)" :
			now == demo_first ? "still at the same address" : "MOVED");
		if (now && now != demo_first)
			atomic64_inc(&st_bad);
	}
	bad = atomic64_read(&st_bad);
	pr_info("writer: %lld objects added, %lld removed (map grew while read)\n",
		atomic64_read(&st_added), atomic64_read(&st_removed));
	pr_info("readers: %lld lookups, %lld misses (removed ids), %lld held-pointer checks, %lld changed objects\n",
		atomic64_read(&st_lookups), atomic64_read(&st_misses),
		atomic64_read(&st_held_checks), bad);
	demo_show_stats("at unload");
	anchormap_destroy(&demo_map);
	pr_info("destroyed the map: %lld objects released\n", atomic64_read(&st_released));
	pr_info("%s: every held pointer stayed valid and unchanged\n",
		bad ? "FAILED" : "OK");
}

module_init(demo_init);
module_exit(demo_exit);

MODULE_LICENSE("Dual MIT/GPL");
ANCHORMAP_IMPORT_NS();
MODULE_DESCRIPTION("anchormap example: a registry of objects keyed by id");
MODULE_AUTHOR("The anchormap authors");
