/*
 * maildir: crash-safe Maildir delivery (see maildir.h). Public:
 * maildir_path, maildir_create, maildir_copy_lf, maildir_deliver,
 * maildir_clean_tmp, maildir_clean_all.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/maildir.h"
#include "util/durable.h"

static size_t
maildir_safe(const char *in, size_t n, char *out, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 4 < len; i++) {
		unsigned char c = in[i];
		if (c == '/' || c < 0x20 || c == 0x7f || c == '%' || (i == 0 && c == '.'))
			o += snprintf(out + o, len - o, "%%%02X", c);
		else
			out[o++] = c;
	}
	out[o] = '\0';
	return o;
}

void
maildir_path(const char *data_dir, const char *address, char *buf, size_t len)
{
	const char *at = strrchr(address, '@');
	char local[300], domain[300];

	if (at == NULL)
		at = address + strlen(address);
	maildir_safe(address, at - address, local, sizeof(local));
	maildir_safe(*at ? at + 1 : "", *at ? strlen(at + 1) : 0, domain, sizeof(domain));
	snprintf(buf, len, "%s/mail/%s/%s", data_dir, domain[0] ? domain : "%00",
		 local[0] ? local : "%00");
}

int
maildir_create(const char *dir)
{
	static const char *const subs[] = { "tmp", "new", "cur" };
	char p[4200];

	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, subs[i]);
		if (durable_mkdirs(p, 0700) != 0)
			return -1;
	}
	return 0;
}

/* Copy with CRLF -> LF. A CR at a buffer's end waits for the next read. */
int
maildir_copy_lf(int out, int in, off_t off, long long len)
{
	char ib[65536], ob[65536];
	int pending_cr = 0;

	while (len > 0) {
		ssize_t n = pread(in, ib, len < (long long)sizeof(ib) ? (size_t)len : sizeof(ib), off);
		size_t o = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;   /* the queue file is shorter than its size */
			return -1;
		}
		off += n;
		len -= n;
		for (ssize_t i = 0; i < n; i++) {
			if (pending_cr) {
				pending_cr = 0;
				if (ib[i] != '\n')
					ob[o++] = '\r';
			}
			if (ib[i] == '\r')
				pending_cr = 1;
			else
				ob[o++] = ib[i];
		}
		if (durable_write_all(out, ob, o) != 0)
			return -1;
	}
	if (pending_cr && durable_write_all(out, "\r", 1) != 0)
		return -1;
	return 0;
}

int
maildir_deliver(const char *dir, const char *name, const char *prefix, int src_fd, off_t off,
		long long len)
{
	char tmp[4200], dst[4200], cur[4200], newdir[4200];
	int fd, saved;

	snprintf(dst, sizeof(dst), "%s/new/%s", dir, name);
	snprintf(cur, sizeof(cur), "%s/cur/%s:2,", dir, name);
	if (access(dst, F_OK) == 0 || access(cur, F_OK) == 0)
		return 1;
	snprintf(tmp, sizeof(tmp), "%s/tmp/%s", dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 && errno == ENOENT && maildir_create(dir) == 0)
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (durable_write_all(fd, prefix, strlen(prefix)) != 0 ||
	    maildir_copy_lf(fd, src_fd, off, len) != 0 || fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	/* link(), not rename(): an existing new/NAME is never overwritten. */
	if (link(tmp, dst) != 0 && errno != EEXIST) {
		/* A crash while creating the maildir can leave tmp/ without new/. */
		if (errno != ENOENT || maildir_create(dir) != 0 ||
		    (link(tmp, dst) != 0 && errno != EEXIST))
			goto fail;
	}
	unlink(tmp);
	snprintf(newdir, sizeof(newdir), "%s/new", dir);
	return durable_fsync_dir(newdir);
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = saved;
	return -1;
}

int
maildir_clean_tmp(const char *dir, long max_age)
{
	char p[4200];
	struct dirent *de;
	struct stat sb;
	time_t old = time(NULL) - max_age;
	int n = 0;
	DIR *d;

	snprintf(p, sizeof(p), "%s/tmp", dir);
	if ((d = opendir(p)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (fstatat(dirfd(d), de->d_name, &sb, 0) == 0 && sb.st_mtime <= old &&
		    unlinkat(dirfd(d), de->d_name, 0) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* Calls fn for each subdirectory of dir (not "." or ".."). */
static int
maildir_each_subdir(const char *dir, int (*fn)(const char *path, long arg), long arg)
{
	char p[4200];
	struct dirent *de;
	int n = 0, r;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if ((r = fn(p, arg)) > 0)
			n += r;
	}
	closedir(d);
	return n;
}

static int
maildir_clean_domain(const char *path, long max_age)
{
	return maildir_each_subdir(path, maildir_clean_tmp, max_age);
}

int
maildir_clean_all(const char *data_dir, long max_age)
{
	char p[4200];

	snprintf(p, sizeof(p), "%s/mail", data_dir);
	return maildir_each_subdir(p, maildir_clean_domain, max_age);
}
