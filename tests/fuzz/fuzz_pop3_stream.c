/*
 * fuzz_pop3_stream: libFuzzer harness for the POP3 message stream
 * (src/pop3/pop3_stream.h). The first byte picks RETR (even) or TOP with
 * n = byte / 2 - 1 lines; the rest is the message file, fed whole and one
 * byte at a time: both must give the same response. Every response must
 * keep the feed's bound (2 output bytes per input byte), have no LF
 * without its CR, end with the terminator on a line of its own, and give
 * the file back exactly (CRs the stream added and the dot-stuffing
 * undone) for RETR, or a prefix of it for TOP.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pop3/pop3_stream.h"

#define CHECK(c) do { \
	if (!(c)) { \
		fprintf(stderr, "fuzz_pop3_stream: check failed: %s (line %d)\n", #c, __LINE__); \
		abort(); \
	} \
} while (0)

/* The response for in[0..len), fed in pieces of step bytes (0: whole). */
static char *
respond(const uint8_t *in, size_t len, long lines, size_t step, size_t *len_r)
{
	char *out = malloc(2 * len + 8);
	struct pop3_stream st;
	size_t off = 0, o = 0;

	pop3_stream_init(&st, lines);
	while (off < len && !st.done) {
		size_t n = step == 0 || len - off < step ? len - off : step, olen, used;
		char *piece = malloc(n);

		memcpy(piece, in + off, n);
		used = pop3_stream_feed(&st, piece, n, out + o, &olen);
		free(piece);
		CHECK(olen <= 2 * used);
		CHECK(used == n || st.done);
		off += used;
		o += olen;
	}
	o += pop3_stream_end(&st, out + o);
	*len_r = o;
	return out;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	long lines;
	size_t l1, l2, n = 0;
	char *r1, *r2, *back;

	if (size < 1)
		return 0;
	lines = data[0] % 2 == 0 ? -1 : data[0] / 2;
	r1 = respond(data + 1, size - 1, lines, 0, &l1);
	r2 = respond(data + 1, size - 1, lines, 1, &l2);
	CHECK(l1 == l2 && memcmp(r1, r2, l1) == 0);
	CHECK(l1 >= 3 && memcmp(r1 + l1 - 3, ".\r\n", 3) == 0);
	CHECK(l1 == 3 || (l1 >= 5 && memcmp(r1 + l1 - 5, "\r\n", 2) == 0));
	/* undo: drop the terminator, one dot at each line start, the CR
	 * before each LF where the file had none */
	back = malloc(l1);
	for (size_t i = 0, bol = 1; i < l1 - 3; i++) {
		if (r1[i] == '\n')
			CHECK(i > 0 && r1[i - 1] == '\r');
		if (bol && r1[i] == '.') {
			CHECK(i + 1 < l1 - 3 && r1[i + 1] == '.');
			i++;
		}
		back[n++] = r1[i];
		bol = r1[i] == '\n';
	}
	/* the file with CRLF for every LF is what came back (the last CRLF
	 * may be one the stream added) */
	{
		size_t k = 0, i;
		const uint8_t *f = data + 1;

		for (i = 0; i < size - 1 && k < n; i++) {
			if (f[i] == '\n' && (i == 0 || f[i - 1] != '\r')) {
				CHECK(back[k] == '\r');
				k++;
				if (k == n)
					break;
			}
			CHECK(back[k] == (char)f[i]);
			k++;
		}
		CHECK(k == n || (n - k <= 2 && back[n - 1] == '\n'));
		if (lines < 0)   /* RETR: the whole file */
			CHECK(i == size - 1 && n - k <= 2);
	}
	free(back);
	free(r1);
	free(r2);
	return 0;
}
