# Fuzz targets (STYLE R5, T5). Nothing to register: every
# tests/fuzz/fuzz_<p>.c that defines LLVMFuzzerTestOneInput() is found by
# name, with its seeds in tests/fuzz/corpus/<p>/ (see tests/fuzz/README).
#
#   default build        tests/fuzz/fuzz_<p> = fuzz_<p>.c + replay.c (a main()
#                        that feeds every seed once); `make check` runs it.
#   --enable-fuzzing     tests/fuzz/fuzz_<p> is a libFuzzer binary; `make
#                        check` replays the seeds (-runs=0), `make fuzz
#                        FUZZ_TIME=600` fuzzes each target for that long.
#
# Each target links every noinst library (libsmtpd.a, libspool.a,
# libcommon.a, ...) in a link group plus every pkg-config library, so a
# target may call into any module; only what it uses is pulled in. Needs
# more? Define fuzz_<p>_EXTRA = objects or flags in your local.mk.
# The rules use GNU make functions (automake runs with -Wno-portability).

FUZZ_SRCS = $(sort $(notdir $(wildcard $(top_srcdir)/tests/fuzz/fuzz_*.c)))
FUZZ_ALL = $(addprefix tests/fuzz/,$(FUZZ_SRCS:.c=$(EXEEXT)))
# Targets that a local.mk already registers as automake programs keep their
# own rules; FUZZ_PROGS are the others, built and run by the rules below.
FUZZ_REGISTERED = $(filter tests/fuzz/%,$(check_PROGRAMS) $(noinst_PROGRAMS))
FUZZ_PROGS = $(filter-out $(FUZZ_REGISTERED),$(FUZZ_ALL))
FUZZ_LIBS = $(filter-out tests/unit/libtap.a tests/fuzz/libreplay.a,$(noinst_LIBRARIES))
FUZZ_EXT_LIBS = $(OPENSSL_LIBS) $(SASL_LIBS) $(LMDB_LIBS) $(OPENDKIM_LIBS) \
	$(CURL_LIBS) $(YAJL_LIBS) $(UNBOUND_LIBS) $(TRACK_LIBS) $(LIBS)
FUZZ_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/smtpd -I$(top_srcdir)/spoold \
	-I$(top_srcdir)/deliverd -I$(top_srcdir)/tests/fuzz \
	$(OPENSSL_CFLAGS) $(SASL_CFLAGS) $(LMDB_CFLAGS) $(OPENDKIM_CFLAGS) \
	$(CURL_CFLAGS) $(YAJL_CFLAGS) \
	-include $(top_srcdir)/tests/fuzz/fuzz.h
# a header change rebuilds the targets (no per-target dependency tracking)
FUZZ_HDRS = $(wildcard $(top_srcdir)/*/*.h)

noinst_LIBRARIES += tests/fuzz/libreplay.a
tests_fuzz_libreplay_a_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz.h
tests_fuzz_libreplay_a_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/fuzz

if FUZZING
FUZZ_DRIVER = -fsanitize=fuzzer
FUZZ_DRIVER_DEP =
else
FUZZ_DRIVER = tests/fuzz/libreplay.a
FUZZ_DRIVER_DEP = tests/fuzz/libreplay.a
endif

tests/fuzz/fuzz_%$(EXEEXT): tests/fuzz/fuzz_%.c $(FUZZ_DRIVER_DEP) $(FUZZ_LIBS) $(FUZZ_HDRS)
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CCLD)$(CC) $(DEFS) $(DEFAULT_INCLUDES) $(INCLUDES) $(FUZZ_CPPFLAGS) $(CPPFLAGS) $(AM_CFLAGS) $(CFLAGS) \
	  $(AM_LDFLAGS) $(LDFLAGS) -o $@ $< $(fuzz_$*_EXTRA) $(FUZZ_DRIVER) \
	  -Wl,--start-group $(FUZZ_LIBS) -Wl,--end-group $(FUZZ_EXT_LIBS)

# make check: one test per target, replaying its seeds (test-driver: the
# exit status decides). The recipe is automake's own per-test recipe.
FUZZ_LOG_DRIVER = $(SHELL) $(top_srcdir)/build-aux/test-driver
FUZZ_LOG_COMPILER =
tests/fuzz/fuzz_%.log: tests/fuzz/fuzz_%$(EXEEXT)
	@p='$<'; b='tests/fuzz/fuzz_$*'; \
	$(am__check_pre) $(FUZZ_LOG_DRIVER) --test-name "$$f" \
	--log-file $$b.log --trs-file $$b.trs \
	$(am__common_driver_flags) -- $(FUZZ_LOG_COMPILER) "$$tst" -runs=0 \
	`test -d "$(abs_top_srcdir)/tests/fuzz/corpus/$*" && \
	  echo "$(abs_top_srcdir)/tests/fuzz/corpus/$*"` $(AM_TESTS_FD_REDIRECT)
# appended at make time: automake cannot expand $(wildcard) in TESTS
$(eval TESTS += $(FUZZ_PROGS))
$(eval CLEANFILES += $(FUZZ_PROGS))
# built through a pattern rule for a .log: keep them (not intermediate)
$(eval .SECONDARY: $(FUZZ_PROGS))
CLEANFILES += tests/fuzz/*.tmp

# make fuzz [FUZZ_TIME=seconds per target, default 60]: in a build configured
# with --enable-fuzzing runs each target with libFuzzer, as many at once as
# make's -j allows (make -j2 fuzz on two cores); new inputs and crash
# artifacts go to tests/fuzz/work/<p>/ in the build tree (copy useful ones
# into the corpus). Elsewhere it first configures _build-fuzz/ for it.
# One line per target: executions, executions per second, ok or FAILED.
FUZZ_TIME = 60
FUZZ_FLAGS = -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
if FUZZING
FUZZ_RUNS = $(patsubst tests/fuzz/fuzz_%$(EXEEXT),fuzz-run-%,$(FUZZ_ALL))
fuzz:
	@rm -f tests/fuzz/work/*.result
	@$(MAKE) $(AM_MAKEFLAGS) $(FUZZ_RUNS)
	@echo "fuzz summary (FUZZ_TIME=$(FUZZ_TIME)s per target):"; \
	cat tests/fuzz/work/*.result; ! grep -q FAILED tests/fuzz/work/*.result
# not .PHONY (make skips pattern rules for phony targets); never a file
fuzz-run-%: tests/fuzz/fuzz_%$(EXEEXT)
	@w=tests/fuzz/work/$*; mkdir -p $$w; \
	./$< $(FUZZ_FLAGS) -max_total_time=$(FUZZ_TIME) -artifact_prefix=$$w/ \
	  $$w "$(abs_top_srcdir)/tests/fuzz/corpus/$*" > $$w.log 2>&1; rc=$$?; \
	execs=`sed -n 's/^stat::number_of_executed_units: *//p' $$w.log | tail -1`; \
	rate=`sed -n 's/^stat::average_exec_per_sec: *//p' $$w.log | tail -1`; \
	if test $$rc -eq 0; then st=ok; else st="FAILED (exit $$rc, see $$w.log)"; fi; \
	echo "fuzz_$*: $${execs:-0} execs, $${rate:-0} exec/s, work corpus `ls $$w | wc -l` files: $$st" \
	  | tee $$w.result
else
# (an existing _build-fuzz/ is reused, so tests/fuzz/work/ keeps growing)
fuzz:
	sub=_build-fuzz; \
	if test -f $$sub/build/config.status; then cd $$sub/build; \
	else $(SG_SUBBUILD) --enable-fuzzing; fi && \
	$(MAKE) $(AM_MAKEFLAGS) fuzz FUZZ_TIME='$(FUZZ_TIME)'
endif
.PHONY: fuzz
clean-local: clean-fuzz
clean-fuzz:
	-rm -rf tests/fuzz/work
.PHONY: clean-fuzz

EXTRA_DIST += tests/fuzz/README tests/fuzz/corpus $(addprefix tests/fuzz/,$(FUZZ_SRCS))
