/*
 * smtp_client: one outgoing SMTP connection (RFC 5321) on the libevent loop:
 * greeting, EHLO (HELO when EHLO gets a 5xx), STARTTLS (RFC 3207),
 * PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME, SMTPUTF8, and several
 * messages in turn on one connection, each with a result per recipient;
 * also ETRN (RFC 1985), which a primary sends its backups.
 * Every network fault, timeout, or reply the parser refuses (smtp_reply.h)
 * is a temporary failure, never a guess.
 * Public: smtp_client_new, smtp_client_send, smtp_client_etrn, smtp_client_quit,
 * smtp_client_free, smtp_client_expire, smtp_client_set_log_id, smtp_client_usable, smtp_client_extensions,
 * smtp_client_tls_active, smtp_client_stage_name.
 *
 * Life of a client: smtp_client_new connects and calls ready_cb once,
 * either with status SMTP_CLIENT_OK (the session is ready for
 * smtp_client_send) or with the failure that ended the attempt. Each
 * smtp_client_send calls its done_cb once; from done_cb (or later) the
 * caller sends the next message or ends with smtp_client_quit (QUIT, then
 * the client frees itself) or smtp_client_free (drop at once). Both may be
 * called from inside the callbacks. No callback is ever made from inside
 * smtp_client_new or smtp_client_send themselves.
 */
#ifndef TANDEM_SMTP_CLIENT_H
#define TANDEM_SMTP_CLIENT_H
#include <event2/event.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <sys/types.h>

enum smtp_client_tls {
	SMTP_CLIENT_TLS_NONE,      /* never STARTTLS */
	SMTP_CLIENT_TLS_MAY,       /* STARTTLS when offered; plaintext otherwise */
	SMTP_CLIENT_TLS_ENCRYPT    /* STARTTLS or nothing: 4.7.0 TLS required */
};

/* Where a conversation stopped. connect..tls concern the host (the caller
 * tries the next MX); mail..dot concern the message. */
enum smtp_client_stage {
	SMTP_CLIENT_STAGE_NONE,    /* success */
	SMTP_CLIENT_STAGE_CONNECT,
	SMTP_CLIENT_STAGE_GREETING,
	SMTP_CLIENT_STAGE_HELO,
	SMTP_CLIENT_STAGE_TLS,
	SMTP_CLIENT_STAGE_RSET,
	SMTP_CLIENT_STAGE_MAIL,
	SMTP_CLIENT_STAGE_RCPT,
	SMTP_CLIENT_STAGE_DATA,
	SMTP_CLIENT_STAGE_DOT,
	SMTP_CLIENT_STAGE_QUIT,
	SMTP_CLIENT_STAGE_ETRN,
	SMTP_CLIENT_STAGE_AUTH     /* AUTH to a relay host: a host stage */
};

enum smtp_client_status {
	SMTP_CLIENT_OK,
	SMTP_CLIENT_TEMP,          /* 4xx or any network fault: retry later */
	SMTP_CLIENT_PERM           /* 5xx: bounce */
};

/* Extensions the server advertised (smtp_client_extensions). */
enum {
	SMTP_CLIENT_EXT_PIPELINING = 1 << 0,
	SMTP_CLIENT_EXT_SIZE = 1 << 1,
	SMTP_CLIENT_EXT_8BITMIME = 1 << 2,
	SMTP_CLIENT_EXT_SMTPUTF8 = 1 << 3,
	SMTP_CLIENT_EXT_STARTTLS = 1 << 4,
	SMTP_CLIENT_EXT_ENHANCEDSTATUSCODES = 1 << 5,
	SMTP_CLIENT_EXT_AUTH_PLAIN = 1 << 6
};

/* Milliseconds; 0 takes the RFC 5321 4.5.3.2 default (in brackets). */
struct smtp_client_timeouts {
	unsigned connect;          /* TCP connect [30 s] */
	unsigned greeting;         /* the 220 greeting [5 min] */
	unsigned helo;             /* EHLO/HELO, STARTTLS and the TLS handshake [5 min] */
	unsigned mail;             /* MAIL [5 min] */
	unsigned rcpt;             /* each RCPT [5 min] */
	unsigned data;             /* the 354 to DATA [2 min] */
	unsigned block;            /* each block of the body to be written [3 min] */
	unsigned dot;              /* the reply to the final dot [10 min] */
	unsigned rset;             /* RSET [20 s, as Postfix] */
	unsigned quit;             /* QUIT [5 min, as Postfix] */
};

struct smtp_client_opts {
	const char *addr;          /* numeric IPv4 or IPv6 ("::1" or "[::1]") */
	int port;
	const char *helo;          /* our name in EHLO/HELO */
	SSL_CTX *tls_ctx;          /* a client context (tls_client_ctx_new), or NULL */
	enum smtp_client_tls tls;  /* without tls_ctx, TLS_MAY acts as TLS_NONE */
	const char *servername;    /* for SNI, or NULL */
	struct smtp_client_timeouts timeouts;
	const char *log_id;        /* the id of its log lines, or NULL for "C<n>" */
	const char *source;        /* numeric address to connect from (same family), or NULL */
	const char *auth_user;     /* AUTH PLAIN after TLS (a relay host), or NULL; */
	const char *auth_password; /* a session that cannot is a temporary failure */
	unsigned quiet : 1;        /* connects and failures at debug level (probes) */
};

/* What happened to the session, a message, or one recipient. Strings live
 * until the callback that hands them over returns. */
struct smtp_client_result {
	enum smtp_client_status status;
	enum smtp_client_stage stage;   /* where it failed; NONE on success */
	int code;                  /* the server's reply code, or ours when local */
	char esc[16];              /* enhanced status: the server's, or "4.4.2"
				    * style ones of ours, else "<class>.0.0" */
	const char *text;          /* the reply text, lines joined by ' ' */
	unsigned local : 1;        /* decided here: no reply said so */
	unsigned dup : 1;          /* lost after the final dot was sent: the
				    * message may have been delivered (RFC 5321 6.1) */
	unsigned plain_retry : 1;  /* TLS_MAY and the TLS handshake failed: the
				    * caller may retry this host in plaintext */
};

struct smtp_client_msg {
	const char *sender;        /* "" for the null sender */
	const char *const *rcpt;
	int nrcpt;
	int fd;                    /* the message: length bytes at offset, CRLF */
	off_t offset;              /* lines, not dot-stuffed (a queue file's body) */
	off_t length;
	const char *prefix;        /* sent before the body: header fields that
				    * end in CRLF (a DKIM-Signature); or NULL */
	unsigned body8bit : 1;     /* BODY=8BITMIME when offered */
	unsigned smtputf8 : 1;     /* needs SMTPUTF8: refused locally without it */
};

struct smtp_client_msg_result {
	/* The message as a whole: OK when the final dot got a 2xx (some
	 * recipients may still have been refused), else the stage and reply
	 * that stopped it. When every recipient was refused: stage RCPT,
	 * temporary if any refusal was. */
	struct smtp_client_result msg;
	/* Each recipient's final outcome, in the order of msg->rcpt: its own
	 * RCPT reply when refused, else the message's result. */
	const struct smtp_client_result *rcpt;
	int nrcpt;
	int naccepted;             /* RCPTs the server accepted */
};

struct smtp_client;

typedef void smtp_client_ready_cb(struct smtp_client *c, const struct smtp_client_result *res,
				  void *arg);
typedef void smtp_client_done_cb(struct smtp_client *c, const struct smtp_client_msg_result *res,
				 void *arg);
typedef void smtp_client_etrn_cb(struct smtp_client *c, const struct smtp_client_result *res,
				 void *arg);

/* Connect to opts->addr, port; opts and its strings are copied. cb is
 * called once, from the loop. */
struct smtp_client *smtp_client_new(struct event_base *base, const struct smtp_client_opts *opts,
				    smtp_client_ready_cb *cb, void *arg);
/* Deliver one message; only when the client is idle (after a successful
 * ready_cb or a done_cb). msg's strings are copied; msg->fd must stay open
 * until cb. Refused locally, with a permanent result and no command sent:
 * a message over the server's SIZE, one that needs SMTPUTF8 the server
 * lacks, an address with CR or LF. On a client that is not usable, cb gets
 * the temporary failure that ended the session. */
void smtp_client_send(struct smtp_client *c, const struct smtp_client_msg *msg,
		      smtp_client_done_cb *cb, void *arg);
/* ETRN (RFC 1985): ask the server to start delivering what it holds for
 * domain. Only when the client is idle, as smtp_client_send. cb gets the
 * reply: OK for 250/251/252/253, TEMP for 458/459 or any fault, PERM for
 * a 5xx (e.g. 500/502 from a server without ETRN). */
void smtp_client_etrn(struct smtp_client *c, const char *domain, smtp_client_etrn_cb *cb,
		      void *arg);
/* QUIT politely, then free; at once when the connection is gone or busy. */
void smtp_client_quit(struct smtp_client **cp);
/* Drop the connection and free the client now. */
void smtp_client_free(struct smtp_client **cp);
/* The clock seam: what the step timer does when it runs out, now (the
 * step at the head times out as if its timeout had passed), when that
 * step is at stage `at`. For tests that move time on instead of waiting.
 * 0, or -1 when no timer runs or the client is not at that stage yet. */
int smtp_client_expire(struct smtp_client *c, enum smtp_client_stage at);

/* The id its log lines carry from now on (the message a kept connection
 * carries next); NULL keeps the current one. */
void smtp_client_set_log_id(struct smtp_client *c, const char *id);
/* Can it take another message? */
int smtp_client_usable(const struct smtp_client *c);
int smtp_client_extensions(const struct smtp_client *c);
/* The SIZE the server advertised, 0 for none or no limit. */
unsigned long long smtp_client_size_limit(const struct smtp_client *c);
int smtp_client_tls_active(const struct smtp_client *c);
const char *smtp_client_stage_name(enum smtp_client_stage stage);

#endif
