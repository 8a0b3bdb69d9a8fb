/*
 * imap_cmd_folder: the commands on folders as a whole — SELECT, EXAMINE,
 * CREATE (with CREATE-SPECIAL-USE), DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE,
 * STATUS, and QUOTA's GETQUOTA, GETQUOTAROOT, SETQUOTA (refused: quotas
 * are the administrator's). Names are mUTF-7 on the wire and the store's
 * UTF-8 inside; response codes are RFC 5530's.
 * Public (module-internal): imap_cmd_select, imap_cmd_examine,
 * imap_cmd_create, imap_cmd_delete, imap_cmd_rename, imap_cmd_subscribe,
 * imap_cmd_unsubscribe, imap_cmd_status, imap_cmd_getquota,
 * imap_cmd_getquotaroot, imap_cmd_setquota.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"
#include "store/store.h"
#include "util/conn.h"
#include "util/log.h"
#include "util/xalloc.h"

/* The response code for a failed store call. */
static const char *
imap_store_code(int rc)
{
	switch (rc) {
	case STORE_NO_FOLDER:
		return "[NONEXISTENT] ";
	case STORE_EXISTS:
		return "[ALREADYEXISTS] ";
	case STORE_BAD_NAME:
		return "[CANNOT] ";
	case STORE_OVER_QUOTA:
	case STORE_TOO_BIG:
		return "[OVERQUOTA] ";
	default:
		return "[SERVERBUG] ";
	}
}

/* A folder command's end: NO with the response code of rc, or OK. */
static void
imap_store_done(struct imap_session *s, int rc, const char *err, const char *fail,
		const char *cmd)
{
	if (rc != 0)
		imap_done(s, "NO", "%s%s", imap_store_code(rc), err ? err : fail);
	else
		imap_done(s, "OK", "%s completed", cmd);
}

/* After the worker's open: the loop's own, now cheap, and the responses. */
static void
imap_select_finish(struct imap_session *s, char *name, int readonly)
{
	struct store_folder_info info;
	const char *err = NULL;
	uint32_t unseen = 0, recent;
	int rc = STORE_ERROR;

	if ((s->folder = store_folder_open(s->acct, name, &rc, &err)) == NULL) {
		free(name);
		imap_done(s, "NO", "%s%s", imap_store_code(rc),
			  rc == STORE_NO_FOLDER ? "Mailbox does not exist" : err ? err : "Cannot open");
		return;
	}
	s->folder_name = name;
	s->readonly = readonly;
	if (imap_select_load(s, &err) != 0 || store_folder_info(s->folder, &info) != 0) {
		imap_unselect(s);
		imap_done(s, "NO", "[SERVERBUG] %s", err ? err : "Cannot read the folder");
		return;
	}
	if (!readonly) {
		uint32_t first = 0;

		if (store_folder_take_recent(s->folder, &first) == 0 && first > 0)
			s->recent_lo = first;
		recent = 0;
		for (uint32_t i = s->nuids; s->recent_lo && i > 0 && s->uids[i - 1] >= s->recent_lo; i--)
			recent++;
	} else {
		recent = info.recent;
	}
	s->state = IMAP_SELECTED;
	if (info.first_unseen_uid != 0)
		unseen = imap_seq_of(s, info.first_unseen_uid);
	imap_printf(s, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n");
	imap_printf(s, "* OK [PERMANENTFLAGS (%s)] Flags permitted\r\n",
		    readonly ? "" : "\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*");
	imap_printf(s, "* %u EXISTS\r\n* %u RECENT\r\n", s->nuids, recent);
	if (unseen)
		imap_printf(s, "* OK [UNSEEN %u] First unseen\r\n", unseen);
	imap_printf(s, "* OK [UIDVALIDITY %u] UIDs valid\r\n", info.uidvalidity);
	imap_printf(s, "* OK [UIDNEXT %u] Predicted next UID\r\n", info.uidnext);
	imap_done(s, "OK", "[%s] %s completed", readonly ? "READ-ONLY" : "READ-WRITE",
		  readonly ? "EXAMINE" : "SELECT");
}

/* The first open of a folder reconciles its files with the index (a
 * directory scan, new UIDs): a worker does it with a handle of its own, so
 * the loop's open finds the folder in sync. */
struct imap_select_job {
	struct imap_session *s;
	struct store *store;
	char *user, *name;
	int readonly;
};

static void
imap_select_work(void *arg)
{
	struct imap_select_job *j = arg;
	const char *err = NULL;
	struct store_account *a = store_account_open(j->store, j->user, &err);
	struct store_folder *f = a ? store_folder_open(a, j->name, NULL, &err) : NULL;

	store_folder_close(&f);
	store_account_close(&a);
}

static void
imap_select_done(void *arg)
{
	struct imap_select_job *j = arg;
	struct imap_session *s = j->s;
	char *name = j->name;
	int readonly = j->readonly;

	free(j->user);
	free(j);
	if (imap_job_resume(s)) {
		free(name);
		return;
	}
	imap_select_finish(s, name, readonly);
	imap_session_process(s);
}

static void
imap_select(struct imap_session *s, const struct imap_arg *args, size_t n, int readonly)
{
	struct imap_select_job *j;
	char *name;

	if (n != 1) {
		imap_done(s, "BAD", "Syntax: %s mailbox", readonly ? "EXAMINE" : "SELECT");
		return;
	}
	if ((name = imap_mailbox_arg(s, &args[0])) == NULL)
		return;
	/* a SELECT that fails leaves nothing selected (RFC 3501 §6.3.1) */
	imap_unselect(s);
	if (store_folder_fresh(s->acct, name)) {
		/* nothing to reconcile: the loop's open costs a few reads */
		imap_select_finish(s, name, readonly);
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->s = s;
	j->store = s->srv->d.store;
	j->user = xstrdup(s->user);
	j->name = name;
	j->readonly = readonly;
	imap_job(s, imap_select_work, imap_select_done, j);
}

void
imap_cmd_select(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	imap_select(s, args, n, 0);
}

void
imap_cmd_examine(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	imap_select(s, args, n, 1);
}

static const struct {
	const char *name;
	unsigned bit;
} imap_su[] = {
	{ "\\Drafts", STORE_SU_DRAFTS }, { "\\Sent", STORE_SU_SENT }, { "\\Trash", STORE_SU_TRASH },
	{ "\\Junk", STORE_SU_JUNK }, { "\\Archive", STORE_SU_ARCHIVE }, { "\\All", STORE_SU_ALL },
	{ "\\Flagged", STORE_SU_FLAGGED },
};

/* The special-use attributes for a LIST reply: " \Sent ...". */
void
imap_special_use_names(unsigned su, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(imap_su) / sizeof(imap_su[0]); i++)
		if ((su & imap_su[i].bit) && o + strlen(imap_su[i].name) + 2 < len)
			o += (size_t)snprintf(buf + o, len - o, " %s", imap_su[i].name);
}

/* CREATE name [(USE (\Sent ...))] (RFC 6154 §3). 0, or -1 after answering. */
static int
imap_create_use(struct imap_session *s, const struct imap_arg *opts, unsigned *su_r)
{
	const struct imap_arg *l, *uses;
	size_t n, nu;
	const char *key, *u;

	*su_r = 0;
	if (!imap_arg_list(opts, &l, &n) || n != 2 || !imap_arg_atom(&l[0], &key) ||
	    strcasecmp(key, "USE") != 0 || !imap_arg_list(&l[1], &uses, &nu)) {
		imap_done(s, "BAD", "Syntax: CREATE mailbox [(USE (attributes))]");
		return -1;
	}
	for (size_t i = 0; i < nu; i++) {
		unsigned bit = 0;

		if (!imap_arg_atom(&uses[i], &u))
			goto bad;
		for (size_t k = 0; k < sizeof(imap_su) / sizeof(imap_su[0]); k++)
			if (strcasecmp(u, imap_su[k].name) == 0)
				bit = imap_su[k].bit;
		if (bit == 0)
			goto bad;
		*su_r |= bit;
	}
	return 0;
bad:
	imap_done(s, "NO", "[USEATTR] Unsupported special-use attribute");
	return -1;
}

void
imap_cmd_create(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	const char *wire, *err = NULL;
	unsigned su = 0;
	char *copy, *name;
	size_t len;
	int rc;

	if ((n != 1 && n != 2) || !imap_arg_astring(&args[0], &wire)) {
		imap_done(s, "BAD", "Syntax: CREATE mailbox");
		return;
	}
	if (n == 2 && imap_create_use(s, &args[1], &su) != 0)
		return;
	/* "a/" creates "a" (RFC 3501 §6.3.3) */
	copy = xstrdup(wire);
	len = strlen(copy);
	if (len > 1 && copy[len - 1] == '/')
		copy[len - 1] = '\0';
	name = imap_mailbox_str(s, copy);
	free(copy);
	if (name == NULL)
		return;
	rc = store_folder_create(s->acct, name, su, &err);
	free(name);
	imap_store_done(s, rc, err, "Cannot create", "CREATE");
}

void
imap_cmd_delete(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	const char *err = NULL;
	char *name;
	int rc;

	if (n != 1) {
		imap_done(s, "BAD", "Syntax: DELETE mailbox");
		return;
	}
	if ((name = imap_mailbox_arg(s, &args[0])) == NULL)
		return;
	if (strcmp(name, "INBOX") == 0) {
		free(name);
		imap_done(s, "NO", "[CANNOT] INBOX cannot be deleted");
		return;
	}
	if (s->folder_name != NULL && strcmp(s->folder_name, name) == 0)
		imap_unselect(s);
	rc = store_folder_delete(s->acct, name, &err);
	free(name);
	imap_store_done(s, rc, err, "Cannot delete", "DELETE");
}

void
imap_cmd_rename(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	const char *err = NULL;
	char *from, *to;
	int rc;

	if (n != 2) {
		imap_done(s, "BAD", "Syntax: RENAME from to");
		return;
	}
	if ((from = imap_mailbox_arg(s, &args[0])) == NULL)
		return;
	if ((to = imap_mailbox_arg(s, &args[1])) == NULL) {
		free(from);
		return;
	}
	rc = store_folder_rename(s->acct, from, to, &err);
	/* the selected folder (or one below the renamed one) has a new name:
	 * the worker jobs open it by name */
	if (rc == 0 && s->folder_name != NULL && strcmp(from, "INBOX") != 0) {
		size_t fl = strlen(from);

		if (strncmp(s->folder_name, from, fl) == 0 &&
		    (s->folder_name[fl] == '\0' || s->folder_name[fl] == '/')) {
			char *nn = xmalloc(strlen(to) + strlen(s->folder_name + fl) + 1);

			strcpy(nn, to);
			strcat(nn, s->folder_name + fl);
			free(s->folder_name);
			s->folder_name = nn;
		}
	}
	free(from);
	free(to);
	imap_store_done(s, rc, err, "Cannot rename", "RENAME");
}

static void
imap_subscribe(struct imap_session *s, const struct imap_arg *args, size_t n, int on)
{
	const char *err = NULL;
	char *name;
	int rc;

	if (n != 1) {
		imap_done(s, "BAD", "Syntax: %s mailbox", on ? "SUBSCRIBE" : "UNSUBSCRIBE");
		return;
	}
	if ((name = imap_mailbox_arg(s, &args[0])) == NULL)
		return;
	rc = store_folder_subscribe(s->acct, name, on, &err);
	free(name);
	imap_store_done(s, rc, err, "Cannot change", on ? "SUBSCRIBE" : "UNSUBSCRIBE");
}

void
imap_cmd_subscribe(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	imap_subscribe(s, args, n, 1);
}

void
imap_cmd_unsubscribe(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	imap_subscribe(s, args, n, 0);
}

/* STATUS reads a folder that may have changed on disk (a scan): a worker
 * does it with a handle of its own. */
static const char *const imap_status_items[] = { "MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY",
						 "UNSEEN", "SIZE" };
#define IMAP_STATUS_MAX 16

struct imap_status_job {
	struct imap_session *s;
	struct store *store;
	char *user, *name;
	unsigned char items[IMAP_STATUS_MAX];
	size_t nitems;
	struct store_folder_info info;
	int rc;
};

static void
imap_status_work(void *arg)
{
	struct imap_status_job *j = arg;
	const char *err = NULL;
	struct store_account *a = store_account_open(j->store, j->user, &err);

	j->rc = a ? store_folder_status(a, j->name, &j->info, &err) : STORE_ERROR;
	/* store_folder_status is -1 for a folder that is not there too */
	if (j->rc != 0 && a != NULL) {
		struct store_folder *f = store_folder_open(a, j->name, &j->rc, &err);

		if (f != NULL) {
			store_folder_close(&f);
			j->rc = STORE_ERROR;
		}
	}
	store_account_close(&a);
}

static void
imap_status_done(void *arg)
{
	struct imap_status_job *j = arg;
	struct imap_session *s = j->s;
	const struct store_folder_info *in = &j->info;

	if (imap_job_resume(s))
		goto out;
	if (j->rc != 0) {
		imap_done(s, "NO", "%s%s", imap_store_code(j->rc),
			  j->rc == STORE_NO_FOLDER ? "Mailbox does not exist" : "Cannot read the mailbox");
		imap_session_process(s);
		goto out;
	}
	imap_printf(s, "* STATUS ");
	imap_write_mailbox(s, j->name);
	imap_printf(s, " (");
	for (size_t i = 0; i < j->nitems; i++) {
		const unsigned it = j->items[i];
		long long v = it == 0 ? in->messages : it == 1 ? in->recent : it == 2 ? in->uidnext :
			      it == 3 ? in->uidvalidity : it == 4 ? in->unseen : in->size;

		imap_printf(s, "%s%s %lld", i ? " " : "", imap_status_items[it], v);
	}
	imap_printf(s, ")\r\n");
	imap_done(s, "OK", "STATUS completed");
	imap_session_process(s);
out:
	free(j->user);
	free(j->name);
	free(j);
}

void
imap_cmd_status(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	struct imap_status_job *j;
	const struct imap_arg *items;
	unsigned char codes[IMAP_STATUS_MAX];
	const char *it;
	char *name;
	size_t ni;

	if (n != 2 || !imap_arg_list(&args[1], &items, &ni) || ni == 0 || ni > IMAP_STATUS_MAX) {
		imap_done(s, "BAD", "Syntax: STATUS mailbox (items)");
		return;
	}
	for (size_t i = 0; i < ni; i++) {
		size_t k = 6;

		if (imap_arg_atom(&items[i], &it))
			for (k = 0; k < 6 && strcasecmp(it, imap_status_items[k]) != 0; k++)
				;
		if (k == 6) {
			imap_done(s, "BAD", "Unknown STATUS item");
			return;
		}
		codes[i] = (unsigned char)k;
	}
	if ((name = imap_mailbox_arg(s, &args[0])) == NULL)
		return;
	j = xcalloc(1, sizeof(*j));
	j->s = s;
	j->store = s->srv->d.store;
	j->user = xstrdup(s->user);
	j->name = name;
	memcpy(j->items, codes, ni);
	j->nitems = ni;
	imap_job(s, imap_status_work, imap_status_done, j);
}

/* --- QUOTA (RFC 9208): one root "" for the whole account ---------------- */

static void
imap_quota_line(struct imap_session *s)
{
	long long q = imap_quota(s), bytes = 0, msgs = 0;

	if (q <= 0) {
		imap_printf(s, "* QUOTA \"\" ()\r\n");
		return;
	}
	if (store_usage(s->acct, &bytes, &msgs) != 0)
		bytes = 0;
	imap_printf(s, "* QUOTA \"\" (STORAGE %lld %lld)\r\n", (bytes + 1023) / 1024, q / 1024);
}

void
imap_cmd_getquota(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	const char *root;

	if (n != 1 || !imap_arg_astring(&args[0], &root)) {
		imap_done(s, "BAD", "Syntax: GETQUOTA root");
		return;
	}
	if (root[0] != '\0') {
		imap_done(s, "NO", "[NONEXISTENT] No such quota root");
		return;
	}
	imap_quota_line(s);
	imap_done(s, "OK", "GETQUOTA completed");
}

void
imap_cmd_getquotaroot(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	struct store_folder *f;
	const char *err = NULL;
	char *name;
	int rc;

	if (n != 1) {
		imap_done(s, "BAD", "Syntax: GETQUOTAROOT mailbox");
		return;
	}
	if ((name = imap_mailbox_arg(s, &args[0])) == NULL)
		return;
	if ((f = store_folder_open(s->acct, name, &rc, &err)) == NULL) {
		free(name);
		imap_done(s, "NO", "%s%s", imap_store_code(rc),
			  rc == STORE_NO_FOLDER ? "Mailbox does not exist" : err ? err : "Cannot read");
		return;
	}
	store_folder_close(&f);
	imap_printf(s, "* QUOTAROOT ");
	imap_write_mailbox(s, name);
	imap_printf(s, " \"\"\r\n");
	free(name);
	imap_quota_line(s);
	imap_done(s, "OK", "GETQUOTAROOT completed");
}

void
imap_cmd_setquota(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	imap_done(s, "NO", "[NOPERM] Quotas are set by the administrator");
}
