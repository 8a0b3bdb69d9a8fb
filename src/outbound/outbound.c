/*
 * outbound: SMTP delivery to other hosts (see outbound.h). One message's
 * remote recipients are grouped by domain; each domain goes through
 *   route (MX lookup, or the configured primary) -> addresses of each host
 *   -> mx_select -> one host after the other until one takes the message.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "outbound/outbound_int.h"
#include "dns/mx.h"
#include "dns/resolver.h"
#include "mail/addr.h"
#include "smtp/smtp_client.h"
#include "conf/config.h"
#include "util/log.h"
#include "util/tls.h"
#include "util/xalloc.h"

#define OB_SMTP_PORT 25


struct ob_addr_q {
	struct ob_dom *d;
	size_t host;
	struct resolver_query *q;
};

static void ob_try_next(struct ob_dom *d);

/* [queue] source_address, or by default the first [listen] smtp address
 * when it is not a wildcard (mail leaves from the address its MX and SPF
 * records name). */
static int
ob_source_setup(struct outbound *o, char *err, size_t errlen)
{
	const char *a = o->cf->source_address;

	if (a != NULL) {
		if (!ob_numeric(a)) {
			snprintf(err, errlen, "[queue] source_address: %s is not a numeric address", a);
			return -1;
		}
		o->source = xstrdup(a);
		return 0;
	}
	if (o->nself > 0 && strcmp(o->self_addrs[0], "0.0.0.0") != 0 &&
	    strcmp(o->self_addrs[0], "::") != 0 && ob_numeric(o->self_addrs[0]))
		o->source = xstrdup(o->self_addrs[0]);
	return 0;
}

/* [queue] relayhost_auth_file: its first line, USER:PASSWORD. */
static int
ob_relay_auth_load(struct outbound *o, char *err, size_t errlen)
{
	const char *path = o->cf->relayhost_auth_file;
	char line[1024], *colon;
	FILE *fp;

	if (path == NULL)
		return 0;
	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "[queue] relayhost_auth_file: %s: %s", path, strerror(errno));
		return -1;
	}
	if (fgets(line, sizeof(line), fp) == NULL)
		line[0] = '\0';
	fclose(fp);
	line[strcspn(line, "\r\n")] = '\0';
	if ((colon = strchr(line, ':')) == NULL || colon == line || colon[1] == '\0') {
		explicit_bzero(line, sizeof(line));
		snprintf(err, errlen, "[queue] relayhost_auth_file: %s: the first line must be "
			 "USER:PASSWORD", path);
		return -1;
	}
	*colon = '\0';
	o->relay_user = xstrdup(line);
	o->relay_password = xstrdup(colon + 1);
	explicit_bzero(line, sizeof(line));
	return 0;
}

struct outbound *
outbound_new(struct event_base *base, const struct config *cf, char *err, size_t errlen)
{
	struct outbound *o = xcalloc(1, sizeof(*o));
	char host[256];
	int port;

	o->base = base;
	o->cf = cf;
	if ((o->res = resolver_new(base, cf->dns_resolver, err, errlen)) == NULL) {
		char why[256];

		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen, "[dns] resolver: %s", why);
		free(o);
		return NULL;
	}
	o->tls = tls_client_ctx_new();
	ob_down_free_all(o);   /* what a crashed run said was down is stale */
	o->self_addrs = xcalloc(cf->listen_smtp.n + 1, sizeof(char *));
	for (int i = 0; i < cf->listen_smtp.n; i++)
		if (config_parse_hostport(cf->listen_smtp.v[i], host, sizeof(host), &port) == 0)
			o->self_addrs[o->nself++] = xstrdup(host);
	if (ob_source_setup(o, err, errlen) != 0 || ob_relay_auth_load(o, err, errlen) != 0) {
		outbound_free(&o);
		return NULL;
	}
	return o;
}

void
outbound_free(struct outbound **op)
{
	struct outbound *o = *op;

	if (o == NULL)
		return;
	ob_down_free_all(o);
	ob_conn_free_all(o);
	resolver_free(&o->res);
	if (o->tls)
		SSL_CTX_free(o->tls);
	for (size_t i = 0; i < o->nself; i++)
		free((char *)o->self_addrs[i]);
	free(o->self_addrs);
	free(o->source);
	free(o->relay_user);
	if (o->relay_password != NULL) {
		explicit_bzero(o->relay_password, strlen(o->relay_password));
		free(o->relay_password);
	}
	free(o);
	*op = NULL;
}

/* --- results ------------------------------------------------------------ */

static void
ob_msg_finish_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ob_msg *m = arg;
	outbound_done_fn *done = m->done;
	void *darg = m->arg;

	*m->prevp = m->next;
	if (m->next)
		m->next->prevp = m->prevp;
	for (int i = 0; i < m->ndoms; i++) {
		struct ob_dom *d = &m->doms[i];

		for (size_t h = 0; h < d->nhosts; h++) {
			free(d->hosts[h].mx.host);
			for (size_t a = 0; a < d->hosts[h].naddrs; a++)
				free(d->hosts[h].addrs[a]);
			free(d->hosts[h].addrs);
		}
		free(d->hosts);
		free(d->addrq);
		mx_list_free(&d->targets);
		free(d->domain);
		free(d->idx);
		free(d->rcpt);
	}
	free(m->doms);
	event_free(m->finish_ev);
	free(m);
	done(darg);
}

/* The host t and its reply (code 0: none) into r. */
static void
ob_result_relay(struct rcpt_result *r, const struct mx_target *t, int port, int code,
		const char *reply)
{
	snprintf(r->relay_host, sizeof(r->relay_host), "%s", t->host);
	snprintf(r->relay_addr, sizeof(r->relay_addr), "%s", t->addr);
	r->relay_port = port;
	r->reply_code = code;
	snprintf(r->reply, sizeof(r->reply), "%s", code > 0 && reply ? reply : "");
}

/* Every recipient of d gets the same status, code and text, and the last
 * host that failed it, if any. */
static void
ob_dom_result(struct ob_dom *d, enum rcpt_status st, const char *dsn, const char *text)
{
	for (int i = 0; i < d->n; i++) {
		struct rcpt_result *r = &d->m->res[d->idx[i]];

		sched_result_set(r, st, dsn, "%s", text);
		if (d->last_t != NULL)
			ob_result_relay(r, d->last_t, d->port, d->last_code, d->last_reply);
	}
}

/* Seconds since the message arrived, for the log lines. */
static double
ob_delay(const struct ob_msg *m)
{
	struct timespec ts;
	double delay;

	clock_gettime(CLOCK_REALTIME, &ts);
	delay = (double)ts.tv_sec + ts.tv_nsec / 1e9 - (double)m->env->arrival;
	return delay < 0 ? 0 : delay;
}

static void
ob_dom_done(struct ob_dom *d)
{
	struct ob_msg *m = d->m;
	struct timeval now = { 0, 0 };

	d->finished = 1;
	if (--m->pending == 0)
		evtimer_add(m->finish_ev, &now);   /* never from inside outbound_deliver */
}

/* The scheduler logs each recipient's result line; this is the detail. */
static void
ob_dom_fail(struct ob_dom *d, int temp, const char *dsn, const char *text)
{
	log_debug(d->m->env->qid, "event=outbound domain=%s status=%s reason=%s", d->domain,
		  temp ? "deferred" : "bounced", log_q(text));
	ob_dom_result(d, temp ? RCPT_TEMP : RCPT_PERM, dsn, text);
	ob_dom_done(d);
}

/* The destination is down and probed: the message waits for it without
 * attempts (RCPT_WAIT), unless its lifetime is over. */
static void
ob_dom_wait(struct ob_dom *d, const char *why)
{
	const struct config *cf = d->m->o->cf;

	if (time(NULL) - d->m->env->arrival > (long long)cf->lifetime) {
		ob_dom_fail(d, 1, "4.4.1", why);
		return;
	}
	log_msg(d->m->env->qid, "event=outbound domain=%s status=waiting reason=%s", d->domain,
		log_q(why));
	ob_dom_result(d, RCPT_WAIT, "4.4.1", why);
	ob_dom_done(d);
}

/* --- the SMTP conversation ---------------------------------------------- */

/* Remember how host t failed d, for the result if no later host takes it. */
static void
ob_dom_last(struct ob_dom *d, const struct mx_target *t, const struct smtp_client_result *r)
{
	d->last_t = t;
	snprintf(d->last_dsn, sizeof(d->last_dsn), "%s", r->esc);
	d->last_code = r->local ? 0 : r->code;
	snprintf(d->last_reply, sizeof(d->last_reply), "%s", r->text ? r->text : "");
}

static void
ob_sent(struct smtp_client *c, const struct smtp_client_msg_result *r, void *arg)
{
	struct ob_dom *d = arg;
	const struct mx_target *t = mx_list_get(d->targets, d->next - 1);
	const char *qid = d->m->env->qid;
	char reply[600];

	if (r->naccepted == 0 && r->msg.status == SMTP_CLIENT_TEMP && r->msg.stage <= SMTP_CLIENT_STAGE_MAIL) {
		if (d->reused && r->msg.local && !d->fresh_retry) {
			/* a kept connection the server had dropped: the same host anew */
			d->fresh_retry = 1;
			ob_conn_abandon(d);
			d->next--;
			ob_try_next(d);
			return;
		}
		d->reached = 1;
		snprintf(d->last_error, sizeof(d->last_error), "%s %s[%s]%s %d %s", r->msg.esc,
			 t->host, t->addr, r->msg.local ? ":" : " said:", r->msg.code,
			 r->msg.text ? r->msg.text : "");
		ob_dom_last(d, t, &r->msg);
		ob_conn_release(d);
		ob_try_next(d);
		return;
	}
	d->reached = 1;
	for (int i = 0; i < d->n; i++) {
		const struct smtp_client_result *rr = &r->rcpt[i];
		struct rcpt_result *out = &d->m->res[d->idx[i]];

		/* "said" only for what the server said, not for what we decided */
		sched_result_set(out, rr->status == SMTP_CLIENT_OK ? RCPT_DONE :
				 rr->status == SMTP_CLIENT_PERM ? RCPT_PERM : RCPT_TEMP,
				 rr->esc, "%s %s[%s]%s %d %s", rr->esc, t->host, t->addr,
				 rr->local ? ":" : " said:", rr->code, rr->text ? rr->text : "");
		ob_result_relay(out, t, d->port, rr->local ? 0 : rr->code, rr->text);
		out->dup = rr->dup;
		snprintf(reply, sizeof(reply), "%d %s", rr->code, rr->text ? rr->text : "");
		/* detail: the scheduler logs the one line of this result */
		log_debug(qid, "event=smtp to=%s relay=%s[%s]:%d status=%s dsn=%s delay=%.2f %s=%s%s",
			  log_addr(d->rcpt[i]), t->host, t->addr, d->port,
			out->status == RCPT_DONE ? "sent" : out->status == RCPT_PERM ? "bounced" : "deferred",
			rr->esc, ob_delay(d->m), rr->local ? "reason" : "reply",
			log_q(rr->local ? out->error : reply), rr->dup ? " possible_duplicate=yes" : "");
	}
	ob_conn_release(d);
	ob_dom_done(d);
}

void
ob_ready(struct smtp_client *c, const struct smtp_client_result *r, void *arg)
{
	struct ob_dom *d = arg;
	const struct mx_target *t = mx_list_get(d->targets, d->next - 1);

	if (r->status != SMTP_CLIENT_OK) {
		/* A host that greeted, even with a 4xx or a broken TLS, is there:
		 * backoff, not the probe, deals with it. */
		if (r->stage > SMTP_CLIENT_STAGE_CONNECT)
			d->reached = 1;
		else
			snprintf(d->down_reason, sizeof(d->down_reason), "%s", r->text ? r->text : "");
		snprintf(d->last_error, sizeof(d->last_error), "%s %s[%s]: %d %s", r->esc, t->host,
			 t->addr, r->code, r->text ? r->text : "");
		ob_dom_last(d, t, r);
		log_msg(d->m->env->qid, "event=smtp_host_failed relay=%s[%s]:%d stage=%s reason=%s",
			t->host, t->addr, d->port, smtp_client_stage_name(r->stage),
			log_q(d->last_error));
		ob_conn_abandon(d);
		if (r->plain_retry && d->plain_for != d->next - 1) {
			/* TLS may: the handshake failed, so the same host in plaintext */
			d->plain_for = d->next - 1;
			d->next--;
		}
		ob_try_next(d);
		return;
	}
	ob_send(d);
}

void
ob_send(struct ob_dom *d)
{
	const struct queue_env *env = d->m->env;
	struct smtp_client_msg msg;

	memset(&msg, 0, sizeof(msg));
	msg.sender = env->sender;
	msg.rcpt = d->rcpt;
	msg.nrcpt = d->n;
	msg.fd = d->m->fd;
	msg.offset = d->m->body_off;
	msg.length = env->size;
	msg.prefix = d->m->prefix;
	msg.body8bit = env->body8bit;
	msg.smtputf8 = env->smtputf8;
	smtp_client_set_log_id(ob_conn_client(d->conn), env->qid);
	smtp_client_send(ob_conn_client(d->conn), &msg, ob_sent, d);
}

int
ob_dom_went_down(struct ob_dom *d)
{
	char why[300];

	if (d->reached || !ob_down_check(d->m->o, d->domain))
		return 0;
	/* no connection storm: one message's attempt found it down for all */
	snprintf(why, sizeof(why), "4.4.1 %s is down; waiting for it to answer a probe", d->domain);
	ob_dom_wait(d, why);
	return 1;
}

static void
ob_try_next(struct ob_dom *d)
{
	const struct config *cf = d->m->o->cf;
	const struct mx_target *t;
	enum smtp_client_tls tls;

	if (d->next >= mx_list_count(d->targets)) {
		const char *why = d->last_error[0] ? d->last_error : "4.4.1 no host answered";

		if (!d->reached) {
			/* nobody there: probe, and let this message wait with the others */
			ob_down_mark(d->m->o, d->domain, d->targets, d->port, d->down_reason);
			ob_dom_wait(d, why);
			return;
		}
		ob_dom_fail(d, 1, d->last_dsn[0] ? d->last_dsn : "4.4.1", why);
		return;
	}
	if (d->next > 0 && ob_dom_went_down(d))
		return;
	tls = d->via_relayhost ? SMTP_CLIENT_TLS_ENCRYPT :
		d->plain_for == d->next ? SMTP_CLIENT_TLS_NONE : ob_tls_mode(cf);
	t = mx_list_get(d->targets, d->next++);
	/* SNI takes names only */
	ob_conn_get(d, t->addr, d->port, tls, ob_numeric(t->host) ? NULL : t->host);
}

/* --- routing ------------------------------------------------------------ */

static void
ob_select(struct ob_dom *d)
{
	struct outbound *o = d->m->o;
	struct mx_host *hosts = xcalloc(d->nhosts ? d->nhosts : 1, sizeof(*hosts));
	struct mx_self self = { o->cf->hostname, o->self_addrs, o->nself, o->cf->role == ROLE_BACKUP };
	char text[300];
	enum mx_err e;

	for (size_t i = 0; i < d->nhosts; i++) {
		hosts[i].pref = d->hosts[i].mx.pref;
		hosts[i].name = d->hosts[i].mx.host;
		hosts[i].addrs = (const char *const *)d->hosts[i].addrs;
		hosts[i].naddrs = d->hosts[i].naddrs;
		hosts[i].temp_fail = d->hosts[i].temp_fail;
	}
	e = mx_select(hosts, d->nhosts, &self, NULL, NULL, &d->targets);
	free(hosts);
	if (e != MX_OK) {
		mx_err_format(e, d->domain, text, sizeof(text));
		ob_dom_fail(d, mx_err_is_temp(e), mx_err_status(e), text);
		return;
	}
	ob_try_next(d);
}

static void
ob_addr_cb(struct resolver_result *r, void *arg)
{
	struct ob_addr_q *q = arg;
	struct ob_dom *d = q->d;
	struct ob_host *h = &d->hosts[q->host];

	d->addrq[q->host] = NULL;
	free(q);
	if (r->status == RES_OK) {
		h->addrs = r->addrs;
		h->naddrs = r->naddrs;
		r->addrs = NULL;
		r->naddrs = 0;
	} else if (r->status == RES_TEMP) {
		h->temp_fail = 1;
	}
	resolver_result_free(&r);
	if (--d->pending == 0)
		ob_select(d);
}

/* [tls] outbound as the client's mode. */
enum smtp_client_tls
ob_tls_mode(const struct config *cf)
{
	return cf->tls_outbound == TLS_OUT_ENCRYPT ? SMTP_CLIENT_TLS_ENCRYPT : SMTP_CLIENT_TLS_MAY;
}

/* What every connection of ours has: the address, our name in EHLO, and
 * [queue] connect_timeout. */
void
ob_client_opts(const struct outbound *o, const char *addr, int port,
	       struct smtp_client_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->addr = addr;
	opts->port = port;
	opts->helo = o->cf->hostname;
	opts->timeouts.connect = o->cf->connect_timeout * 1000;
}

int
ob_numeric(const char *host)
{
	unsigned char bin[16];

	return inet_pton(AF_INET, host, bin) == 1 || inet_pton(AF_INET6, host, bin) == 1;
}

static void
ob_lookup_hosts(struct ob_dom *d)
{
	size_t lookups = 0;

	/* A numeric host ([relay] primary = 192.0.2.10) needs no lookup. */
	for (size_t i = 0; i < d->nhosts; i++) {
		if (!ob_numeric(d->hosts[i].mx.host))
			continue;
		d->hosts[i].addrs = xcalloc(1, sizeof(char *));
		d->hosts[i].addrs[0] = xstrdup(d->hosts[i].mx.host);
		d->hosts[i].naddrs = 1;
	}
	for (size_t i = 0; i < d->nhosts; i++)
		lookups += d->hosts[i].naddrs == 0;
	if (lookups == 0) {
		ob_select(d);
		return;
	}
	d->pending = lookups;
	d->addrq = xcalloc(d->nhosts, sizeof(*d->addrq));
	for (size_t i = 0; i < d->nhosts; i++) {
		struct ob_addr_q *q;

		if (d->hosts[i].naddrs > 0)
			continue;
		q = xcalloc(1, sizeof(*q));
		q->d = d;
		q->host = i;
		d->addrq[i] = q;
		q->q = resolver_addr(d->m->o->res, d->hosts[i].mx.host, ob_addr_cb, q);
	}
}

static void
ob_mx_cb(struct resolver_result *r, void *arg)
{
	struct ob_dom *d = arg;
	char text[300];

	d->mxq = NULL;
	switch (r->status) {
	case RES_OK:
		d->nhosts = r->nmx;
		d->hosts = xcalloc(r->nmx ? r->nmx : 1, sizeof(*d->hosts));
		for (size_t i = 0; i < r->nmx; i++) {
			d->hosts[i].mx.pref = r->mx[i].pref;
			d->hosts[i].mx.host = xstrdup(r->mx[i].host);
		}
		break;
	case RES_NODATA:
		/* no MX: the domain itself is the implicit MX (RFC 5321 5.1) */
		d->nhosts = 1;
		d->hosts = xcalloc(1, sizeof(*d->hosts));
		d->hosts[0].mx.host = xstrdup(d->domain);
		break;
	case RES_NXDOMAIN:
		snprintf(text, sizeof(text), "5.1.2 domain %s does not exist", d->domain);
		resolver_result_free(&r);
		ob_dom_fail(d, 0, "5.1.2", text);
		return;
	default:
		snprintf(text, sizeof(text), "4.4.3 DNS lookup of %s failed: %s", d->domain,
			 r->error ? r->error : "temporary failure");
		resolver_result_free(&r);
		ob_dom_fail(d, 1, "4.4.3", text);
		return;
	}
	resolver_result_free(&r);
	/* a null MX needs no address lookups: mx_select reports it */
	if (d->nhosts == 1 && d->hosts[0].mx.pref == 0 && strcmp(d->hosts[0].mx.host, ".") == 0) {
		ob_select(d);
		return;
	}
	ob_lookup_hosts(d);
}

/* One host for the domain, HOST[:PORT] (port 25 by default). */
static void
ob_route_to(struct ob_dom *d, const char *hostport)
{
	char host[256];
	int port = OB_SMTP_PORT;

	if (config_parse_hostport(hostport, host, sizeof(host), &port) != 0)
		snprintf(host, sizeof(host), "%s", hostport);
	d->port = port;
	d->nhosts = 1;
	d->hosts = xcalloc(1, sizeof(*d->hosts));
	d->hosts[0].mx.pref = 0;
	d->hosts[0].mx.host = xstrdup(host);
	ob_lookup_hosts(d);
}

/* A backup's relay domain with [relay] primary set goes there; with
 * [queue] relayhost every other domain goes to the relay host (STARTTLS
 * required, AUTH when relayhost_auth_file says so). 0: route by MX. */
static int
ob_route_configured(struct ob_dom *d)
{
	const struct config *cf = d->m->o->cf;
	int relay_domain = config_is_relay_domain(cf, d->domain);

	if (relay_domain && cf->relay_primary != NULL) {
		ob_route_to(d, cf->relay_primary);
		return 1;
	}
	if (!relay_domain && cf->relayhost != NULL) {
		d->via_relayhost = 1;
		ob_route_to(d, cf->relayhost);
		return 1;
	}
	return 0;
}

static void
ob_dom_start(struct ob_dom *d)
{
	char text[256];

	if (ob_down_check(d->m->o, d->domain)) {
		snprintf(text, sizeof(text), "4.4.1 %s is down; waiting for it to answer a probe",
			 d->domain);
		ob_dom_wait(d, text);
		return;
	}
	d->port = OB_SMTP_PORT;
	if (ob_route_configured(d))
		return;
	d->mxq = resolver_mx(d->m->o->res, d->domain, ob_mx_cb, d);
}

static struct ob_dom *
ob_dom_for(struct ob_msg *m, const char *domain)
{
	for (int i = 0; i < m->ndoms; i++)
		if (strcasecmp(m->doms[i].domain, domain) == 0)
			return &m->doms[i];
	m->doms = xrealloc(m->doms, (m->ndoms + 1) * sizeof(*m->doms));
	memset(&m->doms[m->ndoms], 0, sizeof(*m->doms));
	m->doms[m->ndoms].m = m;
	m->doms[m->ndoms].domain = xstrdup(domain);
	m->doms[m->ndoms].plain_for = (size_t)-1;
	return &m->doms[m->ndoms++];
}

void
outbound_deliver(struct outbound *o, const struct queue_env *env, int fd, off_t body_off,
		 const char *prefix, struct rcpt_result *res, outbound_done_fn *done, void *arg)
{
	struct ob_msg *m = xcalloc(1, sizeof(*m));

	m->o = o;
	m->env = env;
	m->fd = fd;
	m->body_off = body_off;
	m->prefix = prefix;
	m->res = res;
	m->done = done;
	m->arg = arg;
	m->finish_ev = evtimer_new(o->base, ob_msg_finish_cb, m);
	m->next = o->active;
	if (m->next)
		m->next->prevp = &m->next;
	m->prevp = &o->active;
	o->active = m;
	for (int i = 0; i < env->nrcpt; i++) {
		struct ob_dom *d;

		if (res[i].status != RCPT_REMOTE)
			continue;
		d = ob_dom_for(m, addr_domain(env->rcpt[i]));
		d->idx = xrealloc(d->idx, (d->n + 1) * sizeof(int));
		d->rcpt = xrealloc(d->rcpt, (d->n + 1) * sizeof(char *));
		d->idx[d->n] = i;
		d->rcpt[d->n] = env->rcpt[i];
		d->n++;
	}
	m->pending = m->ndoms;
	if (m->ndoms == 0) {
		struct timeval now = { 0, 0 };
		evtimer_add(m->finish_ev, &now);
		return;
	}
	/* m->doms does not move from here on: the domains keep pointers to it */
	for (int i = 0; i < m->ndoms; i++)
		ob_dom_start(&m->doms[i]);
}

/* Shutdown: stop every delivery in flight. Its recipients are deferred
 * (nothing was handed over), and done() runs as usual. */
void
outbound_set_up_cb(struct outbound *o, void (*up)(void *arg), void *arg)
{
	o->up_cb = up;
	o->up_arg = arg;
}

int
outbound_is_down(struct outbound *o, const char *domain)
{
	return ob_down_check(o, domain);
}

void
outbound_forget_down(struct outbound *o, const char *domain)
{
	if (domain == NULL)
		ob_down_free_all(o);
	else
		ob_down_forget(o, domain);
}

void
outbound_cancel(struct outbound *o)
{
	o->stopping = 1;
	ob_down_free_all(o);
	for (struct ob_msg *m = o->active; m != NULL; m = m->next) {
		for (int i = 0; i < m->ndoms; i++) {
			struct ob_dom *d = &m->doms[i];

			if (d->finished)
				continue;
			if (d->mxq)
				resolver_cancel(o->res, &d->mxq);
			for (size_t h = 0; d->addrq && h < d->nhosts; h++) {
				if (d->addrq[h] == NULL)
					continue;
				resolver_cancel(o->res, &d->addrq[h]->q);
				free(d->addrq[h]);
				d->addrq[h] = NULL;
			}
			ob_conn_abandon(d);
			ob_dom_fail(d, 1, "4.3.2", "4.3.2 delivery interrupted: the server is stopping");
		}
	}
	ob_conn_free_all(o);
}
