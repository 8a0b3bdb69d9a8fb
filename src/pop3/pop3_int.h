/*
 * pop3_int: what the files of the POP3 server share (private to
 * src/pop3/): the server and session structs and the helpers the command
 * handlers use.
 */
#ifndef TANDEM_POP3_INT_H
#define TANDEM_POP3_INT_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pop3/pop3.h"
#include "pop3/pop3_stream.h"

/* A command line with its CRLF. RFC 2449 §4 says 255 octets; clients that
 * send a little more are served, longer lines get -ERR. */
#define POP3_LINE_MAX 512
/* A line of a SASL exchange (base64 of up to 1024 bytes, sasl.h). */
#define POP3_SASL_LINE_MAX 2048
/* Protocol errors (unknown commands, bad arguments, over-long lines)
 * before the session is closed. */
#define POP3_MAX_ERRORS 10
/* Before login the line deadline is at most this (seconds). */
#define POP3_PRELOGIN_SECS 60
#define POP3_PRELOGIN_LIFE 120   /* the whole time a client has to log in */
/* Longest login name we take (an address). */
#define POP3_USER_MAX 320

struct pop3_session;
struct pop3_maildrop;
struct sasl;
struct store_account;
struct store_folder;
struct event;

struct pop3_server {
	struct pop3_deps d;
	unsigned nsessions;
	struct pop3_session *sessions;   /* every live session */
	int stopping;
};

enum pop3_state {
	POP3_AUTHORIZATION,
	POP3_TRANSACTION,
	POP3_UPDATE                      /* QUIT's deletions on a worker */
};

/* A RETR or TOP on its way out. */
struct pop3_out {
	int fd;                          /* -1: none */
	struct event *more;              /* the next step, when the socket took it all */
	off_t left;                      /* file bytes still to read */
	struct pop3_stream st;
};

struct pop3_session {
	struct pop3_server *srv;
	struct pop3_session *next, *prev;
	struct conn *c;
	char id[16];                     /* session id for logs */
	char client[64];
	enum pop3_state state;
	unsigned tls : 1, busy : 1, closing : 1, dead : 1;
	unsigned authing : 1;            /* a password check in flight */
	unsigned loading : 1;            /* the maildrop is being opened for user */
	char *user;                      /* USER's name; the canonical address once logged in */
	char *login;                     /* the name of the login in flight or done */
	const char *method;              /* "USER", "PLAIN", "LOGIN": for the log */
	struct sasl *sasl;               /* an AUTH exchange waiting for the client */
	unsigned errors;
	unsigned nretr, ndele, nexpunged;
	struct pop3_maildrop *md;
	struct pop3_out out;
};

/* The configuration in force (a reload swaps it between commands). */
static inline const struct config *
pop3_cf(const struct pop3_session *s)
{
	return *s->srv->d.cf;
}

static inline SSL_CTX *
pop3_tls(const struct pop3_session *s)
{
	return *s->srv->d.tls;
}

/* pop3_server.c: the maildrop lock and the per-user-address count. */
int pop3_server_locked(struct pop3_server *srv, const struct pop3_session *self,
		       const char *user);
unsigned pop3_server_user_ip(struct pop3_server *srv, const struct pop3_session *self,
			     const char *login);

/* pop3_session.c */
void pop3_session_start(struct pop3_server *srv, struct conn *c, enum conn_over over);
void pop3_session_kill(struct pop3_session *s, const char *reply);
void pop3_reply(struct pop3_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A -ERR that counts toward POP3_MAX_ERRORS. */
void pop3_error(struct pop3_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pop3_session_pause(struct pop3_session *s);
int pop3_session_resume(struct pop3_session *s);
void pop3_session_continue(struct pop3_session *s);
/* Start sending fd (len bytes) as a multi-line response after "+OK". */
void pop3_session_send_file(struct pop3_session *s, int fd, off_t len, long body_lines);
/* Logged in (state TRANSACTION) or back to the start of AUTHORIZATION. */
void pop3_session_logged_in(struct pop3_session *s);
void pop3_session_forget_login(struct pop3_session *s);

/* pop3_cmd.c */
void pop3_cmd_dispatch(struct pop3_session *s, char *line, size_t len);
void pop3_cmd_sasl_line(struct pop3_session *s, char *line, size_t len);

/* pop3_auth.c: USER/PASS, AUTH, and what follows a password check. */
void pop3_auth_user(struct pop3_session *s, const char *arg);
void pop3_auth_pass(struct pop3_session *s, const char *arg);
void pop3_auth_auth(struct pop3_session *s, const char *arg);
void pop3_auth_sasl_line(struct pop3_session *s, const char *line);
int pop3_auth_plaintext_ok(const struct pop3_session *s);

/* pop3_mail.c: the TRANSACTION commands. */
void pop3_mail_stat(struct pop3_session *s, const char *arg);
void pop3_mail_list(struct pop3_session *s, const char *arg);
void pop3_mail_uidl(struct pop3_session *s, const char *arg);
void pop3_mail_retr(struct pop3_session *s, const char *arg);
void pop3_mail_top(struct pop3_session *s, const char *arg);
void pop3_mail_dele(struct pop3_session *s, const char *arg);
void pop3_mail_rset(struct pop3_session *s, const char *arg);
void pop3_mail_quit(struct pop3_session *s);

/* pop3_maildrop.c: the INBOX as POP3 sees it, fixed at login. */
struct pop3_msg {
	uint32_t uid;
	long long size;                  /* octets as RETR sends them (RFC822.SIZE) */
	unsigned deleted : 1, retrieved : 1;
};

struct pop3_maildrop {
	struct store_account *acct;
	struct store_folder *f;
	uint32_t uidvalidity;
	struct pop3_msg *msgs;
	size_t n;
};

/* Blocking (a worker's job): the INBOX of user, with a store handle of
 * the session's own. NULL with *error_r. */
struct pop3_maildrop *pop3_maildrop_open(struct store *st, const char *user,
					 const char **error_r);
void pop3_maildrop_close(struct pop3_maildrop **mdp);
/* The message file (LF line ends), or -1 with *error_r (errno ENOENT:
 * expunged meanwhile). */
int pop3_maildrop_msg_open(struct pop3_maildrop *md, uint32_t uid, off_t *len_r,
			   const char **error_r);
/* Messages QUIT has to change (deleted or retrieved). */
size_t pop3_maildrop_changes(const struct pop3_maildrop *md);
/* Blocking (a worker's job, the session paused): QUIT's changes. 0, or -1
 * with *error_r; *expunged_r: messages removed. */
int pop3_maildrop_update(struct pop3_maildrop *md, unsigned *expunged_r, const char **error_r);

#endif
