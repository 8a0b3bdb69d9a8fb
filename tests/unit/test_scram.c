/*
 * test_scram: SCRAM-SHA-256 on the server side (src/auth/scram.h) against
 * the exchange of RFC 7677 section 3 (user "user", password "pencil"),
 * then a wrong password, a forged nonce, a changed gs2 header, channel
 * binding asked for, an unknown user (the stand-in secret runs the
 * exchange to a failed proof), malformed messages and turns out of order.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "auth/scram.h"

static const unsigned char fake_key[SCRAM_FAKE_KEY_LEN] = "0123456789abcdef0123456789abcde";

/* dir_scram's format for password with the RFC's salt. */
static void
secret_of(const char *password, char *out, size_t len)
{
	unsigned char salt[32], salted[32], ck[32], stored[32], sk[32];
	char bs[64], bk[64];
	unsigned int l;
	int n = EVP_DecodeBlock(salt, (const unsigned char *)"W22ZaJ0SNY7soEsUEjb6gQ==", 24) - 2;

	assert_int_equal(PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, n, 4096,
					   EVP_sha256(), 32, salted), 1);
	HMAC(EVP_sha256(), salted, 32, (const unsigned char *)"Client Key", 10, ck, &l);
	HMAC(EVP_sha256(), salted, 32, (const unsigned char *)"Server Key", 10, sk, &l);
	SHA256(ck, 32, stored);
	EVP_EncodeBlock((unsigned char *)bs, stored, 32);
	EVP_EncodeBlock((unsigned char *)bk, sk, 32);
	snprintf(out, len, "SCRAM-SHA-256:4096:W22ZaJ0SNY7soEsUEjb6gQ==:%s:%s", bs, bk);
}

static const char *
b64(const char *s)
{
	static char buf[4][1024];
	static int k;
	char *b = buf[k++ % 4];

	EVP_EncodeBlock((unsigned char *)b, (const unsigned char *)s, (int)strlen(s));
	return b;
}

static const char *
unb64(const char *s)
{
	static unsigned char buf[1024];
	int n = EVP_DecodeBlock(buf, (const unsigned char *)s, (int)strlen(s));
	size_t len = strlen(s);

	assert_true(n >= 0);
	n -= len >= 1 && s[len - 1] == '=' ? (len >= 2 && s[len - 2] == '=' ? 2 : 1) : 0;
	buf[n] = '\0';
	return (const char *)buf;
}

#define CLIENT_FIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define SERVER_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define FULL_NONCE "rOprNGfwEbeRWgbNEkqO" SERVER_NONCE
#define CLIENT_FINAL "c=biws,r=" FULL_NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="

/* Up to server-first with the RFC's nonce and the secret of password. */
static struct scram *
started(const char *client_first, const char *password)
{
	struct scram *s = scram_new();
	const char *ch, *err;
	char secret[300];

	assert_int_equal(scram_client_first(s, b64(client_first), &err), SCRAM_NEED_SECRET);
	assert_string_equal(scram_user(s), "user");
	scram_set_server_nonce(s, SERVER_NONCE);
	if (password != NULL)
		secret_of(password, secret, sizeof(secret));
	assert_int_equal(scram_server_first(s, password ? secret : NULL, fake_key, &ch, &err),
			 SCRAM_CONTINUE);
	if (password != NULL)
		assert_string_equal(unb64(ch), "r=" FULL_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
	return s;
}

static void
test_rfc7677_exchange(void **state)
{
	struct scram *s = started(CLIENT_FIRST, "pencil");
	const char *ch, *err;

	(void)state;
	assert_int_equal(scram_client_final(s, b64(CLIENT_FINAL), &ch, &err), SCRAM_OK);
	assert_string_equal(unb64(ch), "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
	/* nothing more is taken */
	assert_int_equal(scram_client_final(s, b64(CLIENT_FINAL), &ch, &err), SCRAM_FAIL);
	scram_free(&s);
	assert_null(s);
}

static void
test_wrong_password_and_unknown_user(void **state)
{
	struct scram *s = started(CLIENT_FIRST, "not pencil");
	const char *ch, *err;

	(void)state;
	assert_int_equal(scram_client_final(s, b64(CLIENT_FINAL), &ch, &err), SCRAM_BAD_PROOF);
	assert_string_equal(ch, "");
	scram_free(&s);
	/* no secret: the stand-in answers like a real one and the proof fails */
	s = started(CLIENT_FIRST, NULL);
	assert_int_equal(scram_client_final(s, b64(CLIENT_FINAL), &ch, &err), SCRAM_BAD_PROOF);
	scram_free(&s);
}

static void
test_forgeries(void **state)
{
	const char *ch, *err;
	struct scram *s;

	(void)state;
	/* a nonce that is not the one we gave */
	s = started(CLIENT_FIRST, "pencil");
	assert_int_equal(scram_client_final(s, b64("c=biws,r=rOprNGfwEbeRWgbNEkqOforged,p="
					       "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
					   &ch, &err), SCRAM_FAIL);
	assert_non_null(strstr(err, "nonce"));
	scram_free(&s);
	/* c= must be the gs2 header of client-first ("y,," is eSws) */
	s = started(CLIENT_FIRST, "pencil");
	assert_int_equal(scram_client_final(s, b64("c=eSws,r=" FULL_NONCE ",p="
					       "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
					   &ch, &err), SCRAM_FAIL);
	scram_free(&s);
	/* a proof that is not base64 of 32 bytes, or none */
	s = started(CLIENT_FIRST, "pencil");
	assert_int_equal(scram_client_final(s, b64("c=biws,r=" FULL_NONCE ",p=AAAA"), &ch, &err),
			 SCRAM_FAIL);
	scram_free(&s);
	s = started(CLIENT_FIRST, "pencil");
	assert_int_equal(scram_client_final(s, b64("c=biws,r=" FULL_NONCE), &ch, &err), SCRAM_FAIL);
	scram_free(&s);
}

static void
test_client_first_refused(void **state)
{
	static const char *const bad[] = {
		"p=tls-exporter,,n=user,r=abc",     /* channel binding: not offered */
		"n,a=admin,n=user,r=abc",           /* another authorization identity */
		"x,,n=user,r=abc",
		"n,,r=abc",
		"n,,n=,r=abc",
		"n,,n=us=er,r=abc",                 /* '=' only as =2C or =3D */
		"n,,n=user,r=",
		"n,,n=user,r=a,b",                  /* ',' ends the nonce: then extensions */
		"n,,n=user",
	};
	const char *ch, *err;
	struct scram *s;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s = scram_new();
		if (strcmp(bad[i], "n,,n=user,r=a,b") == 0) {
			/* an extension after the nonce is allowed; the nonce is "a" */
			assert_int_equal(scram_client_first(s, b64(bad[i]), &err), SCRAM_NEED_SECRET);
		} else {
			assert_int_equal(scram_client_first(s, b64(bad[i]), &err), SCRAM_FAIL);
			assert_non_null(err);
		}
		scram_free(&s);
	}
	/* not base64; out of turn */
	s = scram_new();
	assert_int_equal(scram_client_first(s, "!!!!", &err), SCRAM_FAIL);
	scram_free(&s);
	s = scram_new();
	assert_int_equal(scram_client_final(s, b64(CLIENT_FINAL), &ch, &err), SCRAM_FAIL);
	scram_free(&s);
	/* =2C and =3D in the user name */
	s = scram_new();
	assert_int_equal(scram_client_first(s, b64("n,,n=a=2Cb=3Dc@example.test,r=abc"), &err),
			 SCRAM_NEED_SECRET);
	assert_string_equal(scram_user(s), "a,b=c@example.test");
	scram_free(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc7677_exchange),
		cmocka_unit_test(test_wrong_password_and_unknown_user),
		cmocka_unit_test(test_forgeries),
		cmocka_unit_test(test_client_first_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
