/*
 * test_imap_seqset: sequence sets (src/imap/imap_seqset.h): parsing into
 * sorted, merged ranges with '*' as the given maximum, the refusals, and
 * imap_seqset_contains. A set is written out as "lo:hi,lo:hi".
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_seqset.h"

/* The set as text, or "ERR". */
static const char *
parse(const char *s, uint32_t star)
{
	static char buf[200000];
	struct imap_seqset set;
	size_t n = 0;

	if (imap_seqset_parse(s, star, &set) < 0) {
		assert_null(set.r);
		return "ERR";
	}
	buf[0] = '\0';
	for (size_t i = 0; i < set.n; i++) {
		assert_true(set.r[i][0] <= set.r[i][1]);
		if (i > 0)
			assert_true((uint64_t)set.r[i - 1][1] + 1 < set.r[i][0]);
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%u:%u", i ? "," : "",
				      set.r[i][0], set.r[i][1]);
		assert_true(n < sizeof(buf));
	}
	imap_seqset_free(&set);
	assert_null(set.r);
	return buf;
}

static void
test_parse(void **state)
{
	(void)state;
	assert_string_equal(parse("1", 5), "1:1");
	assert_string_equal(parse("1:*", 5), "1:5");
	assert_string_equal(parse("1:*", 0), "");
	assert_string_equal(parse("*", 0), "");
	assert_string_equal(parse("*", 5), "5:5");
	assert_string_equal(parse("*:3", 5), "3:5");
	assert_string_equal(parse("5:2", 9), "2:5");
	assert_string_equal(parse("559:*", 100), "100:559");
	assert_string_equal(parse("1:3,2:6,9,8,10:12,20", 100), "1:6,8:12,20:20");
	assert_string_equal(parse("7,1:5,6", 100), "1:7");
	assert_string_equal(parse("3,3,3", 100), "3:3");
	assert_string_equal(parse("1,*", 0), "1:1");
	assert_string_equal(parse("4294967295", 1), "4294967295:4294967295");
	assert_string_equal(parse("1:4294967295,4294967295", 1), "1:4294967295");
}

static void
test_refused(void **state)
{
	static const char *const bad[] = {
		"", "0", "0:5", "5:0", "01", "4294967296", "99999999999999999999", "1,", ",1",
		"1,,2", "1:", ":1", "1:2:3", "a", "1 ", " 1", "-1", "1:*x", "**", "1;2", "+1",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (strcmp(parse(bad[i], 10), "ERR") != 0)
			fail_msg("\"%s\" accepted", bad[i]);
	}
}

static void
test_items(void **state)
{
	static char s[100000];
	size_t n = 0;

	(void)state;
	for (int i = 1; i <= 10000; i++)
		n += (size_t)snprintf(s + n, sizeof(s) - n, "%s%d", i > 1 ? "," : "", i * 2);
	assert_string_not_equal(parse(s, 10), "ERR");
	snprintf(s + n, sizeof(s) - n, ",1");
	assert_string_equal(parse(s, 10), "ERR");
}

static void
test_contains(void **state)
{
	struct imap_seqset set;

	(void)state;
	assert_int_equal(imap_seqset_parse("2:4,10,20:*", 30, &set), 0);
	assert_false(imap_seqset_contains(&set, 0));
	assert_false(imap_seqset_contains(&set, 1));
	assert_true(imap_seqset_contains(&set, 2));
	assert_true(imap_seqset_contains(&set, 4));
	assert_false(imap_seqset_contains(&set, 5));
	assert_true(imap_seqset_contains(&set, 10));
	assert_false(imap_seqset_contains(&set, 11));
	assert_true(imap_seqset_contains(&set, 25));
	assert_true(imap_seqset_contains(&set, 30));
	assert_false(imap_seqset_contains(&set, 31));
	imap_seqset_free(&set);
	assert_int_equal(imap_seqset_parse("1:*", 0, &set), 0);
	assert_int_equal(set.n, 0);
	assert_false(imap_seqset_contains(&set, 1));
	imap_seqset_free(&set);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_items),
		cmocka_unit_test(test_contains),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
