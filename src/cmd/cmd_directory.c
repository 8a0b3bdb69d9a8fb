/*
 * cmd_directory: the `tandem domain|alias|recipients` subcommands,
 * thin wrappers around the directory module. Each subcommand is a table of
 * verbs with their argument counts; the shared runner checks the usage,
 * opens data_dir/directory.db (as [server] user when run by root) and
 * turns errors into exit statuses.
 * Public: cmd_domain, cmd_alias, cmd_recipients, cmd_dir_run,
 * cmd_directory_open, cmd_read_password, cmd_print.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "directory/directory.h"
#include "mail/dkim.h"
#include "mail/dkim_keys.h"
#include "server/server_priv.h"
#include "util/durable.h"
#include "util/xalloc.h"


struct directory *
cmd_directory_open(struct config *cf)
{
	struct directory *d;
	const char *error;
	char err[512];

	/* Run by root, write as the server: a directory.db (or its -wal)
	 * created by root would be one the server cannot open. */
	if (server_priv_become(cf, &error) != 0) {
		fprintf(stderr, "tandem: %s\n", error);
		return NULL;
	}
	if (durable_mkdirs(cf->data_dir, 0750) != 0) {
		fprintf(stderr, "tandem: %s: %m\n", cf->data_dir);
		return NULL;
	}
	if ((d = directory_open(cf->data_dir, err, sizeof(err))) == NULL) {
		fprintf(stderr, "tandem: %s\n", err);
		return NULL;
	}
	/* alias add checks for loops through subaddresses as the server sees them */
	if (directory_set_recipient_delimiter(d, cf->recipient_delimiter, &error) != 0) {
		fprintf(stderr, "tandem: [server] recipient_delimiter: %s\n", error);
		directory_close(&d);
	}
	return d;
}

char *
cmd_read_password(void)
{
	struct termios old, quiet;
	int tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (tty) {
		fputs("Password: ", stderr);
		quiet = old;
		quiet.c_lflag &= ~ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	n = getline(&line, &cap, stdin);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	if (n > 0 && line[n - 1] == '\r')
		line[--n] = '\0';
	if (n <= 0) {
		if (line != NULL)
			explicit_bzero(line, cap);
		free(line);
		return NULL;
	}
	return line;
}

void
cmd_print(const char *s, void *arg)
{
	printf("%s\n", s);
}

int
cmd_dir_run(struct config *cf, int argc, char **argv,
	    const struct cmd_verb *verbs, const char *usage)
{
	const struct cmd_verb *v = verbs;
	struct directory *d;
	int nargs = argc - 2, rc;

	while (argc >= 2 && v->name != NULL && strcmp(v->name, argv[1]) != 0)
		v++;
	if (argc < 2 || v->name == NULL || nargs < v->min || (v->max >= 0 && nargs > v->max)) {
		fputs(usage, stderr);
		return 2;
	}
	if ((d = cmd_directory_open(cf)) == NULL)
		return 1;
	rc = v->fn(cf, d, nargs, argv + 2);
	if (rc < 0) {
		fprintf(stderr, "tandem: %s\n", directory_error(d));
		rc = directory_error_is_temp(d) ? EX_TEMPFAIL : 1;
	}
	directory_close(&d);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "tandem: stdout: %m\n");
		rc = rc ? rc : 1;
	}
	return rc;
}

/* ---- domain ---- */

/* The zone lines of the domain's selectors that are published: the
 * active one and those retired less than [dkim] rotate_grace ago. */
static int
cmd_dkim_print(struct config *cf, const char *domain, FILE *out)
{
	struct dkim_sel sel[DKIM_KEYS_MAX];
	long long now = (long long)time(NULL);
	const char *err;
	int n, shown = 0;

	if ((n = dkim_keys_list(cf->data_dir, domain, sel, DKIM_KEYS_MAX, &err)) < 0) {
		fprintf(stderr, "tandem: dkim %s: %s\n", domain, err);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		EVP_PKEY *k;
		char *line;

		if (!sel[i].active && sel[i].since + (long long)cf->dkim_rotate_grace <= now)
			continue;
		if ((k = dkim_keys_read(cf->data_dir, domain, sel[i].name)) == NULL) {
			fprintf(stderr, "tandem: dkim %s: cannot read the key of selector %s\n",
				domain, sel[i].name);
			return -1;
		}
		line = dkim_dns_record(k, sel[i].name, domain);
		EVP_PKEY_free(k);
		if (line == NULL)
			return -1;
		fprintf(out, "%s\n", line);
		free(line);
		shown++;
	}
	return shown;
}

/* A domain's first key; an existing one stays. */
static int
cmd_dkim_first(struct config *cf, const char *domain)
{
	struct dkim_sel sel[1];
	const char *err;
	char name[32];
	int n = dkim_keys_list(cf->data_dir, domain, sel, 1, &err);

	if (n == 0 && dkim_keys_new(cf->data_dir, domain, (long long)time(NULL), name, sizeof(name),
				    &err) != 0)
		n = -1;
	if (n < 0) {
		fprintf(stderr, "tandem: dkim %s: %s\n", domain, err);
		return -1;
	}
	return 0;
}

static int
cmd_domain_add(struct config *cf, struct directory *d, int argc, char **argv)
{
	char lower[256];

	if (directory_domain_add(d, argv[0]) != 0)
		return -1;
	/* mail from the domain is signed from now on: its record to publish */
	if (dkim_keys_domain(argv[0], lower, sizeof(lower)) != 0) {
		fprintf(stderr, "tandem: dkim %s: not a domain name\n", argv[0]);
		return 1;
	}
	if (cmd_dkim_first(cf, lower) != 0)
		return 1;
	fprintf(stderr, "tandem: %s: publish its DKIM key in DNS (again with "
			"`tandem dkim show %s`):\n", lower, lower);
	return cmd_dkim_print(cf, lower, stdout) < 0 ? 1 : 0;
}

static int
cmd_domain_del(struct config *cf, struct directory *d, int argc, char **argv)
{
	return directory_domain_del(d, argv[0]);
}

static int
cmd_domain_list(struct config *cf, struct directory *d, int argc, char **argv)
{
	return directory_domain_list(d, cmd_print, NULL);
}

static const struct cmd_verb cmd_domain_verbs[] = {
	{ "add", 1, 1, cmd_domain_add },
	{ "del", 1, 1, cmd_domain_del },
	{ "list", 0, 0, cmd_domain_list },
	{ NULL, 0, 0, NULL }
};

int
cmd_domain(struct config *cf, int argc, char **argv)
{
	/* A local domain shadows a relay domain at RCPT: on a backup, which has
	 * no mailboxes, every valid user would get 550 during a failover. */
	if (argc == 3 && strcmp(argv[1], "add") == 0 && config_is_relay_domain(cf, argv[2])) {
		if (cf->role == ROLE_BACKUP) {
			fprintf(stderr, "tandem: %s is a [relay] domain of this backup: relay domains "
					"need no `domain add` (it would answer valid users 550); load "
					"its recipients with `tandem recipients load %s FILE`\n",
				argv[2], argv[2]);
			return 1;
		}
		fprintf(stderr, "tandem: warning: %s is also a [relay] domain: as a local domain "
				"its mail is delivered here, never relayed\n", argv[2]);
	}
	return cmd_dir_run(cf, argc, argv, cmd_domain_verbs,
			   "usage: tandem domain add|del DOMAIN\n"
			   "       tandem domain list\n");
}

/* ---- dkim ---- */

static int
cmd_dkim_local(struct directory *d, const char *domain)
{
	int rc = directory_domain_exists(d, domain);

	if (rc == 0)
		fprintf(stderr, "tandem: %s is not a local domain (tandem domain add %s)\n", domain,
			domain);
	return rc;
}

static int
cmd_dkim_show(struct config *cf, struct directory *d, int argc, char **argv)
{
	int rc = cmd_dkim_local(d, argv[0]);

	if (rc <= 0)
		return rc < 0 ? -1 : 1;
	if ((rc = cmd_dkim_print(cf, argv[0], stdout)) == 0)
		fprintf(stderr, "tandem: %s has no DKIM key: `tandem dkim rotate %s` makes one\n",
			argv[0], argv[0]);
	return rc > 0 ? 0 : 1;
}

static int
cmd_dkim_rotate(struct config *cf, struct directory *d, int argc, char **argv)
{
	const char *err;
	char name[32];
	int rc = cmd_dkim_local(d, argv[0]);

	if (rc <= 0)
		return rc < 0 ? -1 : 1;
	if (dkim_keys_new(cf->data_dir, argv[0], (long long)time(NULL), name, sizeof(name),
			  &err) != 0) {
		fprintf(stderr, "tandem: dkim %s: %s\n", argv[0], err);
		return 1;
	}
	fprintf(stderr, "tandem: %s signs with selector %s from now on (a running server picks "
			"it up at the next message); the previous one stays published for "
			"[dkim] rotate_grace. Publish:\n", argv[0], name);
	return cmd_dkim_print(cf, argv[0], stdout) < 0 ? 1 : 0;
}

static const struct cmd_verb cmd_dkim_verbs[] = {
	{ "show", 1, 1, cmd_dkim_show },
	{ "rotate", 1, 1, cmd_dkim_rotate },
	{ NULL, 0, 0, NULL }
};

int
cmd_dkim(struct config *cf, int argc, char **argv)
{
	return cmd_dir_run(cf, argc, argv, cmd_dkim_verbs,
			   "usage: tandem dkim show DOMAIN     (its DNS records, zone-file lines)\n"
			   "       tandem dkim rotate DOMAIN   (sign with a new key)\n");
}

/* ---- alias ---- */

static int
cmd_alias_add(struct config *cf, struct directory *d, int argc, char **argv)
{
	return directory_alias_add(d, argv[0], (const char *const *)argv + 1, argc - 1);
}

static int
cmd_alias_del(struct config *cf, struct directory *d, int argc, char **argv)
{
	return directory_alias_del(d, argv[0]);
}

/* Pairs arrive sorted by alias: one line "alias -> t1, t2" per alias. */
static void
cmd_alias_print(const char *alias, const char *target, void *arg)
{
	char **cur = arg;

	if (*cur != NULL && strcmp(*cur, alias) == 0) {
		printf(", %s", target);
		return;
	}
	if (*cur != NULL)
		putchar('\n');
	free(*cur);
	*cur = xstrdup(alias);
	printf("%s -> %s", alias, target);
}

static int
cmd_alias_list(struct config *cf, struct directory *d, int argc, char **argv)
{
	char *cur = NULL;
	int rc = directory_alias_list(d, cmd_alias_print, &cur);

	if (cur != NULL)
		putchar('\n');
	free(cur);
	return rc;
}

static const struct cmd_verb cmd_alias_verbs[] = {
	{ "add", 2, -1, cmd_alias_add },
	{ "del", 1, 1, cmd_alias_del },
	{ "list", 0, 0, cmd_alias_list },
	{ NULL, 0, 0, NULL }
};

int
cmd_alias(struct config *cf, int argc, char **argv)
{
	return cmd_dir_run(cf, argc, argv, cmd_alias_verbs,
			   "usage: tandem alias add ALIAS TARGET...   (ALIAS @domain: catch-all)\n"
			   "       tandem alias del ALIAS\n"
			   "       tandem alias list\n");
}

/* ---- recipients (backup role) ---- */

static int
cmd_recipients_load(struct config *cf, struct directory *d, int argc, char **argv)
{
	int n = directory_recipients_load(d, argv[0], argv[1]);

	if (n < 0)
		return -1;
	printf("loaded %d recipients for %s\n", n, argv[0]);
	return 0;
}

static int
cmd_recipients_clear(struct config *cf, struct directory *d, int argc, char **argv)
{
	if (directory_recipients_clear(d, argv[0]) != 0)
		return -1;
	printf("cleared recipients for %s: every address is accepted\n", argv[0]);
	return 0;
}

static int
cmd_recipients_list(struct config *cf, struct directory *d, int argc, char **argv)
{
	return directory_recipients_list(d, argv[0], cmd_print, NULL);
}

static const struct cmd_verb cmd_recipients_verbs[] = {
	{ "load", 2, 2, cmd_recipients_load },
	{ "clear", 1, 1, cmd_recipients_clear },
	{ "list", 1, 1, cmd_recipients_list },
	{ NULL, 0, 0, NULL }
};

int
cmd_recipients(struct config *cf, int argc, char **argv)
{
	return cmd_dir_run(cf, argc, argv, cmd_recipients_verbs,
			   "usage: tandem recipients load DOMAIN FILE\n"
			   "       tandem recipients clear|list DOMAIN\n");
}
