// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * maps.h - one adapter per map under test, all with the same interface:
 *
 *   init(capacity)        capacity 0: the map's smallest/default size
 *   insert(k, v)          true when new (first value wins where possible)
 *   get(k, &out)          true when found; out = first word of the value
 *   remove(k)             true when removed
 *   update(k, v)          replace the value of a present key
 *   thread_enter/exit()   per worker thread (RCU registration)
 *   quiesce()             between runs, no thread in the map: reclaim
 *                         (the map's documented upkeep)
 *   settle()              no thread in the map: finish deferred frees only,
 *                         leave the map's layout as it is (the states of
 *                         bench/states.h are measured after this)
 *   destroy()
 *
 * and, from map_base unless the adapter says otherwise:
 *
 *   setup(max_cap, ksize) once per process before any map (DPDK's EAL)
 *   heap_bytes()          bytes the maps hold outside malloc (DPDK's heap)
 *   compact()             the exclusive compaction (anchormap_shrink_to_fit)
 *   get_bulk(keys, n, &s) n lookups in one call (kBulk), found values added to s
 *   refused()             inserts refused so far because the map was full
 *
 * kSharedWrites says whether several threads may write concurrently,
 * kSharedErase whether remove and update may (tbb::concurrent_unordered_map:
 * only inserts), kFixedCapacity that the map cannot grow (rte_hash: no
 * growth workloads, no "grown" state), kCompact that compact() exists.
 * Keys and values: KV8 (u64 -> u64) and KV32 (32-byte key, 64-byte value).
 */
#ifndef BENCH_MAPS_H
#define BENCH_MAPS_H

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <vector>

extern "C" {
#include "anchormap.h"
}
#include "selftests/am_testutil.h"

#include <absl/container/flat_hash_map.h>
#include <absl/hash/hash.h>
#include <libcuckoo/cuckoohash_map.hh>
extern "C" {
#include <ck_ht.h>
}

#define _LGPL_SOURCE 1
#include <urcu.h>
#include <urcu/rculfhash.h>

/*
 * GCC 12 sees the split-ordered list free a dummy node through its value
 * node type (concurrent_unordered_base::destroy_node, which checks
 * is_dummy() first) and warns in TBB's header.
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#include <oneapi/tbb/concurrent_hash_map.h>
#include <oneapi/tbb/concurrent_unordered_map.h>
#pragma GCC diagnostic pop

/* rte_rcu_qsbr_dq_* and rte_hash_rcu_qsbr_add() are experimental in 22.11 */
#define ALLOW_EXPERIMENTAL_API 1
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include <pthread.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * ---- keys and values ----
 *
 * Keys are scattered by am_tu_mix64() (selftests/am_testutil.h), an
 * invertible 64-bit finaliser: distinct inputs, distinct outputs.
 */

static inline uint64_t bench_fold(uint64_t a, uint64_t b)
{
	unsigned __int128 r = (unsigned __int128)a * b;

	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

struct k32 {
	uint64_t w[4];
	bool operator==(const k32 &o) const
	{
		return ((w[0] ^ o.w[0]) | (w[1] ^ o.w[1]) | (w[2] ^ o.w[2]) |
			(w[3] ^ o.w[3])) == 0;
	}
	template <typename H>
	friend H AbslHashValue(H h, const k32 &k)
	{
		return H::combine(std::move(h), k.w[0], k.w[1], k.w[2], k.w[3]);
	}
};

struct v64 {
	uint64_t w[8];
};

/*
 * The hash given to the maps that take one from the user (libcuckoo,
 * cds_lfht): a multiply-fold of the same cost class as anchormap's default
 * hash.  Abseil uses absl::Hash, ck_ht its built-in MurmurHash64.
 */
struct bench_hash {
	size_t operator()(uint64_t k) const
	{
		return bench_fold(k ^ 0x9e3779b97f4a7c15ULL, 0xd6e8feb86659fd93ULL);
	}
	size_t operator()(const k32 &k) const
	{
		uint64_t a = bench_fold(k.w[0] ^ 0x9e3779b97f4a7c15ULL,
					k.w[1] ^ 0xc2b2ae3d27d4eb4fULL);
		uint64_t b = bench_fold(k.w[2] ^ 0x165667b19e3779f9ULL,
					k.w[3] ^ 0xd6e8feb86659fd93ULL);

		return bench_fold(a ^ 0x9e3779b97f4a7c15ULL, b ^ 0xc2b2ae3d27d4eb4fULL);
	}
};

struct KV8 {
	typedef uint64_t K;
	typedef uint64_t V;
	static const char *name() { return "u64"; }
	static K key(uint64_t i) { return am_tu_mix64(i ^ 0x5bd1e9955bd1e995ULL); }
	static V value(const K &k) { return k + 1; }
	static uint64_t first(const V &v) { return v; }
	static uint64_t first_key(const K &k) { return k; }
};

struct KV32 {
	typedef k32 K;
	typedef v64 V;
	static const char *name() { return "k32v64"; }
	static K key(uint64_t i)
	{
		K k;

		k.w[0] = am_tu_mix64(i ^ 0x5bd1e9955bd1e995ULL);
		k.w[1] = am_tu_mix64(k.w[0] + 1);
		k.w[2] = am_tu_mix64(k.w[0] + 2);
		k.w[3] = am_tu_mix64(k.w[0] + 3);
		return k;
	}
	static V value(const K &k)
	{
		V v;

		for (int i = 0; i < 8; i++)
			v.w[i] = k.w[0] + 1 + i;
		return v;
	}
	static uint64_t first(const V &v) { return v.w[0]; }
	static uint64_t first_key(const K &k) { return k.w[0]; }
};

/* What most adapters share (see the top of this file). */
struct map_base {
	static const bool kFixedCapacity = false;
	static const bool kSharedErase = true;
	static const bool kBulk = false;
	static const bool kCompact = false;
	static void setup(size_t max_cap, size_t key_size) {}
	static long long heap_bytes() { return 0; }
	void settle() {}
	void compact() {}
	unsigned long refused() { return 0; }
};

/* ---- anchormap ---- */

/*
 * @Inline: lookups through anchormap_get_fast(), the header-inline path
 * (as a kernel user would call rhashtable_lookup_fast()); else through the
 * exported anchormap_get(), a library call ("anchormap_call").
 */
template <typename KV, bool Inline = true, bool Bulk = false> struct am_map : map_base {
	typedef typename KV::K K;
	typedef typename KV::V V;
	static const char *name()
	{
		return Bulk ? "anchormap_bulk" : Inline ? "anchormap" : "anchormap_call";
	}
	/* anchormap_bulk: runs of gets through anchormap_get_many_fast(), 32 at a time as rte_hash_bulk */
	static const bool kBulk = Bulk;
	static const unsigned kBulkMax = 32;
	static const bool kSharedWrites = true;
	static const bool kCompact = true;
	struct anchormap m;
	/* compile-time params, as for rhashtable_lookup_fast() */
	static constexpr struct anchormap_params params = {
		.key_size = sizeof(K), .value_size = sizeof(V), .value_align = 0,
		.flags = 0, .hash = nullptr, .equal = nullptr, .release = nullptr,
		.priv = nullptr, .name = "bench",
	};

	void init(size_t cap)
	{
		if (anchormap_init(&m, &params, cap))
			abort();
	}
	bool insert(const K &k, const V &v) { return anchormap_insert(&m, &k, &v) == 1; }
	__attribute__((always_inline)) bool get(const K &k, uint64_t *out)
	{
		const V *v = (const V *)(Inline ? anchormap_get_fast(&m, &k, params) :
					     anchormap_get(&m, &k));

		if (!v)
			return false;
		*out = KV::first(*v);
		return true;
	}
	unsigned get_bulk(const K *keys, unsigned n, uint64_t *sum)
	{
		const void *vals[kBulkMax];
		uint64_t s = 0;
		long found = anchormap_get_many_fast(&m, keys, n, vals, params);

		for (unsigned i = 0; i < n; i++)
			if (vals[i])
				s += KV::first(*(const V *)vals[i]);
		*sum += s;
		return found < 0 ? 0 : (unsigned)found;
	}
	bool remove(const K &k) { return anchormap_remove(&m, &k) == 1; }
	/* copy-on-write: the old value stays readable for whoever holds it */
	void update(const K &k, const V &v) { anchormap_replace(&m, &k, &v); }
	void thread_enter() {}
	void thread_exit() {}
	void quiesce()
	{
		struct anchormap_stats st;

		anchormap_stats(&m, &st);
		/*
		 * the documented upkeep, map quiesced: removed entries' storage
		 * and replaced indexes are freed only by an exclusive operation
		 */
		if (st.deleted * 4 > st.len || st.retired_bytes)
			anchormap_shrink_to_fit(&m);
	}
	void compact() { anchormap_shrink_to_fit(&m); }
	void destroy() { anchormap_destroy(&m); }
};

/* ---- Abseil flat_hash_map, no lock (single-threaded ceiling) ---- */

template <typename KV> struct absl_map : map_base {
	typedef typename KV::K K;
	typedef typename KV::V V;
	static const char *name() { return "absl"; }
	static const bool kSharedWrites = false;
	absl::flat_hash_map<K, V> *m;

	void init(size_t cap)
	{
		m = new absl::flat_hash_map<K, V>();
		if (cap)
			m->reserve(cap);
	}
	bool insert(const K &k, const V &v) { return m->emplace(k, v).second; }
	bool get(const K &k, uint64_t *out)
	{
		auto it = m->find(k);

		if (it == m->end())
			return false;
		*out = KV::first(it->second);
		return true;
	}
	bool remove(const K &k) { return m->erase(k) != 0; }
	void update(const K &k, const V &v)
	{
		auto it = m->find(k);

		if (it != m->end())
			it->second = v;
	}
	void thread_enter() {}
	void thread_exit() {}
	void quiesce() {}
	void destroy() { delete m; }
};

/* ---- Abseil flat_hash_map under std::shared_mutex ---- */

template <typename KV> struct absl_rw_map : map_base {
	typedef typename KV::K K;
	typedef typename KV::V V;
	static const char *name() { return "absl_rwlock"; }
	static const bool kSharedWrites = true;
	absl_map<KV> in;
	std::shared_mutex lock;

	void init(size_t cap) { in.init(cap); }
	bool insert(const K &k, const V &v)
	{
		std::unique_lock<std::shared_mutex> g(lock);

		return in.insert(k, v);
	}
	bool get(const K &k, uint64_t *out)
	{
		std::shared_lock<std::shared_mutex> g(lock);

		return in.get(k, out);
	}
	bool remove(const K &k)
	{
		std::unique_lock<std::shared_mutex> g(lock);

		return in.remove(k);
	}
	void update(const K &k, const V &v)
	{
		std::unique_lock<std::shared_mutex> g(lock);

		in.update(k, v);
	}
	void thread_enter() {}
	void thread_exit() {}
	void quiesce() {}
	void destroy() { in.destroy(); }
};

/* ---- libcuckoo ---- */

template <typename KV> struct cuckoo_map : map_base {
	typedef typename KV::K K;
	typedef typename KV::V V;
	static const char *name() { return "libcuckoo"; }
	static const bool kSharedWrites = true;
	libcuckoo::cuckoohash_map<K, V, bench_hash> *m;

	void init(size_t cap)
	{
		/*
	 * 0: a small table.  Smaller than 2^10 slots, libcuckoo 0.3.1 crashed
	 * here under concurrent growth with 32-byte keys (slot_search).
	 */
	static const size_t kTiny = 1024;
		m = new libcuckoo::cuckoohash_map<K, V, bench_hash>(cap ? cap : kTiny);
	}
	bool insert(const K &k, const V &v) { return m->insert(k, v); }
	bool get(const K &k, uint64_t *out)
	{
		return m->find_fn(k, [out](const V &v) { *out = KV::first(v); });
	}
	bool remove(const K &k) { return m->erase(k); }
	void update(const K &k, const V &v) { m->update(k, v); }
	void thread_enter() {}
	void thread_exit() {}
	void quiesce() {}
	void destroy() { delete m; }
};

/* ---- Concurrency Kit ck_ht: one writer mutex, lock-free readers ---- */

/*
 * Memory ck_ht frees with defer=true (old tables after growth) and the
 * nodes of removed or replaced 32-byte entries may still be read by
 * concurrent readers: they wait here until quiesce() (an epoch where no
 * reader runs), which is what an SMR scheme (ck_epoch) would do later.
 */
struct ck_deferred {
	std::mutex lock;
	std::vector<void *> ptrs;
	void add(void *p)
	{
		std::lock_guard<std::mutex> g(lock);

		ptrs.push_back(p);
	}
	void flush()
	{
		std::lock_guard<std::mutex> g(lock);

		for (void *p : ptrs)
			free(p);
		ptrs.clear();
	}
};

extern ck_deferred ck_defer;

static void *ck_bench_malloc(size_t n) { return malloc(n); }
static void ck_bench_free(void *p, size_t n, bool defer)
{
	(void)n;
	if (defer)
		ck_defer.add(p);
	else
		free(p);
}
static void *ck_bench_realloc(void *p, size_t o, size_t n, bool defer)
{
	(void)o;
	(void)defer;
	return realloc(p, n);
}
static struct ck_malloc ck_bench_allocator = {
	ck_bench_malloc, ck_bench_realloc, ck_bench_free,
};

template <typename KV> struct ck_map;

/* What both key kinds share: one table, one mutex for all writers. */
struct ck_common : map_base {
	static const char *name() { return "ck_ht"; }
	static const bool kSharedWrites = true;
	ck_ht_t ht;
	std::mutex wlock;

	void init_mode(size_t cap, unsigned int mode)
	{
		/* ck_ht keeps its load at most 1/2: capacity 2n holds n */
		if (!ck_ht_init(&ht, mode, NULL, &ck_bench_allocator, cap ? 2 * cap : 16, 0x1234))
			abort();
	}
	void thread_enter() {}
	void thread_exit() {}
	void quiesce() { ck_defer.flush(); }	/* puts reuse tombstones */
	void settle() { ck_defer.flush(); }
};

/* u64 keys: CK_HT_MODE_DIRECT, key and value stored in the table. */
template <> struct ck_map<KV8> : ck_common {
	typedef uint64_t K;
	typedef uint64_t V;

	void init(size_t cap) { init_mode(cap, CK_HT_MODE_DIRECT); }
	bool insert(const K &k, const V &v)
	{
		ck_ht_hash_t h;
		ck_ht_entry_t e;

		ck_ht_hash_direct(&h, &ht, k);
		ck_ht_entry_set_direct(&e, h, k, v);
		std::lock_guard<std::mutex> g(wlock);
		return ck_ht_put_spmc(&ht, h, &e);
	}
	bool get(const K &k, uint64_t *out)
	{
		ck_ht_hash_t h;
		ck_ht_entry_t e;

		ck_ht_hash_direct(&h, &ht, k);
		ck_ht_entry_key_set_direct(&e, k);
		if (!ck_ht_get_spmc(&ht, h, &e))
			return false;
		*out = ck_ht_entry_value_direct(&e);
		return true;
	}
	bool remove(const K &k)
	{
		ck_ht_hash_t h;
		ck_ht_entry_t e;

		ck_ht_hash_direct(&h, &ht, k);
		ck_ht_entry_key_set_direct(&e, k);
		std::lock_guard<std::mutex> g(wlock);
		return ck_ht_remove_spmc(&ht, h, &e);
	}
	void update(const K &k, const V &v)
	{
		ck_ht_hash_t h;
		ck_ht_entry_t e;

		ck_ht_hash_direct(&h, &ht, k);
		ck_ht_entry_key_set_direct(&e, k);
		std::lock_guard<std::mutex> g(wlock);
		if (!ck_ht_get_spmc(&ht, h, &e))
			return;
		ck_ht_entry_set_direct(&e, h, k, v);
		ck_ht_set_spmc(&ht, h, &e);
	}
	void destroy()
	{
		ck_ht_destroy(&ht);
		ck_defer.flush();
	}
};

/* 32-byte keys: CK_HT_MODE_BYTESTRING, the table points at a node. */
template <> struct ck_map<KV32> : ck_common {
	typedef k32 K;
	typedef v64 V;
	struct node {
		K k;
		V v;
	};

	void init(size_t cap) { init_mode(cap, CK_HT_MODE_BYTESTRING); }
	bool insert(const K &k, const V &v)
	{
		ck_ht_hash_t h;
		ck_ht_entry_t e;
		node *n = (node *)malloc(sizeof(*n));
		bool ok;

		n->k = k;
		n->v = v;
		ck_ht_hash(&h, &ht, &n->k, sizeof(K));
		ck_ht_entry_set(&e, h, &n->k, sizeof(K), n);
		{
			std::lock_guard<std::mutex> g(wlock);
			ok = ck_ht_put_spmc(&ht, h, &e);
		}
		if (!ok)
			free(n);	/* never published */
		return ok;
	}
	bool get(const K &k, uint64_t *out)
	{
		ck_ht_hash_t h;
		ck_ht_entry_t e;

		ck_ht_hash(&h, &ht, &k, sizeof(K));
		ck_ht_entry_key_set(&e, &k, sizeof(K));
		if (!ck_ht_get_spmc(&ht, h, &e))
			return false;
		*out = ((node *)ck_ht_entry_value(&e))->v.w[0];
		return true;
	}
	bool remove(const K &k)
	{
		ck_ht_hash_t h;
		ck_ht_entry_t e;

		ck_ht_hash(&h, &ht, &k, sizeof(K));
		ck_ht_entry_key_set(&e, &k, sizeof(K));
		std::lock_guard<std::mutex> g(wlock);
		if (!ck_ht_remove_spmc(&ht, h, &e))
			return false;
		ck_defer.add(ck_ht_entry_value(&e));
		return true;
	}
	void update(const K &k, const V &v)
	{
		ck_ht_hash_t h;
		ck_ht_entry_t e;
		node *old, *n;

		ck_ht_hash(&h, &ht, &k, sizeof(K));
		ck_ht_entry_key_set(&e, &k, sizeof(K));
		std::lock_guard<std::mutex> g(wlock);
		if (!ck_ht_get_spmc(&ht, h, &e))
			return;
		old = (node *)ck_ht_entry_value(&e);
		n = (node *)malloc(sizeof(*n));
		n->k = k;
		n->v = v;
		ck_ht_entry_set(&e, h, &n->k, sizeof(K), n);
		ck_ht_set_spmc(&ht, h, &e);
		ck_defer.add(old);
	}
	void destroy()
	{
		ck_ht_iterator_t it;
		ck_ht_entry_t *e;

		ck_ht_iterator_init(&it);
		while (ck_ht_next(&ht, &it, &e))
			free(ck_ht_entry_value(e));
		ck_ht_destroy(&ht);
		ck_defer.flush();
	}
};

/* ---- liburcu cds_lfht ---- */

template <typename KV> struct lfht_map : map_base {
	typedef typename KV::K K;
	typedef typename KV::V V;
	struct node {
		struct cds_lfht_node ln;
		struct rcu_head rcu;
		K k;
		V v;
	};
	static const char *name() { return "cds_lfht"; }
	static const bool kSharedWrites = true;
	struct cds_lfht *ht;

	static int match(struct cds_lfht_node *ln, const void *key)
	{
		return caa_container_of(ln, node, ln)->k == *(const K *)key;
	}
	static void free_node(struct rcu_head *h)
	{
		free(caa_container_of(h, node, rcu));
	}
	void init(size_t cap)
	{
		/*
		 * 0: 1024 buckets.  From 1 bucket, growth by the lazy resize
		 * worker fell so far behind 1M inserts (chains of thousands)
		 * that one rapid-grow run took minutes.
		 */
		unsigned long sz = 1024;

		while (sz < cap)
			sz <<= 1;
		ht = cds_lfht_new(sz, 1, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING, NULL);
		if (!ht)
			abort();
	}
	bool insert(const K &k, const V &v)
	{
		node *n = (node *)malloc(sizeof(*n));
		struct cds_lfht_node *ret;

		n->k = k;
		n->v = v;
		cds_lfht_node_init(&n->ln);
		rcu_read_lock();
		ret = cds_lfht_add_unique(ht, bench_hash()(k), match, &n->k, &n->ln);
		rcu_read_unlock();
		if (ret != &n->ln) {
			free(n);	/* never published */
			return false;
		}
		return true;
	}
	bool get(const K &k, uint64_t *out)
	{
		struct cds_lfht_iter it;
		struct cds_lfht_node *ln;
		bool found = false;

		rcu_read_lock();
		cds_lfht_lookup(ht, bench_hash()(k), match, &k, &it);
		ln = cds_lfht_iter_get_node(&it);
		if (ln) {
			*out = KV::first(caa_container_of(ln, node, ln)->v);
			found = true;
		}
		rcu_read_unlock();
		return found;
	}
	bool remove(const K &k)
	{
		struct cds_lfht_iter it;
		struct cds_lfht_node *ln;
		bool done = false;

		rcu_read_lock();
		cds_lfht_lookup(ht, bench_hash()(k), match, &k, &it);
		ln = cds_lfht_iter_get_node(&it);
		if (ln && !cds_lfht_del(ht, ln)) {
			call_rcu(&caa_container_of(ln, node, ln)->rcu, free_node);
			done = true;
		}
		rcu_read_unlock();
		return done;
	}
	void update(const K &k, const V &v)
	{
		struct cds_lfht_iter it;
		struct cds_lfht_node *ln;
		size_t h = bench_hash()(k);

		rcu_read_lock();
		cds_lfht_lookup(ht, h, match, &k, &it);
		ln = cds_lfht_iter_get_node(&it);
		if (ln) {
			node *n = (node *)malloc(sizeof(*n));

			n->k = k;
			n->v = v;
			cds_lfht_node_init(&n->ln);
			if (!cds_lfht_replace(ht, &it, h, match, &n->k, &n->ln))
				call_rcu(&caa_container_of(ln, node, ln)->rcu, free_node);
			else
				free(n);
		}
		rcu_read_unlock();
	}
	void thread_enter() { rcu_register_thread(); }
	void thread_exit() { rcu_unregister_thread(); }
	void quiesce() { rcu_barrier(); }
	void settle() { rcu_barrier(); }
	void destroy()
	{
		struct cds_lfht_iter it;
		struct cds_lfht_node *ln;

		rcu_read_lock();
		cds_lfht_first(ht, &it);
		while ((ln = cds_lfht_iter_get_node(&it)) != NULL) {
			cds_lfht_next(ht, &it);
			if (!cds_lfht_del(ht, ln))
				call_rcu(&caa_container_of(ln, node, ln)->rcu, free_node);
		}
		rcu_read_unlock();
		rcu_barrier();
		cds_lfht_destroy(ht, NULL);
	}
};

/* ---- oneTBB 2021.8: concurrent_hash_map, concurrent_unordered_map ---- */

/*
 * Both take the user's hash (bench_hash, as libcuckoo and cds_lfht do) and
 * std::allocator: TBB's default tbb_allocator goes to libtbbmalloc when it
 * is installed, past the bench's malloc counting (memcount.h).
 */
template <typename K> struct tbb_hash_compare {
	size_t hash(const K &k) const { return bench_hash()(k); }
	bool equal(const K &a, const K &b) const { return a == b; }
};

/*
 * tbb::concurrent_hash_map: every access goes through an accessor, a
 * per-element reader-writer lock held while the value is read (const_accessor)
 * or written (accessor); erase takes the element's write lock and frees it.
 */
template <typename KV> struct tbb_hm_map : map_base {
	typedef typename KV::K K;
	typedef typename KV::V V;
	typedef tbb::concurrent_hash_map<K, V, tbb_hash_compare<K>,
					 std::allocator<std::pair<const K, V>>> map_t;
	static const char *name() { return "tbb_hash_map"; }
	static const bool kSharedWrites = true;
	map_t *m;

	void init(size_t cap) { m = cap ? new map_t(cap) : new map_t(); }
	bool insert(const K &k, const V &v) { return m->insert(typename map_t::value_type(k, v)); }
	bool get(const K &k, uint64_t *out)
	{
		typename map_t::const_accessor a;

		if (!m->find(a, k))
			return false;
		*out = KV::first(a->second);
		return true;
	}
	bool remove(const K &k) { return m->erase(k); }
	void update(const K &k, const V &v)
	{
		typename map_t::accessor a;

		if (m->find(a, k))
			a->second = v;
	}
	void thread_enter() {}
	void thread_exit() {}
	void quiesce() {}
	void destroy() { delete m; }
};

/*
 * tbb::concurrent_unordered_map: a split-ordered list; insert and find are
 * safe beside each other and nodes never move, but erase is unsafe_erase()
 * (no other thread may use the map meanwhile) and a value is the caller's
 * to synchronise.  So remove and update run single-threaded only
 * (kSharedErase): the mixes that contain them are skipped with 2+ threads.
 */
template <typename KV> struct tbb_um_map : map_base {
	typedef typename KV::K K;
	typedef typename KV::V V;
	typedef tbb::concurrent_unordered_map<K, V, bench_hash, std::equal_to<K>,
					      std::allocator<std::pair<const K, V>>> map_t;
	static const char *name() { return "tbb_unordered_map"; }
	static const bool kSharedWrites = true;	/* inserts */
	static const bool kSharedErase = false;
	map_t *m;

	void init(size_t cap) { m = cap ? new map_t(cap) : new map_t(); }
	bool insert(const K &k, const V &v) { return m->insert(typename map_t::value_type(k, v)).second; }
	bool get(const K &k, uint64_t *out)
	{
		auto it = m->find(k);

		if (it == m->end())
			return false;
		*out = KV::first(it->second);
		return true;
	}
	bool remove(const K &k) { return m->unsafe_erase(k) != 0; }
	void update(const K &k, const V &v)
	{
		auto it = m->find(k);

		if (it != m->end())
			it->second = v;
	}
	void thread_enter() {}
	void thread_exit() {}
	void quiesce() {}
	void destroy() { delete m; }
};

/* ---- DPDK 22.11 rte_hash ---- */

/*
 * rte_hash has a fixed capacity: `entries` key slots, chosen at creation.
 * A map made for cap gets 1/8 more, since the mixes' size drifts above n
 * and a removed key's slot comes back only after a grace period.
 */
static inline uint32_t rte_entries(size_t cap)
{
	return (uint32_t)(cap + cap / 8 + 64);
}

static inline uint64_t rte_pow2(uint64_t x)
{
	uint64_t p = 1;

	while (p < x)
		p <<= 1;
	return p;
}

/*
 * The EAL, once per process, before any map: no hugepages, no PCI scan, no
 * shared config files, no telemetry; its runtime folder beside the binary
 * (build/bench/dpdk-run/dpdk/PREFIX, through RUNTIME_DIRECTORY) instead of
 * /var/run, with a file prefix per process.  Its heap (-m, mapped lazily)
 * is sized for the largest map the process makes.  rte_eal_init() pins the
 * calling thread to the main lcore's CPU: the affinity is put back after,
 * or every worker thread would inherit that one CPU.
 */
static char rte_env_prefix_dir[4200];

static void rte_env_exit(void)
{
	rte_eal_cleanup();
	rmdir(rte_env_prefix_dir);	/* empty with --no-shconf */
}

static void rte_env_init(size_t max_cap, size_t key_size)
{
	static bool done;
	char dir[4096], mb[32], prefix[64], lcore[16];
	const char *run;
	ssize_t len;
	cpu_set_t cpus;
	uint64_t e, p, bytes;
	int cpu = 0;

	if (done)
		return;
	done = true;
	len = readlink("/proc/self/exe", dir, sizeof(dir) - 16);
	if (len <= 0)
		abort();
	dir[len] = 0;
	*strrchr(dir, '/') = 0;
	strcat(dir, "/dpdk-run");
	mkdir(dir, 0755);
	if (!getenv("RUNTIME_DIRECTORY"))
		setenv("RUNTIME_DIRECTORY", dir, 1);
	run = getenv("RUNTIME_DIRECTORY");
	snprintf(prefix, sizeof(prefix), "ambench-%d", (int)getpid());
	snprintf(rte_env_prefix_dir, sizeof(rte_env_prefix_dir), "%s/dpdk/%s", run, prefix);

	/*
	 * Heap: buckets (8 bytes a slot, slots a power of two), key store,
	 * free-slot ring, the RCU defer queues (16 bytes an element, rings a
	 * power of two), bounded from above; plus 64 MB for the rest.
	 */
	e = rte_entries(max_cap) + (RTE_MAX_LCORE - 1) * 63 + 1;
	p = rte_pow2(e + 1);
	bytes = 8 * p + e * ((8 + key_size + 15) / 16 * 16) + 4 * p + 2 * 16 * p;
	snprintf(mb, sizeof(mb), "%llu", (unsigned long long)(bytes / 15 * 16 >> 20) + 64);

	if (sched_getaffinity(0, sizeof(cpus), &cpus))
		abort();
	while (cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &cpus))
		cpu++;
	snprintf(lcore, sizeof(lcore), "%d", cpu);
	const char *argv[] = {
		"ambench", "--no-huge", "--no-pci", "--no-shconf", "--no-telemetry",
		"-l", lcore, "-m", mb, "--file-prefix", prefix, "--log-level", "error",
		/* a full defer queue is handled (see rte_map) */
		"--log-level", "lib.rcu:critical",
	};
	if (rte_eal_init((int)(sizeof(argv) / sizeof(argv[0])), (char **)argv) < 0) {
		fprintf(stderr, "rte_eal_init: %s\n", rte_strerror(rte_errno));
		exit(1);
	}
	if (sched_setaffinity(0, sizeof(cpus), &cpus))
		abort();
	atexit(rte_env_exit);
}

/* bench_hash, folded to the 32 bits rte_hash takes */
template <typename K> static uint32_t rte_bench_hash(const void *key, uint32_t len, uint32_t init)
{
	uint64_t h = bench_hash()(*(const K *)key);

	(void)len;
	(void)init;
	return (uint32_t)(h ^ (h >> 32));
}

/*
 * rte_hash with lock-free readers (RW_CONCURRENCY_LF) and several writers
 * (MULTI_WRITER_ADD: per-lcore caches of free key slots; writers still take
 * one table-wide lock inside).  Removed keys go back through the library's
 * RCU QSBR defer queue (rte_hash_rcu_qsbr_add, default size: one element per
 * key slot): every worker thread is registered (rte_thread_register, then
 * a QSBR reader) and reports a quiescent state after each operation, having
 * copied the value out.  The main thread, which fills and tears down while
 * no worker runs, is not a QSBR reader.
 *
 * Data: a u64 value is the data pointer itself; a 64-byte value sits in a
 * malloc'ed node that the defer queue frees (removed) or a second defer
 * queue on the same QSBR variable (replaced by update).  When a reader is
 * preempted (4 threads on 2 CPUs) grace periods stall; a replaced node that
 * finds that queue full waits in a list until settle().  Removed keys' slots
 * wait in the library's queue, and an insert that finds no free slot is
 * refused (-ENOSPC): counted, and reported by ambench as a warning.
 *
 * rte_hash_add_key_data() overwrites a present key's data, and there is no
 * insert-if-absent or update-if-present: insert is a lookup and an add,
 * update a lookup and an add, and 64 stripe mutexes (by hash) keep two
 * writers of one key from interleaving them.
 *
 * Bulk: rte_hash_bulk looks up runs of consecutive gets, up to 32 at a
 * time, with rte_hash_lookup_bulk_data(); everything else is rte_hash.
 */
template <typename KV, bool Bulk = false> struct rte_map : map_base {
	typedef typename KV::K K;
	typedef typename KV::V V;
	static const bool kInline = sizeof(V) <= sizeof(void *);
	static const unsigned kBulkMax = 32;
	static const char *name() { return Bulk ? "rte_hash_bulk" : "rte_hash"; }
	static const bool kSharedWrites = true;
	static const bool kFixedCapacity = true;
	static const bool kBulk = Bulk;
	static inline thread_local unsigned qid = ~0u;	/* QSBR reader id: the lcore */
	struct node {
		V v;
	};
	struct rte_hash *h;
	struct rte_rcu_qsbr *qv;
	struct rte_rcu_qsbr_dq *replaced;
	std::mutex stripe[64];
	std::atomic<unsigned long> nrefused;
	std::mutex late_lock;
	std::vector<void *> late;	/* replaced nodes the full queue did not take */

	static void setup(size_t max_cap, size_t key_size) { rte_env_init(max_cap, key_size); }
	static long long heap_bytes()
	{
		struct rte_malloc_socket_stats st;

		if (rte_malloc_get_socket_stats((int)rte_socket_id(), &st))
			return 0;
		return (long long)st.heap_allocsz_bytes;
	}
	static void free_data(void *p, void *data)
	{
		(void)p;
		free(data);
	}
	static void free_replaced(void *p, void *e, unsigned int n)
	{
		(void)p;
		for (unsigned int i = 0; i < n; i++)
			free(((void **)e)[i]);
	}
	static void *make(const V &v)
	{
		node *n;

		if (kInline) {
			uint64_t x = KV::first(v);

			return (void *)(uintptr_t)x;
		}
		n = (node *)malloc(sizeof(*n));
		n->v = v;
		return n;
	}
	static uint64_t value(void *d)
	{
		return kInline ? (uint64_t)(uintptr_t)d : KV::first(((node *)d)->v);
	}
	std::mutex &stripe_of(const K &k) { return stripe[bench_hash()(k) >> 58]; }
	void quiescent()
	{
		if (qid != ~0u)
			rte_rcu_qsbr_quiescent(qv, qid);
	}

	void init(size_t cap)
	{
		static unsigned seq;
		char name[32], vname[32];
		struct rte_hash_parameters p = {};
		struct rte_hash_rcu_config rc = {};
		struct rte_rcu_qsbr_dq_parameters dp = {};

		snprintf(name, sizeof(name), "b%u", seq);
		snprintf(vname, sizeof(vname), "v%u", seq++);
		p.name = name;
		p.entries = rte_entries(cap);
		p.key_len = sizeof(K);
		p.hash_func = rte_bench_hash<K>;
		p.socket_id = (int)rte_socket_id();
		p.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF |
			       RTE_HASH_EXTRA_FLAGS_MULTI_WRITER_ADD;
		h = rte_hash_create(&p);
		qv = (struct rte_rcu_qsbr *)rte_zmalloc(NULL, rte_rcu_qsbr_get_memsize(RTE_MAX_LCORE),
						       RTE_CACHE_LINE_SIZE);
		if (!h || !qv || rte_rcu_qsbr_init(qv, RTE_MAX_LCORE)) {
			fprintf(stderr, "rte_hash: %s\n", rte_strerror(rte_errno));
			abort();
		}
		rc.v = qv;
		rc.mode = RTE_HASH_QSBR_MODE_DQ;
		rc.free_key_data_func = kInline ? NULL : free_data;
		if (rte_hash_rcu_qsbr_add(h, &rc)) {
			fprintf(stderr, "rte_hash_rcu_qsbr_add: %s\n", rte_strerror(rte_errno));
			abort();
		}
		replaced = NULL;
		if (!kInline) {
			dp.name = vname;
			dp.size = std::max<uint32_t>(p.entries, 1 << 16);
			dp.esize = sizeof(void *);
			dp.max_reclaim_size = 32;
			dp.free_fn = free_replaced;
			dp.v = qv;
			replaced = rte_rcu_qsbr_dq_create(&dp);
			if (!replaced)
				abort();
		}
		nrefused = 0;
	}
	unsigned long refused() { return nrefused; }
	bool insert(const K &k, const V &v)
	{
		std::lock_guard<std::mutex> g(stripe_of(k));
		bool added = false;
		void *d;

		if (rte_hash_lookup_data(h, &k, &d) < 0) {
			d = make(v);
			added = rte_hash_add_key_data(h, &k, d) == 0;
			if (!added) {
				if (!kInline)
					free(d);	/* never published */
				nrefused++;
			}
		}
		quiescent();
		return added;
	}
	bool get(const K &k, uint64_t *out)
	{
		void *d;
		bool found = rte_hash_lookup_data(h, &k, &d) >= 0;

		if (found)
			*out = value(d);
		quiescent();
		return found;
	}
	unsigned get_bulk(const K *keys, unsigned n, uint64_t *sum)
	{
		const void *kp[kBulkMax];
		void *d[kBulkMax];
		uint64_t hits = 0, s = 0, m;

		for (unsigned i = 0; i < n; i++)
			kp[i] = &keys[i];
		rte_hash_lookup_bulk_data(h, kp, n, &hits, d);
		for (m = hits; m; m &= m - 1)
			s += value(d[__builtin_ctzll(m)]);
		*sum += s;
		quiescent();
		return (unsigned)__builtin_popcountll(hits);
	}
	bool remove(const K &k)
	{
		std::lock_guard<std::mutex> g(stripe_of(k));
		bool removed = rte_hash_del_key(h, &k) >= 0;	/* data freed after a grace period */

		quiescent();
		return removed;
	}
	void update(const K &k, const V &v)
	{
		std::lock_guard<std::mutex> g(stripe_of(k));
		void *old;

		if (rte_hash_lookup_data(h, &k, &old) >= 0) {
			rte_hash_add_key_data(h, &k, make(v));	/* present: replaces */
			if (!kInline && rte_rcu_qsbr_dq_enqueue(replaced, &old)) {
				std::lock_guard<std::mutex> lg(late_lock);

				late.push_back(old);
			}
		}
		quiescent();
	}
	void thread_enter()
	{
		if (rte_thread_register()) {
			fprintf(stderr, "rte_thread_register: %s\n", rte_strerror(rte_errno));
			abort();
		}
		qid = rte_lcore_id();
		rte_rcu_qsbr_thread_register(qv, qid);
		rte_rcu_qsbr_thread_online(qv, qid);
	}
	void thread_exit()
	{
		rte_rcu_qsbr_thread_offline(qv, qid);
		rte_rcu_qsbr_thread_unregister(qv, qid);
		qid = ~0u;
		rte_thread_unregister();
	}
	/* no reader online: what waits in the defer queue for values can go */
	void settle()
	{
		if (replaced)
			rte_rcu_qsbr_dq_reclaim(replaced, ~0u, NULL, NULL, NULL);
		for (void *p : late)
			free(p);
		late.clear();
	}
	void quiesce() { settle(); }
	void destroy()
	{
		const void *k;
		void *d;
		uint32_t it = 0;

		if (!kInline)
			while (rte_hash_iterate(h, &k, &d, &it) >= 0)
				free(d);
		rte_hash_free(h);	/* its defer queue frees the removed keys' data */
		settle();
		if (replaced)
			rte_rcu_qsbr_dq_delete(replaced);
		replaced = NULL;
		rte_free(qv);
	}
};

#endif /* BENCH_MAPS_H */
