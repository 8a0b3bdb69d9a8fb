/*
 * pop3_maildrop: the user's INBOX as a POP3 session sees it — the list of
 * messages (UID, size) fixed at login, as RFC 1939 wants (message numbers
 * do not change during a session; mail delivered meanwhile waits for the
 * next one) — and QUIT's changes: \Seen on the messages retrieved (as
 * Dovecot does by default), then \Deleted and an expunge of exactly the
 * messages the client deleted, so a message another client flagged
 * \Deleted over IMAP stays where it is.
 * Opening (which syncs the folder with files that appeared from
 * elsewhere, and reads every row) and the update run on a worker. The
 * handle opened there is the session's own, not the loop's shared one
 * (store.h), so the session may use it on the loop between those jobs:
 * one thread at a time, as the store asks.
 * Public (module-internal): pop3_maildrop_open, pop3_maildrop_close,
 * pop3_maildrop_msg_open, pop3_maildrop_changes, pop3_maildrop_update.
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

/* The UIDs of the messages with the given mark (deleted, or retrieved and
 * not deleted), as single-UID ranges. */
static size_t
pop3_maildrop_set(const struct pop3_maildrop *md, int deleted, uint32_t (*r)[2])
{
	size_t n = 0;

	for (size_t i = 0; i < md->n; i++) {
		const struct pop3_msg *m = &md->msgs[i];

		if (deleted ? m->deleted : (m->retrieved && !m->deleted)) {
			r[n][0] = r[n][1] = m->uid;
			n++;
		}
	}
	return n;
}

size_t
pop3_maildrop_changes(const struct pop3_maildrop *md)
{
	size_t n = 0;

	for (size_t i = 0; i < md->n; i++)
		n += md->msgs[i].deleted || md->msgs[i].retrieved;
	return n;
}

static void
pop3_maildrop_count(uint32_t uid, void *arg)
{
	(*(unsigned *)arg)++;
}

int
pop3_maildrop_update(struct pop3_maildrop *md, unsigned *expunged_r, const char **error_r)
{
	uint32_t(*r)[2] = xcalloc(md->n + 1, sizeof(*r));
	struct store_uidset set = { (const uint32_t(*)[2])r, 0 };
	int rc = 0;

	*expunged_r = 0;
	/* \Seen first: a failure there loses no mail, so the deletions
	 * still happen */
	if ((set.n = pop3_maildrop_set(md, 0, r)) > 0 &&
	    store_flags(md->f, &set, STORE_FLAGS_ADD, STORE_F_SEEN, NULL, 0, NULL, NULL, NULL,
			error_r) < 0)
		rc = -1;
	if ((set.n = pop3_maildrop_set(md, 1, r)) > 0) {
		if (store_flags(md->f, &set, STORE_FLAGS_ADD, STORE_F_DELETED, NULL, 0, NULL, NULL,
				NULL, error_r) < 0 ||
		    store_expunge(md->f, &set, pop3_maildrop_count, expunged_r, error_r) < 0)
			rc = -1;
	}
	free(r);
	return rc;
}
