/*
 * fuzz_sasl: libFuzzer harness for the SASL server side (src/auth/sasl.h).
 * The first byte picks the mechanism (bit 0: LOGIN, else PLAIN) and
 * whether the exchange starts without an initial response (bit 1); the
 * rest is the client's lines, split at '\n'. Whatever comes in: no crash,
 * a challenge on every SASL_CONTINUE, an error on every SASL_FAIL, nothing
 * accepted once the exchange is over, and on SASL_DONE a non-empty user
 * and password that are exactly what the accepted lines encode, in their
 * one canonical base64 spelling.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "auth/sasl.h"

#define CHECK(c) do { \
	if (!(c)) { \
		fprintf(stderr, "fuzz_sasl: check failed: %s (line %d)\n", #c, __LINE__); \
		abort(); \
	} \
} while (0)

/* The canonical base64 of len bytes; the caller frees. */
static char *
enc(const unsigned char *p, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, p, (int)len);
	return out;
}

static void
check_done(int login, const char *user, const char *pw, char **lines, int nlines)
{
	size_t ul = strlen(user), pl = strlen(pw);
	char *e;

	CHECK(ul > 0 && pl > 0);
	CHECK(ul <= 1024 && pl <= 1024);
	if (login) {
		CHECK(nlines >= 2);
		e = enc((const unsigned char *)user, ul);
		CHECK(strcmp(e, lines[nlines - 2]) == 0);
		free(e);
		e = enc((const unsigned char *)pw, pl);
		CHECK(strcmp(e, lines[nlines - 1]) == 0);
		free(e);
	} else {
		/* the message is [authzid] NUL user NUL password */
		const char *line = lines[nlines - 1];
		size_t ll = strlen(line), tail = ul + pl + 2, n, pad = 0;
		unsigned char *msg = malloc(ll / 4 * 3 + 1);
		int dn = EVP_DecodeBlock(msg, (const unsigned char *)line, (int)ll);

		CHECK(dn >= 0);
		while (pad < 2 && pad < ll && line[ll - 1 - pad] == '=')
			pad++;
		n = (size_t)dn - pad;
		CHECK(n >= tail);
		CHECK(msg[n - tail] == '\0');
		CHECK(memcmp(msg + n - tail + 1, user, ul) == 0);
		CHECK(msg[n - pl - 1] == '\0');
		CHECK(memcmp(msg + n - pl, pw, pl) == 0);
		e = enc(msg, n);
		CHECK(strcmp(e, lines[nlines - 1]) == 0);
		free(e);
		free(msg);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf, *lines[64];
	int nlines = 0, login, over = 0, fed = 0;
	struct sasl *s;
	size_t i, start;

	if (size < 1 || size > 8192)
		return 0;
	login = data[0] & 1;
	buf = malloc(size);
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	for (start = 0, i = 0; i < size - 1 && nlines < 64; i++) {
		if (buf[i] == '\n') {
			buf[i] = '\0';
			lines[nlines++] = buf + start;
			start = i + 1;
		}
	}
	if (nlines < 64 && start <= size - 1)
		lines[nlines++] = buf + start;
	s = sasl_new(login ? "LOGIN" : "plain");
	CHECK(s != NULL);
	CHECK(sasl_user(s) == NULL && sasl_password(s) == NULL);
	for (int k = -1; k < nlines; k++) {
		const char *in, *chal = NULL, *err = NULL;
		enum sasl_status st;

		if (k == -1 && !(data[0] & 2))
			continue;
		in = k == -1 ? NULL : lines[k];
		st = sasl_step(s, in, &chal, &err);
		if (over) {
			CHECK(st == SASL_FAIL);
			continue;
		}
		if (in != NULL)
			fed++;
		switch (st) {
		case SASL_CONTINUE:
			CHECK(chal != NULL);
			CHECK(sasl_user(s) == NULL);
			break;
		case SASL_FAIL:
			CHECK(err != NULL);
			CHECK(sasl_user(s) == NULL && sasl_password(s) == NULL);
			over = 1;
			break;
		case SASL_DONE:
			CHECK(sasl_user(s) != NULL && sasl_password(s) != NULL);
			check_done(login, sasl_user(s), sasl_password(s), lines, k + 1);
			over = 1;
			break;
		}
	}
	sasl_free(&s);
	CHECK(s == NULL);
	free(buf);
	return 0;
}
