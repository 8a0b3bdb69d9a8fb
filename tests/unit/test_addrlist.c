/*
 * test_addrlist: unit tests for addrlist_each (src/mail/addrlist.h), the
 * GMime-backed parse of address fields that submission's From: check uses:
 * display names with commas and quotes, comments, folding, groups (allowed
 * or not), and what is no address list at all.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mail/addrlist.h"

struct got {
	char all[1024];
	int stop_at;        /* return nonzero at this mailbox (1-based), 0: never */
	const char *origin;
	int n;
};

static int
collect(const char *addr, void *arg)
{
	struct got *g = arg;
	size_t len = strlen(g->all);

	g->n++;
	snprintf(g->all + len, sizeof(g->all) - len, "%s%s", len ? " " : "", addr);
	return g->stop_at == g->n;
}

static int
each(const char *value, int groups, struct got *g)
{
	memset(g->all, 0, sizeof(g->all));
	g->n = 0;
	return addrlist_each(value, groups, g->origin, collect, g);
}

static void
test_mailboxes(void **state)
{
	struct got g = { .stop_at = 0 };

	(void)state;
	assert_int_equal(each("\"Doe, John\" <john@example.org>", 0, &g), 1);
	assert_string_equal(g.all, "john@example.org");
	assert_int_equal(each(" a@example.test, \"B, C\" <b@EXAMPLE.ORG> (the boss)", 0, &g), 2);
	assert_string_equal(g.all, "a@example.test b@example.org");
	/* folded, as it came off the header (the CRLF already gone) */
	assert_int_equal(each(" Alice\t<alice@example.test>", 0, &g), 1);
	assert_string_equal(g.all, "alice@example.test");
	assert_int_equal(each("alice@example.test (Alice, in a comment)", 0, &g), 1);
	assert_string_equal(g.all, "alice@example.test");
	/* a quoted local part stays as an SMTP path gives it */
	assert_int_equal(each("\"john doe\"@example.org", 0, &g), 1);
	assert_string_equal(g.all, "\"john doe\"@example.org");
}

static void
test_groups(void **state)
{
	struct got g = { .stop_at = 0 };

	(void)state;
	assert_int_equal(each("undisclosed-recipients:;", 1, &g), 0);
	assert_int_equal(each("undisclosed-recipients:;", 0, &g), -1);
	assert_int_equal(each("team: a@example.test, b@example.test;, c@example.test", 1, &g), 3);
	assert_string_equal(g.all, "a@example.test b@example.test c@example.test");
	assert_int_equal(each("team: a@example.test;", 0, &g), -1);
}

static void
test_not_addresses(void **state)
{
	struct got g = { .stop_at = 0 };

	(void)state;
	assert_int_equal(each("not an address", 0, &g), -1);
	assert_int_equal(each("Alice <alice>", 0, &g), -1);
	assert_int_equal(each("<@example.test>", 0, &g), -1);
	/* unqualified: only with an origin */
	assert_int_equal(each("root, www-data", 0, &g), -1);
	g.origin = "example.test";
	assert_int_equal(each("root, www-data, a@example.org", 0, &g), 3);
	assert_string_equal(g.all, "root@example.test www-data@example.test a@example.org");
	g.origin = NULL;
	assert_int_equal(each("", 0, &g), -1);      /* nothing is no list */
	/* fn says stop: the whole parse fails */
	g.stop_at = 2;
	assert_int_equal(each("a@example.test, b@example.test, c@example.test", 0, &g), -1);
	assert_int_equal(g.n, 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mailboxes),
		cmocka_unit_test(test_groups),
		cmocka_unit_test(test_not_addresses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
