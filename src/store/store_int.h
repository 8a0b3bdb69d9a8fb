/*
 * store_int: what the store's files share (not for other modules).
 * store.c owns the handles and notification, store_index.c the SQLite
 * schema and the statement cache, store_folder.c names, directories and
 * the reconcile at account open, store_folder_cmd.c the folder commands,
 * store_sync.c reconciles files with the index, store_msg.c reads and
 * changes messages, store_append.c adds them (delivery, APPEND),
 * store_copy.c COPY and MOVE, store_uidmap.c the shared sequence maps,
 * store_verify.c the administration checks.
 */
#ifndef TANDEM_STORE_INT_H
#define TANDEM_STORE_INT_H
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <sys/types.h>

#include "store/store.h"
#include "store/store_mime.h"
#include "util/durable.h"

#define STORE_PATH 4096

/* Prepared statements, cached per account handle (store_index.c). */
enum store_st {
	ST_FOLDER_BY_NAME,
	ST_FOLDER_BY_ID,
	ST_FOLDER_INSERT,
	ST_FOLDER_ALLOC_UID,
	ST_FOLDER_ALLOC_MODSEQ,
	ST_MSG_INSERT,
	ST_DATA_INSERT,
	ST_MSG_BY_QID,
	ST_MSG_BY_UID,
	ST_MSG_DELETE,
	ST_MSG_SET_FLAGS,
	ST_TOMB_INSERT,
	ST_USAGE,
	ST_FOLDER_SYNCED,
	ST_TOMB_BY_BASE,
	ST_MSG_OTHER_BASE,
	ST_TOMB_SINCE,
	ST_MSG_UIDS,
	ST_FOLDER_RUNS,
	ST_FOLDER_KNOWN_DISK,
	ST_FOLDER_UNFINISHED,
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST__COUNT
};

struct store_watch;
struct store_wacct;
struct store_map;
struct store_check;
struct store_pending;

#define STORE_WRITE_LOCKS 64

struct store {
	char *data_dir;
	long long retention;
	struct event_base *base;
	pthread_t loop;
	char host[64];                    /* for Maildir file names */
	struct store_account *shared;     /* the loop's handles (loop thread only) */
	struct store_account *idle;       /* closed handles kept for reuse (lock) */
	int nidle;
	pthread_mutex_t lock;             /* watches and wacct */
	struct store_watch *watches;
	struct store_wacct *waccts;       /* one per watched address: data_version poll */
	struct event *notify_ev, *poll_ev;
	pthread_mutex_t write_lock[STORE_WRITE_LOCKS];   /* see store_index_begin */
	/* deliveries between their link and their row, per stripe (see
	 * store_append.c), under burst_lock */
	pthread_mutex_t burst_lock;
	struct store_burst {
		int inflight;
		int valid;            /* the marks may move when the last is in */
		int many;             /* more than one delivery overlapped */
		int recording;        /* marks recorded whose commit is not counted yet */
		int64_t folder;
		char address[256];
	} burst[STORE_WRITE_LOCKS];
	/* a delivery's flush of new/, shared with the deliveries of the
	 * same stripe at the same moment (the WAL's is the batch's) */
	struct durable_group dir_sync[STORE_WRITE_LOCKS];
	/* delivered rows waiting for their commit (store_append.c) */
	struct store_batch {
		pthread_mutex_t mu;
		pthread_cond_t cv;
		int committing;
		struct store_pending *pending;
	} batch[STORE_WRITE_LOCKS];
	/* the handle the deliveries into an address share (store.c) */
	struct store_dslot {
		pthread_mutex_t mu;   /* held while a delivery uses a */
		struct store_account *a;
	} dslot[STORE_WRITE_LOCKS];
	struct worker_pool *pool;         /* background folder checks (may be NULL) */
	struct store_check *checking;     /* those queued or running (lock) */
};

struct store_account {
	struct store *s;
	char *address;
	char root[STORE_PATH];
	sqlite3 *db;
	sqlite3_stmt *st[ST__COUNT];
	sqlite3_stmt *fetch_st[32];
	int refs;
	int is_shared;
	int write_locked;                 /* holds its s->write_lock (store_index_begin) */
	long long purged;                 /* when tombstones were last purged */
	dev_t db_dev;                     /* index.db as opened: a kept handle */
	ino_t db_ino;                     /* whose file moved is not reused */
	struct store_map *maps;           /* the newest UID map per folder (store_uidmap.c) */
	long long unused_since;           /* a shared handle nobody holds: when it was let go */
	struct timespec adopt_mtim;       /* root's mtime at the last folder scan */
	int adopt_known;                  /* ... kept (store_folder_adopt) */
	struct store_account *next;
};

struct store_folder {
	struct store_account *a;
	int64_t id;
	char *name;
	char dir[STORE_PATH];
};

/* A folder's row. */
struct store_frow {
	int64_t id;
	char name[768];
	char disk[1024];
	uint32_t uidvalidity, uidnext, first_recent;
	uint64_t highestmodseq;
	unsigned special_use;
	int noselect;
	uint32_t messages, unseen;
	long long size;
	long long sync_new, sync_cur;
	int sync_checked;          /* 0: the marks were inferred over overlapping
				    * deliveries, a scan still has to confirm them */
};

/* A message to index. */
struct store_newmsg {
	const char *basename;
	unsigned flags;
	const char *keywords;
	const char *qid;
	long long internaldate;
	int tz;
	/* from the file (store_newmsg_fill) */
	long long size;
	struct store_mime_summary sum;
};

/* A row as STORE, EXPUNGE and COPY work on it. */
struct store_row {
	uint32_t uid;
	unsigned flags;
	char *basename, *keywords;
	uint64_t modseq;
	long long size;
};

/* message ids: the folder's id above, the UID below, so a folder's UID
 * range is one rowid range of the messages table. */
#define STORE_MID(folder, uid) (((int64_t)(folder) << 32) | (uint32_t)(uid))

/* store_index.c */
int store_index_open(struct store_account *a, const char **error_r);
void store_index_close(struct store_account *a);
void store_index_checkpoint(struct store_account *a);
int store_index_runs_rebuild(struct store_account *a);
sqlite3_stmt *store_index_stmt(struct store_account *a, enum store_st id);
int store_index_exec(struct store_account *a, const char *sql);
/* Which of the write locks (and delivery counters) an account uses. */
unsigned store_index_stripe(const struct store_account *a);
unsigned store_address_stripe(const char *address);
int store_index_begin(struct store_account *a, int durable);
int store_index_commit(struct store_account *a, int durable);
void store_index_rollback(struct store_account *a, int durable);
const char *store_index_error(struct store_account *a);
int store_index_folder_get(struct store_account *a, const char *name, int64_t id,
			   struct store_frow *r);
int64_t store_index_folder_add(struct store_account *a, const char *name, const char *disk,
			       unsigned special_use);
uint32_t store_index_new_uidvalidity(struct store_account *a);
uint64_t store_index_modseq(struct store_account *a, int64_t folder);
int store_index_msg_add(struct store_account *a, int64_t folder, const struct store_newmsg *m,
			uint32_t *uid_r, uint64_t *modseq_r);
int store_index_msg_remove(struct store_account *a, int64_t folder, uint32_t uid,
			   const char *basename, uint64_t modseq);
int store_index_usage(struct store_account *a, long long *bytes_r, long long *messages_r);

/* store.c: the delivery handle of address, locked (NULL with *error_r) */
struct store_account *store_deliver_lock(struct store *s, const char *address, int reconcile,
					 const char **error_r);
void store_deliver_unlock(struct store *s, const char *address);

/* store_folder.c */
int store_folder_canon(const char *name, char *out, size_t len, const char **error_r);
int store_folder_disk(const char *name, char *out, size_t len);
int store_folder_undisk(const char *disk, char *out, size_t len);
void store_folder_path(struct store_account *a, const char *disk, char *buf, size_t len);
int store_folder_defaults(struct store_account *a, const char **error_r);
int store_folder_reconcile(struct store_account *a);
void store_folder_adopt(struct store_account *a);
int store_folder_purge(struct store_account *a);
int store_folder_mkdir(const char *path);

/* store_sync.c */
int store_sync_folder(struct store_account *a, const struct store_frow *fr, const char *dir,
		      int force);
struct store_dirmark {
	int in_sync;
};
void store_sync_mark_begin(struct store_account *a, int64_t folder, const char *dir,
			   struct store_dirmark *m);
void store_sync_mark_end(struct store_account *a, int64_t folder, const char *dir,
			 const struct store_dirmark *m);
void store_sync_mark_moved(struct store_account *a, int64_t folder, const char *dir, int alone);
int store_sync_mark_fresh(struct store_account *a, int64_t folder, const char *dir);
int store_sync_invalidate(struct store_account *a, int64_t folder);
void store_sync_checks_free(struct store *s);
int store_sync_marks_hold(const struct store_frow *fr, const char *dir);

/* store_msg.c: the file of a message (flags tell cur/ NAME:2,FLAGS from
 * new/ NAME), found by its basename when its suffix changed. */
int store_msg_path(const char *dir, const char *basename, unsigned flags, char *buf,
		   size_t len);
void store_msg_file_name(const char *dir, const char *basename, unsigned flags, char *buf,
			 size_t len);
unsigned store_msg_suffix_flags(const char *name);
int store_msg_collect(struct store_folder *f, const struct store_uidset *set, int only_deleted,
		      struct store_row **rows_r, size_t *n_r);
void store_msg_rows_free(struct store_row *rows, size_t n);

/* store_append.c */
int store_newmsg_fill(struct store_newmsg *m, const char *path);
void store_newmsg_free(struct store_newmsg *m);
void store_unique_name(struct store *s, char *buf, size_t len);
long long store_crlf_size(const char *data, size_t len);
int store_local_tz(long long t);

/* store_uidmap.c */
void store_uidmap_drop_all(struct store_account *a);

/* store.c */
void store_changed(struct store_account *a);
int store_folder_get_open(struct store_account *a, const char *name, struct store_frow *fr,
			  const char **error_r);

#endif
