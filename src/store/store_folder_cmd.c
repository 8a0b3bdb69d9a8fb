/*
 * store_folder_cmd: the folder commands (LIST, CREATE, DELETE, RENAME,
 * SUBSCRIBE, STATUS, SELECT) on top of store_folder.c's names.
 * Public: store_folder_list, store_folder_create, store_folder_delete,
 * store_folder_rename, store_folder_subscribe, store_folder_subscriptions,
 * store_folder_status,
 * store_folder_open, store_folder_close, store_folder_info,
 * store_folder_take_recent; store_int.h: store_folder_get_open.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/maildir.h"
#include "store/store_int.h"
#include "util/durable.h"
#include "util/xalloc.h"

struct list_ent {
	char *name;
	unsigned su;
	int noselect, sub, children;
};

static int
store_folder_cmp_ent(const void *x, const void *y)
{
	const struct list_ent *a = x, *b = y;
	int ai = strcmp(a->name, "INBOX") == 0, bi = strcmp(b->name, "INBOX") == 0;

	if (ai != bi)
		return bi - ai;
	return strcmp(a->name, b->name);
}

static struct list_ent *
store_folder_find_ent(struct list_ent *e, size_t n, const char *name, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(e[i].name) == len && strncmp(e[i].name, name, len) == 0)
			return &e[i];
	return NULL;
}

int
store_folder_list(struct store_account *a,
		  int (*fn)(const struct store_folder_entry *e, void *arg), void *arg)
{
	struct list_ent *e = NULL;
	size_t n = 0, na = 0, rows;
	sqlite3_stmt *st;
	int rc = 0;

	store_folder_adopt(a);   /* folders another program made meanwhile */
	if (sqlite3_prepare_v2(a->db,
			       "SELECT f.name, f.special_use, f.noselect, s.name IS NOT NULL FROM"
			       " folders f LEFT JOIN subscriptions s ON s.name = f.name",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (n == na) {
			na = na ? na * 2 : 16;
			e = xrealloc(e, na * sizeof(*e));
		}
		e[n].name = xstrdup((const char *)sqlite3_column_text(st, 0));
		e[n].su = (unsigned)sqlite3_column_int(st, 1);
		e[n].noselect = sqlite3_column_int(st, 2);
		e[n].sub = sqlite3_column_int(st, 3);
		e[n].children = 0;
		n++;
	}
	sqlite3_finalize(st);
	/* parents that exist only by their children: \Noselect entries */
	rows = n;
	for (size_t i = 0; i < rows; i++) {
		for (const char *p = strchr(e[i].name, '/'); p; p = strchr(p + 1, '/')) {
			struct list_ent *par = store_folder_find_ent(e, n, e[i].name, p - e[i].name);

			if (par == NULL) {
				if (n == na) {
					na *= 2;
					e = xrealloc(e, na * sizeof(*e));
				}
				e[n] = (struct list_ent){ xstrndup(e[i].name, p - e[i].name), 0, 1, 0, 1 };
				n++;
			} else {
				par->children = 1;
			}
		}
	}
	if (n > 1)
		qsort(e, n, sizeof(*e), store_folder_cmp_ent);
	for (size_t i = 0; i < n; i++) {
		struct store_folder_entry fe = { e[i].name, e[i].su, e[i].sub, e[i].children,
						 e[i].noselect };

		if (rc == 0)
			rc = fn(&fe, arg);
		free(e[i].name);
	}
	free(e);
	return rc;
}

/* name's row if it can be opened: 0, or STORE_NO_FOLDER etc. */
int
store_folder_get_open(struct store_account *a, const char *name, struct store_frow *fr,
		      const char **error_r)
{
	char canon[512];
	int rc;

	if ((rc = store_folder_canon(name, canon, sizeof(canon), error_r)) != 0)
		return rc;
	rc = store_index_folder_get(a, canon, 0, fr);
	if (rc < 0) {
		*error_r = "cannot read the mailbox index";
		return STORE_ERROR;
	}
	if (rc > 0 || fr->noselect) {
		*error_r = "no such folder";
		return STORE_NO_FOLDER;
	}
	return 0;
}

int
store_folder_create(struct store_account *a, const char *name, unsigned special_use,
		    const char **error_r)
{
	char canon[512], disk[256], path[STORE_PATH];
	struct store_frow fr;
	int rc;

	if ((rc = store_folder_canon(name, canon, sizeof(canon), error_r)) != 0)
		return rc;
	if (store_folder_disk(canon, disk, sizeof(disk)) != 0) {
		*error_r = "folder name too long";
		return STORE_BAD_NAME;
	}
	rc = store_index_folder_get(a, canon, 0, &fr);
	if (rc == 0 && !fr.noselect) {
		*error_r = "folder exists already";
		return STORE_EXISTS;
	}
	store_folder_path(a, disk, path, sizeof(path));
	if (rc < 0 || store_folder_mkdir(path) != 0 || store_index_begin(a, 0) != 0) {
		*error_r = "cannot create the folder";
		return STORE_ERROR;
	}
	if (rc == 0) {
		char sql[160];

		snprintf(sql, sizeof(sql), "UPDATE folders SET noselect = 0, special_use = %u"
			 " WHERE id = %lld", special_use, (long long)fr.id);
		rc = store_index_exec(a, sql);
	} else {
		int64_t id = store_index_folder_add(a, canon, disk, special_use);

		rc = id < 0 ? -1 : store_sync_mark_fresh(a, id, path);
	}
	if (rc != 0 || store_index_commit(a, 0) != 0) {
		store_index_rollback(a, 0);
		*error_r = "cannot create the folder";
		return STORE_ERROR;
	}
	store_changed(a);
	return 0;
}

static int
store_folder_has_children(struct store_account *a, const char *canon)
{
	sqlite3_stmt *st;
	int found;

	if (sqlite3_prepare_v2(a->db, "SELECT 1 FROM folders WHERE substr(name, 1, ?) = ? LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK)
		return 0;
	char *prefix = xasprintf("%s/", canon);
	sqlite3_bind_int(st, 1, (int)strlen(prefix));
	sqlite3_bind_text(st, 2, prefix, -1, SQLITE_STATIC);
	found = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	free(prefix);
	return found;
}

int
store_folder_delete(struct store_account *a, const char *name, const char **error_r)
{
	char canon[512], sql[256];
	struct store_frow fr;
	sqlite3_stmt *st;
	int rc, children;

	if ((rc = store_folder_get_open(a, name, &fr, error_r)) != 0)
		return rc;
	if (strcmp(fr.name, "INBOX") == 0) {
		*error_r = "INBOX cannot be deleted";
		return STORE_BAD_NAME;
	}
	snprintf(canon, sizeof(canon), "%s", fr.name);
	children = store_folder_has_children(a, canon);
	if (store_index_begin(a, 0) != 0)
		goto fail_nolock;
	snprintf(sql, sizeof(sql), "DELETE FROM messages WHERE folder = %lld;"
		 "DELETE FROM tombstones WHERE folder = %lld;", (long long)fr.id, (long long)fr.id);
	if (store_index_exec(a, sql) != 0)
		goto fail;
	if (children)
		snprintf(sql, sizeof(sql), "UPDATE folders SET noselect = 1, special_use = 0"
			 " WHERE id = %lld", (long long)fr.id);
	else
		snprintf(sql, sizeof(sql), "DELETE FROM folders WHERE id = %lld", (long long)fr.id);
	if (store_index_exec(a, sql) != 0 ||
	    sqlite3_prepare_v2(a->db, "INSERT OR REPLACE INTO trash VALUES(?, ?)", -1, &st, NULL) !=
		    SQLITE_OK)
		goto fail;
	sqlite3_bind_text(st, 1, fr.disk, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, children ? "mail" : "all", -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE || store_index_commit(a, 0) != 0)
		goto fail;
	/* the directory goes now; after a crash, at the next account open */
	store_folder_reconcile(a);
	store_changed(a);
	return 0;
fail:
	store_index_rollback(a, 0);
fail_nolock:
	*error_r = "cannot delete the folder";
	return STORE_ERROR;
}

int
store_folder_subscribe(struct store_account *a, const char *name, int on, const char **error_r)
{
	char canon[512];
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_folder_canon(name, canon, sizeof(canon), error_r)) != 0)
		return rc;
	if (sqlite3_prepare_v2(a->db,
			       on ? "INSERT OR IGNORE INTO subscriptions VALUES(?)"
				  : "DELETE FROM subscriptions WHERE name = ?",
			       -1, &st, NULL) != SQLITE_OK) {
		*error_r = "cannot update the subscriptions";
		return STORE_ERROR;
	}
	sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : STORE_ERROR;
	sqlite3_finalize(st);
	if (rc != 0)
		*error_r = "cannot update the subscriptions";
	return rc;
}

int
store_folder_subscriptions(struct store_account *a, int (*fn)(const char *name, void *arg),
			   void *arg)
{
	char **names = NULL;
	size_t n = 0;
	sqlite3_stmt *st;
	int rc = 0;

	/* collected first: fn may call the store */
	if (sqlite3_prepare_v2(a->db, "SELECT name FROM subscriptions ORDER BY name", -1, &st,
			       NULL) != SQLITE_OK)
		return -1;
	while (sqlite3_step(st) == SQLITE_ROW) {
		names = xrealloc(names, (n + 1) * sizeof(*names));
		names[n++] = xstrdup((const char *)sqlite3_column_text(st, 0));
	}
	sqlite3_finalize(st);
	for (size_t i = 0; i < n; i++) {
		if (rc == 0)
			rc = fn(names[i], arg);
		free(names[i]);
	}
	free(names);
	return rc;
}

int
store_folder_status(struct store_account *a, const char *name, struct store_folder_info *info_r,
		    const char **error_r)
{
	struct store_folder *f = store_folder_open(a, name, NULL, error_r);
	int rc;

	if (f == NULL)
		return -1;
	rc = store_folder_info(f, info_r);
	store_folder_close(&f);
	if (rc != 0)
		*error_r = "cannot read the mailbox index";
	return rc;
}

struct store_folder *
store_folder_open(struct store_account *a, const char *name, int *rc_r, const char **error_r)
{
	struct store_folder *f;
	struct store_frow fr;
	int rc, dummy;

	if (rc_r == NULL)
		rc_r = &dummy;
	if ((rc = store_folder_get_open(a, name, &fr, error_r)) != 0) {
		*rc_r = rc;
		return NULL;
	}
	f = xcalloc(1, sizeof(*f));
	f->a = a;
	f->id = fr.id;
	f->name = xstrdup(fr.name);
	store_folder_path(a, fr.disk, f->dir, sizeof(f->dir));
	if (store_sync_folder(a, &fr, f->dir, 0) != 0) {
		store_folder_close(&f);
		*error_r = "cannot read the folder";
		*rc_r = STORE_ERROR;
		return NULL;
	}
	maildir_clean_tmp(f->dir, 36 * 3600);
	store_folder_purge(a);
	*rc_r = STORE_OK;
	return f;
}

int
store_folder_fresh(struct store_account *a, const char *name)
{
	struct store_frow fr;
	char dir[STORE_PATH];
	const char *err;

	if (store_folder_get_open(a, name, &fr, &err) != 0)
		return 0;
	store_folder_path(a, fr.disk, dir, sizeof(dir));
	return store_sync_marks_hold(&fr, dir);
}

void
store_folder_close(struct store_folder **fp)
{
	struct store_folder *f = *fp;

	if (f == NULL)
		return;
	*fp = NULL;
	free(f->name);
	free(f);
}

int
store_folder_info(struct store_folder *f, struct store_folder_info *info_r)
{
	struct store_frow fr;
	sqlite3_stmt *st;
	int rc = -1;

	if (store_index_exec(f->a, "BEGIN") != 0)
		return -1;
	if (store_index_folder_get(f->a, NULL, f->id, &fr) != 0)
		goto out;
	memset(info_r, 0, sizeof(*info_r));
	info_r->uidvalidity = fr.uidvalidity;
	info_r->uidnext = fr.uidnext;
	info_r->highestmodseq = fr.highestmodseq;
	info_r->messages = fr.messages;
	info_r->unseen = fr.unseen;
	info_r->size = fr.size;
	/* \Recent from the UID runs (a few rows, not every message's), the
	 * first unseen by a walk that stops at it */
	if (sqlite3_prepare_v2(f->a->db,
			       "SELECT (SELECT coalesce(sum(hi - max(lo, ?1) + 1), 0) FROM uidruns"
			       " WHERE folder = ?4 AND hi >= ?1),"
			       " (SELECT id FROM messages WHERE id BETWEEN ?2 AND ?3"
			       " AND (flags & 1) = 0 ORDER BY id LIMIT 1)",
			       -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(st, 1, fr.first_recent);
	sqlite3_bind_int64(st, 2, STORE_MID(f->id, 0));
	sqlite3_bind_int64(st, 3, STORE_MID(f->id, 0xffffffffu));
	sqlite3_bind_int64(st, 4, f->id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		info_r->recent = (uint32_t)sqlite3_column_int64(st, 0);
		if (sqlite3_column_type(st, 1) != SQLITE_NULL)
			info_r->first_unseen_uid = (uint32_t)(sqlite3_column_int64(st, 1) & 0xffffffff);
		rc = 0;
	}
	sqlite3_finalize(st);
out:
	store_index_exec(f->a, "COMMIT");
	return rc;
}

int
store_folder_take_recent(struct store_folder *f, uint32_t *first_r)
{
	struct store_frow fr;
	char sql[128];

	/* under the write lock: two sessions never both take the same UIDs */
	if (store_index_begin(f->a, 0) != 0)
		return -1;
	if (store_index_folder_get(f->a, NULL, f->id, &fr) != 0)
		goto fail;
	snprintf(sql, sizeof(sql), "UPDATE folders SET first_recent = uidnext WHERE id = %lld",
		 (long long)f->id);
	if (store_index_exec(f->a, sql) != 0 || store_index_commit(f->a, 0) != 0)
		goto fail;
	*first_r = fr.first_recent;
	return 0;
fail:
	store_index_rollback(f->a, 0);
	return -1;
}

/* RENAME INBOX: its messages move into a new folder; INBOX stays, empty. */
static int
store_folder_rename_inbox(struct store_account *a, const char *to, const char **error_r)
{
	struct store_folder *f;
	int rc;

	if ((rc = store_folder_create(a, to, 0, error_r)) != 0)
		return rc;
	if ((f = store_folder_open(a, "INBOX", &rc, error_r)) == NULL)
		return rc;
	rc = store_copy(f, NULL, to, 1, 0, NULL, NULL, NULL, NULL, error_r);
	store_folder_close(&f);
	return rc;
}

struct rename_ent {
	int64_t id;
	char *old_name, *new_name, *old_disk;
	char new_disk[256];
};

static void
store_folder_rename_free(struct rename_ent *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(e[i].old_name);
		free(e[i].new_name);
		free(e[i].old_disk);
	}
	free(e);
}

/* The folder and its children with their new names; STORE_EXISTS when one
 * of those is taken, STORE_BAD_NAME when too long. */
static int
store_folder_rename_plan(struct store_account *a, const char *from, const char *to,
			 struct rename_ent **e_r, size_t *n_r, const char **error_r)
{
	struct rename_ent *e = NULL;
	size_t n = 0, fl = strlen(from);
	sqlite3_stmt *st;
	int rc = 0;

	if (sqlite3_prepare_v2(a->db,
			       "SELECT id, name, disk FROM folders WHERE name = ?1 OR"
			       " substr(name, 1, ?2) = ?1 || '/'",
			       -1, &st, NULL) != SQLITE_OK)
		return STORE_ERROR;
	sqlite3_bind_text(st, 1, from, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, (int)fl + 1);
	while (sqlite3_step(st) == SQLITE_ROW) {
		e = xrealloc(e, (n + 1) * sizeof(*e));
		e[n].id = sqlite3_column_int64(st, 0);
		e[n].old_name = xstrdup((const char *)sqlite3_column_text(st, 1));
		e[n].old_disk = xstrdup((const char *)sqlite3_column_text(st, 2));
		e[n].new_name = xasprintf("%s%s", to, e[n].old_name + fl);
		n++;
	}
	sqlite3_finalize(st);
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct store_frow fr;
		char path[STORE_PATH];
		struct stat sb;

		if (strlen(e[i].new_name) > 255 ||
		    store_folder_disk(e[i].new_name, e[i].new_disk, sizeof(e[i].new_disk)) != 0) {
			*error_r = "folder name too long";
			rc = STORE_BAD_NAME;
		} else if (store_index_folder_get(a, e[i].new_name, 0, &fr) != 1) {
			*error_r = "folder exists already";
			rc = STORE_EXISTS;
		} else {
			store_folder_path(a, e[i].new_disk, path, sizeof(path));
			if (lstat(path, &sb) == 0) {
				*error_r = "a directory of that name exists";
				rc = STORE_EXISTS;
			}
		}
	}
	*e_r = e;
	*n_r = n;
	return rc;
}

static int
store_folder_rename_rows(struct store_account *a, struct rename_ent *e, size_t n)
{
	sqlite3_stmt *st, *sub;
	int rc = 0;

	if (sqlite3_prepare_v2(a->db,
			       "UPDATE folders SET name = ?, disk = ?, disk_old = disk WHERE id = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(a->db, "UPDATE OR REPLACE subscriptions SET name = ? WHERE name = ?",
			       -1, &sub, NULL) != SQLITE_OK) {
		sqlite3_finalize(st);
		return -1;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, e[i].new_name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, e[i].new_disk, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, e[i].id);
		sqlite3_reset(sub);
		sqlite3_bind_text(sub, 1, e[i].new_name, -1, SQLITE_STATIC);
		sqlite3_bind_text(sub, 2, e[i].old_name, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE || sqlite3_step(sub) != SQLITE_DONE)
			rc = -1;
	}
	sqlite3_finalize(st);
	sqlite3_finalize(sub);
	return rc;
}

int
store_folder_rename(struct store_account *a, const char *from, const char *to,
		    const char **error_r)
{
	char cf[512], ct[512], p1[STORE_PATH], p2[STORE_PATH];
	struct rename_ent *e = NULL;
	struct store_frow fr;
	size_t n = 0;
	int rc, pending = 0;

	if ((rc = store_folder_canon(from, cf, sizeof(cf), error_r)) != 0 ||
	    (rc = store_folder_canon(to, ct, sizeof(ct), error_r)) != 0)
		return rc;
	if (strcmp(cf, "INBOX") == 0)
		return store_folder_rename_inbox(a, ct, error_r);
	if ((rc = store_index_folder_get(a, cf, 0, &fr)) != 0) {
		*error_r = rc < 0 ? "cannot read the mailbox index" : "no such folder";
		return rc < 0 ? STORE_ERROR : STORE_NO_FOLDER;
	}
	if (strncmp(ct, cf, strlen(cf)) == 0 && (ct[strlen(cf)] == '/' || ct[strlen(cf)] == '\0')) {
		*error_r = "cannot rename a folder into itself";
		return strcmp(ct, cf) == 0 ? STORE_EXISTS : STORE_BAD_NAME;
	}
	if (store_index_begin(a, 0) != 0) {
		*error_r = "mailbox index busy";
		return STORE_ERROR;
	}
	if ((rc = store_folder_rename_plan(a, cf, ct, &e, &n, error_r)) != 0 ||
	    (rc = store_folder_rename_rows(a, e, n)) != 0 || (rc = store_index_commit(a, 0)) != 0) {
		store_index_rollback(a, 0);
		store_folder_rename_free(e, n);
		if (rc == -1)
			*error_r = "cannot rename the folder";
		return rc;
	}
	/* committed with disk_old: a crash from here on is finished by the
	 * next account open (store_folder_reconcile) */
	for (size_t i = 0; i < n; i++) {
		store_folder_path(a, e[i].old_disk, p1, sizeof(p1));
		store_folder_path(a, e[i].new_disk, p2, sizeof(p2));
		if (rename(p1, p2) != 0) {
			if (errno == ENOENT)   /* a \Noselect parent without a directory */
				maildir_create(p2);
			else
				pending = 1;   /* left for the next account open */
		}
	}
	durable_fsync_dir(a->root);
	if (!pending)
		store_index_exec(a, "UPDATE folders SET disk_old = NULL WHERE disk_old IS NOT NULL");
	store_folder_rename_free(e, n);
	store_changed(a);
	return 0;
}
