/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * anchormap_deps.h (kernel) - what the freestanding core (anchormap*.c) needs
 * from its environment, done with kernel primitives.
 *
 * The names and signatures are those of userspace_shim/anchormap_deps.h,
 * whose top comment lists them; the build picks one of the two with -I.
 *
 *   amp_lock_t      a spinlock_t for maps that may sleep; a raw_spinlock_t,
 *                   taken with interrupts off, for ANCHORMAP_F_ATOMIC ones
 *                   (hardirq, raw spinlocks held, and PREEMPT_RT, where a
 *                   spinlock_t sleeps).
 *   amp_grow_lock_t the growth and rebuild-start lock: a mutex for maps that
 *                   may sleep, a raw spinlock (irqs off, the flags kept in
 *                   the lock) for ANCHORMAP_F_ATOMIC ones; the core never
 *                   allocates while holding the latter.
 *   amp_lock_class  the lockdep classes of one map's locks (dynamic keys,
 *                   named after the map), so that one map's locks nest in
 *                   another's without a false "recursive locking".
 *   amp_zalloc      kvzalloc(GFP_KERNEL), or kzalloc(GFP_ATOMIC) when atomic;
 *                   atomic never allocates in hardirq, nor on PREEMPT_RT
 *                   where the allocator must not run (see anchormap_main.c).
 *                   The result is always 64-byte aligned.
 *   amp_free        kvfree, deferred to a work item where freeing may not
 *                   run (interrupts off, atomic, hardirq).
 *   amp_free_after_readers  kvfree once every lock-free reader that may
 *                   still see the block is done: after an RCU grace period
 *                   (a work item runs synchronize_rcu()); @link is two words
 *                   of the block the glue may use meanwhile.  True: taken.
 *   amp_registry_*  the list of live maps shown in /proc/anchormap.
 *   AMP_EXPORT      EXPORT_SYMBOL_NS_GPL in namespace ANCHORMAP.
 */
#ifndef _ANCHORMAP_DEPS_H
#define _ANCHORMAP_DEPS_H

#include <linux/compiler.h>
#include <linux/export.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/processor.h>
#include <linux/random.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/types.h>
#include <linux/version.h>

struct anchormap;

/* The namespace is a bare token up to 6.12, a string from 6.13 on. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 13, 0)
#define AMP_EXPORT(sym)	EXPORT_SYMBOL_NS_GPL(sym, "ANCHORMAP")
#else
#define AMP_EXPORT(sym)	EXPORT_SYMBOL_NS_GPL(sym, ANCHORMAP)
#endif

static __always_inline void amp_cpu_relax(void)
{
	cpu_relax();
}

/* ---- lock classes ---- */

/*
 * Each map's stripes share one lockdep class and its growth lock has
 * another, both registered per map: an ANCHORMAP_F_ATOMIC map's init
 * callback may insert into a second atomic map, which one class for all
 * maps would report as recursive locking.  Without lockdep this is empty.
 */
struct amp_lockdep_keys;

struct amp_lock_class {
#ifdef CONFIG_LOCKDEP
	struct amp_lockdep_keys *keys;
#endif
};

int amp_lock_class_init(struct amp_lock_class *c, const char *name);
void amp_lock_class_fini(struct amp_lock_class *c);
struct lock_class_key *amp_lock_class_key(struct amp_lock_class *c, bool grow,
					  const char **name);

/* ---- stripe lock ---- */

typedef union {
	spinlock_t spin;	/* maps that may sleep */
	raw_spinlock_t raw;	/* ANCHORMAP_F_ATOMIC maps */
} amp_lock_t;

static inline void amp_lock_init(amp_lock_t *l, bool irqsafe, struct amp_lock_class *c)
{
	const char *name = NULL;
	struct lock_class_key *key = amp_lock_class_key(c, false, &name);

	if (irqsafe) {
		raw_spin_lock_init(&l->raw);
		if (key)
			lockdep_set_class_and_name(&l->raw, key, name);
	} else {
		spin_lock_init(&l->spin);
		if (key)
			lockdep_set_class_and_name(&l->spin, key, name);
	}
}

/*
 * Sparse: the core takes and drops stripe locks through its own helpers,
 * and portable code cannot carry __acquires()/__releases().  So these keep
 * sparse's lock context balanced themselves (__release() right after
 * taking, __acquire() right before dropping) instead of moving it into
 * every caller; the pairing is checked by the selftests instead.  On
 * PREEMPT_RT of 6.1 spin_lock() and spin_unlock() are functions without
 * annotations (spin_trylock() still has __cond_lock(); 6.12 annotates
 * them; releases in between are not checked), so there the plain branches
 * add the context change the other branches get from the annotations.
 */
#if defined(CONFIG_PREEMPT_RT) && LINUX_VERSION_CODE < KERNEL_VERSION(6, 12, 0)
#define amp_rt_acquire(l)	__acquire(l)
#define amp_rt_release(l)	__release(l)
#else
#define amp_rt_acquire(l)	((void)(l))
#define amp_rt_release(l)	((void)(l))
#endif

/**
 * amp_lock() - take a stripe lock
 * @l:       the lock.
 * @flags:   receives the saved interrupt state when @irqsafe.
 * @irqsafe: the map is ANCHORMAP_F_ATOMIC: the raw lock, interrupts off.
 *
 * Return: true when the lock was held by someone else and we had to wait.
 */
static inline bool amp_lock(amp_lock_t *l, unsigned long *flags, bool irqsafe)
{
	bool contended = false;

	if (IS_ENABLED(CONFIG_LOCKDEP)) {
		/*
		 * lockdep records neither order nor recursion for trylock
		 * acquisitions: take the lock plainly so that it checks them,
		 * and count contention from a peek instead.
		 */
		if (irqsafe) {
			contended = raw_spin_is_locked(&l->raw);
			raw_spin_lock_irqsave(&l->raw, *flags);
		} else {
			contended = spin_is_locked(&l->spin);
			spin_lock(&l->spin);
			amp_rt_acquire(&l->spin);
		}
	} else if (irqsafe) {
		if (unlikely(!raw_spin_trylock_irqsave(&l->raw, *flags))) {
			raw_spin_lock_irqsave(&l->raw, *flags);
			contended = true;
		}
	} else if (unlikely(!spin_trylock(&l->spin))) {
		spin_lock(&l->spin);
		amp_rt_acquire(&l->spin);
		contended = true;
	}
	__release(l);
	return contended;
}

static inline void amp_unlock(amp_lock_t *l, unsigned long flags, bool irqsafe)
{
	__acquire(l);
	if (irqsafe) {
		raw_spin_unlock_irqrestore(&l->raw, flags);
	} else {
		spin_unlock(&l->spin);
		amp_rt_release(&l->spin);
	}
}

/* ---- growth lock ---- */

/*
 * A map that may sleep grows under a mutex, so a writer waiting for another
 * one's allocation sleeps instead of spinning.  An ANCHORMAP_F_ATOMIC map may
 * grow from any context, so it takes a raw spinlock with interrupts off (the
 * saved interrupt state lives in the lock, written only by its holder), and
 * the core drops it around the allocation.
 */
typedef struct {
	struct mutex mutex;
	raw_spinlock_t spin;
	unsigned long irqflags;
} amp_grow_lock_t;

static inline void amp_grow_lock_init(amp_grow_lock_t *m, bool atomic, struct amp_lock_class *c)
{
	const char *name = NULL;
	struct lock_class_key *key = amp_lock_class_key(c, true, &name);

	mutex_init(&m->mutex);
	raw_spin_lock_init(&m->spin);
	if (key && atomic)
		lockdep_set_class_and_name(&m->spin, key, name);
	else if (key)
		lockdep_set_class_and_name(&m->mutex, key, name);
	m->irqflags = 0;
}

static inline void amp_grow_lock(amp_grow_lock_t *m, bool atomic)
{
	unsigned long flags;

	if (atomic) {
		raw_spin_lock_irqsave(&m->spin, flags);
		m->irqflags = flags;
		__release(&m->spin);	/* balanced for sparse, see amp_lock() */
	} else {
		mutex_lock(&m->mutex);
	}
}

static inline void amp_grow_unlock(amp_grow_lock_t *m, bool atomic)
{
	if (atomic) {
		__acquire(&m->spin);
		raw_spin_unlock_irqrestore(&m->spin, m->irqflags);
	} else {
		mutex_unlock(&m->mutex);
	}
}

/* ---- scheduling ---- */

static inline void amp_cond_resched(bool atomic)
{
	if (!atomic)
		cond_resched();
}

/* ---- memory and randomness (anchormap_main.c) ---- */

void *amp_zalloc(size_t size, bool atomic);
void amp_free(void *p, size_t size);
bool amp_free_after_readers(void *p, size_t size, void **link);

static inline u64 amp_random_seed(void)
{
	return get_random_u64();
}

/* ---- the registry of live maps behind /proc/anchormap ---- */

struct amp_registry_node {
	struct list_head list;
	struct anchormap *map;
};

void amp_registry_add(struct amp_registry_node *node, struct anchormap *map);
void amp_registry_del(struct amp_registry_node *node);

#endif /* _ANCHORMAP_DEPS_H */
