// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * libFuzzer target: anchormap_load() on arbitrary bytes.  It must return 0
 * or a negative errno, leave the map empty on error, read only what the
 * callback handed it, and leak nothing.  Whatever loads must save again to
 * the same bytes' entries.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anchormap.h"
#include "fuzz_check.h"

struct src {
	const u8 *p;
	size_t left;
	size_t chunk;	/* the callback hands out at most this many bytes */
};

static int src_read(void *buf, size_t len, void *arg)
{
	struct src *s = arg;
	size_t n = len < s->left ? len : s->left;

	if (n > s->chunk)
		n = s->chunk;
	memcpy(buf, s->p, n);
	s->p += n;
	s->left -= n;
	return (int)n;
}

static int count_write(const void *buf, size_t len, void *arg)
{
	*(size_t *)arg += len;
	return 0;
}

int LLVMFuzzerTestOneInput(const u8 *data, size_t size);

int LLVMFuzzerTestOneInput(const u8 *data, size_t size)
{
	struct anchormap_params p = { .key_size = 8, .value_size = 4, .name = "fuzz_load" };
	struct anchormap map;
	struct src s;
	long live = anchormap_debug_allocs_live();
	size_t saved = 0;
	int ret;

	if (!size)
		return 0;
	s.chunk = (data[0] & 15) + 1;
	s.p = data + 1;
	s.left = size - 1;
	CHECK(anchormap_init(&map, &p, 0) == 0);
	ret = anchormap_load(&map, src_read, &s);
	CHECK(ret <= 0);
	if (ret) {
		CHECK(anchormap_is_empty(&map));
	} else {
		/* a valid snapshot: header, blocks and trailer, re-saved in full */
		CHECK(anchormap_save(&map, count_write, &saved) == 0);
		CHECK(saved >= 32 + 4 + 16 + anchormap_len(&map) * 12);
	}
	anchormap_destroy(&map);
	CHECK(anchormap_debug_allocs_live() == live);
	return 0;
}
