/*
 * cmd_sendmail: `tandem sendmail [-f SENDER] [-F NAME] [-i] [-t] [RCPT...]`,
 * the sendmail(1) interface scripts and cron expect (also run as
 * `sendmail`, `mailq` (-bp) or `newaliases` (-bi) through a link to the
 * binary). The options cron, mail(1), PHP, git and mutt pass are taken
 * (-r, -oi, -B 8BITMIME, -oem, -odi, -v, -N/-R/-V DSN options, -L, -O,
 * -h, -U, -n, -G...), those that need nothing of us ignored. Recipients of
 * -t come from To:, Cc: and Bcc: parsed by GMime (quoted commas, groups,
 * comments); an address without a domain ("root", the default sender
 * "www-data") gets [server] origin. Reads a message on stdin,
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
#include "mail/addrlist.h"
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
	const char *origin;    /* for addresses without a domain */
	const char *fullname;  /* -F: the name of an added From: */
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

/* Canonical address from a command-line word: "<a@b>", "a@b", or "a"
 * (which gets @origin). */
static int
sm_addr(const char *word, int allow_null, const char *origin, char *out)
{
	char path[ADDR_MAX + 4], bare[ADDR_MAX + 4];
	size_t used, n;

	while (isspace((unsigned char)*word))
		word++;
	n = strlen(word);
	if (n > 1 && word[0] == '<' && word[n - 1] == '>')
		snprintf(bare, sizeof(bare), "%.*s", (int)(n - 2), word + 1);
	else
		snprintf(bare, sizeof(bare), "%s", word);
	if (bare[0] != '\0' && strchr(bare, '@') == NULL && origin != NULL)
		snprintf(path, sizeof(path), "<%s@%s>", bare, origin);
	else
		snprintf(path, sizeof(path), "<%s>", bare);
	path[strcspn(path, "\r\n")] = '\0';
	return addr_parse_path(path, strlen(path), allow_null, 1, out, &used) == ADDR_OK &&
	       path[used] == '\0' ? 0 : -1;
}

static void
sm_add_canon(struct sendmail *sm, const char *a)
{
	for (int i = 0; i < sm->env.nrcpt; i++)
		if (strcmp(sm->env.rcpt[i], a) == 0)
			return;
	queue_env_add_rcpt(&sm->env, a);
}

static int
sm_add_rcpt(struct sendmail *sm, const char *word)
{
	char a[ADDR_MAX];

	if (sm_addr(word, 0, sm->origin, a) != 0) {
		fprintf(stderr, "tandem sendmail: bad recipient address: %s\n", word);
		return -1;
	}
	sm_add_canon(sm, a);
	return 0;
}

static int
sm_header_rcpt(const char *addr, void *arg)
{
	sm_add_canon(arg, addr);
	return 0;
}

/* -t: the addresses of a To:, Cc: or Bcc: field, by RFC 5322 (GMime):
 * "Doe, John" <j@x>, groups, comments; "undisclosed-recipients:;" has
 * none. */
static int
sm_header_rcpts(struct sendmail *sm, const char *h)
{
	const char *value = strchr(h, ':') + 1;

	if (strspn(value, " \t") == strlen(value))
		return 0;     /* an empty field names nobody */
	if (addrlist_each(value, 1, sm->origin, sm_header_rcpt, sm) < 0) {
		fprintf(stderr, "tandem sendmail: cannot read the addresses of %.*s\n",
			(int)strcspn(h, "\r\n"), h);
		return -1;
	}
	return 0;
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
		return sm_header_rcpts(sm, h);
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

/* -F NAME as a display name: bare when it is words of atext, else a quoted
 * string (RFC 5322 3.2.4); controls dropped. 0 when there is none. */
static int
sm_display_name(const char *name, char *buf, size_t len)
{
	static const char atext[] = "!#$%&'*+-/=?^_`{|}~ ";
	size_t o = 0;
	int plain = 1;

	if (name == NULL || name[0] == '\0' || len < 4)
		return 0;
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && strchr(atext, *p) == NULL &&
		    (unsigned char)*p < 0x80)
			plain = 0;
	if (!plain)
		buf[o++] = '"';
	for (const char *p = name; *p && o + 3 < len; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			continue;
		if (!plain && (*p == '"' || *p == '\\'))
			buf[o++] = '\\';
		buf[o++] = *p;
	}
	if (!plain)
		buf[o++] = '"';
	buf[o] = '\0';
	return 1;
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
		const char *addr = sm->env.sender[0] ? sm->env.sender : "MAILER-DAEMON";
		char name[200];

		if (sm_display_name(sm->fullname, name, sizeof(name)))
			q = xasprintf("%sFrom: %s <%s>\r\n", p, name, addr);
		else
			q = xasprintf("%sFrom: %s\r\n", p, addr);
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
	fprintf(stderr, "usage: tandem sendmail [-f SENDER] [-F NAME] [-i] [-t] [-B 8BITMIME] "
		"[RCPT...] < message\n"
		"       tandem sendmail -bp   (mailq: the queue)\n"
		"       tandem sendmail -bi   (newaliases: nothing to rebuild)\n");
	return EX_USAGE;
}

/* The argument of an option given as "-fX" or "-f X"; NULL when missing. */
static const char *
sm_optarg(int argc, char **argv, int *i)
{
	if (argv[*i][2] != '\0')
		return argv[*i] + 2;
	if (*i + 1 < argc)
		return argv[++*i];
	return NULL;
}

/* Was anything of the message or its addresses 8-bit or UTF-8? */
static void
sm_flags(struct sendmail *sm)
{
	for (size_t k = 0; k < sm->len && !sm->env.body8bit; k++)
		if ((unsigned char)sm->buf[k] >= 0x80)
			sm->env.body8bit = 1;
	sm->env.smtputf8 = !addr_is_ascii(sm->env.sender);
	for (int k = 0; k < sm->env.nrcpt; k++)
		if (!addr_is_ascii(sm->env.rcpt[k]))
			sm->env.smtputf8 = 1;
}

int
cmd_sendmail(struct config *cf, int argc, char **argv)
{
	struct sendmail sm = { .dot_ends = 1, .uid = getuid() };
	char sender[ADDR_MAX], *fallback = NULL;
	const char *from = NULL, *arg;
	int i, rc;

	sm.origin = config_origin(cf);
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *o = argv[i];

		if (strcmp(o, "--") == 0) {
			i++;
			break;
		}
		switch (o[1]) {
		case 'f':          /* the envelope sender */
		case 'r':          /* its old name */
			if ((from = sm_optarg(argc, argv, &i)) == NULL)
				return sm_usage();
			break;
		case 'F':          /* the full name of an added From: */
			if ((sm.fullname = sm_optarg(argc, argv, &i)) == NULL)
				return sm_usage();
			break;
		case 'i':
			if (o[2] != '\0')
				return sm_usage();
			sm.dot_ends = 0;
			break;
		case 't':
			if (o[2] != '\0')
				return sm_usage();
			sm.rcpt_from_headers = 1;
			break;
		case 'B':          /* body type */
			if ((arg = sm_optarg(argc, argv, &i)) == NULL)
				return sm_usage();
			if (strcasecmp(arg, "8BITMIME") == 0)
				sm.env.body8bit = 1;
			else if (strcasecmp(arg, "7BIT") != 0)
				return sm_usage();
			break;
		case 'o':          /* -oi; the rest (-oem, -odi, -om...) need nothing */
			if (strcmp(o, "-oi") == 0)
				sm.dot_ends = 0;
			else if (o[2] == '\0')
				return sm_usage();
			break;
		case 'N':          /* DSN NOTIFY, RET, ENVID; syslog label; options; hops */
		case 'R':
		case 'V':
		case 'L':
		case 'O':
		case 'h':
			if (sm_optarg(argc, argv, &i) == NULL)
				return sm_usage();
			break;
		case 'v':          /* verbose, no aliasing, initial submission, gateway */
		case 'n':
		case 'U':
		case 'G':
			if (o[2] != '\0')
				return sm_usage();
			break;
		case 'b':
			if (strcmp(o, "-bm") == 0)
				break;
			if (strcmp(o, "-bp") == 0) {
				char *qargv[] = { "queue", "list", NULL };

				return cmd_queue(cf, 2, qargv);
			}
			if (strcmp(o, "-bi") == 0) {
				printf("tandem: aliases live in the directory (tandem alias add|del|list); "
				       "there is nothing to rebuild\n");
				return 0;
			}
			fprintf(stderr, "tandem sendmail: %s is not supported%s\n", o,
				strcmp(o, "-bs") == 0 ? "; talk SMTP to the server's submission or "
				"smtp port" : "");
			return EX_USAGE;
		default:
			return sm_usage();
		}
	}
	if (from == NULL) {
		fallback = sm_default_sender();
		snprintf(sender, sizeof(sender), "%s@%s", fallback, sm.origin);
		free(fallback);
	} else if (sm_addr(from, 1, sm.origin, sender) != 0) {
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
	if (rc == 0) {
		sm_flags(&sm);
		rc = sm_queue(&sm, cf);
	}
	for (int k = 0; k < sm.env.nrcpt; k++)
		free(sm.env.rcpt[k]);
	free(sm.env.rcpt);
	free(sm.buf);
	return rc;
}
