/*
 * cmd_mailbox: `tandem mailbox verify|repair ADDRESS` compares a user's
 * mailbox index with the Maildir files (one line per finding) and, with
 * repair, mends the index. Safe while the server runs: the index is
 * SQLite with its own locking.
 * Public: cmd_mailbox.
 */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "directory/directory.h"
#include "store/store.h"

static int
cmd_mailbox_check(struct config *cf, struct directory *d, int argc, char **argv, int repair)
{
	struct store_settings set = { cf->data_dir, cf->expunged_retention, NULL };
	struct store *s;
	const char *e;
	int n;

	switch (directory_user_exists(d, argv[0])) {
	case -1:
		return -1;
	case 0:
		fprintf(stderr, "tandem: no such user %s\n", argv[0]);
		return 1;
	}
	if ((s = store_new(&set, NULL, &e)) == NULL) {
		fprintf(stderr, "tandem: mailbox store: %s\n", e);
		return 1;
	}
	n = store_verify(s, argv[0], repair, stdout, &e);
	store_free(&s);
	if (n < 0) {
		fprintf(stderr, "tandem: mailbox %s: %s\n", argv[0], e);
		return 1;
	}
	if (n == 0)
		printf("mailbox %s: index and files agree\n", argv[0]);
	else if (repair)
		printf("mailbox %s: %d finding%s, repaired\n", argv[0], n, n == 1 ? "" : "s");
	else
		printf("mailbox %s: %d finding%s; `tandem mailbox repair %s` mends the index\n",
		       argv[0], n, n == 1 ? "" : "s", argv[0]);
	/* verify: 1 when something is wrong, so scripts can tell */
	return repair || n == 0 ? 0 : 1;
}

static int
cmd_mailbox_verify(struct config *cf, struct directory *d, int argc, char **argv)
{
	return cmd_mailbox_check(cf, d, argc, argv, 0);
}

static int
cmd_mailbox_repair(struct config *cf, struct directory *d, int argc, char **argv)
{
	return cmd_mailbox_check(cf, d, argc, argv, 1);
}

static const struct cmd_verb cmd_mailbox_verbs[] = {
	{ "verify", 1, 1, cmd_mailbox_verify },
	{ "repair", 1, 1, cmd_mailbox_repair },
	{ NULL, 0, 0, NULL }
};

int
cmd_mailbox(struct config *cf, int argc, char **argv)
{
	return cmd_dir_run(cf, argc, argv, cmd_mailbox_verbs,
			   "usage: tandem mailbox verify|repair ADDRESS\n");
}
