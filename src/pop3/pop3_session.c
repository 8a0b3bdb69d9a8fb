/*
 * pop3_session: one POP3 conversation on the connection layer — the
 * greeting, command lines (answered in order, so PIPELINING holds by
 * construction), the states of RFC 1939 (AUTHORIZATION, TRANSACTION,
 * UPDATE), timeouts, and the streaming of RETR and TOP: the file is read
 * in chunks and converted as it goes out, and the session stops whenever
 * the connection's output is above its watermark (conn_blocked), so a
 * client that never reads its mail costs a bounded amount of memory. The
 * commands themselves are rows of the table in pop3_cmd.c. While a
 * password check or QUIT's deletions are in flight the connection is
 * paused: nothing is read and no timer runs.
 * Public (module-internal): pop3_session_start, pop3_session_kill,
 * pop3_reply, pop3_error, pop3_session_pause, pop3_session_resume,
 * pop3_session_continue, pop3_session_send_file, pop3_session_logged_in,
 * pop3_session_forget_login.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/sasl.h"
#include "conf/config.h"
#include "pop3/pop3_int.h"
#include "util/conn.h"
#include "util/log.h"
#include "util/xalloc.h"

/* File bytes read per step of a RETR. */
#define POP3_CHUNK 65536

static void pop3_session_input(struct conn *c, void *arg);
static void pop3_session_end(struct conn *c, enum conn_end why, void *arg);
static void pop3_session_process(struct pop3_session *s);
static void pop3_session_more(evutil_socket_t fd, short what, void *arg);

static const struct conn_cbs pop3_session_cbs = {
	.input = pop3_session_input,
	.end = pop3_session_end,
};

void
pop3_reply(struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conn_vprintf(s->c, fmt, ap);
	va_end(ap);
	conn_write(s->c, "\r\n", 2);
}

void
pop3_error(struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;

	conn_write(s->c, "-ERR ", 5);
	va_start(ap, fmt);
	conn_vprintf(s->c, fmt, ap);
	va_end(ap);
	conn_write(s->c, "\r\n", 2);
	s->errors++;
}

static void
pop3_out_stop(struct pop3_session *s)
{
	if (s->out.fd >= 0)
		close(s->out.fd);
	s->out.fd = -1;
	s->out.left = 0;
}

void
pop3_session_forget_login(struct pop3_session *s)
{
	free(s->user);
	s->user = NULL;
	free(s->login);
	s->login = NULL;
	sasl_free(&s->sasl);
	s->method = NULL;
}

static void
pop3_session_free(struct pop3_session *s)
{
	struct pop3_server *srv = s->srv;

	if (s->state != POP3_AUTHORIZATION)
		log_msg(s->id, "event=logout service=pop3 user=%s client=[%s] session=%s retr=%u "
			"dele=%u expunged=%u%s", log_q(s->user), s->client, s->id, s->nretr, s->ndele,
			s->nexpunged, s->state == POP3_TRANSACTION ? " quit=no" : "");
	log_msg(s->id, "event=disconnect service=pop3 client=[%s] errors=%u", s->client, s->errors);
	pop3_out_stop(s);
	if (s->out.more)
		event_free(s->out.more);
	pop3_maildrop_close(&s->md);
	pop3_session_forget_login(s);
	conn_free(&s->c);
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
 * with deletions on a worker is freed when they are done; one waiting for
 * a password check only (the server is being freed, auth drops the check)
 * goes at once. */
void
pop3_session_kill(struct pop3_session *s, const char *reply)
{
	if (s->dead)
		return;
	if (reply == NULL) {
		if (s->busy && !s->authing) {
			s->dead = 1;
			return;
		}
		pop3_session_free(s);
		return;
	}
	if (s->closing)
		return;
	s->closing = 1;
	pop3_out_stop(s);
	conn_close(s->c, reply);
}

static const char *const pop3_over_reason[] = {
	[CONN_OVER_SERVICE] = "too_many_connections",
	[CONN_OVER_CLIENT] = "too_many_connections_from_client",
	[CONN_OVER_NET] = "too_many_connections_from_network",
};

static unsigned
pop3_session_line_secs(const struct pop3_session *s)
{
	unsigned t = pop3_cf(s)->pop3_timeout;

	if (s->state == POP3_AUTHORIZATION && t > POP3_PRELOGIN_SECS)
		t = POP3_PRELOGIN_SECS;
	return t;
}

void
pop3_session_start(struct pop3_server *srv, struct conn *c, enum conn_over over)
{
	struct pop3_session *s = xcalloc(1, sizeof(*s));

	s->srv = srv;
	s->c = c;
	s->out.fd = -1;
	s->tls = conn_is_tls(c);
	snprintf(s->id, sizeof(s->id), "%s", conn_id(c));
	snprintf(s->client, sizeof(s->client), "%s", conn_client(c));
	s->next = srv->sessions;
	if (srv->sessions)
		srv->sessions->prev = s;
	srv->sessions = s;
	srv->nsessions++;
	conn_set_callbacks(c, &pop3_session_cbs, s);
	conn_set_timeouts(c, pop3_session_line_secs(s), POP3_PRELOGIN_LIFE);
	log_msg(s->id, "event=connect service=pop3 client=[%s]:%d%s", s->client,
		conn_client_port(c), s->tls ? " tls=implicit" : "");
	if (over != CONN_OVER_NONE) {
		log_msg(s->id, "event=reject service=pop3 client=[%s] reason=%s", s->client,
			pop3_over_reason[over]);
		pop3_session_kill(s, "-ERR [SYS/TEMP] Too many connections, try again later\r\n");
		return;
	}
	/* No APOP: the greeting carries no timestamp (RFC 1939 §7). */
	pop3_reply(s, "+OK %s POP3 server ready", pop3_cf(s)->hostname);
	conn_flush(c);
}

/* Login done: the line deadline becomes [pop3] timeout. */
void
pop3_session_logged_in(struct pop3_session *s)
{
	s->state = POP3_TRANSACTION;
	conn_set_timeouts(s->c, pop3_session_line_secs(s), 0);
}

static void
pop3_session_end(struct conn *c, enum conn_end why, void *arg)
{
	struct pop3_session *s = arg;

	if (why == CONN_END_TIMEOUT || why == CONN_END_LIFETIME) {
		log_msg(s->id, "event=timeout service=pop3 client=[%s] state=%s%s", s->client,
			s->state == POP3_AUTHORIZATION ? "authorization" : "transaction",
			why == CONN_END_LIFETIME ? " limit=session" : "");
		if (!s->closing) {
			/* RFC 1939 §3: an autologout does not enter UPDATE */
			pop3_session_kill(s, why == CONN_END_LIFETIME && s->state == POP3_AUTHORIZATION ?
					  "-ERR [SYS/TEMP] Autologout: no login in time\r\n" :
					  "-ERR [SYS/TEMP] Autologout: idle for too long\r\n");
			return;
		}
	}
	pop3_session_kill(s, NULL);
}

/* --- RETR and TOP ------------------------------------------------------ */

void
pop3_session_send_file(struct pop3_session *s, int fd, off_t len, long body_lines)
{
	s->out.fd = fd;
	s->out.left = len;
	if (s->out.more == NULL)
		s->out.more = evtimer_new(s->srv->d.base, pop3_session_more, s);
	pop3_stream_init(&s->out.st, body_lines);
}

/* One step of the response on its way: a chunk of the file converted into
 * the output. 1 when the response is complete (or failed), 0 to go on. */
static int
pop3_session_pump(struct pop3_session *s)
{
	char in[POP3_CHUNK], out[2 * POP3_CHUNK + 8];
	size_t want = s->out.left < (off_t)sizeof(in) ? (size_t)s->out.left : sizeof(in);
	size_t olen = 0;
	ssize_t n = 0;

	if (want > 0 && !s->out.st.done) {
		do
			n = read(s->out.fd, in, want);
		while (n < 0 && errno == EINTR);
		if (n <= 0) {
			/* the file shrank or failed under us: the response cannot be
			 * completed truthfully: the connection closes without the
			 * terminating dot, so the client knows */
			log_err(s->id, "event=retr_failed service=pop3 user=%s error=%s", log_q(s->user),
				log_q(n < 0 ? strerror(errno) : "file shorter than its size"));
			pop3_session_kill(s, "");
			return -1;
		}
		s->out.left -= n;
		pop3_stream_feed(&s->out.st, in, (size_t)n, out, &olen);
		conn_write(s->c, out, olen);
		conn_progress(s->c);
	}
	if (s->out.left > 0 && !s->out.st.done)
		return 0;
	olen = pop3_stream_end(&s->out.st, out);
	conn_write(s->c, out, olen);
	pop3_out_stop(s);
	return 1;
}

/* --- command lines ------------------------------------------------------ */

static void
pop3_session_run(struct pop3_session *s)
{
	char line[POP3_SASL_LINE_MAX + 1];
	size_t len, max;
	int rc;

	while (!s->busy && !s->closing && !s->dead && !conn_blocked(s->c)) {
		if (s->out.fd >= 0) {
			if (pop3_session_pump(s) < 0)
				return;
			continue;
		}
		max = s->sasl != NULL ? POP3_SASL_LINE_MAX : POP3_LINE_MAX - 1;
		rc = conn_read_line(s->c, line, max, &len);
		if (rc == 0)
			return;
		if (rc < 0) {
			if (s->sasl != NULL) {
				sasl_free(&s->sasl);
				pop3_error(s, "[AUTH] SASL response too long");
			} else {
				pop3_error(s, "Line too long");
			}
		} else if (s->sasl != NULL) {
			pop3_cmd_sasl_line(s, line, len);
		} else {
			pop3_cmd_dispatch(s, line, len);
		}
		if (s->errors >= POP3_MAX_ERRORS && !s->closing) {
			log_msg(s->id, "event=reject service=pop3 client=[%s] reason=too_many_errors",
				s->client);
			pop3_session_kill(s, "-ERR Too many errors, closing connection\r\n");
		}
	}
}

/* The connection calls back once output that was above its watermark
 * has drained; a flush that the socket took whole leaves nothing above
 * it, so a RETR under way schedules its own next step (after the other
 * sessions have had their turn). */
static void
pop3_session_process(struct pop3_session *s)
{
	struct timeval now = { 0, 0 };

	pop3_session_run(s);
	if (s->closing || s->dead)
		return;
	conn_flush(s->c);
	if (s->out.fd >= 0 && !s->busy && !conn_blocked(s->c))
		evtimer_add(s->out.more, &now);
}

static void
pop3_session_more(evutil_socket_t fd, short what, void *arg)
{
	pop3_session_process(arg);
}

static void
pop3_session_input(struct conn *c, void *arg)
{
	pop3_session_process(arg);
}

/* Work for the session goes elsewhere (auth, a worker): it reads nothing
 * and no timer runs until pop3_session_resume. */
void
pop3_session_pause(struct pop3_session *s)
{
	s->busy = 1;
	conn_pause(s->c);
}

/* The work is done: 1 when the session was killed meanwhile and is now
 * freed (the caller must not touch it), else 0. */
int
pop3_session_resume(struct pop3_session *s)
{
	s->busy = 0;
	conn_resume(s->c);
	if (s->dead) {
		s->dead = 0;
		pop3_session_free(s);
		return 1;
	}
	return 0;
}

/* Take the commands that wait (pipelined behind the one that paused). */
void
pop3_session_continue(struct pop3_session *s)
{
	if (s->srv->stopping && !s->closing) {
		conn_flush(s->c);
		pop3_session_kill(s, "-ERR [SYS/TEMP] Server shutting down\r\n");
		return;
	}
	pop3_session_process(s);
}
