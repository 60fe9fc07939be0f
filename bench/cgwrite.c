// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * cgwrite - a fixed number of writer calls on anchormap, for valgrind
 * --tool=callgrind: collect only the noinline cg_writes() (--toggle-collect)
 * and divide by the call count for the cost of one call.
 *
 *   cgwrite insert|remove|toggle|churn|grow SIZE
 *
 *   insert  SIZE inserts of new u64 keys into a map pre-sized for them
 *   grow    the same inserts into a map initialised with capacity 0
 *   remove  SIZE removes of present keys
 *   toggle  SIZE remove + insert pairs of present keys, same value bytes
 *           (each insert a new entry, in the index slot just freed)
 *   churn   SIZE remove + insert pairs of present keys with new values
 *           (each insert a new entry)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anchormap.h"
#include "selftests/am_testutil.h"

enum cg_op { CG_INSERT, CG_REMOVE, CG_TOGGLE, CG_CHURN, CG_GROW };

static u64 cg_key(u64 i)
{
	return i * AM_TU_GOLDEN + 1;
}

__attribute__((noinline)) static long cg_writes(struct anchormap *m, enum cg_op op, u64 n)
{
	long sum = 0;
	u64 i, k, v;

	for (i = 0; i < n; i++) {
		k = cg_key(i);
		v = op == CG_CHURN ? ~k : k;
		if (op != CG_INSERT && op != CG_GROW)
			sum += anchormap_remove(m, &k);
		if (op != CG_REMOVE)
			sum += anchormap_insert(m, &k, &v);
	}
	return sum;
}

int main(int argc, char **argv)
{
	static const char *const names[] = { "insert", "remove", "toggle", "churn", "grow" };
	struct anchormap_params p = {
		.key_size = sizeof(u64), .value_size = sizeof(u64), .name = "cgwrite",
	};
	struct anchormap m;
	enum cg_op op = CG_INSERT;
	u64 n = argc > 2 ? strtoull(argv[2], NULL, 0) : 100000, i, k;
	long sum;

	for (i = 0; i < 5; i++)
		if (argc > 1 && !strcmp(argv[1], names[i]))
			op = (enum cg_op)i;
	/* room for every write without growth, churn included (grow: none) */
	if (anchormap_init(&m, &p, op == CG_GROW ? 0 : op == CG_CHURN ? 2 * n : n))
		return 1;
	if (op != CG_INSERT && op != CG_GROW)
		for (i = 0; i < n; i++) {
			k = cg_key(i);
			if (anchormap_insert(&m, &k, &k) != 1)
				return 1;
		}
	sum = cg_writes(&m, op, n);
	printf("%s %llu: %ld\n", names[op], (unsigned long long)n, sum);
	anchormap_destroy(&m);
	return 0;
}
