# spoolctl (issue 6 owner): the operator's tool, its pure helpers, tests.

# Pure helpers of spoolctl: the stat.uni request evaluator and the DKIM key
# inspector (the only OpenSSL user outside tls.c).
noinst_LIBRARIES += common/libctl.a
common_libctl_a_SOURCES = \
	common/statq.c common/statq.h \
	common/statq_sql.c common/statq_sql.h \
	common/pkey.c common/pkey.h \
	common/editdist.c common/editdist.h
common_libctl_a_CFLAGS = $(AM_CFLAGS) $(OPENSSL_CFLAGS)

SPOOLCTL_LIBS = common/libctl.a spool/libspool.a common/libcommon.a \
	$(LMDB_LIBS) $(YAJL_LIBS) $(OPENSSL_LIBS) $(LIBS)

sbin_PROGRAMS += spool/spoolctl
spool_spoolctl_SOURCES = \
	spool/spoolctl.c spool/spoolctl.h \
	spool/spoolctl_util.c \
	spool/spoolctl_help.c \
	spool/spoolctl_account.c \
	spool/spoolctl_policy.c \
	spool/spoolctl_queue.c \
	spool/spoolctl_summary.c \
	spool/spoolctl_show.c \
	spool/spoolctl_stats.c \
	spool/spoolctl_query.c \
	spool/spoolctl_pause.c \
	spool/spoolctl_tlsrpt.c \
	spool/spoolctl_suppression.c \
	spool/spoolctl_stopshow.c \
	spool/spoolctl_events.c \
	spool/spoolctl_status.c spool/spoolctl_cstatus.c
# signed callbacks (issue 18 item 1)
spool_spoolctl_SOURCES += spool/spoolctl_cbsecret.c
spool_spoolctl_LDADD = $(SPOOLCTL_LIBS)
# tls-report --send (RFC 8460 5): the lookup (common/dns.c, built in
# libdeliverd.a), gzip, the POST and the report message in libctltlsrpt.a
# (the only spoolctl code that includes zlib, libcurl and GMime)
spool_spoolctl_SOURCES += spool/spoolctl_tlsrpt_send.c
noinst_LIBRARIES += spool/libctltlsrpt.a
spool_libctltlsrpt_a_SOURCES = spool/spoolctl_tlsrpt_out.c \
	spool/spoolctl_tlsrpt.h
spool_libctltlsrpt_a_CFLAGS = $(AM_CFLAGS) $(GMIME_CFLAGS) $(CURL_CFLAGS) \
	$(ZLIB_CFLAGS)
spool_spoolctl_LDADD += spool/libctltlsrpt.a deliverd/libdeliverd.a \
	spool/libspool.a common/libcommon.a $(GMIME_LIBS) $(CURL_LIBS) \
	$(ZLIB_LIBS) -lresolv $(UNBOUND_LIBS) $(LMDB_LIBS) $(YAJL_LIBS) \
	$(OPENSSL_LIBS)
# issue 19: --cluster reads PostgreSQL (libpq flags: clusterd/cpolicy.mk)
spool_spoolctl_SOURCES += spool/spoolctl_cquery.c
# quarantine list|requeue: the files spoold set aside
spool_spoolctl_SOURCES += spool/spoolctl_quarantine.c
dist_man_MANS += spool/spoolctl.8

# Unit tests (TAP); the fuzz target tests/fuzz/fuzz_statq.c and its corpus
# tests/fuzz/corpus/statq/ are found by tests/fuzz/local.mk.
CTL_TEST_LIBS = common/libctl.a tests/unit/libtap.a common/libcommon.a \
	$(YAJL_LIBS) $(OPENSSL_LIBS) $(LIBS)
UNIT_TESTS += tests/unit/t_statq tests/unit/t_pkey tests/unit/t_editdist
# issue 19: the stat.uni request as SQL (spoolctl query --cluster)
UNIT_TESTS += tests/unit/t_statq_sql
tests_unit_t_statq_sql_SOURCES = tests/unit/t_statq_sql.c
tests_unit_t_statq_sql_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_statq_sql_LDADD = $(CTL_TEST_LIBS)
tests_unit_t_editdist_SOURCES = tests/unit/t_editdist.c
tests_unit_t_editdist_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_editdist_LDADD = $(CTL_TEST_LIBS)
tests_unit_t_statq_SOURCES = tests/unit/t_statq.c
tests_unit_t_statq_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_statq_LDADD = $(CTL_TEST_LIBS)
tests_unit_t_pkey_SOURCES = tests/unit/t_pkey.c
tests_unit_t_pkey_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_pkey_LDADD = $(CTL_TEST_LIBS)

TESTS += \
	tests/blackbox/test_spoolctl_account.py \
	tests/blackbox/test_spoolctl_queue.py \
	tests/blackbox/test_spoolctl_stats.py \
	tests/blackbox/test_spoolctl_help.py \
	tests/blackbox/test_spoolctl_pause.py
