/*
 * smtpd_auth: SMTP AUTH (RFC 4954) for the submission policy, with the
 * SASL mechanisms of src/auth (PLAIN, LOGIN; an initial response on the
 * AUTH line or after an empty "334 ") and SCRAM-SHA-256 (RFC 7677: the
 * user's secrets looked up on a worker, the proof checked here, the
 * server's signature sent as a last "334" that the client answers with
 * an empty line, then 235). A password is taken only where
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

#include <openssl/crypto.h>

#include "auth/auth.h"
#include "auth/sasl.h"
#include "auth/scram.h"
#include "directory/directory.h"
#include "smtpd/smtpd_cmd.h"
#include "smtpd/smtpd_int.h"
#include "smtpd/smtpd_policy.h"
#include "util/conn.h"
#include "util/log.h"
#include "util/worker.h"
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
	scram_free(&s->scram);
}

int
smtpd_auth_pending(const struct smtpd_session *s)
{
	return s->sasl != NULL || s->scram != NULL;
}

/* The channel binding data of this TLS session (-1 lengths: none). */
static int
smtpd_auth_plus_ok(struct smtpd_session *s, unsigned char *exp, int *elen, unsigned char *sep,
		   int *slen)
{
	*elen = s->tls ? conn_tls_channel_binding(s->c, "tls-exporter", exp) : -1;
	*slen = s->tls ? conn_tls_channel_binding(s->c, "tls-server-end-point", sep) : -1;
	return *elen > 0 || *slen > 0;
}

const char *
smtpd_auth_mechs(struct smtpd_session *s)
{
	unsigned char e[64], p[64];
	int el, pl;

	return smtpd_auth_plus_ok(s, e, &el, p, &pl) ? "PLAIN LOGIN " SCRAM_MECH " " SCRAM_MECH_PLUS :
		"PLAIN LOGIN " SCRAM_MECH;
}

static void
smtpd_auth_logged_in(struct smtpd_session *s, const char *user)
{
	char tls[160];

	s->user = xstrdup(user);
	s->junk = 0;
	log_msg(s->id, "event=login service=%s user=%s client=[%s] session=%s mech=%s tls=%s%s%s",
		s->srv->d.policy->service, log_addr(user), s->client, s->id, s->sasl_mech,
		s->tls ? "yes" : "no", conn_tls_info(s->c, tls, sizeof(tls)) ? " " : "",
		conn_tls_info(s->c, tls, sizeof(tls)) ? tls : "");
}

/* The reply to a login the auth module refused (not AUTH_OK); all but a
 * temporary failure count as errors. */
static void
smtpd_auth_refused_reply(struct smtpd_session *s, enum auth_result res)
{
	switch (res) {
	case AUTH_OK:
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
}

/* --- SCRAM-SHA-256 -------------------------------------------------------- */

struct smtpd_scram_job {
	struct smtpd_session *s;
	char user[320];
	char canon[320];
	char secret[512];
	int found;                  /* 1, 0 unknown, -1 error */
};

static void
smtpd_scram_lookup(void *arg)
{
	struct smtpd_scram_job *j = arg;

	j->found = directory_user_scram(j->s->srv->d.dir, j->user, j->canon, sizeof(j->canon),
					j->secret, sizeof(j->secret));
}

static void
smtpd_scram_secret_done(void *arg)
{
	struct smtpd_scram_job *j = arg;
	struct smtpd_session *s = j->s;
	unsigned char key[SCRAM_FAKE_KEY_LEN];
	const char *ch, *err;

	if (smtpd_session_resume(s)) {
		OPENSSL_cleanse(j, sizeof(*j));
		free(j);
		return;
	}
	if (j->found < 0) {
		scram_free(&s->scram);
		smtpd_auth_refused_reply(s, AUTH_TEMPFAIL);
	} else {
		s->scram_known = j->found == 1;
		snprintf(s->scram_canon, sizeof(s->scram_canon), "%s", j->found == 1 ? j->canon :
			 scram_user(s->scram));
		auth_fake_key(s->srv->d.auth, key);
		if (scram_server_first(s->scram, j->found == 1 ? j->secret : NULL, key, &ch, &err) ==
		    SCRAM_CONTINUE) {
			s->scram_phase = 1;
			smtpd_reply(s, "334 %s", ch);
		} else {
			scram_free(&s->scram);
			smtpd_reject(s, "AUTH", "454 4.7.0", err ? err : "SCRAM failed", NULL);
		}
		OPENSSL_cleanse(key, sizeof(key));
	}
	OPENSSL_cleanse(j, sizeof(*j));
	free(j);
	smtpd_session_continue(s);
}

/* The outcome of the proof, answered after the auth module's delay. */
static void
smtpd_scram_done(void *arg, enum auth_result res, const char *user)
{
	struct smtpd_session *s = arg;

	if (smtpd_session_resume(s))
		return;
	if (res == AUTH_OK && s->scram != NULL) {
		/* v=: the client checks us, then answers with an empty line */
		smtpd_reply(s, "334 %s", s->scram_final);
		s->scram_phase = 2;
	} else {
		scram_free(&s->scram);
		smtpd_auth_refused_reply(s, res == AUTH_OK ? AUTH_TEMPFAIL : res);
	}
	smtpd_session_continue(s);
}

static void
smtpd_scram_line(struct smtpd_session *s, const char *line)
{
	const char *ch = NULL, *err = NULL;
	socklen_t len;
	enum scram_status st;

	if (s->scram_phase == 2) {
		/* RFC 4954 4: the client acknowledges the server's last data */
		scram_free(&s->scram);
		if (line[0] != '\0') {
			smtpd_reject(s, "AUTH", "501 5.5.2", "Expected an empty line after the server's "
				     "signature", NULL);
			return;
		}
		smtpd_auth_logged_in(s, s->scram_canon);
		smtpd_reply(s, "235 2.7.0 Authentication successful");
		return;
	}
	if (s->scram_phase == 0) {
		struct smtpd_scram_job *j;

		if (scram_client_first(s->scram, line, &err) != SCRAM_NEED_SECRET) {
			scram_free(&s->scram);
			smtpd_reject(s, "AUTH", "501 5.5.2", err ? err : "Invalid SCRAM data", NULL);
			return;
		}
		if (auth_refused(s->srv->d.auth, conn_sockaddr(s->c, &len), scram_user(s->scram))) {
			smtpd_session_pause(s);
			auth_report(s->srv->d.auth, s->srv->d.policy->service, conn_sockaddr(s->c, &len),
				    s->id, scram_user(s->scram), 0, 0, smtpd_scram_done, s);
			return;
		}
		j = xcalloc(1, sizeof(*j));
		j->s = s;
		snprintf(j->user, sizeof(j->user), "%s", scram_user(s->scram));
		smtpd_session_pause(s);
		worker_submit(s->srv->d.pool, smtpd_scram_lookup, smtpd_scram_secret_done, j);
		return;
	}
	st = scram_client_final(s->scram, line, &ch, &err);
	if (st == SCRAM_OK || st == SCRAM_BAD_PROOF) {
		if (st == SCRAM_OK)
			s->scram_final = ch;
		else
			scram_free(&s->scram);
		smtpd_session_pause(s);
		auth_report(s->srv->d.auth, s->srv->d.policy->service, conn_sockaddr(s->c, &len), s->id,
			    s->scram_canon, st == SCRAM_OK && s->scram_known, s->scram_known,
			    smtpd_scram_done, s);
		return;
	}
	scram_free(&s->scram);
	smtpd_reject(s, "AUTH", "501 5.5.2", err ? err : "Invalid SCRAM data", NULL);
}

static void
smtpd_auth_done(void *arg, enum auth_result res, const char *user)
{
	struct smtpd_session *s = arg;

	if (smtpd_session_resume(s))
		return;   /* the session went away meanwhile */
	if (res == AUTH_OK) {
		smtpd_auth_logged_in(s, user);
		smtpd_reply(s, "235 2.7.0 Authentication successful");
	} else {
		smtpd_auth_refused_reply(s, res);
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
		smtpd_auth_free(s);
		smtpd_reject(s, "AUTH", "500 5.5.6", "Authentication exchange line is too long", NULL);
	} else if (strcmp(line, "*") == 0) {
		smtpd_auth_free(s);
		smtpd_reject(s, "AUTH", "501 5.0.0", "Authentication cancelled", NULL);
	} else if (s->scram != NULL) {
		smtpd_scram_line(s, line);
	} else {
		smtpd_auth_step(s, line);
	}
}

void
smtpd_cmd_auth(struct smtpd_session *s, const char *arg)
{
	char mech[24];
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
	if (!sasl_mech_known(mech) && strcmp(mech, SCRAM_MECH) != 0 &&
	    strcmp(mech, SCRAM_MECH_PLUS) != 0) {
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
	smtpd_auth_free(s);
	if (strcmp(mech, SCRAM_MECH) == 0 || strcmp(mech, SCRAM_MECH_PLUS) == 0) {
		unsigned char exp[64], sep[64];
		int elen, slen, plus = strcmp(mech, SCRAM_MECH_PLUS) == 0;
		int offered = smtpd_auth_plus_ok(s, exp, &elen, sep, &slen);

		if (plus && !offered) {
			smtpd_reject(s, "AUTH", "504 5.5.4", "SCRAM-SHA-256-PLUS needs TLS", mech);
			return;
		}
		s->scram = scram_new();
		s->scram_phase = 0;
		scram_set_tls(s->scram, plus, offered, elen > 0 ? exp : NULL, elen > 0 ? (size_t)elen : 0,
			      slen > 0 ? sep : NULL, slen > 0 ? (size_t)slen : 0);
		if (ir == NULL)
			smtpd_reply(s, "334 ");
		else
			smtpd_scram_line(s, ir);
		return;
	}
	s->sasl = sasl_new(mech);
	smtpd_auth_step(s, ir);
}
