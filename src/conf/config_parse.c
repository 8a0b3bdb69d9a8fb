/*
 * config_parse: the value syntaxes of tandem.conf, usable on their own:
 * durations, sizes, comma lists, HOST:PORT, domain names, numeric addresses.
 * Public: config_parse_duration, config_parse_size, config_parse_list,
 * config_parse_hostport, config_parse_is_domain, config_parse_is_ip.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/config.h"
#include "util/xalloc.h"

long long
config_parse_duration(const char *s)
{
	char *end;
	long long v, mult = 1;

	if (s == NULL || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0)
		return -1;
	if (strcmp(end, "") == 0 || strcmp(end, "s") == 0)
		mult = 1;
	else if (strcmp(end, "m") == 0)
		mult = 60;
	else if (strcmp(end, "h") == 0)
		mult = 3600;
	else if (strcmp(end, "d") == 0)
		mult = 86400;
	else if (strcmp(end, "w") == 0)
		mult = 7 * 86400;
	else
		return -1;
	if (v > (1LL << 40) / mult)
		return -1;
	return v * mult;
}

long long
config_parse_size(const char *s)
{
	char *end;
	long long v, mult = 1;

	if (s == NULL || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0)
		return -1;
	switch (tolower((unsigned char)*end)) {
	case '\0': mult = 1; break;
	case 'k': mult = 1LL << 10; break;
	case 'm': mult = 1LL << 20; break;
	case 'g': mult = 1LL << 30; break;
	default: return -1;
	}
	if (*end != '\0' && end[1] != '\0' && strcasecmp(end + 1, "b") != 0 &&
	    strcasecmp(end + 1, "ib") != 0)
		return -1;
	if (v > (1LL << 50) / mult)
		return -1;
	return v * mult;
}

int
config_parse_list(const char *s, struct config_list *lst)
{
	const char *p = s;

	for (int i = 0; i < lst->n; i++)
		free(lst->v[i]);
	lst->n = 0;
	while (*p != '\0') {
		const char *start, *end;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		start = p;
		while (*p != '\0' && *p != ',' && *p != ' ' && *p != '\t')
			p++;
		end = p;
		if (lst->n == CONFIG_MAX_LIST)
			return -1;
		lst->v[lst->n++] = xstrndup(start, end - start);
	}
	return 0;
}

int
config_parse_hostport(const char *s, char *host, size_t hostlen, int *port_r)
{
	const char *colon, *h = s;
	size_t hl;
	char *end;
	long port;

	if (*s == '[') {
		const char *rb = strchr(s, ']');
		if (rb == NULL || rb[1] != ':')
			return -1;
		h = s + 1;
		hl = rb - h;
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return -1;
		hl = colon - s;
	}
	if (hl == 0 || hl >= hostlen)
		return -1;
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port <= 0 || port > 65535 || colon[1] == '\0')
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port_r = (int)port;
	return 0;
}

/* LDH labels (IDNs in their A-label form), each 1..63, 255 in all: the
 * rule the directory applies to its domains, so a relay domain that passes
 * here is one a recipient can be in. */
int
config_parse_is_domain(const char *s)
{
	size_t len = strlen(s), label = 0;

	if (len == 0 || len > 255)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
		} else if ((c < 0x80 && isalnum(c)) || (c == '-' && label > 0)) {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return label > 0 && s[len - 1] != '-';
}

int
config_parse_is_ip(const char *s)
{
	unsigned char a[16];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}
