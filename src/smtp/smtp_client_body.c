/*
 * smtp_client_body: the message body after "354" (see smtp_client_tx.c),
 * read from the queue file with pread(2) a chunk at a time while the
 * output has room, dot-stuffed, every line end sent as CRLF, and ended
 * with CRLF "." CRLF. A body that cannot be read in full is never ended
 * with a dot.
 * Internal to the client (smtp_client_int.h): smtp_client_body_start,
 * smtp_client_body_pump.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtp/smtp_client.h"
#include "smtp/smtp_client_int.h"
#include "util/log.h"
#include "util/xalloc.h"

#define SMTP_CLIENT_CHUNK (64 * 1024)          /* body bytes per pread(2) */

/* Copy n body bytes to out with dot-stuffing (RFC 5321 4.5.2). Line ends
 * leave as CRLF whatever they were: a bare CR or LF in a queue file must
 * never reach the next hop as one (SMTP smuggling). out has room for 2n+2. */
static size_t
smtp_client_body_stuff(struct smtp_client_tx *t, const char *in, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char ch = in[i];

		if (t->cr) {
			t->cr = 0;
			t->bol = 1;
			out[o++] = '\r';
			out[o++] = '\n';
			if (ch == '\n')
				continue;
		}
		if (ch == '\r') {
			t->cr = 1;
		} else if (ch == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
			t->bol = 1;
		} else {
			if (t->bol && ch == '.')
				out[o++] = '.';
			out[o++] = ch;
			t->bol = 0;
		}
	}
	return o;
}

/* The whole body is out: end it with CRLF "." CRLF and wait for the reply. */
static void
smtp_client_body_end(struct smtp_client *c, struct evbuffer *out)
{
	struct smtp_client_tx *t = &c->t;

	if (t->cr || !t->bol)
		evbuffer_add(out, "\r\n", 2);
	evbuffer_add(out, ".\r\n", 3);
	t->in_body = 0;
	t->dot_sent = 1;
	free(c->chunk);
	free(c->stuffed);
	c->chunk = c->stuffed = NULL;
	smtp_client_expect(c, SMTP_CLIENT_CMD_DOT);
	log_debug(c->id, "event=smtp_cmd cmd=dot");
}

/* Read the body from its file while the output has room for it. */
void
smtp_client_body_pump(struct smtp_client *c)
{
	struct smtp_client_tx *t = &c->t;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	char why[160];
	ssize_t n;

	if (c->pumping)
		return;   /* adding to out may call the write callback at once */
	c->pumping = 1;
	while (t->in_body && evbuffer_get_length(out) < SMTP_CLIENT_OUT_HIGH) {
		if (t->left == 0) {
			c->pumping = 0;
			smtp_client_body_end(c, out);
			return;
		}
		n = pread(t->fd, c->chunk, t->left < SMTP_CLIENT_CHUNK ? (size_t)t->left : SMTP_CLIENT_CHUNK,
			  t->off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* never end a message that is not all there with a dot */
			snprintf(why, sizeof(why), "cannot read the message: %s",
				 n == 0 ? "file too short" : strerror(errno));
			c->pumping = 0;
			smtp_client_fail_conn(c, SMTP_CLIENT_STAGE_DATA, 451, "4.3.0", why,
					      SMTP_CLIENT_F_LOCAL);
			return;
		}
		t->off += n;
		t->left -= n;
		evbuffer_add(out, c->stuffed, smtp_client_body_stuff(t, c->chunk, (size_t)n, c->stuffed));
	}
	c->pumping = 0;
}

void
smtp_client_body_start(struct smtp_client *c)
{
	struct timeval tv = smtp_client_tv(c->to.block);

	c->t.in_body = 1;
	c->chunk = xmalloc(SMTP_CLIENT_CHUNK);
	c->stuffed = xmalloc(2 * SMTP_CLIENT_CHUNK + 2);
	bufferevent_set_timeouts(c->bev, NULL, &tv);
	bufferevent_setwatermark(c->bev, EV_WRITE, SMTP_CLIENT_OUT_LOW, 0);
	/* whole header fields, CRLF at their ends, none starting with '.' */
	if (c->t.prefix != NULL)
		evbuffer_add(bufferevent_get_output(c->bev), c->t.prefix, strlen(c->t.prefix));
	smtp_client_body_pump(c);
}
