/*
 * header: the header fields tandem adds to messages — Received: (RFC 5321
 * 4.4), Return-Path: and Delivered-To: at final delivery — and RFC 5322
 * dates. Public: header_date, header_received.
 */
#ifndef TANDEM_HEADER_H
#define TANDEM_HEADER_H
#include <stddef.h>
#include <time.h>

/* "Sun, 29 Nov 2026 16:46:22 +0000" into buf. */
void header_date(time_t t, char *buf, size_t len);
/* A complete Received: field ending in CRLF (malloc'd). rcpt may be NULL;
 * client NULL leaves the from clause out (submission with hide_client). */
char *header_received(const char *helo, const char *client, const char *by,
		      const char *proto, const char *qid, const char *rcpt, time_t t);

#endif
