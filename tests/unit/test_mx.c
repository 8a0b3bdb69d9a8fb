/*
 * test_mx: RFC 5321 5.1 MX selection on tables of MX sets — ordering,
 * address expansion, self-pruning by name and by address, null MX, loops,
 * a backup with nothing better, temporary and permanent lookup failures —
 * then the random order among equal preferences over many seeds, the
 * implicit MX, the bounds against hostile answers and the error texts.
 * Every table row is its own cmocka test, named after the row.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns/mx.h"

#define H_MAX 6                 /* hosts per row */
#define A_MAX 4                 /* addresses per host, and ours */
#define W_MAX 8                 /* expected targets per row */

struct tc_host {
	uint16_t pref;
	const char *name;
	const char *addrs[A_MAX];
	int temp;
};

struct tc {
	const char *name;
	struct tc_host hosts[H_MAX];    /* up to the first without a name */
	const char *me;                 /* our hostname */
	const char *my[A_MAX];          /* our listening addresses */
	int backup;
	enum mx_err err;
	const char *want[W_MAX];        /* "pref host addr", in order */
	int pruned;                     /* our preference + 1 when pruned, else 0 */
};

#define MX1 "mx1.example.test"
#define MX2 "mx2.example.test"
#define MX3 "mx3.example.test"
#define IP1 "127.0.0.10"
#define IP2 "127.0.0.20"
#define IP3 "127.0.0.30"

#define H(p, n, ...) { .pref = p, .name = n, .addrs = { __VA_ARGS__ } }
#define HT(p, n, ...) { .pref = p, .name = n, .addrs = { __VA_ARGS__ }, .temp = 1 }
#define NX(p, n) { .pref = p, .name = n }             /* no address */
#define TEMP(p, n) { .pref = p, .name = n, .temp = 1 } /* lookup failed */

static struct tc cases[] = {
	/* ordering and expansion */
	{ .name = "order by preference",
	  .hosts = { H(30, "c.example.net", "192.0.2.3"), H(10, "a.example.net", "192.0.2.1"),
		     H(20, "b.example.net", "192.0.2.2") },
	  .me = "other.example.org", .err = MX_OK,
	  .want = { "10 a.example.net 192.0.2.1", "20 b.example.net 192.0.2.2",
		    "30 c.example.net 192.0.2.3" } },
	{ .name = "preference 0 and 65535",
	  .hosts = { H(65535, "last.example.net", "192.0.2.2"), H(0, "first.example.net", "192.0.2.1") },
	  .err = MX_OK,
	  .want = { "0 first.example.net 192.0.2.1", "65535 last.example.net 192.0.2.2" } },
	{ .name = "addresses expanded in the order given",
	  .hosts = { H(20, "b.example.net", "192.0.2.9", "2001:db8::9"),
		     H(10, "a.example.net", "2001:db8::1", "192.0.2.1", "2001:db8::2") },
	  .err = MX_OK,
	  .want = { "10 a.example.net 2001:db8::1", "10 a.example.net 192.0.2.1",
		    "10 a.example.net 2001:db8::2", "20 b.example.net 192.0.2.9",
		    "20 b.example.net 2001:db8::9" } },
	{ .name = "IPv6-only host",
	  .hosts = { H(10, "a.example.net", "2001:db8::1") },
	  .err = MX_OK, .want = { "10 a.example.net 2001:db8::1" } },
	{ .name = "host without addresses skipped",
	  .hosts = { NX(10, "a.example.net"), H(20, "b.example.net", "192.0.2.2") },
	  .err = MX_OK, .want = { "20 b.example.net 192.0.2.2" } },
	{ .name = "trailing dot dropped from the host name",
	  .hosts = { H(10, "mx.example.net.", "192.0.2.1") },
	  .err = MX_OK, .want = { "10 mx.example.net 192.0.2.1" } },
	{ .name = "host name case kept",
	  .hosts = { H(10, "MX.Example.NET", "192.0.2.1") },
	  .err = MX_OK, .want = { "10 MX.Example.NET 192.0.2.1" } },
	{ .name = "addresses in canonical form",
	  .hosts = { H(10, "a.example.net", "2001:DB8:0:0::1", "::ffff:192.0.2.7") },
	  .err = MX_OK, .want = { "10 a.example.net 2001:db8::1", "10 a.example.net 192.0.2.7" } },
	{ .name = "unparsable addresses skipped",
	  .hosts = { H(10, "a.example.net", "not-an-address", "192.0.2.300", "192.0.2.1",
		       "fe80::1%eth0") },
	  .err = MX_OK, .want = { "10 a.example.net 192.0.2.1" } },
	{ .name = "only unparsable addresses is no host",
	  .hosts = { H(10, "a.example.net", "", "1.2.3") },
	  .err = MX_ERR_NOHOST },
	{ .name = "a shared address is tried once, at its best place",
	  .hosts = { H(20, "b.example.net", "192.0.2.1", "192.0.2.2"),
		     H(10, "a.example.net", "192.0.2.1") },
	  .err = MX_OK, .want = { "10 a.example.net 192.0.2.1", "20 b.example.net 192.0.2.2" } },
	{ .name = "a host listed twice is tried at its best preference",
	  .hosts = { H(30, "a.example.net", "192.0.2.1"), H(20, "b.example.net", "192.0.2.2"),
		     H(10, "a.example.net", "192.0.2.1") },
	  .err = MX_OK, .want = { "10 a.example.net 192.0.2.1", "20 b.example.net 192.0.2.2" } },
	{ .name = "invalid names skipped",
	  .hosts = { H(1, "mx 1.example.net", "192.0.2.1"), H(2, "mx1..example.net", "192.0.2.2"),
		     H(3, ".mx.example.net", "192.0.2.3"), H(4, "", "192.0.2.4"),
		     H(5, "mx\r\n.example.net", "192.0.2.5"), H(9, "ok.example.net", "192.0.2.9") },
	  .err = MX_OK, .want = { "9 ok.example.net 192.0.2.9" } },
	{ .name = "no hostname and no addresses of our own",
	  .hosts = { H(10, MX1, IP1), H(20, MX2, IP2) },
	  .err = MX_OK, .want = { "10 " MX1 " " IP1, "20 " MX2 " " IP2 } },

	/* self-pruning */
	{ .name = "self as MX 20 under primary MX 10",
	  .hosts = { H(10, MX1, IP1), H(20, MX2, IP2) },
	  .me = MX2, .err = MX_OK, .want = { "10 " MX1 " " IP1 }, .pruned = 21 },
	{ .name = "self by hostname ignores case",
	  .hosts = { H(10, MX1, IP1), H(20, MX2, IP2) },
	  .me = "MX2.Example.TEST", .err = MX_OK, .want = { "10 " MX1 " " IP1 }, .pruned = 21 },
	{ .name = "self by hostname ignores the MX trailing dot",
	  .hosts = { H(10, MX1 ".", IP1), H(20, MX2 ".", IP2) },
	  .me = MX2, .err = MX_OK, .want = { "10 " MX1 " " IP1 }, .pruned = 21 },
	{ .name = "self by hostname ignores our trailing dot",
	  .hosts = { H(10, MX1, IP1), H(20, MX2, IP2) },
	  .me = MX2 ".", .err = MX_OK, .want = { "10 " MX1 " " IP1 }, .pruned = 21 },
	{ .name = "a longer or shorter name is not self",
	  .hosts = { H(10, MX1, IP1), H(20, "mx2.example.test.org", IP2), H(30, "mx2.example", IP3) },
	  .me = MX2, .err = MX_OK,
	  .want = { "10 " MX1 " " IP1, "20 mx2.example.test.org " IP2, "30 mx2.example " IP3 } },
	{ .name = "self by address",
	  .hosts = { H(10, MX1, IP1), H(20, "backup.example.net", IP2) },
	  .me = "mx2.example.test", .my = { IP2 }, .err = MX_OK,
	  .want = { "10 " MX1 " " IP1 }, .pruned = 21 },
	{ .name = "self by one of several addresses",
	  .hosts = { H(10, MX1, IP1), H(20, "backup.example.net", "2001:db8::20", IP2) },
	  .me = "elsewhere.example.org", .my = { "192.0.2.99", IP2 }, .err = MX_OK,
	  .want = { "10 " MX1 " " IP1 }, .pruned = 21 },
	{ .name = "self by address in another notation",
	  .hosts = { H(10, MX1, IP1), H(20, "v6.example.net", "2001:DB8:0::20"),
		     H(30, "mapped.example.net", "::ffff:" IP3) },
	  .my = { "2001:db8::20" }, .err = MX_OK, .want = { "10 " MX1 " " IP1 }, .pruned = 21 },
	{ .name = "self by IPv4-mapped address",
	  .hosts = { H(10, MX1, IP1), H(20, "mapped.example.net", "::ffff:" IP2) },
	  .my = { IP2 }, .err = MX_OK, .want = { "10 " MX1 " " IP1 }, .pruned = 21 },
	{ .name = "self drops every worse MX",
	  .hosts = { H(40, "mx4.example.test", "127.0.0.40"), H(10, MX1, IP1), H(30, MX3, IP3),
		     H(20, MX2, IP2) },
	  .me = MX2, .my = { IP2 }, .err = MX_OK, .want = { "10 " MX1 " " IP1 }, .pruned = 21 },
	{ .name = "self drops its own preference too",
	  .hosts = { H(10, MX1, IP1), H(20, MX2, IP2), H(20, "mx2b.example.test", "127.0.0.21"),
		     H(5, "mx0.example.test", "127.0.0.5") },
	  .me = MX2, .err = MX_OK,
	  .want = { "5 mx0.example.test 127.0.0.5", "10 " MX1 " " IP1 }, .pruned = 21 },
	{ .name = "self counted at its best preference",
	  .hosts = { H(10, MX1, IP1), H(20, MX2, "127.0.0.99"), H(5, "alias.example.test", IP2) },
	  .me = MX2, .my = { IP2 }, .err = MX_ERR_LOOP },
	{ .name = "self as best MX on a primary loops",
	  .hosts = { H(10, MX1, IP1), H(20, MX2, IP2) },
	  .me = MX1, .my = { IP1 }, .err = MX_ERR_LOOP },
	{ .name = "self as the only MX on a primary loops",
	  .hosts = { H(10, MX1, IP1) },
	  .me = MX1, .err = MX_ERR_LOOP },
	{ .name = "self as best MX by address alone loops",
	  .hosts = { H(10, "alias.example.net", "2001:db8::1", IP1), H(20, MX2, IP2) },
	  .me = MX1, .my = { IP1 }, .err = MX_ERR_LOOP },
	{ .name = "self at equal best preference loops",
	  .hosts = { H(10, MX1, IP1), H(10, MX2, IP2) },
	  .me = MX2, .err = MX_ERR_LOOP },
	{ .name = "backup with nothing better",
	  .hosts = { H(10, MX2, IP2) },
	  .me = MX2, .my = { IP2 }, .backup = 1, .err = MX_ERR_SELF_BACKUP },
	{ .name = "backup listed beside the primary at equal preference",
	  .hosts = { H(10, MX1, IP1), H(10, MX2, IP2) },
	  .me = MX2, .my = { IP2 }, .backup = 1, .err = MX_ERR_SELF_BACKUP },
	{ .name = "backup under the primary relays to it",
	  .hosts = { H(20, MX2, IP2), H(10, MX1, IP1) },
	  .me = MX2, .my = { IP2 }, .backup = 1, .err = MX_OK,
	  .want = { "10 " MX1 " " IP1 }, .pruned = 21 },
	{ .name = "backup under a primary that has no address",
	  .hosts = { NX(10, MX1), H(20, MX2, IP2) },
	  .me = MX2, .my = { IP2 }, .backup = 1, .err = MX_ERR_NOHOST },
	{ .name = "backup under a primary in temporary failure",
	  .hosts = { TEMP(10, MX1), H(20, MX2, IP2) },
	  .me = MX2, .my = { IP2 }, .backup = 1, .err = MX_ERR_TEMP },
	{ .name = "self whose own lookup failed is still found by name",
	  .hosts = { H(10, MX1, IP1), TEMP(20, MX2) },
	  .me = MX2, .my = { IP2 }, .err = MX_OK, .want = { "10 " MX1 " " IP1 }, .pruned = 21 },

	/* null MX (RFC 7505) */
	{ .name = "null MX",
	  .hosts = { NX(0, ".") },
	  .me = MX2, .my = { IP2 }, .err = MX_ERR_NULLMX },
	{ .name = "null MX with an empty name",
	  .hosts = { NX(0, "") },
	  .err = MX_ERR_NULLMX },
	{ .name = "null MX on a backup",
	  .hosts = { NX(0, ".") },
	  .me = MX2, .my = { IP2 }, .backup = 1, .err = MX_ERR_NULLMX },
	{ .name = "a dot at preference 10 is no null MX",
	  .hosts = { NX(10, ".") },
	  .err = MX_ERR_NOHOST },
	{ .name = "a dot beside real MX hosts is skipped",
	  .hosts = { NX(0, "."), H(10, MX1, IP1) },
	  .err = MX_OK, .want = { "10 " MX1 " " IP1 } },

	/* lookup failures */
	{ .name = "temporary failure on the only host",
	  .hosts = { TEMP(10, MX1) },
	  .err = MX_ERR_TEMP },
	{ .name = "temporary failure beside NXDOMAIN",
	  .hosts = { NX(10, MX1), TEMP(20, MX2) },
	  .err = MX_ERR_TEMP },
	{ .name = "temporary failure on one host, the other answers",
	  .hosts = { TEMP(10, MX1), H(20, MX2, IP2) },
	  .err = MX_OK, .want = { "20 " MX2 " " IP2 } },
	{ .name = "partial temporary failure keeps what resolved",
	  .hosts = { HT(10, MX1, "2001:db8::1") },
	  .err = MX_OK, .want = { "10 " MX1 " 2001:db8::1" } },
	{ .name = "temporary failure on a pruned host does not count",
	  .hosts = { NX(10, MX1), H(20, MX2, IP2), TEMP(30, MX3) },
	  .me = MX2, .err = MX_ERR_NOHOST },
	{ .name = "all NXDOMAIN",
	  .hosts = { NX(10, MX1), NX(20, MX2), NX(30, MX3) },
	  .err = MX_ERR_NOHOST },
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* splitmix64: a deterministic random source for the tests */
static uint32_t
test_random(void *arg)
{
	uint64_t *s = arg, z = (*s += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return (uint32_t)((z ^ (z >> 31)) >> 32);
}

static uint32_t
constant_random(void *arg)
{
	return *(uint32_t *)arg;
}

static size_t
count_addrs(const char *const *a)
{
	size_t n = 0;

	while (n < A_MAX && a[n] != NULL)
		n++;
	return n;
}

static void
test_case(void **state)
{
	const struct tc *c = *state;
	struct mx_host hosts[H_MAX];
	struct mx_self self = { c->me, c->my, count_addrs(c->my), c->backup };
	struct mx_list *list = (struct mx_list *)1;
	uint64_t seed = 1;
	size_t n = 0, nwant = 0;
	enum mx_err err;

	while (n < H_MAX && c->hosts[n].name != NULL) {
		hosts[n].pref = c->hosts[n].pref;
		hosts[n].name = c->hosts[n].name;
		hosts[n].addrs = c->hosts[n].addrs;
		hosts[n].naddrs = count_addrs(c->hosts[n].addrs);
		hosts[n].temp_fail = c->hosts[n].temp;
		n++;
	}
	while (nwant < W_MAX && c->want[nwant] != NULL)
		nwant++;
	err = mx_select(hosts, n, &self, test_random, &seed, &list);
	assert_int_equal(err, c->err);
	if (err != MX_OK) {
		assert_null(list);
		assert_int_equal(nwant, 0);
		return;
	}
	assert_non_null(list);
	assert_int_equal(mx_list_count(list), nwant);
	for (size_t i = 0; i < nwant; i++) {
		const struct mx_target *t = mx_list_get(list, i);
		char got[512];

		snprintf(got, sizeof(got), "%u %s %s", (unsigned)t->pref, t->host, t->addr);
		assert_string_equal(got, c->want[i]);
		assert_int_equal(t->family, strchr(t->addr, ':') != NULL ? AF_INET6 : AF_INET);
	}
	assert_int_equal(mx_list_self_pref(list), c->pruned - 1);
	mx_list_free(&list);
	assert_null(list);
}

/* Three hosts at 10 between one at 5 and one at 20: every order of the
 * three shows up, about equally often, and the preferences never mix. */
static void
test_shuffle_all_permutations(void **state)
{
	static const char *perms[] = { "abc", "acb", "bac", "bca", "cab", "cba" };
	const char *a1[] = { "192.0.2.1" }, *a2[] = { "192.0.2.2" }, *a3[] = { "192.0.2.3" };
	const char *a4[] = { "192.0.2.4" }, *a5[] = { "192.0.2.5" };
	struct mx_host hosts[] = {
		{ 20, "z", a5, 1, 0 },
		{ 10, "a", a1, 1, 0 },
		{ 5, "first", a4, 1, 0 },
		{ 10, "b", a2, 1, 0 },
		{ 10, "c", a3, 1, 0 },
	};
	struct mx_self self = { "me.example.test", NULL, 0, 0 };
	int seen[6] = { 0 };
	const int rounds = 1200;

	for (uint64_t s = 0; s < (uint64_t)rounds; s++) {
		uint64_t seed = s;
		struct mx_list *list;
		char order[4];

		assert_int_equal(mx_select(hosts, 5, &self, test_random, &seed, &list), MX_OK);
		assert_int_equal(mx_list_count(list), 5);
		assert_string_equal(mx_list_get(list, 0)->host, "first");
		assert_string_equal(mx_list_get(list, 4)->host, "z");
		for (int i = 0; i < 3; i++) {
			const struct mx_target *t = mx_list_get(list, i + 1);

			assert_int_equal(t->pref, 10);
			order[i] = t->host[0];
			/* each host keeps its own address */
			assert_int_equal(t->addr[8] - '1', t->host[0] - 'a');
		}
		order[3] = '\0';
		for (int p = 0; p < 6; p++) {
			if (strcmp(order, perms[p]) == 0)
				seen[p]++;
		}
		mx_list_free(&list);
	}
	for (int p = 0; p < 6; p++) {
		/* 200 expected each; far outside this means a biased shuffle */
		assert_true(seen[p] > 140);
		assert_true(seen[p] < 260);
	}
}

/* Hosts with several addresses move as a block: a shuffle never splits or
 * reorders one host's addresses. */
static void
test_shuffle_keeps_hosts_whole(void **state)
{
	const char *a[] = { "2001:db8::a", "192.0.2.10", "192.0.2.11" };
	const char *b[] = { "2001:db8::b", "192.0.2.20", "192.0.2.21" };
	struct mx_host hosts[] = { { 10, "a", a, 3, 0 }, { 10, "b", b, 3, 0 } };
	int first_a = 0;

	for (uint64_t s = 0; s < 200; s++) {
		uint64_t seed = s;
		struct mx_list *list;
		const char **x, **y;

		assert_int_equal(mx_select(hosts, 2, NULL, test_random, &seed, &list), MX_OK);
		assert_int_equal(mx_list_count(list), 6);
		x = mx_list_get(list, 0)->host[0] == 'a' ? a : b;
		y = x == a ? b : a;
		first_a += x == a;
		for (int i = 0; i < 3; i++) {
			assert_string_equal(mx_list_get(list, i)->addr, x[i]);
			assert_string_equal(mx_list_get(list, i + 3)->addr, y[i]);
		}
		mx_list_free(&list);
	}
	assert_true(first_a > 60 && first_a < 140);
}

/* The same seed gives the same order; the default source works too. */
static void
test_shuffle_deterministic(void **state)
{
	const char *ad[8][1] = { { "192.0.2.1" }, { "192.0.2.2" }, { "192.0.2.3" }, { "192.0.2.4" },
				 { "192.0.2.5" }, { "192.0.2.6" }, { "192.0.2.7" }, { "192.0.2.8" } };
	const char *names[8] = { "a", "b", "c", "d", "e", "f", "g", "h" };
	struct mx_host hosts[8];
	struct mx_list *l1, *l2, *l3;
	uint64_t s1 = 42, s2 = 42;
	int differs = 0;

	for (int i = 0; i < 8; i++) {
		hosts[i] = (struct mx_host){ 10, names[i], ad[i], 1, 0 };
	}
	assert_int_equal(mx_select(hosts, 8, NULL, test_random, &s1, &l1), MX_OK);
	assert_int_equal(mx_select(hosts, 8, NULL, test_random, &s2, &l2), MX_OK);
	for (int i = 0; i < 8; i++)
		assert_string_equal(mx_list_get(l1, i)->host, mx_list_get(l2, i)->host);
	/* the default (NULL) source: a permutation of the eight */
	assert_int_equal(mx_select(hosts, 8, NULL, NULL, NULL, &l3), MX_OK);
	assert_int_equal(mx_list_count(l3), 8);
	for (int i = 0; i < 8; i++) {
		int found = 0;

		for (int j = 0; j < 8; j++)
			found += strcmp(mx_list_get(l3, j)->host, names[i]) == 0;
		assert_int_equal(found, 1);
		differs |= strcmp(mx_list_get(l1, i)->host, names[i]) != 0;
	}
	/* with eight hosts, seed 42 keeping input order would be a 1 in 40320 fluke */
	assert_true(differs);
	mx_list_free(&l1);
	mx_list_free(&l2);
	mx_list_free(&l3);
}

/* A broken random source (always 0, always ~0) cannot hang the selection. */
static void
test_broken_random(void **state)
{
	const char *ad[3][1] = { { "192.0.2.1" }, { "192.0.2.2" }, { "192.0.2.3" } };
	struct mx_host hosts[] = { { 10, "a", ad[0], 1, 0 }, { 10, "b", ad[1], 1, 0 },
				   { 10, "c", ad[2], 1, 0 } };
	uint32_t v[] = { 0, UINT32_MAX, 1 };

	for (int i = 0; i < 3; i++) {
		struct mx_list *list;

		assert_int_equal(mx_select(hosts, 3, NULL, constant_random, &v[i], &list), MX_OK);
		assert_int_equal(mx_list_count(list), 3);
		mx_list_free(&list);
	}
}

/* No MX records: the caller falls back to the domain as its implicit MX. */
static void
test_implicit_mx(void **state)
{
	const char *addrs[] = { "2001:db8::25", "192.0.2.25" };
	const char *mine[] = { "192.0.2.25" };
	struct mx_self self = { "mx.example.org", NULL, 0, 0 };
	struct mx_host h = mx_host_implicit("example.test");
	struct mx_list *list = (struct mx_list *)1;

	assert_int_equal(mx_select(NULL, 0, &self, NULL, NULL, &list), MX_ERR_NOHOST);
	assert_null(list);
	assert_int_equal(mx_select(&h, 0, &self, NULL, NULL, &list), MX_ERR_NOHOST);
	assert_int_equal(h.pref, 0);
	assert_string_equal(h.name, "example.test");
	assert_int_equal(h.naddrs, 0);
	assert_int_equal(h.temp_fail, 0);
	/* the domain without addresses: no host; with a failed lookup: later */
	assert_int_equal(mx_select(&h, 1, &self, NULL, NULL, &list), MX_ERR_NOHOST);
	h.temp_fail = 1;
	assert_int_equal(mx_select(&h, 1, &self, NULL, NULL, &list), MX_ERR_TEMP);
	h.temp_fail = 0;
	h.addrs = addrs;
	h.naddrs = 2;
	assert_int_equal(mx_select(&h, 1, &self, NULL, NULL, &list), MX_OK);
	assert_int_equal(mx_list_count(list), 2);
	assert_string_equal(mx_list_get(list, 0)->host, "example.test");
	assert_string_equal(mx_list_get(list, 0)->addr, "2001:db8::25");
	assert_int_equal(mx_list_get(list, 0)->pref, 0);
	assert_string_equal(mx_list_get(list, 1)->addr, "192.0.2.25");
	mx_list_free(&list);
	/* mail for our own hostname, which has no MX: a loop */
	self.hostname = "Example.Test.";
	assert_int_equal(mx_select(&h, 1, &self, NULL, NULL, &list), MX_ERR_LOOP);
	self.hostname = NULL;
	self.addrs = mine;
	self.naddrs = 1;
	assert_int_equal(mx_select(&h, 1, &self, NULL, NULL, &list), MX_ERR_LOOP);
	assert_null(list);
}

/* A hostile answer: thousands of MX records, a host with a thousand
 * addresses. The result never exceeds MX_MAX_TARGETS and stays ordered. */
static void
test_bound_on_targets(void **state)
{
	enum { NH = 5000, NA = 1000 };
	struct mx_host *hosts = calloc(NH, sizeof(*hosts));
	char (*names)[32] = calloc(NH, sizeof(*names));
	char (*text)[24] = calloc(2 * NH + NA, sizeof(*text));
	const char **hostaddrs = calloc(2 * NH, sizeof(*hostaddrs));
	const char **addrs = calloc(NA, sizeof(*addrs));
	const char **addrs2 = hostaddrs;
	struct mx_self self = { "me.example.test", NULL, 0, 0 };
	struct mx_list *list;
	uint64_t seed = 7;

	for (int k = 0; k < 2 * NH + NA; k++)
		snprintf(text[k], sizeof(text[k]), "10.%d.%d.%d", k >> 16, (k >> 8) & 255, k & 255);
	for (int k = 0; k < 2 * NH; k++)
		hostaddrs[k] = text[k];
	for (int k = 0; k < NA; k++)
		addrs[k] = text[2 * NH + k];
	/* 5000 hosts, preferences 100..1 over and over, two addresses each */
	for (int i = 0; i < NH; i++) {
		snprintf(names[i], sizeof(names[i]), "mx%d.example.net", i);
		hosts[i] = (struct mx_host){ (uint16_t)(100 - i % 100), names[i], hostaddrs + 2 * i, 2, 0 };
	}
	assert_int_equal(mx_select(hosts, NH, &self, test_random, &seed, &list), MX_OK);
	assert_int_equal(mx_list_count(list), MX_MAX_TARGETS);
	for (size_t i = 0; i < MX_MAX_TARGETS; i++) {
		/* 50 hosts at preference 1: the first 16 of them fill the list */
		assert_int_equal(mx_list_get(list, i)->pref, 1);
		if (i % 2 == 1)
			assert_string_equal(mx_list_get(list, i)->host, mx_list_get(list, i - 1)->host);
	}
	mx_list_free(&list);

	/* we are MX 1 far down the list: a loop, found among thousands */
	hosts[3999] = (struct mx_host){ 1, "me.example.test", NULL, 0, 0 };
	hosts[4000] = (struct mx_host){ 0, "mx-best.example.net", addrs2, 1, 0 };
	assert_int_equal(mx_select(hosts, NH, &self, test_random, &seed, &list), MX_OK);
	assert_int_equal(mx_list_count(list), 1);
	assert_string_equal(mx_list_get(list, 0)->host, "mx-best.example.net");
	assert_int_equal(mx_list_self_pref(list), 1);
	mx_list_free(&list);

	/* records past MX_MAX_HOSTS are not looked at */
	hosts[MX_MAX_HOSTS + 10] = (struct mx_host){ 0, "ignored.example.net", addrs2 + 5, 1, 0 };
	hosts[4000].pref = 2;
	assert_int_equal(mx_select(hosts, NH, &self, test_random, &seed, &list), MX_ERR_LOOP);

	/* one host with a thousand addresses: the first MX_MAX_TARGETS of them */
	hosts[0] = (struct mx_host){ 10, "big.example.net", addrs, NA, 0 };
	assert_int_equal(mx_select(hosts, 1, &self, test_random, &seed, &list), MX_OK);
	assert_int_equal(mx_list_count(list), MX_MAX_TARGETS);
	for (size_t i = 0; i < MX_MAX_TARGETS; i++)
		assert_string_equal(mx_list_get(list, i)->addr, addrs[i]);
	mx_list_free(&list);

	/* addresses past MX_MAX_HOST_ADDRS are not looked at, for self either */
	self.addrs = addrs + MX_MAX_HOST_ADDRS;
	self.naddrs = 1;
	hosts[1] = (struct mx_host){ 20, "other.example.net", addrs2, 1, 0 };
	assert_int_equal(mx_select(hosts, 2, &self, test_random, &seed, &list), MX_OK);
	assert_int_equal(mx_list_self_pref(list), -1);
	mx_list_free(&list);
	self.addrs = addrs + MX_MAX_HOST_ADDRS - 1;
	assert_int_equal(mx_select(hosts, 2, &self, test_random, &seed, &list), MX_ERR_LOOP);

	free(addrs);
	free(hostaddrs);
	free(text);
	free(names);
	free(hosts);
}

/* Absurd names: NULL, over-long, over-long labels; the longest legal one. */
static void
test_absurd_names(void **state)
{
	const char *ad[] = { "192.0.2.1" }, *ad2[] = { "192.0.2.2" };
	char longest[254], toolong[255], label[80], huge[10000];
	struct mx_host hosts[2];
	struct mx_list *list;

	/* 253 characters in labels of 63: legal, with or without the dot */
	memset(longest, 'a', 253);
	longest[63] = longest[127] = longest[191] = '.';
	longest[253] = '\0';
	hosts[0] = (struct mx_host){ 10, longest, ad, 1, 0 };
	assert_int_equal(mx_select(hosts, 1, NULL, NULL, NULL, &list), MX_OK);
	assert_int_equal(strlen(mx_list_get(list, 0)->host), 253);
	mx_list_free(&list);
	memcpy(toolong, longest, 253);
	toolong[253] = '.';
	toolong[254] = '\0';
	hosts[0].name = toolong;
	assert_int_equal(mx_select(hosts, 1, NULL, NULL, NULL, &list), MX_OK);
	assert_int_equal(strlen(mx_list_get(list, 0)->host), 253);
	mx_list_free(&list);
	/* 254 characters */
	toolong[253] = 'a';
	hosts[1] = (struct mx_host){ 20, "ok.example.net", ad2, 1, 0 };
	assert_int_equal(mx_select(hosts, 2, NULL, NULL, NULL, &list), MX_OK);
	assert_int_equal(mx_list_count(list), 1);
	assert_string_equal(mx_list_get(list, 0)->host, "ok.example.net");
	mx_list_free(&list);
	/* a 64-character label */
	memset(label, 'b', 64);
	strcpy(label + 64, ".example");
	hosts[0].name = label;
	assert_int_equal(mx_select(hosts, 1, NULL, NULL, NULL, &list), MX_ERR_NOHOST);
	/* ten thousand characters, and no name at all */
	memset(huge, 'c', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	hosts[0].name = huge;
	assert_int_equal(mx_select(hosts, 1, NULL, NULL, NULL, &list), MX_ERR_NOHOST);
	hosts[0].name = NULL;
	assert_int_equal(mx_select(hosts, 1, NULL, NULL, NULL, &list), MX_ERR_NOHOST);
	assert_int_equal(mx_select(hosts, 2, NULL, NULL, NULL, &list), MX_OK);
	mx_list_free(&list);
	/* addresses present but a NULL array, and NULL entries */
	hosts[0] = (struct mx_host){ 10, "a.example.net", NULL, 5, 0 };
	assert_int_equal(mx_select(hosts, 1, NULL, NULL, NULL, &list), MX_ERR_NOHOST);
	{
		const char *holes[] = { NULL, "192.0.2.7", NULL };
		struct mx_self self = { "", holes, 3, 0 };

		hosts[0].addrs = holes;
		hosts[0].naddrs = 3;
		/* an empty hostname of ours matches nothing; the address does */
		assert_int_equal(mx_select(hosts, 1, &self, NULL, NULL, &list), MX_ERR_LOOP);
		self.naddrs = 0;
		assert_int_equal(mx_select(hosts, 1, &self, NULL, NULL, &list), MX_OK);
		assert_int_equal(mx_list_count(list), 1);
		assert_string_equal(mx_list_get(list, 0)->addr, "192.0.2.7");
		mx_list_free(&list);
	}
	/* freeing nothing is fine */
	list = NULL;
	mx_list_free(&list);
	assert_null(list);
	assert_int_equal(mx_list_count(NULL), 0);
	assert_int_equal(mx_list_self_pref(NULL), -1);
}

static void
test_err_text(void **state)
{
	static const struct {
		enum mx_err err;
		int temp;
		const char *text;
	} t[] = {
		{ MX_OK, 0, "2.0.0 MX hosts found for example.test" },
		{ MX_ERR_NULLMX, 0, "5.1.10 example.test does not accept mail (null MX)" },
		{ MX_ERR_LOOP, 0, "5.4.6 mail for example.test loops back to myself" },
		{ MX_ERR_SELF_BACKUP, 1, "4.4.4 no MX host of example.test better than myself" },
		{ MX_ERR_TEMP, 1, "4.4.3 temporary failure looking up the MX hosts of example.test" },
		{ MX_ERR_NOHOST, 0, "5.4.4 unable to route: no address for any MX host of example.test" },
	};
	char buf[256], small[8];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		mx_err_format(t[i].err, "example.test", buf, sizeof(buf));
		assert_string_equal(buf, t[i].text);
		assert_int_equal(mx_err_is_temp(t[i].err), t[i].temp);
		assert_int_equal(strncmp(mx_err_status(t[i].err), buf, strlen(mx_err_status(t[i].err))), 0);
	}
	mx_err_format(MX_ERR_LOOP, "example.test", small, sizeof(small));
	assert_string_equal(small, "5.4.6 m");
	mx_err_format(MX_ERR_LOOP, NULL, buf, sizeof(buf));
	assert_string_equal(buf, "5.4.6 mail for  loops back to myself");
	assert_string_equal(mx_err_status((enum mx_err)99), "4.4.0");
	assert_true(mx_err_is_temp((enum mx_err)99));
}

int
main(void)
{
	const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_shuffle_all_permutations),
		cmocka_unit_test(test_shuffle_keeps_hosts_whole),
		cmocka_unit_test(test_shuffle_deterministic),
		cmocka_unit_test(test_broken_random),
		cmocka_unit_test(test_implicit_mx),
		cmocka_unit_test(test_bound_on_targets),
		cmocka_unit_test(test_absurd_names),
		cmocka_unit_test(test_err_text),
	};
	struct CMUnitTest tests[NCASES + sizeof(fixed) / sizeof(fixed[0])];

	/* one test per table row, named after it */
	for (size_t i = 0; i < NCASES; i++)
		tests[i] = (struct CMUnitTest){ cases[i].name, test_case, NULL, NULL, &cases[i] };
	memcpy(tests + NCASES, fixed, sizeof(fixed));
	return cmocka_run_group_tests_name("mx", tests, NULL, NULL);
}
