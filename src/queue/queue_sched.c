/*
 * queue_sched: the delivery scheduler (see queue_sched.h). Entries live in
 * a hash table by queue id; each deferred entry has a timer; due entries
 * wait in a FIFO until a delivery slot is free, so a burst of mail never
 * queues more jobs on the worker pool than it has threads.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "mail/addr.h"
#include "mail/dsn.h"
#include "queue/queue_bounce.h"
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

enum sched_outcome { OUT_DONE, OUT_DEFER, OUT_HOLD, OUT_GONE, OUT_WAIT };

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
	unsigned in_flight : 1, ready : 1, waiting : 1, again : 1;
};

struct sched_job {
	struct sched_entry *e;
	enum sched_outcome outcome;
	long long next_attempt;
	char dsn_qid[QUEUE_ID_LEN + 1];   /* a DSN this attempt queued */
	char (*queued)[QUEUE_ID_LEN + 1]; /* messages this attempt queued (the
					   * DSN, alias forwards): scheduled at once */
	int nqueued;
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
	struct sched_entry *buckets[SCHED_BUCKETS];
	struct sched_entry *rhead, *rtail;
	unsigned in_flight, on_workers, count;
	unsigned wake_gen;              /* bumped by sched_wake_waiting */
	int stopping;                   /* no new attempts: shutting down */
};

static void sched_pump(struct sched *s);

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
	long long now = time(NULL);
	struct timeval tv = { when > now ? when - now : 0, 0 };

	if (when <= now) {
		sched_make_ready(e);
		return;
	}
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

/* Recipients that failed for good (and, past the lifetime, those still
 * failing) are reported to the sender in one DSN and marked done. */
static int
sched_bounce(struct sched *s, struct sched_job *job, const struct queue_env *env, int fd,
	     off_t body_off, struct queue_meta *meta, const struct rcpt_result *res, int expired)
{
	struct dsn_rcpt *dr = xcalloc(env->nrcpt, sizeof(*dr));
	char (*codes)[16] = xcalloc(env->nrcpt, sizeof(*codes));
	int n = 0, rc;

	for (int i = 0; i < env->nrcpt; i++) {
		if (meta->done[i] || !(res[i].status == RCPT_PERM || (expired && res[i].status == RCPT_TEMP)))
			continue;
		dr[n].address = env->rcpt[i];
		dr[n].status = dsn_status_of(res[i].error, res[i].status == RCPT_PERM ? "5.0.0" : "4.4.7",
					     codes[n], sizeof(codes[n]));
		if (expired && res[i].status == RCPT_TEMP)
			dr[n].status = "4.4.7";
		dr[n].diagnostic = res[i].error;
		n++;
	}
	rc = n == 0 ? 0 : queue_bounce(s->q, s->cf, env, fd, body_off, dr, n, expired, job->dsn_qid);
	for (int i = 0; rc == 0 && i < env->nrcpt; i++) {
		if (meta->done[i] || !(res[i].status == RCPT_PERM || (expired && res[i].status == RCPT_TEMP)))
			continue;
		meta->done[i] = 1;
		log_msg(env->qid, "event=bounced to=<%s> dsn=%s", env->rcpt[i],
			job->dsn_qid[0] ? job->dsn_qid : "none(null sender)");
	}
	free(codes);
	free(dr);
	return rc == 0 ? n : -1;
}

static enum sched_outcome
sched_apply(struct sched *s, struct sched_job *job, enum queue_state st,
	    const struct queue_env *env, int fd, off_t body_off, struct queue_meta *meta,
	    struct rcpt_result *res)
{
	const char *qid = env->qid;
	int ndone = 0, ntemp = 0, nperm = 0, nwait = 0, ndone_before = 0, expired, bounced;
	const char *err = NULL;
	long long now = time(NULL);

	if (meta->ndone < env->nrcpt) {
		meta->done = xrealloc(meta->done, env->nrcpt);
		memset(meta->done + meta->ndone, 0, env->nrcpt - meta->ndone);
		meta->ndone = env->nrcpt;
	}
	for (int i = 0; i < env->nrcpt; i++) {
		if (meta->done[i]) {
			ndone++;
			ndone_before++;
			continue;
		}
		switch (res[i].status) {
		case RCPT_DONE:
			meta->done[i] = 1;
			ndone++;
			log_msg(qid, "event=delivered to=<%s> status=sent", env->rcpt[i]);
			break;
		case RCPT_PERM:
			nperm++;
			err = res[i].error;
			log_msg(qid, "event=failed to=<%s> status=failed reason=%s", env->rcpt[i], log_q(err));
			break;
		case RCPT_WAIT:
			nwait++;
			break;
		default:
			ntemp++;
			err = res[i].error;
			log_msg(qid, "event=deferred to=<%s> status=deferred reason=%s", env->rcpt[i], log_q(err));
			break;
		}
	}
	expired = ntemp > 0 && now - env->arrival > (long long)s->cf->lifetime;
	if (expired)
		log_msg(qid, "event=expired age=%llds", now - env->arrival);
	bounced = nperm > 0 || expired ? sched_bounce(s, job, env, fd, body_off, meta, res, expired) : 0;
	if (bounced > 0) {
		ndone += bounced;
		ntemp = expired ? 0 : ntemp;
	} else if (bounced < 0) {
		ntemp += nperm;   /* the DSN could not be stored: try it all again later */
	}
	if (ndone == env->nrcpt) {
		queue_remove(s->q, qid, st);
		log_msg(qid, "event=removed");
		return OUT_DONE;
	}
	meta->last_attempt = now;
	if (err) {
		free(meta->last_error);
		meta->last_error = xstrdup(err);
	}
	if (ntemp > 0) {
		meta->attempts++;
		meta->next_attempt = now + sched_backoff(s->cf, meta->attempts);
	} else if (ndone == ndone_before) {
		/* only waiting, nothing learnt: spare the disk an fsync */
		return OUT_WAIT;
	}
	if (queue_meta_write(s->q, qid, meta) != 0)
		log_err(qid, "event=meta_write_failed error=%s", log_q(strerror(errno)));
	if (ntemp > 0 && st != Q_DEFERRED && queue_move(s->q, qid, st, Q_DEFERRED) != 0)
		log_err(qid, "event=move_failed error=%s", log_q(strerror(errno)));
	return ntemp > 0 ? OUT_DEFER : OUT_WAIT;
}

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

	job->outcome = sched_apply(s, job, job->st, &job->env, job->fd, (off_t)job->off, &job->meta,
				   job->res);
	close(job->fd);
	job->next_attempt = job->meta.next_attempt;
	sched_job_queued(job, job->dsn_qid);
	for (int i = 0; i < job->env.nrcpt; i++)
		sched_job_queued(job, job->res[i].fwd_qid);
	if (job->outcome == OUT_DEFER)
		log_msg(qid, "event=retry_at delay=%llds attempts=%d",
			job->meta.next_attempt - (long long)time(NULL), job->meta.attempts);
	if (job->outcome == OUT_DEFER || job->outcome == OUT_WAIT)
		job->domains = sched_domains_of(job->env.rcpt, job->env.nrcpt, job->meta.done);
	free(job->res);
	job->res = NULL;
	queue_meta_clear(&job->meta);
	queue_env_clear(&job->env);
}

static void
sched_work(void *arg)
{
	struct sched_job *job = arg;
	struct sched *s = job->e->s;
	const char *qid = job->e->qid;
	int remote = 0;

	if (job->remote_phase) {
		sched_finish(job);
		job->remote_phase = 0;
		return;
	}
	if (queue_find(s->q, qid, &job->st) != 0 || job->st == Q_HOLD) {
		job->outcome = OUT_GONE;
		return;
	}
	if ((job->fd = queue_read_env(s->q, job->st, qid, &job->env, &job->off)) < 0) {
		if (errno == ENOENT) {
			job->outcome = OUT_GONE;
			return;
		}
		log_err(qid, "event=unreadable error=%s status=held", log_q(strerror(errno)));
		queue_move(s->q, qid, job->st, Q_HOLD);
		job->outcome = OUT_HOLD;
		return;
	}
	queue_meta_read(s->q, qid, &job->meta);
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
	worker_submit(job->e->s->pool, sched_work, sched_done, job);
}

static void
sched_done(void *arg)
{
	struct sched_job *job = arg;
	struct sched_entry *e = job->e;
	struct sched *s = e->s;

	s->on_workers--;
	if (job->remote_phase) {
		s->remote(s->remote_arg, &job->env, job->fd, (off_t)job->off, job->res,
			  sched_remote_done, job);
		sched_pump(s);   /* a worker came free */
		return;
	}
	s->in_flight--;
	e->in_flight = 0;
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
			sched_at(e, time(NULL) + s->cf->retry_max);
		}
		break;
	case OUT_DEFER:
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
		s->in_flight++;
		s->on_workers++;
		job = xcalloc(1, sizeof(*job));
		job->e = e;
		job->wake_gen = s->wake_gen;
		worker_submit(s->pool, sched_work, sched_done, job);
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
	return s;
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
sched_add_waiting(struct sched *s, const char *qid, char *const *rcpt, int nrcpt)
{
	struct sched_entry *e = sched_entry_get(s, qid);

	free(e->domains);
	e->domains = sched_domains_of(rcpt, nrcpt, NULL);
	e->waiting = 1;
	/* looked at again now and then, so the lifetime can end it */
	sched_at(e, time(NULL) + s->cf->retry_max);
}

struct sched_scan {
	struct sched *s;
	int flush;
	int n;
};

static void
sched_scan_active(const char *qid, void *arg)
{
	struct sched_scan *sc = arg;
	struct sched_entry *e = sched_find(sc->s, qid);

	if (e != NULL && (e->in_flight || e->ready || (e->waiting && !sc->flush)))
		return;
	sched_make_ready(sched_entry_get(sc->s, qid));
	sc->n++;
}

static void
sched_scan_deferred(const char *qid, void *arg)
{
	struct sched_scan *sc = arg;
	struct sched_entry *e = sched_find(sc->s, qid);
	struct queue_meta meta;

	if (e != NULL && (e->in_flight || e->ready))
		return;
	e = sched_entry_get(sc->s, qid);
	if (sc->flush) {
		sched_make_ready(e);
	} else if (!evtimer_pending(e->timer, NULL)) {
		if (queue_meta_read(sc->s->q, qid, &meta) == 0)
			sched_at(e, meta.next_attempt);
		else
			sched_make_ready(e);
		queue_meta_clear(&meta);
	}
	sc->n++;
}

static void
sched_scan(struct sched *s, int flush)
{
	struct sched_scan sc = { s, flush, 0 };

	queue_scan(s->q, Q_ACTIVE, sched_scan_active, &sc);
	queue_scan(s->q, Q_DEFERRED, sched_scan_deferred, &sc);
	sched_pump(s);
}

void
sched_start(struct sched *s)
{
	int n = queue_clean_tmp(s->q);

	if (n > 0)
		log_msg(NULL, "event=recovery removed_partials=%d", n);
	sched_scan(s, 0);
	log_msg(NULL, "event=queue_loaded messages=%u", s->count);
}

void
sched_rescan(struct sched *s)
{
	sched_scan(s, 0);
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
	log_msg(NULL, "event=flush");
	sched_scan(s, 1);
}

int
sched_flush_domain(struct sched *s, const char *domain)
{
	int n = 0;

	sched_scan(s, 0);   /* files the scheduler has not seen yet */
	for (int i = 0; i < SCHED_BUCKETS; i++)
		for (struct sched_entry *e = s->buckets[i]; e; e = e->hnext)
			if (sched_entry_for(e, domain)) {
				sched_make_ready(e);
				n++;
			}
	log_msg(NULL, "event=flush domain=%s messages=%d", domain, n);
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
