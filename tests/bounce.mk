# Bounce classification (issue 15, item 1): black-box test. The unit tests
# t_bounce and t_bounce_corpus are registered in tests/unit/local.mk.
TESTS += tests/blackbox/test_bounce_class.py
