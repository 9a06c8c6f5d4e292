# bench: benchmarks against Postfix (bench/run; see bench/README.md).
# Only the fsync ceiling is compiled; the rest is Python run by bench/run.
noinst_PROGRAMS += bench/fsync_ceiling
bench_fsync_ceiling_SOURCES = bench/fsync_ceiling.c
# make check runs every benchmark once at a tiny size (bench/run --smoke).
TESTS += tests/blackbox/test_bench_smoke.py
