/*
 * smtp_client_setup: the client's way to a ready session (see
 * smtp_client.c): the greeting, EHLO (HELO when EHLO gets a 5xx) and the
 * extensions it offers, and STARTTLS with its handshake (RFC 3207). When
 * it is over, ready_cb hears whether the session may carry mail.
 * Internal to the client (smtp_client_int.h): smtp_client_on_greeting,
 * smtp_client_on_ehlo, smtp_client_on_helo, smtp_client_on_starttls,
 * smtp_client_tls_fail, smtp_client_tls_connected.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp/smtp_client.h"
#include "smtp/smtp_client_int.h"
#include "smtp/smtp_reply.h"
#include "util/log.h"

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

/* "AUTH PLAIN LOGIN": is PLAIN among the mechanisms? */
static int
smtp_client_auth_plain(const char *kw, size_t len)
{
	for (size_t i = 4; i < len;) {
		size_t n;

		while (i < len && kw[i] == ' ')
			i++;
		n = strcspn(kw + i, " \n");
		if (n > len - i)
			n = len - i;
		if (n == 5 && strncasecmp(kw + i, "PLAIN", 5) == 0)
			return 1;
		i += n;
	}
	return 0;
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

void
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
	if (c->auth_user != NULL && !c->authed) {
		/* a relay host's AUTH: only over TLS; whatever stops it is
		 * temporary, so a wrong password defers mail instead of
		 * bouncing it */
		if (!c->tls || !(c->ext & SMTP_CLIENT_EXT_AUTH_PLAIN)) {
			smtp_client_setup_fail(c, SMTP_CLIENT_STAGE_AUTH, 454, "4.7.0",
					       !c->tls ? "AUTH needs TLS, and there is none" :
					       "the server offers no AUTH PLAIN", 1);
			return;
		}
		smtp_client_send_one(c, SMTP_CLIENT_CMD_AUTH);
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
		if (n == 4 && strncasecmp(kw, "AUTH", 4) == 0 &&
		    smtp_client_auth_plain(kw, end ? (size_t)(end - kw) : strlen(kw)))
			c->ext |= SMTP_CLIENT_EXT_AUTH_PLAIN;
		line = end;
	}
}

void
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

void
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

void
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

void
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

void
smtp_client_on_auth(struct smtp_client *c, const struct smtp_client_step *st,
		    const struct smtp_reply *r)
{
	char text[300];

	if (r->code == 235) {
		c->authed = 1;
		log_msg(c->id, "event=smtp_auth addr=[%s]:%d user=%s", c->addr, c->port,
			log_addr(c->auth_user));
		smtp_client_session_ready(c);
		return;
	}
	snprintf(text, sizeof(text), "AUTH as %s refused: %d %s", c->auth_user, r->code,
		 r->text ? r->text : "");
	smtp_client_setup_fail(c, SMTP_CLIENT_STAGE_AUTH, 454, "4.7.0", text, 1);
}

void
smtp_client_tls_connected(struct smtp_client *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

	c->tls = 1;
	c->ext = 0;   /* RFC 3207 4.2: forget what was said in the clear */
	log_msg(c->id, "event=smtp_tls addr=[%s]:%d version=%s cipher=%s", c->addr, c->port,
		SSL_get_version(ssl), SSL_get_cipher_name(ssl));
	smtp_client_send_one(c, SMTP_CLIENT_CMD_EHLO);
}
