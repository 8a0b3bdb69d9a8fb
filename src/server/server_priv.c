/*
 * server_priv: the privilege drop and the ownership of data_dir (see
 * server_priv.h). Every path under data_dir is reached from an fd of its
 * parent with O_NOFOLLOW, so a link the service user plants is never
 * followed by root, and a check cannot be raced by swapping a path between
 * it and the fchown: fchown acts on the inode the fd holds.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/server_priv.h"
#include "util/durable.h"
#include "util/log.h"

/* The state directories of queue/, kept in step with queue_open, which
 * creates all but corrupt/ (only fixed here when it is there). */
static const struct {
	const char *name;
	int create;
} priv_queue_dirs[] = {
	{ "tmp", 1 }, { "active", 1 }, { "deferred", 1 }, { "hold", 1 }, { "meta", 1 },
	{ "corrupt", 0 },
};
/* The files root opens in data_dir before the drop. */
static const char *const priv_top_files[] = { "tandem.pid", "directory.db", "directory.db-wal",
					      "directory.db-shm", "directory.db-journal" };
static const char *const priv_tls_files[] = { "cert.pem", "key.pem" };

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

struct priv_user {
	char name[256];
	uid_t uid;
	gid_t gid;
};

static char priv_errbuf[1024];

static int __attribute__((format(printf, 2, 3)))
priv_fail(const char **error_r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(priv_errbuf, sizeof(priv_errbuf), fmt, ap);
	va_end(ap);
	*error_r = priv_errbuf;
	return -1;
}

/* 1 with *u filled when root has to hand over to [server] user, 0 when
 * there is nothing to do, -1 when the user does not exist. */
static int
priv_user(const struct config *cf, struct priv_user *u, const char **error_r)
{
	struct passwd *pw;

	if (cf->user == NULL)
		return 0;
	if ((pw = getpwnam(cf->user)) == NULL)
		return priv_fail(error_r, "[server] user: no such user %s", cf->user);
	if (geteuid() != 0)
		return 0;   /* already someone: nothing to give away */
	snprintf(u->name, sizeof(u->name), "%s", pw->pw_name);
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	return 1;
}

/* Why name of dirfd could not be opened as a directory. */
static int
priv_dir_fail(int dirfd, const char *shown, const char *name, const char **error_r)
{
	struct stat sb;
	int saved = errno;

	if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(sb.st_mode))
		return priv_fail(error_r, "%s/%s is a symbolic link; refusing to follow it as root "
			"(check who changed data_dir)", shown, name);
	if (saved == ENOTDIR)
		return priv_fail(error_r, "%s/%s is not a directory", shown, name);
	return priv_fail(error_r, "%s/%s: %s", shown, name, strerror(saved));
}

static int
priv_fchown(int fd, const struct stat *sb, const struct priv_user *u)
{
	if (sb->st_uid == u->uid && sb->st_gid == u->gid)
		return 0;
	return fchown(fd, u->uid, u->gid);
}

/* Open (creating when absent and mode > 0) the directory name of dirfd
 * and give it to u. */
static int
priv_dir(int dirfd, const char *shown, const char *name, int mode, const struct priv_user *u,
	 const char **error_r)
{
	struct stat sb;
	int fd = durable_openat_dir(dirfd, name, mode);

	if (fd < 0) {
		if (errno == ENOENT)
			return -2;   /* absent, and not ours to create */
		return priv_dir_fail(dirfd, shown, name, error_r);
	}
	if (fstat(fd, &sb) != 0 || priv_fchown(fd, &sb, u) != 0) {
		int saved = errno;
		close(fd);
		return priv_fail(error_r, "%s/%s: chown: %s", shown, name, strerror(saved));
	}
	return fd;
}

/* A file root opens later must be absent or a regular file with one name:
 * not a link (root would follow it), not a hard link to a file elsewhere. */
static int
priv_check_file(int dirfd, const char *shown, const char *name, const char **error_r)
{
	struct stat sb;

	if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? 0 : priv_fail(error_r, "%s/%s: %s", shown, name, strerror(errno));
	if (S_ISLNK(sb.st_mode))
		return priv_fail(error_r, "%s/%s is a symbolic link; refusing to follow it as root "
			"(check who changed data_dir)", shown, name);
	if (!S_ISREG(sb.st_mode) || sb.st_nlink != 1)
		return priv_fail(error_r, "%s/%s is not a regular file with one link; refusing to "
			"open it as root", shown, name);
	return 0;
}

/* Give u a file root created (only root's files: nothing else needs it,
 * and one with a second name could be a system file linked in). The fd is
 * opened without following a link, so the check and the fchown are on the
 * same inode. */
static void
priv_fix_file(int dirfd, const char *shown, const char *name, const struct priv_user *u)
{
	struct stat sb;
	int fd;

	if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode) ||
	    sb.st_uid != 0)
		return;
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_nlink == 1 && sb.st_uid == 0 &&
	    fchown(fd, u->uid, u->gid) != 0)
		log_warn(NULL, "event=chown_failed dir=%s file=%s error=%s", log_q(shown), log_q(name),
			 log_q(strerror(errno)));
	close(fd);
}

/* Root-owned files in one queue state (written by root before this
 * version, or by hand): the server could not read them. One fstatat per
 * queue file, the same order as the scheduler's scan at start. */
static void
priv_fix_queue_files(int dirfd, const char *shown, const struct priv_user *u)
{
	int fd = dup(dirfd);
	DIR *dp;
	struct dirent *de;

	if (fd < 0 || (dp = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(dp)) != NULL)
		if (de->d_name[0] != '.' && (de->d_type == DT_REG || de->d_type == DT_UNKNOWN))
			priv_fix_file(dirfd, shown, de->d_name, u);
	closedir(dp);
}

/* dkim/ and each domain's directory in it, with their files (keys root
 * made before [server] user was set): the server reads them. */
static int
priv_dkim(int dfd, const char *data_dir, const struct priv_user *u, int fix_files,
	  const char **error_r)
{
	char shown[4200];
	int kfd = priv_dir(dfd, data_dir, "dkim", 0700, u, error_r), fd;
	struct dirent *de;
	DIR *dp;

	if (kfd == -1)
		return -1;
	if (kfd < 0 || (fd = dup(kfd)) < 0 || (dp = fdopendir(fd)) == NULL) {
		if (kfd >= 0)
			close(kfd);
		return 0;
	}
	snprintf(shown, sizeof(shown), "%s/dkim", data_dir);
	while ((de = readdir(dp)) != NULL) {
		int sfd;

		if (de->d_name[0] == '.' || (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN))
			continue;
		if ((sfd = priv_dir(kfd, shown, de->d_name, 0, u, error_r)) == -1) {
			closedir(dp);
			close(kfd);
			return -1;
		}
		if (sfd >= 0 && fix_files)
			priv_fix_queue_files(sfd, shown, u);
		if (sfd >= 0)
			close(sfd);
	}
	closedir(dp);
	close(kfd);
	return 0;
}

/* The work of prepare, and with fix_files that of the drop: walk the fixed
 * list from data_dir's fd. */
static int
priv_data_dir(const struct config *cf, const struct priv_user *u, int fix_files, int fix_queue,
	      const char **error_r)
{
	char shown[4200];
	struct stat sb;
	int dfd, qfd, tfd, fd, rc = -1;

	/* data_dir itself is root's choice, from root's config: a link there
	 * (say /var/lib/tandem on another disk) is the admin's, and followed. */
	if (durable_mkdirs(cf->data_dir, 0750) != 0)
		return priv_fail(error_r, "data_dir %s: %s", cf->data_dir, strerror(errno));
	if ((dfd = open(cf->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return priv_fail(error_r, "data_dir %s: %s", cf->data_dir, strerror(errno));
	if (fstat(dfd, &sb) != 0 || priv_fchown(dfd, &sb, u) != 0) {
		priv_fail(error_r, "data_dir %s: chown: %s", cf->data_dir, strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < N_ELEMS(priv_top_files); i++)
		if (priv_check_file(dfd, cf->data_dir, priv_top_files[i], error_r) != 0)
			goto out;
	if ((qfd = priv_dir(dfd, cf->data_dir, "queue", 0750, u, error_r)) < 0)
		goto out;
	snprintf(shown, sizeof(shown), "%s/queue", cf->data_dir);
	for (size_t i = 0; i < N_ELEMS(priv_queue_dirs); i++) {
		fd = priv_dir(qfd, shown, priv_queue_dirs[i].name, priv_queue_dirs[i].create ? 0750 : 0,
			      u, error_r);
		if (fd == -1) {
			close(qfd);
			goto out;
		}
		if (fd >= 0 && fix_queue)
			priv_fix_queue_files(fd, shown, u);
		if (fd >= 0)
			close(fd);
	}
	close(qfd);
	if (cf->tls_cert == NULL) {
		if ((tfd = priv_dir(dfd, cf->data_dir, "tls", 0700, u, error_r)) < 0)
			goto out;
		snprintf(shown, sizeof(shown), "%s/tls", cf->data_dir);
		for (size_t i = 0; i < N_ELEMS(priv_tls_files); i++) {
			if (priv_check_file(tfd, shown, priv_tls_files[i], error_r) != 0) {
				close(tfd);
				goto out;
			}
			if (fix_files)
				priv_fix_file(tfd, shown, priv_tls_files[i], u);
		}
		close(tfd);
	}
	if (priv_dkim(dfd, cf->data_dir, u, fix_files, error_r) != 0)
		goto out;
	/* tandem.pid is given away through the fd the server holds: opening
	 * and closing it here would drop the server's POSIX lock. */
	for (size_t i = 1; fix_files && i < N_ELEMS(priv_top_files); i++)
		priv_fix_file(dfd, cf->data_dir, priv_top_files[i], u);
	rc = 0;
out:
	close(dfd);
	return rc;
}

static int
priv_setuid(const struct priv_user *u, const char **error_r)
{
	if (initgroups(u->name, u->gid) != 0 || setgid(u->gid) != 0 || setuid(u->uid) != 0)
		return priv_fail(error_r, "cannot become user %s: %s", u->name, strerror(errno));
	/* Belt and braces: a drop that could be undone is no drop. */
	if (u->uid != 0 && setuid(0) == 0)
		return priv_fail(error_r, "cannot become user %s: root could be regained", u->name);
	return 0;
}

int
server_priv_prepare(const struct config *cf, const char **error_r)
{
	struct priv_user u;
	int rc = priv_user(cf, &u, error_r);

	return rc <= 0 ? rc : priv_data_dir(cf, &u, 0, 0, error_r);
}

int
server_priv_drop(const struct config *cf, int pidfd, const char **error_r)
{
	struct priv_user u;
	struct stat sb;
	int rc;

	if (cf->user == NULL) {
		if (geteuid() == 0)
			log_warn(NULL, "event=running_as_root hint=\"set [server] user\"");
		return 0;
	}
	if ((rc = priv_user(cf, &u, error_r)) <= 0)
		return rc;
	if (priv_data_dir(cf, &u, 1, 1, error_r) != 0)
		return -1;
	if (pidfd >= 0 && (fstat(pidfd, &sb) != 0 || priv_fchown(pidfd, &sb, &u) != 0))
		return priv_fail(error_r, "%s/tandem.pid: chown: %s", cf->data_dir, strerror(errno));
	return priv_setuid(&u, error_r);
}

int
server_priv_become(const struct config *cf, const char **error_r)
{
	struct priv_user u;
	int rc;

	if ((rc = priv_user(cf, &u, error_r)) <= 0)
		return rc;
	if (priv_data_dir(cf, &u, 1, 0, error_r) != 0)
		return -1;
	return priv_setuid(&u, error_r);
}

int
server_priv_check_writer(const struct config *cf, const char **error_r)
{
	char path[4200];
	struct passwd *pw;
	struct stat sb;
	uid_t server;

	if (cf->user != NULL) {
		if ((pw = getpwnam(cf->user)) == NULL)
			return priv_fail(error_r, "[server] user: no such user %s", cf->user);
		server = pw->pw_uid;
	} else {
		/* No [server] user: the server runs as whoever owns the queue. */
		snprintf(path, sizeof(path), "%s/queue", cf->data_dir);
		if (stat(path, &sb) != 0)
			return 0;   /* a first start: serve will create it as us */
		server = sb.st_uid;
	}
	if (server == 0 || geteuid() == server)
		return 0;
	if (cf->user != NULL)
		return priv_fail(error_r, "the server runs as %s, and a file written by uid %d would "
			"not be its to read; run this as root or as %s", cf->user, (int)geteuid(), cf->user);
	return priv_fail(error_r, "the queue belongs to uid %d, and a file written by uid %d would "
		"not be its to read; run this as uid %d, or set [server] user", (int)server,
		(int)geteuid(), (int)server);
}
