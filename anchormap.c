// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * anchormap.c - a concurrent hash map whose entries never move
 *
 * The core knows no operating system: what it needs from one comes from
 * "anchormap_deps.h" (userspace_shim/ or kernel/, chosen by -I).  This file
 * has every hot path (lookup, insert, remove, rebuild) and the exclusive
 * operations; the snapshot format is in anchormap_snapshot.c, SipHash in
 * anchormap_siphash.c, what they share with this file in
 * anchormap_internal.h, and the layout and the first step of a lookup in
 * anchormap_inline.h (for anchormap_get_fast()).
 *
 * Conventions in this file
 *   map     the struct anchormap; read-mostly, see anchormap.h
 *   entry   a key and its value, in storage; its 32-bit header word
 *           (state, stripe) is in its arena's array of header words
 *   arena   one allocation of storage: header words and entries, never
 *           moved or freed while the map is shared
 *   ref     an entry reference: arena << __ANCHORMAP_REF_SHIFT | number in
 *           the arena
 *   idx     an index: one Swiss table of tags and refs over the live entries
 *   g, i    a group of the index (one cache line) and a slot in it
 *   h       the 64-bit hash of a key: its top 7 bits are the tag (whose
 *           low 5 bits pick the key's overflow bit), bits 6 and up the home
 *           group (__anchormap_home()), bits 32..37 the stripe
 *   st      a writer stripe: lock, storage chunk, credits, counters
 *   ws      the writer state (struct anchormap_writer_state, map->wstate):
 *           stripes, arenas, the rebuild, locks; NULL once destroyed
 *   anchormap_*    the exported API
 *   am_*, AM_*     the core's own helpers (static, or in anchormap_internal.h)
 *   __anchormap_*, __ANCHORMAP_*  the private half of the header
 *                  (anchormap_inline.h): layout, tags, group operations
 *   amp_*, AMP_*   the platform, from anchormap_deps.h
 *
 * A map that is destroyed (or whose init failed) has no writer state: every
 * entry point but the lookups refuses it (-EINVAL, NULL, false or 0) by
 * testing map->wstate, and the lookups, the inline ones in clients too,
 * find an index with nothing in it (am_no_index) and need no test of their
 * own.
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
 * Tags of the index (__ANCHORMAP_TAG_*, anchormap_inline.h)
 *   0x00         EMPTY      free, and counted free by the index's credits
 *   0x7e         TOMBSTONE  its entry was removed from a group that keys
 *                           passed; free for any insert, not counted back
 *   0x7f         RESERVED   claimed by a writer that is filling the slot
 *   0x80 | fp    FULL       the ref names a live entry, fp = top 7 hash bits
 * A tag moves EMPTY or TOMBSTONE -> RESERVED -> FULL -> EMPTY (a group no
 * key passed) or TOMBSTONE (am_vacate()).  A probe ends at the key's home
 * group unless that group's overflow bit for the key is set (a key of this
 * home was placed further on), so tombstones cost misses nothing and a
 * freed slot may be EMPTY again.
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
 *     loads a group's tags with ACQUIRE (SSE2: one 16-byte load and an ACQUIRE
 *     fence; SWAR: two ACQUIRE 8-byte words, over the writers' byte stores, as
 *     x86 and arm64 order them), ACQUIRE-loads the ref, compares the key and
 *     loads the tag again.  The ref's ACQUIRE pairs with its RELEASE: a freed
 *     slot can be reused between the reader's tag load and its ref load, and
 *     the ref it then reads names an entry that is published.  The second tag
 *     load (after the ACQUIRE of the ref, so not older than it) must still
 *     show the same FULL tag: a reused slot's entry counts as present only
 *     once its tag is stored, so the reader never returns an insert another
 *     reader cannot see yet.  Removal stores EMPTY or TOMBSTONE (RELAXED: it
 *     publishes nothing) after the header went REMOVED.  The overflow word is
 *     set with a RELAXED OR before the tag of the entry that passed the group.
 *     A replace (copy-on-write) fills a new entry and RELEASE-stores its ref
 *     into the old entry's slot, whose FULL tag stays (same key): a reader's
 *     ACQUIRE of the ref gets the old entry or the published new one, both
 *     holding the key, so it never misses it.  get_many's prefetch pass reads
 *     refs and arena biases RELAXED as hints only; its lookups then run as
 *     above.
 *  3. Storage publication.  Growth allocates a zeroed arena, stores its
 *     bias in map->arena_bias[n] (RELAXED) and RELEASE-stores map->narenas = n + 1 (under
 *     the growth lock).  Writers ACQUIRE-load narenas before they take entries
 *     from the arena; a reader reaches an arena only through a ref it
 *     ACQUIRE-loaded (protocol 2), which the writer stored after it saw the
 *     arena, so the pointer is visible to it too.
 *  4. Index replacement ("Rebuild").  A rebuild allocates a zeroed index,
 *     RELEASE-stores it in map->next, takes and drops every stripe lock (so
 *     that every writer from then on sees it), copies the live entries of
 *     storage into it under their stripes' locks (a batch at a time: hashed
 *     and their groups prefetched with no lock, each entry's state checked
 *     again under its lock before it is placed), takes and drops every
 *     stripe lock again (a replace may be between marking its old entry
 *     REMOVED, which the copy skips without the lock, and putting the new
 *     one into next), RELEASE-stores map->index = next, then
 *     map->next = NULL.  Writers ACQUIRE-load next
 *     and then index under their stripe lock and change next first, then
 *     index: whatever a reader of the old index sees is in the new one.
 *     Chunk completions are counted with an ACQ_REL add, so the switch
 *     follows every helper's stores.  Readers may still probe a replaced
 *     index, and what they find there was present while they ran: in the
 *     kernel a lookup holds rcu_read_lock_sched() for its own duration
 *     (__anchormap_read_lock(); writers hold a stripe lock, which is a read side
 *     too) and the index is freed after a grace period
 *     (amp_free_after_readers()); in userspace it is kept until an
 *     exclusive operation or destroy.  The entries a lookup returns live
 *     in storage, which no grace period governs.
 *  5. Walks.  A stripe's entries are taken in increasing ref order.  A
 *     writer RELEASE-stores its stripe's next ref after it takes an entry;
 *     a walk ACQUIRE-loads every stripe's at its start and skips entries
 *     at or past it: they were inserted during the walk.  The ACQUIRE also
 *     makes visible every removal that came before (protocol 1).  A
 *     replace RELEASE-stores the old entry REMOVED before the next ref
 *     that passes its new entry: a walk whose mark counts the new entry
 *     sees the old one removed, so it never yields the key twice.
 *  6. Counters (stripe live/deleted/contended, index avail, arena claims)
 *     are RELAXED: they carry no data.  Stripe counters are written under
 *     the stripe lock and summed without it.  Fields that statistics read
 *     lock-free (/proc/anchormap) are written with marked stores in
 *     exclusive operations too, unless the operation took the map out of
 *     the registry first (amp_registry_del(): compaction, clear, destroy).
 *  7. Stripe locks, the growth lock and the rebuild lock come from the
 *     platform and give acquire/release semantics of their own.  All
 *     writers of one key use the same stripe, so "is it present?" and
 *     "insert it" are atomic per key; writers of different stripes meet only
 *     at tag CASes, overflow words and the shared counters.
 *
 * Exclusive operations (anchormap.h) use the same accessors for simplicity
 * but rely on the caller's guarantee that nobody else touches the map.
 */
#include "anchormap_internal.h"

#ifdef ANCHORMAP_TEST_HOOKS
void (*anchormap_test_hook)(const struct anchormap *map, enum anchormap_test_point point);
AMP_EXPORT(anchormap_test_hook);	/* the in-kernel tests set it */
#endif

/*
 * What a map without storage (destroyed, or cleared by an init that then
 * failed) looks up in: an index of one group of EMPTY tags with no overflow,
 * so that every lookup, the inline ones in clients too, misses without a
 * check of its own.  Never written: every writer and exclusive operation
 * refuses a map whose ->wstate is NULL.
 */
static union {
	struct anchormap_index idx;
	u8 bytes[__ANCHORMAP_INDEX_HDR + sizeof(struct anchormap_group)];
} am_no_index __aligned(AM_LINE);

/* ---------------------------------------------------------------------
 * Hashing
 */

/*
 * The built-in hash lives in anchormap.h, for anchormap_get_fast().  Maps
 * key it with their random seed as it is; here the seed is mixed with a
 * constant first, so that seed 0 is as good as any.
 */
u64 anchormap_hash_default(const void *key, u32 key_size, u64 seed)
{
	return __anchormap_hash(key, key_size, seed ^ __ANCHORMAP_K0);
}
AMP_EXPORT(anchormap_hash_default);

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
	size_t hmask = idx->hmask, off = __anchormap_home_off(idx, h), step = 0;
	u8 tag = __anchormap_tag(h);

	for (;;) {
		struct anchormap_group *g = am_group_at(idx, off);
		__anchormap_group_t grp = __anchormap_group_load(g);
		u64 m;

		for (m = __anchormap_group_match(grp, tag); m; m &= m - 1) {
			unsigned int i = (unsigned int)__anchormap_group_slot(m);
			u8 *e;

			__ANCHORMAP_TEST_POINT(map, ANCHORMAP_TP_LOOKUP_REF);
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
		step += AM_LINE;
		if (!__anchormap_ovf_test(am_load_relaxed(&g->overflow), tag) || step > hmask)
			return NULL;
		off = (off + step) & hmask;	/* triangular: am_group_at() */
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
const void *__anchormap_lookup_slow(const struct anchormap *map, const void *key, u32 off)
{
	/* hashed again: keeping the hash for the call costs every lookup a register */
	u8 *e = am_search(map, am_index(map), key, __anchormap_hash_k(map, key, 0), NULL);

	return e ? e + off : NULL;
}
AMP_EXPORT(__anchormap_lookup_slow);

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
AMP_EXPORT(anchormap_get);

/* One copy per common key size, as for am_lookup(). */
#define AM_DEFINE_GET_MANY(name, ks)						\
static noinline size_t am_get_many_##name(const struct anchormap *map, const u8 *keys, \
					  size_t n, const void **values)	\
{										\
	return __anchormap_get_many(map, keys, n, values, ks ? NULL : map->hash,	\
				    ks ? NULL : map->equal, ks ? ks : map->key_size, \
				    map->entry_size, map->value_off);		\
}
AM_DEFINE_GET_MANY(4, 4)
AM_DEFINE_GET_MANY(8, 8)
AM_DEFINE_GET_MANY(16, 16)
AM_DEFINE_GET_MANY(generic, AM_GENERIC)

long anchormap_get_many(const struct anchormap *map, const void *keys, size_t n,
			const void **values)
{
	if (!n)
		return 0;
	if (unlikely(!map || !keys || !values))
		return -EINVAL;
	switch (map->lookup_ks) {
	case 8:
		return (long)am_get_many_8(map, keys, n, values);
	case 4:
		return (long)am_get_many_4(map, keys, n, values);
	case 16:
		return (long)am_get_many_16(map, keys, n, values);
	default:
		return (long)am_get_many_generic(map, keys, n, values);
	}
}
AMP_EXPORT(anchormap_get_many);

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
AMP_EXPORT(anchormap_get_key_value);

bool anchormap_contains_key(const struct anchormap *map, const void *key)
{
	return anchormap_get_key_value(map, key, NULL) != NULL;
}
AMP_EXPORT(anchormap_contains_key);

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
 * Entries that stripes may hold unused in an arena handing out @chunk at a
 * time: a stripe takes a chunk for the insert that needs an entry, so it
 * keeps at most a chunk less one after it; 64 stripes, 64 such.
 */
static size_t am_strand(u32 chunk)
{
	return (size_t)ANCHORMAP_STRIPES * (chunk - 1);
}

/*
 * Entries for an arena that takes @entries inserts on any stripes without
 * growing: @entries plus what its own chunk size may strand (that size
 * depends on the arena's, hence the loop; it ends: the chunk only grows, to
 * at most 64).  0 when too big.
 */
static size_t am_arena_entries(size_t entries)
{
	u32 chunk = am_arena_chunk(entries);
	size_t n;

	for (;;) {
		n = am_max(entries + am_strand(chunk), AM_ARENA_MIN);
		if (am_arena_chunk(n) <= chunk)
			break;
		chunk = am_arena_chunk(n);
	}
	return n > AM_ARENA_MAX ? 0 : n;
}

/* Allocate an arena of @entries (not yet part of the map) into @ar. */
/* Bytes of an arena of @entries: their header words, then the aligned entries. */
static size_t am_arena_bytes(const struct anchormap *map, size_t entries)
{
	return entries * (map->entry_size + sizeof(u32)) + am_arena_align(map);
}

static int am_arena_alloc(const struct anchormap *map, struct am_arena *ar, size_t entries,
			  bool atomic)
{
	u8 *raw;

	memset(ar, 0, sizeof(*ar));
	if (!entries || entries > AM_ARENA_MAX ||
	    entries > (((size_t)-1 >> 2) - am_arena_align(map)) / (map->entry_size + sizeof(u32)))
		return -ENOMEM;
	raw = amp_zalloc(am_arena_bytes(map, entries), atomic);	/* zero: every header FREE */
	if (!raw)
		return -ENOMEM;
	ar->raw = raw;
	ar->size = (u32)entries;
	ar->chunk = am_arena_chunk(entries);
	return 0;
}

static void am_arena_release(const struct anchormap *map, struct am_arena *ar)
{
	if (ar->raw)
		amp_free(ar->raw, am_arena_bytes(map, ar->size));
	memset(ar, 0, sizeof(*ar));
}

/* Make @ar arena @n of the map (the caller publishes narenas). */
static void am_arena_install(struct anchormap *map, u32 n, const struct am_arena *ar)
{
	map->wstate->arenas[n] = *ar;
	/* RELAXED: get_many's prefetch reads it before any ACQUIRE (published as protocol 3) */
	am_store_relaxed(&map->arena_bias[n], (uintptr_t)am_arena_base(map, ar) -
			 (uintptr_t)((size_t)n << __ANCHORMAP_REF_SHIFT) * map->entry_size);
}

/*
 * Inserts the arenas' unclaimed entries take for certain, whichever stripes
 * they land on: each arena's room less what its chunks may strand
 * (anchormap_reserve() promises that many; the stripes' own chunks add to it).
 */
static size_t am_arena_usable(const struct anchormap *map)
{
	const struct anchormap_writer_state *ws = map->wstate;
	u32 n = am_load_acquire(&map->narenas), k;
	size_t usable = 0;

	for (k = am_load_relaxed(&ws->cur); k < n; k++) {
		const struct am_arena *ar = &ws->arenas[k];
		u32 c = am_load_relaxed(&ar->claimed);

		if (c < ar->size && ar->size - c > am_strand(ar->chunk))
			usable += ar->size - c - am_strand(ar->chunk);
	}
	return usable;
}

/* Entries not yet handed to stripes in arenas cur.. */
static size_t am_arena_room(const struct anchormap *map)
{
	const struct anchormap_writer_state *ws = map->wstate;
	u32 n = am_load_acquire(&map->narenas), k;
	size_t room = 0;

	for (k = am_load_relaxed(&ws->cur); k < n; k++) {
		u32 c = am_load_relaxed(&ws->arenas[k].claimed);

		if (c < ws->arenas[k].size)
			room += ws->arenas[k].size - c;
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
 * a chunk (limit/16 for the 64 stripes), and a rebuild starts when 1/16 of
 * the limit is left (so that writers go on inserting meanwhile): 1/8 of the
 * limit, which 1/6 on top of @entries covers with a margin.  (1/4 doubled
 * the index of a map of 1000 at the power-of-two step.)
 */
static size_t am_idx_slots_for(size_t entries)
{
	size_t need, groups = 1;

	if (entries > ((size_t)-1 >> 6))
		return 0;
	need = entries + entries / 6 + 2 * ANCHORMAP_STRIPES + 1;
	while (am_idx_limit(groups * __ANCHORMAP_GROUP) < need) {
		if (groups > ((size_t)-1 >> 8) / AM_LINE)
			return 0;
		groups <<= 1;
	}
	return groups * __ANCHORMAP_GROUP;
}

static struct anchormap_index *am_idx_alloc(size_t nslots, bool atomic)
{
	size_t groups = nslots / __ANCHORMAP_GROUP, bytes;
	struct anchormap_index *idx;

	if (!groups || groups > ((size_t)-1 >> 8) / AM_LINE)
		return NULL;
	bytes = __ANCHORMAP_INDEX_HDR + groups * AM_LINE;
	idx = amp_zalloc(bytes, atomic);	/* zero: every tag EMPTY, no overflow */
	if (!idx)
		return NULL;
	idx->hmask = (groups - 1) * AM_LINE;
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
		amp_free(idx, idx->bytes);
}

/* Free the replaced indexes: exclusive, or destroy. */
static void am_free_retired(struct anchormap *map)
{
	struct anchormap_index *idx = map->wstate->retired, *older;

	for (; idx; idx = older) {
		older = idx->older;
		am_idx_free(idx);
	}
	map->wstate->retired = NULL;
}

/*
 * Reserve one of @g's tags among the candidates @m, each of which read @want
 * at the group's load.  The CAS expects @want itself, so that a candidate
 * another stripe took meanwhile, or one the SWAR match over-reported, fails
 * it and the next is tried.
 */
static bool am_claim_in(struct anchormap_group *g, u64 m, u8 want, struct am_place *pl)
{
	for (; m; m &= m - 1) {
		unsigned int i = (unsigned int)__anchormap_group_slot(m);
		u8 expect = want;

		/* RELAXED: no data flows through RESERVED (protocol 2) */
		if (am_cas_relaxed(&g->tag[i], &expect, __ANCHORMAP_TAG_RESERVED)) {
			pl->g = g;
			pl->i = i;
			return true;
		}
	}
	return false;
}

/*
 * Claim a free tag on @h's probe sequence in @idx: the first group with an
 * EMPTY or TOMBSTONE tag, trying them in turn when other stripes win them.
 * Every group passed gets @h's overflow bit, before the entry is placed.
 * Returns false when no group has room (an index rebuilt too small).  @map
 * is for the test point only (NULL: a rebuild's copy).
 */
static __always_inline bool am_claim_tag(const struct anchormap *map,
					 struct anchormap_index *idx, u64 h,
					 struct am_place *pl, u8 *was, u32 *probes)
{
	size_t hmask = idx->hmask, off = __anchormap_home_off(idx, h), step = 0;
	u32 ovf = __anchormap_ovf_bit(__anchormap_tag(h));

	for (;;) {
		struct anchormap_group *g = am_group_at(idx, off);
		__anchormap_group_t grp = __anchormap_group_load(g);

		__ANCHORMAP_TEST_POINT(map, ANCHORMAP_TP_CLAIM_TAG);
		/* tombstones first: an EMPTY tag costs a credit (am_take_credit()) */
		*was = __ANCHORMAP_TAG_TOMB;
		if (am_claim_in(g, __anchormap_group_match(grp, *was), *was, pl))
			break;
		*was = __ANCHORMAP_TAG_EMPTY;
		if (am_claim_in(g, __anchormap_group_match(grp, *was), *was, pl))
			break;
		if (!(am_load_relaxed(&g->overflow) & ovf))
			am_or_relaxed(&g->overflow, ovf);
		step += AM_LINE;
		if (step > hmask)
			return false;
		off = (off + step) & hmask;
	}
	*probes = (u32)(step / AM_LINE) + 1;
	return true;
}

/* Make a claimed tag FULL for entry @ref: protocol 2. */
static void am_publish_tag(const struct anchormap *map, const struct am_place *pl, u32 ref,
			   u64 h)
{
	am_store_release(&pl->g->ref[pl->i], ref);
	__ANCHORMAP_TEST_POINT(map, ANCHORMAP_TP_PUBLISH_TAG);
	am_store_release(&pl->g->tag[pl->i], __anchormap_tag(h));
}

/* The place of entry @ref in @idx (a writer of its stripe, or exclusive). */
static bool am_find_ref(const struct anchormap_index *idx, u64 h, u32 ref, struct am_place *pl)
{
	size_t hmask = idx->hmask, off = __anchormap_home_off(idx, h), step = 0;
	u8 tag = __anchormap_tag(h);
	unsigned int i;

	for (;;) {
		struct anchormap_group *g = am_group_at(idx, off);

		for (i = 0; i < __ANCHORMAP_GROUP; i++) {
			if (am_load_relaxed(&g->tag[i]) == tag &&
			    am_load_relaxed(&g->ref[i]) == ref) {
				pl->g = g;
				pl->i = i;
				return true;
			}
		}
		step += AM_LINE;
		if (!__anchormap_ovf_test(am_load_relaxed(&g->overflow), tag) || step > hmask)
			return false;
		off = (off + step) & hmask;
	}
}

/*
 * Give back one credit of @idx (an EMPTY tag again) from a writer holding
 * @st: to the stripe, up to a batch as am_take_credit() keeps (no stripe
 * hoards them), else to the index's shared counter.
 */
static __always_inline void am_give_credit(struct am_stripe *st, struct anchormap_index *idx)
{
	if (st->credit_idx == idx && st->credits < idx->chunk)
		am_store_relaxed(&st->credits, st->credits + 1);
	else
		am_add_relaxed(&idx->avail, 1);
}

/*
 * The slot at @pl leaves @idx: its entry was removed, by a writer holding
 * the entry's stripe @st or by an exclusive operation.  A probe goes past a
 * group on the group's overflow bits, never on its tags, so any freed slot
 * could become EMPTY again.  One in a group that no key passed (overflow
 * word 0) does, and gives @idx its credit back: churn in groups with room
 * neither fills the index with tombstones nor needs a rebuild to clear
 * them.  A group that keys passed keeps a TOMBSTONE, which inserts still
 * reuse but which is not counted back, so that an index whose keys
 * overflow is rebuilt in time: only a rebuild clears overflow bits, and
 * misses slow down as they pile up.  An overflow bit set just after the
 * test only makes that group's slot EMPTY early.  RELAXED: the tag
 * publishes nothing (protocol 2); the credit goes to the stripe, under its
 * lock, or to the index's shared counter (protocol 6).
 */
static __always_inline void am_vacate(struct anchormap_index *idx, struct am_stripe *st,
				      const struct am_place *pl)
{
	if (am_load_relaxed(&pl->g->overflow)) {
		am_store_relaxed(&pl->g->tag[pl->i], __ANCHORMAP_TAG_TOMB);
		return;
	}
	am_store_relaxed(&pl->g->tag[pl->i], __ANCHORMAP_TAG_EMPTY);
	am_give_credit(st, idx);
}

/* Entry @ref leaves @idx, if there: am_vacate(). */
static void am_drop_ref(struct anchormap_index *idx, struct am_stripe *st, u64 h, u32 ref)
{
	struct am_place pl;

	if (am_find_ref(idx, h, ref, &pl))
		am_vacate(idx, st, &pl);
}

/*
 * Add entry @ref to an index no reader uses yet (a rebuild's): claim and
 * publish at once.  An index with no room is marked broken, and the rebuild
 * discards it.  Returns whether an EMPTY tag was used.
 */
static __always_inline bool am_add_ref(struct anchormap_index *idx, u64 h, u32 ref)
{
	struct am_place pl;
	u32 probes;
	u8 was;

	if (!am_claim_tag(NULL, idx, h, &pl, &was, &probes)) {
		am_store_relaxed(&idx->broken, 1);
		return false;
	}
	am_publish_tag(NULL, &pl, ref, h);	/* no reader uses the index yet */
	return was == __ANCHORMAP_TAG_EMPTY;
}

/* ---------------------------------------------------------------------
 * Stripes, credits and storage growth (writers)
 */

static void am_stripe_lock(const struct anchormap *map, struct am_stripe *st,
			   unsigned long *flags)
{
	if (amp_lock(&st->lock, flags, am_atomic(map)))
		am_counter_add(&st->contended, 1);
}

static void am_stripe_unlock(const struct anchormap *map, struct am_stripe *st,
			     unsigned long flags)
{
	amp_unlock(&st->lock, flags, am_atomic(map));
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
	struct anchormap_writer_state *ws = map->wstate;
	u32 n = am_load_acquire(&map->narenas);	/* protocol 3 */
	u32 k = am_load_relaxed(&ws->cur);

	for (; k < n; k++) {
		struct am_arena *ar = &ws->arenas[k];
		u32 c = am_load_relaxed(&ar->claimed), take;

		while (c < ar->size) {
			take = (u32)am_min(ar->size - c, ar->chunk);
			if (am_cas_relaxed(&ar->claimed, &c, c + take)) {
				am_store_release(&st->next_ref, k << __ANCHORMAP_REF_SHIFT | c);
				am_store_relaxed(&st->chunk_end,
						 k << __ANCHORMAP_REF_SHIFT | (c + take));
				return true;
			}
		}
		/*
		 * Used up: later chunks come from the next arena.  The CAS gets a
		 * copy of k: a failed one writes cur into its expected value, and
		 * the loop must not skip an arena with room (a stripe's chunks go
		 * up in ref order: protocol 5, and the rebuild's born[] rely on it).
		 */
		if (am_load_relaxed(&ws->cur) == k) {
			u32 seen = k;

			__ANCHORMAP_TEST_POINT(map, ANCHORMAP_TP_ARENA_FULL);
			am_cas_relaxed(&ws->cur, &seen, k + 1);
		}
	}
	return false;
}

/* What storage growth should append, or 0 entries for nothing to do. */
static int am_grow_size(struct anchormap *map, u32 n, u32 seen, size_t min_entries,
			size_t *entries)
{
	struct anchormap_writer_state *ws = map->wstate;
	size_t total = 0, want;
	u32 k;

	*entries = 0;
	if (!min_entries && n != seen)
		return 0;	/* another writer grew it meanwhile */
	if (min_entries && am_arena_usable(map) >= min_entries)
		return 0;
	if (n == ANCHORMAP_MAX_SEGMENTS)
		return -ENOMEM;
	for (k = 0; k < n; k++)
		total += ws->arenas[k].size;
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
 * grow finds narenas != seen and retries at once.
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
	struct anchormap_writer_state *ws = map->wstate;
	struct am_arena fresh = { 0 };
	bool drop = am_atomic(map);
	size_t entries;
	int err;
	u32 n;

	amp_grow_lock(&ws->grow_lock, am_atomic(map));
	for (;;) {
		n = am_load_relaxed(&map->narenas);	/* only growers write it */
		err = am_grow_size(map, n, seen, min_entries, &entries);
		if (err || !entries || (fresh.raw && fresh.size >= entries))
			break;
		if (drop)
			amp_grow_unlock(&ws->grow_lock, true);
		am_arena_release(map, &fresh);
		err = am_arena_alloc(map, &fresh, entries, !may_sleep && am_atomic(map));
		if (drop)
			amp_grow_lock(&ws->grow_lock, true);
		if (err || !drop)
			break;	/* without drop nothing changed: we held the lock */
	}
	if (!err && entries && fresh.raw) {
		am_arena_install(map, n, &fresh);
		__ANCHORMAP_TEST_POINT(map, ANCHORMAP_TP_GROW_PUBLISH);
		am_store_release(&map->narenas, n + 1);	/* publish: protocol 3 */
		fresh.raw = NULL;
	}
	amp_grow_unlock(&ws->grow_lock, am_atomic(map));
	am_arena_release(map, &fresh);	/* allocated but not needed after all */
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
 * chunk after its own operation (a removal only on an ANCHORMAP_F_ATOMIC
 * map: elsewhere the rebuild lock is a mutex, and a removal never sleeps);
 * one that cannot insert without it copies the rest.  The writer that
 * completes the last chunk makes the new index current (protocol 4).
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
	 * Replaced indexes are kept until an exclusive operation (userspace):
	 * keep their groups (this one's included) within the new index's, by
	 * doubling when the same size would not be.  Each has its header
	 * besides, which the doubled index's groups do not cover: the sum of
	 * bytes may pass the new index's by one header per replaced index.
	 */
	for (old = map->wstate->retired; old; old = old->older)
		retired += old->bytes;
	if (want == cur->nslots && retired > cur->bytes)
		want = cur->nslots * 2;
	return want;
}

/*
 * Take and drop every stripe lock; with @born, note each stripe's next ref;
 * without, forget the stripes' credits for any index but the current one
 * (one just replaced: its memory may come back as another index, which
 * must not inherit them).  The current index keeps what its stripes hold,
 * so that its credits still add up to its EMPTY tags: a writer that came
 * in between the switch and this sweep took its credits from it.  Under
 * the rebuild lock, or exclusive: the current index does not change.
 */
static void am_sweep(struct anchormap *map, u32 *born)
{
	const struct anchormap_index *cur = am_index(map);
	unsigned long flags = 0;
	int s;

	for (s = 0; s < ANCHORMAP_STRIPES; s++) {
		struct am_stripe *st = &map->wstate->stripes[s];

		am_stripe_lock(map, st, &flags);
		if (born) {	/* marked: writers of this stripe read it */
			am_store_relaxed(&born[s], st->next_ref);
		} else if (st->credit_idx != cur) {
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
	struct anchormap_writer_state *ws = map->wstate;
	struct am_rebuild *rb = &ws->rb;
	struct anchormap_index *next = NULL;
	bool drop = am_atomic(map);
	size_t slots;
	u32 k;

	if (pre && *pre) {	/* allocated by the caller, so that this cannot fail */
		next = *pre;
		*pre = NULL;
	}

	amp_grow_lock(&ws->rebuild_lock, am_atomic(map));
	for (;;) {
		if (am_load_relaxed(&map->next)) {
			amp_grow_unlock(&ws->rebuild_lock, am_atomic(map));
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
			amp_grow_unlock(&ws->rebuild_lock, true);
		am_idx_free(next);
		next = am_idx_alloc(slots, !may_sleep && am_atomic(map));
		if (drop)
			amp_grow_lock(&ws->rebuild_lock, true);
		if (!next || !drop)
			break;
	}
	if (!next) {
		amp_grow_unlock(&ws->rebuild_lock, am_atomic(map));
		return -ENOMEM;
	}
	rb->next = next;
	/* until the sweep reaches a stripe, its writers leave next to the copy */
	for (k = 0; k < ANCHORMAP_STRIPES; k++)
		am_store_relaxed(&rb->born[k], AM_NOT_SWEPT);
	am_store_release(&map->next, next);	/* protocol 4 */
	__ANCHORMAP_TEST_POINT(map, ANCHORMAP_TP_REBUILD_SWEEP);
	am_sweep(map, rb->born);
	rb->narenas = am_load_acquire(&map->narenas);
	rb->base[0] = 0;
	for (k = 0; k < rb->narenas; k++)
		rb->base[k + 1] = rb->base[k] + am_load_relaxed(&ws->arenas[k].claimed);
	rb->pos = 0;
	am_store_relaxed(&rb->done, 0);
	if (rb->base[rb->narenas])
		am_store_release(&rb->ready, 1);
	else
		am_rebuild_finish(map);	/* nothing to copy */
	amp_grow_unlock(&ws->rebuild_lock, am_atomic(map));
	return 0;
}

/* Make the rebuilt index current, or discard a broken one.  Under rebuild_lock. */
static void am_rebuild_finish(struct anchormap *map)
{
	struct anchormap_writer_state *ws = map->wstate;
	struct anchormap_index *next = ws->rb.next, *old = am_index(map);

	am_store_relaxed(&ws->rb.ready, 0);
	if (am_load_relaxed(&next->broken)) {
		/* before next is cleared: am_rebuild_sync() waits for that */
		am_store_relaxed(&ws->discards, ws->discards + 1);
		am_store_release(&map->next, NULL);
		am_sweep(map, NULL);	/* no writer holds it any more */
		am_idx_free(next);
	} else {
		/*
		 * The copy skips a REMOVED entry without its stripe's lock, so a
		 * replace may still hold the lock between marking its old entry
		 * REMOVED and putting the new one into next: let every such
		 * writer finish before next is current, or a lookup there would
		 * find neither entry.
		 */
		am_sweep(map, NULL);
		am_store_release(&map->index, next);	/* protocol 4 */
		/* before next is cleared: am_rebuild_sync() waits for that */
		am_store_relaxed(&ws->rebuilds, ws->rebuilds + 1);
		__ANCHORMAP_TEST_POINT(map, ANCHORMAP_TP_REBUILD_COUNTED);
		/* writers that saw the old index add to next: let them finish */
		am_sweep(map, NULL);
		am_store_release(&map->next, NULL);
		/* readers may still be in it: the kernel frees it after them */
		if (!amp_free_after_readers(old, old->bytes, old->retire)) {
			old->older = ws->retired;
			am_store_release(&ws->retired, old);	/* statistics walk the list */
		}
	}
	ws->rb.next = NULL;
}

/*
 * One batch of a rebuild's copy: entries hashed and their groups in next
 * prefetched before any is placed, so that the batch's cache misses on
 * the new index overlap instead of coming one after another.
 */
#define AM_COPY_BATCH	32u

struct am_copy_batch {
	u32 n;
	u32 ref[AM_COPY_BATCH];
	const u32 *hdr[AM_COPY_BATCH];
	u64 h[AM_COPY_BATCH];
};

/* The ref of storage position @p, moving *@k on to its arena. */
static u32 am_rebuild_ref(const struct am_rebuild *rb, size_t p, u32 *k)
{
	while (rb->base[*k + 1] <= p)
		(*k)++;
	return *k << __ANCHORMAP_REF_SHIFT | (u32)(p - rb->base[*k]);
}

/*
 * Collect the entries among positions [@p, @p + @n) that the copy must
 * place (live, and written before their stripe was swept), hash them and
 * prefetch their home groups.  Within an arena, refs, header words and
 * entries are consecutive: one lookup of each per arena, then steps.  No
 * lock: an entry's key bytes never change while the map is shared, and
 * am_rebuild_place() checks again under the lock.
 */
static void am_rebuild_gather(struct anchormap *map, struct am_copy_batch *b, size_t p,
			      size_t n, u32 *k)
{
	const struct am_rebuild *rb = &map->wstate->rb;
	size_t size = map->entry_size, end = 0;
	const u32 *hdr = NULL;
	const u8 *e = NULL;
	u32 ref = 0;

	for (b->n = 0; n; n--, p++, ref++, hdr++, e += size) {
		u32 word;
		u64 h;

		if (p >= end) {		/* the first position, or an arena's first */
			ref = am_rebuild_ref(rb, p, k);
			end = rb->base[*k + 1];
			hdr = am_hdr(map, ref);
			e = am_entry(map, ref);
		}
		word = am_load_acquire(hdr);	/* protocol 1 */
		if ((word & AM_HDR_STATE) != AM_HDR_LIVE ||
		    ref >= am_load_relaxed(&rb->born[am_hdr_stripe(word)]))
			continue;	/* removed, or its writer added it to next */
		h = __anchormap_hash_k(map, e, AM_GENERIC);
		__builtin_prefetch(__anchormap_home(rb->next, h), 1);
		b->ref[b->n] = ref;
		b->hdr[b->n] = hdr;
		b->h[b->n++] = h;
	}
}

/*
 * Place a gathered batch in rb->next, each entry under its stripe's lock
 * (held across entries of one stripe; *@st is the one held).  Returns the
 * EMPTY tags used.
 */
static long am_rebuild_place(struct anchormap *map, const struct am_copy_batch *b,
			     struct am_stripe **st, unsigned long *flags)
{
	struct anchormap_writer_state *ws = map->wstate;
	long used = 0;
	u32 j;

	for (j = 0; j < b->n; j++) {
		struct am_stripe *want = am_stripe_of(map, b->h[j]);

		if (*st != want) {
			if (*st)
				am_stripe_unlock(map, *st, *flags);
			*st = want;
			am_stripe_lock(map, want, flags);
		}
		/* under its stripe's lock: not removed meanwhile */
		if ((am_load_relaxed(b->hdr[j]) & AM_HDR_STATE) != AM_HDR_LIVE)
			continue;
		if (am_add_ref(ws->rb.next, b->h[j], b->ref[j]))
			used++;
	}
	return used;
}

/* Copy the live entries among storage positions [p, p + n) into rb->next. */
static void am_rebuild_copy(struct anchormap *map, size_t p, size_t n)
{
	struct am_stripe *st = NULL;
	struct am_copy_batch b;
	unsigned long flags = 0;
	long used = 0;
	size_t m;
	u32 k = 0;

	for (; n; n -= m, p += m) {
		m = am_min(n, AM_COPY_BATCH);
		am_rebuild_gather(map, &b, p, m, &k);
		if (!st)	/* no stripe lock held yet */
			__ANCHORMAP_TEST_POINT(map, ANCHORMAP_TP_REBUILD_GATHERED);
		used += am_rebuild_place(map, &b, &st, &flags);
	}
	if (st)
		am_stripe_unlock(map, st, flags);
	if (used)
		am_add_relaxed(&map->wstate->rb.next->avail, -used);
}

/* Copy one chunk of a running rebuild.  False when none is left to take. */
static bool am_rebuild_step(struct anchormap *map)
{
	struct anchormap_writer_state *ws = map->wstate;
	struct am_rebuild *rb = &ws->rb;
	size_t p, n, total;

	if (!am_load_acquire(&rb->ready))
		return false;
	amp_grow_lock(&ws->rebuild_lock, am_atomic(map));
	if (!am_load_relaxed(&rb->ready)) {
		amp_grow_unlock(&ws->rebuild_lock, am_atomic(map));
		return false;
	}
	total = rb->base[rb->narenas];
	p = rb->pos;
	n = am_min(total - p, AM_REBUILD_CHUNK);
	rb->pos = p + n;
	if (!n) {
		amp_grow_unlock(&ws->rebuild_lock, am_atomic(map));
		return false;
	}
	amp_grow_unlock(&ws->rebuild_lock, am_atomic(map));

	__ANCHORMAP_TEST_POINT(map, ANCHORMAP_TP_REBUILD_CHUNK);
	am_rebuild_copy(map, p, n);
	/* ACQ_REL: the finisher's switch follows every chunk's stores (protocol 4) */
	if (__atomic_add_fetch(&rb->done, n, __ATOMIC_ACQ_REL) == total) {
		__ANCHORMAP_TEST_POINT(map, ANCHORMAP_TP_REBUILD_SWITCH);
		amp_grow_lock(&ws->rebuild_lock, am_atomic(map));
		am_rebuild_finish(map);
		amp_grow_unlock(&ws->rebuild_lock, am_atomic(map));
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
	/*
	 * Only a discard fails the caller: a rebuild that was already
	 * counted when we came in (its switch done, next not yet cleared)
	 * would look like no progress to a count of rebuilds, and the caller
	 * just tries again with the index it made current.
	 */
	u64 discards;
	int err = 0;

	__ANCHORMAP_TEST_POINT(map, ANCHORMAP_TP_REBUILD_SYNC);
	discards = am_load_relaxed(&map->wstate->discards);
	if (!am_load_acquire(&map->next)) {
		err = am_rebuild_start(map, extra, may_sleep, pre);
		if (err == -ENOMEM)
			return err;
	}
	while (am_rebuild_step(map))
		amp_cond_resched(am_atomic(map) && !may_sleep);
	while (am_load_acquire(&map->next)) {
		if (am_atomic(map) && !may_sleep)
			return -ENOMEM;
		__ANCHORMAP_TEST_POINT(map, ANCHORMAP_TP_REBUILD_WAIT);
		amp_cond_resched(false);
		amp_cpu_relax();
	}
	/* the ACQUIRE of next == NULL makes the discard count before it visible */
	if (am_load_relaxed(&map->wstate->discards) != discards)
		return -ENOMEM;	/* discarded: the rebuild could not place an entry */
	return 0;
}

static noinline void am_rebuild_help_slow(struct anchormap *map, bool start)
{
	if (start && !am_load_relaxed(&map->next))
		(void)am_rebuild_start(map, 0, false, NULL);
	if (am_load_relaxed(&map->next))
		(void)am_rebuild_step(map);
}

/*
 * After a writer's operation: start a rebuild if asked, then copy a chunk.
 * Inline, so that the writer with nothing to do (no rebuild) pays a load.
 */
static __always_inline void am_rebuild_help(struct anchormap *map, bool start)
{
	if (unlikely(start || am_load_relaxed(&map->next)))
		am_rebuild_help_slow(map, start);
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

/*
 * Copy a key or a value into an entry: the common sizes as one constant-size
 * copy each (inlined moves), any other through memcpy().
 */
static __always_inline void am_copy_field(u8 *dst, const void *src, u32 size)
{
	switch (size) {
	case 4:
		memcpy(dst, src, 4);
		break;
	case 8:
		memcpy(dst, src, 8);
		break;
	case 16:
		memcpy(dst, src, 16);
		break;
	default:
		memcpy(dst, src, size);
	}
}

/* Fill entry @e for @key; an init error leaves it DEAD. */
static int am_fill(struct anchormap *map, u8 *e, const void *key, const struct am_filler *f)
{
	u8 *value = e + map->value_off;
	int err;

	am_copy_field(e, key, map->key_size);
	if (f->value)
		am_copy_field(value, f->value, map->value_size);
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
	if (!am_claim_tag(map, idx, h, &pl, &was, &probes)) {
		*low = true;
		*need = AM_NEED_INDEX;
		return NULL;
	}
	if (was == __ANCHORMAP_TAG_EMPTY && !am_take_credit(st, idx, low)) {
		/* never published */
		am_store_relaxed(&pl.g->tag[pl.i], __ANCHORMAP_TAG_EMPTY);
		*need = AM_NEED_INDEX;
		return NULL;
	}
	e = am_entry(map, ref);
	err = am_fill(map, e, key, f);
	/* the entry is used up either way: protocol 5 */
	am_store_release(&st->next_ref, ref + 1);
	if (err) {
		am_store_release(am_hdr(map, ref), am_hdr_word(AM_HDR_DEAD, s));
		am_counter_add(&st->deleted, 1);
		am_store_relaxed(&pl.g->tag[pl.i], was);	/* never published */
		if (was == __ANCHORMAP_TAG_EMPTY)
			am_give_credit(st, idx);
		return ERR_PTR(err);
	}
	am_store_release(am_hdr(map, ref), am_hdr_word(AM_HDR_LIVE, s));	/* protocol 1 */
	/* next first, unless the rebuild's copy will add it: protocol 4 */
	if (next && next != idx && ref >= am_load_relaxed(&map->wstate->rb.born[s]) &&
	    am_add_ref(next, h, ref))
		am_add_relaxed(&next->avail, -1);
	if (probes > st->longest_probe)
		am_store_relaxed(&st->longest_probe, probes);
	am_publish_tag(map, &pl, ref, h);	/* protocol 2 */
	am_counter_add(&st->live, 1);
	return e;
}

/*
 * Give present entry @old (at @pl in the current index @idx) a new value,
 * copy-on-write, under its stripe lock: a new entry with the key and
 * @value, which takes @old's place in each index with one RELEASE store of
 * its ref (the tag stays: same key, same tag), so that a reader finds the
 * old entry or the new one, never neither (protocol 2).  @old goes REMOVED
 * before the stripe's next ref passes the new entry, so that a walk that
 * counts the new one (it is below the walk's mark) sees @old removed
 * (protocol 5): a walk never yields the key twice.  Returns the new entry,
 * or NULL with *@need set when the stripe has no storage left.
 */
static u8 *am_replace_locked(struct anchormap *map, struct am_stripe *st,
			     struct anchormap_index *idx, struct anchormap_index *next,
			     u8 *old, const struct am_place *pl, u64 h, const void *value,
			     enum am_need *need)
{
	unsigned int s = AM_STRIPE_OF(h);
	u32 ref, ref_old = am_load_relaxed(&pl->g->ref[pl->i]);
	struct am_place npl;
	u8 *e;

	if (st->next_ref == st->chunk_end && !am_take_chunk(map, st)) {
		*need = AM_NEED_STORAGE;
		return NULL;
	}
	ref = st->next_ref;
	e = am_entry(map, ref);
	am_copy_field(e, old, map->key_size);
	am_copy_field(e + map->value_off, value, map->value_size);
	am_store_release(am_hdr(map, ref_old), am_hdr_word(AM_HDR_REMOVED, s));
	am_store_release(&st->next_ref, ref + 1);	/* after REMOVED: protocol 5 */
	am_store_release(am_hdr(map, ref), am_hdr_word(AM_HDR_LIVE, s));	/* protocol 1 */
	__ANCHORMAP_TEST_POINT(map, ANCHORMAP_TP_REPLACE_NEXT);
	/* next first (protocol 4): in place if it has @old, else as an insert */
	if (next && next != idx) {
		if (am_find_ref(next, h, ref_old, &npl))
			am_store_release(&npl.g->ref[npl.i], ref);
		else if (ref >= am_load_relaxed(&map->wstate->rb.born[s]) &&
			 am_add_ref(next, h, ref))
			am_add_relaxed(&next->avail, -1);
	}
	__ANCHORMAP_TEST_POINT(map, ANCHORMAP_TP_REPLACE_REF);
	am_store_release(&pl->g->ref[pl->i], ref);	/* protocol 2 */
	am_counter_add(&st->deleted, 1);
	return e;
}

/*
 * The one writer path, under @key's stripe lock: find @key, then insert it
 * from @f when absent (@f NULL: leave it absent, return NULL), and give it
 * value @replace when present (NULL: leave it, return the present entry).
 * Growth and rebuilds may sleep, so they run with the stripe dropped and
 * the lookup is redone afterwards (another writer may have inserted the key
 * meanwhile).
 */
static u8 *am_upsert(struct anchormap *map, const void *key, u64 h,
		     const struct am_filler *f, const void *replace, bool *inserted)
{
	struct am_place pl;
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
		n = am_load_acquire(&map->narenas);
		/* next, then index: protocol 4 */
		next = am_load_acquire(&map->next);
		idx = am_index(map);
		e = am_search(map, idx, key, h, &pl);
		if (e && replace) {
			e = am_replace_locked(map, st, idx, next, e, &pl, h, replace, &need);
		} else if (!e && f) {
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

/*
 * anchormap_replace() (@insert false) and anchormap_insert_or_replace():
 * 1 replaced, 0 inserted or absent, or -errno.
 */
static int am_put(struct anchormap *map, const void *key, const void *value, bool insert)
{
	struct am_filler f = { .value = value };
	bool inserted;
	u8 *e;

	if (unlikely(!map || !key || !value || !map->wstate))
		return -EINVAL;
	e = am_upsert(map, key, __anchormap_hash_k(map, key, AM_GENERIC), insert ? &f : NULL,
		      value, &inserted);
	if (IS_ERR(e))
		return (int)PTR_ERR(e);
	return e && !inserted;
}

int anchormap_replace(struct anchormap *map, const void *key, const void *value)
{
	return am_put(map, key, value, false);
}
AMP_EXPORT(anchormap_replace);

int anchormap_insert_or_replace(struct anchormap *map, const void *key, const void *value)
{
	return am_put(map, key, value, true);
}
AMP_EXPORT(anchormap_insert_or_replace);

static __always_inline u8 *am_upsert_key(struct anchormap *map, const void *key,
					 const struct am_filler *f, bool *inserted)
{
	*inserted = false;
	if (unlikely(!map || !key || !map->wstate))
		return ERR_PTR(-EINVAL);
	return am_upsert(map, key, __anchormap_hash_k(map, key, AM_GENERIC), f, NULL, inserted);
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
AMP_EXPORT(anchormap_insert);

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
AMP_EXPORT(anchormap_get_or_insert);

const void *anchormap_get_or_insert_with(struct anchormap *map, const void *key,
		void (*init)(void *value, const void *key, void *arg), void *arg)
{
	struct am_filler f = { .init = init, .arg = arg };

	return am_get_or_fill(map, key, &f);
}
AMP_EXPORT(anchormap_get_or_insert_with);

const void *anchormap_get_or_try_insert_with(struct anchormap *map, const void *key,
		int (*init)(void *value, const void *key, void *arg), void *arg)
{
	struct am_filler f = { .try_init = init, .arg = arg };

	return am_get_or_fill(map, key, &f);
}
AMP_EXPORT(anchormap_get_or_try_insert_with);

static size_t am_idx_room(const struct anchormap *map);

/* am_idx_room() from outside any lock: the index may be replaced meanwhile. */
static size_t am_idx_room_now(const struct anchormap *map)
{
	size_t room;

	__anchormap_read_lock();		/* protocol 4 */
	room = am_idx_room(map);
	__anchormap_read_unlock();
	return room;
}

/*
 * Inserts the current index takes for certain, whichever stripes they land
 * on: its shared credits less what the stripes may strand of them (a stripe
 * takes a batch of idx->chunk and may keep all but one; removals may bring
 * it back to a whole batch, but never from the shared credits); the
 * stripes' own credits add to it.  What anchormap_reserve() promises.
 */
static size_t am_idx_usable_now(const struct anchormap *map)
{
	const struct anchormap_index *idx;
	long avail, strand;

	__anchormap_read_lock();		/* protocol 4 */
	idx = am_index(map);
	avail = am_load_relaxed(&idx->avail);
	strand = (long)ANCHORMAP_STRIPES * ((long)idx->chunk - 1);
	__anchormap_read_unlock();
	return avail > strand ? (size_t)(avail - strand) : 0;
}

int anchormap_reserve(struct anchormap *map, size_t additional)
{
	struct anchormap_index *pre = NULL;
	size_t slots;
	int err;

	if (!map || !map->wstate)
		return -EINVAL;
	if (!additional)
		return 0;
	if (additional > ((size_t)-1 >> 8))
		return -ENOMEM;
	/* the index first, so that a failure leaves the map as it was */
	if (am_idx_usable_now(map) < additional) {
		/* under the rebuild lock the current index stays */
		amp_grow_lock(&map->wstate->rebuild_lock, am_atomic(map));
		slots = am_rebuild_slots(map, am_len_sum(map), additional);
		amp_grow_unlock(&map->wstate->rebuild_lock, am_atomic(map));
		pre = am_idx_alloc(slots, false);
		if (!pre)
			return -ENOMEM;
	}
	do {	/* an arena holds at most AM_ARENA_MAX: more takes several */
		err = am_grow(map, 0, additional, true);
	} while (!err && am_arena_usable(map) < additional);
	while (!err && am_idx_usable_now(map) < additional)
		err = am_rebuild_sync(map, additional, true, &pre);
	am_idx_free(pre);
	return err;
}
AMP_EXPORT(anchormap_reserve);

int anchormap_extend(struct anchormap *map, const void *keys, const void *values, size_t n)
{
	size_t i;
	int added = 0, ret;

	if (!map || !map->wstate || (!keys && n) || n > 0x7fffffff)
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
AMP_EXPORT(anchormap_extend);

int anchormap_remove(struct anchormap *map, const void *key)
{
	struct anchormap_index *idx, *next;
	struct am_place pl;
	struct am_stripe *st;
	unsigned long flags = 0;
	u32 ref;
	u8 *e;
	u64 h;

	if (unlikely(!map || !key || !map->wstate))
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
	am_store_release(am_hdr(map, ref), am_hdr_word(AM_HDR_REMOVED, AM_STRIPE_OF(h)));
	if (next && next != idx)
		am_drop_ref(next, st, h, ref);	/* next first: protocol 4 */
	am_vacate(idx, st, &pl);
	am_counter_add(&st->live, -1);
	am_counter_add(&st->deleted, 1);
	am_stripe_unlock(map, st, flags);
	/*
	 * Help a rebuild only where that cannot sleep: a removal never does,
	 * and the rebuild lock of a map that is not ANCHORMAP_F_ATOMIC is a
	 * mutex (a rebuild's start allocates under it).  Inserts finish it.
	 */
	if (next && am_atomic(map))
		am_rebuild_help(map, false);
	return 1;
}
AMP_EXPORT(anchormap_remove);

/* ---------------------------------------------------------------------
 * Sizes and statistics (lock-free, RELAXED sums)
 */

static size_t am_len_sum(const struct anchormap *map)
{
	long sum = 0;
	int i;

	for (i = 0; i < ANCHORMAP_STRIPES; i++)
		sum += am_load_relaxed(&map->wstate->stripes[i].live);
	return sum > 0 ? (size_t)sum : 0;
}

size_t anchormap_len(const struct anchormap *map)
{
	if (!map || !map->wstate)
		return 0;
	return am_len_sum(map);
}
AMP_EXPORT(anchormap_len);

bool anchormap_is_empty(const struct anchormap *map)
{
	return anchormap_len(map) == 0;
}
AMP_EXPORT(anchormap_is_empty);

/* EMPTY tags still to be filled in the current index, counting stripes' credits. */
static size_t am_idx_room(const struct anchormap *map)
{
	const struct anchormap_index *idx = am_index(map);
	long sum = am_load_relaxed(&idx->avail);
	int i;

	for (i = 0; i < ANCHORMAP_STRIPES; i++) {
		const struct am_stripe *st = &map->wstate->stripes[i];

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
		const struct am_stripe *st = &map->wstate->stripes[i];

		room += am_load_relaxed(&st->chunk_end) - am_load_relaxed(&st->next_ref);
	}
	return room;
}

size_t anchormap_capacity(const struct anchormap *map)
{
	size_t a, b;

	if (!map || !map->wstate)
		return 0;
	a = am_storage_room(map);
	b = am_idx_room_now(map);
	return anchormap_len(map) + am_min(a, b);
}
AMP_EXPORT(anchormap_capacity);

void anchormap_stats(const struct anchormap *map, struct anchormap_stats *s)
{
	const struct anchormap_index *idx, *old;
	u32 n, i;

	if (!s)
		return;
	memset(s, 0, sizeof(*s));
	if (!map || !map->wstate)
		return;
	s->name = map->name ? map->name : "anchormap";
	s->len = anchormap_len(map);
	s->capacity = anchormap_capacity(map);
	n = am_load_acquire(&map->narenas);
	s->segments = n;
	s->bytes = sizeof(struct anchormap_writer_state);
	for (i = 0; i < n; i++) {
		s->entries += map->wstate->arenas[i].size;
		s->bytes += am_arena_bytes(map, map->wstate->arenas[i].size);
	}
	__anchormap_read_lock();	/* the index may be replaced meanwhile: protocol 4 */
	idx = am_index(map);
	s->slots = idx->nslots;
	s->index_bytes = idx->bytes;
	s->index_used = idx->limit - am_idx_room(map);
	s->bytes += idx->bytes;
	__anchormap_read_unlock();
	for (old = am_load_acquire(&map->wstate->retired); old; old = old->older)
		s->retired_bytes += old->bytes;
	s->bytes += s->retired_bytes;
	s->rebuilds = am_load_relaxed(&map->wstate->rebuilds);
	for (i = 0; i < ANCHORMAP_STRIPES; i++) {
		const struct am_stripe *st = &map->wstate->stripes[i];
		u32 probe = am_load_relaxed(&st->longest_probe);

		s->deleted += am_load_relaxed(&st->deleted);
		s->contended += am_load_relaxed(&st->contended);
		if (probe > s->longest_probe)
			s->longest_probe = probe;
	}
}
AMP_EXPORT(anchormap_stats);

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
	if (!map || !map->wstate)
		return;
	for (i = 0; i < ANCHORMAP_STRIPES; i++)
		it->born[i] = am_load_acquire(&map->wstate->stripes[i].next_ref);
	it->narenas = am_load_acquire(&map->narenas);	/* protocol 3 */
	if (it->narenas)
		it->end = am_load_relaxed(&map->wstate->arenas[0].claimed);
}

void anchormap_iter_init(struct anchormap_iter *it, const struct anchormap *map)
{
	if (it)
		am_iter_start(it, map);
}
AMP_EXPORT(anchormap_iter_init);

static bool am_iter_step(struct anchormap_iter *it, const void **key, void **value)
{
	const struct anchormap *map = it->map;

	if (!map || !map->wstate)
		return false;
	__ANCHORMAP_TEST_POINT(map, ANCHORMAP_TP_ITER_NEXT);
	for (;;) {
		u32 ref, hdr;
		u8 *e;

		if (it->pos >= it->end) {
			if (it->arena + 1 >= it->narenas)
				return false;
			it->arena++;
			it->pos = 0;
			it->end = am_load_relaxed(&map->wstate->arenas[it->arena].claimed);
			continue;
		}
		ref = it->arena << __ANCHORMAP_REF_SHIFT | it->pos++;
		hdr = am_load_acquire(am_hdr(map, ref));	/* protocol 1 */
		if ((hdr & AM_HDR_STATE) != AM_HDR_LIVE || ref >= it->born[am_hdr_stripe(hdr)])
			continue;
		e = am_entry(map, ref);
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
AMP_EXPORT(anchormap_iter_next);

bool anchormap_iter_next_mut(struct anchormap_iter *it, const void **key, void **value)
{
	return it && am_iter_step(it, key, value);
}
AMP_EXPORT(anchormap_iter_next_mut);

/* ---------------------------------------------------------------------
 * Life cycle
 */

static int am_check_params(const struct anchormap_params *p)
{
	if (!p || !p->key_size || p->key_size > __ANCHORMAP_MAX_FIELD ||
	    p->value_size > __ANCHORMAP_MAX_FIELD)
		return -EINVAL;
	if (p->value_align & (p->value_align - 1) || p->value_align > __ANCHORMAP_MAX_ALIGN)
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
	map->entry_size = __anchormap_entry_size(p);
	map->fast_sig = __anchormap_fast_sig(p);
}

/* Drop a rebuild writers left unfinished: nothing is built from it now.  Exclusive. */
static void am_drop_next(struct anchormap *map)
{
	am_store_relaxed(&map->wstate->rb.ready, 0);
	am_idx_free(map->next);
	am_store_release(&map->next, NULL);
	map->wstate->rb.next = NULL;
}

/* Free all storage and indexes; the map then reads empty.  Exclusive. */
static void am_free_all(struct anchormap *map)
{
	struct anchormap_index *idx = map->index;
	u32 n = map->narenas, k;

	am_store_release(&map->index, &am_no_index.idx);
	am_store_release(&map->narenas, 0);
	for (k = 0; k < n; k++) {
		am_arena_release(map, &map->wstate->arenas[k]);
		map->arena_bias[k] = 0;
	}
	am_idx_free(idx);
	am_free_retired(map);
	am_drop_next(map);
}

/*
 * Finish a rebuild writers left unfinished (a writer copies one chunk, so
 * one stays pending when writes stop): for an exclusive operation that
 * changes the index in place, which must not leave the new one behind.
 */
static void am_rebuild_settle(struct anchormap *map)
{
	while (am_rebuild_step(map))
		amp_cond_resched(am_atomic(map));
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
		am_store_release(&map->narenas, n);
		entries = entries > want ? entries - want : 0;
	} while (entries);
	return 0;
}

int anchormap_init(struct anchormap *map, const struct anchormap_params *p, size_t capacity)
{
	struct anchormap_writer_state *ws;
	struct anchormap_index *idx;
	size_t slots;
	int i, err;

	if (!map)
		return -EINVAL;
	/* before any check: a failed init, whatever @map held, leaves a map that reads empty */
	memset(map, 0, sizeof(*map));
	map->index = &am_no_index.idx;
	err = am_check_params(p);
	if (err)
		return err;
	am_set_geometry(map, p);
	map->flags = p->flags;
	map->hash = p->hash;
	map->equal = p->equal;
	map->release = p->release;
	map->priv = p->priv;
	map->name = p->name;
	map->seed = amp_random_seed();
	if (!p->hash && !p->equal)
		map->lookup_ks = p->key_size;	/* per-key-size lookups and searches */

	slots = am_idx_slots_for(capacity);
	if (!slots || capacity > ((size_t)-1 >> 8) / map->entry_size)
		return -ENOMEM;
	ws = amp_zalloc(sizeof(*ws), false);	/* init runs in process context */
	if (!ws)
		return -ENOMEM;
	map->wstate = ws;
	ws->params = *p;	/* for clones */
	idx = am_idx_alloc(slots, false);
	err = idx ? am_alloc_storage(map, capacity) : -ENOMEM;
	if (err || amp_lock_class_init(&ws->lclass, p->name)) {
		amp_lock_class_fini(&ws->lclass);
		am_idx_free(idx);
		am_free_all(map);
		map->wstate = NULL;
		amp_free(ws, sizeof(*ws));
		return -ENOMEM;
	}
	for (i = 0; i < ANCHORMAP_STRIPES; i++)
		amp_lock_init(&ws->stripes[i].lock, am_atomic(map), &ws->lclass);
	amp_grow_lock_init(&ws->grow_lock, am_atomic(map), &ws->lclass);
	amp_grow_lock_init(&ws->rebuild_lock, am_atomic(map), &ws->lclass);
	/* the map is not shared yet: the caller publishes it */
	am_store_release(&map->index, idx);
	amp_registry_add(&ws->reg, map);
	return 0;
}
AMP_EXPORT(anchormap_init);

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
void am_walk_owned(struct anchormap *map,
		   void (*fn_live)(struct anchormap *map, u8 *e, void *arg), void *arg)
{
	u32 n = am_load_relaxed(&map->narenas), k, i;

	for (k = 0; k < n; k++) {
		const struct am_arena *ar = &map->wstate->arenas[k];
		u32 end = am_load_relaxed(&ar->claimed), *hdr = am_arena_hdrs(ar);

		for (i = 0; i < end; i++) {
			u8 *e = am_entry(map, k << __ANCHORMAP_REF_SHIFT | i);
			u32 state = am_load_relaxed(&hdr[i]) & AM_HDR_STATE;

			if (state == AM_HDR_LIVE) {
				if (fn_live)
					fn_live(map, e, arg);
			} else if (state == AM_HDR_REMOVED) {
				am_release_entry(map, e);
			}
			if ((i & 4095) == 4095)
				amp_cond_resched(am_atomic(map));
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
		struct am_stripe *st = &map->wstate->stripes[i];

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
		am_store_relaxed(&map->wstate->stripes[i].live, 0);
		am_store_relaxed(&map->wstate->stripes[i].deleted, 0);
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
	struct anchormap_writer_state *ws = map->wstate;

	am_free_all(map);
	ar->claimed = used;
	am_arena_install(map, 0, ar);
	am_store_relaxed(&ws->cur, 0);
	am_store_release(&map->narenas, 1);
	am_store_release(&map->index, idx);
	am_restart_stripes(map, used);
}

static void am_destroy(struct anchormap *map, bool release)
{
	if (!map || !map->wstate)
		return;
	amp_registry_del(&map->wstate->reg);	/* before anything is freed */
	if (release)
		am_walk_owned(map, am_release_live, NULL);
	am_free_all(map);
	amp_lock_class_fini(&map->wstate->lclass);	/* no lock of the map is used now */
	amp_free(map->wstate, sizeof(*map->wstate));
	map->wstate = NULL;
}

void anchormap_destroy(struct anchormap *map)
{
	am_destroy(map, true);
}
AMP_EXPORT(anchormap_destroy);

/* ---------------------------------------------------------------------
 * Exclusive operations
 */

void *anchormap_get_mut(struct anchormap *map, const void *key)
{
	return (void *)anchormap_get(map, key);
}
AMP_EXPORT(anchormap_get_mut);

/* The entry of @key in the current index (exclusive, or under its stripe lock). */
static u8 *am_find(const struct anchormap *map, const void *key, u64 h, struct am_place *pl)
{
	return am_search(map, am_index(map), key, h, pl);
}

bool anchormap_modify(struct anchormap *map, const void *key,
		      void (*fn)(void *value, const void *key, void *arg), void *arg)
{
	u8 *e;

	if (!map || !key || !map->wstate)
		return false;
	e = am_find(map, key, __anchormap_hash_k(map, key, AM_GENERIC), NULL);
	if (!e)
		return false;
	if (fn)
		fn(e + map->value_off, e, arg);
	return true;
}
AMP_EXPORT(anchormap_modify);

/* An entry whose bytes the caller now owns or that was released: DEAD, out of the index. */
static void am_kill(struct anchormap *map, u64 h, const struct am_place *pl)
{
	struct am_stripe *st = am_stripe_of(map, h);
	u32 ref = am_load_relaxed(&pl->g->ref[pl->i]);

	am_store_relaxed(am_hdr(map, ref), am_hdr_word(AM_HDR_DEAD, AM_STRIPE_OF(h)));
	am_vacate(am_index(map), st, pl);
	am_counter_add(&st->live, -1);
	am_counter_add(&st->deleted, 1);
}

int anchormap_remove_entry(struct anchormap *map, const void *key, void *key_out, void *value_out)
{
	struct am_place pl;
	u8 *e;
	u64 h;

	if (!map || !key || !map->wstate)
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
	am_kill(map, h, &pl);	/* the caller owns the bytes: never released */
	return 1;
}
AMP_EXPORT(anchormap_remove_entry);

/* Empty the map in place: keep its biggest arena, zeroed, and its index. */
void am_reset(struct anchormap *map)
{
	struct anchormap_writer_state *ws = map->wstate;
	struct anchormap_index *idx = map->index;
	u32 n = map->narenas, k, big = 0;
	struct am_arena ar;

	amp_registry_del(&ws->reg);
	for (k = 1; k < n; k++)
		if (ws->arenas[k].size > ws->arenas[big].size)
			big = k;
	ar = ws->arenas[big];
	memset(am_arena_base(map, &ar), 0, (size_t)ar.claimed * map->entry_size);
	memset(am_arena_hdrs(&ar), 0, (size_t)ar.claimed * sizeof(u32));	/* FREE */
	memset(ws->arenas + big, 0, sizeof(ar));	/* kept: am_free_all() skips it */
	map->index = &am_no_index.idx;			/* kept too */
	memset((u8 *)idx + __ANCHORMAP_INDEX_HDR, 0, idx->hmask + AM_LINE);
	idx->avail = (long)idx->limit;
	idx->broken = 0;
	idx->older = NULL;
	am_replace(map, &ar, 0, idx);
	am_zero_counts(map);
	amp_registry_add(&ws->reg, map);
}

void anchormap_clear(struct anchormap *map)
{
	if (!map || !map->wstate)
		return;
	am_walk_owned(map, am_release_live, NULL);
	am_reset(map);
}
AMP_EXPORT(anchormap_clear);

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

	if (!map || !map->wstate)
		return;
	/* nobody to take the entries: the map still owns them, release them */
	am_walk_owned(map, fn ? am_drain_one : am_release_live, &ctx);
	am_reset(map);
}
AMP_EXPORT(anchormap_drain);

/*
 * Compaction in place.  Live entries slide down to the front of storage,
 * in ref order: arenas 0..K-1 come out full and arena K holds the last
 * @tail; the arenas after K are freed.  A write position never passes the
 * read position (both count whole arenas, and only live entries are
 * written), so an entry is read, or released if removed, before anything
 * lands on it.  The replaced indexes are freed first, then the new index is
 * the one allocation before the move, so the peak is storage and the
 * current index plus the new one; and optionally @tail's own right-sized
 * arena, when arena K would be mostly empty.
 */
struct am_compact_ctx {
	struct anchormap_index *idx;
	const struct am_arena *tail;	/* arena K's replacement, or NULL: K itself */
	u32 k;			/* the write position: arena, entry */
	u32 i;
	u32 last;		/* K */
};

/*
 * The entry the next live one moves to, its header word, and its ref in the
 * compacted map.
 */
static u8 *am_compact_dest(struct anchormap *map, struct am_compact_ctx *c, u32 **hdr, u32 *ref)
{
	const struct am_arena *ar = &map->wstate->arenas[c->k];

	while (c->k < c->last && c->i == ar->size) {
		c->k++;
		c->i = 0;
		ar++;
	}
	*ref = c->k << __ANCHORMAP_REF_SHIFT | c->i;
	if (c->k == c->last && c->tail)
		ar = c->tail;
	*hdr = am_arena_hdrs(ar) + c->i;
	return am_arena_base(map, ar) + (size_t)c->i * map->entry_size;
}

/* Move live entry @e to the write position and give it a tag in the new index. */
static void am_move_live(struct anchormap *map, u8 *e, void *arg)
{
	struct am_compact_ctx *c = arg;
	u64 h = __anchormap_hash_k(map, e, AM_GENERIC);
	struct am_stripe *st = am_stripe_of(map, h);
	struct am_place pl;
	u32 probes = 0, ref, *hdr;
	u8 was, *to = am_compact_dest(map, c, &hdr, &ref);

	if (to != e)
		memcpy(to, e, map->entry_size);	/* @to was read already: see above */
	*hdr = am_hdr_word(AM_HDR_LIVE, AM_STRIPE_OF(h));
	if (am_claim_tag(NULL, c->idx, h, &pl, &was, &probes)) {
		am_publish_tag(NULL, &pl, ref, h);
		am_counter_add(&c->idx->avail, -1);	/* not yet shared: marked anyway */
	}
	c->i++;
	am_counter_add(&st->live, 1);
	if (probes > st->longest_probe)
		am_store_relaxed(&st->longest_probe, probes);
}

/* Arena K, where @live entries end, and how many of them land in it. */
static u32 am_compact_last(const struct anchormap *map, size_t live, u32 *tail)
{
	const struct am_arena *ar = map->wstate->arenas;
	u32 n = map->narenas, k = 0;

	while (k + 1 < n && live > ar[k].size) {
		live -= ar[k].size;
		k++;
	}
	*tail = (u32)live;
	return k;
}

/*
 * A right-sized arena for arena K's @tail entries when K would keep more
 * than a quarter of the live set empty.  Not getting one is no failure.
 */
static void am_compact_tail(struct anchormap *map, size_t live, u32 last, u32 tail,
			    struct am_arena *fresh)
{
	size_t want = am_arena_entries(tail);

	memset(fresh, 0, sizeof(*fresh));
	if (want && map->wstate->arenas[last].size - tail > live / 4 + AM_ARENA_MIN &&
	    want < map->wstate->arenas[last].size)
		(void)am_arena_alloc(map, fresh, want, am_atomic(map));
}

/* After the move: the compacted arenas, the new index, the stripes at the end. */
static void am_compact_finish(struct anchormap *map, struct anchormap_index *idx,
			      u32 last, u32 tail, struct am_arena *fresh)
{
	struct anchormap_writer_state *ws = map->wstate;
	u32 n = map->narenas, k;

	for (k = last + 1; k < n; k++) {
		am_arena_release(map, &ws->arenas[k]);
		map->arena_bias[k] = 0;
	}
	if (fresh->raw) {
		am_arena_release(map, &ws->arenas[last]);
		am_arena_install(map, last, fresh);
	} else {
		struct am_arena *ar = &ws->arenas[last];

		/* the entries moved out of K's end are stale: FREE again */
		if (ar->claimed > tail) {
			memset(am_arena_base(map, ar) + (size_t)tail * map->entry_size, 0,
			       (size_t)(ar->claimed - tail) * map->entry_size);
			memset(am_arena_hdrs(ar) + tail, 0,
			       (size_t)(ar->claimed - tail) * sizeof(u32));
		}
	}
	for (k = 0; k < last; k++)
		ws->arenas[k].claimed = ws->arenas[k].size;
	ws->arenas[last].claimed = tail;
	am_store_relaxed(&ws->cur, last);
	am_store_release(&map->narenas, last + 1);
	am_store_release(&map->index, idx);
	am_restart_stripes(map, last << __ANCHORMAP_REF_SHIFT | tail);
}

/*
 * Compact storage in place and build one index sized for the live entries:
 * removed entries are released, dead ones dropped.  If the index cannot be
 * allocated, only the replaced indexes and a pending rebuild are gone.
 */
int am_compact(struct anchormap *map)
{
	size_t live = anchormap_len(map);
	struct am_compact_ctx c = { 0 };
	struct am_arena fresh;
	u32 tail;

	/*
	 * The move reads storage only and nobody reads indexes now: the old
	 * ones go before the new one is allocated, all but the current one,
	 * which a failure still needs.
	 */
	amp_registry_del(&map->wstate->reg);
	am_free_retired(map);
	am_drop_next(map);
	c.idx = am_idx_alloc(am_idx_slots_for(live), am_atomic(map));
	if (!c.idx) {
		amp_registry_add(&map->wstate->reg, map);
		return -ENOMEM;
	}
	am_idx_free(map->index);
	am_store_release(&map->index, &am_no_index.idx);
	c.last = am_compact_last(map, live, &tail);
	am_compact_tail(map, live, c.last, tail, &fresh);
	c.tail = fresh.raw ? &fresh : NULL;
	am_zero_counts(map);
	am_walk_owned(map, am_move_live, &c);	/* counts the live ones again */
	am_compact_finish(map, c.idx, c.last, tail, &fresh);
	amp_registry_add(&map->wstate->reg, map);
	return 0;
}

int anchormap_shrink_to_fit(struct anchormap *map)
{
	if (!map || !map->wstate)
		return -EINVAL;
	return am_compact(map);
}
AMP_EXPORT(anchormap_shrink_to_fit);

void anchormap_retain(struct anchormap *map,
		      bool (*keep)(const void *key, void *value, void *arg), void *arg)
{
	u32 n, k, i;

	if (!map || !map->wstate || !keep)
		return;
	am_rebuild_settle(map);
	n = map->narenas;
	for (k = 0; k < n; k++) {
		u32 end = map->wstate->arenas[k].claimed;

		for (i = 0; i < end; i++) {
			u32 ref = k << __ANCHORMAP_REF_SHIFT | i;
			u8 *e = am_entry(map, ref);
			struct am_place pl;
			u64 h;

			if ((*am_hdr(map, ref) & AM_HDR_STATE) != AM_HDR_LIVE ||
			    keep(e, e + map->value_off, arg))
				continue;
			am_release_entry(map, e);
			/* released now, so DEAD: compaction must not release it again */
			h = __anchormap_hash_k(map, e, AM_GENERIC);
			if (am_find_ref(map->index, h, ref, &pl))
				am_kill(map, h, &pl);
		}
	}
	/* reclaim removed entries; on -ENOMEM the map stays correct, with them */
	(void)am_compact(map);
}
AMP_EXPORT(anchormap_retain);

/* ---------------------------------------------------------------------
 * Entry API (exclusive)
 */

struct anchormap_entry *anchormap_entry(struct anchormap *map, const void *key,
					struct anchormap_entry *e)
{
	if (!map || !key || !e || !map->wstate)
		return NULL;
	e->map = map;
	e->key = key;
	e->hash = __anchormap_hash_k(map, key, AM_GENERIC);
	e->slot = am_find(map, key, e->hash, NULL);
	return e;
}
AMP_EXPORT(anchormap_entry);

bool anchormap_entry_is_occupied(const struct anchormap_entry *e)
{
	return e && e->slot;
}
AMP_EXPORT(anchormap_entry_is_occupied);

struct anchormap_entry *anchormap_entry_and_modify(struct anchormap_entry *e,
		void (*fn)(void *value, const void *key, void *arg), void *arg)
{
	if (e && e->slot && fn)
		fn((u8 *)e->slot + e->map->value_off, e->slot, arg);
	return e;
}
AMP_EXPORT(anchormap_entry_and_modify);

static void *am_entry_fill(struct anchormap_entry *e, const struct am_filler *f)
{
	bool inserted;
	u8 *slot;

	if (!e || !e->map || !e->map->wstate)
		return ERR_PTR(-EINVAL);
	if (!e->slot) {
		slot = am_upsert(e->map, e->key, e->hash, f, NULL, &inserted);
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
AMP_EXPORT(anchormap_entry_or_insert);

void *anchormap_entry_or_insert_with(struct anchormap_entry *e,
		void (*init)(void *value, const void *key, void *arg), void *arg)
{
	struct am_filler f = { .init = init, .arg = arg };

	return am_entry_fill(e, &f);
}
AMP_EXPORT(anchormap_entry_or_insert_with);

/* ---------------------------------------------------------------------
 * Whole map
 */

int anchormap_clone(struct anchormap *dst, const struct anchormap *src)
{
	struct anchormap_params p;
	struct anchormap_iter it;
	const void *key, *value;
	int err;

	if (!dst || !src || !src->wstate || dst == src)
		return -EINVAL;
	p = src->wstate->params;	/* as src was made */
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
AMP_EXPORT(anchormap_clone);

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
AMP_EXPORT(anchormap_equal);
