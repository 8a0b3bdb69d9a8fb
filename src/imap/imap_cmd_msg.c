/*
 * imap_cmd_msg: the commands on the selected folder's messages — STORE
 * (FLAGS, +FLAGS, -FLAGS, .SILENT), COPY and MOVE (RFC 6851) with UIDPLUS's
 * COPYUID, EXPUNGE and UID EXPUNGE, CLOSE (expunges silently in a
 * read-write folder), UNSELECT and CHECK. COPY, MOVE and EXPUNGE fsync:
 * they run on a worker, with a store handle of its own, while the
 * connection is paused; their EXPUNGE responses come from the sync that
 * ends the command.
 * Public (module-internal): imap_cmd_store, imap_cmd_copy, imap_cmd_move,
 * imap_cmd_expunge, imap_cmd_close, imap_cmd_unselect, imap_cmd_check.
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

/* --- STORE ---------------------------------------------------------------- */

struct imap_store_ctx {
	struct imap_session *s;
	const struct imap_seqset *set;
	int silent;
};

static void
imap_store_changed(const struct store_msg *m, void *arg)
{
	struct imap_store_ctx *x = arg;
	struct imap_session *s = x->s;
	uint32_t seq = imap_seq_of(s, m->uid);
	char names[4096];
	int recent = s->recent_lo && m->uid >= s->recent_lo;

	s->nstored++;
	if (x->silent || seq == 0 || seq > s->announced)
		return;
	store_flag_names(m->flags, m->keywords, names, sizeof(names));
	imap_printf(s, "* %u FETCH (FLAGS (%s%s%s)", seq, names, recent && names[0] ? " " : "",
		    recent ? "\\Recent" : "");
	if (s->uid)
		imap_printf(s, " UID %u", m->uid);
	imap_printf(s, ")\r\n");
}

static int
imap_store_skip(uint32_t uid, void *arg)
{
	return imap_seqset_contains(arg, uid);
}

void
imap_cmd_store(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	struct imap_seqset set;
	struct store_uidset us;
	struct imap_store_ctx x;
	enum store_flag_op op;
	const char *item, *err = NULL;
	unsigned flags = 0;
	char *kw = NULL;
	size_t len;
	int rc;

	if (n < 3 || !imap_arg_atom(&args[1], &item)) {
		imap_done(s, "BAD", "Syntax: STORE set FLAGS|+FLAGS|-FLAGS[.SILENT] (flags)");
		return;
	}
	op = item[0] == '+' ? STORE_FLAGS_ADD : item[0] == '-' ? STORE_FLAGS_REMOVE : STORE_FLAGS_SET;
	if (item[0] == '+' || item[0] == '-')
		item++;
	len = strlen(item);
	x.silent = len == 12 && strcasecmp(item, "FLAGS.SILENT") == 0;
	if (!x.silent && strcasecmp(item, "FLAGS") != 0) {
		imap_done(s, "BAD", "Unknown STORE item");
		return;
	}
	/* "(\Seen \Deleted)" or, as some clients send, the flags bare */
	for (size_t i = 2; i < n; i++) {
		unsigned f;
		char *k;

		if (imap_flags_arg(s, &args[i], &f, &k) != 0) {
			free(kw);
			return;
		}
		flags |= f;
		if (k != NULL) {
			size_t old = kw ? strlen(kw) : 0;

			kw = xrealloc(kw, old + strlen(k) + 2);
			if (old)
				kw[old++] = ' ';
			strcpy(kw + old, k);
			free(k);
		}
	}
	if (s->readonly) {
		free(kw);
		imap_done(s, "NO", "[READ-ONLY] The mailbox is read-only");
		return;
	}
	if (imap_set_arg(s, &args[0], &set) != 0) {
		free(kw);
		return;
	}
	x.s = s;
	x.set = &set;
	us.r = (const uint32_t(*)[2])set.r;
	us.n = set.n;
	rc = set.n == 0 ? 0 : store_flags(s->folder, &us, op, flags, kw, 0, imap_store_changed, NULL,
					  &x, &err);
	free(kw);
	if (rc != 0 && rc != STORE_MODIFIED) {
		imap_seqset_free(&set);
		imap_done(s, "NO", "[SERVERBUG] %s", err ? err : "Cannot change the flags");
		return;
	}
	imap_sync(s, s->uid, imap_store_skip, &set);
	imap_seqset_free(&set);
	imap_done(s, "OK", "%sSTORE completed", s->uid ? "UID " : "");
}

/* --- jobs on the workers ---------------------------------------------------- */

struct imap_msg_job {
	struct imap_session *s;
	struct store *store;
	char *user, *folder, *dest;
	struct imap_seqset set;
	int all;                 /* EXPUNGE of every \Deleted message */
	int move;
	long long quota;
	uint32_t uidvalidity;
	uint32_t (*pairs)[2];
	size_t npairs;
	int rc;
	char err[256];
	void (*answer)(struct imap_session *s, struct imap_msg_job *j);
};

static void
imap_msg_job_free(struct imap_msg_job *j)
{
	free(j->user);
	free(j->folder);
	free(j->dest);
	imap_seqset_free(&j->set);
	free(j->pairs);
	free(j);
}

static void
imap_copy_pair(uint32_t src, uint32_t dst, void *arg)
{
	struct imap_msg_job *j = arg;

	j->pairs = xrealloc(j->pairs, (j->npairs + 1) * sizeof(*j->pairs));
	j->pairs[j->npairs][0] = src;
	j->pairs[j->npairs][1] = dst;
	j->npairs++;
}

static void
imap_msg_work(void *arg)
{
	struct imap_msg_job *j = arg;
	struct store_account *a;
	struct store_folder *f = NULL;
	struct store_uidset us = { (const uint32_t(*)[2])j->set.r, j->set.n };
	const char *err = NULL;

	j->rc = STORE_ERROR;
	if ((a = store_account_open(j->store, j->user, &err)) != NULL &&
	    (f = store_folder_open(a, j->folder, &j->rc, &err)) != NULL) {
		if (j->dest != NULL)
			j->rc = store_copy(f, &us, j->dest, j->move, j->quota, &j->uidvalidity,
					   imap_copy_pair, NULL, j, &err);
		else
			j->rc = store_expunge(f, j->all ? NULL : &us, NULL, NULL, &err);
	}
	snprintf(j->err, sizeof(j->err), "%s", err ? err : "");
	store_folder_close(&f);
	store_account_close(&a);
}

static void
imap_msg_done(void *arg)
{
	struct imap_msg_job *j = arg;
	struct imap_session *s = j->s;

	if (j->rc != STORE_OK && j->rc != STORE_NO_FOLDER && j->rc != STORE_OVER_QUOTA &&
	    j->rc != STORE_TOO_BIG)
		log_err(s->id, "event=store_failed service=imap user=%s cmd=%s error=%s",
			log_addr(s->user), s->cmd ? s->cmd->name : "-", log_q(j->err));
	if (imap_job_resume(s)) {
		imap_msg_job_free(j);
		return;
	}
	j->answer(s, j);
	imap_msg_job_free(j);
	imap_session_process(s);
}

static void
imap_msg_job_start(struct imap_session *s, struct imap_msg_job *j)
{
	j->s = s;
	j->store = s->srv->d.store;
	j->user = xstrdup(s->user);
	j->folder = xstrdup(s->folder_name);
	imap_job(s, imap_msg_work, imap_msg_done, j);
}

/* --- COPY, MOVE ----------------------------------------------------------- */

/* "1:3,7" from the values in column col of the pairs: malloc'd. */
static char *
imap_uidlist(uint32_t (*p)[2], size_t n, int col)
{
	char *out = xmalloc(n * 24 + 1);
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n;) {
		size_t k = i;

		while (k + 1 < n && p[k + 1][col] == p[k][col] + 1 && p[k + 1][!col] == p[k][!col] + 1)
			k++;
		if (k > i)
			o += (size_t)sprintf(out + o, "%s%u:%u", i ? "," : "", p[i][col], p[k][col]);
		else
			o += (size_t)sprintf(out + o, "%s%u", i ? "," : "", p[i][col]);
		i = k + 1;
	}
	return out;
}

static void
imap_copy_answer(struct imap_session *s, struct imap_msg_job *j)
{
	const char *what = j->move ? "MOVE" : "COPY", *u = s->uid ? "UID " : "";
	char *src, *dst;

	if (j->rc == STORE_NO_FOLDER) {
		imap_done(s, "NO", "[TRYCREATE] The target mailbox does not exist");
		return;
	}
	if (j->rc == STORE_OVER_QUOTA || j->rc == STORE_TOO_BIG) {
		imap_done(s, "NO", "[OVERQUOTA] Quota exceeded");
		return;
	}
	if (j->rc != STORE_OK) {
		imap_done(s, "NO", "[SERVERBUG] %s failed", what);
		return;
	}
	s->ncopied += (unsigned)j->npairs;
	if (j->npairs == 0) {
		imap_done(s, "OK", "%s%s completed", u, what);
		return;
	}
	src = imap_uidlist(j->pairs, j->npairs, 0);
	dst = imap_uidlist(j->pairs, j->npairs, 1);
	if (j->move) {
		/* RFC 6851 §4.3: COPYUID comes untagged, before the expunges */
		imap_printf(s, "* OK [COPYUID %u %s %s] Moved\r\n", j->uidvalidity, src, dst);
		imap_done(s, "OK", "%sMOVE completed", u);
	} else {
		imap_done(s, "OK", "[COPYUID %u %s %s] %sCOPY completed", j->uidvalidity, src, dst, u);
	}
	free(src);
	free(dst);
}

static void
imap_copy(struct imap_session *s, const struct imap_arg *args, size_t n, int move)
{
	struct imap_msg_job *j;
	struct imap_seqset set;
	char *dest;

	if (n != 2) {
		imap_done(s, "BAD", "Syntax: %s set mailbox", move ? "MOVE" : "COPY");
		return;
	}
	if (move && s->readonly) {
		imap_done(s, "NO", "[READ-ONLY] The mailbox is read-only");
		return;
	}
	if (imap_set_arg(s, &args[0], &set) != 0)
		return;
	if ((dest = imap_mailbox_arg(s, &args[1])) == NULL) {
		imap_seqset_free(&set);
		return;
	}
	if (set.n == 0) {
		imap_seqset_free(&set);
		free(dest);
		imap_done(s, "OK", "%s%s completed, nothing to do", s->uid ? "UID " : "",
			  move ? "MOVE" : "COPY");
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->set = set;
	j->dest = dest;
	j->move = move;
	j->quota = imap_quota(s);
	j->answer = imap_copy_answer;
	imap_msg_job_start(s, j);
}

void
imap_cmd_copy(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	imap_copy(s, args, n, 0);
}

void
imap_cmd_move(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	imap_copy(s, args, n, 1);
}

/* --- EXPUNGE, CLOSE, UNSELECT, CHECK --------------------------------------- */

static void
imap_expunge_answer(struct imap_session *s, struct imap_msg_job *j)
{
	if (j->rc != STORE_OK)
		imap_done(s, "NO", "[SERVERBUG] EXPUNGE failed");
	else
		imap_done(s, "OK", "%sEXPUNGE completed", s->uid ? "UID " : "");
}

void
imap_cmd_expunge(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	struct imap_msg_job *j;

	if (n != (s->uid ? 1u : 0u)) {
		imap_done(s, "BAD", s->uid ? "Syntax: UID EXPUNGE set" : "Syntax: EXPUNGE");
		return;
	}
	if (s->readonly) {
		imap_done(s, "NO", "[READ-ONLY] The mailbox is read-only");
		return;
	}
	j = xcalloc(1, sizeof(*j));
	if (s->uid) {
		if (imap_set_arg(s, &args[0], &j->set) != 0) {
			free(j);
			return;
		}
	} else {
		j->all = 1;
	}
	j->answer = imap_expunge_answer;
	imap_msg_job_start(s, j);
}

static void
imap_close_answer(struct imap_session *s, struct imap_msg_job *j)
{
	/* CLOSE sends no EXPUNGE responses (RFC 3501 §6.4.2) */
	imap_unselect(s);
	if (j->rc != STORE_OK)
		imap_done(s, "NO", "[SERVERBUG] The deleted messages could not be removed");
	else
		imap_done(s, "OK", "CLOSE completed");
}

void
imap_cmd_close(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	struct imap_msg_job *j;

	if (s->readonly) {
		imap_unselect(s);
		imap_done(s, "OK", "CLOSE completed");
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->all = 1;
	j->answer = imap_close_answer;
	imap_msg_job_start(s, j);
}

void
imap_cmd_unselect(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	imap_unselect(s);
	imap_done(s, "OK", "UNSELECT completed");
}

void
imap_cmd_check(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	imap_done(s, "OK", "CHECK completed");
}
