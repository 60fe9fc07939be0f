# SPDX-License-Identifier: GPL-2.0 OR MIT
#
# make bench-kernel: anchormap against the kernel's rhashtable in the same
# boot under QEMU (bench/kernel/bench_anchormap.c), next to callgrind
# instruction counts of the same loops in userspace (bench/kernel/user_loops.c).
# Prints the table and writes it to bench/results/kernel.md.
#
#   make bench-kernel                           defaults: 200000 keys, 5 reps
#   make bench-kernel BENCH_KERNEL_ARGS="nkeys=1000000 reps=3"
#
# Included from kernel/kernel.mk (it needs KB, KSYMS, kbuild, nofpu).

BK		:= bench/kernel
BKB		:= $(KB)/$(BK)
BKOUT		:= $(B)/bench-kernel
BENCH_KERNEL_ARGS ?=
BENCH_KERNEL_MD	?= bench/results/kernel.md

.PHONY: bench-kernel kmod-bench

# the module, built in the mirror like the selftest and the demo
kmod-bench: module
	@for f in $(BK)/Kbuild $(BK)/bench_anchormap.c $(BK)/bench_keys.h selftests/am_testutil.h; do \
		mkdir -p $(KB)/$$(dirname $$f) && ln -sfn $(CURDIR)/$$f $(KB)/$$f || exit 1; \
	done
	$(call kbuild,bench-kernel,M=$(CURDIR)/$(BKB) $(KSYMS) modules)
	$(call nofpu,$(BKB)/bench_anchormap.ko)

# the userspace loops: through build/libanchormap.a (SSE2 group match) and
# through a SWAR build of the same core (-DANCHORMAP_NO_SSE2, the kernel's path)
$(BKOUT)/user_loops: $(BK)/user_loops.c $(BK)/bench_keys.h selftests/am_testutil.h $(B)/libanchormap.a \
		   anchormap.h
	@mkdir -p $(dir $@)
	$(CC) $(AM_CFLAGS) -I$(BK) $< $(B)/libanchormap.a -o $@

$(BKOUT)/user_loops_swar: $(BK)/user_loops.c $(BK)/bench_keys.h selftests/am_testutil.h \
			$(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(AM_CFLAGS) -DANCHORMAP_NO_SSE2 -I$(BK) $< $(CORE_SRC) -o $@

bench-kernel:
	@bash scripts/install-deps.sh user kernel valgrind
	@$(MAKE) --no-print-directory kmod-bench $(BKOUT)/user_loops $(BKOUT)/user_loops_swar
	bash $(BK)/callgrind.sh $(BKOUT)
	QEMU_TIMEOUT=$${QEMU_TIMEOUT:-180} BENCH_ARGS="$(BENCH_KERNEL_ARGS)" \
		bash selftests/qemu/run.sh bench
	bash $(BK)/report.sh $(B)/qemu-bench/console.log $(BKOUT)/callgrind.txt $(BENCH_KERNEL_MD)
