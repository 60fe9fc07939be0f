// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * memcount.cc - see memcount.h.  Counting is off outside the memory phase,
 * so timed runs pay one predictable branch per allocation.
 */
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <malloc.h>

#include "memcount.h"

extern "C" {
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t s);
void *__libc_realloc(void *p, size_t n);
void __libc_free(void *p);
void *__libc_memalign(size_t a, size_t n);
}

static std::atomic<int> counting;
static std::atomic<long long> live, peak;

static inline void count_add(void *p)
{
	long long now, old;

	if (!p || !counting.load(std::memory_order_relaxed))
		return;
	now = live.fetch_add((long long)malloc_usable_size(p), std::memory_order_relaxed) +
	      (long long)malloc_usable_size(p);
	old = peak.load(std::memory_order_relaxed);
	while (now > old && !peak.compare_exchange_weak(old, now, std::memory_order_relaxed))
		;
}

static inline void count_sub(void *p)
{
	if (p && counting.load(std::memory_order_relaxed))
		live.fetch_sub((long long)malloc_usable_size(p), std::memory_order_relaxed);
}

void memcount_start(void)
{
	live = 0;
	peak = 0;
	counting = 1;
}

void memcount_stop(void)
{
	counting = 0;
}

long long memcount_live(void)
{
	return live.load();
}

long long memcount_peak(void)
{
	return peak.load();
}

void memcount_reset_peak(void)
{
	peak = live.load();
}

extern "C" {

void *malloc(size_t n)
{
	void *p = __libc_malloc(n);

	count_add(p);
	return p;
}

void *calloc(size_t n, size_t s)
{
	void *p = __libc_calloc(n, s);

	count_add(p);
	return p;
}

void *realloc(void *p, size_t n)
{
	void *q;

	count_sub(p);
	q = __libc_realloc(p, n);
	if (q)
		count_add(q);
	else if (p && n)
		count_add(p);	/* failed: the old block stays */
	return q;
}

void free(void *p)
{
	count_sub(p);
	__libc_free(p);
}

void *memalign(size_t a, size_t n)
{
	void *p = __libc_memalign(a, n);

	count_add(p);
	return p;
}

void *aligned_alloc(size_t a, size_t n)
{
	return memalign(a, n);
}

int posix_memalign(void **out, size_t a, size_t n)
{
	void *p;

	if (a % sizeof(void *) || (a & (a - 1)))
		return EINVAL;
	p = memalign(a, n);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

}
