/*
 * smtp_client_int: what the files of the outgoing SMTP client share
 * (private to src/smtp/smtp_client*.c): the client and transaction
 * structs, the steps of the plan, and the functions one file of the client
 * calls in another. Nothing outside the client includes it.
 */
#ifndef TANDEM_SMTP_CLIENT_INT_H
#define TANDEM_SMTP_CLIENT_INT_H
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "smtp/smtp_client.h"
#include "smtp/smtp_reply.h"

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
	SMTP_CLIENT_CMD_QUIT,
	SMTP_CLIENT_CMD_ETRN,
	SMTP_CLIENT_CMD_AUTH
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
	char *prefix;                    /* sent before the body, or NULL */
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
	char *source;                    /* opts.source */
	char *auth_user, *auth_password; /* opts.auth_*: wiped at the end */
	int authed;
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
	unsigned quiet : 1;              /* opts.quiet */
	unsigned pumping : 1;            /* smtp_client_body_pump is on the stack */
	int depth;                       /* libevent entries on the stack */
	struct smtp_client_step *plan;
	int nplan, plancap, nsent, head, armed;
	struct smtp_client_result fail;  /* what ended the session, for later sends */
	char *fail_text;
	struct smtp_client_tx t;
	char *etrn_domain;               /* ETRN in flight (smtp_client_etrn) */
	smtp_client_etrn_cb *etrn_cb;
	void *etrn_arg;
	struct smtp_client_result etrn_res;
	char *etrn_text;
	char *chunk, *stuffed;           /* body buffers, while a body is sent */
};

typedef void smtp_client_reply_fn(struct smtp_client *c, const struct smtp_client_step *st,
				  const struct smtp_reply *r);

/* flags of smtp_client_fail_conn */
enum {
	SMTP_CLIENT_F_LOCAL = 1,
	SMTP_CLIENT_F_DUP = 2,
	SMTP_CLIENT_F_PLAIN = 4
};

/* smtp_client.c: the plan, the end of a session, events */
void smtp_client_result_set(struct smtp_client_result *res, char **textp,
			    enum smtp_client_stage stage, int code, const char *esc,
			    const char *text, unsigned local);
void smtp_client_plan_reset(struct smtp_client *c);
void smtp_client_plan_add(struct smtp_client *c, enum smtp_client_cmd cmd, int rcpt);
struct timeval smtp_client_tv(unsigned ms);
void smtp_client_expect(struct smtp_client *c, enum smtp_client_cmd cmd);
void smtp_client_kick(struct smtp_client *c);
void smtp_client_send_one(struct smtp_client *c, enum smtp_client_cmd cmd);
void smtp_client_call_ready(struct smtp_client *c, const struct smtp_client_result *res);
const struct smtp_client_result *smtp_client_failure(struct smtp_client *c);
void smtp_client_fail_conn(struct smtp_client *c, enum smtp_client_stage stage, int code,
			   const char *esc, const char *text, unsigned flags);
void smtp_client_protocol_error(struct smtp_client *c, const char *why,
				const struct smtp_reply *r);
void smtp_client_read_cb(struct bufferevent *bev, void *arg);
void smtp_client_write_cb(struct bufferevent *bev, void *arg);
void smtp_client_event_cb(struct bufferevent *bev, short what, void *arg);

/* smtp_client_setup.c: greeting, EHLO/HELO, STARTTLS */
smtp_client_reply_fn smtp_client_on_greeting, smtp_client_on_ehlo, smtp_client_on_helo,
	smtp_client_on_starttls, smtp_client_on_auth;
void smtp_client_tls_fail(struct smtp_client *c, const char *why);
void smtp_client_tls_connected(struct smtp_client *c);

/* smtp_client_tx.c: the mail transaction */
smtp_client_reply_fn smtp_client_on_rset, smtp_client_on_mail, smtp_client_on_rcpt,
	smtp_client_on_data, smtp_client_on_dot;
void smtp_client_tx_free(struct smtp_client_tx *t);
void smtp_client_tx_fail(struct smtp_client *c, enum smtp_client_stage stage,
			 const struct smtp_reply *r);
void smtp_client_finish(struct smtp_client *c);

/* smtp_client_body.c: the message body */
void smtp_client_body_start(struct smtp_client *c);
void smtp_client_body_pump(struct smtp_client *c);

#endif
