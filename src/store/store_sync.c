/*
 * store_sync: reconciles a folder's files with its index rows, at
 * store_folder_open and store_folder_status (and `mailbox repair`).
 *
 * Skipped when neither new/ nor cur/ changed since the last sync (their
 * mtimes, in nanoseconds, are kept in the folder row). The store's own
 * changes keep the recorded mtimes current (store_sync_mark_*), so
 * delivering never makes the next open scan. Marks that are only
 * inferred (sync_checked = 0: several deliveries overlapped, see
 * store_append.c, or a scan saw a directory changed within the last two
 * seconds, when a change in the same clock tick would not move its mtime
 * on kernels without multigrain timestamps, i.e. before Linux 6.13) are
 * trusted by the open, which has a worker scan the folder behind it
 * (store_sync_later; what the scan finds reaches sessions as any change
 * does). Otherwise the open scans, holding the index's write lock (every
 * change the store makes to a folder's directory happens under it, so the
 * scan never sees half of one of ours):
 *   - a file whose basename a row names is that message; when it is in
 *     cur/ and its ":2," suffix disagrees with the row, the suffix wins
 *     (store_sync_import_flags says why);
 *   - a file whose basename is in the folder's tombstones is the leftover
 *     of an expunge interrupted after its commit: it is removed;
 *   - a file that is a hard link of a message indexed in another folder
 *     under the same basename is the leftover of a COPY or MOVE
 *     interrupted before its commit: it is removed (the source keeps it);
 *   - any other file is new: it gets the next UID, in (mtime, name)
 *     order, its flags from its suffix, its qid from a name store_deliver
 *     gave it;
 *   - a row without a file is expunged (tombstone).
 * New files in new/ stay there: \Recent is the index's (first_recent),
 * and a file moves to cur/ when its flags first change.
 * Public (store_int.h): store_sync_folder, store_sync_mark_begin,
 * store_sync_mark_end, store_sync_mark_moved, store_sync_mark_fresh,
 * store_sync_invalidate, store_sync_checks_free, store_sync_marks_hold.
 */
#include <dirent.h>
#include <event2/event.h>
#include <errno.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store_int.h"
#include "util/log.h"
#include "util/worker.h"
#include "util/xalloc.h"

struct sync_file {
	char *name;          /* as in the directory */
	size_t blen;         /* basename length: up to ':' */
	int in_cur;
	long long mtime;
	ino_t ino;
};

struct sync_row {
	char *basename;
	uint32_t uid;
	unsigned flags;
};

struct sync_set {
	struct sync_file *f;
	size_t nf, af;
	struct sync_row *r;
	size_t nr, ar;
};

static long long
store_sync_mtime(const char *dir, const char *sub)
{
	char p[STORE_PATH + 8];
	struct stat sb;

	snprintf(p, sizeof(p), "%s/%s", dir, sub);
	if (stat(p, &sb) != 0)
		return -1;
	return (long long)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
}

static int
store_sync_readdir(struct sync_set *ss, const char *dir, int in_cur)
{
	char p[STORE_PATH + 8];
	struct dirent *de;
	DIR *d;

	snprintf(p, sizeof(p), "%s/%s", dir, in_cur ? "cur" : "new");
	/* without cur/ the folder's directory is not where the row says (a
	 * rename in progress, or gone): never expunge everything for that */
	if ((d = opendir(p)) == NULL)
		return errno == ENOENT && !in_cur ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		struct sync_file *f;
		const char *colon;

		if (de->d_name[0] == '.')
			continue;
		/* the common case (a known file) costs no stat: only new
		 * files are looked at closer (store_sync_stat) */
		if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
			continue;
		if (ss->nf == ss->af) {
			ss->af = ss->af ? ss->af * 2 : 256;
			ss->f = xrealloc(ss->f, ss->af * sizeof(*ss->f));
		}
		f = &ss->f[ss->nf++];
		f->name = xstrdup(de->d_name);
		colon = strchr(f->name, ':');
		f->blen = colon ? (size_t)(colon - f->name) : strlen(f->name);
		f->in_cur = in_cur;
		f->mtime = -1;
		f->ino = 0;
	}
	closedir(d);
	return 0;
}

static int
store_sync_cmp_file(const void *x, const void *y)
{
	const struct sync_file *a = x, *b = y;
	size_t n = a->blen < b->blen ? a->blen : b->blen;
	int c = memcmp(a->name, b->name, n);

	if (c != 0)
		return c;
	if (a->blen != b->blen)
		return a->blen < b->blen ? -1 : 1;
	return b->in_cur - a->in_cur;   /* cur/ first: the one kept */
}

static int
store_sync_cmp_row(const void *x, const void *y)
{
	const struct sync_row *a = x, *b = y;

	return strcmp(a->basename, b->basename);
}

static int
store_sync_cmp_new(const void *x, const void *y)
{
	const struct sync_file *a = *(struct sync_file *const *)x, *b = *(struct sync_file *const *)y;

	if (a->mtime != b->mtime)
		return a->mtime < b->mtime ? -1 : 1;
	return strcmp(a->name, b->name);
}

static int
store_sync_load(struct store_account *a, int64_t folder, struct sync_set *ss)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(a->db, "SELECT id, basename, flags FROM messages WHERE id BETWEEN ? AND ?",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, STORE_MID(folder, 0));
	sqlite3_bind_int64(st, 2, STORE_MID(folder, 0xffffffffu));
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (ss->nr == ss->ar) {
			ss->ar = ss->ar ? ss->ar * 2 : 256;
			ss->r = xrealloc(ss->r, ss->ar * sizeof(*ss->r));
		}
		ss->r[ss->nr].uid = (uint32_t)(sqlite3_column_int64(st, 0) & 0xffffffff);
		ss->r[ss->nr].basename = xstrdup((const char *)sqlite3_column_text(st, 1));
		ss->r[ss->nr].flags = (unsigned)sqlite3_column_int(st, 2);
		ss->nr++;
	}
	sqlite3_finalize(st);
	return 0;
}

static void
store_sync_rows_free(struct sync_set *ss)
{
	for (size_t i = 0; i < ss->nr; i++)
		free(ss->r[i].basename);
	free(ss->r);
	ss->r = NULL;
	ss->nr = ss->ar = 0;
}

static void
store_sync_files_free(struct sync_set *ss)
{
	for (size_t i = 0; i < ss->nf; i++)
		free(ss->f[i].name);
	free(ss->f);
	ss->f = NULL;
	ss->nf = ss->af = 0;
}

static void
store_sync_set_free(struct sync_set *ss)
{
	size_t n = ss->nf + ss->nr;

	store_sync_files_free(ss);
	store_sync_rows_free(ss);
#ifdef __GLIBC__
	/* a large folder's names are megabytes in a worker's arena, which
	 * glibc would otherwise keep for good */
	if (n > 20000)
		malloc_trim(0);
#endif
}

/* The qid of a name store_deliver gave ("<qid>.Q.<host>"), into qid. */
static void
store_sync_qid(const char *base, size_t blen, char *qid, size_t len)
{
	const char *q = memchr(base, '.', blen);

	qid[0] = '\0';
	if (q != NULL && (size_t)(q - base) < len && q + 3 <= base + blen &&
	    strncmp(q, ".Q.", 3) == 0)
		snprintf(qid, len, "%.*s", (int)(q - base), base);
}

/* Is basename (of file f in dir) a tombstone of the folder, or a link of
 * a message indexed elsewhere (an interrupted COPY or MOVE)? */
static int
store_sync_leftover(struct store_account *a, int64_t folder, const char *base,
		    const char *path, ino_t ino)
{
	sqlite3_stmt *st = store_index_stmt(a, ST_TOMB_BY_BASE);
	int found = 0;

	if (st == NULL)
		return 0;
	sqlite3_bind_int64(st, 1, folder);
	sqlite3_bind_text(st, 2, base, -1, SQLITE_STATIC);
	found = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_reset(st);
	if (found)
		return 1;
	if ((st = store_index_stmt(a, ST_MSG_OTHER_BASE)) == NULL)
		return 0;
	sqlite3_bind_text(st, 1, base, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, folder);
	while (!found && sqlite3_step(st) == SQLITE_ROW) {
		char dir[STORE_PATH], p[STORE_PATH];
		struct stat sb;

		store_folder_path(a, (const char *)sqlite3_column_text(st, 1), dir, sizeof(dir));
		if (store_msg_path(dir, base, (unsigned)sqlite3_column_int(st, 0), p, sizeof(p)) == 0 &&
		    stat(p, &sb) == 0 && sb.st_ino == ino && strcmp(p, path) != 0)
			found = 1;
	}
	sqlite3_reset(st);
	return found;
}

static int
store_sync_add(struct store_account *a, int64_t folder, const char *dir,
	       const struct sync_file *f, uint64_t *modseq)
{
	struct store_newmsg m = { 0 };
	char base[512], path[STORE_PATH + 600], qid[128];
	int rc;

	snprintf(base, sizeof(base), "%.*s", (int)f->blen, f->name);
	snprintf(path, sizeof(path), "%s/%s/%s", dir, f->in_cur ? "cur" : "new", f->name);
	if (store_sync_leftover(a, folder, base, path, f->ino)) {
		log_msg(NULL, "event=store_recovery account=%s removed=%s", log_addr(a->address),
			log_q(path));
		unlink(path);
		return 0;
	}
	store_sync_qid(base, f->blen, qid, sizeof(qid));
	m.basename = base;
	m.flags = f->in_cur ? store_msg_suffix_flags(f->name) : 0;
	m.qid = qid;
	m.internaldate = f->mtime;
	m.tz = store_local_tz(f->mtime);
	if (store_newmsg_fill(&m, path) != 0)
		return errno == ENOENT ? 0 : -1;
	rc = store_index_msg_add(a, folder, &m, NULL, modseq);
	store_newmsg_free(&m);
	return rc;
}

/* A file in cur/ whose suffix disagrees with its row: another program
 * changed the flags, or a STORE renamed it and died before its commit
 * (STORE renames under the write lock, so never one in progress). The
 * file's flags win: either way that is the newer state. */
static int
store_sync_import_flags(struct store_account *a, int64_t folder, const struct sync_row *r,
			unsigned flags, uint64_t *modseq)
{
	sqlite3_stmt *st;
	int rc;

	if (*modseq == 0 && (*modseq = store_index_modseq(a, folder)) == 0)
		return -1;
	if (sqlite3_prepare_v2(a->db, "UPDATE messages SET flags = ?, modseq = ? WHERE id = ?", -1,
			       &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int(st, 1, (int)flags);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)*modseq);
	sqlite3_bind_int64(st, 3, STORE_MID(folder, r->uid));
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	return rc;
}

/* The same basename in new/ and cur/ (another program's half-done move)
 * is one message: keep the first of the sorted files, cur/. */
static void
store_sync_dedupe(struct sync_set *ss)
{
	size_t k = 0;

	if (ss->nf < 2)
		return;
	for (size_t x = 1; x < ss->nf; x++) {
		if (ss->f[x].blen == ss->f[k].blen &&
		    memcmp(ss->f[x].name, ss->f[k].name, ss->f[k].blen) == 0)
			free(ss->f[x].name);
		else
			ss->f[++k] = ss->f[x];
	}
	ss->nf = k + 1;
}

/* mtime and inode of the new files; those gone or not regular files
 * drop out. Returns how many are left. */
static size_t
store_sync_stat_new(const char *dir, struct sync_file **add, size_t nadd)
{
	size_t k = 0;

	for (size_t x = 0; x < nadd; x++) {
		char p[STORE_PATH + 600];
		struct stat sb;

		snprintf(p, sizeof(p), "%s/%s/%s", dir, add[x]->in_cur ? "cur" : "new", add[x]->name);
		if (lstat(p, &sb) == 0 && S_ISREG(sb.st_mode)) {
			add[x]->mtime = sb.st_mtime;
			add[x]->ino = sb.st_ino;
			add[k++] = add[x];
		}
	}
	return k;
}

static int
store_sync_apply(struct store_account *a, int64_t folder, const char *dir, struct sync_set *ss)
{
	struct sync_file **add = NULL;
	size_t nadd = 0, i = 0, j = 0;
	uint64_t modseq = 0;
	int rc = 0;

	if (ss->nf > 1)
		qsort(ss->f, ss->nf, sizeof(*ss->f), store_sync_cmp_file);
	if (ss->nr > 1)
		qsort(ss->r, ss->nr, sizeof(*ss->r), store_sync_cmp_row);
	add = xmalloc((ss->nf + 1) * sizeof(*add));
	store_sync_dedupe(ss);
	while (rc == 0 && (i < ss->nf || j < ss->nr)) {
		int c;

		if (i == ss->nf)
			c = 1;
		else if (j == ss->nr)
			c = -1;
		else {
			size_t bl = strlen(ss->r[j].basename);
			size_t n = ss->f[i].blen < bl ? ss->f[i].blen : bl;

			c = memcmp(ss->f[i].name, ss->r[j].basename, n);
			if (c == 0 && ss->f[i].blen != bl)
				c = ss->f[i].blen < bl ? -1 : 1;
		}
		if (c < 0) {
			add[nadd++] = &ss->f[i++];
		} else if (c > 0) {
			if (modseq == 0 && (modseq = store_index_modseq(a, folder)) == 0)
				rc = -1;
			else
				rc = store_index_msg_remove(a, folder, ss->r[j].uid, ss->r[j].basename,
							    modseq);
			j++;
		} else {
			if (ss->f[i].in_cur && store_msg_suffix_flags(ss->f[i].name) != ss->r[j].flags)
				rc = store_sync_import_flags(a, folder, &ss->r[j],
							     store_msg_suffix_flags(ss->f[i].name),
							     &modseq);
			i++;
			j++;
		}
	}
	nadd = store_sync_stat_new(dir, add, nadd);
	if (nadd > 1)
		qsort(add, nadd, sizeof(*add), store_sync_cmp_new);
	for (size_t k = 0; rc == 0 && k < nadd; k++) {
		uint64_t ms = modseq;

		rc = store_sync_add(a, folder, dir, add[k], &ms);
		modseq = ms;
	}
	free(add);
	return rc;
}

/* Can a scan's marks be taken as checked? Not when a directory changed
 * so recently that a change in the same clock tick would not show: they
 * are then recorded as inferred, and the next open has them checked
 * again in the background. */
static int
store_sync_trust(long long mt)
{
	long long now = (long long)time(NULL) * 1000000000LL;

	return mt <= now - 2000000000LL;
}

/* Our own changes to a folder's directories keep the recorded mtimes
 * current when the index was in sync before (mark_begin under the write
 * lock, right before the change; mark_end right after it), so an open
 * after a delivery need not scan. mark_end's stat makes the kernel give
 * the next change a distinct mtime (multigrain timestamps, Linux 6.13+);
 * on older kernels a file another program adds in the same clock tick
 * as ours is missed until the directory changes next (or `mailbox
 * repair`). */
void
store_sync_mark_begin(struct store_account *a, int64_t folder, const char *dir,
		      struct store_dirmark *m)
{
	struct store_frow fr;

	m->in_sync = 0;
	if (store_index_folder_get(a, NULL, folder, &fr) != 0 || fr.sync_new <= 0 ||
	    fr.sync_cur <= 0)
		return;
	m->in_sync = store_sync_mtime(dir, "new") == fr.sync_new &&
		     store_sync_mtime(dir, "cur") == fr.sync_cur;
}

/* The folder's marks: checked 1 seen by a scan, 0 inferred, -1 as it was. */
static int
store_sync_set_marks(struct store_account *a, int64_t folder, long long mt_new,
		     long long mt_cur, int checked)
{
	sqlite3_stmt *st = store_index_stmt(a, ST_FOLDER_SYNCED);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mt_new);
	sqlite3_bind_int64(st, 2, mt_cur);
	if (checked >= 0)
		sqlite3_bind_int(st, 3, checked);
	sqlite3_bind_int64(st, 4, folder);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_reset(st);
	return rc;
}

/* The directories' mtimes as they are now (checked as in set_marks). */
static int
store_sync_record(struct store_account *a, int64_t folder, const char *dir, int checked)
{
	return store_sync_set_marks(a, folder, store_sync_mtime(dir, "new"),
				    store_sync_mtime(dir, "cur"), checked);
}

void
store_sync_mark_end(struct store_account *a, int64_t folder, const char *dir,
		    const struct store_dirmark *m)
{
	if (m->in_sync)
		store_sync_record(a, folder, dir, -1);
}

/* After deliveries whose files all have their rows (store_append.c):
 * alone, one delivery, as mark_end; else the marks are inferred over
 * several and a scan is still to confirm them (sync_checked = 0). */
void
store_sync_mark_moved(struct store_account *a, int64_t folder, const char *dir, int alone)
{
	store_sync_record(a, folder, dir, alone ? -1 : 0);
}

/* The folder's next open scans (its rows changed before its files). */
int
store_sync_invalidate(struct store_account *a, int64_t folder)
{
	return store_sync_set_marks(a, folder, 0, 0, -1);
}

static int
store_sync_empty(const char *dir, const char *sub)
{
	char p[STORE_PATH + 8];
	struct dirent *de;
	int empty = 1;
	DIR *d;

	snprintf(p, sizeof(p), "%s/%s", dir, sub);
	if ((d = opendir(p)) == NULL)
		return 0;
	while (empty && (de = readdir(d)) != NULL)
		empty = de->d_name[0] == '.';
	closedir(d);
	return empty;
}

/* A folder just created (inside its transaction): when its directories
 * are empty the index, empty too, is in sync with them. */
int
store_sync_mark_fresh(struct store_account *a, int64_t folder, const char *dir)
{
	if (!store_sync_empty(dir, "new") || !store_sync_empty(dir, "cur"))
		return 0;
	return store_sync_record(a, folder, dir, -1);
}

/* Is the folder's directory being renamed (by another handle, or left so
 * by a crash until the next account open)? */
static int
store_sync_renaming(struct store_account *a, int64_t folder)
{
	sqlite3_stmt *st;
	int r = 0;

	if (sqlite3_prepare_v2(a->db, "SELECT disk_old IS NOT NULL FROM folders WHERE id = ?", -1,
			       &st, NULL) != SQLITE_OK)
		return 1;
	sqlite3_bind_int64(st, 1, folder);
	if (sqlite3_step(st) == SQLITE_ROW)
		r = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return r;
}

/* A check of inferred marks, on a worker. One per folder at a time; one
 * that could only infer again (the directory had just changed) leaves its
 * entry behind so the folder is not scanned again for two seconds. */
#define STORE_CHECK_DELAY 3   /* seconds after the open that asked */

struct store_check {
	struct store *s;
	char *address;
	int64_t folder;
	int running;
	long long not_before;
	struct store_check *next;
};

static void
store_sync_check_work(void *arg)
{
	struct store_check *c = arg;
	struct store *s = c->s;
	const char *err = NULL;
	struct store_account *a = store_account_open(s, c->address, &err);
	struct store_frow fr;
	int again = 0;

	if (a != NULL && store_index_folder_get(a, NULL, c->folder, &fr) == 0 &&
	    !fr.sync_checked) {
		char dir[STORE_PATH];

		store_folder_path(a, fr.disk, dir, sizeof(dir));
		if (store_sync_folder(a, &fr, dir, 1) != 0)
			log_msg(NULL, "event=store_error account=%s error=%s", log_addr(c->address),
				log_q("cannot check the folder's files"));
		again = store_index_folder_get(a, NULL, c->folder, &fr) == 0 && !fr.sync_checked;
	}
	store_account_close(&a);
	pthread_mutex_lock(&s->lock);
	c->running = 0;
	c->not_before = (long long)time(NULL) + 3;
	if (!again) {
		for (struct store_check **pp = &s->checking; *pp != NULL; pp = &(*pp)->next)
			if (*pp == c) {
				*pp = c->next;
				break;
			}
	}
	pthread_mutex_unlock(&s->lock);
	if (!again) {
		free(c->address);
		free(c);
	}
}

static void
store_sync_check_fire(evutil_socket_t fd, short what, void *arg)
{
	struct store_check *c = arg;

	(void)fd;
	(void)what;
	worker_submit_background(c->s->pool, store_sync_check_work, NULL, c);
}

/* store_free: the entries left (the pool is gone: none runs). */
void
store_sync_checks_free(struct store *s)
{
	while (s->checking != NULL) {
		struct store_check *c = s->checking;

		s->checking = c->next;
		free(c->address);
		free(c);
	}
}

/* Queue the check: 0 (queued, running, or not due yet), or -1 without a
 * pool. */
static int
store_sync_later(struct store_account *a, int64_t folder)
{
	struct store *s = a->s;
	struct store_check *c;
	int go = 1;

	if (s->pool == NULL)
		return -1;
	pthread_mutex_lock(&s->lock);
	for (c = s->checking; c != NULL; c = c->next)
		if (c->folder == folder && strcmp(c->address, a->address) == 0)
			break;
	if (c != NULL) {
		go = !c->running && (long long)time(NULL) >= c->not_before;
	} else {
		c = xcalloc(1, sizeof(*c));
		c->s = s;
		c->address = xstrdup(a->address);
		c->folder = folder;
		c->next = s->checking;
		s->checking = c;
	}
	if (go)
		c->running = 1;
	pthread_mutex_unlock(&s->lock);
	if (go) {
		/* behind the client's first commands, and late enough that the
		 * directories are usually past the two seconds that make a scan
		 * only infer them again */
		struct timeval later = { STORE_CHECK_DELAY, 0 };

		if (s->base == NULL ||
		    event_base_once(s->base, -1, EV_TIMEOUT, store_sync_check_fire, c, &later) != 0)
			worker_submit_background(s->pool, store_sync_check_work, NULL, c);
	}
	return 0;
}

/* Do the (sorted) files and rows agree, as store_sync_apply would find? */
static int
store_sync_same(struct sync_set *ss)
{
	if (ss->nf != ss->nr)
		return 0;
	if (ss->nf > 1)
		qsort(ss->f, ss->nf, sizeof(*ss->f), store_sync_cmp_file);
	if (ss->nr > 1)
		qsort(ss->r, ss->nr, sizeof(*ss->r), store_sync_cmp_row);
	for (size_t i = 0; i < ss->nf; i++) {
		const struct sync_file *f = &ss->f[i];

		if (strlen(ss->r[i].basename) != f->blen ||
		    memcmp(f->name, ss->r[i].basename, f->blen) != 0)
			return 0;
		if (f->in_cur && store_msg_suffix_flags(f->name) != ss->r[i].flags)
			return 0;
	}
	return 1;
}

static int
store_sync_record_scan(struct store_account *a, int64_t folder, long long mt_new,
		       long long mt_cur)
{
	return store_sync_set_marks(a, folder, mt_new, mt_cur,
				    store_sync_trust(mt_new) && store_sync_trust(mt_cur));
}

/* Do the folder's recorded marks still match its directories? */
int
store_sync_marks_hold(const struct store_frow *fr, const char *dir)
{
	long long mt_new = store_sync_mtime(dir, "new"), mt_cur = store_sync_mtime(dir, "cur");

	return mt_new > 0 && mt_new == fr->sync_new && mt_cur > 0 && mt_cur == fr->sync_cur;
}

/* 0 in sync (now), -1 error. force: scan whatever the mtimes say. Marks
 * that hold but were inferred (sync_checked = 0) are trusted for now and
 * confirmed by a scan on a worker; what that finds reaches the sessions
 * as any change does. */
int
store_sync_folder(struct store_account *a, const struct store_frow *fr, const char *dir,
		  int force)
{
	long long mt_new, mt_cur;
	struct sync_set ss = { 0 };
	int rc, listed, same, changed;

	if (!force && store_sync_marks_hold(fr, dir) &&
	    (fr->sync_checked || store_sync_later(a, fr->id) == 0))
		return 0;
	/* First without the lock: most scans find files and rows agreeing
	 * (every background check of inferred marks) and then only record the
	 * marks, keeping deliveries and flag changes waiting for one UPDATE.
	 * The rows are read again under the lock; the listing too, unless the
	 * directories did not change since (stat before readdir). */
	mt_new = store_sync_mtime(dir, "new");
	mt_cur = store_sync_mtime(dir, "cur");
	listed = store_sync_readdir(&ss, dir, 0) == 0 && store_sync_readdir(&ss, dir, 1) == 0;
	same = listed && store_sync_load(a, fr->id, &ss) == 0 && store_sync_same(&ss);
	store_sync_rows_free(&ss);
	if (store_index_begin(a, 0) != 0) {
		store_sync_set_free(&ss);
		return -1;
	}
	if (store_sync_renaming(a, fr->id)) {
		store_index_rollback(a, 0);
		store_sync_set_free(&ss);
		return 0;
	}
	if (!listed || store_sync_mtime(dir, "new") != mt_new ||
	    store_sync_mtime(dir, "cur") != mt_cur) {
		store_sync_files_free(&ss);
		same = 0;
		mt_new = store_sync_mtime(dir, "new");
		mt_cur = store_sync_mtime(dir, "cur");
		if (store_sync_readdir(&ss, dir, 0) != 0 || store_sync_readdir(&ss, dir, 1) != 0)
			goto fail;
	}
	if (!same && (store_sync_load(a, fr->id, &ss) != 0 ||
		      store_sync_apply(a, fr->id, dir, &ss) != 0))
		goto fail;
	if (store_sync_record_scan(a, fr->id, mt_new, mt_cur) != 0)
		goto fail;
	changed = !same;
	store_sync_set_free(&ss);
	rc = store_index_commit(a, 0);
	if (rc == 0 && changed)
		store_changed(a);
	return rc;
fail:
	store_index_rollback(a, 0);
	store_sync_set_free(&ss);
	return -1;
}
