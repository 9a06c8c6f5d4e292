/* Unit tests for common/conf: typed values, ranges, and the error texts. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "tap.h"

static char tmpl[64];

static struct conf *
load_text(const char *text, char *err, size_t errsz)
{
	FILE	    *fp;
	struct conf *cf;

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
	char	     err[512];
	struct conf *cf = conf_defaults(err, sizeof(err));

	if (!t_ok(cf != NULL, "defaults load (%s)", cf ? "" : err))
		return;
	t_int_eq(cf->cf_max_message_size, 52428800, "max_message_size");
	t_int_eq(cf->cf_max_recipients, 1000, "max_recipients");
	t_int_eq(cf->cf_remote_port, 25, "remote_port");
	t_int_eq((long long)cf->cf_max_queue_lifetime, 5 * 86400,
	    "max_queue_lifetime");
	t_int_eq((long long)cf->cf_nlisten, 3, "three default listeners");
	t_int_eq(cf->cf_listen[2].cl_tls, CONF_TLS_IMPLICIT, "465 implicit");
	t_str_eq(cf->cf_blackhole_recipients.v[0], "test@test.ru", "blackhole");
	t_ok(cf->cf_auth_plaintext == false, "auth_plaintext no");
	t_ok(strstr(cf->cf_event_log, "/events.jsonl") != NULL,
	    "event_log under spool");
	conf_free(&cf);
	t_ok(cf == NULL, "conf_free clears the pointer");
}

static void
t_values(void)
{
	char	     err[512];
	struct conf *cf =
	    load_text("# comment\n"
		      "spool_dir = /tmp/sg\n"
		      "listen = 127.0.0.1:2525 tls=starttls\n"
		      "listen = [::1]:2465 tls=implicit   # trailing\n"
		      "max_message_size = 10m\n"
		      "retry_schedule = 30s 5m\n"
		      "retry_schedule = 4h\n"
		      "auth_plaintext = yes\n",
		err, sizeof(err));

	if (!t_ok(cf != NULL, "file loads (%s)", cf ? "" : err))
		return;
	t_int_eq((long long)cf->cf_nlisten, 2, "listen replaces defaults");
	t_str_eq(cf->cf_listen[1].cl_addr, "::1", "ipv6 listen addr");
	t_str_eq(cf->cf_listen[1].cl_port, "2465", "ipv6 listen port");
	t_int_eq(cf->cf_max_message_size, 10 << 20, "size suffix");
	t_int_eq((long long)cf->cf_nretry_delays, 3, "repeatable list");
	t_int_eq((long long)cf->cf_retry_delays[2], 4 * 3600, "4h");
	t_str_eq(cf->cf_event_log, "/tmp/sg/events.jsonl",
	    "event_log follows spool_dir");
	t_ok(cf->cf_auth_plaintext, "bool yes");
	conf_free(&cf);
}

static const struct {
	const char *text;
	const char *err;
} bad[] = {
	{ "bogus = 1\n", ":1: bogus: unknown key" },
	{ "\n\nmax_recipients = 0\n", ":3: max_recipients: 0 out of range" },
	{ "max_recipients = ten\n", ":1: max_recipients: not a number" },
	{ "max_queue_lifetime = 5x\n",
	    ":1: max_queue_lifetime: not a duration" },
	{ "auth_plaintext = maybe\n", ":1: auth_plaintext: must be yes or no" },
	{ "listen = 127.0.0.1:2525 tls=sometimes\n", ":1: listen: bad tls=" },
	{ "listen = 127.0.0.1:99999\n", ":1: listen: bad address" },
	{ "log = file\n", ":1: log: must be one of stderr|syslog" },
	{ "hostname\n", ":1: expected \"key = value\"" },
	{ "hostname = a\nhostname = b\n", ":2: hostname: given twice" },
	{ "max_message_size = 100\n",
	    ":1: max_message_size: 100 out of range" },
	{ "max_message_size = 5t\n", ":1: max_message_size: not a size" },
	{ "remote_port = 65536\n", ":1: remote_port: 65536 out of range" },
	{ "smtpd_timeout = 0s\n", ":1: smtpd_timeout: 0s out of range" },
	{ "max_recipients = 99999999999999999999999\n",
	    ":1: max_recipients: not a number" },
	{ "max_recipients = 10 # ok\nmax_recipients=\n",
	    ":2: max_recipients: given twice" },
	{ "listen = 127.0.0.1:25 ssl=yes\n", ":1: listen: unknown option" },
	{ "listen = :25\n", ":1: listen: bad address" },
	{ " = 5\n", ":1: : unknown key" },
	{ "spool_dir = relative/path\n",
	    "spool_dir: must be an absolute path" },
	{ "tls_cert = /x.pem\n", "tls_cert and tls_key go together" },
	{ "retry_schedule = 5m soon\n",
	    "retry_schedule: not a duration: \"soon\"" },
	{ "retry_schedule = 0s\n", "retry_schedule: not a duration: \"0s\"" },
};

static void
t_errors(void)
{
	char	     err[512];
	size_t	     i;
	struct conf *cf;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cf = load_text(bad[i].text, err, sizeof(err));
		t_ok(cf == NULL && strstr(err, bad[i].err) != NULL,
		    "error names file:line: key: \"%s\" in \"%s\"", bad[i].err,
		    err);
		conf_free(&cf);
	}
	cf = conf_load("/nonexistent/smtpgate.conf", err, sizeof(err));
	t_ok(cf == NULL &&
		strstr(err, "/nonexistent/smtpgate.conf: cannot open") != NULL,
	    "missing file: %s", err);
}

static void
t_more_values(void)
{
	char	     err[512], line[5000];
	struct conf *cf;

	cf = load_text("blackhole_recipients = a@x, b@y\n"
		       "blackhole_recipients = c@z\n"
		       "retry_schedule = 1w\n"
		       "relayhost =\n"
		       "log = syslog\n"
		       "auth_plaintext = OFF\r\n",
	    err, sizeof(err));
	if (t_ok(cf != NULL, "loads (%s)", cf ? "" : err)) {
		t_int_eq((long long)cf->cf_blackhole_recipients.n, 3,
		    "list: commas and repeats");
		t_str_eq(cf->cf_blackhole_recipients.v[2], "c@z", "list order");
		t_int_eq((long long)cf->cf_retry_delays[0], 7 * 86400, "1w");
		t_str_eq(cf->cf_relayhost, "", "empty string value");
		t_str_eq(cf->cf_log, "syslog", "enum");
		t_ok(!cf->cf_auth_plaintext, "bool OFF with CRLF line end");
		conf_free(&cf);
	}
	memset(line, 'x', sizeof(line) - 2);
	memcpy(line, "hostname = ", 11);
	line[sizeof(line) - 2] = '\n';
	line[sizeof(line) - 1] = '\0';
	cf = load_text(line, err, sizeof(err));
	t_ok(cf == NULL && strstr(err, ":1: line too long") != NULL,
	    "line too long: %s", err);
	conf_free(&cf);
	cf = load_text("", err, sizeof(err));
	t_ok(cf != NULL, "empty file gives the defaults");
	conf_free(&cf);
}

static int
load_missing(void *arg)
{
	(void)arg;
	(void)conf_load_or_exit("/nonexistent/smtpgate.conf");
	return 0;
}

static void
t_load_or_exit(void)
{
	int st;

	st = t_child(load_missing, NULL);
	t_ok(WIFEXITED(st) && WEXITSTATUS(st) == 2,
	    "bad config exits 2 (CONTRACT)");
	t_ok(strstr(conf_default_path(), "/smtpgate/smtpgate.conf") != NULL,
	    "default path: %s", conf_default_path());
}

static void
t_parsers(void)
{
	time_t	t;
	int64_t s;
	char	h[64], p[8];

	t_ok(conf_parse_duration("30s", &t) == 0 && t == 30, "30s");
	t_ok(conf_parse_duration("5d", &t) == 0 && t == 5 * 86400, "5d");
	t_ok(conf_parse_duration("90", &t) == 0 && t == 90, "bare seconds");
	t_ok(conf_parse_duration("-1s", &t) == -1, "negative");
	t_ok(conf_parse_duration("1hh", &t) == -1, "junk suffix");
	t_ok(conf_parse_duration("99999999999999999999d", &t) == -1,
	    "overflow");
	t_ok(conf_parse_size("64k", &s) == 0 && s == 65536, "64k");
	t_ok(conf_parse_size("1G", &s) == 0 && s == 1 << 30, "1G");
	t_ok(conf_parse_size("", &s) == -1, "empty size");
	t_ok(conf_split_hostport("mx.example:2525", h, sizeof(h), p, sizeof(p),
		 "25") == 0 &&
		strcmp(h, "mx.example") == 0 && strcmp(p, "2525") == 0,
	    "host:port");
	t_ok(conf_split_hostport("[::1]:26", h, sizeof(h), p, sizeof(p),
		 "25") == 0 &&
		strcmp(h, "::1") == 0 && strcmp(p, "26") == 0,
	    "[v6]:port");
	t_ok(conf_split_hostport("relay", h, sizeof(h), p, sizeof(p), "25") ==
		    0 &&
		strcmp(p, "25") == 0,
	    "default port");
	t_ok(conf_split_hostport("a:b:c", h, sizeof(h), p, sizeof(p), "25") ==
		-1,
	    "bare v6 refused");
	t_ok(conf_split_hostport(":25", h, sizeof(h), p, sizeof(p), "25") == -1,
	    "empty host");
	t_ok(conf_split_hostport("[::1", h, sizeof(h), p, sizeof(p), "25") ==
		-1,
	    "unclosed [");
	t_ok(conf_split_hostport("[::1]x", h, sizeof(h), p, sizeof(p), "25") ==
		-1,
	    "junk after ]");
	t_ok(conf_split_hostport("h:0", h, sizeof(h), p, sizeof(p), "25") == -1,
	    "port 0");
	t_ok(conf_split_hostport("h:+25", h, sizeof(h), p, sizeof(p), "25") ==
		    -1 &&
		conf_split_hostport("h: 25", h, sizeof(h), p, sizeof(p),
		    "25") == -1,
	    "port is digits only");
	t_ok(conf_parse_duration("", &t) == -1 &&
		conf_parse_duration("m", &t) == -1,
	    "empty duration");
	t_ok(conf_parse_size("1k5", &s) == -1, "size junk");
	t_ok(conf_parse_size("9999999999g", &s) == -1, "size overflow");
}

/* "{node}" in a tracking host (issue 19). */
static void
t_node_host(void)
{
	char buf[64];

	t_ok(conf_node_host("t-{node}.example.com", "n1", buf, sizeof(buf)) ==
		    0 &&
		strcmp(buf, "t-n1.example.com") == 0,
	    "{node} replaced");
	t_ok(conf_node_host("t.example.com", "n1", buf, sizeof(buf)) == 0 &&
		strcmp(buf, "t.example.com") == 0,
	    "no {node}: as it is");
	t_ok(conf_node_host("{node}.{node}.test", "a", buf, sizeof(buf)) == 0 &&
		strcmp(buf, "a.a.test") == 0,
	    "each {node} replaced");
	t_ok(conf_node_host("t-{node}.example.com", "bad_name", buf,
		 sizeof(buf)) == -1,
	    "a node name that makes no host name: -1");
	t_ok(conf_node_host("{node}.example.com", "", buf, sizeof(buf)) == -1,
	    "an empty label: -1");
	t_ok(conf_node_host("t-{node}.example.com",
		 "a-very-long-node-name-that-cannot-fit-in-sixty-four-bytes",
		 buf, sizeof(buf)) == -1,
	    "too long for dst: -1");
	t_ok(conf_node_host("t{x}.example.com", "n", buf, sizeof(buf)) == -1,
	    "another placeholder is no host name");
	t_ok(conf_node_host("t-{node}.example.com:8443", "n1", buf,
		 sizeof(buf)) == 0 &&
		strcmp(buf, "t-n1.example.com:8443") == 0,
	    "a port after the host");
}

/* A tracking host's optional port. */
static void
t_hostport(void)
{
	static const char *const good[] = { "t.example.com", "t.example.com:1",
		"localhost:65535", "t:443" };
	static const char *const nope[] = { "t.example.com:", "t.example.com:0",
		"t.example.com:080", "t.example.com:65536",
		"t.example.com:99999999999", "t.example.com:44a",
		"t.example.com:-1", ":443", "t_x.example:443",
		"t.example.com:443:1", "[::1]:443", "t.example.com: 443" };
	size_t			 i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		t_ok(conf_hostport_ok(good[i]), "good: %s", good[i]);
	for (i = 0; i < sizeof(nope) / sizeof(nope[0]); i++)
		t_ok(!conf_hostport_ok(nope[i]), "bad: %s", nope[i]);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "defaults", t_defaults },
		{ "node_host", t_node_host },
		{ "hostport", t_hostport },
		{ "values", t_values },
		{ "errors", t_errors },
		{ "more_values", t_more_values },
		{ "load_or_exit", t_load_or_exit },
		{ "parsers", t_parsers },
	};

	log_init("t_conf", LOG_DEST_STDERR);
	return T_RUN(cases);
}
