// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * ambench - throughput and memory of anchormap against the maps users
 * would pick instead.  One process per (map, key/value kind, size): the
 * memory phase first, then every requested workload x distribution x
 * thread count, each run --runs times.
 *
 *   ambench --map M --kv u64|k32v64 --size N [--workloads a,b] [--dists a,b]
 *           [--threads 1,2,4] [--runs 5] [--ops N] [--grow-ops N]
 *           [--state S] [--csv FILE] [--mem-csv FILE] [--no-mem]
 *
 * Workloads (see bench/BENCHMARK.md for the precise definitions):
 *   get-hit get-miss read-heavy exchange rapid-grow insert-presized insert-grow
 *
 * --state (bench/states.h: presized, grown, churnK, freshK) is how the prefilled map
 * of get-hit, get-miss, read-heavy and exchange is built (default presized);
 * given explicitly, the map gets no upkeep between runs (settle(), not
 * quiesce(): anchormap would compact it), and the memory phase measures that
 * state instead of the usual pre-sized and grown fills (and, for anchormap
 * after churn, the compaction: a "STATE-shrink" row).  --workloads "" runs
 * the memory phase only.
 *
 * Timing: all keys and operation streams are generated before a run; the
 * workers wait on a pthread barrier, each notes its start and end time,
 * and a run lasts from the earliest start to the latest end.
 */
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <malloc.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "maps.h"
#include "memcount.h"
#include "states.h"

ck_deferred ck_defer;

enum op_type : uint8_t { OP_GET, OP_INSERT, OP_REMOVE, OP_UPDATE };

struct options {
	std::string map = "anchormap", kv = "u64", csv, mem_csv;
	size_t size = 1000000;
	std::vector<std::string> workloads, dists;
	std::vector<int> threads;
	int runs = 5;
	size_t ops = 2000000;
	size_t grow_ops = 0;	/* ops of rapid-grow and insert-*: 0 = size */
	bool mem = true;
	map_state state;
	bool state_given = false;
};

static double now_ns()
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static std::vector<std::string> split(const std::string &s)
{
	std::vector<std::string> out;
	size_t b = 0, e;

	while (b <= s.size()) {
		e = s.find(',', b);
		if (e == std::string::npos)
			e = s.size();
		if (e > b)
			out.push_back(s.substr(b, e - b));
		b = e + 1;
	}
	return out;
}

/* ---- random numbers: splitmix64 state, Zipf by Gray et al.'s method ---- */

struct rng {
	uint64_t s;
	explicit rng(uint64_t seed) : s(seed) {}
	uint64_t next() { return am_tu_weyl(&s); }
	double unit() { return (next() >> 11) * (1.0 / 9007199254740992.0); }
	uint64_t below(uint64_t n) { return (uint64_t)(((unsigned __int128)next() * n) >> 64); }
};

/*
 * Zipf(s) over ranks 0..n-1 (rank 0 hottest), with the closed-form
 * approximation of "Quickly generating billion-record synthetic
 * databases" (Gray et al., SIGMOD 1994), as YCSB uses: zeta(n) once, then
 * O(1) per sample.  Ranks map to keys already scattered by am_tu_mix64.
 */
struct zipf {
	uint64_t n;
	double theta, alpha, zetan, eta, half_pow;

	zipf(uint64_t n_, double s) : n(n_), theta(s)
	{
		double zeta2 = 1.0 + std::pow(0.5, theta);

		zetan = 0;
		for (uint64_t i = 1; i <= n; i++)
			zetan += 1.0 / std::pow((double)i, theta);
		alpha = 1.0 / (1.0 - theta);
		eta = (1.0 - std::pow(2.0 / n, 1.0 - theta)) / (1.0 - zeta2 / zetan);
		half_pow = std::pow(0.5, theta);
	}
	uint64_t sample(rng &r) const
	{
		double u = r.unit(), uz = u * zetan;
		uint64_t k;

		if (uz < 1.0)
			return 0;
		if (uz < 1.0 + half_pow)
			return n > 1 ? 1 : 0;
		k = (uint64_t)(n * std::pow(eta * u - eta + 1.0, alpha));
		return k < n ? k : n - 1;
	}
};

/* zeta(n) costs n pow() calls: one generator per n for the process */
static const zipf *zipf_for(uint64_t n)
{
	static std::vector<zipf *> cache;

	for (zipf *z : cache)
		if (z->n == n)
			return z;
	cache.push_back(new zipf(n, 0.99));
	return cache.back();
}

/* ---- streams of operations, one per thread ---- */

template <typename KV> struct stream {
	std::vector<uint8_t> op;
	std::vector<typename KV::K> key;
};

/*
 * Key indexes: [0, n) are prefilled, [n, 2n) never inserted (misses and
 * the other half of the mixes' universe), [2n + t * per, ...) fresh keys
 * thread t inserts in the growth workloads.
 */
template <typename KV> struct workload_gen {
	size_t n;
	const zipf *z;	/* NULL: uniform */
	const std::vector<uint64_t> *live;	/* index i < n -> live[i] (states.h) */

	uint64_t pick(rng &r, uint64_t range) const
	{
		if (!z)
			return r.below(range);
		/* Zipf over n ranks, folded into the range when it differs */
		uint64_t k = z->sample(r);

		return range == z->n ? k : k % range;
	}

	void make(const std::string &wl, int t, size_t len, stream<KV> &s) const
	{
		rng r(0xabcdef12345ULL + 7919 * (uint64_t)t + std::hash<std::string>()(wl));
		size_t inserted = 0;
		uint64_t fresh = 2 * n + (uint64_t)t * len;

		s.op.resize(len);
		s.key.resize(len);
		for (size_t i = 0; i < len; i++) {
			uint8_t o = OP_GET;
			uint64_t idx;
			unsigned p = (unsigned)r.below(100);

			if (wl == "get-hit") {
				idx = pick(r, n);
			} else if (wl == "get-miss") {
				idx = n + pick(r, n);
			} else if (wl == "read-heavy" || wl == "exchange") {
				/* 98/1/1/0 or 10/40/40/10 over a universe of 2n keys */
				if (wl == "read-heavy")
					o = p < 98 ? OP_GET : p < 99 ? OP_INSERT : OP_REMOVE;
				else
					o = p < 10 ? OP_GET : p < 50 ? OP_INSERT :
					    p < 90 ? OP_REMOVE : OP_UPDATE;
				/* Zipf ranks interleave present and absent keys */
				idx = pick(r, 2 * n);
				idx = (idx & 1) ? n + idx / 2 : idx / 2;
			} else if (wl == "rapid-grow") {
				/* 5/80/5/10 from an empty map: inserts of fresh keys,
				 * the rest on this thread's keys, the newest hottest */
				o = p < 5 ? OP_GET : p < 85 ? OP_INSERT :
				    p < 90 ? OP_REMOVE : OP_UPDATE;
				if (o == OP_INSERT || !inserted) {
					idx = fresh + inserted;
					if (o == OP_INSERT)
						inserted++;
				} else {
					idx = fresh + inserted - 1 - pick(r, inserted);
				}
			} else {	/* insert-presized, insert-grow */
				o = OP_INSERT;
				idx = fresh + i;
			}
			if (idx < n)
				idx = (*live)[idx];
			s.op[i] = o;
			s.key[i] = KV::key(idx);
		}
	}
};

/* ---- runs ---- */

struct thread_result {
	double t0, t1;
	uint64_t sink, found;
} __attribute__((aligned(64)));

template <typename KV, typename M>
static void worker(M *m, const stream<KV> *s, pthread_barrier_t *bar, thread_result *res)
{
	uint64_t sink = 0, found = 0, x;
	size_t len = s->op.size();
	const uint8_t *op = s->op.data();
	const typename KV::K *key = s->key.data();

	m->thread_enter();
	pthread_barrier_wait(bar);
	res->t0 = now_ns();
	for (size_t i = 0; i < len; i++) {
		if constexpr (M::kBulk) {
			/* a run of consecutive gets, up to kBulkMax, in one call */
			if (op[i] == OP_GET) {
				size_t j = i + 1;

				while (j < len && j - i < M::kBulkMax && op[j] == OP_GET)
					j++;
				found += m->get_bulk(&key[i], (unsigned)(j - i), &sink);
				i = j - 1;
				continue;
			}
		}
		switch (op[i]) {
		case OP_GET:
			if (m->get(key[i], &x)) {
				sink += x;
				found++;
			}
			break;
		case OP_INSERT:
			found += m->insert(key[i], KV::value(key[i]));
			break;
		case OP_REMOVE:
			found += m->remove(key[i]);
			break;
		case OP_UPDATE:
			m->update(key[i], KV::value(key[i]));
			break;
		}
	}
	res->t1 = now_ns();
	res->sink = sink;
	res->found = found;
	m->thread_exit();
}

template <typename KV, typename M>
static double run_once(M *m, const std::vector<stream<KV>> &streams, uint64_t *found)
{
	int nt = (int)streams.size();
	std::vector<thread_result> res(nt);
	std::vector<std::thread> th;
	pthread_barrier_t bar;
	double t0 = 1e300, t1 = 0;

	pthread_barrier_init(&bar, NULL, nt);
	for (int t = 0; t < nt; t++)
		th.emplace_back(worker<KV, M>, m, &streams[t], &bar, &res[t]);
	for (auto &x : th)
		x.join();
	pthread_barrier_destroy(&bar);
	*found = 0;
	for (auto &r : res) {
		t0 = std::min(t0, r.t0);
		t1 = std::max(t1, r.t1);
		*found += r.found;
	}
	return t1 - t0;
}

template <typename KV, typename M>
static void fill(M *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		m->insert(KV::key(i), KV::value(KV::key(i)));
}

static long rss_kb()
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, rss = 0;

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* map,kv,size,mode,live,peak,live/entry,peak/entry,rss/entry */
static void mem_row(FILE *out, const options &o, const char *kv, const std::string &mode,
		    long long live, long long peak, long rss_kb)
{
	fprintf(out, "%s,%s,%zu,%s,%lld,%lld,%.2f,%.2f,%.2f\n", o.map.c_str(), kv, o.size,
		mode.c_str(), live, peak, (double)live / o.size, (double)peak / o.size,
		rss_kb * 1024.0 / o.size);
	fflush(out);
}

/*
 * A state of states.h: bytes live once it is built and settled, and the
 * peak while it was built.  After churn or growth, for a map with an
 * exclusive compaction (anchormap_shrink_to_fit), one more row
 * STATE-shrink: the bytes after it and the peak during it.
 */
template <typename KV, typename M>
static void state_memory(const options &o, FILE *out)
{
	M *m = new M();
	std::vector<uint64_t> live(o.size);
	long rss0, rss1;
	long long h0, heap;

	memcount_start();
	rss0 = rss_kb();
	h0 = M::heap_bytes();
	build_state<KV>(m, o.size, o.state, live);
	heap = M::heap_bytes() - h0;
	rss1 = rss_kb();
	mem_row(out, o, KV::name(), o.state.name, memcount_live() + heap,
		memcount_peak() + heap, rss1 - rss0);
	if (M::kCompact && ((o.state.churn && !o.state.fresh) || o.state.grown)) {
		memcount_reset_peak();
		m->compact();
		heap = M::heap_bytes() - h0;
		mem_row(out, o, KV::name(), o.state.name + "-shrink", memcount_live() + heap,
			memcount_peak() + heap, rss_kb() - rss0);
	}
	memcount_stop();
	m->destroy();
	delete m;
}

/*
 * Memory: allocator bytes (malloc_usable_size of every block, memcount.h;
 * plus, for rte_hash, what DPDK's own heap gave out) live after n inserts
 * and at their peak, from an empty process state.
 */
template <typename KV, typename M>
static void memory_phase(const options &o, FILE *out)
{
	const char *modes[] = { "presized", "grown" };

	if (o.state_given) {
		state_memory<KV, M>(o, out);
		return;
	}
	for (int i = 0; i < 2; i++) {
		M *m;
		long rss0, rss1;
		long long live, peak, h0;

		if (i == 1 && M::kFixedCapacity) {
			fprintf(stderr, "skip: %s %s grown memory (fixed capacity)\n",
				o.map.c_str(), KV::name());
			continue;
		}
		m = new M();
		memcount_start();
		rss0 = rss_kb();
		h0 = M::heap_bytes();
		m->init(i == 0 ? o.size : 0);
		fill<KV>(m, o.size);
		m->quiesce();	/* deferred frees: what stays allocated */
		live = memcount_live() + M::heap_bytes() - h0;
		peak = memcount_peak() + M::heap_bytes() - h0;
		rss1 = rss_kb();
		memcount_stop();
		m->destroy();
		delete m;
		mem_row(out, o, KV::name(), modes[i], live, peak, rss1 - rss0);
	}
}

static bool read_only(const std::string &wl)
{
	return wl == "get-hit" || wl == "get-miss";
}

static bool fresh_map(const std::string &wl)
{
	return wl == "rapid-grow" || wl == "insert-presized" || wl == "insert-grow";
}

template <typename KV, typename M>
static void bench(const options &o)
{
	FILE *out = o.csv.empty() ? stdout : fopen(o.csv.c_str(), "a");
	M *m = NULL;
	bool prefilled = false;
	std::vector<uint64_t> live(o.size);

	if (!out) {
		perror(o.csv.c_str());
		exit(1);
	}
	if (M::kFixedCapacity && o.state.grown) {
		fprintf(stderr, "skip: %s %s state %s (fixed capacity)\n", o.map.c_str(),
			KV::name(), o.state.name.c_str());
		return;
	}
	for (size_t i = 0; i < o.size; i++)
		live[i] = i;
	M::setup(std::max(o.size, o.grow_ops), sizeof(typename KV::K));
	if (o.mem) {
		FILE *mo = o.mem_csv.empty() ? stdout : fopen(o.mem_csv.c_str(), "a");

		if (!mo) {
			perror(o.mem_csv.c_str());
			exit(1);
		}
		memory_phase<KV, M>(o, mo);
		if (mo != stdout)
			fclose(mo);
	}
	for (const std::string &wl : o.workloads) {
		bool fresh = fresh_map(wl);
		size_t total = fresh ? (o.grow_ops ? o.grow_ops : o.size) : o.ops;

		if (fresh && m) {	/* one map at a time */
			m->destroy();
			delete m;
			m = NULL;
			prefilled = false;
		}
		if (M::kFixedCapacity && (wl == "insert-grow" || wl == "rapid-grow")) {
			fprintf(stderr, "skip: %s %s %s (fixed capacity)\n", o.map.c_str(),
				KV::name(), wl.c_str());
			continue;
		}
		if (M::kBulk && wl != "get-hit" && wl != "get-miss" && wl != "read-heavy") {
			fprintf(stderr, "skip: %s %s %s (only gets are bulk: as rte_hash)\n",
				o.map.c_str(), KV::name(), wl.c_str());
			continue;
		}

		for (const std::string &dist : o.dists) {
			const zipf *z = NULL;

			if (dist == "zipf" && (wl == "insert-presized" || wl == "insert-grow"))
				continue;	/* distinct keys: no distribution */
			if (dist == "zipf")
				z = zipf_for(wl == "read-heavy" || wl == "exchange" ? 2 * o.size :
					     fresh ? total : o.size);
			workload_gen<KV> gen = { o.size, z, &live };

			for (int nt : o.threads) {
				std::vector<stream<KV>> streams(nt);
				std::vector<double> mops;

				if (!M::kSharedWrites && nt > 1 && !read_only(wl))
					continue;	/* no lock: readers only */
				/*
				 * libcuckoo 0.3.1 (Debian) segfaults in slot_search /
				 * try_find_insert_bucket when several threads grow one
				 * table (both key kinds): see BENCHMARK.md.
				 */
				/* ~3 us per insert while its lazy resize lags: minutes a run */
				if (o.map == "cds_lfht" && wl == "insert-grow" &&
				    o.size >= 16000000) {
					fprintf(stderr, "skip: cds_lfht insert-grow at %zu\n",
						o.size);
					continue;
				}
				if (o.map == "libcuckoo" && nt > 1 &&
				    (wl == "insert-grow" || wl == "rapid-grow")) {
					fprintf(stderr, "skip: libcuckoo %s %s %d threads\n",
						KV::name(), wl.c_str(), nt);
					continue;
				}
				/* unsafe_erase(): removes and updates on one thread only */
				if (!M::kSharedErase && nt > 1 &&
				    (wl == "read-heavy" || wl == "exchange" || wl == "rapid-grow")) {
					fprintf(stderr, "skip: %s %s %s %d threads (erase not "
						"concurrent-safe)\n", o.map.c_str(), KV::name(),
						wl.c_str(), nt);
					continue;
				}
				if (!fresh && !prefilled) {	/* before the streams: live[] */
					m = new M();
					build_state<KV>(m, o.size, o.state, live);
					prefilled = true;
				}
				for (int t = 0; t < nt; t++)
					gen.make(wl, t, total / nt, streams[t]);
				unsigned long refused = 0;

				for (int r = 0; r < o.runs; r++) {
					uint64_t found;
					unsigned long ref0 = 0;
					double ns;

					if (fresh) {
						m = new M();
						m->init(wl == "insert-presized" ? total : 0);
					}
					ref0 = m->refused();
					ns = run_once<KV, M>(m, streams, &found);
					refused += m->refused() - ref0;
					/* a state is measured as it is: no upkeep */
					if (o.state_given && !fresh)
						m->settle();
					else
						m->quiesce();
					if (fresh) {
						m->destroy();
						delete m;
						m = NULL;
					}
					mops.push_back(total / nt * nt / ns * 1e3);
					if (wl == "get-hit" && found != total / nt * nt) {
						fprintf(stderr, "%s: get-hit found %lu of %zu\n",
							o.map.c_str(), (unsigned long)found, total);
						exit(1);
					}
					if (wl == "get-miss" && found) {
						fprintf(stderr, "%s: get-miss found %lu\n",
							o.map.c_str(), (unsigned long)found);
						exit(1);
					}
				}
				if (refused)
					fprintf(stderr, "warning: %s %s %zu %s %s %d threads: %lu inserts "
						"refused in %d runs (table full)\n", o.map.c_str(), KV::name(),
						o.size, wl.c_str(), dist.c_str(), nt, refused, o.runs);
				std::vector<double> s = mops;
				std::sort(s.begin(), s.end());
				size_t k = s.size();
				double med = k % 2 ? s[k / 2] : (s[k / 2 - 1] + s[k / 2]) / 2;
				/* map,kv,size,workload,dist,threads,ops,runs,
				 * median,min,max,q1,q3 (Mops/s), ns/op at the median */
				fprintf(out, "%s,%s,%zu,%s,%s,%d,%zu,%d,%.3f,%.3f,%.3f,%.3f,%.3f,%.2f\n",
					o.map.c_str(), KV::name(), o.size, wl.c_str(),
					fresh && wl != "rapid-grow" ? "-" : dist.c_str(), nt,
					total / nt * nt, o.runs, med, s[0], s[k - 1], s[k / 4],
					s[k - 1 - (k - 1) / 4],
					1e3 / med);
				fflush(out);
			}
		}
	}
	if (m) {
		m->destroy();
		delete m;
	}
	if (out != stdout)
		fclose(out);
}

template <typename KV>
static void by_map(const options &o)
{
	if (o.map == "anchormap")
		bench<KV, am_map<KV>>(o);
	else if (o.map == "anchormap_call")
		bench<KV, am_map<KV, false>>(o);
	else if (o.map == "anchormap_bulk")
		bench<KV, am_map<KV, true, true>>(o);
	else if (o.map == "absl")
		bench<KV, absl_map<KV>>(o);
	else if (o.map == "absl_rwlock")
		bench<KV, absl_rw_map<KV>>(o);
	else if (o.map == "libcuckoo")
		bench<KV, cuckoo_map<KV>>(o);
	else if (o.map == "ck_ht")
		bench<KV, ck_map<KV>>(o);
	else if (o.map == "cds_lfht")
		bench<KV, lfht_map<KV>>(o);
	else if (o.map == "rte_hash")
		bench<KV, rte_map<KV>>(o);
	else if (o.map == "rte_hash_bulk")
		bench<KV, rte_map<KV, true>>(o);
	else if (o.map == "tbb_hash_map")
		bench<KV, tbb_hm_map<KV>>(o);
	else if (o.map == "tbb_unordered_map")
		bench<KV, tbb_um_map<KV>>(o);
	else {
		fprintf(stderr, "unknown map %s\n", o.map.c_str());
		exit(2);
	}
}

int main(int argc, char **argv)
{
	options o;

	o.workloads = split("get-hit,get-miss,read-heavy,exchange");
	o.dists = split("uniform,zipf");
	o.threads = { 1, 2, 4 };
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : "";

		if (a == "--no-mem") {
			o.mem = false;
			continue;
		}
		i++;
		if (a == "--map")
			o.map = v;
		else if (a == "--kv")
			o.kv = v;
		else if (a == "--size")
			o.size = strtoull(v, NULL, 0);
		else if (a == "--workloads")
			o.workloads = split(v);
		else if (a == "--dists")
			o.dists = split(v);
		else if (a == "--threads") {
			o.threads.clear();
			for (auto &t : split(v))
				o.threads.push_back(atoi(t.c_str()));
		} else if (a == "--runs")
			o.runs = atoi(v);
		else if (a == "--ops")
			o.ops = strtoull(v, NULL, 0);
		else if (a == "--grow-ops")
			o.grow_ops = strtoull(v, NULL, 0);
		else if (a == "--csv")
			o.csv = v;
		else if (a == "--mem-csv")
			o.mem_csv = v;
		else if (a == "--state") {
			if (!parse_state(v, &o.state)) {
				fprintf(stderr, "unknown state %s\n", v);
				return 2;
			}
			o.state_given = true;
		} else {
			fprintf(stderr, "unknown option %s\n", a.c_str());
			return 2;
		}
	}
	rcu_register_thread();	/* main thread fills and destroys cds_lfht */
	if (o.kv == "u64")
		by_map<KV8>(o);
	else if (o.kv == "k32v64")
		by_map<KV32>(o);
	else {
		fprintf(stderr, "unknown kv %s\n", o.kv.c_str());
		return 2;
	}
	rcu_unregister_thread();
	return 0;
}
