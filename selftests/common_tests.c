// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * common_tests.c - functional tests of the anchormap API, shared by the
 * userspace runner (selftests/user/test_common.c) and the kernel test
 * module.  Include it after harness.h.
 *
 * The tests live in selftests/common/, one file an area, each ending with
 * its table of cases and its suite; this file makes them one translation
 * unit (the kernel module builds it as part of test_anchormap.o) and lists
 * the suites in the order they run.
 */
#include "common/helpers.h"

#include "common/api.c"
#include "common/iter.c"
#include "common/exclusive.c"
#include "common/whole_map.c"
#include "common/keys.c"
#include "common/lifetime.c"
#include "common/inline.c"
#include "common/replace.c"
#include "common/alloc_fail.c"
#include "common/snapshot.c"

static const struct am_test_suite *const am_common_suites[] = {
	&am_api_suite,
	&am_iter_suite,
	&am_exclusive_suite,
	&am_whole_map_suite,
	&am_keys_suite,
	&am_lifetime_suite,
	&am_inline_suite,
	&am_replace_suite,
	&am_alloc_fail_suite,
	&am_snapshot_suite,
};
