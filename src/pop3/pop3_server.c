/*
 * pop3_server: the sessions of one POP3 service (see pop3.h), and what
 * they share on the loop: the maildrop lock of RFC 1939 §8 (one session
 * per user in TRANSACTION or UPDATE state; a second login gets
 * -ERR [IN-USE]) and the count of one user's sessions from one client
 * address ([pop3] max_connections_per_user_ip). Both are a walk over the
 * live sessions: there are at most [pop3] max_connections of them, and a
 * walk happens once per login.
 * Public: pop3_server_new, pop3_server_accept, pop3_server_shutdown,
 * pop3_server_sessions, pop3_server_free; pop3_server_locked and
 * pop3_server_user_ip for the session.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pop3/pop3_int.h"
#include "util/log.h"
#include "util/xalloc.h"

struct pop3_server *
pop3_server_new(const struct pop3_deps *deps)
{
	struct pop3_server *s = xcalloc(1, sizeof(*s));

	s->d = *deps;
	return s;
}

void
pop3_server_accept(struct conn *c, enum conn_over over, void *arg)
{
	struct pop3_server *srv = arg;

	if (srv->stopping) {
		conn_free(&c);
		return;
	}
	pop3_session_start(srv, c, over);
}

/* Does another session hold user's maildrop? A session keeps it from its
 * login until its QUIT's deletions are done (or it is gone). */
int
pop3_server_locked(struct pop3_server *srv, const struct pop3_session *self, const char *user)
{
	for (const struct pop3_session *s = srv->sessions; s != NULL; s = s->next)
		if (s != self && (s->state != POP3_AUTHORIZATION || s->loading) && s->user != NULL &&
		    strcasecmp(s->user, user) == 0)
			return 1;
	return 0;
}

/* Other sessions from self's client address logged in, or logging in, as
 * login: a client cannot try one user's password on many connections at
 * once beyond the limit. */
unsigned
pop3_server_user_ip(struct pop3_server *srv, const struct pop3_session *self, const char *login)
{
	unsigned n = 0;

	for (const struct pop3_session *s = srv->sessions; s != NULL; s = s->next)
		if (s != self && s->login != NULL &&
		    (s->authing || s->loading || s->state != POP3_AUTHORIZATION) &&
		    strcmp(s->client, self->client) == 0 && strcasecmp(s->login, login) == 0)
			n++;
	return n;
}

unsigned
pop3_server_sessions(struct pop3_server *s)
{
	return s->nsessions;
}

void
pop3_server_shutdown(struct pop3_server *s)
{
	s->stopping = 1;
	for (struct pop3_session *ss = s->sessions, *next; ss != NULL; ss = next) {
		next = ss->next;
		if (!ss->busy)
			pop3_session_kill(ss, "-ERR [SYS/TEMP] Server shutting down\r\n");
	}
}

void
pop3_server_free(struct pop3_server **sp)
{
	struct pop3_server *s = *sp;

	if (s == NULL)
		return;
	for (struct pop3_session *ss = s->sessions, *next; ss != NULL; ss = next) {
		next = ss->next;
		pop3_session_kill(ss, NULL);
	}
	/* a session with work on a worker would come back to freed memory:
	 * the caller drains the pool first */
	if (s->sessions != NULL)
		log_panic(NULL, "event=bug reason=\"POP3 server freed with a session busy\"");
	free(s);
	*sp = NULL;
}
