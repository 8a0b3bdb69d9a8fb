/*
 * net: numeric addresses and networks — "192.0.2.1", "2001:db8::/32",
 * "127.0.0.0/8" — and matching a socket address against them. IPv4-mapped
 * IPv6 addresses match as IPv4.
 * Public: net_parse_cidr, net_cidr_match, net_is_loopback, net_parse_sockaddr.
 */
#ifndef TANDEM_NET_H
#define TANDEM_NET_H
#include <sys/socket.h>

struct net_cidr {
	int family;                 /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	int bits;
};

/* "ADDR" (all bits) or "ADDR/BITS". 0, or -1 when it is not one. */
int net_parse_cidr(const char *s, struct net_cidr *r);
int net_cidr_match(const struct net_cidr *n, const struct sockaddr *sa);
int net_is_loopback(const struct sockaddr *sa);
/* "192.0.2.1:25" or "[2001:db8::1]:25" (numeric, port 0-65535) into ss.
 * 0, or -1 when it is not one. */
int net_parse_sockaddr(const char *s, struct sockaddr_storage *ss, socklen_t *len_r);

#endif
