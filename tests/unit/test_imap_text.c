/*
 * test_imap_text: the IMAP server's stateless text helpers
 * (src/imap/imap_text.h): bare LF to CRLF with exact lengths, header
 * fields through continuation lines, RFC 3501 date-times, and LIST
 * patterns. Inputs end at a guard page, so a read past the end faults.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guard.h"
#include "imap/imap_text.h"

static void
crlf_is(const char *in, const char *want)
{
	struct guard g;
	size_t len;
	char *out;

	guard_init(&g, in, strlen(in));
	out = imap_crlf(g.p, strlen(in), &len);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(out, want, len);
	assert_int_equal(out[len], '\0');
	free(out);
	guard_free(&g);
}

static void
test_crlf(void **state)
{
	crlf_is("", "");
	crlf_is("a", "a");
	crlf_is("\n", "\r\n");
	crlf_is("a\nb\n", "a\r\nb\r\n");
	crlf_is("a\r\nb\n", "a\r\nb\r\n");       /* CRLF already: left alone */
	crlf_is("\n\n\r\n", "\r\n\r\n\r\n");
	crlf_is("x\r", "x\r");                    /* a lone CR is not a line end */
}

struct fields {
	char s[1000];
	size_t n;
	int stop_at;
	int seen;
};

static int
field_cb(const char *name, size_t nlen, const char *field, size_t flen, void *arg)
{
	struct fields *f = arg;

	f->n += (size_t)snprintf(f->s + f->n, sizeof(f->s) - f->n, "[%.*s|%.*s]", (int)nlen, name,
				 (int)flen, field);
	return ++f->seen == f->stop_at ? 7 : 0;
}

static void
fields_is(const char *h, int stop_at, const char *want, int want_rc)
{
	struct fields f = { "", 0, stop_at, 0 };
	struct guard g;

	guard_init(&g, h, strlen(h));
	assert_int_equal(imap_header_each(g.p, strlen(h), field_cb, &f), want_rc);
	assert_string_equal(f.s, want);
	guard_free(&g);
}

static void
test_header_each(void **state)
{
	fields_is("", 0, "", 0);
	fields_is("A: 1\r\nB: 2\r\n\r\nbody: no\r\n", 0, "[A|A: 1\r\n][B|B: 2\r\n]", 0);
	fields_is("Subject: a\n b\n\tc\nX: y\n\n", 0, "[Subject|Subject: a\n b\n\tc\n][X|X: y\n]", 0);
	fields_is("A: 1\nB: 2\n", 1, "[A|A: 1\n]", 7);
	fields_is("no colon here\nA: 1\n", 0, "[A|A: 1\n]", 0);
	fields_is("A: no end", 0, "[A|A: no end]", 0);
	fields_is("A : spaced\n", 0, "[A |A : spaced\n]", 0);
}

static void
test_date(void **state)
{
	long long t;
	int tz;

	assert_int_equal(imap_date_parse("17-Jul-1996 02:44:25 -0700", &t, &tz), 0);
	assert_int_equal(tz, -420);
	assert_int_equal(t, 837596665);
	assert_int_equal(imap_date_parse(" 1-Jan-2020 00:00:00 +0000", &t, &tz), 0);
	assert_int_equal(t, 1577836800);
	assert_int_equal(tz, 0);
	assert_int_equal(imap_date_parse("01-jan-2020 00:00:00 +0130", &t, &tz), 0);
	assert_int_equal(tz, 90);
	assert_int_equal(t, 1577836800 - 90 * 60);
	assert_int_equal(imap_date_parse("32-Jan-2020 00:00:00 +0000", &t, &tz), -1);
	assert_int_equal(imap_date_parse("01-Foo-2020 00:00:00 +0000", &t, &tz), -1);
	assert_int_equal(imap_date_parse("01-Jan-2020 24:00:00 +0000", &t, &tz), -1);
	assert_int_equal(imap_date_parse("01-Jan-2020 00:00:00 0000", &t, &tz), -1);
	assert_int_equal(imap_date_parse("01-Jan-2020 00:00:00 +0000 x", &t, &tz), -1);
	assert_int_equal(imap_date_parse("01-Jan-2020 00:00:00 +0960", &t, &tz), -1);
	assert_int_equal(imap_date_parse("", &t, &tz), -1);
}

static void
test_match(void **state)
{
	assert_true(imap_text_match("*", "a/b/c"));
	assert_true(imap_text_match("%", "INBOX"));
	assert_false(imap_text_match("%", "a/b"));
	assert_true(imap_text_match("a/%", "a/b"));
	assert_false(imap_text_match("a/%", "a/b/c"));
	assert_true(imap_text_match("a/*", "a/b/c"));
	assert_true(imap_text_match("*c", "a/b/c"));
	assert_true(imap_text_match("INBOX", "INBOX"));
	assert_false(imap_text_match("INBOX", "INBOX/x"));
	assert_false(imap_text_match("", "x"));
	assert_true(imap_text_match("", ""));
	assert_true(imap_text_match("%/%", "a/b"));
	assert_false(imap_text_match("%/%", "a"));
	assert_true(imap_text_match("Caf\xc3\xa9", "Caf\xc3\xa9"));
	assert_false(imap_text_match("caf\xc3\xa9", "Caf\xc3\xa9"));   /* names are case-sensitive */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crlf),
		cmocka_unit_test(test_header_each),
		cmocka_unit_test(test_date),
		cmocka_unit_test(test_match),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
