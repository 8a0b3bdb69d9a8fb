/*
 * queue_bounce: queue a DSN for recipients that failed for good.
 * Public: queue_bounce.
 */
#ifndef TANDEM_QUEUE_BOUNCE_H
#define TANDEM_QUEUE_BOUNCE_H
#include <sys/types.h>

#include "queue/queue.h"

struct config;
struct dsn_rcpt;

/* 0: queued (dsn_qid_r set) or nothing to send (null sender, dsn_qid_r
 * empty); -1: could not store it (errno), try again later. */
int queue_bounce(struct queue *q, const struct config *cf, const struct queue_env *env, int fd,
		 off_t body_off, const struct dsn_rcpt *rcpt, int nrcpt, int expired,
		 char dsn_qid_r[QUEUE_ID_LEN + 1]);

#endif
