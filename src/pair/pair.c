/*
 * pair: the module's handle (see pair.h): one resolver and one TLS client
 * context for the ETRN notify and the ETRN access list.
 */
#include <stdio.h>
#include <stdlib.h>

#include "dns/resolver.h"
#include "pair/pair_int.h"
#include "util/tls.h"
#include "util/xalloc.h"

struct pair *
pair_new(struct event_base *base, const struct config *cf, const char **error_r)
{
	static __thread char err[300];
	struct pair *p = xcalloc(1, sizeof(*p));

	p->base = base;
	p->cf = cf;
	if ((p->res = resolver_new(base, cf->dns_resolver, err, sizeof(err))) == NULL) {
		*error_r = err;
		free(p);
		return NULL;
	}
	p->tls = tls_client_ctx_new();
	pair_acl_start(p);
	return p;
}

void
pair_free(struct pair **pp)
{
	struct pair *p = *pp;

	if (p == NULL)
		return;
	pair_notify_free_all(p);
	pair_acl_stop(p);
	resolver_free(&p->res);
	if (p->tls)
		SSL_CTX_free(p->tls);
	free(p);
	*pp = NULL;
}
