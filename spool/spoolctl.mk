# spoolctl (issue 6 owner): the operator's tool, its pure helpers, tests.

# Pure helpers of spoolctl: the stat.uni request evaluator and the DKIM key
# inspector (the only OpenSSL user outside tls.c).
noinst_LIBRARIES += common/libctl.a
common_libctl_a_SOURCES = \
	common/statq.c common/statq.h \
	common/pkey.c common/pkey.h
common_libctl_a_CFLAGS = $(AM_CFLAGS) $(OPENSSL_CFLAGS)

SPOOLCTL_LIBS = common/libctl.a spool/libspool.a common/libcommon.a \
	$(LMDB_LIBS) $(YAJL_LIBS) $(OPENSSL_LIBS) $(LIBS)

sbin_PROGRAMS += spool/spoolctl
spool_spoolctl_SOURCES = \
	spool/spoolctl.c spool/spoolctl.h \
	spool/spoolctl_util.c \
	spool/spoolctl_account.c \
	spool/spoolctl_policy.c \
	spool/spoolctl_queue.c \
	spool/spoolctl_show.c \
	spool/spoolctl_stats.c \
	spool/spoolctl_query.c
spool_spoolctl_LDADD = $(SPOOLCTL_LIBS)
dist_man_MANS += spool/spoolctl.8

# Fills an LMDB spool with N synthetic messages (benchmark of `queue`).
noinst_PROGRAMS += spool/spoolctl_gen
spool_spoolctl_gen_SOURCES = spool/spoolctl_gen.c
spool_spoolctl_gen_LDADD = $(SPOOLCTL_LIBS)

# Unit tests (TAP). Not in UNIT_TESTS: that variable is assigned in
# tests/local.mk, which is included after this file.
check_PROGRAMS += tests/unit/t_statq tests/unit/t_pkey
TESTS += tests/unit/t_statq tests/unit/t_pkey
tests_unit_t_statq_CPPFLAGS = $(UNIT_CPPFLAGS)
CTL_TEST_LIBS = common/libctl.a tests/unit/libtap.a common/libcommon.a \
	$(YAJL_LIBS) $(OPENSSL_LIBS) $(LIBS)
tests_unit_t_statq_LDADD = $(CTL_TEST_LIBS)
tests_unit_t_pkey_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_pkey_LDADD = $(CTL_TEST_LIBS)

# The fuzz target. Without --enable-fuzzing it is a TAP program that runs
# its seed corpus (tests/fuzz/corpus/statq) as regression inputs.
check_PROGRAMS += tests/fuzz/fuzz_statq
tests_fuzz_fuzz_statq_SOURCES = tests/fuzz/fuzz_statq.c
tests_fuzz_fuzz_statq_LDADD = common/libctl.a common/libcommon.a $(YAJL_LIBS) $(OPENSSL_LIBS) $(LIBS)
if FUZZING
tests_fuzz_fuzz_statq_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_statq_LDFLAGS = -fsanitize=fuzzer,address,undefined
else
tests_fuzz_fuzz_statq_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_STANDALONE
TESTS += tests/fuzz/fuzz_statq
endif

TESTS += \
	tests/blackbox/test_spoolctl_account.py \
	tests/blackbox/test_spoolctl_queue.py \
	tests/blackbox/test_spoolctl_stats.py
