/*
 * config_table: every key of tandem.conf, one row each (see config_int.h
 * for the columns). Adding a key is adding a row here and a field in
 * struct config; README's table comes from `tandem check-config --doc`.
 * Module-internal: config_table, config_table_count, config_table_find.
 */
#include <string.h>

#include "conf/config_int.h"

static const char *const role_names[] = { "primary", "backup", NULL };
static const char *const tls_outbound_names[] = { "may", "encrypt", NULL };
static const char *const log_level_names[] = { "info", "debug", NULL };
static const char *const plaintext_names[] = { "never", "loopback", "always", NULL };

#define F(field) offsetof(struct config, field)
#define R CONFIG_F_RELOAD
#define DAY 86400LL

const struct config_key config_table[] = {
	{ "server", "hostname", CT_DOMAIN, F(hostname), NULL, 0, 0, NULL, CONFIG_F_SYSHOST,
	  "the system host name", "name in the greeting, EHLO and `Received:`; a domain name" },
	{ "server", "origin", CT_DOMAIN, F(origin), NULL, 0, 0, NULL, R,
	  "the host name's domain", "the domain `tandem sendmail` gives unqualified addresses "
	  "(`root`, the default sender `user`): mx1.example.com gives example.com" },
	{ "server", "role", CT_ENUM, F(role), "primary", 0, 0, role_names, 0, NULL,
	  "`primary` (mailboxes, local delivery) or `backup` (holds mail for `[relay] domains`)" },
	{ "server", "data_dir", CT_PATH, F(data_dir), "/var/lib/tandem", 0, 0, NULL, 0, NULL,
	  "queue, mailboxes, directory, TLS key (absolute path)" },
	{ "server", "user", CT_STRING, F(user), NULL, 0, 0, NULL, 0, "(none)",
	  "drop root to this user after binding and reading the TLS key; the directories tandem creates in data_dir are given to it (mailboxes are not walked); must exist" },
	{ "server", "backups", CT_HOSTPORTS, F(backups), NULL, 0, 0, NULL, 0, "(none)",
	  "primary: backup MX hosts, `HOST[:PORT]`, sent `ETRN` for each local domain when the "
	  "primary starts; one that cannot be reached is asked again every `probe_interval`" },
	{ "server", "log_file", CT_PATH, F(log_file), NULL, 0, 0, NULL, R, "stderr",
	  "append log lines to this file (absolute path; its directory must exist); reopened on SIGHUP" },
	{ "server", "log_level", CT_ENUM, F(log_level), "info", 0, 0, log_level_names, R, NULL,
	  "`info`, or `debug` for the debug lines too" },
	{ "server", "recipient_delimiter", CT_DELIM, F(recipient_delimiter), "+", 0, 0, NULL, R, NULL,
	  "`alice+tag@` is delivered to `alice@`; one of `" CONFIG_DELIMITERS "`, empty: no subaddressing" },
	{ "server", "max_connections_per_client", CT_UINT, F(max_connections_per_client), "20",
	  0, 1000000, NULL, R, NULL,
	  "connections at once from one IPv4 address or IPv6 /64, over all listeners, loopback "
	  "included (0: no limit)" },
	{ "server", "max_connections_per_net", CT_UINT, F(max_connections_per_net), "100",
	  0, 1000000, NULL, R, NULL,
	  "connections at once from one IPv4 /24 or IPv6 /48, over all listeners (0: no limit)" },

	{ "listen", "smtp", CT_LISTEN, F(listen_smtp), "0.0.0.0:25", 0, CONFIG_MAX_LISTEN, NULL, 0,
	  NULL, "`ADDR:PORT[, ...]` with numeric addresses; IPv6 as `[::]:25`" },
	{ "listen", "submission", CT_LISTEN, F(listen_submission), NULL, 0, CONFIG_MAX_LISTEN, NULL,
	  0, "(none)", "mail submission (587) for users' mail clients: STARTTLS offered, AUTH "
	  "required before MAIL" },
	{ "listen", "submissions", CT_LISTEN, F(listen_submissions), NULL, 0, CONFIG_MAX_LISTEN,
	  NULL, 0, "(none)", "mail submission over implicit TLS (465), AUTH required" },
	{ "listen", "imap", CT_LISTEN, F(listen_imap), NULL, 0, CONFIG_MAX_LISTEN, NULL, 0, "(none)",
	  "IMAP (143), STARTTLS offered" },
	{ "listen", "imaps", CT_LISTEN, F(listen_imaps), NULL, 0, CONFIG_MAX_LISTEN, NULL, 0, "(none)",
	  "IMAP over implicit TLS (993)" },
	{ "listen", "pop3", CT_LISTEN, F(listen_pop3), NULL, 0, CONFIG_MAX_LISTEN, NULL, 0, "(none)",
	  "POP3 (110), STLS offered; the maildrop is INBOX" },
	{ "listen", "pop3s", CT_LISTEN, F(listen_pop3s), NULL, 0, CONFIG_MAX_LISTEN, NULL, 0, "(none)",
	  "POP3 over implicit TLS (995)" },
	{ "listen", "http", CT_LISTEN, F(listen_http), NULL, 0, CONFIG_MAX_LISTEN, NULL, 0, "(none)",
	  "webmail and API: not built yet, an error" },

	{ "tls", "cert", CT_STRING, F(tls_cert), NULL, 0, 0, NULL, R, "self-signed in `data_dir/tls/`",
	  "PEM certificate chain for STARTTLS; goes with `key`" },
	{ "tls", "key", CT_STRING, F(tls_key), NULL, 0, 0, NULL, R, "self-signed in `data_dir/tls/`",
	  "PEM private key of `cert`" },
	{ "tls", "outbound", CT_ENUM, F(tls_outbound), "may", 0, 0, tls_outbound_names, R, NULL,
	  "outbound STARTTLS: `may` (use it when offered; a failed handshake retries that host in "
	  "plaintext) or `encrypt` (defer rather than send in the clear)" },

	{ "dns", "resolver", CT_RESOLVER, F(dns_resolver), "system", 0, 0, NULL, 0, NULL,
	  "`system` (/etc/resolv.conf) or `HOST@PORT`, HOST a numeric address, e.g. `127.0.0.1@5353`" },

	{ "relay", "domains", CT_DOMAINS, F(relay_domains), NULL, 0, 0, NULL, 0, "(none)",
	  "backup: domains accepted for relay (required for role backup); never also `domain add`" },
	{ "relay", "primary", CT_HOSTPORT, F(relay_primary), NULL, 0, 0, NULL, 0,
	  "the domain's MX hosts better than this one", "backup: where to hand the mail, `HOST[:PORT]`" },
	{ "relay", "probe_interval", CT_DURATION, F(probe_interval), "15s", 1, DAY, NULL, 0, NULL,
	  "how often to probe a destination that refused on every host (mail for it waits "
	  "meanwhile and goes the moment it answers), and how often a primary retries ETRN to a "
	  "backup it could not reach" },
	{ "relay", "etrn_clients", CT_NETLIST, F(etrn_clients), NULL, 0, 0, NULL, R,
	  "the relay destination's addresses and loopback",
	  "who may send ETRN: addresses and networks (`192.0.2.1, 2001:db8::/32`); setting it "
	  "replaces the default, loopback included" },

	{ "queue", "retry_min", CT_DURATION, F(retry_min), "5m", 1, 0, NULL, R, NULL,
	  "first wait after a failed attempt; it doubles up to `retry_max`" },
	{ "queue", "retry_max", CT_DURATION, F(retry_max), "1h", 1, 0, NULL, R, NULL,
	  "longest wait between attempts (at least `retry_min`)" },
	{ "queue", "lifetime", CT_DURATION, F(lifetime), "5d", 0, 0, NULL, R, NULL,
	  "after this, recipients that still fail are returned to the sender in a DSN and the "
	  "message is removed" },
	{ "queue", "min_free", CT_SIZE, F(min_free), "16M", 0, 0, NULL, R, NULL,
	  "MAIL gets `452 4.3.1` when free space < min_free + 1.5 × SIZE" },
	{ "queue", "workers", CT_UINT, F(workers), "16", 1, 64, NULL, 0, NULL,
	  "threads for fsync, Maildir writes, lookups; a client's job (a commit, a lookup, an "
	  "IMAP command) goes before the queue's deliveries, which use at most 3/4 of them" },
	{ "queue", "dest_concurrency", CT_UINT, F(dest_concurrency), "20", 1, 200, NULL, 0, NULL,
	  "outbound connections at once to one destination address; each carries up to 100 "
	  "messages in turn and idles at most 2 s" },
	{ "queue", "connect_timeout", CT_DURATION, F(connect_timeout), "30s", 1, 300, NULL, R, NULL,
	  "how long an outbound connection may take to open before the next MX address is tried; "
	  "probes and ETRN wait at most 10 s" },
	{ "queue", "source_address", CT_STRING, F(source_address), NULL, 0, 0, NULL, 0,
	  "the first `[listen] smtp` address unless a wildcard", "numeric address outbound "
	  "connections of its family come from" },
	{ "queue", "relayhost", CT_HOSTPORT, F(relayhost), NULL, 0, 0, NULL, 0, "(none: MX)",
	  "`HOST[:PORT]` (default port 25): every message for another domain goes through this "
	  "smarthost, STARTTLS required, never a fallback to MX" },
	{ "queue", "relayhost_auth_file", CT_PATH, F(relayhost_auth_file), NULL, 0, 0, NULL, 0,
	  "(none: no AUTH)", "file whose first line is `USER:PASSWORD` for AUTH PLAIN to the "
	  "relayhost (readable by `[server] user`, mode 0600); a refused login defers mail" },

	{ "smtp", "max_connections", CT_UINT, F(max_connections), "1000", 0, 1000000, NULL, R, NULL,
	  "connections at once; more get `421 4.7.0`" },
	{ "smtp", "max_recipients", CT_UINT, F(max_recipients), "100", 1, 1000000, NULL, R, NULL,
	  "recipients per message; more get `452 4.5.3`" },
	{ "smtp", "max_message_size", CT_SIZE, F(max_message_size), "50M", 0, 0, NULL, R, NULL,
	  "advertised in SIZE; larger get `552 5.3.4`" },
	{ "smtp", "timeout", CT_DURATION, F(timeout), "5m", 1, DAY, NULL, R, NULL,
	  "limit for a command or a stretch of DATA; then `421 4.4.2`" },
	{ "smtp", "max_errors", CT_UINT, F(max_errors), "20", 1, 1000000, NULL, R, NULL,
	  "rejected commands before `421 4.7.0` and close" },
	{ "smtp", "junk_command_limit", CT_UINT, F(junk_command_limit), "100", 1, 1000000, NULL, R,
	  NULL, "commands in a row that make no progress (anything but an accepted MAIL, RCPT or "
	  "DATA) before `421`" },
	{ "smtp", "greet_pause", CT_MSEC, F(greet_pause_ms), "0", 0, 600000, NULL, R, NULL,
	  "delay the greeting (e.g. `1s`, `500ms`) and reject clients that talk first" },

	{ "auth", "plaintext", CT_ENUM, F(auth_plaintext), "loopback", 0, 0, plaintext_names, R, NULL,
	  "where a password may be sent without TLS (IMAP `LOGIN`, POP3 `USER`/`PASS`, SASL "
	  "`PLAIN`/`LOGIN`): `never`, `loopback` (clients on 127.0.0.0/8 and ::1) or `always`" },

	{ "mailbox", "default_quota", CT_SIZE, F(default_quota), "0", 0, 0, NULL, R, NULL,
	  "quota of a user without one of their own (`tandem user quota`); 0: no limit" },
	{ "mailbox", "expunged_retention", CT_DURATION, F(expunged_retention), "30d", 1, 3650 * DAY,
	  NULL, R, NULL,
	  "how long the index remembers an expunged message's UID (for clients that resync "
	  "by MODSEQ); older tombstones are purged" },

	{ "imap", "max_connections", CT_UINT, F(imap_max_connections), "1000", 0, 1000000, NULL, R,
	  NULL, "IMAP sessions at once; more get `* BYE`" },
	{ "imap", "max_connections_per_user_ip", CT_UINT, F(imap_max_per_user_ip), "20", 0, 100000,
	  NULL, R, NULL,
	  "sessions of one user from one client address; the next login gets `NO [LIMIT]` "
	  "(0: no limit)" },
	{ "imap", "timeout", CT_DURATION, F(imap_timeout), "30m", 60, DAY, NULL, R, NULL,
	  "an idle logged-in session is closed after this (RFC 3501 asks for at least 30 "
	  "minutes; before login a line may take 60 s and the login 120 s in all); `IDLE` lasts as long, with a keepalive "
	  "every `idle_keepalive`" },
	{ "imap", "idle_keepalive", CT_DURATION, F(imap_idle_keepalive), "2m", 10, 3600, NULL, R,
	  NULL, "how often an `IDLE` session gets `* OK Still here`, so NAT and firewalls on "
	  "the way keep the idle connection" },
	{ "imap", "max_literal", CT_SIZE, F(imap_max_literal), "64M", 1024, 0, NULL, R, NULL,
	  "largest literal (an `APPEND`ed message); a larger one is refused before the `+` "
	  "continuation" },

	{ "pop3", "max_connections", CT_UINT, F(pop3_max_connections), "1000", 0, 1000000, NULL, R,
	  NULL, "POP3 sessions at once; more get `-ERR [SYS/TEMP]`" },
	{ "pop3", "max_connections_per_user_ip", CT_UINT, F(pop3_max_per_user_ip), "20", 0, 100000,
	  NULL, R, NULL,
	  "sessions of one user from one client address; the next login gets `-ERR [IN-USE]` "
	  "(0: no limit)" },
	{ "pop3", "timeout", CT_DURATION, F(pop3_timeout), "10m", 60, DAY, NULL, R, NULL,
	  "an idle session is closed after this (RFC 1939: at least 10 minutes; before login a "
	  "line may take 60 s and the login 120 s in all)" },
	{ "submission", "hide_client", CT_BOOL, F(submission_hide_client), "yes", 0, 0, NULL, R,
	  NULL, "leave the client's address and host name out of the `Received:` line of "
	  "submitted mail (the user's address at home stays private)" },
	{ "submission", "max_messages_per_day", CT_UINT, F(submission_max_messages), "1000", 0,
	  10000000, NULL, R, NULL, "messages a user may submit a UTC day; more get `451 4.7.1` at "
	  "MAIL (0: no limit; `tandem user limits` sets one user's)" },
	{ "submission", "max_recipients_per_day", CT_UINT, F(submission_max_recipients), "2000", 0,
	  10000000, NULL, R, NULL, "recipients a user may submit to a UTC day; more get "
	  "`451 4.7.1` at RCPT (0: no limit)" },

	{ "dkim", "rotate_grace", CT_DURATION, F(dkim_rotate_grace), "7d", 0, 3650 * DAY, NULL, R,
	  NULL, "how long `tandem dkim show` still lists a selector that `tandem dkim rotate` "
	  "retired, so that mail signed just before can still be verified; then its record may "
	  "be removed from DNS" },
};
#undef F
#undef R

const size_t config_table_count = sizeof(config_table) / sizeof(config_table[0]);

const struct config_key *
config_table_find(const char *section, const char *key)
{
	for (size_t i = 0; i < config_table_count; i++)
		if (strcmp(config_table[i].section, section) == 0 &&
		    strcmp(config_table[i].key, key) == 0)
			return &config_table[i];
	return NULL;
}
