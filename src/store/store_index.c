/*
 * store_index: the SQLite index of one account (index.db in its Maildir
 * root): schema, pragmas, the per-handle statement cache and the small
 * queries the other store files share.
 *
 * Schema. messages.id is (folder id << 32 | UID), so a folder's UID range
 * is one range of the table's rowid B-tree and FETCH 1:* walks it without
 * a secondary index. The rows are small (flags, sizes, dates, the file's
 * basename); what IMAP serves from the header (ENVELOPE, BODY[STRUCTURE],
 * the header block, the preview) lives in msg_data under the same id, so
 * a FETCH of flags and sizes never reads those pages. Triggers keep each
 * folder's counters (messages, unseen, size) and the account's usage
 * (meta 'bytes', 'messages') in the very transaction that adds or removes
 * a row, so they can never drift from the rows.
 *
 * Durability. The journal is WAL with synchronous=NORMAL: a kill -9 loses
 * nothing (the WAL is in the page cache), a power cut may lose the last
 * flag changes but never corrupts. A transaction that adds a message the
 * sender or client has been promised (store_deliver, store_append_commit,
 * store_copy) runs with synchronous=FULL (store_index_begin(a, 1)), so the
 * WAL is fsync'd before the call returns.
 *
 * Public (store_int.h): store_index_open, store_index_close,
 * store_index_stmt, store_index_exec, store_index_begin,
 * store_index_commit, store_index_rollback, store_index_error,
 * store_index_folder_get, store_index_folder_add,
 * store_index_new_uidvalidity, store_index_modseq, store_index_msg_add,
 * store_index_msg_remove, store_index_usage.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store_int.h"
#include "util/log.h"

/*
 * uidruns: each folder's UIDs as runs lo..hi, kept by triggers on every
 * insert and delete of a message row (whatever does it: delivery,
 * APPEND, COPY, a sync, an expunge, a folder's deletion, an older
 * tandem), so a folder's first SELECT reads a few rows, not one per
 * message. A new UID is always above the folder's others: it extends the
 * last run or starts one; a removed one shortens or splits its run.
 */
#define U(x) "((" x ") & 4294967295)"
static const char *const store_index_runs =
	"CREATE TABLE IF NOT EXISTS uidruns(folder INTEGER NOT NULL, lo INTEGER NOT NULL,"
	"  hi INTEGER NOT NULL, PRIMARY KEY(folder, lo)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS uidruns_hi ON uidruns(folder, hi);"
	"CREATE TRIGGER IF NOT EXISTS msg_ins_run AFTER INSERT ON messages BEGIN"
	"  UPDATE uidruns SET hi = " U("NEW.id") " WHERE folder = NEW.folder"
	"    AND hi = " U("NEW.id") " - 1;"
	"  INSERT OR IGNORE INTO uidruns SELECT NEW.folder, " U("NEW.id") ", " U("NEW.id")
	"    WHERE NOT EXISTS (SELECT 1 FROM uidruns WHERE folder = NEW.folder"
	"      AND hi = " U("NEW.id") ");"
	"END;"
	"CREATE TRIGGER IF NOT EXISTS msg_del_run AFTER DELETE ON messages BEGIN"
	"  INSERT INTO uidruns SELECT folder, " U("OLD.id") " + 1, hi FROM uidruns"
	"    WHERE folder = OLD.folder AND hi > " U("OLD.id") " AND lo = (SELECT max(lo) FROM uidruns"
	"      WHERE folder = OLD.folder AND lo <= " U("OLD.id") ");"
	"  UPDATE uidruns SET hi = " U("OLD.id") " - 1 WHERE folder = OLD.folder"
	"    AND hi >= " U("OLD.id") " AND lo < " U("OLD.id") " AND lo = (SELECT max(lo) FROM uidruns"
	"      WHERE folder = OLD.folder AND lo <= " U("OLD.id") ");"
	"  DELETE FROM uidruns WHERE folder = OLD.folder AND lo = " U("OLD.id") ";"
	"END;";

/* The runs of every folder from its rows (gaps and islands). */
static const char *const store_index_runs_fill =
	"DELETE FROM uidruns;"
	"INSERT INTO uidruns SELECT folder, min(u), max(u) FROM (SELECT folder, "
	U("id") " AS u, " U("id") " - row_number() OVER (PARTITION BY folder ORDER BY id) AS g"
	"  FROM messages) GROUP BY folder, g;";

static const char *const store_index_schema =
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	"INSERT OR IGNORE INTO meta VALUES('version',1),('uidvalidity',0),('bytes',0),"
	"  ('messages',0),('init',0);"
	"CREATE TABLE IF NOT EXISTS folders(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL,"
	"  disk TEXT UNIQUE NOT NULL, disk_old TEXT, uidvalidity INTEGER NOT NULL,"
	"  uidnext INTEGER NOT NULL, highestmodseq INTEGER NOT NULL,"
	"  first_recent INTEGER NOT NULL, special_use INTEGER NOT NULL DEFAULT 0,"
	"  noselect INTEGER NOT NULL DEFAULT 0, messages INTEGER NOT NULL DEFAULT 0,"
	"  unseen INTEGER NOT NULL DEFAULT 0, size INTEGER NOT NULL DEFAULT 0,"
	"  sync_new INTEGER NOT NULL DEFAULT 0, sync_cur INTEGER NOT NULL DEFAULT 0,"
	"  sync_checked INTEGER NOT NULL DEFAULT 1);"
	"CREATE TABLE IF NOT EXISTS subscriptions(name TEXT PRIMARY KEY);"
	"CREATE TABLE IF NOT EXISTS messages(id INTEGER PRIMARY KEY, folder INTEGER NOT NULL,"
	"  basename TEXT NOT NULL, flags INTEGER NOT NULL, keywords TEXT NOT NULL,"
	"  modseq INTEGER NOT NULL, qid TEXT NOT NULL, size INTEGER NOT NULL,"
	"  internaldate INTEGER NOT NULL, tz INTEGER NOT NULL, has_attachment INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS msg_modseq ON messages(folder, modseq);"
	/* a folder's UIDs in order, from pages a tenth of the table's */
	"CREATE INDEX IF NOT EXISTS msg_folder ON messages(folder);"
	"CREATE INDEX IF NOT EXISTS msg_qid ON messages(qid) WHERE qid != '';"
	"CREATE INDEX IF NOT EXISTS msg_base ON messages(basename);"
	"CREATE TABLE IF NOT EXISTS msg_data(id INTEGER PRIMARY KEY, envelope TEXT, body TEXT,"
	"  bodystructure TEXT, header BLOB, header_len INTEGER, preview TEXT);"
	"CREATE TABLE IF NOT EXISTS tombstones(folder INTEGER NOT NULL, uid INTEGER NOT NULL,"
	"  modseq INTEGER NOT NULL, time INTEGER NOT NULL, basename TEXT NOT NULL,"
	"  PRIMARY KEY(folder, uid));"
	"CREATE INDEX IF NOT EXISTS tomb_modseq ON tombstones(folder, modseq);"
	"CREATE INDEX IF NOT EXISTS tomb_base ON tombstones(folder, basename);"
	/* a deleted folder's directory, until it is gone from the disk */
	"CREATE TABLE IF NOT EXISTS trash(disk TEXT PRIMARY KEY, old TEXT NOT NULL);"
	"CREATE TRIGGER IF NOT EXISTS msg_ins AFTER INSERT ON messages BEGIN"
	"  UPDATE folders SET messages = messages + 1, unseen = unseen + ((NEW.flags & 1) = 0),"
	"    size = size + NEW.size WHERE id = NEW.folder;"
	"  UPDATE meta SET value = value + NEW.size WHERE key = 'bytes';"
	"  UPDATE meta SET value = value + 1 WHERE key = 'messages';"
	"END;"
	"CREATE TRIGGER IF NOT EXISTS msg_del AFTER DELETE ON messages BEGIN"
	"  UPDATE folders SET messages = messages - 1, unseen = unseen - ((OLD.flags & 1) = 0),"
	"    size = size - OLD.size WHERE id = OLD.folder;"
	"  UPDATE meta SET value = value - OLD.size WHERE key = 'bytes';"
	"  UPDATE meta SET value = value - 1 WHERE key = 'messages';"
	"  DELETE FROM msg_data WHERE id = OLD.id;"
	"END;"
	"CREATE TRIGGER IF NOT EXISTS msg_upd AFTER UPDATE OF flags ON messages"
	"  WHEN (OLD.flags & 1) != (NEW.flags & 1) BEGIN"
	"  UPDATE folders SET unseen = unseen + ((NEW.flags & 1) = 0) - ((OLD.flags & 1) = 0)"
	"    WHERE id = NEW.folder;"
	"END;";

#define FOLDER_COLS                                                                     \
	"SELECT id, name, disk, uidvalidity, uidnext, highestmodseq, first_recent, "     \
	"special_use, noselect, messages, unseen, size, sync_new, sync_cur, sync_checked "   \
	"FROM folders "

static const char *const store_index_sql[ST__COUNT] = {
	[ST_FOLDER_BY_NAME] = FOLDER_COLS "WHERE name = ?",
	[ST_FOLDER_BY_ID] = FOLDER_COLS "WHERE id = ?",
	[ST_FOLDER_INSERT] = "INSERT INTO folders(name, disk, uidvalidity, uidnext, highestmodseq,"
			     " first_recent, special_use) VALUES(?, ?, ?, 1, 1, 1, ?)",
	[ST_FOLDER_ALLOC_UID] = "UPDATE folders SET uidnext = uidnext + 1 WHERE id = ?"
				" RETURNING uidnext - 1",
	[ST_FOLDER_ALLOC_MODSEQ] = "UPDATE folders SET highestmodseq = highestmodseq + 1"
				   " WHERE id = ? RETURNING highestmodseq",
	[ST_MSG_INSERT] = "INSERT INTO messages(id, folder, basename, flags, keywords, modseq, qid,"
			  " size, internaldate, tz, has_attachment)"
			  " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	[ST_DATA_INSERT] = "INSERT OR REPLACE INTO msg_data(id, envelope, body, bodystructure,"
			   " header, header_len, preview) VALUES(?, ?, ?, ?, ?, ?, ?)",
	/* "qid != ''" lets SQLite use the partial index msg_qid (it cannot
	 * prove that of a bound value): without it, a scan per delivery */
	[ST_MSG_BY_QID] = "SELECT id FROM messages WHERE qid = ? AND qid != '' LIMIT 1",
	[ST_MSG_BY_UID] = "SELECT basename, flags, keywords, size, qid, internaldate, tz, modseq,"
			  " has_attachment FROM messages WHERE id = ?",
	[ST_MSG_DELETE] = "DELETE FROM messages WHERE id = ?",
	[ST_MSG_SET_FLAGS] = "UPDATE messages SET flags = ?, keywords = ?, modseq = ? WHERE id = ?",
	[ST_TOMB_INSERT] = "INSERT OR REPLACE INTO tombstones(folder, uid, modseq, time, basename)"
			   " VALUES(?, ?, ?, ?, ?)",
	[ST_USAGE] = "SELECT (SELECT value FROM meta WHERE key = 'bytes'),"
		     " (SELECT value FROM meta WHERE key = 'messages')",
	/* ?3: sync_checked, NULL to keep it */
	[ST_FOLDER_SYNCED] = "UPDATE folders SET sync_new = ?1, sync_cur = ?2,"
			     " sync_checked = coalesce(?3, sync_checked) WHERE id = ?4",
	[ST_TOMB_SINCE] = "SELECT uid FROM tombstones WHERE folder = ? AND modseq > ? ORDER BY uid",
	[ST_FOLDER_RUNS] = "SELECT lo, hi FROM uidruns WHERE folder = ? ORDER BY lo",
	[ST_FOLDER_KNOWN_DISK] = "SELECT 1 FROM folders WHERE disk = ?1 UNION ALL "
				 "SELECT 1 FROM trash WHERE disk = ?1",
	[ST_FOLDER_UNFINISHED] = "SELECT EXISTS (SELECT 1 FROM trash) OR "
				 "EXISTS (SELECT 1 FROM folders WHERE disk_old IS NOT NULL)",
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_MSG_UIDS] = "SELECT id FROM messages INDEXED BY msg_folder WHERE folder = ?"
			" AND id BETWEEN ? AND ? ORDER BY id",
	[ST_TOMB_BY_BASE] = "SELECT 1 FROM tombstones WHERE folder = ? AND basename = ?",
	[ST_MSG_OTHER_BASE] = "SELECT m.flags, f.disk FROM messages m JOIN folders f ON"
			      " f.id = m.folder WHERE m.basename = ? AND m.folder != ?",
};

/* 1: the first; 2: folders.sync_checked, index msg_folder; 3: uidruns */
#define STORE_INDEX_VERSION 3

/* PRAGMA user_version: the schema's version once it is complete. */
static int
store_index_version(struct store_account *a)
{
	sqlite3_stmt *st;
	int v = -1;

	if (sqlite3_prepare_v2(a->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* From version 1 or 2 to 3, whatever of it is there already. */
static int
store_index_upgrade(struct store_account *a)
{
	sqlite3_stmt *st;
	int have = 0;

	if (sqlite3_prepare_v2(a->db, "SELECT 1 FROM pragma_table_info('folders')"
			       " WHERE name = 'sync_checked'", -1, &st, NULL) != SQLITE_OK)
		return -1;
	have = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	if (!have && store_index_exec(a, "ALTER TABLE folders ADD COLUMN sync_checked INTEGER"
				      " NOT NULL DEFAULT 1") != 0)
		return -1;
	if (store_index_exec(a, "CREATE INDEX IF NOT EXISTS msg_folder ON messages(folder)") != 0)
		return -1;
	if (sqlite3_prepare_v2(a->db, "SELECT 1 FROM sqlite_master WHERE name = 'uidruns'", -1, &st,
			       NULL) != SQLITE_OK)
		return -1;
	have = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	if (have)
		return store_index_exec(a, store_index_runs);
	if (store_index_exec(a, store_index_runs) != 0 ||
	    store_index_exec(a, store_index_runs_fill) != 0)
		return -1;
	return 0;
}

/* `mailbox repair`: every folder's runs again from its rows. */
int
store_index_runs_rebuild(struct store_account *a)
{
	return store_index_exec(a, store_index_runs_fill);
}

/* SQLite's own busy handler sleeps in steps that grow to 100 ms; a
 * delivery or a flag change holds the lock for well under a millisecond,
 * so waiting in short steps costs far less time (about 15 s at most). */
static int
store_index_busy(void *arg, int n)
{
	if (n >= 60000)
		return 0;
	usleep(n < 20 ? 50 : 250);
	return 1;
}

void
store_index_close(struct store_account *a)
{
	for (int i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(a->st[i]);
	for (size_t i = 0; i < sizeof(a->fetch_st) / sizeof(a->fetch_st[0]); i++)
		sqlite3_finalize(a->fetch_st[i]);
	memset(a->st, 0, sizeof(a->st));
	memset(a->fetch_st, 0, sizeof(a->fetch_st));
	if (a->db != NULL)
		sqlite3_close(a->db);
	a->db = NULL;
}

/* A checkpoint that empties the WAL, when nothing else holds it (a
 * handle of another process reading keeps it; then it stays). */
void
store_index_checkpoint(struct store_account *a)
{
	if (a->db != NULL && sqlite3_get_autocommit(a->db))
		sqlite3_wal_checkpoint_v2(a->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
}

/* The cached statement, reset and unbound; NULL only when SQLite cannot
 * prepare it (out of memory, a broken database). */
sqlite3_stmt *
store_index_stmt(struct store_account *a, enum store_st id)
{
	sqlite3_stmt *st = a->st[id];

	if (st == NULL) {
		if (sqlite3_prepare_v3(a->db, store_index_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
				       &a->st[id], NULL) != SQLITE_OK) {
			log_err(NULL, "event=store_error sql=%d error=%s", (int)id,
				log_q(sqlite3_errmsg(a->db)));
			return NULL;
		}
		return a->st[id];
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

int
store_index_exec(struct store_account *a, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(a->db, sql, NULL, NULL, &err) != SQLITE_OK) {
		log_err(NULL, "event=store_error account=%s error=%s", log_addr(a->address),
			log_q(err ? err : "?"));
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

/* A cached statement without rows (the transaction's BEGIN, COMMIT and
 * ROLLBACK, which every delivery runs: not parsed again each time). */
static int
store_index_run(struct store_account *a, enum store_st id)
{
	sqlite3_stmt *st = store_index_stmt(a, id);
	int rc;

	if (st == NULL)
		return -1;
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		log_err(NULL, "event=store_error account=%s error=%s", log_addr(a->address),
			log_q(sqlite3_errmsg(a->db)));
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

const char *
store_index_error(struct store_account *a)
{
	return sqlite3_errmsg(a->db);
}

/*
 * Writers of one account in this process take turns on a mutex (one of
 * STORE_WRITE_LOCKS, by the address's hash) before SQLite's own write
 * lock: contending for that one in SQLite's busy handler sleeps in
 * growing steps, which a mailbox taking many deliveries at once (a busy
 * inbox, a catch-all) would spend most of its time in. Other processes
 * (the CLI) still meet the busy timeout.
 */
unsigned
store_address_stripe(const char *address)
{
	unsigned h = 5381;

	for (const char *p = address; *p; p++)
		h = h * 33 + (unsigned char)*p;
	return h % STORE_WRITE_LOCKS;
}

unsigned
store_index_stripe(const struct store_account *a)
{
	return store_address_stripe(a->address);
}

static pthread_mutex_t *
store_index_write_lock(struct store_account *a)
{
	return &a->s->write_lock[store_index_stripe(a)];
}

static void
store_index_write_unlock(struct store_account *a)
{
	if (a->write_locked) {
		a->write_locked = 0;
		pthread_mutex_unlock(store_index_write_lock(a));
	}
}

static int
store_index_open_locked(struct store_account *a, const char **error_r)
{
	char path[STORE_PATH + 16];
	int v;

	snprintf(path, sizeof(path), "%s/index.db", a->root);
	if (sqlite3_open_v2(path, &a->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		*error_r = "cannot open the mailbox index";
		store_index_close(a);
		return -1;
	}
	sqlite3_busy_handler(a->db, store_index_busy, NULL);
	/* a delivery opens and closes the index each time: closing must not
	 * checkpoint (and fsync) the WAL, the automatic checkpoints do that */
	sqlite3_db_config(a->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	/* reads through a mapping: a FETCH 1:* of 50,000 rows is no
	 * 10,000 pread calls; the pages are the kernel's cache, not ours */
	if (store_index_exec(a, "PRAGMA synchronous=NORMAL; PRAGMA mmap_size=268435456") != 0) {
		*error_r = "cannot set up the mailbox index";
		store_index_close(a);
		return -1;
	}
	if ((v = store_index_version(a)) == STORE_INDEX_VERSION)
		return 0;
	if (store_index_exec(a, "PRAGMA journal_mode=WAL") != 0 ||
	    store_index_exec(a, "BEGIN IMMEDIATE") != 0) {
		*error_r = "cannot set up the mailbox index";
		store_index_close(a);
		return -1;
	}
	/* again under the lock: another process may have been first */
	if ((v = store_index_version(a)) == STORE_INDEX_VERSION) {
		if (store_index_exec(a, "COMMIT") == 0)
			return 0;
		*error_r = "cannot set up the mailbox index";
		store_index_close(a);
		return -1;
	}
	/* from 1 (or from a 2 that an older tandem set back to 1) */
	if ((v >= 1 ? store_index_upgrade(a)
		    : store_index_exec(a, store_index_schema) != 0 ? -1
		    : store_index_exec(a, store_index_runs)) != 0 ||
	    store_index_exec(a, "PRAGMA user_version = 3") != 0 ||
	    store_index_exec(a, "COMMIT") != 0) {
		log_err(NULL, "event=store_error path=%s error=%s", log_q(path),
			log_q(sqlite3_errmsg(a->db)));
		*error_r = "cannot create the mailbox index";
		store_index_close(a);
		return -1;
	}
	return 0;
}

/* Two threads opening an account for the first time (two deliveries to a
 * new user) would race to create its schema and switch it to WAL, which
 * SQLite may refuse with BUSY without waiting: one at a time. */
int
store_index_open(struct store_account *a, const char **error_r)
{
	pthread_mutex_t *m = store_index_write_lock(a);
	int rc;

	pthread_mutex_lock(m);
	rc = store_index_open_locked(a, error_r);
	pthread_mutex_unlock(m);
	return rc;
}

/* durable: this transaction adds mail someone was told is safe. */
int
store_index_begin(struct store_account *a, int durable)
{
	if (durable && store_index_exec(a, "PRAGMA synchronous=FULL") != 0)
		return -1;
	pthread_mutex_lock(store_index_write_lock(a));
	a->write_locked = 1;
	if (store_index_run(a, ST_BEGIN) != 0) {
		store_index_write_unlock(a);
		if (durable)
			store_index_exec(a, "PRAGMA synchronous=NORMAL");
		return -1;
	}
	return 0;
}

int
store_index_commit(struct store_account *a, int durable)
{
	int rc = store_index_run(a, ST_COMMIT);

	if (rc != 0)
		store_index_run(a, ST_ROLLBACK);
	store_index_write_unlock(a);
	if (durable)
		store_index_exec(a, "PRAGMA synchronous=NORMAL");
	return rc;
}

void
store_index_rollback(struct store_account *a, int durable)
{
	if (!sqlite3_get_autocommit(a->db))
		store_index_run(a, ST_ROLLBACK);
	store_index_write_unlock(a);
	if (durable)
		store_index_exec(a, "PRAGMA synchronous=NORMAL");
}

/* By name (id 0) or by id. 0 found, 1 not, -1 error. */
int
store_index_folder_get(struct store_account *a, const char *name, int64_t id,
		       struct store_frow *r)
{
	sqlite3_stmt *st = store_index_stmt(a, name ? ST_FOLDER_BY_NAME : ST_FOLDER_BY_ID);
	int rc;

	if (st == NULL)
		return -1;
	if (name)
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return 1;
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return -1;
	}
	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(st, 0);
	snprintf(r->name, sizeof(r->name), "%s", (const char *)sqlite3_column_text(st, 1));
	snprintf(r->disk, sizeof(r->disk), "%s", (const char *)sqlite3_column_text(st, 2));
	r->uidvalidity = (uint32_t)sqlite3_column_int64(st, 3);
	r->uidnext = (uint32_t)sqlite3_column_int64(st, 4);
	r->highestmodseq = (uint64_t)sqlite3_column_int64(st, 5);
	r->first_recent = (uint32_t)sqlite3_column_int64(st, 6);
	r->special_use = (unsigned)sqlite3_column_int(st, 7);
	r->noselect = sqlite3_column_int(st, 8);
	r->messages = (uint32_t)sqlite3_column_int64(st, 9);
	r->unseen = (uint32_t)sqlite3_column_int64(st, 10);
	r->size = sqlite3_column_int64(st, 11);
	r->sync_new = sqlite3_column_int64(st, 12);
	r->sync_cur = sqlite3_column_int64(st, 13);
	r->sync_checked = sqlite3_column_int(st, 14);
	sqlite3_reset(st);
	return 0;
}

/* UIDVALIDITY: the time, but always above every value this account has
 * given out, so a folder deleted and created again within one second
 * still gets a new one. Inside a transaction. 0 on error. */
uint32_t
store_index_new_uidvalidity(struct store_account *a)
{
	sqlite3_stmt *st;
	long long last = 0, v = (long long)time(NULL);
	char sql[128];

	if (sqlite3_prepare_v2(a->db, "SELECT value FROM meta WHERE key = 'uidvalidity'", -1, &st,
			       NULL) != SQLITE_OK)
		return 0;
	if (sqlite3_step(st) == SQLITE_ROW)
		last = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (v <= last)
		v = last + 1;
	if (v > 0xffffffffLL)
		v = 1;   /* 2106: wraps once, still unequal to the last */
	snprintf(sql, sizeof(sql), "UPDATE meta SET value = %lld WHERE key = 'uidvalidity'", v);
	if (store_index_exec(a, sql) != 0)
		return 0;
	return (uint32_t)v;
}

/* A new folder row (inside a transaction): its id, or -1. */
int64_t
store_index_folder_add(struct store_account *a, const char *name, const char *disk,
		       unsigned special_use)
{
	sqlite3_stmt *st;
	uint32_t v = store_index_new_uidvalidity(a);

	if (v == 0 || (st = store_index_stmt(a, ST_FOLDER_INSERT)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, disk, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, v);
	sqlite3_bind_int(st, 4, (int)special_use);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	return sqlite3_last_insert_rowid(a->db);
}

/* The folder's next MODSEQ (inside a transaction), 0 on error. */
uint64_t
store_index_modseq(struct store_account *a, int64_t folder)
{
	sqlite3_stmt *st = store_index_stmt(a, ST_FOLDER_ALLOC_MODSEQ);
	uint64_t m = 0;

	if (st == NULL)
		return 0;
	sqlite3_bind_int64(st, 1, folder);
	if (sqlite3_step(st) == SQLITE_ROW)
		m = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return m;
}

static void
store_index_bind_opt(sqlite3_stmt *st, int i, const char *s)
{
	if (s != NULL)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

/* Index m in folder with the next UID (inside a transaction; modseq_r
 * may be NULL: a fresh MODSEQ is taken). */
int
store_index_msg_add(struct store_account *a, int64_t folder, const struct store_newmsg *m,
		    uint32_t *uid_r, uint64_t *modseq_r)
{
	sqlite3_stmt *st = store_index_stmt(a, ST_FOLDER_ALLOC_UID);
	uint64_t modseq = modseq_r && *modseq_r ? *modseq_r : store_index_modseq(a, folder);
	uint32_t uid = 0;
	int64_t id;

	if (st == NULL || modseq == 0)
		return -1;
	sqlite3_bind_int64(st, 1, folder);
	if (sqlite3_step(st) == SQLITE_ROW)
		uid = (uint32_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (uid == 0 || (st = store_index_stmt(a, ST_MSG_INSERT)) == NULL)
		return -1;
	id = STORE_MID(folder, uid);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, folder);
	sqlite3_bind_text(st, 3, m->basename, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, (int)(m->flags & STORE_F_ALL));
	sqlite3_bind_text(st, 5, m->keywords ? m->keywords : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)modseq);
	sqlite3_bind_text(st, 7, m->qid ? m->qid : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, m->size);
	sqlite3_bind_int64(st, 9, m->internaldate);
	sqlite3_bind_int(st, 10, m->tz);
	sqlite3_bind_int(st, 11, m->sum.has_attachment);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	if ((st = store_index_stmt(a, ST_DATA_INSERT)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	store_index_bind_opt(st, 2, m->sum.envelope);
	store_index_bind_opt(st, 3, m->sum.body);
	store_index_bind_opt(st, 4, m->sum.bodystructure);
	if (m->sum.header != NULL)
		sqlite3_bind_blob(st, 5, m->sum.header, (int)m->sum.header_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 5);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)m->sum.header_len);
	store_index_bind_opt(st, 7, m->sum.preview);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	if (uid_r)
		*uid_r = uid;
	if (modseq_r)
		*modseq_r = modseq;
	return 0;
}

/* Drop a row, leaving its tombstone (inside a transaction). The basename
 * stays in the tombstone so an open that finds the file still there (a
 * crash between the commit and the unlink) finishes the expunge instead
 * of giving the file a new UID. */
int
store_index_msg_remove(struct store_account *a, int64_t folder, uint32_t uid,
		       const char *basename, uint64_t modseq)
{
	sqlite3_stmt *st = store_index_stmt(a, ST_MSG_DELETE);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, STORE_MID(folder, uid));
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	if ((st = store_index_stmt(a, ST_TOMB_INSERT)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, folder);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)modseq);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL));
	sqlite3_bind_text(st, 5, basename, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	return 0;
}

int
store_index_usage(struct store_account *a, long long *bytes_r, long long *messages_r)
{
	sqlite3_stmt *st = store_index_stmt(a, ST_USAGE);
	int rc = -1;

	if (st == NULL)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW) {
		if (bytes_r)
			*bytes_r = sqlite3_column_int64(st, 0);
		if (messages_r)
			*messages_r = sqlite3_column_int64(st, 1);
		rc = 0;
	}
	sqlite3_reset(st);
	return rc;
}
