# smtpd (issue 3): the prefork ESMTP server, and the common/ modules it owns.

# Network-side common modules, kept out of common/local.mk (other owner):
# TLS (the only <openssl/*> user), the SMTP command parser, RFC 5321 paths.
noinst_LIBRARIES += common/libcommon_net.a
common_libcommon_net_a_SOURCES = \
	common/tls.c common/tls.h \
	common/tls_key.c common/tls_key.h \
	common/peer_hdr.c common/peer_hdr.h \
	common/smtpd_peers.c common/smtpd_peers.h \
	common/smtp_cmd.c common/smtp_cmd.h \
	common/mailaddr.c common/mailaddr.h
common_libcommon_net_a_CFLAGS = $(AM_CFLAGS) $(OPENSSL_CFLAGS)

# Testable parts of smtpd (STYLE L1).
noinst_LIBRARIES += smtpd/libsmtpd.a
smtpd_libsmtpd_a_SOURCES = \
	smtpd/smtpd_data.c smtpd/smtpd_data.h \
	smtpd/lka_proto.c smtpd/lka_proto.h \
	smtpd/key_proto.c smtpd/key_proto.h
# The counts shared by the workers (issue 14), with its unit test.
smtpd_libsmtpd_a_SOURCES += smtpd/smtpd_limits.c smtpd/smtpd_limits.h
# The session, its verbs, the message and the commit pool: no I/O of their
# own, so t_smtpd_session drives them without sockets (issue 20).
smtpd_libsmtpd_a_SOURCES += \
	smtpd/smtpd.h \
	smtpd/smtpd_session.c \
	smtpd/smtpd_cmd.c \
	smtpd/smtpd_msg.c \
	smtpd/smtpd_sasl.c \
	smtpd/smtpd_commit.c \
	smtpd/smtpd_space.c \
	smtpd/smtpd_lka_client.c
smtpd_libsmtpd_a_CFLAGS = $(AM_CFLAGS) $(SASL_CFLAGS) -pthread

pkglibexec_PROGRAMS += smtpd/smtpd
smtpd_smtpd_SOURCES = \
	smtpd/smtpd.c smtpd/smtpd.h \
	smtpd/smtpd_worker.c \
	smtpd/smtpd_lka.c smtpd/smtpd_lka_peer.c \
	smtpd/smtpd_key.c
smtpd_smtpd_CFLAGS = $(AM_CFLAGS) $(SASL_CFLAGS) -pthread
smtpd_smtpd_LDADD = smtpd/libsmtpd.a common/libcommon_net.a \
	spool/libspool.a common/libcommon.a \
	$(SASL_LIBS) $(OPENSSL_LIBS) $(LMDB_LIBS) $(YAJL_LIBS) $(LIBS)
smtpd_smtpd_LDFLAGS = $(AM_LDFLAGS) -pthread
dist_man_MANS += smtpd/smtpd.8

# Unit tests (STYLE T1/T2) and the black-box tests. Fuzz targets
# tests/fuzz/fuzz_smtp_cmd.c and fuzz_smtpd_data.c are found by
# tests/fuzz/local.mk (seeds in tests/fuzz/corpus/<p>/).
SMTPD_TEST_LIBS = smtpd/libsmtpd.a common/libcommon_net.a $(TEST_LIBS)
UNIT_TESTS += tests/unit/t_smtp_cmd tests/unit/t_mailaddr tests/unit/t_smtpd_data
tests_unit_t_smtp_cmd_SOURCES = tests/unit/t_smtp_cmd.c
tests_unit_t_smtp_cmd_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_smtp_cmd_LDADD = $(SMTPD_TEST_LIBS)
tests_unit_t_mailaddr_SOURCES = tests/unit/t_mailaddr.c
tests_unit_t_mailaddr_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_mailaddr_LDADD = $(SMTPD_TEST_LIBS)
tests_unit_t_smtpd_data_SOURCES = tests/unit/t_smtpd_data.c
tests_unit_t_smtpd_data_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/smtpd
tests_unit_t_smtpd_data_LDADD = $(SMTPD_TEST_LIBS)

TESTS += tests/blackbox/test_smtpd.py
# the key process: no TLS key in a worker, signatures only (smtpd_key.c)
TESTS += tests/blackbox/test_smtpd_keyproc.py
# every verb in every session state, against a captured table (issue 20)
TESTS += tests/blackbox/test_smtpd_states.py

# The commit pool, with fsync(2) and rename(2) wrapped at link time.
UNIT_TESTS += tests/unit/t_smtpd_commit
tests_unit_t_smtpd_commit_SOURCES = tests/unit/t_smtpd_commit.c smtpd/smtpd_commit.c
tests_unit_t_smtpd_commit_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/smtpd
tests_unit_t_smtpd_commit_CFLAGS = $(AM_CFLAGS) $(SASL_CFLAGS) -pthread
tests_unit_t_smtpd_commit_LDFLAGS = $(AM_LDFLAGS) -pthread \
	-Wl,--wrap=fsync -Wl,--wrap=rename
tests_unit_t_smtpd_commit_LDADD = $(SMTPD_TEST_LIBS)

UNIT_TESTS += tests/unit/t_smtpd_limits
tests_unit_t_smtpd_limits_SOURCES = tests/unit/t_smtpd_limits.c
tests_unit_t_smtpd_limits_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/smtpd
tests_unit_t_smtpd_limits_CFLAGS = $(AM_CFLAGS) -pthread
tests_unit_t_smtpd_limits_LDFLAGS = $(AM_LDFLAGS) -pthread
tests_unit_t_smtpd_limits_LDADD = $(SMTPD_TEST_LIBS)
# issue 14: the lookup process's protocol
UNIT_TESTS += tests/unit/t_lka_proto
tests_unit_t_lka_proto_SOURCES = tests/unit/t_lka_proto.c
tests_unit_t_lka_proto_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/smtpd
tests_unit_t_lka_proto_LDADD = $(SMTPD_TEST_LIBS)
# the key process's protocol
UNIT_TESTS += tests/unit/t_key_proto
tests_unit_t_key_proto_SOURCES = tests/unit/t_key_proto.c
tests_unit_t_key_proto_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/smtpd
tests_unit_t_key_proto_LDADD = $(SMTPD_TEST_LIBS)
# issue 20: the session and its verbs driven without sockets
UNIT_TESTS += tests/unit/t_smtpd_session
tests_unit_t_smtpd_session_SOURCES = tests/unit/t_smtpd_session.c
tests_unit_t_smtpd_session_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/smtpd
tests_unit_t_smtpd_session_CFLAGS = $(AM_CFLAGS) -pthread
tests_unit_t_smtpd_session_LDFLAGS = $(AM_LDFLAGS) -pthread
tests_unit_t_smtpd_session_LDADD = $(SMTPD_TEST_LIBS) $(SASL_LIBS)
