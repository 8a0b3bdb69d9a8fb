/*
 * smtpd_session: one SMTP server conversation (RFC 5321) — reading command
 * lines, the synchronisation rules of RFC 2920, STARTTLS (RFC 3207), and the
 * DATA phase that streams into the queue and commits it before replying.
 * The commands themselves are rows of the table in smtpd_cmd.c.
 * Public (module-internal): smtpd_session_start, smtpd_session_kill,
 * smtpd_reply, smtpd_session_reset.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "queue/queue.h"
#include "smtpd/smtpd_cmd.h"
#include "smtpd/smtpd_int.h"
#include "conf/config.h"
#include "util/log.h"
#include "util/worker.h"
#include "util/xalloc.h"

static void smtpd_session_read(struct bufferevent *bev, void *arg);
static void smtpd_session_write(struct bufferevent *bev, void *arg);
static void smtpd_session_event(struct bufferevent *bev, short what, void *arg);
static void smtpd_session_process(struct smtpd_session *s);

void
smtpd_reply(struct smtpd_session *s, const char *fmt, ...)
{
	struct evbuffer *out = s->replies;
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
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
	if (s->greet_ev)
		event_free(s->greet_ev);
	if (s->free_ev)
		event_free(s->free_ev);
	if (s->raw_cb)
		evbuffer_remove_cb_entry(bufferevent_get_output(s->raw), s->raw_cb);
	if (s->bev)
		bufferevent_free(s->bev);
	evbuffer_free(s->replies);
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

/* Close after the reply is written. A session with a commit in flight is
 * freed when the commit completes. */
void
smtpd_session_kill(struct smtpd_session *s, const char *reply)
{
	if (s->dead)
		return;
	if (reply == NULL || s->bev == NULL) {
		if (s->busy) {
			s->dead = 1;
			return;
		}
		smtpd_session_free(s);
		return;
	}
	s->closing = 1;
	bufferevent_disable(s->bev, EV_READ);
	bufferevent_enable(s->bev, EV_WRITE);
	evbuffer_add_buffer(bufferevent_get_output(s->bev), s->replies);
	evbuffer_add(bufferevent_get_output(s->bev), reply, strlen(reply));
	bufferevent_setcb(s->bev, NULL, smtpd_session_write, smtpd_session_event, s);
}

static void
smtpd_session_greet(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd_session *s = arg;

	if (s->greeted)
		return;
	if (evbuffer_get_length(bufferevent_get_input(s->bev)) > 0) {
		log_msg(s->id, "event=reject client=[%s] reason=pregreet code=554", s->client);
		smtpd_session_kill(s, "554 5.5.0 Protocol error: you talked before my greeting\r\n");
		return;
	}
	s->greeted = 1;
	smtpd_reply(s, "220 %s ESMTP tandem", s->srv->d.cf->hostname);
	smtpd_session_process(s);
}

static void
smtpd_session_addr(struct smtpd_session *s, struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &sin->sin_addr, s->client, sizeof(s->client));
		s->port = ntohs(sin->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)sa;
		strcpy(s->client, "IPv6:");
		inet_ntop(AF_INET6, &sin6->sin6_addr, s->client + 5, sizeof(s->client) - 5);
		s->port = ntohs(sin6->sin6_port);
	} else {
		strcpy(s->client, "unknown");
	}
}

void
smtpd_session_start(struct smtpd_server *srv, evutil_socket_t fd, struct sockaddr *sa, int salen)
{
	const struct config *cf = srv->d.cf;
	struct smtpd_session *s = xcalloc(1, sizeof(*s));
	struct timeval tv = { cf->timeout, 0 };
	char peek;

	s->srv = srv;
	s->replies = evbuffer_new();
	snprintf(s->id, sizeof(s->id), "S%lx", ++srv->next_sid);
	smtpd_session_addr(s, sa);
	s->next = srv->sessions;
	if (srv->sessions)
		srv->sessions->prev = s;
	srv->sessions = s;
	srv->nsessions++;
	/* evconnlistener accepted it non-blocking and close-on-exec already */
	s->bev = bufferevent_socket_new(srv->d.base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(s->bev, smtpd_session_read, smtpd_session_write, smtpd_session_event, s);
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	/* EV_WRITE only while replies wait (see smtpd_session_flush); socket
	 * bufferevents start with it enabled. */
	bufferevent_disable(s->bev, EV_WRITE);
	bufferevent_enable(s->bev, EV_READ);
	log_msg(s->id, "event=connect client=[%s]:%d", s->client, s->port);
	if (srv->nsessions > cf->max_connections) {
		log_msg(s->id, "event=reject client=[%s] reason=too_many_connections code=421",
			s->client);
		smtpd_session_kill(s, "421 4.7.0 Too many connections, try again later\r\n");
		return;
	}
	if (recv(fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT) == 1) {
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

/* Switch to TLS once the "220 Ready" reply has left. Whatever the client
 * sent after STARTTLS in the clear is thrown away (CVE-2011-0411). */
static void
smtpd_session_starttls(struct smtpd_session *s)
{
	struct bufferevent *tls;
	SSL *ssl;

	s->tls_pending = 0;
	evbuffer_drain(bufferevent_get_input(s->bev), evbuffer_get_length(bufferevent_get_input(s->bev)));
	ssl = SSL_new(s->srv->d.tls);
	tls = bufferevent_openssl_filter_new(s->srv->d.base, s->bev, ssl,
					     BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (tls == NULL) {
		SSL_free(ssl);
		smtpd_session_kill(s, NULL);
		return;
	}
	s->raw = s->bev;
	s->bev = tls;
	s->tls = 1;
	bufferevent_setcb(s->bev, smtpd_session_read, smtpd_session_write, smtpd_session_event, s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	{
		struct timeval tv = { s->srv->d.cf->timeout, 0 };
		bufferevent_set_timeouts(s->bev, &tv, &tv);
	}
}

static void
smtpd_session_free_cb(evutil_socket_t fd, short what, void *arg)
{
	smtpd_session_free(arg);
}

/* The TLS filter hands its bytes to the socket's bufferevent: a last reply
 * has left only once that one is empty too. */
static void
smtpd_session_raw_drained(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct smtpd_session *s = arg;

	if (evbuffer_get_length(buf) == 0 && !evtimer_pending(s->free_ev, NULL)) {
		struct timeval now = { 0, 0 };
		evtimer_add(s->free_ev, &now);
	}
}

static void
smtpd_session_write(struct bufferevent *bev, void *arg)
{
	struct smtpd_session *s = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return;
	if (s->closing) {
		if (s->raw != NULL && evbuffer_get_length(bufferevent_get_output(s->raw)) > 0) {
			if (s->raw_cb == NULL) {
				s->free_ev = evtimer_new(s->srv->d.base, smtpd_session_free_cb, s);
				s->raw_cb = evbuffer_add_cb(bufferevent_get_output(s->raw),
							    smtpd_session_raw_drained, s);
			}
			return;
		}
		smtpd_session_free(s);
		return;
	}
	if (s->tls_pending)
		smtpd_session_starttls(s);
	else if (!s->tls)
		bufferevent_disable(bev, EV_WRITE);
}

static void
smtpd_session_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtpd_session *s = arg;

	if (what & BEV_EVENT_CONNECTED)
		return;   /* the TLS handshake is done; the client speaks next */
	if (what & BEV_EVENT_TIMEOUT) {
		log_msg(s->id, "event=timeout client=[%s] state=%s", s->client,
			s->in_data ? "data" : "command");
		if (!s->closing) {
			smtpd_session_kill(s, "421 4.4.2 Timeout exceeded, closing connection\r\n");
			bufferevent_enable(s->bev, EV_WRITE);
			return;
		}
	} else if (what & BEV_EVENT_ERROR) {
		unsigned long e = bufferevent_get_openssl_error(bev);
		if (e)
			log_msg(s->id, "event=tls_error client=[%s] error=%s", s->client,
				log_q(ERR_reason_error_string(e)));
	}
	if (s->in_data && !s->closing)
		log_msg(s->id, "event=lost_connection client=[%s] state=data", s->client);
	smtpd_session_kill(s, NULL);
}

/* --- DATA --------------------------------------------------------------- */

struct smtpd_commit {
	struct smtpd_session *s;
	int rc, err;
};

static void
smtpd_commit_work(void *arg)
{
	struct smtpd_commit *c = arg;

	struct smtpd_session *s = c->s;

	c->rc = queue_in_commit(s->in);
	c->err = c->rc == 0 ? 0 : errno;
	/* Logged here, the moment it is on disk: a crash before the reply
	 * still leaves the message's origin in the log. */
	if (c->rc == 0)
		log_msg(queue_in_qid(s->in), "event=queued from=<%s> nrcpt=%d size=%lld client=[%s] "
			"session=%s", s->sender, s->nrcpt, queue_in_size(s->in), s->client, s->id);
}

static void
smtpd_commit_done(void *arg)
{
	struct smtpd_commit *c = arg;
	struct smtpd_session *s = c->s;
	int rc = c->rc, err = c->err;
	char qid[QUEUE_ID_LEN + 1];

	free(c);
	s->busy = 0;
	snprintf(qid, sizeof(qid), "%s", queue_in_qid(s->in));
	if (rc == 0) {
		s->nmessages++;
		if (!s->dead)
			smtpd_reply(s, "250 2.0.0 Ok: queued as %s", qid);
		if (s->srv->d.committed)
			s->srv->d.committed(s->srv->d.arg, qid, s->rcpt, s->nrcpt);
		smtpd_session_reset(s);
	} else {
		log_err(qid, "event=commit_failed error=%s client=[%s]", log_q(strerror(err)),
			s->client);
		if (!s->dead)
			smtpd_reply(s, "451 4.3.0 Error: could not store the message, try again later");
		smtpd_session_reset(s);
	}
	if (s->dead) {
		s->dead = 0;
		smtpd_session_free(s);
		return;
	}
	smtpd_session_process(s);
}

static void
smtpd_data_reject(struct smtpd_session *s, const char *code, const char *why)
{
	const char *qid = s->in ? queue_in_qid(s->in) : s->id;

	log_msg(qid, "event=reject stage=data from=<%s> client=[%s] code=%.3s reason=%s", s->sender,
		s->client, code, log_q(why));
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
		s->busy = 1;
		worker_submit(s->srv->d.pool, smtpd_commit_work, smtpd_commit_done, c);
	}
}

/* Stream DATA bytes from the input buffer through the filter to the queue. */
static void
smtpd_data_read(struct smtpd_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);

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
		if (outlen > 0)
			queue_in_write(s->in, s->dbuf, outlen);
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

/* Take one line off the input. 1: line in buf; 0: need more; -1 over-long
 * (the rest of that line is skipped). */
static int
smtpd_session_line(struct smtpd_session *s, char *buf, size_t buflen, size_t *len_r)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer_ptr p = evbuffer_search(in, "\n", 1, NULL);
	size_t n;

	if (p.pos < 0) {
		if (evbuffer_get_length(in) < SMTPD_LINE_BUF)
			return 0;
		evbuffer_drain(in, evbuffer_get_length(in));
		if (s->skip_line)
			return 0;
		s->skip_line = 1;
		return -1;
	}
	n = (size_t)p.pos;
	if (s->skip_line) {
		evbuffer_drain(in, n + 1);
		s->skip_line = 0;
		return 0;
	}
	if (n + 1 > buflen) {
		evbuffer_drain(in, n + 1);
		return -1;
	}
	evbuffer_remove(in, buf, n + 1);
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	*len_r = n;
	return 1;
}

/* Replies go out at once with one write(2) for the whole batch; the write
 * event (two epoll_ctl calls a reply) is armed only when the socket cannot
 * take everything. A bufferevent's own output cannot be written from
 * outside, so replies gather in s->replies first. TLS sessions hand them to
 * the filter. */
static void
smtpd_session_flush(struct smtpd_session *s)
{
	struct evbuffer *out;

	if (s->bev == NULL || s->closing)
		return;
	out = bufferevent_get_output(s->bev);
	if (!s->tls && !s->tls_pending && evbuffer_get_length(out) == 0 &&
	    evbuffer_get_length(s->replies) > 0)
		evbuffer_write(s->replies, bufferevent_getfd(s->bev));
	if (evbuffer_get_length(s->replies) > 0 || s->tls || s->tls_pending) {
		evbuffer_add_buffer(out, s->replies);
		bufferevent_enable(s->bev, EV_WRITE);
	}
}

static void
smtpd_session_run(struct smtpd_session *s)
{
	char line[SMTPD_LINE_BUF + 1];
	size_t len;
	int rc;

	while (!s->busy && !s->closing && !s->tls_pending && s->greeted) {
		if (s->in_data) {
			smtpd_data_read(s);
			if (s->in_data || s->busy)
				return;
			continue;
		}
		rc = smtpd_session_line(s, line, sizeof(line), &len);
		if (rc == 0)
			return;
		if (rc < 0) {
			smtpd_reply(s, "500 5.5.2 Line too long");
			s->errors++;
			continue;
		}
		smtpd_cmd_dispatch(s, line, len);
		if (s->errors >= s->srv->d.cf->max_errors && !s->closing) {
			log_msg(s->id, "event=reject client=[%s] reason=too_many_errors", s->client);
			smtpd_session_kill(s, "421 4.7.0 Too many errors, closing connection\r\n");
		}
	}
}

static void
smtpd_session_process(struct smtpd_session *s)
{
	smtpd_session_run(s);
	smtpd_session_flush(s);
}

static void
smtpd_session_read(struct bufferevent *bev, void *arg)
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

/* Called by DATA's handler after 354: start the filter. */
void
smtpd_session_begin_data(struct smtpd_session *s)
{
	smtp_data_init(&s->data, (long long)s->srv->d.cf->max_message_size);
	s->in_data = 1;
}

/* Is there input beyond the command just read? (RFC 2920 synchronisation) */
int
smtpd_session_has_input(struct smtpd_session *s)
{
	return evbuffer_get_length(bufferevent_get_input(s->bev)) > 0;
}
