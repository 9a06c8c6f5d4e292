/*
 * bounce_veto: whether a failed attempt may put its recipient on the
 * suppression list (bounce.h, bounce_suppress_veto). A suppression made by
 * mistake loses that account's mail to a person for good, which is worse
 * than a missed one; so on top of the category (which an operator's rule
 * file decides) a few built-in vetoes apply that no rule can lift: replies
 * about the sender, our address, the connection, the content, a limit or a
 * policy, whatever words around them say the mailbox is unknown.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "bounce.h"

#define VETO_REPLY_MAX 4096 /* bytes of a reply examined, as bounce.c */

/* Same, needle in any case (an address, an IP): lower-cased first. */
static bool
veto_names(const char *hay, size_t hlen, const char *what)
{
	char   low[VETO_REPLY_MAX + 1];
	size_t i, n;

	if (what == NULL || (n = strlen(what)) == 0 || n >= sizeof(low))
		return false;
	for (i = 0; i < n; i++)
		low[i] = (char)tolower((unsigned char)what[i]);
	low[n] = '\0';
	return bounce_icontains(hay, hlen, low);
}

/*
 * The enhanced code right after the reply code ("550 5.1.1", "550-5.1.1",
 * "550 #5.1.1"), as class, subject and detail; false when there is none.
 */
static bool
veto_enh(const char *r, size_t len, int *subj_r, int *det_r)
{
	size_t i = 4;
	int    cls;

	if (len < 9 || !isdigit((unsigned char)r[0]) ||
	    (r[3] != ' ' && r[3] != '-'))
		return false;
	while (i < len && r[i] == ' ')
		i++;
	if (i < len && r[i] == '#')
		i++;
	if (sscanf(r + i, "%1d.%3d.%3d", &cls, subj_r, det_r) != 3 ||
	    cls != r[0] - '0')
		return false;
	return true;
}

/* Enhanced codes that are about something else than the mailbox. */
static const char *
veto_by_enh(int subj, int det)
{
	if (subj == 3 || subj == 6)
		return "enhanced code about the system or the content";
	if (subj == 7)
		return "enhanced code about security or policy";
	if (subj == 1 && (det == 7 || det == 8))
		return "enhanced code about the sender's address";
	if (subj == 2 && det != 1)
		return "enhanced code about the mailbox's limits";
	if (subj == 4 && det == 7)
		return "enhanced code for an expired delivery";
	return NULL;
}

/*
 * Words of replies that refuse for another reason than the recipient's
 * mailbox (from published replies of Gmail, Microsoft, Yahoo, Mail.ru,
 * Postfix, Exim, Sendmail, Proofpoint, Mimecast and the DNSBLs).
 */
static const char *const veto_words[] = {
	"sender",
	"mail from",
	"return-path",
	"return path",
	"your ip",
	"ip address",
	"client host",
	"sending ip",
	"your host",
	"your server",
	"your mail server",
	"helo",
	"ehlo",
	"reverse dns",
	"ptr record",
	"spam",
	"junk",
	"bulk",
	"blocked",
	"blocklist",
	"blacklist",
	"block list",
	"black list",
	"blocked using",
	"is listed",
	"listed at",
	"listed on",
	"listed by",
	"dnsbl",
	"spamhaus",
	"reputation",
	"policy",
	"relay access",
	"relaying",
	"unable to relay",
	"relay denied",
	"relay not",
	"dmarc",
	"spf",
	"dkim",
	"authenticat",
	"virus",
	"malware",
	"content",
	"attachment",
	"message size",
	"too large",
	"too big",
	"size limit",
	"exceeds",
	"quota",
	"full",
	"storage",
	"rate limit",
	"ratelimit",
	"too many",
	"try again",
	"temporar",
	"greylist",
	"graylist",
	"later",
};

/* The word that vetoes (bounce_suppress_veto's answer), or NULL. */
static const char *
veto_by_text(const char *reply, size_t len, const struct bounce_ctx *bc)
{
	char   text[VETO_REPLY_MAX + 1];
	size_t i;

	/* our own sender or address named, and the recipient not */
	if (bc != NULL && !veto_names(reply, len, bc->bc_rcpt) &&
	    (veto_names(reply, len, bc->bc_sender) ||
		veto_names(reply, len, bc->bc_srcip)))
		return "names the sender or our address, not the recipient";
	memcpy(text, reply, len);
	text[len] = '\0';
	bounce_mask(text, len);
	for (i = 0; i < sizeof(veto_words) / sizeof(veto_words[0]); i++)
		if (bounce_icontains(text, len, veto_words[i]))
			return veto_words[i];
	return NULL;
}

const char *
bounce_suppress_veto(enum bounce_cat cat, enum bounce_stage st,
    const char *reply, const struct bounce_ctx *bc)
{
	size_t	    len;
	int	    code, subj, det;
	const char *why;

	if (reply == NULL || !isdigit((unsigned char)reply[0]) ||
	    !isdigit((unsigned char)reply[1]) ||
	    !isdigit((unsigned char)reply[2]))
		return "no reply code";
	code = (reply[0] - '0') * 100 + (reply[1] - '0') * 10 +
	    (reply[2] - '0');
	if (!bounce_suppresses(cat, st, code))
		return "not a recipient-level permanent failure";
	if (st == BOUNCE_ST_CONNECT)
		return NULL; /* our own text: DNS says the domain takes none */
	if (code == 552)
		return "552: a storage or size limit";
	if (st == BOUNCE_ST_DATA && bc != NULL && bc->bc_shared)
		return "end-of-data reply to the whole message";
	len = strnlen(reply, VETO_REPLY_MAX);
	if (veto_enh(reply, len, &subj, &det) &&
	    (why = veto_by_enh(subj, det)) != NULL)
		return why;
	return veto_by_text(reply, len, bc);
}
