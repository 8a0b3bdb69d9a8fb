/*
 * config: tandem.conf (INI, parsed by inih) into one struct with defaults for
 * everything optional. Every error names the file, the line and the key.
 * Public: config_load, config_free, config_parse_duration, config_parse_size,
 * config_dump.
 */
#ifndef TANDEM_CONFIG_H
#define TANDEM_CONFIG_H
#include <stddef.h>
#include <stdio.h>

enum config_role { ROLE_PRIMARY, ROLE_BACKUP };
enum tls_outbound { TLS_OUT_MAY, TLS_OUT_ENCRYPT };

#define CONFIG_MAX_LISTEN 8
#define CONFIG_MAX_LIST 64

struct config_list {
	int n;
	char *v[CONFIG_MAX_LIST];
};

struct config {
	char *path;
	/* [server] */
	char *hostname;
	enum config_role role;
	char *data_dir;
	char *user;
	struct config_list backups;
	char *log_file;
	/* [listen] ADDR:PORT lists */
	struct config_list listen_smtp, listen_submission, listen_submissions;
	struct config_list listen_imap, listen_imaps, listen_pop3, listen_pop3s, listen_http;
	/* [tls] */
	char *tls_cert, *tls_key;
	enum tls_outbound tls_outbound;
	/* [dns] */
	char *dns_resolver;
	/* [relay] */
	struct config_list relay_domains;
	char *relay_primary;
	unsigned probe_interval;
	/* [queue] seconds / bytes */
	unsigned retry_min, retry_max, lifetime;
	unsigned long long min_free;
	unsigned workers;
	unsigned dest_concurrency;     /* connections per destination address */
	unsigned connect_timeout;      /* outbound TCP connect, seconds */
	/* [smtp] */
	unsigned max_connections;
	unsigned max_recipients;
	unsigned long long max_message_size;
	unsigned timeout;
	unsigned greet_pause_ms;
	unsigned max_errors;
};

/* Load FILE. On error returns NULL and writes one line per problem
 * ("FILE:LINE: [section] key: message") to errs. */
struct config *config_load(const char *file, FILE *errs);
void config_free(struct config **cfp);
void config_dump(const struct config *cf, FILE *out);

/* "30s", "5m", "2h", "5d", "90" (seconds). -1 on error. */
long long config_parse_duration(const char *s);
/* "10M", "1G", "4096", "512k". -1 on error. */
long long config_parse_size(const char *s);
/* Split "a, b ,c" into lst (copies). Returns -1 when more than CONFIG_MAX_LIST. */
int config_parse_list(const char *s, struct config_list *lst);
/* Split "ADDR:PORT" / "[v6]:PORT" into host and port. 0 ok, -1 bad. */
int config_parse_hostport(const char *s, char *host, size_t hostlen, int *port_r);

int config_is_relay_domain(const struct config *cf, const char *domain);

#endif
