/*
 * net: addresses and networks (see net.h).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util/net.h"

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

void
net_nodelay(int fd)
{
	int one = 1;

	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}
