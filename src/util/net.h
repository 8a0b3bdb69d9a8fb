/*
 * net: numeric socket addresses for listeners ("192.0.2.1:25",
 * "[::1]:993"). Networks and address lists are conf's (config_netlist).
 * Public: net_parse_sockaddr, net_nodelay.
 */
#ifndef TANDEM_NET_H
#define TANDEM_NET_H
#include <sys/socket.h>

/* "192.0.2.1:25" or "[2001:db8::1]:25" (numeric, port 0-65535) into ss.
 * 0, or -1 when it is not one. */
int net_parse_sockaddr(const char *s, struct sockaddr_storage *ss, socklen_t *len_r);

/* Turn off Nagle's algorithm on a TCP socket. A server answering
 * pipelined commands in pieces (a reply now, the next after a lookup on
 * a worker) would otherwise hold the second piece until the client's
 * delayed ACK, 40 ms on Linux, and so would a client's last piece of a
 * message. Errors are ignored: it is only a matter of speed. */
void net_nodelay(int fd);

#endif
