/*
 * queue: on-disk queue layout, queue ids, incoming messages and state moves
 * (see queue.h). All durability goes through util/durable.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "queue/queue.h"
#include "util/durable.h"
#include "util/xalloc.h"

struct queue {
	char *dir;
	/* Group commit of active/: one directory fsync covers every rename
	 * made before it started, so concurrent commits share it. */
	pthread_mutex_t sync_mu;
	pthread_cond_t sync_cv;
	unsigned long long sync_req, sync_done, sync_failed;
	int syncing, sync_errno;
};

struct queue_in {
	struct queue *q;
	char qid[QUEUE_ID_LEN + 1];
	char tmp[4096];
	int fd;            /* -1 until the file exists */
	int err;
	int committed;
	int created;       /* tmp/QID is ours to remove */
	int anonymous;     /* an O_TMPFILE inode: it gets its name at commit */
	long long size;
	char *buf;         /* the message so far, or (after a spill) a write buffer */
	size_t blen, bcap;
};

/* Messages up to this size stay in memory until the commit, which runs on a
 * worker: the event loop never waits for the filesystem journal. Larger
 * ones spill to tmp/ as they stream in. */
#define QUEUE_IN_SPILL (256 * 1024)


static const char *const queue_states[Q_NSTATES] = { "active", "deferred", "hold", "corrupt" };

const char *
queue_state_name(enum queue_state st)
{
	return st < Q_NSTATES ? queue_states[st] : "?";
}

int
queue_state_parse(const char *name, enum queue_state *st_r)
{
	for (int i = 0; i < Q_NSTATES; i++)
		if (strcmp(name, queue_states[i]) == 0) {
			*st_r = i;
			return 0;
		}
	return -1;
}

struct queue *
queue_open(const char *data_dir, char *err, size_t errlen)
{
	static const char *const subdirs[] = { "tmp", "active", "deferred", "hold", "corrupt", "meta" };
	struct queue *q = xcalloc(1, sizeof(*q));
	char path[4096];

	q->dir = xasprintf("%s/queue", data_dir);
	pthread_mutex_init(&q->sync_mu, NULL);
	pthread_cond_init(&q->sync_cv, NULL);
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", q->dir, subdirs[i]);
		if (durable_mkdirs(path, 0750) != 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			queue_close(&q);
			return NULL;
		}
	}
	return q;
}

void
queue_close(struct queue **qp)
{
	if (*qp == NULL)
		return;
	pthread_mutex_destroy(&(*qp)->sync_mu);
	pthread_cond_destroy(&(*qp)->sync_cv);
	free((*qp)->dir);
	free(*qp);
	*qp = NULL;
}

const char *
queue_dir(struct queue *q)
{
	return q->dir;
}

/* 16 upper-case hex digits: seconds, microseconds, a counter. They sort by
 * arrival, which is the order `queue list` and the scheduler want. */
void
queue_new_id(char out[QUEUE_ID_LEN + 1])
{
	static atomic_uint counter;
	static atomic_int seeded;
	struct timeval tv;
	unsigned c;

	/* The counter starts at a value of this process, so that two processes
	 * (two `tandem sendmail`, or one and the server) asking in the same
	 * microsecond do not both start at 0. */
	if (!atomic_exchange(&seeded, 1))
		atomic_fetch_add(&counter, (unsigned)getpid() * 2654435761u);
	c = atomic_fetch_add(&counter, 1);
	gettimeofday(&tv, NULL);
	snprintf(out, QUEUE_ID_LEN + 1, "%08llX%05lX%03X", (unsigned long long)tv.tv_sec & 0xffffffffULL,
		 (unsigned long)tv.tv_usec & 0xfffff, c & 0xfff);
}

int
queue_valid_id(const char *qid)
{
	size_t n = strlen(qid);

	if (n != QUEUE_ID_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((qid[i] >= '0' && qid[i] <= '9') || (qid[i] >= 'A' && qid[i] <= 'F')))
			return 0;
	return 1;
}

void
queue_path(struct queue *q, enum queue_state st, const char *qid, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s/%s", q->dir, queue_state_name(st), qid);
}

int
queue_find(struct queue *q, const char *qid, enum queue_state *st_r)
{
	char path[4096];
	int err = ENOENT;

	if (!queue_valid_id(qid)) {
		errno = ENOENT;
		return -1;
	}
	for (int st = 0; st < Q_NSTATES; st++) {
		queue_path(q, st, qid, path, sizeof(path));
		if (access(path, F_OK) == 0) {
			*st_r = st;
			return 0;
		}
		if (errno != ENOENT)
			err = errno;   /* maybe there: the caller must not forget it */
	}
	errno = err;
	return -1;
}

struct queue_in *
queue_in_create(struct queue *q, struct queue_env *env)
{
	struct queue_in *in = xcalloc(1, sizeof(*in));
	size_t hlen;
	char *head;

	in->q = q;
	in->fd = -1;
	queue_new_id(in->qid);
	snprintf(in->tmp, sizeof(in->tmp), "%s/tmp/%s", q->dir, in->qid);
	memcpy(env->qid, in->qid, sizeof(in->qid));
	head = queue_env_encode(env, &hlen);
	in->size = -(long long)hlen;
	queue_in_write(in, head, hlen);
	free(head);
	return in;
}

/* Create the file: an unnamed inode in tmp/ when the whole message is
 * written at commit (it needs no cleaning after a crash, and syncing it
 * touches no directory), else tmp/QID. The id is unique in this process;
 * O_EXCL, link(2) and a look at the state directories keep it unique
 * across restarts too. */
static int
queue_in_open(struct queue_in *in, int at_commit)
{
	enum queue_state st;
	char dir[4200];

	if (at_commit) {
		snprintf(dir, sizeof(dir), "%s/tmp", in->q->dir);
		in->fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0640);
		if (in->fd >= 0) {
			in->anonymous = 1;
			return 0;
		}
	}
	in->fd = open(in->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (in->fd >= 0 && queue_find(in->q, in->qid, &st) == 0) {
		close(in->fd);
		in->fd = -1;
		unlink(in->tmp);
		errno = EEXIST;
	}
	if (in->fd < 0) {
		in->err = errno;
		return -1;
	}
	in->created = 1;
	return 0;
}

const char *
queue_in_qid(struct queue_in *in)
{
	return in->qid;
}

static int
queue_in_flush(struct queue_in *in, int at_commit)
{
	if (in->err == 0 && in->fd < 0)
		queue_in_open(in, at_commit);
	if (in->err == 0 && in->blen > 0 && durable_write_all(in->fd, in->buf, in->blen) != 0)
		in->err = errno ? errno : EIO;
	in->blen = 0;
	return in->err ? -1 : 0;
}

int
queue_in_write(struct queue_in *in, const void *buf, size_t len)
{
	if (in->err)
		return -1;
	in->size += len;
	if (in->blen + len > QUEUE_IN_SPILL && queue_in_flush(in, 0) != 0)
		return -1;
	if (in->fd >= 0 && len >= QUEUE_IN_SPILL) {
		if (durable_write_all(in->fd, buf, len) != 0)
			in->err = errno ? errno : EIO;
		return in->err ? -1 : 0;
	}
	if (in->blen + len > in->bcap) {
		in->bcap = in->bcap ? in->bcap : 8192;
		while (in->bcap < in->blen + len)
			in->bcap *= 2;
		in->buf = xrealloc(in->buf, in->bcap);
	}
	memcpy(in->buf + in->blen, buf, len);
	in->blen += len;
	return 0;
}

int
queue_in_error(struct queue_in *in)
{
	return in->err;
}

long long
queue_in_size(struct queue_in *in)
{
	return in->size;
}

/* fsync active/ on behalf of every rename done before this call. */
static int
queue_sync_active(struct queue *q)
{
	unsigned long long mine, target;
	char dir[4200];
	int rc = 0;

	pthread_mutex_lock(&q->sync_mu);
	mine = ++q->sync_req;
	while (q->sync_done < mine) {
		if (q->sync_failed >= mine) {
			errno = q->sync_errno;
			rc = -1;
			break;
		}
		if (q->syncing) {
			pthread_cond_wait(&q->sync_cv, &q->sync_mu);
			continue;
		}
		q->syncing = 1;
		target = q->sync_req;
		pthread_mutex_unlock(&q->sync_mu);
		snprintf(dir, sizeof(dir), "%s/active", q->dir);
		rc = durable_fsync_dir(dir);
		pthread_mutex_lock(&q->sync_mu);
		q->syncing = 0;
		if (rc == 0) {
			q->sync_done = target;
		} else {
			q->sync_errno = errno;
			q->sync_failed = target;
		}
		pthread_cond_broadcast(&q->sync_cv);
	}
	pthread_mutex_unlock(&q->sync_mu);
	return rc;
}

int
queue_in_commit(struct queue_in *in)
{
	char dst[4096], self[64];

	if (queue_in_flush(in, 1) != 0)
		goto fail;
	if (fsync(in->fd) != 0) {
		in->err = errno;
		goto fail;
	}
	queue_path(in->q, Q_ACTIVE, in->qid, dst, sizeof(dst));
	if (in->anonymous) {
		/* link(2) never replaces an existing name: a colliding id fails
		 * here instead of overwriting a queued message. */
		enum queue_state st;

		snprintf(self, sizeof(self), "/proc/self/fd/%d", in->fd);
		if (queue_find(in->q, in->qid, &st) == 0) {
			in->err = EEXIST;
			goto fail;
		}
		if (linkat(AT_FDCWD, self, AT_FDCWD, dst, AT_SYMLINK_FOLLOW) != 0) {
			in->err = errno;
			goto fail;
		}
		in->committed = 1;
	}
	if (close(in->fd) != 0 && !in->committed) {
		in->fd = -1;
		in->err = errno;
		goto fail;
	}
	in->fd = -1;
	if (!in->committed && rename(in->tmp, dst) != 0) {
		in->err = errno;
		goto fail;
	}
	in->committed = 1;
	if (queue_sync_active(in->q) != 0) {
		/* The rename may or may not survive a crash: not committed. */
		in->err = errno;
		in->committed = 0;
		unlink(dst);
		errno = in->err;
		return -1;
	}
	return 0;
fail:
	errno = in->err;
	return -1;
}

void
queue_in_free(struct queue_in **inp)
{
	struct queue_in *in = *inp;

	if (in == NULL)
		return;
	if (in->fd >= 0)
		close(in->fd);
	if (!in->committed && in->created)
		unlink(in->tmp);
	free(in->buf);
	free(in);
	*inp = NULL;
}

static void
queue_meta_path(struct queue *q, const char *qid, char *buf, size_t len)
{
	snprintf(buf, len, "%s/meta/%s", q->dir, qid);
}

int
queue_move(struct queue *q, const char *qid, enum queue_state from, enum queue_state to)
{
	char a[4096], b[4096];

	queue_path(q, from, qid, a, sizeof(a));
	queue_path(q, to, qid, b, sizeof(b));
	return durable_rename(a, b);
}

int
queue_remove(struct queue *q, const char *qid, enum queue_state st)
{
	char path[4096];

	queue_path(q, st, qid, path, sizeof(path));
	if (unlink(path) != 0)
		return -1;
	/* No directory fsync: if the unlink is lost in a crash the message is
	 * attempted again, and local delivery is idempotent. */
	queue_meta_path(q, qid, path, sizeof(path));
	unlink(path);
	return 0;
}

static char *
queue_slurp(int fd, size_t max, size_t *len_r)
{
	size_t cap = 4096, len = 0;
	char *b = xmalloc(cap);

	for (;;) {
		ssize_t n;

		if (len == cap) {
			if (cap >= max)
				break;
			cap *= 2;
			b = xrealloc(b, cap);
		}
		n = read(fd, b + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(b);
			return NULL;
		}
		if (n == 0)
			break;
		len += n;
	}
	*len_r = len;
	return b;
}

int
queue_meta_read(struct queue *q, const char *qid, struct queue_meta *m)
{
	char path[4096];
	size_t len;
	char *b;
	int fd, rc, saved;

	memset(m, 0, sizeof(*m));
	queue_meta_path(q, qid, path, sizeof(path));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 1 : -1;
	b = queue_slurp(fd, 1 << 20, &len);
	saved = errno;
	close(fd);
	if (b == NULL) {
		errno = saved;
		return -1;
	}
	/* Meta files are replaced whole (durable_write_file), so one that does
	 * not parse is damaged, not half written: reading it as "no meta"
	 * would deliver again to every recipient already served. */
	rc = queue_meta_parse(b, len, m);
	free(b);
	if (rc < 0) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

int
queue_meta_write(struct queue *q, const char *qid, const struct queue_meta *m)
{
	char path[4096];
	size_t len;
	char *b = queue_meta_encode(m, &len);
	int rc;

	queue_meta_path(q, qid, path, sizeof(path));
	rc = durable_write_file(path, b, len, 0640);
	free(b);
	return rc;
}

int
queue_read_env(struct queue *q, enum queue_state st, const char *qid, struct queue_env *env,
	       size_t *body_off_r)
{
	char path[4096];
	size_t cap = 16384, len = 0;
	char *b;
	int fd;
	struct stat sb;

	queue_path(q, st, qid, path, sizeof(path));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	if (fstat(fd, &sb) != 0)
		goto fail;
	b = xmalloc(cap);
	for (;;) {
		ssize_t n = pread(fd, b + len, cap - len, len);
		int rc;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(b);
			goto fail;
		}
		len += n;
		rc = queue_env_parse(b, len, env, body_off_r);
		if (rc == 1) {
			env->size = (long long)sb.st_size - (long long)*body_off_r;
			free(b);
			return fd;
		}
		if (rc < 0 || n == 0 || cap >= (16u << 20)) {
			free(b);
			errno = EINVAL;
			goto fail;
		}
		if (len == cap) {
			cap *= 2;
			b = xrealloc(b, cap);
		}
	}
fail:
	close(fd);
	return -1;
}

static int
queue_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
queue_scan(struct queue *q, enum queue_state st, void (*fn)(const char *qid, void *arg), void *arg)
{
	char path[4096];
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", q->dir, queue_state_name(st));
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (!queue_valid_id(de->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			names = xrealloc(names, cap * sizeof(char *));
		}
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n > 1)
		qsort(names, n, sizeof(char *), queue_cmp);
	for (size_t i = 0; i < n; i++) {
		fn(names[i], arg);
		free(names[i]);
	}
	free(names);
	return (int)n;
}

int
queue_clean_tmp(struct queue *q)
{
	char path[4096];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/tmp", q->dir);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			n++;
	}
	closedir(d);
	return n;
}
