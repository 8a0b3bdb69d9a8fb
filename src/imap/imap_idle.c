/*
 * imap_idle: IDLE (RFC 2177). New mail and changes made elsewhere reach
 * the client at once: the session watches its account (store_watch) while
 * it idles and sends what changed when the store says so. A keepalive
 * "* OK Still here" every [imap] idle_keepalive keeps NAT tables
 * open; the session's [imap] timeout still ends an IDLE nobody ends.
 * Public (module-internal): imap_cmd_idle, imap_idle_stop.
 */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/config.h"
#include "imap/imap_int.h"
#include "store/store.h"
#include "util/conn.h"

static void
imap_idle_notify(void *arg)
{
	struct imap_session *s = arg;

	if (!s->idling || s->busy || s->closing)
		return;
	imap_sync(s, 1, NULL, NULL);
	conn_flush(s->c);
}

static void
imap_idle_keepalive(evutil_socket_t fd, short what, void *arg)
{
	struct imap_session *s = arg;

	if (!s->idling || s->closing)
		return;
	imap_printf(s, "* OK Still here\r\n");
	conn_flush(s->c);
}

void
imap_idle_stop(struct imap_session *s)
{
	if (!s->idling)
		return;
	s->idling = 0;
	store_unwatch(&s->watch);
	if (s->idle_ev != NULL)
		event_del(s->idle_ev);
}

/* The client's DONE (anything else ends the IDLE with BAD). */
static int
imap_idle_cont(struct imap_session *s)
{
	char line[64];
	size_t len;
	int rc = conn_read_line(s->c, line, sizeof(line), &len);

	if (rc == 0)
		return 0;
	imap_idle_stop(s);
	if (rc > 0 && strcasecmp(line, "DONE") == 0)
		imap_done(s, "OK", "IDLE terminated");
	else
		imap_done(s, "BAD", "Expected DONE");
	return 1;
}

void
imap_cmd_idle(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	struct timeval tv = { (time_t)imap_cf(s)->imap_idle_keepalive, 0 };

	if (n != 0) {
		imap_done(s, "BAD", "Syntax: IDLE");
		return;
	}
	/* what changed before the IDLE goes first */
	if (s->state == IMAP_SELECTED)
		imap_sync(s, 1, NULL, NULL);
	imap_printf(s, "+ idling\r\n");
	s->idling = 1;
	s->watch = store_watch(s->srv->d.store, s->user, imap_idle_notify, s);
	if (s->idle_ev == NULL)
		s->idle_ev = event_new(s->srv->d.base, -1, EV_PERSIST, imap_idle_keepalive, s);
	event_add(s->idle_ev, &tv);
	s->cont = imap_idle_cont;
}
