/*
 * smtpd_server: listeners and the connection limit (see smtpd.h).
 */
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtpd/smtpd_int.h"
#include "conf/config.h"
#include "util/log.h"
#include "util/xalloc.h"

struct smtpd_server *
smtpd_server_new(const struct smtpd_deps *deps)
{
	struct smtpd_server *s = xcalloc(1, sizeof(*s));

	s->d = *deps;
	return s;
}

static void
smtpd_server_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		   void *arg)
{
	struct smtpd_server *srv = arg;

	if (srv->stopping) {
		close(fd);
		return;
	}
	smtpd_session_start(srv, fd, sa, salen);
}

static void
smtpd_server_accept_error(struct evconnlistener *l, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();

	/* EMFILE and friends: keep listening; the next accept may succeed. */
	log_warn(NULL, "event=accept_error error=%s", log_q(evutil_socket_error_to_string(err)));
}

int
smtpd_server_listen(struct smtpd_server *s, const char *addr, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	int sslen = sizeof(ss);
	struct evconnlistener *l;
	char host[256];
	int port;

	if (s->nlisteners == SMTPD_MAX_LISTENERS) {
		snprintf(err, errlen, "%s: too many listeners", addr);
		return -1;
	}
	if (config_parse_hostport(addr, host, sizeof(host), &port) != 0) {
		snprintf(err, errlen, "%s: expected ADDR:PORT", addr);
		return -1;
	}
	memset(&ss, 0, sizeof(ss));
	if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) != 0) {
		snprintf(err, errlen, "%s: not a numeric address", addr);
		return -1;
	}
	l = evconnlistener_new_bind(s->d.base, smtpd_server_accept, s,
				    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
				    1024, (struct sockaddr *)&ss, sslen);
	if (l == NULL) {
		snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
		return -1;
	}
	evconnlistener_set_error_cb(l, smtpd_server_accept_error);
	s->listeners[s->nlisteners++] = l;
	return 0;
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
	for (int i = 0; i < s->nlisteners; i++)
		evconnlistener_free(s->listeners[i]);
	s->nlisteners = 0;
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
	for (int i = 0; i < s->nlisteners; i++)
		evconnlistener_free(s->listeners[i]);
	while (s->sessions != NULL)
		smtpd_session_kill(s->sessions, NULL);
	free(s);
	*sp = NULL;
}
