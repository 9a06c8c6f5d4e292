# State that grows with use stops at a bound (h-astate; README "Storage
# and retention").
TESTS += tests/blackbox/test_retention.py
UNIT_TESTS += tests/unit/t_spool_bounds
tests_unit_t_spool_bounds_SOURCES = tests/unit/t_spool_bounds.c
tests_unit_t_spool_bounds_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/spool $(LMDB_CFLAGS)
tests_unit_t_spool_bounds_LDADD = $(TEST_LIBS)
