noinst_LIBRARIES += common/libcommon.a
common_libcommon_a_SOURCES = \
	common/bounce.c common/bounce.h common/bounce_veto.c \
	common/idn.c common/idn.h \
	common/buf.c common/buf.h \
	common/cidr.c common/cidr.h \
	common/conf.c common/conf.h common/conf_keys.c common/conf_keys.h \
	common/daemon.c common/daemon.h \
	common/ev.c common/ev.h \
	common/fsx.c common/fsx.h \
	common/json.c common/json.h \
	common/kids.c common/kids.h \
	common/landlock.c common/landlock.h \
	common/log.c common/log.h \
	common/ownaddr.c common/ownaddr.h \
	common/priv.c common/priv.h \
	common/qid.c common/qid.h \
	common/sig.c common/sig.h \
	common/trigger.c common/trigger.h \
	common/xmem.c common/xmem.h \
	common/pwcheck.c common/pwcheck.h \
	common/tlsres.c common/tlsres.h \
	common/mtasts.c common/mtasts.h \
	common/tlsrpt.c common/tlsrpt.h \
	common/srcaddr.c common/srcaddr.h \
	common/metrics.c common/metrics.h common/metrics_render.c
common_libcommon_a_CFLAGS = $(AM_CFLAGS) $(YAJL_CFLAGS) $(IDN2_CFLAGS) $(CURL_CFLAGS)
# fetches that outside data drives: no private or loopback targets
common_libcommon_a_SOURCES += common/fetchguard.c common/fetchguard.h
UNIT_TESTS += tests/unit/t_fetchguard
tests_unit_t_fetchguard_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_fetchguard_LDADD = $(COMMON_TEST_LIBS) $(CURL_LIBS)
# traffic shaping (issue 15 items 3, 4): the shaping file parser
common_libcommon_a_SOURCES += common/shaping.c common/shaping.h common/shaping_load.c
UNIT_TESTS += tests/unit/t_shaping
tests_unit_t_shaping_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_shaping_LDADD = $(COMMON_TEST_LIBS)

# engagement tracking (issue 16): the links of HTML parts and their
# rewriting, shared by spoold (recording) and deliverd (rewriting); the
# only user of GMime and gumbo.
noinst_LIBRARIES += common/libtrack.a
common_libtrack_a_SOURCES = common/track_html.c common/track_html.h \
	common/track_scan.c common/track_scan.h \
	common/track_enc.c common/track_enc.h
common_libtrack_a_CFLAGS = $(AM_CFLAGS) $(GMIME_CFLAGS) $(GUMBO_CFLAGS)
TRACK_LIBS = common/libtrack.a $(GMIME_LIBS) $(GUMBO_LIBS)
UNIT_TESTS += tests/unit/t_track_html
tests_unit_t_track_html_SOURCES = tests/unit/t_track_html.c
tests_unit_t_track_html_CPPFLAGS = $(UNIT_CPPFLAGS) $(GMIME_CFLAGS)
tests_unit_t_track_html_LDADD = common/libtrack.a $(COMMON_TEST_LIBS) $(GMIME_LIBS) $(GUMBO_LIBS)
UNIT_TESTS += tests/unit/t_track_scan
tests_unit_t_track_scan_SOURCES = tests/unit/t_track_scan.c
tests_unit_t_track_scan_LDADD = common/libtrack.a $(COMMON_TEST_LIBS) $(GMIME_LIBS) $(GUMBO_LIBS)
UNIT_TESTS += tests/unit/t_track_qp
tests_unit_t_track_qp_SOURCES = tests/unit/t_track_qp.c
tests_unit_t_track_qp_CPPFLAGS = $(UNIT_CPPFLAGS) $(GMIME_CFLAGS)
tests_unit_t_track_qp_LDADD = common/libtrack.a $(COMMON_TEST_LIBS) $(GMIME_LIBS) $(GUMBO_LIBS)
# the fuzz target (tests/fuzz/fuzz_track_html.c) needs GMime and gumbo
fuzz_track_html_EXTRA = common/libtrack.a $(GMIME_LIBS) $(GUMBO_LIBS)
fuzz_track_scan_EXTRA = common/libtrack.a $(GMIME_LIBS) $(GUMBO_LIBS)

# metrics (issue 18 item 5): the shared counter block and the text format
UNIT_TESTS += tests/unit/t_metrics
tests_unit_t_metrics_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_metrics_LDADD = $(COMMON_TEST_LIBS)
