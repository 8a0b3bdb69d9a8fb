/*
 * fuzz_smtp_data: libFuzzer harness for the DATA filter (src/smtp/
 * smtp_data.h). The input (after its first byte) is fed whole, split in
 * two at a position taken from the first byte, and one byte at a time;
 * all must agree on output, errors, done, consumed and counts. Each feed
 * gets an output buffer of exactly its input length, as the header allows.
 * A clean message must end at the first CR LF "." CR LF and come out with
 * no bare CR or LF and no line over 998 octets. Fed again whole and byte by
 * byte with stop_at_body (submission), the output must not change, and the
 * stop must come once, at the same offset, in both.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_data.h"

#define CHECK(c) do { \
	if (!(c)) { \
		fprintf(stderr, "fuzz_smtp_data: check failed: %s (line %d)\n", #c, __LINE__); \
		abort(); \
	} \
} while (0)

struct run {
	char *out;
	size_t outlen, consumed;
	int errors, done, received, eightbit;
	int nfrom, from_over, saw_date, saw_msgid;
	char from[2048];       /* may hold NULs: from_len counts */
	size_t from_len;
	long body_at;       /* output offset of the stop at the body, or -1 */
};

/* Feed in[0..len) in pieces of at most the given lengths (0 = the rest).
 * Each piece and its output buffer are heap blocks of exactly its length
 * (reallocated only when the length changes, to keep byte feeds fast). */
static void
run_feed(const char *in, size_t len, long long max, const size_t *pieces, size_t npieces,
	 int stop, struct run *r)
{
	struct smtp_data d;
	size_t off = 0, pi = 0, cap = 0;
	char *piece = NULL, *out = NULL;

	memset(r, 0, sizeof(*r));
	r->body_at = -1;
	r->out = malloc(len + 1);
	smtp_data_init(&d, max);
	d.stop_at_body = stop;
	while (off < len || pi < npieces) {
		size_t n = len - off, o = 0, used;
		int done = 0;

		if (pi < npieces && pieces[pi] != 0 && pieces[pi] < n)
			n = pieces[pi];
		if (pi < npieces)
			pi++;
		if (n != cap || piece == NULL) {
			piece = realloc(piece, n ? n : 1);
			out = realloc(out, n ? n : 1);
			cap = n;
		}
		memcpy(piece, in + off, n);
		used = smtp_data_feed(&d, piece, n, out, &o, &done);
		CHECK(used <= n);
		CHECK(o <= n);
		CHECK(done == 0 || done == 1);
		CHECK(used == n || done || d.at_body);
		CHECK(!d.at_body || stop);
		memcpy(r->out + r->outlen, out, o);
		r->outlen += o;
		if (d.at_body) {
			CHECK(r->body_at == -1);
			r->body_at = (long)r->outlen;
		}
		off += used;
		if (done) {
			r->done = 1;
			break;
		}
		if (off == len && pi >= npieces)
			break;
	}
	free(piece);
	free(out);
	r->consumed = off;
	r->errors = d.errors;
	r->received = d.received;
	r->eightbit = d.eightbit;
	r->nfrom = d.nfrom;
	r->from_over = d.from_over;
	r->saw_date = d.saw_date;
	r->saw_msgid = d.saw_msgid;
	CHECK(d.from_len < sizeof(d.from) && d.from[d.from_len] == '\0');
	memcpy(r->from, d.from, d.from_len + 1);
	r->from_len = d.from_len;
}

static void
same(const struct run *a, const struct run *b)
{
	CHECK(a->outlen == b->outlen);
	CHECK(memcmp(a->out, b->out, a->outlen) == 0);
	CHECK(a->errors == b->errors);
	CHECK(a->done == b->done);
	CHECK(a->consumed == b->consumed);
	CHECK(a->received == b->received);
	CHECK(a->eightbit == b->eightbit);
	CHECK(a->nfrom == b->nfrom && a->from_over == b->from_over);
	CHECK(a->saw_date == b->saw_date && a->saw_msgid == b->saw_msgid);
	CHECK(a->from_len == b->from_len && memcmp(a->from, b->from, a->from_len) == 0);
	CHECK(a->body_at == b->body_at);
}

static void
check_clean(const char *in, const struct run *r, long long max)
{
	const char *o = r->out;
	size_t line = 0;

	if (r->done) {
		CHECK((r->consumed == 3 && memcmp(in, ".\r\n", 3) == 0) ||
		      (r->consumed >= 5 && memcmp(in + r->consumed - 5, "\r\n.\r\n", 5) == 0));
		/* and no earlier terminator was passed over */
		for (size_t i = 0; i + 5 < r->consumed; i++)
			CHECK(memcmp(in + i, "\r\n.\r\n", 5) != 0);
	}
	if (r->errors != 0 || !r->done)
		return;
	if (max > 0)
		CHECK((long long)r->outlen <= max);
	CHECK(r->outlen == 0 || (r->outlen >= 2 && memcmp(o + r->outlen - 2, "\r\n", 2) == 0));
	for (size_t i = 0; i < r->outlen; i++) {
		if (o[i] == '\r') {
			CHECK(i + 1 < r->outlen && o[i + 1] == '\n');
			line = 0;
			i++;
			continue;
		}
		CHECK(o[i] != '\n');
		CHECK(++line <= SMTP_DATA_LINE_MAX - 2);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long long maxes[] = { 0, 100 };
	const char *in;
	size_t len, split;

	if (size < 1)
		return 0;
	in = (const char *)data + 1;
	len = size - 1;
	split = len ? data[0] % (len + 1) : 0;
	for (size_t m = 0; m < sizeof(maxes) / sizeof(maxes[0]); m++) {
		struct run whole, two, bytes;
		size_t halves[2] = { split, 0 };
		size_t *ones = malloc((len ? len : 1) * sizeof(size_t));

		for (size_t i = 0; i < len; i++)
			ones[i] = 1;
		run_feed(in, len, maxes[m], NULL, 0, 0, &whole);
		/* a zero-length first piece is fed as such */
		if (split == 0) {
			struct smtp_data d;
			char out[1];
			size_t o = 0;
			int done = 0;

			smtp_data_init(&d, maxes[m]);
			CHECK(smtp_data_feed(&d, in, 0, out, &o, &done) == 0);
			CHECK(o == 0 && done == 0);
		}
		run_feed(in, len, maxes[m], halves, 2, 0, &two);
		run_feed(in, len, maxes[m], ones, len, 0, &bytes);
		same(&whole, &two);
		same(&whole, &bytes);
		check_clean(in, &whole, maxes[m]);
		{
			struct run ws, bs;

			run_feed(in, len, maxes[m], NULL, 0, 1, &ws);
			run_feed(in, len, maxes[m], ones, len, 1, &bs);
			same(&ws, &bs);
			CHECK(ws.outlen == whole.outlen && memcmp(ws.out, whole.out, ws.outlen) == 0);
			CHECK(ws.errors == whole.errors && ws.done == whole.done);
			CHECK(ws.consumed == whole.consumed);
			free(ws.out);
			free(bs.out);
		}
		free(ones);
		free(whole.out);
		free(two.out);
		free(bytes.out);
	}
	return 0;
}
