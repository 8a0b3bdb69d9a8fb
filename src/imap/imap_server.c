/*
 * imap_server: the sessions of one IMAP service (see imap.h), and the list
 * of every IMAP server of the process (imap_server_first) that the
 * per-user limit counts over.
 */
#include <gmime/gmime.h>
#include <stdlib.h>

#include "imap/imap_int.h"
#include "util/log.h"
#include "util/xalloc.h"

/* The service table starts one server per row (imap, imaps); a user's
 * sessions are counted across all of them. Loop thread only. */
static struct imap_server *imap_servers;

struct imap_server *
imap_server_first(void)
{
	return imap_servers;
}

struct imap_server *
imap_server_new(const struct imap_deps *d)
{
	struct imap_server *s = xcalloc(1, sizeof(*s));

	s->d = *d;
	s->next = imap_servers;
	imap_servers = s;
	/* SEARCH decodes header words and dates with GMime (counted init) */
	g_mime_init();
	return s;
}

void
imap_server_accept(struct conn *c, enum conn_over over, void *arg)
{
	struct imap_server *srv = arg;

	if (srv->stopping) {
		conn_free(&c);
		return;
	}
	imap_session_start(srv, c, (int)over);
}

unsigned
imap_server_sessions(struct imap_server *s)
{
	return s->nsessions;
}

void
imap_server_shutdown(struct imap_server *s)
{
	s->stopping = 1;
	for (struct imap_session *ss = s->sessions, *next; ss != NULL; ss = next) {
		next = ss->next;
		if (!ss->busy)
			imap_session_kill(ss, "* BYE Server shutting down\r\n");
	}
}

void
imap_server_free(struct imap_server **sp)
{
	struct imap_server *s = *sp;

	if (s == NULL)
		return;
	for (struct imap_session *ss = s->sessions, *next; ss != NULL; ss = next) {
		next = ss->next;
		/* auth_free drops a pending check: its done() never comes */
		if (ss->in_auth)
			ss->busy = 0;
		imap_session_kill(ss, NULL);
	}
	/* a session with work on a worker would come back to freed memory:
	 * the caller drains the pool first */
	if (s->sessions != NULL)
		log_panic(NULL, "event=bug reason=\"IMAP server freed with a session busy\"");
	for (struct imap_server **pp = &imap_servers; *pp != NULL; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	free(s);
	g_mime_shutdown();
	*sp = NULL;
}
