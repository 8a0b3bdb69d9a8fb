/*
 * fuzz_dkim: libFuzzer harness for dkim_sign (src/mail/dkim.h). The
 * input is the message. A signature must come back (unless the header
 * has over 1,000 fields, which is said): printable
 * ASCII lines (tabs and spaces allowed) of at most 78 bytes, each ended
 * by CRLF, the continuation lines folded with a tab; and the same message
 * with empty and blank lines added at its end must get the same body
 * hash. The input buffer is exactly its length, so a read past it is an
 * ASan error.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/dkim.h"

#define CHECK(c) do { \
	if (!(c)) { \
		fprintf(stderr, "fuzz_dkim: check failed: %s (line %d)\n", #c, __LINE__); \
		abort(); \
	} \
} while (0)

static EVP_PKEY *key;

static const char *
bh_of(const char *sig)
{
	const char *p = strstr(sig, "bh=");

	CHECK(p != NULL);
	return p + 3;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *err;
	char *sig, *sig2, *more;

	if (key == NULL)
		key = dkim_key_generate("ed25519");
	CHECK(key != NULL);
	sig = dkim_sign(key, "example.com", "s1", (const char *)data, size, 1, &err);
	if (sig == NULL) {   /* only a header of over 1,000 fields is not signed */
		CHECK(err != NULL && strcmp(err, "too many header fields") == 0);
		return 0;
	}
	CHECK(strncmp(sig, "DKIM-Signature: ", 16) == 0);
	for (const char *p = sig; *p;) {
		const char *e = strstr(p, "\r\n");

		CHECK(e != NULL && e - p <= 78);
		for (const char *q = p; q < e; q++)
			CHECK((*q >= 0x20 && *q < 0x7f) || *q == '\t');
		p = e + 2;
		CHECK(*p == '\0' || *p == '\t');
	}
	/* trailing empty lines are not part of the body hash; a message with
	 * no line end at all gets an empty line first (its header ends) */
	more = malloc(size + 12);
	memcpy(more, data, size);
	memcpy(more + size, "\r\n \t\r\n\n\r\n", 9);
	sig2 = dkim_sign(key, "example.com", "s1", more, size + 9, 1, &err);
	CHECK(sig2 != NULL);
	if (size > 0 && memmem(data, size, "\n\n", 2) != NULL && data[size - 1] == '\n')
		CHECK(strncmp(bh_of(sig), bh_of(sig2), 44) == 0);
	free(more);
	free(sig);
	free(sig2);
	return 0;
}
