/*
 * pair_notify: a primary tells its backups it is back. For each host in
 * [server] backups it connects, sends ETRN (RFC 1985) for each of its
 * domains, and says QUIT; the backup then delivers what it holds at once,
 * without waiting for its next retry or probe. A backup that cannot be
 * reached is asked again every [relay] probe_interval until it answers:
 * if the backup was unreachable, it may be holding mail for us.
 * Public (see pair.h): pair_notify_backups; pair_notify_free_all for pair.c.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "dns/resolver.h"
#include "pair/pair_int.h"
#include "smtp/smtp_client.h"
#include "util/log.h"
#include "util/xalloc.h"

struct pair_etrn {
	struct pair *o;
	char *host;                       /* as configured */
	char addr[64];
	int port;
	int next;                         /* the next domain to ask for */
	struct resolver_query *q;
	struct smtp_client *c;
	struct event *retry_ev;
	struct pair_etrn *nextn;
};

static void pair_etrn_connect(struct pair_etrn *e);

static void
pair_etrn_retry(struct pair_etrn *e, const char *why)
{
	unsigned secs = e->o->cf->probe_interval;   /* at least 1s (conf) */
	struct timeval tv = { secs, 0 };

	log_msg(NULL, "event=etrn_failed host=%s:%d reason=%s retry=%us", e->host, e->port,
		log_q(why), secs);
	if (e->c)
		smtp_client_free(&e->c);
	evtimer_add(e->retry_ev, &tv);
}

static void
pair_etrn_reply(struct smtp_client *c, const struct smtp_client_result *r, void *arg)
{
	struct pair_etrn *e = arg;
	struct pair *o = e->o;
	char reply[300];

	snprintf(reply, sizeof(reply), "%d %s", r->code, r->text ? r->text : "");
	if (r->status == SMTP_CLIENT_TEMP && (r->local || r->code == 421)) {
		pair_etrn_retry(e, reply);   /* the connection is gone: all again later */
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
		smtp_client_etrn(c, o->domains[e->next], pair_etrn_reply, e);
		return;
	}
	smtp_client_quit(&e->c);
}

static void
pair_etrn_ready(struct smtp_client *c, const struct smtp_client_result *r, void *arg)
{
	struct pair_etrn *e = arg;
	char why[400];

	if (r->status != SMTP_CLIENT_OK) {
		snprintf(why, sizeof(why), "%s at %s: %d %s", r->esc, smtp_client_stage_name(r->stage),
			 r->code, r->text ? r->text : "");
		pair_etrn_retry(e, why);
		return;
	}
	e->next = 0;
	smtp_client_etrn(c, e->o->domains[0], pair_etrn_reply, e);
}

static void
pair_etrn_addr_cb(struct resolver_result *r, void *arg)
{
	struct pair_etrn *e = arg;
	char why[300];

	e->q = NULL;
	if (r->status != RES_OK || r->naddrs == 0) {
		snprintf(why, sizeof(why), "address lookup of %s: %s", e->host,
			 r->error ? r->error : resolver_status_name(r->status));
		resolver_result_free(&r);
		pair_etrn_retry(e, why);
		return;
	}
	snprintf(e->addr, sizeof(e->addr), "%s", r->addrs[0]);
	resolver_result_free(&r);
	pair_etrn_connect(e);
}

static void
pair_etrn_connect(struct pair_etrn *e)
{
	const struct config *cf = e->o->cf;
	struct smtp_client_opts opts;
	int numeric = config_parse_is_ip(e->host);

	if (e->addr[0] == '\0') {
		if (numeric) {
			snprintf(e->addr, sizeof(e->addr), "%s", e->host);
		} else {
			e->q = resolver_addr(e->o->res, e->host, pair_etrn_addr_cb, e);
			return;
		}
	}
	memset(&opts, 0, sizeof(opts));
	opts.addr = e->addr;
	opts.port = e->port;
	opts.helo = cf->hostname;
	opts.timeouts.connect = cf->connect_timeout * 1000;
	opts.tls_ctx = e->o->tls;
	opts.tls = cf->tls_outbound == TLS_OUT_ENCRYPT ? SMTP_CLIENT_TLS_ENCRYPT : SMTP_CLIENT_TLS_MAY;
	opts.servername = numeric ? NULL : e->host;
	if (opts.timeouts.connect > 10000)
		opts.timeouts.connect = 10000;   /* asked again soon anyway */
	e->c = smtp_client_new(e->o->base, &opts, pair_etrn_ready, e);
}

static void
pair_etrn_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pair_etrn *e = arg;

	e->addr[0] = '\0';   /* look the name up again: it may have moved */
	pair_etrn_connect(e);
}

void
pair_notify_backups(struct pair *o, const char *const *domains, int ndomains)
{
	const struct config *cf = o->cf;

	pair_notify_free_all(o);
	if (cf->backups.n == 0 || ndomains == 0)
		return;
	o->domains = xcalloc(ndomains, sizeof(char *));
	for (int i = 0; i < ndomains; i++)
		o->domains[i] = xstrdup(domains[i]);
	o->ndomains = ndomains;
	for (int i = 0; i < cf->backups.n; i++) {
		struct pair_etrn *e = xcalloc(1, sizeof(*e));
		char host[256];
		int port = 25;

		if (config_parse_hostport(cf->backups.v[i], host, sizeof(host), &port) != 0)
			snprintf(host, sizeof(host), "%s", cf->backups.v[i]);
		e->o = o;
		e->host = xstrdup(host);
		e->port = port;
		e->retry_ev = evtimer_new(o->base, pair_etrn_retry_cb, e);
		e->nextn = o->etrn;
		o->etrn = e;
		pair_etrn_connect(e);
	}
}

void
pair_notify_free_all(struct pair *o)
{
	while (o->etrn != NULL) {
		struct pair_etrn *e = o->etrn;

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
