/*
 * cmd_user: `tandem user add|del|passwd|quota|limits|allow-from|
 * disallow-from|show|list`. The directory holds the user, the quota and the addresses
 * the user may send as; the store holds the mailbox, whose usage
 * `show` reports and which `del` moves aside (so a later user of the same
 * name starts with an empty mailbox, and the admin still has the mail).
 * Public: cmd_user.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "directory/directory.h"
#include "store/store.h"
#include "util/xalloc.h"

/* Set (or create, when add) the user's password from stdin. */
static int
cmd_user_password(struct directory *d, const char *address, int add)
{
	char *pw;
	int rc;

	/* Complain before asking for a password that would be thrown away. */
	switch (directory_user_exists(d, address)) {
	case -1:
		return -1;
	case 0:
		if (!add) {
			fprintf(stderr, "tandem: no such user %s\n", address);
			return 1;
		}
		break;
	default:
		if (add) {
			fprintf(stderr, "tandem: user %s already exists\n", address);
			return 1;
		}
	}
	if ((pw = cmd_read_password()) == NULL) {
		fprintf(stderr, "tandem: empty password refused (give it on the first line of stdin)\n");
		return 1;
	}
	rc = add ? directory_user_add(d, address, pw) : directory_user_passwd(d, address, pw);
	explicit_bzero(pw, strlen(pw));
	free(pw);
	return rc;
}

static int
cmd_user_add(struct config *cf, struct directory *d, int argc, char **argv)
{
	return cmd_user_password(d, argv[0], 1);
}

static int
cmd_user_passwd(struct config *cf, struct directory *d, int argc, char **argv)
{
	return cmd_user_password(d, argv[0], 0);
}

/* The store for a CLI command (no event loop: no watchers). */
static struct store *
cmd_user_store(const struct config *cf)
{
	struct store_settings set = { cf->data_dir, cf->expunged_retention, NULL };
	struct store *s;
	const char *e;

	if ((s = store_new(&set, NULL, &e)) == NULL)
		fprintf(stderr, "tandem: mailbox store: %s\n", e);
	return s;
}

/* The mailbox goes aside first: a user deleted with the mailbox left in
 * place would hand it to the next user of that name. */
static int
cmd_user_del(struct config *cf, struct directory *d, int argc, char **argv)
{
	char moved[4096];
	struct store *s;
	int rc;

	switch (directory_user_exists(d, argv[0])) {
	case -1:
		return -1;
	case 0:
		fprintf(stderr, "tandem: no such user %s\n", argv[0]);
		return 1;
	}
	if ((s = cmd_user_store(cf)) == NULL)
		return 1;
	rc = store_account_remove(s, argv[0], moved, sizeof(moved));
	store_free(&s);
	if (rc != 0) {
		fprintf(stderr, "tandem: %s: the mailbox could not be moved aside; the user is kept\n",
			argv[0]);
		return 1;
	}
	if (directory_user_del(d, argv[0]) != 0)
		return -1;
	if (moved[0] != '\0')
		printf("user %s deleted; the mailbox was moved to %s (remove it when it is no longer "
		       "needed; a new user %s starts with an empty mailbox)\n", argv[0], moved, argv[0]);
	else
		printf("user %s deleted; there was no mailbox\n", argv[0]);
	return 0;
}

static int
cmd_user_list(struct config *cf, struct directory *d, int argc, char **argv)
{
	return directory_user_list(d, cmd_print, NULL);
}

static int
cmd_user_quota(struct config *cf, struct directory *d, int argc, char **argv)
{
	long long bytes;

	if (strcmp(argv[1], "default") == 0) {
		bytes = -1;
	} else if ((bytes = config_parse_size(argv[1])) < 0) {
		fprintf(stderr, "tandem: quota %s: expected a size like 500M or 2G, 0 for no limit, "
			"or default\n", argv[1]);
		return 2;
	}
	return directory_user_quota_set(d, argv[0], bytes);
}

/* "1.5 GiB" style, for people. */
static const char *
cmd_user_size(long long v, char *buf, size_t len)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double x = (double)v;
	int u = 0;

	while (x >= 1024 && u < 4) {
		x /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%lld B", v);
	else
		snprintf(buf, len, "%.1f %s", x, unit[u]);
	return buf;
}

struct cmd_user_show {
	struct store_account *a;
};

static int
cmd_user_show_folder(const struct store_folder_entry *e, void *arg)
{
	struct cmd_user_show *sh = arg;
	struct store_folder_info fi;
	const char *err;
	char sz[32];

	if (e->noselect)
		return 0;
	if (store_folder_status(sh->a, e->name, &fi, &err) != 0) {
		printf("  %-20s (%s)\n", e->name, err);
		return 0;
	}
	printf("  %-20s %6" PRIu32 " messages, %5" PRIu32 " unseen, %s\n", e->name, fi.messages,
	       fi.unseen, cmd_user_size(fi.size, sz, sizeof(sz)));
	return 0;
}

/* "1000 (default)", "50", "no limit on". */
static void
cmd_user_limit_text(long long own, unsigned dflt, char *buf, size_t len)
{
	long long v = own >= 0 ? own : (long long)dflt;

	if (v == 0)
		snprintf(buf, len, "unlimited%s", own < 0 ? " (default)" : "");
	else
		snprintf(buf, len, "%lld%s", v, own < 0 ? " (default)" : "");
}

static void
cmd_user_show_grant(const char *pattern, void *arg)
{
	int *n = arg;

	printf("%s%s", (*n)++ ? ", " : "sends as: also ", pattern);
}

static int
cmd_user_show(struct config *cf, struct directory *d, int argc, char **argv)
{
	struct cmd_user_show sh;
	long long quota, eff, bytes = 0, msgs = 0;
	struct store *s;
	const char *e;
	char a[32], b[32];

	if (directory_user_quota_get(d, argv[0], &quota) != 0)
		return -1;
	eff = quota < 0 ? (long long)cf->default_quota : quota;
	printf("user:   %s\n", argv[0]);
	if (eff == 0)
		printf("quota:  none%s\n", quota < 0 ? " ([mailbox] default_quota)" : "");
	else
		printf("quota:  %s (%lld bytes)%s\n", cmd_user_size(eff, a, sizeof(a)), eff,
		       quota < 0 ? " ([mailbox] default_quota)" : "");
	{
		int n = 0;

		if (directory_sender_list(d, argv[0], cmd_user_show_grant, &n) != 0)
			return -1;
		printf(n ? " (tandem user allow-from)\n" :
		       "sends as: the address, its subaddresses and the aliases that lead to it\n");
	}
	{
		long long m, r, dm = 0, dr = 0;
		char lm[64], lr[64];

		if (directory_user_limits_get(d, argv[0], &m, &r) != 0 ||
		    directory_send_usage(d, argv[0], directory_today(), &dm, &dr) != 0)
			return -1;
		cmd_user_limit_text(m, cf->submission_max_messages, lm, sizeof(lm));
		cmd_user_limit_text(r, cf->submission_max_recipients, lr, sizeof(lr));
		printf("sending: %s messages and %s recipients a day; today %lld and %lld\n", lm, lr,
		       dm, dr);
	}
	if ((s = cmd_user_store(cf)) == NULL)
		return 1;
	if ((sh.a = store_account_open(s, argv[0], &e)) == NULL) {
		fprintf(stderr, "tandem: mailbox of %s: %s\n", argv[0], e);
		store_free(&s);
		return 1;
	}
	if (store_usage(sh.a, &bytes, &msgs) == 0) {
		printf("usage:  %s in %lld message%s", cmd_user_size(bytes, b, sizeof(b)), msgs,
		       msgs == 1 ? "" : "s");
		if (eff > 0)
			printf(" (%.0f%% of the quota)", 100.0 * (double)bytes / (double)eff);
		printf("\n");
	}
	printf("folders:\n");
	store_folder_list(sh.a, cmd_user_show_folder, &sh);
	store_account_close(&sh.a);
	store_free(&s);
	return 0;
}

/* "default" (-1), or a count; -2 when it is neither. */
static long long
cmd_user_count(const char *s)
{
	char *end;
	long long v;

	if (strcmp(s, "default") == 0)
		return -1;
	if (s[0] < '0' || s[0] > '9')
		return -2;
	v = strtoll(s, &end, 10);
	return *end != '\0' || v > 10000000 ? -2 : v;
}

/* Submission: what the user may send a day (0: no limit, default: the
 * [submission] keys). */
static int
cmd_user_limits(struct config *cf, struct directory *d, int argc, char **argv)
{
	long long m = cmd_user_count(argv[1]), r = cmd_user_count(argv[2]);

	if (m < -1 || r < -1) {
		fprintf(stderr, "tandem: limits %s %s: expected MESSAGES and RECIPIENTS a day, each a "
			"number up to 10000000, 0 for no limit, or default\n", argv[1], argv[2]);
		return 1;
	}
	return directory_user_limits_set(d, argv[0], m, r);
}

/* Submission: the user may also send as PATTERN (an address, or @domain). */
static int
cmd_user_allow_from(struct config *cf, struct directory *d, int argc, char **argv)
{
	return directory_sender_allow(d, argv[0], argv[1]);
}

static int
cmd_user_disallow_from(struct config *cf, struct directory *d, int argc, char **argv)
{
	return directory_sender_disallow(d, argv[0], argv[1]);
}

static const struct cmd_verb cmd_user_verbs[] = {
	{ "add", 1, 1, cmd_user_add },
	{ "del", 1, 1, cmd_user_del },
	{ "passwd", 1, 1, cmd_user_passwd },
	{ "quota", 2, 2, cmd_user_quota },
	{ "limits", 3, 3, cmd_user_limits },
	{ "allow-from", 2, 2, cmd_user_allow_from },
	{ "disallow-from", 2, 2, cmd_user_disallow_from },
	{ "show", 1, 1, cmd_user_show },
	{ "list", 0, 0, cmd_user_list },
	{ NULL, 0, 0, NULL }
};

int
cmd_user(struct config *cf, int argc, char **argv)
{
	return cmd_dir_run(cf, argc, argv, cmd_user_verbs,
			   "usage: tandem user add|passwd ADDRESS   (password on stdin)\n"
			   "       tandem user del ADDRESS          (the mailbox is moved aside)\n"
			   "       tandem user quota ADDRESS SIZE|0|default\n"
			   "       tandem user limits ADDRESS MESSAGES|0|default RECIPIENTS|0|default\n"
			   "       tandem user allow-from|disallow-from ADDRESS SENDER|@DOMAIN\n"
			   "       tandem user show ADDRESS\n"
			   "       tandem user list\n");
}
