// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * test_common.c - the portable functional tests, run in userspace.
 * The kernel test module includes the same common_tests.c.
 */
#include "harness.h"
#include "common_tests.c"

int main(void)
{
	return am_test_main(am_common_cases,
			    (int)(sizeof(am_common_cases) / sizeof(am_common_cases[0])));
}
