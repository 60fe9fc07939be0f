/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* What both fuzz targets share: a check that stops libFuzzer with a finding. */
#ifndef _FUZZ_CHECK_H
#define _FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(c)							\
	do {								\
		if (!(c)) {						\
			fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__); \
			abort();					\
		}							\
	} while (0)

#endif /* _FUZZ_CHECK_H */
