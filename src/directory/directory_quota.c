/*
 * directory_quota: each user's mailbox quota (users.quota: NULL means
 * [mailbox] default_quota applies, 0 no limit, else bytes).
 * Public: directory_user_quota_set, directory_user_quota_get, directory_user_quota.
 */
#include <sqlite3.h>
#include <stdlib.h>

#include "directory/directory_int.h"
#include "util/xalloc.h"

int
directory_user_quota_set(struct directory *d, const char *address, long long bytes)
{
	struct dir_conn *c = dir_conn(d);
	char *addr, show[80];
	sqlite3_stmt *st;
	int rc;

	if (c == NULL)
		return -1;
	if ((addr = dir_address(c, address, 0, 0)) == NULL)
		return -1;
	if (sqlite3_prepare_v2(c->db, "UPDATE users SET quota = ?1 WHERE address = ?2", -1, &st,
			       NULL) != SQLITE_OK) {
		free(addr);
		return dir_dberr(c);
	}
	if (bytes < 0)
		sqlite3_bind_null(st, 1);
	else
		sqlite3_bind_int64(st, 1, bytes);
	sqlite3_bind_text(st, 2, addr, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(addr);
		return dir_dberr(c);
	}
	if (sqlite3_changes(c->db) == 0) {
		dir_seterr(c, "no such user %s", dir_show(address, show, sizeof(show)));
		free(addr);
		return -1;
	}
	free(addr);
	return 0;
}

int
directory_user_quota_get(struct directory *d, const char *address, long long *bytes_r)
{
	struct dir_conn *c = dir_conn(d);
	char *addr, show[80];
	sqlite3_stmt *st;
	int rc;

	if (c == NULL)
		return -1;
	if ((addr = dir_address(c, address, 0, 0)) == NULL)
		return -1;
	if (sqlite3_prepare_v2(c->db, "SELECT quota FROM users WHERE address = ?1", -1, &st,
			       NULL) != SQLITE_OK) {
		free(addr);
		return dir_dberr(c);
	}
	sqlite3_bind_text(st, 1, addr, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*bytes_r = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 0);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		dir_seterr(c, "no such user %s", dir_show(address, show, sizeof(show)));
		rc = -1;
	} else {
		rc = dir_dberr(c);
	}
	sqlite3_finalize(st);
	free(addr);
	return rc;
}

long long
directory_user_quota(struct directory *d, const char *address, long long default_quota)
{
	long long q;

	if (directory_user_quota_get(d, address, &q) != 0 || q < 0)
		return default_quota;
	return q;
}
