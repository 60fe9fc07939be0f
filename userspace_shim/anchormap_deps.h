/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * anchormap_deps.h (userspace) - everything the core (anchormap*.c) needs
 * from its environment, done with libc and pthread-free primitives.
 *
 * The kernel provides the same names in kernel/anchormap_deps.h; the build
 * picks one with -I.  Every name of this layer starts with amp_ (AMP_),
 * apart from the core's own am_ statics.  The list, for both:
 *
 *   memcpy memcmp memset, likely unlikely __always_inline noinline
 *   amp_lock_t         stripe lock: amp_lock_init amp_lock amp_unlock
 *                      (amp_lock returns true when it had to wait; init is
 *                      told whether the lock is taken irq-safe)
 *   amp_grow_lock_t    the lock of storage growth and of rebuild starts:
 *                      amp_grow_lock_init amp_grow_lock amp_grow_unlock; a
 *                      map that may sleep may hold it across an allocation
 *                      (kernel: a mutex), an atomic map's never is (kernel:
 *                      a raw spinlock); here a spinlock that yields at once
 *   struct amp_lock_class, amp_lock_class_init amp_lock_class_fini
 *                      one map's lock classes (kernel lockdep; empty here),
 *                      given to amp_lock_init and amp_grow_lock_init
 *   amp_zalloc amp_free  zeroed, 64-byte aligned blocks (NULL on failure)
 *   amp_free_after_readers
 *                      no reader tracking here: a replaced index is not
 *                      taken (false), the core keeps it until an exclusive
 *                      operation; readers hold nothing
 *   amp_random_seed    a random 64-bit seed
 *   amp_cpu_relax      spin-wait hint
 *   amp_cond_resched   a preemption point inside long exclusive operations
 *   struct amp_registry_node, amp_registry_add amp_registry_del
 *                      the list of live maps behind statistics
 *   AMP_EXPORT(sym)    export a public function from the module
 */
#ifndef _ANCHORMAP_DEPS_H
#define _ANCHORMAP_DEPS_H

#include <string.h>
#include <sched.h>

#ifndef likely
#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)
#endif
#ifndef __always_inline
#define __always_inline	inline __attribute__((__always_inline__))
#endif
#ifndef noinline
#define noinline	__attribute__((__noinline__))
#endif
#define AMP_EXPORT(sym)

static inline void amp_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/*
 * A test-and-test-and-set lock that spins briefly and then yields the CPU,
 * so that with more threads than cores a preempted holder gets to run
 * instead of every waiter burning its time slice.
 */
typedef struct {
	int locked;
} amp_lock_t;

#define AMP_LOCK_SPINS	128

/* The lockdep classes of one map's locks in the kernel; nothing here. */
struct amp_lock_class {
	char unused;
};

static inline int amp_lock_class_init(struct amp_lock_class *c, const char *name)
{
	(void)c;
	(void)name;
	return 0;
}

static inline void amp_lock_class_fini(struct amp_lock_class *c)
{
	(void)c;
}

static inline void amp_lock_init(amp_lock_t *l, bool irqsafe, struct amp_lock_class *c)
{
	(void)irqsafe;
	(void)c;
	__atomic_store_n(&l->locked, 0, __ATOMIC_RELAXED);
}

static inline bool amp_lock_try(amp_lock_t *l)
{
	/* ACQUIRE: the critical section cannot float above the lock */
	return !__atomic_load_n(&l->locked, __ATOMIC_RELAXED) &&
	       !__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE);
}

static inline bool amp_lock(amp_lock_t *l, unsigned long *flags, bool irqsafe)
{
	unsigned int spins = 0;

	(void)flags;
	(void)irqsafe;
	if (likely(amp_lock_try(l)))
		return false;
	while (!amp_lock_try(l)) {
		if (++spins < AMP_LOCK_SPINS)
			amp_cpu_relax();
		else
			sched_yield();
	}
	return true;
}

static inline void amp_unlock(amp_lock_t *l, unsigned long flags, bool irqsafe)
{
	(void)flags;
	(void)irqsafe;
	/* RELEASE: the critical section's stores are visible to the next holder */
	__atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
}

/* The growth lock: held across an allocation, so waiters yield at once. */
typedef amp_lock_t amp_grow_lock_t;

static inline void amp_grow_lock_init(amp_grow_lock_t *m, bool atomic, struct amp_lock_class *c)
{
	(void)atomic;
	amp_lock_init(m, false, c);
}

static inline void amp_grow_lock(amp_grow_lock_t *m, bool atomic)
{
	(void)atomic;
	while (!amp_lock_try(m))
		sched_yield();
}

static inline void amp_grow_unlock(amp_grow_lock_t *m, bool atomic)
{
	amp_unlock(m, 0, atomic);
}

static inline void amp_cond_resched(bool atomic)
{
	(void)atomic;
}

void *amp_zalloc(size_t size, bool atomic);
void amp_free(void *p, size_t size);

static inline bool amp_free_after_readers(void *p, size_t size, void **link)
{
	(void)p;
	(void)size;
	(void)link;
	return false;
}

u64 amp_random_seed(void);

struct amp_registry_node {
	char unused;
};

static inline void amp_registry_add(struct amp_registry_node *node, struct anchormap *map)
{
	(void)node;
	(void)map;
}

static inline void amp_registry_del(struct amp_registry_node *node)
{
	(void)node;
}

#endif /* _ANCHORMAP_DEPS_H */
