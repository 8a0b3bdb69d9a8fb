/*
 * imap_cmd_append: APPEND (RFC 3501 §6.3.11 with UIDPLUS's APPENDUID). The
 * decision comes at the message literal's header, before any "+": a
 * message over [imap] max_literal ([TOOBIG]) or over the quota
 * ([OVERQUOTA]), or a folder that does not exist ([TRYCREATE]), is refused
 * without reading it. An accepted message streams from the input straight
 * into store_append_write (never buffered whole); the commit, which
 * fsyncs, is a worker's job.
 * Public (module-internal): imap_append_literal, imap_append_stream,
 * imap_append_free, imap_cmd_append.
 */
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "conf/config.h"
#include "imap/imap_int.h"
#include "imap/imap_text.h"
#include "imap/imap_utf7.h"
#include "store/store.h"
#include "util/conn.h"
#include "util/log.h"
#include "util/xalloc.h"

void
imap_append_free(struct imap_session *s)
{
	if (s->app == NULL)
		return;
	store_append_abort(&s->app->w);
	free(s->app);
	s->app = NULL;
}

void
imap_append_literal(struct imap_session *s, uint64_t size, int sync)
{
	const struct config *cf = imap_cf(s);
	const struct imap_arg *args;
	const char *wire, *err = NULL;
	struct store_append *w;
	long long quota, bytes = 0, msgs = 0;
	char *name = NULL;
	size_t n = 0;
	int rc = STORE_ERROR;

	args = imap_parser_args(s->parser, &n);
	if (size > cf->imap_max_literal) {
		imap_literal_refuse(s, size, sync, "NO [TOOBIG] Message too large");
		return;
	}
	if (!imap_arg_astring(&args[0], &wire) || imap_utf7_to_utf8(wire, &name) != 0 ||
	    store_folder_name_check(name, &err) != 0) {
		free(name);
		imap_literal_refuse(s, size, sync, "NO [CANNOT] Invalid mailbox name");
		return;
	}
	quota = imap_quota(s);
	if (quota > 0 && store_usage(s->acct, &bytes, &msgs) == 0 &&
	    bytes + (long long)size > quota) {
		free(name);
		imap_literal_refuse(s, size, sync, "NO [OVERQUOTA] Quota exceeded");
		return;
	}
	w = store_append_begin(s->acct, name, &rc, &err);
	free(name);
	if (w == NULL) {
		imap_literal_refuse(s, size, sync, rc == STORE_NO_FOLDER ?
				    "NO [TRYCREATE] Mailbox does not exist" :
				    "NO [SERVERBUG] Cannot store the message now");
		return;
	}
	s->app = xcalloc(1, sizeof(*s->app));
	s->app->w = w;
	s->app->left = s->app->size = size;
	s->app->quota = quota;
	imap_parser_literal_stream(s->parser);
	if (sync) {
		imap_printf(s, "+ Ready for the message\r\n");
		conn_flush(s->c);
	}
	if (size == 0)
		imap_parser_literal_streamed(s->parser);
}

/* The message bytes that are here go to the store. */
void
imap_append_stream(struct imap_session *s)
{
	struct evbuffer *in = conn_input(s->c);
	struct imap_append *a = s->app;

	while (a->left > 0 && evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;
		size_t n;

		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		n = v.iov_len < a->left ? v.iov_len : (size_t)a->left;
		if (!a->failed && store_append_write(a->w, v.iov_base, n) != 0)
			a->failed = 1;
		evbuffer_drain(in, n);
		a->left -= n;
	}
	conn_progress(s->c);
	if (a->left == 0)
		imap_parser_literal_streamed(s->parser);
}

struct imap_append_job {
	struct imap_session *s;
	struct store_append *w;
	unsigned flags;
	char *keywords;
	long long date, quota;
	int tz, rc;
	uint32_t uidvalidity, uid;
	char err[256];
};

static void
imap_append_work(void *arg)
{
	struct imap_append_job *j = arg;
	const char *err = NULL;

	j->rc = store_append_commit(&j->w, j->flags, j->keywords, j->date, j->tz, j->quota,
				    &j->uidvalidity, &j->uid, &err);
	snprintf(j->err, sizeof(j->err), "%s", err ? err : "");
}

static void
imap_append_done(void *arg)
{
	struct imap_append_job *j = arg;
	struct imap_session *s = j->s;
	int rc = j->rc;
	uint32_t uv = j->uidvalidity, uid = j->uid;

	if (rc != STORE_OK && rc != STORE_OVER_QUOTA && rc != STORE_TOO_BIG)
		log_err(s->id, "event=append_failed service=imap user=%s error=%s",
			log_addr(s->user), log_q(j->err));
	free(j->keywords);
	free(j);
	if (imap_job_resume(s))
		return;
	if (rc == STORE_OK) {
		s->nappended++;
		imap_done(s, "OK", "[APPENDUID %u %u] APPEND completed", uv, uid);
	} else if (rc == STORE_OVER_QUOTA || rc == STORE_TOO_BIG) {
		imap_done(s, "NO", "[OVERQUOTA] Quota exceeded");
	} else {
		imap_done(s, "NO", "[SERVERBUG] Cannot store the message now");
	}
	imap_session_process(s);
}

void
imap_cmd_append(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	struct imap_append_job *j;
	const char *date;
	unsigned flags = 0;
	char *kw = NULL;
	size_t i = 1;

	if (s->app == NULL || n < 2 || args[n - 1].type != IMAP_ARG_LITERAL) {
		imap_append_free(s);
		imap_done(s, "BAD", "Syntax: APPEND mailbox [(flags)] [date-time] {size}");
		return;
	}
	j = xcalloc(1, sizeof(*j));
	if (args[i].type == IMAP_ARG_LIST) {
		if (imap_flags_arg(s, &args[i], &flags, &kw) != 0) {
			free(j);
			imap_append_free(s);
			return;
		}
		i++;
	}
	if (i < n - 1) {
		if (!imap_arg_string(&args[i], &date) || imap_date_parse(date, &j->date, &j->tz) != 0) {
			free(kw);
			free(j);
			imap_append_free(s);
			imap_done(s, "BAD", "Invalid date-time");
			return;
		}
		i++;
	}
	if (i != n - 1 || s->app->failed) {
		int failed = s->app->failed;

		free(kw);
		free(j);
		imap_append_free(s);
		if (failed)
			imap_done(s, "NO", "[SERVERBUG] Cannot store the message now");
		else
			imap_done(s, "BAD", "Syntax: APPEND mailbox [(flags)] [date-time] {size}");
		return;
	}
	j->s = s;
	j->w = s->app->w;
	j->flags = flags;
	j->keywords = kw;
	j->quota = s->app->quota;
	s->app->w = NULL;
	imap_append_free(s);
	imap_job(s, imap_append_work, imap_append_done, j);
}
