# The Debian package (issue 18 item 6): debian/ is distributed, and the test
# that builds, lints, installs, runs and purges it. That test changes the
# machine, so it skips unless SMTPGATE_DEB_TEST=1 (contrib/run-tests sets it
# as root) and dpkg-buildpackage is installed.
EXTRA_DIST += debian
TESTS += tests/blackbox/test_debian_package.py
# an in-tree dpkg-buildpackage leaves its build products in debian/
dist-hook: dist-hook-debian
dist-hook-debian:
	cd $(distdir)/debian && rm -rf .debhelper smtpgate files debhelper-build-stamp \
	    *.substvars *.debhelper *.debhelper.log autoreconf.before autoreconf.after
.PHONY: dist-hook-debian
