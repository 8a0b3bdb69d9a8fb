/*
 * imap_search: SEARCH and UID SEARCH (RFC 3501 §6.4.4). The keys become a
 * tree (AND of a list, OR, NOT, parentheses), evaluated per message over
 * the index in chunks of IMAP_CHUNK per turn of the loop: flags, keywords,
 * sizes and dates from the row, FROM/TO/CC/BCC/SUBJECT/HEADER and the SENT*
 * dates from the cached header block (MIME words decoded), BODY and TEXT
 * from the file (raw octets, case-insensitive ASCII). CHARSET UTF-8 and
 * US-ASCII are known; any other gets NO [BADCHARSET].
 * Public (module-internal): imap_cmd_search.
 */
#include <ctype.h>
#include <gmime/gmime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "imap/imap_text.h"
#include "imap/imap_int.h"
#include "store/store.h"
#include "util/conn.h"
#include "util/xalloc.h"

#define SEARCH_MAX_DEPTH 64

enum skey_type {
	SK_ALL, SK_SET, SK_FLAG, SK_UNFLAG, SK_KEYWORD, SK_UNKEYWORD, SK_NEW, SK_OLD, SK_RECENT,
	SK_LARGER, SK_SMALLER, SK_BEFORE, SK_ON, SK_SINCE, SK_SENTBEFORE, SK_SENTON, SK_SENTSINCE,
	SK_HEADER, SK_BODY, SK_TEXT, SK_NOT, SK_OR, SK_AND,
};

struct skey {
	enum skey_type type;
	unsigned flag;
	long long num;            /* size, or a day number */
	char *field, *str;
	struct imap_seqset set;   /* UIDs */
	struct skey **kids;
	size_t nkids;
};

struct search_op {
	struct skey *root;
	unsigned want;
	int need_file;
	uint32_t next;
	int started;
	struct imap_session *s;
};

static void
skey_free(struct skey *k)
{
	if (k == NULL)
		return;
	for (size_t i = 0; i < k->nkids; i++)
		skey_free(k->kids[i]);
	free(k->kids);
	free(k->field);
	free(k->str);
	imap_seqset_free(&k->set);
	free(k);
}

static void
search_free(void *arg)
{
	struct search_op *op = arg;

	skey_free(op->root);
	free(op);
}

static struct skey *
skey_new(enum skey_type t)
{
	struct skey *k = xcalloc(1, sizeof(*k));

	k->type = t;
	return k;
}

static void
skey_add(struct skey *parent, struct skey *kid)
{
	parent->kids = xrealloc(parent->kids, (parent->nkids + 1) * sizeof(*parent->kids));
	parent->kids[parent->nkids++] = kid;
}

/* Days since 1970-01-01 of a civil date. */
static long long
search_days(int y, int m, int d)
{
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (unsigned)(m + (m > 2 ? -3 : 9)) + 2) / 5 + (unsigned)d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + (long long)doe - 719468;
}

static int
search_date_arg(const char *s, long long *day_r)
{
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	char m[4];
	int d, y, len = 0;

	if (sscanf(s, "%2d-%3c-%4d%n", &d, m, &y, &len) != 3 || s[len] != '\0' || d < 1 || d > 31)
		return -1;
	m[3] = '\0';
	for (int i = 0; i < 12; i++)
		if (strcasecmp(m, mon[i]) == 0) {
			*day_r = search_days(y, i + 1, d);
			return 0;
		}
	return -1;
}

struct search_parse {
	struct imap_session *s;
	struct search_op *op;
	const char *error;
};

static struct skey *search_key(struct search_parse *p, const struct imap_arg *a, size_t n,
			       size_t *i, unsigned depth);

static const struct {
	const char *name;
	enum skey_type type;
	unsigned flag;
} search_simple[] = {
	{ "ALL", SK_ALL, 0 }, { "ANSWERED", SK_FLAG, STORE_F_ANSWERED },
	{ "DELETED", SK_FLAG, STORE_F_DELETED }, { "DRAFT", SK_FLAG, STORE_F_DRAFT },
	{ "FLAGGED", SK_FLAG, STORE_F_FLAGGED }, { "SEEN", SK_FLAG, STORE_F_SEEN },
	{ "UNANSWERED", SK_UNFLAG, STORE_F_ANSWERED }, { "UNDELETED", SK_UNFLAG, STORE_F_DELETED },
	{ "UNDRAFT", SK_UNFLAG, STORE_F_DRAFT }, { "UNFLAGGED", SK_UNFLAG, STORE_F_FLAGGED },
	{ "UNSEEN", SK_UNFLAG, STORE_F_SEEN }, { "NEW", SK_NEW, 0 }, { "OLD", SK_OLD, 0 },
	{ "RECENT", SK_RECENT, 0 },
};

static const struct {
	const char *name;
	enum skey_type type;
	const char *field;
} search_str[] = {
	{ "FROM", SK_HEADER, "From" }, { "TO", SK_HEADER, "To" }, { "CC", SK_HEADER, "Cc" },
	{ "BCC", SK_HEADER, "Bcc" }, { "SUBJECT", SK_HEADER, "Subject" },
	{ "BODY", SK_BODY, NULL }, { "TEXT", SK_TEXT, NULL },
	{ "KEYWORD", SK_KEYWORD, NULL }, { "UNKEYWORD", SK_UNKEYWORD, NULL },
};

static const struct {
	const char *name;
	enum skey_type type;
} search_date[] = {
	{ "BEFORE", SK_BEFORE }, { "ON", SK_ON }, { "SINCE", SK_SINCE },
	{ "SENTBEFORE", SK_SENTBEFORE }, { "SENTON", SK_SENTON }, { "SENTSINCE", SK_SENTSINCE },
};

/* The keys with arguments of their own: HEADER, LARGER, SMALLER, NOT, OR,
 * UID, and a bare sequence set. */
static struct skey *
search_key_other(struct search_parse *p, const char *w, const struct imap_arg *a, size_t n,
		 size_t *i, unsigned depth)
{
	const char *v, *v2;
	struct skey *k;

	if (strcasecmp(w, "HEADER") == 0) {
		if (*i + 1 >= n || !imap_arg_astring(&a[*i], &v) || !imap_arg_astring(&a[*i + 1], &v2))
			return NULL;
		*i += 2;
		k = skey_new(SK_HEADER);
		k->field = xstrdup(v);
		k->str = xstrdup(v2);
		p->op->want |= STORE_W_HEADER;
		return k;
	}
	if (strcasecmp(w, "LARGER") == 0 || strcasecmp(w, "SMALLER") == 0) {
		char *e;

		if (*i >= n || !imap_arg_atom(&a[(*i)++], &v) || !isdigit((unsigned char)v[0]))
			return NULL;
		k = skey_new(toupper((unsigned char)w[0]) == 'L' ? SK_LARGER : SK_SMALLER);
		k->num = strtoll(v, &e, 10);
		if (*e != '\0') {
			skey_free(k);
			return NULL;
		}
		return k;
	}
	if (strcasecmp(w, "NOT") == 0) {
		struct skey *kid = search_key(p, a, n, i, depth + 1);

		if (kid == NULL)
			return NULL;
		k = skey_new(SK_NOT);
		skey_add(k, kid);
		return k;
	}
	if (strcasecmp(w, "OR") == 0) {
		struct skey *x = search_key(p, a, n, i, depth + 1), *y;

		if (x == NULL)
			return NULL;
		if ((y = search_key(p, a, n, i, depth + 1)) == NULL) {
			skey_free(x);
			return NULL;
		}
		k = skey_new(SK_OR);
		skey_add(k, x);
		skey_add(k, y);
		return k;
	}
	if (strcasecmp(w, "UID") == 0) {
		if (*i >= n || !imap_arg_atom(&a[(*i)++], &v))
			return NULL;
		k = skey_new(SK_SET);
		if (imap_set_parse(p->s, v, 1, 1, &k->set) != 0) {
			skey_free(k);
			return NULL;
		}
		return k;
	}
	if (isdigit((unsigned char)w[0]) || w[0] == '*') {
		k = skey_new(SK_SET);
		if (imap_set_parse(p->s, w, 0, 1, &k->set) != 0) {
			skey_free(k);
			return NULL;
		}
		return k;
	}
	return NULL;
}

static struct skey *
search_key_atom(struct search_parse *p, const char *w, const struct imap_arg *a, size_t n,
		size_t *i, unsigned depth)
{
	const char *v;
	struct skey *k;

	for (size_t t = 0; t < sizeof(search_simple) / sizeof(search_simple[0]); t++)
		if (strcasecmp(w, search_simple[t].name) == 0) {
			k = skey_new(search_simple[t].type);
			k->flag = search_simple[t].flag;
			return k;
		}
	for (size_t t = 0; t < sizeof(search_str) / sizeof(search_str[0]); t++)
		if (strcasecmp(w, search_str[t].name) == 0) {
			if (*i >= n || !imap_arg_astring(&a[(*i)++], &v))
				return NULL;
			k = skey_new(search_str[t].type);
			k->field = search_str[t].field ? xstrdup(search_str[t].field) : NULL;
			k->str = xstrdup(v);
			if (k->type == SK_HEADER || k->type == SK_BODY || k->type == SK_TEXT)
				p->op->want |= STORE_W_HEADER;
			if (k->type == SK_BODY || k->type == SK_TEXT)
				p->op->need_file = 1;
			return k;
		}
	for (size_t t = 0; t < sizeof(search_date) / sizeof(search_date[0]); t++)
		if (strcasecmp(w, search_date[t].name) == 0) {
			k = skey_new(search_date[t].type);
			if (*i >= n || !imap_arg_astring(&a[(*i)++], &v) || search_date_arg(v, &k->num) != 0) {
				skey_free(k);
				return NULL;
			}
			if (k->type >= SK_SENTBEFORE)
				p->op->want |= STORE_W_HEADER;
			return k;
		}
	return search_key_other(p, w, a, n, i, depth);
}

static struct skey *
search_key(struct search_parse *p, const struct imap_arg *a, size_t n, size_t *i, unsigned depth)
{
	const struct imap_arg *l;
	const char *w;
	size_t nl, j = 0;
	struct skey *k;

	if (*i >= n || depth > SEARCH_MAX_DEPTH)
		return NULL;
	if (a[*i].type == IMAP_ARG_LIST) {
		if (!imap_arg_list(&a[(*i)++], &l, &nl) || nl == 0)
			return NULL;
		k = skey_new(SK_AND);
		while (j < nl) {
			struct skey *kid = search_key(p, l, nl, &j, depth + 1);

			if (kid == NULL) {
				skey_free(k);
				return NULL;
			}
			skey_add(k, kid);
		}
		return k;
	}
	if (!imap_arg_atom(&a[(*i)++], &w))
		return NULL;
	return search_key_atom(p, w, a, n, i, depth);
}

/* --- evaluation ------------------------------------------------------------ */

struct search_msg {
	const struct store_msg *m;
	struct imap_session *s;
	char *file;
	size_t flen;
	int file_tried;
	char *hdr;               /* the header, CRLF, when the index has none */
	size_t hlen;
	long long sent_day;      /* -1: unknown; LLONG_MIN: not computed */
	int sent_done;
};

static int
search_ci_find(const char *hay, size_t hlen, const char *needle)
{
	size_t nlen = strlen(needle);

	if (nlen == 0)
		return 1;
	for (size_t i = 0; i + nlen <= hlen; i++) {
		size_t k = 0;

		while (k < nlen && tolower((unsigned char)hay[i + k]) == tolower((unsigned char)needle[k]))
			k++;
		if (k == nlen)
			return 1;
	}
	return 0;
}

static void
search_load_file(struct search_msg *x)
{
	const char *err;
	off_t len = 0;
	int fd;

	if (x->file_tried)
		return;
	x->file_tried = 1;
	if ((fd = store_msg_open(x->s->folder, x->m->uid, &len, &err)) < 0)
		return;
	x->file = xmalloc((size_t)len + 1);
	while (x->flen < (size_t)len) {
		ssize_t r = read(fd, x->file + x->flen, (size_t)len - x->flen);

		if (r <= 0)
			break;
		x->flen += (size_t)r;
	}
	x->file[x->flen] = '\0';
	close(fd);
}

static const char *
search_header(struct search_msg *x, size_t *len_r)
{
	if (x->m->header != NULL) {
		*len_r = x->m->header_len;
		return x->m->header;
	}
	if (x->hdr == NULL) {
		search_load_file(x);
		x->hdr = imap_crlf(x->file ? x->file : "", x->file ? x->flen : 0, &x->hlen);
	}
	*len_r = x->hlen;
	return x->hdr;
}

struct search_field_ctx {
	const char *field, *str;
	int found;
	long long *day;
};

static char *
search_field_value(const char *field, size_t flen, size_t nlen)
{
	size_t o = 0;
	char *v = xmalloc(flen + 1);

	for (size_t i = nlen + 1; i < flen; i++)
		if (field[i] != '\r' && field[i] != '\n')
			v[o++] = field[i];
	v[o] = '\0';
	return v;
}

static int
search_field_match(const char *name, size_t nlen, const char *field, size_t flen, void *arg)
{
	struct search_field_ctx *x = arg;
	char *raw, *dec;

	if (strlen(x->field) != nlen || strncasecmp(name, x->field, nlen) != 0)
		return 0;
	raw = search_field_value(field, flen, nlen);
	if (x->day != NULL) {
		GDateTime *dt = g_mime_utils_header_decode_date(raw);

		if (dt != NULL) {
			int y, m, d;

			g_date_time_get_ymd(dt, &y, &m, &d);
			*x->day = search_days(y, m, d);
			g_date_time_unref(dt);
		}
		free(raw);
		return 1;
	}
	dec = g_mime_utils_header_decode_text(NULL, raw);
	x->found = search_ci_find(dec ? dec : raw, strlen(dec ? dec : raw), x->str);
	g_free(dec);
	free(raw);
	return x->found;
}

static long long
search_sent_day(struct search_msg *x)
{
	if (!x->sent_done) {
		struct search_field_ctx c = { "Date", NULL, 0, &x->sent_day };
		size_t len;
		const char *h = search_header(x, &len);

		x->sent_done = 1;
		x->sent_day = -1;
		imap_header_each(h, len, search_field_match, &c);
	}
	return x->sent_day;
}

static int
search_has_keyword(const char *kws, const char *kw)
{
	size_t n = strlen(kw);

	for (const char *p = kws; p && *p;) {
		size_t l = strcspn(p, " ");

		if (l == n && strncasecmp(p, kw, n) == 0)
			return 1;
		p += l;
		while (*p == ' ')
			p++;
	}
	return 0;
}

static int
search_eval(const struct skey *k, struct search_msg *x)
{
	const struct store_msg *m = x->m;
	int recent = x->s->recent_lo && m->uid >= x->s->recent_lo;
	long long day = (m->internaldate + (long long)m->internaldate_tz * 60) / 86400;
	size_t len;
	const char *h;

	switch (k->type) {
	case SK_ALL:
		return 1;
	case SK_SET:
		return imap_seqset_contains(&k->set, m->uid);
	case SK_FLAG:
		return (m->flags & k->flag) != 0;
	case SK_UNFLAG:
		return (m->flags & k->flag) == 0;
	case SK_KEYWORD:
		return search_has_keyword(m->keywords, k->str);
	case SK_UNKEYWORD:
		return !search_has_keyword(m->keywords, k->str);
	case SK_NEW:
		return recent && !(m->flags & STORE_F_SEEN);
	case SK_OLD:
		return !recent;
	case SK_RECENT:
		return recent;
	case SK_LARGER:
		return m->size > k->num;
	case SK_SMALLER:
		return m->size < k->num;
	case SK_BEFORE:
		return day < k->num;
	case SK_ON:
		return day == k->num;
	case SK_SINCE:
		return day >= k->num;
	case SK_SENTBEFORE:
		return search_sent_day(x) >= 0 && search_sent_day(x) < k->num;
	case SK_SENTON:
		return search_sent_day(x) == k->num;
	case SK_SENTSINCE:
		return search_sent_day(x) >= k->num;
	case SK_HEADER: {
		struct search_field_ctx c = { k->field, k->str, 0, NULL };

		h = search_header(x, &len);
		imap_header_each(h, len, search_field_match, &c);
		return c.found;
	}
	case SK_BODY:
	case SK_TEXT: {
		size_t hl = 0;

		search_load_file(x);
		if (x->file == NULL)
			return 0;
		if (k->type == SK_BODY) {
			const char *b = strstr(x->file, "\n\n");

			hl = b ? (size_t)(b - x->file) + 2 : x->flen;
		}
		return search_ci_find(x->file + hl, x->flen - hl, k->str);
	}
	case SK_NOT:
		return !search_eval(k->kids[0], x);
	case SK_OR:
		return search_eval(k->kids[0], x) || search_eval(k->kids[1], x);
	case SK_AND:
		for (size_t i = 0; i < k->nkids; i++)
			if (!search_eval(k->kids[i], x))
				return 0;
		return 1;
	}
	return 0;
}

static int
search_one(const struct store_msg *m, void *arg)
{
	struct search_op *op = arg;
	struct imap_session *s = op->s;
	struct search_msg x = { m, s, NULL, 0, 0, NULL, 0, -1, 0 };
	uint32_t seq;

	op->next = m->uid == UINT32_MAX ? UINT32_MAX : m->uid + 1;
	if ((seq = imap_seq_of(s, m->uid)) == 0 || seq > s->announced)
		return 0;
	if (search_eval(op->root, &x))
		imap_printf(s, " %u", s->uid ? m->uid : seq);
	free(x.file);
	free(x.hdr);
	return 0;
}

static int
imap_search_step(struct imap_session *s)
{
	struct search_op *op = s->op;
	int got;

	if (!op->started) {
		imap_printf(s, "* SEARCH");
		op->started = 1;
	}
	got = op->next == UINT32_MAX ? 0 :
	      store_fetch(s->folder, op->next, UINT32_MAX, IMAP_CHUNK, op->want, search_one, op);
	if (got < 0) {
		imap_printf(s, "\r\n");
		imap_done(s, "NO", "[SERVERBUG] Cannot read the messages");
		return 1;
	}
	if (got == IMAP_CHUNK && op->next != UINT32_MAX) {
		/* on the next turn; if the output is still above the watermark
		 * then, the run waits for it to drain (a flush that sent it all
		 * at once would leave nothing to call us back) */
		conn_progress(s->c);
		imap_yield(s);
		return 0;
	}
	imap_printf(s, "\r\n");
	imap_done(s, "OK", "%sSEARCH completed", s->uid ? "UID " : "");
	return 1;
}

void
imap_cmd_search(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	struct search_parse p;
	struct search_op *op = xcalloc(1, sizeof(*op));
	const char *w, *cs;
	size_t i = 0;

	p.s = s;
	p.op = op;
	p.error = NULL;
	op->s = s;
	op->next = 1;
	if (n >= 2 && imap_arg_atom(&args[0], &w) && strcasecmp(w, "CHARSET") == 0) {
		if (!imap_arg_astring(&args[1], &cs)) {
			search_free(op);
			imap_done(s, "BAD", "Syntax: SEARCH [CHARSET name] keys");
			return;
		}
		if (strcasecmp(cs, "UTF-8") != 0 && strcasecmp(cs, "US-ASCII") != 0) {
			search_free(op);
			imap_done(s, "NO", "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
			return;
		}
		i = 2;
	}
	op->root = skey_new(SK_AND);
	while (i < n) {
		struct skey *k = search_key(&p, args, n, &i, 0);

		if (k == NULL) {
			search_free(op);
			imap_done(s, "BAD", "Invalid search key");
			return;
		}
		skey_add(op->root, k);
	}
	if (op->root->nkids == 0) {
		search_free(op);
		imap_done(s, "BAD", "Syntax: SEARCH keys");
		return;
	}
	s->op = op;
	s->op_free = search_free;
	s->cont = imap_search_step;
}
