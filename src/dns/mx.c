/*
 * mx: RFC 5321 5.1 MX selection and self-pruning (see mx.h). Pure logic:
 * the resolver has done every lookup, so this file only orders, prunes and
 * expands, and the tests can drive it with tables and a seeded random
 * source. Everything it is given may come from a hostile DNS answer, so the
 * work is bounded by MX_MAX_HOSTS, MX_MAX_HOST_ADDRS and MX_MAX_TARGETS.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "dns/mx.h"
#include "util/log.h"
#include "util/xalloc.h"

#define MX_LABEL_MAX 63

/* A numeric address in canonical text. */
struct mx_addr {
	char s[INET6_ADDRSTRLEN];
};

struct mx_list {
	struct mx_target targets[MX_MAX_TARGETS];
	size_t n;
	int self_pref;
};

/* A valid host in the selection: its record and its name's length. */
struct mx_cand {
	uint16_t pref;
	size_t idx;
	size_t namelen;
};

/* Length of a host name without its trailing dot, or 0 when it is not a
 * host name at all: empty, ".", over-long, empty or over-long labels, or
 * bytes that have no business in a host name (they would end up in log
 * lines and in TLS SNI). */
static size_t
mx_name_len(const char *name)
{
	size_t len, label = 0;

	if (name == NULL)
		return 0;
	len = strnlen(name, MX_NAME_MAX + 2);
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > MX_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = name[i];

		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			   (c >= '0' && c <= '9') || c == '-' || c == '_') {
			if (++label > MX_LABEL_MAX)
				return 0;
		} else {
			return 0;
		}
	}
	return len;
}

/* The canonical text of a numeric address, so that "::1" and "0::1", or
 * "::ffff:192.0.2.1" and "192.0.2.1", compare equal. buf holds
 * INET6_ADDRSTRLEN bytes. Returns the family, or 0 when s is no address. */
static int
mx_addr_canon(const char *s, char *buf)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (s == NULL)
		return 0;
	if (inet_pton(AF_INET, s, &a4) == 1) {
		inet_ntop(AF_INET, &a4, buf, INET6_ADDRSTRLEN);
		return AF_INET;
	}
	if (inet_pton(AF_INET6, s, &a6) != 1)
		return 0;
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		memcpy(&a4, &a6.s6_addr[12], sizeof(a4));
		inet_ntop(AF_INET, &a4, buf, INET6_ADDRSTRLEN);
		return AF_INET;
	}
	inet_ntop(AF_INET6, &a6, buf, INET6_ADDRSTRLEN);
	return AF_INET6;
}

/* Who we are, in the form the comparisons need. */
struct mx_me {
	const char *name;
	size_t namelen;                 /* 0: no usable hostname */
	struct mx_addr *addrs;          /* canonical listening addresses */
	size_t naddrs;
};

static void
mx_me_init(struct mx_me *me, const struct mx_self *self)
{
	memset(me, 0, sizeof(*me));
	if (self == NULL)
		return;
	me->name = self->hostname;
	me->namelen = mx_name_len(self->hostname);
	if (self->addrs == NULL || self->naddrs == 0)
		return;
	me->addrs = xcalloc(self->naddrs, sizeof(*me->addrs));
	for (size_t i = 0; i < self->naddrs; i++) {
		if (mx_addr_canon(self->addrs[i], me->addrs[me->naddrs].s) != 0)
			me->naddrs++;
	}
}

/* Is h this server: its name ours, or one of its addresses? */
static int
mx_is_me(const struct mx_host *h, size_t namelen, const struct mx_me *me)
{
	char buf[INET6_ADDRSTRLEN];
	size_t naddrs;

	if (me->namelen != 0 && me->namelen == namelen &&
	    strncasecmp(me->name, h->name, namelen) == 0)
		return 1;
	naddrs = h->addrs == NULL ? 0 : h->naddrs;
	if (naddrs > MX_MAX_HOST_ADDRS)
		naddrs = MX_MAX_HOST_ADDRS;
	for (size_t i = 0; i < naddrs && me->naddrs > 0; i++) {
		if (mx_addr_canon(h->addrs[i], buf) == 0)
			continue;
		for (size_t j = 0; j < me->naddrs; j++) {
			if (strcmp(buf, me->addrs[j].s) == 0)
				return 1;
		}
	}
	return 0;
}

static int
mx_cand_cmp(const void *a, const void *b)
{
	const struct mx_cand *x = a, *y = b;

	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	/* input order first, so the shuffle alone decides among equals */
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Uniform in [0, n), without modulo bias. A broken source that keeps
 * returning rejected values cannot hang us: after a few tries we accept. */
static size_t
mx_uniform(mx_random_fn *rnd, void *arg, uint32_t n)
{
	uint32_t r, min;
	int tries = 0;

	if (n <= 1)
		return 0;
	min = -n % n;
	do
		r = rnd(arg);
	while (r < min && ++tries < 16);
	return r % n;
}

/* Random order among each run of equal preferences (RFC 5321 5.1). */
static void
mx_shuffle(struct mx_cand *c, size_t n, mx_random_fn *rnd, void *arg)
{
	size_t a = 0, b;

	while (a < n) {
		for (b = a + 1; b < n && c[b].pref == c[a].pref; b++)
			;
		for (size_t i = b - 1; i > a; i--) {
			size_t j = a + mx_uniform(rnd, arg, (uint32_t)(i - a + 1));
			struct mx_cand t = c[i];

			c[i] = c[j];
			c[j] = t;
		}
		a = b;
	}
}

/* Append host h's addresses to the list, skipping unparsable ones and ones
 * already in it, until the list is full. */
static void
mx_expand(struct mx_list *list, const struct mx_host *h, size_t namelen)
{
	char buf[INET6_ADDRSTRLEN];
	size_t naddrs = h->addrs == NULL ? 0 : h->naddrs;

	if (naddrs > MX_MAX_HOST_ADDRS)
		naddrs = MX_MAX_HOST_ADDRS;
	for (size_t i = 0; i < naddrs && list->n < MX_MAX_TARGETS; i++) {
		struct mx_target *t;
		int family = mx_addr_canon(h->addrs[i], buf);
		size_t k;

		if (family == 0)
			continue;
		for (k = 0; k < list->n; k++) {
			if (strcmp(list->targets[k].addr, buf) == 0)
				break;
		}
		if (k < list->n)
			continue;
		t = &list->targets[list->n++];
		t->host = xstrndup(h->name, namelen);
		t->addr = xstrdup(buf);
		t->family = family;
		t->pref = h->pref;
	}
}

static int
mx_is_null(const struct mx_host *hosts, size_t nhosts)
{
	const char *name = hosts[0].name;

	return nhosts == 1 && hosts[0].pref == 0 && name != NULL &&
	       (name[0] == '\0' || strcmp(name, ".") == 0);
}

enum mx_err
mx_select(const struct mx_host *hosts, size_t nhosts, const struct mx_self *self,
	  mx_random_fn *rnd, void *rnd_arg, struct mx_list **list_r)
{
	struct mx_me me;
	struct mx_cand *cand;
	struct mx_list *list;
	size_t ncand = 0, nkeep = 0;
	long self_pref = -1;
	int temp = 0;

	*list_r = NULL;
	if (hosts == NULL || nhosts == 0)
		return MX_ERR_NOHOST;
	if (mx_is_null(hosts, nhosts))
		return MX_ERR_NULLMX;
	if (nhosts > MX_MAX_HOSTS)
		nhosts = MX_MAX_HOSTS;
	if (rnd == NULL)
		rnd = mx_random_default;

	/* every valid host, and our own best preference among them */
	mx_me_init(&me, self);
	cand = xcalloc(nhosts, sizeof(*cand));
	for (size_t i = 0; i < nhosts; i++) {
		size_t len = mx_name_len(hosts[i].name);

		if (len == 0)
			continue;
		if (mx_is_me(&hosts[i], len, &me) &&
		    (self_pref < 0 || hosts[i].pref < self_pref))
			self_pref = hosts[i].pref;
		cand[ncand].pref = hosts[i].pref;
		cand[ncand].idx = i;
		cand[ncand].namelen = len;
		ncand++;
	}
	free(me.addrs);

	/* self-pruning: only hosts strictly better than we are remain */
	for (size_t i = 0; i < ncand; i++) {
		if (self_pref < 0 || cand[i].pref < self_pref)
			cand[nkeep++] = cand[i];
	}
	if (nkeep == 0) {
		free(cand);
		if (self_pref < 0)
			return MX_ERR_NOHOST;
		return self != NULL && self->backup ? MX_ERR_SELF_BACKUP : MX_ERR_LOOP;
	}

	qsort(cand, nkeep, sizeof(*cand), mx_cand_cmp);
	mx_shuffle(cand, nkeep, rnd, rnd_arg);

	list = xcalloc(1, sizeof(*list));
	list->self_pref = (int)self_pref;
	for (size_t i = 0; i < nkeep; i++) {
		const struct mx_host *h = &hosts[cand[i].idx];

		if (h->temp_fail)
			temp = 1;
		mx_expand(list, h, cand[i].namelen);
	}
	free(cand);
	if (list->n == 0) {
		mx_list_free(&list);
		return temp ? MX_ERR_TEMP : MX_ERR_NOHOST;
	}
	*list_r = list;
	return MX_OK;
}

struct mx_host
mx_host_implicit(const char *domain)
{
	struct mx_host h;

	memset(&h, 0, sizeof(h));
	h.pref = 0;
	h.name = domain;
	return h;
}

size_t
mx_list_count(const struct mx_list *list)
{
	return list == NULL ? 0 : list->n;
}

const struct mx_target *
mx_list_get(const struct mx_list *list, size_t i)
{
	if (list == NULL || i >= list->n) {
		log_panic(NULL, "event=bug reason=\"mx_list_get: index %zu out of range\"", i);
	}
	return &list->targets[i];
}

int
mx_list_self_pref(const struct mx_list *list)
{
	return list == NULL ? -1 : list->self_pref;
}

void
mx_list_free(struct mx_list **listp)
{
	struct mx_list *list = *listp;

	if (list == NULL)
		return;
	for (size_t i = 0; i < list->n; i++) {
		free(list->targets[i].host);
		free(list->targets[i].addr);
	}
	free(list);
	*listp = NULL;
}

static const struct {
	const char *status;
	const char *before, *after;     /* the text around the domain */
} mx_errs[] = {
	[MX_OK]              = { "2.0.0", "MX hosts found for ", "" },
	[MX_ERR_NULLMX]      = { "5.1.10", "", " does not accept mail (null MX)" },
	[MX_ERR_LOOP]        = { "5.4.6", "mail for ", " loops back to myself" },
	[MX_ERR_SELF_BACKUP] = { "4.4.4", "no MX host of ", " better than myself" },
	[MX_ERR_TEMP]        = { "4.4.3", "temporary failure looking up the MX hosts of ", "" },
	[MX_ERR_NOHOST]      = { "5.4.4", "unable to route: no address for any MX host of ", "" },
};

static int
mx_err_known(enum mx_err err)
{
	return (unsigned)err < sizeof(mx_errs) / sizeof(mx_errs[0]);
}

const char *
mx_err_status(enum mx_err err)
{
	return mx_err_known(err) ? mx_errs[err].status : "4.4.0";
}

int
mx_err_is_temp(enum mx_err err)
{
	return mx_err_status(err)[0] == '4';
}

void
mx_err_format(enum mx_err err, const char *domain, char *buf, size_t size)
{
	const char *d = domain != NULL ? domain : "";

	if (!mx_err_known(err))
		snprintf(buf, size, "4.4.0 routing failure for %s", d);
	else
		snprintf(buf, size, "%s %s%s%s", mx_errs[err].status, mx_errs[err].before, d,
			 mx_errs[err].after);
}

uint32_t
mx_random_default(void *arg)
{
	return arc4random();
}
