/*
 * store_msg: reading and changing messages of an open folder.
 *
 * A message's file is new/NAME until its flags first change, then
 * cur/NAME:2,FLAGS with the Maildir letters D F R S T for \Draft,
 * \Flagged, \Answered, \Seen, \Deleted (keywords live in the index only).
 * Sessions see the index; a file whose suffix another program changed is
 * still found by its NAME (store_msg_path), and the folder's next sync
 * takes the suffix's flags into the index.
 *
 * Order of the steps, for crash safety: STORE updates the rows and renames
 * the files under the index's write lock, then commits (a crash in
 * between leaves suffixes the next sync takes in: the STORE happened).
 * EXPUNGE removes the rows (tombstones naming the files), unlinks the
 * files, then commits: a crash before the commit
 * leaves rows without files, which the next sync expunges all the same;
 * and should a file outlive its committed expunge, its basename among the
 * tombstones makes the sync remove it rather than number it again.
 * COPY and MOVE: see store_copy.c.
 *
 * Public: store_fetch, store_msg_open, store_flags, store_expunge,
 * store_changes, store_flag_names; store_int.h: store_msg_path,
 * store_msg_file_name, store_msg_suffix_flags, store_msg_collect,
 * store_msg_rows_free.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_int.h"
#include "util/xalloc.h"

static const struct {
	char c;
	unsigned f;
} store_msg_letters[] = {
	{ 'D', STORE_F_DRAFT },    { 'F', STORE_F_FLAGGED }, { 'R', STORE_F_ANSWERED },
	{ 'S', STORE_F_SEEN },     { 'T', STORE_F_DELETED },
};

unsigned
store_msg_suffix_flags(const char *name)
{
	const char *s = strstr(name, ":2,");
	unsigned f = 0;

	if (s == NULL)
		return 0;
	for (s += 3; *s; s++)
		for (size_t i = 0; i < 5; i++)
			if (*s == store_msg_letters[i].c)
				f |= store_msg_letters[i].f;
	return f;
}

/* Where a message with flags is written: new/NAME without flags, else
 * cur/NAME:2,FLAGS. */
void
store_msg_file_name(const char *dir, const char *basename, unsigned flags, char *buf,
		    size_t len)
{
	char suf[8];
	size_t n = 0;

	for (size_t i = 0; i < 5; i++)
		if (flags & store_msg_letters[i].f)
			suf[n++] = store_msg_letters[i].c;
	suf[n] = '\0';
	if (flags == 0)
		snprintf(buf, len, "%s/new/%s", dir, basename);
	else
		snprintf(buf, len, "%s/cur/%s:2,%s", dir, basename, suf);
}

static int
store_msg_scan(const char *dir, const char *sub, const char *basename, char *buf, size_t len)
{
	char p[STORE_PATH + 8];
	size_t bl = strlen(basename);
	struct dirent *de;
	DIR *d;
	int rc = -1;

	snprintf(p, sizeof(p), "%s/%s", dir, sub);
	if ((d = opendir(p)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, basename, bl) == 0 &&
		    (de->d_name[bl] == ':' || de->d_name[bl] == '\0')) {
			snprintf(buf, len, "%s/%s", p, de->d_name);
			rc = 0;
			break;
		}
	closedir(d);
	return rc;
}

/* The file of basename, expected under flags: 0 (path in buf) or -1. */
int
store_msg_path(const char *dir, const char *basename, unsigned flags, char *buf, size_t len)
{
	struct stat sb;

	store_msg_file_name(dir, basename, flags, buf, len);
	if (lstat(buf, &sb) == 0)
		return 0;
	snprintf(buf, len, "%s/new/%s", dir, basename);
	if (lstat(buf, &sb) == 0)
		return 0;
	snprintf(buf, len, "%s/cur/%s:2,", dir, basename);
	if (lstat(buf, &sb) == 0)
		return 0;
	if (store_msg_scan(dir, "cur", basename, buf, len) == 0 ||
	    store_msg_scan(dir, "new", basename, buf, len) == 0)
		return 0;
	errno = ENOENT;
	return -1;
}

const char *
store_flag_names(unsigned flags, const char *keywords, char *buf, size_t len)
{
	static const char *const names[] = { "\\Seen", "\\Answered", "\\Flagged", "\\Deleted",
					     "\\Draft" };
	size_t o = 0;

	buf[0] = '\0';
	for (int i = 0; i < 5 && o < len; i++)
		if (flags & (1u << i))
			o += snprintf(buf + o, len - o, "%s%s", o ? " " : "", names[i]);
	if (keywords && *keywords && o < len)
		snprintf(buf + o, len - o, "%s%s", o ? " " : "", keywords);
	return buf;
}

/* --- rows of a UID set -------------------------------------------------- */

static int
store_msg_cmp_row(const void *x, const void *y)
{
	const struct store_row *a = x, *b = y;

	return a->uid < b->uid ? -1 : a->uid > b->uid;
}

/* The rows of set (NULL: all) in UID order, without duplicates;
 * only_deleted: those with \Deleted. -1 on error. */
int
store_msg_collect(struct store_folder *f, const struct store_uidset *set, int only_deleted,
		  struct store_row **rows_r, size_t *n_r)
{
	static const uint32_t all[1][2] = { { 1, 0xffffffffu } };
	struct store_uidset everything = { all, 1 };
	struct store_row *rows = NULL;
	size_t n = 0, na = 0, k = 0;
	sqlite3_stmt *st;

	if (set == NULL)
		set = &everything;
	if (sqlite3_prepare_v2(f->a->db,
			       "SELECT id, basename, flags, keywords, modseq, size FROM messages"
			       " WHERE id BETWEEN ? AND ?",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	for (size_t i = 0; i < set->n; i++) {
		uint32_t lo = set->r[i][0], hi = set->r[i][1];

		if (lo > hi) {
			uint32_t t = lo;
			lo = hi;
			hi = t;
		}
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, STORE_MID(f->id, lo));
		sqlite3_bind_int64(st, 2, STORE_MID(f->id, hi));
		while (sqlite3_step(st) == SQLITE_ROW) {
			unsigned fl = (unsigned)sqlite3_column_int(st, 2);

			if (only_deleted && !(fl & STORE_F_DELETED))
				continue;
			if (n == na) {
				na = na ? na * 2 : 64;
				rows = xrealloc(rows, na * sizeof(*rows));
			}
			rows[n].uid = (uint32_t)(sqlite3_column_int64(st, 0) & 0xffffffff);
			rows[n].basename = xstrdup((const char *)sqlite3_column_text(st, 1));
			rows[n].flags = fl;
			rows[n].keywords = xstrdup((const char *)sqlite3_column_text(st, 3));
			rows[n].modseq = (uint64_t)sqlite3_column_int64(st, 4);
			rows[n].size = sqlite3_column_int64(st, 5);
			n++;
		}
	}
	sqlite3_finalize(st);
	if (n > 1) {
		qsort(rows, n, sizeof(*rows), store_msg_cmp_row);
		for (size_t i = 1; i < n; i++) {
			if (rows[i].uid == rows[k].uid) {
				free(rows[i].basename);
				free(rows[i].keywords);
			} else {
				rows[++k] = rows[i];
			}
		}
		n = k + 1;
	}
	*rows_r = rows;
	*n_r = n;
	return 0;
}

void
store_msg_rows_free(struct store_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].basename);
		free(rows[i].keywords);
	}
	free(rows);
}

/* --- FETCH -------------------------------------------------------------- */

static sqlite3_stmt *
store_msg_fetch_stmt(struct store_account *a, unsigned want, int changes)
{
	unsigned slot = (want & 15) | (changes ? 16 : 0);
	char sql[1024];

	if (a->fetch_st[slot] != NULL) {
		sqlite3_reset(a->fetch_st[slot]);
		return a->fetch_st[slot];
	}
	snprintf(sql, sizeof(sql),
		 "SELECT m.id, m.modseq, m.flags, m.keywords, m.size, m.internaldate, m.tz, m.qid,"
		 " %s, %s, %s, %s, %s, %s FROM messages m%s WHERE %s ORDER BY m.id LIMIT ?",
		 want & STORE_W_ENVELOPE ? "d.envelope" : "NULL",
		 want & STORE_W_BODY ? "d.body" : "NULL",
		 want & STORE_W_BODY ? "d.bodystructure" : "NULL",
		 want & STORE_W_HEADER ? "d.header" : "NULL",
		 want & STORE_W_HEADER ? "d.header_len" : "0",
		 want & STORE_W_PREVIEW ? "d.preview" : "NULL",
		 want & 15 ? " LEFT JOIN msg_data d ON d.id = m.id" : "",
		 changes ? "m.folder = ? AND m.modseq > ?" : "m.id BETWEEN ? AND ?");
	if (sqlite3_prepare_v3(a->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &a->fetch_st[slot],
			       NULL) != SQLITE_OK)
		return NULL;
	return a->fetch_st[slot];
}

static int
store_msg_walk(sqlite3_stmt *st, int (*fn)(const struct store_msg *m, void *arg), void *arg)
{
	struct store_msg m;
	int n = 0, rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		m.uid = (uint32_t)(sqlite3_column_int64(st, 0) & 0xffffffff);
		m.modseq = (uint64_t)sqlite3_column_int64(st, 1);
		m.flags = (unsigned)sqlite3_column_int(st, 2);
		m.keywords = (const char *)sqlite3_column_text(st, 3);
		m.size = sqlite3_column_int64(st, 4);
		m.internaldate = sqlite3_column_int64(st, 5);
		m.internaldate_tz = sqlite3_column_int(st, 6);
		m.qid = (const char *)sqlite3_column_text(st, 7);
		m.envelope = (const char *)sqlite3_column_text(st, 8);
		m.body = (const char *)sqlite3_column_text(st, 9);
		m.bodystructure = (const char *)sqlite3_column_text(st, 10);
		m.header = sqlite3_column_blob(st, 11);
		/* the length even when the block was too large to keep */
		m.header_len = (size_t)sqlite3_column_int64(st, 12);
		m.preview = (const char *)sqlite3_column_text(st, 13);
		n++;
		if (fn(&m, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? n : -1;
}

int
store_fetch(struct store_folder *f, uint32_t lo, uint32_t hi, size_t limit, unsigned want,
	    int (*fn)(const struct store_msg *m, void *arg), void *arg)
{
	sqlite3_stmt *st = store_msg_fetch_stmt(f->a, want, 0);

	if (st == NULL)
		return -1;
	if (lo == 0)
		lo = 1;
	if (lo > hi)
		return 0;
	sqlite3_bind_int64(st, 1, STORE_MID(f->id, lo));
	sqlite3_bind_int64(st, 2, STORE_MID(f->id, hi));
	sqlite3_bind_int64(st, 3, limit ? (sqlite3_int64)limit : -1);
	return store_msg_walk(st, fn, arg);
}

int
store_changes(struct store_folder *f, uint64_t modseq, unsigned want,
	      int (*changed)(const struct store_msg *m, void *arg),
	      void (*expunged)(uint32_t uid, void *arg), void *arg, uint64_t *highest_r,
	      const char **error_r)
{
	sqlite3_stmt *st;
	struct store_frow fr;

	/* HIGHESTMODSEQ first, without a transaction (so callbacks may change
	 * things): whatever changes meanwhile is either reported now and
	 * again next time, or next time; never lost */
	if (store_index_folder_get(f->a, NULL, f->id, &fr) != 0)
		goto fail;
	if (highest_r)
		*highest_r = fr.highestmodseq;
	/* every change (a flag, a new message, an expunge) takes a new
	 * MODSEQ: the common case, nothing since, costs this one row */
	if (fr.highestmodseq <= modseq)
		return 0;
	if (changed != NULL) {
		if ((st = store_msg_fetch_stmt(f->a, want, 1)) == NULL)
			goto fail;
		sqlite3_bind_int64(st, 1, f->id);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)modseq);
		sqlite3_bind_int64(st, 3, -1);
		if (store_msg_walk(st, changed, arg) < 0)
			goto fail;
	}
	if (expunged != NULL) {
		if ((st = store_index_stmt(f->a, ST_TOMB_SINCE)) == NULL)
			goto fail;
		sqlite3_bind_int64(st, 1, f->id);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)modseq);
		while (sqlite3_step(st) == SQLITE_ROW)
			expunged((uint32_t)sqlite3_column_int64(st, 0), arg);
		sqlite3_reset(st);
	}
	return 0;
fail:
	*error_r = "cannot read the mailbox index";
	return -1;
}

int
store_msg_open(struct store_folder *f, uint32_t uid, off_t *len_r, const char **error_r)
{
	sqlite3_stmt *st = store_index_stmt(f->a, ST_MSG_BY_UID);
	char path[STORE_PATH + 300], base[512];
	unsigned flags;
	struct stat sb;
	int fd;

	if (st == NULL) {
		*error_r = "cannot read the mailbox index";
		return -1;
	}
	sqlite3_bind_int64(st, 1, STORE_MID(f->id, uid));
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		*error_r = "no such message";
		errno = ENOENT;
		return -1;
	}
	snprintf(base, sizeof(base), "%s", (const char *)sqlite3_column_text(st, 0));
	flags = (unsigned)sqlite3_column_int(st, 1);
	sqlite3_reset(st);
	if (store_msg_path(f->dir, base, flags, path, sizeof(path)) != 0 ||
	    (fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		*error_r = "the message file is gone";
		return -1;
	}
	if (fstat(fd, &sb) != 0) {
		close(fd);
		*error_r = "cannot read the message file";
		return -1;
	}
	if (len_r)
		*len_r = sb.st_size;
	return fd;
}

/* --- STORE -------------------------------------------------------------- */

/* Keywords after op, as a new string (space separated, each once,
 * compared without case as IMAP does). */
static char *
store_msg_keywords(const char *old, enum store_flag_op op, const char *kw)
{
	char *out = xmalloc(strlen(old) + (kw ? strlen(kw) : 0) + 2), *copy, *save = NULL;
	const char *src[2] = { op == STORE_FLAGS_SET ? "" : old, op == STORE_FLAGS_REMOVE ? "" : kw };
	size_t o = 0;

	out[0] = '\0';
	for (int s = 0; s < 2; s++) {
		if (src[s] == NULL)
			continue;
		copy = xstrdup(src[s]);
		for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
			int dup = 0;
			size_t tl = strlen(t);

			for (const char *p = out; *p && !dup; p += strcspn(p, " "), p += *p == ' ')
				dup = strncasecmp(p, t, tl) == 0 && (p[tl] == ' ' || p[tl] == '\0');
			if (op == STORE_FLAGS_REMOVE && kw) {
				for (const char *p = kw; *p && !dup; p += strcspn(p, " "), p += *p == ' ')
					dup = strncasecmp(p, t, tl) == 0 &&
					      (p[tl] == ' ' || p[tl] == '\0');
			}
			if (dup)
				continue;
			o += sprintf(out + o, "%s%s", o ? " " : "", t);
		}
		free(copy);
	}
	return out;
}

static int
store_msg_set_flags(struct store_folder *f, struct store_row *r, unsigned nf, const char *nk,
		    uint64_t modseq)
{
	sqlite3_stmt *st = store_index_stmt(f->a, ST_MSG_SET_FLAGS);
	char from[STORE_PATH + 300], to[STORE_PATH + 300];
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int(st, 1, (int)nf);
	sqlite3_bind_text(st, 2, nk, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)modseq);
	sqlite3_bind_int64(st, 4, STORE_MID(f->id, r->uid));
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_reset(st);
	if (rc == 0 && nf != r->flags &&
	    store_msg_path(f->dir, r->basename, r->flags, from, sizeof(from)) == 0) {
		store_msg_file_name(f->dir, r->basename, nf, to, sizeof(to));
		if (nf == 0)   /* seen by a client: cur/, even without flags */
			snprintf(to, sizeof(to), "%s/cur/%s:2,", f->dir, r->basename);
		/* a failed rename fails the STORE: the old suffix must not be
		 * taken in by a sync as newer than the row */
		if (strcmp(from, to) != 0 && rename(from, to) != 0 && errno != ENOENT)
			rc = -1;
	}
	return rc;
}

/* One message of a STORE: 0 unchanged, 1 changed (r updated), 2 left
 * alone by UNCHANGEDSINCE, -1 error. */
static int
store_flags_row(struct store_folder *f, struct store_row *r, enum store_flag_op op,
		unsigned flags, const char *keywords, uint64_t unchangedsince, uint64_t modseq)
{
	unsigned nf = op == STORE_FLAGS_SET ? flags
		      : op == STORE_FLAGS_ADD ? r->flags | flags
					      : r->flags & ~flags;
	char *nk;

	if (unchangedsince && r->modseq > unchangedsince)
		return 2;
	nk = keywords || op == STORE_FLAGS_SET ? store_msg_keywords(r->keywords, op, keywords)
					       : xstrdup(r->keywords);
	if (nf == r->flags && strcmp(nk, r->keywords) == 0) {
		free(nk);
		return 0;
	}
	if (store_msg_set_flags(f, r, nf, nk, modseq) != 0) {
		free(nk);
		return -1;
	}
	r->flags = nf;
	free(r->keywords);
	r->keywords = nk;
	r->modseq = modseq;
	return 1;
}

int
store_flags(struct store_folder *f, const struct store_uidset *set, enum store_flag_op op,
	    unsigned flags, const char *keywords, uint64_t unchangedsince,
	    void (*changed)(const struct store_msg *m, void *arg),
	    void (*failed)(uint32_t uid, void *arg), void *arg, const char **error_r)
{
	struct store_row *rows;
	size_t n;
	uint64_t modseq;
	int nfailed = 0, nchanged = 0;
	unsigned char *mark;
	struct store_dirmark dm;

	flags &= STORE_F_ALL;
	if (store_index_begin(f->a, 0) != 0)
		goto fail_nolock;
	if (store_msg_collect(f, set, 0, &rows, &n) != 0 ||
	    (modseq = store_index_modseq(f->a, f->id)) == 0)
		goto fail;
	mark = xcalloc(n + 1, 1);
	store_sync_mark_begin(f->a, f->id, f->dir, &dm);
	for (size_t i = 0; i < n; i++) {
		int r = store_flags_row(f, &rows[i], op, flags, keywords, unchangedsince, modseq);

		if (r < 0) {
			free(mark);
			store_msg_rows_free(rows, n);
			store_sync_mark_end(f->a, f->id, f->dir, &dm);
			goto fail;
		}
		mark[i] = (unsigned char)r;
		nfailed += r == 2;
		nchanged += r == 1;
	}
	store_sync_mark_end(f->a, f->id, f->dir, &dm);
	if (nchanged == 0) {
		/* nothing changed: do not spend the MODSEQ */
		store_index_rollback(f->a, 0);
	} else if (store_index_commit(f->a, 0) != 0) {
		free(mark);
		store_msg_rows_free(rows, n);
		goto fail_nolock;
	}
	for (size_t i = 0; i < n; i++) {
		if (mark[i] == 2 && failed)
			failed(rows[i].uid, arg);
		if (mark[i] == 1 && changed) {
			struct store_msg m = { 0 };

			m.uid = rows[i].uid;
			m.modseq = rows[i].modseq;
			m.flags = rows[i].flags;
			m.keywords = rows[i].keywords;
			m.size = rows[i].size;
			m.qid = "";
			changed(&m, arg);
		}
	}
	free(mark);
	store_msg_rows_free(rows, n);
	if (nchanged)
		store_changed(f->a);
	return nfailed ? STORE_MODIFIED : STORE_OK;
fail:
	store_index_rollback(f->a, 0);
fail_nolock:
	*error_r = "cannot update the mailbox index";
	return STORE_ERROR;
}

/* --- EXPUNGE ------------------------------------------------------------ */

int
store_expunge(struct store_folder *f, const struct store_uidset *set,
	      void (*fn)(uint32_t uid, void *arg), void *arg, const char **error_r)
{
	struct store_row *rows;
	size_t n;
	uint64_t modseq;
	char path[STORE_PATH + 300];
	struct store_dirmark dm;

	if (store_index_begin(f->a, 0) != 0)
		goto fail_nolock;
	if (store_msg_collect(f, set, 1, &rows, &n) != 0)
		goto fail;
	if (n == 0) {
		store_index_rollback(f->a, 0);
		free(rows);
		return 0;
	}
	if ((modseq = store_index_modseq(f->a, f->id)) == 0)
		goto fail_rows;
	for (size_t i = 0; i < n; i++)
		if (store_index_msg_remove(f->a, f->id, rows[i].uid, rows[i].basename, modseq) != 0)
			goto fail_rows;
	store_sync_mark_begin(f->a, f->id, f->dir, &dm);
	for (size_t i = 0; i < n; i++)
		if (store_msg_path(f->dir, rows[i].basename, rows[i].flags, path, sizeof(path)) == 0)
			unlink(path);
	store_sync_mark_end(f->a, f->id, f->dir, &dm);
	if (store_index_commit(f->a, 0) != 0) {
		store_msg_rows_free(rows, n);
		goto fail_nolock;
	}
	for (size_t i = 0; fn && i < n; i++)
		fn(rows[i].uid, arg);
	store_msg_rows_free(rows, n);
	store_changed(f->a);
	return 0;
fail_rows:
	store_msg_rows_free(rows, n);
fail:
	store_index_rollback(f->a, 0);
fail_nolock:
	*error_r = "cannot update the mailbox index";
	return -1;
}
