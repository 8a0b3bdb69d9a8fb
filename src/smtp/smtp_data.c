/*
 * smtp_data: DATA stream state machine (see smtp_data.h). A line begins
 * only after CR LF; a bare LF never starts a line, so "\n.\r\n" can never
 * end the data.
 */
#include <string.h>
#include <strings.h>

#include "smtp/smtp_data.h"

enum { D_BOL, D_MID, D_CR, D_DOT, D_DOTCR };

#define SMTP_DATA_HDR_MAX (1LL << 20)

void
smtp_data_init(struct smtp_data *d, long long max_size)
{
	memset(d, 0, sizeof(*d));
	d->state = D_BOL;
	d->in_headers = 1;
	d->max_size = max_size;
}

/* Copy n octets to out, stopping where a limit is crossed exactly as
 * feeding them one at a time would: the result never depends on how the
 * input was split. */
static void
data_out(struct smtp_data *d, char *out, size_t *o, const char *p, size_t n)
{
	size_t take = n;

	if (d->errors)
		return;
	if (d->max_size > 0 && d->size + (long long)n > d->max_size) {
		take = d->size < d->max_size ? (size_t)(d->max_size - d->size) : 0;
		d->errors |= SMTP_DATA_ESIZE;
	}
	if (d->in_headers && d->size + (long long)take > SMTP_DATA_HDR_MAX) {
		size_t room = d->size <= SMTP_DATA_HDR_MAX ? (size_t)(SMTP_DATA_HDR_MAX - d->size) + 1 : 0;
		if (room < take)
			take = room;
		d->errors |= SMTP_DATA_EHDR;
	}
	memcpy(out + *o, p, take);
	*o += take;
	d->size += take;
}

/* Keep the first Message-ID: header's value: its line and the
 * continuation lines after it. Spaces are dropped (none belong in a
 * msg-id); the value is bounded. Called before the octets are counted
 * into line_len, after they are copied into lbuf. */
static void
data_msgid(struct smtp_data *d, const char *p, size_t n)
{
	size_t start = 0;

	if (d->msgid_done)
		return;
	if (d->in_msgid == 2 && d->line_len == 0) {
		if (p[0] != ' ' && p[0] != '\t') {
			d->in_msgid = 0;
			d->msgid_done = 1;
			return;
		}
		d->in_msgid = 1;
	}
	if (d->in_msgid == 0) {
		if (d->line_len >= sizeof(d->lbuf) || d->line_len + n < sizeof(d->lbuf) ||
		    strncasecmp(d->lbuf, "Message-ID:", sizeof(d->lbuf)) != 0)
			return;
		d->in_msgid = 1;
		d->saw_msgid = 1;
		start = sizeof(d->lbuf) - d->line_len;
	}
	for (size_t k = start; k < n; k++)
		if (p[k] != ' ' && p[k] != '\t' && d->msgid_len < sizeof(d->msgid) - 1)
			d->msgid[d->msgid_len++] = p[k];
	d->msgid[d->msgid_len] = '\0';
}

/* The first From: value, unfolded (a fold's CRLF dropped, its white space
 * kept) and bounded, and the count of From: fields; Date: noted. Called as
 * data_msgid is. */
static void
data_from(struct smtp_data *d, const char *p, size_t n)
{
	size_t start = 0;

	if (d->line_len < 5 && d->line_len + n >= 5 && strncasecmp(d->lbuf, "Date:", 5) == 0)
		d->saw_date = 1;
	if (d->in_from == 2 && d->line_len == 0) {
		if (p[0] != ' ' && p[0] != '\t') {
			d->in_from = 0;
			d->from_done = 1;
		} else {
			d->in_from = 1;
		}
	}
	if (d->in_from == 0) {
		if (d->line_len >= 5 || d->line_len + n < 5 || strncasecmp(d->lbuf, "From:", 5) != 0)
			return;
		if (++d->nfrom > 1 || d->from_done)
			return;
		d->in_from = 1;
		start = 5 - d->line_len;
	}
	for (size_t k = start; k < n; k++) {
		if (d->from_len < sizeof(d->from) - 1)
			d->from[d->from_len++] = p[k];
		else
			d->from_over = 1;
	}
	d->from[d->from_len] = '\0';
}

/* n ordinary octets of a line (neither CR nor LF). */
static void
data_run(struct smtp_data *d, const char *p, size_t n, char *out, size_t *o)
{
	size_t room = SMTP_DATA_LINE_MAX - 2 - (d->line_len < SMTP_DATA_LINE_MAX - 2 ? d->line_len : SMTP_DATA_LINE_MAX - 2);

	for (size_t k = 0; k < n && d->line_len + k < sizeof(d->lbuf); k++)
		d->lbuf[d->line_len + k] = p[k];
	if (d->in_headers) {
		data_msgid(d, p, n);
		data_from(d, p, n);
	}
	if (!d->eightbit)
		for (size_t k = 0; k < n; k++)
			if ((unsigned char)p[k] >= 0x80) {
				d->eightbit = 1;
				break;
			}
	d->line_len += n;
	if (n > room) {
		/* the octet that makes the line too long is not passed on */
		data_out(d, out, o, p, room);
		d->errors |= SMTP_DATA_ELONG;
		return;
	}
	data_out(d, out, o, p, n);
}

static void
data_char(struct smtp_data *d, char c, char *out, size_t *o)
{
	data_run(d, &c, 1, out, o);
}

static void
data_eol(struct smtp_data *d, char *out, size_t *o)
{
	if (d->in_headers) {
		if (d->line_len == 0) {
			d->in_headers = 0;
			d->at_body = d->stop_at_body;
		}
		if (d->in_msgid == 1)
			d->in_msgid = 2;   /* a continuation line may follow */
		if (d->in_from == 1)
			d->in_from = 2;
		else if (d->line_len == 0 && d->in_from)
			d->from_done = 1;
		if (d->line_len == 0 && d->in_msgid)
			d->msgid_done = 1;
		else if (d->line_len >= 9 && strncasecmp(d->lbuf, "Received:", 9) == 0)
			d->received++;
	}
	d->line_len = 0;
	data_out(d, out, o, "\n", 1);   /* its CR went out when it was seen */
}

size_t
smtp_data_feed(struct smtp_data *d, const char *in, size_t len, char *out, size_t *outlen,
	       int *done)
{
	size_t i, o = 0;

	*done = 0;
	d->at_body = 0;
	for (i = 0; i < len; i++) {
		char c = in[i];

		/* Fast path: a run of ordinary octets inside a line. */
		if (d->state == D_MID && c != '\r' && c != '\n') {
			size_t j = i;

			while (j < len && in[j] != '\r' && in[j] != '\n')
				j++;
			data_run(d, in + i, j - i, out, &o);
			i = j - 1;
			continue;
		}

		switch (d->state) {
		case D_BOL:
			if (c == '.') {
				d->state = D_DOT;
				continue;
			}
			/* FALLTHROUGH */
		case D_MID:
			if (c == '\r') {
				data_out(d, out, &o, "\r", 1);
				d->state = D_CR;
			} else if (c == '\n') {
				d->errors |= SMTP_DATA_EBARE;
				d->state = D_MID;
			} else {
				data_char(d, c, out, &o);
				d->state = D_MID;
			}
			break;
		case D_CR:
			if (c == '\n') {
				data_eol(d, out, &o);
				d->state = D_BOL;
				if (d->at_body) {
					*outlen = o;
					return i + 1;
				}
			} else {
				d->errors |= SMTP_DATA_EBARE;
				if (c != '\r') {
					data_char(d, c, out, &o);
					d->state = D_MID;
				}
			}
			break;
		case D_DOT:
			if (c == '\r') {
				d->state = D_DOTCR;
				break;
			}
			/* a dot-stuffed line: the leading dot is dropped */
			d->state = D_MID;
			i--;
			break;
		case D_DOTCR:
			if (c == '\n') {
				*done = 1;
				*outlen = o;
				return i + 1;
			}
			/* ".\r" then not LF: the dot was stuffing, the CR is bare */
			d->errors |= SMTP_DATA_EBARE;
			d->state = D_MID;
			i--;
			break;
		}
	}
	*outlen = o;
	return len;
}
