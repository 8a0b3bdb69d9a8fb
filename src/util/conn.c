/*
 * conn: client connections on the event loop (see conn.h): buffers,
 * TLS, deadlines, the output watermark, and the per-address counts.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/conn.h"
#include "util/log.h"
#include "util/net.h"
#include "util/xalloc.h"

#define LIMIT_BUCKETS 256

struct limit_ent {
	unsigned char key[17];    /* family tag + address prefix */
	size_t klen;
	unsigned count;
	struct limit_ent *next;
};

struct conn_limits {
	unsigned per_client, per_net;
	struct limit_ent *b[LIMIT_BUCKETS];
};

struct conn_listener {
	struct evconnlistener *l;
	struct event_base *base;
	enum conn_tls_mode mode;
	SSL_CTX *const *tls_ctx;
	struct conn_limits *limits;
	unsigned count;
	conn_accept_fn *accept;
	void *arg;
	struct conn *conns;           /* live connections, detached at free */
};

struct conn {
	struct event_base *base;
	struct conn_listener *lst;
	struct conn *lnext, *lprev;   /* in lst->conns */
	struct conn_limits *limits;
	unsigned char ckey[17], nkey[17];
	size_t cklen, nklen;
	struct bufferevent *bev;
	struct bufferevent *raw;      /* under the TLS filter after STARTTLS */
	struct evbuffer_cb_entry *raw_cb;
	struct evbuffer *out;         /* batched output not yet given to bev */
	struct event *deadline_ev, *life_ev, *defer_ev;
	SSL_CTX *starttls_ctx;
	struct conn_cbs cbs;
	void *arg;
	char id[16];
	char client[64];
	int port;
	struct sockaddr_storage ss;
	socklen_t sslen;
	unsigned line_secs, life_secs;
	int depth;                    /* inside our callbacks to the session */
	int pending_end;              /* an end that happened while paused (+1) */
	unsigned tls : 1, tls_pending : 1, closing : 1, paused : 1, skip_line : 1;
	unsigned out_blocked : 1, ended : 1, doomed : 1;
};

static unsigned long conn_next_id;

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static void conn_end(struct conn *c, enum conn_end why);

/* --- limits --------------------------------------------------------------- */

struct conn_limits *
conn_limits_new(unsigned per_client, unsigned per_net)
{
	struct conn_limits *l = xcalloc(1, sizeof(*l));

	l->per_client = per_client;
	l->per_net = per_net;
	return l;
}

void
conn_limits_set(struct conn_limits *l, unsigned per_client, unsigned per_net)
{
	l->per_client = per_client;
	l->per_net = per_net;
}

void
conn_limits_free(struct conn_limits **lp)
{
	struct conn_limits *l = *lp;

	if (l == NULL)
		return;
	for (int i = 0; i < LIMIT_BUCKETS; i++)
		while (l->b[i] != NULL) {
			struct limit_ent *e = l->b[i];
			l->b[i] = e->next;
			free(e);
		}
	free(l);
	*lp = NULL;
}

static unsigned
limit_hash(const unsigned char *k, size_t n)
{
	unsigned h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ k[i]) * 16777619u;
	return h % LIMIT_BUCKETS;
}

/* Add delta to key's count; returns the new count. */
static unsigned
limit_add(struct conn_limits *l, const unsigned char *k, size_t n, int delta)
{
	struct limit_ent **pp = &l->b[limit_hash(k, n)], *e;

	for (; (e = *pp) != NULL; pp = &e->next)
		if (e->klen == n && memcmp(e->key, k, n) == 0)
			break;
	if (e == NULL) {
		if (delta < 0)
			return 0;
		e = xcalloc(1, sizeof(*e));
		memcpy(e->key, k, n);
		e->klen = n;
		e->next = l->b[limit_hash(k, n)];
		l->b[limit_hash(k, n)] = e;
	}
	if (delta < 0 && e->count <= (unsigned)-delta) {
		for (pp = &l->b[limit_hash(k, n)]; *pp != e; pp = &(*pp)->next)
			;
		*pp = e->next;
		free(e);
		return 0;
	}
	e->count += delta;
	return e->count;
}

/* The client key (IPv4 /32, IPv6 /64) and the network key (/24, /48).
 * IPv4-mapped IPv6 addresses count as IPv4. */
static void
conn_keys(struct conn *c)
{
	const unsigned char *a;
	int v4;

	if (c->ss.ss_family == AF_INET) {
		a = (const unsigned char *)&((struct sockaddr_in *)&c->ss)->sin_addr;
		v4 = 1;
	} else if (c->ss.ss_family == AF_INET6) {
		const struct in6_addr *in6 = &((struct sockaddr_in6 *)&c->ss)->sin6_addr;
		v4 = IN6_IS_ADDR_V4MAPPED(in6);
		a = in6->s6_addr + (v4 ? 12 : 0);
	} else {
		c->cklen = c->nklen = 1;
		c->ckey[0] = c->nkey[0] = 0;
		return;
	}
	c->ckey[0] = v4 ? 4 : 6;
	c->nkey[0] = v4 ? 0x44 : 0x66;
	c->cklen = 1 + (v4 ? 4 : 8);
	c->nklen = 1 + (v4 ? 3 : 6);
	memcpy(c->ckey + 1, a, c->cklen - 1);
	memcpy(c->nkey + 1, a, c->nklen - 1);
}

/* --- listeners ------------------------------------------------------------ */

static struct conn *conn_new(struct conn_listener *l, evutil_socket_t fd, struct sockaddr *sa,
			     int salen);

static void
conn_accept_cb(struct evconnlistener *el, evutil_socket_t fd, struct sockaddr *sa, int salen,
	       void *arg)
{
	struct conn_listener *l = arg;
	struct conn *c = conn_new(l, fd, sa, salen);
	enum conn_over over = CONN_OVER_NONE;
	unsigned nc, nn;

	if (c == NULL)
		return;
	nc = c->limits ? limit_add(c->limits, c->ckey, c->cklen, 0) : 0;
	nn = c->limits ? limit_add(c->limits, c->nkey, c->nklen, 0) : 0;
	if (c->limits && c->limits->per_client > 0 && nc > c->limits->per_client)
		over = CONN_OVER_CLIENT;
	else if (c->limits && c->limits->per_net > 0 && nn > c->limits->per_net)
		over = CONN_OVER_NET;
	l->accept(c, over, l->arg);
}

static void
conn_accept_error_cb(struct evconnlistener *el, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();

	/* EMFILE and friends: keep listening; the next accept may succeed. */
	log_warn(NULL, "event=accept_error error=%s", log_q(evutil_socket_error_to_string(err)));
}

struct conn_listener *
conn_listener_new(struct event_base *base, const char *addr, enum conn_tls_mode mode,
		  SSL_CTX *const *tls_ctx, struct conn_limits *limits, conn_accept_fn *accept,
		  void *arg, const char **error_r)
{
	static __thread char err[300];
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct conn_listener *l;

	if (net_parse_sockaddr(addr, &ss, &sslen) != 0) {
		snprintf(err, sizeof(err), "%s: expected a numeric ADDR:PORT", addr);
		*error_r = err;
		return NULL;
	}
	if (mode == CONN_IMPLICIT_TLS && (tls_ctx == NULL || *tls_ctx == NULL)) {
		snprintf(err, sizeof(err), "%s: implicit TLS without a certificate", addr);
		*error_r = err;
		return NULL;
	}
	l = xcalloc(1, sizeof(*l));
	l->base = base;
	l->mode = mode;
	l->tls_ctx = tls_ctx;
	l->limits = limits;
	l->accept = accept;
	l->arg = arg;
	l->l = evconnlistener_new_bind(base, conn_accept_cb, l,
				       LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
				       1024, (struct sockaddr *)&ss, sslen);
	if (l->l == NULL) {
		snprintf(err, sizeof(err), "cannot listen on %s: %s", addr, strerror(errno));
		*error_r = err;
		free(l);
		return NULL;
	}
	evconnlistener_set_error_cb(l->l, conn_accept_error_cb);
	return l;
}

unsigned
conn_listener_count(const struct conn_listener *l)
{
	return l->count;
}

int
conn_listener_port(const struct conn_listener *l)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(evconnlistener_get_fd(l->l), (struct sockaddr *)&ss, &len) != 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

void
conn_listener_free(struct conn_listener **lp)
{
	struct conn_listener *l = *lp;

	if (l == NULL)
		return;
	for (struct conn *c = l->conns; c != NULL; c = c->lnext)
		c->lst = NULL;
	evconnlistener_free(l->l);
	free(l);
	*lp = NULL;
}

/* --- one connection ----------------------------------------------------- */

static void
conn_addr_str(struct conn *c)
{
	struct sockaddr *sa = (struct sockaddr *)&c->ss;

	if (sa->sa_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &sin->sin_addr, c->client, sizeof(c->client));
		c->port = ntohs(sin->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)sa;
		strcpy(c->client, "IPv6:");
		inet_ntop(AF_INET6, &sin6->sin6_addr, c->client + 5, sizeof(c->client) - 5);
		c->port = ntohs(sin6->sin6_port);
	} else {
		strcpy(c->client, "unknown");
	}
}

static void
conn_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_end(arg, CONN_END_TIMEOUT);
}

static void
conn_life_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_end(arg, CONN_END_LIFETIME);
}

static void conn_run_input(struct conn *c);
static void conn_closed_check(struct conn *c);
static int conn_unblock(struct conn *c);
static size_t conn_out_len(struct conn *c);
static void conn_raw_drained(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg);

/* What the session's own calls (flush, close, resume) decide is done from
 * here, on the loop: a session never gets a callback from inside a call it
 * made, so it never finds itself freed under its feet. */
static void
conn_defer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (c->ended || c->doomed || c->paused)
		return;
	if (c->pending_end) {
		enum conn_end why = (enum conn_end)(c->pending_end - 1);

		c->pending_end = 0;
		conn_end(c, why);
		return;
	}
	if (c->closing) {
		conn_closed_check(c);
		return;
	}
	conn_unblock(c);
	conn_run_input(c);
}

static void
conn_defer(struct conn *c)
{
	struct timeval now = { 0, 0 };

	if (!evtimer_pending(c->defer_ev, NULL))
		evtimer_add(c->defer_ev, &now);
}

static struct conn *
conn_new(struct conn_listener *l, evutil_socket_t fd, struct sockaddr *sa, int salen)
{
	struct conn *c = xcalloc(1, sizeof(*c));

	c->base = l->base;
	if ((size_t)salen > sizeof(c->ss))
		salen = sizeof(c->ss);
	memcpy(&c->ss, sa, salen);
	c->sslen = salen;
	conn_addr_str(c);
	snprintf(c->id, sizeof(c->id), "S%lx", ++conn_next_id);
	net_nodelay(fd);
	if (l->mode == CONN_IMPLICIT_TLS) {
		SSL *ssl = SSL_new(*l->tls_ctx);

		c->bev = ssl ? bufferevent_openssl_socket_new(l->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
							      BEV_OPT_CLOSE_ON_FREE) : NULL;
		if (c->bev == NULL) {
			if (ssl)
				SSL_free(ssl);
			close(fd);
			free(c);
			log_err(NULL, "event=accept_failed reason=\"TLS setup failed\"");
			return NULL;
		}
		c->tls = 1;
	} else {
		/* evconnlistener accepted it non-blocking and close-on-exec */
		c->bev = bufferevent_socket_new(l->base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	c->out = evbuffer_new();
	c->deadline_ev = evtimer_new(c->base, conn_deadline_cb, c);
	c->life_ev = evtimer_new(c->base, conn_life_cb, c);
	c->defer_ev = evtimer_new(c->base, conn_defer_cb, c);
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, CONN_IN_HIGH);
	/* EV_WRITE only while output waits (see conn_flush); socket
	 * bufferevents start with it enabled. */
	if (!c->tls)
		bufferevent_disable(c->bev, EV_WRITE);
	bufferevent_enable(c->bev, EV_READ);
	c->lst = l;
	c->lnext = l->conns;
	if (l->conns)
		l->conns->lprev = c;
	l->conns = c;
	l->count++;
	c->limits = l->limits;
	conn_keys(c);
	if (c->limits) {
		limit_add(c->limits, c->ckey, c->cklen, 1);
		limit_add(c->limits, c->nkey, c->nklen, 1);
	}
	return c;
}

void
conn_set_callbacks(struct conn *c, const struct conn_cbs *cbs, void *arg)
{
	c->cbs = *cbs;
	c->arg = arg;
}

static void
conn_arm_deadline(struct conn *c)
{
	struct timeval tv = { c->line_secs, 0 };

	if (c->line_secs > 0 && !c->paused)
		evtimer_add(c->deadline_ev, &tv);
}

void
conn_set_timeouts(struct conn *c, unsigned line_secs, unsigned life_secs)
{
	c->line_secs = line_secs;
	c->life_secs = life_secs;
	evtimer_del(c->deadline_ev);
	conn_arm_deadline(c);
	evtimer_del(c->life_ev);
	if (life_secs > 0) {
		struct timeval tv = { life_secs, 0 };
		evtimer_add(c->life_ev, &tv);
	}
}

static void
conn_destroy(struct conn *c)
{
	if (c->lst != NULL) {
		if (c->lprev)
			c->lprev->lnext = c->lnext;
		else
			c->lst->conns = c->lnext;
		if (c->lnext)
			c->lnext->lprev = c->lprev;
		c->lst->count--;
	}
	if (c->limits) {
		limit_add(c->limits, c->ckey, c->cklen, -1);
		limit_add(c->limits, c->nkey, c->nklen, -1);
	}
	event_free(c->deadline_ev);
	event_free(c->life_ev);
	event_free(c->defer_ev);
	if (c->raw_cb)
		evbuffer_remove_cb_entry(bufferevent_get_output(c->raw), c->raw_cb);
	if (c->starttls_ctx)
		SSL_CTX_free(c->starttls_ctx);
	if (c->bev)
		bufferevent_free(c->bev);
	evbuffer_free(c->out);
	free(c);
}

void
conn_free(struct conn **cp)
{
	struct conn *c = *cp;

	if (c == NULL)
		return;
	*cp = NULL;
	if (c->depth > 0) {
		/* inside one of our callbacks: free when it returns */
		c->doomed = 1;
		c->ended = 1;
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		evtimer_del(c->deadline_ev);
		evtimer_del(c->life_ev);
		evtimer_del(c->defer_ev);
		return;
	}
	conn_destroy(c);
}

/* Call into the session; 1 if c is gone afterwards. */
static int
conn_call_input(struct conn *c)
{
	c->depth++;
	c->cbs.input(c, c->arg);
	c->depth--;
	if (c->doomed && c->depth == 0) {
		conn_destroy(c);
		return 1;
	}
	return 0;
}

static void
conn_end(struct conn *c, enum conn_end why)
{
	if (c->ended || c->doomed)
		return;
	if (c->paused) {
		/* no callback while the session has work in flight */
		if (c->pending_end == 0)
			c->pending_end = (int)why + 1;
		return;
	}
	/* A timeout leaves the connection open for one last reply; every
	 * other end is final. */
	if (why != CONN_END_TIMEOUT && why != CONN_END_LIFETIME)
		c->ended = 1;
	else if (c->closing)
		c->ended = 1;   /* the last reply did not leave in time either */
	evtimer_del(c->deadline_ev);
	c->depth++;
	c->cbs.end(c, why, c->arg);
	c->depth--;
	if (c->doomed && c->depth == 0)
		conn_destroy(c);
}

static void
conn_run_input(struct conn *c)
{
	if (c->ended || c->doomed || c->paused || c->closing || c->tls_pending)
		return;
	conn_call_input(c);
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	conn_run_input(arg);
}

static void
conn_switch_tls(struct conn *c)
{
	struct bufferevent *tls;
	SSL *ssl;

	c->tls_pending = 0;
	/* Whatever the client sent after STARTTLS in the clear is thrown
	 * away (CVE-2011-0411). */
	evbuffer_drain(bufferevent_get_input(c->bev), evbuffer_get_length(bufferevent_get_input(c->bev)));
	ssl = SSL_new(c->starttls_ctx);
	SSL_CTX_free(c->starttls_ctx);   /* the SSL holds its own reference now */
	c->starttls_ctx = NULL;
	tls = ssl ? bufferevent_openssl_filter_new(c->base, c->bev, ssl, BUFFEREVENT_SSL_ACCEPTING,
						   BEV_OPT_CLOSE_ON_FREE) : NULL;
	if (tls == NULL) {
		if (ssl)
			SSL_free(ssl);
		c->pending_end = (int)CONN_END_ERROR + 1;
		conn_defer(c);
		return;
	}
	c->raw = c->bev;
	c->bev = tls;
	c->tls = 1;
	/* the output switch happened with nothing waiting */
	c->out_blocked = 0;
	/* the filter hands everything on to the socket's buffer at once: the
	 * watermark and the last reply of a close are watched there */
	c->raw_cb = evbuffer_add_cb(bufferevent_get_output(c->raw), conn_raw_drained, c);
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, CONN_IN_HIGH);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	conn_arm_deadline(c);
}

/* The TLS filter hands its bytes to the socket's bufferevent: a last reply
 * has left only once that one is empty too. */
static void
conn_raw_drained(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct conn *c = arg;

	if ((c->closing && evbuffer_get_length(buf) == 0) ||
	    (c->out_blocked && conn_out_len(c) <= CONN_OUT_HIGH / 2))
		conn_defer(c);
}

/* Has everything we wrote left (through the TLS layer too)? */
static int
conn_drained(struct conn *c)
{
	if (evbuffer_get_length(c->out) > 0 || evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
		return 0;
	return c->raw == NULL || evbuffer_get_length(bufferevent_get_output(c->raw)) == 0;
}

static void
conn_closed_check(struct conn *c)
{
	if (!c->closing || c->ended)
		return;
	if (conn_drained(c))   /* else the write or raw-buffer callback comes back */
		conn_end(c, CONN_END_CLOSED);
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return;
	if (c->closing) {
		conn_closed_check(c);
		return;
	}
	if (c->tls_pending) {
		conn_switch_tls(c);
		return;
	}
	if (!c->tls)
		bufferevent_disable(bev, EV_WRITE);
	if (conn_unblock(c))
		conn_run_input(c);
}

/* The client read its replies (through the TLS layer too): take its
 * commands again. 1 when it was blocked and is not any more. */
static int
conn_unblock(struct conn *c)
{
	if (!c->out_blocked || conn_out_len(c) > CONN_OUT_HIGH / 2)
		return 0;
	c->out_blocked = 0;
	if (!c->paused && !c->closing)
		bufferevent_enable(c->bev, EV_READ);
	return 1;
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	if (what & BEV_EVENT_CONNECTED) {
		/* the TLS handshake is done; the client speaks next */
		char info[128];

		if (conn_tls_info(c, info, sizeof(info)) != NULL)
			log_msg(c->id, "event=tls client=[%s] %s", c->client, info);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		unsigned long e = bufferevent_get_openssl_error(bev);
		if (e)
			log_msg(c->id, "event=tls_error client=[%s] error=%s", c->client,
				log_q(ERR_reason_error_string(e)));
		conn_end(c, CONN_END_ERROR);
		return;
	}
	conn_end(c, CONN_END_EOF);
}

const char *
conn_id(const struct conn *c)
{
	return c->id;
}

const char *
conn_client(const struct conn *c)
{
	return c->client;
}

int
conn_client_port(const struct conn *c)
{
	return c->port;
}

const struct sockaddr *
conn_sockaddr(const struct conn *c, socklen_t *len_r)
{
	if (len_r)
		*len_r = c->sslen;
	return (const struct sockaddr *)&c->ss;
}

evutil_socket_t
conn_fd(const struct conn *c)
{
	return bufferevent_getfd(c->raw ? c->raw : c->bev);
}

int
conn_is_tls(const struct conn *c)
{
	return c->tls;
}

const char *
conn_tls_info(struct conn *c, char *buf, size_t len)
{
	SSL *ssl = c->tls ? bufferevent_openssl_get_ssl(c->bev) : NULL;

	if (ssl == NULL || !SSL_is_init_finished(ssl))
		return NULL;
	snprintf(buf, len, "version=%s cipher=%s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
	return buf;
}

int
conn_tls_channel_binding(struct conn *c, const char *type, unsigned char *out)
{
	SSL *ssl = c->tls ? bufferevent_openssl_get_ssl(c->bev) : NULL;

	if (ssl == NULL || !SSL_is_init_finished(ssl))
		return -1;
	if (strcmp(type, "tls-exporter") == 0) {
		/* RFC 9266 4: TLS 1.3; 1.2 would need the extended master secret */
		if (SSL_version(ssl) != TLS1_3_VERSION ||
		    SSL_export_keying_material(ssl, out, 32, "EXPORTER-Channel-Binding", 24, NULL, 0,
					       0) != 1)
			return -1;
		return 32;
	}
	if (strcmp(type, "tls-server-end-point") == 0) {
		X509 *cert = SSL_get_certificate(ssl);
		const EVP_MD *md = EVP_sha256();
		unsigned int len = 0;
		int md_nid = NID_undef, pk_nid;

		if (cert == NULL)
			return -1;
		/* RFC 5929 4.1: the certificate's own signature hash, SHA-256
		 * in place of MD5 or SHA-1 */
		if (OBJ_find_sigid_algs(X509_get_signature_nid(cert), &md_nid, &pk_nid) &&
		    (md_nid == NID_sha384 || md_nid == NID_sha512))
			md = EVP_get_digestbynid(md_nid);
		if (X509_digest(cert, md, out, &len) != 1)
			return -1;
		return (int)len;
	}
	return -1;
}

int
conn_read_line(struct conn *c, char *buf, size_t buflen, size_t *len_r)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer_ptr p;
	size_t n;

again:
	p = evbuffer_search(in, "\n", 1, NULL);
	if (p.pos < 0) {
		if (evbuffer_get_length(in) < buflen)
			return 0;
		/* no end in sight: drop what we have, skip to the line's end */
		evbuffer_drain(in, evbuffer_get_length(in));
		if (c->skip_line)
			return 0;
		c->skip_line = 1;
		return -1;
	}
	n = (size_t)p.pos;
	if (c->skip_line) {
		/* the end of the over-long line: what follows is the next one */
		evbuffer_drain(in, n + 1);
		c->skip_line = 0;
		conn_arm_deadline(c);
		goto again;
	}
	if (n + 1 > buflen) {
		evbuffer_drain(in, n + 1);
		conn_arm_deadline(c);
		return -1;
	}
	evbuffer_remove(in, buf, n + 1);
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	*len_r = n;
	conn_arm_deadline(c);
	return 1;
}

size_t
conn_read_bytes(struct conn *c, void *buf, size_t want)
{
	int n = evbuffer_remove(bufferevent_get_input(c->bev), buf, want);

	if (n <= 0)
		return 0;
	conn_arm_deadline(c);
	return (size_t)n;
}

struct evbuffer *
conn_input(struct conn *c)
{
	return bufferevent_get_input(c->bev);
}

size_t
conn_input_len(struct conn *c)
{
	return evbuffer_get_length(bufferevent_get_input(c->bev));
}

void
conn_progress(struct conn *c)
{
	conn_arm_deadline(c);
}

void
conn_printf(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(c->out, fmt, ap);
	va_end(ap);
}

void
conn_vprintf(struct conn *c, const char *fmt, va_list ap)
{
	evbuffer_add_vprintf(c->out, fmt, ap);
}

void
conn_write(struct conn *c, const void *data, size_t len)
{
	evbuffer_add(c->out, data, len);
}

static size_t
conn_out_len(struct conn *c)
{
	size_t n = evbuffer_get_length(c->out) + evbuffer_get_length(bufferevent_get_output(c->bev));

	if (c->raw)
		n += evbuffer_get_length(bufferevent_get_output(c->raw));
	return n;
}

int
conn_blocked(struct conn *c)
{
	return c->paused || c->closing || c->tls_pending || c->ended || c->out_blocked ||
	       conn_out_len(c) > CONN_OUT_HIGH;
}

/* Replies go out at once with one write(2) for the whole batch; the write
 * event (two epoll_ctl calls) is armed only when the socket cannot take
 * everything. A bufferevent's own output cannot be written from outside,
 * so output gathers in c->out first. TLS hands it to the filter. */
void
conn_flush(struct conn *c)
{
	struct evbuffer *out;

	if (c->ended || c->doomed)
		return;
	out = bufferevent_get_output(c->bev);
	if (!c->tls && evbuffer_get_length(out) == 0 && evbuffer_get_length(c->out) > 0)
		evbuffer_write(c->out, bufferevent_getfd(c->bev));
	if (evbuffer_get_length(c->out) > 0 || c->tls) {
		evbuffer_add_buffer(out, c->out);
		bufferevent_enable(c->bev, EV_WRITE);
	}
	if (c->tls_pending && evbuffer_get_length(out) == 0) {
		conn_switch_tls(c);
		return;
	}
	if (c->closing) {
		bufferevent_enable(c->bev, EV_WRITE);
		if (conn_drained(c))
			conn_defer(c);
		else
			conn_closed_check(c);   /* only arms the TLS layer's drain check */
		return;
	}
	if (conn_out_len(c) > CONN_OUT_HIGH && !c->out_blocked) {
		/* the client is not reading: stop reading it until it does */
		c->out_blocked = 1;
		bufferevent_disable(c->bev, EV_READ);
		bufferevent_enable(c->bev, EV_WRITE);
	}
}

int
conn_starttls(struct conn *c, SSL_CTX *ctx)
{
	if (ctx == NULL || c->tls)
		return -1;
	/* a reload may free the server's context before the switch happens */
	SSL_CTX_up_ref(ctx);
	c->starttls_ctx = ctx;
	c->tls_pending = 1;
	/* nothing more is read in the clear */
	bufferevent_disable(c->bev, EV_READ);
	return 0;
}

void
conn_close(struct conn *c, const char *last)
{
	if (c->ended || c->doomed)
		return;
	if (last != NULL)
		evbuffer_add(c->out, last, strlen(last));
	if (!c->closing) {
		c->closing = 1;
		c->tls_pending = 0;
		bufferevent_disable(c->bev, EV_READ);
		/* the last reply gets one more deadline to leave */
		evtimer_del(c->deadline_ev);
		if (c->line_secs > 0) {
			struct timeval tv = { c->line_secs, 0 };
			evtimer_add(c->deadline_ev, &tv);
		}
	}
	if (c->paused)
		return;   /* flushed on resume */
	conn_flush(c);
}

void
conn_pause(struct conn *c)
{
	if (c->paused)
		return;
	c->paused = 1;
	bufferevent_disable(c->bev, EV_READ);
	evtimer_del(c->deadline_ev);
	evtimer_del(c->defer_ev);
}

void
conn_resume(struct conn *c)
{
	if (!c->paused)
		return;
	c->paused = 0;
	if (c->closing) {
		if (c->line_secs > 0) {
			struct timeval tv = { c->line_secs, 0 };
			evtimer_add(c->deadline_ev, &tv);
		}
		conn_flush(c);
	} else {
		/* the deadline starts again: the pause was our time */
		conn_arm_deadline(c);
		if (!c->out_blocked && !c->tls_pending && c->pending_end == 0)
			bufferevent_enable(c->bev, EV_READ);
	}
	/* an end that came while paused, or input already in the buffer */
	conn_defer(c);
}
