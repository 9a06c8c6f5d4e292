# more unit tests: each owner appends 'UNIT_TESTS += tests/unit/t_x' blocks here
