/*
 * test_sasl: PLAIN and LOGIN byte for byte: the challenges sent, the
 * identities gathered, SASL-IR, strict base64, the limits, NULs, a
 * differing authorization identity, and that nothing is accepted after the
 * exchange is over.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "auth/sasl.h"
#include "guard.h"

/* base64 of len bytes of s (may hold NULs), in a static buffer. */
static const char *
b64(const char *s, size_t len)
{
	static char out[4096];

	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)len);
	return out;
}

static enum sasl_status
step(struct sasl *s, const char *in, const char **chal)
{
	const char *err = NULL;
	enum sasl_status st = sasl_step(s, in, chal, &err);

	if (st == SASL_FAIL)
		assert_non_null(err);
	return st;
}

static void
test_mechs(void **state)
{
	struct sasl *s;

	assert_true(sasl_mech_known("PLAIN"));
	assert_true(sasl_mech_known("plain"));
	assert_true(sasl_mech_known("Login"));
	assert_false(sasl_mech_known("CRAM-MD5"));
	assert_false(sasl_mech_known("PLAINX"));
	assert_false(sasl_mech_known(""));
	assert_string_equal(sasl_mech_list(), "PLAIN LOGIN");
	assert_null(sasl_new("SCRAM-SHA-256"));
	s = sasl_new("plain");
	assert_non_null(s);
	sasl_free(&s);
	assert_null(s);
	sasl_free(&s);
}

static void
test_plain_initial_response(void **state)
{
	struct sasl *s = sasl_new("PLAIN");
	const char *chal;

	/* "\0alice@example.test\0secret" */
	assert_int_equal(step(s, "AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=", &chal), SASL_DONE);
	assert_string_equal(sasl_user(s), "alice@example.test");
	assert_string_equal(sasl_password(s), "secret");
	assert_int_equal(step(s, "AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=", &chal), SASL_FAIL);
	sasl_free(&s);
}

static void
test_plain_challenge(void **state)
{
	struct sasl *s = sasl_new("PLAIN");
	const char *chal, *msg = "alice@example.test\0alice@example.test\0pa ss";

	assert_int_equal(step(s, NULL, &chal), SASL_CONTINUE);
	assert_string_equal(chal, "");
	assert_null(sasl_user(s));
	assert_int_equal(step(s, b64(msg, 43), &chal), SASL_DONE);
	assert_string_equal(sasl_user(s), "alice@example.test");
	assert_string_equal(sasl_password(s), "pa ss");
	sasl_free(&s);

	/* an authzid equal to the login but for ASCII case is the login */
	s = sasl_new("PLAIN");
	assert_int_equal(step(s, b64("Alice@example.test\0alice@example.test\0pw", 40), &chal),
			 SASL_DONE);
	assert_string_equal(sasl_user(s), "alice@example.test");
	sasl_free(&s);
}

static void
expect_plain_fail(const char *msg, size_t len)
{
	struct sasl *s = sasl_new("PLAIN");
	const char *chal;

	assert_int_equal(step(s, b64(msg, len), &chal), SASL_FAIL);
	assert_null(sasl_user(s));
	assert_null(sasl_password(s));
	sasl_free(&s);
}

static void
test_plain_bad(void **state)
{
	expect_plain_fail("bob@x\0alice@x\0pw", 16);	/* proxy login */
	expect_plain_fail("alice@x\0pw", 10);		/* one NUL */
	expect_plain_fail("alice@x", 7);		/* none */
	expect_plain_fail("\0alice@x\0pw\0", 12);	/* three */
	expect_plain_fail("\0alice@x\0p\0w", 12);	/* NUL inside the password */
	expect_plain_fail("\0\0pw", 4);			/* empty user */
	expect_plain_fail("\0alice@x\0", 9);		/* empty password */
	expect_plain_fail("", 0);
}

static void
test_plain_sasl_ir_empty(void **state)
{
	struct sasl *s = sasl_new("PLAIN");
	const char *chal;

	/* "=" is an empty initial response: for PLAIN a malformed message */
	assert_int_equal(step(s, "=", &chal), SASL_FAIL);
	sasl_free(&s);
	/* after a challenge, "=" is just bad base64 */
	s = sasl_new("PLAIN");
	assert_int_equal(step(s, NULL, &chal), SASL_CONTINUE);
	assert_int_equal(step(s, "=", &chal), SASL_FAIL);
	sasl_free(&s);
}

static void
test_login(void **state)
{
	struct sasl *s = sasl_new("LOGIN");
	const char *chal;

	assert_int_equal(step(s, NULL, &chal), SASL_CONTINUE);
	assert_string_equal(chal, "VXNlcm5hbWU6");
	assert_int_equal(step(s, "YWxpY2VAZXhhbXBsZS50ZXN0", &chal), SASL_CONTINUE);
	assert_string_equal(chal, "UGFzc3dvcmQ6");
	assert_null(sasl_user(s));
	assert_int_equal(step(s, "c2VjcmV0", &chal), SASL_DONE);
	assert_string_equal(sasl_user(s), "alice@example.test");
	assert_string_equal(sasl_password(s), "secret");
	assert_int_equal(step(s, "c2VjcmV0", &chal), SASL_FAIL);
	sasl_free(&s);

	/* an initial response is the user name */
	s = sasl_new("login");
	assert_int_equal(step(s, "YWxpY2VAZXhhbXBsZS50ZXN0", &chal), SASL_CONTINUE);
	assert_string_equal(chal, "UGFzc3dvcmQ6");
	assert_int_equal(step(s, b64("p\xc3\xa4ss", 5), &chal), SASL_DONE);
	assert_string_equal(sasl_password(s), "p\xc3\xa4ss");
	sasl_free(&s);
}

static void
test_login_bad(void **state)
{
	struct sasl *s = sasl_new("LOGIN");
	const char *chal;

	assert_int_equal(step(s, "=", &chal), SASL_FAIL);	/* empty user */
	sasl_free(&s);
	s = sasl_new("LOGIN");
	assert_int_equal(step(s, b64("al\0ce", 5), &chal), SASL_FAIL);
	sasl_free(&s);
	s = sasl_new("LOGIN");
	assert_int_equal(step(s, "YWxpY2U=", &chal), SASL_CONTINUE);
	assert_int_equal(step(s, b64("pw\0x", 4), &chal), SASL_FAIL);
	assert_null(sasl_user(s));
	assert_null(sasl_password(s));
	sasl_free(&s);
	s = sasl_new("LOGIN");
	assert_int_equal(step(s, "YWxpY2U=", &chal), SASL_CONTINUE);
	assert_int_equal(step(s, "", &chal), SASL_FAIL);	/* empty password */
	sasl_free(&s);
	s = sasl_new("LOGIN");
	assert_int_equal(step(s, NULL, &chal), SASL_CONTINUE);
	assert_int_equal(step(s, NULL, &chal), SASL_FAIL);	/* no answer at all */
	sasl_free(&s);
}

static void
expect_b64_fail(const char *in)
{
	struct sasl *s = sasl_new("LOGIN");
	const char *chal;

	assert_int_equal(step(s, NULL, &chal), SASL_CONTINUE);
	assert_int_equal(step(s, in, &chal), SASL_FAIL);
	sasl_free(&s);
}

static void
expect_b64_user(const char *in, const char *user)
{
	struct sasl *s = sasl_new("LOGIN");
	const char *chal;

	assert_int_equal(step(s, in, &chal), SASL_CONTINUE);
	assert_int_equal(step(s, "cHc=", &chal), SASL_DONE);
	assert_string_equal(sasl_user(s), user);
	sasl_free(&s);
}

static void
test_base64_strict(void **state)
{
	expect_b64_user("YQ==", "a");
	expect_b64_user("YWI=", "ab");
	expect_b64_user("YWJj", "abc");
	expect_b64_user("Pz8/", "???");
	expect_b64_user("Pj4+", ">>>");
	expect_b64_fail("YQ");		/* padding missing */
	expect_b64_fail("YQ=");
	expect_b64_fail("YQ===");
	expect_b64_fail("Y===");
	expect_b64_fail("====");
	expect_b64_fail("YR==");	/* stray bits under the padding */
	expect_b64_fail("YWJ=");
	expect_b64_fail("YW=j");	/* padding inside */
	expect_b64_fail("YWJj YWJj");
	expect_b64_fail("YWJj\r\n");
	expect_b64_fail("YW\x01j");
	expect_b64_fail("YWJj-_==");	/* base64url is another alphabet */
	expect_b64_fail("*");
}

static void
test_limits(void **state)
{
	char data[1100], enc[2000];
	struct sasl *s;
	const char *chal;

	memset(data, 'a', sizeof(data));
	data[0] = '\0';
	data[1] = 'u';
	data[2] = '\0';
	/* 1024 decoded bytes pass */
	EVP_EncodeBlock((unsigned char *)enc, (unsigned char *)data, 1024);
	s = sasl_new("PLAIN");
	assert_int_equal(step(s, enc, &chal), SASL_DONE);
	assert_int_equal(strlen(sasl_password(s)), 1021);
	sasl_free(&s);
	/* 1025 do not, whether the encoding is just over or far over */
	EVP_EncodeBlock((unsigned char *)enc, (unsigned char *)data, 1025);
	s = sasl_new("PLAIN");
	assert_int_equal(step(s, enc, &chal), SASL_FAIL);
	sasl_free(&s);
	EVP_EncodeBlock((unsigned char *)enc, (unsigned char *)data, 1026);
	s = sasl_new("PLAIN");
	assert_int_equal(step(s, enc, &chal), SASL_FAIL);
	sasl_free(&s);
	EVP_EncodeBlock((unsigned char *)enc, (unsigned char *)data, 1100);
	s = sasl_new("PLAIN");
	assert_int_equal(step(s, enc, &chal), SASL_FAIL);
	sasl_free(&s);
}

/* Each input ends at an inaccessible page: no read past its NUL. */
static void
test_no_overread(void **state)
{
	static const char *const in[] = {
		"AGFsaWNlAHB3", "AGFsaWNlAHB3=", "YQ==", "YR==", "YWJ", "Y", "=", "", "AAAA", "AA==",
	};
	const char *chal, *err;

	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		for (int m = 0; m < 2; m++) {
			struct sasl *s = sasl_new(m ? "LOGIN" : "PLAIN");
			struct guard g;

			guard_init_nul(&g, in[i], strlen(in[i]));
			sasl_step(s, g.p, &chal, &err);
			sasl_step(s, g.p, &chal, &err);
			guard_free(&g);
			sasl_free(&s);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mechs),
		cmocka_unit_test(test_plain_initial_response),
		cmocka_unit_test(test_plain_challenge),
		cmocka_unit_test(test_plain_bad),
		cmocka_unit_test(test_plain_sasl_ir_empty),
		cmocka_unit_test(test_login),
		cmocka_unit_test(test_login_bad),
		cmocka_unit_test(test_base64_strict),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_no_overread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
