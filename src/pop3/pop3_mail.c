/*
 * pop3_mail: the TRANSACTION commands of RFC 1939 — STAT, LIST, UIDL,
 * RETR, TOP, DELE, RSET — and QUIT's UPDATE state. Message numbers are
 * indexes into the list fixed at login; a message marked deleted is
 * invisible to every command until RSET. Sizes are RFC822.SIZE from the
 * index: the octets RETR sends, CRLF line ends, before dot-stuffing.
 * A unique-id is the folder's UIDVALIDITY and the message's UID, both in
 * hex ("%08x%08x"): stable across restarts, never given to another message
 * (the store never reuses a UID and changes UIDVALIDITY only when the
 * folder is created anew).
 * RETR marks the message \Seen at QUIT (TOP does not), as Dovecot does.
 * Public (module-internal): pop3_mail_stat, pop3_mail_list,
 * pop3_mail_uidl, pop3_mail_retr, pop3_mail_top, pop3_mail_dele,
 * pop3_mail_rset, pop3_mail_quit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pop3/pop3_int.h"
#include "util/log.h"
#include "util/worker.h"
#include "util/xalloc.h"

/* A decimal number of at most 9 digits, nothing else: -1 otherwise. */
static long
pop3_mail_number(const char *p, const char **end_r)
{
	long v = 0;
	int n = 0;

	while (*p >= '0' && *p <= '9' && n < 10) {
		v = v * 10 + (*p++ - '0');
		n++;
	}
	if (n == 0 || n > 9)
		return -1;
	*end_r = p;
	return v;
}

/* The message a "msg" argument names, or NULL after the -ERR. */
static struct pop3_msg *
pop3_mail_arg(struct pop3_session *s, const char *arg, const char **rest_r, const char *usage)
{
	const char *end;
	long n = pop3_mail_number(arg, &end);
	struct pop3_msg *m;

	if (n < 0 || (*end != '\0' && (rest_r == NULL || *end != ' '))) {
		pop3_error(s, "Syntax: %s", usage);
		return NULL;
	}
	if (n < 1 || (size_t)n > s->md->n) {
		pop3_reply(s, "-ERR No such message");
		return NULL;
	}
	m = &s->md->msgs[n - 1];
	if (m->deleted) {
		pop3_reply(s, "-ERR Message %ld already deleted", n);
		return NULL;
	}
	if (rest_r != NULL)
		*rest_r = *end == ' ' ? end + 1 : end;
	return m;
}

static void
pop3_mail_totals(const struct pop3_session *s, size_t *n_r, long long *octets_r)
{
	*n_r = 0;
	*octets_r = 0;
	for (size_t i = 0; i < s->md->n; i++)
		if (!s->md->msgs[i].deleted) {
			(*n_r)++;
			*octets_r += s->md->msgs[i].size;
		}
}

void
pop3_mail_stat(struct pop3_session *s, const char *arg)
{
	size_t n;
	long long octets;

	pop3_mail_totals(s, &n, &octets);
	pop3_reply(s, "+OK %zu %lld", n, octets);
}

static void
pop3_mail_line(struct pop3_session *s, size_t i, int uidl, const char *prefix)
{
	const struct pop3_msg *m = &s->md->msgs[i];

	if (uidl)
		pop3_reply(s, "%s%zu %08x%08x", prefix, i + 1, s->md->uidvalidity, m->uid);
	else
		pop3_reply(s, "%s%zu %lld", prefix, i + 1, m->size);
}

/* LIST and UIDL: one message, or every one not deleted. Long lists go out
 * in one batch: a line per message is small (5,000 messages ~ 100 KB). */
static void
pop3_mail_listing(struct pop3_session *s, const char *arg, int uidl)
{
	const struct pop3_msg *m;
	size_t n;
	long long octets;

	if (*arg != '\0') {
		if ((m = pop3_mail_arg(s, arg, NULL, uidl ? "UIDL [msg]" : "LIST [msg]")) != NULL)
			pop3_mail_line(s, (size_t)(m - s->md->msgs), uidl, "+OK ");
		return;
	}
	pop3_mail_totals(s, &n, &octets);
	if (uidl)
		pop3_reply(s, "+OK");
	else
		pop3_reply(s, "+OK %zu messages (%lld octets)", n, octets);
	for (size_t i = 0; i < s->md->n; i++)
		if (!s->md->msgs[i].deleted)
			pop3_mail_line(s, i, uidl, "");
	pop3_reply(s, ".");
}

void
pop3_mail_list(struct pop3_session *s, const char *arg)
{
	pop3_mail_listing(s, arg, 0);
}

void
pop3_mail_uidl(struct pop3_session *s, const char *arg)
{
	pop3_mail_listing(s, arg, 1);
}

/* RETR and TOP: the file goes out in chunks (pop3_session_send_file). */
static int
pop3_mail_send(struct pop3_session *s, struct pop3_msg *m, long body_lines)
{
	const char *e;
	off_t len;
	int fd = pop3_maildrop_msg_open(s->md, m->uid, &len, &e);

	if (fd < 0) {
		if (errno == ENOENT) {
			pop3_reply(s, "-ERR Message was removed by another session");
			return -1;
		}
		log_err(s->id, "event=retr_failed service=pop3 user=%s uid=%u error=%s", log_q(s->user),
			m->uid, log_q(e));
		pop3_reply(s, "-ERR [SYS/TEMP] Cannot read the message, try again later");
		return -1;
	}
	if (body_lines < 0)
		pop3_reply(s, "+OK %lld octets", m->size);
	else
		pop3_reply(s, "+OK");
	pop3_session_send_file(s, fd, len, body_lines);
	return 0;
}

void
pop3_mail_retr(struct pop3_session *s, const char *arg)
{
	struct pop3_msg *m = pop3_mail_arg(s, arg, NULL, "RETR msg");

	if (m != NULL && pop3_mail_send(s, m, -1) == 0) {
		if (!m->retrieved)
			s->nretr++;
		m->retrieved = 1;
	}
}

void
pop3_mail_top(struct pop3_session *s, const char *arg)
{
	const char *rest, *end;
	struct pop3_msg *m = pop3_mail_arg(s, arg, &rest, "TOP msg n");
	long n;

	if (m == NULL)
		return;
	/* more lines than any message has: the whole body */
	n = pop3_mail_number(rest, &end);
	if (n < 0 && strspn(rest, "0123456789") > 9 && rest[strspn(rest, "0123456789")] == '\0')
		n = 999999999;
	else if (n < 0 || *end != '\0') {
		pop3_error(s, "Syntax: TOP msg n");
		return;
	}
	pop3_mail_send(s, m, n);
}

void
pop3_mail_dele(struct pop3_session *s, const char *arg)
{
	struct pop3_msg *m = pop3_mail_arg(s, arg, NULL, "DELE msg");

	if (m == NULL)
		return;
	m->deleted = 1;
	s->ndele++;
	pop3_reply(s, "+OK Message %zu deleted", (size_t)(m - s->md->msgs) + 1);
}

void
pop3_mail_rset(struct pop3_session *s, const char *arg)
{
	size_t n;
	long long octets;

	for (size_t i = 0; i < s->md->n; i++)
		s->md->msgs[i].deleted = 0;
	s->ndele = 0;
	pop3_mail_totals(s, &n, &octets);
	pop3_reply(s, "+OK Maildrop has %zu messages (%lld octets)", n, octets);
}

/* --- QUIT: the UPDATE state ------------------------------------------------ */

struct pop3_quit {
	struct pop3_session *s;
	struct pop3_maildrop *md;
	int rc;
	unsigned expunged;
	char err[256];
};

static void
pop3_mail_quit_run(void *arg)
{
	struct pop3_quit *q = arg;
	const char *e = NULL;

	if ((q->rc = pop3_maildrop_update(q->md, &q->expunged, &e)) != 0)
		snprintf(q->err, sizeof(q->err), "%s", e ? e : "failed");
}

static void
pop3_mail_quit_done(void *arg)
{
	struct pop3_quit *q = arg;
	struct pop3_session *s = q->s;
	int rc = q->rc;

	if (rc != 0)
		log_err(s->id, "event=update_failed service=pop3 user=%s session=%s error=%s",
			log_q(s->user), s->id, log_q(q->err));
	s->nexpunged = q->expunged;
	free(q);
	if (pop3_session_resume(s))
		return;
	if (rc != 0)
		pop3_session_kill(s, "-ERR [SYS/TEMP] Some deleted messages were not removed\r\n");
	else
		pop3_session_kill(s, "+OK Bye\r\n");
}

/* RFC 1939 §6: the deletions happen now and only now; a session that
 * ends any other way changes nothing. */
void
pop3_mail_quit(struct pop3_session *s)
{
	struct pop3_quit *q;

	s->state = POP3_UPDATE;
	if (pop3_maildrop_changes(s->md) == 0) {
		pop3_session_kill(s, "+OK Bye\r\n");
		return;
	}
	q = xcalloc(1, sizeof(*q));
	q->s = s;
	q->md = s->md;
	pop3_session_pause(s);
	worker_submit(s->srv->d.pool, pop3_mail_quit_run, pop3_mail_quit_done, q);
}
