/*
 * smtpd_server: the SMTP listener (RFC 5321) on the libevent loop. Accepts
 * connections up to [smtp] max_connections and runs one smtpd_session per
 * connection. A message is handed on only once the queue has committed it:
 * the committed() callback then gets its queue id.
 * Public: smtpd_server_new, smtpd_server_listen, smtpd_server_free,
 * smtpd_server_sessions, smtpd_server_shutdown.
 */
#ifndef TANDEM_SMTPD_SERVER_H
#define TANDEM_SMTPD_SERVER_H
#include <openssl/ssl.h>
#include <stddef.h>

struct config;
struct directory;
struct event_base;
struct queue;
struct worker_pool;
struct smtpd_server;

struct smtpd_deps {
	struct event_base *base;
	const struct config *cf;
	struct queue *queue;
	struct worker_pool *pool;
	struct directory *dir;     /* used on the loop thread only */
	SSL_CTX *tls;              /* NULL: no STARTTLS */
	void (*committed)(void *arg, const char *qid, char *const *rcpt, int nrcpt);
	/* ETRN (RFC 1985) for one of the [relay] domains: attempt what waits
	 * for it; returns how many messages, or -1 if it cannot now */
	int (*etrn)(void *arg, const char *domain);
	void *arg;
};

struct smtpd_server *smtpd_server_new(const struct smtpd_deps *deps);
/* Bind addr ("127.0.0.1:25", "[::1]:25"). 0 or -1 with err. */
int smtpd_server_listen(struct smtpd_server *s, const char *addr, char *err, size_t errlen);
/* Stop accepting; sessions finish their current command. */
void smtpd_server_shutdown(struct smtpd_server *s);
unsigned smtpd_server_sessions(struct smtpd_server *s);
void smtpd_server_free(struct smtpd_server **sp);

#endif
