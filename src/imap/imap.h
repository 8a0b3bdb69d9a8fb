/*
 * imap: the IMAP4rev1 server (RFC 3501 with IDLE, NAMESPACE, UIDPLUS, MOVE,
 * UNSELECT, ENABLE, ID, LITERAL+, SASL-IR, CHILDREN, SPECIAL-USE,
 * CREATE-SPECIAL-USE, LIST-EXTENDED, QUOTA) on the connection layer: one
 * imap_session per connection the service table hands it, over the store
 * (store.h) and the shared authentication (auth.h).
 * Public: imap_server_new, imap_server_accept, imap_server_shutdown,
 * imap_server_sessions, imap_server_free.
 */
#ifndef TANDEM_IMAP_H
#define TANDEM_IMAP_H
#include <openssl/ssl.h>

#include "util/conn.h"

struct auth;
struct config;
struct directory;
struct event_base;
struct imap_server;
struct store;
struct worker_pool;

struct imap_deps {
	struct event_base *base;
	const struct config *const *cf;   /* read at each use: a reload swaps it */
	struct worker_pool *pool;
	struct directory *dir;     /* quotas; used on the loop thread only */
	SSL_CTX *const *tls;       /* *tls NULL: no STARTTLS; a reload swaps it */
	struct store *store;
	struct auth *auth;
};

struct imap_server *imap_server_new(const struct imap_deps *d);
/* The service table's accept callback (conn_accept_fn). */
void imap_server_accept(struct conn *c, enum conn_over over, void *arg);
/* Stop taking sessions; idle ones get "* BYE", busy ones finish first. */
void imap_server_shutdown(struct imap_server *s);
unsigned imap_server_sessions(struct imap_server *s);
void imap_server_free(struct imap_server **sp);

#endif
