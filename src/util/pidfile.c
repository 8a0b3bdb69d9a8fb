/*
 * pidfile: a locked pid file, and the checks before the CLI believes it
 * (see pidfile.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/pidfile.h"

/* O_NOFOLLOW: the final component is never a link we follow; O_NONBLOCK:
 * a FIFO planted there cannot hang the open. */
static int
pidfile_open(const char *path, int flags)
{
	struct stat sb;
	int fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);

	if (fd < 0)
		return -1;
	/* A hard link to some other file would let ftruncate reach it. */
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_nlink != 1) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

int
pidfile_create(const char *path)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	char buf[32];
	int fd = pidfile_open(path, O_RDWR | O_CREAT);
	int n, saved;

	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0 || fcntl(fd, F_SETLK, &fl) != 0)
		goto fail;
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, n, 0) != n)
		goto fail;
	return fd;
fail:
	saved = errno == EACCES || errno == EAGAIN ? EWOULDBLOCK : errno;
	close(fd);
	errno = saved;
	return -1;
}

/* The pid the kernel says holds path's POSIX write lock, when it is also
 * the pid written in the file; else 0. */
static pid_t
pidfile_holder(const char *path)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	char buf[32] = { 0 };
	int fd = pidfile_open(path, O_RDONLY);
	pid_t pid = 0;

	if (fd < 0)
		return 0;
	if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK && fl.l_pid > 0 &&
	    pread(fd, buf, sizeof(buf) - 1, 0) > 0 && atoi(buf) == fl.l_pid)
		pid = fl.l_pid;
	close(fd);
	return pid;
}

/* Read /proc/PID/NAME into buf (NUL-terminated); its length or -1. */
static ssize_t
pidfile_proc(pid_t pid, const char *name, char *buf, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

/* Its name is tandem, or (under valgrind and the like) one of its
 * arguments is a program called tandem. */
static int
pidfile_is_tandem(pid_t pid)
{
	char buf[4096];
	ssize_t n;

	if (pidfile_proc(pid, "comm", buf, sizeof(buf)) > 0 && strcmp(buf, "tandem\n") == 0)
		return 1;
	if ((n = pidfile_proc(pid, "cmdline", buf, sizeof(buf))) <= 0)
		return 0;
	for (char *p = buf; p < buf + n; p += strlen(p) + 1) {
		const char *base = strrchr(p, '/');

		if (strcmp(base ? base + 1 : p, "tandem") == 0)
			return 1;
	}
	return 0;
}

/* Real and effective uid of pid, from /proc/PID/status. */
static int
pidfile_uids(pid_t pid, uid_t *ruid_r, uid_t *euid_r)
{
	char buf[4096], *p;
	unsigned long r, e;

	if (pidfile_proc(pid, "status", buf, sizeof(buf)) <= 0 ||
	    (p = strstr(buf, "\nUid:")) == NULL || sscanf(p + 5, "%lu %lu", &r, &e) != 2)
		return -1;
	*ruid_r = (uid_t)r;
	*euid_r = (uid_t)e;
	return 0;
}

static int
pidfile_uid_ok(uid_t uid, const struct passwd *pw)
{
	return uid == 0 || uid == getuid() || (pw != NULL && uid == pw->pw_uid);
}

pid_t
pidfile_running(const char *path)
{
	pid_t pid = pidfile_holder(path);

	return pid > 0 && pidfile_is_tandem(pid) ? pid : 0;
}

void
pidfile_path(const char *dir, char *buf, size_t len)
{
	snprintf(buf, len, "%s/tandem.pid", dir);
}

int
pidfile_signal(const char *dir, int sig, const char *user, const char **error_r)
{
	static char err[256];
	struct passwd *pw = user ? getpwnam(user) : NULL;
	char path[4096];
	uid_t ruid, euid;
	pid_t pid;
	int pfd, rc;

	pidfile_path(dir, path, sizeof(path));
	if ((pid = pidfile_holder(path)) == 0)
		return 0;
	/* Held from here on, the pidfd names this process even if the pid is
	 * reused before the signal goes out. */
	pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd < 0 && errno == ESRCH)
		return 0;
	if (!pidfile_is_tandem(pid) || pidfile_uids(pid, &ruid, &euid) != 0 ||
	    !pidfile_uid_ok(ruid, pw) || !pidfile_uid_ok(euid, pw) || pidfile_holder(path) != pid) {
		snprintf(err, sizeof(err), "%s: pid %d is not a tandem server of this data_dir; "
			 "nothing signalled", path, (int)pid);
		*error_r = err;
		if (pfd >= 0)
			close(pfd);
		return -1;
	}
	rc = pfd >= 0 ? (int)syscall(SYS_pidfd_send_signal, pfd, sig, NULL, 0) : kill(pid, sig);
	if (pfd >= 0)
		close(pfd);
	if (rc != 0 && errno == ESRCH)
		return 0;
	if (rc != 0) {
		snprintf(err, sizeof(err), "signalling pid %d: %s", (int)pid, strerror(errno));
		*error_r = err;
		return -1;
	}
	return 1;
}
