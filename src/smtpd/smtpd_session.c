/*
 * smtpd_session: one SMTP server conversation (RFC 5321) on the connection
 * layer — command lines, the synchronisation rules of RFC 2920, STARTTLS
 * (RFC 3207), and the DATA phase that streams into the queue and commits it
 * before replying. The commands themselves are rows of the table in
 * smtpd_cmd.c. While a commit is on a worker the connection is paused: it
 * reads nothing and no timer runs, so nothing frees the session before the
 * commit's result is known, and that result is what the client hears.
 * Public (module-internal): smtpd_session_start, smtpd_session_kill,
 * smtpd_reply, smtpd_session_reset.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/rand.h>

#include "directory/directory.h"
#include "mail/addrlist.h"
#include "mail/header.h"
#include "queue/queue.h"
#include "smtpd/smtpd_cmd.h"
#include "smtpd/smtpd_int.h"
#include "smtpd/smtpd_policy.h"
#include "conf/config.h"
#include "util/conn.h"
#include "util/log.h"
#include "util/worker.h"
#include "util/xalloc.h"

static void smtpd_session_input(struct conn *c, void *arg);
static void smtpd_session_end(struct conn *c, enum conn_end why, void *arg);
static void smtpd_session_process(struct smtpd_session *s);

static const struct conn_cbs smtpd_session_cbs = {
	.input = smtpd_session_input,
	.end = smtpd_session_end,
};

void
smtpd_reply(struct smtpd_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conn_vprintf(s->c, fmt, ap);
	va_end(ap);
	conn_write(s->c, "\r\n", 2);
}

void
smtpd_session_reset(struct smtpd_session *s)
{
	free(s->sender);
	s->sender = NULL;
	for (int i = 0; i < s->nrcpt; i++)
		free(s->rcpt[i]);
	free(s->rcpt);
	s->rcpt = NULL;
	s->nrcpt = 0;
	s->in_mail = 0;
	s->smtputf8 = 0;
	s->body8 = 0;
	queue_in_free(&s->in);
}

static void
smtpd_session_free(struct smtpd_session *s)
{
	struct smtpd_server *srv = s->srv;

	log_msg(s->id, "event=disconnect client=[%s] commands=%u messages=%u errors=%u",
		s->client, s->ncommands, s->nmessages, s->errors);
	smtpd_session_reset(s);
	smtpd_auth_free(s);
	free(s->user);
	if (s->greet_ev)
		event_free(s->greet_ev);
	conn_free(&s->c);
	free(s->helo);
	free(s->dbuf);
	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	srv->nsessions--;
	free(s);
}

/* Close after the reply is written, or at once with reply NULL. A session
 * with a commit in flight is freed when the commit completes. */
void
smtpd_session_kill(struct smtpd_session *s, const char *reply)
{
	if (s->dead)
		return;
	if (reply == NULL) {
		if (s->busy) {
			s->dead = 1;
			return;
		}
		smtpd_session_free(s);
		return;
	}
	if (s->closing)
		return;
	s->closing = 1;
	conn_close(s->c, reply);
}

static void
smtpd_session_greet(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd_session *s = arg;

	if (s->greeted)
		return;
	if (conn_input_len(s->c) > 0) {
		log_msg(s->id, "event=reject client=[%s] reason=pregreet code=554", s->client);
		smtpd_session_kill(s, "554 5.5.0 Protocol error: you talked before my greeting\r\n");
		return;
	}
	s->greeted = 1;
	smtpd_reply(s, "220 %s ESMTP tandem", smtpd_cf(s)->hostname);
	smtpd_session_process(s);
}

static const char *const smtpd_over_reason[] = {
	[CONN_OVER_SERVICE] = "too_many_connections",
	[CONN_OVER_CLIENT] = "too_many_connections_from_client",
	[CONN_OVER_NET] = "too_many_connections_from_network",
};

void
smtpd_session_start(struct smtpd_server *srv, struct conn *c, int over)
{
	const struct config *cf = *srv->d.cf;
	struct smtpd_session *s = xcalloc(1, sizeof(*s));
	char peek;

	s->srv = srv;
	s->c = c;
	s->tls = conn_is_tls(c);
	snprintf(s->id, sizeof(s->id), "%s", conn_id(c));
	snprintf(s->client, sizeof(s->client), "%s", conn_client(c));
	s->next = srv->sessions;
	if (srv->sessions)
		srv->sessions->prev = s;
	srv->sessions = s;
	srv->nsessions++;
	conn_set_callbacks(c, &smtpd_session_cbs, s);
	conn_set_timeouts(c, cf->timeout, 0);
	log_msg(s->id, "event=connect client=[%s]:%d%s", s->client, conn_client_port(c),
		s->tls ? " tls=implicit" : "");
	if (over != CONN_OVER_NONE) {
		log_msg(s->id, "event=reject client=[%s] reason=%s code=421", s->client,
			smtpd_over_reason[over]);
		smtpd_session_kill(s, "421 4.7.0 Too many connections, try again later\r\n");
		return;
	}
	if (!s->tls && recv(conn_fd(c), &peek, 1, MSG_PEEK | MSG_DONTWAIT) == 1) {
		log_msg(s->id, "event=reject client=[%s] reason=pregreet code=554", s->client);
		smtpd_session_kill(s, "554 5.5.0 Protocol error: you talked before my greeting\r\n");
		return;
	}
	if (cf->greet_pause_ms > 0) {
		struct timeval gp = { cf->greet_pause_ms / 1000, (cf->greet_pause_ms % 1000) * 1000 };
		s->greet_ev = evtimer_new(srv->d.base, smtpd_session_greet, s);
		evtimer_add(s->greet_ev, &gp);
	} else {
		smtpd_session_greet(-1, 0, s);
	}
}

static void
smtpd_session_end(struct conn *c, enum conn_end why, void *arg)
{
	struct smtpd_session *s = arg;

	switch (why) {
	case CONN_END_TIMEOUT:
	case CONN_END_LIFETIME:
		log_msg(s->id, "event=timeout client=[%s] state=%s%s", s->client,
			s->in_data ? "data" : "command", why == CONN_END_LIFETIME ? " limit=session" : "");
		if (!s->closing) {
			smtpd_session_kill(s, "421 4.4.2 Timeout exceeded, closing connection\r\n");
			return;
		}
		break;
	case CONN_END_CLOSED:
		break;
	case CONN_END_EOF:
	case CONN_END_ERROR:
		if (s->in_data && !s->closing)
			log_msg(s->id, "event=lost_connection client=[%s] state=data", s->client);
		break;
	}
	smtpd_session_kill(s, NULL);
}

/* --- DATA --------------------------------------------------------------- */

static void smtpd_data_reject(struct smtpd_session *s, const char *code, const char *why);

struct smtpd_commit {
	struct smtpd_session *s;
	int rc, err;
	int refused;                 /* the From: check said no: code and text */
	char code[16], text[160];
};

struct smtpd_from_check {
	struct smtpd_session *s;
	struct smtpd_verdict v;
	int said_no;
};

static int
smtpd_from_one(const char *addr, void *arg)
{
	struct smtpd_from_check *x = arg;
	struct smtpd_session *s = x->s;

	s->srv->d.policy->sender(s->srv->d.dir, s->user, addr, &x->v);
	x->said_no = !x->v.ok;
	return x->v.ok ? 0 : 1;
}

/* Submission: every address of the header's From: must be the user's own
 * (the envelope sender's rule). 0, or -1 with c->code and c->text. */
static int
smtpd_from_check(struct smtpd_session *s, struct smtpd_commit *c)
{
	const struct smtp_data *d = &s->data;
	struct smtpd_from_check x = { .s = s };
	const char *code = "550 5.6.0", *text = NULL;

	if (d->nfrom == 0)
		text = "Message has no From: header field (RFC 5322 3.6)";
	else if (d->nfrom > 1)
		text = "Message has more than one From: header field (RFC 5322 3.6)";
	else if (d->from_over)
		text = "From: header field too long";
	else if (memchr(d->from, '\0', d->from_len) != NULL)
		text = "From: header field contains NUL";   /* what a parser stops at hides the rest */
	else if (addrlist_each(d->from, 0, NULL, smtpd_from_one, &x) <= 0) {
		if (!x.said_no) {
			text = "From: header field is no valid address list";
		} else if (x.v.code[0] == '4') {
			code = "451 4.3.0";
			text = "Temporary lookup failure";
		} else {
			code = "550 5.7.1";
			text = "From: header address not owned by the authenticated user";
		}
	}
	if (text == NULL)
		return 0;
	snprintf(c->code, sizeof(c->code), "%s", code);
	snprintf(c->text, sizeof(c->text), "%s", text);
	return -1;
}

static void
smtpd_commit_work(void *arg)
{
	struct smtpd_commit *c = arg;
	struct smtpd_session *s = c->s;

	if (s->srv->d.policy->sender != NULL && s->user != NULL && smtpd_from_check(s, c) != 0) {
		c->refused = 1;
		return;
	}
	c->rc = queue_in_commit(s->in);
	c->err = c->rc == 0 ? 0 : errno;
	/* submission: what the user sent today, for the daily limits */
	if (c->rc == 0 && s->user != NULL && s->srv->d.policy->auth &&
	    directory_send_count(s->srv->d.dir, s->user, directory_today(), 1, s->nrcpt) != 0)
		log_err(queue_in_qid(s->in), "event=send_count_failed user=%s error=%s",
			log_addr(s->user), log_q(directory_error(s->srv->d.dir)));
	/* Logged here, the moment it is on disk: a crash before the reply
	 * still leaves the message's origin in the log. */
	if (c->rc == 0)
		log_msg(queue_in_qid(s->in), "event=queued from=%s nrcpt=%d size=%lld client=[%s] "
			"session=%s message-id=%s%s%s", log_addr(s->sender), s->nrcpt,
			queue_in_size(s->in), s->client, s->id, log_q(s->data.msgid),
			s->user ? " user=" : "", s->user ? log_addr(s->user) : "");
}

static void
smtpd_commit_done(void *arg)
{
	struct smtpd_commit *c = arg;
	struct smtpd_session *s = c->s;
	int rc = c->rc, err = c->err;
	char qid[QUEUE_ID_LEN + 1];

	if (c->refused) {
		if (!smtpd_session_resume(s)) {
			smtpd_data_reject(s, c->code, c->text);
			smtpd_session_continue(s);
		}
		free(c);
		return;
	}
	free(c);
	snprintf(qid, sizeof(qid), "%s", queue_in_qid(s->in));
	/* a committed message is scheduled whether or not its client is
	 * still there to hear about it */
	if (rc == 0) {
		s->nmessages++;
		if (s->srv->d.committed)
			s->srv->d.committed(s->srv->d.arg, qid, s->rcpt, s->nrcpt);
	} else {
		log_err(qid, "event=commit_failed error=%s client=[%s]", log_q(strerror(err)),
			s->client);
	}
	smtpd_session_reset(s);
	if (smtpd_session_resume(s))
		return;   /* the session went away meanwhile */
	if (rc == 0)
		smtpd_reply(s, "250 2.0.0 Ok: queued as %s", qid);
	else
		smtpd_reply(s, "451 4.3.0 Error: could not store the message, try again later");
	smtpd_session_continue(s);
}

static void
smtpd_data_reject(struct smtpd_session *s, const char *code, const char *why)
{
	const char *qid = s->in ? queue_in_qid(s->in) : s->id;

	log_msg(qid, "event=reject stage=data from=%s client=[%s] session=%s code=%.3s reason=%s",
		log_addr(s->sender), s->client, s->id, code, log_q(why));
	smtpd_reply(s, "%s %s", code, why);
	s->errors++;
	smtpd_session_reset(s);
}

static void
smtpd_data_end(struct smtpd_session *s)
{
	struct smtp_data *d = &s->data;

	s->in_data = 0;
	if (d->errors & SMTP_DATA_ESIZE)
		smtpd_data_reject(s, "552 5.3.4", "Message size exceeds fixed maximum message size");
	else if (d->errors & SMTP_DATA_EBARE)
		smtpd_data_reject(s, "554 5.6.11", "Message contains bare CR or LF characters (RFC 5321 2.3.8)");
	else if (d->errors & SMTP_DATA_ELONG)
		smtpd_data_reject(s, "552 5.3.4", "Message contains a line longer than 1000 octets");
	else if (d->errors & SMTP_DATA_EHDR)
		smtpd_data_reject(s, "552 5.3.4", "Message header section too large");
	else if (d->received > 100)
		smtpd_data_reject(s, "554 5.4.6", "Too many Received: headers: mail loop");
	else if (queue_in_error(s->in))
		smtpd_data_reject(s, "451 4.3.0", "Error writing message to queue, try again later");
	else {
		struct smtpd_commit *c = xcalloc(1, sizeof(*c));

		c->s = s;
		/* nothing is read and no timer runs until the commit is done */
		smtpd_session_pause(s);
		worker_submit(s->srv->d.pool, smtpd_commit_work, smtpd_commit_done, c);
	}
}

/* Submission (RFC 6409 8.3, 8.4): a Date: and a Message-ID: for a message
 * that came without, at the end of its header section. */
static void
smtpd_data_add_fields(struct smtpd_session *s)
{
	struct smtp_data *d = &s->data;
	char buf[512], date[64];
	unsigned char rnd[8];
	int n;

	s->fields_added = 1;
	if (!d->saw_date) {
		header_date(time(NULL), date, sizeof(date));
		n = snprintf(buf, sizeof(buf), "Date: %s\r\n", date);
		queue_in_write(s->in, buf, (size_t)n);
	}
	if (!d->saw_msgid) {
		if (RAND_bytes(rnd, sizeof(rnd)) != 1)
			memset(rnd, 0, sizeof(rnd));
		snprintf(d->msgid, sizeof(d->msgid), "<%s.%02x%02x%02x%02x%02x%02x%02x%02x@%s>",
			     queue_in_qid(s->in), rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6],
			     rnd[7], smtpd_cf(s)->hostname);
		n = snprintf(buf, sizeof(buf), "Message-ID: %s\r\n", d->msgid);
		queue_in_write(s->in, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
	}
}

/* Stream DATA bytes from the input buffer through the filter to the queue.
 * Each chunk that completes a line restarts the connection's deadline:
 * [smtp] timeout bounds every stretch of DATA without a complete line. */
static void
smtpd_data_read(struct smtpd_session *s)
{
	struct evbuffer *in = conn_input(s->c);

	while (s->in_data && evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;
		size_t used, outlen;
		int done;

		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		if (s->dbuf_len < v.iov_len) {
			s->dbuf = xrealloc(s->dbuf, v.iov_len);
			s->dbuf_len = v.iov_len;
		}
		used = smtp_data_feed(&s->data, v.iov_base, v.iov_len, s->dbuf, &outlen, &done);
		if (s->data.at_body && !s->data.errors && outlen >= 2) {
			/* the new fields go in front of the blank line */
			queue_in_write(s->in, s->dbuf, outlen - 2);
			smtpd_data_add_fields(s);
			queue_in_write(s->in, "\r\n", 2);
		} else if (outlen > 0) {
			queue_in_write(s->in, s->dbuf, outlen);
		}
		if (done && s->data.stop_at_body && !s->fields_added && !s->data.errors)
			smtpd_data_add_fields(s);   /* a message with no body */
		if (memchr(v.iov_base, '\n', used) != NULL)
			conn_progress(s->c);
		evbuffer_drain(in, used);
		if (done)
			smtpd_data_end(s);
	}
	if (!s->in_data && s->dbuf_len > 16384) {
		free(s->dbuf);
		s->dbuf = NULL;
		s->dbuf_len = 0;
	}
}

/* --- command lines ------------------------------------------------------ */

static void
smtpd_session_run(struct smtpd_session *s)
{
	char line[SMTPD_LINE_BUF + 1];
	size_t len;
	int rc;

	while (!s->busy && !s->closing && s->greeted && !conn_blocked(s->c)) {
		if (s->in_data) {
			smtpd_data_read(s);
			if (s->in_data || s->busy)
				return;
			continue;
		}
		rc = conn_read_line(s->c, line, sizeof(line), &len);
		if (rc == 0)
			return;
		if (smtpd_auth_pending(s)) {
			/* a line of the AUTH exchange, not a command */
			smtpd_auth_line(s, line, rc < 0 || strlen(line) != len);
			explicit_bzero(line, sizeof(line));
			continue;
		}
		if (rc < 0) {
			smtpd_reply(s, "500 5.5.2 Line too long");
			s->errors++;
			continue;
		}
		smtpd_cmd_dispatch(s, line, len);
		if (s->errors >= smtpd_cf(s)->max_errors && !s->closing) {
			log_msg(s->id, "event=reject client=[%s] reason=too_many_errors", s->client);
			smtpd_session_kill(s, "421 4.7.0 Too many errors, closing connection\r\n");
		}
	}
}

static void
smtpd_session_process(struct smtpd_session *s)
{
	smtpd_session_run(s);
	if (!s->closing)
		conn_flush(s->c);
}

static void
smtpd_session_input(struct conn *c, void *arg)
{
	struct smtpd_session *s = arg;

	if (!s->greeted) {
		/* Input while the greeting is delayed: checked when it is due. */
		if (s->greet_ev == NULL)
			return;
		smtpd_session_greet(-1, 0, s);
		return;
	}
	smtpd_session_process(s);
}

/* Work for the session goes to a worker: it reads nothing and no timer
 * runs until smtpd_session_resume. */
void
smtpd_session_pause(struct smtpd_session *s)
{
	s->busy = 1;
	conn_pause(s->c);
}

/* The work is done: 1 when the session was killed meanwhile and is now
 * freed (the caller must not touch it), else 0. */
int
smtpd_session_resume(struct smtpd_session *s)
{
	s->busy = 0;
	conn_resume(s->c);
	if (s->dead) {
		s->dead = 0;
		smtpd_session_free(s);
		return 1;
	}
	return 0;
}

/* Take the commands that wait (pipelined behind the one that paused). */
void
smtpd_session_continue(struct smtpd_session *s)
{
	if (s->srv->stopping) {
		/* the reply to the work just done goes out first */
		smtpd_session_kill(s, "421 4.3.2 Service shutting down\r\n");
		return;
	}
	smtpd_session_process(s);
}

/* Called by DATA's handler after 354: start the filter. */
void
smtpd_session_begin_data(struct smtpd_session *s)
{
	smtp_data_init(&s->data, (long long)smtpd_cf(s)->max_message_size);
	/* submission adds what the message lacks to its header */
	s->data.stop_at_body = s->srv->d.policy->sender != NULL;
	s->fields_added = 0;
	s->in_data = 1;
}

/* Is there input beyond the command just read? (RFC 2920 synchronisation) */
int
smtpd_session_has_input(struct smtpd_session *s)
{
	return conn_input_len(s->c) > 0;
}
