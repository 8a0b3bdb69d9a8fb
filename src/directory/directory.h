/*
 * directory: the organisation's domains, users, aliases, catch-alls and the
 * backup's relay recipient lists, in SQLite (data_dir/directory.db).
 *
 * A struct directory is one SQLite connection: use one per thread.
 * Public: directory_open, directory_close, directory_*.
 *
 * Addresses are stored lower-cased in the domain part; local parts are
 * compared case-insensitively for ASCII (as every real MTA does).
 * A catch-all is the alias "@domain".
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

/* Opens (creating the schema when missing). NULL on error, with a message in
 * err (size errlen). */
struct directory *directory_open(const char *data_dir, char *err, size_t errlen);
void directory_close(struct directory **dp);
/* Last error text of this connection. */
const char *directory_error(struct directory *d);
/* 1 when the last failure came from the database (locked, I/O, disk full)
 * rather than from the caller's input: worth retrying (EX_TEMPFAIL). */
int directory_error_is_temp(struct directory *d);

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
/* Store an existing hash as is (e.g. imported from Dovecot: "{SHA512-CRYPT}$6$..."). */
int directory_user_set_hash(struct directory *d, const char *address, const char *hash);

/* alias "a@dom" (or "@dom" for a catch-all) -> one or more targets. The
 * alias's domain must be a local domain. Adding an existing alias adds the
 * new targets to it. */
int directory_alias_add(struct directory *d, const char *alias, const char *const *targets, int ntargets);
int directory_alias_del(struct directory *d, const char *alias);
/* fn called once per (alias, target) pair, sorted by alias. */
int directory_alias_list(struct directory *d, void (*fn)(const char *alias, const char *target, void *arg), void *arg);

/* Recipient check at RCPT time (user, then alias, then catch-all). */
enum dir_rcpt directory_rcpt_check(struct directory *d, const char *address);

/* Expand a recipient to its final destinations: a local user mailbox
 * address (lower-cased domain) or a foreign address. Aliases are followed
 * recursively (depth limit 10, duplicates dropped); a local user shadows a
 * catch-all. fn gets is_local=1 for a local mailbox. Returns the number of
 * destinations, 0 when the address resolves to nothing (unknown user), -1 on
 * error. */
int directory_expand(struct directory *d, const char *address,
		     void (*fn)(const char *dest, int is_local, void *arg), void *arg);

/* Backup role: replace the list of valid recipients of DOMAIN with the
 * addresses in the file (one a line, '#' comments and blank lines ignored),
 * in one transaction. Returns the number loaded or -1. */
int directory_recipients_load(struct directory *d, const char *domain, const char *file);
/* Remove the list: every address of DOMAIN is accepted again. */
int directory_recipients_clear(struct directory *d, const char *domain);
enum dir_relay directory_relay_check(struct directory *d, const char *address);
/* Calls fn for each listed address of DOMAIN, sorted. */
int directory_recipients_list(struct directory *d, const char *domain,
			      void (*fn)(const char *address, void *arg), void *arg);

#endif
