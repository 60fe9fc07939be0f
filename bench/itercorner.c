// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * itercorner - how often a walk misses a key that was present throughout
 * (README, "Iteration corner"), measured rather than guessed.
 *
 *   itercorner KEYS MOVED CHURN MODE [MAPS [WALKS [CAPACITY]]]
 *
 *   KEYS      stable u64 keys 0..KEYS-1, inserted first (default hash)
 *   MOVED     updates as remove + insert with a new value, in percent of
 *             KEYS, made next: keys in order, round after round (250: each
 *             key moved twice, half of them three times)
 *   CHURN     other keys, inserted after that; during every walk each is
 *             removed and re-inserted (same value), spread over the walk:
 *             a writer on other CPUs, made deterministic
 *   MODE      stripes of the churn keys: "any" (as the hash gives them),
 *             "same" (only stripes of exposed keys, see below) or "other"
 *             (only stripes without one); "any" in a map with none
 *   MAPS      maps built, each with its own random seed (default 20)
 *   WALKS     walks per map (default 10)
 *   CAPACITY  capacity passed to anchormap_init (default KEYS; 0: the map
 *             grows from its smallest segment)
 *
 * A moved key is exposed when its live copy and a removed one lie in the
 * newest segment, the live one in a lower group: its probe wrapped past the
 * segment's end because the groups before filled up between the inserts.  Only those can be missed (a miss of any other key is reported
 * as unexplained).  Every stable key is present for the whole walk, so each
 * one not yielded is a miss; any key yielded twice is counted as a
 * duplicate.  The stripe of a key is read from the map's own hash
 * (__anchormap_hash_k(), private: a benchmark's licence).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anchormap.h"

#define IC_CHURN_BASE	(1ULL << 40)	/* churn keys: never a stable one */

static u64 ic_mix(u64 x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ULL;
	x ^= x >> 27;
	x *= 0x81dadef4bc2dd44dULL;
	return x ^ (x >> 33);
}

static unsigned int ic_stripe(const struct anchormap *m, u64 k)
{
	/* key size 8 as a constant: the library's own flavour for this map */
	return (unsigned int)(__anchormap_hash_k(m, &k, sizeof(k)) >> 32) & (ANCHORMAP_STRIPES - 1);
}

/* The group of @value's slot in the newest segment, or -1 if not there. */
static long ic_group(const struct anchormap *m, const void *value)
{
	const struct anchormap_segment *seg = m->top;
	const u8 *slot = (const u8 *)value - m->value_off;
	size_t off;

	if (!value || slot < seg->slots || slot >= seg->slots + seg->nslots * m->slot_size)
		return -1;
	off = (size_t)(slot - seg->slots) / m->slot_size;
	return (long)(off / __ANCHORMAP_GROUP);
}

int main(int argc, char **argv)
{
	struct anchormap_params p = {
		.key_size = sizeof(u64), .value_size = sizeof(u64), .name = "itercorner",
	};
	u64 keys = argc > 4 ? strtoull(argv[1], NULL, 0) : 0;
	u64 moved = argc > 4 ? strtoull(argv[2], NULL, 0) : 0;
	u64 churn = argc > 4 ? strtoull(argv[3], NULL, 0) : 0;
	const char *mode = argc > 4 ? argv[4] : "";
	u64 maps = argc > 5 ? strtoull(argv[5], NULL, 0) : 20;
	u64 walks = argc > 6 ? strtoull(argv[6], NULL, 0) : 10;
	u64 cap = argc > 7 ? strtoull(argv[7], NULL, 0) : keys;
	u64 n, w, k, v, j, missed_walks = 0, worst = 0, misses = 0, dups = 0, odd = 0;
	u64 exposed_sum = 0, exposed_max = 0;
	double fill = 0;
	const struct anchormap_segment *rec_top;
	const void *kp;
	long *oldg = NULL;
	u64 *ckeys = NULL;
	u8 *exposed = NULL, *seen = NULL, *cseen = NULL;
	struct anchormap_iter it;
	struct anchormap m;

	if (!keys || !maps || !walks ||
	    (strcmp(mode, "any") && strcmp(mode, "same") && strcmp(mode, "other"))) {
		fprintf(stderr, "usage: itercorner KEYS MOVED%% CHURN any|same|other "
			"[MAPS [WALKS [CAPACITY]]]\n");
		return 2;
	}
	oldg = calloc(keys, sizeof(*oldg));
	exposed = calloc(keys, 1);
	seen = calloc(keys, 1);
	ckeys = calloc(churn + 1, sizeof(*ckeys));
	cseen = calloc(churn + 1, 1);
	if (!oldg || !exposed || !seen || !ckeys || !cseen)
		return 1;

	for (n = 0; n < maps; n++) {
		u64 nexp = 0, salt = ic_mix(n + 1), len;
		u64 hot = 0;	/* bit s: stripe s holds an exposed key */

		if (anchormap_init(&m, &p, cap))
			return 1;
		for (k = 0; k < keys; k++)
			if (anchormap_insert(&m, &k, &k) != 1)
				return 1;
		/* oldg[k]: highest group of a removed copy of k in rec_top, or -1 */
		memset(oldg, 0xff, keys * sizeof(*oldg));
		rec_top = m.top;
		for (j = 0; j < keys * moved / 100; j++) {
			long g;

			k = (j + salt) % keys;
			g = ic_group(&m, anchormap_get(&m, &k));
			v = ic_mix(j);
			if (anchormap_remove(&m, &k) != 1 || anchormap_insert(&m, &k, &v) != 1)
				return 1;
			if (m.top != rec_top) {
				/* grown: every removed copy is in an older segment */
				memset(oldg, 0xff, keys * sizeof(*oldg));
				rec_top = m.top;
				continue;
			}
			oldg[k] = g > oldg[k] ? g : oldg[k];
		}
		/* churn keys on the stripes MODE asks for (any, if none is hot) */
		for (k = 0; k < keys; k++)
			if (ic_group(&m, anchormap_get(&m, &k)) < oldg[k])
				hot |= 1ULL << ic_stripe(&m, k);
		for (j = 0, v = 0; j < churn; v++) {
			u64 bit;

			k = IC_CHURN_BASE + v;
			bit = 1ULL << ic_stripe(&m, k);
			if (hot && ((!strcmp(mode, "same") && !(hot & bit)) ||
				    (!strcmp(mode, "other") && (hot & bit))))
				continue;
			if (anchormap_insert(&m, &k, &k) != 1)
				return 1;
			ckeys[j++] = k;
		}
		/* after the churn inserts: they may have grown the map */
		for (k = 0; k < keys; k++) {
			long g = ic_group(&m, anchormap_get(&m, &k));

			exposed[k] = m.top == rec_top && g >= 0 && g < oldg[k];
			nexp += exposed[k];
		}
		exposed_sum += nexp;
		exposed_max = nexp > exposed_max ? nexp : exposed_max;
		fill += (double)(m.top->limit - (size_t)m.top->avail) / (double)m.top->nslots;
		len = anchormap_len(&m);

		for (w = 0; w < walks; w++) {
			u64 step = 0, done = 0, miss = 0;

			memset(seen, 0, keys);
			memset(cseen, 0, churn);
			anchormap_for_each(&m, &it, &kp, NULL) {
				memcpy(&k, kp, sizeof(k));
				if (k < keys)
					dups += seen[k]++ != 0;
				else if (k >= IC_CHURN_BASE && k - IC_CHURN_BASE < v)
					for (j = 0; j < churn; j++)
						if (ckeys[j] == k)
							dups += cseen[j]++ != 0;
				/* the first removal at step 0, then evenly spread */
				for (step++; done < churn && done * len < step * churn; done++) {
					if (anchormap_remove(&m, &ckeys[done]) != 1 ||
					    anchormap_insert(&m, &ckeys[done], &ckeys[done]) != 1)
						return 1;
				}
			}
			for (k = 0; k < keys; k++) {
				miss += !seen[k];
				odd += !seen[k] && !exposed[k];
			}
			missed_walks += miss != 0;
			worst = miss > worst ? miss : worst;
			misses += miss;
		}
		anchormap_destroy(&m);
	}
	printf("keys %llu moved %llu%% churn %llu %s cap %llu: %llu walks, %.1f%% missed >= 1 key, "
	       "max %llu, mean %.3f per walk; exposed keys per map mean %.2f max %llu; "
	       "newest segment %.1f%% claimed; unexplained %llu, duplicates %llu\n",
	       (unsigned long long)keys, (unsigned long long)moved,
	       (unsigned long long)churn, mode, (unsigned long long)cap,
	       (unsigned long long)(maps * walks),
	       100.0 * (double)missed_walks / (double)(maps * walks),
	       (unsigned long long)worst, (double)misses / (double)(maps * walks),
	       (double)exposed_sum / (double)maps, (unsigned long long)exposed_max,
	       100.0 * fill / (double)maps, (unsigned long long)odd, (unsigned long long)dups);
	free(oldg);
	free(exposed);
	free(seen);
	free(ckeys);
	free(cseen);
	return dups || odd ? 3 : 0;
}
