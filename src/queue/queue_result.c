/*
 * queue_result: what one attempt's results do to a message (see
 * queue_result.h). Runs on a worker thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/dsn.h"
#include "queue/queue_bounce.h"
#include "queue/queue_result.h"
#include "conf/config.h"
#include "util/log.h"
#include "util/xalloc.h"

static int
result_bounces(const struct rcpt_result *r, int expired)
{
	return r->status == RCPT_PERM || (expired && r->status == RCPT_TEMP);
}

/* Recipients that failed for good (and, past the lifetime, those still
 * failing) are reported to the sender in one DSN and marked done. */
static int
result_bounce(struct queue_result_attempt *a, const struct queue_env *env, int fd, off_t body_off,
	      struct queue_meta *meta, const struct rcpt_result *res, int expired)
{
	struct dsn_rcpt *dr = xcalloc(env->nrcpt, sizeof(*dr));
	int n = 0, rc;

	for (int i = 0; i < env->nrcpt; i++) {
		const struct rcpt_result *r = &res[i];

		if (meta->done[i] || !result_bounces(r, expired))
			continue;
		dr[n].address = env->rcpt[i];
		if (r->status == RCPT_TEMP)
			dr[n].status = "4.4.7";   /* RFC 3463: delivery time expired */
		else
			dr[n].status = r->dsn[0] ? r->dsn : "5.0.0";
		dr[n].diagnostic = r->error;
		if (r->reply_code > 0) {
			dr[n].remote_mta = r->relay_host[0] ? r->relay_host : r->relay_addr;
			dr[n].reply_code = r->reply_code;
			dr[n].reply = r->reply;
		}
		n++;
	}
	rc = n == 0 ? 0 : queue_bounce(a->q, a->cf, env, fd, body_off, dr, n, expired, a->dsn_qid);
	for (int i = 0; rc == 0 && i < env->nrcpt; i++) {
		if (meta->done[i] || !result_bounces(&res[i], expired))
			continue;
		meta->done[i] = 1;
		log_msg(env->qid, "event=bounced to=%s dsn=%s", log_addr(env->rcpt[i]),
			a->dsn_qid[0] ? a->dsn_qid : "none(null sender)");
	}
	free(dr);
	return rc == 0 ? n : -1;
}

static void
result_relay_of(const struct rcpt_result *r, char *buf, size_t len)
{
	if (r->relay_addr[0])
		snprintf(buf, len, "%s[%s]:%d", r->relay_host[0] ? r->relay_host : r->relay_addr,
			 r->relay_addr, r->relay_port);
	else
		snprintf(buf, len, "local");
}

/* The one line per recipient result, local or remote, at info level (the
 * transport's own per-attempt detail is at debug). */
static void
result_log(const char *qid, const char *rcpt, const struct rcpt_result *r,
		 const char *event, const char *status, double delay)
{
	char relay[400], text[600], reply[1300];

	result_relay_of(r, relay, sizeof(relay));
	reply[0] = '\0';
	if (r->reply_code > 0) {
		snprintf(text, sizeof(text), "%d %s", r->reply_code, r->reply);
		snprintf(reply, sizeof(reply), " reply=%s", log_q(text));
	} else if (r->status != RCPT_DONE) {
		snprintf(reply, sizeof(reply), " reason=%s", log_q(r->error));
	}
	log_msg(qid, "event=%s to=%s relay=%s status=%s dsn=%s delay=%.2f%s%s", event, log_addr(rcpt), relay,
		status, r->dsn[0] ? r->dsn : (r->status == RCPT_DONE ? "2.0.0" : "-"), delay, reply,
		r->dup ? " possible_duplicate=yes" : "");
}

static void
result_note_last(struct queue_meta *m, int i, const struct rcpt_result *r,
		enum queue_rcpt_state st, long long now, const char *dsn)
{
	char relay[400], reply[600];

	relay[0] = reply[0] = '\0';
	if (r->relay_addr[0])
		result_relay_of(r, relay, sizeof(relay));
	if (r->reply_code > 0)
		snprintf(reply, sizeof(reply), "%d %s", r->reply_code, r->reply);
	queue_meta_set_last(m, i, st, now, dsn ? dsn : r->dsn, r->error, relay, reply);
}

/* The attempt ends with every recipient done, so the message goes. When it
 * cannot be removed, the meta file says all are done: the next attempt
 * delivers nothing and only tries the removal again. */
static enum queue_result_outcome
result_remove(struct queue_result_attempt *a, const char *qid, struct queue_meta *meta,
	      long long now)
{
	enum queue_state where;
	int err;

	if (queue_remove(a->q, qid, a->st) == 0) {
		log_msg(qid, "event=removed");
		return QRES_DONE;
	}
	err = errno;
	if (err == ENOENT) {
		/* An admin held or deleted it meanwhile; the held copy must not be
		 * delivered again on release. */
		if (queue_find(a->q, qid, &where) == 0 && queue_meta_write(a->q, qid, meta) != 0)
			log_err(qid, "event=meta_write_failed error=%s", log_q(strerror(errno)));
		log_warn(qid, "event=remove_skipped reason=\"moved or deleted while delivering\"");
		return QRES_GONE;
	}
	log_err(qid, "event=remove_failed error=%s", log_q(strerror(err)));
	meta->next_attempt = now + a->cf->retry_min;
	if (queue_meta_write(a->q, qid, meta) != 0)
		log_err(qid, "event=meta_write_failed error=%s", log_q(strerror(errno)));
	a->next_attempt = meta->next_attempt;
	return QRES_DEFER;
}

struct result_counts {
	int ndone, ntemp, nperm, ndone_before;
	const char *err;              /* the last failure's text, for last_error */
};

/* Each recipient's result: counted, logged (one line), noted in meta. */
static void
result_note_all(struct queue_result_attempt *a, const struct queue_env *env,
		struct queue_meta *meta, const struct rcpt_result *res, struct result_counts *c)
{
	long long now = (long long)a->now;
	double delay = a->now - (double)env->arrival;

	if (delay < 0)
		delay = 0;
	for (int i = 0; i < env->nrcpt; i++) {
		const struct rcpt_result *r = &res[i];

		if (meta->done[i]) {
			c->ndone++;
			c->ndone_before++;
			continue;
		}
		switch (r->status) {
		case RCPT_DONE:
			meta->done[i] = 1;
			c->ndone++;
			result_log(env->qid, env->rcpt[i], r, "delivered", "sent", delay);
			result_note_last(meta, i, r, QR_DELIVERED, now, r->dsn[0] ? NULL : "2.0.0");
			break;
		case RCPT_PERM:
			c->nperm++;
			c->err = r->error;
			result_log(env->qid, env->rcpt[i], r, "failed", "bounced", delay);
			result_note_last(meta, i, r, QR_BOUNCED, now, NULL);
			break;
		case RCPT_WAIT:
			result_note_last(meta, i, r, QR_WAITING, now, NULL);
			break;
		default:
			c->ntemp++;
			c->err = r->error;
			result_log(env->qid, env->rcpt[i], r, "deferred", "deferred", delay);
			result_note_last(meta, i, r, QR_DEFERRED, now, NULL);
			break;
		}
	}
}

/* Failed for good, or expired: one DSN, and those recipients are done. */
static void
result_bounce_all(struct queue_result_attempt *a, const struct queue_env *env, int fd,
		  off_t body_off, struct queue_meta *meta, const struct rcpt_result *res,
		  struct result_counts *c)
{
	long long now = (long long)a->now;
	int expired = c->ntemp > 0 && now - env->arrival > (long long)a->cf->lifetime, bounced;

	if (expired)
		log_msg(env->qid, "event=expired age=%llds", now - env->arrival);
	if (c->nperm == 0 && !expired)
		return;
	bounced = result_bounce(a, env, fd, body_off, meta, res, expired);
	if (bounced > 0) {
		c->ndone += bounced;
		c->ntemp = expired ? 0 : c->ntemp;
		for (int i = 0; expired && i < env->nrcpt; i++)
			if (res[i].status == RCPT_TEMP && meta->done[i])
				result_note_last(meta, i, &res[i], QR_BOUNCED, now, "4.4.7");
	} else if (bounced < 0) {
		c->ntemp += c->nperm;   /* the DSN could not be stored: try it all again later */
		for (int i = 0; i < env->nrcpt; i++)
			if (!meta->done[i] && result_bounces(&res[i], expired))
				queue_meta_set_last(meta, i, QR_DEFERRED, now, res[i].dsn,
						    "the DSN could not be queued; trying again", NULL, NULL);
	}
}

enum queue_result_outcome
queue_result_apply(struct queue_result_attempt *a, const struct queue_env *env, int fd,
		   off_t body_off, struct queue_meta *meta, const struct rcpt_result *res)
{
	const char *qid = env->qid;
	struct result_counts c = { 0 };
	long long now = (long long)a->now;

	a->dsn_qid[0] = '\0';
	a->next_attempt = 0;
	a->stuck = 0;
	if (meta->ndone < env->nrcpt) {
		meta->done = xrealloc(meta->done, env->nrcpt);
		memset(meta->done + meta->ndone, 0, env->nrcpt - meta->ndone);
		meta->ndone = env->nrcpt;
	}
	result_note_all(a, env, meta, res, &c);
	result_bounce_all(a, env, fd, body_off, meta, res, &c);
	if (c.ndone == env->nrcpt)
		return result_remove(a, qid, meta, now);
	meta->last_attempt = now;
	if (c.err) {
		free(meta->last_error);
		meta->last_error = xstrdup(c.err);
	}
	if (c.ntemp > 0) {
		meta->attempts++;
		meta->next_attempt = now + sched_backoff(a->cf, meta->attempts);
	} else if (c.ndone == c.ndone_before) {
		/* only waiting, nothing learnt: spare the disk an fsync */
		return QRES_WAIT;
	}
	a->next_attempt = meta->next_attempt;
	if (queue_meta_write(a->q, qid, meta) != 0)
		/* the next attempt may repeat this one's deliveries: a duplicate,
		 * never a loss */
		log_err(qid, "event=meta_write_failed error=%s", log_q(strerror(errno)));
	if (c.ntemp > 0 && a->st != Q_DEFERRED && queue_move(a->q, qid, a->st, Q_DEFERRED) != 0) {
		if (errno == ENOENT) {
			log_warn(qid, "event=move_skipped to=deferred reason=\"moved or deleted while delivering\"");
			return QRES_GONE;
		}
		/* still in active/: its timer keeps it, and a rescan must not hurry it */
		log_err(qid, "event=move_failed to=deferred error=%s", log_q(strerror(errno)));
		a->stuck = 1;
	}
	return c.ntemp > 0 ? QRES_DEFER : QRES_WAIT;
}
