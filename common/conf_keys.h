/* The one table of configuration keys (STYLE C5). Internal to conf.c. */
#ifndef SG_CONF_KEYS_H
#define SG_CONF_KEYS_H

#include <stddef.h>
#include <stdint.h>

enum conf_type {
	CONF_T_STR,	 /* char *, may be "" */
	CONF_T_INT,	 /* int64_t in [min, max] */
	CONF_T_SIZE,	 /* int64_t bytes in [min, max], k/m/g suffix */
	CONF_T_DURATION, /* time_t seconds in [min, max], s/m/h/d suffix */
	CONF_T_BOOL,	 /* bool: yes/no/true/false/on/off/1/0 */
	CONF_T_LIST, /* struct conf_list: whitespace-separated words, repeatable */
	CONF_T_LISTEN, /* repeatable listen lines */
	CONF_T_ENUM,   /* char *, one of .choices */
	CONF_T_LINES,  /* struct conf_list: one element per line, repeatable */
};

struct conf_key {
	const char    *name;
	enum conf_type type;
	const char    *def; /* default, as it would be written in the file */
	int64_t	       min, max;
	size_t	       off;	/* offsetof(struct conf, ...) */
	const char    *choices; /* CONF_T_ENUM: "a|b|c" */
	unsigned       owner; /* CONF_SMTPD | ...: the programs that read it */
};

/* The programs that read a key (the owner column). */
enum conf_owner {
	CONF_SMTPD = 1u << 0,
	CONF_SPOOLD = 1u << 1,
	CONF_DELIVERD = 1u << 2,
	CONF_SPOOLCTL = 1u << 3,
	CONF_SENDMAIL = 1u << 4,
	CONF_TRACKD = 1u << 5,
	CONF_CLUSTERD = 1u << 6, /* cluster mode (issue 19) */
};
/* Keys the spool library (spool_open, spool_dir, spool_space) reads for
 * every program that opens the spool. */
#define CONF_SPOOL \
	(CONF_SMTPD | CONF_SPOOLD | CONF_DELIVERD | CONF_SPOOLCTL | \
	    CONF_SENDMAIL | CONF_TRACKD | CONF_CLUSTERD)
#define CONF_ALL CONF_SPOOL

extern const struct conf_key conf_keys[];
extern const size_t	     conf_nkeys;

#endif
