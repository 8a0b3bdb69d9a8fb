/*
 * worker: thread pool whose completions return to the libevent loop
 * (see worker.h). Completed jobs are collected on a list and one event is
 * activated; its callback runs every done() in submission-completion order.
 *
 * Two lanes: jobs a client waits for (an SMTP commit, a lookup, an IMAP
 * command) and background ones (the queue's deliveries, folder checks).
 * A free thread takes a client's job first; background jobs keep a share
 * of the threads so they never starve (bg_share), and never take all of
 * them (bg_max), so a client's job finds a thread at once even while
 * the queue drains into mailboxes, each delivery holding its thread for
 * several fsyncs.
 */
#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>

#include "util/worker.h"
#include "util/log.h"
#include "util/xalloc.h"

struct worker_job {
	worker_fn *work, *done;
	void *arg;
	int background;
	struct worker_job *next;
};

struct worker_lane {
	struct worker_job *head, *tail;
};

struct worker_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct worker_lane fg, bg;          /* to run */
	unsigned bg_running, bg_share, bg_max;
	struct worker_lane done;            /* for the loop's done() */
	struct event *done_ev;
	pthread_t *threads;
	unsigned nthreads;
	unsigned pending;
	int stopping;
};

static __thread int worker_index = -1;

struct worker_start {
	struct worker_pool *pool;
	int index;
};

int
worker_thread_index(void)
{
	return worker_index;
}

static struct worker_job *
worker_lane_take(struct worker_lane *l)
{
	struct worker_job *j = l->head;

	if (j != NULL && (l->head = j->next) == NULL)
		l->tail = NULL;
	return j;
}

static void
worker_lane_add(struct worker_lane *l, struct worker_job *j)
{
	if (l->tail)
		l->tail->next = j;
	else
		l->head = j;
	l->tail = j;
}

/* The next job a free thread should run, or NULL (under p->mu). */
static struct worker_job *
worker_next(struct worker_pool *p)
{
	if (p->bg.head != NULL && p->bg_running < p->bg_max &&
	    (p->fg.head == NULL || p->bg_running < p->bg_share)) {
		p->bg_running++;
		return worker_lane_take(&p->bg);
	}
	return worker_lane_take(&p->fg);
}

static void *
worker_main(void *arg)
{
	struct worker_start *st = arg;
	struct worker_pool *p = st->pool;

	worker_index = st->index;
	free(st);
	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct worker_job *j;

		while ((j = worker_next(p)) == NULL && !p->stopping)
			pthread_cond_wait(&p->cv, &p->mu);
		if (j == NULL)
			break;
		pthread_mutex_unlock(&p->mu);
		j->work(j->arg);
		pthread_mutex_lock(&p->mu);
		if (j->background) {
			p->bg_running--;
			if (p->bg.head != NULL)   /* one may wait for this share */
				pthread_cond_signal(&p->cv);
		}
		j->next = NULL;
		worker_lane_add(&p->done, j);
		event_active(p->done_ev, EV_READ, 0);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void
worker_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker_pool *p = arg;
	struct worker_job *list;

	pthread_mutex_lock(&p->mu);
	list = p->done.head;
	p->done.head = p->done.tail = NULL;
	pthread_mutex_unlock(&p->mu);
	while (list != NULL) {
		struct worker_job *j = list;

		list = j->next;
		pthread_mutex_lock(&p->mu);
		p->pending--;
		pthread_mutex_unlock(&p->mu);
		if (j->done)
			j->done(j->arg);
		free(j);
	}
}

struct worker_pool *
worker_pool_new(struct event_base *base, unsigned nthreads)
{
	struct worker_pool *p = xcalloc(1, sizeof(*p));

	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->done_ev = event_new(base, -1, 0, worker_done_cb, p);
	p->threads = xcalloc(nthreads, sizeof(pthread_t));
	p->nthreads = nthreads;
	p->bg_share = nthreads / 4 > 0 ? nthreads / 4 : 1;
	p->bg_max = nthreads - nthreads / 4 > 0 ? nthreads - nthreads / 4 : 1;
	for (unsigned i = 0; i < nthreads; i++) {
		struct worker_start *st = xmalloc(sizeof(*st));

		st->pool = p;
		st->index = (int)i;
		if (pthread_create(&p->threads[i], NULL, worker_main, st) != 0)
			log_panic(NULL, "event=panic reason=\"cannot start worker thread %u\"", i);
	}
	return p;
}

static void
worker_add(struct worker_pool *p, worker_fn *work, worker_fn *done, void *arg, int background)
{
	struct worker_job *j = xcalloc(1, sizeof(*j));

	j->work = work;
	j->done = done;
	j->arg = arg;
	j->background = background;
	pthread_mutex_lock(&p->mu);
	worker_lane_add(background ? &p->bg : &p->fg, j);
	p->pending++;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

void
worker_submit(struct worker_pool *p, worker_fn *work, worker_fn *done, void *arg)
{
	worker_add(p, work, done, arg, 0);
}

void
worker_submit_background(struct worker_pool *p, worker_fn *work, worker_fn *done, void *arg)
{
	worker_add(p, work, done, arg, 1);
}

unsigned
worker_pending(struct worker_pool *p)
{
	unsigned n;

	pthread_mutex_lock(&p->mu);
	n = p->pending;
	pthread_mutex_unlock(&p->mu);
	return n;
}

void
worker_pool_free(struct worker_pool **pp)
{
	struct worker_pool *p = *pp;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	for (struct worker_job *j; (j = worker_lane_take(&p->done)) != NULL;)
		free(j);
	event_free(p->done_ev);
	free(p->threads);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
	*pp = NULL;
}
