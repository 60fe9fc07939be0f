// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * anchormap kernel glue: module init/exit, allocation (deferred frees,
 * failure injection in test builds), per-map lock classes, the registry of
 * live maps and /proc/anchormap.
 *
 * /proc/anchormap shows a header naming the columns and then one line per
 * live map:
 *
 *   name len capacity segments slots deleted bytes longest_probe contended
 *   entries index_used index_bytes retired_bytes rebuilds
 *
 * (segments are storage arenas, slots and index_* the current index,
 * retired_bytes the replaced indexes kept until an exclusive operation.)
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/hardirq.h>
#include <linux/init.h>
#include <linux/kernel.h>
#include <linux/limits.h>
#include <linux/list.h>
#include <linux/llist.h>
#include <linux/lockdep.h>
#include <linux/log2.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/preempt.h>
#include <linux/proc_fs.h>
#include <linux/rcupdate.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>

#include "anchormap.h"
#include "anchormap_deps.h"

#define AMP_ALLOC_ALIGN	64

/* Blocks allocated by maps and not yet freed (a deferred free counts). */
static atomic_long_t amp_allocs_live = ATOMIC_LONG_INIT(0);

static void amp_free_work_fn(struct work_struct *work);
static DECLARE_WORK(amp_free_work, amp_free_work_fn);
static void amp_rcu_work_fn(struct work_struct *work);
static DECLARE_WORK(amp_rcu_work, amp_rcu_work_fn);

/* ---- test hooks: only in a test build (make kmod-test, ANCHORMAP_TEST=y) ---- */

#ifdef ANCHORMAP_TEST_HOOKS
/* Countdown to an injected failure (0 = off). */
static atomic_long_t amp_fail_countdown = ATOMIC_LONG_INIT(0);

/**
 * anchormap_debug_fail_nth() - make the @n-th allocation from now fail
 * @n: 1 fails the next allocation, 0 (or less) turns injection off.
 *
 * Counts the allocations of every map in the kernel, so it exists only in
 * a test build of the module.
 */
void anchormap_debug_fail_nth(long n)
{
	atomic_long_set(&amp_fail_countdown, n > 0 ? n : 0);
}
AMP_EXPORT(anchormap_debug_fail_nth);

/**
 * anchormap_debug_allocs_live() - blocks allocated by maps, not yet freed
 *
 * Context: process context, may sleep: the frees deferred so far are done
 * first, so that the count is exact.
 * Return: the count.
 */
long anchormap_debug_allocs_live(void)
{
	might_sleep();
	flush_work(&amp_rcu_work);
	flush_work(&amp_free_work);
	return atomic_long_read(&amp_allocs_live);
}
AMP_EXPORT(anchormap_debug_allocs_live);

static bool amp_should_fail(void)
{
	long c = atomic_long_read(&amp_fail_countdown);

	while (c > 0) {
		if (atomic_long_try_cmpxchg(&amp_fail_countdown, &c, c - 1))
			return c == 1;
	}
	return false;
}
#else
static bool amp_should_fail(void)
{
	return false;
}
#endif /* ANCHORMAP_TEST_HOOKS */

/* ---- contexts ---- */

/*
 * May an atomic map grow here?  Never in hardirq (a hard hrtimer, an
 * interrupt handler), on any kernel: on PREEMPT_RT the page and slab
 * allocators must not run there, and one rule for both kernels keeps a
 * writer that works on one from failing on the other.  On PREEMPT_RT not
 * with interrupts off or preemption disabled (a raw_spinlock_t held)
 * either; softirq and spinlock_t holders are threads there and may.
 */
static bool amp_atomic_alloc_ok(void)
{
	if (in_nmi() || in_hardirq())
		return false;
	if (IS_ENABLED(CONFIG_PREEMPT_RT) && !preemptible())
		return false;
	return true;
}

/*
 * May this context free (vfree(), and on PREEMPT_RT kfree()) directly?
 * A task, interrupts on, no preemption-disabling lock, no RCU read side
 * (a PREEMPT_RT spinlock_t holds one).  Without CONFIG_PREEMPT_COUNT a
 * spinlock cannot be seen, as for might_sleep().
 */
static bool amp_free_may_sleep(void)
{
	if (!in_task() || irqs_disabled() || rcu_preempt_depth())
		return false;
	return !IS_ENABLED(CONFIG_PREEMPT_COUNT) || !preempt_count();
}

/* ---- deferred frees ---- */

/*
 * An ANCHORMAP_F_ATOMIC map may be destroyed or drop an arena or index with
 * interrupts off, under a raw spinlock or in hardirq, where vfree() (and on
 * PREEMPT_RT kfree()) must not run.  Such blocks are queued here, their
 * first bytes reused as the list node (every block is at least 64 bytes),
 * and freed by a work item; lock-class keys likewise, since unregistering
 * one waits for an RCU grace period.
 */
static LLIST_HEAD(amp_blocks_to_free);
static LLIST_HEAD(amp_keys_to_free);

static void amp_keys_free(struct amp_lockdep_keys *k);

static void amp_free_work_fn(struct work_struct *work)
{
	struct llist_node *n, *next;

	llist_for_each_safe(n, next, llist_del_all(&amp_blocks_to_free)) {
		kvfree(n);
		atomic_long_dec(&amp_allocs_live);
	}
	llist_for_each_safe(n, next, llist_del_all(&amp_keys_to_free))
		amp_keys_free((struct amp_lockdep_keys *)n);
}

/* ---- allocation ---- */

/**
 * amp_zalloc() - a zeroed, 64-byte aligned block
 * @size:   bytes.
 * @atomic: must not sleep (GFP_ATOMIC, so at most KMALLOC_MAX_SIZE); fails
 *          where the allocator may not run at all (amp_atomic_alloc_ok()).
 *
 * kmalloc() aligns power-of-two sizes naturally and serves sizes above
 * KMALLOC_MAX_CACHE_SIZE from the page allocator; vmalloc() (the fallback
 * of kvzalloc()) is page aligned.  Only the 96 and 192 byte caches would
 * break the alignment, so small sizes are rounded up to a power of two of
 * at least 64 bytes.  Failures are quiet: the map reports -ENOMEM.
 *
 * Return: the block, or NULL.
 */
void *amp_zalloc(size_t size, bool atomic)
{
	void *p;

	if (amp_should_fail())
		return NULL;
	if (size > INT_MAX || (atomic && size > KMALLOC_MAX_SIZE))
		return NULL;
	if (atomic && !amp_atomic_alloc_ok())
		return NULL;
	if (size <= KMALLOC_MAX_CACHE_SIZE)
		size = roundup_pow_of_two(max_t(size_t, size, AMP_ALLOC_ALIGN));
	if (atomic)
		p = kzalloc(size, GFP_ATOMIC | __GFP_NOWARN);
	else
		p = kvzalloc(size, GFP_KERNEL | __GFP_NOWARN);
	if (!p)
		return NULL;
	if (WARN_ON_ONCE(!IS_ALIGNED((unsigned long)p, AMP_ALLOC_ALIGN))) {
		kvfree(p);
		return NULL;
	}
	atomic_long_inc(&amp_allocs_live);
	return p;
}

/**
 * amp_free() - free a block from amp_zalloc(); NULL is fine
 * @p:    the block.
 * @size: its size as asked (unused).
 *
 * Context: any but NMI; deferred to a work item where it may not sleep.
 */
void amp_free(void *p, size_t size)
{
	if (!p)
		return;
	if (!amp_free_may_sleep()) {
		if (llist_add((struct llist_node *)p, &amp_blocks_to_free))
			schedule_work(&amp_free_work);
		return;
	}
	atomic_long_dec(&amp_allocs_live);
	kvfree(p);
}

/* ---- frees after the readers: replaced indexes ---- */

/*
 * A replaced index may still be probed by lock-free lookups, which hold
 * rcu_read_lock_sched() for their own duration (anchormap_inline.h): it is queued here
 * (two words of its header are the node: the list link and the block) and
 * freed by a work item after a grace period.  Blocks taken off the list
 * before synchronize_rcu() were unpublished before it began.
 */
struct amp_rcu_node {
	struct llist_node node;
	void *block;
};

static LLIST_HEAD(amp_blocks_after_readers);

static void amp_rcu_work_fn(struct work_struct *work)
{
	struct llist_node *list = llist_del_all(&amp_blocks_after_readers), *n, *next;

	if (!list)
		return;
	synchronize_rcu();
	llist_for_each_safe(n, next, list) {
		struct amp_rcu_node *r = container_of(n, struct amp_rcu_node, node);

		kvfree(r->block);
		atomic_long_dec(&amp_allocs_live);
	}
}

/**
 * amp_free_after_readers() - free a block once no lock-free reader sees it
 * @p:    the block, no longer reachable for new readers.
 * @size: its size (unused).
 * @link: two pointer-sized words inside @p, not read by readers.
 *
 * Context: any but NMI.
 * Return: true: the block is the glue's now.
 */
bool amp_free_after_readers(void *p, size_t size, void **link)
{
	struct amp_rcu_node *r = (struct amp_rcu_node *)link;

	BUILD_BUG_ON(sizeof(*r) > 2 * sizeof(void *));
	r->block = p;
	if (llist_add(&r->node, &amp_blocks_after_readers))
		schedule_work(&amp_rcu_work);
	return true;
}

/* ---- lock classes ---- */

#ifdef CONFIG_LOCKDEP
struct amp_lockdep_keys {
	struct llist_node free_node;	/* first: the deferred-free list */
	struct lock_class_key stripe;
	struct lock_class_key grow;
	char stripe_name[40];
	char grow_name[40];
};

static void amp_keys_free(struct amp_lockdep_keys *k)
{
	lockdep_unregister_key(&k->stripe);
	lockdep_unregister_key(&k->grow);
	kfree(k);
}

/**
 * amp_lock_class_init() - register the lockdep classes of one map
 * @c:    the map's classes.
 * @name: the map's name (NULL: "anchormap"), for lockdep reports.
 *
 * Context: process context, may sleep (map init).
 * Return: 0 or -ENOMEM.
 */
int amp_lock_class_init(struct amp_lock_class *c, const char *name)
{
	struct amp_lockdep_keys *k = kzalloc(sizeof(*k), GFP_KERNEL);

	c->keys = k;
	if (!k)
		return -ENOMEM;
	if (!name)
		name = "anchormap";
	snprintf(k->stripe_name, sizeof(k->stripe_name), "%s.stripe", name);
	snprintf(k->grow_name, sizeof(k->grow_name), "%s.grow", name);
	lockdep_register_key(&k->stripe);
	lockdep_register_key(&k->grow);
	return 0;
}

/**
 * amp_lock_class_fini() - unregister them, once no lock of the map is used
 * @c: the map's classes.
 *
 * Context: any (deferred to a work item where it may not sleep).
 */
void amp_lock_class_fini(struct amp_lock_class *c)
{
	struct amp_lockdep_keys *k = c->keys;

	c->keys = NULL;
	if (!k)
		return;
	if (amp_free_may_sleep()) {
		amp_keys_free(k);
		return;
	}
	if (llist_add(&k->free_node, &amp_keys_to_free))
		schedule_work(&amp_free_work);
}

/**
 * amp_lock_class_key() - the key and name for one of a map's locks
 * @c:    the map's classes.
 * @grow: the growth lock (else a stripe).
 * @name: receives the class name.
 *
 * Return: the key.
 */
struct lock_class_key *amp_lock_class_key(struct amp_lock_class *c, bool grow,
					  const char **name)
{
	*name = grow ? c->keys->grow_name : c->keys->stripe_name;
	return grow ? &c->keys->grow : &c->keys->stripe;
}
#else
static void amp_keys_free(struct amp_lockdep_keys *k)
{
}

int amp_lock_class_init(struct amp_lock_class *c, const char *name)
{
	return 0;
}

void amp_lock_class_fini(struct amp_lock_class *c)
{
}

struct lock_class_key *amp_lock_class_key(struct amp_lock_class *c, bool grow,
					  const char **name)
{
	return NULL;
}
#endif /* CONFIG_LOCKDEP */

/* ---- registry of live maps ---- */

/*
 * Maps are created and destroyed in any context (an atomic map's destroy
 * may run in hardirq, also on PREEMPT_RT): a raw spinlock, irq-safe, held
 * only for list changes and the statistics of one map at a time.
 */
static LIST_HEAD(amp_maps);
static DEFINE_RAW_SPINLOCK(amp_maps_lock);

/**
 * amp_registry_add() - list a fully initialised map in /proc/anchormap
 * @node: the map's node (owned by the map).
 * @map:  the map.
 *
 * Context: any.
 */
void amp_registry_add(struct amp_registry_node *node, struct anchormap *map)
{
	unsigned long flags;

	node->map = map;
	raw_spin_lock_irqsave(&amp_maps_lock, flags);
	list_add_tail(&node->list, &amp_maps);
	raw_spin_unlock_irqrestore(&amp_maps_lock, flags);
}

/**
 * amp_registry_del() - unlist a map, before any of its memory is freed
 * @node: the node given to amp_registry_add().
 *
 * Once this returns no /proc reader looks at the map any more.
 *
 * Context: any.
 */
void amp_registry_del(struct amp_registry_node *node)
{
	unsigned long flags;

	raw_spin_lock_irqsave(&amp_maps_lock, flags);
	list_del_init(&node->list);
	raw_spin_unlock_irqrestore(&amp_maps_lock, flags);
}

static int amp_proc_show(struct seq_file *m, void *v)
{
	/* a cursor in the list (map NULL), so the lock is dropped between maps */
	struct amp_registry_node cursor = { .map = NULL };
	struct amp_registry_node *node;
	struct anchormap_stats st;
	char name[64];			/* a name is shown up to 63 bytes */
	const struct anchormap *seen = NULL;
	unsigned long flags;
	bool more;

	seq_printf(m, "%-24s %10s %10s %8s %10s %10s %12s %13s %10s %10s %10s %12s %13s %8s\n",
		   "name", "len", "capacity", "segments", "slots", "deleted",
		   "bytes", "longest_probe", "contended", "entries", "index_used",
		   "index_bytes", "retired_bytes", "rebuilds");
	/*
	 * anchormap_stats() is lock-free and never sleeps; holding the lock
	 * keeps the map alive while it is read.  Interrupts are off for one
	 * map's statistics at a time, never for the whole list.  seq_file
	 * retries with a larger buffer when the lines do not fit.
	 */
	raw_spin_lock_irqsave(&amp_maps_lock, flags);
	list_add(&cursor.list, &amp_maps);
	for (;;) {
		node = list_next_entry(&cursor, list);
		while (&node->list != &amp_maps && !node->map)	/* another reader's cursor */
			node = list_next_entry(node, list);
		more = &node->list != &amp_maps;
		if (more) {
			memset(&st, 0, sizeof(st));
			anchormap_stats(node->map, &st);
			/* the name too: its string need only outlive the map */
			strscpy(name, st.name ? st.name : "anchormap", sizeof(name));
			seen = node->map;
			list_move(&cursor.list, &node->list);
		}
		if (!more)
			list_del(&cursor.list);
		raw_spin_unlock_irqrestore(&amp_maps_lock, flags);
		if (!more)
			break;
		/* the map may be gone from here on: @seen only names it */
		__ANCHORMAP_TEST_POINT(seen, ANCHORMAP_TP_PROC_LINE);
		seq_printf(m, "%-24s %10zu %10zu %8zu %10zu %10zu %12zu %13u %10llu %10zu %10zu %12zu %13zu %8llu\n",
			   name, st.len, st.capacity,
			   st.segments, st.slots, st.deleted, st.bytes,
			   st.longest_probe, (unsigned long long)st.contended,
			   st.entries, st.index_used, st.index_bytes, st.retired_bytes,
			   (unsigned long long)st.rebuilds);
		cond_resched();
		raw_spin_lock_irqsave(&amp_maps_lock, flags);
	}
	return 0;
}

/* ---- module ---- */

static int __init anchormap_module_init(void)
{
	if (!proc_create_single("anchormap", 0444, NULL, amp_proc_show))
		return -ENOMEM;
	return 0;
}

static void __exit anchormap_module_exit(void)
{
	struct amp_registry_node *node;
	unsigned long flags;
	bool leaked = false;

	remove_proc_entry("anchormap", NULL);
	raw_spin_lock_irqsave(&amp_maps_lock, flags);
	list_for_each_entry(node, &amp_maps, list)
		leaked |= !!node->map;
	raw_spin_unlock_irqrestore(&amp_maps_lock, flags);
	/* Clients hold a reference on this module while they run. */
	if (leaked)
		pr_err("maps still registered at unload: a client did not destroy them\n");
	/* frees deferred by the clients' last destroys and rebuilds */
	flush_work(&amp_rcu_work);
	flush_work(&amp_free_work);
	if (atomic_long_read(&amp_allocs_live))
		pr_err("%ld blocks still allocated at unload\n",
		       atomic_long_read(&amp_allocs_live));
}

module_init(anchormap_module_init);
module_exit(anchormap_module_exit);

MODULE_LICENSE("Dual MIT/GPL");
MODULE_VERSION(ANCHORMAP_VERSION);
MODULE_DESCRIPTION("anchormap: concurrent hash map whose entries never move");
MODULE_AUTHOR("The anchormap authors");
