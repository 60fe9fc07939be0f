// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * libFuzzer target: the input is a sequence of map operations, each checked
 * against a plain reference model (an array indexed by key), with walks
 * and snapshot round trips between operations and shared writes inside
 * walks, values often from a small pool (re-inserts of the very bytes removed).  Pointers
 * returned earlier are kept and re-read after every shared operation: the
 * map promises they stay valid and unchanged until an exclusive one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anchormap.h"
#include "fuzz_check.h"

#define KEYS	256
#define HELD	64

struct model {
	bool present[KEYS];
	u32 value[KEYS];
	size_t len;
};

/* The model's side of an insert of @k (a no-op if present) and of a removal. */
static void model_add(struct model *m, u64 k, u32 v)
{
	if (!m->present[k]) {
		m->present[k] = true;
		m->value[k] = v;
		m->len++;
	}
}

static void model_del(struct model *m, u64 k)
{
	if (m->present[k]) {
		m->present[k] = false;
		m->len--;
	}
}

struct held {
	const u64 *key;
	const u32 *value;
	u64 k;
	u32 v;
};

struct state {
	struct anchormap map;
	struct model m;
	struct held held[HELD];
	int nheld;
	const u8 *in;
	size_t left;
};

static u8 next_byte(struct state *s)
{
	if (!s->left)
		return 0;
	s->left--;
	return *s->in++;
}

static u32 next_u32(struct state *s)
{
	u32 v = next_byte(s);

	v |= (u32)next_byte(s) << 8;
	return v | (u32)next_byte(s) << 16;
}

static void hold(struct state *s, const void *key, const void *value)
{
	struct held *h = &s->held[s->nheld++ % HELD];

	h->key = key;
	h->value = value;
	memcpy(&h->k, key, sizeof(h->k));
	memcpy(&h->v, value, sizeof(h->v));
}

/* Shared operations never move or change what a held pointer sees. */
static void check_held(struct state *s)
{
	int i, n = s->nheld < HELD ? s->nheld : HELD;

	for (i = 0; i < n; i++)
		CHECK(*s->held[i].key == s->held[i].k && *s->held[i].value == s->held[i].v);
}

/* Exclusive operations end the life of every pointer. */
static void drop_held(struct state *s)
{
	s->nheld = 0;
}

static void check_all(struct state *s)
{
	struct anchormap_iter it;
	const void *k, *v;
	bool seen[KEYS] = { false };
	size_t n = 0;

	anchormap_for_each(&s->map, &it, &k, &v) {
		u64 key = *(const u64 *)k;

		CHECK(key < KEYS && s->m.present[key] && !seen[key]);
		CHECK(*(const u32 *)v == s->m.value[key]);
		seen[key] = true;
		n++;
	}
	CHECK(n == s->m.len && anchormap_len(&s->map) == n);
}

static bool keep_odd_or(const void *key, void *value, void *arg)
{
	u64 k = *(const u64 *)key;

	return (k & 1) || k < *(u8 *)arg;
}

static void add_one(void *value, const void *key, void *arg)
{
	(*(u32 *)value)++;
}

static void op_insert(struct state *s, u64 k, u32 v)
{
	int ret;

	anchormap_debug_fail_nth(next_byte(s) & 3);	/* 0: no injection */
	ret = anchormap_insert(&s->map, &k, &v);
	anchormap_debug_fail_nth(0);
	if (ret == -ENOMEM) {
		CHECK(anchormap_contains_key(&s->map, &k) == s->m.present[k]);
		return;
	}
	CHECK(ret == (s->m.present[k] ? 0 : 1));
	if (ret == 1)
		model_add(&s->m, k, v);
	hold(s, &k, &v);	/* replaced right away by the stored pointers */
	s->nheld--;
	hold(s, anchormap_get_key_value(&s->map, &k, NULL), anchormap_get(&s->map, &k));
}

static void op_get_or_insert(struct state *s, u64 k, u32 v)
{
	const u32 *got = anchormap_get_or_insert(&s->map, &k, &v);

	if (IS_ERR(got)) {
		CHECK(PTR_ERR(got) == -ENOMEM);
		return;
	}
	model_add(&s->m, k, v);
	CHECK(*got == s->m.value[k]);
}

static void op_remove(struct state *s, u64 k)
{
	CHECK(anchormap_remove(&s->map, &k) == (s->m.present[k] ? 1 : 0));
	model_del(&s->m, k);
}

static void op_entry(struct state *s, u64 k, u32 v)
{
	struct anchormap_entry e;
	u32 *val;

	drop_held(s);
	CHECK(anchormap_entry(&s->map, &k, &e) == &e);
	CHECK(anchormap_entry_is_occupied(&e) == s->m.present[k]);
	anchormap_entry_and_modify(&e, add_one, NULL);
	if (s->m.present[k])
		s->m.value[k]++;
	val = anchormap_entry_or_insert(&e, &v);
	if (IS_ERR(val))
		return;
	model_add(&s->m, k, v);
	CHECK(*val == s->m.value[k]);
}

static void op_remove_entry(struct state *s, u64 k)
{
	u64 ko = 0;
	u32 vo = 0;

	drop_held(s);
	CHECK(anchormap_remove_entry(&s->map, &k, &ko, &vo) == (s->m.present[k] ? 1 : 0));
	if (s->m.present[k]) {
		CHECK(ko == k && vo == s->m.value[k]);
		model_del(&s->m, k);
	}
}

static void op_retain(struct state *s, u8 below)
{
	u64 k;

	drop_held(s);
	anchormap_retain(&s->map, keep_odd_or, &below);
	for (k = 0; k < KEYS; k++) {
		if (!(k & 1) && k >= below)
			model_del(&s->m, k);
	}
}

static void op_clone(struct state *s)
{
	struct anchormap copy;
	int ret;

	anchormap_debug_fail_nth(next_byte(s) & 3);
	ret = anchormap_clone(&copy, &s->map);
	anchormap_debug_fail_nth(0);
	if (ret) {
		CHECK(ret == -ENOMEM);
		return;
	}
	CHECK(anchormap_equal(&copy, &s->map));
	anchormap_destroy(&copy);
}

static int snap_write(const void *buf, size_t len, void *arg)
{
	u8 **p = arg;

	memcpy(*p, buf, len);
	*p += len;
	return 0;
}

static int snap_read(void *buf, size_t len, void *arg)
{
	const u8 **p = arg;

	memcpy(buf, *p, len);
	*p += len;
	return (int)len;
}

static void op_snapshot(struct state *s)
{
	static u8 buf[64 + KEYS * 12 + 64];
	struct anchormap copy;
	struct anchormap_params p = { .key_size = 8, .value_size = 4 };
	u8 *w = buf;
	const u8 *r = buf;

	CHECK(anchormap_save(&s->map, snap_write, &w) == 0);
	CHECK(anchormap_init(&copy, &p, 0) == 0);
	CHECK(anchormap_load(&copy, snap_read, &r) == 0);
	CHECK(r == w && anchormap_equal(&copy, &s->map));
	anchormap_destroy(&copy);
}

/*
 * A walk with shared writes between its steps (removals and inserts with
 * values from a pool of three, so the same bytes come back): no key
 * is yielded twice, a key present throughout comes with its value, and, if
 * nothing was removed meanwhile, every key present throughout is yielded
 * (with removals the README's "Iteration corner" allows a miss).
 */
static void op_walk(struct state *s)
{
	struct anchormap_iter it;
	const void *k, *v;
	bool seen[KEYS] = { false }, throughout[KEYS];
	bool removed = false;
	u64 i;

	memcpy(throughout, s->m.present, sizeof(throughout));
	anchormap_for_each(&s->map, &it, &k, &v) {
		u64 key = *(const u64 *)k;
		u8 b = next_byte(s);

		CHECK(key < KEYS && !seen[key]);
		CHECK(!throughout[key] || *(const u32 *)v == s->m.value[key]);
		seen[key] = true;
		if (b & 1) {
			u64 mk = next_byte(s);
			u32 mv = next_byte(s) % 3;

			if ((b & 2) && s->m.present[mk]) {
				op_remove(s, mk);
				throughout[mk] = false;
				removed = true;
			}
			op_insert(s, mk, mv);
		}
	}
	for (i = 0; i < KEYS && !removed; i++)
		CHECK(!throughout[i] || seen[i]);
}

static void op_shrink(struct state *s)
{
	int ret;

	drop_held(s);
	anchormap_debug_fail_nth(next_byte(s) & 3);
	ret = anchormap_shrink_to_fit(&s->map);
	anchormap_debug_fail_nth(0);
	CHECK(ret == 0 || ret == -ENOMEM);
}

static void step(struct state *s)
{
	u8 op = next_byte(s);
	u64 k = next_byte(s);
	u32 v = next_u32(s);

	if (op & 0x80)
		v %= 3;	/* a small pool: the same bytes removed and inserted again */
	switch (op % 14) {
	case 0:
	case 1:
		op_insert(s, k, v);
		break;
	case 2:
		op_remove(s, k);
		break;
	case 3: {
		const u32 *got = anchormap_get(&s->map, &k);

		CHECK(!!got == s->m.present[k] && (!got || *got == s->m.value[k]));
		break;
	}
	case 4:
		op_get_or_insert(s, k, v);
		break;
	case 5:
		op_entry(s, k, v);
		break;
	case 6:
		op_remove_entry(s, k);
		break;
	case 7:
		op_retain(s, (u8)v);
		break;
	case 8:
		op_shrink(s);
		break;
	case 9:
		op_clone(s);
		break;
	case 10:
		op_snapshot(s);
		break;
	case 11:
		drop_held(s);
		anchormap_clear(&s->map);
		memset(&s->m, 0, sizeof(s->m));
		break;
	case 12:
		check_all(s);	/* a walk between operations: exactly once */
		break;
	case 13:
		op_walk(s);
		break;
	}
	check_held(s);
}

int LLVMFuzzerTestOneInput(const u8 *data, size_t size);

int LLVMFuzzerTestOneInput(const u8 *data, size_t size)
{
	static struct state s;
	struct anchormap_params p = { .key_size = 8, .value_size = 4, .name = "fuzz" };
	long live = anchormap_debug_allocs_live();

	memset(&s, 0, sizeof(s));
	s.in = data;
	s.left = size;
	CHECK(anchormap_init(&s.map, &p, next_byte(&s) & 31) == 0);
	while (s.left)
		step(&s);
	check_all(&s);
	anchormap_destroy(&s.map);
	CHECK(anchormap_debug_allocs_live() == live);
	return 0;
}
