/*
 * imap_sync: the session's view of its selected folder — the map from
 * sequence numbers to UIDs, loaded at SELECT, and its synchronisation with
 * the store at each command: new messages become EXISTS (and RECENT),
 * flag changes made elsewhere untagged FETCH FLAGS, expunges EXPUNGE —
 * except while FETCH, STORE or SEARCH answer (RFC 3501 §7.4.1), when they
 * wait for the next command that may announce them. What changed is what
 * store_changes reports since the last MODSEQ the session saw.
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
imap_map_add(struct imap_session *s, uint32_t uid)
{
	if (s->nuids == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->uids = xrealloc(s->uids, s->cap * sizeof(*s->uids));
	}
	s->uids[s->nuids++] = uid;
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

static int
imap_load_one(const struct store_msg *m, void *arg)
{
	struct imap_session *s = arg;

	if (s->nuids == 0 || m->uid > s->uids[s->nuids - 1])
		imap_map_add(s, m->uid);
	return 0;
}

int
imap_select_load(struct imap_session *s, const char **error_r)
{
	struct store_folder_info info;

	if (store_folder_info(s->folder, &info) != 0) {
		*error_r = "cannot read the folder";
		return -1;
	}
	s->uidvalidity = info.uidvalidity;
	s->modseq = info.highestmodseq;
	s->nuids = 0;
	if (store_fetch(s->folder, 1, UINT32_MAX, 0, 0, imap_load_one, s) < 0) {
		*error_r = "cannot read the folder's index";
		return -1;
	}
	s->announced = s->nuids;
	return 0;
}

void
imap_unselect(struct imap_session *s)
{
	store_folder_close(&s->folder);
	free(s->folder_name);
	s->folder_name = NULL;
	free(s->uids);
	s->uids = NULL;
	s->nuids = s->cap = s->announced = 0;
	free(s->pexp);
	s->pexp = NULL;
	s->npexp = 0;
	s->recent_lo = 0;
	s->readonly = 0;
	if (s->state == IMAP_SELECTED)
		s->state = IMAP_AUTH;
}

/* Take uid out of the map; EXPUNGE n when the client knew it. */
static void
imap_expunge_one(struct imap_session *s, uint32_t uid)
{
	uint32_t seq = imap_seq_of(s, uid);

	if (seq == 0)
		return;
	memmove(&s->uids[seq - 1], &s->uids[seq], (s->nuids - seq) * sizeof(*s->uids));
	s->nuids--;
	if (seq <= s->announced) {
		conn_printf(s->c, "* %u EXPUNGE\r\n", seq);
		s->announced--;
	}
	s->nexpunged++;
}

struct imap_sync_ctx {
	struct imap_session *s;
	int allow_expunge;
	int (*skip)(uint32_t uid, void *arg);
	void *skip_arg;
	int new_mail;
};

static int
imap_pexp_has(const struct imap_session *s, uint32_t uid)
{
	for (size_t i = 0; i < s->npexp; i++)
		if (s->pexp[i] == uid)
			return 1;
	return 0;
}

static int
imap_sync_changed(const struct store_msg *m, void *arg)
{
	struct imap_sync_ctx *x = arg;
	struct imap_session *s = x->s;
	char flags[4096];
	uint32_t seq;

	if (s->nuids == 0 || m->uid > s->uids[s->nuids - 1]) {
		imap_map_add(s, m->uid);
		x->new_mail = 1;
		return 0;
	}
	seq = imap_seq_of(s, m->uid);
	if (seq == 0 || seq > s->announced || imap_pexp_has(s, m->uid))
		return 0;
	if (x->skip != NULL && x->skip(m->uid, x->skip_arg))
		return 0;
	store_flag_names(m->flags, m->keywords, flags, sizeof(flags));
	conn_printf(s->c, "* %u FETCH (UID %u FLAGS (%s%s%s))\r\n", seq, m->uid, flags,
		    s->recent_lo && m->uid >= s->recent_lo && flags[0] ? " " : "",
		    s->recent_lo && m->uid >= s->recent_lo ? "\\Recent" : "");
	return 0;
}

static void
imap_sync_expunged(uint32_t uid, void *arg)
{
	struct imap_sync_ctx *x = arg;
	struct imap_session *s = x->s;

	if (imap_seq_of(s, uid) == 0)
		return;
	if (x->allow_expunge) {
		imap_expunge_one(s, uid);
		return;
	}
	if (!imap_pexp_has(s, uid)) {
		s->pexp = xrealloc(s->pexp, (s->npexp + 1) * sizeof(*s->pexp));
		s->pexp[s->npexp++] = uid;
	}
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

void
imap_sync(struct imap_session *s, int allow_expunge, int (*skip)(uint32_t uid, void *arg),
	  void *skip_arg)
{
	struct imap_sync_ctx x = { s, allow_expunge, skip, skip_arg, 0 };
	uint64_t highest = s->modseq;
	const char *err = NULL;

	if (s->folder == NULL)
		return;
	if (allow_expunge && s->npexp > 0) {
		for (size_t i = 0; i < s->npexp; i++)
			imap_expunge_one(s, s->pexp[i]);
		free(s->pexp);
		s->pexp = NULL;
		s->npexp = 0;
	}
	if (store_changes(s->folder, s->modseq, 0, imap_sync_changed, imap_sync_expunged, &x,
			  &highest, &err) != 0) {
		log_debug(s->id, "event=sync_failed service=imap user=%s error=%s", log_addr(s->user),
			  log_q(err ? err : "unknown"));
		return;
	}
	s->modseq = highest;
	if (s->nuids != s->announced) {
		if (x.new_mail && !s->readonly) {
			uint32_t first = 0;

			if (store_folder_take_recent(s->folder, &first) == 0 && first > 0 &&
			    (s->recent_lo == 0 || first < s->recent_lo))
				s->recent_lo = first;
		}
		conn_printf(s->c, "* %u EXISTS\r\n", s->nuids);
		if (x.new_mail)
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
