/*
 * resolver: asynchronous DNS lookups on libunbound, completed on the libevent
 * loop. One resolver per event loop: MX lookups for a mail domain and
 * address lookups (A and AAAA together) for a host, each answer classified
 * where it happens: found, the name does not exist (permanent, 5.1.2), the
 * name exists without such records (for MX: use the implicit MX), or a
 * temporary failure (SERVFAIL, timeout, network: 4.4.3, retry later).
 * Callbacks always run later on the loop, never inside the call that
 * started the query, and never after resolver_cancel or resolver_free.
 * Public: resolver_new, resolver_free, resolver_set_timeout, resolver_mx,
 * resolver_addr, resolver_cancel, resolver_result_free,
 * resolver_status_name, resolver_mx_rdata_parse.
 */
#ifndef TANDEM_RESOLVER_H
#define TANDEM_RESOLVER_H
#include <stddef.h>
#include <stdint.h>

#define RESOLVER_MAX_RECORDS 64         /* MX records or addresses kept per answer */
#define RESOLVER_NAME_MAX 254           /* a host name in text, with its NUL */
#define RESOLVER_TIMEOUT_MS 30000       /* default bound on one lookup */

struct event_base;
struct resolver;
struct resolver_query;

enum resolver_status {
	RES_OK,                 /* records found */
	RES_NXDOMAIN,           /* the name does not exist, or is not a valid name */
	RES_NODATA,             /* the name exists, with no record of that type */
	RES_TEMP                /* SERVFAIL, timeout, network, malformed answer */
};

struct resolver_mx {
	uint16_t pref;
	char *host;             /* lower case, no trailing dot; "." is a null MX (RFC 7505) */
};

struct resolver_result {
	enum resolver_status status;
	char *name;             /* the name asked for, as given */
	const char *error;      /* unless RES_OK, why, for logs: "SERVFAIL", "timeout", ... */
	/* resolver_mx: by preference, the best RESOLVER_MAX_RECORDS */
	struct resolver_mx *mx;
	size_t nmx;
	/* resolver_addr: numeric, IPv4 first, then IPv6 */
	char **addrs;
	size_t naddrs;
};

/* The callback owns res and frees it with resolver_result_free. The query
 * handle is gone once the callback runs. */
typedef void resolver_cb(struct resolver_result *res, void *arg);

/* spec is `[dns] resolver`: "system" (/etc/resolv.conf and /etc/hosts) or
 * "HOST@PORT" with a numeric IPv4 or IPv6 HOST ("127.0.0.1@5353"; a bare
 * HOST means port 53). NULL on error, with a message in err. */
struct resolver *resolver_new(struct event_base *base, const char *spec, char *err, size_t errlen);
/* Pending queries are dropped: their callbacks are never called. May be
 * called from inside a callback. */
void resolver_free(struct resolver **rp);
/* Bound on each lookup started from now on; past it the result is RES_TEMP
 * "timeout". */
void resolver_set_timeout(struct resolver *r, unsigned msec);

/* Look up the MX records of domain, or the A and AAAA records of host.
 * The handle is valid until the callback runs or the query is cancelled. */
struct resolver_query *resolver_mx(struct resolver *r, const char *domain, resolver_cb *cb, void *arg);
struct resolver_query *resolver_addr(struct resolver *r, const char *host, resolver_cb *cb, void *arg);
/* Drop a pending query: its callback is never called. Sets *qp to NULL. */
void resolver_cancel(struct resolver *r, struct resolver_query **qp);

void resolver_result_free(struct resolver_result **resp);
/* "OK", "NXDOMAIN", "NODATA", "TEMP" */
const char *resolver_status_name(enum resolver_status st);

/* MX rdata as it comes from libunbound: a 2-byte preference, then the
 * exchange as an uncompressed wire-format name. The exchange goes to host_r
 * in lower case without the trailing dot, "." for the root. Labels must be
 * letters, digits, '-' or '_'. Returns 0, or -1 when malformed. */
int resolver_mx_rdata_parse(const unsigned char *rdata, size_t len, uint16_t *pref_r,
			    char *host_r, size_t hostsize);

#endif
