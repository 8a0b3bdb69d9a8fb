/*
 * cmd_sendmail: `tandem sendmail [-f SENDER] [-i] [-t] [RCPT...]`, the
 * sendmail(1) interface scripts and cron expect. Reads a message on stdin,
 * adds the header fields a message needs (Date:, Message-ID:, From:), and
 * commits it into the queue like the SMTP server does; the running server
 * is nudged to pick it up. Exit 0 once the message is safely queued where
 * the server can read it, EX_USAGE (64) for bad arguments, EX_DATAERR (65)
 * for a bad message or address, EX_TEMPFAIL (75) when it could not be
 * stored or the server could not read it. Run by root on a server with
 * [server] user, it becomes that user before it writes into the queue:
 * the queue file is then the server's, as one that came in by SMTP.
 */
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "mail/addr.h"
#include "mail/header.h"
#include "queue/queue.h"
#include "server/server_priv.h"
#include "util/log.h"
#include "util/pidfile.h"
#include "util/xalloc.h"

#define EX_USAGE 64
#define EX_DATAERR 65
#define EX_TEMPFAIL 75

struct sendmail {
	struct queue_env env;
	int dot_ends;          /* without -i a line "." ends the message */
	int rcpt_from_headers; /* -t */
	char *buf;             /* the message, CRLF line ends */
	size_t len, cap;
	int has_date, has_msgid, has_from;
	size_t header_end;     /* offset just past the header section */
	uid_t uid;             /* who submitted it, before any privilege drop */
};

static void
sm_append(struct sendmail *sm, const char *p, size_t n)
{
	if (sm->len + n > sm->cap) {
		sm->cap = (sm->len + n) * 2 + 4096;
		sm->buf = xrealloc(sm->buf, sm->cap);
	}
	memcpy(sm->buf + sm->len, p, n);
	sm->len += n;
}

/* Canonical address from a command-line or header word: "<a@b>" or "a@b". */
static int
sm_addr(const char *word, int allow_null, char *out)
{
	char path[ADDR_MAX + 4];
	size_t used;

	while (isspace((unsigned char)*word))
		word++;
	if (*word == '<')
		snprintf(path, sizeof(path), "%s", word);
	else
		snprintf(path, sizeof(path), "<%s>", word);
	path[strcspn(path, "\r\n")] = '\0';
	return addr_parse_path(path, strlen(path), allow_null, 1, out, &used) == ADDR_OK &&
	       path[used] == '\0' ? 0 : -1;
}

static int
sm_add_rcpt(struct sendmail *sm, const char *word)
{
	char a[ADDR_MAX];

	if (sm_addr(word, 0, a) != 0) {
		fprintf(stderr, "tandem sendmail: bad recipient address: %s\n", word);
		return -1;
	}
	for (int i = 0; i < sm->env.nrcpt; i++)
		if (strcmp(sm->env.rcpt[i], a) == 0)
			return 0;
	queue_env_add_rcpt(&sm->env, a);
	return 0;
}

/* -t: the addresses of To:, Cc: and Bcc: (comma-separated; "Name <a@b>"). */
static int
sm_header_rcpts(struct sendmail *sm, const char *value)
{
	char *copy = xstrdup(value), *save = NULL;
	int rc = 0;

	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *lt = strchr(tok, '<'), *gt = lt ? strchr(lt, '>') : NULL;

		if (lt && gt)
			gt[1] = '\0';
		if (sm_add_rcpt(sm, lt ? lt : tok) != 0)
			rc = -1;
	}
	free(copy);
	return rc;
}

static int
sm_field_is(const char *h, const char *name)
{
	size_t n = strlen(name);

	return strncasecmp(h, name, n) == 0 && h[n] == ':';
}

/* A header field is complete: note it, and with -t take its recipients. */
static int
sm_field_done(struct sendmail *sm, const char *h)
{
	if (h == NULL)
		return 0;
	sm->has_date |= sm_field_is(h, "Date");
	sm->has_msgid |= sm_field_is(h, "Message-ID");
	sm->has_from |= sm_field_is(h, "From");
	if (sm->rcpt_from_headers &&
	    (sm_field_is(h, "To") || sm_field_is(h, "Cc") || sm_field_is(h, "Bcc")))
		return sm_header_rcpts(sm, strchr(h, ':') + 1);
	return 0;
}

static int
sm_is_field_start(const char *line)
{
	size_t n = strcspn(line, ": \t");

	return n > 0 && line[n] == ':';
}

/* Read stdin into sm->buf with CRLF line ends. With -t, Bcc: is taken out. */
static int
sm_read(struct sendmail *sm)
{
	char *line = NULL, *hdr = NULL;
	size_t cap = 0;
	ssize_t n;
	int in_headers = 1, skip = 0, rc = 0;

	while ((n = getline(&line, &cap, stdin)) > 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (sm->dot_ends && strcmp(line, ".") == 0)
			break;
		if (in_headers) {
			if ((line[0] == ' ' || line[0] == '\t') && hdr != NULL) {
				hdr = xrealloc(hdr, strlen(hdr) + n + 1);
				strcat(hdr, line);
				if (skip)
					continue;
			} else {
				rc |= sm_field_done(sm, hdr);
				free(hdr);
				hdr = NULL;
				if (sm_is_field_start(line)) {
					hdr = xstrdup(line);
					skip = sm->rcpt_from_headers && sm_field_is(line, "Bcc");
					if (skip)
						continue;
				} else {
					/* the body starts: without a blank line, add one */
					in_headers = 0;
					sm->header_end = sm->len;
					if (n > 0)
						sm_append(sm, "\r\n", 2);
				}
			}
		}
		sm_append(sm, line, n);
		sm_append(sm, "\r\n", 2);
	}
	if (in_headers) {
		rc |= sm_field_done(sm, hdr);
		sm->header_end = sm->len;
	}
	free(hdr);
	free(line);
	return ferror(stdin) ? -1 : rc;
}

static char *
sm_default_sender(void)
{
	struct passwd *pw = getpwuid(getuid());

	return xstrdup(pw ? pw->pw_name : "root");
}

/* Received:, and what the message lacks of Date:, Message-ID:, From:. */
static char *
sm_prefix(struct sendmail *sm, const struct config *cf, const char *qid, time_t now)
{
	char date[64], *p, *q;

	header_date(now, date, sizeof(date));
	p = xasprintf("Received: by %s (tandem sendmail, uid %d) id %s;\r\n\t%s\r\n", cf->hostname,
		      (int)sm->uid, qid, date);
	if (!sm->has_date) {
		q = xasprintf("%sDate: %s\r\n", p, date);
		free(p);
		p = q;
	}
	if (!sm->has_msgid) {
		q = xasprintf("%sMessage-ID: <%s@%s>\r\n", p, qid, cf->hostname);
		free(p);
		p = q;
	}
	if (!sm->has_from) {
		q = xasprintf("%sFrom: %s\r\n", p, sm->env.sender[0] ? sm->env.sender : "MAILER-DAEMON");
		free(p);
		p = q;
	}
	return p;
}

static int
sm_queue(struct sendmail *sm, struct config *cf)
{
	char err[512], *prefix;
	const char *error;
	struct queue *q;
	struct queue_in *in = NULL;
	time_t now = time(NULL);
	int rc = EX_TEMPFAIL;

	/* The log is root's to open (as the server opens it before its own
	 * drop); the queue is the server user's to write. */
	if (cf->log_file != NULL)
		log_init(cf->log_file);
	if (server_priv_become(cf, &error) != 0 || server_priv_check_writer(cf, &error) != 0) {
		fprintf(stderr, "tandem sendmail: cannot queue the message: %s\n", error);
		return EX_TEMPFAIL;
	}
	if ((q = queue_open(cf->data_dir, err, sizeof(err))) == NULL) {
		fprintf(stderr, "tandem sendmail: %s\n", err);
		return EX_TEMPFAIL;
	}
	sm->env.arrival = now;
	sm->env.client = "127.0.0.1";
	sm->env.helo = "localhost";
	sm->env.proto = "sendmail";
	if ((in = queue_in_create(q, &sm->env)) == NULL) {
		fprintf(stderr, "tandem sendmail: queue: %s\n", strerror(errno));
		goto out;
	}
	prefix = sm_prefix(sm, cf, queue_in_qid(in), now);
	queue_in_write(in, prefix, strlen(prefix));
	free(prefix);
	queue_in_write(in, sm->buf, sm->len);
	if (queue_in_commit(in) != 0) {
		fprintf(stderr, "tandem sendmail: cannot queue the message: %s\n", strerror(errno));
		goto out;
	}
	/* A script's stderr is no log: the line goes to [server] log_file only. */
	if (cf->log_file != NULL)
		log_msg(queue_in_qid(in), "event=queued from=%s nrcpt=%d size=%lld uid=%d "
			"proto=sendmail", log_addr(sm->env.sender), sm->env.nrcpt, queue_in_size(in),
			(int)sm->uid);
	/* Queued is queued: a server that cannot be told now finds the
	 * message at its next scan or start. */
	if (pidfile_signal(cf->data_dir, SIGUSR1, cf->user, &error) < 0)
		fprintf(stderr, "tandem sendmail: warning: %s\n", error);
	rc = 0;
out:
	queue_in_free(&in);
	queue_close(&q);
	return rc;
}

static int
sm_usage(void)
{
	fprintf(stderr, "usage: tandem sendmail [-f SENDER] [-i] [-t] [RCPT...] < message\n");
	return EX_USAGE;
}

int
cmd_sendmail(struct config *cf, int argc, char **argv)
{
	struct sendmail sm = { .dot_ends = 1, .uid = getuid() };
	char sender[ADDR_MAX], *fallback = NULL;
	const char *from = NULL;
	int i, rc;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-f") == 0 && i + 1 < argc)
			from = argv[++i];
		else if (strncmp(argv[i], "-f", 2) == 0 && argv[i][2] != '\0')
			from = argv[i] + 2;
		else if (strcmp(argv[i], "-i") == 0 || strcmp(argv[i], "-oi") == 0)
			sm.dot_ends = 0;
		else if (strcmp(argv[i], "-t") == 0)
			sm.rcpt_from_headers = 1;
		else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else
			return sm_usage();
	}
	if (from == NULL) {
		fallback = sm_default_sender();
		snprintf(sender, sizeof(sender), "%s@%s", fallback, cf->hostname);
		free(fallback);
	} else if (sm_addr(from, 1, sender) != 0) {
		fprintf(stderr, "tandem sendmail: bad sender address: %s\n", from);
		return EX_DATAERR;
	}
	sm.env.sender = sender;
	rc = 0;
	for (; i < argc; i++)
		if (sm_add_rcpt(&sm, argv[i]) != 0)
			rc = EX_DATAERR;
	if (rc == 0 && sm_read(&sm) != 0)
		rc = EX_DATAERR;
	if (rc == 0 && sm.env.nrcpt == 0) {
		fprintf(stderr, "tandem sendmail: no recipients\n");
		rc = sm.rcpt_from_headers ? EX_DATAERR : sm_usage();
	}
	if (rc == 0)
		rc = sm_queue(&sm, cf);
	for (int k = 0; k < sm.env.nrcpt; k++)
		free(sm.env.rcpt[k]);
	free(sm.env.rcpt);
	free(sm.buf);
	return rc;
}
