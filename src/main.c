/*
 * tandem: one binary for both MX roles. `tandem [-c FILE] COMMAND ...`
 * loads the config and dispatches to src/cmd/ (one file per command).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "conf/config.h"

#define TANDEM_VERSION "0.1.0"
#define DEFAULT_CONFIG "/etc/tandem/tandem.conf"

static const struct {
	const char *name;
	int (*fn)(struct config *cf, int argc, char **argv);
	const char *usage;
} commands[] = {
	{ "serve", cmd_serve, "serve [-v]                    run the server (SMTP, IMAP, POP3, queue, delivery)" },
	{ "check-config", cmd_check_config, "check-config [-v] [--doc]     check the config; -v every key's value, --doc the key table" },
	{ "domain", cmd_domain, "domain add|del DOMAIN | list" },
	{ "dkim", cmd_dkim, "dkim show DOMAIN | rotate DOMAIN   (DKIM keys: the DNS records, a new key)" },
	{ "user", cmd_user, "user add|del|passwd ADDRESS | quota ADDRESS SIZE | show ADDRESS | list" },
	{ "mailbox", cmd_mailbox, "mailbox verify|repair ADDRESS   (index against the Maildir files)" },
	{ "alias", cmd_alias, "alias add ALIAS TARGET... | del ALIAS | list   (@domain = catch-all)" },
	{ "recipients", cmd_recipients, "recipients load DOMAIN FILE | clear DOMAIN | list DOMAIN   (backup)" },
	{ "queue", cmd_queue, "queue list [--json] | show ID | delete ID | hold ID | release ID | flush" },
	{ "sendmail", cmd_sendmail, "sendmail [-f SENDER] [-i] [-t] [RCPT...]   (message on stdin, queued)" },
};

static void
usage(FILE *out)
{
	fprintf(out, "usage: tandem [-c FILE] COMMAND [ARGS...]\n"
		     "  -c FILE   config file (default " DEFAULT_CONFIG ")\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %s\n", commands[i].usage);
}

/* Run as `sendmail`, `mailq` or `newaliases` (a link to the binary): the
 * sendmail(1) interface, with the config of TANDEM_CONFIG or the default
 * (sendmail's own options leave no room for -c). */
static int
main_as_sendmail(const char *file, const char *name, int argc, char **argv)
{
	char *mailq_argv[] = { "sendmail", "-bp", NULL }, *newaliases_argv[] = { "sendmail", "-bi", NULL };
	struct config *cf;
	int rc;

	if ((cf = config_load(file, stderr)) == NULL) {
		fprintf(stderr, "%s: %s: configuration has errors\n", name, file);
		return 75;   /* EX_TEMPFAIL: a script may try again */
	}
	if (strcmp(name, "mailq") == 0)
		rc = cmd_sendmail(cf, 2, mailq_argv);
	else if (strcmp(name, "newaliases") == 0)
		rc = cmd_sendmail(cf, 2, newaliases_argv);
	else
		rc = cmd_sendmail(cf, argc, argv);
	config_free(&cf);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *file = getenv("TANDEM_CONFIG") ? getenv("TANDEM_CONFIG") : DEFAULT_CONFIG;
	const char *name = argc > 0 && argv[0] ? strrchr(argv[0], '/') : NULL;
	struct config *cf;
	int i = 1, rc;

	name = name ? name + 1 : argc > 0 && argv[0] ? argv[0] : "tandem";
	if (strcmp(name, "sendmail") == 0 || strcmp(name, "mailq") == 0 ||
	    strcmp(name, "newaliases") == 0)
		return main_as_sendmail(file, name, argc, argv);

	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			file = argv[i + 1];
			i += 2;
		} else if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
			printf("tandem %s\n", TANDEM_VERSION);
			return 0;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "tandem: unknown option %s\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	/* The table of keys is in the binary: no config file is needed. */
	if (strcmp(argv[i], "check-config") == 0 && i + 1 < argc && strcmp(argv[i + 1], "--doc") == 0)
		return cmd_check_config_doc();
	for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++) {
		if (strcmp(commands[c].name, argv[i]) != 0)
			continue;
		if ((cf = config_load(file, stderr)) == NULL) {
			fprintf(stderr, "tandem: %s: configuration has errors\n", file);
			return 1;
		}
		rc = commands[c].fn(cf, argc - i, argv + i);
		config_free(&cf);
		return rc;
	}
	fprintf(stderr, "tandem: unknown command '%s'\n", argv[i]);
	usage(stderr);
	return 2;
}
