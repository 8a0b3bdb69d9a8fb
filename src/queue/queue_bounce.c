/*
 * queue_bounce: turn recipients that failed for good into a DSN (see
 * mail/dsn.h) queued for the envelope sender. Never for the null sender:
 * a DSN is itself sent from <>, so a bounce can never bounce. Runs on a
 * worker thread. Public: queue_bounce.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mail/dsn.h"
#include "queue/queue_bounce.h"
#include "conf/config.h"
#include "util/log.h"
#include "util/xalloc.h"

#define BOUNCE_HEADERS_MAX (64 * 1024)

/* The original message's header section (up to its blank line). */
static char *
bounce_headers(int fd, off_t body_off, size_t *len_r)
{
	char *b = xmalloc(BOUNCE_HEADERS_MAX + 1);
	ssize_t n = pread(fd, b, BOUNCE_HEADERS_MAX, body_off);
	char *end;

	if (n < 0)
		n = 0;
	b[n] = '\0';
	end = memmem(b, n, "\r\n\r\n", 4);
	*len_r = end ? (size_t)(end - b) + 2 : (size_t)n;
	return b;
}

int
queue_bounce(struct queue *q, const struct config *cf, const struct queue_env *env, int fd,
	     off_t body_off, const struct dsn_rcpt *rcpt, int nrcpt, int expired,
	     char dsn_qid_r[QUEUE_ID_LEN + 1])
{
	struct dsn_info info = { 0 };
	struct queue_env denv = { 0 };
	struct queue_in *in;
	char *text, *rcpts[1];
	size_t len;
	int rc;

	dsn_qid_r[0] = '\0';
	if (env->sender[0] == '\0')
		return 0;
	info.reporting_mta = cf->hostname;
	info.qid = env->qid;
	info.sender = env->sender;
	info.arrival = (time_t)env->arrival;
	info.now = time(NULL);
	info.rcpt = rcpt;
	info.nrcpt = nrcpt;
	info.expired = expired;
	info.headers = bounce_headers(fd, body_off, &info.headers_len);
	text = dsn_build(&info, &len);
	free((char *)info.headers);
	denv.arrival = info.now;
	denv.sender = "";
	rcpts[0] = (char *)env->sender;
	denv.rcpt = rcpts;
	denv.nrcpt = 1;
	denv.client = "127.0.0.1";
	denv.helo = cf->hostname;
	denv.proto = "DSN";
	denv.smtputf8 = env->smtputf8;
	in = queue_in_create(q, &denv);
	queue_in_write(in, text, len);
	free(text);
	rc = queue_in_commit(in);
	if (rc == 0) {
		snprintf(dsn_qid_r, QUEUE_ID_LEN + 1, "%s", queue_in_qid(in));
		log_msg(dsn_qid_r, "event=queued from=<> nrcpt=1 size=%zu dsn_for=%s", len, env->qid);
	} else {
		log_err(env->qid, "event=dsn_failed error=%s", log_q(strerror(errno)));
	}
	queue_in_free(&in);
	return rc;
}
