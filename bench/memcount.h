/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * memcount - count the bytes the C allocator hands out (malloc_usable_size
 * of every block) between memcount_start() and memcount_stop().  The bench
 * binary interposes malloc, calloc, realloc, free and the aligned
 * allocators (operator new and the peers' libraries all end up there) and
 * forwards them to glibc's __libc_* entry points.
 */
#ifndef BENCH_MEMCOUNT_H
#define BENCH_MEMCOUNT_H

void memcount_start(void);
void memcount_stop(void);
long long memcount_live(void);
long long memcount_peak(void);
void memcount_reset_peak(void);	/* the peak from now on: live bytes now */

#endif
