/*
 * durable: the one place that makes files survive a crash. Write to a temp
 * file in the same directory, fsync it, rename it into place, fsync the
 * directory (the qmail/Postfix discipline). Nobody else calls rename(2) for
 * durability. Public: durable_fsync_dir, durable_rename, durable_write_file,
 * durable_mkdirs, durable_unlink, and the *_at variants that work inside a
 * directory held by fd and never follow a symbolic link (for root, working
 * in a data_dir the service user owns): durable_openat_dir,
 * durable_createat, durable_renameat; durable_group_init, durable_group_free,
 * durable_group_sync (one fsync for many writers).
 */
#ifndef TANDEM_DURABLE_H
#define TANDEM_DURABLE_H
#include <pthread.h>
#include <stddef.h>

/* fsync a directory so a rename or unlink in it is on disk. */
int durable_fsync_dir(const char *dir);
/* rename from -> to, then fsync the directory of `to` (and that of `from`
 * when it differs). The data of `from` must already be fsync'd. */
int durable_rename(const char *from, const char *to);
/* Replace path with data atomically and durably (tmp file beside it). */
int durable_write_file(const char *path, const void *data, size_t len, int mode);
/* mkdir -p with mode; existing directories are fine. The parent of every
 * directory it creates is fsync'd. */
int durable_mkdirs(const char *path, int mode);
/* unlink and fsync the directory. ENOENT counts as success. */
int durable_unlink(const char *path);
/* write all of buf to fd, retrying EINTR and short writes. */
int durable_write_all(int fd, const void *buf, size_t len);
/* The directory part of path into dir (size dirlen). */
void durable_dirname(const char *path, char *dir, size_t dirlen);

/* Open the subdirectory name of dirfd without following a symbolic link
 * (O_NOFOLLOW | O_DIRECTORY); when absent and mode > 0, create it first
 * (and fsync dirfd). -1 with errno ELOOP or ENOTDIR when name is a link or
 * not a directory. */
int durable_openat_dir(int dirfd, const char *name, int mode);
/* Create name in dirfd for writing, exclusively and without following a
 * link: whatever is already there (a stale temp file, or a link someone
 * planted) is unlinked, never opened. Returns the fd or -1. */
int durable_createat(int dirfd, const char *name, int mode);
/* renameat inside dirfd, then fsync dirfd. */
int durable_renameat(int dirfd, const char *from, const char *to);

/*
 * Group sync: threads that each need a file (or directory) flushed after
 * their own write share fsyncs. A caller is covered by a sync of the same
 * key that began after it arrived; while one runs the others wait, and
 * the next to go runs one for all who came meanwhile. Many deliveries
 * into one mailbox then cost one flush of its new/ and of its index's log
 * per batch instead of one each.
 */
struct durable_group {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int running;
	unsigned long long started, done;   /* syncs begun / the last one ended */
	unsigned long long failed;          /* the last one that failed (0: none) */
	char key[512];                      /* what the last one ended synced */
};

void durable_group_init(struct durable_group *g);
void durable_group_free(struct durable_group *g);
/* Make the write the caller just did on key durable: returns 0 once a
 * sync(arg) that began after the call has succeeded for key, -1 (errno
 * set) when it failed. sync returns 0 or -1 like fsync; key is a path of
 * at most 511 bytes (longer ones are synced alone). */
int durable_group_sync(struct durable_group *g, const char *key, int (*sync)(void *arg),
		       void *arg);

#endif
