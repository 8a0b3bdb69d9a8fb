/*
 * store_mime_body: BODY and BODYSTRUCTURE (RFC 3501 7.4.2) of a part tree,
 * and the Content-Type / Content-Disposition parameter syntax (RFC 2045
 * 5.1, RFC 2183, RFC 2231 continuations). Type, subtype, encoding,
 * disposition and parameter names are sent in upper case (as the RFC's
 * examples and most servers; Dovecot keeps the header's case, which the
 * RFC allows too); values as they are. A part without Content-Type is
 * text/plain (message/rfc822 in a multipart/digest); a text part without
 * a charset gets ("CHARSET" "us-ascii") added, as Dovecot does.
 * A part summarised because of a bound is APPLICATION/OCTET-STREAM.
 * Public: mime_body, mime_ctype_parse, mime_ctype_free, mime_ctype_param,
 * mime_part_is_attachment (store_mime_int.h).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/store_mime_int.h"
#include "util/xalloc.h"

/* More parameters than this in one field are ignored (bounded work). */
#define MAX_PARAMS 64

static const char *
skip_cfws(const char *s)
{
	for (;;) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s != '(')
			return s;
		for (int depth = 0; *s != '\0'; s++) {
			if (*s == '\\' && s[1] != '\0')
				s++;
			else if (*s == '(')
				depth++;
			else if (*s == ')' && --depth == 0) {
				s++;
				break;
			}
		}
	}
}

static int
is_tchar(char c)
{
	return (unsigned char)c > 0x20 && c != 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

static char *
token_lower(const char **sp)
{
	const char *s = *sp, *a = s;
	char *t;

	while (is_tchar(*s))
		s++;
	if (s == a)
		return NULL;
	t = xstrndup(a, (size_t)(s - a));
	for (char *p = t; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + 32);
	*sp = s;
	return t;
}

/* A parameter value: quoted-string (unescaped) or a token (RFC 2045 5.1;
 * what follows a broken one up to the next ';' is skipped, as Dovecot). */
static char *
param_value(const char **sp)
{
	const char *s = *sp, *a;
	struct mime_buf b = { 0 };

	if (*s == '"') {
		for (s++; *s != '\0' && *s != '"'; s++) {
			if (*s == '\\' && s[1] != '\0')
				s++;
			mime_buf_add(&b, s, 1);
		}
		if (*s == '"')
			s++;
		*sp = s;
		return b.s != NULL ? b.s : xstrdup("");
	}
	for (a = s; is_tchar(*s) || *s == '/' || *s == '?' || *s == '='; s++)
		;
	*sp = s;
	return xstrndup(a, (size_t)(s - a));
}

/* RFC 2231 section number of "name*N" / "name*N*": N, or -1 when name has
 * no section; *base_len_r the length of "name", *ext_r the final '*'. */
static long
param_section(const char *name, size_t *base_len_r, int *ext_r)
{
	const char *star = strchr(name, '*');
	char *end;
	long n;

	*ext_r = 0;
	*base_len_r = strlen(name);
	if (star == NULL || star[1] < '0' || star[1] > '9')
		return -1;
	n = strtol(star + 1, &end, 10);
	if (*end == '*' && end[1] == '\0')
		*ext_r = 1;
	else if (*end != '\0')
		return -1;
	*base_len_r = (size_t)(star - name);
	return n > 1000 ? -1 : n;
}

/* Merge "name*0" "name*1" ... into one "name" (or "name*" when the first
 * section is extended), in section order, at the first section's place. */
static void
params_merge(struct mime_ctype *ct)
{
	for (size_t i = 0; i < ct->nparams; i++) {
		size_t blen, blen2;
		int ext, ext2;
		struct mime_buf v = { 0 };
		long sec = param_section(ct->params[i].name, &blen, &ext);

		if (sec < 0)
			continue;
		for (long want = 0; want <= 1000; want++) {
			size_t k;

			for (k = i; k < ct->nparams; k++) {
				long s2 = param_section(ct->params[k].name, &blen2, &ext2);

				if (s2 == want && blen2 == blen &&
				    strncmp(ct->params[k].name, ct->params[i].name, blen) == 0)
					break;
			}
			if (k == ct->nparams)
				break;
			if (want == 0)
				ext = ext2;
			mime_buf_puts(&v, ct->params[k].value);
			if (k != i) {
				free(ct->params[k].name);
				free(ct->params[k].value);
				memmove(&ct->params[k], &ct->params[k + 1],
					(ct->nparams - k - 1) * sizeof(*ct->params));
				ct->nparams--;
			}
		}
		ct->params[i].name[blen] = '\0';
		if (ext)
			strcpy(ct->params[i].name + blen, "*");
		free(ct->params[i].value);
		ct->params[i].value = v.s != NULL ? v.s : xstrdup("");
	}
}

void
mime_ctype_parse(const char *value, int with_type, struct mime_ctype *ct_r)
{
	const char *s = skip_cfws(value);

	memset(ct_r, 0, sizeof(*ct_r));
	ct_r->type = token_lower(&s);
	if (ct_r->type != NULL && with_type) {
		s = skip_cfws(s);
		if (*s == '/') {
			s = skip_cfws(s + 1);
			ct_r->subtype = token_lower(&s);
		}
		if (ct_r->subtype == NULL) {
			/* RFC 2045 5.2: a broken field is as if absent */
			free(ct_r->type);
			ct_r->type = NULL;
			return;
		}
	}
	while (*s != '\0' && ct_r->nparams < MAX_PARAMS) {
		char *name;

		s = strchr(s, ';');
		if (s == NULL)
			break;
		s = skip_cfws(s + 1);
		name = token_lower(&s);
		if (name == NULL)
			continue;
		s = skip_cfws(s);
		if (*s != '=') {
			free(name);
			continue;
		}
		s = skip_cfws(s + 1);
		ct_r->params = xrealloc(ct_r->params, (ct_r->nparams + 1) * sizeof(*ct_r->params));
		ct_r->params[ct_r->nparams].name = xmalloc(strlen(name) + 2);
		strcpy(ct_r->params[ct_r->nparams].name, name);
		free(name);
		ct_r->params[ct_r->nparams++].value = param_value(&s);
	}
	params_merge(ct_r);
}

void
mime_ctype_free(struct mime_ctype *ct)
{
	for (size_t i = 0; i < ct->nparams; i++) {
		free(ct->params[i].name);
		free(ct->params[i].value);
	}
	free(ct->params);
	free(ct->type);
	free(ct->subtype);
	memset(ct, 0, sizeof(*ct));
}

const char *
mime_ctype_param(const struct mime_ctype *ct, const char *name)
{
	for (size_t i = 0; i < ct->nparams; i++)
		if (strcmp(ct->params[i].name, name) == 0)
			return ct->params[i].value;
	return NULL;
}

static void
field_parse(const struct mime_hdrs *h, enum mime_hdr_id id, int with_type, struct mime_ctype *ct_r)
{
	char *v;

	memset(ct_r, 0, sizeof(*ct_r));
	if (h->val[id] == NULL)
		return;
	v = mime_unfold(h->val[id], h->len[id]);
	mime_ctype_parse(v, with_type, ct_r);
	free(v);
}

static void
params_out(struct mime_buf *b, const struct mime_ctype *ct)
{
	if (ct->nparams == 0) {
		mime_buf_puts(b, "NIL");
		return;
	}
	mime_buf_add(b, "(", 1);
	for (size_t i = 0; i < ct->nparams; i++) {
		if (i > 0)
			mime_buf_add(b, " ", 1);
		mime_buf_string_upper(b, ct->params[i].name);
		mime_buf_add(b, " ", 1);
		mime_buf_string(b, ct->params[i].value, strlen(ct->params[i].value));
	}
	mime_buf_add(b, ")", 1);
}

/* An unstructured field's value, unfolded, trailing blanks cut, or NIL. */
static void
field_out(struct mime_buf *b, const struct mime_hdrs *h, enum mime_hdr_id id)
{
	char *v;
	size_t n;

	if (h->val[id] == NULL) {
		mime_buf_puts(b, "NIL");
		return;
	}
	v = mime_unfold(h->val[id], h->len[id]);
	n = strlen(v);
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	mime_buf_string(b, v, n);
	free(v);
}

/* body-fld-dsp, body-fld-lang and body-fld-loc. */
static void
ext_common(struct mime_buf *b, const struct mime_hdrs *h)
{
	struct mime_ctype d;
	char *lang, *s, *save = NULL;
	int n = 0;

	field_parse(h, MH_CONTENT_DISPOSITION, 0, &d);
	mime_buf_add(b, " ", 1);
	if (d.type != NULL) {
		mime_buf_add(b, "(", 1);
		mime_buf_string_upper(b, d.type);
		mime_buf_add(b, " ", 1);
		params_out(b, &d);
		mime_buf_add(b, ")", 1);
	} else {
		mime_buf_puts(b, "NIL");
	}
	mime_ctype_free(&d);

	mime_buf_add(b, " ", 1);
	if (h->val[MH_CONTENT_LANGUAGE] == NULL) {
		mime_buf_puts(b, "NIL");
	} else {
		struct mime_buf l = { 0 };

		lang = mime_unfold(h->val[MH_CONTENT_LANGUAGE], h->len[MH_CONTENT_LANGUAGE]);
		for (s = strtok_r(lang, ", \t", &save); s != NULL && n < MAX_PARAMS;
		     s = strtok_r(NULL, ", \t", &save)) {
			if (n++ > 0)
				mime_buf_add(&l, " ", 1);
			mime_buf_string(&l, s, strlen(s));
		}
		if (n == 0)
			mime_buf_puts(b, "NIL");
		else if (n == 1)
			mime_buf_add(b, l.s, l.len);
		else
		{
			mime_buf_add(b, "(", 1);
			mime_buf_add(b, l.s, l.len);
			mime_buf_add(b, ")", 1);
		}
		free(l.s);
		free(lang);
	}
	mime_buf_add(b, " ", 1);
	field_out(b, h, MH_CONTENT_LOCATION);
}

static void
body_multipart(struct mime_buf *b, const struct mime_tree *t, const struct mime_part *p,
	       const struct mime_hdrs *h, const struct mime_ctype *ct, int ext)
{
	mime_buf_add(b, "(", 1);
	for (const struct mime_part *c = p->child; c != NULL; c = c->next)
		mime_body(b, t, c, ext);
	mime_buf_add(b, " ", 1);
	mime_buf_string_upper(b, ct->subtype);
	if (ext) {
		mime_buf_add(b, " ", 1);
		params_out(b, ct);
		ext_common(b, h);
	}
	mime_buf_add(b, ")", 1);
}

static void
body_single(struct mime_buf *b, const struct mime_tree *t, const struct mime_part *p,
	    const struct mime_hdrs *h, const struct mime_ctype *ct, int ext)
{
	const char *type = ct->type, *subtype = ct->subtype;
	static const struct mime_param us_ascii = { (char *)"charset", (char *)"us-ascii" };
	char *enc;

	if (type == NULL) {
		type = p->digest_child ? "message" : "text";
		subtype = p->digest_child ? "rfc822" : "plain";
	}
	mime_buf_add(b, "(", 1);
	mime_buf_string_upper(b, type);
	mime_buf_add(b, " ", 1);
	mime_buf_string_upper(b, subtype);
	mime_buf_add(b, " ", 1);
	if (strcmp(type, "text") == 0 && mime_ctype_param(ct, "charset") == NULL) {
		/* RFC 2045 5.2's default made explicit, after the others (as
		 * Dovecot) */
		struct mime_ctype def = *ct;

		def.params = xmalloc((ct->nparams + 1) * sizeof(*def.params));
		if (ct->nparams > 0)
			memcpy(def.params, ct->params, ct->nparams * sizeof(*def.params));
		def.params[def.nparams++] = us_ascii;
		params_out(b, &def);
		free(def.params);
	} else {
		params_out(b, ct);
	}
	mime_buf_add(b, " ", 1);
	field_out(b, h, MH_CONTENT_ID);
	mime_buf_add(b, " ", 1);
	field_out(b, h, MH_CONTENT_DESCRIPTION);
	mime_buf_add(b, " ", 1);
	if (h->val[MH_CONTENT_TRANSFER_ENCODING] != NULL) {
		const char *s;
		char *e = mime_unfold(h->val[MH_CONTENT_TRANSFER_ENCODING],
				      h->len[MH_CONTENT_TRANSFER_ENCODING]);

		s = skip_cfws(e);
		enc = token_lower(&s);
		free(e);
	} else {
		enc = NULL;
	}
	mime_buf_string_upper(b, enc != NULL ? enc : "7bit");
	free(enc);
	mime_buf_printf(b, " %lld", p->body_crlf);
	if (p->kind == MK_MESSAGE) {
		struct mime_hdrs mh;
		const struct mime_part *m = p->child;

		mime_hdr_scan(t->data + m->hdr_off, m->hdr_len, &mh);
		mime_buf_add(b, " ", 1);
		mime_envelope(b, &mh);
		mime_buf_add(b, " ", 1);
		mime_body(b, t, m, ext);
		mime_buf_printf(b, " %lld", p->body_lines);
	} else if (strcmp(type, "text") == 0) {
		mime_buf_printf(b, " %lld", p->body_lines);
	}
	if (ext) {
		mime_buf_add(b, " ", 1);
		field_out(b, h, MH_CONTENT_MD5);
		ext_common(b, h);
	}
	mime_buf_add(b, ")", 1);
}

void
mime_body(struct mime_buf *b, const struct mime_tree *t, const struct mime_part *p, int ext)
{
	struct mime_hdrs h;
	struct mime_ctype ct;

	if (p->opaque) {
		mime_buf_printf(b, "(\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"7BIT\" %lld%s)",
				p->body_crlf, ext ? " NIL NIL NIL NIL" : "");
		return;
	}
	mime_hdr_scan(t->data + p->hdr_off, p->hdr_len, &h);
	field_parse(&h, MH_CONTENT_TYPE, 1, &ct);
	if (p->kind == MK_MULTIPART)
		body_multipart(b, t, p, &h, &ct, ext);
	else
		body_single(b, t, p, &h, &ct, ext);
	mime_ctype_free(&ct);
}

int
mime_part_is_attachment(const struct mime_tree *t, const struct mime_part *p)
{
	struct mime_hdrs h;
	struct mime_ctype d, ct;
	int att;

	if (p->kind == MK_MULTIPART)
		return 0;
	mime_hdr_scan(t->data + p->hdr_off, p->hdr_len, &h);
	field_parse(&h, MH_CONTENT_DISPOSITION, 0, &d);
	field_parse(&h, MH_CONTENT_TYPE, 1, &ct);
	att = (d.type != NULL && strcmp(d.type, "attachment") == 0) ||
	      mime_ctype_param(&d, "filename") != NULL || mime_ctype_param(&d, "filename*") != NULL ||
	      mime_ctype_param(&ct, "name") != NULL || mime_ctype_param(&ct, "name*") != NULL;
	mime_ctype_free(&d);
	mime_ctype_free(&ct);
	return att;
}
