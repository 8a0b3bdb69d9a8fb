/*
 * imap_sync: the session's view of its selected folder — the map from
 * sequence numbers to UIDs, the store's shared map of the folder
 * (store_uidmap) as of the session's last sync — and its synchronisation
 * with the store at each command: flag changes made elsewhere become
 * untagged FETCH FLAGS (from store_changes since the last MODSEQ the
 * session saw), and when the folder changed the session moves to the
 * folder's current map and tells the difference: EXPUNGE for each UID
 * gone, then EXISTS (and RECENT) for the new ones. While FETCH, STORE or
 * SEARCH answer (RFC 3501 §7.4.1) an expunge must not be told: the
 * session then keeps its map whole until a command that may.
 * Public (module-internal): imap_select_load, imap_unselect, imap_seq_of,
 * imap_sync, imap_set_arg.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"
#include "store/store.h"
#include "util/conn.h"
#include "util/log.h"
#include "util/xalloc.h"

static void
imap_view_set(struct imap_session *s, const struct store_uidmap *m)
{
	store_uidmap_release(&s->map);
	s->map = m;
	s->uids = m ? m->uids : NULL;
	s->nuids = m ? m->n : 0;
	s->view_stale = 0;
}

uint32_t
imap_seq_of(const struct imap_session *s, uint32_t uid)
{
	uint32_t lo = 0, hi = s->nuids;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (s->uids[mid] == uid)
			return mid + 1;
		if (s->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

int
imap_select_load(struct imap_session *s, const char **error_r)
{
	struct store_folder_info info;
	const struct store_uidmap *m;

	if (store_folder_info(s->folder, &info) != 0) {
		*error_r = "cannot read the folder";
		return -1;
	}
	if ((m = store_uidmap(s->folder)) == NULL) {
		*error_r = "cannot read the folder's index";
		return -1;
	}
	s->uidvalidity = info.uidvalidity;
	imap_view_set(s, m);
	s->modseq = m->modseq;
	s->announced = s->nuids;
	return 0;
}

void
imap_unselect(struct imap_session *s)
{
	imap_view_set(s, NULL);
	store_folder_close(&s->folder);
	free(s->folder_name);
	s->folder_name = NULL;
	s->announced = 0;
	s->recent_lo = 0;
	s->readonly = 0;
	if (s->state == IMAP_SELECTED)
		s->state = IMAP_AUTH;
}

struct imap_sync_ctx {
	struct imap_session *s;
	int (*skip)(uint32_t uid, void *arg);
	void *skip_arg;
};

static int
imap_sync_changed(const struct store_msg *m, void *arg)
{
	struct imap_sync_ctx *x = arg;
	struct imap_session *s = x->s;
	char flags[4096];
	uint32_t seq = imap_seq_of(s, m->uid);

	if (seq == 0 || seq > s->announced)
		return 0;
	if (x->skip != NULL && x->skip(m->uid, x->skip_arg))
		return 0;
	store_flag_names(m->flags, m->keywords, flags, sizeof(flags));
	conn_printf(s->c, "* %u FETCH (UID %u FLAGS (%s%s%s))\r\n", seq, m->uid, flags,
		    s->recent_lo && m->uid >= s->recent_lo && flags[0] ? " " : "",
		    s->recent_lo && m->uid >= s->recent_lo ? "\\Recent" : "");
	return 0;
}

static uint32_t
imap_recent_count(const struct imap_session *s)
{
	uint32_t n = 0;

	if (s->recent_lo == 0)
		return 0;
	for (uint32_t i = s->nuids; i > 0 && s->uids[i - 1] >= s->recent_lo; i--)
		n++;
	return n;
}

/* How many of the view's UIDs m no longer has. */
static uint32_t
imap_view_gone(const struct imap_session *s, const struct store_uidmap *m)
{
	uint32_t gone = 0, j = 0;

	for (uint32_t i = 0; i < s->nuids; i++) {
		while (j < m->n && m->uids[j] < s->uids[i])
			j++;
		if (j == m->n || m->uids[j] != s->uids[i])
			gone++;
	}
	return gone;
}

/* EXPUNGE for each UID of the view that m lacks, in ascending order (each
 * number as it is once the ones before are gone), then m is the view. */
static void
imap_view_move(struct imap_session *s, const struct store_uidmap *m)
{
	uint32_t gone = 0, j = 0;

	for (uint32_t i = 0; i < s->nuids; i++) {
		while (j < m->n && m->uids[j] < s->uids[i])
			j++;
		if (j < m->n && m->uids[j] == s->uids[i])
			continue;
		if (i + 1 - gone <= s->announced) {
			conn_printf(s->c, "* %u EXPUNGE\r\n", i + 1 - gone);
			s->announced--;
		}
		gone++;
		s->nexpunged++;
	}
	imap_view_set(s, m);
}

void
imap_sync(struct imap_session *s, int allow_expunge, int (*skip)(uint32_t uid, void *arg),
	  void *skip_arg)
{
	struct imap_sync_ctx x = { s, skip, skip_arg };
	const struct store_uidmap *m;
	uint64_t highest = s->modseq;
	const char *err = NULL;
	uint32_t before, gone;

	if (s->folder == NULL)
		return;
	/* flags first, by the numbers the client knows now */
	if (store_changes(s->folder, s->modseq, 0, imap_sync_changed, NULL, &x, &highest,
			  &err) != 0) {
		log_debug(s->id, "event=sync_failed service=imap user=%s error=%s", log_addr(s->user),
			  log_q(err ? err : "unknown"));
		return;
	}
	s->synced = allow_expunge ? 2 : 1;
	if (highest == s->modseq && !(s->view_stale && allow_expunge))
		return;
	s->modseq = highest;
	if ((m = store_uidmap(s->folder)) == NULL) {
		log_debug(s->id, "event=sync_failed service=imap user=%s error=%s", log_addr(s->user),
			  log_q("cannot read the folder's index"));
		return;
	}
	if (m == s->map) {
		store_uidmap_release(&m);
		return;
	}
	gone = imap_view_gone(s, m);
	if (!allow_expunge && gone > 0) {
		/* the new messages wait with the expunges */
		store_uidmap_release(&m);
		s->view_stale = 1;
		return;
	}
	before = s->nuids - gone;
	imap_view_move(s, m);
	if (s->nuids > before && !s->readonly) {
		uint32_t first = 0;

		if (store_folder_take_recent(s->folder, &first) == 0 && first > 0 &&
		    (s->recent_lo == 0 || first < s->recent_lo))
			s->recent_lo = first;
	}
	if (s->nuids != s->announced) {
		conn_printf(s->c, "* %u EXISTS\r\n", s->nuids);
		if (s->nuids > before)
			conn_printf(s->c, "* %u RECENT\r\n", imap_recent_count(s));
		s->announced = s->nuids;
	}
}

/* A sequence set over the messages the client knows (uid: a UID set), as
 * ranges of UIDs. Sequence numbers past the last are an error, or with
 * clamp (SEARCH) simply match nothing. 0, or -1. */
int
imap_set_parse(struct imap_session *s, const char *str, int uid, int clamp,
	       struct imap_seqset *uids_r)
{
	struct imap_seqset set = { NULL, 0 };
	size_t k = 0;

	memset(uids_r, 0, sizeof(*uids_r));
	if (uid) {
		uint32_t star = s->announced ? s->uids[s->announced - 1] : 0;

		if (imap_seqset_parse(str, star, &set) != 0)
			return -1;
		*uids_r = set;
		return 0;
	}
	if (imap_seqset_parse(str, s->announced, &set) != 0)
		return -1;
	for (size_t i = 0; i < set.n; i++) {
		uint32_t lo = set.r[i][0], hi = set.r[i][1];

		if (lo == 0 || hi > s->announced) {
			if (!clamp || lo == 0) {
				imap_seqset_free(&set);
				return -1;
			}
			if (lo > s->announced)
				continue;
			hi = s->announced;
		}
		set.r[k][0] = s->uids[lo - 1];
		set.r[k][1] = s->uids[hi - 1];
		k++;
	}
	set.n = k;
	*uids_r = set;
	return 0;
}

int
imap_set_arg(struct imap_session *s, const struct imap_arg *a, struct imap_seqset *uids_r)
{
	const char *str;

	memset(uids_r, 0, sizeof(*uids_r));
	if (!imap_arg_atom(a, &str) || imap_set_parse(s, str, s->uid, 0, uids_r) != 0) {
		imap_done(s, "BAD", "Invalid %s set (there are %u messages)",
			  s->uid ? "UID" : "sequence", s->announced);
		return -1;
	}
	return 0;
}
