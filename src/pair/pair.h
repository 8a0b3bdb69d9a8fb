/*
 * pair: the primary <-> backup relationship seen from this server.
 * - ETRN notify (pair_notify.c): a primary that starts tells its
 *   [server] backups, domain by domain, to deliver what they hold.
 * - ETRN access (pair_acl.c): who may ask this backup for ETRN.
 *   [relay] etrn_clients when set (addresses or networks, and nothing
 *   else, loopback included); otherwise loopback and the relay destination
 *   — the addresses of [relay] primary, or when it is unset of the relay
 *   domains' MX hosts — looked up at start, every PAIR_ACL_REFRESH seconds,
 *   and again (at most every PAIR_ACL_RETRY seconds) when an unknown
 *   address asks, so a primary that moved is let in on its next try.
 * Public: pair_new, pair_free, pair_notify_backups, pair_etrn_allowed.
 */
#ifndef TANDEM_PAIR_H
#define TANDEM_PAIR_H
#include <sys/socket.h>

#define PAIR_ACL_REFRESH 600
#define PAIR_ACL_RETRY 30

struct config;
struct event_base;
struct pair;

/* cf stays valid (and is updated in place by reloads). NULL only when the
 * resolver cannot be set up (*error_r says why). */
struct pair *pair_new(struct event_base *base, const struct config *cf, const char **error_r);
void pair_free(struct pair **pp);
/* A primary is back: send ETRN for each domain to each [server] backups
 * host, asking again every probe_interval those that cannot be reached. */
void pair_notify_backups(struct pair *p, const char *const *domains, int ndomains);
/* May sa send us ETRN? */
int pair_etrn_allowed(struct pair *p, const struct sockaddr *sa);

#endif
