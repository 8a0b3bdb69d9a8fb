/*
 * store_folder: folder names, their directories and the folder commands.
 *
 * On disk (Maildir++): INBOX is the account root's cur/new/tmp; a folder
 * "a/b" is the directory ".a.b" in the root. Each '/'-separated component
 * is written byte for byte except '.', '/', '%', the controls (< 0x20,
 * 0x7f) and a '~' at the start of a component, which become "%XX" (upper
 * case hex). So a folder's directory is always one path element that
 * starts with '.', never "." or "..", never holds a '/', and never starts
 * with ".~": that prefix is the store's own (".~del..." would be a
 * directory being removed). Names are UTF-8 as the client gave them
 * (the IMAP layer turns mUTF-7 into UTF-8); "INBOX" in any case is INBOX,
 * and "inbox/x" is stored as "INBOX/x".
 *
 * Crash safety. CREATE makes the directories, then the row (a crash in
 * between leaves a directory the next account open adopts). DELETE
 * commits the rows' removal together with a trash row naming the
 * directory, then removes it; the next open finishes what a crash left.
 * RENAME commits the new names with each old directory name (disk_old),
 * renames the directories, then clears disk_old; the next open redoes the
 * renames still pending.
 *
 * Public: store_folder_name_check, store_folder_list, store_folder_create,
 * store_folder_delete, store_folder_rename, store_folder_subscribe,
 * store_folder_status; store_int.h: store_folder_canon, store_folder_disk,
 * store_folder_undisk, store_folder_path, store_folder_defaults,
 * store_folder_reconcile, store_folder_adopt, store_folder_purge,
 * store_folder_mkdir.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/maildir.h"
#include "store/store_int.h"
#include "util/durable.h"
#include "util/xalloc.h"

/* Length of the UTF-8 sequence at s (valid, shortest form, no
 * surrogates), or 0. */
static size_t
store_folder_utf8(const unsigned char *s)
{
	size_t n;
	unsigned c = s[0];
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

int
store_folder_name_check(const char *name, const char **error_r)
{
	const unsigned char *p = (const unsigned char *)name;
	size_t len = strlen(name), comp = 0;
	int levels = 1;

	if (len == 0 || len > 255 || name[0] == '/' || name[len - 1] == '/') {
		*error_r = len > 255 ? "folder name too long" : "bad folder name";
		return STORE_BAD_NAME;
	}
	for (size_t i = 0; i < len;) {
		size_t n;

		if (p[i] == '/') {
			if (comp == 0 || ++levels > 16) {
				*error_r = comp == 0 ? "empty folder name component"
						     : "folder nested too deep";
				return STORE_BAD_NAME;
			}
			comp = 0;
			i++;
			continue;
		}
		if (p[i] < 0x20 || p[i] == 0x7f || (n = store_folder_utf8(p + i)) == 0) {
			*error_r = "folder name with a control character or bad UTF-8";
			return STORE_BAD_NAME;
		}
		if (p[i] == '.' && (comp == 0) &&
		    (p[i + 1] == '/' || p[i + 1] == '\0' ||
		     (p[i + 1] == '.' && (p[i + 2] == '/' || p[i + 2] == '\0')))) {
			*error_r = "folder name with . or ..";
			return STORE_BAD_NAME;
		}
		comp += n;
		i += n;
	}
	return 0;
}

/* The checked, canonical spelling (INBOX upper case) into out. */
int
store_folder_canon(const char *name, char *out, size_t len, const char **error_r)
{
	int rc = store_folder_name_check(name, error_r);

	if (rc != 0)
		return rc;
	if (strncasecmp(name, "INBOX", 5) == 0 && (name[5] == '\0' || name[5] == '/'))
		snprintf(out, len, "INBOX%s", name + 5);
	else
		snprintf(out, len, "%s", name);
	return 0;
}

/* The directory name of a canonical name ("" for INBOX); -1 when the
 * encoded name is longer than a file name may be. */
int
store_folder_disk(const char *name, char *out, size_t len)
{
	size_t o = 0;
	int start = 1;

	if (strcmp(name, "INBOX") == 0) {
		out[0] = '\0';
		return 0;
	}
	if (len > 256)
		len = 256;
	out[o++] = '.';
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		unsigned c = *p;

		if (o + 4 > len)
			return -1;
		if (c == '/') {
			out[o++] = '.';
			start = 1;
			continue;
		}
		if (c == '.' || c == '%' || c < 0x20 || c == 0x7f || (start && c == '~'))
			o += snprintf(out + o, len - o, "%%%02X", c);
		else
			out[o++] = (char)c;
		start = 0;
	}
	out[o] = '\0';
	return 0;
}

static int
store_folder_hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* The folder name of a directory found on disk, or -1 when it is not one
 * of ours (".~..." or a broken escape); the caller checks the name. */
int
store_folder_undisk(const char *disk, char *out, size_t len)
{
	size_t o = 0;

	if (disk[0] != '.' || disk[1] == '\0' || disk[1] == '~')
		return -1;
	for (const char *p = disk + 1; *p; p++) {
		int c = (unsigned char)*p;

		if (o + 2 > len)
			return -1;
		if (c == '.') {
			c = '/';
		} else if (c == '%') {
			int h = store_folder_hex(p[1]), l = h < 0 ? -1 : store_folder_hex(p[2]);
			if (l < 0)
				return -1;
			c = h << 4 | l;
			p += 2;
			if (c == 0)
				return -1;
		}
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

void
store_folder_path(struct store_account *a, const char *disk, char *buf, size_t len)
{
	if (disk[0] == '\0')
		snprintf(buf, len, "%s", a->root);
	else
		snprintf(buf, len, "%s/%s", a->root, disk);
}

/* A folder's Maildir, with the empty "maildirfolder" file Maildir++
 * tools (Courier, maildrop) look for. */
int
store_folder_mkdir(const char *path)
{
	char p[STORE_PATH + 16];
	int fd;

	if (maildir_create(path) != 0)
		return -1;
	snprintf(p, sizeof(p), "%s/maildirfolder", path);
	if ((fd = open(p, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600)) >= 0)
		close(fd);
	return 0;
}

static int
store_folder_subscribe_sql(struct store_account *a, const char *name, int on)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(a->db,
			       on ? "INSERT OR IGNORE INTO subscriptions VALUES(?)"
				  : "DELETE FROM subscriptions WHERE name = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	return rc;
}

static const struct {
	const char *name;
	unsigned su;
} store_folder_default[] = {
	{ "Drafts", STORE_SU_DRAFTS }, { "Sent", STORE_SU_SENT }, { "Trash", STORE_SU_TRASH },
	{ "Junk", STORE_SU_JUNK },     { "Archive", STORE_SU_ARCHIVE },
};

static int
store_folder_meta_init(struct store_account *a)
{
	sqlite3_stmt *st;
	int v = -1;

	if (sqlite3_prepare_v2(a->db, "SELECT value FROM meta WHERE key = 'init'", -1, &st,
			       NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* First open: INBOX and the default folders, subscribed. */
int
store_folder_defaults(struct store_account *a, const char **error_r)
{
	char disk[256], path[STORE_PATH];
	int rc = store_folder_meta_init(a);
	size_t n = sizeof(store_folder_default) / sizeof(store_folder_default[0]);

	if (rc != 0) {
		if (rc > 0)
			return 0;
		*error_r = "cannot read the mailbox index";
		return -1;
	}
	if (maildir_create(a->root) != 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		store_folder_disk(store_folder_default[i].name, disk, sizeof(disk));
		store_folder_path(a, disk, path, sizeof(path));
		if (store_folder_mkdir(path) != 0)
			goto fail;
	}
	if (store_index_begin(a, 0) != 0)
		goto fail;
	if (store_folder_meta_init(a) == 0) {
		struct store_frow fr;

		int64_t id;

		if (store_index_folder_get(a, "INBOX", 0, &fr) == 1) {
			if ((id = store_index_folder_add(a, "INBOX", "", 0)) < 0)
				goto rollback;
			store_sync_mark_fresh(a, id, a->root);
		}
		if (store_folder_subscribe_sql(a, "INBOX", 1) != 0)
			goto rollback;
		for (size_t i = 0; i < n; i++) {
			store_folder_disk(store_folder_default[i].name, disk, sizeof(disk));
			store_folder_path(a, disk, path, sizeof(path));
			if (store_index_folder_get(a, store_folder_default[i].name, 0, &fr) == 1) {
				if ((id = store_index_folder_add(a, store_folder_default[i].name, disk,
								 store_folder_default[i].su)) < 0)
					goto rollback;
				store_sync_mark_fresh(a, id, path);
			}
			if (store_folder_subscribe_sql(a, store_folder_default[i].name, 1) != 0)
				goto rollback;
		}
		if (store_index_exec(a, "UPDATE meta SET value = 1 WHERE key = 'init'") != 0)
			goto rollback;
	}
	if (store_index_commit(a, 0) == 0)
		return 0;
fail:
	*error_r = "cannot create the mailbox";
	return -1;
rollback:
	store_index_rollback(a, 0);
	goto fail;
}

static int
store_folder_rm_cb(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

/* rm -rf, never following a link (FTW_PHYS). */
static int
store_folder_rmtree(const char *path)
{
	if (nftw(path, store_folder_rm_cb, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
		return -1;
	return 0;
}

/* Directory of a folder row removed or emptied: what = "all" or "mail". */
static int
store_folder_trash_finish(struct store_account *a, const char *disk, const char *what)
{
	char path[STORE_PATH], sub[STORE_PATH + 8];
	sqlite3_stmt *st;
	int rc = 0;

	store_folder_path(a, disk, path, sizeof(path));
	if (strcmp(what, "all") == 0) {
		rc = store_folder_rmtree(path);
	} else {
		static const char *const subs[] = { "cur", "new", "tmp" };

		for (int i = 0; i < 3 && rc == 0; i++) {
			snprintf(sub, sizeof(sub), "%s/%s", path, subs[i]);
			rc = store_folder_rmtree(sub);
		}
	}
	durable_fsync_dir(a->root);
	if (rc != 0 || sqlite3_prepare_v2(a->db, "DELETE FROM trash WHERE disk = ?", -1, &st,
					  NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, disk, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	return rc;
}

static int
store_folder_exists_dir(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* Finish renames a crash interrupted (disk_old still set). */
static void
store_folder_reconcile_renames(struct store_account *a)
{
	sqlite3_stmt *st;
	char from[STORE_PATH], to[STORE_PATH];
	int any = 0;

	if (sqlite3_prepare_v2(a->db, "SELECT disk, disk_old FROM folders WHERE disk_old IS NOT NULL",
			       -1, &st, NULL) != SQLITE_OK)
		return;
	while (sqlite3_step(st) == SQLITE_ROW) {
		store_folder_path(a, (const char *)sqlite3_column_text(st, 1), from, sizeof(from));
		store_folder_path(a, (const char *)sqlite3_column_text(st, 0), to, sizeof(to));
		if (store_folder_exists_dir(from) && !store_folder_exists_dir(to))
			rename(from, to);
		any = 1;
	}
	sqlite3_finalize(st);
	if (any) {
		durable_fsync_dir(a->root);
		store_index_exec(a, "UPDATE folders SET disk_old = NULL WHERE disk_old IS NOT NULL");
	}
}

static int
store_folder_known_disk(struct store_account *a, const char *disk)
{
	sqlite3_stmt *st = store_index_stmt(a, ST_FOLDER_KNOWN_DISK);
	int found;

	if (st == NULL)
		return 1;
	sqlite3_bind_text(st, 1, disk, -1, SQLITE_STATIC);
	found = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_reset(st);
	return found;
}

/*
 * Maildir++ folders made by another program (or whose row a crash lost
 * between mkdir and commit) become folders of the index. Every delivery
 * and LIST asks, so the scan runs only when the account's directory has
 * changed since the last one: a folder made or removed changes its
 * mtime. The mtime of a scan is kept only when it was at least two
 * seconds old as the scan began (a change in the same clock tick after
 * the stat would not move it) and no folder was half made (a directory
 * without cur/ yet, which changes only the folder's own mtime).
 */
void
store_folder_adopt(struct store_account *a)
{
	DIR *d;
	struct dirent *de;
	struct stat sb;
	char name[512], canon[512], sub[STORE_PATH + 300];
	const char *err;
	int settled;

	if (lstat(a->root, &sb) != 0)
		return;
	if (a->adopt_known && sb.st_mtim.tv_sec == a->adopt_mtim.tv_sec &&
	    sb.st_mtim.tv_nsec == a->adopt_mtim.tv_nsec)
		return;
	a->adopt_known = 0;
	settled = sb.st_mtim.tv_sec <= time(NULL) - 2;
	if ((d = opendir(a->root)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.' || strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0 ||
		    store_folder_undisk(de->d_name, name, sizeof(name)) != 0 ||
		    store_folder_canon(name, canon, sizeof(canon), &err) != 0)
			continue;
		/* the directory itself, not through a link someone planted */
		snprintf(sub, sizeof(sub), "%s/%s", a->root, de->d_name);
		if (!store_folder_exists_dir(sub))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s/cur", a->root, de->d_name);
		if (!store_folder_exists_dir(sub)) {
			settled = 0;
			continue;
		}
		if (store_folder_known_disk(a, de->d_name))
			continue;
		if (store_index_begin(a, 0) == 0) {
			struct store_frow fr;
			/* a name taken by a row elsewhere: the row wins */
			if (store_index_folder_get(a, canon, 0, &fr) != 1 ||
			    store_index_folder_add(a, canon, de->d_name, 0) < 0) {
				store_index_rollback(a, 0);
				settled = 0;
			} else if (store_index_commit(a, 0) != 0) {
				settled = 0;
			}
		} else {
			settled = 0;
		}
	}
	closedir(d);
	if (settled) {
		a->adopt_mtim = sb.st_mtim;
		a->adopt_known = 1;
	}
}

/* Deletes and renames a crash interrupted. */
static void
store_folder_finish_unfinished(struct store_account *a)
{
	sqlite3_stmt *st;
	struct {
		char disk[256], what[8];
	} t[32];
	int n = 0;

	if (sqlite3_prepare_v2(a->db, "SELECT disk, old FROM trash LIMIT 32", -1, &st, NULL) ==
	    SQLITE_OK) {
		while (n < 32 && sqlite3_step(st) == SQLITE_ROW) {
			snprintf(t[n].disk, sizeof(t[n].disk), "%s", sqlite3_column_text(st, 0));
			snprintf(t[n].what, sizeof(t[n].what), "%s", sqlite3_column_text(st, 1));
			n++;
		}
		sqlite3_finalize(st);
	}
	for (int i = 0; i < n; i++)
		store_folder_trash_finish(a, t[i].disk, t[i].what);
	store_folder_reconcile_renames(a);
}

/* At account open: leftovers of interrupted deletes and renames, folders
 * that appeared on disk, tombstones past their retention. */
int
store_folder_reconcile(struct store_account *a)
{
	sqlite3_stmt *st = store_index_stmt(a, ST_FOLDER_UNFINISHED);
	int unfinished;

	/* one cached read in the usual case: nothing was left unfinished */
	if (st == NULL)
		return -1;
	unfinished = sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int(st, 0) != 0;
	sqlite3_reset(st);
	if (unfinished)
		store_folder_finish_unfinished(a);
	store_folder_adopt(a);
	return store_folder_purge(a);
}

/* Tombstones past [mailbox] expunged_retention go, at most hourly. */
int
store_folder_purge(struct store_account *a)
{
	long long now = (long long)time(NULL);
	char sql[128];

	if (a->purged > now - 3600)
		return 0;
	a->purged = now;
	snprintf(sql, sizeof(sql), "DELETE FROM tombstones WHERE time < %lld",
		 now - a->s->retention);
	return store_index_exec(a, sql);
}
