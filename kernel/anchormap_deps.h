/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * anchormap_deps.h (kernel) - what the freestanding anchormap.c needs from
 * its environment, done with kernel primitives.
 *
 * The names and signatures are those of userspace_shim/anchormap_deps.h,
 * whose top comment lists them; the build picks one of the two with -I.
 *
 *   am_lock_t       a spinlock_t; taken irq-safe for ANCHORMAP_F_ATOMIC maps.
 *   am_mutex_t      a mutex for maps that may sleep, a spinlock (irq-safe,
 *                   the flags kept in the lock) for ANCHORMAP_F_ATOMIC ones.
 *   am_zalloc       kvzalloc(GFP_KERNEL), or kzalloc(GFP_ATOMIC) when atomic;
 *                   the result is always 64-byte aligned (see anchormap_main.c).
 *   am_free         kvfree.
 *   am_registry_*   the list of live maps shown in /proc/anchormap.
 *   AM_EXPORT       EXPORT_SYMBOL_GPL.
 */
#ifndef _ANCHORMAP_DEPS_H
#define _ANCHORMAP_DEPS_H

#include <linux/compiler.h>
#include <linux/export.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/processor.h>
#include <linux/random.h>
#include <linux/sched.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/types.h>

struct anchormap;

#define AM_EXPORT(sym)	EXPORT_SYMBOL_GPL(sym)

static __always_inline void am_cpu_relax(void)
{
	cpu_relax();
}

/* ---- stripe lock ---- */

typedef spinlock_t am_lock_t;

/*
 * Two lockdep classes: stripes of ANCHORMAP_F_ATOMIC maps are taken in any
 * context with interrupts off, the others with interrupts on.  In one class
 * lockdep would call that an inconsistent lock state, although no lock is
 * ever shared between the two kinds of map.
 */
static struct lock_class_key am_stripe_key_plain;
static struct lock_class_key am_stripe_key_irqsafe;

static inline void am_lock_init(am_lock_t *l, bool irqsafe)
{
	spin_lock_init(l);
	lockdep_set_class(l, irqsafe ? &am_stripe_key_irqsafe : &am_stripe_key_plain);
}

/*
 * Sparse: the core takes and drops stripe locks through its own helpers,
 * and portable code cannot carry __acquires()/__releases().  So these keep
 * sparse's lock context balanced themselves (__release() right after
 * taking, __acquire() right before dropping) instead of moving it into
 * every caller; the pairing is checked by the selftests instead.
 */

/**
 * am_lock() - take a stripe lock
 * @l:       the lock.
 * @flags:   receives the saved interrupt state when @irqsafe.
 * @irqsafe: disable local interrupts (maps written from atomic context).
 *
 * Return: true when the lock was held by someone else and we had to wait.
 */
static inline bool am_lock(am_lock_t *l, unsigned long *flags, bool irqsafe)
{
	bool contended = false;

	if (IS_ENABLED(CONFIG_LOCKDEP)) {
		/*
		 * lockdep records neither order nor recursion for trylock
		 * acquisitions: take the lock plainly so that it checks them,
		 * and count contention from a peek instead.
		 */
		contended = spin_is_locked(l);
		if (irqsafe)
			spin_lock_irqsave(l, *flags);
		else
			spin_lock(l);
	} else if (irqsafe) {
		if (unlikely(!spin_trylock_irqsave(l, *flags))) {
			spin_lock_irqsave(l, *flags);
			contended = true;
		}
	} else if (unlikely(!spin_trylock(l))) {
		spin_lock(l);
		contended = true;
	}
	__release(l);
	return contended;
}

static inline void am_unlock(am_lock_t *l, unsigned long flags, bool irqsafe)
{
	__acquire(l);
	if (irqsafe)
		spin_unlock_irqrestore(l, flags);
	else
		spin_unlock(l);
}

/* ---- growth lock ---- */

/*
 * A map that may sleep grows under a mutex, so a writer waiting for another
 * one's allocation sleeps instead of spinning.  An ANCHORMAP_F_ATOMIC map may
 * grow from any context, so it takes the spinlock with interrupts off; the
 * saved interrupt state lives in the lock, written only by its holder.
 */
typedef struct {
	struct mutex mutex;
	spinlock_t spin;
	unsigned long irqflags;
} am_mutex_t;

static inline void am_mutex_init(am_mutex_t *m)
{
	mutex_init(&m->mutex);
	spin_lock_init(&m->spin);
	m->irqflags = 0;
}

static inline void am_mutex_lock(am_mutex_t *m, bool atomic)
{
	unsigned long flags;

	if (atomic) {
		spin_lock_irqsave(&m->spin, flags);
		m->irqflags = flags;
		__release(&m->spin);	/* balanced for sparse, see am_lock() */
	} else {
		mutex_lock(&m->mutex);
	}
}

static inline void am_mutex_unlock(am_mutex_t *m, bool atomic)
{
	if (atomic) {
		__acquire(&m->spin);
		spin_unlock_irqrestore(&m->spin, m->irqflags);
	} else {
		mutex_unlock(&m->mutex);
	}
}

/* ---- scheduling ---- */

static inline void am_cond_resched(bool atomic)
{
	if (!atomic)
		cond_resched();
}

/* ---- memory and randomness (anchormap_main.c) ---- */

void *am_zalloc(size_t size, bool atomic);
void am_free(void *p, size_t size);

static inline u64 am_random_seed(void)
{
	return get_random_u64();
}

/* ---- the registry of live maps behind /proc/anchormap ---- */

struct am_registry_node {
	struct list_head list;
	struct anchormap *map;
};

void am_registry_add(struct am_registry_node *node, struct anchormap *map);
void am_registry_del(struct am_registry_node *node);

#endif /* _ANCHORMAP_DEPS_H */
