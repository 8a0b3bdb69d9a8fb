/*
 * deliver: local delivery into the store through the directory (see deliver.h).
 * Runs on worker threads; the directory gives each its own connection.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "deliver/deliver.h"
#include "directory/directory.h"
#include "mail/addr.h"
#include "queue/queue.h"
#include "store/store.h"
#include "conf/config.h"
#include "util/log.h"
#include "util/xalloc.h"

struct deliver {
	const struct config *cf;
	struct queue *q;
	struct directory *dir;   /* one handle, a connection per thread inside */
	struct store *store;
};

struct deliver *
deliver_new(const struct config *cf, struct queue *q, struct directory *dir, struct store *store)
{
	struct deliver *d = xcalloc(1, sizeof(*d));

	d->cf = cf;
	d->q = q;
	d->dir = dir;
	d->store = store;
	return d;
}

void
deliver_free(struct deliver **dp)
{
	struct deliver *d = *dp;

	if (d == NULL)
		return;
	free(d);
	*dp = NULL;
}

struct deliver_rcpt {
	struct deliver *d;
	const struct queue_env *env;
	int fd;
	off_t body_off;
	char **seen;            /* mailboxes written in this attempt */
	int nseen;
	char **fwd;             /* alias targets elsewhere, for this recipient */
	int nfwd;
	int nfail, fwd_failed;  /* fwd_failed: the forward copy could not be queued */
	int nperm;              /* failures that are permanent (larger than the quota) */
	char code[8];           /* the enhanced status of the last failure */
	char error[256];
};

/* One destination of a recipient: dest the mailbox (alice@x) or foreign
 * address, rcpt the address that reached it (alice+tag@x), for
 * Delivered-To. */
static void
deliver_dest(const char *dest, const char *rcpt, int is_local, void *arg)
{
	struct deliver_rcpt *r = arg;
	const struct config *cf = r->d->cf;
	const char *err = "";
	long long quota;
	uint32_t uid = 0;
	char *prefix;
	int rc;

	if (!is_local) {
		for (int i = 0; i < r->nfwd; i++)
			if (strcasecmp(r->fwd[i], dest) == 0)
				return;
		r->fwd = xrealloc(r->fwd, (r->nfwd + 1) * sizeof(char *));
		r->fwd[r->nfwd++] = xstrdup(dest);
		return;
	}
	for (int i = 0; i < r->nseen; i++)
		if (strcmp(r->seen[i], dest) == 0)
			return;
	quota = directory_user_quota(r->d->dir, dest, (long long)cf->default_quota);
	prefix = xasprintf("Return-Path: <%s>\nDelivered-To: %s\n", r->env->sender, rcpt);
	rc = store_deliver(r->d->store, dest, NULL, r->env->qid, prefix, r->fd, r->body_off,
			   r->env->size, quota, &uid, &err);
	free(prefix);
	switch (rc) {
	case STORE_OK:
	case STORE_DUPLICATE:
		break;
	case STORE_OVER_QUOTA:
		r->nfail++;
		snprintf(r->code, sizeof(r->code), "4.2.2");
		snprintf(r->error, sizeof(r->error), "4.2.2 mailbox %s is full (quota %lld bytes)",
			 dest, quota);
		log_msg(r->env->qid, "event=over_quota to=%s quota=%lld", log_addr(dest), quota);
		return;
	case STORE_TOO_BIG:
		r->nfail++;
		r->nperm++;
		snprintf(r->code, sizeof(r->code), "5.2.2");
		snprintf(r->error, sizeof(r->error), "5.2.2 the message is larger than the quota of "
			 "mailbox %s (%lld bytes)", dest, quota);
		return;
	default:
		r->nfail++;
		snprintf(r->code, sizeof(r->code), "4.3.0");
		snprintf(r->error, sizeof(r->error), "4.3.0 mailbox %s: %s", dest, err);
		return;
	}
	log_msg(r->env->qid, "event=stored to=%s uid=%" PRIu32 "%s", log_addr(dest), uid,
		rc == STORE_DUPLICATE ? " duplicate=avoided" : "");
	r->seen = xrealloc(r->seen, (r->nseen + 1) * sizeof(char *));
	r->seen[r->nseen++] = xstrdup(dest);
}

/* Queue a copy of the message for the alias targets in other domains:
 * same sender (bounces go to the original sender), same body, with a
 * Delivered-To: naming the alias. Committed before the recipient counts as
 * done, so a crash in between forwards twice rather than never. */
static int
deliver_forward(struct deliver_rcpt *r, const char *alias, char qid_r[QUEUE_ID_LEN + 1])
{
	const struct queue_env *env = r->env;
	struct queue_env fenv = { 0 };
	struct queue_in *in;
	char buf[65536], *hdr;
	off_t off = r->body_off;
	long long left = env->size;
	int rc;

	fenv.arrival = time(NULL);
	fenv.sender = env->sender;
	fenv.rcpt = r->fwd;
	fenv.nrcpt = r->nfwd;
	fenv.client = "127.0.0.1";
	fenv.helo = r->d->cf->hostname;
	fenv.proto = "ALIAS";
	fenv.body8bit = env->body8bit;
	fenv.smtputf8 = env->smtputf8;
	if ((in = queue_in_create(r->d->q, &fenv)) == NULL)
		return -1;
	hdr = xasprintf("Delivered-To: %s\r\n", alias);
	queue_in_write(in, hdr, strlen(hdr));
	free(hdr);
	while (left > 0) {
		ssize_t n = pread(r->fd, buf, left < (long long)sizeof(buf) ? (size_t)left : sizeof(buf), off);

		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			errno = n == 0 ? EIO : errno;
			queue_in_free(&in);
			return -1;
		}
		queue_in_write(in, buf, (size_t)n);
		off += n;
		left -= n;
	}
	rc = queue_in_commit(in);
	if (rc == 0) {
		snprintf(qid_r, QUEUE_ID_LEN + 1, "%s", queue_in_qid(in));
		log_msg(qid_r, "event=queued from=%s nrcpt=%d size=%lld forwarded_for=%s alias=%s",
			log_addr(env->sender), r->nfwd, queue_in_size(in), env->qid, log_addr(alias));
	}
	queue_in_free(&in);
	return rc;
}

void
deliver_local(void *arg, const struct queue_env *env, int fd, off_t body_off,
	      const struct queue_meta *meta, struct rcpt_result *res)
{
	struct deliver *d = arg;
	struct deliver_rcpt r = { .d = d, .env = env, .fd = fd, .body_off = body_off };
	struct directory *dir = d->dir;

	for (int i = 0; i < env->nrcpt; i++) {
		const char *derr = "";
		int n;

		if (i < meta->ndone && meta->done[i])
			continue;
		if (directory_rcpt_check(dir, env->rcpt[i]) == DIR_RCPT_NOT_LOCAL) {
			/* another host's: a relay domain's primary, or the world */
			sched_result_set(&res[i], RCPT_REMOTE, "4.4.0", "4.4.0 waiting for outbound delivery");
			continue;
		}
		r.nfail = r.fwd_failed = r.nperm = 0;
		r.error[0] = '\0';
		n = directory_resolve(dir, env->rcpt[i], deliver_dest, &r, &derr);
		if (n > 0 && r.nfail == 0 && r.nfwd > 0 &&
		    deliver_forward(&r, env->rcpt[i], res[i].fwd_qid) != 0) {
			r.fwd_failed++;
			snprintf(r.code, sizeof(r.code), "4.3.0");
			snprintf(r.error, sizeof(r.error), "4.3.0 forwarding to %s: %s", r.fwd[0],
				 strerror(errno));
		}
		for (int k = 0; k < r.nfwd; k++)
			free(r.fwd[k]);
		free(r.fwd);
		r.fwd = NULL;
		r.nfwd = 0;
		if (n < 0)
			sched_result_set(&res[i], RCPT_TEMP, "4.3.0", "4.3.0 directory: %s",
					 derr);
		else if (n == 0)
			sched_result_set(&res[i], RCPT_PERM, "5.1.1", "5.1.1 <%s>: user unknown",
					 env->rcpt[i]);
		else if (r.nfail > 0 && r.nfail == r.nperm && r.fwd_failed == 0 && n == r.nfail)
			/* every destination refuses for good: bounce rather than retry */
			sched_result_set(&res[i], RCPT_PERM, "5.2.2", "%s", r.error);
		else if (r.nfail > 0 || r.fwd_failed > 0)
			sched_result_set(&res[i], RCPT_TEMP, r.code, "%s", r.error);
		else
			sched_result_set(&res[i], RCPT_DONE, "2.0.0", "delivered to the mailbox%s",
					 r.nseen > 1 ? "es" : "");
	}
	for (int i = 0; i < r.nseen; i++)
		free(r.seen[i]);
	free(r.seen);
}
