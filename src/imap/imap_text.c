/*
 * imap_text: the stateless text work of the IMAP server, kept apart so it
 * is tested on its own: bare LF to CRLF, the fields of a header block, the
 * RFC 3501 date-time, and LIST's pattern match.
 * Public: imap_crlf, imap_header_each, imap_date_parse, imap_text_match.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imap/imap_text.h"
#include "util/xalloc.h"

char *
imap_crlf(const char *in, size_t len, size_t *len_r)
{
	size_t n = len;
	char *out, *o;

	for (size_t i = 0; i < len; i++)
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			n++;
	o = out = xmalloc(n + 1);
	for (size_t i = 0; i < len; i++) {
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			*o++ = '\r';
		*o++ = in[i];
	}
	*o = '\0';
	*len_r = n;
	return out;
}

int
imap_header_each(const char *h, size_t len,
		 int (*fn)(const char *name, size_t nlen, const char *field, size_t flen, void *arg),
		 void *arg)
{
	size_t i = 0;

	while (i < len) {
		size_t start = i, colon;
		int rc;

		if (h[i] == '\n' || (h[i] == '\r' && i + 1 < len && h[i + 1] == '\n'))
			break;   /* the blank line */
		/* a field runs through its continuation lines */
		for (;;) {
			const char *nl = memchr(h + i, '\n', len - i);

			i = nl ? (size_t)(nl - h) + 1 : len;
			if (i >= len || (h[i] != ' ' && h[i] != '\t'))
				break;
		}
		for (colon = start; colon < i && h[colon] != ':' && h[colon] != '\n'; colon++)
			;
		if (colon >= i || h[colon] != ':')
			continue;
		if ((rc = fn(h + start, colon - start, h + start, i - start, arg)) != 0)
			return rc;
	}
	return 0;
}

static const char *const imap_months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* "dd-Mon-yyyy hh:mm:ss +zzzz" (RFC 3501 date-time): 0, or -1. */
int
imap_date_parse(const char *str, long long *t_r, int *tz_r)
{
	struct tm tm;
	char mon[4], sign;
	int d, y, h, mi, sec, z, len = 0;

	memset(&tm, 0, sizeof(tm));
	while (*str == ' ')
		str++;
	if (sscanf(str, "%2d-%3c-%4d %2d:%2d:%2d %c%4d%n", &d, mon, &y, &h, &mi, &sec, &sign, &z,
		   &len) != 8 || str[len] != '\0' || (sign != '+' && sign != '-'))
		return -1;
	mon[3] = '\0';
	tm.tm_mon = -1;
	for (int i = 0; i < 12; i++)
		if (strcasecmp(mon, imap_months[i]) == 0)
			tm.tm_mon = i;
	if (tm.tm_mon < 0 || d < 1 || d > 31 || y < 1900 || h > 23 || mi > 59 || sec > 60 ||
	    z % 100 > 59 || z > 2359)
		return -1;
	tm.tm_mday = d;
	tm.tm_year = y - 1900;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*tz_r = (z / 100 * 60 + z % 100) * (sign == '-' ? -1 : 1);
	*t_r = (long long)timegm(&tm) - (long long)*tz_r * 60;
	return 0;
}

int
imap_text_match(const char *p, const char *n)
{
	for (;;) {
		if (*p == '\0')
			return *n == '\0';
		if (*p == '*' || *p == '%') {
			int any = *p == '*';

			p++;
			for (;;) {
				if (imap_text_match(p, n))
					return 1;
				if (*n == '\0' || (!any && *n == '/'))
					return 0;
				n++;
			}
		}
		if (*p != *n)
			return 0;
		p++;
		n++;
	}
}
