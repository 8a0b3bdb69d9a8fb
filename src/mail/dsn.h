/*
 * dsn: delivery status notifications (RFC 3464): the multipart/report a
 * sender gets when mail to some of its recipients failed for good or
 * expired. Pure text building; queueing it is the scheduler's business.
 * A DSN goes out with the null sender, so it is never bounced itself.
 * Every field comes structured from the transport (queue_sched.h's
 * struct rcpt_result); nothing here parses a reason text back.
 * Public: dsn_build.
 */
#ifndef TANDEM_DSN_H
#define TANDEM_DSN_H
#include <stddef.h>
#include <time.h>

struct dsn_rcpt {
	const char *address;
	const char *status;       /* "5.1.1", "4.4.7" */
	const char *diagnostic;   /* the reason in our words, as logged */
	/* The remote server that refused it, when one did (RFC 3464 2.3.5,
	 * 2.3.6): its name, its reply code and text. NULL / 0 otherwise. */
	const char *remote_mta;
	int reply_code;
	const char *reply;
};

struct dsn_info {
	const char *reporting_mta;   /* our hostname */
	const char *qid;
	const char *sender;          /* the original envelope sender (the DSN's To:) */
	time_t arrival, now;
	const struct dsn_rcpt *rcpt;
	int nrcpt;
	const char *headers;         /* the original header section, CRLF lines */
	size_t headers_len;
	int expired;                 /* the lifetime ran out */
};

/* The whole DSN message, CRLF line ends, malloc'd; *len_r its length. */
char *dsn_build(const struct dsn_info *info, size_t *len_r);

#endif
