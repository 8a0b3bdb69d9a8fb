/*
 * pidfile: data_dir/tandem.pid, locked with flock(2) while the server runs,
 * so a second `serve` on the same data_dir refuses to start and the CLI can
 * find the running server to nudge it (SIGUSR1 rescan, SIGUSR2 flush).
 * Public: pidfile_path, pidfile_create, pidfile_running, pidfile_signal.
 */
#ifndef TANDEM_PIDFILE_H
#define TANDEM_PIDFILE_H
#include <stddef.h>
#include <sys/types.h>

/* DIR/tandem.pid into buf. */
void pidfile_path(const char *dir, char *buf, size_t len);
/* Send sig to the server running on DIR, if one does. */
void pidfile_signal(const char *dir, int sig);
/* Returns the locked fd (keep it open), or -1 (errno EWOULDBLOCK: another
 * server holds it). */
int pidfile_create(const char *path);
/* The pid of the server holding path's lock, or 0 when none runs. */
pid_t pidfile_running(const char *path);

#endif
