# deliverd: scheduler, delivery workers, callback sender. Everything but
# main() lives in libdeliverd.a so unit tests can link it (STYLE L1); the
# pure parsers common/smtp_reply and common/dns are built here as well.
noinst_LIBRARIES += deliverd/libdeliverd.a
deliverd_libdeliverd_a_SOURCES = \
	common/smtp_reply.c common/smtp_reply.h \
	common/dns.c common/dns.h \
	deliverd/deliverd.h \
	deliverd/deliverd_proto.c \
	deliverd/deliverd_sched.h \
	deliverd/deliverd_sched.c \
	deliverd/deliverd_sched_claim.c \
	deliverd/deliverd_sched_dispatch.c \
	deliverd/deliverd_sched_commit.c \
	deliverd/deliverd_sched_pause.c \
	deliverd/deliverd_sched_poison.c \
	deliverd/deliverd_commit.c \
	deliverd/deliverd_bounce.c \
	deliverd/deliverd_worker.c deliverd/deliverd_worker.h \
	deliverd/deliverd_worker_route.c \
	deliverd/deliverd_mtasts.c deliverd/deliverd_mtasts.h \
	deliverd/deliverd_dane.c \
	deliverd/deliverd_smtp.c deliverd/deliverd_smtp_int.h \
	deliverd/deliverd_smtp_tls.c \
	deliverd/deliverd_dkim.c \
	deliverd/deliverd_key.c \
	deliverd/dkey_proto.c deliverd/dkey_proto.h \
	deliverd/deliverd_callback.c
# cluster mode (issue 19 item 7): the live nodes' share of the limits
deliverd_libdeliverd_a_SOURCES += deliverd/deliverd_cshare.c \
	deliverd/deliverd_cshare.h
# the simulator (issue 18 item 4)
deliverd_libdeliverd_a_SOURCES += deliverd/deliverd_sim.c deliverd/deliverd_sim.h
# engagement tracking (issue 16): per-recipient copies
deliverd_libdeliverd_a_SOURCES += deliverd/deliverd_track.c deliverd/deliverd_track.h
# NXDOMAIN believed with care: the parent-zone check, the confirmation
deliverd_libdeliverd_a_SOURCES += deliverd/deliverd_nxdom.c
# Feedback-ID for Gmail's Feedback Loop (feedback_id_sender)
deliverd_libdeliverd_a_SOURCES += deliverd/deliverd_fbid.c deliverd/deliverd_fbid.h
deliverd_libdeliverd_a_CFLAGS = $(AM_CFLAGS) $(OPENDKIM_CFLAGS) $(CURL_CFLAGS) \
	$(OPENSSL_CFLAGS) $(LMDB_CFLAGS) $(UNBOUND_CFLAGS)

DELIVERD_LIBS = deliverd/libdeliverd.a spoold/libhdr.a common/libcommon_net.a spool/libspool.a common/libcommon.a \
	$(OPENDKIM_LIBS) $(CURL_LIBS) $(LMDB_LIBS) $(YAJL_LIBS) $(OPENSSL_LIBS) -lresolv $(LIBS)
DELIVERD_LIBS += $(TRACK_LIBS) $(UNBOUND_LIBS)

pkglibexec_PROGRAMS += deliverd/deliverd
deliverd_deliverd_SOURCES = deliverd/deliverd.c
deliverd_deliverd_LDADD = $(DELIVERD_LIBS)
dist_man_MANS += deliverd/deliverd.8
# per-destination traffic shaping and back-off (issue 15 items 3, 4, 7)
deliverd_libdeliverd_a_SOURCES += \
	deliverd/deliverd_dest.h deliverd/deliverd_dest_int.h \
	deliverd/deliverd_dest.c deliverd/deliverd_dest_state.c \
	deliverd/deliverd_dest_via.c deliverd/deliverd_dest_resolver.c
TESTS += tests/blackbox/test_shaping.py
check_PROGRAMS += tests/unit/t_deliverd_dest
TESTS += tests/unit/t_deliverd_dest
tests_unit_t_deliverd_dest_SOURCES = tests/unit/t_deliverd_dest.c
tests_unit_t_deliverd_dest_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/deliverd
tests_unit_t_deliverd_dest_LDADD = deliverd/libdeliverd.a $(DELIVERD_LIBS) $(TEST_LIBS)

# (tests/local.mk assigns UNIT_TESTS after this file: list ours directly)
check_PROGRAMS += tests/unit/t_smtp_reply tests/unit/t_dns
TESTS += tests/unit/t_smtp_reply tests/unit/t_dns
tests_unit_t_smtp_reply_SOURCES = tests/unit/t_smtp_reply.c
tests_unit_t_smtp_reply_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_smtp_reply_LDADD = deliverd/libdeliverd.a $(TEST_LIBS) -lresolv
tests_unit_t_dns_SOURCES = tests/unit/t_dns.c
tests_unit_t_dns_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_dns_LDADD = deliverd/libdeliverd.a $(TEST_LIBS) -lresolv $(UNBOUND_LIBS)
# the relayhost's TLS policy (issue 14)
check_PROGRAMS += tests/unit/t_tls_policy
TESTS += tests/unit/t_tls_policy
tests_unit_t_tls_policy_SOURCES = tests/unit/t_tls_policy.c
tests_unit_t_tls_policy_CPPFLAGS = $(UNIT_CPPFLAGS) $(OPENSSL_CFLAGS)
tests_unit_t_tls_policy_LDADD = common/libcommon_net.a $(TEST_LIBS) $(OPENSSL_LIBS)
check_PROGRAMS += tests/unit/t_deliverd_proto
TESTS += tests/unit/t_deliverd_proto
tests_unit_t_deliverd_proto_SOURCES = tests/unit/t_deliverd_proto.c
tests_unit_t_deliverd_proto_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/deliverd
tests_unit_t_deliverd_proto_LDADD = deliverd/libdeliverd.a $(TEST_LIBS)
# the simulator (issue 18 item 4)
check_PROGRAMS += tests/unit/t_deliverd_sim
TESTS += tests/unit/t_deliverd_sim tests/blackbox/test_simulator.py
tests_unit_t_deliverd_sim_SOURCES = tests/unit/t_deliverd_sim.c
tests_unit_t_deliverd_sim_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/deliverd
tests_unit_t_deliverd_sim_LDADD = deliverd/libdeliverd.a $(DELIVERD_LIBS) $(TEST_LIBS)


TESTS += tests/blackbox/test_deliverd.py tests/blackbox/test_deliverd_pipeline.py \
	tests/blackbox/test_deliverd_reuse.py tests/blackbox/test_deliverd_literal.py
TESTS += tests/blackbox/test_callbacks.py


# the fuzz target for common/smtp_reply also parses DNS answers (libresolv)
fuzz_smtp_reply_EXTRA = -Wl,--push-state,--no-as-needed -lresolv -Wl,--pop-state
# issue 15: 452 continuation, source addresses, pause/resume
TESTS += tests/blackbox/test_deliverd_452.py tests/blackbox/test_deliverd_source.py
# SIGHUP frees the configuration it replaces (valgrind; issue 20)
TESTS += tests/blackbox/test_reload_leak.py
# the decoded-key cache is hit for libopendkim and for nothing else (issue 20 item 7)
check_PROGRAMS += tests/unit/t_deliverd_dkim
TESTS += tests/unit/t_deliverd_dkim
tests_unit_t_deliverd_dkim_SOURCES = tests/unit/t_deliverd_dkim.c
tests_unit_t_deliverd_dkim_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/deliverd
tests_unit_t_deliverd_dkim_LDADD = deliverd/libdeliverd.a tests/unit/libtap.a $(DELIVERD_LIBS)
# libopendkim's own Ed25519 leak, for check-valgrind (Makefile.am)
EXTRA_DIST += tests/unit/valgrind.supp
# signed callbacks (issue 18 item 1)
TESTS += tests/blackbox/test_callback_sign.py
# MTA-STS (issue 17 item 2): the P line parser is in deliverd_mtasts.c (dns.c: libresolv)
fuzz_mtasts_EXTRA = -Wl,--push-state,--no-as-needed -lresolv -Wl,--pop-state
# cluster mode (issue 19 item 7): cluster.state's parser, the division
check_PROGRAMS += tests/unit/t_deliverd_cshare
TESTS += tests/unit/t_deliverd_cshare
tests_unit_t_deliverd_cshare_SOURCES = tests/unit/t_deliverd_cshare.c
tests_unit_t_deliverd_cshare_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/deliverd
tests_unit_t_deliverd_cshare_LDADD = deliverd/libdeliverd.a $(DELIVERD_LIBS) $(TEST_LIBS)
# NXDOMAIN believed with care: the parent-zone check, nxdomain_confirm
TESTS += tests/blackbox/test_nxdomain.py
# Feedback-ID (feedback_id_sender)
TESTS += tests/blackbox/test_feedback_id.py
check_PROGRAMS += tests/unit/t_deliverd_fbid
TESTS += tests/unit/t_deliverd_fbid
tests_unit_t_deliverd_fbid_SOURCES = tests/unit/t_deliverd_fbid.c
tests_unit_t_deliverd_fbid_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/deliverd
tests_unit_t_deliverd_fbid_LDADD = deliverd/libdeliverd.a $(DELIVERD_LIBS) $(TEST_LIBS)
# the DKIM key process's protocol (deliverd_key.c, dkey_proto.h)
check_PROGRAMS += tests/unit/t_dkey_proto
TESTS += tests/unit/t_dkey_proto
tests_unit_t_dkey_proto_SOURCES = tests/unit/t_dkey_proto.c
tests_unit_t_dkey_proto_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/deliverd
tests_unit_t_dkey_proto_LDADD = deliverd/libdeliverd.a $(DELIVERD_LIBS) $(TEST_LIBS)
# the key process: no DKIM key in a worker, Landlock, faults
TESTS += tests/blackbox/test_deliverd_keyproc.py
