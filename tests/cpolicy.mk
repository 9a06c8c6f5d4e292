# Cluster mode's policy, issue ids and limit sharing (issue 19, h-cpolicy).
# The unit tests t_spool_cluster (spool/local.mk), t_deliverd_cshare
# (deliverd/local.mk) and the fuzz target fuzz_spool_centry live with
# their code; these are the black-box tests.
#
# test_cluster_policy: two gateways on one private PostgreSQL (lib/pg.py):
#   an account added on A authenticates on B; a stop-list entry added on B
#   refuses on A, deleted on A passes on B; PostgreSQL down: spoolctl works
#   locally, says so, and B gets the change when it returns; a hard bounce
#   learned by deliverd on B suppresses on A.
# test_cluster_share: live_nodes 2 in cluster.state halves a destination's
#   connections (4 -> 2 sessions at the peer).
TESTS += tests/blackbox/test_cluster_policy.py
TESTS += tests/blackbox/test_cluster_share.py
# test_cluster_seal: cluster_secret_file seals smtpgate.policy's values
#   (no key, hash or secret readable there; moved or clear rows refused;
#   spoolctl cluster seal for the rows written before the key).
TESTS += tests/blackbox/test_cluster_seal.py
