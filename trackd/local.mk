# trackd (issue 16): the tracking server. libtrackd.a holds everything but
# main() and the libmicrohttpd wrapper, so the unit tests link it.
noinst_LIBRARIES += trackd/libtrackd.a
trackd_libtrackd_a_SOURCES = \
	trackd/trackd.h trackd/trackd_int.h \
	trackd/trackd_hit.c trackd/trackd_unsub.c trackd/trackd_flush.c \
	trackd/trackd_commit.c \
	trackd/trackd_machine.c trackd/trackd_machine.h \
	trackd/trackd_proto.c trackd/trackd_proto.h
trackd_libtrackd_a_CFLAGS = $(AM_CFLAGS) -pthread
TRACKD_LIBS = trackd/libtrackd.a spool/libspool.a common/libcommon.a \
	$(LMDB_LIBS) $(YAJL_LIBS) $(OPENSSL_LIBS) $(LIBS)

pkglibexec_PROGRAMS += trackd/trackd
trackd_trackd_SOURCES = trackd/trackd.c trackd/trackd_http.c \
	trackd/trackd_backend.c
# The key process (tls=implicit) speaks smtpd's key protocol and signs
# with common/tls_key.c; the HTTP side is GnuTLS (libmicrohttpd's TLS).
trackd_trackd_SOURCES += trackd/trackd_key.c trackd/trackd_key.h \
	trackd/trackd_tls.c trackd/trackd_tls.h \
	common/tls_key_pss.c common/tls_key_pss.h \
	smtpd/key_proto.c smtpd/key_proto.h
trackd_trackd_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/smtpd
trackd_trackd_CFLAGS = $(AM_CFLAGS) $(MHD_CFLAGS) $(GNUTLS_CFLAGS) \
	$(OPENSSL_CFLAGS) -pthread
trackd_trackd_LDFLAGS = $(AM_LDFLAGS) -pthread
trackd_trackd_LDADD = $(TRACKD_LIBS) common/libcommon_net.a $(MHD_LIBS) \
	$(GNUTLS_LIBS) $(OPENSSL_LIBS)
dist_man_MANS += trackd/trackd.8

# Unit tests (TAP): machine detection.
UNIT_TESTS += tests/unit/t_trackd_machine
tests_unit_t_trackd_machine_SOURCES = tests/unit/t_trackd_machine.c
tests_unit_t_trackd_machine_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/trackd
tests_unit_t_trackd_machine_LDADD = trackd/libtrackd.a $(TEST_LIBS)

# Black-box tests (real binaries; tests/blackbox/lib/smtpgate.py).
TESTS += tests/blackbox/test_trackd.py tests/blackbox/test_trackd_priv.py \
	tests/blackbox/test_trackd_keyproc.py
# Request handling over a real spool, without HTTP.
UNIT_TESTS += tests/unit/t_trackd_hit
tests_unit_t_trackd_hit_SOURCES = tests/unit/t_trackd_hit.c
tests_unit_t_trackd_hit_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/trackd
tests_unit_t_trackd_hit_LDADD = trackd/libtrackd.a $(TEST_LIBS) -lpthread
# The HTTP process <-> backend messages (trackd_proto.h): unit test; the
# fuzz target tests/fuzz/fuzz_trackd_proto.c needs trackd/ on its path.
UNIT_TESTS += tests/unit/t_trackd_proto
tests_unit_t_trackd_proto_SOURCES = tests/unit/t_trackd_proto.c
tests_unit_t_trackd_proto_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/trackd
tests_unit_t_trackd_proto_LDADD = trackd/libtrackd.a $(TEST_LIBS)
fuzz_trackd_proto_EXTRA = -I$(top_srcdir)/trackd
# The PSS block the HTTP process makes for the key process (GnuTLS gives a
# digest): tls_key_sign takes it, OpenSSL verifies the signature.
UNIT_TESTS += tests/unit/t_tls_key_pss
tests_unit_t_tls_key_pss_SOURCES = tests/unit/t_tls_key_pss.c \
	common/tls_key_pss.c common/tls_key_pss.h
tests_unit_t_tls_key_pss_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_tls_key_pss_CFLAGS = $(AM_CFLAGS) $(OPENSSL_CFLAGS)
tests_unit_t_tls_key_pss_LDADD = common/libcommon_net.a $(TEST_LIBS) \
	$(OPENSSL_LIBS)
