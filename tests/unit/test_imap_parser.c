/*
 * test_imap_parser: the IMAP command parser (src/imap/imap_parser.h).
 * Every case is fed whole, one byte at a time and in random splits
 * (STYLE.md rule 9); all must give the same transcript, which must be the
 * expected one. A transcript has a line per event: "C:tag|command|args"
 * for a command (the argument tree written out: atoms as sent, "<nil>",
 * "quoted", {len}data or {len}<stream>, (lists)), "E:tag:message" for an
 * error ('-' when no tag was read), "L:size[+]" for a literal header and
 * then "R" (rejected) or "S" (streamed) when the literal is not accepted.
 * The driver accepts literals up to max_literal_buffered; above, it
 * rejects them, or streams them (skipping the bytes itself) in stream mode.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_parser.h"

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

static void
out_bytes(struct out *o, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20)
			out_add(o, "\\x%02x", c);
		else
			out_add(o, "%c", c);
	}
}

static void
out_args(struct out *o, const struct imap_arg *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			out_add(o, " ");
		switch (a[i].type) {
		case IMAP_ARG_ATOM:
			assert_int_equal(strlen(a[i].str), a[i].len);
			out_bytes(o, a[i].str, a[i].len);
			break;
		case IMAP_ARG_NIL:
			out_add(o, "<nil>");
			break;
		case IMAP_ARG_QUOTED:
			out_add(o, "\"");
			out_bytes(o, a[i].str, a[i].len);
			out_add(o, "\"");
			break;
		case IMAP_ARG_LITERAL:
			out_add(o, "{%zu}", a[i].len);
			if (a[i].str == NULL) {
				out_add(o, "<stream>");
			} else {
				assert_int_equal(a[i].str[a[i].len], '\0');
				out_bytes(o, a[i].str, a[i].len);
			}
			break;
		case IMAP_ARG_LIST:
			out_add(o, "(");
			out_args(o, a[i].list, a[i].nlist);
			out_add(o, ")");
			break;
		}
	}
}

enum split { SPLIT_WHOLE, SPLIT_BYTE, SPLIT_RANDOM };

static size_t
next_chunk(enum split sp, unsigned *seed, size_t left)
{
	size_t n = left;

	if (sp == SPLIT_BYTE)
		n = 1;
	else if (sp == SPLIT_RANDOM)
		n = 1 + (size_t)(rand_r(seed) % 17);
	return n < left ? n : left;
}

/* Feed in[0..len) as a session would, arriving in pieces; the transcript
 * goes to o. */
static void
run(const char *in, size_t len, const struct imap_parser_limits *lim, int stream,
    enum split sp, unsigned seed, struct out *o)
{
	struct imap_parser *p = imap_parser_new(lim);
	size_t pos = 0, recv = 0;

	o->n = 0;
	o->s[0] = '\0';
	for (;;) {
		enum imap_parse r;
		size_t used, nargs;
		const struct imap_arg *args;
		const char *tag;
		uint64_t size;
		int sync;

		if (pos == recv) {
			if (recv == len)
				break;
			recv += next_chunk(sp, &seed, len - recv);
		}
		r = imap_parser_feed(p, in + pos, recv - pos, &used);
		assert_true(used <= recv - pos);
		pos += used;
		switch (r) {
		case IMAP_PARSE_MORE:
			assert_int_equal(pos, recv);
			break;
		case IMAP_PARSE_COMMAND:
			args = imap_parser_args(p, &nargs);
			out_add(o, "C:%s|%s|", imap_parser_tag(p), imap_parser_command(p));
			out_args(o, args, nargs);
			out_add(o, "\n");
			break;
		case IMAP_PARSE_ERROR:
			tag = imap_parser_tag(p);
			out_add(o, "E:%s:%s\n", tag ? tag : "-", imap_parser_error(p));
			break;
		case IMAP_PARSE_LITERAL:
			imap_parser_literal(p, &size, &sync);
			out_add(o, "L:%llu%s\n", (unsigned long long)size, sync ? "" : "+");
			if (size <= lim->max_literal_buffered) {
				imap_parser_literal_accept(p);
			} else if (stream && size <= len - pos) {
				imap_parser_literal_stream(p);
				pos += size;
				if (recv < pos)
					recv = pos;
				imap_parser_literal_streamed(p);
				out_add(o, "S\n");
			} else {
				imap_parser_literal_reject(p);
				out_add(o, "R\n");
			}
			break;
		}
	}
	imap_parser_free(&p);
	assert_null(p);
}

static const struct imap_parser_limits lim_default = { 65536, 10000, 32, 1024 * 1024 };

/* Whole, byte by byte and randomly split: the same, and as expected. */
static void
check_len(const char *in, size_t len, const struct imap_parser_limits *lim, int stream,
	  const char *expect)
{
	static struct out whole, part;

	run(in, len, lim, stream, SPLIT_WHOLE, 0, &whole);
	if (strcmp(whole.s, expect) != 0)
		fail_msg("input %.60s\ngot:\n%s\nexpected:\n%s", in, whole.s, expect);
	run(in, len, lim, stream, SPLIT_BYTE, 0, &part);
	assert_string_equal(part.s, whole.s);
	for (unsigned seed = 1; seed <= 20; seed++) {
		run(in, len, lim, stream, SPLIT_RANDOM, seed, &part);
		assert_string_equal(part.s, whole.s);
	}
}

static void
check(const char *in, const char *expect)
{
	check_len(in, strlen(in), &lim_default, 0, expect);
}

static void
check_lim(const char *in, const struct imap_parser_limits *lim, const char *expect)
{
	check_len(in, strlen(in), lim, 0, expect);
}

static void
test_valid(void **state)
{
	static const char *const cases[][2] = {
		{ "a1 LOGIN \"user\" \"pa\\\"ss\\\\\"\r\n", "C:a1|LOGIN|\"user\" \"pa\"ss\\\"\n" },
		{ "a2 LOGIN {4}\r\nuser {4+}\r\npass\r\n", "L:4\nL:4+\nC:a2|LOGIN|{4}user {4}pass\n" },
		{ "a3 SELECT INBOX\r\n", "C:a3|SELECT|INBOX\n" },
		{ "a4 FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100> UID)\r\n",
		  "C:a4|FETCH|1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100> UID)\n" },
		{ "a5 SEARCH CHARSET UTF-8 OR (FROM \"x\" NOT SEEN) (OR TO \"\xc3\xbc\" "
		  "(SUBJECT {3}\r\nabc)) UNDELETED\r\n",
		  "L:3\nC:a5|SEARCH|CHARSET UTF-8 OR (FROM \"x\" NOT SEEN) (OR TO \"\xc3\xbc\" "
		  "(SUBJECT {3}abc)) UNDELETED\n" },
		{ "a6 APPEND Drafts (\\Seen \\Draft) \"01-Dec-2026 12:00:00 +0000\" {11+}\r\n"
		  "hello world\r\n",
		  "L:11+\nC:a6|APPEND|Drafts (\\Seen \\Draft) \"01-Dec-2026 12:00:00 +0000\" "
		  "{11}hello world\n" },
		{ "a7 STORE 1:3 +FLAGS.SILENT (\\Seen)\r\n", "C:a7|STORE|1:3 +FLAGS.SILENT (\\Seen)\n" },
		{ "a8 UID FETCH 1:* (UID FLAGS)\r\n", "C:a8|UID|FETCH 1:* (UID FLAGS)\n" },
		{ "a9 LIST \"\" \"*\"\r\n", "C:a9|LIST|\"\" \"*\"\n" },
		{ "a10 LIST \"\" %/*\n", "C:a10|LIST|\"\" %/*\n" },
		{ "a11 UID STORE 5:7 -FLAGS (\\Deleted $Junk)\r\n",
		  "C:a11|UID|STORE 5:7 -FLAGS (\\Deleted $Junk)\n" },
		{ "a12 ID NIL\r\na13 ID (\"name\" nil \"x\" Nil)\r\n",
		  "C:a12|ID|<nil>\nC:a13|ID|(\"name\" <nil> \"x\" <nil>)\n" },
		/* Dovecot's leniency: runs of SP and a trailing SP */
		{ "a14 SELECT  INBOX \r\n", "C:a14|SELECT|INBOX\n" },
		{ "a15 X () (( )) ( a )\r\n", "C:a15|X|() (()) (a)\n" },
		{ "a16 CAPABILITY\r\na17 NOOP\n", "C:a16|CAPABILITY|\nC:a17|NOOP|\n" },
		{ "a18 X {0}\r\n\r\n", "L:0\nC:a18|X|{0}\n" },
		{ "a19 FETCH 1 BODY[]\r\n", "C:a19|FETCH|1 BODY[]\n" },
		{ "a20 FETCH 1 (BODY[1.2.MIME] BINARY[1]<0.5>)\r\n",
		  "C:a20|FETCH|1 (BODY[1.2.MIME] BINARY[1]<0.5>)\n" },
		{ "a21 SELECT ~peter/mail/&U,BTFw- ]x\r\n", "C:a21|SELECT|~peter/mail/&U,BTFw- ]x\n" },
		{ "* NOOP\r\nb NOOP\r\n", "E:-:Invalid tag\nC:b|NOOP|\n" },
		{ "a22 X (a {2}\r\nbc) \"\"\r\n", "L:2\nC:a22|X|(a {2}bc) \"\"\n" },
		{ "]] NOOP\r\n", "C:]]|NOOP|\n" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check(cases[i][0], cases[i][1]);
	/* a literal may hold NUL and CR LF */
	static const char nul[] = "a17 X {5}\r\na\0b\r\n\r\n";

	check_len(nul, sizeof(nul) - 1, &lim_default, 0, "L:5\nC:a17|X|{5}a\\x00b\\x0d\\x0a\n");
}

static void
test_errors(void **state)
{
	static const char *const cases[][2] = {
		{ "b1 LOGIN \"a\\b\" c\r\nb2 NOOP\r\n",
		  "E:b1:Invalid escape in quoted string\nC:b2|NOOP|\n" },
		{ "b5 FETCH 1 (FLAGS\r\nb6 FETCH 1 FLAGS)\r\nb7 NOOP\r\n",
		  "E:b5:Missing ')'\nE:b6:Unexpected ')'\nC:b7|NOOP|\n" },
		{ "b8 SELECT \xc3\xbc\r\nb9 SELECT a\xc3\xbc\r\nb10 NOOP\r\n",
		  "E:b8:8-bit character in atom\nE:b9:8-bit character in atom\nC:b10|NOOP|\n" },
		{ "b11 SELECT \"\xff\"\r\nb12 SELECT \"\xc0\xaf\"\r\nb13 SELECT \"\xed\xa0\x80\"\r\n",
		  "E:b11:Invalid 8-bit data in quoted string\n"
		  "E:b12:Invalid 8-bit data in quoted string\n"
		  "E:b13:Invalid 8-bit data in quoted string\n" },
		{ "a+b NOOP\r\n+ NOOP\r\n x NOOP\r\nc1 NOOP\r\n",
		  "E:-:Invalid tag\nE:-:Invalid tag\nE:-:Invalid tag\nC:c1|NOOP|\n" },
		{ "\r\n\nc1 NOOP\r\n", "E:-:Empty command line\nE:-:Empty command line\nC:c1|NOOP|\n" },
		{ "c2\r\nc2b \r\nc1 NOOP\r\n", "E:c2:Missing command\nE:c2b:Missing command\nC:c1|NOOP|\n" },
		{ "c3 NOOP\rc4 NOOP\r\nc5 NOOP\r\n", "E:c3:CR without LF\nC:c5|NOOP|\n" },
		{ "c5 X \"a\"\"b\"\r\nc6 X (a)b\r\n",
		  "E:c5:Missing space between arguments\nE:c6:Missing space between arguments\n" },
		{ "c7 X \"abc\r\nc8 X a\"b\r\nc9 X a(b\r\nc10 X a{3}\r\n",
		  "E:c7:Unterminated quoted string\nE:c8:Invalid character in atom\n"
		  "E:c9:Invalid character in atom\nE:c10:Invalid character in atom\n" },
		{ "c11 FETCH 1 BODY[HEADER\r\nc12 NOOP\r\n", "E:c11:Missing ']'\nC:c12|NOOP|\n" },
		{ "c13 APPEND x ~{5+}\r\nhello\r\nc14 NOOP\r\n",
		  "E:c13:literal8 (BINARY) is not supported\nC:c14|NOOP|\n" },
		{ "c15 APPEND x ~{5}\r\nc16 NOOP\r\n",
		  "E:c15:literal8 (BINARY) is not supported\nC:c16|NOOP|\n" },
		{ "c17 X {}\r\nc18 X {5a}\r\nc19 X {5+x\r\nc20 X {5} \r\nc21 NOOP\r\n",
		  "E:c17:Invalid literal size\nE:c18:Invalid literal size\nE:c19:Invalid literal size\n"
		  "E:c20:Missing end of line after literal size\nC:c21|NOOP|\n" },
		{ "c22 X {99999999999999999999}\r\nc23 NOOP\r\n",
		  "E:c22:Literal size too large\nC:c23|NOOP|\n" },
		{ "c24 NO\tOP\r\nc25 X\x01\r\nc26 X a\tb\r\n",
		  "E:c24:Invalid command name\nE:c25:Invalid command name\n"
		  "E:c26:Invalid character in atom\n" },
		/* the skip after an error passes over a trailing {N+} literal */
		{ "d1 X \"a\\q\" {5+}\r\nhe\nlo\r\nd2 NOOP\r\n", "E:d1:Invalid escape in quoted string\nC:d2|NOOP|\n" },
		{ "d3 X ) {3+}\r\nabc {2+}\r\nde\r\nd4 NOOP\r\n", "E:d3:Unexpected ')'\nC:d4|NOOP|\n" },
		/* ... but a synchronising one sends nothing */
		{ "d5 X ) {3}\r\nd6 NOOP\r\n", "E:d5:Unexpected ')'\nC:d6|NOOP|\n" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check(cases[i][0], cases[i][1]);
}

static void
test_nul(void **state)
{
	static const char q[] = "b1 LOGIN \"a\0b\" c\r\nb2 NOOP\r\n";
	static const char a[] = "b3 SELECT IN\0BOX\r\nb4 NOOP\r\n";
	static const char t[] = "b\0 NOOP\r\nb5 NOOP\r\n";
	static const char l[] = "b6 X \0 {3+}\r\nabc\r\nb7 NOOP\r\n";

	(void)state;
	check_len(q, sizeof(q) - 1, &lim_default, 0, "E:b1:NUL in quoted string\nC:b2|NOOP|\n");
	check_len(a, sizeof(a) - 1, &lim_default, 0, "E:b3:NUL in command\nC:b4|NOOP|\n");
	check_len(t, sizeof(t) - 1, &lim_default, 0, "E:-:NUL in command\nC:b5|NOOP|\n");
	check_len(l, sizeof(l) - 1, &lim_default, 0, "E:b6:NUL in command\nC:b7|NOOP|\n");
}

static void
test_limits(void **state)
{
	struct imap_parser_limits lim = { 64, 10, 32, 1024 };
	static char in[8192];
	size_t n;

	(void)state;
	/* depth: 1000 '(' */
	n = (size_t)snprintf(in, sizeof(in), "e1 X ");
	for (int i = 0; i < 1000; i++)
		in[n++] = '(';
	n += (size_t)snprintf(in + n, sizeof(in) - n, "\r\ne2 NOOP\r\n");
	check_len(in, n, &lim_default, 0, "E:e1:Too deeply nested lists\nC:e2|NOOP|\n");
	/* 32 levels are fine */
	n = (size_t)snprintf(in, sizeof(in), "e3 X ");
	for (int i = 0; i < 32; i++)
		in[n++] = '(';
	for (int i = 0; i < 32; i++)
		in[n++] = ')';
	n += (size_t)snprintf(in + n, sizeof(in) - n, "\r\n");
	check_len(in, n, &lim_default, 0,
		  "C:e3|X|(((((((((((((((((((((((((((((((())))))))))))))))))))))))))))))))\n");

	/* a line over max_line, then the next command parses */
	n = (size_t)snprintf(in, sizeof(in), "e4 X ");
	for (int i = 0; i < 200; i++)
		in[n++] = 'a';
	n += (size_t)snprintf(in + n, sizeof(in) - n, "\r\ne5 NOOP\r\n");
	check_len(in, n, &lim, 0, "E:e4:Command line too long\nC:e5|NOOP|\n");
	/* max_line bytes, CR LF not counted, are fine; one more is not */
	n = (size_t)snprintf(in, sizeof(in), "e10 X ");
	while (n < 64)
		in[n++] = 'b';
	n += (size_t)snprintf(in + n, sizeof(in) - n, "\r\n");
	check_len(in, n, &lim, 0, "C:e10|X|bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n");
	memmove(in + 7, in + 6, n - 6);
	check_len(in, n + 1, &lim, 0, "E:e10:Command line too long\n");
	/* the limit is per line: literals start a new one */
	check_lim("e6 X 12345678901234567890123456789012345678901234567 {3}\r\nabc "
		  "1234567890123456789012345678901234567890123456789012\r\n", &lim,
		  "L:3\nC:e6|X|12345678901234567890123456789012345678901234567 {3}abc "
		  "1234567890123456789012345678901234567890123456789012\n");

	/* max_args counts every level */
	check_lim("e7 X 1 2 3 4 5 6 7 8 9 10\r\n", &lim, "C:e7|X|1 2 3 4 5 6 7 8 9 10\n");
	check_lim("e8 X 1 2 3 4 5 6 7 8 9 10 11\r\ne9 NOOP\r\n", &lim,
		  "E:e8:Too many arguments\nC:e9|NOOP|\n");
	check_lim("e8 X (1 2 3 4 (5 6 7 8)) 9\r\n", &lim, "E:e8:Too many arguments\n");
	check_lim("e8 X 1 2 3 4 5 6 7 8 9 \"a\" (b)\r\n", &lim, "E:e8:Too many arguments\n");
	check_lim("e8 X 1 2 3 4 5 6 7 8 9 10 {3+}\r\nabc\r\ne9 NOOP\r\n", &lim,
		  "E:e8:Too many arguments\nC:e9|NOOP|\n");
}

static void
test_literal_reject(void **state)
{
	struct imap_parser_limits lim = { 1000, 100, 8, 10 };
	static const char *const sync_in =
		"r1 APPEND x {20}\r\nr2 NOOP\r\n";
	static const char *const nonsync_in =
		"r3 APPEND x {20+}\r\n01234567890123456789 more {3+}\r\nabc\r\nr4 NOOP\r\n";

	(void)state;
	check_len(sync_in, strlen(sync_in), &lim, 0, "L:20\nR\nC:r2|NOOP|\n");
	check_len(nonsync_in, strlen(nonsync_in), &lim, 0, "L:20+\nR\nC:r4|NOOP|\n");
	/* the limit itself is accepted */
	check_lim("r5 X {10}\r\n0123456789\r\n", &lim, "L:10\nC:r5|X|{10}0123456789\n");
}

static void
test_literal_stream(void **state)
{
	struct imap_parser_limits lim = { 1000, 100, 8, 10 };
	static const char *const in =
		"s1 APPEND x (\\Seen) {20+}\r\n01234567890123456789 {3}\r\nabc\r\ns2 NOOP\r\n";

	(void)state;
	check_len(in, strlen(in), &lim, 1,
		  "L:20+\nS\nL:3\nC:s1|APPEND|x (\\Seen) {20}<stream> {3}abc\nC:s2|NOOP|\n");
}

/* The arguments before a literal are there for APPEND to look at. */
static void
test_literal_args(void **state)
{
	static const char in[] = "t1 APPEND Drafts (\\Seen \\Draft) {5}\r\n";
	struct imap_parser *p = imap_parser_new(&lim_default);
	const struct imap_arg *args, *list;
	const char *s;
	size_t used, n, nl;
	uint64_t size;
	int sync;

	(void)state;
	assert_int_equal(imap_parser_feed(p, in, sizeof(in) - 1, &used), IMAP_PARSE_LITERAL);
	assert_int_equal(used, sizeof(in) - 1);
	assert_string_equal(imap_parser_tag(p), "t1");
	assert_string_equal(imap_parser_command(p), "APPEND");
	imap_parser_literal(p, &size, &sync);
	assert_int_equal(size, 5);
	assert_int_equal(sync, 1);
	args = imap_parser_args(p, &n);
	assert_int_equal(n, 2);
	assert_true(imap_arg_astring(&args[0], &s));
	assert_string_equal(s, "Drafts");
	assert_true(imap_arg_list(&args[1], &list, &nl));
	assert_int_equal(nl, 2);
	assert_true(imap_arg_atom(&list[1], &s));
	assert_string_equal(s, "\\Draft");
	/* feeding again before a decision changes nothing */
	assert_int_equal(imap_parser_feed(p, "hello", 5, &used), IMAP_PARSE_LITERAL);
	assert_int_equal(used, 0);
	imap_parser_literal_accept(p);
	assert_int_equal(imap_parser_feed(p, "hel", 3, &used), IMAP_PARSE_MORE);
	assert_int_equal(used, 3);
	assert_int_equal(imap_parser_feed(p, "lo\r\n", 4, &used), IMAP_PARSE_COMMAND);
	args = imap_parser_args(p, &n);
	assert_int_equal(n, 3);
	assert_true(imap_arg_string(&args[2], &s));
	assert_string_equal(s, "hello");
	imap_parser_free(&p);
}

/* COMMAND ends right after its LF: what follows is the session's. */
static void
test_consumed(void **state)
{
	static const char in[] = "i1 IDLE\r\nDONE\r\ni2 NOOP\nx";
	struct imap_parser *p = imap_parser_new(&lim_default);
	size_t used;

	(void)state;
	assert_int_equal(imap_parser_feed(p, in, sizeof(in) - 1, &used), IMAP_PARSE_COMMAND);
	assert_int_equal(used, 9);
	assert_string_equal(imap_parser_command(p), "IDLE");
	/* the session reads DONE itself */
	assert_int_equal(imap_parser_feed(p, in + 15, sizeof(in) - 16, &used), IMAP_PARSE_COMMAND);
	assert_int_equal(used, 8);
	assert_string_equal(imap_parser_tag(p), "i2");
	assert_int_equal(imap_parser_feed(p, in + 23, 1, &used), IMAP_PARSE_MORE);
	assert_int_equal(used, 1);
	assert_null(imap_parser_tag(p));
	/* reset forgets the command in progress */
	assert_int_equal(imap_parser_feed(p, "i3 NO", 5, &used), IMAP_PARSE_MORE);
	imap_parser_reset(p);
	assert_int_equal(imap_parser_feed(p, "i4 NOOP\r\n", 9, &used), IMAP_PARSE_COMMAND);
	assert_string_equal(imap_parser_tag(p), "i4");
	imap_parser_free(&p);
	imap_parser_free(&p);
}

static size_t
heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

/* {999999999}: nothing of that size is ever allocated. */
static void
test_literal_huge(void **state)
{
	static char junk[65536];
	struct imap_parser *p = imap_parser_new(&lim_default);
	size_t used, before, n;
	uint64_t size;
	int sync;

	(void)state;
	memset(junk, 'x', sizeof(junk));
	before = heap_in_use();
	assert_int_equal(imap_parser_feed(p, "h1 APPEND a {999999999}\r\n", 25, &used),
			 IMAP_PARSE_LITERAL);
	imap_parser_literal(p, &size, &sync);
	assert_int_equal(size, 999999999);
	imap_parser_literal_reject(p);
	assert_true(heap_in_use() < before + 100000);

	/* a non-synchronising one is skipped without being kept */
	assert_int_equal(imap_parser_feed(p, "h2 APPEND a {999999999+}\r\n", 26, &used),
			 IMAP_PARSE_LITERAL);
	imap_parser_literal_reject(p);
	for (n = 0; n + sizeof(junk) <= 999999999 && n < 50 * sizeof(junk); n += sizeof(junk)) {
		assert_int_equal(imap_parser_feed(p, junk, sizeof(junk), &used), IMAP_PARSE_MORE);
		assert_int_equal(used, sizeof(junk));
	}
	assert_true(heap_in_use() < before + 100000);
	imap_parser_free(&p);
}

static void
test_accessors(void **state)
{
	static const char in[] = "x1 X atom \"q\" {3}\r\na\0b NIL (l)\r\n";
	struct imap_parser *p = imap_parser_new(&lim_default);
	const struct imap_arg *a, *l;
	const char *s;
	size_t used, n, nl;

	(void)state;
	assert_int_equal(imap_parser_feed(p, in, sizeof(in) - 1, &used), IMAP_PARSE_LITERAL);
	imap_parser_literal_accept(p);
	assert_int_equal(imap_parser_feed(p, in + used, sizeof(in) - 1 - used, &used),
			 IMAP_PARSE_COMMAND);
	a = imap_parser_args(p, &n);
	assert_int_equal(n, 5);
	assert_true(imap_arg_atom(&a[0], &s));
	assert_true(imap_arg_astring(&a[0], &s));
	assert_false(imap_arg_string(&a[0], &s));
	assert_false(imap_arg_nstring(&a[0], &s));
	assert_true(imap_arg_string(&a[1], &s));
	assert_string_equal(s, "q");
	assert_false(imap_arg_atom(&a[1], &s));
	/* a literal with a NUL is no C string */
	assert_int_equal(a[2].type, IMAP_ARG_LITERAL);
	assert_int_equal(a[2].len, 3);
	assert_false(imap_arg_string(&a[2], &s));
	assert_false(imap_arg_astring(&a[2], &s));
	assert_true(imap_arg_nstring(&a[3], &s));
	assert_null(s);
	assert_false(imap_arg_atom(&a[3], &s));
	assert_false(imap_arg_list(&a[3], &l, &nl));
	assert_true(imap_arg_list(&a[4], &l, &nl));
	assert_int_equal(nl, 1);
	assert_true(imap_arg_atom(&l[0], &s));
	assert_string_equal(s, "l");
	imap_parser_free(&p);
}

/* Random garbage over random splits: same transcript, no crash. */
static void
test_random(void **state)
{
	static const char alphabet[] = "ab1 ()[]{}+~\"\\\r\n\0\x80*%<>.";
	struct imap_parser_limits lim = { 40, 12, 4, 8 };
	static char in[400];
	static struct out whole, part;
	unsigned seed = 7;

	(void)state;
	for (int round = 0; round < 2000; round++) {
		size_t n = 1 + (size_t)(rand_r(&seed) % sizeof(in));

		for (size_t i = 0; i < n; i++)
			in[i] = alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)];
		run(in, n, &lim, round & 1, SPLIT_WHOLE, 0, &whole);
		run(in, n, &lim, round & 1, SPLIT_BYTE, 0, &part);
		assert_string_equal(part.s, whole.s);
		run(in, n, &lim, round & 1, SPLIT_RANDOM, (unsigned)round, &part);
		assert_string_equal(part.s, whole.s);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_nul),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_literal_reject),
		cmocka_unit_test(test_literal_stream),
		cmocka_unit_test(test_literal_args),
		cmocka_unit_test(test_consumed),
		cmocka_unit_test(test_literal_huge),
		cmocka_unit_test(test_accessors),
		cmocka_unit_test(test_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
