/*
 * store_verify: `tandem mailbox verify|repair ADDRESS`. Compares each
 * folder's index rows with its files (a file without a row, a row without
 * a file, a size or flags suffix that disagrees), UIDNEXT with the UIDs,
 * the counters the triggers keep with the rows, and looks for queue ids
 * indexed twice. Repair mends the index the way an open would (new UIDs
 * for unknown files, rows without files expunged: store_sync_folder),
 * fixes sizes, suffixes, UIDNEXT and counters; it never renumbers a UID
 * the index knows.
 * Public: store_verify.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/maildir.h"
#include "store/store_int.h"
#include "util/xalloc.h"

struct verify_ctx {
	struct store_account *a;
	FILE *report;
	int repair;
	int findings;
};

static void
store_verify_say(struct verify_ctx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
store_verify_say(struct verify_ctx *v, const char *fmt, ...)
{
	va_list ap;

	v->findings++;
	if (v->report == NULL)
		return;
	va_start(ap, fmt);
	vfprintf(v->report, fmt, ap);
	va_end(ap);
	fputc('\n', v->report);
}

static long long
store_verify_file_size(const char *path)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat sb;
	long long n = -1;
	void *map;

	if (fd < 0)
		return -1;
	if (fstat(fd, &sb) == 0) {
		if (sb.st_size == 0)
			n = 0;
		else if ((map = mmap(NULL, sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0)) != MAP_FAILED) {
			n = store_crlf_size(map, sb.st_size);
			munmap(map, sb.st_size);
		}
	}
	close(fd);
	return n;
}

/* Files of dir/sub whose basename no row of folder names. */
static void
store_verify_orphans(struct verify_ctx *v, const struct store_frow *fr, const char *dir,
		     const char *sub)
{
	sqlite3_stmt *st;
	char p[STORE_PATH + 8];
	struct dirent *de;
	DIR *d;

	snprintf(p, sizeof(p), "%s/%s", dir, sub);
	if ((d = opendir(p)) == NULL)
		return;
	if (sqlite3_prepare_v2(v->a->db, "SELECT 1 FROM messages WHERE folder = ? AND basename = ?",
			       -1, &st, NULL) != SQLITE_OK) {
		closedir(d);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		size_t bl = strcspn(de->d_name, ":");

		if (de->d_name[0] == '.')
			continue;
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, fr->id);
		sqlite3_bind_text(st, 2, de->d_name, (int)bl, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_ROW)
			store_verify_say(v, "folder %s: file %s/%s has no index row", fr->name, sub,
					 de->d_name);
	}
	sqlite3_finalize(st);
	closedir(d);
}

/* Every row: its file, size and suffix. */
static void
store_verify_rows(struct verify_ctx *v, const struct store_frow *fr, const char *dir)
{
	sqlite3_stmt *st;
	uint32_t max = 0;

	if (sqlite3_prepare_v2(v->a->db,
			       "SELECT id, basename, flags, size FROM messages WHERE id BETWEEN ? AND ?",
			       -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, STORE_MID(fr->id, 0));
	sqlite3_bind_int64(st, 2, STORE_MID(fr->id, 0xffffffffu));
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		uint32_t uid = (uint32_t)(id & 0xffffffff);
		const char *base = (const char *)sqlite3_column_text(st, 1);
		unsigned flags = (unsigned)sqlite3_column_int(st, 2);
		long long size = sqlite3_column_int64(st, 3), real;
		char path[STORE_PATH + 300], want[STORE_PATH + 300];

		if (uid > max)
			max = uid;
		if (store_msg_path(dir, base, flags, path, sizeof(path)) != 0) {
			store_verify_say(v, "folder %s: UID %u: file %s is missing", fr->name, uid,
					 base);
			continue;
		}
		if ((real = store_verify_file_size(path)) >= 0 && real != size) {
			store_verify_say(v, "folder %s: UID %u: size %lld in the index, %lld on disk",
					 fr->name, uid, size, real);
			if (v->repair) {
				char sql[160];
				snprintf(sql, sizeof(sql), "UPDATE messages SET size = %lld WHERE id = %lld",
					 real, (long long)id);
				store_index_exec(v->a, sql);
			}
		}
		store_msg_file_name(dir, base, flags, want, sizeof(want));
		if (strstr(path, "/cur/") && store_msg_suffix_flags(path) != flags) {
			store_verify_say(v, "folder %s: UID %u: file flags differ from the index",
					 fr->name, uid);
			if (v->repair)
				rename(path, want);
		}
	}
	sqlite3_finalize(st);
	if (max >= fr->uidnext) {
		store_verify_say(v, "folder %s: UIDNEXT %u is not above UID %u", fr->name,
				 fr->uidnext, max);
		if (v->repair) {
			char sql[160];
			snprintf(sql, sizeof(sql), "UPDATE folders SET uidnext = %u WHERE id = %lld",
				 max + 1, (long long)fr->id);
			store_index_exec(v->a, sql);
		}
	}
}

static void
store_verify_check(struct verify_ctx *v, const char *sql, const char *what)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(v->a->db, sql, -1, &st, NULL) != SQLITE_OK)
		return;
	while (sqlite3_step(st) == SQLITE_ROW)
		store_verify_say(v, "%s %s", what, (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
}

static void
store_verify_counters(struct verify_ctx *v)
{
	store_verify_check(v,
			   "SELECT f.name FROM folders f WHERE f.messages != (SELECT count(*) FROM"
			   " messages m WHERE m.folder = f.id) OR f.unseen != (SELECT count(*) FROM"
			   " messages m WHERE m.folder = f.id AND (m.flags & 1) = 0) OR f.size !="
			   " (SELECT coalesce(sum(size), 0) FROM messages m WHERE m.folder = f.id)",
			   "counters wrong for folder");
	store_verify_check(v,
			   "SELECT 'usage' WHERE (SELECT value FROM meta WHERE key = 'bytes') !="
			   " (SELECT coalesce(sum(size), 0) FROM messages) OR (SELECT value FROM meta"
			   " WHERE key = 'messages') != (SELECT count(*) FROM messages)",
			   "account counters wrong:");
	store_verify_check(v,
			   "SELECT qid FROM messages WHERE qid != '' GROUP BY qid HAVING count(*) > 1",
			   "queue id indexed more than once:");
	/* the UID runs (a SELECT's map) against the rows: a count per run
	 * and per folder, each an index range */
	store_verify_check(v,
			   "SELECT f.name FROM folders f WHERE (SELECT coalesce(sum(r.hi - r.lo + 1), 0)"
			   " FROM uidruns r WHERE r.folder = f.id) != (SELECT count(*) FROM messages m"
			   " WHERE m.folder = f.id) OR EXISTS (SELECT 1 FROM uidruns r WHERE"
			   " r.folder = f.id AND r.hi - r.lo + 1 != (SELECT count(*) FROM messages m"
			   " WHERE m.id BETWEEN (f.id << 32) + r.lo AND (f.id << 32) + r.hi))",
			   "UID runs wrong for folder");
	if (v->repair)
		store_index_runs_rebuild(v->a);
	if (v->repair)
		store_index_exec(v->a,
				 "UPDATE folders SET messages = (SELECT count(*) FROM messages m WHERE"
				 " m.folder = folders.id), unseen = (SELECT count(*) FROM messages m"
				 " WHERE m.folder = folders.id AND (m.flags & 1) = 0), size ="
				 " (SELECT coalesce(sum(size), 0) FROM messages m WHERE m.folder ="
				 " folders.id);"
				 "UPDATE meta SET value = (SELECT coalesce(sum(size), 0) FROM messages)"
				 " WHERE key = 'bytes';"
				 "UPDATE meta SET value = (SELECT count(*) FROM messages)"
				 " WHERE key = 'messages';");
}

int
store_verify(struct store *s, const char *address, int repair, FILE *report,
	     const char **error_r)
{
	struct verify_ctx v = { NULL, report, repair, 0 };
	char root[STORE_PATH];
	struct stat sb;
	sqlite3_stmt *st;
	int64_t ids[1024];
	size_t n = 0;

	maildir_path(s->data_dir, address, root, sizeof(root));
	if (stat(root, &sb) != 0) {
		*error_r = "no mailbox for that address";
		return -1;
	}
	if ((v.a = store_account_open(s, address, error_r)) == NULL)
		return -1;
	if (sqlite3_prepare_v2(v.a->db, "SELECT id FROM folders WHERE noselect = 0 LIMIT 1024", -1,
			       &st, NULL) != SQLITE_OK) {
		store_account_close(&v.a);
		*error_r = "cannot read the mailbox index";
		return -1;
	}
	while (n < 1024 && sqlite3_step(st) == SQLITE_ROW)
		ids[n++] = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	for (size_t i = 0; i < n; i++) {
		struct store_frow fr;
		char dir[STORE_PATH];

		if (store_index_folder_get(v.a, NULL, ids[i], &fr) != 0)
			continue;
		store_folder_path(v.a, fr.disk, dir, sizeof(dir));
		store_verify_orphans(&v, &fr, dir, "new");
		store_verify_orphans(&v, &fr, dir, "cur");
		store_verify_rows(&v, &fr, dir);
		if (repair && store_index_folder_get(v.a, NULL, ids[i], &fr) == 0)
			store_sync_folder(v.a, &fr, dir, 1);
	}
	store_verify_counters(&v);
	if (repair)
		store_changed(v.a);
	store_account_close(&v.a);
	return v.findings;
}
