/*
 * directory_relay: the backup role's lists of valid recipients, one per
 * domain, loaded from a file in one transaction. A domain without a list
 * accepts every address; with one, an address passes when it is listed or
 * when its base address is (alice+tag@ for alice@, subaddressing).
 *
 * Public: directory_recipients_load, directory_recipients_clear,
 * directory_recipients_list, directory_relay_check. Module-internal:
 * dir_relay_listed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "directory/directory_int.h"

static char *
dir_trim(char *s)
{
	char *e = s + strlen(s);

	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

/* One line's address into st (domain bound): 1 new, 0 duplicate, -1. */
static int
dir_recipient_insert(struct dir_conn *c, sqlite3_stmt *st, const char *dom,
		     const char *file, unsigned lineno, const char *line)
{
	char *a = dir_address(c, line, 0, 0), msg[sizeof(c->err)], show[80];
	int rc = -1;

	if (a == NULL) {
		snprintf(msg, sizeof(msg), "%s", c->err);
		dir_seterr(c, "%s:%u: %s", file, lineno, msg);
		return -1;
	}
	if (strcmp(dir_domain_of(a), dom) != 0) {
		dir_seterr(c, "%s:%u: %s is not in domain %s", file, lineno,
			   dir_show(a, show, sizeof(show)), dom);
	} else if (sqlite3_bind_text(st, 2, a, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
		   sqlite3_step(st) != SQLITE_DONE) {
		dir_dberr(c);
	} else {
		rc = sqlite3_changes(c->db) > 0;
	}
	sqlite3_reset(st);
	free(a);
	return rc;
}

/* Inside a transaction: the old list out, the file's addresses in. */
static int
dir_recipients_read(struct dir_conn *c, const char *dom, const char *file, FILE *fp)
{
	sqlite3_stmt *st = NULL;
	char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	int r, count = 0;

	if (dir_run(c, "DELETE FROM relay_recipients WHERE domain = ?", 1, dom) < 0)
		return -1;
	if (sqlite3_prepare_v2(c->db, "INSERT OR IGNORE INTO relay_recipients(domain, address)"
			       " VALUES (?, ?)", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, dom, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
		count = dir_dberr(c);
		goto out;
	}
	while (getline(&line, &cap, fp) != -1) {
		char *s = dir_trim(line);

		lineno++;
		if (*s == '\0' || *s == '#')
			continue;
		if ((r = dir_recipient_insert(c, st, dom, file, lineno, s)) < 0) {
			count = -1;
			goto out;
		}
		count += r;
	}
	if (ferror(fp)) {
		dir_seterr(c, "%s: %s", file, strerror(errno));
		count = -1;
	} else if (count == 0) {
		/* An empty list would mean "accept everybody": say so instead. */
		dir_seterr(c, "%s: no addresses; clear the list to accept every address", file);
		count = -1;
	}
out:
	dir_finish(c, st);
	free(line);
	return count;
}

int
directory_recipients_load(struct directory *d, const char *domain, const char *file)
{
	struct dir_conn *c = dir_conn(d);
	char *dom;
	FILE *fp;
	int n = -1;

	if (c == NULL || (dom = dir_domain(c, domain)) == NULL)
		return -1;
	if ((fp = fopen(file, "re")) == NULL) {
		dir_seterr(c, "%s: %s", file, strerror(errno));
		free(dom);
		return -1;
	}
	if (dir_exec(c, "BEGIN IMMEDIATE") == 0) {
		n = dir_recipients_read(c, dom, file, fp);
		if (n >= 0 && dir_exec(c, "COMMIT") != 0)
			n = -1;
		if (n < 0)
			dir_rollback(c);
	}
	fclose(fp);
	free(dom);
	return n;
}

int
directory_recipients_clear(struct directory *d, const char *domain)
{
	struct dir_conn *c = dir_conn(d);
	char *dom;
	int n;

	if (c == NULL)
		return -1;
	dom = dir_lowdup(domain);
	n = dir_run(c, "DELETE FROM relay_recipients WHERE domain = ?", 1, dom);
	free(dom);
	return n < 0 ? -1 : 0;
}

int
directory_recipients_list(struct directory *d, const char *domain,
			  void (*fn)(const char *address, void *arg), void *arg)
{
	struct dir_conn *c = dir_conn(d);
	char *dom;
	int rc;

	if (c == NULL)
		return -1;
	dom = dir_lowdup(domain);
	rc = dir_each(c, fn, NULL, arg, "SELECT address FROM relay_recipients"
		      " WHERE domain = ? ORDER BY address", 1, dom);
	free(dom);
	return rc;
}

/* 1 when address (lower-cased) may pass: its domain has no list, or the
 * list holds it, or (subaddressing) its base address. 0, -1. */
int
dir_relay_listed(struct dir_conn *c, const char *a, const char *delim)
{
	const char *dom = dir_domain_of(a);
	char base[DIR_ADDR_MAX];
	int r;

	r = dir_int(c, "SELECT NOT EXISTS(SELECT 1 FROM relay_recipients WHERE domain = ?1)"
		    " OR EXISTS(SELECT 1 FROM relay_recipients"
		    " WHERE domain = ?1 AND address = ?2)", 2, dom, a);
	if (r == 0 && dir_base(a, delim, base, sizeof(base)))
		r = dir_int(c, "SELECT EXISTS(SELECT 1 FROM relay_recipients"
			    " WHERE domain = ?1 AND address = ?2)", 2, dom, base);
	return r;
}

enum dir_relay
directory_relay_check(struct directory *d, const char *address)
{
	struct dir_conn *c = dir_conn(d);
	char *a, delim[DIR_DELIM_MAX + 1];
	int r = 1;

	if (c == NULL)
		return DIR_RELAY_TEMPFAIL;
	dir_delim(d, delim);
	a = dir_lowdup(address);
	if (strchr(a, '@') != NULL)
		r = dir_relay_listed(c, a, delim);
	free(a);
	if (r < 0)
		return DIR_RELAY_TEMPFAIL;
	return r ? DIR_RELAY_OK : DIR_RELAY_UNKNOWN;
}
