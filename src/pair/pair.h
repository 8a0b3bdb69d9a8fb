/*
 * pair: the primary <-> backup relationship seen from this server.
 * Here: who may ask a backup for ETRN. [relay] etrn_clients when set
 * (addresses or networks, and nothing else, loopback included); otherwise
 * loopback and the relay destination — the addresses of [relay] primary,
 * or when it is unset of the relay domains' MX hosts — looked up at start,
 * every PAIR_ACL_REFRESH seconds, and again (at most every
 * PAIR_ACL_RETRY seconds) when an unknown address asks, so a primary that
 * moved is let in on its next try.
 * Public: pair_acl_new, pair_acl_allowed, pair_acl_free.
 */
#ifndef TANDEM_PAIR_H
#define TANDEM_PAIR_H
#include <sys/socket.h>

#define PAIR_ACL_REFRESH 600
#define PAIR_ACL_RETRY 30

struct config;
struct event_base;
struct pair_acl;

/* NULL only when the resolver cannot be set up (*error_r says why). */
struct pair_acl *pair_acl_new(struct event_base *base, const struct config *const *cf,
			      const char **error_r);
int pair_acl_allowed(struct pair_acl *a, const struct sockaddr *sa);
void pair_acl_free(struct pair_acl **ap);

#endif
