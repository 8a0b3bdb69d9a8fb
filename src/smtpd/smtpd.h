/*
 * smtpd: the SMTP server (RFC 5321) on the connection layer: one
 * smtpd_session per connection that the service table hands it. A message
 * is handed on only once the queue has committed it: the committed()
 * callback then gets its queue id.
 * Public: smtpd_server_new, smtpd_server_accept, smtpd_server_free,
 * smtpd_server_sessions, smtpd_server_shutdown.
 */
#ifndef TANDEM_SMTPD_H
#define TANDEM_SMTPD_H
#include <openssl/ssl.h>
#include <stddef.h>

#include "util/conn.h"

struct auth;
struct config;
struct directory;
struct store;
struct event_base;
struct queue;
struct worker_pool;
struct smtpd_policy;
struct smtpd_server;

struct smtpd_deps {
	struct event_base *base;
	const struct config *const *cf;   /* read at each use: a reload swaps it */
	struct queue *queue;
	struct worker_pool *pool;
	struct directory *dir;     /* used on the loop thread only */
	struct store *store;       /* the mailboxes (quota at RCPT), or NULL */
	SSL_CTX *const *tls;       /* *tls NULL: no STARTTLS; a reload swaps it */
	void (*committed)(void *arg, const char *qid, char *const *rcpt, int nrcpt);
	/* ETRN (RFC 1985) for one of the [relay] domains: attempt what waits
	 * for it; returns how many messages, or -1 if it cannot now */
	int (*etrn)(void *arg, const char *domain);
	/* may this client ask for ETRN? ([relay] etrn_clients) */
	int (*etrn_allowed)(void *arg, const struct sockaddr *sa);
	void *arg;
	const struct smtpd_policy *policy;   /* NULL: the MX policy */
	struct auth *auth;         /* password checks (submission), or NULL */
};

struct smtpd_server *smtpd_server_new(const struct smtpd_deps *deps);
/* The service table's accept callback (conn_accept_fn) for this server. */
void smtpd_server_accept(struct conn *c, enum conn_over over, void *arg);
/* Stop taking new sessions; idle ones get 421, busy ones finish first. */
void smtpd_server_shutdown(struct smtpd_server *s);
unsigned smtpd_server_sessions(struct smtpd_server *s);
void smtpd_server_free(struct smtpd_server **sp);

#endif
