/*
 * queue_sched: the scheduler. Knows every queued message, hands each one to
 * the transport on a worker thread when it is due, and applies the outcome:
 * all recipients done -> removed; some failed temporarily -> deferred/ with
 * exponential backoff between [queue] retry_min and retry_max; failed for
 * good, or still failing past the lifetime -> one DSN to the sender (none
 * for the null sender) and those recipients are done. State lives on disk,
 * so a restart loses nothing.
 * A message that cannot be parsed (queue file or meta) goes to corrupt/,
 * never to a second delivery. Flushes coalesce: a message already in
 * flight for a flush, or already due, is not started again.
 * Public: sched_new, sched_start, sched_add, sched_rescan, sched_flush,
 * sched_flush_domain, sched_free, sched_backoff, sched_result_set,
 * sched_set_clock, sched_run_due, and the add and wake calls.
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

/* One recipient's outcome, as the transport saw it: the DSN, the logs and
 * `queue list` take these fields as they are, nobody parses error back. */
struct rcpt_result {
	enum rcpt_status status;
	char dsn[16];                     /* enhanced status code, "5.1.1"; "" unknown */
	char error[256];                  /* what happened, in our words (logged) */
	/* Remote delivery: the host it was tried at, and what that host said
	 * (reply_code 0: no reply, the failure was decided here). */
	char relay_host[256];
	char relay_addr[64];
	int relay_port;
	int reply_code;
	char reply[512];                  /* the reply text, without the code */
	unsigned dup : 1;                 /* lost after the final dot: maybe delivered */
	char fwd_qid[QUEUE_ID_LEN + 1];   /* a message the transport queued for it
					   * (alias forwarding): scheduled at once */
};

/* Set r's status, enhanced code and text (printf format); the relay
 * fields are left as they are. */
void sched_result_set(struct rcpt_result *r, enum rcpt_status st, const char *dsn,
		      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Where the scheduler takes "now" from (seconds, with a fraction); tests
 * replace it and call sched_run_due after moving it on. */
struct sched_clock {
	double (*now)(void *arg);
	void *arg;
};

/* A transport delivers one message, on a worker thread. It reads the
 * message from fd (the body starts at body_off) and fills res[i] for every
 * recipient i with meta->done[i] unset. */
typedef void sched_transport_fn(void *arg, const struct queue_env *env, int fd, off_t body_off,
				const struct queue_meta *meta, struct rcpt_result *res);

/* The remote transport: runs on the loop, delivers every recipient i
 * with res[i].status == RCPT_REMOTE, sets its result, then calls
 * done(done_arg) from the loop. prefix: what the sign hook made, or NULL. */
typedef void sched_remote_fn(void *arg, const struct queue_env *env, int fd, off_t body_off,
			     const char *prefix, struct rcpt_result *res,
			     void (*done)(void *done_arg), void *done_arg);
/* Before the remote phase, on a worker: header fields to send before the
 * message (its DKIM-Signature), malloc'd, or NULL. */
typedef char *sched_sign_fn(void *arg, const struct queue_env *env, int fd, off_t body_off);

struct sched *sched_new(struct event_base *base, struct worker_pool *pool, struct queue *q,
			const struct config *cf, sched_transport_fn *transport, void *arg);
/* Remove partials, then schedule everything in active/ and deferred/. */
void sched_start(struct sched *s);
/* A message just committed into active/, for these recipients. */
void sched_add(struct sched *s, const char *qid, char *const *rcpt, int nrcpt);
/* Recipients the local transport marks RCPT_REMOTE go to remote. */
void sched_set_remote(struct sched *s, sched_remote_fn *remote, void *arg);
/* Messages with remote recipients go through sign first (may be unset). */
void sched_set_sign(struct sched *s, sched_sign_fn *sign, void *arg);
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
 * here. Coalesces: a message an earlier flush started and that has not
 * finished, or one already due, is counted but not started again. One
 * log line per call. Returns how many messages are on their way. */
int sched_flush_domain(struct sched *s, const char *domain);
/* Replace the clock (NULL: the system's); before sched_start. */
void sched_set_clock(struct sched *s, const struct sched_clock *clock);
/* Start every attempt whose retry time has come by the clock: what the
 * timers do, for a test that moved its clock on instead of waiting. */
void sched_run_due(struct sched *s);
/* Start no new attempt (shutdown); those in flight finish. */
void sched_stop(struct sched *s);
unsigned sched_in_flight(struct sched *s);
void sched_free(struct sched **sp);
/* Seconds to wait after `attempts` failed attempts. */
unsigned sched_backoff(const struct config *cf, int attempts);

#endif
