# spoold (issue 4): files incoming/new into LMDB and queue/.
# libhdr.a: the pure RFC 5322 parsers (common/hdr, common/rfc5322addr),
# usable by any program; libspoold.a: spoold's policy and filing logic.
noinst_LIBRARIES += spoold/libhdr.a spoold/libspoold.a
# libarf.a: feedback-loop reports (issue 16 item 5), the only GMime user here
noinst_LIBRARIES += common/libarf.a
common_libarf_a_SOURCES = common/arf.c common/arf.h
common_libarf_a_CFLAGS = $(AM_CFLAGS) $(GMIME_CFLAGS)
spoold_libhdr_a_SOURCES = \
	common/hdr.c common/hdr.h \
	common/rfc5322addr.c common/rfc5322addr.h
spoold_libspoold_a_SOURCES = \
	spoold/spoold_policy.c spoold/spoold_policy.h \
	spoold/spoold_file.c spoold/spoold_file.h spoold/spoold_copy.c \
	spoold/spoold_prune.c spoold/spoold_prune.h \
	spoold/spoold_maildrop.c \
	spoold/spoold_complaint.c spoold/spoold_complaint.h
# a message that crashes spoold while it is filed is set aside
spoold_libspoold_a_SOURCES += spoold/spoold_poison.c spoold/spoold_poison.h
spoold_libspoold_a_CFLAGS = $(AM_CFLAGS) $(LMDB_CFLAGS)
SPOOLD_LIBS = spoold/libspoold.a spoold/libhdr.a common/libarf.a spool/libspool.a \
	common/libcommon.a $(LMDB_LIBS) $(YAJL_LIBS) $(OPENSSL_LIBS) $(GMIME_LIBS) $(LIBS)
# engagement tracking (issue 16): the links recorded at filing
spoold_libspoold_a_SOURCES += spoold/spoold_track.c
# idempotent submission (issue 18 item 3)
spoold_libspoold_a_SOURCES += spoold/spoold_dedupe.c spoold/spoold_dedupe.h
SPOOLD_LIBS += $(TRACK_LIBS)

pkglibexec_PROGRAMS += spoold/spoold
spoold_spoold_SOURCES = spoold/spoold.c
spoold_spoold_LDADD = $(SPOOLD_LIBS)
# the metrics endpoint (issue 18 item 5): the child and its HTTP server
spoold_spoold_SOURCES += spoold/spoold_metrics.c spoold/spoold_metrics.h \
	spoold/spoold_metrics_http.c
spoold_spoold_CFLAGS = $(AM_CFLAGS) $(MHD_CFLAGS) -pthread
spoold_spoold_LDFLAGS = $(AM_LDFLAGS) -pthread
spoold_spoold_LDADD += $(MHD_LIBS)
dist_man_MANS += spoold/spoold.8

# Unit tests (TAP); fuzz targets tests/fuzz/fuzz_{hdr,rfc5322addr}.c are
# found by tests/fuzz/local.mk.
UNIT_TESTS += tests/unit/t_hdr tests/unit/t_rfc5322addr tests/unit/t_spoold_policy
tests_unit_t_hdr_SOURCES = tests/unit/t_hdr.c
tests_unit_t_hdr_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_hdr_LDADD = spoold/libhdr.a $(TEST_LIBS)
tests_unit_t_rfc5322addr_SOURCES = tests/unit/t_rfc5322addr.c
tests_unit_t_rfc5322addr_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_rfc5322addr_LDADD = spoold/libhdr.a $(TEST_LIBS)
tests_unit_t_spoold_policy_SOURCES = tests/unit/t_spoold_policy.c
tests_unit_t_spoold_policy_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/spoold
tests_unit_t_spoold_policy_LDADD = spoold/libspoold.a spoold/libhdr.a $(TEST_LIBS)
# the hop count (hopcount_limit, issue 14)
UNIT_TESTS += tests/unit/t_spoold_hops
tests_unit_t_spoold_hops_SOURCES = tests/unit/t_spoold_hops.c
tests_unit_t_spoold_hops_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/spoold
tests_unit_t_spoold_hops_LDADD = spoold/libspoold.a spoold/libhdr.a $(TEST_LIBS)

# Black-box tests (real binaries; see tests/blackbox/lib/smtpgate.py).
TESTS += tests/blackbox/test_spoold.py tests/blackbox/test_spoold_smtp.py
# feedback-loop reports (issue 16 item 5): the parser; its fuzz target is
# tests/fuzz/fuzz_arf.c (GMime's libraries added below)
UNIT_TESTS += tests/unit/t_arf
tests_unit_t_arf_SOURCES = tests/unit/t_arf.c
tests_unit_t_arf_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_arf_LDADD = common/libarf.a $(TEST_LIBS) $(GMIME_LIBS)
fuzz_arf_EXTRA = -Wl,--push-state,--no-as-needed $(GMIME_LIBS) -Wl,--pop-state
TESTS += tests/blackbox/test_complaints.py
