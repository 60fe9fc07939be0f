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
 *   destroy()
 *
 * kSharedWrites says whether several threads may write concurrently.
 * Keys and values: KV8 (u64 -> u64) and KV32 (32-byte key, 64-byte value).
 */
#ifndef BENCH_MAPS_H
#define BENCH_MAPS_H

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <vector>

extern "C" {
#include "anchormap.h"
}

#include <absl/container/flat_hash_map.h>
#include <absl/hash/hash.h>
#include <libcuckoo/cuckoohash_map.hh>
extern "C" {
#include <ck_ht.h>
}

#define _LGPL_SOURCE 1
#include <urcu.h>
#include <urcu/rculfhash.h>

/* ---- keys and values ---- */

static inline uint64_t bench_mix64(uint64_t x)
{
	/* an invertible 64-bit finalizer: distinct inputs, distinct outputs */
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ULL;
	x ^= x >> 27;
	x *= 0x81dadef4bc2dd44dULL;
	x ^= x >> 33;
	return x;
}

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
	static K key(uint64_t i) { return bench_mix64(i ^ 0x5bd1e9955bd1e995ULL); }
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

		k.w[0] = bench_mix64(i ^ 0x5bd1e9955bd1e995ULL);
		k.w[1] = bench_mix64(k.w[0] + 1);
		k.w[2] = bench_mix64(k.w[0] + 2);
		k.w[3] = bench_mix64(k.w[0] + 3);
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

/* ---- anchormap ---- */

/*
 * @Inline: lookups through anchormap_get_fast(), the header-inline path
 * (as a kernel user would call rhashtable_lookup_fast()); else through the
 * exported anchormap_get(), a library call ("anchormap_call").
 */
template <typename KV, bool Inline = true> struct am_map {
	typedef typename KV::K K;
	typedef typename KV::V V;
	static const char *name() { return Inline ? "anchormap" : "anchormap_call"; }
	static const bool kSharedWrites = true;
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
	bool remove(const K &k) { return anchormap_remove(&m, &k) == 1; }
	/* values are immutable while the map is shared: "update" reads */
	void update(const K &k, const V &v)
	{
		uint64_t x;

		(void)v;
		get(k, &x);
	}
	void thread_enter() {}
	void thread_exit() {}
	void quiesce()
	{
		struct anchormap_stats st;

		anchormap_stats(&m, &st);
		/* the documented upkeep for remove-heavy use, map quiesced */
		if (st.deleted * 4 > st.len || st.segments > 1)
			anchormap_shrink_to_fit(&m);
	}
	void destroy() { anchormap_destroy(&m); }
};

/* ---- Abseil flat_hash_map, no lock (single-threaded ceiling) ---- */

template <typename KV> struct absl_map {
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

template <typename KV> struct absl_rw_map {
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

template <typename KV> struct cuckoo_map {
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
struct ck_common {
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

template <typename KV> struct lfht_map {
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

#endif /* BENCH_MAPS_H */
