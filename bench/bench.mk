# SPDX-License-Identifier: GPL-2.0 OR MIT
#
# bench/bench.mk - anchormap against the maps users would pick instead.
# Included from the top Makefile:
#
#   make bench                  the full matrix (~1-2 h), results in bench/results/
#   make bench BENCH_QUICK=1    a smoke run (a few minutes), results in build/bench-quick/
#   make bench-states           lookup cost by growth history and churn (issue 12):
#                               callgrind, memory, paired wall clock; bench/results/
#   make bench-states BENCH_QUICK=1   the same at small sizes, in build/bench-states-quick/
#   BENCH_MAPS=anchormap make bench-states   anchormap's rows alone (the other maps'
#                               rows in the CSVs are kept)
#   make bench-oldcore [OLDCORE_REV=8291ad5]   anchormap's inserts against an older core
#                               (instructions and paired wall clock), bench/results/oldcore.md
#
# See bench/BENCHMARK.md for what is measured and how.

BENCH_CXX	?= g++
BENCH_PKGS	:= absl_flat_hash_map absl_hash liburcu liburcu-cds ck tbb libdpdk
# libdpdk's pkg-config adds -march=corei7: dropped, so that every map in the
# binary is compiled for the same baseline as the library
BENCH_PKG_CFLAGS = $$(pkg-config --cflags $(BENCH_PKGS) | sed 's/-march=[^ ]*//g')
BENCH_HDRS	:= bench/maps.h bench/states.h selftests/am_testutil.h
BENCH_CFLAGS	:= -std=gnu++17 -O2 -g -Wall -Wextra -Wno-unused-parameter \
		   -Wno-missing-field-initializers -pthread -I. -Iuserspace_shim
BENCH_BIN	:= $(B)/bench

ifeq ($(BENCH_QUICK),1)
BENCH_OUT	?= $(B)/bench-quick
BENCH_MODE	:= quick
else
BENCH_OUT	?= bench/results
BENCH_MODE	:= full
endif

.PHONY: bench bench-deps bench-report bench-writers bench-states bench-oldcore bench-bulk

bench-deps:
	@bash scripts/install-deps.sh user bench

$(BENCH_BIN)/ambench: bench/ambench.cc $(BENCH_HDRS) bench/memcount.cc bench/memcount.h \
		      $(B)/libanchormap.a | bench-deps
	@mkdir -p $(dir $@)
	$(BENCH_CXX) $(BENCH_CFLAGS) $(BENCH_PKG_CFLAGS) \
		bench/ambench.cc bench/memcount.cc -o $@ \
		$(B)/libanchormap.a $$(pkg-config --libs $(BENCH_PKGS))

$(BENCH_BIN)/cgget: bench/cgget.cc $(BENCH_HDRS) $(B)/libanchormap.a | bench-deps
	@mkdir -p $(dir $@)
	$(BENCH_CXX) $(BENCH_CFLAGS) $(BENCH_PKG_CFLAGS) \
		bench/cgget.cc -o $@ \
		$(B)/libanchormap.a $$(pkg-config --libs $(BENCH_PKGS))

bench: $(BENCH_BIN)/ambench $(BENCH_BIN)/cgget
	bash bench/run.sh $(BENCH_MODE) $(BENCH_BIN) $(BENCH_OUT)

bench-report:
	bash bench/report.sh $(BENCH_OUT)

ifeq ($(BENCH_QUICK),1)
BENCH_STATES_OUT ?= $(B)/bench-states-quick
else
BENCH_STATES_OUT ?= bench/results
endif

bench-states: $(BENCH_BIN)/ambench $(BENCH_BIN)/cgget
	bash bench/states.sh $(BENCH_MODE) $(BENCH_BIN) $(BENCH_STATES_OUT)

# Issue 15's batched-lookup pairs: anchormap's single loop, anchormap_get_many
# and rte_hash_bulk back to back per round (BULK_SIZE entries, BULK_ROUNDS rounds).
BULK_SIZE	?= 16000000
BULK_ROUNDS	?= 7
bench-bulk: $(BENCH_BIN)/ambench
	bash bench/bulkpairs.sh $(BENCH_BIN) $(BULK_SIZE) $(BULK_ROUNDS)

OLDCORE_REV	?= 8291ad5
bench-oldcore: $(BENCH_BIN)/ambench $(BENCH_BIN)/cgwrite
	bash bench/oldcore.sh $(OLDCORE_REV) $(BENCH_STATES_OUT)

# Instructions per writer call (callgrind), for before/after comparisons of
# insert and remove: make bench-writers [CGWRITE_N=100000]
CGWRITE_N	?= 100000
$(BENCH_BIN)/cgwrite: bench/cgwrite.c selftests/am_testutil.h $(B)/libanchormap.a
	@mkdir -p $(dir $@)
	$(CC) $(AM_CFLAGS) bench/cgwrite.c -o $@ $(B)/libanchormap.a

bench-writers: $(BENCH_BIN)/cgwrite
	@bash scripts/install-deps.sh bench
	@for op in insert grow remove toggle churn; do \
		valgrind --tool=callgrind --callgrind-out-file=$(BENCH_BIN)/cgwrite.$$op.out \
			--toggle-collect='cg_writes' $(BENCH_BIN)/cgwrite $$op $(CGWRITE_N) \
			>/dev/null 2>&1 || exit 1; \
		ir=$$(callgrind_annotate $(BENCH_BIN)/cgwrite.$$op.out | \
			awk '/PROGRAM TOTALS/ { gsub(",", "", $$1); print $$1; exit }'); \
		echo "$$op: $$(awk -v i=$$ir -v n=$(CGWRITE_N) 'BEGIN { printf "%.1f", i / n }')" \
			"instructions per call"; \
	done
