// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * anchormap kernel glue: module init/exit, allocation with failure
 * injection, the registry of live maps and /proc/anchormap.
 *
 * /proc/anchormap shows a header naming the columns and then one line per
 * live map:
 *
 *   name len capacity segments slots deleted bytes longest_probe contended
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/init.h>
#include <linux/kernel.h>
#include <linux/limits.h>
#include <linux/list.h>
#include <linux/log2.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

#include "anchormap.h"
#include "anchormap_deps.h"

#define AM_ALLOC_ALIGN	64

/* ---- allocation, failure injection, live count ---- */

/* Countdown to an injected failure (0 = off) and blocks not yet freed. */
static atomic_long_t am_fail_countdown = ATOMIC_LONG_INIT(0);
static atomic_long_t am_allocs_live = ATOMIC_LONG_INIT(0);

/**
 * anchormap_debug_fail_nth() - make the @n-th allocation from now fail
 * @n: 1 fails the next allocation, 0 (or less) turns injection off.
 *
 * Counts the allocations of every map in the kernel.  For tests.
 */
void anchormap_debug_fail_nth(long n)
{
	atomic_long_set(&am_fail_countdown, n > 0 ? n : 0);
}
EXPORT_SYMBOL_GPL(anchormap_debug_fail_nth);

/** anchormap_debug_allocs_live() - blocks allocated by maps, not yet freed */
long anchormap_debug_allocs_live(void)
{
	return atomic_long_read(&am_allocs_live);
}
EXPORT_SYMBOL_GPL(anchormap_debug_allocs_live);

static bool am_should_fail(void)
{
	long c = atomic_long_read(&am_fail_countdown);

	while (c > 0) {
		if (atomic_long_try_cmpxchg(&am_fail_countdown, &c, c - 1))
			return c == 1;
	}
	return false;
}

/**
 * am_zalloc() - a zeroed, 64-byte aligned block
 * @size:   bytes.
 * @atomic: must not sleep (GFP_ATOMIC, so at most KMALLOC_MAX_SIZE).
 *
 * kmalloc() aligns power-of-two sizes naturally and serves sizes above
 * KMALLOC_MAX_CACHE_SIZE from the page allocator; vmalloc() (the fallback
 * of kvzalloc()) is page aligned.  Only the 96 and 192 byte caches would
 * break the alignment, so small sizes are rounded up to a power of two of
 * at least 64 bytes.  Failures are quiet: the map reports -ENOMEM.
 *
 * Return: the block, or NULL.
 */
void *am_zalloc(size_t size, bool atomic)
{
	void *p;

	if (am_should_fail())
		return NULL;
	if (size > INT_MAX || (atomic && size > KMALLOC_MAX_SIZE))
		return NULL;
	if (size <= KMALLOC_MAX_CACHE_SIZE)
		size = roundup_pow_of_two(max_t(size_t, size, AM_ALLOC_ALIGN));
	if (atomic)
		p = kzalloc(size, GFP_ATOMIC | __GFP_NOWARN);
	else
		p = kvzalloc(size, GFP_KERNEL | __GFP_NOWARN);
	if (!p)
		return NULL;
	if (WARN_ON_ONCE(!IS_ALIGNED((unsigned long)p, AM_ALLOC_ALIGN))) {
		kvfree(p);
		return NULL;
	}
	atomic_long_inc(&am_allocs_live);
	return p;
}

/** am_free() - free a block from am_zalloc(); NULL is fine */
void am_free(void *p, size_t size)
{
	if (!p)
		return;
	atomic_long_dec(&am_allocs_live);
	kvfree(p);
}

/* ---- registry of live maps ---- */

/* Maps may be created and destroyed in atomic context: a spinlock, irq-safe. */
static LIST_HEAD(am_maps);
static DEFINE_SPINLOCK(am_maps_lock);

/**
 * am_registry_add() - list a fully initialised map in /proc/anchormap
 * @node: the map's node (owned by the map).
 * @map:  the map.
 *
 * Context: any.
 */
void am_registry_add(struct am_registry_node *node, struct anchormap *map)
{
	unsigned long flags;

	node->map = map;
	spin_lock_irqsave(&am_maps_lock, flags);
	list_add_tail(&node->list, &am_maps);
	spin_unlock_irqrestore(&am_maps_lock, flags);
}

/**
 * am_registry_del() - unlist a map, before any of its memory is freed
 * @node: the node given to am_registry_add().
 *
 * Once this returns no /proc reader looks at the map any more.
 *
 * Context: any.
 */
void am_registry_del(struct am_registry_node *node)
{
	unsigned long flags;

	spin_lock_irqsave(&am_maps_lock, flags);
	list_del_init(&node->list);
	spin_unlock_irqrestore(&am_maps_lock, flags);
}

static int am_proc_show(struct seq_file *m, void *v)
{
	struct am_registry_node *node;
	struct anchormap_stats st;
	unsigned long flags;

	seq_printf(m, "%-24s %10s %10s %8s %10s %10s %12s %13s %10s\n",
		   "name", "len", "capacity", "segments", "slots", "deleted",
		   "bytes", "longest_probe", "contended");
	/*
	 * anchormap_stats() is lock-free and never sleeps; holding the lock
	 * keeps each listed map alive while it is read.  seq_file retries with
	 * a larger buffer when the lines do not fit.
	 */
	spin_lock_irqsave(&am_maps_lock, flags);
	list_for_each_entry(node, &am_maps, list) {
		memset(&st, 0, sizeof(st));
		anchormap_stats(node->map, &st);
		seq_printf(m, "%-24s %10zu %10zu %8zu %10zu %10zu %12zu %13u %10llu\n",
			   st.name ? st.name : "anchormap", st.len, st.capacity,
			   st.segments, st.slots, st.deleted, st.bytes,
			   st.longest_probe, (unsigned long long)st.contended);
	}
	spin_unlock_irqrestore(&am_maps_lock, flags);
	return 0;
}

/* ---- module ---- */

static int __init anchormap_module_init(void)
{
	if (!proc_create_single("anchormap", 0444, NULL, am_proc_show))
		return -ENOMEM;
	return 0;
}

static void __exit anchormap_module_exit(void)
{
	unsigned long flags;
	bool leaked;

	remove_proc_entry("anchormap", NULL);
	spin_lock_irqsave(&am_maps_lock, flags);
	leaked = !list_empty(&am_maps);
	spin_unlock_irqrestore(&am_maps_lock, flags);
	/* Clients hold a reference on this module while they run. */
	if (leaked)
		pr_err("maps still registered at unload: a client did not destroy them\n");
	if (atomic_long_read(&am_allocs_live))
		pr_err("%ld blocks still allocated at unload\n",
		       atomic_long_read(&am_allocs_live));
}

module_init(anchormap_module_init);
module_exit(anchormap_module_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("anchormap: concurrent hash map whose entries never move");
MODULE_AUTHOR("The anchormap authors");
