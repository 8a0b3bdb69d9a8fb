/*
 * durable: crash-safe file operations (see durable.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/durable.h"

void
durable_dirname(const char *path, char *dir, size_t dirlen)
{
	const char *slash = strrchr(path, '/');
	size_t n;

	if (slash == NULL) {
		snprintf(dir, dirlen, ".");
		return;
	}
	n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= dirlen)
		n = dirlen - 1;
	memcpy(dir, path, n);
	dir[n] = '\0';
}

int
durable_fsync_dir(const char *dir)
{
	int fd, rc;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

int
durable_rename(const char *from, const char *to)
{
	char d1[4096], d2[4096];

	if (rename(from, to) != 0)
		return -1;
	durable_dirname(to, d2, sizeof(d2));
	if (durable_fsync_dir(d2) != 0)
		return -1;
	durable_dirname(from, d1, sizeof(d1));
	if (strcmp(d1, d2) != 0 && durable_fsync_dir(d1) != 0)
		return -1;
	return 0;
}

int
durable_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= n;
	}
	return 0;
}

int
durable_write_file(const char *path, const void *data, size_t len, int mode)
{
	char tmp[4200];
	int fd, saved;

	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)) < 0)
		return -1;
	if (durable_write_all(fd, data, len) != 0 || fsync(fd) != 0) {
		saved = errno;
		close(fd);
		unlink(tmp);
		errno = saved;
		return -1;
	}
	if (close(fd) != 0 || durable_rename(tmp, path) != 0) {
		saved = errno;
		unlink(tmp);
		errno = saved;
		return -1;
	}
	return 0;
}

/* mkdir one level; a directory that is new gets its parent fsync'd, so a
 * crash cannot take back a directory a later durable write relies on. */
static int
durable_mkdir1(const char *path, int mode)
{
	char parent[4096];

	if (mkdir(path, mode) != 0)
		return errno == EEXIST ? 0 : -1;
	durable_dirname(path, parent, sizeof(parent));
	return durable_fsync_dir(parent);
}

int
durable_mkdirs(const char *path, int mode)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (durable_mkdir1(buf, mode) != 0)
			return -1;
		*p = '/';
	}
	return durable_mkdir1(buf, mode);
}

int
durable_unlink(const char *path)
{
	char dir[4096];

	if (unlink(path) != 0)
		return errno == ENOENT ? 0 : -1;
	durable_dirname(path, dir, sizeof(dir));
	return durable_fsync_dir(dir);
}

int
durable_openat_dir(int dirfd, const char *name, int mode)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd >= 0 || errno != ENOENT || mode <= 0)
		return fd;
	if (mkdirat(dirfd, name, mode) != 0 && errno != EEXIST)
		return -1;
	if (fsync(dirfd) != 0)
		return -1;
	return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

int
durable_createat(int dirfd, const char *name, int mode)
{
	int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
	int fd = openat(dirfd, name, flags, mode);

	/* O_EXCL fails on a dangling link too, so nothing is ever opened
	 * through one; unlinking removes the link, not its target. */
	if (fd < 0 && errno == EEXIST) {
		if (unlinkat(dirfd, name, 0) != 0 && errno != ENOENT)
			return -1;
		fd = openat(dirfd, name, flags, mode);
	}
	return fd;
}

int
durable_renameat(int dirfd, const char *from, const char *to)
{
	if (renameat(dirfd, from, dirfd, to) != 0)
		return -1;
	return fsync(dirfd);
}

void
durable_group_init(struct durable_group *g)
{
	memset(g, 0, sizeof(*g));
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
}

void
durable_group_free(struct durable_group *g)
{
	pthread_mutex_destroy(&g->mu);
	pthread_cond_destroy(&g->cv);
}

int
durable_group_sync(struct durable_group *g, const char *key, int (*sync)(void *arg), void *arg)
{
	unsigned long long need;
	int rc = 0, err = 0;

	if (strlen(key) >= sizeof(g->key))
		return sync(arg);
	pthread_mutex_lock(&g->mu);
	/* a sync that begins from now on covers this caller's write; the one
	 * running (if any) began before it */
	need = g->started + 1;
	for (;;) {
		if (g->done >= need && strcmp(g->key, key) == 0) {
			/* covered; a failure in between may have lost the write */
			if (g->failed >= need) {
				rc = -1;
				err = EIO;
			}
			break;
		}
		if (g->running) {
			pthread_cond_wait(&g->cv, &g->mu);
			continue;
		}
		/* this caller syncs, for itself and whoever arrives meanwhile */
		unsigned long long gen = ++g->started;

		g->running = 1;
		pthread_mutex_unlock(&g->mu);
		rc = sync(arg);
		err = errno;
		pthread_mutex_lock(&g->mu);
		g->running = 0;
		g->done = gen;
		snprintf(g->key, sizeof(g->key), "%s", key);
		if (rc != 0)
			g->failed = gen;
		pthread_cond_broadcast(&g->cv);
		break;
	}
	pthread_mutex_unlock(&g->mu);
	errno = err;
	return rc;
}
