# smtpgate-sendmail (issue 7): the sendmail-compatible local injector.
sbin_PROGRAMS += smtpd/smtpgate-sendmail
smtpd_smtpgate_sendmail_SOURCES = \
	smtpd/sendmail.c smtpd/sendmail.h \
	smtpd/sendmail_msg.c \
	smtpd/sendmail_smtp.c
smtpd_smtpgate_sendmail_LDADD = spoold/libhdr.a common/libcommon_net.a \
	spool/libspool.a common/libcommon.a \
	$(LMDB_LIBS) $(YAJL_LIBS) $(OPENSSL_LIBS) $(LIBS)
dist_man_MANS += smtpd/smtpgate-sendmail.8

# maildrop/ is writable by group smtpgate-maildrop only: the installed
# injector is setgid smtpgate-maildrop (like Postfix's postdrop). Done only
# when installing as root and the group exists; otherwise say how to do it
# by hand.
install-exec-hook: install-sendmail-setgid
install-sendmail-setgid:
	@f='$(DESTDIR)$(sbindir)/smtpgate-sendmail'; \
	if [ "$$(id -u)" = 0 ] && getent group smtpgate-maildrop >/dev/null 2>&1; then \
		echo " chgrp smtpgate-maildrop $$f && chmod 2755 $$f"; \
		chgrp smtpgate-maildrop "$$f" && chmod 2755 "$$f"; \
	else \
		echo "NOTE: $$f is not setgid smtpgate-maildrop; as root, after creating"; \
		echo "      the group: chgrp smtpgate-maildrop $$f && chmod 2755 $$f"; \
	fi
.PHONY: install-sendmail-setgid
