# State that grows with use stops at a bound (h-astate; README "Storage
# and retention").
TESTS += tests/blackbox/test_retention.py
