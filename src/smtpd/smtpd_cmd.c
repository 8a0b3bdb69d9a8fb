/*
 * smtpd_cmd: the command table of the SMTP server and its handlers
 * (see smtpd_cmd.h). Replies carry RFC 3463 enhanced status codes.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/statvfs.h>
#include <time.h>

#include "auth/sasl.h"
#include "directory/directory.h"
#include "mail/addr.h"
#include "mail/header.h"
#include "queue/queue.h"
#include "smtpd/smtpd_cmd.h"
#include "smtpd/smtpd_int.h"
#include "smtpd/smtpd_policy.h"
#include "smtp/smtp_parse.h"
#include "conf/config.h"
#include "util/conn.h"
#include "util/log.h"
#include "util/worker.h"
#include "util/xalloc.h"

enum {
	F_HELO = 1,      /* needs EHLO/HELO first */
	F_MAIL = 2,      /* needs MAIL first */
	F_NOMAIL = 4,    /* not inside a transaction */
	F_NOARG = 8,     /* takes no argument */
	F_GROUP = 16     /* may be followed by more commands in one group (RFC 2920) */
};

struct smtpd_cmd {
	const char *verb;
	void (*fn)(struct smtpd_session *s, const char *arg);
	int flags;
};

/* Refuse a command: one log line (with what we know of the client) and
 * the reply. Counts toward [smtp] max_errors unless it is a refusal the
 * client is entitled to work with (452 for recipients over the limit). */
static void
smtpd_refuse(struct smtpd_session *s, const char *cmd, const char *code, const char *text,
	     const char *detail, int is_error)
{
	log_msg(s->id, "event=reject cmd=%s client=[%s]%s%s%s%s code=%.3s reason=%s%s%s", cmd,
		s->client, s->helo ? " helo=" : "", s->helo ? log_q(s->helo) : "",
		s->sender ? " from=" : "", s->sender ? log_addr(s->sender) : "", code, log_q(text),
		detail ? " detail=" : "", detail ? log_q(detail) : "");
	smtpd_reply(s, "%s %s", code, text);
	if (is_error)
		s->errors++;
}

void
smtpd_reject(struct smtpd_session *s, const char *cmd, const char *code, const char *text,
	     const char *detail)
{
	smtpd_refuse(s, cmd, code, text, detail, 1);
}

/* An EHLO/HELO argument we will repeat in replies, logs and Received:
 * printable ASCII (or UTF-8), no controls, no longer than a domain. */
static int
smtpd_helo_ok(const char *arg)
{
	size_t n = strcspn(arg, " ");

	if (n == 0 || n > 255)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)arg[i] < 0x21 || arg[i] == 0x7f)
			return 0;
	return 1;
}

static int
smtpd_offers_etrn(const struct smtpd_session *s)
{
	return s->srv->d.policy->etrn && smtpd_cf(s)->relay_domains.n > 0 && s->srv->d.etrn != NULL;
}

static void
cmd_helo_common(struct smtpd_session *s, const char *arg, int esmtp)
{
	const struct config *cf = smtpd_cf(s);

	if (*arg == '\0') {
		smtpd_reject(s, esmtp ? "EHLO" : "HELO", "501 5.5.4", "Syntax: EHLO hostname", NULL);
		return;
	}
	if (!smtpd_helo_ok(arg)) {
		smtpd_reject(s, esmtp ? "EHLO" : "HELO", "501 5.5.2",
			     "Invalid domain name (control characters or longer than 255 octets)", arg);
		return;
	}
	smtpd_session_reset(s);
	free(s->helo);
	s->helo = xstrndup(arg, strcspn(arg, " "));
	s->esmtp = esmtp;
	if (!esmtp) {
		smtpd_reply(s, "250 %s", cf->hostname);
		return;
	}
	smtpd_reply(s, "250-%s Hello %s [%s]", cf->hostname, s->helo, s->client);
	smtpd_reply(s, "250-PIPELINING");
	smtpd_reply(s, "250-SIZE %llu", cf->max_message_size);
	smtpd_reply(s, "250-8BITMIME");
	smtpd_reply(s, "250-ENHANCEDSTATUSCODES");
	if (smtpd_tls(s) && !s->tls)
		smtpd_reply(s, "250-STARTTLS");
	if (smtpd_offers_etrn(s))
		smtpd_reply(s, "250-ETRN");
	if (smtpd_auth_offered(s))
		smtpd_reply(s, "250-AUTH %s", smtpd_auth_mechs(s));
	smtpd_reply(s, "250 SMTPUTF8");
}

static void
cmd_ehlo(struct smtpd_session *s, const char *arg)
{
	cmd_helo_common(s, arg, 1);
}

static void
cmd_helo(struct smtpd_session *s, const char *arg)
{
	cmd_helo_common(s, arg, 0);
}

/* 452 at MAIL when the queue's filesystem is short of space. */
static int
smtpd_space_ok(struct smtpd_session *s, unsigned long long need)
{
	const struct config *cf = smtpd_cf(s);
	struct statvfs sv;

	if (statvfs(queue_dir(s->srv->d.queue), &sv) != 0)
		return 1;
	return (unsigned long long)sv.f_bavail * sv.f_frsize >= cf->min_free + need + need / 2;
}

static int
smtpd_mail_params(struct smtpd_session *s, const struct smtp_mailrcpt *mr, unsigned long long *size_r)
{
	const struct config *cf = smtpd_cf(s);

	*size_r = 0;
	for (int i = 0; i < mr->nparams; i++) {
		const struct smtp_param *p = &mr->params[i];

		if (strcmp(p->key, "SIZE") == 0) {
			char *end;
			errno = 0;
			*size_r = strtoull(p->value, &end, 10);
			if (errno || *end != '\0' || p->value[0] == '\0' || !isdigit((unsigned char)p->value[0])) {
				smtpd_reject(s, "MAIL", "501 5.5.4", "Bad SIZE parameter", p->value);
				return -1;
			}
			if (*size_r > cf->max_message_size) {
				smtpd_reject(s, "MAIL", "552 5.3.4", "Message size exceeds fixed maximum message size", p->value);
				return -1;
			}
		} else if (strcmp(p->key, "BODY") == 0) {
			if (strcasecmp(p->value, "8BITMIME") == 0)
				s->body8 = 1;
			else if (strcasecmp(p->value, "BINARYMIME") == 0) {
				/* RFC 3030: it needs CHUNKING, which we do not offer */
				smtpd_reject(s, "MAIL", "504 5.5.4", "BODY=BINARYMIME is not supported", p->value);
				return -1;
			} else if (strcasecmp(p->value, "7BIT") != 0) {
				smtpd_reject(s, "MAIL", "501 5.5.4", "Unsupported BODY type", p->value);
				return -1;
			}
		} else if (strcmp(p->key, "SMTPUTF8") == 0 && p->value[0] == '\0') {
			s->smtputf8 = 1;
		} else if (strcmp(p->key, "AUTH") == 0 && s->srv->d.policy->auth) {
			/* RFC 4954 5: who submitted it, as the client saw it; the
			 * session's own login is what counts here */
		} else {
			smtpd_reject(s, "MAIL", "555 5.5.4", "Unsupported MAIL parameter", p->key);
			return -1;
		}
	}
	return 0;
}

static const char *
smtpd_addr_reply(enum addr_err e, int is_mail)
{
	switch (e) {
	case ADDR_ELOCAL_LONG:
	case ADDR_EDOMAIN_LONG:
	case ADDR_EPATH_LONG:
		return "501 5.5.2";
	case ADDR_EUTF8:
	case ADDR_EBADUTF8:
		return "553 5.6.7";
	default:
		return is_mail ? "501 5.1.7" : "501 5.1.3";
	}
}

/* --- MAIL: on submission the sender check runs on a worker ---------------- */

struct smtpd_mail_job {
	struct smtpd_session *s;
	char user[320];
	char sender[320];
	unsigned long long size;
	long long day;                       /* UTC days since 1970 */
	long long max_msgs, max_rcpts;       /* [submission] defaults in; effective out */
	long long day_msgs, day_rcpts;       /* out: what the user submitted today */
	struct smtpd_verdict v;
};

/* The user's daily limits and what they sent today (submission), after
 * the sender check said yes. */
static void
smtpd_mail_limits(struct directory *dir, struct smtpd_mail_job *j)
{
	long long m, r;

	if (directory_user_limits_get(dir, j->user, &m, &r) != 0 ||
	    directory_send_usage(dir, j->user, j->day, &j->day_msgs, &j->day_rcpts) != 0) {
		j->v.ok = 0;
		snprintf(j->v.code, sizeof(j->v.code), "451 4.3.0");
		snprintf(j->v.text, sizeof(j->v.text), "Temporary lookup failure");
		snprintf(j->v.detail, sizeof(j->v.detail), "%s", directory_error(dir));
		return;
	}
	if (m >= 0)
		j->max_msgs = m;
	if (r >= 0)
		j->max_rcpts = r;
	if (j->max_msgs > 0 && j->day_msgs >= j->max_msgs) {
		j->v.ok = 0;
		snprintf(j->v.code, sizeof(j->v.code), "451 4.7.1");
		snprintf(j->v.text, sizeof(j->v.text), "Daily limit of %lld messages reached, try "
			 "again tomorrow", j->max_msgs);
		snprintf(j->v.detail, sizeof(j->v.detail), "%s", j->user);
	}
}

static void
smtpd_mail_accept(struct smtpd_session *s, const char *sender, unsigned long long size)
{
	s->sender = xstrdup(sender);
	s->mail_size = size;
	s->in_mail = 1;
	s->junk = 0;
	smtpd_reply(s, "250 2.1.0 Ok");
}

static void
smtpd_mail_work(void *arg)
{
	struct smtpd_mail_job *j = arg;

	j->s->srv->d.policy->sender(j->s->srv->d.dir, j->user, j->sender, &j->v);
	if (j->v.ok)
		smtpd_mail_limits(j->s->srv->d.dir, j);
}

static void
smtpd_mail_done(void *arg)
{
	struct smtpd_mail_job *j = arg;
	struct smtpd_session *s = j->s;

	if (smtpd_session_resume(s)) {
		free(j);
		return;   /* the session went away meanwhile */
	}
	if (j->v.ok) {
		s->max_rcpts_day = j->max_rcpts;
		s->rcpts_today = j->day_rcpts;
		smtpd_mail_accept(s, j->sender, j->size);
	} else {
		s->body8 = s->smtputf8 = 0;
		smtpd_reject(s, "MAIL", j->v.code, j->v.text, j->v.detail[0] ? j->v.detail : NULL);
	}
	free(j);
	smtpd_session_continue(s);
}

static void
cmd_mail(struct smtpd_session *s, const char *arg)
{
	struct smtp_mailrcpt mr;
	enum addr_err ae;
	enum smtp_mr_err me;
	unsigned long long size;
	int utf8 = smtp_args_have_smtputf8(arg);

	if (s->srv->d.policy->auth && s->user == NULL) {
		smtpd_reject(s, "MAIL", "530 5.7.0", "Authentication required", NULL);
		return;
	}
	me = smtp_parse_mailrcpt(arg, "FROM:", 1, utf8, &mr, &ae);
	if (me == SMTP_MR_EPREFIX) {
		smtpd_reject(s, "MAIL", "501 5.5.4", "Syntax: MAIL FROM:<address>", arg);
		return;
	}
	if (me == SMTP_MR_EADDR) {
		smtpd_reject(s, "MAIL", smtpd_addr_reply(ae, 1), addr_error_str(ae), arg);
		return;
	}
	if (me == SMTP_MR_EPARAM) {
		smtpd_reject(s, "MAIL", "501 5.5.4", "Syntax error in parameters", arg);
		return;
	}
	s->body8 = s->smtputf8 = 0;
	if (smtpd_mail_params(s, &mr, &size) != 0)
		return;
	if (!smtpd_space_ok(s, size)) {
		smtpd_reject(s, "MAIL", "452 4.3.1", "Insufficient system storage", NULL);
		return;
	}
	if (s->srv->d.policy->sender != NULL && s->user != NULL) {
		struct smtpd_mail_job *j = xcalloc(1, sizeof(*j));

		j->s = s;
		snprintf(j->user, sizeof(j->user), "%s", s->user);
		snprintf(j->sender, sizeof(j->sender), "%s", mr.addr);
		j->size = size;
		j->day = directory_today();
		j->max_msgs = smtpd_cf(s)->submission_max_messages;
		j->max_rcpts = smtpd_cf(s)->submission_max_recipients;
		smtpd_session_pause(s);
		worker_submit(s->srv->d.pool, smtpd_mail_work, smtpd_mail_done, j);
		return;
	}
	smtpd_mail_accept(s, mr.addr, size);
}

/* --- RCPT: the lookup runs on a worker, the session paused ------------- */

struct smtpd_rcpt_job {
	struct smtpd_session *s;
	struct smtpd_rcpt_query q;
	struct smtpd_verdict v;
};

static void
smtpd_rcpt_work(void *arg)
{
	struct smtpd_rcpt_job *j = arg;

	j->s->srv->d.policy->rcpt(j->s->srv->d.dir, &j->q, &j->v);
}

static void
smtpd_rcpt_done(void *arg)
{
	struct smtpd_rcpt_job *j = arg;
	struct smtpd_session *s = j->s;

	if (smtpd_session_resume(s)) {
		free(j);
		return;   /* the session went away meanwhile */
	}
	if (!j->v.ok) {
		smtpd_reject(s, "RCPT", j->v.code, j->v.text, j->v.detail[0] ? j->v.detail : NULL);
	} else {
		int dup = 0;

		s->junk = 0;
		for (int i = 0; i < s->nrcpt && !dup; i++)
			dup = strcmp(s->rcpt[i], j->v.addr) == 0;
		if (!dup) {
			s->rcpt = xrealloc(s->rcpt, (s->nrcpt + 1) * sizeof(char *));
			s->rcpt[s->nrcpt++] = xstrdup(j->v.addr);
		}
		smtpd_reply(s, "250 2.1.5 Ok");
	}
	free(j);
	smtpd_session_continue(s);
}

static void
cmd_rcpt(struct smtpd_session *s, const char *arg)
{
	const struct config *cf = smtpd_cf(s);
	struct smtpd_rcpt_job *j;
	struct smtp_mailrcpt mr;
	enum addr_err ae;
	enum smtp_mr_err me;

	me = smtp_parse_mailrcpt(arg, "TO:", 0, s->smtputf8, &mr, &ae);
	if (me == SMTP_MR_EPREFIX) {
		smtpd_reject(s, "RCPT", "501 5.5.4", "Syntax: RCPT TO:<address>", arg);
		return;
	}
	if (me == SMTP_MR_EADDR) {
		smtpd_reject(s, "RCPT", smtpd_addr_reply(ae, 0), addr_error_str(ae), arg);
		return;
	}
	if (me == SMTP_MR_EPARAM || mr.nparams > 0) {
		smtpd_reject(s, "RCPT", "555 5.5.4", "Unsupported RCPT parameter", arg);
		return;
	}
	if (s->max_rcpts_day > 0 && s->rcpts_today + s->nrcpt >= s->max_rcpts_day) {
		smtpd_refuse(s, "RCPT", "451 4.7.1", "Daily recipient limit reached, try again "
			     "tomorrow", mr.addr, 0);
		return;
	}
	if ((unsigned)s->nrcpt >= smtpd_cf(s)->max_recipients) {
		/* RFC 5321 4.5.3.1.10: the client sends the rest later; not an
		 * error, or a long recipient list could never be delivered */
		smtpd_refuse(s, "RCPT", "452 4.5.3", "Too many recipients", mr.addr, 0);
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->s = s;
	snprintf(j->q.addr, sizeof(j->q.addr), "%s", mr.addr);
	j->q.postmaster = mr.postmaster;
	j->q.relay_domain = !mr.postmaster && config_is_relay_domain(cf, addr_domain(mr.addr));
	j->q.hostname = cf->hostname;
	j->q.first_relay = cf->relay_domains.n > 0 ? cf->relay_domains.v[0] : NULL;
	j->q.store = s->srv->d.store;
	j->q.size = s->mail_size;
	j->q.default_quota = (long long)cf->default_quota;
	smtpd_session_pause(s);
	worker_submit(s->srv->d.pool, smtpd_rcpt_work, smtpd_rcpt_done, j);
}

static void
cmd_data(struct smtpd_session *s, const char *arg)
{
	struct queue_env env;
	char *recv;
	time_t now = time(NULL);

	if (s->nrcpt == 0) {
		smtpd_reject(s, "DATA", "554 5.5.1", "Error: no valid recipients", NULL);
		return;
	}
	memset(&env, 0, sizeof(env));
	env.arrival = now;
	env.sender = s->sender;
	env.rcpt = s->rcpt;
	env.nrcpt = s->nrcpt;
	env.client = s->client;
	env.helo = s->helo;
	env.proto = s->user ? (s->tls ? "ESMTPSA" : "ESMTPA") :
		s->tls ? "ESMTPS" : s->esmtp ? "ESMTP" : "SMTP";
	env.smtputf8 = s->smtputf8;
	env.body8bit = s->body8;
	if ((s->in = queue_in_create(s->srv->d.queue, &env)) == NULL) {
		log_err(s->id, "event=queue_create_failed error=%s", log_q(strerror(errno)));
		smtpd_reply(s, "451 4.3.0 Error: queue file write error, try again later");
		s->errors++;
		return;
	}
	recv = s->srv->d.policy->trace(s, queue_in_qid(s->in), now);
	queue_in_write(s->in, recv, strlen(recv));
	free(recv);
	s->junk = 0;
	smtpd_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	smtpd_session_begin_data(s);
}

static void
cmd_rset(struct smtpd_session *s, const char *arg)
{
	smtpd_session_reset(s);
	smtpd_reply(s, "250 2.0.0 Ok");
}

static void
cmd_noop(struct smtpd_session *s, const char *arg)
{
	smtpd_reply(s, "250 2.0.0 Ok");
}

static void
cmd_quit(struct smtpd_session *s, const char *arg)
{
	smtpd_session_kill(s, "221 2.0.0 Bye\r\n");
}

static void
cmd_vrfy(struct smtpd_session *s, const char *arg)
{
	smtpd_reply(s, "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery");
}

static void
cmd_expn(struct smtpd_session *s, const char *arg)
{
	smtpd_reply(s, "502 5.5.1 EXPN not available");
}

static void
cmd_help(struct smtpd_session *s, const char *arg)
{
	smtpd_reply(s, "214-2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP%s%s%s",
		   smtpd_offers_etrn(s) ? " ETRN" : "", smtpd_tls(s) && !s->tls ? " STARTTLS" : "",
		   s->srv->d.policy->auth ? " AUTH" : "");
	smtpd_reply(s, "214 2.0.0 See RFC 5321");
}

static void
cmd_starttls(struct smtpd_session *s, const char *arg)
{
	if (smtpd_tls(s) == NULL || s->tls) {
		smtpd_reject(s, "STARTTLS", "502 5.5.1", s->tls ? "Already in TLS" : "STARTTLS not available", NULL);
		return;
	}
	smtpd_reply(s, "220 2.0.0 Ready to start TLS");
	smtpd_session_reset(s);
	free(s->helo);
	s->helo = NULL;
	s->esmtp = 0;
	free(s->user);      /* RFC 3207 4.2: nothing from before TLS counts */
	s->user = NULL;
	/* everything sent after STARTTLS in the clear is discarded */
	conn_starttls(s->c, smtpd_tls(s));
	s->tls = 1;
}

/* ETRN node (RFC 1985): start delivery of what this backup holds for one
 * of its relay domains, typically sent by the primary when it is back. */
static void
cmd_etrn(struct smtpd_session *s, const char *arg)
{
	const struct config *cf = smtpd_cf(s);
	char domain[256];
	size_t n = strlen(arg);
	int started;

	if (n == 0 || n >= sizeof(domain) || strchr(arg, ' ') != NULL) {
		smtpd_reject(s, "ETRN", "501 5.5.4", "Syntax: ETRN domain", arg);
		return;
	}
	if (arg[0] == '#' || arg[0] == '@') {
		smtpd_reject(s, "ETRN", "458 4.5.1", "Unable to queue messages: only plain domain names", arg);
		return;
	}
	for (size_t i = 0; i <= n; i++)
		domain[i] = (char)tolower((unsigned char)arg[i]);
	if (s->srv->d.etrn == NULL || !config_is_relay_domain(cf, domain)) {
		smtpd_reject(s, "ETRN", "459 4.7.1", "Node not allowed: not a relay domain here", domain);
		return;
	}
	if (s->srv->d.etrn_allowed != NULL &&
	    !s->srv->d.etrn_allowed(s->srv->d.arg, conn_sockaddr(s->c, NULL))) {
		smtpd_reject(s, "ETRN", "459 4.7.1", "Node not allowed: ETRN is not accepted from your address",
			     domain);
		return;
	}
	if (!smtpd_server_etrn_rate_ok(s->srv, s->client, domain, time(NULL))) {
		smtpd_reject(s, "ETRN", "458 4.7.0", "Too many ETRN requests, try again later", domain);
		return;
	}
	started = s->srv->d.etrn(s->srv->d.arg, domain);
	if (started < 0) {
		smtpd_reject(s, "ETRN", "458 4.3.2", "Unable to queue messages for node: shutting down",
			    domain);
		return;
	}
	log_msg(s->id, "event=etrn domain=%s client=[%s] messages=%d", domain, s->client, started);
	if (started == 0)
		smtpd_reply(s, "251 2.0.0 OK, no messages waiting for node %s", domain);
	else
		smtpd_reply(s, "253 2.0.0 OK, %d pending messages for node %s started", started, domain);
}

static const struct smtpd_cmd smtpd_cmds[] = {
	{ "EHLO", cmd_ehlo, 0 },
	{ "HELO", cmd_helo, 0 },
	{ "MAIL", cmd_mail, F_HELO | F_NOMAIL | F_GROUP },
	{ "RCPT", cmd_rcpt, F_HELO | F_MAIL | F_GROUP },
	{ "DATA", cmd_data, F_HELO | F_MAIL | F_NOARG },
	{ "RSET", cmd_rset, F_NOARG | F_GROUP },
	{ "NOOP", cmd_noop, 0 },
	{ "QUIT", cmd_quit, F_NOARG },
	{ "VRFY", cmd_vrfy, 0 },
	{ "EXPN", cmd_expn, 0 },
	{ "HELP", cmd_help, 0 },
	{ "STARTTLS", cmd_starttls, F_HELO | F_NOARG | F_NOMAIL },
	{ "ETRN", cmd_etrn, F_HELO | F_NOMAIL },
	{ "AUTH", smtpd_cmd_auth, F_HELO | F_NOMAIL },
};

static int
smtpd_cmd_check(struct smtpd_session *s, const struct smtpd_cmd *c, const char *arg)
{
	if ((c->flags & F_NOARG) && *arg != '\0') {
		smtpd_reject(s, c->verb, "501 5.5.4", "Syntax error: no parameters allowed", NULL);
		return -1;
	}
	/* gsasl(1) and other simple submission clients say STARTTLS before
	 * EHLO; the session starts over after TLS anyway */
	if ((c->flags & F_HELO) && s->helo == NULL &&
	    !(c->fn == cmd_starttls && s->srv->d.policy->auth)) {
		smtpd_reject(s, c->verb, "503 5.5.1", "Error: send HELO/EHLO first", NULL);
		return -1;
	}
	if ((c->flags & F_NOMAIL) && s->in_mail) {
		smtpd_reject(s, c->verb, "503 5.5.1", "Error: nested MAIL command", NULL);
		return -1;
	}
	if ((c->flags & F_MAIL) && !s->in_mail) {
		smtpd_reject(s, c->verb, "503 5.5.1", "Error: need MAIL command", NULL);
		return -1;
	}
	return 0;
}

void
smtpd_cmd_dispatch(struct smtpd_session *s, const char *line, size_t len)
{
	const struct smtpd_cmd *c = NULL;
	struct smtp_cmdline cl;

	s->ncommands++;
	/* Commands that make no progress (anything but an accepted MAIL, RCPT
	 * or DATA, whose handlers reset the count) are allowed only so many
	 * in a row: a NOOP every few seconds must not hold a slot forever. */
	if (++s->junk > smtpd_cf(s)->junk_command_limit && smtpd_cf(s)->junk_command_limit > 0) {
		log_msg(s->id, "event=reject client=[%s] reason=junk_commands limit=%u code=421",
			s->client, smtpd_cf(s)->junk_command_limit);
		smtpd_session_kill(s, "421 4.7.0 Too many commands without progress, closing connection\r\n");
		return;
	}
	if (strlen(line) != len || smtp_parse_line(line, &cl) != 0) {
		smtpd_reject(s, "?", "500 5.5.2", "Error: command not recognized", NULL);
		return;
	}
	for (size_t i = 0; i < sizeof(smtpd_cmds) / sizeof(smtpd_cmds[0]); i++)
		if (strcmp(smtpd_cmds[i].verb, cl.verb) == 0)
			c = &smtpd_cmds[i];
	/* RFC 2920: only commands that may sit inside a group may have more
	 * input behind them, and only after EHLO; STARTTLS discards instead. */
	if (smtpd_session_has_input(s) && (c == NULL || strcmp(c->verb, "STARTTLS") != 0) &&
	    (!s->esmtp || c == NULL || !(c->flags & F_GROUP))) {
		log_msg(s->id, "event=reject client=[%s] reason=pipelining cmd=%s code=554", s->client,
			cl.verb);
		smtpd_session_kill(s, "554 5.5.0 Error: SMTP protocol synchronization\r\n");
		return;
	}
	if (c == NULL) {
		smtpd_reject(s, cl.verb, "500 5.5.2", "Error: command not recognized", NULL);
		return;
	}
	/* MAIL and RCPT may carry parameters, AUTH an initial response
	 * (RFC 4954 4: up to 12288 octets; ours are at most 1368) */
	if (len > SMTP_CMD_MAX - 2 && !(strcmp(c->verb, "MAIL") == 0 || strcmp(c->verb, "RCPT") == 0 ||
					strcmp(c->verb, "AUTH") == 0)) {
		smtpd_reject(s, c->verb, "500 5.5.2", "Error: line too long", NULL);
		return;
	}
	if (smtpd_cmd_check(s, c, cl.arg) == 0)
		c->fn(s, cl.arg);
}
