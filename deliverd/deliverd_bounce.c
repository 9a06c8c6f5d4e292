/*
 * The scheduler's bounce classification rules (bounce_rules_file,
 * common/bounce.h). Loaded once at start, where an unreadable or invalid
 * file is fatal; on SIGHUP a new file replaces the rules only when it
 * loads completely, otherwise the old rules stay and one line says why.
 * The default path may be absent (built-in fallbacks only); "" asks for
 * the built-in fallbacks explicitly.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "bounce.h"
#include "conf.h"
#include "deliverd.h"
#include "log.h"

#define DELIVERD_RULES_DEFAULT SYSCONFDIR "/smtpgate/bounce-rules"

static struct bounce_rules *deliverd_rules;

/* 1: load path; 0: built-in fallbacks only (no file named or the default
 * file is not installed). */
static int
deliverd_bounce_wanted(const char *path)
{
	if (path == NULL || path[0] == '\0')
		return 0;
	if (strcmp(path, DELIVERD_RULES_DEFAULT) == 0 &&
	    access(path, F_OK) == -1 && errno == ENOENT)
		return 0;
	return 1;
}

int
deliverd_bounce_load(const struct conf *cf, bool start)
{
	struct bounce_rules *rs = NULL;
	const char	    *path = cf->cf_bounce_rules_file;
	char		     err[512];

	if (deliverd_bounce_wanted(path) &&
	    (rs = bounce_rules_load(path, err, sizeof(err))) == NULL) {
		if (start)
			log_fatalx("bounce_rules_file: %s", err);
		log_warnx(
		    "reload: bounce_rules_file: %s (keeping the old rules)",
		    err);
		return -1;
	}
	bounce_rules_free(deliverd_rules);
	deliverd_rules = rs;
	if (rs == NULL)
		log_info("bounce rules: built-in fallbacks only%s%s",
		    path[0] != '\0' ? ", no file " : "", path);
	else
		log_info("bounce rules: loaded %s", path);
	return 0;
}

enum bounce_cat
deliverd_bounce_classify(enum bounce_stage st, const char *reply)
{
	return bounce_classify(deliverd_rules, st, reply);
}
