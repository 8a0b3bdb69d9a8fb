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
 * Public: directory_open, directory_close, directory_error,
 * directory_error_is_temp, directory_domain_*, directory_user_*,
 * directory_alias_*, directory_rcpt_check, directory_expand,
 * directory_recipients_load, directory_recipients_clear,
 * directory_recipients_list, directory_relay_check.
 */
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "directory/directory.h"
#include "util/xalloc.h"

#define DIR_SCHEMA_VERSION	1
#define DIR_BUSY_MS		5000
#define DIR_EXPAND_DEPTH	10
#define DIR_LOCAL_MAX		64
#define DIR_DOMAIN_MAX		255
#define DIR_LABEL_MAX		63
#define DIR_HASH_MAX		512

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

/* ---- errors and statements ---- */

static void dir_seterr(struct directory *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
dir_seterr(struct directory *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->err, sizeof(d->err), fmt, ap);
	va_end(ap);
	d->temp = 0;
	d->rc = SQLITE_OK;
}

/* A failure of the database itself (locked, I/O, full): -1. */
static int
dir_dberr(struct directory *d)
{
	d->rc = sqlite3_extended_errcode(d->db);
	snprintf(d->err, sizeof(d->err), "database error: %s", sqlite3_errmsg(d->db));
	d->temp = 1;
	return -1;
}

/* User input quoted in messages: controls made visible, length bounded. */
static const char *
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

static int
dir_exec(struct directory *d, const char *sql)
{
	if (sqlite3_exec(d->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return dir_dberr(d);
	return 0;
}

static void
dir_rollback(struct directory *d)
{
	/* Keeps the message of the failure that made us roll back. */
	sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Done with a statement from dir_vprepare: reset and keep it when it is
 * cached, finalize it otherwise. */
static void
dir_finish(struct directory *d, sqlite3_stmt *st)
{
	if (st == NULL)
		return;
	for (int i = 0; i < DIR_STMT_CACHE; i++) {
		if (d->cache[i].st == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			d->cache[i].busy = 0;
			return;
		}
	}
	sqlite3_finalize(st);
}

/* Prepare sql and bind n text arguments, in order, from ap. */
static sqlite3_stmt *
dir_vprepare(struct directory *d, const char *sql, int n, va_list ap)
{
	sqlite3_stmt *st = NULL;
	int slot = -1;

	for (int i = 0; i < DIR_STMT_CACHE && st == NULL; i++) {
		if (d->cache[i].sql == sql && !d->cache[i].busy) {
			st = d->cache[i].st;
			d->cache[i].busy = 1;
		} else if (d->cache[i].sql == NULL && slot < 0) {
			slot = i;
		}
	}
	if (st == NULL) {
		if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK) {
			dir_dberr(d);
			return NULL;
		}
		if (slot >= 0) {
			d->cache[slot].sql = sql;
			d->cache[slot].st = st;
			d->cache[slot].busy = 1;
		}
	}
	for (int i = 1; i <= n; i++) {
		const char *s = va_arg(ap, const char *);

		if (sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
			dir_dberr(d);
			dir_finish(d, st);
			return NULL;
		}
	}
	return st;
}

/* A statement without rows: the number of rows changed, or -1. */
static int
dir_run(struct directory *d, const char *sql, int n, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	int rc;

	va_start(ap, n);
	st = dir_vprepare(d, sql, n, ap);
	va_end(ap);
	if (st == NULL)
		return -1;
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		dir_dberr(d);
		dir_finish(d, st);
		return -1;
	}
	dir_finish(d, st);
	return sqlite3_changes(d->db);
}

/* The first column of the first row as a (non-negative) int, 0 without
 * rows, -1 on error. */
static int
dir_int(struct directory *d, const char *sql, int n, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	int rc, v = 0;

	va_start(ap, n);
	st = dir_vprepare(d, sql, n, ap);
	va_end(ap);
	if (st == NULL)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	else if (rc != SQLITE_DONE)
		v = dir_dberr(d);
	dir_finish(d, st);
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
static int
dir_strings(struct directory *d, char ***v_r, const char *sql, int n, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	char **v = NULL;
	int rc, count = 0;

	va_start(ap, n);
	st = dir_vprepare(d, sql, n, ap);
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
		dir_dberr(d);
		count = -1;
	}
	dir_finish(d, st);
	*v_r = v;
	return count;
}

static void
dir_strings_free(char **v)
{
	for (char **p = v; p != NULL && *p != NULL; p++)
		free(*p);
	free(v);
}

/* Call fn for each row of a query with one or two text columns. */
static int
dir_each(struct directory *d, void (*fn1)(const char *, void *),
	 void (*fn2)(const char *, const char *, void *), void *arg,
	 const char *sql, int n, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	int rc;

	va_start(ap, n);
	st = dir_vprepare(d, sql, n, ap);
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
		dir_dberr(d);
	dir_finish(d, st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- addresses ---- */

static void
dir_lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s += 'a' - 'A';
}

static char *
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

static char *
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
static char *
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

static const char *
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

/* ---- passwords ---- */

/* crypt(3) of password with setting into a fresh string, or NULL. */
static char *
dir_crypt(const char *password, const char *setting)
{
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));
	char *h = crypt_rn(password, setting, cd, sizeof(*cd));
	char *out = NULL;

	if (h != NULL && h[0] != '*')
		out = xstrdup(h);
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return out;
}

static char *
dir_hash(struct directory *d, const char *password)
{
	char *salt, *hash;

	if (password == NULL || password[0] == '\0') {
		dir_seterr(d, "empty password");
		return NULL;
	}
	if (strlen(password) >= CRYPT_MAX_PASSPHRASE_SIZE) {
		dir_seterr(d, "password longer than %d characters", CRYPT_MAX_PASSPHRASE_SIZE - 1);
		return NULL;
	}
	salt = crypt_gensalt_ra("$y$", 0, NULL, 0);
	if (salt == NULL) {
		dir_seterr(d, "cannot make a password salt: %s", strerror(errno));
		return NULL;
	}
	hash = dir_crypt(password, salt);
	free(salt);
	if (hash == NULL)
		dir_seterr(d, "cannot hash the password with yescrypt");
	return hash;
}

static int
dir_equal(const char *a, const char *b)
{
	size_t len = strlen(a);
	volatile unsigned char diff = 0;

	if (len != strlen(b))
		return 0;
	for (size_t i = 0; i < len; i++)
		diff |= (unsigned char)a[i] ^ (unsigned char)b[i];
	return diff == 0;
}

/* Dovecot schemes that are crypt(3) formats under another name. */
static const char *const dir_crypt_schemes[] = {
	"CRYPT", "YESCRYPT", "SHA512-CRYPT", "SHA256-CRYPT", "BLF-CRYPT",
	"MD5-CRYPT", NULL
};

static int
dir_crypt_scheme(const char *name, size_t len)
{
	for (const char *const *p = dir_crypt_schemes; *p != NULL; p++)
		if (strlen(*p) == len && strncasecmp(name, *p, len) == 0)
			return 1;
	return 0;
}

static int
dir_hash_match(const char *stored, const char *password)
{
	const char *hash = stored, *end;
	char *h;
	int ok;

	if (stored[0] == '{') {
		end = strchr(stored, '}');
		/* {PLAIN} and friends: plain text is never stored here. */
		if (end == NULL || !dir_crypt_scheme(stored + 1, end - stored - 1))
			return 0;
		hash = end + 1;
	}
	/* "*" and "!" mark locked accounts in crypt(3) convention. */
	if (hash[0] == '\0' || hash[0] == '*' || hash[0] == '!')
		return 0;
	h = dir_crypt(password, hash);
	ok = h != NULL && dir_equal(h, hash);
	free(h);
	return ok;
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

/* Set the stored hash of an existing user. */
static int
dir_user_store(struct directory *d, const char *address, const char *hash)
{
	char *a = dir_lowdup(address), show[80];
	int n = dir_run(d, "UPDATE users SET password = ? WHERE address = ?", 2, hash, a);

	if (n == 0)
		dir_seterr(d, "no such user %s", dir_show(a, show, sizeof(show)));
	free(a);
	return n > 0 ? 0 : -1;
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
directory_user_passwd(struct directory *d, const char *address, const char *password)
{
	char *hash, show[80];
	int rc;

	switch (directory_user_exists(d, address)) {
	case 0:
		dir_seterr(d, "no such user %s", dir_show(address, show, sizeof(show)));
		/* FALLTHROUGH */
	case -1:
		return -1;
	}
	if ((hash = dir_hash(d, password)) == NULL)
		return -1;
	rc = dir_user_store(d, address, hash);
	free(hash);
	return rc;
}

int
directory_user_set_hash(struct directory *d, const char *address, const char *hash)
{
	size_t len = strlen(hash);

	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)hash[i] <= ' ' || hash[i] == 0x7f) {
			dir_seterr(d, "invalid password hash: space or control character");
			return -1;
		}
	}
	if (len == 0 || len >= DIR_HASH_MAX) {
		dir_seterr(d, "invalid password hash: %s", len ? "too long" : "empty");
		return -1;
	}
	return dir_user_store(d, address, hash);
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

int
directory_user_verify(struct directory *d, const char *address, const char *password)
{
	char *a = dir_lowdup(address), **hash;
	int n, ok = 0;

	n = dir_strings(d, &hash, "SELECT password FROM users WHERE address = ?", 1, a);
	free(a);
	if (n < 0)
		return -1;
	if (n > 0) {
		ok = dir_hash_match(hash[0], password);
	} else {
		if (d->dummy_hash == NULL)
			d->dummy_hash = dir_hash(d, "tandem: no such user");
		if (d->dummy_hash != NULL)
			dir_hash_match(d->dummy_hash, password);
	}
	dir_strings_free(hash);
	return ok;
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

/* ---- relay recipients (backup role) ---- */

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
