# SPDX-License-Identifier: GPL-2.0 OR MIT
#
# Kernel targets, included at the end of the top Makefile.
#
#   make module        build/kmod/anchormap.ko against KDIR, W=1, no warnings
#   make sparse        anchormap.ko, the selftest and the demo through sparse (C=2)
#   make check-kernel  the kernel matrix (6.1, 6.1-rt, 6.12, 6.12-rt): build,
#                      in-kernel selftests and the demo under QEMU on each
#   make check-kernel-one  the selftests on KVER only (default kernel)
#   make demo          install deps, build, run the example client under QEMU
#   make check-debug   the debug-kernel lane: check-kasan, then check-kcsan
#   make check-kasan   in-kernel selftests under a KASAN + lockdep kernel
#   make check-kcsan   in-kernel selftests under a KCSAN kernel
#
# KVER defaults to the running kernel when its headers are installed, else
# to the newest installed release that has both headers and a /boot image
# (kernel/kver.sh).  ANCHORMAP_TEST=y builds the test hooks into
# anchormap.ko (kmod-test does; a plain `make module` leaves them out).

KVER	?= $(shell sh kernel/kver.sh)
ANCHORMAP_TEST ?=
KDIR	?= /lib/modules/$(KVER)/build
KB	:= $(B)/kmod
KTEST	:= selftests/kernel
KDEMO	:= examples/kernel_registry

# Every file the kernel builds read, mirrored into $(KB) as symlinks with
# the same relative paths, so that Kbuild writes its objects there and
# relative #includes still resolve.
KSRC	:= Kbuild sources.mk $(AM_CORE_SRC) $(AM_CORE_HDR) $(wildcard kernel/*.c kernel/*.h) \
	   $(wildcard selftests/harness.h selftests/am_testutil.h selftests/am_snapbuf.h) \
	   $(wildcard selftests/common_tests.c) \
	   $(wildcard selftests/common/*) \
	   $(wildcard $(KTEST)/Kbuild $(KTEST)/*.c $(KTEST)/*.h) \
	   $(wildcard $(KDEMO)/Kbuild $(KDEMO)/*.c $(KDEMO)/*.h)

KMAKE	= $(MAKE) --no-print-directory -C $(KDIR) W=1 ANCHORMAP_TEST=$(ANCHORMAP_TEST)
KSYMS	= KBUILD_EXTRA_SYMBOLS=$(CURDIR)/$(KB)/Module.symvers

# $(call kbuild,LOG,ARGS): run Kbuild with ARGS, show its output, and fail
# on an error or on any warning (compiler, sparse or modpost).
define kbuild
@log=$(KB)/$(1).log; \
	$(KMAKE) $(2) >$$log 2>&1; rc=$$?; cat $$log; \
	if [ $$rc -ne 0 ]; then echo "kernel: $(1) failed" >&2; exit 1; fi; \
	if grep -Eiq 'warning|error:' $$log; then \
		echo "kernel: $(1) has warnings (see $$log)" >&2; exit 1; fi
endef

# $(call nofpu,KO): a kernel module must not touch SSE/AVX registers.
define nofpu
@if objdump -d $(1) | grep -Eq '%[xyz]mm[0-9]'; then \
		echo "kernel: $(1) uses vector registers" >&2; exit 1; fi
endef

.PHONY: kmirror kmod-test kmod-demo clean-kernel

kmirror:
	@if [ -z "$(KVER)" ] || [ ! -e "$(KDIR)/Makefile" ]; then \
		echo "kernel: no kernel headers at '$(KDIR)'" \
		     "(bash scripts/install-deps.sh kernel)" >&2; exit 1; fi
	@mkdir -p $(KB)
	@for f in $(KSRC); do \
		mkdir -p $(KB)/$$(dirname $$f) && ln -sfn $(CURDIR)/$$f $(KB)/$$f || exit 1; \
	done

module: kmirror
	$(call kbuild,module,M=$(CURDIR)/$(KB) modules)
	$(call nofpu,$(KB)/anchormap.ko)
	@echo "kernel: built $(KB)/anchormap.ko for $(KVER)"

# $(call relink,DIR): a client module built before the core's last build may
# carry the old symbol CRCs, and Kbuild does not rebuild it for a new
# Module.symvers alone ("disagrees about version of symbol" at insmod once a
# type the exports name changed, e.g. the writer state): drop what it built
# when the core's Module.symvers is newer, so that it is built again.
define relink
@for k in $(1)/*.ko; do \
		if [ -e "$$k" ] && [ "$$k" -ot $(KB)/Module.symvers ]; then \
			rm -f $(1)/*.o $(1)/*.ko $(1)/*.mod $(1)/*.mod.c $(1)/.*.cmd \
			      $(1)/modules.order $(1)/Module.symvers; break; fi; \
	done
endef

kmod-test: ANCHORMAP_TEST = y
kmod-test: module
	$(call relink,$(KB)/$(KTEST))
	$(call kbuild,test,M=$(CURDIR)/$(KB)/$(KTEST) $(KSYMS) modules)
	$(call nofpu,$(KB)/$(KTEST)/test_anchormap.ko)

kmod-demo: module
	$(call relink,$(KB)/$(KDEMO))
	$(call kbuild,demo,M=$(CURDIR)/$(KB)/$(KDEMO) $(KSYMS) modules)
	$(call nofpu,$(KB)/$(KDEMO)/registry_demo.ko)

# The test module links against the test hooks: sparse sees the test build.
sparse: ANCHORMAP_TEST = y
sparse: module
	$(call kbuild,sparse,M=$(CURDIR)/$(KB) C=2 modules)
	$(call kbuild,sparse-test,M=$(CURDIR)/$(KB)/$(KTEST) $(KSYMS) C=2 modules)
	$(call kbuild,sparse-demo,M=$(CURDIR)/$(KB)/$(KDEMO) $(KSYMS) C=2 modules)
	@echo "kernel: sparse clean"

# A build failure still leaves a failed count for selftests/summary.sh.
# The demo runs against a module built without the test hooks.
# check-kernel-one and demo: one kernel, KVER/KDIR (default: as above).
check-kernel-one:
	@mkdir -p $(B)/results
	@bash scripts/install-deps.sh kernel
	@$(MAKE) --no-print-directory kmod-test || { echo "0 1 0" > $(B)/results/kernel.count; exit 1; }
	KVER=$(KVER) bash selftests/qemu/run.sh test

demo:
	@bash scripts/install-deps.sh kernel
	@$(MAKE) --no-print-directory kmod-demo
	KVER=$(KVER) bash selftests/qemu/run.sh demo

# ---- the kernel matrix ----
#
# make check-kernel: for each kernel of KERNELS (Debian bookworm's images,
# made usable under build/kernels/ by scripts/kernel-image.sh when not
# installed), anchormap.ko, the selftest and the demo are built against its
# headers in build/kmod-NAME (W=1, no warnings), then the in-kernel suite
# (build/results/kernel-NAME.count) and the held-pointer demo
# (build/results/demo-NAME.count) run under QEMU.  On PREEMPT_RT kernels
# the kernel-only tests (the concurrency ones) run RT_ROUNDS times in the
# boot: a failure in one run of two would pass all ten with p = 2^-10.
# make check-kernel-NAME runs one kernel.
KERNELS		:= 6.1 6.1-rt 6.12 6.12-rt
RT_ROUNDS	?= 10
KTIMEOUT	?= 600

.PHONY: check-kernel check-kernel-one $(addprefix check-kernel-,$(KERNELS))

check-kernel:
	@mkdir -p $(B)/results
	@rc=0; for k in $(KERNELS); do \
		$(MAKE) --no-print-directory check-kernel-$$k || rc=1; done; exit $$rc

$(addprefix check-kernel-,$(KERNELS)): check-kernel-%:
	@mkdir -p $(B)/results && rm -f $(B)/results/kernel-$*.count $(B)/results/demo-$*.count
	@fail() { echo "0 1 0" > $(B)/results/kernel-$*.count; \
		  echo "0 1 0" > $(B)/results/demo-$*.count; exit 1; }; \
	bash scripts/install-deps.sh kernel || fail; \
	set -- $$(bash scripts/kernel-image.sh $*) && [ $$# -eq 3 ] || fail; \
	kver=$$1 kdir=$$2 image=$$3; \
	case $* in *-rt) args="rounds=$(RT_ROUNDS)" ;; *) args= ;; esac; \
	mk="$(MAKE) --no-print-directory KDIR=$$kdir KB=$(B)/kmod-$* KVER=$$kver"; \
	$$mk kmod-test || fail; \
	rc=0; \
	KVER=$$kver QEMU_KERNEL=$$image QEMU_KMOD=$(CURDIR)/$(B)/kmod-$* QEMU_NAME=kernel-$* \
	QEMU_TIMEOUT=$(KTIMEOUT) QEMU_TEST_ARGS="$$args" bash selftests/qemu/run.sh test || rc=1; \
	d="0 1 0"; \
	if $$mk kmod-demo && KVER=$$kver QEMU_KERNEL=$$image QEMU_KMOD=$(CURDIR)/$(B)/kmod-$* \
	   QEMU_NAME=$* bash selftests/qemu/run.sh demo; then d="1 0 0"; else rc=1; fi; \
	echo "$$d" > $(B)/results/demo-$*.count; \
	exit $$rc

# ---- the debug-kernel lane ----
#
# check-FLAVOUR builds (or reuses: cached under build/dkernel/, keyed by
# the config fragments, the source version and the compiler) a kernel from
# Debian's linux-source-6.1 with selftests/qemu/configs/base.config and
# FLAVOUR.config (selftests/qemu/debug-kernel.sh), builds anchormap.ko and
# test_anchormap.ko against it in build/kmod-FLAVOUR (W=1, no warnings, -g
# so that reports can be decoded with scripts/faddr2line), boots it under
# QEMU (selftests/qemu/run.sh) and writes build/results/FLAVOUR.count.
# The run fails on a "not ok", and on any KASAN, lockdep, sleep-in-atomic
# or (involving anchormap) KCSAN report; the guest first checks in its
# kernel log that the checkers are on (DEXPECT_*).
DEBUG_KERNELS	:= kasan kcsan
DEBUG_TIMEOUT	?= 900
DEXPECT_kasan	:= KernelAddressSanitizer initialized|Lock dependency validator
DEXPECT_kcsan	:= kcsan: enabled early|kcsan: strict mode configured
DAPPEND_kasan	:= kasan_multi_shot
DAPPEND_kcsan	:=

.PHONY: check-debug $(addprefix check-,$(DEBUG_KERNELS))

check-debug:
	@mkdir -p $(B)/results
	@rc=0; for f in $(DEBUG_KERNELS); do \
		$(MAKE) --no-print-directory check-$$f || rc=1; done; exit $$rc

# A failure before the boot still leaves a failed count.
$(addprefix check-,$(DEBUG_KERNELS)): check-%:
	@mkdir -p $(B)/results && rm -f $(B)/results/$*.count
	@fail() { echo "0 1 0" > $(B)/results/$*.count; exit 1; }; \
	bash scripts/install-deps.sh kernel || fail; \
	kdir=$$(bash selftests/qemu/debug-kernel.sh $*) || fail; \
	kver="$$(cat $$kdir/include/config/kernel.release)-$*"; \
	$(MAKE) --no-print-directory kmod-test KDIR=$$kdir KB=$(B)/kmod-$* \
		KVER=$$kver KCFLAGS=-g || fail; \
	KVER=$$kver QEMU_KERNEL=$$kdir/arch/x86/boot/bzImage QEMU_KMOD=$(CURDIR)/$(B)/kmod-$* \
	QEMU_NAME=$* QEMU_TIMEOUT=$(DEBUG_TIMEOUT) QEMU_APPEND="$(DAPPEND_$*)" \
	QEMU_EXPECT="$(DEXPECT_$*)" QEMU_FADDR2LINE=$$kdir/source/scripts/faddr2line \
	bash selftests/qemu/run.sh test

# Outputs of a direct `make -C $KDIR M=$PWD` in the source tree.
clean: clean-kernel
clean-kernel:
	rm -f kernel/*.o kernel/.*.cmd $(KTEST)/*.o $(KTEST)/*.ko $(KTEST)/*.mod \
	      $(KTEST)/*.mod.[co] $(KTEST)/.*.cmd $(KTEST)/modules.order \
	      $(KTEST)/Module.symvers $(KDEMO)/*.o $(KDEMO)/*.ko $(KDEMO)/*.mod \
	      $(KDEMO)/*.mod.[co] $(KDEMO)/.*.cmd $(KDEMO)/modules.order \
	      $(KDEMO)/Module.symvers .*.o.d kernel/.*.o.d

# make bench-kernel (anchormap against rhashtable under QEMU)
include bench/kernel/bench-kernel.mk
