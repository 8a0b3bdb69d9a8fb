/*
 * test_smtp_data: unit tests for the DATA filter (src/smtp/smtp_data.h):
 * the one true end of data, every SMTP smuggling sequence, dot-unstuffing,
 * bare CR/LF, line and size limits, Received: counting, what submission
 * needs of the header (From:, Date:, Message-ID:, the stop after the header
 * section). Every input is fed
 * whole, one byte at a time and in seeded random pieces (STYLE.md rule 9),
 * and all three must give the same output, errors, done and consumed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_data.h"

enum split { SPLIT_WHOLE, SPLIT_BYTE, SPLIT_RANDOM };

struct result {
	char *out;
	size_t outlen;
	size_t consumed;
	int errors, done, received, eightbit;
	char msgid[256];
	int overflow;       /* a feed gave more output bytes than it was fed */
	char from[2048];
	int nfrom, from_over, saw_date, saw_msgid;
	long body_at;       /* output offset where the feed stopped at the body, or -1 */
};

static int stop_at_body;   /* feed() sets smtp_data's stop_at_body */

static unsigned
rng(unsigned *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return (*seed >> 16) & 0x7fff;
}

/* Feed in[0..len) to a fresh filter in pieces chosen by how. Each piece is
 * a heap copy of exactly its length, so reading past it is caught by
 * valgrind and ASan; the output scratch has spare room so that a filter
 * breaking the "room for len bytes" contract is recorded, not fatal. */
static void
feed(const char *in, size_t len, long long max, enum split how, unsigned seed,
     struct result *r)
{
	struct smtp_data d;
	char *scratch = malloc(len + 8);
	size_t off = 0;

	memset(r, 0, sizeof(*r));
	r->body_at = -1;
	r->out = malloc(len + 8);
	assert_non_null(scratch);
	assert_non_null(r->out);
	smtp_data_init(&d, max);
	d.stop_at_body = stop_at_body;
	while (off < len) {
		size_t n = len - off, used, o = (size_t)-1;
		int done = -1;
		char *piece;

		if (how == SPLIT_BYTE)
			n = 1;
		else if (how == SPLIT_RANDOM)
			n = 1 + rng(&seed) % (n < 64 ? n : 64);
		piece = malloc(n);
		assert_non_null(piece);
		memcpy(piece, in + off, n);
		used = smtp_data_feed(&d, piece, n, scratch, &o, &done);
		free(piece);
		assert_true(used <= n);
		assert_true(done == 0 || done == 1);
		assert_true(o <= n + 1);
		if (o > n)
			r->overflow = 1;
		if (used < n && !d.at_body)
			assert_int_equal(done, 1);
		assert_true(r->outlen + o <= len + 8);
		memcpy(r->out + r->outlen, scratch, o);
		r->outlen += o;
		if (d.at_body) {
			assert_int_equal(r->body_at, -1);
			r->body_at = (long)r->outlen;
		}
		off += used;
		if (done) {
			r->done = 1;
			break;
		}
	}
	free(scratch);
	r->consumed = off;
	r->errors = d.errors;
	r->received = d.received;
	r->eightbit = d.eightbit;
	snprintf(r->msgid, sizeof(r->msgid), "%s", d.msgid);
	snprintf(r->from, sizeof(r->from), "%s", d.from);
	r->nfrom = d.nfrom;
	r->from_over = d.from_over;
	r->saw_date = d.saw_date;
	r->saw_msgid = d.saw_msgid;
}

static void
result_free(struct result *r)
{
	free(r->out);
	r->out = NULL;
}

static void
result_same(const struct result *a, const struct result *b, const char *what)
{
	if (a->outlen != b->outlen || memcmp(a->out, b->out, a->outlen) != 0 ||
	    a->errors != b->errors || a->done != b->done || a->consumed != b->consumed ||
	    a->received != b->received || a->eightbit != b->eightbit ||
	    strcmp(a->msgid, b->msgid) != 0 || strcmp(a->from, b->from) != 0 ||
	    a->nfrom != b->nfrom || a->from_over != b->from_over || a->saw_date != b->saw_date ||
	    a->saw_msgid != b->saw_msgid || a->body_at != b->body_at)
		fail_msg("%s differs from whole: outlen %zu/%zu errors %d/%d done %d/%d "
			 "consumed %zu/%zu received %d/%d eightbit %d/%d", what, b->outlen,
			 a->outlen, b->errors, a->errors, b->done, a->done, b->consumed,
			 a->consumed, b->received, a->received, b->eightbit, a->eightbit);
}

/* Whole, byte by byte and random splits; returns the whole-input result. */
static void
run_n(const char *in, size_t len, long long max, struct result *r)
{
	struct result b;

	feed(in, len, max, SPLIT_WHOLE, 0, r);
	feed(in, len, max, SPLIT_BYTE, 0, &b);
	result_same(r, &b, "byte-by-byte");
	result_free(&b);
	for (unsigned seed = 1; seed <= 8; seed++) {
		feed(in, len, max, SPLIT_RANDOM, seed, &b);
		result_same(r, &b, "random split");
		result_free(&b);
	}
}

static void
run(const char *in, long long max, struct result *r)
{
	run_n(in, strlen(in), max, r);
}

static void
assert_out(const struct result *r, const char *want, size_t wlen)
{
	if (r->outlen != wlen || memcmp(r->out, want, wlen) != 0)
		fail_msg("output \"%.*s\" (%zu) != \"%.*s\" (%zu)", (int)r->outlen, r->out,
			 r->outlen, (int)wlen, want, wlen);
}

static void
test_simple(void **state)
{
	static const char msg[] = "Subject: hi\r\n\r\nHello\r\n.\r\n";
	struct result r;

	(void)state;
	run(msg, 0, &r);
	assert_int_equal(r.done, 1);
	assert_int_equal(r.errors, 0);
	assert_int_equal(r.consumed, strlen(msg));
	assert_out(&r, "Subject: hi\r\n\r\nHello\r\n", 22);
	assert_int_equal(r.received, 0);
	assert_int_equal(r.eightbit, 0);
	result_free(&r);
}

static void
test_empty_message(void **state)
{
	struct result r;

	(void)state;
	run(".\r\n", 0, &r);
	assert_int_equal(r.done, 1);
	assert_int_equal(r.errors, 0);
	assert_int_equal(r.consumed, 3);
	assert_int_equal(r.outlen, 0);
	result_free(&r);
	run(".\r\nQUIT\r\n", 0, &r);
	assert_int_equal(r.done, 1);
	assert_int_equal(r.consumed, 3);
	assert_int_equal(r.outlen, 0);
	result_free(&r);
}

static void
test_not_done_without_terminator(void **state)
{
	static const char *const msgs[] = {
		"", "Hello\r\n", "Hello\r\n.", "Hello\r\n.\r", "Hello\r\n..\r\n", "Hello\r\n. \r\n",
		"Hello\r\n .\r\n", "Hello.\r\n", "Hello\r\n.x\r\n",
	};
	struct result r;

	(void)state;
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		run(msgs[i], 0, &r);
		if (r.done)
			fail_msg("\"%s\" must not end the data", msgs[i]);
		assert_int_equal(r.consumed, strlen(msgs[i]));
		result_free(&r);
	}
}

static void
test_dot_unstuffing(void **state)
{
	static const char msg[] = "..x\r\n.x\r\n..\r\n...\r\nmid.dle\r\n. \r\n.\r\n";
	static const char want[] = ".x\r\nx\r\n.\r\n..\r\nmid.dle\r\n \r\n";
	struct result r;

	(void)state;
	run(msg, 0, &r);
	assert_int_equal(r.done, 1);
	assert_int_equal(r.errors, 0);
	assert_int_equal(r.consumed, strlen(msg));
	assert_out(&r, want, strlen(want));
	result_free(&r);
}

static void
test_terminator_split(void **state)
{
	static const char *const pieces[][3] = {
		{ "Hi\r\n", ".\r\n", "" },
		{ "Hi\r", "\n.\r\n", "" },
		{ "Hi\r\n.", "\r\n", "" },
		{ "Hi\r\n.\r", "\n", "" },
		{ "Hi", "\r\n.", "\r\n" },
		{ "Hi\r", "\n", ".\r\n" },
	};
	char out[64];

	(void)state;
	for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		struct smtp_data d;
		size_t total = 0, o;
		int done = 0;

		smtp_data_init(&d, 0);
		for (int j = 0; j < 3; j++) {
			size_t n = strlen(pieces[i][j]);

			if (n == 0)
				continue;
			assert_int_equal(done, 0);
			assert_int_equal(smtp_data_feed(&d, pieces[i][j], n, out + total, &o, &done),
					 n);
			total += o;
		}
		assert_int_equal(done, 1);
		assert_int_equal(d.errors, 0);
		assert_int_equal(total, 4);
		assert_memory_equal(out, "Hi\r\n", 4);
	}
}

static void
test_bytes_after_terminator(void **state)
{
	static const char msg[] = "Hi\r\n.\r\nMAIL FROM:<a@b.c>\r\n";
	struct smtp_data d;
	char out[sizeof(msg)];
	size_t o, used;
	int done;
	struct result r;

	(void)state;
	smtp_data_init(&d, 0);
	used = smtp_data_feed(&d, msg, strlen(msg), out, &o, &done);
	assert_int_equal(used, 7);
	assert_int_equal(done, 1);
	assert_int_equal(o, 4);
	run(msg, 0, &r);
	assert_int_equal(r.consumed, 7);
	result_free(&r);
	/* a second message right behind: only the first terminator counts */
	run("A\r\n.\r\nB\r\n.\r\n", 0, &r);
	assert_int_equal(r.consumed, 6);
	assert_out(&r, "A\r\n", 3);
	result_free(&r);
}

struct smuggle {
	const char *seq;
	size_t len;
	int bare;
};

#define SMUGGLE(s, bare) { s, sizeof(s) - 1, bare }
static const struct smuggle smuggles[] = {
	SMUGGLE("\n.\n", 1),
	SMUGGLE("\r.\r", 1),
	SMUGGLE("\r.\n", 1),
	SMUGGLE("\n.\r", 1),
	SMUGGLE("\n.\r\n", 1),
	SMUGGLE("\r\n.\n", 1),
	SMUGGLE("\r.\r\n", 1),
	SMUGGLE("\r\n.\r", 1),
	SMUGGLE("\r\n\0.\r\n", 0),
	SMUGGLE("\r\n.\0\r\n", 0),
	SMUGGLE("\r\n.\r\r\n", 1),
};
#undef SMUGGLE

/* head seq "world\r\n.\r\nQUIT\r\n": done only at the real terminator. */
static void
smuggle_at(const char *head, const struct smuggle *sm, struct result *r)
{
	static const char tail[] = "world\r\n.\r\nQUIT\r\n";
	size_t hl = strlen(head), tl = strlen(tail);
	size_t len = hl + sm->len + tl;
	char *in = malloc(len);

	assert_non_null(in);
	memcpy(in, head, hl);
	memcpy(in + hl, sm->seq, sm->len);
	memcpy(in + hl + sm->len, tail, tl);
	run_n(in, len, 0, r);
	free(in);
	if (!r->done || r->consumed != len - 6)
		fail_msg("smuggling sequence %zu after \"%s\": done %d consumed %zu, want 1 %zu",
			 (size_t)(sm - smuggles), head, r->done, r->consumed, len - 6);
	if (!!(r->errors & SMTP_DATA_EBARE) != sm->bare)
		fail_msg("smuggling sequence %zu after \"%s\": EBARE %d, want %d",
			 (size_t)(sm - smuggles), head, !!(r->errors & SMTP_DATA_EBARE), sm->bare);
	assert_int_equal(r->errors & ~SMTP_DATA_EBARE, 0);
}

static void
test_smuggling(void **state)
{
	static const char *const heads[] = { "From: a@b.c\r\n\r\nhello", "", "x", "Subject: s" };
	struct result r;

	(void)state;
	for (size_t h = 0; h < sizeof(heads) / sizeof(heads[0]); h++)
		for (size_t i = 0; i < sizeof(smuggles) / sizeof(smuggles[0]); i++) {
			smuggle_at(heads[h], &smuggles[i], &r);
			result_free(&r);
		}
}

/* The NUL sequences are legal (if odd) text: they pass, unstuffed. */
static void
test_smuggling_nul_output(void **state)
{
	struct result r;

	(void)state;
	smuggle_at("hello", &smuggles[8], &r);
	assert_out(&r, "hello\r\n\0.\r\nworld\r\n", 18);
	result_free(&r);
	smuggle_at("hello", &smuggles[9], &r);
	assert_out(&r, "hello\r\n\0\r\nworld\r\n", 17);
	result_free(&r);
}

static void
test_bare_cr_lf(void **state)
{
	static const char *const msgs[] = {
		"a\rb\r\n.\r\n", "a\nb\r\n.\r\n", "a\r\r\n.\r\n", "a\n\r\n.\r\n", "\n\r\n.\r\n",
		"\r\r\n.\r\n", "a\r\n\nb\r\n.\r\n", "Subject: x\n\r\n.\r\n", "a\r\n.\r\r\n.\r\n",
		"a\r\n.\n\r\n.\r\n", "a\r\n..\n\r\n.\r\n",
	};
	struct result r;

	(void)state;
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		run(msgs[i], 0, &r);
		if (!(r.errors & SMTP_DATA_EBARE))
			fail_msg("message %zu: bare CR/LF not flagged", i);
		if (!r.done)
			fail_msg("message %zu: the real terminator was missed", i);
		assert_int_equal(r.consumed, strlen(msgs[i]));
		result_free(&r);
	}
}

static char *
make_line_msg(size_t linelen, size_t *len_r)
{
	char *m = malloc(linelen + 16);

	assert_non_null(m);
	memset(m, 'x', linelen);
	memcpy(m + linelen, "\r\nok\r\n.\r\n", 9);
	*len_r = linelen + 9;
	return m;
}

static void
test_line_length(void **state)
{
	struct result r;
	size_t len;
	char *m;

	(void)state;
	m = make_line_msg(998, &len);
	run_n(m, len, 0, &r);
	assert_int_equal(r.errors, 0);
	assert_int_equal(r.done, 1);
	assert_int_equal(r.consumed, len);
	assert_int_equal(r.outlen, len - 3);
	result_free(&r);
	free(m);

	m = make_line_msg(999, &len);
	run_n(m, len, 0, &r);
	assert_int_equal(r.errors, SMTP_DATA_ELONG);
	assert_int_equal(r.done, 1);
	assert_int_equal(r.consumed, len);
	result_free(&r);
	free(m);

	m = make_line_msg(5000, &len);
	run_n(m, len, 0, &r);
	assert_int_equal(r.errors, SMTP_DATA_ELONG);
	assert_int_equal(r.done, 1);
	result_free(&r);
	free(m);
}

/* The limit is per line: many lines of 998 octets are fine. */
static void
test_line_length_resets(void **state)
{
	size_t n = 5 * 1000 + 3;
	char *m = malloc(n);
	struct result r;

	(void)state;
	assert_non_null(m);
	for (int i = 0; i < 5; i++) {
		memset(m + i * 1000, 'y', 998);
		memcpy(m + i * 1000 + 998, "\r\n", 2);
	}
	memcpy(m + 5000, ".\r\n", 3);
	run_n(m, n, 0, &r);
	assert_int_equal(r.errors, 0);
	assert_int_equal(r.done, 1);
	assert_int_equal(r.outlen, 5000);
	result_free(&r);
	free(m);
}

static void
test_size_limit(void **state)
{
	struct result r;

	(void)state;
	run("1234567890\r\n.\r\n", 12, &r);
	assert_int_equal(r.errors, 0);
	assert_int_equal(r.outlen, 12);
	assert_int_equal(r.done, 1);
	result_free(&r);
	run("12345678901\r\n.\r\n", 12, &r);
	assert_int_equal(r.errors, SMTP_DATA_ESIZE);
	assert_int_equal(r.done, 1);
	assert_int_equal(r.consumed, 16);
	assert_true(r.outlen <= 12);
	result_free(&r);
	/* 0: no limit */
	run("12345678901\r\n.\r\n", 0, &r);
	assert_int_equal(r.errors, 0);
	result_free(&r);
}

static void
test_received_count(void **state)
{
	static const char msg[] =
		"Received: from a\r\n"
		"received: from b\r\n"
		"RECEIVED:from c\r\n"
		"\tReceived: folded continuation\r\n"
		" Received: folded too\r\n"
		"X-Received: y\r\n"
		"Received-SPF: pass\r\n"
		"Receive: no\r\n"
		"Subject: s\r\n"
		"\r\n"
		"Received: in the body\r\n"
		"received: in the body\r\n"
		".\r\n";
	struct result r;

	(void)state;
	run(msg, 0, &r);
	assert_int_equal(r.received, 3);
	assert_int_equal(r.errors, 0);
	assert_int_equal(r.done, 1);
	result_free(&r);
	/* no header section at all: the body starts at once */
	run("\r\nReceived: x\r\n.\r\n", 0, &r);
	assert_int_equal(r.received, 0);
	result_free(&r);
	/* a stuffed dot before it is no Received: header */
	run("..Received: x\r\n.\r\n", 0, &r);
	assert_int_equal(r.received, 0);
	result_free(&r);
}

static void
test_message_id(void **state)
{
	struct result r;

	(void)state;
	run("Subject: s\r\nmessage-id:  <a.b@example.org> \r\nMessage-ID: <second@x>\r\n\r\nx\r\n.\r\n",
	    0, &r);
	assert_string_equal(r.msgid, "<a.b@example.org>");
	result_free(&r);
	/* folded onto the next line */
	run("Message-ID:\r\n <folded@example.org>\r\nSubject: s\r\n\r\n.\r\n", 0, &r);
	assert_string_equal(r.msgid, "<folded@example.org>");
	result_free(&r);
	/* only in the body: none */
	run("Subject: s\r\n\r\nMessage-ID: <body@x>\r\n.\r\n", 0, &r);
	assert_string_equal(r.msgid, "");
	result_free(&r);
	/* X-Message-ID is another header */
	run("X-Message-ID: <no@x>\r\n\r\n.\r\n", 0, &r);
	assert_string_equal(r.msgid, "");
	result_free(&r);
}

static void
test_submission_fields(void **state)
{
	struct result r;

	(void)state;
	run("from: \"Doe, John\" <john@example.org>\r\nSubject: s\r\nFrom: second@x\r\n\r\n"
	    "From: body@x\r\nDate: no\r\n.\r\n", 0, &r);
	assert_string_equal(r.from, " \"Doe, John\" <john@example.org>");
	assert_int_equal(r.nfrom, 2);
	assert_int_equal(r.saw_date, 0);
	assert_int_equal(r.saw_msgid, 0);
	assert_int_equal(r.body_at, -1);   /* nobody asked to stop */
	result_free(&r);
	/* folded: the CRLF goes, the white space stays */
	run("From: Alice\r\n\t<alice@example.test>\r\nDate: Tue, 1 Dec 2026\r\n"
	    "Message-ID: <m@x>\r\n\r\n.\r\n", 0, &r);
	assert_string_equal(r.from, " Alice\t<alice@example.test>");
	assert_int_equal(r.nfrom, 1);
	assert_int_equal(r.saw_date, 1);
	assert_int_equal(r.saw_msgid, 1);
	result_free(&r);
	/* Fromage: is another field; none at all */
	run("Fromage: x\r\nX-From: y\r\n\r\n.\r\n", 0, &r);
	assert_string_equal(r.from, "");
	assert_int_equal(r.nfrom, 0);
	result_free(&r);
}

static void
test_stop_at_body(void **state)
{
	static const char msg[] = "From: a@x\r\nSubject: s\r\n\r\nbody\r\n\r\nmore\r\n.\r\n";
	struct result r;

	(void)state;
	stop_at_body = 1;
	run(msg, 0, &r);
	/* right after the blank line that ends the header, once; then on */
	assert_int_equal(r.body_at, (long)strlen("From: a@x\r\nSubject: s\r\n\r\n"));
	assert_int_equal(r.done, 1);
	assert_int_equal(r.consumed, strlen(msg));
	assert_out(&r, "From: a@x\r\nSubject: s\r\n\r\nbody\r\n\r\nmore\r\n",
		   strlen("From: a@x\r\nSubject: s\r\n\r\nbody\r\n\r\nmore\r\n"));
	result_free(&r);
	/* no header at all: the blank line first */
	run("\r\nbody\r\n.\r\n", 0, &r);
	assert_int_equal(r.body_at, 2);
	result_free(&r);
	/* no blank line: no stop */
	run("Subject: s\r\n.\r\n", 0, &r);
	assert_int_equal(r.body_at, -1);
	assert_int_equal(r.done, 1);
	result_free(&r);
	stop_at_body = 0;
}

static void
test_received_many(void **state)
{
	size_t per = strlen("Received: from x by y\r\n");
	size_t n = 150 * per + 12;
	char *m = malloc(n), *p = m;
	struct result r;

	(void)state;
	assert_non_null(m);
	for (int i = 0; i < 150; i++, p += per)
		memcpy(p, "Received: from x by y\r\n", per);
	memcpy(p, "\r\nbody\r\n.\r\n", 12);
	run_n(m, n - 1, 0, &r);
	assert_int_equal(r.received, 150);
	assert_int_equal(r.done, 1);
	result_free(&r);
	free(m);
}

static void
test_eightbit(void **state)
{
	struct result r;

	(void)state;
	run("Subject: caf\xc3\xa9\r\n\r\n.\r\n", 0, &r);
	assert_int_equal(r.eightbit, 1);
	assert_int_equal(r.errors, 0);
	result_free(&r);
	run("Subject: cafe\r\n\r\n\x7f.\r\n.\r\n", 0, &r);
	assert_int_equal(r.eightbit, 0);
	result_free(&r);
}

static void
test_header_section_limit(void **state)
{
	size_t lines = 1100, n = lines * 1000 + 11;
	char *m = malloc(n), *p = m;
	struct result r;

	(void)state;
	assert_non_null(m);
	for (size_t i = 0; i < lines; i++, p += 1000) {
		memcpy(p, "X-Pad: ", 7);
		memset(p + 7, 'p', 991);
		memcpy(p + 998, "\r\n", 2);
	}
	memcpy(p, "\r\nbody\r\n.\r\n", 11);
	run_n(m, n, 0, &r);
	assert_true(r.errors & SMTP_DATA_EHDR);
	assert_int_equal(r.done, 1);
	assert_int_equal(r.consumed, n);
	result_free(&r);
	/* the same bytes as body after a short header are fine */
	memcpy(m, "\r\n", 2);
	run_n(m, n, 0, &r);
	assert_int_equal(r.errors & SMTP_DATA_EHDR, 0);
	result_free(&r);
	free(m);
}

/* smtp_data.h: "Unstuffed message bytes go to out (room for len bytes)".
 * A CR at the end of one feed and its LF at the start of the next must
 * not make the second feed write more than it was given. */
static void
test_output_fits_input(void **state)
{
	static const char *const msgs[] = {
		"a\r\nb\r\n.\r\n", "Subject: x\r\n\r\nbody\r\n.\r\n", "\r\n\r\n\r\n.\r\n",
	};
	struct result r;

	(void)state;
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		int over;

		feed(msgs[i], strlen(msgs[i]), 0, SPLIT_BYTE, 0, &r);
		over = r.overflow;
		result_free(&r);
		if (over)
			fail_msg("message %zu fed byte by byte: a feed wrote more bytes than it "
				 "was given", i);
		for (unsigned seed = 1; seed <= 16; seed++) {
			feed(msgs[i], strlen(msgs[i]), 0, SPLIT_RANDOM, seed, &r);
			over = r.overflow;
			result_free(&r);
			if (over)
				fail_msg("message %zu split (seed %u): a feed wrote more bytes than "
					 "it was given", i, seed);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple),
		cmocka_unit_test(test_empty_message),
		cmocka_unit_test(test_not_done_without_terminator),
		cmocka_unit_test(test_dot_unstuffing),
		cmocka_unit_test(test_terminator_split),
		cmocka_unit_test(test_bytes_after_terminator),
		cmocka_unit_test(test_smuggling),
		cmocka_unit_test(test_smuggling_nul_output),
		cmocka_unit_test(test_bare_cr_lf),
		cmocka_unit_test(test_line_length),
		cmocka_unit_test(test_line_length_resets),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_received_count),
		cmocka_unit_test(test_received_many),
		cmocka_unit_test(test_message_id),
		cmocka_unit_test(test_submission_fields),
		cmocka_unit_test(test_stop_at_body),
		cmocka_unit_test(test_eightbit),
		cmocka_unit_test(test_header_section_limit),
		cmocka_unit_test(test_output_fits_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
