/*
 * test_addr: unit tests for addr_parse_path and friends (src/mail/addr.h).
 * Every input is also parsed from buffers that end exactly at a guard
 * page, first whole and then one prefix at a time (STYLE.md rule 9): a
 * prefix shorter than the path must never parse, a longer one must give
 * the same address, and no read may go past the given length.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mail/addr.h"

#include "guard.h"

static enum addr_err
parse_guarded(const char *s, size_t len, int allow_null, int utf8, char *addr, size_t *used)
{
	struct guard g;
	enum addr_err e;

	guard_init(&g, s, len);
	e = addr_parse_path(g.p, len, allow_null, utf8, addr, used);
	guard_free(&g);
	return e;
}

/* Parse s[0..len) whole, then every prefix, and check they agree. */
static enum addr_err
parse_n(const char *s, size_t len, int allow_null, int utf8, char *addr_r, size_t *used_r)
{
	char addr[ADDR_MAX], paddr[ADDR_MAX];
	size_t used = 0, pused;
	enum addr_err e, pe;

	memset(addr, 'X', sizeof(addr));
	e = parse_guarded(s, len, allow_null, utf8, addr, &used);
	if (e == ADDR_OK) {
		assert_true(used >= 2 && used <= len);
		assert_int_equal(s[used - 1], '>');
		assert_true(strlen(addr) < ADDR_MAX);
	} else {
		assert_string_equal(addr, "");
	}
	for (size_t k = 0; k < len; k++) {
		pused = 0;
		pe = parse_guarded(s, k, allow_null, utf8, paddr, &pused);
		if (e == ADDR_OK && k >= used) {
			assert_int_equal(pe, ADDR_OK);
			assert_int_equal(pused, used);
			assert_string_equal(paddr, addr);
		} else {
			assert_int_not_equal(pe, ADDR_OK);
		}
	}
	if (addr_r != NULL)
		memcpy(addr_r, addr, ADDR_MAX);
	if (used_r != NULL)
		*used_r = used;
	return e;
}

static enum addr_err
parse(const char *s, int allow_null, int utf8, char *addr_r, size_t *used_r)
{
	return parse_n(s, strlen(s), allow_null, utf8, addr_r, used_r);
}

static void
expect_ok(const char *s, int allow_null, int utf8, const char *want)
{
	char addr[ADDR_MAX];
	size_t used;

	if (parse(s, allow_null, utf8, addr, &used) != ADDR_OK)
		fail_msg("expected %s to parse", s);
	assert_string_equal(addr, want);
	assert_int_equal(used, strlen(s));
}

static void
expect_err(const char *s, enum addr_err want)
{
	enum addr_err e = parse(s, 1, 1, NULL, NULL);

	if (e != want)
		fail_msg("%s: got %d (%s), want %d (%s)", s, e, addr_error_str(e), want,
			 addr_error_str(want));
}

static void
expect_not_ok(const char *s, int utf8)
{
	if (parse(s, 1, utf8, NULL, NULL) == ADDR_OK)
		fail_msg("expected %s to be refused", s);
}

/* s made of n copies of c (n < size). */
static char *
fill(char *buf, size_t size, char c, size_t n)
{
	assert_true(n < size);
	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

/* A syntactically valid domain of exactly n octets: labels of at most 63
 * octets (a dot after every 62 letters), never ending on a dot. */
static char *
make_domain(char *buf, size_t size, size_t n)
{
	assert_true(n < size && n >= 1);
	for (size_t i = 0; i < n; i++)
		buf[i] = (i + 1) % 63 == 0 && i != n - 1 ? '.' : (char)('a' + i % 26);
	buf[n] = '\0';
	return buf;
}

static void
test_valid_paths(void **state)
{
	(void)state;
	expect_ok("<user@example.com>", 0, 0, "user@example.com");
	expect_ok("<a@b>", 0, 0, "a@b");
	expect_ok("<first.last@sub.example.org>", 0, 0, "first.last@sub.example.org");
	expect_ok("<a+tag@example.com>", 0, 0, "a+tag@example.com");
	expect_ok("<!#$%&'*+-/=?^_`{|}~@example.com>", 0, 0, "!#$%&'*+-/=?^_`{|}~@example.com");
	expect_ok("<x@a-b.c-d.example>", 0, 0, "x@a-b.c-d.example");
	expect_ok("<x@123.example>", 0, 0, "x@123.example");
}

static void
test_case(void **state)
{
	(void)state;
	/* the domain is folded, the local part is not (RFC 5321 2.4) */
	expect_ok("<John.Doe@Example.COM>", 0, 0, "John.Doe@example.com");
	expect_ok("<UPPER@UPPER>", 0, 0, "UPPER@upper");
}

static void
test_used_stops_at_bracket(void **state)
{
	char addr[ADDR_MAX];
	size_t used;

	(void)state;
	assert_int_equal(parse("<a@b.c> SIZE=100 BODY=8BITMIME", 0, 0, addr, &used), ADDR_OK);
	assert_string_equal(addr, "a@b.c");
	assert_int_equal(used, 7);
	assert_int_equal(parse("<>junk", 1, 0, addr, &used), ADDR_OK);
	assert_int_equal(used, 2);
}

static void
test_null_path(void **state)
{
	char addr[ADDR_MAX];
	size_t used = 0;

	(void)state;
	assert_int_equal(parse("<>", 1, 0, addr, &used), ADDR_OK);
	assert_string_equal(addr, "");
	assert_int_equal(used, 2);
	assert_int_equal(parse("<>", 0, 0, addr, &used), ADDR_ENULL);
	assert_int_equal(parse("<>", 0, 1, addr, &used), ADDR_ENULL);
	assert_int_equal(parse("< >", 1, 0, NULL, NULL), ADDR_ESYNTAX);
}

static void
test_quoted_local(void **state)
{
	(void)state;
	expect_ok("<\"john doe\"@example.com>", 0, 0, "\"john doe\"@example.com");
	expect_ok("<\"a\\\"b\"@x.org>", 0, 0, "\"a\\\"b\"@x.org");
	expect_ok("<\"a\\\\b\"@x.org>", 0, 0, "\"a\\\\b\"@x.org");
	expect_ok("<\"a>b\"@X.org>", 0, 0, "\"a>b\"@x.org");
	expect_ok("<\"@\"@x.org>", 0, 0, "\"@\"@x.org");
	expect_err("<\"abc@x.org>", ADDR_ESYNTAX);
	expect_err("<\"a\"b@x.org>", ADDR_ESYNTAX);
	expect_err("<\"a\rb\"@x.org>", ADDR_ESYNTAX);
	expect_err("<\"a\nb\"@x.org>", ADDR_ESYNTAX);
	expect_err("<\"a\\\rb\"@x.org>", ADDR_ESYNTAX);
	expect_err("<\"a\x7f\"@x.org>", ADDR_ESYNTAX);
	expect_err("<\"\\\"@x.org>", ADDR_ESYNTAX);
}

static void
test_source_route(void **state)
{
	(void)state;
	expect_ok("<@relay.example:user@example.com>", 0, 0, "user@example.com");
	expect_ok("<@relay.example,@r2.example:user@Example.com>", 0, 0, "user@example.com");
	expect_not_ok("<@relay.example>", 1);
	expect_not_ok("<@relay.example:>", 1);
	expect_not_ok("<@relay.example:@x>", 1);
}

/* The route ends exactly at the end of the buffer: nothing may be read
 * beyond it (the buffer ends at a guard page, so an over-read faults). */
static void
test_source_route_at_end_of_buffer(void **state)
{
	char addr[ADDR_MAX];
	size_t used;

	(void)state;
	assert_int_not_equal(parse_guarded("<@a:", 4, 1, 1, addr, &used), ADDR_OK);
	assert_int_not_equal(parse_guarded("<@relay.example,@r2:", 20, 1, 1, addr, &used),
			     ADDR_OK);
}

static void
test_address_literal(void **state)
{
	char addr[ADDR_MAX];

	(void)state;
	expect_ok("<user@[192.0.2.1]>", 0, 0, "user@[192.0.2.1]");
	assert_int_equal(parse("<user@[IPv6:2001:db8::1]>", 0, 0, addr, NULL), ADDR_OK);
	assert_true(strcasecmp(addr, "user@[IPv6:2001:db8::1]") == 0);
	assert_string_equal(addr_domain(addr), "[ipv6:2001:db8::1]");
	expect_err("<user@[]>", ADDR_EDOMAIN);
	expect_err("<user@[192.0.2.1>", ADDR_EDOMAIN);
	expect_err("<user@192.0.2.1]>", ADDR_EDOMAIN);
	expect_err("<user@[192.0.2.1]x>", ADDR_EDOMAIN);
	expect_err("<user@[192.0.[2].1]>", ADDR_EDOMAIN);
	expect_not_ok("<user@[192.0.2.1 ]>", 1);
	expect_not_ok("<user@[192.0.2.1\r\n]>", 1);
}

/* addr.c: "address literal: [digits and dots] or [IPv6:...]". A bare word
 * in brackets is neither (RFC 5321 4.1.3). */
static void
test_address_literal_not_a_literal(void **state)
{
	(void)state;
	expect_err("<user@[example]>", ADDR_EDOMAIN);
}

static void
test_local_length(void **state)
{
	char local[80], in[200], want[200];

	(void)state;
	fill(local, sizeof(local), 'l', 64);
	snprintf(in, sizeof(in), "<%s@example.com>", local);
	snprintf(want, sizeof(want), "%s@example.com", local);
	expect_ok(in, 0, 0, want);
	fill(local, sizeof(local), 'l', 65);
	snprintf(in, sizeof(in), "<%s@example.com>", local);
	expect_err(in, ADDR_ELOCAL_LONG);
	/* quotes count toward the 64 octets */
	fill(local, sizeof(local), 'q', 62);
	snprintf(in, sizeof(in), "<\"%s\"@example.com>", local);
	assert_int_equal(parse(in, 0, 0, NULL, NULL), ADDR_OK);
	fill(local, sizeof(local), 'q', 63);
	snprintf(in, sizeof(in), "<\"%s\"@example.com>", local);
	expect_err(in, ADDR_ELOCAL_LONG);
}

static void
test_domain_length(void **state)
{
	char dom[300], in[400];

	(void)state;
	/* 255 octets is a legal domain; only the 256-octet path limit stops it */
	make_domain(dom, sizeof(dom), 255);
	snprintf(in, sizeof(in), "<a@%s>", dom);
	expect_err(in, ADDR_EPATH_LONG);
	make_domain(dom, sizeof(dom), 256);
	snprintf(in, sizeof(in), "<a@%s>", dom);
	expect_err(in, ADDR_EDOMAIN_LONG);
	/* a label over 63 octets */
	fill(dom, sizeof(dom), 'd', 64);
	snprintf(in, sizeof(in), "<a@%s.com>", dom);
	expect_err(in, ADDR_EDOMAIN);
	fill(dom, sizeof(dom), 'd', 63);
	snprintf(in, sizeof(in), "<a@%s.com>", dom);
	assert_int_equal(parse(in, 0, 0, NULL, NULL), ADDR_OK);
}

static void
test_path_length(void **state)
{
	char local[80], dom[300], in[400], want[400];

	(void)state;
	/* "<" 64 "@" 189 ">" = 256 octets: the longest path */
	fill(local, sizeof(local), 'l', 64);
	make_domain(dom, sizeof(dom), 189);
	snprintf(in, sizeof(in), "<%s@%s>", local, dom);
	snprintf(want, sizeof(want), "%s@%s", local, dom);
	assert_int_equal(strlen(in), 256);
	expect_ok(in, 0, 0, want);
	assert_int_equal(strlen(want), ADDR_MAX - 2);
	make_domain(dom, sizeof(dom), 190);
	snprintf(in, sizeof(in), "<%s@%s>", local, dom);
	expect_err(in, ADDR_EPATH_LONG);
}

static void
test_utf8(void **state)
{
	(void)state;
	expect_ok("<j\xc3\xb6ran@ex\xc3\xa4mple.org>", 0, 1, "j\xc3\xb6ran@ex\xc3\xa4mple.org");
	expect_ok("<\xe7\x94\xa8\xe6\x88\xb7@Example.ORG>", 0, 1,
		  "\xe7\x94\xa8\xe6\x88\xb7@example.org");
	assert_int_equal(parse("<j\xc3\xb6ran@example.org>", 0, 0, NULL, NULL), ADDR_EUTF8);
	assert_int_equal(parse("<joran@ex\xc3\xa4mple.org>", 0, 0, NULL, NULL), ADDR_EUTF8);
	assert_int_equal(parse("<\"j\xc3\xb6ran\"@example.org>", 0, 0, NULL, NULL), ADDR_EUTF8);
	assert_int_equal(parse("<\"j\xc3\xb6ran\"@example.org>", 0, 1, NULL, NULL), ADDR_OK);
	assert_true(addr_is_ascii("user@example.com"));
	assert_false(addr_is_ascii("j\xc3\xb6ran@example.org"));
	assert_true(addr_is_ascii(""));
}

/* "a"@x and a@x are one mailbox: a quoted local part that needs no quotes
 * is unquoted, and one that does keeps only the escapes it needs (RFC 5321
 * 4.1.2: quoted-string and dot-string are two spellings of one local part). */
static void
test_quoted_canonical(void **state)
{
	(void)state;
	expect_ok("<\"a\"@Example.com>", 0, 0, "a@example.com");
	expect_ok("<\"Alice.Smith\"@x.org>", 0, 0, "Alice.Smith@x.org");
	expect_ok("<\"a+tag\"@x.org>", 0, 0, "a+tag@x.org");
	expect_ok("<\"!#$%&'*+-/=?^_`{|}~\"@x.org>", 0, 0, "!#$%&'*+-/=?^_`{|}~@x.org");
	expect_ok("<\"\\a\\b\"@x.org>", 0, 0, "ab@x.org");
	expect_ok("<@r.example:\"a\"@x.org>", 0, 0, "a@x.org");
	expect_ok("<\"j\xc3\xb6ran\"@x.org>", 0, 1, "j\xc3\xb6ran@x.org");
	/* still needs its quotes */
	expect_ok("<\"a b\"@x.org>", 0, 0, "\"a b\"@x.org");
	expect_ok("<\"a\\ b\"@x.org>", 0, 0, "\"a b\"@x.org");
	expect_ok("<\"a..b\"@x.org>", 0, 0, "\"a..b\"@x.org");
	expect_ok("<\".a\"@x.org>", 0, 0, "\".a\"@x.org");
	expect_ok("<\"a.\"@x.org>", 0, 0, "\"a.\"@x.org");
	expect_ok("<\"\"@x.org>", 0, 0, "\"\"@x.org");
	expect_ok("<\"a@b\"@x.org>", 0, 0, "\"a@b\"@x.org");
	expect_ok("<\"a\\\"b\"@x.org>", 0, 0, "\"a\\\"b\"@x.org");
	expect_ok("<\"a\\\\b\"@x.org>", 0, 0, "\"a\\\\b\"@x.org");
	expect_ok("<\"x> client=[6.6.6.6]\"@x.org>", 0, 0, "\"x> client=[6.6.6.6]\"@x.org");
	/* the canonical form is a fixed point */
	expect_ok("<\"a b\"@x.org>", 0, 0, "\"a b\"@x.org");
}

/* Under SMTPUTF8 only well-formed UTF-8 (RFC 3629), in the local part,
 * quoted or not, and in the domain. */
static void
test_utf8_invalid(void **state)
{
	static const char *const bad[] = {
		"<\xc0\xaf@x.org>",			/* overlong '/' */
		"<\xc1\xbf@x.org>",			/* overlong */
		"<\xe0\x80\xaf@x.org>",			/* overlong, 3 bytes */
		"<\xe0\x9f\xbf@x.org>",			/* overlong U+07FF */
		"<\xf0\x80\x80\xaf@x.org>",		/* overlong, 4 bytes */
		"<\xf0\x8f\xbf\xbf@x.org>",		/* overlong U+FFFF */
		"<\xed\xa0\x80@x.org>",			/* surrogate U+D800 */
		"<\xed\xbf\xbf@x.org>",			/* surrogate U+DFFF */
		"<\xf4\x90\x80\x80@x.org>",		/* U+110000 */
		"<\xf5\x80\x80\x80@x.org>",		/* above any */
		"<\xff@x.org>", "<\xfe@x.org>",
		"<\x80@x.org>",				/* lone continuation */
		"<a\xbf\xbf@x.org>",
		"<\xc3@x.org>",				/* truncated */
		"<\xe2\x82@x.org>",
		"<\xf0\x9f\x98@x.org>",
		"<\xc3" "A@x.org>",			/* bad continuation */
		"<\xe2" "A\xa1@x.org>",
		"<\xe2\x82" "A@x.org>",
		"<\xf0\x9f" "A\x80@x.org>",
		"<\xc3\xc3\xa4@x.org>",
		"<\"\xed\xa0\x80\"@x.org>",		/* quoted: the same rules */
		"<a@\xc0\xafx.org>",			/* in the domain */
		"<a@x\xed\xa0\x80.org>",
		"<a@x.\xf4\x90\x80\x80>",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		expect_err(bad[i], ADDR_EBADUTF8);
		/* without SMTPUTF8 any non-ASCII is refused as such */
		if (parse(bad[i], 0, 0, NULL, NULL) != ADDR_EUTF8)
			fail_msg("%zu: want ADDR_EUTF8 without SMTPUTF8", i);
	}
	/* the edges that are fine */
	expect_ok("<\xc2\x80@x.org>", 0, 1, "\xc2\x80@x.org");			/* U+0080 */
	expect_ok("<\xdf\xbf@x.org>", 0, 1, "\xdf\xbf@x.org");			/* U+07FF */
	expect_ok("<\xe0\xa0\x80@x.org>", 0, 1, "\xe0\xa0\x80@x.org");		/* U+0800 */
	expect_ok("<\xed\x9f\xbf@x.org>", 0, 1, "\xed\x9f\xbf@x.org");		/* U+D7FF */
	expect_ok("<\xee\x80\x80@x.org>", 0, 1, "\xee\x80\x80@x.org");		/* U+E000 */
	expect_ok("<\xef\xbf\xbd@x.org>", 0, 1, "\xef\xbf\xbd@x.org");		/* U+FFFD */
	expect_ok("<\xf0\x90\x80\x80@x.org>", 0, 1, "\xf0\x90\x80\x80@x.org");	/* U+10000 */
	expect_ok("<\xf4\x8f\xbf\xbf@x.org>", 0, 1, "\xf4\x8f\xbf\xbf@x.org");	/* U+10FFFF */
	expect_ok("<\xf0\x9f\x98\x80@\xc3\xa4.org>", 0, 1, "\xf0\x9f\x98\x80@\xc3\xa4.org");
}

static void
test_garbage(void **state)
{
	static const char *const bad[] = {
		"", "<", ">", "<<>>", "user@example.com", "<user@example.com",
		"user@example.com>", " <user@example.com>", "<user @example.com>",
		"<user@ example.com>", "<user@exa mple.com>", "<user@example.com >",
		"<userexample.com>", "<@example.com>", "<user@>", "<@>", "<.@x>",
		"<user@example..com>", "<user@.example.com>", "<user@example.com.>",
		"<user@-example.com>", "<user@example-.com>", "<user@example.com->",
		"<user@exa_mple.com>", "<a..b@x>", "<.a@x>", "<a.@x>", "<a@b@c>",
		"<a<b@c>", "<a@b<c>", "<a\r\n@x.org>", "<a@x.org\r\n>", "<a@x\r\n.org>",
		"<a\n@x.org>", "<a@x.org\r>", "<a(b)@x.org>", "<a,b@x.org>", "<a;b@x.org>",
		"<a:b@x.org>", "<a[b]@x.org>", "<a\\b@x.org>", "<\x01@x.org>",
		"<a@x.org\x7f>", "<a b@x>", "<\t@x>",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_not_ok(bad[i], 1);
	expect_err("<user@>", ADDR_EDOMAIN);
	expect_err("user@example.com", ADDR_ESYNTAX);
	expect_err("<userexample.com>", ADDR_ESYNTAX);
	expect_err("<user@example.com.>", ADDR_EDOMAIN);
	expect_err("<user@example-.com>", ADDR_EDOMAIN);
}

static void
test_nul_inside(void **state)
{
	(void)state;
	assert_int_not_equal(parse_n("<a@x\0y.org>", 11, 1, 1, NULL, NULL), ADDR_OK);
	assert_int_not_equal(parse_n("<a\0b@x.org>", 11, 1, 1, NULL, NULL), ADDR_OK);
	assert_int_not_equal(parse_n("<\0>", 3, 1, 1, NULL, NULL), ADDR_OK);
}

static void
test_domain_helpers(void **state)
{
	static const enum addr_err all[] = {
		ADDR_OK, ADDR_ESYNTAX, ADDR_ELOCAL_LONG, ADDR_EDOMAIN_LONG, ADDR_EPATH_LONG,
		ADDR_EDOMAIN, ADDR_EUTF8, ADDR_ENULL, ADDR_EBADUTF8,
	};

	(void)state;
	assert_string_equal(addr_domain("user@example.com"), "example.com");
	assert_string_equal(addr_domain("\"a@b\"@example.com"), "example.com");
	assert_string_equal(addr_domain(""), "");
	assert_string_equal(addr_domain("postmaster"), "");
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		const char *s = addr_error_str(all[i]);

		assert_non_null(s);
		assert_true(s[0] != '\0');
		assert_string_not_equal(s, "unknown");
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(s, addr_error_str(all[j]));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_paths),
		cmocka_unit_test(test_case),
		cmocka_unit_test(test_used_stops_at_bracket),
		cmocka_unit_test(test_null_path),
		cmocka_unit_test(test_quoted_local),
		cmocka_unit_test(test_source_route),
		cmocka_unit_test(test_source_route_at_end_of_buffer),
		cmocka_unit_test(test_address_literal),
		cmocka_unit_test(test_address_literal_not_a_literal),
		cmocka_unit_test(test_local_length),
		cmocka_unit_test(test_domain_length),
		cmocka_unit_test(test_path_length),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_quoted_canonical),
		cmocka_unit_test(test_utf8_invalid),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_nul_inside),
		cmocka_unit_test(test_domain_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
