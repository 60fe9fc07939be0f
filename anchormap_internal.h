/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * What the core's files share and nobody else sees.
 *
 * The core's own constants, the writer state (stripes, arenas, the
 * rebuild), the atomic accessors every shared access goes through, the
 * entry accessors, and the few helpers the snapshot code
 * (anchormap_snapshot.c) takes from anchormap.c.  The conventions and the
 * memory-ordering protocol are written at the top of anchormap.c.
 */
#ifndef _ANCHORMAP_INTERNAL_H
#define _ANCHORMAP_INTERNAL_H

#include "anchormap.h"
#include "anchormap_deps.h"

/* ---------------------------------------------------------------------
 * Constants and private structures
 */

#define AM_LINE			64
#define AM_ARENA_MAX		(1u << __ANCHORMAP_REF_SHIFT)	/* entries in one arena */
#define AM_ARENA_MIN		16u

#define AM_HDR_FREE		0u
#define AM_HDR_LIVE		1u
#define AM_HDR_REMOVED		2u
#define AM_HDR_DEAD		3u
#define AM_HDR_STATE		3u
#define AM_HDR_STRIPE_SHIFT	2
__ANCHORMAP_STATIC_ASSERT((AM_HDR_STATE >> AM_HDR_STRIPE_SHIFT) == 0 &&
			  AM_HDR_STRIPE_SHIFT + ANCHORMAP_STRIPE_SHIFT <= 32,
			  "an entry header holds the state and the stripe apart");

/* entries a rebuild copies per chunk, and a walk of storage between reschedules */
#define AM_REBUILD_CHUNK	1024u
/* a stripe the rebuild's sweep has not reached: its entries are all copied */
#define AM_NOT_SWEPT		0xffffffffu

#define am_align_up(x, a)	(((x) + (a) - 1) & ~((size_t)(a) - 1))

/* The core is freestanding: its own min and max, for sizes. */
static __always_inline size_t am_min(size_t a, size_t b)
{
	return a < b ? a : b;
}

static __always_inline size_t am_max(size_t a, size_t b)
{
	return a > b ? a : b;
}

struct am_stripe {
	amp_lock_t lock;
	/* under the lock only */
	const struct anchormap_index *credit_idx;	/* the index the credits are for */
	size_t credits;		/* EMPTY tags this stripe may still fill there */
	/* written under the lock, read lock-free */
	u32 chunk_end;		/* end of the storage chunk next_ref is in */
	u32 next_ref;		/* the ref of this stripe's next entry (protocol 5) */
	long live;		/* entries present, of this stripe's keys */
	long deleted;		/* REMOVED and DEAD entries not yet reclaimed */
	u32 longest_probe;
	u64 contended;
} __aligned(AM_LINE);

/*
 * An arena's bookkeeping; lookups find its entries through map->arena_bias[n].
 * One allocation: the entries' header words, then the entries from an
 * aligned base (am_arena_hdrs(), am_arena_base()); apart, so that no entry
 * pays padding for a word lookups never read.
 */
struct am_arena {
	void *raw;		/* the allocation; the base is aligned inside it */
	u32 size;		/* entries */
	u32 chunk;		/* entries a stripe takes at once */
	u32 claimed;		/* entries handed out to stripes (RELAXED CAS) */
};

/* A rebuild in progress (protocol 4); under rebuild_lock unless said. */
struct am_rebuild {
	struct anchormap_index *next;
	u32 born[ANCHORMAP_STRIPES];	/* per stripe: from this ref on, writers add to next */
	u32 narenas;
	/* positions before arena k: prefix sums of the arenas' claimed entries at start */
	size_t base[ANCHORMAP_MAX_SEGMENTS + 1];
	size_t pos;		/* next entry position to copy */
	size_t done;		/* positions copied (ACQ_REL add) */
	int ready;		/* chunks may be taken (RELEASE/ACQUIRE) */
};

/*
 * The writer state of a map (map->wstate): what writers and exclusive
 * operations use and lookups never touch, allocated apart from struct
 * anchormap so that the lookups' fields stay read-mostly.  NULL once the
 * map is destroyed (or its init failed).
 */
struct anchormap_writer_state {
	struct am_stripe stripes[ANCHORMAP_STRIPES];
	struct am_arena arenas[ANCHORMAP_MAX_SEGMENTS];
	struct am_rebuild rb;
	struct anchormap_index *retired;	/* replaced indexes, newest first */
	u32 cur;			/* the arena chunks come from (only grows) */
	u64 rebuilds;
	u64 discards;			/* rebuilds given up: an entry found no room */
	amp_grow_lock_t grow_lock;	/* storage growth */
	amp_grow_lock_t rebuild_lock;	/* starting and ending a rebuild */
	struct amp_lock_class lclass;	/* the lock classes of this map's locks */
	struct anchormap_params params;	/* what the map was made with */
	struct amp_registry_node reg;
} __aligned(AM_LINE);

/* What a writer puts into a freshly claimed entry. */
struct am_filler {
	const void *value;	/* copied when set, else the value is zeroed */
	void (*init)(void *value, const void *key, void *arg);
	int (*try_init)(void *value, const void *key, void *arg);
	void *arg;
};

/* A place in an index: group and slot. */
struct am_place {
	struct anchormap_group *g;
	unsigned int i;
};

/* ---------------------------------------------------------------------
 * Atomic accessors: every shared access goes through one of these
 */

#define am_load_relaxed(p)	__atomic_load_n((p), __ATOMIC_RELAXED)
#define am_load_acquire(p)	__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define am_store_relaxed(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define am_store_release(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)
/* RELAXED CAS: used where no data flows through the value (claims, credits) */
#define am_cas_relaxed(p, old, new)						\
	__atomic_compare_exchange_n((p), (old), (new), false, __ATOMIC_RELAXED,	\
				    __ATOMIC_RELAXED)
#define am_add_relaxed(p, d)	__atomic_fetch_add((p), (d), __ATOMIC_RELAXED)
#define am_or_relaxed(p, v)	__atomic_fetch_or((p), (v), __ATOMIC_RELAXED)

/* Counters written under the stripe lock, read lock-free. */
#define am_counter_add(p, d)	am_store_relaxed((p), am_load_relaxed(p) + (d))

#define AM_STRIPE_OF(h)		((unsigned int)((h) >> 32) & (ANCHORMAP_STRIPES - 1))

static __always_inline struct am_stripe *am_stripe_of(const struct anchormap *map, u64 h)
{
	return &map->wstate->stripes[AM_STRIPE_OF(h)];
}

static inline bool am_atomic(const struct anchormap *map)
{
	return map->flags & ANCHORMAP_F_ATOMIC;
}

/* ---------------------------------------------------------------------
 * Entries, groups and tags
 */

/* @ks: a constant key size (built-in hash and compare) or AM_GENERIC */
#define AM_GENERIC	0

static __always_inline u8 *am_entry(const struct anchormap *map, u32 ref)
{
	return (u8 *)__anchormap_entry(map, ref, map->entry_size);
}

/* Arenas are aligned to a cache line, or to the values' alignment if larger. */
static __always_inline size_t am_arena_align(const struct anchormap *map)
{
	return am_max(map->value_align, AM_LINE);
}

static __always_inline u32 *am_arena_hdrs(const struct am_arena *ar)
{
	return (u32 *)ar->raw;
}

static __always_inline u8 *am_arena_base(const struct anchormap *map, const struct am_arena *ar)
{
	return (u8 *)am_align_up((uintptr_t)(am_arena_hdrs(ar) + ar->size), am_arena_align(map));
}

/* The header word of entry @ref (protocol 1) */
static __always_inline u32 *am_hdr(const struct anchormap *map, u32 ref)
{
	return am_arena_hdrs(&map->wstate->arenas[ref >> __ANCHORMAP_REF_SHIFT]) +
	       (ref & (AM_ARENA_MAX - 1));
}

static __always_inline u32 am_hdr_word(u32 state, unsigned int stripe)
{
	return state | (u32)stripe << AM_HDR_STRIPE_SHIFT;
}

static __always_inline unsigned int am_hdr_stripe(u32 hdr)
{
	return hdr >> AM_HDR_STRIPE_SHIFT;
}

/*
 * The group at byte offset @off of @idx's groups.  Probes walk in bytes, as
 * the home group's offset is (__anchormap_home_off()): the home group, then
 * triangular steps of 1, 2, 3... groups, which visit every group once.
 */
static __always_inline struct anchormap_group *am_group_at(const struct anchormap_index *idx,
							   size_t off)
{
	return (struct anchormap_group *)((u8 *)__anchormap_groups(idx) + off);
}

/* ---------------------------------------------------------------------
 * Helpers of anchormap.c that anchormap_snapshot.c uses (exclusive)
 */

void am_walk_owned(struct anchormap *map,
		   void (*fn_live)(struct anchormap *map, u8 *e, void *arg), void *arg);
void am_reset(struct anchormap *map);
int am_compact(struct anchormap *map);

#endif /* _ANCHORMAP_INTERNAL_H */
