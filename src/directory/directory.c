/*
 * directory: the organisation's domains, users, aliases, catch-alls and the
 * backup's relay recipient lists, in SQLite (data_dir/directory.db). The
 * server and the CLI use the same file at once, so it runs in WAL mode with
 * a busy timeout, and every check-then-write that matters is backed by a
 * constraint in the schema.
 *
 * One struct directory serves every thread: each thread that uses it gets
 * its own SQLite connection on first use (a pthread key), closed when the
 * thread exits or at directory_close. Errors are kept on the connection,
 * so directory_error() is the calling thread's own.
 *
 * Local addresses are stored lower-cased, local part included, so every
 * lookup is an exact match. Foreign alias targets keep the case of their
 * local part (it belongs to the foreign host) and lower-case the domain.
 *
 * This file: opening the database and its schema, the per-thread
 * connections, the address checks, domains, users, aliases. The other
 * topics have their own files: directory_rcpt.c (recipient resolution:
 * RCPT lookups, expansion, subaddressing, loops, postmaster),
 * directory_sql.c (statements and errors), directory_passwd.c (password
 * hashes), directory_relay.c (the backup's recipient lists);
 * directory_int.h is what they share.
 *
 * Public: directory_open, directory_close, directory_error,
 * directory_error_is_temp, directory_set_recipient_delimiter,
 * directory_domain_*, directory_user_add, directory_user_del,
 * directory_user_list, directory_user_exists, directory_alias_*.
 * Module-internal: dir_conn, dir_delim, dir_lower, dir_lowdup, dir_domain,
 * dir_address, dir_domain_of, dir_is_local.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "directory/directory_int.h"
#include "util/xalloc.h"

#define DIR_SCHEMA_VERSION	3
#define DIR_BUSY_MS		5000
#define DIR_LOCAL_MAX		64
#define DIR_DOMAIN_MAX		255
#define DIR_LABEL_MAX		63

static const char dir_schema[] =
	"CREATE TABLE IF NOT EXISTS domains ("
	" name TEXT PRIMARY KEY NOT NULL);"
	"CREATE TABLE IF NOT EXISTS users ("
	" address TEXT PRIMARY KEY NOT NULL,"
	" domain TEXT NOT NULL REFERENCES domains(name),"
	" password TEXT NOT NULL,"
	" quota INTEGER,"
	" max_messages INTEGER,"      /* a day on submission; NULL: [submission] default */
	" max_recipients INTEGER,"
	" scram TEXT);"                /* SCRAM-SHA-256 secrets of the password, or NULL */
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
	" PRIMARY KEY (domain, address));"
	/* version 3: addresses a user may send as besides their own
	 * (`user allow-from`): "x@domain", or "@domain" for all of it */
	"CREATE TABLE IF NOT EXISTS sender_grants ("
	" user TEXT NOT NULL REFERENCES users(address) ON DELETE CASCADE,"
	" pattern TEXT NOT NULL,"
	" PRIMARY KEY (user, pattern));"
	/* version 3: what each user submitted per day (days since 1970, UTC) */
	"CREATE TABLE IF NOT EXISTS send_usage ("
	" user TEXT NOT NULL REFERENCES users(address) ON DELETE CASCADE,"
	" day INTEGER NOT NULL,"
	" messages INTEGER NOT NULL,"
	" recipients INTEGER NOT NULL,"
	" PRIMARY KEY (user, day));";

/* ---- addresses ---- */

void
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
dir_domain(struct dir_conn *c, const char *domain)
{
	char show[80];

	if (!dir_domain_valid(domain, strlen(domain))) {
		dir_seterr(c, "invalid domain %s", dir_show(domain, show, sizeof(show)));
		return NULL;
	}
	return dir_lowdup(domain);
}

char *
dir_address(struct dir_conn *c, const char *address, int catchall, int keep_case)
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
		dir_seterr(c, "invalid address %s: %s",
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

int
dir_is_local(struct dir_conn *c, const char *dom)
{
	return dir_int(c, "SELECT EXISTS(SELECT 1 FROM domains WHERE name = ?)", 1, dom);
}

static int
dir_need_domain(struct dir_conn *c, const char *dom)
{
	int r = dir_is_local(c, dom);

	if (r == 0)
		dir_seterr(c, "unknown domain %s", dom);
	return r == 1 ? 0 : -1;
}

/* ---- open, close, the per-thread connections ---- */

/* Why the calling thread has no connection to a handle. */
static __thread char dir_open_err[DIR_ERR_MAX];

static int
dir_setup(struct dir_conn *c, int create)
{
	char *sql;
	int version, rc;

	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, DIR_BUSY_MS);
	if (dir_exec(c, "PRAGMA foreign_keys=ON") != 0)
		return -1;
	/* WAL is a property of the file: set once, by the first opener. */
	if (!create)
		return 0;
	if (dir_exec(c, "PRAGMA journal_mode=WAL") != 0)
		return -1;
	if ((version = dir_int(c, "PRAGMA user_version", 0)) < 0)
		return -1;
	if (version > DIR_SCHEMA_VERSION) {
		dir_seterr(c, "schema version %d is newer than this tandem (%d)",
			   version, DIR_SCHEMA_VERSION);
		return -1;
	}
	if (version == DIR_SCHEMA_VERSION)
		return 0;
	if (dir_exec(c, "BEGIN IMMEDIATE") != 0)
		return -1;
	/* another opener may have upgraded it meanwhile */
	if ((version = dir_int(c, "PRAGMA user_version", 0)) < 0 ||
	    version == DIR_SCHEMA_VERSION) {
		dir_rollback(c);
		return version < 0 ? -1 : 0;
	}
	sql = xasprintf("PRAGMA user_version=%d", DIR_SCHEMA_VERSION);
	/* version 1 lacked users.quota (NULL: [mailbox] default_quota),
	 * versions 1 and 2 the sending limits, sender_grants and send_usage
	 * (the schema's IF NOT EXISTS adds the tables) */
	rc = version == 1 ? dir_exec(c, "ALTER TABLE users ADD COLUMN quota INTEGER") : 0;
	if (rc == 0 && version >= 1 && version < 3)
		rc = dir_exec(c, "ALTER TABLE users ADD COLUMN max_messages INTEGER;"
			      "ALTER TABLE users ADD COLUMN max_recipients INTEGER;"
			      "ALTER TABLE users ADD COLUMN scram TEXT");
	if (rc == 0)
		rc = dir_exec(c, dir_schema);
	if (rc == 0)
		rc = dir_exec(c, sql);
	if (rc == 0)
		rc = dir_exec(c, "COMMIT");
	if (rc != 0)
		dir_rollback(c);
	free(sql);
	return rc;
}

static void
dir_conn_free(struct dir_conn *c)
{
	dir_cache_free(c);
	sqlite3_close_v2(c->db);
	free(c->dummy_hash);
	free(c);
}

/* A new connection, not yet the thread's: NULL with dir_open_err set. */
static struct dir_conn *
dir_conn_open(struct directory *d, int create)
{
	struct dir_conn *c = xcalloc(1, sizeof(*c));
	int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
	int rc;

	c->dir = d;
	rc = sqlite3_open_v2(d->path, &c->db, flags, NULL);
	if (rc != SQLITE_OK) {
		snprintf(dir_open_err, sizeof(dir_open_err), "%s: %s", d->path,
			 c->db != NULL ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
	} else if (dir_setup(c, create) != 0) {
		snprintf(dir_open_err, sizeof(dir_open_err), "%s: %s", d->path, c->err);
		rc = -1;
	}
	if (rc != SQLITE_OK) {
		dir_conn_free(c);
		return NULL;
	}
	return c;
}

static void
dir_conn_link(struct directory *d, struct dir_conn *c)
{
	pthread_mutex_lock(&d->mu);
	c->next = d->conns;
	d->conns = c;
	pthread_mutex_unlock(&d->mu);
	pthread_setspecific(d->key, c);
}

/* The key's destructor: a thread that used the handle exits. */
static void
dir_conn_exit(void *arg)
{
	struct dir_conn *c = arg;
	struct directory *d = c->dir;

	pthread_mutex_lock(&d->mu);
	for (struct dir_conn **p = &d->conns; *p != NULL; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			break;
		}
	}
	pthread_mutex_unlock(&d->mu);
	dir_conn_free(c);
}

struct dir_conn *
dir_conn(struct directory *d)
{
	struct dir_conn *c = pthread_getspecific(d->key);

	if (c == NULL && (c = dir_conn_open(d, 0)) != NULL)
		dir_conn_link(d, c);
	return c;
}

struct directory *
directory_open(const char *data_dir, char *err, size_t errlen)
{
	struct directory *d;
	struct dir_conn *c;
	int fd;

	if (!sqlite3_threadsafe()) {
		snprintf(err, errlen, "SQLite was built without thread support");
		return NULL;
	}
	d = xcalloc(1, sizeof(*d));
	d->path = xasprintf("%s/directory.db", data_dir);
	strcpy(d->delim, "+");
	/* Created here so the password hashes are never world-readable; SQLite
	 * gives its -wal and -shm files the mode of the database. */
	fd = open(d->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd >= 0)
		close(fd);
	if ((c = dir_conn_open(d, 1)) == NULL) {
		snprintf(err, errlen, "%s", dir_open_err);
		free(d->path);
		free(d);
		return NULL;
	}
	if (pthread_key_create(&d->key, dir_conn_exit) != 0) {
		snprintf(err, errlen, "%s: %s", d->path, strerror(errno));
		dir_conn_free(c);
		free(d->path);
		free(d);
		return NULL;
	}
	pthread_mutex_init(&d->mu, NULL);
	dir_conn_link(d, c);
	return d;
}

void
directory_close(struct directory **dp)
{
	struct directory *d = dp != NULL ? *dp : NULL;

	if (d == NULL)
		return;
	/* First the key: a thread that exits from now on leaves the
	 * connection it had to the loop below. */
	pthread_key_delete(d->key);
	while (d->conns != NULL) {
		struct dir_conn *c = d->conns;

		d->conns = c->next;
		dir_conn_free(c);
	}
	pthread_mutex_destroy(&d->mu);
	free(d->path);
	free(d);
	*dp = NULL;
}

const char *
directory_error(struct directory *d)
{
	struct dir_conn *c = pthread_getspecific(d->key);

	return c != NULL ? c->err : dir_open_err;
}

int
directory_error_is_temp(struct directory *d)
{
	struct dir_conn *c = pthread_getspecific(d->key);

	return c != NULL ? c->temp : 1;
}

int
directory_set_recipient_delimiter(struct directory *d, const char *delim, const char **error_r)
{
	size_t len = delim != NULL ? strlen(delim) : 0;
	const char *dummy;

	if (error_r == NULL)
		error_r = &dummy;
	if (len > DIR_DELIM_MAX) {
		*error_r = "recipient delimiter longer than 8 characters";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		/* Characters an unquoted local part may hold, less the dot
		 * (it separates atoms) and 8-bit bytes (part of a character). */
		unsigned char ch = delim[i];

		if (ch >= 0x80 || ch == '.' || !dir_local_char(ch)) {
			*error_r = "recipient delimiter may only hold characters of a local part "
				   "(such as + - _ =), not dots, spaces or @";
			return -1;
		}
	}
	pthread_mutex_lock(&d->mu);
	memcpy(d->delim, len > 0 ? delim : "", len + 1);
	pthread_mutex_unlock(&d->mu);
	return 0;
}

void
dir_delim(struct directory *d, char *buf)
{
	pthread_mutex_lock(&d->mu);
	memcpy(buf, d->delim, sizeof(d->delim));
	pthread_mutex_unlock(&d->mu);
}

/* ---- domains ---- */

int
directory_domain_add(struct directory *d, const char *domain)
{
	struct dir_conn *c = dir_conn(d);
	char *dom;
	int rc = -1;

	if (c == NULL || (dom = dir_domain(c, domain)) == NULL)
		return -1;
	if (dir_run(c, "INSERT INTO domains(name) VALUES (?)", 1, dom) >= 0)
		rc = 0;
	else if (c->rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		dir_seterr(c, "domain %s already exists", dom);
	free(dom);
	return rc;
}

int
directory_domain_del(struct directory *d, const char *domain)
{
	struct dir_conn *c = dir_conn(d);
	char *dom, show[80];
	int users, aliases, rc = -1;

	if (c == NULL)
		return -1;
	dom = dir_lowdup(domain);
	users = dir_int(c, "SELECT count(*) FROM users WHERE domain = ?", 1, dom);
	aliases = dir_int(c, "SELECT count(DISTINCT alias) FROM aliases WHERE domain = ?", 1, dom);
	if (users < 0 || aliases < 0)
		goto out;
	if (users > 0 || aliases > 0) {
		dir_seterr(c, "domain %s still has %d user%s and %d alias%s; delete them first",
			   dom, users, users == 1 ? "" : "s", aliases, aliases == 1 ? "" : "es");
		goto out;
	}
	switch (dir_run(c, "DELETE FROM domains WHERE name = ?", 1, dom)) {
	case -1:
		break;
	case 0:
		dir_seterr(c, "unknown domain %s", dir_show(dom, show, sizeof(show)));
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
	struct dir_conn *c = dir_conn(d);

	if (c == NULL)
		return -1;
	return dir_each(c, fn, NULL, arg, "SELECT name FROM domains ORDER BY name", 0);
}

int
directory_domain_exists(struct directory *d, const char *domain)
{
	struct dir_conn *c = dir_conn(d);
	char *dom;
	int r;

	if (c == NULL)
		return -1;
	dom = dir_lowdup(domain);
	r = dir_is_local(c, dom);
	free(dom);
	return r;
}

/* ---- users ---- */

int
directory_user_add(struct directory *d, const char *address, const char *password)
{
	struct dir_conn *c = dir_conn(d);
	char *a, *hash = NULL, *scram = NULL;
	int rc = -1;

	if (c == NULL || (a = dir_address(c, address, 0, 0)) == NULL)
		return -1;
	if (dir_need_domain(c, dir_domain_of(a)) != 0)
		goto out;
	switch (directory_user_exists(d, a)) {
	case 1:
		dir_seterr(c, "user %s already exists", a);
		/* FALLTHROUGH */
	case -1:
		goto out;
	}
	if ((hash = dir_hash(c, password)) == NULL || (scram = dir_scram(c, password)) == NULL)
		goto out;
	if (dir_run(c, "INSERT INTO users(address, domain, password, scram) VALUES (?, ?, ?, ?)",
		    4, a, dir_domain_of(a), hash, scram) >= 0)
		rc = 0;
	else if (c->rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		dir_seterr(c, "user %s already exists", a);
	else if (c->rc == SQLITE_CONSTRAINT_FOREIGNKEY)
		dir_seterr(c, "unknown domain %s", dir_domain_of(a));
out:
	free(hash);
	free(scram);
	free(a);
	return rc;
}

int
directory_user_del(struct directory *d, const char *address)
{
	struct dir_conn *c = dir_conn(d);
	char *a, show[80];
	int n;

	if (c == NULL)
		return -1;
	a = dir_lowdup(address);
	n = dir_run(c, "DELETE FROM users WHERE address = ?", 1, a);
	if (n == 0)
		dir_seterr(c, "no such user %s", dir_show(a, show, sizeof(show)));
	free(a);
	return n > 0 ? 0 : -1;
}

int
directory_user_list(struct directory *d, void (*fn)(const char *address, void *arg), void *arg)
{
	struct dir_conn *c = dir_conn(d);

	if (c == NULL)
		return -1;
	return dir_each(c, fn, NULL, arg, "SELECT address FROM users ORDER BY address", 0);
}

int
directory_user_exists(struct directory *d, const char *address)
{
	struct dir_conn *c = dir_conn(d);
	char *a;
	int r;

	if (c == NULL)
		return -1;
	a = dir_lowdup(address);
	r = dir_int(c, "SELECT EXISTS(SELECT 1 FROM users WHERE address = ?)", 1, a);
	free(a);
	return r;
}

/* ---- aliases ---- */

/* A checked target of alias a: local ones lower-cased whole. */
static char *
dir_target(struct dir_conn *c, const char *alias, const char *target)
{
	char *t = dir_address(c, target, 0, 1);
	int local;

	if (t == NULL)
		return NULL;
	if ((local = dir_is_local(c, dir_domain_of(t))) < 0) {
		free(t);
		return NULL;
	}
	if (local)
		dir_lower(t);
	if (strcmp(t, alias) == 0) {
		dir_seterr(c, "alias %s cannot point to itself", alias);
		free(t);
		return NULL;
	}
	return t;
}

/* Inserts the targets and refuses, in the same transaction, what would
 * make a loop: checked against the rows as they will be, so two aliases
 * added at once by two admins cannot make one either (the second waits
 * for the first's write lock). */
static int
dir_alias_insert(struct dir_conn *c, const char *a, char **t, int n)
{
	if (dir_exec(c, "BEGIN IMMEDIATE") != 0)
		return -1;
	for (int i = 0; i < n; i++) {
		if (dir_run(c, "INSERT OR IGNORE INTO aliases(alias, domain, target) VALUES (?, ?, ?)",
			    3, a, dir_domain_of(a), t[i]) < 0) {
			if (c->rc == SQLITE_CONSTRAINT_FOREIGNKEY)
				dir_seterr(c, "unknown domain %s", dir_domain_of(a));
			dir_rollback(c);
			return -1;
		}
	}
	if (dir_alias_loop_check(c, a) != 0 || dir_exec(c, "COMMIT") != 0) {
		dir_rollback(c);
		return -1;
	}
	return 0;
}

int
directory_alias_add(struct directory *d, const char *alias, const char *const *targets, int ntargets)
{
	struct dir_conn *c = dir_conn(d);
	char *a, **t;
	int i, rc = -1;

	if (c == NULL || (a = dir_address(c, alias, 1, 0)) == NULL)
		return -1;
	if (ntargets < 1) {
		dir_seterr(c, "alias %s needs at least one target", a);
		free(a);
		return -1;
	}
	t = xcalloc(ntargets, sizeof(*t));
	if (dir_need_domain(c, dir_domain_of(a)) != 0)
		goto out;
	for (i = 0; i < ntargets; i++)
		if ((t[i] = dir_target(c, a, targets[i])) == NULL)
			goto out;
	rc = dir_alias_insert(c, a, t, ntargets);
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
	struct dir_conn *c = dir_conn(d);
	char *a, show[80];
	int n;

	if (c == NULL)
		return -1;
	a = dir_lowdup(alias);
	n = dir_run(c, "DELETE FROM aliases WHERE alias = ?", 1, a);
	if (n == 0)
		dir_seterr(c, "no such alias %s", dir_show(a, show, sizeof(show)));
	free(a);
	return n > 0 ? 0 : -1;
}

int
directory_alias_list(struct directory *d, void (*fn)(const char *alias, const char *target, void *arg), void *arg)
{
	struct dir_conn *c = dir_conn(d);

	if (c == NULL)
		return -1;
	return dir_each(c, NULL, fn, arg,
			"SELECT alias, target FROM aliases ORDER BY alias, rowid", 0);
}
