/*
 * test_imap_utf7: modified UTF-7 folder names (src/imap/imap_utf7.h): the
 * RFC 3501 example, surrogate pairs, the strict decoder's refusals (every
 * name has one spelling) and round trips both ways.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_utf7.h"

/* utf7 decodes to utf8 and utf8 encodes to utf7. */
static void
check_pair(const char *utf7, const char *utf8)
{
	char *out;

	assert_int_equal(imap_utf7_to_utf8(utf7, &out), 0);
	assert_string_equal(out, utf8);
	free(out);
	assert_int_equal(imap_utf8_to_utf7(utf8, &out), 0);
	assert_string_equal(out, utf7);
	free(out);
}

static void
test_pairs(void **state)
{
	(void)state;
	check_pair("", "");
	check_pair("INBOX", "INBOX");
	check_pair("~peter/mail/&U,BTFw-/&ZeVnLIqe-",
		   "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e");
	check_pair("&-", "&");
	check_pair("Tom &- Jerry", "Tom & Jerry");
	check_pair("&-&AOQ-&-", "&\xc3\xa4&");
	check_pair("Entw&APw-rfe", "Entw\xc3\xbc" "rfe");
	check_pair("&AOQA9gD8-", "\xc3\xa4\xc3\xb6\xc3\xbc");
	/* U+1F600 and U+1F4E7: surrogate pairs */
	check_pair("&2D3eAA-", "\xf0\x9f\x98\x80");
	check_pair("Mail &2D3c59g93gA-!", "Mail \xf0\x9f\x93\xa7\xf0\x9f\x98\x80!");
	/* a control character is encoded too */
	check_pair("a&AAk-b", "a\tb");
	/* ',' stands for '/' in base64: U+FFFF */
	check_pair("&,,8-", "\xef\xbf\xbf");
}

static void
test_decode_refused(void **state)
{
	static const char *const bad[] = {
		"&AGE-",          /* 'a' encoded */
		"&ACY-",          /* '&' encoded instead of "&-" */
		"&AOQ",           /* no '-' */
		"&",              /* nothing after the shift */
		"&AOQ-&APY-",     /* two runs back to back: the encoder makes one */
		"&AOR-",          /* spare bits not zero */
		"&AOQA-",         /* a base64 digit too many */
		"&AO-",           /* not a whole unit */
		"&2D0-",          /* a lone high surrogate */
		"&3gA-",          /* a lone low surrogate */
		"&2D3YPQ-",       /* high then high */
		"&AOQ/-",         /* '/' is not the modified base64 */
		"&AOQ=-",         /* no padding */
		"&AAA-",          /* U+0000 */
		"\xc3\xa4",       /* 8-bit */
		"a\tb",           /* a control character unencoded */
		"&&-",
	};
	char *out = (char *)1;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (imap_utf7_to_utf8(bad[i], &out) == 0)
			fail_msg("\"%s\" accepted as \"%s\"", bad[i], out);
		assert_null(out);
	}
}

static void
test_encode_refused(void **state)
{
	static const char *const bad[] = {
		"\xff", "\xc3", "a\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
		"\xe0\x80\x80", "\x80",
	};
	char *out = (char *)1;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(imap_utf8_to_utf7(bad[i], &out), -1);
		assert_null(out);
	}
}

/* Every code point from a sample round-trips, alone and between others. */
static void
test_roundtrip(void **state)
{
	static const uint32_t cps[] = { 0x01, 0x1f, 0x7f, 0x80, 0xff, 0x100, 0x7ff, 0x800,
					0xd7ff, 0xe000, 0xfffd, 0x10000, 0x10ffff };
	char utf8[64], *u7, *back;

	(void)state;
	for (size_t i = 0; i < sizeof(cps) / sizeof(cps[0]); i++) {
		for (size_t j = 0; j < sizeof(cps) / sizeof(cps[0]); j++) {
			uint32_t v[2] = { cps[i], cps[j] };
			size_t n = 0;

			for (int k = 0; k < 2; k++) {
				uint32_t c = v[k];

				utf8[n++] = 'x';
				if (c < 0x80) {
					utf8[n++] = (char)c;
				} else if (c < 0x800) {
					utf8[n++] = (char)(0xc0 | (c >> 6));
					utf8[n++] = (char)(0x80 | (c & 0x3f));
				} else if (c < 0x10000) {
					utf8[n++] = (char)(0xe0 | (c >> 12));
					utf8[n++] = (char)(0x80 | ((c >> 6) & 0x3f));
					utf8[n++] = (char)(0x80 | (c & 0x3f));
				} else {
					utf8[n++] = (char)(0xf0 | (c >> 18));
					utf8[n++] = (char)(0x80 | ((c >> 12) & 0x3f));
					utf8[n++] = (char)(0x80 | ((c >> 6) & 0x3f));
					utf8[n++] = (char)(0x80 | (c & 0x3f));
				}
			}
			utf8[n] = '\0';
			assert_int_equal(imap_utf8_to_utf7(utf8, &u7), 0);
			for (const char *p = u7; *p; p++)
				assert_true(*p >= 0x20 && *p <= 0x7e);
			assert_int_equal(imap_utf7_to_utf8(u7, &back), 0);
			assert_string_equal(back, utf8);
			free(u7);
			free(back);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pairs),
		cmocka_unit_test(test_decode_refused),
		cmocka_unit_test(test_encode_refused),
		cmocka_unit_test(test_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
