/* Unit tests for common/conf: typed values, ranges, and the error texts. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "tap.h"

static char tmpl[64];

static struct conf *
load_text(const char *text, char *err, size_t errsz)
{
	FILE		*fp;
	struct conf	*cf;

	(void)snprintf(tmpl, sizeof(tmpl), "/tmp/t_conf.XXXXXX");
	int fd = mkstemp(tmpl);
	if (fd == -1)
		return NULL;
	fp = fdopen(fd, "w");
	fputs(text, fp);
	fclose(fp);
	cf = conf_load(tmpl, err, errsz);
	unlink(tmpl);
	return cf;
}

static void
t_defaults(void)
{
	char		 err[512];
	struct conf	*cf = conf_defaults(err, sizeof(err));

	if (!t_ok(cf != NULL, "defaults load (%s)", cf ? "" : err))
		return;
	t_int_eq(cf->cf_max_message_size, 52428800, "max_message_size");
	t_int_eq(cf->cf_max_recipients, 1000, "max_recipients");
	t_int_eq(cf->cf_remote_port, 25, "remote_port");
	t_int_eq((long long)cf->cf_max_queue_lifetime, 5 * 86400, "max_queue_lifetime");
	t_int_eq((long long)cf->cf_nlisten, 3, "three default listeners");
	t_int_eq(cf->cf_listen[2].cl_tls, CONF_TLS_IMPLICIT, "465 implicit");
	t_str_eq(cf->cf_blackhole_recipients.v[0], "test@test.ru", "blackhole");
	t_ok(cf->cf_auth_plaintext == false, "auth_plaintext no");
	t_ok(strstr(cf->cf_event_log, "/events.jsonl") != NULL, "event_log under spool");
	conf_free(&cf);
	t_ok(cf == NULL, "conf_free clears the pointer");
}

static void
t_values(void)
{
	char		 err[512];
	struct conf	*cf = load_text(
	    "# comment\n"
	    "spool_dir = /tmp/sg\n"
	    "listen = 127.0.0.1:2525 tls=starttls\n"
	    "listen = [::1]:2465 tls=implicit   # trailing\n"
	    "max_message_size = 10m\n"
	    "retry_schedule = 30s 5m\n"
	    "retry_schedule = 4h\n"
	    "auth_plaintext = yes\n", err, sizeof(err));

	if (!t_ok(cf != NULL, "file loads (%s)", cf ? "" : err))
		return;
	t_int_eq((long long)cf->cf_nlisten, 2, "listen replaces defaults");
	t_str_eq(cf->cf_listen[1].cl_addr, "::1", "ipv6 listen addr");
	t_str_eq(cf->cf_listen[1].cl_port, "2465", "ipv6 listen port");
	t_int_eq(cf->cf_max_message_size, 10 << 20, "size suffix");
	t_int_eq((long long)cf->cf_nretry_delays, 3, "repeatable list");
	t_int_eq((long long)cf->cf_retry_delays[2], 4 * 3600, "4h");
	t_str_eq(cf->cf_event_log, "/tmp/sg/events.jsonl", "event_log follows spool_dir");
	t_ok(cf->cf_auth_plaintext, "bool yes");
	conf_free(&cf);
}

static const struct {
	const char	*text;
	const char	*err;
} bad[] = {
	{ "bogus = 1\n", ":1: bogus: unknown key" },
	{ "\n\nmax_recipients = 0\n", ":3: max_recipients: 0 out of range" },
	{ "max_recipients = ten\n", ":1: max_recipients: not a number" },
	{ "max_queue_lifetime = 5x\n", ":1: max_queue_lifetime: not a duration" },
	{ "auth_plaintext = maybe\n", ":1: auth_plaintext: must be yes or no" },
	{ "listen = 127.0.0.1:2525 tls=sometimes\n", ":1: listen: bad tls=" },
	{ "listen = 127.0.0.1:99999\n", ":1: listen: bad address" },
	{ "log = file\n", ":1: log: must be one of stderr|syslog" },
	{ "hostname\n", ":1: expected \"key = value\"" },
	{ "hostname = a\nhostname = b\n", ":2: hostname: given twice" },
};

static void
t_errors(void)
{
	char		 err[512];
	size_t		 i;
	struct conf	*cf;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cf = load_text(bad[i].text, err, sizeof(err));
		t_ok(cf == NULL && strstr(err, bad[i].err) != NULL,
		    "error names file:line: key: \"%s\" in \"%s\"", bad[i].err, err);
		conf_free(&cf);
	}
	cf = conf_load("/nonexistent/smtpgate.conf", err, sizeof(err));
	t_ok(cf == NULL && strstr(err, "/nonexistent/smtpgate.conf: cannot open") != NULL,
	    "missing file: %s", err);
}

static void
t_parsers(void)
{
	time_t	t;
	int64_t	s;
	char	h[64], p[8];

	t_ok(conf_parse_duration("30s", &t) == 0 && t == 30, "30s");
	t_ok(conf_parse_duration("5d", &t) == 0 && t == 5 * 86400, "5d");
	t_ok(conf_parse_duration("90", &t) == 0 && t == 90, "bare seconds");
	t_ok(conf_parse_duration("-1s", &t) == -1, "negative");
	t_ok(conf_parse_duration("1hh", &t) == -1, "junk suffix");
	t_ok(conf_parse_duration("99999999999999999999d", &t) == -1, "overflow");
	t_ok(conf_parse_size("64k", &s) == 0 && s == 65536, "64k");
	t_ok(conf_parse_size("1G", &s) == 0 && s == 1 << 30, "1G");
	t_ok(conf_parse_size("", &s) == -1, "empty size");
	t_ok(conf_split_hostport("mx.example:2525", h, sizeof(h), p, sizeof(p), "25") == 0 &&
	    strcmp(h, "mx.example") == 0 && strcmp(p, "2525") == 0, "host:port");
	t_ok(conf_split_hostport("[::1]:26", h, sizeof(h), p, sizeof(p), "25") == 0 &&
	    strcmp(h, "::1") == 0 && strcmp(p, "26") == 0, "[v6]:port");
	t_ok(conf_split_hostport("relay", h, sizeof(h), p, sizeof(p), "25") == 0 &&
	    strcmp(p, "25") == 0, "default port");
	t_ok(conf_split_hostport("a:b:c", h, sizeof(h), p, sizeof(p), "25") == -1, "bare v6 refused");
	t_ok(conf_split_hostport(":25", h, sizeof(h), p, sizeof(p), "25") == -1, "empty host");
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "defaults", t_defaults },
		{ "values", t_values },
		{ "errors", t_errors },
		{ "parsers", t_parsers },
	};

	log_init("t_conf", LOG_DEST_STDERR);
	return T_RUN(cases);
}
