// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * cgget - a fixed number of u64 get-hit or get-miss lookups on a pre-sized
 * map, for valgrind --tool=callgrind: only the noinline function
 * cg_lookups_<map>() is meant to be collected (--toggle-collect), so the
 * instruction count divided by the lookup count is the cost of one lookup
 * plus a loop of three or four instructions (the same for every map).
 *
 *   cgget MAP SIZE hit|miss LOOKUPS
 */
#include <cstdio>
#include <string>
#include <vector>

#include "maps.h"

ck_deferred ck_defer;

template <typename M>
__attribute__((noinline)) uint64_t cg_lookups(M *m, const uint64_t *keys, size_t n)
{
	uint64_t sink = 0, x;

	for (size_t i = 0; i < n; i++)
		if (m->get(keys[i], &x))
			sink += x;
	return sink;
}

template <typename M>
static int run(size_t size, bool hit, size_t n)
{
	M m;
	std::vector<uint64_t> keys(n);
	uint64_t s = 1;

	m.init(size);
	for (size_t i = 0; i < size; i++)
		m.insert(KV8::key(i), KV8::value(KV8::key(i)));
	for (size_t i = 0; i < n; i++) {
		s = bench_mix64(s + i);
		keys[i] = KV8::key((hit ? 0 : size) + s % size);
	}
	printf("%llu\n", (unsigned long long)cg_lookups(&m, keys.data(), n));
	m.destroy();
	return 0;
}

int main(int argc, char **argv)
{
	std::string map = argc > 1 ? argv[1] : "anchormap";
	size_t size = argc > 2 ? strtoull(argv[2], NULL, 0) : 1000;
	bool hit = argc > 3 ? std::string(argv[3]) == "hit" : true;
	size_t n = argc > 4 ? strtoull(argv[4], NULL, 0) : 100000;

	rcu_register_thread();
	if (map == "anchormap")
		return run<am_map<KV8>>(size, hit, n);
	if (map == "anchormap_call")
		return run<am_map<KV8, false>>(size, hit, n);
	if (map == "absl")
		return run<absl_map<KV8>>(size, hit, n);
	if (map == "libcuckoo")
		return run<cuckoo_map<KV8>>(size, hit, n);
	if (map == "ck_ht")
		return run<ck_map<KV8>>(size, hit, n);
	if (map == "cds_lfht")
		return run<lfht_map<KV8>>(size, hit, n);
	fprintf(stderr, "unknown map %s\n", map.c_str());
	return 2;
}
