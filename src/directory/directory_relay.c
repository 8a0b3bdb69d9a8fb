/*
 * directory_relay: the backup role's lists of valid recipients, one per
 * domain, loaded from a file in one transaction. A domain without a list
 * accepts every address.
 *
 * Public: directory_recipients_load, directory_recipients_clear,
 * directory_recipients_list, directory_relay_check.
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
dir_recipient_insert(struct directory *d, sqlite3_stmt *st, const char *dom,
		     const char *file, unsigned lineno, const char *line)
{
	char *a = dir_address(d, line, 0, 0), msg[sizeof(d->err)], show[80];
	int rc = -1;

	if (a == NULL) {
		snprintf(msg, sizeof(msg), "%s", d->err);
		dir_seterr(d, "%s:%u: %s", file, lineno, msg);
		return -1;
	}
	if (strcmp(dir_domain_of(a), dom) != 0) {
		dir_seterr(d, "%s:%u: %s is not in domain %s", file, lineno,
			   dir_show(a, show, sizeof(show)), dom);
	} else if (sqlite3_bind_text(st, 2, a, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
		   sqlite3_step(st) != SQLITE_DONE) {
		dir_dberr(d);
	} else {
		rc = sqlite3_changes(d->db) > 0;
	}
	sqlite3_reset(st);
	free(a);
	return rc;
}

/* Inside a transaction: the old list out, the file's addresses in. */
static int
dir_recipients_read(struct directory *d, const char *dom, const char *file, FILE *fp)
{
	sqlite3_stmt *st = NULL;
	char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	int r, count = 0;

	if (dir_run(d, "DELETE FROM relay_recipients WHERE domain = ?", 1, dom) < 0)
		return -1;
	if (sqlite3_prepare_v2(d->db, "INSERT OR IGNORE INTO relay_recipients(domain, address)"
			       " VALUES (?, ?)", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, dom, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
		count = dir_dberr(d);
		goto out;
	}
	while (getline(&line, &cap, fp) != -1) {
		char *s = dir_trim(line);

		lineno++;
		if (*s == '\0' || *s == '#')
			continue;
		if ((r = dir_recipient_insert(d, st, dom, file, lineno, s)) < 0) {
			count = -1;
			goto out;
		}
		count += r;
	}
	if (ferror(fp)) {
		dir_seterr(d, "%s: %s", file, strerror(errno));
		count = -1;
	} else if (count == 0) {
		/* An empty list would mean "accept everybody": say so instead. */
		dir_seterr(d, "%s: no addresses; clear the list to accept every address", file);
		count = -1;
	}
out:
	dir_finish(d, st);
	free(line);
	return count;
}

int
directory_recipients_load(struct directory *d, const char *domain, const char *file)
{
	char *dom;
	FILE *fp;
	int n = -1;

	if ((dom = dir_domain(d, domain)) == NULL)
		return -1;
	if ((fp = fopen(file, "re")) == NULL) {
		dir_seterr(d, "%s: %s", file, strerror(errno));
		free(dom);
		return -1;
	}
	if (dir_exec(d, "BEGIN IMMEDIATE") == 0) {
		n = dir_recipients_read(d, dom, file, fp);
		if (n >= 0 && dir_exec(d, "COMMIT") != 0)
			n = -1;
		if (n < 0)
			dir_rollback(d);
	}
	fclose(fp);
	free(dom);
	return n;
}

int
directory_recipients_clear(struct directory *d, const char *domain)
{
	char *dom = dir_lowdup(domain);
	int n = dir_run(d, "DELETE FROM relay_recipients WHERE domain = ?", 1, dom);

	free(dom);
	return n < 0 ? -1 : 0;
}

int
directory_recipients_list(struct directory *d, const char *domain,
			  void (*fn)(const char *address, void *arg), void *arg)
{
	char *dom = dir_lowdup(domain);
	int rc = dir_each(d, fn, NULL, arg, "SELECT address FROM relay_recipients"
			  " WHERE domain = ? ORDER BY address", 1, dom);

	free(dom);
	return rc;
}

enum dir_relay
directory_relay_check(struct directory *d, const char *address)
{
	char *a = dir_lowdup(address), *at = strrchr(a, '@');
	int r = 0;

	if (at != NULL)
		r = dir_int(d, "SELECT NOT EXISTS(SELECT 1 FROM relay_recipients WHERE domain = ?1)"
			    " OR EXISTS(SELECT 1 FROM relay_recipients"
			    " WHERE domain = ?1 AND address = ?2)", 2, at + 1, a);
	free(a);
	if (r < 0)
		return DIR_RELAY_TEMPFAIL;
	return r ? DIR_RELAY_OK : DIR_RELAY_UNKNOWN;
}
