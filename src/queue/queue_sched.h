/*
 * queue_sched: the scheduler. Knows every queued message, hands each one to
 * the transport on a worker thread when it is due, and applies the outcome:
 * all recipients done -> removed; some failed temporarily -> deferred/ with
 * exponential backoff between [queue] retry_min and retry_max; failed for
 * good, or still failing past the lifetime -> one DSN to the sender (none
 * for the null sender) and those recipients are done. State lives on disk,
 * so a restart loses nothing.
 * Public: sched_new, sched_start, sched_add, sched_rescan, sched_flush,
 * sched_flush_domain, sched_free, sched_backoff, and the add and wake calls.
 */
#ifndef TANDEM_QUEUE_SCHED_H
#define TANDEM_QUEUE_SCHED_H
#include <stddef.h>
#include <sys/types.h>

#include "queue/queue.h"

struct config;
struct event_base;
struct worker_pool;
struct sched;

enum rcpt_status {
	RCPT_PENDING = 0,
	RCPT_DONE,         /* delivered (or delivered before) */
	RCPT_TEMP,         /* try again later */
	RCPT_PERM,         /* will never succeed */
	RCPT_WAIT,         /* not ours to deliver now (no transport for it) */
	RCPT_REMOTE        /* for another host: the remote transport's job */
};

struct rcpt_result {
	enum rcpt_status status;
	char error[256];
	char fwd_qid[QUEUE_ID_LEN + 1];   /* a message the transport queued for it
					   * (alias forwarding): scheduled at once */
};

/* A transport delivers one message, on a worker thread. It reads the
 * message from fd (the body starts at body_off) and fills res[i] for every
 * recipient i with meta->done[i] unset. */
typedef void sched_transport_fn(void *arg, const struct queue_env *env, int fd, off_t body_off,
				const struct queue_meta *meta, struct rcpt_result *res);

/* The remote transport: runs on the loop, delivers every recipient i
 * with res[i].status == RCPT_REMOTE, sets its result, then calls
 * done(done_arg) from the loop. */
typedef void sched_remote_fn(void *arg, const struct queue_env *env, int fd, off_t body_off,
			     struct rcpt_result *res, void (*done)(void *done_arg), void *done_arg);

struct sched *sched_new(struct event_base *base, struct worker_pool *pool, struct queue *q,
			const struct config *cf, sched_transport_fn *transport, void *arg);
/* Remove partials, then schedule everything in active/ and deferred/. */
void sched_start(struct sched *s);
/* A message just committed into active/, for these recipients. */
void sched_add(struct sched *s, const char *qid, char *const *rcpt, int nrcpt);
/* Recipients the local transport marks RCPT_REMOTE go to remote. */
void sched_set_remote(struct sched *s, sched_remote_fn *remote, void *arg);
/* A message just committed that nothing can deliver yet. */
void sched_add_waiting(struct sched *s, const char *qid, char *const *rcpt, int nrcpt);
/* A destination is back: attempt every message that waits (RCPT_WAIT),
 * leaving deferred ones to their backoff. */
void sched_wake_waiting(struct sched *s);
/* Pick up what an admin changed (release, delete) without hurrying anything. */
void sched_rescan(struct sched *s);
/* Attempt every deferred message now (`tandem queue flush`). */
void sched_flush(struct sched *s);
/* Attempt now every message with a recipient in domain still to deliver
 * (ETRN), and those not attempted yet, whose recipients are not known
 * here. Returns how many. */
int sched_flush_domain(struct sched *s, const char *domain);
/* Start no new attempt (shutdown); those in flight finish. */
void sched_stop(struct sched *s);
unsigned sched_in_flight(struct sched *s);
void sched_free(struct sched **sp);
/* Seconds to wait after `attempts` failed attempts. */
unsigned sched_backoff(const struct config *cf, int attempts);

#endif
