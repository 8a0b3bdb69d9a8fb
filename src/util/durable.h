/*
 * durable: the one place that makes files survive a crash. Write to a temp
 * file in the same directory, fsync it, rename it into place, fsync the
 * directory (the qmail/Postfix discipline). Nobody else calls rename(2) for
 * durability. Public: durable_fsync_dir, durable_rename, durable_write_file,
 * durable_mkdirs, durable_unlink.
 */
#ifndef TANDEM_DURABLE_H
#define TANDEM_DURABLE_H
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

#endif
