/*
 * server: the service table and its listeners (see server.h).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"
#include "imap/imap.h"
#include "smtpd/smtpd.h"
#include "smtpd/smtpd_policy.h"
#include "pop3/pop3.h"
#include "conf/config.h"
#include "util/conn.h"
#include "util/log.h"
#include "util/xalloc.h"

#define SERVER_MAX_LISTENERS 64
#define SERVER_NSERVICES 8       /* rows of service_rows[] */

/* A running service: what the row's constructor built. */
struct service_inst {
	void *arg;
	conn_accept_fn *accept;
	void (*shutdown)(void *arg);
	unsigned (*sessions)(void *arg);
	void (*destroy)(void *arg);
};

struct service_row {
	const char *name;            /* also the [listen] key */
	size_t listen_off;           /* its struct config_list in struct config */
	enum conn_tls_mode tls;
	const char *default_addr;    /* when the key is unset (NULL: off) */
	/* NULL: not built in this version */
	int (*start)(const struct server_ctx *ctx, struct service_inst *inst);
	/* the service's own session cap */
	unsigned (*max_sessions)(const struct config *cf);
};

struct server_listener {
	struct conn_listener *l;
	struct server *srv;
	int row;
};

struct server {
	struct server_ctx ctx;
	struct conn_limits *limits;
	struct service_inst inst[SERVER_NSERVICES];
	int started[SERVER_NSERVICES];
	struct server_listener lst[SERVER_MAX_LISTENERS];
	int nlst;
};

/* --- the SMTP service -------------------------------------------------- */

static void
smtp_shutdown(void *arg)
{
	smtpd_server_shutdown(arg);
}

static unsigned
smtp_sessions(void *arg)
{
	return smtpd_server_sessions(arg);
}

static void
smtp_destroy(void *arg)
{
	struct smtpd_server *s = arg;

	smtpd_server_free(&s);
}

static int
smtpd_start(const struct server_ctx *ctx, struct service_inst *inst,
	    const struct smtpd_policy *policy)
{
	struct smtpd_deps d;

	memset(&d, 0, sizeof(d));
	d.base = ctx->base;
	d.cf = ctx->cf;
	d.queue = ctx->queue;
	d.pool = ctx->pool;
	d.dir = ctx->dir;
	d.store = ctx->store;
	d.tls = ctx->tls;
	d.committed = ctx->committed;
	d.etrn = ctx->etrn;
	d.etrn_allowed = ctx->etrn_allowed;
	d.arg = ctx->arg;
	d.policy = policy;
	d.auth = ctx->auth;
	inst->arg = smtpd_server_new(&d);
	inst->accept = smtpd_server_accept;
	inst->shutdown = smtp_shutdown;
	inst->sessions = smtp_sessions;
	inst->destroy = smtp_destroy;
	return 0;
}

static int
smtp_start(const struct server_ctx *ctx, struct service_inst *inst)
{
	return smtpd_start(ctx, inst, &smtpd_policy_mx);
}

/* submission and submissions: the SMTP server under the submission policy
 * (AUTH first, then relay, as one's own addresses). */
static int
submission_start(const struct server_ctx *ctx, struct service_inst *inst)
{
	if (ctx->auth == NULL)
		return -1;
	return smtpd_start(ctx, inst, &smtpd_policy_submission);
}

static unsigned
smtp_max_sessions(const struct config *cf)
{
	return cf->max_connections;
}

/* --- the POP3 service (pop3 with STLS, pop3s) ------------------------------- */

static void
pop3_shutdown(void *arg)
{
	pop3_server_shutdown(arg);
}

static unsigned
pop3_sessions(void *arg)
{
	return pop3_server_sessions(arg);
}

static void
pop3_destroy(void *arg)
{
	struct pop3_server *s = arg;

	pop3_server_free(&s);
}

/* pop3 and pop3s are two rows of one service: one server, one set of
 * sessions (the maildrop lock holds across both), counted once. */
static struct pop3_server *pop3_shared;
static int pop3_refs;

static unsigned
pop3_sessions_counted(void *arg)
{
	return 0;
}

static void
pop3_destroy_shared(void *arg)
{
	if (--pop3_refs == 0) {
		pop3_destroy(arg);
		pop3_shared = NULL;
	}
}

static int
pop3_start(const struct server_ctx *ctx, struct service_inst *inst)
{
	struct pop3_deps d;

	if (ctx->store == NULL || ctx->auth == NULL)
		return -1;
	if (pop3_shared == NULL) {
		memset(&d, 0, sizeof(d));
		d.base = ctx->base;
		d.cf = ctx->cf;
		d.pool = ctx->pool;
		d.tls = ctx->tls;
		d.store = ctx->store;
		d.auth = ctx->auth;
		pop3_shared = pop3_server_new(&d);
	}
	inst->arg = pop3_shared;
	inst->accept = pop3_server_accept;
	inst->shutdown = pop3_shutdown;
	inst->sessions = pop3_refs++ == 0 ? pop3_sessions : pop3_sessions_counted;
	inst->destroy = pop3_destroy_shared;
	return 0;
}

/* --- the IMAP service (imap: STARTTLS, imaps: implicit TLS) ------------ */

static void
imap_shutdown(void *arg)
{
	imap_server_shutdown(arg);
}

static unsigned
imap_sessions(void *arg)
{
	return imap_server_sessions(arg);
}

static void
imap_destroy(void *arg)
{
	struct imap_server *s = arg;

	imap_server_free(&s);
}

static int
imap_start(const struct server_ctx *ctx, struct service_inst *inst)
{
	struct imap_deps d;

	if (ctx->store == NULL || ctx->auth == NULL)
		return -1;
	memset(&d, 0, sizeof(d));
	d.base = ctx->base;
	d.cf = ctx->cf;
	d.pool = ctx->pool;
	d.dir = ctx->dir;
	d.tls = ctx->tls;
	d.store = ctx->store;
	d.auth = ctx->auth;
	inst->arg = imap_server_new(&d);
	inst->accept = imap_server_accept;
	inst->shutdown = imap_shutdown;
	inst->sessions = imap_sessions;
	inst->destroy = imap_destroy;
	return 0;
}

static unsigned
pop3_max_sessions(const struct config *cf)
{
	return cf->pop3_max_connections;
}

static unsigned
imap_max_sessions(const struct config *cf)
{
	return cf->imap_max_connections;
}

/* --- the table --------------------------------------------------------- */

#define L(field) offsetof(struct config, field)

static const struct service_row service_rows[] = {
	{ "smtp", L(listen_smtp), CONN_PLAIN, "0.0.0.0:25", smtp_start, smtp_max_sessions },
	{ "submission", L(listen_submission), CONN_PLAIN, NULL, submission_start, smtp_max_sessions },
	{ "submissions", L(listen_submissions), CONN_IMPLICIT_TLS, NULL, submission_start,
	  smtp_max_sessions },
	{ "imap", L(listen_imap), CONN_PLAIN, NULL, imap_start, imap_max_sessions },
	{ "imaps", L(listen_imaps), CONN_IMPLICIT_TLS, NULL, imap_start, imap_max_sessions },
	{ "pop3", L(listen_pop3), CONN_PLAIN, NULL, pop3_start, pop3_max_sessions },
	{ "pop3s", L(listen_pop3s), CONN_IMPLICIT_TLS, NULL, pop3_start, pop3_max_sessions },
	{ "http", L(listen_http), CONN_PLAIN, NULL, NULL, NULL },
};
#define NROWS ((int)(sizeof(service_rows) / sizeof(service_rows[0])))
_Static_assert(sizeof(service_rows) / sizeof(service_rows[0]) == SERVER_NSERVICES,
	       "SERVER_NSERVICES is the number of rows");

static const struct config_list *
row_list(const struct service_row *r, const struct config *cf)
{
	return (const struct config_list *)((const char *)cf + r->listen_off);
}

/* A row configured to listen whose service is not built: its error. */
static const char *
row_unbuilt(const struct service_row *r, const struct config *cf)
{
	static __thread char err[200];

	if (r->start != NULL || row_list(r, cf)->n == 0)
		return NULL;
	snprintf(err, sizeof(err), "[listen] %s: the %s service is not built in this version of "
		 "tandem; remove the key", r->name, r->name);
	return err;
}

int
server_check_listen(const struct config *cf, FILE *errs)
{
	int n = 0;

	for (int i = 0; i < NROWS; i++) {
		const char *e = row_unbuilt(&service_rows[i], cf);

		if (e != NULL) {
			fprintf(errs, "%s:%d: %s\n", cf->path ? cf->path : "config",
				config_line(cf, "listen", service_rows[i].name), e);
			n++;
		}
	}
	return n;
}

struct server *
server_new(const struct server_ctx *ctx)
{
	struct server *s = xcalloc(1, sizeof(*s));
	const struct config *cf = *ctx->cf;

	s->ctx = *ctx;
	s->limits = conn_limits_new(cf->max_connections_per_client, cf->max_connections_per_net);
	return s;
}

/* Over the service's own cap? Counted across all of its listeners. */
static void
server_accept(struct conn *c, enum conn_over over, void *arg)
{
	struct server_listener *sl = arg;
	struct server *s = sl->srv;
	const struct service_row *r = &service_rows[sl->row];
	unsigned n = 0, max = r->max_sessions ? r->max_sessions(*s->ctx.cf) : 0;

	for (int i = 0; i < s->nlst; i++)
		if (s->lst[i].row == sl->row)
			n += conn_listener_count(s->lst[i].l);
	if (over == CONN_OVER_NONE && max > 0 && n > max)
		over = CONN_OVER_SERVICE;
	s->inst[sl->row].accept(c, over, s->inst[sl->row].arg);
}

int
server_bind(struct server *s, const char **error_r)
{
	static __thread char err[400];
	const struct config *cf = *s->ctx.cf;

	for (int i = 0; i < NROWS; i++) {
		const struct service_row *r = &service_rows[i];
		const struct config_list *lst = row_list(r, cf);
		int n = lst->n > 0 ? lst->n : r->default_addr ? 1 : 0;

		if (n == 0)
			continue;
		if ((*error_r = row_unbuilt(r, cf)) != NULL)
			return -1;
		if (r->tls == CONN_IMPLICIT_TLS && *s->ctx.tls == NULL) {
			snprintf(err, sizeof(err), "[listen] %s: needs a TLS certificate", r->name);
			*error_r = err;
			return -1;
		}
		for (int k = 0; k < n; k++) {
			const char *addr = lst->n > 0 ? lst->v[k] : r->default_addr;
			struct server_listener *sl;
			const char *e;

			if (s->nlst == SERVER_MAX_LISTENERS) {
				snprintf(err, sizeof(err), "[listen] %s: too many listeners", r->name);
				*error_r = err;
				return -1;
			}
			sl = &s->lst[s->nlst];
			sl->srv = s;
			sl->row = i;
			sl->l = conn_listener_new(s->ctx.base, addr, r->tls, s->ctx.tls, s->limits,
						  server_accept, sl, &e);
			if (sl->l == NULL) {
				snprintf(err, sizeof(err), "[listen] %s: %s", r->name, e);
				*error_r = err;
				return -1;
			}
			s->nlst++;
			log_msg(NULL, "event=listening proto=%s addr=%s%s", r->name, addr,
				r->tls == CONN_IMPLICIT_TLS ? " tls=implicit" : "");
		}
	}
	return 0;
}

int
server_start(struct server *s, const struct server_ctx *ctx, const char **error_r)
{
	static __thread char err[400];

	s->ctx = *ctx;
	for (int k = 0; k < s->nlst; k++) {
		int i = s->lst[k].row;

		if (s->started[i])
			continue;
		if (service_rows[i].start(&s->ctx, &s->inst[i]) != 0) {
			snprintf(err, sizeof(err), "[listen] %s: cannot start the service",
				 service_rows[i].name);
			*error_r = err;
			return -1;
		}
		s->started[i] = 1;
	}
	return 0;
}

void
server_shutdown(struct server *s)
{
	for (int i = 0; i < s->nlst; i++)
		conn_listener_free(&s->lst[i].l);
	s->nlst = 0;
	for (int i = 0; i < NROWS; i++)
		if (s->started[i])
			s->inst[i].shutdown(s->inst[i].arg);
}

unsigned
server_sessions(struct server *s)
{
	unsigned n = 0;

	for (int i = 0; i < NROWS; i++)
		if (s->started[i])
			n += s->inst[i].sessions(s->inst[i].arg);
	return n;
}

void
server_reload(struct server *s)
{
	const struct config *cf = *s->ctx.cf;

	conn_limits_set(s->limits, cf->max_connections_per_client, cf->max_connections_per_net);
}

void
server_free(struct server **sp)
{
	struct server *s = *sp;

	if (s == NULL)
		return;
	for (int i = 0; i < s->nlst; i++)
		conn_listener_free(&s->lst[i].l);
	for (int i = 0; i < NROWS; i++)
		if (s->started[i])
			s->inst[i].destroy(s->inst[i].arg);
	conn_limits_free(&s->limits);
	free(s);
	*sp = NULL;
}
