# Policy in cluster mode (issue 19, h-cpolicy): cluster_policy.c between
# the LMDB journal/mirror (spool/spool_cluster.c) and PostgreSQL, linked by
# clusterd and by spoolctl (its publish after a commit, cluster export).
noinst_LIBRARIES += clusterd/libcpolicy.a
clusterd_libcpolicy_a_SOURCES = clusterd/cluster_policy.c \
	clusterd/cluster_policy.h clusterd/cluster_mark.c \
	clusterd/cluster_seal.c
clusterd_libcpolicy_a_CFLAGS = $(AM_CFLAGS) $(LIBPQ_CFLAGS)

spool_spoolctl_SOURCES += spool/spoolctl_cluster.c
# cluster export creates the schema as clusterd would (clusterd/local.mk)
nodist_spool_spoolctl_SOURCES = clusterd/schema_sql.c
spool_spoolctl_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/clusterd \
	$(LIBPQ_CFLAGS)
spool_spoolctl_LDADD += clusterd/libcpolicy.a spool/libspool.a \
	common/libcommon.a $(LIBPQ_LIBS) $(LMDB_LIBS) $(OPENSSL_LIBS)
