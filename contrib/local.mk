# contrib (issue 7): systemd units, tmpfiles.d, sysusers.d, logrotate, the
# sample configuration and smtpgate.conf(5). Files ending in .in get the
# configured paths substituted (the units must name the installed daemons).
#
# Where they go (override on the make command line, e.g. for packaging):
#   systemd units        $(systemdunitdir)  = $(prefix)/lib/systemd/system
#   tmpfiles.d, sysusers.d  $(prefix)/lib/{tmpfiles.d,sysusers.d}
#   logrotate            $(logrotatedir)    = $(sysconfdir)/logrotate.d
#   sample configuration $(sysconfdir)/smtpgate/smtpgate.conf.sample
# systemd reads /usr/lib and /usr/local/lib, so with prefix /usr or
# /usr/local the units are found as installed; nothing is enabled or
# started by make install (README "Install").
systemdunitdir = $(prefix)/lib/systemd/system
tmpfilesdir = $(prefix)/lib/tmpfiles.d
sysusersdir = $(prefix)/lib/sysusers.d
logrotatedir = $(sysconfdir)/logrotate.d
smtpgateconfdir = $(sysconfdir)/smtpgate

CONTRIB_GENERATED = \
	contrib/systemd/smtpgate-smtpd.service \
	contrib/systemd/smtpgate-spoold.service \
	contrib/systemd/smtpgate-deliverd.service \
	contrib/systemd/smtpgate-trackd.service \
	contrib/systemd/smtpgate-clusterd.service \
	contrib/systemd/smtpgate-tls-report.service \
	contrib/tmpfiles.d/smtpgate.conf \
	contrib/logrotate/smtpgate \
	contrib/smtpgate.conf.sample

systemdunit_DATA = \
	contrib/systemd/smtpgate-smtpd.service \
	contrib/systemd/smtpgate-spoold.service \
	contrib/systemd/smtpgate-deliverd.service \
	contrib/systemd/smtpgate-trackd.service \
	contrib/systemd/smtpgate-clusterd.service \
	contrib/systemd/smtpgate.target
# spoolctl tls-report --send, daily (RFC 8460 5)
systemdunit_DATA += contrib/systemd/smtpgate-tls-report.service \
	contrib/systemd/smtpgate-tls-report.timer
tmpfiles_DATA = contrib/tmpfiles.d/smtpgate.conf
sysusers_DATA = contrib/sysusers.d/smtpgate.conf
logrotate_DATA = contrib/logrotate/smtpgate
smtpgateconf_DATA = contrib/smtpgate.conf.sample
# bounce classification rules (bounce_rules_file, issue 15)
dist_smtpgateconf_DATA = contrib/bounce-rules
dist_man_MANS += contrib/smtpgate.conf.5
CLEANFILES += $(CONTRIB_GENERATED)

contrib_subst = sed \
	-e 's|@pkglibexecdir[@]|$(pkglibexecdir)|g' \
	-e 's|@sbindir[@]|$(sbindir)|g' \
	-e 's|@sysconfdir[@]|$(sysconfdir)|g' \
	-e 's|@localstatedir[@]|$(localstatedir)|g'

$(CONTRIB_GENERATED): Makefile
	$(AM_V_GEN)$(MKDIR_P) $(@D) && rm -f $@ $@.tmp && \
	$(contrib_subst) $(srcdir)/$@.in > $@.tmp && mv $@.tmp $@

contrib/systemd/smtpgate-smtpd.service: $(srcdir)/contrib/systemd/smtpgate-smtpd.service.in
contrib/systemd/smtpgate-spoold.service: $(srcdir)/contrib/systemd/smtpgate-spoold.service.in
contrib/systemd/smtpgate-deliverd.service: $(srcdir)/contrib/systemd/smtpgate-deliverd.service.in
contrib/systemd/smtpgate-trackd.service: $(srcdir)/contrib/systemd/smtpgate-trackd.service.in
contrib/systemd/smtpgate-clusterd.service: $(srcdir)/contrib/systemd/smtpgate-clusterd.service.in
contrib/systemd/smtpgate-tls-report.service: $(srcdir)/contrib/systemd/smtpgate-tls-report.service.in
contrib/tmpfiles.d/smtpgate.conf: $(srcdir)/contrib/tmpfiles.d/smtpgate.conf.in
contrib/logrotate/smtpgate: $(srcdir)/contrib/logrotate/smtpgate.in
contrib/smtpgate.conf.sample: $(srcdir)/contrib/smtpgate.conf.sample.in

# Black-box tests of this directory, the injector and the quick start.
TESTS += tests/blackbox/test_sendmail.py tests/blackbox/test_contrib.py \
	tests/blackbox/test_demo.py
