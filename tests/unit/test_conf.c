/*
 * test_conf: unit tests for the config layer (src/conf/config.h), using
 * temporary files: defaults, every key, every error naming
 * "FILE:LINE: [section] key:", unknown keys and sections, durations, sizes,
 * ADDR:PORT lists, domains, the resolver form, inline comments, address
 * lists and their matcher, reloads, and the docs: README's table must be
 * exactly `check-config --doc`, and etc/tandem.conf.example must name every
 * key and no other. The byte-at-a-time rule (STYLE.md 9) becomes: the file
 * cut at every length loads or fails cleanly, and every error line still
 * names the file.
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

#include <arpa/inet.h>
#include <netinet/in.h>

#include "conf/config.h"
#include "conf/config_int.h"

/* A file of the source tree, from this file's name as the compiler saw it
 * ("tests/unit/test_conf.c" when make runs at the top). */
static char *
src_file(const char *name)
{
	static char path[4096];
	char *slash;

	snprintf(path, sizeof(path), "%s", __FILE__);
	for (int up = 0; up < 3; up++) {
		if ((slash = strrchr(path, '/')) == NULL) {
			path[0] = '\0';
			break;
		}
		*slash = '\0';
	}
	if (path[0] == '\0')
		snprintf(path, sizeof(path), "%s", name);
	else
		snprintf(path + strlen(path), sizeof(path) - strlen(path), "/%s", name);
	return path;
}

static char *
read_whole(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *text = NULL;
	size_t cap = 0, n;

	if (fp == NULL)
		fail_msg("cannot open %s", path);
	n = getdelim(&text, &cap, '\0', fp);
	fclose(fp);
	assert_true(n > 0);
	return text;
}

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
	assert_int_equal(cf->log_level, LOG_LEVEL_INFO);
	assert_string_equal(cf->recipient_delimiter, "+");
	assert_int_equal(cf->max_connections_per_client, 20);
	assert_int_equal(cf->max_connections_per_net, 100);
	assert_int_equal(cf->listen_smtp.n, 1);
	assert_string_equal(cf->listen_smtp.v[0], "0.0.0.0:25");
	assert_int_equal(cf->listen_imap.n, 0);
	assert_null(cf->tls_cert);
	assert_null(cf->tls_key);
	assert_int_equal(cf->tls_outbound, TLS_OUT_MAY);
	assert_string_equal(cf->dns_resolver, "system");
	assert_int_equal(cf->relay_domains.n, 0);
	assert_null(cf->relay_primary);
	assert_int_equal(cf->probe_interval, 15);
	assert_int_equal(cf->etrn_clients.set, 0);
	assert_int_equal(cf->etrn_clients.n, 0);
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
	assert_int_equal(cf->junk_command_limit, 100);
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
	"log_level = debug\n"
	"recipient_delimiter = -\n"
	"max_connections_per_client = 5\n"
	"max_connections_per_net = 50\n"
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
	"etrn_clients = 192.0.2.1, 198.51.100.0/24, 2001:db8::/32\n"
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
	"junk_command_limit = 10\n"
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
	assert_int_equal(cf->log_level, LOG_LEVEL_DEBUG);
	assert_string_equal(cf->recipient_delimiter, "-");
	assert_int_equal(cf->max_connections_per_client, 5);
	assert_int_equal(cf->max_connections_per_net, 50);
	assert_int_equal(cf->etrn_clients.set, 1);
	assert_int_equal(cf->etrn_clients.n, 3);
	assert_int_equal(cf->etrn_clients.v[1].prefix, 24);
	assert_int_equal(cf->junk_command_limit, 10);
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
		/* what serve refuses, check-config refuses too */
		{ "listen", "smtp", "localhost:25" }, { "listen", "smtp", "127.0.0.1:25, mx.example:25" },
		{ "listen", "submission", "[localhost]:587" },
		{ "dns", "resolver", "127.0.0.1:53" }, { "dns", "resolver", "localhost@53" },
		{ "dns", "resolver", "127.0.0.1@" }, { "dns", "resolver", "127.0.0.1@0" },
		{ "dns", "resolver", "127.0.0.1@65536" }, { "dns", "resolver", "@53" },
		{ "dns", "resolver", "[::1]:53" }, { "dns", "resolver", "Système" },
		{ "server", "hostname", "mx_1.example" }, { "server", "hostname", "-mx.example" },
		{ "server", "hostname", "mx..example" }, { "server", "hostname", "mx.example-" },
		{ "server", "hostname", "mx example" }, { "server", "hostname", "[127.0.0.1]" },
		{ "relay", "domains", "example.test, exa_mple.test" }, { "relay", "domains", "a..b" },
		{ "relay", "domains", "@example.test" }, { "relay", "domains", "example.test." },
		{ "relay", "primary", "mx_1.example" }, { "relay", "primary", "mx.example:0" },
		{ "server", "backups", "mx2.example, bad!host" }, { "server", "backups", "mx2.example:x" },
		{ "server", "log_level", "verbose" }, { "server", "log_level", "" },
		{ "server", "recipient_delimiter", "++" }, { "server", "recipient_delimiter", "a" },
		{ "server", "recipient_delimiter", "." }, { "server", "recipient_delimiter", "@" },
		{ "server", "max_connections_per_client", "x" },
		{ "server", "max_connections_per_net", "-1" },
		{ "smtp", "junk_command_limit", "0" }, { "smtp", "junk_command_limit", "ten" },
		{ "relay", "etrn_clients", "10.1.0.0/8" }, { "relay", "etrn_clients", "1.2.3.4/33" },
		{ "relay", "etrn_clients", "mx.example" }, { "relay", "etrn_clients", "::1/129" },
		{ "relay", "etrn_clients", "10.0.0.0/" }, { "relay", "etrn_clients", "10.0.0.0/x" },
		{ "server", "data_dir", "var/lib" }, { "server", "log_file", "tandem.log" },
		{ "queue", "workers", "0" }, { "queue", "workers", "65" },
		{ "relay", "probe_interval", "0" },
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

/* The line of out that starts with start ends with mark (or contains it,
 * when mark ends in a blank). */
static int
dump_line_marked(const char *out, const char *start, const char *mark)
{
	for (const char *p = out; p != NULL && *p != '\0'; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char line[512];

		if (strncmp(p, start, strlen(start)) != 0 || len >= sizeof(line))
			continue;
		memcpy(line, p, len);
		line[len] = '\0';
		if (mark[strlen(mark) - 1] == ' ')
			return strstr(line, mark) != NULL;
		return len >= strlen(mark) && strcmp(line + len - strlen(mark), mark) == 0;
	}
	return 0;
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
	assert_non_null(strstr(out, "\nhostname = mx1.example.org "));
	assert_non_null(strstr(out, "\nretry_max = 2h "));
	assert_non_null(strstr(out, "\nmax_message_size = 25M "));
	assert_non_null(strstr(out, "\noutbound = encrypt "));
	assert_non_null(strstr(out, "\ngreet_pause = 500ms "));
	assert_non_null(strstr(out, "\netrn_clients = 192.0.2.1, 198.51.100.0/24, 2001:db8::/32 "));
	/* each key says whether SIGHUP applies it */
	assert_true(dump_line_marked(out, "max_recipients = 50 ", "# reload"));
	assert_true(dump_line_marked(out, "role = backup ", "# restart"));
	free(out);
	config_free(&cf);
	/* an unset key prints as a comment that says what applies instead */
	cf = load_ok("");
	fp = open_memstream(&out, &olen);
	config_dump(cf, fp);
	fclose(fp);
	assert_true(dump_line_marked(out, "# primary =", "# restart, unset: the domain's MX hosts "
						     "better than this one"));
	assert_true(dump_line_marked(out, "# user =", "# restart, unset: (none)"));
	assert_true(dump_line_marked(out, "smtp = 0.0.0.0:25 ", "# restart"));
	free(out);
	config_free(&cf);
}


/* '#' and ';' after a blank start a comment, on first lines and on
 * continuation lines; inside a value they are data. */
static void
test_inline_comments(void **state)
{
	struct config *cf;

	(void)state;
	cf = load_ok(
		"[server]\n"
		"hostname = mx1.example.test   # our name\n"
		"role = backup ; the second MX\n"
		"user = tandem\t# service user\n"
		"data_dir = /srv/t#1\n"
		"recipient_delimiter = # off\n"
		"[listen]\n"
		"smtp = 127.0.0.1:25 # public\n"
		"[relay]\n"
		"domains = a.example,  # first\n"
		"  b.example ; second\n"
		"  # a comment line inside the list\n"
		"  c.example\n");
	assert_string_equal(cf->hostname, "mx1.example.test");
	assert_int_equal(cf->role, ROLE_BACKUP);
	assert_string_equal(cf->user, "tandem");
	assert_string_equal(cf->data_dir, "/srv/t#1");
	assert_string_equal(cf->recipient_delimiter, "");
	assert_int_equal(cf->listen_smtp.n, 1);
	assert_string_equal(cf->listen_smtp.v[0], "127.0.0.1:25");
	assert_int_equal(cf->relay_domains.n, 3);
	assert_string_equal(cf->relay_domains.v[1], "b.example");
	assert_string_equal(cf->relay_domains.v[2], "c.example");
	config_free(&cf);
}

/* Before the comment rule, "hostname = mx1 # x" loaded as the host name
 * "mx1 # x"; now a value that is only a comment is an empty value. */
/* Errors found after loading (check-config's) name the line too. */
static void
test_config_line(void **state)
{
	struct config *cf = load_ok("[server]\nhostname = a.example\n\nuser = nobody\n"
				    "[relay]\ndomains = a.example\n  b.example\n");

	(void)state;
	assert_int_equal(config_line(cf, "server", "user"), 4);
	assert_int_equal(config_line(cf, "relay", "domains"), 7);
	assert_int_equal(config_line(cf, "server", "log_file"), 0);
	assert_int_equal(config_line(cf, "server", "nosuch"), 0);
	config_free(&cf);
	/* an empty smtp list would make serve listen on the default anyway */
	expect_error("[listen]\nsmtp =\n", ":2: [listen] smtp: needs at least one ADDR:PORT");
}

static void
test_comment_only_value(void **state)
{
	(void)state;
	expect_error("[server]\nuser = # nobody\n", ":2: [server] user: must not be empty");
	expect_error("[server]\nhostname = ; none\n\n", ":2: [server] hostname: ");
}

static void
test_numeric_listen(void **state)
{
	char *errs;
	struct config *cf = load("[listen]\nsmtp = localhost:25\n", &errs);

	(void)state;
	assert_null(cf);
	assert_non_null(strstr(errs, ":2: [listen] smtp: localhost:25: a numeric address is needed"));
	free(errs);
	cf = load_ok("[listen]\nsmtp = 127.0.0.1:25, [::1]:25, [::]:2525, 0.0.0.0:587\n");
	assert_int_equal(cf->listen_smtp.n, 4);
	config_free(&cf);
	/* a continuation line is checked too, and only once */
	cf = load("[listen]\nsmtp = 127.0.0.1:25\n  mx.example:25\n", &errs);
	assert_null(cf);
	assert_non_null(strstr(errs, ":3: [listen] smtp: mx.example:25: a numeric address"));
	assert_null(strstr(errs, ":2: "));
	free(errs);
}

static void
test_resolver(void **state)
{
	static const char *const good[] = {
		"system", "127.0.0.1", "127.0.0.1@53", "::1@5353", "2001:db8::1", "192.0.2.53@65535",
	};
	char text[128];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct config *cf;

		snprintf(text, sizeof(text), "[dns]\nresolver = %s\n", good[i]);
		cf = load_ok(text);
		assert_string_equal(cf->dns_resolver, good[i]);
		config_free(&cf);
	}
	expect_error("[dns]\nresolver = 127.0.0.1:53\n", ":2: [dns] resolver: the form is HOST@PORT");
	expect_error("[dns]\nresolver = ns.example@53\n", ":2: [dns] resolver: ");
}

static void
test_domains(void **state)
{
	struct config *cf = load_ok("[server]\nhostname = MX1.Example.TEST\nrole = backup\n"
				    "[relay]\ndomains = Example.TEST, xn--bcher-kva.example, a-b.c\n"
				    "primary = [2001:db8::1]:25\n");

	(void)state;
	/* the host name keeps its case (it is shown); relay domains are compared */
	assert_string_equal(cf->hostname, "MX1.Example.TEST");
	assert_string_equal(cf->relay_domains.v[0], "example.test");
	assert_string_equal(cf->relay_domains.v[1], "xn--bcher-kva.example");
	config_free(&cf);
	cf = load_ok("[relay]\nprimary = 192.0.2.1\n[server]\nbackups = 192.0.2.2:2525, mx2.example\n");
	assert_string_equal(cf->relay_primary, "192.0.2.1");
	assert_int_equal(cf->backups.n, 2);
	config_free(&cf);
	expect_error("[server]\nhostname = mx_1.example\n",
		     ":2: [server] hostname: not a valid domain name");
	expect_error("[relay]\ndomains = good.example, bad..example\n",
		     ":2: [relay] domains: bad..example: not a valid domain name");
	assert_true(config_parse_is_domain("a"));
	assert_true(config_parse_is_domain("1.example"));
	assert_false(config_parse_is_domain(""));
	assert_false(config_parse_is_domain("."));
	assert_false(config_parse_is_domain("a-.example"));
	assert_false(config_parse_is_domain("é.example"));
	{
		char label[80], name[300];

		memset(label, 'a', 63);
		label[63] = '\0';
		assert_true(config_parse_is_domain(label));
		label[63] = 'a';
		label[64] = '\0';
		assert_false(config_parse_is_domain(label));
		label[63] = '\0';
		/* 255 in all, the directory's limit */
		snprintf(name, sizeof(name), "%s.%s.%s.%s", label, label, label, label);
		assert_int_equal(strlen(name), 255);
		assert_true(config_parse_is_domain(name));
		snprintf(name, sizeof(name), "a.%s.%s.%s.%s", label, label, label, label);
		assert_false(config_parse_is_domain(name));
	}
}

static struct sockaddr_storage *
sa_of(const char *ip)
{
	static struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	}
	return &ss;
}

static void
test_netlist(void **state)
{
	struct config_netlist l;
	const char *err = NULL;
	static const struct {
		const char *ip;
		int in;
	} cases[] = {
		{ "192.0.2.1", 1 }, { "192.0.2.2", 0 }, { "10.0.0.1", 1 }, { "10.255.255.255", 1 },
		{ "11.0.0.0", 0 }, { "172.16.5.1", 1 }, { "172.16.8.0", 0 }, { "::ffff:10.1.2.3", 1 },
		{ "::ffff:11.1.2.3", 0 }, { "2001:db8::1", 1 }, { "2001:db8:ffff::", 1 },
		{ "2001:db9::", 0 }, { "::1", 0 }, { "fe80::1", 1 }, { "fe80::1:0:0:0:1", 0 },
		{ "0.0.0.0", 0 },
	};

	(void)state;
	assert_int_equal(config_netlist_parse("192.0.2.1, 10.0.0.0/8 172.16.4.0/22,2001:db8::/32 "
					      "fe80::/64", &l, &err), 0);
	assert_int_equal(l.set, 1);
	assert_int_equal(l.n, 5);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (config_netlist_match(&l, (struct sockaddr *)sa_of(cases[i].ip)) != cases[i].in)
			fail_msg("%s: match %d, want %d", cases[i].ip, !cases[i].in, cases[i].in);
	/* /0 is everyone of its family */
	assert_int_equal(config_netlist_parse("0.0.0.0/0", &l, &err), 0);
	assert_true(config_netlist_match(&l, (struct sockaddr *)sa_of("203.0.113.9")));
	assert_true(config_netlist_match(&l, (struct sockaddr *)sa_of("::ffff:203.0.113.9")));
	assert_false(config_netlist_match(&l, (struct sockaddr *)sa_of("2001:db8::1")));
	/* an empty list is set and matches nobody */
	assert_int_equal(config_netlist_parse("", &l, &err), 0);
	assert_int_equal(l.set, 1);
	assert_false(config_netlist_match(&l, (struct sockaddr *)sa_of("127.0.0.1")));
	assert_int_equal(config_netlist_parse("192.0.2.1, 192.0.2.3/24", &l, &err), -1);
	assert_non_null(strstr(err, "192.0.2.3/24"));
}

static void
test_etrn_clients(void **state)
{
	struct config *cf = load_ok("");

	(void)state;
	/* unset: loopback, and the caller decides for the rest */
	assert_int_equal(config_etrn_client_allowed(cf, (struct sockaddr *)sa_of("127.0.0.1")),
			 CONFIG_ETRN_ALLOW);
	assert_int_equal(config_etrn_client_allowed(cf, (struct sockaddr *)sa_of("127.12.0.20")),
			 CONFIG_ETRN_ALLOW);
	assert_int_equal(config_etrn_client_allowed(cf, (struct sockaddr *)sa_of("::1")),
			 CONFIG_ETRN_ALLOW);
	assert_int_equal(config_etrn_client_allowed(cf, (struct sockaddr *)sa_of("::ffff:127.0.0.1")),
			 CONFIG_ETRN_ALLOW);
	assert_int_equal(config_etrn_client_allowed(cf, (struct sockaddr *)sa_of("192.0.2.1")),
			 CONFIG_ETRN_DEFAULT);
	config_free(&cf);
	/* set: the list alone decides, loopback included */
	cf = load_ok("[relay]\netrn_clients = 192.0.2.0/24\n  2001:db8::5\n");
	assert_int_equal(cf->etrn_clients.n, 2);
	assert_int_equal(config_etrn_client_allowed(cf, (struct sockaddr *)sa_of("192.0.2.77")),
			 CONFIG_ETRN_ALLOW);
	assert_int_equal(config_etrn_client_allowed(cf, (struct sockaddr *)sa_of("2001:db8::5")),
			 CONFIG_ETRN_ALLOW);
	assert_int_equal(config_etrn_client_allowed(cf, (struct sockaddr *)sa_of("127.0.0.1")),
			 CONFIG_ETRN_DENY);
	assert_int_equal(config_etrn_client_allowed(cf, (struct sockaddr *)sa_of("198.51.100.1")),
			 CONFIG_ETRN_DENY);
	config_free(&cf);
	cf = load_ok("[relay]\netrn_clients =\n");
	assert_int_equal(config_etrn_client_allowed(cf, (struct sockaddr *)sa_of("127.0.0.1")),
			 CONFIG_ETRN_DENY);
	config_free(&cf);
}

/* Load text into a second config (the temp file is reused). */
static struct config *
load_ok_again(const char *text)
{
	return load_ok(text);
}

static void
test_reload_diff(void **state)
{
	struct config *cur = load_ok("[server]\nhostname = a.example\n[smtp]\nmax_recipients = 5\n"
				     "[listen]\nsmtp = 127.0.0.1:25\n[tls]\noutbound = may\n");
	struct config *next = load_ok_again(
		"[server]\nhostname = b.example\nlog_level = debug\n[smtp]\nmax_recipients = 7\n"
		"[listen]\nsmtp = 127.0.0.1:26\n[relay]\ndomains = r.example\n"
		"etrn_clients = 10.0.0.0/8\n");
	char *out = NULL;
	size_t olen = 0;
	FILE *fp = open_memstream(&out, &olen);

	(void)state;
	assert_int_equal(config_reload_diff(cur, next, fp), 3);
	fclose(fp);
	/* reloadable values are applied */
	assert_int_equal(cur->max_recipients, 7);
	assert_int_equal(cur->log_level, LOG_LEVEL_DEBUG);
	assert_int_equal(cur->etrn_clients.set, 1);
	/* relay domains are read by lookups on the workers: restart only */
	assert_int_equal(cur->relay_domains.n, 0);
	assert_non_null(strstr(out, "[relay] domains: changed, needs a restart"));
	/* the others keep their value and are named */
	assert_string_equal(cur->hostname, "a.example");
	assert_string_equal(cur->listen_smtp.v[0], "127.0.0.1:25");
	assert_non_null(strstr(out, "[smtp] max_recipients: reloaded\n"));
	assert_non_null(strstr(out, "[server] log_level: reloaded\n"));
	assert_non_null(strstr(out, "[server] hostname: changed, needs a restart"));
	assert_non_null(strstr(out, "[listen] smtp: changed, needs a restart"));
	assert_null(strstr(out, "outbound"));
	free(out);
	/* applied once, nothing is left to reload except what needs a restart */
	assert_int_equal(config_reload_diff(cur, next, NULL), 3);
	config_free(&next);
	next = load_ok_again("[server]\nhostname = a.example\n[smtp]\nmax_recipients = 5\n"
			     "[listen]\nsmtp = 127.0.0.1:25\n");
	/* back to unset: the value goes too */
	assert_int_equal(config_reload_diff(cur, next, NULL), 0);
	assert_int_equal(cur->relay_domains.n, 0);
	assert_int_equal(cur->etrn_clients.set, 0);
	assert_int_equal(cur->max_recipients, 5);
	config_free(&next);
	config_free(&cur);
}

/* check-config -v prints a file that loads again into the same values. */
static void
test_dump_loads_again(void **state)
{
	struct config *cf = load_ok(full_conf), *again;
	char *out = NULL, *report = NULL;
	size_t olen = 0, rlen = 0;
	FILE *fp = open_memstream(&out, &olen), *rp;

	(void)state;
	config_dump(cf, fp);
	fclose(fp);
	again = load_ok_again(out);
	rp = open_memstream(&report, &rlen);
	assert_int_equal(config_reload_diff(cf, again, rp), 0);
	fclose(rp);
	if (report[0] != '\0')
		fail_msg("dump differs after loading again:\n%s", report);
	free(report);
	free(out);
	config_free(&again);
	config_free(&cf);
}

/* README's configuration table is exactly `tandem check-config --doc`. */
static void
test_readme_table(void **state)
{
	static const char begin[] = "<!-- config-table: `tandem check-config --doc` -->\n";
	static const char end[] = "<!-- end config-table -->\n";
	char *readme = read_whole(src_file("README.md")), *doc = NULL, *b, *e;
	size_t dlen = 0;
	FILE *fp = open_memstream(&doc, &dlen);

	(void)state;
	config_dump_doc(fp);
	fclose(fp);
	b = strstr(readme, begin);
	if (b == NULL)
		fail_msg("README.md has no line %s", begin);
	b += strlen(begin);
	if ((e = strstr(b, end)) == NULL)
		fail_msg("README.md has no line %s", end);
	*e = '\0';
	if (strcmp(b, doc) != 0)
		fail_msg("README.md's config table differs from `tandem check-config --doc`; "
			 "paste its output between the markers.\nREADME:\n%s\n--doc:\n%s", b, doc);
	free(doc);
	free(readme);
}

/* etc/tandem.conf.example names every key in its section, as "key =" or
 * "# key =", names no key that does not exist, and loads. */
static void
test_example_file(void **state)
{
	char *text = read_whole(src_file("etc/tandem.conf.example")), *save = NULL, *line, *errs;
	char section[32] = "", key[64];
	int *seen = calloc(config_table_count, sizeof(int));
	size_t elen = 0;
	struct config *cf;
	FILE *fp;

	(void)state;
	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		const struct config_key *k;
		const char *p = line;
		int n = 0;

		if (sscanf(line, "[%31[^]]]", section) == 1)
			continue;
		if (*p == '#' && *++p == ' ')
			p++;
		if (sscanf(p, "%63[a-z0-9_] =%n", key, &n) != 1 || n == 0)
			continue;
		if ((k = config_table_find(section, key)) == NULL)
			fail_msg("etc/tandem.conf.example: [%s] %s is not a key (stale?)", section, key);
		seen[k - config_table] = 1;
	}
	for (size_t i = 0; i < config_table_count; i++)
		if (!seen[i])
			fail_msg("etc/tandem.conf.example does not show [%s] %s", config_table[i].section,
				 config_table[i].key);
	free(seen);
	free(text);
	fp = open_memstream(&errs, &elen);
	cf = config_load(src_file("etc/tandem.conf.example"), fp);
	fclose(fp);
	if (cf == NULL)
		fail_msg("etc/tandem.conf.example does not load:\n%s", errs);
	config_free(&cf);
	free(errs);
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
		cmocka_unit_test(test_inline_comments),
		cmocka_unit_test(test_comment_only_value),
		cmocka_unit_test(test_config_line),
		cmocka_unit_test(test_numeric_listen),
		cmocka_unit_test(test_resolver),
		cmocka_unit_test(test_domains),
		cmocka_unit_test(test_netlist),
		cmocka_unit_test(test_etrn_clients),
		cmocka_unit_test(test_reload_diff),
		cmocka_unit_test(test_dump_loads_again),
		cmocka_unit_test(test_readme_table),
		cmocka_unit_test(test_example_file),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
