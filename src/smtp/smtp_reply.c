/*
 * smtp_reply: the incremental SMTP reply parser (see smtp_reply.h). One
 * byte at a time through a small state machine, so where a chunk ends can
 * never change what is parsed: the same bytes give the same replies and
 * the same error at the same byte, whatever the split.
 */
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_reply.h"
#include "util/xalloc.h"

struct smtp_reply_parser {
	enum smtp_reply_err err;
	int code;                 /* the first line's code, 0 before it is known */
	int linecode;             /* the digits of this line so far */
	int nlines;               /* lines complete in this reply */
	size_t pos;               /* octets of this line before its CR/LF */
	char sep;                 /* this line's separator, 0 before it */
	int cr;                   /* a CR was seen: only LF may follow */
	char line[SMTP_REPLY_LINE_MAX];   /* this line's text after the separator */
	size_t linelen;
	char esc[SMTP_REPLY_ESC_MAX];
	char *text;
	size_t textlen, textcap;
};

struct smtp_reply_parser *
smtp_reply_parser_new(void)
{
	return xcalloc(1, sizeof(struct smtp_reply_parser));
}

void
smtp_reply_parser_free(struct smtp_reply_parser **pp)
{
	if (*pp == NULL)
		return;
	free((*pp)->text);
	free(*pp);
	*pp = NULL;
}

enum smtp_reply_err
smtp_reply_parser_error(const struct smtp_reply_parser *p)
{
	return p->err;
}

int
smtp_reply_parser_busy(const struct smtp_reply_parser *p)
{
	return p->pos > 0 || p->cr || p->nlines > 0;
}

void
smtp_reply_clear(struct smtp_reply *r)
{
	free(r->text);
	memset(r, 0, sizeof(*r));
}

const char *
smtp_reply_strerror(enum smtp_reply_err e)
{
	static const char *const msg[] = {
		[SMTP_REPLY_OK] = "no error",
		[SMTP_REPLY_ELONG] = "reply line too long",
		[SMTP_REPLY_ELINES] = "too many reply lines",
		[SMTP_REPLY_ECODE] = "malformed reply code",
		[SMTP_REPLY_EMISMATCH] = "reply codes differ between lines",
		[SMTP_REPLY_ESEP] = "malformed reply separator",
		[SMTP_REPLY_EBARE] = "bare CR in reply",
		[SMTP_REPLY_ENUL] = "NUL in reply",
	};

	if ((unsigned)e >= sizeof(msg) / sizeof(msg[0]))
		return "unknown error";
	return msg[e];
}

static int
smtp_reply_isdigit(int ch)
{
	return ch >= '0' && ch <= '9';
}

/* Length of an RFC 3463 status at s ("5.1.1", class equal to the code's
 * first digit), followed by the end or a space; 0 when there is none. */
static size_t
smtp_reply_esc_len(const char *s, size_t n, int code)
{
	size_t i = 0, k;

	if (n < 5 || s[0] != '0' + code / 100 || s[1] != '.')
		return 0;
	i = 2;
	for (int part = 0; part < 2; part++) {
		for (k = 0; k < 3 && i < n && smtp_reply_isdigit(s[i]); k++)
			i++;
		if (k == 0)
			return 0;
		if (part == 0) {
			if (i >= n || s[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < n && s[i] != ' ')
		return 0;
	return i;
}

static void
smtp_reply_append(struct smtp_reply_parser *p, const char *s, size_t n)
{
	if (p->textlen + n + 1 > p->textcap) {
		p->textcap = p->textcap ? p->textcap * 2 : 128;
		while (p->textcap < p->textlen + n + 1)
			p->textcap *= 2;
		p->text = xrealloc(p->text, p->textcap);
	}
	memcpy(p->text + p->textlen, s, n);
	p->textlen += n;
	p->text[p->textlen] = '\0';
}

/* The text of a complete line joins the reply's text. */
static void
smtp_reply_add_line(struct smtp_reply_parser *p)
{
	const char *s = p->line;
	size_t n = p->linelen, k;

	if (p->nlines == 0) {
		k = smtp_reply_esc_len(s, n, p->code);
		if (k > 0 && k < sizeof(p->esc)) {
			memcpy(p->esc, s, k);
			p->esc[k] = '\0';
		}
	}
	k = strlen(p->esc);
	if (k > 0 && n >= k && memcmp(s, p->esc, k) == 0 && (n == k || s[k] == ' ')) {
		s += k + (n > k);
		n -= k + (n > k);
	}
	if (p->nlines > 0)
		smtp_reply_append(p, "\n", 1);
	smtp_reply_append(p, s, n);
}

static void
smtp_reply_next_line(struct smtp_reply_parser *p)
{
	p->pos = 0;
	p->linecode = 0;
	p->sep = 0;
	p->cr = 0;
	p->linelen = 0;
}

/* A line ended: 1 when it ended the reply (r filled), 0 when more lines
 * follow, -1 on error. */
static int
smtp_reply_end_line(struct smtp_reply_parser *p, struct smtp_reply *r)
{
	if (p->pos < 3) {
		p->err = SMTP_REPLY_ECODE;
		return -1;
	}
	if (p->nlines == 0)
		p->code = p->linecode;
	smtp_reply_add_line(p);
	p->nlines++;
	if (p->sep == '-') {
		if (p->nlines >= SMTP_REPLY_LINES_MAX) {
			p->err = SMTP_REPLY_ELINES;
			return -1;
		}
		smtp_reply_next_line(p);
		return 0;
	}
	memset(r, 0, sizeof(*r));
	r->code = p->code;
	memcpy(r->esc, p->esc, sizeof(r->esc));
	r->text = p->text ? p->text : xstrdup("");
	r->textlen = p->textlen;
	r->nlines = p->nlines;
	r->multiline = p->nlines > 1;
	p->text = NULL;
	p->textlen = p->textcap = 0;
	p->code = 0;
	p->nlines = 0;
	p->esc[0] = '\0';
	smtp_reply_next_line(p);
	return 1;
}

/* One octet of a line that is not CR or LF. */
static enum smtp_reply_err
smtp_reply_octet(struct smtp_reply_parser *p, int ch)
{
	if (p->pos >= SMTP_REPLY_LINE_MAX - 2)
		return SMTP_REPLY_ELONG;
	if (p->pos < 3) {
		if (!smtp_reply_isdigit(ch) || (p->pos == 0 && (ch < '2' || ch > '5')))
			return SMTP_REPLY_ECODE;
		static const int place[3] = { 100, 10, 1 };

		p->linecode = p->linecode * 10 + (ch - '0');
		if (p->nlines > 0 && ch - '0' != p->code / place[p->pos] % 10)
			return SMTP_REPLY_EMISMATCH;
	} else if (p->pos == 3) {
		if (ch != ' ' && ch != '-')
			return SMTP_REPLY_ESEP;
		p->sep = (char)ch;
	} else {
		p->line[p->linelen++] = (char)ch;
	}
	p->pos++;
	return SMTP_REPLY_OK;
}

int
smtp_reply_parser_feed(struct smtp_reply_parser *p, const void *buf, size_t len,
		       size_t *used_r, struct smtp_reply *r)
{
	const unsigned char *s = buf;
	size_t i;
	int rc;

	*used_r = 0;
	if (p->err != SMTP_REPLY_OK)
		return -1;
	for (i = 0; i < len; i++) {
		int ch = s[i];

		if (p->cr && ch != '\n')
			p->err = SMTP_REPLY_EBARE;
		else if (ch == '\0')
			p->err = SMTP_REPLY_ENUL;
		else if (ch == '\r')
			p->cr = 1;
		else if (ch == '\n') {
			rc = smtp_reply_end_line(p, r);
			if (rc != 0) {
				*used_r = i + 1;
				return rc;
			}
		} else
			p->err = smtp_reply_octet(p, ch);
		if (p->err != SMTP_REPLY_OK) {
			*used_r = i + 1;
			return -1;
		}
	}
	*used_r = len;
	return 0;
}
