/*
 * store_mime_preview: up to 200 characters of a message's text for a
 * client's message list: the first text/plain part that is not an
 * attachment, else the first text/html one with its tags stripped (GMime
 * has no HTML-to-text filter, so a crude strip here: tags, script, style
 * and head dropped, a few entities decoded). The transfer encoding is
 * undone with GMime, the charset with iconv (GMime's charset lookup keeps
 * every name it sees in a global table), whitespace is collapsed, and the result
 * is valid UTF-8. Only the first PREVIEW_INPUT bytes of the part are read.
 * Public: mime_preview (store_mime_int.h).
 */
#include <errno.h>
#include <gmime/gmime.h>
#include <iconv.h>
#include <string.h>
#include <strings.h>

#include "store/store_mime_int.h"
#include "util/xalloc.h"

#define PREVIEW_INPUT (64 * 1024)
#define PREVIEW_CHARS 200

/* The first leaf of type text/subtype that is no attachment; recursion is
 * bounded by the tree's depth. */
static const struct mime_part *
find_text(const struct mime_tree *t, const struct mime_part *p, const char *subtype,
	  struct mime_ctype *ct_r)
{
	for (; p != NULL; p = p->next) {
		struct mime_hdrs h;
		struct mime_ctype ct = { 0 };
		const struct mime_part *r;

		if (p->kind != MK_SINGLE) {
			r = find_text(t, p->child, subtype, ct_r);
			if (r != NULL)
				return r;
			continue;
		}
		if (p->opaque || mime_part_is_attachment(t, p))
			continue;
		mime_hdr_scan(t->data + p->hdr_off, p->hdr_len, &h);
		if (h.val[MH_CONTENT_TYPE] != NULL) {
			char *v = mime_unfold(h.val[MH_CONTENT_TYPE], h.len[MH_CONTENT_TYPE]);

			mime_ctype_parse(v, 1, &ct);
			free(v);
		}
		if ((ct.type == NULL && !p->digest_child && strcmp(subtype, "plain") == 0) ||
		    (ct.type != NULL && strcmp(ct.type, "text") == 0 &&
		     strcmp(ct.subtype, subtype) == 0)) {
			*ct_r = ct;
			return p;
		}
		mime_ctype_free(&ct);
	}
	return NULL;
}

static char *
decode_transfer(const struct mime_tree *t, const struct mime_part *p, size_t *len_r)
{
	struct mime_hdrs h;
	GMimeContentEncoding enc = GMIME_CONTENT_ENCODING_DEFAULT;
	size_t n = p->body_len < PREVIEW_INPUT ? p->body_len : PREVIEW_INPUT;
	const char *in = t->data + p->body_off;
	char *out;

	mime_hdr_scan(t->data + p->hdr_off, p->hdr_len, &h);
	if (h.val[MH_CONTENT_TRANSFER_ENCODING] != NULL) {
		char *e = mime_unfold(h.val[MH_CONTENT_TRANSFER_ENCODING],
				      h.len[MH_CONTENT_TRANSFER_ENCODING]);

		g_strstrip(e);
		enc = g_mime_content_encoding_from_string(e);
		free(e);
	}
	if (enc == GMIME_CONTENT_ENCODING_BASE64 || enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
	    enc == GMIME_CONTENT_ENCODING_UUENCODE) {
		GMimeEncoding state;

		g_mime_encoding_init_decode(&state, enc);
		out = xmalloc(g_mime_encoding_outlen(&state, n) + 1);
		*len_r = g_mime_encoding_step(&state, in, n, out);
		*len_r += g_mime_encoding_flush(&state, "", 0, out + *len_r);
	} else {
		out = xmalloc(n + 1);
		memcpy(out, in, n);
		*len_r = n;
	}
	out[*len_r] = '\0';
	return out;
}

/* A charset name worth asking iconv about: GMime's own charset lookup
 * would remember every name it is given, and a preview must not let
 * messages grow a process-wide table. */
static int
charset_name_ok(const char *cs)
{
	size_t n = strlen(cs);

	if (n == 0 || n > 40)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!g_ascii_isalnum(cs[i]) && strchr("-_.:+()", cs[i]) == NULL)
			return 0;
	return 1;
}

/* s[0..n) from charset cs to UTF-8 (g_malloc'd), a byte iconv cannot
 * take becoming U+FFFD; NULL when iconv knows no such charset. */
static char *
iconv_utf8(const char *s, size_t n, const char *cs)
{
	iconv_t cd = iconv_open("UTF-8", cs);
	size_t cap = 4 * n + 16, left_in = n, left_out;
	char *in = (char *)s, *r, *out;

	if (cd == (iconv_t)-1)
		return NULL;
	r = g_malloc(cap);
	out = r;
	left_out = cap - 1;
	while (left_in > 0) {
		if (iconv(cd, &in, &left_in, &out, &left_out) != (size_t)-1)
			break;
		if (errno == E2BIG || left_out < 4) {
			size_t used = (size_t)(out - r);

			cap *= 2;
			r = g_realloc(r, cap);
			out = r + used;
			left_out = cap - used - 1;
			continue;
		}
		/* EILSEQ, EINVAL (cut at the end): one byte skipped */
		memcpy(out, "\xef\xbf\xbd", 3);
		out += 3;
		left_out -= 3;
		in++;
		left_in--;
	}
	iconv_close(cd);
	*out = '\0';
	out = g_utf8_make_valid(r, out - r);
	g_free(r);
	return out;
}

/* The decoded bytes in UTF-8 (g_malloc'd). */
static char *
to_utf8(const char *s, size_t n, const char *charset)
{
	char *r = NULL;

	if (charset != NULL && g_ascii_strcasecmp(charset, "utf-8") != 0 &&
	    g_ascii_strcasecmp(charset, "us-ascii") != 0 && charset_name_ok(charset))
		r = iconv_utf8(s, n, charset);
	if (r == NULL)
		r = g_utf8_make_valid(s, (gssize)n);
	return r;
}

static const struct {
	const char *name;
	char c;
} entities[] = {
	{ "&nbsp;", ' ' }, { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' },
	{ "&quot;", '"' }, { "&#39;", '\'' }, { "&apos;", '\'' },
};

/* Crude HTML to text in place: tags become a blank, script, style and
 * head elements vanish, a few entities are decoded. */
static void
html_strip(char *s)
{
	char *w = s;
	const char *skip_to = NULL;

	while (*s != '\0') {
		if (skip_to != NULL) {
			if (g_ascii_strncasecmp(s, skip_to, strlen(skip_to)) == 0) {
				/* a closing tag is then eaten as a tag, "-->" here */
				if (skip_to[0] == '-')
					s += 3;
				skip_to = NULL;
				continue;
			}
			s++;
			continue;
		}
		if (*s == '<') {
			if (g_ascii_strncasecmp(s, "<script", 7) == 0)
				skip_to = "</script";
			else if (g_ascii_strncasecmp(s, "<style", 6) == 0)
				skip_to = "</style";
			else if (g_ascii_strncasecmp(s, "<head", 5) == 0)
				skip_to = "</head";
			else if (strncmp(s, "<!--", 4) == 0)
				skip_to = "-->";
			while (*s != '\0' && *s != '>' && skip_to == NULL)
				s++;
			if (*s == '>')
				s++;
			*w++ = ' ';
			continue;
		}
		if (*s == '&') {
			size_t i;

			for (i = 0; i < sizeof(entities) / sizeof(entities[0]); i++)
				if (g_ascii_strncasecmp(s, entities[i].name, strlen(entities[i].name)) == 0)
					break;
			if (i < sizeof(entities) / sizeof(entities[0])) {
				*w++ = entities[i].c;
				s += strlen(entities[i].name);
				continue;
			}
		}
		*w++ = *s++;
	}
	*w = '\0';
}

/* Collapse blanks and controls to one space, trim, cut at PREVIEW_CHARS
 * characters; s is valid UTF-8 and stays so. */
static char *
collapse(const char *s)
{
	size_t n = strlen(s), k = 0, chars = 0;
	char *r = xmalloc(n + 1);

	while (*s != '\0' && chars < PREVIEW_CHARS) {
		if ((unsigned char)*s <= 0x20 || *s == 0x7f) {
			if (k > 0 && r[k - 1] != ' ') {
				r[k++] = ' ';
				chars++;
			}
			s++;
			continue;
		}
		{
			const char *next = g_utf8_next_char(s);

			memcpy(r + k, s, (size_t)(next - s));
			k += (size_t)(next - s);
			s = next;
			chars++;
		}
	}
	while (k > 0 && r[k - 1] == ' ')
		k--;
	r[k] = '\0';
	return r;
}

char *
mime_preview(const struct mime_tree *t)
{
	struct mime_ctype ct = { 0 };
	const struct mime_part *p = find_text(t, t->root, "plain", &ct);
	int html = 0;
	char *raw, *utf8, *r;
	size_t n;

	if (p == NULL) {
		p = find_text(t, t->root, "html", &ct);
		html = 1;
	}
	if (p == NULL)
		return NULL;
	raw = decode_transfer(t, p, &n);
	utf8 = to_utf8(raw, n, mime_ctype_param(&ct, "charset"));
	free(raw);
	mime_ctype_free(&ct);
	if (html)
		html_strip(utf8);
	r = collapse(utf8);
	g_free(utf8);
	if (r[0] == '\0') {
		free(r);
		return NULL;
	}
	return r;
}
