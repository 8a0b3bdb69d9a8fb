/*
 * store_mime_tree: the part tree of a message, found by scanning its bytes
 * for header ends and boundary lines (RFC 2046 5.1.1), within the bounds
 * of store_mime.h: past STORE_MIME_MAX_DEPTH levels a container is one
 * opaque part, and once STORE_MIME_MAX_PARTS parts exist the rest of a
 * multipart's body is one opaque part. Each level scans only its own body,
 * so the work is at most depth times the message's length and memory is a
 * node per part kept. Also the section lookup of FETCH BODY[section].
 * Public: store_mime_section; mime_tree_parse, mime_tree_free,
 * mime_crlf_len (store_mime_int.h).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/store_mime.h"
#include "store/store_mime_int.h"
#include "util/xalloc.h"

long long
mime_crlf_len(const char *data, size_t off, size_t len, long long *lines_r)
{
	long long n = (long long)len, lines = 0;
	const char *p = data + off, *end = data + off + len;

	while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		lines++;
		if (p == data || p[-1] != '\r')
			n++;
		p++;
	}
	if (lines_r != NULL)
		*lines_r = lines;
	return n;
}

/* End of the header that starts at off: just past its blank line, or end
 * when it has none (then the body is empty). */
static size_t
header_end(const char *data, size_t off, size_t end)
{
	size_t pos = off;

	while (pos < end) {
		const char *nl = memchr(data + pos, '\n', end - pos);

		if (nl == NULL)
			return end;
		if (data + pos == nl || (data + pos + 1 == nl && data[pos] == '\r'))
			return (size_t)(nl - data) + 1;
		pos = (size_t)(nl - data) + 1;
	}
	return end;
}

static struct mime_part *
node_new(struct mime_tree *t, size_t off, size_t end)
{
	struct mime_part *p = xcalloc(1, sizeof(*p));
	size_t he = header_end(t->data, off, end);

	t->nparts++;
	p->hdr_off = off;
	p->hdr_len = he - off;
	p->body_off = he;
	p->body_len = end - he;
	p->hdr_crlf = mime_crlf_len(t->data, off, p->hdr_len, NULL);
	p->body_crlf = mime_crlf_len(t->data, he, p->body_len, &p->body_lines);
	return p;
}

static struct mime_part *parse_part(struct mime_tree *t, size_t off, size_t end, int depth,
				    int digest_child);

/* Whether the line at data[pos..eol) starts with "--boundary": 1 a
 * delimiter, 2 the close "--boundary--", 0 neither. What follows the
 * boundary is not looked at (RFC 2046 allows only blanks; Dovecot and
 * most readers match the prefix, and so do we, so that the structure
 * agrees with what clients find in the body). */
static int
boundary_line(const char *data, size_t pos, size_t eol, const char *bnd, size_t blen)
{
	size_t k = pos + 2 + blen;

	if (eol - pos < 2 + blen || data[pos] != '-' || data[pos + 1] != '-' ||
	    memcmp(data + pos + 2, bnd, blen) != 0)
		return 0;
	return k + 1 < eol && data[k] == '-' && data[k + 1] == '-' ? 2 : 1;
}

/* Where a part that ends before the delimiter line at pos stops: the line
 * end before the delimiter belongs to it (RFC 2046 5.1.1). */
static size_t
part_end(const char *data, size_t start, size_t pos)
{
	if (pos > start && data[pos - 1] == '\n')
		pos--;
	if (pos > start && data[pos - 1] == '\r')
		pos--;
	return pos;
}

static void
add_child(struct mime_part *parent, struct mime_part ***tail, struct mime_part *c)
{
	(void)parent;
	**tail = c;
	*tail = &c->next;
}

static void
parse_multipart(struct mime_tree *t, struct mime_part *p, const char *bnd, int depth,
		int digest)
{
	const char *data = t->data;
	size_t blen = strlen(bnd), pos = p->body_off, end = p->body_off + p->body_len;
	size_t start = 0;
	int in_part = 0;
	struct mime_part **tail = &p->child;

	while (blen > 0 && pos < end) {
		const char *nl = memchr(data + pos, '\n', end - pos);
		size_t eol = nl != NULL ? (size_t)(nl - data) : end;
		int kind = boundary_line(data, pos, eol, bnd, blen);

		if (kind != 0) {
			if (in_part)
				add_child(p, &tail, parse_part(t, start, part_end(data, start, pos),
							       depth + 1, digest));
			in_part = 0;
			if (kind == 2)
				break;
			start = nl != NULL ? eol + 1 : end;
			in_part = 1;
			if (t->nparts >= STORE_MIME_MAX_PARTS) {
				struct mime_part *o = node_new(t, start, end);

				o->opaque = 1;
				t->truncated = 1;
				add_child(p, &tail, o);
				in_part = 0;
				break;
			}
		}
		pos = nl != NULL ? eol + 1 : end;
	}
	if (in_part)
		add_child(p, &tail, parse_part(t, start, end, depth + 1, digest));
	if (p->child == NULL) {
		/* no part at all: an empty one stands in, as RFC 3501 needs one */
		struct mime_part *e = node_new(t, end, end);

		add_child(p, &tail, e);
	}
}

static int
encoding_is_identity(const struct mime_hdrs *h)
{
	char *enc;
	int ok;

	if (h->val[MH_CONTENT_TRANSFER_ENCODING] == NULL)
		return 1;
	enc = mime_unfold(h->val[MH_CONTENT_TRANSFER_ENCODING], h->len[MH_CONTENT_TRANSFER_ENCODING]);
	ok = strncasecmp(enc, "base64", 6) != 0 && strncasecmp(enc, "quoted-printable", 16) != 0;
	free(enc);
	return ok;
}

static struct mime_part *
parse_part(struct mime_tree *t, size_t off, size_t end, int depth, int digest_child)
{
	struct mime_part *p = node_new(t, off, end);
	struct mime_hdrs h;
	struct mime_ctype ct = { 0 };
	int multipart = 0, message = 0;

	p->digest_child = digest_child;
	mime_hdr_scan(t->data + p->hdr_off, p->hdr_len, &h);
	if (h.truncated)
		t->truncated = 1;
	if (h.val[MH_CONTENT_TYPE] != NULL) {
		char *v = mime_unfold(h.val[MH_CONTENT_TYPE], h.len[MH_CONTENT_TYPE]);

		mime_ctype_parse(v, 1, &ct);
		free(v);
	}
	if (ct.type != NULL) {
		/* without a boundary still a multipart (of one empty part, as
		 * Dovecot), since clients take a MULTIPART type for one */
		multipart = strcmp(ct.type, "multipart") == 0;
		message = strcmp(ct.type, "message") == 0 && strcmp(ct.subtype, "rfc822") == 0;
	} else {
		message = digest_child;
	}
	message = message && encoding_is_identity(&h);
	if ((multipart || message) && depth >= STORE_MIME_MAX_DEPTH) {
		p->opaque = 1;
		t->truncated = 1;
	} else if (multipart) {
		const char *bnd = mime_ctype_param(&ct, "boundary");

		p->kind = MK_MULTIPART;
		parse_multipart(t, p, bnd != NULL ? bnd : "", depth, strcmp(ct.subtype, "digest") == 0);
	} else if (message) {
		p->kind = MK_MESSAGE;
		p->child = parse_part(t, p->body_off, end, depth + 1, 0);
	}
	mime_ctype_free(&ct);
	return p;
}

void
mime_tree_parse(const char *data, size_t len, struct mime_tree *t_r)
{
	memset(t_r, 0, sizeof(*t_r));
	t_r->data = data;
	t_r->len = len;
	t_r->root = parse_part(t_r, 0, len, 0, 0);
}

static void
part_free(struct mime_part *p)
{
	while (p != NULL) {
		struct mime_part *next = p->next;

		part_free(p->child);
		free(p);
		p = next;
	}
}

void
mime_tree_free(struct mime_tree *t)
{
	part_free(t->root);
	t->root = NULL;
}

/* The n-th part (1-based) inside node, which is a message when is_msg:
 * a message that is not multipart has itself as part 1. */
static struct mime_part *
section_step(struct mime_part *node, int is_msg, unsigned long n)
{
	if (!is_msg && node->kind == MK_MESSAGE) {
		node = node->child;
		is_msg = 1;
	}
	if (node->kind == MK_MULTIPART) {
		struct mime_part *c = node->child;

		while (c != NULL && --n > 0)
			c = c->next;
		return c;
	}
	return is_msg && n == 1 ? node : NULL;
}

/* Parse one part number of a section-spec: 1*digit without a leading 0. */
static int
section_number(const char **sp, unsigned long *n_r)
{
	const char *s = *sp;
	unsigned long n = 0;

	if (*s < '1' || *s > '9')
		return -1;
	while (*s >= '0' && *s <= '9') {
		if (n > 100000000)
			return -1;
		n = n * 10 + (unsigned long)(*s++ - '0');
	}
	*n_r = n;
	*sp = s;
	return 0;
}

static int
section_keyword(const char *s, int *header_r)
{
	if (strcasecmp(s, "TEXT") == 0) {
		*header_r = 0;
		return 0;
	}
	if (strcasecmp(s, "HEADER") == 0 || strncasecmp(s, "HEADER.FIELDS", 13) == 0) {
		*header_r = 1;
		return 0;
	}
	return -1;
}

static void
range(const struct mime_part *p, int header, size_t *off_r, size_t *len_r)
{
	*off_r = header ? p->hdr_off : p->body_off;
	*len_r = header ? p->hdr_len : p->body_len;
}

static int
section_find(struct mime_tree *t, const char *s, size_t *off_r, size_t *len_r)
{
	struct mime_part *node = t->root;
	int is_msg = 1, header;
	unsigned long n;

	while (*s >= '0' && *s <= '9') {
		if (section_number(&s, &n) < 0)
			return -1;
		node = node != NULL ? section_step(node, is_msg, n) : NULL;
		is_msg = 0;
		if (*s == '\0')
			break;
		if (*s++ != '.')
			return -1;
		if (*s == '\0')
			return -1;
	}
	if (*s == '\0') {
		if (node == NULL)
			return 1;
		range(node, 0, off_r, len_r);
		return 0;
	}
	if (strcasecmp(s, "MIME") == 0) {
		if (is_msg)
			return -1; /* MIME needs a part number */
		if (node == NULL)
			return 1;
		range(node, 1, off_r, len_r);
		return 0;
	}
	if (section_keyword(s, &header) < 0)
		return -1;
	if (node == NULL)
		return 1;
	if (!is_msg) {
		if (node->kind != MK_MESSAGE)
			return 1;
		node = node->child;
	}
	range(node, header, off_r, len_r);
	return 0;
}

int
store_mime_section(const char *data, size_t len, const char *section, size_t *off_r,
		   size_t *len_r)
{
	struct mime_tree t;
	int rc;

	*off_r = *len_r = 0;
	if (section[0] == '\0') {
		*len_r = len;
		return 0;
	}
	mime_tree_parse(data, len, &t);
	rc = section_find(&t, section, off_r, len_r);
	mime_tree_free(&t);
	if (rc != 0)
		*off_r = *len_r = 0;
	return rc;
}
