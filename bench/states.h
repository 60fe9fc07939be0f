// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * states.h - the map states of issue 12: what a lookup costs depends on how
 * the map got to its n live entries (segments, tombstones, chains), so the
 * same n keys are measured after different histories.  Every map gets the
 * same keys in the same order:
 *
 *   presized   init(n), then insert key indexes [0, n)
 *   grown      init(0) (the map's smallest size), the same inserts; with
 *              n = 16M this is issue 12's "grown16m"
 *   churnK     presized, then K x 10 rounds of n / 10 replacements: remove
 *              a live key picked at random, insert a fresh key (never seen
 *              before, so its value is new too: no revival); K times the
 *              map's size replaced in all, n live entries throughout
 *   freshK     the live set churnK ends with (the same random picks,
 *              replayed on the key list alone), inserted into a map
 *              init(n) in index order: what churnK is compared with
 *
 * live[] (n elements, allocated by the caller so that memory counting does
 * not see it) gets the key indexes present afterwards: hits are drawn from
 * it; indexes [n, 2n) are never inserted (misses).  The state is settle()d
 * at the end (deferred frees done, no compaction).
 */
#ifndef BENCH_STATES_H
#define BENCH_STATES_H

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "maps.h"

struct map_state {
	std::string name = "presized";
	bool grown = false;
	unsigned churn = 0;	/* times the map's size replaced */
	bool fresh = false;	/* freshK: churnK's live set, inserted once */
};

static inline bool parse_state(const std::string &s, map_state *st)
{
	unsigned k;
	char extra;

	st->name = s;
	st->grown = false;
	st->churn = 0;
	st->fresh = false;
	if (s == "presized")
		return true;
	if (s == "grown") {
		st->grown = true;
		return true;
	}
	if (sscanf(s.c_str(), "churn%u%c", &k, &extra) == 1 && k > 0) {
		st->churn = k;
		return true;
	}
	if (sscanf(s.c_str(), "fresh%u%c", &k, &extra) == 1 && k > 0) {
		st->churn = k;
		st->fresh = true;
		return true;
	}
	return false;
}

/* the churn's fresh key indexes: far above any other index the bench uses */
static const uint64_t kChurnBase = 1ULL << 40;

template <typename KV, typename M>
static void build_state(M *m, size_t n, const map_state &st, std::vector<uint64_t> &live)
{
	uint64_t fresh = kChurnBase, seed = 0x243f6a8885a308d3ULL;
	size_t per = n / 10 ? n / 10 : 1;

	if (live.size() != n)
		abort();
	for (size_t i = 0; i < n; i++)
		live[i] = i;
	if (st.fresh) {	/* churnK's picks on the key list alone */
		for (unsigned r = 0; r < st.churn * 10; r++) {
			for (size_t j = 0; j < per; j++) {
				live[(size_t)(((unsigned __int128)am_tu_weyl(&seed) * n) >> 64)] =
					fresh++;
			}
		}
	}
	m->init(st.grown ? 0 : n);
	for (size_t i = 0; i < n; i++)
		m->insert(KV::key(live[i]), KV::value(KV::key(live[i])));
	for (unsigned r = 0; !st.fresh && r < st.churn * 10; r++) {
		for (size_t j = 0; j < per; j++) {
			size_t p;

			p = (size_t)(((unsigned __int128)am_tu_weyl(&seed) * n) >> 64);
			if (!m->remove(KV::key(live[p]))) {
				fprintf(stderr, "%s: churn: key index %llu not removed\n",
					M::name(), (unsigned long long)live[p]);
				exit(1);
			}
			live[p] = fresh++;
			if (!m->insert(KV::key(live[p]), KV::value(KV::key(live[p])))) {
				fprintf(stderr, "%s: churn: key index %llu not inserted\n",
					M::name(), (unsigned long long)live[p]);
				exit(1);
			}
		}
	}
	m->settle();
}

#endif /* BENCH_STATES_H */
