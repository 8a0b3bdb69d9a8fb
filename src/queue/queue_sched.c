/*
 * queue_sched: the delivery scheduler (see queue_sched.h). Entries live in
 * a hash table by queue id; each deferred entry has a timer; due entries
 * wait in a FIFO until a delivery slot is free, so a burst of mail never
 * queues more jobs on the worker pool than it has threads.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "mail/addr.h"
#include "queue/queue_result.h"
#include "queue/queue_sched.h"
#include "conf/config.h"
#include "util/log.h"
#include "util/worker.h"
#include "util/xalloc.h"

#define SCHED_BUCKETS 4096
/* Attempts in flight at once: at most [queue] workers of them on the
 * worker pool, the rest talking to remote hosts on the loop (each holds
 * its queue file open, so this also bounds descriptors). */
#define SCHED_MAX_IN_FLIGHT 256

/* OUT_DEFER: attempt again at job->next_attempt (also after a failure of
 * the disk, with nothing changed on it); OUT_GONE: not ours any more
 * (deleted, held, or done where an admin moved it). */
enum sched_outcome { OUT_DONE, OUT_DEFER, OUT_HOLD, OUT_GONE, OUT_WAIT, OUT_CORRUPT };

struct sched_entry {
	char qid[QUEUE_ID_LEN + 1];
	struct sched *s;
	struct sched_entry *hnext;      /* hash chain */
	struct sched_entry *rnext;      /* ready FIFO */
	struct event *timer;
	/* The domains of its recipients still to deliver, each followed by a
	 * NUL, the list by an empty one; NULL until known (an entry found in
	 * the queue directory before its first attempt). ETRN goes by it. */
	char *domains;
	long long due;                  /* when its timer fires; 0: no timer */
	/* flushed: a flush waits for its next attempt to start; serving: the
	 * attempt in flight started for a flush. Either way a new flush has
	 * nothing to add (coalescing). */
	unsigned in_flight : 1, ready : 1, waiting : 1, again : 1, flushed : 1, serving : 1;
	unsigned stuck : 1;             /* deferred, but its move to deferred/ failed */
};

struct sched_job {
	struct sched_entry *e;
	enum sched_outcome outcome;
	long long next_attempt;
	char dsn_qid[QUEUE_ID_LEN + 1];   /* a DSN this attempt queued */
	char (*queued)[QUEUE_ID_LEN + 1]; /* messages this attempt queued (the
					   * DSN, alias forwards): scheduled at once */
	int nqueued;
	int stuck;                        /* deferred, but still in active/ */
	char *domains;                    /* left to deliver, for the entry */
	unsigned wake_gen;                /* s->wake_gen when the attempt began */
	/* Kept across the remote phase, which runs on the loop between the
	 * local phase and the outcome, both on workers. */
	int remote_phase;
	enum queue_state st;
	struct queue_env env;
	struct queue_meta meta;
	struct rcpt_result *res;
	size_t off;
	int fd;
	char *prefix;                     /* the sign hook's, for the remote phase */
};

struct sched {
	struct event_base *base;
	struct worker_pool *pool;
	struct queue *q;
	const struct config *cf;
	sched_transport_fn *transport;
	void *arg;
	sched_remote_fn *remote;
	void *remote_arg;
	sched_sign_fn *sign;
	void *sign_arg;
	struct sched_entry *buckets[SCHED_BUCKETS];
	struct sched_entry *rhead, *rtail;
	unsigned in_flight, on_workers, count;
	unsigned wake_gen;              /* bumped by sched_wake_waiting */
	int stopping;                   /* no new attempts: shutting down */
	struct sched_clock clock;
};

static void sched_pump(struct sched *s);

static double
sched_sys_now(void *arg)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double
sched_now(const struct sched *s)
{
	return s->clock.now(s->clock.arg);
}

void
sched_result_set(struct rcpt_result *r, enum rcpt_status st, const char *dsn, const char *fmt, ...)
{
	va_list ap;

	r->status = st;
	snprintf(r->dsn, sizeof(r->dsn), "%s", dsn ? dsn : "");
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
}

static unsigned
sched_hash(const char *qid)
{
	unsigned h = 2166136261u;

	for (; *qid; qid++)
		h = (h ^ (unsigned char)*qid) * 16777619u;
	return h % SCHED_BUCKETS;
}

static struct sched_entry *
sched_find(struct sched *s, const char *qid)
{
	for (struct sched_entry *e = s->buckets[sched_hash(qid)]; e; e = e->hnext)
		if (strcmp(e->qid, qid) == 0)
			return e;
	return NULL;
}

/* The domains of rcpt[i] for every i not done (done may be NULL), as
 * struct sched_entry keeps them. */
static char *
sched_domains_of(char *const *rcpt, int nrcpt, const unsigned char *done)
{
	size_t len = 1, used = 0;
	char *v;

	for (int i = 0; i < nrcpt; i++)
		len += strlen(addr_domain(rcpt[i])) + 1;
	v = xmalloc(len);
	for (int i = 0; i < nrcpt; i++) {
		const char *d = addr_domain(rcpt[i]);
		const char *p;

		if ((done != NULL && done[i]) || *d == '\0')   /* <postmaster>: no domain */
			continue;
		for (p = v; p < v + used; p += strlen(p) + 1)
			if (strcasecmp(p, d) == 0)
				break;
		if (p < v + used)
			continue;
		memcpy(v + used, d, strlen(d) + 1);
		used += strlen(d) + 1;
	}
	v[used] = '\0';
	return v;
}

/* Does e (maybe) hold mail for domain? Unknown means maybe. */
static int
sched_entry_for(const struct sched_entry *e, const char *domain)
{
	if (e->domains == NULL)
		return 1;
	for (const char *p = e->domains; *p; p += strlen(p) + 1)
		if (strcasecmp(p, domain) == 0)
			return 1;
	return 0;
}

static void
sched_make_ready(struct sched_entry *e)
{
	struct sched *s = e->s;

	if (e->in_flight) {
		e->again = 1;
		return;
	}
	if (e->ready)
		return;
	evtimer_del(e->timer);
	e->due = 0;
	e->ready = 1;
	e->waiting = 0;
	e->rnext = NULL;
	if (s->rtail)
		s->rtail->rnext = e;
	else
		s->rhead = e;
	s->rtail = e;
}

static void
sched_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sched_entry *e = arg;

	sched_make_ready(e);
	sched_pump(e->s);
}

static struct sched_entry *
sched_entry_get(struct sched *s, const char *qid)
{
	struct sched_entry *e = sched_find(s, qid);
	unsigned h;

	if (e != NULL)
		return e;
	e = xcalloc(1, sizeof(*e));
	snprintf(e->qid, sizeof(e->qid), "%s", qid);
	e->s = s;
	e->timer = evtimer_new(s->base, sched_timer_cb, e);
	h = sched_hash(qid);
	e->hnext = s->buckets[h];
	s->buckets[h] = e;
	s->count++;
	return e;
}

static void
sched_entry_free(struct sched *s, struct sched_entry *e)
{
	struct sched_entry **pp = &s->buckets[sched_hash(e->qid)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	event_free(e->timer);
	free(e->domains);
	free(e);
	s->count--;
}

static void
sched_at(struct sched_entry *e, long long when)
{
	long long now = (long long)sched_now(e->s);
	struct timeval tv = { when > now ? when - now : 0, 0 };

	if (when <= now) {
		sched_make_ready(e);
		return;
	}
	e->due = when;
	evtimer_add(e->timer, &tv);
}

unsigned
sched_backoff(const struct config *cf, int attempts)
{
	unsigned long long d = cf->retry_min;

	for (int i = 1; i < attempts && d < cf->retry_max; i++)
		d *= 2;
	return d > cf->retry_max ? cf->retry_max : (unsigned)d;
}

/* --- one attempt, on a worker thread ------------------------------------ */

/* Note a message the attempt queued ("" for none). */
static void
sched_job_queued(struct sched_job *job, const char *qid)
{
	if (qid[0] == '\0')
		return;
	job->queued = xrealloc(job->queued, (job->nqueued + 1) * sizeof(*job->queued));
	memcpy(job->queued[job->nqueued++], qid, QUEUE_ID_LEN + 1);
}

/* Apply the results and let go of the message (worker). */
static void
sched_finish(struct sched_job *job)
{
	struct sched *s = job->e->s;
	const char *qid = job->e->qid;

	struct queue_result_attempt a = { .q = s->q, .cf = s->cf, .now = sched_now(s), .st = job->st };
	static const enum sched_outcome outcomes[] = {
		[QRES_DONE] = OUT_DONE, [QRES_DEFER] = OUT_DEFER, [QRES_WAIT] = OUT_WAIT,
		[QRES_GONE] = OUT_GONE,
	};

	job->outcome = outcomes[queue_result_apply(&a, &job->env, job->fd, (off_t)job->off,
						   &job->meta, job->res)];
	job->next_attempt = a.next_attempt;
	job->stuck = a.stuck;
	memcpy(job->dsn_qid, a.dsn_qid, sizeof(job->dsn_qid));
	close(job->fd);
	sched_job_queued(job, job->dsn_qid);
	for (int i = 0; i < job->env.nrcpt; i++)
		sched_job_queued(job, job->res[i].fwd_qid);
	if (job->outcome == OUT_DEFER)
		log_msg(qid, "event=retry_at retry_in=%llds attempts=%d",
			job->next_attempt - (long long)sched_now(s), job->meta.attempts);
	if (job->outcome == OUT_DEFER || job->outcome == OUT_WAIT)
		job->domains = sched_domains_of(job->env.rcpt, job->env.nrcpt, job->meta.done);
	free(job->res);
	job->res = NULL;
	free(job->prefix);
	job->prefix = NULL;
	queue_meta_clear(&job->meta);
	queue_env_clear(&job->env);
}

/* The disk failed us (not the message): nothing changed, try again later. */
static void
sched_job_retry(struct sched_job *job, const char *event, int err)
{
	struct sched *s = job->e->s;

	log_err(job->e->qid, "event=%s error=%s retry_in=%us", event, log_q(strerror(err)),
		s->cf->retry_min);
	job->next_attempt = (long long)sched_now(s) + s->cf->retry_min;
	job->outcome = OUT_DEFER;
}

/* A file that cannot be parsed goes where nothing attempts it again: its
 * meta may be the record of which recipients were served. */
static void
sched_corrupt(struct sched_job *job, const char *reason)
{
	struct sched *s = job->e->s;
	const char *qid = job->e->qid;

	if (queue_move(s->q, qid, job->st, Q_CORRUPT) != 0) {
		int err = errno;

		if (err == ENOENT) {
			job->outcome = OUT_GONE;
			return;
		}
		log_err(qid, "event=corrupt reason=%s status=%s", log_q(reason), queue_state_name(job->st));
		sched_job_retry(job, "move_failed to=corrupt", err);
		return;
	}
	log_err(qid, "event=corrupt reason=%s status=corrupt", log_q(reason));
	job->outcome = OUT_CORRUPT;
}

/* Open the message and its meta for an attempt: 0 ready, -1 the outcome
 * is set. */
static int
sched_open(struct sched_job *job)
{
	struct sched *s = job->e->s;
	const char *qid = job->e->qid;
	int err;

	if (queue_find(s->q, qid, &job->st) != 0) {
		if (errno == ENOENT)
			job->outcome = OUT_GONE;
		else
			sched_job_retry(job, "find_failed", errno);
		return -1;
	}
	if (job->st == Q_HOLD || job->st == Q_CORRUPT) {
		job->outcome = OUT_GONE;
		return -1;
	}
	if ((job->fd = queue_read_env(s->q, job->st, qid, &job->env, &job->off)) < 0) {
		err = errno;
		if (err == ENOENT) {
			job->outcome = OUT_GONE;
		} else if (err == EINVAL) {
			sched_corrupt(job, "queue file cannot be parsed");
		} else if (err == EACCES || err == EPERM) {
			/* an admin can fix the permissions and release it */
			if (queue_move(s->q, qid, job->st, Q_HOLD) != 0) {
				sched_job_retry(job, "move_failed to=hold", errno);
			} else {
				log_err(qid, "event=unreadable error=%s status=held", log_q(strerror(err)));
				job->outcome = OUT_HOLD;
			}
		} else {
			sched_job_retry(job, "read_failed", err);
		}
		return -1;
	}
	if (queue_meta_read(s->q, qid, &job->meta) < 0) {
		err = errno;
		close(job->fd);
		queue_env_clear(&job->env);
		if (err == EINVAL)
			sched_corrupt(job, "meta file cannot be parsed");
		else
			sched_job_retry(job, "meta_read_failed", err);
		return -1;
	}
	return 0;
}

static void
sched_work(void *arg)
{
	struct sched_job *job = arg;
	struct sched *s = job->e->s;
	int remote = 0;

	if (job->remote_phase) {
		sched_finish(job);
		job->remote_phase = 0;
		return;
	}
	if (sched_open(job) != 0)
		return;
	job->res = xcalloc(job->env.nrcpt, sizeof(*job->res));
	s->transport(s->arg, &job->env, job->fd, (off_t)job->off, &job->meta, job->res);
	for (int i = 0; i < job->env.nrcpt; i++) {
		if (job->res[i].status != RCPT_REMOTE)
			continue;
		if (s->remote != NULL)
			remote = 1;
		else
			job->res[i].status = RCPT_WAIT;
	}
	if (remote) {
		if (s->sign != NULL)
			job->prefix = s->sign(s->sign_arg, &job->env, job->fd, (off_t)job->off);
		job->remote_phase = 1;   /* sched_done hands it to the remote transport */
		return;
	}
	sched_finish(job);
}

static void sched_done(void *arg);

/* The remote transport is done (loop): apply the results on a worker. */
static void
sched_remote_done(void *arg)
{
	struct sched_job *job = arg;

	job->e->s->on_workers++;
	worker_submit_background(job->e->s->pool, sched_work, sched_done, job);
}

static void
sched_done(void *arg)
{
	struct sched_job *job = arg;
	struct sched_entry *e = job->e;
	struct sched *s = e->s;

	s->on_workers--;
	if (job->remote_phase) {
		s->remote(s->remote_arg, &job->env, job->fd, (off_t)job->off, job->prefix, job->res,
			  sched_remote_done, job);
		sched_pump(s);   /* a worker came free */
		return;
	}
	s->in_flight--;
	e->in_flight = 0;
	e->serving = 0;
	if (job->domains != NULL) {
		free(e->domains);
		e->domains = job->domains;
	}
	for (int i = 0; i < job->nqueued; i++)
		sched_make_ready(sched_entry_get(s, job->queued[i]));
	free(job->queued);
	switch (job->outcome) {
	case OUT_DONE:
	case OUT_GONE:
	case OUT_HOLD:
	case OUT_CORRUPT:
		sched_entry_free(s, e);
		break;
	case OUT_WAIT:
		e->waiting = 1;
		/* a destination came back while this attempt decided to wait for it */
		if (e->again || job->wake_gen != s->wake_gen) {
			e->again = 0;
			sched_make_ready(e);
		} else if (s->remote != NULL) {
			/* looked at again now and then, so the lifetime can end it */
			sched_at(e, (long long)sched_now(s) + s->cf->retry_max);
		}
		break;
	case OUT_DEFER:
		e->stuck = job->stuck;
		if (e->again) {
			e->again = 0;
			sched_make_ready(e);
		} else {
			sched_at(e, job->next_attempt);
		}
		break;
	}
	free(job);
	sched_pump(s);
}

static void
sched_pump(struct sched *s)
{
	while (!s->stopping && s->rhead != NULL && s->in_flight < SCHED_MAX_IN_FLIGHT &&
	       s->on_workers < s->cf->workers) {
		struct sched_entry *e = s->rhead;
		struct sched_job *job;

		s->rhead = e->rnext;
		if (s->rhead == NULL)
			s->rtail = NULL;
		e->ready = 0;
		e->in_flight = 1;
		e->serving = e->flushed;
		e->flushed = 0;
		s->in_flight++;
		s->on_workers++;
		job = xcalloc(1, sizeof(*job));
		job->e = e;
		job->wake_gen = s->wake_gen;
		worker_submit_background(s->pool, sched_work, sched_done, job);
	}
}

/* --- public ------------------------------------------------------------- */

struct sched *
sched_new(struct event_base *base, struct worker_pool *pool, struct queue *q,
	  const struct config *cf, sched_transport_fn *transport, void *arg)
{
	struct sched *s = xcalloc(1, sizeof(*s));

	s->base = base;
	s->pool = pool;
	s->q = q;
	s->cf = cf;
	s->transport = transport;
	s->arg = arg;
	s->clock.now = sched_sys_now;
	return s;
}

void
sched_set_clock(struct sched *s, const struct sched_clock *clock)
{
	if (clock != NULL)
		s->clock = *clock;
	else
		s->clock = (struct sched_clock){ sched_sys_now, NULL };
}

void
sched_run_due(struct sched *s)
{
	long long now = (long long)sched_now(s);

	for (int i = 0; i < SCHED_BUCKETS; i++)
		for (struct sched_entry *e = s->buckets[i]; e; e = e->hnext)
			if (e->due != 0 && e->due <= now)
				sched_make_ready(e);
	sched_pump(s);
}

void
sched_add(struct sched *s, const char *qid, char *const *rcpt, int nrcpt)
{
	struct sched_entry *e = sched_entry_get(s, qid);

	free(e->domains);
	e->domains = sched_domains_of(rcpt, nrcpt, NULL);
	sched_make_ready(e);
	sched_pump(s);
}

void
sched_set_remote(struct sched *s, sched_remote_fn *remote, void *arg)
{
	s->remote = remote;
	s->remote_arg = arg;
}

void
sched_set_sign(struct sched *s, sched_sign_fn *sign, void *arg)
{
	s->sign = sign;
	s->sign_arg = arg;
}

void
sched_add_waiting(struct sched *s, const char *qid, char *const *rcpt, int nrcpt)
{
	struct sched_entry *e = sched_entry_get(s, qid);

	free(e->domains);
	e->domains = sched_domains_of(rcpt, nrcpt, NULL);
	e->waiting = 1;
	/* looked at again now and then, so the lifetime can end it */
	sched_at(e, (long long)sched_now(s) + s->cf->retry_max);
}

struct sched_scan {
	struct sched *s;
	int flush;
	int n, started;
};

/* A flush wants e attempted now. Coalesces: 0 when an attempt that serves
 * a flush is already under way or due, 1 when this one starts it. */
static int
sched_flush_one(struct sched_entry *e)
{
	if (e->flushed || (e->in_flight && e->serving))
		return 0;
	e->flushed = 1;
	if (e->in_flight) {
		/* started before the flush, maybe with a stale view: once more */
		e->again = 1;
		return 1;
	}
	if (e->ready)
		return 0;
	sched_make_ready(e);
	return 1;
}

static void
sched_scan_active(const char *qid, void *arg)
{
	struct sched_scan *sc = arg;
	struct sched_entry *e = sched_find(sc->s, qid);

	if (sc->flush) {
		sc->n++;
		sc->started += sched_flush_one(sched_entry_get(sc->s, qid));
		return;
	}
	/* known: in flight, due, waiting, or deferred by a timer while its
	 * move to deferred/ failed: a rescan does not hurry it (one that is
	 * back from hold/ is attempted) */
	if (e != NULL && (e->in_flight || e->ready || e->waiting || (e->stuck && e->due != 0)))
		return;
	sched_make_ready(sched_entry_get(sc->s, qid));
	sc->n++;
	sc->started++;
}

static void
sched_scan_deferred(const char *qid, void *arg)
{
	struct sched_scan *sc = arg;
	struct sched_entry *e = sched_find(sc->s, qid);
	struct queue_meta meta;

	if (sc->flush) {
		sc->n++;
		sc->started += sched_flush_one(sched_entry_get(sc->s, qid));
		return;
	}
	if (e != NULL && (e->in_flight || e->ready))
		return;
	e = sched_entry_get(sc->s, qid);
	if (e->due == 0) {
		/* an unreadable meta is the attempt's to judge (corrupt/ or retry) */
		if (queue_meta_read(sc->s->q, qid, &meta) == 0)
			sched_at(e, meta.next_attempt);
		else
			sched_make_ready(e);
		queue_meta_clear(&meta);
	}
	sc->n++;
}

static struct sched_scan
sched_scan(struct sched *s, int flush)
{
	struct sched_scan sc = { s, flush, 0, 0 };

	/* a directory that cannot be read hides messages: say so (the next
	 * rescan or start looks again) */
	if (queue_scan(s->q, Q_ACTIVE, sched_scan_active, &sc) < 0)
		log_err(NULL, "event=scan_failed state=active error=%s", log_q(strerror(errno)));
	if (queue_scan(s->q, Q_DEFERRED, sched_scan_deferred, &sc) < 0)
		log_err(NULL, "event=scan_failed state=deferred error=%s", log_q(strerror(errno)));
	sched_pump(s);
	return sc;
}

void
sched_start(struct sched *s)
{
	int n = queue_clean_tmp(s->q);

	if (n > 0)
		log_msg(NULL, "event=recovery removed_partials=%d", n);
	(void)sched_scan(s, 0);
	log_msg(NULL, "event=queue_loaded messages=%u", s->count);
}

void
sched_rescan(struct sched *s)
{
	(void)sched_scan(s, 0);
}

void
sched_wake_waiting(struct sched *s)
{
	int n = 0;

	s->wake_gen++;
	for (int i = 0; i < SCHED_BUCKETS; i++)
		for (struct sched_entry *e = s->buckets[i]; e; e = e->hnext)
			if (e->waiting) {
				sched_make_ready(e);
				n++;
			}
	log_msg(NULL, "event=wake waiting=%d", n);
	sched_pump(s);
}

void
sched_flush(struct sched *s)
{
	struct sched_scan sc = sched_scan(s, 1);

	log_msg(NULL, "event=flush messages=%d started=%d coalesced=%d", sc.n, sc.started,
		sc.n - sc.started);
}

int
sched_flush_domain(struct sched *s, const char *domain)
{
	int n = 0, started = 0;

	sched_scan(s, 0);   /* files the scheduler has not seen yet */
	for (int i = 0; i < SCHED_BUCKETS; i++)
		for (struct sched_entry *e = s->buckets[i]; e; e = e->hnext)
			if (sched_entry_for(e, domain)) {
				started += sched_flush_one(e);
				n++;
			}
	log_msg(NULL, "event=flush domain=%s messages=%d started=%d coalesced=%d", domain, n,
		started, n - started);
	sched_pump(s);
	return n;
}

void
sched_stop(struct sched *s)
{
	s->stopping = 1;
}

unsigned
sched_in_flight(struct sched *s)
{
	return s->in_flight;
}

void
sched_free(struct sched **sp)
{
	struct sched *s = *sp;

	if (s == NULL)
		return;
	for (int i = 0; i < SCHED_BUCKETS; i++)
		while (s->buckets[i])
			sched_entry_free(s, s->buckets[i]);
	free(s);
	*sp = NULL;
}
