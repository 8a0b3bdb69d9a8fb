/*
 * smtpd_int: what the files of the SMTP server module share (private to
 * src/smtpd/): the server and session structs.
 */
#ifndef TANDEM_SMTPD_INT_H
#define TANDEM_SMTPD_INT_H
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <sys/socket.h>

#include "smtp/smtp_data.h"
#include "smtpd/smtpd.h"

#define SMTPD_MAX_LISTENERS 16
#define SMTPD_LINE_BUF 2048      /* longest line we buffer before calling it over-long */

struct smtpd_session;

struct smtpd_server {
	struct smtpd_deps d;
	struct evconnlistener *listeners[SMTPD_MAX_LISTENERS];
	int nlisteners;
	unsigned nsessions;
	unsigned long next_sid;
	struct smtpd_session *sessions;   /* all live sessions, for shutdown */
	int stopping;
};

struct smtpd_session {
	struct smtpd_server *srv;
	struct smtpd_session *next, *prev;
	struct bufferevent *bev;
	struct evbuffer *replies;       /* replies not yet handed to bev */
	struct bufferevent *raw;        /* under the TLS filter, after STARTTLS */
	struct evbuffer_cb_entry *raw_cb;
	struct event *free_ev;          /* frees a closing TLS session once flushed */
	struct event *greet_ev;
	char id[16];                /* session id for logs: "S<hex>" */
	char client[64];            /* "1.2.3.4" */
	int port;
	char *helo;
	unsigned greeted : 1, esmtp : 1, tls : 1, busy : 1, closing : 1, dead : 1;
	unsigned skip_line : 1, in_data : 1, tls_pending : 1, smtputf8 : 1, body8 : 1;
	unsigned in_mail : 1;
	char *sender;
	char **rcpt;
	int nrcpt;
	unsigned errors;
	unsigned ncommands;
	unsigned nmessages;
	struct smtp_data data;
	struct queue_in *in;
	char *dbuf;                 /* scratch for the DATA filter */
	size_t dbuf_len;
};

void smtpd_session_start(struct smtpd_server *srv, evutil_socket_t fd, struct sockaddr *sa,
			int salen);
void smtpd_session_kill(struct smtpd_session *s, const char *reply);

#endif
