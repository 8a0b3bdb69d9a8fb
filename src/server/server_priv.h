/*
 * server_priv: root only as long as it must be. `serve` binds its ports as
 * root and then becomes [server] user; a CLI command run by root becomes
 * that user before it writes into data_dir, so whatever it creates is the
 * server's to read.
 *
 * data_dir belongs to the service user: whoever holds that account can put
 * links there. Root therefore works in it only through fds opened with
 * O_NOFOLLOW (the directories tandem creates, the files root opens before
 * the drop), and refuses to start when one of them is a link. Ownership is
 * fixed on that fixed list with fchown, never by walking the mailboxes.
 * Public: server_priv_prepare, server_priv_drop, server_priv_become,
 * server_priv_check_writer.
 */
#ifndef TANDEM_SERVER_PRIV_H
#define TANDEM_SERVER_PRIV_H
#include "conf/config.h"

/* Before root works in data_dir: creates data_dir, queue/ with its state
 * directories and (without [tls] cert) tls/, owned by [server] user, and
 * checks that none of them, nor a file root opens there (tandem.pid,
 * directory.db and its -wal/-shm/-journal, tls/cert.pem, tls/key.pem), is a
 * symbolic link or anything but what it should be. 0 when done or nothing
 * to do (not root, or no [server] user); -1 with error_r. */
int server_priv_prepare(const struct config *cf, const char **error_r);
/* serve, after binding and opening everything root needs: gives [server]
 * user what root created (the list above, root-owned files in the queue
 * states, the pid file held open as pidfd) and becomes that user for good.
 * Warns when running as root without [server] user. */
int server_priv_drop(const struct config *cf, int pidfd, const char **error_r);
/* A CLI command run by root that writes data_dir: server_priv_prepare,
 * then becomes [server] user for good. No-op when not root or no user. */
int server_priv_become(const struct config *cf, const char **error_r);
/* 0 when a file this process creates in data_dir will be readable by the
 * server: we run as the server's user (or the server runs as root). */
int server_priv_check_writer(const struct config *cf, const char **error_r);

#endif
