/*
 * outbound_probe: destinations that are down. When every host of a domain
 * failed to answer at all (refused, or no connection), the domain is marked
 * down: later messages for it wait in the queue without an attempt (no
 * connection storm, no disk work), and a cheap probe (connect, EHLO, QUIT)
 * every [relay] probe_interval asks each of its hosts in turn. The moment
 * one answers, the domain is up and every waiting message goes: a backup
 * drains into its primary within seconds of its return.
 * The set of destinations down is also written to data_dir/queue/down, so
 * `tandem queue list` can say why a message waits (outbound_down_read).
 * Public (module-internal, see outbound_int.h): ob_down_mark, ob_down_check,
 * ob_down_free_all; outbound_down_read (outbound.h).
 */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <time.h>

#include "outbound/outbound_int.h"
#include "dns/mx.h"
#include "conf/config.h"
#include "util/durable.h"
#include "util/log.h"
#include "util/xalloc.h"

struct ob_probe_target {
	char *host;
	char addr[64];
};

struct ob_down {
	struct outbound *o;
	struct ob_down *next;
	char *domain;
	struct ob_probe_target *t;        /* the hosts, best first */
	size_t nt, cur;                   /* cur: the one being probed */
	int port;
	struct event *timer;
	struct smtp_client *probe;
	long long since;
	char reason[200];                 /* why the last try got no answer */
};

static void ob_down_schedule(struct ob_down *dn);

static void
ob_down_path(const char *data_dir, char *buf, size_t len)
{
	snprintf(buf, len, "%s/queue/down", data_dir);
}

/* One line per destination down: DOMAIN HOST ADDR PORT SINCE INTERVAL
 * REASON (the rest of the line: why the last try got no answer). */
static void
ob_down_publish(struct outbound *o)
{
	char path[4096], line[600];
	size_t len = 0, cap = 0;
	char *buf = NULL;

	ob_down_path(o->cf->data_dir, path, sizeof(path));
	for (struct ob_down *dn = o->down; dn; dn = dn->next) {
		int n = snprintf(line, sizeof(line), "%s %s %s %d %lld %u %s\n", dn->domain,
				 dn->t[0].host, dn->t[0].addr, dn->port, dn->since,
				 o->cf->probe_interval, dn->reason[0] ? dn->reason : "no answer");

		if (n < 0 || (size_t)n >= sizeof(line))
			continue;
		if (len + n > cap) {
			cap = (len + n) * 2;
			buf = xrealloc(buf, cap);
		}
		memcpy(buf + len, line, n);
		len += n;
	}
	if (len == 0) {
		if (unlink(path) != 0 && errno != ENOENT)
			log_warn(NULL, "event=down_file_failed error=%s", log_q(strerror(errno)));
	} else if (durable_write_file(path, buf, len, 0640) != 0) {
		log_warn(NULL, "event=down_file_failed error=%s", log_q(strerror(errno)));
	}
	free(buf);
}

int
outbound_down_read(const char *data_dir, struct outbound_down **vp, int *np)
{
	char path[4096], line[1024];
	FILE *fp;
	int n = 0;

	*vp = NULL;
	*np = 0;
	ob_down_path(data_dir, path, sizeof(path));
	if ((fp = fopen(path, "r")) == NULL)
		return errno == ENOENT ? 0 : -1;
	while (fgets(line, sizeof(line), fp) != NULL) {
		struct outbound_down d;

		memset(&d, 0, sizeof(d));
		if (sscanf(line, "%255s %255s %63s %d %lld %u %199[^\n]", d.domain, d.host, d.addr,
			   &d.port, &d.since, &d.probe_interval, d.reason) < 6)
			continue;
		*vp = xrealloc(*vp, (n + 1) * sizeof(**vp));
		(*vp)[n++] = d;
	}
	fclose(fp);
	*np = n;
	return 0;
}

static struct ob_down *
ob_down_find(struct outbound *o, const char *domain)
{
	for (struct ob_down *dn = o->down; dn; dn = dn->next)
		if (strcasecmp(dn->domain, domain) == 0)
			return dn;
	return NULL;
}

static void
ob_down_free(struct ob_down *dn)
{
	if (dn->probe)
		smtp_client_free(&dn->probe);
	event_free(dn->timer);
	free(dn->domain);
	for (size_t i = 0; i < dn->nt; i++)
		free(dn->t[i].host);
	free(dn->t);
	free(dn);
}

/* Take dn off the down list. */
static void
ob_down_unlink(struct outbound *o, struct ob_down *dn)
{
	struct ob_down **pp = &o->down;

	while (*pp != dn)
		pp = &(*pp)->next;
	*pp = dn->next;
}

static void
ob_down_up(struct ob_down *dn)
{
	struct outbound *o = dn->o;

	ob_down_unlink(o, dn);
	log_msg(NULL, "event=probe domain=%s relay=%s[%s]:%d status=up", dn->domain,
		dn->t[dn->cur].host, dn->t[dn->cur].addr, dn->port);
	ob_down_free(dn);
	ob_down_publish(o);
	if (o->up_cb)
		o->up_cb(o->up_arg);
}

static void ob_probe_start(struct ob_down *dn);

static void
ob_probe_ready(struct smtp_client *c, const struct smtp_client_result *r, void *arg)
{
	struct ob_down *dn = arg;

	if (r->status == SMTP_CLIENT_OK) {
		smtp_client_quit(&dn->probe);
		ob_down_up(dn);
		return;
	}
	log_debug(NULL, "event=probe domain=%s relay=%s[%s]:%d status=down reason=%s", dn->domain,
		  dn->t[dn->cur].host, dn->t[dn->cur].addr, dn->port, log_q(r->text));
	if (dn->cur == 0 && r->text != NULL && strcmp(dn->reason, r->text) != 0) {
		/* the best host's answer changed (refused -> timeout): say so */
		snprintf(dn->reason, sizeof(dn->reason), "%s", r->text);
		ob_down_publish(dn->o);
	}
	smtp_client_free(&dn->probe);
	if (++dn->cur < dn->nt) {
		ob_probe_start(dn);   /* the next host of this round */
		return;
	}
	ob_down_schedule(dn);
}

static void
ob_probe_start(struct ob_down *dn)
{
	struct smtp_client_opts opts;

	ob_client_opts(dn->o, dn->t[dn->cur].addr, dn->port, &opts);
	opts.tls = SMTP_CLIENT_TLS_NONE;   /* is anyone there? nothing more */
	opts.quiet = 1;                    /* one line a probe round would be noise */
	if (opts.timeouts.connect > 10000)
		opts.timeouts.connect = 10000;   /* a probe is repeated anyway */
	opts.timeouts.greeting = 30000;
	opts.timeouts.helo = 30000;
	dn->probe = smtp_client_new(dn->o->base, &opts, ob_probe_ready, dn);
}

static void
ob_probe_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ob_down *dn = arg;

	dn->cur = 0;
	ob_probe_start(dn);
}

static void
ob_down_schedule(struct ob_down *dn)
{
	struct timeval tv = { dn->o->cf->probe_interval, 0 };   /* at least 1s (conf) */

	evtimer_add(dn->timer, &tv);
}

void
ob_down_mark(struct outbound *o, const char *domain, const struct mx_list *targets, int port,
	     const char *reason)
{
	struct ob_down *dn = ob_down_find(o, domain);
	size_t n = mx_list_count(targets);

	if (dn != NULL || n == 0)
		return;
	dn = xcalloc(1, sizeof(*dn));
	dn->o = o;
	dn->domain = xstrdup(domain);
	dn->t = xcalloc(n, sizeof(*dn->t));
	for (size_t i = 0; i < n; i++) {
		const struct mx_target *t = mx_list_get(targets, i);

		dn->t[i].host = xstrdup(t->host);
		snprintf(dn->t[i].addr, sizeof(dn->t[i].addr), "%s", t->addr);
	}
	dn->nt = n;
	dn->port = port;
	dn->since = time(NULL);
	snprintf(dn->reason, sizeof(dn->reason), "%s", reason && *reason ? reason : "no answer");
	dn->timer = evtimer_new(o->base, ob_probe_cb, dn);
	dn->next = o->down;
	o->down = dn;
	ob_down_publish(o);
	log_msg(NULL, "event=probe domain=%s relay=%s[%s]:%d hosts=%zu status=down every=%us reason=%s",
		domain, dn->t[0].host, dn->t[0].addr, port, n, o->cf->probe_interval, log_q(dn->reason));
	ob_down_schedule(dn);
}

int
ob_down_check(struct outbound *o, const char *domain)
{
	return ob_down_find(o, domain) != NULL;
}

void
ob_down_forget(struct outbound *o, const char *domain)
{
	struct ob_down *dn = ob_down_find(o, domain);

	if (dn == NULL)
		return;
	ob_down_unlink(o, dn);
	ob_down_free(dn);
	ob_down_publish(o);
}

void
ob_down_free_all(struct outbound *o)
{
	while (o->down) {
		struct ob_down *dn = o->down;

		o->down = dn->next;
		ob_down_free(dn);
	}
	ob_down_publish(o);
}
