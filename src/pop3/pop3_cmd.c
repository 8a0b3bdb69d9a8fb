/*
 * pop3_cmd: the POP3 command table and the small commands. A row names
 * the states a command is allowed in (AUTHORIZATION, TRANSACTION) and
 * whether it takes an argument; those rules are checked here, once. The
 * login commands are in pop3_auth.c, the maildrop's in pop3_mail.c.
 * Public (module-internal): pop3_cmd_dispatch, pop3_cmd_sasl_line.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "auth/sasl.h"
#include "pop3/pop3_int.h"
#include "util/conn.h"

enum {
	S_AUTH = 1,       /* AUTHORIZATION */
	S_TRANS = 2,      /* TRANSACTION */
	F_NOARG = 4,      /* takes no argument */
	F_RAW = 8,        /* the argument is the rest of the line as sent (PASS) */
	F_FREE = 16       /* a refusal that is no protocol error (APOP, LAST) */
};

struct pop3_cmd {
	const char *verb;
	void (*fn)(struct pop3_session *s, const char *arg);
	int flags;
};

/* RFC 2449 §6: what this server does, in the state the session is in. USER
 * and SASL PLAIN/LOGIN only where a password may be sent now (RFC 2595
 * §4: a client must not see them when it would be refused), STLS only
 * before TLS and before login. */
static void
cmd_capa(struct pop3_session *s, const char *arg)
{
	int auth = s->state == POP3_AUTHORIZATION;

	pop3_reply(s, "+OK Capability list follows");
	pop3_reply(s, "TOP");
	if (auth && pop3_auth_plaintext_ok(s))
		pop3_reply(s, "USER");
	pop3_reply(s, "UIDL");
	pop3_reply(s, "RESP-CODES");
	pop3_reply(s, "PIPELINING");
	pop3_reply(s, "AUTH-RESP-CODE");
	if (auth && pop3_auth_plaintext_ok(s))
		pop3_reply(s, "SASL %s", sasl_mech_list());
	if (auth && !s->tls && pop3_tls(s) != NULL)
		pop3_reply(s, "STLS");
	/* nothing here ever deletes a message the client did not DELE */
	pop3_reply(s, "EXPIRE NEVER");
	pop3_reply(s, "IMPLEMENTATION tandem");
	pop3_reply(s, ".");
}

static void
cmd_quit(struct pop3_session *s, const char *arg)
{
	if (s->state == POP3_TRANSACTION) {
		pop3_mail_quit(s);
		return;
	}
	pop3_session_kill(s, "+OK Bye\r\n");
}

static void
cmd_noop(struct pop3_session *s, const char *arg)
{
	pop3_reply(s, "+OK");
}

/* RFC 2595 §4: the switch to TLS; what the client sent behind STLS in the
 * clear is thrown away by the connection layer, and what we knew of the
 * client (a USER name) is forgotten. */
static void
cmd_stls(struct pop3_session *s, const char *arg)
{
	if (s->tls) {
		pop3_error(s, "Command not permitted when TLS active");
		return;
	}
	if (pop3_tls(s) == NULL) {
		pop3_error(s, "STLS not available");
		return;
	}
	pop3_reply(s, "+OK Begin TLS negotiation now");
	pop3_session_forget_login(s);
	conn_starttls(s->c, pop3_tls(s));
	s->tls = 1;
}

static void
cmd_apop(struct pop3_session *s, const char *arg)
{
	/* APOP needs the password in the clear on the server; we keep hashes */
	pop3_reply(s, "-ERR APOP is not supported; use USER/PASS or AUTH");
}

static void
cmd_last(struct pop3_session *s, const char *arg)
{
	pop3_reply(s, "-ERR LAST is not supported (RFC 1939 removed it)");
}

static const struct pop3_cmd pop3_cmds[] = {
	{ "CAPA", cmd_capa, S_AUTH | S_TRANS | F_NOARG },
	{ "QUIT", cmd_quit, S_AUTH | S_TRANS | F_NOARG },
	{ "STLS", cmd_stls, S_AUTH | F_NOARG },
	{ "USER", pop3_auth_user, S_AUTH },
	{ "PASS", pop3_auth_pass, S_AUTH | F_RAW },
	{ "AUTH", pop3_auth_auth, S_AUTH },
	{ "APOP", cmd_apop, S_AUTH | F_FREE },
	{ "STAT", pop3_mail_stat, S_TRANS | F_NOARG },
	{ "LIST", pop3_mail_list, S_TRANS },
	{ "UIDL", pop3_mail_uidl, S_TRANS },
	{ "RETR", pop3_mail_retr, S_TRANS },
	{ "TOP", pop3_mail_top, S_TRANS },
	{ "DELE", pop3_mail_dele, S_TRANS },
	{ "RSET", pop3_mail_rset, S_TRANS | F_NOARG },
	{ "NOOP", cmd_noop, S_TRANS | F_NOARG },
	{ "LAST", cmd_last, S_TRANS | F_NOARG | F_FREE },
};

static const struct pop3_cmd *
pop3_cmd_find(const char *verb, size_t n)
{
	for (size_t i = 0; i < sizeof(pop3_cmds) / sizeof(pop3_cmds[0]); i++)
		if (strlen(pop3_cmds[i].verb) == n && strncasecmp(pop3_cmds[i].verb, verb, n) == 0)
			return &pop3_cmds[i];
	return NULL;
}

static int
pop3_cmd_check(struct pop3_session *s, const struct pop3_cmd *c, const char *arg)
{
	int state = s->state == POP3_AUTHORIZATION ? S_AUTH : S_TRANS;

	if (!(c->flags & state)) {
		if (c->flags & F_FREE)
			c->fn(s, arg);
		else
			pop3_error(s, state == S_AUTH ? "Not logged in" : "Already logged in");
		return -1;
	}
	if ((c->flags & F_NOARG) && *arg != '\0') {
		pop3_error(s, "%s takes no argument", c->verb);
		return -1;
	}
	return 0;
}

void
pop3_cmd_dispatch(struct pop3_session *s, char *line, size_t len)
{
	const struct pop3_cmd *c;
	size_t n = strcspn(line, " ");
	char *arg;

	if (memchr(line, '\0', len) != NULL) {
		pop3_error(s, "NUL character in command");
		return;
	}
	if (n == 0) {
		pop3_error(s, "Empty command");
		return;
	}
	if ((c = pop3_cmd_find(line, n)) == NULL) {
		pop3_error(s, "Unknown command");
		return;
	}
	arg = line + n + (line[n] == ' ');
	if (!(c->flags & F_RAW)) {
		/* some clients send a space or tab behind the last argument */
		size_t k = strlen(arg);

		while (k > 0 && isspace((unsigned char)arg[k - 1]))
			arg[--k] = '\0';
	}
	if (pop3_cmd_check(s, c, arg) == 0)
		c->fn(s, arg);
}

/* A line of an AUTH exchange (RFC 5034 §4): the client's base64 answer to
 * our challenge, or "*" to cancel. */
void
pop3_cmd_sasl_line(struct pop3_session *s, char *line, size_t len)
{
	if (memchr(line, '\0', len) != NULL) {
		sasl_free(&s->sasl);
		pop3_error(s, "[AUTH] NUL character in SASL response");
		return;
	}
	pop3_auth_sasl_line(s, line);
}
