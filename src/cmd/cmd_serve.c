/*
 * cmd_serve: `tandem serve`. Builds the server from its parts — queue,
 * scheduler with the local transport, directory, SMTP listeners, TLS — binds,
 * drops root, and runs the event loop until SIGTERM/SIGINT. SIGUSR1 (or
 * SIGHUP) makes it rescan the queue after an admin change, SIGUSR2 flushes.
 */
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "deliver/deliver.h"
#include "outbound/outbound.h"
#include "directory/directory.h"
#include "mail/addr.h"
#include "queue/queue.h"
#include "queue/queue_sched.h"
#include "smtpd/smtpd.h"
#include "store/maildir.h"
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
	struct deliver *deliver;
	struct outbound *outbound;
	struct sched *sched;
	struct smtpd_server *smtp;
	SSL_CTX *tls;
	struct event *sig[5];
	struct event *drain;
	int stopping;
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
serve_remote(void *arg, const struct queue_env *env, int fd, off_t body_off,
	     struct rcpt_result *res, void (*done)(void *), void *done_arg)
{
	struct serve *sv = arg;

	outbound_deliver(sv->outbound, env, fd, body_off, res, done, done_arg);
}

/* Shutdown waits for commits and deliveries in flight: a 250 already
 * promised must be on disk, and no worker may outlive its caller. */
static void
serve_drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct serve *sv = arg;
	struct timeval tv = { 0, 50000 };

	if (sched_in_flight(sv->sched) == 0 && worker_pending(sv->pool) == 0) {
		smtpd_server_shutdown(sv->smtp);
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
	outbound_notify_backups(sv->outbound, (const char *const *)d.v, d.n);
	for (int i = 0; i < d.n; i++)
		free(d.v[i]);
	free(d.v);
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
		smtpd_server_shutdown(sv->smtp);
		sched_stop(sv->sched);
		outbound_cancel(sv->outbound);
		serve_drain_cb(-1, 0, sv);
		break;
	case SIGHUP:
	case SIGUSR1:
		sched_rescan(sv->sched);
		break;
	case SIGUSR2:
		serve_flush(sv);
		break;
	}
}

static uid_t chown_uid;
static gid_t chown_gid;

static int
serve_chown_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	if (sb->st_uid != chown_uid || sb->st_gid != chown_gid)
		if (lchown(path, chown_uid, chown_gid) != 0)
			log_warn(NULL, "event=chown_failed path=%s error=%s", log_q(path), log_q(strerror(errno)));
	return 0;
}

/* After binding: become [server] user, giving it the data directory. */
static int
serve_drop_privileges(struct config *cf)
{
	struct passwd *pw;

	if (cf->user == NULL) {
		if (geteuid() == 0)
			log_warn(NULL, "event=running_as_root hint=\"set [server] user\"");
		return 0;
	}
	if ((pw = getpwnam(cf->user)) == NULL) {
		fprintf(stderr, "tandem: [server] user: no such user %s\n", cf->user);
		return -1;
	}
	if (geteuid() != 0)
		return 0;
	chown_uid = pw->pw_uid;
	chown_gid = pw->pw_gid;
	nftw(cf->data_dir, serve_chown_one, 32, FTW_PHYS);
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0) {
		fprintf(stderr, "tandem: cannot become user %s: %s\n", cf->user, strerror(errno));
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

static int
serve_setup(struct serve *sv)
{
	struct config *cf = sv->cf;
	char err[512];
	struct smtpd_deps deps;
	static const char *const default_smtp = "0.0.0.0:25";

	if ((sv->tls = tls_server_ctx_new(cf->tls_cert, cf->tls_key, cf->data_dir, cf->hostname,
					  err, sizeof(err))) == NULL) {
		fprintf(stderr, "tandem: TLS: %s\n", err);
		return -1;
	}
	if ((sv->queue = queue_open(cf->data_dir, err, sizeof(err))) == NULL ||
	    (sv->dir = directory_open(cf->data_dir, err, sizeof(err))) == NULL) {
		fprintf(stderr, "tandem: %s\n", err);
		return -1;
	}
	sv->pool = worker_pool_new(sv->base, cf->workers);
	sv->deliver = deliver_new(cf, sv->queue);
	sv->sched = sched_new(sv->base, sv->pool, sv->queue, cf, deliver_local, sv->deliver);
	if ((sv->outbound = outbound_new(sv->base, cf, err, sizeof(err))) == NULL) {
		fprintf(stderr, "tandem: [dns] resolver: %s\n", err);
		return -1;
	}
	sched_set_remote(sv->sched, serve_remote, sv);
	outbound_set_up_cb(sv->outbound, serve_dest_up, sv);
	memset(&deps, 0, sizeof(deps));
	deps.base = sv->base;
	deps.cf = cf;
	deps.queue = sv->queue;
	deps.pool = sv->pool;
	deps.dir = sv->dir;
	deps.tls = sv->tls;
	deps.committed = serve_committed;
	deps.etrn = serve_etrn;
	deps.arg = sv;
	sv->smtp = smtpd_server_new(&deps);
	for (int i = 0; i < (cf->listen_smtp.n ? cf->listen_smtp.n : 1); i++) {
		const char *a = cf->listen_smtp.n ? cf->listen_smtp.v[i] : default_smtp;

		if (smtpd_server_listen(sv->smtp, a, err, sizeof(err)) != 0) {
			fprintf(stderr, "tandem: [listen] smtp: %s\n", err);
			return -1;
		}
		log_msg(NULL, "event=listening proto=smtp addr=%s", a);
	}
	return 0;
}

static void
serve_teardown(struct serve *sv)
{
	smtpd_server_free(&sv->smtp);
	worker_pool_free(&sv->pool);
	sched_free(&sv->sched);
	outbound_free(&sv->outbound);
	deliver_free(&sv->deliver);
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
	int pidfd, n, rc = 1;

	if (log_init(cf->log_file) != 0) {
		fprintf(stderr, "tandem: [server] log_file: cannot open %s: %s\n", cf->log_file,
			strerror(errno));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	serve_raise_nofile();
	if (durable_mkdirs(cf->data_dir, 0750) != 0) {
		fprintf(stderr, "tandem: data_dir %s: %s\n", cf->data_dir, strerror(errno));
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
	if (serve_setup(&sv) != 0 || serve_drop_privileges(cf) != 0)
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
