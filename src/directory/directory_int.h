/*
 * directory_int: what the files of the directory module share (private to
 * src/directory/): the connection struct, the SQLite statement and error
 * helpers (directory_sql.c), the address checks (directory.c) and the
 * password hashing (directory_passwd.c).
 */
#ifndef TANDEM_DIRECTORY_INT_H
#define TANDEM_DIRECTORY_INT_H
#include <stddef.h>

#include <sqlite3.h>

#include "directory/directory.h"

#define DIR_STMT_CACHE 48

struct directory {
	sqlite3 *db;
	int temp;		/* the last failure came from the database */
	int rc;			/* its extended SQLite result code */
	char *dummy_hash;	/* unknown users cost a hash too: no timing oracle */
	char err[512];
	/* Prepared statements kept for reuse, keyed by the SQL literal's
	 * address: every RCPT would otherwise parse its SQL again. */
	struct {
		const char *sql;
		sqlite3_stmt *st;
		int busy;
	} cache[DIR_STMT_CACHE];
};

/* ---- errors and statements: directory_sql.c ---- */

void dir_seterr(struct directory *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A failure of the database itself (locked, I/O, full): -1. */
int dir_dberr(struct directory *d);
/* User input quoted in messages: controls made visible, length bounded. */
const char *dir_show(const char *s, char *buf, size_t len);
int dir_exec(struct directory *d, const char *sql);
void dir_rollback(struct directory *d);
/* Done with a statement: reset and keep it when it is cached, finalize it
 * otherwise. */
void dir_finish(struct directory *d, sqlite3_stmt *st);
/*
 * dir_run, dir_int, dir_strings and dir_each bind the n text arguments that
 * follow n to sql's parameters, in order. sql is a string literal: the
 * statement cache knows it by its address.
 */

/* A statement without rows: the number of rows changed, or -1. */
int dir_run(struct directory *d, const char *sql, int n, ...);
/* The first column of the first row as a (non-negative) int, 0 without
 * rows, -1 on error. */
int dir_int(struct directory *d, const char *sql, int n, ...);
/* Every row's first column into a NULL-terminated array *v_r. Returns the
 * number of rows or -1. */
int dir_strings(struct directory *d, char ***v_r, const char *sql, int n, ...);
void dir_strings_free(char **v);
/* Call fn for each row of a query with one or two text columns. */
int dir_each(struct directory *d, void (*fn1)(const char *, void *),
	     void (*fn2)(const char *, const char *, void *), void *arg,
	     const char *sql, int n, ...);

/* ---- addresses: directory.c ---- */

char *dir_lowdup(const char *s);
/* A checked, lower-cased copy of domain; NULL with the error set. */
char *dir_domain(struct directory *d, const char *domain);
/* A checked, normalized copy of address: domain lower-cased, the local part
 * too unless keep_case. An empty local part ("@domain", a catch-all) only
 * when catchall. NULL with the error set. */
char *dir_address(struct directory *d, const char *address, int catchall, int keep_case);
/* The domain of a checked address. */
const char *dir_domain_of(const char *address);

/* ---- passwords: directory_passwd.c ---- */

/* A yescrypt hash of password, or NULL with the error set. */
char *dir_hash(struct directory *d, const char *password);

#endif
