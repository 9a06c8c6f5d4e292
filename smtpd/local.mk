# smtpd: see its owner's local.mk
