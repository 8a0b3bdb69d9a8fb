/*
 * smtpd_policy: the MX and submission policies (see smtpd_policy.h). MX:
 * recipients in the directory's local domains, or in this backup's relay
 * domains (checked against the primary's recipient list when loaded);
 * nothing else is relayed. Submission: the same checks for our own
 * domains, any other domain relayed (the user has authenticated), and an
 * envelope sender the user owns: their address, a subaddress of it, an
 * alias that leads to their mailbox (never a domain's catch-all), or one
 * granted to them (`tandem user allow-from`).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
rcpt_decide(struct directory *dir, const struct smtpd_rcpt_query *q, struct smtpd_verdict *v,
	    int relay)
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
		if (!relay)
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

static void
mx_rcpt(struct directory *dir, const struct smtpd_rcpt_query *q, struct smtpd_verdict *v)
{
	rcpt_decide(dir, q, v, 0);
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
	.service = "smtp",
};

/* --- submission ---------------------------------------------------------- */

static void
sub_rcpt(struct directory *dir, const struct smtpd_rcpt_query *q, struct smtpd_verdict *v)
{
	rcpt_decide(dir, q, v, 1);
}

struct sub_owner {
	const char *user;
	int found;
};

static void
sub_owner_dest(const char *dest, int is_local, void *arg)
{
	struct sub_owner *o = arg;

	if (is_local && strcasecmp(dest, o->user) == 0)
		o->found = 1;
}

static void
sub_sender(struct directory *dir, const char *user, const char *sender, struct smtpd_verdict *v)
{
	struct dir_rcpt_result r;
	struct sub_owner o = { user, 0 };
	const char *err = NULL;
	enum dir_lookup l;

	v->ok = 1;
	snprintf(v->addr, sizeof(v->addr), "%s", sender);
	if (sender[0] == '\0') {
		verdict(v, "553 5.7.1", "Sender address rejected: the null sender is not for submission",
			"<>");
		return;
	}
	if (strcasecmp(sender, user) == 0)
		return;
	l = directory_rcpt_lookup(dir, sender, 0, &r, &err);
	if (l == DIR_LOOKUP_TEMPFAIL || l == DIR_LOOKUP_LOOP) {
		verdict(v, "451 4.3.0", "Temporary lookup failure", err);
		return;
	}
	if (l == DIR_LOOKUP_USER && strcasecmp(r.mailbox, user) == 0)
		return;   /* a subaddress of the user's own */
	if (l == DIR_LOOKUP_ALIAS) {
		if (directory_expand(dir, sender, sub_owner_dest, &o) < 0) {
			verdict(v, "451 4.3.0", "Temporary lookup failure", directory_error(dir));
			return;
		}
		if (o.found)
			return;
	}
	switch (directory_sender_granted(dir, user, sender)) {
	case 1:
		return;   /* `tandem user allow-from` */
	case 0:
		break;
	default:
		verdict(v, "451 4.3.0", "Temporary lookup failure", directory_error(dir));
		return;
	}
	verdict(v, "553 5.7.1", "Sender address rejected: not owned by the authenticated user",
		sender);
}

static char *
sub_trace(const struct smtpd_session *s, const char *qid, time_t now)
{
	const struct config *cf = smtpd_cf(s);
	/* RFC 3848: A for authenticated, S for TLS */
	const char *proto = s->smtputf8 ? (s->tls ? "UTF8SMTPSA" : "UTF8SMTPA") :
		s->tls ? "ESMTPSA" : "ESMTPA";

	return header_received(s->helo, cf->submission_hide_client ? NULL : s->client, cf->hostname,
			       proto, qid, s->nrcpt == 1 ? s->rcpt[0] : NULL, now);
}

const struct smtpd_policy smtpd_policy_submission = {
	.name = "submission",
	.rcpt = sub_rcpt,
	.trace = sub_trace,
	.auth = 1,
	.sender = sub_sender,
	.service = "submission",
};
