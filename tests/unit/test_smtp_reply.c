/*
 * test_smtp_reply: the SMTP reply parser (src/smtp/smtp_reply.h). Every
 * case is fed whole, one byte at a time, and in random splits (STYLE.md
 * rule 9); all three must give the same replies and end in the same state,
 * which must be the expected one. The state is written out as text:
 * "code|esc|nlines|text;" per reply, then "err=N busy=B".
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_reply.h"

struct out {
	char s[200000];
	size_t n;
};

static void __attribute__((format(printf, 2, 3)))
out_add(struct out *o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	o->n += vsnprintf(o->s + o->n, sizeof(o->s) - o->n, fmt, ap);
	va_end(ap);
	assert_true(o->n < sizeof(o->s));
}

/* Feed in[0..len) in pieces whose sizes come from next_size. */
static void
run(const char *in, size_t len, size_t (*next_size)(size_t left, unsigned *seed), unsigned seed,
    struct out *o)
{
	struct smtp_reply_parser *p = smtp_reply_parser_new();
	size_t off = 0;
	int failed = 0;

	o->n = 0;
	o->s[0] = '\0';
	while (off < len && !failed) {
		size_t piece = next_size(len - off, &seed), done = 0;

		while (done < piece) {
			struct smtp_reply r;
			size_t used;
			int rc = smtp_reply_parser_feed(p, in + off + done, piece - done, &used, &r);

			assert_true(used <= piece - done);
			done += used;
			if (rc < 0) {
				failed = 1;
				break;
			}
			if (rc == 0) {
				assert_int_equal(done, piece);
				break;
			}
			assert_true(r.code >= 200 && r.code <= 599);
			assert_int_equal(strlen(r.text), r.textlen);
			assert_int_equal(r.multiline, r.nlines > 1);
			out_add(o, "%d|%s|%d|%s;", r.code, r.esc, r.nlines, r.text);
			smtp_reply_clear(&r);
		}
		off += piece;
	}
	out_add(o, "err=%d busy=%d", (int)smtp_reply_parser_error(p),
		smtp_reply_parser_error(p) ? 0 : smtp_reply_parser_busy(p));
	smtp_reply_parser_free(&p);
	assert_null(p);
}

static size_t
size_whole(size_t left, unsigned *seed)
{
	return left;
}

static size_t
size_byte(size_t left, unsigned *seed)
{
	return 1;
}

static size_t
size_random(size_t left, unsigned *seed)
{
	size_t n = (size_t)rand_r(seed) % 7 + 1;

	if (rand_r(seed) % 10 == 0)
		n = (size_t)rand_r(seed) % 600 + 1;
	return n < left ? n : left;
}

static void
check_len(const char *in, size_t len, const char *want)
{
	static struct out whole, other;

	run(in, len, size_whole, 0, &whole);
	if (want != NULL && strcmp(whole.s, want) != 0)
		fail_msg("input %.60s...\n got: %.300s\nwant: %.300s", in, whole.s, want);
	run(in, len, size_byte, 0, &other);
	assert_string_equal(other.s, whole.s);
	for (unsigned seed = 1; seed <= 20; seed++) {
		run(in, len, size_random, seed, &other);
		assert_string_equal(other.s, whole.s);
	}
}

static void
check(const char *in, const char *want)
{
	check_len(in, strlen(in), want);
}

static void
test_simple(void **state)
{
	check("220 mx.example.test ESMTP\r\n", "220||1|mx.example.test ESMTP;err=0 busy=0");
	check("250\r\n", "250||1|;err=0 busy=0");
	check("250 \r\n", "250||1|;err=0 busy=0");
	check("354 End data with <CR><LF>.<CR><LF>\r\n",
	      "354||1|End data with <CR><LF>.<CR><LF>;err=0 busy=0");
	check("", "err=0 busy=0");
}

static void
test_multiline(void **state)
{
	check("250-mx.example.test Hello\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n",
	      "250||4|mx.example.test Hello\nPIPELINING\nSIZE 1000\n8BITMIME;err=0 busy=0");
	check("250-\r\n250-x\r\n250\r\n", "250||3|\nx\n;err=0 busy=0");
	check("250 ok\r\n550 5.1.1 <a@b>: no such user\r\n221 2.0.0 Bye\r\n",
	      "250||1|ok;550|5.1.1|1|<a@b>: no such user;221|2.0.0|1|Bye;err=0 busy=0");
}

static void
test_enhanced(void **state)
{
	check("550-5.7.1 first\r\n550 5.7.1 second\r\n", "550|5.7.1|2|first\nsecond;err=0 busy=0");
	/* the class must match the code: otherwise it is just text */
	check("550 4.1.1 x\r\n", "550||1|4.1.1 x;err=0 busy=0");
	check("250 2.1.0\r\n", "250|2.1.0|1|;err=0 busy=0");
	check("250 2.1.0Ok\r\n", "250||1|2.1.0Ok;err=0 busy=0");
	check("451 4.999.999 long\r\n", "451|4.999.999|1|long;err=0 busy=0");
	check("451 4.1000.1 no\r\n", "451||1|4.1000.1 no;err=0 busy=0");
	check("451 4..1 no\r\n", "451||1|4..1 no;err=0 busy=0");
	/* only lines starting with the first line's status lose it */
	check("550-5.1.1 a\r\n550-5.1.2 b\r\n550 c\r\n", "550|5.1.1|3|a\n5.1.2 b\nc;err=0 busy=0");
}

static void
test_line_ends(void **state)
{
	/* a bare LF ends a line: unambiguous in a reply */
	check("250 ok\n", "250||1|ok;err=0 busy=0");
	check("250-a\n250 b\r\n", "250||2|a\nb;err=0 busy=0");
	/* a CR must be followed by LF */
	check("250 a\rb\r\n", "err=6 busy=0");
	check("250 a\r\r\n", "err=6 busy=0");
	check("250-a\r250 b\r\n", "err=6 busy=0");
	/* NUL anywhere */
	check_len("250 a\0b\r\n", 9, "err=7 busy=0");
	check_len("\0", 1, "err=7 busy=0");
	check_len("250-a\r\n25\0 b\r\n", 14, "err=7 busy=0");
}

static void
test_codes(void **state)
{
	check("25\r\n", "err=3 busy=0");
	check("\r\n", "err=3 busy=0");
	check("\n", "err=3 busy=0");
	check("abc hello\r\n", "err=3 busy=0");
	check("2x0 hello\r\n", "err=3 busy=0");
	check("150 hello\r\n", "err=3 busy=0");
	check("650 hello\r\n", "err=3 busy=0");
	check("050 hello\r\n", "err=3 busy=0");
	check("2500 hello\r\n", "err=5 busy=0");
	check("250x\r\n", "err=5 busy=0");
	check("250\thello\r\n", "err=5 busy=0");
	check("250_hello\r\n", "err=5 busy=0");
	/* a multiline reply keeps one code */
	check("250-a\r\n251 b\r\n", "err=4 busy=0");
	check("250-a\r\n350 b\r\n", "err=4 busy=0");
	check("250-a\r\n250-b\r\n205 c\r\n", "err=4 busy=0");
	check("250-a\r\nxyz b\r\n", "err=3 busy=0");
	/* the error is found where it is, before the line ends */
	check("250-a\r\n251", "err=4 busy=0");
	check("250 ok\r\n55", "250||1|ok;err=0 busy=1");
	/* replies before an error are still delivered */
	check("250 ok\r\n2", "250||1|ok;err=0 busy=1");
	check("250 ok\r\n9", "250||1|ok;err=3 busy=0");
}

static void
test_lengths(void **state)
{
	char buf[80000], want[2000];
	size_t n;

	/* 512 octets with CRLF: the longest line allowed */
	n = (size_t)snprintf(buf, sizeof(buf), "250 ");
	memset(buf + n, 'a', 506);
	memcpy(buf + n + 506, "\r\n", 3);
	assert_int_equal(strlen(buf), 512);
	snprintf(want, sizeof(want), "250||1|%.*s;err=0 busy=0", 506, buf + 4);
	check(buf, want);
	/* one more is too long, CRLF or not, and never waits for the end */
	memset(buf + n, 'a', 507);
	memcpy(buf + n + 507, "\r\n", 3);
	check(buf, "err=1 busy=0");
	buf[n + 507] = '\0';
	check(buf, "err=1 busy=0");
	memset(buf + n, 'a', 5000);
	buf[n + 5000] = '\0';
	check(buf, "err=1 busy=0");
	/* a line without an end that is not too long yet waits */
	buf[n + 100] = '\0';
	check(buf, "err=0 busy=1");
}

static void
test_line_count(void **state)
{
	static char buf[200000];
	size_t n = 0;

	for (int i = 0; i < 99; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "250-line %d\r\n", i);
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "250 last\r\n");
	check(buf, NULL);
	{
		struct out o;

		run(buf, n, size_whole, 0, &o);
		assert_non_null(strstr(o.s, "250||100|line 0\nline 1\n"));
		assert_non_null(strstr(o.s, "line 98\nlast;err=0 busy=0"));
	}
	/* the 100th line must not announce a 101st */
	n = 0;
	for (int i = 0; i < 100; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "250-line %d\r\n", i);
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "250 last\r\n");
	check(buf, "err=2 busy=0");
}

/* An error sticks; a reply is handed over once, with what remains left. */
static void
test_api(void **state)
{
	struct smtp_reply_parser *p = smtp_reply_parser_new();
	struct smtp_reply r;
	const char *in = "220 ready\r\nleftover";
	size_t used;

	assert_int_equal(smtp_reply_parser_feed(p, in, strlen(in), &used, &r), 1);
	assert_int_equal(used, 11);
	assert_int_equal(r.code, 220);
	assert_string_equal(r.text, "ready");
	assert_false(smtp_reply_parser_busy(p));
	smtp_reply_clear(&r);
	assert_int_equal(smtp_reply_parser_feed(p, "250 x\r\r", 7, &used, &r), -1);
	assert_int_equal(used, 7);
	assert_int_equal(smtp_reply_parser_error(p), SMTP_REPLY_EBARE);
	assert_int_equal(smtp_reply_parser_feed(p, "250 ok\r\n", 8, &used, &r), -1);
	assert_int_equal(used, 0);
	assert_string_equal(smtp_reply_strerror(SMTP_REPLY_ELONG), "reply line too long");
	assert_string_equal(smtp_reply_strerror((enum smtp_reply_err)99), "unknown error");
	smtp_reply_parser_free(&p);
	smtp_reply_parser_free(&p);
	/* a parser freed in the middle of a reply frees its text */
	p = smtp_reply_parser_new();
	assert_int_equal(smtp_reply_parser_feed(p, "250-a\r\n250-b", 12, &used, &r), 0);
	assert_true(smtp_reply_parser_busy(p));
	smtp_reply_parser_free(&p);
}

/* Random bytes from a small alphabet: the splits must agree. */
static void
test_random(void **state)
{
	static const char alpha[] = "0123456789 -\r\n\r\n25a.\0";
	char buf[400];
	unsigned seed = 7;

	for (int k = 0; k < 3000; k++) {
		size_t n = (size_t)rand_r(&seed) % sizeof(buf);

		for (size_t i = 0; i < n; i++)
			buf[i] = alpha[rand_r(&seed) % (sizeof(alpha) - 1)];
		if (n > 4 && rand_r(&seed) % 2) {
			memcpy(buf, "250", 3);
			buf[3] = rand_r(&seed) % 2 ? '-' : ' ';
		}
		check_len(buf, n, NULL);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple),
		cmocka_unit_test(test_multiline),
		cmocka_unit_test(test_enhanced),
		cmocka_unit_test(test_line_ends),
		cmocka_unit_test(test_codes),
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_line_count),
		cmocka_unit_test(test_api),
		cmocka_unit_test(test_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
