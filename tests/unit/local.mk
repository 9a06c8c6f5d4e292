# Unit tests of common/ (one t_<module>.c per module), linked against
# libcommon.a only. Other directories register their own tests in their
# local.mk (see the convention at the top of tests/local.mk).
COMMON_TEST_LIBS = tests/unit/libtap.a common/libcommon.a $(YAJL_LIBS) $(LIBS)
UNIT_TESTS += tests/unit/t_conf
tests_unit_t_conf_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_conf_LDADD = $(COMMON_TEST_LIBS)
UNIT_TESTS += tests/unit/t_buf
tests_unit_t_buf_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_buf_LDADD = $(COMMON_TEST_LIBS)
UNIT_TESTS += tests/unit/t_log
tests_unit_t_log_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_log_LDADD = $(COMMON_TEST_LIBS)
UNIT_TESTS += tests/unit/t_fsx
tests_unit_t_fsx_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_fsx_LDADD = $(COMMON_TEST_LIBS)
UNIT_TESTS += tests/unit/t_trigger
tests_unit_t_trigger_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_trigger_LDADD = $(COMMON_TEST_LIBS)
UNIT_TESTS += tests/unit/t_sig
tests_unit_t_sig_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_sig_LDADD = $(COMMON_TEST_LIBS)
UNIT_TESTS += tests/unit/t_priv
tests_unit_t_priv_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_priv_LDADD = $(COMMON_TEST_LIBS)
UNIT_TESTS += tests/unit/t_qid
tests_unit_t_qid_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_qid_LDADD = $(COMMON_TEST_LIBS)
UNIT_TESTS += tests/unit/t_cidr
tests_unit_t_cidr_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_cidr_LDADD = $(COMMON_TEST_LIBS)
UNIT_TESTS += tests/unit/t_json
tests_unit_t_json_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_json_LDADD = $(COMMON_TEST_LIBS)
UNIT_TESTS += tests/unit/t_xmem
tests_unit_t_xmem_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_xmem_LDADD = $(COMMON_TEST_LIBS)
