/*
 * pop3: the POP3 server (RFC 1939, CAPA and RESP-CODES of RFC 2449, STLS
 * of RFC 2595, AUTH of RFC 5034) on the connection layer: one pop3_session
 * per connection that the service table hands it ([listen] pop3 with STLS,
 * pop3s with implicit TLS). The maildrop is the user's INBOX in the store;
 * one session per user holds it at a time (RFC 1939 §8), and what the
 * session deleted is removed at QUIT only.
 * Public: pop3_server_new, pop3_server_accept, pop3_server_shutdown,
 * pop3_server_sessions, pop3_server_free.
 */
#ifndef TANDEM_POP3_H
#define TANDEM_POP3_H
#include <openssl/ssl.h>

#include "util/conn.h"

struct auth;
struct config;
struct event_base;
struct pop3_server;
struct store;
struct worker_pool;

struct pop3_deps {
	struct event_base *base;
	const struct config *const *cf;   /* read at each use: a reload swaps it */
	struct worker_pool *pool;
	SSL_CTX *const *tls;              /* *tls NULL: no STLS; a reload swaps it */
	struct store *store;
	struct auth *auth;
};

struct pop3_server *pop3_server_new(const struct pop3_deps *deps);
/* The service table's accept callback (conn_accept_fn) for this server. */
void pop3_server_accept(struct conn *c, enum conn_over over, void *arg);
/* Stop taking new sessions; idle ones are told and closed, busy ones
 * (a login or a QUIT's deletions in flight) finish first. */
void pop3_server_shutdown(struct pop3_server *s);
unsigned pop3_server_sessions(struct pop3_server *s);
/* After the worker pool has drained. */
void pop3_server_free(struct pop3_server **sp);

#endif
