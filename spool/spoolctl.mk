# spoolctl (issue 6 owner)
