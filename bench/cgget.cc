// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * cgget - a fixed number of get-hit or get-miss lookups on a map in a
 * given state, for valgrind --tool=callgrind: only the noinline function
 * cg_lookups_<map>() is meant to be collected (--toggle-collect), so the
 * instruction count divided by the lookup count is the cost of one lookup
 * plus a loop of three or four instructions (the same for every map; for
 * rte_hash_bulk, the loop over batches of 32 and the batch's set-up).
 *
 *   cgget MAP SIZE hit|miss|both LOOKUPS [STATE [u64|k32v64]]
 *
 * both: the hit lookups, a callgrind dump (CALLGRIND_DUMP_STATS_AT: the
 * file named by --callgrind-out-file, with ".1" appended), then the miss
 * lookups (the final dump, the file itself), on one map built once.
 * STATE (bench/states.h): presized (the default), grown, churnK.  Building
 * the state runs with callgrind's instrumentation off when valgrind is
 * started with --instr-atstart=no (client requests switch it on for the
 * lookups only).  Exit status 3: the map cannot be in that state (rte_hash
 * is never "grown"), with a "skip:" line on stderr.
 */
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <valgrind/callgrind.h>

#include "maps.h"
#include "states.h"

ck_deferred ck_defer;

template <typename M>
__attribute__((noinline)) uint64_t cg_lookups(M *m, const typename M::K *keys, size_t n)
{
	uint64_t sink = 0, x;

	if constexpr (M::kBulk) {
		for (size_t i = 0; i < n; i += M::kBulkMax)
			m->get_bulk(keys + i, (unsigned)std::min<size_t>(n - i, M::kBulkMax), &sink);
	} else {
		for (size_t i = 0; i < n; i++)
			if (m->get(keys[i], &x))
				sink += x;
	}
	return sink;
}

template <typename KV, typename M>
static int run(size_t size, const std::string &mode, size_t n, const map_state &st)
{
	M m;
	std::vector<typename KV::K> keys(n);
	std::vector<uint64_t> live(size);
	uint64_t sink;
	int pass;

	if (M::kFixedCapacity && st.grown) {
		fprintf(stderr, "skip: %s %s (fixed capacity)\n", M::name(), st.name.c_str());
		return 3;
	}
	M::setup(size, sizeof(typename KV::K));
	build_state<KV>(&m, size, st, live);
	for (pass = 0; pass < 2; pass++) {
		bool hit = pass == 0;
		uint64_t s = 1;

		if (mode != "both" && hit != (mode == "hit"))
			continue;
		for (size_t i = 0; i < n; i++) {
			s = am_tu_mix64(s + i);
			keys[i] = KV::key(hit ? live[s % size] : size + s % size);
		}
		CALLGRIND_START_INSTRUMENTATION;
		sink = cg_lookups(&m, keys.data(), n);
		if (mode == "both" && hit)
			CALLGRIND_DUMP_STATS_AT("get-hit");
		printf("%llu\n", (unsigned long long)sink);
	}
	m.destroy();
	return 0;
}

template <typename KV>
static int dispatch(const std::string &map, size_t size, const std::string &mode, size_t n,
		    const map_state &st)
{
	if (map == "anchormap")
		return run<KV, am_map<KV>>(size, mode, n, st);
	if (map == "anchormap_call")
		return run<KV, am_map<KV, false>>(size, mode, n, st);
	if (map == "anchormap_bulk")
		return run<KV, am_map<KV, true, true>>(size, mode, n, st);
	if (map == "absl")
		return run<KV, absl_map<KV>>(size, mode, n, st);
	if (map == "libcuckoo")
		return run<KV, cuckoo_map<KV>>(size, mode, n, st);
	if (map == "ck_ht")
		return run<KV, ck_map<KV>>(size, mode, n, st);
	if (map == "cds_lfht")
		return run<KV, lfht_map<KV>>(size, mode, n, st);
	if (map == "rte_hash")
		return run<KV, rte_map<KV>>(size, mode, n, st);
	if (map == "rte_hash_bulk")
		return run<KV, rte_map<KV, true>>(size, mode, n, st);
	if (map == "tbb_hash_map")
		return run<KV, tbb_hm_map<KV>>(size, mode, n, st);
	if (map == "tbb_unordered_map")
		return run<KV, tbb_um_map<KV>>(size, mode, n, st);
	fprintf(stderr, "unknown map %s\n", map.c_str());
	return 2;
}

int main(int argc, char **argv)
{
	std::string map = argc > 1 ? argv[1] : "anchormap";
	size_t size = argc > 2 ? strtoull(argv[2], NULL, 0) : 1000;
	std::string mode = argc > 3 ? argv[3] : "hit";
	size_t n = argc > 4 ? strtoull(argv[4], NULL, 0) : 100000;
	map_state st;

	if (mode != "hit" && mode != "miss" && mode != "both") {
		fprintf(stderr, "unknown lookup %s\n", mode.c_str());
		return 2;
	}
	if (argc > 5 && !parse_state(argv[5], &st)) {
		fprintf(stderr, "unknown state %s\n", argv[5]);
		return 2;
	}
	rcu_register_thread();
	if (argc > 6 && std::string(argv[6]) == "k32v64")
		return dispatch<KV32>(map, size, mode, n, st);
	if (argc > 6 && std::string(argv[6]) != "u64") {
		fprintf(stderr, "unknown kv %s\n", argv[6]);
		return 2;
	}
	return dispatch<KV8>(map, size, mode, n, st);
}
