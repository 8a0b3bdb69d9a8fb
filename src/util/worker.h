/*
 * worker: a small thread pool for blocking work (fsync, Maildir writes,
 * SQLite). work() runs on a pool thread; done() runs afterwards on the event
 * loop thread. Many sessions committing at once keep several fsyncs in flight,
 * which the filesystem journal batches. Public: worker_pool_new,
 * worker_pool_free, worker_submit, worker_submit_background,
 * worker_thread_index, worker_pending.
 */
#ifndef TANDEM_WORKER_H
#define TANDEM_WORKER_H

struct event_base;
struct worker_pool;

typedef void worker_fn(void *arg);

/* Needs evthread_use_pthreads() called before base was created. */
struct worker_pool *worker_pool_new(struct event_base *base, unsigned nthreads);
/* Waits for queued jobs to finish (their done() is not called). */
void worker_pool_free(struct worker_pool **pp);
/* A job a client waits for: it runs before waiting background jobs. */
void worker_submit(struct worker_pool *p, worker_fn *work, worker_fn *done, void *arg);
/* Work nobody waits on (a delivery from the queue, a folder check): at
 * most 3/4 of the threads run such jobs at once, and a quarter of them
 * always may, however many clients' jobs wait. */
void worker_submit_background(struct worker_pool *p, worker_fn *work, worker_fn *done,
			      void *arg);
/* 0..n-1 on a pool thread, -1 elsewhere: for per-thread resources. */
int worker_thread_index(void);
/* Jobs submitted and not yet completed. */
unsigned worker_pending(struct worker_pool *p);

#endif
