/*
 * directory_sql: the SQLite side of the directory module. Statements are
 * prepared once per connection and kept in a small cache keyed by the
 * address of their SQL literal; text arguments are bound in order. Errors
 * are recorded on the connection (so per thread), marked temporary when
 * they come from the database itself.
 *
 * Module-internal (directory_int.h): dir_seterr, dir_dberr, dir_show,
 * dir_exec, dir_rollback, dir_finish, dir_cache_free, dir_run, dir_int,
 * dir_strings, dir_strings_free, dir_each.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "directory/directory_int.h"
#include "util/xalloc.h"

void
dir_seterr(struct dir_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	c->temp = 0;
	c->rc = SQLITE_OK;
}

/* A failure of the database itself (locked, I/O, full): -1. */
int
dir_dberr(struct dir_conn *c)
{
	c->rc = sqlite3_extended_errcode(c->db);
	snprintf(c->err, sizeof(c->err), "database error: %s", sqlite3_errmsg(c->db));
	c->temp = 1;
	return -1;
}

/* User input quoted in messages: controls made visible, length bounded. */
const char *
dir_show(const char *s, char *buf, size_t len)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i + 4 < len; i++)
		buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	if (s[i] != '\0') {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

int
dir_exec(struct dir_conn *c, const char *sql)
{
	if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return dir_dberr(c);
	return 0;
}

void
dir_rollback(struct dir_conn *c)
{
	/* Keeps the message of the failure that made us roll back. */
	sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Done with a statement from dir_vprepare: reset and keep it when it is
 * cached, finalize it otherwise. */
void
dir_finish(struct dir_conn *c, sqlite3_stmt *st)
{
	if (st == NULL)
		return;
	for (int i = 0; i < DIR_STMT_CACHE; i++) {
		if (c->cache[i].st == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			c->cache[i].busy = 0;
			return;
		}
	}
	sqlite3_finalize(st);
}

void
dir_cache_free(struct dir_conn *c)
{
	for (int i = 0; i < DIR_STMT_CACHE; i++) {
		if (c->cache[i].st != NULL)
			sqlite3_finalize(c->cache[i].st);
		c->cache[i].st = NULL;
		c->cache[i].sql = NULL;
	}
}

/* Prepare sql and bind n text arguments, in order, from ap. */
static sqlite3_stmt *
dir_vprepare(struct dir_conn *c, const char *sql, int n, va_list ap)
{
	sqlite3_stmt *st = NULL;
	int slot = -1;

	for (int i = 0; i < DIR_STMT_CACHE && st == NULL; i++) {
		if (c->cache[i].sql == sql && !c->cache[i].busy) {
			st = c->cache[i].st;
			c->cache[i].busy = 1;
		} else if (c->cache[i].sql == NULL && slot < 0) {
			slot = i;
		}
	}
	if (st == NULL) {
		if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
			dir_dberr(c);
			return NULL;
		}
		if (slot >= 0) {
			c->cache[slot].sql = sql;
			c->cache[slot].st = st;
			c->cache[slot].busy = 1;
		}
	}
	for (int i = 1; i <= n; i++) {
		const char *s = va_arg(ap, const char *);

		if (sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
			dir_dberr(c);
			dir_finish(c, st);
			return NULL;
		}
	}
	return st;
}

sqlite3_stmt *
dir_prepare(struct dir_conn *c, const char *sql, int n, ...)
{
	sqlite3_stmt *st;
	va_list ap;

	va_start(ap, n);
	st = dir_vprepare(c, sql, n, ap);
	va_end(ap);
	return st;
}

/* A statement without rows: the number of rows changed, or -1. */
int
dir_run(struct dir_conn *c, const char *sql, int n, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	int rc;

	va_start(ap, n);
	st = dir_vprepare(c, sql, n, ap);
	va_end(ap);
	if (st == NULL)
		return -1;
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		dir_dberr(c);
		dir_finish(c, st);
		return -1;
	}
	dir_finish(c, st);
	return sqlite3_changes(c->db);
}

/* The first column of the first row as a (non-negative) int, 0 without
 * rows, -1 on error. */
int
dir_int(struct dir_conn *c, const char *sql, int n, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	int rc, v = 0;

	va_start(ap, n);
	st = dir_vprepare(c, sql, n, ap);
	va_end(ap);
	if (st == NULL)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	else if (rc != SQLITE_DONE)
		v = dir_dberr(c);
	dir_finish(c, st);
	return v;
}

static const char *
dir_col(sqlite3_stmt *st, int col)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	return s != NULL ? s : "";
}

/* Every row's first column into a NULL-terminated array *v_r. Returns the
 * number of rows or -1. */
int
dir_strings(struct dir_conn *c, char ***v_r, const char *sql, int n, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	char **v = NULL;
	int rc, count = 0;

	va_start(ap, n);
	st = dir_vprepare(c, sql, n, ap);
	va_end(ap);
	*v_r = NULL;
	if (st == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		v = xrealloc(v, (count + 2) * sizeof(*v));
		v[count++] = xstrdup(dir_col(st, 0));
		v[count] = NULL;
	}
	if (rc != SQLITE_DONE) {
		dir_dberr(c);
		count = -1;
	}
	dir_finish(c, st);
	*v_r = v;
	return count;
}

void
dir_strings_free(char **v)
{
	for (char **p = v; p != NULL && *p != NULL; p++)
		free(*p);
	free(v);
}

/* Call fn for each row of a query with one or two text columns. */
int
dir_each(struct dir_conn *c, void (*fn1)(const char *, void *),
	 void (*fn2)(const char *, const char *, void *), void *arg,
	 const char *sql, int n, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	int rc;

	va_start(ap, n);
	st = dir_vprepare(c, sql, n, ap);
	va_end(ap);
	if (st == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (fn2 != NULL)
			fn2(dir_col(st, 0), dir_col(st, 1), arg);
		else
			fn1(dir_col(st, 0), arg);
	}
	if (rc != SQLITE_DONE)
		dir_dberr(c);
	dir_finish(c, st);
	return rc == SQLITE_DONE ? 0 : -1;
}
