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
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "smtp/smtp_client.h"
#include "smtp/smtp_reply.h"
#include "util/log.h"
#include "util/xalloc.h"

#define SMTP_CLIENT_CHUNK (64 * 1024)          /* body bytes per pread(2) */
#define SMTP_CLIENT_OUT_HIGH (256 * 1024)      /* stop reading the body above this */
#define SMTP_CLIENT_OUT_LOW (64 * 1024)        /* ... and go on below this */

enum smtp_client_cmd {
	SMTP_CLIENT_CMD_CONNECT,
	SMTP_CLIENT_CMD_GREETING,
	SMTP_CLIENT_CMD_EHLO,
	SMTP_CLIENT_CMD_HELO,
	SMTP_CLIENT_CMD_STARTTLS,
	SMTP_CLIENT_CMD_HANDSHAKE,
	SMTP_CLIENT_CMD_RSET,
	SMTP_CLIENT_CMD_MAIL,
	SMTP_CLIENT_CMD_RCPT,
	SMTP_CLIENT_CMD_DATA,
	SMTP_CLIENT_CMD_DOT,
	SMTP_CLIENT_CMD_QUIT
};

struct smtp_client_step {
	enum smtp_client_cmd cmd;
	int rcpt;                        /* RCPT: index into the message's recipients */
};

/* The message being delivered. */
struct smtp_client_tx {
	smtp_client_done_cb *cb;
	void *arg;
	char *sender;
	char **rcpt;
	int nrcpt;
	int fd;
	off_t off, left;                 /* body bytes still to read */
	unsigned body8bit : 1, smtputf8 : 1;
	unsigned msg_set : 1;            /* res.msg holds the outcome */
	unsigned mail_ok : 1, mail_failed : 1, in_body : 1, dot_sent : 1, dot_done : 1;
	unsigned empty_dot : 1;          /* a '.' only ends a DATA nobody wanted */
	unsigned deferred : 1;           /* decided without the server, told from the loop */
	unsigned cr : 1, bol : 1;        /* body filter: CR held back, at a line start */
	struct smtp_client_msg_result res;
	struct smtp_client_result *rres; /* res.rcpt, writable */
	char *msg_text;
	char **rcpt_text;
	unsigned char *refused;          /* per recipient: its RCPT was refused */
};

struct smtp_client {
	struct event_base *base;
	struct bufferevent *bev;         /* the socket, or the TLS filter over it */
	struct event *timer;             /* bounds the wait for plan[head] */
	struct event *defer_ev;          /* hands a result over from the loop */
	struct smtp_reply_parser *parser;
	char id[64];
	char *addr, *helo, *servername;
	int port;
	struct sockaddr_storage ss;
	int sslen;
	SSL_CTX *tls_ctx;
	enum smtp_client_tls tls_mode;
	struct smtp_client_timeouts to;
	smtp_client_ready_cb *ready_cb;
	void *ready_arg;
	int ext;
	unsigned long long size_max;
	unsigned conn : 1;               /* connected and in step with the server */
	unsigned ready : 1, tls : 1, tx : 1, quitting : 1, freed : 1, need_rset : 1;
	unsigned pumping : 1;            /* smtp_client_pump is on the stack */
	int depth;                       /* libevent entries on the stack */
	struct smtp_client_step *plan;
	int nplan, plancap, nsent, head, armed;
	struct smtp_client_result fail;  /* what ended the session, for later sends */
	char *fail_text;
	struct smtp_client_tx t;
	char *chunk, *stuffed;           /* body buffers, while a body is sent */
};

typedef void smtp_client_reply_fn(struct smtp_client *c, const struct smtp_client_step *st,
				  const struct smtp_reply *r);

static smtp_client_reply_fn smtp_client_on_greeting, smtp_client_on_ehlo, smtp_client_on_helo,
	smtp_client_on_starttls, smtp_client_on_rset, smtp_client_on_mail, smtp_client_on_rcpt,
	smtp_client_on_data, smtp_client_on_dot, smtp_client_on_quit;

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

static const struct {
	const char *keyword;
	int flag;
} smtp_client_exts[] = {
	{ "PIPELINING", SMTP_CLIENT_EXT_PIPELINING },
	{ "SIZE", SMTP_CLIENT_EXT_SIZE },
	{ "8BITMIME", SMTP_CLIENT_EXT_8BITMIME },
	{ "SMTPUTF8", SMTP_CLIENT_EXT_SMTPUTF8 },
	{ "STARTTLS", SMTP_CLIENT_EXT_STARTTLS },
	{ "ENHANCEDSTATUSCODES", SMTP_CLIENT_EXT_ENHANCEDSTATUSCODES },
};

static void smtp_client_destroy(struct smtp_client *c);
static void smtp_client_finish(struct smtp_client *c);
static void smtp_client_kick(struct smtp_client *c);

const char *
smtp_client_stage_name(enum smtp_client_stage stage)
{
	static const char *const names[] = {
		"none", "connect", "greeting", "helo", "tls", "rset", "mail", "rcpt", "data", "dot", "quit",
	};

	if ((unsigned)stage >= sizeof(names) / sizeof(names[0]))
		return "unknown";
	return names[stage];
}

/* --- results ------------------------------------------------------------ */

/* Fill res (its text owned by *textp) from a code, a status and a text. */
static void
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

static void
smtp_client_result_reply(struct smtp_client_result *res, char **textp, enum smtp_client_stage stage,
			 const struct smtp_reply *r)
{
	smtp_client_result_set(res, textp, stage, r->code, r->esc, r->text, 0);
}

static void
smtp_client_tx_free(struct smtp_client_tx *t)
{
	free(t->sender);
	for (int i = 0; i < t->nrcpt; i++) {
		free(t->rcpt[i]);
		free(t->rcpt_text[i]);
	}
	free(t->rcpt);
	free(t->rcpt_text);
	free(t->rres);
	free(t->refused);
	free(t->msg_text);
	memset(t, 0, sizeof(*t));
}

/* --- plan and commands -------------------------------------------------- */

static void
smtp_client_plan_reset(struct smtp_client *c)
{
	c->nplan = c->nsent = c->head = 0;
	c->armed = -1;
	if (c->timer)
		evtimer_del(c->timer);
}

static void
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

static struct timeval
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
static void
smtp_client_expect(struct smtp_client *c, enum smtp_client_cmd cmd)
{
	smtp_client_plan_add(c, cmd, -1);
	c->nsent = c->nplan;
	smtp_client_arm(c);
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
			evbuffer_add_printf(out, " SIZE=%lld", (long long)t->left);
		if (t->body8bit && (c->ext & SMTP_CLIENT_EXT_8BITMIME))
			evbuffer_add_printf(out, " BODY=8BITMIME");
		if (t->smtputf8)
			evbuffer_add_printf(out, " SMTPUTF8");
		evbuffer_add(out, "\r\n", 2);
		break;
	case SMTP_CLIENT_CMD_RCPT:
		evbuffer_add_printf(out, "RCPT TO:<%s>\r\n", t->rcpt[st->rcpt]);
		break;
	default:
		evbuffer_add_printf(out, "%s\r\n", smtp_client_cmds[st->cmd].verb);
		break;
	}
	if (st->cmd == SMTP_CLIENT_CMD_RCPT)
		log_debug(c->id, "event=smtp_cmd cmd=RCPT rcpt=<%s>", t->rcpt[st->rcpt]);
	else
		log_debug(c->id, "event=smtp_cmd cmd=%s", smtp_client_cmds[st->cmd].name);
}

/* Write what may go now: the whole rest of the plan with PIPELINING
 * (RFC 2920: the transaction's DATA ends the group), else the next step
 * once every reply is in. */
static void
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

static void
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

static void
smtp_client_call_ready(struct smtp_client *c, const struct smtp_client_result *res)
{
	smtp_client_ready_cb *cb = c->ready_cb;

	c->ready_cb = NULL;
	if (cb)
		cb(c, res, c->ready_arg);
}

/* Setup went wrong while the conversation is still in step: ready_cb
 * hears of it; smtp_client_quit can still say QUIT. */
static void
smtp_client_setup_fail(struct smtp_client *c, enum smtp_client_stage stage, int code,
		       const char *esc, const char *text, unsigned local)
{
	smtp_client_plan_reset(c);
	smtp_client_result_set(&c->fail, &c->fail_text, stage, code, esc, text, local);
	log_msg(c->id, "event=smtp_fail stage=%s code=%d status=%s addr=[%s]:%d reason=%s",
		smtp_client_stage_name(stage), code, c->fail.esc, c->addr, c->port,
		log_q(c->fail_text));
	smtp_client_call_ready(c, &c->fail);
}

enum {
	SMTP_CLIENT_F_LOCAL = 1,
	SMTP_CLIENT_F_DUP = 2,
	SMTP_CLIENT_F_PLAIN = 4
};

/* The connection is gone or out of step: close it, and tell whoever waits
 * (the message in flight, or ready_cb during setup). */
static void
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
	log_msg(c->id, "event=smtp_fail stage=%s code=%d status=%s addr=[%s]:%d reason=%s%s",
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
static void
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

/* --- the transaction ---------------------------------------------------- */

/* The transaction is over: hand the results to done_cb. The transaction
 * is moved out of the client first, so that done_cb may send the next. */
static void
smtp_client_finish(struct smtp_client *c)
{
	struct smtp_client_tx t = c->t;
	int temp = 0, first = -1;

	memset(&c->t, 0, sizeof(c->t));
	c->tx = 0;
	smtp_client_plan_reset(c);   /* no step of this one may still go out */
	if (c->conn && t.mail_ok && !t.dot_done)
		c->need_rset = 1;
	if (!t.msg_set) {
		/* every recipient was refused: the message fails at RCPT */
		for (int i = 0; i < t.nrcpt; i++) {
			if (first < 0 || (!temp && t.rres[i].status == SMTP_CLIENT_TEMP))
				first = i;
			temp |= t.rres[i].status == SMTP_CLIENT_TEMP;
		}
		t.res.msg = t.rres[first];
		t.res.msg.status = temp ? SMTP_CLIENT_TEMP : SMTP_CLIENT_PERM;
	}
	for (int i = 0; i < t.nrcpt; i++)
		if (t.mail_failed || !t.refused[i])
			t.rres[i] = t.res.msg;
	log_msg(c->id, "event=smtp_result stage=%s code=%d status=%s accepted=%d/%d%s reason=%s",
		smtp_client_stage_name(t.res.msg.stage), t.res.msg.code, t.res.msg.esc,
		t.res.naccepted, t.nrcpt, t.res.msg.dup ? " possible_duplicate=yes" : "",
		log_q(t.res.msg.text));
	if (t.cb)
		t.cb(c, &t.res, t.arg);
	smtp_client_tx_free(&t);
}

/* The message fails as a whole (unless it already did). */
static void
smtp_client_tx_fail(struct smtp_client *c, enum smtp_client_stage stage, const struct smtp_reply *r)
{
	struct smtp_client_tx *t = &c->t;

	if (t->msg_set)
		return;
	smtp_client_result_reply(&t->res.msg, &t->msg_text, stage, r);
	t->msg_set = 1;
}

static int
smtp_client_bad_addr(const char *s)
{
	return strpbrk(s, "\r\n") != NULL;
}

/* A reason to refuse the message without a word to the server, or NULL. */
static const char *
smtp_client_refuse(const struct smtp_client *c, const struct smtp_client_msg *msg, int *code_r,
		   const char **esc_r)
{
	int bad = smtp_client_bad_addr(msg->sender);

	for (int i = 0; i < msg->nrcpt; i++)
		bad |= smtp_client_bad_addr(msg->rcpt[i]);
	*code_r = 554;
	if (bad) {
		*esc_r = "5.1.3";
		return "address contains CR or LF";
	}
	if ((c->ext & SMTP_CLIENT_EXT_SIZE) && c->size_max > 0 &&
	    (unsigned long long)msg->length > c->size_max) {
		*code_r = 552;
		*esc_r = "5.3.4";
		return "message size exceeds the server's fixed maximum message size";
	}
	if (msg->smtputf8 && !(c->ext & SMTP_CLIENT_EXT_SMTPUTF8)) {
		*code_r = 553;
		*esc_r = "5.6.7";
		return "message needs SMTPUTF8, which the server does not offer";
	}
	return NULL;
}

static void
smtp_client_tx_init(struct smtp_client *c, const struct smtp_client_msg *msg,
		    smtp_client_done_cb *cb, void *arg)
{
	struct smtp_client_tx *t = &c->t;

	memset(t, 0, sizeof(*t));
	t->cb = cb;
	t->arg = arg;
	t->sender = xstrdup(msg->sender);
	t->nrcpt = msg->nrcpt;
	t->rcpt = xcalloc(msg->nrcpt, sizeof(*t->rcpt));
	t->rcpt_text = xcalloc(msg->nrcpt, sizeof(*t->rcpt_text));
	t->rres = xcalloc(msg->nrcpt, sizeof(*t->rres));
	t->refused = xcalloc(msg->nrcpt, 1);
	for (int i = 0; i < msg->nrcpt; i++)
		t->rcpt[i] = xstrdup(msg->rcpt[i]);
	t->res.rcpt = t->rres;
	t->res.nrcpt = msg->nrcpt;
	t->fd = msg->fd;
	t->off = msg->offset;
	t->left = msg->length;
	t->body8bit = msg->body8bit;
	t->smtputf8 = msg->smtputf8;
	t->bol = 1;
	c->tx = 1;
}

void
smtp_client_send(struct smtp_client *c, const struct smtp_client_msg *msg,
		 smtp_client_done_cb *cb, void *arg)
{
	const char *why, *esc;
	int code;

	if (c->tx || c->quitting || c->freed || msg->nrcpt < 1) {
		log_err(c->id, "event=bug reason=\"smtp_client_send on a busy client or without recipients\"");
		abort();
	}
	smtp_client_tx_init(c, msg, cb, arg);
	if (!c->ready || !c->conn) {
		if (c->fail_text == NULL)
			smtp_client_result_set(&c->fail, &c->fail_text, SMTP_CLIENT_STAGE_CONNECT, 421,
					       "4.4.2", "connection not usable", 1);
		c->t.res.msg = c->fail;
		c->t.res.msg.text = c->t.msg_text = xstrdup(c->fail_text);
		c->t.msg_set = c->t.deferred = 1;
		event_active(c->defer_ev, EV_TIMEOUT, 1);
		return;
	}
	if ((why = smtp_client_refuse(c, msg, &code, &esc)) != NULL) {
		smtp_client_result_set(&c->t.res.msg, &c->t.msg_text, SMTP_CLIENT_STAGE_MAIL, code,
				       esc, why, 1);
		c->t.msg_set = c->t.deferred = 1;
		event_active(c->defer_ev, EV_TIMEOUT, 1);
		return;
	}
	smtp_client_plan_reset(c);
	if (c->need_rset)
		smtp_client_plan_add(c, SMTP_CLIENT_CMD_RSET, -1);
	smtp_client_plan_add(c, SMTP_CLIENT_CMD_MAIL, -1);
	for (int i = 0; i < msg->nrcpt; i++)
		smtp_client_plan_add(c, SMTP_CLIENT_CMD_RCPT, i);
	smtp_client_plan_add(c, SMTP_CLIENT_CMD_DATA, -1);
	smtp_client_kick(c);
}

/* --- the body ----------------------------------------------------------- */

/* Copy n body bytes to out with dot-stuffing (RFC 5321 4.5.2). Line ends
 * leave as CRLF whatever they were: a bare CR or LF in a queue file must
 * never reach the next hop as one (SMTP smuggling). out has room for 2n+2. */
static size_t
smtp_client_stuff(struct smtp_client_tx *t, const char *in, size_t n, char *out)
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
static void
smtp_client_pump(struct smtp_client *c)
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
		evbuffer_add(out, c->stuffed, smtp_client_stuff(t, c->chunk, (size_t)n, c->stuffed));
	}
	c->pumping = 0;
}

static void
smtp_client_body_start(struct smtp_client *c)
{
	struct timeval tv = smtp_client_tv(c->to.block);

	c->t.in_body = 1;
	c->chunk = xmalloc(SMTP_CLIENT_CHUNK);
	c->stuffed = xmalloc(2 * SMTP_CLIENT_CHUNK + 2);
	bufferevent_set_timeouts(c->bev, NULL, &tv);
	bufferevent_setwatermark(c->bev, EV_WRITE, SMTP_CLIENT_OUT_LOW, 0);
	smtp_client_pump(c);
}

/* --- reply handlers ----------------------------------------------------- */

static void
smtp_client_on_greeting(struct smtp_client *c, const struct smtp_client_step *st,
			const struct smtp_reply *r)
{
	if (r->code / 100 == 2)
		smtp_client_send_one(c, SMTP_CLIENT_CMD_EHLO);
	else if (r->code / 100 == 4 || r->code / 100 == 5)
		smtp_client_setup_fail(c, SMTP_CLIENT_STAGE_GREETING, r->code, r->esc, r->text, 0);
	else
		smtp_client_protocol_error(c, "unexpected greeting", r);
}

/* The session is ready, unless TLS is wanted and cannot be had. */
static void
smtp_client_session_ready(struct smtp_client *c)
{
	struct smtp_client_result ok = {
		.status = SMTP_CLIENT_OK, .code = 250, .esc = "2.0.0", .text = ""
	};

	if (!c->tls && c->tls_mode == SMTP_CLIENT_TLS_ENCRYPT) {
		smtp_client_setup_fail(c, SMTP_CLIENT_STAGE_TLS, 421, "4.7.0",
				       c->tls_ctx == NULL ? "TLS required, but no TLS context" :
				       (c->ext & SMTP_CLIENT_EXT_STARTTLS) ?
				       "TLS required, but the server refused STARTTLS" :
				       "TLS required, but the server does not offer STARTTLS", 1);
		return;
	}
	smtp_client_plan_reset(c);
	c->ready = 1;
	log_debug(c->id, "event=smtp_ready ext=0x%x tls=%s", c->ext, c->tls ? "yes" : "no");
	smtp_client_call_ready(c, &ok);
}

static void
smtp_client_parse_ext(struct smtp_client *c, const char *text)
{
	const char *line = strchr(text, '\n');

	c->ext = 0;
	c->size_max = 0;
	while (line != NULL) {
		const char *kw = line + 1, *end = strchr(kw, '\n');
		size_t n = strcspn(kw, " \n");

		for (size_t i = 0; i < sizeof(smtp_client_exts) / sizeof(smtp_client_exts[0]); i++)
			if (n == strlen(smtp_client_exts[i].keyword) &&
			    strncasecmp(kw, smtp_client_exts[i].keyword, n) == 0)
				c->ext |= smtp_client_exts[i].flag;
		if (n == 4 && strncasecmp(kw, "SIZE", 4) == 0 && kw[4] == ' ')
			c->size_max = strtoull(kw + 5, NULL, 10);
		line = end;
	}
}

static void
smtp_client_on_ehlo(struct smtp_client *c, const struct smtp_client_step *st,
		    const struct smtp_reply *r)
{
	if (r->code / 100 == 5) {
		smtp_client_send_one(c, SMTP_CLIENT_CMD_HELO);
		return;
	}
	if (r->code / 100 == 4) {
		smtp_client_setup_fail(c, SMTP_CLIENT_STAGE_HELO, r->code, r->esc, r->text, 0);
		return;
	}
	if (r->code / 100 != 2) {
		smtp_client_protocol_error(c, "unexpected reply to EHLO", r);
		return;
	}
	smtp_client_parse_ext(c, r->text);
	if (!c->tls && c->tls_ctx && c->tls_mode != SMTP_CLIENT_TLS_NONE &&
	    (c->ext & SMTP_CLIENT_EXT_STARTTLS)) {
		smtp_client_send_one(c, SMTP_CLIENT_CMD_STARTTLS);
		return;
	}
	smtp_client_session_ready(c);
}

static void
smtp_client_on_helo(struct smtp_client *c, const struct smtp_client_step *st,
		    const struct smtp_reply *r)
{
	if (r->code / 100 == 2) {
		c->ext = 0;
		c->size_max = 0;
		smtp_client_session_ready(c);
	} else if (r->code / 100 == 4 || r->code / 100 == 5) {
		smtp_client_setup_fail(c, SMTP_CLIENT_STAGE_HELO, r->code, r->esc, r->text, 0);
	} else {
		smtp_client_protocol_error(c, "unexpected reply to HELO", r);
	}
}

static void smtp_client_event_cb(struct bufferevent *bev, short what, void *arg);
static void smtp_client_read_cb(struct bufferevent *bev, void *arg);
static void smtp_client_write_cb(struct bufferevent *bev, void *arg);

static void
smtp_client_tls_fail(struct smtp_client *c, const char *why)
{
	char text[300];

	if (c->tls_mode == SMTP_CLIENT_TLS_ENCRYPT) {
		snprintf(text, sizeof(text), "TLS required, but the handshake failed: %s", why);
		smtp_client_fail_conn(c, SMTP_CLIENT_STAGE_TLS, 421, "4.7.0", text, SMTP_CLIENT_F_LOCAL);
	} else {
		snprintf(text, sizeof(text), "TLS handshake failed: %s", why);
		smtp_client_fail_conn(c, SMTP_CLIENT_STAGE_TLS, 421, "4.7.5", text,
				      SMTP_CLIENT_F_LOCAL | SMTP_CLIENT_F_PLAIN);
	}
}

/* After "220 Ready": whatever the server sent behind it in the clear is
 * thrown away (RFC 3207 5, CVE-2011-0411 seen from the client), then the
 * handshake runs in a filter over the socket. */
static void
smtp_client_starttls(struct smtp_client *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct bufferevent *tls;
	size_t junk = evbuffer_get_length(in);
	SSL *ssl;

	if (junk > 0) {
		log_msg(c->id, "event=smtp_tls_discard bytes=%zu addr=[%s]:%d", junk, c->addr, c->port);
		evbuffer_drain(in, junk);
	}
	if ((ssl = SSL_new(c->tls_ctx)) == NULL) {
		smtp_client_tls_fail(c, "SSL_new failed");
		return;
	}
	if (c->servername != NULL)
		SSL_set_tlsext_host_name(ssl, c->servername);
	/* deferred callbacks: the filter would otherwise call back from
	 * inside evbuffer_add, in the middle of whatever added */
	tls = bufferevent_openssl_filter_new(c->base, c->bev, ssl, BUFFEREVENT_SSL_CONNECTING,
					     BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (tls == NULL) {
		SSL_free(ssl);
		smtp_client_tls_fail(c, "cannot set up the TLS layer");
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	/* the filter stops encrypting the body while the socket has enough */
	bufferevent_setwatermark(c->bev, EV_WRITE, SMTP_CLIENT_OUT_LOW, SMTP_CLIENT_OUT_HIGH);
	c->bev = tls;
	bufferevent_setcb(tls, smtp_client_read_cb, smtp_client_write_cb, smtp_client_event_cb, c);
	bufferevent_enable(tls, EV_READ | EV_WRITE);
	smtp_client_plan_reset(c);
	smtp_client_expect(c, SMTP_CLIENT_CMD_HANDSHAKE);
}

static void
smtp_client_on_starttls(struct smtp_client *c, const struct smtp_client_step *st,
			const struct smtp_reply *r)
{
	if (r->code == 220) {
		smtp_client_starttls(c);
	} else if (r->code / 100 == 4 || r->code / 100 == 5) {
		log_msg(c->id, "event=smtp_starttls_refused code=%d addr=[%s]:%d reason=%s", r->code,
			c->addr, c->port, log_q(r->text));
		smtp_client_session_ready(c);   /* plaintext, unless TLS is required */
	} else {
		smtp_client_protocol_error(c, "unexpected reply to STARTTLS", r);
	}
}

static void
smtp_client_on_rset(struct smtp_client *c, const struct smtp_client_step *st,
		    const struct smtp_reply *r)
{
	if (r->code / 100 == 2)
		c->need_rset = 0;
	else
		smtp_client_protocol_error(c, "RSET failed", r);
}

static void
smtp_client_on_mail(struct smtp_client *c, const struct smtp_client_step *st,
		    const struct smtp_reply *r)
{
	if (r->code / 100 == 2) {
		c->t.mail_ok = 1;
	} else if (r->code / 100 == 4 || r->code / 100 == 5) {
		smtp_client_tx_fail(c, SMTP_CLIENT_STAGE_MAIL, r);
		c->t.mail_failed = 1;
		if (c->head == c->nsent)   /* else the RCPTs' and DATA's replies are still due */
			smtp_client_finish(c);
	} else {
		smtp_client_protocol_error(c, "unexpected reply to MAIL", r);
	}
}

static void
smtp_client_on_rcpt(struct smtp_client *c, const struct smtp_client_step *st,
		    const struct smtp_reply *r)
{
	struct smtp_client_tx *t = &c->t;
	int i = st->rcpt;

	if (r->code / 100 == 2) {
		t->res.naccepted++;
	} else if (r->code / 100 == 4 || r->code / 100 == 5) {
		t->refused[i] = 1;
		smtp_client_result_reply(&t->rres[i], &t->rcpt_text[i], SMTP_CLIENT_STAGE_RCPT, r);
		log_msg(c->id, "event=smtp_reply stage=rcpt code=%d status=%s rcpt=<%s> reason=%s",
			r->code, t->rres[i].esc, t->rcpt[i], log_q(t->rcpt_text[i]));
	} else {
		smtp_client_protocol_error(c, "unexpected reply to RCPT", r);
		return;
	}
	/* without PIPELINING, DATA is not sent when no recipient is left */
	if (i == t->nrcpt - 1 && c->head == c->nsent && t->res.naccepted == 0)
		smtp_client_finish(c);
}

static void
smtp_client_on_data(struct smtp_client *c, const struct smtp_client_step *st,
		    const struct smtp_reply *r)
{
	struct smtp_client_tx *t = &c->t;
	int wanted = !t->mail_failed && t->res.naccepted > 0;

	if (r->code / 100 == 3) {
		if (wanted) {
			smtp_client_body_start(c);
			return;
		}
		/* RFC 2920 3.1: a pipelined DATA accepted though nobody
		 * was: an empty message ends it, then nothing is sent */
		t->empty_dot = 1;
		evbuffer_add(bufferevent_get_output(c->bev), ".\r\n", 3);
		smtp_client_expect(c, SMTP_CLIENT_CMD_DOT);
	} else if (r->code / 100 == 4 || r->code / 100 == 5) {
		if (wanted)
			smtp_client_tx_fail(c, SMTP_CLIENT_STAGE_DATA, r);
		smtp_client_finish(c);
	} else {
		smtp_client_protocol_error(c, "unexpected reply to DATA", r);
	}
}

static void
smtp_client_on_dot(struct smtp_client *c, const struct smtp_client_step *st,
		   const struct smtp_reply *r)
{
	struct smtp_client_tx *t = &c->t;

	if (r->code / 100 != 2 && r->code / 100 != 4 && r->code / 100 != 5) {
		smtp_client_protocol_error(c, "unexpected reply to the final dot", r);
		return;
	}
	t->dot_done = 1;
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	if (!t->empty_dot)
		smtp_client_tx_fail(c, SMTP_CLIENT_STAGE_DOT, r);
	smtp_client_finish(c);
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

static void
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

static void
smtp_client_write_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_client *c = arg;

	c->depth++;
	if (c->tx && c->t.in_body)
		smtp_client_pump(c);
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

static void
smtp_client_tls_connected(struct smtp_client *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

	c->tls = 1;
	c->ext = 0;   /* RFC 3207 4.2: forget what was said in the clear */
	log_msg(c->id, "event=smtp_tls addr=[%s]:%d version=%s cipher=%s", c->addr, c->port,
		SSL_get_version(ssl), SSL_get_cipher_name(ssl));
	smtp_client_send_one(c, SMTP_CLIENT_CMD_EHLO);
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

static void
smtp_client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_client *c = arg;

	c->depth++;
	if (what & BEV_EVENT_CONNECTED) {
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

/* A result decided without the loop's help, delivered from the loop. */
static void
smtp_client_defer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_client *c = arg;

	c->depth++;
	if (c->tx && c->t.deferred)
		smtp_client_finish(c);
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

static void
smtp_client_connect(struct smtp_client *c)
{
	c->bev = bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(c->bev, smtp_client_read_cb, smtp_client_write_cb, smtp_client_event_cb, c);
	/* reading starts once connected, so the greeting never arrives first */
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_enable(c->bev, EV_WRITE);
	c->conn = 1;
	smtp_client_expect(c, SMTP_CLIENT_CMD_CONNECT);
	log_msg(c->id, "event=smtp_connect addr=[%s]:%d tls=%s", c->addr, c->port,
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
	free(c->chunk);
	free(c->stuffed);
	free(c->addr);
	free(c->helo);
	free(c->servername);
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

int
smtp_client_usable(const struct smtp_client *c)
{
	return c->ready && c->conn && !c->tx && !c->quitting && !c->freed;
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
