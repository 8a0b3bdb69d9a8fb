/*
 * test_config: unit tests for config_load and its value parsers
 * (src/conf/config.h), using temporary files: defaults, every key, every
 * error naming "FILE:LINE: [section] key:", unknown keys and sections,
 * durations, sizes, ADDR:PORT lists. The byte-at-a-time rule (STYLE.md 9)
 * becomes: the file cut at every length loads or fails cleanly, and every
 * error line still names the file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/config.h"

static char cfg_path[64];

static int
setup(void **state)
{
	int fd;

	(void)state;
	snprintf(cfg_path, sizeof(cfg_path), "/tmp/tandem-test-config-XXXXXX");
	if ((fd = mkstemp(cfg_path)) < 0)
		return -1;
	close(fd);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	unlink(cfg_path);
	return 0;
}

static void
write_file(const char *text, size_t len)
{
	FILE *fp = fopen(cfg_path, "w");

	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

/* Load text; *errs_r gets what config_load wrote (free it). */
static struct config *
load_n(const char *text, size_t len, char **errs_r)
{
	struct config *cf;
	size_t elen = 0;
	FILE *errs;

	*errs_r = NULL;
	errs = open_memstream(errs_r, &elen);
	assert_non_null(errs);
	write_file(text, len);
	cf = config_load(cfg_path, errs);
	assert_int_equal(fclose(errs), 0);
	if (cf != NULL)
		assert_string_equal(cf->path, cfg_path);
	return cf;
}

static struct config *
load(const char *text, char **errs_r)
{
	return load_n(text, strlen(text), errs_r);
}

static struct config *
load_ok(const char *text)
{
	char *errs;
	struct config *cf = load(text, &errs);

	if (cf == NULL)
		fail_msg("config refused:\n%s---\n%s", text, errs);
	assert_string_equal(errs, "");
	free(errs);
	return cf;
}

/* Every line of errs begins with the file name. */
static void
assert_errs_name_file(const char *errs)
{
	size_t pl = strlen(cfg_path);

	assert_true(errs[0] != '\0');
	for (const char *p = errs; *p != '\0';) {
		const char *nl = strchr(p, '\n');

		if (strncmp(p, cfg_path, pl) != 0 || p[pl] != ':')
			fail_msg("error line does not name the file: %s", p);
		assert_non_null(nl);
		p = nl + 1;
	}
}

/* text must be refused with an error line beginning "FILE" want, where
 * want is e.g. ":4: [queue] retry_min: " or ": [tls] key: ". */
static void
expect_error(const char *text, const char *want)
{
	char *errs, line[256];
	struct config *cf = load(text, &errs);

	if (cf != NULL) {
		config_free(&cf);
		fail_msg("config accepted, want error \"%s\":\n%s", want, text);
	}
	assert_errs_name_file(errs);
	snprintf(line, sizeof(line), "%s%s", cfg_path, want);
	if (strstr(errs, line) == NULL) {
		print_error("want an error \"%s\", got:\n%s", line, errs);
		free(errs);
		fail();
	}
	free(errs);
}

/* text must be refused with an error line containing fragment, whether or
 * not it names a line. */
static void
expect_error_any(const char *text, const char *fragment)
{
	char *errs;
	struct config *cf = load(text, &errs);

	if (cf != NULL) {
		config_free(&cf);
		fail_msg("config accepted, want error \"%s\":\n%s", fragment, text);
	}
	assert_errs_name_file(errs);
	if (strstr(errs, fragment) == NULL) {
		print_error("want an error with \"%s\", got:\n%s", fragment, errs);
		free(errs);
		fail();
	}
	free(errs);
}

static void
test_defaults(void **state)
{
	struct config *cf = load_ok("");

	(void)state;
	assert_non_null(cf->hostname);
	assert_true(cf->hostname[0] != '\0');
	assert_int_equal(cf->role, ROLE_PRIMARY);
	assert_string_equal(cf->data_dir, "/var/lib/tandem");
	assert_null(cf->user);
	assert_null(cf->log_file);
	assert_int_equal(cf->backups.n, 0);
	assert_int_equal(cf->listen_smtp.n, 0);
	assert_null(cf->tls_cert);
	assert_null(cf->tls_key);
	assert_int_equal(cf->tls_outbound, TLS_OUT_MAY);
	assert_string_equal(cf->dns_resolver, "system");
	assert_int_equal(cf->relay_domains.n, 0);
	assert_null(cf->relay_primary);
	assert_int_equal(cf->probe_interval, 15);
	assert_int_equal(cf->retry_min, 300);
	assert_int_equal(cf->retry_max, 3600);
	assert_int_equal(cf->lifetime, 5 * 86400);
	assert_int_equal(cf->min_free, 16ULL << 20);
	assert_int_equal(cf->workers, 16);
	assert_int_equal(cf->connect_timeout, 30);
	assert_int_equal(cf->max_connections, 1000);
	assert_int_equal(cf->max_recipients, 100);
	assert_int_equal(cf->max_message_size, 50ULL << 20);
	assert_int_equal(cf->timeout, 300);
	assert_int_equal(cf->max_errors, 20);
	assert_int_equal(cf->greet_pause_ms, 0);
	config_free(&cf);
	assert_null(cf);
	config_free(&cf);
}

static void
test_comments_only(void **state)
{
	struct config *cf = load_ok("; comment\n# another\n\n   \n[server]\n; nothing here\n");

	(void)state;
	assert_string_equal(cf->data_dir, "/var/lib/tandem");
	config_free(&cf);
}

static const char full_conf[] =
	"# every key\n"
	"[server]\n"
	"hostname = mx1.example.org\n"
	"role = backup\n"
	"data_dir = /srv/tandem\n"
	"user = tandem\n"
	"backups = mx2.example.org, mx3.example.org\n"
	"log_file = /var/log/tandem.log\n"
	"\n"
	"[listen]\n"
	"smtp = 0.0.0.0:25, [::]:25\n"
	"submission = 127.0.0.1:587\n"
	"submissions = 127.0.0.1:465\n"
	"imap = 127.0.0.1:143\n"
	"imaps = 127.0.0.1:993\n"
	"pop3 = 127.0.0.1:110\n"
	"pop3s = 127.0.0.1:995\n"
	"http = [::1]:8080\n"
	"\n"
	"[tls]\n"
	"cert = /etc/tandem/cert.pem\n"
	"key = /etc/tandem/key.pem\n"
	"outbound = encrypt\n"
	"\n"
	"[dns]\n"
	"resolver = 192.0.2.53\n"
	"\n"
	"[relay]\n"
	"domains = Example.ORG, example.net\n"
	"primary = mx0.example.org:25\n"
	"probe_interval = 1m\n"
	"\n"
	"[queue]\n"
	"retry_min = 5m\n"
	"retry_max = 2h\n"
	"lifetime = 3d\n"
	"min_free = 1G\n"
	"workers = 4\n"
	"connect_timeout = 10s\n"
	"\n"
	"[smtp]\n"
	"max_connections = 200\n"
	"max_recipients = 50\n"
	"max_message_size = 25M\n"
	"timeout = 90\n"
	"max_errors = 5\n"
	"greet_pause = 500ms\n";

static void
test_every_key(void **state)
{
	struct config *cf = load_ok(full_conf);

	(void)state;
	assert_string_equal(cf->hostname, "mx1.example.org");
	assert_int_equal(cf->role, ROLE_BACKUP);
	assert_string_equal(cf->data_dir, "/srv/tandem");
	assert_string_equal(cf->user, "tandem");
	assert_int_equal(cf->backups.n, 2);
	assert_string_equal(cf->backups.v[0], "mx2.example.org");
	assert_string_equal(cf->backups.v[1], "mx3.example.org");
	assert_string_equal(cf->log_file, "/var/log/tandem.log");
	assert_int_equal(cf->listen_smtp.n, 2);
	assert_string_equal(cf->listen_smtp.v[0], "0.0.0.0:25");
	assert_string_equal(cf->listen_smtp.v[1], "[::]:25");
	assert_int_equal(cf->listen_submission.n, 1);
	assert_int_equal(cf->listen_submissions.n, 1);
	assert_int_equal(cf->listen_imap.n, 1);
	assert_int_equal(cf->listen_imaps.n, 1);
	assert_int_equal(cf->listen_pop3.n, 1);
	assert_int_equal(cf->listen_pop3s.n, 1);
	assert_int_equal(cf->listen_http.n, 1);
	assert_string_equal(cf->listen_http.v[0], "[::1]:8080");
	assert_string_equal(cf->tls_cert, "/etc/tandem/cert.pem");
	assert_string_equal(cf->tls_key, "/etc/tandem/key.pem");
	assert_int_equal(cf->tls_outbound, TLS_OUT_ENCRYPT);
	assert_string_equal(cf->dns_resolver, "192.0.2.53");
	assert_int_equal(cf->relay_domains.n, 2);
	assert_string_equal(cf->relay_domains.v[0], "example.org");
	assert_string_equal(cf->relay_primary, "mx0.example.org:25");
	assert_int_equal(cf->probe_interval, 60);
	assert_int_equal(cf->retry_min, 300);
	assert_int_equal(cf->retry_max, 7200);
	assert_int_equal(cf->lifetime, 3 * 86400);
	assert_int_equal(cf->min_free, 1ULL << 30);
	assert_int_equal(cf->workers, 4);
	assert_int_equal(cf->connect_timeout, 10);
	assert_int_equal(cf->max_connections, 200);
	assert_int_equal(cf->max_recipients, 50);
	assert_int_equal(cf->max_message_size, 25ULL << 20);
	assert_int_equal(cf->timeout, 90);
	assert_int_equal(cf->max_errors, 5);
	assert_int_equal(cf->greet_pause_ms, 500);
	assert_true(config_is_relay_domain(cf, "example.org"));
	assert_true(config_is_relay_domain(cf, "EXAMPLE.net"));
	assert_false(config_is_relay_domain(cf, "example.com"));
	assert_false(config_is_relay_domain(cf, "sub.example.org"));
	config_free(&cf);
}

static void
test_later_value_wins(void **state)
{
	struct config *cf = load_ok("[server]\nbackups = a, b, c\nbackups = d\nuser = x\n"
				    "user = y\n[queue]\nworkers = 2\n[server]\nhostname = h\n");

	(void)state;
	assert_int_equal(cf->backups.n, 1);
	assert_string_equal(cf->backups.v[0], "d");
	assert_string_equal(cf->user, "y");
	assert_int_equal(cf->workers, 2);
	assert_string_equal(cf->hostname, "h");
	config_free(&cf);
}

static void
test_greet_pause(void **state)
{
	struct config *cf;

	(void)state;
	cf = load_ok("[smtp]\ngreet_pause = 2s\n");
	assert_int_equal(cf->greet_pause_ms, 2000);
	config_free(&cf);
	cf = load_ok("[smtp]\ngreet_pause = 3\n");
	assert_int_equal(cf->greet_pause_ms, 3000);
	config_free(&cf);
	cf = load_ok("[smtp]\ngreet_pause = 0ms\n");
	assert_int_equal(cf->greet_pause_ms, 0);
	config_free(&cf);
	cf = load_ok("[smtp]\ngreet_pause = 600000ms\n");
	assert_int_equal(cf->greet_pause_ms, 600000);
	config_free(&cf);
}

static void
test_unknown_key(void **state)
{
	(void)state;
	expect_error("[server]\nhostname = a\nbogus = 1\n", ":3: [server] bogus: unknown key");
	expect_error("[smtp]\n\n\nmax_message = 10M\n", ":4: [smtp] max_message: unknown key");
	/* a key of another section is unknown here */
	expect_error("[smtp]\nworkers = 2\n", ":2: [smtp] workers: unknown key");
	/* keys are case-sensitive, like the rest of the file */
	expect_error("[server]\nHostname = a\n", ":2: [server] Hostname: unknown key");
}

static void
test_unknown_section(void **state)
{
	(void)state;
	expect_error("[server]\nhostname = a\n\n[nope]\nx = 1\n", ":5: [nope] x: unknown section");
	expect_error("x = 1\n", ":1: [] x: unknown section");
	expect_error("[Server]\nhostname = a\n", ":2: [Server] hostname: unknown section");
}

struct bad_value {
	const char *section, *key, *value;
};

static void
test_bad_values(void **state)
{
	static const struct bad_value bad[] = {
		{ "server", "hostname", "" }, { "server", "role", "master" },
		{ "server", "role", "Primary" }, { "server", "data_dir", "" },
		{ "tls", "outbound", "always" }, { "tls", "outbound", "" },
		{ "queue", "retry_min", "5x" }, { "queue", "retry_min", "-1" },
		{ "queue", "retry_min", "" }, { "queue", "retry_min", "5 m" },
		{ "queue", "retry_min", "1.5h" }, { "queue", "retry_min", "m" },
		{ "queue", "lifetime", "99999999999999999999" }, { "queue", "lifetime", "100000000w" },
		{ "smtp", "timeout", "30sec" }, { "queue", "min_free", "10X" },
		{ "queue", "min_free", "-1" }, { "queue", "min_free", "1.5M" },
		{ "queue", "min_free", "10MBx" }, { "queue", "min_free", "" },
		{ "smtp", "max_message_size", "99999999999999999999" },
		{ "smtp", "max_message_size", "10 M" }, { "queue", "workers", "12x" },
		{ "queue", "workers", "-1" }, { "queue", "workers", "+5" },
		{ "queue", "workers", "" }, { "smtp", "max_connections", "1000001" },
		{ "smtp", "max_errors", "0x10" }, { "smtp", "greet_pause", "5x" },
		{ "smtp", "greet_pause", "600001ms" }, { "smtp", "greet_pause", "11m" },
		{ "smtp", "greet_pause", "ms" }, { "smtp", "greet_pause", "-5ms" }, { "listen", "smtp", "localhost" },
		{ "listen", "smtp", "127.0.0.1:0" }, { "listen", "smtp", "127.0.0.1:65536" },
		{ "listen", "smtp", "127.0.0.1:" }, { "listen", "smtp", ":25" },
		{ "listen", "smtp", "[::1]25" }, { "listen", "smtp", "[::1" },
		{ "listen", "smtp", "127.0.0.1:25x" }, { "listen", "imap", "127.0.0.1:143, nope" },
		{ "listen", "http",
		  "1.1.1.1:1, 1.1.1.1:2, 1.1.1.1:3, 1.1.1.1:4, 1.1.1.1:5, 1.1.1.1:6, 1.1.1.1:7, "
		  "1.1.1.1:8, 1.1.1.1:9" },
	};
	char text[512], want[128];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "# line 1\n[%s]\n\n%s = %s\n", bad[i].section,
			 bad[i].key, bad[i].value);
		snprintf(want, sizeof(want), ":4: [%s] %s: ", bad[i].section, bad[i].key);
		expect_error(text, want);
	}
}

static void
test_too_many_list_entries(void **state)
{
	char text[512];
	size_t n;

	(void)state;
	/* one-letter entries keep the line short */
	n = (size_t)snprintf(text, sizeof(text), "[relay]\ndomains = x");
	for (int i = 1; i < CONFIG_MAX_LIST; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, ",x");
	snprintf(text + n, sizeof(text) - n, "\n");
	{
		struct config *cf = load_ok(text);

		assert_int_equal(cf->relay_domains.n, CONFIG_MAX_LIST);
		config_free(&cf);
	}
	snprintf(text + n, sizeof(text) - n, ",x\n");
	expect_error(text, ":2: [relay] domains: too many entries");
}

static void
test_every_error_reported(void **state)
{
	char *errs;
	struct config *cf = load("[server]\nrole = boss\n[queue]\nworkers = many\n"
				 "[smtp]\ntimeout = soon\nnope = 1\n", &errs);
	int lines = 0;
	char want[128];

	(void)state;
	assert_null(cf);
	assert_errs_name_file(errs);
	for (const char *p = errs; (p = strchr(p, '\n')) != NULL; p++)
		lines++;
	assert_true(lines >= 4);
	snprintf(want, sizeof(want), "%s:2: [server] role: ", cfg_path);
	assert_non_null(strstr(errs, want));
	snprintf(want, sizeof(want), "%s:4: [queue] workers: ", cfg_path);
	assert_non_null(strstr(errs, want));
	snprintf(want, sizeof(want), "%s:6: [smtp] timeout: ", cfg_path);
	assert_non_null(strstr(errs, want));
	snprintf(want, sizeof(want), "%s:7: [smtp] nope: unknown key", cfg_path);
	assert_non_null(strstr(errs, want));
	free(errs);
}

static void
test_syntax_error(void **state)
{
	(void)state;
	expect_error("[server]\nhostname\n", ":2: ");
	expect_error("[server\nhostname = a\n", ":1: ");
	expect_error("[server]\nhostname = a\n\n= b\n", ":4: ");
}

static void
test_missing_file(void **state)
{
	char *errs = NULL;
	size_t elen = 0;
	FILE *fp = open_memstream(&errs, &elen);
	struct config *cf;

	(void)state;
	cf = config_load("/nonexistent/tandem.conf", fp);
	fclose(fp);
	assert_null(cf);
	assert_non_null(strstr(errs, "/nonexistent/tandem.conf"));
	free(errs);
}

static void
test_checks(void **state)
{
	(void)state;
	expect_error_any("[server]\nrole = backup\n", ": [relay] domains: ");
	expect_error_any("[server]\ndata_dir = var/lib\n", ": [server] data_dir: ");
	expect_error_any("[queue]\nretry_min = 2h\nretry_max = 1h\n", ": [queue] retry_max: ");
	expect_error_any("[queue]\nretry_min = 0\n", ": [queue] retry_");
	expect_error_any("[queue]\nconnect_timeout = 0\n", ": [queue] connect_timeout: ");
	expect_error_any("[queue]\nconnect_timeout = 6m\n", ": [queue] connect_timeout: ");
	expect_error_any("[tls]\ncert = /c.pem\n", ": [tls] key: ");
	expect_error_any("[tls]\nkey = /k.pem\n", ": [tls] cert: ");
	expect_error_any("[queue]\nworkers = 0\n", ": [queue] workers: ");
	expect_error_any("[queue]\nworkers = 65\n", ": [queue] workers: ");
	expect_error_any("[smtp]\nmax_recipients = 0\n", ": [smtp] max_recipients: ");
	{
		struct config *cf = load_ok("[server]\nrole = backup\n[relay]\ndomains = A.example\n"
					    "[queue]\nworkers = 64\n");

		assert_string_equal(cf->relay_domains.v[0], "a.example");
		assert_int_equal(cf->workers, 64);
		config_free(&cf);
	}
}

/* config.h: every problem is "FILE:LINE: [section] key: message". When the
 * value at fault was set on a line of the file, that line is named. */
static void
test_check_errors_name_line(void **state)
{
	(void)state;
	expect_error("[server]\nhostname = a\ndata_dir = var/lib\n", ":3: [server] data_dir: ");
	expect_error("[queue]\n\nworkers = 0\n", ":3: [queue] workers: ");
	expect_error("[smtp]\nmax_recipients = 0\n", ":2: [smtp] max_recipients: ");
	expect_error("[queue]\nretry_min = 2h\nretry_max = 1h\n", ":3: [queue] retry_max: ");
}

/* A long line (many backups or relay domains) must load whole, or be
 * refused with an error naming its own line; it must never be cut into
 * two lines, one of which may silently replace the value. */
static void
long_line_case(const char *text, int nentries)
{
	char *errs;
	struct config *cf = load(text, &errs);
	char want[128];
	int n, ok = 1;

	if (cf != NULL) {
		n = cf->backups.n;
		ok = n == nentries && strcmp(cf->hostname, "mx.example") == 0;
		for (int i = 0; ok && i < nentries; i++) {
			char name[32];

			snprintf(name, sizeof(name), "b%02d.example.org", i);
			ok = strcmp(cf->backups.v[i], name) == 0;
		}
		config_free(&cf);
		free(errs);
		if (!ok)
			fail_msg("long line 2 loaded, but backups has %d entries (want %d) or "
				 "they differ", n, nentries);
		return;
	}
	snprintf(want, sizeof(want), "%s:2: ", cfg_path);
	if (strstr(errs, want) == NULL) {
		print_error("long line 2 refused, but the error does not name line 2:\n%s", errs);
		free(errs);
		fail();
	}
	free(errs);
}

/* A long list goes on indented lines; each adds its entries. */
static void
test_list_continuation(void **state)
{
	char *errs;
	struct config *cf = load("[server]\nrole = backup\n[relay]\ndomains = a.example, b.example\n"
				 "  c.example,\n\td.example\nprimary = mx1.example\n", &errs);

	(void)state;
	assert_non_null(cf);
	assert_int_equal(cf->relay_domains.n, 4);
	assert_string_equal(cf->relay_domains.v[2], "c.example");
	assert_string_equal(cf->relay_domains.v[3], "d.example");
	assert_string_equal(cf->relay_primary, "mx1.example");
	config_free(&cf);
	free(errs);
}

static void
test_long_line(void **state)
{
	char text[1024];
	size_t n;

	(void)state;
	n = (size_t)snprintf(text, sizeof(text), "[server]\nbackups = b00.example.org");
	for (int i = 1; i < 20; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, ", b%02d.example.org", i);
	snprintf(text + n, sizeof(text) - n, "\nhostname = mx.example\n");
	long_line_case(text, 20);
}

/* The same, with the line cut (at 199 octets, inih's default buffer) just
 * before a space, where the rest looks like a continuation line and now
 * silently replaces the list with its last 9 entries. */
static void
test_long_line_cut_at_space(void **state)
{
	char text[1024];
	size_t n;

	(void)state;
	for (int pad = 0; pad < 17; pad++) {
		const char *line2;

		n = (size_t)snprintf(text, sizeof(text), "[server]\nbackups =%*s b00.example.org",
				     pad, "");
		for (int i = 1; i < 20; i++)
			n += (size_t)snprintf(text + n, sizeof(text) - n, ", b%02d.example.org", i);
		snprintf(text + n, sizeof(text) - n, "\nhostname = mx.example\n");
		line2 = strchr(text, '\n') + 1;
		if (line2[199] == ' ') {
			long_line_case(text, 20);
			return;
		}
	}
	fail_msg("no padding puts a space at octet 199");
}

/* The file cut at every length: loads, or fails with errors that all name
 * the file; never crashes or leaks (run under valgrind). */
static void
test_every_prefix(void **state)
{
	static const char text[] =
		"[server]\nhostname = mx.example\ndata_dir = /srv/t\n"
		"[listen]\nsmtp = 127.0.0.1:2525, [::1]:2525\n"
		"[queue]\nretry_min = 1m\nmin_free = 1M\nworkers = 3\n"
		"[relay]\ndomains = a.example, b.example\n";
	size_t len = sizeof(text) - 1;
	int loaded = 0;

	(void)state;
	for (size_t k = 0; k <= len; k++) {
		char *errs;
		struct config *cf = load_n(text, k, &errs);

		if (cf != NULL) {
			loaded++;
			config_free(&cf);
			assert_string_equal(errs, "");
		} else {
			assert_errs_name_file(errs);
		}
		free(errs);
	}
	assert_true(loaded > 0);
}

static void
test_parse_duration(void **state)
{
	static const struct {
		const char *s;
		long long v;
	} cases[] = {
		{ "0", 0 }, { "90", 90 }, { "30s", 30 }, { "5m", 300 }, { "2h", 7200 },
		{ "5d", 432000 }, { "1w", 604800 }, { "007", 7 },
		{ "", -1 }, { "s", -1 }, { "-5", -1 }, { "+5", -1 }, { " 5", -1 }, { "5 ", -1 },
		{ "5ms", -1 }, { "5M", -1 }, { "5H", -1 }, { "1.5h", -1 }, { "5x", -1 },
		{ "99999999999999999999", -1 }, { "9999999999999d", -1 }, { "0x10", -1 },
	};

	(void)state;
	assert_int_equal(config_parse_duration(NULL), -1);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		long long v = config_parse_duration(cases[i].s);

		if (v != cases[i].v)
			fail_msg("duration \"%s\": %lld, want %lld", cases[i].s, v, cases[i].v);
	}
}

static void
test_parse_size(void **state)
{
	static const struct {
		const char *s;
		long long v;
	} cases[] = {
		{ "0", 0 }, { "4096", 4096 }, { "512k", 512 << 10 }, { "512K", 512 << 10 },
		{ "10M", 10LL << 20 }, { "10m", 10LL << 20 }, { "1G", 1LL << 30 },
		{ "10MB", 10LL << 20 }, { "10MiB", 10LL << 20 }, { "2kb", 2048 },
		{ "", -1 }, { "M", -1 }, { "-1", -1 }, { "+1", -1 }, { " 1", -1 }, { "1 ", -1 },
		{ "10X", -1 }, { "10T", -1 }, { "1.5M", -1 }, { "10MBx", -1 }, { "10Mx", -1 },
		{ "10BM", -1 }, { "99999999999999999999", -1 }, { "99999999999G", -1 },
	};

	(void)state;
	assert_int_equal(config_parse_size(NULL), -1);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		long long v = config_parse_size(cases[i].s);

		if (v != cases[i].v)
			fail_msg("size \"%s\": %lld, want %lld", cases[i].s, v, cases[i].v);
	}
}

static void
test_parse_hostport(void **state)
{
	static const struct {
		const char *s, *host;
		int port;
	} good[] = {
		{ "127.0.0.1:25", "127.0.0.1", 25 }, { "[::1]:587", "::1", 587 },
		{ "mx.example.org:2525", "mx.example.org", 2525 }, { "0.0.0.0:65535", "0.0.0.0", 65535 },
		{ "[2001:db8::1]:1", "2001:db8::1", 1 },
	};
	static const char *const bad[] = {
		"", "127.0.0.1", "127.0.0.1:", ":25", "127.0.0.1:0", "127.0.0.1:65536",
		"127.0.0.1:-1", "127.0.0.1:25x", "127.0.0.1:x", "[::1]25", "[::1]", "[::1:25", "[]:25",
	};
	char host[64];
	int port;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		port = -1;
		if (config_parse_hostport(good[i].s, host, sizeof(host), &port) != 0)
			fail_msg("hostport \"%s\" refused", good[i].s);
		assert_string_equal(host, good[i].host);
		assert_int_equal(port, good[i].port);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (config_parse_hostport(bad[i], host, sizeof(host), &port) != -1)
			fail_msg("hostport \"%s\" accepted", bad[i]);
	/* a host that does not fit is refused, not cut */
	assert_int_equal(config_parse_hostport("abcdefgh:25", host, 8, &port), -1);
	assert_int_equal(config_parse_hostport("abcdefg:25", host, 8, &port), 0);
	assert_string_equal(host, "abcdefg");
}

static void
test_parse_list(void **state)
{
	struct config_list l;
	char text[1024];
	size_t n = 0;

	(void)state;
	memset(&l, 0, sizeof(l));
	assert_int_equal(config_parse_list("a, b ,c,,d\te", &l), 0);
	assert_int_equal(l.n, 5);
	assert_string_equal(l.v[0], "a");
	assert_string_equal(l.v[1], "b");
	assert_string_equal(l.v[2], "c");
	assert_string_equal(l.v[3], "d");
	assert_string_equal(l.v[4], "e");
	assert_int_equal(config_parse_list("", &l), 0);
	assert_int_equal(l.n, 0);
	assert_int_equal(config_parse_list(" , ,", &l), 0);
	assert_int_equal(l.n, 0);
	for (int i = 0; i < CONFIG_MAX_LIST; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%d", i ? "," : "", i);
	assert_int_equal(config_parse_list(text, &l), 0);
	assert_int_equal(l.n, CONFIG_MAX_LIST);
	snprintf(text + n, sizeof(text) - n, ",x");
	assert_int_equal(config_parse_list(text, &l), -1);
	for (int i = 0; i < l.n; i++)
		free(l.v[i]);
}

static void
test_dump(void **state)
{
	struct config *cf = load_ok(full_conf);
	char *out = NULL;
	size_t olen = 0;
	FILE *fp = open_memstream(&out, &olen);

	(void)state;
	config_dump(cf, fp);
	fclose(fp);
	assert_non_null(strstr(out, "hostname = mx1.example.org\n"));
	assert_non_null(strstr(out, "role = backup\n"));
	assert_non_null(strstr(out, "retry_max = 7200s\n"));
	assert_non_null(strstr(out, "max_message_size = 26214400\n"));
	assert_non_null(strstr(out, "outbound = encrypt\n"));
	free(out);
	config_free(&cf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_comments_only),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_later_value_wins),
		cmocka_unit_test(test_greet_pause),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_unknown_section),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_too_many_list_entries),
		cmocka_unit_test(test_every_error_reported),
		cmocka_unit_test(test_syntax_error),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_checks),
		cmocka_unit_test(test_check_errors_name_line),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_list_continuation),
		cmocka_unit_test(test_long_line_cut_at_space),
		cmocka_unit_test(test_every_prefix),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_hostport),
		cmocka_unit_test(test_parse_list),
		cmocka_unit_test(test_dump),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
