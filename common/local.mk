noinst_LIBRARIES += common/libcommon.a
common_libcommon_a_SOURCES = \
	common/bounce.c common/bounce.h \
	common/buf.c common/buf.h \
	common/cidr.c common/cidr.h \
	common/conf.c common/conf.h common/conf_keys.c common/conf_keys.h \
	common/daemon.c common/daemon.h \
	common/ev.c common/ev.h \
	common/fsx.c common/fsx.h \
	common/json.c common/json.h \
	common/kids.c common/kids.h \
	common/log.c common/log.h \
	common/ownaddr.c common/ownaddr.h \
	common/priv.c common/priv.h \
	common/qid.c common/qid.h \
	common/sig.c common/sig.h \
	common/trigger.c common/trigger.h \
	common/xmem.c common/xmem.h \
	common/pwcheck.c common/pwcheck.h \
	common/srcaddr.c common/srcaddr.h
common_libcommon_a_CFLAGS = $(AM_CFLAGS) $(YAJL_CFLAGS)
