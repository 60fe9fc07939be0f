/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * anchormap_deps.h (userspace) - everything anchormap.c needs from its
 * environment, done with libc and pthread-free primitives.
 *
 * The kernel provides the same names in kernel/anchormap_deps.h; the build
 * picks one with -I.  The list, for both:
 *
 *   memcpy memcmp memset, likely unlikely __always_inline noinline
 *   am_lock_t          stripe lock: am_lock_init am_lock am_unlock
 *                      (am_lock returns true when it had to wait; init is
 *                      told whether the lock is taken irq-safe)
 *   am_mutex_t         growth lock: am_mutex_init am_mutex_lock am_mutex_unlock
 *                      (an atomic map's is never held across an allocation)
 *   struct am_lock_class, am_lock_class_init am_lock_class_fini
 *                      one map's lock classes (kernel lockdep; empty here),
 *                      given to am_lock_init and am_mutex_init
 *   am_zalloc am_free  zeroed, 64-byte aligned blocks (NULL on failure)
 *   am_free_after_readers, am_read_lock, am_read_unlock
 *                      no reader tracking here: a replaced index is not
 *                      taken (false), the core keeps it until an exclusive
 *                      operation; readers hold nothing
 *   am_random_seed     a random 64-bit seed
 *   am_cpu_relax       spin-wait hint
 *   am_cond_resched    a preemption point inside long exclusive operations
 *   struct am_registry_node, am_registry_add am_registry_del
 *                      the list of live maps behind statistics
 *   AM_EXPORT(sym)     export a public function from the module
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
#define AM_EXPORT(sym)

static inline void am_cpu_relax(void)
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
} am_lock_t;

#define AM_LOCK_SPINS	128

/* The lockdep classes of one map's locks in the kernel; nothing here. */
struct am_lock_class {
	char unused;
};

static inline int am_lock_class_init(struct am_lock_class *c, const char *name)
{
	(void)c;
	(void)name;
	return 0;
}

static inline void am_lock_class_fini(struct am_lock_class *c)
{
	(void)c;
}

static inline void am_lock_init(am_lock_t *l, bool irqsafe, struct am_lock_class *c)
{
	(void)irqsafe;
	(void)c;
	__atomic_store_n(&l->locked, 0, __ATOMIC_RELAXED);
}

static inline bool am_lock_try(am_lock_t *l)
{
	/* ACQUIRE: the critical section cannot float above the lock */
	return !__atomic_load_n(&l->locked, __ATOMIC_RELAXED) &&
	       !__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE);
}

static inline bool am_lock(am_lock_t *l, unsigned long *flags, bool irqsafe)
{
	unsigned int spins = 0;

	(void)flags;
	(void)irqsafe;
	if (likely(am_lock_try(l)))
		return false;
	while (!am_lock_try(l)) {
		if (++spins < AM_LOCK_SPINS)
			am_cpu_relax();
		else
			sched_yield();
	}
	return true;
}

static inline void am_unlock(am_lock_t *l, unsigned long flags, bool irqsafe)
{
	(void)flags;
	(void)irqsafe;
	/* RELEASE: the critical section's stores are visible to the next holder */
	__atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
}

/* The growth lock: held across an allocation, so waiters yield at once. */
typedef am_lock_t am_mutex_t;

static inline void am_mutex_init(am_mutex_t *m, bool atomic, struct am_lock_class *c)
{
	(void)atomic;
	am_lock_init(m, false, c);
}

static inline void am_mutex_lock(am_mutex_t *m, bool atomic)
{
	(void)atomic;
	while (!am_lock_try(m))
		sched_yield();
}

static inline void am_mutex_unlock(am_mutex_t *m, bool atomic)
{
	am_unlock(m, 0, atomic);
}

static inline void am_cond_resched(bool atomic)
{
	(void)atomic;
}

void *am_zalloc(size_t size, bool atomic);
void am_free(void *p, size_t size);

static inline bool am_free_after_readers(void *p, size_t size, void **link)
{
	(void)p;
	(void)size;
	(void)link;
	return false;
}

static inline void am_read_lock(void)
{
}

static inline void am_read_unlock(void)
{
}
u64 am_random_seed(void);

struct am_registry_node {
	char unused;
};

static inline void am_registry_add(struct am_registry_node *node, struct anchormap *map)
{
	(void)node;
	(void)map;
}

static inline void am_registry_del(struct am_registry_node *node)
{
	(void)node;
}

#endif /* _ANCHORMAP_DEPS_H */
