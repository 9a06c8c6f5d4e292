# bench: benchmarks against Postfix (bench/run; see bench/README.md).
# Only the fsync ceiling is compiled; the rest is Python run by bench/run.
noinst_PROGRAMS += bench/fsync_ceiling
bench_fsync_ceiling_SOURCES = bench/fsync_ceiling.c
# make check runs every benchmark once at a tiny size (bench/run --smoke).
TESTS += tests/blackbox/test_bench_smoke.py
# The delivery log at scale (indexes, retention): fill and soak through the
# spool API (bench/README.md); make check runs a small soak.
check_PROGRAMS += bench/dlog-soak
bench_dlog_soak_SOURCES = bench/dlog_soak.c
bench_dlog_soak_CPPFLAGS = $(AM_CPPFLAGS) $(LMDB_CFLAGS)
bench_dlog_soak_LDADD = spool/libspool.a common/libcommon.a $(LMDB_LIBS) \
	$(YAJL_LIBS) $(OPENSSL_LIBS) $(LIBS)
TESTS += tests/blackbox/test_dlog.py
# DKIM signing CPU through deliverd_dkim_sign (bench/README.md "DKIM
# signing: key decoding"); bench/dkim-bench drives it.
noinst_PROGRAMS += bench/dkim-sign-bench
bench_dkim_sign_bench_SOURCES = bench/dkim_sign_bench.c
bench_dkim_sign_bench_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/deliverd -I$(top_srcdir)/tests/unit
bench_dkim_sign_bench_LDADD = deliverd/libdeliverd.a tests/unit/libtap.a $(DELIVERD_LIBS)
# Engagement tracking (issue 16): the CPU of extraction and rewriting per
# message (bench/README.md "Tracking: rewriting"; bench/track-bench runs
# the end-to-end comparison).
noinst_PROGRAMS += bench/track-rewrite-bench
bench_track_rewrite_bench_SOURCES = bench/track_rewrite_bench.c
bench_track_rewrite_bench_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/spool $(LMDB_CFLAGS)
bench_track_rewrite_bench_LDADD = $(TRACK_LIBS) spool/libspool.a \
	common/libcommon.a $(LMDB_LIBS) $(YAJL_LIBS) $(OPENSSL_LIBS) $(LIBS)
# The counters' hot-path cost (issue 18 item 5; bench/README.md "Metrics:
# cost of a counter").
noinst_PROGRAMS += bench/metrics-inc-bench
bench_metrics_inc_bench_SOURCES = bench/metrics_inc_bench.c
bench_metrics_inc_bench_LDADD = common/libcommon.a $(LIBS)
# The whole-system soak (bench/soak; bench/README.md "Soak"): make check
# runs 2,000 of its mixed sessions and checks no fd or file is left per
# session.
TESTS += tests/blackbox/test_soak_smoke.py
