/*
 * test_dkim: DKIM signatures (src/mail/dkim.c) checked by an independent
 * verifier, dkimpy (tests/unit/dkim_verify.py), on a corpus: 8-bit
 * bodies, long and folded headers, an empty body, LF and bare-CR input,
 * repeated fields; RSA and Ed25519 keys. A changed field, an added From
 * and a changed body must fail. The body hash is compared with the
 * relaxed canonical form of RFC 6376 3.4.5's example, the zone line's
 * strings with the 255-byte limit, the key file with its mode.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mail/dkim.h"

static char dir[64];

/* The message as the SMTP client sends it: every line end CRLF. */
static char *
crlf(const char *m, size_t *len_r)
{
	size_t n = strlen(m), o = 0;
	char *out = malloc(2 * n + 3);

	for (size_t i = 0; i < n; i++) {
		if (m[i] == '\r' && i + 1 < n && m[i + 1] == '\n')
			continue;
		if (m[i] == '\r' || m[i] == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
		} else {
			out[o++] = m[i];
		}
	}
	if (o > 0 && out[o - 1] != '\n') {   /* the client ends the last line */
		out[o++] = '\r';
		out[o++] = '\n';
	}
	out[o] = '\0';
	*len_r = o;
	return out;
}

/* Sign m with key, hand the result to dkimpy: its exit status. edit, if
 * not NULL, changes the signed message before the check. */
static int
verify(EVP_PKEY *key, const char *m, void (*edit)(char **msg))
{
	char mp[128], zp[128], cmd[400];
	const char *err;
	size_t len;
	char *sent = crlf(m, &len), *sig, *zone, *all;
	FILE *f;
	int rc;

	sig = dkim_sign(key, "example.com", "sel1", m, strlen(m), 1764547200LL, &err);
	assert_non_null(sig);
	zone = dkim_dns_record(key, "sel1", "example.com");
	assert_non_null(zone);
	all = malloc(strlen(sig) + len + 1);
	strcpy(all, sig);
	strcat(all, sent);
	if (edit)
		edit(&all);
	snprintf(mp, sizeof(mp), "%s/msg", dir);
	snprintf(zp, sizeof(zp), "%s/zone", dir);
	assert_non_null(f = fopen(mp, "wb"));
	fwrite(all, 1, strlen(all), f);
	fclose(f);
	assert_non_null(f = fopen(zp, "w"));
	fputs(zone, f);
	fclose(f);
	/* Debian's python3-dkim is the system python's */
	snprintf(cmd, sizeof(cmd),
		 "py=/usr/bin/python3; [ -x $py ] || py=python3; $py tests/unit/dkim_verify.py %s %s",
		 mp, zp);
	rc = system(cmd);
	free(sent);
	free(sig);
	free(zone);
	free(all);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static const char *const corpus[] = {
	"From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: hi\r\n"
	"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n\r\nHello\r\n",
	/* LF only, an 8-bit body, whitespace to canonicalize */
	"From: alice@example.com\nTo:   bob@example.org  \nSubject:\tcaf\xc3\xa9  \t au lait\n"
	"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
	"Gr\xc3\xbc\xc3\x9f""e  \t aus   K\xc3\xb6ln \n\n  \n\n",
	/* long folded headers, repeated To */
	"From: \"Doe, John\" <john@example.com>\r\n"
	"To: a@example.org,\r\n b@example.org,\r\n\tc@example.org\r\n"
	"To: d@example.org\r\n"
	"Subject: a very long subject line that goes on and on and on, well past where\r\n"
	" a mail client would fold it, and then goes on some more for good measure\r\n"
	"References: <a@x> <b@x> <c@x> <d@x> <e@x> <f@x> <g@x> <h@x> <i@x> <j@x>\r\n"
	"  <k@x> <l@x>\r\n"
	"X-Unsigned: not in the list\r\n\r\nbody\r\n",
	/* an empty body, with and without the empty line */
	"From: alice@example.com\r\nSubject: empty\r\n\r\n",
	"From: alice@example.com\r\nSubject: no body at all\r\n",
	/* bare CR line ends, a body without a final line end */
	"From: alice@example.com\rSubject: cr\r\rone\rtwo",
};

static void
run_corpus(const char *type)
{
	EVP_PKEY *k = dkim_key_generate(type);

	assert_non_null(k);
	for (size_t i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++) {
		print_message("%s corpus %zu\n", type, i);
		assert_int_equal(verify(k, corpus[i], NULL), 0);
	}
	EVP_PKEY_free(k);
}

static void
test_rsa_corpus(void **state)
{
	run_corpus("rsa");
}

static void
test_ed25519_corpus(void **state)
{
	run_corpus("ed25519");
}

static void
edit_subject(char **m)
{
	char *p = strstr(*m, "Subject: hi");

	p[9] = 'H';
}

/* text put into *m at offset at */
static void
insert(char **m, size_t at, const char *text)
{
	char *n = malloc(strlen(*m) + strlen(text) + 1);

	memcpy(n, *m, at);
	strcpy(n + at, text);
	strcat(n, *m + at);
	free(*m);
	*m = n;
}

static void
add_from(char **m)
{
	insert(m, (size_t)(strstr(*m, "From: Alice") - *m), "From: mallory@example.net\r\n");
}

static void
edit_body(char **m)
{
	char *p = strstr(*m, "Hello");

	p[0] = 'J';
}

static void
add_trailing_lines(char **m)
{
	insert(m, strlen(*m), "\r\n  \r\n\r\n");
}

/* Each change must break the signature; trailing empty lines must not. */
static void
test_changes_fail(void **state)
{
	static const char *const types[] = { "rsa", "ed25519" };

	for (int i = 0; i < 2; i++) {
		EVP_PKEY *k = dkim_key_generate(types[i]);

		assert_int_equal(verify(k, corpus[0], NULL), 0);
		assert_int_equal(verify(k, corpus[0], edit_subject), 1);
		assert_int_equal(verify(k, corpus[0], add_from), 1);
		assert_int_equal(verify(k, corpus[0], edit_body), 1);
		assert_int_equal(verify(k, corpus[0], add_trailing_lines), 0);
		EVP_PKEY_free(k);
	}
}

static void
test_header_tags(void **state)
{
	EVP_PKEY *k = dkim_key_generate("rsa");
	const char *err;
	char *sig = dkim_sign(k, "example.com", "s", corpus[2], strlen(corpus[2]), 7, &err);
	char *h, *flat = malloc(strlen(sig) + 1);
	size_t o = 0;

	assert_non_null(sig);
	for (const char *p = sig; *p; p++)
		if (*p != '\r' && *p != '\n' && *p != '\t' && *p != ' ')
			flat[o++] = *p;
	flat[o] = '\0';
	assert_non_null(strstr(flat, "a=rsa-sha256;c=relaxed/relaxed;d=example.com;s=s;t=7;"));
	/* To twice and once more; From, Cc, Date, Message-ID once more than
	 * they occur (Cc, Date, Message-ID: not at all) */
	h = strstr(flat, "h=");
	assert_non_null(h);
	assert_memory_equal(h, "h=from:from:to:to:to:cc:subject:subject:date:message-id:"
			       "references;", strlen("h=from:from:to:to:to:cc:subject:subject:date:"
						     "message-id:references;"));
	/* no line over 78 bytes */
	for (char *p = sig, *e; (e = strstr(p, "\r\n")) != NULL; p = e + 2)
		assert_true(e - p <= 78);
	free(flat);
	free(sig);
	EVP_PKEY_free(k);
}

/* RFC 6376 3.4.5: the body " C \r\nD \t E\r\n\r\n\r\n" is " C\r\nD E\r\n". */
static void
test_body_hash(void **state)
{
	static const char msg[] = "A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n C \r\nD \t E\r\n\r\n\r\n";
	EVP_PKEY *k = dkim_key_generate("ed25519");
	unsigned char md[32];
	char want[64], *sig, *flat;
	const char *err;
	size_t o = 0;

	EVP_Digest(" C\r\nD E\r\n", 9, md, NULL, EVP_sha256(), NULL);
	EVP_EncodeBlock((unsigned char *)want, md, 32);
	sig = dkim_sign(k, "example.com", "s", msg, strlen(msg), 1, &err);
	assert_non_null(sig);
	flat = malloc(strlen(sig) + 1);
	for (const char *p = sig; *p; p++)
		if (*p != '\r' && *p != '\n' && *p != '\t' && *p != ' ')
			flat[o++] = *p;
	flat[o] = '\0';
	assert_non_null(strstr(flat, want));
	assert_non_null(strstr(flat, "a=ed25519-sha256;"));
	/* an empty body hashes as nothing at all */
	free(sig);
	sig = dkim_sign(k, "example.com", "s", "A: X\r\n\r\n\r\n", 10, 1, &err);
	EVP_Digest("", 0, md, NULL, EVP_sha256(), NULL);
	EVP_EncodeBlock((unsigned char *)want, md, 32);
	assert_non_null(strstr(sig, want));
	free(sig);
	free(flat);
	EVP_PKEY_free(k);
}

/* The field values the signer picks its key by: the first field of that
 * name, folded lines joined, none from the body. */
static void
test_header_field(void **state)
{
	static const char m[] = "Subject: s\r\nfrom: \"Doe, J\"\r\n <j@example.com>\r\n"
				"From: second@example.org\r\n\r\nTo: in@body.example\r\n";
	char *v = dkim_header_field(m, strlen(m), "from");

	assert_non_null(v);
	assert_string_equal(v, " \"Doe, J\" <j@example.com>");
	free(v);
	assert_null(dkim_header_field(m, strlen(m), "to"));
	assert_null(dkim_header_field("", 0, "from"));
}

/* Over 1,000 header fields: not signed (a verifier would pick repeated
 * fields from the bottom, beyond what was looked at); 1,000 are. */
static void
test_huge_header(void **state)
{
	size_t cap = 1100 * 16 + 64, o = 0;
	char *m = malloc(cap), *sig;
	const char *err = NULL;
	EVP_PKEY *k = dkim_key_generate("ed25519");

	o += (size_t)snprintf(m + o, cap - o, "From: a@example.com\r\n");
	for (int i = 1; i < 1000; i++)
		o += (size_t)snprintf(m + o, cap - o, "X-F: %d\r\n", i);
	snprintf(m + o, cap - o, "\r\nbody\r\n");
	sig = dkim_sign(k, "example.com", "s", m, strlen(m), 1, &err);
	assert_non_null(sig);
	free(sig);
	snprintf(m + o, cap - o, "To: b@example.com\r\n \tcontinued\r\n\r\nbody\r\n");
	assert_null(dkim_sign(k, "example.com", "s", m, strlen(m), 1, &err));
	assert_string_equal(err, "too many header fields");
	free(m);
	EVP_PKEY_free(k);
}

static void
test_dns_record(void **state)
{
	static const char head[] = "t1._domainkey.example.com. IN TXT \"v=DKIM1; k=rsa; \" \"p=";
	EVP_PKEY *k = dkim_key_generate("rsa");
	char *z = dkim_dns_record(k, "t1", "example.com"), *p, *q;
	int strings = 0;

	assert_non_null(z);
	assert_memory_equal(z, head, strlen(head));
	for (p = strchr(z, '"'); p != NULL; p = strchr(q + 1, '"')) {
		q = strchr(p + 1, '"');
		assert_non_null(q);
		assert_true(q - p - 1 <= 255);
		strings++;
	}
	assert_true(strings >= 3);   /* a 2048-bit key takes two after "v=" */
	free(z);
	EVP_PKEY_free(k);
}

static void
test_key_file(void **state)
{
	EVP_PKEY *k = dkim_key_generate("rsa"), *r;
	char path[128];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/k.pem", dir);
	assert_int_equal(dkim_key_write(k, path), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(dkim_key_write(k, path), -1);   /* never over a key */
	assert_non_null(r = dkim_key_read(path));
	assert_int_equal(EVP_PKEY_eq(k, r), 1);
	assert_null(dkim_key_read("/nonexistent/k.pem"));
	EVP_PKEY_free(r);
	EVP_PKEY_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rsa_corpus),
		cmocka_unit_test(test_ed25519_corpus),
		cmocka_unit_test(test_changes_fail),
		cmocka_unit_test(test_header_tags),
		cmocka_unit_test(test_body_hash),
		cmocka_unit_test(test_header_field),
		cmocka_unit_test(test_huge_header),
		cmocka_unit_test(test_dns_record),
		cmocka_unit_test(test_key_file),
	};
	int rc;
	char cmd[96];

	strcpy(dir, "/tmp/tandem-test-dkim-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		rc = 1;
	return rc;
}
