/*
 * smtpd_policy: the MX policy (see smtpd_policy.h): recipients in the
 * directory's local domains, or in this backup's relay domains (checked
 * against the primary's recipient list when loaded); nothing else is
 * relayed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "directory/directory.h"
#include "mail/addr.h"
#include "mail/header.h"
#include "smtpd/smtpd_int.h"
#include "smtpd/smtpd_policy.h"
#include "store/store.h"
#include "conf/config.h"

static void
verdict(struct smtpd_verdict *v, const char *code, const char *text, const char *detail)
{
	v->ok = 0;
	snprintf(v->code, sizeof(v->code), "%s", code);
	snprintf(v->text, sizeof(v->text), "%s", text);
	snprintf(v->detail, sizeof(v->detail), "%s", detail ? detail : "");
}

/* A local user's quota: over it already (or by the declared SIZE) 452
 * 4.2.2, the client retries later; a message larger than the whole quota
 * 552 5.2.2, it never fits. 0 when the recipient may go on. */
static int
mx_quota(struct directory *dir, const struct smtpd_rcpt_query *q, const char *mailbox,
	 struct smtpd_verdict *v)
{
	struct store_account *a;
	long long quota, bytes, msgs;
	const char *err;
	int rc;

	if (q->store == NULL || directory_user_quota_get(dir, mailbox, &quota) != 0)
		return 0;   /* delivery checks again; a lookup error is no reason to refuse */
	if (quota < 0)
		quota = q->default_quota;
	if (quota == 0)
		return 0;
	if (q->size > (unsigned long long)quota) {
		verdict(v, "552 5.2.2", "Message larger than the recipient's mailbox quota", mailbox);
		return -1;
	}
	if ((a = store_account_open(q->store, mailbox, &err)) == NULL)
		return 0;
	rc = store_usage(a, &bytes, &msgs);
	store_account_close(&a);
	if (rc == 0 && (bytes >= quota || bytes + (long long)q->size > quota)) {
		verdict(v, "452 4.2.2", "Mailbox full: over its quota, try again later", mailbox);
		return -1;
	}
	return 0;
}

static void
mx_rcpt(struct directory *dir, const struct smtpd_rcpt_query *q, struct smtpd_verdict *v)
{
	struct dir_rcpt_result r;
	const char *err = NULL;

	v->ok = 1;
	snprintf(v->addr, sizeof(v->addr), "%s", q->addr);
	if (q->postmaster) {
		/* RFC 5321 4.5.1: postmaster of the domain we are, or our first */
		int rc = directory_postmaster_address(dir, q->hostname, v->addr, sizeof(v->addr), &err);

		if (rc < 0) {
			verdict(v, "451 4.3.0", "Temporary lookup failure", err);
			return;
		}
		if (rc == 0 && q->first_relay == NULL) {
			verdict(v, "550 5.1.1", "No postmaster here: this server has no domains", q->addr);
			return;
		}
		if (rc == 0)
			snprintf(v->addr, sizeof(v->addr), "postmaster@%s", q->first_relay);
	}
	switch (directory_rcpt_lookup(dir, v->addr, q->relay_domain || q->postmaster, &r, &err)) {
	case DIR_LOOKUP_USER:
		mx_quota(dir, q, r.mailbox, v);
		return;
	case DIR_LOOKUP_ALIAS:
	case DIR_LOOKUP_CATCHALL:
	case DIR_LOOKUP_RELAY:
		return;
	case DIR_LOOKUP_UNKNOWN:
		verdict(v, "550 5.1.1", "User unknown in local recipient table", v->addr);
		return;
	case DIR_LOOKUP_RELAY_UNKNOWN:
		verdict(v, "550 5.1.1", "User unknown in relay recipient table", v->addr);
		return;
	case DIR_LOOKUP_NOT_OURS:
		verdict(v, "554 5.7.1", "Relay access denied", v->addr);
		return;
	case DIR_LOOKUP_LOOP:
		verdict(v, "451 4.4.6", "Mail loop: the aliases of this address lead in a circle", err);
		return;
	case DIR_LOOKUP_TEMPFAIL:
		break;
	}
	verdict(v, "451 4.3.0", "Temporary lookup failure", err);
}

static char *
mx_trace(const struct smtpd_session *s, const char *qid, time_t now)
{
	const char *proto = s->tls ? "ESMTPS" : s->esmtp ? "ESMTP" : "SMTP";

	if (s->smtputf8)
		proto = s->tls ? "UTF8SMTPS" : "UTF8SMTP";
	return header_received(s->helo, s->client, smtpd_cf(s)->hostname, proto, qid,
			       s->nrcpt == 1 ? s->rcpt[0] : NULL, now);
}

const struct smtpd_policy smtpd_policy_mx = {
	.name = "mx",
	.rcpt = mx_rcpt,
	.trace = mx_trace,
	.etrn = 1,
};
