/*
 * pidfile: a locked pid file (see pidfile.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "util/pidfile.h"

int
pidfile_create(const char *path)
{
	char buf[32];
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	int n;

	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, n, 0) != n) {
		close(fd);
		return -1;
	}
	return fd;
}

pid_t
pidfile_running(const char *path)
{
	char buf[32] = { 0 };
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	pid_t pid = 0;

	if (fd < 0)
		return 0;
	if (flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
		if (read(fd, buf, sizeof(buf) - 1) > 0)
			pid = (pid_t)atoi(buf);
	}
	close(fd);
	return pid;
}

void
pidfile_path(const char *dir, char *buf, size_t len)
{
	snprintf(buf, len, "%s/tandem.pid", dir);
}

void
pidfile_signal(const char *dir, int sig)
{
	char path[4096];
	pid_t pid;

	pidfile_path(dir, path, sizeof(path));
	if ((pid = pidfile_running(path)) > 0)
		kill(pid, sig);
}
