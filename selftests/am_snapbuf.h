/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * am_snapbuf.h - a snapshot in memory for anchormap_save() and
 * anchormap_load(): the functional tests (common/snapshot.c), the kernel
 * module's snapshot test and the interleaving tests share it.  The load
 * side can cut the input short, hand it out in chunks, fail a given call
 * or claim more bytes than it gave, for the malformed-input tests.
 *
 * Include after harness.h (am_test_alloc()).
 */
#ifndef _AM_SNAPBUF_H
#define _AM_SNAPBUF_H

#define AM_T_SNAP_MAX	(1u << 20)

/* A byte buffer the save callback appends to and the load callback reads. */
struct am_t_snap {
	u8 *buf;
	size_t len;
	size_t pos;
	size_t limit;		/* load: bytes available (truncation) */
	size_t chunk;		/* load: most bytes handed out per call */
	size_t asked_past;	/* load: bytes requested beyond limit */
	int fail_at_call;	/* 1-based call that returns fail_err, 0 = none */
	int fail_err;
	int calls;
	bool overclaim;		/* load: claim one byte more than asked */
};

/* One block: the record, then its AM_T_SNAP_MAX bytes. */
static AM_TEST_UNUSED struct am_t_snap *am_t_snap_new(void)
{
	struct am_t_snap *b = am_test_alloc(sizeof(*b) + AM_T_SNAP_MAX);

	if (!b)
		return NULL;
	b->buf = (u8 *)(b + 1);
	b->chunk = AM_T_SNAP_MAX;
	return b;
}

static AM_TEST_UNUSED void am_t_snap_del(struct am_t_snap *b)
{
	am_test_free(b);
}

static AM_TEST_UNUSED int am_t_snap_write(const void *buf, size_t len, void *arg)
{
	struct am_t_snap *b = arg;

	if (++b->calls == b->fail_at_call)
		return b->fail_err;
	if (len > AM_T_SNAP_MAX - b->len)
		return -ENOSPC;
	memcpy(b->buf + b->len, buf, len);
	b->len += len;
	return 0;
}

static AM_TEST_UNUSED int am_t_snap_read(void *buf, size_t len, void *arg)
{
	struct am_t_snap *b = arg;
	size_t n = len;

	if (++b->calls == b->fail_at_call)
		return b->fail_err;
	if (n > b->chunk)
		n = b->chunk;
	if (n > b->limit - b->pos) {
		b->asked_past += n - (b->limit - b->pos);
		n = b->limit - b->pos;
	}
	memcpy(buf, b->buf + b->pos, n);
	b->pos += n;
	return (int)(b->overclaim && n ? n + 1 : n);
}

/* Rewind for a load of the first @limit bytes, handed out @chunk at a time. */
static AM_TEST_UNUSED void am_t_snap_rewind(struct am_t_snap *b, size_t limit, size_t chunk)
{
	b->pos = 0;
	b->limit = limit;
	b->chunk = chunk;
	b->calls = 0;
	b->fail_at_call = 0;
	b->asked_past = 0;
	b->overclaim = false;
}

#endif /* _AM_SNAPBUF_H */
