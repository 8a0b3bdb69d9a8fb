/*
 * queue_result: what one delivery attempt's results do to a message: one
 * log line per recipient result (relay, status, enhanced code, delay since
 * arrival, the remote reply), each recipient's last result noted in the
 * meta, one DSN for those that failed for good or outlived the lifetime,
 * then the message removed, deferred with backoff, or left waiting. A
 * failure of the disk (remove, move, meta write) is logged as the failure
 * it is and never taken for success. Runs on a worker thread.
 * Public: queue_result_apply.
 */
#ifndef TANDEM_QUEUE_RESULT_H
#define TANDEM_QUEUE_RESULT_H
#include <sys/types.h>

#include "queue/queue_sched.h"

enum queue_result_outcome {
	QRES_DONE,    /* every recipient done: removed */
	QRES_DEFER,   /* attempt again at next_attempt */
	QRES_WAIT,    /* nothing to attempt until a destination is back */
	QRES_GONE     /* moved or deleted meanwhile (an admin): not ours now */
};

struct queue_result_attempt {
	struct queue *q;
	const struct config *cf;
	double now;                          /* the scheduler's clock */
	enum queue_state st;                 /* where the message is */
	/* filled in: */
	long long next_attempt;              /* for QRES_DEFER */
	int stuck;                           /* deferred, but its move failed */
	char dsn_qid[QUEUE_ID_LEN + 1];      /* a DSN it queued, or "" */
};

/* Apply res (one per recipient of env) to the message and its meta. */
enum queue_result_outcome queue_result_apply(struct queue_result_attempt *a,
					     const struct queue_env *env, int fd, off_t body_off,
					     struct queue_meta *meta, const struct rcpt_result *res);

#endif
