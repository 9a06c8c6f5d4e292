# The CONTRACT audit: black-box checks of shared/CONTRACT.md against the real binaries.
TESTS += tests/blackbox/test_contract.py
