/*
 * header: Received:, Return-Path: helpers and RFC 5322 dates (see header.h).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mail/header.h"
#include "util/xalloc.h"

void
header_date(time_t t, char *buf, size_t len)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(buf, len, "%s, %d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
		 months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* The HELO name as the client gave it, minus anything that could break
 * the header: controls, parentheses. */
static void
header_clean(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (; in && *in && o + 1 < len; in++) {
		unsigned char c = *in;
		out[o++] = (c < 0x21 || c == 0x7f || c == '(' || c == ')' || c == '\\') ? '?' : c;
	}
	out[o] = '\0';
}

char *
header_received(const char *helo, const char *client, const char *by, const char *proto,
		const char *qid, const char *rcpt, time_t t)
{
	char date[64], h[256];

	header_date(t, date, sizeof(date));
	if (client == NULL) {
		if (rcpt != NULL)
			return xasprintf("Received: by %s (tandem) with %s id %s\r\n\tfor <%s>; %s\r\n",
					 by, proto, qid, rcpt, date);
		return xasprintf("Received: by %s (tandem) with %s id %s;\r\n\t%s\r\n", by, proto,
				 qid, date);
	}
	header_clean(helo, h, sizeof(h));
	if (rcpt != NULL)
		return xasprintf("Received: from %s ([%s])\r\n\tby %s (tandem) with %s id %s\r\n"
				 "\tfor <%s>; %s\r\n", h[0] ? h : "unknown", client, by, proto, qid,
				 rcpt, date);
	return xasprintf("Received: from %s ([%s])\r\n\tby %s (tandem) with %s id %s;\r\n\t%s\r\n",
			 h[0] ? h : "unknown", client, by, proto, qid, date);
}
