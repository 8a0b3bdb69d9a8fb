/*
 * dsn: RFC 3464 delivery status notifications (see dsn.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/dsn.h"
#include "mail/header.h"
#include "util/xalloc.h"

struct dsn_buf {
	char *p;
	size_t len, cap;
};

static void __attribute__((format(printf, 2, 3)))
dsn_printf(struct dsn_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < b->cap - b->len)
			break;
		b->cap = b->cap * 2 + (n > 0 ? (size_t)n : 0) + 256;
		b->p = xrealloc(b->p, b->cap);
	}
	b->len += n;
}

/* A value for a header or DSN field: one line, printable. */
static void
dsn_clean(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (; in && *in && o + 1 < len; in++)
		out[o++] = ((unsigned char)*in < 0x20 || *in == 0x7f) ? ' ' : *in;
	out[o] = '\0';
}

static void
dsn_human(struct dsn_buf *b, const struct dsn_info *in)
{
	char v[512];

	dsn_printf(b, "Content-Type: text/plain; charset=utf-8\r\n"
		      "Content-Transfer-Encoding: 8bit\r\n\r\n");
	dsn_printf(b, "This is the mail system at %s.\r\n\r\n", in->reporting_mta);
	if (in->expired)
		dsn_printf(b, "Your message could not be delivered in the time allowed, and\r\n"
			      "the mail system gave up on the recipients below.\r\n\r\n");
	else
		dsn_printf(b, "Your message could not be delivered to the recipients below.\r\n"
			      "This is a permanent error; the mail system will not try again.\r\n\r\n");
	for (int i = 0; i < in->nrcpt; i++) {
		dsn_clean(in->rcpt[i].diagnostic, v, sizeof(v));
		dsn_printf(b, "<%s>: %s\r\n", in->rcpt[i].address, v);
	}
	dsn_printf(b, "\r\nThe headers of your message are attached.\r\n\r\n");
}

static void
dsn_status(struct dsn_buf *b, const struct dsn_info *in)
{
	char date[64], v[512];

	header_date(in->arrival, date, sizeof(date));
	dsn_printf(b, "Content-Type: message/delivery-status\r\n\r\n"
		      "Reporting-MTA: dns; %s\r\nX-Tandem-Queue-ID: %s\r\nArrival-Date: %s\r\n",
		   in->reporting_mta, in->qid, date);
	for (int i = 0; i < in->nrcpt; i++) {
		const struct dsn_rcpt *r = &in->rcpt[i];
		char host[256];

		dsn_printf(b, "\r\nFinal-Recipient: rfc822; %s\r\nAction: failed\r\nStatus: %s\r\n",
			   r->address, r->status);
		if (r->remote_mta != NULL && r->reply_code > 0) {
			/* RFC 3464 2.3.5/2.3.6: the remote server's own words */
			dsn_clean(r->remote_mta, host, sizeof(host));
			dsn_clean(r->reply, v, sizeof(v));
			dsn_printf(b, "Remote-MTA: dns; %s\r\nDiagnostic-Code: smtp; %d %s\r\n", host,
				   r->reply_code, v);
		} else {
			dsn_clean(r->diagnostic, v, sizeof(v));
			dsn_printf(b, "Diagnostic-Code: X-Tandem; %s\r\n", v);
		}
	}
	dsn_printf(b, "\r\n");
}

char *
dsn_build(const struct dsn_info *in, size_t *len_r)
{
	struct dsn_buf b = { xmalloc(4096), 0, 4096 };
	char date[64], boundary[128];

	header_date(in->now, date, sizeof(date));
	snprintf(boundary, sizeof(boundary), "%s.%lld/%s", in->qid, (long long)in->now,
		 in->reporting_mta);
	dsn_printf(&b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", in->reporting_mta);
	dsn_printf(&b, "To: <%s>\r\n", in->sender);
	dsn_printf(&b, "Subject: Undelivered Mail Returned to Sender\r\n");
	dsn_printf(&b, "Date: %s\r\nMessage-ID: <%s.dsn@%s>\r\n", date, in->qid, in->reporting_mta);
	dsn_printf(&b, "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n");
	dsn_printf(&b, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
		       "\tboundary=\"%s\"\r\n\r\n", boundary);
	dsn_printf(&b, "This is a MIME-encapsulated message.\r\n\r\n--%s\r\n", boundary);
	dsn_human(&b, in);
	dsn_printf(&b, "--%s\r\n", boundary);
	dsn_status(&b, in);
	dsn_printf(&b, "--%s\r\nContent-Type: text/rfc822-headers\r\n\r\n", boundary);
	if (in->headers_len > 0) {
		if (b.len + in->headers_len + 256 > b.cap) {
			b.cap = b.len + in->headers_len + 256;
			b.p = xrealloc(b.p, b.cap);
		}
		memcpy(b.p + b.len, in->headers, in->headers_len);
		b.len += in->headers_len;
		if (in->headers_len < 2 || memcmp(in->headers + in->headers_len - 2, "\r\n", 2) != 0)
			dsn_printf(&b, "\r\n");
	}
	dsn_printf(&b, "\r\n--%s--\r\n", boundary);
	*len_r = b.len;
	return b.p;
}
