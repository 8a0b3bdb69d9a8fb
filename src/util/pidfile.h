/*
 * pidfile: data_dir/tandem.pid, locked while the server runs, so a second
 * `serve` on the same data_dir refuses to start and the CLI can find the
 * running server to nudge it (SIGUSR1 rescan, SIGUSR2 flush).
 *
 * data_dir belongs to the service user, so what is in tandem.pid proves
 * nothing: anyone who owns the directory can write any pid there. The
 * server therefore holds two locks: flock(2) keeps a second server out,
 * and a POSIX write lock lets the CLI ask the kernel (F_GETLK) which
 * process holds it. A pid is believed only when it is that process, and
 * signalled only when that process is a tandem of an expected uid.
 * Public: pidfile_path, pidfile_create, pidfile_running, pidfile_signal.
 */
#ifndef TANDEM_PIDFILE_H
#define TANDEM_PIDFILE_H
#include <stddef.h>
#include <sys/types.h>

/* DIR/tandem.pid into buf. */
void pidfile_path(const char *dir, char *buf, size_t len);
/* Create or reuse path, lock it and write our pid. Returns the locked fd
 * (keep it open), or -1 with errno: EWOULDBLOCK another server holds it,
 * ELOOP path is a symbolic link (never followed), EINVAL it is not a
 * regular file with one link. The server must not open and close path
 * again: closing any fd of the file drops the POSIX lock. */
int pidfile_create(const char *path);
/* The pid of the server holding path's locks, or 0 when none runs (or
 * the file names a process that does not hold them). */
pid_t pidfile_running(const char *path);
/* Send sig to the server running on dir, once verified: it holds the
 * lock, is a tandem, and runs as root, as user (NULL: none configured) or
 * as the caller. Returns 1 sent, 0 no server runs, -1 with error_r when
 * a lock holder fails the checks (nothing is sent). */
int pidfile_signal(const char *dir, int sig, const char *user, const char **error_r);

#endif
