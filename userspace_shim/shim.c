// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The userspace shim: allocation (with failure injection for tests) and
 * seeding for anchormap.c.  Everything else is inline in anchormap_deps.h.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <sys/random.h>

#include "anchormap.h"
#include "anchormap_deps.h"

#define AMP_ALLOC_ALIGN	64

/* Countdown to an injected failure (0 = off) and live allocations. */
static long amp_fail_countdown;
static long amp_allocs_live;

void anchormap_debug_fail_nth(long n)
{
	__atomic_store_n(&amp_fail_countdown, n > 0 ? n : 0, __ATOMIC_RELAXED);
}

long anchormap_debug_allocs_live(void)
{
	return __atomic_load_n(&amp_allocs_live, __ATOMIC_RELAXED);
}

static bool amp_should_fail(void)
{
	long c = __atomic_load_n(&amp_fail_countdown, __ATOMIC_RELAXED);

	while (c > 0) {
		if (__atomic_compare_exchange_n(&amp_fail_countdown, &c, c - 1, false,
						__ATOMIC_RELAXED, __ATOMIC_RELAXED))
			return c == 1;
	}
	return false;
}

void *amp_zalloc(size_t size, bool atomic)
{
	void *p;

	(void)atomic;
	if (amp_should_fail())
		return NULL;
	if (size > SIZE_MAX - AMP_ALLOC_ALIGN)
		return NULL;
	/*
	 * calloc of a large block maps fresh zero pages, so the memory of a
	 * pre-sized arena or index is only touched as entries fill; an aligned block
	 * from posix_memalign would need an explicit memset instead.  Keep
	 * calloc and align by hand: the pointer to free sits just below.
	 */
	p = calloc(1, size + AMP_ALLOC_ALIGN);
	if (!p)
		return NULL;
	__atomic_add_fetch(&amp_allocs_live, 1, __ATOMIC_RELAXED);
	{
		unsigned char *base = p;
		unsigned char *user = (unsigned char *)(((uintptr_t)base + AMP_ALLOC_ALIGN) &
							~(uintptr_t)(AMP_ALLOC_ALIGN - 1));

		memcpy(user - sizeof(void *), &base, sizeof(void *));
		return user;
	}
}

void amp_free(void *p, size_t size)
{
	void *base;

	(void)size;
	if (!p)
		return;
	memcpy(&base, (unsigned char *)p - sizeof(void *), sizeof(void *));
	__atomic_sub_fetch(&amp_allocs_live, 1, __ATOMIC_RELAXED);
	free(base);
}

u64 amp_random_seed(void)
{
	u64 seed;
	struct timespec ts;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed))
		return seed;
	/* no entropy yet (early boot): still differ per map and per run */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((u64)ts.tv_sec << 32) ^ (u64)ts.tv_nsec ^ ((u64)getpid() << 16) ^
	       (u64)(uintptr_t)&seed;
}
