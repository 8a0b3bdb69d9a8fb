/*
 * outbound_etrn: a primary tells its backups it is back. For each host in
 * [server] backups it connects, sends ETRN (RFC 1985) for each of its
 * domains, and says QUIT; the backup then delivers what it holds at once,
 * without waiting for its next retry or probe. A backup that cannot be
 * reached is asked again every [relay] probe_interval until it answers:
 * if the backup was unreachable, it may be holding mail for us.
 * Public (see outbound.h): outbound_notify_backups.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbound/outbound_int.h"
#include "conf/config.h"
#include "util/log.h"
#include "util/xalloc.h"

struct ob_etrn {
	struct outbound *o;
	char *host;                       /* as configured */
	char addr[64];
	int port;
	int next;                         /* the next domain to ask for */
	struct resolver_query *q;
	struct smtp_client *c;
	struct event *retry_ev;
	struct ob_etrn *nextn;
};

static void ob_etrn_connect(struct ob_etrn *e);

static void
ob_etrn_retry(struct ob_etrn *e, const char *why)
{
	unsigned secs = ob_probe_secs(e->o->cf);
	struct timeval tv = { secs, 0 };

	log_msg(NULL, "event=etrn_failed host=%s:%d reason=%s retry=%us", e->host, e->port,
		log_q(why), secs);
	if (e->c)
		smtp_client_free(&e->c);
	evtimer_add(e->retry_ev, &tv);
}

static void
ob_etrn_reply(struct smtp_client *c, const struct smtp_client_result *r, void *arg)
{
	struct ob_etrn *e = arg;
	struct outbound *o = e->o;
	char reply[300];

	snprintf(reply, sizeof(reply), "%d %s", r->code, r->text ? r->text : "");
	if (r->status == SMTP_CLIENT_TEMP && (r->local || r->code == 421)) {
		ob_etrn_retry(e, reply);   /* the connection is gone: all again later */
		return;
	}
	log_msg(NULL, "event=etrn host=%s:%d domain=%s reply=%s", e->host, e->port,
		o->domains[e->next], log_q(reply));
	e->next++;
	if (r->status == SMTP_CLIENT_PERM && r->code != 501) {
		/* 500/502: the backup has no ETRN; asking again will not help */
		smtp_client_quit(&e->c);
		return;
	}
	if (e->next < o->ndomains) {
		smtp_client_etrn(c, o->domains[e->next], ob_etrn_reply, e);
		return;
	}
	smtp_client_quit(&e->c);
}

static void
ob_etrn_ready(struct smtp_client *c, const struct smtp_client_result *r, void *arg)
{
	struct ob_etrn *e = arg;
	char why[400];

	if (r->status != SMTP_CLIENT_OK) {
		snprintf(why, sizeof(why), "%s at %s: %d %s", r->esc, smtp_client_stage_name(r->stage),
			 r->code, r->text ? r->text : "");
		ob_etrn_retry(e, why);
		return;
	}
	e->next = 0;
	smtp_client_etrn(c, e->o->domains[0], ob_etrn_reply, e);
}

static void
ob_etrn_addr_cb(struct resolver_result *r, void *arg)
{
	struct ob_etrn *e = arg;
	char why[300];

	e->q = NULL;
	if (r->status != RES_OK || r->naddrs == 0) {
		snprintf(why, sizeof(why), "address lookup of %s: %s", e->host,
			 r->error ? r->error : resolver_status_name(r->status));
		resolver_result_free(&r);
		ob_etrn_retry(e, why);
		return;
	}
	snprintf(e->addr, sizeof(e->addr), "%s", r->addrs[0]);
	resolver_result_free(&r);
	ob_etrn_connect(e);
}

static void
ob_etrn_connect(struct ob_etrn *e)
{
	const struct config *cf = e->o->cf;
	struct smtp_client_opts opts;
	int numeric = ob_numeric(e->host);

	if (e->addr[0] == '\0') {
		if (numeric) {
			snprintf(e->addr, sizeof(e->addr), "%s", e->host);
		} else {
			e->q = resolver_addr(e->o->res, e->host, ob_etrn_addr_cb, e);
			return;
		}
	}
	ob_client_opts(e->o, e->addr, e->port, &opts);
	opts.tls_ctx = e->o->tls;
	opts.tls = ob_tls_mode(cf);
	opts.servername = numeric ? NULL : e->host;
	if (opts.timeouts.connect > 10000)
		opts.timeouts.connect = 10000;   /* asked again soon anyway */
	e->c = smtp_client_new(e->o->base, &opts, ob_etrn_ready, e);
}

static void
ob_etrn_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ob_etrn *e = arg;

	e->addr[0] = '\0';   /* look the name up again: it may have moved */
	ob_etrn_connect(e);
}

void
outbound_notify_backups(struct outbound *o, const char *const *domains, int ndomains)
{
	const struct config *cf = o->cf;

	ob_etrn_free_all(o);
	if (cf->backups.n == 0 || ndomains == 0)
		return;
	o->domains = xcalloc(ndomains, sizeof(char *));
	for (int i = 0; i < ndomains; i++)
		o->domains[i] = xstrdup(domains[i]);
	o->ndomains = ndomains;
	for (int i = 0; i < cf->backups.n; i++) {
		struct ob_etrn *e = xcalloc(1, sizeof(*e));
		char host[256];
		int port = 25;

		if (config_parse_hostport(cf->backups.v[i], host, sizeof(host), &port) != 0)
			snprintf(host, sizeof(host), "%s", cf->backups.v[i]);
		e->o = o;
		e->host = xstrdup(host);
		e->port = port;
		e->retry_ev = evtimer_new(o->base, ob_etrn_retry_cb, e);
		e->nextn = o->etrn;
		o->etrn = e;
		ob_etrn_connect(e);
	}
}

void
ob_etrn_free_all(struct outbound *o)
{
	while (o->etrn != NULL) {
		struct ob_etrn *e = o->etrn;

		o->etrn = e->nextn;
		if (e->q)
			resolver_cancel(o->res, &e->q);
		if (e->c)
			smtp_client_free(&e->c);
		event_free(e->retry_ev);
		free(e->host);
		free(e);
	}
	for (int i = 0; i < o->ndomains; i++)
		free(o->domains[i]);
	free(o->domains);
	o->domains = NULL;
	o->ndomains = 0;
}
