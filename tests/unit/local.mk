# Unit tests of common/ (one t_<module>.c per module). Other directories
# register their own tests in their local.mk (see tests/local.mk).
UNIT_TESTS += tests/unit/t_conf
tests_unit_t_conf_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_conf_LDADD = $(TEST_LIBS)
UNIT_TESTS += tests/unit/t_buf
tests_unit_t_buf_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_buf_LDADD = $(TEST_LIBS)
