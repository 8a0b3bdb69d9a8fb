/*
 * smtpd_policy: what differs between the SMTP services — who may relay,
 * which recipients exist, what trace header goes in front of a message,
 * whether ETRN is offered — as a small table of functions, one per service
 * (the MX policy here; submission plugs in its own).
 * Public: smtpd_policy_mx.
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
};

extern const struct smtpd_policy smtpd_policy_mx;

#endif
