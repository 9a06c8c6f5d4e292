# tests/tools/: helpers the black-box tests and bench/ run; none is installed.
# check_PROGRAMS: `make check` builds them before it runs any test.

# Files accounts, DKIM keys and messages through the spool API (what
# spoold/spoolctl do), so the deliverd tests need only deliverd.
check_PROGRAMS += tests/tools/deliverd-inject
tests_tools_deliverd_inject_SOURCES = tests/tools/deliverd_inject.c
tests_tools_deliverd_inject_LDADD = $(DELIVERD_LIBS)

# Seeds spoold's records (permanent failures) for the black-box tests.
check_PROGRAMS += tests/tools/spoold-seed
tests_tools_spoold_seed_SOURCES = tests/tools/spoold_seed.c
tests_tools_spoold_seed_LDADD = $(SPOOLD_LIBS)

# Fills an LMDB spool with N synthetic messages (spoolctl queue/stats tests,
# the delivery-log tests).
check_PROGRAMS += tests/tools/spoolctl-gen
tests_tools_spoolctl_gen_SOURCES = tests/tools/spoolctl_gen.c
tests_tools_spoolctl_gen_LDADD = $(SPOOLCTL_LIBS)

# Records a tracked message (spool_track_put) and prints its tokens, so the
# trackd tests need no rewriting deliverd (issue 16).
check_PROGRAMS += tests/tools/track-seed
tests_tools_track_seed_SOURCES = tests/tools/track_seed.c
tests_tools_track_seed_LDADD = spool/libspool.a common/libcommon.a \
	$(LMDB_LIBS) $(YAJL_LIBS) $(OPENSSL_LIBS) $(LIBS)
# Adds opened/clicked/unsubscribed/complained events for a logged message,
# as trackd does (issue 16: spoolctl issues counters, the stat.uni query).
check_PROGRAMS += tests/tools/engage-inject
tests_tools_engage_inject_SOURCES = tests/tools/engage_inject.c
tests_tools_engage_inject_LDADD = $(SPOOLCTL_LIBS)
# An LD_PRELOAD shim that kills the daemon it is loaded into when it reads
# a marker in a message (test_poison.py): a library crash, no product hook.
# Its own flags: a shared object (no -pie), whatever the daemons' build.
check_PROGRAMS += tests/tools/crash-shim.so
tests_tools_crash_shim_so_SOURCES = tests/tools/crash_shim.c
tests_tools_crash_shim_so_CFLAGS = -std=c11 -Wall -Wextra -Werror -fPIC
tests_tools_crash_shim_so_LDFLAGS = -shared
tests_tools_crash_shim_so_LDADD =
# An LD_PRELOAD shim for a kernel without Landlock (test_confine.py).
check_PROGRAMS += tests/tools/nolandlock-shim.so
tests_tools_nolandlock_shim_so_SOURCES = tests/tools/nolandlock_shim.c
tests_tools_nolandlock_shim_so_CFLAGS = -std=c11 -Wall -Wextra -Werror -fPIC
tests_tools_nolandlock_shim_so_LDFLAGS = -shared
tests_tools_nolandlock_shim_so_LDADD = -ldl
check_PROGRAMS += tests/tools/slowsync-shim.so
tests_tools_slowsync_shim_so_SOURCES = tests/tools/slowsync_shim.c
tests_tools_slowsync_shim_so_CFLAGS = -std=c11 -Wall -Wextra -Werror -fPIC
tests_tools_slowsync_shim_so_LDFLAGS = -shared
tests_tools_slowsync_shim_so_LDADD =
# Runs a program with only the socket families a unit's
# RestrictAddressFamilies= allows (seccomp, as systemd does):
# test_priv_boundaries.py checks the units against what the daemons need.
check_PROGRAMS += tests/tools/af-restrict
tests_tools_af_restrict_SOURCES = tests/tools/af_restrict.c
# An LD_PRELOAD shim that makes LMDB's writes (data.mdb) fail with EIO while
# a flag file exists (test_fail_storm.py): a failing disk, no product hook.
check_PROGRAMS += tests/tools/eio-shim.so
tests_tools_eio_shim_so_SOURCES = tests/tools/eio_shim.c
tests_tools_eio_shim_so_CFLAGS = -std=c11 -Wall -Wextra -Werror -fPIC
tests_tools_eio_shim_so_LDFLAGS = -shared
tests_tools_eio_shim_so_LDADD =
