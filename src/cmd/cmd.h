/*
 * cmd: one file per `tandem` subcommand; src/main.c loads the config and
 * dispatches here. Each entry returns the process exit status:
 * 0 success, 1 a user error (message on stderr), 2 usage, 75 temporary
 * failure (EX_TEMPFAIL).
 */
#ifndef TANDEM_CMD_H
#define TANDEM_CMD_H
#include "conf/config.h"

int cmd_serve(struct config *cf, int argc, char **argv);
int cmd_check_config(struct config *cf, int argc, char **argv);
/* `check-config --doc`: README's configuration table; needs no config file. */
int cmd_check_config_doc(void);
struct directory;
/* Warn about every domain that is both a [relay] domain and a local domain
 * of dir (RCPT would check mailboxes that a backup does not have): to out,
 * or as a log warning when out is NULL (serve at start). Returns how many,
 * -1 on a directory error. */
int cmd_check_config_relay_local(const struct config *cf, struct directory *dir, FILE *out);
int cmd_domain(struct config *cf, int argc, char **argv);
int cmd_dkim(struct config *cf, int argc, char **argv);
int cmd_user(struct config *cf, int argc, char **argv);
int cmd_alias(struct config *cf, int argc, char **argv);
int cmd_recipients(struct config *cf, int argc, char **argv);
int cmd_queue(struct config *cf, int argc, char **argv);
int cmd_sendmail(struct config *cf, int argc, char **argv);

/* A verb of a directory command returns 0, -1 for a directory error (the
 * runner reports it), or an exit status it has already explained. */
struct cmd_verb {
	const char *name;
	int min, max;		/* arguments after the verb; max -1: no limit */
	int (*fn)(struct config *cf, struct directory *d, int argc, char **argv);
};
/* Find the verb in argv[1], check its argument count (else usage to
 * stderr, 2), open the directory and run it. */
int cmd_dir_run(struct config *cf, int argc, char **argv, const struct cmd_verb *verbs,
		const char *usage);
void cmd_print(const char *s, void *arg);
int cmd_mailbox(struct config *cf, int argc, char **argv);

/* Shared by the directory commands: open data_dir/directory.db or print
 * the error and return NULL. */
struct directory *cmd_directory_open(struct config *cf);
/* Read a password from stdin: the first line, without its newline. Returns
 * a malloc'd string or NULL (empty input). */
char *cmd_read_password(void);

#endif
