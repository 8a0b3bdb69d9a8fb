/*
 * pop3_stream: LF to CRLF, dot-stuffing and TOP's cut (see pop3_stream.h).
 */
#include "pop3/pop3_stream.h"

void
pop3_stream_init(struct pop3_stream *st, long body_lines)
{
	st->body_lines = body_lines;
	st->line_len = 0;
	st->bol = 1;
	st->cr = 0;
	st->in_body = 0;
	st->done = 0;
}

/* A line ended: the header's end (an empty line) and TOP's count. */
static void
pop3_stream_eol(struct pop3_stream *st)
{
	if (!st->in_body) {
		if (st->line_len == 0) {
			st->in_body = 1;
			if (st->body_lines == 0)
				st->done = 1;
		}
	} else if (st->body_lines > 0 && --st->body_lines == 0) {
		st->done = 1;
	}
	st->bol = 1;
	st->cr = 0;
	st->line_len = 0;
}

size_t
pop3_stream_feed(struct pop3_stream *st, const char *in, size_t len, char *out,
		 size_t *out_len_r)
{
	size_t i, o = 0;

	for (i = 0; i < len && !st->done; i++) {
		char b = in[i];

		if (st->bol && b == '.')
			out[o++] = '.';
		if (b == '\n') {
			if (!st->cr)
				out[o++] = '\r';
			out[o++] = '\n';
			pop3_stream_eol(st);
			continue;
		}
		/* a CR not followed by LF is part of the line */
		if (st->cr)
			st->line_len++;
		st->cr = b == '\r';
		if (!st->cr)
			st->line_len++;
		st->bol = 0;
		out[o++] = b;
	}
	*out_len_r = o;
	return i;
}

size_t
pop3_stream_end(const struct pop3_stream *st, char *out)
{
	size_t o = 0;

	if (!st->bol) {
		if (!st->cr)
			out[o++] = '\r';
		out[o++] = '\n';
	}
	out[o++] = '.';
	out[o++] = '\r';
	out[o++] = '\n';
	return o;
}
