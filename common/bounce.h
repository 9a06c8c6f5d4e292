/*
 * bounce: classifies a failed delivery attempt into one of the categories
 * pinned in CONTRACT ("Second wave"), from where in the SMTP dialogue it
 * failed, the reply code, its enhanced status code (RFC 3463) and the reply
 * text, using an ordered rule list (contrib/bounce-rules, extendable by the
 * operator) and built-in fallbacks by enhanced code and stage.
 *
 * Whether a category may add an address to the suppression list is decided
 * here, once: only recipient-level permanent failures do.
 */
#ifndef SG_BOUNCE_H
#define SG_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>

enum bounce_cat {
	BOUNCE_NONE = 0, /* not a failure (2xx) */
	BOUNCE_BAD_MAILBOX,
	BOUNCE_BAD_DOMAIN,
	BOUNCE_INACTIVE_MAILBOX,
	BOUNCE_QUOTA,
	BOUNCE_POLICY,
	BOUNCE_SPAM,
	BOUNCE_VIRUS,
	BOUNCE_ROUTING,
	BOUNCE_PROTOCOL,
	BOUNCE_NO_ANSWER,
	BOUNCE_RELAYING_DENIED,
	BOUNCE_EXPIRED,
	BOUNCE_OTHER,
	BOUNCE_CAT_COUNT
};

/* Where in the dialogue the reply came from. */
enum bounce_stage {
	BOUNCE_ST_UNKNOWN = 0,
	BOUNCE_ST_CONNECT, /* DNS, connect, TLS: no SMTP reply */
	BOUNCE_ST_GREETING,
	BOUNCE_ST_HELO,
	BOUNCE_ST_MAIL,
	BOUNCE_ST_RCPT,
	BOUNCE_ST_DATA, /* DATA command or end of data */
	BOUNCE_ST_COUNT
};

struct bounce_rules;

/* "bad-mailbox", ...; NULL for BOUNCE_NONE or out of range. */
const char *bounce_cat_name(enum bounce_cat);
/* BOUNCE_NONE when name is not a category. */
enum bounce_cat	  bounce_cat_parse(const char *name);
const char	 *bounce_stage_name(enum bounce_stage);
enum bounce_stage bounce_stage_parse(const char *name);

/* True only for recipient-level permanent failures (bad-mailbox,
 * bad-domain, inactive-mailbox) of a 5xx at RCPT or end of data, and for
 * bad-domain at connect (a 5xx of our own: NXDOMAIN, null MX). */
bool bounce_suppresses(enum bounce_cat, enum bounce_stage, int code);

/* What bounce_suppress_veto knows of the attempt; any field may be NULL/0. */
struct bounce_ctx {
	const char *bc_rcpt;   /* the recipient */
	const char *bc_sender; /* the envelope sender */
	const char *bc_srcip;  /* the address we connected from */
	bool	    bc_shared; /* the DATA reply answered more than one */
};

/*
 * NULL when the failure (its category, stage and reply) may put the
 * recipient on the suppression list, else a short reason why not
 * (static text). bounce_suppresses() first; then vetoes no rule file can
 * lift (bounce_veto.c, smtpgate.conf(5) BOUNCE CLASSIFICATION): a 552, a
 * DATA reply that answered several recipients, an enhanced code about
 * the system, content, policy, the sender or a size limit (x.3, x.6, x.7,
 * x.1.7, x.1.8, x.2 but x.2.1, x.4.7), a reply naming the sender or our
 * address and not the recipient, and words of policy, reputation, limits
 * and content ("sender", "spam", "quota", "try again", ...).
 */
const char *bounce_suppress_veto(enum bounce_cat, enum bounce_stage,
    const char *reply, const struct bounce_ctx *);

/*
 * Loads a rule file (syntax in contrib/bounce-rules and smtpgate.conf(5)).
 * NULL with err filled (file:line: reason) on any error. bounce_rules_free
 * accepts NULL.
 */
struct bounce_rules *bounce_rules_load(const char *path, char *err,
    size_t errlen);
struct bounce_rules *bounce_rules_parse(const char *text, size_t len,
    const char *name, char *err, size_t errlen);
void		     bounce_rules_free(struct bounce_rules *);

/* Masks what a reply holds in angle brackets (addresses: a reply about
 * <spam-reports@example.com> says nothing about spam), in place. */
void bounce_mask(char *s, size_t len);
/* Does hay[0..hlen) hold needle (lower case), in any case? */
bool bounce_icontains(const char *hay, size_t hlen, const char *needle);
/*
 * Classifies reply (the full reply text, "550 5.1.1 ..."; multi-line
 * replies joined) given at stage. rules may be NULL (built-in fallbacks
 * only). Never fails: unknown replies are BOUNCE_OTHER; 2xx is BOUNCE_NONE.
 */
enum bounce_cat bounce_classify(const struct bounce_rules *, enum bounce_stage,
    const char *reply);

#endif
