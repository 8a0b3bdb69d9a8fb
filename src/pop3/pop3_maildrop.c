/*
 * pop3_maildrop: the user's INBOX as a POP3 session sees it — the list of
 * messages (UID, size) fixed at login, as RFC 1939 wants (message numbers
 * do not change during a session; mail delivered meanwhile waits for the
 * next one) — and QUIT's changes, made by a worker with its own store
 * handles: \Seen on the messages retrieved (as Dovecot does by default),
 * then \Deleted and an expunge of exactly the messages the client
 * deleted, so a message another client flagged \Deleted over IMAP stays
 * where it is.
 * The session's handle is the loop's shared one (store.h); only the
 * update runs elsewhere.
 * Public (module-internal): pop3_maildrop_open, pop3_maildrop_close,
 * pop3_maildrop_msg_open, pop3_maildrop_update_new,
 * pop3_maildrop_update_changes, pop3_maildrop_update_run,
 * pop3_maildrop_update_result, pop3_maildrop_update_free.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pop3/pop3_int.h"
#include "store/store.h"
#include "util/xalloc.h"

static int
pop3_maildrop_collect(const struct store_msg *m, void *arg)
{
	struct pop3_maildrop *md = arg;
	static const size_t step = 256;

	if (md->n % step == 0)
		md->msgs = xrealloc(md->msgs, (md->n + step) * sizeof(*md->msgs));
	memset(&md->msgs[md->n], 0, sizeof(md->msgs[0]));
	md->msgs[md->n].uid = m->uid;
	md->msgs[md->n].size = m->size;
	md->n++;
	return 0;
}

struct pop3_maildrop *
pop3_maildrop_open(struct store *st, const char *user, const char **error_r)
{
	struct pop3_maildrop *md = xcalloc(1, sizeof(*md));
	struct store_folder_info info;

	if ((md->acct = store_account_open(st, user, error_r)) == NULL) {
		free(md);
		return NULL;
	}
	if ((md->f = store_folder_open(md->acct, "INBOX", NULL, error_r)) == NULL)
		goto fail;
	if (store_folder_info(md->f, &info) != 0 ||
	    store_fetch(md->f, 1, UINT32_MAX, 0, 0, pop3_maildrop_collect, md) < 0) {
		*error_r = "cannot read the mailbox index";
		goto fail;
	}
	md->uidvalidity = info.uidvalidity;
	return md;
fail:
	pop3_maildrop_close(&md);
	return NULL;
}

void
pop3_maildrop_close(struct pop3_maildrop **mdp)
{
	struct pop3_maildrop *md = *mdp;

	if (md == NULL)
		return;
	store_folder_close(&md->f);
	store_account_close(&md->acct);
	free(md->msgs);
	free(md);
	*mdp = NULL;
}

int
pop3_maildrop_msg_open(struct pop3_maildrop *md, uint32_t uid, off_t *len_r,
		       const char **error_r)
{
	return store_msg_open(md->f, uid, len_r, error_r);
}

/* --- QUIT's update (on a worker) ------------------------------------------ */

struct pop3_update {
	struct store *st;
	char *user;
	uint32_t (*del)[2];
	size_t ndel;
	uint32_t (*seen)[2];
	size_t nseen;
	int rc;
	unsigned expunged;
	char err[256];
};

struct pop3_update *
pop3_maildrop_update_new(const struct pop3_maildrop *md, struct store *st, const char *user)
{
	struct pop3_update *u = xcalloc(1, sizeof(*u));

	u->st = st;
	u->user = xstrdup(user);
	u->del = xcalloc(md->n + 1, sizeof(*u->del));
	u->seen = xcalloc(md->n + 1, sizeof(*u->seen));
	for (size_t i = 0; i < md->n; i++) {
		const struct pop3_msg *m = &md->msgs[i];

		if (m->deleted) {
			u->del[u->ndel][0] = u->del[u->ndel][1] = m->uid;
			u->ndel++;
		} else if (m->retrieved) {
			u->seen[u->nseen][0] = u->seen[u->nseen][1] = m->uid;
			u->nseen++;
		}
	}
	return u;
}

size_t
pop3_maildrop_update_changes(const struct pop3_update *u)
{
	return u->ndel + u->nseen;
}

static void
pop3_maildrop_update_count(uint32_t uid, void *arg)
{
	struct pop3_update *u = arg;

	u->expunged++;
}

static void
pop3_maildrop_update_fail(struct pop3_update *u, const char *what, const char *e)
{
	if (u->rc == 0)
		snprintf(u->err, sizeof(u->err), "%s: %s", what, e ? e : "failed");
	u->rc = -1;
}

void
pop3_maildrop_update_run(void *arg)
{
	struct pop3_update *u = arg;
	struct store_uidset seen = { (const uint32_t(*)[2])u->seen, u->nseen };
	struct store_uidset del = { (const uint32_t(*)[2])u->del, u->ndel };
	struct store_account *a;
	struct store_folder *f;
	const char *e = NULL;

	if ((a = store_account_open(u->st, u->user, &e)) == NULL) {
		pop3_maildrop_update_fail(u, "open", e);
		return;
	}
	if ((f = store_folder_open(a, "INBOX", NULL, &e)) == NULL) {
		pop3_maildrop_update_fail(u, "open INBOX", e);
		store_account_close(&a);
		return;
	}
	if (u->nseen > 0 &&
	    store_flags(f, &seen, STORE_FLAGS_ADD, STORE_F_SEEN, NULL, 0, NULL, NULL, NULL, &e) < 0)
		pop3_maildrop_update_fail(u, "\\Seen", e);
	if (u->ndel > 0) {
		if (store_flags(f, &del, STORE_FLAGS_ADD, STORE_F_DELETED, NULL, 0, NULL, NULL, NULL,
				&e) < 0)
			pop3_maildrop_update_fail(u, "\\Deleted", e);
		else if (store_expunge(f, &del, pop3_maildrop_update_count, u, &e) < 0)
			pop3_maildrop_update_fail(u, "expunge", e);
	}
	store_folder_close(&f);
	store_account_close(&a);
}

int
pop3_maildrop_update_result(const struct pop3_update *u, unsigned *expunged_r,
			    const char **error_r)
{
	*expunged_r = u->expunged;
	*error_r = u->rc == 0 ? NULL : u->err;
	return u->rc;
}

void
pop3_maildrop_update_free(struct pop3_update **up)
{
	struct pop3_update *u = *up;

	if (u == NULL)
		return;
	free(u->user);
	free(u->del);
	free(u->seen);
	free(u);
	*up = NULL;
}
