/*
 * config: tandem.conf (INI, parsed by inih) into one struct. Every key is a
 * row of one table (config_table.c: section, key, type, default, range,
 * reload or restart, a one-line doc); defaults, parsing, validation,
 * freeing, `check-config -v`, `check-config --doc` and reloads all come
 * from it. Every error names the file, the line and the key.
 * Public: config_load, config_free, config_line, config_is_relay_domain, config_origin,
 * config_etrn_client_allowed (config.c); config_dump, config_dump_doc
 * (config_dump.c); config_reload_diff (config_reload.c); the value parsers
 * config_parse_* (config_parse.c); config_netlist_parse,
 * config_netlist_match (config_netlist.c).
 */
#ifndef TANDEM_CONFIG_H
#define TANDEM_CONFIG_H
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>

enum config_role { ROLE_PRIMARY, ROLE_BACKUP };
enum tls_outbound { TLS_OUT_MAY, TLS_OUT_ENCRYPT };
enum config_log_level { LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };
/* [auth] plaintext: where a password may cross without TLS */
enum auth_plaintext { AUTH_PLAIN_NEVER, AUTH_PLAIN_LOOPBACK, AUTH_PLAIN_ALWAYS };

#define CONFIG_MAX_LISTEN 8
#define CONFIG_MAX_LIST 64

struct config_list {
	int n;
	char *v[CONFIG_MAX_LIST];
};

/* One address or network: family AF_INET or AF_INET6, the address in
 * network order (4 or 16 bytes), and the prefix length. */
struct config_net {
	int family;
	int prefix;
	unsigned char addr[16];
};

/* A list of addresses and CIDR networks. set: the key was given (an empty
 * value is then a list that matches nothing). */
struct config_netlist {
	int set;
	int n;
	struct config_net v[CONFIG_MAX_LIST];
};

struct config {
	char *path;
	int *key_line;   /* conf's own: where each key was set (config_line) */
	/* [server] */
	char *hostname;
	char *origin;                          /* NULL: config_origin derives it */
	enum config_role role;
	char *data_dir;
	char *user;
	struct config_list backups;
	char *log_file;
	enum config_log_level log_level;
	char *recipient_delimiter;     /* "" = subaddressing off */
	unsigned max_connections_per_client;   /* per IPv4 address or IPv6 /64 */
	unsigned max_connections_per_net;      /* per IPv4 /24 or IPv6 /48 */
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
	struct config_netlist etrn_clients;    /* see config_etrn_client_allowed */
	/* [queue] seconds / bytes */
	unsigned retry_min, retry_max, lifetime;
	unsigned long long min_free;
	unsigned workers;
	unsigned dest_concurrency;     /* connections per destination address */
	unsigned connect_timeout;      /* outbound TCP connect, seconds */
	char *source_address;          /* outbound connections bind to it (NULL: see outbound.c) */
	char *relayhost;               /* HOST[:PORT] all mail for other domains goes through */
	char *relayhost_auth_file;     /* its AUTH: one line USER:PASSWORD */
	/* [smtp] */
	unsigned max_connections;
	unsigned max_recipients;
	unsigned long long max_message_size;
	unsigned timeout;
	unsigned greet_pause_ms;
	unsigned max_errors;
	unsigned junk_command_limit;   /* commands without progress before 421 */
	/* [auth] */
	enum auth_plaintext auth_plaintext;
	/* [mailbox] */
	unsigned long long default_quota;      /* bytes, 0: none */
	unsigned expunged_retention;           /* seconds an expunge tombstone is kept */
	/* [imap] */
	unsigned imap_max_connections;
	unsigned imap_max_per_user_ip;         /* sessions of one user from one address */
	unsigned imap_timeout;                 /* idle limit once logged in, seconds */
	unsigned imap_idle_keepalive;          /* seconds between IDLE's "* OK Still here" */
	unsigned long long imap_max_literal;   /* APPEND and other literals, bytes */
	/* [pop3] */
	unsigned pop3_max_connections;
	unsigned pop3_max_per_user_ip;
	unsigned pop3_timeout;
	/* [submission] */
	int submission_hide_client;            /* no client address in Received: */
	unsigned submission_max_messages;      /* a user's messages a day (0: no limit) */
	unsigned submission_max_recipients;    /* a user's recipients a day (0: no limit) */
	/* [dkim] */
	unsigned dkim_rotate_grace;            /* seconds a retired selector stays listed */
};

/* Load FILE. On error returns NULL and writes one line per problem
 * ("FILE:LINE: [section] key: message") to errs. */
struct config *config_load(const char *file, FILE *errs);
void config_free(struct config **cfp);
/* The line of cf->path that set section/key; 0 when it kept its default.
 * For errors found after loading ("FILE:LINE: [section] key: ..."). */
int config_line(const struct config *cf, const char *section, const char *key);

/* Every key with its effective value, as a config file; each line says
 * whether the key reloads on SIGHUP or needs a restart. */
void config_dump(const struct config *cf, FILE *out);
/* The README's configuration table (markdown), one row per key. */
void config_dump_doc(FILE *out);

/* SIGHUP: for every key whose value differs between cur and next, copy a
 * reloadable value from next into cur and report it ("[smtp] max_recipients:
 * reloaded"); a key that needs a restart keeps its value in cur and is
 * reported ("... changed, needs a restart"). report may be NULL. Returns the
 * number of changed keys that need a restart. Pointers into cur's strings
 * and lists of changed keys are invalid afterwards: call it where nobody
 * else reads cur (the event loop, with no worker holding a value). */
int config_reload_diff(struct config *cur, const struct config *next, FILE *report);

int config_is_relay_domain(const struct config *cf, const char *domain);
/* [server] origin, the domain of unqualified addresses (sendmail): the key,
 * or the host name's domain (mx1.example.com: example.com; a name of two
 * labels or fewer is its own). */
const char *config_origin(const struct config *cf);

/* Who may send ETRN. With [relay] etrn_clients set: CONFIG_ETRN_ALLOW when
 * the client is in the list, else CONFIG_ETRN_DENY. Unset: loopback is
 * CONFIG_ETRN_ALLOW, anyone else CONFIG_ETRN_DEFAULT, meaning "allowed when
 * it is one of the relay destination's addresses", which the caller knows. */
enum config_etrn { CONFIG_ETRN_DENY, CONFIG_ETRN_ALLOW, CONFIG_ETRN_DEFAULT };
enum config_etrn config_etrn_client_allowed(const struct config *cf, const struct sockaddr *sa);

/* "30s", "5m", "2h", "5d", "90" (seconds). -1 on error. */
long long config_parse_duration(const char *s);
/* "10M", "1G", "4096", "512k". -1 on error. */
long long config_parse_size(const char *s);
/* Split "a, b ,c" into lst (copies). Returns -1 when more than CONFIG_MAX_LIST. */
int config_parse_list(const char *s, struct config_list *lst);
/* Split "ADDR:PORT" / "[v6]:PORT" into host and port. 0 ok, -1 bad. */
int config_parse_hostport(const char *s, char *host, size_t hostlen, int *port_r);
/* 1 when s is a domain name: LDH labels of 1..63, 255 in all. */
int config_parse_is_domain(const char *s);
/* 1 when s is a numeric IPv4 or IPv6 address (no brackets). */
int config_parse_is_ip(const char *s);

/* "192.0.2.1", "2001:db8::/32", "10.0.0.0/8" into net. 0 ok, -1 bad. */
int config_netlist_parse_one(const char *s, struct config_net *net);
/* A comma/space separated list into l (l->set = 1). 0 ok, -1 with *error_r. */
int config_netlist_parse(const char *s, struct config_netlist *l, const char **error_r);
/* 1 when sa (AF_INET or AF_INET6; IPv4-mapped IPv6 counts as IPv4) is in l. */
int config_netlist_match(const struct config_netlist *l, const struct sockaddr *sa);

#endif
