# clusterd (issue 19): cluster mode's PostgreSQL side, the only program
# linking libpq. clusterd/schema.sql is embedded at build time as the C
# string cd_schema_sql (clusterd/schema_sql.c, generated).
pkglibexec_PROGRAMS += clusterd/clusterd
clusterd_clusterd_SOURCES = clusterd/clusterd.h clusterd/clusterd.c \
	clusterd/cluster_pg.c clusterd/cluster_ship.c clusterd/cluster_node.c \
	clusterd/cluster_counts.c
nodist_clusterd_clusterd_SOURCES = clusterd/schema_sql.c
clusterd_clusterd_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/clusterd
clusterd_clusterd_CFLAGS = $(AM_CFLAGS) $(LIBPQ_CFLAGS)
clusterd_clusterd_LDADD = clusterd/libcpolicy.a spool/libspool.a \
	common/libcommon.a \
	$(LMDB_LIBS) $(YAJL_LIBS) $(OPENSSL_LIBS) $(LIBPQ_LIBS) $(LIBS)
dist_man_MANS += clusterd/clusterd.8
EXTRA_DIST += clusterd/schema.sql
CLEANFILES += clusterd/schema_sql.c

# Each line of schema.sql becomes one line of a C string literal.
clusterd/schema_sql.c: $(srcdir)/clusterd/schema.sql
	$(AM_V_GEN)$(MKDIR_P) $(@D) && rm -f $@.tmp && { \
	  echo '/* generated from clusterd/schema.sql: do not edit */'; \
	  echo '#include "config.h"'; \
	  echo '#include "clusterd.h"'; \
	  echo 'const char cd_schema_sql[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' \
	    $(srcdir)/clusterd/schema.sql; \
	  echo ';'; } > $@.tmp && mv $@.tmp $@

# Black-box tests (a private PostgreSQL: tests/blackbox/lib/pg.py).
TESTS += tests/blackbox/test_clusterd.py
# Two gateways with one cluster_node: the second refused, nothing lost.
TESTS += tests/blackbox/test_cluster_node.py
