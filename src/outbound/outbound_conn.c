/*
 * outbound_conn: the connections of outbound delivery (see outbound_int.h).
 * A destination is one address and port. It has at most [queue]
 * dest_concurrency connections open or opening; a message that finds them
 * all busy waits in the destination's queue, and the next connection a
 * message leaves goes straight to it. A connection nobody waits for idles
 * for OB_CONN_IDLE_MS, then says QUIT. After OB_CONN_MAX_MSGS messages a
 * connection is closed, so no session lives for ever.
 */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "outbound/outbound_int.h"
#include "conf/config.h"
#include "util/log.h"
#include "util/xalloc.h"

#define OB_CONN_IDLE_MS 2000
#define OB_CONN_MAX_MSGS 100

struct ob_conn {
	struct ob_dest *dest;
	struct smtp_client *c;
	struct event *idle_ev;
	int msgs;                         /* messages it has carried */
	struct ob_conn *next;             /* in dest->idle */
};

struct ob_dest {
	struct outbound *o;
	char *addr;
	int port;
	unsigned nconn;                   /* open or opening */
	struct ob_conn *idle;
	struct ob_dom *whead, *wtail;     /* messages waiting for a connection */
	struct ob_dest *next;
};

static struct ob_dest *
ob_dest_get(struct outbound *o, const char *addr, int port)
{
	struct ob_dest *dt;

	for (dt = o->dests; dt != NULL; dt = dt->next)
		if (dt->port == port && strcmp(dt->addr, addr) == 0)
			return dt;
	dt = xcalloc(1, sizeof(*dt));
	dt->o = o;
	dt->addr = xstrdup(addr);
	dt->port = port;
	dt->next = o->dests;
	o->dests = dt;
	return dt;
}

/* A destination with nothing open and nobody waiting is forgotten. */
static void
ob_dest_gc(struct ob_dest *dt)
{
	struct ob_dest **pp;

	if (dt->nconn > 0 || dt->whead != NULL)
		return;
	for (pp = &dt->o->dests; *pp != dt; pp = &(*pp)->next)
		;
	*pp = dt->next;
	free(dt->addr);
	free(dt);
}

static void
ob_conn_destroy(struct ob_conn *cn, int polite)
{
	if (polite)
		smtp_client_quit(&cn->c);
	else
		smtp_client_free(&cn->c);
	if (cn->idle_ev)
		event_free(cn->idle_ev);
	cn->dest->nconn--;
	free(cn);
}

static void
ob_conn_open(struct ob_dest *dt, struct ob_dom *d)
{
	struct smtp_client_opts opts;
	struct ob_conn *cn = xcalloc(1, sizeof(*cn));

	ob_client_opts(dt->o, dt->addr, dt->port, &opts);
	opts.tls_ctx = dt->o->tls;
	opts.tls = d->want_tls;
	opts.servername = d->want_sni;
	opts.log_id = d->m->env->qid;
	opts.source = dt->o->source;
	if (d->via_relayhost) {
		opts.auth_user = dt->o->relay_user;
		opts.auth_password = dt->o->relay_password;
	}
	cn->dest = dt;
	dt->nconn++;
	d->conn = cn;
	d->reused = 0;
	cn->c = smtp_client_new(dt->o->base, &opts, ob_ready, d);
}

/* Connections came free: start one for each waiting message they allow. */
static void
ob_dest_kick(struct ob_dest *dt)
{
	const struct config *cf = dt->o->cf;

	while (dt->whead != NULL && dt->nconn < cf->dest_concurrency) {
		struct ob_dom *d = dt->whead;

		dt->whead = d->wnext;
		if (dt->whead == NULL)
			dt->wtail = NULL;
		d->waiting = NULL;
		d->wnext = NULL;
		if (ob_dom_went_down(d))
			continue;
		ob_conn_open(dt, d);
	}
	ob_dest_gc(dt);
}

static void
ob_conn_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ob_conn *cn = arg;
	struct ob_dest *dt = cn->dest;
	struct ob_conn **pp;

	for (pp = &dt->idle; *pp != cn; pp = &(*pp)->next)
		;
	*pp = cn->next;
	ob_conn_destroy(cn, 1);
	ob_dest_kick(dt);
}

void
ob_conn_get(struct ob_dom *d, const char *addr, int port, enum smtp_client_tls tls,
	    const char *servername)
{
	struct ob_dest *dt = ob_dest_get(d->m->o, addr, port);

	d->want_tls = tls;
	d->want_sni = servername;
	while (dt->idle != NULL) {
		struct ob_conn *cn = dt->idle;

		dt->idle = cn->next;
		cn->next = NULL;
		evtimer_del(cn->idle_ev);
		if (!smtp_client_usable(cn->c)) {   /* the server closed it meanwhile */
			ob_conn_destroy(cn, 0);
			continue;
		}
		d->conn = cn;
		d->reused = 1;
		ob_send(d);
		return;
	}
	if (dt->nconn < d->m->o->cf->dest_concurrency && dt->whead == NULL) {
		ob_conn_open(dt, d);
		return;
	}
	/* every connection is busy: the next one free is d's */
	d->waiting = dt;
	if (dt->wtail)
		dt->wtail->wnext = d;
	else
		dt->whead = d;
	dt->wtail = d;
}

void
ob_conn_release(struct ob_dom *d)
{
	struct ob_conn *cn = d->conn;
	struct ob_dest *dt = cn->dest;
	struct timeval tv = { OB_CONN_IDLE_MS / 1000, (OB_CONN_IDLE_MS % 1000) * 1000 };

	d->conn = NULL;
	if (++cn->msgs >= OB_CONN_MAX_MSGS || !smtp_client_usable(cn->c) || dt->o->stopping) {
		ob_conn_destroy(cn, !dt->o->stopping);
		ob_dest_kick(dt);
		return;
	}
	if (dt->whead != NULL) {
		struct ob_dom *w = dt->whead;

		dt->whead = w->wnext;
		if (dt->whead == NULL)
			dt->wtail = NULL;
		w->waiting = NULL;
		w->wnext = NULL;
		w->conn = cn;
		w->reused = 1;
		ob_send(w);
		return;
	}
	if (cn->idle_ev == NULL)
		cn->idle_ev = evtimer_new(dt->o->base, ob_conn_idle_cb, cn);
	cn->next = dt->idle;
	dt->idle = cn;
	evtimer_add(cn->idle_ev, &tv);
}

void
ob_conn_abandon(struct ob_dom *d)
{
	struct ob_dest *dt = d->waiting;

	if (dt != NULL) {
		struct ob_dom **pp, *prev = NULL;

		for (pp = &dt->whead; *pp != d; pp = &(*pp)->wnext)
			prev = *pp;
		*pp = d->wnext;
		if (dt->wtail == d)
			dt->wtail = prev;
		d->waiting = NULL;
		d->wnext = NULL;
		ob_dest_gc(dt);
	}
	if (d->conn != NULL) {
		dt = d->conn->dest;
		ob_conn_destroy(d->conn, 0);
		d->conn = NULL;
		ob_dest_kick(dt);
	}
}

struct smtp_client *
ob_conn_client(struct ob_conn *cn)
{
	return cn->c;
}

/* Shutdown: every idle connection is closed (no QUIT: the loop is ending
 * and would not wait for its reply). */
void
ob_conn_free_all(struct outbound *o)
{
	struct ob_dest *dt, *next;

	for (dt = o->dests; dt != NULL; dt = next) {
		next = dt->next;
		while (dt->idle != NULL) {
			struct ob_conn *cn = dt->idle;

			dt->idle = cn->next;
			ob_conn_destroy(cn, 0);
		}
		ob_dest_gc(dt);
	}
}
