/*
 * directory_sender: the addresses a user may send as besides their own and
 * their aliases (`tandem user allow-from ADDRESS PATTERN`), for
 * submission's sender check. A pattern is one address ("info@example.org",
 * any domain, local part compared without case) or "@domain" for every
 * address of that domain. Grants go with the user (ON DELETE CASCADE).
 * Public: directory_sender_allow, directory_sender_disallow,
 * directory_sender_list, directory_sender_granted.
 */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "directory/directory_int.h"
#include "util/xalloc.h"

/* The user's canonical address, who must exist; NULL with the error set. */
static char *
sender_user(struct dir_conn *c, const char *address)
{
	char show[80], *a;
	int r;

	if ((a = dir_address(c, address, 0, 0)) == NULL)
		return NULL;
	if ((r = dir_int(c, "SELECT EXISTS(SELECT 1 FROM users WHERE address = ?)", 1, a)) <= 0) {
		if (r == 0)
			dir_seterr(c, "no such user %s", dir_show(address, show, sizeof(show)));
		free(a);
		return NULL;
	}
	return a;
}

/* The user (who must exist) and the pattern, checked and normalized; -1
 * with the error set. */
static int
sender_pair(struct dir_conn *c, const char *user, const char *pattern, char **u_r, char **p_r)
{
	if ((*u_r = sender_user(c, user)) == NULL)
		return -1;
	if ((*p_r = dir_address(c, pattern, 1, 0)) == NULL) {
		free(*u_r);
		return -1;
	}
	return 0;
}

int
directory_sender_allow(struct directory *d, const char *user, const char *pattern)
{
	struct dir_conn *c = dir_conn(d);
	char *u, *p;
	int rc;

	if (c == NULL || sender_pair(c, user, pattern, &u, &p) != 0)
		return -1;
	rc = dir_run(c, "INSERT OR IGNORE INTO sender_grants (user, pattern) VALUES (?, ?)", 2, u, p);
	free(u);
	free(p);
	return rc < 0 ? -1 : 0;
}

int
directory_sender_disallow(struct directory *d, const char *user, const char *pattern)
{
	struct dir_conn *c = dir_conn(d);
	char *u, *p, show[80];
	int rc;

	if (c == NULL || sender_pair(c, user, pattern, &u, &p) != 0)
		return -1;
	rc = dir_run(c, "DELETE FROM sender_grants WHERE user = ? AND pattern = ?", 2, u, p);
	if (rc == 0)
		dir_seterr(c, "%s may not send as %s anyway", u, dir_show(pattern, show, sizeof(show)));
	free(u);
	free(p);
	return rc <= 0 ? -1 : 0;
}

int
directory_sender_list(struct directory *d, const char *user,
		      void (*fn)(const char *pattern, void *arg), void *arg)
{
	struct dir_conn *c = dir_conn(d);
	char *u;
	int rc;

	if (c == NULL || (u = sender_user(c, user)) == NULL)
		return -1;
	rc = dir_each(c, fn, NULL, arg,
		      "SELECT pattern FROM sender_grants WHERE user = ? ORDER BY pattern", 1, u);
	free(u);
	return rc;
}

int
directory_sender_granted(struct directory *d, const char *user, const char *sender)
{
	struct dir_conn *c = dir_conn(d);
	const char *at = strrchr(sender, '@');
	char *u, *s;
	int r;

	if (c == NULL || at == NULL || at == sender)
		return c == NULL ? -1 : 0;
	u = dir_lowdup(user);
	s = dir_lowdup(sender);
	r = dir_int(c, "SELECT EXISTS(SELECT 1 FROM sender_grants WHERE user = ? AND "
		    "pattern IN (?, ?))", 3, u, s, strrchr(s, '@'));
	free(u);
	free(s);
	return r;
}
