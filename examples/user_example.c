// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * user_example.c - a tour of the anchormap API from userspace.
 *
 * Build against an installed (or build-tree) anchormap:
 *
 *	cc user_example.c $(pkg-config --cflags --libs anchormap) -o user_example
 *
 * A map of city name -> population.  The point to notice: the pointer that
 * a lookup returns stays valid and unchanged while the map grows and even
 * after the entry is removed, until the map is destroyed or an exclusive
 * operation runs.
 */
#include <stdio.h>
#include <string.h>

#include <anchormap.h>

#define NAME_LEN 16	/* keys are fixed-size: names are zero-padded */

struct city {
	u64 population;
	u32 founded;
};

static void name_key(char key[NAME_LEN], const char *name)
{
	memset(key, 0, NAME_LEN);
	strncpy(key, name, NAME_LEN - 1);
}

static int add(struct anchormap *map, const char *name, u64 population, u32 founded)
{
	struct city c = { .population = population, .founded = founded };
	char key[NAME_LEN];

	name_key(key, name);
	return anchormap_insert(map, key, &c);
}

int main(void)
{
	struct anchormap_params params = {
		.key_size = NAME_LEN,
		.value_size = sizeof(struct city),
		.name = "cities",
	};
	struct anchormap map;
	struct anchormap_iter it;
	const struct city *held;
	const void *key, *value;
	char k[NAME_LEN];
	int ret, i, visited = 0;

	ret = anchormap_init(&map, &params, 0);
	if (ret) {
		fprintf(stderr, "anchormap_init: %d\n", ret);
		return 1;
	}

	add(&map, "Lisbon", 545000, 1147);
	add(&map, "Oslo", 709000, 1040);
	add(&map, "Tallinn", 457000, 1248);
	/* the first value wins: inserting a present key changes nothing */
	if (add(&map, "Oslo", 1, 1) != 0)
		return 1;

	/* a lock-free lookup returns a plain pointer into the map */
	name_key(k, "Oslo");
	held = anchormap_get(&map, k);
	if (!held)
		return 1;
	printf("Oslo: %llu people, founded %u\n",
	       (unsigned long long)held->population, held->founded);

	/* growth never moves entries: 'held' survives thousands of inserts */
	for (i = 0; i < 5000; i++) {
		char name[NAME_LEN];

		snprintf(name, sizeof(name), "town-%d", i);
		if (add(&map, name, (u64)i, 2000) != 1)
			return 1;
	}
	printf("after growth: %zu entries, Oslo still %llu at the same address: %s\n",
	       anchormap_len(&map), (unsigned long long)held->population,
	       anchormap_get(&map, k) == held ? "yes" : "no");

	/* walk the map; every entry present for the whole walk is seen once */
	anchormap_for_each(&map, &it, &key, &value) {
		const struct city *c = value;

		if (strncmp(key, "town-", 5))
			printf("visit %s (%llu)\n", (const char *)key,
			       (unsigned long long)c->population);
		visited++;
	}
	printf("visited %d entries\n", visited);

	/* remove marks the slot deleted; a held pointer still reads the same */
	ret = anchormap_remove(&map, k);
	printf("removed Oslo: %d, present now: %s, held pointer reads %llu\n", ret,
	       anchormap_contains_key(&map, k) ? "yes" : "no",
	       (unsigned long long)held->population);

	anchormap_destroy(&map);
	printf("done\n");
	return 0;
}
