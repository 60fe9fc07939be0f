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

#include "anchormap_types.h"

#ifdef __KERNEL__
#include <linux/err.h>
#include <linux/version.h>

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
#include <errno.h>

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
 * is allocated, and @map (unless NULL), whatever it held, reads as empty
 * and refuses writes with -EINVAL, as a destroyed map does.
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
 * anchormap_get_many() - look up a batch of keys, their cache misses overlapped
 * @map: the map.
 * @keys: @n keys, key_size bytes each, one after another.
 * @n: how many; any number (they are looked up ANCHORMAP_GET_MANY_BATCH at a
 *     time: hashed, their index lines prefetched, their entries prefetched,
 *     then looked up).
 * @values: receives @n pointers: the value of each key as anchormap_get()
 *          returns it (valid as for lookups), or NULL for a key not present.
 *
 * Each key's result is what anchormap_get() for it would return at some
 * point during the call (the lookups are independent: writers may come
 * between two of them).  anchormap_get_many_fast() is the inline version,
 * with compile-time params as for anchormap_get_fast().
 *
 * Context: shared, lock-free; never sleeps; any context.
 * Return: the number of keys found (0..@n); -EINVAL for NULL @map, @keys or
 * @values (with @n > 0), nothing written then.
 */
long anchormap_get_many(const struct anchormap *map, const void *keys, size_t n,
			const void **values);

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

/** anchormap_is_empty() - anchormap_len() == 0 (true for NULL).  Context: shared, lock-free. */
bool anchormap_is_empty(const struct anchormap *map);

/**
 * anchormap_capacity() - entries storable before the next growth
 * @map: the map.
 *
 * Counts every free entry and index slot, those a stripe has taken for its
 * own next inserts included, so inserts that fall on other stripes may grow
 * the map sooner; anchormap_reserve() is the guarantee.
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
 * exclusive operation or destroy.  Its index slot is free again for a later
 * insert.
 *
 * Context: shared, stripe-locked; never sleeps.
 * Return: 1 removed, 0 absent, -EINVAL for NULL @map or @key.
 */
int anchormap_remove(struct anchormap *map, const void *key);

/**
 * anchormap_replace() - give a present key a new value, copy-on-write
 * @map: the map.
 * @key: the key (key_size bytes).
 * @value: value_size bytes to copy (not NULL).
 *
 * The new value goes into a new entry that takes the old one's place in
 * one atomic step: a concurrent lookup returns the old value or the new
 * one, never a miss, and every pointer to the old entry (key or value)
 * stays valid with its bytes unchanged until an exclusive operation or
 * destroy, exactly as after anchormap_remove() (the old entry counts as
 * removed in &struct anchormap_stats; @release runs on it then).  A walk
 * running meanwhile yields the key at most once: the old entry, the new
 * one, or neither (neither entry was present for the whole walk).
 *
 * Context: shared, stripe-locked; may sleep to grow unless ANCHORMAP_F_ATOMIC.
 * Return: 1 replaced; 0 absent (map unchanged); -EINVAL for NULL @map,
 * @key or @value; -ENOMEM when storage could not grow (the old value stays).
 */
int anchormap_replace(struct anchormap *map, const void *key, const void *value);

/**
 * anchormap_insert_or_replace() - insert @key, or replace its value
 * @map: the map.
 * @key: the key (key_size bytes), copied.
 * @value: value_size bytes to copy (not NULL).
 *
 * anchormap_insert() when @key is absent, anchormap_replace() when present,
 * decided under the key's stripe lock (no other writer comes between).
 *
 * Context: shared, stripe-locked; may sleep to grow unless ANCHORMAP_F_ATOMIC.
 * Return: 0 inserted; 1 replaced; -EINVAL for NULL @map, @key or @value;
 * -ENOMEM when growth failed (the map unchanged).
 */
int anchormap_insert_or_replace(struct anchormap *map, const void *key, const void *value);

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
 * unlikely to fail, where growth from an atomic writer may not sleep.  The
 * room holds for any keys: writers take storage and index slots a chunk
 * per stripe at a time, and what the chunks may leave unused on the other
 * stripes is not counted as room.
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
 * anchormap_remove_entry() - EXCLUSIVE: remove a key, handing its bytes to the caller
 * @map: the map.
 * @key: the key (key_size bytes).
 * @key_out:   receives a copy of the stored key; may be NULL.
 * @value_out: receives a copy of the stored value; may be NULL.
 *
 * Exclusive, unlike anchormap_remove(), and no part of the entry API
 * (anchormap_entry_*()): no other thread may use the map during the call,
 * and no pointer obtained before it may be used after it.  Under shared
 * access remove with anchormap_remove().
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
 * compacting storage in place, as anchormap_shrink_to_fit() does; if its
 * index cannot be allocated the map stays correct with its removed entries
 * counted in anchormap_stats().
 *
 * Context: exclusive.  May sleep unless ANCHORMAP_F_ATOMIC.
 */
void anchormap_retain(struct anchormap *map,
		      bool (*keep)(const void *key, void *value, void *arg), void *arg);

/**
 * anchormap_shrink_to_fit() - compact storage in place, rebuild the index
 * @map: the map.
 *
 * Releases removed entries, leaves none, and frees replaced indexes.  Live
 * entries slide down to the front of storage (pointers to them are invalid
 * afterwards) and the arenas left empty are freed: storage ends within a
 * quarter of the live entries, plus a chunk per stripe.  The peak is what
 * the map held, less its replaced indexes (freed first), plus the new index
 * (and at most one right-sized arena for the last entries).
 *
 * Context: exclusive.  May sleep unless ANCHORMAP_F_ATOMIC.
 * Return: 0, or -ENOMEM with the map's entries unchanged (its replaced
 * indexes are freed either way).
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
 * may not be copied); process context, may sleep, for ANCHORMAP_F_ATOMIC
 * maps too (it initialises @dst as anchormap_init() does).
 * Return: 0; -EINVAL for a NULL or dead @src, or @dst == @src (@dst
 * untouched); -ENOMEM, @dst reading as empty as a destroyed map does.
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
	ANCHORMAP_TP_GROW_PUBLISH,	/* storage growth, before publishing narenas */
	ANCHORMAP_TP_REBUILD_SWEEP,	/* a rebuild, its index published, before the sweep */
	ANCHORMAP_TP_REBUILD_CHUNK,	/* a rebuild, before each chunk it copies */
	ANCHORMAP_TP_REBUILD_SWITCH,	/* a rebuild, done, before its index is current */
	ANCHORMAP_TP_LOOKUP_REF,	/* a lookup, between a candidate's tag and reference */
	ANCHORMAP_TP_PUBLISH_TAG,	/* an insert, between storing the reference and the tag */
	ANCHORMAP_TP_REPLACE_REF,	/* a replace, its new entry LIVE, before the index has it */
	ANCHORMAP_TP_REBUILD_SYNC,	/* a writer or reserve, to help and wait for a rebuild */
	ANCHORMAP_TP_REBUILD_WAIT,	/* the same, waiting for another's rebuild to end */
	ANCHORMAP_TP_REBUILD_COUNTED,	/* a rebuild, current and counted, next not cleared */
	ANCHORMAP_TP_REPLACE_NEXT,	/* a replace, its old entry REMOVED, before next has it */
	ANCHORMAP_TP_ARENA_FULL,	/* a writer, its arena used up, before it moves cur on */
	ANCHORMAP_TP_REBUILD_GATHERED,	/* a rebuild's copy, its first batch hashed, unplaced */
	ANCHORMAP_TP_CLAIM_TAG,		/* an insert, its group's tags loaded, before its claim */
	ANCHORMAP_TP_PROC_LINE,		/* /proc/anchormap, a map's line taken, before printing */
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

/* The inline lookup's implementation: private, see anchormap_get_fast(). */
#include "anchormap_inline.h"

#endif /* _ANCHORMAP_H */
