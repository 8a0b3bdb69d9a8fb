/*
 * fuzz_imap_parser: libFuzzer harness for the IMAP command parser
 * (src/imap/imap_parser.h). The first byte picks the literal policy
 * (accept small ones, then reject or stream big ones) and the seed of
 * the split; the rest is the client's input. It is parsed whole and in
 * pieces: both must give the same transcript of events, every command's
 * argument tree must respect the limits and the syntax (no NUL, CR or LF
 * in atoms and quoted strings, no 8-bit in atoms, valid UTF-8 in quoted
 * strings), and consumed counts must stay within what was fed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_parser.h"

#define CHECK(c) do { \
	if (!(c)) { \
		fprintf(stderr, "fuzz_imap_parser: check failed: %s (line %d)\n", #c, __LINE__); \
		abort(); \
	} \
} while (0)

static const struct imap_parser_limits lim = { 200, 40, 6, 64 };

struct transcript {
	char *s;
	size_t n, cap;
};

static void
t_add(struct transcript *t, const void *p, size_t n)
{
	if (t->n + n > t->cap) {
		t->cap = (t->n + n) * 2 + 64;
		t->s = realloc(t->s, t->cap);
		CHECK(t->s != NULL);
	}
	memcpy(t->s + t->n, p, n);
	t->n += n;
}

static void
t_str(struct transcript *t, const char *s)
{
	t_add(t, s, strlen(s) + 1);
}

/* Check an argument tree and write it out; returns the nodes in it. */
static size_t
args_check(struct transcript *t, const struct imap_arg *a, size_t n, unsigned depth)
{
	size_t count = n;

	CHECK(depth <= lim.max_depth);
	for (size_t i = 0; i < n; i++) {
		char hdr[64];

		snprintf(hdr, sizeof(hdr), "<%d %zu>", (int)a[i].type, a[i].len);
		t_add(t, hdr, strlen(hdr));
		switch (a[i].type) {
		case IMAP_ARG_ATOM:
		case IMAP_ARG_NIL:
			CHECK(a[i].str != NULL && strlen(a[i].str) == a[i].len && a[i].len > 0);
			for (size_t k = 0; k < a[i].len; k++) {
				unsigned char c = (unsigned char)a[i].str[k];

				CHECK(c >= 0x20 && c < 0x7f);
			}
			t_add(t, a[i].str, a[i].len);
			break;
		case IMAP_ARG_QUOTED:
			CHECK(a[i].str != NULL && strlen(a[i].str) == a[i].len);
			CHECK(strchr(a[i].str, '\r') == NULL && strchr(a[i].str, '\n') == NULL);
			t_add(t, a[i].str, a[i].len);
			break;
		case IMAP_ARG_LITERAL:
			if (a[i].str != NULL) {
				CHECK(a[i].len <= lim.max_literal_buffered);
				CHECK(a[i].str[a[i].len] == '\0');
				t_add(t, a[i].str, a[i].len);
			}
			break;
		case IMAP_ARG_LIST:
			CHECK(a[i].nlist == 0 || a[i].list != NULL);
			count += args_check(t, a[i].list, a[i].nlist, depth + 1);
			t_add(t, ")", 1);
			break;
		default:
			CHECK(0);
		}
	}
	return count;
}

static void
run(const uint8_t *data, size_t len, int stream, unsigned seed, int split, struct transcript *t)
{
	struct imap_parser *p = imap_parser_new(&lim);
	size_t pos = 0, recv = 0;

	while (pos < len || recv < len) {
		enum imap_parse r;
		size_t used, n;
		const struct imap_arg *args;
		uint64_t size;
		int sync;

		if (pos == recv) {
			size_t c = split ? 1 + (seed = seed * 1103515245 + 12345) % 13 : len;

			recv = recv + c < len ? recv + c : len;
		}
		r = imap_parser_feed(p, (const char *)data + pos, recv - pos, &used);
		CHECK(used <= recv - pos);
		pos += used;
		switch (r) {
		case IMAP_PARSE_MORE:
			CHECK(pos == recv);
			break;
		case IMAP_PARSE_COMMAND:
			CHECK(imap_parser_tag(p) != NULL && imap_parser_command(p) != NULL);
			CHECK(pos > 0 && data[pos - 1] == '\n');
			t_str(t, "C");
			t_str(t, imap_parser_tag(p));
			t_str(t, imap_parser_command(p));
			args = imap_parser_args(p, &n);
			CHECK(args_check(t, args, n, 0) <= lim.max_args);
			break;
		case IMAP_PARSE_ERROR:
			CHECK(imap_parser_error(p) != NULL);
			t_str(t, "E");
			t_str(t, imap_parser_error(p));
			t_str(t, imap_parser_tag(p) ? imap_parser_tag(p) : "-");
			break;
		case IMAP_PARSE_LITERAL:
			CHECK(pos > 0 && data[pos - 1] == '\n');
			imap_parser_literal(p, &size, &sync);
			t_str(t, sync ? "L" : "L+");
			args = imap_parser_args(p, &n);
			CHECK(args_check(t, args, n, 0) < lim.max_args);
			if (size <= lim.max_literal_buffered) {
				imap_parser_literal_accept(p);
			} else if (stream && size <= len - pos) {
				imap_parser_literal_stream(p);
				pos += size;
				if (recv < pos)
					recv = pos;
				imap_parser_literal_streamed(p);
			} else {
				imap_parser_literal_reject(p);
			}
			break;
		}
	}
	imap_parser_free(&p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct transcript whole = { NULL, 0, 0 }, split = { NULL, 0, 0 };

	if (size < 1)
		return 0;
	run(data + 1, size - 1, data[0] & 1, data[0] >> 1, 0, &whole);
	run(data + 1, size - 1, data[0] & 1, data[0] >> 1, 1, &split);
	CHECK(whole.n == split.n);
	CHECK(whole.n == 0 || memcmp(whole.s, split.s, whole.n) == 0);
	free(whole.s);
	free(split.s);
	return 0;
}
