/*
 * imap_cmd_auth: the commands of any state and of the login — CAPABILITY,
 * NOOP, LOGOUT, ID, ENABLE, NAMESPACE, STARTTLS, LOGIN and AUTHENTICATE
 * (SASL PLAIN and LOGIN with SASL-IR, RFC 4959). A password is taken only
 * where [auth] plaintext allows ([PRIVACYREQUIRED] otherwise); the check
 * runs through auth_check with the connection paused. A login over
 * [imap] max_connections_per_user_ip gets NO [LIMIT].
 * Public (module-internal): imap_cmd_capability, imap_cmd_noop,
 * imap_cmd_logout, imap_cmd_id, imap_cmd_enable, imap_cmd_namespace,
 * imap_cmd_starttls, imap_cmd_login, imap_cmd_authenticate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "auth/sasl.h"
#include "conf/config.h"
#include "imap/imap_int.h"
#include "store/store.h"
#include "util/conn.h"
#include "util/log.h"
#include "util/xalloc.h"

void
imap_cmd_capability(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	imap_printf(s, "* CAPABILITY %s\r\n", imap_capabilities(s));
	imap_done(s, "OK", "CAPABILITY completed");
}

void
imap_cmd_noop(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	imap_done(s, "OK", "NOOP completed");
}

void
imap_cmd_logout(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	imap_printf(s, "* BYE Logging out\r\n");
	imap_done(s, "OK", "LOGOUT completed");
	imap_session_kill(s, "");
}

/* RFC 2971: what the client says of itself is not used. */
void
imap_cmd_id(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	if (n != 1 || (args[0].type != IMAP_ARG_NIL && args[0].type != IMAP_ARG_LIST)) {
		imap_done(s, "BAD", "Syntax: ID (field value ...) or ID NIL");
		return;
	}
	imap_printf(s, "* ID (\"name\" \"tandem\")\r\n");
	imap_done(s, "OK", "ID completed");
}

/* RFC 5161: nothing we offer needs enabling (no CONDSTORE, UTF8=ACCEPT yet). */
void
imap_cmd_enable(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	if (n < 1) {
		imap_done(s, "BAD", "Syntax: ENABLE capability ...");
		return;
	}
	imap_printf(s, "* ENABLED\r\n");
	imap_done(s, "OK", "ENABLE completed");
}

void
imap_cmd_namespace(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	imap_printf(s, "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
	imap_done(s, "OK", "NAMESPACE completed");
}

void
imap_cmd_starttls(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	if (s->tls) {
		imap_done(s, "BAD", "TLS is already active");
		return;
	}
	if (imap_tls(s) == NULL) {
		imap_done(s, "NO", "STARTTLS is not available");
		return;
	}
	imap_done(s, "OK", "Begin TLS negotiation now");
	/* every byte the client sent after the command in the clear is thrown
	 * away (CVE-2021-33515): the input by conn, the parser's state here */
	conn_starttls(s->c, imap_tls(s));
	imap_parser_reset(s->parser);
	s->tls = 1;
}

static int
imap_plaintext_ok(struct imap_session *s)
{
	socklen_t len;

	return auth_plaintext_ok(s->srv->d.auth, s->tls, conn_sockaddr(s->c, &len));
}

/* Sessions of user from this client address already logged in, on the
 * imap and the imaps listeners together. */
static unsigned
imap_user_ip_sessions(struct imap_session *s, const char *user)
{
	unsigned n = 0;

	for (struct imap_server *srv = imap_server_first(); srv != NULL; srv = srv->next)
		for (struct imap_session *o = srv->sessions; o != NULL; o = o->next)
			if (o != s && o->user != NULL && !o->closing && strcasecmp(o->user, user) == 0 &&
			    strcmp(o->client, s->client) == 0)
				n++;
	return n;
}

static void
imap_login_ok(struct imap_session *s, const char *user)
{
	const struct config *cf = imap_cf(s);
	char tls[160];
	const char *err = NULL;

	if (cf->imap_max_per_user_ip > 0 && imap_user_ip_sessions(s, user) >= cf->imap_max_per_user_ip) {
		log_msg(s->id, "event=reject service=imap user=%s client=[%s] session=%s "
			"reason=too_many_sessions_per_user_ip", log_addr(user), s->client, s->id);
		imap_done(s, "NO", "[LIMIT] Too many sessions of this user from your address");
		return;
	}
	if ((s->acct = store_account_open(s->srv->d.store, user, &err)) == NULL) {
		log_err(s->id, "event=store_failed service=imap user=%s error=%s", log_addr(user),
			log_q(err ? err : "unknown"));
		imap_done(s, "NO", "[UNAVAILABLE] The mailbox cannot be opened now");
		return;
	}
	s->user = xstrdup(user);
	s->state = IMAP_AUTH;
	s->logged = 1;
	conn_set_timeouts(s->c, cf->imap_timeout, 0);
	log_msg(s->id, "event=login service=imap user=%s client=[%s] session=%s mech=%s tls=%s%s%s",
		log_addr(user), s->client, s->id, s->sasl_mech ? s->sasl_mech : "LOGIN",
		s->tls ? "yes" : "no", conn_tls_info(s->c, tls, sizeof(tls)) ? " " : "",
		conn_tls_info(s->c, tls, sizeof(tls)) ? tls : "");
	imap_done(s, "OK", "[CAPABILITY %s] Logged in", imap_capabilities(s));
}

static void
imap_login_done(void *arg, enum auth_result res, const char *user)
{
	struct imap_session *s = arg;

	if (imap_job_resume(s))
		return;
	s->in_auth = 0;
	switch (res) {
	case AUTH_OK:
		imap_login_ok(s, user);
		break;
	case AUTH_FAILED:
		imap_done(s, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
		break;
	case AUTH_THROTTLED:
		imap_done(s, "NO", "[UNAVAILABLE] Too many failed logins, try again later");
		break;
	case AUTH_TEMPFAIL:
		imap_done(s, "NO", "[UNAVAILABLE] Temporary authentication failure, try again later");
		break;
	}
	imap_session_process(s);
}

static void
imap_login_check(struct imap_session *s, const char *user, const char *password)
{
	socklen_t len;

	s->busy = 1;
	s->in_auth = 1;
	conn_pause(s->c);
	auth_check(s->srv->d.auth, "imap", conn_sockaddr(s->c, &len), s->id, user, password,
		   imap_login_done, s);
}

void
imap_cmd_login(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	const char *user, *password;

	if (n != 2 || !imap_arg_astring(&args[0], &user) || !imap_arg_astring(&args[1], &password)) {
		imap_done(s, "BAD", "Syntax: LOGIN user password");
		return;
	}
	if (!imap_plaintext_ok(s)) {
		imap_done(s, "NO", "[PRIVACYREQUIRED] Plaintext login is not allowed without TLS");
		return;
	}
	free(s->sasl_mech);
	s->sasl_mech = xstrdup("LOGIN");
	imap_login_check(s, user, password);
}

static int imap_auth_cont(struct imap_session *s);

static void
imap_auth_step(struct imap_session *s, const char *in)
{
	const char *challenge = NULL, *err = NULL;

	switch (sasl_step(s->sasl, in, &challenge, &err)) {
	case SASL_CONTINUE:
		imap_printf(s, "+ %s\r\n", challenge ? challenge : "");
		s->cont = imap_auth_cont;
		return;
	case SASL_DONE:
		s->cont = NULL;
		imap_login_check(s, sasl_user(s->sasl), sasl_password(s->sasl));
		sasl_free(&s->sasl);
		return;
	case SASL_FAIL:
		sasl_free(&s->sasl);
		imap_done(s, "BAD", "%s", err ? err : "Invalid SASL data");
		return;
	}
}

/* The client's answer to a challenge: one base64 line, or "*" to cancel. */
static int
imap_auth_cont(struct imap_session *s)
{
	char line[4096];
	size_t len;
	int rc = conn_read_line(s->c, line, sizeof(line), &len);

	if (rc == 0)
		return 0;
	s->cont = NULL;
	if (rc < 0) {
		sasl_free(&s->sasl);
		imap_done(s, "BAD", "SASL line too long");
	} else if (strcmp(line, "*") == 0) {
		sasl_free(&s->sasl);
		imap_done(s, "BAD", "Authentication cancelled");
	} else {
		imap_auth_step(s, line);
	}
	explicit_bzero(line, sizeof(line));
	return 1;
}

void
imap_cmd_authenticate(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	const char *mech, *ir = NULL;

	if (n < 1 || n > 2 || !imap_arg_atom(&args[0], &mech) ||
	    (n == 2 && !imap_arg_astring(&args[1], &ir))) {
		imap_done(s, "BAD", "Syntax: AUTHENTICATE mechanism [initial-response]");
		return;
	}
	if (!sasl_mech_known(mech)) {
		imap_done(s, "NO", "Unsupported authentication mechanism");
		return;
	}
	if (!imap_plaintext_ok(s)) {
		imap_done(s, "NO", "[PRIVACYREQUIRED] Plaintext authentication is not allowed without TLS");
		return;
	}
	free(s->sasl_mech);
	s->sasl_mech = xstrdup(mech);
	for (char *p = s->sasl_mech; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	sasl_free(&s->sasl);
	s->sasl = sasl_new(mech);
	imap_auth_step(s, ir);
}
