/*
 * log: one line per event, "tandem[pid]: <id>: key=value ...", written to
 * stderr (and so to journald under systemd), so one message's whole story
 * greps by its queue id. Public: log_init, log_msg, log_warn, log_err,
 * log_set_debug, log_debug, log_panic, log_q, log_addr. Every value that comes from the
 * network goes through log_q or log_addr where the line is built.
 */
#ifndef TANDEM_LOG_H
#define TANDEM_LOG_H

/* Log to logfile (appended, created 0640) instead of stderr; NULL or "":
 * stderr. Called again, it reopens (logrotate). -1 with errno when the file
 * cannot be opened; the log then stays where it was. */
int log_init(const char *logfile);
void log_set_debug(int on);
/* id: a queue id, a session id ("s1a2b"), or NULL for "-" */
void log_msg(const char *id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_warn(const char *id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_err(const char *id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_debug(const char *id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A broken invariant: log it ("panic: ") and abort. */
void log_panic(const char *id, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
/* Quote a value for key="value" output: CR, LF, quotes and controls escaped.
 * Returns a pointer into a thread-local ring of buffers (8 slots). */
const char *log_q(const char *s);
/* A mail address for "to=%s": <addr>, or the whole "<...>" quoted as log_q
 * does when the address holds anything that could forge a field. Shares
 * log_q's ring. */
const char *log_addr(const char *a);

#endif
