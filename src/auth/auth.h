/*
 * auth: password authentication shared by POP3 and IMAP (and next by
 * submission and the webmail). The login is the user's full address. A
 * check runs on the worker pool (a yescrypt hash costs tens of
 * milliseconds) and completes on the loop; a successful check is
 * remembered for a few minutes in memory (keyed by a keyed hash of user,
 * password and the stored hash, so a password change invalidates it), so a
 * client that reconnects every minute does not pay a hash each time.
 *
 * Brute force: each failure counts against the client address (IPv4, IPv6
 * /64) and against the login; the answer to a failed attempt is delayed
 * more and more (0.5 s, doubling, at most 15 s), and after
 * AUTH_REFUSE_AFTER failures within AUTH_WINDOW seconds every attempt from
 * that address or for that login is refused without a check for
 * AUTH_REFUSE_SECS (AUTH_THROTTLED). A success clears the address's count.
 * Every failure is one log line that etc/fail2ban/ matches:
 *   event=auth_failed service=imap user=<escaped> client=[IP] session=ID reason=...
 *
 * Plaintext rule ([auth] plaintext): a password may cross only over TLS,
 * or from loopback (default), or always, or never without TLS.
 * Public: auth_new, auth_free, auth_plaintext_ok, auth_check.
 */
#ifndef TANDEM_AUTH_H
#define TANDEM_AUTH_H
#include <sys/socket.h>

struct auth;
struct config;
struct directory;
struct event_base;
struct worker_pool;

#define AUTH_WINDOW 600
#define AUTH_REFUSE_AFTER 10
#define AUTH_REFUSE_SECS 900
#define AUTH_CACHE_SECS 300

enum auth_result {
	AUTH_OK,
	AUTH_FAILED,       /* wrong user or password (the client is not told which) */
	AUTH_THROTTLED,    /* too many failures: refused for a while, nothing checked */
	AUTH_TEMPFAIL      /* the directory could not answer: try again later */
};

struct auth_deps {
	struct event_base *base;
	struct worker_pool *pool;
	struct directory *dir;
	const struct config *const *cf;   /* read at each use: a reload swaps it */
};

struct auth *auth_new(const struct auth_deps *d);
/* Pending checks are dropped: their done() is not called. */
void auth_free(struct auth **ap);

/* May a password be accepted from this client on this connection now? */
int auth_plaintext_ok(const struct auth *a, int is_tls, const struct sockaddr *client);

/* user: canonical address (the directory's spelling) on AUTH_OK, else the
 * login as given. Runs on the loop. */
typedef void auth_done_fn(void *arg, enum auth_result res, const char *user);

/* Checks user/password for service ("imap", "pop3") from client (the
 * session id goes into the log line). done() runs later on the loop, never
 * from inside this call; the session keeps its connection paused
 * meanwhile. user and password are copied (the copy of the password is
 * wiped after use). */
void auth_check(struct auth *a, const char *service, const struct sockaddr *client,
		const char *session, const char *user, const char *password, auth_done_fn *done,
		void *arg);

/* For a mechanism that checks the proof itself (SCRAM): is this client or
 * login refused for now (check before the exchange)? */
int auth_refused(struct auth *a, const struct sockaddr *client, const char *user);
/* ...and its outcome, answered as auth_check's: the throttle's count, the
 * log line, done() later on the loop (after the delay of a failure; or
 * AUTH_THROTTLED). user: canonical on success; known: the user exists. */
void auth_report(struct auth *a, const char *service, const struct sockaddr *client,
		 const char *session, const char *user, int ok, int known, auth_done_fn *done,
		 void *arg);
/* The key SCRAM's stand-in secret of an unknown user is made from
 * (SCRAM_FAKE_KEY_LEN bytes): the same for a login during the process. */
void auth_fake_key(const struct auth *a, unsigned char *out);

#endif
