/*
 * test_pop3_stream: unit tests for the POP3 message stream
 * (src/pop3/pop3_stream.h): LF to CRLF with CRLF left alone, dot-stuffing
 * at every line start, the terminator after a last line with or without
 * its end, and TOP's cut after the header and n body lines. Every input is
 * fed whole and one byte at a time (STYLE.md rule 9), and both must give
 * the same output.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "pop3/pop3_stream.h"

/* The response for in, fed in pieces of step bytes (0: whole). */
static char *
run(const char *in, long body_lines, size_t step, size_t *len_r)
{
	size_t len = strlen(in), off = 0, o = 0;
	char *out = malloc(2 * len + 8);
	struct pop3_stream st;

	pop3_stream_init(&st, body_lines);
	while (off < len && !st.done) {
		size_t n = step == 0 || len - off < step ? len - off : step, olen, used;
		char *piece = malloc(n);

		memcpy(piece, in + off, n);
		used = pop3_stream_feed(&st, piece, n, out + o, &olen);
		free(piece);
		assert_true(olen <= 2 * n);
		assert_true(used == n || st.done);
		off += used;
		o += olen;
	}
	o += pop3_stream_end(&st, out + o);
	out[o] = '\0';
	*len_r = o;
	return out;
}

static void
check(const char *in, long body_lines, const char *want)
{
	size_t l1, l2;
	char *whole = run(in, body_lines, 0, &l1), *bytes = run(in, body_lines, 1, &l2);

	assert_string_equal(whole, want);
	assert_int_equal(l1, strlen(want));
	assert_string_equal(bytes, want);
	assert_int_equal(l2, l1);
	free(whole);
	free(bytes);
}

static void
test_lf_becomes_crlf(void **state)
{
	check("Subject: a\n\nline 1\nline 2\n", -1, "Subject: a\r\n\r\nline 1\r\nline 2\r\n.\r\n");
}

static void
test_crlf_stays(void **state)
{
	check("Subject: a\r\n\r\nbody\r\n", -1, "Subject: a\r\n\r\nbody\r\n.\r\n");
}

static void
test_dot_stuffing(void **state)
{
	check("S: a\n\n.\n..x\n.y\nz.\n", -1, "S: a\r\n\r\n..\r\n...x\r\n..y\r\nz.\r\n.\r\n");
	/* a dot on the first line of all, and after a CRLF */
	check(".a\r\n.b\n", -1, "..a\r\n..b\r\n.\r\n");
}

static void
test_last_line_without_end(void **state)
{
	check("S: a\n\nno end", -1, "S: a\r\n\r\nno end\r\n.\r\n");
	check("S: a\n\nends in CR\r", -1, "S: a\r\n\r\nends in CR\r\n.\r\n");
	check("", -1, ".\r\n");
}

static void
test_bare_cr_is_part_of_the_line(void **state)
{
	/* a CR not followed by LF is not a line end: no dot-stuffing after it */
	check("S: a\n\nx\r.y\n", -1, "S: a\r\n\r\nx\r.y\r\n.\r\n");
}

static void
test_top(void **state)
{
	const char *m = "A: 1\nB: 2\n\nl1\nl2\n.l3\nl4\n";

	check(m, 0, "A: 1\r\nB: 2\r\n\r\n.\r\n");
	check(m, 1, "A: 1\r\nB: 2\r\n\r\nl1\r\n.\r\n");
	check(m, 3, "A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n..l3\r\n.\r\n");
	check(m, 100, "A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n..l3\r\nl4\r\n.\r\n");
	/* the blank line may be CRLF; a header without a body */
	check("A: 1\r\n\r\nl1\r\nl2\r\n", 1, "A: 1\r\n\r\nl1\r\n.\r\n");
	check("A: 1\nB: 2\n", 5, "A: 1\r\nB: 2\r\n.\r\n");
}

static void
test_top_counts_a_cr_line_as_not_empty(void **state)
{
	/* "\r\r\n" is a line holding one CR, not the blank line */
	check("A: 1\n\r\r\nB: 2\n\nl1\n", 0, "A: 1\r\n\r\r\nB: 2\r\n\r\n.\r\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lf_becomes_crlf),
		cmocka_unit_test(test_crlf_stays),
		cmocka_unit_test(test_dot_stuffing),
		cmocka_unit_test(test_last_line_without_end),
		cmocka_unit_test(test_bare_cr_is_part_of_the_line),
		cmocka_unit_test(test_top),
		cmocka_unit_test(test_top_counts_a_cr_line_as_not_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
