/*
 * directory: the organisation's domains, users, aliases, catch-alls and the
 * backup's relay recipient lists, in SQLite (data_dir/directory.db).
 *
 * One struct directory serves every thread of the process: each thread
 * that calls a function gets its own SQLite connection on first use,
 * closed when the thread exits or at directory_close. So the SMTP server
 * can run its RCPT lookups (and AUTH its password checks) on the worker
 * pool and the loop thread keep using the same handle.
 * Public: directory_open, directory_close, directory_*.
 *
 * Addresses are stored lower-cased in the domain part; local parts are
 * compared case-insensitively for ASCII (as every real MTA does).
 * A catch-all is the alias "@domain". Subaddressing: "alice+tag@x" is
 * alice's when nobody is called "alice+tag@x" itself (see
 * directory_set_recipient_delimiter).
 */
#ifndef TANDEM_DIRECTORY_H
#define TANDEM_DIRECTORY_H
#include <stddef.h>

struct directory;

/* Result of checking one recipient address. */
enum dir_rcpt {
	DIR_RCPT_LOCAL,       /* domain is ours and a user, alias or catch-all takes it */
	DIR_RCPT_UNKNOWN,     /* domain is ours, nobody by that name: 550 5.1.1 */
	DIR_RCPT_NOT_LOCAL,   /* domain is not one of ours */
	DIR_RCPT_TEMPFAIL     /* database error: 451 4.3.0 */
};

enum dir_relay {
	DIR_RELAY_OK,         /* no list loaded for the domain, or address listed */
	DIR_RELAY_UNKNOWN,    /* a list is loaded and the address is not in it */
	DIR_RELAY_TEMPFAIL
};

/* Opens (creating the schema when missing) with a first connection for
 * the calling thread. NULL on error, with a message in err (size errlen).
 * The recipient delimiter starts as "+". */
struct directory *directory_open(const char *data_dir, char *err, size_t errlen);
/* Closes every thread's connection. Call it once no other thread uses the
 * handle any more (after worker_pool_free, or with the workers idle);
 * threads that exit later leave it alone. */
void directory_close(struct directory **dp);
/* The last error of the calling thread's own calls on d: threads never see
 * each other's. Valid until that thread's next call on d. */
const char *directory_error(struct directory *d);
/* 1 when the last failure came from the database (locked, I/O, disk full)
 * rather than from the caller's input: worth retrying (EX_TEMPFAIL). */
int directory_error_is_temp(struct directory *d);
/* [server] recipient_delimiter: each character of delim ends the user part
 * of a local part ("+": alice+tag@x is alice@x's unless alice+tag@x exists
 * itself). NULL or "" turns subaddressing off. -1 with *error_r set when
 * delim is longer than 8 or holds '.', '@', spaces or other characters a
 * local part cannot. Safe to call while other threads look up (reload). */
int directory_set_recipient_delimiter(struct directory *d, const char *delim, const char **error_r);

/* All return 0 on success, -1 on failure with directory_error() set to a
 * message a user can read ("unknown domain example.org", "user exists"). */
int directory_domain_add(struct directory *d, const char *domain);
int directory_domain_del(struct directory *d, const char *domain);
/* Calls fn for each domain, sorted. */
int directory_domain_list(struct directory *d, void (*fn)(const char *domain, void *arg), void *arg);
int directory_domain_exists(struct directory *d, const char *domain); /* 1, 0, -1 */

/* password: plain text, hashed here with yescrypt. */
int directory_user_add(struct directory *d, const char *address, const char *password);
int directory_user_del(struct directory *d, const char *address);
int directory_user_passwd(struct directory *d, const char *address, const char *password);
int directory_user_list(struct directory *d, void (*fn)(const char *address, void *arg), void *arg);
int directory_user_exists(struct directory *d, const char *address); /* 1, 0, -1 */
/* 1 when the password matches, 0 when not (or no such user), -1 on error.
 * Understands Dovecot-style "{SCHEME}" prefixes: {CRYPT}, {YESCRYPT},
 * {SHA512-CRYPT}, {BLF-CRYPT}, and bare crypt(3) hashes. */
int directory_user_verify(struct directory *d, const char *address, const char *password);
/* The user's SCRAM-SHA-256 secrets (dir_scram's format; "" when the
 * password was imported as a hash) and canonical address: 1, 0 for no
 * such user, -1 on error. */
int directory_user_scram(struct directory *d, const char *address, char *address_r,
			 size_t address_len, char *scram_r, size_t scram_len);
/* The stored hash of a user, for a caller that keys a cache on it (auth):
 * 1 with address_r (the canonical, stored spelling) and hash_r filled, 0
 * when there is no such user, -1 on error (a buffer too small included). */
int directory_user_hash(struct directory *d, const char *address, char *address_r,
			size_t address_len, char *hash_r, size_t hash_len);
/* Store an existing hash as is (e.g. imported from Dovecot: "{SHA512-CRYPT}$6$..."). */
int directory_user_set_hash(struct directory *d, const char *address, const char *hash);

/* Mailbox quota in bytes: -1 means [mailbox] default_quota applies, 0 no
 * limit. get: *bytes_r the same way; -1 for an unknown user. */
int directory_user_quota_set(struct directory *d, const char *address, long long bytes);
int directory_user_quota_get(struct directory *d, const char *address, long long *bytes_r);
/* The quota that applies to address: its own, or default_quota when it has
 * none or the lookup fails (delivery and IMAP's GETQUOTA; 0: no limit). */
long long directory_user_quota(struct directory *d, const char *address, long long default_quota);

/* alias "a@dom" (or "@dom" for a catch-all) -> one or more targets. The
 * alias's domain must be a local domain. Adding an existing alias adds the
 * new targets to it. Refused when it would make a loop (a -> a, a -> b ->
 * a, a catch-all whose target falls back to it, a -> a+x with
 * subaddressing), with the circle in the error: "alias a@x would make a
 * loop: a@x -> b@x -> a@x". */
int directory_alias_add(struct directory *d, const char *alias, const char *const *targets, int ntargets);
int directory_alias_del(struct directory *d, const char *alias);
/* fn called once per (alias, target) pair, sorted by alias. */
int directory_alias_list(struct directory *d, void (*fn)(const char *alias, const char *target, void *arg), void *arg);

/* Submission's daily limits of a user (-1: the [submission] default, 0:
 * none), and what the user submitted on day (days since 1970, UTC);
 * send_count adds to it. The address is canonical for usage and count. */
int directory_user_limits_set(struct directory *d, const char *address, long long messages,
			      long long recipients);
int directory_user_limits_get(struct directory *d, const char *address, long long *messages_r,
			      long long *recipients_r);
int directory_send_usage(struct directory *d, const char *address, long long day,
			 long long *messages_r, long long *recipients_r);
int directory_send_count(struct directory *d, const char *address, long long day, int messages,
			 int recipients);
/* The day of those counts now: days since 1970, UTC. */
long long directory_today(void);

/* Submission's grants (`user allow-from`): user may also send as pattern,
 * an address or "@domain". granted: 1 when sender (canonical) matches one
 * of user's grants, 0 when not, -1 on error. */
int directory_sender_allow(struct directory *d, const char *user, const char *pattern);
int directory_sender_disallow(struct directory *d, const char *user, const char *pattern);
int directory_sender_list(struct directory *d, const char *user,
			  void (*fn)(const char *pattern, void *arg), void *arg);
int directory_sender_granted(struct directory *d, const char *user, const char *sender);

/* Whether the domain is ours and somebody takes the address (user, then
 * alias, then subaddress base, then catch-all); aliases not followed.
 * Superseded at RCPT by directory_rcpt_lookup. */
enum dir_rcpt directory_rcpt_check(struct directory *d, const char *address);

/* The whole RCPT decision of the SMTP server, for any thread (a worker,
 * with the session paused). Each value says the reply to give. */
enum dir_lookup {
	DIR_LOOKUP_USER,	  /* a local user's mailbox (r->mailbox): 250 */
	DIR_LOOKUP_ALIAS,	  /* an alias (r->mailbox) with somewhere to go: 250 */
	DIR_LOOKUP_CATCHALL,	  /* the domain's catch-all (r->mailbox "@x") takes it: 250 */
	DIR_LOOKUP_RELAY,	  /* a relay domain; listed or no list loaded: 250 */
	DIR_LOOKUP_UNKNOWN,	  /* our domain, nobody (or an alias to nobody):
				   * 550 5.1.1 User unknown in local recipient table */
	DIR_LOOKUP_RELAY_UNKNOWN, /* a relay domain's list lacks it:
				   * 550 5.1.1 User unknown in relay recipient table */
	DIR_LOOKUP_NOT_OURS,	  /* neither ours nor a relay domain: 554 5.7.1 Relay access denied */
	DIR_LOOKUP_LOOP,	  /* the aliases loop (or nest deeper than 10) and leave
				   * nowhere to go: 451 4.4.6, r->error says where */
	DIR_LOOKUP_TEMPFAIL	  /* database error: 451 4.3.0, r->error says which */
};

#define DIR_ADDRESS_MAX 320

struct dir_rcpt_result {
	/* USER: the mailbox ("alice@x" for "alice+tag@x"); ALIAS: the alias
	 * that takes it; CATCHALL: "@x"; else "". */
	char mailbox[DIR_ADDRESS_MAX];
	int ndest;		/* ALIAS, CATCHALL: final destinations */
	int loop;		/* accepted, but the aliases loop somewhere: worth a warning */
	char error[512];	/* LOOP, TEMPFAIL (and loop): for the log line */
};

/* address: canonical (addr_parse_path's), with its domain. relay_domain:
 * the caller's config says the domain is one of [relay] domains (asked
 * only when the domain is not ours). Fills *r (the caller's, so it may
 * travel from a worker to the loop thread) and points *error_r (may be
 * NULL) at r->error. */
enum dir_lookup directory_rcpt_lookup(struct directory *d, const char *address, int relay_domain,
				      struct dir_rcpt_result *r, const char **error_r);

/* For local delivery: the final destinations of a recipient by the same
 * rules as the RCPT lookup. fn gets dest, a local mailbox address ("alice@x"
 * for "alice+tag@x") or a foreign address (domain lower-cased), with
 * is_local; and rcpt, the address that reached it: for a local mailbox the
 * recipient or alias target as written ("alice+tag@x"), for Delivered-To.
 * Aliases are followed recursively (depth limit 10, each alias and each
 * destination once); a user shadows an alias of the same name and the
 * catch-all. Returns the number of destinations, 0 when the address
 * resolves to nothing (unknown user, or only a loop), -1 on error with
 * *error_r (may be NULL) set. */
int directory_resolve(struct directory *d, const char *address,
		      void (*fn)(const char *dest, const char *rcpt, int is_local, void *arg),
		      void *arg, const char **error_r);
/* directory_resolve without rcpt, errors in directory_error(). */
int directory_expand(struct directory *d, const char *address,
		     void (*fn)(const char *dest, int is_local, void *arg), void *arg);

/* What "RCPT TO:<postmaster>" (no domain, RFC 5321 4.5.1) stands for:
 * postmaster@ the domain of hostname ([server] hostname itself, then its
 * parent domains: mx1.example.com, example.com) when that is ours, else
 * postmaster@ the first of our domains by name. 1 with buf filled, 0 when
 * we have no domain at all (a backup: the caller chooses), -1 on error. */
int directory_postmaster_address(struct directory *d, const char *hostname, char *buf, size_t len,
				 const char **error_r);

/* Backup role: replace the list of valid recipients of DOMAIN with the
 * addresses in the file (one a line, '#' comments and blank lines ignored),
 * in one transaction. Returns the number loaded or -1. */
int directory_recipients_load(struct directory *d, const char *domain, const char *file);
/* Remove the list: every address of DOMAIN is accepted again. */
int directory_recipients_clear(struct directory *d, const char *domain);
/* Subaddressing applies: alice+tag@x passes when alice@x is listed. */
enum dir_relay directory_relay_check(struct directory *d, const char *address);
/* Calls fn for each listed address of DOMAIN, sorted. */
int directory_recipients_list(struct directory *d, const char *domain,
			      void (*fn)(const char *address, void *arg), void *arg);

#endif
