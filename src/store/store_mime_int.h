/*
 * store_mime_int: what the store_mime_*.c files share, private to them.
 * The part tree (store_mime_tree.c) is a bounded scan of the bytes: each
 * node knows where its header and body lie in the LF input and what they
 * count in CRLF octets; the header fields IMAP needs are located in one
 * pass per part (mime_hdr_scan). Output goes to a growing string (struct
 * mime_buf) in IMAP syntax (mime_buf_nstring chooses quoted or literal).
 */
#ifndef TANDEM_STORE_MIME_INT_H
#define TANDEM_STORE_MIME_INT_H
#include <stddef.h>

struct mime_buf {
	char *s;
	size_t len, cap;
};

void mime_buf_add(struct mime_buf *b, const char *p, size_t n);
void mime_buf_puts(struct mime_buf *b, const char *s);
void mime_buf_printf(struct mime_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* An IMAP string: quoted when every octet is printable ASCII, else a
 * literal; NUL octets are dropped (no literal8 here). */
void mime_buf_string(struct mime_buf *b, const char *p, size_t n);
/* The same, or NIL when p is NULL. */
void mime_buf_nstring(struct mime_buf *b, const char *p, size_t n);
/* The same after upper-casing ASCII letters. */
void mime_buf_string_upper(struct mime_buf *b, const char *s);
/* Take the string (NUL-terminated) out of b, leaving b empty. */
char *mime_buf_take(struct mime_buf *b);

/* Header fields the summary looks at; first occurrence wins. */
enum mime_hdr_id {
	MH_CONTENT_TYPE,
	MH_CONTENT_TRANSFER_ENCODING,
	MH_CONTENT_ID,
	MH_CONTENT_DESCRIPTION,
	MH_CONTENT_DISPOSITION,
	MH_CONTENT_LANGUAGE,
	MH_CONTENT_LOCATION,
	MH_CONTENT_MD5,
	MH_DATE,
	MH_SUBJECT,
	MH_FROM,
	MH_SENDER,
	MH_REPLY_TO,
	MH_TO,
	MH_CC,
	MH_BCC,
	MH_IN_REPLY_TO,
	MH_MESSAGE_ID,
	MH_COUNT
};

struct mime_hdrs {
	/* Raw (still folded) value of each field, leading blanks skipped,
	 * up to the line end of its last line; NULL when absent. */
	const char *val[MH_COUNT];
	size_t len[MH_COUNT];
	int truncated;           /* the header went past STORE_MIME_MAX_HEADER */
};

/* Scan the header block data[0..len) once. */
void mime_hdr_scan(const char *data, size_t len, struct mime_hdrs *h_r);
/* The value unfolded (CR and LF removed), NUL-terminated, malloc'd. */
char *mime_unfold(const char *p, size_t n);

/* Content-Type / Content-Disposition parameters (RFC 2045, RFC 2231
 * continuations merged: name*0, name*1 give "name", name*0* gives
 * "name*" with the still-encoded value). */
struct mime_param {
	char *name;
	char *value;
};
struct mime_ctype {
	char *type, *subtype;    /* lower case; NULL when absent or invalid */
	struct mime_param *params;
	size_t nparams;
};
/* Parse "type/subtype; a=b" (with_type) or "attachment; a=b" (!with_type:
 * the disposition goes in type). */
void mime_ctype_parse(const char *value, int with_type, struct mime_ctype *ct_r);
void mime_ctype_free(struct mime_ctype *ct);
const char *mime_ctype_param(const struct mime_ctype *ct, const char *name);

enum mime_kind { MK_SINGLE, MK_MULTIPART, MK_MESSAGE };

struct mime_part {
	size_t hdr_off, hdr_len;   /* LF input: header incl. its blank line */
	size_t body_off, body_len; /* LF input: the body */
	long long hdr_crlf, body_crlf, body_lines;
	enum mime_kind kind;
	int opaque;                /* a bound was hit: summarised, not parsed */
	int digest_child;          /* default type message/rfc822 (RFC 2046 5.1.5) */
	struct mime_part *child;   /* multipart: first part; message: the message */
	struct mime_part *next;
};

struct mime_tree {
	const char *data;
	size_t len;
	struct mime_part *root;    /* the message: header and body */
	unsigned nparts;
	int truncated;
};

void mime_tree_parse(const char *data, size_t len, struct mime_tree *t_r);
void mime_tree_free(struct mime_tree *t);
/* CRLF octets and LF count of data[off..off+len). */
long long mime_crlf_len(const char *data, size_t off, size_t len, long long *lines_r);

/* store_mime_envelope.c: "(date subject ... message-id)" of a header. */
void mime_envelope(struct mime_buf *b, const struct mime_hdrs *h);
/* store_mime_body.c: BODY (ext 0) or BODYSTRUCTURE (ext 1) of part. */
void mime_body(struct mime_buf *b, const struct mime_tree *t, const struct mime_part *p, int ext);
/* Whether part p carries an attachment (disposition attachment, or a name). */
int mime_part_is_attachment(const struct mime_tree *t, const struct mime_part *p);
/* store_mime_preview.c: preview text of the message, malloc'd or NULL. */
char *mime_preview(const struct mime_tree *t);

#endif
