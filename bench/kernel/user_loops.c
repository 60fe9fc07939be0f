// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * user_loops - the loops of bench_anchormap.ko in userspace, for callgrind.
 *
 *   user_loops OP NKEYS      OP: hit, miss, insert, remove, hit2seg
 *
 * Same keys, values and orders as the kernel module (bench_keys.h), same
 * calls (anchormap_get_fast inlined from anchormap.h, anchormap_insert /
 * anchormap_remove through the library), same pre-sizing (capacity NKEYS).  The timed loop of OP is the
 * function cg_loop_OP; bench/kernel/callgrind.sh collects only inside it
 * (--toggle-collect) and divides the instructions by NKEYS.  The set-up
 * (building the map for hit, miss and remove) is not counted.
 *
 * hit2seg is hit after a churning writer has made the map grow a second
 * segment (rounds of inserting, with a new value each round, and removing
 * NKEYS/16 other keys): every present key then sits in the older segment.
 *
 * The cg_loop_* functions are noipa so that none is folded into another.
 *
 * There is no userspace rhashtable, so this measures anchormap's side only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anchormap.h"
#include "bench_keys.h"

#if defined(ANCHORMAP_NO_SSE2) && defined(__ANCHORMAP_GROUP_SSE2)
#error "the SWAR build (the kernel's group match) must not use SSE2"
#endif

struct obj {
	u64 key;
	u64 value;
};

static struct obj *objs;
static u64 *hit_keys, *miss_keys;
static u32 *rm_order;
static volatile u64 sink;

static __attribute__((noinline, noipa)) u32 cg_loop_insert(struct anchormap *m, u32 n)
{
	u32 i, ok = 0;

	for (i = 0; i < n; i++)
		ok += anchormap_insert(m, &objs[i].key, &objs[i].value) == 1;
	return ok;
}

static const struct anchormap_params user_loops_params = {
	.key_size = sizeof(u64), .value_size = sizeof(u64), .name = "user_loops",
};

static __attribute__((noinline)) u32 lookups(const struct anchormap *m, const u64 *keys, u32 n)
{
	u32 i, found = 0;
	u64 s = 0;

	for (i = 0; i < n; i++) {
		const u64 *v = anchormap_get_fast(m, &keys[i], user_loops_params);

		if (v) {
			found++;
			s += *v;
		}
	}
	sink += s;
	return found;
}

static __attribute__((noinline, noipa)) u32 cg_loop_hit(const struct anchormap *m, u32 n)
{
	return lookups(m, hit_keys, n);
}

static __attribute__((noinline, noipa)) u32 cg_loop_miss(const struct anchormap *m, u32 n)
{
	return lookups(m, miss_keys, n);
}

static __attribute__((noinline, noipa)) u32 cg_loop_hit2seg(const struct anchormap *m, u32 n)
{
	return lookups(m, hit_keys, n);
}

static __attribute__((noinline, noipa)) u32 cg_loop_remove(struct anchormap *m, u32 n)
{
	u32 i, ok = 0;

	for (i = 0; i < n; i++)
		ok += anchormap_remove(m, &objs[rm_order[i]].key) == 1;
	return ok;
}

int main(int argc, char **argv)
{
	struct anchormap m;
	const char *op;
	u32 n, i, *perm, got, want;

	if (argc != 3 || (n = (u32)strtoul(argv[2], NULL, 0)) < 1) {
		fprintf(stderr, "usage: %s hit|miss|insert|remove NKEYS\n", argv[0]);
		return 2;
	}
	op = argv[1];
	objs = calloc(n, sizeof(*objs));
	hit_keys = malloc(n * sizeof(u64));
	miss_keys = malloc(n * sizeof(u64));
	rm_order = malloc(n * sizeof(u32));
	perm = malloc(n * sizeof(u32));
	if (!objs || !hit_keys || !miss_keys || !rm_order || !perm)
		return 1;
	for (i = 0; i < n; i++) {
		objs[i].key = bk_key(i);
		objs[i].value = i;
	}
	bk_shuffle(perm, n, BK_SEED_LOOKUP);
	for (i = 0; i < n; i++) {
		hit_keys[i] = bk_key(perm[i]);
		miss_keys[i] = bk_key((u64)n + perm[i]);
	}
	bk_shuffle(rm_order, n, BK_SEED_REMOVE);
	free(perm);

	if (anchormap_init(&m, &user_loops_params, n))
		return 1;
	want = n;
	if (!strcmp(op, "insert")) {
		got = cg_loop_insert(&m, n);
	} else {
		if (cg_loop_insert(&m, n) != n)
			return 1;
		if (!strcmp(op, "hit")) {
			got = cg_loop_hit(&m, n);
		} else if (!strcmp(op, "miss")) {
			got = cg_loop_miss(&m, n);
			want = 0;
		} else if (!strcmp(op, "hit2seg")) {
			struct anchormap_stats st;
			u32 w = n / 16 ? n / 16 : 1;
			u64 k, round = 0;

			/* a new value each round: a re-insert of the same bytes would revive */
			do {
				round++;
				for (i = 0; i < w; i++) {
					k = bk_key(2 * (u64)n + i);
					anchormap_insert(&m, &k, &round);
				}
				for (i = 0; i < w; i++) {
					k = bk_key(2 * (u64)n + i);
					anchormap_remove(&m, &k);
				}
				anchormap_stats(&m, &st);
			} while (st.segments < 2);
			got = cg_loop_hit2seg(&m, n);
		} else if (!strcmp(op, "remove")) {
			got = cg_loop_remove(&m, n);
		} else {
			fprintf(stderr, "unknown op %s\n", op);
			return 2;
		}
	}
	anchormap_destroy(&m);
	if (got != want) {
		fprintf(stderr, "%s: %u of %u\n", op, got, want);
		return 1;
	}
	printf("%s %u ok\n", op, n);
	return 0;
}
