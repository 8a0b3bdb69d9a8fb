/*
 * imap_fetch: FETCH and UID FETCH (RFC 3501 §6.4.5): FLAGS, UID,
 * INTERNALDATE, RFC822.SIZE, ENVELOPE, BODY, BODYSTRUCTURE from the index
 * (store_fetch with only the `want` bits the items need), and RFC822,
 * RFC822.HEADER, RFC822.TEXT, BODY[section]<partial> and BODY.PEEK[...]
 * (HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME, part numbers)
 * from the cached header block when that is enough, else from the file,
 * sent with LF turned into CRLF and exact literal sizes. BODY[...] sets
 * \Seen in a read-write folder. A long FETCH answers IMAP_CHUNK messages
 * per turn of the loop and waits while the client's output is above the
 * watermark, so no other session waits for it.
 * Public (module-internal): imap_cmd_fetch.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "imap/imap_int.h"
#include "imap/imap_text.h"
#include "store/store.h"
#include "store/store_mime.h"
#include "util/conn.h"
#include "util/log.h"
#include "util/xalloc.h"

enum {
	FI_FLAGS = 1 << 0, FI_UID = 1 << 1, FI_INTERNALDATE = 1 << 2, FI_SIZE = 1 << 3,
	FI_ENVELOPE = 1 << 4, FI_BODY = 1 << 5, FI_BODYSTRUCTURE = 1 << 6,
};

enum fetch_kind { K_ALL, K_HEADER, K_FIELDS, K_FIELDS_NOT, K_TEXT, K_MIME };

struct fetch_sec {
	char *name;              /* as answered: "BODY[1.TEXT]", "RFC822.HEADER" */
	char part[64];           /* "1.2" or "" */
	enum fetch_kind kind;
	char **fields;
	size_t nfields;
	int peek, partial;
	unsigned long long pstart, plen;
};

struct fetch_op {
	unsigned items, want;
	struct fetch_sec *secs;
	size_t nsecs;
	int need_file, set_seen;
	struct imap_seqset set;
	size_t ri;
	uint32_t next, last;
	uint32_t seq_hint;       /* the sequence number after the last one sent */
	int stream_sec;          /* the one whole-message section, or -1 */
	struct {                 /* a large message going out a piece at a time */
		int fd;
		unsigned long long skip, left;
		char last;           /* the byte before the next one read */
	} st;
	uint32_t *seen;          /* UIDs we set \Seen on, ascending */
	size_t nseen, capseen, seen_applied;
	struct imap_session *s;
};

static void
imap_fetch_free(void *arg)
{
	struct fetch_op *op = arg;

	for (size_t i = 0; i < op->nsecs; i++) {
		free(op->secs[i].name);
		for (size_t k = 0; k < op->secs[i].nfields; k++)
			free(op->secs[i].fields[k]);
		free(op->secs[i].fields);
	}
	free(op->secs);
	if (op->st.fd >= 0)
		close(op->st.fd);
	free(op->set.r);
	free(op->seen);
	free(op);
}

/* --- parsing the items ------------------------------------------------------ */

static int
imap_fetch_fields(struct fetch_sec *sec, const char *list)
{
	const char *p = list;

	while (*p == ' ')
		p++;
	if (*p++ != '(')
		return -1;
	for (;;) {
		const char *b;

		while (*p == ' ')
			p++;
		if (*p == ')')
			break;
		b = p;
		if (*p == '"') {
			b = ++p;
			while (*p && *p != '"')
				p++;
			if (*p != '"')
				return -1;
		} else {
			while (*p && *p != ' ' && *p != ')')
				p++;
		}
		if (p == b || sec->nfields >= 256)
			return -1;
		sec->fields = xrealloc(sec->fields, (sec->nfields + 1) * sizeof(char *));
		sec->fields[sec->nfields++] = xstrndup(b, (size_t)(p - b));
		if (*p == '"')
			p++;
		if (*p == '\0')
			return -1;
	}
	return p[1] == '\0' && sec->nfields > 0 ? 0 : -1;
}

/* "1.2.HEADER.FIELDS (A B)" into part and kind. */
static int
imap_fetch_section(struct fetch_sec *sec, const char *spec)
{
	const char *q = spec, *end = spec, *rest;

	while (isdigit((unsigned char)*q)) {
		while (isdigit((unsigned char)*q))
			q++;
		end = q;
		if (*q == '.' && isdigit((unsigned char)q[1])) {
			q++;
			continue;
		}
		break;
	}
	if ((size_t)(end - spec) >= sizeof(sec->part))
		return -1;
	memcpy(sec->part, spec, (size_t)(end - spec));
	sec->part[end - spec] = '\0';
	rest = end;
	if (*rest == '.') {
		if (end == spec)
			return -1;
		rest++;
	} else if (*rest != '\0' && end != spec) {
		return -1;
	}
	if (*rest == '\0')
		sec->kind = K_ALL;
	else if (strcasecmp(rest, "HEADER") == 0)
		sec->kind = K_HEADER;
	else if (strcasecmp(rest, "TEXT") == 0)
		sec->kind = K_TEXT;
	else if (strcasecmp(rest, "MIME") == 0 && sec->part[0])
		sec->kind = K_MIME;
	else if (strncasecmp(rest, "HEADER.FIELDS.NOT", 17) == 0 && (rest[17] == ' ' || rest[17] == '(')) {
		sec->kind = K_FIELDS_NOT;
		return imap_fetch_fields(sec, rest + 17);
	} else if (strncasecmp(rest, "HEADER.FIELDS", 13) == 0 && (rest[13] == ' ' || rest[13] == '(')) {
		sec->kind = K_FIELDS;
		return imap_fetch_fields(sec, rest + 13);
	} else
		return -1;
	return 0;
}

static int
imap_fetch_body_item(struct fetch_op *op, const char *item)
{
	struct fetch_sec sec;
	const char *lb = strchr(item, '['), *rb = strrchr(item, ']'), *after;
	char *spec;
	int rc;

	memset(&sec, 0, sizeof(sec));
	if (lb == NULL || rb == NULL || rb < lb)
		return -1;
	sec.peek = (size_t)(lb - item) == 9;   /* "BODY.PEEK" */
	after = rb + 1;
	if (*after == '<') {
		char *e;

		sec.partial = 1;
		sec.pstart = strtoull(after + 1, &e, 10);
		if (*e != '.' || !isdigit((unsigned char)e[1]))
			return -1;
		sec.plen = strtoull(e + 1, &e, 10);
		if (*e != '>' || e[1] != '\0' || sec.plen == 0)
			return -1;
	} else if (*after != '\0') {
		return -1;
	}
	spec = xstrndup(lb + 1, (size_t)(rb - lb - 1));
	rc = imap_fetch_section(&sec, spec);
	if (rc == 0) {
		char *name = xmalloc(strlen(spec) + 32);

		if (sec.partial)
			sprintf(name, "BODY[%s]<%llu>", spec, sec.pstart);
		else
			sprintf(name, "BODY[%s]", spec);
		sec.name = name;
		op->secs = xrealloc(op->secs, (op->nsecs + 1) * sizeof(sec));
		op->secs[op->nsecs++] = sec;
	} else {
		for (size_t k = 0; k < sec.nfields; k++)
			free(sec.fields[k]);
		free(sec.fields);
	}
	free(spec);
	return rc;
}

static void
imap_fetch_add_rfc822(struct fetch_op *op, const char *name, enum fetch_kind kind, int peek)
{
	struct fetch_sec sec;

	memset(&sec, 0, sizeof(sec));
	sec.name = xstrdup(name);
	sec.kind = kind;
	sec.peek = peek;
	op->secs = xrealloc(op->secs, (op->nsecs + 1) * sizeof(sec));
	op->secs[op->nsecs++] = sec;
}

static int
imap_fetch_item(struct fetch_op *op, const char *it)
{
	static const struct {
		const char *name;
		unsigned items;
	} simple[] = {
		{ "FLAGS", FI_FLAGS }, { "UID", FI_UID }, { "INTERNALDATE", FI_INTERNALDATE },
		{ "RFC822.SIZE", FI_SIZE }, { "ENVELOPE", FI_ENVELOPE }, { "BODYSTRUCTURE", FI_BODYSTRUCTURE },
		{ "BODY", FI_BODY },
		{ "ALL", FI_FLAGS | FI_INTERNALDATE | FI_SIZE | FI_ENVELOPE },
		{ "FAST", FI_FLAGS | FI_INTERNALDATE | FI_SIZE },
		{ "FULL", FI_FLAGS | FI_INTERNALDATE | FI_SIZE | FI_ENVELOPE | FI_BODY },
	};

	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++)
		if (strcasecmp(it, simple[i].name) == 0) {
			op->items |= simple[i].items;
			return 0;
		}
	if (strcasecmp(it, "RFC822") == 0)
		imap_fetch_add_rfc822(op, "RFC822", K_ALL, 0);
	else if (strcasecmp(it, "RFC822.HEADER") == 0)
		imap_fetch_add_rfc822(op, "RFC822.HEADER", K_HEADER, 1);
	else if (strcasecmp(it, "RFC822.TEXT") == 0)
		imap_fetch_add_rfc822(op, "RFC822.TEXT", K_TEXT, 0);
	else if (strncasecmp(it, "BODY[", 5) == 0 || strncasecmp(it, "BODY.PEEK[", 10) == 0)
		return imap_fetch_body_item(op, it);
	else
		return -1;
	return 0;
}

static void imap_fetch_plan(struct fetch_op *op, int readonly);

/* --- the output of one message ------------------------------------------------ */

struct fetch_fields_ctx {
	const struct fetch_sec *sec;
	char *out;
	size_t len;
};

static int
imap_fetch_field_pick(const char *name, size_t nlen, const char *field, size_t flen, void *arg)
{
	struct fetch_fields_ctx *x = arg;
	int listed = 0;

	while (nlen > 0 && (name[nlen - 1] == ' ' || name[nlen - 1] == '\t'))
		nlen--;
	for (size_t i = 0; i < x->sec->nfields && !listed; i++)
		listed = strlen(x->sec->fields[i]) == nlen && strncasecmp(x->sec->fields[i], name, nlen) == 0;
	if (listed != (x->sec->kind == K_FIELDS))
		return 0;
	x->out = xrealloc(x->out, x->len + flen + 3);
	memcpy(x->out + x->len, field, flen);
	x->len += flen;
	return 0;
}

/* The header block's length in data (through the blank line). */
static size_t
imap_header_len(const char *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (data[i] != '\n')
			continue;
		if (i + 1 < len && data[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && data[i + 1] == '\r' && data[i + 2] == '\n')
			return i + 3;
	}
	return len;
}

/* The bytes of one section (LF or CRLF as in the source), malloc'd CRLF. */
static char *
imap_fetch_section_data(const struct fetch_sec *sec, const struct store_msg *m, const char *file,
			size_t flen, size_t *len_r)
{
	const char *src = NULL;
	size_t off = 0, slen = 0;
	char spec[96];
	char *crlf;

	if ((sec->kind == K_HEADER || sec->kind == K_FIELDS || sec->kind == K_FIELDS_NOT) &&
	    sec->part[0] == '\0' && m->header != NULL) {
		src = m->header;
		slen = m->header_len;
	} else if (file != NULL) {
		src = file;
		if (sec->part[0] == '\0') {
			size_t h = imap_header_len(file, flen);

			if (sec->kind == K_ALL) {
				slen = flen;
			} else if (sec->kind == K_TEXT) {
				off = h;
				slen = flen - h;
			} else {
				slen = h;
			}
		} else {
			const char *suffix = sec->kind == K_ALL ? "" : sec->kind == K_TEXT ? ".TEXT" :
					     sec->kind == K_MIME ? ".MIME" : ".HEADER";

			snprintf(spec, sizeof(spec), "%s%s", sec->part, suffix);
			if (store_mime_section(file, flen, spec, &off, &slen) != 0)
				slen = 0;
		}
	}
	crlf = imap_crlf(src ? src + off : "", src ? slen : 0, len_r);
	if (sec->kind == K_FIELDS || sec->kind == K_FIELDS_NOT) {
		struct fetch_fields_ctx x = { sec, NULL, 0 };

		imap_header_each(crlf, *len_r, imap_fetch_field_pick, &x);
		x.out = xrealloc(x.out, x.len + 3);
		memcpy(x.out + x.len, "\r\n", 3);
		*len_r = x.len + 2;
		free(crlf);
		crlf = x.out;
	}
	return crlf;
}

/* The message file whole, from fd (closed here). */
static char *
imap_fetch_read_fd(int fd, off_t len, size_t *len_r)
{
	size_t got = 0;
	char *data = xmalloc((size_t)len + 1);

	while (got < (size_t)len) {
		ssize_t n = read(fd, data + got, (size_t)len - got);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	data[got] = '\0';
	*len_r = got;
	return data;
}

static char *
imap_fetch_read_file(struct imap_session *s, uint32_t uid, size_t *len_r)
{
	const char *err = NULL;
	off_t len = 0;
	int fd = store_msg_open(s->folder, uid, &len, &err);

	return fd < 0 ? NULL : imap_fetch_read_fd(fd, len, len_r);
}

/* --- a large message, streamed --------------------------------------------- */

/* Bytes of fd with every bare LF as CRLF (one pass over the page cache). */
static unsigned long long
imap_fetch_crlf_size(int fd)
{
	char in[65536], last = '\0';
	unsigned long long n = 0;
	ssize_t r;

	while ((r = read(fd, in, sizeof(in))) > 0) {
		for (ssize_t i = 0; i < r; i++) {
			n += in[i] == '\n' && last != '\r' ? 2 : 1;
			last = in[i];
		}
	}
	lseek(fd, 0, SEEK_SET);
	return n;
}

/* Send the section's header and keep fd for imap_fetch_pump. */
static void
imap_fetch_stream_start(struct fetch_op *op, const char *sep, int fd)
{
	const struct fetch_sec *sec = &op->secs[op->stream_sec];
	unsigned long long len = imap_fetch_crlf_size(fd), from = 0, n = len;

	if (sec->partial) {
		from = sec->pstart < len ? sec->pstart : len;
		n = len - from < sec->plen ? len - from : sec->plen;
	}
	imap_printf(op->s, "%s%s {%llu}\r\n", sep, sec->name, n);
	op->st.fd = fd;
	op->st.skip = from;
	op->st.left = n;
	op->st.last = '\0';
}

/* More of the streamed message while the client takes it: 1 when it is
 * all out (and the FETCH response closed), 0 when the output is full. */
static int
imap_fetch_pump(struct imap_session *s, struct fetch_op *op)
{
	char in[32768], out[65536];

	while (op->st.left > 0) {
		ssize_t r;
		size_t o = 0, from = 0, n;

		if (conn_blocked(s->c)) {
			imap_yield(s);
			return 0;
		}
		if ((r = read(op->st.fd, in, sizeof(in))) <= 0) {
			/* the file shrank under us: keep the literal's promised size */
			memset(out, ' ', sizeof(out));
			n = op->st.left < sizeof(out) ? (size_t)op->st.left : sizeof(out);
			conn_write(s->c, out, n);
			op->st.left -= n;
			continue;
		}
		for (ssize_t i = 0; i < r; i++) {
			if (in[i] == '\n' && op->st.last != '\r')
				out[o++] = '\r';
			out[o++] = in[i];
			op->st.last = in[i];
		}
		if (op->st.skip > 0) {
			from = op->st.skip < o ? (size_t)op->st.skip : o;
			op->st.skip -= from;
		}
		n = o - from < op->st.left ? o - from : (size_t)op->st.left;
		conn_write(s->c, out + from, n);
		op->st.left -= n;
		conn_progress(s->c);
	}
	close(op->st.fd);
	op->st.fd = -1;
	imap_printf(s, ")\r\n");
	return 1;
}

/* A FETCH response line built in place: one conn_write per line rather
 * than a printf per item (a FETCH 1:* of 50,000 lines spent a third of
 * its time in the printf machinery). */
struct fetch_line {
	struct conn *c;
	size_t n;
	char b[1024];
};

static void
fl_flush(struct fetch_line *l)
{
	if (l->n > 0)
		conn_write(l->c, l->b, l->n);
	l->n = 0;
}

static void
fl_mem(struct fetch_line *l, const char *p, size_t len)
{
	if (len > sizeof(l->b) - l->n)
		fl_flush(l);
	if (len >= sizeof(l->b)) {
		conn_write(l->c, p, len);
		return;
	}
	memcpy(l->b + l->n, p, len);
	l->n += len;
}

static void
fl_str(struct fetch_line *l, const char *str)
{
	fl_mem(l, str, strlen(str));
}

static void
fl_num(struct fetch_line *l, unsigned long long v)
{
	char d[24];
	size_t i = sizeof(d);

	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	fl_mem(l, d + i, sizeof(d) - i);
}

static void
imap_fetch_date(struct fetch_line *l, long long t, int tz)
{
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t local = (time_t)(t + (long long)tz * 60);
	struct tm tm;
	int a = tz < 0 ? -tz : tz;
	char buf[64];

	gmtime_r(&local, &tm);
	snprintf(buf, sizeof(buf), "\"%02d-%s-%04d %02d:%02d:%02d %c%02d%02d\"",
		 tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 tz < 0 ? '-' : '+', a / 60, a % 60);
	fl_str(l, buf);
}

static void
imap_fetch_seen_add(struct fetch_op *op, uint32_t uid)
{
	if (op->nseen == op->capseen) {
		op->capseen = op->capseen ? op->capseen * 2 : 64;
		op->seen = xrealloc(op->seen, op->capseen * sizeof(*op->seen));
	}
	op->seen[op->nseen++] = uid;
}

/* One item's name, after a space unless it is the first. */
static void
fl_item(struct fetch_line *l, const char **sep, const char *name)
{
	fl_str(l, *sep);
	fl_str(l, name);
	*sep = " ";
}

/* The items served from the index row. */
static const char *
imap_fetch_index_items(struct fetch_op *op, struct fetch_line *l, const struct store_msg *m,
		       unsigned flags, const struct store_mime_summary *sum)
{
	static const char plain[] = "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)";
	struct imap_session *s = op->s;
	const char *sep = "";

	if (op->items & FI_UID) {
		fl_item(l, &sep, "UID ");
		fl_num(l, m->uid);
	}
	if ((op->items & FI_FLAGS) || flags != m->flags) {
		char names[4096];
		int recent = s->recent_lo && m->uid >= s->recent_lo;

		store_flag_names(flags, m->keywords, names, sizeof(names));
		fl_item(l, &sep, "FLAGS (");
		fl_str(l, names);
		fl_str(l, recent && names[0] ? " " : "");
		fl_str(l, recent ? "\\Recent)" : ")");
	}
	if (op->items & FI_INTERNALDATE) {
		fl_item(l, &sep, "INTERNALDATE ");
		imap_fetch_date(l, m->internaldate, m->internaldate_tz);
	}
	if (op->items & FI_SIZE) {
		fl_item(l, &sep, "RFC822.SIZE ");
		fl_num(l, m->size > 0 ? (unsigned long long)m->size : 0);
	}
	if (op->items & FI_ENVELOPE) {
		fl_item(l, &sep, "ENVELOPE ");
		fl_str(l, m->envelope ? m->envelope : sum ? sum->envelope :
			  "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	}
	if (op->items & FI_BODY) {
		fl_item(l, &sep, "BODY ");
		fl_str(l, m->body ? m->body : sum ? sum->body : plain);
	}
	if (op->items & FI_BODYSTRUCTURE) {
		fl_item(l, &sep, "BODYSTRUCTURE ");
		fl_str(l, m->bodystructure ? m->bodystructure : sum ? sum->bodystructure : plain);
	}
	return sep;
}

/* The file, read whole, or (for the one whole-message section of a large
 * message) left open in *stream_fd_r to go out in pieces. */
static char *
imap_fetch_file(struct fetch_op *op, uint32_t uid, size_t *len_r, int *stream_fd_r)
{
	const char *err = NULL;
	off_t len = 0;
	int fd = store_msg_open(op->s->folder, uid, &len, &err);

	*stream_fd_r = -1;
	if (fd < 0)
		return NULL;
	if (op->stream_sec >= 0 && len > IMAP_STREAM_MIN) {
		*stream_fd_r = fd;
		return NULL;
	}
	return imap_fetch_read_fd(fd, len, len_r);
}

static int
imap_fetch_one(const struct store_msg *m, void *arg)
{
	struct fetch_op *op = arg;
	struct imap_session *s = op->s;
	uint32_t seq;
	const char *sep;
	char *file = NULL;
	size_t flen = 0;
	unsigned flags = m->flags;
	struct store_mime_summary sum;
	struct fetch_line l;
	int have_sum = 0, sfd = -1;

	op->last = m->uid;
	/* a walk in UID order mostly meets the next sequence number */
	if (op->seq_hint < s->nuids && s->uids[op->seq_hint] == m->uid)
		seq = op->seq_hint + 1;
	else
		seq = imap_seq_of(s, m->uid);
	op->seq_hint = seq;
	if (seq == 0 || seq > s->announced)
		return 0;   /* not announced yet: the next command tells of it */
	if (op->need_file)
		file = imap_fetch_file(op, m->uid, &flen, &sfd);
	if (sfd < 0 && (((op->items & FI_ENVELOPE) && m->envelope == NULL) ||
			((op->items & FI_BODY) && m->body == NULL) ||
			((op->items & FI_BODYSTRUCTURE) && m->bodystructure == NULL))) {
		const char *err;

		if (file == NULL)
			file = imap_fetch_read_file(s, m->uid, &flen);
		if (file != NULL && store_mime_summarize(file, flen, &sum, &err) == 0)
			have_sum = 1;
	}
	if (op->set_seen && !(flags & STORE_F_SEEN)) {
		flags |= STORE_F_SEEN;
		imap_fetch_seen_add(op, m->uid);
	}
	l.c = s->c;
	l.n = 0;
	fl_str(&l, "* ");
	fl_num(&l, seq);
	fl_str(&l, " FETCH (");
	sep = imap_fetch_index_items(op, &l, m, flags, have_sum ? &sum : NULL);
	if (op->nsecs > 0)
		fl_flush(&l);
	for (size_t i = 0; i < op->nsecs; i++) {
		const struct fetch_sec *sec = &op->secs[i];
		size_t len, from = 0, n;
		char *data;

		if (sfd >= 0 && (int)i == op->stream_sec)
			continue;   /* last: it goes out in pieces */
		data = imap_fetch_section_data(sec, m, file, flen, &len);
		n = len;
		if (sec->partial) {
			from = sec->pstart < len ? (size_t)sec->pstart : len;
			n = len - from < sec->plen ? len - from : (size_t)sec->plen;
		}
		imap_printf(s, "%s%s {%zu}\r\n", sep, sec->name, n);
		conn_write(s->c, data + from, n);
		free(data);
		sep = " ";
	}
	if (have_sum)
		store_mime_summary_free(&sum);
	free(file);
	s->nfetched++;
	if (sfd >= 0) {
		imap_fetch_stream_start(op, sep, sfd);
		return 1;   /* the walk stops here until the message is out */
	}
	fl_str(&l, ")\r\n");
	fl_flush(&l);
	return 0;
}

/* --- the walk ------------------------------------------------------------------ */

static int
imap_fetch_seen_skip(uint32_t uid, void *arg)
{
	struct fetch_op *op = arg;
	size_t lo = 0, hi = op->nseen;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (op->seen[mid] == uid)
			return 1;
		if (op->seen[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* \Seen for what this chunk read: one store call. */
static void
imap_fetch_apply_seen(struct imap_session *s, struct fetch_op *op)
{
	size_t n = op->nseen - op->seen_applied;
	uint32_t (*r)[2];
	struct store_uidset set;
	const char *err = NULL;

	if (n == 0)
		return;
	r = xmalloc(n * sizeof(*r));
	for (size_t i = 0; i < n; i++)
		r[i][0] = r[i][1] = op->seen[op->seen_applied + i];
	set.r = (const uint32_t(*)[2])r;
	set.n = n;
	if (store_flags(s->folder, &set, STORE_FLAGS_ADD, STORE_F_SEEN, NULL, 0, NULL, NULL, NULL,
			&err) != 0)
		log_debug(s->id, "event=seen_failed service=imap user=%s error=%s", log_addr(s->user),
			  log_q(err ? err : "unknown"));
	free(r);
	op->seen_applied = op->nseen;
}

static int
imap_fetch_step(struct imap_session *s)
{
	struct fetch_op *op = s->op;
	size_t done = 0;

	if (op->st.fd >= 0 && !imap_fetch_pump(s, op))
		return 0;   /* the output drains first: input() brings us back */
	while (op->ri < op->set.n && done < IMAP_CHUNK && op->st.fd < 0) {
		uint32_t lo = op->next > op->set.r[op->ri][0] ? op->next : op->set.r[op->ri][0];
		uint32_t hi = op->set.r[op->ri][1];
		size_t limit = IMAP_CHUNK - done;
		int got = store_fetch(s->folder, lo, hi, limit, op->want, imap_fetch_one, op);

		if (got < 0) {
			imap_fetch_apply_seen(s, op);
			imap_done(s, "NO", "[SERVERBUG] Cannot read the messages");
			return 1;
		}
		done += (size_t)got;
		if (op->st.fd >= 0 && op->last < hi) {
			op->next = op->last + 1;   /* a large message stopped the walk */
		} else if ((size_t)got < limit || op->last >= hi || op->last == UINT32_MAX) {
			op->ri++;
			op->next = 0;
		} else {
			op->next = op->last + 1;
		}
	}
	imap_fetch_apply_seen(s, op);
	if (op->ri < op->set.n || op->st.fd >= 0) {
		/* on the next turn; if the output is still above the watermark
		 * then, the run waits for it to drain (a flush that sent it all
		 * at once would leave nothing to call us back) */
		conn_progress(s->c);
		imap_yield(s);
		return 0;
	}
	imap_sync(s, s->uid, imap_fetch_seen_skip, op);
	imap_done(s, "OK", "%sFETCH completed", s->uid ? "UID " : "");
	return 1;
}

static void
imap_fetch_plan(struct fetch_op *op, int readonly)
{
	int files = 0;

	op->stream_sec = -1;
	for (size_t i = 0; i < op->nsecs; i++) {
		const struct fetch_sec *sec = &op->secs[i];

		if (sec->kind != K_HEADER && sec->kind != K_FIELDS && sec->kind != K_FIELDS_NOT) {
			files++;
			if (sec->kind == K_ALL && sec->part[0] == '\0')
				op->stream_sec = (int)i;
		} else if (sec->part[0]) {
			files++;
		}
	}
	/* only a message that is the one file section can go out in pieces */
	if (files != 1)
		op->stream_sec = -1;
	for (size_t i = 0; i < op->nsecs; i++) {
		const struct fetch_sec *sec = &op->secs[i];

		if (!sec->peek && !readonly)
			op->set_seen = 1;
		if (sec->kind == K_HEADER || sec->kind == K_FIELDS || sec->kind == K_FIELDS_NOT) {
			if (sec->part[0])
				op->need_file = 1;
			else
				op->want |= STORE_W_HEADER;
		} else {
			op->need_file = 1;
		}
	}
	if (op->items & FI_ENVELOPE)
		op->want |= STORE_W_ENVELOPE;
	if (op->items & (FI_BODY | FI_BODYSTRUCTURE))
		op->want |= STORE_W_BODY;
}

void
imap_cmd_fetch(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	struct fetch_op *op;
	const struct imap_arg *items = NULL;
	size_t ni = 0;

	if (n != 2) {
		imap_done(s, "BAD", "Syntax: FETCH sequence-set items");
		return;
	}
	op = xcalloc(1, sizeof(*op));
	op->s = s;
	op->st.fd = -1;
	if (imap_set_arg(s, &args[0], &op->set) != 0) {
		imap_fetch_free(op);
		return;
	}
	if (args[1].type == IMAP_ARG_LIST) {
		imap_arg_list(&args[1], &items, &ni);
	} else {
		items = &args[1];
		ni = 1;
	}
	for (size_t i = 0; i < ni; i++) {
		const char *it;

		if (!imap_arg_atom(&items[i], &it) || imap_fetch_item(op, it) != 0) {
			imap_fetch_free(op);
			imap_done(s, "BAD", "Invalid FETCH item");
			return;
		}
	}
	if (ni == 0) {
		imap_fetch_free(op);
		imap_done(s, "BAD", "Syntax: FETCH sequence-set items");
		return;
	}
	if (s->uid)
		op->items |= FI_UID;
	imap_fetch_plan(op, s->readonly);
	s->op = op;
	s->op_free = imap_fetch_free;
	s->cont = imap_fetch_step;
}
