/*
 * pair_acl: who may send ETRN to this backup (see pair.h).
 * Module-internal: pair_acl_start, pair_acl_stop; public: pair_etrn_allowed.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dns/resolver.h"
#include "pair/pair_int.h"
#include "util/log.h"
#include "util/xalloc.h"

static void
pair_acl_add(struct pair *a, const char *numeric)
{
	if (a->next.n < CONFIG_MAX_LIST && config_parse_is_ip(numeric) &&
	    config_netlist_parse_one(numeric, &a->next.v[a->next.n]) == 0)
		a->next.n++;
}

static void
pair_acl_query_done(struct pair *a)
{
	if (--a->pending > 0)
		return;
	a->known = a->next;
	log_debug(NULL, "event=etrn_clients addresses=%d", a->known.n);
}

static void
pair_acl_addr_cb(struct resolver_result *r, void *arg)
{
	struct pair *a = arg;

	for (size_t i = 0; r->status == RES_OK && i < r->naddrs; i++)
		pair_acl_add(a, r->addrs[i]);
	resolver_result_free(&r);
	pair_acl_query_done(a);
}

static void
pair_acl_host(struct pair *a, const char *host)
{
	if (config_parse_is_ip(host)) {
		pair_acl_add(a, host);
		return;
	}
	a->pending++;
	resolver_addr(a->res, host, pair_acl_addr_cb, a);
}

static void
pair_acl_mx_cb(struct resolver_result *r, void *arg)
{
	struct pair *a = arg;

	for (size_t i = 0; r->status == RES_OK && i < r->nmx; i++)
		if (strcmp(r->mx[i].host, ".") != 0)
			pair_acl_host(a, r->mx[i].host);
	if (r->status == RES_NODATA)
		pair_acl_host(a, r->name);   /* the implicit MX */
	resolver_result_free(&r);
	pair_acl_query_done(a);
}

static void
pair_acl_refresh(struct pair *a)
{
	const struct config *cf = a->cf;

	if (a->pending > 0 || a->res == NULL || cf->relay_domains.n == 0)
		return;
	a->last_start = time(NULL);
	a->next.n = 0;
	a->pending = 1;   /* held until every query is started */
	if (cf->relay_primary != NULL) {
		char host[256];
		int port;

		if (config_parse_hostport(cf->relay_primary, host, sizeof(host), &port) != 0)
			snprintf(host, sizeof(host), "%s", cf->relay_primary);
		if (host[0] == '[') {   /* "[2001:db8::1]" */
			memmove(host, host + 1, strlen(host));
			host[strcspn(host, "]")] = '\0';
		}
		pair_acl_host(a, host);
	} else {
		for (int i = 0; i < cf->relay_domains.n; i++) {
			a->pending++;
			resolver_mx(a->res, cf->relay_domains.v[i], pair_acl_mx_cb, a);
		}
	}
	pair_acl_query_done(a);
}

static void
pair_acl_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pair *a = arg;
	struct timeval tv = { PAIR_ACL_REFRESH, 0 };

	pair_acl_refresh(a);
	evtimer_add(a->acl_ev, &tv);
}

void
pair_acl_start(struct pair *a)
{
	struct timeval now = { 0, 0 };

	a->known.set = a->next.set = 1;
	a->acl_ev = evtimer_new(a->base, pair_acl_timer_cb, a);
	evtimer_add(a->acl_ev, &now);
}

int
pair_etrn_allowed(struct pair *a, const struct sockaddr *sa)
{
	switch (config_etrn_client_allowed(a->cf, sa)) {
	case CONFIG_ETRN_ALLOW:
		return 1;
	case CONFIG_ETRN_DENY:
		return 0;
	case CONFIG_ETRN_DEFAULT:
		break;
	}
	if (config_netlist_match(&a->known, sa))
		return 1;
	if (time(NULL) - a->last_start >= PAIR_ACL_RETRY)
		pair_acl_refresh(a);
	return 0;
}

void
pair_acl_stop(struct pair *a)
{
	if (a->acl_ev)
		event_free(a->acl_ev);
	a->acl_ev = NULL;
}
