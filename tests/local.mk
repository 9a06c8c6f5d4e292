# Unit tests: tests/unit/t_<module>.c, TAP through build-aux/tap-driver.sh.
# Each owner adds its t_*.c below with "UNIT_TESTS += tests/unit/t_x".
noinst_LIBRARIES += tests/unit/libtap.a
tests_unit_libtap_a_SOURCES = tests/unit/tap.c tests/unit/tap.h
TEST_LIBS = tests/unit/libtap.a spool/libspool.a common/libcommon.a \
	$(LMDB_LIBS) $(YAJL_LIBS) $(OPENSSL_LIBS) $(LIBS)
UNIT_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/unit

UNIT_TESTS = tests/unit/t_conf tests/unit/t_buf
tests_unit_t_conf_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_conf_LDADD = $(TEST_LIBS)
tests_unit_t_buf_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_buf_LDADD = $(TEST_LIBS)

include tests/unit/local.mk

check_PROGRAMS += $(UNIT_TESTS)
TESTS += $(UNIT_TESTS)
EXTRA_DIST += tests/blackbox tests/fuzz
