/*
 * directory_quota: each user's mailbox quota (users.quota: NULL means
 * [mailbox] default_quota applies, 0 no limit, else bytes).
 * Public: directory_user_quota_set, directory_user_quota_get, directory_user_quota.
 * Module-internal: dir_user_set_ints, dir_user_get_ints (the limits use them).
 */
#include <sqlite3.h>
#include <stdlib.h>

#include "directory/directory_int.h"
#include "util/xalloc.h"

int
dir_user_set_ints(struct dir_conn *c, const char *address, const char *sql, int n,
		  const long long *v)
{
	char *addr, show[80];
	sqlite3_stmt *st;
	int rc;

	if ((addr = dir_address(c, address, 0, 0)) == NULL)
		return -1;
	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
		free(addr);
		return dir_dberr(c);
	}
	for (int i = 0; i < n; i++) {
		if (v[i] < 0)
			sqlite3_bind_null(st, i + 1);
		else
			sqlite3_bind_int64(st, i + 1, v[i]);
	}
	sqlite3_bind_text(st, n + 1, addr, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(addr);
		return dir_dberr(c);
	}
	rc = 0;
	if (sqlite3_changes(c->db) == 0) {
		dir_seterr(c, "no such user %s", dir_show(address, show, sizeof(show)));
		rc = -1;
	}
	free(addr);
	return rc;
}

int
dir_user_get_ints(struct dir_conn *c, const char *address, const char *sql, int n, long long *v)
{
	char *addr, show[80];
	sqlite3_stmt *st;
	int rc;

	if ((addr = dir_address(c, address, 0, 0)) == NULL)
		return -1;
	/* cached: every delivery reads the quota */
	if ((st = dir_prepare(c, sql, 1, addr)) == NULL) {
		free(addr);
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		for (int i = 0; i < n; i++)
			v[i] = sqlite3_column_type(st, i) == SQLITE_NULL ? -1 :
				sqlite3_column_int64(st, i);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		dir_seterr(c, "no such user %s", dir_show(address, show, sizeof(show)));
		rc = -1;
	} else {
		rc = dir_dberr(c);
	}
	dir_finish(c, st);
	free(addr);
	return rc;
}

int
directory_user_quota_set(struct directory *d, const char *address, long long bytes)
{
	struct dir_conn *c = dir_conn(d);

	if (c == NULL)
		return -1;
	return dir_user_set_ints(c, address, "UPDATE users SET quota = ?1 WHERE address = ?2", 1,
				 &bytes);
}

int
directory_user_quota_get(struct directory *d, const char *address, long long *bytes_r)
{
	struct dir_conn *c = dir_conn(d);

	if (c == NULL)
		return -1;
	return dir_user_get_ints(c, address, "SELECT quota FROM users WHERE address = ?1", 1,
				 bytes_r);
}

long long
directory_user_quota(struct directory *d, const char *address, long long default_quota)
{
	long long q;

	if (directory_user_quota_get(d, address, &q) != 0 || q < 0)
		return default_quota;
	return q;
}
