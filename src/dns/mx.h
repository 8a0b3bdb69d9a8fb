/*
 * mx: RFC 5321 section 5.1 MX selection, without any DNS I/O. The resolver
 * hands over a domain's MX records with each host's addresses already looked
 * up; mx_select turns them into the ordered list of (host, address) pairs to
 * try: by preference, random among equal preferences, each host expanded to
 * its addresses in the order given. When this server is in the list (by its
 * hostname or by one of its listening addresses) its preference and every
 * worse one are dropped. Null MX (RFC 7505), loops, a backup with nothing
 * better than itself, temporary and permanent lookup failures come back as
 * classified errors with their enhanced status codes.
 * Public: mx_select, mx_host_implicit, mx_list_count, mx_list_get,
 * mx_list_self_pref, mx_list_free, mx_err_status, mx_err_is_temp,
 * mx_err_format, mx_random_default.
 */
#ifndef TANDEM_MX_H
#define TANDEM_MX_H
#include <stddef.h>
#include <stdint.h>

#define MX_MAX_TARGETS 32       /* addresses handed back at most */
#define MX_MAX_HOSTS 4096       /* MX records looked at (a 64 KiB answer holds fewer) */
#define MX_MAX_HOST_ADDRS 64    /* addresses looked at per host */
#define MX_NAME_MAX 253         /* host name in text, without the trailing dot */

enum mx_err {
	MX_OK = 0,
	MX_ERR_NULLMX,          /* 5.1.10 the domain accepts no mail (RFC 7505) */
	MX_ERR_LOOP,            /* 5.4.6 we are the best MX and not a backup */
	MX_ERR_SELF_BACKUP,     /* 4.4.4 we are a backup with no better MX: relay or defer */
	MX_ERR_TEMP,            /* 4.4.3 no address, and some lookup failed temporarily */
	MX_ERR_NOHOST           /* 5.4.4 no MX host has an address */
};

/* One MX record of the domain with what the resolver found for its host. */
struct mx_host {
	uint16_t pref;
	const char *name;               /* exchange; a trailing dot is ignored */
	const char *const *addrs;       /* numeric IPv4/IPv6 addresses, in try order */
	size_t naddrs;
	int temp_fail;                  /* an A or AAAA lookup failed temporarily */
};

/* Who this server is, to find itself in the MX list. */
struct mx_self {
	const char *hostname;           /* [server] hostname; NULL: none */
	const char *const *addrs;       /* listening addresses, numeric; wildcards
					 * (0.0.0.0, ::) should be expanded to the
					 * interface addresses by the caller */
	size_t naddrs;
	int backup;                     /* role = backup */
};

/* One delivery attempt: connect to addr, which belongs to MX host `host`. */
struct mx_target {
	char *host;                     /* MX host name, without the trailing dot */
	char *addr;                     /* canonical numeric address */
	int family;                     /* AF_INET or AF_INET6 */
	uint16_t pref;
};

struct mx_list;

/* A uniform random 32-bit number; arg is the caller's state. */
typedef uint32_t mx_random_fn(void *arg);

/* Select the delivery targets of a domain from its MX records. rnd (NULL:
 * mx_random_default) breaks ties between equal preferences. On MX_OK,
 * *list_r holds at least one target (free it with mx_list_free); on an
 * error *list_r is NULL. No records at all is MX_ERR_NOHOST: a domain
 * without MX records is its own implicit MX, see mx_host_implicit.
 * Invalid records (empty or over-long names) and unparsable addresses are
 * skipped; duplicate addresses are tried once, at their best place. */
enum mx_err mx_select(const struct mx_host *hosts, size_t nhosts, const struct mx_self *self,
		      mx_random_fn *rnd, void *rnd_arg, struct mx_list **list_r);

/* The implicit MX of a domain without MX records (RFC 5321 5.1): the domain
 * itself at preference 0. The caller then fills in its addresses. */
struct mx_host mx_host_implicit(const char *domain);

size_t mx_list_count(const struct mx_list *list);
const struct mx_target *mx_list_get(const struct mx_list *list, size_t i);
/* Our own best preference when we were pruned from the list, else -1. */
int mx_list_self_pref(const struct mx_list *list);
void mx_list_free(struct mx_list **listp);

/* "5.4.6" etc.; "2.0.0" for MX_OK. */
const char *mx_err_status(enum mx_err err);
/* Whether the failure is worth retrying later (4.x.x). */
int mx_err_is_temp(enum mx_err err);
/* "5.4.6 mail for DOMAIN loops back to myself" into buf. */
void mx_err_format(enum mx_err err, const char *domain, char *buf, size_t size);

uint32_t mx_random_default(void *arg);

#endif
