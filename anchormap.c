// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * anchormap.c - a concurrent hash map whose entries never move
 *
 * The core knows no operating system: what it needs from one comes from
 * "anchormap_deps.h" (userspace_shim/ or kernel/, chosen by -I).
 *
 * Conventions in this file
 *   map     the struct anchormap; read-mostly, see anchormap.h
 *   entry   a key, its value and a 32-bit header word, in storage
 *   arena   one allocation of storage: entries, never moved or freed while
 *           the map is shared
 *   ref     an entry reference: arena << AM_REF_SHIFT | number in the arena
 *   idx     an index: one Swiss table of tags and refs over the live entries
 *   g, i    a group of the index (one cache line) and a slot in it
 *   h       the 64-bit hash of a key: its top 7 bits are the tag, its low
 *           bits pick the home group, bits 32..37 the stripe, bits 40..42
 *           the overflow bit
 *   st      a writer stripe: lock, storage chunk, credits, counters
 *   am_*    static helpers; anchormap_* is the exported API
 *
 * Storage and index are apart: entries live where they were written until
 * an exclusive operation, and lookups find them through the index, which
 * is rebuilt (a new one, published while readers go on using the old) when
 * the map grows or tombstones pile up.  A map that grew from capacity 0 or
 * was churned looks up in one index, as a pre-sized one does.
 *
 * Entry header (AM_HDR_*): the state in bits 0..1, the stripe in bits 2..7
 *   FREE     0: never written since the arena was allocated (zeroed)
 *   LIVE     published; the key is in the index
 *   REMOVED  removed under shared access; bytes intact until reclaimed
 *   DEAD     claimed and never published (init failed), or its ownership
 *            went to the caller (remove_entry, retain): never released
 * A header moves FREE -> LIVE -> REMOVED (or FREE -> DEAD), never back:
 * storage is not reused for other bytes while the map is shared.
 *
 * Tags of the index
 *   0x00         EMPTY      never used in this index
 *   0x7e         TOMBSTONE  its entry was removed; free for any insert
 *   0x7f         RESERVED   claimed by a writer that is filling the slot
 *   0x80 | fp    FULL       the ref names a live entry, fp = top 7 hash bits
 * A tag moves EMPTY or TOMBSTONE -> RESERVED -> FULL -> TOMBSTONE.  A probe
 * ends at the key's home group unless that group's overflow bit for the
 * key is set (a key of this home was placed further on), so tombstones
 * cost misses nothing.
 *
 * Memory-ordering protocol (every __atomic call names its order; these are
 * the pairs that matter):
 *
 *  1. Entry publication.  A writer fills key and value of a FREE entry it
 *     took from its stripe's chunk with plain stores, then RELEASE-stores
 *     the header LIVE.  Walks and rebuilds ACQUIRE-load headers: seeing
 *     LIVE makes key and value visible.  Removal RELEASE-stores REMOVED;
 *     the bytes are never written again while the map is shared.
 *  2. Index publication.  The writer claims a free tag (EMPTY or TOMBSTONE)
 *     with a RELAXED CAS to RESERVED (no data flows through it),
 *     RELEASE-stores the ref, then RELEASE-stores the tag FULL.  A reader
 *     loads a group's tags (SSE2: one 16-byte load and an ACQUIRE fence;
 *     SWAR: RELAXED words, then an ACQUIRE load of each candidate's tag),
 *     ACQUIRE-loads the ref, compares the key and loads the tag again.  The
 *     ref's ACQUIRE pairs with its RELEASE: a tombstoned slot can be reused
 *     between the reader's tag load and its ref load, and the ref it then
 *     reads names an entry that is published.  The second tag load (after
 *     the ACQUIRE of the ref, so not older than it) must still show the
 *     same FULL tag: a reused slot's entry counts as present only once its
 *     tag is stored, so the reader never returns an insert another reader
 *     cannot see yet.  Removal stores TOMBSTONE (RELAXED: it publishes
 *     nothing) after the header went REMOVED.  The overflow byte is set
 *     with a RELAXED OR before the tag of the entry that passed the group.
 *  3. Storage publication.  Growth allocates a zeroed arena, stores its
 *     bias in map->arena_bias[n] and RELEASE-stores map->nseg = n + 1 (under
 *     the growth lock).  Writers ACQUIRE-load nseg before they take entries
 *     from the arena; a reader reaches an arena only through a ref it
 *     ACQUIRE-loaded (protocol 2), which the writer stored after it saw the
 *     arena, so the pointer is visible to it too.
 *  4. Index replacement ("Rebuild").  A rebuild allocates a zeroed index,
 *     RELEASE-stores it in map->next, takes and drops every stripe lock (so
 *     that every writer from then on sees it), copies the live entries of
 *     storage into it under their stripes' locks, and RELEASE-stores
 *     map->index = next, then map->next = NULL.  Writers ACQUIRE-load next
 *     and then index under their stripe lock and change next first, then
 *     index: whatever a reader of the old index sees is in the new one.
 *     Chunk completions are counted with an ACQ_REL add, so the switch
 *     follows every helper's stores.  Readers may still probe a replaced
 *     index, and what they find there was present while they ran: in the
 *     kernel a lookup holds rcu_read_lock() for its own duration
 *     (am_read_lock(); writers hold a stripe lock, which is a read side
 *     too) and the index is freed after a grace period
 *     (am_free_after_readers()); in userspace it is kept until an
 *     exclusive operation or destroy.  The entries a lookup returns live
 *     in storage, which no grace period governs.
 *  5. Walks.  A stripe's entries are taken in increasing ref order.  A
 *     writer RELEASE-stores its stripe's next ref after it takes an entry;
 *     a walk ACQUIRE-loads every stripe's at its start and skips entries
 *     at or past it: they were inserted during the walk.  The ACQUIRE also
 *     makes visible every removal that came before (protocol 1).
 *  6. Counters (stripe live/deleted/contended, index avail, arena claims)
 *     are RELAXED: they carry no data.  Stripe counters are written under
 *     the stripe lock and summed without it.
 *  7. Stripe locks, the growth lock and the rebuild lock come from the
 *     platform and give acquire/release semantics of their own.  All
 *     writers of one key use the same stripe, so "is it present?" and
 *     "insert it" are atomic per key; writers of different stripes meet only
 *     at tag CASes, overflow bytes and the shared counters.
 *
 * Exclusive operations (anchormap.h) use the same accessors for simplicity
 * but rely on the caller's guarantee that nobody else touches the map.
 */
#include "anchormap.h"
#include "anchormap_deps.h"

/* ---------------------------------------------------------------------
 * Constants and private structures
 */

#define AM_GROUP		__ANCHORMAP_GROUP
#define AM_LINE			64
#define AM_INDEX_HDR		__ANCHORMAP_INDEX_HDR
#define AM_MAX_FIELD		__ANCHORMAP_MAX_FIELD	/* largest key or value */
#define AM_MAX_ALIGN		__ANCHORMAP_MAX_ALIGN
#define AM_REF_SHIFT		__ANCHORMAP_REF_SHIFT
#define AM_REF_MASK		__ANCHORMAP_REF_MASK
#define AM_ARENA_MAX		(1u << AM_REF_SHIFT)	/* entries in one arena */
#define AM_ARENA_MIN		16u

#define AM_TAG_EMPTY		0x00
#define AM_TAG_TOMB		0x7e
#define AM_TAG_RESERVED		0x7f
#define AM_FULL_BIT		__ANCHORMAP_FULL_BIT

#define AM_HDR_FREE		0u
#define AM_HDR_LIVE		1u
#define AM_HDR_REMOVED		2u
#define AM_HDR_DEAD		3u
#define AM_HDR_STATE		3u
#define AM_HDR_STRIPE_SHIFT	2

#define AM_LSB			__ANCHORMAP_LSB
#define AM_MSB			__ANCHORMAP_MSB

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
	am_lock_t lock;
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

/* An arena's bookkeeping; lookups find its entries through map->arena_bias[n]. */
struct am_arena {
	void *raw;		/* the allocation; base is aligned inside it */
	u8 *base;
	u32 size;		/* entries */
	u32 chunk;		/* entries a stripe takes at once */
	u32 claimed;		/* entries handed out to stripes (RELAXED CAS) */
	size_t bytes;
};

/* A rebuild in progress (protocol 4); under rebuild_lock unless said. */
struct am_rebuild {
	struct anchormap_index *next;
	u32 born[ANCHORMAP_STRIPES];	/* per stripe: from this ref on, writers add to next */
	u32 narenas;
	u32 end[ANCHORMAP_MAX_SEGMENTS];	/* claimed entries per arena at start */
	size_t base[ANCHORMAP_MAX_SEGMENTS + 1];	/* prefix sums of end[] */
	size_t pos;		/* next entry position to copy */
	size_t done;		/* positions copied (ACQ_REL add) */
	int ready;		/* chunks may be taken (RELEASE/ACQUIRE) */
};

struct anchormap_shared {
	struct am_stripe stripes[ANCHORMAP_STRIPES];
	struct am_arena arenas[ANCHORMAP_MAX_SEGMENTS];
	struct am_rebuild rb;
	struct anchormap_index *retired;	/* replaced indexes, newest first */
	u32 cur;			/* the arena chunks come from (only grows) */
	u64 rebuilds;
	am_mutex_t grow_lock;		/* storage growth */
	am_mutex_t rebuild_lock;	/* starting and ending a rebuild */
	struct am_lock_class lclass;	/* the lock classes of this map's locks */
	struct am_registry_node reg;
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

#define am_test_point(map, point)	__ANCHORMAP_TEST_POINT(map, point)
#ifdef ANCHORMAP_TEST_HOOKS
void (*anchormap_test_hook)(const struct anchormap *map, enum anchormap_test_point point);
#endif

/*
 * What a map without storage (destroyed, or cleared by an init that then
 * failed) looks up in: an index of one group of EMPTY tags with no overflow,
 * so that every lookup, the inline ones in clients too, misses without a
 * check of its own.  Never written: every writer and exclusive operation
 * refuses a map whose ->shared is NULL.
 */
static union {
	struct anchormap_index idx;
	u8 bytes[AM_INDEX_HDR + sizeof(struct anchormap_group)];
} am_no_index __aligned(AM_LINE);

/* ---------------------------------------------------------------------
 * Hashing
 */

#define AM_K2	__ANCHORMAP_K2
#define AM_K3	__ANCHORMAP_K3

/*
 * The built-in hash lives in anchormap.h, for anchormap_get_fast().  Maps
 * key it with their random seed as it is; here the seed is mixed with a
 * constant first, so that seed 0 is as good as any.
 */
u64 anchormap_hash_default(const void *key, u32 key_size, u64 seed)
{
	return __anchormap_hash(key, key_size, seed ^ __ANCHORMAP_K0);
}
AM_EXPORT(anchormap_hash_default);

static __always_inline u64 am_rotl(u64 x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static __always_inline void am_sip_round(u64 v[4])
{
	v[0] += v[1];
	v[1] = am_rotl(v[1], 13) ^ v[0];
	v[0] = am_rotl(v[0], 32);
	v[2] += v[3];
	v[3] = am_rotl(v[3], 16) ^ v[2];
	v[0] += v[3];
	v[3] = am_rotl(v[3], 21) ^ v[0];
	v[2] += v[1];
	v[1] = am_rotl(v[1], 17) ^ v[2];
	v[2] = am_rotl(v[2], 32);
}

static u64 am_le64(const u8 *p)
{
	u64 v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* SipHash-2-4 (Aumasson and Bernstein): 2 rounds per word, 4 to finish. */
u64 anchormap_siphash24(const void *data, size_t len, u64 k0, u64 k1)
{
	const u8 *p = data;
	u64 v[4] = {
		k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL,
		k0 ^ 0x6c7967656e657261ULL, k1 ^ 0x7465646279746573ULL,
	};
	u64 m, last = (u64)len << 56;
	size_t left = len, i;

	for (; left >= 8; p += 8, left -= 8) {
		m = am_le64(p);
		v[3] ^= m;
		am_sip_round(v);
		am_sip_round(v);
		v[0] ^= m;
	}
	for (i = 0; i < left; i++)
		last |= (u64)p[i] << (8 * i);
	v[3] ^= last;
	am_sip_round(v);
	am_sip_round(v);
	v[0] ^= last;
	v[2] ^= 0xff;
	for (i = 0; i < 4; i++)
		am_sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}
AM_EXPORT(anchormap_siphash24);

u64 anchormap_hash_siphash(const void *key, u32 key_size, u64 seed)
{
	return anchormap_siphash24(key, key_size, seed, __anchormap_fold_mul(seed ^ AM_K2, AM_K3));
}
AM_EXPORT(anchormap_hash_siphash);

#define AM_STRIPE_OF(h)		((unsigned int)((h) >> 32) & (ANCHORMAP_STRIPES - 1))

static __always_inline struct am_stripe *am_stripe_of(const struct anchormap *map, u64 h)
{
	return &map->shared->stripes[AM_STRIPE_OF(h)];
}

static bool am_atomic(const struct anchormap *map)
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

static __always_inline u32 *am_hdr(const struct anchormap *map, u8 *e)
{
	return (u32 *)(void *)(e + map->hdr_off);
}

static __always_inline u32 am_hdr_word(u32 state, unsigned int stripe)
{
	return state | (u32)stripe << AM_HDR_STRIPE_SHIFT;
}

static __always_inline unsigned int am_hdr_stripe(u32 hdr)
{
	return hdr >> AM_HDR_STRIPE_SHIFT;
}

static __always_inline struct anchormap_group *am_group(const struct anchormap_index *idx,
							size_t gi)
{
	return (struct anchormap_group *)__anchormap_groups(idx) + gi;
}

/* Free tags (EMPTY or TOMBSTONE) of 8, as 0x80 bits; over-reports RESERVED. */
static __always_inline u64 am_free_bytes(u64 w)
{
	return __anchormap_zero_bytes(w) | __anchormap_match(w, AM_TAG_TOMB);
}

/*
 * The lowest slot of a mask of both words in the SWAR layout (slot i of the
 * first word at bit 8i, of the second at bit 8i + 7), whatever the
 * readers' group layout is.
 */
static __always_inline unsigned int am_word_slot(u64 m)
{
	unsigned int b = (unsigned int)__builtin_ctzll(m);

	return (b >> 3) | ((b & 4) << 1);
}

/* ---------------------------------------------------------------------
 * Lookup: lock-free
 */

/*
 * Every group of @key's probe sequence in @idx that its overflow bits lead
 * to.  Returns the entry (and its place) or NULL.  The readers' rare path
 * and the writers' lookup.
 */
static __always_inline u8 *am_probe(const struct anchormap *map,
				    const struct anchormap_index *idx, const void *key,
				    u64 h, u32 ks, struct am_place *pl)
{
	size_t gmask = idx->gmask, gi = h & gmask, step = 0;
	u8 tag = __anchormap_tag(h), ovf = __anchormap_ovf_bit(h);

	for (;;) {
		struct anchormap_group *g = am_group(idx, gi);
		__anchormap_group_t grp = __anchormap_group_load(g);
		u64 m;

		for (m = __anchormap_group_match(grp, tag); m; m &= m - 1) {
			unsigned int i = (unsigned int)__anchormap_group_slot(m);
			u8 *e;

			if (!__anchormap_group_confirm(g, i, tag))
				continue;
			am_test_point(map, ANCHORMAP_TP_LOOKUP_REF);
			/* ACQUIRE, and the tag again after the compare: protocol 2 */
			e = am_entry(map, __anchormap_load_ref(g, i));
			if (__anchormap_key_eq_k(map, key, e, ks) &&
			    am_load_relaxed(&g->tag[i]) == tag) {
				if (pl) {
					pl->g = g;
					pl->i = i;
				}
				return e;
			}
		}
		if (!(am_load_relaxed(&g->overflow) & ovf) || ++step > gmask)
			return NULL;
		gi = (gi + step) & gmask;	/* triangular: visits every group */
	}
}

/*
 * Each key-size flavour has its own out-of-line copy, so that a probe past
 * the home group still gets the specialised hash and compare.
 */
#define AM_DEFINE_SEARCH(name, ks)						\
static noinline u8 *am_search_##name(const struct anchormap *map,		\
				     const struct anchormap_index *idx,		\
				     const void *key, u64 h, struct am_place *pl) \
{										\
	return am_probe(map, idx, key, h, ks, pl);				\
}
AM_DEFINE_SEARCH(4, 4)
AM_DEFINE_SEARCH(8, 8)
AM_DEFINE_SEARCH(16, 16)
AM_DEFINE_SEARCH(generic, AM_GENERIC)

static __always_inline u8 *am_search(const struct anchormap *map,
				     const struct anchormap_index *idx, const void *key,
				     u64 h, struct am_place *pl)
{
	switch (map->lookup_ks) {
	case 8:
		return am_search_8(map, idx, key, h, pl);
	case 4:
		return am_search_4(map, idx, key, h, pl);
	case 16:
		return am_search_16(map, idx, key, h, pl);
	default:
		return am_search_generic(map, idx, key, h, pl);
	}
}

/* The current index, for a writer or exclusive operation. */
static struct anchormap_index *am_index(const struct anchormap *map)
{
	return am_load_acquire(&map->index);	/* protocol 4 */
}

/*
 * The readers' slow path, exported for anchormap_get_fast(): the whole
 * probe, after the first step (__anchormap_lookup() in anchormap.h) found
 * the home group's overflow bit set.
 */
const void *__anchormap_lookup_slow(const struct anchormap *map, const void *key, u64 h,
				    u32 off)
{
	u8 *e = am_search(map, am_index(map), key, h, NULL);

	return e ? e + off : NULL;
}
AM_EXPORT(__anchormap_lookup_slow);

/*
 * The readers' lookup as the library exports it: the header's first step
 * (the one anchormap_get_fast() inlines), one copy per common key size,
 * each out of line so that it gets the registers to itself.
 */
#define AM_DEFINE_LOOKUP(name, ks)						\
static const u8 *am_lookup_##name(const struct anchormap *map, const void *key, \
				  u32 off)					\
{										\
	return __anchormap_lookup(map, key, __anchormap_hash_k(map, key, ks),	\
				  ks ? NULL : map->equal, ks ? ks : map->key_size, \
				  map->entry_size, off);			\
}
AM_DEFINE_LOOKUP(4, 4)
AM_DEFINE_LOOKUP(8, 8)
AM_DEFINE_LOOKUP(16, 16)
AM_DEFINE_LOOKUP(generic, AM_GENERIC)

/* The entry plus @off, or NULL: with @off the value offset, a tail call. */
static __always_inline const u8 *am_lookup(const struct anchormap *map, const void *key,
					   u32 off)
{
	switch (map->lookup_ks) {
	case 8:
		return am_lookup_8(map, key, off);
	case 4:
		return am_lookup_4(map, key, off);
	case 16:
		return am_lookup_16(map, key, off);
	default:
		return am_lookup_generic(map, key, off);
	}
}

const void *anchormap_get(const struct anchormap *map, const void *key)
{
	if (unlikely(!map || !key))
		return NULL;
	return am_lookup(map, key, map->value_off);
}
AM_EXPORT(anchormap_get);

const void *anchormap_get_key_value(const struct anchormap *map, const void *key,
				    const void **value)
{
	const u8 *e = NULL;

	if (likely(map && key))
		e = am_lookup(map, key, 0);
	if (value)
		*value = e ? e + map->value_off : NULL;
	return e;
}
AM_EXPORT(anchormap_get_key_value);

bool anchormap_contains_key(const struct anchormap *map, const void *key)
{
	return anchormap_get_key_value(map, key, NULL) != NULL;
}
AM_EXPORT(anchormap_contains_key);

/* ---------------------------------------------------------------------
 * Storage: arenas
 */

/* Entries a stripe takes from an arena of @entries at once. */
static u32 am_arena_chunk(size_t entries)
{
	size_t c = entries >> 10;

	return c < 1 ? 1 : c > 64 ? 64 : (u32)c;
}

/*
 * Entries for an arena that takes @entries inserts without growing: every
 * stripe may strand part of a chunk, so add 64 chunks.  0 when too big.
 */
static size_t am_arena_entries(size_t entries)
{
	size_t n = entries + (size_t)ANCHORMAP_STRIPES * am_arena_chunk(entries);

	if (n < AM_ARENA_MIN)
		n = AM_ARENA_MIN;
	return n > AM_ARENA_MAX ? 0 : n;
}

/* Allocate an arena of @entries (not yet part of the map) into @ar. */
static int am_arena_alloc(const struct anchormap *map, struct am_arena *ar, size_t entries,
			  bool atomic)
{
	size_t align = map->value_align > AM_LINE ? map->value_align : AM_LINE;
	size_t bytes;
	u8 *raw;

	memset(ar, 0, sizeof(*ar));
	if (!entries || entries > AM_ARENA_MAX ||
	    entries > (((size_t)-1 >> 2) - align) / map->entry_size)
		return -ENOMEM;
	bytes = entries * map->entry_size + align;
	raw = am_zalloc(bytes, atomic);	/* zero: every header FREE */
	if (!raw)
		return -ENOMEM;
	ar->raw = raw;
	ar->base = (u8 *)am_align_up((uintptr_t)raw, align);
	ar->bytes = bytes;
	ar->size = (u32)entries;
	ar->chunk = am_arena_chunk(entries);
	return 0;
}

static void am_arena_release(struct am_arena *ar)
{
	if (ar->raw)
		am_free(ar->raw, ar->bytes);
	memset(ar, 0, sizeof(*ar));
}

/* Make @ar arena @n of the map (the caller publishes nseg). */
static void am_arena_install(struct anchormap *map, u32 n, const struct am_arena *ar)
{
	map->shared->arenas[n] = *ar;
	map->arena_bias[n] = (uintptr_t)ar->base -
			     (uintptr_t)((size_t)n << AM_REF_SHIFT) * map->entry_size;
}

/* Entries not yet handed to stripes in arenas cur.. */
static size_t am_arena_room(const struct anchormap *map)
{
	const struct anchormap_shared *sh = map->shared;
	u32 n = am_load_acquire(&map->nseg), k;
	size_t room = 0;

	for (k = am_load_relaxed(&sh->cur); k < n; k++) {
		u32 c = am_load_relaxed(&sh->arenas[k].claimed);

		if (c < sh->arenas[k].size)
			room += sh->arenas[k].size - c;
	}
	return room;
}

/* ---------------------------------------------------------------------
 * Indexes
 */

/* Tags of @nslots that may leave EMPTY before the index is rebuilt: 7/8. */
static size_t am_idx_limit(size_t nslots)
{
	return nslots - nslots / 8;
}

/*
 * Slots for an index that takes @entries inserts without a rebuild: a
 * stripe takes credits a chunk (limit/1024) at a time and may strand up to
 * a chunk, and a rebuild starts when 1/16 of the limit is left (so that
 * writers go on inserting meanwhile), so allow 1/4 on top.
 */
static size_t am_idx_slots_for(size_t entries)
{
	size_t need, groups = 1;

	if (entries > ((size_t)-1 >> 6))
		return 0;
	need = entries + entries / 4 + 2 * ANCHORMAP_STRIPES + 1;
	while (am_idx_limit(groups * AM_GROUP) < need) {
		if (groups > ((size_t)-1 >> 8) / AM_LINE)
			return 0;
		groups <<= 1;
	}
	return groups * AM_GROUP;
}

static struct anchormap_index *am_idx_alloc(size_t nslots, bool atomic)
{
	size_t groups = nslots / AM_GROUP, bytes;
	struct anchormap_index *idx;

	if (!groups || groups > ((size_t)-1 >> 8) / AM_LINE)
		return NULL;
	bytes = AM_INDEX_HDR + groups * AM_LINE;
	idx = am_zalloc(bytes, atomic);	/* zero: every tag EMPTY, no overflow */
	if (!idx)
		return NULL;
	idx->gmask = groups - 1;
	idx->nslots = nslots;
	idx->limit = am_idx_limit(nslots);
	idx->chunk = idx->limit >> 10 ? idx->limit >> 10 : 1;
	idx->bytes = bytes;
	idx->avail = (long)idx->limit;
	return idx;
}

static void am_idx_free(struct anchormap_index *idx)
{
	if (idx && idx != &am_no_index.idx)
		am_free(idx, idx->bytes);
}

/* Free the replaced indexes: exclusive, or destroy. */
static void am_free_retired(struct anchormap *map)
{
	struct anchormap_index *idx = map->shared->retired, *older;

	for (; idx; idx = older) {
		older = idx->older;
		am_idx_free(idx);
	}
	map->shared->retired = NULL;
}

/*
 * Claim a free tag on @h's probe sequence in @idx: the first group with an
 * EMPTY or TOMBSTONE tag, trying them in turn when other stripes win them.
 * Every group passed gets @h's overflow bit, before the entry is placed.
 * Returns false when no group has room (an index rebuilt too small).
 */
static bool am_claim_tag(struct anchormap_index *idx, u64 h, struct am_place *pl, u8 *was,
			 u32 *probes)
{
	size_t gmask = idx->gmask, gi = h & gmask, step = 0;
	u8 ovf = __anchormap_ovf_bit(h);

	for (;;) {
		struct anchormap_group *g = am_group(idx, gi);
		u64 w0 = __anchormap_group_word(g->tag, 0), w1 = __anchormap_group_word(g->tag, 8);
		/* tombstones first: an EMPTY tag taken is one this index never gets back */
		u64 cand[2] = {
			__anchormap_match(w0, AM_TAG_TOMB) >> 7 |
				(__anchormap_match(w1, AM_TAG_TOMB) & 0x80808080ULL),
			__anchormap_zero_bytes(w0) >> 7 |
				(__anchormap_zero_bytes(w1) & 0x80808080ULL),
		};
		int pass;

		for (pass = 0; pass < 2; pass++) {
			u64 m;

			for (m = cand[pass]; m; m &= m - 1) {
				unsigned int i = am_word_slot(m);
				u8 expect = am_load_relaxed(&g->tag[i]);

				if (expect != AM_TAG_EMPTY && expect != AM_TAG_TOMB)
					continue;	/* over-reported, or taken */
				/* RELAXED: no data flows through RESERVED (protocol 2) */
				if (am_cas_relaxed(&g->tag[i], &expect, AM_TAG_RESERVED)) {
					pl->g = g;
					pl->i = i;
					*was = expect;
					*probes = (u32)step + 1;
					return true;
				}
			}
		}
		if (!(am_load_relaxed(&g->overflow) & ovf))
			am_or_relaxed(&g->overflow, ovf);
		if (++step > gmask)
			return false;
		gi = (gi + step) & gmask;
	}
}

/* Make a claimed tag FULL for entry @ref: protocol 2. */
static void am_publish_tag(const struct anchormap *map, const struct am_place *pl, u32 ref,
			   u64 h)
{
	am_store_release(&pl->g->ref[pl->i], ref);
	am_test_point(map, ANCHORMAP_TP_PUBLISH_TAG);
	am_store_release(&pl->g->tag[pl->i], __anchormap_tag(h));
}

/* The place of entry @ref in @idx (a writer of its stripe, or exclusive). */
static bool am_find_ref(const struct anchormap_index *idx, u64 h, u32 ref, struct am_place *pl)
{
	size_t gmask = idx->gmask, gi = h & gmask, step = 0;
	u8 tag = __anchormap_tag(h), ovf = __anchormap_ovf_bit(h);
	unsigned int i;

	for (;;) {
		struct anchormap_group *g = am_group(idx, gi);

		for (i = 0; i < AM_GROUP; i++) {
			if (am_load_relaxed(&g->tag[i]) == tag &&
			    am_load_relaxed(&g->ref[i]) == ref) {
				pl->g = g;
				pl->i = i;
				return true;
			}
		}
		if (!(am_load_relaxed(&g->overflow) & ovf) || ++step > gmask)
			return false;
		gi = (gi + step) & gmask;
	}
}

/* Entry @ref leaves @idx: its tag becomes a TOMBSTONE (protocol 2). */
static void am_drop_ref(struct anchormap_index *idx, u64 h, u32 ref)
{
	struct am_place pl;

	if (am_find_ref(idx, h, ref, &pl))
		am_store_relaxed(&pl.g->tag[pl.i], AM_TAG_TOMB);
}

/*
 * Add entry @ref to an index no reader uses yet (a rebuild's): claim and
 * publish at once.  An index with no room is marked broken, and the rebuild
 * discards it.  Returns whether an EMPTY tag was used.
 */
static bool am_add_ref(struct anchormap_index *idx, u64 h, u32 ref)
{
	struct am_place pl;
	u32 probes;
	u8 was;

	if (!am_claim_tag(idx, h, &pl, &was, &probes)) {
		am_store_relaxed(&idx->broken, 1);
		return false;
	}
	am_publish_tag(NULL, &pl, ref, h);	/* no reader uses the index yet */
	return was == AM_TAG_EMPTY;
}

/* ---------------------------------------------------------------------
 * Stripes, credits and storage growth (writers)
 */

static void am_stripe_lock(const struct anchormap *map, struct am_stripe *st,
			   unsigned long *flags)
{
	if (am_lock(&st->lock, flags, am_atomic(map)))
		am_counter_add(&st->contended, 1);
}

static void am_stripe_unlock(const struct anchormap *map, struct am_stripe *st,
			     unsigned long flags)
{
	am_unlock(&st->lock, flags, am_atomic(map));
}

/*
 * Take one credit (leave for an EMPTY tag) in @idx for a writer holding
 * @st.  Credits come from the index's shared avail counter a chunk at a
 * time, so that writers on different stripes rarely touch the same cache
 * line.  *@low is set when the index is down to its last 1/16: time to
 * start a rebuild, while writers can still insert.
 */
static bool am_take_credit(struct am_stripe *st, struct anchormap_index *idx, bool *low)
{
	long avail, take;

	/* written under the lock, peeked at by statistics: marked stores */
	if (st->credit_idx != idx) {
		am_store_relaxed(&st->credit_idx, idx);
		am_store_relaxed(&st->credits, 0);
	}
	if (st->credits) {
		am_store_relaxed(&st->credits, st->credits - 1);
		return true;
	}
	avail = am_load_relaxed(&idx->avail);
	do {
		if (avail <= 0) {
			*low = true;
			return false;
		}
		take = (long)am_min((size_t)avail, idx->chunk);
	} while (!am_cas_relaxed(&idx->avail, &avail, avail - take));
	if (avail - take < (long)(idx->limit / 16))
		*low = true;
	am_store_relaxed(&st->credits, (size_t)take - 1);
	return true;
}

/*
 * Give @st a storage chunk: entries from the first arena with some left,
 * in increasing ref order (protocol 5).  False when every arena is used up.
 */
static bool am_take_chunk(struct anchormap *map, struct am_stripe *st)
{
	struct anchormap_shared *sh = map->shared;
	u32 n = am_load_acquire(&map->nseg);	/* protocol 3 */
	u32 k = am_load_relaxed(&sh->cur);

	for (; k < n; k++) {
		struct am_arena *ar = &sh->arenas[k];
		u32 c = am_load_relaxed(&ar->claimed), take;

		while (c < ar->size) {
			take = (u32)am_min(ar->size - c, ar->chunk);
			if (am_cas_relaxed(&ar->claimed, &c, c + take)) {
				am_store_release(&st->next_ref, k << AM_REF_SHIFT | c);
				am_store_relaxed(&st->chunk_end, k << AM_REF_SHIFT | (c + take));
				return true;
			}
		}
		/* used up: later chunks come from the next arena */
		if (am_load_relaxed(&sh->cur) == k)
			am_cas_relaxed(&sh->cur, &k, k + 1);
	}
	return false;
}

/* What storage growth should append, or 0 entries for nothing to do. */
static int am_grow_size(struct anchormap *map, u32 n, u32 seen, size_t min_entries,
			size_t *entries)
{
	struct anchormap_shared *sh = map->shared;
	size_t total = 0, want;
	u32 k;

	*entries = 0;
	if (!min_entries && n != seen)
		return 0;	/* another writer grew it meanwhile */
	if (min_entries && am_arena_room(map) >= am_arena_entries(min_entries))
		return 0;
	if (n == ANCHORMAP_MAX_SEGMENTS)
		return -ENOMEM;
	for (k = 0; k < n; k++)
		total += sh->arenas[k].size;
	want = am_max(total / 2, AM_ARENA_MIN);
	if (min_entries) {
		size_t need = am_arena_entries(min_entries);

		if (!need)
			need = AM_ARENA_MAX;	/* more than one arena: the caller loops */
		if (need > want)
			want = need;
	}
	*entries = am_min(want, AM_ARENA_MAX);
	return 0;
}

/*
 * Append an arena after @seen arenas, with room for @min_entries more
 * inserts (0: half of what the map has).  A writer that lost the race to
 * grow finds nseg != seen and retries at once.
 *
 * The growth lock is held across the allocation, so that racing writers
 * wait rather than each allocate an arena, except for an
 * ANCHORMAP_F_ATOMIC map, whose growth lock is a raw spinlock: no allocator
 * may run under one (PREEMPT_RT), so the lock is dropped around the
 * allocation and the decision is made again afterwards (the xas_nomem
 * pattern; am_rebuild_start() repeats it for indexes).
 */
static int am_grow(struct anchormap *map, u32 seen, size_t min_entries, bool may_sleep)
{
	struct anchormap_shared *sh = map->shared;
	struct am_arena fresh = { 0 };
	bool drop = am_atomic(map);
	size_t entries;
	int err;
	u32 n;

	am_mutex_lock(&sh->grow_lock, am_atomic(map));
	for (;;) {
		n = am_load_relaxed(&map->nseg);	/* only growers write it */
		err = am_grow_size(map, n, seen, min_entries, &entries);
		if (err || !entries || (fresh.raw && fresh.size >= entries))
			break;
		if (drop)
			am_mutex_unlock(&sh->grow_lock, true);
		am_arena_release(&fresh);
		err = am_arena_alloc(map, &fresh, entries, !may_sleep && am_atomic(map));
		if (drop)
			am_mutex_lock(&sh->grow_lock, true);
		if (err || !drop)
			break;	/* without drop nothing changed: we held the lock */
	}
	if (!err && entries && fresh.raw) {
		am_arena_install(map, n, &fresh);
		am_test_point(map, ANCHORMAP_TP_GROW_PUBLISH);
		am_store_release(&map->nseg, n + 1);	/* publish: protocol 3 */
		fresh.raw = NULL;
	}
	am_mutex_unlock(&sh->grow_lock, am_atomic(map));
	am_arena_release(&fresh);	/* allocated but not needed after all */
	return err;
}

/* ---------------------------------------------------------------------
 * Rebuild: a new index while readers keep using the current one
 *
 * Started by a writer that found the index down to its last 1/16 (or full),
 * by anchormap_reserve(), or by nothing else.  The new index is published
 * in map->next before a sweep over the stripe locks, so every writer that
 * starts after the sweep adds its inserts and removals to it too (next
 * first, then the current index).  What was in storage before the sweep is
 * copied in chunks of AM_REBUILD_CHUNK entries, each under the locks of its
 * entries' stripes, one stripe at a time: a writer waits at most for one
 * chunk, at any map size.  Every writer that meets a rebuild copies one
 * chunk after its own operation; one that cannot insert without it copies
 * the rest.  The writer that completes the last chunk makes the new index
 * current (protocol 4).
 */

/* Slots for the index a rebuild makes room for @extra more entries in. */
static size_t am_rebuild_slots(const struct anchormap *map, size_t live, size_t extra)
{
	const struct anchormap_index *cur = am_index(map), *old;
	size_t want = am_idx_slots_for(live + extra), retired = cur->bytes;

	/* the same size when tombstones filled it, else room to grow into */
	if (want && want > cur->nslots)
		want = am_idx_slots_for(live + live / 2 + extra);
	if (want && cur->nslots > want)
		want = cur->nslots;	/* never smaller */
	/*
	 * Replaced indexes are kept until an exclusive operation: keep their
	 * sum (this one included) below the new index, by doubling when the
	 * same size would not be.
	 */
	for (old = map->shared->retired; old; old = old->older)
		retired += old->bytes;
	if (want == cur->nslots && retired > cur->bytes)
		want = cur->nslots * 2;
	return want;
}

/*
 * Take and drop every stripe lock; with @born, note each stripe's next ref;
 * without, forget the stripes' credits (for the index just replaced: its
 * memory may come back as another index, which must not inherit them).
 */
static void am_sweep(struct anchormap *map, u32 *born)
{
	unsigned long flags = 0;
	int s;

	for (s = 0; s < ANCHORMAP_STRIPES; s++) {
		struct am_stripe *st = &map->shared->stripes[s];

		am_stripe_lock(map, st, &flags);
		if (born) {	/* marked: writers of this stripe read it */
			am_store_relaxed(&born[s], st->next_ref);
		} else {
			am_store_relaxed(&st->credit_idx, NULL);
			am_store_relaxed(&st->credits, 0);
		}
		am_stripe_unlock(map, st, flags);
	}
}

static size_t am_len_sum(const struct anchormap *map);
static void am_rebuild_finish(struct anchormap *map);

/*
 * Start a rebuild for @extra more entries, into *@pre if it is big enough
 * (then taken).  Returns 0, -EBUSY when one is running already, or -ENOMEM
 * (the current index goes on serving).
 */
static int am_rebuild_start(struct anchormap *map, size_t extra, bool may_sleep,
			    struct anchormap_index **pre)
{
	struct anchormap_shared *sh = map->shared;
	struct am_rebuild *rb = &sh->rb;
	struct anchormap_index *next = NULL;
	bool drop = am_atomic(map);
	size_t slots;
	u32 k;

	if (pre && *pre) {	/* allocated by the caller, so that this cannot fail */
		next = *pre;
		*pre = NULL;
	}

	am_mutex_lock(&sh->rebuild_lock, am_atomic(map));
	for (;;) {
		if (am_load_relaxed(&map->next)) {
			am_mutex_unlock(&sh->rebuild_lock, am_atomic(map));
			if (pre && !*pre)
				*pre = next;	/* the caller's again */
			else
				am_idx_free(next);
			return -EBUSY;
		}
		slots = am_rebuild_slots(map, am_len_sum(map), extra);
		if (!slots)
			break;
		if (next && next->nslots >= slots)
			break;
		if (drop)
			am_mutex_unlock(&sh->rebuild_lock, true);
		am_idx_free(next);
		next = am_idx_alloc(slots, !may_sleep && am_atomic(map));
		if (drop)
			am_mutex_lock(&sh->rebuild_lock, true);
		if (!next || !drop)
			break;
	}
	if (!next) {
		am_mutex_unlock(&sh->rebuild_lock, am_atomic(map));
		return -ENOMEM;
	}
	rb->next = next;
	/* until the sweep reaches a stripe, its writers leave next to the copy */
	for (k = 0; k < ANCHORMAP_STRIPES; k++)
		am_store_relaxed(&rb->born[k], AM_NOT_SWEPT);
	am_store_release(&map->next, next);	/* protocol 4 */
	am_test_point(map, ANCHORMAP_TP_REBUILD_SWEEP);
	am_sweep(map, rb->born);
	rb->narenas = am_load_acquire(&map->nseg);
	rb->base[0] = 0;
	for (k = 0; k < rb->narenas; k++) {
		rb->end[k] = am_load_relaxed(&sh->arenas[k].claimed);
		rb->base[k + 1] = rb->base[k] + rb->end[k];
	}
	rb->pos = 0;
	am_store_relaxed(&rb->done, 0);
	if (rb->base[rb->narenas])
		am_store_release(&rb->ready, 1);
	else
		am_rebuild_finish(map);	/* nothing to copy */
	am_mutex_unlock(&sh->rebuild_lock, am_atomic(map));
	return 0;
}

/* Make the rebuilt index current, or discard a broken one.  Under rebuild_lock. */
static void am_rebuild_finish(struct anchormap *map)
{
	struct anchormap_shared *sh = map->shared;
	struct anchormap_index *next = sh->rb.next, *old = am_index(map);

	am_store_relaxed(&sh->rb.ready, 0);
	if (am_load_relaxed(&next->broken)) {
		am_store_release(&map->next, NULL);
		am_sweep(map, NULL);	/* no writer holds it any more */
		am_idx_free(next);
	} else {
		am_store_release(&map->index, next);	/* protocol 4 */
		/* before next is cleared: am_rebuild_sync() waits for that */
		am_store_relaxed(&sh->rebuilds, sh->rebuilds + 1);
		/* writers that saw the old index add to next: let them finish */
		am_sweep(map, NULL);
		am_store_release(&map->next, NULL);
		/* readers may still be in it: the kernel frees it after them */
		if (!am_free_after_readers(old, old->bytes, old->retire)) {
			old->older = sh->retired;
			am_store_release(&sh->retired, old);	/* statistics walk the list */
		}
	}
	sh->rb.next = NULL;
}

/* Copy the live entries among storage positions [p, p + n) into rb->next. */
static void am_rebuild_copy(struct anchormap *map, size_t p, size_t n)
{
	struct anchormap_shared *sh = map->shared;
	struct am_rebuild *rb = &sh->rb;
	struct am_stripe *st = NULL;
	unsigned long flags = 0;
	long used = 0;
	u32 k = 0;

	while (rb->base[k + 1] <= p)
		k++;
	for (; n; n--, p++) {
		u32 ref, hdr;
		unsigned int s;
		u8 *e;

		while (rb->base[k + 1] <= p)
			k++;
		ref = k << AM_REF_SHIFT | (u32)(p - rb->base[k]);
		e = am_entry(map, ref);
		hdr = am_load_acquire(am_hdr(map, e));	/* protocol 1 */
		if ((hdr & AM_HDR_STATE) != AM_HDR_LIVE)
			continue;
		s = am_hdr_stripe(hdr);
		if (ref >= am_load_relaxed(&rb->born[s]))
			continue;	/* its writer added it to next */
		if (st != &sh->stripes[s]) {
			if (st)
				am_stripe_unlock(map, st, flags);
			st = &sh->stripes[s];
			am_stripe_lock(map, st, &flags);
		}
		/* under its stripe's lock: not removed meanwhile */
		if ((am_load_relaxed(am_hdr(map, e)) & AM_HDR_STATE) != AM_HDR_LIVE)
			continue;
		if (am_add_ref(rb->next, __anchormap_hash_k(map, e, AM_GENERIC), ref))
			used++;
	}
	if (st)
		am_stripe_unlock(map, st, flags);
	if (used)
		am_add_relaxed(&rb->next->avail, -used);
}

/* Copy one chunk of a running rebuild.  False when none is left to take. */
static bool am_rebuild_step(struct anchormap *map)
{
	struct anchormap_shared *sh = map->shared;
	struct am_rebuild *rb = &sh->rb;
	size_t p, n, total;

	if (!am_load_acquire(&rb->ready))
		return false;
	am_mutex_lock(&sh->rebuild_lock, am_atomic(map));
	if (!am_load_relaxed(&rb->ready)) {
		am_mutex_unlock(&sh->rebuild_lock, am_atomic(map));
		return false;
	}
	total = rb->base[rb->narenas];
	p = rb->pos;
	n = am_min(total - p, AM_REBUILD_CHUNK);
	rb->pos = p + n;
	if (!n) {
		am_mutex_unlock(&sh->rebuild_lock, am_atomic(map));
		return false;
	}
	am_mutex_unlock(&sh->rebuild_lock, am_atomic(map));

	am_test_point(map, ANCHORMAP_TP_REBUILD_CHUNK);
	am_rebuild_copy(map, p, n);
	/* ACQ_REL: the finisher's switch follows every chunk's stores (protocol 4) */
	if (__atomic_add_fetch(&rb->done, n, __ATOMIC_ACQ_REL) == total) {
		am_test_point(map, ANCHORMAP_TP_REBUILD_SWITCH);
		am_mutex_lock(&sh->rebuild_lock, am_atomic(map));
		am_rebuild_finish(map);
		am_mutex_unlock(&sh->rebuild_lock, am_atomic(map));
	}
	return true;
}

/*
 * Help a rebuild to its end and wait for it, or start one if none runs:
 * for a writer that cannot insert without it, and for reserve.  An atomic
 * map's writer does not wait for chunks others are copying (it may have
 * interrupted one of them): -ENOMEM, reserve first.
 */
static int am_rebuild_sync(struct anchormap *map, size_t extra, bool may_sleep,
			   struct anchormap_index **pre)
{
	u64 before = am_load_relaxed(&map->shared->rebuilds);
	int err = 0;

	if (!am_load_acquire(&map->next)) {
		err = am_rebuild_start(map, extra, may_sleep, pre);
		if (err == -ENOMEM)
			return err;
	}
	while (am_rebuild_step(map))
		am_cond_resched(am_atomic(map) && !may_sleep);
	while (am_load_acquire(&map->next)) {
		if (am_atomic(map) && !may_sleep)
			return -ENOMEM;
		am_cond_resched(false);
		am_cpu_relax();
	}
	if (am_load_relaxed(&map->shared->rebuilds) == before)
		return -ENOMEM;	/* discarded: the rebuild could not place an entry */
	return 0;
}

/* After a writer's operation: start a rebuild if asked, then copy a chunk. */
static void am_rebuild_help(struct anchormap *map, bool start)
{
	if (start && !am_load_relaxed(&map->next))
		(void)am_rebuild_start(map, 0, false, NULL);
	if (am_load_relaxed(&map->next))
		(void)am_rebuild_step(map);
}

/* ---------------------------------------------------------------------
 * Writers
 */

/*
 * An init callback's error as an ERR_PTR code: a negative errno passes; any
 * other code (positive, or below -MAX_ERRNO, which ERR_PTR could not carry
 * and IS_ERR would not recognise) is out of contract and becomes -EINVAL.
 */
static long am_init_error(int err)
{
	return err < 0 && err >= -MAX_ERRNO ? err : -EINVAL;
}

/* What an insert found missing, to get with the stripe lock dropped. */
enum am_need {
	AM_NEED_NOTHING,
	AM_NEED_STORAGE,
	AM_NEED_INDEX,
};

/* Fill entry @e for @key; an init error leaves it DEAD. */
static int am_fill(struct anchormap *map, u8 *e, const void *key, const struct am_filler *f)
{
	u8 *value = e + map->value_off;
	int err;

	memcpy(e, key, map->key_size);
	if (f->value)
		memcpy(value, f->value, map->value_size);
	else
		memset(value, 0, map->value_size);
	if (f->init)
		f->init(value, e, f->arg);
	if (f->try_init) {
		err = f->try_init(value, e, f->arg);
		if (err)
			return (int)am_init_error(err);
	}
	return 0;
}

/*
 * Insert @key, absent, under its stripe lock: a storage entry from the
 * stripe's chunk, a tag in the current index (and in next during a
 * rebuild), filled, published.  Returns the entry, an ERR_PTR, or NULL with
 * *@need saying what to get first.
 */
static u8 *am_insert_locked(struct anchormap *map, struct am_stripe *st,
			    struct anchormap_index *idx, struct anchormap_index *next,
			    const void *key, u64 h, const struct am_filler *f,
			    enum am_need *need, bool *low)
{
	unsigned int s = AM_STRIPE_OF(h);
	struct am_place pl;
	u32 ref, probes;
	u8 *e, was;
	int err;

	if (st->next_ref == st->chunk_end && !am_take_chunk(map, st)) {
		*need = AM_NEED_STORAGE;
		return NULL;
	}
	ref = st->next_ref;
	if (!am_claim_tag(idx, h, &pl, &was, &probes)) {
		*low = true;
		*need = AM_NEED_INDEX;
		return NULL;
	}
	if (was == AM_TAG_EMPTY && !am_take_credit(st, idx, low)) {
		am_store_relaxed(&pl.g->tag[pl.i], AM_TAG_EMPTY);	/* never published */
		*need = AM_NEED_INDEX;
		return NULL;
	}
	e = am_entry(map, ref);
	err = am_fill(map, e, key, f);
	/* the entry is used up either way: protocol 5 */
	am_store_release(&st->next_ref, ref + 1);
	if (err) {
		am_store_release(am_hdr(map, e), am_hdr_word(AM_HDR_DEAD, s));
		am_counter_add(&st->deleted, 1);
		am_store_relaxed(&pl.g->tag[pl.i], was);	/* never published */
		if (was == AM_TAG_EMPTY)
			am_store_relaxed(&st->credits, st->credits + 1);
		return ERR_PTR(err);
	}
	am_store_release(am_hdr(map, e), am_hdr_word(AM_HDR_LIVE, s));	/* protocol 1 */
	/* next first, unless the rebuild's copy will add it: protocol 4 */
	if (next && next != idx && ref >= am_load_relaxed(&map->shared->rb.born[s]) &&
	    am_add_ref(next, h, ref))
		am_add_relaxed(&next->avail, -1);
	if (probes > st->longest_probe)
		am_store_relaxed(&st->longest_probe, probes);
	am_publish_tag(map, &pl, ref, h);	/* protocol 2 */
	am_counter_add(&st->live, 1);
	return e;
}

/*
 * The one writer path: find @key or insert it, under its stripe lock.
 * Growth and rebuilds may sleep, so they run with the stripe dropped and
 * the lookup is redone afterwards (another writer may have inserted the key
 * meanwhile).
 */
static u8 *am_upsert(struct anchormap *map, const void *key, u64 h,
		     const struct am_filler *f, bool *inserted)
{
	struct am_stripe *st = am_stripe_of(map, h);
	struct anchormap_index *idx, *next;
	unsigned long flags = 0;
	enum am_need need;
	bool low = false;
	u8 *e;
	u32 n;
	int err;

	*inserted = false;
	for (;;) {
		need = AM_NEED_NOTHING;
		am_stripe_lock(map, st, &flags);
		n = am_load_acquire(&map->nseg);
		/* next, then index: protocol 4 */
		next = am_load_acquire(&map->next);
		idx = am_index(map);
		e = am_search(map, idx, key, h, NULL);
		if (!e) {
			e = am_insert_locked(map, st, idx, next, key, h, f, &need, &low);
			*inserted = e && !IS_ERR(e);
		}
		am_stripe_unlock(map, st, flags);
		if (need == AM_NEED_NOTHING)
			break;
		if (need == AM_NEED_STORAGE)
			err = am_grow(map, n, 0, false);
		else
			err = am_rebuild_sync(map, 0, false, NULL);
		low = false;
		if (err)
			return ERR_PTR(err);
	}
	am_rebuild_help(map, low);
	return e;
}

static u8 *am_upsert_key(struct anchormap *map, const void *key, const struct am_filler *f,
			 bool *inserted)
{
	*inserted = false;
	if (unlikely(!map || !key || !map->shared))
		return ERR_PTR(-EINVAL);
	return am_upsert(map, key, __anchormap_hash_k(map, key, AM_GENERIC), f, inserted);
}

int anchormap_insert(struct anchormap *map, const void *key, const void *value)
{
	struct am_filler f = { .value = value };
	bool inserted;
	u8 *e = am_upsert_key(map, key, &f, &inserted);

	if (IS_ERR(e))
		return (int)PTR_ERR(e);
	return inserted;
}
AM_EXPORT(anchormap_insert);

/* The get_or_insert family: the stored value, or ERR_PTR. */
static const void *am_get_or_fill(struct anchormap *map, const void *key,
				  const struct am_filler *f)
{
	bool inserted;
	u8 *e = am_upsert_key(map, key, f, &inserted);

	return IS_ERR(e) ? (const void *)e : e + map->value_off;
}

const void *anchormap_get_or_insert(struct anchormap *map, const void *key, const void *value)
{
	struct am_filler f = { .value = value };

	return am_get_or_fill(map, key, &f);
}
AM_EXPORT(anchormap_get_or_insert);

const void *anchormap_get_or_insert_with(struct anchormap *map, const void *key,
		void (*init)(void *value, const void *key, void *arg), void *arg)
{
	struct am_filler f = { .init = init, .arg = arg };

	return am_get_or_fill(map, key, &f);
}
AM_EXPORT(anchormap_get_or_insert_with);

const void *anchormap_get_or_try_insert_with(struct anchormap *map, const void *key,
		int (*init)(void *value, const void *key, void *arg), void *arg)
{
	struct am_filler f = { .try_init = init, .arg = arg };

	return am_get_or_fill(map, key, &f);
}
AM_EXPORT(anchormap_get_or_try_insert_with);

static size_t am_idx_room(const struct anchormap *map);

/* am_idx_room() from outside any lock: the index may be replaced meanwhile. */
static size_t am_idx_room_now(const struct anchormap *map)
{
	size_t room;

	am_read_lock();		/* protocol 4 */
	room = am_idx_room(map);
	am_read_unlock();
	return room;
}

int anchormap_reserve(struct anchormap *map, size_t additional)
{
	struct anchormap_index *pre = NULL;
	size_t want, slots;
	int err;

	if (!map || !map->shared)
		return -EINVAL;
	if (!additional)
		return 0;
	if (additional > ((size_t)-1 >> 8))
		return -ENOMEM;
	/* the index first, so that a failure leaves the map as it was */
	want = additional + additional / 8 + 2 * ANCHORMAP_STRIPES;
	if (am_idx_room_now(map) < want) {
		/* under the rebuild lock the current index stays */
		am_mutex_lock(&map->shared->rebuild_lock, am_atomic(map));
		slots = am_rebuild_slots(map, am_len_sum(map), additional);
		am_mutex_unlock(&map->shared->rebuild_lock, am_atomic(map));
		pre = am_idx_alloc(slots, false);
		if (!pre)
			return -ENOMEM;
	}
	do {	/* an arena holds at most AM_ARENA_MAX: more takes several */
		err = am_grow(map, 0, additional, true);
	} while (!err && am_arena_room(map) < additional);
	while (!err && am_idx_room_now(map) < want)
		err = am_rebuild_sync(map, additional, true, &pre);
	am_idx_free(pre);
	return err;
}
AM_EXPORT(anchormap_reserve);

int anchormap_extend(struct anchormap *map, const void *keys, const void *values, size_t n)
{
	size_t i;
	int added = 0, ret;

	if (!map || !map->shared || (!keys && n) || n > 0x7fffffff)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		ret = anchormap_insert(map, (const u8 *)keys + i * map->key_size,
				       values ? (const u8 *)values + i * map->value_size : NULL);
		if (ret < 0)
			return ret;
		added += ret;
	}
	return added;
}
AM_EXPORT(anchormap_extend);

int anchormap_remove(struct anchormap *map, const void *key)
{
	struct anchormap_index *idx, *next;
	struct am_place pl;
	struct am_stripe *st;
	unsigned long flags = 0;
	u32 ref;
	u8 *e;
	u64 h;

	if (unlikely(!map || !key || !map->shared))
		return -EINVAL;
	h = __anchormap_hash_k(map, key, AM_GENERIC);
	st = am_stripe_of(map, h);
	am_stripe_lock(map, st, &flags);
	next = am_load_acquire(&map->next);	/* next, then index: protocol 4 */
	idx = am_index(map);
	e = am_search(map, idx, key, h, &pl);
	if (!e) {
		am_stripe_unlock(map, st, flags);
		return 0;
	}
	ref = am_load_relaxed(&pl.g->ref[pl.i]);
	am_store_release(am_hdr(map, e), am_hdr_word(AM_HDR_REMOVED, AM_STRIPE_OF(h)));
	if (next && next != idx)
		am_drop_ref(next, h, ref);	/* next first: protocol 4 */
	am_store_relaxed(&pl.g->tag[pl.i], AM_TAG_TOMB);	/* protocol 2 */
	am_counter_add(&st->live, -1);
	am_counter_add(&st->deleted, 1);
	am_stripe_unlock(map, st, flags);
	if (next)
		am_rebuild_help(map, false);
	return 1;
}
AM_EXPORT(anchormap_remove);

/* ---------------------------------------------------------------------
 * Sizes and statistics (lock-free, RELAXED sums)
 */

static size_t am_len_sum(const struct anchormap *map)
{
	long sum = 0;
	int i;

	for (i = 0; i < ANCHORMAP_STRIPES; i++)
		sum += am_load_relaxed(&map->shared->stripes[i].live);
	return sum > 0 ? (size_t)sum : 0;
}

size_t anchormap_len(const struct anchormap *map)
{
	if (!map || !map->shared)
		return 0;
	return am_len_sum(map);
}
AM_EXPORT(anchormap_len);

bool anchormap_is_empty(const struct anchormap *map)
{
	return anchormap_len(map) == 0;
}
AM_EXPORT(anchormap_is_empty);

/* EMPTY tags still to be filled in the current index, counting stripes' credits. */
static size_t am_idx_room(const struct anchormap *map)
{
	const struct anchormap_index *idx = am_index(map);
	long sum = am_load_relaxed(&idx->avail);
	int i;

	for (i = 0; i < ANCHORMAP_STRIPES; i++) {
		const struct am_stripe *st = &map->shared->stripes[i];

		/* racy peek at lock-protected fields: an estimate is enough */
		if (am_load_relaxed(&st->credit_idx) == idx)
			sum += (long)am_load_relaxed(&st->credits);
	}
	return sum > 0 ? (size_t)sum : 0;
}

/* Storage entries still free: arenas' unclaimed ones and stripes' chunks. */
static size_t am_storage_room(const struct anchormap *map)
{
	size_t room = am_arena_room(map);
	int i;

	for (i = 0; i < ANCHORMAP_STRIPES; i++) {
		const struct am_stripe *st = &map->shared->stripes[i];

		room += am_load_relaxed(&st->chunk_end) - am_load_relaxed(&st->next_ref);
	}
	return room;
}

size_t anchormap_capacity(const struct anchormap *map)
{
	size_t a, b;

	if (!map || !map->shared)
		return 0;
	a = am_storage_room(map);
	b = am_idx_room_now(map);
	return anchormap_len(map) + am_min(a, b);
}
AM_EXPORT(anchormap_capacity);

void anchormap_stats(const struct anchormap *map, struct anchormap_stats *s)
{
	const struct anchormap_index *idx, *old;
	u32 n, i;

	if (!s)
		return;
	memset(s, 0, sizeof(*s));
	if (!map || !map->shared)
		return;
	s->name = map->name ? map->name : "anchormap";
	s->len = anchormap_len(map);
	s->capacity = anchormap_capacity(map);
	n = am_load_acquire(&map->nseg);
	s->segments = n;
	s->bytes = sizeof(struct anchormap_shared);
	for (i = 0; i < n; i++) {
		s->entries += map->shared->arenas[i].size;
		s->bytes += map->shared->arenas[i].bytes;
	}
	am_read_lock();		/* the index may be replaced meanwhile: protocol 4 */
	idx = am_index(map);
	s->slots = idx->nslots;
	s->index_bytes = idx->bytes;
	s->index_used = idx->limit - am_idx_room(map);
	s->bytes += idx->bytes;
	am_read_unlock();
	for (old = am_load_acquire(&map->shared->retired); old; old = old->older)
		s->retired_bytes += old->bytes;
	s->bytes += s->retired_bytes;
	s->rebuilds = am_load_relaxed(&map->shared->rebuilds);
	for (i = 0; i < ANCHORMAP_STRIPES; i++) {
		const struct am_stripe *st = &map->shared->stripes[i];
		u32 probe = am_load_relaxed(&st->longest_probe);

		s->deleted += am_load_relaxed(&st->deleted);
		s->contended += am_load_relaxed(&st->contended);
		if (probe > s->longest_probe)
			s->longest_probe = probe;
	}
}
AM_EXPORT(anchormap_stats);

/* ---------------------------------------------------------------------
 * Iteration
 *
 * A walk reads storage, not the index: arena by arena, entry by entry, up
 * to what each arena had handed out when the walk reached it, yielding the
 * LIVE ones.  Entries never move and a header never goes back to LIVE, so
 * an entry present for the whole walk is yielded exactly once.  A key can
 * have several entries only through remove and re-insert, and only one is
 * LIVE at a time; the walk skips every entry at or past its stripe's next
 * ref at anchormap_iter_init() (protocol 5), that is every entry inserted
 * after the walk began, so it never meets a key twice: of two entries of
 * one key, the later was inserted after the earlier was removed.
 */

static void am_iter_start(struct anchormap_iter *it, const struct anchormap *map)
{
	int i;

	memset(it, 0, sizeof(*it));
	it->map = map;
	if (!map || !map->shared)
		return;
	for (i = 0; i < ANCHORMAP_STRIPES; i++)
		it->born[i] = am_load_acquire(&map->shared->stripes[i].next_ref);
	it->narenas = am_load_acquire(&map->nseg);	/* protocol 3 */
	if (it->narenas)
		it->end = am_load_relaxed(&map->shared->arenas[0].claimed);
}

void anchormap_iter_init(struct anchormap_iter *it, const struct anchormap *map)
{
	if (it)
		am_iter_start(it, map);
}
AM_EXPORT(anchormap_iter_init);

static bool am_iter_step(struct anchormap_iter *it, const void **key, void **value)
{
	const struct anchormap *map = it->map;

	if (!map || !map->shared)
		return false;
	am_test_point(map, ANCHORMAP_TP_ITER_NEXT);
	for (;;) {
		u32 ref, hdr;
		u8 *e;

		if (it->pos >= it->end) {
			if (it->arena + 1 >= it->narenas)
				return false;
			it->arena++;
			it->pos = 0;
			it->end = am_load_relaxed(&map->shared->arenas[it->arena].claimed);
			continue;
		}
		ref = it->arena << AM_REF_SHIFT | it->pos++;
		e = am_entry(map, ref);
		hdr = am_load_acquire(am_hdr(map, e));	/* protocol 1 */
		if ((hdr & AM_HDR_STATE) != AM_HDR_LIVE || ref >= it->born[am_hdr_stripe(hdr)])
			continue;
		if (key)
			*key = e;
		if (value)
			*value = e + map->value_off;
		return true;
	}
}

bool anchormap_iter_next(struct anchormap_iter *it, const void **key, const void **value)
{
	return it && am_iter_step(it, key, (void **)value);
}
AM_EXPORT(anchormap_iter_next);

bool anchormap_iter_next_mut(struct anchormap_iter *it, const void **key, void **value)
{
	return it && am_iter_step(it, key, value);
}
AM_EXPORT(anchormap_iter_next_mut);

/* ---------------------------------------------------------------------
 * Life cycle
 */

static int am_check_params(const struct anchormap_params *p)
{
	if (!p || !p->key_size || p->key_size > AM_MAX_FIELD || p->value_size > AM_MAX_FIELD)
		return -EINVAL;
	if (p->value_align & (p->value_align - 1) || p->value_align > AM_MAX_ALIGN)
		return -EINVAL;
	if (p->flags & ~ANCHORMAP_F_ALL)
		return -EINVAL;
	return 0;
}

/*
 * Geometry of an entry (key, value at its alignment, header): the
 * header's, which anchormap_get_fast() computes from its constant params.
 */
static void am_set_geometry(struct anchormap *map, const struct anchormap_params *p)
{
	map->key_size = p->key_size;
	map->value_size = p->value_size;
	map->value_align = __anchormap_value_align(p);
	map->value_off = __anchormap_value_off(p);
	map->hdr_off = __anchormap_hdr_off(p);
	map->entry_size = __anchormap_entry_size(p);
	map->fast_sig = __anchormap_fast_sig(p);
}

static void am_params_of(const struct anchormap *map, struct anchormap_params *p)
{
	memset(p, 0, sizeof(*p));
	p->key_size = map->key_size;
	p->value_size = map->value_size;
	p->value_align = map->value_align;
	p->flags = map->flags;
	p->hash = map->hash;
	p->equal = map->equal;
	p->release = map->release;
	p->priv = map->priv;
	p->name = map->name;
}

/* Free all storage and indexes; the map then reads empty.  Exclusive. */
static void am_free_all(struct anchormap *map)
{
	struct anchormap_index *idx = map->index;
	u32 n = map->nseg, k;

	am_store_release(&map->index, &am_no_index.idx);
	am_store_release(&map->nseg, 0);
	for (k = 0; k < n; k++) {
		am_arena_release(&map->shared->arenas[k]);
		map->arena_bias[k] = 0;
	}
	am_idx_free(idx);
	am_free_retired(map);
	/* a rebuild writers left unfinished: nothing is built from it now */
	am_store_relaxed(&map->shared->rb.ready, 0);
	am_idx_free(map->next);
	am_store_release(&map->next, NULL);
	map->shared->rb.next = NULL;
}

/*
 * Finish a rebuild writers left unfinished (every writer copies one chunk,
 * so one stays pending when writes stop): for an exclusive operation that
 * changes the index in place, which must not leave the new one behind.
 */
static void am_rebuild_settle(struct anchormap *map)
{
	while (am_rebuild_step(map))
		am_cond_resched(am_atomic(map));
}

/* Storage for @entries inserts: one arena, or several of AM_ARENA_MAX. */
static int am_alloc_storage(struct anchormap *map, size_t entries)
{
	struct am_arena ar;
	u32 n = 0;

	do {
		size_t want = am_arena_entries(entries);
		int err;

		if (!want)
			want = AM_ARENA_MAX;
		if (n == ANCHORMAP_MAX_SEGMENTS)
			return -ENOMEM;
		err = am_arena_alloc(map, &ar, want, false);
		if (err)
			return err;
		am_arena_install(map, n++, &ar);
		am_store_release(&map->nseg, n);
		entries = entries > want ? entries - want : 0;
	} while (entries);
	return 0;
}

int anchormap_init(struct anchormap *map, const struct anchormap_params *p, size_t capacity)
{
	struct anchormap_shared *sh;
	struct anchormap_index *idx;
	size_t slots;
	int i, err;

	if (!map)
		return -EINVAL;
	err = am_check_params(p);
	if (err)
		return err;
	memset(map, 0, sizeof(*map));
	map->index = &am_no_index.idx;	/* a failed init leaves a map that reads empty */
	am_set_geometry(map, p);
	map->flags = p->flags;
	map->hash = p->hash;
	map->equal = p->equal;
	map->release = p->release;
	map->priv = p->priv;
	map->name = p->name;
	map->seed = am_random_seed();
	if (!p->hash && !p->equal)
		map->lookup_ks = p->key_size;	/* per-key-size lookups and searches */

	slots = am_idx_slots_for(capacity);
	if (!slots || capacity > ((size_t)-1 >> 8) / map->entry_size)
		return -ENOMEM;
	sh = am_zalloc(sizeof(*sh), false);	/* init runs in process context */
	if (!sh)
		return -ENOMEM;
	map->shared = sh;
	idx = am_idx_alloc(slots, false);
	err = idx ? am_alloc_storage(map, capacity) : -ENOMEM;
	if (err || am_lock_class_init(&sh->lclass, p->name)) {
		am_lock_class_fini(&sh->lclass);
		am_idx_free(idx);
		am_free_all(map);
		map->shared = NULL;
		am_free(sh, sizeof(*sh));
		return -ENOMEM;
	}
	for (i = 0; i < ANCHORMAP_STRIPES; i++)
		am_lock_init(&sh->stripes[i].lock, am_atomic(map), &sh->lclass);
	am_mutex_init(&sh->grow_lock, am_atomic(map), &sh->lclass);
	am_mutex_init(&sh->rebuild_lock, am_atomic(map), &sh->lclass);
	/* the map is not shared yet: the caller publishes it */
	am_store_release(&map->index, idx);
	am_registry_add(&sh->reg, map);
	return 0;
}
AM_EXPORT(anchormap_init);

static void am_release_entry(const struct anchormap *map, u8 *e)
{
	if (map->release)
		map->release(e, e + map->value_off, map->priv);
}

/*
 * Exclusive walk over every entry holding bytes the map owns: live ones
 * (@fn_live) and removed ones (released here).  Preempts now and then:
 * these walks can cover millions of entries.
 */
static void am_walk_owned(struct anchormap *map,
			  void (*fn_live)(struct anchormap *map, u8 *e, void *arg), void *arg)
{
	u32 n = am_load_relaxed(&map->nseg), k, i;

	for (k = 0; k < n; k++) {
		u32 end = am_load_relaxed(&map->shared->arenas[k].claimed);

		for (i = 0; i < end; i++) {
			u8 *e = am_entry(map, k << AM_REF_SHIFT | i);
			u32 state = am_load_relaxed(am_hdr(map, e)) & AM_HDR_STATE;

			if (state == AM_HDR_LIVE) {
				if (fn_live)
					fn_live(map, e, arg);
			} else if (state == AM_HDR_REMOVED) {
				am_release_entry(map, e);
			}
			if ((i & 4095) == 4095)
				am_cond_resched(am_atomic(map));
		}
	}
}

static void am_release_live(struct anchormap *map, u8 *e, void *arg)
{
	am_release_entry(map, e);
}

/* Stripes of a map whose storage starts afresh at @ref (its entries below). */
static void am_restart_stripes(struct anchormap *map, u32 ref)
{
	int i;

	for (i = 0; i < ANCHORMAP_STRIPES; i++) {
		struct am_stripe *st = &map->shared->stripes[i];

		/* marked stores: anchormap_stats (/proc) reads these meanwhile */
		am_store_relaxed(&st->credit_idx, NULL);
		am_store_relaxed(&st->credits, 0);
		am_store_relaxed(&st->next_ref, ref);
		am_store_relaxed(&st->chunk_end, ref);
	}
}

static void am_zero_counts(struct anchormap *map)
{
	int i;

	for (i = 0; i < ANCHORMAP_STRIPES; i++) {
		am_store_relaxed(&map->shared->stripes[i].live, 0);
		am_store_relaxed(&map->shared->stripes[i].deleted, 0);
	}
}

/*
 * Replace storage and index by @ar (its first @used entries filled) and
 * @idx.  /proc readers (anchormap_stats) must not see the arenas change:
 * the caller took the map out of the registry.
 */
static void am_replace(struct anchormap *map, struct am_arena *ar, u32 used,
		       struct anchormap_index *idx)
{
	struct anchormap_shared *sh = map->shared;

	am_free_all(map);
	ar->claimed = used;
	am_arena_install(map, 0, ar);
	am_store_relaxed(&sh->cur, 0);
	am_store_release(&map->nseg, 1);
	am_store_release(&map->index, idx);
	am_restart_stripes(map, used);
}

static void am_destroy(struct anchormap *map, bool release)
{
	if (!map || !map->shared)
		return;
	am_registry_del(&map->shared->reg);	/* before anything is freed */
	if (release)
		am_walk_owned(map, am_release_live, NULL);
	am_free_all(map);
	am_lock_class_fini(&map->shared->lclass);	/* no lock of the map is used now */
	am_free(map->shared, sizeof(*map->shared));
	map->shared = NULL;
}

void anchormap_destroy(struct anchormap *map)
{
	am_destroy(map, true);
}
AM_EXPORT(anchormap_destroy);

/* ---------------------------------------------------------------------
 * Exclusive operations
 */

void *anchormap_get_mut(struct anchormap *map, const void *key)
{
	return (void *)anchormap_get(map, key);
}
AM_EXPORT(anchormap_get_mut);

/* The entry of @key in the current index (exclusive, or under its stripe lock). */
static u8 *am_find(const struct anchormap *map, const void *key, u64 h, struct am_place *pl)
{
	return am_search(map, am_index(map), key, h, pl);
}

bool anchormap_modify(struct anchormap *map, const void *key,
		      void (*fn)(void *value, const void *key, void *arg), void *arg)
{
	u8 *e;

	if (!map || !key || !map->shared)
		return false;
	e = am_find(map, key, __anchormap_hash_k(map, key, AM_GENERIC), NULL);
	if (!e)
		return false;
	if (fn)
		fn(e + map->value_off, e, arg);
	return true;
}
AM_EXPORT(anchormap_modify);

/* An entry whose bytes the caller now owns or that was released: DEAD, out of the index. */
static void am_kill(struct anchormap *map, u8 *e, u64 h, const struct am_place *pl)
{
	struct am_stripe *st = am_stripe_of(map, h);

	am_store_relaxed(am_hdr(map, e), am_hdr_word(AM_HDR_DEAD, AM_STRIPE_OF(h)));
	am_store_relaxed(&pl->g->tag[pl->i], AM_TAG_TOMB);
	am_counter_add(&st->live, -1);
	am_counter_add(&st->deleted, 1);
}

int anchormap_remove_entry(struct anchormap *map, const void *key, void *key_out, void *value_out)
{
	struct am_place pl;
	u8 *e;
	u64 h;

	if (!map || !key || !map->shared)
		return -EINVAL;
	am_rebuild_settle(map);
	h = __anchormap_hash_k(map, key, AM_GENERIC);
	e = am_find(map, key, h, &pl);
	if (!e)
		return 0;
	if (key_out)
		memcpy(key_out, e, map->key_size);
	if (value_out)
		memcpy(value_out, e + map->value_off, map->value_size);
	am_kill(map, e, h, &pl);	/* the caller owns the bytes: never released */
	return 1;
}
AM_EXPORT(anchormap_remove_entry);

/* Empty the map in place: keep its biggest arena, zeroed, and its index. */
static void am_reset(struct anchormap *map)
{
	struct anchormap_shared *sh = map->shared;
	struct anchormap_index *idx = map->index;
	u32 n = map->nseg, k, big = 0;
	struct am_arena ar;

	am_registry_del(&sh->reg);
	for (k = 1; k < n; k++)
		if (sh->arenas[k].size > sh->arenas[big].size)
			big = k;
	ar = sh->arenas[big];
	memset(ar.base, 0, (size_t)ar.claimed * map->entry_size);
	memset(sh->arenas + big, 0, sizeof(ar));	/* kept: am_free_all() skips it */
	map->index = &am_no_index.idx;			/* kept too */
	memset((u8 *)idx + AM_INDEX_HDR, 0, (idx->gmask + 1) * AM_LINE);
	idx->avail = (long)idx->limit;
	idx->broken = 0;
	idx->older = NULL;
	am_replace(map, &ar, 0, idx);
	am_zero_counts(map);
	am_registry_add(&sh->reg, map);
}

void anchormap_clear(struct anchormap *map)
{
	if (!map || !map->shared)
		return;
	am_walk_owned(map, am_release_live, NULL);
	am_reset(map);
}
AM_EXPORT(anchormap_clear);

struct am_drain_ctx {
	void (*fn)(void *key, void *value, void *arg);
	void *arg;
};

static void am_drain_one(struct anchormap *map, u8 *e, void *arg)
{
	struct am_drain_ctx *ctx = arg;

	if (ctx->fn)
		ctx->fn(e, e + map->value_off, ctx->arg);
}

void anchormap_drain(struct anchormap *map, void (*fn)(void *key, void *value, void *arg),
		     void *arg)
{
	struct am_drain_ctx ctx = { .fn = fn, .arg = arg };

	if (!map || !map->shared)
		return;
	/* nobody to take the entries: the map still owns them, release them */
	am_walk_owned(map, fn ? am_drain_one : am_release_live, &ctx);
	am_reset(map);
}
AM_EXPORT(anchormap_drain);

struct am_compact_ctx {
	struct am_arena *ar;
	struct anchormap_index *idx;
	u32 used;
};

/* Copy a live entry into the fresh, not yet shared arena and index. */
static void am_move_live(struct anchormap *map, u8 *e, void *arg)
{
	struct am_compact_ctx *c = arg;
	u64 h = __anchormap_hash_k(map, e, AM_GENERIC);
	struct am_stripe *st = am_stripe_of(map, h);
	struct am_place pl;
	u32 probes = 0;
	u8 was;

	memcpy(c->ar->base + (size_t)c->used * map->entry_size, e, map->entry_size);
	if (am_claim_tag(c->idx, h, &pl, &was, &probes)) {
		am_publish_tag(NULL, &pl, c->used, h);	/* arena 0: the ref is the number */
		c->idx->avail--;
	}
	c->used++;
	am_counter_add(&st->live, 1);
	if (probes > st->longest_probe)
		am_store_relaxed(&st->longest_probe, probes);
}

/*
 * Rebuild into one arena and one index sized for the live entries: removed
 * entries are released, dead ones dropped.  Nothing changes if an
 * allocation fails.
 */
static int am_compact(struct anchormap *map)
{
	size_t live = anchormap_len(map);
	struct am_compact_ctx c = { 0 };
	struct anchormap_index *idx;
	struct am_arena ar;
	size_t entries = am_arena_entries(live);

	idx = am_idx_alloc(am_idx_slots_for(live), am_atomic(map));
	if (!idx || !entries || am_arena_alloc(map, &ar, entries, am_atomic(map))) {
		am_idx_free(idx);
		return -ENOMEM;
	}
	c.ar = &ar;
	c.idx = idx;
	am_registry_del(&map->shared->reg);
	am_zero_counts(map);
	am_walk_owned(map, am_move_live, &c);	/* counts the live ones again */
	am_replace(map, &ar, c.used, idx);
	am_registry_add(&map->shared->reg, map);
	return 0;
}

int anchormap_shrink_to_fit(struct anchormap *map)
{
	if (!map || !map->shared)
		return -EINVAL;
	return am_compact(map);
}
AM_EXPORT(anchormap_shrink_to_fit);

void anchormap_retain(struct anchormap *map,
		      bool (*keep)(const void *key, void *value, void *arg), void *arg)
{
	u32 n, k, i;

	if (!map || !map->shared || !keep)
		return;
	am_rebuild_settle(map);
	n = map->nseg;
	for (k = 0; k < n; k++) {
		u32 end = map->shared->arenas[k].claimed;

		for (i = 0; i < end; i++) {
			u32 ref = k << AM_REF_SHIFT | i;
			u8 *e = am_entry(map, ref);
			struct am_place pl;
			u64 h;

			if ((*am_hdr(map, e) & AM_HDR_STATE) != AM_HDR_LIVE ||
			    keep(e, e + map->value_off, arg))
				continue;
			am_release_entry(map, e);
			/* released now, so DEAD: compaction must not release it again */
			h = __anchormap_hash_k(map, e, AM_GENERIC);
			if (am_find_ref(map->index, h, ref, &pl))
				am_kill(map, e, h, &pl);
		}
	}
	/* reclaim removed entries; on -ENOMEM the map stays correct, with them */
	(void)am_compact(map);
}
AM_EXPORT(anchormap_retain);

/* ---------------------------------------------------------------------
 * Entry API (exclusive)
 */

struct anchormap_entry *anchormap_entry(struct anchormap *map, const void *key,
					struct anchormap_entry *e)
{
	if (!map || !key || !e || !map->shared)
		return NULL;
	e->map = map;
	e->key = key;
	e->hash = __anchormap_hash_k(map, key, AM_GENERIC);
	e->slot = am_find(map, key, e->hash, NULL);
	return e;
}
AM_EXPORT(anchormap_entry);

bool anchormap_entry_is_occupied(const struct anchormap_entry *e)
{
	return e && e->slot;
}
AM_EXPORT(anchormap_entry_is_occupied);

struct anchormap_entry *anchormap_entry_and_modify(struct anchormap_entry *e,
		void (*fn)(void *value, const void *key, void *arg), void *arg)
{
	if (e && e->slot && fn)
		fn((u8 *)e->slot + e->map->value_off, e->slot, arg);
	return e;
}
AM_EXPORT(anchormap_entry_and_modify);

static void *am_entry_fill(struct anchormap_entry *e, const struct am_filler *f)
{
	bool inserted;
	u8 *slot;

	if (!e || !e->map)
		return ERR_PTR(-EINVAL);
	if (!e->slot) {
		slot = am_upsert(e->map, e->key, e->hash, f, &inserted);
		if (IS_ERR(slot))
			return slot;
		e->slot = slot;
	}
	return (u8 *)e->slot + e->map->value_off;
}

void *anchormap_entry_or_insert(struct anchormap_entry *e, const void *value)
{
	struct am_filler f = { .value = value };

	return am_entry_fill(e, &f);
}
AM_EXPORT(anchormap_entry_or_insert);

void *anchormap_entry_or_insert_with(struct anchormap_entry *e,
		void (*init)(void *value, const void *key, void *arg), void *arg)
{
	struct am_filler f = { .init = init, .arg = arg };

	return am_entry_fill(e, &f);
}
AM_EXPORT(anchormap_entry_or_insert_with);

/* ---------------------------------------------------------------------
 * Whole map
 */

int anchormap_clone(struct anchormap *dst, const struct anchormap *src)
{
	struct anchormap_params p;
	struct anchormap_iter it;
	const void *key, *value;
	int err;

	if (!dst || !src || !src->shared || dst == src)
		return -EINVAL;
	am_params_of(src, &p);
	err = anchormap_init(dst, &p, anchormap_len(src));
	if (err)
		return err;
	anchormap_for_each(src, &it, &key, &value) {
		err = anchormap_insert(dst, key, value);
		if (err < 0) {
			/* the copies share resources with src: never release them */
			am_destroy(dst, false);
			return err;
		}
	}
	return 0;
}
AM_EXPORT(anchormap_clone);

bool anchormap_equal(const struct anchormap *a, const struct anchormap *b)
{
	struct anchormap_iter it;
	const void *key, *value;

	if (!a || !b)
		return a == b;
	if (a == b)
		return true;
	if (a->key_size != b->key_size || a->value_size != b->value_size ||
	    anchormap_len(a) != anchormap_len(b))
		return false;
	anchormap_for_each(a, &it, &key, &value) {
		const void *other = anchormap_get(b, key);

		if (!other || memcmp(other, value, a->value_size))
			return false;
	}
	return true;
}
AM_EXPORT(anchormap_equal);

/* ---------------------------------------------------------------------
 * Snapshots: docs/snapshot-format.md
 *
 * Little-endian throughout.  Entries go in blocks of at most
 * AM_SNAP_BLOCK so that the writer streams (the entry count of a map that
 * changes during the save is only known at the end, hence the trailer)
 * and the reader never sizes anything from a count it has not seen data
 * for.
 */

#define AM_SNAP_MAGIC		"ANCHRMAP"
#define AM_SNAP_VERSION		1u
#define AM_SNAP_BOM		0x01020304u
#define AM_SNAP_HDR		32
#define AM_SNAP_BLOCK		4096u
#define AM_SNAP_BUF		65536u
#define AM_FNV_BASIS		0xcbf29ce484222325ULL
#define AM_FNV_PRIME		0x100000001b3ULL

/* FNV-1a over everything before the checksum: catches corruption only. */
static u64 am_fnv(u64 h, const u8 *p, size_t len)
{
	while (len--)
		h = (h ^ *p++) * AM_FNV_PRIME;
	return h;
}

static void am_put_le(u8 *p, u64 v, int bytes)
{
	int i;

	for (i = 0; i < bytes; i++)
		p[i] = (u8)(v >> (8 * i));
}

static u64 am_get_le(const u8 *p, int bytes)
{
	u64 v = 0;
	int i;

	for (i = bytes - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

struct am_snap {
	const struct anchormap *map;
	int (*write)(const void *buf, size_t len, void *arg);
	int (*read)(void *buf, size_t len, void *arg);
	void *arg;
	u64 sum;
	u64 count;
	size_t entry;		/* key_size + value_size */
	struct anchormap_iter it;
	u8 *buf;		/* one block of entries, or one entry on load */
	size_t buf_size;
};

static int am_snap_write(struct am_snap *s, const void *buf, size_t len)
{
	s->sum = am_fnv(s->sum, buf, len);
	return s->write(buf, len, s->arg);
}

static void am_snap_header(const struct anchormap *map, u8 *hdr)
{
	memset(hdr, 0, AM_SNAP_HDR);
	memcpy(hdr, AM_SNAP_MAGIC, 8);
	am_put_le(hdr + 8, AM_SNAP_VERSION, 4);
	am_put_le(hdr + 12, AM_SNAP_BOM, 4);
	am_put_le(hdr + 16, map->key_size, 4);
	am_put_le(hdr + 20, map->value_size, 4);
}

/* Fill the block buffer from the walk; returns how many entries it holds. */
static u32 am_snap_fill(struct am_snap *s, u32 max)
{
	const void *key, *value;
	u32 n = 0;

	while (n < max && anchormap_iter_next(&s->it, &key, &value)) {
		u8 *p = s->buf + 4 + (size_t)n * s->entry;

		memcpy(p, key, s->map->key_size);
		memcpy(p + s->map->key_size, value, s->map->value_size);
		n++;
	}
	return n;
}

static int am_snap_save_blocks(struct am_snap *s, u32 per_block)
{
	u8 trailer[16];
	int err;
	u32 n;

	do {
		n = am_snap_fill(s, per_block);
		am_put_le(s->buf, n, 4);
		err = am_snap_write(s, s->buf, 4 + (size_t)n * s->entry);
		if (err)
			return err;
		s->count += n;
		am_cond_resched(am_atomic(s->map));
	} while (n);	/* the empty block ends the list */
	am_put_le(trailer, s->count, 8);
	err = am_snap_write(s, trailer, 8);
	if (err)
		return err;
	am_put_le(trailer + 8, s->sum, 8);
	return s->write(trailer + 8, 8, s->arg);
}

static struct am_snap *am_snap_new(const struct anchormap *map, size_t buf_size)
{
	struct am_snap *s = am_zalloc(sizeof(*s), am_atomic(map));

	if (!s)
		return NULL;
	s->buf = am_zalloc(buf_size, am_atomic(map));
	if (!s->buf) {
		am_free(s, sizeof(*s));
		return NULL;
	}
	s->buf_size = buf_size;
	s->map = map;
	s->entry = (size_t)map->key_size + map->value_size;
	s->sum = AM_FNV_BASIS;
	return s;
}

static void am_snap_free(struct am_snap *s)
{
	am_free(s->buf, s->buf_size);
	am_free(s, sizeof(*s));
}

int anchormap_save(const struct anchormap *map,
		   int (*write)(const void *buf, size_t len, void *arg), void *arg)
{
	u8 hdr[AM_SNAP_HDR];
	struct am_snap *s;
	size_t entry;
	u32 per_block;
	int err;

	if (!map || !map->shared || !write)
		return -EINVAL;
	entry = (size_t)map->key_size + map->value_size;
	per_block = AM_SNAP_BUF / entry;
	if (per_block > AM_SNAP_BLOCK)
		per_block = AM_SNAP_BLOCK;
	if (!per_block)
		per_block = 1;
	s = am_snap_new(map, 4 + per_block * entry);
	if (!s)
		return -ENOMEM;
	s->write = write;
	s->arg = arg;
	am_snap_header(map, hdr);
	err = am_snap_write(s, hdr, sizeof(hdr));
	if (!err) {
		anchormap_iter_init(&s->it, map);
		err = am_snap_save_blocks(s, per_block);
	}
	am_snap_free(s);
	return err;
}
AM_EXPORT(anchormap_save);

/* Read exactly @len bytes or fail: -ENODATA when the data ends first. */
static int am_snap_read(struct am_snap *s, void *buf, size_t len, bool sum)
{
	size_t got = 0;

	while (got < len) {
		int r = s->read((u8 *)buf + got, len - got, s->arg);

		if (r < 0)
			return r;
		if (r == 0 || (size_t)r > len - got)
			return r == 0 ? -ENODATA : -EINVAL;
		got += (size_t)r;
	}
	if (sum)
		s->sum = am_fnv(s->sum, buf, len);
	return 0;
}

static int am_snap_check_header(const struct anchormap *map, const u8 *hdr)
{
	if (memcmp(hdr, AM_SNAP_MAGIC, 8))
		return -EBADMSG;
	if (am_get_le(hdr + 8, 4) != AM_SNAP_VERSION)
		return -EPROTONOSUPPORT;
	if (am_get_le(hdr + 12, 4) != AM_SNAP_BOM || am_get_le(hdr + 24, 8))
		return -EBADMSG;
	if (am_get_le(hdr + 16, 4) != map->key_size || am_get_le(hdr + 20, 4) != map->value_size)
		return -EINVAL;
	return 0;
}

/* Entries block by block, each inserted as it arrives (one entry buffered). */
static int am_snap_load_blocks(struct am_snap *s, struct anchormap *map)
{
	u8 word[8];
	int err;
	u32 n;

	for (;;) {
		err = am_snap_read(s, word, 4, true);
		if (err)
			return err;
		n = (u32)am_get_le(word, 4);
		if (!n)
			return 0;
		if (n > AM_SNAP_BLOCK)
			return -EBADMSG;
		while (n--) {
			err = am_snap_read(s, s->buf, s->entry, true);
			if (err)
				return err;
			err = anchormap_insert(map, s->buf, s->buf + map->key_size);
			if (err <= 0)
				return err ? err : -EBADMSG;	/* 0: a duplicate key */
			s->count++;
		}
		am_cond_resched(am_atomic(map));
	}
}

static int am_snap_load(struct am_snap *s, struct anchormap *map)
{
	u8 hdr[AM_SNAP_HDR];
	u64 sum;
	int err;

	err = am_snap_read(s, hdr, sizeof(hdr), true);
	if (!err)
		err = am_snap_check_header(map, hdr);
	if (!err)
		err = am_snap_load_blocks(s, map);
	if (!err)
		err = am_snap_read(s, hdr, 8, true);
	if (!err && am_get_le(hdr, 8) != s->count)
		err = -EBADMSG;
	sum = s->sum;
	if (!err)
		err = am_snap_read(s, hdr, 8, false);
	if (!err && am_get_le(hdr, 8) != sum)
		err = -EBADMSG;
	return err;
}

int anchormap_load(struct anchormap *map, int (*read)(void *buf, size_t len, void *arg),
		   void *arg)
{
	struct am_snap *s;
	int err;

	if (!map || !map->shared || !read || !anchormap_is_empty(map))
		return -EINVAL;
	s = am_snap_new(map, (size_t)map->key_size + map->value_size);
	if (!s)
		return -ENOMEM;
	s->read = read;
	s->arg = arg;
	err = am_snap_load(s, map);
	am_snap_free(s);
	if (err) {
		/*
		 * Entries read from the snapshot were never the caller's: no
		 * release for them; removed entries from before the load are
		 * the map's and are released as any reclaim does.
		 */
		am_walk_owned(map, NULL, NULL);
		am_reset(map);
		return err;
	}
	/* one right-sized segment instead of the growth history; optional */
	if (map->nseg > 1)
		(void)am_compact(map);
	return 0;
}
AM_EXPORT(anchormap_load);
