/*
 * imap_session: one IMAP conversation on the connection layer — the
 * greeting, the parser fed straight from the input buffer, the literal
 * decisions (a literal over the limit is refused before any "+", and
 * nothing of its declared size is allocated), commands that run over
 * several turns of the loop (FETCH, SEARCH, IDLE, AUTHENTICATE), worker jobs
 * with the connection paused, timeouts (before login 60 s a line and 120 s
 * in all, [imap] timeout after) and the end of the session with its log line.
 * Public (module-internal): imap_session_start, imap_session_kill,
 * imap_session_process, imap_printf, imap_done, imap_yield, imap_job,
 * imap_job_resume, imap_literal_refuse.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/sasl.h"
#include "conf/config.h"
#include "imap/imap_int.h"
#include "store/store.h"
#include "util/conn.h"
#include "util/log.h"
#include "util/xalloc.h"

#define IMAP_MAX_ERRORS 20      /* bad commands in a row before we hang up */

static void imap_session_input(struct conn *c, void *arg);
static void imap_session_end(struct conn *c, enum conn_end why, void *arg);

static const struct conn_cbs imap_session_cbs = {
	.input = imap_session_input,
	.end = imap_session_end,
};

void
imap_printf(struct imap_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conn_vprintf(s->c, fmt, ap);
	va_end(ap);
}

static void
imap_session_clear_cmd(struct imap_session *s)
{
	free(s->tag);
	s->tag = NULL;
	s->cmd = NULL;
	s->cont = NULL;
	if (s->op_free != NULL && s->op != NULL)
		s->op_free(s->op);
	s->op = NULL;
	s->op_free = NULL;
	s->synced = 0;
}

void
imap_done(struct imap_session *s, const char *status, const char *fmt, ...)
{
	va_list ap;

	if (s->state == IMAP_SELECTED && s->folder != NULL && strcmp(status, "BAD") != 0) {
		int noexp = s->cmd != NULL && (s->cmd->flags & IMAP_F_NOEXPUNGE) && !s->uid;

		/* a FETCH or STORE that has just synced (with its own skip)
		 * need not read the folder again: what changed since is told
		 * after the next command */
		if (s->synced < (noexp ? 1 : 2))
			imap_sync(s, !noexp, NULL, NULL);
	}
	conn_printf(s->c, "%s %s ", s->tag ? s->tag : "*", status);
	va_start(ap, fmt);
	conn_vprintf(s->c, fmt, ap);
	va_end(ap);
	conn_write(s->c, "\r\n", 2);
	imap_session_clear_cmd(s);
}

static void
imap_session_free(struct imap_session *s)
{
	struct imap_server *srv = s->srv;

	if (s->logged)
		log_msg(s->id, "event=logout service=imap user=%s client=[%s] session=%s commands=%u "
			"fetched=%u appended=%u stored=%u copied=%u expunged=%u", log_addr(s->user),
			s->client, s->id, s->ncommands, s->nfetched, s->nappended, s->nstored,
			s->ncopied, s->nexpunged);
	else
		log_debug(s->id, "event=disconnect service=imap client=[%s] commands=%u", s->client,
			  s->ncommands);
	imap_idle_stop(s);
	imap_session_clear_cmd(s);
	imap_append_free(s);
	sasl_free(&s->sasl);
	free(s->sasl_mech);
	imap_unselect(s);
	store_account_close(&s->acct);
	free(s->user);
	imap_parser_free(&s->parser);
	if (s->yield_ev)
		event_free(s->yield_ev);
	if (s->idle_ev)
		event_free(s->idle_ev);
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

/* Close after last is written, or at once with last NULL. A session with a
 * job in flight is freed when the job completes. */
void
imap_session_kill(struct imap_session *s, const char *last)
{
	if (s->dead)
		return;
	if (last == NULL) {
		if (s->busy) {
			s->dead = 1;
			return;
		}
		imap_session_free(s);
		return;
	}
	if (s->closing)
		return;
	s->closing = 1;
	s->state = IMAP_LOGOUT;
	conn_close(s->c, last);
}

static const char *const imap_over_reason[] = {
	[CONN_OVER_SERVICE] = "too_many_connections",
	[CONN_OVER_CLIENT] = "too_many_connections_from_client",
	[CONN_OVER_NET] = "too_many_connections_from_network",
};

void
imap_session_start(struct imap_server *srv, struct conn *c, int over)
{
	struct imap_parser_limits lim = {
		.max_line = IMAP_MAX_LINE,
		.max_args = IMAP_MAX_ARGS,
		.max_depth = IMAP_MAX_DEPTH,
		.max_literal_buffered = IMAP_LITERAL_BUFFERED,
	};
	struct imap_session *s = xcalloc(1, sizeof(*s));

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
	s->parser = imap_parser_new(&lim);
	conn_set_callbacks(c, &imap_session_cbs, s);
	conn_set_timeouts(c, IMAP_PREAUTH_TIMEOUT, IMAP_PREAUTH_LIFE);
	log_debug(s->id, "event=connect service=imap client=[%s]:%d%s", s->client,
		  conn_client_port(c), s->tls ? " tls=implicit" : "");
	if (over != CONN_OVER_NONE) {
		log_msg(s->id, "event=reject service=imap client=[%s] reason=%s", s->client,
			imap_over_reason[over]);
		imap_session_kill(s, "* BYE [UNAVAILABLE] Too many connections, try again later\r\n");
		return;
	}
	imap_printf(s, "* OK [CAPABILITY %s] tandem IMAP4rev1 ready\r\n", imap_capabilities(s));
	conn_flush(c);
}

static void
imap_session_end(struct conn *c, enum conn_end why, void *arg)
{
	struct imap_session *s = arg;

	if ((why == CONN_END_TIMEOUT || why == CONN_END_LIFETIME) && !s->closing) {
		log_msg(s->id, "event=timeout service=imap client=[%s] state=%s%s", s->client,
			s->idling ? "idle" : s->state == IMAP_NOAUTH ? "login" : "command",
			why == CONN_END_LIFETIME ? " limit=session" : "");
		imap_idle_stop(s);
		imap_session_kill(s, why == CONN_END_LIFETIME && s->state == IMAP_NOAUTH ?
				  "* BYE Autologout; no login in time\r\n" :
				  "* BYE Autologout; idle for too long\r\n");
		return;
	}
	imap_session_kill(s, NULL);
}

/* A command that was BAD: too many in a row and the client is not
 * speaking IMAP (or is probing); the session ends. */
void
imap_session_bad(struct imap_session *s)
{
	if (++s->bad_in_row < IMAP_MAX_ERRORS)
		return;
	log_msg(s->id, "event=reject service=imap client=[%s] reason=too_many_errors", s->client);
	imap_session_kill(s, "* BYE Too many invalid commands\r\n");
}

/* --- literals ------------------------------------------------------------- */

/* Refuse the pending literal before any "+" (a synchronising one: the
 * client sends nothing of it). A non-synchronising one over the limit would
 * make us read its whole declared size: the session ends instead
 * (RFC 7888 §4 allows either). */
void
imap_literal_refuse(struct imap_session *s, uint64_t size, int sync, const char *text)
{
	const char *tag = imap_parser_tag(s->parser);
	char *t = xstrdup(tag ? tag : "*");

	log_debug(s->id, "event=literal_refused service=imap client=[%s] size=%llu sync=%d",
		  s->client, (unsigned long long)size, sync);
	if (!sync && size > imap_cf(s)->imap_max_literal) {
		free(t);
		imap_session_kill(s, "* BYE [TOOBIG] Literal too large\r\n");
		return;
	}
	imap_parser_literal_reject(s->parser);
	imap_printf(s, "%s %s\r\n", t, text);
	free(t);
}

static void
imap_session_literal(struct imap_session *s)
{
	const char *cmd = imap_parser_command(s->parser);
	uint64_t size;
	size_t nargs = 0;
	int sync;

	imap_parser_literal(s->parser, &size, &sync);
	imap_parser_args(s->parser, &nargs);
	if (cmd != NULL && strcasecmp(cmd, "APPEND") == 0 && nargs >= 1 && s->app == NULL &&
	    s->state != IMAP_NOAUTH) {
		imap_append_literal(s, size, sync);
		return;
	}
	if (s->app != NULL) {
		/* a second message in one APPEND (MULTIAPPEND is not offered) */
		imap_append_free(s);
		imap_literal_refuse(s, size, sync, "BAD Only one message per APPEND");
		return;
	}
	/* before login a literal is a user name or a password */
	if (size > (s->state == IMAP_NOAUTH ? IMAP_LITERAL_PREAUTH : IMAP_LITERAL_BUFFERED) ||
	    size > imap_cf(s)->imap_max_literal) {
		imap_literal_refuse(s, size, sync, "NO [TOOBIG] Literal too large");
		return;
	}
	imap_parser_literal_accept(s->parser);
	if (sync) {
		imap_printf(s, "+ Ready for literal data\r\n");
		conn_flush(s->c);
	}
}

/* --- the command loop --------------------------------------------------- */

/* Feed the parser what is waiting; 1 when something happened that may let
 * more run, 0 when it needs more input. */
static int
imap_session_parse(struct imap_session *s)
{
	struct evbuffer *in = conn_input(s->c);
	struct evbuffer_iovec v;
	size_t used = 0;
	enum imap_parse rc;

	if (evbuffer_get_length(in) == 0 || evbuffer_peek(in, -1, NULL, &v, 1) < 1)
		return 0;
	rc = imap_parser_feed(s->parser, v.iov_base, v.iov_len, &used);
	evbuffer_drain(in, used);
	switch (rc) {
	case IMAP_PARSE_MORE:
		return evbuffer_get_length(in) > 0;
	case IMAP_PARSE_COMMAND:
		conn_progress(s->c);
		if (s->app != NULL && (imap_parser_command(s->parser) == NULL ||
				       strcasecmp(imap_parser_command(s->parser), "APPEND") != 0))
			imap_append_free(s);
		imap_cmd_dispatch(s);
		return 1;
	case IMAP_PARSE_LITERAL:
		imap_session_literal(s);
		return 1;
	case IMAP_PARSE_ERROR: {
		const char *tag = imap_parser_tag(s->parser);

		imap_append_free(s);
		log_debug(s->id, "event=bad_command service=imap client=[%s] error=%s", s->client,
			  log_q(imap_parser_error(s->parser)));
		imap_printf(s, "%s BAD %s\r\n", tag ? tag : "*", imap_parser_error(s->parser));
		imap_session_bad(s);
		return 1;
	}
	}
	return 0;
}

static void
imap_session_run(struct imap_session *s)
{
	while (!s->busy && !s->closing && !conn_blocked(s->c)) {
		if (s->app != NULL && s->app->left > 0) {
			imap_append_stream(s);
			if (s->app != NULL && s->app->left > 0)
				return;
			continue;
		}
		if (s->cont != NULL) {
			if (!s->cont(s))
				return;
			continue;
		}
		if (s->srv->stopping) {
			imap_session_kill(s, "* BYE Server shutting down\r\n");
			return;
		}
		if (s->state == IMAP_LOGOUT)
			return;
		if (!imap_session_parse(s))
			return;
	}
}

void
imap_session_process(struct imap_session *s)
{
	imap_session_run(s);
	if (!s->closing)
		conn_flush(s->c);
}

static void
imap_session_input(struct conn *c, void *arg)
{
	imap_session_process(arg);
}

static void
imap_session_yield_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imap_session *s = arg;

	if (!s->busy && !s->closing)
		imap_session_process(s);
}

void
imap_yield(struct imap_session *s)
{
	if (s->yield_ev == NULL)
		s->yield_ev = event_new(s->srv->d.base, -1, 0, imap_session_yield_cb, s);
	event_active(s->yield_ev, EV_TIMEOUT, 1);
}

void
imap_job(struct imap_session *s, worker_fn *work, worker_fn *done, void *arg)
{
	s->busy = 1;
	conn_pause(s->c);
	worker_submit(s->srv->d.pool, work, done, arg);
}

int
imap_job_resume(struct imap_session *s)
{
	s->busy = 0;
	conn_resume(s->c);
	if (s->dead) {
		s->dead = 0;
		imap_session_free(s);
		return 1;
	}
	return 0;
}
