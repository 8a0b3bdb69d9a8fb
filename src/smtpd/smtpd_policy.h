/*
 * smtpd_policy: what differs between the SMTP services — who may relay,
 * which recipients exist, what trace header goes in front of a message,
 * whether ETRN or AUTH is offered, who may use which sender — as a small
 * table of functions, one per service: the MX (port 25) and submission
 * (587 and 465, RFC 6409: AUTH first, then relay anywhere, as one's own
 * addresses only).
 * Public: smtpd_policy_mx, smtpd_policy_submission.
 */
#ifndef TANDEM_SMTPD_POLICY_H
#define TANDEM_SMTPD_POLICY_H
#include <stddef.h>
#include <time.h>

struct config;
struct directory;
struct smtpd_session;

/* One RCPT to decide: everything the worker needs, copied. */
struct smtpd_rcpt_query {
	char addr[320];           /* canonical */
	int postmaster;           /* "<postmaster>" without a domain */
	int relay_domain;         /* the domain is one of [relay] domains */
	const char *hostname;     /* [server] hostname (restart-only: stable) */
	const char *first_relay;  /* the first relay domain, or NULL */
	struct store *store;      /* for the quota of a local user (NULL: not checked) */
	unsigned long long size;  /* MAIL's SIZE=, 0 when not given */
	long long default_quota;  /* [mailbox] default_quota */
};

struct smtpd_verdict {
	int ok;                   /* 1: accept the recipient */
	char addr[320];           /* the recipient to record (postmaster mapped) */
	char code[16];            /* else the reply: "550 5.1.1" */
	char text[112];           /* "User unknown in local recipient table" */
	char detail[256];         /* for the log */
};

struct smtpd_policy {
	const char *name;
	/* Decide on one recipient. Runs on a worker thread: it may use only
	 * its arguments (the directory's per-thread handles) and v. */
	void (*rcpt)(struct directory *dir, const struct smtpd_rcpt_query *q, struct smtpd_verdict *v);
	/* The trace header put in front of the message (malloc'd). */
	char *(*trace)(const struct smtpd_session *s, const char *qid, time_t now);
	/* Offer ETRN (RFC 1985) when the server has relay domains. */
	int etrn;
	/* Offer AUTH (RFC 4954) and require it before MAIL. */
	int auth;
	/* May the authenticated user (canonical address) use sender ("" for
	 * <>) as the envelope sender? NULL: anyone may. A worker runs it, as
	 * rcpt; v->code "553 5.7.1" when not. */
	void (*sender)(struct directory *dir, const char *user, const char *sender,
		       struct smtpd_verdict *v);
	const char *service;      /* for the log lines: "smtp", "submission" */
};

extern const struct smtpd_policy smtpd_policy_mx;
extern const struct smtpd_policy smtpd_policy_submission;

#endif
