/*
 * arf: feedback-loop reports with GMime 3 (arf.h). The only file that
 * includes <gmime/gmime.h>. Every GMime object is released before return.
 */
#include "config.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#include <gmime/gmime.h>

#include "arf.h"
#include "buf.h"

static void
arf_init(void)
{
	static bool done;

	if (!done) {
		g_mime_init();
		done = true;
	}
}

/* Copies s into dst (or "" for NULL): printable ASCII and UTF-8 only,
 * control characters as '?', leading and trailing white space cut. */
static void
arf_copy(char *dst, size_t dstsz, const char *s)
{
	size_t n, o = 0;

	dst[0] = '\0';
	if (s == NULL)
		return;
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	n = strlen(s);
	while (n > 0 &&
	    (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' ||
		s[n - 1] == '\n'))
		n--;
	for (; n > 0 && o + 1 < dstsz; s++, n--)
		dst[o++] = (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s;
	dst[o] = '\0';
}

/* A message made of the bytes of a part's decoded content (headers first). */
static GMimeMessage *
arf_parse_bytes(const char *data, size_t len)
{
	GMimeStream  *st = g_mime_stream_mem_new_with_buffer(data, len);
	GMimeParser  *p = g_mime_parser_new_with_stream(st);
	GMimeMessage *m = g_mime_parser_construct_message(p, NULL);

	g_object_unref(p);
	g_object_unref(st);
	return m;
}

/*
 * The header block a report part carries, as a message (a new reference,
 * or NULL): the embedded message of a message/rfc822 (or of any message type
 * GMime takes as one), else the part's decoded content parsed as one.
 */
static GMimeMessage *
arf_part_message(GMimeObject *part)
{
	GMimeDataWrapper *w;
	GMimeStream	 *st;
	GByteArray	 *bytes;
	GMimeMessage	 *m;

	if (GMIME_IS_MESSAGE_PART(part)) {
		m = g_mime_message_part_get_message((GMimeMessagePart *)part);
		return m != NULL ? g_object_ref(m) : NULL;
	}
	if (!GMIME_IS_PART(part) ||
	    (w = g_mime_part_get_content((GMimePart *)part)) == NULL)
		return NULL;
	st = g_mime_stream_mem_new();
	if (g_mime_data_wrapper_write_to_stream(w, st) < 0) {
		g_object_unref(st);
		return NULL;
	}
	bytes = g_mime_stream_mem_get_byte_array((GMimeStreamMem *)st);
	m = bytes != NULL && bytes->len > 0
	    ? arf_parse_bytes((const char *)bytes->data, bytes->len)
	    : NULL;
	g_object_unref(st);
	return m;
}

static const char *
arf_hdr(GMimeMessage *m, const char *name)
{
	return g_mime_object_get_header((GMimeObject *)m, name);
}

/* "rfc822; <a@b>" or "<a@b>" or "a@b" -> "a@b" */
static void
arf_addr(char *dst, size_t dstsz, const char *v)
{
	const char *semi, *at, *lt, *gt;
	char	    tmp[ARF_FIELD_MAX], out[ARF_FIELD_MAX];

	arf_copy(tmp, sizeof(tmp), v);
	v = tmp;
	if ((semi = strchr(v, ';')) != NULL && (at = strchr(v, '@')) != NULL &&
	    at > semi)
		v = semi + 1;
	if ((lt = strchr(v, '<')) != NULL && (gt = strchr(lt, '>')) != NULL) {
		(void)str_ncopy(out, sizeof(out), lt + 1,
		    (size_t)(gt - lt - 1));
		arf_copy(dst, dstsz, out);
		return;
	}
	arf_copy(dst, dstsz, v);
}

/* "<id@host>" as spoold records it (with its brackets; comments and
 * white space around them dropped), else the trimmed value. */
static void
arf_msgid(char *dst, size_t dstsz, const char *v)
{
	const char *lt, *gt;
	char	    tmp[ARF_FIELD_MAX];

	if (v != NULL && (lt = strchr(v, '<')) != NULL &&
	    (gt = strchr(lt, '>')) != NULL) {
		(void)str_ncopy(tmp, sizeof(tmp), lt, (size_t)(gt - lt + 1));
		arf_copy(dst, dstsz, tmp);
		return;
	}
	arf_copy(dst, dstsz, v);
}

/* The feedback part's facts. */
static enum arf_status
arf_feedback(GMimeObject *part, struct arf_report *r)
{
	GMimeMessage *m = arf_part_message(part);
	const char   *type;
	size_t	      i;

	if (m == NULL || (type = arf_hdr(m, "Feedback-Type")) == NULL) {
		if (m != NULL)
			g_object_unref(m);
		return ARF_ENOFEEDBACK;
	}
	arf_copy(r->ar_type, sizeof(r->ar_type), type);
	for (i = 0; r->ar_type[i] != '\0'; i++)
		r->ar_type[i] = (char)tolower((unsigned char)r->ar_type[i]);
	if (arf_hdr(m, "Original-Rcpt-To") != NULL)
		arf_addr(r->ar_rcpt, sizeof(r->ar_rcpt),
		    arf_hdr(m, "Original-Rcpt-To"));
	arf_copy(r->ar_user_agent, sizeof(r->ar_user_agent),
	    arf_hdr(m, "User-Agent"));
	arf_copy(r->ar_source_ip, sizeof(r->ar_source_ip),
	    arf_hdr(m, "Source-IP"));
	g_object_unref(m);
	return r->ar_type[0] != '\0' ? ARF_OK : ARF_ENOFEEDBACK;
}

/* The queue id after " id " in one of our Received values, or false. */
static bool
arf_received_qid(const char *v, char qid[QID_SIZE])
{
	const char *p;
	size_t	    n;

	if (v == NULL || (p = strstr(v, "(smtpgate")) == NULL)
		return false;
	for (; (p = strstr(p, "id")) != NULL; p += 2) {
		if (!isspace((unsigned char)p[-1]) ||
		    !isspace((unsigned char)p[2]))
			continue;
		for (p += 2; isspace((unsigned char)*p); p++)
			;
		n = strspn(p, "0123456789ABCDEFabcdef");
		if (n != QID_LEN)
			return false;
		memcpy(qid, p, n);
		qid[n] = '\0';
		return qid_ok(qid);
	}
	return false;
}

/* Our queue ids in the original's Received lines, top (newest) first. */
static void
arf_qids(GMimeMessage *m, struct arf_report *r)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list((GMimeObject *)m);
	GMimeHeader	*h;
	int i, n = hl != NULL ? g_mime_header_list_get_count(hl) : 0;

	for (i = 0; i < n && r->ar_nqid < ARF_QID_MAX; i++) {
		h = g_mime_header_list_get_header_at(hl, i);
		if (h != NULL &&
		    g_ascii_strcasecmp(g_mime_header_get_name(h), "Received") ==
			0 &&
		    arf_received_qid(g_mime_header_get_value(h),
			r->ar_qid[r->ar_nqid]))
			r->ar_nqid++;
	}
}

static bool
arf_is(GMimeObject *o, const char *type, const char *sub)
{
	GMimeContentType *ct = g_mime_object_get_content_type(o);

	return ct != NULL && g_mime_content_type_is_type(ct, type, sub);
}

/* A base64url character (RFC 4648 section 5), ASCII only. */
static bool
arf_b64url(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

void
arf_tokens_in(const char *s, size_t n, const char *kinds, struct arf_report *r)
{
	const char *p, *end = s + n;
	size_t	    k, j;

	for (p = s; r->ar_ntoken < ARF_TOKEN_MAX &&
	     (p = memchr(p, '/', (size_t)(end - p))) != NULL;
	     p++) {
		if (end - p < 3 + ARF_TOKEN_LEN)
			break;
		if (p[2] != '/' || p[1] == '\0' || strchr(kinds, p[1]) == NULL)
			continue;
		for (k = 0; k <= ARF_TOKEN_LEN && p + 3 + k < end &&
		     arf_b64url((unsigned char)p[3 + k]);
		     k++)
			;
		if (k != ARF_TOKEN_LEN)
			continue;
		for (j = 0; j < r->ar_ntoken &&
		     (r->ar_token_kind[j] != p[1] ||
			 memcmp(r->ar_token[j], p + 3, ARF_TOKEN_LEN) != 0);
		     j++)
			;
		if (j < r->ar_ntoken)
			continue;
		memcpy(r->ar_token[r->ar_ntoken], p + 3, ARF_TOKEN_LEN);
		r->ar_token[r->ar_ntoken][ARF_TOKEN_LEN] = '\0';
		r->ar_token_kind[r->ar_ntoken++] = p[1];
	}
}

/* The tokens of one text/html part's decoded content (GMime decodes). */
static void
arf_html_tokens(GMimeObject *parent, GMimeObject *part, gpointer arg)
{
	struct arf_report *r = arg;
	GMimeDataWrapper  *w;
	GMimeStream	  *st;
	GByteArray	  *bytes;

	(void)parent;
	if (r->ar_ntoken >= ARF_TOKEN_MAX || !GMIME_IS_PART(part) ||
	    !arf_is(part, "text", "html") ||
	    (w = g_mime_part_get_content((GMimePart *)part)) == NULL)
		return;
	st = g_mime_stream_mem_new();
	if (g_mime_data_wrapper_write_to_stream(w, st) >= 0 &&
	    (bytes = g_mime_stream_mem_get_byte_array((GMimeStreamMem *)st)) !=
		NULL)
		arf_tokens_in((const char *)bytes->data, bytes->len, "oc", r);
	g_object_unref(st);
}

/* The copy's tracking tokens: List-Unsubscribe's first, then the body's. */
static void
arf_tokens(GMimeMessage *m, struct arf_report *r)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list((GMimeObject *)m);
	GMimeHeader	*h;
	const char	*v;
	int i, n = hl != NULL ? g_mime_header_list_get_count(hl) : 0;

	for (i = 0; i < n; i++) {
		h = g_mime_header_list_get_header_at(hl, i);
		if (h != NULL &&
		    g_ascii_strcasecmp(g_mime_header_get_name(h),
			"List-Unsubscribe") == 0 &&
		    (v = g_mime_header_get_value(h)) != NULL)
			arf_tokens_in(v, strlen(v), "u", r);
	}
	g_mime_message_foreach(m, arf_html_tokens, r);
}

/* The original's Message-ID ("<...>" when it has brackets) and, as a
 * fallback recipient, its single To: address. */
static enum arf_status
arf_original(GMimeObject *part, struct arf_report *r, char *to, size_t tosz)
{
	GMimeMessage	    *m = arf_part_message(part);
	InternetAddressList *l;
	InternetAddress	    *a;
	const char	    *mid;

	to[0] = '\0';
	if (m == NULL)
		return ARF_ENOORIGINAL;
	if ((mid = arf_hdr(m, "Message-ID")) != NULL)
		arf_msgid(r->ar_message_id, sizeof(r->ar_message_id), mid);
	arf_qids(m, r);
	arf_tokens(m, r);
	l = g_mime_message_get_addresses(m, GMIME_ADDRESS_TYPE_TO);
	if (l != NULL && internet_address_list_length(l) == 1 &&
	    (a = internet_address_list_get_address(l, 0)) != NULL &&
	    INTERNET_ADDRESS_IS_MAILBOX(a))
		arf_copy(to, tosz,
		    internet_address_mailbox_get_addr(
			(InternetAddressMailbox *)a));
	g_object_unref(m);
	return r->ar_message_id[0] != '\0' ? ARF_OK : ARF_ENOMSGID;
}

/* The parts of a multipart/report; st is the first failure. */
static enum arf_status
arf_parts(GMimeMultipart *mp, struct arf_report *r)
{
	enum arf_status fb = ARF_ENOFEEDBACK, orig = ARF_ENOORIGINAL, st;
	GMimeObject    *part;
	char		to[ARF_FIELD_MAX] = "";
	int		i, n = g_mime_multipart_get_count(mp);

	for (i = 0; i < n; i++) {
		part = g_mime_multipart_get_part(mp, i);
		if (fb != ARF_OK && arf_is(part, "message", "feedback-report"))
			fb = arf_feedback(part, r);
		else if (orig != ARF_OK &&
		    (arf_is(part, "message", "rfc822") ||
			arf_is(part, "text", "rfc822-headers")))
			orig = arf_original(part, r, to, sizeof(to));
	}
	if ((st = fb) != ARF_OK || (st = orig) != ARF_OK)
		return st;
	if (r->ar_rcpt[0] == '\0')
		(void)str_copy(r->ar_rcpt, sizeof(r->ar_rcpt), to);
	return strchr(r->ar_rcpt, '@') != NULL ? ARF_OK : ARF_ENORCPT;
}

enum arf_status
arf_parse(const char *data, size_t len, struct arf_report *r)
{
	GMimeMessage	 *m;
	GMimeObject	 *top;
	GMimeContentType *ct;
	const char	 *rt;
	enum arf_status	  st;

	memset(r, 0, sizeof(*r));
	if (len > ARF_MAX)
		return ARF_ETOOBIG;
	arf_init();
	if (len == 0 || (m = arf_parse_bytes(data, len)) == NULL)
		return ARF_EMIME;
	top = g_mime_message_get_mime_part(m);
	if (top == NULL || !GMIME_IS_MULTIPART(top) ||
	    (ct = g_mime_object_get_content_type(top)) == NULL ||
	    !g_mime_content_type_is_type(ct, "multipart", "report") ||
	    (rt = g_mime_content_type_get_parameter(ct, "report-type")) ==
		NULL ||
	    g_ascii_strcasecmp(rt, "feedback-report") != 0)
		st = ARF_ENOTREPORT;
	else
		st = arf_parts((GMimeMultipart *)top, r);
	g_object_unref(m);
	return st;
}

const char *
arf_strerror(enum arf_status st)
{
	switch (st) {
	case ARF_OK:
		return "ok";
	case ARF_EMIME:
		return "not a MIME message";
	case ARF_ENOTREPORT:
		return "not multipart/report; report-type=feedback-report";
	case ARF_ENOFEEDBACK:
		return "no message/feedback-report part with a Feedback-Type";
	case ARF_ENOORIGINAL:
		return "no original message or headers";
	case ARF_ENOMSGID:
		return "the original has no Message-ID";
	case ARF_ENORCPT:
		return "no Original-Rcpt-To and no single To: address";
	case ARF_ETOOBIG:
		return "report too large";
	default:
		return "unknown";
	}
}
