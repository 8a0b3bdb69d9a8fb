/*
 * outbound_int: what the files of outbound delivery share (private to
 * src/outbound/outbound*.c).
 */
#ifndef TANDEM_OUTBOUND_INT_H
#define TANDEM_OUTBOUND_INT_H
#include <openssl/ssl.h>

#include "outbound/outbound.h"
#include "dns/resolver.h"
#include "smtp/smtp_client.h"

struct ob_msg;
struct ob_down;
struct ob_dest;
struct ob_conn;
struct mx_list;
struct config;

struct ob_host {
	struct resolver_mx mx;            /* pref, host */
	char **addrs;
	size_t naddrs;
	int temp_fail;
};

struct ob_dom {
	struct ob_msg *m;
	char *domain;
	int *idx;                         /* recipients of this domain */
	const char **rcpt;
	int n;
	int port;
	struct ob_host *hosts;
	size_t nhosts, pending;
	struct mx_list *targets;
	size_t next;                      /* next target to try */
	size_t plain_for;                 /* the target to retry without TLS */
	char last_error[256];
	/* The last host that failed it, and how (for the structured result):
	 * last_code 0 when no reply said so (refused, timeout, ours). */
	const struct mx_target *last_t;
	char last_dsn[16];
	int last_code;
	char last_reply[512];
	char down_reason[200];            /* why the last connect failed */
	struct ob_conn *conn;             /* the connection it holds */
	struct ob_dest *waiting;          /* queued for a connection to this */
	struct ob_dom *wnext;             /* in waiting's queue */
	enum smtp_client_tls want_tls;    /* for the connection it waits for */
	const char *want_sni;
	int reused;                       /* conn had carried a message before */
	int via_relayhost;                /* routed to [queue] relayhost */
	int fresh_retry;                  /* a reused conn failed: retried once */
	struct resolver_query *mxq;       /* the MX lookup in flight */
	int reached;                      /* some host answered: not down */
	struct ob_addr_q **addrq;         /* address lookups in flight, per host */
	int finished;
};

struct ob_msg {
	struct outbound *o;
	const struct queue_env *env;
	int fd;
	off_t body_off;
	const char *prefix;              /* the DKIM-Signature, or NULL (not ours) */
	struct rcpt_result *res;
	outbound_done_fn *done;
	void *arg;
	struct ob_dom *doms;
	int ndoms, pending;
	struct event *finish_ev;
	struct ob_msg *next, **prevp;     /* in outbound->active */
};

struct outbound {
	struct event_base *base;
	const struct config *cf;
	char *source;                     /* [queue] source_address, or the default, or NULL */
	char *relay_user, *relay_password;  /* [queue] relayhost_auth_file */
	struct resolver *res;
	SSL_CTX *tls;
	const char **self_addrs;
	size_t nself;
	struct ob_msg *active;            /* messages in flight, for outbound_cancel */
	struct ob_down *down;             /* destinations down, being probed */
	struct ob_dest *dests;            /* connections by address and port */
	void (*up_cb)(void *arg);
	void *up_arg;
	int stopping;                     /* outbound_cancel: no connection kept */
};

/* outbound_conn.c: connections per destination address, at most
 * [queue] dest_concurrency of them, each carrying one message after the
 * other. ob_conn_get gives d a connection to (addr, port): an idle one at
 * once, a new one (ob_ready runs when it is up), or the next one a
 * message leaves (d waits). ob_send then sends on d->client.
 * ob_conn_release hands the connection on after a message (usable or
 * not); ob_conn_abandon drops it (or d's place in the queue). */
void ob_conn_get(struct ob_dom *d, const char *addr, int port, enum smtp_client_tls tls,
		 const char *servername);
void ob_conn_release(struct ob_dom *d);
void ob_conn_abandon(struct ob_dom *d);
void ob_conn_free_all(struct outbound *o);
struct smtp_client *ob_conn_client(struct ob_conn *cn);
/* outbound.c, for the other files */
void ob_ready(struct smtp_client *c, const struct smtp_client_result *r, void *arg);
void ob_send(struct ob_dom *d);
/* d's turn for a new connection came, but its domain was found down
 * meanwhile (by another message): d waits instead (1), or connects (0). */
int ob_dom_went_down(struct ob_dom *d);
int ob_numeric(const char *host);                   /* a numeric IPv4/IPv6 address? */
void ob_client_opts(const struct outbound *o, const char *addr, int port,
		    struct smtp_client_opts *opts);
enum smtp_client_tls ob_tls_mode(const struct config *cf);

/* outbound_probe.c */
/* Mark domain down; the probe asks each of targets in turn. reason: why
 * they did not answer (refused, timeout), for `queue list`. */
void ob_down_mark(struct outbound *o, const char *domain, const struct mx_list *targets, int port,
		  const char *reason);
int ob_down_check(struct outbound *o, const char *domain);
void ob_down_forget(struct outbound *o, const char *domain);
void ob_down_free_all(struct outbound *o);

#endif
