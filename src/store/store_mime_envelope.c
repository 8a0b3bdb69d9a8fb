/*
 * store_mime_envelope: the ENVELOPE of RFC 3501 7.4.2 from a header. Field
 * values are sent raw (unfolded, encoded-words untouched, as IMAP
 * servers do); address lists are parsed by RFC 5322 3.4 with its obsolete
 * forms (routes, missing parts) into (name adl mailbox host), groups as
 * (NIL NIL "group" NIL) ... (NIL NIL NIL NIL). An address without a local
 * part or domain gets "MISSING_MAILBOX" / "MISSING_DOMAIN" (as Dovecot),
 * since a NIL host would mean a group.
 * Public: mime_envelope (store_mime_int.h).
 */
#include <stdlib.h>
#include <string.h>

#include "store/store_mime_int.h"
#include "util/xalloc.h"

enum tok_type { T_END, T_ATOM, T_QSTR, T_DLIT, T_COMMENT, T_SPECIAL };

struct tok {
	enum tok_type type;
	char c;            /* T_SPECIAL */
	char *text;        /* atom, unescaped quoted string, "[literal]", comment */
	size_t len;
};

struct toks {
	struct tok *v;
	size_t n, cap;
	char *arena;       /* every token's text, one allocation for all */
	size_t used;
};

/* Copy of p[0..n) in the arena: the texts of all tokens never need more
 * than twice the value's length (their bytes plus a NUL each). */
static char *
arena_add(struct toks *ts, const char *p, size_t n)
{
	char *r = ts->arena + ts->used;

	memcpy(r, p, n);
	r[n] = '\0';
	ts->used += n + 1;
	return r;
}

static void
tok_push(struct toks *ts, enum tok_type type, char c, char *text, size_t len)
{
	if (ts->n == ts->cap) {
		ts->cap = ts->cap ? ts->cap * 2 : 32;
		ts->v = xrealloc(ts->v, ts->cap * sizeof(*ts->v));
	}
	ts->v[ts->n++] = (struct tok){ type, c, text, len };
}

/* Quoted string, comment or domain literal from s (at its opening char);
 * quoted pairs unescaped; returns the position after the closing char. */
static const char *
tok_delimited(const char *s, char open, char close, struct toks *ts, enum tok_type type)
{
	char *text = ts->arena + ts->used;
	size_t n = 0;
	int depth = 1;

	if (type == T_DLIT)
		text[n++] = '[';
	for (s++; *s != '\0'; s++) {
		if (*s == '\\' && s[1] != '\0') {
			s++;
		} else if (*s == close && --depth == 0) {
			s++;
			break;
		} else if (*s == open && open != close) {
			depth++; /* comments nest */
		}
		text[n++] = *s;
	}
	if (type == T_DLIT)
		text[n++] = ']';
	text[n] = '\0';
	ts->used += n + 1;
	tok_push(ts, type, 0, text, n);
	return s;
}

static void
tokenize(const char *s, struct toks *ts)
{
	ts->arena = xmalloc(2 * strlen(s) + 2);
	while (*s != '\0') {
		const char *a = s;

		if (*s == ' ' || *s == '\t') {
			s++;
		} else if (*s == '"') {
			s = tok_delimited(s, '"', '"', ts, T_QSTR);
		} else if (*s == '(') {
			s = tok_delimited(s, '(', ')', ts, T_COMMENT);
		} else if (*s == '[') {
			s = tok_delimited(s, '[', ']', ts, T_DLIT);
		} else if (strchr("<>:;@,.\\)]", *s) != NULL) {
			tok_push(ts, T_SPECIAL, *s, NULL, 0);
			s++;
		} else {
			while (*s != '\0' && strchr(" \t\"()[]<>:;@,.\\", *s) == NULL)
				s++;
			tok_push(ts, T_ATOM, 0, arena_add(ts, a, (size_t)(s - a)), (size_t)(s - a));
		}
	}
	tok_push(ts, T_END, 0, NULL, 0);
}

static void
toks_free(struct toks *ts)
{
	free(ts->arena);
	free(ts->v);
}

static int
is_special(const struct tok *t, const char *set)
{
	return t->type == T_END || (t->type == T_SPECIAL && strchr(set, t->c) != NULL);
}

/* The first token from i that is T_END or a special in set. */
static size_t
find_special(const struct toks *ts, size_t i, const char *set)
{
	while (!is_special(&ts->v[i], set))
		i++;
	return i;
}

/* Words of ts[i..j) as a phrase: words apart by one space, dots kept
 * (obs-phrase), comments left out. */
static void
phrase(const struct toks *ts, size_t i, size_t j, struct mime_buf *b)
{
	int prev_word = 0;

	for (; i < j; i++) {
		const struct tok *t = &ts->v[i];

		if (t->type == T_ATOM || t->type == T_QSTR || t->type == T_DLIT) {
			if (prev_word || (b->len > 0 && b->s[b->len - 1] == '.'))
				mime_buf_add(b, " ", 1);
			mime_buf_add(b, t->text, t->len);
			prev_word = 1;
		} else if (t->type == T_SPECIAL && t->c == '.') {
			mime_buf_add(b, ".", 1);
			prev_word = 0;
		}
	}
}

/* Tokens of ts[i..j) glued as a local part or domain; the last comment
 * goes to *comment_r when that is given. */
static void
glue(const struct toks *ts, size_t i, size_t j, struct mime_buf *b, const struct tok **comment_r)
{
	for (; i < j; i++) {
		const struct tok *t = &ts->v[i];

		if (t->type == T_COMMENT) {
			if (comment_r != NULL)
				*comment_r = t;
		} else if (t->type == T_SPECIAL) {
			if (t->c == '.')
				mime_buf_add(b, ".", 1);
		} else {
			mime_buf_add(b, t->text, t->len);
		}
	}
}

static void
emit_addr(struct mime_buf *out, struct mime_buf *name, struct mime_buf *adl,
	  struct mime_buf *local, struct mime_buf *domain)
{
	mime_buf_add(out, "(", 1);
	mime_buf_nstring(out, name->len > 0 ? name->s : NULL, name->len);
	mime_buf_add(out, " ", 1);
	mime_buf_nstring(out, adl->len > 0 ? adl->s : NULL, adl->len);
	mime_buf_add(out, " ", 1);
	if (local->len > 0)
		mime_buf_string(out, local->s, local->len);
	else
		mime_buf_puts(out, "\"MISSING_MAILBOX\"");
	mime_buf_add(out, " ", 1);
	if (domain->len > 0)
		mime_buf_string(out, domain->s, domain->len);
	else
		mime_buf_puts(out, "\"MISSING_DOMAIN\"");
	mime_buf_add(out, ")", 1);
}

/* One mailbox from i (name-addr or addr-spec); returns the index of the
 * ',' ';' or end after it. stop is the set that ends a mailbox. */
static size_t
mailbox(const struct toks *ts, size_t i, const char *stop, struct mime_buf *out, int *count)
{
	struct mime_buf name = { 0 }, adl = { 0 }, local = { 0 }, domain = { 0 };
	const struct tok *comment = NULL;
	size_t j = find_special(ts, i, "<@,;"), k, end;
	int angle = 0;

	if (ts->v[j].type == T_SPECIAL && ts->v[j].c == '<') {
		phrase(ts, i, j, &name);
		angle = 1; /* even "<>" is an address (as Dovecot) */
		i = j + 1;
		end = find_special(ts, i, ">,;");
		if (ts->v[i].type == T_SPECIAL && ts->v[i].c == '@') {
			/* obs-route: "@a,@b:" */
			k = find_special(ts, i, ":>");
			if (ts->v[k].type == T_SPECIAL && ts->v[k].c == ':') {
				for (size_t r = i; r < k; r++) {
					const struct tok *t = &ts->v[r];

					if (t->type == T_SPECIAL && strchr("@,.", t->c) != NULL)
						mime_buf_add(&adl, &t->c, 1);
					else if (t->type != T_COMMENT && t->text != NULL)
						mime_buf_add(&adl, t->text, t->len);
				}
				i = k + 1;
				end = find_special(ts, i, ">;");
			}
		}
		k = find_special(ts, i, "@>,;");
		glue(ts, i, k < end ? k : end, &local, NULL);
		if (k < end && ts->v[k].c == '@')
			glue(ts, k + 1, end, &domain, NULL);
		i = end;
		if (ts->v[i].type == T_SPECIAL && ts->v[i].c == '>')
			i++;
	} else {
		k = j;
		end = find_special(ts, i, stop);
		glue(ts, i, k < end ? k : end, &local, &comment);
		if (k < end && ts->v[k].c == '@') {
			/* the domain ends at a special that has no place in it */
			size_t dend = find_special(ts, k + 1, ":<>@,;");

			glue(ts, k + 1, dend < end ? dend : end, &domain, &comment);
		}
		if (comment != NULL)
			mime_buf_add(&name, comment->text, comment->len);
		i = end;
	}
	if (angle || local.len > 0 || domain.len > 0 || name.len > 0 || adl.len > 0) {
		emit_addr(out, &name, &adl, &local, &domain);
		(*count)++;
	}
	free(name.s);
	free(adl.s);
	free(local.s);
	free(domain.s);
	return find_special(ts, i, stop);
}

/* An address-list value as "(...)" or NIL; *count_r addresses written. */
static void
address_list(struct mime_buf *out, const char *value, int *count_r)
{
	struct toks ts = { 0 };
	struct mime_buf b = { 0 };
	size_t i = 0;
	int count = 0;

	tokenize(value, &ts);
	while (ts.v[i].type != T_END) {
		size_t j = find_special(&ts, i, ":<@,;");

		if (ts.v[i].type == T_SPECIAL && strchr(",;>", ts.v[i].c) != NULL) {
			i++;
		} else if (ts.v[j].type == T_SPECIAL && ts.v[j].c == ':') {
			struct mime_buf name = { 0 };

			phrase(&ts, i, j, &name);
			mime_buf_puts(&b, "(NIL NIL ");
			mime_buf_string(&b, name.s != NULL ? name.s : "", name.len);
			mime_buf_puts(&b, " NIL)");
			free(name.s);
			i = j + 1;
			while (!is_special(&ts.v[i], ";")) {
				if (is_special(&ts.v[i], ","))
					i++;
				else
					i = mailbox(&ts, i, ",;", &b, &count);
			}
			if (ts.v[i].type != T_END)
				i++;
			mime_buf_puts(&b, "(NIL NIL NIL NIL)");
			count++;
		} else {
			i = mailbox(&ts, i, ",", &b, &count);
		}
	}
	toks_free(&ts);
	if (count > 0) {
		mime_buf_add(out, "(", 1);
		mime_buf_add(out, b.s, b.len);
		mime_buf_add(out, ")", 1);
	} else {
		mime_buf_puts(out, "NIL");
	}
	free(b.s);
	*count_r = count;
}

static void
field_nstring(struct mime_buf *b, const struct mime_hdrs *h, enum mime_hdr_id id)
{
	char *v;

	if (h->val[id] == NULL) {
		mime_buf_puts(b, "NIL");
		return;
	}
	v = mime_unfold(h->val[id], h->len[id]);
	mime_buf_string(b, v, strlen(v));
	free(v);
}

/* The address list of field id into b; 0 when it had no address. */
static int
field_addresses(struct mime_buf *b, const struct mime_hdrs *h, enum mime_hdr_id id)
{
	char *v;
	int count = 0;

	if (h->val[id] == NULL) {
		mime_buf_puts(b, "NIL");
		return 0;
	}
	v = mime_unfold(h->val[id], h->len[id]);
	address_list(b, v, &count);
	free(v);
	return count;
}

void
mime_envelope(struct mime_buf *b, const struct mime_hdrs *h)
{
	struct mime_buf from = { 0 }, tmp = { 0 };

	mime_buf_add(b, "(", 1);
	field_nstring(b, h, MH_DATE);
	mime_buf_add(b, " ", 1);
	field_nstring(b, h, MH_SUBJECT);
	mime_buf_add(b, " ", 1);
	field_addresses(&from, h, MH_FROM);
	mime_buf_add(b, from.s, from.len);
	/* RFC 3501: an absent or empty Sender or Reply-To is the From */
	for (enum mime_hdr_id id = MH_SENDER; id <= MH_REPLY_TO; id++) {
		mime_buf_add(b, " ", 1);
		if (field_addresses(&tmp, h, id) > 0)
			mime_buf_add(b, tmp.s, tmp.len);
		else
			mime_buf_add(b, from.s, from.len);
		tmp.len = 0;
	}
	for (enum mime_hdr_id id = MH_TO; id <= MH_BCC; id++) {
		mime_buf_add(b, " ", 1);
		field_addresses(b, h, id);
	}
	mime_buf_add(b, " ", 1);
	field_nstring(b, h, MH_IN_REPLY_TO);
	mime_buf_add(b, " ", 1);
	field_nstring(b, h, MH_MESSAGE_ID);
	mime_buf_add(b, ")", 1);
	free(from.s);
	free(tmp.s);
}
