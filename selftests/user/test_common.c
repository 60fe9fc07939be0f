// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * test_common.c - the portable functional tests (selftests/common/), run in
 * userspace.  The kernel test module includes the same common_tests.c.
 */
#include "harness.h"
#include "common_tests.c"

int main(void)
{
	return am_test_main_suites(am_common_suites, (int)ARRAY_SIZE(am_common_suites));
}
