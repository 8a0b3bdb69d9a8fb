/*
 * directory: the organisation's domains, users, aliases, catch-alls and the
 * backup's relay recipient lists, in SQLite (data_dir/directory.db). The
 * server and the CLI use the same file at once, so it runs in WAL mode with
 * a busy timeout, and every check-then-write that matters is backed by a
 * constraint in the schema.
 *
 * Local addresses are stored lower-cased, local part included, so every
 * lookup is an exact match. Foreign alias targets keep the case of their
 * local part (it belongs to the foreign host) and lower-case the domain.
 *
 * This file: opening the database and its schema, the address checks,
 * domains, users, aliases, the RCPT check and alias expansion. The other
 * topics have their own files: directory_sql.c (statements and errors),
 * directory_passwd.c (password hashes), directory_relay.c (the backup's
 * recipient lists); directory_int.h is what they share.
 *
 * Public: directory_open, directory_close, directory_error,
 * directory_error_is_temp, directory_domain_*, directory_user_add,
 * directory_user_del, directory_user_list, directory_user_exists,
 * directory_alias_*, directory_rcpt_check, directory_expand.
 * Module-internal: dir_lowdup, dir_domain, dir_address, dir_domain_of.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "directory/directory_int.h"
#include "util/xalloc.h"

#define DIR_SCHEMA_VERSION	1
#define DIR_BUSY_MS		5000
#define DIR_EXPAND_DEPTH	10
#define DIR_LOCAL_MAX		64
#define DIR_DOMAIN_MAX		255
#define DIR_LABEL_MAX		63

static const char dir_schema[] =
	"CREATE TABLE IF NOT EXISTS domains ("
	" name TEXT PRIMARY KEY NOT NULL);"
	"CREATE TABLE IF NOT EXISTS users ("
	" address TEXT PRIMARY KEY NOT NULL,"
	" domain TEXT NOT NULL REFERENCES domains(name),"
	" password TEXT NOT NULL);"
	"CREATE INDEX IF NOT EXISTS users_domain ON users(domain);"
	"CREATE TABLE IF NOT EXISTS aliases ("
	" alias TEXT NOT NULL,"
	" domain TEXT NOT NULL REFERENCES domains(name),"
	" target TEXT NOT NULL,"
	" PRIMARY KEY (alias, target));"
	"CREATE INDEX IF NOT EXISTS aliases_domain ON aliases(domain);"
	"CREATE TABLE IF NOT EXISTS relay_recipients ("
	" domain TEXT NOT NULL,"
	" address TEXT NOT NULL,"
	" PRIMARY KEY (domain, address));";

/* ---- addresses ---- */

static void
dir_lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s += 'a' - 'A';
}

char *
dir_lowdup(const char *s)
{
	char *p = xstrdup(s);

	dir_lower(p);
	return p;
}

static int
dir_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 5321 dot-atom text, plus 8-bit bytes for SMTPUTF8. */
static int
dir_local_char(unsigned char c)
{
	return c >= 0x80 || dir_alnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~.", c));
}

/* LDH labels (IDNs in their A-label form), each 1..63, 255 in all. */
static int
dir_domain_valid(const char *s, size_t len)
{
	size_t label = 0;

	if (len == 0 || len > DIR_DOMAIN_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
		} else if (dir_alnum(s[i]) || (s[i] == '-' && label > 0)) {
			if (++label > DIR_LABEL_MAX)
				return 0;
		} else {
			return 0;
		}
	}
	return label > 0 && s[len - 1] != '-';
}

char *
dir_domain(struct directory *d, const char *domain)
{
	char show[80];

	if (!dir_domain_valid(domain, strlen(domain))) {
		dir_seterr(d, "invalid domain %s", dir_show(domain, show, sizeof(show)));
		return NULL;
	}
	return dir_lowdup(domain);
}

/* A checked, normalized copy of address: domain lower-cased, the local part
 * too unless keep_case. An empty local part ("@domain", a catch-all) only
 * when catchall. NULL with the error set. */
char *
dir_address(struct directory *d, const char *address, int catchall, int keep_case)
{
	const char *at = strrchr(address, '@');
	const char *why = NULL;
	char show[80], *a;
	size_t llen = 0;

	if (at == NULL)
		why = "no @domain";
	else if ((llen = at - address) == 0 && !catchall)
		why = "empty local part";
	else if (llen > DIR_LOCAL_MAX)
		why = "local part longer than 64 characters";
	else if (!dir_domain_valid(at + 1, strlen(at + 1)))
		why = "bad domain";
	for (size_t i = 0; why == NULL && i < llen; i++)
		if (!dir_local_char(address[i]))
			why = "bad character in local part";
	if (why != NULL) {
		dir_seterr(d, "invalid address %s: %s",
			   dir_show(address, show, sizeof(show)), why);
		return NULL;
	}
	a = xstrdup(address);
	dir_lower(keep_case ? a + llen : a);
	return a;
}

const char *
dir_domain_of(const char *address)
{
	return strrchr(address, '@') + 1;
}

/* 1, 0, -1; dom already lower-cased. */
static int
dir_is_local(struct directory *d, const char *dom)
{
	return dir_int(d, "SELECT EXISTS(SELECT 1 FROM domains WHERE name = ?)", 1, dom);
}

static int
dir_need_domain(struct directory *d, const char *dom)
{
	int r = dir_is_local(d, dom);

	if (r == 0)
		dir_seterr(d, "unknown domain %s", dom);
	return r == 1 ? 0 : -1;
}

/* ---- open, close ---- */

static int
dir_setup(struct directory *d)
{
	char *sql;
	int version, rc;

	sqlite3_extended_result_codes(d->db, 1);
	sqlite3_busy_timeout(d->db, DIR_BUSY_MS);
	if (dir_exec(d, "PRAGMA journal_mode=WAL") != 0 ||
	    dir_exec(d, "PRAGMA foreign_keys=ON") != 0)
		return -1;
	if ((version = dir_int(d, "PRAGMA user_version", 0)) < 0)
		return -1;
	if (version > DIR_SCHEMA_VERSION) {
		dir_seterr(d, "schema version %d is newer than this tandem (%d)",
			   version, DIR_SCHEMA_VERSION);
		return -1;
	}
	if (version == DIR_SCHEMA_VERSION)
		return 0;
	if (dir_exec(d, "BEGIN IMMEDIATE") != 0)
		return -1;
	sql = xasprintf("PRAGMA user_version=%d", DIR_SCHEMA_VERSION);
	rc = dir_exec(d, dir_schema);
	if (rc == 0)
		rc = dir_exec(d, sql);
	if (rc == 0)
		rc = dir_exec(d, "COMMIT");
	if (rc != 0)
		dir_rollback(d);
	free(sql);
	return rc;
}

struct directory *
directory_open(const char *data_dir, char *err, size_t errlen)
{
	struct directory *d = xcalloc(1, sizeof(*d));
	char *path = xasprintf("%s/directory.db", data_dir);
	int fd, rc;

	/* Created here so the password hashes are never world-readable; SQLite
	 * gives its -wal and -shm files the mode of the database. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd >= 0)
		close(fd);
	rc = sqlite3_open_v2(path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path,
			 d->db != NULL ? sqlite3_errmsg(d->db) : sqlite3_errstr(rc));
	} else if (dir_setup(d) != 0) {
		snprintf(err, errlen, "%s: %s", path, d->err);
		rc = -1;
	}
	free(path);
	if (rc != SQLITE_OK) {
		sqlite3_close(d->db);
		free(d);
		return NULL;
	}
	return d;
}

void
directory_close(struct directory **dp)
{
	if (dp == NULL || *dp == NULL)
		return;
	for (int i = 0; i < DIR_STMT_CACHE; i++)
		if ((*dp)->cache[i].st != NULL)
			sqlite3_finalize((*dp)->cache[i].st);
	sqlite3_close_v2((*dp)->db);
	free((*dp)->dummy_hash);
	free(*dp);
	*dp = NULL;
}

const char *
directory_error(struct directory *d)
{
	return d->err;
}

int
directory_error_is_temp(struct directory *d)
{
	return d->temp;
}

/* ---- domains ---- */

int
directory_domain_add(struct directory *d, const char *domain)
{
	char *dom = dir_domain(d, domain);
	int rc = -1;

	if (dom == NULL)
		return -1;
	if (dir_run(d, "INSERT INTO domains(name) VALUES (?)", 1, dom) >= 0)
		rc = 0;
	else if (d->rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		dir_seterr(d, "domain %s already exists", dom);
	free(dom);
	return rc;
}

int
directory_domain_del(struct directory *d, const char *domain)
{
	char *dom = dir_lowdup(domain), show[80];
	int users, aliases, rc = -1;

	users = dir_int(d, "SELECT count(*) FROM users WHERE domain = ?", 1, dom);
	aliases = dir_int(d, "SELECT count(DISTINCT alias) FROM aliases WHERE domain = ?", 1, dom);
	if (users < 0 || aliases < 0)
		goto out;
	if (users > 0 || aliases > 0) {
		dir_seterr(d, "domain %s still has %d user%s and %d alias%s; delete them first",
			   dom, users, users == 1 ? "" : "s", aliases, aliases == 1 ? "" : "es");
		goto out;
	}
	switch (dir_run(d, "DELETE FROM domains WHERE name = ?", 1, dom)) {
	case -1:
		break;
	case 0:
		dir_seterr(d, "unknown domain %s", dir_show(dom, show, sizeof(show)));
		break;
	default:
		rc = 0;
	}
out:
	free(dom);
	return rc;
}

int
directory_domain_list(struct directory *d, void (*fn)(const char *domain, void *arg), void *arg)
{
	return dir_each(d, fn, NULL, arg, "SELECT name FROM domains ORDER BY name", 0);
}

int
directory_domain_exists(struct directory *d, const char *domain)
{
	char *dom = dir_lowdup(domain);
	int r = dir_is_local(d, dom);

	free(dom);
	return r;
}

/* ---- users ---- */

int
directory_user_add(struct directory *d, const char *address, const char *password)
{
	char *a, *hash = NULL;
	int rc = -1;

	if ((a = dir_address(d, address, 0, 0)) == NULL)
		return -1;
	if (dir_need_domain(d, dir_domain_of(a)) != 0)
		goto out;
	switch (directory_user_exists(d, a)) {
	case 1:
		dir_seterr(d, "user %s already exists", a);
		/* FALLTHROUGH */
	case -1:
		goto out;
	}
	if ((hash = dir_hash(d, password)) == NULL)
		goto out;
	if (dir_run(d, "INSERT INTO users(address, domain, password) VALUES (?, ?, ?)",
		    3, a, dir_domain_of(a), hash) >= 0)
		rc = 0;
	else if (d->rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		dir_seterr(d, "user %s already exists", a);
	else if (d->rc == SQLITE_CONSTRAINT_FOREIGNKEY)
		dir_seterr(d, "unknown domain %s", dir_domain_of(a));
out:
	free(hash);
	free(a);
	return rc;
}

int
directory_user_del(struct directory *d, const char *address)
{
	char *a = dir_lowdup(address), show[80];
	int n = dir_run(d, "DELETE FROM users WHERE address = ?", 1, a);

	if (n == 0)
		dir_seterr(d, "no such user %s", dir_show(a, show, sizeof(show)));
	free(a);
	return n > 0 ? 0 : -1;
}

int
directory_user_list(struct directory *d, void (*fn)(const char *address, void *arg), void *arg)
{
	return dir_each(d, fn, NULL, arg, "SELECT address FROM users ORDER BY address", 0);
}

int
directory_user_exists(struct directory *d, const char *address)
{
	char *a = dir_lowdup(address);
	int r = dir_int(d, "SELECT EXISTS(SELECT 1 FROM users WHERE address = ?)", 1, a);

	free(a);
	return r;
}

/* ---- aliases ---- */

/* A checked target of alias a: local ones lower-cased whole. */
static char *
dir_target(struct directory *d, const char *alias, const char *target)
{
	char *t = dir_address(d, target, 0, 1);
	int local;

	if (t == NULL)
		return NULL;
	if ((local = dir_is_local(d, dir_domain_of(t))) < 0) {
		free(t);
		return NULL;
	}
	if (local)
		dir_lower(t);
	if (strcmp(t, alias) == 0) {
		dir_seterr(d, "alias %s cannot point to itself", alias);
		free(t);
		return NULL;
	}
	return t;
}

static int
dir_alias_insert(struct directory *d, const char *a, char **t, int n)
{
	if (dir_exec(d, "BEGIN IMMEDIATE") != 0)
		return -1;
	for (int i = 0; i < n; i++) {
		if (dir_run(d, "INSERT OR IGNORE INTO aliases(alias, domain, target) VALUES (?, ?, ?)",
			    3, a, dir_domain_of(a), t[i]) < 0) {
			if (d->rc == SQLITE_CONSTRAINT_FOREIGNKEY)
				dir_seterr(d, "unknown domain %s", dir_domain_of(a));
			dir_rollback(d);
			return -1;
		}
	}
	if (dir_exec(d, "COMMIT") != 0) {
		dir_rollback(d);
		return -1;
	}
	return 0;
}

int
directory_alias_add(struct directory *d, const char *alias, const char *const *targets, int ntargets)
{
	char *a, **t;
	int i, rc = -1;

	if ((a = dir_address(d, alias, 1, 0)) == NULL)
		return -1;
	if (ntargets < 1) {
		dir_seterr(d, "alias %s needs at least one target", a);
		free(a);
		return -1;
	}
	t = xcalloc(ntargets, sizeof(*t));
	if (dir_need_domain(d, dir_domain_of(a)) != 0)
		goto out;
	for (i = 0; i < ntargets; i++)
		if ((t[i] = dir_target(d, a, targets[i])) == NULL)
			goto out;
	rc = dir_alias_insert(d, a, t, ntargets);
out:
	for (i = 0; i < ntargets; i++)
		free(t[i]);
	free(t);
	free(a);
	return rc;
}

int
directory_alias_del(struct directory *d, const char *alias)
{
	char *a = dir_lowdup(alias), show[80];
	int n = dir_run(d, "DELETE FROM aliases WHERE alias = ?", 1, a);

	if (n == 0)
		dir_seterr(d, "no such alias %s", dir_show(a, show, sizeof(show)));
	free(a);
	return n > 0 ? 0 : -1;
}

int
directory_alias_list(struct directory *d, void (*fn)(const char *alias, const char *target, void *arg), void *arg)
{
	return dir_each(d, NULL, fn, arg,
			"SELECT alias, target FROM aliases ORDER BY alias, rowid", 0);
}

/* ---- recipient check and expansion ---- */

enum dir_rcpt
directory_rcpt_check(struct directory *d, const char *address)
{
	char *a = dir_lowdup(address), *at = strrchr(a, '@');
	enum dir_rcpt res = DIR_RCPT_TEMPFAIL;
	int r;

	if (at == NULL) {
		res = DIR_RCPT_NOT_LOCAL;
		goto out;
	}
	if ((r = dir_is_local(d, at + 1)) <= 0) {
		res = r == 0 ? DIR_RCPT_NOT_LOCAL : DIR_RCPT_TEMPFAIL;
		goto out;
	}
	if (at == a) {		/* "@domain" names the catch-all, nobody's mailbox */
		res = DIR_RCPT_UNKNOWN;
		goto out;
	}
	/* at runs to the end of a: it is the catch-all's name "@domain". */
	r = dir_int(d, "SELECT EXISTS(SELECT 1 FROM users WHERE address = ?1)"
		    " OR EXISTS(SELECT 1 FROM aliases WHERE alias = ?1)"
		    " OR EXISTS(SELECT 1 FROM aliases WHERE alias = ?2)", 2, a, at);
	if (r >= 0)
		res = r ? DIR_RCPT_LOCAL : DIR_RCPT_UNKNOWN;
out:
	free(a);
	return res;
}

struct dir_expand {
	struct directory *d;
	void (*fn)(const char *dest, int is_local, void *arg);
	void *arg;
	char **seen;
	size_t nseen;
	int count;
};

/* 1 when key was met before in this expansion, else remembers it. */
static int
dir_seen(struct dir_expand *x, const char *key)
{
	for (size_t i = 0; i < x->nseen; i++)
		if (strcmp(x->seen[i], key) == 0)
			return 1;
	x->seen = xrealloc(x->seen, (x->nseen + 1) * sizeof(*x->seen));
	x->seen[x->nseen++] = xstrdup(key);
	return 0;
}

static void
dir_emit(struct dir_expand *x, const char *dest, int is_local)
{
	if (x->fn != NULL)
		x->fn(dest, is_local, x->arg);
	x->count++;
}

static int dir_expand_one(struct dir_expand *x, const char *address, int depth);

/* The targets of a local name that is no user: its alias, else the
 * domain's catch-all (followed once per expansion). */
static int
dir_expand_alias(struct dir_expand *x, const char *key, int depth)
{
	const char *catchall = strrchr(key, '@');
	char **t;
	int n, rc = 0;

	n = dir_strings(x->d, &t, "SELECT target FROM aliases WHERE alias = ? ORDER BY rowid", 1, key);
	if (n == 0 && !dir_seen(x, catchall))
		n = dir_strings(x->d, &t, "SELECT target FROM aliases WHERE alias = ? ORDER BY rowid",
				1, catchall);
	for (int i = 0; i < n && rc == 0; i++)
		rc = dir_expand_one(x, t[i], depth + 1);
	dir_strings_free(t);
	return n < 0 ? -1 : rc;
}

static int
dir_expand_one(struct dir_expand *x, const char *address, int depth)
{
	char *key = dir_lowdup(address), *at = strrchr(key, '@'), show[80];
	int r, rc = -1;

	if (at == NULL || at == key || dir_seen(x, key)) {
		rc = 0;
		goto out;
	}
	if (depth > DIR_EXPAND_DEPTH) {
		dir_seterr(x->d, "aliases nested deeper than %d at %s",
			   DIR_EXPAND_DEPTH, dir_show(address, show, sizeof(show)));
		goto out;
	}
	if ((r = dir_is_local(x->d, at + 1)) < 0)
		goto out;
	if (r == 0) {
		/* Foreign: its local part is the foreign host's business. */
		char *dest = xstrdup(address);

		dir_lower(strrchr(dest, '@'));
		dir_emit(x, dest, 0);
		free(dest);
		rc = 0;
		goto out;
	}
	if ((r = dir_int(x->d, "SELECT EXISTS(SELECT 1 FROM users WHERE address = ?)", 1, key)) < 0)
		goto out;
	if (r == 1) {
		dir_emit(x, key, 1);
		rc = 0;
	} else {
		rc = dir_expand_alias(x, key, depth);
	}
out:
	free(key);
	return rc;
}

int
directory_expand(struct directory *d, const char *address,
		 void (*fn)(const char *dest, int is_local, void *arg), void *arg)
{
	struct dir_expand x = { .d = d, .fn = fn, .arg = arg };
	int rc = dir_expand_one(&x, address, 0);

	for (size_t i = 0; i < x.nseen; i++)
		free(x.seen[i]);
	free(x.seen);
	return rc < 0 ? -1 : x.count;
}
