/*
 * pop3_auth: logging in — USER/PASS (RFC 1939 §7) and AUTH (RFC 5034)
 * with the SASL mechanisms of src/auth, the password check on auth's
 * terms (its delays, its throttling, its log line for each failure), and
 * what a successful check leads to: the maildrop lock, the per-user
 * address limit, and the INBOX opened as the maildrop.
 *
 * Plaintext rule: where [auth] plaintext does not allow a password on
 * this connection (no TLS, not loopback), USER, PASS and AUTH PLAIN/LOGIN
 * answer "-ERR [AUTH] Plaintext authentication disallowed ...", and CAPA
 * lists neither USER nor SASL (RFC 2595 §4). [AUTH] is the RFC 3206 code
 * that fits: the client must change how it authenticates (use STLS),
 * while [SYS/PERM] would tell it the server is broken.
 * Public (module-internal): pop3_auth_user, pop3_auth_pass,
 * pop3_auth_auth, pop3_auth_sasl_line, pop3_auth_plaintext_ok.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "auth/sasl.h"
#include "conf/config.h"
#include "pop3/pop3_int.h"
#include "util/conn.h"
#include "util/log.h"
#include "util/worker.h"
#include "util/xalloc.h"

#define POP3_NO_PLAINTEXT "[AUTH] Plaintext authentication disallowed on non-secure connections"

int
pop3_auth_plaintext_ok(const struct pop3_session *s)
{
	return auth_plaintext_ok(s->srv->d.auth, s->tls, conn_sockaddr(s->c, NULL));
}

void
pop3_auth_user(struct pop3_session *s, const char *arg)
{
	if (!pop3_auth_plaintext_ok(s)) {
		pop3_error(s, POP3_NO_PLAINTEXT);
		return;
	}
	if (*arg == '\0' || strlen(arg) > POP3_USER_MAX) {
		pop3_error(s, "Syntax: USER name");
		return;
	}
	free(s->user);
	s->user = xstrdup(arg);
	/* the same answer whether or not the user exists */
	pop3_reply(s, "+OK");
}

struct pop3_load {
	struct pop3_session *s;
	struct store *st;
	char *user;
	struct pop3_maildrop *md;
	char err[256];
};

static void
pop3_auth_load_run(void *arg)
{
	struct pop3_load *l = arg;
	const char *e = NULL;

	if ((l->md = pop3_maildrop_open(l->st, l->user, &e)) == NULL)
		snprintf(l->err, sizeof(l->err), "%s", e ? e : "failed");
}

static void
pop3_auth_load_done(void *arg)
{
	struct pop3_load *l = arg;
	struct pop3_session *s = l->s;
	struct pop3_maildrop *md = l->md;
	long long octets = 0;

	s->loading = 0;
	if (pop3_session_resume(s)) {
		pop3_maildrop_close(&md);
		goto out;
	}
	if (md == NULL) {
		log_err(s->id, "event=maildrop_failed service=pop3 user=%s session=%s error=%s",
			log_q(s->user), s->id, log_q(l->err));
		pop3_reply(s, "-ERR [SYS/TEMP] Cannot open the mailbox, try again later");
		pop3_session_forget_login(s);
		pop3_session_continue(s);
		goto out;
	}
	s->md = md;
	pop3_session_logged_in(s);
	for (size_t i = 0; i < md->n; i++)
		octets += md->msgs[i].size;
	log_msg(s->id, "event=login service=pop3 user=%s client=[%s] session=%s method=%s tls=%s "
		"messages=%zu", log_q(s->user), s->client, s->id, s->method ? s->method : "USER",
		s->tls ? "yes" : "no", md->n);
	pop3_reply(s, "+OK Logged in, %zu messages (%lld octets)", md->n, octets);
	pop3_session_continue(s);
out:
	free(l->user);
	free(l);
}

/* The check said yes: lock the maildrop (the session counts as holding
 * it from now on) and open it on a worker. 1 when a job was started. */
static int
pop3_auth_login(struct pop3_session *s, const char *user)
{
	struct pop3_load *l;

	if (pop3_server_locked(s->srv, s, user)) {
		log_msg(s->id, "event=reject service=pop3 user=%s client=[%s] session=%s "
			"reason=maildrop_in_use", log_q(user), s->client, s->id);
		pop3_reply(s, "-ERR [IN-USE] Mailbox is locked by another POP3 session");
		pop3_session_forget_login(s);
		return 0;
	}
	free(s->user);
	s->user = xstrdup(user);
	s->loading = 1;
	l = xcalloc(1, sizeof(*l));
	l->s = s;
	l->st = s->srv->d.store;
	l->user = xstrdup(user);
	pop3_session_pause(s);
	worker_submit(s->srv->d.pool, pop3_auth_load_run, pop3_auth_load_done, l);
	return 1;
}

static void
pop3_auth_done(void *arg, enum auth_result res, const char *user)
{
	struct pop3_session *s = arg;

	s->authing = 0;
	if (pop3_session_resume(s))
		return;
	switch (res) {
	case AUTH_OK:
		if (pop3_auth_login(s, user))
			return;   /* pop3_auth_load_done goes on */
		break;
	case AUTH_FAILED:
		pop3_error(s, "[AUTH] Authentication failed");
		pop3_session_forget_login(s);
		break;
	case AUTH_THROTTLED:
		pop3_error(s, "[AUTH] too many failures, try later");
		pop3_session_forget_login(s);
		break;
	case AUTH_TEMPFAIL:
		pop3_reply(s, "-ERR [SYS/TEMP] Temporary authentication failure, try again later");
		pop3_session_forget_login(s);
		break;
	}
	pop3_session_continue(s);
}

/* The password check, on auth's terms; the session waits for it. */
static void
pop3_auth_start(struct pop3_session *s, const char *user, const char *password)
{
	unsigned limit = pop3_cf(s)->pop3_max_per_user_ip;
	char *login = xstrdup(user);

	if (limit > 0 && pop3_server_user_ip(s->srv, s, login) >= limit) {
		log_msg(s->id, "event=reject service=pop3 user=%s client=[%s] session=%s "
			"reason=too_many_sessions_per_user_ip", log_q(login), s->client, s->id);
		pop3_reply(s, "-ERR [IN-USE] Too many sessions for this user from your address");
		free(login);
		pop3_session_forget_login(s);
		return;
	}
	free(s->login);
	s->login = login;
	s->authing = 1;
	pop3_session_pause(s);
	auth_check(s->srv->d.auth, "pop3", conn_sockaddr(s->c, NULL), s->id, login, password,
		   pop3_auth_done, s);
	/* auth took its own copies; user and password may live in the sasl */
	sasl_free(&s->sasl);
}

void
pop3_auth_pass(struct pop3_session *s, const char *arg)
{
	if (s->user == NULL) {
		pop3_error(s, "USER first");
		return;
	}
	if (!pop3_auth_plaintext_ok(s)) {
		pop3_error(s, POP3_NO_PLAINTEXT);
		return;
	}
	s->method = "USER";
	pop3_auth_start(s, s->user, arg);
}

/* One step of the exchange with the client's data (NULL: none yet). */
static void
pop3_auth_step(struct pop3_session *s, const char *in)
{
	const char *challenge, *e;

	switch (sasl_step(s->sasl, in, &challenge, &e)) {
	case SASL_CONTINUE:
		pop3_reply(s, "+ %s", challenge);
		break;
	case SASL_DONE:
		pop3_auth_start(s, sasl_user(s->sasl), sasl_password(s->sasl));
		break;
	case SASL_FAIL:
		sasl_free(&s->sasl);
		pop3_error(s, "[AUTH] %s", e);
		break;
	}
}

/* AUTH without a mechanism lists them (the pre-RFC 5034 form some
 * clients still send to probe). */
static void
pop3_auth_list(struct pop3_session *s)
{
	char mechs[128];

	pop3_reply(s, "+OK");
	if (pop3_auth_plaintext_ok(s)) {
		snprintf(mechs, sizeof(mechs), "%s", sasl_mech_list());
		for (char *m = strtok(mechs, " "); m != NULL; m = strtok(NULL, " "))
			pop3_reply(s, "%s", m);
	}
	pop3_reply(s, ".");
}

void
pop3_auth_auth(struct pop3_session *s, const char *arg)
{
	static const char *const names[] = { "PLAIN", "LOGIN" };
	size_t n = strcspn(arg, " ");
	char mech[32];
	const char *ir = NULL;

	if (*arg == '\0') {
		pop3_auth_list(s);
		return;
	}
	if (n >= sizeof(mech) || (snprintf(mech, sizeof(mech), "%.*s", (int)n, arg),
				   !sasl_mech_known(mech))) {
		pop3_error(s, "Unsupported authentication mechanism");
		return;
	}
	if (!pop3_auth_plaintext_ok(s)) {
		pop3_error(s, POP3_NO_PLAINTEXT);
		return;
	}
	if (arg[n] == ' ')
		ir = arg + n + 1;
	s->method = "SASL";
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(mech, names[i]) == 0)
			s->method = names[i];
	s->sasl = sasl_new(mech);
	pop3_auth_step(s, ir);
}

void
pop3_auth_sasl_line(struct pop3_session *s, const char *line)
{
	if (strcmp(line, "*") == 0) {
		sasl_free(&s->sasl);
		pop3_error(s, "Authentication cancelled");
		return;
	}
	pop3_auth_step(s, line);
}
