# tests/: the C unit tests, the fuzz corpora replays, tests/banned.sh and the
# black-box Python tests. `make check` runs all of them.
#
# Convention for a C unit test (STYLE T1/T2), in the local.mk you own:
#     UNIT_TESTS += tests/unit/t_x
#     tests_unit_t_x_SOURCES = tests/unit/t_x.c
#     tests_unit_t_x_CPPFLAGS = $(UNIT_CPPFLAGS)
#     tests_unit_t_x_LDADD = $(TEST_LIBS)        # put your own lib first
# Makefile.am starts UNIT_TESTS empty before any include and, after the last
# include, adds it to check_PROGRAMS and TESTS: include order does not matter.
# UNIT_TESTS is also what `make check-sanitize` and `make check-valgrind` run.
# A unit test prints TAP (tests/unit/tap.h); each TAP line counts as a test.
# Test data lives in tests/unit/data/ (distributed); find it through
# getenv("SMTPGATE_SRCDIR") so VPATH builds and distcheck work.
#
# A black-box test:  TESTS += tests/blackbox/test_x.py  (pytest, through
# tests/pytest-driver: each case counts as one test; it finds the
# binaries through SMTPGATE_BUILDDIR and the sources through SMTPGATE_SRCDIR).
#
# A fuzz target: see tests/fuzz/README (nothing to register).
noinst_LIBRARIES += tests/unit/libtap.a
tests_unit_libtap_a_SOURCES = tests/unit/tap.c tests/unit/tap.h \
	tests/unit/tfix.c tests/unit/tfix.h
tests_unit_libtap_a_CPPFLAGS = $(AM_CPPFLAGS) $(LMDB_CFLAGS)
TEST_LIBS = tests/unit/libtap.a spool/libspool.a common/libcommon.a \
	$(LMDB_LIBS) $(YAJL_LIBS) $(OPENSSL_LIBS) $(LIBS)
UNIT_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/unit

include tests/unit/local.mk
include tests/tools/local.mk

TESTS += tests/banned.sh tests/check-format.sh tests/blackbox/test_privileges.py
# the privilege audit: secrets in memory, no_new_privs, dumpable
TESTS += tests/blackbox/test_priv_boundaries.py
# clusterd's and the TLS report's units: their system call filters, traced
TESTS += tests/blackbox/test_unit_syscall_filters.py
# mail loops and the relayhost's TLS policy (issue 14)
TESTS += tests/blackbox/test_loops.py tests/blackbox/test_relay_tls.py
# suppression: what adds to it, spoolctl suppression, suppression_ttl (issue 15)
TESTS += tests/blackbox/test_suppression.py
TESTS += tests/blackbox/test_suppress_veto.py
# replay and health: spoolctl events, callbacks replay/status, status (issue 18)
TESTS += tests/blackbox/test_ops.py
# engagement tracking, the rewriting at delivery (issue 16)
TESTS += tests/blackbox/test_track_rewrite.py
# idempotent submission: X-Letter-Id within dedupe_window (issue 18 item 3)
TESTS += tests/blackbox/test_dedupe.py
# the Prometheus endpoint (issue 18 item 5)
TESTS += tests/blackbox/test_metrics.py
# outbound TLS levels, verification in events, TLS reporting (issue 17)
TESTS += tests/blackbox/test_tls_levels.py
# REQUIRETLS, RFC 8689 (issue 17 item 5)
TESTS += tests/blackbox/test_requiretls.py
EXTRA_DIST += tests/banned.sh tests/check-format.sh contrib/format .clang-format tests/blackbox tests/unit/data tests/data

# EXTRA_DIST names whole directories, and automake copies a directory from
# the build tree too: a tree that has run the tests would ship their logs
# and Python caches. Only the sources belong in the tarball.
dist-hook: dist-hook-tests
dist-hook-tests:
	find $(distdir)/tests \( -name '*.log' -o -name '*.trs' -o \
	    -name '__pycache__' -o -name '*.pyc' \) -prune -exec rm -rf {} +
.PHONY: dist-hook-tests
# MTA-STS (issue 17 item 2)
TESTS += tests/blackbox/test_mta_sts.py
# DANE with dnssec = trust-ad (issue 17 item 3)
TESTS += tests/blackbox/test_dane.py
# Cluster mode end to end (issue 19): three gateways on one private
# PostgreSQL (lib/pg.py; skipped without its binaries), a 60 s outage.
TESTS += tests/blackbox/test_cluster.py
# TLS reports sent: spoolctl tls-report --send (RFC 8460 section 5)
TESTS += tests/blackbox/test_tls_report_send.py
