/*
 * dkim: see dkim.h.
 *
 * The message is read twice: once for the header fields (split into
 * fields, each with its raw bytes, continuation lines included) and once
 * for the body, which is canonicalized line by line into the body hash.
 * Empty lines are counted, not written, until a line with text follows:
 * so the empty lines at the end of the body are never hashed.
 */
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "mail/dkim.h"
#include "util/durable.h"
#include "util/xalloc.h"

/* RFC 6376 5.4.1, in this order; the first six are oversigned. */
static const char *const dkim_headers[] = {
	"from", "to", "cc", "subject", "date", "message-id",
	"reply-to", "sender", "in-reply-to", "references", "mime-version", "content-type",
	"content-transfer-encoding", "content-id", "content-description", "resent-date",
	"resent-from", "resent-sender", "resent-to", "resent-cc", "resent-message-id",
	"list-id", "list-help", "list-unsubscribe", "list-subscribe", "list-post",
	"list-owner", "list-archive",
};
#define DKIM_OVERSIGNED 6
#define DKIM_MAX_FIELDS 1000   /* header fields looked at */

struct dkim_buf {
	char *p;
	size_t len, cap;
};

static void
dkim_add(struct dkim_buf *b, const void *data, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
dkim_adds(struct dkim_buf *b, const char *s)
{
	dkim_add(b, s, strlen(s));
}

/* The end of the line at p (its terminator excluded) and the start of the
 * next: CRLF, LF or a bare CR end a line. */
static const char *
dkim_line(const char *p, const char *end, const char **next)
{
	const char *q = p;

	while (q < end && *q != '\r' && *q != '\n')
		q++;
	if (q < end && *q == '\r' && q + 1 < end && q[1] == '\n')
		*next = q + 2;
	else
		*next = q < end ? q + 1 : q;
	return q;
}

static int
dkim_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* Relaxed canonicalization of one header field (raw bytes, continuation
 * lines included) into out: "name:value" CRLF (RFC 6376 3.4.2). */
static void
dkim_canon_header(struct dkim_buf *out, const char *f, size_t n)
{
	const char *e = f + n, *colon = memchr(f, ':', n), *p;
	int space = 0, any = 0;

	if (colon == NULL)
		return;
	for (p = f; p < colon; p++)
		if (!dkim_wsp(*p) && *p != '\r' && *p != '\n') {
			char c = *p >= 'A' && *p <= 'Z' ? *p + 32 : *p;
			dkim_add(out, &c, 1);
		}
	dkim_add(out, ":", 1);
	for (p = colon + 1; p < e; p++) {
		if (*p == '\r' || *p == '\n')
			continue;   /* unfolded */
		if (dkim_wsp(*p)) {
			space = 1;
			continue;
		}
		if (space && any)
			dkim_add(out, " ", 1);
		space = 0;
		any = 1;
		dkim_add(out, p, 1);
	}
	dkim_add(out, "\r\n", 2);
}

/* The body hash, relaxed (RFC 6376 3.4.4): runs of WSP become one SP,
 * WSP at a line's end goes, and so do the empty lines at the end. */
static int
dkim_body_hash(const char *p, const char *end, unsigned char md[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned mdlen = 0;
	size_t empty = 0;
	char *line = NULL;
	size_t cap = 0;
	int ok;

	ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
	while (ok && p < end) {
		const char *next, *le = dkim_line(p, end, &next);
		size_t o = 0;
		int space = 0;

		if ((size_t)(le - p) + 3 > cap) {
			cap = (size_t)(le - p) + 3;
			line = xrealloc(line, cap);
		}
		for (const char *q = p; q < le; q++) {
			if (dkim_wsp(*q)) {
				space = 1;
				continue;
			}
			if (space)
				line[o++] = ' ';
			space = 0;
			line[o++] = *q;
		}
		p = next;
		if (o == 0) {
			empty++;
			continue;
		}
		for (; ok && empty > 0; empty--)
			ok = EVP_DigestUpdate(ctx, "\r\n", 2) == 1;
		line[o++] = '\r';
		line[o++] = '\n';
		ok = ok && EVP_DigestUpdate(ctx, line, o) == 1;
	}
	ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32;
	free(line);
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

static char *
dkim_base64(const unsigned char *data, size_t n)
{
	char *out = xmalloc(4 * ((n + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, data, (int)n);
	return out;
}

struct dkim_field {
	const char *p;
	size_t n;
};

/* The header's fields, up to the empty line (or the end); max + 1 when
 * there are more than max. */
static size_t
dkim_fields(const char *msg, const char *end, struct dkim_field *f, size_t max,
	    const char **body_r)
{
	const char *p = msg;
	size_t n = 0;

	while (p < end) {
		const char *next, *le = dkim_line(p, end, &next);

		if (le == p) {   /* the empty line */
			p = next;
			break;
		}
		if (dkim_wsp(*p) && n > 0) {
			f[n - 1].n = (size_t)(le - f[n - 1].p);   /* continued */
		} else if (n == max) {
			return max + 1;   /* more fields than we look at */
		} else {
			f[n].p = p;
			f[n].n = (size_t)(le - p);
			n++;
		}
		p = next;
	}
	*body_r = p;
	return n;
}

static int
dkim_is(const struct dkim_field *f, const char *name)
{
	size_t l = strlen(name), i = l;

	if (f->n < l || strncasecmp(f->p, name, l) != 0)
		return 0;
	while (i < f->n && dkim_wsp(f->p[i]))
		i++;
	return i < f->n && f->p[i] == ':';
}

char *
dkim_header_field(const char *msg, size_t len, const char *name)
{
	struct dkim_field *f = xcalloc(DKIM_MAX_FIELDS, sizeof(*f));
	const char *body;
	size_t nf = dkim_fields(msg, msg + len, f, DKIM_MAX_FIELDS, &body);
	char *value = NULL;

	for (size_t i = 0; i < nf && i < DKIM_MAX_FIELDS && value == NULL; i++) {
		const char *colon;
		size_t o = 0;

		if (!dkim_is(&f[i], name))
			continue;
		colon = memchr(f[i].p, ':', f[i].n);
		value = xmalloc(f[i].n);
		for (const char *p = colon + 1; p < f[i].p + f[i].n; p++)
			if (*p != '\r' && *p != '\n')
				value[o++] = *p;
		value[o] = '\0';
	}
	free(f);
	return value;
}

static int
dkim_sign_data(EVP_PKEY *key, const char *data, size_t n, unsigned char **sig_r,
	       size_t *siglen_r)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[32], *sig = NULL;
	int ed = EVP_PKEY_id(key) == EVP_PKEY_ED25519, ok;
	size_t len = 0;

	if (ctx == NULL)
		return -1;
	/* Ed25519 signs the SHA-256 of the data (RFC 8463 3) */
	if (ed)
		ok = EVP_Digest(data, n, md, NULL, EVP_sha256(), NULL) == 1 &&
		     EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
		     EVP_DigestSign(ctx, NULL, &len, md, sizeof(md)) == 1 &&
		     (sig = xmalloc(len)) != NULL &&
		     EVP_DigestSign(ctx, sig, &len, md, sizeof(md)) == 1;
	else
		ok = EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
		     EVP_DigestSign(ctx, NULL, &len, (const unsigned char *)data, n) == 1 &&
		     (sig = xmalloc(len)) != NULL &&
		     EVP_DigestSign(ctx, sig, &len, (const unsigned char *)data, n) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok) {
		free(sig);
		return -1;
	}
	*sig_r = sig;
	*siglen_r = len;
	return 0;
}

char *
dkim_sign(EVP_PKEY *key, const char *domain, const char *selector, const char *msg,
	  size_t len, long long now, const char **error_r)
{
	const char *end = msg + len, *body;
	struct dkim_field *f = xcalloc(DKIM_MAX_FIELDS, sizeof(*f));
	struct dkim_buf hdr = { 0 }, data = { 0 }, hlist = { 0 };
	unsigned char bh[32], *sig = NULL;
	size_t nf, siglen = 0, col;
	char *b64 = NULL, tmp[64];
	int ed = EVP_PKEY_id(key) == EVP_PKEY_ED25519;

	*error_r = NULL;
	/* a verifier picks repeated fields from the bottom up: a header this
	 * long is not signed rather than signed from its first part */
	if ((nf = dkim_fields(msg, end, f, DKIM_MAX_FIELDS, &body)) > DKIM_MAX_FIELDS) {
		*error_r = "too many header fields";
		goto out;
	}
	if (dkim_body_hash(body, end, bh) != 0) {
		*error_r = "cannot hash the body";
		goto out;
	}
	/* h=: each field name as often as it occurs, instances from the
	 * bottom up (RFC 6376 5.4.2); oversigned names once more */
	for (size_t h = 0; h < sizeof(dkim_headers) / sizeof(dkim_headers[0]); h++) {
		int count = 0;

		for (size_t i = nf; i-- > 0;) {
			if (!dkim_is(&f[i], dkim_headers[h]))
				continue;
			dkim_canon_header(&data, f[i].p, f[i].n);
			count++;
		}
		if (h < DKIM_OVERSIGNED)
			count++;
		for (int k = 0; k < count; k++) {
			if (hlist.len > 0)
				dkim_add(&hlist, ":", 1);
			dkim_adds(&hlist, dkim_headers[h]);
		}
	}
	b64 = dkim_base64(bh, sizeof(bh));
	dkim_adds(&hdr, "DKIM-Signature: v=1; a=");
	dkim_adds(&hdr, ed ? "ed25519-sha256" : "rsa-sha256");
	dkim_adds(&hdr, "; c=relaxed/relaxed; d=");
	dkim_adds(&hdr, domain);
	dkim_adds(&hdr, "; s=");
	dkim_adds(&hdr, selector);
	snprintf(tmp, sizeof(tmp), ";\r\n\tt=%lld; h=", now);
	dkim_adds(&hdr, tmp);
	/* the name list folded at its colons, lines under 78 bytes */
	col = 8 + 3;
	for (const char *p = hlist.p; p && *p;) {
		size_t w = strcspn(p, ":");

		if (col + w + 1 > 76) {
			dkim_adds(&hdr, "\r\n\t ");
			col = 9;
		}
		dkim_add(&hdr, p, w);
		col += w;
		p += w;
		if (*p == ':') {
			dkim_add(&hdr, ":", 1);
			col++;
			p++;
		}
	}
	dkim_adds(&hdr, ";\r\n\tbh=");
	dkim_adds(&hdr, b64);
	dkim_adds(&hdr, ";\r\n\tb=");
	/* the signature covers this field with b= empty, canonicalized and
	 * without its CRLF */
	dkim_canon_header(&data, hdr.p, hdr.len);
	data.len -= 2;
	if (dkim_sign_data(key, data.p, data.len, &sig, &siglen) != 0) {
		*error_r = "the key cannot sign";
		goto out;
	}
	free(b64);
	b64 = dkim_base64(sig, siglen);
	for (const char *p = b64; *p;) {
		size_t w = strlen(p) < 66 ? strlen(p) : 66;

		if (p != b64)
			dkim_adds(&hdr, "\r\n\t  ");
		dkim_add(&hdr, p, w);
		p += w;
	}
	dkim_adds(&hdr, "\r\n");
out:
	free(b64);
	free(sig);
	free(f);
	free(data.p);
	free(hlist.p);
	if (*error_r != NULL) {
		free(hdr.p);
		return NULL;
	}
	return hdr.p;
}

EVP_PKEY *
dkim_key_generate(const char *type)
{
	if (strcmp(type, "ed25519") == 0)
		return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (strcmp(type, "rsa") == 0)
		return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	return NULL;
}

EVP_PKEY *
dkim_key_read(const char *path)
{
	FILE *fp = fopen(path, "re");
	EVP_PKEY *k;

	if (fp == NULL)
		return NULL;
	k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	if (k == NULL)
		errno = EINVAL;
	return k;
}

int
dkim_key_write(EVP_PKEY *key, const char *path)
{
	BIO *b = BIO_new(BIO_s_mem());
	struct stat sb;
	char *pem;
	long n;
	int rc = -1;

	if (b == NULL)
		return -1;
	if (lstat(path, &sb) == 0) {
		errno = EEXIST;
	} else if (!PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)) {
		errno = EINVAL;
	} else if ((n = BIO_get_mem_data(b, &pem)) > 0) {
		rc = durable_write_file(path, pem, (size_t)n, 0600);
	}
	BIO_free(b);
	return rc;
}

char *
dkim_dns_record(EVP_PKEY *key, const char *selector, const char *domain)
{
	int ed = EVP_PKEY_id(key) == EVP_PKEY_ED25519;
	struct dkim_buf out = { 0 };
	unsigned char *der = NULL, raw[32];
	size_t rawlen = sizeof(raw);
	char *p64, *p;
	int n;

	if (ed) {
		if (EVP_PKEY_get_raw_public_key(key, raw, &rawlen) != 1)
			return NULL;
		p64 = dkim_base64(raw, rawlen);
	} else {
		if ((n = i2d_PUBKEY(key, &der)) <= 0)
			return NULL;
		p64 = dkim_base64(der, (size_t)n);
		OPENSSL_free(der);
	}
	dkim_adds(&out, selector);
	dkim_adds(&out, "._domainkey.");
	dkim_adds(&out, domain);
	dkim_adds(&out, ". IN TXT \"v=DKIM1; k=");
	dkim_adds(&out, ed ? "ed25519" : "rsa");
	dkim_adds(&out, "; \" \"p=");
	/* character-strings of at most 255 bytes: "p=" and 253 of the key,
	 * then 255 at a time */
	p = p64;
	for (size_t room = 253; *p; room = 255) {
		size_t w = strlen(p) < room ? strlen(p) : room;

		if (p != p64)
			dkim_adds(&out, "\" \"");
		dkim_add(&out, p, w);
		p += w;
	}
	dkim_adds(&out, "\"");
	free(p64);
	return out.p;
}
