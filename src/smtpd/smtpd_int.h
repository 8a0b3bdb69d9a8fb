/*
 * smtpd_int: what the files of the SMTP server module share (private to
 * src/smtpd/): the server and session structs.
 */
#ifndef TANDEM_SMTPD_INT_H
#define TANDEM_SMTPD_INT_H
#include <sys/socket.h>
#include <time.h>

#include "smtp/smtp_data.h"
#include "smtpd/smtpd.h"

#define SMTPD_LINE_BUF 2048      /* longest line we buffer before calling it over-long */

struct conn;
struct smtpd_session;

#define SMTPD_ETRN_CLIENTS 64    /* clients whose ETRN rate we remember */
#define SMTPD_ETRN_PER_MIN 5     /* ETRN requests a minute, per client and domain */

struct smtpd_etrn_rate {
	char client[64];
	char domain[256];
	time_t window;
	unsigned n;
};

struct smtpd_server {
	struct smtpd_deps d;
	struct smtpd_etrn_rate etrn_rate[SMTPD_ETRN_CLIENTS];
	unsigned nsessions;
	struct smtpd_session *sessions;   /* all live sessions, for shutdown */
	int stopping;
};

struct smtpd_session {
	struct smtpd_server *srv;
	struct smtpd_session *next, *prev;
	struct conn *c;
	struct event *greet_ev;
	char id[16];                /* session id for logs: "S<hex>" */
	char client[64];            /* "1.2.3.4" */
	char *helo;
	unsigned greeted : 1, esmtp : 1, tls : 1, busy : 1, closing : 1, dead : 1;
	unsigned in_data : 1, smtputf8 : 1, body8 : 1;
	unsigned in_mail : 1, fields_added : 1;
	char *user;                 /* after AUTH: the canonical address */
	long long max_rcpts_day;    /* submission: the user's daily recipients (0: no limit) */
	long long rcpts_today;      /* and what they had at MAIL */
	struct sasl *sasl;          /* an AUTH exchange waiting for the client's line */
	struct scram *scram;        /* or a SCRAM-SHA-256 one */
	int scram_phase;            /* 0: client-first, 1: client-final, 2: the empty ack */
	int scram_known;            /* the user exists */
	const char *scram_final;    /* the server's signature (in scram), for the last 334 */
	char scram_canon[320];      /* their canonical address */
	char sasl_mech[24];         /* "PLAIN", "SCRAM-SHA-256-PLUS": for the log */
	char *sender;
	unsigned long long mail_size;   /* MAIL's SIZE=, 0 when not given */
	char **rcpt;
	int nrcpt;
	unsigned errors;
	unsigned junk;              /* commands in a row that made no progress */
	unsigned ncommands;
	unsigned nmessages;
	struct smtp_data data;
	struct queue_in *in;
	char *dbuf;                 /* scratch for the DATA filter */
	size_t dbuf_len;
};

/* The configuration in force (a reload swaps it between commands). */
static inline const struct config *
smtpd_cf(const struct smtpd_session *s)
{
	return *s->srv->d.cf;
}

static inline SSL_CTX *
smtpd_tls(const struct smtpd_session *s)
{
	return *s->srv->d.tls;
}

/* Another ETRN from client for domain now? At most SMTPD_ETRN_PER_MIN a minute. */
int smtpd_server_etrn_rate_ok(struct smtpd_server *srv, const char *client, const char *domain,
			      time_t now);
void smtpd_session_start(struct smtpd_server *srv, struct conn *c, int over);
/* smtpd_auth.c: the AUTH command, the client's lines of the exchange, and
 * whether EHLO offers it on this connection now. */
void smtpd_cmd_auth(struct smtpd_session *s, const char *arg);
void smtpd_auth_line(struct smtpd_session *s, const char *line, int too_long);
int smtpd_auth_offered(struct smtpd_session *s);
int smtpd_auth_pending(const struct smtpd_session *s);   /* an exchange waits for a line */
/* "PLAIN LOGIN SCRAM-SHA-256", and -PLUS over TLS */
const char *smtpd_auth_mechs(struct smtpd_session *s);
void smtpd_auth_free(struct smtpd_session *s);
void smtpd_session_kill(struct smtpd_session *s, const char *reply);

#endif
