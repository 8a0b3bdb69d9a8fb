/*
 * fuzz_smtp_reply: libFuzzer harness for the SMTP reply parser
 * (src/smtp/smtp_reply.h). The first byte seeds how the rest is split; the
 * rest is what a server sent. It is parsed whole and in those pieces: both
 * must give the same replies and end in the same state (where a chunk ends
 * must never change what is parsed), and every reply must respect the
 * header's limits.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_reply.h"

#define CHECK(c) do { \
	if (!(c)) { \
		fprintf(stderr, "fuzz_smtp_reply: check failed: %s (line %d)\n", #c, __LINE__); \
		abort(); \
	} \
} while (0)

#define MAX_REPLIES 4096

struct seen {
	int code[MAX_REPLIES];
	unsigned long hash[MAX_REPLIES];
	int n;
	int err, busy;
};

static unsigned long
hash_reply(const struct smtp_reply *r)
{
	unsigned long h = 5381;

	for (size_t i = 0; i < r->textlen; i++)
		h = h * 33 + (unsigned char)r->text[i];
	for (const char *p = r->esc; *p; p++)
		h = h * 33 + (unsigned char)*p;
	return h * 33 + (unsigned long)r->nlines;
}

static void
check_reply(const struct smtp_reply *r)
{
	size_t lines = 1;

	CHECK(r->code >= 200 && r->code <= 599);
	CHECK(r->nlines >= 1 && r->nlines <= SMTP_REPLY_LINES_MAX);
	CHECK(r->multiline == (r->nlines > 1));
	CHECK(r->text != NULL && strlen(r->text) == r->textlen);
	CHECK(r->textlen <= (size_t)r->nlines * SMTP_REPLY_LINE_MAX);
	for (size_t i = 0; i < r->textlen; i++) {
		CHECK(r->text[i] != '\r');
		lines += r->text[i] == '\n';
	}
	CHECK(lines == (size_t)r->nlines);
	if (r->esc[0] != '\0') {
		CHECK(r->esc[0] == '0' + r->code / 100);
		CHECK(strlen(r->esc) <= 9);
	}
}

/* Feed data in pieces: sizes from seed, or all at once when seed is 0. */
static void
parse(const uint8_t *data, size_t size, unsigned seed, struct seen *s)
{
	struct smtp_reply_parser *p = smtp_reply_parser_new();
	size_t off = 0;
	int stop = 0;

	s->n = 0;
	while (off < size && !stop) {
		size_t piece = seed ? (size_t)rand_r(&seed) % 13 + 1 : size - off;

		if (piece > size - off)
			piece = size - off;
		for (size_t done = 0; done < piece;) {
			struct smtp_reply r;
			size_t used;
			int rc = smtp_reply_parser_feed(p, data + off + done, piece - done, &used, &r);

			CHECK(used <= piece - done);
			done += used;
			if (rc < 0) {
				stop = 1;
				break;
			}
			if (rc == 0) {
				CHECK(done == piece);
				break;
			}
			check_reply(&r);
			if (s->n < MAX_REPLIES) {
				s->code[s->n] = r.code;
				s->hash[s->n] = hash_reply(&r);
			}
			s->n++;
			smtp_reply_clear(&r);
		}
		off += piece;
	}
	s->err = (int)smtp_reply_parser_error(p);
	s->busy = smtp_reply_parser_busy(p);
	CHECK(s->err >= SMTP_REPLY_OK && s->err <= SMTP_REPLY_ENUL);
	CHECK(smtp_reply_strerror(s->err) != NULL);
	smtp_reply_parser_free(&p);
	CHECK(p == NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct seen whole, split;
	unsigned seed;

	if (size < 1)
		return 0;
	seed = data[0] + 1u;
	parse(data + 1, size - 1, 0, &whole);
	parse(data + 1, size - 1, seed, &split);
	CHECK(whole.n == split.n && whole.err == split.err);
	if (whole.err == 0)
		CHECK(whole.busy == split.busy);
	for (int i = 0; i < whole.n && i < MAX_REPLIES; i++)
		CHECK(whole.code[i] == split.code[i] && whole.hash[i] == split.hash[i]);
	return 0;
}
