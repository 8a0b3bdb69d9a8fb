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

/* The client's proof for auth_msg with password and the RFC's salt. */
static void
client_proof(const char *password, const char *auth_msg, char *out)
{
	unsigned char salt[32], salted[32], ck[32], stored[32], sig[32], proof[32];
	unsigned int l;
	int n = EVP_DecodeBlock(salt, (const unsigned char *)"W22ZaJ0SNY7soEsUEjb6gQ==", 24) - 2;

	PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, n, 4096, EVP_sha256(), 32, salted);
	HMAC(EVP_sha256(), salted, 32, (const unsigned char *)"Client Key", 10, ck, &l);
	SHA256(ck, 32, stored);
	HMAC(EVP_sha256(), stored, 32, (const unsigned char *)auth_msg, strlen(auth_msg), sig, &l);
	for (int i = 0; i < 32; i++)
		proof[i] = ck[i] ^ sig[i];
	EVP_EncodeBlock((unsigned char *)out, proof, 32);
}

/* -PLUS: tls-exporter and tls-server-end-point bound into c=; the
 * binding must be the session's; "y" while -PLUS is offered is a
 * downgrade; each flag only with its mechanism. */
static void
test_channel_binding(void **state)
{
	static const unsigned char exporter[32] = "exporter-bytes-of-this-session.";
	static const unsigned char end_point[32] = "sha256-of-the-server-certific.";
	const char *types[] = { "tls-exporter", "tls-server-end-point" };
	const unsigned char *data[] = { exporter, end_point };
	char secret[300], first[200], cbraw[100], cb[200], wo[400], msg[1200], proof[64], fin[500];
	const char *ch, *err;
	struct scram *s;

	(void)state;
	secret_of("pencil", secret, sizeof(secret));
	for (int t = 0; t < 2; t++) {
		for (int good = 1; good >= 0; good--) {
			size_t gl;

			s = scram_new();
			scram_set_tls(s, 1, 1, exporter, 32, end_point, 32);
			snprintf(first, sizeof(first), "p=%s,,n=user,r=rOprNGfwEbeRWgbNEkqO", types[t]);
			assert_int_equal(scram_client_first(s, b64(first), &err), SCRAM_NEED_SECRET);
			scram_set_server_nonce(s, SERVER_NONCE);
			assert_int_equal(scram_server_first(s, secret, fake_key, &ch, &err), SCRAM_CONTINUE);
			gl = (size_t)snprintf(cbraw, sizeof(cbraw), "p=%s,,", types[t]);
			memcpy(cbraw + gl, good ? data[t] : data[1 - t], 32);
			EVP_EncodeBlock((unsigned char *)cb, (unsigned char *)cbraw, (int)gl + 32);
			snprintf(wo, sizeof(wo), "c=%s,r=%s", cb, FULL_NONCE);
			snprintf(msg, sizeof(msg), "%s,r=%s,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,%s",
				 first + gl, FULL_NONCE, wo);
			client_proof("pencil", msg, proof);
			snprintf(fin, sizeof(fin), "%s,p=%s", wo, proof);
			assert_int_equal(scram_client_final(s, b64(fin), &ch, &err),
					 good ? SCRAM_OK : SCRAM_FAIL);
			scram_free(&s);
		}
	}
	/* a downgrade, a flag for the other mechanism, a type we lack */
	s = scram_new();
	scram_set_tls(s, 0, 1, exporter, 32, end_point, 32);
	assert_int_equal(scram_client_first(s, b64("y,,n=user,r=abc"), &err), SCRAM_FAIL);
	scram_free(&s);
	s = scram_new();
	scram_set_tls(s, 0, 0, NULL, 0, NULL, 0);
	assert_int_equal(scram_client_first(s, b64("y,,n=user,r=abc"), &err), SCRAM_NEED_SECRET);
	scram_free(&s);
	s = scram_new();
	scram_set_tls(s, 1, 1, exporter, 32, end_point, 32);
	assert_int_equal(scram_client_first(s, b64("n,,n=user,r=abc"), &err), SCRAM_FAIL);
	scram_free(&s);
	s = scram_new();
	scram_set_tls(s, 1, 1, NULL, 0, end_point, 32);      /* TLS 1.2: no exporter */
	assert_int_equal(scram_client_first(s, b64("p=tls-exporter,,n=user,r=abc"), &err),
			 SCRAM_FAIL);
	scram_free(&s);
	s = scram_new();
	scram_set_tls(s, 1, 1, exporter, 32, end_point, 32);
	assert_int_equal(scram_client_first(s, b64("p=tls-unique,,n=user,r=abc"), &err), SCRAM_FAIL);
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
		cmocka_unit_test(test_channel_binding),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
