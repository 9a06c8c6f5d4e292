/*
 * spoolctl_tlsrpt_out (spoolctl_tlsrpt.h): gzip with zlib, the POST with
 * libcurl, the report message with GMime (never by hand: its headers,
 * boundaries and base64 are GMime's).
 */
#include "config.h"

#include <curl/curl.h>
#include <gmime/gmime.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "conf.h"
#include "fetchguard.h"
#include "spoolctl_tlsrpt.h"

#define TLSRPT_ANSWER_MAX 4096 /* bytes of the receiver's answer read */

int
tlsrpt_gzip(const void *in, size_t len, struct buf *out, char *err,
    size_t errsz)
{
	z_stream z;
	uLong	 bound;
	int	 rc;

	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
		Z_DEFAULT_STRATEGY) != Z_OK) {
		(void)snprintf(err, errsz, "gzip: deflateInit2 failed");
		return -1;
	}
	bound = deflateBound(&z, (uLong)len);
	if (buf_reserve(out, bound) != 0) {
		deflateEnd(&z);
		(void)snprintf(err, errsz, "gzip: report too large");
		return -1;
	}
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)out->data + out->len;
	z.avail_out = (uInt)bound;
	rc = deflate(&z, Z_FINISH);
	if (rc == Z_STREAM_END)
		out->len += z.total_out;
	deflateEnd(&z);
	if (rc != Z_STREAM_END) {
		(void)snprintf(err, errsz, "gzip: deflate failed (%d)", rc);
		return -1;
	}
	return 0;
}

/* The answer's body is not needed: read at most TLSRPT_ANSWER_MAX. */
static size_t
tlsrpt_discard(char *p, size_t size, size_t n, void *arg)
{
	size_t *seen = arg;

	(void)p;
	*seen += size * n;
	return *seen > TLSRPT_ANSWER_MAX ? 0 : size * n;
}

static void
tlsrpt_post_opts(CURL *c, const char *url, const char *ca_file,
    struct curl_slist *h, size_t *seen)
{
	(void)curl_easy_setopt(c, CURLOPT_URL, url);
	(void)curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	(void)curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	(void)curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	(void)curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (ca_file[0] != '\0')
		(void)curl_easy_setopt(c, CURLOPT_CAINFO, ca_file);
	(void)curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT,
	    (long)TLSRPT_CONNECT_TIMEOUT);
	(void)curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)TLSRPT_TOTAL_TIMEOUT);
	(void)curl_easy_setopt(c, CURLOPT_USERAGENT, "smtpgate-tlsrpt/1");
	(void)curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	(void)curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tlsrpt_discard);
	(void)curl_easy_setopt(c, CURLOPT_WRITEDATA, seen);
}

int
tlsrpt_post(const struct conf *cf, const char *url, const void *body,
    size_t len, char *err, size_t errsz)
{
	struct curl_slist *h;
	struct fetchguard  g;
	CURL		  *c;
	CURLcode	   rc;
	long		   code = 0;
	size_t		   seen = 0;

	if ((c = curl_easy_init()) == NULL) {
		(void)snprintf(err, errsz, "curl_easy_init failed");
		return -1;
	}
	h = curl_slist_append(NULL, "Content-Type: application/tlsrpt+gzip");
	tlsrpt_post_opts(c, url, cf->cf_tls_report_ca_file, h, &seen);
	fetchguard_init(&g, &cf->cf_allow_fetch_to);
	fetchguard_curl(c, &g);
	(void)curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	(void)curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	rc = curl_easy_perform(c);
	if (rc == CURLE_WRITE_ERROR && seen > TLSRPT_ANSWER_MAX)
		rc = CURLE_OK; /* a long answer: its status is what counts */
	(void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	fetchguard_free(&g);
	if (rc != CURLE_OK && g.fg_refused > 0) {
		(void)snprintf(err, errsz, "refused: %s", g.fg_why);
		return -1;
	}
	if (rc != CURLE_OK) {
		(void)snprintf(err, errsz, "%s", curl_easy_strerror(rc));
		return -1;
	}
	if (code < 200 || code > 299) {
		(void)snprintf(err, errsz, "HTTP status %ld", code);
		return -1;
	}
	return 0;
}

/* The gzipped report as an attachment, named as RFC 8460 5.3 says:
 * submitter!policy-domain!begin!end.json.gz (seconds since the epoch). */
static GMimeObject *
tlsrpt_attachment(const struct tlsrpt_mail *m)
{
	GMimePart	 *p;
	GMimeStream	 *ms;
	GMimeDataWrapper *dw;
	char		  name[600];

	p = g_mime_part_new_with_type("application", "tlsrpt+gzip");
	(void)snprintf(name, sizeof(name), "%s!%s!%lld!%lld.json.gz",
	    m->submitter, m->domain, (long long)m->day_start,
	    (long long)(m->day_start + 86399));
	g_mime_object_set_disposition(GMIME_OBJECT(p),
	    GMIME_DISPOSITION_ATTACHMENT);
	g_mime_part_set_filename(p, name);
	ms = g_mime_stream_mem_new_with_buffer(m->gz, m->gzlen);
	dw = g_mime_data_wrapper_new_with_stream(ms,
	    GMIME_CONTENT_ENCODING_DEFAULT);
	g_mime_part_set_content(p, dw);
	g_mime_part_set_content_encoding(p, GMIME_CONTENT_ENCODING_BASE64);
	g_object_unref(dw);
	g_object_unref(ms);
	return GMIME_OBJECT(p);
}

static GMimeObject *
tlsrpt_body(const struct tlsrpt_mail *m)
{
	GMimeMultipart *mp = g_mime_multipart_new_with_subtype("report");
	GMimeTextPart  *tp = g_mime_text_part_new_with_subtype("plain");
	GMimeObject    *att;
	char		text[1600];

	g_mime_object_set_content_type_parameter(GMIME_OBJECT(mp),
	    "report-type", "tlsrpt");
	(void)snprintf(text, sizeof(text),
	    "This is an aggregate TLS report (RFC 8460) from %s for the "
	    "policy domain %s,\r\ncovering %s (UTC). Report-ID: %s\r\n",
	    m->submitter, m->domain, m->date, m->report_id);
	g_mime_text_part_set_text(tp, text);
	g_mime_multipart_add(mp, GMIME_OBJECT(tp));
	g_object_unref(tp);
	att = tlsrpt_attachment(m);
	g_mime_multipart_add(mp, att);
	g_object_unref(att);
	return GMIME_OBJECT(mp);
}

static GMimeMessage *
tlsrpt_message(const struct tlsrpt_mail *m)
{
	GMimeMessage *msg = g_mime_message_new(TRUE);
	GMimeObject  *body;
	GDateTime    *now = g_date_time_new_now_utc();
	char	      subj[1200], *mid;

	g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_FROM, NULL, m->from);
	g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_TO, NULL, m->to);
	(void)snprintf(subj, sizeof(subj),
	    "Report Domain: %s Submitter: %s Report-ID: <%s>", m->domain,
	    m->submitter, m->report_id);
	g_mime_message_set_subject(msg, subj, NULL);
	g_mime_message_set_date(msg, now);
	g_date_time_unref(now);
	mid = g_mime_utils_generate_message_id(m->submitter);
	g_mime_message_set_message_id(msg, mid);
	g_free(mid);
	g_mime_object_set_header(GMIME_OBJECT(msg), "TLS-Report-Domain",
	    m->domain, NULL);
	g_mime_object_set_header(GMIME_OBJECT(msg), "TLS-Report-Submitter",
	    m->submitter, NULL);
	body = tlsrpt_body(m);
	g_mime_message_set_mime_part(msg, body);
	g_object_unref(body);
	return msg;
}

int
tlsrpt_mail_build(const struct tlsrpt_mail *m, struct buf *out, char *err,
    size_t errsz)
{
	GMimeMessage	   *msg;
	GMimeFormatOptions *fo;
	GMimeStream	   *s;
	GByteArray	   *ba;
	int		    rc = 0;

	g_mime_init();
	msg = tlsrpt_message(m);
	fo = g_mime_format_options_new();
	g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_DOS);
	ba = g_byte_array_new();
	s = g_mime_stream_mem_new_with_byte_array(ba);
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(s), FALSE);
	if (g_mime_object_write_to_stream(GMIME_OBJECT(msg), fo, s) < 0 ||
	    buf_append(out, ba->data, ba->len) != 0) {
		(void)snprintf(err, errsz, "cannot build the report message");
		rc = -1;
	}
	g_object_unref(s);
	g_byte_array_free(ba, TRUE);
	g_mime_format_options_free(fo);
	g_object_unref(msg);
	return rc;
}
