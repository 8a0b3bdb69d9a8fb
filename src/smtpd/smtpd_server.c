/*
 * smtpd_server: the sessions of one SMTP service (see smtpd.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd/smtpd_int.h"
#include "smtpd/smtpd_policy.h"
#include "conf/config.h"
#include "util/log.h"
#include "util/xalloc.h"

struct smtpd_server *
smtpd_server_new(const struct smtpd_deps *deps)
{
	struct smtpd_server *s = xcalloc(1, sizeof(*s));

	s->d = *deps;
	if (s->d.policy == NULL)
		s->d.policy = &smtpd_policy_mx;
	return s;
}

void
smtpd_server_accept(struct conn *c, enum conn_over over, void *arg)
{
	struct smtpd_server *srv = arg;

	if (srv->stopping) {
		conn_free(&c);
		return;
	}
	smtpd_session_start(srv, c, (int)over);
}

/* ETRN costs the queue a pass and the destination connections: a client
 * gets a few a minute for each domain (a primary asks once per domain; the
 * domains are the relay domains, so their number is ours to bound). The
 * table forgets the oldest window first. */
int
smtpd_server_etrn_rate_ok(struct smtpd_server *srv, const char *client, const char *domain,
			  time_t now)
{
	struct smtpd_etrn_rate *r = NULL, *oldest = &srv->etrn_rate[0];

	for (int i = 0; i < SMTPD_ETRN_CLIENTS; i++) {
		struct smtpd_etrn_rate *e = &srv->etrn_rate[i];

		if (strcmp(e->client, client) == 0 && strcmp(e->domain, domain) == 0) {
			r = e;
			break;
		}
		if (e->window < oldest->window)
			oldest = e;
	}
	if (r == NULL) {
		r = oldest;
		snprintf(r->client, sizeof(r->client), "%s", client);
		snprintf(r->domain, sizeof(r->domain), "%s", domain);
		r->window = now;
		r->n = 0;
	}
	if (now - r->window >= 60) {
		r->window = now;
		r->n = 0;
	}
	return ++r->n <= SMTPD_ETRN_PER_MIN;
}

unsigned
smtpd_server_sessions(struct smtpd_server *s)
{
	return s->nsessions;
}

void
smtpd_server_shutdown(struct smtpd_server *s)
{
	s->stopping = 1;
	for (struct smtpd_session *ss = s->sessions, *next; ss != NULL; ss = next) {
		next = ss->next;
		if (!ss->busy)
			smtpd_session_kill(ss, "421 4.3.2 Service shutting down\r\n");
	}
}

void
smtpd_server_free(struct smtpd_server **sp)
{
	struct smtpd_server *s = *sp;

	if (s == NULL)
		return;
	for (struct smtpd_session *ss = s->sessions, *next; ss != NULL; ss = next) {
		next = ss->next;
		smtpd_session_kill(ss, NULL);
	}
	/* a session with work on a worker would come back to freed memory:
	 * the caller drains the pool first */
	if (s->sessions != NULL)
		log_panic(NULL, "event=bug reason=\"SMTP server freed with a session busy\"");
	free(s);
	*sp = NULL;
}
