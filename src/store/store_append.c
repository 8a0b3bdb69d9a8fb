/*
 * store_append: new messages, by local delivery and by IMAP APPEND.
 *
 * Both write the message to the folder's tmp/ and fsync it, summarise it
 * (store_mime_summarize), then, holding the index's write lock: check the
 * quota, link the file into new/ (or cur/NAME:2,FLAGS when it has flags),
 * fsync that directory, add the row and commit with synchronous=FULL. So
 * when the call returns, file, directory entry and row are on disk. A
 * crash after the link and before the commit leaves a file the next sync
 * indexes: the message is there once, never lost.
 *
 * A delivery's file is named "<qid>.Q.<host>": a retry after a crash finds
 * the qid in the index (whatever flags or folder moves did to the file
 * since) or, before its row was committed, the file itself, which it
 * indexes instead of writing again. Other files get
 * "<sec>.M<usec>P<pid>N<n>.<host>", the usual unique Maildir name.
 *
 * Public: store_deliver, store_append_begin, store_append_write,
 * store_append_commit, store_append_abort; store_int.h: store_newmsg_fill,
 * store_newmsg_free, store_unique_name, store_crlf_size, store_local_tz.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "store/maildir.h"
#include "store/store_int.h"
#include "util/durable.h"
#include "util/log.h"
#include "util/xalloc.h"

struct store_append {
	struct store_account *a;
	int64_t folder;
	uint32_t uidvalidity;
	char dir[STORE_PATH];
	char base[256];
	char tmp[STORE_PATH + 300];
	int fd;
	int pending_cr;
	int failed;
};

long long
store_crlf_size(const char *data, size_t len)
{
	long long n = (long long)len;

	for (const char *p = data, *e = data + len; (p = memchr(p, '\n', e - p)) != NULL; p++)
		if (p == data || p[-1] != '\r')
			n++;
	return n;
}

int
store_local_tz(long long t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (localtime_r(&tt, &tm) == NULL)
		return 0;
	return (int)(tm.tm_gmtoff / 60);
}

void
store_unique_name(struct store *s, char *buf, size_t len)
{
	static atomic_uint counter;
	struct timeval tv;

	gettimeofday(&tv, NULL);
	snprintf(buf, len, "%lld.M%ldP%ldN%u.%s", (long long)tv.tv_sec, (long)tv.tv_usec,
		 (long)getpid(), atomic_fetch_add(&counter, 1), s->host);
}

/* Size and summary of the file at path into m. -1 with errno. Small
 * files are read (cheaper than a mapping), larger ones mapped. */
int
store_newmsg_fill(struct store_newmsg *m, const char *path)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	const char *err, *data = "";
	char small[32768];
	struct stat sb;
	void *map = NULL;
	size_t len = 0;

	if (fd < 0)
		return -1;
	if (fstat(fd, &sb) != 0) {
		close(fd);
		return -1;
	}
	if (sb.st_size > 0 && (size_t)sb.st_size < sizeof(small)) {
		ssize_t n = pread(fd, small, sizeof(small), 0);

		if (n < 0) {
			close(fd);
			return -1;
		}
		data = small;
		len = (size_t)n;
	} else if (sb.st_size > 0) {
		map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			close(fd);
			return -1;
		}
		data = map;
		len = (size_t)sb.st_size;
	}
	close(fd);
	m->size = store_crlf_size(data, len);
	memset(&m->sum, 0, sizeof(m->sum));
	if (store_mime_summarize(data, len, &m->sum, &err) != 0)
		memset(&m->sum, 0, sizeof(m->sum));
	if (map)
		munmap(map, (size_t)sb.st_size);
	return 0;
}

void
store_newmsg_free(struct store_newmsg *m)
{
	store_mime_summary_free(&m->sum);
	memset(&m->sum, 0, sizeof(m->sum));
}

/* Link tmp into the folder under base (new/ without flags, else cur/)
 * and fsync the directory. 0, 1 when that name exists already, -1. */
static int
store_append_link(struct store_account *a, int64_t folder, const char *dir, const char *tmp,
		  const char *base, unsigned flags)
{
	char dst[STORE_PATH + 300], d[STORE_PATH + 8];
	struct store_dirmark mark;
	int rc;

	store_msg_file_name(dir, base, flags, dst, sizeof(dst));
	store_sync_mark_begin(a, folder, dir, &mark);
	rc = link(tmp, dst);
	store_sync_mark_end(a, folder, dir, &mark);
	if (rc != 0)
		return errno == EEXIST ? 1 : -1;
	snprintf(d, sizeof(d), "%s/%s", dir, flags ? "cur" : "new");
	return durable_fsync_dir(d);
}

static int
store_append_quota(struct store_account *a, long long size, long long quota,
		   const char **error_r)
{
	long long bytes = 0;

	if (quota <= 0)
		return 0;
	if (size > quota) {
		*error_r = "message larger than the mailbox quota";
		return STORE_TOO_BIG;
	}
	if (store_index_usage(a, &bytes, NULL) != 0) {
		*error_r = "cannot read the mailbox usage";
		return STORE_ERROR;
	}
	if (bytes + size > quota) {
		*error_r = "mailbox over quota";
		return STORE_OVER_QUOTA;
	}
	return 0;
}

/* The locked half of both: quota, link, row, durable commit. */
static int
store_append_index(struct store_account *a, int64_t folder, const char *dir, const char *tmp,
		   struct store_newmsg *m, long long quota, uint32_t *uid_r, const char **error_r)
{
	int rc;

	if (store_index_begin(a, 1) != 0) {
		*error_r = "mailbox index busy";
		return STORE_ERROR;
	}
	if (m->qid && m->qid[0]) {
		sqlite3_stmt *st = store_index_stmt(a, ST_MSG_BY_QID);

		if (st == NULL)
			goto fail;
		sqlite3_bind_text(st, 1, m->qid, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc == SQLITE_ROW) {
			store_index_rollback(a, 1);
			return STORE_DUPLICATE;
		}
	}
	if ((rc = store_append_quota(a, m->size, quota, error_r)) != 0) {
		store_index_rollback(a, 1);
		return rc;
	}
	if (tmp != NULL && (rc = store_append_link(a, folder, dir, tmp, m->basename, m->flags)) != 0) {
		store_index_rollback(a, 1);
		if (rc > 0)
			return STORE_DUPLICATE;
		*error_r = "cannot write the message into the mailbox";
		return STORE_ERROR;
	}
	if (store_index_msg_add(a, folder, m, uid_r, NULL) != 0 || store_index_commit(a, 1) != 0)
		goto fail;
	return STORE_OK;
fail:
	store_index_rollback(a, 1);
	*error_r = "cannot update the mailbox index";
	return STORE_ERROR;
}

static int
store_deliver_qid_ok(const char *qid)
{
	size_t n = strlen(qid);

	if (n == 0 || n > 64)
		return 0;
	return strspn(qid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static int
store_deliver_write(const char *tmp, const char *prefix, int src_fd, off_t off, long long len)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0)
		return -1;
	if ((prefix && durable_write_all(fd, prefix, strlen(prefix)) != 0) ||
	    maildir_copy_lf(fd, src_fd, off, len) != 0 || fsync(fd) != 0) {
		int e = errno;
		close(fd);
		unlink(tmp);
		errno = e;
		return -1;
	}
	if (close(fd) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* fsync the index's WAL: every transaction committed before it (with
 * synchronous=NORMAL, so without an fsync of its own) is then durable.
 * When the WAL is gone its frames were checkpointed, which syncs the
 * database file. Run by a batch's committer after its commit, outside
 * the write lock. */
static int
store_wal_fsync(const char *root)
{
	char p[STORE_PATH + 32];
	int fd, rc;

	snprintf(p, sizeof(p), "%s/index.db-wal", root);
	if ((fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		if (errno != ENOENT)
			return -1;
		snprintf(p, sizeof(p), "%s/index.db", root);
		if ((fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
			return -1;
	}
	rc = fsync(fd);
	close(fd);
	return rc;
}

static int
store_dir_fsync(void *arg)
{
	return durable_fsync_dir(arg);
}

/* fsync new/ after a link: one flush for the links of that moment */
static int
store_deliver_sync_dir(struct store *s, unsigned stripe, const char *nd)
{
	return durable_group_sync(&s->dir_sync[stripe], nd, store_dir_fsync, (void *)nd);
}

/*
 * The deliveries of a stripe between their link and their row form a
 * burst. The folder's "directories seen" marks (store_sync.c) may move
 * past the burst's links only once the last of them has its row, and only
 * when the marks were true as the burst began and every delivery in it
 * went to that one folder: a file a crash leaves without a row must make
 * the next open rescan. A burst of one moves them as it always did; after
 * several overlapping deliveries they are inferred (sync_checked = 0),
 * and the next open has a worker confirm them with a scan while the
 * client is already served from the index.
 */
static struct store_burst *
store_burst_of(struct store_account *a)
{
	return &a->s->burst[store_index_stripe(a)];
}

static void
store_burst_join(struct store_account *a, int64_t folder, const char *dir)
{
	struct store *s = a->s;
	struct store_burst *b = store_burst_of(a);

	pthread_mutex_lock(&s->burst_lock);
	/* while marks recorded by a last one wait for its commit (two may:
	 * the next transaction can run before the first's commit is
	 * counted), a newcomer continues that burst: read now, the marks
	 * would look old */
	if (b->inflight++ == 0 && !b->recording) {
		struct store_dirmark mark;

		/* the first: are the marks true now, before any link of the
		 * burst (the others wait for the lock before theirs)? */
		store_sync_mark_begin(a, folder, dir, &mark);
		b->folder = folder;
		b->many = 0;
		b->valid = mark.in_sync && strlen(a->address) < sizeof(b->address);
		snprintf(b->address, sizeof(b->address), "%s", a->address);
	} else {
		b->many = 1;
		if (b->folder != folder || strcmp(b->address, a->address) != 0)
			b->valid = 0;
	}
	pthread_mutex_unlock(&s->burst_lock);
}

/* Under the write lock, in the transaction that adds a delivery's row:
 * it is out of the burst, and when it was the last the marks move (in
 * the same transaction). Holding burst_lock, so no delivery links
 * between the count and the stat that records the marks. */
static int
store_burst_end(struct store_account *a, int64_t folder, const char *dir)
{
	struct store *s = a->s;
	struct store_burst *b = store_burst_of(a);
	int recorded = 0;

	pthread_mutex_lock(&s->burst_lock);
	if (--b->inflight == 0 && b->valid == 1) {
		store_sync_mark_moved(a, folder, dir, !b->many);
		b->recording++;
		recorded = 1;
	}
	pthread_mutex_unlock(&s->burst_lock);
	return recorded;
}

/* After the commit of a row counted out by store_burst_end. */
static void
store_burst_committed(struct store *s, unsigned stripe, int recorded, int ok)
{
	struct store_burst *b = &s->burst[stripe];

	pthread_mutex_lock(&s->burst_lock);
	if (recorded)
		b->recording--;
	if (!ok)
		b->valid = 0;
	pthread_mutex_unlock(&s->burst_lock);
}

/* Out of the burst without a row; left_file: its file may be there. */
static void
store_burst_leave(struct store *s, unsigned stripe, int left_file)
{
	struct store_burst *b = &s->burst[stripe];

	pthread_mutex_lock(&s->burst_lock);
	if (left_file)
		b->valid = 0;
	b->inflight--;
	pthread_mutex_unlock(&s->burst_lock);
}


/*
 * The rows of deliveries into one mailbox are committed in batches: a
 * delivery whose file is linked and durable queues its row on its
 * stripe; if no batch is being committed it commits, in one transaction
 * under the write lock, every row queued for its address so far (its
 * own among them), and fsyncs the WAL; otherwise it waits for that batch
 * to end and then looks again. A batch ends after its fsync, so the rows
 * that arrive during one commit and its flush form the next batch (group
 * commit). One transaction writes the pages that every row touches (the
 * folder's row, its UID runs, the last page of each index) once instead
 * of once per message: a commit of one row writes about ten pages of WAL,
 * ten times the message.
 */
#define STORE_BATCH_MAX 64   /* rows in one transaction */

struct store_pending {
	const char *address, *root;
	int64_t folder;
	const char *dir, *dst;
	struct store_newmsg *m;
	long long quota;
	uint32_t uid;
	int rc, done;
	const char *error;
	struct store_pending *next;
};

/* One row of a batch, inside its transaction (handle a, the address's
 * delivery handle, of that stripe). A concurrent folder sync may have indexed the file
 * meanwhile (it reads the qid from the name): then it is there once, as
 * it should be. Returns -1 when the transaction itself failed, else 0
 * with p->rc set (on STORE_OK the row is added and counted out of its
 * burst in *recorded). */
static int
store_batch_row(struct store_account *a, unsigned stripe, struct store_pending *p, int *recorded)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = store_index_stmt(a, ST_MSG_BY_QID)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, p->m->qid, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW) {
		store_burst_leave(a->s, stripe, 0);
		p->rc = STORE_DUPLICATE;
		return 0;
	}
	if (rc != SQLITE_DONE)
		return -1;
	if ((rc = store_append_quota(a, p->m->size, p->quota, &p->error)) != 0) {
		if (rc == STORE_ERROR)
			return -1;
		unlink(p->dst);
		store_burst_leave(a->s, stripe, 0);
		p->rc = rc;
		return 0;
	}
	if (store_index_msg_add(a, p->folder, p->m, &p->uid, NULL) != 0)
		return -1;
	/* in the same transaction: an autocommit write here would contend
	 * for SQLite's lock outside the write mutex */
	*recorded = store_burst_end(a, p->folder, p->dir);
	p->rc = STORE_OK;
	return 0;
}

/* Commit the rows of batch (a list, all for one address) with that
 * address's delivery handle a (NULL: it could not be opened). */
static void
store_batch_commit(struct store *s, unsigned stripe, struct store_account *a,
		   struct store_pending *batch)
{
	struct store_pending *p;
	int recorded[STORE_BATCH_MAX] = { 0 }, n = 0, ok = 0;

	if (a != NULL && store_index_begin(a, 0) == 0) {
		ok = 1;
		for (p = batch; p != NULL && ok; p = p->next, n++)
			ok = store_batch_row(a, stripe, p, &recorded[n]) == 0;
		if (ok)
			ok = store_index_commit(a, 0) == 0;
		else
			store_index_rollback(a, 0);
	}
	n = 0;
	for (p = batch; p != NULL; p = p->next, n++) {
		if (ok && p->rc == STORE_OK) {
			store_burst_committed(s, stripe, recorded[n], 1);
		} else if (!ok) {
			/* the rows are not there; the files are, and the retry
			 * finds each by its name */
			if (p->rc == STORE_OK)
				store_burst_committed(s, stripe, recorded[n], 0);
			else if (p->rc == -1)
				store_burst_leave(s, stripe, 1);
			p->rc = STORE_ERROR;
			p->error = "cannot update the mailbox index";
		}
	}
}

/* The batch's committed rows made durable: one fsync of the WAL. A row
 * whose flush failed is reported as not delivered; its retry finds the
 * row (a duplicate avoided). */
static void
store_batch_sync(struct store_pending *batch)
{
	struct store_pending *p;

	for (p = batch; p != NULL && p->rc != STORE_OK; p = p->next)
		;
	if (p == NULL || store_wal_fsync(p->root) == 0)
		return;
	for (p = batch; p != NULL; p = p->next)
		if (p->rc == STORE_OK) {
			p->rc = STORE_ERROR;
			p->error = "cannot sync the mailbox index";
		}
}

/* The locked half of a delivery whose file is already linked and
 * durable: quota, row, commit (no fsync under the lock), shared with the
 * deliveries into the same mailbox at the same moment. Counts the
 * delivery out of its burst on every path. */
static int
store_deliver_row(struct store *s, const char *address, const char *root, int64_t folder,
		  const char *dir, const char *dst, struct store_newmsg *m, long long quota,
		  uint32_t *uid_r, const char **error_r)
{
	unsigned stripe = store_address_stripe(address);
	struct store_batch *b = &s->batch[stripe];
	struct store_pending me = { .address = address, .root = root, .folder = folder,
				    .dir = dir, .dst = dst, .m = m, .quota = quota, .rc = -1 };
	struct store_pending **pp;

	pthread_mutex_lock(&b->mu);
	for (pp = &b->pending; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = &me;
	while (!me.done) {
		struct store_pending *batch = NULL, **tail = &batch;
		struct store_account *a;
		const char *err;
		int n = 0;

		if (b->committing) {
			pthread_cond_wait(&b->cv, &b->mu);
			continue;
		}
		/* this delivery commits: every row queued for its address */
		for (pp = &b->pending; *pp != NULL;) {
			struct store_pending *p = *pp;

			if (n < STORE_BATCH_MAX && strcmp(p->address, address) == 0) {
				*pp = p->next;
				p->next = NULL;
				*tail = p;
				tail = &p->next;
				n++;
			} else {
				pp = &p->next;
			}
		}
		b->committing = 1;
		pthread_mutex_unlock(&b->mu);
		a = store_deliver_lock(s, address, 0, &err);
		store_batch_commit(s, stripe, a, batch);
		if (a != NULL)
			store_deliver_unlock(s, address);
		store_batch_sync(batch);
		pthread_mutex_lock(&b->mu);
		for (struct store_pending *p = batch; p != NULL; p = p->next)
			p->done = 1;
		b->committing = 0;
		pthread_cond_broadcast(&b->cv);
	}
	pthread_mutex_unlock(&b->mu);
	if (uid_r)
		*uid_r = me.uid;
	if (me.rc != STORE_OK && me.rc != STORE_DUPLICATE)
		*error_r = me.error ? me.error : "cannot update the mailbox index";
	return me.rc;
}

/* A file linked before a crash or by another attempt, never indexed:
 * its row now, with the address's delivery handle a (locked). */
static int
store_deliver_found(struct store_account *a, int64_t folder, const char *dir, const char *path,
		    struct store_newmsg *m, uint32_t *uid_r, const char **error_r)
{
	int rc;

	if (m->size == 0 && store_newmsg_fill(m, path) != 0) {
		*error_r = strerror(errno);
		return STORE_ERROR;
	}
	rc = store_append_index(a, folder, dir, NULL, m, 0, uid_r, error_r);
	return rc == STORE_OK ? STORE_DUPLICATE : rc;
}

/*
 * A delivery: its checks with the address's delivery handle, then
 * write tmp/, fsync, link into new/, fsync new/ — with no lock held, so
 * concurrent deliveries into one mailbox (a busy inbox, a catch-all)
 * overlap their fsyncs — then add the row in a batch, made durable by the
 * batch's fsync of the WAL after the lock. The file is durable before the
 * row can be, so a row never names a file a power cut could take away; a
 * file without its row (a crash between) is indexed by the retry (found
 * by name) or by the next sync (qid from the name), so it is neither lost
 * nor doubled. Called with a locked (store_deliver_lock); unlocks it.
 */
static int
store_deliver_into(struct store_account *a, const struct store_frow *fr, const char *qid,
		   const char *prefix, int src_fd, off_t off, long long len, long long quota,
		   uint32_t *uid_r, const char **error_r)
{
	char dir[STORE_PATH], path[STORE_PATH + 300], tmp[STORE_PATH + 300], base[256];
	char nd[STORE_PATH + 8], root[STORE_PATH], address[256];
	struct store *s = a->s;
	unsigned stripe = store_index_stripe(a);
	struct store_newmsg m = { 0 };
	sqlite3_stmt *st = store_index_stmt(a, ST_MSG_BY_QID);
	struct stat sb;
	int rc;

	snprintf(address, sizeof(address), "%s", a->address);
	if (st == NULL || strlen(a->address) >= sizeof(address)) {
		store_deliver_unlock(s, address);
		return STORE_ERROR;
	}
	sqlite3_bind_text(st, 1, qid, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW) {
		store_deliver_unlock(s, address);
		return STORE_DUPLICATE;
	}
	snprintf(root, sizeof(root), "%s", a->root);
	store_folder_path(a, fr->disk, dir, sizeof(dir));
	snprintf(base, sizeof(base), "%s.Q.%s", qid, s->host);
	m.basename = base;
	m.qid = qid;
	m.internaldate = (long long)time(NULL);
	m.tz = store_local_tz(m.internaldate);
	/* Linked before a crash, never indexed: index it now. Only new/ can
	 * hold it (no flags without a row), and an exact lstat keeps a
	 * delivery O(1) in the size of the folder. */
	store_msg_file_name(dir, base, 0, path, sizeof(path));
	if (lstat(path, &sb) == 0) {
		rc = store_deliver_found(a, fr->id, dir, path, &m, uid_r, error_r);
		store_deliver_unlock(s, address);
		store_newmsg_free(&m);
		return rc;
	}
	/* the cheap refusals before any writing (checked again in the batch) */
	if ((rc = store_append_quota(a, len, quota, error_r)) != 0) {
		store_deliver_unlock(s, address);
		return rc;
	}
	/* in the burst from here: the marks are read before the link */
	store_burst_join(a, fr->id, dir);
	store_deliver_unlock(s, address);
	a = NULL;   /* another address's delivery may take the handle now */

	snprintf(tmp, sizeof(tmp), "%s/tmp/%s", dir, base);
	if (store_deliver_write(tmp, prefix, src_fd, off, len) != 0) {
		*error_r = strerror(errno);
		store_burst_leave(s, stripe, 0);
		return STORE_ERROR;
	}
	if (store_newmsg_fill(&m, tmp) != 0) {
		*error_r = strerror(errno);
		store_burst_leave(s, stripe, 0);
		unlink(tmp);
		return STORE_ERROR;
	}
	snprintf(nd, sizeof(nd), "%s/new", dir);
	rc = link(tmp, path);
	if (rc != 0 && errno == EEXIST) {
		/* another attempt of ours got there first: index what is there */
		store_burst_leave(s, stripe, 0);
		unlink(tmp);
		if ((a = store_deliver_lock(s, address, 0, error_r)) == NULL) {
			store_newmsg_free(&m);
			return STORE_ERROR;
		}
		rc = store_deliver_found(a, fr->id, dir, path, &m, uid_r, error_r);
		store_deliver_unlock(s, address);
		store_newmsg_free(&m);
		return rc;
	}
	if (rc != 0 || store_deliver_sync_dir(s, stripe, nd) != 0) {
		store_burst_leave(s, stripe, rc == 0);
		*error_r = "cannot write the message into the mailbox";
		if (rc == 0)
			unlink(path);
		unlink(tmp);
		store_newmsg_free(&m);
		return STORE_ERROR;
	}
	unlink(tmp);
	rc = store_deliver_row(s, address, root, fr->id, dir, path, &m, quota, uid_r, error_r);
	store_newmsg_free(&m);
	if (rc == STORE_OK)
		store_notify(s, address);
	return rc;
}

int
store_deliver(struct store *s, const char *address, const char *folder, const char *qid,
	      const char *prefix, int src_fd, off_t off, long long len, long long quota,
	      uint32_t *uid_r, const char **error_r)
{
	struct store_account *a;
	struct store_frow fr;
	char name[512];
	int rc;

	if (!store_deliver_qid_ok(qid)) {
		*error_r = "bad queue id";
		return STORE_ERROR;
	}
	if ((rc = store_folder_canon(folder ? folder : "INBOX", name, sizeof(name), error_r)) != 0)
		return rc;
	if ((a = store_deliver_lock(s, address, 1, error_r)) == NULL)
		return STORE_ERROR;
	rc = store_index_folder_get(a, name, 0, &fr);
	if (rc == 0 && fr.noselect)
		rc = 1;
	if (rc != 0) {
		*error_r = rc > 0 ? "no such folder" : "cannot read the mailbox index";
		store_deliver_unlock(s, address);
		return rc > 0 ? STORE_NO_FOLDER : STORE_ERROR;
	}
	return store_deliver_into(a, &fr, qid, prefix, src_fd, off, len, quota, uid_r, error_r);
}

struct store_append *
store_append_begin(struct store_account *a, const char *folder, int *rc_r, const char **error_r)
{
	struct store_append *w;
	struct store_frow fr;
	char name[512];
	int rc, dummy;

	if (rc_r == NULL)
		rc_r = &dummy;
	if ((rc = store_folder_canon(folder, name, sizeof(name), error_r)) != 0) {
		*rc_r = rc;
		return NULL;
	}
	rc = store_index_folder_get(a, name, 0, &fr);
	if (rc != 0 || fr.noselect) {
		*error_r = rc < 0 ? "cannot read the mailbox index" : "no such folder";
		*rc_r = rc < 0 ? STORE_ERROR : STORE_NO_FOLDER;
		return NULL;
	}
	w = xcalloc(1, sizeof(*w));
	w->a = a;
	w->folder = fr.id;
	w->uidvalidity = fr.uidvalidity;
	store_folder_path(a, fr.disk, w->dir, sizeof(w->dir));
	store_unique_name(a->s, w->base, sizeof(w->base));
	snprintf(w->tmp, sizeof(w->tmp), "%s/tmp/%s", w->dir, w->base);
	w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (w->fd < 0 && errno == ENOENT && maildir_create(w->dir) == 0)
		w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		*error_r = "cannot create the message file";
		*rc_r = STORE_ERROR;
		free(w);
		return NULL;
	}
	*rc_r = STORE_OK;
	return w;
}

int
store_append_write(struct store_append *w, const void *data, size_t len)
{
	const char *p = data;
	char ob[8192];
	size_t o = 0;

	if (w->failed)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (o + 2 > sizeof(ob)) {
			if (durable_write_all(w->fd, ob, o) != 0)
				goto fail;
			o = 0;
		}
		if (w->pending_cr) {
			w->pending_cr = 0;
			if (p[i] != '\n')
				ob[o++] = '\r';
		}
		if (p[i] == '\r')
			w->pending_cr = 1;
		else
			ob[o++] = p[i];
	}
	if (o > 0 && durable_write_all(w->fd, ob, o) != 0)
		goto fail;
	return 0;
fail:
	w->failed = 1;
	return -1;
}

void
store_append_abort(struct store_append **wp)
{
	struct store_append *w = *wp;

	if (w == NULL)
		return;
	*wp = NULL;
	if (w->fd >= 0)
		close(w->fd);
	unlink(w->tmp);
	free(w);
}

int
store_append_commit(struct store_append **wp, unsigned flags, const char *keywords,
		    long long internaldate, int internaldate_tz, long long quota,
		    uint32_t *uidvalidity_r, uint32_t *uid_r, const char **error_r)
{
	struct store_append *w = *wp;
	struct store_newmsg m = { 0 };
	int rc, fd = w->fd;

	w->fd = -1;
	if ((w->pending_cr && durable_write_all(fd, "\r", 1) != 0) || w->failed || fsync(fd) != 0) {
		close(fd);
		store_append_abort(wp);
		*error_r = "cannot write the message file";
		return STORE_ERROR;
	}
	if (close(fd) != 0 || store_newmsg_fill(&m, w->tmp) != 0) {
		store_append_abort(wp);
		*error_r = "cannot write the message file";
		return STORE_ERROR;
	}
	m.basename = w->base;
	m.flags = flags & STORE_F_ALL;
	m.keywords = keywords;
	m.internaldate = internaldate ? internaldate : (long long)time(NULL);
	m.tz = internaldate ? internaldate_tz : store_local_tz(m.internaldate);
	rc = store_append_index(w->a, w->folder, w->dir, w->tmp, &m, quota, uid_r, error_r);
	store_newmsg_free(&m);
	if (rc == STORE_DUPLICATE) {   /* the unique name exists: cannot happen */
		*error_r = "message file name taken";
		rc = STORE_ERROR;
	}
	if (rc == STORE_OK) {
		if (uidvalidity_r)
			*uidvalidity_r = w->uidvalidity;
		store_changed(w->a);
	}
	store_append_abort(wp);
	return rc;
}
