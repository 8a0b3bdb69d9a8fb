/*
 * server: the service table. One row per network service tandem knows —
 * smtp, submission, submissions, imap, imaps, pop3, pop3s, http — naming its
 * [listen] key, its TLS mode and its session constructor. server_bind binds
 * every configured address of every row through the connection layer, with
 * one set of per-client and per-network limits across all listeners. A key
 * whose service is not built yet is a start-up error, never silently
 * ignored.
 * Public: server_new, server_bind, server_start, server_shutdown, server_sessions,
 * server_reload, server_free, server_check_listen.
 */
#ifndef TANDEM_SERVER_H
#define TANDEM_SERVER_H
#include <openssl/ssl.h>
#include <stdio.h>
#include <sys/socket.h>

struct config;
struct directory;
struct event_base;
struct auth;
struct queue;
struct server;
struct store;
struct worker_pool;

/* What the services are built from (cmd_serve composes it). */
struct server_ctx {
	struct event_base *base;
	const struct config *const *cf;   /* read at each use: a reload swaps it */
	struct queue *queue;
	struct worker_pool *pool;
	struct directory *dir;
	SSL_CTX *const *tls;
	struct store *store;     /* mailboxes (primary): IMAP, POP3 */
	struct auth *auth;       /* password checks: IMAP, POP3 */
	/* SMTP: a message was committed; ETRN for a domain; who may ETRN */
	void (*committed)(void *arg, const char *qid, char *const *rcpt, int nrcpt);
	int (*etrn)(void *arg, const char *domain);
	int (*etrn_allowed)(void *arg, const struct sockaddr *sa);
	void *arg;
};

/* ctx needs base, cf and tls here; the stores may come later, with
 * server_start. */
struct server *server_new(const struct server_ctx *ctx);
/* Bind every configured listener (as root, before the privilege drop).
 * -1 with *error_r on the first failure. Nothing is accepted before
 * server_start and the event loop run. */
int server_bind(struct server *s, const char **error_r);
/* Build the services of the bound listeners from the complete ctx. */
int server_start(struct server *s, const struct server_ctx *ctx, const char **error_r);
/* Stop accepting; idle sessions are told, busy ones finish. */
void server_shutdown(struct server *s);
unsigned server_sessions(struct server *s);
/* After a reload: take the new connection limits. */
void server_reload(struct server *s);
void server_free(struct server **sp);
/* For check-config: every configured [listen] key names a service that is
 * built. Writes one line per problem to errs; returns their count. */
int server_check_listen(const struct config *cf, FILE *errs);

#endif
