/*
 * smtp_client: the outgoing SMTP session (see smtp_client.h).
 *
 * Every wait of the conversation is a step of a plan: connect, greeting,
 * each command and the TLS handshake. Steps are written in order (all of a
 * transaction at once with PIPELINING, else one after each reply) and
 * their replies are matched in order, each by the handler in its row of
 * smtp_client_cmds[], which also names its stage and its timeout. One
 * timer bounds the wait for the step at the head of the plan, from the
 * moment it starts, whatever bytes dribble in meanwhile.
 *
 * Callbacks into the caller may free the client or start the next message:
 * every entry from libevent counts its depth, and a client freed inside a
 * callback is destroyed when the outermost entry returns.
 *
 * This file holds the plan, the end of a session, the events from libevent
 * and the life cycle; the other files of the client (smtp_client_int.h)
 * hold the greeting, EHLO/HELO and STARTTLS (smtp_client_setup.c), the
 * mail transaction (smtp_client_tx.c) and the body (smtp_client_body.c).
 * Public: smtp_client_new, smtp_client_etrn, smtp_client_quit, smtp_client_free,
 * smtp_client_set_log_id,
 * smtp_client_usable, smtp_client_extensions, smtp_client_size_limit,
 * smtp_client_tls_active, smtp_client_stage_name.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "smtp/smtp_client.h"
#include "smtp/smtp_client_int.h"
#include "smtp/smtp_reply.h"
#include "util/log.h"
#include "util/net.h"
#include "util/xalloc.h"

static smtp_client_reply_fn smtp_client_on_quit, smtp_client_on_etrn;

/* What each step writes, which stage it is, how long its reply may take,
 * and who reads the reply. Steps without a verb are waits (connect,
 * greeting, handshake) or written by the body pump (the final dot). */
static const struct smtp_client_cmd_row {
	const char *name;                /* in logs */
	const char *verb;
	const char *waiting;             /* "timeout waiting for ..." */
	enum smtp_client_stage stage;
	size_t timeout;                  /* offset in struct smtp_client_timeouts */
	smtp_client_reply_fn *reply;
} smtp_client_cmds[] = {
#define T(f) offsetof(struct smtp_client_timeouts, f)
	[SMTP_CLIENT_CMD_CONNECT] = { "connect", NULL, "the connection",
				      SMTP_CLIENT_STAGE_CONNECT, T(connect), NULL },
	[SMTP_CLIENT_CMD_GREETING] = { "greeting", NULL, "the greeting",
				       SMTP_CLIENT_STAGE_GREETING, T(greeting), smtp_client_on_greeting },
	[SMTP_CLIENT_CMD_EHLO] = { "EHLO", "EHLO", "the reply to EHLO",
				   SMTP_CLIENT_STAGE_HELO, T(helo), smtp_client_on_ehlo },
	[SMTP_CLIENT_CMD_HELO] = { "HELO", "HELO", "the reply to HELO",
				   SMTP_CLIENT_STAGE_HELO, T(helo), smtp_client_on_helo },
	[SMTP_CLIENT_CMD_STARTTLS] = { "STARTTLS", "STARTTLS", "the reply to STARTTLS",
				       SMTP_CLIENT_STAGE_TLS, T(helo), smtp_client_on_starttls },
	[SMTP_CLIENT_CMD_HANDSHAKE] = { "handshake", NULL, "the TLS handshake",
					SMTP_CLIENT_STAGE_TLS, T(helo), NULL },
	[SMTP_CLIENT_CMD_RSET] = { "RSET", "RSET", "the reply to RSET",
				   SMTP_CLIENT_STAGE_RSET, T(rset), smtp_client_on_rset },
	[SMTP_CLIENT_CMD_MAIL] = { "MAIL", "MAIL", "the reply to MAIL",
				   SMTP_CLIENT_STAGE_MAIL, T(mail), smtp_client_on_mail },
	[SMTP_CLIENT_CMD_RCPT] = { "RCPT", "RCPT", "the reply to RCPT",
				   SMTP_CLIENT_STAGE_RCPT, T(rcpt), smtp_client_on_rcpt },
	[SMTP_CLIENT_CMD_DATA] = { "DATA", "DATA", "the reply to DATA",
				   SMTP_CLIENT_STAGE_DATA, T(data), smtp_client_on_data },
	[SMTP_CLIENT_CMD_DOT] = { "dot", NULL, "the reply to the final dot",
				  SMTP_CLIENT_STAGE_DOT, T(dot), smtp_client_on_dot },
	[SMTP_CLIENT_CMD_QUIT] = { "QUIT", "QUIT", "the reply to QUIT",
				   SMTP_CLIENT_STAGE_QUIT, T(quit), smtp_client_on_quit },
	[SMTP_CLIENT_CMD_ETRN] = { "ETRN", "ETRN", "the reply to ETRN",
				   SMTP_CLIENT_STAGE_ETRN, T(mail), smtp_client_on_etrn },
	[SMTP_CLIENT_CMD_AUTH] = { "AUTH", "AUTH", "the reply to AUTH",
				   SMTP_CLIENT_STAGE_AUTH, T(helo), smtp_client_on_auth },
};

/* RFC 5321 4.5.3.2 (rset and quit as Postfix), in milliseconds. */
static const struct {
	size_t field;
	unsigned ms;
} smtp_client_default_timeouts[] = {
	{ T(connect), 30000 }, { T(greeting), 300000 }, { T(helo), 300000 }, { T(mail), 300000 },
	{ T(rcpt), 300000 }, { T(data), 120000 }, { T(block), 180000 }, { T(dot), 600000 },
	{ T(rset), 20000 }, { T(quit), 300000 },
#undef T
};

static void smtp_client_destroy(struct smtp_client *c);

const char *
smtp_client_stage_name(enum smtp_client_stage stage)
{
	static const char *const names[] = {
		"none", "connect", "greeting", "helo", "tls", "rset", "mail", "rcpt", "data", "dot", "quit",
		"etrn", "auth",
	};

	if ((unsigned)stage >= sizeof(names) / sizeof(names[0]))
		return "unknown";
	return names[stage];
}

/* --- results ------------------------------------------------------------ */

/* Fill res (its text owned by *textp) from a code, a status and a text. */
void
smtp_client_result_set(struct smtp_client_result *res, char **textp, enum smtp_client_stage stage,
		       int code, const char *esc, const char *text, unsigned local)
{
	int class = code / 100 == 2 || code / 100 == 5 ? code / 100 : 4;
	char *p = xstrdup(text ? text : "");

	memset(res, 0, sizeof(*res));
	res->stage = class == 2 ? SMTP_CLIENT_STAGE_NONE : stage;
	res->status = class == 2 ? SMTP_CLIENT_OK : class == 5 ? SMTP_CLIENT_PERM : SMTP_CLIENT_TEMP;
	res->code = code;
	if (esc != NULL && *esc != '\0')
		snprintf(res->esc, sizeof(res->esc), "%s", esc);
	else
		snprintf(res->esc, sizeof(res->esc), "%d.0.0", class);
	res->local = local != 0;
	free(*textp);
	*textp = p;
	for (; *p; p++)
		if (*p == '\n')
			*p = ' ';
	res->text = *textp;
}

/* --- plan and commands -------------------------------------------------- */

void
smtp_client_plan_reset(struct smtp_client *c)
{
	c->nplan = c->nsent = c->head = 0;
	c->armed = -1;
	if (c->timer)
		evtimer_del(c->timer);
}

void
smtp_client_plan_add(struct smtp_client *c, enum smtp_client_cmd cmd, int rcpt)
{
	if (c->nplan == c->plancap) {
		c->plancap = c->plancap ? c->plancap * 2 : 8;
		c->plan = xrealloc(c->plan, c->plancap * sizeof(*c->plan));
	}
	c->plan[c->nplan].cmd = cmd;
	c->plan[c->nplan].rcpt = rcpt;
	c->nplan++;
}

static unsigned
smtp_client_timeout_of(const struct smtp_client *c, enum smtp_client_cmd cmd)
{
	return *(const unsigned *)((const char *)&c->to + smtp_client_cmds[cmd].timeout);
}

struct timeval
smtp_client_tv(unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	return tv;
}

/* The timer runs for the step at the head, from when it became the head. */
static void
smtp_client_arm(struct smtp_client *c)
{
	struct timeval tv;

	if (c->head >= c->nsent) {
		evtimer_del(c->timer);
		c->armed = -1;
		return;
	}
	if (c->armed == c->head)
		return;
	c->armed = c->head;
	tv = smtp_client_tv(smtp_client_timeout_of(c, c->plan[c->head].cmd));
	evtimer_add(c->timer, &tv);
}

/* A step that is waited for without writing anything. */
void
smtp_client_expect(struct smtp_client *c, enum smtp_client_cmd cmd)
{
	smtp_client_plan_add(c, cmd, -1);
	c->nsent = c->nplan;
	smtp_client_arm(c);
}

/* AUTH PLAIN with the initial response (RFC 4954, RFC 4616): the secret
 * is built, written and wiped here; the log says only "cmd=AUTH". */
static void
smtp_client_write_auth(struct smtp_client *c, struct evbuffer *out)
{
	size_t ul = strlen(c->auth_user), pl = strlen(c->auth_password), n = ul + pl + 2;
	unsigned char *raw = xmalloc(n);
	char *b64 = xmalloc(4 * ((n + 2) / 3) + 1);
	int blen;

	raw[0] = '\0';
	memcpy(raw + 1, c->auth_user, ul);
	raw[ul + 1] = '\0';
	memcpy(raw + ul + 2, c->auth_password, pl);
	blen = EVP_EncodeBlock((unsigned char *)b64, raw, (int)n);
	evbuffer_add(out, "AUTH PLAIN ", 11);
	evbuffer_add(out, b64, (size_t)blen);
	evbuffer_add(out, "\r\n", 2);
	explicit_bzero(raw, n);
	explicit_bzero(b64, (size_t)blen);
	free(raw);
	free(b64);
}

static void
smtp_client_write_step(struct smtp_client *c, const struct smtp_client_step *st)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	const struct smtp_client_tx *t = &c->t;

	switch (st->cmd) {
	case SMTP_CLIENT_CMD_EHLO:
	case SMTP_CLIENT_CMD_HELO:
		evbuffer_add_printf(out, "%s %s\r\n", smtp_client_cmds[st->cmd].verb, c->helo);
		break;
	case SMTP_CLIENT_CMD_MAIL:
		evbuffer_add_printf(out, "MAIL FROM:<%s>", t->sender);
		if (c->ext & SMTP_CLIENT_EXT_SIZE)
			evbuffer_add_printf(out, " SIZE=%lld",
					    (long long)t->left +
						    (long long)(t->prefix ? strlen(t->prefix) : 0));
		if (t->body8bit && (c->ext & SMTP_CLIENT_EXT_8BITMIME))
			evbuffer_add_printf(out, " BODY=8BITMIME");
		if (t->smtputf8)
			evbuffer_add_printf(out, " SMTPUTF8");
		evbuffer_add(out, "\r\n", 2);
		break;
	case SMTP_CLIENT_CMD_RCPT:
		evbuffer_add_printf(out, "RCPT TO:<%s>\r\n", t->rcpt[st->rcpt]);
		break;
	case SMTP_CLIENT_CMD_ETRN:
		evbuffer_add_printf(out, "ETRN %s\r\n", c->etrn_domain);
		break;
	case SMTP_CLIENT_CMD_AUTH:
		smtp_client_write_auth(c, out);
		break;
	default:
		evbuffer_add_printf(out, "%s\r\n", smtp_client_cmds[st->cmd].verb);
		break;
	}
	if (st->cmd == SMTP_CLIENT_CMD_RCPT)
		log_debug(c->id, "event=smtp_cmd cmd=RCPT rcpt=%s", log_addr(t->rcpt[st->rcpt]));
	else
		log_debug(c->id, "event=smtp_cmd cmd=%s", smtp_client_cmds[st->cmd].name);
}

/* Write what may go now: the whole rest of the plan with PIPELINING
 * (RFC 2920: the transaction's DATA ends the group), else the next step
 * once every reply is in. */
void
smtp_client_kick(struct smtp_client *c)
{
	while (c->conn && c->nsent < c->nplan && smtp_client_cmds[c->plan[c->nsent].cmd].verb) {
		if (c->nsent > c->head && !(c->ext & SMTP_CLIENT_EXT_PIPELINING))
			break;
		smtp_client_write_step(c, &c->plan[c->nsent]);
		c->nsent++;
	}
	smtp_client_arm(c);
}

void
smtp_client_send_one(struct smtp_client *c, enum smtp_client_cmd cmd)
{
	smtp_client_plan_reset(c);
	smtp_client_plan_add(c, cmd, -1);
	smtp_client_kick(c);
}

/* --- the end of a session ----------------------------------------------- */

static void
smtp_client_close(struct smtp_client *c)
{
	if (c->bev) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	c->conn = 0;
	smtp_client_plan_reset(c);
}

void
smtp_client_call_ready(struct smtp_client *c, const struct smtp_client_result *res)
{
	smtp_client_ready_cb *cb = c->ready_cb;

	c->ready_cb = NULL;
	if (cb)
		cb(c, res, c->ready_arg);
}

/* What ended the session, for a command asked of a client that is not
 * usable (set here when nothing was recorded). */
const struct smtp_client_result *
smtp_client_failure(struct smtp_client *c)
{
	if (c->fail_text == NULL)
		smtp_client_result_set(&c->fail, &c->fail_text, SMTP_CLIENT_STAGE_CONNECT, 421,
				       "4.4.2", "connection not usable", 1);
	return &c->fail;
}

/* The ETRN is answered (or failed): hand the result over. */
static void
smtp_client_etrn_done(struct smtp_client *c)
{
	smtp_client_etrn_cb *cb = c->etrn_cb;

	c->etrn_cb = NULL;
	free(c->etrn_domain);
	c->etrn_domain = NULL;
	cb(c, &c->etrn_res, c->etrn_arg);
}

/* The connection is gone or out of step: close it, and tell whoever waits
 * (the message in flight, or ready_cb during setup). */
void
smtp_client_fail_conn(struct smtp_client *c, enum smtp_client_stage stage, int code,
		      const char *esc, const char *text, unsigned flags)
{
	smtp_client_close(c);
	smtp_client_result_set(&c->fail, &c->fail_text, stage, code, esc, text,
			       flags & SMTP_CLIENT_F_LOCAL);
	c->fail.dup = (flags & SMTP_CLIENT_F_DUP) != 0;
	c->fail.plain_retry = (flags & SMTP_CLIENT_F_PLAIN) != 0;
	if (c->quitting) {
		c->freed = 1;
		return;
	}
	(c->quiet ? log_debug : log_msg)(c->id, "event=smtp_fail stage=%s code=%d status=%s addr=[%s]:%d reason=%s%s",
		smtp_client_stage_name(stage), code, c->fail.esc, c->addr, c->port,
		log_q(c->fail_text), c->fail.dup ? " possible_duplicate=yes" : "");
	if (c->tx) {
		struct smtp_client_tx *t = &c->t;

		if (!t->msg_set) {
			t->res.msg = c->fail;
			t->res.msg.text = t->msg_text = xstrdup(c->fail_text);
			t->msg_set = 1;
		}
		smtp_client_finish(c);
	} else if (c->etrn_cb) {
		c->etrn_res = *smtp_client_failure(c);
		smtp_client_etrn_done(c);
	} else if (!c->ready) {
		smtp_client_call_ready(c, &c->fail);
	}
}

static enum smtp_client_stage
smtp_client_stage_now(const struct smtp_client *c)
{
	if (c->head < c->nsent)
		return smtp_client_cmds[c->plan[c->head].cmd].stage;
	if (c->tx)
		return SMTP_CLIENT_STAGE_DATA;
	return SMTP_CLIENT_STAGE_CONNECT;
}

/* A reply that is malformed, or that no step asked for. */
void
smtp_client_protocol_error(struct smtp_client *c, const char *why, const struct smtp_reply *r)
{
	char text[600];
	unsigned flags = SMTP_CLIENT_F_LOCAL;

	if (r != NULL)
		snprintf(text, sizeof(text), "protocol error: %s: %d %.500s", why, r->code, r->text);
	else
		snprintf(text, sizeof(text), "protocol error: %s", why);
	if (c->t.dot_sent && !c->t.dot_done)
		flags |= SMTP_CLIENT_F_DUP;
	smtp_client_fail_conn(c, smtp_client_stage_now(c), 421, "4.5.0", text, flags);
}

static void
smtp_client_on_etrn(struct smtp_client *c, const struct smtp_client_step *st,
		    const struct smtp_reply *r)
{
	smtp_client_result_set(&c->etrn_res, &c->etrn_text, SMTP_CLIENT_STAGE_ETRN, r->code, r->esc,
			       r->text, 0);
	smtp_client_plan_reset(c);
	smtp_client_etrn_done(c);
}

void
smtp_client_etrn(struct smtp_client *c, const char *domain, smtp_client_etrn_cb *cb, void *arg)
{
	if (c->tx || c->etrn_cb || c->quitting || c->freed) {
		log_panic(c->id, "event=bug reason=\"smtp_client_etrn on a busy client\"");
	}
	c->etrn_domain = xstrdup(domain);
	c->etrn_cb = cb;
	c->etrn_arg = arg;
	if (strpbrk(domain, "\r\n ") != NULL || *domain == '\0') {
		smtp_client_result_set(&c->etrn_res, &c->etrn_text, SMTP_CLIENT_STAGE_ETRN, 501,
				       "5.5.4", "not a domain for ETRN", 1);
		event_active(c->defer_ev, EV_TIMEOUT, 1);
		return;
	}
	if (!c->ready || !c->conn) {
		c->etrn_res = *smtp_client_failure(c);
		event_active(c->defer_ev, EV_TIMEOUT, 1);
		return;
	}
	smtp_client_send_one(c, SMTP_CLIENT_CMD_ETRN);
}

static void
smtp_client_on_quit(struct smtp_client *c, const struct smtp_client_step *st,
		    const struct smtp_reply *r)
{
	smtp_client_close(c);
	c->freed = 1;
}

/* --- events ------------------------------------------------------------- */

static void
smtp_client_leave(struct smtp_client *c)
{
	if (--c->depth == 0 && c->freed)
		smtp_client_destroy(c);
}

static void
smtp_client_reply(struct smtp_client *c, const struct smtp_reply *r)
{
	struct smtp_client_step st;   /* a copy: the handler may grow the plan */

	if (c->head >= c->nsent || smtp_client_cmds[c->plan[c->head].cmd].reply == NULL) {
		smtp_client_protocol_error(c, "unexpected reply", r);
		return;
	}
	st = c->plan[c->head++];
	log_debug(c->id, "event=smtp_reply stage=%s code=%d text=%s",
		  smtp_client_stage_name(smtp_client_cmds[st.cmd].stage), r->code, log_q(r->text));
	if (r->code == 421 && st.cmd != SMTP_CLIENT_CMD_QUIT) {
		/* the server is closing the channel, whatever step it was */
		if (c->tx)
			smtp_client_tx_fail(c, smtp_client_cmds[st.cmd].stage, r);
		smtp_client_fail_conn(c, smtp_client_cmds[st.cmd].stage, r->code, r->esc, r->text, 0);
		return;
	}
	smtp_client_cmds[st.cmd].reply(c, &st, r);
	if (!c->freed && c->conn)
		smtp_client_kick(c);
}

void
smtp_client_read_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_client *c = arg;
	struct evbuffer_iovec v;
	struct smtp_reply r;
	size_t used;
	int rc;

	c->depth++;
	while (!c->freed && c->conn && c->bev == bev &&
	       evbuffer_peek(bufferevent_get_input(bev), -1, NULL, &v, 1) > 0) {
		rc = smtp_reply_parser_feed(c->parser, v.iov_base, v.iov_len, &used, &r);
		evbuffer_drain(bufferevent_get_input(bev), used);
		if (rc < 0) {
			smtp_client_protocol_error(c, smtp_reply_strerror(smtp_reply_parser_error(c->parser)),
						   NULL);
		} else if (rc > 0) {
			smtp_client_reply(c, &r);
			smtp_reply_clear(&r);
		}
	}
	smtp_client_leave(c);
}

void
smtp_client_write_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_client *c = arg;

	c->depth++;
	if (c->tx && c->t.in_body)
		smtp_client_body_pump(c);
	smtp_client_leave(c);
}

static void
smtp_client_connected(struct smtp_client *c)
{
	smtp_client_plan_reset(c);
	log_debug(c->id, "event=smtp_connected addr=[%s]:%d", c->addr, c->port);
	bufferevent_enable(c->bev, EV_READ);
	smtp_client_expect(c, SMTP_CLIENT_CMD_GREETING);
}

/* The server closed a connection nobody waits on: the next send hears. */
static void
smtp_client_closed(struct smtp_client *c)
{
	smtp_client_close(c);
	if (c->quitting) {
		c->freed = 1;
		return;
	}
	log_msg(c->id, "event=smtp_closed addr=[%s]:%d", c->addr, c->port);
	if (c->fail_text == NULL)
		smtp_client_result_set(&c->fail, &c->fail_text, SMTP_CLIENT_STAGE_CONNECT, 421, "4.4.2",
				       "connection closed by the server", 1);
}

/* The connection failed, closed, or timed out writing the body. */
static void
smtp_client_lost(struct smtp_client *c, struct bufferevent *bev, short what)
{
	int err = EVUTIL_SOCKET_ERROR();
	enum smtp_client_cmd wait;
	char cause[160], why[300];

	if (c->quitting || (c->head >= c->nsent && (!c->tx || c->t.deferred))) {
		smtp_client_closed(c);   /* a deferred result still comes from the loop */
		return;
	}
	wait = c->head < c->nsent ? c->plan[c->head].cmd : SMTP_CLIENT_CMD_DATA;
	if (what & BEV_EVENT_TIMEOUT)
		snprintf(cause, sizeof(cause), "timeout after %u ms", c->to.block);
	else if (what & BEV_EVENT_EOF)
		snprintf(cause, sizeof(cause), "connection closed by the server");
	else
		snprintf(cause, sizeof(cause), "connection lost (%s)", err ? strerror(err) : "error");
	if (wait == SMTP_CLIENT_CMD_CONNECT) {
		snprintf(why, sizeof(why), "cannot connect: %s", err ? strerror(err) : "error");
		smtp_client_fail_conn(c, SMTP_CLIENT_STAGE_CONNECT, 421, "4.4.1", why, SMTP_CLIENT_F_LOCAL);
	} else if (wait == SMTP_CLIENT_CMD_HANDSHAKE) {
		unsigned long e = bufferevent_get_openssl_error(bev);

		smtp_client_tls_fail(c, e ? ERR_reason_error_string(e) : cause);
	} else {
		snprintf(why, sizeof(why), "%s while %s%s", cause,
			 c->t.in_body ? "sending the message" : "waiting for ",
			 c->t.in_body ? "" : smtp_client_cmds[wait].waiting);
		smtp_client_fail_conn(c, smtp_client_stage_now(c), 421, "4.4.2", why,
				      SMTP_CLIENT_F_LOCAL | (c->t.dot_sent ? SMTP_CLIENT_F_DUP : 0));
	}
}

void
smtp_client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_client *c = arg;

	c->depth++;
	if (what & BEV_EVENT_CONNECTED) {
		net_nodelay(bufferevent_getfd(bev));   /* again after TLS: harmless */
		if (c->head < c->nsent && c->plan[c->head].cmd == SMTP_CLIENT_CMD_CONNECT)
			smtp_client_connected(c);
		else if (c->head < c->nsent && c->plan[c->head].cmd == SMTP_CLIENT_CMD_HANDSHAKE)
			smtp_client_tls_connected(c);
	} else if (c->bev == bev) {
		smtp_client_lost(c, bev, what);
	}
	smtp_client_leave(c);
}

static void
smtp_client_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_client *c = arg;
	enum smtp_client_cmd wait;
	char why[200];

	c->depth++;
	c->armed = -1;
	if (c->head < c->nsent) {
		wait = c->plan[c->head].cmd;
		snprintf(why, sizeof(why), "timeout after %u ms waiting for %s",
			 smtp_client_timeout_of(c, wait), smtp_client_cmds[wait].waiting);
		if (c->quitting)
			smtp_client_fail_conn(c, SMTP_CLIENT_STAGE_QUIT, 421, "4.4.2", why, SMTP_CLIENT_F_LOCAL);
		else if (wait == SMTP_CLIENT_CMD_CONNECT)
			smtp_client_fail_conn(c, SMTP_CLIENT_STAGE_CONNECT, 421, "4.4.1", why,
					      SMTP_CLIENT_F_LOCAL);
		else if (wait == SMTP_CLIENT_CMD_HANDSHAKE)
			smtp_client_tls_fail(c, why);
		else
			smtp_client_fail_conn(c, smtp_client_cmds[wait].stage, 421, "4.4.2", why,
					      SMTP_CLIENT_F_LOCAL |
					      (wait == SMTP_CLIENT_CMD_DOT ? SMTP_CLIENT_F_DUP : 0));
	}
	smtp_client_leave(c);
}

int
smtp_client_expire(struct smtp_client *c, enum smtp_client_stage at)
{
	if (c->armed < 0 || !evtimer_pending(c->timer, NULL) || c->head >= c->nsent ||
	    smtp_client_cmds[c->plan[c->head].cmd].stage != at)
		return -1;
	evtimer_del(c->timer);
	smtp_client_timer_cb(-1, EV_TIMEOUT, c);
	return 0;
}

/* A result decided without the loop's help, delivered from the loop. */
static void
smtp_client_defer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_client *c = arg;

	c->depth++;
	if (c->tx && c->t.deferred)
		smtp_client_finish(c);
	if (!c->freed && c->etrn_cb)
		smtp_client_etrn_done(c);
	if (!c->freed && !c->ready && !c->conn && c->ready_cb)
		smtp_client_call_ready(c, &c->fail);
	smtp_client_leave(c);
}

/* --- life cycle --------------------------------------------------------- */

static int
smtp_client_sockaddr(struct smtp_client *c, const char *addr, int port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&c->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&c->ss;
	char buf[INET6_ADDRSTRLEN + 2];
	size_t n = strlen(addr);

	if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']' && n - 2 < sizeof(buf)) {
		memcpy(buf, addr + 1, n - 2);
		buf[n - 2] = '\0';
		addr = buf;
	}
	memset(&c->ss, 0, sizeof(c->ss));
	if (port <= 0 || port > 65535)
		return -1;
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		c->sslen = sizeof(*sin);
	} else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		c->sslen = sizeof(*sin6);
	} else {
		return -1;
	}
	c->addr = xstrdup(addr);
	return 0;
}

static void
smtp_client_set_timeouts(struct smtp_client *c, const struct smtp_client_timeouts *to)
{
	c->to = *to;
	size_t n = sizeof(smtp_client_default_timeouts) / sizeof(smtp_client_default_timeouts[0]);

	for (size_t i = 0; i < n; i++) {
		unsigned *ms = (unsigned *)((char *)&c->to + smtp_client_default_timeouts[i].field);

		if (*ms == 0)
			*ms = smtp_client_default_timeouts[i].ms;
	}
}

/* A socket bound to opts.source when it is of the target's family (-1:
 * let libevent make an unbound one). A source that cannot be bound is
 * logged and the connection goes out unbound rather than not at all. */
static evutil_socket_t
smtp_client_socket(struct smtp_client *c)
{
	struct sockaddr_storage src;
	socklen_t len = 0;
	evutil_socket_t fd;

	memset(&src, 0, sizeof(src));
	if (c->source == NULL)
		return -1;
	if (c->ss.ss_family == AF_INET &&
	    inet_pton(AF_INET, c->source, &((struct sockaddr_in *)&src)->sin_addr) == 1) {
		src.ss_family = AF_INET;
		len = sizeof(struct sockaddr_in);
	} else if (c->ss.ss_family == AF_INET6 &&
		   inet_pton(AF_INET6, c->source, &((struct sockaddr_in6 *)&src)->sin6_addr) == 1) {
		src.ss_family = AF_INET6;
		len = sizeof(struct sockaddr_in6);
	} else {
		return -1;
	}
	if ((fd = socket(src.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&src, len) != 0) {
		log_msg(c->id, "event=smtp_bind_failed source=%s error=%s", c->source,
			log_q(strerror(errno)));
		close(fd);
		return -1;
	}
	return fd;
}

static void
smtp_client_connect(struct smtp_client *c)
{
	c->bev = bufferevent_socket_new(c->base, smtp_client_socket(c), BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(c->bev, smtp_client_read_cb, smtp_client_write_cb, smtp_client_event_cb, c);
	/* reading starts once connected, so the greeting never arrives first */
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_enable(c->bev, EV_WRITE);
	c->conn = 1;
	smtp_client_expect(c, SMTP_CLIENT_CMD_CONNECT);
	(c->quiet ? log_debug : log_msg)(c->id, "event=smtp_connect addr=[%s]:%d tls=%s", c->addr, c->port,
		c->tls_ctx == NULL || c->tls_mode == SMTP_CLIENT_TLS_NONE ? "none" :
		c->tls_mode == SMTP_CLIENT_TLS_MAY ? "may" : "encrypt");
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&c->ss, c->sslen) != 0) {
		/* failures libevent does not report through the event callback */
		char why[200];

		snprintf(why, sizeof(why), "cannot connect: %s", strerror(errno));
		smtp_client_close(c);
		smtp_client_result_set(&c->fail, &c->fail_text, SMTP_CLIENT_STAGE_CONNECT, 421,
				       "4.4.1", why, 1);
		event_active(c->defer_ev, EV_TIMEOUT, 1);
	}
}

struct smtp_client *
smtp_client_new(struct event_base *base, const struct smtp_client_opts *opts,
		smtp_client_ready_cb *cb, void *arg)
{
	static unsigned long next_id;
	struct smtp_client *c = xcalloc(1, sizeof(*c));

	c->base = base;
	c->ready_cb = cb;
	c->ready_arg = arg;
	if (opts->log_id)
		snprintf(c->id, sizeof(c->id), "%s", opts->log_id);
	else
		snprintf(c->id, sizeof(c->id), "C%lx", ++next_id);
	c->helo = xstrdup(opts->helo ? opts->helo : "localhost");
	c->servername = opts->servername ? xstrdup(opts->servername) : NULL;
	c->port = opts->port;
	c->tls_ctx = opts->tls_ctx;
	c->tls_mode = opts->tls;
	c->quiet = opts->quiet;
	c->source = opts->source ? xstrdup(opts->source) : NULL;
	if (opts->auth_user != NULL && opts->auth_password != NULL) {
		c->auth_user = xstrdup(opts->auth_user);
		c->auth_password = xstrdup(opts->auth_password);
	}
	if (c->tls_ctx == NULL && c->tls_mode == SMTP_CLIENT_TLS_MAY)
		c->tls_mode = SMTP_CLIENT_TLS_NONE;
	smtp_client_set_timeouts(c, &opts->timeouts);
	c->parser = smtp_reply_parser_new();
	c->timer = evtimer_new(base, smtp_client_timer_cb, c);
	c->defer_ev = event_new(base, -1, 0, smtp_client_defer_cb, c);
	c->armed = -1;
	if (smtp_client_sockaddr(c, opts->addr ? opts->addr : "", opts->port) != 0) {
		c->addr = xstrdup(opts->addr ? opts->addr : "");
		smtp_client_result_set(&c->fail, &c->fail_text, SMTP_CLIENT_STAGE_CONNECT, 421, "4.4.1",
				       "not a numeric address and port", 1);
		log_err(c->id, "event=smtp_fail stage=connect addr=%s port=%d reason=bad_address",
			log_q(c->addr), opts->port);
		event_active(c->defer_ev, EV_TIMEOUT, 1);
		return c;
	}
	smtp_client_connect(c);
	return c;
}

static void
smtp_client_destroy(struct smtp_client *c)
{
	smtp_client_close(c);
	smtp_client_tx_free(&c->t);
	event_free(c->timer);
	event_free(c->defer_ev);
	smtp_reply_parser_free(&c->parser);
	free(c->plan);
	free(c->fail_text);
	free(c->etrn_domain);
	free(c->etrn_text);
	free(c->chunk);
	free(c->stuffed);
	free(c->addr);
	free(c->helo);
	free(c->servername);
	free(c->source);
	free(c->auth_user);
	if (c->auth_password != NULL) {
		explicit_bzero(c->auth_password, strlen(c->auth_password));
		free(c->auth_password);
	}
	free(c);
}

void
smtp_client_free(struct smtp_client **cp)
{
	struct smtp_client *c = *cp;

	if (c == NULL)
		return;
	*cp = NULL;
	c->ready_cb = NULL;
	c->freed = 1;
	if (c->depth == 0)
		smtp_client_destroy(c);
}

void
smtp_client_quit(struct smtp_client **cp)
{
	struct smtp_client *c = *cp;

	if (c == NULL)
		return;
	if (!c->conn || c->tx || c->head < c->nsent) {
		smtp_client_free(cp);
		return;
	}
	*cp = NULL;
	c->ready_cb = NULL;
	c->quitting = 1;
	smtp_client_send_one(c, SMTP_CLIENT_CMD_QUIT);
}

void
smtp_client_set_log_id(struct smtp_client *c, const char *id)
{
	if (id != NULL)
		snprintf(c->id, sizeof(c->id), "%s", id);
}

int
smtp_client_usable(const struct smtp_client *c)
{
	return c->ready && c->conn && !c->tx && !c->etrn_cb && !c->quitting && !c->freed;
}

int
smtp_client_extensions(const struct smtp_client *c)
{
	return c->ext;
}

unsigned long long
smtp_client_size_limit(const struct smtp_client *c)
{
	return (c->ext & SMTP_CLIENT_EXT_SIZE) ? c->size_max : 0;
}

int
smtp_client_tls_active(const struct smtp_client *c)
{
	return c->tls;
}
