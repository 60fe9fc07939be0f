/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The types of anchormap, without its API.
 *
 * What a struct that embeds a map (or an iterator, entry or statistics)
 * needs, as include/linux/rhashtable-types.h is for rhashtable: the params
 * and flags, struct anchormap, anchormap_iter, anchormap_entry and
 * anchormap_stats.  The functions are in anchormap.h, which includes this;
 * clients include anchormap.h.
 */
#ifndef _ANCHORMAP_TYPES_H
#define _ANCHORMAP_TYPES_H

/* The release, for MODULE_VERSION and pkg-config. */
#define ANCHORMAP_VERSION	"0.1.0"

/*
 * The version of what anchormap_get_fast() compiles into a client: the
 * private layout (here and in anchormap_inline.h), the built-in hash, the
 * tag encoding and the first probe step.  Bump it with any change to them: a client built
 * against another version then takes the exported lookup (the map's
 * fast_sig carries the library's version; see __anchormap_fast_sig()).
 * 1..127; stays in the same place in struct anchormap for ever.
 */
#define ANCHORMAP_ABI_VERSION	5
#ifndef __ANCHORMAP_CLIENT_ABI
/* what this client was built against; only tests of the fallback set it */
#define __ANCHORMAP_CLIENT_ABI	ANCHORMAP_ABI_VERSION
#endif

#ifdef __KERNEL__
#include <linux/types.h>
#else
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The kernel's fixed-width names, for userspace.  A program with its own
 * u8..u64 defines ANCHORMAP_NO_KERNEL_TYPES before including anchormap.h
 * (its types must have the same widths), as ANCHORMAP_NO_ERR_PTR keeps
 * anchormap.h's ERR_PTR() out.
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

/* Keys anchormap_get_many() prefetches together (at most 64). */
#define ANCHORMAP_GET_MANY_BATCH	32

/**
 * struct anchormap_params - what a map stores and how it hashes, fixed at init
 * @key_size:    bytes of key copied into each slot, > 0, at most 1 MiB.
 * @value_size:  bytes of value copied into each slot, at most 1 MiB; 0 makes
 *               the map a set.
 * @value_align: alignment of the value in the slot, a power of two up to
 *               4096; 0 picks the natural one (largest power of two dividing
 *               @value_size, at most 16).
 * @flags:       ANCHORMAP_F_*.
 * @hash:        NULL for the built-in keyed hash (fast, seeded per map);
 *               anchormap_hash_siphash() for DoS resistance; or your own.
 * @equal:       NULL compares the key bytes.  Must agree with @hash.  Both
 *               run in lookups, from any context, and in the kernel with
 *               preemption disabled: they must not sleep (nor take a
 *               spinlock_t, which sleeps on PREEMPT_RT).
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

struct anchormap_index;		/* private: anchormap_inline.h */
struct anchormap_writer_state;	/* private: anchormap_internal.h */

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
	u32 narenas;			/* arenas of storage */
	u32 lookup_ks;
	/* storage: arena n's entries at arena_bias[n] + ref * entry_size */
	uintptr_t arena_bias[ANCHORMAP_MAX_SEGMENTS];
	/* writer side: the index being built, stripes, locks; separately allocated */
	struct anchormap_index *next;
	struct anchormap_writer_state *wstate;
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
 * @index_used:    tags of the current index not counted as room (live
 *                 entries and tombstones).
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

#endif /* _ANCHORMAP_TYPES_H */
