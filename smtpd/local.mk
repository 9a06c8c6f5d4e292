# smtpd (issue 3): the prefork ESMTP server, and the common/ modules it owns.

# Network-side common modules, kept out of common/local.mk (other owner):
# TLS (the only <openssl/*> user), the SMTP command parser, RFC 5321 paths.
noinst_LIBRARIES += common/libcommon_net.a
common_libcommon_net_a_SOURCES = \
	common/tls.c common/tls.h \
	common/smtp_cmd.c common/smtp_cmd.h \
	common/mailaddr.c common/mailaddr.h
common_libcommon_net_a_CFLAGS = $(AM_CFLAGS) $(OPENSSL_CFLAGS)

# Testable parts of smtpd (STYLE L1).
noinst_LIBRARIES += smtpd/libsmtpd.a
smtpd_libsmtpd_a_SOURCES = \
	smtpd/smtpd_data.c smtpd/smtpd_data.h

pkglibexec_PROGRAMS += smtpd/smtpd
smtpd_smtpd_SOURCES = \
	smtpd/smtpd.c smtpd/smtpd.h \
	smtpd/smtpd_worker.c \
	smtpd/smtpd_session.c \
	smtpd/smtpd_sasl.c
smtpd_smtpd_CFLAGS = $(AM_CFLAGS) $(SASL_CFLAGS)
smtpd_smtpd_LDADD = smtpd/libsmtpd.a common/libcommon_net.a \
	spool/libspool.a common/libcommon.a \
	$(SASL_LIBS) $(OPENSSL_LIBS) $(LMDB_LIBS) $(YAJL_LIBS) $(LIBS)
dist_man_MANS += smtpd/smtpd.8

# Unit tests (listed here, not in UNIT_TESTS, which tests/local.mk assigns
# after this file is included).
SMTPD_UNIT_TESTS = tests/unit/t_smtp_cmd tests/unit/t_mailaddr \
	tests/unit/t_smtpd_data
SMTPD_TEST_LIBS = smtpd/libsmtpd.a common/libcommon_net.a tests/unit/libtap.a \
	common/libcommon.a $(OPENSSL_LIBS) $(LIBS)
tests_unit_t_smtp_cmd_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_smtp_cmd_LDADD = $(SMTPD_TEST_LIBS)
tests_unit_t_mailaddr_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_mailaddr_LDADD = $(SMTPD_TEST_LIBS)
tests_unit_t_smtpd_data_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/smtpd
tests_unit_t_smtpd_data_LDADD = $(SMTPD_TEST_LIBS)

# Fuzz targets: libFuzzer with --enable-fuzzing; otherwise the same file
# built with a small main that replays the seed corpus (STYLE T5).
SMTPD_FUZZ = tests/fuzz/fuzz_smtp_cmd tests/fuzz/fuzz_smtpd_data
tests_fuzz_fuzz_smtp_cmd_SOURCES = tests/fuzz/fuzz_smtp_cmd.c
tests_fuzz_fuzz_smtp_cmd_LDADD = $(SMTPD_TEST_LIBS)
tests_fuzz_fuzz_smtpd_data_SOURCES = tests/fuzz/fuzz_smtpd_data.c
tests_fuzz_fuzz_smtpd_data_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/smtpd
tests_fuzz_fuzz_smtpd_data_LDADD = $(SMTPD_TEST_LIBS)
if FUZZING
tests_fuzz_fuzz_smtp_cmd_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_smtp_cmd_LDFLAGS = -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_smtpd_data_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_smtpd_data_LDFLAGS = -fsanitize=fuzzer,address,undefined
noinst_PROGRAMS += $(SMTPD_FUZZ)
else
tests_fuzz_fuzz_smtp_cmd_CFLAGS = $(AM_CFLAGS) -DSG_FUZZ_STANDALONE
tests_fuzz_fuzz_smtpd_data_CFLAGS = $(AM_CFLAGS) -DSG_FUZZ_STANDALONE
check_PROGRAMS += $(SMTPD_FUZZ)
TESTS += $(SMTPD_FUZZ)
endif

check_PROGRAMS += $(SMTPD_UNIT_TESTS)
TESTS += $(SMTPD_UNIT_TESTS) \
	tests/blackbox/test_smtpd.py
