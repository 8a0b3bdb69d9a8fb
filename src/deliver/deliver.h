/*
 * deliver: local delivery, the primary's transport. Expands each recipient
 * through the directory (users, aliases, catch-alls) and stores the message
 * in each final mailbox's INBOX (store_deliver) with Return-Path: and
 * Delivered-To: added. The store's index records the queue id, so an
 * attempt repeated after a crash finds the copy already there and does not
 * deliver twice. Quota: a mailbox over its quota defers (4.2.2); a message
 * larger than the whole quota bounces (5.2.2). An alias
 * target in another domain is forwarded: a new message with the same
 * sender and body is queued for it (res[i].fwd_qid), as Postfix re-injects.
 * Public: deliver_new, deliver_free, deliver_local (a sched_transport_fn).
 */
#ifndef TANDEM_DELIVER_H
#define TANDEM_DELIVER_H
#include <sys/types.h>

#include "queue/queue_sched.h"

struct config;
struct deliver;
struct directory;
struct store;

struct deliver *deliver_new(const struct config *cf, struct queue *q, struct directory *dir,
			    struct store *store);
void deliver_free(struct deliver **dp);
void deliver_local(void *arg, const struct queue_env *env, int fd, off_t body_off,
		   const struct queue_meta *meta, struct rcpt_result *res);

#endif
