/*
 * store_copy: COPY and MOVE between folders of one account.
 *
 * Files are hard-linked, never copied, and keep their basename in the
 * destination (a fresh unique one only when the destination has that name
 * already). The steps, in one transaction under the index's write lock:
 * link each file into the destination and add its row (for MOVE remove
 * the source row, leaving a tombstone naming the file), fsync the
 * destination's new/ and cur/, commit with synchronous=FULL; then a
 * MOVE unlinks its sources. A kill -9 before the commit leaves
 * destination links the index does not know; the next sync of the
 * destination recognises them (same basename and inode as a message
 * indexed in another folder) and removes them: the COPY or MOVE did not
 * happen. After the commit, source files whose basenames are tombstones,
 * which the source's next sync removes: the MOVE happened. Either way
 * each message is in exactly one place after a MOVE, and numbered once.
 * Public: store_copy.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store_int.h"
#include "util/durable.h"
#include "util/xalloc.h"

struct copy_item {
	uint32_t src, dst;
	char path[STORE_PATH + 300];   /* the source file */
};

static int
store_copy_row(struct store_account *a, int64_t src_folder, uint32_t src_uid, int64_t dst_folder,
	       const char *base, uint64_t modseq, int keep_qid, uint32_t *uid_r)
{
	sqlite3_stmt *st = store_index_stmt(a, ST_FOLDER_ALLOC_UID);
	uint32_t uid = 0;
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, dst_folder);
	if (sqlite3_step(st) == SQLITE_ROW)
		uid = (uint32_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (uid == 0)
		return -1;
	if (sqlite3_prepare_v2(a->db,
			       "INSERT INTO messages(id, folder, basename, flags, keywords, modseq, qid,"
			       " size, internaldate, tz, has_attachment) SELECT ?1, ?2, ?3, flags,"
			       " keywords, ?4, CASE WHEN ?5 THEN qid ELSE '' END, size, internaldate,"
			       " tz, has_attachment FROM messages WHERE id = ?6",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, STORE_MID(dst_folder, uid));
	sqlite3_bind_int64(st, 2, dst_folder);
	sqlite3_bind_text(st, 3, base, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)modseq);
	sqlite3_bind_int(st, 5, keep_qid);
	sqlite3_bind_int64(st, 6, STORE_MID(src_folder, src_uid));
	rc = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(a->db) == 1 ? 0 : -1;
	sqlite3_finalize(st);
	if (rc != 0 ||
	    sqlite3_prepare_v2(a->db,
			       "INSERT OR REPLACE INTO msg_data SELECT ?1, envelope, body,"
			       " bodystructure, header, header_len, preview FROM msg_data WHERE id = ?2",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, STORE_MID(dst_folder, uid));
	sqlite3_bind_int64(st, 2, STORE_MID(src_folder, src_uid));
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	*uid_r = uid;
	return rc;
}

static int
store_copy_name_taken(struct store_account *a, int64_t folder, const char *base)
{
	sqlite3_stmt *st;
	int taken = 1;

	if (sqlite3_prepare_v2(a->db, "SELECT 1 FROM messages WHERE folder = ? AND basename = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return 1;
	sqlite3_bind_int64(st, 1, folder);
	sqlite3_bind_text(st, 2, base, -1, SQLITE_STATIC);
	taken = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return taken;
}

/* Link one message into ddir; its basename there into base. */
static int
store_copy_link(struct store_account *a, int64_t dfolder, const char *ddir,
		const struct store_row *r, const char *src, char *base, size_t blen)
{
	char dst[STORE_PATH + 300];

	snprintf(base, blen, "%s", r->basename);
	for (int tries = 0; tries < 3; tries++) {
		if (tries > 0 || store_copy_name_taken(a, dfolder, base))
			store_unique_name(a->s, base, blen);
		store_msg_file_name(ddir, base, r->flags, dst, sizeof(dst));
		if (link(src, dst) == 0)
			return 0;
		if (errno != EEXIST)
			return -1;
	}
	return -1;
}

static int
store_copy_fsync(const char *ddir)
{
	char p[STORE_PATH + 8];

	snprintf(p, sizeof(p), "%s/new", ddir);
	if (durable_fsync_dir(p) != 0)
		return -1;
	snprintf(p, sizeof(p), "%s/cur", ddir);
	return durable_fsync_dir(p);
}

/* Link each message into the destination and index it there (for MOVE
 * remove the source row); items gets those done, *ni_r their number. */
static int
store_copy_items(struct store_folder *f, const struct store_row *rows, size_t n,
		 const struct store_frow *dr, const char *ddir, int move, uint64_t dmodseq,
		 uint64_t smodseq, struct copy_item *items, size_t *ni_r)
{
	char base[256];
	size_t ni = 0;

	for (size_t i = 0; i < n; i++) {
		struct copy_item *it = &items[ni];

		if (store_msg_path(f->dir, rows[i].basename, rows[i].flags, it->path,
				   sizeof(it->path)) != 0)
			continue;   /* vanished: the next sync expunges it */
		if (store_copy_link(f->a, dr->id, ddir, &rows[i], it->path, base, sizeof(base)) != 0 ||
		    store_copy_row(f->a, f->id, rows[i].uid, dr->id, base, dmodseq, move,
				   &it->dst) != 0 ||
		    (move && store_index_msg_remove(f->a, f->id, rows[i].uid, rows[i].basename,
						    smodseq) != 0)) {
			*ni_r = ni;
			return -1;
		}
		it->src = rows[i].uid;
		ni++;
	}
	*ni_r = ni;
	return 0;
}

/* After a MOVE's commit: the sources go, under the lock again so the
 * source's recorded mtimes stay current. Never before the commit: a
 * destination link is only known to be a leftover while its source is
 * still there (a committed COPY elsewhere has the same inode too). */
static void
store_copy_unlink_sources(struct store_folder *f, const struct copy_item *items, size_t n,
			  const struct store_dirmark *smark)
{
	int locked = store_index_begin(f->a, 0) == 0;

	for (size_t i = 0; i < n; i++)
		unlink(items[i].path);
	if (locked) {
		store_sync_mark_end(f->a, f->id, f->dir, smark);
		store_index_commit(f->a, 0);
	}
}

int
store_copy(struct store_folder *f, const struct store_uidset *set, const char *dest, int move,
	   long long quota, uint32_t *dest_uidvalidity_r,
	   void (*fn)(uint32_t src_uid, uint32_t dst_uid, void *arg),
	   void (*fn_expunged)(uint32_t uid, void *arg), void *arg, const char **error_r)
{
	struct store_account *a = f->a;
	struct store_frow dr;
	struct store_row *rows = NULL;
	struct copy_item *items = NULL;
	size_t n = 0, ni = 0;
	uint64_t dmodseq, smodseq = 0;
	char ddir[STORE_PATH];
	long long total = 0;
	struct store_dirmark dmark, smark = { 0 };
	int rc;

	if ((rc = store_folder_get_open(a, dest, &dr, error_r)) != 0)
		return rc;
	store_folder_path(a, dr.disk, ddir, sizeof(ddir));
	if (store_index_begin(a, 1) != 0)
		goto fail_nolock;
	if (store_msg_collect(f, set, 0, &rows, &n) != 0)
		goto fail;
	for (size_t i = 0; i < n; i++)
		total += rows[i].size;
	if (!move && quota > 0 && n > 0) {
		long long bytes = 0;

		if (store_index_usage(a, &bytes, NULL) != 0)
			goto fail;
		if (bytes + total > quota) {
			store_index_rollback(a, 1);
			store_msg_rows_free(rows, n);
			*error_r = "mailbox over quota";
			return STORE_OVER_QUOTA;
		}
	}
	items = xcalloc(n + 1, sizeof(*items));
	if ((dmodseq = store_index_modseq(a, dr.id)) == 0 ||
	    (move && (smodseq = store_index_modseq(a, f->id)) == 0))
		goto fail;
	store_sync_mark_begin(a, dr.id, ddir, &dmark);
	rc = store_copy_items(f, rows, n, &dr, ddir, move, dmodseq, smodseq, items, &ni);
	store_sync_mark_end(a, dr.id, ddir, &dmark);
	if (rc != 0)
		goto fail;
	if (ni > 0 && store_copy_fsync(ddir) != 0)
		goto fail;
	/* until its files are gone the source is out of sync with its rows:
	 * an open in between (or after a crash) must scan it */
	if (move && ni > 0) {
		store_sync_mark_begin(a, f->id, f->dir, &smark);
		if (store_sync_invalidate(a, f->id) != 0)
			goto fail;
	}
	if (ni == 0)
		store_index_rollback(a, 1);
	else if (store_index_commit(a, 1) != 0)
		goto fail_nolock;
	if (move && ni > 0)
		store_copy_unlink_sources(f, items, ni, &smark);
	for (size_t i = 0; fn && i < ni; i++)
		fn(items[i].src, items[i].dst, arg);
	for (size_t i = 0; move && fn_expunged && i < ni; i++)
		fn_expunged(items[i].src, arg);
	if (dest_uidvalidity_r)
		*dest_uidvalidity_r = dr.uidvalidity;
	free(items);
	store_msg_rows_free(rows, n);
	if (ni > 0)
		store_changed(a);
	return STORE_OK;
fail:
	/* links made so far are leftovers the next sync of dest removes */
	store_index_rollback(a, 1);
fail_nolock:
	free(items);
	store_msg_rows_free(rows, n);
	*error_r = "cannot copy the messages";
	return STORE_ERROR;
}
