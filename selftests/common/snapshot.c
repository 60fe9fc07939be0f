// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * common/snapshot.c - snapshots: anchormap_save() and anchormap_load(),
 * malformed input.
 *
 * Part of the portable functional tests: common_tests.c includes it after
 * helpers.h (see there for the conventions).
 */

/* ---- snapshots: anchormap_save / anchormap_load ---- */

/* FNV-1a 64 (the published constants), to re-seal edited snapshots. */
static u64 am_t_fnv(const u8 *p, size_t len)
{
	u64 h = 0xcbf29ce484222325ULL;

	while (len--)
		h = (h ^ *p++) * 0x100000001b3ULL;
	return h;
}

static void am_t_le(u8 *p, u64 v, int bytes)
{
	int i;

	for (i = 0; i < bytes; i++)
		p[i] = (u8)(v >> (8 * i));
}

static void am_t_snap_reseal(struct am_t_snap *b)
{
	am_t_le(b->buf + b->len - 8, am_t_fnv(b->buf, b->len - 8), 8);
}

/* Save @m, load into a fresh map with the same sizes, compare. */
static void am_t_roundtrip(struct am_test_ctx *_ctx, struct anchormap *m,
			   const struct anchormap_params *p)
{
	struct am_t_snap *b = am_t_snap_new();
	struct anchormap *copy = am_t_new_params(p, 0);

	ASSERT_NOT_NULL(b);
	ASSERT_NOT_NULL(copy);
	EXPECT_EQ(anchormap_save(m, am_t_snap_write, b), 0);
	am_t_snap_rewind(b, b->len, 7);	/* odd pieces: fields straddle calls */
	EXPECT_EQ(anchormap_load(copy, am_t_snap_read, b), 0);
	EXPECT_EQ(b->pos, b->len);
	EXPECT_EQ(b->asked_past, 0);
	EXPECT_EQ(anchormap_len(copy), anchormap_len(m));
	EXPECT_TRUE(anchormap_equal(copy, m));
	am_t_del(copy);
	am_t_snap_del(b);
}

TEST(snapshot_roundtrip_empty)
{
	struct anchormap_params p;
	struct anchormap *m;

	am_t_params(&p, 8, 8);
	m = am_t_new_params(&p, 0);
	ASSERT_NOT_NULL(m);
	am_t_roundtrip(_ctx, m, &p);
	am_t_del(m);
}

TEST(snapshot_roundtrip_one_entry)
{
	struct anchormap_params p;
	struct anchormap *m;

	am_t_params(&p, 8, 8);
	m = am_t_new_params(&p, 0);
	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_put(m, 77), 1);
	am_t_roundtrip(_ctx, m, &p);
	am_t_del(m);
}

TEST(snapshot_roundtrip_many_segments_and_deleted)
{
	struct anchormap_params p;
	struct anchormap_stats st;
	struct anchormap *m;
	u64 k;

	am_t_params(&p, 8, 8);
	m = am_t_new_params(&p, 0);
	ASSERT_NOT_NULL(m);
	EXPECT_EQ(am_t_fill(m, 0, 20000), 0);
	for (k = 0; k < 20000; k += 3)
		EXPECT_EQ(anchormap_remove(m, &k), 1);
	anchormap_stats(m, &st);
	EXPECT_GE(st.segments, 8);
	EXPECT_GT(st.deleted, 0);
	am_t_roundtrip(_ctx, m, &p);
	am_t_del(m);
}

TEST(snapshot_roundtrip_large_keys_values)
{
	struct anchormap_params p;
	struct anchormap *m;
	u8 *kv = am_test_alloc(64 + 256);
	int i, j;

	ASSERT_NOT_NULL(kv);
	am_t_params(&p, 64, 256);
	m = am_t_new_params(&p, 0);
	ASSERT_NOT_NULL(m);
	for (i = 0; i < 300; i++) {
		for (j = 0; j < 64 + 256; j++)
			kv[j] = (u8)(i * 31 + j * 7);
		kv[0] = (u8)i;
		kv[1] = (u8)(i >> 8);	/* keys distinct past 256 */
		EXPECT_EQ(anchormap_insert(m, kv, kv + 64), 1);
	}
	am_t_roundtrip(_ctx, m, &p);
	am_t_del(m);
	am_test_free(kv);
}

TEST(snapshot_roundtrip_set)
{
	struct anchormap_params p;
	struct anchormap *m;
	u32 k;

	am_t_params(&p, 4, 0);
	m = am_t_new_params(&p, 0);
	ASSERT_NOT_NULL(m);
	for (k = 0; k < 1000; k++)
		EXPECT_EQ(anchormap_insert(m, &k, NULL), 1);
	am_t_roundtrip(_ctx, m, &p);
	am_t_del(m);
}

/*
 * A snapshot of keys 0..n-1 in @b and an empty u64 -> u64 map to load it
 * into; each malformed-input test edits the bytes, loads, and checks the
 * error and that the map stayed empty.
 */
struct am_t_snapfx {
	struct am_t_snap *b;
	struct anchormap *src;
	struct anchormap *dst;
};

FIXTURE(snap) {
	struct am_t_snapfx f;
};

FIXTURE_SETUP(snap)
{
	self->f.b = am_t_snap_new();
	self->f.src = am_t_new(0, NULL);
	self->f.dst = am_t_new(0, NULL);
	ASSERT_NOT_NULL(self->f.b);
	ASSERT_NOT_NULL(self->f.src);
	ASSERT_NOT_NULL(self->f.dst);
	ASSERT_EQ(am_t_fill(self->f.src, 0, 100), 0);
	ASSERT_EQ(anchormap_save(self->f.src, am_t_snap_write, self->f.b), 0);
	/* 32 header + 4 block count + 100 * 16 + 4 end + 8 count + 8 sum */
	ASSERT_EQ(self->f.b->len, 32 + 4 + 1600 + 4 + 16);
	am_t_snap_rewind(self->f.b, self->f.b->len, 4096);
}

FIXTURE_TEARDOWN(snap)
{
	am_t_del(self->f.src);
	am_t_del(self->f.dst);
	am_t_snap_del(self->f.b);
}

/* Load what is in the buffer now: the error, with the target left empty. */
static int am_t_snap_load(struct am_test_ctx *_ctx, struct am_t_snapfx *f)
{
	int ret = anchormap_load(f->dst, am_t_snap_read, f->b);

	if (ret)
		EXPECT_TRUE(anchormap_is_empty(f->dst));
	return ret;
}

TEST_F(snap, load_accepts_pristine)
{
	EXPECT_EQ(am_t_snap_load(_ctx, &self->f), 0);
	EXPECT_TRUE(anchormap_equal(self->f.src, self->f.dst));
}

TEST_F(snap, load_rejects_bad_magic)
{
	self->f.b->buf[3] ^= 0x20;
	EXPECT_EQ(am_t_snap_load(_ctx, &self->f), -EBADMSG);
}

TEST_F(snap, load_rejects_unknown_version)
{
	self->f.b->buf[8] = 2;
	am_t_snap_reseal(self->f.b);
	EXPECT_EQ(am_t_snap_load(_ctx, &self->f), -EPROTONOSUPPORT);
}

TEST_F(snap, load_rejects_byte_order)
{
	am_t_le(self->f.b->buf + 12, 0x04030201, 4);
	am_t_snap_reseal(self->f.b);
	EXPECT_EQ(am_t_snap_load(_ctx, &self->f), -EBADMSG);
}

TEST_F(snap, load_rejects_key_size_mismatch)
{
	am_t_le(self->f.b->buf + 16, 4, 4);
	am_t_snap_reseal(self->f.b);
	EXPECT_EQ(am_t_snap_load(_ctx, &self->f), -EINVAL);
}

TEST_F(snap, load_rejects_value_size_mismatch)
{
	am_t_le(self->f.b->buf + 20, 16, 4);
	am_t_snap_reseal(self->f.b);
	EXPECT_EQ(am_t_snap_load(_ctx, &self->f), -EINVAL);
}

TEST_F(snap, load_rejects_checksum)
{
	self->f.b->buf[32 + 4 + 5] ^= 1;	/* a key byte; not resealed */
	EXPECT_EQ(am_t_snap_load(_ctx, &self->f), -EBADMSG);
}

TEST_F(snap, load_rejects_count_mismatch)
{
	am_t_le(self->f.b->buf + self->f.b->len - 16, 101, 8);
	am_t_snap_reseal(self->f.b);
	EXPECT_EQ(am_t_snap_load(_ctx, &self->f), -EBADMSG);
}

TEST_F(snap, load_rejects_huge_block)
{
	am_t_le(self->f.b->buf + 32, 0x7fffffff, 4);
	am_t_snap_reseal(self->f.b);
	EXPECT_EQ(am_t_snap_load(_ctx, &self->f), -EBADMSG);
}

TEST_F(snap, load_rejects_duplicate_key)
{
	u8 *e = self->f.b->buf + 32 + 4;

	memcpy(e + 16, e, 8);	/* entry 1 gets entry 0's key */
	am_t_snap_reseal(self->f.b);
	EXPECT_EQ(am_t_snap_load(_ctx, &self->f), -EBADMSG);
}

TEST_F(snap, load_rejects_every_truncation)
{
	size_t cut, full = self->f.b->len;
	long bad = 0;

	for (cut = 0; cut < full; cut++) {
		am_t_snap_rewind(self->f.b, cut, cut % 13 + 1);
		bad += am_t_snap_load(_ctx, &self->f) != -ENODATA;
	}
	EXPECT_EQ(bad, 0);
}

TEST_F(snap, load_reads_nothing_past_the_end)
{
	/* trailing garbage after a valid snapshot is never asked for */
	am_t_snap_rewind(self->f.b, self->f.b->len + 100, 4096);
	EXPECT_EQ(am_t_snap_load(_ctx, &self->f), 0);
	EXPECT_EQ(self->f.b->pos, self->f.b->len);
	EXPECT_EQ(self->f.b->asked_past, 0);
}

TEST_F(snap, load_passes_read_error)
{
	self->f.b->fail_at_call = 5;
	self->f.b->fail_err = -EIO;
	EXPECT_EQ(am_t_snap_load(_ctx, &self->f), -EIO);
}

TEST_F(snap, load_rejects_overclaiming_reader)
{
	self->f.b->overclaim = true;
	EXPECT_EQ(am_t_snap_load(_ctx, &self->f), -EINVAL);
}

TEST_F(snap, load_rejects_non_empty_target)
{
	EXPECT_EQ(am_t_put(self->f.dst, 5), 1);
	EXPECT_EQ(anchormap_load(self->f.dst, am_t_snap_read, self->f.b), -EINVAL);
	EXPECT_EQ(anchormap_len(self->f.dst), 1);
}

/*
 * A load that fails part-way, into a map holding removed entries of its
 * own (keys 0..49, not yet reclaimed): the error releases those, each
 * once, and none of the entries it had read (of keys 100..199, already in
 * the map when the cut shows).  Cut within the entries, the count and the
 * checksum (the layout: see the snap fixture).
 */
TEST_WITH(relmap, load_error_releases_only_entries_from_before)
{
	struct am_t_snap *b = am_t_snap_new();
	struct anchormap *src = am_t_new(0, NULL);
	struct am_t_rel *r = self->r;
	size_t cuts[3];
	unsigned int i;

	if (!b || !src) {
		EXPECT_TRUE(false);	/* out of memory */
		goto out;
	}
	EXPECT_EQ(am_t_fill(src, 100, 200), 0);
	EXPECT_EQ(anchormap_save(src, am_t_snap_write, b), 0);
	cuts[0] = 32 + 4 + 16 * 50 + 5;
	cuts[1] = b->len - 12;
	cuts[2] = b->len - 1;
	for (i = 0; i < ARRAY_SIZE(cuts); i++) {
		EXPECT_EQ(am_t_fill(self->m, 0, 50), 0);
		EXPECT_EQ(am_t_remove_step(self->m, 0, 50, 1), 0);
		am_t_snap_rewind(b, cuts[i], 4096);
		EXPECT_EQ(anchormap_load(self->m, am_t_snap_read, b), -ENODATA);
		EXPECT_TRUE(anchormap_is_empty(self->m));
		EXPECT_EQ(r->calls, 50 * (i + 1));
	}
	EXPECT_EQ(am_t_rel_count_not(r, 0, 50, ARRAY_SIZE(cuts)), 0);
	EXPECT_EQ(am_t_rel_count_not(r, 100, 200, 0), 0);
	am_t_destroy_now(&self->m);
	EXPECT_EQ(r->calls, 50 * ARRAY_SIZE(cuts));
out:
	am_t_del(src);
	am_t_snap_del(b);
}

/* Each run reads the snapshot from its start; a failed one leaves dst empty. */
static int am_t_run_snap_load(struct am_test_ctx *_ctx, void *arg)
{
	struct am_t_snapfx *f = arg;

	am_t_snap_rewind(f->b, f->b->len, 4096);
	return am_t_snap_load(_ctx, f);
}

TEST_F(snap, load_survives_every_allocation_failure)
{
	struct am_t_fail f = { .run = am_t_run_snap_load, .arg = &self->f, .ok = 0 };

	EXPECT_EQ(am_t_fail_each(_ctx, &f), 0);
	EXPECT_GT(f.failures, 0);	/* at least one allocation did fail */
	EXPECT_TRUE(anchormap_equal(self->f.src, self->f.dst));
}

TEST_F(snap, save_passes_write_error)
{
	self->f.b->len = 0;
	self->f.b->calls = 0;
	self->f.b->fail_at_call = 2;
	self->f.b->fail_err = -ENOSPC;
	EXPECT_EQ(anchormap_save(self->f.src, am_t_snap_write, self->f.b), -ENOSPC);
}

TEST_F(snap, save_survives_allocation_failure)
{
	self->f.b->len = 0;
	anchormap_debug_fail_nth(1);
	EXPECT_EQ(anchormap_save(self->f.src, am_t_snap_write, self->f.b), -ENOMEM);
	anchormap_debug_fail_nth(0);
	EXPECT_EQ(self->f.b->len, 0);
}

TEST_WITH(u64map, snapshot_null_args)
{
	struct anchormap *m = self->m;

	EXPECT_EQ(anchormap_save(NULL, am_t_snap_write, NULL), -EINVAL);
	EXPECT_EQ(anchormap_save(m, NULL, NULL), -EINVAL);
	EXPECT_EQ(anchormap_load(NULL, am_t_snap_read, NULL), -EINVAL);
	EXPECT_EQ(anchormap_load(m, NULL, NULL), -EINVAL);
}

static const struct am_test_case am_snapshot_cases[] = {
	AM_TEST_ENTRY(snapshot_roundtrip_empty)
	AM_TEST_ENTRY(snapshot_roundtrip_one_entry)
	AM_TEST_ENTRY(snapshot_roundtrip_many_segments_and_deleted)
	AM_TEST_ENTRY(snapshot_roundtrip_large_keys_values)
	AM_TEST_ENTRY(snapshot_roundtrip_set)
	AM_TEST_ENTRY(snap_load_accepts_pristine)
	AM_TEST_ENTRY(snap_load_rejects_bad_magic)
	AM_TEST_ENTRY(snap_load_rejects_unknown_version)
	AM_TEST_ENTRY(snap_load_rejects_byte_order)
	AM_TEST_ENTRY(snap_load_rejects_key_size_mismatch)
	AM_TEST_ENTRY(snap_load_rejects_value_size_mismatch)
	AM_TEST_ENTRY(snap_load_rejects_checksum)
	AM_TEST_ENTRY(snap_load_rejects_count_mismatch)
	AM_TEST_ENTRY(snap_load_rejects_huge_block)
	AM_TEST_ENTRY(snap_load_rejects_duplicate_key)
	AM_TEST_ENTRY(snap_load_rejects_every_truncation)
	AM_TEST_ENTRY(snap_load_reads_nothing_past_the_end)
	AM_TEST_ENTRY(snap_load_passes_read_error)
	AM_TEST_ENTRY(snap_load_rejects_overclaiming_reader)
	AM_TEST_ENTRY(snap_load_rejects_non_empty_target)
	AM_TEST_ENTRY(load_error_releases_only_entries_from_before)
	AM_TEST_ENTRY(snap_load_survives_every_allocation_failure)
	AM_TEST_ENTRY(snap_save_passes_write_error)
	AM_TEST_ENTRY(snap_save_survives_allocation_failure)
	AM_TEST_ENTRY(snapshot_null_args)
};

static const struct am_test_suite am_snapshot_suite = AM_TEST_SUITE(snapshot);
