/*
 * config: tandem.conf parsed by inih into struct config (see config.h),
 * row by row of config_table. Unknown sections and keys are errors: a typo
 * must not silently become a default. Every error line reads
 * "FILE:LINE: [section] key: what is wrong".
 * Public: config_load, config_free, config_line, config_is_relay_domain, config_origin,
 * config_etrn_client_allowed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conf/config_int.h"
#include "util/log.h"
#include "util/xalloc.h"

struct config_parse {
	struct config *cf;
	FILE *errs;
	int nerr;
	FILE *fp;
	int line;   /* lines read so far: inih hands us no line numbers */
	int cont;   /* the line just read is indented: a continuation */
};

/* inih's stream reader, counting lines so errors can name them. */
static char *
config_reader(char *str, int num, void *stream)
{
	struct config_parse *cp = stream;
	char *s = fgets(str, num, cp->fp);
	size_t n;
	int c;

	if (s == NULL)
		return NULL;
	cp->line++;
	cp->cont = (s[0] == ' ' || s[0] == '\t') && s[strspn(s, " \t\r\n")] != '\0';
	n = strlen(s);
	if (n > 0 && s[n - 1] != '\n' && !feof(cp->fp)) {
		/* inih's line buffer is smaller: refuse rather than split the line */
		fprintf(cp->errs, "%s:%d: line longer than %d characters (continue a long list "
				  "on indented lines)\n", cp->cf->path, cp->line, num - 2);
		cp->nerr++;
		while ((c = fgetc(cp->fp)) != EOF && c != '\n')
			;
		s[n - 1] = '\n';
	}
	return s;
}

/* A table default that does not parse is a bug in config_table.c, caught
 * by every load (test_conf loads an empty file). */
static void
config_default_panic(const struct config_key *k, const char *err)
{
	log_panic(NULL, "event=bug reason=\"default of [%s] %s: %s\"", k->section, k->key, err);
}

/* A default is text in the file's syntax, parsed like a value from the
 * file: the table is the one place that says what a default is. */
static void
config_defaults(struct config *cf)
{
	char host[256];

	for (size_t i = 0; i < config_table_count; i++) {
		const struct config_key *k = &config_table[i];
		const char *err;

		if (k->flags & CONFIG_F_SYSHOST) {
			if (gethostname(host, sizeof(host)) != 0)
				strcpy(host, "localhost");
			host[sizeof(host) - 1] = '\0';
			/* validated later by config_check, with a hint */
			*(char **)((char *)cf + k->off) = xstrdup(host);
		} else if (k->def != NULL && (err = config_value_set(cf, k, k->def)) != NULL) {
			config_default_panic(k, err);
		}
	}
}

static void
config_error(struct config_parse *cp, int line, const char *section, const char *key,
	     const char *msg)
{
	if (line > 0)
		fprintf(cp->errs, "%s:%d: [%s] %s: %s\n", cp->cf->path, line, section, key, msg);
	else
		fprintf(cp->errs, "%s: [%s] %s: %s\n", cp->cf->path, section, key, msg);
	cp->nerr++;
}

/* An inline comment: '#' or ';' at the start of the value or after a
 * blank ("smtp = 127.0.0.1:25  # public"). inih strips " ;" on first lines
 * only, never '#', and keeps both on continuation lines. */
static char *
config_strip_comment(const char *value)
{
	char *v = xstrdup(value);
	size_t n;

	for (char *p = v; *p != '\0'; p++) {
		if ((*p == '#' || *p == ';') && (p == v || p[-1] == ' ' || p[-1] == '\t')) {
			*p = '\0';
			break;
		}
	}
	n = strlen(v);
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		v[--n] = '\0';
	return v;
}

static int
config_handler(void *user, const char *section, const char *name, const char *raw)
{
	struct config_parse *cp = user;
	const struct config_key *k = config_table_find(section, name);
	int line = cp->line;
	const char *err;
	char *value;

	if (k == NULL) {
		int known_section = 0;

		for (size_t i = 0; i < config_table_count; i++)
			known_section |= strcmp(config_table[i].section, section) == 0;
		config_error(cp, line, section, name,
			     known_section ? "unknown key" : "unknown section");
		return 1;
	}
	value = config_strip_comment(raw);
	if (cp->cont && cp->cf->key_line[k - config_table] > 0)
		err = config_value_append(cp->cf, k, value);
	else
		err = config_value_set(cp->cf, k, value);
	if (err != NULL)
		config_error(cp, line, section, name, err);
	cp->cf->key_line[k - config_table] = line;
	free(value);
	return 1;
}

int
config_line(const struct config *cf, const char *section, const char *key)
{
	const struct config_key *k = config_table_find(section, key);

	return k != NULL && cf->key_line != NULL ? cf->key_line[k - config_table] : 0;
}

static void
config_check_error(struct config_parse *cp, const char *section, const char *key, const char *msg)
{
	config_error(cp, config_line(cp->cf, section, key), section, key, msg);
}

/* What no single value shows: keys that go together. */
static void
config_check(struct config_parse *cp)
{
	struct config *cf = cp->cf;
	char msg[512];

	if (!config_parse_is_domain(cf->hostname)) {
		snprintf(msg, sizeof(msg), "the system host name \"%.255s\" is not a valid domain "
			 "name: set [server] hostname", cf->hostname);
		config_check_error(cp, "server", "hostname", msg);
	}
	if (cf->listen_smtp.n == 0)
		config_check_error(cp, "listen", "smtp", "needs at least one ADDR:PORT (leave the "
				   "key out for the default, 0.0.0.0:25)");
	if (cf->role == ROLE_BACKUP && cf->relay_domains.n == 0)
		config_check_error(cp, "relay", "domains", "a backup needs at least one relay domain");
	if (cf->retry_max < cf->retry_min)
		config_check_error(cp, "queue", "retry_max", "must be at least retry_min");
	if ((cf->tls_cert == NULL) != (cf->tls_key == NULL))
		config_check_error(cp, "tls", cf->tls_cert ? "key" : "cert",
			     "cert and key go together");
}

struct config *
config_load(const char *file, FILE *errs)
{
	struct config *cf = xcalloc(1, sizeof(*cf));
	struct config_parse cp = { .cf = cf, .errs = errs };
	FILE *fp;
	int rc;

	cf->path = xstrdup(file);
	cf->key_line = xcalloc(config_table_count, sizeof(int));
	config_defaults(cf);
	if ((fp = fopen(file, "r")) == NULL) {
		fprintf(errs, "%s: cannot open: %s\n", file, strerror(errno));
		config_free(&cf);
		return NULL;
	}
	cp.fp = fp;
	rc = ini_parse_stream(config_reader, &cp, config_handler, &cp);
	fclose(fp);
	if (rc > 0) {
		fprintf(errs, "%s:%d: syntax error (expected [section] or key = value)\n", file, rc);
		cp.nerr++;
	}
	config_check(&cp);
	if (cp.nerr > 0) {
		config_free(&cf);
		return NULL;
	}
	return cf;
}

void
config_free(struct config **cfp)
{
	struct config *cf = *cfp;

	if (cf == NULL)
		return;
	for (size_t i = 0; i < config_table_count; i++)
		config_value_free(cf, &config_table[i]);
	free(cf->path);
	free(cf->key_line);
	free(cf);
	*cfp = NULL;
}

int
config_is_relay_domain(const struct config *cf, const char *domain)
{
	for (int i = 0; i < cf->relay_domains.n; i++)
		if (strcasecmp(cf->relay_domains.v[i], domain) == 0)
			return 1;
	return 0;
}

const char *
config_origin(const struct config *cf)
{
	const char *dot = strchr(cf->hostname, '.');

	if (cf->origin != NULL)
		return cf->origin;
	return dot != NULL && strchr(dot + 1, '.') != NULL ? dot + 1 : cf->hostname;
}

static int
config_is_loopback(const struct sockaddr *sa)
{
	static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		return IN6_IS_ADDR_LOOPBACK(a) ||
		       (memcmp(a->s6_addr, v4mapped, sizeof(v4mapped)) == 0 && a->s6_addr[12] == 127);
	}
	return 0;
}

enum config_etrn
config_etrn_client_allowed(const struct config *cf, const struct sockaddr *sa)
{
	if (cf->etrn_clients.set)
		return config_netlist_match(&cf->etrn_clients, sa) ? CONFIG_ETRN_ALLOW : CONFIG_ETRN_DENY;
	return config_is_loopback(sa) ? CONFIG_ETRN_ALLOW : CONFIG_ETRN_DEFAULT;
}
