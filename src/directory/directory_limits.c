/*
 * directory_limits: what a user may submit a day (users.max_messages and
 * max_recipients: NULL means the [submission] default, 0 no limit) and
 * what they submitted (send_usage, one row per user and UTC day; rows
 * older than a week are dropped as new ones come).
 * Public: directory_user_limits_set, directory_user_limits_get,
 * directory_send_usage, directory_send_count, directory_today.
 */
#include <sqlite3.h>
#include <stdlib.h>
#include <time.h>

#include "directory/directory_int.h"
#include "util/xalloc.h"

int
directory_user_limits_set(struct directory *d, const char *address, long long messages,
			  long long recipients)
{
	struct dir_conn *c = dir_conn(d);
	long long v[2] = { messages, recipients };

	if (c == NULL)
		return -1;
	return dir_user_set_ints(c, address, "UPDATE users SET max_messages = ?1, "
				 "max_recipients = ?2 WHERE address = ?3", 2, v);
}

int
directory_user_limits_get(struct directory *d, const char *address, long long *messages_r,
			  long long *recipients_r)
{
	struct dir_conn *c = dir_conn(d);
	long long v[2];

	if (c == NULL || dir_user_get_ints(c, address, "SELECT max_messages, max_recipients "
					   "FROM users WHERE address = ?1", 2, v) != 0)
		return -1;
	*messages_r = v[0];
	*recipients_r = v[1];
	return 0;
}

long long
directory_today(void)
{
	return (long long)(time(NULL) / 86400);
}

int
directory_send_usage(struct directory *d, const char *address, long long day,
		     long long *messages_r, long long *recipients_r)
{
	struct dir_conn *c = dir_conn(d);
	sqlite3_stmt *st;
	char *addr;
	int rc;

	*messages_r = *recipients_r = 0;
	if (c == NULL)
		return -1;
	addr = dir_lowdup(address);
	if (sqlite3_prepare_v2(c->db, "SELECT messages, recipients FROM send_usage "
			       "WHERE user = ?1 AND day = ?2", -1, &st, NULL) != SQLITE_OK) {
		free(addr);
		return dir_dberr(c);
	}
	sqlite3_bind_text(st, 1, addr, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, day);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*messages_r = sqlite3_column_int64(st, 0);
		*recipients_r = sqlite3_column_int64(st, 1);
	}
	rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : dir_dberr(c);
	sqlite3_finalize(st);
	free(addr);
	return rc;
}

int
directory_send_count(struct directory *d, const char *address, long long day, int messages,
		     int recipients)
{
	struct dir_conn *c = dir_conn(d);
	sqlite3_stmt *st;
	char *addr;
	int rc;

	if (c == NULL)
		return -1;
	addr = dir_lowdup(address);
	if (sqlite3_prepare_v2(c->db, "INSERT INTO send_usage (user, day, messages, recipients) "
			       "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (user, day) DO UPDATE SET "
			       "messages = messages + ?3, recipients = recipients + ?4", -1, &st,
			       NULL) != SQLITE_OK) {
		free(addr);
		return dir_dberr(c);
	}
	sqlite3_bind_text(st, 1, addr, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, day);
	sqlite3_bind_int(st, 3, messages);
	sqlite3_bind_int(st, 4, recipients);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(addr);
		return dir_dberr(c);
	}
	/* a week is kept for `tandem user show`; older days go */
	if (sqlite3_prepare_v2(c->db, "DELETE FROM send_usage WHERE user = ?1 AND day < ?2", -1,
			       &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, addr, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, day - 7);
		sqlite3_step(st);
		sqlite3_finalize(st);
	}
	free(addr);
	return 0;
}
