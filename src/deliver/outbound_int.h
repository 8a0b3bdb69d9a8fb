/*
 * outbound_int: what the files of outbound delivery share (private to
 * src/deliver/outbound*.c).
 */
#ifndef TANDEM_OUTBOUND_INT_H
#define TANDEM_OUTBOUND_INT_H
#include <openssl/ssl.h>

#include "deliver/outbound.h"
#include "smtp/smtp_client.h"

struct ob_msg;
struct ob_down;

struct outbound {
	struct event_base *base;
	const struct config *cf;
	struct resolver *res;
	SSL_CTX *tls;
	const char **self_addrs;
	size_t nself;
	struct ob_msg *active;            /* messages in flight, for outbound_cancel */
	struct ob_down *down;             /* destinations down, being probed */
	void (*up_cb)(void *arg);
	void *up_arg;
};

/* outbound_probe.c */
void ob_down_mark(struct outbound *o, const char *domain, const char *host, const char *addr, int port);
int ob_down_check(struct outbound *o, const char *domain);
void ob_down_free_all(struct outbound *o);

#endif
