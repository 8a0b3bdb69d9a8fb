/*
 * net: addresses and networks (see net.h).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "util/net.h"

int
net_parse_cidr(const char *s, struct net_cidr *r)
{
	char buf[64];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	int max;

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	memset(r, 0, sizeof(*r));
	if (inet_pton(AF_INET, buf, r->addr) == 1) {
		r->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, r->addr) == 1) {
		r->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	r->bits = max;
	if (slash != NULL) {
		char *end;
		long b = strtol(slash + 1, &end, 10);

		if (slash[1] == '\0' || *end != '\0' || b < 0 || b > max)
			return -1;
		r->bits = (int)b;
	}
	return 0;
}

/* The address bytes of sa, IPv4-mapped IPv6 taken as IPv4. */
static const unsigned char *
net_bytes(const struct sockaddr *sa, int *family_r)
{
	if (sa->sa_family == AF_INET) {
		*family_r = AF_INET;
		return (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a)) {
			*family_r = AF_INET;
			return a->s6_addr + 12;
		}
		*family_r = AF_INET6;
		return a->s6_addr;
	}
	return NULL;
}

int
net_cidr_match(const struct net_cidr *n, const struct sockaddr *sa)
{
	int fam, full, rest;
	const unsigned char *a = net_bytes(sa, &fam);

	if (a == NULL || fam != n->family)
		return 0;
	full = n->bits / 8;
	rest = n->bits % 8;
	if (memcmp(a, n->addr, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((a[full] ^ n->addr[full]) & (0xff << (8 - rest))) == 0;
}

int
net_is_loopback(const struct sockaddr *sa)
{
	int fam;
	const unsigned char *a = net_bytes(sa, &fam);
	static const unsigned char v6lo[16] = { [15] = 1 };

	if (a == NULL)
		return 0;
	return fam == AF_INET ? a[0] == 127 : memcmp(a, v6lo, 16) == 0;
}

int
net_parse_sockaddr(const char *s, struct sockaddr_storage *ss, socklen_t *len_r)
{
	char host[64];
	const char *colon;
	char *end;
	long port;
	size_t n;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL || close[1] != ':')
			return -1;
		n = (size_t)(close - s - 1);
		colon = close + 1;
		s++;
	} else {
		if ((colon = strrchr(s, ':')) == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL)
			return -1;
		n = (size_t)(colon - s);
	}
	if (n == 0 || n >= sizeof(host))
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535)
		return -1;
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		((struct sockaddr_in *)ss)->sin_family = AF_INET;
		((struct sockaddr_in *)ss)->sin_port = htons((unsigned short)port);
		*len_r = sizeof(struct sockaddr_in);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)ss)->sin6_port = htons((unsigned short)port);
		*len_r = sizeof(struct sockaddr_in6);
		return 0;
	}
	return -1;
}
