/*
 * smtp_client_tx: one message on the client's session (see smtp_client.c):
 * MAIL, RCPT and DATA written as one group with PIPELINING (RFC 2920),
 * one by one without; a result per recipient; RSET before the next message
 * when one ended half way; and messages refused without a word to the
 * server (bad addresses, SIZE, SMTPUTF8). The body itself is
 * smtp_client_body.c's.
 * Public: smtp_client_send. Internal to the client (smtp_client_int.h):
 * smtp_client_on_rset, smtp_client_on_mail, smtp_client_on_rcpt,
 * smtp_client_on_data, smtp_client_on_dot, smtp_client_tx_fail,
 * smtp_client_finish, smtp_client_tx_free.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_client.h"
#include "smtp/smtp_client_int.h"
#include "smtp/smtp_reply.h"
#include "util/log.h"
#include "util/xalloc.h"

static void
smtp_client_result_reply(struct smtp_client_result *res, char **textp, enum smtp_client_stage stage,
			 const struct smtp_reply *r)
{
	smtp_client_result_set(res, textp, stage, r->code, r->esc, r->text, 0);
}

void
smtp_client_tx_free(struct smtp_client_tx *t)
{
	free(t->sender);
	free(t->prefix);
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

/* --- the transaction ---------------------------------------------------- */

/* The transaction is over: hand the results to done_cb. The transaction
 * is moved out of the client first, so that done_cb may send the next. */
void
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
void
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
	    (unsigned long long)msg->length + (msg->prefix ? strlen(msg->prefix) : 0) >
		    c->size_max) {
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
	t->prefix = msg->prefix && msg->prefix[0] ? xstrdup(msg->prefix) : NULL;
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

	if (c->tx || c->etrn_cb || c->quitting || c->freed || msg->nrcpt < 1) {
		log_panic(c->id, "event=bug reason=\"smtp_client_send on a busy client or without recipients\"");
	}
	smtp_client_tx_init(c, msg, cb, arg);
	if (!c->ready || !c->conn) {
		c->t.res.msg = *smtp_client_failure(c);
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

/* --- reply handlers ----------------------------------------------------- */

void
smtp_client_on_rset(struct smtp_client *c, const struct smtp_client_step *st,
		    const struct smtp_reply *r)
{
	if (r->code / 100 == 2)
		c->need_rset = 0;
	else
		smtp_client_protocol_error(c, "RSET failed", r);
}

void
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

void
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
		log_msg(c->id, "event=smtp_reply stage=rcpt code=%d status=%s rcpt=%s reason=%s",
			r->code, t->rres[i].esc, log_addr(t->rcpt[i]), log_q(t->rcpt_text[i]));
	} else {
		smtp_client_protocol_error(c, "unexpected reply to RCPT", r);
		return;
	}
	/* without PIPELINING, DATA is not sent when no recipient is left */
	if (i == t->nrcpt - 1 && c->head == c->nsent && t->res.naccepted == 0)
		smtp_client_finish(c);
}

void
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

void
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
