/*
 * store_mime: the summary of a message the index keeps (store_mime.h). The
 * part structure is a bounded scan of the bytes (store_mime_tree.c), since
 * IMAP needs exact offsets in the file and raw header values, and a MIME
 * bomb must cost no more than the bounds allow; GMime decodes what a
 * preview needs (dates, transfer encodings; iconv the charsets). This file holds the
 * entry point, the output buffer with IMAP string quoting, and the header
 * field scan the other files share (store_mime_int.h).
 * Public: store_mime_summarize, store_mime_summary_free.
 */
#include <gmime/gmime.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "store/store_mime.h"
#include "store/store_mime_int.h"
#include "util/xalloc.h"

void
mime_buf_add(struct mime_buf *b, const char *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap < 256 ? 256 : b->cap;

		while (cap < b->len + n + 1)
			cap *= 2;
		b->s = xrealloc(b->s, cap);
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void
mime_buf_puts(struct mime_buf *b, const char *s)
{
	mime_buf_add(b, s, strlen(s));
}

void
mime_buf_printf(struct mime_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	mime_buf_add(b, "", 0);
	if (b->len + (size_t)n + 1 > b->cap) {
		b->cap = b->len + (size_t)n + 1;
		b->s = xrealloc(b->s, b->cap);
	}
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void
mime_buf_string(struct mime_buf *b, const char *p, size_t n)
{
	size_t nul = 0;
	int literal = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\0')
			nul++;
		else if (c < 0x20 || c >= 0x7f)
			literal = 1;
	}
	if (literal) {
		mime_buf_printf(b, "{%zu}\r\n", n - nul);
		for (size_t i = 0; i < n; i++)
			if (p[i] != '\0')
				mime_buf_add(b, p + i, 1);
		return;
	}
	mime_buf_add(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\0')
			continue;
		if (p[i] == '"' || p[i] == '\\')
			mime_buf_add(b, "\\", 1);
		mime_buf_add(b, p + i, 1);
	}
	mime_buf_add(b, "\"", 1);
}

void
mime_buf_nstring(struct mime_buf *b, const char *p, size_t n)
{
	if (p == NULL)
		mime_buf_puts(b, "NIL");
	else
		mime_buf_string(b, p, n);
}

void
mime_buf_string_upper(struct mime_buf *b, const char *s)
{
	size_t n = strlen(s);
	char *u = xmalloc(n + 1);

	for (size_t i = 0; i <= n; i++)
		u[i] = (s[i] >= 'a' && s[i] <= 'z') ? (char)(s[i] - 32) : s[i];
	mime_buf_string(b, u, n);
	free(u);
}

char *
mime_buf_take(struct mime_buf *b)
{
	char *s = b->s != NULL ? b->s : xstrdup("");

	b->s = NULL;
	b->len = b->cap = 0;
	return s;
}

static const char *const hdr_names[MH_COUNT] = {
	[MH_CONTENT_TYPE] = "content-type",
	[MH_CONTENT_TRANSFER_ENCODING] = "content-transfer-encoding",
	[MH_CONTENT_ID] = "content-id",
	[MH_CONTENT_DESCRIPTION] = "content-description",
	[MH_CONTENT_DISPOSITION] = "content-disposition",
	[MH_CONTENT_LANGUAGE] = "content-language",
	[MH_CONTENT_LOCATION] = "content-location",
	[MH_CONTENT_MD5] = "content-md5",
	[MH_DATE] = "date",
	[MH_SUBJECT] = "subject",
	[MH_FROM] = "from",
	[MH_SENDER] = "sender",
	[MH_REPLY_TO] = "reply-to",
	[MH_TO] = "to",
	[MH_CC] = "cc",
	[MH_BCC] = "bcc",
	[MH_IN_REPLY_TO] = "in-reply-to",
	[MH_MESSAGE_ID] = "message-id",
};

static void
hdr_field(const char *p, size_t n, struct mime_hdrs *h)
{
	const char *colon = memchr(p, ':', n);
	size_t nlen, i;

	if (colon == NULL)
		return;
	nlen = (size_t)(colon - p);
	while (nlen > 0 && (p[nlen - 1] == ' ' || p[nlen - 1] == '\t'))
		nlen--;
	for (i = 0; i < MH_COUNT; i++)
		if (h->val[i] == NULL && strlen(hdr_names[i]) == nlen &&
		    strncasecmp(p, hdr_names[i], nlen) == 0)
			break;
	if (i == MH_COUNT)
		return;
	colon++;
	while (colon < p + n && (*colon == ' ' || *colon == '\t'))
		colon++;
	h->val[i] = colon;
	h->len[i] = (size_t)(p + n - colon);
	/* the field's final line end is not part of its value */
	if (h->len[i] > 0 && h->val[i][h->len[i] - 1] == '\n')
		h->len[i]--;
	if (h->len[i] > 0 && h->val[i][h->len[i] - 1] == '\r')
		h->len[i]--;
}

void
mime_hdr_scan(const char *data, size_t len, struct mime_hdrs *h_r)
{
	size_t pos = 0, start = 0;

	memset(h_r, 0, sizeof(*h_r));
	if (len > STORE_MIME_MAX_HEADER) {
		len = STORE_MIME_MAX_HEADER;
		h_r->truncated = 1;
	}
	while (pos < len) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - data) + 1 : len;

		/* a line starting with a blank continues the field */
		if (pos > start && data[pos] != ' ' && data[pos] != '\t') {
			hdr_field(data + start, pos - start, h_r);
			start = pos;
		}
		if (end - pos <= 2 && (data[pos] == '\n' || (data[pos] == '\r' && end - pos == 2)))
			return; /* the blank line */
		pos = end;
	}
	if (pos > start)
		hdr_field(data + start, pos - start, h_r);
}

char *
mime_unfold(const char *p, size_t n)
{
	char *s = xmalloc(n + 1);
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (p[i] != '\r' && p[i] != '\n')
			s[k++] = p[i];
	s[k] = '\0';
	return s;
}

/* Recursion is bounded by the tree's depth (STORE_MIME_MAX_DEPTH). */
static int
any_attachment(const struct mime_tree *t, const struct mime_part *p)
{
	for (; p != NULL; p = p->next)
		if (mime_part_is_attachment(t, p) || any_attachment(t, p->child))
			return 1;
	return 0;
}

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void
gmime_init_once(void)
{
	g_mime_init();
}

int
store_mime_summarize(const char *data, size_t len, struct store_mime_summary *sum_r,
		     const char **error_r)
{
	struct mime_buf b = { 0 };
	struct mime_tree t;
	struct mime_hdrs h;
	const struct mime_part *root;

	(void)error_r;
	pthread_once(&gmime_once, gmime_init_once);
	memset(sum_r, 0, sizeof(*sum_r));
	mime_tree_parse(data, len, &t);
	root = t.root;
	mime_hdr_scan(data + root->hdr_off, root->hdr_len, &h);

	mime_envelope(&b, &h);
	sum_r->envelope = mime_buf_take(&b);
	mime_body(&b, &t, root, 0);
	sum_r->body = mime_buf_take(&b);
	mime_body(&b, &t, root, 1);
	sum_r->bodystructure = mime_buf_take(&b);

	sum_r->header_len = (size_t)root->hdr_crlf;
	if (root->hdr_crlf <= STORE_MIME_KEEP_HEADER) {
		for (size_t i = 0; i < root->hdr_len; i++) {
			if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
				mime_buf_add(&b, "\r", 1);
			/* a NUL would cut the string: 0x80 instead, as Dovecot
			 * does, so the length stays what header_len says */
			mime_buf_add(&b, data[i] != '\0' ? data + i : "\x80", 1);
		}
		sum_r->header = mime_buf_take(&b);
	}
	sum_r->size = root->hdr_crlf + root->body_crlf;
	if (h.val[MH_DATE] != NULL) {
		char *d = mime_unfold(h.val[MH_DATE], h.len[MH_DATE]);
		GDateTime *dt = g_mime_utils_header_decode_date(d);

		if (dt != NULL) {
			sum_r->date = g_date_time_to_unix(dt);
			g_date_time_unref(dt);
		}
		free(d);
	}
	if (h.val[MH_MESSAGE_ID] != NULL) {
		char *m = mime_unfold(h.val[MH_MESSAGE_ID], h.len[MH_MESSAGE_ID]);
		char *lt = strchr(m, '<'), *gt = lt != NULL ? strchr(lt, '>') : NULL;

		if (gt != NULL)
			sum_r->message_id = xstrndup(lt, (size_t)(gt - lt) + 1);
		free(m);
	}
	sum_r->preview = mime_preview(&t);
	sum_r->has_attachment = any_attachment(&t, root->child);
	sum_r->truncated = t.truncated;
	mime_tree_free(&t);
	return 0;
}

void
store_mime_summary_free(struct store_mime_summary *sum)
{
	free(sum->envelope);
	free(sum->body);
	free(sum->bodystructure);
	free(sum->header);
	free(sum->message_id);
	free(sum->preview);
	memset(sum, 0, sizeof(*sum));
}
