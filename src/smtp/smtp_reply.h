/*
 * smtp_reply: an incremental parser of the replies an SMTP server sends
 * (RFC 5321 4.2), for the SMTP client. Pure: bytes in, replies out, no I/O.
 * Fed bytes in any split, it yields the same replies and the same error
 * as if fed all at once, and it classifies every misbehaviour as an error
 * rather than guessing:
 *   - a line longer than 512 octets, CRLF included (RFC 5321 4.5.3.1.5),
 *     found as soon as the 511th octet before the line end arrives, so a
 *     reply that never ends cannot grow without bound;
 *   - more than 100 lines in one reply;
 *   - a code that is not three digits with a first digit 2 to 5, or a line
 *     of a multiline reply whose code differs from the first line's;
 *   - a separator other than ' ' or '-' after the code;
 *   - a NUL byte, or a CR not followed by LF.
 * Line ends: CRLF, and also a bare LF. Being lenient with a bare LF is
 * unambiguous here: a reply carries no payload that could hide a line end,
 * the LF is the only end-of-line byte either way, and a CR is accepted only
 * right before an LF (a bare CR is an error, since some peers would take it
 * as a line end and others would not).
 * Public: smtp_reply_parser_new, smtp_reply_parser_free,
 * smtp_reply_parser_feed, smtp_reply_parser_error, smtp_reply_parser_busy,
 * smtp_reply_clear, smtp_reply_strerror.
 */
#ifndef TANDEM_SMTP_REPLY_H
#define TANDEM_SMTP_REPLY_H
#include <stddef.h>

#define SMTP_REPLY_LINE_MAX 512     /* octets of one reply line, CRLF included */
#define SMTP_REPLY_LINES_MAX 100    /* lines of one reply */
#define SMTP_REPLY_ESC_MAX 16       /* room for "5.999.999" and its NUL */

enum smtp_reply_err {
	SMTP_REPLY_OK = 0,
	SMTP_REPLY_ELONG,       /* a line over SMTP_REPLY_LINE_MAX octets */
	SMTP_REPLY_ELINES,      /* more than SMTP_REPLY_LINES_MAX lines */
	SMTP_REPLY_ECODE,       /* not a three-digit code 2xx..5xx (or a short line) */
	SMTP_REPLY_EMISMATCH,   /* a multiline reply's codes differ */
	SMTP_REPLY_ESEP,        /* neither ' ' nor '-' after the code */
	SMTP_REPLY_EBARE,       /* CR not followed by LF */
	SMTP_REPLY_ENUL         /* a NUL byte */
};

struct smtp_reply {
	int code;                      /* 200..599 */
	char esc[SMTP_REPLY_ESC_MAX];  /* RFC 3463 enhanced status "5.1.1", or "" */
	char *text;                    /* malloc'd, NUL-terminated: the text after
					* each line's code and separator, lines
					* joined by '\n'; the enhanced status is
					* taken off every line that starts with it */
	size_t textlen;
	int nlines;
	int multiline;                 /* nlines > 1 */
};

struct smtp_reply_parser;

struct smtp_reply_parser *smtp_reply_parser_new(void);
void smtp_reply_parser_free(struct smtp_reply_parser **pp);
/* Feed len bytes. Returns 1 when a reply is complete: *r is filled (free it
 * with smtp_reply_clear) and *used_r says how many bytes it took; the rest
 * belongs to the next reply (or, after a STARTTLS 220, to nobody). 0 when
 * every byte was taken and the reply goes on. -1 on an error, which sticks:
 * *used_r counts the bytes up to the offending one. */
int smtp_reply_parser_feed(struct smtp_reply_parser *p, const void *buf, size_t len,
			   size_t *used_r, struct smtp_reply *r);
enum smtp_reply_err smtp_reply_parser_error(const struct smtp_reply_parser *p);
/* Are some bytes of an unfinished reply held? */
int smtp_reply_parser_busy(const struct smtp_reply_parser *p);
void smtp_reply_clear(struct smtp_reply *r);
const char *smtp_reply_strerror(enum smtp_reply_err e);

#endif
