noinst_LIBRARIES += spool/libspool.a
spool_libspool_a_SOURCES = \
	spool/spool.h \
	spool/spool_dir.c \
	spool/spool_env.c \
	spool/spool_db.c \
	spool/spool_policy.c \
	spool/spool_queue.c \
	spool/spool_rec.c spool/spool_rec.h \
	spool/spool_key.c spool/spool_key.h \
	spool/spool_keyfile.c spool/spool_keyfile.h \
	spool/spool_event.c \
	spool/spool_engage.c \
	spool/spool_space.c \
	spool/spool_outbox.c spool/spool_done.c \
	spool/spool_index.c spool/spool_index.h spool/spool_evsel.c \
	spool/spool_prune.c \
	spool/spool_tag.c \
	spool/spool_pause.c \
	spool/spool_resume.c
# engagement tracking (issue 16)
spool_libspool_a_SOURCES += spool/spool_track.c spool/spool_track.h
spool_libspool_a_SOURCES += spool/spool_dedupe.c
spool_libspool_a_SOURCES += spool/spool_nxdom.c
spool_libspool_a_SOURCES += spool/spool_tlsrpt.c
# TLS reports sent (spoolctl tls-report --send)
spool_libspool_a_SOURCES += spool/spool_tlsrpt_sent.c
# MTA-STS policy cache (issue 17 item 2)
spool_libspool_a_SOURCES += spool/spool_mtasts.c
spool_libspool_a_CFLAGS = $(AM_CFLAGS) $(LMDB_CFLAGS) $(OPENSSL_CFLAGS)
# cluster mode (issue 19): the policy journal, the mirror, issue ids
spool_libspool_a_SOURCES += spool/spool_cluster.c spool/spool_cluster.h \
	spool/spool_cjent.c
# the events export (issue 13: batches, flock, no write txn around the I/O)
spool_libspool_a_SOURCES += spool/spool_export.c
# the note beside a quarantined file (reason, count, time)
spool_libspool_a_SOURCES += spool/spool_qnote.c spool/spool_qnote.h

# Unit tests (STYLE T2): envelope, LMDB records, durable write and crashes.
UNIT_TESTS += tests/unit/t_spool_env
tests_unit_t_spool_env_SOURCES = tests/unit/t_spool_env.c
tests_unit_t_spool_env_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_spool_env_LDADD = $(TEST_LIBS)
UNIT_TESTS += tests/unit/t_spool_qnote
tests_unit_t_spool_qnote_SOURCES = tests/unit/t_spool_qnote.c
tests_unit_t_spool_qnote_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_spool_qnote_LDADD = $(TEST_LIBS)
UNIT_TESTS += tests/unit/t_spool_db
tests_unit_t_spool_db_SOURCES = tests/unit/t_spool_db.c
tests_unit_t_spool_db_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_spool_db_LDADD = $(TEST_LIBS)
# h-asupp: internationalized domains and address keys (common/idn.c)
UNIT_TESTS += tests/unit/t_idn
tests_unit_t_idn_SOURCES = tests/unit/t_idn.c
tests_unit_t_idn_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_idn_LDADD = $(TEST_LIBS)
UNIT_TESTS += tests/unit/t_spool_export
tests_unit_t_spool_export_SOURCES = tests/unit/t_spool_export.c
tests_unit_t_spool_export_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_spool_export_LDADD = $(TEST_LIBS)
UNIT_TESTS += tests/unit/t_spool_map
tests_unit_t_spool_map_SOURCES = tests/unit/t_spool_map.c
tests_unit_t_spool_map_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_spool_map_LDADD = $(TEST_LIBS)
UNIT_TESTS += tests/unit/t_spool_dir
tests_unit_t_spool_dir_SOURCES = tests/unit/t_spool_dir.c
tests_unit_t_spool_dir_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_spool_dir_LDADD = $(TEST_LIBS)
UNIT_TESTS += tests/unit/t_spool_outbox
tests_unit_t_spool_outbox_SOURCES = tests/unit/t_spool_outbox.c
tests_unit_t_spool_outbox_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_spool_outbox_LDADD = $(TEST_LIBS)
UNIT_TESTS += tests/unit/t_spool_index
tests_unit_t_spool_index_SOURCES = tests/unit/t_spool_index.c
tests_unit_t_spool_index_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/spool $(LMDB_CFLAGS)
tests_unit_t_spool_index_LDADD = $(TEST_LIBS)
UNIT_TESTS += tests/unit/t_spool_evsel
tests_unit_t_spool_evsel_SOURCES = tests/unit/t_spool_evsel.c
tests_unit_t_spool_evsel_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/spool $(LMDB_CFLAGS)
tests_unit_t_spool_evsel_LDADD = $(TEST_LIBS)
# issue 14: envelope tags
UNIT_TESTS += tests/unit/t_spool_tag
tests_unit_t_spool_tag_SOURCES = tests/unit/t_spool_tag.c
tests_unit_t_spool_tag_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_spool_tag_LDADD = $(TEST_LIBS)
# pauses (issue 15 item 7)
UNIT_TESTS += tests/unit/t_spool_pause
tests_unit_t_spool_pause_SOURCES = tests/unit/t_spool_pause.c
tests_unit_t_spool_pause_CPPFLAGS = $(UNIT_CPPFLAGS) $(LMDB_CFLAGS)
tests_unit_t_spool_pause_LDADD = $(TEST_LIBS)
# engagement events (issue 16)
UNIT_TESTS += tests/unit/t_spool_engage
tests_unit_t_spool_engage_SOURCES = tests/unit/t_spool_engage.c
tests_unit_t_spool_engage_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/spool $(LMDB_CFLAGS)
tests_unit_t_spool_engage_LDADD = $(TEST_LIBS)
# engagement tracking (issue 16): tokens, key, records, pruning
UNIT_TESTS += tests/unit/t_spool_track
tests_unit_t_spool_track_SOURCES = tests/unit/t_spool_track.c
tests_unit_t_spool_track_CPPFLAGS = $(UNIT_CPPFLAGS) $(LMDB_CFLAGS)
tests_unit_t_spool_track_LDADD = $(TEST_LIBS)
# signed callbacks (issue 18 item 1): X-Smtpgate-Signature, secrets' checks
spool_libspool_a_SOURCES += spool/spool_cbsig.c spool/spool_cbsig.h
UNIT_TESTS += tests/unit/t_spool_cbsig
tests_unit_t_spool_cbsig_SOURCES = tests/unit/t_spool_cbsig.c
tests_unit_t_spool_cbsig_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_t_spool_cbsig_LDADD = $(TEST_LIBS)
# idempotent submission (issue 18 item 3): the X-Letter-Id index, its pruning
UNIT_TESTS += tests/unit/t_spool_dedupe
tests_unit_t_spool_dedupe_SOURCES = tests/unit/t_spool_dedupe.c
tests_unit_t_spool_dedupe_CPPFLAGS = $(UNIT_CPPFLAGS) $(LMDB_CFLAGS)
tests_unit_t_spool_dedupe_LDADD = $(TEST_LIBS)
# NXDOMAIN sightings (deliverd's nxdomain_confirm), their bound and pruning
UNIT_TESTS += tests/unit/t_spool_nxdom
tests_unit_t_spool_nxdom_SOURCES = tests/unit/t_spool_nxdom.c
tests_unit_t_spool_nxdom_CPPFLAGS = $(UNIT_CPPFLAGS) $(LMDB_CFLAGS)
tests_unit_t_spool_nxdom_LDADD = $(TEST_LIBS)
# TLS reporting counters (issue 17 item 4)
UNIT_TESTS += tests/unit/t_spool_tlsrpt
tests_unit_t_spool_tlsrpt_SOURCES = tests/unit/t_spool_tlsrpt.c
tests_unit_t_spool_tlsrpt_CPPFLAGS = $(UNIT_CPPFLAGS) $(LMDB_CFLAGS)
tests_unit_t_spool_tlsrpt_LDADD = $(TEST_LIBS)
# MTA-STS policy cache (issue 17 item 2)
UNIT_TESTS += tests/unit/t_spool_mtasts
tests_unit_t_spool_mtasts_SOURCES = tests/unit/t_spool_mtasts.c
tests_unit_t_spool_mtasts_CPPFLAGS = $(UNIT_CPPFLAGS) $(LMDB_CFLAGS)
tests_unit_t_spool_mtasts_LDADD = $(TEST_LIBS)
# cluster mode (issue 19): journal codec, journal, mirror, issue ids
UNIT_TESTS += tests/unit/t_spool_cluster
tests_unit_t_spool_cluster_SOURCES = tests/unit/t_spool_cluster.c
tests_unit_t_spool_cluster_CPPFLAGS = $(UNIT_CPPFLAGS) $(LMDB_CFLAGS)
tests_unit_t_spool_cluster_LDADD = $(TEST_LIBS)
