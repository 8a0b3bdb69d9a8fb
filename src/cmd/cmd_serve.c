/*
 * cmd_serve: `tandem serve`. Builds the server from its parts — queue,
 * scheduler with the local transport, directory, SMTP listeners, TLS — binds,
 * drops root, and runs the event loop until SIGTERM/SIGINT. SIGHUP reloads
 * (config, TLS certificate, log file), SIGUSR1 rescans the queue after an
 * admin change, SIGUSR2 flushes.
 */
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "cmd/cmd.h"
#include "deliver/deliver.h"
#include "outbound/outbound.h"
#include "directory/directory.h"
#include "mail/dkim_keys.h"
#include "mail/addr.h"
#include "queue/queue.h"
#include "queue/queue_sched.h"
#include "pair/pair.h"
#include "server/server.h"
#include "server/server_priv.h"
#include "store/maildir.h"
#include "store/store.h"
#include "util/durable.h"
#include "util/log.h"
#include "util/pidfile.h"
#include "util/tls.h"
#include "util/worker.h"
#include "util/xalloc.h"

struct serve {
	struct config *cf;
	struct event_base *base;
	struct worker_pool *pool;
	struct queue *queue;
	struct directory *dir;
	struct store *store;
	struct auth *auth;
	struct deliver *deliver;
	struct outbound *outbound;
	struct sched *sched;
	struct server *server;
	struct pair *pair;
	struct dkim_signer *dkim;
	SSL_CTX *tls;
	struct event *sig[5];
	struct event *drain;
	int stopping;
	int verbose;                  /* serve -v: debug lines too */
};

static void
serve_committed(void *arg, const char *qid, char *const *rcpt, int nrcpt)
{
	struct serve *sv = arg;
	int down = nrcpt > 0;

	/* Mail whose every recipient is for a destination known to be down
	 * (local domains never are) waits for the probe: no attempt, no work
	 * for the disk. */
	for (int i = 0; down && i < nrcpt; i++)
		down = outbound_is_down(sv->outbound, addr_domain(rcpt[i]));
	if (down)
		sched_add_waiting(sv->sched, qid, rcpt, nrcpt);
	else
		sched_add(sv->sched, qid, rcpt, nrcpt);
}

/* A destination that was down answers again: every message waiting for a
 * destination is attempted now (deferred ones keep their backoff). */
static void
serve_dest_up(void *arg)
{
	struct serve *sv = arg;

	if (!sv->stopping)
		sched_wake_waiting(sv->sched);
}

static void
serve_remote(void *arg, const struct queue_env *env, int fd, off_t body_off, const char *prefix,
	     struct rcpt_result *res, void (*done)(void *), void *done_arg)
{
	struct serve *sv = arg;

	outbound_deliver(sv->outbound, env, fd, body_off, prefix, res, done, done_arg);
}

/* Larger messages leave unsigned rather than held in memory whole. */
#define SERVE_SIGN_MAX (256LL << 20)

/* On a worker, before a message leaves for another domain: its DKIM
 * signature, by the key of its From: domain, else of its envelope
 * sender's, else of [server] origin (DSNs, alias forwards of foreign
 * mail); none when no such domain has a key. */
static char *
serve_sign(void *arg, const struct queue_env *env, int fd, off_t body_off)
{
	struct serve *sv = arg;
	const char *fallback[2] = { NULL, config_origin(sv->cf) }, *at;
	char *msg, *sig = NULL;
	ssize_t n;

	if (env->size <= 0 || env->size > SERVE_SIGN_MAX || !dkim_signer_any(sv->dkim))
		return NULL;
	if ((at = strrchr(env->sender, '@')) != NULL)
		fallback[0] = at + 1;
	msg = xmalloc((size_t)env->size);
	n = pread(fd, msg, (size_t)env->size, body_off);
	if (n == (ssize_t)env->size)
		sig = dkim_signer_sign(sv->dkim, msg, (size_t)n, fallback, 2, (long long)time(NULL));
	else
		log_warn(env->qid, "event=dkim_skipped reason=%s",
			 log_q(n < 0 ? strerror(errno) : "message file too short"));
	free(msg);
	return sig;
}

/* Shutdown waits for commits and deliveries in flight: a 250 already
 * promised must be on disk, and no worker may outlive its caller. */
static void
serve_drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct serve *sv = arg;
	struct timeval tv = { 0, 50000 };

	if (sched_in_flight(sv->sched) == 0 && worker_pending(sv->pool) == 0) {
		server_shutdown(sv->server);
		if (worker_pending(sv->pool) == 0) {
			event_base_loopexit(sv->base, NULL);
			return;
		}
	}
	evtimer_add(sv->drain, &tv);
}

/* `tandem queue flush` (SIGUSR2): forget which destinations are down and
 * attempt everything now. */
static void
serve_flush(struct serve *sv)
{
	if (sv->stopping)
		return;
	outbound_forget_down(sv->outbound, NULL);
	sched_flush(sv->sched);
}

/* ETRN domain (RFC 1985): the same for one domain's mail. Returns how many
 * messages it started, or -1 when shutting down. */
static int
serve_etrn(void *arg, const char *domain)
{
	struct serve *sv = arg;

	if (sv->stopping)
		return -1;
	outbound_forget_down(sv->outbound, domain);
	return sched_flush_domain(sv->sched, domain);
}

/* [relay] etrn_clients, or by default loopback and the relay destination. */
static int
serve_etrn_allowed(void *arg, const struct sockaddr *sa)
{
	struct serve *sv = arg;

	return pair_etrn_allowed(sv->pair, sa);
}

struct serve_domains {
	char **v;
	int n;
};

static void
serve_domain_one(const char *domain, void *arg)
{
	struct serve_domains *d = arg;

	d->v = xrealloc(d->v, (d->n + 1) * sizeof(char *));
	d->v[d->n++] = xstrdup(domain);
}

/* A primary that starts may have been away: its backups may hold mail for
 * its domains. ETRN asks them for it now. */
static void
serve_notify_backups(struct serve *sv)
{
	struct serve_domains d = { NULL, 0 };

	if (sv->cf->role != ROLE_PRIMARY || sv->cf->backups.n == 0)
		return;
	if (directory_domain_list(sv->dir, serve_domain_one, &d) != 0)
		log_err(NULL, "event=etrn_failed reason=%s", log_q(directory_error(sv->dir)));
	else if (d.n == 0)
		log_warn(NULL, "event=etrn_skipped reason=\"no domains in the directory\"");
	pair_notify_backups(sv->pair, (const char *const *)d.v, d.n);
	for (int i = 0; i < d.n; i++)
		free(d.v[i]);
	free(d.v);
}

/* The config file again: keys that reload take their new values in place
 * (on the loop thread, between commands); the others are reported. */
static void
serve_log_lines(const char *event, char *text)
{
	for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n"))
		log_warn(NULL, "event=%s detail=%s", event, log_q(line));
}

static int
serve_reload_config(struct serve *sv)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct config *next;
	const char *e;
	int restart;

	if (f == NULL)
		return -1;
	if ((next = config_load(sv->cf->path, f)) == NULL) {
		fclose(f);
		log_err(NULL, "event=reload_failed what=config path=%s", log_q(sv->cf->path));
		serve_log_lines("reload_failed", buf);
		free(buf);
		return -1;
	}
	restart = config_reload_diff(sv->cf, next, f);
	fclose(f);
	config_free(&next);
	if (len > 0)
		serve_log_lines(restart > 0 ? "reload_needs_restart" : "reload_changed", buf);
	free(buf);
	log_set_debug(sv->verbose || sv->cf->log_level == LOG_LEVEL_DEBUG);
	if (directory_set_recipient_delimiter(sv->dir, sv->cf->recipient_delimiter, &e) != 0)
		log_err(NULL, "event=reload_failed what=recipient_delimiter error=%s", log_q(e));
	return 0;
}

/* SIGHUP: reopen the log file (logrotate), read the config again and take
 * what can change while running, load the TLS certificate and key again.
 * What fails keeps the old value, and says so. */
static void
serve_reload(struct serve *sv)
{
	char err[512];
	SSL_CTX *tls;
	int rc;

	rc = serve_reload_config(sv);
	if (log_init(sv->cf->log_file) != 0)
		log_err(NULL, "event=reload_failed what=log_file error=%s", log_q(strerror(errno)));
	if (rc != 0)
		return;
	tls = tls_server_ctx_new(sv->cf->tls_cert, sv->cf->tls_key, sv->cf->data_dir,
				 sv->cf->hostname, err, sizeof(err));
	if (tls == NULL) {
		log_err(NULL, "event=reload_failed what=tls error=%s", log_q(err));
	} else {
		/* sessions hold their own reference to the context they use */
		SSL_CTX_free(sv->tls);
		sv->tls = tls;
	}
	server_reload(sv->server);
	log_msg(NULL, "event=reloaded");
}

static void
serve_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct serve *sv = arg;

	switch (sig) {
	case SIGTERM:
	case SIGINT:
		if (sv->stopping)
			return;
		sv->stopping = 1;
		log_msg(NULL, "event=stopping signal=%d", (int)sig);
		server_shutdown(sv->server);
		sched_stop(sv->sched);
		outbound_cancel(sv->outbound);
		serve_drain_cb(-1, 0, sv);
		break;
	case SIGHUP:
		serve_reload(sv);
		break;
	case SIGUSR1:
		sched_rescan(sv->sched);
		break;
	case SIGUSR2:
		serve_flush(sv);
		break;
	}
}

/* After binding: become [server] user (src/server/server_priv.c). */
static int
serve_drop_privileges(struct config *cf, int pidfd)
{
	const char *error;

	if (server_priv_drop(cf, pidfd, &error) != 0) {
		fprintf(stderr, "tandem: %s\n", error);
		return -1;
	}
	return 0;
}

static void
serve_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void
serve_ctx(struct serve *sv, struct server_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->base = sv->base;
	ctx->cf = (const struct config *const *)&sv->cf;
	ctx->queue = sv->queue;
	ctx->pool = sv->pool;
	ctx->dir = sv->dir;
	ctx->tls = &sv->tls;
	ctx->store = sv->store;
	ctx->auth = sv->auth;
	ctx->committed = serve_committed;
	ctx->etrn = serve_etrn;
	ctx->etrn_allowed = serve_etrn_allowed;
	ctx->arg = sv;
}

/* As root: what needs it — the TLS key (it may be readable by root only)
 * and the listening sockets (ports below 1024). */
static int
serve_bind(struct serve *sv)
{
	struct config *cf = sv->cf;
	struct server_ctx ctx;
	char err[512];
	const char *e;

	if ((sv->tls = tls_server_ctx_new(cf->tls_cert, cf->tls_key, cf->data_dir, cf->hostname,
					  err, sizeof(err))) == NULL) {
		fprintf(stderr, "tandem: TLS: %s\n", err);
		return -1;
	}
	serve_ctx(sv, &ctx);
	sv->server = server_new(&ctx);
	if (server_bind(sv->server, &e) != 0) {
		fprintf(stderr, "tandem: %s\n", e);
		return -1;
	}
	return 0;
}

/* As the service user: the queue, the directory and everything on them,
 * so no file in data_dir is opened by root. */
static int
serve_open(struct serve *sv)
{
	struct config *cf = sv->cf;
	struct store_settings store_set;
	struct auth_deps auth_deps;
	struct server_ctx ctx;
	char err[512];
	const char *e;

	if ((sv->queue = queue_open(cf->data_dir, err, sizeof(err))) == NULL ||
	    (sv->dir = directory_open(cf->data_dir, err, sizeof(err))) == NULL) {
		fprintf(stderr, "tandem: %s\n", err);
		return -1;
	}
	if (directory_set_recipient_delimiter(sv->dir, cf->recipient_delimiter, &e) != 0) {
		fprintf(stderr, "tandem: [server] recipient_delimiter: %s\n", e);
		return -1;
	}
	sv->pool = worker_pool_new(sv->base, cf->workers);
	store_set.data_dir = cf->data_dir;
	store_set.expunged_retention = cf->expunged_retention;
	store_set.pool = sv->pool;
	if ((sv->store = store_new(&store_set, sv->base, &e)) == NULL) {
		fprintf(stderr, "tandem: mailbox store: %s\n", e);
		return -1;
	}
	auth_deps.base = sv->base;
	auth_deps.pool = sv->pool;
	auth_deps.dir = sv->dir;
	auth_deps.cf = (const struct config *const *)&sv->cf;
	sv->auth = auth_new(&auth_deps);
	sv->deliver = deliver_new(cf, sv->queue, sv->dir, sv->store);
	sv->sched = sched_new(sv->base, sv->pool, sv->queue, cf, deliver_local, sv->deliver);
	if ((sv->outbound = outbound_new(sv->base, cf, err, sizeof(err))) == NULL) {
		fprintf(stderr, "tandem: %s\n", err);
		return -1;
	}
	if ((sv->pair = pair_new(sv->base, sv->cf, &e)) == NULL) {
		fprintf(stderr, "tandem: [dns] resolver: %s\n", e);
		return -1;
	}
	sched_set_remote(sv->sched, serve_remote, sv);
	sv->dkim = dkim_signer_new(sv->cf->data_dir);
	sched_set_sign(sv->sched, serve_sign, sv);
	outbound_set_up_cb(sv->outbound, serve_dest_up, sv);
	serve_ctx(sv, &ctx);
	if (server_start(sv->server, &ctx, &e) != 0) {
		fprintf(stderr, "tandem: %s\n", e);
		return -1;
	}
	return 0;
}

static void
serve_teardown(struct serve *sv)
{
	server_free(&sv->server);
	pair_free(&sv->pair);
	/* the workers first: a job in flight may still use auth or the store */
	worker_pool_free(&sv->pool);
	auth_free(&sv->auth);
	sched_free(&sv->sched);
	outbound_free(&sv->outbound);
	dkim_signer_free(&sv->dkim);
	deliver_free(&sv->deliver);
	store_free(&sv->store);
	directory_close(&sv->dir);
	queue_close(&sv->queue);
	for (int i = 0; i < 5; i++)
		if (sv->sig[i])
			event_free(sv->sig[i]);
	if (sv->drain)
		event_free(sv->drain);
	if (sv->tls)
		SSL_CTX_free(sv->tls);
	if (sv->base)
		event_base_free(sv->base);
	libevent_global_shutdown();
}

int
cmd_serve(struct config *cf, int argc, char **argv)
{
	static const int sigs[5] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2 };
	struct serve sv = { .cf = cf };
	char pidpath[4096];
	const char *error;
	int pidfd, n, rc = 1;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-v") == 0) {
			sv.verbose = 1;
		} else {
			fprintf(stderr, "usage: tandem serve [-v]\n");
			return 2;
		}
	}
	if (log_init(cf->log_file) != 0) {
		fprintf(stderr, "tandem: [server] log_file: cannot open %s: %s\n", cf->log_file,
			strerror(errno));
		return 1;
	}
	log_set_debug(sv.verbose || cf->log_level == LOG_LEVEL_DEBUG);
	signal(SIGPIPE, SIG_IGN);
	serve_raise_nofile();
	/* Each worker thread has its own malloc arena, and glibc gives the
	 * top of an arena back to the kernel whenever more than 128 KiB of
	 * it is free. A delivery's SQLite statement frees that much (its
	 * savepoint) and the next one faults it in again: page faults and
	 * madvise were half the CPU time of adding a row to an index
	 * (perf during bench/drain --primary tandem). At 2 MiB they stop. */
	mallopt(M_TRIM_THRESHOLD, 2 << 20);
	if (durable_mkdirs(cf->data_dir, 0750) != 0) {
		fprintf(stderr, "tandem: data_dir %s: %s\n", cf->data_dir, strerror(errno));
		return 1;
	}
	if (server_priv_prepare(cf, &error) != 0) {
		fprintf(stderr, "tandem: %s\n", error);
		return 1;
	}
	pidfile_path(cf->data_dir, pidpath, sizeof(pidpath));
	if ((pidfd = pidfile_create(pidpath)) < 0) {
		fprintf(stderr, "tandem: %s: %s\n", pidpath,
			errno == EWOULDBLOCK ? "another tandem serves this data_dir" : strerror(errno));
		return 1;
	}
	evthread_use_pthreads();
	sv.base = event_base_new();
	if (serve_bind(&sv) != 0 || serve_drop_privileges(cf, pidfd) != 0 || serve_open(&sv) != 0)
		goto out;
	for (int i = 0; i < 5; i++) {
		sv.sig[i] = evsignal_new(sv.base, sigs[i], serve_signal_cb, &sv);
		evsignal_add(sv.sig[i], NULL);
	}
	sv.drain = evtimer_new(sv.base, serve_drain_cb, &sv);
	log_msg(NULL, "event=start role=%s hostname=%s data_dir=%s",
		cf->role == ROLE_PRIMARY ? "primary" : "backup", cf->hostname, log_q(cf->data_dir));
	if ((n = maildir_clean_all(cf->data_dir, 0)) > 0)
		log_msg(NULL, "event=recovery removed_maildir_tmp=%d", n);
	cmd_check_config_relay_local(cf, sv.dir, NULL);
	sched_start(sv.sched);
	serve_notify_backups(&sv);
	event_base_dispatch(sv.base);
	log_msg(NULL, "event=stopped");
	rc = 0;
out:
	serve_teardown(&sv);
	close(pidfd);
	return rc;
}
