/*
 * config_netlist: lists of addresses and CIDR networks ("192.0.2.1,
 * 10.0.0.0/8, 2001:db8::/32") and the matcher a server asks whether a
 * client is in one. Public: config_netlist_parse_one, config_netlist_parse,
 * config_netlist_match.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"

int
config_netlist_parse_one(const char *s, struct config_net *net)
{
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	char a[INET6_ADDRSTRLEN];
	int max;

	if (alen == 0 || alen >= sizeof(a))
		return -1;
	memcpy(a, s, alen);
	a[alen] = '\0';
	memset(net, 0, sizeof(*net));
	if (inet_pton(AF_INET, a, net->addr) == 1)
		net->family = AF_INET;
	else if (inet_pton(AF_INET6, a, net->addr) == 1)
		net->family = AF_INET6;
	else
		return -1;
	max = net->family == AF_INET ? 32 : 128;
	net->prefix = max;
	if (slash != NULL) {
		char *end;
		long p;

		if (!isdigit((unsigned char)slash[1]))
			return -1;
		p = strtol(slash + 1, &end, 10);
		if (*end != '\0' || p < 0 || p > max)
			return -1;
		net->prefix = (int)p;
	}
	/* Host bits set ("10.1.2.3/8") are a typo more often than not: refuse
	 * rather than guess which network was meant. */
	for (int bit = net->prefix; bit < max; bit++)
		if (net->addr[bit / 8] & (0x80 >> (bit % 8)))
			return -1;
	return 0;
}

/* The message of the last error; config loading is single-threaded. */
static char netlist_msg[200];

int
config_netlist_parse(const char *s, struct config_netlist *l, const char **error_r)
{
	struct config_list words = { 0 };
	int rc = 0;

	memset(l, 0, sizeof(*l));
	l->set = 1;
	if (config_parse_list(s, &words) < 0) {
		*error_r = "too many entries";
		return -1;
	}
	for (int i = 0; i < words.n; i++) {
		if (rc == 0 && config_netlist_parse_one(words.v[i], &l->v[l->n]) < 0) {
			snprintf(netlist_msg, sizeof(netlist_msg),
				 "%.100s: expected an address or a network like 192.0.2.1, "
				 "192.0.2.0/24, 2001:db8::/32 (no host bits after the prefix)", words.v[i]);
			*error_r = netlist_msg;
			rc = -1;
		} else if (rc == 0) {
			l->n++;
		}
		free(words.v[i]);
	}
	return rc;
}

/* 1 when the first prefix bits of a and b agree. */
static int
netlist_prefix_eq(const unsigned char *a, const unsigned char *b, int prefix)
{
	int whole = prefix / 8, rest = prefix % 8;

	if (memcmp(a, b, whole) != 0)
		return 0;
	return rest == 0 || ((a[whole] ^ b[whole]) & (0xff << (8 - rest)) & 0xff) == 0;
}

int
config_netlist_match(const struct config_netlist *l, const struct sockaddr *sa)
{
	static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	const unsigned char *addr;
	int family;

	if (sa->sa_family == AF_INET) {
		family = AF_INET;
		addr = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
	} else if (sa->sa_family == AF_INET6) {
		addr = (const unsigned char *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
		family = AF_INET6;
		if (memcmp(addr, v4mapped, sizeof(v4mapped)) == 0) {
			family = AF_INET;
			addr += 12;
		}
	} else {
		return 0;
	}
	for (int i = 0; i < l->n; i++)
		if (l->v[i].family == family && netlist_prefix_eq(l->v[i].addr, addr, l->v[i].prefix))
			return 1;
	return 0;
}
