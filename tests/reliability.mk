# Reliability and security (issue 9): crash safety under load, hostile
# clients, hostile next hops, faults. Helpers in tests/blackbox/lib/chaos.py.
# test_crash.py runs 2,000 messages here; SMTPGATE_CRASH_N=50000 for the full size.
TESTS += tests/blackbox/test_crash.py
TESTS += tests/blackbox/test_hostile.py
# One client stopping smtpd for everyone (issue 14, finding 4).
TESTS += tests/blackbox/test_hostile_dos.py
TESTS += tests/blackbox/test_nexthop.py
TESTS += tests/blackbox/test_faults.py
# Storage lifetime (issue 13): map growth, stale readers, min_free_space.
TESTS += tests/blackbox/test_storage.py
TESTS += tests/blackbox/test_symlink.py
# issue 13: failed commits (map full, disk full), scheduler memory, deletes in flight
TESTS += tests/blackbox/test_deliverd_commit.py
# smtpd commit order (issue 21): every 250 after a covering fsync, from strace.
TESTS += tests/blackbox/test_smtpd_dirsync.py
# A message that crashes spoold or a delivery worker (an abort in a library)
# is set aside instead of stopping the pipeline (crash-shim.so, LD_PRELOAD).
TESTS += tests/blackbox/test_poison.py
# Failures that must not multiply work (h-afail): DNS failures suspend the
# domain instead of a lookup per message; callbacks, dead next hops.
TESTS += tests/blackbox/test_fail_storm.py
# ... continued (h-dnsdown): the resolver down for every domain, the MX
# address and session limits, destinations failing their TLS policy.
TESTS += tests/blackbox/test_fail_storm_dns.py
