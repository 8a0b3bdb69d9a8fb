/*
 * config: tandem.conf parsed by inih into struct config (see config.h).
 * Unknown sections and keys are errors: a typo must not silently become a
 * default. Every error line reads "FILE:LINE: [section] key: what is wrong".
 */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conf/config.h"
#include "util/xalloc.h"

struct config_parse {
	struct config *cf;
	FILE *errs;
	int nerr;
	FILE *fp;
	int line;   /* lines read so far: inih hands us no line numbers */
	int cont;   /* the line just read is indented: a continuation */
	int key_line[64];   /* where each config_keys[] entry was set */
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

static void
config_defaults(struct config *cf)
{
	char host[256];

	if (gethostname(host, sizeof(host)) != 0)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	cf->hostname = xstrdup(host);
	cf->role = ROLE_PRIMARY;
	cf->data_dir = xstrdup("/var/lib/tandem");
	cf->tls_outbound = TLS_OUT_MAY;
	cf->dns_resolver = xstrdup("system");
	cf->probe_interval = 15;
	cf->retry_min = 300;
	cf->retry_max = 3600;
	cf->lifetime = 5 * 86400;
	cf->min_free = 16ULL << 20;
	cf->workers = 16;
	cf->dest_concurrency = 20;
	cf->connect_timeout = 30;
	cf->max_connections = 1000;
	cf->max_recipients = 100;
	cf->max_message_size = 50ULL << 20;
	cf->timeout = 300;
	cf->greet_pause_ms = 0;
	cf->max_errors = 20;
}

long long
config_parse_duration(const char *s)
{
	char *end;
	long long v, mult = 1;

	if (s == NULL || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0)
		return -1;
	if (strcmp(end, "") == 0 || strcmp(end, "s") == 0)
		mult = 1;
	else if (strcmp(end, "m") == 0)
		mult = 60;
	else if (strcmp(end, "h") == 0)
		mult = 3600;
	else if (strcmp(end, "d") == 0)
		mult = 86400;
	else if (strcmp(end, "w") == 0)
		mult = 7 * 86400;
	else
		return -1;
	if (v > (1LL << 40) / mult)
		return -1;
	return v * mult;
}

long long
config_parse_size(const char *s)
{
	char *end;
	long long v, mult = 1;

	if (s == NULL || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0)
		return -1;
	switch (tolower((unsigned char)*end)) {
	case '\0': mult = 1; break;
	case 'k': mult = 1LL << 10; break;
	case 'm': mult = 1LL << 20; break;
	case 'g': mult = 1LL << 30; break;
	default: return -1;
	}
	if (*end != '\0' && end[1] != '\0' && strcasecmp(end + 1, "b") != 0 &&
	    strcasecmp(end + 1, "ib") != 0)
		return -1;
	if (v > (1LL << 50) / mult)
		return -1;
	return v * mult;
}

int
config_parse_list(const char *s, struct config_list *lst)
{
	const char *p = s;

	for (int i = 0; i < lst->n; i++)
		free(lst->v[i]);
	lst->n = 0;
	while (*p != '\0') {
		const char *start, *end;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		start = p;
		while (*p != '\0' && *p != ',' && *p != ' ' && *p != '\t')
			p++;
		end = p;
		if (lst->n == CONFIG_MAX_LIST)
			return -1;
		lst->v[lst->n++] = xstrndup(start, end - start);
	}
	return 0;
}

int
config_parse_hostport(const char *s, char *host, size_t hostlen, int *port_r)
{
	const char *colon, *h = s;
	size_t hl;
	char *end;
	long port;

	if (*s == '[') {
		const char *rb = strchr(s, ']');
		if (rb == NULL || rb[1] != ':')
			return -1;
		h = s + 1;
		hl = rb - h;
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return -1;
		hl = colon - s;
	}
	if (hl == 0 || hl >= hostlen)
		return -1;
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port <= 0 || port > 65535 || colon[1] == '\0')
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port_r = (int)port;
	return 0;
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

static void
set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = xstrdup(v);
}

enum config_kind { K_STR, K_LIST, K_ADDRS, K_DURATION, K_MSEC, K_SIZE, K_UINT, K_ROLE, K_TLSOUT };

struct config_key {
	const char *section, *key;
	enum config_kind kind;
	size_t off;
};

#define F(field) offsetof(struct config, field)
static const struct config_key config_keys[] = {
	{ "server", "hostname", K_STR, F(hostname) },
	{ "server", "role", K_ROLE, F(role) },
	{ "server", "data_dir", K_STR, F(data_dir) },
	{ "server", "user", K_STR, F(user) },
	{ "server", "backups", K_LIST, F(backups) },
	{ "server", "log_file", K_STR, F(log_file) },
	{ "listen", "smtp", K_ADDRS, F(listen_smtp) },
	{ "listen", "submission", K_ADDRS, F(listen_submission) },
	{ "listen", "submissions", K_ADDRS, F(listen_submissions) },
	{ "listen", "imap", K_ADDRS, F(listen_imap) },
	{ "listen", "imaps", K_ADDRS, F(listen_imaps) },
	{ "listen", "pop3", K_ADDRS, F(listen_pop3) },
	{ "listen", "pop3s", K_ADDRS, F(listen_pop3s) },
	{ "listen", "http", K_ADDRS, F(listen_http) },
	{ "tls", "cert", K_STR, F(tls_cert) },
	{ "tls", "key", K_STR, F(tls_key) },
	{ "tls", "outbound", K_TLSOUT, F(tls_outbound) },
	{ "dns", "resolver", K_STR, F(dns_resolver) },
	{ "relay", "domains", K_LIST, F(relay_domains) },
	{ "relay", "primary", K_STR, F(relay_primary) },
	{ "relay", "probe_interval", K_DURATION, F(probe_interval) },
	{ "queue", "retry_min", K_DURATION, F(retry_min) },
	{ "queue", "retry_max", K_DURATION, F(retry_max) },
	{ "queue", "lifetime", K_DURATION, F(lifetime) },
	{ "queue", "min_free", K_SIZE, F(min_free) },
	{ "queue", "workers", K_UINT, F(workers) },
	{ "queue", "dest_concurrency", K_UINT, F(dest_concurrency) },
	{ "queue", "connect_timeout", K_DURATION, F(connect_timeout) },
	{ "smtp", "max_connections", K_UINT, F(max_connections) },
	{ "smtp", "max_recipients", K_UINT, F(max_recipients) },
	{ "smtp", "max_message_size", K_SIZE, F(max_message_size) },
	{ "smtp", "timeout", K_DURATION, F(timeout) },
	{ "smtp", "max_errors", K_UINT, F(max_errors) },
	{ "smtp", "greet_pause", K_MSEC, F(greet_pause_ms) },
};
#undef F

static int
config_set_addrs(struct config_list *lst, const char *value)
{
	char host[256];
	int port;

	if (config_parse_list(value, lst) < 0 || lst->n > CONFIG_MAX_LISTEN)
		return -1;
	for (int i = 0; i < lst->n; i++)
		if (config_parse_hostport(lst->v[i], host, sizeof(host), &port) < 0)
			return -1;
	return 0;
}

static const char *
config_set(struct config *cf, const struct config_key *k, const char *value)
{
	void *field = (char *)cf + k->off;
	long long v;
	size_t n;
	char *end;

	switch (k->kind) {
	case K_STR:
		if (*value == '\0')
			return "must not be empty";
		set_str(field, value);
		return NULL;
	case K_LIST:
		return config_parse_list(value, field) < 0 ? "too many entries" : NULL;
	case K_ADDRS:
		return config_set_addrs(field, value) < 0 ?
		       "expected ADDR:PORT[, ADDR:PORT...] (IPv6 as [ADDR]:PORT)" : NULL;
	case K_DURATION:
		if ((v = config_parse_duration(value)) < 0 || v > 0xffffffffLL)
			return "expected a duration like 30s, 5m, 2h or 5d";
		*(unsigned *)field = (unsigned)v;
		return NULL;
	case K_MSEC:
		n = strlen(value);
		if (n > 2 && strcmp(value + n - 2, "ms") == 0) {
			errno = 0;
			v = strtoll(value, &end, 10);
			if (errno || end != value + n - 2 || !isdigit((unsigned char)*value) || v > 600000)
				return "expected milliseconds like 500ms, or a duration like 2s";
		} else if ((v = config_parse_duration(value)) < 0 || v > 600) {
			return "expected milliseconds like 500ms, or a duration like 2s";
		} else {
			v *= 1000;
		}
		*(unsigned *)field = (unsigned)v;
		return NULL;
	case K_SIZE:
		if ((v = config_parse_size(value)) < 0)
			return "expected a size like 4096, 512k, 50M or 1G";
		*(unsigned long long *)field = (unsigned long long)v;
		return NULL;
	case K_UINT:
		errno = 0;
		v = strtoll(value, &end, 10);
		if (errno || *end != '\0' || v < 0 || v > 1000000 || !isdigit((unsigned char)*value))
			return "expected a whole number";
		*(unsigned *)field = (unsigned)v;
		return NULL;
	case K_ROLE:
		if (strcmp(value, "primary") == 0)
			cf->role = ROLE_PRIMARY;
		else if (strcmp(value, "backup") == 0)
			cf->role = ROLE_BACKUP;
		else
			return "expected primary or backup";
		return NULL;
	case K_TLSOUT:
		if (strcmp(value, "may") == 0)
			cf->tls_outbound = TLS_OUT_MAY;
		else if (strcmp(value, "encrypt") == 0)
			cf->tls_outbound = TLS_OUT_ENCRYPT;
		else
			return "expected may or encrypt";
		return NULL;
	}
	return "internal error";
}

/* An indented line continues a list: its entries are added. */
static const char *
config_append(struct config *cf, const struct config_key *k, const char *value)
{
	struct config_list *lst = (struct config_list *)((char *)cf + k->off), more = { 0 };
	const char *err = NULL;

	if (config_parse_list(value, &more) < 0 || lst->n + more.n > CONFIG_MAX_LIST)
		err = "too many entries";
	for (int i = 0; i < more.n; i++) {
		if (err == NULL)
			lst->v[lst->n++] = more.v[i];
		else
			free(more.v[i]);
	}
	if (err == NULL && k->kind == K_ADDRS) {
		char host[256];
		int port;

		if (lst->n > CONFIG_MAX_LISTEN)
			return "too many addresses";
		for (int i = 0; i < lst->n; i++)
			if (config_parse_hostport(lst->v[i], host, sizeof(host), &port) < 0)
				return "expected ADDR:PORT[, ADDR:PORT...] (IPv6 as [ADDR]:PORT)";
	}
	return err;
}

static int
config_handler(void *user, const char *section, const char *name, const char *value)
{
	struct config_parse *cp = user;
	int line = cp->line;
	int known_section = 0;

	for (size_t i = 0; i < sizeof(config_keys) / sizeof(config_keys[0]); i++) {
		const struct config_key *k = &config_keys[i];
		const char *err;

		if (strcmp(k->section, section) != 0)
			continue;
		known_section = 1;
		if (strcmp(k->key, name) != 0)
			continue;
		if (cp->cont && (k->kind == K_LIST || k->kind == K_ADDRS))
			err = config_append(cp->cf, k, value);
		else
			err = config_set(cp->cf, k, value);
		if (err != NULL)
			config_error(cp, line, section, name, err);
		cp->key_line[i] = line;
		return 1;
	}
	config_error(cp, line, section, name,
		     known_section ? "unknown key" : "unknown section");
	return 1;
}

/* The line where section/key was set, 0 when it kept its default. */
static int
config_key_line(struct config_parse *cp, const char *section, const char *key)
{
	for (size_t i = 0; i < sizeof(config_keys) / sizeof(config_keys[0]); i++)
		if (strcmp(config_keys[i].section, section) == 0 && strcmp(config_keys[i].key, key) == 0)
			return cp->key_line[i];
	return 0;
}

static void
config_check_error(struct config_parse *cp, const char *section, const char *key, const char *msg)
{
	config_error(cp, config_key_line(cp, section, key), section, key, msg);
}

static void
config_check(struct config_parse *cp)
{
	struct config *cf = cp->cf;

	if (cf->data_dir[0] != '/')
		config_check_error(cp, "server", "data_dir", "must be an absolute path");
	if (cf->role == ROLE_BACKUP && cf->relay_domains.n == 0)
		config_check_error(cp, "relay", "domains", "a backup needs at least one relay domain");
	if (cf->retry_min == 0 || cf->retry_max < cf->retry_min)
		config_check_error(cp, "queue", "retry_max", "must be at least retry_min (> 0)");
	if ((cf->tls_cert == NULL) != (cf->tls_key == NULL))
		config_check_error(cp, "tls", cf->tls_cert ? "key" : "cert",
			     "cert and key go together");
	if (cf->workers == 0 || cf->workers > 64)
		config_check_error(cp, "queue", "workers", "must be between 1 and 64");
	if (cf->dest_concurrency == 0 || cf->dest_concurrency > 200)
		config_check_error(cp, "queue", "dest_concurrency", "must be between 1 and 200");
	if (cf->connect_timeout == 0 || cf->connect_timeout > 300)
		config_check_error(cp, "queue", "connect_timeout", "must be between 1s and 5m");
	if (cf->max_recipients == 0)
		config_check_error(cp, "smtp", "max_recipients", "must be at least 1");
	for (int i = 0; i < cf->relay_domains.n; i++)
		for (char *p = cf->relay_domains.v[i]; *p; p++)
			*p = tolower((unsigned char)*p);
}

struct config *
config_load(const char *file, FILE *errs)
{
	struct config *cf = xcalloc(1, sizeof(*cf));
	struct config_parse cp = { .cf = cf, .errs = errs };
	FILE *fp;
	int rc;

	cf->path = xstrdup(file);
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

static void
config_list_free(struct config_list *l)
{
	for (int i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = 0;
}

void
config_free(struct config **cfp)
{
	struct config *cf = *cfp;

	if (cf == NULL)
		return;
	free(cf->path);
	free(cf->hostname);
	free(cf->data_dir);
	free(cf->user);
	free(cf->log_file);
	free(cf->tls_cert);
	free(cf->tls_key);
	free(cf->dns_resolver);
	free(cf->relay_primary);
	config_list_free(&cf->backups);
	config_list_free(&cf->relay_domains);
	config_list_free(&cf->listen_smtp);
	config_list_free(&cf->listen_submission);
	config_list_free(&cf->listen_submissions);
	config_list_free(&cf->listen_imap);
	config_list_free(&cf->listen_imaps);
	config_list_free(&cf->listen_pop3);
	config_list_free(&cf->listen_pop3s);
	config_list_free(&cf->listen_http);
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

static void
dump_list(FILE *out, const char *key, const struct config_list *l)
{
	fprintf(out, "%s =", key);
	for (int i = 0; i < l->n; i++)
		fprintf(out, "%s %s", i ? "," : "", l->v[i]);
	fputc('\n', out);
}

void
config_dump(const struct config *cf, FILE *out)
{
	fprintf(out, "[server]\nhostname = %s\nrole = %s\ndata_dir = %s\nuser = %s\n",
		cf->hostname, cf->role == ROLE_PRIMARY ? "primary" : "backup", cf->data_dir,
		cf->user ? cf->user : "");
	dump_list(out, "backups", &cf->backups);
	fprintf(out, "\n[listen]\n");
	dump_list(out, "smtp", &cf->listen_smtp);
	dump_list(out, "submission", &cf->listen_submission);
	dump_list(out, "imap", &cf->listen_imap);
	dump_list(out, "pop3", &cf->listen_pop3);
	fprintf(out, "\n[tls]\ncert = %s\nkey = %s\noutbound = %s\n",
		cf->tls_cert ? cf->tls_cert : "(generated in data_dir)",
		cf->tls_key ? cf->tls_key : "(generated in data_dir)",
		cf->tls_outbound == TLS_OUT_MAY ? "may" : "encrypt");
	fprintf(out, "\n[dns]\nresolver = %s\n\n[relay]\n", cf->dns_resolver);
	dump_list(out, "domains", &cf->relay_domains);
	fprintf(out, "primary = %s\nprobe_interval = %us\n",
		cf->relay_primary ? cf->relay_primary : "", cf->probe_interval);
	fprintf(out, "\n[queue]\nretry_min = %us\nretry_max = %us\nlifetime = %us\n"
		     "min_free = %llu\nworkers = %u\ndest_concurrency = %u\nconnect_timeout = %us\n",
		cf->retry_min, cf->retry_max, cf->lifetime, cf->min_free, cf->workers,
		cf->dest_concurrency, cf->connect_timeout);
	fprintf(out, "\n[smtp]\nmax_connections = %u\nmax_recipients = %u\n"
		     "max_message_size = %llu\ntimeout = %us\nmax_errors = %u\ngreet_pause = %ums\n",
		cf->max_connections, cf->max_recipients, cf->max_message_size, cf->timeout,
		cf->max_errors, cf->greet_pause_ms);
}
