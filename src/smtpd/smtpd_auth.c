/*
 * smtpd_auth: SMTP AUTH (RFC 4954) for the submission policy, with the
 * SASL mechanisms of src/auth (PLAIN, LOGIN; an initial response on the
 * AUTH line or after an empty "334 "). A password is taken only where
 * [auth] plaintext allows: elsewhere EHLO does not offer AUTH before
 * STARTTLS and AUTH gets 538 5.7.11. The check runs through auth_check
 * with the connection paused; its failures are delayed and logged by the
 * auth module (event=auth_failed service=submission). The MX port never
 * offers AUTH: there it is 502 5.5.1.
 * Public (module-internal): smtpd_cmd_auth, smtpd_auth_line,
 * smtpd_auth_offered, smtpd_auth_free.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "auth/sasl.h"
#include "smtpd/smtpd_cmd.h"
#include "smtpd/smtpd_int.h"
#include "smtpd/smtpd_policy.h"
#include "util/conn.h"
#include "util/log.h"
#include "util/xalloc.h"

int
smtpd_auth_offered(struct smtpd_session *s)
{
	socklen_t len;

	return s->srv->d.policy->auth && s->srv->d.auth != NULL && s->user == NULL &&
	       auth_plaintext_ok(s->srv->d.auth, s->tls, conn_sockaddr(s->c, &len));
}

void
smtpd_auth_free(struct smtpd_session *s)
{
	sasl_free(&s->sasl);
}

static void
smtpd_auth_done(void *arg, enum auth_result res, const char *user)
{
	struct smtpd_session *s = arg;
	char tls[160];

	if (smtpd_session_resume(s))
		return;   /* the session went away meanwhile */
	switch (res) {
	case AUTH_OK:
		s->user = xstrdup(user);
		s->junk = 0;
		log_msg(s->id, "event=login service=%s user=%s client=[%s] session=%s mech=%s tls=%s%s%s",
			s->srv->d.policy->service, log_addr(user), s->client, s->id, s->sasl_mech,
			s->tls ? "yes" : "no", conn_tls_info(s->c, tls, sizeof(tls)) ? " " : "",
			conn_tls_info(s->c, tls, sizeof(tls)) ? tls : "");
		smtpd_reply(s, "235 2.7.0 Authentication successful");
		break;
	case AUTH_FAILED:
		smtpd_reply(s, "535 5.7.8 Authentication credentials invalid");
		s->errors++;
		break;
	case AUTH_THROTTLED:
		smtpd_reply(s, "454 4.7.0 Too many failed logins, try again later");
		s->errors++;
		break;
	case AUTH_TEMPFAIL:
		smtpd_reply(s, "454 4.7.0 Temporary authentication failure, try again later");
		break;
	}
	smtpd_session_continue(s);
}

static void
smtpd_auth_step(struct smtpd_session *s, const char *in)
{
	const char *challenge = NULL, *err = NULL;
	socklen_t len;

	switch (sasl_step(s->sasl, in, &challenge, &err)) {
	case SASL_CONTINUE:
		smtpd_reply(s, "334 %s", challenge ? challenge : "");
		return;
	case SASL_DONE:
		smtpd_session_pause(s);
		auth_check(s->srv->d.auth, s->srv->d.policy->service, conn_sockaddr(s->c, &len), s->id,
			   sasl_user(s->sasl), sasl_password(s->sasl), smtpd_auth_done, s);
		sasl_free(&s->sasl);
		return;
	case SASL_FAIL:
		sasl_free(&s->sasl);
		smtpd_reject(s, "AUTH", "501 5.5.2", err ? err : "Invalid SASL data", NULL);
		return;
	}
}

/* The client's answer to a 334: one base64 line, or "*" to cancel. */
void
smtpd_auth_line(struct smtpd_session *s, const char *line, int too_long)
{
	if (too_long) {
		sasl_free(&s->sasl);
		smtpd_reject(s, "AUTH", "500 5.5.6", "Authentication exchange line is too long", NULL);
	} else if (strcmp(line, "*") == 0) {
		sasl_free(&s->sasl);
		smtpd_reject(s, "AUTH", "501 5.0.0", "Authentication cancelled", NULL);
	} else {
		smtpd_auth_step(s, line);
	}
}

void
smtpd_cmd_auth(struct smtpd_session *s, const char *arg)
{
	char mech[16];
	const char *ir;
	size_t n = strcspn(arg, " ");

	if (!s->srv->d.policy->auth || s->srv->d.auth == NULL) {
		smtpd_reject(s, "AUTH", "502 5.5.1", "AUTH is only for mail submission, on port 587 or "
			     "465", NULL);
		return;
	}
	if (s->user != NULL) {
		smtpd_reject(s, "AUTH", "503 5.5.1", "Already authenticated", NULL);
		return;
	}
	if (n == 0 || n >= sizeof(mech)) {
		smtpd_reject(s, "AUTH", "501 5.5.4", "Syntax: AUTH mechanism [initial-response]", NULL);
		return;
	}
	memcpy(mech, arg, n);
	mech[n] = '\0';
	for (char *p = mech; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	if (!sasl_mech_known(mech)) {
		smtpd_reject(s, "AUTH", "504 5.5.4", "Unrecognized authentication type", mech);
		return;
	}
	if (!smtpd_auth_offered(s)) {
		smtpd_reject(s, "AUTH", "538 5.7.11", "Encryption required for requested authentication "
			     "mechanism", mech);
		return;
	}
	ir = arg[n] == ' ' ? arg + n + 1 : NULL;
	if (ir != NULL && (ir[0] == '\0' || strchr(ir, ' ') != NULL)) {
		smtpd_reject(s, "AUTH", "501 5.5.4", "Syntax: AUTH mechanism [initial-response]", NULL);
		return;
	}
	snprintf(s->sasl_mech, sizeof(s->sasl_mech), "%s", mech);
	sasl_free(&s->sasl);
	s->sasl = sasl_new(mech);
	smtpd_auth_step(s, ir);
}
