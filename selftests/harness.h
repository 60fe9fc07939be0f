/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * harness.h - a tiny kselftest-style test harness that builds both as a
 * userspace program and inside a kernel module, so the functional tests in
 * common_tests.c (selftests/common/) run unchanged in both worlds.
 *
 *	TEST(name) { ASSERT_EQ(anchormap_len(m), 0); ... }
 *	static const struct am_test_case cases[] = { AM_TEST_ENTRY(name) };
 *	return am_test_main(cases, ARRAY_SIZE(cases));	(userspace)
 *
 * Tests grouped KUnit style: each area's file ends with its table and
 *	static const struct am_test_case am_area_cases[] = { ... };
 *	static const struct am_test_suite am_area_suite = AM_TEST_SUITE(area);
 * and a runner takes a list of suites (am_test_run_suites(),
 * am_test_main_suites()); numbering goes on across suites.
 *
 * ASSERT_* print a diagnostic and return from the test function, so they
 * may only be used directly in a TEST() body (or in a void helper taking
 * "struct am_test_ctx *_ctx", whose caller then checks _ctx->failed).
 * EXPECT_* record the failure and carry on.  Output is TAP 13.
 *
 * Every test must leave no allocation behind: am_test_run() compares the
 * map allocations (anchormap_debug_allocs_live()) and the harness's own
 * (am_test_alloc) before and after each test, and fails a test that leaks.
 */
#ifndef _AM_TEST_HARNESS_H
#define _AM_TEST_HARNESS_H

#ifdef __KERNEL__
#include <linux/kernel.h>
#include <linux/types.h>
#include <linux/limits.h>
#include <linux/string.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/atomic.h>
#include <linux/printk.h>
#else
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <stdint.h>
#endif

#include "anchormap.h"
#include "am_testutil.h"	/* mixers, am_tu_xorshift64(), value makers */

#ifdef __KERNEL__
#define AM_TEST_UNUSED	__maybe_unused
#else
#define AM_TEST_UNUSED	__attribute__((__unused__))
#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#endif
#endif

/*
 * skip_reason is an addition after the three agreed fields: a positional
 * initialiser of those three stays valid and leaves it NULL.
 */
struct am_test_ctx {
	const char *name;
	int failed;
	int skipped;
	const char *skip_reason;
};

struct am_test_case {
	const char *name;
	void (*fn)(struct am_test_ctx *);
};

/* The cases of one area, run in a row; @name shows in a diagnostic line. */
struct am_test_suite {
	const char *name;
	const struct am_test_case *cases;
	int n;
};

#define TEST(name)	static void test_##name(struct am_test_ctx *_ctx)
#define AM_TEST_ENTRY(name)	{ #name, test_##name },
#define AM_TEST_SUITE(area)	{ #area, am_##area##_cases, (int)ARRAY_SIZE(am_##area##_cases) }

/* ---- output: diagnostics start with "# ", result lines do not ---- */

#ifdef __KERNEL__
#define am_test_log(fmt, ...)	pr_info("# " fmt "\n", ##__VA_ARGS__)
#define am_test_out(fmt, ...)	pr_info(fmt "\n", ##__VA_ARGS__)
#else
#define am_test_log(fmt, ...)	printf("# " fmt "\n", ##__VA_ARGS__)
#define am_test_out(fmt, ...)	printf(fmt "\n", ##__VA_ARGS__)
#endif

/* ---- memory: zeroed, counted so that a test's own leaks show too ---- */

#ifdef __KERNEL__
static atomic_long_t am_test_allocs_live = ATOMIC_LONG_INIT(0);

static AM_TEST_UNUSED void *am_test_alloc(size_t size)
{
	void *p = kvzalloc(size, GFP_KERNEL);

	if (p)
		atomic_long_inc(&am_test_allocs_live);
	return p;
}

static AM_TEST_UNUSED void am_test_free(void *p)
{
	if (!p)
		return;
	atomic_long_dec(&am_test_allocs_live);
	kvfree(p);
}

static inline long am_test_allocs(void)
{
	return atomic_long_read(&am_test_allocs_live);
}
#else
static long am_test_allocs_live;

static AM_TEST_UNUSED void *am_test_alloc(size_t size)
{
	/* calloc(0) may return NULL: a zero-sized request is still a block */
	void *p = calloc(1, size ? size : 1);

	if (p)
		__atomic_add_fetch(&am_test_allocs_live, 1, __ATOMIC_RELAXED);
	return p;
}

static AM_TEST_UNUSED void am_test_free(void *p)
{
	if (!p)
		return;
	__atomic_sub_fetch(&am_test_allocs_live, 1, __ATOMIC_RELAXED);
	free(p);
}

static inline long am_test_allocs(void)
{
	return __atomic_load_n(&am_test_allocs_live, __ATOMIC_RELAXED);
}
#endif

/* ---- assertions ---- */

/* Values are shown as long long: pointers, errnos and sizes all fit. */
#define __AM_CMP(kind, a, op, b, on_fail) do {				\
	long long _am_a = (long long)(a);				\
	long long _am_b = (long long)(b);				\
	if (!(_am_a op _am_b)) {					\
		am_test_log("%s:%d: %s(%s, %s) failed: %lld %s %lld",	\
			    __FILE__, __LINE__, kind, #a, #b,		\
			    _am_a, #op, _am_b);				\
		_ctx->failed = 1;					\
		on_fail;						\
	}								\
} while (0)

#define __AM_BOOL(kind, c, want, on_fail) do {				\
	long long _am_c = !!(c);					\
	if (_am_c != (want)) {						\
		am_test_log("%s:%d: %s(%s) failed: got %lld",		\
			    __FILE__, __LINE__, kind, #c, _am_c);	\
		_ctx->failed = 1;					\
		on_fail;						\
	}								\
} while (0)

#define __AM_PTR(kind, p, want_null, on_fail) do {			\
	const void *_am_p = (p);					\
	if ((_am_p == NULL) != (want_null)) {				\
		am_test_log("%s:%d: %s(%s) failed: got %lld",		\
			    __FILE__, __LINE__, kind, #p,		\
			    (long long)(uintptr_t)_am_p);		\
		_ctx->failed = 1;					\
		on_fail;						\
	}								\
} while (0)

#define ASSERT_TRUE(c)		__AM_BOOL("ASSERT_TRUE", c, 1, return)
#define ASSERT_FALSE(c)		__AM_BOOL("ASSERT_FALSE", c, 0, return)
#define ASSERT_EQ(a, b)		__AM_CMP("ASSERT_EQ", a, ==, b, return)
#define ASSERT_NE(a, b)		__AM_CMP("ASSERT_NE", a, !=, b, return)
#define ASSERT_GE(a, b)		__AM_CMP("ASSERT_GE", a, >=, b, return)
#define ASSERT_LE(a, b)		__AM_CMP("ASSERT_LE", a, <=, b, return)
#define ASSERT_GT(a, b)		__AM_CMP("ASSERT_GT", a, >, b, return)
#define ASSERT_LT(a, b)		__AM_CMP("ASSERT_LT", a, <, b, return)
#define ASSERT_NULL(p)		__AM_PTR("ASSERT_NULL", p, 1, return)
#define ASSERT_NOT_NULL(p)	__AM_PTR("ASSERT_NOT_NULL", p, 0, return)

#define EXPECT_TRUE(c)		__AM_BOOL("EXPECT_TRUE", c, 1, (void)0)
#define EXPECT_FALSE(c)		__AM_BOOL("EXPECT_FALSE", c, 0, (void)0)
#define EXPECT_EQ(a, b)		__AM_CMP("EXPECT_EQ", a, ==, b, (void)0)
#define EXPECT_NE(a, b)		__AM_CMP("EXPECT_NE", a, !=, b, (void)0)
#define EXPECT_GE(a, b)		__AM_CMP("EXPECT_GE", a, >=, b, (void)0)
#define EXPECT_LE(a, b)		__AM_CMP("EXPECT_LE", a, <=, b, (void)0)
#define EXPECT_GT(a, b)		__AM_CMP("EXPECT_GT", a, >, b, (void)0)
#define EXPECT_LT(a, b)		__AM_CMP("EXPECT_LT", a, <, b, (void)0)
#define EXPECT_NULL(p)		__AM_PTR("EXPECT_NULL", p, 1, (void)0)
#define EXPECT_NOT_NULL(p)	__AM_PTR("EXPECT_NOT_NULL", p, 0, (void)0)

#define SKIP(reason) do {						\
	_ctx->skipped = 1;						\
	_ctx->skip_reason = (reason);					\
	return;								\
} while (0)

/*
 * Fixtures, kselftest style:
 *
 *	FIXTURE(maps) { struct anchormap *m; };
 *	FIXTURE_SETUP(maps) { self->m = ...; ASSERT_NOT_NULL(self->m); }
 *	FIXTURE_TEARDOWN(maps) { ... }
 *	TEST_F(maps, inserts) { ASSERT_EQ(..., self->m ...); }
 *
 * TEST_F(fx, name) defines the test fx_name (list it as
 * AM_TEST_ENTRY(fx_name)); TEST_WITH(fx, name) is the same test called
 * just name, for a fixture that is only the common set-up of tests named
 * for what they check.  The fixture lives in am_test_alloc() memory
 * (kernel stacks are small), the body runs only when setup passed, and
 * teardown always runs, also after an ASSERT_* returned from the body.
 */
#define FIXTURE(fx)		struct am_fixture_##fx
#define FIXTURE_SETUP(fx)						\
	static void am_setup_##fx(struct am_test_ctx *_ctx,		\
				  struct am_fixture_##fx *self)
#define FIXTURE_TEARDOWN(fx)						\
	static void am_teardown_##fx(struct am_test_ctx *_ctx,		\
				     struct am_fixture_##fx *self)
#define __AM_TEST_FIXTURE(fx, test)					\
	static void am_body_##test(struct am_test_ctx *_ctx,		\
				   struct am_fixture_##fx *self);	\
	static void test_##test(struct am_test_ctx *_ctx)		\
	{								\
		struct am_fixture_##fx *self = am_test_alloc(sizeof(*self)); \
									\
		ASSERT_NOT_NULL(self);					\
		am_setup_##fx(_ctx, self);				\
		if (!_ctx->failed && !_ctx->skipped)			\
			am_body_##test(_ctx, self);			\
		am_teardown_##fx(_ctx, self);				\
		am_test_free(self);					\
	}								\
	static void am_body_##test(struct am_test_ctx *_ctx,		\
				   struct am_fixture_##fx *self)
#define TEST_F(fx, name)	__AM_TEST_FIXTURE(fx, fx##_##name)
#define TEST_WITH(fx, name)	__AM_TEST_FIXTURE(fx, name)

/* ---- running ---- */

static AM_TEST_UNUSED void am_test_report(const struct am_test_ctx *ctx, int number)
{
	if (ctx->failed)
		am_test_out("not ok %d %s", number, ctx->name);
	else if (ctx->skipped)
		am_test_out("ok %d %s # SKIP %s", number, ctx->name,
			    ctx->skip_reason ? ctx->skip_reason : "");
	else
		am_test_out("ok %d %s", number, ctx->name);
#ifndef __KERNEL__
	/* a crash in the next test must not swallow this line */
	fflush(stdout);
#endif
}

/*
 * A test that leaks would make every later leak check meaningless, and it
 * is a bug in its own right: the map must free all it allocated.
 */
static AM_TEST_UNUSED void am_test_check_leaks(struct am_test_ctx *ctx,
					       long map_before, long own_before)
{
	long map_after = anchormap_debug_allocs_live();
	long own_after = am_test_allocs();

	if (map_after != map_before) {
		am_test_log("%s: map allocations live %ld before, %ld after",
			    ctx->name, map_before, map_after);
		ctx->failed = 1;
	}
	if (own_after != own_before) {
		am_test_log("%s: test allocations live %ld before, %ld after",
			    ctx->name, own_before, own_after);
		ctx->failed = 1;
	}
}

static AM_TEST_UNUSED int am_test_run(const struct am_test_case *cases, int n,
				      int first_number, int *passed, int *failed,
				      int *skipped)
{
	int i;

	for (i = 0; i < n; i++) {
		struct am_test_ctx ctx = { cases[i].name, 0, 0, NULL };
		long map_before = anchormap_debug_allocs_live();
		long own_before = am_test_allocs();

		cases[i].fn(&ctx);
		/* a failed assertion may have left injection armed */
		anchormap_debug_fail_nth(0);
		am_test_check_leaks(&ctx, map_before, own_before);
		am_test_report(&ctx, first_number + i);
		if (ctx.failed)
			(*failed)++;
		else if (ctx.skipped)
			(*skipped)++;
		else
			(*passed)++;
	}
	return *failed ? -1 : 0;
}

static AM_TEST_UNUSED int am_test_suites_count(const struct am_test_suite *const *suites,
					       int nsuites)
{
	int i, n = 0;

	for (i = 0; i < nsuites; i++)
		n += suites[i]->n;
	return n;
}

/* Runs @suites in order, numbered from @first_number on; returns how many ran. */
static AM_TEST_UNUSED int am_test_run_suites(const struct am_test_suite *const *suites,
					     int nsuites, int first_number, int *passed,
					     int *failed, int *skipped)
{
	int i, number = first_number;

	for (i = 0; i < nsuites; i++) {
		am_test_log("suite %s: %d tests", suites[i]->name, suites[i]->n);
		am_test_run(suites[i]->cases, suites[i]->n, number, passed, failed, skipped);
		number += suites[i]->n;
	}
	return number - first_number;
}

#ifndef __KERNEL__
static AM_TEST_UNUSED void am_test_begin(int n)
{
	/* line-buffered even into a pipe, so output survives a crash */
	setvbuf(stdout, NULL, _IOLBF, 0);
	am_test_out("TAP version 13");
	am_test_out("1..%d", n);
}

static AM_TEST_UNUSED int am_test_end(int passed, int failed, int skipped)
{
	if (skipped)
		am_test_out("%d passed, %d failed, %d skipped", passed, failed, skipped);
	else
		am_test_out("%d passed, %d failed", passed, failed);
	fflush(stdout);
	return failed ? 1 : 0;
}

static AM_TEST_UNUSED int am_test_main(const struct am_test_case *cases, int n)
{
	int passed = 0, failed = 0, skipped = 0;

	am_test_begin(n);
	am_test_run(cases, n, 1, &passed, &failed, &skipped);
	return am_test_end(passed, failed, skipped);
}

static AM_TEST_UNUSED int am_test_main_suites(const struct am_test_suite *const *suites,
					      int nsuites)
{
	int passed = 0, failed = 0, skipped = 0;

	am_test_begin(am_test_suites_count(suites, nsuites));
	am_test_run_suites(suites, nsuites, 1, &passed, &failed, &skipped);
	return am_test_end(passed, failed, skipped);
}
#endif

#endif /* _AM_TEST_HARNESS_H */
