// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * anchormap.c - a concurrent hash map whose entries never move
 *
 * The core knows no operating system: what it needs from one comes from
 * "anchormap_deps.h" (userspace_shim/ or kernel/, chosen by -I).
 *
 * Conventions in this file
 *   map     the struct anchormap; read-mostly, see anchormap.h
 *   seg     a segment: one Swiss table, never moved or freed while shared
 *   h       the 64-bit hash of a key; its top 7 bits are the fingerprint,
 *           its low bits pick the home group, bits 32..37 pick the stripe
 *   st      a writer stripe: lock, credits and counters, one cache line
 *   idx     a slot index inside one segment; slot = seg->slots + idx * size
 *   am_*    static helpers; anchormap_* is the exported API
 *
 * Layout of a segment (one allocation):
 *   header (2 cache lines) | ctrl: one byte per slot | slots: key, value
 *
 * Control bytes
 *   0x00           EMPTY     never used since the segment was allocated
 *   0x7f           RESERVED  claimed by a writer that is filling the slot
 *   0x01..0x40     DELETED   removed; bytes intact, released later; the
 *                            value is 1 + the stripe of the key
 *                            (am_del_code()), so that a writer finds the
 *                            removed copies of its stripe's keys without
 *                            reading slots, and never reads a slot another
 *                            stripe wrote
 *   0x7d           DEAD      claimed but never published (init failed or
 *                            ownership left with remove_entry); no release
 *   0x80 | fp      FULL      live entry, fp = top 7 bits of the hash
 *
 * EMPTY is zero so that a freshly zeroed allocation is an empty segment and
 * its pages are only touched as slots fill.  While the map is shared a
 * control byte only moves forward: EMPTY -> RESERVED -> FULL -> DELETED (or
 * RESERVED -> DEAD), never back to EMPTY; the one way back is DELETED ->
 * FULL, for the very same bytes and only for the last copy of a key on its
 * probe sequence (am_revive()).  Hence a group that once had no
 * EMPTY byte never gets one again, which is what lets a lookup stop at the
 * first group holding an EMPTY byte: any key further along its probe
 * sequence was placed when this group was already full.
 *
 * Memory-ordering protocol (every __atomic call names its order; these are
 * the pairs that matter):
 *
 *  1. Entry publication.  A writer claims a slot with a CAS EMPTY->RESERVED
 *     on its control byte, copies key and value into the slot with plain
 *     stores, then RELEASE-stores the fingerprint.  A reader scans a group
 *     with RELAXED word loads (SWAR) only to find candidates and EMPTY
 *     bytes and, for each candidate it tries, ACQUIRE-loads that one
 *     control byte; seeing the fingerprint there makes the writer's key and
 *     value stores visible, so the reader may compare the key and return
 *     the slot.  In userspace on x86 (SSE2) the group is one plain 16-byte
 *     load followed by an ACQUIRE fence: x86 keeps loads in order, so that
 *     is an acquire of all 16 bytes (as smp_load_acquire() is a plain load
 *     there), and a candidate needs no second load.  Both are
 *     __anchormap_group_load() / __anchormap_group_confirm() in anchormap.h,
 *     whose first lookup step anchormap_get_fast() inlines into callers.
 *  2. Removal.  The remover RELEASE-stores DELETED.  Nothing is published by
 *     it except "this entry is gone"; release makes the slot's bytes
 *     readable to an acquirer of DELETED (iteration's duplicate check reads
 *     keys of deleted slots).  The slot's bytes are never written again
 *     while the map is shared.  Reviving it (DELETED -> FULL, same bytes)
 *     is a publication as in 1: a RELEASE store of the fingerprint, under
 *     the stripe lock the original writer held too.  The reviver reads the
 *     control bytes RELAXED and compares the key bytes of the slots that
 *     carry its DELETED code: that code names its own stripe, so every such
 *     slot was written and removed under the lock the reviver holds, and
 *     the lock orders those stores before its loads.
 *  3. Segment publication.  Growth allocates a zeroed segment and fills
 *     its header; under the growth lock it stores the pointer in
 *     map->seg[n], RELEASE-stores map->top = that segment and then
 *     RELEASE-stores map->nseg = n + 1.  Readers ACQUIRE-load nseg and then
 *     read seg[0..nseg-1] and their headers with plain loads; the inline
 *     first step ACQUIRE-loads top instead (one load where nseg needs two).
 *     Top goes first because writers insert into seg[nseg - 1]: by the time
 *     any key can be in the new segment, top names it, so a lookup that
 *     still sees the old top (and, with one segment, stops at its EMPTY
 *     byte) began before that insert.  A lookup that sees the new top with
 *     the old nseg misses nothing: no writer has used the new segment yet.
 *  4. Counters (stripe live/deleted/removals/contended, segment avail) are
 *     RELAXED: they carry no data.  Writers update stripe counters under the
 *     stripe lock; readers sum them without it.  An iterator that
 *     ACQUIRE-loads a fingerprint published after a removal on the same
 *     stripe sees that removal's counter increment (the writer incremented
 *     it before its RELEASE store, both under the stripe lock); likewise the
 *     stripe's longest probe, which the walk uses to tell wrapped probes.
 *  5. Stripe locks and the growth lock come from the platform and give
 *     acquire/release semantics of their own.  All writers of one key use
 *     the same stripe, so "is it present?" and "claim a slot" are atomic
 *     per key; writers of different stripes meet only at the control-byte
 *     CAS and at a segment's avail counter.
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
#define AM_GROUP_SHIFT		__ANCHORMAP_GROUP_SHIFT
#define AM_LINE			64
#define AM_MIN_SLOTS		16
#define AM_MAX_FIELD		__ANCHORMAP_MAX_FIELD	/* largest key or value */
#define AM_MAX_ALIGN		__ANCHORMAP_MAX_ALIGN

#define AM_EMPTY		0x00
#define AM_DEAD			0x7d
#define AM_RESERVED		0x7f
#define AM_FULL_BIT		__ANCHORMAP_FULL_BIT

#define AM_LSB			__ANCHORMAP_LSB
#define AM_MSB			__ANCHORMAP_MSB

#define AM_NO_SLOT		((size_t)-1)

#define am_align_up(x, a)	(((x) + (a) - 1) & ~((size_t)(a) - 1))

/* A u64 view of control bytes that may alias them. */
typedef u64 __attribute__((__may_alias__)) am_word_t;

struct am_stripe {
	am_lock_t lock;
	/* under the lock only */
	u32 credit_seg;		/* segment index the credits belong to */
	size_t credits;		/* claims this stripe may still make there */
	/* written under the lock, read lock-free (RELAXED) */
	long live;		/* entries present, of this stripe's keys */
	long deleted;		/* DELETED + DEAD slots not yet reclaimed */
	u32 removals;		/* removals ever: iterators compare it */
	u32 longest_probe;
	u64 contended;
} __aligned(AM_LINE);

struct anchormap_shared {
	struct am_stripe stripes[ANCHORMAP_STRIPES];
	am_mutex_t grow_lock;
	struct am_lock_class lclass;	/* the lock classes of this map's locks */
	struct am_registry_node reg;
} __aligned(AM_LINE);

/* What a writer puts into a freshly claimed slot. */
struct am_filler {
	const void *value;	/* copied when set, else the value is zeroed */
	void (*init)(void *value, const void *key, void *arg);
	int (*try_init)(void *value, const void *key, void *arg);
	void *arg;
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

/* Counters written under the stripe lock, read lock-free. */
#define am_counter_add(p, d)	am_store_relaxed((p), am_load_relaxed(p) + (d))

/*
 * Helpers shared with anchormap_get_fast() live in anchormap.h (their
 * private part); these are the names this file knows them by.
 */
#define am_group_word		__anchormap_group_word
#define am_fold_mul		__anchormap_fold_mul
#define am_hash_inline		__anchormap_hash
#define am_fp			__anchormap_fp
#define am_zero_bytes		__anchormap_zero_bytes
#define am_hash_k		__anchormap_hash_k
#define am_key_eq_k		__anchormap_key_eq_k
#define am_group_t		__anchormap_group_t
#define am_group_load		__anchormap_group_load
#define am_group_match		__anchormap_group_match
#define am_group_has_empty	__anchormap_group_has_empty
#define am_group_slot		__anchormap_group_slot
#define am_group_confirm	__anchormap_group_confirm

#ifdef ANCHORMAP_TEST_HOOKS
void (*anchormap_test_hook)(const struct anchormap *map, enum anchormap_test_point point);
#define am_test_point(map, point) do {						\
	if (anchormap_test_hook)						\
		anchormap_test_hook((map), (point));				\
} while (0)
#else
#define am_test_point(map, point) do { (void)(map); (void)(point); } while (0)
#endif

/*
 * What a map without segments (destroyed, or cleared by an init that then
 * failed) looks up in: one group of EMPTY bytes, so that every lookup, the
 * inline ones in clients too, misses without a check of its own.  Never
 * written: every writer and exclusive operation refuses a map whose
 * ->shared is NULL.
 */
static u8 am_no_ctrl[AM_GROUP] __aligned(16);
static struct anchormap_segment am_no_segment = { .ctrl = am_no_ctrl };

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
	return am_hash_inline(key, key_size, seed ^ __ANCHORMAP_K0);
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
	return anchormap_siphash24(key, key_size, seed, am_fold_mul(seed ^ AM_K2, AM_K3));
}
AM_EXPORT(anchormap_hash_siphash);

#define AM_STRIPE_OF(h)		((unsigned int)((h) >> 32) & (ANCHORMAP_STRIPES - 1))

/*
 * The control byte of a removed entry: DELETED, 1 + its stripe.  The stripe,
 * not other hash bits: a writer compares the bytes of the removed slots that
 * match its code (am_revive()), and only its own stripe's writers, under the
 * lock it holds, ever wrote those.
 */
static __always_inline u8 am_del_code(u64 h)
{
	return (u8)(1 + AM_STRIPE_OF(h));
}

static __always_inline bool am_is_deleted(u8 c)
{
	return (u8)(c - 1) < 0x40;
}

static __always_inline struct am_stripe *am_stripe_of(const struct anchormap *map, u64 h)
{
	return &map->shared->stripes[AM_STRIPE_OF(h)];
}

/* ---------------------------------------------------------------------
 * Group matching, a word (8 control bytes) at a time
 */

static __always_inline u64 am_full_bytes(u64 w)
{
	return w & AM_MSB;
}

static __always_inline unsigned int am_first_byte(u64 mask)
{
	return (unsigned int)__builtin_ctzll(mask) >> 3;
}

/* ---------------------------------------------------------------------
 * Keys and slots
 */

/* @ks: a constant key size (built-in hash and compare) or AM_GENERIC */
#define AM_GENERIC	0

static __always_inline u8 *am_slot(const struct anchormap *map,
				   const struct anchormap_segment *seg, size_t idx)
{
	return seg->slots + idx * map->slot_size;
}

/* ---------------------------------------------------------------------
 * Lookup: lock-free
 */

/* Candidates of one group: the slot holding @key, or AM_NO_SLOT. */
static __always_inline size_t am_group_find(const struct anchormap *map,
					    const struct anchormap_segment *seg, am_group_t grp,
					    size_t base, const void *key, u8 fp, u32 ks)
{
	u64 m;

	for (m = am_group_match(grp, fp); m; m &= m - 1) {
		size_t idx = base + am_group_slot(m);

		if (likely(am_group_confirm(seg->ctrl, idx, fp)) &&
		    likely(am_key_eq_k(map, key, am_slot(map, seg, idx), ks)))
			return idx;
	}
	return AM_NO_SLOT;
}

static __always_inline size_t am_seg_find(const struct anchormap *map,
					  const struct anchormap_segment *seg,
					  const void *key, u64 h, u8 fp, u32 ks)
{
	size_t gmask = seg->gmask, g = h & gmask, step = 0, idx;
	am_group_t grp;

	for (;;) {
		grp = am_group_load(seg->ctrl, g << AM_GROUP_SHIFT);
		idx = am_group_find(map, seg, grp, g << AM_GROUP_SHIFT, key, fp, ks);
		if (idx != AM_NO_SLOT)
			return idx;
		/* an EMPTY byte ends every probe sequence through this group */
		if (likely(am_group_has_empty(grp)))
			return AM_NO_SLOT;
		if (unlikely(++step > gmask))
			return AM_NO_SLOT;
		g = (g + step) & gmask;		/* triangular: visits every group */
	}
}

/*
 * Segments n-1 down to 0, each probed in full: the writers' lookup, and the
 * rare part of a reader's (a probe past its first candidate, or a map that
 * grew).  Each key-size flavour has its own out-of-line copy
 * (AM_DEFINE_SEARCH), so that the readers' common path stays short and
 * needs few registers, while a map that grew still gets the specialised
 * hash and compare.
 */
static __always_inline u8 *am_find_segments(const struct anchormap *map, const void *key,
					    u64 h, u32 n, u32 ks,
					    struct anchormap_segment **segp, size_t *idxp,
					    u32 off)
{
	u8 fp = am_fp(h);

	while (n--) {
		struct anchormap_segment *seg = map->seg[n];
		size_t idx = am_seg_find(map, seg, key, h, fp, ks);

		if (idx != AM_NO_SLOT) {
			if (segp) {
				*segp = seg;
				*idxp = idx;
			}
			return am_slot(map, seg, idx) + off;
		}
	}
	return NULL;
}

#define AM_DEFINE_SEARCH(name, ks)						\
static noinline u8 *am_search_##name(const struct anchormap *map, const void *key, \
				     u64 h, u32 n, struct anchormap_segment **segp, \
				     size_t *idxp, u32 off)			\
{										\
	return am_find_segments(map, key, h, n, ks, segp, idxp, off);		\
}
AM_DEFINE_SEARCH(4, 4)
AM_DEFINE_SEARCH(8, 8)
AM_DEFINE_SEARCH(16, 16)
AM_DEFINE_SEARCH(generic, AM_GENERIC)

/* Every segment, newest first, with the search specialised for the map. */
static __always_inline u8 *am_search(const struct anchormap *map, const void *key, u64 h,
				     struct anchormap_segment **segp, size_t *idxp, u32 off)
{
	u32 n = am_load_acquire(&map->nseg);	/* pairs with growth, protocol 3 */

	switch (map->lookup_ks) {
	case 8:
		return am_search_8(map, key, h, n, segp, idxp, off);
	case 4:
		return am_search_4(map, key, h, n, segp, idxp, off);
	case 16:
		return am_search_16(map, key, h, n, segp, idxp, off);
	default:
		return am_search_generic(map, key, h, n, segp, idxp, off);
	}
}

/*
 * The writers' lookup, with the hash already known.  Writers hold their
 * stripe lock, so the readers' inline first-candidate shortcut would buy
 * them little.
 */
static u8 *am_find(const struct anchormap *map, const void *key, u64 h,
		   struct anchormap_segment **segp, size_t *idxp)
{
	return am_search(map, key, h, segp, idxp, 0);
}

/*
 * The readers' slow path, exported for anchormap_get_fast(): every
 * candidate of every segment, newest first.  The first step
 * (__anchormap_lookup() in anchormap.h) calls it for a fingerprint
 * collision, a probe past the home group or a map that grew.
 */
const void *__anchormap_lookup_slow(const struct anchormap *map, const void *key, u64 h,
				    u32 off)
{
	return am_search(map, key, h, NULL, NULL, off);
}
AM_EXPORT(__anchormap_lookup_slow);

/*
 * The readers' lookup as the library exports it: the header's first step
 * (the one anchormap_get_fast() inlines), one copy per common key size,
 * each out of line so that it gets the registers to itself; its slow path
 * is a call with four arguments (no stack argument, so no frame and no
 * callee-saved spills on the fast path).
 */
#define AM_DEFINE_LOOKUP(name, ks)						\
static const u8 *am_lookup_##name(const struct anchormap *map, const void *key, \
				  u32 off)					\
{										\
	return __anchormap_lookup(map, key, am_hash_k(map, key, ks),		\
				  ks ? NULL : map->equal, ks ? ks : map->key_size, \
				  map->slot_size, off);				\
}
AM_DEFINE_LOOKUP(4, 4)
AM_DEFINE_LOOKUP(8, 8)
AM_DEFINE_LOOKUP(16, 16)
AM_DEFINE_LOOKUP(generic, AM_GENERIC)

/* The slot plus @off, or NULL: with @off the value offset, a tail call. */
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
	const u8 *slot = NULL;

	if (likely(map && key))
		slot = am_lookup(map, key, 0);
	if (value)
		*value = slot ? slot + map->value_off : NULL;
	return slot;
}
AM_EXPORT(anchormap_get_key_value);

bool anchormap_contains_key(const struct anchormap *map, const void *key)
{
	return anchormap_get_key_value(map, key, NULL) != NULL;
}
AM_EXPORT(anchormap_contains_key);

/* ---------------------------------------------------------------------
 * Segments
 */

#define AM_SEG_HDR	am_align_up(sizeof(struct anchormap_segment), AM_LINE)

/* Claims a segment of @nslots allows before the map grows: 7/8 load. */
static size_t am_limit(size_t nslots)
{
	return nslots - nslots / 8;
}

/*
 * Slots for a segment that takes @entries inserts without growing.  A
 * stripe takes credits a chunk (limit/1024) at a time and may strand up to
 * a chunk when the map grows, so allow 1/16 on top of the load limit.
 */
static size_t am_slots_for(size_t entries)
{
	size_t need, slots = AM_MIN_SLOTS;

	if (entries > ((size_t)-1 >> 4))
		return 0;
	need = entries + entries / 15 + 1;
	while (am_limit(slots) < need) {
		if (slots > ((size_t)-1 >> 2))
			return 0;
		slots <<= 1;
	}
	return slots;
}

static bool am_atomic(const struct anchormap *map)
{
	return map->flags & ANCHORMAP_F_ATOMIC;
}

static struct anchormap_segment *am_seg_alloc(const struct anchormap *map, size_t nslots,
					      bool atomic)
{
	size_t align = map->value_align > AM_LINE ? map->value_align : AM_LINE;
	size_t ctrl = am_align_up(nslots, AM_LINE);
	size_t bytes, data;
	struct anchormap_segment *seg;
	uintptr_t slots;

	if (!nslots || nslots > ((size_t)-1 >> 2) / map->slot_size)
		return NULL;
	data = nslots * map->slot_size;
	bytes = AM_SEG_HDR + ctrl + (align - AM_LINE) + data;
	if (bytes < data)
		return NULL;
	seg = am_zalloc(bytes, atomic);	/* zero: every byte EMPTY */
	if (!seg)
		return NULL;
	seg->ctrl = (u8 *)seg + AM_SEG_HDR;
	slots = am_align_up((uintptr_t)(seg->ctrl + ctrl), align);
	seg->slots = (u8 *)slots;
	seg->nslots = nslots;
	seg->gmask = nslots / AM_GROUP - 1;
	seg->limit = am_limit(nslots);
	seg->chunk = seg->limit >> 10 ? seg->limit >> 10 : 1;
	seg->bytes = bytes;
	seg->avail = (long)seg->limit;
	return seg;
}

static void am_seg_free(struct anchormap_segment *seg)
{
	if (seg)
		am_free(seg, seg->bytes);
}

/* ---------------------------------------------------------------------
 * Stripes, credits and growth (writers)
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
 * Take one claim in segment @n for a writer holding @st.  Credits come from
 * the segment's shared avail counter a chunk at a time, so that writers on
 * different stripes rarely touch the same cache line.
 */
static bool am_take_credit(struct anchormap *map, struct am_stripe *st, u32 n)
{
	struct anchormap_segment *seg = map->seg[n];
	long avail, take;

	/* written under the lock, peeked at by statistics: marked stores */
	if (st->credit_seg != n) {
		am_store_relaxed(&st->credit_seg, n);
		am_store_relaxed(&st->credits, 0);
	}
	if (st->credits) {
		am_store_relaxed(&st->credits, st->credits - 1);
		return true;
	}
	avail = am_load_relaxed(&seg->avail);
	do {
		if (avail <= 0)
			return false;
		take = avail < (long)seg->chunk ? avail : (long)seg->chunk;
	} while (!am_cas_relaxed(&seg->avail, &avail, avail - take));
	am_store_relaxed(&st->credits, (size_t)take - 1);
	return true;
}

/*
 * Claim an EMPTY slot on @h's probe sequence: the first group that has an
 * EMPTY byte, trying its EMPTY bytes in turn when other stripes win them.
 */
static size_t am_claim(struct anchormap_segment *seg, u64 h, u32 *probes)
{
	size_t gmask = seg->gmask, g = h & gmask, step = 0;

	for (;;) {
		size_t base = g << AM_GROUP_SHIFT;

		for (;;) {
			u64 m0 = am_zero_bytes(am_group_word(seg->ctrl, base));
			u64 m1 = am_zero_bytes(am_group_word(seg->ctrl, base + 8));
			size_t idx;
			u8 expect = AM_EMPTY;

			if (!(m0 | m1))
				break;
			idx = base + (m0 ? am_first_byte(m0) : 8 + am_first_byte(m1));
			/* RELAXED: no data flows through RESERVED (protocol 1) */
			if (am_cas_relaxed(&seg->ctrl[idx], &expect, AM_RESERVED)) {
				*probes = (u32)step + 1;
				return idx;
			}
		}
		if (++step > gmask)
			return AM_NO_SLOT;
		g = (g + step) & gmask;
	}
}

/*
 * An init callback's error as an ERR_PTR code: a negative errno passes; any
 * other code (positive, or below -MAX_ERRNO, which ERR_PTR could not carry
 * and IS_ERR would not recognise) is out of contract and becomes -EINVAL.
 */
static long am_init_error(int err)
{
	return err < 0 && err >= -MAX_ERRNO ? err : -EINVAL;
}

/*
 * Fill a claimed slot and publish it.  On an init error the slot is left
 * DEAD: it cannot go back to EMPTY while readers may have probed past it.
 */
static u8 *am_fill(struct anchormap *map, struct anchormap_segment *seg, struct am_stripe *st,
		   const void *key, u64 h, const struct am_filler *f)
{
	u32 probes = 0;
	size_t idx = am_claim(seg, h, &probes);
	u8 *slot, *value;
	int err;

	if (unlikely(idx == AM_NO_SLOT))
		return ERR_PTR(-ENOMEM);	/* credits make this unreachable */
	slot = am_slot(map, seg, idx);
	value = slot + map->value_off;
	memcpy(slot, key, map->key_size);
	if (f->value)
		memcpy(value, f->value, map->value_size);
	else
		memset(value, 0, map->value_size);
	if (f->init)
		f->init(value, slot, f->arg);
	if (f->try_init) {
		err = f->try_init(value, slot, f->arg);
		if (err) {
			am_store_release(&seg->ctrl[idx], AM_DEAD);
			am_counter_add(&st->deleted, 1);
			return ERR_PTR(am_init_error(err));
		}
	}
	/* before publishing: an iterator that sees the entry sees its probe */
	if (probes > st->longest_probe)
		am_store_relaxed(&st->longest_probe, probes);
	am_store_release(&seg->ctrl[idx], am_fp(h));	/* publish: protocol 1 */
	am_counter_add(&st->live, 1);
	return slot;
}

/* Does @seg have claims left for @entries more inserts, with credit slack? */
static bool am_room(const struct anchormap_segment *seg, size_t entries)
{
	long avail = am_load_relaxed(&seg->avail);

	if (entries > ((size_t)-1 >> 4))
		return false;	/* no segment is that big: am_slots_for() says so */
	return avail > 0 && (size_t)avail >= entries + entries / 15;
}

/* What growth should append after the newest segment, or 0 for nothing. */
static int am_grow_size(struct anchormap *map, u32 n, u32 seen, size_t min_entries,
			size_t *slots)
{
	const struct anchormap_segment *last = map->seg[n - 1];
	size_t want;

	*slots = 0;
	if (!min_entries && n != seen)
		return 0;	/* another writer grew it meanwhile */
	if (min_entries && am_room(last, min_entries))
		return 0;
	if (n == ANCHORMAP_MAX_SEGMENTS)
		return -ENOMEM;
	want = am_slots_for(min_entries);
	if (!want)
		return -ENOMEM;
	*slots = last->nslots << 1;
	if (want > *slots)
		*slots = want;
	return 0;
}

/*
 * Append a segment after @seen segments, big enough for @min_entries more
 * inserts (0: just twice the last).  A writer that lost the race to grow
 * finds nseg != seen and retries at once.
 *
 * The growth lock is held across the allocation, so that racing writers
 * wait rather than each allocate a segment, except for an
 * ANCHORMAP_F_ATOMIC map, whose growth lock is a raw spinlock: no allocator
 * may run under one (PREEMPT_RT), so the lock is dropped around the
 * allocation and the decision is made again afterwards (the xas_nomem
 * pattern).
 */
static int am_grow(struct anchormap *map, u32 seen, size_t min_entries, bool may_sleep)
{
	struct anchormap_shared *sh = map->shared;
	struct anchormap_segment *seg = NULL;
	bool drop = am_atomic(map);
	size_t slots;
	int err;
	u32 n;

	am_mutex_lock(&sh->grow_lock, am_atomic(map));
	for (;;) {
		n = am_load_relaxed(&map->nseg);	/* only growers write it */
		err = am_grow_size(map, n, seen, min_entries, &slots);
		if (err || !slots || (seg && seg->nslots >= slots))
			break;
		if (drop)
			am_mutex_unlock(&sh->grow_lock, true);
		am_seg_free(seg);
		seg = am_seg_alloc(map, slots, !may_sleep && am_atomic(map));
		if (drop)
			am_mutex_lock(&sh->grow_lock, true);
		if (!seg) {
			err = -ENOMEM;
			break;
		}
		if (!drop)
			break;	/* nothing changed: we held the lock */
	}
	if (!err && slots && seg) {
		map->seg[n] = seg;
		am_store_release(&map->top, seg);	/* publish: protocol 3 */
		am_test_point(map, ANCHORMAP_TP_GROW_PUBLISH);
		am_store_release(&map->nseg, n + 1);	/* after top: protocol 3 */
		seg = NULL;
	}
	am_mutex_unlock(&sh->grow_lock, am_atomic(map));
	am_seg_free(seg);	/* allocated but not needed after all */
	return err;
}

/* Revival's value check: are the removed copy's bytes the ones being inserted? */
static bool am_bytes_zero(const u8 *p, u32 n)
{
	while (n && !*p) {
		p++;
		n--;
	}
	return !n;
}

static bool am_revivable(const struct anchormap *map, const u8 *slot,
			 const struct am_filler *f)
{
	const u8 *value = slot + map->value_off;

	if (f->value)
		return !memcmp(value, f->value, map->value_size);
	return am_bytes_zero(value, map->value_size);
}

/*
 * Revival of a removed entry.  A key removed and inserted again, over and
 * over (a hot key of a cache, a member of a set toggled in and out), would
 * otherwise leave a tombstone on its own probe sequence each time, and its
 * lookups would walk past all of them.  When a removed copy of the key in
 * the newest segment holds exactly the bytes being inserted, making it FULL
 * again changes no byte anyone may hold a pointer to, so the contract
 * allows it: the slot is not reused for other bytes.  Only the last copy
 * of the key on its probe sequence, so that the live copy, if any, is
 * always the last one: an earlier copy never comes back once a later one
 * exists, which is what lets the walk meet a key at most once (see
 * "Iteration"); only in the newest segment (no insert lands in an older
 * one); never with a @release callback (the caller may count on one
 * release per insert) nor for init functions (the value is not known
 * before).  Called with the stripe lock held and the key absent: every copy
 * of the key was placed and removed under this lock.
 */
static noinline u8 *am_revive(struct anchormap *map, struct am_stripe *st,
			      const void *key, u64 h, const struct am_filler *f)
{
	/* the newest segment; growth may run: protocol 3 */
	struct anchormap_segment *seg = am_load_acquire(&map->top);
	size_t gmask = seg->gmask, g = h & gmask, step = 0, last = AM_NO_SLOT;
	u8 code = am_del_code(h);

	if (map->release || f->init || f->try_init)
		return NULL;
	for (;;) {
		size_t base = g << AM_GROUP_SHIFT;
		am_group_t grp = am_group_load(seg->ctrl, base);
		u64 m;

		/* in slot order: a later copy in one group has a higher index */
		for (m = am_group_match(grp, code); m; m &= m - 1) {
			size_t idx = base + am_group_slot(m);

			/*
			 * RELAXED: @code names this stripe, so this slot was
			 * written and removed under the lock we hold (protocol 2)
			 */
			if (am_load_relaxed(&seg->ctrl[idx]) == code &&
			    am_key_eq_k(map, key, am_slot(map, seg, idx), AM_GENERIC))
				last = idx;
		}
		if (am_group_has_empty(grp) || ++step > gmask)
			break;
		g = (g + step) & gmask;
	}
	if (last == AM_NO_SLOT || !am_revivable(map, am_slot(map, seg, last), f))
		return NULL;	/* an earlier copy never comes back */
	am_counter_add(&st->deleted, -1);
	am_store_release(&seg->ctrl[last], am_fp(h));	/* protocol 1 */
	am_counter_add(&st->live, 1);
	return am_slot(map, seg, last);
}

/*
 * The one writer path: find @key or insert it, under its stripe lock.
 * Growth may sleep, so it runs with the stripe dropped and the lookup is
 * redone afterwards (another writer may have inserted the key meanwhile).
 */
static u8 *am_upsert(struct anchormap *map, const void *key, u64 h,
		     const struct am_filler *f, bool *inserted)
{
	struct am_stripe *st = am_stripe_of(map, h);
	unsigned long flags = 0;
	u8 *slot;
	u32 n;
	int err;

	*inserted = false;
	for (;;) {
		am_stripe_lock(map, st, &flags);
		slot = am_find(map, key, h, NULL, NULL);
		if (slot)
			break;
		/* no removed copy of this stripe's keys anywhere: the common insert */
		slot = st->deleted ? am_revive(map, st, key, h, f) : NULL;
		if (slot) {
			*inserted = true;
			break;
		}
		n = am_load_acquire(&map->nseg);
		if (am_take_credit(map, st, n - 1)) {
			slot = am_fill(map, map->seg[n - 1], st, key, h, f);
			*inserted = !IS_ERR(slot);
			break;
		}
		am_stripe_unlock(map, st, flags);
		err = am_grow(map, n, 0, false);
		if (err)
			return ERR_PTR(err);
	}
	am_stripe_unlock(map, st, flags);
	return slot;
}

static u8 *am_upsert_key(struct anchormap *map, const void *key, const struct am_filler *f,
			 bool *inserted)
{
	*inserted = false;
	if (unlikely(!map || !key || !map->shared))
		return ERR_PTR(-EINVAL);
	return am_upsert(map, key, am_hash_k(map, key, AM_GENERIC), f, inserted);
}

int anchormap_insert(struct anchormap *map, const void *key, const void *value)
{
	struct am_filler f = { .value = value };
	bool inserted;
	u8 *slot = am_upsert_key(map, key, &f, &inserted);

	if (IS_ERR(slot))
		return (int)PTR_ERR(slot);
	return inserted;
}
AM_EXPORT(anchormap_insert);

/* The get_or_insert family: the stored value, or ERR_PTR. */
static const void *am_get_or_fill(struct anchormap *map, const void *key,
				  const struct am_filler *f)
{
	bool inserted;
	u8 *slot = am_upsert_key(map, key, f, &inserted);

	return IS_ERR(slot) ? (const void *)slot : slot + map->value_off;
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

int anchormap_reserve(struct anchormap *map, size_t additional)
{
	if (!map || !map->shared)
		return -EINVAL;
	if (!additional)
		return 0;
	return am_grow(map, 0, additional, true);
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
	struct anchormap_segment *seg;
	struct am_stripe *st;
	unsigned long flags = 0;
	size_t idx;
	u64 h;

	if (unlikely(!map || !key || !map->shared))
		return -EINVAL;
	h = am_hash_k(map, key, AM_GENERIC);
	st = am_stripe_of(map, h);
	am_stripe_lock(map, st, &flags);
	if (!am_find(map, key, h, &seg, &idx)) {
		am_stripe_unlock(map, st, flags);
		return 0;
	}
	/* counters first: an iterator that sees a re-insert sees this (protocol 4) */
	am_counter_add(&st->removals, 1);
	am_counter_add(&st->live, -1);
	am_counter_add(&st->deleted, 1);
	am_store_release(&seg->ctrl[idx], am_del_code(h));	/* protocol 2 */
	am_stripe_unlock(map, st, flags);
	return 1;
}
AM_EXPORT(anchormap_remove);

/* ---------------------------------------------------------------------
 * Sizes and statistics (lock-free, RELAXED sums)
 */

size_t anchormap_len(const struct anchormap *map)
{
	long sum = 0;
	int i;

	if (!map || !map->shared)
		return 0;
	for (i = 0; i < ANCHORMAP_STRIPES; i++)
		sum += am_load_relaxed(&map->shared->stripes[i].live);
	return sum > 0 ? (size_t)sum : 0;
}
AM_EXPORT(anchormap_len);

bool anchormap_is_empty(const struct anchormap *map)
{
	return anchormap_len(map) == 0;
}
AM_EXPORT(anchormap_is_empty);

/* Claims still possible in the newest segment, counting stripes' credits. */
static size_t am_free_claims(const struct anchormap *map)
{
	u32 n = am_load_acquire(&map->nseg);
	long sum = am_load_relaxed(&map->seg[n - 1]->avail);
	int i;

	for (i = 0; i < ANCHORMAP_STRIPES; i++) {
		const struct am_stripe *st = &map->shared->stripes[i];

		/* racy peek at lock-protected fields: an estimate is enough */
		if (am_load_relaxed(&st->credit_seg) == n - 1)
			sum += (long)am_load_relaxed(&st->credits);
	}
	return sum > 0 ? (size_t)sum : 0;
}

size_t anchormap_capacity(const struct anchormap *map)
{
	if (!map || !map->shared)
		return 0;
	return anchormap_len(map) + am_free_claims(map);
}
AM_EXPORT(anchormap_capacity);

void anchormap_stats(const struct anchormap *map, struct anchormap_stats *s)
{
	u32 n, i;

	if (!s)
		return;
	memset(s, 0, sizeof(*s));
	if (!map || !map->shared)
		return;
	s->name = map->name ? map->name : "anchormap";
	s->len = anchormap_len(map);
	s->capacity = s->len + am_free_claims(map);
	n = am_load_acquire(&map->nseg);
	s->segments = n;
	s->bytes = sizeof(struct anchormap_shared);
	for (i = 0; i < n; i++) {
		s->slots += map->seg[i]->nslots;
		s->bytes += map->seg[i]->bytes;
	}
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
 * No key twice: a key can have several copies only through remove and
 * re-insert, and a re-insert always goes to the newest segment, at a later
 * position of the key's own probe sequence than any earlier copy in that
 * segment (the groups before an earlier copy were full when it was placed,
 * and stay full).  So the walk is ordered to meet later copies first:
 *
 *  - segments from the newest present at init down to the oldest: a copy
 *    re-inserted after the walk left a segment lands in a newer one, which
 *    the walk has already done or does not cover;
 *  - groups from the highest index down: along a probe sequence the group
 *    index grows (triangular steps) until it wraps past the end of the
 *    segment, so an unwrapped later copy sits in a group walked earlier.
 *
 * What is left is a key in the walk's newest segment whose probe sequence
 * may wrap (its stripe's longest probe reaches past the segment's end from
 * its home group): there, if the stripe saw a removal since init and a
 * removed copy of the key sits in a group already walked, the key is
 * skipped.  The price: such a key is also skipped when that copy was
 * removed before the walk began (see README).
 *
 * Inside a group, too, a later copy has a higher index (a writer claims the
 * lowest EMPTY byte of the first group with one, and bytes below an earlier
 * copy were taken already), so the walk visits slots from the highest index
 * down as well.  The group's two words are loaded only to find candidates;
 * each candidate is checked FULL (ACQUIRE) when the walk reaches it, and
 * yielded only then.  That needs no consistent snapshot of the group, which
 * revival could fool (a byte going FULL -> DELETED -> FULL between two
 * loads): a key the walk met at slot p is never met again lower down,
 * because an insert after p places a copy above p, and revival brings back
 * only a key's last copy, never one below p.  A key present throughout keeps
 * one live slot, FULL at the load and at the visit.
 */

/* it->group before the first group of the walk's first segment */
#define AM_ITER_FRESH	((size_t)-1)

static void am_iter_start(struct anchormap_iter *it, const struct anchormap *map)
{
	int i;

	memset(it, 0, sizeof(*it));
	it->map = map;
	if (!map || !map->shared)
		return;
	it->top = am_load_acquire(&map->nseg);
	it->seg = it->top ? it->top - 1 : 0;
	it->group = AM_ITER_FRESH;
	it->mask = 0;
	for (i = 0; i < ANCHORMAP_STRIPES; i++)
		it->removals[i] = am_load_relaxed(&map->shared->stripes[i].removals);
}

void anchormap_iter_init(struct anchormap_iter *it, const struct anchormap *map)
{
	if (it)
		am_iter_start(it, map);
}
AM_EXPORT(anchormap_iter_init);

/* Load the FULL bytes of the next group into it->mask (bit i: slot i), as candidates. */
static bool am_iter_load_group(struct anchormap_iter *it)
{
	const struct anchormap *map = it->map;

	for (;;) {
		const struct anchormap_segment *seg = map->seg[it->seg];
		u64 w0, w1;
		size_t base;

		if (it->group == AM_ITER_FRESH) {
			it->group = seg->gmask;
		} else if (it->group) {
			it->group--;
		} else {
			if (!it->seg)
				return false;
			it->seg--;
			seg = map->seg[it->seg];
			it->group = seg->gmask;
		}
		base = it->group << AM_GROUP_SHIFT;
		/* candidates only: each is checked when visited (am_iter_next()) */
		w0 = am_group_word(seg->ctrl, base);
		am_test_point(map, ANCHORMAP_TP_ITER_WORDS);
		w1 = am_group_word(seg->ctrl, base + 8);
		am_test_point(map, ANCHORMAP_TP_ITER_LOADED);
		w0 = am_full_bytes(w0);
		w1 = am_full_bytes(w1);
		it->mask = 0;
		for (; w0; w0 &= w0 - 1)
			it->mask |= 1ULL << am_first_byte(w0);
		for (; w1; w1 &= w1 - 1)
			it->mask |= 1ULL << (8 + am_first_byte(w1));
		if (it->mask)
			return true;
	}
}

/*
 * Is there a DELETED copy of @key on its probe sequence before the current
 * group, in a group the walk has passed (a higher index)?
 */
static bool am_iter_seen_copy(const struct anchormap_iter *it,
			      const struct anchormap_segment *seg, const u8 *key, u64 h)
{
	const struct anchormap *map = it->map;
	size_t gmask = seg->gmask, g = h & gmask, step = 0;

	for (;;) {
		size_t base = g << AM_GROUP_SHIFT, i;

		if (g == it->group)
			return false;	/* copies lie before the live one */
		for (i = 0; g > it->group && i < AM_GROUP; i++) {
			/* ACQUIRE pairs with the remover's RELEASE (protocol 2) */
			if (am_load_acquire(&seg->ctrl[base + i]) == am_del_code(h) &&
			    am_key_eq_k(map, key, am_slot(map, seg, base + i), AM_GENERIC))
				return true;
		}
		if (++step > gmask)
			return false;
		g = (g + step) & gmask;
	}
}

/*
 * Can a probe sequence from @h's home group, @groups groups long at most,
 * wrap past the end of @seg?  Triangular: step i is i(i+1)/2 groups on.
 */
static bool am_probe_may_wrap(const struct anchormap_segment *seg, u64 h, u32 groups)
{
	size_t steps = groups ? groups - 1 : 0;

	return steps * (steps + 1) / 2 >= seg->gmask + 1 - (h & seg->gmask);
}

/* Could the live copy of @slot's key at the current group be a second one? */
static bool am_iter_maybe_seen(const struct anchormap_iter *it,
			       const struct anchormap_segment *seg, const u8 *slot)
{
	const struct anchormap *map = it->map;
	const struct am_stripe *st;
	u64 h;

	if (it->seg != it->top - 1)
		return false;	/* no re-insert lands in an older segment */
	h = am_hash_k(map, slot, AM_GENERIC);
	st = am_stripe_of(map, h);
	if (am_load_relaxed(&st->removals) == it->removals[AM_STRIPE_OF(h)])
		return false;	/* no removal of this key since init */
	/* every copy of this key was placed by its stripe: within its longest probe */
	if (!am_probe_may_wrap(seg, h, am_load_relaxed(&st->longest_probe)))
		return false;	/* unwrapped: earlier copies are walked later */
	return am_iter_seen_copy(it, seg, slot, h);
}

static bool am_iter_next(struct anchormap_iter *it, u8 **keyp, bool shared)
{
	const struct anchormap *map = it->map;

	if (!map || !map->shared || !it->top)
		return false;
	am_test_point(map, ANCHORMAP_TP_ITER_NEXT);
	for (;;) {
		const struct anchormap_segment *seg;
		unsigned int bit;
		size_t idx;
		u8 *slot;

		if (!it->mask && !am_iter_load_group(it)) {
			it->top = 0;	/* ended: stay ended */
			return false;
		}
		seg = map->seg[it->seg];
		/* the highest slot first: see "Iteration" */
		bit = 63 - (unsigned int)__builtin_clzll(it->mask);
		it->mask &= ~(1ULL << bit);
		idx = (it->group << AM_GROUP_SHIFT) + bit;
		/* ACQUIRE: protocol 1; a byte no longer FULL was removed meanwhile */
		if (!(am_load_acquire(&seg->ctrl[idx]) & AM_FULL_BIT))
			continue;
		slot = am_slot(map, seg, idx);
		if (shared && am_iter_maybe_seen(it, seg, slot))
			continue;
		*keyp = slot;
		return true;
	}
}

/* Both iter_next flavours: @shared adds the no-duplicate check. */
static bool am_iter_step(struct anchormap_iter *it, const void **key, void **value, bool shared)
{
	u8 *slot;

	if (!it || !am_iter_next(it, &slot, shared))
		return false;
	if (key)
		*key = slot;
	if (value)
		*value = slot + it->map->value_off;
	return true;
}

bool anchormap_iter_next(struct anchormap_iter *it, const void **key, const void **value)
{
	return am_iter_step(it, key, (void **)value, true);
}
AM_EXPORT(anchormap_iter_next);

bool anchormap_iter_next_mut(struct anchormap_iter *it, const void **key, void **value)
{
	return am_iter_step(it, key, value, false);
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
 * Geometry of a slot (key, then the value at its alignment): the header's,
 * which anchormap_get_fast() computes from its constant params.
 */
static void am_set_geometry(struct anchormap *map, const struct anchormap_params *p)
{
	map->key_size = p->key_size;
	map->value_size = p->value_size;
	map->value_align = __anchormap_value_align(p);
	map->value_off = __anchormap_value_off(p);
	map->slot_size = __anchormap_slot_size(p);
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

int anchormap_init(struct anchormap *map, const struct anchormap_params *p, size_t capacity)
{
	struct anchormap_shared *sh;
	size_t slots;
	int i, err;

	if (!map)
		return -EINVAL;
	err = am_check_params(p);
	if (err)
		return err;
	memset(map, 0, sizeof(*map));
	map->top = &am_no_segment;	/* a failed init leaves a map that reads empty */
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

	slots = am_slots_for(capacity);
	if (!slots || slots > ((size_t)-1 >> 2) / map->slot_size)
		return -ENOMEM;
	sh = am_zalloc(sizeof(*sh), false);	/* init runs in process context */
	if (!sh)
		return -ENOMEM;
	map->seg[0] = am_seg_alloc(map, slots, false);
	if (!map->seg[0] || am_lock_class_init(&sh->lclass, p->name)) {
		am_lock_class_fini(&sh->lclass);
		am_seg_free(map->seg[0]);
		map->seg[0] = NULL;
		am_free(sh, sizeof(*sh));
		return -ENOMEM;
	}
	for (i = 0; i < ANCHORMAP_STRIPES; i++)
		am_lock_init(&sh->stripes[i].lock, am_atomic(map), &sh->lclass);
	am_mutex_init(&sh->grow_lock, am_atomic(map), &sh->lclass);
	map->shared = sh;
	/* the map is not shared yet: the caller publishes it */
	am_store_release(&map->nseg, 1);
	am_store_release(&map->top, map->seg[0]);
	am_registry_add(&sh->reg, map);
	return 0;
}
AM_EXPORT(anchormap_init);

static void am_release_slot(const struct anchormap *map, u8 *slot)
{
	if (map->release)
		map->release(slot, slot + map->value_off, map->priv);
}

/*
 * Exclusive walk over every slot holding bytes the map owns: live entries
 * (@fn_live) and removed ones (released here).  Preempts now and then:
 * these walks can cover millions of slots.
 */
static void am_walk_owned(struct anchormap *map,
			  void (*fn_live)(struct anchormap *map, u8 *slot, void *arg), void *arg)
{
	u32 n = am_load_relaxed(&map->nseg), i;
	size_t idx;

	for (i = 0; i < n; i++) {
		struct anchormap_segment *seg = map->seg[i];

		for (idx = 0; idx < seg->nslots; idx++) {
			u8 c = am_load_relaxed(&seg->ctrl[idx]);
			u8 *slot = am_slot(map, seg, idx);

			if (c & AM_FULL_BIT) {
				if (fn_live)
					fn_live(map, slot, arg);
			} else if (am_is_deleted(c)) {
				am_release_slot(map, slot);
			}
			if ((idx & 4095) == 4095)
				am_cond_resched(am_atomic(map));
		}
	}
}

static void am_release_live(struct anchormap *map, u8 *slot, void *arg)
{
	am_release_slot(map, slot);
}

static void am_reset_stripes(struct anchormap *map)
{
	int i;

	for (i = 0; i < ANCHORMAP_STRIPES; i++) {
		struct am_stripe *st = &map->shared->stripes[i];

		am_store_relaxed(&st->credit_seg, 0);
		am_store_relaxed(&st->credits, 0);
		am_store_relaxed(&st->live, 0);
		am_store_relaxed(&st->deleted, 0);
	}
}

/* Free every segment but @keep (may be NULL), making @keep the only one. */
static void am_drop_segments(struct anchormap *map, struct anchormap_segment *keep)
{
	u32 n = am_load_relaxed(&map->nseg), i;

	/* /proc readers (anchormap_stats) must not see the segments change */
	if (keep)
		am_registry_del(&map->shared->reg);
	for (i = 0; i < n; i++) {
		if (map->seg[i] != keep)
			am_seg_free(map->seg[i]);
		map->seg[i] = NULL;
	}
	map->seg[0] = keep;
	am_store_release(&map->nseg, keep ? 1 : 0);
	am_store_release(&map->top, keep ? keep : &am_no_segment);
	if (keep)
		am_registry_add(&map->shared->reg, map);
}

static void am_destroy(struct anchormap *map, bool release)
{
	if (!map || !map->shared)
		return;
	am_registry_del(&map->shared->reg);	/* before anything is freed */
	if (release)
		am_walk_owned(map, am_release_live, NULL);
	am_drop_segments(map, NULL);
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

bool anchormap_modify(struct anchormap *map, const void *key,
		      void (*fn)(void *value, const void *key, void *arg), void *arg)
{
	u8 *slot;

	if (!map || !key || !map->shared)
		return false;
	slot = am_find(map, key, am_hash_k(map, key, AM_GENERIC), NULL, NULL);
	if (!slot)
		return false;
	if (fn)
		fn(slot + map->value_off, slot, arg);
	return true;
}
AM_EXPORT(anchormap_modify);

int anchormap_remove_entry(struct anchormap *map, const void *key, void *key_out, void *value_out)
{
	struct anchormap_segment *seg;
	struct am_stripe *st;
	size_t idx, base;
	u8 *slot;
	u64 h, w0, w1;

	if (!map || !key || !map->shared)
		return -EINVAL;
	h = am_hash_k(map, key, AM_GENERIC);
	slot = am_find(map, key, h, &seg, &idx);
	if (!slot)
		return 0;
	if (key_out)
		memcpy(key_out, slot, map->key_size);
	if (value_out)
		memcpy(value_out, slot + map->value_off, map->value_size);
	st = am_stripe_of(map, h);
	am_counter_add(&st->live, -1);
	am_counter_add(&st->removals, 1);
	base = idx & ~(size_t)(AM_GROUP - 1);
	w0 = am_group_word(seg->ctrl, base);
	w1 = am_group_word(seg->ctrl, base + 8);
	if (am_zero_bytes(w0) | am_zero_bytes(w1)) {
		/*
		 * The group still has an EMPTY byte, so it always had one and no
		 * probe sequence ever continued past it: the slot can be EMPTY
		 * again, and claimed again.
		 */
		am_store_relaxed(&seg->ctrl[idx], AM_EMPTY);
		if (seg == map->seg[map->nseg - 1])
			am_store_relaxed(&seg->avail, am_load_relaxed(&seg->avail) + 1);
	} else {
		/* the caller owns the bytes now: a tombstone that is never released */
		am_store_relaxed(&seg->ctrl[idx], AM_DEAD);
		am_counter_add(&st->deleted, 1);
	}
	return 1;
}
AM_EXPORT(anchormap_remove_entry);

/* Empty the newest segment in place and free the others. */
static void am_reset(struct anchormap *map)
{
	struct anchormap_segment *keep = map->seg[map->nseg - 1];

	am_drop_segments(map, keep);
	memset(keep->ctrl, 0, keep->nslots);	/* all EMPTY */
	/* marked stores: anchormap_stats (/proc) reads these meanwhile (protocol 4) */
	am_store_relaxed(&keep->avail, (long)keep->limit);
	am_reset_stripes(map);
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

static void am_drain_one(struct anchormap *map, u8 *slot, void *arg)
{
	struct am_drain_ctx *ctx = arg;

	if (ctx->fn)
		ctx->fn(slot, slot + map->value_off, ctx->arg);
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

/* Copy a live entry into a private, not yet shared segment. */
static void am_move_into(struct anchormap *map, struct anchormap_segment *dst, u8 *slot)
{
	u64 h = am_hash_k(map, slot, AM_GENERIC);
	struct am_stripe *st = am_stripe_of(map, h);
	u32 probes = 0;
	size_t idx = am_claim(dst, h, &probes);

	memcpy(am_slot(map, dst, idx), slot, map->slot_size);
	am_store_relaxed(&dst->ctrl[idx], am_fp(h));
	/* marked stores: anchormap_stats (/proc) reads these meanwhile (protocol 4) */
	am_counter_add(&dst->avail, -1);
	am_counter_add(&st->live, 1);
	if (probes > st->longest_probe)
		am_store_relaxed(&st->longest_probe, probes);
}

static void am_move_live(struct anchormap *map, u8 *slot, void *arg)
{
	am_move_into(map, arg, slot);
}

/*
 * Rebuild into one segment sized for the live entries: removed entries are
 * released, dead slots dropped.  Nothing changes if the allocation fails.
 */
static int am_compact(struct anchormap *map)
{
	struct anchormap_segment *seg = am_seg_alloc(map, am_slots_for(anchormap_len(map)),
						     am_atomic(map));

	if (!seg)
		return -ENOMEM;
	am_reset_stripes(map);
	am_walk_owned(map, am_move_live, seg);
	am_drop_segments(map, seg);
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
	u32 n, i;
	size_t idx;

	if (!map || !map->shared || !keep)
		return;
	n = map->nseg;
	for (i = 0; i < n; i++) {
		struct anchormap_segment *seg = map->seg[i];

		for (idx = 0; idx < seg->nslots; idx++) {
			u8 *slot = am_slot(map, seg, idx);
			struct am_stripe *st;

			if (!(seg->ctrl[idx] & AM_FULL_BIT) ||
			    keep(slot, slot + map->value_off, arg))
				continue;
			am_release_slot(map, slot);
			/* released now, so DEAD: compaction must not release it again */
			am_store_relaxed(&seg->ctrl[idx], AM_DEAD);
			st = am_stripe_of(map, am_hash_k(map, slot, AM_GENERIC));
			am_counter_add(&st->live, -1);
			am_counter_add(&st->deleted, 1);
			am_counter_add(&st->removals, 1);
		}
	}
	/* reclaim tombstones; on -ENOMEM the map stays correct, with them */
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
	e->hash = am_hash_k(map, key, AM_GENERIC);
	e->slot = am_find(map, key, e->hash, NULL, NULL);
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
