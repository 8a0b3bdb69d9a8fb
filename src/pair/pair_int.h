/*
 * pair_int: what the files of the pair module share (private to src/pair/).
 */
#ifndef TANDEM_PAIR_INT_H
#define TANDEM_PAIR_INT_H
#include <openssl/ssl.h>
#include <time.h>

#include "conf/config.h"
#include "pair/pair.h"

struct event;
struct resolver;
struct pair_etrn;

struct pair {
	struct event_base *base;
	const struct config *cf;
	struct resolver *res;                  /* NULL without a resolver to ask */
	SSL_CTX *tls;                          /* client context for ETRN */
	/* pair_acl.c: who may ask us for ETRN */
	struct event *acl_ev;
	struct config_netlist known;           /* the last complete lookup */
	struct config_netlist next;            /* the one in progress */
	int pending;                           /* queries in flight */
	time_t last_start;
	/* pair_notify.c: backups being told we are back, for these domains */
	struct pair_etrn *etrn;
	char **domains;
	int ndomains;
};

void pair_acl_start(struct pair *p);
void pair_acl_stop(struct pair *p);
void pair_notify_free_all(struct pair *p);

#endif
