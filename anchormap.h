/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * anchormap: a concurrent hash map whose entries never move.
 *
 * Lookups are lock-free and return plain pointers into the map.  Such a
 * pointer stays valid, and the key and value bytes it points at are never
 * changed by the map, until anchormap_destroy() or an *exclusive* operation
 * runs.  No lock, RCU read section, guard or epoch pin is needed to use it.
 *
 * Three kinds of operation, named in every kernel-doc below:
 *
 *  - shared, lock-free: any number of threads/CPUs, any context (process,
 *    softirq, hardirq), never sleeps, never locks.
 *  - shared, stripe-locked: writers; they take one of 64 stripe locks chosen
 *    by the key's hash and may run concurrently with each other and with
 *    lookups.  anchormap_remove() only marks the entry removed: its bytes
 *    stay readable for whoever still holds a pointer, and its storage is
 *    never reused for other bytes while the map is shared (a key inserted
 *    again gets a new entry).
 *  - exclusive: the caller guarantees that no other thread uses the map
 *    during the call and that no pointer obtained before the call is used
 *    after it.  Only these reclaim removed entries or move entries.
 *
 * Errors are negative errno values; functions returning pointers encode
 * them with ERR_PTR().
 */
#ifndef _ANCHORMAP_H
#define _ANCHORMAP_H

/* The release, for MODULE_VERSION and pkg-config. */
#define ANCHORMAP_VERSION	"0.1.0"

/*
 * The version of what anchormap_get_fast() compiles into a client: the
 * private layout below, the built-in hash, the control-byte encoding and
 * the first probe step.  Bump it with any change to them: a client built
 * against another version then takes the exported lookup (the map's
 * fast_sig carries the library's version; see __anchormap_fast_sig()).
 * 1..127; stays in the same place in struct anchormap for ever.
 */
#define ANCHORMAP_ABI_VERSION	2
#ifndef __ANCHORMAP_CLIENT_ABI
/* what this client was built against; only tests of the fallback set it */
#define __ANCHORMAP_CLIENT_ABI	ANCHORMAP_ABI_VERSION
#endif

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/err.h>
#include <linux/rcupdate.h>
#include <linux/version.h>

/*
 * A lookup holds rcu_read_lock() while it reads the index, which a rebuild
 * replaces and frees after a grace period; the entry it returns lives in
 * storage, which RCU does not govern: the caller holds nothing.
 */
#define __anchormap_read_lock()		rcu_read_lock()
#define __anchormap_read_unlock()	rcu_read_unlock()

/*
 * The module exports its symbols in namespace ANCHORMAP: a client module
 * says ANCHORMAP_IMPORT_NS(); (a bare token up to 6.12, a string later).
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 13, 0)
#define ANCHORMAP_IMPORT_NS()	MODULE_IMPORT_NS("ANCHORMAP")
#else
#define ANCHORMAP_IMPORT_NS()	MODULE_IMPORT_NS(ANCHORMAP)
#endif
#else
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>

/*
 * The kernel's fixed-width names, for userspace.  A program with its own
 * u8..u64 defines ANCHORMAP_NO_KERNEL_TYPES before including this header
 * (its types must have the same widths).
 */
#ifndef ANCHORMAP_NO_KERNEL_TYPES
typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
#endif

/* The kernel's <linux/compiler_types.h> spellings, for userspace. */
#ifndef __always_inline
#define __always_inline	inline __attribute__((__always_inline__))
#endif
#ifndef __aligned
#define __aligned(x)	__attribute__((__aligned__(x)))
#endif

/* Userspace keeps replaced indexes until an exclusive operation: no lock. */
#define __anchormap_read_lock()		do { } while (0)
#define __anchormap_read_unlock()	do { } while (0)

#ifndef ANCHORMAP_NO_ERR_PTR
#define MAX_ERRNO	4095
#define IS_ERR_VALUE(x)	((unsigned long)(void *)(x) >= (unsigned long)-MAX_ERRNO)

static inline void *ERR_PTR(long error)
{
	return (void *)error;
}

static inline long PTR_ERR(const void *ptr)
{
	return (long)ptr;
}

static inline bool IS_ERR(const void *ptr)
{
	return IS_ERR_VALUE((unsigned long)ptr);
}

static inline bool IS_ERR_OR_NULL(const void *ptr)
{
	return !ptr || IS_ERR_VALUE((unsigned long)ptr);
}
#endif /* ANCHORMAP_NO_ERR_PTR */
#endif /* __KERNEL__ */

/* Writers take 1 << ANCHORMAP_STRIPE_SHIFT stripe locks, chosen by hash. */
#define ANCHORMAP_STRIPE_SHIFT	6
#define ANCHORMAP_STRIPES	(1 << ANCHORMAP_STRIPE_SHIFT)
/*
 * Storage arenas grow by half of what the map has (at most 2^26 entries
 * each): 48 of them hold about 2^31 entries.
 */
#define ANCHORMAP_MAX_SEGMENTS	48

/*
 * ANCHORMAP_F_ATOMIC: writers may run in any context but NMI: softirq,
 * hardirq (also a hard hrtimer on PREEMPT_RT), under a spinlock_t or a
 * raw_spinlock_t, with interrupts off.  In the kernel the stripes and the
 * growth lock are then raw spinlocks taken with interrupts off, and growth
 * allocates without sleeping (GFP_ATOMIC) with no lock of the map held, so
 * it fails more easily: call anchormap_reserve() from process context first.
 * Growth never allocates in hardirq, on any kernel, nor on PREEMPT_RT with
 * interrupts off or a raw_spinlock_t held (the allocator must not run
 * there): an insert that needs room there fails with -ENOMEM unless
 * reserved.  On non-RT kernels growth under a raw_spinlock_t would
 * allocate and CONFIG_PROVE_RAW_LOCK_NESTING reports it: reserve first.
 * The _with init callbacks of an atomic map run under its raw stripe lock,
 * so the same holds for writes from them into another atomic map.
 * Memory given up in such a context (destroy, an arena or index not needed) is
 * freed later by a work item.
 */
#define ANCHORMAP_F_ATOMIC	0x1u
#define ANCHORMAP_F_ALL		ANCHORMAP_F_ATOMIC

/**
 * struct anchormap_params - what a map stores and how it hashes, fixed at init
 * @key_size:    bytes of key copied into each slot, > 0.
 * @value_size:  bytes of value copied into each slot; 0 makes the map a set.
 * @value_align: alignment of the value in the slot, a power of two up to
 *               4096; 0 picks the natural one (largest power of two dividing
 *               @value_size, at most 16).
 * @flags:       ANCHORMAP_F_*.
 * @hash:        NULL for the built-in keyed hash (fast, seeded per map);
 *               anchormap_hash_siphash() for DoS resistance; or your own.
 * @equal:       NULL compares the key bytes.  Must agree with @hash.
 * @release:     called exactly once per entry the map still owns when it
 *               lets go of it (destroy, clear, retain, shrink of a removed
 *               slot...), never for entries handed to the caller by
 *               anchormap_remove_entry() or anchormap_drain().  May be NULL.
 * @priv:        passed to @release.
 * @name:        shown in statistics (/proc/anchormap in the kernel); the
 *               string must outlive the map.  NULL shows "anchormap".
 */
struct anchormap_params {
	u32 key_size;
	u32 value_size;
	u32 value_align;
	u32 flags;
	u64 (*hash)(const void *key, u32 key_size, u64 seed);
	bool (*equal)(const void *a, const void *b, u32 key_size);
	void (*release)(void *key, void *value, void *priv);
	void *priv;
	const char *name;
};

struct anchormap_index;		/* layout at the end: private */
struct anchormap_shared;

/**
 * struct anchormap - the map; caller-allocated and embeddable
 *
 * All fields are private.  The first group is read by every lookup and
 * written only by init, growth (append-only, see anchormap.c) and exclusive
 * operations, so it stays shared in every CPU's cache.
 */
struct anchormap {
	/* private: */
	u64 seed;
	u64 fast_sig;			/* __anchormap_fast_sig() of the params */
	struct anchormap_index *index;	/* the current index: every lookup */
	u64 (*hash)(const void *key, u32 key_size, u64 seed);
	bool (*equal)(const void *a, const void *b, u32 key_size);
	u32 key_size;
	u32 value_size;
	u32 value_off;
	u32 entry_size;
	u32 nseg;			/* arenas of storage */
	u32 lookup_ks;
	/* storage: arena n's entries at arena_bias[n] + ref * entry_size */
	uintptr_t arena_bias[ANCHORMAP_MAX_SEGMENTS];
	u32 hdr_off;
	/* writer side: the index being built, stripes, locks; separately allocated */
	struct anchormap_index *next;
	struct anchormap_shared *shared;
	void (*release)(void *key, void *value, void *priv);
	void *priv;
	const char *name;
	u32 value_align;
	u32 flags;
};

/**
 * struct anchormap_iter - iteration cursor; caller-allocated, all private
 *
 * Storage is walked in order, arena by arena, entry by entry.  Per stripe,
 * the reference its writers would give their next entry at
 * anchormap_iter_init(): entries from there on were inserted after the walk
 * began and are skipped, so that a key removed and re-inserted during the
 * walk is not yielded twice.
 */
struct anchormap_iter {
	/* private: */
	const struct anchormap *map;
	u32 arena;
	u32 narenas;
	u32 pos;
	u32 end;
	u32 born[ANCHORMAP_STRIPES];
};

/**
 * struct anchormap_entry - a looked-up place for one key (exclusive use)
 */
struct anchormap_entry {
	/* private: */
	struct anchormap *map;
	const void *key;
	u64 hash;
	void *slot;		/* the entry, or NULL */
};

/**
 * struct anchormap_stats - a snapshot of a map's shape
 * @len:           live entries.
 * @capacity:      entries storable before the next growth.
 * @segments:      storage arenas allocated.
 * @slots:         slots of the current index.
 * @deleted:       entries removed under shared access and not yet reclaimed
 *                 (their storage stays until an exclusive operation).
 * @bytes:         bytes allocated for the map (storage, indexes, stripes).
 * @longest_probe: most groups an insert has probed in the index.
 * @contended:     times a writer found its stripe lock already held.
 * @name:          the map's name.
 * @entries:       storage entries allocated (used or not).
 * @index_used:    tags of the current index that left EMPTY (live entries
 *                 and tombstones).
 * @index_bytes:   bytes of the current index.
 * @retired_bytes: bytes of replaced indexes kept until an exclusive
 *                 operation (readers may still be probing them).
 * @rebuilds:      indexes built since init (growth and tombstone clean-up).
 */
struct anchormap_stats {
	size_t len;
	size_t capacity;
	size_t segments;
	size_t slots;
	size_t deleted;
	size_t bytes;
	u32 longest_probe;
	u64 contended;
	const char *name;
	size_t entries;
	size_t index_used;
	size_t index_bytes;
	size_t retired_bytes;
	u64 rebuilds;
};

/* ---- life cycle ---- */

/**
 * anchormap_init() - set up a map for @capacity entries without growth
 * @map:      caller-allocated map.
 * @p:        parameters, copied (the @name string and @priv are not).
 * @capacity: entries to hold before the first growth; 0 is fine.
 *
 * Context: process context; may sleep (also for ANCHORMAP_F_ATOMIC maps:
 * their storage and index are allocated with GFP_KERNEL, so they may be
 * large).
 * Return: 0; -EINVAL for NULL or bad params; -ENOMEM when storage or the
 * index cannot be allocated (or @capacity is absurd).  On error nothing
 * is allocated and @map must not be used.
 */
int anchormap_init(struct anchormap *map, const struct anchormap_params *p, size_t capacity);

/**
 * anchormap_destroy() - release every entry and free the map's memory
 * @map: the map.
 *
 * Context: exclusive.  May sleep unless the map is ANCHORMAP_F_ATOMIC.
 * Calls @release on every entry the map still owns (live or removed).
 */
void anchormap_destroy(struct anchormap *map);

/* ---- shared, lock-free ---- */

/**
 * anchormap_get() - look up a key
 * @map: the map.
 * @key: the key (key_size bytes).
 *
 * Context: shared, lock-free, any context.
 * Return: the stored value (valid until destroy or an exclusive op), or NULL.
 */
const void *anchormap_get(const struct anchormap *map, const void *key);

/**
 * anchormap_get_key_value() - look up a key, returning the stored key too
 * @map: the map.
 * @key: the key (key_size bytes).
 * @value: if not NULL, receives the stored value (or NULL).
 *
 * Context: shared, lock-free, any context.
 * Return: the stored key, or NULL when absent.
 */
const void *anchormap_get_key_value(const struct anchormap *map, const void *key,
				    const void **value);

/**
 * anchormap_contains_key() - is the key present?
 * @map: the map.
 * @key: the key (key_size bytes).
 *
 * Context: shared, lock-free, any context.
 * Return: true if @key is present.
 */
bool anchormap_contains_key(const struct anchormap *map, const void *key);

/**
 * anchormap_len() - number of live entries (exact when no writer runs)
 * @map: the map.
 *
 * Context: shared, lock-free; sums 64 per-stripe counters.
 * Return: the number of live entries.
 */
size_t anchormap_len(const struct anchormap *map);

/** anchormap_is_empty() - anchormap_len() == 0.  Context: shared, lock-free. */
bool anchormap_is_empty(const struct anchormap *map);

/**
 * anchormap_capacity() - entries storable before the next growth
 * @map: the map.
 *
 * Context: shared, lock-free.
 * Return: entries storable before the next growth.
 */
size_t anchormap_capacity(const struct anchormap *map);

/**
 * anchormap_iter_init() - start a walk over the map
 * @it: caller-allocated cursor.
 * @map: the map to walk.
 *
 * Context: shared, lock-free.  Every entry present for the whole walk is
 * seen exactly once; entries inserted or removed meanwhile may or may not
 * be seen; no key is seen twice.
 */
void anchormap_iter_init(struct anchormap_iter *it, const struct anchormap *map);

/**
 * anchormap_iter_next() - next entry of a walk
 * @it:    the cursor.
 * @key:   receives a pointer to the key (valid as for lookups); may be NULL.
 * @value: receives a pointer to the value (valid as for lookups); may be NULL.
 *
 * Context: shared, lock-free.
 * Return: true with an entry, false at the end.
 */
bool anchormap_iter_next(struct anchormap_iter *it, const void **key, const void **value);

#define anchormap_for_each(map, it, k, v)				\
	for (anchormap_iter_init((it), (map));				\
	     anchormap_iter_next((it), (k), (v));)

/* ---- shared, writers serialised per stripe ---- */

/**
 * anchormap_insert() - insert a key if absent (the first value wins)
 * @map: the map.
 * @key: the key (key_size bytes), copied.
 * @value: value_size bytes to copy, or NULL for a zero-filled value.
 *
 * Context: shared, stripe-locked; may sleep to grow unless ANCHORMAP_F_ATOMIC.
 * Return: 1 inserted; 0 already present (map unchanged); -EINVAL for NULL
 * @map or @key; -ENOMEM when growth failed.
 */
int anchormap_insert(struct anchormap *map, const void *key, const void *value);

/**
 * anchormap_remove() - remove a key (its entry is marked removed, not freed)
 * @map: the map.
 * @key: the key (key_size bytes).
 *
 * Pointers to the removed entry held by other threads stay readable and
 * unchanged; its storage is reclaimed (and @release called) only by an
 * exclusive operation or destroy.  Its index slot becomes a tombstone that
 * a later insert may reuse.
 *
 * Context: shared, stripe-locked; never sleeps.
 * Return: 1 removed, 0 absent, -EINVAL for NULL @map or @key.
 */
int anchormap_remove(struct anchormap *map, const void *key);

/**
 * anchormap_get_or_insert() - the value for @key, inserting @value if absent
 * @map: the map.
 * @key: the key (key_size bytes), copied.
 * @value: value_size bytes to copy if absent, or NULL for zero.
 *
 * Context: shared, stripe-locked; may sleep to grow unless ANCHORMAP_F_ATOMIC.
 * Return: the stored value, or ERR_PTR(-EINVAL / -ENOMEM).
 */
const void *anchormap_get_or_insert(struct anchormap *map, const void *key, const void *value);

/**
 * anchormap_get_or_insert_with() - like get_or_insert, value built by @init
 * @map: the map.
 * @key: the key (key_size bytes), copied.
 * @init: fills the (zeroed) value in place; runs at most once, only when
 *        the key is absent, under the stripe lock (it must not sleep or
 *        touch this map).
 * @arg: passed to @init.
 *
 * Context: shared, stripe-locked; may sleep to grow unless ANCHORMAP_F_ATOMIC.
 * Return: the stored value, or ERR_PTR(-EINVAL / -ENOMEM).
 */
const void *anchormap_get_or_insert_with(struct anchormap *map, const void *key,
		void (*init)(void *value, const void *key, void *arg), void *arg);

/**
 * anchormap_get_or_try_insert_with() - like get_or_insert_with, @init may fail
 * @map: the map.
 * @key: the key (key_size bytes), copied.
 * @init: returns 0 or a negative errno (-MAX_ERRNO..-1); on error nothing
 *        is inserted (the claimed entry is left dead, counted as deleted,
 *        never released).
 * @arg: passed to @init.
 *
 * Context: shared, stripe-locked; may sleep to grow unless ANCHORMAP_F_ATOMIC.
 * Return: the stored value, ERR_PTR(-ENOMEM / -EINVAL), or ERR_PTR of
 * @init's error; an @init code out of that contract (positive, or below
 * -MAX_ERRNO) gives ERR_PTR(-EINVAL).
 */
const void *anchormap_get_or_try_insert_with(struct anchormap *map, const void *key,
		int (*init)(void *value, const void *key, void *arg), void *arg);

/**
 * anchormap_reserve() - make room for @additional more inserts without growth
 * @map: the map.
 * @additional: inserts to make room for.
 *
 * This is how an ANCHORMAP_F_ATOMIC map gets room for its atomic writers:
 * the allocation here may sleep (GFP_KERNEL), so it can be large and is
 * unlikely to fail, where growth from an atomic writer may not sleep.
 *
 * Context: shared; process context; may sleep.
 * Return: 0, -EINVAL, or -ENOMEM (the map is unchanged).
 */
int anchormap_reserve(struct anchormap *map, size_t additional);

/* ---- exclusive: no other user, and earlier pointers die ---- */

/**
 * anchormap_get_mut() - look up a key for in-place change
 * @map: the map.
 * @key: the key (key_size bytes).
 *
 * Context: exclusive.
 * Return: the value, writable until the next exclusive op, or NULL.
 */
void *anchormap_get_mut(struct anchormap *map, const void *key);

/**
 * anchormap_modify() - run @fn on the value of @key
 * @map: the map.
 * @key: the key (key_size bytes).
 * @fn: changes the value in place.
 * @arg: passed to @fn.
 *
 * Context: exclusive.
 * Return: true if the key was present (and @fn ran).
 */
bool anchormap_modify(struct anchormap *map, const void *key,
		      void (*fn)(void *value, const void *key, void *arg), void *arg);

/**
 * anchormap_remove_entry() - remove a key and hand its bytes to the caller
 * @map: the map.
 * @key: the key (key_size bytes).
 * @key_out:   receives a copy of the stored key; may be NULL.
 * @value_out: receives a copy of the stored value; may be NULL.
 *
 * @release is not called: ownership moves to the caller.  The entry's
 * storage is reclaimed by the next compaction.
 *
 * Context: exclusive.
 * Return: 1 removed, 0 absent, -EINVAL.
 */
int anchormap_remove_entry(struct anchormap *map, const void *key, void *key_out, void *value_out);

/**
 * anchormap_clear() - release every entry; keeps the biggest arena and the index
 * @map: the map.
 *
 * Context: exclusive.  May sleep unless ANCHORMAP_F_ATOMIC.
 */
void anchormap_clear(struct anchormap *map);

/**
 * anchormap_drain() - hand every live entry to @fn, then clear
 * @map: the map.
 * @fn: owns the entry (release is not called for it); NULL makes drain a
 *       clear (the map still owns the entries, so it releases them).
 * @arg: passed to @fn.
 *
 * Context: exclusive.  May sleep unless ANCHORMAP_F_ATOMIC.
 */
void anchormap_drain(struct anchormap *map, void (*fn)(void *key, void *value, void *arg),
		     void *arg);

/**
 * anchormap_retain() - keep only the entries for which @keep returns true
 * @map: the map.
 * @keep: returns true for the entries to keep.
 * @arg: passed to @keep.
 *
 * Dropped entries are released at once.  Removed entries are reclaimed by
 * compacting into one arena and one index; if that allocation fails the
 * map stays correct with its removed entries counted in anchormap_stats().
 *
 * Context: exclusive.  May sleep unless ANCHORMAP_F_ATOMIC.
 */
void anchormap_retain(struct anchormap *map,
		      bool (*keep)(const void *key, void *value, void *arg), void *arg);

/**
 * anchormap_shrink_to_fit() - compact into one right-sized arena and index
 * @map: the map.
 *
 * Releases removed entries, leaves none, and frees replaced indexes.
 *
 * Context: exclusive.  May sleep unless ANCHORMAP_F_ATOMIC.
 * Return: 0, or -ENOMEM with the map unchanged.
 */
int anchormap_shrink_to_fit(struct anchormap *map);

/**
 * anchormap_iter_next_mut() - next entry with a writable value
 * @it: the cursor.
 * @key: receives a pointer to the key; may be NULL.
 * @value: receives a pointer to the writable value; may be NULL.
 *
 * Context: exclusive (start with anchormap_iter_init()).
 * Return: true with an entry, false at the end.
 */
bool anchormap_iter_next_mut(struct anchormap_iter *it, const void **key, void **value);

/* ---- entry API, exclusive ---- */

/**
 * anchormap_entry() - find the place of @key
 * @map: the map.
 * @key: the key (key_size bytes).
 * @e: caller-allocated; @key must stay valid while @e is used.
 *
 * Context: exclusive.
 * Return: @e, or NULL for NULL arguments.
 */
struct anchormap_entry *anchormap_entry(struct anchormap *map, const void *key,
					struct anchormap_entry *e);

/** anchormap_entry_is_occupied() - does the entry hold a value?  Exclusive. */
bool anchormap_entry_is_occupied(const struct anchormap_entry *e);

/**
 * anchormap_entry_and_modify() - run @fn on the value if occupied
 * @e: an entry from anchormap_entry().
 * @fn: changes the value in place.
 * @arg: passed to @fn.
 *
 * Context: exclusive.
 * Return: @e.
 */
struct anchormap_entry *anchormap_entry_and_modify(struct anchormap_entry *e,
		void (*fn)(void *value, const void *key, void *arg), void *arg);

/**
 * anchormap_entry_or_insert() - the value, inserting @value if vacant
 * @e: an entry from anchormap_entry().
 * @value: value_size bytes, or NULL for zero (Rust's or_default()).
 *
 * Context: exclusive.
 * Return: the writable value, or ERR_PTR(-ENOMEM / -EINVAL).
 */
void *anchormap_entry_or_insert(struct anchormap_entry *e, const void *value);

/**
 * anchormap_entry_or_insert_with() - the value, built by @init if vacant
 * @e: an entry from anchormap_entry().
 * @init: fills the (zeroed) value in place, only when vacant.
 * @arg: passed to @init.
 *
 * Context: exclusive.
 * Return: the writable value, or ERR_PTR(-ENOMEM / -EINVAL).
 */
void *anchormap_entry_or_insert_with(struct anchormap_entry *e,
		void (*init)(void *value, const void *key, void *arg), void *arg);

/* ---- whole map ---- */

/**
 * anchormap_clone() - a new map @dst holding a copy of every entry of @src
 * @dst: caller-allocated, uninitialised map.
 * @src: the map to copy.
 *
 * @dst gets @src's params (and so its @release: clone only maps whose
 * values can be released twice, or set no @release).
 *
 * Context: @src shared (lock-free walk: entries changed meanwhile may or
 * may not be copied); may sleep unless ANCHORMAP_F_ATOMIC.
 * Return: 0, -EINVAL, or -ENOMEM with @dst left uninitialised.
 */
int anchormap_clone(struct anchormap *dst, const struct anchormap *src);

/**
 * anchormap_equal() - same key set and equal value bytes?
 * @a: a map.
 * @b: another map.
 *
 * Context: shared, lock-free (meaningful when no writer runs).
 * Return: true if both maps hold the same keys with equal value bytes.
 */
bool anchormap_equal(const struct anchormap *a, const struct anchormap *b);

/**
 * anchormap_extend() - insert @n keys and values from two arrays
 * @map: the map.
 * @keys: n * key_size bytes.
 * @values: n * value_size bytes, or NULL for zero values.
 * @n: number of keys.
 *
 * Context: shared, stripe-locked; may sleep unless ANCHORMAP_F_ATOMIC.
 * Return: how many keys were new, or -EINVAL (also for @n > INT_MAX) /
 * -ENOMEM (the keys before the failing one stay inserted).
 */
int anchormap_extend(struct anchormap *map, const void *keys, const void *values, size_t n);

/**
 * anchormap_stats() - a snapshot of the map's shape
 * @map: the map.
 * @st: receives the snapshot.
 *
 * Context: shared, lock-free.
 */
void anchormap_stats(const struct anchormap *map, struct anchormap_stats *st);

/* ---- snapshots (format: docs/snapshot-format.md) ---- */

/**
 * anchormap_save() - write every entry to a byte stream
 * @map: the map.
 * @write: called with consecutive pieces of the snapshot; returns 0, or a
 *         negative errno that ends the save.
 * @arg: passed to @write.
 *
 * The snapshot holds every entry present for the whole save, exactly once;
 * entries inserted or removed meanwhile may or may not be in it.  Values
 * are copied as opaque bytes: pointers inside them are the caller's
 * business.
 *
 * Context: shared, lock-free (may run while others read and write); may
 * sleep unless ANCHORMAP_F_ATOMIC.
 * Return: 0, -EINVAL, -ENOMEM, or @write's error.
 */
int anchormap_save(const struct anchormap *map,
		   int (*write)(const void *buf, size_t len, void *arg), void *arg);

/**
 * anchormap_load() - fill an empty map from a snapshot
 * @map: the map.
 * @read: fills up to @len bytes of @buf; returns the number of bytes
 *        placed (fewer than @len only at the end of the data), or a
 *        negative errno.  anchormap_load() never asks for more than the
 *        snapshot's next field and uses only what @read returned.
 * @arg: passed to @read.
 *
 * The map must be initialised, empty, with the snapshot's key and value
 * sizes.  Everything is validated: on any error the map is left empty and
 * consistent (no @release is called for entries read from the snapshot).
 *
 * Context: exclusive; may sleep unless ANCHORMAP_F_ATOMIC.
 * Return: 0; -EINVAL (NULL, non-empty map, size mismatch); -EBADMSG (bad
 * magic, byte order, checksum, count, block, or a duplicate key);
 * -EPROTONOSUPPORT (unknown version); -ENODATA (truncated); -ENOMEM; or
 * @read's error.
 */
int anchormap_load(struct anchormap *map, int (*read)(void *buf, size_t len, void *arg),
		   void *arg);

/* ---- hashing ---- */

/**
 * anchormap_hash_default() - the built-in keyed hash (fast, not DoS-hard)
 * @key: the key.
 * @key_size: its length in bytes.
 * @seed: the map's seed.
 * Return: the 64-bit hash of @key.
 */
u64 anchormap_hash_default(const void *key, u32 key_size, u64 seed);

/**
 * anchormap_hash_siphash() - SipHash-2-4 keyed by (seed, mix(seed))
 * @key: the key.
 * @key_size: its length in bytes.
 * @seed: the map's seed.
 *
 * Pass as @hash to make collisions hard to provoke from outside.
 * Return: the 64-bit hash of @key.
 */
u64 anchormap_hash_siphash(const void *key, u32 key_size, u64 seed);

/** anchormap_siphash24() - SipHash-2-4 with a full 128-bit key (k0, k1). */
u64 anchormap_siphash24(const void *data, size_t len, u64 k0, u64 k1);

/* ---- inline lookup ---- */

/**
 * anchormap_get_fast() - anchormap_get(), inlined into the caller
 * @map:    the map.
 * @key:    the key.
 * @params: the params the map was initialised with, a compile-time constant
 *          (a static const struct, as for rhashtable_lookup_fast()).
 *
 * The same lookup as anchormap_get(), compiled into the caller as
 * rhashtable_lookup_fast() is: with the key size, value size and alignment
 * and the hash and compare functions of @params known, the entry layout is
 * a constant, the hash and key compare inline, and the common case (a
 * candidate of the home group matches, or the group shows the key absent)
 * makes no call.  Anything else is one call into the library.  Only
 * @key_size, @value_size, @value_align, @hash and @equal of @params are
 * used; if any differs from the map's, the lookup is anchormap_get() (the
 * same answer, slower).
 *
 * Context: shared, lock-free, any context.
 * Return: the stored value (valid until destroy or an exclusive op), or NULL.
 */
static __always_inline const void *
anchormap_get_fast(const struct anchormap *map, const void *key,
		   const struct anchormap_params params);

/*
 * Interleaving hooks, compiled only into test builds of the core
 * (-DANCHORMAP_TEST_HOOKS): the core calls anchormap_test_hook, when set, at
 * each of these points, so that a test can run another thread's operations
 * exactly there and make a bad interleaving certain rather than likely.
 * Other builds name the points and never call anything.
 */
enum anchormap_test_point {
	ANCHORMAP_TP_ITER_NEXT,		/* a walk, entering the step to its next entry */
	ANCHORMAP_TP_GROW_PUBLISH,	/* storage growth, before publishing nseg */
	ANCHORMAP_TP_REBUILD_SWEEP,	/* a rebuild, its index published, before the sweep */
	ANCHORMAP_TP_REBUILD_CHUNK,	/* a rebuild, before each chunk it copies */
	ANCHORMAP_TP_REBUILD_SWITCH,	/* a rebuild, done, before its index is current */
	ANCHORMAP_TP_LOOKUP_REF,	/* a lookup, between a candidate's tag and reference */
	ANCHORMAP_TP_PUBLISH_TAG,	/* an insert, between storing the reference and the tag */
};

#ifdef ANCHORMAP_TEST_HOOKS
extern void (*anchormap_test_hook)(const struct anchormap *map, enum anchormap_test_point point);
#define __ANCHORMAP_TEST_POINT(map, point) do {					\
	if (anchormap_test_hook)						\
		anchormap_test_hook((map), (point));				\
} while (0)
#else
#define __ANCHORMAP_TEST_POINT(map, point) ((void)(map), (void)(point))
#endif

/*
 * Everything below is private: the layout of the index and of storage and
 * the first step of a lookup, in the header only so that
 * anchormap_get_fast() can inline.  anchormap.c uses the same helpers (and
 * states their memory ordering).
 */

/*
 * One group of the index: one cache line.  12 tags (EMPTY, TOMBSTONE,
 * RESERVED or FULL | 7 hash bits), the overflow byte (bit (h >> 40) & 7 is
 * set once a key whose home is this group was placed in a later group, so
 * that a miss stops at its home group however full it is), and 12 entry
 * references: arena << __ANCHORMAP_REF_SHIFT | entry number in the arena.
 */
struct anchormap_group {
	u8 tag[12];
	u8 overflow;
	u8 pad[3];
	u32 ref[12];
} __aligned(64);

/*
 * An index: a header of two cache lines, then the groups.  Never changed
 * in size; replaced by a rebuilt one (anchormap.c, "Rebuild").
 */
struct anchormap_index {
	/* read by every probe */
	size_t gmask;			/* groups - 1 */
	/* read by writers and statistics */
	size_t nslots;
	size_t limit;			/* tags that may leave EMPTY: 7/8 */
	size_t chunk;			/* credits a stripe takes at once */
	size_t bytes;			/* size of this allocation */
	struct anchormap_index *older;	/* retired indexes, newest first */
	void *retire[2];		/* the platform's, once retired (kernel: RCU) */
	/* non-EMPTY tags not yet handed out; writers touch it once per chunk */
	long avail __aligned(64);
	int broken;			/* a rebuild could not place an entry */
} __aligned(64);

#define __ANCHORMAP_INDEX_HDR	128
#define __ANCHORMAP_GROUP	12
#define __ANCHORMAP_GROUP_MASK	0xfffu
#define __ANCHORMAP_FULL_BIT	0x80
#define __ANCHORMAP_OVF_SHIFT	40
#define __ANCHORMAP_REF_SHIFT	26
#define __ANCHORMAP_REF_MASK	((1u << __ANCHORMAP_REF_SHIFT) - 1)
#define __ANCHORMAP_LSB		0x0101010101010101ULL
#define __ANCHORMAP_MSB		0x8080808080808080ULL
#define __ANCHORMAP_MAX_FIELD	(1u << 20)	/* largest key or value, bytes */
#define __ANCHORMAP_MAX_ALIGN	4096u		/* largest value_align */
#define __ANCHORMAP_K0		0x9e3779b97f4a7c15ULL
#define __ANCHORMAP_K1		0xc2b2ae3d27d4eb4fULL
#define __ANCHORMAP_K2		0x165667b19e3779f9ULL
#define __ANCHORMAP_K3		0xd6e8feb86659fd93ULL

#ifdef __cplusplus
#define __ANCHORMAP_STATIC_ASSERT(c, msg)	static_assert(c, msg)
#else
#define __ANCHORMAP_STATIC_ASSERT(c, msg)	_Static_assert(c, msg)
#endif
__ANCHORMAP_STATIC_ASSERT(sizeof(struct anchormap_group) == 64, "a group is one cache line");
__ANCHORMAP_STATIC_ASSERT(sizeof(struct anchormap_index) <= __ANCHORMAP_INDEX_HDR,
			  "the groups start after the index header");

static __always_inline const struct anchormap_group *
__anchormap_groups(const struct anchormap_index *idx)
{
	return (const struct anchormap_group *)((const u8 *)idx + __ANCHORMAP_INDEX_HDR);
}

/*
 * Entry geometry, a function of the params only (so that a compile-time
 * params makes it a constant): the key, the value at its alignment, then a
 * 32-bit header word (state and stripe, for walks and rebuilds; lookups do
 * not read it).
 */
static __always_inline u32 __anchormap_natural_align(u32 size)
{
	u32 a = size & -size;	/* largest power of two dividing size */

	if (!a)
		return 1;
	return a > 16 ? 16 : a;
}

static __always_inline u32
__anchormap_value_align(const struct anchormap_params *p)
{
	return p->value_align ? p->value_align : __anchormap_natural_align(p->value_size);
}

static __always_inline u32
__anchormap_value_off(const struct anchormap_params *p)
{
	u32 va = __anchormap_value_align(p);

	return (p->key_size + va - 1) & -va;
}

static __always_inline u32
__anchormap_hdr_off(const struct anchormap_params *p)
{
	return (__anchormap_value_off(p) + p->value_size + 3) & ~3u;
}

static __always_inline u32
__anchormap_entry_size(const struct anchormap_params *p)
{
	u32 ka = __anchormap_natural_align(p->key_size);
	u32 va = __anchormap_value_align(p);
	u32 sa = ka > va ? ka : va;

	if (sa < 4)
		sa = 4;
	return (__anchormap_hdr_off(p) + 4 + sa - 1) & -sa;
}

/*
 * What anchormap_get_fast() must agree on with the map, in one word: key
 * and value size, the value alignment as given (one that is not a power of
 * two cannot equal a map's), the ABI version the code was built against
 * (ANCHORMAP_ABI_VERSION: a client built against another layout or hash
 * falls back to the exported lookup), and whether the hash and compare are the
 * built-in ones (their addresses are compared apart).  0 for params no map
 * can have (init refuses them), so that fields cannot run into each other.
 */
static __always_inline u64
__anchormap_fast_sig(const struct anchormap_params *p)
{
	if (p->key_size > __ANCHORMAP_MAX_FIELD || p->value_size > __ANCHORMAP_MAX_FIELD ||
	    __anchormap_value_align(p) > __ANCHORMAP_MAX_ALIGN)
		return 0;
	return (u64)p->key_size | (u64)p->value_size << 21 |
	       (u64)__anchormap_value_align(p) << 42 | (u64)(__ANCHORMAP_CLIENT_ABI & 0x7f) << 55 |
	       (u64)(p->hash != NULL) << 62 | (u64)(p->equal != NULL) << 63;
}

/* The slow path: the whole probe, past the home group. */
const void *__anchormap_lookup_slow(const struct anchormap *map, const void *key, u64 h,
				    u32 off);

static __always_inline u64 __anchormap_read64(const void *p)
{
	u64 v;

	__builtin_memcpy(&v, p, sizeof(v));
	return v;
}

static __always_inline u32 __anchormap_read32(const void *p)
{
	u32 v;

	__builtin_memcpy(&v, p, sizeof(v));
	return v;
}

/* 64x64->128 multiply, folded: the mixing step of the built-in hash. */
static __always_inline u64 __anchormap_fold_mul(u64 a, u64 b)
{
#ifdef __SIZEOF_INT128__
	unsigned __int128 r = (unsigned __int128)a * b;

	return (u64)r ^ (u64)(r >> 64);
#else
	u64 al = (u32)a, ah = a >> 32, bl = (u32)b, bh = b >> 32;
	u64 ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
	u64 mid = (ll >> 32) + (u32)lh + (u32)hl;

	return (ll ^ ((lh + hl) << 32)) ^ (hh + (lh >> 32) + (hl >> 32) + (mid >> 32));
#endif
}

/*
 * The built-in keyed hash (anchormap_hash_default()), built on one
 * primitive: a 64x64->128 multiply folded to 64 bits, which spreads every
 * input bit over the high and the low half.  Keys up to 8 bytes are one
 * word and one multiply (as Abseil hashes integers); up to 16 bytes two
 * words and one multiply; longer keys fold 16 bytes a round into a running
 * state and finish with the last 16 bytes and the length.  Keyed by @s: a
 * map's random seed as it is (one instruction less per lookup), or
 * anchormap_hash_default()'s @seed xored with a constant, so that seed 0
 * is not special there.  Not built to resist someone who can observe
 * outputs: anchormap_hash_siphash() is.
 */
static __always_inline u64 __anchormap_hash(const void *key, u32 len, u64 s)
{
	const u8 *p = (const u8 *)key;
	u64 a, b;

	if (__builtin_expect(len <= 8, 1)) {
		if (len == 8)
			a = __anchormap_read64(p);
		else if (len >= 4)
			a = (u64)__anchormap_read32(p) << 32 | __anchormap_read32(p + len - 4);
		else
			a = len ? ((u64)p[0] << 16) | ((u64)p[len >> 1] << 8) | p[len - 1] : 0;
		return __anchormap_fold_mul(a ^ s, __ANCHORMAP_K1 ^ len);
	}
	if (len <= 16)
		return __anchormap_fold_mul(__anchormap_read64(p) ^ s ^ __ANCHORMAP_K1,
					    __anchormap_read64(p + len - 8) ^ s ^ __ANCHORMAP_K2);
	for (b = len; len > 16; p += 16, len -= 16)
		s = __anchormap_fold_mul(__anchormap_read64(p) ^ __ANCHORMAP_K1,
					 __anchormap_read64(p + 8) ^ s);
	a = __anchormap_fold_mul(__anchormap_read64(p + len - 16) ^ s ^ __ANCHORMAP_K1,
				 __anchormap_read64(p + len - 8) ^ s ^ __ANCHORMAP_K2);
	return __anchormap_fold_mul(a ^ __ANCHORMAP_K3, b ^ s);
}

/* Key bytes equal?  Unrolled for the common sizes (@n constant or not). */
static __always_inline bool __anchormap_bytes_eq(const void *a, const void *b, u32 n)
{
	const u8 *x = (const u8 *)a, *y = (const u8 *)b;

	switch (n) {
	case 4:
		return __anchormap_read32(x) == __anchormap_read32(y);
	case 8:
		return __anchormap_read64(x) == __anchormap_read64(y);
	case 16:
		return ((__anchormap_read64(x) ^ __anchormap_read64(y)) |
			(__anchormap_read64(x + 8) ^ __anchormap_read64(y + 8))) == 0;
	default:
		return !__builtin_memcmp(x, y, n);
	}
}

/*
 * Hash and compare of a map's keys.  @ks is the key size when it is a
 * compile-time constant and the map uses the built-in hash and compare
 * (then both inline to a few instructions), or 0: the map's own functions,
 * or the built-in ones at the run-time size.
 */
static __always_inline u64
__anchormap_hash_k(const struct anchormap *map, const void *key, u32 ks)
{
	if (ks)
		return __anchormap_hash(key, ks, map->seed);
	if (map->hash)
		return map->hash(key, map->key_size, map->seed);
	return __anchormap_hash(key, map->key_size, map->seed);
}

static __always_inline bool
__anchormap_key_eq_k(const struct anchormap *map, const void *a, const void *b, u32 ks)
{
	if (ks)
		return __anchormap_bytes_eq(a, b, ks);
	if (map->equal)
		return map->equal(a, b, map->key_size);
	return __anchormap_bytes_eq(a, b, map->key_size);
}

/* The control byte of a live entry: FULL plus the top 7 bits of the hash. */
/* The tag of a live entry: FULL plus the top 7 bits of the hash. */
static __always_inline u8 __anchormap_tag(u64 h)
{
	return __ANCHORMAP_FULL_BIT | (u8)(h >> 57);
}

/*
 * The bit of the overflow byte that @h's key sets when it passes its home
 * group: one of the low 4, so that the byte never looks like a FULL tag to
 * a 16-byte match (bytes 12..15 of a group need no mask).
 */
static __always_inline u8 __anchormap_ovf_bit(u64 h)
{
	return (u8)(1u << ((h >> __ANCHORMAP_OVF_SHIFT) & 3));
}

/*
 * Where entry @ref lives.  Arena n's bias is its base minus the bytes of
 * the refs before it (n << __ANCHORMAP_REF_SHIFT entries), so that the whole
 * ref times the entry size lands inside it: no mask.
 */
static __always_inline const u8 *
__anchormap_entry(const struct anchormap *map, u32 ref, size_t size)
{
	return (const u8 *)(map->arena_bias[ref >> __ANCHORMAP_REF_SHIFT] + (uintptr_t)ref * size);
}

/*
 * SWAR over 8 tags: (w - 0x01..) & ~w & 0x80.. marks every zero byte, and
 * may also mark a 0x01 byte above a zero one: an over-report, which every
 * candidate's own check removes.
 */
static __always_inline u64 __anchormap_zero_bytes(u64 w)
{
	return (w - __ANCHORMAP_LSB) & ~w & __ANCHORMAP_MSB;
}

static __always_inline u64 __anchormap_match(u64 w, u8 tag)
{
	return __anchormap_zero_bytes(w ^ (__ANCHORMAP_LSB * tag));
}

/* 8 tags, byte i of memory in bits 8i..8i+7; RELAXED, see anchormap.c */
static __always_inline u64 __anchormap_group_word(const u8 *tags, size_t byte)
{
	typedef u64 __attribute__((__may_alias__)) word_t;
	u64 w = __atomic_load_n((const word_t *)(tags + byte), __ATOMIC_RELAXED);

#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	w = __builtin_bswap64(w);
#endif
	return w;
}

/*
 * A group as a probe sees it.  SWAR by default (the kernel has no SSE):
 * candidates of both words go into one mask, so that the probe does not
 * branch on which half matched: slot i of the first word is bit 8i, slot i
 * of the second is bit 8i + 7.  Userspace x86-64 uses SSE2 (bit i is slot
 * i), except under ThreadSanitizer (its plain 16-byte load overlaps the
 * writers' byte CAS, which TSan would rightly flag; SWAR uses atomic word
 * loads) or with ANCHORMAP_NO_SSE2 defined.  Bytes 12..15 (the overflow
 * byte and padding) never count as tags.
 */
#if defined(__SANITIZE_THREAD__)
#define __ANCHORMAP_TSAN	1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define __ANCHORMAP_TSAN	1
#endif
#endif

#if !defined(__KERNEL__) && defined(__SSE2__) && !defined(ANCHORMAP_NO_SSE2) && \
	!defined(__ANCHORMAP_TSAN)
#include <emmintrin.h>
#define __ANCHORMAP_GROUP_SSE2	1

typedef __m128i __anchormap_group_t;

/*
 * A plain 16-byte load, made an acquire as smp_load_acquire() is on x86
 * (the only place with SSE2): x86 does not reorder loads with loads, so an
 * ACQUIRE fence, which emits no instruction there, keeps the compiler from
 * hoisting the reference loads above it (protocol 2), and the match is
 * exact: candidates need no second look at their tag before the reference.
 */
static __always_inline __anchormap_group_t
__anchormap_group_load(const struct anchormap_group *g)
{
	__m128i v = _mm_load_si128((const __m128i *)(const void *)g->tag);

	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return v;
}

static __always_inline bool
__anchormap_group_confirm(const struct anchormap_group *g, size_t i, u8 tag)
{
	(void)g;
	(void)i;
	(void)tag;
	return true;
}

static __always_inline u64
__anchormap_group_match(__anchormap_group_t v, u8 tag)
{
	/* bytes 12..15 are below 0x80, never a FULL tag: no mask */
	return (u32)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi32((int)(tag * 0x01010101u))));
}

/*
 * A candidate's reference.  x86 keeps loads in order, so a plain load and
 * an ACQUIRE fence (no instruction) are an acquire as smp_load_acquire() is
 * there (protocol 2).  A volatile load, as READ_ONCE() is: read once, whole,
 * and GCC folds its address into one instruction (it does not for
 * __atomic_load_n(), one instruction a lookup).
 */
static __always_inline u32 __anchormap_load_ref(const struct anchormap_group *g, size_t i)
{
	u32 ref = *(const volatile u32 *)&g->ref[i];

	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return ref;
}

/* The candidate's tag once more, after the key compare (protocol 2): as READ_ONCE(). */
static __always_inline u8 __anchormap_tag_again(const struct anchormap_group *g, size_t i)
{
	return *(const volatile u8 *)&g->tag[i];
}

/*
 * The lowest match, @m != 0.  tzcnt by hand: __builtin_ctzll() is an int,
 * and GCC sign-extends it before the index arithmetic (one instruction per
 * lookup); tzcnt already wrote all 64 bits.  Without BMI it runs as bsf,
 * the same for a nonzero @m.
 */
static __always_inline size_t __anchormap_group_slot(u64 m)
{
	u64 i;

	__asm__("tzcnt %1, %0" : "=r"(i) : "rm"(m) : "cc");
	return i;
}
#else
typedef struct {
	u64 w0, w1;
} __anchormap_group_t;

static __always_inline __anchormap_group_t
__anchormap_group_load(const struct anchormap_group *g)
{
	__anchormap_group_t v = {
		__anchormap_group_word(g->tag, 0), __anchormap_group_word(g->tag, 8)
	};

	return v;
}

static __always_inline u64
__anchormap_group_match(__anchormap_group_t v, u8 tag)
{
	/* the second word's tags are its bytes 0..3 */
	return __anchormap_match(v.w0, tag) >> 7 | (__anchormap_match(v.w1, tag) & 0x80808080ULL);
}

static __always_inline size_t __anchormap_group_slot(u64 m)
{
	unsigned int b = (unsigned int)__builtin_ctzll(m);

	return (b >> 3) | ((b & 4) << 1);
}

/*
 * The word loads were RELAXED and the match over-reports: ACQUIRE-load the
 * candidate's own tag; seeing it FULL orders the reference load after it
 * (protocol 2).
 */
static __always_inline bool
__anchormap_group_confirm(const struct anchormap_group *g, size_t i, u8 tag)
{
	return __atomic_load_n(&g->tag[i], __ATOMIC_ACQUIRE) == tag;
}

/* A candidate's reference: ACQUIRE, protocol 2. */
static __always_inline u32 __anchormap_load_ref(const struct anchormap_group *g, size_t i)
{
	return __atomic_load_n(&g->ref[i], __ATOMIC_ACQUIRE);
}

/* The candidate's tag once more, after the key compare (protocol 2). */
static __always_inline u8 __anchormap_tag_again(const struct anchormap_group *g, size_t i)
{
	return __atomic_load_n(&g->tag[i], __ATOMIC_RELAXED);
}
#endif

/*
 * The first step of every lookup, anchormap_get()'s as well: every
 * candidate of the key's home group in the current index, and the home
 * group's overflow bit, which says whether the key could be further on
 * (then one call to the slow path, which probes the rest).  @h is the key's
 * hash; @equal (NULL: the key bytes) compares @ks bytes of key; @size is the
 * entry size.  The library passes the map's fields, anchormap_get_fast()
 * constants.  Returns the entry plus @off.
 *
 * A candidate's reference is ACQUIRE-loaded and its tag read again after
 * the key compare: a tombstoned slot may be reused for another entry
 * between our tag load and our reference load, and that entry counts only
 * once its tag is stored (protocol 2).
 */
static __always_inline const void *
__anchormap_lookup(const struct anchormap *map, const void *key, u64 h,
		   bool (*equal)(const void *a, const void *b, u32 key_size), u32 ks,
		   size_t size, u32 off)
{
	const struct anchormap_index *idx;
	const struct anchormap_group *g;
	__anchormap_group_t grp;
	const u8 *e;
	u8 tag = __anchormap_tag(h);
	u64 m;

	__anchormap_read_lock();	/* the index, not the entry: protocol 4 */
	/* ACQUIRE pairs with the RELEASE that published the index (protocol 4) */
	idx = __atomic_load_n(&map->index, __ATOMIC_ACQUIRE);
	g = __anchormap_groups(idx) + (h & idx->gmask);
	grp = __anchormap_group_load(g);
	for (m = __anchormap_group_match(grp, tag); m; m &= m - 1) {
		size_t i = __anchormap_group_slot(m);

		if (__builtin_expect(!__anchormap_group_confirm(g, i, tag), 0))
			continue;
		__ANCHORMAP_TEST_POINT(map, ANCHORMAP_TP_LOOKUP_REF);
		e = __anchormap_entry(map, __anchormap_load_ref(g, i), size);
		if (__builtin_expect(equal ? equal(key, e, ks) :
					 __anchormap_bytes_eq(key, e, ks), 1) &&
		    __builtin_expect(__anchormap_tag_again(g, i) == tag, 1)) {
			__anchormap_read_unlock();
			return e + off;	/* storage: valid with no lock held */
		}
	}
	if (__builtin_expect(!(__atomic_load_n(&g->overflow, __ATOMIC_RELAXED) &
			       __anchormap_ovf_bit(h)), 1))
		e = NULL;
	else
		e = (const u8 *)__anchormap_lookup_slow(map, key, h, off);
	__anchormap_read_unlock();
	return e;
}

/*
 * May anchormap_get_fast() take its inline path?  Not for params no map
 * has (sig 0: no inline path is compiled for them), nor for a map whose
 * params, hash, compare or ABI version (a library built from another
 * layout or algorithm) differ from what this client was compiled with.
 */
#define __ANCHORMAP_FAST_REFUSED(map, key, params, sig)				\
	(!(sig) || !(map) || !(key) || (map)->fast_sig != (sig) ||		\
	 ((params)->hash && (map)->hash != (params)->hash) ||			\
	 ((params)->equal && (map)->equal != (params)->equal))

/*
 * The same test as a function, for tests of the fallback.  The lookup
 * spells it out through the macro: behind a function call GCC no longer
 * keeps both constants of the loop in registers (+3 instructions a lookup).
 */
static __always_inline bool
__anchormap_fast_ok(const struct anchormap *map, const void *key,
		    const struct anchormap_params *params)
{
	const u64 sig = __anchormap_fast_sig(params);

	return !__ANCHORMAP_FAST_REFUSED(map, key, params, sig);
}

/*
 * Always inline: only inlined do the constant params fold (GCC otherwise
 * keeps one out-of-line copy computing the layout at run time).
 */
static __always_inline const void *
anchormap_get_fast(const struct anchormap *map, const void *key,
		   const struct anchormap_params params)
{
	const u32 ks = params.key_size;
	u64 h;

	const u64 sig = __anchormap_fast_sig(&params);

	if (__builtin_expect(__ANCHORMAP_FAST_REFUSED(map, key, &params, sig), 0))
		return anchormap_get(map, key);
	h = params.hash ? params.hash(key, ks, map->seed) : __anchormap_hash(key, ks, map->seed);
	return __anchormap_lookup(map, key, h, params.equal, ks, __anchormap_entry_size(&params),
				  __anchormap_value_off(&params));
}

/* ---- test hooks, implemented by each platform (shim / kernel glue) ---- */

/**
 * anchormap_debug_fail_nth() - make the @n-th allocation from now fail
 * @n: 1 fails the next allocation, 0 turns injection off.
 *
 * Affects every map in the process (userspace) or kernel.  For tests.
 */
void anchormap_debug_fail_nth(long n);

/** anchormap_debug_allocs_live() - allocations made by maps and not yet freed */
long anchormap_debug_allocs_live(void);

#endif /* _ANCHORMAP_H */
