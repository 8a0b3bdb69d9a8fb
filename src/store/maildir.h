/*
 * maildir: the mailbox store on disk. Each user has a Maildir under
 * data_dir/mail/<domain>/<local>/ (tmp, new, cur). Delivery follows the
 * Maildir protocol with fsyncs: write tmp/NAME, fsync, link into new/NAME,
 * fsync new/, unlink tmp/NAME. NAME is chosen by the caller; delivering the
 * same NAME twice is a no-op, which makes a retried delivery idempotent.
 * Public: maildir_path, maildir_create, maildir_copy_lf, maildir_deliver, maildir_clean_tmp,
 * maildir_clean_all.
 */
#ifndef TANDEM_MAILDIR_H
#define TANDEM_MAILDIR_H
#include <stddef.h>
#include <sys/types.h>

/* data_dir/mail/<domain>/<local> with each part made safe for a path
 * ('/', leading dots and controls are %-encoded). */
void maildir_path(const char *data_dir, const char *address, char *buf, size_t len);
/* mkdir -p the Maildir and its tmp/new/cur. */
int maildir_create(const char *dir);
/* Copy len bytes of in from offset off to out, CRLF turned into LF. 0 or
 * -1 (errno; EIO when in is shorter). */
int maildir_copy_lf(int out, int in, off_t off, long long len);
/* Copy len bytes from src_fd at offset off (CRLF turned into LF), after the
 * header text prefix (already LF). Returns 0 delivered, 1 already
 * delivered earlier, -1 error (errno set). */
int maildir_deliver(const char *dir, const char *name, const char *prefix, int src_fd, off_t off,
		    long long len);
/* Remove files in tmp/ older than max_age seconds (the Maildir rule says
 * 36 hours; after a crash tandem's own leftovers are stale at once, since
 * their delivery is retried under the same name). */
int maildir_clean_tmp(const char *dir, long max_age);
/* maildir_clean_tmp on every mailbox under data_dir/mail/. Returns the
 * number of files removed. */
int maildir_clean_all(const char *data_dir, long max_age);

#endif
