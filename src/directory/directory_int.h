/*
 * directory_int: what the files of the directory module share (private to
 * src/directory/): the handle and its per-thread connections
 * (directory.c), the SQLite statement and error helpers (directory_sql.c),
 * the address checks (directory.c), the recipient resolution
 * (directory_rcpt.c) and the password hashing (directory_passwd.c).
 */
#ifndef TANDEM_DIRECTORY_INT_H
#define TANDEM_DIRECTORY_INT_H
#include <pthread.h>
#include <stddef.h>

#include <sqlite3.h>

#include "directory/directory.h"

#define DIR_STMT_CACHE 48
#define DIR_ERR_MAX 512
#define DIR_DELIM_MAX 8
#define DIR_ADDR_MAX DIR_ADDRESS_MAX

/* One thread's SQLite connection to the directory. Only its thread uses it
 * (directory_close excepted, when nobody else does). */
struct dir_conn {
	struct directory *dir;
	struct dir_conn *next;	/* the handle's list, under dir->mu */
	sqlite3 *db;
	int temp;		/* the last failure came from the database */
	int rc;			/* its extended SQLite result code */
	char *dummy_hash;	/* unknown users cost a hash too: no timing oracle */
	char err[DIR_ERR_MAX];
	/* Prepared statements kept for reuse, keyed by the SQL literal's
	 * address: every RCPT would otherwise parse its SQL again. */
	struct {
		const char *sql;
		sqlite3_stmt *st;
		int busy;
	} cache[DIR_STMT_CACHE];
};

/* The handle every thread shares: which file, and the settings. */
struct directory {
	char *path;		/* data_dir/directory.db */
	pthread_key_t key;	/* this thread's struct dir_conn */
	pthread_mutex_t mu;	/* conns and delim */
	struct dir_conn *conns;
	char delim[DIR_DELIM_MAX + 1];	/* recipient delimiters; "" none */
};

/* ---- connections: directory.c ---- */

/* The calling thread's connection, opened on first use; NULL when it
 * cannot be opened (directory_error() then says why). */
struct dir_conn *dir_conn(struct directory *d);
/* A copy of the recipient delimiters (DIR_DELIM_MAX + 1 bytes). */
void dir_delim(struct directory *d, char *buf);

/* ---- errors and statements: directory_sql.c ---- */

void dir_seterr(struct dir_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A failure of the database itself (locked, I/O, full): -1. */
int dir_dberr(struct dir_conn *c);
/* User input quoted in messages: controls made visible, length bounded. */
const char *dir_show(const char *s, char *buf, size_t len);
int dir_exec(struct dir_conn *c, const char *sql);
void dir_rollback(struct dir_conn *c);
/* Done with a statement: reset and keep it when it is cached, finalize it
 * otherwise. */
void dir_finish(struct dir_conn *c, sqlite3_stmt *st);
/* Finalize every cached statement (before the connection closes). */
void dir_cache_free(struct dir_conn *c);
/*
 * dir_prepare, dir_run, dir_int, dir_strings and dir_each bind the n text arguments that
 * follow n to sql's parameters, in order. sql is a string literal: the
 * statement cache knows it by its address.
 */

/* The statement, for the caller to step and give to dir_finish; NULL on
 * error. */
sqlite3_stmt *dir_prepare(struct dir_conn *c, const char *sql, int n, ...);
/* A statement without rows: the number of rows changed, or -1. */
int dir_run(struct dir_conn *c, const char *sql, int n, ...);
/* The first column of the first row as a (non-negative) int, 0 without
 * rows, -1 on error. */
int dir_int(struct dir_conn *c, const char *sql, int n, ...);
/* Every row's first column into a NULL-terminated array *v_r. Returns the
 * number of rows or -1. */
int dir_strings(struct dir_conn *c, char ***v_r, const char *sql, int n, ...);
void dir_strings_free(char **v);
/* Call fn for each row of a query with one or two text columns. */
int dir_each(struct dir_conn *c, void (*fn1)(const char *, void *),
	     void (*fn2)(const char *, const char *, void *), void *arg,
	     const char *sql, int n, ...);

/* ---- addresses: directory.c ---- */

void dir_lower(char *s);
char *dir_lowdup(const char *s);
/* A checked, lower-cased copy of domain; NULL with the error set. */
char *dir_domain(struct dir_conn *c, const char *domain);
/* A checked, normalized copy of address: domain lower-cased, the local part
 * too unless keep_case. An empty local part ("@domain", a catch-all) only
 * when catchall. NULL with the error set. */
char *dir_address(struct dir_conn *c, const char *address, int catchall, int keep_case);
/* The domain of a checked address. */
const char *dir_domain_of(const char *address);
/* 1, 0, -1; dom already lower-cased. */
int dir_is_local(struct dir_conn *c, const char *dom);

/* ---- resolution: directory_rcpt.c ---- */

/* The base address of a subaddress: "alice@x" for "alice+tag@x" when a
 * character of delim splits the local part (first one wins) and leaves a
 * non-empty user part. 1 with buf filled, 0 when there is none. */
int dir_base(const char *address, const char *delim, char *buf, size_t len);

/* 0 when adding the alias (already inserted, inside the transaction) made
 * no loop; -1 with the error set ("alias a@x would make a loop: ...") or a
 * database error. */
int dir_alias_loop_check(struct dir_conn *c, const char *alias);

/* ---- relay lists: directory_relay.c ---- */

/* 1 when address (lower-cased) may pass the relay recipient list of its
 * domain (no list, listed, or its base address listed), 0, -1. */
int dir_relay_listed(struct dir_conn *c, const char *address, const char *delim);

/* ---- passwords: directory_passwd.c ---- */

/* A yescrypt hash of password, or NULL with the error set. */
char *dir_hash(struct dir_conn *c, const char *password);
/* directory_quota.c: n integer columns of an existing user's row. set:
 * sql takes them as ?1..?n (a value < 0 is NULL) and the address as
 * ?(n+1); get: sql takes the address, NULL reads as -1. 0, or -1 with the
 * error set ("no such user ..." when there is none). */
int dir_user_set_ints(struct dir_conn *c, const char *address, const char *sql, int n,
		      const long long *v);
int dir_user_get_ints(struct dir_conn *c, const char *address, const char *sql, int n,
		      long long *v);
/* The SCRAM-SHA-256 secrets of password (RFC 5802, RFC 7677), stored
 * beside its hash: "SCRAM-SHA-256:ITERATIONS:SALT:STOREDKEY:SERVERKEY",
 * base64; NULL with the error set. */
char *dir_scram(struct dir_conn *c, const char *password);

#endif
