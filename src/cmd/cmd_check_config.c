/*
 * cmd_check_config: `tandem check-config [-v] [--doc]`. The config has
 * already been parsed (errors name file, line and key); here the things a
 * parse cannot see are checked, so that check-config accepts nothing serve
 * refuses: files that must exist, the service user, the log file's
 * directory, and relay domains that the directory also holds as local.
 * -v prints every key with its effective value; --doc README's table.
 * Public: cmd_check_config, cmd_check_config_doc, cmd_check_config_relay_local.
 */
#include <errno.h>
#include <libgen.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "directory/directory.h"
#include "server/server.h"
#include "util/log.h"
#include "util/xalloc.h"

/* "FILE:LINE: [section] key: " (no LINE for a default), as config_load
 * names its errors. */
static void
check_error(const struct config *cf, const char *section, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
check_error(const struct config *cf, const char *section, const char *key, const char *fmt, ...)
{
	int line = config_line(cf, section, key);
	va_list ap;

	if (line > 0)
		fprintf(stderr, "%s:%d: [%s] %s: ", cf->path, line, section, key);
	else
		fprintf(stderr, "%s: [%s] %s: ", cf->path, section, key);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
cmd_check_config_doc(void)
{
	config_dump_doc(stdout);
	return fflush(stdout) == 0 ? 0 : 1;
}

struct relay_local {
	const struct config *cf;
	FILE *out;
	int n;
};

static void
relay_local_one(const char *domain, void *arg)
{
	struct relay_local *rl = arg;

	if (!config_is_relay_domain(rl->cf, domain))
		return;
	rl->n++;
	if (rl->out != NULL && config_line(rl->cf, "relay", "domains") > 0)
		fprintf(rl->out, "%s:%d: ", rl->cf->path, config_line(rl->cf, "relay", "domains"));
	else if (rl->out != NULL)
		fprintf(rl->out, "%s: ", rl->cf->path);
	if (rl->out != NULL)
		fprintf(rl->out, "warning: [relay] domains: %s is also a local domain in the "
				 "directory, so RCPT checks its mailboxes and refuses valid users "
				 "with 550; relay domains need no `domain add`: run `tandem domain del "
				 "%s` and load the recipients with `tandem recipients load %s FILE`\n",
			domain, domain, domain);
	else
		log_warn(NULL, "event=config_warning key=relay.domains domain=%s "
			       "reason=\"also a local domain in the directory: valid users get 550\" "
			       "hint=\"tandem domain del %s; tandem recipients load %s FILE\"",
			 log_q(domain), domain, domain);
}

int
cmd_check_config_relay_local(const struct config *cf, struct directory *dir, FILE *out)
{
	struct relay_local rl = { cf, out, 0 };

	if (cf->relay_domains.n == 0)
		return 0;
	if (directory_domain_list(dir, relay_local_one, &rl) != 0)
		return -1;
	return rl.n;
}

/* The warning above, from check-config: only when the directory exists
 * (check-config creates nothing in data_dir). */
static void
check_relay_local(const struct config *cf)
{
	char *path = xasprintf("%s/directory.db", cf->data_dir);
	struct directory *dir;
	char err[512];

	if (cf->relay_domains.n > 0 && access(path, F_OK) == 0) {
		if ((dir = directory_open(cf->data_dir, err, sizeof(err))) == NULL) {
			fprintf(stderr, "%s: warning: cannot check the directory: %s\n", cf->path, err);
		} else {
			if (cmd_check_config_relay_local(cf, dir, stderr) < 0)
				fprintf(stderr, "%s: warning: cannot check the directory: %s\n", cf->path,
					directory_error(dir));
			directory_close(&dir);
		}
	}
	free(path);
}

/* serve opens log_file before anything else and stops when it cannot. */
static int
check_log_file(const struct config *cf)
{
	struct stat st;
	char *copy, *dir;
	int bad = 0;

	if (cf->log_file == NULL)
		return 0;
	if (stat(cf->log_file, &st) == 0) {
		if (S_ISDIR(st.st_mode) || access(cf->log_file, W_OK) != 0) {
			check_error(cf, "server", "log_file", "cannot write %s: %s", cf->log_file,
				    S_ISDIR(st.st_mode) ? "a directory" : strerror(errno));
			bad = 1;
		}
		return bad;
	}
	copy = xstrdup(cf->log_file);
	dir = dirname(copy);
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		check_error(cf, "server", "log_file", "directory %s does not exist", dir);
		bad = 1;
	} else if (access(dir, W_OK) != 0) {
		check_error(cf, "server", "log_file", "cannot create %s: %s", cf->log_file,
			    strerror(errno));
		bad = 1;
	}
	free(copy);
	return bad;
}

int
cmd_check_config(struct config *cf, int argc, char **argv)
{
	int problems = 0, verbose = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-v") == 0) {
			verbose = 1;
		} else if (strcmp(argv[i], "--doc") == 0) {
			return cmd_check_config_doc();
		} else {
			fprintf(stderr, "usage: tandem check-config [-v] [--doc]\n");
			return 2;
		}
	}
	if (cf->tls_cert && access(cf->tls_cert, R_OK) != 0) {
		check_error(cf, "tls", "cert", "cannot read %s: %s", cf->tls_cert, strerror(errno));
		problems++;
	}
	if (cf->tls_key && access(cf->tls_key, R_OK) != 0) {
		check_error(cf, "tls", "key", "cannot read %s: %s", cf->tls_key, strerror(errno));
		problems++;
	}
	if (cf->user != NULL && getpwnam(cf->user) == NULL) {
		check_error(cf, "server", "user", "no such user %s", cf->user);
		problems++;
	}
	problems += check_log_file(cf);
	problems += server_check_listen(cf, stderr);
	if (cf->role == ROLE_PRIMARY && cf->relay_domains.n > 0)
		fprintf(stderr, "%s: note: [relay] domains on a primary: it will also act as a "
				"backup MX for them\n", cf->path);
	check_relay_local(cf);
	if (verbose)
		config_dump(cf, stdout);
	if (problems)
		return 1;
	printf("%s: ok (role %s, data_dir %s)\n", cf->path,
	       cf->role == ROLE_PRIMARY ? "primary" : "backup", cf->data_dir);
	return 0;
}
