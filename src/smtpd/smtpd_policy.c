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
#include "conf/config.h"

static void
verdict(struct smtpd_verdict *v, const char *code, const char *text, const char *detail)
{
	v->ok = 0;
	snprintf(v->code, sizeof(v->code), "%s", code);
	snprintf(v->text, sizeof(v->text), "%s", text);
	snprintf(v->detail, sizeof(v->detail), "%s", detail ? detail : "");
}

static void
mx_rcpt(struct directory *dir, const struct config *cf, const char *addr, struct smtpd_verdict *v)
{
	v->ok = 1;
	switch (directory_rcpt_check(dir, addr)) {
	case DIR_RCPT_LOCAL:
		return;
	case DIR_RCPT_UNKNOWN:
		verdict(v, "550 5.1.1", "User unknown in local recipient table", addr);
		return;
	case DIR_RCPT_TEMPFAIL:
		verdict(v, "451 4.3.0", "Temporary lookup failure", directory_error(dir));
		return;
	case DIR_RCPT_NOT_LOCAL:
		break;
	}
	if (!config_is_relay_domain(cf, addr_domain(addr))) {
		verdict(v, "554 5.7.1", "Relay access denied", addr);
		return;
	}
	switch (directory_relay_check(dir, addr)) {
	case DIR_RELAY_OK:
		return;
	case DIR_RELAY_UNKNOWN:
		verdict(v, "550 5.1.1", "User unknown in relay recipient table", addr);
		return;
	case DIR_RELAY_TEMPFAIL:
		break;
	}
	verdict(v, "451 4.3.0", "Temporary lookup failure", directory_error(dir));
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
