/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The private half of anchormap.h.
 *
 * The layout of the index and of storage, the tag encoding and the
 * invariants the code relies on (checked below at compile time), the group
 * operations of both back-ends (SSE2, SWAR), the built-in hash and the first
 * step of every lookup: in a header only so that anchormap_get_fast() can
 * inline.  anchormap.c uses the same helpers and states their memory
 * ordering.  Nothing here is API; include anchormap.h, which includes this.
 */
#ifndef _ANCHORMAP_INLINE_H
#define _ANCHORMAP_INLINE_H

#ifndef _ANCHORMAP_H
#error "the private half of anchormap.h: include anchormap.h"
#endif

#ifdef __KERNEL__
#include <linux/rcupdate.h>

/*
 * A lookup holds rcu_read_lock_sched() while it reads the index, which a
 * rebuild replaces and frees after a grace period; the entry it returns
 * lives in storage, which RCU does not govern: the caller holds nothing.
 * The sched flavour is preempt_disable(), inline, where rcu_read_lock() is
 * two calls on the PREEMPT_RCU kernels Debian builds, and since 4.20
 * synchronize_rcu() waits for it as for rcu_read_lock().  A lookup is
 * bounded and takes no lock, so it may run preemption-off on PREEMPT_RT too.
 * The core's other index readers (statistics, reserve) use the same pair.
 */
#define __anchormap_read_lock()		rcu_read_lock_sched()
#define __anchormap_read_unlock()	rcu_read_unlock_sched()
#else
/* Userspace keeps replaced indexes until an exclusive operation: no lock. */
#define __anchormap_read_lock()		do { } while (0)
#define __anchormap_read_unlock()	do { } while (0)
#endif /* __KERNEL__ */

/*
 * One group of the index: one cache line.  12 tags, the overflow word
 * (bit tag & 31 is set once a key whose home is this group was placed in a
 * later group, so that a miss stops at its home group however full it is),
 * and 12 entry references: arena << __ANCHORMAP_REF_SHIFT | entry number in
 * the arena.
 */
struct anchormap_group {
	u8 tag[12];
	u32 overflow;
	u32 ref[12];
} __aligned(64);

/*
 * An index: a header of two cache lines, then the groups.  Never changed
 * in size; replaced by a rebuilt one (anchormap.c, "Rebuild").
 */
struct anchormap_index {
	/* read by every probe */
	size_t hmask;			/* (groups - 1) * 64: __anchormap_home() */
	/* read by writers and statistics */
	size_t nslots;
	size_t limit;			/* tags that may be in use at once: 7/8 */
	size_t chunk;			/* credits a stripe takes at once */
	size_t bytes;			/* size of this allocation */
	struct anchormap_index *older;	/* retired indexes, newest first */
	void *retire[2];		/* the platform's, once retired (kernel: RCU) */
	/* credits (EMPTY tags) not yet handed out; writers touch it once per chunk */
	long avail __aligned(64);
	int broken;			/* a rebuild could not place an entry */
} __aligned(64);

#define __ANCHORMAP_INDEX_HDR	128		/* bytes before the first group */
#define __ANCHORMAP_GROUP	12		/* tags (and refs) of a group */
#define __ANCHORMAP_REF_SHIFT	26		/* log2 of the entries of one arena */

/*
 * Tags (anchormap.c, "Tags of the index").  A tag moves EMPTY or TOMBSTONE
 * -> RESERVED -> FULL -> EMPTY or TOMBSTONE; FULL is __ANCHORMAP_TAG_FULL |
 * the top 7 bits of the hash (__anchormap_tag()).
 */
#define __ANCHORMAP_TAG_EMPTY	0x00		/* free, counted as room */
#define __ANCHORMAP_TAG_TOMB	0x7e		/* free, not counted back */
#define __ANCHORMAP_TAG_RESERVED 0x7f		/* claimed by a writer filling it */
#define __ANCHORMAP_TAG_FULL	0x80		/* the bit of every live entry's tag */

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

/* The invariants the lookup, the writers and the rebuild rely on. */
__ANCHORMAP_STATIC_ASSERT(sizeof(struct anchormap_group) == 64, "a group is one cache line");
__ANCHORMAP_STATIC_ASSERT(sizeof(struct anchormap_index) <= __ANCHORMAP_INDEX_HDR,
			  "the groups start after the index header");
__ANCHORMAP_STATIC_ASSERT(__ANCHORMAP_INDEX_HDR % 64 == 0, "groups are cache-line aligned");
__ANCHORMAP_STATIC_ASSERT(__builtin_offsetof(struct anchormap_group, overflow) ==
			  __ANCHORMAP_GROUP && sizeof(((struct anchormap_group *)0)->overflow) == 4,
			  "tags are bytes 0..11 of a group, the overflow word bytes 12..15");
__ANCHORMAP_STATIC_ASSERT(__ANCHORMAP_GROUP > 8 && __ANCHORMAP_GROUP <= 12,
			  "SWAR: the tags of a group are one word and bytes 0..3 of a second");
__ANCHORMAP_STATIC_ASSERT(__ANCHORMAP_TAG_EMPTY == 0,
			  "a zeroed index is all EMPTY (am_idx_alloc, clear)");
/* TOMBSTONE and RESERVED: distinct, not EMPTY, and never a FULL tag */
__ANCHORMAP_STATIC_ASSERT((__ANCHORMAP_TAG_TOMB & __ANCHORMAP_TAG_FULL) == 0, "TOMB not FULL");
__ANCHORMAP_STATIC_ASSERT((__ANCHORMAP_TAG_RESERVED & __ANCHORMAP_TAG_FULL) == 0,
			  "RESERVED not FULL");
__ANCHORMAP_STATIC_ASSERT((__ANCHORMAP_TAG_TOMB ^ __ANCHORMAP_TAG_RESERVED) != 0, "distinct tags");
__ANCHORMAP_STATIC_ASSERT(__ANCHORMAP_TAG_TOMB && __ANCHORMAP_TAG_RESERVED, "neither is EMPTY");
__ANCHORMAP_STATIC_ASSERT(32 + ANCHORMAP_STRIPE_SHIFT <= 57,
			  "hash bits of the stripe (32..) and of the tag (57..63) apart");
__ANCHORMAP_STATIC_ASSERT((unsigned long long)ANCHORMAP_MAX_SEGMENTS <<
			  __ANCHORMAP_REF_SHIFT <= 1ULL << 32,
			  "an arena number and an entry number fit a 32-bit ref");
__ANCHORMAP_STATIC_ASSERT(__ANCHORMAP_MAX_FIELD < 1u << 21 && __ANCHORMAP_MAX_ALIGN < 1u << 13,
			  "key size, value size and alignment fit their fields of fast_sig");
__ANCHORMAP_STATIC_ASSERT(ANCHORMAP_GET_MANY_BATCH >= 1 && ANCHORMAP_GET_MANY_BATCH <= 64,
			  "a batch's early misses are bits of one u64");
__ANCHORMAP_STATIC_ASSERT(ANCHORMAP_ABI_VERSION >= 1 && ANCHORMAP_ABI_VERSION <= 127,
			  "the ABI version fits its 7 bits of fast_sig");

static __always_inline const struct anchormap_group *
__anchormap_groups(const struct anchormap_index *idx)
{
	return (const struct anchormap_group *)((const u8 *)idx + __ANCHORMAP_INDEX_HDR);
}

/*
 * Hash @h's home group in @idx: its byte offset among the groups is hash bits
 * 6 and up, masked by the index's size (ABI 5).  A group is 64 bytes, so
 * that the lookup reaches its home group with one and, no shift; bits 6..
 * stay apart from the tag's (57..63) for any index that fits memory.
 */
static __always_inline size_t __anchormap_home_off(const struct anchormap_index *idx, u64 h)
{
	return (size_t)h & idx->hmask;
}

static __always_inline const struct anchormap_group *
__anchormap_home(const struct anchormap_index *idx, u64 h)
{
	return (const struct anchormap_group *)((const u8 *)__anchormap_groups(idx) +
						__anchormap_home_off(idx, h));
}

/*
 * Entry geometry, a function of the params only (so that a compile-time
 * params makes it a constant): the key, then the value at its alignment.
 * Each entry's 32-bit header word (state and stripe, for walks and
 * rebuilds; lookups never read it) is kept apart, in its arena's array of
 * them (ABI 4; ABI 3 had it at the entry's end, padded).
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
__anchormap_entry_size(const struct anchormap_params *p)
{
	u32 ka = __anchormap_natural_align(p->key_size);
	u32 va = __anchormap_value_align(p);
	u32 sa = ka > va ? ka : va;

	return (__anchormap_value_off(p) + p->value_size + sa - 1) & -sa;
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
const void *__anchormap_lookup_slow(const struct anchormap *map, const void *key, u32 off);

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

/*
 * The tag of a live entry: FULL plus the top 7 bits of the hash.  A u32
 * (0x80..0xff), as the group match takes it: a u8 there makes GCC widen it
 * once more before the broadcast (one instruction a lookup).
 */
static __always_inline u32 __anchormap_tag(u64 h)
{
	return __ANCHORMAP_TAG_FULL | (u32)(h >> 57);
}

/*
 * The bit of the overflow word that a key of tag @tag sets when it passes
 * its home group: the tag's low 5 bits, so that a miss tests it with one
 * shift by the tag it already holds (x86 masks the count itself: one bt).
 * Any bit pattern may appear there: the group matches mask bytes 12..15.
 */
static __always_inline u32 __anchormap_ovf_bit(u32 tag)
{
	return 1u << (tag & 31);
}

/*
 * Is @tag's bit set in overflow word @w?  On x86 one bt with the tag's own
 * register (bt takes the offset modulo 32): in C, GCC derives the count from
 * the hash instead and keeps a second copy of it live (one instruction a
 * lookup).
 */
static __always_inline bool __anchormap_ovf_test(u32 w, u32 tag)
{
#if defined(__x86_64__) || defined(__i386__)
	bool set;

	__asm__("btl %k2, %1" : "=@ccc"(set) : "r"(w), "r"(tag));
	return set;
#else
	return (w >> (tag & 31)) & 1;
#endif
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
 * The lowest set bit of @m != 0.  On x86 tzcnt by hand: __builtin_ctzll()
 * is an int, which GCC sign-extends before the index arithmetic, and it
 * clears the destination first (tzcnt's false dependency): two
 * instructions a lookup.  Without BMI tzcnt runs as bsf, the same for a
 * nonzero @m.
 */
static __always_inline size_t __anchormap_ctz(u64 m)
{
#if defined(__x86_64__)
	u64 i;

	__asm__("tzcnt %1, %0" : "=r"(i) : "rm"(m) : "cc");
	return i;
#else
	return (size_t)__builtin_ctzll(m);
#endif
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

static __always_inline u64 __anchormap_match(u64 w, u32 tag)
{
	return __anchormap_zero_bytes(w ^ (__ANCHORMAP_LSB * tag));
}

/* 8 tags, byte i of memory in bits 8i..8i+7; ACQUIRE, see __anchormap_group_load() */
static __always_inline u64 __anchormap_group_word(const u8 *tags, size_t byte)
{
	typedef u64 __attribute__((__may_alias__)) word_t;
	u64 w = __atomic_load_n((const word_t *)(tags + byte), __ATOMIC_ACQUIRE);

#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	w = __builtin_bswap64(w);
#endif
	return w;
}

/*
 * The lowest slot of a mask of both words of a group in the SWAR layout
 * (slot i of the first word at bit 8i, of the second at bit 8i + 7), @m != 0:
 * the SWAR layout's __anchormap_group_slot().
 */
static __always_inline size_t __anchormap_word_slot(u64 m)
{
	size_t b = __anchormap_ctz(m);

	return (b >> 3) | ((b & 4) << 1);
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
 * hoisting the reference loads above it (protocol 2).
 */
static __always_inline __anchormap_group_t
__anchormap_group_load(const struct anchormap_group *g)
{
	__m128i v = _mm_load_si128((const __m128i *)(const void *)g->tag);

	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return v;
}

static __always_inline u64
__anchormap_group_match(__anchormap_group_t v, u32 tag)
{
	/* bytes 12..15 are the overflow word: masked (a constant kept in a register) */
	__m128i eq = _mm_cmpeq_epi8(v, _mm_set1_epi32((int)(tag * 0x01010101u)));

	return (u32)_mm_movemask_epi8(_mm_and_si128(eq, _mm_set_epi32(0, -1, -1, -1)));
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

/* The lowest match, @m != 0. */
static __always_inline size_t __anchormap_group_slot(u64 m)
{
	return __anchormap_ctz(m);
}

#else
typedef struct {
	u64 w0, w1;
} __anchormap_group_t;

/*
 * Two ACQUIRE word loads, as smp_load_acquire() (a plain load on x86, ldar
 * on arm64): a candidate's reference load comes after them (protocol 2).
 * The match over-reports only a byte of the key's tag ^ 0x01, a FULL tag
 * too: its reference was published before that tag, so it names an entry,
 * whose key compare (or the tag's second look) rejects it.
 */
static __always_inline __anchormap_group_t
__anchormap_group_load(const struct anchormap_group *g)
{
	__anchormap_group_t v = {
		__anchormap_group_word(g->tag, 0), __anchormap_group_word(g->tag, 8)
	};

	return v;
}

static __always_inline u64
__anchormap_group_match(__anchormap_group_t v, u32 tag)
{
	/* the second word's tags are its bytes 0..3 */
	return __anchormap_match(v.w0, tag) >> 7 | (__anchormap_match(v.w1, tag) & 0x80808080ULL);
}

static __always_inline size_t __anchormap_group_slot(u64 m)
{
	return __anchormap_word_slot(m);
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
 * the key compare: a freed slot may be reused for another entry
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
	u32 tag = __anchormap_tag(h);
	u64 m;

	__anchormap_read_lock();	/* the index, not the entry: protocol 4 */
	/* ACQUIRE pairs with the RELEASE that published the index (protocol 4) */
	idx = __atomic_load_n(&map->index, __ATOMIC_ACQUIRE);
	g = __anchormap_home(idx, h);
	grp = __anchormap_group_load(g);
	for (m = __anchormap_group_match(grp, tag); m; m &= m - 1) {
		size_t i = __anchormap_group_slot(m);

		__ANCHORMAP_TEST_POINT(map, ANCHORMAP_TP_LOOKUP_REF);
		e = __anchormap_entry(map, __anchormap_load_ref(g, i), size);
		if (__builtin_expect(equal ? equal(key, e, ks) :
					 __anchormap_bytes_eq(key, e, ks), 1) &&
		    __builtin_expect(__anchormap_tag_again(g, i) == tag, 1)) {
			__anchormap_read_unlock();
			return e + off;	/* storage: valid with no lock held */
		}
	}
	if (__builtin_expect(!__anchormap_ovf_test(__atomic_load_n(&g->overflow,
								   __ATOMIC_RELAXED), tag), 1))
		e = NULL;
	else
		e = (const u8 *)__anchormap_lookup_slow(map, key, off);
	__anchormap_read_unlock();
	return e;
}

/*
 * Batched lookups: ANCHORMAP_GET_MANY_BATCH keys at a time, in three
 * passes, so that their cache misses overlap instead of queueing: hash each
 * key and prefetch its home group; match each group and prefetch its first
 * candidate's entry (a hint only: the reference is read RELAXED and may be
 * stale); then the lookup proper, __anchormap_lookup() with the same hash,
 * which finds both lines in cache.  The read lock covers the prefetch
 * passes' index reads (the kernel frees a replaced index after a grace
 * period).  @keys is an array of keys of @ks bytes; @hash NULL: the built-in
 * hash.  Returns how many were found.
 */
static __always_inline size_t
__anchormap_get_many(const struct anchormap *map, const u8 *keys, size_t n, const void **values,
		     u64 (*hash)(const void *key, u32 key_size, u64 seed),
		     bool (*equal)(const void *a, const void *b, u32 key_size), u32 ks,
		     size_t size, u32 off)
{
	u64 h[ANCHORMAP_GET_MANY_BATCH], missed;
	size_t found = 0, i, j, b;

	__anchormap_read_lock();
	for (i = 0; i < n; i += b) {
		/* ACQUIRE as in __anchormap_lookup(): hmask belongs to this index */
		const struct anchormap_index *idx = __atomic_load_n(&map->index, __ATOMIC_ACQUIRE);

		b = n - i;
		if (b > ANCHORMAP_GET_MANY_BATCH)
			b = ANCHORMAP_GET_MANY_BATCH;
		for (j = 0; j < b; j++) {
			const u8 *key = keys + (i + j) * ks;

			h[j] = hash ? hash(key, ks, map->seed) :
			       __anchormap_hash(key, ks, map->seed);
			__builtin_prefetch(__anchormap_home(idx, h[j]));
		}
		/*
		 * A group with no candidate and the key's overflow bit clear is
		 * a miss already, exactly as __anchormap_lookup() would find it
		 * in this index: the first step of a lookup, done here.
		 */
		missed = 0;
		for (j = 0; j < b; j++) {
			const struct anchormap_group *g = __anchormap_home(idx, h[j]);
			u32 tag = __anchormap_tag(h[j]);
			u64 m = __anchormap_group_match(__anchormap_group_load(g), tag);

			if (m) {
				/* a hint: RELAXED loads, nothing read through them */
				u32 ref = __atomic_load_n(&g->ref[__anchormap_group_slot(m)],
							  __ATOMIC_RELAXED);
				uintptr_t bias = __atomic_load_n(&map->arena_bias[ref >>
							__ANCHORMAP_REF_SHIFT], __ATOMIC_RELAXED);

				__builtin_prefetch((const void *)(bias + (uintptr_t)ref * size));
			} else if (!__anchormap_ovf_test(__atomic_load_n(&g->overflow,
									 __ATOMIC_RELAXED), tag)) {
				missed |= 1ULL << j;
			}
		}
		for (j = 0; j < b; j++) {
			const void *v = NULL;

			if (!(missed >> j & 1))
				v = __anchormap_lookup(map, keys + (i + j) * ks, h[j], equal, ks,
						       size, off);
			values[i + j] = v;
			found += !!v;
		}
	}
	__anchormap_read_unlock();
	return found;
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

/*
 * anchormap_get_many() with constant params, as anchormap_get_fast() is to
 * anchormap_get(): the whole batch inlines.  Falls back to the exported
 * function where anchormap_get_fast() would.
 */
static __always_inline long
anchormap_get_many_fast(const struct anchormap *map, const void *keys, size_t n,
			const void **values, const struct anchormap_params params)
{
	const u64 sig = __anchormap_fast_sig(&params);

	if (__builtin_expect(__ANCHORMAP_FAST_REFUSED(map, keys, &params, sig) || !values, 0))
		return anchormap_get_many(map, keys, n, values);
	return (long)__anchormap_get_many(map, (const u8 *)keys, n, values, params.hash,
					  params.equal, params.key_size,
					  __anchormap_entry_size(&params),
					  __anchormap_value_off(&params));
}

#endif /* _ANCHORMAP_INLINE_H */
