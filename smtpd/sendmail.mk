# smtpgate-sendmail (issue 7 owner)
