/*
 * test_directory: the directory module (domains, users, passwords, aliases,
 * catch-alls, expansion, relay recipient lists) on a fresh SQLite file in a
 * mkdtemp directory per test, and the `tandem domain|user|alias|recipients`
 * commands on top of it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <crypt.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cmd/cmd.h"
#include "directory/directory.h"
#include "directory/directory_int.h"

struct fx {
	char dir[64];
	struct directory *d;
};

struct strs {
	int n;
	char *v[64];
	int local[64];
};

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	char err[256];

	strcpy(fx->dir, "/tmp/tandem-test-dir-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	fx->d = directory_open(fx->dir, err, sizeof(err));
	assert_non_null(fx->d);
	assert_int_equal(directory_domain_add(fx->d, "example.test"), 0);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	directory_close(&fx->d);
	assert_null(fx->d);
	nftw(fx->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

static void
collect1(const char *s, void *arg)
{
	struct strs *x = arg;

	assert_true(x->n < 64);
	x->v[x->n++] = strdup(s);
}

static void
collect2(const char *a, const char *b, void *arg)
{
	struct strs *x = arg;
	char *s;

	assert_true(x->n < 64);
	assert_true(asprintf(&s, "%s=%s", a, b) > 0);
	x->v[x->n++] = s;
}

static void
collect_dest(const char *dest, int is_local, void *arg)
{
	struct strs *x = arg;

	assert_true(x->n < 64);
	x->local[x->n] = is_local;
	x->v[x->n++] = strdup(dest);
}

static void
strs_clear(struct strs *x)
{
	for (int i = 0; i < x->n; i++)
		free(x->v[i]);
	x->n = 0;
}

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
}

/* ---- sender grants (user allow-from) ---- */

static void
test_sender_grants(void **state)
{
	struct fx *fx = *state;
	struct directory *d = fx->d;
	struct strs x = { 0 };
	char path[128], err[256];
	sqlite3 *db;

	assert_int_equal(directory_user_add(d, "alice@example.test", "pw"), 0);
	assert_int_equal(directory_sender_allow(d, "Alice@example.test", "Info@Example.ORG"), 0);
	assert_int_equal(directory_sender_allow(d, "alice@example.test", "@example.net"), 0);
	assert_int_equal(directory_sender_allow(d, "alice@example.test", "@example.net"), 0);
	assert_int_equal(directory_sender_allow(d, "alice@example.test", "no-at"), -1);
	assert_int_equal(directory_sender_allow(d, "nobody@example.test", "x@example.org"), -1);
	assert_string_equal(directory_error(d), "no such user nobody@example.test");
	assert_int_equal(directory_sender_list(d, "alice@example.test", collect1, &x), 0);
	assert_int_equal(x.n, 2);
	assert_string_equal(x.v[0], "@example.net");
	assert_string_equal(x.v[1], "info@example.org");
	strs_clear(&x);
	assert_int_equal(directory_sender_granted(d, "alice@example.test", "info@example.org"), 1);
	assert_int_equal(directory_sender_granted(d, "alice@example.test", "INFO@example.org"), 1);
	assert_int_equal(directory_sender_granted(d, "alice@example.test", "anyone@example.net"), 1);
	assert_int_equal(directory_sender_granted(d, "alice@example.test", "info2@example.org"), 0);
	assert_int_equal(directory_sender_granted(d, "alice@example.test", "x@sub.example.net"), 0);
	assert_int_equal(directory_sender_granted(d, "bob@example.test", "info@example.org"), 0);
	assert_int_equal(directory_sender_disallow(d, "alice@example.test", "@example.net"), 0);
	assert_int_equal(directory_sender_disallow(d, "alice@example.test", "@example.net"), -1);
	assert_int_equal(directory_sender_granted(d, "alice@example.test", "anyone@example.net"), 0);
	/* the grants go with the user: a new alice starts without them */
	assert_int_equal(directory_user_del(d, "alice@example.test"), 0);
	assert_int_equal(directory_user_add(d, "alice@example.test", "pw"), 0);
	assert_int_equal(directory_sender_granted(d, "alice@example.test", "info@example.org"), 0);

	/* a version 2 directory (no sender_grants) gets the table on open */
	directory_close(&fx->d);
	snprintf(path, sizeof(path), "%s/directory.db", fx->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP TABLE sender_grants; DROP TABLE send_usage; "
				      "ALTER TABLE users DROP COLUMN max_messages; "
				      "ALTER TABLE users DROP COLUMN max_recipients; "
				      "ALTER TABLE users DROP COLUMN scram; "
				      "PRAGMA user_version=2", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	fx->d = directory_open(fx->dir, err, sizeof(err));
	assert_non_null(fx->d);
	assert_int_equal(directory_sender_allow(fx->d, "alice@example.test", "@example.net"), 0);
	assert_int_equal(directory_sender_granted(fx->d, "alice@example.test", "a@example.net"), 1);
	assert_int_equal(directory_user_exists(fx->d, "alice@example.test"), 1);
	assert_int_equal(directory_user_limits_set(fx->d, "alice@example.test", 3, -1), 0);
	assert_int_equal(directory_send_count(fx->d, "alice@example.test", 20000, 1, 1), 0);
}

/* ---- sending limits and usage (submission) ---- */

static void
test_send_limits(void **state)
{
	struct directory *d = ((struct fx *)*state)->d;
	long long m, r;

	assert_int_equal(directory_user_add(d, "alice@example.test", "pw"), 0);
	assert_int_equal(directory_user_limits_get(d, "alice@example.test", &m, &r), 0);
	assert_true(m == -1 && r == -1);            /* the [submission] defaults */
	assert_int_equal(directory_user_limits_set(d, "Alice@example.test", 5, 0), 0);
	assert_int_equal(directory_user_limits_get(d, "alice@example.test", &m, &r), 0);
	assert_true(m == 5 && r == 0);
	assert_int_equal(directory_user_limits_set(d, "nobody@example.test", 5, 0), -1);
	assert_string_equal(directory_error(d), "no such user nobody@example.test");

	assert_int_equal(directory_send_usage(d, "alice@example.test", 20000, &m, &r), 0);
	assert_true(m == 0 && r == 0);
	assert_int_equal(directory_send_count(d, "alice@example.test", 20000, 1, 3), 0);
	assert_int_equal(directory_send_count(d, "alice@example.test", 20000, 1, 2), 0);
	assert_int_equal(directory_send_usage(d, "alice@example.test", 20000, &m, &r), 0);
	assert_true(m == 2 && r == 5);
	/* another day counts from zero; a week later the old day is gone */
	assert_int_equal(directory_send_count(d, "alice@example.test", 20008, 1, 1), 0);
	assert_int_equal(directory_send_usage(d, "alice@example.test", 20000, &m, &r), 0);
	assert_true(m == 0 && r == 0);
	assert_int_equal(directory_send_usage(d, "alice@example.test", 20008, &m, &r), 0);
	assert_true(m == 1 && r == 1);
	/* and all of it goes with the user */
	assert_int_equal(directory_user_del(d, "alice@example.test"), 0);
	assert_int_equal(directory_user_add(d, "alice@example.test", "pw"), 0);
	assert_int_equal(directory_send_usage(d, "alice@example.test", 20008, &m, &r), 0);
	assert_true(m == 0 && r == 0);
	assert_int_equal(directory_user_limits_get(d, "alice@example.test", &m, &r), 0);
	assert_true(m == -1 && r == -1);
}

/* ---- domains ---- */

static void
test_domain_add_del_list(void **state)
{
	struct directory *d = ((struct fx *)*state)->d;
	struct strs x = { 0 };

	assert_int_equal(directory_domain_add(d, "Example.ORG"), 0);
	assert_int_equal(directory_domain_add(d, "a.example"), 0);
	assert_int_equal(directory_domain_add(d, "example.org"), -1);
	assert_string_equal(directory_error(d), "domain example.org already exists");
	assert_false(directory_error_is_temp(d));
	assert_int_equal(directory_domain_add(d, "bad domain.test"), -1);
	assert_int_equal(directory_domain_add(d, "exa..mple"), -1);
	assert_int_equal(directory_domain_add(d, "-x.test"), -1);
	assert_int_equal(directory_domain_add(d, "x-.test"), -1);
	assert_int_equal(directory_domain_add(d, "trailing.dot."), -1);
	assert_int_equal(directory_domain_add(d, ""), -1);

	assert_int_equal(directory_domain_list(d, collect1, &x), 0);
	assert_int_equal(x.n, 3);
	assert_string_equal(x.v[0], "a.example");
	assert_string_equal(x.v[1], "example.org");
	assert_string_equal(x.v[2], "example.test");
	strs_clear(&x);

	assert_int_equal(directory_domain_exists(d, "EXAMPLE.org"), 1);
	assert_int_equal(directory_domain_exists(d, "nope.test"), 0);
	assert_int_equal(directory_domain_del(d, "nope.test"), -1);
	assert_string_equal(directory_error(d), "unknown domain nope.test");
	assert_int_equal(directory_domain_del(d, "example.ORG"), 0);
	assert_int_equal(directory_domain_exists(d, "example.org"), 0);
}

static void
test_domain_del_in_use(void **state)
{
	struct directory *d = ((struct fx *)*state)->d;
	const char *t[] = { "alice@example.test" };

	assert_int_equal(directory_user_add(d, "alice@example.test", "pw"), 0);
	assert_int_equal(directory_alias_add(d, "postmaster@example.test", t, 1), 0);
	assert_int_equal(directory_domain_del(d, "example.test"), -1);
	assert_string_equal(directory_error(d),
			    "domain example.test still has 1 user and 1 alias; delete them first");
	assert_int_equal(directory_user_del(d, "alice@example.test"), 0);
	assert_int_equal(directory_domain_del(d, "example.test"), -1);
	assert_int_equal(directory_alias_del(d, "postmaster@example.test"), 0);
	assert_int_equal(directory_domain_del(d, "example.test"), 0);
}

/* ---- users ---- */

static void
test_user_add_del_list(void **state)
{
	struct directory *d = ((struct fx *)*state)->d;
	struct strs x = { 0 };
	char long_local[100];

	assert_int_equal(directory_user_add(d, "bob@example.test", "pw"), 0);
	assert_int_equal(directory_user_add(d, "Alice@Example.TEST", "pw"), 0);
	assert_int_equal(directory_user_add(d, "ALICE@example.test", "pw"), -1);
	assert_string_equal(directory_error(d), "user alice@example.test already exists");
	assert_int_equal(directory_user_add(d, "carol@example.org", "pw"), -1);
	assert_string_equal(directory_error(d), "unknown domain example.org");
	assert_int_equal(directory_user_add(d, "carol@example.test", ""), -1);
	assert_string_equal(directory_error(d), "empty password");
	assert_int_equal(directory_user_exists(d, "carol@example.test"), 0);

	assert_int_equal(directory_user_add(d, "noat", "pw"), -1);
	assert_int_equal(directory_user_add(d, "@example.test", "pw"), -1);
	assert_int_equal(directory_user_add(d, "a b@example.test", "pw"), -1);
	assert_int_equal(directory_user_add(d, "a\r\n@example.test", "pw"), -1);
	assert_null(strchr(directory_error(d), '\n'));
	assert_int_equal(directory_user_add(d, "a<b>@example.test", "pw"), -1);
	assert_int_equal(directory_user_add(d, "a@b@example.test", "pw"), -1);
	memset(long_local, 'x', 65);
	strcpy(long_local + 65, "@example.test");
	assert_int_equal(directory_user_add(d, long_local, "pw"), -1);
	long_local[64] = '\0';
	strcat(long_local, "@example.test");
	assert_int_equal(directory_user_add(d, long_local, "pw"), 0);

	assert_int_equal(directory_user_list(d, collect1, &x), 0);
	assert_int_equal(x.n, 3);
	assert_string_equal(x.v[0], "alice@example.test");
	assert_string_equal(x.v[1], "bob@example.test");
	strs_clear(&x);

	assert_int_equal(directory_user_exists(d, "BOB@example.test"), 1);
	assert_int_equal(directory_user_del(d, "Bob@Example.Test"), 0);
	assert_int_equal(directory_user_exists(d, "bob@example.test"), 0);
	assert_int_equal(directory_user_del(d, "bob@example.test"), -1);
	assert_string_equal(directory_error(d), "no such user bob@example.test");
	assert_int_equal(directory_user_passwd(d, "bob@example.test", "pw"), -1);
	assert_string_equal(directory_error(d), "no such user bob@example.test");
}

static void
test_user_verify(void **state)
{
	struct directory *d = ((struct fx *)*state)->d;

	assert_int_equal(directory_user_add(d, "alice@example.test", "correct horse"), 0);
	assert_int_equal(directory_user_verify(d, "alice@example.test", "correct horse"), 1);
	assert_int_equal(directory_user_verify(d, "ALICE@example.test", "correct horse"), 1);
	assert_int_equal(directory_user_verify(d, "alice@example.test", "correct horsE"), 0);
	assert_int_equal(directory_user_verify(d, "alice@example.test", ""), 0);
	assert_int_equal(directory_user_verify(d, "nobody@example.test", "correct horse"), 0);

	assert_int_equal(directory_user_passwd(d, "alice@example.test", ""), -1);
	assert_int_equal(directory_user_passwd(d, "alice@example.test", "battery staple"), 0);
	assert_int_equal(directory_user_verify(d, "alice@example.test", "correct horse"), 0);
	assert_int_equal(directory_user_verify(d, "alice@example.test", "battery staple"), 1);
}

/* directory_user_hash gives auth the stored spelling and hash (its cache
 * key), and a new password a new hash. */
static void
test_user_hash(void **state)
{
	struct directory *d = ((struct fx *)*state)->d;
	char addr[DIR_ADDRESS_MAX], hash[512], first[512], tiny[8];

	assert_int_equal(directory_user_add(d, "alice@example.test", "correct horse"), 0);
	assert_int_equal(directory_user_hash(d, "ALICE@Example.TEST", addr, sizeof(addr), hash,
					     sizeof(hash)), 1);
	assert_string_equal(addr, "alice@example.test");
	assert_true(strncmp(hash, "$y$", 3) == 0);
	strcpy(first, hash);
	assert_int_equal(directory_user_hash(d, "nobody@example.test", addr, sizeof(addr), hash,
					     sizeof(hash)), 0);
	assert_int_equal(directory_user_hash(d, "alice@example.test", addr, sizeof(addr), tiny,
					     sizeof(tiny)), -1);
	assert_int_equal(directory_user_passwd(d, "alice@example.test", "battery staple"), 0);
	assert_int_equal(directory_user_hash(d, "alice@example.test", addr, sizeof(addr), hash,
					     sizeof(hash)), 1);
	assert_string_not_equal(hash, first);
}

static void
test_user_verify_schemes(void **state)
{
	struct directory *d = ((struct fx *)*state)->d;
	struct crypt_data cd;
	char sha512[256], buf[300];

	memset(&cd, 0, sizeof(cd));
	assert_non_null(crypt_rn("secret", "$6$saltsaltsalt$", &cd, sizeof(cd)));
	snprintf(sha512, sizeof(sha512), "%s", cd.output);
	assert_string_equal(strncmp(sha512, "$6$", 3) == 0 ? "ok" : sha512, "ok");

	assert_int_equal(directory_user_add(d, "bob@example.test", "whatever"), 0);
	snprintf(buf, sizeof(buf), "{SHA512-CRYPT}%s", sha512);
	assert_int_equal(directory_user_set_hash(d, "bob@example.test", buf), 0);
	assert_int_equal(directory_user_verify(d, "bob@example.test", "secret"), 1);
	assert_int_equal(directory_user_verify(d, "bob@example.test", "whatever"), 0);
	assert_int_equal(directory_user_verify(d, "bob@example.test", "Secret"), 0);

	snprintf(buf, sizeof(buf), "{sha512-crypt}%s", sha512);
	assert_int_equal(directory_user_set_hash(d, "bob@example.test", buf), 0);
	assert_int_equal(directory_user_verify(d, "bob@example.test", "secret"), 1);
	snprintf(buf, sizeof(buf), "{CRYPT}%s", sha512);
	assert_int_equal(directory_user_set_hash(d, "bob@example.test", buf), 0);
	assert_int_equal(directory_user_verify(d, "bob@example.test", "secret"), 1);
	assert_int_equal(directory_user_set_hash(d, "bob@example.test", sha512), 0);
	assert_int_equal(directory_user_verify(d, "bob@example.test", "secret"), 1);

	/* Plain text and unknown schemes never match, even when "equal". */
	assert_int_equal(directory_user_set_hash(d, "bob@example.test", "{PLAIN}secret"), 0);
	assert_int_equal(directory_user_verify(d, "bob@example.test", "secret"), 0);
	snprintf(buf, sizeof(buf), "{NOPE}%s", sha512);
	assert_int_equal(directory_user_set_hash(d, "bob@example.test", buf), 0);
	assert_int_equal(directory_user_verify(d, "bob@example.test", "secret"), 0);
	assert_int_equal(directory_user_set_hash(d, "bob@example.test", "{SHA512-CRYPT"), 0);
	assert_int_equal(directory_user_verify(d, "bob@example.test", "secret"), 0);
	snprintf(buf, sizeof(buf), "!%s", sha512);	/* locked account */
	assert_int_equal(directory_user_set_hash(d, "bob@example.test", buf), 0);
	assert_int_equal(directory_user_verify(d, "bob@example.test", "secret"), 0);

	assert_int_equal(directory_user_set_hash(d, "bob@example.test", ""), -1);
	assert_int_equal(directory_user_set_hash(d, "bob@example.test", "$6$a b"), -1);
	assert_int_equal(directory_user_set_hash(d, "nobody@example.test", sha512), -1);
	assert_string_equal(directory_error(d), "no such user nobody@example.test");
}

/* ---- aliases ---- */

static void
test_alias_add_del_list(void **state)
{
	struct directory *d = ((struct fx *)*state)->d;
	const char *t1[] = { "alice@example.test", "Bob@Foreign.Example" };
	const char *t2[] = { "ALICE@example.test", "carol@example.test" };
	const char *bad[] = { "not an address" };
	const char *self[] = { "Sales@example.test" };
	struct strs x = { 0 };

	/* alice exists: a catch-all to nobody would fall back to itself. */
	assert_int_equal(directory_user_add(d, "alice@example.test", "pw"), 0);
	assert_int_equal(directory_alias_add(d, "Sales@Example.test", t1, 2), 0);
	assert_int_equal(directory_alias_add(d, "sales@example.test", t2, 2), 0);
	assert_int_equal(directory_alias_add(d, "@example.test", t2, 1), 0);
	assert_int_equal(directory_alias_add(d, "info@example.org", t1, 1), -1);
	assert_string_equal(directory_error(d), "unknown domain example.org");
	assert_int_equal(directory_alias_add(d, "info@example.test", t1, 0), -1);
	assert_int_equal(directory_alias_add(d, "info@example.test", bad, 1), -1);
	assert_int_equal(directory_alias_add(d, "sales@example.test", self, 1), -1);
	assert_string_equal(directory_error(d), "alias sales@example.test cannot point to itself");
	assert_int_equal(directory_alias_add(d, "a b@example.test", t1, 1), -1);

	assert_int_equal(directory_alias_list(d, collect2, &x), 0);
	assert_int_equal(x.n, 4);
	assert_string_equal(x.v[0], "@example.test=alice@example.test");
	assert_string_equal(x.v[1], "sales@example.test=alice@example.test");
	assert_string_equal(x.v[2], "sales@example.test=Bob@foreign.example");
	assert_string_equal(x.v[3], "sales@example.test=carol@example.test");
	strs_clear(&x);

	assert_int_equal(directory_alias_del(d, "SALES@example.test"), 0);
	assert_int_equal(directory_alias_del(d, "sales@example.test"), -1);
	assert_string_equal(directory_error(d), "no such alias sales@example.test");
	assert_int_equal(directory_alias_del(d, "@example.test"), 0);
	assert_int_equal(directory_alias_list(d, collect2, &x), 0);
	assert_int_equal(x.n, 0);
}

/* ---- rcpt check ---- */

static void
test_rcpt_check(void **state)
{
	struct directory *d = ((struct fx *)*state)->d;
	const char *ta[] = { "alice@example.test" };

	assert_int_equal(directory_domain_add(d, "catch.test"), 0);
	assert_int_equal(directory_user_add(d, "alice@example.test", "pw"), 0);
	assert_int_equal(directory_alias_add(d, "postmaster@example.test", ta, 1), 0);
	assert_int_equal(directory_alias_add(d, "@catch.test", ta, 1), 0);

	assert_int_equal(directory_rcpt_check(d, "alice@example.test"), DIR_RCPT_LOCAL);
	assert_int_equal(directory_rcpt_check(d, "Alice@EXAMPLE.test"), DIR_RCPT_LOCAL);
	assert_int_equal(directory_rcpt_check(d, "postmaster@example.test"), DIR_RCPT_LOCAL);
	assert_int_equal(directory_rcpt_check(d, "anyone@catch.test"), DIR_RCPT_LOCAL);
	assert_int_equal(directory_rcpt_check(d, "bob@example.test"), DIR_RCPT_UNKNOWN);
	assert_int_equal(directory_rcpt_check(d, "@example.test"), DIR_RCPT_UNKNOWN);
	assert_int_equal(directory_rcpt_check(d, "alice@example.org"), DIR_RCPT_NOT_LOCAL);
	assert_int_equal(directory_rcpt_check(d, "alice"), DIR_RCPT_NOT_LOCAL);
	assert_int_equal(directory_rcpt_check(d, "x@catch.test.evil"), DIR_RCPT_NOT_LOCAL);
}

/* ---- expansion ---- */

static void
test_expand_nested(void **state)
{
	struct directory *d = ((struct fx *)*state)->d;
	const char *team[] = { "alice@example.test", "sub@example.test", "Carol@Foreign.Example" };
	const char *sub[] = { "bob@example.test", "ALICE@example.test", "carol@foreign.example",
			      "ghost@example.test" };
	struct strs x = { 0 };

	assert_int_equal(directory_user_add(d, "alice@example.test", "pw"), 0);
	assert_int_equal(directory_user_add(d, "bob@example.test", "pw"), 0);
	assert_int_equal(directory_alias_add(d, "team@example.test", team, 3), 0);
	assert_int_equal(directory_alias_add(d, "sub@example.test", sub, 4), 0);

	assert_int_equal(directory_expand(d, "Team@example.test", collect_dest, &x), 3);
	assert_int_equal(x.n, 3);
	assert_string_equal(x.v[0], "alice@example.test");
	assert_int_equal(x.local[0], 1);
	assert_string_equal(x.v[1], "bob@example.test");
	assert_int_equal(x.local[1], 1);
	/* Depth first: sub's copy of carol comes first, team's is a duplicate. */
	assert_string_equal(x.v[2], "carol@foreign.example");
	assert_int_equal(x.local[2], 0);
	strs_clear(&x);

	/* A user is its own final destination; nobody resolves to nothing. */
	assert_int_equal(directory_expand(d, "BOB@example.test", collect_dest, &x), 1);
	assert_string_equal(x.v[0], "bob@example.test");
	strs_clear(&x);
	assert_int_equal(directory_expand(d, "ghost@example.test", collect_dest, &x), 0);
	assert_int_equal(directory_expand(d, "nobody", collect_dest, &x), 0);
	assert_int_equal(x.n, 0);
	/* A foreign address is final as it is. */
	assert_int_equal(directory_expand(d, "Dan@ELSEWHERE.example", collect_dest, &x), 1);
	assert_string_equal(x.v[0], "Dan@elsewhere.example");
	assert_int_equal(x.local[0], 0);
	strs_clear(&x);
	/* fn may be NULL: count only. */
	assert_int_equal(directory_expand(d, "team@example.test", NULL, NULL), 3);
}

/* An alias row as an older tandem could have written it: no loop check. */
static void
raw_alias(struct fx *fx, const char *alias, const char *target)
{
	char path[128], *sql;
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/directory.db", fx->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sql = sqlite3_mprintf("INSERT INTO aliases(alias, domain, target) VALUES (%Q, %Q, %Q)",
			      alias, strrchr(alias, '@') + 1, target);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_free(sql);
	sqlite3_close(db);
}

static void
test_expand_loops(void **state)
{
	struct fx *fx = *state;
	struct directory *d = fx->d;
	struct strs x = { 0 };

	/* Loops left by an older version: a -> b -> a, c -> a, b, alice. */
	assert_int_equal(directory_user_add(d, "alice@example.test", "pw"), 0);
	raw_alias(fx, "a@example.test", "b@example.test");
	raw_alias(fx, "b@example.test", "a@example.test");
	/* a -> b -> a: terminates with nothing. */
	assert_int_equal(directory_expand(d, "a@example.test", collect_dest, &x), 0);
	assert_int_equal(directory_rcpt_check(d, "a@example.test"), DIR_RCPT_LOCAL);

	raw_alias(fx, "b@example.test", "c@example.test");
	raw_alias(fx, "c@example.test", "a@example.test");
	raw_alias(fx, "c@example.test", "b@example.test");
	raw_alias(fx, "c@example.test", "alice@example.test");
	assert_int_equal(directory_expand(d, "a@example.test", collect_dest, &x), 1);
	assert_int_equal(directory_expand(d, "c@example.test", collect_dest, &x), 1);
	assert_int_equal(x.n, 2);
	assert_string_equal(x.v[0], "alice@example.test");
	assert_string_equal(x.v[1], "alice@example.test");
	strs_clear(&x);
}

static void
test_expand_depth(void **state)
{
	struct directory *d = ((struct fx *)*state)->d;
	char alias[64], target[64];
	const char *t[] = { target };
	struct strs x = { 0 };

	/* l0 -> l1 -> ... -> l11 -> alice: from l2 alice is 10 aliases
	 * deep (the limit), from l1 11. */
	assert_int_equal(directory_user_add(d, "alice@example.test", "pw"), 0);
	for (int i = 0; i < 12; i++) {
		snprintf(alias, sizeof(alias), "l%d@example.test", i);
		if (i == 11)
			snprintf(target, sizeof(target), "alice@example.test");
		else
			snprintf(target, sizeof(target), "l%d@example.test", i + 1);
		assert_int_equal(directory_alias_add(d, alias, t, 1), 0);
	}
	assert_int_equal(directory_expand(d, "l2@example.test", collect_dest, &x), 1);
	assert_string_equal(x.v[0], "alice@example.test");
	strs_clear(&x);
	assert_int_equal(directory_expand(d, "l1@example.test", collect_dest, &x), -1);
	assert_non_null(strstr(directory_error(d), "deeper than 10"));
	strs_clear(&x);
}

static void
test_expand_catchall(void **state)
{
	struct directory *d = ((struct fx *)*state)->d;
	const char *catchall[] = { "catchall@example.test", "Archive@Foreign.Example" };
	const char *pm[] = { "alice@example.test" };
	const char *shadow[] = { "elsewhere@foreign.example" };
	struct strs x = { 0 };

	assert_int_equal(directory_user_add(d, "alice@example.test", "pw"), 0);
	assert_int_equal(directory_user_add(d, "catchall@example.test", "pw"), 0);
	assert_int_equal(directory_alias_add(d, "@example.test", catchall, 2), 0);
	assert_int_equal(directory_alias_add(d, "postmaster@example.test", pm, 1), 0);
	assert_int_equal(directory_alias_add(d, "alice@example.test", shadow, 1), 0);

	/* A user wins over an alias of the same name and over the catch-all. */
	assert_int_equal(directory_expand(d, "alice@example.test", collect_dest, &x), 1);
	assert_string_equal(x.v[0], "alice@example.test");
	assert_int_equal(x.local[0], 1);
	strs_clear(&x);
	/* An alias wins over the catch-all. */
	assert_int_equal(directory_expand(d, "postmaster@example.test", collect_dest, &x), 1);
	assert_string_equal(x.v[0], "alice@example.test");
	strs_clear(&x);
	/* Nobody by that name: the catch-all. */
	assert_int_equal(directory_expand(d, "whoever@example.test", collect_dest, &x), 2);
	assert_string_equal(x.v[0], "catchall@example.test");
	assert_int_equal(x.local[0], 1);
	assert_string_equal(x.v[1], "Archive@foreign.example");
	assert_int_equal(x.local[1], 0);
	strs_clear(&x);

	/* A catch-all pointing back into its domain at nobody is a loop:
	 * refused; one left by an older version terminates. */
	assert_int_equal(directory_alias_del(d, "@example.test"), 0);
	assert_int_equal(directory_alias_add(d, "@example.test", pm, 0), -1);
	catchall[0] = "ghost@example.test";
	assert_int_equal(directory_alias_add(d, "@example.test", catchall, 1), -1);
	assert_string_equal(directory_error(d), "alias @example.test would make a loop: "
			    "@example.test -> ghost@example.test -> @example.test");
	raw_alias(*state, "@example.test", "ghost@example.test");
	assert_int_equal(directory_expand(d, "whoever@example.test", collect_dest, &x), 0);
	assert_int_equal(directory_rcpt_check(d, "whoever@example.test"), DIR_RCPT_LOCAL);
}

/* ---- relay recipients ---- */

static void
test_recipients(void **state)
{
	struct fx *fx = *state;
	struct directory *d = fx->d;
	struct strs x = { 0 };
	char file[128], missing[128];

	snprintf(file, sizeof(file), "%s/rcpts", fx->dir);
	snprintf(missing, sizeof(missing), "%s/missing", fx->dir);

	/* No list: everybody is accepted. */
	assert_int_equal(directory_relay_check(d, "anyone@relay.test"), DIR_RELAY_OK);

	write_file(file, "# exported from mx1\n\nalice@relay.test\n  Bob@Relay.Test \t\r\n"
		   "   # indented comment\nalice@relay.test\n\ncarol@relay.test");
	assert_int_equal(directory_recipients_load(d, "Relay.test", file), 3);
	assert_int_equal(directory_relay_check(d, "alice@relay.test"), DIR_RELAY_OK);
	assert_int_equal(directory_relay_check(d, "BOB@relay.TEST"), DIR_RELAY_OK);
	assert_int_equal(directory_relay_check(d, "carol@relay.test"), DIR_RELAY_OK);
	assert_int_equal(directory_relay_check(d, "mallory@relay.test"), DIR_RELAY_UNKNOWN);
	assert_int_equal(directory_relay_check(d, "mallory@other.test"), DIR_RELAY_OK);
	assert_int_equal(directory_recipients_list(d, "relay.test", collect1, &x), 0);
	assert_int_equal(x.n, 3);
	assert_string_equal(x.v[0], "alice@relay.test");
	assert_string_equal(x.v[1], "bob@relay.test");
	strs_clear(&x);

	/* A bad file changes nothing and names its line. */
	write_file(file, "dan@relay.test\n# ok\n\neve@other.test\n");
	assert_int_equal(directory_recipients_load(d, "relay.test", file), -1);
	assert_non_null(strstr(directory_error(d), "rcpts:4: eve@other.test is not in domain relay.test"));
	write_file(file, "dan@relay.test\nnot an address\n");
	assert_int_equal(directory_recipients_load(d, "relay.test", file), -1);
	assert_non_null(strstr(directory_error(d), "rcpts:2: invalid address"));
	write_file(file, "# nothing\n\n");
	assert_int_equal(directory_recipients_load(d, "relay.test", file), -1);
	assert_int_equal(directory_recipients_load(d, "relay.test", missing), -1);
	assert_non_null(strstr(directory_error(d), "No such file"));
	assert_int_equal(directory_relay_check(d, "dan@relay.test"), DIR_RELAY_UNKNOWN);
	assert_int_equal(directory_relay_check(d, "alice@relay.test"), DIR_RELAY_OK);

	/* A new list replaces the old one. */
	write_file(file, "dan@relay.test\n");
	assert_int_equal(directory_recipients_load(d, "relay.test", file), 1);
	assert_int_equal(directory_relay_check(d, "dan@relay.test"), DIR_RELAY_OK);
	assert_int_equal(directory_relay_check(d, "alice@relay.test"), DIR_RELAY_UNKNOWN);

	assert_int_equal(directory_recipients_clear(d, "RELAY.test"), 0);
	assert_int_equal(directory_relay_check(d, "alice@relay.test"), DIR_RELAY_OK);
	assert_int_equal(directory_recipients_list(d, "relay.test", collect1, &x), 0);
	assert_int_equal(x.n, 0);
}

static void
test_reopen_concurrent(void **state)
{
	struct fx *fx = *state;
	struct directory *d2;
	char err[256];

	/* A second connection (the CLI beside the server) sees the same data. */
	d2 = directory_open(fx->dir, err, sizeof(err));
	assert_non_null(d2);
	assert_int_equal(directory_domain_add(d2, "second.test"), 0);
	assert_int_equal(directory_domain_exists(fx->d, "second.test"), 1);
	directory_close(&d2);
	assert_null(d2);
	directory_close(&d2);

	assert_null(directory_open("/nonexistent/tandem", err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/tandem/directory.db"));
}

/* ---- alias loops ---- */

static void
test_alias_loops_refused(void **state)
{
	struct directory *d = ((struct fx *)*state)->d;
	const char *to_a[] = { "A@example.test" }, *to_b[] = { "b@example.test" };
	const char *to_c[] = { "c@example.test" }, *to_d[] = { "d@example.test" };
	const char *to_bc[] = { "b@example.test", "c@example.test" };
	const char *to_alice[] = { "alice@example.test" }, *to_ghost[] = { "ghost@example.test" };
	const char *to_sub[] = { "a+x@example.test" }, *to_cycle[] = { "alice@example.test", "a@example.test" };
	const char *err = NULL;
	struct strs x = { 0 };

	assert_int_equal(directory_user_add(d, "alice@example.test", "pw"), 0);
	/* a -> a */
	assert_int_equal(directory_alias_add(d, "a@example.test", to_a, 1), -1);
	assert_string_equal(directory_error(d), "alias a@example.test cannot point to itself");
	/* a -> b -> a */
	assert_int_equal(directory_alias_add(d, "a@example.test", to_b, 1), 0);
	assert_int_equal(directory_alias_add(d, "b@example.test", to_a, 1), -1);
	assert_string_equal(directory_error(d), "alias b@example.test would make a loop: "
			    "b@example.test -> a@example.test -> b@example.test");
	assert_false(directory_error_is_temp(d));
	/* a -> b -> c -> d -> a, and a real destination beside it changes nothing */
	assert_int_equal(directory_alias_add(d, "b@example.test", to_c, 1), 0);
	assert_int_equal(directory_alias_add(d, "c@example.test", to_d, 1), 0);
	assert_int_equal(directory_alias_add(d, "d@example.test", to_cycle, 2), -1);
	assert_string_equal(directory_error(d), "alias d@example.test would make a loop: "
			    "d@example.test -> a@example.test -> b@example.test -> c@example.test"
			    " -> d@example.test");
	/* nothing of a refused add stays: not even its good target */
	assert_int_equal(directory_alias_list(d, collect2, &x), 0);
	assert_int_equal(x.n, 3);
	strs_clear(&x);
	assert_int_equal(directory_rcpt_check(d, "d@example.test"), DIR_RCPT_UNKNOWN);
	/* a diamond (two ways to one place) is no loop */
	assert_int_equal(directory_alias_add(d, "d@example.test", to_alice, 1), 0);
	assert_int_equal(directory_alias_add(d, "e@example.test", to_bc, 2), 0);
	assert_int_equal(directory_expand(d, "e@example.test", collect_dest, &x), 1);
	strs_clear(&x);
	/* through the catch-all: nobody falls back to it */
	assert_int_equal(directory_alias_add(d, "@example.test", to_ghost, 1), -1);
	assert_string_equal(directory_error(d), "alias @example.test would make a loop: "
			    "@example.test -> ghost@example.test -> @example.test");
	assert_int_equal(directory_alias_add(d, "@example.test", to_alice, 1), 0);
	/* ... and the other way: ghost is now the catch-all's, which is fine,
	 * but a catch-all to an alias that falls back to it is not */
	assert_int_equal(directory_alias_add(d, "f@example.test", to_ghost, 1), 0);
	assert_int_equal(directory_alias_add(d, "@example.test", (const char *[]){ "f@example.test" }, 1), -1);
	assert_string_equal(directory_error(d), "alias @example.test would make a loop: "
			    "@example.test -> f@example.test -> ghost@example.test -> @example.test");
	/* through subaddressing: a+x@ is a's */
	assert_int_equal(directory_alias_add(d, "g@example.test", to_sub, 1), 0);
	assert_int_equal(directory_alias_add(d, "a@example.test", (const char *[]){ "g@example.test" }, 1), -1);
	assert_non_null(strstr(directory_error(d), "g@example.test -> a+x@example.test -> a@example.test"));
	/* without subaddressing a+x@ is nobody (the catch-all's): no loop */
	assert_int_equal(directory_set_recipient_delimiter(d, "", &err), 0);
	assert_int_equal(directory_alias_add(d, "a@example.test", (const char *[]){ "g@example.test" }, 1), 0);
}

/* ---- RCPT lookups ---- */

static enum dir_lookup
lookup(struct directory *d, const char *addr, int relay, struct dir_rcpt_result *r)
{
	const char *err = NULL;
	enum dir_lookup v = directory_rcpt_lookup(d, addr, relay, r, &err);

	assert_ptr_equal(err, r->error);
	return v;
}

static void
test_rcpt_lookup(void **state)
{
	struct fx *fx = *state;
	struct directory *d = fx->d;
	const char *ta[] = { "alice@example.test" }, *tg[] = { "ghost@example.test" };
	const char *tf[] = { "x@foreign.example" };
	struct dir_rcpt_result r;
	char file[128];

	assert_int_equal(directory_domain_add(d, "catch.test"), 0);
	assert_int_equal(directory_user_add(d, "alice@example.test", "pw"), 0);
	assert_int_equal(directory_user_add(d, "bob+list@example.test", "pw"), 0);
	assert_int_equal(directory_alias_add(d, "sales@example.test", ta, 1), 0);
	assert_int_equal(directory_alias_add(d, "void@example.test", tg, 1), 0);
	assert_int_equal(directory_alias_add(d, "out@example.test", tf, 1), 0);
	assert_int_equal(directory_alias_add(d, "@catch.test", ta, 1), 0);

	assert_int_equal(lookup(d, "Alice@example.test", 0, &r), DIR_LOOKUP_USER);
	assert_string_equal(r.mailbox, "alice@example.test");
	assert_string_equal(r.error, "");
	/* subaddressing: the base address's user or alias */
	assert_int_equal(lookup(d, "alice+Tag@example.test", 0, &r), DIR_LOOKUP_USER);
	assert_string_equal(r.mailbox, "alice@example.test");
	assert_int_equal(lookup(d, "sales+x+y@example.test", 0, &r), DIR_LOOKUP_ALIAS);
	assert_string_equal(r.mailbox, "sales@example.test");
	assert_int_equal(r.ndest, 1);
	/* exact matches win: bob+list is a user of its own, bob is nobody */
	assert_int_equal(lookup(d, "bob+list@example.test", 0, &r), DIR_LOOKUP_USER);
	assert_string_equal(r.mailbox, "bob+list@example.test");
	assert_int_equal(lookup(d, "bob@example.test", 0, &r), DIR_LOOKUP_UNKNOWN);
	assert_int_equal(lookup(d, "bob+other@example.test", 0, &r), DIR_LOOKUP_UNKNOWN);
	assert_int_equal(lookup(d, "+alice@example.test", 0, &r), DIR_LOOKUP_UNKNOWN);
	assert_int_equal(lookup(d, "out@example.test", 0, &r), DIR_LOOKUP_ALIAS);
	assert_int_equal(lookup(d, "anyone+x@catch.test", 0, &r), DIR_LOOKUP_CATCHALL);
	assert_string_equal(r.mailbox, "@catch.test");
	/* an alias that leads nowhere is no recipient: no 250 then a bounce */
	assert_int_equal(lookup(d, "void@example.test", 0, &r), DIR_LOOKUP_UNKNOWN);
	assert_int_equal(lookup(d, "@example.test", 0, &r), DIR_LOOKUP_UNKNOWN);
	assert_int_equal(lookup(d, "nobody@example.test", 0, &r), DIR_LOOKUP_UNKNOWN);
	assert_string_equal(r.mailbox, "");
	assert_int_equal(lookup(d, "alice@foreign.example", 0, &r), DIR_LOOKUP_NOT_OURS);
	assert_int_equal(lookup(d, "postmaster", 0, &r), DIR_LOOKUP_NOT_OURS);

	/* relay domains: no list, listed, subaddress of listed, unlisted */
	assert_int_equal(lookup(d, "anyone@relay.test", 1, &r), DIR_LOOKUP_RELAY);
	snprintf(file, sizeof(file), "%s/rcpts", fx->dir);
	write_file(file, "carol@relay.test\ndan+x@relay.test\n");
	assert_int_equal(directory_recipients_load(d, "relay.test", file), 2);
	assert_int_equal(lookup(d, "Carol@relay.test", 1, &r), DIR_LOOKUP_RELAY);
	assert_int_equal(lookup(d, "carol+tag@relay.test", 1, &r), DIR_LOOKUP_RELAY);
	assert_int_equal(lookup(d, "dan+x@relay.test", 1, &r), DIR_LOOKUP_RELAY);
	assert_int_equal(lookup(d, "dan@relay.test", 1, &r), DIR_LOOKUP_RELAY_UNKNOWN);
	assert_int_equal(lookup(d, "eve@relay.test", 1, &r), DIR_LOOKUP_RELAY_UNKNOWN);
	assert_int_equal(directory_relay_check(d, "carol+tag@relay.test"), DIR_RELAY_OK);
	assert_int_equal(directory_relay_check(d, "eve+carol@relay.test"), DIR_RELAY_UNKNOWN);

	/* the old check follows the same rules */
	assert_int_equal(directory_rcpt_check(d, "alice+tag@example.test"), DIR_RCPT_LOCAL);
	assert_int_equal(directory_rcpt_check(d, "bob+other@example.test"), DIR_RCPT_UNKNOWN);

	/* another delimiter, several, none */
	assert_int_equal(directory_set_recipient_delimiter(d, "-=", NULL), 0);
	assert_int_equal(lookup(d, "alice+tag@example.test", 0, &r), DIR_LOOKUP_UNKNOWN);
	assert_int_equal(lookup(d, "alice-tag@example.test", 0, &r), DIR_LOOKUP_USER);
	assert_int_equal(lookup(d, "alice=tag-x@example.test", 0, &r), DIR_LOOKUP_USER);
	assert_int_equal(directory_set_recipient_delimiter(d, NULL, NULL), 0);
	assert_int_equal(lookup(d, "alice-tag@example.test", 0, &r), DIR_LOOKUP_UNKNOWN);
	assert_int_equal(lookup(d, "carol+tag@relay.test", 1, &r), DIR_LOOKUP_RELAY_UNKNOWN);
	{
		const char *err = NULL;

		assert_int_equal(directory_set_recipient_delimiter(d, ".", &err), -1);
		assert_non_null(strstr(err, "not dots"));
		assert_int_equal(directory_set_recipient_delimiter(d, "+@", &err), -1);
		assert_int_equal(directory_set_recipient_delimiter(d, " ", &err), -1);
		assert_int_equal(directory_set_recipient_delimiter(d, "+-=_#&~!$", &err), -1);
		assert_int_equal(directory_set_recipient_delimiter(d, "+", &err), 0);
	}
}

static void
test_rcpt_lookup_loops(void **state)
{
	struct fx *fx = *state;
	struct directory *d = fx->d;
	struct dir_rcpt_result r;
	char alias[64], target[64];

	/* Loops written by an older tandem: nowhere to go is refused with
	 * LOOP (451 4.4.6), never accepted to bounce later. */
	assert_int_equal(directory_user_add(d, "alice@example.test", "pw"), 0);
	raw_alias(fx, "a@example.test", "b@example.test");
	raw_alias(fx, "b@example.test", "a@example.test");
	assert_int_equal(lookup(d, "a@example.test", 0, &r), DIR_LOOKUP_LOOP);
	assert_string_equal(r.error, "alias loop: a@example.test -> b@example.test -> a@example.test");
	assert_int_equal(lookup(d, "b+x@example.test", 0, &r), DIR_LOOKUP_LOOP);
	assert_int_equal(r.loop, 1);
	/* self */
	raw_alias(fx, "s@example.test", "s@example.test");
	assert_int_equal(lookup(d, "s@example.test", 0, &r), DIR_LOOKUP_LOOP);
	/* a loop beside a real destination still delivers: accepted, flagged */
	raw_alias(fx, "c@example.test", "a@example.test");
	raw_alias(fx, "c@example.test", "alice@example.test");
	assert_int_equal(lookup(d, "c@example.test", 0, &r), DIR_LOOKUP_ALIAS);
	assert_int_equal(r.ndest, 1);
	assert_int_equal(r.loop, 1);
	assert_non_null(strstr(r.error, "alias loop"));
	/* through the catch-all */
	raw_alias(fx, "@example.test", "ghost@example.test");
	assert_int_equal(lookup(d, "whoever@example.test", 0, &r), DIR_LOOKUP_LOOP);
	assert_string_equal(r.error, "alias loop: @example.test -> ghost@example.test -> @example.test");
	/* too deep is the same verdict: l0 -> ... -> l11 -> alice */
	for (int i = 0; i < 12; i++) {
		snprintf(alias, sizeof(alias), "l%d@example.test", i);
		snprintf(target, sizeof(target), i == 11 ? "alice@example.test" : "l%d@example.test", i + 1);
		raw_alias(fx, alias, target);
	}
	assert_int_equal(lookup(d, "l2@example.test", 0, &r), DIR_LOOKUP_ALIAS);
	assert_int_equal(lookup(d, "l1@example.test", 0, &r), DIR_LOOKUP_LOOP);
	assert_non_null(strstr(r.error, "deeper than 10"));
}

/* ---- resolution for delivery ---- */

struct dests {
	int n;
	char v[16][160];
};

static void
collect_resolve(const char *dest, const char *rcpt, int is_local, void *arg)
{
	struct dests *x = arg;

	assert_true(x->n < 16);
	snprintf(x->v[x->n++], sizeof(x->v[0]), "%s %s %d", dest, rcpt, is_local);
}

static void
test_resolve_subaddress(void **state)
{
	struct directory *d = ((struct fx *)*state)->d;
	const char *team[] = { "alice+lists@example.test", "Bob@example.test", "alice@example.test",
			       "Carol+x@Foreign.Example" };
	const char *err = NULL;
	struct dests x = { 0 };

	assert_int_equal(directory_user_add(d, "alice@example.test", "pw"), 0);
	assert_int_equal(directory_user_add(d, "bob@example.test", "pw"), 0);
	assert_int_equal(directory_alias_add(d, "team@example.test", team, 4), 0);

	/* the mailbox is alice's; Delivered-To keeps what the sender wrote */
	assert_int_equal(directory_resolve(d, "Alice+Tag@EXAMPLE.test", collect_resolve, &x, &err), 1);
	assert_string_equal(x.v[0], "alice@example.test Alice+Tag@example.test 1");
	x.n = 0;
	/* through an alias: each mailbox once, the first way in names it */
	assert_int_equal(directory_resolve(d, "team+x@example.test", collect_resolve, &x, &err), 3);
	assert_string_equal(x.v[0], "alice@example.test alice+lists@example.test 1");
	assert_string_equal(x.v[1], "bob@example.test bob@example.test 1");
	/* a foreign address keeps its subaddress: the other host's business */
	assert_string_equal(x.v[2], "Carol+x@foreign.example Carol+x@foreign.example 0");
	x.n = 0;
	assert_int_equal(directory_resolve(d, "nobody+x@example.test", collect_resolve, &x, &err), 0);
	assert_int_equal(directory_expand(d, "alice+x@example.test", NULL, NULL), 1);
	assert_int_equal(directory_set_recipient_delimiter(d, "", &err), 0);
	assert_int_equal(directory_expand(d, "alice+x@example.test", NULL, NULL), 0);
}

/* ---- postmaster ---- */

static void
test_postmaster_address(void **state)
{
	struct directory *d = ((struct fx *)*state)->d;
	const char *err = NULL;
	char buf[320];

	/* only example.test: whatever the host name */
	assert_int_equal(directory_postmaster_address(d, "mx1.elsewhere.test", buf, sizeof(buf), &err), 1);
	assert_string_equal(buf, "postmaster@example.test");
	assert_int_equal(directory_domain_add(d, "a.test"), 0);
	assert_int_equal(directory_domain_add(d, "zz.test"), 0);
	/* the host name's domain when it is ours, else the first by name */
	assert_int_equal(directory_postmaster_address(d, "MX1.zz.test", buf, sizeof(buf), &err), 1);
	assert_string_equal(buf, "postmaster@zz.test");
	assert_int_equal(directory_postmaster_address(d, "zz.test", buf, sizeof(buf), &err), 1);
	assert_string_equal(buf, "postmaster@zz.test");
	assert_int_equal(directory_postmaster_address(d, "mx.b.example.test", buf, sizeof(buf), &err), 1);
	assert_string_equal(buf, "postmaster@example.test");
	assert_int_equal(directory_postmaster_address(d, "mx1.elsewhere.test", buf, sizeof(buf), &err), 1);
	assert_string_equal(buf, "postmaster@a.test");
	assert_int_equal(directory_postmaster_address(d, "localhost", buf, sizeof(buf), &err), 1);
	assert_string_equal(buf, "postmaster@a.test");
	/* never a top-level domain alone */
	assert_int_equal(directory_domain_add(d, "test"), 0);
	assert_int_equal(directory_postmaster_address(d, "mx1.elsewhere.test", buf, sizeof(buf), &err), 1);
	assert_string_equal(buf, "postmaster@a.test");
	/* no domain at all (a backup) */
	assert_int_equal(directory_domain_del(d, "a.test"), 0);
	assert_int_equal(directory_domain_del(d, "zz.test"), 0);
	assert_int_equal(directory_domain_del(d, "test"), 0);
	assert_int_equal(directory_domain_del(d, "example.test"), 0);
	assert_int_equal(directory_postmaster_address(d, "mx1.example.test", buf, sizeof(buf), &err), 0);
}

/* ---- threads ---- */

#define THREADS 8
#define ROUNDS 300

struct thr {
	struct directory *d;
	pthread_barrier_t *start, *closed;
	int id, failures;
	char err[256];
};

static const struct {
	const char *addr;
	int relay;
	enum dir_lookup want;
} thr_cases[] = {
	{ "alice@example.test", 0, DIR_LOOKUP_USER },
	{ "alice+t@example.test", 0, DIR_LOOKUP_USER },
	{ "team@example.test", 0, DIR_LOOKUP_ALIAS },
	{ "x@catch.test", 0, DIR_LOOKUP_CATCHALL },
	{ "nobody@example.test", 0, DIR_LOOKUP_UNKNOWN },
	{ "loop@example.test", 0, DIR_LOOKUP_LOOP },
	{ "a@relay.test", 1, DIR_LOOKUP_RELAY },
	{ "a@world.test", 0, DIR_LOOKUP_NOT_OURS },
};

static void *
thr_lookups(void *arg)
{
	struct thr *t = arg;
	const size_t ncases = sizeof(thr_cases) / sizeof(thr_cases[0]);
	struct dir_rcpt_result r;
	char own[64];

	pthread_barrier_wait(t->start);
	for (int i = 0; i < ROUNDS; i++) {
		size_t k = (size_t)(i + t->id) % ncases;

		if (directory_rcpt_lookup(t->d, thr_cases[k].addr, thr_cases[k].relay, &r, NULL) !=
		    thr_cases[k].want)
			t->failures++;
		/* an error of this thread's own, never another's */
		snprintf(own, sizeof(own), "t%d@nope%d.test", t->id, i);
		if (directory_user_add(t->d, own, "pw") != -1 ||
		    strstr(directory_error(t->d), own + strlen(own) - 10) == NULL)
			t->failures++;
	}
	if (directory_user_verify(t->d, "alice@example.test", "pw") != 1)
		t->failures++;
	snprintf(t->err, sizeof(t->err), "%s", directory_error(t->d));
	if (t->closed != NULL) {
		/* Hold the thread (and its connection) until the handle is
		 * closed: the thread then exits with nothing left to do. */
		pthread_barrier_wait(t->closed);
		pthread_barrier_wait(t->closed);
	}
	return NULL;
}

static void
thr_fixture(struct fx *fx)
{
	const char *ta[] = { "alice@example.test", "x@foreign.example" };

	assert_int_equal(directory_domain_add(fx->d, "catch.test"), 0);
	assert_int_equal(directory_user_add(fx->d, "alice@example.test", "pw"), 0);
	assert_int_equal(directory_alias_add(fx->d, "team@example.test", ta, 2), 0);
	assert_int_equal(directory_alias_add(fx->d, "@catch.test", ta, 1), 0);
	raw_alias(fx, "loop@example.test", "loop+x@example.test");
}

/* Open files of this process on the directory's database file. SQLite
 * may hold a closed connection's file open while others of the process
 * keep theirs (POSIX locks are per process), so 0 is the only count that
 * says much. */
static int
db_fds(void)
{
	char path[64], target[256];
	int n = 0;

	for (int fd = 0; fd < 1024; fd++) {
		ssize_t len;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if ((len = readlink(path, target, sizeof(target) - 1)) <= 0)
			continue;
		target[len] = '\0';
		n += len > 13 && strcmp(target + len - 13, "/directory.db") == 0;
	}
	return n;
}

/* The connections the handle holds (a look inside the module). */
static int
conns(struct directory *d)
{
	int n = 0;

	for (struct dir_conn *c = d->conns; c != NULL; c = c->next)
		n++;
	return n;
}

static void
run_threads(struct fx *fx, int close_while_alive)
{
	pthread_t tid[THREADS];
	struct thr t[THREADS];
	pthread_barrier_t start, closed;

	thr_fixture(fx);
	assert_int_equal(conns(fx->d), 1);	/* this thread's */
	pthread_barrier_init(&start, NULL, THREADS + 1);
	pthread_barrier_init(&closed, NULL, THREADS + 1);
	for (int i = 0; i < THREADS; i++) {
		t[i] = (struct thr){ .d = fx->d, .start = &start, .id = i,
				     .closed = close_while_alive ? &closed : NULL };
		assert_int_equal(pthread_create(&tid[i], NULL, thr_lookups, &t[i]), 0);
	}
	pthread_barrier_wait(&start);
	/* the loop thread goes on using the handle meanwhile */
	for (int i = 0; i < ROUNDS; i++)
		assert_int_equal(directory_rcpt_check(fx->d, "alice@example.test"), DIR_RCPT_LOCAL);
	assert_int_equal(directory_domain_add(fx->d, "example.test"), -1);
	assert_string_equal(directory_error(fx->d), "domain example.test already exists");
	if (close_while_alive) {
		pthread_barrier_wait(&closed);
		assert_int_equal(conns(fx->d), THREADS + 1);
		directory_close(&fx->d);
		assert_int_equal(db_fds(), 0);
		pthread_barrier_wait(&closed);
	}
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(tid[i], NULL), 0);
		assert_int_equal(t[i].failures, 0);
	}
	/* each thread's connection went with it */
	if (!close_while_alive)
		assert_int_equal(conns(fx->d), 1);
	pthread_barrier_destroy(&start);
	pthread_barrier_destroy(&closed);
	if (!close_while_alive)
		assert_string_equal(directory_error(fx->d), "domain example.test already exists");
}

static void
test_threads(void **state)
{
	/* Lookups and writes from several threads at once, each on its own
	 * connection, closed as its thread exits (ASan/TSan runs see it). */
	run_threads(*state, 0);
}

static void
test_threads_close_while_alive(void **state)
{
	/* directory_close while the threads still live: it closes their
	 * connections, and their exit later touches nothing. */
	run_threads(*state, 1);
}

/* ---- the commands ---- */

static const char *cmd_tmp;	/* scratch directory of test_cmd */
static char cmd_err[512];	/* stderr of the last run_cmd */

static void
capture_end(int fd, int saved, int target, char *buf, size_t len)
{
	ssize_t n;

	dup2(saved, target);
	close(saved);
	n = pread(fd, buf, len - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
}

static int
capture_start(const char *name, int target, int *saved_r)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", cmd_tmp, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	*saved_r = dup(target);
	dup2(fd, target);
	return fd;
}

/* Run a command with stdin from in_text, stdout captured into out and
 * stderr into cmd_err. */
static int
run_cmd(int (*cmd)(struct config *, int, char **), struct config *cf,
	const char *in_text, char *out, size_t outlen, int argc, ...)
{
	char *argv[8], path[128];
	int saved_out, saved_err, fd_out, fd_err, rc;
	va_list ap;

	va_start(ap, argc);
	for (int i = 0; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	argv[argc] = NULL;

	snprintf(path, sizeof(path), "%s/stdin", cmd_tmp);
	write_file(path, in_text);
	assert_non_null(freopen(path, "r", stdin));
	fflush(stdout);
	fflush(stderr);
	fd_out = capture_start("stdout", STDOUT_FILENO, &saved_out);
	fd_err = capture_start("stderr", STDERR_FILENO, &saved_err);
	rc = cmd(cf, argc, argv);
	fflush(stdout);
	fflush(stderr);
	capture_end(fd_out, saved_out, STDOUT_FILENO, out, outlen);
	capture_end(fd_err, saved_err, STDERR_FILENO, cmd_err, sizeof(cmd_err));
	return rc;
}

static void
test_cmd(void **state)
{
	struct fx *fx = *state;
	struct config cf;
	char data[128], out[512], file[128];
	struct stat sb;

	memset(&cf, 0, sizeof(cf));
	cmd_tmp = fx->dir;
	snprintf(data, sizeof(data), "%s/cli/data", fx->dir);
	cf.data_dir = data;
	snprintf(file, sizeof(file), "%s/cli/list", fx->dir);

	assert_int_equal(run_cmd(cmd_domain, &cf, "", out, sizeof(out), 3, "domain", "add", "Cli.test"), 0);
	assert_int_equal(stat(data, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0750);
	assert_int_equal(stat(strcat(strcpy(out, data), "/directory.db"), &sb), 0);
	assert_int_equal(sb.st_mode & 0007, 0);	/* password hashes */
	assert_int_equal(run_cmd(cmd_domain, &cf, "", out, sizeof(out), 3, "domain", "add", "cli.test"), 1);
	assert_string_equal(cmd_err, "tandem: domain cli.test already exists\n");
	assert_int_equal(run_cmd(cmd_domain, &cf, "", out, sizeof(out), 1, "domain"), 2);
	assert_non_null(strstr(cmd_err, "usage: tandem domain"));
	assert_int_equal(run_cmd(cmd_domain, &cf, "", out, sizeof(out), 2, "domain", "frob"), 2);
	assert_int_equal(run_cmd(cmd_domain, &cf, "", out, sizeof(out), 2, "domain", "add"), 2);
	assert_int_equal(run_cmd(cmd_domain, &cf, "", out, sizeof(out), 3, "domain", "list", "x"), 2);
	assert_int_equal(run_cmd(cmd_domain, &cf, "", out, sizeof(out), 2, "domain", "list"), 0);
	assert_string_equal(out, "cli.test\n");

	assert_int_equal(run_cmd(cmd_user, &cf, "s3cret\r\nignored\n", out, sizeof(out),
				 3, "user", "add", "alice@cli.test"), 0);
	assert_int_equal(run_cmd(cmd_user, &cf, "", out, sizeof(out), 3, "user", "add", "bob@cli.test"), 1);
	assert_non_null(strstr(cmd_err, "empty password"));
	assert_int_equal(run_cmd(cmd_user, &cf, "pw\n", out, sizeof(out), 3, "user", "add", "alice@cli.test"), 1);
	assert_string_equal(cmd_err, "tandem: user alice@cli.test already exists\n");
	assert_int_equal(run_cmd(cmd_user, &cf, "\n", out, sizeof(out), 3, "user", "add", "bob@cli.test"), 1);
	assert_int_equal(run_cmd(cmd_user, &cf, "pw\n", out, sizeof(out), 3, "user", "add", "bob@nope.test"), 1);
	assert_string_equal(cmd_err, "tandem: unknown domain nope.test\n");
	assert_int_equal(run_cmd(cmd_user, &cf, "pw\n", out, sizeof(out), 3, "user", "passwd", "bob@cli.test"), 1);
	assert_int_equal(run_cmd(cmd_user, &cf, "", out, sizeof(out), 2, "user", "list"), 0);
	assert_string_equal(out, "alice@cli.test\n");
	assert_int_equal(run_cmd(cmd_user, &cf, "", out, sizeof(out), 3, "user", "del", "bob@cli.test"), 1);

	assert_int_equal(run_cmd(cmd_alias, &cf, "", out, sizeof(out), 3, "alias", "add", "a@cli.test"), 2);
	assert_int_equal(run_cmd(cmd_alias, &cf, "", out, sizeof(out), 5, "alias", "add", "a@cli.test",
				 "alice@cli.test", "x@foreign.test"), 0);
	assert_int_equal(run_cmd(cmd_alias, &cf, "", out, sizeof(out), 4, "alias", "add", "@cli.test",
				 "alice@cli.test"), 0);
	assert_int_equal(run_cmd(cmd_alias, &cf, "", out, sizeof(out), 2, "alias", "list"), 0);
	assert_string_equal(out, "@cli.test -> alice@cli.test\na@cli.test -> alice@cli.test, x@foreign.test\n");
	assert_int_equal(run_cmd(cmd_alias, &cf, "", out, sizeof(out), 3, "alias", "del", "a@cli.test"), 0);
	assert_int_equal(run_cmd(cmd_alias, &cf, "", out, sizeof(out), 3, "alias", "del", "a@cli.test"), 1);

	write_file(file, "# list\nalice@cli.test\nbob@cli.test\n");
	assert_int_equal(run_cmd(cmd_recipients, &cf, "", out, sizeof(out), 4, "recipients", "load",
				 "cli.test", file), 0);
	assert_string_equal(out, "loaded 2 recipients for cli.test\n");
	assert_int_equal(run_cmd(cmd_recipients, &cf, "", out, sizeof(out), 3, "recipients", "list",
				 "cli.test"), 0);
	assert_string_equal(out, "alice@cli.test\nbob@cli.test\n");
	assert_int_equal(run_cmd(cmd_recipients, &cf, "", out, sizeof(out), 3, "recipients", "load",
				 "cli.test"), 2);
	assert_int_equal(run_cmd(cmd_recipients, &cf, "", out, sizeof(out), 3, "recipients", "clear",
				 "cli.test"), 0);

	/* The password really came from stdin's first line. */
	{
		struct directory *d = cmd_directory_open(&cf);

		assert_non_null(d);
		assert_int_equal(directory_user_verify(d, "alice@cli.test", "s3cret"), 1);
		directory_close(&d);
	}
	assert_int_equal(run_cmd(cmd_user, &cf, "n3w\n", out, sizeof(out), 3, "user", "passwd", "alice@cli.test"), 0);
	assert_int_equal(run_cmd(cmd_user, &cf, "", out, sizeof(out), 3, "user", "del", "alice@cli.test"), 0);
	assert_int_equal(run_cmd(cmd_domain, &cf, "", out, sizeof(out), 3, "domain", "del", "cli.test"), 1);
	assert_int_equal(run_cmd(cmd_alias, &cf, "", out, sizeof(out), 3, "alias", "del", "@cli.test"), 0);
	assert_int_equal(run_cmd(cmd_domain, &cf, "", out, sizeof(out), 3, "domain", "del", "cli.test"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_domain_add_del_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_domain_del_in_use, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_add_del_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sender_grants, setup, teardown),
		cmocka_unit_test_setup_teardown(test_send_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_hash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_verify_schemes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alias_add_del_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rcpt_check, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expand_nested, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expand_loops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expand_depth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expand_catchall, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alias_loops_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rcpt_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rcpt_lookup_loops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve_subaddress, setup, teardown),
		cmocka_unit_test_setup_teardown(test_postmaster_address, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_close_while_alive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recipients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cmd, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
