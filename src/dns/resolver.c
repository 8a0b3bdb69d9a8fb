/*
 * resolver: libunbound lookups completed on the libevent loop (see
 * resolver.h). libunbound resolves on its own background thread
 * (ub_ctx_async(ctx, 1)); without a thread it would fork(2) a copy of the
 * whole server instead. Answers come back through a pipe, ub_fd(), which a
 * persistent read event drains with ub_process() on the loop thread.
 *
 * libunbound's callbacks only record an answer and move its query to the
 * done list; user callbacks run afterwards from resolver_dispatch, outside
 * ub_process, so a user callback may start, cancel or free anything,
 * including the resolver itself. Each query carries a timer that bounds it
 * whatever libunbound does.
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unbound.h>

#include "dns/resolver.h"
#include "util/log.h"
#include "util/xalloc.h"

#define RR_A 1
#define RR_MX 15
#define RR_AAAA 28
#define CLASS_IN 1
#define RCODE_NXDOMAIN 3

/* One libunbound lookup of a query: MX, or A or AAAA. */
struct resolver_sub {
	struct resolver_query *q;
	int rrtype;
	int async_id;
	int pending;
	enum resolver_status status;
	const char *error;
	struct resolver_mx *mx;
	char **addrs;
	size_t n;
};

struct resolver_query {
	TAILQ_ENTRY(resolver_query) entry;
	struct resolver *r;
	int done;                       /* on r->done, else on r->active */
	resolver_cb *cb;
	void *arg;
	char *name;
	struct event *timer;
	struct resolver_sub sub[2];
	int nsub, npending;
};

TAILQ_HEAD(resolver_queue, resolver_query);

struct resolver {
	struct event_base *base;
	struct ub_ctx *ctx;
	struct event *fd_ev;            /* ub_fd readable: answers to process */
	struct event *dispatch_ev;      /* done queries that did not need the network */
	struct resolver_queue active, done;
	unsigned timeout_ms;
	int dispatching, dying;
};

static const char *const resolver_rcodes[] = {
	"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
	"YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"
};

const char *
resolver_status_name(enum resolver_status st)
{
	switch (st) {
	case RES_OK:
		return "OK";
	case RES_NXDOMAIN:
		return "NXDOMAIN";
	case RES_NODATA:
		return "NODATA";
	case RES_TEMP:
		return "TEMP";
	}
	return "?";
}

static int
resolver_hostchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int
resolver_mx_rdata_parse(const unsigned char *p, size_t len, uint16_t *pref_r,
			char *host_r, size_t hostsize)
{
	size_t i = 2, o = 0;

	if (p == NULL || len < 3 || hostsize < 2)
		return -1;
	for (;;) {
		size_t n = p[i++];

		if (n == 0)
			break;
		/* 0xc0 would be a compression pointer, 0x40 and 0x80 are
		 * reserved label types: none belongs in libunbound's rdata */
		if (n > 63)
			return -1;
		/* the label and, after it, at least the root label */
		if (i + n >= len)
			return -1;
		/* a name is at most 255 octets in wire format */
		if (i - 2 + n + 1 > 255)
			return -1;
		if (o + (o > 0) + n >= hostsize)
			return -1;
		if (o > 0)
			host_r[o++] = '.';
		for (size_t k = 0; k < n; k++) {
			unsigned char c = p[i + k];

			if (!resolver_hostchar(c))
				return -1;
			host_r[o++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : (char)c;
		}
		i += n;
	}
	if (i != len)
		return -1;
	if (o == 0)
		host_r[o++] = '.';
	host_r[o] = '\0';
	*pref_r = (uint16_t)(p[0] << 8 | p[1]);
	return 0;
}

/* A name we are willing to ask for: LDH (and '_') labels of 1..63
 * characters, at most 253 in all, one trailing dot allowed. */
static int
resolver_name_valid(const char *name)
{
	size_t len = strlen(name), label = 0;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (name[i] == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (!resolver_hostchar((unsigned char)name[i]) || ++label > 63) {
			return 0;
		}
	}
	return label > 0;
}

/* Keep the best RESOLVER_MAX_RECORDS by preference, equal ones in answer
 * order: insertion into a short sorted array. */
static void
resolver_mx_insert(struct resolver_sub *s, uint16_t pref, const char *host)
{
	size_t i;

	if (s->n == RESOLVER_MAX_RECORDS) {
		if (pref >= s->mx[s->n - 1].pref)
			return;
		free(s->mx[--s->n].host);
	}
	for (i = s->n; i > 0 && s->mx[i - 1].pref > pref; i--)
		s->mx[i] = s->mx[i - 1];
	s->mx[i].pref = pref;
	s->mx[i].host = xstrdup(host);
	s->n++;
}

static void
resolver_sub_clear(struct resolver_sub *s)
{
	for (size_t i = 0; i < s->n; i++) {
		if (s->mx)
			free(s->mx[i].host);
		else
			free(s->addrs[i]);
	}
	free(s->mx);
	free(s->addrs);
	s->mx = NULL;
	s->addrs = NULL;
	s->n = 0;
}

/* The records of an answer with data; -1 if any is malformed, since acting
 * on part of a broken MX set could send mail to the wrong host. */
static int
resolver_sub_records(struct resolver_sub *s, const struct ub_result *ub)
{
	char text[RESOLVER_NAME_MAX > INET6_ADDRSTRLEN ? RESOLVER_NAME_MAX : INET6_ADDRSTRLEN];

	if (s->rrtype == RR_MX)
		s->mx = xcalloc(RESOLVER_MAX_RECORDS, sizeof(*s->mx));
	else
		s->addrs = xcalloc(RESOLVER_MAX_RECORDS, sizeof(*s->addrs));
	for (size_t i = 0; ub->data[i] != NULL; i++) {
		const unsigned char *d = (const unsigned char *)ub->data[i];
		size_t len = ub->len[i] < 0 ? 0 : (size_t)ub->len[i];
		uint16_t pref;

		switch (s->rrtype) {
		case RR_MX:
			if (resolver_mx_rdata_parse(d, len, &pref, text, sizeof(text)) < 0)
				return -1;
			resolver_mx_insert(s, pref, text);
			break;
		case RR_A:
		case RR_AAAA:
			if (len != (s->rrtype == RR_A ? 4 : 16))
				return -1;
			if (s->n == RESOLVER_MAX_RECORDS)
				break;
			inet_ntop(s->rrtype == RR_A ? AF_INET : AF_INET6, d, text, sizeof(text));
			s->addrs[s->n++] = xstrdup(text);
			break;
		}
	}
	return 0;
}

static void
resolver_sub_classify(struct resolver_sub *s, int err, const struct ub_result *ub)
{
	s->status = RES_TEMP;
	if (err != 0) {
		s->error = ub_strerror(err);
	} else if (ub == NULL) {
		s->error = "no result";
	} else if (ub->bogus) {
		s->error = "DNSSEC validation failed";
	} else if (ub->rcode == RCODE_NXDOMAIN || ub->nxdomain) {
		s->status = RES_NXDOMAIN;
		s->error = "NXDOMAIN";
	} else if (ub->rcode != 0) {
		/* SERVFAIL, REFUSED, ...: data may be NULL here */
		s->error = ub->rcode < (int)(sizeof(resolver_rcodes) / sizeof(resolver_rcodes[0]))
			   ? resolver_rcodes[ub->rcode] : "DNS error";
	} else if (!ub->havedata || ub->data == NULL || ub->data[0] == NULL) {
		s->status = RES_NODATA;
		s->error = "no records";
	} else if (resolver_sub_records(s, ub) < 0) {
		resolver_sub_clear(s);
		s->error = s->rrtype == RR_MX ? "malformed MX record" : "malformed address record";
	} else {
		s->status = RES_OK;
		s->error = NULL;
	}
}

/* Move a finished query to the done list; it is dispatched later. */
static void
resolver_query_finish(struct resolver_query *q)
{
	struct resolver *r = q->r;

	if (q->timer)
		evtimer_del(q->timer);
	TAILQ_REMOVE(&r->active, q, entry);
	TAILQ_INSERT_TAIL(&r->done, q, entry);
	q->done = 1;
}

static void
resolver_answer_cb(void *mydata, int err, struct ub_result *ub)
{
	struct resolver_sub *s = mydata;
	struct resolver_query *q = s->q;

	s->pending = 0;
	s->async_id = 0;
	resolver_sub_classify(s, err, ub);
	if (ub != NULL)
		ub_resolve_free(ub);
	if (--q->npending == 0)
		resolver_query_finish(q);
}

static void
resolver_query_free(struct resolver_query *q)
{
	for (int i = 0; i < q->nsub; i++)
		resolver_sub_clear(&q->sub[i]);
	if (q->timer)
		event_free(q->timer);
	free(q->name);
	free(q);
}

/* Stop the lookups still running. libunbound never calls back for a
 * cancelled id: the answer, even one already in the pipe, is dropped. */
static void
resolver_query_stop(struct resolver_query *q, const char *why)
{
	for (int i = 0; i < q->nsub; i++) {
		struct resolver_sub *s = &q->sub[i];

		if (!s->pending)
			continue;
		if (q->r->ctx != NULL)
			ub_cancel(q->r->ctx, s->async_id);
		s->pending = 0;
		s->status = RES_TEMP;
		s->error = why;
		q->npending--;
	}
}

/* A+AAAA: addresses if either found some (a failed AAAA must not hide a
 * good A), else the temporary failure, else what both agree on. */
static void
resolver_merge_addrs(struct resolver_query *q, struct resolver_result *res)
{
	struct resolver_sub *a = &q->sub[0], *aaaa = &q->sub[1];
	size_t half = RESOLVER_MAX_RECORDS / 2;
	size_t n4 = a->n, n6 = aaaa->n;

	if (n4 + n6 > 0) {
		/* both families get a fair share when both are plentiful */
		if (n4 > RESOLVER_MAX_RECORDS - (n6 < half ? n6 : half))
			n4 = RESOLVER_MAX_RECORDS - (n6 < half ? n6 : half);
		if (n6 > RESOLVER_MAX_RECORDS - n4)
			n6 = RESOLVER_MAX_RECORDS - n4;
		res->addrs = xcalloc(n4 + n6, sizeof(*res->addrs));
		for (size_t i = 0; i < n4; i++) {
			res->addrs[res->naddrs++] = a->addrs[i];
			a->addrs[i] = NULL;
		}
		for (size_t i = 0; i < n6; i++) {
			res->addrs[res->naddrs++] = aaaa->addrs[i];
			aaaa->addrs[i] = NULL;
		}
		res->status = RES_OK;
	} else if (a->status == RES_TEMP || aaaa->status == RES_TEMP) {
		res->status = RES_TEMP;
		res->error = a->status == RES_TEMP ? a->error : aaaa->error;
	} else if (a->status == RES_NXDOMAIN || aaaa->status == RES_NXDOMAIN) {
		res->status = RES_NXDOMAIN;
		res->error = a->status == RES_NXDOMAIN ? a->error : aaaa->error;
	} else {
		res->status = RES_NODATA;
		res->error = "no records";
	}
}

static struct resolver_result *
resolver_query_result(struct resolver_query *q)
{
	struct resolver_result *res = xcalloc(1, sizeof(*res));
	struct resolver_sub *s = &q->sub[0];

	res->name = q->name;
	q->name = NULL;
	if (s->rrtype != RR_MX) {
		resolver_merge_addrs(q, res);
		return res;
	}
	res->status = s->status;
	res->error = s->error;
	if (s->status == RES_OK) {
		res->mx = s->mx;
		res->nmx = s->n;
		s->mx = NULL;
		s->n = 0;
	}
	return res;
}

static void
resolver_destroy(struct resolver *r)
{
	struct resolver_query *q;

	/* deleting the context first stops its thread: no callback after */
	if (r->ctx != NULL)
		ub_ctx_delete(r->ctx);
	r->ctx = NULL;
	while ((q = TAILQ_FIRST(&r->active)) != NULL) {
		TAILQ_REMOVE(&r->active, q, entry);
		resolver_query_free(q);
	}
	while ((q = TAILQ_FIRST(&r->done)) != NULL) {
		TAILQ_REMOVE(&r->done, q, entry);
		resolver_query_free(q);
	}
	if (r->fd_ev)
		event_free(r->fd_ev);
	if (r->dispatch_ev)
		event_free(r->dispatch_ev);
	r->fd_ev = r->dispatch_ev = NULL;
	if (!r->dispatching)
		free(r);
}

/* Hand finished queries to their callbacks. A callback may free the
 * resolver; the loop then stops and the struct goes last. */
static void
resolver_dispatch(struct resolver *r)
{
	struct resolver_query *q;
	int outer = r->dispatching;

	r->dispatching = 1;
	while (!r->dying && (q = TAILQ_FIRST(&r->done)) != NULL) {
		resolver_cb *cb = q->cb;
		void *arg = q->arg;
		struct resolver_result *res;

		TAILQ_REMOVE(&r->done, q, entry);
		res = resolver_query_result(q);
		resolver_query_free(q);
		cb(res, arg);
	}
	if (outer)
		return;
	r->dispatching = 0;
	if (r->dying)
		free(r);
}

static void
resolver_fd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct resolver *r = arg;
	int err = ub_process(r->ctx);

	/* a broken pipe to the resolver thread: pending queries time out */
	if (err != 0)
		log_err(NULL, "dns: ub_process: %s", ub_strerror(err));
	resolver_dispatch(r);
}

static void
resolver_dispatch_cb(evutil_socket_t fd, short what, void *arg)
{
	resolver_dispatch(arg);
}

static void
resolver_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct resolver_query *q = arg;
	struct resolver *r = q->r;

	resolver_query_stop(q, "timeout");
	resolver_query_finish(q);
	resolver_dispatch(r);
}

static struct resolver_query *
resolver_query_start(struct resolver *r, const char *name, const int *types, int ntypes,
		     resolver_cb *cb, void *arg)
{
	struct resolver_query *q = xcalloc(1, sizeof(*q));
	struct timeval tv = { r->timeout_ms / 1000, (r->timeout_ms % 1000) * 1000 };

	q->r = r;
	q->cb = cb;
	q->arg = arg;
	q->name = xstrdup(name);
	q->nsub = ntypes;
	TAILQ_INSERT_TAIL(&r->active, q, entry);
	for (int i = 0; i < ntypes; i++) {
		q->sub[i].q = q;
		q->sub[i].rrtype = types[i];
	}
	if (!resolver_name_valid(name)) {
		for (int i = 0; i < ntypes; i++) {
			q->sub[i].status = RES_NXDOMAIN;
			q->sub[i].error = "invalid domain name";
		}
		goto now;
	}
	for (int i = 0; i < ntypes; i++) {
		struct resolver_sub *s = &q->sub[i];
		int err = ub_resolve_async(r->ctx, name, s->rrtype, CLASS_IN, s,
					   resolver_answer_cb, &s->async_id);

		if (err != 0) {
			resolver_query_stop(q, ub_strerror(err));
			s->status = RES_TEMP;
			s->error = ub_strerror(err);
			goto now;
		}
		s->pending = 1;
		q->npending++;
	}
	q->timer = evtimer_new(r->base, resolver_timeout_cb, q);
	evtimer_add(q->timer, &tv);
	return q;
now:
	/* never call back from inside the caller's own call */
	resolver_query_finish(q);
	event_active(r->dispatch_ev, 0, 0);
	return q;
}

struct resolver_query *
resolver_mx(struct resolver *r, const char *domain, resolver_cb *cb, void *arg)
{
	static const int types[] = { RR_MX };

	return resolver_query_start(r, domain, types, 1, cb, arg);
}

struct resolver_query *
resolver_addr(struct resolver *r, const char *host, resolver_cb *cb, void *arg)
{
	static const int types[] = { RR_A, RR_AAAA };

	return resolver_query_start(r, host, types, 2, cb, arg);
}

void
resolver_cancel(struct resolver *r, struct resolver_query **qp)
{
	struct resolver_query *q = *qp;

	if (q == NULL)
		return;
	*qp = NULL;
	resolver_query_stop(q, "cancelled");
	TAILQ_REMOVE(q->done ? &r->done : &r->active, q, entry);
	resolver_query_free(q);
}

void
resolver_result_free(struct resolver_result **resp)
{
	struct resolver_result *res = *resp;

	if (res == NULL)
		return;
	*resp = NULL;
	for (size_t i = 0; i < res->nmx; i++)
		free(res->mx[i].host);
	for (size_t i = 0; i < res->naddrs; i++)
		free(res->addrs[i]);
	free(res->mx);
	free(res->addrs);
	free(res->name);
	free(res);
}

void
resolver_set_timeout(struct resolver *r, unsigned msec)
{
	r->timeout_ms = msec ? msec : 1;
}

/* "HOST@PORT" or "HOST" with a numeric HOST, into libunbound's "HOST@PORT". */
static int
resolver_parse_spec(const char *spec, char *fwd, size_t fwdlen, char *err, size_t errlen)
{
	const char *at = strrchr(spec, '@');
	size_t hostlen = at ? (size_t)(at - spec) : strlen(spec);
	unsigned char addr[16];
	char host[INET6_ADDRSTRLEN];
	unsigned long port = 53;

	if (hostlen == 0 || hostlen >= sizeof(host)) {
		snprintf(err, errlen, "dns resolver \"%s\": expected system or HOST@PORT", spec);
		return -1;
	}
	memcpy(host, spec, hostlen);
	host[hostlen] = '\0';
	if (inet_pton(AF_INET, host, addr) != 1 && inet_pton(AF_INET6, host, addr) != 1) {
		snprintf(err, errlen, "dns resolver \"%s\": %s is not a numeric IP address", spec, host);
		return -1;
	}
	if (at != NULL) {
		char *end;

		port = strtoul(at + 1, &end, 10);
		if (at[1] < '0' || at[1] > '9' || *end != '\0' || port == 0 || port > 65535) {
			snprintf(err, errlen, "dns resolver \"%s\": bad port", spec);
			return -1;
		}
	}
	snprintf(fwd, fwdlen, "%s@%lu", host, port);
	return 0;
}

/* Options set on every context. No trust anchor yet, so no validator.
 * "test." is one of unbound's default local zones (always NXDOMAIN, RFC
 * 6761); it goes to the forwarder like any name, so that a test DNS server
 * can serve it ("local-zone: test. nodefault" is ignored by libunbound's
 * ub_ctx_set_option; "transparent" works). A forwarder marked unreachable
 * after timeouts is probed again soon instead of failing every query for
 * unbound's default 15 minutes. Each lookup is bounded by our own timer
 * rather than by a lower infra-cache-max-rtt, which makes a merely slow
 * forwarder count as dead. */
static const char *const resolver_options[][2] = {
	{ "module-config:", "iterator" },
	{ "local-zone:", "test. transparent" },
	{ "infra-keep-probing:", "yes" },
	{ "infra-host-ttl:", "60" },
};

static int
resolver_configure(struct ub_ctx *ctx, const char *spec, char *err, size_t errlen)
{
	char fwd[INET6_ADDRSTRLEN + 8];
	int rc;

	for (size_t i = 0; i < sizeof(resolver_options) / sizeof(resolver_options[0]); i++) {
		rc = ub_ctx_set_option(ctx, resolver_options[i][0], resolver_options[i][1]);
		if (rc != 0) {
			snprintf(err, errlen, "dns: option %s %s: %s", resolver_options[i][0],
				 resolver_options[i][1], ub_strerror(rc));
			return -1;
		}
	}
	if (strcmp(spec, "system") == 0) {
		if ((rc = ub_ctx_resolvconf(ctx, NULL)) != 0) {
			snprintf(err, errlen, "dns: /etc/resolv.conf: %s", ub_strerror(rc));
			return -1;
		}
		if ((rc = ub_ctx_hosts(ctx, NULL)) != 0) {
			snprintf(err, errlen, "dns: /etc/hosts: %s", ub_strerror(rc));
			return -1;
		}
		return 0;
	}
	if (resolver_parse_spec(spec, fwd, sizeof(fwd), err, errlen) < 0)
		return -1;
	if ((rc = ub_ctx_set_fwd(ctx, fwd)) != 0) {
		snprintf(err, errlen, "dns resolver \"%s\": %s", spec, ub_strerror(rc));
		return -1;
	}
	return 0;
}

struct resolver *
resolver_new(struct event_base *base, const char *spec, char *err, size_t errlen)
{
	struct resolver *r;
	struct ub_ctx *ctx;
	int rc;

	if ((ctx = ub_ctx_create()) == NULL) {
		snprintf(err, errlen, "dns: cannot create a libunbound context");
		return NULL;
	}
	if (resolver_configure(ctx, spec, err, errlen) < 0) {
		ub_ctx_delete(ctx);
		return NULL;
	}
	if ((rc = ub_ctx_async(ctx, 1)) != 0) {
		snprintf(err, errlen, "dns: async mode: %s", ub_strerror(rc));
		ub_ctx_delete(ctx);
		return NULL;
	}
	r = xcalloc(1, sizeof(*r));
	r->base = base;
	r->ctx = ctx;
	r->timeout_ms = RESOLVER_TIMEOUT_MS;
	TAILQ_INIT(&r->active);
	TAILQ_INIT(&r->done);
	r->fd_ev = event_new(base, ub_fd(ctx), EV_READ | EV_PERSIST, resolver_fd_cb, r);
	r->dispatch_ev = event_new(base, -1, 0, resolver_dispatch_cb, r);
	if (r->fd_ev == NULL || r->dispatch_ev == NULL || event_add(r->fd_ev, NULL) < 0) {
		snprintf(err, errlen, "dns: cannot watch the libunbound pipe");
		resolver_destroy(r);
		return NULL;
	}
	return r;
}

void
resolver_free(struct resolver **rp)
{
	struct resolver *r = *rp;

	if (r == NULL)
		return;
	*rp = NULL;
	if (r->dispatching)
		r->dying = 1;
	resolver_destroy(r);
}
