// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * anchormap_save() and anchormap_load(): the snapshot file format,
 * docs/snapshot-format.md.  A save is a walk (shared, lock-free); a load
 * inserts into an empty map (exclusive).
 */
#include "anchormap_internal.h"

/*
 * Little-endian throughout.  Entries go in blocks of at most
 * AM_SNAP_BLOCK so that the writer streams (the entry count of a map that
 * changes during the save is only known at the end, hence the trailer)
 * and the reader never sizes anything from a count it has not seen data
 * for.
 */

#define AM_SNAP_MAGIC		"ANCHRMAP"
#define AM_SNAP_VERSION		1u
#define AM_SNAP_BOM		0x01020304u
#define AM_SNAP_HDR		32
#define AM_SNAP_BLOCK		4096u
#define AM_SNAP_BUF		65536u
#define AM_FNV_BASIS		0xcbf29ce484222325ULL
#define AM_FNV_PRIME		0x100000001b3ULL

/* FNV-1a over everything before the checksum: catches corruption only. */
static u64 am_fnv(u64 h, const u8 *p, size_t len)
{
	while (len--)
		h = (h ^ *p++) * AM_FNV_PRIME;
	return h;
}

static void am_put_le(u8 *p, u64 v, int bytes)
{
	int i;

	for (i = 0; i < bytes; i++)
		p[i] = (u8)(v >> (8 * i));
}

static u64 am_get_le(const u8 *p, int bytes)
{
	u64 v = 0;
	int i;

	for (i = bytes - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

struct am_snap {
	const struct anchormap *map;
	int (*write)(const void *buf, size_t len, void *arg);
	int (*read)(void *buf, size_t len, void *arg);
	void *arg;
	u64 sum;
	u64 count;
	size_t entry;		/* key_size + value_size */
	struct anchormap_iter it;
	u8 *buf;		/* one block of entries, or one entry on load */
	size_t buf_size;
};

static int am_snap_write(struct am_snap *s, const void *buf, size_t len)
{
	s->sum = am_fnv(s->sum, buf, len);
	return s->write(buf, len, s->arg);
}

static void am_snap_header(const struct anchormap *map, u8 *hdr)
{
	memset(hdr, 0, AM_SNAP_HDR);
	memcpy(hdr, AM_SNAP_MAGIC, 8);
	am_put_le(hdr + 8, AM_SNAP_VERSION, 4);
	am_put_le(hdr + 12, AM_SNAP_BOM, 4);
	am_put_le(hdr + 16, map->key_size, 4);
	am_put_le(hdr + 20, map->value_size, 4);
}

/* Fill the block buffer from the walk; returns how many entries it holds. */
static u32 am_snap_fill(struct am_snap *s, u32 max)
{
	const void *key, *value;
	u32 n = 0;

	while (n < max && anchormap_iter_next(&s->it, &key, &value)) {
		u8 *p = s->buf + 4 + (size_t)n * s->entry;

		memcpy(p, key, s->map->key_size);
		memcpy(p + s->map->key_size, value, s->map->value_size);
		n++;
	}
	return n;
}

static int am_snap_save_blocks(struct am_snap *s, u32 per_block)
{
	u8 trailer[16];
	int err;
	u32 n;

	do {
		n = am_snap_fill(s, per_block);
		am_put_le(s->buf, n, 4);
		err = am_snap_write(s, s->buf, 4 + (size_t)n * s->entry);
		if (err)
			return err;
		s->count += n;
		amp_cond_resched(am_atomic(s->map));
	} while (n);	/* the empty block ends the list */
	am_put_le(trailer, s->count, 8);
	err = am_snap_write(s, trailer, 8);
	if (err)
		return err;
	am_put_le(trailer + 8, s->sum, 8);
	return s->write(trailer + 8, 8, s->arg);
}

static struct am_snap *am_snap_new(const struct anchormap *map, size_t buf_size)
{
	struct am_snap *s = amp_zalloc(sizeof(*s), am_atomic(map));

	if (!s)
		return NULL;
	s->buf = amp_zalloc(buf_size, am_atomic(map));
	if (!s->buf) {
		amp_free(s, sizeof(*s));
		return NULL;
	}
	s->buf_size = buf_size;
	s->map = map;
	s->entry = (size_t)map->key_size + map->value_size;
	s->sum = AM_FNV_BASIS;
	return s;
}

static void am_snap_free(struct am_snap *s)
{
	amp_free(s->buf, s->buf_size);
	amp_free(s, sizeof(*s));
}

int anchormap_save(const struct anchormap *map,
		   int (*write)(const void *buf, size_t len, void *arg), void *arg)
{
	u8 hdr[AM_SNAP_HDR];
	struct am_snap *s;
	size_t entry;
	u32 per_block;
	int err;

	if (!map || !map->wstate || !write)
		return -EINVAL;
	entry = (size_t)map->key_size + map->value_size;
	per_block = AM_SNAP_BUF / entry;
	if (per_block > AM_SNAP_BLOCK)
		per_block = AM_SNAP_BLOCK;
	if (!per_block)
		per_block = 1;
	s = am_snap_new(map, 4 + per_block * entry);
	if (!s)
		return -ENOMEM;
	s->write = write;
	s->arg = arg;
	am_snap_header(map, hdr);
	err = am_snap_write(s, hdr, sizeof(hdr));
	if (!err) {
		anchormap_iter_init(&s->it, map);
		err = am_snap_save_blocks(s, per_block);
	}
	am_snap_free(s);
	return err;
}
AMP_EXPORT(anchormap_save);

/* Read exactly @len bytes or fail: -ENODATA when the data ends first. */
static int am_snap_read(struct am_snap *s, void *buf, size_t len, bool sum)
{
	size_t got = 0;

	while (got < len) {
		int r = s->read((u8 *)buf + got, len - got, s->arg);

		if (r < 0)
			return r;
		if (r == 0 || (size_t)r > len - got)
			return r == 0 ? -ENODATA : -EINVAL;
		got += (size_t)r;
	}
	if (sum)
		s->sum = am_fnv(s->sum, buf, len);
	return 0;
}

static int am_snap_check_header(const struct anchormap *map, const u8 *hdr)
{
	if (memcmp(hdr, AM_SNAP_MAGIC, 8))
		return -EBADMSG;
	if (am_get_le(hdr + 8, 4) != AM_SNAP_VERSION)
		return -EPROTONOSUPPORT;
	if (am_get_le(hdr + 12, 4) != AM_SNAP_BOM || am_get_le(hdr + 24, 8))
		return -EBADMSG;
	if (am_get_le(hdr + 16, 4) != map->key_size || am_get_le(hdr + 20, 4) != map->value_size)
		return -EINVAL;
	return 0;
}

/* Entries block by block, each inserted as it arrives (one entry buffered). */
static int am_snap_load_blocks(struct am_snap *s, struct anchormap *map)
{
	u8 word[8];
	int err;
	u32 n;

	for (;;) {
		err = am_snap_read(s, word, 4, true);
		if (err)
			return err;
		n = (u32)am_get_le(word, 4);
		if (!n)
			return 0;
		if (n > AM_SNAP_BLOCK)
			return -EBADMSG;
		while (n--) {
			err = am_snap_read(s, s->buf, s->entry, true);
			if (err)
				return err;
			err = anchormap_insert(map, s->buf, s->buf + map->key_size);
			if (err <= 0)
				return err ? err : -EBADMSG;	/* 0: a duplicate key */
			s->count++;
		}
		amp_cond_resched(am_atomic(map));
	}
}

static int am_snap_load(struct am_snap *s, struct anchormap *map)
{
	u8 hdr[AM_SNAP_HDR];
	u64 sum;
	int err;

	err = am_snap_read(s, hdr, sizeof(hdr), true);
	if (!err)
		err = am_snap_check_header(map, hdr);
	if (!err)
		err = am_snap_load_blocks(s, map);
	if (!err)
		err = am_snap_read(s, hdr, 8, true);
	if (!err && am_get_le(hdr, 8) != s->count)
		err = -EBADMSG;
	sum = s->sum;
	if (!err)
		err = am_snap_read(s, hdr, 8, false);
	if (!err && am_get_le(hdr, 8) != sum)
		err = -EBADMSG;
	return err;
}

int anchormap_load(struct anchormap *map, int (*read)(void *buf, size_t len, void *arg),
		   void *arg)
{
	struct am_snap *s;
	int err;

	if (!map || !map->wstate || !read || !anchormap_is_empty(map))
		return -EINVAL;
	s = am_snap_new(map, (size_t)map->key_size + map->value_size);
	if (!s)
		return -ENOMEM;
	s->read = read;
	s->arg = arg;
	err = am_snap_load(s, map);
	am_snap_free(s);
	if (err) {
		/*
		 * Entries read from the snapshot were never the caller's: no
		 * release for them; removed entries from before the load are
		 * the map's and are released as any reclaim does.
		 */
		am_walk_owned(map, NULL, NULL);
		am_reset(map);
		return err;
	}
	/* drop the growth history: replaced indexes, a pending rebuild; optional */
	if (map->narenas > 1)
		(void)am_compact(map);
	return 0;
}
AMP_EXPORT(anchormap_load);
