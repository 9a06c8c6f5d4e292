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
	spool/spool_event.c
spool_libspool_a_CFLAGS = $(AM_CFLAGS) $(LMDB_CFLAGS)
