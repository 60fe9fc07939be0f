# SPDX-License-Identifier: GPL-2.0 OR MIT
#
# anchormap: userspace library, selftests, kernel module (see Kbuild).
#
#   make              build/libanchormap.{a,so} and build/anchormap.pc
#   make check        install what is missing, run every test (plain, ASan+UBSan,
#                     TSan, in-kernel under QEMU); ends with "N passed, N failed"
#   make lint         checkpatch --strict, kernel-doc, sparse, coccicheck on the
#                     kernel-facing files (scripts/lint.sh, scripts/lint-allow.txt)
#   make check-pkg    build the Debian packages (debian/, dkms.conf), install them,
#                     build and boot the example client against them, purge them
#   make demo         boot a kernel under QEMU and show the example module
#   make module       anchormap.ko against KDIR
#   make fuzz, make soak  long libFuzzer and soak runs
#   make install PREFIX=/usr/local

PREFIX	?= /usr/local
CC	?= cc
VERSION	:= 0.1.0
B	:= build

WARN	:= -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	   -Wvla -Wpointer-arith -Wno-unused-parameter
CFLAGS	?= -O2 -g
AM_CFLAGS := -std=gnu11 $(WARN) -Werror -fPIC -I. -Iuserspace_shim -pthread $(CFLAGS)

include sources.mk
CORE_SRC := $(AM_CORE_SRC) userspace_shim/shim.c
CORE_HDR := $(AM_CORE_HDR) userspace_shim/anchormap_deps.h

TEST_SRC := $(wildcard selftests/user/test_*.c)
TEST_DEP := selftests/harness.h selftests/am_testutil.h selftests/am_snapbuf.h selftests/common_tests.c \
	    $(wildcard selftests/common/*) \
	    $(wildcard selftests/user/*.h)

# variant name -> extra flags
VAR_plain :=
VAR_asan  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
VAR_tsan  := -fsanitize=thread -O1
VARIANTS  := plain asan tsan

.PHONY: all lib check check-user check-kernel demo module sparse clean install deps bench \
	fuzz check-fuzz soak lint check-pkg print-core \
	$(addprefix check-,$(VARIANTS)) pkgconfig-test

all: lib
lib: $(B)/libanchormap.a $(B)/libanchormap.so $(B)/anchormap.pc

$(B)/plain/%.o: %.c $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(AM_CFLAGS) -c $< -o $@

$(B)/libanchormap.a: $(patsubst %.c,$(B)/plain/%.o,$(CORE_SRC))
	@rm -f $@
	ar rcs $@ $^

$(B)/libanchormap.so: $(patsubst %.c,$(B)/plain/%.o,$(CORE_SRC))
	$(CC) -shared -Wl,-soname,libanchormap.so.0 -pthread -o $@ $^
	ln -sf libanchormap.so $(B)/libanchormap.so.0

# The in-tree .pc points at this checkout; make install writes its own.
$(B)/anchormap.pc: scripts/anchormap.pc.in Makefile
	@mkdir -p $(B)
	sed -e 's|@PREFIX@|$(CURDIR)|' -e 's|@LIBDIR@|$(CURDIR)/$(B)|' \
	    -e 's|@INCDIR@|$(CURDIR)|' -e 's|@VERSION@|$(VERSION)|' $< > $@

# Test binaries: build/<variant>/test_<name>, each linked with its own core build.
define variant_rules
$(B)/$(1)/core/%.o: %.c $(CORE_HDR)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(AM_CFLAGS) $$(VAR_$(1)) -DANCHORMAP_TEST_HOOKS -c $$< -o $$@

$(B)/$(1)/test_%: selftests/user/test_%.c $(patsubst %.c,$(B)/$(1)/core/%.o,$(CORE_SRC)) $(TEST_DEP)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(AM_CFLAGS) $$(VAR_$(1)) -DANCHORMAP_TEST_HOOKS -Iselftests $$< \
		$(patsubst %.c,$(B)/$(1)/core/%.o,$(CORE_SRC)) -o $$@ -lm

check-$(1): deps $(patsubst selftests/user/%.c,$(B)/$(1)/%,$(TEST_SRC))
	bash selftests/run_user.sh $(1) $(B)/$(1)
endef
$(foreach v,$(VARIANTS),$(eval $(call variant_rules,$(v))))

.SECONDARY:

deps:
	@bash scripts/install-deps.sh user

check-user:
	@rm -f $(B)/results/*.count
	@for v in $(VARIANTS); do $(MAKE) --no-print-directory check-$$v || exit 1; done

# libFuzzer targets: 30 s each inside make check, FUZZ_SECONDS each for make fuzz
FUZZ_SECONDS ?= 600
check-fuzz:
	@bash scripts/install-deps.sh fuzz
	bash selftests/fuzz/run.sh 30 $(B)

fuzz:
	@bash scripts/install-deps.sh fuzz
	bash selftests/fuzz/run.sh $(FUZZ_SECONDS) $(B)

# The soak test for minutes under ASan+UBSan (make check runs it for 2 s
# in every variant).
SOAK_SECONDS ?= 300
soak: deps $(B)/asan/test_soak $(B)/tsan/test_linearizability
	AM_SOAK_SECONDS=$(SOAK_SECONDS) $(B)/asan/test_soak
	AM_LIN_SECONDS=$(SOAK_SECONDS) $(B)/tsan/test_linearizability

# The kernel's checkers; one "P F 0" line each in build/results/lint.count:
# make sparse (C=2, any warning fails) against every kernel of the matrix
# (KERNELS in kernel/kernel.mk, the ones make check-kernel boots): installed
# headers as they are, the others unpacked under build/kernels/ by
# scripts/kernel-image.sh --headers; then scripts/lint.sh.
lint:
	@mkdir -p $(B)/results && rm -f $(B)/results/lint.count
	@rc=0; bash scripts/install-deps.sh lint kernel || rc=1; \
	for k in $(KERNELS); do \
		set -- $$(bash scripts/kernel-image.sh --headers $$k); \
		if [ $$# -ne 2 ]; then \
			echo "not ok lint_sparse_$$k # no headers (scripts/kernel-image.sh --headers $$k)"; \
			echo "0 1 0" >> $(B)/results/lint.count; rc=1; continue; \
		fi; \
		echo "# lint: sparse on $$k: $$1 ($$2)"; \
		if $(MAKE) --no-print-directory sparse KVER=$$1 KDIR=$$2 KB=$(B)/kmod-sparse-$$k; then \
			echo "ok lint_sparse_$$k"; echo "1 0 0" >> $(B)/results/lint.count; \
		else \
			echo "not ok lint_sparse_$$k"; echo "0 1 0" >> $(B)/results/lint.count; rc=1; \
		fi; \
	done; \
	bash scripts/lint.sh $(B) || rc=1; \
	exit $$rc

# The Debian packages, installed and removed again (selftests/pkg_test.sh).
check-pkg:
	@mkdir -p $(B)/results && rm -f $(B)/results/pkg.count $(B)/results/pkg-user.count
	@bash scripts/install-deps.sh pkg kernel || { echo "0 1 0" > $(B)/results/pkg.count; exit 1; }
	bash selftests/pkg_test.sh $(B)

pkgconfig-test: lib
	bash selftests/pkgconfig_test.sh $(B)

check:
	@mkdir -p $(B)/results && rm -f $(B)/results/*.count
	@rc=0; \
	$(MAKE) --no-print-directory lib || rc=1; \
	for v in $(VARIANTS); do $(MAKE) --no-print-directory check-$$v || rc=1; done; \
	$(MAKE) --no-print-directory pkgconfig-test || rc=1; \
	$(MAKE) --no-print-directory lint || rc=1; \
	$(MAKE) --no-print-directory check-fuzz || rc=1; \
	$(MAKE) --no-print-directory check-kernel || rc=1; \
	$(MAKE) --no-print-directory check-pkg || rc=1; \
	$(MAKE) --no-print-directory check-debug || rc=1; \
	bash selftests/summary.sh $(B)/results || rc=1; \
	exit $$rc

# The core's files for the scripts (selftests/fuzz/run.sh, scripts/lint.sh):
# sources, then headers, on one line each.
print-core:
	@echo $(AM_CORE_SRC)
	@echo $(AM_CORE_HDR)

install: lib
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 $(AM_PUBLIC_HDR) $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(B)/libanchormap.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(B)/libanchormap.so $(DESTDIR)$(PREFIX)/lib/libanchormap.so.0
	ln -sf libanchormap.so.0 $(DESTDIR)$(PREFIX)/lib/libanchormap.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(PREFIX)/lib|' \
	    -e 's|@INCDIR@|$(PREFIX)/include|' -e 's|@VERSION@|$(VERSION)|' \
	    scripts/anchormap.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/anchormap.pc

clean:
	rm -rf $(B)
	rm -f *.o *.ko *.mod *.mod.c *.mod.o .*.cmd modules.order Module.symvers

include kernel/kernel.mk
include bench/bench.mk
