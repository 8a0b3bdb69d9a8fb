/*
 * smtp_data: DATA stream state machine (see smtp_data.h). A line begins
 * only after CR LF; a bare LF never starts a line, so "\n.\r\n" can never
 * end the data.
 */
#include <string.h>
#include <strings.h>

#include "smtp/smtp_data.h"

enum { D_BOL, D_MID, D_CR, D_DOT, D_DOTCR };

void
smtp_data_init(struct smtp_data *d, long long max_size)
{
	memset(d, 0, sizeof(*d));
	d->state = D_BOL;
	d->in_headers = 1;
	d->max_size = max_size;
}

static void
data_out(struct smtp_data *d, char *out, size_t *o, const char *p, size_t n)
{
	if (d->errors)
		return;
	d->size += n;
	if (d->max_size > 0 && d->size > d->max_size) {
		d->errors |= SMTP_DATA_ESIZE;
		return;
	}
	if (d->in_headers && d->size > (1 << 20))
		d->errors |= SMTP_DATA_EHDR;
	memcpy(out + *o, p, n);
	*o += n;
}

static void
data_char(struct smtp_data *d, char c, char *out, size_t *o)
{
	if (d->line_len < sizeof(d->lbuf))
		d->lbuf[d->line_len] = c;
	if (++d->line_len > SMTP_DATA_LINE_MAX - 2)
		d->errors |= SMTP_DATA_ELONG;
	if ((unsigned char)c >= 0x80)
		d->eightbit = 1;
	data_out(d, out, o, &c, 1);
}

static void
data_eol(struct smtp_data *d, char *out, size_t *o)
{
	if (d->in_headers) {
		if (d->line_len == 0)
			d->in_headers = 0;
		else if (d->line_len >= 9 && strncasecmp(d->lbuf, "Received:", 9) == 0)
			d->received++;
	}
	d->line_len = 0;
	data_out(d, out, o, "\r\n", 2);
}

size_t
smtp_data_feed(struct smtp_data *d, const char *in, size_t len, char *out, size_t *outlen,
	       int *done)
{
	size_t i, o = 0;

	*done = 0;
	for (i = 0; i < len; i++) {
		char c = in[i];

		switch (d->state) {
		case D_BOL:
			if (c == '.') {
				d->state = D_DOT;
				continue;
			}
			/* FALLTHROUGH */
		case D_MID:
			if (c == '\r')
				d->state = D_CR;
			else if (c == '\n') {
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
